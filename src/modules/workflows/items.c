/*
 * Items: creation, reads, the transition handler and history.
 *
 * The one thing to know: the transition itself lives in transition.c, shared
 * with the SLA timer job; it locks the item (SELECT ... FOR UPDATE), so two
 * requests racing on one item are applied one after the other and the second
 * answers 409 (or 412 with a stale If-Match). The history row is written in
 * the same transaction, so it never shows a transition that did not happen.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tenantflow/audit.h"
#include "tenantflow/crypto.h"
#include "tenantflow/events.h"
#include "tenantflow/json.h"
#include "tenantflow/text.h"

void wf_reply_item(tf_req *req, int status, const PGresult *r)
{
    tf_reply_etag(req, tf_val_int(r, 0, 1));
    const char *body = tf_val(r, 0, 0);
    tf_reply_text(req, status, "application/json; charset=utf-8", body, strlen(body));
}

/* The item id from the path; a malformed id is simply not found. */
const char *wf_item_id(tf_req *req)
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
/* Imports of one reference are serialized, so the pre-check below always
 * sees a concurrent import's row and answers 409 with existing_id. */
static tf_stmt lock_ref = TF_STMT(
    "SELECT pg_advisory_xact_lock(hashtextextended('item-ref:' || platform.current_tenant()"
    " || ':' || $1 || ':' || $2, 0))", 2);
static tf_stmt find_ref = TF_STMT(
    "SELECT id FROM workflow.items WHERE tenant_id = platform.current_tenant()"
    " AND workflow_key = $1 AND external_ref = $2", 2);
static tf_stmt insert_item = TF_STMT(
    "WITH i AS (INSERT INTO workflow.items (tenant_id, id, workflow_key, workflow_version, state,"
    "   title, attributes, external_ref, due_at, timeout_transition, open)"
    " VALUES (platform.current_tenant(), $1, $2, $3::integer, $4, $5, $6::jsonb, $7,"
    "   now() + $8::interval, CASE WHEN $8 IS NULL THEN NULL ELSE $12 END, $13::boolean)"
    " RETURNING *),"
    " h AS (INSERT INTO workflow.history (tenant_id, item_id, transition, from_state, to_state,"
    "   actor_type, actor_id, request_id)"
    " SELECT platform.current_tenant(), i.id, NULL, NULL, i.state, $9, $10, $11 FROM i)"
    " SELECT " WF_ITEM_JSON " FROM i", 13);

static void conflict_ref(tf_req *req, const char *existing)
{
    tf_problem *p = tf_req_problem(req);
    tf_problem_set(p, TF_PB_CONFLICT,
                   "An item with this external_ref already exists in the workflow.");
    tf_problem_extra(p, "existing_id", json_string(existing));
}

/* PostgreSQL writes a stored number back in plain digits (1e20 comes back
 * as 100000000000000000000), which jansson reads as an integer and refuses
 * beyond 64 bits: the item could no longer be read for its events, patches
 * or transitions. So a number in attributes stays within a 64-bit integer's
 * range, and the first one that does not is a 422 at its own pointer. */
#define WF_MAX_MAGNITUDE 9.2e18

