"""Reports: summary and time series, JSON and CSV, bad input, partitions, and
the exactness property (every figure equals a brute-force SQL computation over
the raw facts, through every storage path: raw tail, rollups, late facts)."""
import csv
import io
import json
import math
import os
import random
import uuid
from datetime import datetime, timedelta, timezone

from harness import PURCHASE_ORDER, Tenant, check, eq, problem, psql, test

CSV = {"Accept": "text/csv"}


def iso(t):
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sql_tenant(tenant_id, sql):
    """Runs sql as the superuser with app.tenant_id set (the test-only path)."""
    return psql(f"SELECT set_config('app.tenant_id', '{tenant_id}', false);\n{sql}")


def workflow(t, key="purchase-order", states=None):
    body = dict(PURCHASE_ORDER, key=key)
    if states:
        body["states"] = states
    r = t.req("POST", "/v1/workflows", body)
    eq(r.status, 201, f"create workflow {r}")


def item(t, key="purchase-order", **attrs):
    r = t.req("POST", "/v1/items", {"workflow": key, "title": "x",
                                    "attributes": attrs or {"amount": 1, "vendor": "v"}})
    eq(r.status, 201, f"create item {r}")
    return r.json["id"]


def fire(t, item_id, name):
    r = t.req("POST", f"/v1/items/{item_id}/transitions", {"transition": name})
    eq(r.status, 200, f"transition {name} {r}")
    return r.json


@test
def reports_from_live_events_json_and_csv():
    t = Tenant()
    workflow(t)
    ids = [item(t) for _ in range(4)]
    fire(t, ids[0], "submit")
    fire(t, ids[1], "submit")
    fire(t, ids[1], "approve")
    fire(t, ids[2], "submit")
    fire(t, ids[2], "escalate")
    r = t.req("GET", "/v1/reports/workflows/purchase-order/summary")
    eq(r.status, 200, f"summary {r}")
    s = r.json
    eq(s["wip"], {"draft": 1, "submitted": 1, "escalated": 1}, "wip")
    eq(list(s["wip"]), ["draft", "submitted", "escalated"], "wip order")
    eq(s["created"], 4, "created")
    eq(s["completed"], 1, "completed")
    check(abs(s["throughput_per_day"] - 1 / 30) < 1e-9, f"throughput {s}")
    check(s["lead_time"]["avg"] > 0 and s["lead_time"]["p50"] == s["lead_time"]["p90"],
          f"lead time {s}")
    eq(s["time_in_state"]["draft"]["avg"] is not None, True, "draft stays")
    eq(s["time_in_state"]["escalated"], {"avg": None, "p50": None, "p90": None}, "no stay")
    eq(s["sla"], {"met": 2, "breached": 0, "breach_rate": 0}, "sla")
    # CSV: the same figures, RFC 4180 rows metric,state,value
    c = t.req("GET", "/v1/reports/workflows/purchase-order/summary", headers=CSV)
    eq(c.status, 200, f"csv {c}")
    check(c.header("Content-Type").startswith("text/csv"), "csv content type")
    check(c.body.startswith("metric,state,value\r\n"), f"csv header {c.body[:40]!r}")
    rows = list(csv.reader(io.StringIO(c.body)))
    got = {(m, st): v for m, st, v in rows[1:]}
    eq(got[("wip", "draft")], "1", "csv wip")
    eq(got[("created", "")], "4", "csv created")
    eq(got[("time_in_state.p50", "escalated")], "", "csv null is empty")
    eq(got[("sla.breach_rate", "")], "0", "csv breach rate")
    eq(float(got[("lead_time.avg", "")]), s["lead_time"]["avg"], "csv lead avg")
    # Negotiated by q, not by position alone.
    path = "/v1/reports/workflows/purchase-order/summary"
    for accept, want in (("application/json;q=0.5, text/csv", "text/csv"),
                         ("text/csv;q=0.4, application/json", "application/json"),
                         ("text/csv;q=0, */*", "application/json"),
                         ("application/json;q=0, */*", "text/csv")):
        c = t.req("GET", path, headers={"Accept": accept})
        eq((c.status, c.header("Content-Type").split(";")[0]), (200, want), accept)
    problem(t.req("GET", path, headers={"Accept": "text/csv;q=0, application/json;q=0"}), 406)
    # Time series of today's creations, JSON and CSV
    r = t.req("GET", "/v1/reports/workflows/purchase-order/timeseries?metric=created&bucket=day")
    eq(r.status, 200, f"series {r}")
    eq(len(r.json), 31, "30 days from now cut two partial buckets: 31 buckets")
    eq(sum(b["value"] for b in r.json), 4, "created in series")
    eq(r.json[-1]["value"], 4, "all today")
    c = t.req("GET", "/v1/reports/workflows/purchase-order/timeseries?metric=transitions"
              "&bucket=day", headers=CSV)
    rows = list(csv.reader(io.StringIO(c.body)))
    eq(rows[0], ["bucket_start", "value"], "series csv header")
    eq(rows[-1][1], "5", "transitions today")


