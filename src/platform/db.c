/*
 * The libpq connection pool and RLS-aware transactions (see db.h).
 *
 * The one thing to know: a connection goes back to the pool only when it is
 * idle outside any transaction. Anything else (a failed COMMIT, a lost
 * connection, an abandoned transaction) is rolled back or the connection is
 * reset before another request can see it, so no tenant context, lock or
 * half-done work can leak between requests.
 *
 * Under overload a request waits for a connection only while fewer than
 * max_waiters others are already waiting; past that it is refused at once
 * (503 with Retry-After), so a burst cannot pile up threads and memory.
 * Waiters are served in arrival order: a released connection is handed to
 * the oldest waiter, never left for whichever thread asks next. (With a
 * free-for-all, the thread that has just released a connection asks again
 * before the woken waiter is scheduled and wins, so a request whose worker
 * waited behind a background job could be passed over again and again.)
 */
#include "tenantflow/db.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tenantflow/log.h"
#include "tenantflow/metrics.h"

enum { MAX_STMTS = 1024 };

static int next_stmt_id; /* ids start at 1; 0 means "not yet assigned" */

struct slot {
    PGconn *conn;
    bool busy;
    unsigned char prepared[MAX_STMTS / 8];
};

/* A thread waiting for a connection, on its own stack; release() fills got. */
struct waiter {
    struct waiter *next;
    pthread_cond_t handed;
    struct slot *got;
};

struct tf_pool {
    char *conninfo;
    int size, wait_ms, waiting, in_use, max_waiters;
    tf_metric *rejected_full, *rejected_timeout;
    struct slot *slots;
    pthread_mutex_t lock;
    struct waiter *first, *last; /* FIFO of waiting threads */
    atomic_bool unreachable;     /* the last (re)connect failed */
};

struct deferred {
    struct deferred *next;
    tf_stmt *stmt;
    const char **params; /* copies in the arena */
};

struct tf_tx {
    tf_pool *pool;
    struct slot *slot;
    tf_arena *arena;
    struct deferred *deferred, **deferred_tail;
    size_t ndeferred;
    /* results read together with BEGIN, waiting for their tf_tx_exec */
    tf_prefetch pre[TF_MAX_PREFETCH];
    PGresult *pre_result[TF_MAX_PREFETCH];
    size_t npre;
    /* State at the savepoint, restored by a rollback to it. */
    struct deferred **sp_tail;
    size_t sp_ndeferred;
    char sp_tenant[40];
    bool done;
    bool committed; /* COMMIT went with the prefetched reads (tf_tx_ctx.commit) */
    int round_trips;
    char tenant[40];
    char sqlstate[6];
    bool lost; /* the last failure was the connection's (see connection_lost) */
};

/* Notices and warnings from the server (a backend told to shut down says
 * so before it goes) become log lines like any other, not raw stderr text. */
static void log_notice(void *arg, const char *message)
{
    (void)arg;
    size_t n = strlen(message);
    while (n && (message[n - 1] == '\n' || message[n - 1] == ' '))
        n--;
    tf_log(TF_LOG_WARN, "database notice: %.*s", (int)n, message);
}

PGconn *tf_db_connect(const char *conninfo, char *err, size_t errsz)
{
    PGconn *c = PQconnectdb(conninfo);
    if (c)
        PQsetNoticeProcessor(c, log_notice, NULL);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        snprintf(err, errsz, "cannot connect to PostgreSQL: %s",
                 c ? PQerrorMessage(c) : "out of memory");
        size_t n = strlen(err);
        while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
            err[--n] = '\0';
        PQfinish(c);
        return NULL;
    }
    return c;
}

tf_pool *tf_pool_new(const char *conninfo, int size, int wait_ms, char *err, size_t errsz)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (!opts) {
        snprintf(err, errsz, "bad database URL: %s", perr ? perr : "out of memory");
        PQfreemem(perr);
        return NULL;
    }
    PQconninfoFree(opts);
    tf_pool *pool = tf_xcalloc(1, sizeof *pool);
    pool->conninfo = tf_xstrdup(conninfo);
    pool->size = size;
    pool->wait_ms = wait_ms;
    pool->max_waiters = 1 << 30;
    pool->rejected_full = tf_metrics_counter(
        "tf_db_pool_rejected_total{reason=\"queue_full\"}",
        "Requests refused with 503 because no database connection could be had.");
    pool->rejected_timeout = tf_metrics_counter(
        "tf_db_pool_rejected_total{reason=\"timeout\"}",
        "Requests refused with 503 because no database connection could be had.");
    pool->slots = tf_xcalloc((size_t)size, sizeof(struct slot));
    pthread_mutex_init(&pool->lock, NULL);
    return pool;
}

