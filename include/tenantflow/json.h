/*
 * Strict JSON for untrusted request bodies, and validation that collects.
 *
 * tf_json_parse() accepts exactly RFC 8259 JSON text with these extra rules:
 * duplicate object keys, "\u0000" in strings, invalid UTF-8, nesting deeper
 * than TF_JSON_MAX_DEPTH, anything after the value (except whitespace), and
 * numbers that do not fit (integers outside int64, reals outside double
 * range) are refused with a 400 invalid-json problem. Any JSON value is
 * accepted at the top level; endpoints check the shape afterwards (422).
 *
 * The tf_json_field helpers check one object against a table of allowed
 * members and add one 422 error per bad member, with an RFC 6901 pointer,
 * without stopping at the first.
 */
#ifndef TENANTFLOW_JSON_H
#define TENANTFLOW_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "tenantflow/problem.h"

#define TF_JSON_MAX_DEPTH 64

/* Returns a new reference, or NULL with p set to TF_PB_INVALID_JSON (the
 * detail names line/column and the reason). buf need not be NUL-terminated. */
json_t *tf_json_parse(const char *buf, size_t len, tf_problem *p) TF_MUST_CHECK;

/* Depth of the deepest array/object in buf (0 for a scalar), counting only
 * brackets outside strings; stops counting once limit+1 is reached. */
int tf_json_depth(const char *buf, size_t len, int limit);

typedef enum tf_json_type {
    TF_JT_ANY = 0,
    TF_JT_STRING,
    TF_JT_INTEGER,
    TF_JT_NUMBER,
    TF_JT_BOOL,
    TF_JT_OBJECT,
    TF_JT_ARRAY,
    TF_JT_STRING_ARRAY, /* array whose every element is a string */
} tf_json_type;

typedef struct tf_json_field {
    const char *name;
    tf_json_type type;
    bool required;
    bool nullable; /* JSON null accepted (and treated as absent) */
} tf_json_field;

/* Checks that v (found at pointer `at`, "" for the body root) is an object,
 * that every member is listed in fields (unknown member: "unknown field"),
 * that required members are present and every present member has its type.
 * Adds one error per problem to p (kind 422) and returns true when none. */
bool tf_json_check(const json_t *v, const char *at, const tf_json_field *fields, size_t nfields,
                   tf_problem *p);

/* Convenience accessors that return NULL/default when absent or JSON null. */
const char *tf_json_str(const json_t *obj, const char *key);

/* Output. jansson prints every real with 17 significant digits, which turns
 * 19.99 into 19.989999999999998 (the same double, but not the number the
 * client sent, and not equal to it in PostgreSQL's jsonb). tf_json_flags
 * adds the real precision for v: 15 digits when every real in v reads back
 * the same from 15 (%g drops the trailing zeros, so 19.99 stays 19.99),
 * else 17, which is exact for any double. tf_json_dumps is json_dumps with
 * those flags. */
size_t tf_json_flags(const json_t *v, size_t flags);
char *tf_json_dumps(const json_t *v, size_t flags);

#endif