@test
def reports_csv_neutralises_cells_and_keeps_data():
    t = Tenant()
    states = [{"name": "-review"}, {"name": "done", "terminal": True}]
    r = t.req("POST", "/v1/workflows", {
        "key": "neutral", "name": "N", "states": states, "initial_state": "-review",
        "transitions": [{"name": "finish", "from": ["-review"], "to": "done"}]})
    eq(r.status, 201, f"workflow {r}")
    item(t, key="neutral")
    c = t.req("GET", "/v1/reports/workflows/neutral/summary", headers=CSV)
    check("\r\nwip,'-review,1\r\n" in c.body, f"neutralised state cell in {c.body!r}")
    j = t.req("GET", "/v1/reports/workflows/neutral/summary")
    eq(j.json["wip"], {"-review": 1}, "JSON keeps the name")
    r = t.req("GET", "/v1/workflows/neutral")
    eq(r.json["states"][0]["name"], "-review", "stored data unchanged")


@test
def reports_bad_input_is_400_or_404_and_names_the_parameter():
    t = Tenant()
    workflow(t)
    base = "/v1/reports/workflows/purchase-order/"
    cases = [
        ("summary?tz=Mars/Olympus", "tz"),
        ("summary?tz=utc", "tz"),
        ("summary?from=yesterday", "from"),
        ("summary?from=2024-13-01", "from"),
        ("summary?to=2024-02-30T00:00:00Z", "to"),
        ("summary?from=2024-01-02&to=2024-01-01", "from"),
        ("summary?from=2024-01-01&to=2024-01-01", "from"),
        ("summary?from=2018-01-01&to=2024-01-02", "to"),
        ("summary?from=2024-01-01T00:00:00", "from"),
        ("timeseries?metric=revenue", "metric"),
        ("timeseries", "metric"),
        ("timeseries?metric=created&bucket=year", "bucket"),
        ("timeseries?metric=created&bucket=hour&from=2020-01-01&to=2022-01-01", "bucket"),
        ("timeseries?metric=created&bucket=hour&from=1900-01-01&to=2200-01-01", "bucket"),
        ("timeseries?metric=created&tz=Nowhere", "tz"),
        ("summary?period=1", "period"),
    ]
    for path, param in cases:
        r = t.req("GET", base + path)
        pb = problem(r, 400)
        names = [e.get("parameter") for e in pb.get("errors", [])]
        check(param in names, f"{path}: errors {pb.get('errors')} should name {param}")
    r = t.req("GET", base + "timeseries?metric=x&bucket=y&tz=z")
    names = sorted(e["parameter"] for e in problem(r, 400)["errors"])
    eq(names, ["bucket", "metric", "tz"], "every error collected")
    # 10,000 hour buckets are fine; one more is not
    ok = t.req("GET", base + "timeseries?metric=created&bucket=hour"
               "&from=2020-01-01T00:00:00Z&to=2021-02-20T16:00:00Z")
    eq((ok.status, len(ok.json)), (200, 10000), "exactly 10,000 buckets")
    problem(t.req("GET", base + "timeseries?metric=created&bucket=hour"
                  "&from=2020-01-01T00:00:00Z&to=2021-02-20T16:00:01Z"), 400)
    problem(t.req("GET", "/v1/reports/workflows/nope/summary"), 404)
    problem(t.req("GET", "/v1/reports/workflows/nope/timeseries?metric=created"), 404)
    # Five years exactly is allowed for a summary
    eq(t.req("GET", base + "summary?from=2019-01-01&to=2024-01-01").status, 200, "5 years")


