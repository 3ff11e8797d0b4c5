/*
 * The HTTP front: a libmicrohttpd daemon with a worker thread pool, a router
 * on method and path templates, and the request/response API handlers use.
 *
 * Every route declares who may call it in its `permission` field, and a route
 * without one cannot be registered:
 *   TF_PUBLIC         no credential (health, login, docs)
 *   TF_OPERATOR       a platform operator token, /v1/admin/ only
 *   TF_AUTHENTICATED  any tenant credential
 *   "items:write"     a tenant credential holding that permission
 * For every route but TF_PUBLIC the server opens the request's transaction,
 * resolves the principal inside it and checks the permission before the
 * handler runs; the handler uses tf_req_tx(). When the handler leaves no
 * problem the transaction commits before the response is sent, otherwise it
 * rolls back; a serialization failure or deadlock re-runs the handler a few
 * times with jitter.
 */
#ifndef TENANTFLOW_HTTP_H
#define TENANTFLOW_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "tenantflow/alloc.h"
#include "tenantflow/auth.h"
#include "tenantflow/db.h"
#include "tenantflow/json.h"
#include "tenantflow/problem.h"

#define TF_PUBLIC "public"
#define TF_OPERATOR "operator"
#define TF_AUTHENTICATED "authenticated"

typedef struct tf_req tf_req;
typedef struct tf_router tf_router;
typedef void (*tf_handler)(tf_req *req);

typedef struct tf_route {
    const char *method;     /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *path;       /* "/v1/items/{id}"; a {param} matches one segment */
    const char *permission; /* see above; required */
    tf_handler handler;
    const char *query;      /* allowed query parameters, comma separated, or NULL */
    const char *summary;    /* one line for the API reference */
    unsigned flags;
    /* Optional: adds the handler's reads to the BEGIN round trip (see
     * tf_tx_ctx.prefetch) for a tenant user's request without an
     * Idempotency-Key; it may set ctx->commit when those reads are all the
     * handler does. Runs before authorisation: what it reads is dropped
     * unless the caller may see it. */
    void (*prefetch)(tf_req *req, tf_tx_ctx *ctx);
} tf_route;

enum {
    TF_ROUTE_CSV = 1u << 0,     /* may answer text/csv */
    TF_ROUTE_INLINE = 1u << 3,  /* cheap, no database: answered on the I/O thread itself */
    TF_ROUTE_SECRET = 1u << 4,  /* the reply carries a one-time "secret": never stored */
    TF_ROUTE_SLOW = 1u << 5,    /* password checks: a queue and workers of their own */
    TF_ROUTE_TEXT = 1u << 2,    /* a page or asset (HTML, CSS, JavaScript): Accept is not
                                   negotiated, the one representation is always sent */
};

tf_router *tf_router_new(void);
void tf_router_free(tf_router *r);
/* Copies nothing: routes must outlive the router (static tables). Returns
 * false with err on a route without permission, a bad template or a
 * duplicate. */
bool tf_router_add(tf_router *r, const tf_route *route, char *err, size_t errsz) TF_MUST_CHECK;
bool tf_router_add_all(tf_router *r, const tf_route *routes, size_t n, char *err,
                       size_t errsz) TF_MUST_CHECK;
size_t tf_router_count(const tf_router *r);
const tf_route *tf_router_at(const tf_router *r, size_t i);

typedef enum { TF_MATCH_OK, TF_MATCH_NO_PATH, TF_MATCH_NO_METHOD } tf_match_result;
enum { TF_MAX_PARAMS = 4 };
typedef struct tf_match {
    const tf_route *route;
    size_t nparams;
    const char *names[TF_MAX_PARAMS];
    char values[TF_MAX_PARAMS][128];
    char allow[64]; /* for 405: "GET, POST" */
} tf_match;

/* Matches path (not NUL-terminated, no query string). */
tf_match_result tf_router_match(const tf_router *r, const char *method, const char *path,
                                size_t len, tf_match *m);

/* --- Requests, for handlers --- */
tf_arena *tf_req_arena(tf_req *req);
tf_tx *tf_req_tx(tf_req *req);
const tf_principal *tf_req_principal(tf_req *req);
tf_problem *tf_req_problem(tf_req *req);
const char *tf_req_id(tf_req *req);
const char *tf_req_method(tf_req *req);
const char *tf_req_path(tf_req *req);
const char *tf_req_client_ip(tf_req *req);
const char *tf_req_param(tf_req *req, const char *name);
const char *tf_req_query(tf_req *req, const char *name);
const char *tf_req_header(tf_req *req, const char *name);

/* Content negotiation (RFC 9110, 12.5.1) between the JSON every route
 * answers and the CSV some can. The type whose most specific matching range
 * has the highest q wins; on a tie the one the client lists first, then
 * JSON; q=0 refuses a type. No Accept header (or an empty one) means JSON;
 * TF_MEDIA_NONE means neither is acceptable (406). */
