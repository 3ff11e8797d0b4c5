/*
 * Environment configuration. Each variable is described once in the table
 * below, which also feeds `tenantflow --help`, so the help cannot drift from
 * what is parsed.
 */
#include "tenantflow/config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MIGRATIONS "migrations"

static const struct {
    const char *name, *def, *help;
} vars[] = {
    {"TENANTFLOW_DATABASE_URL", NULL, "libpq URL of the application role (required)"},
    {"TENANTFLOW_MIGRATE_DATABASE_URL", NULL,
     "libpq URL of the owner role for `migrate` and `operator` (default: DATABASE_URL)"},
    {"TENANTFLOW_LISTEN", "127.0.0.1:8080", "IPv4 address and port to serve on"},
    {"TENANTFLOW_THREADS", "8", "HTTP worker threads (1-256)"},
    {"TENANTFLOW_DB_POOL_SIZE", "8", "database connections (1-512)"},
    {"TENANTFLOW_DB_POOL_WAIT_MS", "2000", "wait for a free connection before 503 (1-60000)"},
    {"TENANTFLOW_TIMER_INTERVAL_MS", "1000", "how often SLA timers are checked (50-3600000)"},
    {"TENANTFLOW_MAX_BODY_BYTES", "1048576", "largest request body (1024-67108864)"},
    {"TENANTFLOW_SIGNING_KEY", NULL, "file of Ed25519 signing keys (required for serve)"},
    {"TENANTFLOW_TOKEN_TTL", "900", "access token lifetime in seconds (60-86400)"},
    {"TENANTFLOW_MIGRATIONS_DIR", DEFAULT_MIGRATIONS, "directory of NNNN_name.sql files"},
    {"TENANTFLOW_LOG_LEVEL", "info", "debug, info, warn or error"},
    {"TENANTFLOW_IDLE_TIMEOUT", "60", "seconds before an idle connection is closed (1-3600)"},
    {"TENANTFLOW_MAX_CONNECTIONS", "4096", "simultaneous client connections (16-65536)"},
    {"TENANTFLOW_WEBHOOK_ALLOW_PRIVATE", "0",
     "1: webhooks may target loopback/private addresses (metadata never)"},
    {"TENANTFLOW_WEBHOOK_RETRY_SCALE", "1",
     "multiplies the webhook retry delays (0.000001-1; tests use 0.001)"},
};

void tf_config_usage(void)
{
    printf("Environment:\n");
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        printf("  %-34s %s%s%s%s\n", vars[i].name, vars[i].help, vars[i].def ? " [" : "",
               vars[i].def ? vars[i].def : "", vars[i].def ? "]" : "");
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

static bool int_var(const char *name, long min, long max, long *out, char *err, size_t errsz)
{
    const char *v = get(name);
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max) {
        snprintf(err, errsz, "%s: \"%s\" is not an integer in %ld..%ld", name, v, min, max);
        return false;
    }
    *out = n;
    return true;
}

static bool parse_listen(tf_config *cfg, char *err, size_t errsz)
{
    static char host[64];
    const char *v = get("TENANTFLOW_LISTEN");
    const char *colon = strrchr(v, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || (size_t)(colon - v) >= sizeof host || colon == v || end == colon + 1 || *end ||
        port < 0 || port > 65535) {
        snprintf(err, errsz, "TENANTFLOW_LISTEN: \"%s\" is not HOST:PORT", v);
        return false;
    }
    memcpy(host, v, (size_t)(colon - v));
    host[colon - v] = '\0';
    cfg->listen_host = host;
    cfg->listen_port = (int)port;
    return true;
}

bool tf_config_load(tf_config *cfg, bool need_server, char *err, size_t errsz)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->database_url = get("TENANTFLOW_DATABASE_URL");
    cfg->migrate_url = get("TENANTFLOW_MIGRATE_DATABASE_URL");
    if (!cfg->migrate_url)
        cfg->migrate_url = cfg->database_url;
    if (!cfg->database_url) {
        snprintf(err, errsz, "TENANTFLOW_DATABASE_URL: not set");
        return false;
    }
    cfg->signing_key = get("TENANTFLOW_SIGNING_KEY");
    if (need_server && !cfg->signing_key) {
        snprintf(err, errsz, "TENANTFLOW_SIGNING_KEY: not set (a file of Ed25519 keys; "
                             "`tenantflow keygen` makes one)");
        return false;
    }
    cfg->migrations_dir = get("TENANTFLOW_MIGRATIONS_DIR");
    long n;
    if (!parse_listen(cfg, err, errsz))
        return false;
    if (!int_var("TENANTFLOW_THREADS", 1, 256, &n, err, errsz))
        return false;
    cfg->threads = (int)n;
    if (!int_var("TENANTFLOW_DB_POOL_SIZE", 1, 512, &n, err, errsz))
        return false;
    cfg->pool_size = (int)n;
    if (!int_var("TENANTFLOW_DB_POOL_WAIT_MS", 1, 60000, &n, err, errsz))
        return false;
    cfg->pool_wait_ms = (int)n;
    if (!int_var("TENANTFLOW_MAX_BODY_BYTES", 1024, 64L * 1024 * 1024, &n, err, errsz))
        return false;
    cfg->max_body = (size_t)n;
    if (!int_var("TENANTFLOW_TOKEN_TTL", 60, 86400, &n, err, errsz))
        return false;
    cfg->token_ttl_s = (int)n;
    if (!int_var("TENANTFLOW_IDLE_TIMEOUT", 1, 3600, &n, err, errsz))
        return false;
    cfg->timeout_s = (unsigned)n;
    if (!int_var("TENANTFLOW_MAX_CONNECTIONS", 16, 65536, &n, err, errsz))
        return false;
    cfg->max_conns = (unsigned)n;
    if (!int_var("TENANTFLOW_TIMER_INTERVAL_MS", 50, 3600000, &n, err, errsz))
        return false;
    cfg->timer_interval_ms = (unsigned)n;
    const char *ap = get("TENANTFLOW_WEBHOOK_ALLOW_PRIVATE");
    if (strcmp(ap, "0") != 0 && strcmp(ap, "1") != 0) {
        snprintf(err, errsz, "TENANTFLOW_WEBHOOK_ALLOW_PRIVATE: \"%s\" is not 0 or 1", ap);
        return false;
    }
    cfg->webhook_allow_private = ap[0] == '1';
    const char *rs = get("TENANTFLOW_WEBHOOK_RETRY_SCALE");
    char *rend = NULL;
    errno = 0;
    cfg->webhook_retry_scale = strtod(rs, &rend);
    if (errno || rend == rs || *rend || !(cfg->webhook_retry_scale >= 0.000001) ||
        cfg->webhook_retry_scale > 1) {
        snprintf(err, errsz, "TENANTFLOW_WEBHOOK_RETRY_SCALE: \"%s\" is not a number in "
                             "0.000001..1", rs);
        return false;
    }
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    const char *lv = get("TENANTFLOW_LOG_LEVEL");
    cfg->log_level = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(lv, levels[i]) == 0)
            cfg->log_level = i;
    if (cfg->log_level < 0) {
        snprintf(err, errsz, "TENANTFLOW_LOG_LEVEL: \"%s\" is not debug, info, warn or error", lv);
        return false;
    }
    return true;
}
