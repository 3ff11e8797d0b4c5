/*
 * The transition core, shared by the HTTP handler and the SLA timer job, so a
 * transition fired by a user and one fired by a timer write the same item
 * update, history row, audit record and event.
 *
 * The one thing to know: the item is read with SELECT ... FOR UPDATE, so two
 * transitions racing on one item are applied one after the other; the second
 * sees the first's new state and fails with 409 (or 412), or, for a timer,
 * finds the item no longer in the state the timer was for and does nothing.
 * Nothing here depends on an HTTP request: the caller passes the transaction,
 * who is acting and the If-Match header it received.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tenantflow/audit.h"
#include "tenantflow/events.h"
#include "tenantflow/http.h"
#include "tenantflow/json.h"

bool wf_record_change(tf_tx *tx, const tf_origin *o, const char *action, const char *item_id,
                      const json_t *before, const json_t *after, const json_t *item,
                      json_t *extra, tf_problem *p)
{
    audit_entry e = {action, "item", item_id, before, after};
    bool ok = audit_record(tx, o, &e, p);
    json_t *data = json_deep_copy(item);
    if (extra)
        json_object_update(data, extra);
    json_decref(extra);
    ok = ok && events_publish(tx, o, action, item_id, data, p);
    json_decref(data);
    return ok;
}

static tf_stmt lock_item = TF_STMT(
    "SELECT i.state, i.version, i.attributes::text, d.definition::text"
    " FROM workflow.items i JOIN workflow.definitions d"
    "   ON d.tenant_id = i.tenant_id AND d.key = i.workflow_key AND d.version = i.workflow_version"
    " WHERE i.tenant_id = platform.current_tenant() AND i.id = $1 FOR UPDATE OF i", 1);
static tf_stmt apply_transition = TF_STMT(
    "WITH i AS (UPDATE workflow.items SET state = $2, version = version + 1, updated_at = now(),"
    "   state_entered_at = now(), due_at = now() + $3::interval,"
    "   timeout_transition = CASE WHEN $3 IS NULL THEN NULL ELSE $10 END,"
    "   open = $11::boolean"
    " WHERE tenant_id = platform.current_tenant() AND id = $1 RETURNING *),"
    " h AS (INSERT INTO workflow.history (tenant_id, item_id, transition, from_state, to_state,"
    "   actor_type, actor_id, comment, request_id)"
    " SELECT platform.current_tenant(), i.id, $4, $5, i.state, $6, $7, $8, $9 FROM i)"
    " SELECT " WF_ITEM_JSON " FROM i", 11);


/* Resolves an RFC 6901 pointer inside doc; NULL when absent. */
static const json_t *pointer_get(const json_t *doc, const char *ptr)
{
    const json_t *cur = doc;
    char token[256];
    while (cur && *ptr == '/') {
        ptr++;
        size_t n = 0;
        for (; *ptr && *ptr != '/' && n + 1 < sizeof token; ptr++) {
            if (*ptr == '~' && (ptr[1] == '0' || ptr[1] == '1')) {
                token[n++] = ptr[1] == '0' ? '~' : '/';
                ptr++;
            } else {
                token[n++] = *ptr;
            }
        }
        token[n] = '\0';
        if (json_is_object(cur)) {
            cur = json_object_get(cur, token);
        } else if (json_is_array(cur)) {
            char *end = NULL;
            unsigned long idx = strtoul(token, &end, 10);
            cur = (*token && !*end) ? json_array_get(cur, idx) : NULL;
        } else {
            cur = NULL;
        }
    }
    return *ptr ? NULL : cur;
}

/* The transitions leaving state that this principal may fire. */
static json_t *allowed_from(const json_t *def, const char *state, const tf_principal *pr)
{
    json_t *names = json_array();
    size_t i;
    const json_t *t;
    json_array_foreach(json_object_get(def, "transitions"), i, t)
    {
        const char *perm = tf_json_str(t, "permission");
        if (wf_leaves(t, state) && (!perm || !pr || tf_principal_can(pr, perm)))
            json_array_append_new(names, json_string(tf_json_str(t, "name")));
    }
    return names;
}

/* Checks in the contract's order: 422 unknown, 409 not from here, 403, 412,
 * 422 guards. The system actor (pr NULL) needs no permission and is not held
 * by `requires` guards: an escalation must not wait for missing data. */
