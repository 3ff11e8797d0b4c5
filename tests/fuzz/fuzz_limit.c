/*
 * Fuzz target: the ?limit= query value parser, tf_parse_limit (cursor.h).
 *
 * The value arrives from libmicrohttpd as a C string, so the target passes a
 * NUL-terminated copy. Property: accepted exactly when the value is decimal
 * digits only (no sign, no white space of any kind, nothing after them)
 * whose value is 1..200, and then *out is that value; refused values leave
 * a 400 naming `limit` and *out at the default 50.
 */
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "tenantflow/cursor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *v = fuzz_cstr(data, size);
    size_t n = strlen(v);
    bool digits = n > 0;
    long value = 0;
    for (size_t i = 0; digits && i < n; i++) {
        digits = v[i] >= '0' && v[i] <= '9';
        if (digits && value <= 200)
            value = value * 10 + (v[i] - '0');
    }
    bool want = digits && value >= 1 && value <= 200;

    int out = -1;
    tf_problem p = {0};
    bool ok = tf_parse_limit(v, &out, &p);
    FUZZ_ASSERT(ok == want);
    if (ok) {
        FUZZ_ASSERT(out == (int)value && !tf_failed(&p));
    } else {
        const char *param = json_string_value(json_object_get(json_array_get(p.errors, 0),
                                                              "parameter"));
        FUZZ_ASSERT(out == 50 && p.kind == TF_PB_BAD_REQUEST && param &&
                    strcmp(param, "limit") == 0);
    }
    tf_problem_clear(&p);
    free(v);
    return 0;
}
