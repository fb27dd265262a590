"""Invariants of the engine over random snapshots (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from overspill.api import BurstPolicySpec
from overspill.decide import ClusterState, Memory, Snapshot, TargetState, decide
from tests.unit.engine_helpers import policy

NAMES = ("aws", "gcp", "azure")


@st.composite
def cluster(draw: st.DrawFn, max_n: int = 30) -> ClusterState:
    n = draw(st.integers(0, max_n))
    ready = draw(st.integers(0, n))
    busy = draw(st.integers(0, n))
    unsched = draw(st.integers(0, n - ready))
    return ClusterState(replicas=n, ready=ready, busy=busy, unschedulable=unsched)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[BurstPolicySpec, Snapshot]:
    lo = draw(st.integers(0, 5))
    hi = draw(st.integers(max(lo, 1), 60))
    ci = draw(st.booleans())
    targets = [
        {"name": n, "priority": draw(st.integers(0, 2)), "maxReplicas": draw(st.none() | st.integers(0, 20))}
        for n in NAMES[: draw(st.integers(0, 3))]
    ]
    spec = policy(
        minReplicas=lo,
        maxReplicas=hi,
        targets=targets,
        primary={"maxReplicas": draw(st.none() | st.integers(0, hi))},
        workloadClass="CIRunner" if ci else "Inference",
        busy={"podAnnotation": "busy"} if ci else None,
        behavior={
            "scaleDownStabilizationSeconds": draw(st.sampled_from([0, 60])),
            "minBurstDurationSeconds": draw(st.sampled_from([0, 120])),
        },
    )
    tstates = tuple(
        TargetState(
            name=t["name"],
            state=draw(cluster(20)),
            healthy=draw(st.booleans()),
            allowed=draw(st.booleans()),
            priority=t["priority"],
            cap=t["maxReplicas"],
            cost_per_replica_hour=draw(st.none() | st.floats(0, 5)),
        )
        for t in targets
    )
    memory = Memory(
        recommendations=tuple(sorted(draw(st.lists(st.tuples(st.floats(0, 999), st.integers(lo, hi)), max_size=4)))),
        burst_started_at=draw(st.none() | st.floats(0, 999)),
        primary_capacity=draw(st.none() | st.integers(0, 30)),
        primary_capacity_observed_at=draw(st.none() | st.floats(900, 999)),
    )
    metric = draw(st.none() | st.floats(0, 1000, allow_nan=False))
    primary = draw(cluster(hi))
    return spec, Snapshot(now=1000.0, metric=metric, primary=primary, targets=tstates, memory=memory)


def healthy_sum(snapshot: Snapshot, primary: int, targets: dict[str, int]) -> int:
    return primary + sum(targets[t.name] for t in snapshot.targets if t.healthy)


@settings(max_examples=400, deadline=None)
@given(scenario())
def test_invariants(case: tuple[BurstPolicySpec, Snapshot]) -> None:
    spec, s = case
    d = decide(spec, s)
    p = d.placement
    before = {t.name: t for t in s.targets}
    # deterministic
    assert decide(spec, s) == d
    # desired within [min, max] unless holding what already runs
    if s.metric is not None:
        assert spec.min_replicas <= d.desired <= spec.max_replicas
    # nothing new on unhealthy or disallowed targets; each target within its cap when it grows
    for name, n in p.targets.items():
        t = before[name]
        if not t.healthy:
            assert n == t.state.replicas
        elif n > t.state.replicas:
            assert t.allowed
            assert t.cap is None or n <= t.cap
    # the primary grows only within its explicit cap
    if p.primary > s.primary.replicas and spec.primary.max_replicas is not None:
        assert p.primary <= spec.primary.max_replicas
    # growth never pushes the total over maxReplicas
    grew = p.primary > s.primary.replicas or any(p.targets[n] > before[n].state.replicas for n in p.targets)
    if grew:
        assert healthy_sum(s, p.primary, dict(p.targets)) <= max(spec.max_replicas, s.current_total)
    # no scale-in on a missing metric
    if s.metric is None:
        assert p.primary >= s.primary.replicas
        assert all(p.targets[n] >= before[n].state.replicas for n in p.targets)
    # secondaries drain before the primary shrinks (beyond dropping its unschedulable pods)
    if p.primary < s.primary.replicas - s.primary.unschedulable:
        assert all(before[n].state.replicas <= p.targets[n] or not before[n].healthy for n in p.targets)
    # CI runners: a busy runner is never removed
    if spec.workload_class == "CIRunner":
        assert p.primary >= min(s.primary.replicas, s.primary.busy)
        for n, v in p.targets.items():
            assert v >= min(before[n].state.replicas, before[n].state.busy)
    # inference: no Ready replica is removed unless the rest still covers desired (make-before-break)
    if spec.workload_class == "Inference" and s.metric is not None:
        ready_before = s.primary.ready + sum(t.state.ready for t in s.targets if t.healthy)
        ready_after = min(s.primary.ready, p.primary) + sum(
            min(t.state.ready, p.targets[t.name]) for t in s.targets if t.healthy
        )
        assert ready_after >= min(ready_before, d.desired)
