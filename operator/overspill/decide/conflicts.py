"""Another autoscaler on the same workload (pure): an HPA or a KEDA ScaledObject would fight Overspill over
`/scale`, each undoing the other's writes every few seconds. The policy refuses (`Conflict`) until it is gone."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from overspill.api.policy import WorkloadRef


def _group(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def _targets(ref: Mapping[str, Any], workload: WorkloadRef) -> bool:
    # an omitted kind/apiVersion means apps/v1 Deployment (KEDA's default; an HPA always names both)
    kind = str(ref.get("kind") or "Deployment")
    group = _group(str(ref.get("apiVersion") or "apps/v1"))
    return ref.get("name") == workload.name and kind == workload.kind and group == _group(workload.api_version)


def autoscaler_conflict(
    workload: WorkloadRef, hpas: Iterable[Mapping[str, Any]], scaled_objects: Iterable[Mapping[str, Any]]
) -> str | None:
    """A message naming the other autoscaler, or None. Objects are those of the policy's namespace."""
    what = f"{workload.kind} {workload.name}"
    for hpa in hpas:
        if _targets((hpa.get("spec") or {}).get("scaleTargetRef") or {}, workload):
            name = (hpa.get("metadata") or {}).get("name", "?")
            return (
                f"HorizontalPodAutoscaler {name} also scales {what}: two autoscalers would undo each other's "
                "writes; nothing is scaled until it is removed (or this policy is)"
            )
    for so in scaled_objects:
        # KEDA's scaleTargetRef: name, and kind/apiVersion defaulting to apps/v1 Deployment
        if _targets((so.get("spec") or {}).get("scaleTargetRef") or {}, workload):
            name = (so.get("metadata") or {}).get("name", "?")
            return (
                f"KEDA ScaledObject {name} also scales {what}: two autoscalers would undo each other's writes; "
                "nothing is scaled until it is removed (or this policy is)"
            )
    return None
