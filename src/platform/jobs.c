/*
 * Background job threads (see jobs.h). Each thread sleeps on its own
 * condition variable, so waking one job never disturbs another, and stop is
 * prompt: it signals every thread and joins them.
 */
#include "tenantflow/jobs.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tenantflow/log.h"

struct runner {
    tf_jobs *jobs;
    const tf_job *job;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool woken, started;
};

struct tf_jobs {
    tf_pool *pool;
    struct runner *runners;
    size_t n;
    atomic_bool stopping;
};

tf_jobs *tf_jobs_new(tf_pool *pool)
{
    tf_jobs *j = tf_xcalloc(1, sizeof *j);
    j->pool = pool;
    return j;
}

void tf_jobs_add(tf_jobs *jobs, const tf_job *job)
{
    jobs->runners = tf_xrealloc(jobs->runners, (jobs->n + 1) * sizeof *jobs->runners);
    struct runner *r = &jobs->runners[jobs->n++];
    memset(r, 0, sizeof *r);
    r->job = job;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
}

static struct timespec after_ms(unsigned ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

enum { MAX_BACKOFF_MS = 30000 };

static void *loop(void *arg)
{
    struct runner *r = arg;
    unsigned backoff = 0;
    while (!atomic_load(&r->jobs->stopping)) {
        r->job->run(r->jobs->pool, r->job->arg);
        /* While the database is out of reach every round fails and logs so;
         * the rounds space out (doubling up to MAX_BACKOFF_MS) instead of
         * filling the journal ten lines a second. */
        unsigned wait = r->job->interval_ms;
        if (r->jobs->pool && tf_pool_unreachable(r->jobs->pool)) {
            backoff = backoff ? backoff * 2 : 1000;
            if (backoff > MAX_BACKOFF_MS)
                backoff = MAX_BACKOFF_MS;
            if (wait < backoff)
                wait = backoff;
        } else {
            backoff = 0;
        }
        struct timespec until = after_ms(wait);
        pthread_mutex_lock(&r->lock);
        if (r->job->min_gap_ms) {
            /* Wake-ups during the gap are kept (woken) for after it. */
            struct timespec gap = after_ms(r->job->min_gap_ms);
            while (!atomic_load(&r->jobs->stopping))
                if (pthread_cond_timedwait(&r->wake, &r->lock, &gap) == ETIMEDOUT)
                    break;
        }
        while (!r->woken && !atomic_load(&r->jobs->stopping))
            if (pthread_cond_timedwait(&r->wake, &r->lock, &until) == ETIMEDOUT)
                break;
        r->woken = false;
        pthread_mutex_unlock(&r->lock);
    }
    return NULL;
}

bool tf_jobs_start(tf_jobs *jobs)
{
    for (size_t i = 0; i < jobs->n; i++) {
        struct runner *r = &jobs->runners[i];
        r->jobs = jobs;
        if (pthread_create(&r->thread, NULL, loop, r) != 0) {
            tf_log(TF_LOG_ERROR, "cannot start job %s", r->job->name);
            return false;
        }
        r->started = true;
    }
    return true;
}

static void signal_runner(struct runner *r)
{
    pthread_mutex_lock(&r->lock);
    r->woken = true;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
}

void tf_jobs_wake(tf_jobs *jobs, const char *name)
{
    for (size_t i = 0; jobs && i < jobs->n; i++)
        if (strcmp(jobs->runners[i].job->name, name) == 0)
            signal_runner(&jobs->runners[i]);
}

bool tf_jobs_stopping(const tf_jobs *jobs)
{
    return atomic_load(&((tf_jobs *)(uintptr_t)jobs)->stopping);
}

void tf_jobs_free(tf_jobs *jobs)
{
    if (!jobs)
        return;
    atomic_store(&jobs->stopping, true);
    for (size_t i = 0; i < jobs->n; i++)
        signal_runner(&jobs->runners[i]);
    for (size_t i = 0; i < jobs->n; i++) {
        if (jobs->runners[i].started)
            pthread_join(jobs->runners[i].thread, NULL);
        pthread_mutex_destroy(&jobs->runners[i].lock);
        pthread_cond_destroy(&jobs->runners[i].wake);
    }
    free(jobs->runners);
    free(jobs);
}
