/*
 * The libmicrohttpd front: limits, routing, authentication, the request
 * transaction, and turning every outcome into a response.
 *
 * The one thing to know: a response is queued only after the request's
 * transaction has committed. Handlers build their reply in memory; if the
 * COMMIT fails the client gets a problem instead, so a success is never
 * reported for a change that did not happen.
 *
 * libmicrohttpd calls on_request several times per request: first with the
 * headers (limits, routing, content type and Content-Length are checked there,
 * before any body byte is buffered), then once per body chunk (appended up to
 * the cap), then once more with no data, when the request is dispatched. A
 * reply queued before that last call closes the connection, so one decided
 * from the headers waits for it unless a body we will not read is coming.
 *
 * libmicrohttpd's threads only do I/O. A request that needs the database (or
 * Argon2) is handed to a fixed set of worker threads through one FIFO queue:
 * its connection is suspended, a worker runs the handler and its
 * transaction, then resumes the connection, and libmicrohttpd calls
 * on_request once more to send the reply. A slow request therefore never
 * holds up the other connections of its I/O thread, and waiting is fair
 * across all connections; a full queue answers 503 at once.
 */
#include "tenantflow/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "tenantflow/crypto.h"
#include "tenantflow/idem.h"
#include "tenantflow/json.h"
#include "tenantflow/log.h"
#include "tenantflow/metrics.h"
#include "tenantflow/ratelimit.h"
#include "tenantflow/text.h"
#include "tenantflow/tls.h"
#include "tenantflow/token.h"
#include "tenantflow/tokencache.h"

enum { MAX_TX_ATTEMPTS = 4, TOKEN_SKEW_S = 30, DISCARD_FACTOR = 8, SLOW_WORKERS = 2 };

struct header {
    struct header *next;
    const char *name, *value;
};

struct queue {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    tf_req *head, *tail;
    int queued, max;
    bool stopping;
    pthread_t *workers;
    int nworkers;
};

struct tf_server {
    struct MHD_Daemon *daemon;
    tf_server_config cfg;
    tf_server_deps deps;
    atomic_int inflight;
    /* Database work waits in `work`; password checks (Argon2, tens of ms) in
     * `slow`, with workers of their own, so a flood of logins cannot take
     * every worker from the other tenants' requests. */
    struct queue work, slow;
};

struct tf_req {
    tf_server *srv;
    struct MHD_Connection *conn;
    tf_arena *arena;
    const char *method, *path;
    char request_id[130];
    char client_ip[INET6_ADDRSTRLEN];
    struct timespec started;
    tf_match match;
    bool matched;
    /* body */
    char *body;
    size_t body_len, body_cap;
    bool body_too_large;
    size_t discarded; /* body bytes dropped after the limit */
    json_t *json;
    const char *idem_key; /* a valid Idempotency-Key, or NULL */
    /* outcome */
    tf_problem pb;
    tf_tx *tx;
    int db_round_trips; /* over every attempt, for the access log */
    tf_principal principal;
    const char *actor;
    int status;
    char *reply;
    size_t reply_len;
    const char *reply_type;
    struct header *headers;
    tf_rate_verdict rate; /* rate.limit 0: not rate limited */
    tf_req *next;         /* in the worker queue */
    bool handed_over;     /* given to a worker; its reply is ready when resumed */
    bool head_decided;    /* answered from the head alone: a preflight or a refusal */
};

#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

static tf_resolver user_resolver, operator_resolver;
static tf_prefetcher user_prefetcher;

void tf_auth_set_user_prefetcher(tf_prefetcher fn)
{
    user_prefetcher = fn;
}

void tf_auth_set_user_resolver(tf_resolver fn)
{
    user_resolver = fn;
}

void tf_auth_set_operator_resolver(tf_resolver fn)
{
    operator_resolver = fn;
}

/* --- request accessors --- */

tf_arena *tf_req_arena(tf_req *req) { return req->arena; }
tf_tx *tf_req_tx(tf_req *req) { return req->tx; }
const tf_principal *tf_req_principal(tf_req *req) { return &req->principal; }
tf_problem *tf_req_problem(tf_req *req) { return &req->pb; }
const char *tf_req_id(tf_req *req) { return req->request_id; }
const char *tf_req_method(tf_req *req) { return req->method; }
const char *tf_req_path(tf_req *req) { return req->path; }
const char *tf_req_client_ip(tf_req *req) { return req->client_ip; }
tf_pool *tf_req_pool(tf_req *req) { return req->srv->deps.pool; }

const char *tf_req_actor(tf_req *req)
{
    return req->actor ? req->actor : "anonymous";
}

tf_origin tf_req_origin(tf_req *req)
{
    tf_origin o = {req->principal.type, req->principal.id, req->request_id, req->client_ip};
    return o;
}

const char *tf_req_param(tf_req *req, const char *name)
{
    for (size_t i = 0; i < req->match.nparams; i++)
        if (strcmp(req->match.names[i], name) == 0)
            return req->match.values[i];
    return NULL;
}