def user_with(t, perms):
    """A user of tenant t holding only perms (made in SQL: no roles API yet)."""
    email = f"u{uuid.uuid4().hex[:8]}@{t.slug}.example"
    psql(f"""WITH r AS (INSERT INTO access.roles (tenant_id, name, permissions)
               VALUES ('{t.id}', 'r{uuid.uuid4().hex[:8]}', '{{{perms}}}') RETURNING id),
             u AS (INSERT INTO access.users (tenant_id, email, name, password_hash)
               SELECT tenant_id, '{email}', 'U', password_hash FROM access.users
                WHERE tenant_id = '{t.id}' LIMIT 1 RETURNING id)
             INSERT INTO access.user_roles SELECT '{t.id}', u.id, r.id FROM u, r""")
    return t.login(email=email)


@test
def reports_need_reports_read():
    t = Tenant()
    workflow(t)
    path = "/v1/reports/workflows/purchase-order/summary"
    low = user_with(t, "items:read,workflows:read")
    problem(t.srv.request("GET", path, token=low), 403)
    problem(t.srv.request("GET", path.replace("summary", "timeseries?metric=created"),
                          token=low), 403)
    ok = user_with(t, "reports:read")
    eq(t.srv.request("GET", path, token=ok).status, 200, "reports:read suffices")


@test
def reports_dst_days_and_monday_weeks():
    t = Tenant()
    workflow(t)
    base = "/v1/reports/workflows/purchase-order/timeseries?metric=created"
    r = t.req("GET", base + "&bucket=day&tz=Europe/Berlin&from=2024-03-30&to=2024-04-01")
    eq([b["bucket_start"] for b in r.json],
       ["2024-03-29T23:00:00.000000Z", "2024-03-30T23:00:00.000000Z"], "spring day buckets")
    r = t.req("GET", base + "&bucket=hour&tz=America/New_York&from=2024-11-03&to=2024-11-04")
    eq(len(r.json), 25, "fall-back day has 25 hours")
    r = t.req("GET", base + "&bucket=hour&tz=Europe/Berlin&from=2024-03-31&to=2024-04-01")
    eq(len(r.json), 23, "spring-forward day has 23 hours")
    r = t.req("GET", base + "&bucket=week&tz=UTC&from=2024-01-03&to=2024-01-20")
    eq([b["bucket_start"][:10] for b in r.json], ["2024-01-01", "2024-01-08", "2024-01-15"],
       "weeks start on Monday, partial first week listed")
    r = t.req("GET", base + "&bucket=month&tz=Asia/Kolkata&from=2024-01-15&to=2024-03-01")
    eq([b["bucket_start"] for b in r.json],
       ["2023-12-31T18:30:00.000000Z", "2024-01-31T18:30:00.000000Z"], "months in +05:30")


