/*
 * Pagination cursors (see cursor.h). The MAC key is derived once at start-up
 * from the signing key file, which every server process shares, so a cursor
 * handed out by one instance is accepted by another and by a restarted one.
 */
#include "tenantflow/cursor.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "tenantflow/crypto.h"

enum { MAC_LEN = 16, MAX_CURSOR = 1024 };

static unsigned char key[crypto_generichash_KEYBYTES];

void tf_cursor_set_key(const unsigned char *material, size_t len)
{
    static const char label[] = "tenantflow-cursor-v1";
    crypto_generichash(key, sizeof key, material, len, (const unsigned char *)label,
                       sizeof label - 1);
}

static void mac(const char *scope, const unsigned char *payload, size_t len,
                unsigned char out[MAC_LEN])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, sizeof key, MAC_LEN);
    crypto_generichash_update(&st, (const unsigned char *)scope, strlen(scope) + 1);
    crypto_generichash_update(&st, payload, len);
    crypto_generichash_final(&st, out, MAC_LEN);
}

char *tf_cursor_encode(const char *scope, const json_t *payload)
{
    char *text = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        abort();
    size_t len = strlen(text);
    unsigned char *buf = tf_xmalloc(len + MAC_LEN);
    memcpy(buf, text, len);
    mac(scope, buf, len, buf + len);
    char *out = tf_b64url_encode(buf, len + MAC_LEN);
    free(buf);
    free(text);
    return out;
}

json_t *tf_cursor_decode(const char *scope, const char *cursor, tf_problem *p)
{
    size_t clen = strlen(cursor);
    unsigned char buf[MAX_CURSOR];
    size_t len = 0;
    if (clen > MAX_CURSOR || !tf_b64url_decode(cursor, clen, buf, sizeof buf, &len) ||
        len <= MAC_LEN) {
        tf_problem_bad_param(p, "cursor", "not a cursor issued by this endpoint");
        return NULL;
    }
    unsigned char want[MAC_LEN];
    mac(scope, buf, len - MAC_LEN, want);
    if (sodium_memcmp(want, buf + len - MAC_LEN, MAC_LEN) != 0) {
        tf_problem_bad_param(p, "cursor", "not a cursor issued by this endpoint for this query");
        return NULL;
    }
    json_t *payload = json_loadb((const char *)buf, len - MAC_LEN, JSON_REJECT_DUPLICATES, NULL);
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
    if (value[0] < '0' || value[0] > '9' || *end || n < 1 || n > 200) {
        tf_problem_bad_param(p, "limit", "must be an integer from 1 to 200");
        return false;
    }
    *out = (int)n;
    return true;
}
