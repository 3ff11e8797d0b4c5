/*
 * Unit tests of the operations parts: the token bucket's arithmetic (time
 * is passed in, so no test sleeps), its memory bound under a flood of
 * made-up credentials, the metrics exposition format, and background jobs'
 * minimum gap between rounds.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "suites.h"
#include "tenantflow/jobs.h"
#include "tenantflow/metrics.h"
#include "tenantflow/ratelimit.h"

START_TEST(bucket_allows_burst_then_refills_at_rate)
{
    tf_ratelimit *rl = tf_ratelimit_new(10, 3);
    tf_rate_verdict v;
    for (int i = 0; i < 3; i++) {
        v = tf_ratelimit_take(rl, "Bearer a", 8, 100.0);
        ck_assert(v.allowed);
        ck_assert_int_eq(v.limit, 3);
        ck_assert_int_eq(v.remaining, 2 - i);
    }
    ck_assert_int_eq(v.reset_s, 1); /* 3 tokens at 10/s: 0.3 s, rounded up */
    v = tf_ratelimit_take(rl, "Bearer a", 8, 100.0);
    ck_assert(!v.allowed);
    ck_assert_int_eq(v.remaining, 0);
    ck_assert_int_eq(v.retry_after, 1);
    /* Another credential is not affected. */
    ck_assert(tf_ratelimit_take(rl, "Bearer b", 8, 100.0).allowed);
    /* 0.1 s later one token is back, and only one. */
    ck_assert(tf_ratelimit_take(rl, "Bearer a", 8, 100.1001).allowed);
    ck_assert(!tf_ratelimit_take(rl, "Bearer a", 8, 100.1002).allowed);
    /* Refill is capped at the burst. */
    for (int i = 0; i < 3; i++)
        ck_assert(tf_ratelimit_take(rl, "Bearer a", 8, 1000.0 + i * 1e-6).allowed);
    ck_assert(!tf_ratelimit_take(rl, "Bearer a", 8, 1000.00001).allowed);
    tf_ratelimit_free(rl);
}
END_TEST

START_TEST(slow_rate_retry_after_covers_one_token)
{
    tf_ratelimit *rl = tf_ratelimit_new(0.25, 1); /* one request per 4 s */
    ck_assert(tf_ratelimit_take(rl, "k", 1, 0).allowed);
    tf_rate_verdict v = tf_ratelimit_take(rl, "k", 1, 1.0);
    ck_assert(!v.allowed);
    ck_assert_int_eq(v.retry_after, 3);
    ck_assert(tf_ratelimit_take(rl, "k", 1, 4.0).allowed);
    tf_ratelimit_free(rl);
}
END_TEST

START_TEST(flood_of_credentials_is_forgotten_once_refilled)
{
    tf_ratelimit *rl = tf_ratelimit_new(1000, 2000);
    char key[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof key, "Bearer junk-%d", i);
        tf_ratelimit_take(rl, key, strlen(key), i * 1e-4); /* 10,000 new keys/s */
    }
    /* A bucket is full again 1 ms after its one request: only recent keys stay. */
    /* Without forgetting, all 100,000 would be kept; each shard sweeps at 1024. */
    ck_assert_uint_le(tf_ratelimit_tracked(rl), 64 * 1024);
    tf_ratelimit_free(rl);
}
END_TEST

static bool answer_42(void *arg, double *v)
{
    (void)arg;
    *v = 42;
    return true;
}

static bool no_answer(void *arg, double *v)
{
    (void)arg;
    (void)v;
    return false;
}

START_TEST(metrics_render_families_once_and_omit_unknown_values)
{
    tf_metric *c1 = tf_metrics_counter("tf_unit_things_total{kind=\"a\"}", "Things.");
    tf_metric *c2 = tf_metrics_counter("tf_unit_things_total{kind=\"b\"}", "Things.");
    ck_assert_ptr_eq(tf_metrics_counter("tf_unit_things_total{kind=\"a\"}", "Things."), c1);
    tf_metrics_inc(c1, 2);
    tf_metrics_inc(c2, 5);
    tf_metrics_set(tf_metrics_gauge("tf_unit_level", "Level."), 1.5);
    tf_metrics_gauge_fn("tf_unit_answer", "Answer.", answer_42, NULL);
    tf_metrics_gauge_fn("tf_unit_unknown", "Unknown.", no_answer, NULL);
    tf_metrics_observe_request("GET", "/v1/x/{id}", 200, 0.003);
    tf_metrics_observe_request("BREW", NULL, 404, 20);
    size_t len = 0;
    char *text = tf_metrics_render(&len);
    ck_assert_uint_eq(len, strlen(text));
    ck_assert_ptr_nonnull(strstr(text, "tf_unit_things_total{kind=\"a\"} 2\n"));
    ck_assert_ptr_nonnull(strstr(text, "tf_unit_things_total{kind=\"b\"} 5\n"));
    const char *type = "# TYPE tf_unit_things_total counter\n";
    char *first = strstr(text, type);
    ck_assert_ptr_nonnull(first);
    ck_assert_ptr_null(strstr(first + 1, type));
    ck_assert_ptr_nonnull(strstr(text, "tf_unit_level 1.5\n"));
    ck_assert_ptr_nonnull(strstr(text, "tf_unit_answer 42\n"));
    ck_assert_ptr_null(strstr(text, "tf_unit_unknown"));
    ck_assert_ptr_nonnull(strstr(
        text, "tf_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/x/{id}\","
              "le=\"0.0025\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(
        text, "tf_http_request_duration_seconds_bucket{method=\"GET\",route=\"/v1/x/{id}\","
              "le=\"0.005\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(
        text, "tf_http_requests_total{method=\"other\",route=\"(unmatched)\",status=\"404\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(
        text, "tf_http_request_duration_seconds_bucket{method=\"other\",route=\"(unmatched)\","
              "le=\"10\"} 0\n"));
    free(text);
}
END_TEST

static atomic_int rounds;

static void count_round(tf_pool *pool, void *arg)
{
    (void)pool;
    (void)arg;
    atomic_fetch_add(&rounds, 1);
}

START_TEST(wake_ups_within_a_jobs_gap_become_one_round)
{
    atomic_store(&rounds, 0);
    tf_job job = {"gap", 60 * 1000, count_round, NULL, 300};
    tf_jobs *jobs = tf_jobs_new(NULL);
    tf_jobs_add(jobs, &job);
    ck_assert(tf_jobs_start(jobs));
    /* 50 wake-ups within 100 ms, all inside the 300 ms gap after the first
     * round (which runs at start): they make one more round, not fifty. */
    for (int i = 0; i < 50; i++) {
        tf_jobs_wake(jobs, "gap");
        usleep(2000);
    }
    usleep(500 * 1000);
    int n = atomic_load(&rounds);
    tf_jobs_free(jobs);
    ck_assert_msg(n >= 1 && n <= 2, "%d rounds", n);
}
END_TEST

Suite *ops_suite(void)
{
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("ops");
    tcase_add_test(tc, bucket_allows_burst_then_refills_at_rate);
    tcase_add_test(tc, slow_rate_retry_after_covers_one_token);
    tcase_add_test(tc, flood_of_credentials_is_forgotten_once_refilled);
    tcase_add_test(tc, metrics_render_families_once_and_omit_unknown_values);
    tcase_add_test(tc, wake_ups_within_a_jobs_gap_become_one_round);
    suite_add_tcase(s, tc);
    return s;
}
