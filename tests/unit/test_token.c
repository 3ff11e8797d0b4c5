/*
 * Unit tests for src/platform/token.c: the key file parser, JWKS, signing,
 * and strict verification of EdDSA JWTs.
 *
 * Tokens for the failure cases are built by hand (header and payload JSON,
 * our base64url encoder, crypto_sign_detached with a known key) so that each
 * case carries a valid signature and fails only for the reason it names. Each
 * table also has positive controls built the same way, which prove the
 * builder itself makes acceptable tokens.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "suites.h"
#include "tenantflow/crypto.h"
#include "tenantflow/token.h"

#define NOW  INT64_C(1700000000)
#define SKEW INT64_C(60)

#define GOOD_HEADER  "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"a\"}"
#define GOOD_PAYLOAD "{\"sub\":\"u1\",\"tid\":\"t1\",\"iat\":1700000000,\"exp\":1700000900}"

#define A10 "aaaaaaaaaa"
#define KID64 A10 A10 A10 A10 A10 A10 "aaaa"
#define KID65 KID64 "a"

/* Two fixed keys: "a" (signs in ks_ab) and "b". */
static unsigned char seed_a[32], seed_b[32];
static unsigned char pk_a[32], sk_a[64], pk_b[32], sk_b[64];
static char *enc_a, *enc_b; /* base64url seeds */
static char text_ab[256];
static tf_keyset *ks_ab;

static void crypto_init_once(void)
{
    if (tf_crypto_init() != 0)
        abort();
}

static void keys_setup(void)
{
    for (int i = 0; i < 32; i++) {
        seed_a[i] = (unsigned char)i;
        seed_b[i] = (unsigned char)(0xa0 + i);
    }
    ck_assert_int_eq(crypto_sign_seed_keypair(pk_a, sk_a, seed_a), 0);
    ck_assert_int_eq(crypto_sign_seed_keypair(pk_b, sk_b, seed_b), 0);
    enc_a = tf_b64url_encode(seed_a, 32);
    enc_b = tf_b64url_encode(seed_b, 32);
    snprintf(text_ab, sizeof text_ab, "a %s\nb %s\n", enc_a, enc_b);
    char err[256];
    ks_ab = tf_keyset_from_text(text_ab, strlen(text_ab), err, sizeof err);
    ck_assert_msg(ks_ab != NULL, "%s", err);
}

static void keys_teardown(void)
{
    tf_keyset_free(ks_ab);
    ks_ab = NULL;
    free(enc_a);
    free(enc_b);
    enc_a = enc_b = NULL;
}

/* ---- token builders ----------------------------------------------------- */

static char *b64s(const char *s)
{
    return tf_b64url_encode((const unsigned char *)s, strlen(s));
}

static char *join(const char *a, const char *b, const char *c, const char *d)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + strlen(d) + 1;
    char *s = malloc(n);
    ck_assert_ptr_nonnull(s);
    snprintf(s, n, "%s%s%s%s", a, b, c, d);
    return s;
}

/* Standard (non-url) base64 without padding, for the '+' and '/' cases. */
static char *std_b64(const unsigned char *in, size_t n)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    char *s = malloc(cap);
    ck_assert_ptr_nonnull(s);
    sodium_bin2base64(s, cap, in, n, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    return s;
}

static void raw_sign(const char *hseg, const char *pseg, const unsigned char *sk,
                     unsigned char sig[64])
{
    char *input = join(hseg, ".", pseg, "");
    ck_assert_int_eq(crypto_sign_detached(sig, NULL, (const unsigned char *)input, strlen(input),
                                          sk),
                     0);
    free(input);
}

/* "hseg.pseg.<base64url of a valid signature over hseg.pseg>". */
static char *sign_segments(const char *hseg, const char *pseg, const unsigned char *sk)
{
    unsigned char sig[64];
    raw_sign(hseg, pseg, sk, sig);
    char *sseg = tf_b64url_encode(sig, sizeof sig);
    char *hp = join(hseg, ".", pseg, ".");
    char *tok = join(hp, sseg, "", "");
    free(hp);
    free(sseg);
    return tok;
}

static char *make_token(const char *header, const char *payload, const unsigned char *sk)
{
    char *h = b64s(header), *p = b64s(payload);
    char *tok = sign_segments(h, p, sk);
    free(h);
    free(p);
    return tok;
}

static bool verify(const tf_keyset *ks, const char *tok)
{
    tf_claims c;
    return tf_token_verify(ks, tok, strlen(tok), NOW, SKEW, &c);
}

/* The three segments of tok, each malloc'd. */
static void split(const char *tok, char **h, char **p, char **s)
{
    const char *d1 = strchr(tok, '.');
    ck_assert_ptr_nonnull(d1);
    const char *d2 = strchr(d1 + 1, '.');
    ck_assert_ptr_nonnull(d2);
    *h = strndup(tok, (size_t)(d1 - tok));
    *p = strndup(d1 + 1, (size_t)(d2 - d1 - 1));
    *s = strdup(d2 + 1);
}

/* ---- claims tables ------------------------------------------------------ */

