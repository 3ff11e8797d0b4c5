/*
 * The access module's routes. Each route names the permission it needs; the
 * HTTP layer refuses to register one that does not.
 */
#include "internal.h"

static const tf_route routes[] = {
    {"POST", "/v1/auth/token", TF_PUBLIC, access_login, NULL,
     "Exchange tenant, email and password for an access token", 0},
    {"GET", "/.well-known/jwks.json", TF_PUBLIC, access_jwks, NULL,
     "Public keys that verify access tokens", 0},
    {"GET", "/v1/me", TF_AUTHENTICATED, access_me, NULL,
     "The calling principal, its tenant, roles and permissions", 0},
};

bool access_register(tf_router *r, const tf_keyset *keys, int ttl_s, char *err, size_t errsz)
{
    access_keys = keys;
    access_token_ttl = ttl_s;
    tf_auth_set_user_resolver(access_resolve);
    return tf_router_add_all(r, routes, sizeof routes / sizeof *routes, err, errsz);
}
