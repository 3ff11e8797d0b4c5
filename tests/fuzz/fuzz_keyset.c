/*
 * Fuzz target: the signing key file parser, tf_keyset_from_text (the file
 * is operator-supplied, but it is also the one parser here that handles
 * private key material, so its error messages are checked too).
 *
 * Properties:
 *   - the error text is always NUL-terminated, empty exactly on success, and
 *     printable ASCII (it may quote a kid, never a seed or a raw byte);
 *   - a key set that parsed publishes one JWK per key, each with a valid kid
 *     and a 32-byte public key, and the first key signs a token that the set
 *     verifies.
 */
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "tenantflow/crypto.h"
#include "tenantflow/token.h"

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

static void check_jwks(const tf_keyset *ks)
{
    json_t *jwks = tf_keyset_jwks(ks);
    FUZZ_ASSERT(jwks != NULL);
    json_t *list = json_object_get(jwks, "keys");
    FUZZ_ASSERT(json_array_size(list) >= 1);
    size_t i;
    json_t *k;
    json_array_foreach(list, i, k)
    {
        const char *kid = json_string_value(json_object_get(k, "kid"));
        const char *x = json_string_value(json_object_get(k, "x"));
        FUZZ_ASSERT(kid && strlen(kid) >= 1 && strlen(kid) <= TF_KID_MAX);
        unsigned char pk[32];
        size_t n = 0;
        FUZZ_ASSERT(x && tf_b64url_decode(x, strlen(x), pk, sizeof pk, &n) && n == 32);
    }
    json_decref(jwks);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        if (tf_crypto_init() != 0)
            abort();
        ready = true;
    }
    char *text = fuzz_exact(data, size);
    char err[256];
    memset(err, 'x', sizeof err);
    tf_keyset *ks = tf_keyset_from_text(text, size, err, sizeof err);
    FUZZ_ASSERT(memchr(err, '\0', sizeof err) != NULL && printable(err));
    FUZZ_ASSERT((ks != NULL) == (err[0] == '\0'));
    if (ks) {
        check_jwks(ks);
        tf_claims c = {.sub = "u", .tid = "t", .iat = 1, .exp = 2};
        char *tok = tf_token_sign(ks, &c);
        tf_claims out;
        FUZZ_ASSERT(tok && tf_token_verify(ks, tok, strlen(tok), 1, 0, &out) &&
                    out.exp == 2 && strcmp(out.sub, "u") == 0);
        free(tok);
        tf_keyset_free(ks);
    }
    free(text);
    return 0;
}
