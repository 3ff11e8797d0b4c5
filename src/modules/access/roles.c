/*
 * Roles: named permission lists. Every tenant starts with the built-in
 * admin ("*"), editor and viewer roles (see access_bootstrap_tenant).
 *
 * The one thing to know: a caller can only create, change or delete a role
 * whose permissions (before and after the change) it holds itself, so roles
 * never become a way to escalate. Built-in roles keep their names and cannot
 * be deleted, and admin keeps "*", so a tenant can always be administered.
 * API keys name their roles; renaming or deleting a role rewrites those
 * names in the same transaction, so a key never silently picks up a later
 * role of the same name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tenantflow/audit.h"
#include "tenantflow/crypto.h"
#include "tenantflow/json.h"

#define ROLE_JSON                                                                             \
    "jsonb_build_object('id', r.id, 'name', r.name, 'permissions', to_jsonb(r.permissions),"\
    " 'builtin', r.builtin, 'version', r.version,"                                          \
    " 'created_at', platform.rfc3339(r.created_at),"                                        \
    " 'updated_at', platform.rfc3339(r.updated_at))::text, r.version, r.id"

static const char not_found[] = "No such role.";

static bool role_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || !strchr("_.:-", c)))
            return false;
    }
    return true;
}

/* Validates name and permissions (either may be absent); the permissions as
 * a PostgreSQL array literal in *literal. */
static bool check_role_body(tf_req *req, const json_t *body, const char ***perms, size_t *nperms,
                            const char **literal)
{
    tf_problem *p = tf_req_problem(req);
    tf_arena *a = tf_req_arena(req);
    const char *name = tf_json_str(body, "name");
    if (name && !role_name_ok(name))
        tf_problem_invalid(p, "/name", "must match ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$");
    const json_t *list = json_object_get(body, "permissions");
    *nperms = 0;
    *perms = NULL;
    *literal = NULL;
    if (list) {
        size_t n = json_array_size(list);
        if (n > 100)
            tf_problem_invalid(p, "/permissions", "at most 100 permissions");
        *perms = tf_arena_alloc(a, (n ? n : 1) * sizeof **perms);
        size_t len = 3;
        for (size_t i = 0; i < n; i++) {
            const char *s = json_string_value(json_array_get(list, i));
            if (!access_permission_ok(s)) {
                char ptr[48];
                snprintf(ptr, sizeof ptr, "/permissions/%zu", i);
                tf_problem_invalid(p, ptr, "must be \"*\", \"name\", \"name:*\" or "
                                           "\"name:action\" of [a-z0-9_.-]");
                continue;
            }
            (*perms)[(*nperms)++] = s;
            len += strlen(s) + 3;
        }
        char *lit = tf_arena_alloc(a, len);
        strcpy(lit, "{");
        for (size_t i = 0; i < *nperms; i++) {
            if (i)
                strcat(lit, ",");
            /* Quoted, so a permission spelled "null" stays text, not NULL;
             * validated names hold no quote or backslash. */
            strcat(lit, "\"");
            strcat(lit, (*perms)[i]);
            strcat(lit, "\"");
        }
        strcat(lit, "}");
        *literal = lit;
    }
    return !tf_failed(p);
}

static tf_stmt list_roles = TF_STMT(
    "SELECT " ROLE_JSON " FROM access.roles r"
    " WHERE r.tenant_id = platform.current_tenant() AND ($1::uuid IS NULL OR r.id > $1::uuid)"
    " ORDER BY r.id LIMIT $2::integer", 2);

void access_list_roles(tf_req *req)
{
    int limit;
    const char *after;
    if (!access_page_start(req, "roles", &limit, &after))
        return;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *params[] = {after, lim};
    PGresult *r = tf_tx_exec(tf_req_tx(req), &list_roles, params, tf_req_problem(req));
    if (r)
        access_reply_page(req, "roles", r, limit, 0, 2);
}

static tf_stmt name_taken = TF_STMT(
    "SELECT 1 FROM access.roles WHERE tenant_id = platform.current_tenant()"
    " AND lower(name) = lower($1) AND ($2::uuid IS NULL OR id <> $2::uuid)", 2);
static tf_stmt insert_role = TF_STMT(
    "INSERT INTO access.roles (tenant_id, id, name, permissions)"
    " SELECT platform.current_tenant(), $1, $2, array(SELECT DISTINCT unnest($3::text[]) ORDER BY 1)",
    3);
static tf_stmt get_role = TF_STMT(
    "SELECT " ROLE_JSON " FROM access.roles r"
    " WHERE r.tenant_id = platform.current_tenant() AND r.id = $1", 1);