static const struct {
    const char *name;
    const char *header;  /* NULL: GOOD_HEADER */
    const char *payload; /* NULL: GOOD_PAYLOAD */
} bad_claims[] = {
    {"alg none", "{\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"a\"}", NULL},
    {"alg None", "{\"alg\":\"None\",\"typ\":\"JWT\",\"kid\":\"a\"}", NULL},
    {"alg NONE", "{\"alg\":\"NONE\",\"typ\":\"JWT\",\"kid\":\"a\"}", NULL},
    {"alg HS256", "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"a\"}", NULL},
    {"alg RS256", "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"a\"}", NULL},
    {"alg ES256", "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"a\"}", NULL},
    {"alg eddsa (case)", "{\"alg\":\"eddsa\",\"typ\":\"JWT\",\"kid\":\"a\"}", NULL},
    {"alg Ed25519", "{\"alg\":\"Ed25519\",\"typ\":\"JWT\",\"kid\":\"a\"}", NULL},
    {"alg EdDSA with trailing space", "{\"alg\":\"EdDSA \",\"typ\":\"JWT\",\"kid\":\"a\"}", NULL},
    {"alg EdDSA with NUL", "{\"alg\":\"EdDSA\\u0000\",\"typ\":\"JWT\",\"kid\":\"a\"}", NULL},
    {"alg empty", "{\"alg\":\"\",\"typ\":\"JWT\",\"kid\":\"a\"}", NULL},
    {"alg null", "{\"alg\":null,\"typ\":\"JWT\",\"kid\":\"a\"}", NULL},
    {"alg array", "{\"alg\":[\"EdDSA\"],\"typ\":\"JWT\",\"kid\":\"a\"}", NULL},
    {"missing alg", "{\"typ\":\"JWT\",\"kid\":\"a\"}", NULL},
    {"duplicate alg", "{\"alg\":\"EdDSA\",\"alg\":\"none\",\"typ\":\"JWT\",\"kid\":\"a\"}", NULL},
    {"duplicate alg same value", "{\"alg\":\"EdDSA\",\"alg\":\"EdDSA\",\"kid\":\"a\"}", NULL},
    {"unknown kid", "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"zz\"}", NULL},
    {"hostile kid path", "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"../../etc/passwd\"}", NULL},
    {"hostile kid NUL", "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"a\\u0000\"}", NULL},
    {"hostile kid SQL", "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"a' OR '1'='1\"}", NULL},
    {"kid differs in case", "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"A\"}", NULL},
    {"overlong kid", "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"" KID65 "\"}", NULL},
    {"empty kid", "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"\"}", NULL},
    {"non-string kid (number)", "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":1}", NULL},
    {"non-string kid (array)", "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":[\"a\"]}", NULL},
    {"non-string kid (null)", "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":null}", NULL},
    {"missing kid", "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}", NULL},
    {"typ not JWT", "{\"alg\":\"EdDSA\",\"typ\":\"JOSE\",\"kid\":\"a\"}", NULL},
    {"typ not a string", "{\"alg\":\"EdDSA\",\"typ\":1,\"kid\":\"a\"}", NULL},
    {"crit present", "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"a\",\"crit\":[\"exp\"]}", NULL},
    {"header is an array", "[\"EdDSA\",\"a\"]", NULL},
    {"header is a string", "\"EdDSA\"", NULL},
    {"header not JSON", "alg=EdDSA", NULL},
    {"header with trailing data", GOOD_HEADER "x", NULL},
    {"header with two objects", GOOD_HEADER GOOD_HEADER, NULL},
    {"missing exp", NULL, "{\"sub\":\"u1\",\"tid\":\"t1\",\"iat\":1700000000}"},
    {"string exp", NULL, "{\"sub\":\"u1\",\"tid\":\"t1\",\"exp\":\"1700000900\"}"},
    {"float exp", NULL, "{\"sub\":\"u1\",\"tid\":\"t1\",\"exp\":1700000900.0}"},
    {"exponent exp", NULL, "{\"sub\":\"u1\",\"tid\":\"t1\",\"exp\":1.7e9}"},
    {"exp 1e30", NULL, "{\"sub\":\"u1\",\"tid\":\"t1\",\"exp\":1e30}"},
    {"exp beyond int64", NULL, "{\"sub\":\"u1\",\"tid\":\"t1\",\"exp\":99999999999999999999}"},
    {"exp null", NULL, "{\"sub\":\"u1\",\"tid\":\"t1\",\"exp\":null}"},
    {"exp true", NULL, "{\"sub\":\"u1\",\"tid\":\"t1\",\"exp\":true}"},
    {"duplicate exp", NULL, "{\"sub\":\"u1\",\"tid\":\"t1\",\"exp\":1,\"exp\":1700000900}"},
    {"expired beyond skew", NULL, "{\"sub\":\"u1\",\"tid\":\"t1\",\"exp\":1699999939}"},
    {"expired exactly at skew", NULL, "{\"sub\":\"u1\",\"tid\":\"t1\",\"exp\":1699999940}"},
    {"nbf in the future beyond skew", NULL,
     "{\"sub\":\"u1\",\"tid\":\"t1\",\"exp\":1700000900,\"nbf\":1700000061}"},
    {"string nbf", NULL, "{\"sub\":\"u1\",\"tid\":\"t1\",\"exp\":1700000900,\"nbf\":\"0\"}"},
    {"float nbf", NULL, "{\"sub\":\"u1\",\"tid\":\"t1\",\"exp\":1700000900,\"nbf\":1.5}"},
    {"string iat", NULL, "{\"sub\":\"u1\",\"tid\":\"t1\",\"exp\":1700000900,\"iat\":\"now\"}"},
    {"missing sub", NULL, "{\"tid\":\"t1\",\"exp\":1700000900}"},
    {"empty sub", NULL, "{\"sub\":\"\",\"tid\":\"t1\",\"exp\":1700000900}"},
    {"sub of 64 bytes", NULL, "{\"sub\":\"" KID64 "\",\"tid\":\"t1\",\"exp\":1700000900}"},
    {"numeric sub", NULL, "{\"sub\":42,\"tid\":\"t1\",\"exp\":1700000900}"},
    {"sub with NUL", NULL, "{\"sub\":\"u\\u00001\",\"tid\":\"t1\",\"exp\":1700000900}"},
    {"missing tid", NULL, "{\"sub\":\"u1\",\"exp\":1700000900}"},
    {"null tid", NULL, "{\"sub\":\"u1\",\"tid\":null,\"exp\":1700000900}"},
    {"duplicate tid", NULL, "{\"sub\":\"u1\",\"tid\":\"t1\",\"tid\":\"t2\",\"exp\":1700000900}"},
    {"payload is an array", NULL, "[\"u1\",\"t1\",1700000900]"},
    {"payload not JSON", NULL, "sub=u1&exp=1700000900"},
    {"payload with trailing data", NULL, GOOD_PAYLOAD "}"},
    {"payload invalid UTF-8", NULL, "{\"sub\":\"u\xff\",\"tid\":\"t1\",\"exp\":1700000900}"},
};

START_TEST(claims_refused)
{
    const char *h = bad_claims[_i].header ? bad_claims[_i].header : GOOD_HEADER;
    const char *p = bad_claims[_i].payload ? bad_claims[_i].payload : GOOD_PAYLOAD;
    char *tok = make_token(h, p, sk_a);
    tf_claims c;
    memset(&c, 0x5a, sizeof c);
    tf_claims before = c;
    ck_assert_msg(!tf_token_verify(ks_ab, tok, strlen(tok), NOW, SKEW, &c), "accepted: %s",
                  bad_claims[_i].name);
    ck_assert_msg(memcmp(&c, &before, sizeof c) == 0, "claims written on failure");
    free(tok);
}
END_TEST

static const struct {
    const char *name;
    const char *header;
    const char *payload;
} good_claims[] = {
    {"baseline", NULL, NULL},
    {"accepted within skew", NULL, "{\"sub\":\"u1\",\"tid\":\"t1\",\"exp\":1699999970}"},
    {"nbf within skew", NULL,
     "{\"sub\":\"u1\",\"tid\":\"t1\",\"exp\":1700000900,\"nbf\":1700000030}"},
    {"nbf in the past", NULL, "{\"sub\":\"u1\",\"tid\":\"t1\",\"exp\":1700000900,\"nbf\":1}"},
    {"exp at int64 max", NULL, "{\"sub\":\"u1\",\"tid\":\"t1\",\"exp\":9223372036854775807}"},
    {"sub of 63 bytes", NULL,
     "{\"sub\":\"" A10 A10 A10 A10 A10 A10 "aaa\",\"tid\":\"t\",\"exp\":1700000900}"},
    {"unknown claims ignored", NULL,
     "{\"sub\":\"u1\",\"tid\":\"t1\",\"exp\":1700000900,\"jti\":\"x\",\"aud\":[1]}"},
    {"no typ", "{\"alg\":\"EdDSA\",\"kid\":\"a\"}", NULL},
    {"members in another order", "{\"kid\":\"a\",\"typ\":\"JWT\",\"alg\":\"EdDSA\"}", NULL},
};

START_TEST(claims_accepted)
{
    const char *h = good_claims[_i].header ? good_claims[_i].header : GOOD_HEADER;
    const char *p = good_claims[_i].payload ? good_claims[_i].payload : GOOD_PAYLOAD;
    char *tok = make_token(h, p, sk_a);
    ck_assert_msg(verify(ks_ab, tok), "refused: %s", good_claims[_i].name);
    free(tok);
}
END_TEST

START_TEST(exp_is_required_at_any_time)
{
    /* An absent exp must not read as 0: at now = 0 an exp of 0 would still be
     * inside the skew, so only the "required" rule refuses this token. */
    char *tok = make_token(GOOD_HEADER, "{\"sub\":\"u1\",\"tid\":\"t1\"}", sk_a);
    ck_assert(!tf_token_verify(ks_ab, tok, strlen(tok), 0, SKEW, NULL));
    free(tok);
    tok = make_token(GOOD_HEADER, "{\"sub\":\"u1\",\"tid\":\"t1\",\"exp\":0}", sk_a);
    ck_assert(tf_token_verify(ks_ab, tok, strlen(tok), 0, SKEW, NULL));
    free(tok);
}
END_TEST

START_TEST(kid_of_64_chars_verifies)
{
    char text[256], err[256];
    snprintf(text, sizeof text, "%s %s\n", KID64, enc_a);
    tf_keyset *ks = tf_keyset_from_text(text, strlen(text), err, sizeof err);
    ck_assert_msg(ks != NULL, "%s", err);
    char *tok = make_token("{\"alg\":\"EdDSA\",\"kid\":\"" KID64 "\"}", GOOD_PAYLOAD, sk_a);
    ck_assert(verify(ks, tok));
    free(tok);
    tf_keyset_free(ks);
}
END_TEST

/* ---- encoding and structure -------------------------------------------- */

START_TEST(padded_segments_refused)
{
    /* Payload whose encoding needs padding; a space keeps the JSON valid. */
    const char *payload = strlen(GOOD_PAYLOAD) % 3 ? GOOD_PAYLOAD : GOOD_PAYLOAD " ";
    size_t rem = strlen(payload) % 3;
    ck_assert_uint_ne(rem, 0);
    char *h = b64s(GOOD_HEADER), *p = b64s(payload);

    char *control = sign_segments(h, p, sk_a);
    ck_assert(verify(ks_ab, control));

    /* padded payload, signed over the padded text */
    char *p_pad = join(p, rem == 1 ? "==" : "=", "", "");
    char *tok = sign_segments(h, p_pad, sk_a);
    ck_assert(!verify(ks_ab, tok));
    free(tok);

    /* '=' after the header (which needs none), signed over that text */
    char *h_pad = join(h, "=", "", "");
    tok = sign_segments(h_pad, p, sk_a);
    ck_assert(!verify(ks_ab, tok));
    free(tok);

    /* standard padding on the 64-byte signature: 86 characters + "==" */
    tok = join(control, "==", "", "");
    ck_assert(!verify(ks_ab, tok));
    free(tok);
    tok = join(control, "=", "", "");
    ck_assert(!verify(ks_ab, tok));
    free(tok);

    free(control);
    free(p_pad);
    free(h_pad);
    free(h);
    free(p);
}
END_TEST

/* Finds a payload whose signature's standard base64 contains c, then checks
 * that the url-safe token verifies and the standard-alphabet one does not. */
static void check_std_alphabet_refused(char c)
{
    char *h = b64s(GOOD_HEADER);
    bool found = false;
    for (int nonce = 0; nonce < 1000 && !found; nonce++) {
        char payload[160];
        snprintf(payload, sizeof payload,
                 "{\"sub\":\"u1\",\"tid\":\"t1\",\"exp\":1700000900,\"n\":%d}", nonce);
        char *p = b64s(payload);
        unsigned char sig[64];
        raw_sign(h, p, sk_a, sig);
        char *std = std_b64(sig, sizeof sig);
        if (strchr(std, c)) {
            found = true;
            char *url = tf_b64url_encode(sig, sizeof sig);
            char *hp = join(h, ".", p, ".");
            char *good = join(hp, url, "", "");
            char *bad = join(hp, std, "", "");
            ck_assert(verify(ks_ab, good));
            ck_assert_msg(!verify(ks_ab, bad), "accepted '%c' in the signature", c);
            free(url);
            free(hp);
            free(good);
            free(bad);
        }
        free(std);
        free(p);
    }
    ck_assert(found);
    free(h);
}

START_TEST(plus_in_segment_refused)
{
    check_std_alphabet_refused('+');
}
END_TEST

START_TEST(slash_in_segment_refused)
{
    check_std_alphabet_refused('/');
}
END_TEST

START_TEST(altered_signature_refused)
{
    char *good = make_token(GOOD_HEADER, GOOD_PAYLOAD, sk_a);
    ck_assert(verify(ks_ab, good));
    size_t n = strlen(good);
    char *h, *p, *s;
    split(good, &h, &p, &s);
    ck_assert_uint_eq(strlen(s), 86);

    /* The last character carries 2 bits; A, Q, g, w are its canonical forms.
     * Another canonical one still decodes, so only the signature fails. */
    const char *canon = "AQgw";
    char last = good[n - 1];
    ck_assert_ptr_nonnull(strchr(canon, last));
    char *tok = strdup(good);
    tok[n - 1] = last == 'A' ? 'Q' : 'A';
    unsigned char sig[64];
    size_t sn;
    ck_assert(tf_b64url_decode(tok + n - 86, 86, sig, sizeof sig, &sn));
    ck_assert(!verify(ks_ab, tok));

    /* A non-canonical last character decodes to the same bytes: refused. */
    tok[n - 1] = (char)(last + 1);
    ck_assert(!verify(ks_ab, tok));

    /* A character in the middle of the signature. */
    memcpy(tok, good, n);
    tok[n - 40] = tok[n - 40] == 'x' ? 'y' : 'x';
    ck_assert(!verify(ks_ab, tok));
    free(tok);

    /* Signature of another key, or over another payload. */
    char *other = make_token(GOOD_HEADER, GOOD_PAYLOAD, sk_b);
    ck_assert(!verify(ks_ab, other));
    char *h2, *p2, *s2;
    split(other, &h2, &p2, &s2);
    char *hp = join(h, ".", p, ".");
    tok = join(hp, s2, "", "");
    ck_assert(!verify(ks_ab, tok));
    free(tok);

    char *p_admin = b64s("{\"sub\":\"admin\",\"tid\":\"t1\",\"exp\":1700000900}");
    char *hp2 = join(h, ".", p_admin, ".");
    tok = join(hp2, s, "", "");
    ck_assert(!verify(ks_ab, tok));
    free(tok);

    free(p_admin);
    free(hp2);
    free(hp);
    free(other);
    free(h2);
    free(p2);
    free(s2);
    free(h);
    free(p);
    free(s);
    free(good);
}
END_TEST

START_TEST(segment_structure_refused)
{
    char *good = make_token(GOOD_HEADER, GOOD_PAYLOAD, sk_a);
    char *h, *p, *s;
    split(good, &h, &p, &s);
    char *hp = join(h, ".", p, "");
    char *tok;

    struct {
        const char *name;
        char *tok;
    } cases[] = {
        {"two segments", strdup(hp)},
        {"empty signature", join(hp, ".", "", "")},
        {"fourth segment", join(good, ".", s, "")},
        {"empty fourth segment", join(good, ".", "", "")},
        {"empty header", join(".", p, ".", s)},
        {"empty payload", join(h, "..", s, "")},
        {"one segment", strdup(h)},
        {"two dots only", strdup("..")},
        {"three dots", strdup("...")},
        {"leading space", join(" ", good, "", "")},
        {"trailing newline", join(good, "\n", "", "")},
        {"Bearer prefix", join("Bearer ", good, "", "")},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_msg(!verify(ks_ab, cases[i].tok), "accepted: %s", cases[i].name);
        free(cases[i].tok);
    }

    tf_claims c;
    ck_assert(!tf_token_verify(ks_ab, "", 0, NOW, SKEW, &c));
    ck_assert(!tf_token_verify(ks_ab, NULL, 10, NOW, SKEW, &c));
    ck_assert(!tf_token_verify(NULL, good, strlen(good), NOW, SKEW, &c));

    /* A trailing NUL counted in len, and a NUL inside. */
    size_t n = strlen(good);
    ck_assert(!tf_token_verify(ks_ab, good, n + 1, NOW, SKEW, &c));
    tok = strdup(good);
    tok[strlen(h) + 3] = '\0';
    ck_assert(!tf_token_verify(ks_ab, tok, n, NOW, SKEW, &c));
    free(tok);

    /* Only len bytes count: a shorter len fails, and the exact token inside a
     * larger buffer without a terminator succeeds. */
    ck_assert(!tf_token_verify(ks_ab, good, n - 1, NOW, SKEW, &c));
    tok = malloc(n + 8);
    memcpy(tok, good, n);
    memcpy(tok + n, ".AAAA.x", 7);
    tok[n + 7] = 'y';
    ck_assert(tf_token_verify(ks_ab, tok, n, NOW, SKEW, &c));
    free(tok);

    free(hp);
    free(h);
    free(p);
    free(s);
    free(good);
}
END_TEST

/* A valid token of exactly `total` characters (padding the payload), or NULL
 * when that length cannot be reached. */
static char *token_of_length(size_t total)
{
    static const char head[] = "{\"sub\":\"u1\",\"tid\":\"t1\",\"exp\":1700000900,\"pad\":\"";
    size_t hl = TF_B64URL_ENCODED_LEN(strlen(GOOD_HEADER));
    size_t fixed = hl + 1 + 1 + TF_B64URL_ENCODED_LEN(64);
    for (size_t k = 0; k < 8000; k++) {
        size_t plen = strlen(head) + k + 2;
        if (fixed + TF_B64URL_ENCODED_LEN(plen) != total)
            continue;
        char *payload = malloc(plen + 1);
        memcpy(payload, head, strlen(head));
        memset(payload + strlen(head), 'x', k);
        memcpy(payload + strlen(head) + k, "\"}", 3);
        char *tok = make_token(GOOD_HEADER, payload, sk_a);
        free(payload);
        ck_assert_uint_eq(strlen(tok), total);
        return tok;
    }
    return NULL;
}

START_TEST(length_cap)
{
    char *tok = token_of_length(TF_TOKEN_MAX_LEN);
    ck_assert_ptr_nonnull(tok);
    ck_assert(verify(ks_ab, tok));
    free(tok);

    tok = token_of_length(TF_TOKEN_MAX_LEN + 2); /* +1 is not a base64 length */
    ck_assert_ptr_nonnull(tok);
    ck_assert(!verify(ks_ab, tok));
    free(tok);

    tok = token_of_length(5000);
    ck_assert_ptr_nonnull(tok);
    ck_assert(!verify(ks_ab, tok));
    free(tok);
}
END_TEST

/* ---- signing ------------------------------------------------------------ */

static tf_claims sample_claims(void)
{
    tf_claims c;
    memset(&c, 0, sizeof c);
    strcpy(c.sub, "0190a6e2-7c4b-7d3e-9f00-123456789abc");
    strcpy(c.tid, "0190a6e2-0000-7000-8000-000000000001");
    c.iat = NOW;
    c.exp = NOW + 900;
    return c;
}

static char *decode_segment(const char *seg, size_t len)
{
    char *out = malloc(len + 1);
    size_t n = 0;
    ck_assert(tf_b64url_decode(seg, len, (unsigned char *)out, len, &n));
    out[n] = '\0';
    return out;
}

START_TEST(sign_verify_round_trip)
{
    tf_claims c = sample_claims();
    char *tok = tf_token_sign(ks_ab, &c);
    ck_assert_ptr_nonnull(tok);

    tf_claims out;
    memset(&out, 0x5a, sizeof out);
    ck_assert(tf_token_verify(ks_ab, tok, strlen(tok), NOW, SKEW, &out));
    ck_assert_str_eq(out.sub, c.sub);
    ck_assert_str_eq(out.tid, c.tid);
    ck_assert_int_eq(out.iat, c.iat);
    ck_assert_int_eq(out.exp, c.exp);
    ck_assert_int_eq(out.nbf, 0);

    /* NULL out is allowed; expiry is enforced on our own tokens too. */
    ck_assert(tf_token_verify(ks_ab, tok, strlen(tok), NOW, SKEW, NULL));
    ck_assert(!tf_token_verify(ks_ab, tok, strlen(tok), NOW + 900 + SKEW, SKEW, NULL));
    ck_assert(tf_token_verify(ks_ab, tok, strlen(tok), NOW + 900 + SKEW - 1, SKEW, NULL));
    ck_assert(!tf_token_verify(ks_ab, tok, strlen(tok), NOW + 900, 0, NULL));
    ck_assert(!tf_token_verify(ks_ab, tok, strlen(tok), NOW + 900, -5, NULL));
    free(tok);
}
END_TEST

START_TEST(sign_exact_header_and_payload)
{
    tf_claims c = sample_claims();
    strcpy(c.sub, "u1");
    strcpy(c.tid, "t1");
    char *tok = tf_token_sign(ks_ab, &c);
    ck_assert_ptr_nonnull(tok);
    char *h, *p, *s;
    split(tok, &h, &p, &s);
    char *hj = decode_segment(h, strlen(h));
    char *pj = decode_segment(p, strlen(p));
    ck_assert_str_eq(hj, GOOD_HEADER);
    ck_assert_str_eq(pj, GOOD_PAYLOAD);
    ck_assert_uint_eq(strlen(s), 86);
    free(hj);
    free(pj);
    free(h);
    free(p);
    free(s);
    free(tok);

    c.nbf = NOW - 5;
    tok = tf_token_sign(ks_ab, &c);
    ck_assert_ptr_nonnull(tok);
    split(tok, &h, &p, &s);
    pj = decode_segment(p, strlen(p));
    ck_assert_str_eq(pj, "{\"sub\":\"u1\",\"tid\":\"t1\",\"iat\":1700000000,\"exp\":1700000900,"
                         "\"nbf\":1699999995}");
    tf_claims out;
    ck_assert(tf_token_verify(ks_ab, tok, strlen(tok), NOW, SKEW, &out));
    ck_assert_int_eq(out.nbf, NOW - 5);
    ck_assert(!tf_token_verify(ks_ab, tok, strlen(tok), NOW - 100, SKEW, &out));
    free(pj);
    free(h);
    free(p);
    free(s);
    free(tok);
}
END_TEST

START_TEST(sign_escapes_and_refusals)
{
    tf_claims c = sample_claims();
    strcpy(c.sub, "a\"b\\c/d");
    char *tok = tf_token_sign(ks_ab, &c);
    ck_assert_ptr_nonnull(tok);
    tf_claims out;
    ck_assert(tf_token_verify(ks_ab, tok, strlen(tok), NOW, SKEW, &out));
    ck_assert_str_eq(out.sub, "a\"b\\c/d");
    free(tok);

    c = sample_claims();
    c.sub[0] = '\0';
    ck_assert_ptr_null(tf_token_sign(ks_ab, &c));
    c = sample_claims();
    memset(c.tid, 'x', sizeof c.tid); /* not terminated within 64 bytes */
    ck_assert_ptr_null(tf_token_sign(ks_ab, &c));
    c = sample_claims();
    strcpy(c.sub, "bad\xff");
    ck_assert_ptr_null(tf_token_sign(ks_ab, &c));
    c = sample_claims();
    ck_assert_ptr_null(tf_token_sign(NULL, &c));
    ck_assert_ptr_null(tf_token_sign(ks_ab, NULL));
}
END_TEST

START_TEST(rotated_keys)
{
    char text_old[128], text_new[256], err[256];
    snprintf(text_old, sizeof text_old, "old %s\n", enc_a);
    snprintf(text_new, sizeof text_new, "# rotated\nnew %s\nold %s\n", enc_b, enc_a);
    tf_keyset *ks_old = tf_keyset_from_text(text_old, strlen(text_old), err, sizeof err);
    ck_assert_msg(ks_old != NULL, "%s", err);
    tf_keyset *ks_new = tf_keyset_from_text(text_new, strlen(text_new), err, sizeof err);
    ck_assert_msg(ks_new != NULL, "%s", err);

    tf_claims c = sample_claims();
    char *old_tok = tf_token_sign(ks_old, &c);
    char *new_tok = tf_token_sign(ks_new, &c);
    ck_assert_ptr_nonnull(old_tok);
    ck_assert_ptr_nonnull(new_tok);

    /* A token of the old key still verifies with the rotated set (second key). */
    ck_assert(verify(ks_new, old_tok));
    ck_assert(verify(ks_new, new_tok));
    /* The old set does not know the new kid. */
    ck_assert(!verify(ks_old, new_tok));

    /* kid "new" with a signature by the old key: the named key decides. */
    char *forged = make_token("{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"new\"}", GOOD_PAYLOAD,
                              sk_a);
    ck_assert(!verify(ks_new, forged));
    char *right = make_token("{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"old\"}", GOOD_PAYLOAD,
                             sk_a);
    ck_assert(verify(ks_new, right));

    free(forged);
    free(right);
    free(old_tok);
    free(new_tok);
    tf_keyset_free(ks_old);
    tf_keyset_free(ks_new);
}
END_TEST

/* ---- key files ---------------------------------------------------------- */

START_TEST(keyset_good_text)
{
    char text[512], err[256];
    snprintf(text, sizeof text,
             "\xEF\xBB\xBF# tenantflow signing keys\n"
             "\n"
             "   # indented comment\r\n"
             "  2025-01.k_A\t%s  \r\n"
             "\t\n"
             "b %s",
             enc_a, enc_b);
    tf_keyset *ks = tf_keyset_from_text(text, strlen(text), err, sizeof err);
    ck_assert_msg(ks != NULL, "%s", err);

    tf_claims c = sample_claims();
    char *tok = tf_token_sign(ks, &c);
    ck_assert_ptr_nonnull(tok);
    char *h, *p, *s;
    split(tok, &h, &p, &s);
    char *hj = decode_segment(h, strlen(h));
    ck_assert_str_eq(hj, "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"2025-01.k_A\"}");
    ck_assert(verify(ks, tok));

    char *tok_b = make_token("{\"alg\":\"EdDSA\",\"kid\":\"b\"}", GOOD_PAYLOAD, sk_b);
    ck_assert(verify(ks, tok_b));

    free(tok_b);
    free(hj);
    free(h);
    free(p);
    free(s);
    free(tok);
    tf_keyset_free(ks);
}
END_TEST

/* Replaces the last character of a 43-character seed with a non-canonical
 * one (its two unused low bits set). */
static char *noncanonical_seed(const char *seed)
{
    static const char alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *s = strdup(seed);
    size_t v = (size_t)(strchr(alpha, s[42]) - alpha);
    ck_assert_uint_eq(v & 3, 0);
    s[42] = alpha[v | 1];
    return s;
}

START_TEST(keyset_bad_text)
{
    char *nc = noncanonical_seed(enc_a);
    char *std = strdup(enc_a);
    std[5] = '+';
    struct {
        const char *name;
        char *text;
        const char *expect; /* substring of the error */
    } cases[] = {
        {"short seed", join("# c\na ", "AAAA", "\n", ""), "line 2: seed"},
        {"long seed", join("a ", enc_a, "A\n", ""), "line 1: seed"},
        {"padded seed", join("a ", enc_a, "=\n", ""), "line 1: seed"},
        {"seed with +", join("a ", std, "\n", ""), "line 1: seed"},
        {"non-canonical seed", join("a ", nc, "\n", ""), "line 1: seed"},
        {"missing seed", strdup("a\n"), "line 1: missing seed"},
        {"extra field", join("a ", enc_a, " extra\n", ""), "line 1: expected"},
        {"kid with slash", join("a/b ", enc_a, "\n", ""), "line 1: kid"},
        {"kid with colon", join("a:b ", enc_a, "\n", ""), "line 1: kid"},
        {"kid not ASCII", join("k\xc3\xa9 ", enc_a, "\n", ""), "line 1: kid"},
        {"kid of 65", join(KID65 " ", enc_a, "\n", ""), "line 1: kid"},
        {"duplicate kid", join("a ", enc_a, "\n# x\na ", enc_b), "line 3: duplicate kid \"a\""},
        {"empty", strdup(""), "no keys"},
        {"only comments", strdup("# nothing\n\n   \n\t# more\n"), "no keys"},
    };
    char err[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        strcpy(err, "unset");
        tf_keyset *ks = tf_keyset_from_text(cases[i].text, strlen(cases[i].text), err, sizeof err);
        ck_assert_msg(ks == NULL, "accepted: %s", cases[i].name);
        ck_assert_msg(strstr(err, cases[i].expect) != NULL, "%s: error \"%s\"", cases[i].name,
                      err);
        ck_assert_msg(strstr(err, enc_a) == NULL && strstr(err, enc_b) == NULL,
                      "%s: error shows key material", cases[i].name);
        free(cases[i].text);
    }

    /* A NUL byte inside the length. */
    char buf[128];
    int n = snprintf(buf, sizeof buf, "a %s\n#.x\n", enc_a);
    buf[n - 3] = '\0';
    ck_assert(tf_keyset_from_text(buf, (size_t)n, err, sizeof err) == NULL);
    ck_assert_ptr_nonnull(strstr(err, "line 2: NUL"));

    /* Over 64 KiB, and NULL err tolerated. */
    char *big = malloc(TF_KEYFILE_MAX + 1);
    memset(big, '#', TF_KEYFILE_MAX + 1);
    ck_assert(tf_keyset_from_text(big, TF_KEYFILE_MAX + 1, err, sizeof err) == NULL);
    ck_assert(tf_keyset_from_text(big, TF_KEYFILE_MAX + 1, NULL, 0) == NULL);
    free(big);

    free(nc);
    free(std);
}
END_TEST

static char *write_temp(const char *data, size_t len)
{
    char *path = strdup("/tmp/tf_keys_XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
    return path;
}

START_TEST(keyset_load_files)
{
    char err[512];
    char *path = write_temp(text_ab, strlen(text_ab));
    tf_keyset *ks = tf_keyset_load(path, err, sizeof err);
    ck_assert_msg(ks != NULL, "%s", err);
    char *tok = make_token(GOOD_HEADER, GOOD_PAYLOAD, sk_a);
    ck_assert(verify(ks, tok));
    free(tok);
    tf_keyset_free(ks);
    unlink(path);

    /* gone */
    ck_assert(tf_keyset_load(path, err, sizeof err) == NULL);
    ck_assert_ptr_nonnull(strstr(err, path));
    free(path);

    /* a directory */
    ck_assert(tf_keyset_load("/tmp", err, sizeof err) == NULL);
    ck_assert_ptr_nonnull(strstr(err, "not a regular file"));

    /* empty file */
    path = write_temp("", 0);
    ck_assert(tf_keyset_load(path, err, sizeof err) == NULL);
    ck_assert_ptr_nonnull(strstr(err, "no keys"));
    ck_assert_ptr_nonnull(strstr(err, path));
    unlink(path);
    free(path);

    /* bad line: the message names the file and the line */
    char *bad = join("# keys\nok ", enc_a, "\nbad/kid ", enc_b);
    path = write_temp(bad, strlen(bad));
    ck_assert(tf_keyset_load(path, err, sizeof err) == NULL);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, "line 3"));
    unlink(path);
    free(path);
    free(bad);

    /* over 64 KiB (a valid key first, comments after) */
    char *big = malloc(TF_KEYFILE_MAX + 2);
    memset(big, '#', TF_KEYFILE_MAX + 1);
    memcpy(big, text_ab, strlen(text_ab));
    path = write_temp(big, TF_KEYFILE_MAX + 1);
    ck_assert(tf_keyset_load(path, err, sizeof err) == NULL);
    ck_assert_ptr_nonnull(strstr(err, "larger than"));
    unlink(path);
    free(path);
    free(big);

    ck_assert(tf_keyset_load(NULL, err, sizeof err) == NULL);
    ck_assert(tf_keyset_load("", err, sizeof err) == NULL);
}
END_TEST