const char *tf_req_query(tf_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *tf_req_header(tf_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

static void free_json(void *p)
{
    json_decref(p);
}

json_t *tf_req_json(tf_req *req)
{
    if (req->json)
        return req->json;
    req->json = tf_json_parse(req->body ? req->body : "", req->body_len, &req->pb);
    if (req->json)
        tf_arena_defer(req->arena, free_json, req->json);
    return req->json;
}

json_t *tf_req_json_peek(tf_req *req)
{
    if (req->json)
        return req->json;
    tf_problem ignored = {0};
    json_t *json = tf_json_parse(req->body ? req->body : "", req->body_len, &ignored);
    tf_problem_clear(&ignored);
    if (json) {
        req->json = json;
        tf_arena_defer(req->arena, free_json, json);
    }
    return json;
}

json_t *tf_req_body(tf_req *req, const tf_json_field *fields, size_t nfields)
{
    json_t *body = tf_req_json(req);
    if (!body || !tf_json_check(body, "", fields, nfields, &req->pb))
        return NULL;
    return body;
}

/* --- replies --- */

void tf_reply_header(tf_req *req, const char *name, const char *value)
{
    struct header *h = tf_arena_alloc(req->arena, sizeof *h);
    h->name = tf_arena_strdup(req->arena, name);
    h->value = tf_arena_strdup(req->arena, value);
    h->next = req->headers;
    req->headers = h;
}

void tf_reply_text(tf_req *req, int status, const char *content_type, const char *body,
                   size_t len)
{
    req->status = status;
    req->reply_type = content_type;
    req->reply = tf_arena_strndup(req->arena, body, len);
    req->reply_len = len;
}

void tf_reply_json(tf_req *req, int status, json_t *body)
{
    char *text = body ? tf_json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        tf_problem_internal(&req->pb, "could not encode the response body");
        return;
    }
    tf_reply_text(req, status, "application/json; charset=utf-8", text, strlen(text));
    free(text);
}

static void reset_reply(tf_req *req)
{
    req->status = 0;
    req->reply = NULL;
    req->reply_len = 0;
    req->headers = NULL;
}

/* Replaces any reply with the request's problem. */
static void reply_problem(tf_req *req)
{
    reset_reply(req);
    tf_problem *p = &req->pb;
    if (p->kind == TF_PB_INTERNAL || p->log[0]) {
        json_t *f = json_pack("{s:s, s:s, s:i}", "request_id", req->request_id, "log",
                              p->log[0] ? p->log : p->detail, "status", tf_problem_status(p));
        tf_log_json(p->kind == TF_PB_INTERNAL ? TF_LOG_ERROR : TF_LOG_WARN, "request failed", f);
    }
    json_t *body = tf_problem_body(p, req->path, req->request_id);
    char *text = tf_json_dumps(body, JSON_COMPACT);
    json_decref(body);
    req->status = tf_problem_status(p);
    req->reply_type = "application/problem+json";
    req->reply = tf_arena_strdup(req->arena, text ? text : "{}");
    req->reply_len = strlen(req->reply);
    free(text);
    if (p->retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", p->retry_after);
        tf_reply_header(req, "Retry-After", ra);
    }
    if (p->kind == TF_PB_UNAUTHORIZED)
        tf_reply_header(req, "WWW-Authenticate", "Bearer");
    if (p->kind == TF_PB_INVALID_TOKEN)
        tf_reply_header(req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
    if (p->kind == TF_PB_METHOD_NOT_ALLOWED && req->match.allow[0])
        tf_reply_header(req, "Allow", req->match.allow);
}

static void add_limit_headers(tf_req *req, struct MHD_Response *resp)
{
    if (!req->rate.limit)
        return;
    char v[24];
    snprintf(v, sizeof v, "%ld", req->rate.limit);
    MHD_add_response_header(resp, "RateLimit-Limit", v);
    snprintf(v, sizeof v, "%ld", req->rate.remaining);
    MHD_add_response_header(resp, "RateLimit-Remaining", v);
    snprintf(v, sizeof v, "%ld", req->rate.reset_s);
    MHD_add_response_header(resp, "RateLimit-Reset", v);
}

/* The request's Origin when it is one of TENANTFLOW_CORS_ORIGINS, else NULL. */
static const char *allowed_origin(tf_req *req)
{
    const char *origin = tf_req_header(req, "Origin");
    for (size_t i = 0; origin && i < req->srv->cfg.ncors; i++)
        if (strcmp(origin, req->srv->cfg.cors[i]) == 0)
            return origin;
    return NULL;
}

/* CORS: only a listed origin is echoed; Vary tells caches the answer
 * depends on Origin. */
static void add_cors_headers(tf_req *req, struct MHD_Response *resp)
{
    if (!req->srv->cfg.ncors)
        return;
    MHD_add_response_header(resp, "Vary", "Origin");
    const char *origin = allowed_origin(req);
    if (!origin)
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
    if (strcmp(req->method, "OPTIONS") == 0) {
        MHD_add_response_header(resp, "Access-Control-Allow-Methods",
                                "GET, POST, PUT, PATCH, DELETE");
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                "Authorization, Content-Type, Idempotency-Key, If-Match, "
                                "If-None-Match, X-Request-Id");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    } else {
        MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                                "Location, ETag, X-Request-Id, Retry-After, RateLimit-Limit, "
                                "RateLimit-Remaining, RateLimit-Reset, Idempotent-Replayed, "
                                "WWW-Authenticate");
    }
}

static enum MHD_Result send_reply(tf_req *req)
{
    if (tf_failed(&req->pb))
        reply_problem(req);
    if (!req->status)
        req->status = 204;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        req->reply_len, req->reply ? req->reply : (char *)"", MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    if (req->reply_type && req->status != 204 && req->status != 304)
        MHD_add_response_header(resp, "Content-Type", req->reply_type);
    MHD_add_response_header(resp, "X-Request-Id", req->request_id);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    for (struct header *h = req->headers; h; h = h->next)
        MHD_add_response_header(resp, h->name, h->value);
    add_limit_headers(req, resp);
    add_cors_headers(req, resp);
    enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned)req->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* --- checks made before the body is read --- */

static bool valid_request_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= 128 || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return n > 0;
}

struct size_sum {
    size_t total;
};

