#!/usr/bin/env python3
"""Instructions per run of the local engine, without the fixed costs: callgrind runs
`campaign bench` twice, with a small and a large throughput phase, and each figure is
the difference between the two runs divided by the difference in runs completed.

Every phase of the bench but throughput is the same size in both runs (one latency run,
one run in flight, one event run, one spawn, one model run, no burst: its admissions
vary), and so is the in-memory floor's throughput phase (--floor-throughput-runs): the
added runs are all on the SQLite file. Every run, whichever phase it belongs to,
completes through the same close step, so the runs are counted there (calls of the drop
of `close::execution_ended`'s future). With --with-floor the floor's phase grows too and
half the added runs are the in-memory store's (whose journal is kept in memory): how
this script measured before it could tell them apart, and how the figures of
BENCHMARKS' fifteenth part and earlier were taken.

The store's groups (`commit_group`) are run by whichever request leads them, and what a
run costs there moves with how many requests share a transaction (651k and 669k per run
in two measurements of one binary, --with-floor, alone); what runs outside them moved by
~3k (771.7k and 769.0k). With two of these scripts running side by side, one binary's
groups moved by up to ~50k (471.7k, 473.0k, 524.0k) and the rest by up to ~23k, and the
groups took more than alone (BENCHMARKS.md, sixteenth part): compare binaries measured
the same way, several times, or single functions' figures, which hold steadier. The
bench's runs share one brief, so per-brief caches always hit. Instruction counts, not
time: the same on a busy host.

Usage (a `profiling` build of the CLI with the bench feature):
    cargo build --profile profiling -p campaign-cli --features bench --bin campaign
    scripts/callgrind_per_run.py target/profiling/campaign [--small 300] [--large 900] \
        [--with-floor] [--keep DIR] [FUNCTION-SUBSTRING ...]

Each FUNCTION-SUBSTRING adds a line: the inclusive instructions per run of the first
function whose callgrind name contains it (e.g. 'agents::audit::audit [').
Takes one to two and a half minutes on the project's machines (47 s a binary on an AMD EPYC
host, BENCHMARKS.md eighteenth part).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

BENCH = [
    "bench", "--latency-runs", "1", "--in-flight", "1", "--event-runs", "1",
    "--spawns", "1", "--model-runs", "1", "--bin-dir", "/nonexistent",
    "--latencies", "0,0,0,0", "--burst-limit", "0", "--json",
]
STORE_GROUPS = "sqlite::commit_group ["
RUN_CLOSED = re.compile(
    r"\(([\d,]+)x\)[^\n]*\n[^\n]*\*  [^\n]*"
    r"drop_in_place<campaign_shared::usecases::close::execution_ended::\{\{closure\}\}> "
)


def profile(binary, runs, floor_runs, out_dir):
    """Callgrind's inclusive totals by function, and the runs completed."""
    out = os.path.join(out_dir, f"callgrind-{runs}.out")
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary]
        + BENCH
        + ["--throughput-runs", str(runs), "--floor-throughput-runs", str(floor_runs)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    inclusive = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", out],
        check=True, capture_output=True, text=True,
    ).stdout
    callers = subprocess.run(
        ["callgrind_annotate", "--tree=caller", out],
        check=True, capture_output=True, text=True,
    ).stdout
    totals = {}
    for line in inclusive.splitlines():
        if "Auto-annotated source" in line:
            break
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*)$", line)
        if m and m.group(2) not in totals:
            totals[m.group(2)] = int(m.group(1).replace(",", ""))
    closed = RUN_CLOSED.search(callers)
    if not closed:
        sys.exit(f"no run completed in {out}: is {binary} a profiling build with the bench?")
    return totals, int(closed.group(1).replace(",", ""))


def first(totals, needle):
    for name, value in totals.items():
        if needle in name:
            return value
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("binary")
    p.add_argument("functions", nargs="*")
    p.add_argument("--small", type=int, default=300)
    p.add_argument("--large", type=int, default=900)
    p.add_argument("--keep", help="directory to keep the callgrind files in")
    p.add_argument("--with-floor", action="store_true",
                   help="grow the in-memory floor's throughput phase too (half the added runs)")
    a = p.parse_intermixed_args()
    out_dir = a.keep or tempfile.mkdtemp(prefix="callgrind-per-run-")
    os.makedirs(out_dir, exist_ok=True)
    small, small_runs = profile(a.binary, a.small, a.small, out_dir)
    large, large_runs = profile(a.binary, a.large, a.large if a.with_floor else a.small, out_dir)
    n = large_runs - small_runs
    per_run = lambda needle: (first(large, needle) - first(small, needle)) / n
    total = per_run("PROGRAM TOTALS")
    groups = per_run(STORE_GROUPS)
    added = "both stores'" if a.with_floor else "the SQLite file's"
    print(f"runs completed: {small_runs} and {large_runs} (+{n}, {added})")
    print(f"instructions per run: {total:,.0f}")
    print(f"  in the store's groups: {groups:,.0f}")
    print(f"  outside them: {total - groups:,.0f}")
    for needle in a.functions:
        print(f"  {needle}: {per_run(needle):,.0f}")
    if not a.keep:
        for f in os.listdir(out_dir):
            os.remove(os.path.join(out_dir, f))
        os.rmdir(out_dir)


if __name__ == "__main__":
    main()
