#!/usr/bin/env python3
"""Writes the seed corpus under tests/fuzz/corpus/ (run from anywhere).

The seeds are small valid and nearly-valid inputs taken from the unit and
integration tests. Signed seeds (access tokens) are made with the fixed keys
the targets use: Ed25519 key "a" has the seed bytes 0..31 (fuzz_token.c,
fuzz_request.c). Cursors are sealed with XChaCha20-Poly1305, which Python's
standard library lacks: the cursor seeds are the earlier signed-only format,
which must be refused, and fuzz_cursor.c's mode 1 makes valid cursors itself. Files this script does not name (reproducers of fixed bugs,
entries added by hand) are left alone; rerunning it rewrites only its own.
"""
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import ed25519  # noqa: E402  (pure-Python signer the integration tests use)

SEED_A = bytes(range(32))
SEED_B = bytes(0xA0 + i for i in range(32))
GOOD_HEADER = '{"alg":"EdDSA","typ":"JWT","kid":"a"}'


def b64u(data):
    return ed25519.b64u(data)


def token(header, payload, seed=SEED_A):
    return ed25519.make_token(seed, None, None, raw_header=header, raw_payload=payload)


def claims(exp, **extra):
    c = {"sub": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "tid": "0190a1b2-0000-7000-8000-000000000001",
         "iat": exp - 900, "exp": exp}
    c.update(extra)
    return json.dumps(c, separators=(",", ":"))


CURSOR_KEY = hashlib.blake2b(b"fuzz cursor key material", digest_size=32,
                             key=b"tenantflow-cursor-v1").digest()
CURSOR_SCOPE = b't1|items|{"workflow":"po"}'


def cursor(payload, scope=CURSOR_SCOPE):
    text = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    mac = hashlib.blake2b(scope + b"\0" + text, digest_size=16, key=CURSOR_KEY).digest()
    return b64u(text + mac)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def json_seeds():
    s = {
        "item": '{"workflow":"purchase-order","title":"Desks","attributes":{"amount":900,"vendor":"Oak"}}',
        "transition": '{"transition":"submit","comment":"ok"}',
        "definition": '{"key":"po","name":"PO","initial_state":"draft","states":[{"name":"draft"},'
                      '{"name":"submitted","sla":"PT48H","on_timeout":"escalate"},'
                      '{"name":"done","terminal":true}],"transitions":[{"name":"submit",'
                      '"from":["draft"],"to":"submitted","requires":["amount"]}]}',
        "login": '{"tenant":"acme","email":"admin@acme.test","password":"correct horse"}',
        "empty-object": "{}", "empty-array": "[]", "scalar": "42", "string": '"x"',
        "null": "null", "ws": " \t\r\n{ } \n",
        "nested-64": "[" * 64 + "]" * 64,
        "nested-65": "[" * 65 + "]" * 65,
        "nested-objects": '{"a":' * 64 + "1" + "}" * 64,
        "escapes": r'["\"[{", "\\", "\/", "\b\f\n\r\t", "\u00e9\ud83d\ude00"]',
        "bracket-in-string": '{"a":"]]]]}}}}","b":[["\\"["]]}',
        "duplicate-key": '{"a":1,"a":2}',
        "nul-escape": '["\\u0000"]',
        "raw-nul": b'["a\x00"]',
        "bad-utf8": b'["\xc3\x28"]',
        "lone-surrogate": r'["\ud800"]',
        "big-int": "[9223372036854775807, -9223372036854775808]",
        "int-overflow": "[9223372036854775808]",
        "real-overflow": "[1e400]",
        "reals": "[0.1, -0.0, 1.5e308, 5e-324, 1E+2, 123456789012345678901234567890.5]",
        "trailing": '{"a":1} x',
        "unterminated": '{"a":[1,2',
        "bom": b'\xef\xbb\xbf{}',
        "attributes": '{"attributes":{"x":[1,{"y":null}],"a/b~c":true},"title":"T","roles":["admin",1]}',
        "unicode-keys": '{"caf\u00e9":1,"\u2028":2}',
    }
    for name, data in s.items():
        write("json", name, data)


