/*
 * GET /v1/items: filters, newest first, keyset pagination on (created_at, id).
 *
 * The one thing to know: every combination of filters has its own SQL text,
 * assembled once from constant fragments (never from input; values travel as
 * parameters) and prepared per connection, so each combination gets a plan
 * that uses the index made for it (see migrations/0020_workflow_engine.sql)
 * instead of one catch-all "$1 IS NULL OR ..." plan. `tenantflow sql` prints
 * these texts, so the EXPLAIN tests run exactly what the server runs.
 *
 * The cursor is bound to the tenant and to a canonical encoding of the filter
 * set: a cursor minted for other filters or another tenant is a 400.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tenantflow/crypto.h"
#include "tenantflow/cursor.h"
#include "tenantflow/json.h"
#include "tenantflow/text.h"

enum {
    F_WORKFLOW = 1 << 0,
    F_STATE = 1 << 1,
    F_AFTER = 1 << 2,
    F_BEFORE = 1 << 3,
    F_Q = 1 << 4,
    F_ATTRS = 1 << 5,
    F_OPEN = 1 << 6,
    F_CLOSED = 1 << 7,
    F_CURSOR = 1 << 8,
    F_ALL = 1 << 9,
};

/* The condition each filter adds, in parameter order; "$" is replaced by the
 * parameter's number. */
static const char *const conditions[] = {
    " AND i.workflow_key = $",
    " AND i.state = $",
    " AND i.created_at >= $::timestamptz",
    " AND i.created_at < $::timestamptz",
    " AND lower(i.title) LIKE '%' || lower($) || '%'",
    " AND i.attributes @> $::jsonb",
    " AND i.open",
    " AND NOT i.open",
    " AND (i.created_at, i.id) < ($::timestamptz, $::uuid)",
};

static char *texts[F_ALL];
static tf_stmt stmts[F_ALL];
static pthread_once_t built = PTHREAD_ONCE_INIT;

/* The largest page plus the row that tells whether there is a next one. */
enum { MOST_ROWS = TF_LIMIT_MAX + 1 };

/* Plans and the page size. PostgreSQL cannot cost "LIMIT $n": it assumes a
 * tenth of the rows, which makes the plan that ignores the value (the
 * generic plan) look twenty times dearer than one planned for it, so it
 * re-plans the statement on every call (~0.1-0.3 ms of its CPU per page,
 * a quarter of what a page costs it). Where the plan does not depend on the
 * values (equality, ranges and the keyset on indexed columns), the query is
 * the page of a subquery capped by a constant: its cost is then known, the
 * generic plan is chosen after PostgreSQL's five trial plans, and rows are
 * still read only as far as the outer LIMIT asks. Title search and attribute
 * containment keep "LIMIT $n": their best plan depends on how rare the value
 * is, so they are planned for each value. */
static bool plan_once(unsigned mask)
{
    return !(mask & (F_Q | F_ATTRS));
}

static char *build(unsigned mask, int *nparams)
{
    char buf[2048];
    size_t len = (size_t)snprintf(buf, sizeof buf,
                                  "%sSELECT " WF_ITEM_JSON ", platform.rfc3339(i.created_at), i.id"
                                  " FROM workflow.items i"
                                  " WHERE i.tenant_id = platform.current_tenant()",
                                  plan_once(mask) ? "SELECT * FROM (" : "");
    int n = 0;
    for (size_t f = 0; f < sizeof conditions / sizeof *conditions; f++) {
        if (!(mask & (1u << f)))
            continue;
        for (const char *c = conditions[f]; *c; c++) {
            if (*c == '$')
                len += (size_t)snprintf(buf + len, sizeof buf - len, "$%d", ++n);
            else if (len + 1 < sizeof buf)
                buf[len++] = *c;
        }
        buf[len] = '\0';
    }
    if (plan_once(mask))
        snprintf(buf + len, sizeof buf - len,
                 " ORDER BY i.created_at DESC, i.id DESC LIMIT %d) page LIMIT $%d::integer",
                 MOST_ROWS, ++n);
    else
        snprintf(buf + len, sizeof buf - len,
                 " ORDER BY i.created_at DESC, i.id DESC LIMIT $%d::integer", ++n);
    *nparams = n;
    return tf_xstrdup(buf);
}

