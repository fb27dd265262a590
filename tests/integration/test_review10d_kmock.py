"""Issue 10 review 10d (adversarial): safety promises that still break on main. Each test failed on main when
written (branch rev10d); the report names the likely fix location."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from overspill.adapters.kube import Cluster
from overspill.views import MANAGED_SELECTOR
from overspill.views.resource import DEPLOYMENTS, PODS
from tests.integration.conftest import FakeMetrics, deployment, pod
from tests.integration.safety_setup import CI, COST, MANAGED, REF, kinds, make, replicas, tick, until
from tests.integration.test_reconcile_kmock import _close_views, spec

pytestmark = pytest.mark.integration
__all__ = ["_close_views"]

_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def _rank(p: dict[str, Any]) -> tuple[int, int, int, int]:
    """A pod's place in the ReplicaSet controller's deletion order (k8s.io/kubernetes pkg/controller
    ActivePodsWithRanks.Less, 1.34), first keys only: unassigned before assigned, Pending < Unknown < Running, not
    Ready before Ready, THEN lower controller.kubernetes.io/pod-deletion-cost before higher. Readiness ranks before
    the deletion cost: a cost cannot protect a pod that is not Ready from idle Ready ones."""
    status, meta = p.get("status") or {}, p.get("metadata") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    cost = int((meta.get("annotations") or {}).get(COST, "0"))
    return (
        1 if (p.get("spec") or {}).get("nodeName") else 0,
        _PHASE_RANK.get(str(status.get("phase")), 1),
        1 if ready else 0,
        cost,
    )


def replicaset_victims(emulator: Any, namespace: str, names: list[str], scaled_to: int) -> list[str]:
    """The pods the ReplicaSet removes when the workload goes from len(names) pods to `scaled_to`."""
    pods = sorted(names, key=lambda n: _rank(emulator.objects["v1/pods", namespace, n]))
    return pods[: max(0, len(names) - scaled_to)]


def running_pod(name: str, ns: str, *, ready: bool, **kw: Any) -> dict[str, Any]:
    """A pod bound to a node and Running; `ready` False: its readiness probe fails (a runner saturated by its job,
    a server whose health endpoint times out under load)."""
    p = pod(name, ns, **kw)
    p["spec"]["nodeName"] = "node-1"
    p["status"]["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
    return p


# ---- 1. a busy runner is never killed: the deletion cost does not outrank readiness -----------------------------


async def test_a_busy_runner_that_is_not_ready_is_not_the_one_the_replicaset_removes(
    emulator: Any, cluster: Cluster
) -> None:
    """Three runners, one busy (annotation) but failing its readiness probe, two idle and Ready; the queue is empty.
    The operator costs the busy one 1,000,000 and scales to the busy floor, 1. The ReplicaSet ranks not-Ready pods
    before Ready ones whatever their deletion cost, so it removes the busy runner (and one idle one) and keeps an
    idle runner: the busy floor protected a count, not the pod."""
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 3)
    emulator.objects["v1/pods", "ml", "r-busy"] = running_pod("r-busy", "ml", ready=False, annotations={"b": "true"})
    emulator.objects["v1/pods", "ml", "r-1"] = running_pod("r-1", "ml", ready=True)
    emulator.objects["v1/pods", "ml", "r-2"] = running_pod("r-2", "ml", ready=True)
    s = spec(**CI, busy={"podAnnotation": "b"}, targets=[])
    await tick(await make(cluster, FakeMetrics(0)), s)
    now = replicas(emulator, "ml")
    assert now is not None
    victims = replicaset_victims(emulator, "ml", ["r-busy", "r-1", "r-2"], now)
    assert "r-busy" not in victims, f"scaled to {now}: the ReplicaSet removes {victims}, the busy runner first"


async def test_a_mirror_runner_of_unknown_level_that_is_not_ready_is_not_the_one_removed(
    emulator: Any, cluster: Cluster
) -> None:
    """The target's Prometheus scrapes through the Service's endpoints, which drop a pod that is not Ready: the
    busy query answers for the two idle Ready runners and not for m-x. Unknown counts as busy (floor 1, cost
    1,000,000), but the ReplicaSet removes the not-Ready pod first: the runner whose level is unknown goes."""
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 0)
    emulator.objects["apps/v1/deployments", "mirror", "vllm"] = deployment("vllm", "mirror", 3, labels=MANAGED)
    emulator.objects["v1/pods", "mirror", "m-x"] = running_pod("m-x", "mirror", ready=False, labels=MANAGED)
    for name in ("m-1", "m-2"):
        emulator.objects["v1/pods", "mirror", name] = running_pod(name, "mirror", ready=True, labels=MANAGED)
    metrics = FakeMetrics(0)
    metrics.per_pod_by_url = {"http://prom:9090": {}, "http://aws-prom:9090": {"mirror/m-1": 0.0, "mirror/m-2": 0.0}}
    s = spec(**CI, busy={"query": "max by (namespace, pod) (busy)"})
    await tick(await make(cluster, metrics, target={"prometheus": {"url": "http://aws-prom:9090"}}), s)
    now = replicas(emulator, "mirror")
    assert now is not None
    victims = replicaset_victims(emulator, "mirror", ["m-x", "m-1", "m-2"], now)
    assert "m-x" not in victims, f"scaled to {now}: the ReplicaSet removes {victims}, the unknown runner first"


# ---- 1b. a busy runner is never killed: a StatefulSet ignores deletion costs -------------------------------------


async def test_a_busy_runner_of_a_statefulset_is_not_removed_by_scale_in(emulator: Any, cluster: Cluster) -> None:
    """workloadRef may name a StatefulSet (a well-known kind: views, RBAC, /scale). Runners as a StatefulSet (ARC's
    RunnerSet, Jenkins and Buildkite agents) are removed highest ordinal first: the StatefulSet controller never
    reads pod-deletion-cost. runner-2 is busy, runner-0 and runner-1 idle, the queue is empty: the busy floor is 1,
    the operator scales to 1, and the controller removes runner-2 (then runner-1). Only replicas >= 3 (every ordinal
    up to the busiest) keep the busy runner."""
    emulator.resources["apps/v1/statefulsets"] = {
        "kind": "StatefulSet",
        "namespaced": True,
        "subresources": ["scale"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    }
    sts = deployment("runner", "ml", 3)
    sts["kind"] = "StatefulSet"
    sts["spec"]["selector"] = {"matchLabels": {"app": "vllm"}}
    emulator.objects["apps/v1/statefulsets", "ml", "runner"] = sts
    for i in range(3):
        annotations = {"b": "true"} if i == 2 else {}
        emulator.objects["v1/pods", "ml", f"runner-{i}"] = running_pod(
            f"runner-{i}", "ml", ready=True, annotations=annotations
        )
    s = spec(
        **CI,
        workloadRef={"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "runner"},
        busy={"podAnnotation": "b"},
        targets=[],
    )
    await tick(await make(cluster, FakeMetrics(0)), s)
    now = int(emulator.objects["apps/v1/statefulsets", "ml", "runner"]["spec"]["replicas"])
    removed = [f"runner-{i}" for i in range(now, 3)]  # the StatefulSet controller: highest ordinal first
    assert "runner-2" not in removed, f"scaled to {now}: the StatefulSet removes {removed}, the busy runner first"


# ---- 3. nothing orphaned: a Secret copy in a namespace the spec left ----------------------------------------------


async def test_a_secret_copy_left_in_a_namespace_the_spec_no_longer_names_is_removed_after_a_restart(
    emulator: Any, cluster: Cluster
) -> None:
    """The policy's pods read only a Secret (propagation.secrets: true). Its overrides.namespace moved from `old` to
    `mirror`; the sweep deleted the mirror in `old`, then removing the Secret copy there failed (the target's API
    server blinked) and the operator restarted before the next poll (SIGKILL, a shard handover). What the sweep
    should retry lived in memory only (Reconciler._unvacated), Secrets are not watched (sweep._WATCHED_COPIES), and
    the finalizer looks only where the current spec places mirrors (handlers._places): the credentials stay in
    the other cloud for good, through the policy's deletion."""
    for plural, kind in (
        ("secrets", "Secret"),
        ("configmaps", "ConfigMap"),
        ("serviceaccounts", "ServiceAccount"),
        ("services", "Service"),
    ):
        emulator.resources[f"v1/{plural}"] = {
            "kind": kind,
            "namespaced": True,
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
        }
    workload = deployment("vllm", "ml", 8)
    workload["spec"]["template"] = {
        "metadata": {"labels": {"app": "vllm"}},
        "spec": {"containers": [{"name": "s", "image": "x", "envFrom": [{"secretRef": {"name": "hf"}}]}]},
    }
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = workload
    emulator.objects["v1/secrets", "ml", "hf"] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "hf", "namespace": "ml"},
        "data": {"token": "c2VjcmV0"},
    }
    # the copy the earlier process made in the namespace the spec named before
    emulator.objects["v1/secrets", "old", "hf"] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "hf",
            "namespace": "old",
            "uid": "copy-uid",
            "labels": dict(MANAGED),
            "annotations": {"overspill.dev/owners": REF.uid},
        },
        "data": {"token": "c2VjcmV0"},
    }
    s = spec(
        propagation={"secrets": True},
        targets=[{"name": "aws", "overrides": {"namespace": "mirror"}}],
    )
    r = await make(cluster, FakeMetrics(0), target={"allowedTargetNamespaces": ["mirror", "old", "ml"]})
    await tick(r, s)  # the restarted operator's polls
    await tick(r, s)
    # the policy is deleted: what its finalizer does (handlers.burstpolicy_delete)
    await asyncio.to_thread(r.release, REF, s, places={("aws", "mirror")})
    deleted = [r for r in emulator if r.method.value == "DELETE" and r.url.path == "/api/v1/namespaces/old/secrets/hf"]
    assert deleted, "the policy's Secret copy in namespace old stays in the target after the policy's deletion"