START_TEST(keyset_generate_line)
{
    char *l1 = tf_keyset_generate_line("k-1.x_Y");
    char *l2 = tf_keyset_generate_line("k-1.x_Y");
    ck_assert_ptr_nonnull(l1);
    ck_assert_ptr_nonnull(l2);
    ck_assert_str_ne(l1, l2);
    ck_assert_uint_eq(strlen(l1), 7 + 1 + 43 + 1);
    ck_assert(strncmp(l1, "k-1.x_Y ", 8) == 0);
    ck_assert_int_eq(l1[strlen(l1) - 1], '\n');

    char err[256];
    tf_keyset *ks = tf_keyset_from_text(l1, strlen(l1), err, sizeof err);
    ck_assert_msg(ks != NULL, "%s", err);
    tf_claims c = sample_claims();
    char *tok = tf_token_sign(ks, &c);
    ck_assert_ptr_nonnull(tok);
    ck_assert(verify(ks, tok));
    free(tok);
    tf_keyset_free(ks);

    char *l64 = tf_keyset_generate_line(KID64);
    ck_assert_ptr_nonnull(l64);
    free(l64);
    ck_assert_ptr_null(tf_keyset_generate_line(KID65));
    ck_assert_ptr_null(tf_keyset_generate_line(""));
    ck_assert_ptr_null(tf_keyset_generate_line("a b"));
    ck_assert_ptr_null(tf_keyset_generate_line("../x"));
    ck_assert_ptr_null(tf_keyset_generate_line(NULL));
    free(l1);
    free(l2);
}
END_TEST

