/*
 * The Idempotency-Key store (see idem.h).
 *
 * The one thing to know: the claim is a row inserted in the request's own
 * transaction, so it becomes visible to others only when the effect commits,
 * together with the stored outcome; a rolled-back or killed request leaves no
 * trace and its retry runs. Because an uncommitted claim would make a rival
 * INSERT wait on its row lock, the claim first takes a transaction-scoped
 * advisory lock on a hash of (tenant, principal, key) without waiting: when
 * someone holds it, the request is answered 409 at once.
 */
#include "tenantflow/idem.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tenantflow/log.h"

enum { PURGE_BATCH = 5000 };

bool tf_idem_key_valid(const char *key)
{
    size_t n = 0;
    for (; key[n]; n++)
        if (n >= TF_IDEM_KEY_MAX || key[n] < 0x21 || key[n] > 0x7e)
            return false;
    return n > 0;
}

static void hash_part(crypto_generichash_state *st, const void *data, size_t len)
{
    unsigned char n[8];
    for (int i = 0; i < 8; i++)
        n[i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    crypto_generichash_update(st, n, sizeof n);
    if (len)
        crypto_generichash_update(st, data, len);
}

void tf_idem_fingerprint(const char *method, const char *path, const char *body, size_t len,
                         unsigned char out[TF_IDEM_FP_BYTES])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, TF_IDEM_FP_BYTES);
    hash_part(&st, method, strlen(method));
    hash_part(&st, path, strlen(path));
    hash_part(&st, body, body ? len : 0);
    crypto_generichash_final(&st, out, TF_IDEM_FP_BYTES);
}

bool tf_idem_storable(int status)
{
    return (status >= 200 && status < 300) || status == 409 || status == 412 || status == 422;
}

/* The advisory lock id of a scope and key: 64 bits of BLAKE2b, as text. */
static void lock_id(const tf_idem_scope *s, char out[24])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, (const unsigned char *)"tenantflow-idem", 15, 8);
    const char *tenant = s->tenant_id ? s->tenant_id : "";
    hash_part(&st, tenant, strlen(tenant));
    hash_part(&st, s->principal, strlen(s->principal));
    hash_part(&st, s->key, strlen(s->key));
    unsigned char h[8];
    crypto_generichash_final(&st, h, sizeof h);
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = (u << 8) | h[i];
    snprintf(out, 24, "%lld", (long long)(int64_t)u);
}

static void fp_hex(const unsigned char fp[TF_IDEM_FP_BYTES], char out[2 * TF_IDEM_FP_BYTES + 3])
{
    out[0] = '\\';
    out[1] = 'x';
    sodium_bin2hex(out + 2, 2 * TF_IDEM_FP_BYTES + 1, fp, TF_IDEM_FP_BYTES);
}

/* One set of statements per table; $1 tenant (tenant table only), then
 * principal, key, and the statement's own parameters. */
struct stmts {
    tf_stmt claim, lookup, store;
};

static struct stmts tenant_stmts = {
    TF_STMT("INSERT INTO idem.keys (tenant_id, principal, key, fingerprint)"
            " VALUES ($1::uuid, $2, $3, $4::bytea) ON CONFLICT DO NOTHING RETURNING 1", 4),
    TF_STMT("SELECT fingerprint = $4::bytea, status, content_type, headers->>'Location',"
            " headers->>'ETag', body FROM idem.keys"
            " WHERE tenant_id = $1::uuid AND principal = $2 AND key = $3", 4),
    TF_STMT("UPDATE idem.keys SET status = $4::smallint, content_type = $5,"
            " headers = jsonb_strip_nulls(jsonb_build_object('Location', $6::text, 'ETag', $7::text)),"
            " body = $8 WHERE tenant_id = $1::uuid AND principal = $2 AND key = $3", 8),
};

/* Operator scope: no tenant column; $1 is accepted and ignored so both sets
 * take the same parameter list. */
static struct stmts operator_stmts = {
    TF_STMT("INSERT INTO idem.operator_keys (principal, key, fingerprint)"
            " SELECT $2, $3, $4::bytea WHERE $1::uuid IS NULL"
            " ON CONFLICT DO NOTHING RETURNING 1", 4),
    TF_STMT("SELECT fingerprint = $4::bytea, status, content_type, headers->>'Location',"
            " headers->>'ETag', body FROM idem.operator_keys"
            " WHERE $1::uuid IS NULL AND principal = $2 AND key = $3", 4),
    TF_STMT("UPDATE idem.operator_keys SET status = $4::smallint, content_type = $5,"
            " headers = jsonb_strip_nulls(jsonb_build_object('Location', $6::text, 'ETag', $7::text)),"
            " body = $8 WHERE $1::uuid IS NULL AND principal = $2 AND key = $3", 8),
};

static tf_stmt try_lock = TF_STMT("SELECT pg_try_advisory_xact_lock($1::bigint)", 1);

static struct stmts *stmts_for(const tf_idem_scope *s)
{
    return s->tenant_id ? &tenant_stmts : &operator_stmts;
}

