/*
 * Users of a tenant: create, list, read, update (name, status, password) and
 * role assignment.
 *
 * The one thing to know: nobody can hand out or take over more power than
 * they hold. Creating a user with roles, assigning roles, or changing a user
 * (status, password) whose roles grant something the caller lacks is a 403;
 * otherwise a users:write holder could reset an admin's password and log in
 * as that admin. The last active admin can be neither disabled nor stripped
 * of the admin role (409). Emails are compared through access.email_key()
 * (trimmed, NFC, lower case), the same expression the unique index uses.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tenantflow/audit.h"
#include "tenantflow/crypto.h"
#include "tenantflow/json.h"
#include "tenantflow/text.h"

#define USER_JSON                                                                             \
    "jsonb_build_object('id', u.id, 'email', u.email, 'name', u.name, 'status', u.status,"  \
    " 'roles', (SELECT coalesce(jsonb_agg(r.name ORDER BY lower(r.name)), '[]')"            \
    "   FROM access.user_roles ur JOIN access.roles r"                                      \
    "     ON r.tenant_id = ur.tenant_id AND r.id = ur.role_id"                              \
    "   WHERE ur.tenant_id = u.tenant_id AND ur.user_id = u.id),"                           \
    " 'version', u.version, 'created_at', platform.rfc3339(u.created_at),"                  \
    " 'updated_at', platform.rfc3339(u.updated_at))::text, u.version, u.id"

static const char not_found[] = "No such user.";

static tf_stmt email_taken = TF_STMT(
    "SELECT 1 FROM access.users WHERE tenant_id = platform.current_tenant()"
    " AND access.email_key(email) = access.email_key($1)", 1);
static tf_stmt insert_user = TF_STMT(
    "INSERT INTO access.users (tenant_id, id, email, name, password_hash)"
    " VALUES (platform.current_tenant(), $1, $2, $3, $4)", 4);
static tf_stmt insert_roles = TF_STMT(
    "INSERT INTO access.user_roles (tenant_id, user_id, role_id)"
    " SELECT platform.current_tenant(), $1, unnest($2::uuid[])", 2);
static tf_stmt get_user = TF_STMT(
    "SELECT " USER_JSON " FROM access.users u"
    " WHERE u.tenant_id = platform.current_tenant() AND u.id = $1", 1);

static void email_conflict(tf_problem *p)
{
    tf_problem_set(p, TF_PB_CONFLICT, "A user with this email already exists in the tenant.");
}

/* Hashes a password into a malloc'd PHC string, or NULL with a 500. */
static char *hash_password(const char *pw, tf_problem *p)
{
    char *h = tf_password_hash(pw, strlen(pw));
    if (!h)
        tf_problem_internal(p, "password hashing failed");
    return h;
}

void access_create_user(tf_req *req)
{
    static const tf_json_field fields[] = {
        {"email", TF_JT_STRING, true, false},
        {"name", TF_JT_STRING, true, false},
        {"password", TF_JT_STRING, true, false},
        {"roles", TF_JT_STRING_ARRAY, false, true},
    };
    tf_problem *p = tf_req_problem(req);
    tf_tx *tx = tf_req_tx(req);
    json_t *body = TF_REQ_BODY(req, fields);
    if (!body)
        return;
    char trimmed[512];
    const char *email = access_trim_email(tf_json_str(body, "email"), trimmed, sizeof trimmed);
    const char *password = tf_json_str(body, "password");
    (void)access_check_email(email, "/email", p);
    (void)tf_check_text(tf_json_str(body, "name"), "/name", 1, 200, p);
    (void)access_check_password(password, "/password", p);
    if (tf_failed(p) || !access_lock(tx, p))
        return;
    access_roleset rs;
    if (!access_resolve_roles(req, json_object_get(body, "roles"), "/roles", &rs) ||
        !access_caller_holds(req, rs.perms, rs.nperms, "give these roles"))
        return;
    const char *ep[] = {email};
    PGresult *r = tf_tx_exec(tx, &email_taken, ep, p);
    if (!r)
        return;
    if (PQntuples(r) > 0) {
        email_conflict(p);
        return;
    }
    char *hash = hash_password(password, p);
    if (!hash)
        return;
    char id[37];
    tf_uuid7(id);
    const char *ip[] = {id, email, tf_json_str(body, "name"), hash};
    r = tf_tx_exec(tx, &insert_user, ip, p);
    sodium_memzero(hash, strlen(hash));
    free(hash);
    if (!r) {
        if (strcmp(tf_tx_sqlstate(tx), "23505") == 0) {
            tf_problem_clear(p);
            email_conflict(p);
        }
        return;
    }
    const char *rp[] = {id, rs.ids};
    if (!tf_tx_exec(tx, &insert_roles, rp, p))
        return;
    const char *gp[] = {id};
    if (!(r = tf_tx_exec_one(tx, &get_user, gp, not_found, p)))
        return;
    json_t *user = json_loads(tf_val(r, 0, 0), 0, NULL);
    json_t *after = json_pack("{s:O, s:O, s:O, s:O}", "email", json_object_get(user, "email"),
                              "name", json_object_get(user, "name"), "status",
                              json_object_get(user, "status"), "roles",
                              json_object_get(user, "roles"));
    bool ok = access_record(req, "user.created", "user", id, NULL, after, user);
    json_decref(after);
    json_decref(user);
    if (!ok)
        return;
    char loc[64];
    snprintf(loc, sizeof loc, "/v1/users/%s", id);
    access_reply_row(req, 201, tf_val(r, 0, 0), tf_val_int(r, 0, 1), loc);
}

