/*
 * tenantflow: the command line. `serve` wires the platform and the modules
 * together and runs until SIGTERM/SIGINT; `migrate`, `operator` and `keygen`
 * are the operator's tools. Every setting comes from the environment.
 */
#include <signal.h>
#include <sodium.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tenantflow/access.h"
#include "tenantflow/audit.h"
#include "tenantflow/config.h"
#include "tenantflow/crypto.h"
#include "tenantflow/dbgauge.h"
#include "tenantflow/cursor.h"
#include "tenantflow/db.h"
#include "tenantflow/docs.h"
#include "tenantflow/events.h"
#include "tenantflow/http.h"
#include "tenantflow/idem.h"
#include "tenantflow/jobs.h"
#include "tenantflow/log.h"
#include "tenantflow/metrics.h"
#include "tenantflow/migrate.h"
#include "tenantflow/notify.h"
#include "tenantflow/ops.h"
#include "tenantflow/reporting.h"
#include "tenantflow/ratelimit.h"
#include "tenantflow/safety.h"
#include "tenantflow/tenancy.h"
#include "tenantflow/tls.h"
#include "tenantflow/token.h"
#include "tenantflow/workflows.h"

#ifndef TF_VERSION
#define TF_VERSION "0.1.0"
#endif

enum { EXIT_USAGE = 2 };

static void usage(void)
{
    printf("tenantflow %s: a multi-tenant workflow REST API server (see tenantflow(8))\n\n"
           "usage: tenantflow [serve]                  run the HTTP server\n"
           "       tenantflow migrate up|status        apply or show schema migrations\n"
           "       tenantflow operator create [NAME]   create an operator, print its token\n"
           "       tenantflow keygen [KID]             print a new signing key line\n"
           "       tenantflow routes                   print the route table as JSON\n"
           "       tenantflow sql NAME [FILTERS]       print a hot query's SQL (for EXPLAIN)\n"
           "       tenantflow --version | --help\n\n",
           TF_VERSION);
    tf_config_usage();
    printf("\nSignals (serve): SIGTERM/SIGINT finish in-flight requests and exit 0;\n"
           "SIGHUP reloads the TLS certificate and key.\n"
           "Exit status: 0 success, 1 runtime failure, 2 bad usage or configuration.\n");
}

/* One "tenantflow: " line per line of msg (configuration reports every bad
 * variable, one a line). */
static int fail(int code, const char *msg)
{
    do {
        size_t n = strcspn(msg, "\n");
        fprintf(stderr, "tenantflow: %.*s\n", (int)n, msg);
        msg += n + (msg[n] == '\n');
    } while (*msg);
    return code;
}

/* Every route of every module; shared with the tests through --routes. */
static bool register_all(tf_router *router, tf_pool *pool, const tf_keyset *keys,
                         const tf_config *cfg, int schema, char *err, size_t errsz)
{
    return tf_ops_register(router, pool, schema, err, errsz) &&
           tf_docs_register(router, err, errsz) &&
           (!cfg->metrics || cfg->metrics_host || tf_metrics_register(router, err, errsz)) &&
           tenancy_register(router, err, errsz) &&
           access_register(router, keys, cfg->token_ttl_s, err, errsz) &&
           workflows_register(router, err, errsz) && audit_register(router, err, errsz) &&
           events_register(router, err, errsz) && reporting_register(router, err, errsz);
}

/* `tenantflow routes`: the route table as JSON, for the tests that must cover
 * every route (authorisation matrix, OpenAPI document). */
static int print_routes(void)
{
    tf_config cfg = {.token_ttl_s = 900, .metrics = true};
    tf_router *router = tf_router_new();
    char err[256];
    if (!register_all(router, NULL, NULL, &cfg, 0, err, sizeof err)) {
        tf_router_free(router);
        return fail(1, err);
    }
    json_t *list = json_array();
    for (size_t i = 0; i < tf_router_count(router); i++) {
        const tf_route *r = tf_router_at(router, i);
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s?, s:s?}", "method", r->method,
                                              "path", r->path, "permission", r->permission,
                                              "query", r->query, "summary", r->summary));
    }
    char *text = json_dumps(list, JSON_INDENT(1));
    puts(text);
    free(text);
    json_decref(list);
    tf_router_free(router);
    return 0;
}