static bool check_transition(const wf_fire *f, const json_t *def, const json_t *attrs,
                             const char *state, long long version, tf_problem *p)
{
    const char *name = f->transition;
    const json_t *t = wf_transition(def, name);
    if (!t) {
        tf_problem_invalid(p, "/transition", "the item's workflow has no transition %s", name);
        return false;
    }
    if (!wf_leaves(t, state)) {
        tf_problem_set(p, TF_PB_INVALID_TRANSITION, "Transition %s is not allowed from state %s.",
                       name, state);
        tf_problem_extra(p, "current_state", json_string(state));
        tf_problem_extra(p, "allowed_transitions", allowed_from(def, state, f->principal));
        return false;
    }
    const char *perm = tf_json_str(t, "permission");
    if (f->principal && perm && !tf_principal_can(f->principal, perm)) {
        tf_problem_set(p, TF_PB_FORBIDDEN, "Transition %s needs the permission %s.", name, perm);
        return false;
    }
    if (!tf_if_match_ok(f->if_match, version, "item", p))
        return false;
    if (!f->principal)
        return true;
    size_t i;
    const json_t *req_ptr;
    json_array_foreach(json_object_get(t, "requires"), i, req_ptr)
    {
        const char *ptr = json_string_value(req_ptr);
        const json_t *v = pointer_get(attrs, ptr);
        if (!v || json_is_null(v)) {
            char at[256];
            snprintf(at, sizeof at, "/attributes%s", ptr);
            tf_problem_invalid(p, at, "is required by transition %s", name);
        }
    }
    return !tf_failed(p);
}

/* Updates the item, writes history, audit and event; the item's new
 * representation (WF_ITEM_JSON columns) or NULL with p set. */
static PGresult *apply(tf_tx *tx, const wf_fire *f, const json_t *def, const char *state,
                       long long version, tf_problem *p)
{
    const char *to = tf_json_str(wf_transition(def, f->transition), "to");
    const json_t *st = wf_state(def, to);
    const char *sla = tf_json_str(st, "sla");
    const char *timeout = tf_json_str(st, "on_timeout");
    bool open = !json_is_true(json_object_get(st, "terminal"));
    const tf_origin *o = f->origin;
    const char *up[] = {f->item_id, to, sla, f->transition, state,
                        tf_actor_type_name(o->actor_type), o->actor_id, f->comment,
                        o->request_id, timeout, open ? "true" : "false"};
    PGresult *u = tf_tx_exec(tx, &apply_transition, up, p);
    if (!u)
        return NULL;
    json_t *item = json_loads(tf_val(u, 0, 0), 0, NULL);
    json_t *before = json_pack("{s:s, s:I}", "state", state, "version", (json_int_t)version);
    json_t *after = json_pack("{s:s, s:I}", "state", to, "version", (json_int_t)version + 1);
    json_t *extra = json_pack("{s:{s:s, s:s, s:s}}", "transition", "name", f->transition,
                              "from", state, "to", to);
    bool ok = wf_record_change(tx, o, "item.transitioned", f->item_id, before, after, item,
                               extra, p);
    json_decref(item);
    json_decref(before);
    json_decref(after);
    return ok ? u : NULL;
}

/* The statement that reads and locks an item, for callers that prefetch it. */
tf_stmt *wf_lock_item_stmt(void)
{
    return &lock_item;
}

wf_fire_result wf_fire_transition(tf_tx *tx, const wf_fire *f, PGresult **out, tf_problem *p)
{
    *out = NULL;
    const char *params[] = {f->item_id};
    PGresult *r = tf_tx_exec_one(tx, &lock_item, params, "No such item.", p);
    if (!r)
        return WF_FAILED;
    const char *state = tf_val(r, 0, 0);
    if (f->expected_state && strcmp(state, f->expected_state) != 0)
        return WF_SKIPPED; /* a timer for a state the item has left */
    long long version = tf_val_int(r, 0, 1);
    json_t *attrs = json_loads(tf_val(r, 0, 2), 0, NULL);
    json_t *def = json_loads(tf_val(r, 0, 3), 0, NULL);
    wf_fire_result res = WF_FAILED;
    if (check_transition(f, def, attrs, state, version, p)) {
        *out = apply(tx, f, def, state, version, p);
        res = *out ? WF_FIRED : WF_FAILED;
    }
    json_decref(attrs);
    json_decref(def);
    return res;
}
