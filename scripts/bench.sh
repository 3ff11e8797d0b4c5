#!/usr/bin/env bash
# `make bench`: seeds 100,000 items in 10 tenants on a throwaway PostgreSQL,
# then for GET item, list page, create and transition drives the server with
# wrk at 32 and 64 connections, runs the same SQL through pgbench, and prints
# one table with requests/s, p50, p99 and the ratio to pgbench; plus the
# server's CPU per GET and its resident memory idle, under load and with
# 1,000 idle keep-alive connections. Then the 90-day report summary over one
# million transitions against brute force (scripts/bench-reports.sh). Figures
# are ratios measured in the same session, because the machines are shared
# and noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

DURATION=${BENCH_DURATION:-8}
# Each scenario is measured in ROUNDS rounds (pgbench, then wrk at 32 and 64
# connections, back to back); the table shows medians over the rounds.
ROUNDS=${BENCH_ROUNDS:-3}
[ "$DURATION" -ge 5 ] || { echo "BENCH_DURATION must be 5 seconds or more" >&2; exit 2; }
# BENCH_SCENARIOS="get list" runs a subset (for working on one of them).
SCENARIOS=${BENCH_SCENARIOS:-get list create transition}
BIN=${BENCH_BIN:-$PWD/build/tenantflow}  # BENCH_BIN: another build, for A/B runs
tmp=$(mktemp -d /tmp/tenantflow-bench.XXXXXX)
chmod 755 "$tmp"
# Below the kernel's ephemeral range (32768-60999), where a client connection
# can hold the port and the server fail to bind.
port=$((20000 + RANDOM % 12000))
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    pg_down "$tmp"
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
ulimit -n 8192 2>/dev/null || ulimit -n 4096

PG_EXTRA_CONF=$'fsync = off\nmax_connections = 200' pg_up "$tmp" "$port"
pg_bootstrap "$(socket_url postgres postgres "$tmp" "$port")" tenantflow >/dev/null
export TENANTFLOW_DATABASE_URL=$(socket_url tenantflow_app tenantflow "$tmp" "$port")
export TENANTFLOW_MIGRATE_DATABASE_URL=$(socket_url tenantflow_owner tenantflow "$tmp" "$port")
export TENANTFLOW_MIGRATIONS_DIR=$PWD/migrations
export TENANTFLOW_SIGNING_KEY=$tmp/signing.key
export TENANTFLOW_TOKEN_TTL=3600
export TENANTFLOW_LOG_LEVEL=warn
# The server sizes itself (one I/O thread and two connections per CPU)
# unless BENCH_THREADS / BENCH_POOL say otherwise; pgbench then gets as many
# connections as the pool the server reports in /metrics.
unset TENANTFLOW_THREADS TENANTFLOW_DB_POOL_SIZE
[ -z "${BENCH_THREADS:-}" ] || export TENANTFLOW_THREADS=$BENCH_THREADS
[ -z "${BENCH_POOL:-}" ] || export TENANTFLOW_DB_POOL_SIZE=$BENCH_POOL
export TENANTFLOW_RATE_LIMIT=off
export TENANTFLOW_MAX_CONNECTIONS_PER_IP=0  # wrk and the 1,000 idle connections all come from 127.0.0.1
http_port=$((port + 1))
export TENANTFLOW_LISTEN=127.0.0.1:$http_port
admin_url=$(socket_url postgres tenantflow "$tmp" "$port")
"$BIN" keygen k1 >"$TENANTFLOW_SIGNING_KEY"
"$BIN" migrate up >/dev/null
operator=$("$BIN" operator create bench)

start_server() {
    "$BIN" serve 2>>"$tmp/server.log" &
    server_pid=$!
    for _ in $(seq 300); do
        curl -fs "http://127.0.0.1:$http_port/readyz" >/dev/null && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "the server did not come up:" >&2
    tail -n 5 "$tmp/server.log" >&2
    exit 1
}
stop_server() { kill "$server_pid"; wait "$server_pid" || true; server_pid=; }
start_server

