/*
 * Cryptographic building blocks on top of libsodium: strict base64url,
 * password hashing, random secrets and their stored hashes, hex, and UUIDv7.
 *
 * Call tf_crypto_init() once at startup, before any other function here (and
 * before tf_keyset_* or tf_token_*): libsodium must be initialised before its
 * random generator and hash functions are used from several threads.
 *
 * Every function taking (pointer, length) reads exactly that many bytes and
 * never relies on a terminating NUL. Strings handed out are malloc'd and
 * owned by the caller, who releases them with free().
 */
#ifndef TENANTFLOW_CRYPTO_H
#define TENANTFLOW_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

#include "tenantflow/alloc.h"

/* Initialises libsodium. Returns 0 on success (also when already done), -1
 * when libsodium cannot be used; the server must not start then. */
int tf_crypto_init(void) TF_MUST_CHECK;

/* ---- base64url (RFC 4648 section 5), never padded ---------------------- */

/* Decoded size of n base64url characters (an upper bound for invalid input). */
#define TF_B64URL_DECODED_MAX(n) ((n) / 4 * 3 + 2)
/* Encoded size of n bytes, without the NUL. */
#define TF_B64URL_ENCODED_LEN(n) ((n) / 3 * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))

/* Decodes in[0..inlen) into out. Accepts only the characters A-Z a-z 0-9 - _
 * with no padding: '=', '+', '/', whitespace, NUL or any other byte is
 * refused, as is a length of 4k+1 and a final character whose unused low bits
 * are not zero (so each byte string has exactly one accepted encoding).
 * Returns false, with out's content unspecified, when the input is refused or
 * the result would not fit in outcap bytes. An empty input decodes to 0 bytes.
 * Character classification does not branch on the data, so secrets (key
 * seeds) may pass through it. */
bool tf_b64url_decode(const char *in, size_t inlen, unsigned char *out, size_t outcap,
                      size_t *outlen) TF_MUST_CHECK;

/* Encodes in[0..len) without padding. Returns a NUL-terminated malloc'd string
 * the caller frees; never NULL (aborts on out of memory). */
char *tf_b64url_encode(const unsigned char *in, size_t len);

/* ---- passwords: Argon2id ---------------------------------------------- */

/* Hashes pw[0..len) with Argon2id and a random salt. Returns a malloc'd PHC
 * string ("$argon2id$v=19$m=19456,t=2,p=1$...") the caller frees, or NULL when
 * libsodium fails (out of memory for the 19 MiB work area). */
char *tf_password_hash(const char *pw, size_t len) TF_MUST_CHECK;

/* True when pw[0..len) matches the PHC string hash (NUL-terminated, as stored).
 * A NULL or malformed hash gives false. */
bool tf_password_verify(const char *hash, const char *pw, size_t len) TF_MUST_CHECK;

/* Verifies pw against a fixed dummy hash with the same cost parameters and
 * throws the result away, so a login for an unknown user, a suspended tenant
 * or a disabled account takes as long as a real verification. Thread-safe;
 * the dummy hash is computed on first use. */
void tf_password_burn(const char *pw, size_t len);

/* ---- random secrets (API keys, operator tokens, webhook secrets) ------- */

#define TF_SECRET_RANDOM_BYTES 32
#define TF_SECRET_HASH_BYTES   32

/* Returns prefix (may be NULL for none) followed by the base64url encoding of
 * 32 random bytes (43 characters). malloc'd, caller frees; never NULL. */
char *tf_secret_new(const char *prefix);

/* The value stored in place of a secret: keyed BLAKE2b-256 of secret[0..len)
 * with the key "tenantflow-secret-v1" zero-padded to 32 bytes. Stable across
 * releases: changing it would invalidate every stored API key and token. */
void tf_secret_hash(const char *secret, size_t len, unsigned char out[TF_SECRET_HASH_BYTES]);

/* Lowercase hex of in[0..len) into out, which holds 2*len+1 bytes (NUL added).
 * Runs in time independent of the data. */
void tf_hex(const unsigned char *in, size_t len, char *out);

/* ---- UUIDs -------------------------------------------------------------- */

#define TF_UUID_LEN 36

/* A new UUIDv7 (RFC 9562): 48-bit Unix time in milliseconds, version 7,
 * variant 10, 74 random bits. Lowercase, NUL-terminated. UUIDs made in later
 * milliseconds sort after earlier ones, as strings and as bytes. */
void tf_uuid7(char out[TF_UUID_LEN + 1]);

/* True when s[0..len) is exactly 36 characters in the 8-4-4-4-12 form with hex
 * digits of either case. Any version and variant is accepted. */
bool tf_uuid_parse_ok(const char *s, size_t len) TF_MUST_CHECK;

#endif
