"""Small builders for engine tests: a policy spec and snapshots in one line each."""

from __future__ import annotations

from typing import Any

from overspill.api import BurstPolicySpec, parse_policy_spec
from overspill.decide import ClusterState, Memory, Snapshot, TargetState


def policy(**overrides: Any) -> BurstPolicySpec:
    raw: dict[str, Any] = {
        "workloadRef": {"name": "vllm"},
        "metric": {"prometheus": {"query": "q"}, "targetPerReplica": 10},
        "minReplicas": 1,
        "maxReplicas": 40,
        "primary": {"pendingGracePeriodSeconds": 0},
        "targets": [{"name": "aws", "priority": 0}, {"name": "gcp", "priority": 1}],
        "behavior": {"scaleDownStabilizationSeconds": 0, "minBurstDurationSeconds": 0},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return parse_policy_spec(raw)


def cs(replicas: int, ready: int | None = None, *, busy: int = 0, unsched: int = 0, unknown: int = 0) -> ClusterState:
    """`unknown`: pods whose busy level could not be read (they count as busy)."""
    return ClusterState(
        replicas=replicas,
        ready=replicas if ready is None else ready,
        busy=busy,
        unschedulable=unsched,
        busy_unknown=unknown,
    )


def snap(
    metric: float | None,
    primary: ClusterState,
    *targets: TargetState,
    now: float = 1000.0,
    memory: Memory | None = None,
) -> Snapshot:
    """Every policy target is observed, as the reconciler guarantees; unnamed ones default to empty."""
    given = {t.name for t in targets}
    defaults = tuple(t for t in (tgt("aws"), tgt("gcp", priority=1)) if t.name not in given)
    return Snapshot(now=now, metric=metric, primary=primary, targets=targets + defaults, memory=memory or Memory())


def tgt(name: str, state: ClusterState | None = None, **kw: Any) -> TargetState:
    return TargetState(name=name, state=state or cs(0), **kw)
