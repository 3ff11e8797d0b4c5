/*
 * PATCH /v1/items/{id}: a JSON merge patch (RFC 7396) of an item's title and
 * attributes. The body is validated before anything is read; the item is then
 * locked, If-Match is checked against its version (412), the patch is merged
 * into the stored attributes in memory and the result is validated again
 * (size cap) before it is written with version + 1. A patch that changes
 * nothing is answered with the item as it is and records nothing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tenantflow/audit.h"
#include "tenantflow/json.h"
#include "tenantflow/text.h"

/* RFC 7396 MergePatch(target, patch); takes target (may be NULL), returns a
 * new reference. Depth is bounded by the parser's depth cap. */
static json_t *merge_patch(json_t *target, const json_t *patch)
{
    if (!json_is_object(patch)) {
        json_decref(target);
        return json_deep_copy(patch);
    }
    if (!json_is_object(target)) {
        json_decref(target);
        target = json_object();
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)patch, k, v)
    {
        if (json_is_null(v)) {
            json_object_del(target, k);
        } else {
            json_t *cur = json_object_get(target, k);
            json_object_set_new(target, k, merge_patch(json_incref(cur), v));
        }
    }
    return target;
}

static tf_stmt lock_item = TF_STMT(
    "SELECT title, attributes::text, version FROM workflow.items"
    " WHERE tenant_id = platform.current_tenant() AND id = $1 FOR UPDATE", 1);
static tf_stmt update_item = TF_STMT(
    "UPDATE workflow.items i SET title = $2, attributes = $3::jsonb, version = version + 1,"
    " updated_at = now() WHERE tenant_id = platform.current_tenant() AND id = $1"
    " RETURNING " WF_ITEM_JSON, 3);
static tf_stmt get_item = TF_STMT(
    "SELECT " WF_ITEM_JSON " FROM workflow.items i"
    " WHERE i.tenant_id = platform.current_tenant() AND i.id = $1", 1);

/* Adds the changed members to before/after; true when anything changed. */
static bool diff(const char *old_title, const char *new_title, const json_t *old_attrs,
                 const json_t *new_attrs, json_t *before, json_t *after)
{
    bool changed = audit_changed(before, after, "title", old_title, new_title);
    if (!json_equal(old_attrs, new_attrs)) {
        json_object_set_new(before, "attributes", json_deep_copy(old_attrs));
        json_object_set_new(after, "attributes", json_deep_copy(new_attrs));
        changed = true;
    }
    return changed;
}

/* Validates, merges and writes; r is the locked row. */
static void apply(tf_req *req, const char *id, const json_t *body, const PGresult *r)
{
    tf_problem *p = tf_req_problem(req);
    tf_tx *tx = tf_req_tx(req);
    const char *old_title = tf_val(r, 0, 0);
    json_t *old_attrs = json_loads(tf_val(r, 0, 1), 0, NULL);
    const char *new_title = tf_json_str(body, "title");
    if (!new_title)
        new_title = old_title;
    const json_t *patch = json_object_get(body, "attributes");
    json_t *new_attrs = !patch ? json_deep_copy(old_attrs)
                        : json_is_null(patch) ? json_object()
                                              : merge_patch(json_deep_copy(old_attrs), patch);
    json_t *merged = json_pack("{s:s, s:O}", "title", new_title, "attributes", new_attrs);
    json_t *before = json_object(), *after = json_object();
    if (!wf_check_item_fields(merged, p)) {
        /* the size cap applies to the merged attributes */
    } else if (!diff(old_title, new_title, old_attrs, new_attrs, before, after)) {
        const char *params[] = {id};
        PGresult *g = tf_tx_exec(tx, &get_item, params, p);
        if (g)
            wf_reply_item(req, 200, g);
    } else {
        char *text = tf_json_dumps(new_attrs, JSON_COMPACT);
        const char *params[] = {id, new_title, text};
        PGresult *u = tf_tx_exec(tx, &update_item, params, p);
        free(text);
        json_t *item = u ? json_loads(tf_val(u, 0, 0), 0, NULL) : NULL;
        tf_origin o = tf_req_origin(req);
        if (item && wf_record_change(tx, &o, "item.updated", id, before, after, item, NULL, p))
            wf_reply_item(req, 200, u);
        json_decref(item);
    }
    json_decref(before);
    json_decref(after);
    json_decref(merged);
    json_decref(new_attrs);
    json_decref(old_attrs);
}

void wf_patch_item(tf_req *req)
{
    static const tf_json_field fields[] = {
        {"title", TF_JT_STRING, false, false},
        {"attributes", TF_JT_OBJECT, false, true},
    };
    tf_problem *p = tf_req_problem(req);
    const char *id = wf_item_id(req);
    if (!id)
        return;
    json_t *body = TF_REQ_BODY(req, fields);
    if (!body)
        return;
    const char *title = tf_json_str(body, "title");
    if (title)
        (void)tf_check_text(title, "/title", 1, 500, p);
    if (tf_failed(p))
        return;
    const char *params[] = {id};
    PGresult *r = tf_tx_exec_one(tf_req_tx(req), &lock_item, params, "No such item.", p);
    if (!r)
        return;
    long long version = tf_val_int(r, 0, 2);
    if (tf_req_if_match(req, version, "item"))
        apply(req, id, body, r);
}
