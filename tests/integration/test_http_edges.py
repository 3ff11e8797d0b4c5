"""Edge cases found by trying to break the server: framing, encoded NULs,
query parameters without values, entity-tag comparison, HEAD, and tenant
changes by the operator."""
import json
import re
import socket
import time

from harness import (PURCHASE_ORDER, Tenant, check, cli, eq, operator_token, problem, server,
                     test)


@test
def duplicate_content_length_is_refused():
    srv = server()
    resp = srv.raw(b"POST /v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                   b"\r\nContent-Length: 2\r\nContent-Length: 60\r\n\r\n{}GET /smuggled HTTP/1.1"
                   b"\r\nHost: x\r\nConnection: close\r\n\r\n")
    check(resp.startswith(b"HTTP/1.1 400"), f"refused: {resp[:60]!r}")
    check(b"/smuggled" not in resp, "no second request was served")


@test
def encoded_nul_in_path_matches_nothing():
    t = Tenant()
    t.req("POST", "/v1/workflows", PURCHASE_ORDER)
    item = t.req("POST", "/v1/items", {"workflow": "purchase-order", "title": "x"}).json
    r = t.req("POST", f"/v1/items%00/{item['id']}/transitions",
              {"workflow": "purchase-order", "title": "NUL-routed"})
    problem(r, 404, "not-found")
    problem(t.req("GET", f"/v1/items/{item['id']}%00/history"), 404)
    problem(t.srv.request("GET", "/healthz%00"), 404)
    eq(t.req("GET", "/v1/me").status, 200, "plain paths still work")
    eq(len(t.req("GET", f"/v1/items/{item['id']}/history").json["data"]), 1, "nothing created")


@test
def query_parameter_without_value():
    srv = server()
    p = problem(srv.request("GET", "/v1/admin/tenants?limit", token=operator_token()), 400)
    eq(p["errors"][0]["parameter"], "limit", "names the parameter")


@test
def workflow_path_key_and_version_are_strict():
    t = Tenant()
    body = dict(PURCHASE_ORDER)
    del body["key"]
    for key in ("UPPER", "-lead", "k.v"):
        problem(t.req("PUT", f"/v1/workflows/{key}", body), 404)
    eq(t.req("POST", "/v1/workflows", PURCHASE_ORDER).status, 201, "workflow")
    for v in ("%201", "01", "+1", "0", "x"):
        problem(t.req("GET", f"/v1/workflows/purchase-order/versions/{v}"), 404)
    eq(t.req("GET", "/v1/workflows/purchase-order/versions/1").status, 200, "version 1")


@test
def if_match_is_strong_and_if_none_match_weak():
    t = Tenant()
    t.req("POST", "/v1/workflows", PURCHASE_ORDER)
    item = t.req("POST", "/v1/items", {"workflow": "purchase-order", "title": "x",
                                       "attributes": {"amount": 1, "vendor": "v"}}).json
    path = f"/v1/items/{item['id']}"
    problem(t.req("POST", path + "/transitions", {"transition": "submit"},
                  headers={"If-Match": 'W/"1"'}), 412)
    problem(t.req("POST", path + "/transitions", {"transition": "submit"},
                  headers={"If-Match": '"11"'}), 412)
    eq(t.req("GET", path, headers={"If-None-Match": 'W/"1"'}).status, 304, "weak 304")
    eq(t.req("GET", path, headers={"If-None-Match": '"11"'}).status, 200, "no prefix match")
    eq(t.req("POST", path + "/transitions", {"transition": "submit"},
             headers={"If-Match": '"7", "1"'}).status, 200, "listed tag matches")


@test
def a_malformed_if_match_is_400_and_changes_nothing():
    t = Tenant()
    t.req("POST", "/v1/workflows", PURCHASE_ORDER)
    item = t.req("POST", "/v1/items", {"workflow": "purchase-order", "title": "x",
                                       "attributes": {"amount": 1, "vendor": "v"}}).json
    path = f"/v1/items/{item['id']}"
    for bad in ("1", '"1', 'W/1', '"1" "2"', 'x, "1"'):
        p = problem(t.req("PATCH", path, {"title": "changed"},
                          headers={"Content-Type": "application/merge-patch+json",
                                   "If-Match": bad}), 400, "bad-request")
        check("If-Match" in p["detail"], f"detail names the header: {p}")
        problem(t.req("POST", path + "/transitions", {"transition": "submit"},
                      headers={"If-Match": bad}), 400, "bad-request")
        problem(t.req("GET", path, headers={"If-None-Match": bad}), 400, "bad-request")
    now = t.req("GET", path).json
    eq((now["title"], now["state"], now["version"]), ("x", "draft", 1), "nothing changed")
    # Empty list members are allowed; so is *.
    eq(t.req("GET", path, headers={"If-None-Match": '"9", , "1"'}).status, 304, "list with gap")
    eq(t.req("GET", path, headers={"If-None-Match": "*"}).status, 304, "*")


