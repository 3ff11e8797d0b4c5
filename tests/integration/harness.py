"""Integration test harness: starts the real tenantflow binary against the
throwaway PostgreSQL that scripts/test.sh prepared, and talks HTTP to it.

Only the Python standard library is used. Each test is a function decorated
with @test; run.py imports every test_*.py module and runs them in order.
Tests isolate themselves by creating their own tenants (unique slugs), so
they never need to reset shared state.
"""
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Failure(AssertionError):
    pass


def check(cond, msg="check failed"):
    if not cond:
        raise Failure(msg)


def eq(got, want, what="value"):
    if got != want:
        raise Failure(f"{what}: got {got!r}, want {want!r}")


ROOT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("TF_BIN", os.path.join(ROOT_DIR, "build", "tenantflow"))
TMP = os.environ.get("TF_TMP", "/tmp")
SANITIZER_MARKS = ("Sanitizer", "runtime error:", "LeakSanitizer")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class Server:
    """One tenantflow process. Use as a context manager or call stop().
    With TENANTFLOW_TLS_CERT in env it speaks HTTPS, trusting that file as CA."""

    def __init__(self, **env):
        self.port = free_port()
        cert = env.get("TENANTFLOW_TLS_CERT")
        self.ssl = ssl.create_default_context(cafile=cert) if cert else None
        self.log_path = os.path.join(TMP, f"server-{self.port}.log")
        e = dict(os.environ)
        e.update({"TENANTFLOW_LISTEN": f"127.0.0.1:{self.port}", "TENANTFLOW_THREADS": "4",
                  "TENANTFLOW_DB_POOL_SIZE": "4"})
        e.update({k: str(v) for k, v in env.items()})
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([BIN, "serve"], env=e, stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise Failure(f"server exited {self.proc.returncode}: {self.read_log()[-2000:]}")
            try:
                if self.request("GET", "/healthz").status == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise Failure("server did not come up")

    @classmethod
    def attach(cls, port):
        """A handle on a server started by someone else (no process to stop)."""
        s = cls.__new__(cls)
        s.port = port
        s.proc = None
        s.ssl = None
        return s

    def read_log(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()

    def request(self, method, path, body=None, token=None, headers=None, raw=None, timeout=30):
        h = {}
        if body is not None:
            raw = json.dumps(body).encode()
        if raw is not None:
            h["Content-Type"] = "application/json"
        if token:
            h["Authorization"] = "Bearer " + token
        h.update(headers or {})
        c = self.connection(timeout)
        try:
            c.request(method, path, body=raw, headers=h)
            r = c.getresponse()
            return Response(r.status, r.getheaders(), r.read().decode("utf-8", "replace"))
        finally:
            c.close()

    def connection(self, timeout=30, context=None):
        """A (keep-alive capable) connection to the server."""
        ctx = context or self.ssl
        if ctx:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def raw(self, data, timeout=10):
        """Sends raw bytes, returns the raw response (for framing tests)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            chunks = []
            try:
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    chunks.append(b)
            except socket.timeout:
                pass
            return b"".join(chunks)

    def stop(self, sig=signal.SIGTERM, timeout=40):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise Failure("server did not stop on SIGTERM")
        self.log.close()
        text = self.read_log()
        for mark in SANITIZER_MARKS:
            if mark in text:
                raise Failure(f"sanitizer report in server log {self.log_path}")
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


_shared = None


def server():
    """The server most tests share; stopped (and its log checked) by run.py."""
    global _shared
    if _shared is None:
        _shared = Server()
    return _shared


def stop_shared():
    global _shared
    if _shared is not None:
        s, _shared = _shared, None
        return s.stop()
    return 0


def cli(*args, env=None, check_rc=True):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([BIN, *args], env=e, capture_output=True, text=True, timeout=60)
    if check_rc and p.returncode != 0:
        raise Failure(f"tenantflow {' '.join(args)} exited {p.returncode}: {p.stderr}")
    return p


_operator = None


def operator_token():
    global _operator
    if _operator is None:
        _operator = cli("operator", "create", "tests").stdout.strip()
    return _operator


def psql(sql, url=None, *args):
    """Runs SQL through psql (default: the superuser URL); returns stdout."""
    url = url or os.environ["TF_ADMIN_URL"]
    p = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql, *args],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise Failure(f"psql failed: {p.stderr}")
    return p.stdout


def unique(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Tenant:
    """A fresh tenant with its admin, logged in."""

    def __init__(self, srv=None):
        self.srv = srv or server()
        self.slug = unique("tn")
        self.email = f"admin@{self.slug}.example"
        self.password = "correct horse battery"
        r = self.srv.request("POST", "/v1/admin/tenants", token=operator_token(), body={
            "slug": self.slug, "name": "Tenant " + self.slug,
            "admin_email": self.email, "admin_password": self.password})
        eq(r.status, 201, f"create tenant {r}")
        self.id = r.json["id"]
        self.token = self.login()

    def login(self, email=None, password=None):
        r = self.srv.request("POST", "/v1/auth/token", body={
            "tenant": self.slug, "email": email or self.email,
            "password": password or self.password})
        eq(r.status, 200, f"login {r}")
        return r.json["access_token"]

    def req(self, method, path, body=None, **kw):
        return self.srv.request(method, path, body=body, token=self.token, **kw)


PURCHASE_ORDER = {
    "key": "purchase-order",
    "name": "Purchase order",
    "states": [
        {"name": "draft"},
        {"name": "submitted", "sla": "PT48H", "on_timeout": "escalate"},
        {"name": "escalated"},
        {"name": "approved", "terminal": True},
        {"name": "rejected", "terminal": True},
    ],
    "initial_state": "draft",
    "transitions": [
        {"name": "submit", "from": ["draft"], "to": "submitted", "permission": "po:submit",
         "requires": ["/amount", "/vendor"]},
        {"name": "approve", "from": ["submitted", "escalated"], "to": "approved",
         "permission": "po:approve"},
        {"name": "reject", "from": ["submitted", "escalated"], "to": "rejected",
         "permission": "po:approve"},
        {"name": "escalate", "from": ["submitted"], "to": "escalated"},
    ],
}


def problem(r, status, slug=None):
    """Asserts r is an RFC 9457 problem with this status (and type slug)."""
    eq(r.status, status, f"status of {r}")
    ct = r.header("Content-Type") or ""
    check(ct.startswith("application/problem+json"), f"content type {ct!r} of {r}")
    check(isinstance(r.json, dict), f"problem body {r}")
    for k in ("type", "title", "status", "detail", "request_id"):
        check(k in r.json, f"problem member {k} missing in {r}")
    eq(r.json["status"], status, "problem status member")
    eq(r.json["request_id"], r.header("X-Request-Id"), "request_id matches header")
    if slug:
        eq(r.json["type"], f"/problems/{slug}", "problem type")
    return r.json


class CuttableProxy:
    """A Unix-socket relay in front of the test cluster whose connections can
    all be cut at once: the server sees its sockets close with no message
    from PostgreSQL, as after a crash or an immediate shutdown (libpq reports
    that with no SQLSTATE, sometimes before PQstatus turns bad)."""

    def __init__(self):
        url = os.environ["TENANTFLOW_DATABASE_URL"]
        host = re.search(r"host=([^&]+)", url).group(1)
        port = re.search(r"port=(\d+)", url).group(1)
        self.target = os.path.join(host, f".s.PGSQL.{port}")
        self.dir = os.path.join(os.environ.get("TF_TMP", "/tmp"), unique("proxy"))
        os.makedirs(self.dir)
        self.url = url.replace(f"host={host}", f"host={self.dir}")
        self.lock = threading.Lock()
        self.socks = []
        self.up = True  # False: new connections are closed at once
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(os.path.join(self.dir, f".s.PGSQL.{port}"))
        self.listener.listen(64)
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target)
            with self.lock:
                self.socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    @staticmethod
    def pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(2)
            except OSError:
                pass

    # What a backend sends before it exits on an immediate shutdown.
    FAREWELL = b"".join(b"%s%s\0" % (k, v) for k, v in (
        (b"S", b"WARNING"), (b"V", b"WARNING"), (b"C", b"57P01"),
        (b"M", b"terminating connection due to immediate shutdown command"))) + b"\0"
    FAREWELL = b"N" + (len(FAREWELL) + 4).to_bytes(4, "big") + FAREWELL

    def cut(self, farewell=False):
        """Closes every relayed connection; with farewell, first sends each
        client the notice of an immediate shutdown (only safe while the
        connections are idle, between messages)."""
        with self.lock:
            socks, self.socks = self.socks, []
        for i, s in enumerate(socks):
            try:
                if farewell and i % 2 == 0:
                    s.sendall(self.FAREWELL)
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        return len(socks) // 2

    def outage(self, on=True):
        """The database out of reach (every connection cut, new ones closed)
        until outage(False)."""
        self.up = not on
        if on:
            self.cut()

    def close(self):
        self.listener.close()
        self.cut()
