"""A decision's reason is the action taken; a hold is the reason only when it prevented every change.

One row per precedence rule (issue 11): dashboards must not say "held" while replicas go.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from overspill.decide import Memory, Reason, Snapshot, decide
from tests.unit.engine_helpers import cs, policy, snap, tgt


@dataclass(frozen=True)
class Row:
    name: str
    snapshot: Snapshot
    reason: Reason
    message: str  # a fragment the message must contain
    spec: dict[str, Any] = field(default_factory=dict)
    absent: str | None = None  # a fragment the message must not contain


WINDOW_60 = {"behavior": {"scaleDownStabilizationSeconds": 60, "minBurstDurationSeconds": 0}}


def mem(*recs: tuple[float, int], cap: int | None = 8, burst: float | None = None) -> Memory:
    return Memory(
        recommendations=recs,
        primary_capacity=cap,
        primary_capacity_observed_at=990.0 if cap is not None else None,
        burst_started_at=burst,
    )


ROWS = [
    Row(
        "window holds part of a scale-down, the secondary still shrinks: BurstDown",
        snap(20, cs(8), tgt("aws", cs(7)), memory=mem((950.0, 12))),
        Reason.BURST_DOWN,
        "partly held by the 60s stabilization window",
        WINDOW_60,
    ),
    Row(
        "window holds part of a scale-down in the primary: ScaleDown",
        snap(20, cs(8), memory=mem((950.0, 5), cap=None)),
        Reason.SCALE_DOWN,
        "partly held by the 60s stabilization window",
        WINDOW_60,
    ),
    Row(
        "window prevents every change: StabilizationHold",
        snap(20, cs(8), tgt("aws", cs(7)), memory=mem((950.0, 15))),
        Reason.STABILIZATION_HOLD,
        "scale-down held by the 60s stabilization window",
        WINDOW_60,
    ),
    Row(
        "growth home while the window holds the total: ScaleUp, not a hold",
        snap(20, cs(8), tgt("aws", cs(7)), memory=mem((950.0, 15), cap=None)),
        Reason.SCALE_UP,
        "primary=15",
        WINDOW_60,
        absent="StabilizationHold",
    ),
    Row(
        "dwell keeps the secondaries and the window holds the rest: the dwell is what prevented the change",
        snap(20, cs(8), tgt("aws", cs(7)), memory=mem((950.0, 12), burst=950.0)),
        Reason.MIN_BURST_DURATION_HOLD,
        "minBurstDurationSeconds",
        {"behavior": {"scaleDownStabilizationSeconds": 60, "minBurstDurationSeconds": 120}},
    ),
    Row(
        "dwell holds the targets it covers while a disallowed one drains: BurstDown, the dwell in the message",
        snap(
            20,
            cs(8),
            tgt("aws", cs(4)),
            tgt("gcp", cs(3), priority=1, allowed=False),
            memory=mem(burst=950.0),
        ),
        Reason.BURST_DOWN,
        "secondaries kept for minBurstDurationSeconds",
        {"behavior": {"minBurstDurationSeconds": 120}},
    ),
    Row(
        "busy runners keep part of a scale-in, idle ones go: BurstDown with the hold in the message",
        snap(0, cs(4), tgt("aws", cs(6, busy=4))),
        Reason.BURST_DOWN,
        "busy replicas are not removed",
        {"workloadClass": "CIRunner", "busy": {"podAnnotation": "overspill.dev/busy"}},
    ),
    Row(
        "busy runners keep every replica: BusyReplicasHold",
        snap(0, cs(4, busy=4)),
        Reason.BUSY_REPLICAS_HOLD,
        "busy replicas are not removed",
        {"workloadClass": "CIRunner", "busy": {"podAnnotation": "overspill.dev/busy"}},
    ),
    Row(
        "replacements not Ready yet and nothing else moves: AwaitingReadyReplacement",
        snap(400, cs(31, 30), tgt("aws", cs(10))),  # the returnSurge replica is still starting
        Reason.AWAITING_READY_REPLACEMENT,
        "waiting for replacements",
    ),
    Row(
        "metric missing: the hold wins over everything",
        snap(None, cs(8), tgt("aws", cs(7)), memory=mem((950.0, 15))),
        Reason.METRIC_UNAVAILABLE_HOLD,
        "holding placement",
        WINDOW_60,
    ),
    Row(
        "nothing to do: Steady",
        snap(0, cs(1), memory=mem(cap=None)),
        Reason.STEADY,
        "primary=1",
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_reason_precedence(row: Row) -> None:
    d = decide(policy(**row.spec), row.snapshot)
    assert d.reason == row.reason, d.message
    assert row.message in d.message, d.message
    if row.absent:
        assert row.absent not in d.message


def test_stabilization_hold_never_labels_a_step_that_removed_replicas() -> None:
    """The README example's shape: a falling queue under a 300 s window; every step that shrinks says so."""
    spec = policy(behavior={"scaleDownStabilizationSeconds": 300, "minBurstDurationSeconds": 0})
    memory = Memory(primary_capacity=8, primary_capacity_observed_at=0.0)
    primary, aws = 8, 12
    shrinking_reasons = set()
    for i in range(60):
        queue = max(0.0, 200 - 4 * i)
        s = snap(queue, cs(primary), tgt("aws", cs(aws)), now=float(i * 10), memory=memory)
        d = decide(spec, s)
        if d.placement.total < primary + aws:
            shrinking_reasons.add(d.reason)
        memory, primary, aws = d.memory, d.placement.primary, d.placement.targets["aws"]
    assert shrinking_reasons, "the scenario must shrink"
    assert Reason.STABILIZATION_HOLD not in shrinking_reasons
