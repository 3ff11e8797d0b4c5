/* What the files of the workflows module share. */
#ifndef TENANTFLOW_WORKFLOWS_INTERNAL_H
#define TENANTFLOW_WORKFLOWS_INTERNAL_H

#include "tenantflow/workflows.h"

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
/* Parses an ISO 8601 duration (PnYnMnWnDTnHnMnS, integers); false if bad. */
bool wf_parse_duration(const char *s);
/* The state object named name, or NULL. */
const json_t *wf_state(const json_t *def, const char *name);
/* The transition object named name, or NULL. */
const json_t *wf_transition(const json_t *def, const char *name);
/* True when transition t may leave state. */
bool wf_leaves(const json_t *t, const char *state);

void wf_create_workflow(tf_req *req);
void wf_put_workflow(tf_req *req);
void wf_get_workflow(tf_req *req);
void wf_get_version(tf_req *req);
void wf_list_workflows(tf_req *req);

void wf_create_item(tf_req *req);
void wf_get_item(tf_req *req);
void wf_transition_item(tf_req *req);
void wf_item_history(tf_req *req);

#endif