static enum MHD_Result add_size(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    (void)kind;
    struct size_sum *s = cls;
    s->total += strlen(key) + (value ? strlen(value) : 0) + 4;
    return MHD_YES;
}

struct query_check {
    tf_req *req;
    const char *allowed;
    const char *seen[16];
    size_t nseen;
};

static bool listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0)
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

static enum MHD_Result check_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    struct query_check *q = cls;
    if (!tf_utf8_valid(key, strlen(key))) {
        tf_problem_bad_param(&q->req->pb, "(name)", "a parameter name is not valid UTF-8");
        return MHD_YES;
    }
    if (!listed(q->allowed, key)) {
        tf_problem_bad_param(&q->req->pb, key, "unknown query parameter");
        return MHD_YES;
    }
    if (!value) {
        tf_problem_bad_param(&q->req->pb, key, "needs a value (name=value)");
        return MHD_YES;
    }
    if (!tf_utf8_valid(value, strlen(value))) {
        tf_problem_bad_param(&q->req->pb, key, "must be valid UTF-8");
        return MHD_YES;
    }
    /* A parameter given twice is ambiguous: refuse rather than guess. */
    for (size_t i = 0; i < q->nseen; i++) {
        if (strcmp(q->seen[i], key) == 0) {
            tf_problem_bad_param(&q->req->pb, key, "given more than once");
            return MHD_YES;
        }
    }
    if (q->nseen < sizeof q->seen / sizeof *q->seen)
        q->seen[q->nseen++] = key;
    return MHD_YES;
}

static bool media_type_is(const char *value, const char *type)
{
    size_t n = strlen(type);
    if (strncasecmp(value, type, n) != 0)
        return false;
    const char *rest = value + n;
    while (*rest == ' ')
        rest++;
    if (*rest == '\0')
        return true;
    if (*rest != ';')
        return false;
    /* Only a UTF-8 charset parameter is acceptable. */
    const char *cs = strcasestr(rest, "charset=");
    if (!cs)
        return true;
    cs += 8;
    if (*cs == '"')
        cs++;
    return strncasecmp(cs, "utf-8", 5) == 0;
}

/* The q of one media range of an Accept header (p, n bytes), in
 * thousandths: 1000 when absent or unreadable. */
static int range_q(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != ';')
            continue;
        size_t j = i + 1;
        while (j < n && (p[j] == ' ' || p[j] == '\t'))
            j++;
        if (j + 2 > n || (p[j] != 'q' && p[j] != 'Q') || p[j + 1] != '=')
            continue;
        j += 2;
        if (j >= n || (p[j] != '0' && p[j] != '1'))
            return 1000;
        int q = (p[j++] - '0') * 1000;
        if (j < n && p[j] == '.') {
            int scale = 100;
            for (j++; j < n && p[j] >= '0' && p[j] <= '9' && scale; j++, scale /= 10)
                q += (p[j] - '0') * scale;
        }
        return q > 1000 ? 1000 : q;
    }
    return 1000;
}

/* How specifically the media range (p, n bytes) names one of the exact
 * types: 3 exactly, 2 as "major" with any subtype, 1 as any type at all, 0
 * not at all. */
static int range_match(const char *p, size_t n, const char *const *exact, const char *major)
{
    size_t len = 0;
    while (len < n && p[len] != ';' && p[len] != ' ' && p[len] != '\t')
        len++;
    for (; *exact; exact++)
        if (strlen(*exact) == len && strncasecmp(p, *exact, len) == 0)
            return 3;
    size_t m = strlen(major);
    if (len == m + 2 && strncasecmp(p, major, m) == 0 && p[m] == '/' && p[m + 1] == '*')
        return 2;
    return len == 3 && strncmp(p, "*/*", 3) == 0 ? 1 : 0;
}

tf_media tf_media_pick(const char *accept, bool csv)
{
    static const char *const json_types[] = {"application/json", "application/problem+json",
                                             NULL};
    static const char *const csv_types[] = {"text/csv", NULL};
    if (!accept)
        return TF_MEDIA_JSON;
    /* Per type: the q of its most specific range, and where that range stands. */
    struct { int spec, q, pos; } best[2] = {{0, 0, 0}, {0, 0, 0}};
    int pos = 0, ranges = 0;
    for (const char *p = accept; *p; pos++) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        if (n) {
            ranges++;
            int spec[2] = {range_match(p, n, json_types, "application"),
                           csv ? range_match(p, n, csv_types, "text") : 0};
            for (int t = 0; t < 2; t++) {
                if (spec[t] > best[t].spec) {
                    best[t].spec = spec[t];
                    best[t].q = range_q(p, n);
                    best[t].pos = pos;
                }
            }
        }
        p += n;
    }
    if (!ranges)
        return TF_MEDIA_JSON; /* an empty header asks for nothing in particular */
    if (best[0].q == 0 && best[1].q == 0)
        return TF_MEDIA_NONE;
    if (best[1].q > best[0].q || (best[1].q == best[0].q && best[1].pos < best[0].pos))
        return TF_MEDIA_CSV;
    return TF_MEDIA_JSON;
}

tf_media tf_req_media(tf_req *req)
{
    bool csv = req->matched && (req->match.route->flags & TF_ROUTE_CSV);
    return tf_media_pick(tf_req_header(req, "Accept"), csv);
}

static bool has_body_method(const char *m)
{
    return strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0;
}

struct header_counter {
    const char *name;
    int n;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    (void)kind;
    (void)value;
    struct header_counter *hc = cls;
    hc->n += strcasecmp(key, hc->name) == 0;
    return MHD_YES;
}

static int header_count(tf_req *req, const char *name)
{
    struct header_counter hc = {name, 0};
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, count_header, &hc);
    return hc.n;
}

