/*
 * Unit tests for src/platform/crypto.c: canonical base64url (known vectors,
 * round trips, every byte value, a table of refusals), Argon2id passwords,
 * secrets and their pinned hash, hex, and UUIDv7.
 *
 * The pinned secret hash is the regression guard that matters most: stored
 * API key hashes depend on it, so a change to the derivation must fail here.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "suites.h"
#include "tenantflow/crypto.h"

/* BLAKE2b-256 of "tfk_" + 43 'A', keyed with "tenantflow-secret-v1" padded with
 * zeros to 32 bytes; computed independently (Python hashlib.blake2b). */
#define SECRET_HASH_PINNED "73650e4fcb85f06211a9b4542cd9d40cc94b1dd119b64f6b085a749c3eb573f9"

static const char ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void crypto_setup(void)
{
    if (tf_crypto_init() != 0)
        abort();
}

/* ---- base64url ---------------------------------------------------------- */

static const struct {
    const char *bin;
    size_t len;
    const char *enc;
} b64_vectors[] = {
    /* RFC 4648 section 10, padding removed */
    {"", 0, ""},
    {"f", 1, "Zg"},
    {"fo", 2, "Zm8"},
    {"foo", 3, "Zm9v"},
    {"foob", 4, "Zm9vYg"},
    {"fooba", 5, "Zm9vYmE"},
    {"foobar", 6, "Zm9vYmFy"},
    /* the two characters where base64url differs from base64 ("+/8=") */
    {"\xfb\xff", 2, "-_8"},
    {"\x00\x00\x00", 3, "AAAA"},
    {"\xff\xff\xff", 3, "____"},
};

START_TEST(b64_known_vectors)
{
    for (size_t i = 0; i < sizeof b64_vectors / sizeof b64_vectors[0]; i++) {
        char *enc = tf_b64url_encode((const unsigned char *)b64_vectors[i].bin, b64_vectors[i].len);
        ck_assert_str_eq(enc, b64_vectors[i].enc);
        free(enc);

        unsigned char out[16];
        size_t n = 99;
        const char *e = b64_vectors[i].enc;
        ck_assert(tf_b64url_decode(e, strlen(e), out, sizeof out, &n));
        ck_assert_uint_eq(n, b64_vectors[i].len);
        ck_assert(memcmp(out, b64_vectors[i].bin, n) == 0);
    }
}
END_TEST

START_TEST(b64_every_sextet_encodes_to_its_letter)
{
    for (unsigned v = 0; v < 64; v++) {
        unsigned char in[3] = {(unsigned char)(v << 2), 0, 0};
        char *enc = tf_b64url_encode(in, sizeof in);
        ck_assert_int_eq(enc[0], ALPHABET[v]);
        free(enc);
    }
}
END_TEST

START_TEST(b64_every_byte_value_is_classified)
{
    /* "<c>A" is canonical for every letter c of the alphabet and refused for
     * every other byte, NUL and bytes >= 0x80 included. */
    for (unsigned c = 0; c < 256; c++) {
        char in[2] = {(char)c, 'A'};
        unsigned char out[4];
        size_t n = 0;
        const char *pos = c ? memchr(ALPHABET, (int)c, 64) : NULL;
        bool ok = tf_b64url_decode(in, 2, out, sizeof out, &n);
        ck_assert_msg(ok == (pos != NULL), "byte 0x%02x", c);
        if (ok) {
            ck_assert_uint_eq(n, 1);
            ck_assert_uint_eq(out[0], (unsigned)((pos - ALPHABET) << 2));
        }
    }
}
END_TEST

START_TEST(b64_round_trips)
{
    unsigned char in[200], out[200];
    for (size_t len = 0; len <= sizeof in; len++) {
        randombytes_buf(in, len);
        char *enc = tf_b64url_encode(in, len);
        ck_assert_uint_eq(strlen(enc), TF_B64URL_ENCODED_LEN(len));
        ck_assert(strspn(enc, ALPHABET) == strlen(enc));
        size_t n = 0;
        ck_assert(tf_b64url_decode(enc, strlen(enc), out, sizeof out, &n));
        ck_assert_uint_eq(n, len);
        ck_assert(memcmp(in, out, len) == 0);
        ck_assert_uint_le(n, TF_B64URL_DECODED_MAX(strlen(enc)));
        free(enc);
    }
}
END_TEST

