"""Simulator and engine throughput.

    .venv/bin/python -m benchmarks.simulator [--traces-dir ../shared/traces] [--repeat 5]

- engine: the decisions of a replay recorded once (snapshot with its memory), then `decide` timed alone over
  them, on one core: decisions per CPU-second of the engine itself;
- replay: whole `simulate.run` calls (service model, cluster states, snapshots and accounting included), the same
  policies and traces, plus 1 h of the Azure code trace at 1 s steps: decisions per CPU-second of a replay, what
  `simulate` and `tune` get (issue 14's goal, >= 100,000 per second on one core in replay, and its 28,000
  baseline are this figure; `decide` alone is the engine's share of it).

Both are CPU seconds of this process (one core, whatever else the shared machine runs), the median of `--repeat`
runs; the load average before and after is in the JSON.

Before timing anything it checks that the engine and the replay still decide as recorded (`benchmarks.golden`:
random engine scenarios, the repo's sample trace, the synthetic shapes and the Azure traces), and says so in the JSON.

Writes benchmarks/results/simulator.json.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from benchmarks import golden
from benchmarks.common import ROOT, commit, summarize, write
from overspill import simulate
from overspill.api.policy import BurstPolicySpec, Predictive
from overspill.decide import Snapshot, decide
from overspill.policyfile import load_policy_file
from overspill.traces import MetricTrace, RequestLog, load, synthetic_ci_day, synthetic_week


def record(spec: BurstPolicySpec, trace: MetricTrace | RequestLog, **kw: Any) -> list[Snapshot]:
    """Every snapshot the engine sees in a replay, with the memory it carried."""
    seen: list[Snapshot] = []
    real = simulate.decide

    def spy(s: BurstPolicySpec, snap: Snapshot, **kw: Any) -> Any:
        seen.append(snap)
        return real(s, snap, **kw)

    simulate.decide = spy  # type: ignore[assignment]
    try:
        simulate.run(spec, trace, **kw)
    finally:
        simulate.decide = real  # type: ignore[assignment]
    return seen


def engine_rate(spec: BurstPolicySpec, snaps: list[Snapshot], repeat: int) -> dict[str, Any]:
    """CPU time of this process (one core, whatever else the shared machine runs) and wall time, with the
    message formatted (as the operator does) and without (as simulate and tune do)."""
    out: dict[str, Any] = {"decisions": len(snaps)}
    for label, explain in (("with_message", True), ("replay", False)):
        cpu, wall = [], []
        for _ in range(repeat):
            c0, w0 = time.process_time(), time.perf_counter()
            for snap in snaps:
                decide(spec, snap, explain=explain)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        c, w = summarize(cpu), summarize(wall)
        out[label] = {
            "cpu_seconds": c,
            "wall_seconds": w,
            "decisions_per_cpu_second_median": round(len(snaps) / c["median"]),
            "decisions_per_wall_second_median": round(len(snaps) / w["median"]),
        }
    return out


def replay_rate(
    spec: BurstPolicySpec, trace: MetricTrace | RequestLog, kw: dict[str, Any], repeat: int
) -> dict[str, Any]:
    """Whole `simulate.run` calls: CPU and wall seconds, decisions and steps per CPU-second (medians)."""
    cpu, wall = [], []
    summary = None
    for _ in range(repeat):
        c0, w0 = time.process_time(), time.perf_counter()
        summary = simulate.run(spec, trace, **kw)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    assert summary is not None
    c, w = summarize(cpu), summarize(wall)
    return {
        "cpu_seconds": c,
        "wall_seconds": w,
        "steps": summary.steps,
        "decisions": summary.decisions,
        "decisions_per_cpu_second_median": round(summary.decisions / c["median"]),
        "decisions_per_wall_second_median": round(summary.decisions / w["median"]),
        "steps_per_cpu_second_median": round(summary.steps / c["median"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces-dir", default=str(ROOT.parent / "shared/traces"))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    changed = golden.compare(Path(args.traces_dir) if Path(args.traces_dir).is_dir() else None)
    if changed:
        raise SystemExit(f"decisions differ from tests/data/golden-decisions.json: {'; '.join(changed)}")
    spec, targets = load_policy_file(ROOT / "manifests/examples/inference-policy.yaml")
    ci, ci_targets = load_policy_file(ROOT / "manifests/examples/ci-runner-policy.yaml")
    predictive = spec.model_copy(
        update={"behavior": spec.behavior.model_copy(update={"predictive": Predictive(enabled=True, lead_seconds=60)})}
    )
    code = load(Path(args.traces_dir) / "azure-llm-2023-code.csv")
    week = synthetic_week(10.0)
    ci_day = synthetic_ci_day()
    ci_model = simulate.ServiceModel(tokens_per_second=1.0, startup_seconds={"primary": 20, "gcp-europe-west4": 60})
    load_before = [round(x, 2) for x in os.getloadavg()]
    week_kw = {"targets": targets, "primary_capacity": 8, "step": 10.0}
    cases: tuple[tuple[str, BurstPolicySpec, MetricTrace | RequestLog, dict[str, Any]], ...] = (
        ("inference_policy_synthetic_week", spec, week, week_kw),
        ("inference_predictive_synthetic_week", predictive, week, week_kw),
        ("ci_runner_policy_ci_day", ci, ci_day, {"targets": ci_targets, "primary_capacity": 20, "model": ci_model}),
    )
    engine = {label: engine_rate(s, record(s, trace, **kw), args.repeat) for label, s, trace, kw in cases}
    code_case = ("azure_code_hour_1s", spec, code, {"targets": targets, "primary_capacity": 8, "step": 1.0})
    replay = {label: replay_rate(s, trace, kw, args.repeat) for label, s, trace, kw in (*cases, code_case)}
    headline = "inference_policy_synthetic_week"
    write(
        "simulator",
        {
            "command": f"python -m benchmarks.simulator --repeat {args.repeat}",
            "commit": commit(),
            "decisions_unchanged": "every decision equals the record (benchmarks.golden, Azure traces included)",
            "load_average_before_1_5_15_minutes": load_before,
            "headline": {
                "case": headline,
                "decide_alone_decisions_per_cpu_second_median": engine[headline]["replay"][
                    "decisions_per_cpu_second_median"
                ],
                "whole_replay_decisions_per_cpu_second_median": replay[headline]["decisions_per_cpu_second_median"],
            },
            "engine": engine,
            "replay": replay,
            "goals": {"whole_replay_decisions_per_cpu_second": ">= 100000 on one core (issue 14)"},
        },
    )


if __name__ == "__main__":
    main()
