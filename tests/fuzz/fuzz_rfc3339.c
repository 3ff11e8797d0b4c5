/*
 * Fuzz target: tf_parse_rfc3339 (text.h), the RFC 3339 parser behind the
 * item list's created_after/created_before, the audit list's since/until and
 * API key expiry. Query values arrive from libmicrohttpd NUL-terminated, so
 * the target passes a NUL-terminated copy.
 *
 * Property: the verdict and the instant agree with a second statement of the
 * rule written differently: the fixed shape checked character class by
 * character class, the calendar checked by a round trip through glibc's
 * timegm/gmtime_r (a date that normalises to another is not real), the
 * offset bound that PostgreSQL's timestamptz input imposes (at most 15:59),
 * and the instant computed by timegm. Before this parser was shared, the
 * audit filters had a shape-only copy that let "2026-01-32T09:00:00Z"
 * through to a failing SQL cast (corpus/rfc3339/audit-day-32).
 */
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "fuzz.h"
#include "tenantflow/text.h"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int num(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* The model: true and *us when s is acceptable. */
static bool model(const char *s, long long *us)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd";
    size_t len = strlen(s), i = 0;
    if (len < sizeof shape - 1)
        return false;
    for (; shape[i]; i++) {
        bool ok = shape[i] == 'd' ? is_digit(s[i])
                  : shape[i] == 'T' ? (s[i] == 'T' || s[i] == 't')
                                    : s[i] == shape[i];
        if (!ok)
            return false;
    }
    long long frac = 0;
    if (s[i] == '.') {
        size_t start = ++i;
        while (is_digit(s[i]))
            i++;
        size_t n = i - start;
        if (n < 1 || n > 9)
            return false;
        for (size_t k = 0; k < 6; k++)
            frac = frac * 10 + (k < n ? s[start + k] - '0' : 0);
    }
    const char *z = s + i;
    long long offset = 0;
    if (strcmp(z, "Z") == 0 || strcmp(z, "z") == 0) {
        offset = 0;
    } else if (strlen(z) == 6 && (z[0] == '+' || z[0] == '-') && is_digit(z[1]) &&
               is_digit(z[2]) && z[3] == ':' && is_digit(z[4]) && is_digit(z[5])) {
        int oh = num(z + 1, 2), om = num(z + 4, 2);
        if (oh > 15 || om > 59)
            return false;
        offset = (z[0] == '+' ? 1 : -1) * (oh * 3600LL + om * 60LL);
    } else {
        return false;
    }
    struct tm tm = {0};
    tm.tm_year = num(s, 4) - 1900;
    tm.tm_mon = num(s + 5, 2) - 1;
    tm.tm_mday = num(s + 8, 2);
    tm.tm_hour = num(s + 11, 2);
    tm.tm_min = num(s + 14, 2);
    tm.tm_sec = num(s + 17, 2);
    struct tm want = tm;
    time_t t = timegm(&tm);
    struct tm back;
    if (num(s, 4) < 1 || !gmtime_r(&t, &back) || back.tm_year != want.tm_year ||
        back.tm_mon != want.tm_mon || back.tm_mday != want.tm_mday ||
        back.tm_hour != want.tm_hour || back.tm_min != want.tm_min ||
        back.tm_sec != want.tm_sec)
        return false;
    *us = ((long long)t - offset) * 1000000LL + frac;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    long long got = 0, want = 0;
    bool ok = tf_parse_rfc3339(s, &got);
    FUZZ_ASSERT(ok == model(s, &want));
    if (ok)
        FUZZ_ASSERT(got == want && tf_parse_rfc3339(s, NULL));
    free(s);
    return 0;
}
