"""Seeds the benchmark: 10 tenants through the API, 10,000 items each by bulk
SQL, then writes the wrk Lua scripts and the pgbench scripts into DIR.

The pgbench scripts repeat, statement for statement, the SQL the server runs
for each request (copied from the handlers; keep them in step), with literal
ids spread over several script files, so pgbench pays no extra lookup."""
import json
import random
import subprocess
import sys
import urllib.request

URL, OPERATOR, ADMIN_URL, DIR = sys.argv[1:5]
TENANTS, ITEMS = 10, 10_000
VARIANTS = 20

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

# --- pgbench scripts: the server's statements ---------------------------------
ITEM_JSON = ("jsonb_build_object('id', i.id, 'workflow', i.workflow_key, 'workflow_version', "
             "i.workflow_version, 'state', i.state, 'title', i.title, 'attributes', i.attributes, "
             "'external_ref', i.external_ref, 'version', i.version, 'created_at', "
             "platform.rfc3339(i.created_at), 'updated_at', platform.rfc3339(i.updated_at), "
             "'state_entered_at', platform.rfc3339(i.state_entered_at), 'due_at', "
             "platform.rfc3339(i.due_at))::text, i.version")
PRINCIPAL = ("SELECT u.name, u.email, u.status, coalesce(jsonb_agg(r.name ORDER BY r.name) "
             "FILTER (WHERE r.id IS NOT NULL), '[]'), coalesce((SELECT jsonb_agg(DISTINCT perm) "
             "FROM access.user_roles ur2 JOIN access.roles r2 ON r2.tenant_id = ur2.tenant_id AND "
             "r2.id = ur2.role_id, unnest(r2.permissions) perm WHERE ur2.user_id = u.id), '[]') "
             "FROM access.users u LEFT JOIN access.user_roles ur ON ur.tenant_id = u.tenant_id AND "
             "ur.user_id = u.id LEFT JOIN access.roles r ON r.tenant_id = ur.tenant_id AND "
             "r.id = ur.role_id WHERE u.id = '{user}' GROUP BY u.tenant_id, u.id;")


def prologue(t):
    return (f"BEGIN;\nSELECT set_config('app.tenant_id', '{t['id']}', true), "
            f"set_config('app.actor', '{t['user']}', true), "
            "set_config('app.request_id', 'bench', true);\n"
            "SELECT id, slug, status, name FROM tenancy.tenants "
            "WHERE id = platform.current_tenant();\n" + PRINCIPAL.format(user=t["user"]) + "\n")


def audit_and_event(t, action, iid):
    return (
        "INSERT INTO audit.records (tenant_id, actor_type, actor_id, action, resource_type, "
        "resource_id, request_id, client_ip, changes) VALUES (platform.current_tenant(), 'user', "
        f"'{t['user']}', '{action}', 'item', '{iid}', 'bench', '127.0.0.1', "
        "'{\"after\": {\"state\": \"open\"}}');\n"
        "INSERT INTO events.outbox (tenant_id, type, subject_id, actor_type, actor_id, data) VALUES "
        f"(platform.current_tenant(), '{action}', '{iid}', 'user', '{t['user']}', "
        "'{\"state\": \"open\"}');\n")


for v in range(VARIANTS):
    tid, iid = random.choice(sample)
    t = tenants[by_tenant[tid]]
    files = {
        "get": prologue(t) + f"SELECT {ITEM_JSON} FROM workflow.items i WHERE i.tenant_id = "
                             f"platform.current_tenant() AND i.id = '{iid}';\nCOMMIT;\n",
        "list": prologue(t) + f"SELECT {ITEM_JSON} FROM workflow.items i WHERE i.tenant_id = "
                              "platform.current_tenant() AND i.workflow_key = 'bench' "
                              "ORDER BY i.created_at, i.id LIMIT 51;\nCOMMIT;\n",
        "create": prologue(t) + (
            "SELECT version, definition::text FROM workflow.definitions WHERE tenant_id = "
            "platform.current_tenant() AND key = 'bench' ORDER BY version DESC LIMIT 1;\n"
            "WITH i AS (INSERT INTO workflow.items (tenant_id, id, workflow_key, workflow_version, "
            "state, title, attributes, external_ref, due_at) VALUES (platform.current_tenant(), "
            "platform.uuid7(), 'bench', 1, 'open', 'Created by pgbench', '{\"n\": 1}', NULL, "
            "NULL) RETURNING *), h AS (INSERT INTO workflow.history (tenant_id, item_id, "
            "transition, from_state, to_state, actor_type, actor_id, request_id) SELECT "
            f"platform.current_tenant(), i.id, NULL, NULL, i.state, 'user', '{t['user']}', "
            f"'bench' FROM i) SELECT {ITEM_JSON} FROM i;\n"
            + audit_and_event(t, "item.created", iid) + "COMMIT;\n"),
        "transition": prologue(t) + (
            "SELECT i.state, i.version, i.attributes::text, d.definition::text FROM workflow.items "
            "i JOIN workflow.definitions d ON d.tenant_id = i.tenant_id AND d.key = "
            "i.workflow_key AND d.version = i.workflow_version WHERE i.tenant_id = "
            f"platform.current_tenant() AND i.id = '{iid}' FOR UPDATE OF i;\n"
            "WITH i AS (UPDATE workflow.items SET state = 'open', version = version + 1, "
            "updated_at = now(), state_entered_at = now(), due_at = now() + NULL::interval "
            f"WHERE tenant_id = platform.current_tenant() AND id = '{iid}' RETURNING *), "
            "h AS (INSERT INTO workflow.history (tenant_id, item_id, transition, from_state, "
            "to_state, actor_type, actor_id, comment, request_id) SELECT "
            "platform.current_tenant(), i.id, 'touch', 'open', i.state, 'user', "
            f"'{t['user']}', NULL, 'bench' FROM i) SELECT {ITEM_JSON} FROM i;\n"
            + audit_and_event(t, "item.transitioned", iid) + "COMMIT;\n"),
    }
    for name, sql in files.items():
        with open(f"{DIR}/{name}-{v}.sql", "w") as f:
            f.write(sql)
