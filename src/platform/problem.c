/*
 * RFC 9457 problems: the table of problem types, and the builder of bodies.
 *
 * The table is the single source for status codes, the /problems/<slug>
 * pages and the OpenAPI document, so a new kind of error is added here once.
 */
#include "tenantflow/problem.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const tf_problem_type types[TF_PB_COUNT] = {
    [TF_PB_BAD_REQUEST] = {400, "bad-request", "Bad request",
        "The request line, a query parameter, a header or a path segment is malformed. "
        "Each offending parameter is listed in errors[].parameter."},
    [TF_PB_INVALID_JSON] = {400, "invalid-json", "Malformed JSON body",
        "The body is not strict JSON: a syntax error, a duplicate object key, a NUL or invalid "
        "UTF-8 in a string, nesting deeper than 64, trailing data, or a number that does not fit."},
    [TF_PB_UNAUTHORIZED] = {401, "unauthorized", "Authentication required",
        "No usable credential was presented, or the credential is not valid."},
    [TF_PB_INVALID_TOKEN] = {401, "invalid-token", "Invalid credential",
        "The bearer credential is malformed, expired, revoked or not signed by a known key."},
    [TF_PB_FORBIDDEN] = {403, "forbidden", "Forbidden",
        "The credential is valid but lacks the permission this operation needs, or its tenant "
        "is suspended."},
    [TF_PB_NOT_FOUND] = {404, "not-found", "Not found",
        "No such route, or no such resource visible to this credential."},
    [TF_PB_METHOD_NOT_ALLOWED] = {405, "method-not-allowed", "Method not allowed",
        "The path exists but does not accept this method; the Allow header lists those it does."},
    [TF_PB_NOT_ACCEPTABLE] = {406, "not-acceptable", "Not acceptable",
        "The Accept header names no media type this endpoint can produce."},
    [TF_PB_CONFLICT] = {409, "conflict", "Conflict",
        "The request conflicts with the current state of a resource, such as a duplicate key."},
    [TF_PB_INVALID_TRANSITION] = {409, "transition-not-allowed", "Transition not allowed",
        "The transition exists but cannot be fired from the item's current state. "
        "current_state and allowed_transitions say what can be done instead."},
    [TF_PB_IN_PROGRESS] = {409, "request-in-progress", "Request in progress",
        "A request with the same Idempotency-Key is still running; retry after Retry-After."},
    [TF_PB_PRECONDITION_FAILED] = {412, "precondition-failed", "Precondition failed",
        "If-Match names a version that is no longer current."},
    [TF_PB_PAYLOAD_TOO_LARGE] = {413, "payload-too-large", "Payload too large",
        "The request body exceeds the configured limit."},
    [TF_PB_URI_TOO_LONG] = {414, "uri-too-long", "URI too long",
        "The request target exceeds the configured limit."},
    [TF_PB_UNSUPPORTED_MEDIA] = {415, "unsupported-media-type", "Unsupported media type",
        "The body must be application/json (merge patches may use application/merge-patch+json)."},
    [TF_PB_VALIDATION] = {422, "validation", "Validation failed",
        "The body is well-formed JSON but breaks the endpoint's rules; errors[] lists each "
        "problem with a JSON pointer into the body."},
    [TF_PB_IDEMPOTENCY_MISMATCH] = {422, "idempotency-key-reused", "Idempotency key reused",
        "The Idempotency-Key was already used for a different request."},
    [TF_PB_TOO_MANY_REQUESTS] = {429, "too-many-requests", "Too many requests",
        "A rate limit was reached; retry after Retry-After seconds."},
    [TF_PB_HEADERS_TOO_LARGE] = {431, "headers-too-large", "Request header fields too large",
        "The request headers exceed the configured limit."},
    [TF_PB_INTERNAL] = {500, "internal", "Internal server error",
        "The server failed; nothing was changed. The request_id identifies the log entry."},
    [TF_PB_UNAVAILABLE] = {503, "unavailable", "Service unavailable",
        "The server is overloaded, shutting down or cannot reach its database; retry after "
        "Retry-After seconds."},
};

const tf_problem_type *tf_problem_type_of(tf_problem_kind kind)
{
    if (kind <= TF_PB_NONE || kind >= TF_PB_COUNT)
        return &types[TF_PB_INTERNAL];
    return &types[kind];
}

tf_problem_kind tf_problem_kind_by_slug(const char *slug)
{
    for (int k = TF_PB_NONE + 1; k < TF_PB_COUNT; k++)
        if (strcmp(types[k].slug, slug) == 0)
            return (tf_problem_kind)k;
    return TF_PB_NONE;
}

static void vformat(char *out, size_t outsz, const char *fmt, va_list ap)
{
    vsnprintf(out, outsz, fmt, ap);
}

