/*
 * Unit tests of the access module's pure parts: permission syntax, RFC 3339
 * date-times, and the failed-login limiter.
 */
#include <string.h>

#include "modules/access/internal.h"
#include "suites.h"
#include "tenantflow/crypto.h"
#include "tenantflow/text.h"

START_TEST(permission_syntax)
{
    static const char *const good[] = {"*", "items:read", "po:*", "tenant:admin", "reports",
                                       "a.b-c_d:e.f-g_h"};
    static const char *const bad[] = {"", ":", "items:", ":read", "Items:read", "a:b:c",
                                      "po:**", "*:read", "a b", "items:read ", "x:*y",
                                      "\xc3\xa9:read"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        ck_assert_msg(access_permission_ok(good[i]), "%s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(!access_permission_ok(bad[i]), "%s", bad[i]);
    char long_name[80];
    memset(long_name, 'a', 64);
    strcpy(long_name + 64, ":read");
    ck_assert(!access_permission_ok(long_name));
}
END_TEST

START_TEST(rfc3339_date_times)
{
    /* tf_parse_rfc3339 (text.h) serves API key expiry, the item list's
     * created_after/before and the audit list's since/until. */
    static const char *const good[] = {
        "2025-01-31T23:59:59Z", "2024-02-29T00:00:00z", "2025-06-01t12:00:00.123456789+02:00",
        "0001-01-01T00:00:00-15:59", "2000-02-29T00:00:00Z", "9999-12-31T23:59:59+15:59"};
    /* The last three reached PostgreSQL and failed its ::timestamptz cast, a
     * 500: a day 32 through the audit filters (found by tests/fuzz rfc3339;
     * corpus/rfc3339/audit-day-32), offsets from 16:00 through all three. */
    static const char *const bad[] = {
        "", "2025-01-31", "2025-01-31T23:59:59", "2025-01-31 23:59:59Z", "2025-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z", "2025-13-01T00:00:00Z", "2025-04-31T00:00:00Z",
        "2025-01-01T24:00:00Z", "2025-01-01T00:60:00Z", "2025-01-01T00:00:60Z",
        "2025-01-01T00:00:00.Z", "2025-01-01T00:00:00.1234567890Z", "2025-01-01T00:00:00+2:00",
        "2025-01-01T00:00:00+24:00", "2025-01-01T00:00:00Z ", "0000-01-01T00:00:00Z",
        "+2025-01-01T00:00:00Z", "2025-1-01T00:00:00Z", "2026-01-32T09:00:00Z",
        "2025-01-01T00:00:00+16:00", "0001-01-01T00:00:00-23:59"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        ck_assert_msg(tf_parse_rfc3339(good[i], NULL), "%s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(!tf_parse_rfc3339(bad[i], NULL), "%s", bad[i]);
    long long us = 0;
    ck_assert(tf_parse_rfc3339("1970-01-01T00:00:00Z", &us) && us == 0);
    ck_assert(tf_parse_rfc3339("2026-01-31T09:00:00.5+05:30", &us));
    ck_assert(us == 1769830200500000LL);
    ck_assert(tf_parse_rfc3339("1969-12-31T23:59:59.999999999Z", &us) && us == -1);
}
END_TEST

START_TEST(login_limiter_counts_per_key)
{
    ck_assert_int_eq(tf_crypto_init(), 0);
    access_limit l = {3, 600};
    ck_assert_int_eq(access_limit_wait(&l, "unit:a"), 0);
    for (int i = 0; i < 2; i++)
        access_limit_fail(&l, "unit:a");
    ck_assert_int_eq(access_limit_wait(&l, "unit:a"), 0);
    access_limit_fail(&l, "unit:a");
    int wait = access_limit_wait(&l, "unit:a");
    ck_assert(wait > 0 && wait <= 600);
    ck_assert_int_eq(access_limit_wait(&l, "unit:b"), 0); /* keys are independent */
    access_limit_reset("unit:a");
    ck_assert_int_eq(access_limit_wait(&l, "unit:a"), 0);
    access_limit off = {0, 600}; /* 0 disables */
    for (int i = 0; i < 10; i++)
        access_limit_fail(&off, "unit:c");
    ck_assert_int_eq(access_limit_wait(&off, "unit:c"), 0);
    /* A flood of keys never grows memory and never blocks a fresh key. */
    char key[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "unit:flood:%d", i);
        access_limit_fail(&l, key);
    }
    ck_assert_int_eq(access_limit_wait(&l, "unit:fresh"), 0);
}
END_TEST

Suite *access_suite(void)
{
    Suite *s = suite_create("access");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, permission_syntax);
    tcase_add_test(tc, rfc3339_date_times);
    tcase_add_test(tc, login_limiter_counts_per_key);
    suite_add_tcase(s, tc);
    return s;
}
