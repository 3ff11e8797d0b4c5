/*
 * The strict JSON layer: every JSONTestSuite parsing case, a table of our own
 * edge cases, and the collecting validator. Inputs are copied into buffers of
 * exactly their length (no terminating NUL), so a parser that read past the
 * end would be caught by AddressSanitizer.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"
#include "tenantflow/json.h"

/* y_ files the contract refuses on purpose (docs/json-implementation-defined.md). */
static const char *const refused_y[] = {
    "y_object_duplicated_key.json", "y_object_duplicated_key_and_value.json",
    "y_object_escaped_null_in_key.json", "y_string_null_escape.json"};
/* i_ files accepted; every other i_ file is refused. */
static const char *const accepted_i[] = {"i_number_double_huge_neg_exp.json",
                                         "i_number_real_underflow.json"};

static bool listed(const char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0)
            return true;
    return false;
}

/* Parses exactly len bytes from a private copy; returns whether it parsed. */
static bool parses(const char *data, size_t len, tf_problem *p)
{
    char *copy = malloc(len ? len : 1);
    memcpy(copy, data, len);
    json_t *v = tf_json_parse(copy, len, p);
    free(copy);
    bool ok = v != NULL;
    json_decref(v);
    return ok;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n > 0 ? (size_t)n : 1);
    *len = fread(buf, 1, (size_t)n, f);
    fclose(f);
    return buf;
}

START_TEST(json_test_suite)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/JSONTestSuite/test_parsing", tf_test_testdata());
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "no JSONTestSuite at %s", dir);
    int counted = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (name[0] != 'y' && name[0] != 'n' && name[0] != 'i')
            continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        size_t len;
        char *buf = read_all(path, &len);
        tf_problem p = {0};
        bool ok = parses(buf, len, &p);
        free(buf);
        bool want;
        if (name[0] == 'y')
            want = !listed(refused_y, sizeof refused_y / sizeof *refused_y, name);
        else if (name[0] == 'n')
            want = false;
        else
            want = listed(accepted_i, sizeof accepted_i / sizeof *accepted_i, name);
        ck_assert_msg(ok == want, "%s: parsed=%d, expected %d (%s)", name, ok, want, p.detail);
        if (!ok)
            ck_assert_int_eq(p.kind, TF_PB_INVALID_JSON);
        tf_problem_clear(&p);
        counted++;
    }
    closedir(d);
    ck_assert_int_gt(counted, 300);
}
END_TEST

static const struct {
    const char *text;
    size_t len; /* 0: strlen */
    bool ok;
} cases[] = {
    {"{\"a\":1}", 0, true},
    {"{\"a\":1,\"a\":2}", 0, false},
    {"{\"x\":{\"a\":1,\"a\":1}}", 0, false},
    {"[{\"a\":1},{\"a\":1}]", 0, true},      /* same key in sibling objects is fine */
    {"\"a\\u0000b\"", 0, false},
    {"\"caf\xc3\xa9\"", 0, true},
    {"\"\xc3\"", 0, false},
    {"\"\xed\xa0\x80\"", 0, false},
    {"{} x", 0, false},
    {"{} \n\t ", 0, true},
    {"\xef\xbb\xbf{}", 0, false},
    {"9223372036854775807", 0, true},
    {"-9223372036854775808", 0, true},
    {"9223372036854775808", 0, false},
    {"1e400", 0, false},
    {"1.5e300", 0, true},
    {"", 0, false},
    {"   ", 0, false},
    {"{\"a\":1}\0", 8, false},
    {"\"[[[[\"", 0, true},
};

START_TEST(edge_cases)
{
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tf_problem p = {0};
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
        bool ok = parses(cases[i].text, len, &p);
        ck_assert_msg(ok == cases[i].ok, "case %zu (%s): parsed=%d", i, cases[i].text, ok);
        if (!ok) {
            ck_assert_int_eq(tf_problem_status(&p), 400);
            json_t *d = json_string(p.detail);
            ck_assert_msg(d != NULL, "detail is valid UTF-8");
            json_decref(d);
        }
        tf_problem_clear(&p);
    }
}
END_TEST

