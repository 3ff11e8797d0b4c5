"""The OpenAPI document, the reference page and the problem pages.

The document (docs/openapi.json, served at /openapi.json) must describe
exactly the router's routes: `tenantflow routes` is compared with it both
ways, with each route's query parameters, permission and summary. A branch
that adds a route without documenting it, or documents one that does not
exist, fails here. Real responses of the main path are validated against the
documented schemas, so the bodies cannot drift either."""
import copy
import json
import os
import re
import shutil
import subprocess
import tempfile

from harness import (PURCHASE_ORDER, Failure, Tenant, check, cli, eq, operator_token, problem,
                     server, test, unique)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def routes():
    return json.loads(cli("routes").stdout)


def document():
    r = server().request("GET", "/openapi.json")
    eq(r.status, 200, f"GET /openapi.json {r}")
    check((r.header("Content-Type") or "").startswith("application/json"),
          f"content type {r.header('Content-Type')}")
    check(isinstance(r.json, dict), "the document is a JSON object")
    return r.json


def resolve(doc, obj):
    for _ in range(20):
        if not isinstance(obj, dict) or "$ref" not in obj:
            return obj
        cur = doc
        for part in obj["$ref"].lstrip("#/").split("/"):
            cur = cur[part.replace("~1", "/").replace("~0", "~")]
        obj = cur
    raise Failure("$ref loop")


def operations(doc):
    """{(METHOD, path): (path_item, operation)}"""
    ops = {}
    for path, item in doc["paths"].items():
        for m in METHODS:
            if m in item:
                ops[(m.upper(), path)] = (item, item[m])
    return ops


def parameters(doc, item, op, where):
    return {resolve(doc, p)["name"]: resolve(doc, p)
            for p in item.get("parameters", []) + op.get("parameters", [])
            if resolve(doc, p)["in"] == where}


def problem_slugs_in_source():
    with open(os.path.join(ROOT, "src", "platform", "problem.c"), encoding="utf-8") as f:
        return re.findall(r'\[TF_PB_\w+\]\s*=\s*\{\s*\d{3},\s*"([a-z-]+)"', f.read())


@test
def openapi_paths_and_methods_equal_the_route_table():
    doc = document()
    eq(doc.get("openapi"), "3.1.0", "openapi version")
    table = {(r["method"], r["path"]) for r in routes()}
    documented = set(operations(doc))
    missing = sorted(table - documented)
    extra = sorted(documented - table)
    check(not missing, f"routes missing from docs/openapi.json: {missing}")
    check(not extra, f"documented in docs/openapi.json but not routed: {extra}")
    ids = [op.get("operationId") for _, op in operations(doc).values()]
    check(all(ids) and len(set(ids)) == len(ids), f"operationIds unique and present: {ids}")


@test
def openapi_parameters_security_and_summaries_match_each_route():
    doc = document()
    ops = operations(doc)
    schemes = doc["components"]["securitySchemes"]
    eq(schemes["accessToken"].get("bearerFormat"), "JWT", "access tokens are JWTs")
    check("EdDSA" in schemes["accessToken"].get("description", ""), "EdDSA named")
    for r in routes():
        key = (r["method"], r["path"])
        item, op = ops[key]
        # Query parameters: exactly those the router accepts (others are 400).
        allowed = set(filter(None, (r.get("query") or "").split(",")))
        eq(set(parameters(doc, item, op, "query")), allowed, f"query parameters of {key}")
        # Path parameters: every {name} of the template, required.
        names = set(re.findall(r"\{(\w+)\}", r["path"]))
        declared = parameters(doc, item, op, "path")
        eq(set(declared), names, f"path parameters of {key}")
        check(all(p.get("required") for p in declared.values()), f"path params required {key}")
        # Security: public -> none; operator -> operatorToken; otherwise a tenant
        # credential whose role list is the permission.
        perm = r["permission"]
        if perm == "public":
            want = []
        elif perm == "operator":
            want = [{"operatorToken": []}]
        elif perm == "authenticated":
            want = [{"accessToken": []}, {"apiKey": []}]
        else:
            want = [{"accessToken": [perm]}, {"apiKey": [perm]}]
        eq(op.get("security"), want, f"security of {key}")
        eq(op.get("summary"), r.get("summary"), f"summary of {key}")
        # Every error response is a problem; public routes need no 401.
        for status, resp in op["responses"].items():
            resp = resolve(doc, resp)
            check("X-Request-Id" in resp.get("headers", {}), f"{key} {status} lists X-Request-Id")
            if status == "default" or status[0] in "45":
                eq(list(resp.get("content", {})), ["application/problem+json"],
                   f"{key} {status} is a problem")
        check("default" in op["responses"], f"{key} documents other problems (default)")
        if perm != "public":
            check("401" in op["responses"] and "403" in op["responses"], f"{key} lists 401/403")


