/*
 * Reporting: the event subscriber that records facts, the two report
 * routes, and the storage jobs. The figures themselves are computed in SQL
 * (migrations/0061_reporting_reads.sql); this file validates input, picks
 * JSON or CSV, and keeps the background upkeep running.
 *
 * The one thing to know: facts are written by the subscriber inside the
 * publishing transaction, and reports read rollups only below a watermark
 * that a fact writer and the roll-up job agree on under an advisory lock, so
 * a report is exact at any moment (see migrations/0060_reporting.sql).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tenantflow/events.h"
#include "tenantflow/json.h"
#include "tenantflow/log.h"
#include "tenantflow/reporting.h"

enum { MAX_BUCKETS = 10000, PARTITIONS_AHEAD = 3, ROLLUP_BATCH = 100 };

/* --- facts from events --- */

static tf_stmt st_published = TF_STMT(
    "SELECT reporting.workflow_published($1, $2::integer, $3::jsonb)", 3);
static tf_stmt st_created = TF_STMT(
    "SELECT reporting.item_created($1::uuid, $2, $3::integer, $4, $5::timestamptz,"
    " $6::timestamptz)", 6);
static tf_stmt st_transitioned = TF_STMT(
    "SELECT reporting.item_transitioned($1::uuid, $2, $3::timestamptz, $4::timestamptz)", 4);

static bool on_event(tf_tx *tx, const char *type, const char *subject, const json_t *data,
                     tf_problem *p)
{
    (void)subject;
    (void)p; /* the writes are deferred: failures surface at COMMIT */
    char num[24];
    if (strcmp(type, "workflow.published") == 0) {
        const json_t *states = json_object_get(data, "states");
        if (!json_is_array(states))
            return true; /* nothing to learn */
        snprintf(num, sizeof num, "%lld",
                 (long long)json_integer_value(json_object_get(data, "version")));
        char *text = json_dumps(states, JSON_COMPACT);
        const char *params[] = {tf_json_str(data, "key"), num, text};
        tf_tx_defer(tx, &st_published, params); /* runs with the COMMIT */
        free(text);
        return true;
    }
    if (strcmp(type, "item.created") == 0) {
        snprintf(num, sizeof num, "%lld",
                 (long long)json_integer_value(json_object_get(data, "workflow_version")));
        const char *params[] = {tf_json_str(data, "id"), tf_json_str(data, "workflow"), num,
                                tf_json_str(data, "state"), tf_json_str(data, "created_at"),
                                tf_json_str(data, "due_at")};
        tf_tx_defer(tx, &st_created, params);
        return true;
    }
    if (strcmp(type, "item.transitioned") == 0) {
        const char *params[] = {tf_json_str(data, "id"), tf_json_str(data, "state"),
                                tf_json_str(data, "state_entered_at"),
                                tf_json_str(data, "due_at")};
        tf_tx_defer(tx, &st_transitioned, params);
        return true;
    }
    return true;
}

void reporting_subscribe(void)
{
    events_subscribe(on_event);
}

/* --- time zones: the names PostgreSQL knows, loaded once --- */

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;
static char **tz_names;
static size_t tz_count;

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static tf_stmt st_zones = TF_STMT("SELECT name FROM pg_timezone_names", 0);

/* True when tz is a name in pg_timezone_names; false with p set on failure. */
static bool tz_known(tf_tx *tx, const char *tz, bool *known, tf_problem *p)
{
    bool ok = true;
    pthread_mutex_lock(&tz_lock);
    if (!tz_names) {
        PGresult *r = tf_tx_exec(tx, &st_zones, NULL, p);
        if (r) {
            size_t n = (size_t)PQntuples(r);
            char **names = tf_xmalloc_array(n ? n : 1, sizeof *names);
            for (size_t i = 0; i < n; i++)
                names[i] = strdup(tf_val(r, (int)i, 0));
            qsort(names, n, sizeof *names, cmp_name);
            tz_names = names;
            tz_count = n;
        } else {
            ok = false;
        }
    }
    *known = ok && bsearch(&tz, tz_names, tz_count, sizeof *tz_names, cmp_name) != NULL;
    pthread_mutex_unlock(&tz_lock);
    return ok;
}

/* --- input --- */

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* YYYY-MM-DD, or RFC 3339 date-time with a fraction and Z or an offset.
 * The values themselves are checked by PostgreSQL. */