@test
def tenant_admin_honours_if_match_and_if_none_match():
    srv = server()
    t = Tenant(srv)
    op = operator_token()
    path = f"/v1/admin/tenants/{t.id}"
    r = srv.request("GET", path, token=op)
    eq(r.status, 200, "get tenant")
    version = r.json["version"]
    eq(r.header("ETag"), f'"{version}"', "ETag")
    r = srv.request("GET", path, token=op, headers={"If-None-Match": f'"{version}"'})
    eq((r.status, r.header("ETag")), (304, f'"{version}"'), "304 with the ETag")
    p = problem(srv.request("PATCH", path, token=op, body={"name": "Stale"},
                            headers={"If-Match": f'"{version + 7}"'}), 412,
                "precondition-failed")
    check(f"version is {version}" in p["detail"], f"detail names the version: {p}")
    problem(srv.request("PATCH", path, token=op, body={"name": "Bad"},
                        headers={"If-Match": "3"}), 400, "bad-request")
    eq(srv.request("GET", path, token=op).json["name"], "Tenant " + t.slug, "nothing changed")
    r = srv.request("PATCH", path, token=op, body={"name": "Fresh"},
                    headers={"If-Match": f'"{version}"'})
    eq((r.status, r.json["name"], r.json["version"]), (200, "Fresh", version + 1), "current")
    eq(r.header("ETag"), f'"{version + 1}"', "new ETag")


@test
def workflow_definitions_carry_their_version_as_etag():
    t = Tenant()
    r = t.req("POST", "/v1/workflows", PURCHASE_ORDER)
    eq((r.status, r.header("ETag")), (201, '"1"'), "created")
    path = "/v1/workflows/purchase-order"
    eq(t.req("GET", path).header("ETag"), '"1"', "GET")
    eq(t.req("GET", path, headers={"If-None-Match": '"1"'}).status, 304, "not modified")
    r = t.req("PUT", path, dict(PURCHASE_ORDER, name="Purchase order v2"))
    eq((r.status, r.header("ETag")), (200, '"2"'), "new version")
    r = t.req("GET", path, headers={"If-None-Match": '"1"'})
    eq((r.status, r.header("ETag"), r.json["version"]), (200, '"2"', 2), "changed")
    eq(t.req("GET", path + "/versions/1", headers={"If-None-Match": 'W/"1"'}).status, 304,
       "a version never changes")


@test
def head_is_get_without_body():
    srv = server()
    r = srv.request("HEAD", "/healthz")
    eq(r.status, 200, "HEAD healthz")
    eq(r.body, "", "no body")


@test
def endless_chunked_body_is_cut_off():
    """libmicrohttpd 0.9.75 cannot answer mid-body: a chunked body over the
    limit is dropped until it ends (then 413, see body_size_limits); one that
    never ends has its connection closed after 8x the limit."""
    srv = server()
    sent = 0
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"POST /v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\nffffffffffff\r\n")
        try:
            while sent < 64 * 1024 * 1024:
                s.sendall(b"x" * 65536)
                sent += 65536
        except OSError:
            pass
    check(sent < 32 * 1024 * 1024, f"connection closed after {sent} bytes")
    eq(srv.request("GET", "/healthz").status, 200, "server fine")


@test
def operator_renames_suspends_and_reactivates():
    t = Tenant()
    op = operator_token()
    path = f"/v1/admin/tenants/{t.id}"
    r = t.srv.request("PATCH", path, token=op, body={"name": "Renamed Ltd"})
    eq(r.status, 200, f"rename {r}")
    eq((r.json["name"], r.json["version"]), ("Renamed Ltd", 2), "renamed")
    r = t.srv.request("PATCH", path, token=op, body={"status": "suspended"})
    eq(r.json["status"], "suspended", "suspended")
    problem(t.req("GET", "/v1/me"), 403, "forbidden")
    problem(t.srv.request("POST", "/v1/auth/token", body={
        "tenant": t.slug, "email": t.email, "password": t.password}), 401, "unauthorized")
    r = t.srv.request("PATCH", path, token=op, body={"status": "active"})
    eq(r.json["status"], "active", "reactivated")
    eq(t.req("GET", "/v1/me").status, 200, "token works again")
    problem(t.srv.request("PATCH", path, token=op, body={"status": "gone"}), 422)
    problem(t.srv.request("PATCH", "/v1/admin/tenants/not-a-uuid", token=op, body={}), 404)
    problem(t.srv.request("PATCH", "/v1/admin/tenants/00000000-0000-7000-8000-000000000000",
                          token=op, body={"name": "x"}), 404)
    eq(t.srv.request("GET", path, token=op).json["version"], 4, "failed patches changed nothing")