@test
def reports_partitions_have_rls_and_are_made_ahead():
    parts = psql("SELECT c.relname || ':' || c.relrowsecurity || c.relforcerowsecurity || ':'"
                 " || (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)"
                 " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                 " WHERE i.inhparent = 'reporting.facts'::regclass ORDER BY 1").split()
    names = [p.split(":")[0] for p in parts]
    now = datetime.now(timezone.utc)
    month = f"facts_{now:%Y%m}"
    check(month in names and len(names) >= 5, f"this month and 3 ahead + default: {names}")
    for p in parts:
        check(":truetrue:" in p, f"partition without forced RLS: {p}")
    app_priv = psql("SELECT count(*) FROM pg_class c JOIN pg_inherits i ON c.oid = i.inhrelid"
                    " WHERE i.inhparent = 'reporting.facts'::regclass"
                    " AND has_table_privilege('tenantflow_app', c.oid, 'SELECT')").strip()
    eq(app_priv, "0", "the app role reads partitions only through the parent")


# --- exactness property -----------------------------------------------------

STATES = [
    {"name": "draft"},
    {"name": "submitted", "sla": "PT48H", "on_timeout": "escalate"},
    {"name": "escalated", "sla": "PT6H"},
    {"name": "approved", "terminal": True},
    {"name": "rejected", "terminal": True},
]
MOVES = {"draft": ["submitted"], "submitted": ["approved", "rejected", "escalated"],
         "escalated": ["approved", "rejected"]}


def random_histories(rng, n, start, end):
    """n items: (id, created_at, [(to_state, at), ...]) with times in [start, end)."""
    out = []
    span = (end - start).total_seconds()
    for _ in range(n):
        at = start + timedelta(seconds=rng.random() * span * 0.9, microseconds=rng.randrange(10**6))
        steps = []
        created = at
        state = "draft"
        while state in MOVES and rng.random() < 0.8:
            at = at + timedelta(seconds=rng.choice([1, 60, 3600, 5000, 86400, 200000]) *
                                rng.random() * 3)
            if at >= end:
                break
            state = rng.choice(MOVES[state])
            steps.append((state, at))
        out.append((str(uuid.uuid4()), created, steps))
    return out


def load(tenant_id, key, histories):
    """Writes the histories through the test-only path: the same recording
    functions the event subscriber calls, with chosen times."""
    sql = []
    sla = {"draft": None, "submitted": timedelta(hours=48), "escalated": timedelta(hours=6)}
    for item_id, created, steps in histories:
        sql.append(f"SELECT reporting.item_created('{item_id}', '{key}', 1, 'draft',"
                   f" '{iso(created)}', NULL);")
        for to, at in steps:
            due = f"'{iso(at + sla[to])}'" if sla.get(to) else "NULL"
            sql.append(f"SELECT reporting.item_transitioned('{item_id}', '{to}', '{iso(at)}',"
                       f" {due});")
    sql_tenant(tenant_id, "\n".join(sql))


BRUTE_SUMMARY = """
WITH f AS (SELECT *, extract(epoch FROM at - created_at)::float8 AS lead,
                  extract(epoch FROM at - entered_at)::float8 AS stay
             FROM reporting.facts WHERE tenant_id = '{t}' AND workflow_key = '{w}'
              AND at >= '{f}' AND at < '{to}'),
st AS (SELECT unnest(ARRAY['draft', 'submitted', 'escalated']) AS state)
SELECT json_build_object(
  'created', (SELECT count(*) FROM f WHERE from_state IS NULL),
  'completed', (SELECT count(*) FROM f WHERE to_terminal),
  'lead', (SELECT json_build_object('avg', avg(lead), 'p50',
             percentile_cont(0.5) WITHIN GROUP (ORDER BY lead), 'p90',
             percentile_cont(0.9) WITHIN GROUP (ORDER BY lead)) FROM f WHERE to_terminal),
  'tis', (SELECT json_object_agg(st.state, (SELECT json_build_object('avg', avg(stay), 'p50',
             percentile_cont(0.5) WITHIN GROUP (ORDER BY stay), 'p90',
             percentile_cont(0.9) WITHIN GROUP (ORDER BY stay)) FROM f
             WHERE from_state = st.state)) FROM st),
  'met', (SELECT count(*) FROM f WHERE due_at IS NOT NULL AND at <= due_at),
  'breached', (SELECT count(*) FROM f WHERE due_at IS NOT NULL AND at > due_at)
      + (SELECT count(*) FROM reporting.items WHERE tenant_id = '{t}' AND workflow_key = '{w}'
         AND NOT terminal AND due_at >= '{f}' AND due_at < '{to}' AND due_at < now()),
  'wip', (SELECT json_object_agg(st.state, (SELECT count(*) FROM reporting.items i
          WHERE i.tenant_id = '{t}' AND i.workflow_key = '{w}' AND i.state = st.state))
          FROM st))
"""

BRUTE_SERIES = """
SELECT coalesce(json_object_agg(b, n), '{{}}') FROM (
  SELECT platform.rfc3339(date_trunc('{b}', at, '{tz}')) AS b, count(*) AS n
    FROM reporting.facts WHERE tenant_id = '{t}' AND workflow_key = '{w}'
     AND at >= '{f}' AND at < '{to}' AND {cond} GROUP BY 1) x
"""
CONDS = {"created": "from_state IS NULL", "completed": "to_terminal",
         "transitions": "from_state IS NOT NULL"}


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def compare_summary(t, key, f, to):
    r = t.req("GET", f"/v1/reports/workflows/{key}/summary?from={iso(f)}&to={iso(to)}")
    eq(r.status, 200, f"summary {r}")
    s = r.json
    b = json.loads(psql(BRUTE_SUMMARY.format(t=t.id, w=key, f=iso(f), to=iso(to))))
    where = f"summary [{iso(f)}, {iso(to)})"
    eq(s["created"], b["created"], f"{where} created")
    eq(s["completed"], b["completed"], f"{where} completed")
    days = (to - f).total_seconds() / 86400
    check(close(s["throughput_per_day"], b["completed"] / days), f"{where} throughput")
    for k in ("avg", "p50", "p90"):
        check(close(s["lead_time"][k], b["lead"][k]), f"{where} lead {k}: {s['lead_time']} {b['lead']}")
        for st in ("draft", "submitted", "escalated"):
            check(close(s["time_in_state"][st][k], b["tis"][st][k]),
                  f"{where} time in {st} {k}: {s['time_in_state'][st]} {b['tis'][st]}")
    eq(s["sla"]["met"], b["met"], f"{where} sla met")
    eq(s["sla"]["breached"], b["breached"], f"{where} sla breached")
    total = b["met"] + b["breached"]
    check(close(s["sla"]["breach_rate"], b["breached"] / total if total else None),
          f"{where} breach rate")
    eq(s["wip"], b["wip"], f"{where} wip")
    return s


def compare_series(t, key, metric, bucket, tz, f, to):
    r = t.req("GET", f"/v1/reports/workflows/{key}/timeseries?metric={metric}&bucket={bucket}"
              f"&tz={tz}&from={iso(f)}&to={iso(to)}")
    eq(r.status, 200, f"series {r}")
    brute = json.loads(psql(BRUTE_SERIES.format(t=t.id, w=key, f=iso(f), to=iso(to), b=bucket,
                                                tz=tz, cond=CONDS[metric])))
    got = {x["bucket_start"]: x["value"] for x in r.json}
    where = f"{metric}/{bucket}/{tz} [{iso(f)}, {iso(to)})"
    eq(len(got), len(r.json), f"{where} buckets unique")
    eq(sorted(got), [x["bucket_start"] for x in r.json], f"{where} buckets ordered")
    for k, v in brute.items():
        eq(got.get(k), v, f"{where} bucket {k}")
    eq(sum(got.values()), sum(brute.values()), f"{where} no extra counts")
    # every bucket is aligned: the first may start before from, none at or after to
    check(r.json[0]["bucket_start"] <= iso(f) and r.json[-1]["bucket_start"] < iso(to),
          f"{where} bucket span")


def compare_all(t, key, rng, now, label):
    tzs = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]
    ranges = [(now - timedelta(days=90), now + timedelta(hours=1)),
              (datetime(2026, 3, 28, 13, 17, 5, 123456, timezone.utc),
               datetime(2026, 4, 2, 7, 45, tzinfo=timezone.utc))]
    # Ranges cutting buckets in the middle, anywhere in the data
    for _ in range(4):
        a = now - timedelta(seconds=rng.random() * 80 * 86400)
        ranges.append((a, a + timedelta(seconds=rng.random() * 30 * 86400 + 1)))
    for f, to in ranges:
        compare_summary(t, key, f, to)
    for f, to in ranges[:4]:
        for tz in tzs:
            for bucket in ("hour", "day", "week", "month"):
                if bucket == "hour" and (to - f).days > 30:
                    continue
                compare_series(t, key, rng.choice(list(CONDS)), bucket, tz, f, to)