/* Client text may echo client bytes; never let invalid UTF-8 drop a member. */
static json_t *text(const char *s, const char *fallback)
{
    json_t *v = json_string(s);
    return v ? v : json_string(fallback);
}

/* The request path as a JSON string; bytes that are not UTF-8 (the path is
 * percent-decoded) are percent-encoded again, so the instance still names
 * the path the client sent. */
static json_t *path_text(const char *path)
{
    json_t *v = json_string(path);
    if (v)
        return v;
    size_t n = strlen(path);
    char *buf = tf_xmalloc(3 * n + 1);
    char *o = buf;
    for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
        if (*c >= 0x80)
            o += sprintf(o, "%%%02X", *c);
        else
            *o++ = (char)*c;
    }
    *o = '\0';
    v = json_string(buf);
    free(buf);
    return v ? v : json_string("/");
}

void tf_problem_set(tf_problem *p, tf_problem_kind kind, const char *fmt, ...)
{
    p->kind = kind;
    va_list ap;
    va_start(ap, fmt);
    vformat(p->detail, sizeof p->detail, fmt, ap);
    va_end(ap);
}

static void vadd(tf_problem *p, const char *where_key, const char *where, const char *fmt,
                 va_list ap)
{
    char detail[256];
    vformat(detail, sizeof detail, fmt, ap);
    if (!p->errors)
        p->errors = json_array();
    json_t *e = json_object();
    json_object_set_new(e, where_key, text(where, "?"));
    json_object_set_new(e, "detail", text(detail, "invalid value"));
    json_array_append_new(p->errors, e);
}

void tf_problem_add(tf_problem *p, const char *where_key, const char *where, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vadd(p, where_key, where, fmt, ap);
    va_end(ap);
}

void tf_problem_invalid(tf_problem *p, const char *pointer, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vadd(p, "pointer", pointer, fmt, ap);
    va_end(ap);
    if (p->kind == TF_PB_NONE) {
        p->kind = TF_PB_VALIDATION;
        snprintf(p->detail, sizeof p->detail, "The request body is not valid; see errors.");
    }
}

void tf_problem_bad_param(tf_problem *p, const char *param, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vadd(p, "parameter", param, fmt, ap);
    va_end(ap);
    if (p->kind == TF_PB_NONE) {
        p->kind = TF_PB_BAD_REQUEST;
        snprintf(p->detail, sizeof p->detail, "A query parameter is not valid; see errors.");
    }
}

void tf_problem_extra(tf_problem *p, const char *key, json_t *value)
{
    if (!p->extra)
        p->extra = json_object();
    json_object_set_new(p->extra, key, value);
}

void tf_problem_log(tf_problem *p, const char *fmt, ...)
{
    size_t used = strlen(p->log);
    if (used + 2 >= sizeof p->log)
        return;
    if (used)
        p->log[used++] = ' ', p->log[used] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vformat(p->log + used, sizeof p->log - used, fmt, ap);
    va_end(ap);
}

void tf_problem_internal(tf_problem *p, const char *fmt, ...)
{
    p->kind = TF_PB_INTERNAL;
    snprintf(p->detail, sizeof p->detail, "The server could not complete the request.");
    va_list ap;
    va_start(ap, fmt);
    vformat(p->log, sizeof p->log, fmt, ap);
    va_end(ap);
}

int tf_problem_status(const tf_problem *p)
{
    return tf_problem_type_of(p->kind)->status;
}

void tf_problem_clear(tf_problem *p)
{
    json_decref(p->errors);
    json_decref(p->extra);
    memset(p, 0, sizeof *p);
}

json_t *tf_problem_body(const tf_problem *p, const char *instance, const char *request_id)
{
    const tf_problem_type *t = tf_problem_type_of(p->kind);
    char type[96];
    snprintf(type, sizeof type, "/problems/%s", t->slug);
    json_t *body = json_object();
    if (p->extra)
        json_object_update(body, p->extra);
    json_object_set_new(body, "type", json_string(type));
    json_object_set_new(body, "title", json_string(t->title));
    json_object_set_new(body, "status", json_integer(t->status));
    json_object_set_new(body, "detail", text(p->detail[0] ? p->detail : t->title, t->title));
    if (instance)
        json_object_set_new(body, "instance", path_text(instance));
    if (request_id)
        json_object_set_new(body, "request_id", json_string(request_id));
    if (p->errors)
        json_object_set(body, "errors", p->errors);
    return body;
}

char *tf_pointer_token(char *out, size_t outsz, const char *token)
{
    size_t o = 0;
    for (const char *s = token; *s && o + 3 < outsz; s++) {
        if (*s == '~') {
            out[o++] = '~';
            out[o++] = '0';
        } else if (*s == '/') {
            out[o++] = '~';
            out[o++] = '1';
        } else {
            out[o++] = *s;
        }
    }
    if (outsz)
        out[o < outsz ? o : outsz - 1] = '\0';
    return out;
}
