/*
 * Environment configuration. Each variable is described once in the table
 * below, which also feeds `tenantflow --help` and the man page's list, so the
 * help cannot drift from what is parsed.
 *
 * The one thing to know: every variable is checked, and every bad one is
 * reported (one line each, naming the variable) before the program stops with
 * exit status 2; nothing starts half-configured.
 */
#include "tenantflow/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *name, *def, *help;
} vars[] = {
    {"TENANTFLOW_DATABASE_URL", NULL, "libpq URL of the application role (required)"},
    {"TENANTFLOW_MIGRATE_DATABASE_URL", NULL,
     "libpq URL of the owner role for `migrate` and `operator` (default: DATABASE_URL)"},
    {"TENANTFLOW_LISTEN", "127.0.0.1:8080", "IPv4 address and port to serve on"},
    {"TENANTFLOW_THREADS", NULL, "libmicrohttpd I/O threads (1-256; default: one per CPU)"},
    {"TENANTFLOW_DB_POOL_SIZE", NULL,
     "database connections and worker threads (1-512; default: two per CPU)"},
    {"TENANTFLOW_DB_POOL_WAIT_MS", "2000", "wait for a free connection before 503 (1-60000)"},
    {"TENANTFLOW_DB_POOL_MAX_WAITERS", "64",
     "requests that may wait for a connection; more get 503 at once (0-65536)"},
    {"TENANTFLOW_MAX_BODY_BYTES", "1048576", "largest request body (1024-67108864)"},
    {"TENANTFLOW_SIGNING_KEY", NULL, "file of Ed25519 signing keys (required for serve)"},
    {"TENANTFLOW_TOKEN_TTL", "900", "access token lifetime in seconds (60-86400)"},
    {"TENANTFLOW_MIGRATIONS_DIR", TF_DEFAULT_MIGRATIONS_DIR, "directory of NNNN_name.sql files"},
    {"TENANTFLOW_LOG_LEVEL", "info", "debug, info, warn or error"},
    {"TENANTFLOW_IDLE_TIMEOUT", "60", "seconds before an idle connection is closed (1-3600)"},
    {"TENANTFLOW_MAX_CONNECTIONS", "4096", "simultaneous client connections (16-65536)"},
    {"TENANTFLOW_MAX_CONNECTIONS_PER_IP", "512",
     "simultaneous connections from one client address (0 = no limit, up to 65536)"},
    {"TENANTFLOW_TIMER_INTERVAL_MS", "1000", "how often SLA timers are checked (50-3600000)"},
    {"TENANTFLOW_WEBHOOK_ALLOW_PRIVATE", "0",
     "1: webhooks may target loopback/private addresses (metadata never)"},
    {"TENANTFLOW_WEBHOOK_RETRY_SCALE", "1",
     "multiplies the webhook retry delays (0.000001-1; tests use 0.001)"},
    {"TENANTFLOW_TLS_CERT", NULL, "PEM certificate chain; with TLS_KEY serves HTTPS (SIGHUP reloads)"},
    {"TENANTFLOW_TLS_KEY", NULL, "PEM private key of TLS_CERT"},
    {"TENANTFLOW_METRICS", "on", "on: serve GET /metrics (Prometheus text); off: do not"},
    {"TENANTFLOW_METRICS_LISTEN", NULL,
     "HOST:PORT: serve GET /metrics there (plain HTTP) instead of on TENANTFLOW_LISTEN"},
    {"TENANTFLOW_RATE_LIMIT", "1000", "requests/s per credential (token bucket); 0 or off disables"},
    {"TENANTFLOW_RATE_LIMIT_BURST", "2000", "bucket size per credential (1-10000000)"},
    {"TENANTFLOW_CORS_ORIGINS", NULL,
     "comma-separated origins allowed by CORS, e.g. https://app.example.com (default: none)"},
    {"TENANTFLOW_IDEMPOTENCY_RETENTION", "86400",
     "seconds an Idempotency-Key record is kept before purging (86400-2592000)"},
    {"TENANTFLOW_EVENT_RETENTION_DAYS", "30",
     "days events, webhook messages and delivery attempts are kept (1-3650)"},
    {"TENANTFLOW_EVENT_PURGE_INTERVAL", "3600",
     "seconds between purges of events past their retention (1-86400)"},
    {"TENANTFLOW_IDEMPOTENCY_PURGE_INTERVAL", "300",
     "seconds between purges of expired Idempotency-Key records (1-86400)"},
    {"TENANTFLOW_LOGIN_FAILURES_PER_IP", "100",
     "failed logins per client address per window before 429 (0 = no limit)"},
    {"TENANTFLOW_LOGIN_FAILURES_PER_ACCOUNT", "10",
     "failed logins per account per window before 429 (0 = no limit)"},
    {"TENANTFLOW_LOGIN_FAILURE_WINDOW", "300", "seconds a failed-login window lasts (1-86400)"},
};

