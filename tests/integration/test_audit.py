"""Audit trail: one record per change, filters and paging, append-only, and
the hash chain that exposes a superuser's edit."""
import json
import time
import uuid

from harness import (PURCHASE_ORDER, Failure, Tenant, check, cli, eq, operator_token, problem,
                     psql, server, test, unique)

PUBLIC_HOOK = "https://93.184.215.14/hook"  # a public literal: no DNS needed


def rid():
    return "audit-" + uuid.uuid4().hex


def records_for(request_id):
    out = psql("SELECT action FROM audit.records WHERE request_id = '%s' ORDER BY id" % request_id)
    return [line for line in out.splitlines() if line]


# Each mutating route: a driver that performs one successful call with the
# given request id and returns the audit action it must produce. A route that
# changes nothing must be listed in NOT_A_CHANGE with the reason.
NOT_A_CHANGE = {
    ("POST", "/v1/auth/token"): "login issues a token, it changes no state",
}


def _item(t):
    r = t.req("POST", "/v1/items", {"workflow": "purchase-order", "title": "Chairs",
                                    "attributes": {"amount": 5, "vendor": "V"}})
    eq(r.status, 201, f"item {r}")
    return r.json["id"]


def drive_create_tenant(t, h):
    slug = unique("tn")
    r = server().request("POST", "/v1/admin/tenants", token=operator_token(), headers=h, body={
        "slug": slug, "name": "N", "admin_email": f"a@{slug}.example",
        "admin_password": "correct horse battery"})
    eq(r.status, 201, f"create tenant {r}")
    return "tenant.created"


def drive_patch_tenant(t, h):
    r = server().request("PATCH", f"/v1/admin/tenants/{t.id}", token=operator_token(),
                         headers=h, body={"name": "Renamed"})
    eq(r.status, 200, f"patch tenant {r}")
    return "tenant.updated"


def drive_create_workflow(t, h):
    wf = dict(PURCHASE_ORDER, key=unique("wf"))
    eq(t.req("POST", "/v1/workflows", wf, headers=h).status, 201, "create workflow")
    return "workflow.published"


def drive_put_workflow(t, h):
    body = {k: v for k, v in PURCHASE_ORDER.items() if k != "key"}
    r = t.req("PUT", "/v1/workflows/purchase-order", body, headers=h)
    check(r.status in (200, 201), f"put workflow {r}")
    return "workflow.published"


def drive_create_item(t, h):
    r = t.req("POST", "/v1/items", {"workflow": "purchase-order", "title": "Desks"}, headers=h)
    eq(r.status, 201, f"create item {r}")
    return "item.created"


def drive_transition(t, h):
    item = _item(t)
    r = t.req("POST", f"/v1/items/{item}/transitions", {"transition": "submit"}, headers=h)
    eq(r.status, 200, f"transition {r}")
    return "item.transitioned"


def drive_patch_item(t, h):
    item = _item(t)
    r = t.req("PATCH", f"/v1/items/{item}", {"title": "Tables"}, headers=h)
    eq(r.status, 200, f"patch item {r}")
    return "item.updated"


def drive_create_webhook(t, h):
    r = t.req("POST", "/v1/webhooks", {"url": PUBLIC_HOOK, "event_types": ["none.such"]},
              headers=h)
    eq(r.status, 201, f"create webhook {r}")
    return "webhook.created"


def drive_patch_webhook(t, h):
    r = t.req("POST", "/v1/webhooks", {"url": PUBLIC_HOOK, "event_types": ["none.such"]})
    eq(r.status, 201, f"create webhook {r}")
    r = t.req("PATCH", f"/v1/webhooks/{r.json['id']}", {"status": "disabled"}, headers=h)
    eq(r.status, 200, f"patch webhook {r}")
    return "webhook.updated"