static void name_conflict(tf_problem *p, const char *name)
{
    tf_problem_set(p, TF_PB_CONFLICT, "A role named %s already exists (names ignore case).",
                   name);
}

/* 409 when another role has this name; true when it is free. */
static bool name_free(tf_req *req, const char *name, const char *except_id)
{
    const char *params[] = {name, except_id};
    PGresult *r = tf_tx_exec(tf_req_tx(req), &name_taken, params, tf_req_problem(req));
    if (!r)
        return false;
    if (PQntuples(r) > 0) {
        name_conflict(tf_req_problem(req), name);
        return false;
    }
    return true;
}

/* Maps a unique violation on the name to 409. */
static void maybe_conflict(tf_req *req, const char *name)
{
    tf_problem *p = tf_req_problem(req);
    if (strcmp(tf_tx_sqlstate(tf_req_tx(req)), "23505") == 0) {
        tf_problem_clear(p);
        name_conflict(p, name);
    }
}

void access_create_role(tf_req *req)
{
    static const tf_json_field fields[] = {
        {"name", TF_JT_STRING, true, false},
        {"permissions", TF_JT_STRING_ARRAY, true, false},
    };
    tf_problem *p = tf_req_problem(req);
    tf_tx *tx = tf_req_tx(req);
    json_t *body = TF_REQ_BODY(req, fields);
    if (!body)
        return;
    const char **perms, *literal;
    size_t n;
    if (!check_role_body(req, body, &perms, &n, &literal) ||
        !access_caller_holds(req, perms, n, "create this role") || !access_lock(tx, p))
        return;
    const char *name = tf_json_str(body, "name");
    if (!name_free(req, name, NULL))
        return;
    char id[37];
    tf_uuid7(id);
    const char *ip[] = {id, name, literal};
    if (!tf_tx_exec(tx, &insert_role, ip, p)) {
        maybe_conflict(req, name);
        return;
    }
    const char *gp[] = {id};
    PGresult *r = tf_tx_exec_one(tx, &get_role, gp, not_found, p);
    if (!r)
        return;
    json_t *role = json_loads(tf_val(r, 0, 0), 0, NULL);
    json_t *after = json_pack("{s:O, s:O}", "name", json_object_get(role, "name"),
                              "permissions", json_object_get(role, "permissions"));
    bool ok = access_record(req, "role.created", "role", id, NULL, after, role);
    json_decref(after);
    json_decref(role);
    if (!ok)
        return;
    char loc[64];
    snprintf(loc, sizeof loc, "/v1/roles/%s", id);
    access_reply_row(req, 201, tf_val(r, 0, 0), tf_val_int(r, 0, 1), loc);
}

void access_get_role(tf_req *req)
{
    access_get_one(req, &get_role, not_found, true);
}

static tf_stmt lock_role = TF_STMT(
    "SELECT r.version, r.name, to_jsonb(r.permissions)::text, r.builtin FROM access.roles r"
    " WHERE r.tenant_id = platform.current_tenant() AND r.id = $1 FOR UPDATE", 1);

/* Locks the tenant and the role; 403 unless the caller holds the role's
 * current permissions. */
static PGresult *lock_target(tf_req *req, const char *id, const char *what)
{
    tf_problem *p = tf_req_problem(req);
    if (!access_lock(tf_req_tx(req), p))
        return NULL;
    const char *params[] = {id};
    PGresult *r = tf_tx_exec_one(tf_req_tx(req), &lock_role, params, not_found, p);
    if (!r)
        return NULL;
    size_t n;
    const char **perms = access_string_list(tf_req_arena(req), tf_val(r, 0, 2), &n);
    return access_caller_holds(req, perms, n, what) ? r : NULL;
}

static tf_stmt update_role = TF_STMT(
    "UPDATE access.roles SET name = coalesce($2, name),"
    " permissions = CASE WHEN $3::text[] IS NULL THEN permissions"
    "   ELSE array(SELECT DISTINCT unnest($3::text[]) ORDER BY 1) END,"
    " version = version + 1, updated_at = now()"
    " WHERE tenant_id = platform.current_tenant() AND id = $1", 3);
static tf_stmt rename_in_keys = TF_STMT(
    "UPDATE access.api_keys SET roles = array(SELECT CASE WHEN lower(x) = lower($1) THEN $2"
    "   ELSE x END FROM unnest(roles) x)"
    " WHERE tenant_id = platform.current_tenant() AND lower($1) = ANY (SELECT lower(y) FROM"
    "   unnest(roles) y)", 2);