static const struct {
    const char *name;
    const char *in;
    size_t len;
} b64_refused[] = {
    {"length 4k+1", "A", 1},
    {"length 4k+1 long", "Zm9vY", 5},
    {"padding ==", "Zg==", 4},
    {"padding =", "Zm8=", 4},
    {"padding without need", "Zm9v=", 5},
    {"lone =", "Zg=", 3},
    {"standard +", "+_8", 3},
    {"standard /", "-/8", 3},
    {"standard +/8", "+/8", 3},
    {"space inside", "Zm 9v", 5},
    {"leading space", " Zm9v", 5},
    {"trailing newline", "Zm9v\n", 5},
    {"CRLF inside", "Zm\r\n9v", 6},
    {"tab", "Zm9\t", 4},
    {"NUL inside", "Zm\0v", 4},
    {"trailing NUL", "Zm9v\0", 5},
    {"dot", "Zm.v", 4},
    {"star", "Zm*v", 4},
    {"DEL", "Zm9\x7f", 4},
    {"UTF-8 letter", "Zm\xc3\xa9", 4},
    {"high byte", "\xff\xff", 2},
    {"non-canonical 2-char tail (Zh)", "Zh", 2},
    {"non-canonical 2-char tail (AB)", "AB", 2},
    {"non-canonical 2-char tail (A_)", "A_", 2},
    {"non-canonical 3-char tail (Zm9)", "Zm9", 3},
    {"non-canonical 3-char tail (AAB)", "AAB", 3},
    {"non-canonical tail after a full group", "Zm9vZh", 6},
};

START_TEST(b64_refusals)
{
    unsigned char out[16];
    size_t n = 12345;
    ck_assert_msg(!tf_b64url_decode(b64_refused[_i].in, b64_refused[_i].len, out, sizeof out, &n),
                  "accepted: %s", b64_refused[_i].name);
    ck_assert_uint_eq(n, 12345); /* outlen untouched on refusal */
}
END_TEST

START_TEST(b64_output_capacity_and_empty)
{
    unsigned char out[6];
    size_t n = 0;
    ck_assert(!tf_b64url_decode("Zm9vYmFy", 8, out, 5, &n));
    ck_assert(tf_b64url_decode("Zm9vYmFy", 8, out, 6, &n));
    ck_assert_uint_eq(n, 6);
    ck_assert(!tf_b64url_decode("Zg", 2, NULL, 0, &n));
    n = 7;
    ck_assert(tf_b64url_decode("", 0, NULL, 0, &n));
    ck_assert_uint_eq(n, 0);
    ck_assert(!tf_b64url_decode(NULL, 4, out, sizeof out, &n));
    /* only len bytes are read: the valid prefix of a longer buffer decodes */
    ck_assert(tf_b64url_decode("Zm9v!!!!", 4, out, sizeof out, &n));
    ck_assert_uint_eq(n, 3);
    /* canonical tails are accepted */
    ck_assert(tf_b64url_decode("AQ", 2, out, sizeof out, &n));
    ck_assert(tf_b64url_decode("AAE", 3, out, sizeof out, &n));
}
END_TEST

/* ---- passwords ---------------------------------------------------------- */