static void in_progress(tf_problem *p)
{
    tf_problem_set(p, TF_PB_IN_PROGRESS,
                   "A request with this Idempotency-Key is still running; retry shortly.");
    p->retry_after = 1;
}

static char *dup_val(tf_arena *arena, const PGresult *r, int col)
{
    const char *v = tf_val(r, 0, col);
    return v ? tf_arena_strdup(arena, v) : NULL;
}

tf_idem_claim_result tf_idem_claim(tf_tx *tx, tf_arena *arena, const tf_idem_scope *scope,
                                   const unsigned char fp[TF_IDEM_FP_BYTES],
                                   tf_idem_response *stored, tf_problem *p)
{
    char lock[24];
    lock_id(scope, lock);
    const char *lp[] = {lock};
    PGresult *r = tf_tx_exec(tx, &try_lock, lp, p);
    if (!r)
        return TF_IDEM_FAILED;
    if (!tf_val_bool(r, 0, 0)) {
        in_progress(p);
        return TF_IDEM_FAILED;
    }
    /* Nobody else is running this key now: a visible row is committed. */
    char hex[2 * TF_IDEM_FP_BYTES + 3];
    fp_hex(fp, hex);
    const char *params[] = {scope->tenant_id, scope->principal, scope->key, hex};
    struct stmts *st = stmts_for(scope);
    r = tf_tx_exec(tx, &st->claim, params, p);
    if (!r)
        return TF_IDEM_FAILED;
    if (PQntuples(r) == 1)
        return TF_IDEM_FRESH;
    r = tf_tx_exec(tx, &st->lookup, params, p);
    if (!r)
        return TF_IDEM_FAILED;
    if (PQntuples(r) != 1 || !tf_val(r, 0, 1)) {
        /* Committed before our snapshot could see it, or an outcome-less
         * row: either way not replayable yet. */
        in_progress(p);
        return TF_IDEM_FAILED;
    }
    if (!tf_val_bool(r, 0, 0)) {
        tf_problem_set(p, TF_PB_IDEMPOTENCY_MISMATCH,
                       "This Idempotency-Key was already used with a different method, path "
                       "or body; use a new key for a new request.");
        return TF_IDEM_FAILED;
    }
    memset(stored, 0, sizeof *stored);
    stored->status = (int)tf_val_int(r, 0, 1);
    stored->content_type = dup_val(arena, r, 2);
    stored->location = dup_val(arena, r, 3);
    stored->etag = dup_val(arena, r, 4);
    stored->body = dup_val(arena, r, 5);
    stored->body_len = stored->body ? strlen(stored->body) : 0;
    return TF_IDEM_REPLAY;
}

bool tf_idem_store(tf_tx *tx, const tf_idem_scope *scope, const tf_idem_response *resp,
                   tf_problem *p)
{
    char status[8];
    snprintf(status, sizeof status, "%d", resp->status);
    char *body = resp->body ? tf_xstrndup(resp->body, resp->body_len) : NULL;
    const char *params[] = {scope->tenant_id, scope->principal, scope->key, status,
                            resp->content_type, resp->location, resp->etag, body};
    PGresult *r = tf_tx_exec_one(tx, &stmts_for(scope)->store, params,
                                 "the idempotency claim vanished", p);
    free(body);
    if (!r && p->kind == TF_PB_NOT_FOUND)
        tf_problem_internal(p, "idempotency claim not found at store time");
    return r != NULL;
}

static tf_stmt purge_stmt = TF_STMT("SELECT idem.purge($1::integer, $2::integer)", 2);

void tf_idem_purge_run(tf_pool *pool, void *arg)
{
    const tf_idem_purge *cfg = arg;
    char retention[16], batch[16];
    snprintf(retention, sizeof retention, "%d", cfg->retention_s);
    snprintf(batch, sizeof batch, "%d", PURGE_BATCH);
    long long total = 0, n = PURGE_BATCH;
    while (n >= PURGE_BATCH) {
        tf_arena *arena = tf_arena_new();
        tf_problem p = {0};
        tf_tx_ctx ctx = {.actor = "system", .request_id = ""};
        tf_tx *tx = tf_tx_begin(pool, arena, &ctx, &p);
        const char *params[] = {retention, batch};
        PGresult *r = tx ? tf_tx_exec(tx, &purge_stmt, params, &p) : NULL;
        n = r ? tf_val_int(r, 0, 0) : 0;
        if (r && !tf_tx_commit(tx, &p))
            n = 0;
        else if (r)
            total += n;
        if (tf_failed(&p))
            tf_log(TF_LOG_WARN, "idempotency purge failed: %s", p.log[0] ? p.log : p.detail);
        tf_problem_clear(&p);
        tf_arena_free(arena);
    }
    if (total)
        tf_log_json(TF_LOG_INFO, "idempotency keys purged", json_pack("{s:I}", "deleted",
                                                                      (json_int_t)total));
}
