/*
 * The request principal and permission checks.
 *
 * Platform auth knows how to read a bearer credential (an Ed25519 access
 * token, an API key "tfk_...", an operator token "tfo_...") but not what a
 * user or a tenant is: the access and tenancy modules register resolvers that
 * turn a verified credential into a principal, inside the request's
 * transaction, so permissions are resolved at request time.
 */
#ifndef TENANTFLOW_AUTH_H
#define TENANTFLOW_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "tenantflow/db.h"
#include "tenantflow/problem.h"

typedef enum tf_actor_type {
    TF_ACTOR_NONE = 0,
    TF_ACTOR_USER,
    TF_ACTOR_API_KEY,
    TF_ACTOR_OPERATOR,
    TF_ACTOR_SYSTEM,
} tf_actor_type;

const char *tf_actor_type_name(tf_actor_type t);

/* All strings live in the request arena. */
typedef struct tf_principal {
    tf_actor_type type;
    const char *id;         /* user, key or operator id */
    const char *name;
    const char *email;      /* users only */
    const char *tenant_id;  /* NULL for operators */
    const char **roles;     /* role names */
    size_t nroles;
    const char **perms;     /* effective permissions ("*", "po:*", "items:read") */
    size_t nperms;
} tf_principal;

/* Who caused a change, for audit records, events and history. Strings are
 * borrowed (the request arena, or static for background work). */
typedef struct tf_origin {
    tf_actor_type actor_type;
    const char *actor_id;   /* NULL for the system actor */
    const char *request_id; /* NULL for background work */
    const char *client_ip;  /* NULL for background work */
} tf_origin;

/* True when perms grant perm: exact match, "*", or "prefix:*". */
bool tf_principal_can(const tf_principal *pr, const char *perm);
bool tf_perms_grant(const char *const *perms, size_t n, const char *perm);

typedef enum tf_credential_kind {
    TF_CRED_ACCESS_TOKEN, /* verified claims in sub/tid */
    TF_CRED_API_KEY,      /* hash of the secret */
    TF_CRED_OPERATOR,     /* hash of the secret */
} tf_credential_kind;

typedef struct tf_credential {
    tf_credential_kind kind;
    char sub[64], tid[64];        /* access tokens */
    unsigned char hash[32];       /* API keys and operator tokens */
} tf_credential;

/* Fills *out from a verified credential inside tx (which it may bind to a
 * tenant with tf_tx_set_tenant). On failure sets p: 401 for an unknown,
 * disabled or revoked credential, 403 for a suspended tenant. */
typedef bool (*tf_resolver)(tf_tx *tx, tf_arena *arena, const tf_credential *cred,
                            tf_principal *out, tf_problem *p);

void tf_auth_set_user_resolver(tf_resolver fn);     /* tokens and API keys */

/* Optional: names the reads the user resolver will make for an access token,
 * so they travel with BEGIN in one round trip (see tf_tx_ctx.prefetch).
 * Strings it puts in ctx must live as long as cred. */
typedef void (*tf_prefetcher)(const tf_credential *cred, tf_tx_ctx *ctx);
void tf_auth_set_user_prefetcher(tf_prefetcher fn);
void tf_auth_set_operator_resolver(tf_resolver fn); /* operator tokens */

#endif
