/*
 * SLA timers: a background job that fires a state's on_timeout transition
 * once the item's due_at has passed, as the system actor.
 *
 * The one thing to know: exactly once, even with several server processes,
 * comes from row locks, not from a single runner. A round asks a narrow
 * definer function which tenants have due timers, then, inside each tenant's
 * own RLS context, takes the due items with FOR UPDATE SKIP LOCKED (a row
 * another process holds is skipped, not waited for) and fires each through
 * the same transition core as the HTTP handler. A state change rewrites
 * timeout_transition, so once one process has fired a timer the row no longer
 * matches the scan, and the core re-checks that the item is still in the
 * state the timer was for. Timers live in the table, so a restarted server
 * picks up whatever fell due while it was down.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "tenantflow/dbgauge.h"
#include "tenantflow/log.h"

enum { TENANTS_PER_ROUND = 100, ITEMS_PER_TENANT = 100 };

#define TIMER_SCAN_SQL                                                                        \
    "SELECT i.id, i.state, i.timeout_transition FROM workflow.items i"                       \
    " WHERE i.tenant_id = platform.current_tenant() AND i.timeout_transition IS NOT NULL"    \
    " AND i.due_at <= now() ORDER BY i.due_at LIMIT $1::integer FOR UPDATE SKIP LOCKED"

static tf_stmt due_tenants = TF_STMT(
    "SELECT t::text FROM workflow.tenants_with_due_timers($1::integer) t", 1);
static tf_stmt due_items = TF_STMT(TIMER_SCAN_SQL, 1);

const char *wf_timer_scan_sql(void)
{
    return TIMER_SCAN_SQL;
}

static const tf_origin system_origin = {TF_ACTOR_SYSTEM, NULL, NULL, NULL};

/* Fires the due timers of one tenant in one transaction; returns how many. */
static int fire_tenant(tf_pool *pool, const char *tenant)
{
    tf_arena *a = tf_arena_new();
    tf_problem p = {0};
    tf_tx_ctx ctx = {.tenant_id = tenant, .actor = "system"};
    int fired = 0;
    tf_tx *tx = tf_tx_begin(pool, a, &ctx, &p);
    char lim[16];
    snprintf(lim, sizeof lim, "%d", ITEMS_PER_TENANT);
    const char *params[] = {lim};
    PGresult *r = tx ? tf_tx_exec(tx, &due_items, params, &p) : NULL;
    for (int i = 0; r && i < PQntuples(r); i++) {
        wf_fire f = {
            .item_id = tf_val(r, i, 0),
            .transition = tf_val(r, i, 2),
            .expected_state = tf_val(r, i, 1),
            .origin = &system_origin,
        };
        PGresult *item = NULL;
        wf_fire_result res = wf_fire_transition(tx, &f, &item, &p);
        if (res == WF_FAILED) {
            tf_log(TF_LOG_WARN, "timer for item %s failed: %s %s", f.item_id, p.detail, p.log);
            fired = 0;
            r = NULL;
        } else if (res == WF_FIRED) {
            fired++;
        }
    }
    if (tx && r && !tf_failed(&p)) {
        if (!tf_tx_commit(tx, &p))
            fired = 0;
    } else if (tx) {
        tf_tx_rollback(tx);
    }
    if (tf_failed(&p))
        tf_log(TF_LOG_WARN, "timer round for tenant %s: %s %s", tenant, p.detail, p.log);
    tf_problem_clear(&p);
    tf_arena_free(a);
    return fired;
}

void wf_timers_run(tf_pool *pool, void *arg)
{
    (void)arg;
    tf_arena *a = tf_arena_new();
    tf_problem p = {0};
    tf_tx_ctx ctx = {.actor = "system"};
    tf_tx *tx = tf_tx_begin(pool, a, &ctx, &p);
    char lim[16];
    snprintf(lim, sizeof lim, "%d", TENANTS_PER_ROUND * ITEMS_PER_TENANT);
    const char *params[] = {lim};
    PGresult *r = tx ? tf_tx_exec(tx, &due_tenants, params, &p) : NULL;
    int n = r ? PQntuples(r) : 0;
    if (n > TENANTS_PER_ROUND)
        n = TENANTS_PER_ROUND;
    const char *tenants[TENANTS_PER_ROUND];
    for (int i = 0; i < n; i++)
        tenants[i] = tf_arena_strdup(a, tf_val(r, i, 0));
    if (tx)
        tf_tx_rollback(tx); /* read only */
    for (int i = 0; i < n; i++) {
        int fired = fire_tenant(pool, tenants[i]);
        if (fired)
            tf_log(TF_LOG_DEBUG, "fired %d timers for tenant %s", fired, tenants[i]);
    }
    if (tf_failed(&p))
        tf_log(TF_LOG_WARN, "timer round: %s %s", p.detail, p.log);
    tf_problem_clear(&p);
    tf_arena_free(a);
}

static tf_stmt timer_metrics_stmt = TF_STMT("SELECT * FROM workflow.timer_metrics()", 0);

void workflows_metrics_add(tf_pool *pool)
{
    static const tf_dbgauge_column columns[] = {
        {"tf_timers_pending", "Items waiting in a state whose SLA fires a transition."},
        {"tf_timers_due", "Of those, items whose due time has passed (fired on the next round)."},
    };
    tf_dbgauge_add(pool, &timer_metrics_stmt, columns, 2);
}
