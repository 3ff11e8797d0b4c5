/*
 * Access module: users, roles, API keys, login and the principal resolver.
 */
#ifndef TENANTFLOW_ACCESS_H
#define TENANTFLOW_ACCESS_H

#include <stdbool.h>

#include "tenantflow/db.h"
#include "tenantflow/http.h"

struct tf_keyset;

/* Registers the identity routes and the user/API-key resolver. keys signs
 * access tokens that live ttl_s seconds; both must outlive the router. */
bool access_register(tf_router *r, const struct tf_keyset *keys, int ttl_s, char *err,
                     size_t errsz) TF_MUST_CHECK;

/* Failed-login limits: at most per_ip failures per client address and
 * per_account per account in each window of window_s seconds (0 disables a
 * limit). Kept in this process's memory. Call before serving. */
void access_set_login_limits(int per_ip, int per_account, int window_s);

/* Creates the built-in roles and the first admin of a new tenant inside tx
 * (already bound to that tenant). Validation failures are 422 with pointers
 * /admin_email and /admin_password. */
bool access_bootstrap_tenant(tf_tx *tx, const char *email, const char *password,
                             tf_problem *p) TF_MUST_CHECK;

#endif
