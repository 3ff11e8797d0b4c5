/*
 * Fuzz target: strict base64url, tf_b64url_decode (every token segment, key
 * seed and cursor passes through it) and its inverse tf_b64url_encode.
 *
 * Properties:
 *   - decoding is canonical: whatever decodes re-encodes to exactly the
 *     input, and its length is the one TF_B64URL_DECODED_MAX bounds;
 *   - an output buffer one byte short is refused, one of the exact size is
 *     enough;
 *   - encoding any bytes gives TF_B64URL_ENCODED_LEN characters that decode
 *     back to the same bytes.
 */
#include <string.h>

#include "fuzz.h"
#include "tenantflow/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = fuzz_exact(data, size);
    size_t cap = TF_B64URL_DECODED_MAX(size);
    unsigned char *out = tf_xmalloc(cap);
    size_t n = 0;
    if (tf_b64url_decode(in, size, out, cap, &n)) {
        FUZZ_ASSERT(n <= cap && TF_B64URL_ENCODED_LEN(n) == size);
        char *again = tf_b64url_encode(out, n);
        FUZZ_ASSERT(strlen(again) == size && memcmp(again, in, size) == 0);
        free(again);
        /* Exactly n bytes of room suffice; n - 1 do not. */
        unsigned char *tight = tf_xmalloc(n ? n : 1);
        size_t m = 0;
        FUZZ_ASSERT(tf_b64url_decode(in, size, n ? tight : NULL, n, &m) && m == n &&
                    memcmp(tight, out, n) == 0);
        if (n > 0)
            FUZZ_ASSERT(!tf_b64url_decode(in, size, tight, n - 1, &m));
        free(tight);
    }
    free(out);

    /* The other direction: the input as raw bytes. */
    char *enc = tf_b64url_encode(data, size);
    size_t elen = strlen(enc);
    FUZZ_ASSERT(elen == TF_B64URL_ENCODED_LEN(size));
    unsigned char *back = tf_xmalloc(size ? size : 1);
    size_t bn = 0;
    FUZZ_ASSERT(tf_b64url_decode(enc, elen, back, size, &bn) && bn == size &&
                memcmp(back, data, size) == 0);
    free(back);
    free(enc);
    free(in);
    return 0;
}
