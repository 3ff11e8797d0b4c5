/*
 * Unit tests of the small platform parts: the arena, problems and the router.
 */
#include <stdlib.h>
#include <string.h>

#include "suites.h"
#include "tenantflow/alloc.h"
#include "tenantflow/docs.h"
#include "tenantflow/http.h"
#include "tenantflow/problem.h"
#include "tenantflow/text.h"
#include "tenantflow/tokencache.h"

static int deferred_calls;
static void count_call(void *p)
{
    (void)p;
    deferred_calls++;
}

START_TEST(arena_allocates_and_defers)
{
    tf_arena *a = tf_arena_new();
    char *s = tf_arena_strndup(a, "hello world", 5);
    ck_assert_str_eq(s, "hello");
    char *big = tf_arena_alloc(a, 100000); /* its own block */
    memset(big, 'x', 100000);
    for (int i = 0; i < 1000; i++)
        ck_assert_ptr_nonnull(tf_arena_printf(a, "n=%d", i));
    ck_assert_str_eq(tf_arena_printf(a, "%s-%d", "a", 7), "a-7");
    deferred_calls = 0;
    tf_arena_defer(a, count_call, NULL);
    tf_arena_defer(a, count_call, NULL);
    tf_arena_free(a);
    ck_assert_int_eq(deferred_calls, 2);
    tf_arena_free(NULL);
}
END_TEST

START_TEST(problem_collects_and_renders)
{
    tf_problem p = {0};
    ck_assert(!tf_failed(&p));
    tf_problem_invalid(&p, "/a", "bad %d", 1);
    tf_problem_invalid(&p, "/b/~1c", "bad %d", 2);
    ck_assert_int_eq(tf_problem_status(&p), 422);
    tf_problem_extra(&p, "existing_id", json_string("x"));
    tf_problem_log(&p, "secret sql");
    json_t *body = tf_problem_body(&p, "/v1/items", "rid");
    ck_assert_str_eq(json_string_value(json_object_get(body, "type")), "/problems/validation");
    ck_assert_int_eq(json_integer_value(json_object_get(body, "status")), 422);
    ck_assert_int_eq(json_array_size(json_object_get(body, "errors")), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
                         json_object_get(body, "errors"), 1), "pointer")), "/b/~1c");
    ck_assert_str_eq(json_string_value(json_object_get(body, "existing_id")), "x");
    char *text = json_dumps(body, 0);
    ck_assert_ptr_null(strstr(text, "secret sql")); /* log text never reaches the client */
    free(text);
    json_decref(body);
    tf_problem_clear(&p);
    tf_problem_clear(&p);
    ck_assert(!tf_failed(&p));
    tf_problem_internal(&p, "boom %s", "inside");
    body = tf_problem_body(&p, NULL, NULL);
    ck_assert_ptr_null(strstr(json_string_value(json_object_get(body, "detail")), "boom"));
    json_decref(body);
    tf_problem_clear(&p);
    /* Invalid UTF-8 from a client never drops a member. */
    tf_problem_bad_param(&p, "\xff", "value \xfe");
    body = tf_problem_body(&p, "/\xff", "r");
    ck_assert_ptr_nonnull(json_object_get(body, "instance"));
    ck_assert_ptr_nonnull(json_object_get(json_array_get(json_object_get(body, "errors"), 0),
                                          "parameter"));
    json_decref(body);
    tf_problem_clear(&p);
}
END_TEST

START_TEST(problem_table_is_complete)
{
    for (int k = TF_PB_NONE + 1; k < TF_PB_COUNT; k++) {
        const tf_problem_type *t = tf_problem_type_of((tf_problem_kind)k);
        ck_assert_ptr_nonnull(t->slug);
        ck_assert_int_ge(t->status, 400);
        ck_assert_int_eq(tf_problem_kind_by_slug(t->slug), k);
    }
    char out[32];
    ck_assert_str_eq(tf_pointer_token(out, sizeof out, "a/b~c"), "a~1b~0c");
}
END_TEST

static void nop(tf_req *r) { (void)r; }

static const tf_route good[] = {
    {"GET", "/v1/items", "items:read", nop, NULL, NULL, 0, NULL},
    {"POST", "/v1/items", "items:write", nop, NULL, NULL, 0, NULL},
    {"GET", "/v1/items/{id}", "items:read", nop, NULL, NULL, 0, NULL},
    {"POST", "/v1/items/{id}/transitions", "items:write", nop, NULL, NULL, 0, NULL},
    {"GET", "/healthz", TF_PUBLIC, nop, NULL, NULL, 0, NULL},
};