def drive_delete_webhook(t, h):
    r = t.req("POST", "/v1/webhooks", {"url": PUBLIC_HOOK, "event_types": ["none.such"]})
    eq(r.status, 201, f"create webhook {r}")
    r = t.req("DELETE", f"/v1/webhooks/{r.json['id']}", headers=h)
    eq(r.status, 204, f"delete webhook {r}")
    return "webhook.deleted"


def _user(t):
    r = t.req("POST", "/v1/users", {"email": f"{rid()}@example.com", "name": "U",
                                    "password": "long enough pw"})
    eq(r.status, 201, f"create user {r}")
    return r.json["id"]


def _role(t):
    r = t.req("POST", "/v1/roles", {"name": rid()[:40], "permissions": ["items:read"]})
    eq(r.status, 201, f"create role {r}")
    return r.json["id"], r.json["name"]


def drive_create_user(t, h):
    r = t.req("POST", "/v1/users", {"email": f"{rid()}@example.com", "name": "U",
                                    "password": "long enough pw"}, headers=h)
    eq(r.status, 201, f"create user {r}")
    return "user.created"


def drive_patch_user(t, h):
    r = t.req("PATCH", f"/v1/users/{_user(t)}", {"password": "another long pw"}, headers=h)
    eq(r.status, 200, f"patch user {r}")
    return "user.updated"


def drive_set_roles(t, h):
    r = t.req("PUT", f"/v1/users/{_user(t)}/roles", {"roles": ["viewer"]}, headers=h)
    eq(r.status, 200, f"set roles {r}")
    return "user.roles_set"


def drive_create_role(t, h):
    r = t.req("POST", "/v1/roles", {"name": rid()[:40], "permissions": []}, headers=h)
    eq(r.status, 201, f"create role {r}")
    return "role.created"


def drive_patch_role(t, h):
    r = t.req("PATCH", f"/v1/roles/{_role(t)[0]}", {"permissions": ["items:write"]}, headers=h)
    eq(r.status, 200, f"patch role {r}")
    return "role.updated"


def drive_delete_role(t, h):
    r = t.req("DELETE", f"/v1/roles/{_role(t)[0]}", headers=h)
    eq(r.status, 204, f"delete role {r}")
    return "role.deleted"


def drive_create_key(t, h):
    r = t.req("POST", "/v1/api-keys", {"name": "k", "roles": ["viewer"]}, headers=h)
    eq(r.status, 201, f"create key {r}")
    return "api_key.created"


def drive_revoke_key(t, h):
    r = t.req("POST", "/v1/api-keys", {"name": "k", "roles": []})
    eq(r.status, 201, f"create key {r}")
    r = t.req("DELETE", f"/v1/api-keys/{r.json['id']}", headers=h)
    eq(r.status, 204, f"revoke key {r}")
    return "api_key.revoked"


DRIVERS = {
    ("POST", "/v1/users"): drive_create_user,
    ("PATCH", "/v1/users/{id}"): drive_patch_user,
    ("PUT", "/v1/users/{id}/roles"): drive_set_roles,
    ("POST", "/v1/roles"): drive_create_role,
    ("PATCH", "/v1/roles/{id}"): drive_patch_role,
    ("DELETE", "/v1/roles/{id}"): drive_delete_role,
    ("POST", "/v1/api-keys"): drive_create_key,
    ("DELETE", "/v1/api-keys/{id}"): drive_revoke_key,
    ("POST", "/v1/admin/tenants"): drive_create_tenant,
    ("PATCH", "/v1/admin/tenants/{id}"): drive_patch_tenant,
    ("POST", "/v1/workflows"): drive_create_workflow,
    ("PUT", "/v1/workflows/{key}"): drive_put_workflow,
    ("POST", "/v1/items"): drive_create_item,
    ("PATCH", "/v1/items/{id}"): drive_patch_item,
    ("POST", "/v1/items/{id}/transitions"): drive_transition,
    ("POST", "/v1/webhooks"): drive_create_webhook,
    ("PATCH", "/v1/webhooks/{id}"): drive_patch_webhook,
    ("DELETE", "/v1/webhooks/{id}"): drive_delete_webhook,
}


