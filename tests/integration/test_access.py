"""Users, roles and API keys: the identity-and-access contract over HTTP.
Each test builds its own tenant, so tests never depend on one another."""
import json
import statistics
import time
import unicodedata

from harness import Server, Tenant, check, cli, eq, problem, psql, test, unique


def new_user(t, roles=None, email=None, password="a long password 1"):
    email = email or f"{unique('u')}@example.com"
    body = {"email": email, "name": "User " + email, "password": password}
    if roles is not None:
        body["roles"] = roles
    r = t.req("POST", "/v1/users", body)
    eq(r.status, 201, f"create user {r}")
    return r.json, password


def login_as(t, email, password):
    r = t.srv.request("POST", "/v1/auth/token",
                      body={"tenant": t.slug, "email": email, "password": password})
    eq(r.status, 200, f"login {email}: {r}")
    return r.json["access_token"]


def as_(t, token, method, path, body=None, **kw):
    return t.srv.request(method, path, body=body, token=token, **kw)


def role_id(t, name):
    for role in t.req("GET", "/v1/roles?limit=200").json["data"]:
        if role["name"] == name:
            return role["id"]
    raise AssertionError(f"no role {name}")


def invalid_token(r):
    problem(r, 401)
    eq(r.header("WWW-Authenticate"), 'Bearer error="invalid_token"', "WWW-Authenticate")


@test
def users_create_get_list_patch():
    t = Tenant()
    u, _ = new_user(t, roles=["viewer"])
    eq(u["roles"], ["viewer"], "roles")
    eq(u["status"], "active", "status")
    eq(u["version"], 1, "version")
    check("password" not in json.dumps(u) and "argon" not in json.dumps(u), "no password")
    r = t.req("GET", f"/v1/users/{u['id']}")
    eq(r.status, 200, f"get {r}")
    eq(r.json, u, "get equals created")
    eq(r.header("ETag"), '"1"', "ETag")
    eq(t.req("GET", f"/v1/users/{u['id']}", headers={"If-None-Match": '"1"'}).status, 304, "304")
    ids = [x["id"] for x in t.req("GET", "/v1/users").json["data"]]
    check(u["id"] in ids and len(ids) == 2, f"list {ids}")
    r = t.req("PATCH", f"/v1/users/{u['id']}", {"name": "Renamed"})
    eq(r.status, 200, f"patch {r}")
    eq((r.json["name"], r.json["version"]), ("Renamed", 2), "patched")
    p = problem(t.req("PATCH", f"/v1/users/{u['id']}", {"name": "x"},
                      headers={"If-Match": '"1"'}), 412)
    check("2" in p["detail"], "412 names the version")
    eq(t.req("PATCH", f"/v1/users/{u['id']}", {"name": "Again"},
             headers={"If-Match": '"2"'}).status, 200, "fresh If-Match")
    problem(t.req("GET", "/v1/users/not-a-uuid"), 404)
    problem(t.req("GET", "/v1/users/00000000-0000-7000-8000-000000000000"), 404)
    problem(t.req("PATCH", "/v1/users/00000000-0000-7000-8000-000000000000", {"name": "x"}), 404)


@test
def users_validation_collects_every_error():
    t = Tenant()
    before = t.req("GET", "/v1/users").json["data"]
    p = problem(t.req("POST", "/v1/users", {"email": "nope", "name": "", "password": "short",
                                            "roles": ["no-such-role"], "extra": 1}), 422,
                "validation")
    pointers = {e["pointer"] for e in p["errors"]}
    eq(pointers, {"/extra"}, "unknown member refused first")
    p = problem(t.req("POST", "/v1/users", {"email": "nope", "name": "", "password": "short"}),
                422)
    eq({e["pointer"] for e in p["errors"]}, {"/email", "/name", "/password"}, "all fields")
    p = problem(t.req("POST", "/v1/users", {"email": "a@b.example", "name": "A",
                                            "password": "long enough pw",
                                            "roles": ["viewer", "no-such-role"]}), 422)
    eq([e["pointer"] for e in p["errors"]], ["/roles/1"], "unknown role pointer")
    u, _ = new_user(t)
    p = problem(t.req("PATCH", f"/v1/users/{u['id']}", {"status": "gone", "password": "x"}), 422)
    eq({e["pointer"] for e in p["errors"]}, {"/status", "/password"}, "patch pointers")
    problem(t.req("PATCH", f"/v1/users/{u['id']}", {}), 422)
    eq(len(t.req("GET", "/v1/users").json["data"]), len(before) + 1, "nothing else created")


