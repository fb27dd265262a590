"""The engine of this tree against another tree's, side by side on the same machine in the same minutes.

    git archive e9df82a operator benchmarks manifests | (mkdir -p /tmp/base && tar -x -C /tmp/base)
    .venv/bin/python -m benchmarks.engine_versus --base /tmp/base [--pairs 5]

Each run is a fresh process with `PYTHONPATH` at its tree: it records the inference example policy's replay of the
synthetic week once (60,480 snapshots), then times `decide(explain=False)` over them 5 times and keeps the best
(CPU seconds). The runs alternate (base, this, base, this, ...) so that a shared machine's load falls on both.
Writes benchmarks/results/engine-versus.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

from benchmarks.common import ROOT, write

_RUN = """
import time
from pathlib import Path
from benchmarks.simulator import record
from overspill.decide import decide
from overspill.policyfile import load_policy_file
from overspill.traces import synthetic_week
spec, targets = load_policy_file(Path("manifests/examples/inference-policy.yaml"))
snaps = record(spec, synthetic_week(10.0), targets=targets, primary_capacity=8, step=10.0)
best = []
for _ in range(5):
    t0 = time.process_time()
    for s in snaps:
        decide(spec, s, explain=False)
    best.append(time.process_time() - t0)
print(round(len(snaps) / min(best)))
"""


def rate(tree: str) -> int:
    env = {**os.environ, "PYTHONPATH": f"{tree}/operator:{tree}"}
    out = subprocess.run([sys.executable, "-c", _RUN], cwd=tree, env=env, capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="a tree holding operator/, benchmarks/ and manifests/")
    ap.add_argument("--pairs", type=int, default=5)
    args = ap.parse_args()
    pairs = []
    for _ in range(args.pairs):
        pairs.append((rate(args.base), rate(str(ROOT))))
        print(f"base {pairs[-1][0]:,} this {pairs[-1][1]:,} decisions per CPU-second", file=sys.stderr)
    ratios = [b / a for a, b in pairs]
    write(
        "engine-versus",
        {
            "command": f"python -m benchmarks.engine_versus --base {args.base} --pairs {args.pairs}",
            "load_average": os.getloadavg(),
            "pairs_decisions_per_cpu_second": pairs,
            "base_median": statistics.median(a for a, _ in pairs),
            "this_median": statistics.median(b for _, b in pairs),
            "ratio_median": round(statistics.median(ratios), 2),
        },
    )


if __name__ == "__main__":
    main()
