#!/usr/bin/env bash
# Report benchmark: one million transitions in one tenant, then the 90-day
# summary (reporting.summary, what GET .../summary runs) against the
# brute-force query over the raw facts, each timed inside PostgreSQL (median
# of several runs, first run discarded) as the application role under RLS.
#
# Data: 250,000 items created evenly over the last 365 days, each with four
# transitions (draft -> submitted -> escalated|submitted... -> approved), so
# 1,000,000 transition facts plus 250,000 creations. They are bulk-inserted
# straight into the fact tables (the same rows the event subscriber writes),
# then the closed hours are folded by reporting.roll_up, as the server's job
# would. Uses a throwaway PostgreSQL (under $TMPDIR, default /tmp) like
# `make test`; needs build/tenantflow. Prints a small table: both medians, the
# ratio, and whether the summary's counts and p50/p90 equal the brute-force
# ones bit for bit. `make bench` runs it after the HTTP table.
#
# Usage: scripts/bench-reports.sh [ITEMS]   (default 250000)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

items=${1:-250000}
BUILD=${BUILD:-build}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tenantflow-bench.XXXXXX")
chmod 755 "$tmp"
port=$((20000 + RANDOM % 12000))  # below the ephemeral range (32768-60999)
cleanup() { pg_down "$tmp"; rm -rf "$tmp"; }
trap cleanup EXIT

PG_EXTRA_CONF=$'fsync = off\nsynchronous_commit = off\nfull_page_writes = off' pg_up "$tmp" "$port"
pg_bootstrap "$(socket_url postgres postgres "$tmp" "$port")" tenantflow >/dev/null
admin=$(socket_url postgres tenantflow "$tmp" "$port")
TENANTFLOW_DATABASE_URL=$(socket_url tenantflow_app tenantflow "$tmp" "$port") \
TENANTFLOW_MIGRATE_DATABASE_URL=$(socket_url tenantflow_owner tenantflow "$tmp" "$port") \
TENANTFLOW_MIGRATIONS_DIR=$PWD/migrations "$BUILD/tenantflow" migrate up >/dev/null

tenant=00000000-0000-7000-8000-00000000bench
tenant=${tenant/bench/0001}
echo "loading $items items, $((items * 4)) transitions ..." >&2
start=$(date +%s)
psql -X -q -v ON_ERROR_STOP=1 "$admin" >/dev/null <<SQL
SELECT reporting.ensure_partition(now() - make_interval(months => m)) FROM generate_series(0, 12) m;
SELECT set_config('app.tenant_id', '$tenant', false);
SELECT reporting.workflow_published('po', 1, '[{"name":"draft"},{"name":"submitted","sla":"PT48H"},
  {"name":"escalated","sla":"PT6H"},{"name":"approved","terminal":true},{"name":"rejected","terminal":true}]');
INSERT INTO reporting.watermarks VALUES ('$tenant', 'po', '2000-01-01Z');
CREATE TEMP TABLE gen AS
SELECT gen_random_uuid() AS id,
       now() - interval '365 days' + (i::float8 / $items) * interval '364 days' AS c,
       (random() * 86400)::int AS d1, (random() * 200000)::int AS d2,
       (random() * 40000)::int AS d3, (random() * 30000)::int AS d4, random() < 0.3 AS esc
  FROM generate_series(1, $items) i;
-- The duration bins as reporting.add_fact writes them (migration 0066).
INSERT INTO reporting.facts (tenant_id, workflow_key, item_id, at, from_state, to_state,
                             to_terminal, entered_at, due_at, created_at, stay_bin, lead_bin)
SELECT f.*, reporting.dur_bin(date_part('epoch', f.at - f.entered_at)),
       CASE WHEN f.to_terminal THEN reporting.dur_bin(date_part('epoch', f.at - f.created_at)) END
  FROM (
SELECT '$tenant'::uuid, 'po'::text, id, c, NULL::text, 'draft', false, NULL::timestamptz, NULL::timestamptz, c FROM gen
UNION ALL SELECT '$tenant', 'po', id, c + d1 * interval '1s', 'draft', 'submitted', false, c, NULL::timestamptz, c FROM gen
UNION ALL SELECT '$tenant', 'po', id, c + (d1 + d2) * interval '1s', 'submitted',
       CASE WHEN esc THEN 'escalated' ELSE 'submitted' END, false, c + d1 * interval '1s',
       c + d1 * interval '1s' + interval '48h', c FROM gen
UNION ALL SELECT '$tenant', 'po', id, c + (d1 + d2 + d3) * interval '1s',
       CASE WHEN esc THEN 'escalated' ELSE 'submitted' END, 'escalated', false,
       c + (d1 + d2) * interval '1s', c + (d1 + d2) * interval '1s' + interval '6h', c FROM gen
UNION ALL SELECT '$tenant', 'po', id, c + (d1 + d2 + d3 + d4) * interval '1s', 'escalated',
       'approved', true, c + (d1 + d2 + d3) * interval '1s',
       c + (d1 + d2 + d3) * interval '1s' + interval '6h', c FROM gen
  ) f(tenant_id, workflow_key, item_id, at, from_state, to_state, to_terminal, entered_at,
      due_at, created_at);
