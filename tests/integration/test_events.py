"""Event feed: shape, filters, cursors, and the classic trap: a consumer
polling with next_cursor while many writers commit out of id order, one of
them held open from psql, still sees every event exactly once, in commit
order."""
import base64
import json
import os
import subprocess
import threading
import re
import time

from harness import PURCHASE_ORDER, Failure, Tenant, check, cli, eq, problem, psql, test


def drain(t, cursor=None, type_=None, limit=50):
    """Follows next_cursor until a page comes back empty; returns (events, cursor)."""
    out = []
    while True:
        q = f"/v1/events?limit={limit}"
        if cursor:
            q += "&cursor=" + cursor
        if type_:
            q += "&type=" + type_
        r = t.req("GET", q)
        eq(r.status, 200, f"feed {r}")
        check(r.json["next_cursor"], "next_cursor is never null")
        out += r.json["data"]
        if not r.json["data"]:
            eq(r.json["next_cursor"], cursor or r.json["next_cursor"], "same position when empty")
            return out, r.json["next_cursor"]
        cursor = r.json["next_cursor"]


def wait_feed(t, n, timeout=15, type_=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got, _ = drain(t, type_=type_)
        if len(got) >= n:
            return got
        time.sleep(0.1)
    raise Failure(f"feed has {len(got)} events, want {n}")


@test
def feed_shape_filters_and_cursors():
    t = Tenant()
    eq(t.req("POST", "/v1/workflows", PURCHASE_ORDER).status, 201, "workflow")
    r = t.req("POST", "/v1/items", {"workflow": "purchase-order", "title": "Desks",
                                    "attributes": {"amount": 1, "vendor": "V"}})
    item = r.json["id"]
    eq(t.req("POST", f"/v1/items/{item}/transitions", {"transition": "submit"}).status, 200, "t")
    events = wait_feed(t, 4)
    eq([e["type"] for e in events],
       ["tenant.created", "workflow.published", "item.created", "item.transitioned"], "types")
    tr = events[3]
    eq(sorted(tr), ["actor", "data", "id", "occurred_at", "type"], "event members")
    eq(tr["data"]["transition"], {"name": "submit", "from": "draft", "to": "submitted"}, "data")
    eq(tr["data"]["state"], "submitted", "item after the change")
    eq(tr["actor"]["type"], "user", "actor")
    check(tr["occurred_at"].endswith("Z"), "UTC")
    only, cur = drain(t, type_="item.created")
    eq([e["id"] for e in only], [events[2]["id"]], "type filter")
    # Paging one at a time gives the same sequence.
    one, end = drain(t, limit=1)
    eq([e["id"] for e in one], [e["id"] for e in events], "limit=1 paging")
    # The stored cursor keeps working: a new event appears after it.
    eq(t.req("POST", "/v1/items", {"workflow": "purchase-order", "title": "B"}).status, 201, "i")
    deadline = time.time() + 10
    more = []
    while not more and time.time() < deadline:
        more, _ = drain(t, cursor=end)
        time.sleep(0.05)
    eq([e["type"] for e in more], ["item.created"], "resume after the stored cursor")
    # The cursor is a position in every tenant's feed, so it is sealed: its
    # bytes show no position (drain() checks that an empty page hands the
    # same cursor back, which the sealing keeps true).
    raw = base64.urlsafe_b64decode(end + "=" * (-len(end) % 4))
    try:  # sealed bytes begin with "{" once in 256 cursors; they never parse as JSON
        json.loads(raw)
        readable = True
    except ValueError:
        readable = False
    check(b'"p"' not in raw and not readable, f"cursor payload readable: {raw!r}")
    # Cursors are bound to tenant and filter.
    problem(t.req("GET", "/v1/events?cursor=" + cur), 400)
    problem(Tenant().req("GET", "/v1/events?cursor=" + end), 400)
    for q in ("limit=0", "limit=x", "cursor=zzz", "type=", "since=1"):
        problem(t.req("GET", "/v1/events?" + q), 400)


@test
def consumer_never_misses_events_committed_out_of_order():
    t = Tenant()
    eq(t.req("POST", "/v1/workflows", PURCHASE_ORDER).status, 201, "workflow")
    # A writer that began first and commits last, held open from psql.
    held = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", os.environ["TF_ADMIN_URL"]],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    held.stdin.write("BEGIN;\nINSERT INTO events.outbox (tenant_id, type, actor_type, data)"
                     f" VALUES ('{t.id}', 'held.open', 'system', '{{}}');\n")
    held.stdin.flush()
    time.sleep(0.5)

    seen, stop, errors = [], threading.Event(), []

    def consume():
        cursor = None
        try:
            while True:
                final = stop.is_set()
                q = "/v1/events?limit=7" + ("&cursor=" + cursor if cursor else "")
                r = t.req("GET", q)
                if r.status != 200:
                    errors.append(r)
                    return
                seen.extend(e["id"] for e in r.json["data"])
                cursor = r.json["next_cursor"]
                if final and not r.json["data"]:
                    return
                if not r.json["data"]:
                    time.sleep(0.02)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    def write(n):
        try:
            for i in range(n):
                r = t.req("POST", "/v1/items", {"workflow": "purchase-order", "title": f"w{i}"})
                if r.status != 201:
                    errors.append(r)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    consumer = threading.Thread(target=consume)
    consumer.start()
    writers = [threading.Thread(target=write, args=(15,)) for _ in range(8)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    expected_before = 2 + 8 * 15  # tenant.created, workflow.published, the items
    deadline = time.time() + 20
    while len(seen) < expected_before and time.time() < deadline and not errors:
        time.sleep(0.05)
    eq(len(seen), expected_before, "later commits are in the feed while the old one is open")
    held.stdin.write("COMMIT;\n")
    held.stdin.close()
    eq(held.wait(10), 0, "held transaction committed")
    deadline = time.time() + 20
    while len(seen) < expected_before + 1 and time.time() < deadline and not errors:
        time.sleep(0.05)
    stop.set()
    consumer.join(30)
    eq(errors, [], "no errors")
    full = psql(f"SELECT id FROM events.outbox WHERE tenant_id = '{t.id}' ORDER BY position").split()
    eq(len(full), expected_before + 1, "every event numbered")
    eq(len(set(seen)), len(seen), "no duplicates")
    eq(seen, full, "the consumer's sequence is the whole feed in position order")
    held_id = psql(f"SELECT id FROM events.outbox WHERE tenant_id = '{t.id}'"
                   " AND type = 'held.open'").strip()
    eq(seen[-1], held_id, "the event committed last comes last (commit order)")
    # Ids were handed out in another order than commits: the trap was real.
    by_id = psql(f"SELECT id FROM events.outbox WHERE tenant_id = '{t.id}' ORDER BY id").split()
    check(by_id != full, "id order differs from commit order")


@test
def retention_purges_old_events_messages_and_attempts():
    """The event-retention job deletes what is past the retention and no longer
    needed; an event still waiting for a webhook delivery is kept, and the
    feed then starts at the oldest event retained."""
    from harness import PURCHASE_ORDER, Server, Tenant, psql
    with Server(TENANTFLOW_EVENT_PURGE_INTERVAL="1", TENANTFLOW_EVENT_RETENTION_DAYS="30") as srv:
        t = Tenant(srv)
        t.req("POST", "/v1/workflows", PURCHASE_ORDER)
        for i in range(3):
            t.req("POST", "/v1/items", {"workflow": "purchase-order", "title": f"old {i}"})
        deadline = time.time() + 15
        while time.time() < deadline:  # wait for feed positions
            if len(t.req("GET", "/v1/events?limit=200").json["data"]) >= 4:
                break
            time.sleep(0.2)
        ids = [e["id"] for e in t.req("GET", "/v1/events?limit=200").json["data"]]
        check(len(ids) >= 4, f"events numbered: {len(ids)}")
        old, kept, pending = ids[0], ids[1], ids[2]
        psql(f"UPDATE events.outbox SET occurred_at = now() - interval '31 days'"
             f" WHERE id IN ('{old}', '{pending}')")
        # A pending webhook message keeps its event past the retention.
        psql(f"INSERT INTO events.messages (tenant_id, webhook_id, event_id, position, status)"
             f" SELECT tenant_id, platform.uuid7(), id, position, 'pending'"
             f" FROM events.outbox WHERE id = '{pending}'")
        deadline = time.time() + 15
        while time.time() < deadline:
            left = [e["id"] for e in t.req("GET", "/v1/events?limit=200").json["data"]]
            if old not in left:
                break
            time.sleep(0.3)
        check(old not in left, "the old event was purged")
        check(kept in left and pending in left, "recent and still-pending events kept")
        eq(left[0], kept if ids.index(kept) < ids.index(pending) else pending,
           "the feed starts at the oldest event retained")
        psql(f"DELETE FROM events.messages WHERE event_id = '{pending}'")


def buffers_touched(call):
    """Pages a background call reads, from EXPLAIN (ANALYZE, BUFFERS) of its
    second run in one session (the first warms the catalog caches)."""
    out = psql(f"SELECT count(*) FROM {call}", None,
               "-c", f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM {call}")
    plan = json.loads(out[out.index("["):])[0]["Plan"]
    return plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]


@test
def sequencer_and_sealer_read_only_what_is_new():
    """With 100,000 events numbered and 20,000 audit records sealed, a
    sequencer round and the sealer's read touch a few pages, not the whole
    history: their watermarks bound the index scans (page counts, not times)."""
    t = Tenant()
    psql("INSERT INTO events.outbox (tenant_id, type, actor_type, data)"
         f" SELECT '{t.id}', 'test.bulk', 'system', '{{}}' FROM generate_series(1, 100000)")
    psql("INSERT INTO audit.records (tenant_id, actor_type, action, resource_type, resource_id)"
         f" SELECT '{t.id}', 'system', 'test.bulk', 'test', g::text"
         " FROM generate_series(1, 20000) g")
    left = None
    for _ in range(300):
        left = psql(
            "SELECT (SELECT count(*) FROM events.outbox WHERE position IS NULL) +"
            f" (SELECT count(*) FROM audit.records r WHERE r.tenant_id = '{t.id}' AND NOT EXISTS"
            "   (SELECT 1 FROM audit.seals s WHERE s.tenant_id = r.tenant_id"
            "     AND s.record_id = r.id))").strip()
        if left == "0":
            break
        time.sleep(0.2)
    eq(left, "0", "the running server numbered and sealed everything")
    seq = buffers_touched("events.assign_positions(1000)")
    seal = buffers_touched("audit.pending(500)")
    check(seq < 50, f"a sequencer round with nothing to do read {seq} pages")
    check(seal < 50, f"the sealer's read with nothing to do read {seal} pages")


@test
def feed_pages_keep_one_plan_on_their_indexes():
    """The feed is polled for ever, so its statements must not be planned on
    every poll: each is a page of a constant-capped subquery, whose kept
    (generic) plan costs no more than a plan made for the values (else
    PostgreSQL would go on re-planning), reads an index in position order
    (no sort, no sequential scan) and, for one type, the type's index. For
    all types PostgreSQL may pick the tenant's index or the global position
    index, by the statistics (one tenant dominates this database)."""
    from test_workflow_engine import explain
    t = Tenant()
    psql("INSERT INTO events.outbox (tenant_id, type, actor_type, data)"
         f" SELECT '{t.id}', CASE WHEN g % 100 = 0 THEN 'test.rare' ELSE 'test.bulk' END,"
         " 'system', '{}' FROM generate_series(1, 30000) g")
    left = None
    for _ in range(300):
        left = psql("SELECT count(*) FROM events.outbox WHERE position IS NULL").strip()
        if left == "0":
            break
        time.sleep(0.2)
    eq(left, "0", "the running server numbered the events")
    psql("ANALYZE events.outbox")
    for name, args, index in (("feed", "0, 50", "outbox_(feed|position)"),
                              ("feed-of-type", "0, 50, 'test.rare'", "outbox_feed_type")):
        sql = cli("sql", name).stdout.strip()
        check("LIMIT 200) page LIMIT $2" in sql, f"{name} is a capped page: {sql}")
        plans = [explain(t.id, sql, args, mode) for mode in ("force_custom_plan",
                                                            "force_generic_plan")]
        for plan in plans:
            check(re.search(rf"Index Scan using {index} ", plan), f"{name} uses {index}:\n{plan}")
            check("Sort" not in plan and "Seq Scan" not in plan, f"{name}:\n{plan}")
        cost = [float(re.search(r"cost=[\d.]+\.\.([\d.]+)", p).group(1)) for p in plans]
        check(cost[1] <= cost[0], f"{name}: generic plan costs {cost[1]} > {cost[0]}")
