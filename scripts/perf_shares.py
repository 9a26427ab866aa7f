#!/usr/bin/env python3
"""Where `campaign bench`'s CPU time goes, from perf samples (BENCHMARKS.md, fourteenth part).

    perf record -e cpu-clock -F 500 --call-graph dwarf,16384 -o perf.data \\
        ./target/profiling/campaign bench --latency-runs 5 --throughput-runs 8000 \\
        --in-flight 1 --event-runs 1 --spawns 1 --model-runs 1 --bin-dir /nonexistent \\
        --latencies 0,0,0,0
    perf script -i perf.data -F comm,tid,time,ip,sym --no-inline > perf.txt
    scripts/perf_shares.py perf.txt                # samples per quarter second: find the phase
    scripts/perf_shares.py perf.txt 0.8 3.7        # shares of the samples in that window
    scripts/perf_shares.py perf.txt 0.8 3.7 'sqlite::apply_tx$'   # ... by what that frame calls

Times are seconds from the first sample. The throughput phase on the SQLite file is the
first long stretch of ~2 cores' worth of samples (the in-memory floor's follows it). Each
sample is counted once, under the first group below that its stack falls in.
"""

import collections
import re
import signal
import sys

GROUPS = [
    ("the store's groups (commit_group)", r"sqlite::commit_group"),
    ("the built-in generator", r"agents::generate::generate$"),
    ("the audit rules", r"agents::audit::audit$"),
    ("the changes' JSON outside the groups (Written::of)", r"sqlite::Written::of"),
    ("get_state", r"RunStore>::get_state"),
    ("events to the bus (usecases::tell)", r"usecases::tell"),
    ("submit", r"usecases::submit"),
]


def samples(path):
    """(seconds from the first sample, [frames, innermost first]) per sample."""
    start = None
    current = None
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                if current is not None:
                    yield current
                current = None
                continue
            if not line[0].isspace():
                m = re.search(r"(\d+\.\d+):", line)
                if not m:
                    continue
                t = float(m.group(1))
                start = t if start is None else start
                current = (t - start, [])
            elif current is not None:
                parts = line.strip().split(None, 1)
                frame = parts[1] if len(parts) > 1 else "?"
                current[1].append(re.sub(r"\+0x[0-9a-f]+$", "", frame))
    if current is not None:
        yield current


def group(stack):
    for name, pattern in GROUPS:
        if any(re.search(pattern, f) for f in stack):
            return name
    if any(f.startswith(("mi_", "_mi_")) for f in stack[:3]):
        return "the allocator, called from elsewhere"
    if any(f in ("do_syscall_64", "entry_SYSCALL_64_after_hwframe") for f in stack):
        call = next((f for f in stack if f.startswith("__x64_sys_")), None)
        return "kernel: " + (call[len("__x64_sys_"):] if call else "other syscall")
    if stack and re.match(r"(asm_|exc_|irq|__sysvec|sysvec)", stack[0]):
        return "kernel: fault or interrupt"
    if any("campaign_asl::" in f for f in stack):
        return "the state machine and the steps' own code"
    if any("tokio::" in f for f in stack):
        return "tokio, elsewhere"
    return "other"


def under(stack, pattern):
    """The frame just inside the outermost one matching `pattern` ("(self)" when it is
    the innermost); None when no frame matches."""
    hits = [i for i, f in enumerate(stack) if re.search(pattern, f)]
    if not hits:
        return None
    i = hits[-1]
    return stack[i - 1] if i > 0 else "(self)"


def main(argv):
    if len(argv) not in (2, 4, 5):
        sys.exit(__doc__)
    all_samples = list(samples(argv[1]))
    if len(argv) == 2:
        per_quarter = collections.Counter(int(t * 4) for t, _ in all_samples)
        for q in sorted(per_quarter):
            print(f"{q / 4:7.2f} s  {per_quarter[q]}")
        return
    lo, hi = float(argv[2]), float(argv[3])
    window = [stack for t, stack in all_samples if lo <= t <= hi]
    if not window:
        sys.exit(f"no samples between {lo} and {hi} s")
    if len(argv) == 5:
        shares = collections.Counter(
            callee for stack in window if (callee := under(stack, argv[4])) is not None
        )
    else:
        shares = collections.Counter(group(stack) for stack in window)
    print(f"{len(window)} samples between {lo} and {hi} s")
    for name, n in shares.most_common():
        print(f"{100 * n / len(window):6.2f}%  {name}")


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet when piped into head
    main(sys.argv)