DELETE FROM reporting.facts WHERE tenant_id = '$tenant' AND at >= date_trunc('hour', now());
INSERT INTO reporting.items
SELECT '$tenant', id, 'po', 1, 'approved', true, c, c + (d1 + d2 + d3 + d4) * interval '1s', NULL
  FROM gen;
SELECT reporting.roll_up('po');
VACUUM ANALYZE reporting.facts, reporting.rollup_hour, reporting.rollup_hist, reporting.items;
SQL
echo >&2 "loaded in $(( $(date +%s) - start )) s: $(psql -X -At "$admin" -c "SELECT count(*) FILTER (WHERE from_state IS NOT NULL) || ' transitions, ' || count(*) FILTER (WHERE from_state IS NULL) || ' creations' FROM reporting.facts")"

psql -X -q -At -v ON_ERROR_STOP=1 "$admin" 2>&1 <<SQL | sed "s/^NOTICE:  //"
SET client_min_messages = notice;
SELECT set_config('app.tenant_id', '$tenant', false) \\g /dev/null
SET ROLE tenantflow_app;
DO \$\$
DECLARE
    f timestamptz := now() - interval '90 days';
    t timestamptz := now();
    brute text := \$q\$
      WITH f AS (SELECT *, date_part('epoch', at - created_at) AS lead,
                        date_part('epoch', at - entered_at) AS stay
                   FROM reporting.facts WHERE tenant_id = platform.current_tenant()
                    AND workflow_key = 'po' AND at >= \$1 AND at < \$2)
      SELECT json_build_object(
        'created', (SELECT count(*) FROM f WHERE from_state IS NULL),
        'completed', (SELECT count(*) FROM f WHERE to_terminal),
        'lead', (SELECT json_build_object('avg', avg(lead),
                 'p', percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY lead))
                 FROM f WHERE to_terminal),
        'tis', (SELECT json_object_agg(from_state, x) FROM (SELECT from_state,
                 json_build_object('avg', avg(stay), 'n', count(*),
                 'met', count(*) FILTER (WHERE due_at IS NOT NULL AND at <= due_at),
                 'breached', count(*) FILTER (WHERE due_at IS NOT NULL AND at > due_at),
                 'p', percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY stay)) AS x
                 FROM f WHERE from_state IS NOT NULL GROUP BY from_state) s),
        'wip', (SELECT json_object_agg(state, n) FROM (SELECT state, count(*) AS n
                 FROM reporting.items WHERE tenant_id = platform.current_tenant()
                  AND workflow_key = 'po' GROUP BY state) w))\$q\$;
    fast float8[] := '{}';
    slow float8[] := '{}';
    t0 timestamptz;
    sj json;
    bj json;
    runs int := 7;
    mf float8;
    ms float8;
    same boolean;
BEGIN
    FOR i IN 0 .. runs LOOP
        t0 := clock_timestamp();
        sj := reporting.summary('po', f, t);
        IF i > 0 THEN fast := fast || extract(epoch FROM clock_timestamp() - t0) * 1000; END IF;
        t0 := clock_timestamp();
        EXECUTE brute INTO bj USING f, t;
        IF i > 0 THEN slow := slow || extract(epoch FROM clock_timestamp() - t0) * 1000; END IF;
    END LOOP;
    -- The fast figures are the brute-force ones (percentiles to the last bit).
    SELECT (sj->>'created')::bigint = (bj->>'created')::bigint
       AND (sj->>'completed')::bigint = (bj->>'completed')::bigint
       AND (sj#>>'{lead_time,p50}')::float8 = (bj#>>'{lead,p,0}')::float8
       AND (sj#>>'{lead_time,p90}')::float8 = (bj#>>'{lead,p,1}')::float8
       AND bool_and((sj#>>ARRAY['time_in_state', s, 'p50'])::float8 = (bj#>>ARRAY['tis', s, 'p', '0'])::float8
                AND (sj#>>ARRAY['time_in_state', s, 'p90'])::float8 = (bj#>>ARRAY['tis', s, 'p', '1'])::float8)
      INTO same FROM json_object_keys(bj->'tis') s;
    SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) INTO mf FROM unnest(fast) x;
    SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) INTO ms FROM unnest(slow) x;
    RAISE NOTICE '%', format('%-52s %10s', '90-day summary over $((items * 4)) transitions (median of ' || runs || ')', 'ms');
    RAISE NOTICE '%', format('%-52s %10s', '  reporting.summary (rollups + histograms)', round(mf::numeric, 1));
    RAISE NOTICE '%', format('%-52s %10s', '  brute force over raw facts', round(ms::numeric, 1));
    RAISE NOTICE '%', format('%-52s %9sx', '  ratio (target >= 10x and summary < 100 ms)', round((ms / mf)::numeric, 1));
    RAISE NOTICE '%', format('%-52s %10s', '  same counts and p50/p90 as brute force', CASE WHEN same THEN 'yes' ELSE 'NO' END);
END \$\$;
SQL
