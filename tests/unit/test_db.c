/*
 * Transactions against the test PostgreSQL (scripts/test.sh sets
 * TENANTFLOW_DATABASE_URL): reads prefetched with BEGIN, the read-only
 * transaction whose COMMIT travels with them, and the round trips each costs.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "suites.h"
#include "tenantflow/db.h"

static tf_stmt echo = TF_STMT("SELECT $1::text, current_setting('app.tenant_id', true)", 1);
static tf_stmt other = TF_STMT("SELECT 2", 0);

static tf_pool *pool_of_one(void)
{
    const char *url = getenv("TENANTFLOW_DATABASE_URL");
    ck_assert_msg(url && *url, "needs TENANTFLOW_DATABASE_URL (make test sets it)");
    char err[256];
    tf_pool *pool = tf_pool_new(url, 1, 2000, err, sizeof err);
    ck_assert_msg(pool, "%s", err);
    /* Prepare both statements on the one connection, so the counts below
     * are the requests' own round trips. */
    tf_arena *a = tf_arena_new();
    tf_problem p = {0};
    tf_tx *tx = tf_tx_begin(pool, a, NULL, &p);
    ck_assert_ptr_nonnull(tx);
    const char *params[] = {"warm"};
    ck_assert_ptr_nonnull(tf_tx_exec(tx, &echo, params, &p));
    ck_assert_ptr_nonnull(tf_tx_exec(tx, &other, NULL, &p));
    ck_assert(tf_tx_commit(tx, &p));
    tf_arena_free(a);
    return pool;
}

static tf_tx_ctx context(void)
{
    return (tf_tx_ctx){.tenant_id = "t-1", .actor = "system", .request_id = "unit"};
}

START_TEST(a_read_only_transaction_takes_one_round_trip)
{
    tf_pool *pool = pool_of_one();
    tf_arena *a = tf_arena_new();
    tf_problem p = {0};
    tf_tx_ctx ctx = context();
    ck_assert(tf_tx_ctx_prefetch(&ctx, &echo, (const char *[]){"hello"}));
    ctx.commit = true;
    tf_tx *tx = tf_tx_begin(pool, a, &ctx, &p);
    ck_assert_ptr_nonnull(tx);
    ck_assert_int_eq(tf_tx_round_trips(tx), 1);

    /* The read saw the transaction's context and costs nothing more. */
    const char *params[] = {"hello"};
    PGresult *r = tf_tx_exec(tx, &echo, params, &p);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(tf_val(r, 0, 0), "hello");
    ck_assert_str_eq(tf_val(r, 0, 1), "t-1");
    ck_assert_int_eq(tf_tx_round_trips(tx), 1);

    /* Anything else would run outside the transaction: refused. */
    ck_assert_ptr_null(tf_tx_exec(tx, &other, NULL, &p));
    ck_assert_int_eq(p.kind, TF_PB_INTERNAL);
    tf_problem_clear(&p);
    ck_assert_ptr_null(tf_tx_exec(tx, &echo, params, &p)); /* taken already */
    ck_assert_int_eq(p.kind, TF_PB_INTERNAL);
    tf_problem_clear(&p);
    ck_assert(!tf_tx_savepoint(tx, &p));
    tf_problem_clear(&p);
    ck_assert_int_eq(tf_tx_round_trips(tx), 1);

    /* COMMIT went already: the connection is idle, nothing to roll back. */
    tf_tx_rollback(tx);
    ck_assert_int_eq(tf_tx_round_trips(tx), 1);
    tf_arena_free(a);
    tf_pool_free(pool);
}
END_TEST

START_TEST(a_committed_read_only_transaction_refuses_writes)
{
    tf_pool *pool = pool_of_one();
    tf_arena *a = tf_arena_new();
    tf_problem p = {0};
    tf_tx_ctx ctx = context();
    ck_assert(tf_tx_ctx_prefetch(&ctx, &echo, (const char *[]){"x"}));
    ctx.commit = true;
    tf_tx *tx = tf_tx_begin(pool, a, &ctx, &p);
    ck_assert_ptr_nonnull(tx);
    const char *params[] = {"y"};
    tf_tx_defer(tx, &echo, params);
    ck_assert(!tf_tx_commit(tx, &p));
    ck_assert_int_eq(p.kind, TF_PB_INTERNAL);
    tf_problem_clear(&p);
    ck_assert_int_eq(tf_tx_round_trips(tx), 1);
    tf_arena_free(a);

    /* Without writes the commit is free. */
    a = tf_arena_new();
    tx = tf_tx_begin(pool, a, &ctx, &p);
    ck_assert_ptr_nonnull(tx);
    ck_assert(tf_tx_commit(tx, &p));
    ck_assert_int_eq(tf_tx_round_trips(tx), 1);
    tf_arena_free(a);
    tf_pool_free(pool);
}
END_TEST

