"""Decisions of record: digests of what the engine and the replay decide, so speed work can prove it changed none.

    .venv/bin/python -m benchmarks.golden            # compare with tests/data/golden-decisions.json
    .venv/bin/python -m benchmarks.golden --write    # record (only when a change of behaviour is intended)

Three families, each serialized with `repr` (every field, floats exactly) and hashed:
- `engine`: seeded random scenarios covering every branch of `decide` (paused, metric missing with each fallback,
  predictive, stuck and full targets, unschedulable primary pods, busy and unknown-busy pods, unhealthy and
  disallowed targets, dwell, make-before-break at maxReplicas), each a run of decisions carrying memory, both with
  and without the message;
- `replay`: `simulate.run` timelines and summaries on the repo's sample trace and the synthetic shapes (the CI day
  also with the load metric and with a slow secondary);
- `shared`: the same on the Azure traces in ../shared/traces (checked by `benchmarks.simulator`, not by unit tests,
  which must not depend on files outside the repo).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT
from overspill import simulate
from overspill.api import BurstPolicySpec, parse_policy_spec
from overspill.decide import ClusterState, Decision, Memory, Snapshot, TargetState, decide
from overspill.policyfile import load_policy_file
from overspill.traces import MetricTrace, RequestLog, load, synthetic_ci_day, synthetic_week

GOLDEN = ROOT / "tests/data/golden-decisions.json"
SCENARIOS = 1500
CHUNK = 100  # scenarios per digest: a mismatch names a small range to replay
STEPS = 10
NAMES = ("aws", "gcp", "azure")


def _spec(rng: random.Random) -> BurstPolicySpec:
    lo = rng.randint(0, 4)
    hi = rng.randint(max(lo, 1), 40)
    ci = rng.random() < 0.35
    targets = [
        {"name": n, "priority": rng.randint(0, 2), "maxReplicas": rng.choice([None, rng.randint(0, 15)])}
        for n in NAMES[: rng.randint(0, 3)]
    ]
    fallback: dict[str, Any] = rng.choice(
        [
            {"onMetricUnavailable": "Hold"},
            {"onMetricUnavailable": "UseReplicas", "replicas": rng.randint(lo, hi)},
        ]
    )
    behavior: dict[str, Any] = {
        "pollIntervalSeconds": rng.choice([5, 10, 30]),
        "scaleUpStabilizationSeconds": rng.choice([0, 0, 30]),
        "scaleDownStabilizationSeconds": rng.choice([0, 60, 300]),
        "minBurstDurationSeconds": rng.choice([0, 60, 120]),
        "returnSurge": rng.choice([0, 1, 2]),
    }
    if rng.random() < 0.3:
        behavior["predictive"] = {
            "enabled": rng.random() < 0.8,
            "leadSeconds": rng.choice([30, 60, 180]),
            "windowSeconds": rng.choice([30, 60, 240]),
        }
    raw: dict[str, Any] = {
        "workloadRef": {"name": "w"},
        "metric": {
            "prometheus": {"query": "q"},
            "targetPerReplica": rng.choice([1, 2.5, 5, 10]),
            "activationThreshold": rng.choice([0, 0, 3]),
        },
        "minReplicas": lo,
        "maxReplicas": hi,
        "primary": {
            "maxReplicas": rng.choice([None, rng.randint(0, hi)]),
            "pendingGracePeriodSeconds": rng.choice([0, 20]),
            "capacityRecheckSeconds": rng.choice([30, 300]),
        },
        "targets": targets,
        "workloadClass": "CIRunner" if ci else "Inference",
        "behavior": behavior,
        "fallback": fallback,
        "mode": rng.choice(["Active"] * 8 + ["DryRun", "Paused"]),
    }
    if ci:
        raw["busy"] = {"podAnnotation": "busy"}
    return parse_policy_spec(raw)


def _cluster(rng: random.Random, max_n: int, placed: int | None = None) -> ClusterState:
    """Random, or (half the runs) following the last decision: its replicas, some of them not yet Ready."""
    n = rng.randint(0, max_n) if placed is None else placed
    ready = rng.randint(0, n)
    scheduled = rng.randint(0, n)
    return ClusterState(
        replicas=n,
        ready=ready,
        busy=rng.randint(0, n),
        unschedulable=rng.choice([0, 0, rng.randint(0, n - ready)]),
        busy_unknown=rng.choice([0, 0, 0, rng.randint(0, n)]),
        scheduled=scheduled,
        room=rng.choice([None, 0, rng.randint(0, 10)]),
        stuck=rng.choice([0, 0, 0, rng.randint(0, n - scheduled)]),
    )


def _snapshot(rng: random.Random, spec: BurstPolicySpec, now: float, memory: Memory, last: Decision | None) -> Snapshot:
    follow = last is not None and rng.random() < 0.5
    targets = tuple(
        TargetState(
            name=t.name,
            state=_cluster(rng, 15, last.placement.targets.get(t.name) if follow and last else None),
            healthy=rng.random() < 0.85,
            allowed=rng.random() < 0.9,
            priority=t.priority,
            cost_per_replica_hour=rng.choice([None, 1.0, 2.5]),
            cap=t.max_replicas if rng.random() < 0.8 else rng.choice([None, rng.randint(0, 10)]),
        )
        for t in spec.targets
    )
    metric = None if rng.random() < 0.1 else rng.choice([0.0, rng.uniform(0, 400), float(rng.randint(0, 60))])
    primary = _cluster(rng, spec.max_replicas, last.placement.primary if follow and last else None)
    return Snapshot(now=now, metric=metric, primary=primary, targets=targets, memory=memory)


def engine_lines(first: int = 0, count: int = SCENARIOS) -> Iterator[tuple[int, str]]:
    """(scenario index, one line per decision): the decision with its message, then the one without."""
    for i in range(first, first + count):
        rng = random.Random(i)
        spec = _spec(rng)
        memory = Memory()
        last: Decision | None = None
        now = rng.uniform(0, 1000)
        for _ in range(STEPS):
            snap = _snapshot(rng, spec, now, memory, last)
            full, quiet = decide(spec, snap), decide(spec, snap, explain=False)
            yield i, f"{full!r}\n{quiet!r}"
            memory = full.memory if rng.random() < 0.9 else Memory()
            last = full
            now += rng.choice([0.0, 1.0, 10.0, 30.0, 120.0, 400.0])


def _digest(lines: Iterator[str]) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode())
        h.update(b"\n")
    return h.hexdigest()[:32]


def engine_digests() -> list[str]:
    return [_digest(line for _, line in engine_lines(c, CHUNK)) for c in range(0, SCENARIOS, CHUNK)]


def _replay_lines(spec: BurstPolicySpec, trace: MetricTrace | RequestLog, **kw: Any) -> Iterator[str]:
    steps: list[str] = []
    summary = simulate.run(spec, trace, on_step=lambda s: steps.append(repr(s)), **kw)
    yield from steps
    yield repr(summary)


def _with_predictive(spec: BurstPolicySpec) -> BurstPolicySpec:
    return parse_policy_spec(
        {
            **spec.model_dump(by_alias=True, exclude_none=True),
            "behavior": {
                **spec.behavior.model_dump(by_alias=True, exclude_none=True),
                "predictive": {"enabled": True, "leadSeconds": 60, "windowSeconds": 120},
            },
        }
    )


def _replays(shared: Path | None) -> dict[str, Callable[[], Iterator[str]]]:
    spec, targets = load_policy_file(ROOT / "manifests/examples/inference-policy.yaml")
    ci, ci_targets = load_policy_file(ROOT / "manifests/examples/ci-runner-policy.yaml")
    predictive = _with_predictive(spec)
    ci_model = simulate.ServiceModel(tokens_per_second=1.0, startup_seconds={"primary": 20, "gcp-europe-west4": 60})
    inference = {"targets": targets, "primary_capacity": 8}
    out: dict[str, Callable[[], Iterator[str]]] = {}
    if shared is None:
        sample = load(ROOT / "tests/data/azure-code-queue-sample.csv")
        day = MetricTrace(synthetic_week(10.0).points[:8640])
        ci_day = synthetic_ci_day()
        for strategy in simulate.STRATEGIES:
            s = simulate.strategy_spec(spec, strategy)
            out[f"sample/{strategy}"] = lambda s=s: _replay_lines(s, sample, **inference, step=1.0)
        out["sample/predictive"] = lambda: _replay_lines(predictive, sample, **inference, step=1.0)
        out["synthetic-day/inference"] = lambda: _replay_lines(spec, day, **inference, step=10.0)
        out["synthetic-day/predictive"] = lambda: _replay_lines(predictive, day, **inference, step=10.0)
        out["ci-day/ci-runner"] = lambda: _replay_lines(
            ci, ci_day, targets=ci_targets, primary_capacity=20, model=ci_model
        )
        # the load metric (benchmarks.quality's second tuned row) and start-ups per cluster, on a request log
        load_model = simulate.ServiceModel(tokens_per_second=1.0, metric="load")
        out["ci-day/load-metric"] = lambda: _replay_lines(
            ci, ci_day, targets=ci_targets, primary_capacity=20, model=load_model
        )
        slow = simulate.ServiceModel(tokens_per_second=1.0, startup_seconds={"primary": 5, "gcp-europe-west4": 300})
        out["ci-day/slow-secondary"] = lambda: _replay_lines(
            ci, ci_day, targets=ci_targets, primary_capacity=12, model=slow, slo=simulate.Slo(120, 0.95)
        )
        return out
    slo = simulate.Slo(wait_seconds=30, target=0.98)
    for name in ("azure-llm-2023-code", "azure-llm-2023-conv"):
        trace = load(shared / f"{name}.csv")
        for strategy in simulate.STRATEGIES:
            s = simulate.strategy_spec(spec, strategy)
            out[f"{name}/{strategy}"] = lambda s=s, trace=trace: _replay_lines(s, trace, **inference, slo=slo)
        out[f"{name}/predictive"] = lambda trace=trace: _replay_lines(predictive, trace, **inference, slo=slo)
    return out


def replay_digests(shared: Path | None = None) -> dict[str, str]:
    return {name: _digest(lines()) for name, lines in _replays(shared).items()}


def compare(shared: Path | None) -> list[str]:
    """The families that differ from the record (empty: every decision is unchanged)."""
    record = json.loads(GOLDEN.read_text())
    bad = [
        f"engine scenarios {i * CHUNK}-{(i + 1) * CHUNK - 1}"
        for i, (a, b) in enumerate(zip(engine_digests(), record["engine"], strict=True))
        if a != b
    ]
    for family, digests in (("replay", replay_digests()), ("shared", replay_digests(shared) if shared else {})):
        bad += [f"{family} {k}" for k, v in digests.items() if record[family].get(k) != v]
    return bad


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces-dir", default=str(ROOT.parent / "shared/traces"))
    ap.add_argument("--write", action="store_true", help="record the current decisions as the golden ones")
    args = ap.parse_args()
    shared = Path(args.traces_dir)
    if args.write:
        record = {
            "engine": engine_digests(),
            "replay": replay_digests(),
            "shared": replay_digests(shared) if shared.is_dir() else {},
        }
        GOLDEN.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {GOLDEN}")
        return
    bad = compare(shared if shared.is_dir() else None)
    print("decisions unchanged" if not bad else "CHANGED: " + "; ".join(bad))
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
