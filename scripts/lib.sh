# Shared helpers for the scripts: where PostgreSQL lives, running it as an
# unprivileged user when invoked as root, and creating the roles.
# shellcheck shell=bash

pg_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$d" ] || { echo "PostgreSQL server binaries not found (run scripts/deps.sh)" >&2; return 1; }
    echo "$d"
}

# Runs a command as the cluster's owner: 'postgres' when we are root.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# pg_up DIR PORT: starts (or reuses) a cluster in DIR/data with its socket in
# DIR/sock. Trust authentication on a private socket only: nothing listens on
# TCP. Extra server settings can be passed in PG_EXTRA_CONF.
pg_up() {
    local dir=$1 port=$2 bin
    bin=$(pg_bindir) || return 1
    mkdir -p "$dir/sock"
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$dir" "$dir/sock"
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
        as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
            --no-instructions >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; return 1; }
        cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir/sock'
port = $port
max_connections = 200
shared_buffers = 128MB
${PG_EXTRA_CONF:-}
CONF
    fi
    if ! as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 60 start >/dev/null \
            || { tail -n 20 "$dir/data/server.log" >&2; return 1; }
    fi
}

pg_down() {
    local dir=$1 bin
    bin=$(pg_bindir) || return 1
    [ -f "$dir/data/PG_VERSION" ] || return 0
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

# pg_bootstrap ADMIN_URL DBNAME: creates the owner and application roles and
# the database (idempotent). Needs a superuser URL or key=value conninfo.
pg_bootstrap() {
    local admin=$1 db=$2
    psql -X -q -v ON_ERROR_STOP=1 -v db="$db" "$admin" <<'SQL'
SELECT 'CREATE ROLE tenantflow_owner LOGIN NOSUPERUSER NOBYPASSRLS'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenantflow_owner') \gexec
SELECT 'CREATE ROLE tenantflow_app LOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenantflow_app') \gexec
SELECT format('CREATE DATABASE %I OWNER tenantflow_owner ENCODING ''UTF8''', :'db')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
\c :"db"
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'db') \gexec
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO tenantflow_app', :'db') \gexec
SELECT format('GRANT CONNECT, CREATE ON DATABASE %I TO tenantflow_owner', :'db') \gexec
-- Under Row-Level Security an index can serve a filter only when the filter's
-- functions are LEAKPROOF. These three cannot reveal a row through an error
-- or a side effect (textlike can fail only on its pattern, which the server
-- escapes), so marking them lets the item list's q and attributes filters use
-- their GIN indexes. Per database, idempotent.
ALTER FUNCTION pg_catalog.textlike(text, text) LEAKPROOF;
ALTER FUNCTION pg_catalog.lower(text) LEAKPROOF;
ALTER FUNCTION pg_catalog.jsonb_contains(jsonb, jsonb) LEAKPROOF;
SQL
}

# socket_url ROLE DB DIR PORT
socket_url() {
    echo "postgresql://$1@/$2?host=$3/sock&port=$4"
}
