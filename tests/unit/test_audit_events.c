/*
 * The audit chain hash's canonical encoding, the webhook SSRF address policy,
 * the Standard Webhooks signature and the retry schedule.
 */
#include <arpa/inet.h>
#include <check.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "modules/audit/internal.h"
#include "modules/events/internal.h"
#include "suites.h"

static void hash_of(const char *const f[AUDIT_NFIELDS], long long seq, unsigned char out[32])
{
    unsigned char prev[32] = {0};
    audit_chain_hash(prev, seq, f, out);
}

START_TEST(chain_hash_is_canonical)
{
    const char *a[AUDIT_NFIELDS] = {"t", "i", "2024-01-01T00:00:00.000000Z", "user", "u1",
                                    "item.created", "item", "r1", "req", "127.0.0.1", "{}"};
    const char *b[AUDIT_NFIELDS];
    unsigned char ha[32], hb[32];
    memcpy(b, a, sizeof b);
    hash_of(a, 1, ha);
    hash_of(b, 1, hb);
    ck_assert_mem_eq(ha, hb, 32);
    hash_of(a, 2, hb); /* the position is part of the hash */
    ck_assert(memcmp(ha, hb, 32) != 0);
    b[4] = NULL; /* NULL differs from any string, even "" */
    hash_of(b, 1, hb);
    ck_assert(memcmp(ha, hb, 32) != 0);
    const char *c[AUDIT_NFIELDS];
    memcpy(c, a, sizeof c);
    c[4] = "";
    unsigned char hc[32];
    hash_of(c, 1, hc);
    ck_assert(memcmp(hb, hc, 32) != 0);
    /* Moving bytes across a field boundary changes the hash (length prefixes). */
    memcpy(b, a, sizeof b);
    b[6] = "ite";
    b[7] = "mr1";
    hash_of(b, 1, hb);
    ck_assert(memcmp(ha, hb, 32) != 0);
    /* The previous hash is chained in. */
    unsigned char prev[32];
    memset(prev, 1, sizeof prev);
    audit_chain_hash(prev, 1, a, hb);
    ck_assert(memcmp(ha, hb, 32) != 0);
}
END_TEST

static addr_class v4(const char *s)
{
    struct in_addr a;
    ck_assert_int_eq(inet_aton(s, &a), 1);
    return events_addr_class_v4(ntohl(a.s_addr));
}

static addr_class v6(const char *s)
{
    struct in6_addr a;
    ck_assert_int_eq(inet_pton(AF_INET6, s, &a), 1);
    return events_addr_class_v6(a.s6_addr);
}

START_TEST(address_policy)
{
    const char *private4[] = {"127.0.0.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.1",
                              "10.0.0.1", "172.31.255.255", "192.168.1.1", "169.254.1.1",
                              "0.0.0.0", "224.0.0.1", "255.255.255.255", "100.64.0.1"};
    for (size_t i = 0; i < sizeof private4 / sizeof *private4; i++)
        ck_assert_msg(v4(private4[i]) == ADDR_PRIVATE, "%s", private4[i]);
    const char *meta4[] = {"169.254.169.254", "2852039166", "0xa9fea9fe", "0251.0376.0251.0376",
                           "169.254.43518"};
    for (size_t i = 0; i < sizeof meta4 / sizeof *meta4; i++)
        ck_assert_msg(v4(meta4[i]) == ADDR_METADATA, "%s", meta4[i]);
    ck_assert(v4("93.184.215.14") == ADDR_PUBLIC);
    ck_assert(v4("172.32.0.1") == ADDR_PUBLIC);
    const char *private6[] = {"::1", "::", "fe80::1", "fc00::1", "fd12::1", "ff02::1",
                              "::ffff:127.0.0.1", "::ffff:7f00:1", "::127.0.0.1",
                              "64:ff9b::10.0.0.1", "2002:c0a8:0101::1"};
    for (size_t i = 0; i < sizeof private6 / sizeof *private6; i++)
        ck_assert_msg(v6(private6[i]) == ADDR_PRIVATE, "%s", private6[i]);
    const char *meta6[] = {"fd00:ec2::254", "::ffff:169.254.169.254", "::ffff:a9fe:a9fe",
                           "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::"};
    for (size_t i = 0; i < sizeof meta6 / sizeof *meta6; i++)
        ck_assert_msg(v6(meta6[i]) == ADDR_METADATA, "%s", meta6[i]);
    ck_assert(v6("2606:2800:220:1::1") == ADDR_PUBLIC);
    ck_assert(events_addr_allowed(ADDR_PUBLIC, false));
    ck_assert(!events_addr_allowed(ADDR_PRIVATE, false));
    ck_assert(events_addr_allowed(ADDR_PRIVATE, true));
    ck_assert(!events_addr_allowed(ADDR_METADATA, true));
}
END_TEST

