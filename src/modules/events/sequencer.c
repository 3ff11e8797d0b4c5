/*
 * The sequencer and the LISTEN/NOTIFY listener.
 *
 * Sequencer: each round, under pg_try_advisory_xact_lock(SEQ_LOCK) so only
 * one process numbers at a time, events.assign_positions() numbers the
 * committed events that have no position yet, continuing after the last
 * position handed out. A batch commits atomically, and the next batch starts
 * only after it (the lock), so positions become visible in increasing order:
 * a reader that has seen position p will find every event it has not seen
 * above p. An event whose transaction is still open is simply not numbered
 * yet; it gets a position after the ones numbered before its commit (feed
 * order is the order in which commits were observed, one batch at a time).
 * The batch NOTIFYs the channel, which wakes the webhook dispatcher.
 *
 * Listener: one connection per process LISTENs on EVENTS_CHANNEL and wakes
 * this process's sequencer and dispatcher when a notification arrives (a
 * publishing transaction committed, or a batch was numbered). The jobs also
 * run on a timer, so a lost notification only delays, never loses, work.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include "internal.h"
#include "tenantflow/log.h"

#define SEQ_LOCK "7466000000000002"
enum { SEQ_BATCH = 1000, LISTEN_WAIT_MS = 500 };

static tf_stmt try_lock = TF_STMT("SELECT pg_try_advisory_xact_lock(" SEQ_LOCK ")", 0);
static tf_stmt assign = TF_STMT("SELECT events.assign_positions($1::integer)", 1);

static int sequence_batch(tf_pool *pool)
{
    tf_arena *a = tf_arena_new();
    tf_problem p = {0};
    tf_tx_ctx ctx = {.actor = "system"};
    int n = -1;
    tf_tx *tx = tf_tx_begin(pool, a, &ctx, &p);
    PGresult *r = tx ? tf_tx_exec(tx, &try_lock, NULL, &p) : NULL;
    if (r && tf_val_bool(r, 0, 0)) {
        char lim[16];
        snprintf(lim, sizeof lim, "%d", SEQ_BATCH);
        const char *params[] = {lim};
        r = tf_tx_exec(tx, &assign, params, &p);
        if (r && tf_tx_commit(tx, &p))
            n = (int)tf_val_int(r, 0, 0);
    }
    if (tf_failed(&p))
        tf_log(TF_LOG_WARN, "event sequencer: %s %s", p.detail, p.log);
    tf_problem_clear(&p);
    tf_arena_free(a);
    return n;
}

void events_sequence_round(tf_pool *pool, void *arg)
{
    (void)arg;
    for (int i = 0; i < 50; i++)
        if (sequence_batch(pool) < SEQ_BATCH)
            break;
}

/* ---- listener ----------------------------------------------------------- */

static tf_jobs *jobs_ref;
static char *listen_conninfo;
static PGconn *listen_conn;

void events_listen_set_jobs(tf_jobs *jobs, const char *conninfo)
{
    jobs_ref = jobs;
    free(listen_conninfo);
    listen_conninfo = tf_xstrdup(conninfo);
}

bool events_stopping(void)
{
    return jobs_ref && tf_jobs_stopping(jobs_ref);
}

static void wake_all(void)
{
    tf_jobs_wake(jobs_ref, "events.sequencer");
    tf_jobs_wake(jobs_ref, "webhooks.dispatcher");
}

static bool ensure_listening(void)
{
    if (listen_conn && PQstatus(listen_conn) == CONNECTION_OK)
        return true;
    PQfinish(listen_conn);
    char err[256];
    listen_conn = tf_db_connect(listen_conninfo, err, sizeof err);
    if (!listen_conn)
        return false;
    PGresult *r = PQexec(listen_conn, "LISTEN " EVENTS_CHANNEL);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        PQfinish(listen_conn);
        listen_conn = NULL;
        return false;
    }
    wake_all(); /* anything published while we were not listening */
    return true;
}

void events_listen_round(tf_pool *pool, void *arg)
{
    (void)pool;
    (void)arg;
    if (!ensure_listening()) {
        struct timespec ts = {0, LISTEN_WAIT_MS * 1000000L};
        nanosleep(&ts, NULL);
        return;
    }
    int fd = PQsocket(listen_conn);
    fd_set set;
    FD_ZERO(&set);
    FD_SET(fd, &set);
    struct timeval tv = {0, LISTEN_WAIT_MS * 1000};
    int rc = select(fd + 1, &set, NULL, NULL, &tv);
    if (rc < 0 && errno != EINTR)
        return;
    if (rc > 0 && !PQconsumeInput(listen_conn)) {
        PQfinish(listen_conn); /* reconnect next round */
        listen_conn = NULL;
        return;
    }
    bool woke = false;
    PGnotify *n;
    while ((n = PQnotifies(listen_conn)) != NULL) {
        woke = true;
        PQfreemem(n);
    }
    if (woke)
        wake_all();
}

void events_listen_shutdown(void)
{
    PQfinish(listen_conn);
    listen_conn = NULL;
    free(listen_conninfo);
    listen_conninfo = NULL;
}