void tf_pool_free(tf_pool *pool)
{
    if (!pool)
        return;
    for (int i = 0; i < pool->size; i++)
        PQfinish(pool->slots[i].conn);
    free(pool->slots);
    free(pool->conninfo);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

void tf_pool_stats(tf_pool *pool, int *in_use, int *waiting, int *size)
{
    pthread_mutex_lock(&pool->lock);
    *in_use = pool->in_use;
    *waiting = pool->waiting;
    *size = pool->size;
    pthread_mutex_unlock(&pool->lock);
}

void tf_pool_set_max_waiters(tf_pool *pool, int max_waiters)
{
    pthread_mutex_lock(&pool->lock);
    pool->max_waiters = max_waiters;
    pthread_mutex_unlock(&pool->lock);
}

static struct slot *free_slot(tf_pool *pool)
{
    for (int i = 0; i < pool->size; i++)
        if (!pool->slots[i].busy)
            return &pool->slots[i];
    return NULL;
}

/* Takes w out of the wait queue (it timed out before being handed a slot). */
static void unqueue(tf_pool *pool, struct waiter *w)
{
    struct waiter **pp = &pool->first, *prev = NULL;
    while (*pp != w) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    *pp = w->next;
    if (pool->last == w)
        pool->last = prev;
}

/* A free connection, or NULL with *full set when the wait queue was full
 * (refused at once) and clear when the wait timed out. */
static struct slot *acquire(tf_pool *pool, bool *full)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += pool->wait_ms / 1000;
    deadline.tv_nsec += (long)(pool->wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&pool->lock);
    struct slot *got = pool->first ? NULL : free_slot(pool);
    if (got) {
        got->busy = true;
        pool->in_use++;
    }
    *full = !got && pool->waiting >= pool->max_waiters;
    if (!got && !*full) {
        struct waiter w = {.next = NULL, .got = NULL};
        pthread_cond_init(&w.handed, NULL);
        if (pool->last)
            pool->last->next = &w;
        else
            pool->first = &w;
        pool->last = &w;
        pool->waiting++;
        while (!w.got)
            if (pthread_cond_timedwait(&w.handed, &pool->lock, &deadline) == ETIMEDOUT) {
                if (!w.got)
                    unqueue(pool, &w);
                break;
            }
        pool->waiting--;
        pthread_cond_destroy(&w.handed);
        got = w.got; /* release() marked it busy and counted it in use */
    }
    pthread_mutex_unlock(&pool->lock);
    if (!got)
        tf_metrics_inc(*full ? pool->rejected_full : pool->rejected_timeout, 1);
    return got;
}

static void release(tf_pool *pool, struct slot *s)
{
    if (s->conn && PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
        PGresult *r = PQexec(s->conn, "ROLLBACK");
        PQclear(r);
        if (PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
            /* Unknown state: drop the connection rather than reuse it. */
            PQfinish(s->conn);
            s->conn = NULL;
        }
    }
    pthread_mutex_lock(&pool->lock);
    struct waiter *w = pool->first;
    if (w) { /* straight to the oldest waiter: still busy, still in use */
        pool->first = w->next;
        if (!pool->first)
            pool->last = NULL;
        w->got = s;
        pthread_cond_signal(&w->handed);
    } else {
        s->busy = false;
        pool->in_use--;
    }
    pthread_mutex_unlock(&pool->lock);
}

static void drop_connection(struct slot *s)
{
    PQfinish(s->conn);
    s->conn = NULL;
    memset(s->prepared, 0, sizeof s->prepared);
}

/* Makes sure the slot holds a live connection; reconnects after a loss. */
static bool ensure_connected(tf_pool *pool, struct slot *s, char *err, size_t errsz)
{
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK)
        return true;
    PQfinish(s->conn);
    memset(s->prepared, 0, sizeof s->prepared);
    s->conn = tf_db_connect(pool->conninfo, err, errsz);
    atomic_store(&pool->unreachable, s->conn == NULL);
    return s->conn != NULL;
}

bool tf_pool_unreachable(tf_pool *pool)
{
    return atomic_load(&pool->unreachable);
}

static void abandon(void *ptr)
{
    tf_tx_rollback(ptr);
}

static void clear_result(void *ptr)
{
    PQclear(ptr);
}

