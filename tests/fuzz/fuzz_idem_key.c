/*
 * Fuzz target: Idempotency-Key validation, tf_idem_key_valid, the check a
 * header value passes before it becomes part of an advisory-lock hash and a
 * stored key.
 *
 * The value arrives from libmicrohttpd as a C string, so the target passes a
 * NUL-terminated copy. Property: accepted exactly when the value is 1-255
 * bytes, each visible ASCII (0x21-0x7E).
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "tenantflow/idem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *key = fuzz_cstr(data, size);
    size_t n = strlen(key);
    bool want = n >= 1 && n <= TF_IDEM_KEY_MAX;
    for (size_t i = 0; want && i < n; i++)
        want = key[i] >= 0x21 && key[i] <= 0x7e;
    FUZZ_ASSERT(tf_idem_key_valid(key) == want);
    free(key);
    return 0;
}