def token_seeds():
    good = token(GOOD_HEADER, claims(1700000900))
    s = {
        "valid": "0" + good,
        "valid-nbf": "0" + token(GOOD_HEADER, claims(1700000900, nbf=1699999990)),
        "expired": "0" + token(GOOD_HEADER, claims(1699999000)),
        "kid-b": "0" + token('{"alg":"EdDSA","kid":"b"}', claims(1700000900), SEED_B),
        "wrong-key": "0" + token('{"alg":"EdDSA","kid":"b"}', claims(1700000900)),
        "cut": "0" + good[:-1],
        "padded": "0" + good + "==",
        "four-parts": "0" + good + ".x",
        "empty-parts": "0..",
        "garbage": "0a.b.c",
        "hdr-none": '1{"alg":"none","kid":"a"}\n' + claims(1700000900),
        "hdr-crit": '1{"alg":"EdDSA","kid":"a","crit":["exp"]}\n' + claims(1700000900),
        "hdr-typ": '1{"alg":"EdDSA","kid":"a","typ":"jwt"}\n' + claims(1700000900),
        "hdr-dup": '1{"alg":"EdDSA","kid":"a","kid":"b"}\n' + claims(1700000900),
        "hdr-kid-long": '1{"alg":"EdDSA","kid":"' + "a" * 65 + '"}\n' + claims(1700000900),
        "hdr-good": "1" + GOOD_HEADER + "\n" + claims(1700000900),
        "pl-good": "2" + claims(1700000900),
        "pl-no-exp": '2{"sub":"u","tid":"t"}',
        "pl-float-exp": '2{"sub":"u","tid":"t","exp":1700000900.5}',
        "pl-max-exp": '2{"sub":"u","tid":"t","exp":9223372036854775807}',
        "pl-min-nbf": '2{"sub":"u","tid":"t","exp":9223372036854775807,"nbf":-9223372036854775808}',
        "pl-future-nbf": '2{"sub":"u","tid":"t","exp":1700000900,"nbf":1700000031}',
        "pl-long-sub": '2{"sub":"' + "s" * 64 + '","tid":"t","exp":1700000900}',
        "pl-empty-tid": '2{"sub":"u","tid":"","exp":1700000900}',
        "pl-nul-sub": '2{"sub":"a\\u0000b","tid":"t","exp":1700000900}',
        "pl-array": "2[]",
    }
    for name, data in s.items():
        write("token", name, data)


def keyset_seeds():
    a, b = b64u(SEED_A), b64u(SEED_B)
    s = {
        "two-keys": f"a {a}\nb {b}\n",
        "comments": f"# signing keys\n\n2025-01 {a}\n  # old\n2024-07\t{b}\n",
        "bom-crlf": b"\xef\xbb\xbf" + f"k1 {a}\r\nk2 {b}\r\n".encode(),
        "no-newline": f"k1 {a}",
        "dup-kid": f"k {a}\nk {b}\n",
        "bad-seed": f"k {a[:-1]}B\n",
        "short-seed": f"k {a[:-1]}\n",
        "padded-seed": f"k {a}=\n",
        "long-kid": "k" * 65 + f" {a}\n",
        "bad-kid": f"k/1 {a}\n",
        "extra-field": f"k {a} x\n",
        "missing-seed": "k\n",
        "nul": f"k {a}\n\0\n".encode(),
        "only-comments": "# nothing\n\n",
        "empty": "",
    }
    for name, data in s.items():
        write("keyset", name, data)


def b64url_seeds():
    s = {"empty": "", "one": "A", "two": "AA", "three": "AAA", "four": "AAAA", "noncanon": "AB",
         "padded": "AA==", "std-alphabet": "+/+/", "space": "AA AA", "seed": b64u(SEED_A),
         "sig": b64u(bytes(range(64))), "all": "-_09azAZ", "high": b"\xc3\xa9AA"}
    for name, data in s.items():
        write("b64url", name, data)


def uuid_seeds():
    s = {"v7": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "upper": "0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B",
         "nil": "00000000-0000-0000-0000-000000000000", "short": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5",
         "long": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5bb", "no-dashes": "0190a1b2c3d47e5f8a9b0c1d2e3f4a5b",
         "dash-moved": "0190a1b2c-3d4-7e5f-8a9b-0c1d2e3f4a5b", "not-hex": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g",
         "braces": "{0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b}"}
    for name, data in s.items():
        write("uuid", name, data)


