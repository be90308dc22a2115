#!/usr/bin/env python3
"""Compare the criterion benchmarks of two builds, run alternately.

The machines are shared and noisy, so a figure means something only beside
another taken in the same minutes: this runs each benchmark binary of a
"base" build and a "head" build in turn (base, head, base, head, ...) and
prints the medians and head / base.

    # build both (a worktree of the old commit, its own target directory)
    git worktree add /tmp/base <commit>
    (cd /tmp/base && CARGO_TARGET_DIR=/tmp/base-target cargo bench -p buttress-benches --no-run)
    cargo bench -p buttress-benches --no-run
    # compare
    python3 benches/compare_builds.py /tmp/base-target/release/deps target/release/deps \\
        breaker,retry,limit --rounds 2 --seconds 2 [--filter 'limit_layer']
"""

import argparse
import glob
import os
import re
import statistics
import subprocess

UNITS = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}


def newest(deps, name):
    found = [p for p in glob.glob(f"{deps}/{name}-*") if re.fullmatch(rf".*/{name}-[0-9a-f]+", p)]
    return os.path.abspath(max(found, key=os.path.getmtime))


def run(binary, seconds, filt):
    args = [binary, "--bench"] + ([filt] if filt else [])
    args += ["--warm-up-time", "1", "--measurement-time", str(seconds), "--noplot"]
    out = subprocess.run(args, capture_output=True, text=True).stdout
    medians, name = {}, None
    for line in out.splitlines():
        same_line = re.match(r"^(\S.*?)\s+time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
        if same_line:
            medians[same_line.group(1)] = float(same_line.group(2)) * UNITS[same_line.group(3)]
            continue
        own_line = re.match(r"^\s+time:\s+\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
        if own_line and name:
            medians[name] = float(own_line.group(1)) * UNITS[own_line.group(2)]
        elif line and not line[0].isspace() and not line.startswith(("Benchmarking", "Found", "Warning", "Gnuplot")):
            name = line.strip()
    return medians


def show(ns):
    return "-" if ns is None else (f"{ns:.1f} ns" if ns < 1e4 else f"{ns / 1e3:.1f} µs")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base_deps")
    p.add_argument("head_deps")
    p.add_argument("benches", help="comma-separated bench names: breaker,retry,...")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seconds", type=int, default=2)
    p.add_argument("--filter", default=None)
    a = p.parse_args()
    for bench in a.benches.split(","):
        base, head = newest(a.base_deps, bench), newest(a.head_deps, bench)
        runs = {"base": [], "head": []}
        for _ in range(a.rounds):
            runs["base"].append(run(base, a.seconds, a.filter))
            runs["head"].append(run(head, a.seconds, a.filter))
        print(f"## {bench}")
        for key in sorted(set().union(*runs["base"], *runs["head"])):
            b = [r[key] for r in runs["base"] if key in r]
            h = [r[key] for r in runs["head"] if key in r]
            bm = statistics.median(b) if b else None
            hm = statistics.median(h) if h else None
            ratio = f"{hm / bm:.2f}" if bm and hm else "-"
            print(f"{key:70s} base {show(bm):>10s}  head {show(hm):>10s}  head/base {ratio}")


if __name__ == "__main__":
    main()
