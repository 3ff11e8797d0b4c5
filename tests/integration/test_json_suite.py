"""Every JSONTestSuite parsing case posted to a real JSON endpoint: y_ files
are accepted by the JSON layer (the endpoint then answers 422 for the wrong
shape), n_ files are a 400 problem, i_ files follow the documented choices in
docs/json-implementation-defined.md, and the server is alive afterwards."""
import os
import re

from harness import check, eq, problem, server, test

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def documented_choices():
    """{file: accepted?} from the tables in docs/json-implementation-defined.md."""
    choices = {}
    with open(os.path.join(ROOT, "docs", "json-implementation-defined.md")) as f:
        for line in f:
            m = re.match(r"\|\s*`([iy]_[^`]+)`\s*\|\s*([^|]*)\|", line)
            if m:
                name, word = m.group(1), m.group(2).strip()
                choices[name] = word == "accept" if name.startswith("i_") else False
    return choices


@test
def json_test_suite_over_http():
    d = os.path.join(os.environ["TF_TESTDATA"], "JSONTestSuite", "test_parsing")
    choices = documented_choices()
    names = sorted(os.listdir(d))
    check(len(names) > 300, f"found {len(names)} cases")
    i_files = [n for n in names if n.startswith("i_")]
    eq(sorted(n for n in choices if n.startswith("i_")), i_files, "every i_ file documented")
    srv = server()
    for name in names:
        if name[0] not in "yni":
            continue
        with open(os.path.join(d, name), "rb") as f:
            body = f.read()
        r = srv.request("POST", "/v1/auth/token", raw=body)
        accepted = choices.get(name, name.startswith("y_"))
        if accepted:
            # Valid JSON of the wrong shape: a validation problem, not a parse error.
            check(r.status == 422, f"{name}: {r}")
            problem(r, 422, "validation")
        else:
            p = problem(r, 400, "invalid-json")
            check(p["detail"], f"{name}: detail")
    eq(srv.request("GET", "/healthz").status, 200, "alive after every case")
