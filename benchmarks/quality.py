"""Decision quality against the oracle: SLO attainment, secondary replica-hours, cost and placement changes for
primary-only, a KEDA-like and a Karmada-like baseline, Overspill with the example policies, Overspill tuned by
`overspill tune`'s search, and the clairvoyant lower bound (`overspill.oracle`), on both Azure LLM traces and a
synthetic CI day.

    .venv/bin/python -m benchmarks.quality [--traces-dir ../shared/traces] [--budget 60] [--plot docs/quality.png]

Writes benchmarks/results/quality.json and prints the markdown table used in docs/benchmarks.md. The Azure LLM
inference trace 2023 (CC-BY 4.0): Patel, Choukse, Zhang, Shah, Goiri, Maleki, Bianchini, "Splitwise: Efficient
generative LLM inference using phase splitting", ISCA 2024.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, ROOT, write
from overspill import oracle
from overspill.api.policy import BurstPolicySpec
from overspill.api.target import BurstTargetSpec
from overspill.policyfile import load_policy_file
from overspill.simulate import ServiceModel, Slo, ceiling, run, strategy_spec
from overspill.traces import RequestLog, load, synthetic_ci_day
from overspill.tune import Knobs, Outcome, Problem, search

BASELINES = (
    ("primary-only", "primary-only"),
    ("KEDA-like (one cluster, 30 s poll)", "keda-like"),
    ("Karmada-like (static overflow, no return)", "static-overflow"),
    ("Overspill, example policy", "overspill"),
)

LOAD_TUNED = "Overspill, tuned, load metric"


@dataclass(frozen=True)
class Case:
    label: str
    spec: BurstPolicySpec
    targets: dict[str, BurstTargetSpec]
    trace: RequestLog
    primary_capacity: int
    model: ServiceModel
    slo: Slo


def cases(traces: Path) -> list[Case]:
    inference, targets = load_policy_file(ROOT / "manifests/examples/inference-policy.yaml")
    ci, ci_targets = load_policy_file(ROOT / "manifests/examples/ci-runner-policy.yaml")
    model = ServiceModel()  # 35 s start-up in the primary, 60 s in a secondary (docs/simulator.md)
    out = []
    for name in ("code", "conv"):
        log = load(traces / f"azure-llm-2023-{name}.csv")
        assert isinstance(log, RequestLog)
        out.append(Case(f"azure-{name} (1 h)", inference, targets, log, 8, model, Slo(30, 0.98)))
    ci_model = ServiceModel(tokens_per_second=1.0, startup_seconds={"primary": 20, "gcp-europe-west4": 60})
    # 95 % of jobs start within 5 minutes. Not 95 % within 120 s: every runner the caps allow (60), Ready all day,
    # starts only 92.2 % of jobs that soon (a merge train of up to 60 jobs queues behind the pool), so no setting can
    # meet it and `overspill tune` refuses it (tests/unit/test_tune.py); the same ceiling reaches 99.5 % within 300 s
    ci_slo = Slo(300, 0.95)
    out.append(Case("ci-day (24 h, synthetic)", ci, ci_targets, synthetic_ci_day(), 20, ci_model, ci_slo))
    return out


def figures(s: Any) -> dict[str, Any]:
    return {
        "slo_attainment": s.slo_attainment,
        "slo_met": s.slo_met,  # the exact share against the target (slo_attainment is rounded)
        "secondary_replica_hours": s.secondary_replica_hours,
        "total_cost": s.total_cost,
        "placement_changes": s.placement_changes,
        "unfinished_requests": s.unfinished_requests,
    }


def dominance(tuned: dict[str, Any], baseline: dict[str, Any], tried: Iterable[Outcome]) -> dict[str, Any]:
    """Issue 14's "tuned dominates the baseline", read two ways, both reported.

    Literal, as the issue words it: the tuned row's SLO attainment at least the baseline's for fewer secondary
    replica-hours. Frontier: some setting the search tried (not necessarily the one recommended, and possibly one
    that misses the SLO: `slo_met` says which) reaches at least the baseline's attainment for no more secondary
    replica-hours: the baseline's point is on or below the cost-SLO frontier of the policy's own knobs. Against
    the example policy that reading holds by construction (the search replays the policy as written first)."""
    att, hours = tuned["slo_attainment"], tuned["secondary_replica_hours"]
    b_att, b_hours = baseline["slo_attainment"], baseline["secondary_replica_hours"]
    met = att >= b_att and hours < b_hours
    if met:
        why = f"{att:.1%} with {hours:.2f} h against {b_att:.1%} with {b_hours:.2f} h"
    elif att == b_att and hours == b_hours:
        why = "equal on both"
    elif hours == b_hours and att > b_att:
        why = f"the same secondary replica-hours ({hours:.2f} h) for {att:.1%} against {b_att:.1%}: not fewer"
    elif b_hours == 0 and not baseline["slo_met"] and att >= b_att:
        why = (
            f"the baseline spends no secondary replica-hours and misses the SLO ({b_att:.1%}): meeting it takes "
            f"secondary hours ({hours:.2f} h for {att:.1%})"
        )
    elif att < b_att and hours > b_hours:
        why = f"lower attainment and more secondary replica-hours ({att:.1%} with {hours:.2f} h)"
    elif att < b_att:
        why = f"lower attainment ({att:.1%} against {b_att:.1%})"
    else:
        why = f"more secondary replica-hours ({hours:.2f} h against {b_hours:.2f} h) for {att:.1%} against {b_att:.1%}"
    covering = [o for o in tried if o.slo_attainment >= b_att and o.secondary_replica_hours <= b_hours]
    best = max(covering, key=lambda o: (o.slo_attainment, -o.secondary_replica_hours), default=None)
    frontier: dict[str, Any] = {"met": best is not None}
    if best is not None:
        frontier |= {
            "slo_attainment": best.slo_attainment,
            "secondary_replica_hours": best.secondary_replica_hours,
            "placement_changes": best.placement_changes,
            "slo_met": best.met,
        }
    return {"met": met, "why": why, "frontier": frontier}


def measure(case: Case, budget: float, workers: int) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "targets": case.targets,
        "primary_capacity": case.primary_capacity,
        "model": case.model,
        "slo": case.slo,
    }
    rows: dict[str, Any] = {}
    for label, strategy in BASELINES:
        rows[label] = figures(run(strategy_spec(case.spec, strategy), case.trace, **kw))
    problem = Problem(case.spec, case.trace, case.targets, case.primary_capacity, case.model, case.slo, 1.0, 0.0)
    tuned = search(problem, budget_seconds=budget, workers=workers, seed=1)
    best = tuned.best
    rows["Overspill, tuned"] = figures(run(best.knobs.apply(case.spec), case.trace, **kw)) | {
        "patch": best.knobs.patch(tuned.before.knobs),
        "evaluated": len(tuned.outcomes),
        "search_seconds": tuned.elapsed_seconds,
    }
    # the same search with the policy's query on load (work arriving per replica, targetPerReplica from 1) instead
    # of requests not finished: how much of the gap to the oracle is the metric rather than the knobs
    load_spec = case.spec.model_copy(update={"metric": case.spec.metric.model_copy(update={"target_per_replica": 1.0})})
    load_model = replace(case.model, metric="load")
    load_problem = Problem(load_spec, case.trace, case.targets, case.primary_capacity, load_model, case.slo, 1.0, 0.0)
    tuned_load = search(load_problem, budget_seconds=budget, workers=workers, seed=1)
    best_load = tuned_load.best
    rows[LOAD_TUNED] = figures(run(best_load.knobs.apply(load_spec), case.trace, **(kw | {"model": load_model}))) | {
        "patch": best_load.knobs.patch(Knobs.of(case.spec)),
        "evaluated": len(tuned_load.outcomes),
        "search_seconds": tuned_load.elapsed_seconds,
    }
    bound = oracle.bound(
        case.spec,
        case.trace,
        targets=case.targets,
        primary_capacity=case.primary_capacity,
        model=case.model,
        slo=case.slo,
    )
    # every replica the caps allow, Ready all the time: the highest attainment any schedule reaches
    most = ceiling(case.spec, case.trace, **kw)
    feasible = bound.feasible and bool(most.slo_met)
    rows["oracle (clairvoyant lower bound)"] = {
        "slo_attainment": case.slo.target if feasible else None,
        "ceiling_slo_attainment": most.slo_attainment,
        "lp_feasible": bound.feasible,
        "secondary_replica_hours": bound.replica_hours,
        "rounded_replica_hours": bound.rounded_replica_hours,
        "rounding_gap_hours": bound.rounding_gap_hours,
        "interval_seconds": bound.interval_seconds,
        "solve_seconds": bound.solve_seconds,
        "feasible": feasible,
    }
    for label, r in rows.items():
        if "oracle" not in label:
            hours = r["secondary_replica_hours"]
            r["oracle_ratio"] = round(hours / bound.replica_hours, 2) if bound.replica_hours > 0 else None
    for tuned_label, result in (("Overspill, tuned", tuned), (LOAD_TUNED, tuned_load)):
        t = rows[tuned_label]
        tried = result.outcomes.values()
        t["dominates"] = {label: dominance(t, rows[label], tried) for label, _ in BASELINES}
    return {"slo": {"wait_seconds": case.slo.wait_seconds, "target": case.slo.target}, "rows": rows}


def table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| trace (SLO) | strategy | SLO attainment | secondary replica-h | ratio to oracle | cost | changes |",
        "|---|---|---|---|---|---|---|",
    ]
    for trace, res in results.items():
        slo = res["slo"]
        where = f"{trace} ({slo['target']:.0%} wait <= {slo['wait_seconds']:g} s)"
        for label, r in res["rows"].items():
            att = "-" if r["slo_attainment"] is None else f"{r['slo_attainment']:.1%}"
            if "oracle" in label and not r.get("feasible", True):
                ceil = r.get("ceiling_slo_attainment")
                ratio = "infeasible" + ("" if ceil is None else f": all replicas Ready all the time reach {ceil:.1%}")
            elif "oracle" in label:
                ratio = "1 (bound)"
            elif not r.get("slo_met", r["slo_attainment"] >= slo["target"]):
                ratio = "misses the SLO"
            else:
                ratio = "-" if r["oracle_ratio"] is None else f"{r['oracle_ratio']}x"
            cost = r.get("total_cost", "-")
            changes = r.get("placement_changes", "-")
            lines.append(
                f"| {where} | {label} | {att} | {r['secondary_replica_hours']:.2f} | {ratio} | {cost} | {changes} |"
            )
    return lines


def dominance_table(results: dict[str, Any]) -> list[str]:
    """Per trace, tuned row and baseline: dominated as the issue words it, and whether a setting the search tried
    covers the baseline's point (the frontier reading)."""
    lines = [
        "| trace | tuned row | baseline | tuned dominates it | a setting tried reaches it | why not (literal) |",
        "|---|---|---|---|---|---|",
    ]
    for trace, res in results.items():
        for label, r in res["rows"].items():
            for baseline, d in r.get("dominates", {}).items():
                f = d["frontier"]
                reach = "no"
                if f["met"]:
                    reach = f"yes: {f['slo_attainment']:.1%} with {f['secondary_replica_hours']:.2f} h"
                    reach += f", {f['placement_changes']} changes"
                    reach += ", meets the SLO" if f.get("slo_met") else ", misses the SLO"
                lines.append(
                    f"| {trace} | {label} | {baseline} | {'yes' if d['met'] else 'no'} | {reach} | "
                    f"{'-' if d['met'] else d['why']} |"
                )
    return lines