echo "seeding 10 tenants x 10,000 items ..." >&2
python3 scripts/bench_seed.py "http://127.0.0.1:$http_port" "$operator" "$admin_url" "$tmp"

# pgbench gets the statements the server is seen to run: one request of each
# scenario with statement logging on, then the log becomes pgbench scripts.
stop_server
psql -X -q "$admin_url" -c "ALTER ROLE tenantflow_app SET log_statement = 'all'"
start_server
python3 - "$tmp" "$http_port" <<'PY'
import json, sys, urllib.request
d, port = sys.argv[1], sys.argv[2]
s = json.load(open(f"{d}/sample.json"))
item = s["captured"]["item"]
def call(method, path, rid, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body else None)
    req.add_header("Authorization", "Bearer " + s["token"])
    req.add_header("Content-Type", "application/json")
    req.add_header("X-Request-Id", rid)
    with urllib.request.urlopen(req) as r:
        r.read()
        return r.headers.get("Location")
call("GET", f"/v1/items/{item}", "bench-get")
call("GET", "/v1/items?workflow=bench&limit=50", "bench-list")
s["captured"]["created"] = call("POST", "/v1/items", "bench-create",
                                {"workflow": "bench", "title": "Created", "attributes": {"n": 1}}
                                ).rsplit("/", 1)[1]
call("POST", f"/v1/items/{item}/transitions", "bench-transition", {"transition": "touch"})
json.dump(s, open(f"{d}/sample.json", "w"))
PY
stop_server
psql -X -q "$admin_url" -c "ALTER ROLE tenantflow_app RESET log_statement"
python3 scripts/bench_capture.py "$tmp/data/server.log" "$tmp" "$tmp/sample.json" >&2
start_server

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$server_pid/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
# PostgreSQL's CPU: the postmaster's own and its reaped children's (a
# backend that has exited), plus its live children's.
pg_ticks() {
    local pm
    pm=$(head -n 1 "$tmp/data/postmaster.pid")
    { awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat"
      for c in $(cat "/proc/$pm/task/$pm/children"); do
          awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null || true
      done; } | awk '{t += $1} END {print t}'
}
hz=$(getconf CLK_TCK)
rss_idle=$(rss_kb)
pool=$(curl -fs "http://127.0.0.1:$http_port/metrics" | awk '$1 == "tf_db_pool_size" {print $2}')
[ -n "$pool" ] || { echo "the server's /metrics did not give tf_db_pool_size" >&2; exit 1; }

# wrk: requests/s and latency percentiles (ms) for one scenario.
run_wrk() { # NAME CONNECTIONS
    wrk -t2 -c"$2" -d"${DURATION}s" --latency -s "$tmp/$1.lua" "http://127.0.0.1:$http_port" \
        >"$tmp/wrk-$1-$2.txt" 2>&1 || true
    python3 scripts/bench_parse.py wrk "$tmp/wrk-$1-$2.txt"
}
# pgbench: transactions/s and latency percentiles (ms, from its per-transaction
# log) for one scenario's SQL with CLIENTS connections of its own, counted
# from WARMUP seconds in to a second before the end; then the transactions
# in that window and PostgreSQL's CPU ticks over it.
WARMUP=2
run_pgbench() { # NAME CLIENTS
    local bin
    bin=$(pg_bindir)
    local files=()
    for f in "$tmp/$1"-*.sql; do files+=(-f "$f"); done
    local log=$tmp/pglog-$1-$2
    rm -f "$log".*
    # As the application role, so Row-Level Security costs pgbench what it costs us.
    "$bin/pgbench" -n -M prepared -c "$2" -j 2 -T "$DURATION" -l --log-prefix="$log" \
        "${files[@]}" "$TENANTFLOW_DATABASE_URL" >"$tmp/pgbench-$1-$2.txt" 2>&1 &
    local pid=$!
    sleep "$WARMUP"
    local from ticks
    from=$(date +%s.%N) ticks=$(pg_ticks)
    sleep $((DURATION - WARMUP - 1))
    local to
    to=$(date +%s.%N) ticks=$(($(pg_ticks) - ticks))
    wait "$pid" || true
    echo "$(python3 scripts/bench_parse.py pgbench "$from" "$to" "$log".*)|$ticks"
}

