/*
 * Items: creation, reads, transitions and history.
 *
 * The one thing to know: a transition reads its item with SELECT ... FOR
 * UPDATE, so two requests racing on one item are applied one after the other;
 * the second sees the first's new state and answers 409 (or 412 with a stale
 * If-Match). The history row is written in the same transaction, so it never
 * shows a transition that did not happen.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tenantflow/audit.h"
#include "tenantflow/crypto.h"
#include "tenantflow/events.h"
#include "tenantflow/json.h"
#include "tenantflow/text.h"

#define ITEM_JSON                                                                             \
    "jsonb_build_object('id', i.id, 'workflow', i.workflow_key,"                            \
    " 'workflow_version', i.workflow_version, 'state', i.state, 'title', i.title,"          \
    " 'attributes', i.attributes, 'external_ref', i.external_ref, 'version', i.version,"    \
    " 'created_at', platform.rfc3339(i.created_at),"                                        \
    " 'updated_at', platform.rfc3339(i.updated_at),"                                        \
    " 'state_entered_at', platform.rfc3339(i.state_entered_at),"                            \
    " 'due_at', platform.rfc3339(i.due_at))::text, i.version"

static void reply_item(tf_req *req, int status, const PGresult *r)
{
    char etag[32];
    snprintf(etag, sizeof etag, "\"%s\"", tf_val(r, 0, 1));
    tf_reply_header(req, "ETag", etag);
    const char *body = tf_val(r, 0, 0);
    tf_reply_text(req, status, "application/json; charset=utf-8", body, strlen(body));
}

/* The item id from the path; a malformed id is simply not found. */
static const char *item_id(tf_req *req)
{
    const char *id = tf_req_param(req, "id");
    if (!tf_uuid_parse_ok(id, strlen(id))) {
        tf_problem_set(tf_req_problem(req), TF_PB_NOT_FOUND, "No such item.");
        return NULL;
    }
    return id;
}

static tf_stmt current_def = TF_STMT(
    "SELECT version, definition::text FROM workflow.definitions"
    " WHERE tenant_id = platform.current_tenant() AND key = $1 ORDER BY version DESC LIMIT 1", 1);
static tf_stmt find_ref = TF_STMT(
    "SELECT id FROM workflow.items WHERE tenant_id = platform.current_tenant()"
    " AND workflow_key = $1 AND external_ref = $2", 2);
static tf_stmt insert_item = TF_STMT(
    "WITH i AS (INSERT INTO workflow.items (tenant_id, id, workflow_key, workflow_version, state,"
    "   title, attributes, external_ref, due_at)"
    " VALUES (platform.current_tenant(), $1, $2, $3::integer, $4, $5, $6::jsonb, $7,"
    "   now() + $8::interval) RETURNING *),"
    " h AS (INSERT INTO workflow.history (tenant_id, item_id, transition, from_state, to_state,"
    "   actor_type, actor_id, request_id)"
    " SELECT platform.current_tenant(), i.id, NULL, NULL, i.state, $9, $10, $11 FROM i)"
    " SELECT " ITEM_JSON " FROM i", 11);

/* Records the audit entry and the domain event of an item change; data is
 * the item after the change (borrowed), extra (stolen, may be NULL) is merged
 * into the event's data. */
static bool record_change(tf_req *req, const char *action, const char *item_id,
                          const json_t *before, const json_t *after, const json_t *item,
                          json_t *extra)
{
    tf_problem *p = tf_req_problem(req);
    tf_origin o = tf_req_origin(req);
    audit_entry e = {action, "item", item_id, before, after};
    bool ok = audit_record(tf_req_tx(req), &o, &e, p);
    json_t *data = json_deep_copy(item);
    if (extra)
        json_object_update(data, extra);
    json_decref(extra);
    ok = ok && events_publish(tf_req_tx(req), &o, action, item_id, data, p);
    json_decref(data);
    return ok;
}

static void conflict_ref(tf_req *req, const char *existing)
{
    tf_problem *p = tf_req_problem(req);
    tf_problem_set(p, TF_PB_CONFLICT,
                   "An item with this external_ref already exists in the workflow.");
    tf_problem_extra(p, "existing_id", json_string(existing));
}

