"""The authorisation matrix, generated from `tenantflow routes`: every route
that needs a credential is called with no credential (401), with the wrong
kind of credential (operator on tenant routes and the reverse: 403), with a
tenant credential that lacks exactly the route's permission (403), and with
another tenant's admin credential (404 for tenant A's ids; for collection
routes the other tenant sees only itself). A route the matrix cannot fill
fails the test, so a new route cannot slip past it."""
import json
import os
import re
import subprocess

# A public address literal (no DNS), accepted by the webhook address policy.
PUBLIC_HOOK = "https://93.184.215.14/hook"

from harness import (PURCHASE_ORDER, Failure, Tenant, check, cli, eq, operator_token, problem,
                     psql, server, test, unique)

# Every permission named in the contract, plus the workflow's own.
KNOWN_PERMISSIONS = {"tenant:admin", "users:read", "users:write", "roles:write", "apikeys:write",
                     "workflows:read", "workflows:write", "items:read", "items:write",
                     "audit:read", "events:read", "webhooks:write", "reports:read",
                     "po:submit", "po:approve"}

# How to fill each path parameter with one of tenant A's resources, by the
# path segment that precedes it.
PARAMS = {
    ("items", "id"): lambda a: a.item,
    ("users", "id"): lambda a: a.user,
    ("roles", "id"): lambda a: a.role,
    ("api-keys", "id"): lambda a: a.key_id,
    ("workflows", "key"): lambda a: a.workflow,
    ("versions", "n"): lambda a: "1",
    ("tenants", "id"): lambda a: a.id,
    ("webhooks", "id"): lambda a: a.webhook,
}

# A valid body for every route that takes one.
BODIES = {
    ("POST", "/v1/admin/tenants"): lambda a: {
        "slug": unique("m"), "name": "M", "admin_email": "m@example.com",
        "admin_password": "long enough pw"},
    ("PATCH", "/v1/admin/tenants/{id}"): lambda a: {"name": "Renamed by matrix"},
    ("POST", "/v1/users"): lambda a: {"email": f"{unique('m')}@example.com", "name": "M",
                                      "password": "long enough pw"},
    ("PATCH", "/v1/users/{id}"): lambda a: {"name": "Changed by matrix"},
    ("PUT", "/v1/users/{id}/roles"): lambda a: {"roles": []},
    ("POST", "/v1/roles"): lambda a: {"name": unique("m"), "permissions": []},
    ("PATCH", "/v1/roles/{id}"): lambda a: {"name": unique("m")},
    ("POST", "/v1/api-keys"): lambda a: {"name": "m", "roles": []},
    ("POST", "/v1/workflows"): lambda a: dict(PURCHASE_ORDER, key=unique("m")),
    ("PUT", "/v1/workflows/{key}"): lambda a: {k: v for k, v in PURCHASE_ORDER.items()
                                               if k != "key"},
    ("POST", "/v1/items"): lambda a: {"workflow": a.workflow, "title": "m"},
    ("POST", "/v1/webhooks"): lambda a: {"url": PUBLIC_HOOK, "event_types": ["none.such"]},
    ("PATCH", "/v1/webhooks/{id}"): lambda a: {"status": "disabled"},
    ("PATCH", "/v1/items/{id}"): lambda a: {"title": "Changed by matrix"},
    ("POST", "/v1/items/{id}/transitions"): lambda a: {"transition": "submit"},
}

# Query strings for routes whose query parameters are required, so that the
# cross-tenant call reaches the lookup (a 400 would hide a missing 404).
QUERIES = {
    ("GET", "/v1/reports/workflows/{key}/timeseries"): "metric=created&bucket=day",
}

# Routes where another tenant's call legitimately acts in its own namespace
# (PUT creates the caller's own workflow with that key): the caller gets a
# success, and tenant A's resource must stay as it was.
OWN_NAMESPACE = {("PUT", "/v1/workflows/{key}")}


def routes():
    return [r for r in json.loads(cli("routes").stdout) if r["permission"] != "public"]


def fill(route, a):
    def one(m):
        segs = route["path"][:m.start()].rstrip("/").split("/")
        key = (segs[-1], m.group(1))
        if key not in PARAMS:
            raise Failure(f"the matrix cannot fill {m.group(0)} in {route['method']} "
                          f"{route['path']}: add it to PARAMS")
        return str(PARAMS[key](a))
    path = re.sub(r"\{([a-z_]+)\}", one, route["path"])
    query = QUERIES.get((route["method"], route["path"]))
    return f"{path}?{query}" if query else path


