/*
 * The transactional outbox and the event feed (see events.h).
 *
 * The one thing to know: an event's feed position is not its id. Ids are
 * handed out when a transaction inserts, positions only after it commits (by
 * the sequencer, sequencer.c), in batches that become visible in increasing
 * order. A consumer that stores next_cursor (a position) and polls with it
 * therefore never misses an event, however long its transaction ran.
 *
 * events_publish also NOTIFYs EVENTS_CHANNEL in the publishing transaction;
 * PostgreSQL delivers the notification at commit, which wakes the sequencer
 * (and, after it, the webhook dispatcher) in every server process.
 */
#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tenantflow/cursor.h"
#include "tenantflow/dbgauge.h"
#include "tenantflow/log.h"
#include "tenantflow/metrics.h"

events_config events_cfg = {false, 1.0};
tf_metric *events_failed_attempts;

enum { MAX_SUBSCRIBERS = 8 };
static events_subscriber subscribers[MAX_SUBSCRIBERS];
static size_t nsubscribers;

void events_subscribe(events_subscriber fn)
{
    if (nsubscribers < MAX_SUBSCRIBERS)
        subscribers[nsubscribers++] = fn;
}

static tf_stmt insert_event = TF_STMT(
    "WITH e AS (INSERT INTO events.outbox (tenant_id, type, subject_id, actor_type, actor_id, data)"
    " VALUES (platform.current_tenant(), $1, $2, $3, $4, $5::jsonb) RETURNING 1)"
    " SELECT pg_notify('" EVENTS_CHANNEL "', '') FROM e", 5);

bool events_publish(tf_tx *tx, const tf_origin *o, const char *type, const char *subject_id,
                    const json_t *data, tf_problem *p)
{
    char *text = tf_json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
    const char *params[] = {type, subject_id, tf_actor_type_name(o->actor_type), o->actor_id,
                            text ? text : "null"};
    /* Written with the COMMIT (same transaction, one round trip). */
    tf_tx_defer(tx, &insert_event, params);
    free(text);
    for (size_t i = 0; i < nsubscribers; i++)
        if (!subscribers[i](tx, type, subject_id, data, p))
            return false;
    return true;
}

/* ---- GET /v1/events ----------------------------------------------------- */

/* One statement per filter set, each a page of a subquery capped by a
 * constant, so that PostgreSQL can cost it and keeps one plan instead of
 * planning every poll (see the list of items, workflows/list.c): a catch-all
 * "$2 IS NULL OR type = $2" could not use the type's index in a kept plan. */
#define FEED_PAGE(filter)                                                                  \
    "SELECT * FROM (SELECT o.position, events.render(o) FROM events.outbox o"             \
    " WHERE o.tenant_id = platform.current_tenant() AND o.position > $1::bigint" filter   \
    " ORDER BY o.position LIMIT 200) page LIMIT $2::integer"
_Static_assert(TF_LIMIT_MAX == 200, "FEED_PAGE caps a page at TF_LIMIT_MAX");
static tf_stmt feed_all = TF_STMT(FEED_PAGE(""), 2);
static tf_stmt feed_of_type = TF_STMT(FEED_PAGE(" AND o.type = $3"), 3);

const char *events_sql(const char *name)
{
    return strcmp(name, "feed") == 0           ? feed_all.sql
           : strcmp(name, "feed-of-type") == 0 ? feed_of_type.sql
                                               : NULL;
}

void events_feed(tf_req *req)
{
    tf_problem *p = tf_req_problem(req);
    int limit;
    if (!tf_parse_limit(tf_req_query(req, "limit"), &limit, p))
        limit = 50; /* the error is collected; keep validating the rest */
    const char *type = tf_req_query(req, "type");
    if (type && (strlen(type) == 0 || strlen(type) > 100))
        tf_problem_bad_param(p, "type", "must be 1 to 100 characters");
    const char *scope = tf_arena_printf(tf_req_arena(req), "%s|events|%s",
                                        tf_tx_tenant(tf_req_tx(req)), type ? type : "");
    json_int_t pos = 0;
    const char *cursor = tf_req_query(req, "cursor");
    if (cursor && !tf_failed(p)) {
        json_t *c = tf_cursor_decode(scope, cursor, p);
        json_t *v = json_object_get(c, "p");
        if (c && (!json_is_integer(v) || json_integer_value(v) < 0))
            tf_problem_bad_param(p, "cursor", "not a cursor issued by this endpoint");
        else if (c)
            pos = json_integer_value(v);
        json_decref(c);
    }
    if (tf_failed(p))
        return;
    char after[24], lim[16];
    snprintf(after, sizeof after, "%lld", (long long)pos);
    snprintf(lim, sizeof lim, "%d", limit);
    const char *params[] = {after, lim, type};
    PGresult *r = tf_tx_exec(tf_req_tx(req), type ? &feed_of_type : &feed_all, params, p);
    if (!r)
        return;
    int n = PQntuples(r);
    if (n > 0)
        pos = (json_int_t)tf_val_int(r, n - 1, 0);
    /* next_cursor is never null: the position after the last event listed. */
    json_t *c = json_pack("{s:I}", "p", pos);
    char *enc = tf_cursor_encode(scope, c);
    json_decref(c);
    tf_reply_list(req, r, 1, n, enc);
    free(enc);
}

