/*
 * Opaque, tamper-evident pagination cursors.
 *
 * A cursor is base64url(nonce || payload JSON sealed with XChaCha20-Poly1305),
 * with a scope string as associated data. The scope names the tenant, the
 * endpoint and the filter set, and is recomputed by the server when the
 * cursor comes back, so an edited cursor, or one minted for another tenant,
 * endpoint or filter, fails to decode (a 400 naming `cursor`). Sealed, not
 * only signed: the events feed's cursor is a position in the feed of every
 * tenant, and its growth would show one tenant how busy the others are.
 */
#ifndef TENANTFLOW_CURSOR_H
#define TENANTFLOW_CURSOR_H

#include <jansson.h>
#include <stdbool.h>

#include "tenantflow/alloc.h"
#include "tenantflow/problem.h"

/* Derives the keys from secret material shared by every server process. */
void tf_cursor_set_key(const unsigned char *material, size_t len);

/* Returns a malloc'd cursor for payload (borrowed). */
char *tf_cursor_encode(const char *scope, const json_t *payload);
/* Returns the payload (new reference) or NULL with a 400 on `cursor`. */
json_t *tf_cursor_decode(const char *scope, const char *cursor, tf_problem *p) TF_MUST_CHECK;

enum { TF_LIMIT_MAX = 200 };

/* Parses ?limit= (1..TF_LIMIT_MAX, default 50); false with a 400 on `limit`. */
bool tf_parse_limit(const char *value, int *out, tf_problem *p) TF_MUST_CHECK;

#endif