static tf_stmt list_users = TF_STMT(
    "SELECT " USER_JSON " FROM access.users u"
    " WHERE u.tenant_id = platform.current_tenant() AND ($1::uuid IS NULL OR u.id > $1::uuid)"
    " ORDER BY u.id LIMIT $2::integer", 2);

void access_list_users(tf_req *req)
{
    int limit;
    const char *after;
    if (!access_page_start(req, "users", &limit, &after))
        return;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *params[] = {after, lim};
    PGresult *r = tf_tx_exec(tf_req_tx(req), &list_users, params, tf_req_problem(req));
    if (r)
        access_reply_page(req, "users", r, limit, 0, 2);
}

void access_get_user(tf_req *req)
{
    access_get_one(req, &get_user, not_found, true);
}

/* The user as it is now, locked: version, name, status, its effective
 * permissions and role names (JSON texts). */
static tf_stmt lock_user = TF_STMT(
    "SELECT u.version, u.name, u.status,"
    "  coalesce((SELECT jsonb_agg(DISTINCT perm) FROM access.user_roles ur"
    "    JOIN access.roles r ON r.tenant_id = ur.tenant_id AND r.id = ur.role_id,"
    "    unnest(r.permissions) perm WHERE ur.tenant_id = u.tenant_id AND ur.user_id = u.id),"
    "    '[]')::text,"
    "  (SELECT coalesce(jsonb_agg(r.name ORDER BY lower(r.name)), '[]') FROM access.user_roles ur"
    "    JOIN access.roles r ON r.tenant_id = ur.tenant_id AND r.id = ur.role_id"
    "    WHERE ur.tenant_id = u.tenant_id AND ur.user_id = u.id)::text"
    " FROM access.users u WHERE u.tenant_id = platform.current_tenant() AND u.id = $1"
    " FOR UPDATE", 1);

/* Locks the tenant and the target user; 403 when the target holds a
 * permission the caller lacks. */
static PGresult *lock_target(tf_req *req, const char *id, const char *what)
{
    tf_problem *p = tf_req_problem(req);
    tf_tx *tx = tf_req_tx(req);
    if (!access_lock(tx, p))
        return NULL;
    const char *params[] = {id};
    PGresult *r = tf_tx_exec_one(tx, &lock_user, params, not_found, p);
    if (!r)
        return NULL;
    size_t n;
    const char **perms = access_string_list(tf_req_arena(req), tf_val(r, 0, 3), &n);
    return access_caller_holds(req, perms, n, what) ? r : NULL;
}

static tf_stmt update_user = TF_STMT(
    "UPDATE access.users SET name = coalesce($2, name), status = coalesce($3, status),"
    " password_hash = coalesce($4, password_hash), version = version + 1, updated_at = now()"
    " WHERE tenant_id = platform.current_tenant() AND id = $1", 4);

