/*
 * Configuration from environment variables only, validated once at start-up.
 * A bad value stops the program with a message naming the variable (exit 2).
 */
#ifndef TENANTFLOW_CONFIG_H
#define TENANTFLOW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tf_config {
    const char *database_url;   /* TENANTFLOW_DATABASE_URL (application role) */
    const char *migrate_url;    /* TENANTFLOW_MIGRATE_DATABASE_URL (owner), default database_url */
    const char *listen_host;    /* TENANTFLOW_LISTEN host part */
    int listen_port;            /* TENANTFLOW_LISTEN port part */
    int threads;                /* TENANTFLOW_THREADS */
    int pool_size;              /* TENANTFLOW_DB_POOL_SIZE */
    int pool_wait_ms;           /* TENANTFLOW_DB_POOL_WAIT_MS */
    size_t max_body;            /* TENANTFLOW_MAX_BODY_BYTES */
    const char *signing_key;    /* TENANTFLOW_SIGNING_KEY (path) */
    int token_ttl_s;            /* TENANTFLOW_TOKEN_TTL */
    const char *migrations_dir; /* TENANTFLOW_MIGRATIONS_DIR */
    int log_level;              /* TENANTFLOW_LOG_LEVEL */
    unsigned timeout_s;         /* TENANTFLOW_IDLE_TIMEOUT */
    unsigned max_conns;         /* TENANTFLOW_MAX_CONNECTIONS */
    unsigned timer_interval_ms; /* TENANTFLOW_TIMER_INTERVAL_MS */
    bool webhook_allow_private; /* TENANTFLOW_WEBHOOK_ALLOW_PRIVATE */
    double webhook_retry_scale; /* TENANTFLOW_WEBHOOK_RETRY_SCALE */
} tf_config;

/* Fills cfg from the environment; on a bad value writes a message naming the
 * variable into err and returns false. need_server: require the variables
 * only `serve` needs (signing key). */
bool tf_config_load(tf_config *cfg, bool need_server, char *err, size_t errsz);
/* Prints the variables and their defaults (for --help). */
void tf_config_usage(void);

#endif
