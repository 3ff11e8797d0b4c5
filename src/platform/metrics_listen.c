/*
 * GET /metrics on an address of its own (TENANTFLOW_METRICS_LISTEN), so that
 * the scrape port can stay on a private interface while the API faces the
 * world. Plain HTTP, one thread, a handful of connections: a scraper calls
 * a few times a minute. Nothing else is served there; other paths are a 404
 * problem and other methods a 405, as on the main listener.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tenantflow/log.h"
#include "tenantflow/metrics.h"
#include "tenantflow/problem.h"

struct tf_metrics_listener {
    struct MHD_Daemon *daemon;
};

/* Queues body (malloc'd, taken over) as the answer. */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    if (status == 405)
        MHD_add_response_header(r, "Allow", "GET, HEAD");
    enum MHD_Result ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* The same RFC 9457 body as the main listener's (problem.c), without a
 * request id: nothing here is logged per request. */
static enum MHD_Result problem(struct MHD_Connection *conn, tf_problem_kind kind,
                               const char *detail, const char *url)
{
    tf_problem p = {0};
    tf_problem_set(&p, kind, "%s", detail);
    json_t *body = tf_problem_body(&p, url, NULL);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    enum MHD_Result ok = text ? reply(conn, (unsigned)tf_problem_status(&p),
                                      "application/problem+json", text, strlen(text))
                              : MHD_NO;
    tf_problem_clear(&p);
    return ok;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **ctx)
{
    (void)cls;
    (void)version;
    (void)upload;
    /* Answer once the request is complete, so a keep-alive connection
     * survives; a body is read and dropped. */
    if (!*ctx) {
        *ctx = conn;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/metrics") != 0)
        return problem(conn, TF_PB_NOT_FOUND, "Only /metrics is served on this address.", url);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return problem(conn, TF_PB_METHOD_NOT_ALLOWED, "/metrics answers GET and HEAD.", url);
    size_t len = 0;
    char *text = tf_metrics_render(&len);
    return reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

tf_metrics_listener *tf_metrics_listen(const char *host, int port, char *err, size_t errsz)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        snprintf(err, errsz, "TENANTFLOW_METRICS_LISTEN: %s is not an IPv4 address", host);
        return NULL;
    }
    tf_metrics_listener *l = calloc(1, sizeof *l);
    if (!l)
        abort();
    l->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL, answer, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT, 16u,
        MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384,
        MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_END);
    if (!l->daemon) {
        snprintf(err, errsz, "TENANTFLOW_METRICS_LISTEN: cannot listen on %s:%d", host, port);
        free(l);
        return NULL;
    }
    tf_log(TF_LOG_INFO, "metrics listening on %s:%d", host,
           (int)MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_BIND_PORT)->port);
    return l;
}

void tf_metrics_listener_stop(tf_metrics_listener *l)
{
    if (!l)
        return;
    MHD_stop_daemon(l->daemon);
    free(l);
}
