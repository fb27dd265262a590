"""How busy a pod is, and what that means for its deletion cost (pure). Unknown is never idle.

A pod's level comes from its annotation or label when it carries one; otherwise from the per-pod query, when the
policy has one. A pod the query could not answer for (the query failed, returned nothing for it, or no Prometheus
sees the cluster it runs in) has an unknown level: it counts as busy, nothing is scaled in over it, and its
deletion cost is left as it was. Without a query, a pod without the annotation or label is idle: that is how
runner controllers mark busy runners.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from overspill.api.policy import Busy, WorkloadClass

BUSY_COST = 1_000_000  # a busy CI runner: effectively never chosen by the ReplicaSet
_TRUE = ("true", "yes", "busy")
_FALSE = ("false", "no", "idle", "")


def _sane(value: float) -> float | None:
    """A level is a finite number >= 0; anything else (negative, NaN, infinite) is unknown, so busy."""
    return value if math.isfinite(value) and value >= 0 else None


def _busier(a: float | None, b: float | None) -> float | None:
    """Of two readings of one pod, the more busy; unknown is the most busy of all."""
    return None if a is None or b is None else max(a, b)


@dataclass(frozen=True)
class PodLevels:
    """The per-pod query's answer, keyed by (namespace, pod); namespace "" for a series without that label.

    Several series for one key (two scrape jobs) merge to the most busy. A series without a namespace label
    applies to a pod only when no series names that pod in another namespace (else it may be the other pod's)."""

    by_key: Mapping[tuple[str, str], float | None] = field(default_factory=dict)
    namespaces: Mapping[str, frozenset[str]] = field(default_factory=dict)  # pod -> namespaces its series name

    @classmethod
    def from_series(cls, series: Iterable[tuple[str, str, float]]) -> PodLevels:
        """(namespace or "", pod, value) per series."""
        by_key: dict[tuple[str, str], float | None] = {}
        namespaces: dict[str, set[str]] = {}
        for namespace, pod, value in series:
            key = (namespace, pod)
            by_key[key] = _busier(by_key[key], _sane(value)) if key in by_key else _sane(value)
            if namespace:
                namespaces.setdefault(pod, set()).add(namespace)
        return cls(by_key, {pod: frozenset(ns) for pod, ns in namespaces.items()})

    def of(self, namespace: str, pod: str) -> float | None:
        """The pod's level; None when no series answers for it, or only an ambiguous one does."""
        own, bare = (namespace, pod) in self.by_key, ("", pod) in self.by_key
        if bare and not own and self.namespaces.get(pod, frozenset()) - {namespace}:
            return None  # a namespace-less series, and a same-name pod elsewhere: it may be that pod's
        if own and bare:
            return _busier(self.by_key[(namespace, pod)], self.by_key[("", pod)])
        if own:
            return self.by_key[(namespace, pod)]
        return self.by_key[("", pod)] if bare else None


def level(
    namespace: str,
    name: str,
    annotations: Mapping[str, str],
    labels: Mapping[str, str],
    busy: Busy,
    per_pod: PodLevels | None,
) -> float | None:
    """>0: in-flight work; 0: idle; None: unknown. `per_pod` is None when the query could not be asked."""
    for source, key in ((annotations, busy.pod_annotation), (labels, busy.pod_label)):
        if key and key in source:
            raw = source[key].strip().lower()
            if raw in _TRUE:
                return 1.0
            if raw in _FALSE:
                return 0.0
            with contextlib.suppress(ValueError):
                return _sane(float(raw))
            return None  # a value nobody can read: unknown, so busy
    if busy.query is None:
        return 0.0
    if per_pod is None:
        return None
    return per_pod.of(namespace, name)


def deletion_cost(value: float | None, workload_class: WorkloadClass) -> int | None:
    """The pod-deletion-cost for this level; None: leave the pod's cost as it is (unknown level)."""
    if value is None:
        return None
    if workload_class == WorkloadClass.CI_RUNNER:
        return BUSY_COST if value > 0 else 0
    return int(min(value, 10_000) * 100)


def deletion_costs(levels: Mapping[str, float | None], workload_class: WorkloadClass) -> dict[str, int | None]:
    """Costs for a set of pods. An unknown pod among known ones is costed as busy: the floor counts it as busy,
    and with its old cost (often 0, like the idle pods) the ReplicaSet could remove it instead of an idle pod.
    When no pod is known (the signal failed), nothing is scaled in and every cost stays as it was (None)."""
    known = any(v is not None for v in levels.values())
    return {
        name: BUSY_COST if value is None and known else deletion_cost(value, workload_class)
        for name, value in levels.items()
    }


class RemovalOrder(Enum):
    """How the workload's controller picks the pods a scale-in removes."""

    # Deployments, ReplicaSets (and every mirror): k8s pkg/controller ActivePodsWithRanks.Less, first keys: not on
    # a node < on one, Pending < Unknown < Running, not Ready < Ready, THEN lower pod-deletion-cost; the keys after
    # (pods doubled up on a node, time Ready, restarts, age) cannot be known ahead, so a tie is not safe
    REPLICA_SET = "ReplicaSet"
    # StatefulSets: the highest ordinals go (every ordinal at or above the new replicas); deletion cost is ignored
    ORDINAL = "Ordinal"
    # other kinds (custom controllers): their order is not known, only how many pods must stay
    UNKNOWN = "Unknown"


def removal_order(api_version: str, kind: str) -> RemovalOrder:
    """The order in which the controller of a workload of this kind removes pods on scale-in."""
    if api_version == "apps/v1" and kind in ("Deployment", "ReplicaSet"):
        return RemovalOrder.REPLICA_SET
    if api_version == "apps/v1" and kind == "StatefulSet":
        return RemovalOrder.ORDINAL
    return RemovalOrder.UNKNOWN


_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}  # other phases: 0, as the controller's map gives


