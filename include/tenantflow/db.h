/*
 * PostgreSQL access: a fixed pool of libpq connections and transactions that
 * carry the Row-Level Security context.
 *
 * Every transaction begins with set_config('app.tenant_id' | 'app.actor' |
 * 'app.request_id', ..., true): the settings vanish at COMMIT or ROLLBACK, so
 * a pooled connection never carries one request's tenant into the next.
 *
 * Statements are declared once as static tf_stmt values and prepared lazily
 * on each connection, so PostgreSQL parses and plans them once per connection.
 * Parameters always travel separately from SQL text.
 *
 * Ownership: a tf_tx is bound to a request arena; every PGresult it returns is
 * cleared when that arena is freed (callers may PQclear earlier through
 * tf_tx_clear). tf_tx_commit/tf_tx_rollback return the connection to the pool;
 * both are safe to call after either (no-op), and the arena's free rolls back
 * a transaction nobody finished.
 */
#ifndef TENANTFLOW_DB_H
#define TENANTFLOW_DB_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "tenantflow/alloc.h"
#include "tenantflow/problem.h"

typedef struct tf_pool tf_pool;
typedef struct tf_tx tf_tx;

typedef struct tf_stmt {
    const char *sql;
    int nparams;
    int id; /* assigned on first use; leave 0 */
} tf_stmt;

#define TF_STMT(text, n) {.sql = (text), .nparams = (n)}

/* size connections to conninfo (URL or key=value). Connections open lazily;
 * waiters give up after wait_ms with a 503. NULL and err on bad conninfo. */
tf_pool *tf_pool_new(const char *conninfo, int size, int wait_ms, char *err, size_t errsz);
void tf_pool_free(tf_pool *pool);
/* At most max_waiters requests wait for a connection; the next one is refused
 * at once with 503 (default: no limit). */
void tf_pool_set_max_waiters(tf_pool *pool, int max_waiters);
/* True while the last attempt to (re)connect failed: the database is down
 * or out of reach. Background jobs back off while it holds. */
bool tf_pool_unreachable(tf_pool *pool);
/* Connections in use and requests waiting, for /metrics. */
void tf_pool_stats(tf_pool *pool, int *in_use, int *waiting, int *size);

enum { TF_MAX_PREFETCH = 3, TF_PREFETCH_PARAMS = 12 };

/* A statement to run together with BEGIN (see tf_tx_ctx.prefetch). */
typedef struct tf_prefetch {
    tf_stmt *stmt;
    const char *params[TF_PREFETCH_PARAMS];
} tf_prefetch;

typedef struct tf_tx_ctx {
    const char *tenant_id;  /* NULL: no tenant (RLS shows nothing) */
    const char *actor;      /* "user:<id>", "operator:<id>", "system" ... */
    const char *request_id;
    /* Reads to run in BEGIN's round trip, after the context is set. A later
     * tf_tx_exec of the same statement with the same parameters returns the
     * prefetched result instead of asking the database again. */
    tf_prefetch prefetch[TF_MAX_PREFETCH];
    size_t nprefetch;
    /* The prefetched reads are the whole transaction: COMMIT travels with
     * them, so BEGIN, context, reads and COMMIT take one round trip. Any
     * other statement, deferred write or savepoint afterwards is refused as
     * an internal error (a route that asks for this promises not to). */
    bool commit;
} tf_tx_ctx;

/* Appends a read to ctx's prefetch list (params: stmt->nparams of them, or
 * NULL for none; the strings must live as long as the transaction); false
 * when the list is full or the statement has too many parameters. */
bool tf_tx_ctx_prefetch(tf_tx_ctx *ctx, tf_stmt *stmt, const char *const *params);

/* Borrows a connection, BEGINs and sets the context. NULL with p set (503
 * when no connection could be had) on failure. A pooled connection found
 * dead at BEGIN (the server restarted, the backend was terminated) is
 * replaced once, so a request after the database recovers succeeds. */
tf_tx *tf_tx_begin(tf_pool *pool, tf_arena *arena, const tf_tx_ctx *ctx, tf_problem *p)
    TF_MUST_CHECK;
/* Changes app.tenant_id for the rest of the transaction. */
bool tf_tx_set_tenant(tf_tx *tx, const char *tenant_id, tf_problem *p) TF_MUST_CHECK;
const char *tf_tx_tenant(const tf_tx *tx);

/* Runs a prepared statement with text parameters (NULL = SQL NULL). Returns
 * the result (tuples or command ok), or NULL with p set: 503 for lost
 * connections and persistent serialization failures, 500 otherwise; the
 * SQLSTATE stays available through tf_tx_sqlstate(). */
PGresult *tf_tx_exec(tf_tx *tx, tf_stmt *stmt, const char *const *params, tf_problem *p)
    TF_MUST_CHECK;
/* Queues a write whose result nobody reads (audit records, outbox rows,
 * report facts); it runs just before COMMIT, in the same round trip, and its
 * failure fails the commit. params are copied. */
void tf_tx_defer(tf_tx *tx, tf_stmt *stmt, const char *const *params);
/* Like tf_tx_exec, for statements that must touch exactly one row: zero rows
 * becomes a 404 problem with not_found_detail. */
PGresult *tf_tx_exec_one(tf_tx *tx, tf_stmt *stmt, const char *const *params,
                         const char *not_found_detail, tf_problem *p) TF_MUST_CHECK;
/* SQLSTATE of the last failed statement ("" if none). */
const char *tf_tx_sqlstate(const tf_tx *tx);
/* Round trips to the database so far (a pipeline counts once; so does
 * preparing a statement on a connection that has not seen it). */
int tf_tx_round_trips(const tf_tx *tx);
/* True when the last failure may succeed if the whole transaction is retried. */
bool tf_tx_retryable(const tf_tx *tx);

/* One savepoint per transaction ("tf_request"): set it, or roll back to it,
 * undoing every statement (and failure) since, the writes queued with
 * tf_tx_defer since and any tf_tx_set_tenant since. False with p set (503
 * for a lost connection). */
bool tf_tx_savepoint(tf_tx *tx, tf_problem *p) TF_MUST_CHECK;
bool tf_tx_rollback_to_savepoint(tf_tx *tx, tf_problem *p) TF_MUST_CHECK;

bool tf_tx_commit(tf_tx *tx, tf_problem *p) TF_MUST_CHECK;
void tf_tx_rollback(tf_tx *tx);

/* Result helpers: value or NULL for SQL NULL. */
const char *tf_val(const PGresult *r, int row, int col);
bool tf_val_bool(const PGresult *r, int row, int col);
long long tf_val_int(const PGresult *r, int row, int col);

/* A plain connection for migrations and command-line tools (not pooled). */
PGconn *tf_db_connect(const char *conninfo, char *err, size_t errsz);

#endif
