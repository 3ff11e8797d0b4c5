/*
 * /healthz answers while the process runs; /readyz answers 200 only when the
 * database is reachable and its schema is at least at the version this
 * binary expects, so a load balancer never routes to a server whose
 * migrations are behind (a newer schema is fine: migrations only add).
 */
#include "tenantflow/ops.h"

#include <stdio.h>

#include "tenantflow/metrics.h"

static tf_pool *pool;
static int expected;

static void healthz(tf_req *req)
{
    tf_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

static tf_stmt version_stmt = TF_STMT("SELECT platform.schema_version()", 0);

static void readyz(tf_req *req)
{
    tf_problem *p = tf_req_problem(req);
    tf_tx_ctx ctx = {.request_id = tf_req_id(req)};
    tf_tx *tx = tf_tx_begin(pool, tf_req_arena(req), &ctx, p);
    if (!tx)
        return;
    PGresult *r = tf_tx_exec(tx, &version_stmt, NULL, p);
    long long have = r ? tf_val_int(r, 0, 0) : -1;
    tf_tx_rollback(tx);
    if (!r) {
        tf_problem_clear(p);
        tf_problem_set(p, TF_PB_UNAVAILABLE, "The database is not reachable.");
        p->retry_after = 5;
        return;
    }
    if (have < expected) {
        tf_problem_set(p, TF_PB_UNAVAILABLE,
                       "The database schema is at version %lld; this server needs %d.", have,
                       expected);
        p->retry_after = 5;
        return;
    }
    tf_reply_json(req, 200, json_pack("{s:s, s:i}", "status", "ready", "schema", expected));
}

static const tf_route routes[] = {
    {"GET", "/healthz", TF_PUBLIC, healthz, NULL, "Liveness: the process is running",
     TF_ROUTE_INLINE, NULL},
    {"GET", "/readyz", TF_PUBLIC, readyz, NULL,
     "Readiness: database reachable and schema current", 0, NULL},
};

/* Pool gauges, read at scrape time. */
static bool pool_gauge(void *which, double *v)
{
    int in_use, waiting, size;
    tf_pool_stats(pool, &in_use, &waiting, &size);
    const char *w = which;
    *v = w[0] == 'u' ? in_use : w[0] == 'w' ? waiting : size;
    return true;
}

bool tf_ops_register(tf_router *r, tf_pool *p, int expected_schema, char *err, size_t errsz)
{
    pool = p;
    expected = expected_schema;
    if (p) {
        tf_metrics_gauge_fn("tf_db_pool_connections_in_use",
                            "Database connections lent to a request or job.", pool_gauge, "u");
        tf_metrics_gauge_fn("tf_db_pool_waiting", "Requests waiting for a database connection.",
                            pool_gauge, "w");
        tf_metrics_gauge_fn("tf_db_pool_size", "Database connections in the pool (at most).",
                            pool_gauge, "s");
    }
    return tf_router_add_all(r, routes, sizeof routes / sizeof *routes, err, errsz);
}
