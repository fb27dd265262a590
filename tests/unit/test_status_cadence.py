"""Status cadence and metric series: moving figures wait for statusIntervalSeconds, decisions do not; a deleted
policy's series go with it."""

from __future__ import annotations

from typing import Any

from overspill import metrics
from overspill.cadence import _settled, write_cause


def status(metric: float, primary: int, free: int | None = 3) -> dict[str, Any]:
    return {
        "metricValue": metric,
        "memory": {"recommendations": [[1.0, int(metric // 10)]]},
        "primary": {"replicas": primary, "capacityEstimate": 8 + (free or 0)},
        "targets": [{"name": "aws", "replicas": 7, "freeRoom": free}],
        "lastDecision": {"reason": "BurstUp"},
    }


def test_a_moving_queue_alone_is_not_a_decision() -> None:
    assert _settled(status(150, 8)) == _settled(status(163, 8, free=5))


def test_a_placement_change_is() -> None:
    assert _settled(status(150, 8)) != _settled(status(150, 9))


def test_a_deleted_policys_series_are_removed() -> None:
    metrics.DESIRED.labels("ns-a", "gone").set(3)
    metrics.REPLICAS.labels("ns-a", "gone", "primary").set(3)
    metrics.DESIRED.labels("ns-a", "kept").set(1)
    metrics.forget_policy("ns-a", "gone")
    families = {m.name: m for m in (metrics.DESIRED.collect()[0], metrics.REPLICAS.collect()[0])}
    labels = [s.labels for f in families.values() for s in f.samples]
    assert {"namespace": "ns-a", "policy": "kept"} in labels
    assert not [lb for lb in labels if lb.get("policy") == "gone"]


def aged(seconds: float, metric: float = 150, recs: int = 15) -> dict[str, Any]:
    """The same status as at t=0, observed `seconds` later: the engine's memory carries new time stamps."""
    s = status(metric, 8)
    s["memory"] = {
        "recommendations": [[t, recs] for t in (seconds - 20, seconds - 10, seconds)],
        "samples": [[t, metric] for t in (seconds - 20, seconds - 10, seconds)],
    }
    return s


def test_a_still_queue_is_never_rewritten() -> None:
    # 1,000 idle policies at one write per statusInterval each cost 33 PATCHes a second (measured on the lab):
    # a status that only ages must cost nothing, however long it has been
    assert write_cause(aged(3600), aged(0), elapsed=3600, interval=30) is None


def test_a_moving_queue_is_written_once_per_interval() -> None:
    assert write_cause(aged(10, metric=163), aged(0), elapsed=10, interval=30) is None
    assert write_cause(aged(30, metric=163), aged(0), elapsed=30, interval=30) == "interval"


def test_a_new_recommendation_value_is_written_at_the_interval() -> None:
    # a restart must resume the stabilization window: a changed value is remembered within one interval
    assert write_cause(aged(30, recs=9), aged(0), elapsed=30, interval=30) == "interval"


def test_a_decision_is_written_at_once_and_named() -> None:
    new = aged(1)
    new["primary"]["replicas"] = 9
    assert write_cause(new, aged(0), elapsed=1, interval=30) == "primary.replicas"
    cond = aged(1)
    cond["conditions"] = [{"type": "Bursting", "status": "True"}]
    old = aged(0)
    old["conditions"] = [{"type": "Bursting", "status": "False"}]
    assert write_cause(cond, old, elapsed=1, interval=30) == "conditions.Bursting"


def roomy(free: int | None, estimate: int = 11) -> dict[str, Any]:
    s = aged(0)
    s["primary"]["capacityEstimate"] = estimate
    s["targets"][0]["freeRoom"] = free
    return s


def test_room_that_changed_while_the_queue_holds_still_is_written_at_the_interval() -> None:
    # review: freeRoom 3 -> 0 (a secondary filled up) was never written while the queue held still
    assert write_cause(roomy(0), roomy(3), elapsed=10, interval=30) is None
    assert write_cause(roomy(0), roomy(3), elapsed=30, interval=30) == "interval"
    assert write_cause(roomy(3, estimate=20), roomy(3), elapsed=30, interval=30) == "interval"


def test_a_predictive_policys_samples_are_written_with_their_times() -> None:
    # its trend fit reads the samples' times: after a restart, hour-old samples would change its decisions
    assert write_cause(aged(3600), aged(0), elapsed=3600, interval=30, exact_samples=True) == "interval"
    assert write_cause(aged(3600), aged(0), elapsed=3600, interval=30) is None
