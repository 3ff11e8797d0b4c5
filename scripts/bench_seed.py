"""Seeds the benchmark: 10 tenants through the API, 10,000 items each by bulk
SQL, then writes the wrk Lua scripts and the pgbench scripts into DIR.

The pgbench scripts are made later by bench_capture.py from the SQL the
server is seen to run."""
import json
import subprocess
import sys
import urllib.request

URL, OPERATOR, ADMIN_URL, DIR = sys.argv[1:5]
TENANTS, ITEMS = 10, 10_000

WORKFLOW = {"key": "bench", "name": "Benchmark", "initial_state": "open",
            "states": [{"name": "open"}, {"name": "done", "terminal": True}],
            "transitions": [{"name": "touch", "from": ["open"], "to": "open"},
                            {"name": "finish", "from": ["open"], "to": "done"}]}


def call(method, path, body=None, token=None):
    req = urllib.request.Request(URL + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")


def psql(sql):
    return subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", ADMIN_URL, "-c", sql],
                          check=True, capture_output=True, text=True).stdout


tenants = []
for n in range(TENANTS):
    slug = f"bench-{n}"
    t = call("POST", "/v1/admin/tenants", {"slug": slug, "name": slug,
                                           "admin_email": f"admin@{slug}.example",
                                           "admin_password": "bench-password"}, OPERATOR)
    tok = call("POST", "/v1/auth/token", {"tenant": slug, "email": f"admin@{slug}.example",
                                          "password": "bench-password"})["access_token"]
    call("POST", "/v1/workflows", WORKFLOW, tok)
    user = call("GET", "/v1/me", token=tok)["principal"]["id"]
    tenants.append({"id": t["id"], "token": tok, "user": user})

psql(f"""
INSERT INTO workflow.items (tenant_id, workflow_key, workflow_version, state, title, attributes,
                            created_at, updated_at, state_entered_at)
SELECT t.id, 'bench', 1, 'open', 'Bench item ' || g, jsonb_build_object('n', g, 'tag', g % 7),
       now() - g * interval '1 minute', now(), now()
FROM tenancy.tenants t, generate_series(1, {ITEMS}) g WHERE t.slug LIKE 'bench-%';
INSERT INTO workflow.history (tenant_id, item_id, to_state, actor_type, at)
SELECT tenant_id, id, state, 'system', created_at FROM workflow.items;
-- What the API's create would have recorded for reports, so that a
-- transition in the benchmark writes its report fact as it would live.
INSERT INTO reporting.items
SELECT tenant_id, id, workflow_key, workflow_version, state, false, created_at,
       state_entered_at, due_at FROM workflow.items;
ANALYZE;
""")
sample = [line.split("|") for line in psql(
    "SELECT tenant_id, id FROM workflow.items ORDER BY random() LIMIT 5000").split()]
by_tenant = {t["id"]: i for i, t in enumerate(tenants)}

# --- wrk scripts ------------------------------------------------------------
lua_tokens = ",\n".join(json.dumps("Bearer " + t["token"]) for t in tenants)
lua_items = ",\n".join("{%d,%s}" % (by_tenant[tid] + 1, json.dumps(iid)) for tid, iid in sample)
common = f"local tokens = {{{lua_tokens}}}\nlocal items = {{{lua_items}}}\n"
scripts = {
    "get": 'local it = items[math.random(#items)]\n'
           'return wrk.format("GET", "/v1/items/" .. it[2], {["Authorization"] = tokens[it[1]]})',
    "list": 'return wrk.format("GET", "/v1/items?workflow=bench&limit=50",\n'
            '  {["Authorization"] = tokens[math.random(#tokens)]})',
    "create": 'return wrk.format("POST", "/v1/items", {["Authorization"] = '
              'tokens[math.random(#tokens)], ["Content-Type"] = "application/json"},\n'
              '  \'{"workflow":"bench","title":"Created by wrk","attributes":{"n":1}}\')',
    "transition": 'local it = items[math.random(#items)]\n'
                  'return wrk.format("POST", "/v1/items/" .. it[2] .. "/transitions",\n'
                  '  {["Authorization"] = tokens[it[1]], ["Content-Type"] = "application/json"},\n'
                  '  \'{"transition":"touch"}\')',
}
for name, body in scripts.items():
    with open(f"{DIR}/{name}.lua", "w") as f:
        f.write(common + "request = function()\n" + body + "\nend\n")
# The same transitions, all in one tenant: auditing and events must not make
# one busy tenant's writers queue behind each other (issue: >= 80 % of the
# ten-tenant figure).
one = [(tid, iid) for tid, iid in sample if by_tenant[tid] == 0]
lua_one = ",\n".join("{1,%s}" % json.dumps(iid) for _, iid in one)
with open(f"{DIR}/transition1.lua", "w") as f:
    f.write(f"local tokens = {{{json.dumps('Bearer ' + tenants[0]['token'])}}}\n"
            f"local items = {{{lua_one}}}\n"
            "request = function()\n" + scripts["transition"] + "\nend\n")

# --- what bench_capture.py needs to build the pgbench scripts ---------------
users = {t["id"]: t["user"] for t in tenants}
first = next((tid, iid) for tid, iid in sample if by_tenant[tid] == 0)
json.dump({"token": tenants[0]["token"],
           "captured": {"tenant": first[0], "user": users[first[0]], "item": first[1]},
           "others": [{"tenant": tid, "user": users[tid], "item": iid}
                      for tid, iid in sample[:2000]]},
          open(f"{DIR}/sample.json", "w"))
