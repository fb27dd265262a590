"""How many more pods of one shape fit in a cluster, from the cluster's own accounting (pure, no I/O).

Like the scheduler's NodeResourcesFit, node affinity and taint filters, reduced to what decides whether a
replica can run: allocatable minus the requests of pods bound to each node, for every resource the pod
requests, on nodes whose labels, taints and schedulability admit it. It is an estimate: the scheduler's
Unschedulable signal stays the ground truth when the two disagree (the engine remembers the disagreement).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

_SUFFIX = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
PODS = "pods"


def quantity_milli(value: Any) -> int:
    """A Kubernetes quantity ("500m", "4", "16Gi", 2) in thousandths, rounded up; unparseable counts as 0."""
    text = str(value).strip()
    m = _QUANTITY.match(text)
    if not m or m.group(2) not in _SUFFIX:
        return 0
    try:
        amount = Decimal(m.group(1)) * _SUFFIX[m.group(2)] * 1000
    except InvalidOperation:
        return 0
    return int(amount.to_integral_value(rounding="ROUND_CEILING"))


@dataclass(frozen=True)
class Toleration:
    key: str | None = None
    operator: str = "Equal"
    value: str | None = None
    effect: str | None = None

    def tolerates(self, taint: Taint) -> bool:
        if self.effect and self.effect != taint.effect:
            return False
        if self.key is None:  # an empty key with Exists tolerates everything
            return self.operator == "Exists"
        if self.key != taint.key:
            return False
        return self.operator == "Exists" or (self.value or "") == (taint.value or "")


@dataclass(frozen=True)
class Taint:
    key: str
    effect: str
    value: str | None = None


@dataclass(frozen=True)
class Requirement:
    """One nodeSelectorRequirement (matchExpressions) of required node affinity."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        if self.operator == "In":
            return has and labels[self.key] in self.values
        if self.operator == "NotIn":
            return not has or labels[self.key] not in self.values
        if self.operator == "Exists":
            return has
        if self.operator == "DoesNotExist":
            return not has
        if self.operator in ("Gt", "Lt") and has and self.values:
            try:
                mine, theirs = int(labels[self.key]), int(self.values[0])
            except ValueError:
                return False
            return mine > theirs if self.operator == "Gt" else mine < theirs
        return False


@dataclass(frozen=True)
class PodShape:
    """What one replica asks of a node."""

    requests: Mapping[str, int] = field(default_factory=dict)  # resource -> milli-units
    node_selector: Mapping[str, str] = field(default_factory=dict)
    # required node affinity: ORed terms, each an ANDed tuple of requirements; empty means no constraint
    affinity_terms: tuple[tuple[Requirement, ...], ...] = ()
    tolerations: tuple[Toleration, ...] = ()

    def admits(self, node: NodeState) -> bool:
        if node.unschedulable or not node.ready:
            return False
        if any(node.labels.get(k) != v for k, v in self.node_selector.items()):
            return False
        if self.affinity_terms and not any(all(r.matches(node.labels) for r in t) for t in self.affinity_terms):
            return False
        return all(
            any(tol.tolerates(t) for tol in self.tolerations)
            for t in node.taints
            if t.effect in ("NoSchedule", "NoExecute")
        )


@dataclass(frozen=True)
class NodeState:
    name: str
    allocatable: Mapping[str, int]  # resource -> milli-units
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    unschedulable: bool = False
    ready: bool = True


