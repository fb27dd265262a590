"""Invariants of the engine over random snapshots (hypothesis)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from overspill.api import BurstPolicySpec
from overspill.decide import ClusterState, Memory, Snapshot, TargetState, decide, replicas
from tests.unit.engine_helpers import policy

NAMES = ("aws", "gcp", "azure")


@st.composite
def cluster(draw: st.DrawFn, max_n: int = 30) -> ClusterState:
    n = draw(st.integers(0, max_n))
    ready = draw(st.integers(0, n))
    busy = draw(st.integers(0, n))
    unsched = draw(st.integers(0, n - ready))
    unknown = draw(st.sampled_from([0, 0, n - busy]))  # usually known; else every pod not known busy
    return ClusterState(replicas=n, ready=ready, busy=busy, unschedulable=unsched, busy_unknown=unknown)


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
        limit = spec.max_replicas + spec.behavior.return_surge
        assert healthy_sum(s, p.primary, dict(p.targets)) <= max(limit, s.current_total)
    # no scale-in on a missing metric
    if s.metric is None:
        assert p.primary >= s.primary.replicas
        assert all(p.targets[n] >= before[n].state.replicas for n in p.targets)
    # secondaries drain before the primary shrinks (beyond dropping its unschedulable pods)
    if p.primary < s.primary.replicas - s.primary.unschedulable:
        assert all(before[n].state.replicas <= p.targets[n] or not before[n].healthy for n in p.targets)
    # unknown busy counts as busy, whatever the class
    assert p.primary >= min(s.primary.replicas, s.primary.busy_unknown)
    for n, v in p.targets.items():
        assert v >= min(before[n].state.replicas, before[n].state.busy_unknown)
    # CI runners: a busy runner is never removed
    if spec.workload_class == "CIRunner":
        assert p.primary >= min(s.primary.replicas, s.primary.busy + s.primary.busy_unknown)
        for n, v in p.targets.items():
            t = before[n].state
            assert v >= min(t.replicas, t.busy + t.busy_unknown)
    # inference: no Ready replica is removed unless the rest still covers desired (make-before-break)
    if spec.workload_class == "Inference" and s.metric is not None:
        ready_before = s.primary.ready + sum(t.state.ready for t in s.targets if t.healthy)
        ready_after = min(s.primary.ready, p.primary) + sum(
            min(t.state.ready, p.targets[t.name]) for t in s.targets if t.healthy
        )
        assert ready_after >= min(ready_before, d.desired)


@st.composite
def line_with_one_outlier(draw: st.DrawFn) -> tuple[float, list[tuple[float, float]]]:
    n = draw(st.integers(4, 12))
    slope = draw(st.floats(-5, 5, allow_nan=False))
    start = draw(st.floats(0, 1000, allow_nan=False))
    step = draw(st.sampled_from([1.0, 5.0, 10.0, 15.0]))
    series = [(i * step, start + slope * i * step) for i in range(n)]
    at = draw(st.integers(0, n - 1))
    t, v = series[at]
    series[at] = (t, v + draw(st.floats(-1e4, 1e4, allow_nan=False)))  # one sample, off by anything
    return slope, series


@settings(max_examples=300, deadline=None)
@given(line_with_one_outlier())
def test_one_outlier_cannot_swing_the_trend(case: tuple[float, list[tuple[float, float]]]) -> None:
    slope, series = case
    fitted = replicas.trend_slope(tuple(series))
    assert fitted is not None
    assert math.isclose(fitted, slope, rel_tol=1e-6, abs_tol=1e-6)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 500, allow_nan=False), min_size=6, max_size=20),
    st.integers(0, 5),
    st.floats(0, 5000, allow_nan=False),
)
def test_a_blip_on_a_flat_queue_never_bursts_early(base: list[float], where: int, blip: float) -> None:
    """A flat queue (any level) with one noisy sample: the policy asks for what the queue asks, no more."""
    level = base[0]
    series = [level] * len(base)
    series[-1 - where] = level + blip
    spec = policy(behavior={"predictive": {"enabled": True, "leadSeconds": 600, "windowSeconds": 3600}})
    mem = Memory()
    for i, value in enumerate(series):
        d = decide(spec, Snapshot(now=i * 10.0, metric=value, primary=ClusterState(replicas=1), memory=mem))
        mem = d.memory
        assert d.desired == replicas.recommend(spec, value)
