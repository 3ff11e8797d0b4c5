"""Webhooks: signed deliveries checked by an independent implementation
(Python hmac), retries with back-off and Retry-After, 410, order per item,
at-least-once across kill -9, and the SSRF policy at creation and delivery."""
import base64
import hashlib
import hmac
import http.server
import json
import signal
import threading
import time

import harness
from harness import (PURCHASE_ORDER, Failure, Server, Tenant, check, eq, problem, psql,
                     server, test, unique)

PRIVATE_OK = {"TENANTFLOW_WEBHOOK_ALLOW_PRIVATE": "1", "TENANTFLOW_WEBHOOK_RETRY_SCALE": "0.001"}


class Receiver:
    """A local HTTP receiver; `respond(n, event)` -> (status, headers) decides
    each answer (n counts requests for that webhook-id, from 1)."""

    def __init__(self, respond=None, delay=0.0):
        self.calls = []
        self.lock = threading.Lock()
        self.respond = respond or (lambda n, ev: (200, {}))
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if delay:
                    time.sleep(delay)
                h = {k.lower(): v for k, v in self.headers.items()}
                with outer.lock:
                    n = 1 + sum(1 for c in outer.calls if c["id"] == h.get("webhook-id"))
                    call = {"id": h.get("webhook-id"), "ts": h.get("webhook-timestamp"),
                            "sig": h.get("webhook-signature"), "body": body,
                            "event": json.loads(body), "at": time.time(), "n": n}
                    outer.calls.append(call)
                status, extra = outer.respond(n, call["event"])
                call["status"] = status
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def ok_events(self):
        with self.lock:
            return [c for c in self.calls if 200 <= c["status"] < 300]

    def wait(self, pred, timeout=20, what="deliveries"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if pred(list(self.calls)):
                    return
            time.sleep(0.05)
        raise Failure(f"timed out waiting for {what}: {[(c['event']['type'], c['status']) for c in self.calls]}")


def valid_signature(secret, call):
    key = base64.b64decode(secret[len("whsec_"):])
    signed = f"{call['id']}.{call['ts']}.".encode() + call["body"]
    want = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return call["sig"] == "v1," + want


def own_server(**env):
    harness.stop_shared()  # the shared server must not be the active dispatcher
    return Server(**dict(PRIVATE_OK, **env))


def subscribe(t, url, types):
    r = t.req("POST", "/v1/webhooks", {"url": url, "event_types": types})
    eq(r.status, 201, f"create webhook {r}")
    return r.json


def item(t, title="x"):
    r = t.req("POST", "/v1/items", {"workflow": "purchase-order", "title": title,
                                    "attributes": {"amount": 1, "vendor": "V"}})
    eq(r.status, 201, f"item {r}")
    return r.json["id"]


@test
def signed_delivery_checked_independently():
    rec = Receiver()
    with own_server() as srv:
        t = Tenant(srv)
        eq(t.req("POST", "/v1/workflows", PURCHASE_ORDER).status, 201, "workflow")
        hook = subscribe(t, rec.url, ["item.created", "item.transitioned"])
        secret = hook["secret"]
        check(secret.startswith("whsec_"), "Standard Webhooks secret format")
        listed = t.req("GET", "/v1/webhooks").json["data"]
        eq([h["id"] for h in listed], [hook["id"]], "listed")
        check("secret" not in listed[0], "secret shown once only")
        i = item(t)
        eq(t.req("POST", f"/v1/items/{i}/transitions", {"transition": "submit"}).status, 200, "t")
        rec.wait(lambda c: len(c) >= 2)
        calls = rec.ok_events()
        eq([c["event"]["type"] for c in calls], ["item.created", "item.transitioned"], "order")
        for c in calls:
            check(valid_signature(secret, c), f"signature verifies independently: {c['sig']}")
            check(abs(int(c["ts"]) - time.time()) < 60, "timestamp is now")
            eq(c["event"]["data"]["id"], i, "event body")
        check(not valid_signature("whsec_" + base64.b64encode(b"x" * 32).decode(), calls[0]),
              "a wrong secret does not verify")
        feed = t.req("GET", "/v1/events?type=item.created").json["data"]
        eq(calls[0]["event"], feed[0], "the body is the feed's event")
        # The secret is stored sealed: neither it nor its bytes are in the database or trail.
        raw = base64.b64decode(secret[6:]).hex()
        dump = psql(f"SELECT encode(secret_box, 'hex') FROM events.webhooks WHERE id = '{hook['id']}'")
        check(raw not in dump, "secret not stored in clear")
        trail = psql(f"SELECT changes::text FROM audit.records WHERE resource_id = '{hook['id']}'")
        check(secret not in trail and "secret" not in trail, "secret not in the audit trail")
        d = t.req("GET", f"/v1/webhooks/{hook['id']}/deliveries").json["data"]
        eq(sorted(x["status_code"] for x in d), [200, 200], "deliveries recorded")
        eq(sorted(d[0]), ["at", "attempt", "duration_ms", "error", "event_id", "id",
                          "message_id", "status_code"], "delivery record members")
    rec.close()


@test
def retries_after_500_in_order_per_item_and_retry_after():
    # item.created of the first item fails twice with 500, then succeeds;
    # its transition must not overtake it. A 503 with Retry-After: 2 delays.
    def respond(n, ev):
        if ev["type"] == "item.created" and ev["data"]["title"] == "first" and n <= 2:
            return 500, {}
        if ev["type"] == "item.created" and ev["data"]["title"] == "slow" and n == 1:
            return 503, {"Retry-After": "2"}
        return 200, {}
    rec = Receiver(respond)
    with own_server() as srv:
        t = Tenant(srv)
        eq(t.req("POST", "/v1/workflows", PURCHASE_ORDER).status, 201, "workflow")
        hook = subscribe(t, rec.url, ["item.created", "item.transitioned"])
        a = item(t, "first")
        eq(t.req("POST", f"/v1/items/{a}/transitions", {"transition": "submit"}).status, 200, "t")
        item(t, "slow")
        rec.wait(lambda c: sum(1 for x in c if x["status"] == 200) >= 3, timeout=30)
        calls = list(rec.calls)
        first = [c for c in calls if c["event"]["data"].get("title") == "first"
                 and c["event"]["type"] == "item.created"]
        eq([c["status"] for c in first], [500, 500, 200], "retried after 500")
        eq(len({c["id"] for c in first}), 1, "same webhook-id on every attempt")
        check(all(valid_signature(hook["secret"], c) for c in first), "each attempt signed")
        order = [c["event"]["type"] for c in calls if c["event"]["data"]["id"] == a
                 and c["status"] == 200]
        eq(order, ["item.created", "item.transitioned"], "in order per item")
        trans = [c for c in calls if c["event"]["type"] == "item.transitioned"][0]
        check(trans["at"] >= first[-1]["at"], "the transition waited for the creation")
        slow = [c for c in calls if c["event"]["data"].get("title") == "slow"]
        eq([c["status"] for c in slow], [503, 200], "503 then success")
        check(slow[1]["at"] - slow[0]["at"] >= 1.9, "Retry-After honoured")
        d = t.req("GET", f"/v1/webhooks/{hook['id']}/deliveries?limit=200").json["data"]
        mine = sorted((x["attempt"], x["status_code"]) for x in d
                      if x["message_id"] == first[0]["id"])
        eq(mine, [(1, 500), (2, 500), (3, 200)], "attempts listed")
    rec.close()


@test
def gives_up_after_ten_attempts_and_410_disables():
    rec = Receiver(lambda n, ev: (500, {}) if ev["data"]["title"] == "never" else (410, {}))
    with own_server(TENANTFLOW_WEBHOOK_RETRY_SCALE="0.00001") as srv:
        t = Tenant(srv)
        eq(t.req("POST", "/v1/workflows", PURCHASE_ORDER).status, 201, "workflow")
        hook = subscribe(t, rec.url, ["item.created"])
        item(t, "never")
        rec.wait(lambda c: len(c) >= 10, timeout=40, what="ten attempts")
        time.sleep(1.5)
        eq(len(rec.calls), 10, "no eleventh attempt")
        st = psql(f"SELECT status FROM events.messages WHERE webhook_id = '{hook['id']}'").strip()
        eq(st, "failed", "marked failed")
        item(t, "gone")
        rec.wait(lambda c: any(x["status"] == 410 for x in c))
        time.sleep(0.5)
        listed = t.req("GET", "/v1/webhooks").json["data"][0]
        eq((listed["status"], listed["version"]), ("disabled", 2),
           "410 disables the subscription: a change, with a new version")
        n = len(rec.calls)
        item(t, "after")
        time.sleep(1.5)
        eq(len(rec.calls), n, "a disabled subscription gets nothing")
        # Its owner re-enables it: the events from then on are delivered.
        r = t.req("PATCH", f"/v1/webhooks/{hook['id']}", {"status": "active"})
        eq((r.status, r.json["status"], r.json["disabled_reason"]), (200, "active", None),
           f"re-enabled {r}")
        rec.respond = lambda n, ev: (200, {})
        item(t, "back")
        rec.wait(lambda c: any(x["event"]["data"]["title"] == "back" and x["status"] == 200
                               for x in c), what="the delivery after re-enabling")
        check(all(x["event"]["data"]["title"] != "after" for x in rec.calls),
              "what happened while it was disabled is not sent (the feed has it)")
    rec.close()


def pending(hook):
    return int(psql(f"SELECT count(*) FROM events.messages WHERE webhook_id = '{hook['id']}'"
                    " AND status = 'pending'").strip())


@test
def a_deleted_or_disabled_webhook_leaves_nothing_pending():
    # 500 for everything but "gone" (410): with real back-off the refused
    # messages wait 5 s for their next attempt, so they are pending when
    # the webhook goes.
    rec = Receiver(lambda n, ev: (410, {}) if ev["data"]["title"] == "gone" else (500, {}))
    with own_server(TENANTFLOW_WEBHOOK_RETRY_SCALE="1") as srv:
        t = Tenant(srv)
        eq(t.req("POST", "/v1/workflows", PURCHASE_ORDER).status, 201, "workflow")
        deleted = subscribe(t, rec.url, ["item.created"])
        item(t, "a")
        item(t, "b")
        rec.wait(lambda c: len(c) >= 2, what="two refused deliveries")
        eq(pending(deleted), 2, "refused messages wait for their retry")
        eq(t.req("DELETE", f"/v1/webhooks/{deleted['id']}").status, 204, "delete")
        eq(pending(deleted), 0, "a deleted webhook's messages are failed with it")

        disabled = subscribe(t, rec.url, ["item.created"])
        item(t, "c")
        rec.wait(lambda c: len(c) >= 3, what="the third refused delivery")
        eq(pending(disabled), 1, "refused message pending")
        item(t, "gone")
        rec.wait(lambda c: any(x["status"] == 410 for x in c), what="the 410")
        deadline = time.time() + 10
        while pending(disabled) and time.time() < deadline:
            time.sleep(0.05)
        listed = {w["id"]: w for w in t.req("GET", "/v1/webhooks").json["data"]}
        eq(listed[disabled["id"]]["status"], "disabled", "410 disables")
        eq(pending(disabled), 0, "a disabled webhook's messages are failed with it")
    rec.close()


@test
def patch_changes_a_webhook_and_refuses_bad_input_changing_nothing():
    from test_openapi import conforms, document
    doc = document()
    t = Tenant()
    hook = t.req("POST", "/v1/webhooks", {"url": "https://93.184.215.14/a",
                                          "event_types": ["item.created"]}).json
    path = f"/v1/webhooks/{hook['id']}"
    before = t.req("GET", path).json
    for body, pointers in (
            ({}, [""]),
            ({"status": "deleted"}, ["/status"]),
            ({"status": 1}, ["/status"]),
            ({"url": "http://10.0.0.1/"}, ["/url"]),
            ({"event_types": []}, ["/event_types"]),
            ({"event_types": ["item.created", "Bad Type"]}, ["/event_types/1"]),
            ({"colour": "red", "url": "ftp://93.184.215.14/"}, ["/colour", "/url"]),
            ({"secret": "whsec_mine"}, ["/secret"]),
            ({"url": None, "event_types": None, "status": None},
             ["/event_types", "/status", "/url"])):
        r = t.req("PATCH", path, body)
        p = problem(r, 422, "validation")
        conforms(doc, "PATCH", "/v1/webhooks/{id}", r)
        eq(sorted(e["pointer"] for e in p["errors"]), pointers, f"{body}")
    problem(t.req("PATCH", path, raw=b"[1]"), 422)
    problem(t.req("PATCH", path, raw=b"{"), 400)
    # Versioned like every changeable resource: ETag, If-None-Match, If-Match.
    got = t.req("GET", path)
    eq((got.header("ETag"), got.json["version"]), ('"1"', 1), "ETag is the version")
    eq(t.req("GET", path, headers={"If-None-Match": '"1"'}).status, 304, "not modified")
    for stale, status in (('"7"', 412), ("garbage", 400)):
        r = t.req("PATCH", path, {"status": "disabled"}, headers={"If-Match": stale})
        problem(r, status)
        conforms(doc, "PATCH", "/v1/webhooks/{id}", r)
    eq(t.req("GET", path).json, before, "refused changes change nothing")
    problem(t.req("PATCH", "/v1/webhooks/not-a-uuid", {"status": "active"}), 404)
    problem(Tenant().req("PATCH", path, {"status": "disabled"}), 404)  # another tenant's
    eq(t.req("GET", path).json, before, "another tenant changed nothing")

    r = t.req("PATCH", path, {"url": "https://93.184.215.14/b",
                              "event_types": ["item.transitioned", "item.created",
                                              "item.transitioned"]},
              headers={"If-Match": '"1"'})
    conforms(doc, "PATCH", "/v1/webhooks/{id}", r)
    eq((r.json["url"], r.json["event_types"], r.json["status"], r.json["version"],
        r.header("ETag")),
       ("https://93.184.215.14/b", ["item.created", "item.transitioned"], "active", 2, '"2"'),
       "changed; the types are a set, kept sorted")
    same = t.req("PATCH", path, {"event_types": ["item.created", "item.transitioned",
                                                 "item.created"]})
    eq((same.status, same.json["version"]), (200, 2), "the same set again is no change")
    check("secret" not in r.body, "no secret in the answer")
    eq(t.req("GET", path).json, r.json, "GET shows the change")
    key = {"Idempotency-Key": unique("patch-hook")}
    r = t.req("PATCH", path, {"status": "disabled"}, headers=key)
    eq((r.json["status"], r.json["disabled_reason"]), ("disabled", "disabled through the API"),
       "disabled by its owner")
    again = t.req("PATCH", path, {"status": "disabled"}, headers=key)
    eq((again.status, again.header("Idempotent-Replayed"), again.json), (200, "true", r.json),
       "a retry with the same key replays the answer")
    problem(t.req("PATCH", path, {"status": "active"}, headers=key), 422,
            "idempotency-key-reused")
    r = t.req("PATCH", path, {"status": "disabled"})  # changes nothing: recorded once
    eq((r.status, r.json["version"]), (200, 3), "a PATCH that changes nothing still answers")
    trail = t.req("GET", f"/v1/audit?resource_id={hook['id']}&action=webhook.updated").json["data"]
    eq([x["changes"] for x in reversed(trail)], [
        {"before": {"url": "https://93.184.215.14/a", "event_types": ["item.created"]},
         "after": {"url": "https://93.184.215.14/b",
                   "event_types": ["item.created", "item.transitioned"]}},
        {"before": {"status": "active"}, "after": {"status": "disabled"}}],
       "one audit record per change, with what changed")
    from test_events import wait_feed
    got = wait_feed(t, 2, type_="webhook.updated")
    eq([e["data"] for e in got], [{"url": "https://93.184.215.14/b",
                                   "event_types": ["item.created", "item.transitioned"]},
                                  {"status": "disabled"}], "and one event each")
    eq(t.req("DELETE", path).status, 204, "delete")
    problem(t.req("PATCH", path, {"status": "active"}), 404)  # a deleted one stays deleted


@test
def disabling_through_the_api_fails_what_was_pending():
    rec = Receiver(lambda n, ev: (500, {}))
    with own_server(TENANTFLOW_WEBHOOK_RETRY_SCALE="1") as srv:
        t = Tenant(srv)
        eq(t.req("POST", "/v1/workflows", PURCHASE_ORDER).status, 201, "workflow")
        hook = subscribe(t, rec.url, ["item.created"])
        item(t, "a")
        rec.wait(lambda c: len(c) >= 1, what="the refused delivery")
        eq(pending(hook), 1, "refused message waits for its retry")
        eq(t.req("PATCH", f"/v1/webhooks/{hook['id']}", {"status": "disabled"}).status, 200,
           "disable")
        eq(pending(hook), 0, "disabling fails what was pending, as a DELETE does")
    rec.close()


@test
def an_attempt_that_cannot_be_recorded_is_not_resent_in_a_loop():
    rec = Receiver()
    with own_server() as srv:
        t = Tenant(srv)
        eq(t.req("POST", "/v1/workflows", PURCHASE_ORDER).status, 201, "workflow")
        hook = subscribe(t, rec.url, ["item.created"])
        psql("REVOKE INSERT ON events.attempts FROM tenantflow_app")
        try:
            item(t, "x")
            rec.wait(lambda c: len(c) >= 1, what="the first delivery")
            time.sleep(2.5)
            n = len(rec.calls)
            # Once per dispatcher round (1 s), not once per loop turn.
            check(n <= 5, f"sent {n} times in 2.5 s while its attempt could not be written")
        finally:
            psql("GRANT INSERT ON events.attempts TO tenantflow_app")
        deadline = time.time() + 10
        while pending(hook) and time.time() < deadline:
            time.sleep(0.05)
        eq(pending(hook), 0, "recorded once the database takes it")
    rec.close()


@test
def each_event_arrives_after_kill_9_and_restart():
    rec = Receiver(delay=0.03)
    srv = own_server()
    t = Tenant(srv)
    eq(t.req("POST", "/v1/workflows", PURCHASE_ORDER).status, 201, "workflow")
    subscribe(t, rec.url, ["item.created"])
    ids = [item(t, f"k{i}") for i in range(40)]
    rec.wait(lambda c: len(c) >= 5)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    srv.log.close()
    before = len(rec.calls)
    check(before < 40, f"killed mid-way ({before} delivered)")
    with Server(**PRIVATE_OK):
        rec.wait(lambda c: {x["event"]["data"]["id"] for x in c} >= set(ids), timeout=40,
                 what="every event after restart")
    by_event = {}
    for c in rec.calls:
        by_event.setdefault(c["event"]["id"], set()).add(c["id"])
    eq(len(by_event), 40, "every event delivered")
    check(all(len(v) == 1 for v in by_event.values()),
          "duplicates only with the same webhook-id")
    rec.close()


SSRF_REFUSED = [
    "http://127.0.0.1/", "http://localhost:8080/", "http://2130706433/", "http://0x7f000001/",
    "http://0177.0.0.1/", "http://127.1/", "http://[::1]/", "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/", "http://10.1.2.3/", "http://172.16.0.1/", "http://192.168.0.1/",
    "http://169.254.1.1/", "http://0.0.0.0/", "http://[::]/", "http://224.0.0.1/",
    "http://[fe80::1]/", "http://[fc00::1]/", "http://100.64.0.1/",
]
METADATA = [
    "http://169.254.169.254/latest/meta-data/", "http://2852039166/", "http://0xa9fea9fe/",
    "http://0251.0376.0251.0376/", "http://169.254.43518/", "http://[fd00:ec2::254]/",
    "http://[::ffff:169.254.169.254]/", "http://[::ffff:a9fe:a9fe]/",
    "http://[64:ff9b::a9fe:a9fe]/", "http://[2002:a9fe:a9fe::1]/",
]
MALFORMED = ["ftp://93.184.215.14/", "not a url", "http://user:pw@93.184.215.14/", "/relative"]


@test
def ssrf_spellings_refused_at_creation():
    t = Tenant()
    for url in SSRF_REFUSED + METADATA + MALFORMED:
        p = problem(t.req("POST", "/v1/webhooks", {"url": url, "event_types": ["*"]}), 422)
        eq([e["pointer"] for e in p["errors"]], ["/url"], f"{url} refused at /url")
    eq(t.req("GET", "/v1/webhooks").json["data"], [], "nothing created")
    r = t.req("POST", "/v1/webhooks", {"url": "https://93.184.215.14/x",
                                       "event_types": ["item.created", "*", "item.created"]})
    eq((r.status, r.json["event_types"]), (201, ["*", "item.created"]),
       f"a public address is accepted; the types are stored as a set {r}")
    # Body validation collects everything.
    p = problem(t.req("POST", "/v1/webhooks", {"url": "http://10.0.0.1/", "event_types": [],
                                               "colour": 1}), 422)
    eq(sorted(e["pointer"] for e in p["errors"]), ["/colour", "/event_types", "/url"], "all")
    p = problem(t.req("POST", "/v1/webhooks", {"url": "https://93.184.215.14/",
                                               "event_types": ["item.created", "Bad Type"]}), 422)
    eq([e["pointer"] for e in p["errors"]], ["/event_types/1"], "bad type pointer")
    problem(t.req("DELETE", "/v1/webhooks/not-a-uuid"), 404)
    problem(Tenant().req("DELETE", f"/v1/webhooks/{r.json['id']}"), 404)
    problem(t.req("GET", "/v1/webhooks/00000000-0000-0000-0000-000000000000/deliveries"), 404)
    eq(t.req("DELETE", f"/v1/webhooks/{r.json['id']}").status, 204, "delete")
    problem(t.req("DELETE", f"/v1/webhooks/{r.json['id']}"), 404)


@test
def webhook_location_answers_get_like_the_list_without_the_secret():
    from test_openapi import conforms, document
    doc = document()
    t = Tenant()
    r = t.req("POST", "/v1/webhooks", {"url": "https://93.184.215.14/get-one",
                                       "event_types": ["none.such", "other.thing"]})
    eq(r.status, 201, f"create webhook {r}")
    created = dict(r.json)
    secret = created.pop("secret")
    loc = r.header("Location")
    eq(loc, f"/v1/webhooks/{created['id']}", "Location")
    got = t.req("GET", loc)
    eq(got.status, 200, f"GET {loc}: {got}")
    conforms(doc, "GET", "/v1/webhooks/{id}", got)
    eq(got.json, created, "GET equals the 201 body without its secret")
    listed = {w["id"]: w for w in t.req("GET", "/v1/webhooks").json["data"]}
    eq(got.json, listed[created["id"]], "GET equals the list element")
    for s in (secret, secret[len("whsec_"):], "secret"):
        check(s not in got.body, f"{s[:10]}... not in {got.body}")
    # A disabled subscription is listed, so it is readable, with its reason.
    psql("UPDATE events.webhooks SET status = 'disabled', disabled_reason = 'the receiver"
         f" answered 410' WHERE id = '{created['id']}'")
    got = t.req("GET", loc)
    eq((got.status, got.json["status"], got.json["disabled_reason"]),
       (200, "disabled", "the receiver answered 410"), f"disabled {got}")
    eq(got.json, t.req("GET", "/v1/webhooks").json["data"][0], "disabled: the list element")
    for bad in ("not-a-uuid", "00000000-0000-7000-8000-000000000000"):
        nf = t.req("GET", f"/v1/webhooks/{bad}")
        problem(nf, 404, "not-found")
        conforms(doc, "GET", "/v1/webhooks/{id}", nf)
    problem(Tenant().req("GET", loc), 404, "not-found")  # another tenant's webhook
    # A deleted subscription is no longer listed, so it is not found either.
    eq(t.req("DELETE", loc).status, 204, "delete")
    eq(t.req("GET", "/v1/webhooks").json["data"], [], "the list hides it")
    problem(t.req("GET", loc), 404, "not-found")


@test
def private_allowed_by_configuration_but_metadata_never():
    with own_server() as srv:
        t = Tenant(srv)
        for url in METADATA:
            problem(t.req("POST", "/v1/webhooks", {"url": url, "event_types": ["*"]}), 422)
        for url in ("http://127.0.0.1:9/", "http://2130706433:9/", "http://[::1]:9/"):
            eq(t.req("POST", "/v1/webhooks", {"url": url, "event_types": ["none.x"]}).status,
               201, f"{url} allowed by configuration")


@test
def private_target_refused_again_at_delivery():
    rec = Receiver()
    srv = own_server()
    t = Tenant(srv)
    eq(t.req("POST", "/v1/workflows", PURCHASE_ORDER).status, 201, "workflow")
    hook = subscribe(t, rec.url, ["item.created"])
    srv.stop()
    with Server(TENANTFLOW_WEBHOOK_RETRY_SCALE="0.001") as strict:
        t.srv = strict
        item(t)
        deadline = time.time() + 20
        d = []
        while time.time() < deadline and not d:
            d = t.req("GET", f"/v1/webhooks/{hook['id']}/deliveries").json["data"]
            time.sleep(0.1)
        check(d and "refused" in (d[0]["error"] or ""), f"refused at delivery: {d}")
        eq(d[0]["status_code"], None, "never connected")
        eq(rec.calls, [], "the receiver saw nothing")
    rec.close()
