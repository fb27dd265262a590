"""What knowing the future is worth: the same engine and the same search as `overspill tune`, on a load metric that
looks `h` seconds ahead (a perfect forecast of the work arriving, `ServiceModel.forecast_seconds`), against the
clairvoyant bound (`overspill.oracle`).

    .venv/bin/python -m benchmarks.foresight [--traces-dir ../shared/traces] [--budget 45] [--horizons 0,30,60,90]

h = 0 is the load query a user can write (`tune --metric load`); h = 60 foresees one secondary start-up, h = 90 a
start-up and the SLO's wait. The tuned ratio at each h splits the gap to the bound: what falls as h grows is the price
of not knowing the future (for this engine); what stays at the largest h is the price of a threshold policy on a
one-minute rate (and of the bound choosing which 2 % of requests to give up). Inference case of
`benchmarks.quality`: primary capacity 8, start-up 35 s / 60 s, SLO 98 % within 30 s.

Writes benchmarks/results/foresight.json and prints the markdown table used in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, write
from benchmarks.quality import cases
from overspill import oracle
from overspill.simulate import ServiceModel
from overspill.tune import Problem, search


def measure(traces: Path, horizons: list[float], budget: float, workers: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for case in cases(traces):
        if not case.label.startswith("azure"):
            continue
        bound = oracle.bound(
            case.spec,
            case.trace,
            targets=case.targets,
            primary_capacity=case.primary_capacity,
            model=case.model,
            slo=case.slo,
        )
        spec = case.spec.model_copy(update={"metric": case.spec.metric.model_copy(update={"target_per_replica": 1.0})})
        rows: dict[str, Any] = {}
        for h in horizons:
            model = ServiceModel(
                tokens_per_second=case.model.tokens_per_second,
                startup_seconds=case.model.startup_seconds,
                metric="load",
                forecast_seconds=h,
            )
            problem = Problem(spec, case.trace, case.targets, case.primary_capacity, model, case.slo, 1.0, 0.0)
            found = search(problem, budget_seconds=budget, workers=workers, seed=1)
            best = found.best
            rows[f"{h:g}"] = {
                "forecast_seconds": h,
                "slo_attainment": best.slo_attainment,
                "slo_met": best.met,
                "secondary_replica_hours": best.secondary_replica_hours,
                "placement_changes": best.placement_changes,
                "oracle_ratio": round(best.secondary_replica_hours / bound.replica_hours, 2) if best.met else None,
                "patch": best.knobs.patch(found.before.knobs),
                "evaluated": len(found.outcomes),
                "search_seconds": found.elapsed_seconds,
            }
            print(case.label, rows[f"{h:g}"], flush=True)
        out[case.label] = {
            "slo": {"wait_seconds": case.slo.wait_seconds, "target": case.slo.target},
            "oracle_replica_hours": bound.replica_hours,
            "oracle_rounded_replica_hours": bound.rounded_replica_hours,
            "rows": rows,
        }
    return out


def table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| trace (SLO) | load metric looks ahead | SLO attainment | secondary replica-h | ratio to oracle | changes | "
        "settings tried |",
        "|---|---|---|---|---|---|---|",
    ]
    for trace, res in results.items():
        slo = res["slo"]
        where = f"{trace} ({slo['target']:.0%} wait <= {slo['wait_seconds']:g} s)"
        for r in res["rows"].values():
            ahead = "0 s (a real query)" if not r["forecast_seconds"] else f"{r['forecast_seconds']:g} s"
            ratio = f"{r['oracle_ratio']}x" if r["slo_met"] else "misses the SLO"
            lines.append(
                f"| {where} | {ahead} | {r['slo_attainment']:.1%} | {r['secondary_replica_hours']:.2f} | {ratio} | "
                f"{r['placement_changes']} | {r['evaluated']} |"
            )
        bound = res["oracle_replica_hours"]
        lines.append(
            f"| {where} | oracle (clairvoyant lower bound) | {slo['target']:.1%} | {bound:.2f} | 1 (bound) | - | - |"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces-dir", default=str(ROOT.parent / "shared/traces"))
    ap.add_argument("--budget", type=float, default=45.0, help="seconds of tuning per trace and horizon")
    ap.add_argument("--horizons", default="0,30,60,90", help="seconds the load metric looks ahead, comma-separated")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    horizons = [float(h) for h in args.horizons.split(",")]
    results = measure(Path(args.traces_dir), horizons, args.budget, args.workers)
    lines = table(results)
    write(
        "foresight",
        {
            "command": f"python -m benchmarks.foresight --budget {args.budget:g} --horizons {args.horizons}",
            "workers": args.workers,
            "results": results,
            "table": lines,
        },
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