static bool check_item_fields(const json_t *body, tf_problem *p)
{
    const char *title = tf_json_str(body, "title");
    if (title)
        (void)tf_check_text(title, "/title", 1, 500, p);
    const json_t *attrs = json_object_get(body, "attributes");
    if (attrs && !json_is_null(attrs)) {
        if (!json_is_object(attrs)) {
            tf_problem_invalid(p, "/attributes", "must be an object");
        } else {
            size_t size = json_dumpb(attrs, NULL, 0, JSON_COMPACT);
            if (size > WF_MAX_ATTRIBUTES_BYTES)
                tf_problem_invalid(p, "/attributes", "must encode to at most %d bytes",
                                   WF_MAX_ATTRIBUTES_BYTES);
        }
    }
    return !tf_failed(p);
}

void wf_create_item(tf_req *req)
{
    static const tf_json_field fields[] = {
        {"workflow", TF_JT_STRING, true, false},
        {"title", TF_JT_STRING, true, false},
        {"attributes", TF_JT_OBJECT, false, true},
        {"external_ref", TF_JT_STRING, false, true},
    };
    tf_problem *p = tf_req_problem(req);
    tf_tx *tx = tf_req_tx(req);
    json_t *body = tf_req_json(req);
    if (!body || !tf_json_check(body, "", fields, sizeof fields / sizeof *fields, p))
        return;
    const char *ref = tf_json_str(body, "external_ref");
    if (ref)
        (void)tf_check_text(ref, "/external_ref", 1, 200, p);
    if (!check_item_fields(body, p))
        return;
    const char *workflow = tf_json_str(body, "workflow");
    const char *dp[] = {workflow};
    PGresult *r = tf_tx_exec(tx, &current_def, dp, p);
    if (!r)
        return;
    if (PQntuples(r) == 0) {
        tf_problem_invalid(p, "/workflow", "no workflow with this key");
        return;
    }
    const char *version = tf_val(r, 0, 0);
    json_t *def = json_loads(tf_val(r, 0, 1), 0, NULL);
    const char *initial = tf_json_str(def, "initial_state");
    const char *sla = tf_json_str(wf_state(def, initial), "sla");
    tf_arena *a = tf_req_arena(req);
    char *initial_copy = tf_arena_strdup(a, initial ? initial : "");
    char *sla_copy = sla ? tf_arena_strdup(a, sla) : NULL;
    json_decref(def);
    if (ref) {
        const char *fp[] = {workflow, ref};
        r = tf_tx_exec(tx, &find_ref, fp, p);
        if (!r)
            return;
        if (PQntuples(r) == 1) {
            conflict_ref(req, tf_val(r, 0, 0));
            return;
        }
    }
    const json_t *attrs = json_object_get(body, "attributes");
    char *attrs_text = attrs && json_is_object(attrs) ? json_dumps(attrs, JSON_COMPACT) : NULL;
    char id[37];
    tf_uuid7(id);
    const tf_principal *pr = tf_req_principal(req);
    const char *params[] = {id, workflow, version, initial_copy, tf_json_str(body, "title"),
                            attrs_text ? attrs_text : "{}", ref, sla_copy,
                            tf_actor_type_name(pr->type), pr->id, tf_req_id(req)};
    r = tf_tx_exec(tx, &insert_item, params, p);
    free(attrs_text);
    if (!r) {
        if (strcmp(tf_tx_sqlstate(tx), "23505") == 0) {
            /* Lost a race with another import of the same reference. */
            tf_problem_clear(p);
            tf_problem_set(p, TF_PB_CONFLICT,
                           "An item with this external_ref already exists in the workflow.");
        }
        return;
    }
    json_t *item = json_loads(tf_val(r, 0, 0), 0, NULL);
    bool ok = record_change(req, "item.created", id, NULL, item, item, NULL);
    json_decref(item);
    if (!ok)
        return;
    char loc[64];
    snprintf(loc, sizeof loc, "/v1/items/%s", id);
    tf_reply_header(req, "Location", loc);
    reply_item(req, 201, r);
}

static tf_stmt get_item = TF_STMT(
    "SELECT " ITEM_JSON " FROM workflow.items i"
    " WHERE i.tenant_id = platform.current_tenant() AND i.id = $1", 1);

