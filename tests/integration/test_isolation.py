"""Tenancy is enforced by the database: another tenant's ids are 404, and the
application role sees nothing without a tenant set."""
import os

from harness import PURCHASE_ORDER, Tenant, eq, problem, psql, test

TENANT_TABLES = ["tenancy.tenants", "access.users", "access.roles", "access.user_roles",
                 "access.api_keys", "workflow.definitions", "workflow.items",
                 "workflow.history"]


def app_url():
    return os.environ["TENANTFLOW_DATABASE_URL"]


@test
def other_tenant_gets_404():
    a, b = Tenant(), Tenant()
    eq(a.req("POST", "/v1/workflows", PURCHASE_ORDER).status, 201, "workflow A")
    item = a.req("POST", "/v1/items", {"workflow": "purchase-order", "title": "A's secret",
                                       "attributes": {"amount": 5, "vendor": "v"}}).json
    problem(b.req("GET", f"/v1/items/{item['id']}"), 404, "not-found")
    problem(b.req("GET", f"/v1/items/{item['id']}/history"), 404, "not-found")
    problem(b.req("POST", f"/v1/items/{item['id']}/transitions", {"transition": "submit"}), 404)
    problem(b.req("GET", "/v1/workflows/purchase-order"), 404)
    # B cannot create items in A's workflow either: for B it does not exist.
    problem(b.req("POST", "/v1/items", {"workflow": "purchase-order", "title": "x"}), 422)
    eq(a.req("GET", f"/v1/items/{item['id']}").json["version"], 1, "A's item untouched")


@test
def app_role_without_tenant_sees_nothing():
    a = Tenant()
    a.req("POST", "/v1/workflows", PURCHASE_ORDER)
    a.req("POST", "/v1/items", {"workflow": "purchase-order", "title": "row"})
    for table in TENANT_TABLES:
        n = psql(f"SELECT count(*) FROM {table}", app_url()).strip()
        eq(n, "0", f"{table} rows visible without tenant")
        # With another tenant's id set, still nothing of A.
        n = psql("SELECT set_config('app.tenant_id', '00000000-0000-7000-8000-000000000000', "
                 f"false) IS NULL", app_url(), "-c", f"SELECT count(*) FROM {table}").split()
        eq(n[-1], "0", f"{table} rows visible to a foreign tenant")
        n = psql(f"SELECT set_config('app.tenant_id', '{a.id}', false) IS NULL", app_url(),
                 "-c", f"SELECT count(*) FROM {table}").split()
        if table in ("workflow.items", "tenancy.tenants"):
            eq(n[-1], "1", f"{table} visible to its own tenant (so the zeros mean something)")
    # The superuser does see the rows, so the zeros above are not vacuous.
    n = int(psql("SELECT count(*) FROM workflow.items WHERE tenant_id = "
                 f"'{a.id}'").strip())
    eq(n, 1, "superuser sees A's item")


@test
def app_role_cannot_write_into_another_tenant():
    a = Tenant()
    sql = (f"BEGIN; SELECT set_config('app.tenant_id', '{a.id}', true); "
           "INSERT INTO access.roles (tenant_id, name) VALUES "
           "('00000000-0000-7000-8000-000000000000', 'sneaky'); COMMIT;")
    try:
        psql(sql, app_url())
    except AssertionError as e:
        eq("row-level security" in str(e), True, f"RLS refused: {e}")
    else:
        raise AssertionError("insert into another tenant was accepted")


@test
def operator_tables_unreadable_by_app_role():
    for table in ("tenancy.operators", "platform.migrations"):
        try:
            out = psql(f"SELECT count(*) FROM {table}", app_url()).strip()
        except AssertionError as e:
            eq("permission denied" in str(e), True, f"{table}: {e}")
        else:
            raise AssertionError(f"{table} readable by the app role ({out} rows)")
