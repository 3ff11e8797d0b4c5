/*
 * Helpers shared by the users, roles and API-key handlers: the tenant's
 * access lock, the "one admin remains" rule, role-name resolution, the rule
 * that nobody grants a permission they do not hold, change records and the
 * list convention.
 *
 * The one thing to know: every change to users, roles or keys first takes
 * access_lock(), a transaction-scoped advisory lock per tenant, and checks
 * its invariants after applying the change inside the same transaction. Two
 * requests disabling the last two admins at once are therefore applied one
 * after the other, and the second sees no admin left and fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tenantflow/audit.h"
#include "tenantflow/crypto.h"
#include "tenantflow/cursor.h"
#include "tenantflow/events.h"

static tf_stmt lock_stmt = TF_STMT(
    "SELECT pg_advisory_xact_lock(hashtextextended('access:' || platform.current_tenant(), 0))",
    0);

bool access_lock(tf_tx *tx, tf_problem *p)
{
    return tf_tx_exec(tx, &lock_stmt, NULL, p) != NULL;
}

static tf_stmt admins_stmt = TF_STMT(
    "SELECT EXISTS (SELECT 1 FROM access.users u"
    " JOIN access.user_roles ur ON ur.tenant_id = u.tenant_id AND ur.user_id = u.id"
    " JOIN access.roles r ON r.tenant_id = ur.tenant_id AND r.id = ur.role_id"
    " WHERE u.tenant_id = platform.current_tenant() AND u.status = 'active'"
    "   AND r.builtin AND r.name = 'admin')", 0);

bool access_admin_remains(tf_tx *tx, tf_problem *p)
{
    PGresult *r = tf_tx_exec(tx, &admins_stmt, NULL, p);
    if (!r)
        return false;
    if (!tf_val_bool(r, 0, 0)) {
        tf_problem_set(p, TF_PB_CONFLICT,
                       "The tenant must keep at least one active user with the admin role.");
        return false;
    }
    return true;
}

const char *access_path_id(tf_req *req, const char *not_found_detail)
{
    const char *id = tf_req_param(req, "id");
    if (!id || !tf_uuid_parse_ok(id, strlen(id))) {
        tf_problem_set(tf_req_problem(req), TF_PB_NOT_FOUND, "%s", not_found_detail);
        return NULL;
    }
    return id;
}

static tf_stmt roles_by_name = TF_STMT(
    "SELECT n.ord - 1, r.id, r.name, to_jsonb(r.permissions)::text"
    " FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY n(name, ord)"
    " LEFT JOIN access.roles r ON r.tenant_id = platform.current_tenant()"
    "   AND lower(r.name) = lower(n.name)"
    " ORDER BY n.ord", 1);

bool access_resolve_roles(tf_req *req, const json_t *names, const char *at, access_roleset *out)
{
    tf_problem *p = tf_req_problem(req);
    tf_arena *a = tf_req_arena(req);
    memset(out, 0, sizeof *out);
    if (json_array_size(names) > 64) {
        tf_problem_invalid(p, at, "at most 64 roles");
        return false;
    }
    char *text = json_dumps(names, JSON_COMPACT | JSON_ENCODE_ANY);
    const char *params[] = {text ? text : "[]"};
    PGresult *r = tf_tx_exec(tf_req_tx(req), &roles_by_name, params, p);
    free(text);
    if (!r)
        return false;
    int n = PQntuples(r);
    json_t *canon = json_array(), *perms = json_array();
    size_t idlen = 3;
    for (int i = 0; i < n; i++)
        idlen += 38;
    char *ids = tf_arena_alloc(a, idlen);
    strcpy(ids, "{");
    for (int i = 0; i < n; i++) {
        if (!tf_val(r, i, 1)) {
            char ptr[64];
            snprintf(ptr, sizeof ptr, "%s/%s", at, tf_val(r, i, 0));
            tf_problem_invalid(p, ptr, "no role with this name");
            continue;
        }
        const char *name = tf_val(r, i, 2);
        bool seen = false;
        size_t k;
        json_t *v;
        json_array_foreach(canon, k, v) seen = seen || strcmp(json_string_value(v), name) == 0;
        if (seen)
            continue;
        if (json_array_size(canon))
            strcat(ids, ",");
        strcat(ids, tf_val(r, i, 1));
        json_array_append_new(canon, json_string(name));
        json_t *rp = json_loads(tf_val(r, i, 3), 0, NULL);
        json_array_extend(perms, rp);
        json_decref(rp);
    }
    strcat(ids, "}");
    bool ok = !tf_failed(p);
    if (ok) {
        char *ct = json_dumps(canon, JSON_COMPACT);
        out->ids = ids;
        out->names = tf_arena_strdup(a, ct ? ct : "[]");
        free(ct);
        char *pt = json_dumps(perms, JSON_COMPACT);
        out->perms = access_string_list(a, pt, &out->nperms);
        free(pt);
    }
    json_decref(canon);
    json_decref(perms);
    return ok;
}

bool access_caller_holds(tf_req *req, const char *const *perms, size_t n, const char *what)
{
    const tf_principal *pr = tf_req_principal(req);
    for (size_t i = 0; i < n; i++) {
        if (!tf_principal_can(pr, perms[i])) {
            tf_problem_set(tf_req_problem(req), TF_PB_FORBIDDEN,
                           "You cannot %s: it needs the permission %s, which you do not hold.",
                           what, perms[i]);
            return false;
        }
    }
    return true;
}

bool access_record(tf_req *req, const char *action, const char *resource_type, const char *id,
                   const json_t *before, const json_t *after, const json_t *data)
{
    tf_origin o = tf_req_origin(req);
    audit_entry e = {action, resource_type, id, before, after};
    tf_problem *p = tf_req_problem(req);
    return audit_record(tf_req_tx(req), &o, &e, p) &&
           events_publish(tf_req_tx(req), &o, action, NULL, data, p);
}

static char *scope_of(tf_req *req, const char *endpoint)
{
    return tf_arena_printf(tf_req_arena(req), "%s|%s", tf_tx_tenant(tf_req_tx(req)), endpoint);
}

bool access_page_start(tf_req *req, const char *endpoint, int *limit, const char **after)
{
    tf_problem *p = tf_req_problem(req);
    *after = NULL;
    if (!tf_parse_limit(tf_req_query(req, "limit"), limit, p))
        return false;
    const char *cursor = tf_req_query(req, "cursor");
    if (!cursor)
        return true;
    json_t *pos = tf_cursor_decode(scope_of(req, endpoint), cursor, p);
    if (!pos)
        return false;
    const char *a = json_string_value(json_object_get(pos, "a"));
    bool ok = a && tf_uuid_parse_ok(a, strlen(a));
    if (ok)
        *after = tf_arena_strdup(tf_req_arena(req), a);
    else
        tf_problem_bad_param(p, "cursor", "not a cursor issued by this endpoint");
    json_decref(pos);
    return ok;
}

void access_reply_page(tf_req *req, const char *endpoint, const PGresult *r, int limit, int col,
                       int key_col)
{
    tf_reply_page(req, r, col, limit, scope_of(req, endpoint), "a", key_col);
}

void access_get_one(tf_req *req, tf_stmt *stmt, const char *not_found, bool versioned)
{
    const char *id = access_path_id(req, not_found);
    if (!id)
        return;
    const char *params[] = {id};
    PGresult *r = tf_tx_exec_one(tf_req_tx(req), stmt, params, not_found, tf_req_problem(req));
    if (!r)
        return;
    const char *json_text = tf_val(r, 0, 0);
    if (!versioned)
        tf_reply_text(req, 200, "application/json; charset=utf-8", json_text,
                      strlen(json_text));
    else if (!tf_req_not_modified(req, tf_val_int(r, 0, 1)))
        access_reply_row(req, 200, json_text, tf_val_int(r, 0, 1), NULL);
}

void access_reply_row(tf_req *req, int status, const char *json_text, long long version,
                      const char *location)
{
    tf_reply_etag(req, version);
    if (location)
        tf_reply_header(req, "Location", location);
    tf_reply_text(req, status, "application/json; charset=utf-8", json_text, strlen(json_text));
}

static bool name_part(const char *s, size_t n)
{
    if (n < 1 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
                  c == '-';
        if (!ok)
            return false;
    }
    return true;
}

bool access_permission_ok(const char *s)
{
    if (strcmp(s, "*") == 0)
        return true;
    const char *colon = strchr(s, ':');
    if (!colon)
        return name_part(s, strlen(s));
    const char *action = colon + 1;
    return name_part(s, (size_t)(colon - s)) &&
           (strcmp(action, "*") == 0 || name_part(action, strlen(action)));
}