void tf_config_usage(void)
{
    int width = 0;
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if ((int)strlen(vars[i].name) > width)
            width = (int)strlen(vars[i].name);
    printf("Environment:\n");
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        printf("  %-*s %s%s%s%s\n", width, vars[i].name, vars[i].help, vars[i].def ? " [" : "",
               vars[i].def ? vars[i].def : "", vars[i].def ? "]" : "");
}

/* Appends one line to the error text; the first error wins no priority. */
struct errs {
    char *buf;
    size_t size, len;
    int count;
};

static void add_err(struct errs *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_err(struct errs *e, const char *fmt, ...)
{
    e->count++;
    if (e->len + 2 >= e->size)
        return;
    if (e->len)
        e->buf[e->len++] = '\n';
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(e->buf + e->len, e->size - e->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        e->len += (size_t)n < e->size - e->len ? (size_t)n : e->size - e->len - 1;
}

static const char *get(const char *name)
{
    const char *v = getenv(name);
    if (v && *v)
        return v;
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (strcmp(vars[i].name, name) == 0)
            return vars[i].def;
    return NULL;
}

static long int_var(struct errs *e, const char *name, long min, long max)
{
    const char *v = get(name);
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    /* strtol would also skip leading white space and take a "+". */
    bool digits = (v[0] >= '0' && v[0] <= '9') || (v[0] == '-' && v[1] >= '0' && v[1] <= '9');
    if (errno || !digits || end == v || *end || n < min || n > max) {
        add_err(e, "%s: \"%s\" is not an integer in %ld..%ld", name, v, min, max);
        return min;
    }
    return n;
}

/* The number of CPUs this process may run on. */
static long cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

/* int_var for a variable whose default depends on the machine: per_cpu
 * times the CPUs, within min..max. More threads and connections than cores
 * do not serve more requests; they make the database's backends wait for
 * one another (one preempted while holding a buffer lock stalls the rest),
 * which measured as 100-600 ms stalls at 8 + 8 on two cores and a few tens
 * of ms at most at 2 + 4 (README, Performance). */
static long per_cpu_var(struct errs *e, const char *name, long per_cpu, long min, long max)
{
    if (get(name))
        return int_var(e, name, min, max);
    long n = cpus() * per_cpu;
    return n < min ? min : n > max ? max : n;
}

enum { HOST_MAX = 64 };

/* HOST:PORT of variable name into host (HOST_MAX bytes) and *port. */
static void parse_listen(struct errs *e, const char *name, char *host, const char **host_out,
                         int *port_out)
{
    const char *v = get(name);
    const char *colon = strrchr(v, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || (size_t)(colon - v) >= HOST_MAX || colon == v || end == colon + 1 || *end ||
        port < 0 || port > 65535) {
        add_err(e, "%s: \"%s\" is not HOST:PORT", name, v);
        return;
    }
    memcpy(host, v, (size_t)(colon - v));
    host[colon - v] = '\0';
    struct in_addr addr;
    if (inet_pton(AF_INET, host, &addr) != 1) {
        add_err(e, "%s: \"%s\" is not an IPv4 address and port"
                   " (such as 127.0.0.1:8080 or 0.0.0.0:8080)", name, v);
        return;
    }
    *host_out = host;
    *port_out = (int)port;
}

static void check_url(struct errs *e, const char *name, const char *url)
{
    if (!url)
        return;
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (!opts) {
        size_t n = perr ? strlen(perr) : 0;
        while (n && (perr[n - 1] == '\n' || perr[n - 1] == ' '))
            perr[--n] = '\0';
        add_err(e, "%s: not a libpq connection string (%s)", name, perr ? perr : "out of memory");
    }
    PQconninfoFree(opts);
    PQfreemem(perr);
}

static bool on_off(struct errs *e, const char *name)
{
    const char *v = get(name);
    if (strcmp(v, "on") == 0)
        return true;
    if (strcmp(v, "off") != 0)
        add_err(e, "%s: \"%s\" is not on or off", name, v);
    return false;
}

static void parse_rate(struct errs *e, tf_config *cfg)
{
    const char *v = get("TENANTFLOW_RATE_LIMIT");
    if (strcmp(v, "off") == 0) {
        cfg->rate_limit = 0;
    } else {
        char *end = NULL;
        errno = 0;
        double r = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(r) || r < 0 || r > 1e7)
            add_err(e, "TENANTFLOW_RATE_LIMIT: \"%s\" is not a rate in 0..10000000 or off", v);
        else
            cfg->rate_limit = r;
    }
    cfg->rate_burst = (double)int_var(e, "TENANTFLOW_RATE_LIMIT_BURST", 1, 10000000);
}

/* An origin is scheme://host[:port] exactly as browsers send it: no path,
 * no trailing slash, lower-case scheme. */
static bool valid_origin(const char *s, size_t n)
{
    size_t skip = 0;
    if (n > 8 && strncmp(s, "https://", 8) == 0)
        skip = 8;
    else if (n > 7 && strncmp(s, "http://", 7) == 0)
        skip = 7;
    if (!skip || n > 255)
        return false;
    for (size_t i = skip; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
            return false;
    }
    return true;
}

static void parse_cors(struct errs *e, tf_config *cfg)
{
    static char buf[4096];
    const char *v = get("TENANTFLOW_CORS_ORIGINS");
    if (!v)
        return;
    if (strlen(v) >= sizeof buf) {
        add_err(e, "TENANTFLOW_CORS_ORIGINS: longer than %zu bytes", sizeof buf - 1);
        return;
    }
    snprintf(buf, sizeof buf, "%s", v);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        size_t n = strlen(t);
        while (n && t[n - 1] == ' ')
            t[--n] = '\0';
        if (!valid_origin(t, n)) {
            add_err(e, "TENANTFLOW_CORS_ORIGINS: \"%s\" is not an origin like https://host[:port]",
                    t);
        } else if (cfg->ncors == TF_MAX_CORS_ORIGINS) {
            add_err(e, "TENANTFLOW_CORS_ORIGINS: more than %d origins", TF_MAX_CORS_ORIGINS);
            return;
        } else {
            cfg->cors[cfg->ncors++] = t;
        }
    }
}

