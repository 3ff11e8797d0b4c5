"""HTTP core: routing problems, limits refused before buffering, strict JSON,
request ids, health, readiness, graceful shutdown, and keep-alive connections
surviving answers decided from the request head."""
import json
import os
import shutil
import socket
import threading
import time

from harness import (TMP, Failure, Response, Server, cli, check, eq, operator_token, problem,
                     psql, server, test, unique)


@test
def health_and_readiness():
    srv = server()
    r = srv.request("GET", "/healthz")
    eq(r.status, 200, "healthz")
    r = srv.request("GET", "/readyz")
    eq(r.status, 200, f"readyz {r}")


@test
def unknown_route_and_method():
    srv = server()
    problem(srv.request("GET", "/v1/nothing-here"), 404, "not-found")
    r = srv.request("DELETE", "/v1/items")
    problem(r, 405, "method-not-allowed")
    eq(r.header("Allow"), "GET, POST", "Allow header")
    r = srv.request("DELETE", "/v1/workflows/x")
    eq(r.header("Allow"), "GET, PUT", "Allow lists every method")


@test
def request_ids():
    srv = server()
    r = srv.request("GET", "/healthz", headers={"X-Request-Id": "abc.DEF_123-x"})
    eq(r.header("X-Request-Id"), "abc.DEF_123-x", "echoed")
    r = srv.request("GET", "/healthz", headers={"X-Request-Id": "bad id!"})
    check(r.header("X-Request-Id") not in (None, "bad id!"), "replaced when malformed")
    r = srv.request("GET", "/healthz", headers={"X-Request-Id": "a" * 129})
    eq(len(r.header("X-Request-Id")), 36, "replaced when too long")
    rid = unique("trace")
    p = problem(srv.request("GET", "/nope", headers={"X-Request-Id": rid}), 404)
    eq(p["request_id"], rid, "request id in problem")
    # One JSON access-log line per request, carrying the request id.
    time.sleep(0.2)
    lines = [json.loads(line) for line in srv.read_log().splitlines() if rid in line]
    eq(len(lines), 1, "one log line for the request")
    eq((lines[0]["msg"], lines[0]["status"], lines[0]["method"]), ("request", 404, "GET"),
       "access log fields")


@test
def content_type_and_accept():
    srv = server()
    tok = operator_token()
    r = srv.request("POST", "/v1/admin/tenants", raw=b"{}", token=tok,
                    headers={"Content-Type": "text/plain"})
    p = problem(r, 415, "unsupported-media-type")
    check("merge-patch" not in p["detail"], f"a POST takes JSON only: {p['detail']}")
    r = srv.request("PATCH", "/v1/admin/tenants/00000000-0000-7000-8000-000000000000",
                    raw=b"{}", token=tok, headers={"Content-Type": "text/plain"})
    p = problem(r, 415, "unsupported-media-type")
    check("application/merge-patch+json" in p["detail"], f"a PATCH names both: {p['detail']}")
    r = srv.request("POST", "/v1/admin/tenants", raw=b"{}", token=tok,
                    headers={"Content-Type": "application/json; charset=latin-1"})
    problem(r, 415)
    r = srv.request("GET", "/healthz", headers={"Accept": "text/html"})
    problem(r, 406, "not-acceptable")
    eq(srv.request("GET", "/healthz", headers={"Accept": "text/html, application/json;q=0.5"})
       .status, 200, "json acceptable among others")
    # q=0 means "not this one" (RFC 9110, 12.4.2).
    for accept in ("application/json;q=0", "*/*;q=0", "application/json; q=0.000, text/html"):
        problem(srv.request("GET", "/healthz", headers={"Accept": accept}), 406, "not-acceptable")


@test
def body_size_limits():
    srv = server()
    tok = operator_token()
    # Declared too large: refused from the headers alone, before the body.
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"POST /v1/admin/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                  tok.encode() + b"\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 10485760\r\n\r\n")
        data = s.recv(65536)
    check(data.startswith(b"HTTP/1.1 413"), f"413 before body: {data[:80]!r}")
    check(b"application/problem+json" in data, "413 is a problem")
    # Chunked past the limit: refused once the cap is crossed.
    chunk = b"x" * 65536
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20)) + b"0\r\n\r\n"
    resp = srv.raw(b"POST /v1/admin/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                   tok.encode() + b"\r\nContent-Type: application/json\r\n"
                   b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + body)
    check(resp.startswith(b"HTTP/1.1 413"), f"chunked 413: {resp[:80]!r}")


