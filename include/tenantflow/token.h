/*
 * Access tokens: compact JWTs (RFC 7519) signed with Ed25519 ("EdDSA",
 * RFC 8037), and the key set that signs and verifies them.
 *
 * Key file format (TENANTFLOW_SIGNING_KEY names such a file):
 *
 *     # comment lines start with '#'; blank lines are ignored
 *     2025-01 Xy7...43 base64url characters...Q
 *     2024-07 Ab3...43 base64url characters...w
 *
 *   - UTF-8 text, at most 64 KiB, one key per line: `<kid> <seed>`, the two
 *     fields separated by spaces or tabs; leading and trailing spaces/tabs and a
 *     CR before the LF are ignored, as is a UTF-8 byte order mark at the start.
 *   - kid: 1 to 64 characters of [A-Za-z0-9._-], unique within the file.
 *   - seed: the 32-byte Ed25519 seed in base64url without padding (exactly 43
 *     characters, canonical, see tf_b64url_decode).
 *   - The FIRST key signs new tokens; every key verifies. To rotate, put the new
 *     key first and keep the old one below it until its tokens have expired.
 *   - The file holds private keys: keep it readable by the service user only.
 *   `tenantflow keygen <kid>` (tf_keyset_generate_line) prints a new line.
 *
 * Call tf_crypto_init() before any function here. A key set never changes
 * once built, so any number of threads may sign and verify with it at once.
 */
#ifndef TENANTFLOW_TOKEN_H
#define TENANTFLOW_TOKEN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tenantflow/alloc.h"

#define TF_KID_MAX          64        /* characters in a kid */
#define TF_KEYFILE_MAX      (64 * 1024)
#define TF_TOKEN_MAX_LEN    4096      /* longest token tf_token_verify looks at */

typedef struct tf_keyset tf_keyset;

/* Reads and parses the key file at path. Returns a key set the caller frees
 * with tf_keyset_free(), or NULL with a NUL-terminated message in err (which
 * names the path or the line, never key material). err may be NULL when
 * errsz is 0. */
tf_keyset *tf_keyset_load(const char *path, char *err, size_t errsz) TF_MUST_CHECK;

/* Parses key file text[0..len) (need not be NUL-terminated); same rules and
 * ownership as tf_keyset_load(). A NUL byte in the text is an error. */
tf_keyset *tf_keyset_from_text(const char *text, size_t len, char *err,
                               size_t errsz) TF_MUST_CHECK;

/* One new key file line "<kid> <seed>\n" with a fresh random seed. Returns a
 * malloc'd string the caller frees (it holds a private key: wipe it), or NULL
 * when kid is not 1-64 characters of [A-Za-z0-9._-]. */
char *tf_keyset_generate_line(const char *kid) TF_MUST_CHECK;

/* Wipes the private keys and frees. Safe on NULL. */
void tf_keyset_free(tf_keyset *ks);

/* The public keys as a JWK Set (RFC 7517/8037), in file order:
 * {"keys":[{"kty":"OKP","crv":"Ed25519","kid":...,"x":...,"use":"sig",
 * "alg":"EdDSA"}, ...]}. Returns a new reference, or NULL when jansson fails
 * to allocate. */
json_t *tf_keyset_jwks(const tf_keyset *ks) TF_MUST_CHECK;

/* The claims tenantflow puts in an access token. sub and tid are
 * NUL-terminated strings of 1..63 bytes (valid UTF-8); times are Unix seconds;
 * nbf 0 means absent. */
typedef struct tf_claims {
    char sub[64]; /* principal id */
    char tid[64]; /* tenant id */
    int64_t iat, exp, nbf;
} tf_claims;

/* Signs c with the first key of ks. The header is exactly
 * {"alg":"EdDSA","typ":"JWT","kid":"<first kid>"}, the payload
 * {"sub","tid","iat","exp"} plus "nbf" when c->nbf is not 0. Returns the
 * compact token as a malloc'd string the caller frees, or NULL when sub or tid
 * is empty, unterminated, longer than 63 bytes or not UTF-8. */
char *tf_token_sign(const tf_keyset *ks, const tf_claims *c) TF_MUST_CHECK;

/* Verifies tok[0..len) (no NUL termination assumed) at time now, allowing
 * skew seconds (negative counts as 0) of clock difference. True only when all
 * of these hold:
 *   - 1 <= len <= TF_TOKEN_MAX_LEN; exactly three non-empty segments;
 *   - each segment is canonical base64url without padding;
 *   - the header is a JSON object without duplicate members, "alg" is exactly
 *     "EdDSA", "kid" is a string naming a key of ks, "typ" if present is "JWT",
 *     and there is no "crit";
 *   - the signature is 64 bytes and verifies over the ASCII "header.payload";
 *   - the payload is a JSON object without duplicate members, "exp" is an
 *     integer with exp + skew > now, "nbf" if present an integer with
 *     nbf - skew <= now, "iat" if present an integer, "sub" and "tid" strings
 *     of 1..63 bytes.
 * On success fills *out (when not NULL; iat and nbf 0 when absent); on failure
 * leaves *out untouched. Allocates nothing that outlives the call. */
bool tf_token_verify(const tf_keyset *ks, const char *tok, size_t len, int64_t now, int64_t skew,
                     tf_claims *out) TF_MUST_CHECK;

#endif