static bool etag_in_list(const char *list, const char *etag);

/* True when an If-None-Match header lists the current ETag. */
static bool etag_listed(const char *header, const char *etag)
{
    if (!header)
        return false;
    if (strcmp(header, "*") == 0)
        return true;
    /* If-None-Match uses the weak comparison: W/"1" matches "1". */
    char weak[40];
    snprintf(weak, sizeof weak, "W/%s", etag);
    return etag_in_list(header, etag) || etag_in_list(header, weak);
}

void wf_get_item(tf_req *req)
{
    const char *id = item_id(req);
    if (!id)
        return;
    const char *params[] = {id};
    PGresult *r = tf_tx_exec_one(tf_req_tx(req), &get_item, params, "No such item.",
                                 tf_req_problem(req));
    if (!r)
        return;
    char etag[32];
    snprintf(etag, sizeof etag, "\"%s\"", tf_val(r, 0, 1));
    if (etag_listed(tf_req_header(req, "If-None-Match"), etag)) {
        tf_reply_header(req, "ETag", etag);
        tf_reply_text(req, 304, NULL, "", 0);
        return;
    }
    reply_item(req, 200, r);
}

static tf_stmt lock_item = TF_STMT(
    "SELECT i.state, i.version, i.attributes::text, d.definition::text"
    " FROM workflow.items i JOIN workflow.definitions d"
    "   ON d.tenant_id = i.tenant_id AND d.key = i.workflow_key AND d.version = i.workflow_version"
    " WHERE i.tenant_id = platform.current_tenant() AND i.id = $1 FOR UPDATE OF i", 1);
static tf_stmt apply_transition = TF_STMT(
    "WITH i AS (UPDATE workflow.items SET state = $2, version = version + 1, updated_at = now(),"
    "   state_entered_at = now(), due_at = now() + $3::interval"
    " WHERE tenant_id = platform.current_tenant() AND id = $1 RETURNING *),"
    " h AS (INSERT INTO workflow.history (tenant_id, item_id, transition, from_state, to_state,"
    "   actor_type, actor_id, comment, request_id)"
    " SELECT platform.current_tenant(), i.id, $4, $5, i.state, $6, $7, $8, $9 FROM i)"
    " SELECT " ITEM_JSON " FROM i", 9);

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
        if (wf_leaves(t, state) && (!perm || tf_principal_can(pr, perm)))
            json_array_append_new(names, json_string(tf_json_str(t, "name")));
    }
    return names;
}

/* True when a comma-separated entity-tag list names etag exactly. Weak tags
 * (W/"1") never match: If-Match needs the strong comparison (RFC 9110). */
static bool etag_in_list(const char *list, const char *etag)
{
    size_t n = strlen(etag);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && p[len - 1] == ' ')
            len--;
        if (len == n && memcmp(p, etag, n) == 0)
            return true;
        if (!end)
            break;
        p = end + 1;
    }
    return false;
}

static bool if_match_ok(tf_req *req, const char *version)
{
    const char *h = tf_req_header(req, "If-Match");
    if (!h || strcmp(h, "*") == 0)
        return true;
    char etag[32];
    snprintf(etag, sizeof etag, "\"%s\"", version);
    return etag_in_list(h, etag);
}