START_TEST(password_hash_and_verify)
{
    const char pw[] = "correct horse battery staple";
    char *h = tf_password_hash(pw, sizeof pw - 1);
    ck_assert_ptr_nonnull(h);
    ck_assert_msg(strncmp(h, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0, "hash %s", h);
    ck_assert(tf_password_verify(h, pw, sizeof pw - 1));
    ck_assert(!tf_password_verify(h, "correct horse battery stapl", sizeof pw - 2));
    ck_assert(!tf_password_verify(h, "Correct horse battery staple", sizeof pw - 1));
    ck_assert(!tf_password_verify(h, "", 0));

    char *h2 = tf_password_hash(pw, sizeof pw - 1);
    ck_assert_ptr_nonnull(h2);
    ck_assert_str_ne(h, h2); /* random salt */
    ck_assert(tf_password_verify(h2, pw, sizeof pw - 1));
    free(h);
    free(h2);
}
END_TEST

START_TEST(password_uses_length_not_nul)
{
    const char pw[] = "ab\0cd";
    char *h = tf_password_hash(pw, 5);
    ck_assert_ptr_nonnull(h);
    ck_assert(tf_password_verify(h, pw, 5));
    ck_assert(!tf_password_verify(h, pw, 2));
    ck_assert(!tf_password_verify(h, "ab\0ce", 5));
    free(h);

    char *e = tf_password_hash("", 0);
    ck_assert_ptr_nonnull(e);
    ck_assert(tf_password_verify(e, "", 0));
    ck_assert(!tf_password_verify(e, "x", 1));
    free(e);
}
END_TEST

START_TEST(password_verify_refuses_bad_hashes)
{
    ck_assert(!tf_password_verify(NULL, "pw", 2));
    ck_assert(!tf_password_verify("", "pw", 2));
    ck_assert(!tf_password_verify("not a hash", "pw", 2));
    ck_assert(!tf_password_verify("$argon2id$v=19$m=19456,t=2,p=1$AAAA$AAAA", "pw", 2));
}
END_TEST

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

START_TEST(password_burn_runs)
{
    /* The first call builds the dummy hash, later calls only verify; both
     * spend a real Argon2id computation (far more than a millisecond). */
    for (int i = 0; i < 2; i++) {
        double t0 = seconds_now();
        tf_password_burn("whatever", 8);
        ck_assert(seconds_now() - t0 > 0.001);
    }
    tf_password_burn(NULL, 0);
}
END_TEST

/* ---- secrets and hex ---------------------------------------------------- */

START_TEST(secret_new_shape)
{
    char *a = tf_secret_new("tfk_");
    char *b = tf_secret_new("tfk_");
    ck_assert_uint_eq(strlen(a), 4 + 43);
    ck_assert(strncmp(a, "tfk_", 4) == 0);
    ck_assert_uint_eq(strspn(a + 4, ALPHABET), 43);
    ck_assert_str_ne(a, b);

    unsigned char raw[32];
    size_t n = 0;
    ck_assert(tf_b64url_decode(a + 4, 43, raw, sizeof raw, &n));
    ck_assert_uint_eq(n, 32);

    char *c = tf_secret_new(NULL);
    ck_assert_uint_eq(strlen(c), 43);
    char *d = tf_secret_new("");
    ck_assert_uint_eq(strlen(d), 43);
    free(a);
    free(b);
    free(c);
    free(d);
}
END_TEST

START_TEST(secret_hash_stable_and_keyed)
{
    const char *s = "tfk_example-secret";
    unsigned char h1[32], h2[32], h3[32], ref[32];
    tf_secret_hash(s, strlen(s), h1);
    tf_secret_hash(s, strlen(s), h2);
    ck_assert(memcmp(h1, h2, 32) == 0);
    tf_secret_hash(s, strlen(s) - 1, h3);
    ck_assert(memcmp(h1, h3, 32) != 0);

    /* Documented derivation: BLAKE2b-256 keyed with the zero-padded label. */
    unsigned char key[crypto_generichash_KEYBYTES] = {0};
    memcpy(key, "tenantflow-secret-v1", 20);
    ck_assert_int_eq(crypto_generichash(ref, 32, (const unsigned char *)s, strlen(s), key,
                                        sizeof key),
                     0);
    ck_assert(memcmp(h1, ref, 32) == 0);

    /* Differs from the unkeyed hash (the domain separation is in effect). */
    ck_assert_int_eq(crypto_generichash(ref, 32, (const unsigned char *)s, strlen(s), NULL, 0), 0);
    ck_assert(memcmp(h1, ref, 32) != 0);

    /* Pinned value: stored API key hashes depend on it never changing. */
    char hex[65];
    tf_secret_hash("tfk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 47, h1);
    tf_hex(h1, 32, hex);
    ck_assert_str_eq(hex, SECRET_HASH_PINNED);

    /* (pointer, length): bytes after len are not hashed. */
    tf_secret_hash("abcX", 3, h2);
    tf_secret_hash("abcY", 3, h3);
    ck_assert(memcmp(h2, h3, 32) == 0);
}
END_TEST

START_TEST(hex_encoding)
{
    char out[9];
    tf_hex((const unsigned char *)"\x00\x01\xab\xff", 4, out);
    ck_assert_str_eq(out, "0001abff");
    char empty[1] = {'x'};
    tf_hex(NULL, 0, empty);
    ck_assert_str_eq(empty, "");
}
END_TEST

/* ---- UUIDs -------------------------------------------------------------- */

static uint64_t uuid_ms(const char *u)
{
    char hex[13];
    memcpy(hex, u, 8);
    memcpy(hex + 8, u + 9, 4);
    hex[12] = '\0';
    return strtoull(hex, NULL, 16);
}

START_TEST(uuid7_format)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;

    for (int i = 0; i < 100; i++) {
        char u[37];
        tf_uuid7(u);
        ck_assert_uint_eq(strlen(u), 36);
        ck_assert(tf_uuid_parse_ok(u, 36));
        ck_assert_int_eq(u[14], '7');                    /* version */
        ck_assert_ptr_nonnull(strchr("89ab", u[19]));   /* variant 10 */
        for (int j = 0; j < 36; j++)
            ck_assert(u[j] == '-' || (u[j] >= '0' && u[j] <= '9') || (u[j] >= 'a' && u[j] <= 'f'));
        uint64_t ms = uuid_ms(u);
        ck_assert_uint_ge(ms + 5000, now_ms);
        ck_assert_uint_le(ms, now_ms + 5000);
    }
}
END_TEST

START_TEST(uuid7_ordering_and_uniqueness)
{
    char prev[37];
    tf_uuid7(prev);
    for (int i = 0; i < 5; i++) {
        struct timespec two_ms = {0, 2 * 1000 * 1000};
        nanosleep(&two_ms, NULL);
        char next[37];
        tf_uuid7(next);
        ck_assert_msg(strcmp(prev, next) < 0, "%s !< %s", prev, next);
        memcpy(prev, next, sizeof prev);
    }

    enum { N = 300 };
    static char many[N][37];
    for (int i = 0; i < N; i++)
        tf_uuid7(many[i]);
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            ck_assert_str_ne(many[i], many[j]);
}
END_TEST

static const struct {
    const char *s;
    size_t len;
    bool ok;
} uuid_cases[] = {
    {"0190a6e2-7c4b-7d3e-9f00-123456789abc", 36, true},
    {"0190A6E2-7C4B-7D3E-9F00-123456789ABC", 36, true},
    {"0190a6E2-7c4B-7d3E-9f00-123456789AbC", 36, true},
    {"00000000-0000-0000-0000-000000000000", 36, true},
    {"0190a6e2-7c4b-7d3e-9f00-123456789abcTRAILING", 36, true}, /* only len is read */
    {"0190a6e2-7c4b-7d3e-9f00-123456789ab", 35, false},
    {"0190a6e2-7c4b-7d3e-9f00-123456789abcd", 37, false},
    {"0190a6e2-7c4b-7d3e-9f00-123456789abc", 37, false}, /* NUL counted */
    {"0190a6e27c4b7d3e9f00123456789abc", 32, false},
    {"0190a6e2-7c4b-7d3e-9f00123456789abc-", 36, false},
    {"0190a6e-27c4b-7d3e-9f00-123456789abc", 36, false},
    {"0190a6e2-7c4b-7d3e-9f00-123456789abg", 36, false},
    {"0190a6e2-7c4b-7d3e-9f00-12345678 abc", 36, false},
    {"0190a6e2-7c4b-7d3e-9f00-12345678\0abc", 36, false},
    {"{190a6e2-7c4b-7d3e-9f00-123456789ab}", 36, false},
    {"0190a6e2_7c4b_7d3e_9f00_123456789abc", 36, false},
    {"urn:uuid:0190a6e2-7c4b-7d3e-9f00-1234", 36, false},
    {"+190a6e2-7c4b-7d3e-9f00-123456789abc", 36, false},
    {"", 0, false},
};

START_TEST(uuid_parse_cases)
{
    ck_assert_msg(tf_uuid_parse_ok(uuid_cases[_i].s, uuid_cases[_i].len) == uuid_cases[_i].ok,
                  "case %d: \"%s\"", _i, uuid_cases[_i].s);
}
END_TEST

START_TEST(uuid_parse_null)
{
    ck_assert(!tf_uuid_parse_ok(NULL, 36));
}
END_TEST

Suite *crypto_suite(void)
{
    Suite *s = suite_create("crypto");

    TCase *tc = tcase_create("base64url");
    tcase_add_unchecked_fixture(tc, crypto_setup, NULL);
    tcase_add_test(tc, b64_known_vectors);
    tcase_add_test(tc, b64_every_sextet_encodes_to_its_letter);
    tcase_add_test(tc, b64_every_byte_value_is_classified);
    tcase_add_test(tc, b64_round_trips);
    tcase_add_loop_test(tc, b64_refusals, 0, (int)(sizeof b64_refused / sizeof b64_refused[0]));
    tcase_add_test(tc, b64_output_capacity_and_empty);
    suite_add_tcase(s, tc);

    tc = tcase_create("password");
    tcase_add_unchecked_fixture(tc, crypto_setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, password_hash_and_verify);
    tcase_add_test(tc, password_uses_length_not_nul);
    tcase_add_test(tc, password_verify_refuses_bad_hashes);
    tcase_add_test(tc, password_burn_runs);
    suite_add_tcase(s, tc);

    tc = tcase_create("secret");
    tcase_add_unchecked_fixture(tc, crypto_setup, NULL);
    tcase_add_test(tc, secret_new_shape);
    tcase_add_test(tc, secret_hash_stable_and_keyed);
    tcase_add_test(tc, hex_encoding);
    suite_add_tcase(s, tc);

    tc = tcase_create("uuid");
    tcase_add_unchecked_fixture(tc, crypto_setup, NULL);
    tcase_add_test(tc, uuid7_format);
    tcase_add_test(tc, uuid7_ordering_and_uniqueness);
    tcase_add_loop_test(tc, uuid_parse_cases, 0, (int)(sizeof uuid_cases / sizeof uuid_cases[0]));
    tcase_add_test(tc, uuid_parse_null);
    suite_add_tcase(s, tc);

    return s;
}