START_TEST(router_matches_templates)
{
    tf_router *r = tf_router_new();
    char err[256];
    ck_assert(tf_router_add_all(r, good, sizeof good / sizeof *good, err, sizeof err));
    tf_match m;
    const char *p = "/v1/items/abc/transitions";
    ck_assert_int_eq(tf_router_match(r, "POST", p, strlen(p), &m), TF_MATCH_OK);
    ck_assert_ptr_eq(m.route, &good[3]);
    ck_assert_str_eq(m.values[0], "abc");
    ck_assert_int_eq(tf_router_match(r, "DELETE", "/v1/items", 9, &m), TF_MATCH_NO_METHOD);
    ck_assert_str_eq(m.allow, "GET, POST");
    ck_assert_int_eq(tf_router_match(r, "GET", "/v1/items/", 10, &m), TF_MATCH_NO_PATH);
    ck_assert_int_eq(tf_router_match(r, "GET", "/v1//items", 10, &m), TF_MATCH_NO_PATH);
    ck_assert_int_eq(tf_router_match(r, "GET", "/v1/itemsx", 10, &m), TF_MATCH_NO_PATH);
    ck_assert_int_eq(tf_router_match(r, "GET", "", 0, &m), TF_MATCH_NO_PATH);
    /* A NUL in the (pointer, length) path would cut {id} short (tests/fuzz router). */
    ck_assert_int_eq(tf_router_match(r, "GET", "/v1/items/a\0b", 13, &m), TF_MATCH_NO_PATH);
    ck_assert_int_eq(tf_router_count(r), 5);
    tf_router_free(r);
}
END_TEST

START_TEST(router_refuses_routes_without_permission)
{
    tf_router *r = tf_router_new();
    char err[256];
    tf_route none = {"GET", "/v1/x", NULL, nop, NULL, NULL, 0, NULL};
    ck_assert(!tf_router_add(r, &none, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "permission"));
    tf_route empty = {"GET", "/v1/x", "", nop, NULL, NULL, 0, NULL};
    ck_assert(!tf_router_add(r, &empty, err, sizeof err));
    tf_route badm = {"BREW", "/v1/x", TF_PUBLIC, nop, NULL, NULL, 0, NULL};
    ck_assert(!tf_router_add(r, &badm, err, sizeof err));
    tf_route badt = {"GET", "/v1/{x", TF_PUBLIC, nop, NULL, NULL, 0, NULL};
    ck_assert(!tf_router_add(r, &badt, err, sizeof err));
    ck_assert(tf_router_add(r, &good[0], err, sizeof err));
    tf_route dup = {"GET", "/v1/items", "items:read", nop, NULL, NULL, 0, NULL};
    ck_assert(!tf_router_add(r, &dup, err, sizeof err));
    ck_assert_int_eq(tf_router_count(r), 1);
    tf_router_free(r);
}
END_TEST

START_TEST(permissions_and_wildcards)
{
    const char *perms[] = {"items:read", "po:*"};
    ck_assert(tf_perms_grant(perms, 2, "items:read"));
    ck_assert(tf_perms_grant(perms, 2, "po:approve"));
    ck_assert(!tf_perms_grant(perms, 2, "items:write"));
    ck_assert(!tf_perms_grant(perms, 2, "pox:approve"));
    ck_assert(!tf_perms_grant(perms, 2, "po"));
    const char *all[] = {"*"};
    ck_assert(tf_perms_grant(all, 1, "anything:at-all"));
    ck_assert(!tf_perms_grant(NULL, 0, "items:read"));
}
END_TEST

/* The documents compiled into the binary: the OpenAPI file parses strictly
 * and every problem type of the table is listed in it. */
