#!/usr/bin/env python3
"""The WAL frames one local run writes, commit by commit, by the B-tree each page belongs to.

Runs `campaign run` on a fresh SQLite file a few times (so the file has grown past its
first pages), then once more under `strace -e pwrite64`, reads the page number and the
commit mark of every WAL frame header the run wrote (SQLite writes each frame as two
calls: its 24-byte header, then the page), and names each page's table or index with
SQLite's `dbstat` view (Python's sqlite3 module has it). BENCHMARKS.md, issue 15's
seventeenth part, used it with:

    scripts/wal_frames.py target/profiling/campaign --mode sequential

Needs `strace`. The pages a run writes after the file's own growth (page 1 holds the
database's size) are shown as `sqlite_schema`.
"""

import argparse
import collections
import os
import re
import sqlite3
import subprocess
import sys
import tempfile

HEADER = re.compile(r'pwrite64\(\d+, "((?:\\x[0-9a-f]{2})+)"(?:\.\.\.)?, 24, \d+\) = 24')


def frames(trace):
    """(page number, commit mark) of every WAL frame header written, in order."""
    out = []
    with open(trace) as f:
        for line in f:
            m = HEADER.search(line)
            if m:
                b = bytes(int(x, 16) for x in m.group(1).split("\\x")[1:])
                out.append((int.from_bytes(b[0:4], "big"), int.from_bytes(b[4:8], "big")))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("binary", help="a `campaign` binary")
    p.add_argument("--mode", default="sequential", choices=["parallel", "sequential"])
    p.add_argument("--warm", type=int, default=3, help="runs before the one traced")
    p.add_argument("--brief", default="examples/brief.json")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "frames.db")
        run = [a.binary, "run", "--db", db, "--mode", a.mode, a.brief]
        for _ in range(a.warm):
            subprocess.run(run, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        trace = os.path.join(d, "strace.txt")
        subprocess.run(
            ["strace", "-f", "-qq", "-s", "32", "-xx", "-e", "trace=pwrite64", "-o", trace]
            + run,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        written = frames(trace)
        owner = {page: name for name, page in sqlite3.connect(db).execute(
            "SELECT name, pageno FROM dbstat")}
    commits, current = [], []
    for page, commit in written:
        current.append(owner.get(page, f"page {page} (freed since)"))
        if commit:
            commits.append(current)
            current = []
    if not written:
        sys.exit("no WAL frame written: is the binary a `campaign` with the local store?")
    print(f"{len(written)} frames in {len(commits)} commits (one {a.mode} run, "
          f"after {a.warm} on the same file)")
    for c in commits:
        print(f"  {len(c)}: {', '.join(c)}")
    print("by B-tree:")
    for name, n in collections.Counter(n for c in commits for n in c).most_common():
        print(f"  {n:3} {name}")


if __name__ == "__main__":
    main()
