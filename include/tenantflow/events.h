/*
 * Events module: the transactional outbox, the event feed and webhooks.
 *
 * events_publish() records a domain event in the caller's transaction, so an
 * event exists exactly when its change committed.
 */
#ifndef TENANTFLOW_EVENTS_H
#define TENANTFLOW_EVENTS_H

#include <jansson.h>
#include <stdbool.h>

#include "tenantflow/auth.h"
#include "tenantflow/db.h"
#include "tenantflow/http.h"

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

#endif
