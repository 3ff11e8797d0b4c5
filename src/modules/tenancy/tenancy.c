/*
 * Tenancy: the operator's view of tenants, and the operator credential.
 *
 * Tenants are tenant data too: a tenant row is visible only to a transaction
 * bound to that tenant. The operator reads and changes one tenant by binding
 * its transaction to that tenant id first, and lists tenants through the one
 * SECURITY DEFINER function made for it, so no bypass role exists.
 */
#include "tenantflow/tenancy.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tenantflow/access.h"
#include "tenantflow/audit.h"
#include "tenantflow/events.h"
#include "tenantflow/crypto.h"
#include "tenantflow/cursor.h"
#include "tenantflow/json.h"
#include "tenantflow/text.h"

#define TENANT_COLUMNS                                                                        \
    "id, slug, name, status, version, platform.rfc3339(created_at), "                        \
    "platform.rfc3339(updated_at)"

static json_t *tenant_json(const PGresult *r, int row)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s}", "id", tf_val(r, row, 0), "slug",
                     tf_val(r, row, 1), "name", tf_val(r, row, 2), "status", tf_val(r, row, 3),
                     "version", (json_int_t)tf_val_int(r, row, 4), "created_at",
                     tf_val(r, row, 5), "updated_at", tf_val(r, row, 6));
}

static void reply_tenant(tf_req *req, int status, const PGresult *r)
{
    tf_reply_etag(req, tf_val_int(r, 0, 4));
    if (status == 201) {
        char loc[96];
        snprintf(loc, sizeof loc, "/v1/admin/tenants/%s", tf_val(r, 0, 0));
        tf_reply_header(req, "Location", loc);
    }
    tf_reply_json(req, status, tenant_json(r, 0));
}

/* Binds the transaction to the tenant named in the path; 404 for a malformed id. */
static bool bind_path_tenant(tf_req *req, const char **id)
{
    *id = tf_req_param(req, "id");
    if (!tf_uuid_parse_ok(*id, strlen(*id))) {
        tf_problem_set(tf_req_problem(req), TF_PB_NOT_FOUND, "No such tenant.");
        return false;
    }
    return tf_tx_set_tenant(tf_req_tx(req), *id, tf_req_problem(req));
}

/* Audit record and event of a tenant change (after is stolen); operator
 * changes appear in that tenant's own trail. */
static bool record(tf_req *req, const char *action, const char *id, json_t *before, json_t *after)
{
    tf_origin o = tf_req_origin(req);
    audit_entry e = {action, "tenant", id, before, after};
    tf_problem *p = tf_req_problem(req);
    bool ok = audit_record(tf_req_tx(req), &o, &e, p) &&
              events_publish(tf_req_tx(req), &o, action, NULL, after, p);
    json_decref(before);
    json_decref(after);
    return ok;
}

static tf_stmt slug_taken = TF_STMT("SELECT tenancy.slug_taken($1)", 1);
static tf_stmt insert_tenant = TF_STMT(
    "INSERT INTO tenancy.tenants (id, slug, name) VALUES ($1, $2, $3) RETURNING " TENANT_COLUMNS,
    3);

static void create_tenant(tf_req *req)
{
    static const tf_json_field fields[] = {
        {"slug", TF_JT_STRING, true, false},
        {"name", TF_JT_STRING, true, false},
        {"admin_email", TF_JT_STRING, true, false},
        {"admin_password", TF_JT_STRING, true, false},
    };
    tf_problem *p = tf_req_problem(req);
    json_t *body = TF_REQ_BODY(req, fields);
    if (!body)
        return;
    const char *slug = tf_json_str(body, "slug");
    const char *name = tf_json_str(body, "name");
    if (!tf_is_slug(slug, 2, 63))
        tf_problem_invalid(p, "/slug", "must match ^[a-z0-9][a-z0-9-]{1,62}$");
    (void)tf_check_text(name, "/name", 1, 200, p);
    if (tf_failed(p))
        return;
    tf_tx *tx = tf_req_tx(req);
    const char *sp[] = {slug};
    PGresult *r = tf_tx_exec(tx, &slug_taken, sp, p);
    if (!r)
        return;
    if (tf_val_bool(r, 0, 0)) {
        tf_problem_set(p, TF_PB_CONFLICT, "The slug %s is already taken.", slug);
        return;
    }
    char id[37];
    tf_uuid7(id);
    if (!tf_tx_set_tenant(tx, id, p))
        return;
    const char *ip[] = {id, slug, name};
    r = tf_tx_exec(tx, &insert_tenant, ip, p);
    if (!r) {
        if (strcmp(tf_tx_sqlstate(tx), "23505") == 0) {
            tf_problem_clear(p);
            tf_problem_set(p, TF_PB_CONFLICT, "The slug %s is already taken.", slug);
        }
        return;
    }
    if (!access_bootstrap_tenant(tx, tf_json_str(body, "admin_email"),
                                 tf_json_str(body, "admin_password"), p))
        return;
    /* The password never reaches the trail; the admin's email does. */
    json_t *after = json_pack("{s:s, s:s, s:s, s:s}", "slug", slug, "name", name, "status",
                              "active", "admin_email", tf_json_str(body, "admin_email"));
    if (!record(req, "tenant.created", id, NULL, after))
        return;
    reply_tenant(req, 201, r);
}