static bool time_syntax_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 10 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
        !digits(s + 8, 2))
        return false;
    if (n == 10)
        return true;
    if (n < 20 || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2) || s[13] != ':' ||
        !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2))
        return false;
    const char *q = s + 19;
    if (*q == '.') {
        const char *d = ++q;
        while (*q >= '0' && *q <= '9')
            q++;
        if (q == d || q - d > 9)
            return false;
    }
    if ((*q == 'Z' || *q == 'z') && q[1] == '\0')
        return true;
    return (*q == '+' || *q == '-') && strlen(q) == 6 && digits(q + 1, 2) && q[3] == ':' &&
           digits(q + 4, 2);
}

typedef struct range {
    char from[64], to[64];
    const char *tz;
} range;

static tf_stmt st_range = TF_STMT(
    "SELECT $1::text IS NULL OR pf IS NOT NULL, $2::text IS NULL OR pt IS NOT NULL,"
    "  f::text, t::text, f < t, t <= f + interval '5 years'"
    " FROM (SELECT pf, pt, coalesce(pf, coalesce(pt, now()) - interval '30 days') AS f,"
    "         coalesce(pt, now()) AS t"
    "       FROM (SELECT reporting.parse_time($1, $3) AS pf,"
    "                    reporting.parse_time($2, $3) AS pt) a) b", 3);

/* Reads from, to and tz, collecting every error (400 naming the parameter).
 * Other parameters' errors may already be in p; checks stop at the ones that
 * need valid input. */
static bool read_range(tf_req *req, bool limit_span, range *out)
{
    tf_problem *p = tf_req_problem(req);
    tf_tx *tx = tf_req_tx(req);
    const char *from = tf_req_query(req, "from");
    const char *to = tf_req_query(req, "to");
    out->tz = tf_req_query(req, "tz");
    if (!out->tz)
        out->tz = "UTC";
    bool known = false;
    if (!tz_known(tx, out->tz, &known, p))
        return false;
    if (!known)
        tf_problem_bad_param(p, "tz", "must be an IANA time zone name such as Europe/Berlin");
    if (from && !time_syntax_ok(from))
        tf_problem_bad_param(p, "from", "must be an RFC 3339 timestamp or a date YYYY-MM-DD");
    if (to && !time_syntax_ok(to))
        tf_problem_bad_param(p, "to", "must be an RFC 3339 timestamp or a date YYYY-MM-DD");
    if (tf_failed(p))
        return false;
    const char *params[] = {from, to, out->tz};
    PGresult *r = tf_tx_exec(tx, &st_range, params, p);
    if (!r)
        return false;
    if (!tf_val_bool(r, 0, 0))
        tf_problem_bad_param(p, "from", "is not a valid time");
    if (!tf_val_bool(r, 0, 1))
        tf_problem_bad_param(p, "to", "is not a valid time");
    if (tf_failed(p))
        return false;
    if (!tf_val_bool(r, 0, 4))
        tf_problem_bad_param(p, "from", "must be before to (from is inclusive, to exclusive)");
    else if (limit_span && !tf_val_bool(r, 0, 5))
        tf_problem_bad_param(p, "to", "the range may span at most 5 years");
    snprintf(out->from, sizeof out->from, "%s", tf_val(r, 0, 2));
    snprintf(out->to, sizeof out->to, "%s", tf_val(r, 0, 3));
    return !tf_failed(p);
}

static void reply_csv(tf_req *req, reporting_buf *b)
{
    tf_reply_text(req, 200, "text/csv; charset=utf-8; header=present", b->data ? b->data : "",
                  b->len);
    free(b->data);
}

/* A JSON number or null as CSV text: the shortest form that reads back the
 * same double; integers as integers. */
static void csv_number(reporting_buf *b, const json_t *v)
{
    char text[40];
    if (json_is_integer(v)) {
        snprintf(text, sizeof text, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(text, sizeof text, "%.*g", prec, d);
            if (strtod(text, NULL) == d)
                break;
        }
    } else {
        reporting_csv_cell(b, NULL);
        return;
    }
    reporting_csv_cell(b, text);
}

static void csv_row(reporting_buf *b, const char *metric, const char *state, const json_t *v)
{
    reporting_csv_cell(b, metric);
    reporting_buf_append(b, ",", 1);
    reporting_csv_cell(b, state);
    reporting_buf_append(b, ",", 1);
    csv_number(b, v);
    reporting_buf_append(b, "\r\n", 2);
}

static void csv_figures(reporting_buf *b, const char *prefix, const char *state,
                        const json_t *fig)
{
    static const char *const names[] = {"avg", "p50", "p90"};
    for (size_t i = 0; i < 3; i++) {
        char metric[48];
        snprintf(metric, sizeof metric, "%s.%s", prefix, names[i]);
        csv_row(b, metric, state, json_object_get(fig, names[i]));
    }
}

