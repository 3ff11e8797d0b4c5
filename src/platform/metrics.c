/*
 * The metrics registry and GET /metrics (see metrics.h).
 *
 * The one thing to know: the request series are keyed by the route
 * *template*, a normalised method and the status, never by anything the
 * client chose, so a scanner sending random paths cannot grow the table
 * (unmatched requests share route="(unmatched)").
 */
#include "tenantflow/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tenantflow/log.h"

enum { MAX_METRICS = 256, MAX_SERIES = 1024, MAX_ROUTES = 256 };
enum kind { COUNTER, GAUGE, GAUGE_FN };

struct tf_metric {
    char *name, *help;
    enum kind kind;
    atomic_uint_fast64_t count;
    _Atomic double value;
    tf_metrics_fn fn;
    void *arg;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static tf_metric metrics[MAX_METRICS];
static size_t nmetrics;

static const double buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1,   0.25,   0.5,   1,    2.5,   5,   10};
enum { NBUCKETS = sizeof buckets / sizeof *buckets };

struct series { /* requests by method, route, status */
    const char *method, *route;
    int status;
    uint64_t count;
};
struct latency { /* histogram by method and route */
    const char *method, *route;
    uint64_t le[NBUCKETS + 1], count;
    double sum;
};

static pthread_mutex_t req_lock = PTHREAD_MUTEX_INITIALIZER;
static struct series series[MAX_SERIES];
static size_t nseries;
static struct latency latencies[MAX_ROUTES];
static size_t nlatencies;
static uint64_t dropped; /* observations past the table sizes */

static bool valid_name(const char *s)
{
    if (!*s || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (; *s && *s != '{'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == ':'))
            return false;
    return *s == '\0' || s[strlen(s) - 1] == '}';
}

static tf_metric *add(const char *name, const char *help, enum kind kind)
{
    if (!valid_name(name)) {
        tf_log(TF_LOG_ERROR, "metric name %s is not valid", name);
        abort();
    }
    pthread_mutex_lock(&reg_lock);
    tf_metric *m = NULL;
    for (size_t i = 0; i < nmetrics && !m; i++)
        if (strcmp(metrics[i].name, name) == 0)
            m = &metrics[i];
    if (!m) {
        if (nmetrics == MAX_METRICS) {
            tf_log(TF_LOG_ERROR, "more than %d metrics registered", MAX_METRICS);
            abort();
        }
        m = &metrics[nmetrics++];
        m->name = tf_xstrdup(name);
        m->help = tf_xstrdup(help);
        m->kind = kind;
    }
    pthread_mutex_unlock(&reg_lock);
    return m;
}

tf_metric *tf_metrics_counter(const char *name, const char *help)
{
    return add(name, help, COUNTER);
}

void tf_metrics_inc(tf_metric *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->count, n, memory_order_relaxed);
}

tf_metric *tf_metrics_gauge(const char *name, const char *help)
{
    return add(name, help, GAUGE);
}

void tf_metrics_set(tf_metric *g, double v)
{
    atomic_store_explicit(&g->value, v, memory_order_relaxed);
}

void tf_metrics_gauge_fn(const char *name, const char *help, tf_metrics_fn fn, void *arg)
{
    tf_metric *m = add(name, help, GAUGE_FN);
    pthread_mutex_lock(&reg_lock);
    m->fn = fn;
    m->arg = arg;
    pthread_mutex_unlock(&reg_lock);
}

static const char *method_label(const char *m)
{
    static const char *const known[] = {"GET",    "HEAD",    "POST", "PUT",
                                        "PATCH",  "DELETE",  "OPTIONS"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(m, known[i]) == 0)
            return known[i];
    return "other";
}

void tf_metrics_observe_request(const char *method, const char *route, int status,
                                double seconds)
{
    const char *m = method_label(method);
    const char *r = route ? route : "(unmatched)";
    pthread_mutex_lock(&req_lock);
    struct series *s = NULL;
    for (size_t i = 0; i < nseries && !s; i++)
        if (series[i].status == status && series[i].method == m && strcmp(series[i].route, r) == 0)
            s = &series[i];
    if (!s && nseries < MAX_SERIES)
        s = &series[nseries++], s->method = m, s->route = r, s->status = status;
    struct latency *l = NULL;
    for (size_t i = 0; i < nlatencies && !l; i++)
        if (latencies[i].method == m && strcmp(latencies[i].route, r) == 0)
            l = &latencies[i];
    if (!l && nlatencies < MAX_ROUTES)
        l = &latencies[nlatencies++], l->method = m, l->route = r;
    if (s)
        s->count++;
    if (l) {
        size_t b = 0;
        while (b < NBUCKETS && seconds > buckets[b])
            b++;
        l->le[b]++;
        l->count++;
        l->sum += seconds;
    }
    if (!s || !l)
        dropped++;
    pthread_mutex_unlock(&req_lock);
}

