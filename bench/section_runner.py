"""Running a benchmark's sections, each in a fresh subprocess, and printing the medians of its runs.

A benchmark script names its sections ``{name: (function(size) -> figures, default size)}`` and calls
`main`; the script runs itself again with ``--child NAME`` for every run, so each run's peak resident
memory is its own (`peak_rss_mib`). Numeric figures are reported as medians over the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from collections.abc import Callable, Mapping

Sections = Mapping[str, tuple[Callable[[int], dict], int]]


def main(script: str, description: str, sections: Sections, *, size_flag: str, size_help: str) -> None:
    """Parse the command line of `script` and run its sections (or, with --child, one run of one section)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=sorted(sections), action="append")
    parser.add_argument(
        size_flag, dest="size", metavar=size_flag.lstrip("-").upper(), type=int, default=None, help=size_help
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        fn, default = sections[args.child]
        out = fn(args.size or default)
        out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(out))
        return
    print(f"cores: {os.cpu_count()}, runs per section: {args.runs}")
    for name in args.only or list(sections):
        runs = []
        for _ in range(args.runs):
            cmd = [sys.executable, script, "--child", name] + ([size_flag, str(args.size)] if args.size else [])
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode:
                sys.exit(f"{name} failed:\n{proc.stderr[-4000:]}")
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        keys = [k for k, v in runs[0].items() if isinstance(v, int | float)]
        median = {k: statistics.median(r[k] for r in runs) for k in keys}
        width = max(28, *(len(k) for k in keys))
        print(f"\n[{name}] medians of {len(runs)} runs")
        for k in keys:
            v = median[k]
            print(f"  {k:{width}s} {v:,.6g}" if isinstance(v, float) else f"  {k:{width}s} {v}")