def room(nodes: Iterable[NodeState], used: Mapping[str, Mapping[str, int]], shape: PodShape) -> int:
    """How many more pods of `shape` fit: per admitting node, the tightest resource's free share.

    `used` is, per node name, the summed requests (milli-units, "pods" counted 1000 each) of pods bound there.
    """
    total = 0
    wanted = {r: q for r, q in shape.requests.items() if q > 0}
    wanted[PODS] = 1000  # every pod takes a slot of the node's pod capacity
    for node in nodes:
        if not shape.admits(node):
            continue
        node_used = used.get(node.name, {})
        fit: int | None = None
        for resource, need in wanted.items():
            if resource not in node.allocatable:
                if resource == PODS:
                    continue  # a node that does not report pods: no pod-count limit known
                fit = 0
                break
            free = node.allocatable[resource] - node_used.get(resource, 0)
            n = max(0, free // need)
            fit = n if fit is None else min(fit, n)
        total += fit or 0
    return total


# ---- from Kubernetes objects (plain dicts as the API serves them) ------------------------------------------


def pod_requests(pod_spec: Mapping[str, Any]) -> dict[str, int]:
    """Effective requests as the scheduler computes them (resourcehelper.PodRequests), plus pod overhead.

    Containers and native sidecars (init containers with restartPolicy Always, which run for the pod's whole
    life) add up; a classic init container needs its own requests plus the sidecars started before it, and the
    pod needs the larger of the two. A container with limits but no requests requests its limits (the API
    server's defaulting).
    """

    def of(container: Mapping[str, Any]) -> dict[str, int]:
        res = container.get("resources") or {}
        merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        return {k: quantity_milli(v) for k, v in merged.items()}

    def add(into: dict[str, int], more: Mapping[str, int]) -> None:
        for k, v in more.items():
            into[k] = into.get(k, 0) + v

    total: dict[str, int] = {}
    for c in pod_spec.get("containers") or []:
        add(total, of(c))
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for c in pod_spec.get("initContainers") or []:
        req = of(c)
        if c.get("restartPolicy") == "Always":
            add(sidecars, req)
            need = dict(sidecars)
        else:
            need = dict(sidecars)
            add(need, req)
        for k, v in need.items():
            init_peak[k] = max(init_peak.get(k, 0), v)
    add(total, sidecars)
    for k, v in init_peak.items():
        total[k] = max(total.get(k, 0), v)
    for k, v in (pod_spec.get("overhead") or {}).items():
        total[k] = total.get(k, 0) + quantity_milli(v)
    return total


def shape_key(shape: PodShape) -> tuple[Any, ...]:
    """A hashable name for a shape: pods of equal shapes share one answer."""
    return (
        tuple(sorted(shape.requests.items())),
        tuple(sorted(shape.node_selector.items())),
        shape.affinity_terms,
        shape.tolerations,
    )


def shape_of(pod_spec: Mapping[str, Any]) -> PodShape:
    """The shape of a pod template's spec."""
    terms: list[tuple[Requirement, ...]] = []
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in required.get("nodeSelectorTerms") or []:
        reqs = tuple(
            Requirement(str(e.get("key", "")), str(e.get("operator", "In")), tuple(map(str, e.get("values") or ())))
            for e in term.get("matchExpressions") or []
        )
        terms.append(reqs)
    tolerations = tuple(
        Toleration(
            key=t.get("key") or None,
            operator=str(t.get("operator") or "Equal"),
            value=t.get("value"),
            effect=t.get("effect") or None,
        )
        for t in pod_spec.get("tolerations") or []
    )
    return PodShape(
        requests=pod_requests(pod_spec),
        node_selector={str(k): str(v) for k, v in (pod_spec.get("nodeSelector") or {}).items()},
        affinity_terms=tuple(terms),
        tolerations=tolerations,
    )


def admitted_shape(template_spec: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> PodShape:
    """The shape of a replica as the API server admitted it: a pod of the workload that is bound carries what
    admission added to the template (a mesh sidecar injected by a webhook, LimitRange defaults). Per resource,
    the larger of the template's and that pod's requests: never less than either (a rollout may be under way)."""
    shape = shape_of(template_spec)
    bound = [
        p
        for p in pods
        if (p.get("spec") or {}).get("nodeName") and not (p.get("metadata") or {}).get("deletionTimestamp")
    ]
    if not bound:
        return shape
    admitted = pod_requests(bound[0].get("spec") or {})
    merged = dict(shape.requests)
    for k, v in admitted.items():
        merged[k] = max(merged.get(k, 0), v)
    return PodShape(
        requests=merged,
        node_selector=shape.node_selector,
        affinity_terms=shape.affinity_terms,
        tolerations=shape.tolerations,
    )


def node_state(node: Mapping[str, Any]) -> NodeState:
    meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return NodeState(
        name=str(meta.get("name", "")),
        allocatable={k: quantity_milli(v) for k, v in (status.get("allocatable") or {}).items()},
        labels=dict(meta.get("labels") or {}),
        taints=tuple(
            Taint(key=str(t.get("key", "")), effect=str(t.get("effect", "")), value=t.get("value"))
            for t in spec.get("taints") or []
        ),
        unschedulable=bool(spec.get("unschedulable")),
        ready=ready,
    )


def usage_by_node(pods: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Summed requests of the pods bound to each node (finished pods hold nothing)."""
    used: dict[str, dict[str, int]] = {}
    for p in pods:
        spec, status = p.get("spec") or {}, p.get("status") or {}
        node = spec.get("nodeName")
        if not node or status.get("phase") in ("Succeeded", "Failed"):
            continue
        bucket = used.setdefault(str(node), {})
        for k, v in pod_requests(spec).items():
            bucket[k] = bucket.get(k, 0) + v
        bucket[PODS] = bucket.get(PODS, 0) + 1000
    return used