/* A growing text buffer with a sticky failure flag. */
struct buf {
    char *p;
    size_t len, cap;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)n;
        b->p = tf_xrealloc(b->p, b->cap);
    }
}

static void family_head(struct buf *b, const tf_metric *m, const char **last)
{
    size_t n = strcspn(m->name, "{");
    if (*last && strlen(*last) >= n && strncmp(*last, m->name, n) == 0 &&
        ((*last)[n] == '\0' || (*last)[n] == '{'))
        return;
    *last = m->name;
    put(b, "# HELP %.*s %s\n# TYPE %.*s %s\n", (int)n, m->name, m->help, (int)n, m->name,
        m->kind == COUNTER ? "counter" : "gauge");
}

static void put_double(struct buf *b, double v)
{
    if (isnan(v))
        put(b, "NaN\n");
    else if (isinf(v))
        put(b, "%s\n", v > 0 ? "+Inf" : "-Inf");
    else
        put(b, "%.17g\n", v);
}

static void render_registered(struct buf *b)
{
    pthread_mutex_lock(&reg_lock);
    size_t n = nmetrics;
    pthread_mutex_unlock(&reg_lock);
    const char *last = NULL;
    for (size_t i = 0; i < n; i++) {
        tf_metric *m = &metrics[i];
        double v = 0;
        if (m->kind == GAUGE_FN && (!m->fn || !m->fn(m->arg, &v)))
            continue;
        family_head(b, m, &last);
        if (m->kind == COUNTER) {
            put(b, "%s %llu\n", m->name, (unsigned long long)atomic_load(&m->count));
            continue;
        }
        put(b, "%s ", m->name);
        put_double(b, m->kind == GAUGE ? atomic_load(&m->value) : v);
    }
}

static void render_requests(struct buf *b)
{
    pthread_mutex_lock(&req_lock);
    put(b, "# HELP tf_http_requests_total HTTP requests answered, by method, route template and "
           "status.\n# TYPE tf_http_requests_total counter\n");
    for (size_t i = 0; i < nseries; i++)
        put(b, "tf_http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} %llu\n",
            series[i].method, series[i].route, series[i].status,
            (unsigned long long)series[i].count);
    put(b, "# HELP tf_http_request_duration_seconds Time from the request head to the end of "
           "the response, by method and route template.\n"
           "# TYPE tf_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < nlatencies; i++) {
        const struct latency *l = &latencies[i];
        uint64_t cum = 0;
        for (size_t k = 0; k <= NBUCKETS; k++) {
            cum += l->le[k];
            char le[32];
            if (k < NBUCKETS)
                snprintf(le, sizeof le, "%g", buckets[k]);
            else
                snprintf(le, sizeof le, "+Inf");
            put(b, "tf_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\",le=\"%s\"} "
                   "%llu\n", l->method, l->route, le, (unsigned long long)cum);
        }
        put(b, "tf_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.9f\n",
            l->method, l->route, l->sum);
        put(b, "tf_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %llu\n",
            l->method, l->route, (unsigned long long)l->count);
    }
    put(b, "# HELP tf_http_metrics_dropped_total Observations not recorded because the series "
           "table is full.\n# TYPE tf_http_metrics_dropped_total counter\n"
           "tf_http_metrics_dropped_total %llu\n", (unsigned long long)dropped);
    pthread_mutex_unlock(&req_lock);
}

char *tf_metrics_render(size_t *len)
{
    struct buf b = {tf_xmalloc(8192), 0, 8192};
    b.p[0] = '\0';
    render_requests(&b);
    render_registered(&b);
    *len = b.len;
    return b.p;
}

static void metrics_handler(tf_req *req)
{
    size_t len = 0;
    char *text = tf_metrics_render(&len);
    tf_reply_text(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

static const tf_route routes[] = {
    {"GET", "/metrics", TF_PUBLIC, metrics_handler, NULL,
     "Metrics in the Prometheus text format 0.0.4", TF_ROUTE_TEXT | TF_ROUTE_INLINE, NULL},
};

bool tf_metrics_register(tf_router *r, char *err, size_t errsz)
{
    return tf_router_add_all(r, routes, sizeof routes / sizeof *routes, err, errsz);
}