# Lets the background jobs (feed sequencer, audit sealer) finish what the
# last writes left them and writes the dirty pages out, so that the next
# measurement does not pay for the previous one.
settle() {
    psql -X -q "$admin_url" -c "VACUUM ANALYZE" >/dev/null
    for _ in $(seq 120); do
        curl -fs "http://127.0.0.1:$http_port/metrics" | grep -q '^tf_outbox_unsequenced_events 0$' &&
            [ "$(psql -X -At "$admin_url" -c "SELECT count(*) FROM audit.records r, audit.sealer_state s
                                              WHERE (r.xid, r.id) > (s.last_xid, s.last_id)")" = 0 ] &&
            break
        sleep 0.5
    done
    psql -X -q "$admin_url" -c "CHECKPOINT" >/dev/null
}

# Warm up (connections, prepared statements, caches) before measuring.
wrk -t2 -c32 -d2s -s "$tmp/get.lua" "http://127.0.0.1:$http_port" >/dev/null 2>&1 || true

# The ratio is against pgbench with as many connections as the server's pool
# (its best rate here), run just before the server in the same round, so
# that both see the same machine; the shared machine's noise moves a round,
# and the median of the rounds keeps it out of the table.
rows=()
rss_load=0
for s in $SCENARIOS; do
    for round in $(seq "$ROUNDS"); do
        settle
        pg=$(run_pgbench "$s" "$pool")  # tps|p50|p99|transactions|ticks
        IFS='|' read -r pg_tps _ _ pg_txns pg_cpu <<<"$pg"
        for c in 32 64; do
            before=$(cpu_ticks) pg_before=$(pg_ticks)
            w=$(run_wrk "$s" "$c")
            after=$(cpu_ticks)
            rows+=("R|$s|$c|$w|$pg_tps|$((after - before))|$(($(pg_ticks) - pg_before))|$pg_cpu|$pg_txns")
            r=$(rss_kb); [ "$r" -gt "$rss_load" ] && rss_load=$r
        done
    done
done
# Transition throughput with auditing and events on: one tenant vs ten.
one= ten=
if [[ " $SCENARIOS " == *" transition "* ]]; then
    settle
    ten=$(run_wrk transition 64)
    one=$(run_wrk transition1 64)
fi
idle=$(python3 scripts/bench_idle.py 127.0.0.1 "$http_port" 1000 "$server_pid")

# The yardstick for latency: the same SQL from pgbench with as many clients
# of its own as wrk has connections, nothing in between.
for s in $SCENARIOS; do
    settle
    for c in 32 64; do rows+=("Y|$s|$c|$(run_pgbench "$s" "$c")"); done
done

python3 scripts/bench_parse.py table "$hz" "$DURATION" "$rss_idle" "$rss_load" "$idle" "${rows[@]}"
[ -z "$one" ] || python3 - "$one" "$ten" <<'PY'
import sys
one, ten = float(sys.argv[1].split("|")[0]), float(sys.argv[2].split("|")[0] or 0)
share = f"{one / ten:.0%}" if ten else "n/a"
print(f"Transitions at 64 connections, one tenant: {one:.0f}/s; ten tenants: {ten:.0f}/s "
      f"(one tenant = {share} of ten; target >= 80 %).")
PY

# The report summary against brute force, on its own throwaway PostgreSQL
# (BENCH_REPORTS=0 skips it).
[ "${BENCH_REPORTS:-1}" = 0 ] && exit 0
echo
scripts/bench-reports.sh "${BENCH_REPORT_ITEMS:-250000}"