/* An Idempotency-Key, when sent, must be one header of 1-255 visible ASCII
 * characters: anything else is refused before the request runs. */
static bool read_idempotency_key(tf_req *req)
{
    int n = header_count(req, "Idempotency-Key");
    if (n == 0)
        return true;
    const char *key = tf_req_header(req, "Idempotency-Key");
    if (n > 1)
        tf_problem_add(&req->pb, "header", "Idempotency-Key", "must be sent once");
    else if (!key || !tf_idem_key_valid(key))
        tf_problem_add(&req->pb, "header", "Idempotency-Key",
                       "must be 1-255 visible ASCII characters");
    else
        req->idem_key = key;
    if (!req->idem_key)
        tf_problem_set(&req->pb, TF_PB_BAD_REQUEST, "The Idempotency-Key header is malformed.");
    return req->idem_key != NULL;
}

/* Everything decided from the request line and headers alone. */
static void check_head(tf_req *req, const char *url)
{
    tf_server *srv = req->srv;
    struct size_sum q = {strlen(url)};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, add_size, &q);
    if (q.total > srv->cfg.max_uri) {
        tf_problem_set(&req->pb, TF_PB_URI_TOO_LONG, "The request target exceeds %zu bytes.",
                       srv->cfg.max_uri);
        return;
    }
    struct size_sum h = {0};
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, add_size, &h);
    if (h.total > srv->cfg.max_headers) {
        tf_problem_set(&req->pb, TF_PB_HEADERS_TOO_LARGE, "The request headers exceed %zu bytes.",
                       srv->cfg.max_headers);
        return;
    }
    const char *te = tf_req_header(req, "Transfer-Encoding");
    const char *cl = tf_req_header(req, "Content-Length");
    /* Framing that two parsers could read differently is refused outright. */
    if ((te && cl) || header_count(req, "Content-Length") > 1 ||
        header_count(req, "Transfer-Encoding") > 1 || header_count(req, "Authorization") > 1 ||
        header_count(req, "Host") > 1) {
        tf_problem_set(&req->pb, TF_PB_BAD_REQUEST, "Conflicting Content-Length, "
                                                    "Transfer-Encoding, Authorization or Host "
                                                    "headers.");
        return;
    }
    /* Path parameters reach SQL as text, which must be UTF-8. */
    if (!tf_utf8_valid(url, strlen(url))) {
        tf_problem_set(&req->pb, TF_PB_BAD_REQUEST, "The path is not valid UTF-8.");
        return;
    }
    /* HEAD is GET without a body; libmicrohttpd drops the body. */
    const char *method = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
    switch (tf_router_match(srv->deps.router, method, url, strlen(url), &req->match)) {
    case TF_MATCH_NO_PATH:
        tf_problem_set(&req->pb, TF_PB_NOT_FOUND, "No route matches %s.", req->method);
        return;
    case TF_MATCH_NO_METHOD:
        tf_problem_set(&req->pb, TF_PB_METHOD_NOT_ALLOWED, "This path does not accept %s.",
                       req->method);
        return;
    case TF_MATCH_OK:
        req->matched = true;
        break;
    }
    const tf_route *route = req->match.route;
    struct query_check qc = {.req = req, .allowed = route->query};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, check_query, &qc);
    if (tf_failed(&req->pb))
        return;
    if (!(route->flags & TF_ROUTE_TEXT) && tf_req_media(req) == TF_MEDIA_NONE) {
        tf_problem_set(&req->pb, TF_PB_NOT_ACCEPTABLE,
                       "This endpoint produces application/json%s.",
                       route->flags & TF_ROUTE_CSV ? " or text/csv" : "");
        return;
    }
    if (has_body_method(req->method)) {
        const char *ct = tf_req_header(req, "Content-Type");
        bool patch = strcmp(req->method, "PATCH") == 0;
        bool ok = ct && (media_type_is(ct, "application/json") ||
                         (patch && media_type_is(ct, "application/merge-patch+json")));
        if (!ok) {
            tf_problem_set(&req->pb, TF_PB_UNSUPPORTED_MEDIA,
                           "Send the body as application/json%s; charset=utf-8.",
                           patch ? " (or application/merge-patch+json)" : "");
            return;
        }
    }
    if (has_body_method(req->method) && !read_idempotency_key(req))
        return;
    if (cl) {
        char *end = NULL;
        unsigned long long n = strtoull(cl, &end, 10);
        if (end == cl || *end || n > srv->cfg.max_body) {
            tf_problem_set(&req->pb, TF_PB_PAYLOAD_TOO_LARGE,
                           "The body exceeds the limit of %zu bytes.", srv->cfg.max_body);
            return;
        }
    }
}

/* True when the head promises no body: no Transfer-Encoding and at most one
 * Content-Length, of zero. */
static bool without_body(tf_req *req)
{
    if (header_count(req, "Transfer-Encoding") || header_count(req, "Content-Length") > 1)
        return false;
    const char *cl = tf_req_header(req, "Content-Length");
    return !cl || (cl[0] && cl[strspn(cl, "0")] == '\0');
}

/* --- dispatch --- */

