/*
 * Webhook subscriptions: create (the secret is shown once), list, read,
 * change (URL, event types, and status: a subscription disabled by a 410 or
 * by its owner is re-enabled here), delete, and the delivery attempts of one
 * subscription.
 *
 * The secret. The dispatcher must sign every delivery with it, so a one-way
 * hash cannot be stored. It is stored sealed instead: XChaCha20-Poly1305
 * under a key derived (BLAKE2b, own label) from the server's signing key
 * file, with the webhook id as associated data so a sealed secret cannot be
 * moved to another subscription. The database alone does not reveal it. The
 * row also records which key sealed it: after the key file changes, old
 * secrets cannot be opened and their deliveries fail with a clear error
 * until the subscription is re-created (see README, "Webhooks").
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tenantflow/audit.h"
#include "tenantflow/crypto.h"
#include "tenantflow/cursor.h"
#include "tenantflow/json.h"

#define WEBHOOK_JSON                                                                         \
    "jsonb_build_object('id', w.id, 'url', w.url, 'event_types', to_jsonb(w.event_types),"  \
    " 'status', w.status, 'disabled_reason', w.disabled_reason, 'version', w.version,"    \
    " 'created_at', platform.rfc3339(w.created_at))::text"

/* A subscription's event types are a set: kept sorted, without duplicates,
 * so that the same set sent in another order is not a change. */
#define EVENT_TYPES(param) "array(SELECT DISTINCT unnest(" param "::text[]) ORDER BY 1)"

static tf_stmt insert_webhook = TF_STMT(
    "INSERT INTO events.webhooks AS w (tenant_id, id, url, event_types, secret_box, secret_key_id)"
    " VALUES (platform.current_tenant(), $1, $2, " EVENT_TYPES("$3") ","
    " decode($4, 'hex'), decode($5, 'hex'))"
    " RETURNING " WEBHOOK_JSON, 5);

/* "item.created", "user.roles_set", or "*" for every event. */
static bool event_type_ok(const char *s)
{
    if (strcmp(s, "*") == 0)
        return true;
    size_t n = strlen(s), dots = 0;
    if (n < 3 || n > 100 || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (s[i + 1] == '.')
                return false;
            dots++;
        } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            return false;
        }
    }
    return dots >= 1;
}

/* A PostgreSQL text[] literal of strings already checked by event_type_ok. */
static char *types_literal(const json_t *types)
{
    size_t cap = 4, len = 0, i;
    const json_t *t;
    json_array_foreach(types, i, t) cap += strlen(json_string_value(t)) + 3;
    char *out = tf_xmalloc(cap);
    out[len++] = '{';
    json_array_foreach(types, i, t)
    {
        len += (size_t)snprintf(out + len, cap - len, "%s\"%s\"", i ? "," : "",
                                json_string_value(t));
    }
    out[len++] = '}';
    out[len] = '\0';
    return out;
}

static bool record(tf_req *req, const char *action, const char *id, json_t *before,
                   json_t *after)
{
    tf_origin o = tf_req_origin(req);
    audit_entry e = {action, "webhook", id, before, after};
    tf_problem *p = tf_req_problem(req);
    bool ok = audit_record(tf_req_tx(req), &o, &e, p) &&
              events_publish(tf_req_tx(req), &o, action, NULL, after ? after : before, p);
    json_decref(before);
    json_decref(after);
    return ok;
}

/* The values of url and event_types that have the right type, after
 * tf_json_check has reported the shapes: every problem is collected. */
static bool values_ok(const json_t *body, tf_problem *p)
{
    const char *url = json_string_value(json_object_get(body, "url"));
    const char *why = url ? events_url_refusal(url, events_cfg.allow_private) : NULL;
    if (why)
        tf_problem_invalid(p, "/url", "%s", why);
    const json_t *types = json_object_get(body, "event_types");
    if (json_is_array(types) && (json_array_size(types) == 0 || json_array_size(types) > 50))
        tf_problem_invalid(p, "/event_types", "must list 1 to 50 event types");
    size_t i;
    const json_t *t;
    json_array_foreach(types, i, t)
    {
        if (json_is_string(t) && !event_type_ok(json_string_value(t))) {
            char at[48];
            snprintf(at, sizeof at, "/event_types/%zu", i);
            tf_problem_invalid(p, at, "must be an event type like item.created, or *");
        }
    }
    return !tf_failed(p);
}

