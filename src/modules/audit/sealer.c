/*
 * The sealer: a background job that links committed audit records into each
 * tenant's hash chain (audit.seals), shortly after they commit, in commit
 * order.
 *
 * Why after commit. Hashing at insert time would need the tenant's previous
 * hash, i.e. a lock on the chain head held by every writing transaction until
 * it commits: unrelated writes of one tenant would queue behind each other.
 * Instead a writer only inserts its record (stamped with its transaction id,
 * pg_current_xact_id()); the sealer links records later.
 *
 * Commit order. A round reads, in one snapshot, the oldest transaction still
 * running (the horizon, pg_snapshot_xmin(pg_current_snapshot())) and the
 * records past the watermark whose xid is below it, ordered by (xid, id).
 * Every transaction below the horizon has ended, so no record can appear
 * later with an xid below it: the order is final, and a transaction that
 * began earlier but commits later is sealed only once it is visible, before
 * anything from transactions that started after it.
 *
 * One sealer. A round holds pg_try_advisory_xact_lock(SEAL_LOCK); other
 * processes skip the round. The batch (seals, chain heads, watermark) commits
 * in one transaction, so a crash loses nothing and repeats nothing.
 *
 * The bound. A record is sealed within one sealer interval (SEAL_INTERVAL_MS)
 * after every transaction older than its own has ended. The longest
 * transaction anywhere in the cluster therefore bounds how long a record can
 * stay unsealed; set idle_in_transaction_session_timeout and
 * statement_timeout in PostgreSQL to keep that bound short. Unsealed records
 * are listed by GET /v1/audit but not yet counted by verify.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tenantflow/crypto.h"
#include "tenantflow/log.h"

enum { SEAL_INTERVAL_MS = 200, SEAL_BATCH = 500, MAX_BATCHES = 20 };
#define SEAL_LOCK "7466000000000001" /* 'tf' + 1 */

static tf_stmt try_lock = TF_STMT("SELECT pg_try_advisory_xact_lock(" SEAL_LOCK ")", 0);
static tf_stmt pending = TF_STMT(
    "SELECT tenant_id::text, id::text, xid::text, occurred_at, actor_type, actor_id, action,"
    " resource_type, resource_id, request_id, client_ip, changes, head_seq,"
    " encode(head_hash, 'hex') FROM audit.pending($1::integer)", 1);
static tf_stmt seal = TF_STMT(
    "SELECT audit.seal($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::xid8, $6::uuid)", 6);

struct head {
    const char *tenant;
    long long seq;
    unsigned char hash[AUDIT_HASH_BYTES];
};

/* A growable "{a,b,c}" array literal (elements are uuids, numbers, hex). */
struct lit {
    char *buf;
    size_t len, cap;
};

static void lit_add(struct lit *l, const char *s)
{
    size_t n = strlen(s);
    if (l->len + n + 3 > l->cap) {
        l->cap = (l->len + n + 3) * 2;
        l->buf = tf_xrealloc(l->buf, l->cap);
    }
    char sep = l->len == 0 ? '{' : ',';
    l->buf[l->len++] = sep;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    l->buf[l->len] = '}';
    l->buf[l->len + 1] = '\0';
}

static struct head *head_of(struct head *heads, size_t *nheads, const PGresult *r, int row)
{
    const char *tenant = tf_val(r, row, 0);
    for (size_t i = 0; i < *nheads; i++)
        if (strcmp(heads[i].tenant, tenant) == 0)
            return &heads[i];
    struct head *h = &heads[(*nheads)++];
    h->tenant = tenant;
    h->seq = tf_val_int(r, row, 12);
    memset(h->hash, 0, sizeof h->hash);
    const char *hex = tf_val(r, row, 13);
    for (size_t i = 0; hex && i < AUDIT_HASH_BYTES; i++) {
        unsigned v = 0;
        sscanf(hex + 2 * i, "%2x", &v);
        h->hash[i] = (unsigned char)v;
    }
    return h;
}

/* One batch; returns the number of records sealed, or -1 when another process
 * holds the lock or something failed (logged). */
static int seal_batch(tf_pool *pool)
{
    tf_arena *a = tf_arena_new();
    tf_problem p = {0};
    tf_tx_ctx ctx = {.actor = "system"};
    int sealed = -1;
    struct head *heads = NULL;
    struct lit tenants = {0}, ids = {0}, seqs = {0}, hashes = {0};
    tf_tx *tx = tf_tx_begin(pool, a, &ctx, &p);
    PGresult *r = tx ? tf_tx_exec(tx, &try_lock, NULL, &p) : NULL;
    if (!r || !tf_val_bool(r, 0, 0))
        goto out;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", SEAL_BATCH);
    const char *pp[] = {lim};
    r = tf_tx_exec(tx, &pending, pp, &p);
    if (!r)
        goto out;
    int n = PQntuples(r);
    if (n == 0) {
        sealed = 0;
        goto out;
    }
    heads = tf_xcalloc((size_t)n, sizeof *heads);
    size_t nheads = 0;
    for (int i = 0; i < n; i++) {
        struct head *h = head_of(heads, &nheads, r, i);
        const char *fields[AUDIT_NFIELDS] = {
            tf_val(r, i, 0), tf_val(r, i, 1), tf_val(r, i, 3),  tf_val(r, i, 4),
            tf_val(r, i, 5), tf_val(r, i, 6), tf_val(r, i, 7),  tf_val(r, i, 8),
            tf_val(r, i, 9), tf_val(r, i, 10), tf_val(r, i, 11)};
        h->seq++;
        audit_chain_hash(h->hash, h->seq, fields, h->hash);
        char num[24], hex[2 * AUDIT_HASH_BYTES + 1];
        snprintf(num, sizeof num, "%lld", h->seq);
        tf_hex(h->hash, AUDIT_HASH_BYTES, hex);
        lit_add(&tenants, fields[0]);
        lit_add(&ids, fields[1]);
        lit_add(&seqs, num);
        lit_add(&hashes, hex);
    }
    const char *sp[] = {tenants.buf, ids.buf, seqs.buf, hashes.buf, tf_val(r, n - 1, 2),
                        tf_val(r, n - 1, 1)};
    if (tf_tx_exec(tx, &seal, sp, &p) && tf_tx_commit(tx, &p))
        sealed = n;
out:
    if (tf_failed(&p))
        tf_log(TF_LOG_WARN, "audit sealer: %s %s", p.detail, p.log);
    tf_problem_clear(&p);
    free(heads);
    free(tenants.buf);
    free(ids.buf);
    free(seqs.buf);
    free(hashes.buf);
    tf_arena_free(a); /* rolls back whatever did not commit */
    return sealed;
}

static void seal_round(tf_pool *pool, void *arg)
{
    (void)arg;
    for (int i = 0; i < MAX_BATCHES; i++)
        if (seal_batch(pool) < SEAL_BATCH)
            break;
}

static const tf_job sealer = {"audit.sealer", SEAL_INTERVAL_MS, seal_round, NULL, 0};

void audit_jobs_add(tf_jobs *jobs)
{
    tf_jobs_add(jobs, &sealer);
}