@dataclass(frozen=True)
class Candidate:
    """A live pod (not deleting, not finished) as its controller ranks it for removal."""

    name: str
    assigned: bool  # bound to a node
    phase: str
    ready: bool  # its Ready condition, whatever the phase (podutil.IsPodReady)
    cost: int = 0  # its pod-deletion-cost annotation now; absent or unreadable: 0, as the controller reads it
    ordinal: int | None = None  # StatefulSet pods: ordinal minus the set's start ordinal; None: not known


def _protected(c: Candidate, value: float | None, protect_busy: bool) -> bool:
    """A pod the busy rules keep: unknown level (any class) or busy (CI runners). A pod on no node runs nothing,
    so removing it kills no work: the controller removes those first, and they must not hold back the others."""
    return c.assigned and (value is None or (protect_busy and value > 0))


def keep_floor(
    pods: Sequence[Candidate],
    levels: Mapping[str, float | None],
    workload_class: WorkloadClass,
    *,
    protect_busy: bool,
    order: RemovalOrder,
) -> int:
    """The fewest replicas the workload may be scaled to so that its controller removes no protected pod.

    The busy count alone protects a number of pods, not the pods: a busy runner that fails its readiness probe
    ranks before idle Ready ones whatever its deletion cost, and a StatefulSet removes its highest ordinal even when
    that one is busy. Ranking uses the costs Overspill writes before it scales (`deletion_costs` of `levels`);
    where it leaves a cost as it is, the pod's own. `levels` is keyed by pod name; a pod not in it is idle."""
    values = {c.name: levels.get(c.name, 0.0) for c in pods}
    guarded = [c for c in pods if _protected(c, values[c.name], protect_busy)]
    if not guarded:
        return 0
    if order == RemovalOrder.UNKNOWN:
        return len(guarded)
    if order == RemovalOrder.ORDINAL:
        if any(c.ordinal is None for c in guarded):
            return len(pods)  # a pod whose ordinal cannot be read: nothing is known to go before it
        return max(c.ordinal or 0 for c in guarded) + 1
    planned = deletion_costs(values, workload_class)

    def rank(c: Candidate) -> tuple[bool, int, bool, int]:
        cost = planned[c.name]
        return (c.assigned, _PHASE_RANK.get(c.phase, 0), c.ready, c.cost if cost is None else cost)

    first = min(rank(c) for c in guarded)
    return len(pods) - sum(1 for c in pods if rank(c) < first)


def ordinal(pod: str, owner: str, start: int = 0) -> int | None:
    """A StatefulSet pod's place from its name (`<set>-<ordinal>`), counted from the set's start ordinal."""
    prefix = f"{owner}-"
    tail = pod[len(prefix) :] if pod.startswith(prefix) else ""
    if not (tail.isascii() and tail.isdigit()) or (len(tail) > 1 and tail[0] == "0"):
        return None
    return int(tail) - start if int(tail) >= start else None
