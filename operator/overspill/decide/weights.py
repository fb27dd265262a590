"""HTTPRoute weights from Ready replicas per side (pure): the local Service against one ServiceImport per target.

Each target exports its burst Service under its own name (`<exportName>-<target>`), so the route holds one
ServiceImport backendRef per target, in that target's namespace. With one import shared by all targets (MCS merges
the endpoints of every cluster exporting a name), one secondary's weight could not go to 0 alone: removing its
replicas would drop requests the shared import still sends them.

Make-before-break includes traffic: a replica counts for its target only while it is Ready, reachable (its export
is Exported) AND kept by the placement. A target's replicas shrink only in a poll after its weight was lowered to
match (`held`), and never while the route cannot be read or written (the caller holds everything then).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MCS_GROUP = "multicluster.x-k8s.io"
SERVICE_IMPORT = "ServiceImport"
_NAME_MAX = 63  # a Service name is a DNS label


@dataclass(frozen=True)
class Backend:
    """One target's ServiceImport as the route names it."""

    target: str
    name: str
    namespace: str


@dataclass(frozen=True)
class Weights:
    local: int
    burst: Mapping[str, int] = field(default_factory=dict)  # per target

    @property
    def burst_total(self) -> int:
        return sum(self.burst.values())


def backend_name(base: str, target: str) -> str:
    """The burst Service's (and its export's, and so its ServiceImport's) name in one target: `<base>-<target>`,
    a valid DNS label (dots become dashes; too long: cut, with a hash of the target so names stay distinct)."""
    name = f"{base}-{target}".lower().replace(".", "-")
    if len(name) <= _NAME_MAX:
        return name
    digest = hashlib.sha256(target.encode()).hexdigest()[:8]
    return f"{name[: _NAME_MAX - 9].rstrip('-')}-{digest}"


def kept_ready(ready: Mapping[str, int], planned: Mapping[str, int]) -> dict[str, int]:
    """Ready secondary replicas that the placement keeps: min(Ready now, planned) per target."""
    return {name: min(max(0, n), max(0, planned.get(name, 0))) for name, n in ready.items()}


def weights(primary_ready: int, burst_kept_ready: Mapping[str, int]) -> Weights:
    """Proportional to Ready replicas. With nothing Ready anywhere, all weight stays local: a route whose weights
    are all 0 answers every request with an error, a local weight of 1 at least reaches pods as they come up."""
    local = max(0, primary_ready)
    burst = {t: max(0, n) for t, n in burst_kept_ready.items()}
    if local + sum(burst.values()) == 0:
        return Weights(local=1, burst=dict.fromkeys(burst, 0))
    return Weights(local=local, burst=burst)


def _is_local(ref: Mapping[str, Any], service: str, namespace: str) -> bool:
    return (
        ref.get("group", "") in ("", None)
        and ref.get("kind", "Service") == "Service"
        and ref.get("name") == service
        and ref.get("namespace", namespace) == namespace
    )


def _import(ref: Mapping[str, Any], group: str) -> bool:
    return ref.get("group") == group and ref.get("kind") == SERVICE_IMPORT


def _ours(ref: Mapping[str, Any], names: Mapping[str, str], group: str) -> str | None:
    """The target whose ServiceImport this backendRef names (by name: every known target's, and the one
    shared name used before per-target imports, keyed ""), None when it is not one of the policy's."""
    if not _import(ref, group):
        return None
    return next((t for t, n in names.items() if n == ref.get("name")), None)


def _wanted(ref: Mapping[str, Any], backends: Sequence[Backend], namespace: str) -> Backend | None:
    return next(
        (b for b in backends if ref.get("name") == b.name and ref.get("namespace", namespace) == b.namespace), None
    )


