/*
 * Fuzz target: access token verification, tf_token_verify, against a key
 * set built once with tf_keyset_from_text (keys "a" and "b", fixed seeds).
 *
 * A fuzzer cannot forge Ed25519, so raw tokens only exercise the shape,
 * base64url and header checks. The first input byte therefore picks a mode
 * (its value modulo 3; the seed corpus uses the digits '0', '1', '2'):
 *   0  the rest is the token, verified as it is;
 *   1  the rest is "<header JSON>\n<payload JSON>": the target encodes both
 *      and signs them with key "a", so the header rules and, when the header
 *      passes, the claim rules see arbitrary JSON behind a valid signature;
 *   2  the rest is the payload JSON, behind the header tenantflow itself
 *      signs ({"alg":"EdDSA","typ":"JWT","kid":"a"}).
 * Properties: accepted claims have sub and tid of 1..63 bytes and an exp
 * that has not passed (allowing the skew); signing the accepted claims again
 * with tf_token_sign gives a token that verifies to the same claims; and a
 * token never verifies once its last character is cut off.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "tenantflow/crypto.h"
#include "tenantflow/token.h"

#define NOW  INT64_C(1700000000)
#define SKEW INT64_C(30) /* the server's TOKEN_SKEW_S */

static tf_keyset *keys;
static unsigned char sk_a[crypto_sign_SECRETKEYBYTES];

static void setup(void)
{
    if (keys)
        return;
    if (tf_crypto_init() != 0)
        abort();
    unsigned char seed_a[32], seed_b[32], pk[crypto_sign_PUBLICKEYBYTES];
    for (int i = 0; i < 32; i++) {
        seed_a[i] = (unsigned char)i;
        seed_b[i] = (unsigned char)(0xa0 + i);
    }
    if (crypto_sign_seed_keypair(pk, sk_a, seed_a) != 0)
        abort();
    char *ea = tf_b64url_encode(seed_a, sizeof seed_a);
    char *eb = tf_b64url_encode(seed_b, sizeof seed_b);
    char text[256];
    int n = snprintf(text, sizeof text, "a %s\nb %s\n", ea, eb);
    free(ea);
    free(eb);
    char err[256];
    keys = tf_keyset_from_text(text, (size_t)n, err, sizeof err);
    if (!keys) {
        fprintf(stderr, "fuzz_token: %s\n", err);
        abort();
    }
}

/* "<b64 header>.<b64 payload>.<b64 signature by key a>", malloc'd. */
static char *sign_parts(const uint8_t *h, size_t hn, const uint8_t *p, size_t pn)
{
    char *hs = tf_b64url_encode(h, hn);
    char *ps = tf_b64url_encode(p, pn);
    size_t hl = strlen(hs), pl = strlen(ps);
    size_t signed_len = hl + 1 + pl;
    size_t sig_len = TF_B64URL_ENCODED_LEN(crypto_sign_BYTES);
    char *tok = tf_xmalloc(signed_len + 1 + sig_len + 1);
    memcpy(tok, hs, hl);
    tok[hl] = '.';
    memcpy(tok + hl + 1, ps, pl);
    unsigned char sig[crypto_sign_BYTES];
    (void)crypto_sign_detached(sig, NULL, (const unsigned char *)tok, signed_len, sk_a);
    char *ss = tf_b64url_encode(sig, sizeof sig);
    tok[signed_len] = '.';
    memcpy(tok + signed_len + 1, ss, sig_len + 1);
    free(ss);
    free(ps);
    free(hs);
    return tok;
}

static bool same_claims(const tf_claims *x, const tf_claims *y)
{
    return strcmp(x->sub, y->sub) == 0 && strcmp(x->tid, y->tid) == 0 && x->iat == y->iat &&
           x->exp == y->exp && x->nbf == y->nbf;
}

/* Verifies tok[0..len) from a buffer of exactly len bytes, and checks what
 * an accepted token promises. */
static void verify(const char *tok, size_t len)
{
    char *exact = fuzz_exact((const uint8_t *)tok, len);
    tf_claims c;
    memset(&c, 0x5a, sizeof c);
    bool ok = tf_token_verify(keys, exact, len, NOW, SKEW, &c);
    if (ok) {
        size_t sl = strnlen(c.sub, sizeof c.sub), tl = strnlen(c.tid, sizeof c.tid);
        FUZZ_ASSERT(sl >= 1 && sl <= 63 && tl >= 1 && tl <= 63);
        int64_t t;
        FUZZ_ASSERT(__builtin_add_overflow(c.exp, SKEW, &t) || t > NOW);
        char *again = tf_token_sign(keys, &c);
        FUZZ_ASSERT(again != NULL);
        tf_claims c2;
        FUZZ_ASSERT(tf_token_verify(keys, again, strlen(again), NOW, SKEW, &c2) &&
                    same_claims(&c, &c2));
        free(again);
        tf_claims c3;
        FUZZ_ASSERT(!tf_token_verify(keys, exact, len - 1, NOW, SKEW, &c3));
    }
    free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size == 0) {
        tf_claims c;
        FUZZ_ASSERT(!tf_token_verify(keys, "", 0, NOW, SKEW, &c));
        return 0;
    }
    const uint8_t *rest = data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0:
        verify((const char *)rest, n);
        break;
    case 1: {
        const uint8_t *nl = memchr(rest, '\n', n);
        size_t hn = nl ? (size_t)(nl - rest) : n;
        const uint8_t *p = nl ? nl + 1 : rest + n;
        size_t pn = nl ? n - hn - 1 : 0;
        char *tok = sign_parts(rest, hn, p, pn);
        verify(tok, strlen(tok));
        free(tok);
        break;
    }
    default: {
        static const char hdr[] = "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"a\"}";
        char *tok = sign_parts((const uint8_t *)hdr, sizeof hdr - 1, rest, n);
        verify(tok, strlen(tok));
        free(tok);
        break;
    }
    }
    return 0;
}
