"""Which kind a watch follows: group, version, plural, and whether it lives in namespaces."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace and self.namespaced:
            base += f"/namespaces/{namespace}"
        return f"{base}/{self.plural}"

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


PODS = Resource("", "v1", "pods")
NODES = Resource("", "v1", "nodes", namespaced=False)
DEPLOYMENTS = Resource("apps", "v1", "deployments")
STATEFULSETS = Resource("apps", "v1", "statefulsets")
REPLICASETS = Resource("apps", "v1", "replicasets")
CONFIGMAPS = Resource("", "v1", "configmaps")
SECRETS = Resource("", "v1", "secrets")
SERVICEACCOUNTS = Resource("", "v1", "serviceaccounts")
SERVICES = Resource("", "v1", "services")
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
HPAS = Resource("autoscaling", "v2", "horizontalpodautoscalers")
SCALEDOBJECTS = Resource("keda.sh", "v1alpha1", "scaledobjects")  # KEDA; absent where it is not installed

_WELL_KNOWN = {
    ("apps/v1", "Deployment"): DEPLOYMENTS,
    ("apps/v1", "StatefulSet"): STATEFULSETS,
    ("apps/v1", "ReplicaSet"): REPLICASETS,
}


def well_known(api_version: str, kind: str) -> Resource | None:
    """The Resource of a built-in workload kind; None for others (found through discovery)."""
    return _WELL_KNOWN.get((api_version, kind))
