#!/usr/bin/env bash
# `make test`: a throwaway PostgreSQL on a private socket, the Check unit
# tests, then the integration tests against the real binary over HTTP. Ends
# with one line "N passed, N failed". BUILD picks the build directory
# (build, or build-san for the sanitizer run).
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

BUILD=${BUILD:-build}
tmp=$(mktemp -d /tmp/tenantflow-test.XXXXXX)
chmod 755 "$tmp"
port=$((20000 + RANDOM % 12000))  # below the ephemeral range (32768-60999)
cleanup() { pg_down "$tmp"; [ -n "${TF_KEEP_TMP:-}" ] || rm -rf "$tmp"; }
trap cleanup EXIT

PG_EXTRA_CONF=$'fsync = off\nsynchronous_commit = off\nfull_page_writes = off' \
    pg_up "$tmp" "$port" || { echo "0 passed, 1 failed"; exit 1; }
pg_bootstrap "$(socket_url postgres postgres "$tmp" "$port")" tenantflow >/dev/null

export TF_BIN=$PWD/$BUILD/tenantflow
export TF_TMP=$tmp
export TF_ADMIN_URL=$(socket_url postgres tenantflow "$tmp" "$port")
export TENANTFLOW_DATABASE_URL=$(socket_url tenantflow_app tenantflow "$tmp" "$port")
export TENANTFLOW_MIGRATE_DATABASE_URL=$(socket_url tenantflow_owner tenantflow "$tmp" "$port")
export TENANTFLOW_MIGRATIONS_DIR=$PWD/migrations
export TENANTFLOW_SIGNING_KEY=$tmp/signing.key
export TF_TESTDATA=${TF_TESTDATA:-$(cd .. && pwd)/shared/testdata}
"$TF_BIN" keygen k1 >"$TENANTFLOW_SIGNING_KEY"
"$TF_BIN" migrate up >/dev/null || { echo "0 passed, 1 failed"; exit 1; }

passed=0 failed=0

echo "== unit tests ($BUILD/unit_tests)"
"$BUILD/unit_tests" 2>&1 | tee "$tmp/unit.log"
line=$(grep -E '^[0-9]+%: Checks: [0-9]+' "$tmp/unit.log" | tail -n 1)
if [ -n "$line" ]; then
    checks=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
    bad=$(( $(sed -E 's/.*Failures: ([0-9]+).*/\1/' <<<"$line") + $(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$line") ))
    passed=$((passed + checks - bad)); failed=$((failed + bad))
else
    failed=$((failed + 1))
fi
if grep -qE 'Sanitizer|runtime error:' "$tmp/unit.log"; then
    echo "sanitizer report in unit tests"; failed=$((failed + 1))
fi

# Every committed fuzz corpus file through every fuzz target (tests/fuzz/,
# replay_NAME binaries built by make test): one check per target.
echo "== fuzz corpus replay (tests/fuzz/corpus)"
corpora=(tests/fuzz/corpus/*/)
corpora=("${corpora[@]%/}")
replayed=0 targets=0
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    name=${name#fuzz_}
    log=$tmp/replay_$name.log
    targets=$((targets + 1))
    if "$BUILD/fuzz/replay_$name" "${corpora[@]}" >"$log" 2>&1 &&
        ! grep -qE 'Sanitizer|runtime error:' "$log" &&
        line=$(grep -E "^replay replay_$name: [0-9]+ files replayed$" "$log"); then
        echo "$line"
        replayed=$((replayed + $(sed -E 's/.*: ([0-9]+) files.*/\1/' <<<"$line")))
        passed=$((passed + 1))
    else
        echo "fuzz target $name failed on the corpus:"
        tail -n 40 "$log"
        failed=$((failed + 1))
    fi
done
echo "fuzz replay: $replayed files replayed through $targets targets (${#corpora[@]} corpora)"

echo "== integration tests"
python3 tests/integration/run.py "$@" 2>&1 | tee "$tmp/integration.log"
line=$(grep -E '^integration: [0-9]+ passed, [0-9]+ failed' "$tmp/integration.log" | tail -n 1)
if [ -n "$line" ]; then
    passed=$((passed + $(sed -E 's/^integration: ([0-9]+) passed.*/\1/' <<<"$line")))
    failed=$((failed + $(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")))
else
    failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
