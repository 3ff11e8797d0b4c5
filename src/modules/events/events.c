/*
 * The transactional outbox (see events.h).
 */
#include <stdlib.h>

#include "tenantflow/events.h"

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
    return r != NULL;
}

bool events_register(tf_router *r, char *err, size_t errsz)
{
    (void)r;
    (void)err;
    (void)errsz;
    return true; /* the feed and webhook routes come with the dispatcher */
}
