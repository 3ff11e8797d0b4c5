/*
 * Fuzz target: tf_uuid_parse_ok, the check on every {id} path parameter and
 * cursor id before it reaches SQL.
 *
 * Properties: it accepts exactly the 36-byte 8-4-4-4-12 hex form (checked
 * against a second statement of that rule, group by group), and the verdict
 * does not depend on the case of the hex digits.
 */
#include <ctype.h>
#include <stdbool.h>

#include "fuzz.h"
#include "tenantflow/crypto.h"

static bool expected(const char *s, size_t len)
{
    static const size_t group[] = {8, 4, 4, 4, 12};
    if (len != TF_UUID_LEN)
        return false;
    size_t at = 0;
    for (size_t g = 0; g < 5; g++) {
        if (g > 0 && s[at++] != '-')
            return false;
        for (size_t i = 0; i < group[g]; i++, at++)
            if (!isxdigit((unsigned char)s[at]))
                return false;
    }
    return at == len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_exact(data, size);
    bool ok = tf_uuid_parse_ok(s, size);
    FUZZ_ASSERT(ok == expected(s, size));
    if (ok) {
        for (size_t i = 0; i < size; i++)
            s[i] = (char)toupper((unsigned char)s[i]);
        FUZZ_ASSERT(tf_uuid_parse_ok(s, size));
    }
    free(s);
    return 0;
}