static bool is_prefix(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

/* Reads the bearer credential; 401 when absent or unusable. */
static bool read_credential(tf_req *req, tf_credential *cred)
{
    const char *auth = tf_req_header(req, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) {
        tf_problem_set(&req->pb, TF_PB_UNAUTHORIZED, "Send a bearer credential.");
        return false;
    }
    const char *tok = auth + 7;
    while (*tok == ' ')
        tok++;
    size_t len = strlen(tok);
    memset(cred, 0, sizeof *cred);
    if (is_prefix(tok, len, "tfk_") || is_prefix(tok, len, "tfo_")) {
        if (len > 128) {
            tf_problem_set(&req->pb, TF_PB_INVALID_TOKEN, "The credential is not valid.");
            return false;
        }
        cred->kind = tok[2] == 'k' ? TF_CRED_API_KEY : TF_CRED_OPERATOR;
        tf_secret_hash(tok, len, cred->hash);
        return true;
    }
    tf_claims claims;
    int64_t now = (int64_t)time(NULL);
    if (!tf_token_cache_get(tok, len, now, TOKEN_SKEW_S, &claims)) {
        if (!tf_token_verify(req->srv->deps.keys, tok, len, now, TOKEN_SKEW_S, &claims)) {
            tf_problem_set(&req->pb, TF_PB_INVALID_TOKEN, "The credential is not valid.");
            return false;
        }
        tf_token_cache_put(tok, len, &claims);
    }
    cred->kind = TF_CRED_ACCESS_TOKEN;
    snprintf(cred->sub, sizeof cred->sub, "%s", claims.sub);
    snprintf(cred->tid, sizeof cred->tid, "%s", claims.tid);
    return true;
}

/* Resolves the principal in the open transaction and checks the route's
 * permission. */
static bool authorize(tf_req *req, const tf_credential *cred)
{
    const char *perm = req->match.route->permission;
    bool operator_route = strcmp(perm, TF_OPERATOR) == 0;
    tf_resolver fn = cred->kind == TF_CRED_OPERATOR ? operator_resolver : user_resolver;
    if (!fn) {
        tf_problem_set(&req->pb, TF_PB_INVALID_TOKEN, "The credential is not valid.");
        return false;
    }
    memset(&req->principal, 0, sizeof req->principal);
    if (!fn(req->tx, req->arena, cred, &req->principal, &req->pb))
        return false;
    const tf_principal *pr = &req->principal;
    req->actor = tf_arena_printf(req->arena, "%s:%s", tf_actor_type_name(pr->type), pr->id);
    bool is_operator = pr->type == TF_ACTOR_OPERATOR;
    if (operator_route != is_operator) {
        tf_problem_set(&req->pb, TF_PB_FORBIDDEN,
                       is_operator ? "Operator credentials can only call /v1/admin/."
                                   : "This operation needs an operator credential.");
        return false;
    }
    if (!operator_route && strcmp(perm, TF_AUTHENTICATED) != 0 && !tf_principal_can(pr, perm)) {
        tf_problem_set(&req->pb, TF_PB_FORBIDDEN, "This operation needs the permission %s.",
                       perm);
        return false;
    }
    return true;
}

static void backoff(int attempt)
{
    /* 5-20 ms, doubling, with full jitter. */
    unsigned base = 5000u << attempt;
    usleep(base + randombytes_uniform(base * 3));
}

/* Runs the handler and commits; on failure the problem is set. */
static void run_handler(tf_req *req)
{
    req->match.route->handler(req);
    /* On failure the commit has set the problem already. */
    if (!tf_failed(&req->pb) && !tf_tx_commit(req->tx, &req->pb))
        reset_reply(req);
}

static const char *reply_header_value(const tf_req *req, const char *name)
{
    for (const struct header *h = req->headers; h; h = h->next)
        if (strcasecmp(h->name, name) == 0)
            return h->value;
    return NULL;
}

static void replay(tf_req *req, const tf_idem_response *r)
{
    if (r->body)
        tf_reply_text(req, r->status, r->content_type, r->body, r->body_len);
    req->status = r->status;
    req->reply_type = r->content_type;
    if (r->location)
        tf_reply_header(req, "Location", r->location);
    if (r->etag)
        tf_reply_header(req, "ETag", r->etag);
    tf_reply_header(req, "Idempotent-Replayed", "true");
}

/* True when the handler's problem is a business-rule outcome to store. */
static bool storable_problem(const tf_problem *p)
{
    return p->kind != TF_PB_IN_PROGRESS && p->kind != TF_PB_IDEMPOTENCY_MISMATCH &&
           tf_idem_storable(tf_problem_status(p));
}

/* A keyed request: replay a stored outcome, or run the handler behind a
 * savepoint and store its outcome in the same transaction. A business-rule
 * problem rolls back to the savepoint, so the handler's effects vanish while
 * the stored 409/412/422 commits; anything else rolls the whole transaction
 * back, claim included, so a retry runs again. */
static void without_secret(tf_req *req, tf_idem_response *out)
{
    json_t *body = out->body ? json_loadb(out->body, out->body_len, 0, NULL) : NULL;
    if (json_is_object(body) && json_object_del(body, "secret") == 0) {
        char *text = tf_json_dumps(body, JSON_COMPACT);
        if (text) {
            out->body = tf_arena_strdup(req->arena, text);
            out->body_len = strlen(text);
            free(text);
        }
    }
    json_decref(body);
}

static void run_keyed(tf_req *req)
{
    tf_idem_scope scope = {req->principal.tenant_id, req->actor, req->idem_key};
    unsigned char fp[TF_IDEM_FP_BYTES];
    tf_idem_fingerprint(req->method, req->path, req->body, req->body_len, fp);
    tf_idem_response stored;
    switch (tf_idem_claim(req->tx, req->arena, &scope, fp, &stored, &req->pb)) {
    case TF_IDEM_FAILED:
        return;
    case TF_IDEM_REPLAY:
        if (tf_tx_commit(req->tx, &req->pb))
            replay(req, &stored);
        return;
    case TF_IDEM_FRESH:
        break;
    }
    if (!tf_tx_savepoint(req->tx, &req->pb))
        return;
    req->match.route->handler(req);
    if (tf_failed(&req->pb)) {
        if (!storable_problem(&req->pb))
            return;
        tf_problem undo = {0};
        if (!tf_tx_rollback_to_savepoint(req->tx, &undo)) {
            tf_problem_clear(&req->pb);
            req->pb = undo;
            return;
        }
        reply_problem(req); /* renders the problem as the reply to store */
        tf_problem_clear(&req->pb);
    }
    if (!req->status)
        req->status = 204;
    tf_idem_response out = {
        .status = req->status,
        .content_type = req->status == 204 ? NULL : req->reply_type,
        .location = reply_header_value(req, "Location"),
        .etag = reply_header_value(req, "ETag"),
        .body = req->reply,
        .body_len = req->reply_len,
    };
    /* A one-time secret is shown once: the stored outcome drops it, so it
     * never rests in the idempotency table and a replay does not show it. */
    if (req->match.route->flags & TF_ROUTE_SECRET)
        without_secret(req, &out);
    /* The handler may have bound the transaction to another tenant (an
     * operator creating or changing one): the record belongs to the caller's
     * scope, and the writes deferred to COMMIT (audit, events) to the bound
     * tenant, so bind back and forth around the store. */
    const char *bound = tf_tx_tenant(req->tx);
    bound = bound ? tf_arena_strdup(req->arena, bound) : "";
    const char *own = scope.tenant_id ? scope.tenant_id : "";
    bool rebind = strcmp(bound, own) != 0;
    if ((rebind && !tf_tx_set_tenant(req->tx, own, &req->pb)) ||
        !tf_idem_store(req->tx, &scope, &out, &req->pb) ||
        (rebind && !tf_tx_set_tenant(req->tx, bound, &req->pb)) ||
        !tf_tx_commit(req->tx, &req->pb))
        reset_reply(req);
}

static void run_in_transaction(tf_req *req)
{
    tf_credential cred;
    if (!read_credential(req, &cred))
        return;
    for (int attempt = 0;; attempt++) {
        tf_tx_ctx ctx = {
            .tenant_id = cred.kind == TF_CRED_ACCESS_TOKEN ? cred.tid : NULL,
            .actor = cred.kind == TF_CRED_ACCESS_TOKEN ? cred.sub : NULL,
            .request_id = req->request_id,
        };
        if (cred.kind == TF_CRED_ACCESS_TOKEN && user_prefetcher) {
            user_prefetcher(&cred, &ctx);
            /* Not for keyed requests: their claim comes first, so a retry
             * racing the original gets 409 at once, not a wait on its locks. */
            if (ctx.nprefetch && req->match.route->prefetch && !req->idem_key)
                req->match.route->prefetch(req, &ctx);
        }
        req->tx = tf_tx_begin(req->srv->deps.pool, req->arena, &ctx, &req->pb);
        if (!req->tx)
            return;
        if (authorize(req, &cred)) {
            if (req->idem_key)
                run_keyed(req);
            else
                run_handler(req);
        }
        bool retry = tf_failed(&req->pb) && tf_tx_retryable(req->tx) &&
                     attempt + 1 < MAX_TX_ATTEMPTS;
        tf_tx_rollback(req->tx);
        req->db_round_trips += tf_tx_round_trips(req->tx);
        if (!retry)
            return;
        tf_problem_clear(&req->pb);
        reset_reply(req);
        backoff(attempt);
    }
}

/* One token from the credential's bucket; 429 when it is empty. Requests
 * without a bearer credential are not counted (they get 401 anyway). */
static bool within_rate(tf_req *req)
{
    tf_ratelimit *rl = req->srv->deps.ratelimit;
    const char *auth = tf_req_header(req, "Authorization");
    if (!rl || !auth)
        return true;
    /* One bucket per credential however the header is spelled ("bearer",
     * extra spaces): key on the token itself, as read_credential reads it. */
    if (strncasecmp(auth, "Bearer ", 7) == 0) {
        auth += 7;
        while (*auth == ' ')
            auth++;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    req->rate = tf_ratelimit_take(rl, auth, strlen(auth),
                                  (double)now.tv_sec + (double)now.tv_nsec / 1e9);
    if (req->rate.allowed)
        return true;
    tf_problem_set(&req->pb, TF_PB_TOO_MANY_REQUESTS,
                   "This credential sent more than %ld requests in a burst; retry later.",
                   req->rate.limit);
    req->pb.retry_after = (int)req->rate.retry_after;
    return false;
}

static void dispatch(tf_req *req)
{
    if (req->body_too_large) {
        tf_problem_set(&req->pb, TF_PB_PAYLOAD_TOO_LARGE, "The body exceeds the limit of %zu bytes.",
                       req->srv->cfg.max_body);
        return;
    }
    const tf_route *route = req->match.route;
    if (strcmp(route->permission, TF_PUBLIC) == 0)
        route->handler(req);
    else if (within_rate(req))
        run_in_transaction(req);
}

/* --- libmicrohttpd callbacks --- */

static void client_address(tf_req *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(req->client_ip, sizeof req->client_ip, "unknown");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                  req->client_ip, sizeof req->client_ip);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                  req->client_ip, sizeof req->client_ip);
}