@test
def every_mutating_route_writes_exactly_one_audit_record():
    routes = json.loads(cli("routes").stdout)
    mutating = [(r["method"], r["path"]) for r in routes
                if r["method"] in ("POST", "PUT", "PATCH", "DELETE")]
    unknown = [m for m in mutating if m not in DRIVERS and m not in NOT_A_CHANGE]
    if unknown:
        raise Failure(f"mutating routes without an audit driver in test_audit.py: {unknown}")
    t = Tenant()
    eq(t.req("POST", "/v1/workflows", PURCHASE_ORDER).status, 201, "workflow")
    for key in mutating:
        if key in NOT_A_CHANGE:
            request_id = rid()
            r = server().request("POST", "/v1/auth/token", headers={"X-Request-Id": request_id},
                                 body={"tenant": t.slug, "email": t.email,
                                       "password": t.password})
            eq(r.status, 200, "login")
            eq(records_for(request_id), [], f"{key} writes no audit record")
            continue
        request_id = rid()
        action = DRIVERS[key](t, {"X-Request-Id": request_id})
        eq(records_for(request_id), [action], f"audit records of {key}")


@test
def failed_change_writes_no_audit_record():
    t = Tenant()
    request_id = rid()
    r = t.req("POST", "/v1/items", {"workflow": "nope", "title": "x"},
              headers={"X-Request-Id": request_id})
    problem(r, 422)
    eq(records_for(request_id), [], "no record for a refused change")


@test
def audit_list_filters_and_pages():
    t = Tenant()
    eq(t.req("POST", "/v1/workflows", PURCHASE_ORDER).status, 201, "workflow")
    items = [_item(t) for _ in range(5)]
    r = t.req("POST", f"/v1/items/{items[0]}/transitions", {"transition": "submit"})
    eq(r.status, 200, "submit")
    r = t.req("GET", "/v1/audit?action=item.created&limit=2")
    eq(r.status, 200, f"list {r}")
    seen = []
    while True:
        for rec in r.json["data"]:
            eq(rec["action"], "item.created", "action filter")
            eq(rec["resource"]["type"], "item", "resource type")
            eq(rec["actor"]["type"], "user", "actor type")
            check(rec["request_id"] and rec["client_ip"], "request id and client ip")
            check(rec["occurred_at"].endswith("Z"), "UTC time")
            seen.append(rec["resource"]["id"])
        if r.json["next_cursor"] is None:
            break
        r = t.req("GET", "/v1/audit?action=item.created&limit=2&cursor=" + r.json["next_cursor"])
        eq(r.status, 200, f"next page {r}")
    eq(seen, list(reversed(items)), "newest first, every record once")
    r = t.req("GET", f"/v1/audit?resource_type=item&resource_id={items[0]}")
    eq([x["action"] for x in r.json["data"]], ["item.transitioned", "item.created"], "by resource")
    tr = r.json["data"][0]
    eq(tr["changes"], {"before": {"state": "draft", "version": 1},
                       "after": {"state": "submitted", "version": 2}}, "changes")
    me = t.req("GET", "/v1/me").json["principal"]["id"]
    eq(len(t.req("GET", f"/v1/audit?actor={me}&limit=200").json["data"]), 7, "by actor")
    total = len(t.req("GET", "/v1/audit?limit=200").json["data"])
    future = "2999-01-01T00:00:00Z"
    eq(t.req("GET", f"/v1/audit?since={future}").json["data"], [], "since is inclusive lower")
    eq(len(t.req("GET", f"/v1/audit?until={future}&limit=200").json["data"]), total, "until")
    eq(len(t.req("GET", "/v1/audit?since=2000-01-01T00:00:00%2B02:00&limit=200").json["data"]),
       total, "offset accepted")
    first = t.req("GET", "/v1/audit?limit=200").json["data"][-1]["occurred_at"]
    eq(t.req("GET", f"/v1/audit?until={first}").json["data"], [], "until is exclusive")
    eq(len(t.req("GET", f"/v1/audit?since={first}&limit=200").json["data"]), total,
       "since is inclusive")
    # The tenant's own creation by the operator is in its trail.
    r = t.req("GET", "/v1/audit?action=tenant.created")
    eq(r.json["data"][0]["actor"]["type"], "operator", "operator change in the tenant trail")
    check("admin_password" not in json.dumps(r.json), "no password in the trail")


