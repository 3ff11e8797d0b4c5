"""The walking skeleton's main job: operator creates a tenant, its admin logs
in, defines a workflow, creates an item and moves it through transitions."""
import copy

from harness import PURCHASE_ORDER, Tenant, eq, check, problem, server, test, unique


@test
def main_path_end_to_end():
    t = Tenant()
    r = t.req("GET", "/v1/me")
    eq(r.status, 200, f"me {r}")
    eq(r.json["tenant"]["slug"], t.slug, "me tenant")
    eq(r.json["principal"]["email"], t.email, "me email")
    eq(r.json["roles"], ["admin"], "admin role")

    r = t.req("POST", "/v1/workflows", PURCHASE_ORDER)
    eq(r.status, 201, f"create workflow {r}")
    eq(r.json["version"], 1, "workflow version")
    eq(r.header("Location"), "/v1/workflows/purchase-order", "workflow Location")

    r = t.req("POST", "/v1/items", {"workflow": "purchase-order", "title": "Laptops",
                                    "attributes": {"amount": 1200, "vendor": "ACME"}})
    eq(r.status, 201, f"create item {r}")
    item = r.json
    eq(item["state"], "draft", "initial state")
    eq(item["version"], 1, "item version")
    eq(item["due_at"], None, "no SLA in draft")
    eq(r.header("Location"), f"/v1/items/{item['id']}", "item Location")
    eq(r.header("ETag"), '"1"', "item ETag")
    check(item["created_at"].endswith("Z"), "UTC timestamps")

    r = t.req("POST", f"/v1/items/{item['id']}/transitions",
              {"transition": "submit", "comment": "please"})
    eq(r.status, 200, f"submit {r}")
    eq(r.json["state"], "submitted", "state after submit")
    eq(r.json["version"], 2, "version after submit")
    check(r.json["due_at"] is not None, "SLA sets due_at")
    eq(r.header("ETag"), '"2"', "ETag after submit")

    r = t.req("POST", f"/v1/items/{item['id']}/transitions", {"transition": "approve"})
    eq(r.status, 200, f"approve {r}")
    eq(r.json["state"], "approved", "terminal state")

    r = t.req("GET", f"/v1/items/{item['id']}/history")
    eq(r.status, 200, f"history {r}")
    hist = r.json["data"]
    eq([(h["from"], h["to"], h["transition"]) for h in hist],
       [(None, "draft", None), ("draft", "submitted", "submit"),
        ("submitted", "approved", "approve")], "history")
    eq(hist[1]["comment"], "please", "comment kept")
    eq(hist[1]["actor"]["type"], "user", "actor type")
    check(all(h["request_id"] for h in hist), "request ids recorded")

    r = t.req("GET", f"/v1/items/{item['id']}")
    eq(r.status, 200, "get item")
    eq(r.json["state"], "approved", "get reflects transitions")


@test
def main_path_errors():
    t = Tenant()
    eq(t.req("POST", "/v1/workflows", PURCHASE_ORDER).status, 201, "workflow")
    r = t.req("POST", "/v1/items", {"workflow": "nope", "title": "x"})
    p = problem(r, 422, "validation")
    eq(p["errors"][0]["pointer"], "/workflow", "pointer at workflow")

    r = t.req("POST", "/v1/items", {"workflow": "purchase-order", "title": "No amount"})
    item = r.json
    # Unknown transition: 422 at /transition.
    p = problem(t.req("POST", f"/v1/items/{item['id']}/transitions", {"transition": "fly"}), 422)
    eq(p["errors"][0]["pointer"], "/transition", "unknown transition pointer")
    # Not allowed from draft: 409 naming the state and what is allowed.
    p = problem(t.req("POST", f"/v1/items/{item['id']}/transitions",
                      {"transition": "approve"}), 409, "transition-not-allowed")
    eq(p["current_state"], "draft", "current_state")
    eq(p["allowed_transitions"], ["submit"], "allowed_transitions")
    # Missing required attributes: 422 with one pointer each.
    p = problem(t.req("POST", f"/v1/items/{item['id']}/transitions",
                      {"transition": "submit"}), 422, "validation")
    eq(sorted(e["pointer"] for e in p["errors"]), ["/attributes/amount", "/attributes/vendor"],
       "requires pointers")
    # Nothing changed.
    eq(t.req("GET", f"/v1/items/{item['id']}").json["version"], 1, "item unchanged")
    eq(len(t.req("GET", f"/v1/items/{item['id']}/history").json["data"]), 1, "no history")
    # Stale If-Match: 412.
    r = t.req("POST", "/v1/items", {"workflow": "purchase-order", "title": "ok",
                                    "attributes": {"amount": 1, "vendor": "v"}})
    problem(t.req("POST", f"/v1/items/{r.json['id']}/transitions", {"transition": "submit"},
                  headers={"If-Match": '"7"'}), 412, "precondition-failed")
    r2 = t.req("POST", f"/v1/items/{r.json['id']}/transitions", {"transition": "submit"},
               headers={"If-Match": '"1"'})
    eq(r2.status, 200, f"matching If-Match {r2}")
    # If-None-Match: 304.
    r3 = t.req("GET", f"/v1/items/{r.json['id']}", headers={"If-None-Match": '"2"'})
    eq(r3.status, 304, "If-None-Match")


