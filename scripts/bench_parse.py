"""Parses wrk and pgbench output for scripts/bench.sh and prints the table.

  bench_parse.py wrk FILE         -> "rps|p50_ms|p99_ms|non2xx"
  bench_parse.py pgbench FROM TO LOG... -> "tps|p50_ms|p99_ms|transactions", over
                                  the transactions that ended between the Unix times
                                  FROM and TO (LOG: pgbench's -l files)
  bench_parse.py table HZ DURATION RSS_IDLE RSS_LOAD RSS_1000 ROW...  (see table())
"""
import os
import re
import sys


def ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(path):
    text = open(path).read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    pct = dict((p, ms(v, u)) for p, v, u in re.findall(r"\s(50|99)%\s+([\d.]+)(us|ms|s)", text))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    print(f"{float(rps.group(1)) if rps else 0:.0f}|{pct.get('50', 0):.2f}|"
          f"{pct.get('99', 0):.2f}|{bad.group(1) if bad else 0}")


def pgbench(start, end, *logs):
    """Only a window of the run counts: pgbench prepares each script's
    statements on each connection the first time it runs it (hundreds of
    plans at the start), which the server, warmed up, no longer pays."""
    start, end = float(start), float(end)
    # Per-transaction log lines: client, transaction, latency µs, script,
    # end time in seconds and microseconds.
    lat = []
    for log in logs:
        if not os.path.exists(log):
            continue
        for line in open(log):
            f = line.split()
            if len(f) >= 6 and f[2].isdigit() and start <= int(f[4]) + int(f[5]) / 1e6 < end:
                lat.append(int(f[2]))
    lat.sort()

    def pct(q):
        return lat[min(len(lat) - 1, int(q * len(lat)))] / 1000 if lat else 0

    span = end - start
    print(f"{len(lat) / span if span > 0 else 0:.0f}|{pct(0.50):.2f}|{pct(0.99):.2f}|{len(lat)}")


def table(hz, duration, rss_idle, rss_load, rss_idle_conns, *rows):
    """ROWs: "R|scenario|conns|rps|p50|p99|non2xx|pgbench_tps|server_ticks|
    pg_ticks_under_wrk|pg_ticks_in_pgbench_window|pgbench_transactions_in_it",
    one per round, and
    "Y|scenario|conns|tps|p50|p99", pgbench with as many clients as wrk has
    connections. Each figure is the median over the rounds; the ratio is the
    median of the rounds' own ratios, with their range."""
    hz, duration = int(hz), float(duration)
    rounds, yard = {}, {}
    for row in rows:
        f = row.split("|")
        if f[0] == "R":
            rounds.setdefault((f[1], f[2]), []).append(f[3:])
        else:
            yard[(f[1], f[2])] = f[4:6]

    def per_request(ticks, rate):  # CPU microseconds per request
        return int(ticks) / hz / (rate * duration) * 1e6 if rate else float("nan")

    print("| scenario | conns | req/s | p50 ms | p99 ms | non-2xx | pgbench tps | ratio |"
          " ratio range | server CPU µs/req | PostgreSQL CPU µs/req | same under pgbench |"
          " pgbench p50 ms | pgbench p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    shares = {}
    for (name, conns), rs in rounds.items():
        rps = [float(r[0]) for r in rs]
        tps = [float(r[4]) for r in rs]
        ratios = [a / b for a, b in zip(rps, tps) if b]
        cpus = [per_request(r[5], a) for r, a in zip(rs, rps)]
        pg_srv = [per_request(r[6], a) for r, a in zip(rs, rps)]
        pg_own = [int(r[7]) / hz / int(r[8]) * 1e6 if int(r[8]) else float("nan") for r in rs]
        shares[(name, conns)] = [c / p for c, p in zip(cpus, pg_own) if p]
        bad = sum(int(r[3]) for r in rs)
        pg50, pg99 = yard.get((name, conns), ["n/a", "n/a"])
        span = f"{min(ratios):.2f}–{max(ratios):.2f}" if ratios else "n/a"
        print(f"| {name} | {conns} | {median(rps):.0f} | {median(float(r[1]) for r in rs):.2f} |"
              f" {median(float(r[2]) for r in rs):.2f} | {bad} | {median(tps):.0f} |"
              f" {median(ratios):.2f} | {span} | {median(cpus):.0f} | {median(pg_srv):.0f} |"
              f" {median(pg_own):.0f} | {pg50} | {pg99} |")
    n = max((len(rs) for rs in rounds.values()), default=0)
    print()
    print(f"Medians over {n} rounds; in each round pgbench ran with as many connections as the"
          " server's pool, just before wrk. PostgreSQL CPU: all of its processes, per request"
          " while wrk ran and per transaction while pgbench ran (background jobs included)."
          " pgbench p50/p99: the same SQL from as many pgbench clients as wrk has connections.")
    for (name, conns), v in shares.items():
        if name == "get" and v:
            print(f"Server CPU per GET at {conns} connections = {median(v):.2f} x PostgreSQL's CPU"
                  f" per GET transaction under pgbench (range {min(v):.2f}–{max(v):.2f}); the"
                  " target, 60 µs against the 87 µs PostgreSQL spends here, is 0.69.")
    print()
    print(f"Resident memory: idle {int(rss_idle) / 1024:.1f} MB, under load "
          f"{int(rss_load) / 1024:.1f} MB, with 1,000 idle keep-alive connections "
          f"{int(rss_idle_conns) / 1024:.1f} MB.")


def median(values):
    v = sorted(values)
    if not v:
        return float("nan")
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


if __name__ == "__main__":
    {"wrk": wrk, "pgbench": pgbench, "table": table}[sys.argv[1]](*sys.argv[2:])
