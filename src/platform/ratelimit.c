/*
 * Token buckets per credential (see ratelimit.h).
 *
 * The one thing to know: a bucket that has refilled to `burst` is exactly
 * the same as a bucket never seen, so it can be forgotten. Each shard sweeps
 * such buckets when it grows, which bounds memory even when a client sends a
 * flood of made-up credentials (their buckets are full again after 1/rate s).
 */
#include "tenantflow/ratelimit.h"

#include <math.h>
#include <stdlib.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>

#include "tenantflow/alloc.h"

enum { SHARDS = 64, CHAINS = 256, KEY_BYTES = 16, SWEEP_AT = 1024 };

struct bucket {
    struct bucket *next;
    unsigned char key[KEY_BYTES];
    double tokens, at;
};

struct shard {
    pthread_mutex_t lock;
    struct bucket *chains[CHAINS];
    size_t n, sweep_at;
};

struct tf_ratelimit {
    double rate, burst;
    unsigned char salt[crypto_generichash_KEYBYTES];
    struct shard shards[SHARDS];
};

tf_ratelimit *tf_ratelimit_new(double rate, double burst)
{
    tf_ratelimit *rl = tf_xcalloc(1, sizeof *rl);
    rl->rate = rate;
    rl->burst = burst < 1 ? 1 : burst;
    randombytes_buf(rl->salt, sizeof rl->salt);
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_init(&rl->shards[i].lock, NULL);
        rl->shards[i].sweep_at = SWEEP_AT;
    }
    return rl;
}

void tf_ratelimit_free(tf_ratelimit *rl)
{
    if (!rl)
        return;
    for (int i = 0; i < SHARDS; i++) {
        for (int c = 0; c < CHAINS; c++) {
            for (struct bucket *b = rl->shards[i].chains[c], *next; b; b = next) {
                next = b->next;
                free(b);
            }
        }
        pthread_mutex_destroy(&rl->shards[i].lock);
    }
    free(rl);
}

static double level(const tf_ratelimit *rl, const struct bucket *b, double now)
{
    double t = b->tokens + (now - b->at) * rl->rate;
    return t > rl->burst ? rl->burst : t;
}

/* Drops the buckets that are full again; called with the shard locked. */
static void sweep(tf_ratelimit *rl, struct shard *s, double now)
{
    for (int c = 0; c < CHAINS; c++) {
        for (struct bucket **pp = &s->chains[c]; *pp;) {
            struct bucket *b = *pp;
            if (level(rl, b, now) >= rl->burst) {
                *pp = b->next;
                free(b);
                s->n--;
            } else {
                pp = &b->next;
            }
        }
    }
    s->sweep_at = s->n * 2 > SWEEP_AT ? s->n * 2 : SWEEP_AT;
}

tf_rate_verdict tf_ratelimit_take(tf_ratelimit *rl, const char *key, size_t keylen, double now)
{
    unsigned char h[KEY_BYTES];
    crypto_generichash(h, sizeof h, (const unsigned char *)key, keylen, rl->salt,
                       sizeof rl->salt);
    struct shard *s = &rl->shards[h[0] % SHARDS];
    pthread_mutex_lock(&s->lock);
    struct bucket **chain = &s->chains[h[1]];
    struct bucket *b = *chain;
    while (b && memcmp(b->key, h, sizeof h) != 0)
        b = b->next;
    if (!b) {
        if (s->n >= s->sweep_at)
            sweep(rl, s, now); /* may empty *chain: read it again below */
        b = tf_xcalloc(1, sizeof *b);
        memcpy(b->key, h, sizeof h);
        b->tokens = rl->burst;
        b->at = now;
        b->next = *chain;
        *chain = b;
        s->n++;
    }
    double t = level(rl, b, now);
    tf_rate_verdict v = {.limit = (long)rl->burst};
    v.allowed = t >= 1;
    if (v.allowed)
        t -= 1;
    b->tokens = t;
    b->at = now;
    pthread_mutex_unlock(&s->lock);
    v.remaining = (long)floor(t);
    v.reset_s = (long)ceil((rl->burst - t) / rl->rate);
    v.retry_after = v.allowed ? 0 : (long)ceil((1 - t) / rl->rate);
    if (!v.allowed && v.retry_after < 1)
        v.retry_after = 1;
    return v;
}

size_t tf_ratelimit_tracked(tf_ratelimit *rl)
{
    size_t n = 0;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&rl->shards[i].lock);
        n += rl->shards[i].n;
        pthread_mutex_unlock(&rl->shards[i].lock);
    }
    return n;
}
