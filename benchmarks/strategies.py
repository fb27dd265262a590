"""Overspill vs primary-only scaling vs static overflow (never returns), and predictive bursting on/off, on the
Azure LLM traces and a CI-shaped synthetic day. Queue time and secondary replica-hours, per strategy.

    .venv/bin/python -m benchmarks.strategies [--traces-dir ../shared/traces]

Writes benchmarks/results/strategies.json and prints the markdown table used in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, write
from overspill.api.policy import Predictive
from overspill.policyfile import load_policy_file
from overspill.simulate import ServiceModel, Summary, run, strategy_spec
from overspill.traces import load, synthetic_ci_day

STRATEGIES = ("primary-only", "static-overflow", "overspill")


def row(s: Summary) -> dict[str, Any]:
    return {
        "mean_latency_seconds": s.mean_latency_seconds,
        "p95_latency_seconds": s.p95_latency_seconds,
        "queue_over_target_seconds": s.queue_over_target_seconds,
        "secondary_replica_hours": s.secondary_replica_hours,
        "cost": s.total_cost,
        "placement_changes": s.placement_changes,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces-dir", default=str(ROOT.parent / "shared/traces"))
    args = ap.parse_args()
    inference, targets = load_policy_file(ROOT / "manifests/examples/inference-policy.yaml")
    ci, ci_targets = load_policy_file(ROOT / "manifests/examples/ci-runner-policy.yaml")
    cases = [
        (
            "azure-code (1 h)",
            inference,
            targets,
            load(Path(args.traces_dir) / "azure-llm-2023-code.csv"),
            8,
            ServiceModel(),
        ),
        (
            "azure-conv (1 h)",
            inference,
            targets,
            load(Path(args.traces_dir) / "azure-llm-2023-conv.csv"),
            8,
            ServiceModel(),
        ),
        (
            "ci-day (24 h, synthetic)",
            ci,
            ci_targets,
            synthetic_ci_day(),
            20,
            ServiceModel(tokens_per_second=1.0, startup_seconds={"primary": 20, "gcp-europe-west4": 60}),
        ),
    ]
    results: dict[str, Any] = {}
    lines = [
        "| trace | strategy | mean completion time (s) | p95 (s) | queue above target (s) | secondary replica-h |"
        " cost | changes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, spec, tgts, trace, cap, model in cases:
        results[label] = {}
        for strategy in STRATEGIES:
            s = run(strategy_spec(spec, strategy), trace, targets=tgts, primary_capacity=cap, step=1.0, model=model)
            r = results[label][strategy] = row(s)
            lines.append(
                f"| {label} | {strategy} | {r['mean_latency_seconds']} | {r['p95_latency_seconds']} | "
                f"{r['queue_over_target_seconds']:.0f} | {r['secondary_replica_hours']} | {r['cost']} | "
                f"{r['placement_changes']} |"
            )
    # predictive bursting: the same inference policy with a 60 s lead
    pred = inference.model_copy(
        update={
            "behavior": inference.behavior.model_copy(update={"predictive": Predictive(enabled=True, lead_seconds=60)})
        }
    )
    code = cases[0][3]
    off = row(run(inference, code, targets=targets, primary_capacity=8))
    on = row(run(pred, code, targets=targets, primary_capacity=8))
    results["predictive-azure-code"] = {"off": off, "on_lead_60s": on}
    lines += [
        "",
        "| azure-code, overspill | mean completion time (s) | p95 (s) | secondary replica-h | cost |",
        "|---|---|---|---|---|",
        f"| predictive off | {off['mean_latency_seconds']} | {off['p95_latency_seconds']} | "
        f"{off['secondary_replica_hours']} | {off['cost']} |",
        f"| predictive on (lead 60 s) | {on['mean_latency_seconds']} | {on['p95_latency_seconds']} | "
        f"{on['secondary_replica_hours']} | {on['cost']} |",
    ]
    write("strategies", {"command": "python -m benchmarks.strategies", "results": results, "table": lines})
    print("\n".join(lines))


if __name__ == "__main__":
    main()
