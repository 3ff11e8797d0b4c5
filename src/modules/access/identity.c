/*
 * Login, the principal resolver, /v1/me, the JWKS and tenant bootstrap.
 *
 * The one thing to know: every failed login gives the same 401 after the
 * same amount of work. An unknown tenant or user still costs one Argon2id
 * verification (against a dummy hash), and the database connection is given
 * back before the hash is checked, so slow hashing never holds the pool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "tenantflow/crypto.h"
#include "tenantflow/json.h"
#include "tenantflow/tenancy.h"
#include "tenantflow/text.h"

const tf_keyset *access_keys;
int access_token_ttl = 900;

static const char *const builtin_roles[][2] = {
    {"admin", "{*}"},
    {"editor", "{workflows:read,items:read,reports:read,items:write,events:read}"},
    {"viewer", "{workflows:read,items:read,reports:read}"},
};

const char *access_trim_email(const char *email, char *buf, size_t bufsz)
{
    while (*email == ' ' || *email == '\t' || *email == '\r' || *email == '\n')
        email++;
    size_t n = strlen(email);
    while (n && (email[n - 1] == ' ' || email[n - 1] == '\t' || email[n - 1] == '\r' ||
                 email[n - 1] == '\n'))
        n--;
    if (n >= bufsz)
        n = bufsz - 1; /* too long to be valid anyway: validation says so */
    memcpy(buf, email, n);
    buf[n] = '\0';
    return buf;
}

bool access_check_email(const char *email, const char *pointer, tf_problem *p)
{
    const char *at = strchr(email, '@');
    size_t n = strlen(email);
    bool ok = n >= 3 && n <= 254 && at && at != email && at[1] && !strchr(at + 1, '@') &&
              !strpbrk(email, " \t\r\n") && tf_text_no_controls(email);
    if (!ok)
        tf_problem_invalid(p, pointer, "must be an email address");
    return ok;
}

bool access_check_password(const char *password, const char *pointer, tf_problem *p)
{
    size_t n = tf_utf8_length(password);
    bool ok = n >= 8 && strlen(password) <= 1024;
    if (!ok)
        tf_problem_invalid(p, pointer, "must be 8 to 1024 bytes long");
    return ok;
}

const char **access_string_list(tf_arena *arena, const char *json_text, size_t *n)
{
    *n = 0;
    json_t *a = json_loads(json_text ? json_text : "[]", 0, NULL);
    size_t count = json_is_array(a) ? json_array_size(a) : 0;
    const char **out = tf_arena_alloc(arena, (count ? count : 1) * sizeof *out);
    for (size_t i = 0; i < count; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (s)
            out[(*n)++] = tf_arena_strdup(arena, s);
    }
    json_decref(a);
    return out;
}

static tf_stmt insert_role = TF_STMT(
    "INSERT INTO access.roles (tenant_id, name, permissions, builtin)"
    " VALUES (platform.current_tenant(), $1, $2::text[], true) RETURNING id", 2);
static tf_stmt insert_user = TF_STMT(
    "INSERT INTO access.users (tenant_id, email, name, password_hash)"
    " VALUES (platform.current_tenant(), $1, $2, $3) RETURNING id", 3);
static tf_stmt assign_role = TF_STMT(
    "INSERT INTO access.user_roles (tenant_id, user_id, role_id)"
    " VALUES (platform.current_tenant(), $1, $2)", 2);

bool access_bootstrap_tenant(tf_tx *tx, const char *email, const char *password, tf_problem *p)
{
    char trimmed[512];
    email = access_trim_email(email, trimmed, sizeof trimmed);
    bool ok = access_check_email(email, "/admin_email", p);
    ok = access_check_password(password, "/admin_password", p) && ok;
    if (!ok)
        return false;
    char admin_role[37] = "";
    for (size_t i = 0; i < sizeof builtin_roles / sizeof *builtin_roles; i++) {
        const char *params[] = {builtin_roles[i][0], builtin_roles[i][1]};
        PGresult *r = tf_tx_exec(tx, &insert_role, params, p);
        if (!r)
            return false;
        if (i == 0)
            snprintf(admin_role, sizeof admin_role, "%s", tf_val(r, 0, 0));
    }
    char *hash = tf_password_hash(password, strlen(password));
    if (!hash) {
        tf_problem_internal(p, "password hashing failed");
        return false;
    }
    const char *up[] = {email, "Administrator", hash};
    PGresult *r = tf_tx_exec(tx, &insert_user, up, p);
    free(hash);
    if (!r)
        return false;
    const char *rp[] = {tf_val(r, 0, 0), admin_role};
    return tf_tx_exec(tx, &assign_role, rp, p) != NULL;
}

static tf_stmt login_user = TF_STMT(
    "SELECT id, password_hash, status FROM access.users"
    " WHERE access.email_key(email) = access.email_key($1)", 1);

static void login_failed(tf_req *req)
{
    tf_problem_set(tf_req_problem(req), TF_PB_UNAUTHORIZED,
                   "The tenant, email or password is not right.");
}

