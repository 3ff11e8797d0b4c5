/*
 * Workflow definitions: create, publish new versions, read. A definition is
 * stored as the validated JSON body; every version is kept, because items
 * stay on the version they were created with.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tenantflow/audit.h"
#include "tenantflow/events.h"
#include "tenantflow/cursor.h"
#include "tenantflow/json.h"
#include "tenantflow/text.h"

#define DEF_JSON                                                                              \
    "jsonb_build_object('key', key, 'name', name, 'version', version,"                      \
    " 'states', definition->'states', 'initial_state', definition->'initial_state',"        \
    " 'transitions', definition->'transitions', 'created_at', platform.rfc3339(created_at))::text"

static tf_stmt latest_version = TF_STMT(
    "SELECT coalesce(max(version), 0) FROM workflow.definitions"
    " WHERE tenant_id = platform.current_tenant() AND key = $1", 1);
static tf_stmt lock_key = TF_STMT(
    "SELECT pg_advisory_xact_lock(hashtextextended('workflow:' || platform.current_tenant()"
    " || ':' || $1, 0))", 1);
static tf_stmt insert_def = TF_STMT(
    "INSERT INTO workflow.definitions (tenant_id, key, version, name, definition)"
    " VALUES (platform.current_tenant(), $1, $2::integer, $3, $4::jsonb) RETURNING " DEF_JSON,
    4);

/* Publishes body as the next version of key; status 201 or 200. */
static void publish(tf_req *req, const char *key, bool must_be_new)
{
    tf_problem *p = tf_req_problem(req);
    tf_tx *tx = tf_req_tx(req);
    json_t *body = tf_req_json(req);
    const char *kp[] = {key};
    /* Serialize publishers of one key so versions are dense and unique. */
    if (!tf_tx_exec(tx, &lock_key, kp, p))
        return;
    PGresult *r = tf_tx_exec(tx, &latest_version, kp, p);
    if (!r)
        return;
    long long version = tf_val_int(r, 0, 0);
    if (must_be_new && version > 0) {
        tf_problem_set(p, TF_PB_CONFLICT, "A workflow with key %s already exists; PUT publishes "
                                          "a new version.", key);
        return;
    }
    json_t *def = json_pack("{s:O, s:O, s:O}", "states", json_object_get(body, "states"),
                            "initial_state", json_object_get(body, "initial_state"),
                            "transitions", json_object_get(body, "transitions"));
    char *text = tf_json_dumps(def, JSON_COMPACT);
    json_decref(def);
    char v[24];
    snprintf(v, sizeof v, "%lld", version + 1);
    const char *params[] = {key, v, tf_json_str(body, "name"), text};
    r = tf_tx_exec(tx, &insert_def, params, p);
    free(text);
    if (!r)
        return;
    tf_origin o = tf_req_origin(req);
    json_t *after = json_pack("{s:s, s:I, s:s}", "key", key, "version", (json_int_t)version + 1,
                              "name", tf_json_str(body, "name"));
    audit_entry e = {"workflow.published", "workflow", key, NULL, after};
    /* The event also carries the states, so subscribers (reporting) can keep
     * their own copy of terminal flags and SLAs. */
    json_t *event = json_deep_copy(after);
    json_object_set(event, "states", json_object_get(body, "states"));
    bool ok = audit_record(tx, &o, &e, p) &&
              events_publish(tx, &o, "workflow.published", NULL, event, p);
    json_decref(event);
    json_decref(after);
    if (!ok)
        return;
    int status = version == 0 ? 201 : 200;
    tf_reply_etag(req, version + 1);
    if (status == 201) {
        char loc[128];
        snprintf(loc, sizeof loc, "/v1/workflows/%s", key);
        tf_reply_header(req, "Location", loc);
    }
    tf_reply_text(req, status, "application/json; charset=utf-8", tf_val(r, 0, 0),
                  strlen(tf_val(r, 0, 0)));
}