START_TEST(keyset_jwks)
{
    json_t *j = tf_keyset_jwks(ks_ab);
    ck_assert_ptr_nonnull(j);
    json_t *keys = json_object_get(j, "keys");
    ck_assert(json_is_array(keys));
    ck_assert_uint_eq(json_array_size(keys), 2);
    ck_assert_uint_eq(json_object_size(j), 1);

    const unsigned char *pks[2] = {pk_a, pk_b};
    const char *kids[2] = {"a", "b"};
    for (size_t i = 0; i < 2; i++) {
        json_t *k = json_array_get(keys, i);
        ck_assert_uint_eq(json_object_size(k), 6);
        ck_assert_str_eq(json_string_value(json_object_get(k, "kty")), "OKP");
        ck_assert_str_eq(json_string_value(json_object_get(k, "crv")), "Ed25519");
        ck_assert_str_eq(json_string_value(json_object_get(k, "kid")), kids[i]);
        ck_assert_str_eq(json_string_value(json_object_get(k, "use")), "sig");
        ck_assert_str_eq(json_string_value(json_object_get(k, "alg")), "EdDSA");
        char *x = tf_b64url_encode(pks[i], 32);
        ck_assert_str_eq(json_string_value(json_object_get(k, "x")), x);
        free(x);
        /* no private member */
        ck_assert_ptr_null(json_object_get(k, "d"));
    }
    json_decref(j);
}
END_TEST

