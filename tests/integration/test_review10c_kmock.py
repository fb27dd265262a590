"""Found by the end-of-session review of issue 10, each failed before: a namespace that copies create in a target
carries the target's Pod Security labels; a policy re-pointed to another target of its cluster keeps its mirror."""

from __future__ import annotations

import asyncio
from typing import Any

import kmock as kmock_lib
import pytest

from overspill.adapters import mirror as mirror_adapter
from overspill.adapters.kube import Cluster
from overspill.adapters.mirror import POLICY_UID
from overspill.api import parse_target_spec
from overspill.api.policy import BurstPolicyStatus
from overspill.targets import TargetRegistry
from overspill.views import MANAGED_SELECTOR
from overspill.views.resource import DEPLOYMENTS, PODS
from tests.integration.conftest import FakeMetrics, deployment, pod
from tests.integration.safety_setup import (
    MANAGED,
    REF,
    make,
    mirror_seen,
    tick,
    until,
    workload_reading_a_config_map,
    writes,
)
from tests.integration.test_reconcile_kmock import _close_views, spec, synced_view

pytestmark = pytest.mark.integration
__all__ = ["_close_views"]


def _missing_namespaces(emulator: Any, existing: set[str]) -> None:
    """The API server's rule kmock lacks: a namespaced object cannot be created in a namespace that does not exist
    (404 with details.kind namespaces, which is what the adapters look for before creating it)."""

    def create(plural: str, group: str) -> Any:
        def handler(request: Any) -> dict[str, Any]:
            if request.namespace not in existing:
                raise kmock_lib.KubernetesNotFoundError(
                    message=f'namespaces "{request.namespace}" not found',
                    details={"name": request.namespace, "kind": "namespaces"},
                )
            body = dict(request.data)
            emulator.objects[f"{group}/{plural}", request.namespace, body["metadata"]["name"]] = body
            return body

        return handler

    emulator["post", emulator.resource("v1/configmaps")] << create("configmaps", "v1")
    emulator["post", emulator.resource("apps/v1/deployments")] << create("deployments", "apps/v1")