static bool set_context(tf_tx *tx, const tf_tx_ctx *ctx, tf_problem *p);
static bool pipeline(tf_tx *tx, bool begin, size_t n, tf_stmt *const *stmts,
                     const char *const *const *params, PGresult **out, bool commit,
                     tf_problem *p);

tf_tx *tf_tx_begin(tf_pool *pool, tf_arena *arena, const tf_tx_ctx *ctx, tf_problem *p)
{
    bool full;
    struct slot *s = acquire(pool, &full);
    if (!s) {
        tf_problem_set(p, TF_PB_UNAVAILABLE,
                       full ? "The server is at capacity; retry shortly."
                            : "All database connections are busy; retry shortly.");
        p->retry_after = 1;
        return NULL;
    }
    char err[256];
    if (!ensure_connected(pool, s, err, sizeof err)) {
        release(pool, s);
        tf_problem_set(p, TF_PB_UNAVAILABLE, "The database is unreachable; retry shortly.");
        tf_problem_log(p, "%s", err);
        p->retry_after = 2;
        return NULL;
    }
    tf_tx *tx = tf_arena_alloc(arena, sizeof *tx);
    memset(tx, 0, sizeof *tx);
    tx->pool = pool;
    tx->slot = s;
    tx->arena = arena;
    tf_arena_defer(arena, abandon, tx);
    bool ok = set_context(tx, ctx, p);
    if (!ok && tx->lost) {
        /* A pooled connection found dead (the database restarted, the
         * backend was terminated): nothing ran on it, so a fresh one may
         * simply begin. */
        tf_problem_clear(p);
        tx->sqlstate[0] = '\0';
        tx->lost = false;
        drop_connection(s);
        if (ensure_connected(pool, s, err, sizeof err)) {
            ok = set_context(tx, ctx, p);
        } else {
            tf_problem_set(p, TF_PB_UNAVAILABLE, "The database is unreachable; retry shortly.");
            tf_problem_log(p, "%s", err);
            p->retry_after = 2;
        }
    }
    if (!ok) {
        tf_tx_rollback(tx);
        return NULL;
    }
    return tx;
}

static tf_stmt set_ctx_stmt = TF_STMT(
    "SELECT set_config('app.tenant_id', $1, true), set_config('app.actor', $2, true),"
    " set_config('app.request_id', $3, true)", 3);

static bool set_context(tf_tx *tx, const tf_tx_ctx *ctx, tf_problem *p)
{
    const char *tenant = ctx && ctx->tenant_id ? ctx->tenant_id : "";
    snprintf(tx->tenant, sizeof tx->tenant, "%s", tenant);
    const char *params[] = {tenant, ctx && ctx->actor ? ctx->actor : "",
                            ctx && ctx->request_id ? ctx->request_id : ""};
    /* BEGIN, the context and the prefetched reads travel in one round trip. */
    tf_stmt *stmts[1 + TF_MAX_PREFETCH] = {&set_ctx_stmt};
    const char *const *plist[1 + TF_MAX_PREFETCH] = {params};
    PGresult *out[1 + TF_MAX_PREFETCH];
    size_t n = ctx && ctx->nprefetch <= TF_MAX_PREFETCH ? ctx->nprefetch : 0;
    for (size_t i = 0; i < n; i++) {
        tx->pre[i] = ctx->prefetch[i];
        stmts[1 + i] = tx->pre[i].stmt;
        plist[1 + i] = tx->pre[i].params;
    }
    bool commit = ctx && ctx->commit;
    if (!pipeline(tx, true, 1 + n, stmts, plist, out, commit, p))
        return false;
    for (size_t i = 0; i < n; i++)
        tx->pre_result[i] = out[1 + i];
    tx->npre = n;
    tx->committed = commit;
    return true;
}

bool tf_tx_ctx_prefetch(tf_tx_ctx *ctx, tf_stmt *stmt, const char *const *params)
{
    if (ctx->nprefetch >= TF_MAX_PREFETCH || stmt->nparams > TF_PREFETCH_PARAMS)
        return false;
    tf_prefetch *pf = &ctx->prefetch[ctx->nprefetch++];
    memset(pf, 0, sizeof *pf);
    pf->stmt = stmt;
    for (int i = 0; i < stmt->nparams; i++)
        pf->params[i] = params[i];
    return true;
}

/* After an early COMMIT only the prefetched results remain to be taken. */
static bool still_open(tf_tx *tx, const char *what, tf_problem *p)
{
    if (tx->done || tx->committed) {
        tf_problem_internal(p, "%s on a %s transaction", what,
                            tx->done ? "finished" : "committed read-only");
        return false;
    }
    return true;
}

