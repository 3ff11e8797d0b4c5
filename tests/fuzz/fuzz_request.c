/*
 * Fuzz target: everything the server decides from a request's head before
 * the body or the database is touched: check_head() in src/platform/http.c
 * (request target and header size limits, framing headers, routing, the
 * query string check, Accept, Content-Type, the Idempotency-Key header,
 * Content-Length) and then read_credential() (the Authorization header:
 * "Bearer", API keys, operator tokens, access tokens through the token cache
 * and tf_token_verify), plus the X-Request-Id check.
 *
 * Those functions are static, so this file compiles http.c itself (the
 * library's http.o is then never linked in: every symbol it would provide is
 * defined here already). They read the request through libmicrohttpd, which
 * is replaced by two fakes below, MHD_lookup_connection_value and
 * MHD_get_connection_values, serving headers and query arguments parsed from
 * the input the way libmicrohttpd hands them over: NUL-terminated, header
 * names matched without regard to case, values with surrounding white space
 * removed, the path and each query name and value passed through http.c's own
 * unescape() after '+' became ' '. The input is a request head:
 *
 *     METHOD SP TARGET LF (Name ":" value LF)* [LF anything]
 *
 * (a CR before each LF is dropped). Properties: every refusal is a 4xx
 * problem; an accepted head has a route of its method (HEAD routes as GET),
 * and a body method's Idempotency-Key, when kept, is one valid header;
 * an accepted credential names its kind and, for an access token, a subject
 * and tenant; a kept X-Request-Id is 1..128 characters.
 */
#include "platform/http.c"

#include "fuzz.h"
#include "routes.h"

enum { MAX_VALUES = 64 };

struct kv {
    char *key, *value; /* value NULL: a query name without '=' */
};

static struct {
    struct kv headers[MAX_VALUES], args[MAX_VALUES];
    size_t nheaders, nargs;
} fake;

const char *MHD_lookup_connection_value(struct MHD_Connection *connection,
                                        enum MHD_ValueKind kind, const char *key)
{
    (void)connection;
    const struct kv *list = kind == MHD_HEADER_KIND ? fake.headers : fake.args;
    size_t n = kind == MHD_HEADER_KIND ? fake.nheaders
               : kind == MHD_GET_ARGUMENT_KIND ? fake.nargs
                                                : 0;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(list[i].key, key) == 0)
            return list[i].value;
    return NULL;
}

int MHD_get_connection_values(struct MHD_Connection *connection, enum MHD_ValueKind kind,
                              MHD_KeyValueIterator iterator, void *iterator_cls)
{
    (void)connection;
    const struct kv *list = kind == MHD_HEADER_KIND ? fake.headers : fake.args;
    size_t n = kind == MHD_HEADER_KIND ? fake.nheaders
               : kind == MHD_GET_ARGUMENT_KIND ? fake.nargs
                                                : 0;
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        count++;
        if (iterator && iterator(iterator_cls, kind, list[i].key, list[i].value) != MHD_YES)
            break;
    }
    return count;
}

static void fake_reset(void)
{
    for (size_t i = 0; i < fake.nheaders; i++) {
        free(fake.headers[i].key);
        free(fake.headers[i].value);
    }
    for (size_t i = 0; i < fake.nargs; i++) {
        free(fake.args[i].key);
        free(fake.args[i].value);
    }
    fake.nheaders = fake.nargs = 0;
}