static void summary_csv(tf_req *req, const json_t *s)
{
    reporting_buf b = {0};
    reporting_buf_append(&b, "metric,state,value\r\n", 20);
    const char *state;
    json_t *v;
    json_object_foreach(json_object_get(s, "wip"), state, v)
        csv_row(&b, "wip", state, v);
    csv_row(&b, "created", NULL, json_object_get(s, "created"));
    csv_row(&b, "completed", NULL, json_object_get(s, "completed"));
    csv_row(&b, "throughput_per_day", NULL, json_object_get(s, "throughput_per_day"));
    csv_figures(&b, "lead_time", NULL, json_object_get(s, "lead_time"));
    json_object_foreach(json_object_get(s, "time_in_state"), state, v)
        csv_figures(&b, "time_in_state", state, v);
    const json_t *sla = json_object_get(s, "sla");
    csv_row(&b, "sla.met", NULL, json_object_get(sla, "met"));
    csv_row(&b, "sla.breached", NULL, json_object_get(sla, "breached"));
    csv_row(&b, "sla.breach_rate", NULL, json_object_get(sla, "breach_rate"));
    reply_csv(req, &b);
}

static void series_csv(tf_req *req, const json_t *series)
{
    reporting_buf b = {0};
    reporting_buf_append(&b, "bucket_start,value\r\n", 20);
    size_t i;
    const json_t *row;
    json_array_foreach(series, i, row)
    {
        reporting_csv_cell(&b, tf_json_str(row, "bucket_start"));
        reporting_buf_append(&b, ",", 1);
        csv_number(&b, json_object_get(row, "value"));
        reporting_buf_append(&b, "\r\n", 2);
    }
    reply_csv(req, &b);
}

/* Replies with the report text from SQL as JSON, or converted to CSV. */
static void reply_report(tf_req *req, const char *text, void (*to_csv)(tf_req *, const json_t *))
{
    if (tf_req_media(req) != TF_MEDIA_CSV) {
        tf_reply_text(req, 200, "application/json; charset=utf-8", text, strlen(text));
        return;
    }
    json_t *doc = json_loads(text, JSON_DECODE_ANY, NULL);
    if (!doc) {
        tf_problem_internal(tf_req_problem(req), "report is not JSON");
        return;
    }
    to_csv(req, doc);
    json_decref(doc);
}

/* --- routes --- */

static tf_stmt st_summary = TF_STMT(
    "SELECT reporting.summary($1, $2::timestamptz, $3::timestamptz)::text", 3);

static void get_summary(tf_req *req)
{
    range rg;
    if (!read_range(req, true, &rg))
        return;
    const char *params[] = {tf_req_param(req, "key"), rg.from, rg.to};
    PGresult *r = tf_tx_exec(tf_req_tx(req), &st_summary, params, tf_req_problem(req));
    if (!r)
        return;
    if (!tf_val(r, 0, 0)) {
        tf_problem_set(tf_req_problem(req), TF_PB_NOT_FOUND, "No such workflow.");
        return;
    }
    reply_report(req, tf_val(r, 0, 0), summary_csv);
}

static tf_stmt st_buckets = TF_STMT(
    "SELECT reporting.bucket_count($1, $2::timestamptz, $3::timestamptz, $4, $5::integer)", 5);
static tf_stmt st_series = TF_STMT(
    "SELECT reporting.timeseries($1, $2, $3, $4::timestamptz, $5::timestamptz, $6)::text", 6);

static bool one_of(const char *v, const char *const *allowed, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        if (strcmp(v, allowed[i]) == 0)
            return true;
    return false;
}

static void get_timeseries(tf_req *req)
{
    static const char *const metrics[] = {"created", "completed", "transitions"};
    static const char *const buckets[] = {"hour", "day", "week", "month"};
    tf_problem *p = tf_req_problem(req);
    const char *metric = tf_req_query(req, "metric");
    const char *bucket = tf_req_query(req, "bucket");
    if (!one_of(metric, metrics, 3))
        tf_problem_bad_param(p, "metric", "must be created, completed or transitions");
    if (!bucket)
        bucket = "day";
    else if (!one_of(bucket, buckets, 4))
        tf_problem_bad_param(p, "bucket", "must be hour, day, week or month");
    range rg;
    if (!read_range(req, false, &rg) || tf_failed(p))
        return;
    char cap[16];
    snprintf(cap, sizeof cap, "%d", MAX_BUCKETS);
    const char *bp[] = {bucket, rg.from, rg.to, rg.tz, cap};
    PGresult *r = tf_tx_exec(tf_req_tx(req), &st_buckets, bp, p);
    if (!r)
        return;
    if (tf_val_int(r, 0, 0) > MAX_BUCKETS) {
        tf_problem_bad_param(p, "bucket", "the range holds more than %d buckets of this size",
                             MAX_BUCKETS);
        return;
    }
    const char *params[] = {tf_req_param(req, "key"), metric, bucket, rg.from, rg.to, rg.tz};
    r = tf_tx_exec(tf_req_tx(req), &st_series, params, p);
    if (!r)
        return;
    if (!tf_val(r, 0, 0)) {
        tf_problem_set(p, TF_PB_NOT_FOUND, "No such workflow.");
        return;
    }
    reply_report(req, tf_val(r, 0, 0), series_csv);
}