static tf_stmt set_tenant_stmt = TF_STMT("SELECT set_config('app.tenant_id', $1, true)", 1);

bool tf_tx_set_tenant(tf_tx *tx, const char *tenant_id, tf_problem *p)
{
    const char *params[] = {tenant_id};
    if (!tf_tx_exec(tx, &set_tenant_stmt, params, p))
        return false;
    snprintf(tx->tenant, sizeof tx->tenant, "%s", tenant_id);
    return true;
}

const char *tf_tx_tenant(const tf_tx *tx)
{
    return tx->tenant[0] ? tx->tenant : NULL;
}

static int stmt_id(tf_stmt *stmt)
{
    int id = __atomic_load_n(&stmt->id, __ATOMIC_ACQUIRE);
    if (id)
        return id;
    int fresh = __atomic_add_fetch(&next_stmt_id, 1, __ATOMIC_ACQ_REL);
    if (fresh >= MAX_STMTS) {
        tf_log(TF_LOG_ERROR, "more than %d SQL statements declared", MAX_STMTS - 1);
        abort();
    }
    int expected = 0;
    if (__atomic_compare_exchange_n(&stmt->id, &expected, fresh, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE))
        return fresh;
    return expected; /* another thread won; its id stands, ours is unused */
}

/* The connection, not the statement, failed: libpq's own errors carry no
 * SQLSTATE (a closed socket is seen as one before PQstatus turns bad, in
 * pipeline mode especially), class 08 is a connection exception, and 57P01-03
 * mean the server is shutting down or not yet accepting work. */
static bool connection_lost(const tf_tx *tx)
{
    const char *st = tx->sqlstate;
    return PQstatus(tx->slot->conn) != CONNECTION_OK || st[0] == '\0' ||
           strncmp(st, "08", 2) == 0 || strncmp(st, "57P0", 4) == 0;
}

static void fail(tf_tx *tx, PGresult *r, const char *sql, tf_problem *p)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(tx->sqlstate, sizeof tx->sqlstate, "%s", state ? state : "");
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(tx->slot->conn);
    tx->lost = connection_lost(tx);
    if (tx->lost) {
        tf_problem_set(p, TF_PB_UNAVAILABLE, "The database connection was lost; retry shortly.");
        p->retry_after = 2;
    } else if (tf_tx_retryable(tx)) {
        tf_problem_set(p, TF_PB_UNAVAILABLE, "Too much contention; retry shortly.");
        p->retry_after = 1;
    } else {
        p->kind = TF_PB_INTERNAL;
        snprintf(p->detail, sizeof p->detail, "The server could not complete the request.");
    }
    tf_problem_log(p, "sqlstate=%s sql=\"%.80s\" error=%s", tx->sqlstate, sql, msg);
}

/* Prepares stmt on this connection unless it already is; writes its name. */
static bool prepare(tf_tx *tx, tf_stmt *stmt, char name[16], tf_problem *p)
{
    struct slot *s = tx->slot;
    int id = stmt_id(stmt);
    snprintf(name, 16, "s%d", id);
    if (s->prepared[id / 8] & (1u << (id % 8)))
        return true;
    tx->round_trips++;
    PGresult *r = PQprepare(s->conn, name, stmt->sql, stmt->nparams, NULL);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (ok)
        s->prepared[id / 8] |= (unsigned char)(1u << (id % 8));
    else
        fail(tx, r, stmt->sql, p);
    PQclear(r);
    return ok;
}

static bool same_params(const tf_stmt *stmt, const char *const *a, const char *const *b)
{
    for (int i = 0; i < stmt->nparams && i < TF_PREFETCH_PARAMS; i++) {
        if (!a[i] != !b[i] || (a[i] && strcmp(a[i], b[i]) != 0))
            return false;
    }
    return stmt->nparams <= TF_PREFETCH_PARAMS;
}

/* A result read with BEGIN for exactly this statement and these parameters. */
static PGresult *take_prefetched(tf_tx *tx, tf_stmt *stmt, const char *const *params)
{
    for (size_t i = 0; i < tx->npre; i++) {
        if (tx->pre_result[i] && tx->pre[i].stmt == stmt &&
            same_params(stmt, tx->pre[i].params, params)) {
            PGresult *r = tx->pre_result[i];
            tx->pre_result[i] = NULL;
            return r;
        }
    }
    return NULL;
}