def body_for(route, a):
    key = (route["method"], route["path"])
    if route["method"] in ("POST", "PUT", "PATCH"):
        if key not in BODIES:
            raise Failure(f"the matrix has no body for {key}: add it to BODIES")
        return BODIES[key](a)
    return None


class Fixture(Tenant):
    """Tenant A with one resource behind every path parameter."""

    def __init__(self):
        super().__init__()
        self.workflow = unique("wf")
        eq(self.req("POST", "/v1/workflows", dict(PURCHASE_ORDER, key=self.workflow)).status,
           201, "workflow")
        self.item = self.req("POST", "/v1/items", {"workflow": self.workflow, "title": "A item",
                                                   "attributes": {"amount": 1, "vendor": "v"}}
                             ).json["id"]
        self.user = self.req("POST", "/v1/users", {"email": f"{unique('a')}@example.com",
                                                   "name": "A user", "password": "long enough pw"}
                             ).json["id"]
        self.role = self.req("POST", "/v1/roles", {"name": unique("ar"), "permissions": []}
                             ).json["id"]
        key = self.req("POST", "/v1/api-keys", {"name": "A key", "roles": ["admin"]}).json
        self.key_id, self.key = key["id"], key["secret"]
        self.webhook = self.req("POST", "/v1/webhooks", {"url": PUBLIC_HOOK,
                                                         "event_types": ["item.created"]}
                                ).json["id"]

    def snapshot(self):
        paths = [f"/v1/items/{self.item}", f"/v1/items/{self.item}/history",
                 f"/v1/users/{self.user}", f"/v1/workflows/{self.workflow}", "/v1/roles?limit=200",
                 "/v1/api-keys?limit=200", "/v1/users?limit=200", f"/v1/roles/{self.role}",
                 f"/v1/api-keys/{self.key_id}", f"/v1/webhooks/{self.webhook}"]
        paths.append(f"/v1/webhooks/{self.webhook}/deliveries")
        out = {}
        for p in paths:
            r = self.req("GET", p)
            eq(r.status, 200, f"tenant A reads {p}")
            out[p] = r.body
        return out

    def secrets(self):
        return [self.id, self.slug, self.item, self.user, self.role, self.key_id, self.workflow,
                self.webhook]


def lacking(a, perm):
    """An API key of tenant A holding every known permission except perm."""
    perms = sorted(KNOWN_PERMISSIONS - {perm})
    name = unique("all-but")
    eq(a.req("POST", "/v1/roles", {"name": name, "permissions": perms}).status, 201, "role")
    r = a.req("POST", "/v1/api-keys", {"name": name, "roles": [name]})
    eq(r.status, 201, f"key {r}")
    return r.json["secret"]


@test
def matrix_covers_every_route():
    srv = server()
    a, b = Fixture(), Tenant()
    op = operator_token()
    nobody = a.req("POST", "/v1/users", {"email": f"{unique('n')}@example.com", "name": "No roles",
                                         "password": "long enough pw"}).json
    nobody_token = a.login(nobody["email"], "long enough pw")
    # Calls that act in B's own namespace go last: afterwards B really has a
    # resource under A's key, and the 404 checks above must not see it.
    table = sorted(routes(), key=lambda r: (r["method"], r["path"]) in OWN_NAMESPACE)
    perms = {r["permission"] for r in table} - {"operator", "authenticated"}
    check(perms <= KNOWN_PERMISSIONS, f"unknown permissions {perms - KNOWN_PERMISSIONS}")
    lacking_keys = {p: lacking(a, p) for p in perms}
    before = a.snapshot()
    checked = 0
    for route in table:
        m, perm = route["method"], route["permission"]
        path, what = fill(route, a), f"{m} {route['path']}"

        def call(token):
            return srv.request(m, path, body=body_for(route, a), token=token)
        r = call(None)
        problem(r, 401)
        eq(r.header("WWW-Authenticate"), "Bearer", f"{what}: WWW-Authenticate")
        if perm == "operator":
            problem(call(a.token), 403, "forbidden")
            problem(call(a.key), 403, "forbidden")
            checked += 1
            continue
        problem(call(op), 403, "forbidden")
        if perm == "authenticated":
            eq(call(nobody_token).status, 200, f"{what}: any credential of the tenant")
        else:
            p = problem(call(nobody_token), 403, "forbidden")
            check(perm in p["detail"], f"{what}: 403 names {perm}")
            problem(call(lacking_keys[perm]), 403, "forbidden")
        r = call(b.token)
        if "{" not in route["path"]:
            check(r.status < 500, f"{what}: {r}")
            for s in a.secrets():
                check(s not in r.body, f"{what}: tenant B saw A's {s}")
        elif (m, route["path"]) in OWN_NAMESPACE:
            check(r.status in (200, 201), f"{what}: B acts in its own namespace {r}")
        else:
            problem(r, 404, "not-found")
        checked += 1
    after = a.snapshot()
    for p in before:
        eq(after[p], before[p], f"tenant A's {p} after the matrix")
    print(f"     {checked} routes x 4 credentials checked")