typedef enum { TF_MEDIA_NONE, TF_MEDIA_JSON, TF_MEDIA_CSV } tf_media;
tf_media tf_media_pick(const char *accept, bool csv);
/* tf_media_pick for this request's Accept header and route. */
tf_media tf_req_media(tf_req *req);
/* The strictly parsed JSON body (borrowed; owned by the request), or NULL
 * with the request's problem set. */
json_t *tf_req_json(tf_req *req);
/* The same body when it parses, or NULL leaving the request's problem alone
 * (for a route's prefetch hook, which runs before anything may fail). */
json_t *tf_req_json_peek(tf_req *req);
/* The body, parsed strictly and checked against fields (see tf_json_check);
 * NULL with the request's problem set (400 or 422) otherwise. */
#define TF_REQ_BODY(req, fields) tf_req_body((req), (fields), sizeof(fields) / sizeof *(fields))
json_t *tf_req_body(tf_req *req, const tf_json_field *fields, size_t nfields);
/* "user:<id>" / "api_key:<id>" / "operator:<id>" for audit and logs. */
const char *tf_req_actor(tf_req *req);
/* Who is making this request, for audit records and events. */
tf_origin tf_req_origin(tf_req *req);
/* The server's pool, for TF_PUBLIC handlers that open their own transactions. */
tf_pool *tf_req_pool(tf_req *req);

/* Conditional requests on a resource whose ETag is its version in quotes.
 * tf_etag_match: 1 when the If-Match / If-None-Match value header lists that
 * ETag ("*" lists every one), 0 when it does not (or header is NULL), -1 when
 * it is not a list of entity tags. weak: If-None-Match's weak comparison,
 * where W/"3" matches; If-Match compares strongly. */
int tf_etag_match(const char *header, long long version, bool weak);
/* If-Match (header, may be NULL): true to go on; false with 412 ("The <noun>
 * has changed") or 400 set in p. tf_req_if_match: the same for this
 * request's header and problem. */
bool tf_if_match_ok(const char *header, long long version, const char *noun,
                    tf_problem *p) TF_MUST_CHECK;
bool tf_req_if_match(tf_req *req, long long version, const char *noun) TF_MUST_CHECK;
/* Only whether If-Match is well formed (false with 400 set), for a handler
 * that learns the version later. */
bool tf_req_if_match_valid(tf_req *req);
/* If-None-Match on a read: true when it has answered (304 with the ETag, or
 * 400 for a malformed header) and the handler must stop. */
bool tf_req_not_modified(tf_req *req, long long version);
void tf_reply_etag(tf_req *req, long long version);

/* Responses. The body reference is stolen. */
void tf_reply_json(tf_req *req, int status, json_t *body);
void tf_reply_text(tf_req *req, int status, const char *content_type, const char *body,
                   size_t len);
void tf_reply_header(tf_req *req, const char *name, const char *value);
/* 200 with {"data": [...], "next_cursor": ...} where each element is the JSON
 * text in column col of the first count rows of r (rendered by SQL), and
 * next_cursor a base64url cursor or NULL. */
void tf_reply_list(tf_req *req, const PGresult *r, int col, int count, const char *next_cursor);
/* One keyset page: r holds up to limit + 1 rows; the first limit are listed
 * (JSON text in json_col) and, when there is another row, next_cursor is a
 * cursor for scope holding {cursor_member: the last listed row's key_col}. */
void tf_reply_page(tf_req *req, const PGresult *r, int json_col, int limit, const char *scope,
                   const char *cursor_member, int key_col);

/* --- The server --- */
typedef struct tf_server_config {
    const char *host;
    int port;
    int threads;
    size_t max_body;      /* 413 above this */
    size_t max_uri;       /* 414 above this */
    size_t max_headers;   /* 431 above this */
    unsigned timeout_s;   /* idle connection time-out */
    unsigned max_conns;
    unsigned max_conns_per_ip; /* 0: no limit */
    int workers;          /* threads that run handlers (the database work) */
    int max_queue;        /* requests waiting for a worker before 503 */
    bool tls;                 /* HTTPS with the credentials of tls.h (tf_tls_load first) */
    const char *const *cors;  /* allowed CORS origins (borrowed), ncors of them */
    size_t ncors;
} tf_server_config;

typedef struct tf_server tf_server;
/* Hooks give the server what it needs but does not own. */
typedef struct tf_server_deps {
    tf_router *router;
    tf_pool *pool;
    const struct tf_keyset *keys;
    struct tf_ratelimit *ratelimit; /* NULL: no rate limiting */
} tf_server_deps;

tf_server *tf_server_start(const tf_server_config *cfg, const tf_server_deps *deps, char *err,
                           size_t errsz);
/* Stops accepting, waits up to grace_s for in-flight requests, stops. */
void tf_server_stop(tf_server *s, unsigned grace_s);
int tf_server_port(const tf_server *s);

#endif