void webhooks_create(tf_req *req)
{
    static const tf_json_field fields[] = {
        {"url", TF_JT_STRING, true, false},
        {"event_types", TF_JT_STRING_ARRAY, true, false},
    };
    tf_problem *p = tf_req_problem(req);
    json_t *body = tf_req_json(req);
    if (!body)
        return;
    (void)tf_json_check(body, "", fields, sizeof fields / sizeof *fields, p);
    if (!values_ok(body, p))
        return;
    const char *url = json_string_value(json_object_get(body, "url"));
    const json_t *types = json_object_get(body, "event_types");
    char id[TF_UUID_LEN + 1];
    tf_uuid7(id);
    unsigned char secret[EVENTS_SECRET_BYTES];
    randombytes_buf(secret, sizeof secret);
    char *box = events_secret_seal(id, secret);
    char *lit = types_literal(types);
    const char *params[] = {id, url, lit, box, events_secret_key_id()};
    PGresult *r = tf_tx_exec(tf_req_tx(req), &insert_webhook, params, p);
    free(lit);
    free(box);
    json_t *hook = r ? json_loads(tf_val(r, 0, 0), 0, NULL) : NULL;
    if (hook && record(req, "webhook.created", id, NULL,
                       json_pack("{s:s, s:O}", "url", url, "event_types", types))) {
        size_t b64 = sodium_base64_ENCODED_LEN(sizeof secret, sodium_base64_VARIANT_ORIGINAL);
        char enc[8 + sodium_base64_ENCODED_LEN(EVENTS_SECRET_BYTES, sodium_base64_VARIANT_ORIGINAL)];
        memcpy(enc, "whsec_", 6);
        sodium_bin2base64(enc + 6, b64, secret, sizeof secret, sodium_base64_VARIANT_ORIGINAL);
        json_object_set_new(hook, "secret", json_string(enc));
        sodium_memzero(enc, sizeof enc);
        char loc[64];
        snprintf(loc, sizeof loc, "/v1/webhooks/%s", id);
        tf_reply_header(req, "Location", loc);
        tf_reply_etag(req, 1);
        tf_reply_json(req, 201, hook);
        hook = NULL;
    }
    json_decref(hook);
    sodium_memzero(secret, sizeof secret);
}

static tf_stmt list_hooks = TF_STMT(
    "SELECT w.id, " WEBHOOK_JSON " FROM events.webhooks w"
    " WHERE w.tenant_id = platform.current_tenant() AND w.status <> 'deleted'"
    " AND ($1::uuid IS NULL OR w.id > $1::uuid) ORDER BY w.id LIMIT $2::integer", 2);
static tf_stmt list_attempts = TF_STMT(
    "SELECT a.id, jsonb_build_object('id', a.id, 'message_id', a.message_id,"
    " 'event_id', a.event_id, 'attempt', a.attempt, 'status_code', a.status_code,"
    " 'error', a.error, 'duration_ms', a.duration_ms, 'at', platform.rfc3339(a.at))::text"
    " FROM events.attempts a WHERE a.tenant_id = platform.current_tenant()"
    " AND a.webhook_id = $3::uuid AND ($1::uuid IS NULL OR a.id < $1::uuid)"
    " ORDER BY a.id DESC LIMIT $2::integer", 3);
static tf_stmt hook_exists = TF_STMT(
    "SELECT 1 FROM events.webhooks WHERE tenant_id = platform.current_tenant() AND id = $1::uuid"
    " AND status <> 'deleted'", 1);