@test
def suspended_tenant_is_refused_everywhere_until_reactivated():
    srv = server()
    c = Fixture()
    op = operator_token()
    eq(srv.request("PATCH", f"/v1/admin/tenants/{c.id}", body={"status": "suspended"},
                   token=op).status, 200, "suspend")
    n = 0
    for route in routes():
        if route["permission"] == "operator":
            continue
        for cred in (c.token, c.key):
            r = srv.request(route["method"], fill(route, c), body=body_for(route, c), token=cred)
            problem(r, 403, "forbidden")
            n += 1
    check(n >= 20, f"{n} calls")
    problem(srv.request("POST", "/v1/auth/token", body={
        "tenant": c.slug, "email": c.email, "password": c.password}), 401)
    eq(srv.request("PATCH", f"/v1/admin/tenants/{c.id}", body={"status": "active"},
                   token=op).status, 200, "reactivate")
    for cred in (c.token, c.key):
        eq(srv.request("GET", "/v1/me", token=cred).status, 200, "restored")
    eq(srv.request("GET", f"/v1/items/{c.item}", token=c.key).status, 200, "restored read")


def app_psql(*sql):
    """Runs statements as the application role; (ok, output or error)."""
    try:
        args = []
        for s in sql[1:]:
            args += ["-c", s]
        return True, psql(sql[0], os.environ["TENANTFLOW_DATABASE_URL"], *args)
    except AssertionError as e:
        return False, str(e)


SEALED = ("row-level security", "permission denied")


def probe(table, col, a_id, row, settings):
    """Runs every read and write probe on one table as the application role,
    in one transaction that is rolled back: for each tenant setting, the rows
    of tenant A it can see, the rows of other tenants it can see, and what
    each write did ("rows:N" or "error:<message>")."""
    def q(text):
        return "$q$" + text + "$q$"
    stmts = [("update", f"UPDATE {table} SET {col} = {col} WHERE {col} = '{a_id}'"),
             ("delete", f"DELETE FROM {table} WHERE {col} = '{a_id}'"),
             ("move", f"UPDATE {table} SET {col} = '{a_id}'")]
    if row:
        # Every column but generated ones (those take no value).
        cols = psql(f"SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)"
                    f" FROM pg_attribute WHERE attrelid = '{table}'::regclass AND attnum > 0"
                    f" AND NOT attisdropped AND attgenerated = ''").strip()
        stmts.append(("insert", f"INSERT INTO {table} ({cols}) SELECT {cols} FROM "
                                f"json_populate_record(NULL::{table}, $j${row}$j$)"))
    body = ["DECLARE n bigint; BEGIN"]
    for setting in settings:
        tag = setting or "unset"
        body.append(f"PERFORM set_config('app.tenant_id', '{setting or ''}', true);")
        body.append(f"EXECUTE {q(f'SELECT count(*) FROM {table} WHERE {col} = $1')} INTO n "
                    f"USING '{a_id}'::uuid; RAISE NOTICE 'P|{tag}|seeA|%', n;")
        other = f"SELECT count(*) FROM {table} WHERE {col} IS DISTINCT FROM $1"
        body.append(f"EXECUTE {q(other)} INTO n USING nullif('{setting or ''}', '')::uuid;"
                    f" RAISE NOTICE 'P|{tag}|seeOthers|%', n;")
        for name, sql in stmts:
            body.append(f"BEGIN EXECUTE {q(sql)}; GET DIAGNOSTICS n = ROW_COUNT;"
                        f" RAISE NOTICE 'P|{tag}|{name}|rows:%', n;"
                        f" EXCEPTION WHEN others THEN"
                        f" RAISE NOTICE 'P|{tag}|{name}|error:%', SQLERRM; END;")
    body.append("END")
    do = "DO $do$ " + "\n".join(body) + " $do$"
    p = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1",
                        os.environ["TENANTFLOW_DATABASE_URL"], "-c", "BEGIN", "-c", do,
                        "-c", "ROLLBACK"], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, f"{table}: probe failed: {p.stderr}")
    out = {}
    for line in p.stderr.splitlines():
        if "P|" in line:
            tag, name, value = line.split("P|", 1)[1].split("|", 2)
            out[(tag, name)] = value
    return out