START_TEST(url_policy)
{
    ck_assert_ptr_null(events_url_refusal("https://93.184.215.14/x", false));
    ck_assert_ptr_nonnull(events_url_refusal("http://0x7f000001/", false));
    ck_assert_ptr_null(events_url_refusal("http://0x7f000001/", true));
    ck_assert_ptr_nonnull(events_url_refusal("http://[::ffff:169.254.169.254]/", true));
    ck_assert_ptr_nonnull(events_url_refusal("gopher://93.184.215.14/", false));
    ck_assert_ptr_nonnull(events_url_refusal("http://a:b@93.184.215.14/", false));
    ck_assert_ptr_nonnull(events_url_refusal("http://[fe80::1%25eth0]/", true));
    /* A port nothing could ever be delivered to, or none at all, says so. */
    ck_assert_ptr_null(events_url_refusal("https://93.184.215.14:8443/x", false));
    const char *port_refusals[] = {"https://93.184.215.14:0/x", "https://93.184.215.14:00/x",
                                   "https://93.184.215.14:99999/x",
                                   "https://93.184.215.14:-1/x"};
    for (size_t i = 0; i < sizeof port_refusals / sizeof *port_refusals; i++) {
        const char *why = events_url_refusal(port_refusals[i], false);
        ck_assert_msg(why && strstr(why, "port"), "%s: %s", port_refusals[i], why ? why : "accepted");
    }
}
END_TEST

START_TEST(standard_webhooks_signature)
{
    /* The example of the Standard Webhooks specification. */
    unsigned char key[64];
    size_t klen = 0;
    const char *b64 = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    ck_assert_int_eq(sodium_base642bin(key, sizeof key, b64, strlen(b64), NULL, &klen, NULL,
                                       sodium_base64_VARIANT_ORIGINAL), 0);
    const char *body = "{\"test\": 2432232314}";
    char *sig = events_sign(key, klen, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
                            strlen(body));
    ck_assert_str_eq(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    free(sig);
}
END_TEST

START_TEST(retry_schedule)
{
    static const long long want_s[] = {5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400};
    events_cfg.retry_scale = 1.0;
    for (int next = 2; next <= 10; next++) {
        for (int k = 0; k < 50; k++) {
            long long d = events_retry_delay_ms(next);
            ck_assert_int_ge(d, want_s[next - 2] * 800);
            ck_assert_int_le(d, want_s[next - 2] * 1200);
        }
    }
    ck_assert_int_eq(events_retry_delay_ms(11), -1);
    events_cfg.retry_scale = 0.001;
    ck_assert_int_le(events_retry_delay_ms(10), 86400 * 12 / 10);
    events_cfg.retry_scale = 1.0;
}
END_TEST

START_TEST(secret_sealing)
{
    unsigned char material[] = "key file";
    events_init(material, sizeof material, NULL);
    unsigned char secret[EVENTS_SECRET_BYTES], back[EVENTS_SECRET_BYTES], box[128];
    randombytes_buf(secret, sizeof secret);
    char *hex = events_secret_seal("id-1", secret);
    size_t blen = 0;
    ck_assert_int_eq(sodium_hex2bin(box, sizeof box, hex, strlen(hex), NULL, &blen, NULL), 0);
    ck_assert(events_secret_open("id-1", box, blen, back));
    ck_assert_mem_eq(secret, back, sizeof secret);
    ck_assert(!events_secret_open("id-2", box, blen, back)); /* bound to its webhook */
    box[30] ^= 1;
    ck_assert(!events_secret_open("id-1", box, blen, back));
    free(hex);
}
END_TEST

Suite *audit_events_suite(void)
{
    Suite *s = suite_create("audit_events");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, chain_hash_is_canonical);
    tcase_add_test(tc, address_policy);
    tcase_add_test(tc, url_policy);
    tcase_add_test(tc, standard_webhooks_signature);
    tcase_add_test(tc, retry_schedule);
    tcase_add_test(tc, secret_sealing);
    suite_add_tcase(s, tc);
    return s;
}