PGresult *tf_tx_exec(tf_tx *tx, tf_stmt *stmt, const char *const *params, tf_problem *p)
{
    PGresult *pre = tx->npre && !tx->done ? take_prefetched(tx, stmt, params) : NULL;
    if (pre)
        return pre;
    if (!still_open(tx, "statement", p))
        return NULL;
    char name[16];
    if (!prepare(tx, stmt, name, p))
        return NULL;
    tx->round_trips++;
    PGresult *r = PQexecPrepared(tx->slot->conn, name, stmt->nparams, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        fail(tx, r, stmt->sql, p);
        PQclear(r);
        return NULL;
    }
    tf_arena_defer(tx->arena, clear_result, r);
    return r;
}

/*
 * Sends n prepared statements (after a BEGIN when begin is set, followed by
 * COMMIT when commit is set) in one round trip with libpq's pipeline mode,
 * then reads every result up to the sync point, so the connection is never
 * left mid-pipeline. The first failure sets p; the statements after it were
 * not executed (PostgreSQL aborts the rest of the pipeline). out may be NULL
 * when the results are not wanted.
 */
static bool pipeline(tf_tx *tx, bool begin, size_t n, tf_stmt *const *stmts,
                     const char *const *const *params, PGresult **out, bool commit,
                     tf_problem *p)
{
    PGconn *c = tx->slot->conn;
    char (*names)[16] = n ? tf_arena_alloc(tx->arena, n * sizeof *names) : NULL;
    for (size_t i = 0; i < n; i++) {
        if (out)
            out[i] = NULL;
        if (!prepare(tx, stmts[i], names[i], p))
            return false;
    }
    bool sent = PQenterPipelineMode(c) == 1;
    if (sent && begin)
        sent = PQsendQueryParams(c, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) == 1;
    for (size_t i = 0; sent && i < n; i++)
        sent = PQsendQueryPrepared(c, names[i], stmts[i]->nparams, params[i], NULL, NULL, 0) == 1;
    if (sent && commit)
        sent = PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) == 1;
    sent = sent && PQpipelineSync(c) == 1;
    tx->round_trips++;
    bool ok = sent, synced = false;
    size_t first = begin ? 1 : 0; /* results before the statements */
    size_t k = 0;                 /* index of the result that comes next */
    for (int nulls = 0; sent && !synced;) {
        PGresult *r = PQgetResult(c);
        if (!r) {
            if (++nulls >= 2 || PQstatus(c) != CONNECTION_OK)
                break;
            continue;
        }
        nulls = 0;
        ExecStatusType st = PQresultStatus(r);
        bool is_stmt = k >= first && k < first + n;
        if (st == PGRES_PIPELINE_SYNC) {
            synced = true;
        } else if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
            /* COMMIT of an aborted transaction reports "ROLLBACK". */
            if (commit && k == first + n && strcmp(PQcmdStatus(r), "COMMIT") != 0 && ok) {
                fail(tx, r, "COMMIT", p);
                ok = false;
            }
            if (is_stmt && out) {
                out[k - first] = r;
                tf_arena_defer(tx->arena, clear_result, r);
                k++;
                continue;
            }
            k++;
        } else {
            /* The first real error explains the failure; the statements
             * after it only report PGRES_PIPELINE_ABORTED. */
            if (st != PGRES_PIPELINE_ABORTED && ok)
                fail(tx, r, is_stmt ? stmts[k - first]->sql : k < first ? "BEGIN" : "COMMIT", p);
            ok = false;
            k++;
        }
        PQclear(r);
    }
    PQexitPipelineMode(c);
    if (!synced && !tf_failed(p)) {
        tf_problem_set(p, TF_PB_UNAVAILABLE, "The database connection was lost; retry shortly.");
        tf_problem_log(p, "pipeline: %s", PQerrorMessage(c));
        p->retry_after = 2;
        ok = false;
    }
    return ok && synced;
}

void tf_tx_defer(tf_tx *tx, tf_stmt *stmt, const char *const *params)
{
    struct deferred *d = tf_arena_alloc(tx->arena, sizeof *d);
    d->next = NULL;
    d->stmt = stmt;
    d->params = tf_arena_alloc(tx->arena, (size_t)(stmt->nparams ? stmt->nparams : 1) *
                                              sizeof *d->params);
    for (int i = 0; i < stmt->nparams; i++)
        d->params[i] = params[i] ? tf_arena_strdup(tx->arena, params[i]) : NULL;
    if (!tx->deferred_tail)
        tx->deferred_tail = &tx->deferred;
    *tx->deferred_tail = d;
    tx->deferred_tail = &d->next;
    tx->ndeferred++;
}

