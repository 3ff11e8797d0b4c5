#!/usr/bin/env bash
# `make check`: the static checks that need no database.
#   1. the OpenAPI document passes `redocly lint` (recommended rules) with no
#      errors; @redocly/cli is installed from the npm registry into
#      .local/tools on first use, pinned to one version;
#   2. `git diff --check`: no whitespace errors in the committed tree nor in
#      uncommitted changes;
#   3. the module walls (scripts/check_walls.py).
# Runs every check, then exits 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."

REDOCLY_VERSION=2.77.0
tools=.local/tools
failed=0

echo "== redocly lint docs/openapi.json"
redocly=$tools/node_modules/.bin/redocly
if [ ! -x "$redocly" ] || ! grep -q "\"version\": \"$REDOCLY_VERSION\"" \
        "$tools/node_modules/@redocly/cli/package.json" 2>/dev/null; then
    command -v npm >/dev/null || { echo "make check needs npm (Debian package npm)" >&2; exit 1; }
    mkdir -p "$tools"
    npm install --prefix "$tools" --no-save --no-audit --no-fund --loglevel=error \
        "@redocly/cli@$REDOCLY_VERSION" || { echo "cannot install @redocly/cli" >&2; exit 1; }
fi
# The recommended rule set; warnings are shown, errors fail the check.
REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
    "$redocly" lint --format=stylish docs/openapi.json || failed=1

echo "== git diff --check"
empty_tree=$(git hash-object -t tree /dev/null)
git diff --check "$empty_tree" HEAD -- || failed=1   # everything committed
git diff --check HEAD -- || failed=1                 # staged and unstaged changes

echo "== module walls"
python3 scripts/check_walls.py || failed=1

if [ "$failed" -ne 0 ]; then
    echo "make check: FAILED"
    exit 1
fi
echo "make check: ok"
