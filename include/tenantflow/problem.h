/*
 * The one error value of tenantflow, and the one place that turns an error
 * into an RFC 9457 problem.
 *
 * A tf_problem carries what the client may see (kind, detail, a list of
 * per-field errors, extension members) and what only the log may see (log).
 * Validation collects: call tf_problem_add() for every bad field, then answer
 * once. A zeroed tf_problem means "no error"; tf_problem_clear() is safe to
 * call twice.
 */
#ifndef TENANTFLOW_PROBLEM_H
#define TENANTFLOW_PROBLEM_H

#include <jansson.h>
#include <stdbool.h>

#include "tenantflow/alloc.h"

typedef enum tf_problem_kind {
    TF_PB_NONE = 0,
    TF_PB_BAD_REQUEST,        /* 400 malformed query, header or id */
    TF_PB_INVALID_JSON,       /* 400 body is not strict JSON */
    TF_PB_UNAUTHORIZED,       /* 401 */
    TF_PB_INVALID_TOKEN,      /* 401, with error="invalid_token" */
    TF_PB_FORBIDDEN,          /* 403 */
    TF_PB_NOT_FOUND,          /* 404 */
    TF_PB_METHOD_NOT_ALLOWED, /* 405 */
    TF_PB_NOT_ACCEPTABLE,     /* 406 */
    TF_PB_CONFLICT,           /* 409 */
    TF_PB_INVALID_TRANSITION, /* 409 not allowed from the current state */
    TF_PB_IN_PROGRESS,        /* 409 idempotent request still running */
    TF_PB_PRECONDITION_FAILED,/* 412 */
    TF_PB_PAYLOAD_TOO_LARGE,  /* 413 */
    TF_PB_URI_TOO_LONG,       /* 414 */
    TF_PB_UNSUPPORTED_MEDIA,  /* 415 */
    TF_PB_VALIDATION,         /* 422 body fails validation */
    TF_PB_IDEMPOTENCY_MISMATCH,/* 422 key reused for another request */
    TF_PB_TOO_MANY_REQUESTS,  /* 429 */
    TF_PB_HEADERS_TOO_LARGE,  /* 431 */
    TF_PB_INTERNAL,           /* 500, detail never leaks internals */
    TF_PB_UNAVAILABLE,        /* 503 */
    TF_PB_COUNT
} tf_problem_kind;

typedef struct tf_problem_type {
    int status;
    const char *slug;        /* /problems/<slug> */
    const char *title;
    const char *description; /* one paragraph for the /problems page */
} tf_problem_type;

/* The static table of problem types, indexed by kind (TF_PB_NONE excluded). */
const tf_problem_type *tf_problem_type_of(tf_problem_kind kind);
/* Kind for a slug, or TF_PB_NONE. */
tf_problem_kind tf_problem_kind_by_slug(const char *slug);

typedef struct tf_problem {
    tf_problem_kind kind;
    char detail[256];
    json_t *errors;  /* owned; array of {"pointer"|"parameter": ..., "detail": ...} */
    json_t *extra;   /* owned; extension members merged into the body */
    char log[512];   /* log only, never sent */
    int retry_after; /* seconds, 0 = no Retry-After header */
} tf_problem;

static inline bool tf_failed(const tf_problem *p) { return p->kind != TF_PB_NONE; }

/* Sets kind and detail (printf style). Keeps errors already collected. */
void tf_problem_set(tf_problem *p, tf_problem_kind kind, const char *fmt, ...) TF_PRINTF(3, 4);
/* Appends {where_key: where, "detail": ...}; where_key is "pointer" or
 * "parameter". Does not change kind: the caller sets it once at the end, or
 * uses tf_problem_invalid(). */
void tf_problem_add(tf_problem *p, const char *where_key, const char *where,
                    const char *fmt, ...) TF_PRINTF(4, 5);
/* Shorthand: add a body-pointer error and mark the problem as 422. */
void tf_problem_invalid(tf_problem *p, const char *pointer, const char *fmt, ...) TF_PRINTF(3, 4);
/* Shorthand: add a query-parameter error and mark the problem as 400. */
void tf_problem_bad_param(tf_problem *p, const char *param, const char *fmt, ...) TF_PRINTF(3, 4);
/* Sets an extension member (steals the reference to value). */
void tf_problem_extra(tf_problem *p, const char *key, json_t *value);
/* Appends log-only text. */
void tf_problem_log(tf_problem *p, const char *fmt, ...) TF_PRINTF(2, 3);
/* A 500 whose log carries the reason; the client sees a generic detail. */
void tf_problem_internal(tf_problem *p, const char *fmt, ...) TF_PRINTF(2, 3);
int tf_problem_status(const tf_problem *p);
/* Releases owned JSON and resets to "no error". Safe to call twice. */
void tf_problem_clear(tf_problem *p);
/* Builds the problem body; caller owns the returned reference. */
json_t *tf_problem_body(const tf_problem *p, const char *instance, const char *request_id);

/* Escapes one RFC 6901 reference token ("~" -> "~0", "/" -> "~1") into out
 * and returns out; truncates safely to outsz. */
char *tf_pointer_token(char *out, size_t outsz, const char *token);

#endif
