/*
 * Unit tests of the Idempotency-Key rules that need no database: which keys
 * are accepted, what the fingerprint distinguishes, which outcomes are kept.
 */
#include <string.h>

#include "suites.h"
#include "tenantflow/crypto.h"
#include "tenantflow/idem.h"

START_TEST(keys_are_1_to_255_visible_ascii)
{
    char k255[257], k256[257];
    memset(k255, 'k', 255);
    k255[255] = '\0';
    memset(k256, 'k', 256);
    k256[256] = '\0';
    ck_assert(tf_idem_key_valid("a"));
    ck_assert(tf_idem_key_valid("!~\"#$%&'()*+,-./0123456789:;<=>?@[\\]^_`{|}"));
    ck_assert(tf_idem_key_valid("8e03978e-40d5-43e8-bc93-6894a57f9324"));
    ck_assert(tf_idem_key_valid(k255));
    static const char *const bad[] = {"", "a b", " a", "a\tb", "a\x01", "\x7f", "cl\xc3\xa9",
                                      "\x80", "a\nb"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(!tf_idem_key_valid(bad[i]), "case %zu accepted", i);
    ck_assert(!tf_idem_key_valid(k256));
}
END_TEST

START_TEST(fingerprint_covers_method_path_and_body)
{
    ck_assert_int_eq(tf_crypto_init(), 0);
    unsigned char a[TF_IDEM_FP_BYTES], b[TF_IDEM_FP_BYTES];
    tf_idem_fingerprint("POST", "/v1/items", "{\"a\":1}", 7, a);
    tf_idem_fingerprint("POST", "/v1/items", "{\"a\":1}", 7, b);
    ck_assert_mem_eq(a, b, sizeof a);
    tf_idem_fingerprint("PATCH", "/v1/items", "{\"a\":1}", 7, b);
    ck_assert(memcmp(a, b, sizeof a) != 0);
    tf_idem_fingerprint("POST", "/v1/items/x", "{\"a\":1}", 7, b);
    ck_assert(memcmp(a, b, sizeof a) != 0);
    tf_idem_fingerprint("POST", "/v1/items", "{\"a\":2}", 7, b);
    ck_assert(memcmp(a, b, sizeof a) != 0);
    /* Only len bytes count, and the parts cannot slide into each other. */
    tf_idem_fingerprint("POST", "/v1/items", "{\"a\":1}XYZ", 7, b);
    ck_assert_mem_eq(a, b, sizeof a);
    tf_idem_fingerprint("POST", "/v1/items{", "\"a\":1}", 6, b);
    ck_assert(memcmp(a, b, sizeof a) != 0);
    tf_idem_fingerprint("POST", "/", NULL, 0, a);
    tf_idem_fingerprint("POST", "/", "", 0, b);
    ck_assert_mem_eq(a, b, sizeof a);
}
END_TEST

START_TEST(only_executed_outcomes_are_stored)
{
    static const int kept[] = {200, 201, 204, 409, 412, 422};
    static const int not_kept[] = {400, 401, 403, 404, 413, 415, 429, 500, 503};
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++)
        ck_assert_msg(tf_idem_storable(kept[i]), "%d", kept[i]);
    for (size_t i = 0; i < sizeof not_kept / sizeof *not_kept; i++)
        ck_assert_msg(!tf_idem_storable(not_kept[i]), "%d", not_kept[i]);
}
END_TEST

Suite *idem_suite(void)
{
    Suite *s = suite_create("idem");
    TCase *tc = tcase_create("idem");
    tcase_add_test(tc, keys_are_1_to_255_visible_ascii);
    tcase_add_test(tc, fingerprint_covers_method_path_and_body);
    tcase_add_test(tc, only_executed_outcomes_are_stored);
    suite_add_tcase(s, tc);
    return s;
}