static tf_stmt list_stmt = TF_STMT("SELECT " TENANT_COLUMNS
                                   " FROM tenancy.list_tenants($1::uuid, $2::integer)",
                                   2);

static void list_tenants(tf_req *req)
{
    tf_problem *p = tf_req_problem(req);
    int limit;
    if (!tf_parse_limit(tf_req_query(req, "limit"), &limit, p))
        return;
    const char *after = NULL;
    json_t *pos = NULL;
    const char *cursor = tf_req_query(req, "cursor");
    if (cursor) {
        pos = tf_cursor_decode("operator|tenants", cursor, p);
        if (!pos)
            return;
        const char *a = json_string_value(json_object_get(pos, "a"));
        after = tf_arena_strdup(tf_req_arena(req), a ? a : "");
        json_decref(pos);
        if (!tf_uuid_parse_ok(after, strlen(after))) {
            tf_problem_bad_param(p, "cursor", "not a cursor issued by this endpoint");
            return;
        }
    }
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *params[] = {after, lim};
    PGresult *r = tf_tx_exec(tf_req_tx(req), &list_stmt, params, p);
    if (!r)
        return;
    int n = PQntuples(r);
    json_t *data = json_array();
    for (int i = 0; i < n && i < limit; i++)
        json_array_append_new(data, tenant_json(r, i));
    json_t *next = json_null();
    if (n > limit) {
        json_t *c = json_pack("{s:s}", "a", tf_val(r, limit - 1, 0));
        char *enc = tf_cursor_encode("operator|tenants", c);
        json_decref(c);
        next = json_string(enc);
        free(enc);
    }
    tf_reply_json(req, 200, json_pack("{s:o, s:o}", "data", data, "next_cursor", next));
}

static tf_stmt get_stmt = TF_STMT(
    "SELECT " TENANT_COLUMNS " FROM tenancy.tenants WHERE id = platform.current_tenant()", 0);

static void get_tenant(tf_req *req)
{
    const char *id;
    if (!bind_path_tenant(req, &id))
        return;
    PGresult *r = tf_tx_exec_one(tf_req_tx(req), &get_stmt, NULL, "No such tenant.",
                                 tf_req_problem(req));
    if (r && !tf_req_not_modified(req, tf_val_int(r, 0, 4)))
        reply_tenant(req, 200, r);
}

/* An If-Match is checked against the locked row before the update. */
static tf_stmt lock_stmt = TF_STMT(
    "SELECT version FROM tenancy.tenants WHERE id = platform.current_tenant() FOR UPDATE", 0);
/* The old values come from a locked sub-select joined into the UPDATE, so
 * they are read before the row changes. */
static tf_stmt update_stmt = TF_STMT(
    "UPDATE tenancy.tenants t SET name = coalesce($1, t.name), status = coalesce($2, t.status),"
    " version = t.version + 1, updated_at = now()"
    " FROM (SELECT id, name, status FROM tenancy.tenants"
    "       WHERE id = platform.current_tenant() FOR UPDATE) old"
    " WHERE t.id = old.id RETURNING t.id, t.slug, t.name, t.status, t.version,"
    " platform.rfc3339(t.created_at), platform.rfc3339(t.updated_at), old.name, old.status",
    2);

static void update_tenant(tf_req *req)
{
    static const tf_json_field fields[] = {
        {"name", TF_JT_STRING, false, false},
        {"status", TF_JT_STRING, false, false},
    };
    tf_problem *p = tf_req_problem(req);
    json_t *body = TF_REQ_BODY(req, fields);
    if (!body)
        return;
    const char *name = tf_json_str(body, "name");
    const char *status = tf_json_str(body, "status");
    if (name)
        (void)tf_check_text(name, "/name", 1, 200, p);
    if (status && strcmp(status, "active") != 0 && strcmp(status, "suspended") != 0)
        tf_problem_invalid(p, "/status", "must be \"active\" or \"suspended\"");
    if (tf_failed(p))
        return;
    const char *id;
    if (!tf_req_if_match_valid(req) || !bind_path_tenant(req, &id))
        return;
    if (tf_req_header(req, "If-Match")) {
        PGresult *v = tf_tx_exec_one(tf_req_tx(req), &lock_stmt, NULL, "No such tenant.", p);
        if (!v || !tf_req_if_match(req, tf_val_int(v, 0, 0), "tenant"))
            return;
    }
    const char *params[] = {name, status};
    PGresult *r = tf_tx_exec_one(tf_req_tx(req), &update_stmt, params, "No such tenant.", p);
    if (!r)
        return;
    json_t *before = json_object(), *after = json_object();
    audit_changed(before, after, "name", tf_val(r, 0, 7), tf_val(r, 0, 2));
    audit_changed(before, after, "status", tf_val(r, 0, 8), tf_val(r, 0, 3));
    if (record(req, "tenant.updated", id, before, after))
        reply_tenant(req, 200, r);
}