@test
def emails_unique_ignoring_case_and_unicode_form():
    t = Tenant()
    composed = unicodedata.normalize("NFC", "jos\u00e9@example.com")
    decomposed = unicodedata.normalize("NFD", composed)
    check(composed != decomposed, "the two forms differ as strings")
    new_user(t, email=composed)
    for dup in (decomposed, composed.upper(), t.email.upper()):
        problem(t.req("POST", "/v1/users", {"email": dup, "name": "Dup",
                                            "password": "long enough pw"}), 409, "conflict")
    # Login finds the user by any of its spellings.
    r = t.srv.request("POST", "/v1/auth/token", body={
        "tenant": t.slug, "email": decomposed.upper(), "password": "a long password 1"})
    eq(r.status, 200, f"login by another form {r}")
    # Another tenant may use the same address.
    other = Tenant()
    new_user(other, email=composed)


@test
def disabled_user_token_is_refused_on_next_request():
    t = Tenant()
    u, pw = new_user(t, roles=["viewer"])
    token = login_as(t, u["email"], pw)
    eq(as_(t, token, "GET", "/v1/me").status, 200, "active user")
    eq(t.req("PATCH", f"/v1/users/{u['id']}", {"status": "disabled"}).status, 200, "disable")
    invalid_token(as_(t, token, "GET", "/v1/me"))
    problem(t.srv.request("POST", "/v1/auth/token", body={
        "tenant": t.slug, "email": u["email"], "password": pw}), 401)
    eq(t.req("PATCH", f"/v1/users/{u['id']}", {"status": "active"}).status, 200, "enable")
    eq(as_(t, token, "GET", "/v1/me").status, 200, "re-enabled user's token works again")


@test
def password_change():
    t = Tenant()
    u, pw = new_user(t)
    r = t.req("PATCH", f"/v1/users/{u['id']}", {"password": "a brand new secret"})
    eq(r.status, 200, f"change password {r}")
    problem(t.srv.request("POST", "/v1/auth/token", body={
        "tenant": t.slug, "email": u["email"], "password": pw}), 401)
    login_as(t, u["email"], "a brand new secret")


@test
def builtin_roles_and_role_crud():
    t = Tenant()
    roles = {r["name"]: r for r in t.req("GET", "/v1/roles").json["data"]}
    eq(sorted(roles), ["admin", "editor", "viewer"], "built-in roles")
    eq(roles["admin"]["permissions"], ["*"], "admin grants *")
    eq(sorted(roles["viewer"]["permissions"]), ["items:read", "reports:read", "workflows:read"],
       "viewer")
    check(all(r["builtin"] for r in roles.values()), "builtin flag")
    r = t.req("POST", "/v1/roles", {"name": "Approver", "permissions": ["po:approve", "items:read"]})
    eq(r.status, 201, f"create role {r}")
    role = r.json
    eq(role["permissions"], ["items:read", "po:approve"], "sorted permissions")
    eq(r.header("Location"), f"/v1/roles/{role['id']}", "Location")
    problem(t.req("POST", "/v1/roles", {"name": "APPROVER", "permissions": []}), 409, "conflict")
    problem(t.req("POST", "/v1/roles", {"name": "ADMIN", "permissions": []}), 409)
    p = problem(t.req("POST", "/v1/roles", {"name": "bad name!", "permissions": ["OK", "a:b:c",
                                                                                "fine:*"]}), 422)
    eq({e["pointer"] for e in p["errors"]}, {"/name", "/permissions/0", "/permissions/1"},
       "role pointers")
    r = t.req("PATCH", f"/v1/roles/{role['id']}", {"name": "po-approver",
                                                   "permissions": ["po:*"]})
    eq(r.status, 200, f"patch role {r}")
    eq((r.json["name"], r.json["permissions"], r.json["version"]), ("po-approver", ["po:*"], 2),
       "patched role")
    problem(t.req("PATCH", f"/v1/roles/{role['id']}", {"name": "Editor"}), 409)
    problem(t.req("PATCH", f"/v1/roles/{role['id']}", {"name": "x"},
                  headers={"If-Match": '"1"'}), 412)
    for name in ("admin", "editor", "viewer"):
        problem(t.req("DELETE", f"/v1/roles/{roles[name]['id']}"), 409)
        problem(t.req("PATCH", f"/v1/roles/{roles[name]['id']}", {"name": name + "2"}), 409)
    problem(t.req("PATCH", f"/v1/roles/{roles['admin']['id']}", {"permissions": ["items:read"]}),
            409)
    eq(t.req("PATCH", f"/v1/roles/{roles['editor']['id']}",
             {"permissions": ["items:read"]}).status, 200, "editor permissions can change")
    eq(t.req("DELETE", f"/v1/roles/{role['id']}").status, 204, "delete")
    problem(t.req("DELETE", f"/v1/roles/{role['id']}"), 404)
    names = [r["name"] for r in t.req("GET", "/v1/roles").json["data"]]
    check("po-approver" not in names, "deleted role gone")