@test
def audit_list_bad_input():
    t = Tenant()
    for q, param in [("since=yesterday", "since"), ("until=2024-01-01", "until"),
                     ("limit=0", "limit"), ("limit=201", "limit"), ("cursor=abc", "cursor"),
                     ("colour=red", None)]:
        p = problem(t.req("GET", "/v1/audit?" + q), 400)
        if param:
            check(any(e.get("parameter") == param for e in p.get("errors", [])),
                  f"{q}: error names {param}: {p}")
    # Two bad parameters: both reported.
    p = problem(t.req("GET", "/v1/audit?since=x&until=y"), 400)
    eq(sorted(e["parameter"] for e in p["errors"]), ["since", "until"], "all errors collected")
    # A cursor for one filter set is refused for another, and across tenants.
    for _ in range(3):
        _ = t.req("POST", "/v1/workflows", dict(PURCHASE_ORDER, key=unique("wf")))
    c = t.req("GET", "/v1/audit?limit=1").json["next_cursor"]
    check(c, "a next cursor")
    problem(t.req("GET", "/v1/audit?limit=1&action=workflow.published&cursor=" + c), 400)
    other = Tenant()
    problem(other.req("GET", "/v1/audit?limit=1&cursor=" + c), 400)


def audit_count(t):
    return int(psql("SELECT count(*) FROM audit.records WHERE tenant_id = '%s'" % t.id))


def wait_sealed(t, n=None, timeout=20):
    n = audit_count(t) if n is None else n
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = t.req("GET", "/v1/audit/verify")
        eq(r.status, 200, f"verify {r}")
        if not r.json["ok"] or r.json["checked"] >= n:
            return r.json
        time.sleep(0.1)
    raise Failure(f"records not sealed within {timeout}s: {r.json}")


@test
def app_role_cannot_change_audit_records():
    t = Tenant()
    app = __import__("os").environ["TENANTFLOW_DATABASE_URL"]
    for sql in ["UPDATE audit.records SET action = 'x'", "DELETE FROM audit.records",
                "TRUNCATE audit.records", "UPDATE audit.seals SET seq = seq",
                "DELETE FROM audit.seals"]:
        try:
            psql(f"SELECT set_config('app.tenant_id', '{t.id}', false); {sql}", app)
        except Failure as e:
            check("permission denied" in str(e) or "append-only" in str(e), f"{sql}: {e}")
        else:
            raise Failure(f"the application role could run: {sql}")
    # Even the owner (who owns the table) is stopped by the trigger.
    owner = __import__("os").environ["TENANTFLOW_MIGRATE_DATABASE_URL"]
    try:
        psql(f"SELECT set_config('app.tenant_id', '{t.id}', false);"
             " UPDATE audit.records SET action = 'x'", owner)
    except Failure as e:
        check("append-only" in str(e), f"owner refused by the trigger: {e}")
    else:
        raise Failure("the owner role could update audit records")
    try:
        psql("TRUNCATE audit.seals", owner)
    except Failure as e:
        check("append-only" in str(e), f"owner truncate refused by the trigger: {e}")
    else:
        raise Failure("the owner role could truncate seals")
    # A superuser without the stated intent is refused too.
    try:
        psql("DELETE FROM audit.records WHERE tenant_id = '%s'" % t.id)
    except Failure as e:
        check("append-only" in str(e), f"superuser refused: {e}")
    else:
        raise Failure("a superuser could delete audit records without intent")


