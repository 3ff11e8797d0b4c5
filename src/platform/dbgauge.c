/*
 * Database-backed gauges (see dbgauge.h). A background job refreshes every
 * source; a scrape only reads the cached values, so /metrics never waits for
 * the database and answers even when every connection is busy. A failed
 * query makes its gauges absent from the scrape (never a made-up zero).
 */
#include "tenantflow/dbgauge.h"

#include <pthread.h>
#include <stdlib.h>

#include "tenantflow/metrics.h"

enum { MAX_COLUMNS = 8, MAX_SOURCES = 8 };

struct source {
    tf_pool *pool;
    tf_stmt *stmt;
    int ncolumns;
    pthread_mutex_t lock;
    time_t fetched;
    bool ok;
    double values[MAX_COLUMNS];
};

struct column_ref {
    struct source *src;
    int index;
};

static struct source *sources[MAX_SOURCES];
static size_t nsources;

static void refresh(struct source *s)
{
    double values[MAX_COLUMNS];
    bool ok = false;
    tf_arena *a = tf_arena_new();
    tf_problem p = {0};
    tf_tx_ctx ctx = {.actor = "system"};
    tf_tx *tx = tf_tx_begin(s->pool, a, &ctx, &p);
    PGresult *r = tx ? tf_tx_exec(tx, s->stmt, NULL, &p) : NULL;
    if (r && PQntuples(r) == 1 && PQnfields(r) >= s->ncolumns) {
        for (int i = 0; i < s->ncolumns; i++)
            values[i] = strtod(PQgetvalue(r, 0, i), NULL);
        ok = true;
    }
    if (tx)
        tf_tx_rollback(tx);
    tf_problem_clear(&p);
    tf_arena_free(a);
    pthread_mutex_lock(&s->lock);
    s->ok = ok;
    for (int i = 0; ok && i < s->ncolumns; i++)
        s->values[i] = values[i];
    pthread_mutex_unlock(&s->lock);
}

static void refresh_all(tf_pool *pool, void *arg)
{
    (void)pool;
    (void)arg;
    for (size_t i = 0; i < nsources; i++)
        refresh(sources[i]);
}

const tf_job tf_dbgauge_job = {"metrics-refresh", 2000, refresh_all, NULL, 0};

static bool read_column(void *arg, double *value)
{
    struct column_ref *c = arg;
    pthread_mutex_lock(&c->src->lock);
    bool ok = c->src->ok;
    *value = c->src->values[c->index];
    pthread_mutex_unlock(&c->src->lock);
    return ok;
}

void tf_dbgauge_add(tf_pool *pool, tf_stmt *stmt, const tf_dbgauge_column *columns,
                    int ncolumns)
{
    /* Lives as long as the metrics registry: the life of the process. */
    struct source *s = tf_xcalloc(1, sizeof *s);
    s->pool = pool;
    s->stmt = stmt;
    s->ncolumns = ncolumns < MAX_COLUMNS ? ncolumns : MAX_COLUMNS;
    pthread_mutex_init(&s->lock, NULL);
    if (nsources < MAX_SOURCES)
        sources[nsources++] = s;
    struct column_ref *refs = tf_xcalloc((size_t)s->ncolumns, sizeof *refs);
    for (int i = 0; i < s->ncolumns; i++) {
        refs[i].src = s;
        refs[i].index = i;
        tf_metrics_gauge_fn(columns[i].name, columns[i].help, read_column, &refs[i]);
    }
}
