/*
 * Pagination cursors (see cursor.h). The keys are derived once at start-up
 * from the signing key file, which every server process shares, so a cursor
 * handed out by one instance is accepted by another and by a restarted one.
 *
 * The nonce is a keyed hash of scope and payload rather than random bytes:
 * the same page always gets the same cursor (the events feed hands back the
 * cursor it was given when nothing new came), and two different payloads
 * never share a nonce.
 */
#include "tenantflow/cursor.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "tenantflow/crypto.h"

enum {
    NONCE_LEN = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
    TAG_LEN = crypto_aead_xchacha20poly1305_ietf_ABYTES,
    MAX_CURSOR = 1024,
};

static unsigned char seal_key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
static unsigned char nonce_key[crypto_generichash_KEYBYTES];

static void derive(unsigned char *out, size_t outlen, const unsigned char *material, size_t len,
                   const char *label)
{
    crypto_generichash(out, outlen, material, len, (const unsigned char *)label, strlen(label));
}

void tf_cursor_set_key(const unsigned char *material, size_t len)
{
    derive(seal_key, sizeof seal_key, material, len, "tenantflow-cursor-v2-seal");
    derive(nonce_key, sizeof nonce_key, material, len, "tenantflow-cursor-v2-nonce");
}

char *tf_cursor_encode(const char *scope, const json_t *payload)
{
    char *text = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        abort();
    size_t len = strlen(text);
    unsigned char *buf = tf_xmalloc(NONCE_LEN + len + TAG_LEN);
    crypto_generichash_state st;
    crypto_generichash_init(&st, nonce_key, sizeof nonce_key, NONCE_LEN);
    crypto_generichash_update(&st, (const unsigned char *)scope, strlen(scope) + 1);
    crypto_generichash_update(&st, (const unsigned char *)text, len);
    crypto_generichash_final(&st, buf, NONCE_LEN);
    unsigned long long sealed = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(buf + NONCE_LEN, &sealed,
                                               (const unsigned char *)text, len,
                                               (const unsigned char *)scope, strlen(scope), NULL,
                                               buf, seal_key);
    char *out = tf_b64url_encode(buf, NONCE_LEN + (size_t)sealed);
    free(buf);
    free(text);
    return out;
}

json_t *tf_cursor_decode(const char *scope, const char *cursor, tf_problem *p)
{
    size_t clen = strlen(cursor);
    unsigned char buf[MAX_CURSOR], text[MAX_CURSOR];
    size_t len = 0;
    if (clen > MAX_CURSOR || !tf_b64url_decode(cursor, clen, buf, sizeof buf, &len) ||
        len <= NONCE_LEN + TAG_LEN) {
        tf_problem_bad_param(p, "cursor", "not a cursor issued by this endpoint");
        return NULL;
    }
    unsigned long long tlen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(text, &tlen, NULL, buf + NONCE_LEN,
                                                   len - NONCE_LEN, (const unsigned char *)scope,
                                                   strlen(scope), buf, seal_key) != 0) {
        tf_problem_bad_param(p, "cursor", "not a cursor issued by this endpoint for this query");
        return NULL;
    }
    json_t *payload = json_loadb((const char *)text, (size_t)tlen, JSON_REJECT_DUPLICATES, NULL);
    if (!payload)
        tf_problem_bad_param(p, "cursor", "not a cursor issued by this endpoint");
    return payload;
}

bool tf_parse_limit(const char *value, int *out, tf_problem *p)
{
    *out = 50;
    if (!value)
        return true;
    /* strtol would also take a sign and any leading white space ("%095"). */
    char *end = NULL;
    long n = strtol(value, &end, 10);
    if (value[0] < '0' || value[0] > '9' || *end || n < 1 || n > TF_LIMIT_MAX) {
        tf_problem_bad_param(p, "limit", "must be an integer from 1 to %d", TF_LIMIT_MAX);
        return false;
    }
    *out = (int)n;
    return true;
}