def route_rules(
    rules: Sequence[Mapping[str, Any]],
    *,
    namespace: str,
    service: str,
    backends: Sequence[Backend],
    names: Mapping[str, str],
    w: Weights,
    group: str = MCS_GROUP,
) -> list[dict[str, Any]]:
    """The route's rules with the local and each target's backendRef weighted; a target's ServiceImport
    backendRef is added next to the local one where missing. Backend refs of the policy that no target wants
    (`names`: every known target's import name; a target dropped from the spec, a moved namespace) go to weight 0
    first and are removed at the next write that finds them at 0. Rules without the local Service are left as they
    are, and so are other backends."""
    out = []
    for rule in rules:
        new = copy.deepcopy(dict(rule))
        refs = new.get("backendRefs") or []
        local = [r for r in refs if _is_local(r, service, namespace)]
        if not local:
            out.append(new)
            continue
        kept: list[dict[str, Any]] = []
        for r in refs:
            if _is_local(r, service, namespace):
                r["weight"] = w.local
            elif (b := _wanted(r, backends, namespace)) is not None and _import(r, group):
                r["weight"] = w.burst.get(b.target, 0)
            elif _ours(r, names, group) is not None:
                if int(r.get("weight", 1)) == 0:
                    continue  # drained at an earlier write: it goes now
                r["weight"] = 0
            kept.append(r)
        for b in backends:
            if not any(_import(r, group) and _wanted(r, [b], namespace) for r in kept):
                burst: dict[str, Any] = {"group": group, "kind": SERVICE_IMPORT, "name": b.name}
                if b.namespace != namespace:
                    burst["namespace"] = b.namespace
                if "port" in local[0]:
                    burst["port"] = local[0]["port"]
                burst["weight"] = w.burst.get(b.target, 0)
                kept.append(burst)
        new["backendRefs"] = kept
        out.append(new)
    return out


def current(
    rules: Sequence[Mapping[str, Any]],
    *,
    namespace: str,
    service: str,
    names: Mapping[str, str],
    group: str = MCS_GROUP,
) -> Weights | None:
    """The weights the route holds now, per target (every backendRef of the policy's, wanted or not, in the rules
    that have the local Service); None if no rule has the local Service."""
    local: int | None = None
    burst: dict[str, int] = {}
    for rule in rules:
        refs = rule.get("backendRefs") or []
        here = next((r for r in refs if _is_local(r, service, namespace)), None)
        if here is None:
            continue
        local = int(here.get("weight", 1)) if local is None else local
        for r in refs:
            target = _ours(r, names, group)
            if target is not None:
                burst[target] = max(burst.get(target, 0), int(r.get("weight", 1)))
    return None if local is None else Weights(local=local, burst=burst)


def sends_to_burst(rules: Sequence[Mapping[str, Any]], names: Mapping[str, str], group: str = MCS_GROUP) -> bool:
    """Any backendRef of the policy's, in any rule, with a weight above 0."""
    return any(
        _ours(r, names, group) is not None and int(r.get("weight", 1)) > 0
        for rule in rules
        for r in rule.get("backendRefs") or []
    )


def without_burst(
    rules: Sequence[Mapping[str, Any]], *, names: Mapping[str, str], group: str = MCS_GROUP
) -> list[dict[str, Any]]:
    """The policy is going: every backendRef of the policy's goes to weight 0, and one already at 0 is removed.
    Two calls empty the route of the policy's backends, with a drain between them."""
    out = []
    for rule in rules:
        new = copy.deepcopy(dict(rule))
        refs = new.get("backendRefs")
        if refs:
            kept = []
            for r in refs:
                if _ours(r, names, group) is not None:
                    if int(r.get("weight", 1)) == 0:
                        continue
                    r["weight"] = 0
                kept.append(r)
            new["backendRefs"] = kept
        out.append(new)
    return out


def held(before: Weights | None, now: Weights | None, targets: Collection[str]) -> set[str]:
    """Targets whose replicas must not shrink in this poll: their weight was lowered by this poll's write, so
    requests leave a replica before the replica leaves (make-before-break for traffic)."""
    was = before.burst if before is not None else {}
    will = now.burst if now is not None else {}
    return {t for t in targets if will.get(t, 0) < was.get(t, 0)}