/* Checks in the contract's order; fills the new state's SLA. */
static bool check_transition(tf_req *req, const json_t *def, const json_t *attrs,
                             const char *state, const char *version, const char *name)
{
    tf_problem *p = tf_req_problem(req);
    const tf_principal *pr = tf_req_principal(req);
    const json_t *t = wf_transition(def, name);
    if (!t) {
        tf_problem_invalid(p, "/transition", "the item's workflow has no transition %s", name);
        return false;
    }
    if (!wf_leaves(t, state)) {
        tf_problem_set(p, TF_PB_INVALID_TRANSITION, "Transition %s is not allowed from state %s.",
                       name, state);
        tf_problem_extra(p, "current_state", json_string(state));
        tf_problem_extra(p, "allowed_transitions", allowed_from(def, state, pr));
        return false;
    }
    const char *perm = tf_json_str(t, "permission");
    if (perm && !tf_principal_can(pr, perm)) {
        tf_problem_set(p, TF_PB_FORBIDDEN, "Transition %s needs the permission %s.", name, perm);
        return false;
    }
    if (!if_match_ok(req, version)) {
        tf_problem_set(p, TF_PB_PRECONDITION_FAILED,
                       "The item has changed; its current version is %s.", version);
        return false;
    }
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

void wf_transition_item(tf_req *req)
{
    static const tf_json_field fields[] = {
        {"transition", TF_JT_STRING, true, false},
        {"comment", TF_JT_STRING, false, true},
    };
    tf_problem *p = tf_req_problem(req);
    tf_tx *tx = tf_req_tx(req);
    const char *id = item_id(req);
    if (!id)
        return;
    json_t *body = tf_req_json(req);
    if (!body || !tf_json_check(body, "", fields, sizeof fields / sizeof *fields, p))
        return;
    const char *comment = tf_json_str(body, "comment");
    if (comment && tf_utf8_length(comment) > 2000) {
        tf_problem_invalid(p, "/comment", "must be at most 2000 characters");
        return;
    }
    const char *params[] = {id};
    PGresult *r = tf_tx_exec_one(tx, &lock_item, params, "No such item.", p);
    if (!r)
        return;
    const char *state = tf_val(r, 0, 0);
    json_t *attrs = json_loads(tf_val(r, 0, 2), 0, NULL);
    json_t *def = json_loads(tf_val(r, 0, 3), 0, NULL);
    const char *name = tf_json_str(body, "transition");
    if (check_transition(req, def, attrs, state, tf_val(r, 0, 1), name)) {
        const char *to = tf_json_str(wf_transition(def, name), "to");
        const char *sla = tf_json_str(wf_state(def, to), "sla");
        const tf_principal *pr = tf_req_principal(req);
        const char *up[] = {id, to, sla, name, state, tf_actor_type_name(pr->type), pr->id,
                            comment, tf_req_id(req)};
        PGresult *u = tf_tx_exec(tx, &apply_transition, up, p);
        json_t *item = u ? json_loads(tf_val(u, 0, 0), 0, NULL) : NULL;
        json_t *before = json_pack("{s:s, s:I}", "state", state, "version",
                                   (json_int_t)tf_val_int(r, 0, 1));
        json_t *after = json_pack("{s:s, s:I}", "state", to, "version",
                                  (json_int_t)tf_val_int(r, 0, 1) + 1);
        json_t *extra = json_pack("{s:{s:s, s:s, s:s}}", "transition", "name", name, "from",
                                  state, "to", to);
        if (!item)
            json_decref(extra); /* record_change would have taken it */
        else if (record_change(req, "item.transitioned", id, before, after, item, extra))
            reply_item(req, 200, u);
        json_decref(item);
        json_decref(before);
        json_decref(after);
    }
    json_decref(attrs);
    json_decref(def);
}

static tf_stmt item_exists = TF_STMT(
    "SELECT 1 FROM workflow.items WHERE tenant_id = platform.current_tenant() AND id = $1", 1);
static tf_stmt history = TF_STMT(
    "SELECT coalesce(jsonb_agg(jsonb_build_object('from', h.from_state, 'to', h.to_state,"
    "   'transition', h.transition, 'actor', jsonb_build_object('type', h.actor_type,"
    "   'id', h.actor_id), 'at', platform.rfc3339(h.at), 'comment', h.comment,"
    "   'request_id', h.request_id) ORDER BY h.at, h.id), '[]')::text"
    " FROM workflow.history h WHERE h.tenant_id = platform.current_tenant() AND h.item_id = $1",
    1);

void wf_item_history(tf_req *req)
{
    tf_problem *p = tf_req_problem(req);
    const char *id = item_id(req);
    if (!id)
        return;
    const char *params[] = {id};
    if (!tf_tx_exec_one(tf_req_tx(req), &item_exists, params, "No such item.", p))
        return;
    PGresult *r = tf_tx_exec(tf_req_tx(req), &history, params, p);
    if (!r)
        return;
    json_t *data = json_loads(tf_val(r, 0, 0), 0, NULL);
    tf_reply_json(req, 200, json_pack("{s:o, s:n}", "data", data ? data : json_array(),
                                      "next_cursor"));
}
