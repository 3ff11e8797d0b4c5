/*
 * The Idempotency-Key store: the stored outcome of a keyed POST, PUT or PATCH,
 * so a retry replays it instead of acting twice.
 *
 * A key is scoped to (tenant, principal): tenant principals' records live in
 * idem.keys under RLS like every tenant table; operators (no tenant) use
 * idem.operator_keys, visible only to transactions bound to no tenant. Every
 * call runs inside the request's transaction, so the record commits or rolls
 * back with the effect it describes: a crash leaves neither.
 *
 * "In progress" is detected without waiting: tf_idem_claim takes a
 * transaction-scoped advisory lock on a hash of the scope and key with
 * pg_try_advisory_xact_lock; a request holding it (in this process or
 * another) makes the claim answer 409 request-in-progress at once.
 */
#ifndef TENANTFLOW_IDEM_H
#define TENANTFLOW_IDEM_H

#include <stdbool.h>
#include <stddef.h>

#include "tenantflow/alloc.h"
#include "tenantflow/db.h"
#include "tenantflow/problem.h"

enum { TF_IDEM_KEY_MAX = 255, TF_IDEM_FP_BYTES = 32 };

/* Who a key belongs to. Strings are borrowed. tenant_id NULL: an operator. */
typedef struct tf_idem_scope {
    const char *tenant_id;
    const char *principal; /* "user:<id>", "api_key:<id>", "operator:<id>" */
    const char *key;
} tf_idem_scope;

/* A stored response. Strings are borrowed (the request arena on replay). */
typedef struct tf_idem_response {
    int status;
    const char *content_type; /* may be NULL (204) */
    const char *location;     /* NULL when the response had none */
    const char *etag;
    const char *body;         /* may be NULL */
    size_t body_len;
} tf_idem_response;

typedef enum tf_idem_claim_result {
    TF_IDEM_FRESH,  /* claimed: run the request, then tf_idem_store */
    TF_IDEM_REPLAY, /* a committed outcome for the same request: replay it */
    TF_IDEM_FAILED, /* problem set: 409 in progress, 422 reused key, 5xx */
} tf_idem_claim_result;

/* True when key (NUL-terminated) is 1-255 visible ASCII characters
 * (0x21-0x7E): the only keys the server accepts. */
bool tf_idem_key_valid(const char *key) TF_MUST_CHECK;

/* BLAKE2b-256 of method, path and body[0..len), each length-prefixed so no
 * two different requests share an encoding. */
void tf_idem_fingerprint(const char *method, const char *path, const char *body, size_t len,
                         unsigned char out[TF_IDEM_FP_BYTES]);

/* Claims scope's key in tx (bound to scope->tenant_id, or to no tenant).
 * On TF_IDEM_REPLAY *stored is filled from the committed record (strings in
 * arena). A different fingerprint is TF_IDEM_FAILED with a 422
 * idempotency-key-reused problem; a holder still running is TF_IDEM_FAILED
 * with a 409 request-in-progress problem and Retry-After. */
tf_idem_claim_result tf_idem_claim(tf_tx *tx, tf_arena *arena, const tf_idem_scope *scope,
                                   const unsigned char fp[TF_IDEM_FP_BYTES],
                                   tf_idem_response *stored, tf_problem *p) TF_MUST_CHECK;

/* Fills in the outcome of a claim made by tf_idem_claim in the same tx. */
bool tf_idem_store(tf_tx *tx, const tf_idem_scope *scope, const tf_idem_response *resp,
                   tf_problem *p) TF_MUST_CHECK;

/* True for the outcomes that are stored and replayed: 2xx and the
 * business-rule 409, 412 and 422. */
bool tf_idem_storable(int status);

/* The purge job's argument and round (a tf_job run function): deletes
 * records older than retention_s seconds (at least 24 hours). */
typedef struct tf_idem_purge {
    int retention_s;
} tf_idem_purge;
void tf_idem_purge_run(tf_pool *pool, void *arg);

#endif