void wf_create_workflow(tf_req *req)
{
    json_t *body = tf_req_json(req);
    tf_problem *p = tf_req_problem(req);
    if (!body || !wf_validate_definition(body, true, NULL, p))
        return;
    publish(req, tf_json_str(body, "key"), true);
}

void wf_put_workflow(tf_req *req)
{
    json_t *body = tf_req_json(req);
    tf_problem *p = tf_req_problem(req);
    const char *key = tf_req_param(req, "key");
    if (!tf_is_slug(key, 1, 63)) {
        tf_problem_set(p, TF_PB_NOT_FOUND, "No workflow can have the key in this path.");
        return;
    }
    if (!body || !wf_validate_definition(body, false, key, p))
        return;
    publish(req, key, false);
}

static tf_stmt get_latest = TF_STMT(
    "SELECT " DEF_JSON ", version FROM workflow.definitions"
    " WHERE tenant_id = platform.current_tenant() AND key = $1 ORDER BY version DESC LIMIT 1", 1);
static tf_stmt get_version = TF_STMT(
    "SELECT " DEF_JSON ", version FROM workflow.definitions"
    " WHERE tenant_id = platform.current_tenant() AND key = $1 AND version = $2::integer", 2);

/* A definition (DEF_JSON, version); its ETag is its version. */
static void reply_row(tf_req *req, const PGresult *r)
{
    long long version = tf_val_int(r, 0, 1);
    if (tf_req_not_modified(req, version))
        return;
    tf_reply_etag(req, version);
    tf_reply_text(req, 200, "application/json; charset=utf-8", tf_val(r, 0, 0),
                  strlen(tf_val(r, 0, 0)));
}

void wf_get_workflow(tf_req *req)
{
    const char *params[] = {tf_req_param(req, "key")};
    PGresult *r = tf_tx_exec_one(tf_req_tx(req), &get_latest, params, "No such workflow.",
                                 tf_req_problem(req));
    if (r)
        reply_row(req, r);
}

void wf_get_version(tf_req *req)
{
    const char *n = tf_req_param(req, "n");
    char *end = NULL;
    long v = strtol(n, &end, 10);
    if (*end || v < 1 || v > 1000000 || n[0] < '1' || n[0] > '9') {
        tf_problem_set(tf_req_problem(req), TF_PB_NOT_FOUND, "No such workflow version.");
        return;
    }
    const char *params[] = {tf_req_param(req, "key"), n};
    PGresult *r = tf_tx_exec_one(tf_req_tx(req), &get_version, params,
                                 "No such workflow version.", tf_req_problem(req));
    if (r)
        reply_row(req, r);
}

static tf_stmt list_defs = TF_STMT(
    "SELECT DISTINCT ON (key) key, " DEF_JSON " FROM workflow.definitions"
    " WHERE tenant_id = platform.current_tenant() AND ($1::text IS NULL OR key > $1)"
    " ORDER BY key, version DESC LIMIT $2::integer", 2);

void wf_list_workflows(tf_req *req)
{
    tf_problem *p = tf_req_problem(req);
    int limit;
    if (!tf_parse_limit(tf_req_query(req, "limit"), &limit, p))
        return;
    char scope[96];
    snprintf(scope, sizeof scope, "%s|workflows", tf_tx_tenant(tf_req_tx(req)));
    const char *after = NULL;
    const char *cursor = tf_req_query(req, "cursor");
    if (cursor) {
        json_t *pos = tf_cursor_decode(scope, cursor, p);
        if (!pos)
            return;
        const char *a = json_string_value(json_object_get(pos, "k"));
        after = tf_arena_strdup(tf_req_arena(req), a ? a : "");
        json_decref(pos);
    }
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *params[] = {after, lim};
    PGresult *r = tf_tx_exec(tf_req_tx(req), &list_defs, params, p);
    if (!r)
        return;
    tf_reply_page(req, r, 1, limit, scope, "k", 0);
}