PGresult *tf_tx_exec_one(tf_tx *tx, tf_stmt *stmt, const char *const *params,
                         const char *not_found_detail, tf_problem *p)
{
    PGresult *r = tf_tx_exec(tx, stmt, params, p);
    if (!r)
        return NULL;
    bool none = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) == 0
                                                     : strcmp(PQcmdTuples(r), "0") == 0;
    if (none) {
        tf_problem_set(p, TF_PB_NOT_FOUND, "%s", not_found_detail);
        return NULL;
    }
    return r;
}

const char *tf_tx_sqlstate(const tf_tx *tx)
{
    return tx->sqlstate;
}

int tf_tx_round_trips(const tf_tx *tx)
{
    return tx->round_trips;
}

bool tf_tx_retryable(const tf_tx *tx)
{
    return strcmp(tx->sqlstate, "40001") == 0 || strcmp(tx->sqlstate, "40P01") == 0;
}

static bool simple(tf_tx *tx, const char *sql, tf_problem *p)
{
    if (!still_open(tx, sql, p))
        return false;
    tx->round_trips++;
    PGresult *r = PQexec(tx->slot->conn, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fail(tx, r, sql, p);
    PQclear(r);
    return ok;
}

bool tf_tx_savepoint(tf_tx *tx, tf_problem *p)
{
    if (!simple(tx, "SAVEPOINT tf_request", p))
        return false;
    if (!tx->deferred_tail)
        tx->deferred_tail = &tx->deferred;
    tx->sp_tail = tx->deferred_tail;
    tx->sp_ndeferred = tx->ndeferred;
    memcpy(tx->sp_tenant, tx->tenant, sizeof tx->tenant);
    return true;
}

bool tf_tx_rollback_to_savepoint(tf_tx *tx, tf_problem *p)
{
    if (!tx->sp_tail) {
        tf_problem_internal(p, "rollback to a savepoint never set");
        return false;
    }
    if (!simple(tx, "ROLLBACK TO SAVEPOINT tf_request", p))
        return false;
    /* Writes deferred since the savepoint are undone too; so is any change
     * of app.tenant_id (PostgreSQL reverts the setting itself). */
    *tx->sp_tail = NULL;
    tx->deferred_tail = tx->sp_tail;
    tx->ndeferred = tx->sp_ndeferred;
    memcpy(tx->tenant, tx->sp_tenant, sizeof tx->tenant);
    tx->sqlstate[0] = '\0'; /* the failure was undone */
    return true;
}

bool tf_tx_commit(tf_tx *tx, tf_problem *p)
{
    if (tx->committed && !tx->ndeferred) {
        tx->done = true;
        release(tx->pool, tx->slot);
        return true;
    }
    if (!still_open(tx, "commit", p))
        return false;
    /* Deferred writes and the COMMIT travel in one round trip. */
    size_t n = tx->ndeferred;
    tf_stmt **stmts = tf_arena_alloc(tx->arena, (n ? n : 1) * sizeof *stmts);
    const char *const **params = tf_arena_alloc(tx->arena, (n ? n : 1) * sizeof *params);
    size_t i = 0;
    for (struct deferred *d = tx->deferred; d; d = d->next, i++) {
        stmts[i] = d->stmt;
        params[i] = d->params;
    }
    bool ok = pipeline(tx, false, n, stmts, params, NULL, true, p);
    tx->done = true;
    if (tx->lost)
        drop_connection(tx->slot);
    release(tx->pool, tx->slot);
    return ok;
}

void tf_tx_rollback(tf_tx *tx)
{
    if (!tx || tx->done)
        return;
    tx->done = true;
    if (tx->lost)
        drop_connection(tx->slot); /* a ROLLBACK on it would only wait and fail */
    else if (tx->slot->conn && PQtransactionStatus(tx->slot->conn) != PQTRANS_IDLE)
        tx->round_trips++;
    release(tx->pool, tx->slot); /* release rolls back whatever is open */
}

const char *tf_val(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    return PQgetvalue(r, row, col);
}

bool tf_val_bool(const PGresult *r, int row, int col)
{
    const char *v = tf_val(r, row, col);
    return v && v[0] == 't';
}

long long tf_val_int(const PGresult *r, int row, int col)
{
    const char *v = tf_val(r, row, col);
    return v ? strtoll(v, NULL, 10) : 0;
}
