/*
 * Audit records: written in the caller's transaction (see audit.h), listed
 * with filters and keyset paging, and verified against the hash chain.
 *
 * The chain. Each tenant's sealed records form a chain: record number seq
 * (1, 2, 3, ... in seal order) has hash = BLAKE2b-256 over a domain label,
 * the previous record's hash, seq and the canonical encoding of the record
 * (audit_chain_hash, fields listed in internal.h: fixed order, each one
 * length-prefixed so no two different records encode alike, NULL distinct
 * from ""). Seals live in audit.seals, written by the sealer (sealer.c);
 * records themselves are never updated. Verification recomputes every hash
 * from the stored record and compares: an edited record, a deleted record, a
 * gap in the sequence or a cut-off tail (audit.chain_heads) is reported at the
 * first record where it shows.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tenantflow/crypto.h"
#include "tenantflow/cursor.h"
#include "tenantflow/text.h"

static tf_stmt insert_record = TF_STMT(
    "INSERT INTO audit.records (tenant_id, actor_type, actor_id, action, resource_type,"
    " resource_id, request_id, client_ip, changes)"
    " VALUES (platform.current_tenant(), $1, $2, $3, $4, $5, $6, $7, $8::jsonb)", 8);

bool audit_changed(json_t *before, json_t *after, const char *field, const char *old_value,
                   const char *new_value)
{
    if (!new_value || (old_value && strcmp(old_value, new_value) == 0))
        return false;
    json_object_set_new(before, field, old_value ? json_string(old_value) : json_null());
    json_object_set_new(after, field, json_string(new_value));
    return true;
}

bool audit_record(tf_tx *tx, const tf_origin *o, const audit_entry *e, tf_problem *p)
{
    json_t *changes = json_object();
    if (e->before)
        json_object_set(changes, "before", (json_t *)(uintptr_t)e->before);
    if (e->after)
        json_object_set(changes, "after", (json_t *)(uintptr_t)e->after);
    char *text = tf_json_dumps(changes, JSON_COMPACT);
    json_decref(changes);
    const char *params[] = {tf_actor_type_name(o->actor_type), o->actor_id, e->action,
                            e->resource_type, e->resource_id, o->request_id, o->client_ip,
                            text};
    /* Written with the COMMIT (same transaction, one round trip): if it
     * fails, the commit and so the change fail. */
    (void)p;
    tf_tx_defer(tx, &insert_record, params);
    free(text);
    return true;
}

static void put_u32(crypto_generichash_state *st, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    crypto_generichash_update(st, b, sizeof b);
}

void audit_chain_hash(const unsigned char prev[AUDIT_HASH_BYTES], long long seq,
                      const char *const fields[AUDIT_NFIELDS], unsigned char out[AUDIT_HASH_BYTES])
{
    static const char label[] = "tenantflow-audit-v1";
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, AUDIT_HASH_BYTES);
    crypto_generichash_update(&st, (const unsigned char *)label, sizeof label - 1);
    crypto_generichash_update(&st, prev, AUDIT_HASH_BYTES);
    uint64_t s = (uint64_t)seq;
    put_u32(&st, (uint32_t)(s >> 32));
    put_u32(&st, (uint32_t)s);
    for (int i = 0; i < AUDIT_NFIELDS; i++) {
        if (!fields[i]) {
            put_u32(&st, 0xFFFFFFFFu);
            continue;
        }
        size_t n = strlen(fields[i]);
        put_u32(&st, (uint32_t)n);
        crypto_generichash_update(&st, (const unsigned char *)fields[i], n);
    }
    crypto_generichash_final(&st, out, AUDIT_HASH_BYTES);
}

/* ---- GET /v1/audit ------------------------------------------------------ */

