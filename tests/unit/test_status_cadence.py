"""Status cadence and metric series: moving figures wait for statusIntervalSeconds, decisions do not; a deleted
policy's series go with it."""

from __future__ import annotations

from typing import Any

from overspill import metrics
from overspill.handlers import _settled


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