static void build_all(void)
{
    for (unsigned m = 0; m < F_ALL; m++) {
        int n = 0;
        texts[m] = build(m, &n);
        stmts[m].sql = texts[m];
        stmts[m].nparams = n;
    }
}

const char *wf_list_sql(unsigned mask)
{
    pthread_once(&built, build_all);
    return mask < F_ALL ? texts[mask] : NULL;
}

/* A query value of human text: valid UTF-8, min..max code points, no
 * control characters. */
static bool text_param(const char *name, const char *v, size_t max, tf_problem *p)
{
    json_t *probe = json_string(v); /* NULL for invalid UTF-8 */
    bool ok = probe != NULL;
    json_decref(probe);
    if (!ok || !tf_text_no_controls(v) || tf_utf8_length(v) < 1 || tf_utf8_length(v) > max) {
        tf_problem_bad_param(p, name, "must be 1 to %zu characters of UTF-8 text without "
                                      "control characters", max);
        return false;
    }
    return true;
}

/* LIKE pattern text for v: \, % and _ escaped (backslash is LIKE's escape). */
static char *like_escape(tf_arena *a, const char *v)
{
    size_t n = strlen(v);
    char *out = tf_arena_alloc(a, 2 * n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '\\' || v[i] == '%' || v[i] == '_')
            out[j++] = '\\';
        out[j++] = v[i];
    }
    out[j] = '\0';
    return out;
}

typedef struct query {
    unsigned mask;
    const char *params[12];
    int n;
    json_t *canon; /* the filter set, for the cursor's scope */
} query;

static void add(query *q, unsigned flag, const char *value)
{
    q->mask |= flag;
    if (value)
        q->params[q->n++] = value;
}

/* Reads and validates every filter (collecting all errors). */
static bool read_filters(tf_req *req, query *q, tf_problem *p)
{
    tf_arena *a = tf_req_arena(req);
    const char *wf = tf_req_query(req, "workflow");
    if (wf) {
        if (!tf_is_slug(wf, 1, 63))
            tf_problem_bad_param(p, "workflow", "must be a workflow key");
        else {
            add(q, F_WORKFLOW, wf);
            json_object_set_new(q->canon, "workflow", json_string(wf));
        }
    }
    const char *state = tf_req_query(req, "state");
    if (state && text_param("state", state, 200, p)) {
        add(q, F_STATE, state);
        json_object_set_new(q->canon, "state", json_string(state));
    }
    static const char *const times[] = {"created_after", "created_before"};
    for (int i = 0; i < 2; i++) {
        const char *v = tf_req_query(req, times[i]);
        long long us;
        if (!v)
            continue;
        if (!tf_parse_rfc3339(v, &us)) {
            tf_problem_bad_param(p, times[i], "must be an RFC 3339 date-time with an offset, "
                                              "such as 2026-01-31T09:00:00Z");
            continue;
        }
        char *norm = tf_arena_strdup(a, v);
        norm[10] = 'T';
        size_t len = strlen(norm);
        if (norm[len - 1] == 'z')
            norm[len - 1] = 'Z';
        add(q, i == 0 ? F_AFTER : F_BEFORE, norm);
        json_object_set_new(q->canon, times[i], json_integer(us));
    }
    const char *text = tf_req_query(req, "q");
    if (text && text_param("q", text, 200, p)) {
        add(q, F_Q, like_escape(a, text));
        json_object_set_new(q->canon, "q", json_string(text));
    }
    const char *attrs = tf_req_query(req, "attributes");
    if (attrs) {
        tf_problem scratch = {0};
        json_t *doc = tf_json_parse(attrs, strlen(attrs), &scratch);
        if (!doc || !json_is_object(doc)) {
            tf_problem_bad_param(p, "attributes", "must be a JSON object");
        } else {
            char *canon = tf_json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
            add(q, F_ATTRS, tf_arena_strdup(a, canon));
            json_object_set_new(q->canon, "attributes", json_string(canon));
            free(canon);
        }
        json_decref(doc);
        tf_problem_clear(&scratch);
    }
    const char *open = tf_req_query(req, "open");
    if (open) {
        if (strcmp(open, "true") == 0 || strcmp(open, "false") == 0) {
            add(q, open[0] == 't' ? F_OPEN : F_CLOSED, NULL);
            json_object_set_new(q->canon, "open", json_boolean(open[0] == 't'));
        } else {
            tf_problem_bad_param(p, "open", "must be true or false");
        }
    }
    return !tf_failed(p);
}