# ---- 1c. a busy runner is never killed: a rollout under way pauses while runners are busy ----------------------


async def test_a_mirror_rollout_under_way_is_paused_while_a_runner_is_busy_and_resumed_when_idle(
    emulator: Any, cluster: Cluster
) -> None:
    """The template went out while every runner was idle; the Deployment controller replaces them one by one
    (status: 1 of 2 updated) and m-1 has picked up a job meanwhile: the mirror is paused (the controller stops
    replacing) and says so; once m-1 is idle again, it is resumed."""
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 0)
    mirror = deployment("vllm", "mirror", 2, labels=MANAGED)
    mirror["status"] = {"replicas": 2, "updatedReplicas": 1, "readyReplicas": 2}
    emulator.objects["apps/v1/deployments", "mirror", "vllm"] = mirror
    emulator.objects["v1/pods", "mirror", "m-1"] = running_pod(
        "m-1", "mirror", ready=True, labels=MANAGED, annotations={"b": "true"}
    )
    emulator.objects["v1/pods", "mirror", "m-2"] = running_pod("m-2", "mirror", ready=True, labels=MANAGED)
    s = spec(**CI, busy={"podAnnotation": "b"}, metric={"prometheus": {"query": "q"}, "targetPerReplica": 1})
    r = await make(cluster, FakeMetrics(2))
    out = await tick(r, s)
    paused = emulator.objects["apps/v1/deployments", "mirror", "vllm"]
    assert paused["spec"].get("paused") is True, "the rollout goes on replacing the busy runner"
    assert kinds(out)["MirrorsUpToDate"] == ("False", "TemplateUpdatePending")
    idle = {"metadata": {"annotations": {"b": "false"}}}
    await asyncio.to_thread(cluster.core.patch_namespaced_pod, "m-1", "mirror", idle)
    handle = r.targets.get("aws")
    assert handle is not None and handle.view is not None
    pods, mirrors = handle.view.cache(PODS), handle.view.cache(DEPLOYMENTS, MANAGED_SELECTOR)
    await until(lambda: ((mirrors.get("mirror", "vllm") or {}).get("spec") or {}).get("paused"))
    await until(
        lambda: ((pods.get("mirror", "m-1") or {}).get("metadata") or {}).get("annotations", {}).get("b") == "false"
    )
    await tick(r, s)
    resumed = emulator.objects["apps/v1/deployments", "mirror", "vllm"]
    assert not resumed["spec"].get("paused"), "the rollout stays paused with every runner idle"
