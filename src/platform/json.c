/*
 * Strict JSON for request bodies (see json.h).
 *
 * jansson does the parsing: it already refuses invalid UTF-8, "\u0000" (we do
 * not pass JSON_ALLOW_NUL), integers outside int64 and reals that overflow,
 * and with JSON_REJECT_DUPLICATES it refuses repeated keys. Two rules are
 * ours: nesting is capped at 64 by a scan of the raw bytes *before* jansson
 * runs (its own cap is 2048, and recursion that deep is what we want to
 * avoid), and error details never echo client bytes, so a problem body is
 * always valid UTF-8.
 */
#include "tenantflow/json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tf_json_depth(const char *buf, size_t len, int limit)
{
    int depth = 0, max = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_string) {
            if (c == '\\')
                i++; /* the escaped character cannot end the string */
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max) {
                max = depth;
                if (max > limit)
                    return max;
            }
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return max;
}

/* jansson's message may quote the offending bytes; keep only its reason. */
static const char *reason(const json_error_t *e)
{
    switch (json_error_code(e)) {
    case json_error_duplicate_key: return "duplicate object key";
    case json_error_null_character: return "NUL character in a string";
    case json_error_invalid_utf8: return "invalid UTF-8";
    case json_error_numeric_overflow: return "number out of range";
    case json_error_end_of_input_expected: return "unexpected data after the JSON value";
    case json_error_premature_end_of_input: return "unexpected end of input";
    case json_error_invalid_syntax: return "invalid syntax";
    case json_error_invalid_format: return "invalid format";
    default: return "invalid JSON";
    }
}

json_t *tf_json_parse(const char *buf, size_t len, tf_problem *p)
{
    if (len == 0) {
        tf_problem_set(p, TF_PB_INVALID_JSON, "The request body is empty; send a JSON object.");
        return NULL;
    }
    /* A raw NUL is never valid JSON; jansson would stop reading at it. */
    if (memchr(buf, '\0', len)) {
        tf_problem_set(p, TF_PB_INVALID_JSON, "The body contains a NUL byte.");
        return NULL;
    }
    if (tf_json_depth(buf, len, TF_JSON_MAX_DEPTH) > TF_JSON_MAX_DEPTH) {
        tf_problem_set(p, TF_PB_INVALID_JSON, "The JSON body is nested deeper than %d levels.",
                       TF_JSON_MAX_DEPTH);
        return NULL;
    }
    json_error_t err;
    json_t *v = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (!v) {
        tf_problem_set(p, TF_PB_INVALID_JSON, "Malformed JSON at line %d, column %d: %s.",
                       err.line, err.column, reason(&err));
        return NULL;
    }
    return v;
}

static const char *type_name(tf_json_type t)
{
    switch (t) {
    case TF_JT_STRING: return "a string";
    case TF_JT_INTEGER: return "an integer";
    case TF_JT_NUMBER: return "a number";
    case TF_JT_BOOL: return "true or false";
    case TF_JT_OBJECT: return "an object";
    case TF_JT_ARRAY: return "an array";
    case TF_JT_STRING_ARRAY: return "an array of strings";
    case TF_JT_ANY: break;
    }
    return "a value";
}

static bool has_type(const json_t *v, tf_json_type t)
{
    switch (t) {
    case TF_JT_STRING: return json_is_string(v);
    case TF_JT_INTEGER: return json_is_integer(v);
    case TF_JT_NUMBER: return json_is_number(v);
    case TF_JT_BOOL: return json_is_boolean(v);
    case TF_JT_OBJECT: return json_is_object(v);
    case TF_JT_ARRAY:
    case TF_JT_STRING_ARRAY: return json_is_array(v);
    case TF_JT_ANY: return true;
    }
    return false;
}

static void pointer_to(char *out, size_t outsz, const char *at, const char *key)
{
    char tok[256];
    snprintf(out, outsz, "%s/%s", at, tf_pointer_token(tok, sizeof tok, key));
}

static const tf_json_field *field(const tf_json_field *fields, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(fields[i].name, name) == 0)
            return &fields[i];
    return NULL;
}

bool tf_json_check(const json_t *v, const char *at, const tf_json_field *fields, size_t nfields,
                   tf_problem *p)
{
    if (!json_is_object(v)) {
        tf_problem_invalid(p, at, "must be an object");
        return false;
    }
    size_t before = p->errors ? json_array_size(p->errors) : 0;
    char ptr[512];
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)(uintptr_t)v, key, val)
    {
        pointer_to(ptr, sizeof ptr, at, key);
        const tf_json_field *f = field(fields, nfields, key);
        if (!f) {
            tf_problem_invalid(p, ptr, "unknown field");
            continue;
        }
        if (json_is_null(val) && f->nullable)
            continue;
        if (!has_type(val, f->type)) {
            tf_problem_invalid(p, ptr, "must be %s", type_name(f->type));
            continue;
        }
        if (f->type == TF_JT_STRING_ARRAY) {
            size_t i;
            json_t *e;
            json_array_foreach(val, i, e)
            {
                if (!json_is_string(e)) {
                    char eptr[540];
                    snprintf(eptr, sizeof eptr, "%s/%zu", ptr, i);
                    tf_problem_invalid(p, eptr, "must be a string");
                }
            }
        }
    }
    for (size_t i = 0; i < nfields; i++) {
        const json_t *m = json_object_get(v, fields[i].name);
        if (fields[i].required && !m) {
            pointer_to(ptr, sizeof ptr, at, fields[i].name);
            tf_problem_invalid(p, ptr, "is required");
        }
    }
    return (p->errors ? json_array_size(p->errors) : 0) == before;
}

const char *tf_json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* Whether every real in v reads back the same from 15 significant digits. */
static bool reals_fit_15(json_t *v)
{
    if (json_is_real(v)) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.15g", json_real_value(v));
        return strtod(buf, NULL) == json_real_value(v);
    }
    size_t i;
    const char *key;
    json_t *child;
    if (json_is_object(v)) {
        json_object_foreach(v, key, child)
        {
            if (!reals_fit_15(child))
                return false;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, child)
        {
            if (!reals_fit_15(child))
                return false;
        }
    }
    return true;
}

size_t tf_json_flags(const json_t *v, size_t flags)
{
    /* jansson's iterators take a non-const value; they only read it. */
    json_t *walk = (json_t *)(uintptr_t)v;
    return flags | JSON_REAL_PRECISION(reals_fit_15(walk) ? 15 : 17);
}

char *tf_json_dumps(const json_t *v, size_t flags)
{
    return json_dumps(v, tf_json_flags(v, flags));
}