@test
def role_location_answers_get_like_the_list():
    t = Tenant()
    r = t.req("POST", "/v1/roles", {"name": "reviewer", "permissions": ["items:read"]})
    eq(r.status, 201, f"create role {r}")
    loc = r.header("Location")
    eq(loc, f"/v1/roles/{r.json['id']}", "Location")
    got = t.req("GET", loc)
    eq(got.status, 200, f"GET {loc}: {got}")
    listed = next(x for x in t.req("GET", "/v1/roles?limit=200").json["data"]
                  if x["id"] == r.json["id"])
    eq(got.json, listed, "GET equals the list element")
    eq(got.json, r.json, "GET equals the 201 body")
    eq((got.header("ETag"), r.header("ETag")), ('"1"', '"1"'), "ETag is the version")
    nm = t.req("GET", loc, headers={"If-None-Match": '"1"'})
    eq((nm.status, nm.body, nm.header("ETag")), (304, "", '"1"'), "304 while unchanged")
    problem(t.req("GET", loc, headers={"If-None-Match": "1"}), 400)
    eq(t.req("PATCH", loc, {"permissions": ["items:read", "reports:read"]}).status, 200, "patch")
    got = t.req("GET", loc, headers={"If-None-Match": '"1"'})
    eq((got.status, got.header("ETag"), got.json["version"]), (200, '"2"', 2),
       "a changed role is sent again")
    eq(got.json["permissions"], ["items:read", "reports:read"], "the change shows")
    admin = t.req("GET", f"/v1/roles/{role_id(t, 'admin')}")
    eq((admin.status, admin.json["name"], admin.json["builtin"]), (200, "admin", True),
       "a built-in role")
    # Listing roles needs users:read, and so does reading one (not roles:write).
    eq(t.req("POST", "/v1/roles", {"name": "lister", "permissions": ["users:read"]}).status, 201,
       "role")
    reader, pw = new_user(t, roles=["lister"])
    eq(as_(t, login_as(t, reader["email"], pw), "GET", loc).status, 200, "users:read suffices")
    viewer, pw = new_user(t, roles=["viewer"])
    problem(as_(t, login_as(t, viewer["email"], pw), "GET", loc), 403, "forbidden")
    for bad in ("not-a-uuid", "00000000-0000-7000-8000-000000000000", r.json["id"] + "0"):
        problem(t.req("GET", f"/v1/roles/{bad}"), 404, "not-found")
    problem(Tenant().req("GET", loc), 404, "not-found")  # another tenant's role
    eq(t.req("DELETE", loc).status, 204, "delete")
    problem(t.req("GET", loc), 404, "not-found")


@test
def role_changes_apply_on_next_request():
    t = Tenant()
    u, pw = new_user(t, roles=["viewer"])
    token = login_as(t, u["email"], pw)
    problem(as_(t, token, "GET", "/v1/users"), 403, "forbidden")
    r = t.req("POST", "/v1/roles", {"name": "reader", "permissions": ["users:read"]})
    eq(r.status, 201, "role")
    r = t.req("PUT", f"/v1/users/{u['id']}/roles", {"roles": ["viewer", "READER"]})
    eq(r.status, 200, f"set roles {r}")
    eq(r.json["roles"], ["reader", "viewer"], "canonical names")
    eq(as_(t, token, "GET", "/v1/users").status, 200, "same token, new permission")
    eq(t.req("DELETE", f"/v1/roles/{role_id(t, 'reader')}").status, 204, "delete role")
    problem(as_(t, token, "GET", "/v1/users"), 403)
    me = as_(t, token, "GET", "/v1/me").json
    eq(me["roles"], ["viewer"], "role removed from user")