static tf_stmt operator_stmt = TF_STMT("SELECT id, name FROM tenancy.operator_by_token($1)", 1);

static bool resolve_operator(tf_tx *tx, tf_arena *arena, const tf_credential *cred,
                             tf_principal *out, tf_problem *p)
{
    char hex[2 * 32 + 3] = "\\x";
    tf_hex(cred->hash, 32, hex + 2);
    const char *params[] = {hex};
    PGresult *r = tf_tx_exec(tx, &operator_stmt, params, p);
    if (!r)
        return false;
    if (PQntuples(r) != 1) {
        tf_problem_set(p, TF_PB_INVALID_TOKEN, "The credential is not valid.");
        return false;
    }
    out->type = TF_ACTOR_OPERATOR;
    out->id = tf_arena_strdup(arena, tf_val(r, 0, 0));
    out->name = tf_arena_strdup(arena, tf_val(r, 0, 1));
    return true;
}

static tf_stmt current_stmt = TF_STMT(
    "SELECT id, slug, status, name FROM tenancy.tenants WHERE id = platform.current_tenant()", 0);
static tf_stmt by_slug_stmt = TF_STMT("SELECT id, status FROM tenancy.tenant_by_slug($1)", 1);

tf_stmt *tenancy_current_stmt(void)
{
    return &current_stmt;
}

bool tenancy_current(tf_tx *tx, tenancy_tenant *out, tf_problem *p)
{
    PGresult *r = tf_tx_exec(tx, &current_stmt, NULL, p);
    if (!r)
        return false;
    if (PQntuples(r) != 1) {
        tf_problem_set(p, TF_PB_INVALID_TOKEN, "The credential is not valid.");
        return false;
    }
    snprintf(out->id, sizeof out->id, "%s", tf_val(r, 0, 0));
    snprintf(out->slug, sizeof out->slug, "%s", tf_val(r, 0, 1));
    snprintf(out->status, sizeof out->status, "%s", tf_val(r, 0, 2));
    snprintf(out->name, sizeof out->name, "%s", tf_val(r, 0, 3));
    return true;
}

bool tenancy_by_slug(tf_tx *tx, const char *slug, tenancy_tenant *out, tf_problem *p)
{
    const char *params[] = {slug};
    PGresult *r = tf_tx_exec(tx, &by_slug_stmt, params, p);
    if (!r || PQntuples(r) != 1)
        return false;
    snprintf(out->id, sizeof out->id, "%s", tf_val(r, 0, 0));
    snprintf(out->slug, sizeof out->slug, "%s", slug);
    snprintf(out->status, sizeof out->status, "%s", tf_val(r, 0, 1));
    out->name[0] = '\0';
    return true;
}

bool tenancy_operator_create(PGconn *conn, const char *name, char *err, size_t errsz)
{
    char *token = tf_secret_new("tfo_");
    unsigned char hash[32];
    tf_secret_hash(token, strlen(token), hash);
    char hex[2 * 32 + 3] = "\\x";
    tf_hex(hash, 32, hex + 2);
    const char *params[] = {name, hex};
    PGresult *r = PQexecParams(conn,
                               "INSERT INTO tenancy.operators (name, token_hash) VALUES ($1, $2)",
                               2, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (ok)
        printf("%s\n", token);
    else
        snprintf(err, errsz, "cannot create operator: %s", PQerrorMessage(conn));
    PQclear(r);
    sodium_memzero(token, strlen(token));
    free(token);
    return ok;
}

static const tf_route routes[] = {
    {"POST", "/v1/admin/tenants", TF_OPERATOR, create_tenant, NULL,
     "Create a tenant with its first admin", 0, NULL},
    {"GET", "/v1/admin/tenants", TF_OPERATOR, list_tenants, "limit,cursor", "List tenants", 0,
     NULL},
    {"GET", "/v1/admin/tenants/{id}", TF_OPERATOR, get_tenant, NULL, "Get a tenant", 0, NULL},
    {"PATCH", "/v1/admin/tenants/{id}", TF_OPERATOR, update_tenant, NULL,
     "Rename, suspend or reactivate a tenant", 0, NULL},
};

bool tenancy_register(tf_router *r, char *err, size_t errsz)
{
    tf_auth_set_operator_resolver(resolve_operator);
    return tf_router_add_all(r, routes, sizeof routes / sizeof *routes, err, errsz);
}