@test
def two_authorization_headers_are_refused():
    t = Tenant()
    resp = t.srv.raw(b"GET /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                     t.token.encode() + b"\r\nAuthorization: Bearer nonsense\r\n"
                     b"Connection: close\r\n\r\n")
    check(resp.startswith(b"HTTP/1.1 400"), f"refused: {resp[:60]!r}")


# Bytes that are not UTF-8: a stray continuation byte, an overlong "/", a
# UTF-16 surrogate, a code point above U+10FFFF, a truncated sequence.
NOT_UTF8 = ("%FF", "%C0%AF", "%ED%A0%80", "%F4%90%80%80", "%E2%82")


@test
def query_values_and_paths_that_are_not_utf8_are_400_everywhere():
    """Driven by the route table: every query parameter of every route and
    every path parameter, given bytes that are not UTF-8, is a 400 problem
    (they used to reach PostgreSQL as text and come back as 500)."""
    t = Tenant()
    op = operator_token()
    routes = json.loads(cli("routes").stdout)
    checked = 0
    for r in routes:
        if r["permission"] == "public" or r["method"] != "GET":
            continue
        token = op if r["permission"] == "operator" else t.token
        base = re.sub(r"\{[^}]+\}", "x", r["path"])
        for name in (r["query"] or "").split(","):
            if not name:
                continue
            for bad in NOT_UTF8:
                resp = t.srv.request("GET", f"{base}?{name}={bad}", token=token)
                p = problem(resp, 400, "bad-request")
                eq(p["errors"][0]["parameter"], name, f"{r['path']}?{name}={bad}")
                checked += 1
        for bad in NOT_UTF8[:2]:
            if "{" in r["path"]:
                path = re.sub(r"\{[^}]+\}", bad, r["path"], count=1)
                p = problem(t.srv.request("GET", path, token=token), 400, "bad-request")
                check("UTF-8" in p["detail"], f"{path}: {p}")
                eq(p["instance"].lower(), path.lower(), "the instance names the path sent")
                checked += 1
        resp = t.srv.request("GET", f"{base}?{NOT_UTF8[0]}=1", token=token)
        problem(resp, 400, "bad-request")
    check(checked > 150, f"covered the route table ({checked} requests)")
    # Valid UTF-8 beyond ASCII is just text.
    eq(t.req("GET", "/v1/audit?actor=%C3%A9t%C3%A9").status, 200, "UTF-8 filter")


@test
def two_host_headers_are_refused_with_a_problem():
    srv = server()
    resp = srv.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\nConnection: close\r\n\r\n")
    check(resp.startswith(b"HTTP/1.1 400"), f"refused: {resp[:60]!r}")
    check(b"application/problem+json" in resp and b"Host" in resp, f"a problem: {resp!r}")
    resp = srv.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    check(resp.startswith(b"HTTP/1.1 200"), f"one Host is fine: {resp[:60]!r}")


@test
def emails_are_trimmed_before_they_are_checked():
    t = Tenant()
    r = t.req("POST", "/v1/users", {"email": "  ed@trim.example ", "name": "Ed",
                                    "password": "long enough pw"})
    eq(r.status, 201, f"created {r}")
    eq(r.json["email"], "ed@trim.example", "stored trimmed")
    problem(t.req("POST", "/v1/users", {"email": "ED@trim.example", "name": "Ed 2",
                                        "password": "long enough pw"}), 409, "conflict")


@test
def a_login_flood_does_not_starve_other_tenants():
    """Password checks (Argon2) have a queue and workers of their own: one
    tenant's users logging in as fast as they can never turn another tenant's
    requests into 503s."""
    import threading
    a, b = Tenant(), Tenant()
    stop = time.time() + 3
    login_statuses = []

    def flood():
        while time.time() < stop:
            login_statuses.append(a.srv.request("POST", "/v1/auth/token", body={
                "tenant": a.slug, "email": a.email, "password": a.password}).status)
    threads = [threading.Thread(target=flood) for _ in range(80)]  # more than the queue holds
    for th in threads:
        th.start()
    others = []
    while time.time() < stop:
        others.append(b.req("GET", "/v1/me").status)
    for th in threads:
        th.join()
    check(len(login_statuses) > 40, f"the flood ran: {len(login_statuses)} logins")
    eq(set(others), {200}, f"the other tenant was served ({len(others)} requests)")
