/*
 * Failed-login limits, per client address and per account.
 *
 * The one thing to know: the counters live in this process's memory. With
 * several server processes behind a load balancer each enforces its own
 * limit, so the effective limit is at most the configured one times the
 * number of processes; that still turns an online guessing attack from
 * millions of tries into a handful per window. The table has a fixed size:
 * when it is full the entry closest to expiry is reused, so memory stays
 * bounded under a flood of addresses (at the price of forgetting some).
 *
 * A key is counted in fixed windows: the first failure opens a window of
 * window_s seconds; once max failures fall in it, further attempts are
 * refused (429 with Retry-After) until it ends. A successful login clears
 * the account's counter (not the address's).
 */
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "internal.h"

enum { SLOTS = 8192, PROBE = 16 };

access_limit access_login_per_ip = {100, 300};
access_limit access_login_per_account = {10, 300};

struct entry {
    uint64_t hash; /* 0: free */
    int64_t window_end;
    int failures;
};

static struct entry table[SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char hash_key[crypto_shorthash_KEYBYTES];
static bool keyed;

static int64_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

/* Keyed (SipHash) so nobody can aim keys at one bucket; never 0. */
static uint64_t hash_of(const char *key)
{
    if (!keyed) {
        randombytes_buf(hash_key, sizeof hash_key);
        keyed = true;
    }
    unsigned char out[crypto_shorthash_BYTES];
    crypto_shorthash(out, (const unsigned char *)key, strlen(key), hash_key);
    uint64_t h;
    memcpy(&h, out, sizeof h);
    return h ? h : 1;
}

/* The entry for h (live or not), or NULL; lock held. */
static struct entry *find(uint64_t h)
{
    for (int i = 0; i < PROBE; i++) {
        struct entry *e = &table[(h + (uint64_t)i) % SLOTS];
        if (e->hash == h)
            return e;
    }
    return NULL;
}

/* A slot for h: its own, a free or expired one, else the one closest to
 * expiry; lock held. */
static struct entry *claim(uint64_t h, int64_t now)
{
    struct entry *e = find(h);
    if (e)
        return e;
    struct entry *best = NULL;
    for (int i = 0; i < PROBE; i++) {
        struct entry *c = &table[(h + (uint64_t)i) % SLOTS];
        if (c->hash == 0 || c->window_end <= now) {
            best = c;
            break;
        }
        if (!best || c->window_end < best->window_end)
            best = c;
    }
    memset(best, 0, sizeof *best);
    best->hash = h;
    return best;
}

int access_limit_wait(const access_limit *l, const char *key)
{
    if (l->max <= 0)
        return 0;
    int wait = 0;
    pthread_mutex_lock(&lock);
    uint64_t h = hash_of(key);
    int64_t now = now_s();
    struct entry *e = find(h);
    if (e && e->window_end > now && e->failures >= l->max)
        wait = (int)(e->window_end - now);
    pthread_mutex_unlock(&lock);
    return wait;
}

void access_limit_fail(const access_limit *l, const char *key)
{
    if (l->max <= 0)
        return;
    pthread_mutex_lock(&lock);
    uint64_t h = hash_of(key);
    int64_t now = now_s();
    struct entry *e = claim(h, now);
    if (e->window_end <= now) {
        e->window_end = now + l->window_s;
        e->failures = 0;
    }
    e->failures++;
    pthread_mutex_unlock(&lock);
}

void access_limit_reset(const char *key)
{
    pthread_mutex_lock(&lock);
    struct entry *e = find(hash_of(key));
    if (e)
        memset(e, 0, sizeof *e);
    pthread_mutex_unlock(&lock);
}

void access_set_login_limits(int per_ip, int per_account, int window_s)
{
    access_login_per_ip = (access_limit){per_ip, window_s};
    access_login_per_account = (access_limit){per_account, window_s};
}