static const tf_route routes[] = {
    {"GET", "/v1/reports/workflows/{key}/summary", "reports:read", get_summary, "from,to,tz",
     "A workflow's KPIs over [from, to): WIP, created, completed, lead time, time in state, SLA",
     TF_ROUTE_CSV, NULL},
    {"GET", "/v1/reports/workflows/{key}/timeseries", "reports:read", get_timeseries,
     "metric,bucket,from,to,tz",
     "Created, completed or transitions per hour, day, week or month in a time zone",
     TF_ROUTE_CSV, NULL},
};

bool reporting_register(tf_router *r, char *err, size_t errsz)
{
    return tf_router_add_all(r, routes, sizeof routes / sizeof *routes, err, errsz);
}

/* --- background upkeep --- */

static tf_stmt st_partitions = TF_STMT("SELECT reporting.ensure_partitions($1::integer)", 1);
static tf_stmt st_pending = TF_STMT(
    "SELECT tenant_id, workflow_key FROM reporting.rollup_pending($1::integer)", 1);
static tf_stmt st_roll = TF_STMT("SELECT reporting.roll_up($1)", 1);

static void log_failure(const char *job, tf_problem *p)
{
    if (tf_failed(p))
        tf_log_json(TF_LOG_WARN, "job failed",
                    json_pack("{s:s, s:s, s:s}", "job", job, "detail", p->detail, "log", p->log));
    tf_problem_clear(p);
}

static void run_partitions(tf_pool *pool, void *arg)
{
    (void)arg;
    tf_arena *a = tf_arena_new();
    tf_problem p = {0};
    tf_tx_ctx ctx = {.actor = "system"};
    tf_tx *tx = tf_tx_begin(pool, a, &ctx, &p);
    char ahead[8];
    snprintf(ahead, sizeof ahead, "%d", PARTITIONS_AHEAD);
    const char *params[] = {ahead};
    PGresult *r = tx ? tf_tx_exec(tx, &st_partitions, params, &p) : NULL;
    if (r && tf_tx_commit(tx, &p) && tf_val_int(r, 0, 0) > 0)
        tf_log(TF_LOG_INFO, "reporting: created %lld fact partitions", tf_val_int(r, 0, 0));
    log_failure("reporting-partitions", &p);
    tf_arena_free(a);
}

/* Folds one workflow of one tenant; false on failure (logged). */
static bool roll_one(tf_pool *pool, const char *tenant, const char *workflow)
{
    tf_arena *a = tf_arena_new();
    tf_problem p = {0};
    tf_tx_ctx ctx = {.tenant_id = tenant, .actor = "system"};
    tf_tx *tx = tf_tx_begin(pool, a, &ctx, &p);
    const char *params[] = {workflow};
    bool ok = tx && tf_tx_exec(tx, &st_roll, params, &p) && tf_tx_commit(tx, &p);
    log_failure("reporting-rollup", &p);
    tf_arena_free(a);
    return ok;
}

static void run_rollup(tf_pool *pool, void *arg)
{
    (void)arg;
    tf_arena *a = tf_arena_new();
    tf_problem p = {0};
    tf_tx_ctx ctx = {.actor = "system"};
    tf_tx *tx = tf_tx_begin(pool, a, &ctx, &p);
    char lim[8];
    snprintf(lim, sizeof lim, "%d", ROLLUP_BATCH);
    const char *params[] = {lim};
    PGresult *r = tx ? tf_tx_exec(tx, &st_pending, params, &p) : NULL;
    if (r && tf_tx_commit(tx, &p)) {
        for (int i = 0; i < PQntuples(r); i++)
            if (!roll_one(pool, tf_val(r, i, 0), tf_val(r, i, 1)))
                break;
    }
    log_failure("reporting-rollup", &p);
    tf_arena_free(a);
}

const tf_job reporting_partition_job = {"reporting-partitions", 3600 * 1000, run_partitions,
                                        NULL, 0};
const tf_job reporting_rollup_job = {"reporting-rollup", 60 * 1000, run_rollup, NULL, 0};