@test
def conflicting_framing_refused():
    srv = server()
    resp = srv.raw(b"POST /v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                   b"\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n"
                   b"Connection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    check(resp.startswith(b"HTTP/1.1 400"), f"CL+TE refused: {resp[:80]!r}")


@test
def uri_and_header_limits():
    srv = server()
    problem(srv.request("GET", "/healthz?" + "a" * 9000), 414, "uri-too-long")
    problem(srv.request("GET", "/healthz", headers={"X-Big": "b" * 17000}), 431,
            "headers-too-large")


@test
def query_parameters_are_checked():
    srv = server()
    tok = operator_token()
    p = problem(srv.request("GET", "/v1/admin/tenants?color=red", token=tok), 400, "bad-request")
    eq(p["errors"][0]["parameter"], "color", "names the parameter")
    p = problem(srv.request("GET", "/v1/admin/tenants?limit=0", token=tok), 400)
    eq(p["errors"][0]["parameter"], "limit", "limit range")
    problem(srv.request("GET", "/v1/admin/tenants?limit=5&limit=6", token=tok), 400)
    problem(srv.request("GET", "/v1/admin/tenants?cursor=AAAA", token=tok), 400)


@test
def strict_json_bodies():
    srv = server()
    cases = [
        (b'{"tenant":"a","tenant":"b","email":"x","password":"y"}', 400),   # duplicate key
        (b'{"tenant":"a\\u0000","email":"x","password":"y"}', 400),         # NUL
        (b'{"tenant":"\xff","email":"x","password":"y"}', 400),             # invalid UTF-8
        (b"[" * 65 + b"]" * 65, 400),                                        # too deep
        (b'{"tenant":"a","email":"x","password":"y"} x', 400),              # trailing
        (b'{"tenant":1e400,"email":"x","password":"y"}', 400),               # overflow
        (b'{"tenant":"a","email":"x","password":"y","extra":1}', 422),      # unknown field
        (b'{"tenant":"a","email":"x"}', 422),                                # missing field
        (b"", 400),
    ]
    for body, status in cases:
        r = srv.request("POST", "/v1/auth/token", raw=body)
        p = problem(r, status)
        if status == 422:
            check(p["errors"][0]["pointer"] in ("/extra", "/password"), f"pointer {p}")
    eq(srv.request("POST", "/v1/auth/token", raw=b"[" * 64 + b"]" * 64).status, 422,
       "depth 64 is accepted by the parser (wrong shape: 422)")


# --- keep-alive after answers decided from the head ---------------------------

def exchange(c, method, path, headers=None):
    """One request on the open connection c; the response and whether the
    server said it would close the connection."""
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    resp = Response(r.status, r.getheaders(), r.read().decode("utf-8", "replace"))
    return resp, (resp.header("Connection") or "").lower() == "close"


def answered_on_one_connection(srv, method, path, headers, want, slug=None):
    """GET /healthz, then the request, then GET /healthz again, all on one
    keep-alive connection: the request gets status `want` (a problem unless
    it is 204) and the connection is neither closed nor reopened."""
    what = f"{method} {path} {headers}"
    c = srv.connection(timeout=10)
    try:
        r, closing = exchange(c, "GET", "/healthz")
        eq((r.status, closing), (200, False), "first /healthz, kept alive")
        sock = c.sock
        port = sock.getsockname()[1]
        r, closing = exchange(c, method, path, headers)
        if want == 204:
            eq(r.status, 204, what)
        else:
            problem(r, want, slug)
        check(not closing, f"{what}: answered {r.status} with Connection: close")
        r, closing = exchange(c, "GET", "/healthz")
        eq(r.status, 200, f"/healthz after {what}")
        check(c.sock is sock and c.sock.getsockname()[1] == port,
              f"{what}: the client had to reconnect")
        return r
    finally:
        c.close()


def raw_until_closed(srv, data):
    """Sends data on a fresh socket; the bytes received until the server
    closes it (None if it is still open after 5 s)."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(data)
        got = b""
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    return got
                got += b
        except socket.timeout:
            return None


@test
def cors_preflight_keeps_the_connection():
    """A browser preflights every cross-origin call: answering the preflight
    must not cost the page a new TCP (and TLS) handshake."""
    origin = "https://app.example.com"
    with Server(TENANTFLOW_CORS_ORIGINS=origin) as srv:
        pre = {"Origin": origin, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "authorization, content-type"}
        answered_on_one_connection(srv, "OPTIONS", "/v1/items", pre, 204)
        answered_on_one_connection(srv, "OPTIONS", "/nope", pre, 204)


@test
def refusals_from_the_head_keep_the_connection():
    """Requests without a body refused from their head alone (no route, no
    such method, a bad query, nothing acceptable, wrong media type with an
    empty body) are answered on a connection that stays open; so is a missing
    credential (refused later, by a worker, once the request is complete)."""
    srv = server()
    cases = [
        ("GET", "/nope", {}, 404, "not-found"),
        ("DELETE", "/v1/items", {}, 405, "method-not-allowed"),
        ("GET", "/v1/items?color=red", {}, 400, "bad-request"),
        ("GET", "/v1/items", {"Accept": "text/xml"}, 406, "not-acceptable"),
        ("POST", "/v1/items", {"Content-Type": "text/plain", "Content-Length": "0"}, 415,
         "unsupported-media-type"),
        ("GET", "/v1/me", {}, 401, "unauthorized"),
    ]
    failures = []
    for method, path, headers, status, slug in cases:
        try:
            answered_on_one_connection(srv, method, path, headers, status, slug)
        except Failure as e:
            failures.append(str(e))
    eq(failures, [], "refusals that dropped the connection")
    # Pipelined behind a refusal, the next request is answered too.
    resp = raw_until_closed(srv, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                                 b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    check(resp is not None and resp.startswith(b"HTTP/1.1 404"), f"pipelined 404: {resp!r}")
    eq(resp.count(b"HTTP/1.1 200"), 1, f"the request pipelined behind it: {resp!r}")


@test
def refusals_of_a_request_with_a_body_close_without_reading_it():
    """A refused request that declares a body is answered at once and its
    connection closed: the unread body is never taken for the next request
    (here it is one, which must not be answered)."""
    srv = server()
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    for head, status in [
            (b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n", 404),
            (b"POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n", 415)]:
        resp = raw_until_closed(srv, head + b"Content-Length: %d\r\n\r\n" % len(smuggled) +
                                smuggled)
        check(resp is not None, f"{head!r}: the connection was kept open")
        check(resp.startswith(b"HTTP/1.1 %d" % status), f"{head!r}: {resp[:80]!r}")
        check(b"application/problem+json" in resp, f"a problem: {resp!r}")
        eq(resp.count(b"HTTP/1.1 "), 1, f"{head!r}: one response, body not served: {resp!r}")
        check(b"connection: close" in resp.lower(), f"says it closes: {resp!r}")
    # A 10-byte body on a keep-alive client: answered correctly all the same.
    c = srv.connection(timeout=10)
    try:
        c.request("POST", "/nope", body=b"0123456789",
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        problem(Response(r.status, r.getheaders(), r.read().decode()), 404, "not-found")
        c.request("GET", "/healthz")  # http.client reconnects if it was closed
        eq(c.getresponse().status, 200, "the client goes on")
    finally:
        c.close()


@test
def sigterm_finishes_in_flight_request():
    with Server() as srv:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        body = b'{"tenant":"nobody-here","email":"a@b.c","password":"secret-password"}'
        s.sendall(b"POST /v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                  b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:10])
        time.sleep(0.3)
        srv.proc.send_signal(15)
        time.sleep(0.3)
        check(srv.proc.poll() is None, "server waits for the in-flight request")
        s.sendall(body[10:])
        data = s.recv(65536)
        s.close()
        check(data.startswith(b"HTTP/1.1 401"), f"in-flight request answered: {data[:60]!r}")
        eq(srv.proc.wait(20), 0, "exit status after SIGTERM")


@test
def readyz_follows_the_schema():
    """A schema newer than the binary is ready (migrations only add: old
    instances keep serving in a rolling deploy); one that falls behind while
    the server runs (a restored backup) is 503 until it is migrated again.
    A binary started on an older schema refuses to start (test_ops)."""
    d = os.path.join(TMP, unique("mig"))
    shutil.copytree(os.environ["TENANTFLOW_MIGRATIONS_DIR"], d)
    newest = sorted(f for f in os.listdir(d) if f.endswith(".sql"))[-1]
    latest = int(newest.split("_")[0])
    os.unlink(os.path.join(d, newest))
    with Server(TENANTFLOW_MIGRATIONS_DIR=d) as srv:
        eq(srv.request("GET", "/readyz").status, 200, "an older binary on a newer schema")
    with Server() as srv:
        eq(srv.request("GET", "/readyz").json["schema"], latest, "the binary's version")
        row = psql(f"SELECT name || '|' || checksum FROM platform.migrations "
                   f"WHERE version = {latest}").strip()
        name, checksum = row.split("|")
        psql(f"DELETE FROM platform.migrations WHERE version = {latest}")
        try:
            p = problem(srv.request("GET", "/readyz"), 503, "unavailable")
            check(f"at version {latest - 1}; this server needs {latest}" in p["detail"],
                  f"names both versions: {p['detail']}")
            eq(srv.request("GET", "/healthz").status, 200, "still alive")
        finally:
            psql(f"INSERT INTO platform.migrations (version, name, checksum) "
                 f"VALUES ({latest}, '{name}', '{checksum}')")
        eq(srv.request("GET", "/readyz").status, 200, "ready again")


@test
def migrations_checksums_and_locking():
    db = unique("mig").replace("-", "_")
    psql(f"CREATE DATABASE {db} OWNER tenantflow_owner")
    base = os.environ["TENANTFLOW_MIGRATE_DATABASE_URL"].replace("/tenantflow?", f"/{db}?")
    env = {"TENANTFLOW_MIGRATE_DATABASE_URL": base, "TENANTFLOW_DATABASE_URL": base}
    # Two migrators at once: the advisory lock makes one wait for the other.
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        cli("migrate", "up", env=env, check_rc=False))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    eq([r.returncode for r in results], [0, 0], f"both succeed: {[r.stderr for r in results]}")
    files = len([f for f in os.listdir(os.environ["TENANTFLOW_MIGRATIONS_DIR"])
                 if f.endswith(".sql")])
    applied = "".join(r.stdout for r in results).count("applied ")
    eq(applied, files, "each file applied exactly once")
    status = cli("migrate", "status", env=env).stdout
    check("pending" not in status and status.count("applied") == files, status)
    # An applied file that changed stops the run.
    d = os.path.join(TMP, unique("mig"))
    shutil.copytree(os.environ["TENANTFLOW_MIGRATIONS_DIR"], d)
    first = sorted(os.listdir(d))[0]
    with open(os.path.join(d, first), "a") as f:
        f.write("\n-- edited\n")
    r = cli("migrate", "up", env={**env, "TENANTFLOW_MIGRATIONS_DIR": d}, check_rc=False)
    check(r.returncode != 0 and "changed after it was applied" in r.stderr, r.stderr)


@test
def refuses_to_serve_as_owner_role():
    r = cli("serve", env={"TENANTFLOW_DATABASE_URL":
                          os.environ["TENANTFLOW_MIGRATE_DATABASE_URL"],
                          "TENANTFLOW_LISTEN": "127.0.0.1:0"}, check_rc=False)
    check(r.returncode != 0 and "refusing to serve" in r.stderr, r.stderr)


@test
def bad_configuration_exits_2():
    r = cli("serve", env={"TENANTFLOW_THREADS": "zero"}, check_rc=False)
    eq(r.returncode, 2, "exit status")
    check("TENANTFLOW_THREADS" in r.stderr, r.stderr)