@test
def openapi_lists_every_problem_type_and_each_has_a_page():
    doc = document()
    slugs = problem_slugs_in_source()
    check(len(slugs) >= 20, f"parsed the problem table: {slugs}")
    eq(doc["components"]["schemas"]["ProblemSlug"]["enum"], slugs,
       "ProblemSlug enum = problem.c's table, in order")
    problem_schema = doc["components"]["schemas"]["Problem"]
    for k in ("type", "title", "status", "detail", "instance", "request_id"):
        check(k in problem_schema["required"], f"Problem requires {k}")
    forms = doc["components"]["schemas"]["ProblemError"]["oneOf"]
    eq(sorted(f["required"][0] for f in forms), ["header", "parameter", "pointer"],
       "errors[] forms (header: a malformed Idempotency-Key)")
    srv = server()
    r = srv.request("GET", "/problems")
    eq(r.status, 200, f"GET /problems {r}")
    eq(re.findall(r'href="/problems/([a-z-]+)"', r.body), slugs, "index links every type")
    for slug in slugs:
        r = srv.request("GET", f"/problems/{slug}", headers={"Accept": "text/html"})
        eq(r.status, 200, f"/problems/{slug}")
        check(r.header("Content-Type").startswith("text/html"), f"html for {slug}")
        check(f"<code>/problems/{slug}</code>" in r.body, f"page names its type {slug}")
        check("default-src 'none'" in (r.header("Content-Security-Policy") or ""), "CSP")
    for bad in ("no-such-type", "%3Cscript%3E", "validation.json"):
        problem(srv.request("GET", f"/problems/{bad}"), 404, "not-found")
    # A problem body's type resolves to one of these pages.
    r = srv.request("GET", "/v1/me")
    p = problem(r, 401, "unauthorized")
    eq(srv.request("GET", p["type"]).status, 200, "problem type is a page")


