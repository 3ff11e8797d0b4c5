/*
 * The webhook dispatcher: at least once, in order per subject, one active
 * dispatcher across all server processes.
 *
 * Leadership. The dispatcher keeps its own connection and holds the
 * session-level pg_try_advisory_lock(DISPATCH_LOCK) on it while the process
 * lives; other processes try again each round, so when the leader dies (its
 * connection closes, PostgreSQL drops the lock) another takes over.
 *
 * Work. A round first fans numbered events out into events.messages (one per
 * matching subscription, watermark in events.dispatch_state, one transaction,
 * so a crash repeats or keeps it whole), then sends due messages oldest
 * position first. events.due_messages() hands out at most the oldest pending
 * message per (subscription, subject), so an item's later event waits until
 * the earlier one is delivered or has failed for good.
 *
 * Each attempt is recorded after the HTTP exchange, in its own transaction.
 * A crash between a receiver's 2xx and that commit means the message is sent
 * again after restart, with the same webhook-id: that is the at-least-once
 * contract, and receivers de-duplicate on webhook-id.
 *
 * HTTP. libcurl, no redirects, no proxies, http/https only, 5 s to connect,
 * 10 s in all. The open-socket callback checks the address curl is about to
 * connect to against the SSRF policy (addr.c), whatever DNS said earlier.
 * Outcomes: 2xx delivered; 410 disables the subscription; anything else
 * (and network errors) retries on the schedule in events.c, waiting at least
 * as long as a Retry-After asks, and fails for good after the tenth attempt.
 */
#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "tenantflow/crypto.h"
#include "tenantflow/log.h"

#define DISPATCH_LOCK "7466000000000003"
enum { DUE_BATCH = 20, FAN_BATCH = 1000, MAX_ATTEMPTS = 10, MAX_RETRY_AFTER_S = 86400 };

static PGconn *leader;
static bool leading;
static char *dispatch_conninfo;

void events_dispatch_shutdown(void)
{
    PQfinish(leader);
    leader = NULL;
    leading = false;
    free(dispatch_conninfo);
    dispatch_conninfo = NULL;
}

/* True while this process holds the dispatcher lock on a live connection. */
static bool lead(const char *conninfo)
{
    if (leader && PQstatus(leader) == CONNECTION_OK) {
        PGresult *r = PQexec(leader, "SELECT 1");
        bool alive = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
        if (alive && leading)
            return true;
        if (!alive) {
            PQfinish(leader);
            leader = NULL;
        }
    } else if (leader) {
        PQfinish(leader);
        leader = NULL;
    }
    leading = false;
    if (!leader) {
        char err[256];
        leader = tf_db_connect(conninfo, err, sizeof err);
        if (!leader)
            return false;
    }
    PGresult *r = PQexec(leader, "SELECT pg_try_advisory_lock(" DISPATCH_LOCK ")");
    leading = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (leading)
        tf_log(TF_LOG_INFO, "webhook dispatcher: this process is now the active dispatcher");
    return leading;
}

static tf_stmt fan_out = TF_STMT("SELECT events.fan_out($1::integer)", 1);
static tf_stmt due = TF_STMT(
    "SELECT tenant_id::text, id::text, webhook_id::text, event_id::text, attempts, url,"
    " encode(secret_box, 'hex'), encode(secret_key_id, 'hex'), body"
    " FROM events.due_messages($1::integer)", 1);
static tf_stmt record_attempt = TF_STMT(
    "WITH a AS (INSERT INTO events.attempts (tenant_id, webhook_id, message_id, event_id, attempt,"
    "   status_code, error, duration_ms)"
    " VALUES (platform.current_tenant(), $1::uuid, $2::uuid, $3::uuid, $4::integer, $5::integer,"
    "   $6, $7::integer)),"
    " m AS (UPDATE events.messages SET attempts = $4::integer, status = $8,"
    "   next_attempt_at = now() + ($9::bigint * interval '1 millisecond')"
    " WHERE tenant_id = platform.current_tenant() AND id = $2::uuid AND status = 'pending'),"
    " d AS (UPDATE events.webhooks SET status = 'disabled', disabled_reason = $10,"
    "   version = version + 1"
    "   WHERE tenant_id = platform.current_tenant() AND id = $1::uuid AND status = 'active'"
    "   AND $10::text IS NOT NULL RETURNING id)"
    /* What a disabled webhook still had to send fails (re-enabling it sends
     * only what comes after). */
    " UPDATE events.messages SET status = 'failed'"
    " WHERE tenant_id = platform.current_tenant() AND webhook_id IN (SELECT id FROM d)"
    "   AND status = 'pending' AND id <> $2::uuid", 10);

struct message {
    char *tenant, *id, *webhook, *event, *url, *box, *key_id, *body;
    int attempts;
};