async def test_a_namespace_created_for_a_copy_carries_the_targets_pod_security_labels(
    emulator: Any, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copies are written before the mirror (_act_serving runs first), through Side.ensure_namespace, which is
    MirrorClient.ensure_namespace without labels: the namespace is created with no Pod Security labels, and the
    mirror's create then finds it existing. A template the primary's admission refuses runs in the secondary."""
    emulator.resources["v1/configmaps"] = {
        "kind": "ConfigMap",
        "namespaced": True,
        "verbs": ["get", "list", "create", "update", "patch", "delete"],
    }
    workload_reading_a_config_map(emulator)
    existing = {"ml"}
    _missing_namespaces(emulator, existing)
    created: list[tuple[str, dict[str, str] | None]] = []

    def ensure_namespace(self: Any, namespace: str, labels: dict[str, str] | None = None) -> None:
        # kmock cannot parse POST /api/v1/namespaces (500 in its request parser): record what would be created
        if namespace not in existing:
            existing.add(namespace)
            created.append((namespace, labels))

    monkeypatch.setattr(mirror_adapter.MirrorClient, "ensure_namespace", ensure_namespace)
    r = await make(cluster, FakeMetrics(150))
    await tick(r, spec())
    assert created, writes(emulator)
    namespace, labels = created[0]
    assert (labels or {}).get("pod-security.kubernetes.io/enforce") == "baseline", (
        f"namespace {namespace} created with labels {labels}; writes: {writes(emulator)}"
    )


@pytest.mark.parametrize("workload_class", ["Inference", "CIRunner"])
async def test_re_pointing_a_policy_to_another_target_of_the_same_cluster_keeps_its_mirror(
    emulator: Any, cluster: Cluster, workload_class: str
) -> None:
    """BurstTargets `old` and `new` name one cluster; the policy's spec moves from `old` to `new`. The mirror (3
    replicas, placed by `old`) is the Deployment `new` wants: the re-point must not scale it down."""
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 8)
    placed = deployment("vllm", "mirror", 3, labels=MANAGED)
    placed["metadata"]["annotations"] = {"overspill.dev/target": "old"}
    emulator.objects["apps/v1/deployments", "mirror", "vllm"] = placed
    registry = TargetRegistry()
    for name in ("old", "new"):
        registry.upsert(
            name,
            parse_target_spec(
                {"kubeconfigSecretRef": {"name": "s", "namespace": "ops"}, "allowedTargetNamespaces": ["mirror"]}
            ),
        )
        registry.set_health(name, cluster=cluster, healthy=True, message="ok")
        registry.set_view(name, await synced_view(name, cluster))
    r = await make(cluster, FakeMetrics(110), registry=registry)  # 110/10 = 11: 8 at home, 3 in the target
    handle = registry.get("new")
    assert handle is not None and handle.view is not None

    await until(lambda: handle.view.cache(DEPLOYMENTS, MANAGED_SELECTOR).get("mirror", "vllm") is not None)
    ci = {"workloadClass": "CIRunner", "minReplicas": 0, "busy": {"podAnnotation": "busy"}}
    extra = ci if workload_class == "CIRunner" else {}
    s = spec(targets=[{"name": "new", "overrides": {"namespace": "mirror"}}], **extra)
    await tick(r, s)
    seen = [w for w in writes(emulator) if "/namespaces/mirror/deployments/vllm" in w]
    final = int(emulator.objects["apps/v1/deployments", "mirror", "vllm"]["spec"]["replicas"])
    assert final == 3, f"mirror scaled to {final}; writes: {seen}"


@pytest.mark.parametrize("workload_class", ["CIRunner", "Inference"])
async def test_deleting_a_policy_whose_spec_no_longer_parses_keeps_its_busy_pods(
    emulator: Any, cluster: Cluster, workload_class: str
) -> None:
    """rev10c: the finalizer parses the stored spec; when that fails (an edit the CRD schema admits but the
    operator refuses, or a rule tightened by an upgrade) it released with no busy rules, and every pod of the
    mirror counted as idle: the busy runner was scaled away with the idle one. Unknown rules = busy (issue 10, 1)."""
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 8)
    emulator.objects["apps/v1/deployments", "mirror", "vllm"] = deployment("vllm", "mirror", 2, labels=MANAGED)
    emulator.objects["v1/pods", "mirror", "m-busy"] = pod("m-busy", "mirror", labels=MANAGED, annotations={"b": "true"})
    emulator.objects["v1/pods", "mirror", "m-idle"] = pod("m-idle", "mirror", labels=MANAGED)
    r = await make(cluster, FakeMetrics(100))  # 10 wanted: 8 at home, 2 in the mirror (what runs)
    s = spec(workloadClass=workload_class, minReplicas=0, busy={"podAnnotation": "b"})
    await tick(r, s)
    assert int(emulator.objects["apps/v1/deployments", "mirror", "vllm"]["spec"]["replicas"]) == 2
    await until(lambda: len(r.targets.get("aws").view.cache(PODS).by_label(POLICY_UID, "uid-1")) == 2)  # type: ignore[union-attr]
    result = await asyncio.to_thread(r.release, REF, None, places={("aws", "mirror")})  # as the finalizer calls it
    left = int(emulator.objects["apps/v1/deployments", "mirror", "vllm"]["spec"]["replicas"])
    assert left == 2, f"a pod of unknown busy-ness was scaled away: {left} left; writes: {writes(emulator)[-3:]}"
    assert "aws" in result.pending


async def test_deleting_a_policy_whose_spec_no_longer_parses_and_has_no_busy_rules_goes_on(
    emulator: Any, cluster: Cluster
) -> None:
    """Without a `busy` field the stored spec had no busy rules whatever else fails in it: nothing to hold."""
    emulator.objects["apps/v1/deployments", "mirror", "vllm"] = deployment("vllm", "mirror", 2, labels=MANAGED)
    emulator.objects["v1/pods", "mirror", "m-1"] = pod("m-1", "mirror", labels=MANAGED)
    r = await make(cluster, FakeMetrics(100))
    await until(lambda: r.targets.get("aws").view.cache(PODS).by_label(POLICY_UID, "uid-1"))  # type: ignore[union-attr]
    await asyncio.to_thread(r.release, REF, None, places={("aws", "mirror")}, busy_rules=False)
    assert int(emulator.objects["apps/v1/deployments", "mirror", "vllm"]["spec"]["replicas"]) == 0


@pytest.mark.parametrize("workload_class", ["Inference", "CIRunner"])
async def test_a_change_of_only_the_primarys_strategy_reaches_the_mirror(
    emulator: Any, cluster: Cluster, workload_class: str
) -> None:
    """The mirror's template hash covers the template, not the rollout strategy: a primary switched to Recreate
    (and nothing else) left the mirror rolling by RollingUpdate until the next template change. A strategy change
    restarts no pod, so a busy runner does not hold it back."""
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 2)
    emulator.objects["v1/pods", "mirror", "m-busy"] = pod("m-busy", "mirror", labels=MANAGED, annotations={"b": "true"})
    r = await make(cluster, FakeMetrics(150))
    ci = {"workloadClass": "CIRunner", "minReplicas": 0, "busy": {"podAnnotation": "b"}}
    s = spec(**(ci if workload_class == "CIRunner" else {}))
    out = await tick(r, s)
    await until(lambda: mirror_seen(r, "mirror") == 7)
    assert emulator.objects["apps/v1/deployments", "mirror", "vllm"]["spec"]["strategy"]["type"] == "RollingUpdate"
    recreate = {"spec": {"strategy": {"type": "Recreate", "rollingUpdate": None}}}
    await asyncio.to_thread(cluster.apps.patch_namespaced_deployment, "vllm", "ml", recreate)
    primary = r.primary_view.cache(DEPLOYMENTS)
    seen = lambda: ((primary.get("ml", "vllm") or {}).get("spec") or {}).get("strategy") or {}  # noqa: E731
    await until(lambda: seen().get("type") == "Recreate")  # the primary's view has the change
    await tick(r, s, BurstPolicyStatus.model_validate(out.status))
    strategy = emulator.objects["apps/v1/deployments", "mirror", "vllm"]["spec"]["strategy"]
    assert strategy["type"] == "Recreate", strategy
