/*
 * Background jobs: each job runs in its own thread, every interval_ms or
 * sooner when woken, until the server stops. Jobs that must run on one
 * process only (timers, the webhook dispatcher) take a pg_try_advisory_lock
 * themselves, so several server processes can run side by side.
 */
#ifndef TENANTFLOW_JOBS_H
#define TENANTFLOW_JOBS_H

#include <stdbool.h>

#include "tenantflow/db.h"

typedef struct tf_job {
    const char *name;
    unsigned interval_ms;
    /* One round of work. Must return promptly when tf_jobs_stopping(). */
    void (*run)(tf_pool *pool, void *arg);
    void *arg;
    /* At least this long between two rounds however often the job is woken:
     * a burst of wake-ups becomes one round (0: none). */
    unsigned min_gap_ms;
} tf_job;

typedef struct tf_jobs tf_jobs;

tf_jobs *tf_jobs_new(tf_pool *pool);
/* Registers a job (the struct must outlive the jobs); call before start. */
void tf_jobs_add(tf_jobs *jobs, const tf_job *job);
bool tf_jobs_start(tf_jobs *jobs) TF_MUST_CHECK;
/* Runs the named job's next round now. */
void tf_jobs_wake(tf_jobs *jobs, const char *name);
/* True once stop was requested: long rounds should check it. */
bool tf_jobs_stopping(const tf_jobs *jobs);
/* Stops and joins every job thread, then frees. Safe on NULL. */
void tf_jobs_free(tf_jobs *jobs);

#endif