/* A keyset-paged list: rows of (key, json); the cursor holds the last key. */
static void list(tf_req *req, tf_stmt *stmt, const char *what, const char *parent)
{
    tf_problem *p = tf_req_problem(req);
    int limit;
    if (!tf_parse_limit(tf_req_query(req, "limit"), &limit, p))
        return;
    const char *scope = tf_arena_printf(tf_req_arena(req), "%s|%s|%s",
                                        tf_tx_tenant(tf_req_tx(req)), what, parent ? parent : "");
    const char *after = NULL;
    const char *cursor = tf_req_query(req, "cursor");
    if (cursor) {
        json_t *pos = tf_cursor_decode(scope, cursor, p);
        const char *a = json_string_value(json_object_get(pos, "a"));
        if (pos && (!a || !tf_uuid_parse_ok(a, strlen(a))))
            tf_problem_bad_param(p, "cursor", "not a cursor issued by this endpoint");
        else if (pos)
            after = tf_arena_strdup(tf_req_arena(req), a);
        json_decref(pos);
        if (tf_failed(p))
            return;
    }
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *params[] = {after, lim, parent};
    PGresult *r = tf_tx_exec(tf_req_tx(req), stmt, params, p);
    if (!r)
        return;
    tf_reply_page(req, r, 1, limit, scope, "a", 0);
}

void webhooks_list(tf_req *req)
{
    list(req, &list_hooks, "webhooks", NULL);
}

static const char *hook_id(tf_req *req)
{
    const char *id = tf_req_param(req, "id");
    if (!tf_uuid_parse_ok(id, strlen(id))) {
        tf_problem_set(tf_req_problem(req), TF_PB_NOT_FOUND, "No such webhook.");
        return NULL;
    }
    return id;
}

void webhooks_deliveries(tf_req *req)
{
    const char *id = hook_id(req);
    const char *params[] = {id};
    if (id && tf_tx_exec_one(tf_req_tx(req), &hook_exists, params, "No such webhook.",
                             tf_req_problem(req)))
        list(req, &list_attempts, "deliveries", id);
}

/* As listed: a deleted subscription is not found. */
static tf_stmt get_hook = TF_STMT(
    "SELECT " WEBHOOK_JSON ", w.version FROM events.webhooks w"
    " WHERE w.tenant_id = platform.current_tenant() AND w.id = $1::uuid"
    " AND w.status <> 'deleted'", 1);

void webhooks_get(tf_req *req)
{
    const char *id = hook_id(req);
    if (!id)
        return;
    const char *params[] = {id};
    PGresult *r = tf_tx_exec_one(tf_req_tx(req), &get_hook, params, "No such webhook.",
                                 tf_req_problem(req));
    if (!r || tf_req_not_modified(req, tf_val_int(r, 0, 1)))
        return;
    tf_reply_etag(req, tf_val_int(r, 0, 1));
    tf_reply_text(req, 200, "application/json; charset=utf-8", tf_val(r, 0, 0),
                  strlen(tf_val(r, 0, 0)));
}

static tf_stmt lock_hook = TF_STMT(
    "SELECT w.url, to_jsonb(w.event_types)::text, w.status, w.version FROM events.webhooks w"
    " WHERE w.tenant_id = platform.current_tenant() AND w.id = $1::uuid"
    " AND w.status <> 'deleted' FOR UPDATE", 1);
/* Disabling fails what the subscription still had to send, as a DELETE or a
 * 410 does; enabling clears the reason, and events from then on are sent
 * (the feed has the ones in between). */
static tf_stmt update_hook = TF_STMT(
    "WITH n AS (SELECT coalesce($2, w.url) AS url, CASE WHEN $3::text[] IS NULL"
    "     THEN w.event_types ELSE " EVENT_TYPES("$3") " END AS event_types,"
    "     coalesce($4, w.status) AS status FROM events.webhooks w"
    "   WHERE w.tenant_id = platform.current_tenant() AND w.id = $1::uuid),"
    " w AS (UPDATE events.webhooks w SET url = n.url, event_types = n.event_types,"
    "   status = n.status, version = w.version + (ROW(n.url, n.event_types, n.status)"
    "     IS DISTINCT FROM ROW(w.url, w.event_types, w.status))::integer,"
    "   disabled_reason = CASE WHEN $4 = 'active' THEN NULL"
    "     WHEN $4 = 'disabled' AND w.status = 'active' THEN 'disabled through the API'"
    "     ELSE w.disabled_reason END"
    "   FROM n WHERE w.tenant_id = platform.current_tenant() AND w.id = $1::uuid RETURNING w.*),"
    " m AS (UPDATE events.messages SET status = 'failed'"
    "   WHERE tenant_id = platform.current_tenant() AND status = 'pending'"
    "   AND webhook_id IN (SELECT id FROM w WHERE status = 'disabled'))"
    " SELECT " WEBHOOK_JSON ", w.version FROM w", 4);

