#!/usr/bin/env python3
"""CPU time per run of each thread of `campaign bench` over its throughput phase.

Runs the given bench command REPS times, reads every thread's user+system time from
/proc while the throughput phase runs (between the bench's "throughput, N runs" and
"in-memory store" progress lines), and prints, per run of the command: throughput, the
floors, and the CPU microseconds per measured run of the store's thread and of the Tokio
workers. BENCHMARKS.md, issue 15's eleventh part, used it with:

    scripts/thread-cpu.py 3 ./target/release/campaign bench --latency-runs 1 \\
        --throughput-runs 10000 --in-flight 1 --event-runs 1 --spawns 1 --model-runs 1 \\
        --bin-dir /nonexistent
"""
import collections
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HZ = os.sysconf("SC_CLK_TCK")


def threads(pid):
    """{tid: (name, user+system ticks)} of a process's threads now."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[tid] = (name, int(fields[11]) + int(fields[12]))
    return out


def one(cmd):
    with tempfile.NamedTemporaryFile("w+", suffix=".out") as log:
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        start, latest, spent = None, {}, None
        while p.poll() is None:
            time.sleep(0.02)
            text = open(log.name).read()
            if start is None and "bench: throughput, " in text:
                start = threads(p.pid)
            if start is not None and spent is None:
                if "in-memory store" in text:
                    spent = collections.Counter()
                    for tid, (name, t) in latest.items():
                        spent[name] += t - start.get(tid, (name, 0))[1]
                else:
                    latest.update(threads(p.pid))
        text = open(log.name).read()
    if p.returncode != 0 or spent is None:
        sys.exit(f"the bench failed (exit {p.returncode}):\n{text[-2000:]}")
    figure = lambda pattern: float(re.search(pattern, text).group(1))
    n = figure(r"throughput, (\d+) runs to completed")
    return {
        "runs/s": figure(r"\| throughput, \d+ runs to completed, instant agents \| (\d+) runs/s"),
        "in-memory": figure(r"\| floor: throughput, in-memory store(?:, \d+ runs)? \| (\d+) runs/s"),
        "durable floor": figure(r"\| floor: throughput, a run.s [\d.]+ writes each one such commit \| (\d+) runs/s"),
        "store us/run": spent["sqlite-store"] / HZ * 1e6 / n,
        "workers us/run": spent["tokio-rt-worker"] / HZ * 1e6 / n,
    }


def main():
    if len(sys.argv) < 3 or not sys.argv[1].isdigit():
        sys.exit(__doc__)
    rows = [one(sys.argv[2:]) for _ in range(int(sys.argv[1]))]
    for r in rows:
        print("  ".join(f"{k} {v:.0f}" for k, v in r.items()), f" ratio {r['runs/s'] / r['durable floor']:.2f}", flush=True)
    print("median", "  ".join(f"{k} {statistics.median(r[k] for r in rows):.0f}" for k in rows[0]))


if __name__ == "__main__":
    main()