@test
def docs_page_and_assets_are_served_locally():
    srv = server()
    r = srv.request("GET", "/docs", headers={"Accept": "text/html"})
    eq(r.status, 200, f"/docs {r}")
    check(r.header("Content-Type").startswith("text/html"), "docs is html")
    csp = r.header("Content-Security-Policy") or ""
    check("script-src 'self'" in csp and "default-src 'none'" in csp, f"CSP {csp}")
    srcs = re.findall(r'(?:src|href)="([^"]+)"', r.body)
    check(srcs and all(s.startswith("/") and not s.startswith("//") for s in srcs),
          f"only local assets: {srcs}")
    for path, ctype in (("/docs/docs.js", "text/javascript"), ("/docs/docs.css", "text/css")):
        a = srv.request("GET", path)
        eq(a.status, 200, path)
        check(a.header("Content-Type").startswith(ctype), f"{path} type {a.header('Content-Type')}")
    js = srv.request("GET", "/docs/docs.js").body
    check(not re.search(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write", js),
          "the renderer never writes markup from strings")
    check("http://" not in js and "https://" not in js, "the renderer fetches nothing remote")
    problem(srv.request("GET", "/docs/index.html"), 404, "not-found")
    problem(srv.request("GET", "/docs?x=1"), 400, "bad-request")
    problem(srv.request("POST", "/docs", raw=b"{}"), 405, "method-not-allowed")
    with open(os.path.join(ROOT, "docs", "openapi.json"), encoding="utf-8") as f:
        eq(json.load(f), document(), "the served document is docs/openapi.json")


# --- responses checked against the documented schemas ---

def validate(doc, schema, value, where="$"):
    """The subset of JSON Schema 2020-12 the document uses."""
    schema = resolve(doc, schema)
    errs = []
    types = schema.get("type")
    if types is not None:
        types = types if isinstance(types, list) else [types]
        kinds = {"null": value is None, "boolean": isinstance(value, bool),
                 "integer": isinstance(value, int) and not isinstance(value, bool),
                 "number": isinstance(value, (int, float)) and not isinstance(value, bool),
                 "string": isinstance(value, str), "array": isinstance(value, list),
                 "object": isinstance(value, dict)}
        if not any(kinds[t] for t in types):
            return [f"{where}: {value!r} is not {types}"]
    if "const" in schema and value != schema["const"]:
        errs.append(f"{where}: {value!r} != {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errs.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        errs.append(f"{where}: {value!r} !~ {schema['pattern']}")
    if "oneOf" in schema:
        ok = [s for s in schema["oneOf"] if not validate(doc, s, value, where)]
        if len(ok) != 1:
            errs.append(f"{where}: matches {len(ok)} of oneOf")
    if isinstance(value, dict):
        for k in schema.get("required", []):
            if k not in value:
                errs.append(f"{where}: missing {k}")
        props = schema.get("properties", {})
        for k, v in value.items():
            if k in props:
                errs += validate(doc, props[k], v, f"{where}.{k}")
            elif schema.get("additionalProperties") is False:
                errs.append(f"{where}: undocumented member {k}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            errs += validate(doc, schema["items"], v, f"{where}[{i}]")
    return errs


def conforms(doc, method, template, r):
    item, op = operations(doc)[(method, template)]
    status = str(r.status)
    resp = op["responses"].get(status) or op["responses"].get("default")
    check(resp is not None, f"{method} {template} answered {status}, not documented")
    seen.add((method, template))
    resp = resolve(doc, resp)
    for h, hdef in resp.get("headers", {}).items():
        if resolve(doc, hdef).get("required") is False:
            continue  # documented as present only sometimes (Idempotent-Replayed)
        check(r.header(h) is not None, f"{method} {template} {status}: header {h} missing")
    if not resp.get("content"):
        eq(r.body, "", f"{method} {template} {status} has no body")
        return
    ctype = (r.header("Content-Type") or "").split(";")[0]
    check(ctype in resp["content"], f"{method} {template} {status}: {ctype} not documented")
    if ctype.endswith("json"):
        errs = validate(doc, resp["content"][ctype]["schema"], r.json)
        check(not errs, f"{method} {template} {status} body: {errs[:5]}")


seen = set()


@test
def responses_match_the_documented_schemas():
    doc = document()
    srv = server()
    t = Tenant()
    op_tok = operator_token()
    c = lambda m, tpl, r: conforms(doc, m, tpl, r)  # noqa: E731
    c("GET", "/healthz", srv.request("GET", "/healthz"))
    c("GET", "/readyz", srv.request("GET", "/readyz"))
    c("GET", "/.well-known/jwks.json", srv.request("GET", "/.well-known/jwks.json"))
    c("GET", "/openapi.json", srv.request("GET", "/openapi.json"))
    c("GET", "/docs", srv.request("GET", "/docs"))
    c("GET", "/v1/me", t.req("GET", "/v1/me"))
    c("GET", "/v1/me", srv.request("GET", "/v1/me"))
    c("POST", "/v1/auth/token", srv.request("POST", "/v1/auth/token", body={
        "tenant": t.slug, "email": t.email, "password": t.password}))
    c("POST", "/v1/auth/token", srv.request("POST", "/v1/auth/token", body={
        "tenant": t.slug, "email": t.email, "password": "wrong password"}))
    slug = unique("oa")
    r = srv.request("POST", "/v1/admin/tenants", token=op_tok, body={
        "slug": slug, "name": "OpenAPI", "admin_email": f"a@{slug}.example",
        "admin_password": "correct horse battery"})
    c("POST", "/v1/admin/tenants", r)
    tid = r.json["id"]
    c("GET", "/v1/admin/tenants", srv.request("GET", "/v1/admin/tenants?limit=1", token=op_tok))
    c("GET", "/v1/admin/tenants/{id}", srv.request("GET", f"/v1/admin/tenants/{tid}", token=op_tok))
    # PATCH /v1/admin/tenants/{id} is left out until the fix of its crash on this
    # base (branches access and idem) has landed on main.
    c("POST", "/v1/admin/tenants", srv.request("POST", "/v1/admin/tenants", token=op_tok,
                                               body={"slug": "X"}))
    c("POST", "/v1/workflows", t.req("POST", "/v1/workflows", PURCHASE_ORDER))
    c("POST", "/v1/workflows", t.req("POST", "/v1/workflows", PURCHASE_ORDER))  # 409
    v2 = copy.deepcopy(PURCHASE_ORDER)
    v2["name"] = "Purchase order v2"
    c("PUT", "/v1/workflows/{key}", t.req("PUT", "/v1/workflows/purchase-order", v2))
    c("GET", "/v1/workflows", t.req("GET", "/v1/workflows?limit=5"))
    c("GET", "/v1/workflows", t.req("GET", "/v1/workflows?nope=1"))
    c("GET", "/v1/workflows/{key}", t.req("GET", "/v1/workflows/purchase-order"))
    c("GET", "/v1/workflows/{key}/versions/{n}",
      t.req("GET", "/v1/workflows/purchase-order/versions/1"))
    c("GET", "/v1/workflows/{key}/versions/{n}",
      t.req("GET", "/v1/workflows/purchase-order/versions/9"))
    r = t.req("POST", "/v1/items", {"workflow": "purchase-order", "title": "Chairs",
                                    "attributes": {"amount": 5}, "external_ref": "ext-1"})
    c("POST", "/v1/items", r)
    item = r.json["id"]
    c("POST", "/v1/items", t.req("POST", "/v1/items", {"workflow": "purchase-order",
                                                       "title": "Again", "external_ref": "ext-1"}))
    c("POST", "/v1/items", t.req("POST", "/v1/items", {"workflow": "nope", "title": ""}))
    c("GET", "/v1/items/{id}", t.req("GET", f"/v1/items/{item}"))
    c("GET", "/v1/items/{id}", t.req("GET", f"/v1/items/{item}",
                                     headers={"If-None-Match": '"1"'}))
    tr = f"/v1/items/{item}/transitions"
    c("POST", "/v1/items/{id}/transitions", t.req("POST", tr, {"transition": "submit"}))  # 422
    c("POST", "/v1/items/{id}/transitions", t.req("POST", tr, {"transition": "approve"}))  # 409
    c("POST", "/v1/items/{id}/transitions", t.req("POST", tr, {"transition": "submit"},
                                                  headers={"If-Match": '"7"'}))  # 412
    t.req("PUT", "/v1/workflows/purchase-order", v2)
    r = t.req("POST", "/v1/items", {"workflow": "purchase-order", "title": "Desks",
                                    "attributes": {"amount": 5, "vendor": "Oak"}})
    c("POST", "/v1/items/{id}/transitions",
      t.req("POST", f"/v1/items/{r.json['id']}/transitions", {"transition": "submit",
                                                              "comment": "ok"}))
    c("GET", "/v1/items/{id}/history", t.req("GET", f"/v1/items/{r.json['id']}/history"))
    c("GET", "/v1/items/{id}/history", t.req("GET", f"/v1/items/{unique('x')}/history"))
    c("GET", "/problems/{slug}", srv.request("GET", "/problems/validation"))
    # A webhook's secret is in the 201 only (WebhookCreated), never in a read.
    r = t.req("POST", "/v1/webhooks", {"url": "https://93.184.215.14/hook",
                                       "event_types": ["item.created"]})
    c("POST", "/v1/webhooks", r)
    hook = r.json["id"]
    c("POST", "/v1/webhooks", t.req("POST", "/v1/webhooks", {"url": "http://10.0.0.1/"}))
    for tpl, path in (("/v1/webhooks/{id}", f"/v1/webhooks/{hook}"), ("/v1/webhooks", "/v1/webhooks")):
        r = t.req("GET", path)
        c("GET", tpl, r)
        check(hook in r.body and "secret" not in r.body, f"a read shows no secret: {r.body}")
    check("secret" not in doc["components"]["schemas"]["Webhook"]["properties"],
          "the read schema has no secret")
    check(len(seen) >= 20, f"checked {len(seen)} operations")


# --- the reference page in a real browser ---

@test
def docs_render_every_route_in_headless_chromium():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    check(chromium, "chromium is not installed (scripts/deps.sh installs Debian's chromium)")
    srv = server()
    with tempfile.TemporaryDirectory() as profile:
        p = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
             "--virtual-time-budget=10000", "--dump-dom", f"http://127.0.0.1:{srv.port}/docs"],
            capture_output=True, text=True, timeout=120)
    dom = p.stdout
    check('data-rendered="true"' in dom, f"the page rendered (rc {p.returncode}): "
                                         f"{dom[:300]!r} {p.stderr[-500:]!r}")
    rendered = set(re.findall(r'data-method="([A-Z]+)" data-path="([^"]+)"', dom))
    table = {(r["method"], r["path"].replace("&", "&amp;")) for r in routes()}
    eq(rendered, table, "operations rendered in the DOM")
    for r in routes():
        if r.get("summary"):
            check(r["summary"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                  in dom, f"summary of {r['method']} {r['path']} shown")
    for slug in problem_slugs_in_source():
        check(f'href="/problems/{slug}"' in dom, f"problem type {slug} linked")


# --- the module-wall check of make check ---

@test
def wall_check_passes_on_the_tree_and_catches_each_violation():
    script = os.path.join(ROOT, "scripts", "check_walls.py")

    def run(root):
        return subprocess.run(["python3", script, root], capture_output=True, text=True,
                              timeout=60)

    clean = run(ROOT)
    eq(clean.returncode, 0, f"walls on this tree: {clean.stdout}")
    with tempfile.TemporaryDirectory() as tmp:
        for d in ("src", "include", "migrations"):
            shutil.copytree(os.path.join(ROOT, d), os.path.join(tmp, d))
        eq(run(tmp).returncode, 0, "clean copy passes")
        wf = os.path.join(tmp, "src", "modules", "workflows", "items.c")
        with open(wf, "a", encoding="utf-8") as f:
            f.write('\n#include "../access/internal.h"\n'
                    'static const char *leak = "SELECT * FROM access.users";\n')
        with open(os.path.join(tmp, "src", "platform", "log.c"), "a", encoding="utf-8") as f:
            f.write('\n#include "tenantflow/workflows.h"\n')
        r = run(tmp)
        eq(r.returncode, 1, f"violations fail: {r.stdout}")
        check("includes \"../access/internal.h\"" in r.stdout, f"include caught: {r.stdout}")
        check("names schema access" in r.stdout, f"foreign SQL caught: {r.stdout}")
        check("platform file includes module header" in r.stdout, f"platform caught: {r.stdout}")
        check("3 violation(s)" in r.stdout, f"exactly three: {r.stdout}")