static char *nested(int depth, char open, char close, const char *inner)
{
    size_t n = strlen(inner);
    char *s = malloc((size_t)depth * 2 + n + 1);
    memset(s, open, (size_t)depth);
    memcpy(s + depth, inner, n);
    memset(s + depth + n, close, (size_t)depth);
    s[depth * 2 + n] = '\0';
    return s;
}

START_TEST(depth_cap)
{
    tf_problem p = {0};
    char *ok = nested(64, '[', ']', "");
    ck_assert(parses(ok, strlen(ok), &p));
    char *bad = nested(65, '[', ']', "");
    ck_assert(!parses(bad, strlen(bad), &p));
    ck_assert_ptr_nonnull(strstr(p.detail, "64"));
    tf_problem_clear(&p);
    /* Brackets inside strings do not count, escaped quotes do not end strings. */
    char *strs = nested(60, '[', ']', "\"[[[[[[[[[[\\\"[[[[[\"");
    ck_assert(parses(strs, strlen(strs), &p));
    ck_assert_int_eq(tf_json_depth(strs, strlen(strs), 64), 60);
    /* Objects count like arrays. */
    char buf[1024] = "";
    for (int i = 0; i < 65; i++)
        strcat(buf, "{\"a\":");
    strcat(buf, "1");
    for (int i = 0; i < 65; i++)
        strcat(buf, "}");
    ck_assert(!parses(buf, strlen(buf), &p));
    tf_problem_clear(&p);
    free(ok);
    free(bad);
    free(strs);
}
END_TEST

static const tf_json_field fields[] = {
    {"name", TF_JT_STRING, true, false},
    {"count", TF_JT_INTEGER, false, false},
    {"roles", TF_JT_STRING_ARRAY, false, false},
    {"note", TF_JT_STRING, false, true},
};

static json_t *errors_of(const char *body, bool *ok)
{
    json_t *v = json_loads(body, 0, NULL);
    tf_problem p = {0};
    *ok = tf_json_check(v, "", fields, sizeof fields / sizeof *fields, &p);
    json_t *errs = p.errors ? json_incref(p.errors) : json_array();
    if (!*ok)
        ck_assert_int_eq(tf_problem_status(&p), 422);
    tf_problem_clear(&p);
    json_decref(v);
    return errs;
}

static const char *pointer_at(json_t *errs, size_t i)
{
    return json_string_value(json_object_get(json_array_get(errs, i), "pointer"));
}

START_TEST(check_collects_every_error)
{
    bool ok;
    json_t *e = errors_of("{\"name\":\"x\",\"count\":3,\"roles\":[\"a\"],\"note\":null}", &ok);
    ck_assert(ok);
    ck_assert_int_eq(json_array_size(e), 0);
    json_decref(e);

    e = errors_of("{\"count\":\"3\",\"roles\":[\"a\",2,\"b\",false],\"a/b~c\":1}", &ok);
    ck_assert(!ok);
    ck_assert_int_eq(json_array_size(e), 5);
    ck_assert_str_eq(pointer_at(e, 0), "/count");
    ck_assert_str_eq(pointer_at(e, 1), "/roles/1");
    ck_assert_str_eq(pointer_at(e, 2), "/roles/3");
    ck_assert_str_eq(pointer_at(e, 3), "/a~1b~0c");
    ck_assert_str_eq(pointer_at(e, 4), "/name");
    json_decref(e);

    e = errors_of("[1]", &ok);
    ck_assert(!ok);
    ck_assert_str_eq(pointer_at(e, 0), "");
    json_decref(e);

    e = errors_of("{\"name\":null}", &ok); /* not nullable */
    ck_assert(!ok);
    ck_assert_int_eq(json_array_size(e), 1);
    json_decref(e);
}
END_TEST

Suite *json_suite(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("parse");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, json_test_suite);
    tcase_add_test(tc, edge_cases);
    tcase_add_test(tc, depth_cap);
    tcase_add_test(tc, check_collects_every_error);
    suite_add_tcase(s, tc);
    return s;
}
