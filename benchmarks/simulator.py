"""Simulator throughput: one hour of the Azure code trace at 1 s steps, and a synthetic week at 10 s steps.

    .venv/bin/python -m benchmarks.simulator [--trace ../shared/traces/azure-llm-2023-code.csv] [--repeat 5]

Writes benchmarks/results/simulator.json. Goals: the hour in under 1 s, the week in under 10 s.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.common import ROOT, summarize, write
from overspill.policyfile import load_policy_file
from overspill.simulate import run
from overspill.traces import load, synthetic_week


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trace", default=str(ROOT.parent / "shared/traces/azure-llm-2023-code.csv"))
    ap.add_argument("--policy", default=str(ROOT / "manifests/examples/inference-policy.yaml"))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    spec, targets = load_policy_file(Path(args.policy))
    hour = load(args.trace)
    week = synthetic_week(10.0)
    figures = {}
    for label, trace, step in (("azure_code_hour_1s", hour, 1.0), ("synthetic_week_10s", week, 10.0)):
        seconds = []
        steps = 0
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            summary = run(spec, trace, targets=targets, primary_capacity=8, step=step)
            seconds.append(time.perf_counter() - t0)
            steps = summary.steps
        s = summarize(seconds)
        figures[label] = {"seconds": s, "steps": steps, "steps_per_second_median": round(steps / s["median"])}
    write(
        "simulator",
        {
            "command": "python -m benchmarks.simulator",
            "results": figures,
            "goals": {"azure_code_hour_1s": "< 1 s", "synthetic_week_10s": "< 10 s"},
        },
    )


if __name__ == "__main__":
    main()