static bool cursor_key_from(const char *path, const tf_config *cfg)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    unsigned char buf[64 * 1024];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    tf_cursor_set_key(buf, n);
    events_config ecfg = {cfg->webhook_allow_private, cfg->webhook_retry_scale};
    events_init(buf, n, &ecfg);
    sodium_memzero(buf, sizeof buf);
    return true;
}

/* SIGHUP: new TLS handshakes get the certificate now in the files; open
 * connections are not touched. A bad file keeps the old certificate. */
static void reload(tf_tls *tls)
{
    if (!tls) {
        tf_log(TF_LOG_INFO, "SIGHUP: nothing to reload (no TLS)");
        return;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    char msg[96];
    snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%lld",
             (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000);
    tf_notify(msg);
    char err[512];
    bool changed = false;
    if (!tf_tls_reload(tls, &changed, err, sizeof err))
        tf_log(TF_LOG_ERROR, "SIGHUP: TLS reload failed, keeping the old certificate: %s", err);
    else if (changed)
        tf_log(TF_LOG_INFO, "SIGHUP: TLS certificate reloaded");
    else
        tf_log(TF_LOG_WARN, "SIGHUP: the TLS certificate and key files are unchanged; still "
                            "serving the same certificate (systemd copies LoadCredential= "
                            "files at start: restart the service to use new ones)");
    tf_notify("READY=1");
}

/* A binary newer than its schema would answer with tables it does not
 * have: it refuses to start (status 1, so systemd retries until
 * `migrate up` has run). A newer schema is fine: migrations only add, and
 * old instances keep serving during a rolling deploy. */
static bool schema_is_current(PGconn *c, int want, char *err, size_t errsz)
{
    PGresult *r = PQexec(c, "SELECT platform.schema_version()");
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    int have = ok ? atoi(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    if (!ok)
        snprintf(err, errsz, "the database has no tenantflow schema: run `tenantflow migrate up`");
    else if (have < want)
        snprintf(err, errsz, "the database schema is at version %d; this server needs %d: "
                             "run `tenantflow migrate up`", have, want);
    return ok && have >= want;
}

static int serve(const tf_config *cfg)
{
    char err[512];
    tf_log_set_level((tf_log_level)cfg->log_level);
    int schema = tf_migrate_latest(cfg->migrations_dir, err, sizeof err);
    if (schema < 0) {
        char msg[600];
        snprintf(msg, sizeof msg, "TENANTFLOW_MIGRATIONS_DIR: %s", err);
        return fail(EXIT_USAGE, msg);
    }
    tf_keyset *keys = tf_keyset_load(cfg->signing_key, err, sizeof err);
    if (!keys) {
        char msg[600];
        snprintf(msg, sizeof msg, "TENANTFLOW_SIGNING_KEY: %s", err);
        return fail(EXIT_USAGE, msg);
    }
    if (!cursor_key_from(cfg->signing_key, cfg)) {
        tf_keyset_free(keys);
        return fail(EXIT_USAGE, "TENANTFLOW_SIGNING_KEY: cannot read the file");
    }
    tf_tls *tls = NULL;
    if (cfg->tls_cert) {
        tls = tf_tls_load(cfg->tls_cert, cfg->tls_key, err, sizeof err);
        if (!tls) {
            char msg[600];
            snprintf(msg, sizeof msg, "TENANTFLOW_TLS_CERT/TENANTFLOW_TLS_KEY: %s", err);
            tf_keyset_free(keys);
            return fail(EXIT_USAGE, msg);
        }
    }
    PGconn *check = tf_db_connect(cfg->database_url, err, sizeof err);
    bool safe = check && tf_db_check_safety(check, err, sizeof err) &&
                schema_is_current(check, schema, err, sizeof err);
    PQfinish(check);
    if (!safe) {
        tf_tls_free(tls);
        tf_keyset_free(keys);
        return fail(1, err);
    }
    tf_pool *pool = tf_pool_new(cfg->database_url, cfg->pool_size, cfg->pool_wait_ms, err,
                                sizeof err);
    if (pool)
        tf_pool_set_max_waiters(pool, cfg->pool_max_waiters);
    tf_ratelimit *limiter = cfg->rate_limit > 0 ? tf_ratelimit_new(cfg->rate_limit,
                                                                   cfg->rate_burst)
                                                : NULL;
    tf_router *router = tf_router_new();
    int rc = 1;
    tf_server *srv = NULL;
    tf_metrics_listener *metrics = NULL;
    tf_jobs *jobs = NULL;
    access_set_login_limits(cfg->login_fail_per_ip, cfg->login_fail_per_account,
                            cfg->login_fail_window_s);
    if (!pool || !register_all(router, pool, keys, cfg, schema, err, sizeof err)) {
        fail(1, err);
        goto out;
    }
    /* Signals are taken synchronously by this thread only. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    tf_server_config scfg = {
        .host = cfg->listen_host,
        .port = cfg->listen_port,
        .threads = cfg->threads,
        .max_body = cfg->max_body,
        .max_uri = 8 * 1024,
        .max_headers = 16 * 1024,
        .timeout_s = cfg->timeout_s,
        .max_conns = cfg->max_conns,
        .max_conns_per_ip = cfg->max_conns_per_ip,
        .workers = cfg->pool_size,
        .max_queue = cfg->pool_max_waiters,
        .tls = tls != NULL,
        .cors = cfg->cors,
        .ncors = cfg->ncors,
    };
    tf_server_deps deps = {.router = router, .pool = pool, .keys = keys, .ratelimit = limiter};
    /* Background jobs of every module are added here, before start. */
    jobs = tf_jobs_new(pool);
    if (cfg->metrics) {
        events_metrics_add(pool);
        workflows_metrics_add(pool);
        tf_jobs_add(jobs, &tf_dbgauge_job);
    }
    tf_job timers = workflows_timer_job(cfg->timer_interval_ms);
    tf_jobs_add(jobs, &timers);
    reporting_subscribe();
    tf_jobs_add(jobs, &reporting_partition_job);
    tf_jobs_add(jobs, &reporting_rollup_job);
    audit_jobs_add(jobs);
    events_jobs_add(jobs, cfg->database_url);
    events_purge_job_add(jobs, cfg->event_retention_days, cfg->event_purge_interval_s);
    tf_idem_purge idem_purge = {.retention_s = cfg->idem_retention_s};
    tf_job idem_job = {"idempotency-purge", cfg->idem_purge_interval_s * 1000u,
                       tf_idem_purge_run, &idem_purge, 0};
    tf_jobs_add(jobs, &idem_job);
    if (!tf_jobs_start(jobs)) {
        fail(1, "cannot start background jobs");
        goto out;
    }
    srv = tf_server_start(&scfg, &deps, err, sizeof err);
    if (!srv) {
        fail(1, err);
        goto out;
    }
    if (cfg->metrics_host &&
        !(metrics = tf_metrics_listen(cfg->metrics_host, cfg->metrics_port, err, sizeof err))) {
        fail(1, err);
        tf_server_stop(srv, 0);
        goto out;
    }
    tf_log_json(TF_LOG_INFO, "listening",
                json_pack("{s:s, s:i, s:i, s:s, s:b, s:i, s:i}", "host", cfg->listen_host, "port",
                          tf_server_port(srv), "schema", schema, "version", TF_VERSION, "tls",
                          tls != NULL, "io_threads", cfg->threads, "db_connections",
                          cfg->pool_size));
    /* Safety check passed, schema version known, socket listening. */
    tf_notify("READY=1");
    for (;;) {
        int sig = 0;
        sigwait(&sigs, &sig);
        if (sig == SIGHUP) {
            reload(tls);
            continue;
        }
        tf_log(TF_LOG_INFO, "signal %d: finishing in-flight requests", sig);
        break;
    }
    tf_notify("STOPPING=1");
    tf_metrics_listener_stop(metrics);
    tf_server_stop(srv, 30);
    tf_log(TF_LOG_INFO, "stopped");
    rc = 0;
out:
    tf_jobs_free(jobs);
    events_shutdown();
    tf_router_free(router);
    tf_pool_free(pool);
    tf_ratelimit_free(limiter);
    tf_tls_free(tls);
    tf_keyset_free(keys);
    return rc;
}

static int migrate(const tf_config *cfg, const char *what)
{
    char err[1024];
    PGconn *c = tf_db_connect(cfg->migrate_url, err, sizeof err);
    if (!c)
        return fail(1, err);
    bool ok = strcmp(what, "up") == 0 ? tf_migrate_up(c, cfg->migrations_dir, err, sizeof err)
                                      : tf_migrate_status(c, cfg->migrations_dir, err, sizeof err);
    PQfinish(c);
    return ok ? 0 : fail(1, err);
}

static int operator_create(const tf_config *cfg, const char *name)
{
    char err[1024];
    PGconn *c = tf_db_connect(cfg->migrate_url, err, sizeof err);
    if (!c)
        return fail(1, err);
    bool ok = tenancy_operator_create(c, name, err, sizeof err);
    PQfinish(c);
    return ok ? 0 : fail(1, err);
}

static bool is_command(const char *cmd)
{
    static const char *const known[] = {"serve", "migrate", "operator", "keygen", "sql", "routes"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(cmd, known[i]) == 0)
            return true;
    return false;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "serve";
    if (strcmp(cmd, "--version") == 0) {
        printf("tenantflow %s\n", TF_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage();
        return 0;
    }
    if (strcmp(cmd, "routes") == 0)
        return print_routes();
    if (strcmp(cmd, "sql") == 0 && (argc == 3 || argc == 4)) {
        const char *sql = workflows_sql(argv[2], argc == 4 ? argv[3] : NULL);
        if (!sql && argc == 3)
            sql = events_sql(argv[2]);
        if (!sql)
            return fail(EXIT_USAGE, "sql: timer-scan | list-items [filter,...] | feed | feed-of-type");
        puts(sql);
        return 0;
    }
    if (tf_crypto_init() != 0)
        return fail(1, "libsodium failed to initialise");
    if (strcmp(cmd, "keygen") == 0) {
        char *line = tf_keyset_generate_line(argc > 2 ? argv[2] : "k1");
        if (!line)
            return fail(EXIT_USAGE, "a kid is 1-64 characters of [A-Za-z0-9._-]");
        fputs(line, stdout);
        free(line);
        return 0;
    }
    bool is_serve = strcmp(cmd, "serve") == 0;
    bool is_migrate = strcmp(cmd, "migrate") == 0 && argc == 3 &&
                      (strcmp(argv[2], "up") == 0 || strcmp(argv[2], "status") == 0);
    bool is_operator = strcmp(cmd, "operator") == 0 && argc >= 3 && argc <= 4 &&
                       strcmp(argv[2], "create") == 0;
    if (!is_serve && !is_migrate && !is_operator) {
        fprintf(stderr, "tenantflow: %s '%s'; `tenantflow --help` lists the commands\n",
                is_command(cmd) ? "wrong arguments for" : "unknown command", cmd);
        return EXIT_USAGE;
    }
    tf_config cfg;
    char err[512];
    if (!tf_config_load(&cfg, is_serve, err, sizeof err))
        return fail(EXIT_USAGE, err);
    if (is_migrate)
        return migrate(&cfg, argv[2]);
    if (is_operator)
        return operator_create(&cfg, argc == 4 ? argv[3] : "operator");
    return serve(&cfg);
}
