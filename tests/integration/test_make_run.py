"""`make run`'s script against the test database: it migrates, seeds the demo
tenant through the API, writes demo.env, serves, and a second run reuses
everything. The values in demo.env work for the main path."""
import os
import signal
import subprocess
import time

from harness import ROOT_DIR, TMP, Server, check, eq, free_port, test, unique


def run_once(local, port):
    env = dict(os.environ, TENANTFLOW_LOCAL_DIR=local, TENANTFLOW_LISTEN=f"127.0.0.1:{port}",
               PG_ADMIN_URL=os.environ["TF_ADMIN_URL"])
    log = open(os.path.join(local, f"run-{port}.log"), "wb")
    p = subprocess.Popen([os.path.join(ROOT_DIR, "scripts", "run.sh")], env=env, stdout=log,
                         stderr=subprocess.STDOUT, start_new_session=True)
    demo = os.path.join(local, "demo.env")
    deadline = time.time() + 60
    srv = None
    while time.time() < deadline:
        if p.poll() is not None:
            raise AssertionError(f"run.sh exited {p.returncode}: " +
                                 open(log.name, errors="replace").read()[-2000:])
        if os.path.exists(demo) and "serving on" in open(log.name, errors="replace").read():
            try:
                srv = Server.attach(port)
                if srv.request("GET", "/readyz").status == 200:
                    break
            except OSError:
                srv = None
        time.sleep(0.2)
    check(srv is not None, "make run came up")
    values = {k: v.strip("'") for k, v in
              (line.strip().split("=", 1) for line in open(demo) if "=" in line)}
    # The file must survive `source` in a shell: check with bash itself.
    out = subprocess.run(["bash", "-c", f"source {demo} && echo \"$PG_ADMIN_URL\""],
                         capture_output=True, text=True).stdout.strip()
    eq(out, values["PG_ADMIN_URL"], "PG_ADMIN_URL survives source")
    return p, srv, values


@test
def make_run_seeds_serves_and_reruns():
    local = os.path.join(TMP, unique("local"))
    os.makedirs(local)
    port = free_port()
    p, srv, v = run_once(local, port)
    try:
        for k in ("TENANTFLOW_URL", "DEMO_TENANT", "DEMO_EMAIL", "DEMO_PASSWORD",
                  "OPERATOR_TOKEN", "PG_ADMIN_URL"):
            check(v.get(k), f"{k} in demo.env")
        eq(v["TENANTFLOW_URL"], f"http://127.0.0.1:{port}", "URL")
        r = srv.request("POST", "/v1/auth/token", body={
            "tenant": v["DEMO_TENANT"], "email": v["DEMO_EMAIL"],
            "password": v["DEMO_PASSWORD"]})
        eq(r.status, 200, f"demo login {r}")
        tok = r.json["access_token"]
        r = srv.request("GET", "/v1/workflows/purchase-order", token=tok)
        eq(r.status, 200, "demo workflow")
        r = srv.request("POST", "/v1/items", token=tok, body={
            "workflow": "purchase-order", "title": "Desks",
            "attributes": {"amount": 900, "vendor": "Oak"}})
        eq(r.status, 201, f"create {r}")
        r = srv.request("POST", r.header("Location") + "/transitions", token=tok,
                        body={"transition": "submit"})
        eq(r.status, 200, f"transition {r}")
        eq(srv.request("GET", "/v1/admin/tenants", token=v["OPERATOR_TOKEN"]).status, 200,
           "operator token works")
    finally:
        os.killpg(p.pid, signal.SIGINT)
        eq(p.wait(30), 0, "Ctrl-C stops it cleanly")
    # Twice: the cluster, keys, operator and demo data are reused.
    p, srv, v2 = run_once(local, port)
    try:
        eq(v2["OPERATOR_TOKEN"], v["OPERATOR_TOKEN"], "operator reused")
        r = srv.request("POST", "/v1/auth/token", body={
            "tenant": v2["DEMO_TENANT"], "email": v2["DEMO_EMAIL"],
            "password": v2["DEMO_PASSWORD"]})
        eq(r.status, 200, "demo login after rerun")
    finally:
        os.killpg(p.pid, signal.SIGINT)
        eq(p.wait(30), 0, "second run stops cleanly")
