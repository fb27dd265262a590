"""The reconciler against kmock: real HTTP, real client, in-memory API. Fast, no cluster."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from overspill import reconcile as reconcile_module
from overspill.adapters.kube import Cluster
from overspill.api import BurstPolicySpec, parse_policy_spec, parse_target_spec
from overspill.api.policy import BurstPolicyStatus
from overspill.decide import Decision, Snapshot
from overspill.reconcile import BUSY_COST, Outcome, PolicyRef, Reconciler
from overspill.targets import TargetRegistry
from overspill.triggers import Triggers
from overspill.views import MANAGED_SELECTOR, ClusterView
from overspill.views.resource import DEPLOYMENTS
from tests.integration.conftest import FakeMetrics, deployment, pod

NOW = 1_800_000_000.0
REF = PolicyRef(namespace="ml", name="vllm", uid="uid-1")
pytestmark = pytest.mark.integration


def spec(**over: Any) -> BurstPolicySpec:
    raw: dict[str, Any] = {
        "workloadRef": {"name": "vllm"},
        "metric": {"prometheus": {"url": "http://prom:9090", "query": "sum(q)"}, "targetPerReplica": 10},
        "maxReplicas": 20,
        "primary": {"maxReplicas": 8},
        "targets": [{"name": "aws", "overrides": {"namespace": "mirror", "nodeSelector": {"gpu": "a10"}}}],
        "behavior": {"scaleDownStabilizationSeconds": 0, "minBurstDurationSeconds": 0},
    }
    raw.update(over)
    return parse_policy_spec(raw)


class Clock:
    """Advances by one poll interval per reading, as the operator's clock does between polls."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        self.now += 10.0
        return self.now


VIEWS: list[ClusterView] = []


@pytest.fixture(autouse=True)
def _close_views(emulator: Any) -> Iterator[None]:
    yield
    while VIEWS:
        VIEWS.pop().close()


async def synced_view(name: str, cluster: Cluster) -> ClusterView:
    """A view of the emulator, listed before the test acts (waited for off the loop that serves kmock)."""
    view = ClusterView(name, cluster.api)
    view.cache(DEPLOYMENTS)
    view.cache(DEPLOYMENTS, MANAGED_SELECTOR)
    VIEWS.append(view)
    assert await asyncio.to_thread(view.wait_ready, 10), view.problem
    return view


async def reconciler(cluster: Cluster, metrics: FakeMetrics, healthy: bool = True, **target: Any) -> Reconciler:
    registry = TargetRegistry()
    registry.upsert(
        "aws",
        parse_target_spec(
            {
                "kubeconfigSecretRef": {"name": "s", "namespace": "ops"},
                "costPerReplicaHour": 2.5,
                "allowedTargetNamespaces": ["mirror"],
                **target,
            }
        ),
    )
    registry.set_health("aws", cluster=cluster if healthy else None, healthy=healthy, message="probe failed")
    if healthy:
        registry.set_view("aws", await synced_view("aws", cluster))
    return Reconciler(
        primary=cluster,
        primary_view=await synced_view("primary", cluster),
        targets=registry,
        metrics_source=metrics,
        default_prometheus_url=None,
        origin_cluster="primary",
        clock=Clock(),
    )


def writes(emulator: Any) -> list[str]:
    return [f"{r.method.value} {r.url.path}" for r in emulator if r.method.value not in ("GET",)]


async def run(r: Reconciler, s: BurstPolicySpec, prev: BurstPolicyStatus | None = None) -> Outcome:
    return await asyncio.to_thread(r.reconcile, REF, s, prev or BurstPolicyStatus(), 1)


async def test_the_engine_sees_each_targets_replica_startup(
    emulator: Any, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BurstTarget replicaStartupSeconds reaches the engine's snapshot (its predictive lead covers it)."""
    seen: list[Snapshot] = []
    real = reconcile_module.decide

    def spy(s: BurstPolicySpec, snap: Snapshot, **kw: Any) -> Decision:
        seen.append(snap)
        return real(s, snap, **kw)

    monkeypatch.setattr(reconcile_module, "decide", spy)
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 2)
    await run(await reconciler(cluster, FakeMetrics(150), replicaStartupSeconds=240), spec())
    assert [t.startup_seconds for t in seen[-1].targets] == [240]


