/*
 * Workflows module: state-machine definitions, items and transitions.
 */
#ifndef TENANTFLOW_WORKFLOWS_H
#define TENANTFLOW_WORKFLOWS_H

#include <stdbool.h>

#include "tenantflow/http.h"
#include "tenantflow/jobs.h"

bool workflows_register(tf_router *r, char *err, size_t errsz) TF_MUST_CHECK;

/* The SLA timer job (fires due on_timeout transitions as the system actor),
 * checking every interval_ms; the caller adds it with tf_jobs_add. */
tf_job workflows_timer_job(unsigned interval_ms);

/* The exact SQL text of a hot query, for EXPLAIN tests (`tenantflow sql`):
 * "timer-scan", or "list-items" with filters, a comma-separated subset of
 * workflow,state,created_after,created_before,q,attributes,open,closed,cursor
 * (in that parameter order; the limit is the last parameter). Static text,
 * or NULL for an unknown name or filter. */
const char *workflows_sql(const char *name, const char *filters);

/* Pending and due SLA timers on /metrics. */
void workflows_metrics_add(tf_pool *pool);

#endif
