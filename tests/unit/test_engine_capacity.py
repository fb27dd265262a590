"""Capacity from the clusters' own accounting: the estimate, the scheduler's ground truth, stockouts in targets."""

from __future__ import annotations

from dataclasses import replace

from overspill.decide import ClusterState, Memory, Reason, decide
from overspill.decide.snapshot import FullTarget
from tests.unit.engine_helpers import policy, snap, tgt


def est(replicas: int, room: int, *, ready: int | None = None, unsched: int = 0) -> ClusterState:
    """A primary whose pods are all bound except the unschedulable ones, with `room` more pods fitting."""
    return ClusterState(
        replicas=replicas,
        ready=replicas - unsched if ready is None else ready,
        unschedulable=unsched,
        scheduled=replicas - unsched,
        room=room,
    )


def test_estimate_spills_at_once_without_pending_pods_in_the_primary() -> None:
    d = decide(policy(), snap(150, est(2, 6)))  # 8 fit in all: 2 bound + 6 room
    assert (d.placement.primary, d.placement.targets["aws"]) == (8, 7)
    assert d.reason == Reason.BURST_UP and d.primary_capacity == 8


def test_scheduler_overrides_a_wrong_estimate_and_is_remembered() -> None:
    # the estimate says 2 more fit beside 8 bound, but 2 pods are Unschedulable: the scheduler is right
    d = decide(policy(), snap(150, est(10, 2, unsched=2)))
    assert d.primary_capacity == 8 and d.placement.primary == 8
    again = decide(policy(), snap(150, est(8, 2), memory=d.memory))  # estimate still says 2 more fit
    assert again.primary_capacity == 8, "an estimate the scheduler contradicted is not trusted again unchanged"


def test_replicas_come_home_when_the_estimate_shows_new_room() -> None:
    mem = Memory(primary_capacity=8, primary_capacity_observed_at=0.0, primary_estimate_at_observation=8)
    burst = snap(150, est(8, 0), tgt("aws", ClusterState(replicas=7, ready=7, scheduled=7)), memory=mem, now=10.0)
    assert decide(policy(), burst).placement.primary == 8
    freed = replace(burst, primary=est(8, 4))  # another workload left: 4 GPUs free
    d = decide(policy(), freed)
    assert d.primary_capacity == 12
    assert d.placement.primary == 12 and d.placement.targets["aws"] == 7, "make-before-break: grow first"
    assert d.reason == Reason.SCALE_UP


def test_no_periodic_probe_while_the_estimate_is_known() -> None:
    mem = Memory(primary_capacity=8, primary_capacity_observed_at=0.0, primary_estimate_at_observation=8)
    late = snap(150, est(8, 0), memory=mem, now=100_000.0)  # far past capacityRecheckSeconds
    d = decide(policy(), late)
    assert d.placement.primary == 8, "no Pending pods asked for only to learn the primary's size"


def test_without_an_estimate_the_learned_capacity_still_expires() -> None:
    mem = Memory(primary_capacity=8, primary_capacity_observed_at=0.0)
    d = decide(policy(), snap(150, ClusterState(replicas=8, ready=8), memory=mem, now=100_000.0))
    assert d.placement.primary == 15


def stuck_target(replicas: int, running: int, room: int | None = 0) -> ClusterState:
    return ClusterState(replicas=replicas, ready=running, scheduled=running, room=room, stuck=replicas - running)


def test_stockout_takes_pending_replicas_back_and_spills_onward() -> None:
    aws = tgt("aws", stuck_target(7, 3))
    d = decide(policy(primary={"maxReplicas": 8}), snap(150, est(8, 0), aws, now=500.0))
    assert d.placement.targets == {"aws": 3, "gcp": 4}
    assert d.reason == Reason.TARGET_AT_CAPACITY
    assert [f.name for f in d.memory.full_targets] == ["aws"]
    assert "out of room" in d.message


def test_stockout_is_not_kept_by_the_burst_dwell() -> None:
    spec = policy(primary={"maxReplicas": 8}, behavior={"minBurstDurationSeconds": 600})
    mem = Memory(burst_started_at=490.0)
    d = decide(spec, snap(150, est(8, 0), tgt("aws", stuck_target(7, 3)), memory=mem, now=500.0))
    assert d.placement.targets["aws"] == 3, "Pending pods in a full target are not serving: the dwell keeps none"


def test_full_target_grows_by_the_room_its_accounting_shows_not_by_more_pods() -> None:
    spec = policy(primary={"maxReplicas": 8})
    mem = Memory(full_targets=(FullTarget("aws", 3, 0, 100.0, 100.0),))
    gcp = tgt("gcp", ClusterState(4, 4, scheduled=4), priority=1)
    still = snap(150, est(8, 0), tgt("aws", ClusterState(3, 3, scheduled=3, room=0)), gcp, memory=mem, now=200.0)
    d = decide(spec, still)
    assert d.placement.targets == {"aws": 3, "gcp": 4}
    two_free = replace(still, targets=(tgt("aws", ClusterState(3, 3, scheduled=3, room=2)), gcp))
    d2 = decide(spec, replace(two_free, now=210.0))
    assert d2.placement.targets == {"aws": 3, "gcp": 4}, "existing placement is kept on a steady queue"
    more = decide(spec, replace(two_free, metric=200.0, now=220.0))
    assert more.placement.targets["aws"] == 5, "the target takes what its accounting shows, no more"


def test_full_target_is_tried_again_a_recheck_period_after_it_was_last_stuck() -> None:
    spec = policy(primary={"maxReplicas": 8, "capacityRecheckSeconds": 300})
    mem = Memory(full_targets=(FullTarget("aws", 3, 0, 100.0, 100.0),))
    aws = tgt("aws", ClusterState(3, 3, scheduled=3, room=0))
    assert decide(spec, snap(150, est(8, 0), aws, memory=mem, now=350.0)).memory.full_targets != ()
    assert decide(spec, snap(150, est(8, 0), aws, memory=mem, now=400.0)).memory.full_targets == ()