static tf_stmt list_records = TF_STMT(
    "SELECT r.id, jsonb_build_object('id', r.id, 'occurred_at', platform.rfc3339(r.occurred_at),"
    "   'actor', jsonb_build_object('type', r.actor_type, 'id', r.actor_id),"
    "   'action', r.action, 'resource', jsonb_build_object('type', r.resource_type,"
    "   'id', r.resource_id), 'request_id', r.request_id, 'client_ip', r.client_ip,"
    "   'changes', r.changes)::text"
    " FROM audit.records r WHERE r.tenant_id = platform.current_tenant()"
    " AND ($1::text IS NULL OR r.actor_id = $1) AND ($2::text IS NULL OR r.action = $2)"
    " AND ($3::text IS NULL OR r.resource_type = $3) AND ($4::text IS NULL OR r.resource_id = $4)"
    " AND ($5::timestamptz IS NULL OR r.occurred_at >= $5::timestamptz)"
    " AND ($6::timestamptz IS NULL OR r.occurred_at < $6::timestamptz)"
    " AND ($7::uuid IS NULL OR r.id < $7::uuid)"
    " ORDER BY r.id DESC LIMIT $8::integer", 8);

static const char *const filter_names[] = {"actor", "action", "resource_type", "resource_id",
                                           "since", "until"};
enum { NFILTERS = 6 };

/* Newest first; the cursor holds the last id shown and is bound to the
 * tenant and the exact filter set. */
void audit_list(tf_req *req)
{
    tf_problem *p = tf_req_problem(req);
    int limit;
    if (!tf_parse_limit(tf_req_query(req, "limit"), &limit, p))
        limit = 50; /* the error is collected; keep validating the rest */
    const char *f[NFILTERS];
    json_t *scope_obj = json_object();
    for (int i = 0; i < NFILTERS; i++) {
        f[i] = tf_req_query(req, filter_names[i]);
        if (!f[i])
            continue;
        json_object_set_new(scope_obj, filter_names[i], json_string(f[i]));
        if (i >= 4 && !tf_parse_rfc3339(f[i], NULL))
            tf_problem_bad_param(p, filter_names[i], "must be an RFC 3339 date-time");
        else if (strlen(f[i]) == 0 || strlen(f[i]) > 200)
            tf_problem_bad_param(p, filter_names[i], "must be 1 to 200 characters");
    }
    char *filters = tf_json_dumps(scope_obj, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(scope_obj);
    const char *scope = tf_arena_printf(tf_req_arena(req), "%s|audit|%s",
                                        tf_tx_tenant(tf_req_tx(req)), filters);
    free(filters);
    const char *after = NULL;
    const char *cursor = tf_req_query(req, "cursor");
    if (cursor && !tf_failed(p)) {
        json_t *pos = tf_cursor_decode(scope, cursor, p);
        const char *a = json_string_value(json_object_get(pos, "a"));
        if (pos && (!a || !tf_uuid_parse_ok(a, strlen(a))))
            tf_problem_bad_param(p, "cursor", "not a cursor issued by this endpoint");
        else if (pos)
            after = tf_arena_strdup(tf_req_arena(req), a);
        json_decref(pos);
    }
    if (tf_failed(p))
        return;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit + 1);
    const char *params[] = {f[0], f[1], f[2], f[3], f[4], f[5], after, lim};
    PGresult *r = tf_tx_exec(tf_req_tx(req), &list_records, params, p);
    if (!r)
        return;
    tf_reply_page(req, r, 1, limit, scope, "a", 0);
}

/* ---- GET /v1/audit/verify ----------------------------------------------- */

enum { VERIFY_BATCH = 1000 };

static tf_stmt chain_batch = TF_STMT(
    "SELECT s.seq, s.record_id::text, encode(s.hash, 'hex'), r.id IS NOT NULL, "
    AUDIT_CANON_COLUMNS
    " FROM audit.seals s LEFT JOIN audit.records r"
    "   ON r.tenant_id = s.tenant_id AND r.id = s.record_id"
    " WHERE s.tenant_id = platform.current_tenant() AND s.seq > $1::bigint"
    " AND s.seq <= $3::bigint ORDER BY s.seq LIMIT $2::integer", 3);