@test
def verify_ok_then_points_at_the_edited_record():
    t = Tenant()
    eq(t.req("POST", "/v1/workflows", PURCHASE_ORDER).status, 201, "workflow")
    items = [_item(t) for _ in range(4)]
    n = audit_count(t)
    v = wait_sealed(t)
    eq(v, {"ok": True, "checked": n}, "clean chain")
    # The third item's creation record, edited by a superuser with intent.
    target = psql("SELECT id FROM audit.records WHERE tenant_id = '%s' AND resource_id = '%s'"
                  % (t.id, items[2])).strip()
    psql("SET tenantflow.audit_tamper = 'on'; UPDATE audit.records SET changes = '{}'"
         " WHERE tenant_id = '%s' AND id = '%s'" % (t.id, target))
    v = t.req("GET", "/v1/audit/verify").json
    eq(v["ok"], False, f"tampering detected {v}")
    eq(v["broken_at"]["id"], target, "points at the edited record")
    eq(v["checked"], n - 2, "records before it checked")
    check("hash" in v["broken_at"]["reason"], f"reason {v}")
    # Another tenant's chain is unaffected.
    other = Tenant()
    eq(wait_sealed(other)["ok"], True, "other tenant ok")


@test
def verify_detects_deleted_record():
    t = Tenant()
    eq(t.req("POST", "/v1/workflows", PURCHASE_ORDER).status, 201, "workflow")
    items = [_item(t) for _ in range(2)]
    wait_sealed(t)
    target = psql("SELECT id FROM audit.records WHERE tenant_id = '%s' AND resource_id = '%s'"
                  % (t.id, items[0])).strip()
    psql("SET tenantflow.audit_tamper = 'on'; DELETE FROM audit.records"
         " WHERE tenant_id = '%s' AND id = '%s'" % (t.id, target))
    v = t.req("GET", "/v1/audit/verify").json
    eq((v["ok"], v["broken_at"]["id"]), (False, target), f"deleted record named {v}")


@test
def sealing_does_not_wait_for_unrelated_open_transactions_of_the_tenant():
    """A write of the tenant held open does not block other writes of that
    tenant; its record is sealed after it commits, in order."""
    import subprocess
    import os
    t = Tenant()
    eq(t.req("POST", "/v1/workflows", PURCHASE_ORDER).status, 201, "workflow")
    base = audit_count(t)
    wait_sealed(t)
    p = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", os.environ["TF_ADMIN_URL"]],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    p.stdin.write("BEGIN;\nINSERT INTO audit.records (tenant_id, actor_type, action,"
                  " resource_type, resource_id) VALUES ('%s', 'system', 'held.open', 'held', 'x');\n"
                  "SELECT pg_sleep(0);\n" % t.id)
    p.stdin.flush()
    time.sleep(0.5)
    start = time.time()
    items = [_item(t) for _ in range(3)]
    check(time.time() - start < 5, "writes are not blocked by the open transaction")
    time.sleep(1)
    v = t.req("GET", "/v1/audit/verify").json
    eq(v["checked"], base, f"nothing sealed past the open transaction's horizon {v}")
    p.stdin.write("COMMIT;\n")
    p.stdin.close()
    p.wait(10)
    v = wait_sealed(t, base + 4)
    eq(v, {"ok": True, "checked": base + 4}, "all sealed after commit")
    order = psql("SELECT r.action FROM audit.seals s JOIN audit.records r ON r.tenant_id ="
                 " s.tenant_id AND r.id = s.record_id WHERE s.tenant_id = '%s' ORDER BY s.seq"
                 % t.id).split()
    eq(order[base], "held.open", "the earlier transaction is sealed first (xid order)")
    eq(len(items), 3, "items")