struct outcome {
    long status; /* 0: no HTTP response */
    char error[256];
    long duration_ms;
    long retry_after_s; /* -1: none */
};

static int fan_out_batch(tf_pool *pool)
{
    tf_arena *a = tf_arena_new();
    tf_problem p = {0};
    tf_tx_ctx ctx = {.actor = "system"};
    int n = -1;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", FAN_BATCH);
    const char *params[] = {lim};
    tf_tx *tx = tf_tx_begin(pool, a, &ctx, &p);
    PGresult *r = tx ? tf_tx_exec(tx, &fan_out, params, &p) : NULL;
    if (r && tf_tx_commit(tx, &p))
        n = (int)tf_val_int(r, 0, 0);
    if (tf_failed(&p))
        tf_log(TF_LOG_WARN, "webhook fan-out: %s %s", p.detail, p.log);
    tf_problem_clear(&p);
    tf_arena_free(a);
    return n;
}

/* Fetches up to DUE_BATCH due messages into msgs (heap copies). */
static int fetch_due(tf_pool *pool, struct message *msgs)
{
    tf_arena *a = tf_arena_new();
    tf_problem p = {0};
    tf_tx_ctx ctx = {.actor = "system"};
    int n = 0;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", DUE_BATCH);
    const char *params[] = {lim};
    tf_tx *tx = tf_tx_begin(pool, a, &ctx, &p);
    PGresult *r = tx ? tf_tx_exec(tx, &due, params, &p) : NULL;
    for (int i = 0; r && i < PQntuples(r) && i < DUE_BATCH; i++, n++) {
        struct message *m = &msgs[i];
        m->tenant = tf_xstrdup(tf_val(r, i, 0));
        m->id = tf_xstrdup(tf_val(r, i, 1));
        m->webhook = tf_xstrdup(tf_val(r, i, 2));
        m->event = tf_xstrdup(tf_val(r, i, 3));
        m->attempts = (int)tf_val_int(r, i, 4);
        m->url = tf_xstrdup(tf_val(r, i, 5));
        m->box = tf_xstrdup(tf_val(r, i, 6));
        m->key_id = tf_xstrdup(tf_val(r, i, 7));
        m->body = tf_xstrdup(tf_val(r, i, 8));
    }
    if (tf_failed(&p))
        tf_log(TF_LOG_WARN, "webhook dispatcher: %s %s", p.detail, p.log);
    tf_problem_clear(&p);
    tf_arena_free(a);
    return n;
}

static void free_message(struct message *m)
{
    free(m->tenant);
    free(m->id);
    free(m->webhook);
    free(m->event);
    free(m->url);
    free(m->box);
    free(m->key_id);
    free(m->body);
}