@test
def reports_exact_property_over_raw_rollups_and_late_facts():
    rng = random.Random(20240331)
    t = Tenant()
    key = "exact"
    r = t.req("POST", "/v1/workflows", dict(PURCHASE_ORDER, key=key, states=STATES))
    eq(r.status, 201, f"workflow {r}")
    now = datetime.now(timezone.utc)
    # Stage 1: the watermark far back, so every fact is read raw.
    psql(f"INSERT INTO reporting.watermarks VALUES ('{t.id}', '{key}', '2000-01-01Z')")
    # Around the 2026 DST changes (Europe 29 Mar / 25 Oct, US 8 Mar / 1 Nov) and up to now.
    hist = random_histories(rng, 120, now - timedelta(days=85), now)
    hist += random_histories(rng, 40, datetime(2026, 3, 6, tzinfo=timezone.utc),
                             datetime(2026, 4, 3, tzinfo=timezone.utc))
    load(t.id, key, hist)
    facts = int(psql(f"SELECT count(*) FROM reporting.facts WHERE tenant_id = '{t.id}'"))
    check(facts > 300, f"enough facts: {facts}")
    eq(psql(f"SELECT count(*) FROM reporting.rollup_hour WHERE tenant_id = '{t.id}'").strip(),
       "0", "nothing rolled in stage 1")
    compare_all(t, key, rng, now, "raw")
    # Stage 2: fold closed hours (what the job does), then compare again.
    folded = int(sql_tenant(t.id, f"SELECT reporting.roll_up('{key}')").split()[-1])
    check(folded > 0, "roll_up folded facts")
    wm = psql(f"SELECT watermark > now() - interval '1 hour' FROM reporting.watermarks"
              f" WHERE tenant_id = '{t.id}'").strip()
    eq(wm, "t", "watermark moved to this hour")
    compare_all(t, key, rng, now, "rolled")
    # Stage 3: late facts for folded hours go straight into their rollup rows.
    late = random_histories(rng, 60, now - timedelta(days=60), now - timedelta(hours=2))
    load(t.id, key, late)
    compare_all(t, key, rng, now, "late")
    # Stage 4: creating a past month's partition moves its rows out of the default.
    psql("SELECT reporting.ensure_partition('2026-03-15Z')")
    moved = psql(f"SELECT count(*) FROM reporting.facts_default WHERE tenant_id = '{t.id}'"
                 f" AND at >= '2026-03-01Z' AND at < '2026-04-01Z'").strip()
    eq(moved, "0", "rows moved out of the default partition")
    compare_all(t, key, rng, now, "repartitioned")