@test
def no_credential_is_401():
    srv = server()
    r = srv.request("GET", "/v1/items/00000000-0000-7000-8000-000000000000")
    problem(r, 401, "unauthorized")
    check((r.header("WWW-Authenticate") or "").startswith("Bearer"), "WWW-Authenticate")
    r = srv.request("POST", "/v1/items", body={}, token="not.a.token")
    problem(r, 401, "invalid-token")
    eq(r.header("WWW-Authenticate"), 'Bearer error="invalid_token"', "invalid_token")


@test
def login_failures_are_uniform():
    t = Tenant()
    srv = t.srv
    cases = [
        {"tenant": "no-such-tenant-x", "email": t.email, "password": t.password},
        {"tenant": t.slug, "email": "nobody@example.com", "password": t.password},
        {"tenant": t.slug, "email": t.email, "password": "wrong password"},
    ]
    details = set()
    for body in cases:
        r = srv.request("POST", "/v1/auth/token", body=body)
        p = problem(r, 401, "unauthorized")
        details.add(p["detail"])
    eq(len(details), 1, "one uniform failure")
    # Emails compare case-insensitively.
    r = srv.request("POST", "/v1/auth/token", body={"tenant": t.slug, "email": t.email.upper(),
                                                    "password": t.password})
    eq(r.status, 200, f"case-insensitive email {r}")


@test
def workflow_definition_validation_reports_everything():
    t = Tenant()
    bad = copy.deepcopy(PURCHASE_ORDER)
    bad["states"].append({"name": "draft"})               # repeated name -> /states/5
    bad["states"].append({"name": "limbo"})               # unreachable + dead end
    bad["transitions"][1]["to"] = "nowhere"                # unknown state
    bad["transitions"].append({"name": "reopen", "from": ["approved"], "to": "draft"})
    bad["states"][1]["sla"] = "48 hours"
    r = t.req("POST", "/v1/workflows", bad)
    p = problem(r, 422, "validation")
    pointers = {e["pointer"] for e in p["errors"]}
    for want in ("/states/5", "/transitions/1/to", "/transitions/4", "/states/1/sla"):
        check(want in pointers, f"{want} in {sorted(pointers)}")
    # Graph rules on an otherwise well-formed definition.
    g = copy.deepcopy(PURCHASE_ORDER)
    g["key"] = unique("g")
    g["states"].append({"name": "limbo"})
    g["states"][1]["on_timeout"] = "approve"  # leaves submitted: fine
    g["states"][2]["on_timeout"] = "submit"   # does not leave escalated
    p = problem(t.req("POST", "/v1/workflows", g), 422, "validation")
    pointers = {e["pointer"] for e in p["errors"]}
    check("/states/5" in pointers, f"unreachable limbo in {pointers}")
    check("/states/2/on_timeout" in pointers, f"bad on_timeout in {pointers}")
    m = copy.deepcopy(PURCHASE_ORDER)
    m["key"] = unique("m")
    m["initial_state"] = "nope"
    p = problem(t.req("POST", "/v1/workflows", m), 422)
    check("/initial_state" in {e["pointer"] for e in p["errors"]}, "initial state pointer")
    # Nothing was stored.
    eq(t.req("GET", "/v1/workflows/purchase-order").status, 404, "no workflow stored")
    # Duplicate key is 409; PUT publishes version 2; items keep their version.
    eq(t.req("POST", "/v1/workflows", PURCHASE_ORDER).status, 201, "create")
    problem(t.req("POST", "/v1/workflows", PURCHASE_ORDER), 409, "conflict")
    item = t.req("POST", "/v1/items", {"workflow": "purchase-order", "title": "v1 item"}).json
    v2 = copy.deepcopy(PURCHASE_ORDER)
    del v2["key"]
    v2["name"] = "Purchase order v2"
    r = t.req("PUT", "/v1/workflows/purchase-order", v2)
    eq(r.status, 200, f"publish v2 {r}")
    eq(r.json["version"], 2, "version 2")
    eq(t.req("GET", "/v1/workflows/purchase-order/versions/1").json["name"], "Purchase order",
       "old version readable")
    eq(t.req("GET", f"/v1/items/{item['id']}").json["workflow_version"], 1, "item keeps v1")