/* Adds the cursor's position; false with a 400 naming cursor. */
static bool read_cursor(tf_req *req, query *q, const char *scope, tf_problem *p)
{
    const char *cursor = tf_req_query(req, "cursor");
    if (!cursor)
        return true;
    json_t *pos = tf_cursor_decode(scope, cursor, p);
    if (!pos)
        return false;
    const char *t = json_string_value(json_object_get(pos, "t"));
    const char *id = json_string_value(json_object_get(pos, "i"));
    bool ok = t && id && tf_uuid_parse_ok(id, strlen(id));
    if (ok) {
        tf_arena *a = tf_req_arena(req);
        q->mask |= F_CURSOR;
        q->params[q->n++] = tf_arena_strdup(a, t);
        q->params[q->n++] = tf_arena_strdup(a, id);
    } else {
        tf_problem_bad_param(p, "cursor", "not a cursor issued by this endpoint");
    }
    json_decref(pos);
    return ok;
}

/* The page's statement and parameters for the tenant, from the query
 * string; false with p set on a bad filter, limit or cursor. */
static bool page_query(tf_req *req, const char *tenant, query *q, int *limit,
                       const char **scope, tf_problem *p)
{
    tf_arena *a = tf_req_arena(req);
    q->canon = json_object();
    bool ok = tf_parse_limit(tf_req_query(req, "limit"), limit, p);
    ok = read_filters(req, q, p) && ok;
    char *filters = tf_json_dumps(q->canon, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(q->canon);
    *scope = tf_arena_printf(a, "%s|items|%s", tenant, filters);
    free(filters);
    if (!ok || !read_cursor(req, q, *scope, p))
        return false;
    q->params[q->n++] = tf_arena_printf(a, "%d", *limit + 1);
    pthread_once(&built, build_all);
    return true;
}

/* The page travels with BEGIN, the principal and COMMIT (one round trip)
 * when the query string is valid; otherwise the handler reports why. */
void wf_prefetch_list(tf_req *req, tf_tx_ctx *ctx)
{
    query q = {0};
    int limit;
    const char *scope;
    tf_problem ignored = {0};
    if (page_query(req, ctx->tenant_id, &q, &limit, &scope, &ignored) &&
        tf_tx_ctx_prefetch(ctx, &stmts[q.mask], q.params))
        ctx->commit = true;
    tf_problem_clear(&ignored);
}

void wf_list_items(tf_req *req)
{
    tf_problem *p = tf_req_problem(req);
    query q = {0};
    int limit = 0;
    const char *scope;
    if (!page_query(req, tf_tx_tenant(tf_req_tx(req)), &q, &limit, &scope, p))
        return;
    PGresult *r = tf_tx_exec(tf_req_tx(req), &stmts[q.mask], q.params, p);
    if (!r)
        return;
    int rows = PQntuples(r);
    char *next = NULL;
    if (rows > limit) {
        json_t *c = json_pack("{s:s, s:s}", "t", tf_val(r, limit - 1, 2), "i",
                              tf_val(r, limit - 1, 3));
        next = tf_cursor_encode(scope, c);
        json_decref(c);
    }
    tf_reply_list(req, r, 0, rows < limit ? rows : limit, next);
    free(next);
}