async def test_burst_scales_primary_and_creates_the_mirror(emulator: Any, cluster: Cluster) -> None:
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 2)
    out = await run(await reconciler(cluster, FakeMetrics(150)), spec())
    assert out.decision is not None and out.decision.reason.value == "BurstUp"
    assert emulator.objects["apps/v1/deployments", "ml", "vllm"]["spec"]["replicas"] == 8
    mirror = emulator.objects["apps/v1/deployments", "mirror", "vllm"]
    assert mirror["spec"]["replicas"] == 7
    assert mirror["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "overspill"
    assert mirror["metadata"]["labels"]["overspill.dev/policy-uid"] == "uid-1"
    assert mirror["metadata"]["annotations"]["overspill.dev/origin-namespace"] == "ml"
    assert mirror["spec"]["template"]["spec"]["nodeSelector"] == {"gpu": "a10"}
    st = out.status
    assert (st["desiredReplicas"], st["primary"]["replicas"], st["secondaryReplicas"]) == (15, 8, 7)
    assert st["estimatedCostPerHour"] == 17.5
    assert st["targets"] == [
        {"name": "aws", "replicas": 7, "readyReplicas": 0, "pendingReplicas": 0, "freeRoom": None, "state": "Active"}
    ]
    assert ("Normal", "BurstUp") in [(t, r) for t, r, _ in out.events]
    conds = {c["type"]: c["status"] for c in st["conditions"]}
    assert conds == {
        "Ready": "True",
        "MetricAvailable": "True",
        "TargetsAvailable": "True",
        "PrimaryAtCapacity": "True",
        "Bursting": "True",
        "PlacementAllowed": "True",
        "MirrorsUpToDate": "True",
        "DependenciesReady": "True",  # the template names nothing a target lacks
    }


async def test_steady_state_makes_no_writes(emulator: Any, cluster: Cluster) -> None:
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 2)
    r = await reconciler(cluster, FakeMetrics(150))
    first = await run(r, spec())
    await asyncio.sleep(1.0)  # the views see the first tick's writes (watch events), as a poll later they would
    before = len(writes(emulator))
    second = await run(r, spec(), BurstPolicyStatus.model_validate(first.status))
    third = await run(r, spec(), BurstPolicyStatus.model_validate(second.status))
    assert len(writes(emulator)) == before, writes(emulator)[before:]
    assert second.writes == third.writes == 0
    assert third.status == second.status  # so the handler writes no status either
    assert third.events == []


async def test_metric_outage_holds_and_warns(emulator: Any, cluster: Cluster) -> None:
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 5)
    out = await run(await reconciler(cluster, FakeMetrics(None)), spec())
    assert writes(emulator) == []
    assert out.decision is not None and out.decision.reason.value == "MetricUnavailableHold"
    cond = next(c for c in out.status["conditions"] if c["type"] == "MetricAvailable")
    assert cond["status"] == "False" and "ConnectionError" in cond["message"]
    assert ("Warning", "MetricUnavailable") in [(t, r) for t, r, _ in out.events]


async def test_unhealthy_target_never_scales_the_primary_down(emulator: Any, cluster: Cluster) -> None:
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 8)
    prev = BurstPolicyStatus.model_validate({"targets": [{"name": "aws", "replicas": 7}]})
    out = await run(await reconciler(cluster, FakeMetrics(150), healthy=False), spec(), prev)
    assert emulator.objects["apps/v1/deployments", "ml", "vllm"]["spec"]["replicas"] == 8
    assert writes(emulator) == []
    assert out.status["targets"][0]["state"] == "Unavailable"
    assert ("Warning", "TargetUnavailable") in [(t, r) for t, r, _ in out.events]


async def test_object_not_created_by_overspill_is_never_touched(emulator: Any, cluster: Cluster) -> None:
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 8)
    foreign = deployment("vllm", "mirror", 1, labels={"team": "someone-else"})
    emulator.objects["apps/v1/deployments", "mirror", "vllm"] = foreign
    out = await run(await reconciler(cluster, FakeMetrics(150)), spec())
    assert emulator.objects["apps/v1/deployments", "mirror", "vllm"]["spec"]["replicas"] == 1
    assert not [w for w in writes(emulator) if "/mirror/" in w]
    cond = next(c for c in out.status["conditions"] if c["type"] == "TargetsAvailable")
    assert cond["status"] == "False" and "not managed by this policy" in cond["message"]


