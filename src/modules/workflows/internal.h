/* What the files of the workflows module share. */
#ifndef TENANTFLOW_WORKFLOWS_INTERNAL_H
#define TENANTFLOW_WORKFLOWS_INTERNAL_H

#include "tenantflow/auth.h"
#include "tenantflow/db.h"
#include "tenantflow/jobs.h"
#include "tenantflow/workflows.h"

/* An item's representation (column 0, JSON text) and its version (column 1),
 * selected from rows aliased i. */
#define WF_ITEM_JSON                                                                          \
    "jsonb_build_object('id', i.id, 'workflow', i.workflow_key,"                            \
    " 'workflow_version', i.workflow_version, 'state', i.state, 'title', i.title,"          \
    " 'attributes', i.attributes, 'external_ref', i.external_ref, 'version', i.version,"    \
    " 'created_at', platform.rfc3339(i.created_at),"                                        \
    " 'updated_at', platform.rfc3339(i.updated_at),"                                        \
    " 'state_entered_at', platform.rfc3339(i.state_entered_at),"                            \
    " 'due_at', platform.rfc3339(i.due_at))::text, i.version"

enum {
    WF_MAX_STATES = 100,
    WF_MAX_TRANSITIONS = 200,
    WF_MAX_ATTRIBUTES_BYTES = 64 * 1024,
};

/* Validates a definition body, collecting every problem with a pointer.
 * key_required: POST needs "key"; PUT takes it from the path (a body key
 * must then equal path_key). */
bool wf_validate_definition(const json_t *body, bool key_required, const char *path_key,
                            tf_problem *p);
/* Parses an ISO 8601 duration (PnYnMnWnDTnHnMnS, integers); false if bad or
 * possibly longer than WF_SLA_MAX_YEARS (a year counted as 366 days, a month
 * as 31), so that now() + sla is always a timestamp PostgreSQL can hold. */
enum { WF_SLA_MAX_YEARS = 100 };
bool wf_parse_duration(const char *s);
/* The state object named name, or NULL. */
const json_t *wf_state(const json_t *def, const char *name);
/* The transition object named name, or NULL. */
const json_t *wf_transition(const json_t *def, const char *name);
/* True when transition t may leave state. */
bool wf_leaves(const json_t *t, const char *state);

/* Records the audit entry and the domain event of an item change in tx:
 * before/after (borrowed) go to the audit record, item (borrowed, the item
 * after the change) is the event's data, extra (stolen, may be NULL) is merged
 * into it. False with p set when either cannot be written. */
bool wf_record_change(tf_tx *tx, const tf_origin *o, const char *action, const char *item_id,
                      const json_t *before, const json_t *after, const json_t *item,
                      json_t *extra, tf_problem *p) TF_MUST_CHECK;

/* One transition to fire. All strings borrowed. */
typedef struct wf_fire {
    const char *item_id;
    const char *transition;
    const char *comment;            /* may be NULL */
    const tf_principal *principal;  /* NULL: the system actor (no permission, no guards) */
    const char *if_match;           /* the If-Match header, or NULL */
    const char *expected_state;     /* timers: do nothing unless the item is still here */
    const tf_origin *origin;        /* who, for history, audit and event */
} wf_fire;

typedef enum { WF_FIRED, WF_SKIPPED, WF_FAILED } wf_fire_result;

/* Locks the item, checks in the contract's order and applies the transition
 * with its history row, audit record and event, all in tx. WF_FIRED sets *out
 * to the item (WF_ITEM_JSON columns; owned by tx's arena); WF_SKIPPED when
 * expected_state no longer holds; WF_FAILED with p set. */
wf_fire_result wf_fire_transition(tf_tx *tx, const wf_fire *f, PGresult **out, tf_problem *p)
    TF_MUST_CHECK;
/* Reply with an item row (WF_ITEM_JSON columns) and its ETag. */
void wf_reply_item(tf_req *req, int status, const PGresult *r);
/* The item id from the path, or NULL with a 404 set. */
const char *wf_item_id(tf_req *req);

/* Validates title and attributes members of an item body (create or patch). */
bool wf_check_item_fields(const json_t *body, tf_problem *p);

void wf_create_workflow(tf_req *req);
void wf_put_workflow(tf_req *req);
void wf_get_workflow(tf_req *req);
void wf_get_version(tf_req *req);
void wf_list_workflows(tf_req *req);

void wf_create_item(tf_req *req);
void wf_prefetch_create(tf_req *req, tf_tx_ctx *ctx);
void wf_get_item(tf_req *req);
void wf_prefetch_list(tf_req *req, tf_tx_ctx *ctx);
void wf_prefetch_item(tf_req *req, tf_tx_ctx *ctx);
void wf_transition_item(tf_req *req);
void wf_prefetch_transition(tf_req *req, tf_tx_ctx *ctx);
tf_stmt *wf_lock_item_stmt(void);
void wf_item_history(tf_req *req);
void wf_list_items(tf_req *req);
void wf_patch_item(tf_req *req);

/* The SQL of GET /v1/items for a set of filters (see list.c), static. */
const char *wf_list_sql(unsigned mask);
/* The timer job's per-tenant scan (see timers.c), static. */
const char *wf_timer_scan_sql(void);
/* One round of the SLA timer job (see timers.c). */
void wf_timers_run(tf_pool *pool, void *arg);

#endif
