/*
 * Per-credential rate limiting: one token bucket per credential (keyed by a
 * hash of the bearer string, so secrets are never kept), refilled at `rate`
 * tokens per second up to `burst`.
 */
#ifndef TENANTFLOW_RATELIMIT_H
#define TENANTFLOW_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tf_ratelimit tf_ratelimit;

typedef struct tf_rate_verdict {
    bool allowed;
    long limit;       /* RateLimit-Limit: the burst */
    long remaining;   /* RateLimit-Remaining: whole tokens left */
    long reset_s;     /* RateLimit-Reset: seconds until the bucket is full again */
    long retry_after; /* Retry-After when refused: seconds until one token is back */
} tf_rate_verdict;

/* rate > 0 requests/s, burst >= 1. Caller frees with tf_ratelimit_free. */
tf_ratelimit *tf_ratelimit_new(double rate, double burst);
void tf_ratelimit_free(tf_ratelimit *rl);
/* Takes one token from the bucket of key at time now (seconds, monotonic). */
tf_rate_verdict tf_ratelimit_take(tf_ratelimit *rl, const char *key, size_t keylen, double now);
/* Buckets currently tracked (full buckets are forgotten). */
size_t tf_ratelimit_tracked(tf_ratelimit *rl);

#endif