async def test_missing_workload_is_reported_and_nothing_scaled(emulator: Any, cluster: Cluster) -> None:
    out = await run(await reconciler(cluster, FakeMetrics(150)), spec())
    assert out.decision is None
    assert writes(emulator) == []
    ready = next(c for c in out.status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "WorkloadMissing" and "Deployment ml/vllm not found" in ready["message"]


async def test_ci_runner_busy_pods_get_top_deletion_cost(emulator: Any, cluster: Cluster) -> None:
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 3)
    for name, busy in (("r-1", "true"), ("r-2", "false"), ("r-3", "true")):
        emulator.objects["v1/pods", "ml", name] = pod(name, "ml", annotations={"ci/busy": busy})
    s = spec(workloadClass="CIRunner", busy={"podAnnotation": "ci/busy"}, minReplicas=0, targets=[])
    out = await run(await reconciler(cluster, FakeMetrics(0)), s)
    costs = {
        n: emulator.objects["v1/pods", "ml", n]["metadata"]["annotations"].get(
            "controller.kubernetes.io/pod-deletion-cost"
        )
        for n in ("r-1", "r-2", "r-3")
    }
    assert costs == {"r-1": str(BUSY_COST), "r-2": None, "r-3": str(BUSY_COST)}  # idle stays at the default 0
    assert emulator.objects["apps/v1/deployments", "ml", "vllm"]["spec"]["replicas"] == 2  # never below busy
    assert out.decision is not None and out.decision.placement.primary == 2


async def test_inference_deletion_cost_follows_in_flight_requests(emulator: Any, cluster: Cluster) -> None:
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 2)
    emulator.objects["v1/pods", "ml", "a"] = pod("a", "ml")
    emulator.objects["v1/pods", "ml", "b"] = pod("b", "ml")
    metrics = FakeMetrics(15)
    metrics.per_pod_values = {"a": 7.0, "b": 0.0}
    await run(await reconciler(cluster, metrics), spec(busy={"query": "sum by (pod) (running)"}, targets=[]))
    assert (
        emulator.objects["v1/pods", "ml", "a"]["metadata"]["annotations"]["controller.kubernetes.io/pod-deletion-cost"]
        == "700"
    )
    assert "controller.kubernetes.io/pod-deletion-cost" not in emulator.objects["v1/pods", "ml", "b"]["metadata"].get(
        "annotations", {}
    )


async def test_kubeconfig_secret_content_never_reaches_status_or_messages(emulator: Any, cluster: Cluster) -> None:
    from overspill import handlers, runtime

    token = "s3cr3t-token-do-not-leak"  # noqa: S105 - a canary, not a credential
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:1"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": token}}],
    }
    emulator.objects["v1/secrets", "ops", "s"] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "ops", "resourceVersion": "1"},
        "data": {"kubeconfig": base64.b64encode(json.dumps(kubeconfig).encode()).decode()},
    }
    rec = await reconciler(cluster, FakeMetrics(0))
    rtm = runtime.Runtime(
        primary=cluster,
        primary_view=rec.primary_view,
        targets=rec.targets,
        reconciler=rec,
        triggers=Triggers(),
    )
    target = parse_target_spec({"kubeconfigSecretRef": {"name": "s", "namespace": "ops"}})
    try:
        ok, message, _, _ = await asyncio.to_thread(handlers._probe, rtm, "aws", target, {})
        assert not ok and "did not answer" in message
        assert token not in message
        bad = parse_target_spec({"kubeconfigSecretRef": {"name": "s", "namespace": "ops", "key": "missing"}})
        ok, message, _, _ = await asyncio.to_thread(handlers._probe, rtm, "aws", bad, {})
        assert not ok and "has no key 'missing'" in message and token not in message
    finally:
        handle = rtm.targets.get("aws")
        credentials = handle.credentials if handle is not None else None
        # as the probe daemon does when it stops: the probe's view of 127.0.0.1:1 stops retrying, and the
        # private directory of its credentials goes (one empty /tmp/overspill-aws-* was left per run)
        rtm.targets.remove("aws")
    assert credentials is not None
    assert not await asyncio.to_thread(os.path.exists, credentials.path)


