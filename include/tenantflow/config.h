/*
 * Configuration from environment variables only, validated once at start-up.
 * A bad value stops the program with a message naming the variable (exit 2).
 */
#ifndef TENANTFLOW_CONFIG_H
#define TENANTFLOW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

/* Where `make install` puts the migrations; the Makefile generates tf_paths.h
 * from PREFIX (the fallback is for builds outside the Makefile). */
#if defined(__has_include)
#if __has_include("tf_paths.h")
#include "tf_paths.h"
#endif
#endif
#ifndef TF_DEFAULT_MIGRATIONS_DIR
#define TF_DEFAULT_MIGRATIONS_DIR "/usr/local/share/tenantflow/migrations"
#endif

enum { TF_MAX_CORS_ORIGINS = 16 };

typedef struct tf_config {
    const char *database_url;   /* TENANTFLOW_DATABASE_URL (application role) */
    const char *migrate_url;    /* TENANTFLOW_MIGRATE_DATABASE_URL (owner), default database_url */
    const char *listen_host;    /* TENANTFLOW_LISTEN host part */
    int listen_port;            /* TENANTFLOW_LISTEN port part */
    int threads;                /* TENANTFLOW_THREADS */
    int pool_size;              /* TENANTFLOW_DB_POOL_SIZE */
    int pool_wait_ms;           /* TENANTFLOW_DB_POOL_WAIT_MS */
    int pool_max_waiters;       /* TENANTFLOW_DB_POOL_MAX_WAITERS */
    size_t max_body;            /* TENANTFLOW_MAX_BODY_BYTES */
    const char *signing_key;    /* TENANTFLOW_SIGNING_KEY (path) */
    int token_ttl_s;            /* TENANTFLOW_TOKEN_TTL */
    const char *migrations_dir; /* TENANTFLOW_MIGRATIONS_DIR */
    int log_level;              /* TENANTFLOW_LOG_LEVEL */
    unsigned timeout_s;         /* TENANTFLOW_IDLE_TIMEOUT */
    unsigned max_conns;         /* TENANTFLOW_MAX_CONNECTIONS */
    unsigned max_conns_per_ip;  /* TENANTFLOW_MAX_CONNECTIONS_PER_IP, 0: no limit */
    unsigned timer_interval_ms; /* TENANTFLOW_TIMER_INTERVAL_MS */
    bool webhook_allow_private; /* TENANTFLOW_WEBHOOK_ALLOW_PRIVATE */
    double webhook_retry_scale; /* TENANTFLOW_WEBHOOK_RETRY_SCALE */
    const char *tls_cert;       /* TENANTFLOW_TLS_CERT (PEM path) or NULL */
    const char *tls_key;        /* TENANTFLOW_TLS_KEY (PEM path) or NULL */
    bool metrics;               /* TENANTFLOW_METRICS on|off */
    const char *metrics_host;   /* TENANTFLOW_METRICS_LISTEN host part, or NULL: on LISTEN */
    int metrics_port;
    double rate_limit;          /* TENANTFLOW_RATE_LIMIT requests/s per credential, 0 = off */
    double rate_burst;          /* TENANTFLOW_RATE_LIMIT_BURST */
    size_t ncors;               /* TENANTFLOW_CORS_ORIGINS, split */
    const char *cors[TF_MAX_CORS_ORIGINS];
    int idem_retention_s;       /* TENANTFLOW_IDEMPOTENCY_RETENTION */
    unsigned idem_purge_interval_s; /* TENANTFLOW_IDEMPOTENCY_PURGE_INTERVAL */
    int event_retention_days;   /* TENANTFLOW_EVENT_RETENTION_DAYS */
    unsigned event_purge_interval_s; /* TENANTFLOW_EVENT_PURGE_INTERVAL */
    int login_fail_per_ip;      /* TENANTFLOW_LOGIN_FAILURES_PER_IP */
    int login_fail_per_account; /* TENANTFLOW_LOGIN_FAILURES_PER_ACCOUNT */
    int login_fail_window_s;    /* TENANTFLOW_LOGIN_FAILURE_WINDOW */
} tf_config;

/* Fills cfg from the environment; on a bad value writes a message naming the
 * variable into err and returns false. need_server: require and check the
 * variables only `serve` needs (signing key, TLS files). The strings point
 * into the environment or static storage and live as long as the process. */
bool tf_config_load(tf_config *cfg, bool need_server, char *err, size_t errsz) __attribute__((warn_unused_result));
/* Prints the variables and their defaults (for --help). */
void tf_config_usage(void);

#endif
