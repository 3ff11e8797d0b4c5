#!/usr/bin/env bash
# `make run`: a local PostgreSQL under .local/pg (unless TENANTFLOW_DATABASE_URL
# is set), roles, database, migrations, a demo tenant with a purchase-order
# workflow and a few items, then the server in the foreground on
# 127.0.0.1:8080 until Ctrl-C. Safe to run again: everything is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

BIN=${TF_BIN:-$PWD/build/tenantflow}
LOCAL=${TENANTFLOW_LOCAL_DIR:-$PWD/.local}
PORT=${TENANTFLOW_PG_PORT:-54329}
LISTEN=${TENANTFLOW_LISTEN:-127.0.0.1:8080}
URL=http://$LISTEN
mkdir -p "$LOCAL"

local_cluster=
if [ -n "${TENANTFLOW_DATABASE_URL:-}" ]; then
    echo "Using the database at TENANTFLOW_DATABASE_URL (roles and database must exist;"
    echo "TENANTFLOW_MIGRATE_DATABASE_URL should name the owner role)."
    PG_ADMIN_URL=${PG_ADMIN_URL:-}
else
    if [ "$(id -u)" = 0 ]; then
        # The cluster runs as 'postgres', which must be able to reach .local/pg.
        chmod o+x "$LOCAL"
    fi
    pg_up "$LOCAL/pg" "$PORT"
    local_cluster=1
    PG_ADMIN_URL=$(socket_url postgres tenantflow "$LOCAL/pg" "$PORT")
    pg_bootstrap "$(socket_url postgres postgres "$LOCAL/pg" "$PORT")" tenantflow >/dev/null
    export TENANTFLOW_DATABASE_URL
    TENANTFLOW_DATABASE_URL=$(socket_url tenantflow_app tenantflow "$LOCAL/pg" "$PORT")
    export TENANTFLOW_MIGRATE_DATABASE_URL
    TENANTFLOW_MIGRATE_DATABASE_URL=$(socket_url tenantflow_owner tenantflow "$LOCAL/pg" "$PORT")
fi
export TENANTFLOW_MIGRATIONS_DIR=${TENANTFLOW_MIGRATIONS_DIR:-$PWD/migrations}
export TENANTFLOW_SIGNING_KEY=${TENANTFLOW_SIGNING_KEY:-$LOCAL/signing.key}
export TENANTFLOW_LISTEN=$LISTEN
[ -s "$TENANTFLOW_SIGNING_KEY" ] || { umask 077; "$BIN" keygen k1 >"$TENANTFLOW_SIGNING_KEY"; }
"$BIN" migrate up
[ -s "$LOCAL/operator.token" ] || { umask 077; "$BIN" operator create demo >"$LOCAL/operator.token"; }
OPERATOR_TOKEN=$(cat "$LOCAL/operator.token")

DEMO_TENANT=acme
DEMO_EMAIL=admin@acme.example
DEMO_PASSWORD=demo-password-1

api() { # METHOD PATH TOKEN [JSON]
    curl -sS -X "$1" "$URL$2" -H "Authorization: Bearer $3" \
        ${4:+-H "Content-Type: application/json" --data "$4"} -o /dev/null -w '%{http_code}'
}
seed() {
    local code token
    code=$(api POST /v1/admin/tenants "$OPERATOR_TOKEN" \
        "{\"slug\":\"$DEMO_TENANT\",\"name\":\"ACME Corporation\",\"admin_email\":\"$DEMO_EMAIL\",\"admin_password\":\"$DEMO_PASSWORD\"}")
    [ "$code" = 201 ] || { [ "$code" = 409 ] && return 0; echo "seeding failed ($code)" >&2; return 1; }
    token=$(curl -sS "$URL/v1/auth/token" -H 'Content-Type: application/json' \
        --data "{\"tenant\":\"$DEMO_TENANT\",\"email\":\"$DEMO_EMAIL\",\"password\":\"$DEMO_PASSWORD\"}" |
        sed -E 's/.*"access_token":"([^"]+)".*/\1/')
    api POST /v1/workflows "$token" "$(cat scripts/demo/purchase-order.json)" >/dev/null
    local i=0
    while IFS= read -r line; do
        i=$((i + 1))
        location=$(curl -sS "$URL/v1/items" -H "Authorization: Bearer $token" \
            -H 'Content-Type: application/json' --data "$line" -o /dev/null -w '%header{location}')
        id=${location##*/}
        # Move some items along so the demo shows every state.
        [ $i -ge 3 ] && api POST "/v1/items/$id/transitions" "$token" '{"transition":"submit"}' >/dev/null
        [ $i -eq 5 ] && api POST "/v1/items/$id/transitions" "$token" '{"transition":"approve","comment":"within budget"}' >/dev/null
        [ $i -eq 6 ] && api POST "/v1/items/$id/transitions" "$token" '{"transition":"escalate"}' >/dev/null
    done <scripts/demo/items.jsonl
    echo "Seeded tenant '$DEMO_TENANT' with a purchase-order workflow and $i items."
}

# Seed through the real API with a short-lived server, then serve for real.
"$BIN" serve 2>"$LOCAL/seed.log" &
pid=$!
for _ in $(seq 100); do curl -fs "$URL/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
seed || { kill "$pid"; cat "$LOCAL/seed.log" >&2; exit 1; }
kill -TERM "$pid"; wait "$pid" || true

# Quoted, so `source demo.env` keeps the & in PG_ADMIN_URL.
cat >"$LOCAL/demo.env" <<ENV
TENANTFLOW_URL='$URL'
DEMO_TENANT='$DEMO_TENANT'
DEMO_EMAIL='$DEMO_EMAIL'
DEMO_PASSWORD='$DEMO_PASSWORD'
OPERATOR_TOKEN='$OPERATOR_TOKEN'
PG_ADMIN_URL='$PG_ADMIN_URL'
APP_DATABASE_URL='$TENANTFLOW_DATABASE_URL'
OWNER_DATABASE_URL='${TENANTFLOW_MIGRATE_DATABASE_URL:-$TENANTFLOW_DATABASE_URL}'
ENV
cat <<MSG

tenantflow is serving on $URL (Ctrl-C stops it${local_cluster:+ and the local PostgreSQL}).
The demo values are in $LOCAL/demo.env:

  source $LOCAL/demo.env
  TOKEN=\$(curl -s \$TENANTFLOW_URL/v1/auth/token -H 'Content-Type: application/json' \\
    -d "{\"tenant\":\"\$DEMO_TENANT\",\"email\":\"\$DEMO_EMAIL\",\"password\":\"\$DEMO_PASSWORD\"}" \\
    | sed -E 's/.*"access_token":"([^"]+)".*/\\1/')
  curl -s \$TENANTFLOW_URL/v1/workflows/purchase-order -H "Authorization: Bearer \$TOKEN"
  psql "\$PG_ADMIN_URL"     # the database, as superuser

MSG
[ -n "$local_cluster" ] || exec "$BIN" serve
# The cluster this script started goes down with the server (the next
# `make run` starts it again, data and all).
rc=0
"$BIN" serve || rc=$?
pg_down "$LOCAL/pg"
exit "$rc"