@test
def every_tenant_table_is_sealed_for_the_app_role():
    a, b = Fixture(), Fixture()
    a.req("POST", f"/v1/items/{a.item}/transitions", {"transition": "submit"})
    tables = psql(
        "SELECT c.oid::regclass::text, c.relrowsecurity AND c.relforcerowsecurity,"
        " has_table_privilege('tenantflow_app', c.oid, 'SELECT')"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        " AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1").split()
    nobody = "00000000-0000-7000-8000-000000000000"
    tenant_tables = with_rows = 0
    empty = []
    for line in tables:
        table, forced, readable = line.split("|")
        if readable != "t":
            ok, out = app_psql(f"SELECT count(*) FROM {table}")
            check(not ok and "permission denied" in out, f"{table} readable: {out}")
            continue
        eq(forced, "t", f"{table}: RLS enabled and forced")
        if table == "idem.operator_keys":
            # Not tenant data: operators' idempotency records, visible only to a
            # transaction bound to no tenant (operator requests). Prove that
            # no tenant-bound transaction sees or writes them.
            ok, out = app_psql(f"SELECT set_config('app.tenant_id', '{a.id}', false)",
                               f"SELECT count(*) FROM {table}")
            check(ok and out.split()[-1] == "0", f"{table} visible to a tenant: {out}")
            continue
        quals = psql(f"SELECT coalesce(qual, '') FROM pg_policies WHERE schemaname || '.' || "
                     f"tablename = '{table}' AND 'tenantflow_app' = ANY (roles) OR "
                     f"schemaname || '.' || tablename = '{table}' AND 'public' = ANY (roles)")
        m = re.search(r"\(?(\w+) = platform\.current_tenant\(\)", quals)
        check(m, f"{table}: a policy on platform.current_tenant() ({quals!r})")
        col = m.group(1)
        tenant_tables += 1
        a_rows = int(psql(f"SELECT count(*) FROM {table} WHERE {col} = '{a.id}'"))
        with_rows += a_rows > 0
        if not a_rows:
            empty.append(table)
        row = None
        if a_rows:
            row = psql(f"SELECT row_to_json(x)::text FROM {table} x WHERE {col} = '{a.id}' "
                       "LIMIT 1").strip()
        settings = (None, nobody, b.id)
        res = probe(table, col, a.id, row, settings)
        for setting in settings:
            tag = setting or "unset"
            eq((res.get((tag, "seeA")), res.get((tag, "seeOthers"))), ("0", "0"),
               f"{table}: rows of A / of other tenants visible with tenant {tag}")
            for name in ("update", "delete", "move") + (("insert",) if row else ()):
                got = res.get((tag, name), "missing")
                check(got == "rows:0" or (got.startswith("error:") and
                                          any(x in got for x in SEALED)),
                      f"{table}: {name} as {tag}: {got}")
        if a_rows:
            ok, out = app_psql(f"SELECT set_config('app.tenant_id', '{a.id}', false)",
                               f"SELECT count(*) FROM {table} WHERE {col} = '{a.id}'")
            eq(out.split()[-1], str(a_rows), f"{table}: A sees its own rows (the zeros count)")
    check(tenant_tables >= 10, f"only {tenant_tables} tenant tables found")
    # Every table is checked; those holding A's rows also prove the zeros
    # are not vacuous. Some fill only later (seals, deliveries, rollups).
    check(with_rows >= 12, f"A has rows in only {with_rows} of {tenant_tables} tables")
    print(f"     {tenant_tables} tenant tables sealed ({with_rows} holding A's rows; "
          f"empty for A: {', '.join(empty)})")