void access_patch_role(tf_req *req)
{
    static const tf_json_field fields[] = {
        {"name", TF_JT_STRING, false, false},
        {"permissions", TF_JT_STRING_ARRAY, false, false},
    };
    tf_problem *p = tf_req_problem(req);
    tf_tx *tx = tf_req_tx(req);
    const char *id = access_path_id(req, not_found);
    if (!id)
        return;
    json_t *body = TF_REQ_BODY(req, fields);
    if (!body)
        return;
    const char **perms, *literal;
    size_t n;
    const char *name = tf_json_str(body, "name");
    if (!name && !json_object_get(body, "permissions"))
        tf_problem_invalid(p, "", "name or permissions must be given");
    if (!check_role_body(req, body, &perms, &n, &literal))
        return;
    PGresult *old = lock_target(req, id, "change this role");
    if (!old || !tf_req_if_match(req, tf_val_int(old, 0, 0), "role") ||
        !access_caller_holds(req, perms, n, "give this role these permissions"))
        return;
    const char *old_name = tf_val(old, 0, 1);
    bool builtin = tf_val_bool(old, 0, 3);
    bool renaming = name && strcmp(name, old_name) != 0;
    if (builtin && renaming) {
        tf_problem_set(p, TF_PB_CONFLICT, "Built-in roles keep their names.");
        return;
    }
    if (builtin && literal && strcmp(old_name, "admin") == 0) {
        tf_problem_set(p, TF_PB_CONFLICT, "The built-in admin role always grants \"*\".");
        return;
    }
    if (renaming && !name_free(req, name, id))
        return;
    const char *up[] = {id, name, literal};
    if (!tf_tx_exec(tx, &update_role, up, p)) {
        maybe_conflict(req, name);
        return;
    }
    const char *kp[] = {old_name, name};
    if (renaming && !tf_tx_exec(tx, &rename_in_keys, kp, p))
        return;
    const char *gp[] = {id};
    PGresult *r = tf_tx_exec_one(tx, &get_role, gp, not_found, p);
    if (!r)
        return;
    json_t *role = json_loads(tf_val(r, 0, 0), 0, NULL);
    json_t *before = json_object(), *after = json_object();
    audit_changed(before, after, "name", old_name, name);
    json_t *old_perms = json_loads(tf_val(old, 0, 2), 0, NULL);
    if (!json_equal(old_perms, json_object_get(role, "permissions"))) {
        json_object_set(before, "permissions", old_perms);
        json_object_set(after, "permissions", json_object_get(role, "permissions"));
    }
    json_decref(old_perms);
    bool ok = access_record(req, "role.updated", "role", id, before, after, role);
    json_decref(before);
    json_decref(after);
    json_decref(role);
    if (ok)
        access_reply_row(req, 200, tf_val(r, 0, 0), tf_val_int(r, 0, 1), NULL);
}

static tf_stmt delete_role = TF_STMT(
    "DELETE FROM access.roles WHERE tenant_id = platform.current_tenant() AND id = $1", 1);
static tf_stmt drop_from_keys = TF_STMT(
    "UPDATE access.api_keys SET roles = array(SELECT x FROM unnest(roles) x"
    "   WHERE lower(x) <> lower($1))"
    " WHERE tenant_id = platform.current_tenant() AND lower($1) = ANY (SELECT lower(y) FROM"
    "   unnest(roles) y)", 1);

void access_delete_role(tf_req *req)
{
    tf_problem *p = tf_req_problem(req);
    tf_tx *tx = tf_req_tx(req);
    const char *id = access_path_id(req, not_found);
    if (!id)
        return;
    PGresult *old = lock_target(req, id, "delete this role");
    if (!old || !tf_req_if_match(req, tf_val_int(old, 0, 0), "role"))
        return;
    if (tf_val_bool(old, 0, 3)) {
        tf_problem_set(p, TF_PB_CONFLICT, "Built-in roles cannot be deleted.");
        return;
    }
    const char *params[] = {id};
    const char *kp[] = {tf_val(old, 0, 1)};
    if (!tf_tx_exec_one(tx, &delete_role, params, not_found, p) ||
        !tf_tx_exec(tx, &drop_from_keys, kp, p))
        return;
    json_t *before = json_pack("{s:s, s:o}", "name", tf_val(old, 0, 1), "permissions",
                               json_loads(tf_val(old, 0, 2), 0, NULL));
    json_t *data = json_pack("{s:s, s:s}", "id", id, "name", tf_val(old, 0, 1));
    bool ok = access_record(req, "role.deleted", "role", id, before, NULL, data);
    json_decref(before);
    json_decref(data);
    if (ok)
        tf_reply_text(req, 204, NULL, "", 0);
}