static tf_stmt chain_head = TF_STMT(
    "SELECT seq, encode(hash, 'hex') FROM audit.chain_heads"
    " WHERE tenant_id = platform.current_tenant()", 0);

static void reply_verify(tf_req *req, long long checked, const char *id, const char *reason)
{
    if (!reason) {
        tf_reply_json(req, 200, json_pack("{s:b, s:I}", "ok", 1, "checked", (json_int_t)checked));
        return;
    }
    tf_reply_json(req, 200, json_pack("{s:b, s:I, s:{s:s?, s:s}}", "ok", 0, "checked",
                                      (json_int_t)checked, "broken_at", "id", id, "reason",
                                      reason));
}

/* The head is read first: the sealer writes seals and head together, so
 * every seal up to the head's seq is visible to the later statements, while
 * seals added meanwhile are left for the next verification. */
void audit_verify(tf_req *req)
{
    tf_problem *p = tf_req_problem(req);
    tf_tx *tx = tf_req_tx(req);
    PGresult *head = tf_tx_exec(tx, &chain_head, NULL, p);
    if (!head)
        return;
    long long head_seq = PQntuples(head) ? tf_val_int(head, 0, 0) : 0;
    const char *head_hex = PQntuples(head) ? tf_val(head, 0, 1) : "";
    unsigned char prev[AUDIT_HASH_BYTES] = {0};
    char prev_hex[2 * AUDIT_HASH_BYTES + 1] = "";
    char upto[24];
    snprintf(upto, sizeof upto, "%lld", head_seq);
    long long seq = 0, checked = 0;
    for (;;) {
        char after[24], lim[16];
        snprintf(after, sizeof after, "%lld", seq);
        snprintf(lim, sizeof lim, "%d", VERIFY_BATCH);
        const char *params[] = {after, lim, upto};
        PGresult *r = tf_tx_exec(tx, &chain_batch, params, p);
        if (!r)
            return;
        int n = PQntuples(r);
        for (int i = 0; i < n; i++) {
            const char *id = tf_val(r, i, 1);
            if (tf_val_int(r, i, 0) != seq + 1) {
                reply_verify(req, checked, id, "sequence gap: a sealed record is missing before this one");
                return;
            }
            if (!tf_val_bool(r, i, 3)) {
                reply_verify(req, checked, id, "sealed record was deleted");
                return;
            }
            const char *fields[AUDIT_NFIELDS];
            for (int k = 0; k < AUDIT_NFIELDS; k++)
                fields[k] = tf_val(r, i, 4 + k);
            unsigned char h[AUDIT_HASH_BYTES];
            audit_chain_hash(prev, seq + 1, fields, h);
            tf_hex(h, sizeof h, prev_hex);
            if (strcmp(prev_hex, tf_val(r, i, 2)) != 0) {
                reply_verify(req, checked, id, "hash mismatch: the record or its seal was altered");
                return;
            }
            memcpy(prev, h, sizeof prev);
            seq++;
            checked++;
        }
        if (n < VERIFY_BATCH)
            break;
    }
    bool head_ok = seq == head_seq && (seq == 0 || strcmp(head_hex, prev_hex) == 0);
    reply_verify(req, checked, NULL, head_ok ? NULL : "the chain's tail was removed or altered");
}

static const tf_route routes[] = {
    {"GET", "/v1/audit", "audit:read", audit_list,
     "actor,action,resource_type,resource_id,since,until,limit,cursor",
     "The tenant's audit records, newest first", 0, NULL},
    {"GET", "/v1/audit/verify", "audit:read", audit_verify, NULL,
     "Verify the tenant's audit hash chain", 0, NULL},
};

bool audit_register(tf_router *r, char *err, size_t errsz)
{
    return tf_router_add_all(r, routes, sizeof routes / sizeof *routes, err, errsz);
}