static char *trimmed(const char *s, size_t n)
{
    while (n > 0 && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return tf_xstrndup(s, n);
}

/* libmicrohttpd's treatment of one query name or value. */
static char *query_part(const char *s, size_t n)
{
    char *p = tf_xstrndup(s, n);
    for (char *c = p; *c; c++)
        if (*c == '+')
            *c = ' ';
    (void)unescape(NULL, NULL, p);
    return p;
}

static void parse_query(const char *q)
{
    while (*q && fake.nargs < MAX_VALUES) {
        size_t n = strcspn(q, "&");
        if (n > 0) {
            const char *eq = memchr(q, '=', n);
            struct kv *a = &fake.args[fake.nargs++];
            a->key = query_part(q, eq ? (size_t)(eq - q) : n);
            a->value = eq ? query_part(eq + 1, n - (size_t)(eq - q) - 1) : NULL;
        }
        q += n;
        if (*q == '&')
            q++;
    }
}

/* Fills the fakes from head; returns the method and sets *path (malloc'd,
 * unescaped, without the query), or NULL when there is no request line. */
static char *parse_head(const char *head, char **path)
{
    const char *eol = strchr(head, '\n');
    size_t n = eol ? (size_t)(eol - head) : strlen(head);
    if (n > 0 && head[n - 1] == '\r')
        n--;
    const char *sp = memchr(head, ' ', n);
    if (!sp || sp == head)
        return NULL;
    char *method = tf_xstrndup(head, (size_t)(sp - head));
    char *target = tf_xstrndup(sp + 1, n - (size_t)(sp + 1 - head));
    char *qm = strchr(target, '?');
    if (qm) {
        *qm = '\0';
        parse_query(qm + 1);
    }
    (void)unescape(NULL, NULL, target);
    *path = target;

    while (eol && fake.nheaders < MAX_VALUES) {
        const char *line = eol + 1;
        eol = strchr(line, '\n');
        n = eol ? (size_t)(eol - line) : strlen(line);
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (n == 0)
            break; /* the end of the head */
        const char *colon = memchr(line, ':', n);
        if (!colon || colon == line)
            continue; /* libmicrohttpd refuses such a line before we see it */
        struct kv *h = &fake.headers[fake.nheaders++];
        h->key = tf_xstrndup(line, (size_t)(colon - line));
        h->value = trimmed(colon + 1, n - (size_t)(colon + 1 - line));
    }
    return method;
}

static tf_server *server(void)
{
    static tf_server srv;
    if (srv.deps.router)
        return &srv;
    if (tf_crypto_init() != 0)
        abort();
    unsigned char seed[32];
    for (int i = 0; i < 32; i++)
        seed[i] = (unsigned char)i; /* key "a" of fuzz_token.c */
    char *enc = tf_b64url_encode(seed, sizeof seed);
    char text[128];
    int n = snprintf(text, sizeof text, "a %s\n", enc);
    free(enc);
    char err[256];
    tf_keyset *keys = tf_keyset_from_text(text, (size_t)n, err, sizeof err);
    if (!keys)
        abort();
    srv.cfg.max_uri = 8 * 1024;
    srv.cfg.max_headers = 16 * 1024;
    srv.cfg.max_body = 1024 * 1024;
    srv.deps.keys = keys;
    srv.deps.router = fuzz_routes();
    return &srv;
}

static int header_copies(const char *name)
{
    int n = 0;
    for (size_t i = 0; i < fake.nheaders; i++)
        n += strcasecmp(fake.headers[i].key, name) == 0;
    return n;
}

static void check_accepted(const tf_req *req)
{
    FUZZ_ASSERT(req->matched && req->match.route);
    const char *want = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
    FUZZ_ASSERT(strcmp(req->match.route->method, want) == 0);
    if (req->idem_key)
        FUZZ_ASSERT(has_body_method(req->method) && tf_idem_key_valid(req->idem_key) &&
                    header_copies("Idempotency-Key") == 1);
}

static void check_credential(tf_req *req)
{
    tf_credential cred;
    bool ok = read_credential(req, &cred);
    if (!ok) {
        FUZZ_ASSERT(tf_problem_status(&req->pb) == 401);
        return;
    }
    FUZZ_ASSERT(!tf_failed(&req->pb));
    if (cred.kind == TF_CRED_ACCESS_TOKEN)
        FUZZ_ASSERT(cred.sub[0] && cred.tid[0]);
    else
        FUZZ_ASSERT(cred.kind == TF_CRED_API_KEY || cred.kind == TF_CRED_OPERATOR);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tf_server *srv = server();
    char *head = fuzz_cstr(data, size);
    char *path = NULL;
    char *method = parse_head(head, &path);
    if (!method) {
        fake_reset();
        free(head);
        return 0;
    }
    tf_req req;
    memset(&req, 0, sizeof req);
    req.srv = srv;
    req.conn = NULL; /* the fakes serve the one request in progress */
    req.arena = tf_arena_new();
    req.method = method;
    req.path = path;

    const char *rid = tf_req_header(&req, "X-Request-Id");
    if (rid && valid_request_id(rid))
        FUZZ_ASSERT(strlen(rid) >= 1 && strlen(rid) <= 128);

    check_head(&req, path);
    if (tf_failed(&req.pb)) {
        int status = tf_problem_status(&req.pb);
        FUZZ_ASSERT(status >= 400 && status <= 499);
    } else {
        check_accepted(&req);
        if (strcmp(req.match.route->permission, TF_PUBLIC) != 0)
            check_credential(&req);
    }
    tf_problem_clear(&req.pb);
    tf_arena_free(req.arena);
    free(path);
    free(method);
    fake_reset();
    free(head);
    return 0;
}