static bool numbers_in_range(const json_t *v, const char *at, tf_problem *p)
{
    if (json_is_real(v) && fabs(json_real_value(v)) >= WF_MAX_MAGNITUDE) {
        tf_problem_invalid(p, at, "must lie between -9.2e18 and 9.2e18");
        return false;
    }
    char ptr[512], tok[256];
    const char *key;
    size_t i;
    json_t *child;
    json_t *walk = (json_t *)(uintptr_t)v; /* jansson's iterators only read it */
    if (json_is_object(v)) {
        json_object_foreach(walk, key, child)
        {
            snprintf(ptr, sizeof ptr, "%s/%s", at, tf_pointer_token(tok, sizeof tok, key));
            if (!numbers_in_range(child, ptr, p))
                return false;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(walk, i, child)
        {
            snprintf(ptr, sizeof ptr, "%s/%zu", at, i);
            if (!numbers_in_range(child, ptr, p))
                return false;
        }
    }
    return true;
}

bool wf_check_item_fields(const json_t *body, tf_problem *p)
{
    const char *title = tf_json_str(body, "title");
    if (title)
        (void)tf_check_text(title, "/title", 1, 500, p);
    const json_t *attrs = json_object_get(body, "attributes");
    if (attrs && !json_is_null(attrs)) {
        if (!json_is_object(attrs)) {
            tf_problem_invalid(p, "/attributes", "must be an object");
        } else {
            size_t size = json_dumpb(attrs, NULL, 0, tf_json_flags(attrs, JSON_COMPACT));
            if (size > WF_MAX_ATTRIBUTES_BYTES)
                tf_problem_invalid(p, "/attributes", "must encode to at most %d bytes",
                                   WF_MAX_ATTRIBUTES_BYTES);
            else
                (void)numbers_in_range(attrs, "/attributes", p);
        }
    }
    return !tf_failed(p);
}

/* Create: the workflow's current definition travels with BEGIN. */
void wf_prefetch_create(tf_req *req, tf_tx_ctx *ctx)
{
    const char *workflow[] = {tf_json_str(tf_req_json_peek(req), "workflow")};
    if (workflow[0])
        (void)tf_tx_ctx_prefetch(ctx, &current_def, workflow);
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
    json_t *body = TF_REQ_BODY(req, fields);
    if (!body)
        return;
    const char *ref = tf_json_str(body, "external_ref");
    if (ref)
        (void)tf_check_text(ref, "/external_ref", 1, 200, p);
    if (!wf_check_item_fields(body, p))
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
    const json_t *st = wf_state(def, initial);
    const char *sla = tf_json_str(st, "sla");
    const char *timeout = tf_json_str(st, "on_timeout");
    bool open = !json_is_true(json_object_get(st, "terminal"));
    tf_arena *a = tf_req_arena(req);
    char *initial_copy = tf_arena_strdup(a, initial ? initial : "");
    char *sla_copy = sla ? tf_arena_strdup(a, sla) : NULL;
    char *timeout_copy = timeout ? tf_arena_strdup(a, timeout) : NULL;
    json_decref(def);
    if (ref) {
        const char *fp[] = {workflow, ref};
        if (!tf_tx_exec(tx, &lock_ref, fp, p))
            return;
        r = tf_tx_exec(tx, &find_ref, fp, p);
        if (!r)
            return;
        if (PQntuples(r) == 1) {
            conflict_ref(req, tf_val(r, 0, 0));
            return;
        }
    }
    const json_t *attrs = json_object_get(body, "attributes");
    char *attrs_text = attrs && json_is_object(attrs) ? tf_json_dumps(attrs, JSON_COMPACT) : NULL;
    char id[37];
    tf_uuid7(id);
    const tf_principal *pr = tf_req_principal(req);
    const char *params[] = {id, workflow, version, initial_copy, tf_json_str(body, "title"),
                            attrs_text ? attrs_text : "{}", ref, sla_copy,
                            tf_actor_type_name(pr->type), pr->id, tf_req_id(req),
                            timeout_copy, open ? "true" : "false"};
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
    tf_origin o = tf_req_origin(req);
    bool ok = wf_record_change(tx, &o, "item.created", id, NULL, item, item, NULL, p);
    json_decref(item);
    if (!ok)
        return;
    char loc[64];
    snprintf(loc, sizeof loc, "/v1/items/%s", id);
    tf_reply_header(req, "Location", loc);
    wf_reply_item(req, 201, r);
}

static tf_stmt get_item = TF_STMT(
    "SELECT " WF_ITEM_JSON " FROM workflow.items i"
    " WHERE i.tenant_id = platform.current_tenant() AND i.id = $1", 1);

/* GET: the item travels with BEGIN, the principal and COMMIT, one round
 * trip in all. */
void wf_prefetch_item(tf_req *req, tf_tx_ctx *ctx)
{
    const char *id[] = {tf_req_param(req, "id")};
    if (tf_uuid_parse_ok(id[0], strlen(id[0])) && tf_tx_ctx_prefetch(ctx, &get_item, id))
        ctx->commit = true;
}

/* A transition: the item, locked, travels with BEGIN. The lock is taken
 * before the permission check, so a caller who may not transition holds it
 * for that one round trip before the transaction rolls back. */
void wf_prefetch_transition(tf_req *req, tf_tx_ctx *ctx)
{
    const char *id[] = {tf_req_param(req, "id")};
    if (tf_uuid_parse_ok(id[0], strlen(id[0])))
        (void)tf_tx_ctx_prefetch(ctx, wf_lock_item_stmt(), id);
}

void wf_get_item(tf_req *req)
{
    const char *id = wf_item_id(req);
    if (!id)
        return;
    const char *params[] = {id};
    PGresult *r = tf_tx_exec_one(tf_req_tx(req), &get_item, params, "No such item.",
                                 tf_req_problem(req));
    if (!r)
        return;
    if (!tf_req_not_modified(req, tf_val_int(r, 0, 1)))
        wf_reply_item(req, 200, r);
}

void wf_transition_item(tf_req *req)
{
    static const tf_json_field fields[] = {
        {"transition", TF_JT_STRING, true, false},
        {"comment", TF_JT_STRING, false, true},
    };
    tf_problem *p = tf_req_problem(req);
    const char *id = wf_item_id(req);
    if (!id)
        return;
    json_t *body = TF_REQ_BODY(req, fields);
    if (!body)
        return;
    const char *comment = tf_json_str(body, "comment");
    if (comment && tf_utf8_length(comment) > 2000) {
        tf_problem_invalid(p, "/comment", "must be at most 2000 characters");
        return;
    }
    if (!tf_req_if_match_valid(req))
        return;
    tf_origin o = tf_req_origin(req);
    wf_fire f = {
        .item_id = id,
        .transition = tf_json_str(body, "transition"),
        .comment = comment,
        .principal = tf_req_principal(req),
        .if_match = tf_req_header(req, "If-Match"),
        .origin = &o,
    };
    PGresult *item = NULL;
    if (wf_fire_transition(tf_req_tx(req), &f, &item, p) == WF_FIRED)
        wf_reply_item(req, 200, item);
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
    const char *id = wf_item_id(req);
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