@test
def nobody_grants_what_they_do_not_hold():
    t = Tenant()
    t.req("POST", "/v1/roles", {"name": "manager",
                                "permissions": ["users:read", "users:write", "roles:write",
                                                "apikeys:write", "items:read"]})
    m, pw = new_user(t, roles=["manager"])
    mt = login_as(t, m["email"], pw)
    admin_id = t.req("GET", "/v1/me").json["principal"]["id"]
    for perms in (["*"], ["items:*"], ["items:write"], ["users:read", "audit:read"]):
        problem(as_(t, mt, "POST", "/v1/roles", {"name": unique("r"), "permissions": perms}),
                403, "forbidden")
    eq(as_(t, mt, "POST", "/v1/roles", {"name": "sub", "permissions": ["items:read"]}).status,
       201, "a role within the caller's permissions")
    problem(as_(t, mt, "POST", "/v1/users", {"email": "x@y.example", "name": "X",
                                              "password": "long enough pw",
                                              "roles": ["editor"]}), 403)
    problem(as_(t, mt, "PUT", f"/v1/users/{m['id']}/roles", {"roles": ["admin"]}), 403)
    problem(as_(t, mt, "PUT", f"/v1/users/{admin_id}/roles", {"roles": []}), 403)
    problem(as_(t, mt, "PATCH", f"/v1/users/{admin_id}", {"password": "taken over!!"}), 403)
    problem(as_(t, mt, "PATCH", f"/v1/users/{admin_id}", {"status": "disabled"}), 403)
    problem(as_(t, mt, "PATCH", f"/v1/roles/{role_id(t, 'editor')}",
                {"permissions": ["items:read"]}), 403)
    problem(as_(t, mt, "PATCH", f"/v1/roles/{role_id(t, 'sub')}",
                {"permissions": ["items:write"]}), 403)
    problem(as_(t, mt, "DELETE", f"/v1/roles/{role_id(t, 'editor')}"), 403)
    problem(as_(t, mt, "POST", "/v1/api-keys", {"name": "k", "roles": ["viewer"]}), 403)
    eq(as_(t, mt, "POST", "/v1/api-keys", {"name": "k", "roles": ["sub"]}).status, 201,
       "key within the caller's permissions")
    # The admin's password still works: the takeover did not happen.
    login_as(t, t.email, t.password)
    eq(t.req("GET", "/v1/me").json["roles"], ["admin"], "admin untouched")


@test
def last_active_admin_is_kept():
    t = Tenant()
    me = t.req("GET", "/v1/me").json["principal"]["id"]
    problem(t.req("PATCH", f"/v1/users/{me}", {"status": "disabled"}), 409, "conflict")
    problem(t.req("PUT", f"/v1/users/{me}/roles", {"roles": ["editor"]}), 409)
    eq(t.req("GET", "/v1/me").json["roles"], ["admin"], "still admin")
    second, pw = new_user(t, roles=["admin"])
    eq(t.req("PATCH", f"/v1/users/{second['id']}", {"status": "disabled"}).status, 200,
       "a disabled admin does not count")
    problem(t.req("PUT", f"/v1/users/{me}/roles", {"roles": []}), 409)
    eq(t.req("PATCH", f"/v1/users/{second['id']}", {"status": "active"}).status, 200, "enable")
    eq(t.req("PUT", f"/v1/users/{me}/roles", {"roles": ["viewer"]}).status, 200,
       "another active admin remains")
    st = login_as(t, second["email"], pw)
    problem(as_(t, st, "PATCH", f"/v1/users/{second['id']}", {"status": "disabled"}), 409)


@test
def api_keys_lifecycle():
    t = Tenant()
    r = t.req("POST", "/v1/api-keys", {"name": "ci", "roles": ["viewer"]})
    eq(r.status, 201, f"create key {r}")
    key = r.json
    check(key["secret"].startswith("tfk_") and len(key["secret"]) == 47, "secret shape")
    eq((key["roles"], key["expires_at"], key["revoked_at"]), (["viewer"], None, None), "key")
    me = t.srv.request("GET", "/v1/me", token=key["secret"]).json
    eq((me["principal"]["type"], me["principal"]["id"], me["roles"]),
       ("api_key", key["id"], ["viewer"]), "key principal")
    listed = t.req("GET", "/v1/api-keys")
    eq(listed.status, 200, "list")
    check(key["secret"] not in listed.body and "secret" not in listed.body
          and "hash" not in listed.body, "list never shows the secret")
    eq([k["id"] for k in listed.json["data"]], [key["id"]], "listed")
    stored = psql(f"SELECT encode(secret_hash, 'hex') FROM access.api_keys WHERE id = '{key['id']}'")
    check(stored.strip() and key["secret"] not in stored, "only a hash is stored")
    eq(t.req("DELETE", f"/v1/api-keys/{key['id']}").status, 204, "revoke")
    invalid_token(t.srv.request("GET", "/v1/me", token=key["secret"]))
    problem(t.req("DELETE", f"/v1/api-keys/{key['id']}"), 404)
    check(t.req("GET", "/v1/api-keys").json["data"][0]["revoked_at"], "revoked_at shown")


