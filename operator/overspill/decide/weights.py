"""HTTPRoute weights from Ready replicas per side (pure): the local Service against the imported burst service.

Make-before-break includes traffic: a replica counts for its side only while it is Ready AND kept by the
placement, so a secondary's weight drops before its replicas are removed, and a new replica gets weight only once
it is Ready.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MCS_GROUP = "multicluster.x-k8s.io"
SERVICE_IMPORT = "ServiceImport"


@dataclass(frozen=True)
class Weights:
    local: int
    burst: int


def kept_ready(ready: Mapping[str, int], planned: Mapping[str, int]) -> int:
    """Ready secondary replicas that the placement keeps: min(Ready now, planned) per target."""
    return sum(min(max(0, n), max(0, planned.get(name, 0))) for name, n in ready.items())


def weights(primary_ready: int, secondary_kept_ready: int) -> Weights:
    """Proportional to Ready replicas. With nothing Ready anywhere, all weight stays local: a route whose weights
    are all 0 answers every request with an error, a local weight of 1 at least reaches pods as they come up."""
    local, burst = max(0, primary_ready), max(0, secondary_kept_ready)
    if local + burst == 0:
        return Weights(local=1, burst=0)
    return Weights(local=local, burst=burst)


def _is_local(ref: Mapping[str, Any], service: str, namespace: str) -> bool:
    return (
        ref.get("group", "") in ("", None)
        and ref.get("kind", "Service") == "Service"
        and ref.get("name") == service
        and ref.get("namespace", namespace) == namespace
    )


def _is_burst(
    ref: Mapping[str, Any], export: str, export_namespace: str, namespace: str, group: str = MCS_GROUP
) -> bool:
    return (
        ref.get("group") == group
        and ref.get("kind") == SERVICE_IMPORT
        and ref.get("name") == export
        and ref.get("namespace", namespace) == export_namespace
    )


def route_rules(
    rules: Sequence[Mapping[str, Any]],
    *,
    namespace: str,
    service: str,
    export: str,
    export_namespace: str,
    w: Weights,
    group: str = MCS_GROUP,
) -> list[dict[str, Any]]:
    """The route's rules with the local and burst backendRefs weighted; the burst backendRef (a ServiceImport,
    GEP-1748) is added next to the local one where missing. Rules without the local Service are left as they are,
    and so are other backends."""
    out = []
    for rule in rules:
        new = copy.deepcopy(dict(rule))
        refs = new.get("backendRefs") or []
        local = [r for r in refs if _is_local(r, service, namespace)]
        if local:
            for r in refs:
                if _is_local(r, service, namespace):
                    r["weight"] = w.local
                elif _is_burst(r, export, export_namespace, namespace, group):
                    r["weight"] = w.burst
            if not any(_is_burst(r, export, export_namespace, namespace, group) for r in refs):
                burst: dict[str, Any] = {"group": group, "kind": SERVICE_IMPORT, "name": export, "weight": w.burst}
                if export_namespace != namespace:
                    burst["namespace"] = export_namespace
                if "port" in local[0]:
                    burst["port"] = local[0]["port"]
                refs.append(burst)
            new["backendRefs"] = refs
        out.append(new)
    return out


def current(
    rules: Sequence[Mapping[str, Any]],
    *,
    namespace: str,
    service: str,
    export: str,
    export_namespace: str,
    group: str = MCS_GROUP,
) -> Weights | None:
    """The weights the route holds now (first rule that has the local Service), None if it has none."""
    for rule in rules:
        refs = rule.get("backendRefs") or []
        local = next((r for r in refs if _is_local(r, service, namespace)), None)
        if local is None:
            continue
        burst = next((r for r in refs if _is_burst(r, export, export_namespace, namespace, group)), None)
        return Weights(local=int(local.get("weight", 1)), burst=int(burst.get("weight", 1)) if burst else 0)
    return None


def without_burst(
    rules: Sequence[Mapping[str, Any]],
    *,
    namespace: str,
    service: str,
    export: str,
    export_namespace: str,
    group: str = MCS_GROUP,
) -> list[dict[str, Any]]:
    """The rules with the burst backendRef removed (the policy is gone: all traffic is local again)."""
    out = []
    for rule in rules:
        new = copy.deepcopy(dict(rule))
        refs = new.get("backendRefs")
        if refs and any(_is_local(r, service, namespace) for r in refs):
            new["backendRefs"] = [r for r in refs if not _is_burst(r, export, export_namespace, namespace, group)]
        out.append(new)
    return out


def drain_first(before: Weights | None, now: Weights | None) -> bool:
    """The burst side's weight was lowered this step: its replicas stay one more poll, so that requests leave a
    replica before the replica leaves (make-before-break for traffic)."""
    return before is not None and now is not None and now.burst < before.burst
