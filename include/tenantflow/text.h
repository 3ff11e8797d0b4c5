/*
 * Checks on human text from clients: names and titles.
 */
#ifndef TENANTFLOW_TEXT_H
#define TENANTFLOW_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "tenantflow/problem.h"

/* Number of Unicode code points in valid UTF-8 s. */
size_t tf_utf8_length(const char *s);
/* True when s has no Unicode Cc control character (tab and newline count). */
bool tf_text_no_controls(const char *s);
/* Adds a 422 at pointer unless s is min..max code points without controls. */
bool tf_check_text(const char *s, const char *pointer, size_t min, size_t max, tf_problem *p);
/* True when s matches ^[a-z0-9][a-z0-9-]{min-1,max-1}$ (slugs, keys). */
bool tf_is_slug(const char *s, size_t min, size_t max);

#endif