@test
def api_key_location_answers_get_like_the_list_without_the_secret():
    t = Tenant()
    r = t.req("POST", "/v1/api-keys", {"name": "deploy", "roles": ["viewer"],
                                       "expires_at": "2999-01-01T00:00:00Z"})
    eq(r.status, 201, f"create key {r}")
    created = dict(r.json)
    secret = created.pop("secret")
    loc = r.header("Location")
    eq(loc, f"/v1/api-keys/{created['id']}", "Location")
    got = t.req("GET", loc)
    eq(got.status, 200, f"GET {loc}: {got}")
    eq(got.json, created, "GET equals the 201 body without its secret")
    listed = next(x for x in t.req("GET", "/v1/api-keys?limit=200").json["data"]
                  if x["id"] == created["id"])
    eq(got.json, listed, "GET equals the list element")
    for s in (secret, secret[4:], "secret", "hash"):
        check(s not in got.body, f"{s[:8]}... not in {got.body}")
    # Reading a key needs apikeys:write, like the list: a viewer key cannot.
    problem(t.srv.request("GET", loc, token=secret), 403, "forbidden")
    for bad in ("not-a-uuid", "00000000-0000-7000-8000-000000000000"):
        problem(t.req("GET", f"/v1/api-keys/{bad}"), 404, "not-found")
    problem(Tenant().req("GET", loc), 404, "not-found")  # another tenant's key
    # A revoked key stays listed, so it stays readable, with revoked_at.
    eq(t.req("DELETE", loc).status, 204, "revoke")
    got = t.req("GET", loc)
    eq(got.status, 200, f"GET a revoked key {got}")
    check(got.json["revoked_at"], "revoked_at shown")
    eq(got.json, t.req("GET", "/v1/api-keys").json["data"][0], "revoked: still the list element")
    check(secret not in got.body and "secret" not in got.body, "still no secret")


@test
def api_key_expiry_and_validation():
    t = Tenant()
    r = t.req("POST", "/v1/api-keys", {"name": "short", "roles": ["viewer"],
                                       "expires_at": "2999-01-01T00:00:00+02:00"})
    eq(r.status, 201, f"create {r}")
    eq(r.json["expires_at"], "2998-12-31T22:00:00.000000Z", "normalised to UTC")
    secret = r.json["secret"]
    eq(t.srv.request("GET", "/v1/me", token=secret).status, 200, "before expiry")
    psql("UPDATE access.api_keys SET expires_at = now() - interval '1 second' "
         f"WHERE id = '{r.json['id']}'")
    invalid_token(t.srv.request("GET", "/v1/me", token=secret))
    for bad in ("2000-01-01T00:00:00Z", "tomorrow", "2999-02-30T00:00:00Z",
                "2999-01-01 00:00:00Z", "2999-01-01T00:00:00"):
        p = problem(t.req("POST", "/v1/api-keys", {"name": "k", "roles": [],
                                                   "expires_at": bad}), 422)
        eq([e["pointer"] for e in p["errors"]], ["/expires_at"], f"pointer for {bad}")
    p = problem(t.req("POST", "/v1/api-keys", {"name": "", "roles": ["nope"]}), 422)
    eq({e["pointer"] for e in p["errors"]}, {"/name"}, "name checked before roles")
    p = problem(t.req("POST", "/v1/api-keys", {"name": "k", "roles": ["nope"]}), 422)
    eq([e["pointer"] for e in p["errors"]], ["/roles/0"], "unknown role")
    eq(len(t.req("GET", "/v1/api-keys").json["data"]), 1, "refused keys were not created")
    problem(t.srv.request("GET", "/v1/me", token="tfk_" + "A" * 43), 401)