START_TEST(prefetched_reads_answer_only_the_same_statement_and_parameters)
{
    tf_pool *pool = pool_of_one();
    tf_arena *a = tf_arena_new();
    tf_problem p = {0};
    tf_tx_ctx ctx = context();
    ck_assert(tf_tx_ctx_prefetch(&ctx, &echo, (const char *[]){"a"}));
    tf_tx *tx = tf_tx_begin(pool, a, &ctx, &p);
    ck_assert_ptr_nonnull(tx);
    ck_assert_int_eq(tf_tx_round_trips(tx), 1);

    const char *b[] = {"b"}, *same[] = {"a"};
    PGresult *r = tf_tx_exec(tx, &echo, b, &p);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(tf_val(r, 0, 0), "b");
    ck_assert_int_eq(tf_tx_round_trips(tx), 2);
    r = tf_tx_exec(tx, &echo, same, &p);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(tf_val(r, 0, 0), "a");
    ck_assert_int_eq(tf_tx_round_trips(tx), 2);
    /* An open transaction goes on as usual, COMMIT costing its own trip. */
    ck_assert_ptr_nonnull(tf_tx_exec(tx, &other, NULL, &p));
    ck_assert(tf_tx_commit(tx, &p));
    ck_assert_int_eq(tf_tx_round_trips(tx), 4);
    tf_arena_free(a);
    tf_pool_free(pool);
}
END_TEST

START_TEST(the_prefetch_list_has_a_fixed_size)
{
    tf_tx_ctx ctx = context();
    for (int i = 0; i < TF_MAX_PREFETCH; i++)
        ck_assert(tf_tx_ctx_prefetch(&ctx, &other, NULL));
    ck_assert(!tf_tx_ctx_prefetch(&ctx, &other, NULL));
    ck_assert_uint_eq(ctx.nprefetch, TF_MAX_PREFETCH);
}
END_TEST

/* A thread that waits for the pool's one connection, holds it a moment, and
 * gives it back; got tells when it had it. */
struct holder {
    tf_pool *pool;
    atomic_bool got;
};

static void *wait_and_hold(void *arg)
{
    struct holder *h = arg;
    tf_arena *a = tf_arena_new();
    tf_problem p = {0};
    tf_tx *tx = tf_tx_begin(h->pool, a, NULL, &p);
    atomic_store(&h->got, tx != NULL);
    struct timespec moment = {0, 50 * 1000000L};
    nanosleep(&moment, NULL);
    if (tx)
        tf_tx_rollback(tx);
    tf_arena_free(a);
    return NULL;
}

static void wait_for_waiters(tf_pool *pool, int n)
{
    struct timespec tick = {0, 1000000L};
    for (int i = 0; i < 5000; i++) {
        int in_use, waiting, size;
        tf_pool_stats(pool, &in_use, &waiting, &size);
        if (waiting == n)
            return;
        nanosleep(&tick, NULL);
    }
    ck_abort_msg("nobody started waiting for the connection");
}

/* A released connection goes to the thread that was already waiting, not to
 * the releasing thread asking again at once (which, being on the CPU, would
 * win every time and could keep a waiter out indefinitely). */
START_TEST(a_released_connection_goes_to_the_oldest_waiter)
{
    tf_pool *pool = pool_of_one();
    tf_arena *a = tf_arena_new();
    tf_problem p = {0};
    tf_tx *mine = tf_tx_begin(pool, a, NULL, &p);
    ck_assert_ptr_nonnull(mine);
    struct holder h = {.pool = pool};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, wait_and_hold, &h), 0);
    wait_for_waiters(pool, 1);
    tf_tx_rollback(mine);
    mine = tf_tx_begin(pool, a, NULL, &p); /* asks again straight away */
    ck_assert_ptr_nonnull(mine);
    /* We have it again only after the waiter had it and gave it back. */
    ck_assert_msg(atomic_load(&h.got),
                  "the connection went to the thread that had just released it");
    tf_tx_rollback(mine);
    pthread_join(t, NULL);
    tf_arena_free(a);
    tf_pool_free(pool);
}
END_TEST

Suite *db_suite(void)
{
    Suite *s = suite_create("db");
    TCase *tc = tcase_create("db");
    tcase_add_test(tc, a_read_only_transaction_takes_one_round_trip);
    tcase_add_test(tc, a_committed_read_only_transaction_refuses_writes);
    tcase_add_test(tc, prefetched_reads_answer_only_the_same_statement_and_parameters);
    tcase_add_test(tc, the_prefetch_list_has_a_fixed_size);
    tcase_add_test(tc, a_released_connection_goes_to_the_oldest_waiter);
    suite_add_tcase(s, tc);
    return s;
}