static void check_readable(struct errs *e, const char *name, const char *path)
{
    if (path && access(path, R_OK) != 0)
        add_err(e, "%s: cannot read %s: %s", name, path, strerror(errno));
}

static void parse_tls(struct errs *e, tf_config *cfg, bool need_server)
{
    cfg->tls_cert = get("TENANTFLOW_TLS_CERT");
    cfg->tls_key = get("TENANTFLOW_TLS_KEY");
    if (!cfg->tls_cert != !cfg->tls_key) {
        add_err(e, "%s: must be set together with %s",
                cfg->tls_cert ? "TENANTFLOW_TLS_KEY" : "TENANTFLOW_TLS_CERT",
                cfg->tls_cert ? "TENANTFLOW_TLS_CERT" : "TENANTFLOW_TLS_KEY");
        return;
    }
    if (need_server) {
        check_readable(e, "TENANTFLOW_TLS_CERT", cfg->tls_cert);
        check_readable(e, "TENANTFLOW_TLS_KEY", cfg->tls_key);
    }
}

static void parse_webhooks(struct errs *e, tf_config *cfg)
{
    const char *ap = get("TENANTFLOW_WEBHOOK_ALLOW_PRIVATE");
    if (strcmp(ap, "0") != 0 && strcmp(ap, "1") != 0)
        add_err(e, "TENANTFLOW_WEBHOOK_ALLOW_PRIVATE: \"%s\" is not 0 or 1", ap);
    cfg->webhook_allow_private = ap[0] == '1';
    const char *rs = get("TENANTFLOW_WEBHOOK_RETRY_SCALE");
    char *rend = NULL;
    errno = 0;
    cfg->webhook_retry_scale = strtod(rs, &rend);
    if (errno || rend == rs || *rend || !(cfg->webhook_retry_scale >= 0.000001) ||
        cfg->webhook_retry_scale > 1) {
        add_err(e, "TENANTFLOW_WEBHOOK_RETRY_SCALE: \"%s\" is not a number in 0.000001..1", rs);
        cfg->webhook_retry_scale = 1;
    }
}

static void parse_log_level(struct errs *e, tf_config *cfg)
{
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    const char *lv = get("TENANTFLOW_LOG_LEVEL");
    cfg->log_level = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(lv, levels[i]) == 0)
            cfg->log_level = i;
    if (cfg->log_level < 0) {
        add_err(e, "TENANTFLOW_LOG_LEVEL: \"%s\" is not debug, info, warn or error", lv);
        cfg->log_level = 1;
    }
}

