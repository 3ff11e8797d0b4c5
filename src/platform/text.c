/*
 * Human-text checks. Text from a JSON body has already passed the strict
 * parser, and query values and paths pass tf_utf8_valid before any handler
 * sees them, so the other functions only count and classify code points.
 *
 * tf_parse_rfc3339 is the one RFC 3339 parser of the server (item filters,
 * audit filters, API key expiry): what it accepts goes to PostgreSQL as
 * `::timestamptz`, so it refuses everything that cast would refuse, which
 * would otherwise surface as a 500.
 */
#include "tenantflow/text.h"

#include <string.h>

bool tf_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        size_t len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                               : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!len || len > n - i)
            return false;
        for (size_t k = 1; k < len; k++)
            if ((u[i + k] & 0xC0) != 0x80)
                return false;
        /* The second byte's range rules out overlongs, surrogates and > U+10FFFF. */
        unsigned c1 = len > 1 ? u[i + 1] : 0;
        if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) ||
            (c == 0xF4 && c1 > 0x8F))
            return false;
        i += len;
    }
    return true;
}

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

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static long long days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The n decimal digits at s; false at the first non-digit (or the NUL). */
static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

enum { MAX_OFFSET_HOURS = 15 }; /* PostgreSQL: "time zone displacement out of range" */

bool tf_parse_rfc3339(const char *s, long long *us)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec, oh = 0, om = 0;
    /* digits() stops at the NUL, so no read goes past a short string. */
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || sec > 59)
        return false;
    const char *p = s + 19;
    long long frac = 0;
    if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, n++)
            if (n < 6)
                frac = frac * 10 + (*p - '0');
        if (n == 0 || n > 9)
            return false;
        for (; n < 6; n++)
            frac *= 10;
    }
    int sign = 0;
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        sign = 0;
    } else if ((*p == '+' || *p == '-') && digits(p + 1, 2, &oh) && p[3] == ':' &&
               digits(p + 4, 2, &om) && p[6] == '\0' && oh <= MAX_OFFSET_HOURS && om <= 59) {
        sign = *p == '+' ? 1 : -1;
    } else {
        return false;
    }
    if (us) {
        long long secs = days_from_civil(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL + sec -
                         sign * (oh * 3600LL + om * 60LL);
        *us = secs * 1000000LL + frac;
    }
    return true;
}