START_TEST(embedded_documents_are_present)
{
    const tf_asset *a = tf_asset_find("openapi.json");
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq(strlen((const char *)a->data), a->len);
    json_error_t e;
    json_t *doc = json_loadb((const char *)a->data, a->len, JSON_REJECT_DUPLICATES, &e);
    ck_assert_msg(doc != NULL, "openapi.json line %d: %s", e.line, e.text);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
    json_t *slugs = json_object_get(
        json_object_get(json_object_get(json_object_get(doc, "components"), "schemas"),
                        "ProblemSlug"),
        "enum");
    ck_assert_uint_eq(json_array_size(slugs), TF_PB_COUNT - 1);
    for (int k = TF_PB_NONE + 1; k < TF_PB_COUNT; k++)
        ck_assert_str_eq(json_string_value(json_array_get(slugs, (size_t)k - 1)),
                         tf_problem_type_of((tf_problem_kind)k)->slug);
    json_decref(doc);
    ck_assert_ptr_nonnull(tf_asset_find("reference/index.html"));
    ck_assert_ptr_nonnull(tf_asset_find("reference/docs.js"));
    ck_assert_ptr_nonnull(tf_asset_find("reference/docs.css"));
    ck_assert_ptr_null(tf_asset_find("reference"));
    ck_assert_ptr_null(tf_asset_find(""));
}
END_TEST

/* Content negotiation: each Accept header with the media type it gets,
 * for a JSON-only route and for a route that can also answer CSV. */
START_TEST(accept_negotiation)
{
    static const struct {
        const char *accept;
        tf_media json_only, with_csv;
    } cases[] = {
        {NULL, TF_MEDIA_JSON, TF_MEDIA_JSON},
        {"", TF_MEDIA_JSON, TF_MEDIA_JSON},
        {" , ", TF_MEDIA_JSON, TF_MEDIA_JSON},
        {"*/*", TF_MEDIA_JSON, TF_MEDIA_JSON},
        {"application/json", TF_MEDIA_JSON, TF_MEDIA_JSON},
        {"APPLICATION/JSON; charset=utf-8", TF_MEDIA_JSON, TF_MEDIA_JSON},
        {"application/problem+json", TF_MEDIA_JSON, TF_MEDIA_JSON},
        {"application/*", TF_MEDIA_JSON, TF_MEDIA_JSON},
        {"application/xml", TF_MEDIA_NONE, TF_MEDIA_NONE},
        {"application/jsonx", TF_MEDIA_NONE, TF_MEDIA_NONE},
        {"text/html", TF_MEDIA_NONE, TF_MEDIA_NONE},
        {"text/csv", TF_MEDIA_NONE, TF_MEDIA_CSV},
        {"text/*", TF_MEDIA_NONE, TF_MEDIA_CSV},
        {"text/csv, application/json", TF_MEDIA_JSON, TF_MEDIA_CSV},
        {"application/json, text/csv", TF_MEDIA_JSON, TF_MEDIA_JSON},
        {"application/json;q=0.5, text/csv", TF_MEDIA_JSON, TF_MEDIA_CSV},
        {"text/csv;q=0.2, application/json;q=0.3", TF_MEDIA_JSON, TF_MEDIA_JSON},
        {"text/csv;q=0", TF_MEDIA_NONE, TF_MEDIA_NONE},
        {"application/json;q=0", TF_MEDIA_NONE, TF_MEDIA_NONE},
        {"application/json; q=0.000", TF_MEDIA_NONE, TF_MEDIA_NONE},
        {"application/json;q=0, */*", TF_MEDIA_NONE, TF_MEDIA_CSV},
        {"*/*;q=0.1, application/json;q=0", TF_MEDIA_NONE, TF_MEDIA_CSV},
        {"*/*, text/csv;q=0", TF_MEDIA_JSON, TF_MEDIA_JSON},
        {"text/html, application/json;q=0.5", TF_MEDIA_JSON, TF_MEDIA_JSON},
        {"text/html;level=1;q=0.9, */*;q=0.001", TF_MEDIA_JSON, TF_MEDIA_JSON},
        {"application/json;q=1.0", TF_MEDIA_JSON, TF_MEDIA_JSON},
        {"application/json;q=junk", TF_MEDIA_JSON, TF_MEDIA_JSON},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        ck_assert_msg(tf_media_pick(cases[i].accept, false) == cases[i].json_only,
                      "json-only route, Accept: %s", cases[i].accept);
        ck_assert_msg(tf_media_pick(cases[i].accept, true) == cases[i].with_csv,
                      "csv route, Accept: %s", cases[i].accept);
    }
}
END_TEST

