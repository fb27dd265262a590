"""kmock: an in-memory Kubernetes API over real HTTP, for fast tests of the reconciler and handlers' helpers."""

from __future__ import annotations

from typing import Any

import kmock as kmock_lib
import pytest
from kubernetes import client

from overspill.adapters.kube import Cluster
from overspill.adapters.prometheus import MetricError
from overspill.decide.busy import PodLevels

POD_TEMPLATE = {
    "metadata": {"labels": {"app": "vllm"}},
    "spec": {"containers": [{"name": "server", "image": "vllm:1", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]},
}


def deployment(name: str, ns: str, replicas: int, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": POD_TEMPLATE},
        "status": {"readyReplicas": replicas},
    }


def pod(
    name: str,
    ns: str,
    *,
    running: bool = True,
    unschedulable_since: str | None = None,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    if running:
        status = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    else:
        status = {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "lastTransitionTime": unschedulable_since,
                }
            ],
        }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "status": status,
        "spec": {"containers": [{"name": "c", "image": "x"}]},
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {"app": "vllm", **(labels or {})},
            "annotations": annotations or {},
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
    }


class FakeMetrics:
    """The MetricSource interface with a value the test sets (or an outage)."""

    def __init__(self, value: float | None = 0.0) -> None:
        self.queue = value
        self.per_pod_values: dict[str, float] | None = {}  # None: the busy query fails
        self.per_pod_by_url: dict[str, dict[str, float]] = {}  # answers of other Prometheus servers, by URL

    def value(self, url: str, query: str, timeout: float) -> float:
        if self.queue is None:
            raise MetricError(f"query to {url} failed: ConnectionError")
        return self.queue

    def per_pod(self, url: str, query: str, timeout: float) -> PodLevels:
        """Keys are pod names (a series without a namespace label) or "namespace/pod"."""
        values = self.per_pod_by_url.get(url, self.per_pod_values)
        if values is None:
            raise MetricError(f"query to {url} failed: HTTP 503")
        keyed = ((key.rpartition("/"), value) for key, value in values.items())
        return PodLevels.from_series((namespace, pod, value) for (namespace, _, pod), value in keyed)


@pytest.fixture
def emulator(kmock: Any) -> Any:
    kmock.resources["apps/v1/deployments"] = {
        "kind": "Deployment",
        "namespaced": True,
        "subresources": ["scale"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    }
    kmock.resources["v1/pods"] = {"kind": "Pod", "namespaced": True, "verbs": ["get", "list", "watch", "patch"]}
    kmock.resources["v1/namespaces"] = {"kind": "Namespace", "namespaced": False, "verbs": ["get", "create"]}
    kmock.resources["v1/secrets"] = {"kind": "Secret", "namespaced": True, "verbs": ["get"]}

    def get_scale(request: Any) -> dict[str, Any]:
        try:
            obj = kmock.objects["apps/v1/deployments", request.namespace, request.name]
        except KeyError:
            raise kmock_lib.KubernetesObjectNotFoundError(f"deployments.apps {request.name!r} not found") from None
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "spec": {"replicas": obj["spec"]["replicas"]},
            "status": {"selector": "app=" + request.name, "replicas": obj["spec"]["replicas"]},
            "metadata": {"name": request.name, "namespace": request.namespace},
        }

    kmock["get", kmock.resource("apps/v1/deployments"), kmock.subresource("scale")] << get_scale
    return kmock


@pytest.fixture
def cluster(emulator: Any) -> Cluster:
    cfg = client.Configuration()
    cfg.host = str(emulator.url).rstrip("/")
    return Cluster(client.ApiClient(cfg))
