"""Turns the SQL the server really ran into pgbench scripts.

bench.sh runs one request of each scenario with PostgreSQL's log_statement
= 'all' for the application role, each with a known X-Request-Id. This
script finds, in the server log, the backend that ran each request (the
request id is a parameter of the first set_config), takes that backend's
statements from its BEGIN to its COMMIT, inlines the parameters as
literals, and writes VARIANTS pgbench scripts per scenario in which the
tenant, user and item ids are swapped for other sampled ones (and, for
create, a fresh item id per transaction). pgbench therefore runs exactly
the server's statements, one round trip each.

Two things must not make pgbench slower than the server would be on the
same work: the clock and the items. A timestamp the server passed (the
transaction's now(), for the report fact) becomes now() again, or the
replayed fact falls behind the report watermark an hour later and takes
the late-fact path; and there are as many variants as pgbench accepts, so
that its 8 clients seldom queue on one item's row lock (wrk draws from
5,000 items).

usage: bench_capture.py SERVER_LOG DIR SAMPLE_JSON
"""
import json
import random
import re
import sys

LOG, DIR, SAMPLE = sys.argv[1:4]
VARIANTS = 100  # pgbench takes at most 128 scripts
STAMP = re.compile(r"'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?\+00'")
LINE = re.compile(r"^\S+ \S+ \S+ \[(\d+)\] (\w+):  (.*)$")

entries = []  # (pid, kind, text)
with open(LOG, errors="replace") as f:
    for line in f:
        m = LINE.match(line.rstrip("\n"))
        if m:
            entries.append([m.group(1), m.group(2), m.group(3)])
        elif entries:
            entries[-1][2] += "\n" + line.rstrip("\n")


def statements(pid):
    """[(sql, {n: literal})] of one backend, in order."""
    out = []
    for p, kind, text in entries:
        if p != pid:
            continue
        m = re.match(r"(?:execute \S+|statement): (.*)", text, re.S) if kind == "LOG" else None
        if m:
            out.append([m.group(1), {}])
        elif kind == "DETAIL" and text.startswith("parameters: ") and out:
            for n, lit in re.findall(r"\$(\d+) = ((?:'(?:[^']|'')*')|NULL)", text):
                out[-1][1][int(n)] = lit
    return out


def inline(sql, params):
    for n in sorted(params, reverse=True):
        sql = re.sub(r"\$%d(?!\d)" % n, lambda _: "(" + params[n] + ")", sql)
    return sql


def request_sql(rid):
    pid = next(p for p, kind, text in entries
               if kind == "DETAIL" and f"'{rid}'" in text)
    stmts = statements(pid)
    start = next(i for i, (sql, ps) in enumerate(stmts)
                 if any(f"'{rid}'" == v for v in ps.values()))
    begin = max(i for i in range(start) if stmts[i][0].strip() == "BEGIN")
    end = next(i for i in range(start, len(stmts)) if stmts[i][0].strip() == "COMMIT")
    return [STAMP.sub("now()", inline(sql, ps)) for sql, ps in stmts[begin:end + 1]]


sample = json.load(open(SAMPLE))  # {"captured": {...}, "others": [{tenant,user,item}, ...]}
cap = sample["captured"]
for scenario in ("get", "list", "create", "transition"):
    sql = ";\n".join(request_sql(f"bench-{scenario}")) + ";\n"
    for v in range(VARIANTS):
        o = random.choice(sample["others"])
        text = sql.replace(cap["tenant"], o["tenant"]).replace(cap["user"], o["user"])
        header = ""
        if scenario == "create":
            # A fresh id per transaction: 32 hex digits from two random numbers.
            new_id = cap["created"]
            fresh = ("(lpad(to_hex(:a::bigint), 16, '0') || "
                     "lpad(to_hex(:b::bigint), 16, '0'))::uuid")
            # As a whole parameter it becomes a uuid (assignable to text
            # columns too); inside a JSON literal, text spliced in.
            text = text.replace(f"('{new_id}')", f"({fresh})")
            text = text.replace(new_id, "' || lpad(to_hex(:a::bigint), 16, '0') || "
                                        "lpad(to_hex(:b::bigint), 16, '0') || '")
            header = ("\\set a random(0, 4611686018427387903)\n"
                      "\\set b random(0, 4611686018427387903)\n")
        else:
            text = text.replace(cap["item"], o["item"])
        with open(f"{DIR}/{scenario}-{v}.sql", "w") as f:
            f.write(header + text)
print("captured", {s: len(request_sql(f"bench-{s}")) for s in ("get", "list", "create",
                                                                 "transition")})