Suite *token_suite(void)
{
    Suite *s = suite_create("token");

    TCase *tc = tcase_create("verify");
    tcase_add_unchecked_fixture(tc, crypto_init_once, NULL);
    tcase_add_checked_fixture(tc, keys_setup, keys_teardown);
    tcase_add_loop_test(tc, claims_refused, 0, (int)(sizeof bad_claims / sizeof bad_claims[0]));
    tcase_add_loop_test(tc, claims_accepted, 0, (int)(sizeof good_claims / sizeof good_claims[0]));
    tcase_add_test(tc, exp_is_required_at_any_time);
    tcase_add_test(tc, kid_of_64_chars_verifies);
    tcase_add_test(tc, padded_segments_refused);
    tcase_add_test(tc, plus_in_segment_refused);
    tcase_add_test(tc, slash_in_segment_refused);
    tcase_add_test(tc, altered_signature_refused);
    tcase_add_test(tc, segment_structure_refused);
    tcase_add_test(tc, length_cap);
    suite_add_tcase(s, tc);

    tc = tcase_create("sign");
    tcase_add_unchecked_fixture(tc, crypto_init_once, NULL);
    tcase_add_checked_fixture(tc, keys_setup, keys_teardown);
    tcase_add_test(tc, sign_verify_round_trip);
    tcase_add_test(tc, sign_exact_header_and_payload);
    tcase_add_test(tc, sign_escapes_and_refusals);
    tcase_add_test(tc, rotated_keys);
    suite_add_tcase(s, tc);

    tc = tcase_create("keyset");
    tcase_add_unchecked_fixture(tc, crypto_init_once, NULL);
    tcase_add_checked_fixture(tc, keys_setup, keys_teardown);
    tcase_add_test(tc, keyset_good_text);
    tcase_add_test(tc, keyset_bad_text);
    tcase_add_test(tc, keyset_load_files);
    tcase_add_test(tc, keyset_generate_line);
    tcase_add_test(tc, keyset_jwks);
    suite_add_tcase(s, tc);

    return s;
}
