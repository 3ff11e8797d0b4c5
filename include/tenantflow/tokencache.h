/*
 * A small cache of access tokens that already passed tf_token_verify(), so a
 * busy client does not pay an Ed25519 check (~80 µs) on every request. Only
 * the signature work is saved: expiry is re-checked on every hit, and the
 * principal behind the token is still resolved from the database per request.
 */
#ifndef TENANTFLOW_TOKENCACHE_H
#define TENANTFLOW_TOKENCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tenantflow/token.h"

/* True and *out filled when tok was verified before and is valid at now. */
bool tf_token_cache_get(const char *tok, size_t len, int64_t now, int64_t skew, tf_claims *out);
/* Remembers a verified token (evicting whatever shared its slot). */
void tf_token_cache_put(const char *tok, size_t len, const tf_claims *c);

#endif