@test
def every_change_is_audited_once_without_secrets():
    t = Tenant()
    u, pw = new_user(t, password="user-secret-password-1")
    t.req("PATCH", f"/v1/users/{u['id']}", {"name": "N", "password": "changed-secret-pw-2"})
    role = t.req("POST", "/v1/roles", {"name": "r1", "permissions": ["items:read"]}).json
    t.req("PATCH", f"/v1/roles/{role['id']}", {"permissions": ["items:write"]})
    t.req("PUT", f"/v1/users/{u['id']}/roles", {"roles": ["r1"]})
    t.req("DELETE", f"/v1/roles/{role['id']}")
    key = t.req("POST", "/v1/api-keys", {"name": "k", "roles": []}).json
    t.req("DELETE", f"/v1/api-keys/{key['id']}")
    # Refused changes leave no trace.
    t.req("POST", "/v1/roles", {"name": "ADMIN", "permissions": []})
    t.req("DELETE", f"/v1/api-keys/{key['id']}")
    rows = psql(f"SELECT action, resource_type, resource_id, changes::text FROM audit.records "
                f"WHERE tenant_id = '{t.id}' ORDER BY occurred_at, id").splitlines()
    actions = [r.split("|")[0] for r in rows]
    eq(actions, ["tenant.created", "user.created", "user.updated", "role.created",
                 "role.updated", "user.roles_set", "role.deleted", "api_key.created",
                 "api_key.revoked"], "one record per change")
    events = psql(f"SELECT type FROM events.outbox WHERE tenant_id = '{t.id}' "
                  "ORDER BY occurred_at, id").split()
    eq(events, actions, "one event per change")
    audit = psql(f"SELECT changes::text FROM audit.records WHERE tenant_id = '{t.id}'")
    data = psql(f"SELECT data::text FROM events.outbox WHERE tenant_id = '{t.id}'")
    for secret in ("user-secret-password-1", "changed-secret-pw-2", key["secret"],
                   key["secret"][4:], t.password, "argon2"):
        check(secret not in audit, f"secret {secret[:8]}... in audit")
        check(secret not in data, f"secret {secret[:8]}... in events")
    eq(json.loads(rows[2].split("|", 3)[3])["after"], {"name": "N", "password_changed": True},
       "password change recorded as a fact")
    eq(rows[5].split("|")[1:3], ["user", u["id"]], "roles_set resource")