async def test_any_kind_with_a_scale_subresource_is_scaled(emulator: Any, cluster: Cluster) -> None:
    """actions-runner-controller's RunnerDeployment: found through discovery, scaled through /scale."""
    emulator.resources["actions.summerwind.dev/v1alpha1/runnerdeployments"] = {
        "kind": "RunnerDeployment",
        "namespaced": True,
        "subresources": ["scale"],
        "verbs": ["get", "patch"],
    }
    emulator.objects["actions.summerwind.dev/v1alpha1/runnerdeployments", "ml", "runners"] = {
        "apiVersion": "actions.summerwind.dev/v1alpha1",
        "kind": "RunnerDeployment",
        "metadata": {"name": "runners", "namespace": "ml"},
        "spec": {"replicas": 2},
    }

    def scale(request: Any) -> dict[str, Any]:
        obj = emulator.objects["actions.summerwind.dev/v1alpha1/runnerdeployments", request.namespace, request.name]
        return {"spec": {"replicas": obj["spec"]["replicas"]}, "status": {"selector": "app=runners"}}

    (
        emulator[
            "get", emulator.resource("actions.summerwind.dev/v1alpha1/runnerdeployments"), emulator.subresource("scale")
        ]
        << scale
    )
    s = spec(
        workloadRef={"apiVersion": "actions.summerwind.dev/v1alpha1", "kind": "RunnerDeployment", "name": "runners"},
        workloadClass="CIRunner",
        busy={"podLabel": "busy"},
        metric={"prometheus": {"url": "http://prom:9090", "query": "sum(jobs)"}, "targetPerReplica": 1},
        targets=[],
    )
    out = await run(await reconciler(cluster, FakeMetrics(6)), s)
    assert out.decision is not None and out.decision.placement.primary == 6
    assert (
        emulator.objects["actions.summerwind.dev/v1alpha1/runnerdeployments", "ml", "runners"]["spec"]["replicas"] == 6
    )
    assert "PATCH /apis/actions.summerwind.dev/v1alpha1/namespaces/ml/runnerdeployments/runners/scale" in writes(
        emulator
    )


async def test_a_custom_kind_whose_crd_declares_its_scale_is_read_from_a_watch(emulator: Any, cluster: Cluster) -> None:
    """Issue 12: a tick makes no GET in steady state, custom kinds included. Before, every tick of a RunnerDeployment
    policy GET its /scale (and, while bursting, the object): 1,000 such policies asked 100 GETs a second."""
    group_version, plural = "actions.summerwind.dev/v1alpha1", "runnerdeployments"
    emulator.resources[f"{group_version}/{plural}"] = {
        "kind": "RunnerDeployment",
        "namespaced": True,
        "subresources": ["scale"],
        "verbs": ["get", "list", "watch", "patch"],
    }
    emulator.resources["apiextensions.k8s.io/v1/customresourcedefinitions"] = {
        "kind": "CustomResourceDefinition",
        "namespaced": False,
        "verbs": ["list"],
    }
    emulator.objects["apiextensions.k8s.io/v1/customresourcedefinitions", None, f"{plural}.actions.summerwind.dev"] = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.actions.summerwind.dev"},
        "spec": {
            "group": "actions.summerwind.dev",
            "scope": "Namespaced",
            "names": {"plural": plural, "kind": "RunnerDeployment"},
            "versions": [
                {
                    "name": "v1alpha1",
                    "subresources": {
                        "scale": {"specReplicasPath": ".spec.replicas", "labelSelectorPath": ".status.selector"}
                    },
                }
            ],
        },
    }
    emulator.objects[f"{group_version}/{plural}", "ml", "runners"] = {
        "apiVersion": group_version,
        "kind": "RunnerDeployment",
        "metadata": {"name": "runners", "namespace": "ml", "resourceVersion": "1"},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "runner", "image": "r"}]}}},
        "status": {"selector": "app=runners"},
    }
    for i in range(2):
        emulator.objects["v1/pods", "ml", f"runner-{i}"] = pod(f"runner-{i}", "ml", labels={"app": "runners"})

    def scale(request: Any) -> dict[str, Any]:
        obj = emulator.objects[f"{group_version}/{plural}", request.namespace, request.name]
        return {"spec": {"replicas": obj["spec"]["replicas"]}, "status": {"selector": "app=runners"}}

    emulator["get", emulator.resource(f"{group_version}/{plural}"), emulator.subresource("scale")] << scale
    s = spec(
        workloadRef={"apiVersion": group_version, "kind": "RunnerDeployment", "name": "runners"},
        workloadClass="CIRunner",
        busy={"podLabel": "busy"},
        metric={"prometheus": {"url": "http://prom:9090", "query": "sum(jobs)"}, "targetPerReplica": 1},
        targets=[],
    )
    r = await reconciler(cluster, FakeMetrics(2))
    out = await run(r, s)  # the first tick reads the CRD and starts the kind's watch
    assert out.decision is not None and out.decision.placement.primary == 2, out.status
    before = len(list(emulator))
    for _ in range(3):
        out = await run(r, s)
    reads = [f"{q.method.value} {q.url.path}" for q in list(emulator)[before:] if q.method.value == "GET"]
    assert not [q for q in reads if f"/{plural}/runners" in q and "watch" not in q], reads
    assert out.decision is not None and out.decision.placement.primary == 2
    seen = r.kinds.read(group_version, "RunnerDeployment", "ml", "runners")
    assert seen is not None and (seen.replicas, seen.selector) == (2, "app=runners")  # what /scale would say
