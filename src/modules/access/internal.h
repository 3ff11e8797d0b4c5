/* What the files of the access module share. */
#ifndef TENANTFLOW_ACCESS_INTERNAL_H
#define TENANTFLOW_ACCESS_INTERNAL_H

#include "tenantflow/access.h"
#include "tenantflow/token.h"

extern const tf_keyset *access_keys;
extern int access_token_ttl;

/* identity.c */
void access_login(tf_req *req);
void access_me(tf_req *req);
void access_jwks(tf_req *req);
void access_prefetch(const tf_credential *cred, tf_tx_ctx *ctx);
bool access_resolve(tf_tx *tx, tf_arena *arena, const tf_credential *cred, tf_principal *out,
                    tf_problem *p);
/* Adds 422 errors for a bad email / password at the given pointers. */
/* email without surrounding whitespace, copied into buf (emails compare
 * after trimming, as logins already do in SQL). */
const char *access_trim_email(const char *email, char *buf, size_t bufsz);
bool access_check_email(const char *email, const char *pointer, tf_problem *p);
bool access_check_password(const char *password, const char *pointer, tf_problem *p);
/* Reads a JSON array of strings from a query column into the arena. */
const char **access_string_list(tf_arena *arena, const char *json_text, size_t *n);

/* common.c: helpers of the users, roles and keys handlers. */

/* Serializes changes to one tenant's users, roles and keys (transaction-scoped
 * advisory lock), so invariants such as "one active admin remains" are
 * checked against a state no concurrent request is changing. */
bool access_lock(tf_tx *tx, tf_problem *p) TF_MUST_CHECK;
/* 409 unless the tenant still has an active user holding the built-in admin
 * role; call after applying a change, before committing. */
bool access_admin_remains(tf_tx *tx, tf_problem *p) TF_MUST_CHECK;
/* The {id} path parameter when it is a UUID, otherwise NULL with a 404. */
const char *access_path_id(tf_req *req, const char *not_found_detail);
/* Resolves role names (a JSON array of strings, at pointer `at`) to role ids
 * and the union of their permissions: unknown names are 422 at at/N. ids is a
 * PostgreSQL array literal, names the canonical names as a JSON array text;
 * both in the request arena. */
typedef struct access_roleset {
    const char *ids;   /* "{uuid,uuid}" */
    const char *names; /* '["admin","viewer"]' */
    const char **perms;
    size_t nperms;
} access_roleset;
bool access_resolve_roles(tf_req *req, const json_t *names, const char *at, access_roleset *out)
    TF_MUST_CHECK;
/* 403 unless the caller holds every permission in perms (nobody grants what
 * they do not have). what names the thing being granted, for the detail. */
bool access_caller_holds(tf_req *req, const char *const *perms, size_t n, const char *what)
    TF_MUST_CHECK;
/* One audit record and one event for a change; before/after/data borrowed. */
bool access_record(tf_req *req, const char *action, const char *resource_type, const char *id,
                   const json_t *before, const json_t *after, const json_t *data) TF_MUST_CHECK;
/* The list convention: reads ?limit and ?cursor (scope is the endpoint name,
 * bound to the tenant); *after is NULL for the first page. */
bool access_page_start(tf_req *req, const char *endpoint, int *limit, const char **after)
    TF_MUST_CHECK;
/* Replies {"data": rows 0..limit-1 of column col (JSON text), "next_cursor"}
 * where the cursor holds column key_col of the last row when there are more. */
void access_reply_page(tf_req *req, const char *endpoint, const PGresult *r, int limit, int col,
                       int key_col);
/* GET of one row by the path's id (404 with not_found when malformed or
 * absent): stmt takes the id and returns the JSON text in column 0 and, when
 * versioned, the version in column 1 (ETag; If-None-Match gives 304). */
void access_get_one(tf_req *req, tf_stmt *stmt, const char *not_found, bool versioned);
/* Replies with a JSON row (text) and its ETag; 201 adds Location. */
void access_reply_row(tf_req *req, int status, const char *json_text, long long version,
                      const char *location);
/* True when s is a well-formed permission: "*", "name", "name:*" or
 * "name:action" with [a-z0-9_.-] names. */
bool access_permission_ok(const char *s);

/* users.c, roles.c, keys.c */
void access_create_user(tf_req *req);
void access_list_users(tf_req *req);
void access_get_user(tf_req *req);
void access_patch_user(tf_req *req);
void access_put_user_roles(tf_req *req);
void access_list_roles(tf_req *req);
void access_create_role(tf_req *req);
void access_get_role(tf_req *req);
void access_patch_role(tf_req *req);
void access_delete_role(tf_req *req);
void access_create_key(tf_req *req);
void access_list_keys(tf_req *req);
void access_get_key(tf_req *req);
void access_delete_key(tf_req *req);

/* ratelimit.c: failed-login limits, in this process's memory. */
typedef struct access_limit {
    int max;      /* failures allowed per window; 0 disables */
    int window_s;
} access_limit;
/* Seconds to wait before key may try again, 0 when it may try now. */
int access_limit_wait(const access_limit *l, const char *key);
void access_limit_fail(const access_limit *l, const char *key);
void access_limit_reset(const char *key);
extern access_limit access_login_per_ip, access_login_per_account;

#endif