def plot(results: dict[str, Any], out: str) -> None:
    from overspill.plot import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4.4), squeeze=False)
    for ax, (trace, res) in zip(axes[0], results.items(), strict=True):
        for i, (label, r) in enumerate(res["rows"].items()):
            if "oracle" in label:
                ax.axvline(r["secondary_replica_hours"], color="#b07aa1", ls="--", lw=1, label="oracle (lower bound)")
                continue
            ax.scatter(r["secondary_replica_hours"], r["slo_attainment"], s=40, label=label, color=f"C{i}")
        ax.axhline(res["slo"]["target"], color="black", ls=":", lw=1, label="SLO target")
        ax.set_title(f"{trace}: {res['slo']['target']:.0%} within {res['slo']['wait_seconds']:g} s", fontsize=9)
        ax.set_xlabel("secondary replica-hours")
        ax.set_ylabel("SLO attainment")
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces-dir", default=str(ROOT.parent / "shared/traces"))
    ap.add_argument("--budget", type=float, default=60.0, help="seconds of tuning per trace")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--plot", default=str(ROOT / "docs/quality.png"))
    ap.add_argument("--from-json", action="store_true", help="redraw the table and plot from the last results")
    args = ap.parse_args()
    if args.from_json:
        saved = json.loads((RESULTS / "quality.json").read_text())
        if args.plot:
            plot(saved["results"], args.plot)
        print("\n".join(table(saved["results"])))
        print("\n".join(["", *dominance_table(saved["results"])]))
        return
    results = {c.label: measure(c, args.budget, args.workers) for c in cases(Path(args.traces_dir))}
    lines = table(results)
    dominance_lines = dominance_table(results)
    if args.plot:
        plot(results, args.plot)
    write(
        "quality",
        {
            "command": f"python -m benchmarks.quality --budget {args.budget:g}",
            "workers": args.workers,
            "results": results,
            "table": lines,
            "dominance_table": dominance_lines,
        },
    )
    print("\n".join([*lines, "", *dominance_lines]))


if __name__ == "__main__":
    main()