void webhooks_patch(tf_req *req)
{
    static const tf_json_field fields[] = {
        {"url", TF_JT_STRING, false, false},
        {"event_types", TF_JT_STRING_ARRAY, false, false},
        {"status", TF_JT_STRING, false, false},
    };
    tf_problem *p = tf_req_problem(req);
    const char *id = hook_id(req);
    json_t *body = id ? tf_req_json(req) : NULL;
    if (!body)
        return;
    (void)tf_json_check(body, "", fields, sizeof fields / sizeof *fields, p);
    if (json_object_size(body) == 0)
        tf_problem_invalid(p, "", "url, event_types or status must be given");
    const char *status = json_string_value(json_object_get(body, "status"));
    if (status && strcmp(status, "active") != 0 && strcmp(status, "disabled") != 0)
        tf_problem_invalid(p, "/status", "must be active or disabled (DELETE removes it)");
    if (!values_ok(body, p))
        return;
    const char *params[] = {id};
    PGresult *old = tf_tx_exec_one(tf_req_tx(req), &lock_hook, params, "No such webhook.", p);
    if (!old || !tf_req_if_match(req, tf_val_int(old, 0, 3), "webhook"))
        return;
    const json_t *types = json_object_get(body, "event_types");
    char *lit = types ? types_literal(types) : NULL;
    const char *up[] = {id, tf_json_str(body, "url"), lit, status};
    PGresult *r = tf_tx_exec(tf_req_tx(req), &update_hook, up, p);
    free(lit);
    json_t *hook = r ? json_loads(tf_val(r, 0, 0), 0, NULL) : NULL;
    if (!hook)
        return;
    json_t *before = json_object(), *after = json_object();
    audit_changed(before, after, "url", tf_val(old, 0, 0), tf_json_str(body, "url"));
    json_t *old_types = json_loads(tf_val(old, 0, 1), 0, NULL);
    if (types && !json_equal(old_types, json_object_get(hook, "event_types"))) {
        json_object_set(before, "event_types", old_types);
        json_object_set(after, "event_types", json_object_get(hook, "event_types"));
    }
    json_decref(old_types);
    audit_changed(before, after, "status", tf_val(old, 0, 2), status);
    bool ok = true;
    if (json_object_size(after) > 0) {
        ok = record(req, "webhook.updated", id, before, after);
    } else { /* nothing changed, nothing to record */
        json_decref(before);
        json_decref(after);
    }
    if (ok) {
        tf_reply_etag(req, tf_val_int(r, 0, 1));
        tf_reply_json(req, 200, hook);
    } else {
        json_decref(hook);
    }
}

/* What the webhook still had to send is failed with it: nothing would ever
 * deliver it, and a pending message holds its event back from the purge. */
static tf_stmt delete_hook = TF_STMT(
    "WITH w AS (UPDATE events.webhooks w SET status = 'deleted'"
    "   WHERE w.tenant_id = platform.current_tenant() AND w.id = $1::uuid"
    "   AND w.status <> 'deleted' RETURNING w.id, w.url, w.event_types),"
    " m AS (UPDATE events.messages SET status = 'failed'"
    "   WHERE tenant_id = platform.current_tenant() AND webhook_id IN (SELECT id FROM w)"
    "   AND status = 'pending')"
    " SELECT w.url, to_jsonb(w.event_types)::text FROM w", 1);

void webhooks_delete(tf_req *req)
{
    const char *id = hook_id(req);
    if (!id)
        return;
    const char *params[] = {id};
    PGresult *r = tf_tx_exec_one(tf_req_tx(req), &delete_hook, params, "No such webhook.",
                                 tf_req_problem(req));
    if (!r)
        return;
    json_t *before = json_pack("{s:s, s:o}", "url", tf_val(r, 0, 0), "event_types",
                               json_loads(tf_val(r, 0, 1), 0, NULL));
    if (record(req, "webhook.deleted", id, before, NULL))
        tf_reply_text(req, 204, NULL, "", 0);
}