static tf_req *new_request(tf_server *srv, struct MHD_Connection *conn, const char *url,
                           const char *method)
{
    tf_arena *arena = tf_arena_new();
    tf_req *req = tf_arena_alloc(arena, sizeof *req);
    memset(req, 0, sizeof *req);
    req->srv = srv;
    req->conn = conn;
    req->arena = arena;
    req->method = tf_arena_strdup(arena, method);
    req->path = tf_arena_strdup(arena, url);
    clock_gettime(CLOCK_MONOTONIC, &req->started);
    const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (rid && valid_request_id(rid)) {
        snprintf(req->request_id, sizeof req->request_id, "%s", rid);
    } else {
        char id[37];
        tf_uuid7(id);
        snprintf(req->request_id, sizeof req->request_id, "%s", id);
    }
    client_address(req);
    atomic_fetch_add(&srv->inflight, 1);
    return req;
}

static void append_body(tf_req *req, const char *data, size_t n)
{
    size_t max = req->srv->cfg.max_body;
    if (req->body_too_large || n > max - req->body_len) {
        req->body_too_large = true;
        return;
    }
    if (req->body_len + n > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 4096;
        while (cap < req->body_len + n)
            cap *= 2;
        if (cap > max)
            cap = max;
        char *nb = tf_arena_alloc(req->arena, cap);
        if (req->body_len)
            memcpy(nb, req->body, req->body_len);
        req->body = nb;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, n);
    req->body_len += n;
}