def dense_histories(rng, n, start, days):
    """n items created in [start, start + days) whose stays come from a few
    values, so many fall in one duration bin, tie, or sit on a bin edge."""
    stays = [0, 0.000001, 1, 3599.999999, 3600, 3600, 3600, 3600.5, 3601, 3650, 3700, 7200,
             86400, 86400, 100000]
    out = []
    for _ in range(n):
        created = start + timedelta(seconds=rng.random() * days * 86400)
        at = created
        steps = []
        state = "draft"
        while state in MOVES:
            at = at + timedelta(seconds=rng.choice(stays))
            state = rng.choice(MOVES[state])
            steps.append((state, at))
        out.append((str(uuid.uuid4()), created, steps))
    return out


BRUTE_PERCENTILES = """
WITH f AS (SELECT *, extract(epoch FROM at - created_at)::float8 AS lead,
                  extract(epoch FROM at - entered_at)::float8 AS stay
             FROM reporting.facts WHERE tenant_id = '{t}' AND workflow_key = '{w}'
              AND at >= '{f}' AND at < '{to}')
SELECT json_build_object(
  '', (SELECT percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY lead) FROM f WHERE to_terminal),
  'draft', (SELECT percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY stay) FROM f
            WHERE from_state = 'draft'),
  'submitted', (SELECT percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY stay) FROM f
                WHERE from_state = 'submitted'),
  'escalated', (SELECT percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY stay) FROM f
                WHERE from_state = 'escalated'))
"""


def compare_percentiles(t, key, f, to):
    s = t.req("GET", f"/v1/reports/workflows/{key}/summary?from={iso(f)}&to={iso(to)}").json
    b = json.loads(psql(BRUTE_PERCENTILES.format(t=t.id, w=key, f=iso(f), to=iso(to))))
    got = {"": s["lead_time"], **s["time_in_state"]}
    for series, want in b.items():
        want = want or [None, None]
        for k, w in zip(("p50", "p90"), want):
            check(close(got[series][k], w),
                  f"[{iso(f)}, {iso(to)}) {series or 'lead'} {k}: {got[series][k]} != {w}")


