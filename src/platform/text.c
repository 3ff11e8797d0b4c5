/*
 * Human-text checks. Input here has already passed the strict JSON parser, so
 * it is valid UTF-8; these functions only count and classify code points.
 */
#include "tenantflow/text.h"

#include <string.h>

size_t tf_utf8_length(const char *s)
{
    size_t n = 0;
    for (const unsigned char *u = (const unsigned char *)s; *u; u++)
        n += (*u & 0xC0) != 0x80;
    return n;
}

bool tf_text_no_controls(const char *s)
{
    for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
        if (*u < 0x20 || *u == 0x7F)
            return false;
        /* C1 controls U+0080..U+009F are encoded C2 80..C2 9F. */
        if (*u == 0xC2 && u[1] >= 0x80 && u[1] <= 0x9F)
            return false;
    }
    return true;
}

bool tf_check_text(const char *s, const char *pointer, size_t min, size_t max, tf_problem *p)
{
    size_t n = tf_utf8_length(s);
    if (n < min || n > max) {
        tf_problem_invalid(p, pointer, "must be %zu to %zu characters", min, max);
        return false;
    }
    if (!tf_text_no_controls(s)) {
        tf_problem_invalid(p, pointer, "must not contain control characters");
        return false;
    }
    return true;
}

bool tf_is_slug(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);
    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && c == '-');
        if (!ok)
            return false;
    }
    return true;
}