/* --- the worker queues --- */

static void *work(void *arg)
{
    struct queue *q = arg;
    for (;;) {
        pthread_mutex_lock(&q->lock);
        while (!q->head && !q->stopping)
            pthread_cond_wait(&q->ready, &q->lock);
        tf_req *req = q->head;
        if (req) {
            q->head = req->next;
            if (!q->head)
                q->tail = NULL;
            q->queued--;
        }
        pthread_mutex_unlock(&q->lock);
        if (!req)
            return NULL; /* stopping, and the queue is empty */
        struct MHD_Connection *conn = req->conn;
        dispatch(req);
        /* After the resume libmicrohttpd owns req again: touch nothing. */
        MHD_resume_connection(conn);
    }
}

static void queue_init(struct queue *q, int workers, int max)
{
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->ready, NULL);
    q->max = max;
    q->workers = tf_xcalloc((size_t)workers, sizeof *q->workers);
}

static bool queue_start(struct queue *q, int workers)
{
    for (; q->nworkers < workers; q->nworkers++)
        if (pthread_create(&q->workers[q->nworkers], NULL, work, q) != 0)
            return false;
    return true;
}

/* Lets the workers finish what is queued (resuming those connections), then
 * joins them; from then on hand_over() refuses. Safe to call twice. */
static void queue_stop(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->stopping = true;
    pthread_cond_broadcast(&q->ready);
    pthread_mutex_unlock(&q->lock);
    for (int i = 0; i < q->nworkers; i++)
        pthread_join(q->workers[i], NULL);
    q->nworkers = 0;
}

static void queue_free(struct queue *q)
{
    queue_stop(q);
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->ready);
    free(q->workers);
}

static tf_metric *queue_rejected;

static bool queue_length(void *arg, double *value)
{
    struct queue *q = arg;
    pthread_mutex_lock(&q->lock);
    *value = q->queued;
    pthread_mutex_unlock(&q->lock);
    return true;
}

/* Queues req for a worker; false when the queue is full or stopping (then
 * the caller answers 503 instead of suspending a connection nobody would
 * resume). */