@test
def reports_exact_percentiles_with_dense_bins_ties_and_detached_months():
    # The duration bins order like the durations themselves (the percentile
    # search relies on it): zero, sub-microsecond, negative and huge values.
    mono = psql("SELECT bool_and(b >= pb) FROM (SELECT reporting.dur_bin(v) AS b,"
                " lag(reporting.dur_bin(v)) OVER (ORDER BY v) AS pb FROM (SELECT unnest("
                "ARRAY[-1e9, -86400, -1, -1e-9, -0.0, 0, 1e-300, 1e-9, 0.000001, 1, 1.0000001,"
                " 3599.999999, 3600, 3600.5, 86400, 1e9, 1e300]::float8[]) AS v"
                " UNION ALL SELECT (random() - 0.5) * 10 ^ (random() * 12)"
                " FROM generate_series(1, 5000)) x) y").strip()
    eq(mono, "t", "dur_bin is monotone")
    eq(psql("SELECT reporting.dur_bin(NULL) IS NULL").strip(), "t", "no duration, no bin")
    rng = random.Random(7)
    t = Tenant()
    key = "dense"
    r = t.req("POST", "/v1/workflows", dict(PURCHASE_ORDER, key=key, states=STATES))
    eq(r.status, 201, f"workflow {r}")
    now = datetime.now(timezone.utc)
    psql("SELECT reporting.ensure_partition('2025-01-15Z')")
    psql(f"INSERT INTO reporting.watermarks VALUES ('{t.id}', '{key}', '2000-01-01Z')")
    old = datetime(2025, 1, 3, tzinfo=timezone.utc)
    load(t.id, key, dense_histories(rng, 150, old, 20))
    load(t.id, key, dense_histories(rng, 250, now - timedelta(days=40), 38))
    ranges = [(now - timedelta(days=90), now + timedelta(hours=1)),
              (old - timedelta(days=1), now),
              (datetime(2025, 1, 5, 7, 30, tzinfo=timezone.utc),
               datetime(2025, 1, 19, 2, tzinfo=timezone.utc))]
    for _ in range(3):
        a = now - timedelta(seconds=rng.random() * 35 * 86400)
        ranges.append((a, a + timedelta(seconds=rng.random() * 20 * 86400 + 1)))
    for f, to in ranges:
        compare_summary(t, key, f, to)
    # Folded into histograms by the job, then late facts into folded days.
    sql_tenant(t.id, f"SELECT reporting.roll_up('{key}')")
    hist = psql(f"SELECT count(*) FROM reporting.rollup_hist WHERE tenant_id = '{t.id}'")
    check(int(hist) > 0, "histograms written")
    for f, to in ranges:
        compare_summary(t, key, f, to)
    load(t.id, key, dense_histories(rng, 80, now - timedelta(days=30), 25))
    load(t.id, key, dense_histories(rng, 40, old, 20))
    for f, to in ranges:
        compare_summary(t, key, f, to)
    # Detaching January 2025 (as the owner) takes its facts out of the
    # histograms: percentiles stay exact over the facts still attached.
    out = psql("SELECT reporting.detach_partitions_before('2025-02-01Z')",
               os.environ["TENANTFLOW_MIGRATE_DATABASE_URL"])
    check("facts_202501" in out.split(), f"detached: {out}")
    psql("DROP TABLE reporting.facts_202501")
    for f, to in ranges:
        compare_percentiles(t, key, f, to)


@test
def reports_daily_buckets_survive_a_skipped_local_midnight():
    """America/Havana skips 00:00-01:00 on 2026-03-08: every later day must
    still start at local midnight and keep its events."""
    t = Tenant()
    wf = {"key": "dst", "name": "DST", "initial_state": "a",
          "states": [{"name": "a"}, {"name": "z", "terminal": True}],
          "transitions": [{"name": "go", "from": ["a"], "to": "z"}]}
    eq(t.req("POST", "/v1/workflows", wf).status, 201, "workflow")
    for at in ("2026-03-07T12:00:00Z", "2026-03-09T12:00:00Z", "2026-03-10T12:00:00Z"):
        psql(f"SELECT set_config('app.tenant_id', '{t.id}', false)", None,
             "-c", f"SELECT reporting.item_created(platform.uuid7(), 'dst', 1, 'a', '{at}', NULL)")
    for tz in ("America/Havana", "America/Sao_Paulo", "Europe/Berlin", "UTC"):
        r = t.req("GET", f"/v1/reports/workflows/dst/timeseries?metric=created&bucket=day"
                         f"&tz={tz}&from=2026-03-07&to=2026-03-12")
        eq(r.status, 200, f"{tz} {r}")
        eq(sum(b["value"] for b in r.json), 3, f"{tz}: every event counted")
        eq(len(r.json), 5, f"{tz}: five days")
    r = t.req("GET", "/v1/reports/workflows/dst/timeseries?metric=created&bucket=day"
                     "&tz=America/Havana&from=2026-03-07&to=2026-03-12")
    starts = [b["bucket_start"] for b in r.json]
    eq(starts[2:], ["2026-03-09T04:00:00.000000Z", "2026-03-10T04:00:00.000000Z",
                    "2026-03-11T04:00:00.000000Z"], "days after the change start at local midnight")