void access_patch_user(tf_req *req)
{
    static const tf_json_field fields[] = {
        {"name", TF_JT_STRING, false, false},
        {"status", TF_JT_STRING, false, false},
        {"password", TF_JT_STRING, false, false},
    };
    tf_problem *p = tf_req_problem(req);
    tf_tx *tx = tf_req_tx(req);
    const char *id = access_path_id(req, not_found);
    if (!id)
        return;
    json_t *body = TF_REQ_BODY(req, fields);
    if (!body)
        return;
    const char *name = tf_json_str(body, "name");
    const char *status = tf_json_str(body, "status");
    const char *password = tf_json_str(body, "password");
    if (name)
        (void)tf_check_text(name, "/name", 1, 200, p);
    if (status && strcmp(status, "active") != 0 && strcmp(status, "disabled") != 0)
        tf_problem_invalid(p, "/status", "must be \"active\" or \"disabled\"");
    if (password)
        (void)access_check_password(password, "/password", p);
    if (!name && !status && !password)
        tf_problem_invalid(p, "", "name, status or password must be given");
    if (tf_failed(p))
        return;
    PGresult *old = lock_target(req, id, "change this user");
    if (!old || !tf_req_if_match(req, tf_val_int(old, 0, 0), "user"))
        return;
    char *hash = NULL;
    if (password && !(hash = hash_password(password, p)))
        return;
    const char *up[] = {id, name, status, hash};
    PGresult *r = tf_tx_exec(tx, &update_user, up, p);
    if (hash) {
        sodium_memzero(hash, strlen(hash));
        free(hash);
    }
    if (!r)
        return;
    bool disabling = status && strcmp(status, "disabled") == 0;
    if (disabling && !access_admin_remains(tx, p))
        return;
    const char *gp[] = {id};
    if (!(r = tf_tx_exec_one(tx, &get_user, gp, not_found, p)))
        return;
    json_t *before = json_object(), *after = json_object();
    audit_changed(before, after, "name", tf_val(old, 0, 1), name);
    audit_changed(before, after, "status", tf_val(old, 0, 2), status);
    if (password) /* the fact, never the value */
        json_object_set_new(after, "password_changed", json_true());
    json_t *user = json_loads(tf_val(r, 0, 0), 0, NULL);
    bool ok = access_record(req, "user.updated", "user", id, before, after, user);
    json_decref(user);
    json_decref(before);
    json_decref(after);
    if (ok)
        access_reply_row(req, 200, tf_val(r, 0, 0), tf_val_int(r, 0, 1), NULL);
}

static tf_stmt clear_roles = TF_STMT(
    "DELETE FROM access.user_roles WHERE tenant_id = platform.current_tenant() AND user_id = $1",
    1);
static tf_stmt bump_user = TF_STMT(
    "UPDATE access.users SET version = version + 1, updated_at = now()"
    " WHERE tenant_id = platform.current_tenant() AND id = $1", 1);

void access_put_user_roles(tf_req *req)
{
    static const tf_json_field fields[] = {
        {"roles", TF_JT_STRING_ARRAY, true, false},
    };
    tf_problem *p = tf_req_problem(req);
    tf_tx *tx = tf_req_tx(req);
    const char *id = access_path_id(req, not_found);
    if (!id)
        return;
    json_t *body = TF_REQ_BODY(req, fields);
    if (!body)
        return;
    PGresult *old = lock_target(req, id, "change this user's roles");
    if (!old || !tf_req_if_match(req, tf_val_int(old, 0, 0), "user"))
        return;
    access_roleset rs;
    if (!access_resolve_roles(req, json_object_get(body, "roles"), "/roles", &rs) ||
        !access_caller_holds(req, rs.perms, rs.nperms, "give these roles"))
        return;
    const char *ip[] = {id};
    const char *rp[] = {id, rs.ids};
    if (!tf_tx_exec(tx, &clear_roles, ip, p) || !tf_tx_exec(tx, &insert_roles, rp, p) ||
        !tf_tx_exec(tx, &bump_user, ip, p) || !access_admin_remains(tx, p))
        return;
    PGresult *r = tf_tx_exec_one(tx, &get_user, ip, not_found, p);
    if (!r)
        return;
    json_t *before = json_pack("{s:o}", "roles", json_loads(tf_val(old, 0, 4), 0, NULL));
    json_t *user = json_loads(tf_val(r, 0, 0), 0, NULL);
    json_t *after = json_pack("{s:O}", "roles", json_object_get(user, "roles"));
    bool ok = access_record(req, "user.roles_set", "user", id, before, after, user);
    json_decref(user);
    json_decref(before);
    json_decref(after);
    if (ok)
        access_reply_row(req, 200, tf_val(r, 0, 0), tf_val_int(r, 0, 1), NULL);
}