def cursor_seeds():
    p = {"i": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "t": "2026-01-31T09:00:00.123456Z"}
    s = {
        "item-page": "0" + cursor(p),
        "audit-page": "0" + cursor({"a": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"}),
        "other-scope": "0" + cursor(p, b"t2|items|{}"),
        "tampered": "0" + cursor(p)[:-2] + "AA",
        "empty": "0",
        "not-b64": "0%%%",
        "long": "0" + "A" * 1028,
        "payload-item": "1" + json.dumps(p),
        "payload-unsorted": '1{"t":"x","i":"y","a":[1,2.5,null,true]}',
        "payload-array": "1[1,2]",
        "payload-big": '1{"k":"' + "v" * 800 + '"}',
    }
    for name, data in s.items():
        write("cursor", name, data)


def text_seeds():
    s = {"title": "Desks", "cafe": "Caf\u00e9 \u2014 \U0001F600", "tab": "a\tb", "newline": "a\nb",
         "del": "a\x7fb", "c1": "a\u0085b", "nbsp": "a\u00a0b", "slug": "acme", "key": "purchase-order",
         "slug-dash": "-acme", "slug-upper": "Acme", "slug-1": "a", "slug-64": "a" * 64,
         "bad-utf8": b"a\xc3", "empty": "", "long": "x" * 501}
    for name, data in s.items():
        write("text", name, data)


def idem_seeds():
    s = {"simple": "abc-1", "max": "k" * 255, "too-long": "k" * 256, "inner-space": "a b",
         "tab": "a\tb", "non-ascii": b"cl\xc3\xa9", "control": b"a\x01b", "empty": "",
         "punct": "!~" + "0190a1b2", "del": b"a\x7f"}
    for name, data in s.items():
        write("idem_key", name, data)


def limit_seeds():
    s = {"50": "50", "1": "1", "200": "200", "201": "201", "0": "0", "plus": "+5", "space": " 5",
         "leading-tab": "\t5", "zero-led": "05", "alpha": "abc", "trailing": "5x", "empty": "",
         "huge": "99999999999999999999", "negative": "-1"}
    for name, data in s.items():
        write("limit", name, data)


ITEM = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"


def router_seeds():
    s = {"items": "GET\n/v1/items", "item": f"GET\n/v1/items/{ITEM}", "patch": f"PATCH\n/v1/items/{ITEM}",
         "transition": f"POST\n/v1/items/{ITEM}/transitions", "version": "GET\n/v1/workflows/po/versions/2",
         "role": "DELETE\n/v1/roles/r1", "root": "GET\n/", "double": "GET\n//v1//items",
         "trailing": "GET\n/v1/items/", "no-method": "PUT\n/v1/items", "head": "HEAD\n/healthz",
         "long-id": "GET\n/v1/items/" + "x" * 200, "deep": "GET\n" + "/a" * 9, "relative": "GET\nv1/items",
         "report": "GET\n/v1/reports/workflows/po/summary", "asset": "GET\n/docs/docs.js"}
    for name, data in s.items():
        write("router", name, data)


def request_seeds():
    tok = token(GOOD_HEADER, claims(4102444800))
    json_ct = "Content-Type: application/json; charset=utf-8\n"
    s = {
        "health": "GET /healthz\n",
        "list": f"GET /v1/items?workflow=po&limit=5&created_after=2026-01-31T09:00:00%2B05:30\n"
                f"Authorization: Bearer {tok}\nAccept: application/json\n",
        "list-cursor": f"GET /v1/items?cursor={cursor({'i': ITEM, 't': 'x'})}&q=desk+chair\n"
                       f"Authorization: Bearer {tok}\n",
        "create": f"POST /v1/items\n{json_ct}Idempotency-Key: abc-1\nAuthorization: Bearer {tok}\n"
                  "Content-Length: 40\n\n{\"workflow\":\"po\",\"title\":\"Desks\"}",
        "patch-merge": f"PATCH /v1/items/{ITEM}\nContent-Type: application/merge-patch+json\n"
                       f"Authorization: bearer   {tok}\nIf-Match: \"3\"\n",
        "api-key": "GET /v1/me\nAuthorization: Bearer tfk_" + "A" * 43 + "\n",
        "operator": "GET /v1/admin/tenants?limit=10\nAuthorization: Bearer tfo_" + "B" * 43 + "\n",
        "no-auth": "GET /v1/items\n",
        "basic": "GET /v1/items\nAuthorization: Basic dXNlcjpwYXNz\n",
        "two-auth": f"GET /v1/items\nAuthorization: Bearer {tok}\nAuthorization: Bearer x\n",
        "te-and-cl": f"POST /v1/items\n{json_ct}Transfer-Encoding: chunked\nContent-Length: 5\n",
        "cl-junk": f"POST /v1/items\n{json_ct}Content-Length: 5x\n",
        "cl-huge": f"POST /v1/items\n{json_ct}Content-Length: 99999999999\n",
        "idem-twice": f"POST /v1/items\n{json_ct}Idempotency-Key: a\nIdempotency-Key: b\n",
        "idem-space": f"POST /v1/items\n{json_ct}Idempotency-Key: a b\n",
        "wrong-ct": "POST /v1/items\nContent-Type: text/plain\n",
        "latin1": "POST /v1/items\nContent-Type: application/json; charset=\"ISO-8859-1\"\n",
        "accept-csv": "GET /v1/reports/workflows/po/summary?from=2026-01-01&tz=Europe/Berlin\n"
                      "Accept: text/csv;q=0.9, application/json\n",
        "accept-xml": "GET /v1/items\nAccept: application/xml\n",
        "unknown-param": "GET /v1/items?color=red\n",
        "param-twice": "GET /v1/items?limit=1&limit=2\n",
        "param-no-value": "GET /v1/items?limit&&\n",
        "nul-escape": "GET /v1/items%00/x\n",
        "escaped-slash": "GET /v1/items%2Fx?q=%25_%5C\n",
        "method-405": "DELETE /v1/items\n",
        "request-id": "GET /healthz\nX-Request-Id: req-123_abc.9\n",
        "request-id-bad": "GET /healthz\nX-Request-Id: " + "r" * 129 + "\n",
        "head": "HEAD /readyz\r\nAccept: */*\r\n\r\n",
        "long-uri": "GET /v1/items?q=" + "x" * 8200 + "\n",
    }
    for name, data in s.items():
        write("request", name, data)


def rfc3339_seeds():
    s = {"utc": "2026-01-31T09:00:00Z", "offset": "2026-01-31T09:00:00+05:30",
         "fraction": "2025-06-01t12:00:00.123456789-02:00", "leap-day": "2024-02-29T00:00:00z",
         "not-leap": "2025-02-29T00:00:00Z", "year-1": "0001-01-01T00:00:00-15:59",
         "year-9999": "9999-12-31T23:59:59+15:59", "offset-16": "2026-01-01T00:00:00+16:00",
         "date-only": "2025-01-31", "space": "2025-01-31 23:59:59Z", "leap-second": "2016-12-31T23:59:60Z",
         "ten-digits": "2025-01-01T00:00:00.1234567890Z", "month-13": "2025-13-01T00:00:00Z"}
    for name, data in s.items():
        write("rfc3339", name, data)


def duration_seeds():
    s = {"48h": "PT48H", "6h": "PT6H", "day": "P1D", "all": "P1Y2M3W4DT5H6M7S", "max": "P100Y",
         "over": "P101Y", "huge": "P300000Y", "weeks": "P999999999W", "bare-t": "P1DT", "p": "P",
         "words": "48 hours", "order": "P1M1Y", "lower": "pt1h", "ten-digits": "P1234567890D"}
    for name, data in s.items():
        write("duration", name, data)


def etag_seeds():
    s = {"one": '"1"', "weak": 'W/"1"', "list": '"1", "2" ,"7"', "star": "*", "spaces": ' , "42" ,',
         "empty": "", "unquoted": "1", "big": '"1234567890123"', "commas": ",,,",
         "tabs": '\t"7"\t,\tW/"42"', "inner-quote": '"1"2"', "half": '"1', "weak-bare": "W/1"}
    for name, data in s.items():
        write("etag", name, data)


if __name__ == "__main__":
    for f in (json_seeds, token_seeds, keyset_seeds, b64url_seeds, uuid_seeds, cursor_seeds,
              text_seeds, idem_seeds, limit_seeds, router_seeds, request_seeds, rfc3339_seeds,
              duration_seeds, etag_seeds):
        f()
