"""What the kmock tests of the safety promises (issue 10) share: a Reconciler over the emulator with one BurstTarget
`aws` on the same cluster, a tick run off the loop that serves kmock, waiting for the views, and reading what the
emulator holds. A primary workload that reads a ConfigMap (so copies go with the mirror) is set up here too."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from overspill.adapters.kube import Cluster
from overspill.api import BurstPolicySpec, parse_target_spec
from overspill.api.policy import BurstPolicyStatus
from overspill.reconcile import Outcome, PolicyRef, Reconciler
from overspill.targets import TargetRegistry
from tests.integration.conftest import FakeMetrics, deployment
from tests.integration.test_reconcile_kmock import Clock, synced_view

REF = PolicyRef(namespace="ml", name="vllm", uid="uid-1")
COST = "controller.kubernetes.io/pod-deletion-cost"
MANAGED = {"app.kubernetes.io/managed-by": "overspill", "overspill.dev/policy-uid": "uid-1"}
CI = {"workloadClass": "CIRunner", "minReplicas": 0}


async def make(
    cluster: Cluster,
    metrics: FakeMetrics,
    *,
    target: dict[str, Any] | None = None,
    registry: TargetRegistry | None = None,
) -> Reconciler:
    if registry is None:
        registry = TargetRegistry()
        registry.upsert(
            "aws",
            parse_target_spec(
                {
                    "kubeconfigSecretRef": {"name": "s", "namespace": "ops"},
                    "allowedTargetNamespaces": ["mirror", "mirror2", "ml"],
                    **(target or {}),
                }
            ),
        )
        registry.set_health("aws", cluster=cluster, healthy=True, message="ok")
        registry.set_view("aws", await synced_view("aws", cluster))
    return Reconciler(
        primary=cluster,
        primary_view=await synced_view("primary", cluster),
        targets=registry,
        metrics_source=metrics,
        default_prometheus_url="http://prom:9090",
        origin_cluster="primary",
        clock=Clock(),
    )


async def tick(
    r: Reconciler, s: BurstPolicySpec, prev: BurstPolicyStatus | None = None, ref: PolicyRef = REF
) -> Outcome:
    return await asyncio.to_thread(r.reconcile, ref, s, prev or BurstPolicyStatus(), 1)


async def until(check: Callable[[], object], within: float = 5.0) -> None:
    """Wait for the views to see what the emulator holds (the watch delivers it a moment later)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {check}")
        await asyncio.sleep(0.05)


def mirror_seen(r: Reconciler, ns: str, name: str = "vllm") -> int | None:
    """Replicas of the mirror as the target's view holds it (None: not there)."""
    from overspill.views import MANAGED_SELECTOR
    from overspill.views.resource import DEPLOYMENTS

    handle = r.targets.get("aws")
    assert handle is not None and handle.view is not None
    obj = handle.view.cache(DEPLOYMENTS, MANAGED_SELECTOR).get(ns, name)
    return None if obj is None else int(obj["spec"]["replicas"])


def writes(emulator: Any) -> list[str]:
    return [f"{r.method.value} {r.url.path}" for r in emulator if r.method.value != "GET"]


def kinds(out: Outcome) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in out.status["conditions"]}


def events(out: Outcome) -> list[tuple[str, str]]:
    return [(t, r) for t, r, _ in out.events]


def replicas(emulator: Any, ns: str, name: str = "vllm") -> int | None:
    obj = emulator.objects[("apps/v1/deployments", ns, name)] if present(emulator, ns, name) else None
    return None if obj is None else int(obj["spec"]["replicas"])


def present(emulator: Any, ns: str, name: str = "vllm") -> bool:
    try:
        emulator.objects["apps/v1/deployments", ns, name]
    except KeyError:
        return False
    return True


def workload_reading_a_config_map(emulator: Any, replicas: int = 8) -> None:
    """The primary Deployment ml/vllm whose pods read the ConfigMap ml/vllm-config (a dependency copied along)."""
    workload = deployment("vllm", "ml", replicas)
    workload["spec"]["template"] = {
        "metadata": {"labels": {"app": "vllm"}},
        "spec": {"containers": [{"name": "s", "image": "x", "envFrom": [{"configMapRef": {"name": "vllm-config"}}]}]},
    }
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = workload
    emulator.objects["v1/configmaps", "ml", "vllm-config"] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "vllm-config", "namespace": "ml"},
        "data": {"k": "v"},
    }