static bool hand_over(struct queue *q, tf_req *req)
{
    pthread_mutex_lock(&q->lock);
    bool ok = !q->stopping && q->queued < q->max;
    if (ok) {
        req->handed_over = true;
        req->next = NULL;
        MHD_suspend_connection(req->conn);
        if (q->tail)
            q->tail->next = req;
        else
            q->head = req;
        q->tail = req;
        q->queued++;
        pthread_cond_signal(&q->ready);
    }
    pthread_mutex_unlock(&q->lock);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **ctx)
{
    (void)version;
    tf_server *srv = cls;
    tf_req *req = *ctx;
    if (!req) {
        req = new_request(srv, conn, url, method);
        *ctx = req;
        if (srv->cfg.ncors && strcmp(method, "OPTIONS") == 0 &&
            tf_req_header(req, "Access-Control-Request-Method"))
            req->status = 204; /* CORS preflight: no credential, headers decide */
        else
            check_head(req, url);
        req->head_decided = req->status || tf_failed(&req->pb);
        /* libmicrohttpd closes the connection when a reply is queued before
         * the request is complete, as it cannot tell whether body bytes
         * remain. A request without a body is complete at the next call, so
         * its reply waits for it and the connection is kept (every browser
         * preflight would otherwise cost a new handshake). One that declares
         * a body is answered now and closed: a refused body is never read. */
        if (req->head_decided && !without_body(req))
            return send_reply(req);
        return MHD_YES;
    }
    if (*upload_size) {
        append_body(req, upload_data, *upload_size);
        /* libmicrohttpd 0.9.75 cannot answer in the middle of a body, so an
         * oversized chunked body is read and dropped until it ends (then
         * 413); one that goes on past DISCARD_FACTOR times the limit gets
         * its connection closed instead of being read forever. */
        if (req->body_too_large) {
            req->discarded += *upload_size;
            if (req->discarded / DISCARD_FACTOR > req->srv->cfg.max_body)
                return MHD_NO;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (req->handed_over || req->head_decided)
        return send_reply(req); /* resumed after a worker ran it, or decided from the head */
    if (req->body_too_large || (req->match.route->flags & TF_ROUTE_INLINE)) {
        dispatch(req);
        return send_reply(req);
    }
    struct queue *q = req->match.route->flags & TF_ROUTE_SLOW ? &srv->slow : &srv->work;
    if (hand_over(q, req))
        return MHD_YES;
    tf_metrics_inc(queue_rejected, 1);
    tf_problem_set(&req->pb, TF_PB_UNAVAILABLE, "The server is at capacity; retry shortly.");
    req->pb.retry_after = 1;
    return send_reply(req);
}

/* The access log line: one JSON object per finished request. */
static void log_request(tf_req *req, double ms, enum MHD_RequestTerminationCode toe)
{
    json_t *f = json_pack("{s:s, s:s, s:s, s:i, s:f, s:s, s:s}", "request_id", req->request_id,
                          "method", req->method, "route",
                          req->matched ? req->match.route->path : "-", "status", req->status,
                          "ms", ms, "client_ip", req->client_ip, "actor", tf_req_actor(req));
    if (f && req->principal.tenant_id)
        json_object_set_new(f, "tenant_id", json_string(req->principal.tenant_id));
    if (f && req->db_round_trips)
        json_object_set_new(f, "db_round_trips", json_integer(req->db_round_trips));
    if (f && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        json_object_set_new(f, "aborted", json_true());
    tf_log_json(TF_LOG_INFO, "request", f);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **ctx,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    tf_server *srv = cls;
    tf_req *req = *ctx;
    if (!req)
        return;
    *ctx = NULL;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double ms = (double)(now.tv_sec - req->started.tv_sec) * 1e3 +
                (double)(now.tv_nsec - req->started.tv_nsec) / 1e6;
    if (tf_log_enabled(TF_LOG_INFO))
        log_request(req, ms, toe);
    if (req->status)
        tf_metrics_observe_request(req->method, req->matched ? req->match.route->path : NULL,
                                   req->status, ms / 1e3);
    tf_problem_clear(&req->pb);
    tf_arena_free(req->arena);
    atomic_fetch_sub(&srv->inflight, 1);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes %HH in paths and query arguments, except %00: a NUL would cut the
 * C string short and make "/v1/items%00/x" route as "/v1/items". Left as the
 * three characters "%00", it simply matches no route and no valid value. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    char *out = s;
    for (const char *in = s; *in;) {
        int hi = in[0] == '%' ? hex_value(in[1]) : -1;
        int lo = hi >= 0 ? hex_value(in[2]) : -1;
        if (lo >= 0 && (hi | lo) != 0) {
            *out++ = (char)(hi * 16 + lo);
            in += 3;
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
    return (size_t)(out - s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = '\0';
    tf_log(TF_LOG_WARN, "libmicrohttpd: %s", msg);
}

static void server_free(tf_server *s)
{
    queue_free(&s->work);
    queue_free(&s->slow);
    free(s);
}

tf_server *tf_server_start(const tf_server_config *cfg, const tf_server_deps *deps, char *err,
                           size_t errsz)
{
    tf_server *srv = tf_xcalloc(1, sizeof *srv);
    srv->cfg = *cfg;
    srv->deps = *deps;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
    if (inet_pton(AF_INET, cfg->host, &addr.sin_addr) != 1) {
        snprintf(err, errsz, "listen address %s is not an IPv4 address", cfg->host);
        free(srv);
        return NULL;
    }
    /* Room for the largest head we answer ourselves (414/431 as problems). */
    size_t mem = cfg->max_headers + cfg->max_uri + 8 * 1024;
    /* HTTPS: the certificate of each handshake comes from tls.c, so SIGHUP can
     * swap it without restarting the daemon. */
    struct MHD_OptionItem tls[] = {
        {cfg->tls ? MHD_OPTION_HTTPS_CERT_CALLBACK : MHD_OPTION_END, 0,
         cfg->tls ? (void *)tf_tls_callback() : NULL},
        /* GnuTLS's defaults with TLS 1.0 and 1.1 taken out (RFC 8996). */
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES},
        {MHD_OPTION_END, 0, NULL},
    };
    /* The queues and their workers exist before the first connection can. */
    queue_rejected = tf_metrics_counter("tf_http_queue_rejected_total",
                                        "Requests answered 503 because the worker queue was full.");
    tf_metrics_gauge_fn("tf_http_queue_waiting", "Requests waiting for a worker thread.",
                        queue_length, &srv->work);
    tf_metrics_gauge_fn("tf_http_login_queue_waiting",
                        "Logins waiting for a password-checking thread.", queue_length, &srv->slow);
    queue_init(&srv->work, cfg->workers, cfg->max_queue);
    queue_init(&srv->slow, SLOW_WORKERS, cfg->max_queue);
    if (!queue_start(&srv->work, cfg->workers) || !queue_start(&srv->slow, SLOW_WORKERS)) {
        snprintf(err, errsz, "cannot start worker threads");
        server_free(srv);
        return NULL;
    }
    srv->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_ERROR_LOG |
            (cfg->tls ? MHD_USE_TLS : 0),
        (uint16_t)cfg->port, NULL, NULL, on_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem,
        MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, cfg->max_conns,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_conns_per_ip,
        MHD_OPTION_STRICT_FOR_CLIENT, 1,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_ARRAY, tls,
        MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(err, errsz, "cannot listen on %s:%d%s", cfg->host, cfg->port,
                 cfg->tls ? " with TLS" : "");
        server_free(srv);
        return NULL;
    }
    return srv;
}

int tf_server_port(const tf_server *s)
{
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return di ? di->port : 0;
}

void tf_server_stop(tf_server *s, unsigned grace_s)
{
    if (!s)
        return;
    MHD_socket fd = MHD_quiesce_daemon(s->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    for (unsigned waited = 0; atomic_load(&s->inflight) > 0 && waited < grace_s * 100; waited++)
        usleep(10000);
    /* Workers finish what is queued (resuming those connections), then go;
     * from now on hand_over() answers 503 instead of queueing. */
    queue_stop(&s->work);
    queue_stop(&s->slow);
    MHD_stop_daemon(s->daemon);
    server_free(s);
}