@test
def lists_page_with_cursors():
    t = Tenant()
    for _ in range(4):
        new_user(t)
    seen, cursor, pages = [], None, 0
    while True:
        r = t.req("GET", "/v1/users?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        eq(r.status, 200, f"page {r}")
        seen += [u["id"] for u in r.json["data"]]
        cursor, pages = r.json["next_cursor"], pages + 1
        if not cursor:
            break
    eq((len(seen), len(set(seen)), pages), (5, 5, 3), "all users once")
    c = t.req("GET", "/v1/users?limit=1").json["next_cursor"]
    tampered = c[:-2] + ("A" if c[-2] != "A" else "B") + c[-1]
    p = problem(t.req("GET", f"/v1/users?cursor={tampered}"), 400)
    eq(p["errors"][0]["parameter"], "cursor", "names cursor")
    problem(t.req("GET", f"/v1/roles?cursor={c}"), 400)  # another endpoint's cursor
    other = Tenant()
    problem(other.req("GET", f"/v1/users?cursor={c}"), 400)  # another tenant's cursor
    for q in ("limit=0", "limit=201", "limit=x", "colour=red"):
        problem(t.req("GET", f"/v1/users?{q}"), 400)
    eq(len(t.req("GET", "/v1/roles?limit=2").json["data"]), 2, "roles paged")
    t.req("POST", "/v1/api-keys", {"name": "a", "roles": []})
    t.req("POST", "/v1/api-keys", {"name": "b", "roles": []})
    r = t.req("GET", "/v1/api-keys?limit=1")
    eq(len(r.json["data"]), 1, "keys paged")
    r2 = t.req("GET", f"/v1/api-keys?limit=1&cursor={r.json['next_cursor']}")
    eq((r2.json["data"][0]["name"], r2.json["next_cursor"]), ("b", None), "second key page")


@test
def login_rate_limits():
    with Server(TENANTFLOW_LOGIN_FAILURES_PER_ACCOUNT=3, TENANTFLOW_LOGIN_FAILURES_PER_IP=8,
                TENANTFLOW_LOGIN_FAILURE_WINDOW=3) as srv:
        t = Tenant(srv)

        def attempt(email, password):
            return srv.request("POST", "/v1/auth/token",
                               body={"tenant": t.slug, "email": email, "password": password})
        for _ in range(3):
            problem(attempt(t.email, "wrong password"), 401)
        r = attempt(t.email, t.password)
        problem(r, 429)
        check(1 <= int(r.header("Retry-After")) <= 3, f"Retry-After {r.header('Retry-After')}")
        # Every spelling of the account shares its counter.
        problem(attempt(t.email.upper(), t.password), 429)
        # Unknown accounts are limited the same way (no hint of existence).
        for _ in range(3):
            problem(attempt("ghost@example.com", "pw"), 401)
        problem(attempt("ghost@example.com", "pw"), 429)
        # Two more failures on a third account reach the address limit (8).
        problem(attempt("other@example.com", "pw"), 401)
        problem(attempt("other@example.com", "pw"), 401)
        problem(attempt("fresh@example.com", "pw"), 429)
        time.sleep(3.2)
        eq(attempt(t.email, t.password).status, 200, "allowed again after the window")
    p = cli("serve", env={"TENANTFLOW_LOGIN_FAILURE_WINDOW": "0"}, check_rc=False)
    eq(p.returncode, 2, "a bad window stops the server")
    check("TENANTFLOW_LOGIN_FAILURE_WINDOW" in p.stderr, "message names the variable")


@test
def login_timing_does_not_reveal_accounts():
    with Server(TENANTFLOW_LOGIN_FAILURES_PER_ACCOUNT=0, TENANTFLOW_LOGIN_FAILURES_PER_IP=0) as srv:
        t = Tenant(srv)

        def timed(email):
            start = time.perf_counter()
            r = srv.request("POST", "/v1/auth/token",
                            body={"tenant": t.slug, "email": email, "password": "wrong pw!"})
            eq(r.status, 401, "failed login")
            return time.perf_counter() - start
        unknown, known = [], []
        for _ in range(7):
            unknown.append(timed("nobody@example.com"))
            known.append(timed(t.email))
        a, b = statistics.median(unknown), statistics.median(known)
        ratio = max(a, b) / min(a, b)
        print(f"     login medians: unknown {a * 1000:.1f} ms, wrong password {b * 1000:.1f} ms,"
              f" ratio {ratio:.2f}")
        check(ratio < 3, f"timing ratio {ratio:.2f}")


@test
def pooled_connection_never_carries_a_tenant():
    with Server(TENANTFLOW_DB_POOL_SIZE=1, TENANTFLOW_THREADS=2) as srv:
        a, b = Tenant(srv), Tenant(srv)
        ua, _ = new_user(a)
        ub, _ = new_user(b)
        a_ids = {u["id"] for u in a.req("GET", "/v1/users").json["data"]}
        b_ids = {u["id"] for u in b.req("GET", "/v1/users").json["data"]}
        check(ua["id"] in a_ids and ub["id"] in b_ids and not a_ids & b_ids, "setup")
        me_a = a.req("GET", "/v1/me").json["principal"]["id"]
        for round_ in range(3):
            # Fails inside its transaction after its UPDATE ran (last admin).
            problem(a.req("PATCH", f"/v1/users/{me_a}", {"status": "disabled"}), 409)
            # Fails before any tenant is known, on the same single connection.
            problem(srv.request("GET", "/v1/users", token="tfk_" + "B" * 43), 401)
            problem(srv.request("POST", "/v1/auth/token", body={
                "tenant": a.slug, "email": a.email, "password": "wrong password"}), 401)
            for t, mine, theirs in ((b, b_ids, a_ids), (a, a_ids, b_ids)):
                got = {u["id"] for u in t.req("GET", "/v1/users").json["data"]}
                eq(got, mine, f"round {round_}: {t.slug} sees exactly its own users")
                eq(t.req("GET", "/v1/me").json["tenant"]["id"], t.id, "own tenant")
                r = t.req("GET", f"/v1/users/{next(iter(theirs))}")
                problem(r, 404)
        eq(a.req("GET", "/v1/me").status, 200, "the refused disable was rolled back")


@test
def access_responses_match_the_documented_schemas():
    from test_openapi import conforms, document
    doc = document()
    t = Tenant()
    c = lambda m, tpl, r: conforms(doc, m, tpl, r)  # noqa: E731
    r = t.req("POST", "/v1/users", {"email": "doc@example.com", "name": "Doc",
                                    "password": "long enough pw", "roles": ["viewer"]})
    c("POST", "/v1/users", r)
    uid = r.json["id"]
    c("POST", "/v1/users", t.req("POST", "/v1/users", {"email": "DOC@example.com", "name": "D",
                                                       "password": "long enough pw"}))  # 409
    c("POST", "/v1/users", t.req("POST", "/v1/users", {"email": "x"}))  # 422
    c("GET", "/v1/users", t.req("GET", "/v1/users?limit=1"))
    c("GET", "/v1/users/{id}", t.req("GET", f"/v1/users/{uid}"))
    c("GET", "/v1/users/{id}", t.req("GET", f"/v1/users/{uid}", headers={"If-None-Match": '"1"'}))
    c("GET", "/v1/users/{id}", t.req("GET", "/v1/users/nope"))
    c("PATCH", "/v1/users/{id}", t.req("PATCH", f"/v1/users/{uid}", {"name": "Doc 2"}))
    c("PATCH", "/v1/users/{id}", t.req("PATCH", f"/v1/users/{uid}", {"name": "x"},
                                       headers={"If-Match": '"1"'}))  # 412
    c("PUT", "/v1/users/{id}/roles", t.req("PUT", f"/v1/users/{uid}/roles", {"roles": ["editor"]}))
    r = t.req("POST", "/v1/roles", {"name": "doc-role", "permissions": ["items:read", "po:*"]})
    c("POST", "/v1/roles", r)
    c("GET", "/v1/roles", t.req("GET", "/v1/roles"))
    c("GET", "/v1/roles/{id}", t.req("GET", f"/v1/roles/{r.json['id']}"))
    c("GET", "/v1/roles/{id}", t.req("GET", f"/v1/roles/{r.json['id']}",
                                     headers={"If-None-Match": '"1"'}))  # 304
    c("GET", "/v1/roles/{id}", t.req("GET", "/v1/roles/nope"))  # 404
    c("PATCH", "/v1/roles/{id}", t.req("PATCH", f"/v1/roles/{r.json['id']}", {"name": "doc-2"}))
    c("DELETE", "/v1/roles/{id}", t.req("DELETE", f"/v1/roles/{r.json['id']}"))
    c("DELETE", "/v1/roles/{id}", t.req("DELETE", f"/v1/roles/{role_id(t, 'admin')}"))  # 409
    r = t.req("POST", "/v1/api-keys", {"name": "doc", "roles": ["viewer"],
                                       "expires_at": "2999-01-01T00:00:00Z"})
    c("POST", "/v1/api-keys", r)
    c("POST", "/v1/api-keys", t.req("POST", "/v1/api-keys", {"name": "doc", "roles": []}))
    c("GET", "/v1/api-keys", t.req("GET", "/v1/api-keys"))
    c("GET", "/v1/api-keys/{id}", t.req("GET", f"/v1/api-keys/{r.json['id']}"))
    c("GET", "/v1/api-keys/{id}", t.req("GET", "/v1/api-keys/nope"))  # 404
    c("DELETE", "/v1/api-keys/{id}", t.req("DELETE", f"/v1/api-keys/{r.json['id']}"))
    c("DELETE", "/v1/api-keys/{id}", t.req("DELETE", f"/v1/api-keys/{r.json['id']}"))  # 404


@test
def revocation_and_disabling_reach_every_server_process():
    t = Tenant()
    with Server() as other:
        key = t.req("POST", "/v1/api-keys", {"name": "k", "roles": ["viewer"]}).json
        u, pw = new_user(t, roles=["viewer"])
        token = login_as(t, u["email"], pw)
        for cred in (key["secret"], token):
            eq(other.request("GET", "/v1/me", token=cred).status, 200, "works on process 2")
        eq(t.req("DELETE", f"/v1/api-keys/{key['id']}").status, 204, "revoke on process 1")
        eq(t.req("PATCH", f"/v1/users/{u['id']}", {"status": "disabled"}).status, 200, "disable")
        for cred in (key["secret"], token):
            invalid_token(other.request("GET", "/v1/me", token=cred))


@test
def a_permission_spelled_null_stays_a_permission():
    t = Tenant()
    r = t.req("POST", "/v1/roles", {"name": unique("r"), "permissions": ["null", "po:approve"]})
    eq(r.status, 201, f"created {r}")
    eq(sorted(r.json["permissions"]), ["null", "po:approve"], "stored as text, not SQL NULL")
    listed = next(x for x in t.req("GET", "/v1/roles?limit=200").json["data"]
                  if x["id"] == r.json["id"])
    eq(sorted(listed["permissions"]), ["null", "po:approve"], "read back")
