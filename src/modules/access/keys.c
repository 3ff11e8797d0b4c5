/*
 * API keys: long-lived credentials for services, each with its own roles and
 * an optional expiry.
 *
 * The one thing to know: the secret ("tfk_" + 43 base64url characters) is
 * returned once, in the creation response, and only its keyed hash is stored
 * (see tf_secret_hash), so neither the database nor the audit trail nor the
 * list and read endpoints can reveal it. The principal resolver checks
 * revocation and expiry on every request, in the database every server
 * process shares, so a revoked key fails on its very next request everywhere.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tenantflow/crypto.h"
#include "tenantflow/json.h"
#include "tenantflow/text.h"

#define KEY_JSON                                                                              \
    "jsonb_build_object('id', k.id, 'name', k.name, 'roles', to_jsonb(k.roles),"            \
    " 'expires_at', platform.rfc3339(k.expires_at),"                                        \
    " 'revoked_at', platform.rfc3339(k.revoked_at),"                                        \
    " 'created_at', platform.rfc3339(k.created_at))::text, k.id"

static const char not_found[] = "No such API key.";

static tf_stmt in_future = TF_STMT("SELECT $1::timestamptz > now()", 1);
static tf_stmt insert_key = TF_STMT(
    "INSERT INTO access.api_keys AS k (tenant_id, id, name, secret_hash, roles, expires_at)"
    " SELECT platform.current_tenant(), $1, $2, $3::bytea,"
    "   array(SELECT jsonb_array_elements_text($4::jsonb)), $5::timestamptz"
    " RETURNING " KEY_JSON, 5);

void access_create_key(tf_req *req)
{
    static const tf_json_field fields[] = {
        {"name", TF_JT_STRING, true, false},
        {"roles", TF_JT_STRING_ARRAY, true, false},
        {"expires_at", TF_JT_STRING, false, true},
    };
    tf_problem *p = tf_req_problem(req);
    tf_tx *tx = tf_req_tx(req);
    json_t *body = TF_REQ_BODY(req, fields);
    if (!body)
        return;
    (void)tf_check_text(tf_json_str(body, "name"), "/name", 1, 200, p);
    const char *expires = tf_json_str(body, "expires_at");
    if (expires && !tf_parse_rfc3339(expires, NULL))
        tf_problem_invalid(p, "/expires_at", "must be an RFC 3339 date-time");
    if (tf_failed(p) || !access_lock(tx, p))
        return;
    if (expires) {
        const char *ep[] = {expires};
        PGresult *r = tf_tx_exec(tx, &in_future, ep, p);
        if (!r)
            return;
        if (!tf_val_bool(r, 0, 0)) {
            tf_problem_invalid(p, "/expires_at", "must be in the future");
            return;
        }
    }
    access_roleset rs;
    if (!access_resolve_roles(req, json_object_get(body, "roles"), "/roles", &rs) ||
        !access_caller_holds(req, rs.perms, rs.nperms, "give a key these roles"))
        return;
    char *secret = tf_secret_new("tfk_");
    unsigned char hash[TF_SECRET_HASH_BYTES];
    tf_secret_hash(secret, strlen(secret), hash);
    char hex[2 * TF_SECRET_HASH_BYTES + 3] = "\\x";
    tf_hex(hash, sizeof hash, hex + 2);
    char id[37];
    tf_uuid7(id);
    const char *params[] = {id, tf_json_str(body, "name"), hex, rs.names, expires};
    PGresult *r = tf_tx_exec(tx, &insert_key, params, p);
    json_t *key = r ? json_loads(tf_val(r, 0, 0), 0, NULL) : NULL;
    /* The record describes the key, never its secret. */
    bool ok = key && access_record(req, "api_key.created", "api_key", id, NULL, key, key);
    if (ok) {
        json_object_set_new(key, "secret", json_string(secret));
        char loc[64];
        snprintf(loc, sizeof loc, "/v1/api-keys/%s", id);
        tf_reply_header(req, "Location", loc);
        tf_reply_json(req, 201, json_incref(key));
    }
    json_decref(key);
    sodium_memzero(secret, strlen(secret));
    free(secret);
}

static tf_stmt list_keys = TF_STMT(
    "SELECT " KEY_JSON " FROM access.api_keys k"
    " WHERE k.tenant_id = platform.current_tenant() AND ($1::uuid IS NULL OR k.id > $1::uuid)"
    " ORDER BY k.id LIMIT $2::integer", 2);

void access_list_keys(tf_req *req)
{
    int limit;
    const char *after;
    if (!access_page_start(req, "api-keys", &limit, &after))
        return;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *params[] = {after, lim};
    PGresult *r = tf_tx_exec(tf_req_tx(req), &list_keys, params, tf_req_problem(req));
    if (r)
        access_reply_page(req, "api-keys", r, limit, 0, 1);
}

/* Revoked keys too, as the list shows them. Keys have no version, so no ETag. */
static tf_stmt get_key = TF_STMT(
    "SELECT " KEY_JSON " FROM access.api_keys k"
    " WHERE k.tenant_id = platform.current_tenant() AND k.id = $1", 1);

void access_get_key(tf_req *req)
{
    access_get_one(req, &get_key, not_found, false);
}

static tf_stmt revoke_key = TF_STMT(
    "UPDATE access.api_keys AS k SET revoked_at = now()"
    " WHERE k.tenant_id = platform.current_tenant() AND k.id = $1 AND k.revoked_at IS NULL"
    " RETURNING " KEY_JSON, 1);

void access_delete_key(tf_req *req)
{
    tf_problem *p = tf_req_problem(req);
    const char *id = access_path_id(req, not_found);
    if (!id || !access_lock(tf_req_tx(req), p))
        return;
    const char *params[] = {id};
    /* Revoking twice touches no row: 404, never a second success. */
    PGresult *r = tf_tx_exec_one(tf_req_tx(req), &revoke_key, params,
                                 "No such API key (or it is already revoked).", p);
    if (!r)
        return;
    json_t *key = json_loads(tf_val(r, 0, 0), 0, NULL);
    json_t *before = json_pack("{s:n}", "revoked_at");
    json_t *after = json_pack("{s:O}", "revoked_at", json_object_get(key, "revoked_at"));
    bool ok = access_record(req, "api_key.revoked", "api_key", id, before, after, key);
    json_decref(before);
    json_decref(after);
    json_decref(key);
    if (ok)
        tf_reply_text(req, 204, NULL, "", 0);
}
