/*
 * Checks on human text from clients: names and titles, and the RFC 3339
 * timestamps of query filters and bodies.
 */
#ifndef TENANTFLOW_TEXT_H
#define TENANTFLOW_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "tenantflow/alloc.h"
#include "tenantflow/problem.h"

/* True when the n bytes at s are well-formed UTF-8 (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF). */
bool tf_utf8_valid(const char *s, size_t n);
/* Number of Unicode code points in valid UTF-8 s. */
size_t tf_utf8_length(const char *s);
/* True when s has no Unicode Cc control character (tab and newline count). */
bool tf_text_no_controls(const char *s);
/* Adds a 422 at pointer unless s is min..max code points without controls. */
bool tf_check_text(const char *s, const char *pointer, size_t min, size_t max, tf_problem *p);
/* True when s matches ^[a-z0-9][a-z0-9-]{min-1,max-1}$ (slugs, keys). */
bool tf_is_slug(const char *s, size_t min, size_t max);

/* True when s (NUL-terminated) is an RFC 3339 date-time
 * YYYY-MM-DD(T|t)HH:MM:SS[.1-9 digits](Z|z|+HH:MM|-HH:MM) with a real
 * calendar date in years 0001-9999, no leap second, and an offset of at most
 * 15:59 either way: exactly the values PostgreSQL's timestamptz input takes,
 * so a `$n::timestamptz` cast of an accepted s cannot fail (PostgreSQL
 * refuses offsets from 16:00; real ones span -12:00..+14:00). When us is not
 * NULL it receives the instant in microseconds since the Unix epoch (digits
 * past the sixth of the fraction are dropped). */
bool tf_parse_rfc3339(const char *s, long long *us) TF_MUST_CHECK;

#endif