static void too_many(tf_req *req, int wait)
{
    tf_problem *p = tf_req_problem(req);
    tf_problem_set(p, TF_PB_TOO_MANY_REQUESTS, "Too many failed logins; retry in %d seconds.",
                   wait);
    p->retry_after = wait;
}

/* The rate-limit key of the account a login names: the user when it exists
 * (so every spelling of its email counts together), otherwise the tenant
 * slug and the email as given, lower-cased. */
static char *account_key(tf_arena *a, const char *slug, const char *email, const char *user_id)
{
    if (user_id[0])
        return tf_arena_printf(a, "user:%s", user_id);
    char *lower = tf_arena_strdup(a, email);
    for (char *c = lower; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    return tf_arena_printf(a, "login:%s|%s", slug, lower);
}

void access_login(tf_req *req)
{
    static const tf_json_field fields[] = {
        {"tenant", TF_JT_STRING, true, false},
        {"email", TF_JT_STRING, true, false},
        {"password", TF_JT_STRING, true, false},
    };
    tf_problem *p = tf_req_problem(req);
    tf_arena *a = tf_req_arena(req);
    char *ip_key = tf_arena_printf(a, "ip:%s", tf_req_client_ip(req));
    int wait = access_limit_wait(&access_login_per_ip, ip_key);
    if (wait > 0) {
        too_many(req, wait);
        return;
    }
    json_t *body = TF_REQ_BODY(req, fields);
    if (!body)
        return;
    const char *password = tf_json_str(body, "password");
    size_t pwlen = strlen(password);
    tf_tx_ctx ctx = {.request_id = tf_req_id(req)};
    tf_tx *tx = tf_tx_begin(tf_req_pool(req), a, &ctx, p);
    if (!tx)
        return;
    tenancy_tenant t;
    char user_id[37] = "", *hash = NULL;
    bool active = false;
    if (tenancy_by_slug(tx, tf_json_str(body, "tenant"), &t, p) &&
        strcmp(t.status, "active") == 0 && tf_tx_set_tenant(tx, t.id, p)) {
        const char *params[] = {tf_json_str(body, "email")};
        PGresult *r = tf_tx_exec(tx, &login_user, params, p);
        if (r && PQntuples(r) == 1) {
            snprintf(user_id, sizeof user_id, "%s", tf_val(r, 0, 0));
            hash = tf_xstrdup(tf_val(r, 0, 1));
            active = strcmp(tf_val(r, 0, 2), "active") == 0;
        }
    }
    tf_tx_rollback(tx);
    if (tf_failed(p)) {
        free(hash);
        return;
    }
    const char *acct_key =
        account_key(a, tf_json_str(body, "tenant"), tf_json_str(body, "email"), user_id);
    wait = access_limit_wait(&access_login_per_account, acct_key);
    if (wait > 0) {
        free(hash);
        too_many(req, wait);
        return;
    }
    bool ok;
    if (hash)
        ok = tf_password_verify(hash, password, pwlen) && active;
    else
        tf_password_burn(password, pwlen), ok = false;
    free(hash);
    if (!ok) {
        access_limit_fail(&access_login_per_ip, ip_key);
        access_limit_fail(&access_login_per_account, acct_key);
        login_failed(req);
        return;
    }
    access_limit_reset(acct_key);
    tf_claims c = {.iat = (int64_t)time(NULL)};
    c.exp = c.iat + access_token_ttl;
    snprintf(c.sub, sizeof c.sub, "%s", user_id);
    snprintf(c.tid, sizeof c.tid, "%s", t.id);
    char *token = tf_token_sign(access_keys, &c);
    if (!token) {
        tf_problem_internal(p, "token signing failed");
        return;
    }
    tf_reply_json(req, 200,
                  json_pack("{s:s, s:s, s:i}", "access_token", token, "token_type", "Bearer",
                            "expires_in", access_token_ttl));
    free(token);
}

static tf_stmt principal_user = TF_STMT(
    "SELECT u.name, u.email, u.status,"
    "  coalesce(jsonb_agg(r.name ORDER BY r.name) FILTER (WHERE r.id IS NOT NULL), '[]'),"
    "  coalesce((SELECT jsonb_agg(DISTINCT perm) FROM access.user_roles ur2"
    "            JOIN access.roles r2 ON r2.tenant_id = ur2.tenant_id AND r2.id = ur2.role_id,"
    "            unnest(r2.permissions) perm WHERE ur2.user_id = u.id), '[]')"
    " FROM access.users u"
    " LEFT JOIN access.user_roles ur ON ur.tenant_id = u.tenant_id AND ur.user_id = u.id"
    " LEFT JOIN access.roles r ON r.tenant_id = ur.tenant_id AND r.id = ur.role_id"
    " WHERE u.id = $1 GROUP BY u.tenant_id, u.id", 1);
static tf_stmt key_by_secret = TF_STMT(
    "SELECT tenant_id, id FROM access.api_key_by_secret($1)", 1);
static tf_stmt principal_key = TF_STMT(
    "SELECT k.name, (k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())),"
    "  to_jsonb(k.roles),"
    "  coalesce((SELECT jsonb_agg(DISTINCT perm) FROM access.roles r, unnest(r.permissions) perm"
    "            WHERE lower(r.name) = ANY (SELECT lower(x) FROM unnest(k.roles) x)), '[]')"
    " FROM access.api_keys k WHERE k.id = $1", 1);

static bool invalid(tf_problem *p)
{
    tf_problem_set(p, TF_PB_INVALID_TOKEN, "The credential is not valid.");
    return false;
}

/* An access token names its tenant and user, so the two reads the resolver
 * needs can travel with BEGIN. Malformed ids are left to the resolver (401). */
void access_prefetch(const tf_credential *cred, tf_tx_ctx *ctx)
{
    if (!tf_uuid_parse_ok(cred->sub, strlen(cred->sub)) ||
        !tf_uuid_parse_ok(cred->tid, strlen(cred->tid)))
        return;
    ctx->nprefetch = 0;
    const char *user[] = {cred->sub};
    (void)tf_tx_ctx_prefetch(ctx, tenancy_current_stmt(), NULL);
    (void)tf_tx_ctx_prefetch(ctx, &principal_user, user);
}

bool access_resolve(tf_tx *tx, tf_arena *arena, const tf_credential *cred, tf_principal *out,
                    tf_problem *p)
{
    PGresult *r;
    if (cred->kind == TF_CRED_API_KEY) {
        char hex[2 * 32 + 3] = "\\x";
        tf_hex(cred->hash, 32, hex + 2);
        const char *kp[] = {hex};
        r = tf_tx_exec(tx, &key_by_secret, kp, p);
        if (!r)
            return false;
        if (PQntuples(r) != 1)
            return invalid(p);
        out->type = TF_ACTOR_API_KEY;
        out->id = tf_arena_strdup(arena, tf_val(r, 0, 1));
        if (!tf_tx_set_tenant(tx, tf_val(r, 0, 0), p))
            return false;
    } else {
        if (!tf_uuid_parse_ok(cred->sub, strlen(cred->sub)) ||
            !tf_uuid_parse_ok(cred->tid, strlen(cred->tid)))
            return invalid(p);
        out->type = TF_ACTOR_USER;
        out->id = tf_arena_strdup(arena, cred->sub);
    }
    tenancy_tenant t;
    if (!tenancy_current(tx, &t, p))
        return false;
    if (strcmp(t.status, "active") != 0) {
        tf_problem_set(p, TF_PB_FORBIDDEN, "The tenant is suspended.");
        return false;
    }
    out->tenant_id = tf_arena_strdup(arena, t.id);
    const char *params[] = {out->id};
    if (out->type == TF_ACTOR_USER) {
        r = tf_tx_exec(tx, &principal_user, params, p);
        if (!r)
            return false;
        if (PQntuples(r) != 1 || strcmp(tf_val(r, 0, 2), "active") != 0)
            return invalid(p);
        out->name = tf_arena_strdup(arena, tf_val(r, 0, 0));
        out->email = tf_arena_strdup(arena, tf_val(r, 0, 1));
        out->roles = access_string_list(arena, tf_val(r, 0, 3), &out->nroles);
        out->perms = access_string_list(arena, tf_val(r, 0, 4), &out->nperms);
    } else {
        r = tf_tx_exec(tx, &principal_key, params, p);
        if (!r)
            return false;
        if (PQntuples(r) != 1 || !tf_val_bool(r, 0, 1))
            return invalid(p);
        out->name = tf_arena_strdup(arena, tf_val(r, 0, 0));
        out->roles = access_string_list(arena, tf_val(r, 0, 2), &out->nroles);
        out->perms = access_string_list(arena, tf_val(r, 0, 3), &out->nperms);
    }
    return true;
}

static json_t *string_array(const char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

void access_me(tf_req *req)
{
    tf_problem *p = tf_req_problem(req);
    tenancy_tenant t;
    if (!tenancy_current(tf_req_tx(req), &t, p))
        return;
    const tf_principal *pr = tf_req_principal(req);
    json_t *principal = json_pack("{s:s, s:s, s:s}", "type", tf_actor_type_name(pr->type), "id",
                                  pr->id, "name", pr->name ? pr->name : "");
    if (pr->email)
        json_object_set_new(principal, "email", json_string(pr->email));
    tf_reply_json(req, 200,
                  json_pack("{s:{s:s, s:s, s:s}, s:o, s:o, s:o}", "tenant", "id", t.id, "slug",
                            t.slug, "name", t.name, "principal", principal, "roles",
                            string_array(pr->roles, pr->nroles), "permissions",
                            string_array(pr->perms, pr->nperms)));
}

void access_jwks(tf_req *req)
{
    tf_reply_json(req, 200, tf_keyset_jwks(access_keys));
}