bool tf_config_load(tf_config *cfg, bool need_server, char *err, size_t errsz)
{
    struct errs e = {err, errsz, 0, 0};
    if (errsz)
        err[0] = '\0';
    memset(cfg, 0, sizeof *cfg);
    cfg->database_url = get("TENANTFLOW_DATABASE_URL");
    cfg->migrate_url = get("TENANTFLOW_MIGRATE_DATABASE_URL");
    if (!cfg->migrate_url)
        cfg->migrate_url = cfg->database_url;
    if (!cfg->database_url)
        add_err(&e, "TENANTFLOW_DATABASE_URL: not set");
    check_url(&e, "TENANTFLOW_DATABASE_URL", cfg->database_url);
    check_url(&e, "TENANTFLOW_MIGRATE_DATABASE_URL", get("TENANTFLOW_MIGRATE_DATABASE_URL"));
    cfg->signing_key = get("TENANTFLOW_SIGNING_KEY");
    if (need_server && !cfg->signing_key)
        add_err(&e, "TENANTFLOW_SIGNING_KEY: not set (a file of Ed25519 keys; "
                    "`tenantflow keygen` makes one)");
    else if (need_server)
        check_readable(&e, "TENANTFLOW_SIGNING_KEY", cfg->signing_key);
    cfg->migrations_dir = get("TENANTFLOW_MIGRATIONS_DIR");
    static char listen_host[HOST_MAX], metrics_host[HOST_MAX];
    parse_listen(&e, "TENANTFLOW_LISTEN", listen_host, &cfg->listen_host, &cfg->listen_port);
    cfg->threads = (int)per_cpu_var(&e, "TENANTFLOW_THREADS", 1, 1, 256);
    cfg->pool_size = (int)per_cpu_var(&e, "TENANTFLOW_DB_POOL_SIZE", 2, 1, 512);
    cfg->pool_wait_ms = (int)int_var(&e, "TENANTFLOW_DB_POOL_WAIT_MS", 1, 60000);
    cfg->pool_max_waiters = (int)int_var(&e, "TENANTFLOW_DB_POOL_MAX_WAITERS", 0, 65536);
    cfg->max_body = (size_t)int_var(&e, "TENANTFLOW_MAX_BODY_BYTES", 1024, 64L * 1024 * 1024);
    cfg->token_ttl_s = (int)int_var(&e, "TENANTFLOW_TOKEN_TTL", 60, 86400);
    cfg->timeout_s = (unsigned)int_var(&e, "TENANTFLOW_IDLE_TIMEOUT", 1, 3600);
    cfg->max_conns = (unsigned)int_var(&e, "TENANTFLOW_MAX_CONNECTIONS", 16, 65536);
    cfg->max_conns_per_ip = (unsigned)int_var(&e, "TENANTFLOW_MAX_CONNECTIONS_PER_IP", 0, 65536);
    cfg->timer_interval_ms = (unsigned)int_var(&e, "TENANTFLOW_TIMER_INTERVAL_MS", 50, 3600000);
    cfg->idem_retention_s =
        (int)int_var(&e, "TENANTFLOW_IDEMPOTENCY_RETENTION", 86400, 30L * 86400);
    cfg->idem_purge_interval_s =
        (unsigned)int_var(&e, "TENANTFLOW_IDEMPOTENCY_PURGE_INTERVAL", 1, 86400);
    cfg->event_retention_days = (int)int_var(&e, "TENANTFLOW_EVENT_RETENTION_DAYS", 1, 3650);
    cfg->event_purge_interval_s =
        (unsigned)int_var(&e, "TENANTFLOW_EVENT_PURGE_INTERVAL", 1, 86400);
    parse_webhooks(&e, cfg);
    cfg->login_fail_per_ip = (int)int_var(&e, "TENANTFLOW_LOGIN_FAILURES_PER_IP", 0, 1000000);
    cfg->login_fail_per_account =
        (int)int_var(&e, "TENANTFLOW_LOGIN_FAILURES_PER_ACCOUNT", 0, 1000000);
    cfg->login_fail_window_s = (int)int_var(&e, "TENANTFLOW_LOGIN_FAILURE_WINDOW", 1, 86400);
    parse_log_level(&e, cfg);
    parse_tls(&e, cfg, need_server);
    cfg->metrics = on_off(&e, "TENANTFLOW_METRICS");
    if (get("TENANTFLOW_METRICS_LISTEN")) {
        parse_listen(&e, "TENANTFLOW_METRICS_LISTEN", metrics_host, &cfg->metrics_host,
                     &cfg->metrics_port);
        if (!cfg->metrics)
            add_err(&e, "TENANTFLOW_METRICS_LISTEN: set while TENANTFLOW_METRICS is off");
    }
    parse_rate(&e, cfg);
    parse_cors(&e, cfg);
    return e.count == 0;
}