START_TEST(utf8_validation)
{
    static const struct {
        const char *s;
        size_t n;
        bool ok;
    } cases[] = {
        {"", 0, true},
        {"plain ascii", 11, true},
        {"\xC3\xA9t\xC3\xA9", 6, true},           /* été */
        {"\xE2\x82\xAC", 3, true},                 /* U+20AC */
        {"\xF0\x9F\x98\x80", 4, true},             /* U+1F600 */
        {"\xF4\x8F\xBF\xBF", 4, true},             /* U+10FFFF */
        {"\xED\x9F\xBF", 3, true},                 /* U+D7FF */
        {"\xEE\x80\x80", 3, true},                 /* U+E000 */
        {"\xFF", 1, false},
        {"\x80", 1, false},                       /* lone continuation */
        {"\xC0\xAF", 2, false},                   /* overlong '/' */
        {"\xC1\xBF", 2, false},                   /* overlong */
        {"\xE0\x9F\xBF", 3, false},               /* overlong 3-byte */
        {"\xF0\x8F\xBF\xBF", 4, false},           /* overlong 4-byte */
        {"\xED\xA0\x80", 3, false},               /* surrogate U+D800 */
        {"\xED\xBF\xBF", 3, false},               /* surrogate U+DFFF */
        {"\xF4\x90\x80\x80", 4, false},           /* U+110000 */
        {"\xF5\x80\x80\x80", 4, false},
        {"\xE2\x82", 2, false},                   /* truncated */
        {"\xE2\x82\xAC", 2, false},               /* cut by the length */
        {"a\xC3", 2, false},
        {"\xC3\x28", 2, false},                   /* bad continuation */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        ck_assert_msg(tf_utf8_valid(cases[i].s, cases[i].n) == cases[i].ok, "case %zu", i);
}
END_TEST

Suite *alloc_suite(void)
{
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("arena");
    tcase_add_test(tc, arena_allocates_and_defers);
    suite_add_tcase(s, tc);
    return s;
}

Suite *problem_suite(void)
{
    Suite *s = suite_create("problem");
    TCase *tc = tcase_create("problem");
    tcase_add_test(tc, problem_collects_and_renders);
    tcase_add_test(tc, problem_table_is_complete);
    suite_add_tcase(s, tc);
    return s;
}

Suite *router_suite(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("router");
    tcase_add_test(tc, router_matches_templates);
    tcase_add_test(tc, router_refuses_routes_without_permission);
    tcase_add_test(tc, permissions_and_wildcards);
    tcase_add_test(tc, embedded_documents_are_present);
    tcase_add_test(tc, accept_negotiation);
    tcase_add_test(tc, utf8_validation);
    suite_add_tcase(s, tc);
    return s;
}

START_TEST(token_cache_hits_only_valid_identical_tokens)
{
    tf_claims c = {.sub = "user-1", .tid = "tenant-1", .iat = 1000, .exp = 2000};
    const char *tok = "header.payload.signature";
    tf_claims out;
    ck_assert(!tf_token_cache_get(tok, strlen(tok), 1500, 30, &out));
    tf_token_cache_put(tok, strlen(tok), &c);
    ck_assert(tf_token_cache_get(tok, strlen(tok), 1500, 30, &out));
    ck_assert_str_eq(out.sub, "user-1");
    ck_assert_str_eq(out.tid, "tenant-1");
    /* Expiry is checked on every hit, with the same skew as verification. */
    ck_assert(tf_token_cache_get(tok, strlen(tok), 2029, 30, &out));
    ck_assert(!tf_token_cache_get(tok, strlen(tok), 2030, 30, &out));
    /* Another token (even a prefix of this one) never hits. */
    ck_assert(!tf_token_cache_get(tok, strlen(tok) - 1, 1500, 30, &out));
    ck_assert(!tf_token_cache_get("header.payload.signaturX", strlen(tok), 1500, 30, &out));
    /* nbf in the future beyond the skew: no hit. */
    tf_claims later = c;
    later.nbf = 1600;
    tf_token_cache_put("t2", 2, &later);
    ck_assert(!tf_token_cache_get("t2", 2, 1500, 30, &out));
    ck_assert(tf_token_cache_get("t2", 2, 1580, 30, &out));
}
END_TEST

Suite *tokencache_suite(void)
{
    Suite *s = suite_create("tokencache");
    TCase *tc = tcase_create("tokencache");
    tcase_add_test(tc, token_cache_hits_only_valid_identical_tokens);
    suite_add_tcase(s, tc);
    return s;
}
