/*
 * Fuzz target: checks on human text, tf_check_text (titles, names), its
 * helpers tf_utf8_length and tf_text_no_controls, and tf_is_slug (tenant
 * slugs, workflow keys, the ?workflow= filter).
 *
 * Their callers hand them C strings: values jansson decoded (valid UTF-8, no
 * NUL) or libmicrohttpd query values (any bytes but NUL), so the target
 * passes a NUL-terminated copy. Properties:
 *   - tf_is_slug agrees with the regular expression ^[a-z0-9][a-z0-9-]*$ and
 *     the length bounds, for any bytes;
 *   - on valid UTF-8 (the only text the UTF-8 helpers are given), the code
 *     point count and the Cc verdict agree with a plain decoder here, and
 *     tf_check_text passes exactly when both limits hold, otherwise leaving
 *     one 422 error at its pointer.
 */
#include <jansson.h>
#include <regex.h>
#include <string.h>

#include "fuzz.h"
#include "tenantflow/text.h"

static regex_t slug_re;

/* Code points of valid UTF-8 s, and whether one is in category Cc. */
static size_t decode(const char *s, bool *control)
{
    size_t n = 0;
    *control = false;
    for (const unsigned char *u = (const unsigned char *)s; *u; n++) {
        unsigned cp;
        size_t len = *u < 0x80 ? 1 : *u < 0xE0 ? 2 : *u < 0xF0 ? 3 : 4;
        cp = len == 1 ? *u : (unsigned)(*u & (0x7F >> len));
        for (size_t i = 1; i < len; i++)
            cp = (cp << 6) | (u[i] & 0x3Fu);
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
            *control = true;
        u += len;
    }
    return n;
}

static void slug_case(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);
    bool want = n >= min && n <= max && regexec(&slug_re, s, 0, NULL, 0) == 0;
    FUZZ_ASSERT(tf_is_slug(s, min, max) == want);
}

static void text_case(const char *s, size_t min, size_t max)
{
    bool control;
    size_t n = decode(s, &control);
    FUZZ_ASSERT(tf_utf8_length(s) == n);
    FUZZ_ASSERT(tf_text_no_controls(s) == !control);
    tf_problem p = {0};
    bool ok = tf_check_text(s, "/title", min, max, &p);
    FUZZ_ASSERT(ok == (n >= min && n <= max && !control));
    if (!ok) {
        json_t *e = json_array_get(p.errors, 0);
        FUZZ_ASSERT(p.kind == TF_PB_VALIDATION && json_array_size(p.errors) == 1 &&
                    strcmp(json_string_value(json_object_get(e, "pointer")), "/title") == 0);
    }
    tf_problem_clear(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        if (regcomp(&slug_re, "^[a-z0-9][a-z0-9-]*$", REG_EXTENDED | REG_NOSUB) != 0)
            abort();
        ready = true;
    }
    char *s = fuzz_cstr(data, size);
    slug_case(s, 1, 63);
    slug_case(s, 2, 63);

    json_t *probe = json_string(s); /* NULL unless valid UTF-8 */
    if (probe) {
        text_case(s, 1, 200);
        text_case(s, 1, 500);
        text_case(s, 0, 3);
    }
    json_decref(probe);
    free(s);
    return 0;
}
