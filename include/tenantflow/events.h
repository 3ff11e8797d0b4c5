/*
 * Events module: the transactional outbox, the event feed and webhooks.
 *
 * events_publish() records a domain event in the caller's transaction, so an
 * event exists exactly when its change committed. After commit a sequencer
 * gives it its feed position (GET /v1/events), and the webhook dispatcher
 * delivers it to the tenant's subscriptions.
 */
#ifndef TENANTFLOW_EVENTS_H
#define TENANTFLOW_EVENTS_H

#include <jansson.h>
#include <stdbool.h>

#include "tenantflow/auth.h"
#include "tenantflow/db.h"
#include "tenantflow/http.h"
#include "tenantflow/jobs.h"

/* Records event `type` ("item.created", "item.transitioned", ...) with data
 * (borrowed) for the tenant tx is bound to. subject_id groups events that
 * must be delivered in order (the item id), may be NULL. */
bool events_publish(tf_tx *tx, const tf_origin *origin, const char *type, const char *subject_id,
                    const json_t *data, tf_problem *p) TF_MUST_CHECK;

/* An in-transaction subscriber: called by events_publish() for every event,
 * in the publisher's transaction (so what it writes commits with the change).
 * Returning false with p set fails the change. Register at start-up only. */
typedef bool (*events_subscriber)(tf_tx *tx, const char *type, const char *subject_id,
                                  const json_t *data, tf_problem *p);
void events_subscribe(events_subscriber fn);

bool events_register(tf_router *r, char *err, size_t errsz) TF_MUST_CHECK;
/* The SQL of the feed's page ("feed", "feed-of-type") for EXPLAIN tests, or
 * NULL. */
const char *events_sql(const char *name);

/* Webhook settings, from the environment (see config.h). */
typedef struct events_config {
    bool allow_private;  /* TENANTFLOW_WEBHOOK_ALLOW_PRIVATE */
    double retry_scale;  /* TENANTFLOW_WEBHOOK_RETRY_SCALE, 1 in production */
} events_config;

/* Start-up, before any request or job: key material (the signing key file's
 * bytes, borrowed) from which the webhook-secret encryption key is derived,
 * and the settings. */
void events_init(const unsigned char *key_material, size_t len, const events_config *cfg);

/* Adds the sequencer, the LISTEN/NOTIFY listener and the webhook dispatcher
 * (conninfo: the application role's URL, for their own connections). */
void events_jobs_add(tf_jobs *jobs, const char *conninfo);
/* Deletes events, finished webhook messages and attempts older than
 * retention_days, every interval_s (one job; safe in several processes). */
void events_purge_job_add(tf_jobs *jobs, int retention_days, unsigned interval_s);
/* Outbox lag, pending webhook messages and failed attempts on /metrics. */
void events_metrics_add(tf_pool *pool);
/* After tf_jobs_free: closes the jobs' own connections. */
void events_shutdown(void);

#endif
