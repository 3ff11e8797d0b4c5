/*
 * The access module's routes. Each route names the permission it needs; the
 * HTTP layer refuses to register one that does not. There is no read
 * permission for keys: listing or reading them needs apikeys:write, like
 * managing them.
 */
#include "internal.h"

static const tf_route routes[] = {
    {"POST", "/v1/auth/token", TF_PUBLIC, access_login, NULL,
     "Exchange tenant, email and password for an access token", TF_ROUTE_SLOW, NULL},
    {"GET", "/.well-known/jwks.json", TF_PUBLIC, access_jwks, NULL,
     "Public keys that verify access tokens", TF_ROUTE_INLINE, NULL},
    {"GET", "/v1/me", TF_AUTHENTICATED, access_me, NULL,
     "The calling principal, its tenant, roles and permissions", 0, NULL},
    {"POST", "/v1/users", "users:write", access_create_user, NULL, "Create a user", 0, NULL},
    {"GET", "/v1/users", "users:read", access_list_users, "limit,cursor", "List users", 0, NULL},
    {"GET", "/v1/users/{id}", "users:read", access_get_user, NULL, "Get a user", 0, NULL},
    {"PATCH", "/v1/users/{id}", "users:write", access_patch_user, NULL,
     "Change a user's name, status or password", 0, NULL},
    {"PUT", "/v1/users/{id}/roles", "roles:write", access_put_user_roles, NULL,
     "Replace a user's roles", 0, NULL},
    {"GET", "/v1/roles", "users:read", access_list_roles, "limit,cursor", "List roles", 0, NULL},
    {"POST", "/v1/roles", "roles:write", access_create_role, NULL, "Create a role", 0, NULL},
    {"GET", "/v1/roles/{id}", "users:read", access_get_role, NULL, "Get a role", 0, NULL},
    {"PATCH", "/v1/roles/{id}", "roles:write", access_patch_role, NULL,
     "Rename a role or change its permissions", 0, NULL},
    {"DELETE", "/v1/roles/{id}", "roles:write", access_delete_role, NULL, "Delete a role", 0, NULL},
    {"POST", "/v1/api-keys", "apikeys:write", access_create_key, NULL,
     "Create an API key (the secret is shown once)", TF_ROUTE_SECRET, NULL},
    {"GET", "/v1/api-keys", "apikeys:write", access_list_keys, "limit,cursor",
     "List API keys (never their secrets)", 0, NULL},
    {"GET", "/v1/api-keys/{id}", "apikeys:write", access_get_key, NULL,
     "Get an API key (never its secret)", 0, NULL},
    {"DELETE", "/v1/api-keys/{id}", "apikeys:write", access_delete_key, NULL,
     "Revoke an API key at once", 0, NULL},
};

bool access_register(tf_router *r, const tf_keyset *keys, int ttl_s, char *err, size_t errsz)
{
    access_keys = keys;
    access_token_ttl = ttl_s;
    tf_auth_set_user_resolver(access_resolve);
    tf_auth_set_user_prefetcher(access_prefetch);
    return tf_router_add_all(r, routes, sizeof routes / sizeof *routes, err, errsz);
}
