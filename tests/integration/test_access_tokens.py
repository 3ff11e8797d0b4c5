"""Access tokens over HTTP: every malformed, forged or out-of-date token gets
the same 401 with WWW-Authenticate: Bearer error="invalid_token". Tokens with
chosen claims are signed here with the server's own key (ed25519.py), and a
correctly built one is accepted first, so each refusal is about the case it
names and not about a broken signature."""
import base64
import hashlib
import hmac
import json
import os
import time

from ed25519 import b64u, b64u_decode, key_from_file, make_token, public_key, sign
from harness import Tenant, check, eq, problem, test


def refused(srv, token, what):
    r = srv.request("GET", "/v1/me", token=token)
    p = problem(r, 401, "invalid-token") if r.status == 401 else None
    eq(r.status, 401, f"{what}: {r}")
    eq(r.header("WWW-Authenticate"), 'Bearer error="invalid_token"', f"{what}: header")
    return p["detail"]


@test
def forged_and_malformed_tokens_are_refused_alike():
    t = Tenant()
    srv = t.srv
    kid, seed = key_from_file(os.environ["TENANTFLOW_SIGNING_KEY"])
    jwks = srv.request("GET", "/.well-known/jwks.json").json["keys"]
    eq([k["x"] for k in jwks if k["kid"] == kid], [b64u(public_key(seed))], "same key as server")
    me = t.req("GET", "/v1/me").json
    now = int(time.time())
    good_hdr = {"alg": "EdDSA", "typ": "JWT", "kid": kid}
    claims = {"sub": me["principal"]["id"], "tid": me["tenant"]["id"], "iat": now,
              "exp": now + 300}
    ok = make_token(seed, good_hdr, claims)
    eq(srv.request("GET", "/v1/me", token=ok).status, 200, "a token built here is accepted")

    def hdr(**kw):
        h = dict(good_hdr)
        h.update(kw)
        return {k: v for k, v in h.items() if v is not None}

    def pl(**kw):
        c = dict(claims)
        c.update(kw)
        return {k: v for k, v in c.items() if v is not None}

    h64, p64, s64 = ok.split(".")
    pub = public_key(seed)
    hs_input = f"{b64u(json.dumps(hdr(alg='HS256')).encode())}.{p64}"
    hs256 = hs_input + "." + b64u(hmac.new(pub, hs_input.encode(), hashlib.sha256).digest())
    other_seed = hashlib.sha256(b"not the server's key").digest()
    cases = {
        "alg none, no signature": f"{b64u(json.dumps(hdr(alg='none')).encode())}.{p64}.",
        "alg none": make_token(seed, hdr(alg="none"), claims),
        "alg None": make_token(seed, hdr(alg="None"), claims),
        "alg HS256 keyed with the public key": hs256,
        "alg RS256": make_token(seed, hdr(alg="RS256"), claims),
        "alg missing": make_token(seed, hdr(alg=None), claims),
        "unknown kid": make_token(seed, hdr(kid="nope"), claims),
        "path kid": make_token(seed, hdr(kid="../../../../dev/null"), claims),
        "sql kid": make_token(seed, hdr(kid="k1' OR '1'='1"), claims),
        "empty kid": make_token(seed, hdr(kid=""), claims),
        "huge kid": make_token(seed, hdr(kid="k" * 5000), claims),
        "numeric kid": make_token(seed, hdr(kid=1), claims),
        "kid missing": make_token(seed, hdr(kid=None), claims),
        "crit header": make_token(seed, hdr(crit=["exp"]), claims),
        "exp missing": make_token(seed, good_hdr, pl(exp=None)),
        "exp string": make_token(seed, good_hdr, pl(exp=str(now + 300))),
        "exp float": make_token(seed, good_hdr, pl(exp=now + 300.5)),
        "exp huge": make_token(seed, good_hdr, pl(exp=10 ** 30)),
        "exp past": make_token(seed, good_hdr, pl(exp=now - 3600)),
        "nbf future": make_token(seed, good_hdr, pl(nbf=now + 3600)),
        "tid not a uuid": make_token(seed, good_hdr, pl(tid="acme")),
        "duplicate exp": make_token(seed, good_hdr, None, raw_payload=json.dumps(claims)[:-1] +
                                    f', "exp": {now + 300}}}'),
        "signed by another key": make_token(other_seed, good_hdr, claims),
        "padded payload": f"{h64}.{p64}==.{s64}",
        "padded signature": f"{h64}.{p64}.{s64}==",
        "fourth segment": ok + ".e30",
        "trailing dot": ok + ".",
        "empty signature": f"{h64}.{p64}.",
        "two segments": f"{h64}.{p64}",
        "space inside": f"{h64}.{p64[:5]} {p64[5:]}.{s64}",
    }
    # The last character of a 64-byte signature carries 2 bits: change them
    # (signature mismatch) or set the unused ones (not canonical base64url).
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    i = alphabet.index(s64[-1])
    cases["altered last signature char"] = ok[:-1] + alphabet[(i + 16) % 64]
    cases["non-canonical last signature char"] = ok[:-1] + alphabet[i | 1]
    # The same signature bytes written in the standard alphabet (+ and /).
    for n in range(64):
        tok = make_token(seed, good_hdr, pl(iat=now - n))
        h, p, s = tok.split(".")
        if "-" in s or "_" in s:
            std = base64.b64encode(b64u_decode(s)).decode().rstrip("=")
            check(std != s, "the standard alphabet differs here")
            cases["non-url-safe alphabet"] = f"{h}.{p}.{std}"
            break
    check("non-url-safe alphabet" in cases, "found a signature with - or _")
    # The claims are refused for what they say, not for their encoding:
    # a padded segment signed over its padded text is still refused.
    padded = f"{h64}.{p64}="
    cases["padded and signed"] = padded + "." + b64u(sign(seed, padded.encode()))
    details = {what: refused(srv, tok, what) for what, tok in cases.items()}
    eq(len(set(details.values())), 1, f"one uniform problem: {set(details.values())}")
    other = Tenant()
    cross = make_token(seed, good_hdr, pl(tid=other.id))
    refused(srv, cross, "user of A under B's tenant claim")
    eq(srv.request("GET", "/v1/me", token=ok).status, 200, "the good token still works")
    print(f"     {len(cases) + 1} forged or malformed tokens refused")
