"""Operations: HTTPS with certificate reload, systemd readiness messages,
/metrics, rate limiting, the pool's wait-queue limit, CORS, start-up
configuration checks and `make install`."""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

from harness import (BIN, TMP, CuttableProxy, Failure, Server, Tenant, check, cli, eq, free_port,
                     operator_token, problem, psql, server, test, unique)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# --- HTTPS ---------------------------------------------------------------

def make_cert(directory, name):
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=" + name,
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
    return cert, key


def der_of(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def wait_log(srv, text, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in srv.read_log():
            return
        time.sleep(0.05)
    raise Failure(f"log never said {text!r}")


@test
def https_serves_and_sighup_swaps_certificate_keeping_open_connections():
    d = tempfile.mkdtemp(dir=TMP)
    a_cert, a_key = make_cert(d, "first")
    b_cert, b_key = make_cert(d, "second")
    cert, key = os.path.join(d, "live.crt"), os.path.join(d, "live.key")
    shutil.copy(a_cert, cert)
    shutil.copy(a_key, key)
    ctx_a = ssl.create_default_context(cafile=a_cert)
    ctx_b = ssl.create_default_context(cafile=b_cert)
    with Server(TENANTFLOW_TLS_CERT=cert, TENANTFLOW_TLS_KEY=key) as srv:
        # Plain HTTP on the TLS port gets no HTTP answer.
        check(not srv.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", timeout=3)
              .startswith(b"HTTP/1.1 200"), "plain HTTP must not be served")
        keep = srv.connection(context=ctx_a)
        keep.request("GET", "/healthz")
        r = keep.getresponse()
        eq((r.status, r.read()), (200, b'{"status":"ok"}'), "HTTPS request")
        sock = keep.sock
        eq(sock.getpeercert(binary_form=True), der_of(a_cert), "first certificate served")
        # TLS 1.0 and 1.1 are refused (RFC 8996) by the server: this client
        # speaks them (a build without the priority string answers it 200),
        # and the handshake fails at the server, not before it starts.
        for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
            old.set_ciphers("DEFAULT@SECLEVEL=0")
            old.minimum_version = old.maximum_version = version
            try:
                c = srv.connection(context=old)
                c.request("GET", "/healthz")
                raise Failure(f"{version} accepted: {c.getresponse().status}")
            except (ssl.SSLError, ConnectionError) as e:
                check("NO_PROTOCOLS" not in str(e) and "NO_CIPHERS" not in str(e),
                      f"{version}: the client refused, not the server: {e}")

        shutil.copy(b_cert, cert)
        shutil.copy(b_key, key)
        srv.proc.send_signal(signal.SIGHUP)
        wait_log(srv, "TLS certificate reloaded")

        fresh = srv.connection(context=ctx_b)
        fresh.request("GET", "/healthz")
        eq(fresh.getresponse().status, 200, "new connection after reload")
        eq(fresh.sock.getpeercert(binary_form=True), der_of(b_cert), "new certificate served")
        fresh.close()
        old_trust = srv.connection(context=ctx_a)
        try:
            old_trust.request("GET", "/healthz")
            raise Failure("a client trusting only the old certificate must fail now")
        except ssl.SSLCertVerificationError:
            pass
        finally:
            old_trust.close()

        # The connection opened before the reload keeps working, same socket.
        for _ in range(3):
            keep.request("GET", "/healthz")
            r = keep.getresponse()
            eq((r.status, r.read()), (200, b'{"status":"ok"}'), "kept-alive request")
        check(keep.sock is sock, "the old connection was not reopened")
        keep.close()

        # A broken file on reload keeps the previous certificate.
        with open(cert, "w") as f:
            f.write("not a certificate\n")
        srv.proc.send_signal(signal.SIGHUP)
        wait_log(srv, "TLS reload failed")
        again = srv.connection(context=ctx_b)
        again.request("GET", "/healthz")
        eq(again.getresponse().status, 200, "still serving the second certificate")
        again.close()

        # A reload of files that did not change says so (what happens under
        # systemd with LoadCredential=, which copies the files at start).
        shutil.copy(b_cert, cert)
        srv.proc.send_signal(signal.SIGHUP)
        wait_log(srv, "TLS certificate and key files are unchanged")
        eq(srv.read_log().count("TLS certificate reloaded"), 1, "no second 'reloaded'")


@test
def tls_configuration_errors_stop_with_status_2():
    d = tempfile.mkdtemp(dir=TMP)
    a_cert, a_key = make_cert(d, "one")
    b_cert, b_key = make_cert(d, "two")
    cases = [
        ({"TENANTFLOW_TLS_CERT": a_cert}, "TENANTFLOW_TLS_KEY"),
        ({"TENANTFLOW_TLS_KEY": a_key}, "TENANTFLOW_TLS_CERT"),
        ({"TENANTFLOW_TLS_CERT": a_cert, "TENANTFLOW_TLS_KEY": b_key}, "do not go together"),
        ({"TENANTFLOW_TLS_CERT": a_key, "TENANTFLOW_TLS_KEY": a_key}, "TENANTFLOW_TLS_CERT"),
        ({"TENANTFLOW_TLS_CERT": d + "/missing.crt", "TENANTFLOW_TLS_KEY": a_key},
         "TENANTFLOW_TLS_CERT"),
    ]
    for env, word in cases:
        p = cli("serve", env={"TENANTFLOW_LISTEN": "127.0.0.1:0", **env}, check_rc=False)
        eq(p.returncode, 2, f"exit status for {env}: {p.stderr}")
        check(word in p.stderr, f"{word!r} not named in {p.stderr!r}")


# --- systemd readiness -----------------------------------------------------

def notify_socket(abstract):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = "@tenantflow-test-" + unique("n")
        s.bind("\0" + name[1:])
    else:
        name = os.path.join(TMP, unique("notify") + ".sock")
        s.bind(name)
    s.settimeout(30)
    return s, name


@test
def notify_ready_only_when_serving_then_stopping_on_sigterm():
    for abstract in (False, True):
        sock, name = notify_socket(abstract)
        port = free = None
        with socket.socket() as t:
            t.bind(("127.0.0.1", 0))
            free = t.getsockname()[1]
        env = dict(os.environ, NOTIFY_SOCKET=name, TENANTFLOW_LISTEN=f"127.0.0.1:{free}")
        log = open(os.path.join(TMP, f"notify-{free}.log"), "wb")
        proc = subprocess.Popen([BIN, "serve"], env=env, stdout=log, stderr=log)
        try:
            msg = sock.recv(4096).decode()
            eq(msg, "READY=1", "first message")
            # Ready means ready: the very next request is served.
            port = free
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/readyz")
            eq(c.getresponse().status, 200, "readyz right after READY=1")
            c.close()
            proc.send_signal(signal.SIGTERM)
            eq(sock.recv(4096).decode(), "STOPPING=1", "message on SIGTERM")
            eq(proc.wait(40), 0, "exit status")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
            sock.close()
            if not abstract:
                os.unlink(name)


@test
def notify_not_ready_when_start_fails():
    # A binary whose migrations run ahead of the database (a package
    # installed before `migrate up`) must not report ready either.
    ahead = os.path.join(TMP, "migrations-ahead")
    shutil.rmtree(ahead, ignore_errors=True)
    shutil.copytree(os.path.join(REPO, "migrations"), ahead)
    with open(os.path.join(ahead, "9999_future.sql"), "w") as f:
        f.write("SELECT 1;\n")
    for env, rc, says in ((dict(TENANTFLOW_MIGRATIONS_DIR="/nonexistent"), 2,
                           "TENANTFLOW_MIGRATIONS_DIR"),
                          (dict(TENANTFLOW_MIGRATIONS_DIR=ahead), 1,
                           "this server needs 9999: run `tenantflow migrate up`")):
        sock, name = notify_socket(False)
        try:
            p = subprocess.run([BIN, "serve"], env=dict(os.environ, NOTIFY_SOCKET=name,
                                                        TENANTFLOW_LISTEN="127.0.0.1:0", **env),
                               capture_output=True, text=True, timeout=30)
            eq(p.returncode, rc, f"start must fail: {p.stderr}")
            check(says in p.stderr, f"names the cause: {p.stderr}")
            sock.settimeout(0.5)
            try:
                raise Failure(f"unexpected notification {sock.recv(4096)!r}")
            except socket.timeout:
                pass
        finally:
            sock.close()
            os.unlink(name)


# --- metrics ---------------------------------------------------------------

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$')


def scrape(srv):
    r = srv.request("GET", "/metrics", headers={"Accept": "text/plain"})
    eq(r.status, 200, f"metrics {r}")
    eq(r.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8", "content type")
    samples = {}
    for line in r.body.splitlines():
        if line.startswith("#"):
            check(re.match(r"^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+", line), f"bad {line!r}")
            continue
        m = SAMPLE.match(line)
        check(m, f"not an exposition line: {line!r}")
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return samples


@test
def metrics_count_requests_by_route_and_status_with_latency_and_pool():
    srv = server()
    t = Tenant()
    key = 'tf_http_requests_total{method="GET",route="/v1/items/{id}",status="404"}'
    hist = 'tf_http_request_duration_seconds_count{method="GET",route="/v1/items/{id}"}'
    before = scrape(srv)
    for _ in range(3):
        problem(t.req("GET", "/v1/items/0190a0a0-0000-7000-8000-000000000000"), 404)
    srv.request("GET", "/no/such/path")
    after = scrape(srv)
    eq(after.get(key, 0) - before.get(key, 0), 3, "404s on the item route")
    check(after[hist] - before.get(hist, 0) >= 3, "histogram count grew")
    inf = 'tf_http_request_duration_seconds_bucket{method="GET",route="/v1/items/{id}",le="+Inf"}'
    eq(after[inf], after[hist], "+Inf bucket equals count")
    les = sorted((float(re.search(r'le="([^"]+)"', k).group(1).replace("+Inf", "inf")), v)
                 for k, v in after.items()
                 if k.startswith('tf_http_request_duration_seconds_bucket{method="GET",'
                                 'route="/v1/items/{id}"'))
    check(all(a[1] <= b[1] for a, b in zip(les, les[1:])), f"buckets cumulative {les}")
    check(any('route="(unmatched)"' in k for k in after), "unmatched requests are one series")
    check(not any("/no/such/path" in k for k in after), "client paths never become labels")
    eq(after["tf_db_pool_size"], 4.0, "pool size gauge")
    check(after["tf_db_pool_connections_in_use"] >= 0, "pool in use gauge")
    check("tf_db_pool_waiting" in after, "pool waiting gauge")


@test
def metrics_off_removes_the_route():
    with Server(TENANTFLOW_METRICS="off") as srv:
        problem(srv.request("GET", "/metrics"), 404)


# --- rate limiting -----------------------------------------------------------

@test
def rate_limit_per_credential_answers_429_with_headers():
    with Server(TENANTFLOW_RATE_LIMIT="2", TENANTFLOW_RATE_LIMIT_BURST="3") as srv:
        t = Tenant(srv)
        other = Tenant(srv)
        seen = []
        for _ in range(3):
            r = t.req("GET", "/v1/workflows")
            eq(r.status, 200, f"within burst {r}")
            eq(r.header("RateLimit-Limit"), "3", "limit header")
            seen.append(int(r.header("RateLimit-Remaining")))
            check(1 <= int(r.header("RateLimit-Reset")) <= 2, "reset header")
        check(seen[0] >= seen[1] >= seen[2] and seen[2] <= 1, f"remaining counts down {seen}")
        count_before = t.req  # keep linters quiet about unused
        del count_before
        r = t.req("GET", "/v1/workflows")
        while r.status == 200:  # the bucket refills at 2/s while we go
            r = t.req("GET", "/v1/workflows")
        problem(r, 429, "too-many-requests")
        eq(r.header("Retry-After"), "1", "Retry-After")
        eq(r.header("RateLimit-Remaining"), "0", "nothing left")
        eq(r.header("RateLimit-Limit"), "3", "limit on 429")
        eq(other.req("GET", "/v1/workflows").status, 200, "another credential has its own bucket")
        time.sleep(1.1)
        eq(t.req("GET", "/v1/workflows").status, 200, "after Retry-After the credential is served")
        # Public routes carry no credential and are not counted.
        r = srv.request("GET", "/healthz")
        eq(r.header("RateLimit-Limit"), None, "no rate headers on public routes")
        # Re-spelling the header ("bearer", extra spaces) is the same bucket.
        spellings = ["Bearer ", "bearer ", "BEARER ", "Bearer   ", "bEaReR  "]
        statuses = [srv.request("GET", "/v1/workflows",
                                headers={"Authorization": sp + other.token}).status
                    for sp in spellings * 2]
        check(429 in statuses, f"one bucket for every spelling: {statuses}")


@test
def rate_limit_off_disables_it():
    with Server(TENANTFLOW_RATE_LIMIT="off") as srv:
        t = Tenant(srv)
        for _ in range(5):
            r = t.req("GET", "/v1/workflows")
            eq(r.status, 200, f"{r}")
            eq(r.header("RateLimit-Limit"), None, "no header when disabled")


@test
def default_rate_limit_is_1000_per_second_burst_2000():
    r = Tenant().req("GET", "/v1/workflows")
    eq(r.header("RateLimit-Limit"), "2000", "default burst")


# --- pool wait queue ---------------------------------------------------------

def answers_healthz(srv, timeout=5):
    """True when a new connection gets /healthz answered."""
    try:
        resp = srv.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                       timeout=timeout)
    except OSError:
        return False
    return resp.startswith(b"HTTP/1.1 200")


def held_connection(srv):
    """A keep-alive connection that has been answered once (so the server has
    counted it), or None when the server refused it."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=3)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b'{"status":"ok"}' not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        if data.startswith(b"HTTP/1.1 200"):
            return s
    except OSError:
        pass
    s.close()
    return None


@test
def one_address_may_hold_only_so_many_connections():
    with Server(TENANTFLOW_MAX_CONNECTIONS_PER_IP="4", TENANTFLOW_IDLE_TIMEOUT="5") as srv:
        # libmicrohttpd gives a place back when the I/O thread that held the
        # connection next cleans up, which an idle thread may only do at its
        # next time-out: connections closed a moment ago (the start-up
        # checks) can still count for a few seconds.
        held, deadline = [], time.time() + 20
        try:
            while len(held) < 4 and time.time() < deadline:
                s = held_connection(srv)
                if s:
                    held.append(s)
                else:
                    time.sleep(0.2)
            eq(len(held), 4, "four connections held")
            check(held_connection(srv) is None, "a fifth connection from the address is refused")
            for s in held:
                s.close()
            held = []
            again = None
            while again is None and time.time() < deadline + 10:
                again = held_connection(srv)
                if again is None:
                    time.sleep(0.2)
            check(again is not None, "the address may connect again once they are closed")
            again.close()
        finally:
            for s in held:
                s.close()
    # 0 removes the limit.
    with Server(TENANTFLOW_MAX_CONNECTIONS_PER_IP="0") as srv:
        idle = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(40)]
        try:
            check(answers_healthz(srv), "no limit per address")
        finally:
            for s in idle:
                s.close()


@test
def pool_full_with_full_wait_queue_answers_503_at_once():
    with Server(TENANTFLOW_DB_POOL_SIZE="1", TENANTFLOW_DB_POOL_MAX_WAITERS="1",
                TENANTFLOW_DB_POOL_WAIT_MS="30000", TENANTFLOW_THREADS="4") as srv:
        op = operator_token()
        # A superuser session holds a lock the operator lookup needs, until
        # we tell it to commit: the one pooled connection stays busy meanwhile.
        holder = subprocess.Popen(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", os.environ["TF_ADMIN_URL"]],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        holder.stdin.write("BEGIN;\nLOCK TABLE tenancy.operators IN ACCESS EXCLUSIVE MODE;\n")
        holder.stdin.flush()
        try:
            deadline = time.time() + 20
            while psql("SELECT count(*) FROM pg_locks WHERE granted AND mode = "
                       "'AccessExclusiveLock' AND relation = 'tenancy.operators'::regclass"
                       ).strip() != "1":
                check(time.time() < deadline and holder.poll() is None, "lock never taken")
                time.sleep(0.05)
            results = {}

            def call(name):
                results[name] = srv.request("GET", "/v1/admin/tenants", token=op, timeout=60)

            # A worker thread blocked in a handler also holds the connections it
            # accepted in the same poll round, so let each blocked request
            # settle on its worker before the next connection is made.
            first = threading.Thread(target=call, args=("first",))
            first.start()
            time.sleep(0.5)
            wait_metric(srv, "tf_db_pool_connections_in_use", 1)
            second = threading.Thread(target=call, args=("second",))
            second.start()
            time.sleep(0.5)
            wait_metric(srv, "tf_http_queue_waiting", 1)
            start = time.time()
            r = srv.request("GET", "/v1/admin/tenants", token=op)
            elapsed = time.time() - start
            problem(r, 503, "unavailable")
            check(elapsed < 1.0, f"refused at once, took {elapsed:.2f}s")
            eq(r.header("Retry-After"), "1", "Retry-After")
            check("capacity" in r.json["detail"], r.json["detail"])
            holder.stdin.write("COMMIT;\n")
            holder.stdin.close()
            first.join(30)
            second.join(30)
            eq(results["first"].status, 200, "the request holding the connection")
            # Requests wait for a worker (one per pooled connection) in one
            # queue; its one place was the second request's.
            second = results["second"]
            check(second.status == 200 or (second.status == 503 and
                                           "capacity" in second.json["detail"]), f"{second}")
            m = scrape(srv)
            check(m["tf_http_queue_rejected_total"] >= 1, "rejections counted")
        finally:
            if not holder.stdin.closed:
                holder.stdin.close()
            holder.wait(30)
            check(holder.returncode == 0, f"lock holder: {holder.stderr.read()}")


def wait_metric(srv, name, value, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if scrape(srv).get(name) == value:
            return
        time.sleep(0.05)
    raise Failure(f"{name} never reached {value}")


# --- CORS --------------------------------------------------------------------

ORIGIN = "https://app.example.com"


@test
def cors_preflight_without_credential_echoes_only_listed_origins():
    with Server(TENANTFLOW_CORS_ORIGINS=f"{ORIGIN}, http://localhost:3000") as srv:
        pre = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "authorization, content-type"}
        r = srv.request("OPTIONS", "/v1/workflows", headers=pre)
        eq(r.status, 204, f"preflight {r}")
        eq(r.header("Access-Control-Allow-Origin"), ORIGIN, "origin echoed")
        eq(r.header("Vary"), "Origin", "Vary")
        check("POST" in r.header("Access-Control-Allow-Methods"), "methods")
        allowed = r.header("Access-Control-Allow-Headers").lower()
        check("authorization" in allowed and "content-type" in allowed, allowed)
        r = srv.request("OPTIONS", "/v1/workflows", headers={**pre, "Origin": "https://evil.example"})
        eq(r.status, 204, "unlisted preflight")
        eq(r.header("Access-Control-Allow-Origin"), None, "unlisted origin not echoed")
        eq(r.header("Vary"), "Origin", "Vary on unlisted")
        t = Tenant(srv)
        r = t.req("GET", "/v1/workflows", headers={"Origin": "http://localhost:3000"})
        eq(r.status, 200, f"{r}")
        eq(r.header("Access-Control-Allow-Origin"), "http://localhost:3000", "actual request")
        # Every response header the contract documents can be read by the
        # page, beyond the ones CORS always exposes.
        exposed = {h.strip().lower() for h in r.header("Access-Control-Expose-Headers").split(",")}
        safelisted = {"cache-control", "content-language", "content-length", "content-type",
                      "expires", "last-modified", "pragma"}
        doc = srv.request("GET", "/openapi.json").json
        responses = [resp for item in doc["paths"].values() for op in item.values()
                     if isinstance(op, dict) for resp in op.get("responses", {}).values()]
        responses += list(doc["components"].get("responses", {}).values())
        documented = {h.lower() for resp in responses for h in resp.get("headers", {})}
        check({"location", "idempotent-replayed", "www-authenticate"} <= documented,
              f"the document names its headers: {sorted(documented)}")
        eq(sorted(documented - safelisted - exposed), [], "documented headers not exposed")
        r = t.req("GET", "/v1/workflows", headers={"Origin": "https://app.example.com.evil"})
        eq(r.header("Access-Control-Allow-Origin"), None, "prefix match is not a match")
        r = srv.request("GET", "/v1/workflows", headers={"Origin": ORIGIN})
        problem(r, 401)
        eq(r.header("Access-Control-Allow-Origin"), ORIGIN, "errors readable by the page too")


@test
def cors_unconfigured_sends_no_cors_headers():
    r = server().request("OPTIONS", "/v1/workflows", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    problem(r, 405)
    eq(r.header("Access-Control-Allow-Origin"), None, "no CORS without configuration")


# --- configuration -----------------------------------------------------------

@test
def threads_and_connections_default_to_the_cpus():
    # Empty counts as unset, so the server sizes itself: one I/O thread and
    # two database connections per CPU it may run on (what `nproc` counts).
    cpus = len(os.sched_getaffinity(0))
    with Server(TENANTFLOW_THREADS="", TENANTFLOW_DB_POOL_SIZE="", TENANTFLOW_LOG_LEVEL="info") as srv:
        line = next(json.loads(l) for l in srv.read_log().splitlines() if '"listening"' in l)
    eq(line["io_threads"], cpus, "one I/O thread per CPU")
    eq(line["db_connections"], 2 * cpus, "two database connections per CPU")
    with Server(TENANTFLOW_THREADS="3", TENANTFLOW_DB_POOL_SIZE="5", TENANTFLOW_LOG_LEVEL="info") as srv:
        line = next(json.loads(l) for l in srv.read_log().splitlines() if '"listening"' in l)
    eq((line["io_threads"], line["db_connections"]), (3, 5), "set values win")


BAD = [
    ("TENANTFLOW_THREADS", "0"),
    ("TENANTFLOW_THREADS", "8x"),
    ("TENANTFLOW_DB_POOL_SIZE", "100000"),
    ("TENANTFLOW_DB_POOL_SIZE", " 4"),
    ("TENANTFLOW_DB_POOL_SIZE", "+4"),
    ("TENANTFLOW_DB_POOL_MAX_WAITERS", "-1"),
    ("TENANTFLOW_LISTEN", "localhost"),
    ("TENANTFLOW_LISTEN", "127.0.0.1:99999"),
    ("TENANTFLOW_LISTEN", "[::1]:8080"),
    ("TENANTFLOW_LISTEN", "localhost:8080"),
    ("TENANTFLOW_LISTEN", "999.1.1.1:8080"),
    ("TENANTFLOW_MIGRATIONS_DIR", "/nonexistent"),
    ("TENANTFLOW_LOG_LEVEL", "loud"),
    ("TENANTFLOW_METRICS", "yes"),
    ("TENANTFLOW_METRICS_LISTEN", "localhost"),
    ("TENANTFLOW_METRICS_LISTEN", "127.0.0.1:70000"),
    ("TENANTFLOW_RATE_LIMIT", "fast"),
    ("TENANTFLOW_RATE_LIMIT", "-5"),
    ("TENANTFLOW_RATE_LIMIT_BURST", "0"),
    ("TENANTFLOW_CORS_ORIGINS", "https://ok.example,app.example.com"),
    ("TENANTFLOW_CORS_ORIGINS", "https://app.example.com/"),
    ("TENANTFLOW_DATABASE_URL", "postgresql://%zz"),
    ("TENANTFLOW_SIGNING_KEY", "/nonexistent/signing.key"),
    ("TENANTFLOW_TOKEN_TTL", "10"),
    ("TENANTFLOW_IDLE_TIMEOUT", "1.5"),
]


@test
def bad_configuration_stops_with_status_2_naming_the_variable():
    for name, value in BAD:
        p = cli("serve", env={name: value}, check_rc=False)
        eq(p.returncode, 2, f"{name}={value!r}: {p.stderr}")
        check(name + ":" in p.stderr, f"{name} not named: {p.stderr!r}")
        check("listening" not in p.stderr, "must not start")
    # Every bad variable is reported at once.
    p = cli("serve", env={"TENANTFLOW_THREADS": "x", "TENANTFLOW_METRICS": "x"}, check_rc=False)
    eq(p.returncode, 2, "exit status")
    check("TENANTFLOW_THREADS:" in p.stderr and "TENANTFLOW_METRICS:" in p.stderr, p.stderr)
    lines = p.stderr.splitlines()
    check(len(lines) >= 2 and all(x.startswith("tenantflow: ") for x in lines),
          f"one prefixed line per problem: {p.stderr!r}")
    p = cli("serve", env={"TENANTFLOW_METRICS": "off",
                          "TENANTFLOW_METRICS_LISTEN": "127.0.0.1:9100"}, check_rc=False)
    eq(p.returncode, 2, "metrics off, yet a metrics address")
    check("TENANTFLOW_METRICS_LISTEN:" in p.stderr, p.stderr)
    # migrate checks the same table.
    p = cli("migrate", "status", env={"TENANTFLOW_LOG_LEVEL": "loud"}, check_rc=False)
    eq(p.returncode, 2, "migrate with a bad variable")
    # A mistyped command says so on stderr, with status 2.
    for args, says in ((["frobnicate"], "unknown command 'frobnicate'"),
                       (["migrate", "bogus"], "wrong arguments for 'migrate'"),
                       (["operator"], "wrong arguments for 'operator'")):
        p = cli(*args, check_rc=False)
        eq(p.returncode, 2, f"{args}: exit status")
        check(says in p.stderr and "--help" in p.stderr, f"{args}: {p.stderr!r}")


@test
def help_lists_every_variable_and_man_page_documents_them():
    p = cli("--help")
    config_c = open(os.path.join(REPO, "src/platform/config.c")).read()
    names = sorted(set(re.findall(r'"(TENANTFLOW_[A-Z_]+)"', config_c)))
    check(len(names) >= 20, f"variables found {names}")
    with open(os.path.join(REPO, "docs/tenantflow.8")) as f:
        man = f.read().replace("\\-", "-")
    with open(os.path.join(REPO, "contrib/tenantflow.env")) as f:
        env_example = f.read()
    for n in names:
        check(n in p.stdout, f"{n} missing from --help")
        check(n in man, f"{n} missing from the man page")
        check(n in env_example or n == "TENANTFLOW_SIGNING_KEY", f"{n} missing from the example")
    for word in ("SIGHUP", "SIGTERM", "Exit status"):
        check(word in p.stdout, f"{word} missing from --help")
    p = subprocess.run(["man", "--warnings", "-l", os.path.join(REPO, "docs/tenantflow.8")],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, MANWIDTH="80", MAN_KEEP_STDERR="1"))
    eq(p.returncode, 0, "man renders")
    eq(p.stderr.strip(), "", "no troff warnings")
    for section in ("COMMANDS", "ENVIRONMENT", "FILES", "SIGNALS", "EXIT STATUS"):
        check(section in p.stdout, f"man page lacks {section}")


# --- install -------------------------------------------------------------------

@test
def make_install_and_uninstall_honour_prefix_and_destdir():
    work = tempfile.mkdtemp(dir=TMP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    env.pop("TENANTFLOW_MIGRATIONS_DIR", None)
    build = os.path.join(work, "build")

    def make(*args):
        p = subprocess.run(["make", "-s", "-C", REPO, f"BUILD={build}", "SANITIZE=", *args],
                           env=env, capture_output=True, text=True, timeout=900)
        eq(p.returncode, 0, f"make {' '.join(args)}: {p.stdout[-1500:]}{p.stderr[-1500:]}")

    dest = os.path.join(work, "dest")
    make("install", f"DESTDIR={dest}", "PREFIX=/opt/tf")
    root = dest + "/opt/tf"
    files = [root + "/bin/tenantflow", root + "/share/man/man8/tenantflow.8",
             root + "/lib/systemd/system/tenantflow.service",
             root + "/share/tenantflow/tenantflow.env.example",
             root + "/etc/tenantflow/tenantflow.env"]
    migrations = sorted(os.listdir(os.path.join(REPO, "migrations")))
    files += [root + "/share/tenantflow/migrations/" + m for m in migrations]
    for f in files:
        check(os.path.isfile(f), f"{f} not installed")
    check(os.access(root + "/bin/tenantflow", os.X_OK), "binary executable")
    unit = open(root + "/lib/systemd/system/tenantflow.service").read()
    check("ExecStart=/opt/tf/bin/tenantflow serve" in unit, "unit points at the binary")
    check("EnvironmentFile=/opt/tf/etc/tenantflow/tenantflow.env" in unit, "unit env file")
    for opt in ("Type=notify", "DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict",
                "PrivateTmp=yes", "CapabilityBoundingSet=\n", "MemoryDenyWriteExecute=yes",
                "SystemCallFilter=@system-service", "RestrictAddressFamilies="):
        check(opt in unit, f"unit lacks {opt!r}")
    envfile = open(root + "/etc/tenantflow/tenantflow.env").read()
    check("#TENANTFLOW_MIGRATIONS_DIR=/opt/tf/share/tenantflow/migrations" in envfile and
          "/usr/local" not in envfile and "/etc/tenantflow/" not in envfile.replace(
              "/opt/tf/etc/tenantflow/", ""), "the env file names the installed paths")
    p = subprocess.run([root + "/bin/tenantflow", "--version"], capture_output=True, text=True)
    eq((p.returncode, p.stdout.startswith("tenantflow ")), (0, True), "installed --version")
    p = subprocess.run([root + "/bin/tenantflow", "--help"], capture_output=True, text=True)
    check("[/opt/tf/share/tenantflow/migrations]" in p.stdout, "default migrations follow PREFIX")
    if shutil.which("systemd-analyze"):
        p = subprocess.run(["systemd-analyze", "verify", "--man=no",
                            root + "/lib/systemd/system/tenantflow.service"],
                           capture_output=True, text=True, timeout=120)
        bad = [l for l in p.stderr.splitlines() if "/opt/tf/bin/tenantflow" not in l
               and "is not executable" not in l and "No such file" not in l]
        eq(bad, [], "systemd-analyze verify")
    # An edited environment file survives reinstall and uninstall.
    with open(root + "/etc/tenantflow/tenantflow.env", "a") as f:
        f.write("TENANTFLOW_THREADS=2\n")
    make("install", f"DESTDIR={dest}", "PREFIX=/opt/tf")
    check("TENANTFLOW_THREADS=2" in open(root + "/etc/tenantflow/tenantflow.env").read(),
          "install keeps an edited env file")
    make("uninstall", f"DESTDIR={dest}", "PREFIX=/opt/tf")
    for f in files:
        if f.endswith("/etc/tenantflow/tenantflow.env"):
            check(os.path.exists(f), "edited env file kept")
        else:
            check(not os.path.exists(f), f"{f} left behind")
    check(not os.path.exists(root + "/share/tenantflow"), "share/tenantflow removed")

    # Without DESTDIR the compiled-in migrations directory is really used.
    prefix = os.path.join(work, "prefix")
    make("install", f"PREFIX={prefix}")
    p = subprocess.run([prefix + "/bin/tenantflow", "migrate", "status"], env=env,
                       capture_output=True, text=True, timeout=60)
    eq(p.returncode, 0, f"installed migrate status: {p.stderr}")
    check(migrations[0][:4] in p.stdout, f"status lists the migrations: {p.stdout}")
    make("uninstall", f"PREFIX={prefix}")
    check(not os.path.exists(prefix + "/bin/tenantflow"), "uninstalled")
    check(not os.path.exists(prefix + "/etc/tenantflow/tenantflow.env"),
          "an env file nobody edited goes with uninstall")


def metric_value(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


@test
def metrics_show_timers_outbox_lag_and_webhook_failures():
    from harness import PURCHASE_ORDER, Tenant
    t = Tenant()
    srv = t.srv
    before = srv.request("GET", "/metrics").body
    for name in ("tf_timers_pending", "tf_timers_due", "tf_outbox_unsequenced_events",
                 "tf_outbox_lag_seconds", "tf_webhook_messages_pending",
                 "tf_webhook_delivery_lag_seconds", "tf_webhook_failed_attempts_total"):
        check(metric_value(before, name) is not None, f"{name} on /metrics")
    t.req("POST", "/v1/workflows", PURCHASE_ORDER)
    item = t.req("POST", "/v1/items", {"workflow": "purchase-order", "title": "timer",
                                       "attributes": {"amount": 1, "vendor": "v"}}).json
    eq(t.req("POST", f"/v1/items/{item['id']}/transitions", {"transition": "submit"}).status,
       200, "submitted: a 48 h timer is pending")
    # The database gauges are refreshed in the background every 2 s.
    deadline = time.time() + 10
    while True:
        after = srv.request("GET", "/metrics").body
        grew = metric_value(after, "tf_timers_pending") - metric_value(before, "tf_timers_pending")
        if grew == 1 or time.time() > deadline:
            break
        time.sleep(0.2)
    eq(grew, 1, "one more pending timer")
    check(metric_value(after, "tf_outbox_lag_seconds") >= 0, "lag is a number of seconds")


@test
def metrics_move_to_their_own_address():
    port = free_port()
    with Server(TENANTFLOW_METRICS_LISTEN=f"127.0.0.1:{port}") as srv:
        problem(srv.request("GET", "/metrics"), 404)  # not on the API's address any more
        eq(srv.request("GET", "/healthz").status, 200, "healthz")
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/metrics")
        r = c.getresponse()
        body = r.read().decode()
        eq(r.status, 200, "metrics on their own address")
        check(r.getheader("Content-Type").startswith("text/plain; version=0.0.4"), "type")
        check('route="/healthz"' in body, "the API's requests are counted")
        c.request("GET", "/v1/items")  # same connection: it stays open
        r = c.getresponse()
        p = json.loads(r.read())
        eq((r.status, p["status"], p["type"], p["instance"]), (404, 404, "/problems/not-found",
                                                              "/v1/items"), "other paths")
        c.request("POST", "/metrics", body=b"x")
        r = c.getresponse()
        r.read()
        eq((r.status, r.getheader("Allow")), (405, "GET, HEAD"), "other methods")


@test
def background_jobs_back_off_while_the_database_is_out_of_reach():
    proxy = CuttableProxy()
    try:
        with Server(TENANTFLOW_DATABASE_URL=proxy.url) as srv:
            eq(srv.request("GET", "/readyz").status, 200, "ready through the proxy")
            proxy.outage()
            time.sleep(0.5)
            start = len(srv.read_log().splitlines())
            time.sleep(6)
            lines = srv.read_log().splitlines()[start:]
            warnings = [l for l in lines if '"level":"warn"' in l]
            # Seven jobs: without back-off each logged every round (about
            # ten lines a second in all); with it, rounds 1, 2, 4 s apart.
            check(len(warnings) <= 30, f"{len(warnings)} warnings in 6 s:\n" +
                  "\n".join(warnings[:20]))
            check(srv.request("GET", "/readyz").status == 503, "not ready without a database")
            proxy.outage(False)
            deadline = time.time() + 10
            while srv.request("GET", "/readyz").status != 200 and time.time() < deadline:
                time.sleep(0.1)
            eq(srv.request("GET", "/readyz").status, 200, "ready again")
    finally:
        proxy.close()