/* ---- secrets, signatures, retry schedule -------------------------------- */

static unsigned char secret_key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
static char secret_key_id[2 * EVENTS_KEY_ID_BYTES + 1];

void events_init(const unsigned char *material, size_t len, const events_config *cfg)
{
    static const char label[] = "tenantflow-webhook-secret-v1";
    crypto_generichash(secret_key, sizeof secret_key, material, len,
                       (const unsigned char *)label, sizeof label - 1);
    unsigned char id[EVENTS_KEY_ID_BYTES];
    crypto_generichash(id, sizeof id, secret_key, sizeof secret_key, NULL, 0);
    static const char hexd[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof id; i++) {
        secret_key_id[2 * i] = hexd[id[i] >> 4];
        secret_key_id[2 * i + 1] = hexd[id[i] & 15];
    }
    if (cfg)
        events_cfg = *cfg;
}

const char *events_secret_key_id(void)
{
    return secret_key_id;
}

char *events_secret_seal(const char *webhook_id, const unsigned char secret[EVENTS_SECRET_BYTES])
{
    enum { NONCE = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
           MAC = crypto_aead_xchacha20poly1305_ietf_ABYTES };
    unsigned char box[NONCE + EVENTS_SECRET_BYTES + MAC];
    randombytes_buf(box, NONCE);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(box + NONCE, &clen, secret, EVENTS_SECRET_BYTES,
                                               (const unsigned char *)webhook_id,
                                               strlen(webhook_id), NULL, box, secret_key);
    char *hex = tf_xmalloc(2 * sizeof box + 1);
    sodium_bin2hex(hex, 2 * sizeof box + 1, box, sizeof box);
    return hex;
}

bool events_secret_open(const char *webhook_id, const unsigned char *box, size_t len,
                        unsigned char secret[EVENTS_SECRET_BYTES])
{
    enum { NONCE = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
           MAC = crypto_aead_xchacha20poly1305_ietf_ABYTES };
    unsigned long long mlen = 0;
    if (len != NONCE + EVENTS_SECRET_BYTES + MAC)
        return false;
    return crypto_aead_xchacha20poly1305_ietf_decrypt(
               secret, &mlen, NULL, box + NONCE, len - NONCE, (const unsigned char *)webhook_id,
               strlen(webhook_id), box, secret_key) == 0 &&
           mlen == EVENTS_SECRET_BYTES;
}

