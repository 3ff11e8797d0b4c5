/*
 * The transactional outbox (see events.h).
 */
#include <stdlib.h>

#include "tenantflow/events.h"

enum { MAX_SUBSCRIBERS = 8 };
static events_subscriber subscribers[MAX_SUBSCRIBERS];
static size_t nsubscribers;

void events_subscribe(events_subscriber fn)
{
    if (nsubscribers < MAX_SUBSCRIBERS)
        subscribers[nsubscribers++] = fn;
}

static tf_stmt insert_event = TF_STMT(
    "INSERT INTO events.outbox (tenant_id, type, subject_id, actor_type, actor_id, data)"
    " VALUES (platform.current_tenant(), $1, $2, $3, $4, $5::jsonb)", 5);

bool events_publish(tf_tx *tx, const tf_origin *o, const char *type, const char *subject_id,
                    const json_t *data, tf_problem *p)
{
    char *text = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
    const char *params[] = {type, subject_id, tf_actor_type_name(o->actor_type), o->actor_id,
                            text ? text : "null"};
    PGresult *r = tf_tx_exec(tx, &insert_event, params, p);
    free(text);
    for (size_t i = 0; r && i < nsubscribers; i++)
        if (!subscribers[i](tx, type, subject_id, data, p))
            return false;
    return r != NULL;
}

bool events_register(tf_router *r, char *err, size_t errsz)
{
    (void)r;
    (void)err;
    (void)errsz;
    return true; /* the feed and webhook routes come with the dispatcher */
}