static curl_socket_t open_checked(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct outcome *o = clientp;
    (void)purpose;
    addr_class c = events_addr_class(&a->addr);
    if (!events_addr_allowed(c, events_cfg.allow_private)) {
        snprintf(o->error, sizeof o->error, "refused: the target resolved to a %s address",
                 c == ADDR_METADATA ? "metadata" : "private");
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

static size_t discard(char *ptr, size_t size, size_t n, void *ud)
{
    (void)ptr;
    (void)ud;
    return size * n;
}

static size_t header_line(char *buf, size_t size, size_t n, void *ud)
{
    struct outcome *o = ud;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof name && strncasecmp(buf, name, sizeof name - 1) == 0) {
        char val[64];
        size_t vl = len - (sizeof name - 1);
        if (vl >= sizeof val)
            vl = sizeof val - 1;
        memcpy(val, buf + sizeof name - 1, vl);
        val[vl] = '\0';
        char *end = NULL;
        long s = strtol(val, &end, 10);
        while (end && (*end == ' ' || *end == '\r' || *end == '\n'))
            end++;
        if (end && end != val && *end == '\0' && s >= 0) {
            o->retry_after_s = s;
        } else {
            time_t t = curl_getdate(val, NULL);
            if (t > 0)
                o->retry_after_s = t > time(NULL) ? (long)(t - time(NULL)) : 0;
        }
        if (o->retry_after_s > MAX_RETRY_AFTER_S)
            o->retry_after_s = MAX_RETRY_AFTER_S;
    }
    return len;
}

static void deliver(const struct message *m, const unsigned char secret[EVENTS_SECRET_BYTES],
                    struct outcome *o)
{
    long long ts = (long long)time(NULL);
    size_t body_len = strlen(m->body);
    char *sig = events_sign(secret, EVENTS_SECRET_BYTES, m->id, ts, m->body, body_len);
    char h_id[96], h_ts[64], h_sig[128];
    snprintf(h_id, sizeof h_id, "webhook-id: %s", m->id);
    snprintf(h_ts, sizeof h_ts, "webhook-timestamp: %lld", ts);
    snprintf(h_sig, sizeof h_sig, "webhook-signature: %s", sig);
    free(sig);
    struct curl_slist *hs = NULL;
    hs = curl_slist_append(hs, "Content-Type: application/json");
    hs = curl_slist_append(hs, h_id);
    hs = curl_slist_append(hs, h_ts);
    hs = curl_slist_append(hs, h_sig);
    hs = curl_slist_append(hs, "Expect:");
    CURL *c = curl_easy_init();
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, m->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, m->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "tenantflow-webhooks/1");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_checked);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, o);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_line);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, o);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CURLcode rc = curl_easy_perform(c);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    o->duration_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &o->status);
    } else if (!o->error[0]) {
        snprintf(o->error, sizeof o->error, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(hs);
}

/* False when the attempt could not be written: the message is still due. */
static bool record(tf_pool *pool, const struct message *m, int attempt, const struct outcome *o)
{
    const char *status = "pending", *disable = NULL;
    long long delay = 0;
    if (o->status >= 200 && o->status < 300) {
        status = "delivered";
    } else if (o->status == 410) {
        status = "failed";
        disable = "the receiver answered 410 Gone";
    } else {
        delay = events_retry_delay_ms(attempt + 1);
        if (delay < 0)
            status = "failed";
        else if (o->retry_after_s >= 0 && o->retry_after_s * 1000LL > delay)
            delay = o->retry_after_s * 1000LL;
    }
    if (strcmp(status, "delivered") != 0 && events_failed_attempts)
        tf_metrics_inc(events_failed_attempts, 1);
    char att[16], code[16], dur[24], del[24];
    snprintf(att, sizeof att, "%d", attempt);
    snprintf(code, sizeof code, "%ld", o->status);
    snprintf(dur, sizeof dur, "%ld", o->duration_ms);
    snprintf(del, sizeof del, "%lld", delay);
    const char *params[] = {m->webhook, m->id, m->event, att, o->status ? code : NULL,
                            o->error[0] ? o->error : NULL, dur, status, del, disable};
    tf_arena *a = tf_arena_new();
    tf_problem p = {0};
    tf_tx_ctx ctx = {.tenant_id = m->tenant, .actor = "system"};
    tf_tx *tx = tf_tx_begin(pool, a, &ctx, &p);
    bool ok = tx && tf_tx_exec(tx, &record_attempt, params, &p) && tf_tx_commit(tx, &p);
    if (!ok)
        tf_log(TF_LOG_WARN, "webhook dispatcher: cannot record attempt: %s %s", p.detail, p.log);
    tf_problem_clear(&p);
    tf_arena_free(a);
    return ok;
}

static bool send_one(tf_pool *pool, const struct message *m)
{
    struct outcome o = {.retry_after_s = -1};
    unsigned char secret[EVENTS_SECRET_BYTES];
    unsigned char box[128];
    size_t blen = 0;
    bool opened = strcmp(m->key_id, events_secret_key_id()) == 0 &&
                  sodium_hex2bin(box, sizeof box, m->box, strlen(m->box), NULL, &blen, NULL) == 0 &&
                  events_secret_open(m->webhook, box, blen, secret);
    if (!opened)
        snprintf(o.error, sizeof o.error,
                 "the signing secret was sealed under another signing key file; "
                 "re-create the webhook");
    else if (events_url_refusal(m->url, events_cfg.allow_private) != NULL)
        snprintf(o.error, sizeof o.error, "refused: %s",
                 events_url_refusal(m->url, events_cfg.allow_private));
    else
        deliver(m, secret, &o);
    sodium_memzero(secret, sizeof secret);
    return record(pool, m, m->attempts + 1, &o);
}

void events_dispatch_round(tf_pool *pool, void *arg)
{
    (void)arg;
    if (!dispatch_conninfo || !lead(dispatch_conninfo))
        return;
    while (fan_out_batch(pool) == FAN_BATCH && !events_stopping())
        continue;
    struct message msgs[DUE_BATCH];
    /* An attempt that cannot be recorded leaves its message due: the round
     * ends there, or the same message would be sent again at once, over and
     * over, for as long as the database refuses (the next round retries). */
    bool recorded = true;
    for (int rounds = 0; rounds < 1000; rounds++) {
        int n = fetch_due(pool, msgs);
        for (int i = 0; i < n; i++) {
            if (recorded && !events_stopping())
                recorded = send_one(pool, &msgs[i]);
            free_message(&msgs[i]);
        }
        if (n == 0 || !recorded || events_stopping())
            break;
        (void)fan_out_batch(pool);
    }
}

void events_dispatch_set_conninfo(const char *conninfo)
{
    free(dispatch_conninfo);
    dispatch_conninfo = tf_xstrdup(conninfo);
}
