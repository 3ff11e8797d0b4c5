/*
 * Verified-token cache (see tokencache.h): a direct-mapped table indexed by a
 * keyed BLAKE2b-128 of the token. The hash key is random per process, so
 * nobody can aim tokens at one slot; a slot holds the full 16-byte digest,
 * so a hit means the same token, not merely the same slot.
 */
#include "tenantflow/tokencache.h"

#include <pthread.h>
#include <sodium.h>
#include <string.h>

enum { SLOTS = 4096, DIGEST = 16 };

struct entry {
    unsigned char digest[DIGEST];
    bool used;
    tf_claims claims;
};

static struct entry table[SLOTS];
static unsigned char hash_key[crypto_generichash_KEYBYTES];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_key(void)
{
    randombytes_buf(hash_key, sizeof hash_key);
}

static size_t digest_of(const char *tok, size_t len, unsigned char out[DIGEST])
{
    pthread_once(&once, init_key);
    crypto_generichash(out, DIGEST, (const unsigned char *)tok, len, hash_key, sizeof hash_key);
    uint32_t idx;
    memcpy(&idx, out, sizeof idx);
    return idx % SLOTS;
}

bool tf_token_cache_get(const char *tok, size_t len, int64_t now, int64_t skew, tf_claims *out)
{
    unsigned char d[DIGEST];
    size_t i = digest_of(tok, len, d);
    pthread_mutex_lock(&lock);
    bool hit = table[i].used && sodium_memcmp(table[i].digest, d, DIGEST) == 0;
    if (hit)
        *out = table[i].claims;
    pthread_mutex_unlock(&lock);
    if (!hit)
        return false;
    return out->exp + skew > now && (out->nbf == 0 || out->nbf - skew <= now);
}

void tf_token_cache_put(const char *tok, size_t len, const tf_claims *c)
{
    unsigned char d[DIGEST];
    size_t i = digest_of(tok, len, d);
    pthread_mutex_lock(&lock);
    memcpy(table[i].digest, d, DIGEST);
    table[i].claims = *c;
    table[i].used = true;
    pthread_mutex_unlock(&lock);
}
