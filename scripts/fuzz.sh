#!/usr/bin/env bash
# `make fuzz`: runs each libFuzzer target of tests/fuzz/ (built by the
# Makefile into $BUILD/fuzz/fuzz_NAME with clang) for FUZZ_SECONDS seconds,
# starting from its committed corpus. New inputs go to a scratch corpus under
# $BUILD/fuzz-corpus/NAME, never into tests/fuzz/corpus; crashes, leaks and
# sanitizer reports are written to $BUILD/fuzz-artifacts/. Names on the
# command line (or FUZZ_TARGETS) run only those targets. Prints one line per
# target (executions, exec/s, coverage) and exits 1 if any target failed.
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
TF_TESTDATA=${TF_TESTDATA:-$(cd .. && pwd)/shared/testdata}

# The longest input worth trying per target, from what each parser accepts:
# tokens stop at 4096 bytes, cursors at 1024, key files are small, a request
# head must be able to pass the 8 KiB request-target limit.
declare -A max_len=(
    [json]=4096 [token]=4200 [keyset]=2048 [b64url]=1024 [uuid]=64 [cursor]=1400
    [text]=1024 [idem_key]=300 [limit]=32 [router]=600 [request]=10000 [rfc3339]=64
    [duration]=64 [etag]=256
)

names=("$@")
[ ${#names[@]} -gt 0 ] || read -ra names <<<"${FUZZ_TARGETS:-}"
if [ ${#names[@]} -eq 0 ]; then
    for src in tests/fuzz/fuzz_*.c; do
        n=$(basename "$src" .c)
        names+=("${n#fuzz_}")
    done
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$BUILD/fuzz-artifacts" "$BUILD/fuzz-logs"
status=0 summary=()
for name in "${names[@]}"; do
    bin=$BUILD/fuzz/fuzz_$name
    if [ ! -x "$bin" ]; then
        echo "fuzz: no target $name ($bin)" >&2
        status=1
        continue
    fi
    scratch=$BUILD/fuzz-corpus/$name
    mkdir -p "$scratch"
    seeds=(tests/fuzz/corpus/"$name")
    # The JSON parser also starts from the JSONTestSuite files the unit tests use.
    if [ "$name" = json ] && [ -d "$TF_TESTDATA/JSONTestSuite/test_parsing" ]; then
        seeds+=("$TF_TESTDATA/JSONTestSuite/test_parsing")
    fi
    log=$BUILD/fuzz-logs/$name.log
    echo "== fuzz $name: ${FUZZ_SECONDS}s, max_len ${max_len[$name]:-1024}"
    "$bin" -max_total_time="$FUZZ_SECONDS" -max_len="${max_len[$name]:-1024}" \
        -print_final_stats=1 -artifact_prefix="$BUILD/fuzz-artifacts/$name-" \
        "$scratch" "${seeds[@]}" >"$log" 2>&1
    rc=$?
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
    [ -n "$done_line" ] || done_line=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)
    rate=$(sed -nE 's/.*exec\/s: ([0-9]+).*/\1/p' <<<"$done_line")
    cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$done_line")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$done_line")
    corp=$(sed -nE 's/.*corp: ([0-9]+\/[0-9]+[a-zA-Z]*).*/\1/p' <<<"$done_line")
    result=ok
    if [ $rc -ne 0 ]; then
        result="FAILED (exit $rc; see $log and $BUILD/fuzz-artifacts/$name-*)"
        status=1
        grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -n 8
    fi
    line=$(printf '%-9s %ss  %10s execs  %7s exec/s  cov %5s  ft %6s  corpus %-10s %s' "$name" \
        "$FUZZ_SECONDS" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result")
    echo "$line"
    summary+=("$line")
done
echo "== fuzz summary (logs in $BUILD/fuzz-logs, new inputs in $BUILD/fuzz-corpus)"
printf '%s\n' "${summary[@]}"
exit $status