char *events_sign(const unsigned char *secret, size_t secret_len, const char *id,
                  long long timestamp, const char *body, size_t body_len)
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, secret, secret_len);
    char ts[24];
    int tn = snprintf(ts, sizeof ts, "%lld", timestamp);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)id, strlen(id));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, (size_t)tn);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, body_len);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_final(&st, mac);
    size_t b64 = sodium_base64_ENCODED_LEN(sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    char *out = tf_xmalloc(3 + b64);
    memcpy(out, "v1,", 3);
    sodium_bin2base64(out + 3, b64, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    return out;
}

/* Standard Webhooks' example schedule: the delay before attempts 2..10. */
static const long long schedule_s[] = {5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400};

long long events_retry_delay_ms(int next)
{
    if (next < 2 || next > 10)
        return -1;
    double base = (double)schedule_s[next - 2] * 1000.0 * events_cfg.retry_scale;
    double jitter = 0.8 + 0.4 * ((double)randombytes_uniform(1000001) / 1000000.0);
    return (long long)(base * jitter);
}

/* ---- routes and jobs ---------------------------------------------------- */

static const tf_route routes[] = {
    {"GET", "/v1/events", "events:read", events_feed, "cursor,type,limit",
     "The tenant's events in commit order; poll with next_cursor", 0, NULL},
    {"POST", "/v1/webhooks", "webhooks:write", webhooks_create, NULL,
     "Subscribe a URL to events (the signing secret is shown once)", TF_ROUTE_SECRET, NULL},
    {"GET", "/v1/webhooks", "webhooks:write", webhooks_list, "limit,cursor",
     "List webhook subscriptions", 0, NULL},
    {"GET", "/v1/webhooks/{id}", "webhooks:write", webhooks_get, NULL,
     "Get a webhook subscription (never its secret)", 0, NULL},
    {"PATCH", "/v1/webhooks/{id}", "webhooks:write", webhooks_patch, NULL,
     "Change a webhook's URL or event types, or disable or re-enable it", 0, NULL},
    {"DELETE", "/v1/webhooks/{id}", "webhooks:write", webhooks_delete, NULL,
     "Delete a webhook subscription", 0, NULL},
    {"GET", "/v1/webhooks/{id}/deliveries", "webhooks:write", webhooks_deliveries,
     "limit,cursor", "A webhook's delivery attempts, newest first", 0, NULL},
};

bool events_register(tf_router *r, char *err, size_t errsz)
{
    return tf_router_add_all(r, routes, sizeof routes / sizeof *routes, err, errsz);
}

/* Woken by every committed event: at most one round per SEQ_GAP_MS, so under
 * load a round numbers a batch instead of a handful (each round has a fixed
 * cost: a transaction, two state rows, a NOTIFY). */
enum { SEQ_GAP_MS = 20 };
static const tf_job sequencer = {"events.sequencer", 250, events_sequence_round, NULL,
                                 SEQ_GAP_MS};
static const tf_job listener = {"events.listener", 0, events_listen_round, NULL, 0};
static const tf_job dispatcher = {"webhooks.dispatcher", 1000, events_dispatch_round, NULL,
                                  SEQ_GAP_MS};

static tf_stmt metrics_stmt = TF_STMT("SELECT * FROM events.metrics()", 0);

void events_metrics_add(tf_pool *pool)
{
    static const tf_dbgauge_column columns[] = {
        {"tf_outbox_unsequenced_events", "Committed events still waiting for a feed position."},
        {"tf_outbox_lag_seconds", "Age of the oldest event still waiting for a feed position."},
        {"tf_webhook_messages_pending", "Webhook messages not yet delivered or failed."},
        {"tf_webhook_delivery_lag_seconds",
         "How long the most overdue webhook message has been due."},
    };
    tf_dbgauge_add(pool, &metrics_stmt, columns, 4);
    events_failed_attempts = tf_metrics_counter(
        "tf_webhook_failed_attempts_total",
        "Webhook delivery attempts that did not get a 2xx (each retry counts).");
}

static tf_stmt purge_stmt = TF_STMT("SELECT events.purge($1::integer)", 1);

static void purge_round(tf_pool *pool, void *arg)
{
    const int *days = arg;
    char d[16];
    snprintf(d, sizeof d, "%d", *days);
    const char *params[] = {d};
    tf_arena *a = tf_arena_new();
    tf_problem p = {0};
    tf_tx_ctx ctx = {.actor = "system"};
    tf_tx *tx = tf_tx_begin(pool, a, &ctx, &p);
    PGresult *r = tx ? tf_tx_exec(tx, &purge_stmt, params, &p) : NULL;
    if (r && tf_tx_commit(tx, &p) && tf_val_int(r, 0, 0) > 0)
        tf_log(TF_LOG_INFO, "event retention: purged %lld rows", tf_val_int(r, 0, 0));
    if (tf_failed(&p))
        tf_log(TF_LOG_WARN, "event retention: %s %s", p.detail, p.log);
    tf_problem_clear(&p);
    tf_arena_free(a);
}

void events_purge_job_add(tf_jobs *jobs, int retention_days, unsigned interval_s)
{
    static int days;
    static tf_job job = {"event-retention", 0, purge_round, &days, 0};
    days = retention_days;
    job.interval_ms = interval_s * 1000u;
    tf_jobs_add(jobs, &job);
}

void events_jobs_add(tf_jobs *jobs, const char *conninfo)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    events_listen_set_jobs(jobs, conninfo);
    events_dispatch_set_conninfo(conninfo);
    tf_jobs_add(jobs, &sequencer);
    tf_jobs_add(jobs, &listener);
    tf_jobs_add(jobs, &dispatcher);
}

void events_shutdown(void)
{
    events_listen_shutdown();
    events_dispatch_shutdown();
    curl_global_cleanup();
}
