"""Named scenarios for the decision engine, HPA/Karmada style: one snapshot in, one expected decision out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from overspill.decide import Memory, Reason, Snapshot, decide
from tests.unit.engine_helpers import cs, policy, snap, tgt


@dataclass(frozen=True)
class Case:
    name: str
    snapshot: Snapshot
    desired: int
    primary: int
    targets: dict[str, int]
    reason: Reason
    spec: dict[str, Any] = field(default_factory=dict)


LEARNED_8 = Memory(primary_capacity=8, primary_capacity_observed_at=990.0)
CI = {"workloadClass": "CIRunner", "busy": {"podAnnotation": "overspill.dev/busy"}}

CASES = [
    Case("queue empty sits at min", snap(0, cs(1)), 1, 1, {"aws": 0, "gcp": 0}, Reason.STEADY),
    Case(
        "queue 150 scales the primary when it has room", snap(150, cs(1)), 15, 15, {"aws": 0, "gcp": 0}, Reason.SCALE_UP
    ),
    Case(
        "explicit primary cap spills the rest to the first target",
        snap(150, cs(1)),
        15,
        8,
        {"aws": 7, "gcp": 0},
        Reason.BURST_UP,
        {"primary": {"maxReplicas": 8}},
    ),
    Case(
        "unschedulable pods reveal the primary's capacity",
        snap(150, cs(15, 8, unsched=7)),
        15,
        8,
        {"aws": 7, "gcp": 0},
        Reason.BURST_UP,
    ),
    Case(
        "learned capacity is reused on the next burst",
        snap(150, cs(2), memory=LEARNED_8),
        15,
        8,
        {"aws": 7, "gcp": 0},
        Reason.BURST_UP,
    ),
    Case(
        "equal priority: cheaper target first",
        snap(
            150, cs(8), tgt("aws", cost_per_replica_hour=3.0), tgt("gcp", cost_per_replica_hour=1.0), memory=LEARNED_8
        ),
        15,
        8,
        {"aws": 0, "gcp": 7},
        Reason.BURST_UP,
        {"targets": [{"name": "aws"}, {"name": "gcp"}]},
    ),
    Case(
        "target cap overflows to the next target",
        snap(300, cs(8), tgt("aws", cap=5), tgt("gcp", priority=1), memory=LEARNED_8),
        30,
        8,
        {"aws": 5, "gcp": 17},
        Reason.BURST_UP,
    ),
    Case(
        "all caps full: capacity exhausted",
        snap(400, cs(8), tgt("aws", cs(5), cap=5), tgt("gcp", cs(5), priority=1, cap=5), memory=LEARNED_8),
        40,
        8,
        {"aws": 5, "gcp": 5},
        Reason.CAPACITY_EXHAUSTED,
    ),
    Case(
        "unhealthy target is skipped and frozen",
        snap(150, cs(8), tgt("aws", cs(3), healthy=False), tgt("gcp", priority=1), memory=LEARNED_8),
        15,
        8,
        {"aws": 3, "gcp": 7},
        Reason.BURST_UP,
    ),
    Case(
        "namespace not allowed: target never used",
        snap(150, cs(8), tgt("aws", allowed=False), tgt("gcp", priority=1), memory=LEARNED_8),
        15,
        8,
        {"aws": 0, "gcp": 7},
        Reason.BURST_UP,
    ),
    Case(
        "scale-up keeps existing placement (no reshuffle)",
        snap(200, cs(8), tgt("aws", cs(2)), tgt("gcp", cs(5), priority=1), memory=LEARNED_8),
        20,
        8,
        {"aws": 7, "gcp": 5},
        Reason.BURST_UP,
    ),
    Case(
        "scale-down drains the least preferred target first",
        snap(120, cs(8), tgt("aws", cs(5)), tgt("gcp", cs(5), priority=1), memory=LEARNED_8),
        12,
        8,
        {"aws": 4, "gcp": 0},
        Reason.BURST_DOWN,
    ),
    Case(
        "primary does not shrink while secondaries drain",
        snap(20, cs(8), tgt("aws", cs(7)), memory=LEARNED_8),
        2,
        8,
        {"aws": 0, "gcp": 0},
        Reason.BURST_DOWN,
    ),
    Case(
        "then the primary settles",
        snap(20, cs(8), tgt("aws", cs(0)), memory=LEARNED_8),
        2,
        2,
        {"aws": 0, "gcp": 0},
        Reason.SCALE_DOWN,
    ),
    Case(
        "metric missing: hold everything",
        snap(None, cs(8), tgt("aws", cs(7))),
        15,
        8,
        {"aws": 7, "gcp": 0},
        Reason.METRIC_UNAVAILABLE_HOLD,
    ),
    Case(
        "metric missing with UseReplicas never scales in",
        snap(None, cs(8), tgt("aws", cs(7))),
        15,
        8,
        {"aws": 7, "gcp": 0},
        Reason.METRIC_UNAVAILABLE_FALLBACK,
        {"fallback": {"onMetricUnavailable": "UseReplicas", "replicas": 4}, "primary": {"maxReplicas": 8}},
    ),
    Case(
        "metric missing with UseReplicas scales up to the fallback",
        snap(None, cs(2)),
        6,
        6,
        {"aws": 0, "gcp": 0},
        Reason.METRIC_UNAVAILABLE_FALLBACK,
        {"fallback": {"onMetricUnavailable": "UseReplicas", "replicas": 6}},
    ),
    Case("paused holds", snap(500, cs(3)), 3, 3, {"aws": 0, "gcp": 0}, Reason.PAUSED, {"mode": "Paused"}),
    Case(
        "activation threshold keeps min",
        snap(4, cs(1)),
        1,
        1,
        {"aws": 0, "gcp": 0},
        Reason.STEADY,
        {"metric": {"prometheus": {"query": "q"}, "targetPerReplica": 1, "activationThreshold": 5}},
    ),
    Case(
        "min burst duration holds secondaries",
        snap(
            20,
            cs(8),
            tgt("aws", cs(7)),
            memory=Memory(burst_started_at=950.0, primary_capacity=8, primary_capacity_observed_at=990.0),
        ),
        2,
        8,
        {"aws": 7, "gcp": 0},
        Reason.MIN_BURST_DURATION_HOLD,
        {"behavior": {"minBurstDurationSeconds": 120}},
    ),
    Case(
        "return to primary is make-before-break (replacements not Ready yet)",
        snap(150, cs(8), tgt("aws", cs(7))),
        15,
        15,
        {"aws": 7, "gcp": 0},
        Reason.SCALE_UP,
    ),
    Case(
        "return to primary: secondaries released as primary replicas become Ready",
        snap(150, cs(15, 12), tgt("aws", cs(7))),
        15,
        15,
        {"aws": 3, "gcp": 0},
        Reason.BURST_DOWN,
    ),
    Case(
        "at maxReplicas the return home surges by returnSurge (1) instead of holding forever",
        snap(400, cs(30), tgt("aws", cs(10))),
        40,
        31,
        {"aws": 10, "gcp": 0},
        Reason.SCALE_UP,
    ),
    Case(
        "returnSurge 0 keeps the total at maxReplicas (and the return waits)",
        snap(400, cs(30), tgt("aws", cs(10))),
        40,
        30,
        {"aws": 10, "gcp": 0},
        Reason.AWAITING_READY_REPLACEMENT,
        {"behavior": {"returnSurge": 0, "scaleDownStabilizationSeconds": 0, "minBurstDurationSeconds": 0}},
    ),
    Case(
        "CI runners: unknown busy in the primary holds every runner",
        snap(0, cs(5, unknown=5)),
        1,
        5,
        {"aws": 0, "gcp": 0},
        Reason.BUSY_UNKNOWN_HOLD,
        CI,
    ),
    Case(
        "CI runners: a secondary whose busy level is unknown is not drained",
        snap(0, cs(4), tgt("aws", cs(6, busy=1, unknown=5))),
        1,
        4,
        {"aws": 6, "gcp": 0},
        Reason.BUSY_UNKNOWN_HOLD,
        CI,
    ),
    Case(
        "inference: unknown busy holds scale-in too (deletion costs cannot be trusted)",
        snap(20, cs(8), tgt("aws", cs(7, unknown=7)), memory=LEARNED_8),
        2,
        8,
        {"aws": 7, "gcp": 0},
        Reason.BUSY_UNKNOWN_HOLD,
        {"busy": {"query": "sum by (pod) (inflight)"}},
    ),
    Case(
        "unknown busy never blocks growth",
        snap(150, cs(8, unknown=8), memory=LEARNED_8),
        15,
        8,
        {"aws": 7, "gcp": 0},
        Reason.BURST_UP,
        CI,
    ),
    Case(
        "CI runners: busy runners in a secondary survive scale-in",
        snap(0, cs(4), tgt("aws", cs(6, busy=4))),
        1,
        4,
        {"aws": 4, "gcp": 0},
        Reason.BURST_DOWN,
        CI,
    ),
    Case(
        "CI runners: primary never goes below its busy runners",
        snap(0, cs(5, busy=3)),
        1,
        3,
        {"aws": 0, "gcp": 0},
        Reason.SCALE_DOWN,
        CI,
    ),
    Case(
        "inference: starting replicas are not capacity, and no reason to burst again",
        snap(150, cs(15, 3)),
        15,
        15,
        {"aws": 0, "gcp": 0},
        Reason.STEADY,
    ),
    Case("max replicas caps the total", snap(10_000, cs(1)), 40, 40, {"aws": 0, "gcp": 0}, Reason.SCALE_UP),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_scenario(case: Case) -> None:
    d = decide(policy(**case.spec), case.snapshot)
    assert (d.desired, d.placement.primary, dict(d.placement.targets), d.reason) == (
        case.desired,
        case.primary,
        case.targets,
        case.reason,
    ), d.message


def test_scale_down_stabilization_holds_then_releases() -> None:
    spec = policy(behavior={"scaleDownStabilizationSeconds": 60})
    mem = Memory()
    d = decide(spec, snap(150, cs(15), now=0, memory=mem))
    assert d.desired == 15
    held = decide(spec, snap(20, cs(15), now=30, memory=d.memory))
    assert (held.desired, held.reason) == (15, Reason.STABILIZATION_HOLD)
    still = decide(spec, snap(20, cs(15), now=89, memory=held.memory))
    assert still.desired == 15  # 15 was in force until t=30: the window reaches it until t=90
    released = decide(spec, snap(20, cs(15), now=91, memory=still.memory))
    assert released.desired == 2


def test_noisy_metric_does_not_flap() -> None:
    spec = policy(behavior={"scaleDownStabilizationSeconds": 120})
    mem, primary, changes, last = Memory(), 1, 0, None
    for i in range(120):
        metric = 100 + (35 if i % 2 else -35)  # 65..135: 7..14 replicas
        d = decide(spec, snap(metric, cs(primary), now=i * 10.0, memory=mem))
        mem, primary = d.memory, d.placement.primary
        changes += last is not None and primary != last
        last = primary
    assert changes <= 2, changes


def test_learned_capacity_expires_so_replicas_can_come_home() -> None:
    spec = policy(primary={"capacityRecheckSeconds": 60})
    fresh = decide(spec, snap(150, cs(8), tgt("aws", cs(7)), now=1000, memory=LEARNED_8))
    assert fresh.placement.primary == 8
    stale = decide(spec, snap(150, cs(8), tgt("aws", cs(7)), now=1100, memory=LEARNED_8))
    assert stale.placement.primary == 15
    assert stale.placement.targets["aws"] == 7  # held until the primary's new replicas are Ready


def _feed(spec: Any, series: list[float], replicas: int = 5) -> Any:
    mem, d = Memory(), None
    for i, value in enumerate(series):
        d = decide(spec, snap(value, cs(replicas), now=i * 10.0, memory=mem))
        mem = d.memory
    return d


def test_predictive_bursts_early_on_a_rising_queue() -> None:
    spec = policy(behavior={"predictive": {"enabled": True, "leadSeconds": 30}})
    d = _feed(spec, [50, 60, 70, 80])
    assert d.desired == 11  # 80 + 1/s * 30 s = 110 -> 11 replicas, not 8
    assert _feed(policy(), [50, 60, 70, 80]).desired == 8


@pytest.mark.parametrize(
    ("primary_cap", "aws_startup", "desired"),
    [
        (8, None, 13),  # 100 + 1/s * 30 s lead = 130 -> 13
        (8, 20, 13),  # a start-up shorter than the lead changes nothing
        (8, 180, 28),  # the overflow starts in aws, Ready 180 s later: 100 + 180 = 280 -> 28
        (8, 600, 40),  # ... capped at maxReplicas
        (20, 180, 13),  # the primary has room: the next replicas start there, aws's start-up is not waited on
    ],
)
def test_predictive_lead_covers_the_overflow_targets_startup(
    primary_cap: int, aws_startup: float | None, desired: int
) -> None:
    """BurstTarget replicaStartupSeconds in the operator: with the primary full, a predictive policy looks as far
    ahead as the target its overflow goes to needs to start a replica, so the replica is Ready in time."""
    spec = policy(primary={"maxReplicas": primary_cap}, behavior={"predictive": {"enabled": True, "leadSeconds": 30}})
    mem, d = Memory(), None
    for i, value in enumerate([70, 80, 90, 100]):
        targets = (tgt("aws", startup_seconds=aws_startup), tgt("gcp", priority=1, startup_seconds=900))
        d = decide(spec, snap(value, cs(8), *targets, now=i * 10.0, memory=mem))
        mem = d.memory
    assert d is not None and d.desired == desired


def test_predictive_ignores_a_single_noisy_sample() -> None:
    """The reproduced case: a flat 50 with one 60 blip and a 60 s lead sent replicas to a secondary."""
    spec = policy(behavior={"predictive": {"enabled": True, "leadSeconds": 60}})
    assert _feed(spec, [50, 50, 50, 50, 50, 60]).desired == 6  # the blip itself, not a projected 120
    assert _feed(spec, [50, 50, 50, 90, 50, 50]).desired == 5  # a spike in the middle changes nothing


def test_predictive_needs_several_samples_before_projecting() -> None:
    spec = policy(behavior={"predictive": {"enabled": True, "leadSeconds": 60}})
    assert _feed(spec, [50, 60]).desired == 6


def test_return_home_at_max_replicas_completes() -> None:
    """Make-before-break at maxReplicas: each step surges the primary by one, then drains one secondary."""
    spec = policy(primary={"capacityRecheckSeconds": 60})
    primary, aws, mem = 30, 10, Memory()
    for step in range(60):
        d = decide(spec, snap(400, cs(primary), tgt("aws", cs(aws)), now=1000.0 + step, memory=mem))
        primary, aws, mem = d.placement.primary, d.placement.targets["aws"], d.memory
        assert primary + aws <= 40 + 1  # maxReplicas + returnSurge
        if (primary, aws) == (40, 0):
            break
    assert (primary, aws) == (40, 0)


def test_memory_does_not_change_while_the_queue_holds_still() -> None:
    spec = policy()
    first = decide(spec, snap(150, cs(15), now=0.0))
    later = decide(spec, snap(150, cs(15), now=500.0, memory=first.memory))
    assert later.memory == first.memory  # so the operator writes no status


def test_recommendation_history_is_run_length_encoded() -> None:
    spec = policy(behavior={"scaleDownStabilizationSeconds": 300})
    mem = Memory()
    for i in range(50):
        mem = decide(spec, snap(150, cs(15), now=float(i), memory=mem)).memory
    assert len(mem.recommendations) == 1  # a steady policy writes nothing new
