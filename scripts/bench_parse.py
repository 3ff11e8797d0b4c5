"""Parses wrk and pgbench output for scripts/bench.sh and prints the table.

  bench_parse.py wrk FILE         -> "rps|p50_ms|p99_ms|non2xx"
  bench_parse.py pgbench FILE LOG... -> "tps|p50_ms|p99_ms" (LOG: its -l files)
  bench_parse.py table HZ DURATION RSS_IDLE RSS_LOAD RSS_1000 ROW...
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


def pgbench(path, *logs):
    text = open(path).read()
    tps = re.search(r"tps = ([\d.]+)", text)
    # Per-transaction log lines: client, transaction, latency in µs, ...
    lat = sorted(int(f[2]) for log in logs if os.path.exists(log) for f in (line.split() for line in open(log))
                 if len(f) > 2 and f[2].isdigit())

    def pct(q):
        return lat[min(len(lat) - 1, int(q * len(lat)))] / 1000 if lat else 0

    print(f"{float(tps.group(1)) if tps else 0:.0f}|{pct(0.50):.2f}|{pct(0.99):.2f}")


def table(hz, duration, rss_idle, rss_load, rss_idle_conns, *rows):
    hz, duration = int(hz), float(duration)
    print("| scenario | conns | req/s | p50 ms | p99 ms | non-2xx | pgbench tps | ratio |"
          " server CPU µs/req | pgbench p50 ms | pgbench p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        (name, conns, rps, p50, p99, bad, tps, _p50, _p99, _tps, pg50, pg99,
         ticks) = row.split("|")
        rps, tps = float(rps), float(tps)
        ratio = f"{rps / tps:.2f}" if tps else "n/a"
        cpu = f"{int(ticks) / hz / (rps * duration) * 1e6:.0f}" if rps else "n/a"
        print(f"| {name} | {conns} | {rps:.0f} | {p50} | {p99} | {bad} | {tps:.0f} | {ratio} |"
              f" {cpu} | {pg50} | {pg99} |")
    print()
    print("pgbench tps: with as many connections as the server's pool; pgbench p50/p99: "
          "the same SQL from as many pgbench clients as wrk has connections.")
    print()
    print(f"Resident memory: idle {int(rss_idle) / 1024:.1f} MB, under load "
          f"{int(rss_load) / 1024:.1f} MB, with 1,000 idle keep-alive connections "
          f"{int(rss_idle_conns) / 1024:.1f} MB.")


if __name__ == "__main__":
    {"wrk": wrk, "pgbench": pgbench, "table": table}[sys.argv[1]](*sys.argv[2:])
