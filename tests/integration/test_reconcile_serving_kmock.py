"""The reconciler's serving steps on kmock: dependencies gate the mirror and are copied before it, and the route's
weights drain a secondary one poll before its replicas are removed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import kmock as kmock_lib
import pytest

from overspill.adapters.kube import Cluster
from overspill.api import BurstPolicySpec, parse_policy_spec, parse_target_spec
from overspill.api.policy import BurstPolicyStatus
from overspill.reconcile import Outcome, Reconciler
from overspill.serving import SERVING_RESOURCES
from overspill.targets import TargetRegistry
from overspill.views import MANAGED_SELECTOR, ClusterView
from overspill.views.resource import DEPLOYMENTS
from tests.integration.conftest import FakeMetrics, deployment, pod
from tests.integration.test_reconcile_kmock import REF, Clock

pytestmark = pytest.mark.integration
VIEWS: list[ClusterView] = []
SECRET_ENV = [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "t"}}}]


@pytest.fixture(autouse=True)
def _close_views(emulator: Any) -> Iterator[None]:
    yield
    while VIEWS:
        VIEWS.pop().close()


@pytest.fixture
def world(emulator: Any) -> Any:
    for plural, kind in (("configmaps", "ConfigMap"), ("serviceaccounts", "ServiceAccount"), ("services", "Service")):
        emulator.resources[f"v1/{plural}"] = {
            "kind": kind,
            "namespaced": True,
            "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
        }
    emulator.resources["v1/secrets"] = {
        "kind": "Secret",
        "namespaced": True,
        "verbs": ["get", "create", "update", "delete"],
    }
    emulator.resources["gateway.networking.k8s.io/v1/httproutes"] = {
        "kind": "HTTPRoute",
        "namespaced": True,
        "verbs": ["get", "patch"],
    }

    def merge_patch(request: Any) -> dict[str, Any]:  # RFC 7386, as the API server applies it to CRs: lists replaced
        key = ("gateway.networking.k8s.io/v1/httproutes", request.namespace, request.name)
        obj = emulator.objects[key].raw
        obj["spec"]["rules"] = request.data["spec"]["rules"]
        emulator.objects[key] = obj
        return dict(obj)

    emulator["patch", emulator.resource("gateway.networking.k8s.io/v1/httproutes")] << merge_patch
    wl = deployment("vllm", "ml", 2)
    wl["spec"]["template"] = {
        "metadata": {"labels": {"app": "vllm"}},
        "spec": {
            "serviceAccountName": "vllm",
            "containers": [{"name": "server", "image": "vllm:1", "env": SECRET_ENV}],
            "volumes": [{"name": "cfg", "configMap": {"name": "vllm-config"}}],
        },
    }
    objs = emulator.objects
    objs["apps/v1/deployments", "ml", "vllm"] = wl
    objs["v1/configmaps", "ml", "vllm-config"] = {
        "metadata": {"name": "vllm-config", "namespace": "ml"},
        "data": {"m": "1"},
    }
    objs["v1/serviceaccounts", "ml", "vllm"] = {"metadata": {"name": "vllm", "namespace": "ml"}}
    objs["v1/secrets", "ml", "hf"] = {"metadata": {"name": "hf", "namespace": "ml"}, "data": {"t": "c2VjcmV0"}}
    return emulator


async def view_of(name: str, cluster: Cluster) -> ClusterView:
    view = ClusterView(name, cluster.api)
    view.cache(DEPLOYMENTS)
    view.cache(DEPLOYMENTS, MANAGED_SELECTOR)
    for resource in SERVING_RESOURCES:  # as the BurstTarget daemon starts them
        view.cache(resource, MANAGED_SELECTOR)
    VIEWS.append(view)
    assert await asyncio.to_thread(view.wait_ready, 10), view.problem
    return view


async def reconciler(cluster: Cluster, metrics: FakeMetrics) -> Reconciler:
    registry = TargetRegistry()
    target = {"kubeconfigSecretRef": {"name": "s", "namespace": "ops"}, "allowedTargetNamespaces": ["mirror"]}
    registry.upsert("aws", parse_target_spec(target))
    registry.set_health("aws", cluster=cluster, healthy=True, message="ok")
    registry.set_view("aws", await view_of("aws", cluster))
    return Reconciler(
        primary=cluster,
        primary_view=await view_of("primary", cluster),
        targets=registry,
        metrics_source=metrics,
        default_prometheus_url=None,
        origin_cluster="primary",
        clock=Clock(),
    )


def spec(**over: Any) -> BurstPolicySpec:
    raw: dict[str, Any] = {
        "workloadRef": {"name": "vllm"},
        "metric": {"prometheus": {"url": "http://prom:9090", "query": "sum(q)"}, "targetPerReplica": 10},
        "maxReplicas": 20,
        "primary": {"maxReplicas": 8},
        "targets": [{"name": "aws", "overrides": {"namespace": "mirror"}}],
        "behavior": {"scaleDownStabilizationSeconds": 0, "minBurstDurationSeconds": 0},
        **over,
    }
    return parse_policy_spec(raw)


async def run(r: Reconciler, s: BurstPolicySpec, prev: BurstPolicyStatus | None = None) -> Outcome:
    return await asyncio.to_thread(r.reconcile, REF, s, prev or BurstPolicyStatus(), 1)


def requests(emulator: Any) -> list[str]:
    return [f"{r.method.value} {r.url.path}" for r in emulator]


def cond(out: Outcome, ctype: str) -> dict[str, Any]:
    return next(c for c in out.status["conditions"] if c["type"] == ctype)


async def test_a_secret_that_stays_home_holds_the_target_at_zero_and_says_so(world: Any, cluster: Cluster) -> None:
    out = await run(await reconciler(cluster, FakeMetrics(150)), spec())
    assert out.decision is not None
    assert out.decision.placement.targets["aws"] == 0 and out.decision.unplaced == 7
    assert ("apps/v1/deployments", "mirror", "vllm") not in [
        (
            k[0].group + "/" + k[0].version + "/" + k[0].plural if k[0].group else k[0].version + "/" + k[0].plural,
            k[1],
            k[2],
        )
        for k in world.objects
    ]
    c = cond(out, "DependenciesReady")
    assert c["status"] == "False" and "Secret mirror/hf" in c["message"] and "propagation.secrets: true" in c["message"]
    assert "c2VjcmV0" not in str(out.status) and "c2VjcmV0" not in str(out.events)
    assert not any("/namespaces/ml/secrets" in r for r in requests(world))  # never read without the opt-in
    assert ("Warning", "DependenciesMissing") in [(t, r) for t, r, _ in out.events]


async def test_with_secrets_on_everything_is_copied_before_the_mirror(world: Any, cluster: Cluster) -> None:
    r = await reconciler(cluster, FakeMetrics(150))
    out = await run(r, spec(propagation={"secrets": True}))
    posts = [x for x in requests(world) if x.startswith("POST /api") and "/namespaces/mirror/" in x]
    kinds = [p.rsplit("/", 1)[-1] for p in posts]
    assert kinds.index("deployments") > max(
        kinds.index("serviceaccounts"), kinds.index("secrets"), kinds.index("configmaps")
    )
    assert world.objects["v1/secrets", "mirror", "hf"]["data"] == {"t": "c2VjcmV0"}
    assert world.objects["apps/v1/deployments", "mirror", "vllm"]["spec"]["replicas"] == 7
    assert cond(out, "DependenciesReady")["status"] == "True"


def route(weights: tuple[int, int] | None = None) -> dict[str, Any]:
    refs: list[dict[str, Any]] = [{"name": "vllm", "port": 80}]
    if weights:
        refs[0]["weight"] = weights[0]
        burst = {"group": "multicluster.x-k8s.io", "kind": "ServiceImport", "name": "vllm-burst", "port": 80}
        refs.append({**burst, "namespace": "mirror", "weight": weights[1]})  # the targets' namespace (overrides)
    meta = {"name": "vllm", "namespace": "ml", "resourceVersion": "1"}
    return {"metadata": meta, "spec": {"rules": [{"backendRefs": refs}]}}


async def test_route_drains_a_secondary_one_poll_before_its_replicas_go(world: Any, cluster: Cluster) -> None:
    objs = world.objects
    objs["apps/v1/deployments", "ml", "vllm"]["spec"]["replicas"] = 8
    objs["apps/v1/deployments", "ml", "vllm"]["status"] = {"readyReplicas": 8}
    for i in range(8):
        objs["v1/pods", "ml", f"vllm-{i}"] = pod(f"vllm-{i}", "ml")
    mirror = deployment(
        "vllm", "mirror", 7, labels={"app.kubernetes.io/managed-by": "overspill", "overspill.dev/policy-uid": "uid-1"}
    )
    objs["apps/v1/deployments", "mirror", "vllm"] = mirror
    objs["v1/services", "ml", "vllm"] = {
        "metadata": {"name": "vllm", "namespace": "ml"},
        "spec": {"selector": {"app": "vllm"}, "ports": [{"port": 80}]},
    }
    objs["gateway.networking.k8s.io/v1/httproutes", "ml", "vllm"] = route((8, 7))
    s = spec(
        propagation={"secrets": True},
        traffic={"serviceRef": {"name": "vllm"}, "httpRouteRef": {"name": "vllm"}},
        primary={"maxReplicas": 8},
    )
    r = await reconciler(cluster, FakeMetrics(20))  # the queue fell: 2 desired, the secondary drains first

    def weights_now() -> list[int]:
        refs = objs["gateway.networking.k8s.io/v1/httproutes", "ml", "vllm"]["spec"]["rules"][0]["backendRefs"]
        return [x["weight"] for x in refs]

    first = await run(r, s)
    assert weights_now()[1] == 0  # no request goes to the secondary any more ...
    assert objs["apps/v1/deployments", "mirror", "vllm"]["spec"]["replicas"] == 7  # ... while its replicas still run
    assert first.status["traffic"]["burstWeight"] == 0
    await run(r, s, BurstPolicyStatus.model_validate(first.status))
    assert objs["apps/v1/deployments", "mirror", "vllm"]["spec"]["replicas"] == 0  # next poll: removed
    assert weights_now()[1] == 0


async def test_an_idle_target_costs_no_read_per_poll(world: Any, cluster: Cluster) -> None:
    r = await reconciler(cluster, FakeMetrics(0))  # no burst: the target holds nothing
    out = await run(r, spec(propagation={"secrets": True}))
    assert cond(out, "DependenciesReady")["status"] == "True"  # what a burst would need can be carried
    before = len(requests(world))
    await run(r, spec(propagation={"secrets": True}), BurstPolicyStatus.model_validate(out.status))
    reads = [x for x in requests(world)[before:] if x.startswith("GET") and "/namespaces/mirror/" in x]
    assert reads == []


async def test_turning_secrets_off_removes_the_copies_and_holds_the_target(world: Any, cluster: Cluster) -> None:
    r = await reconciler(cluster, FakeMetrics(150))
    out = await run(r, spec(propagation={"secrets": True}))
    assert world.objects["v1/secrets", "mirror", "hf"]["data"] == {"t": "c2VjcmV0"}
    out = await run(r, spec(propagation={"secrets": False}), BurstPolicyStatus.model_validate(out.status))
    assert world.objects["v1/secrets", "mirror", "hf"].deleted
    c = cond(out, "DependenciesReady")
    assert c["status"] == "False" and "Secret mirror/hf" in c["message"]
    assert world.objects["apps/v1/deployments", "mirror", "vllm"]["spec"]["replicas"] == 7  # held, not grown


@pytest.mark.parametrize("failing", ["configmaps", "secrets"])
async def test_a_copy_whose_removal_failed_is_removed_by_the_next_poll(
    world: Any, cluster: Cluster, failing: str
) -> None:
    """The mirror went, its namespace's copies did not (the target answered 500 once): nothing of the policy's may
    stay there. The vacated namespace was known only in the poll that deleted the mirror, so no later poll
    retried it (its copies stayed for good). Failing at the Secrets, the view (which watches no Secrets) shows
    nothing left there: only the remembered namespace brings the retry."""
    objs = world.objects
    objs["apps/v1/deployments", "ml", "vllm"]["spec"]["replicas"] = 8
    objs["apps/v1/deployments", "ml", "vllm"]["status"] = {"readyReplicas": 8}
    for i in range(8):
        objs["v1/pods", "ml", f"vllm-{i}"] = pod(f"vllm-{i}", "ml")  # the primary's 8, Ready
    r = await reconciler(cluster, FakeMetrics(150))
    out = await run(r, spec(propagation={"secrets": True}))
    assert objs["apps/v1/deployments", "mirror", "vllm"]["spec"]["replicas"] == 7
    assert not objs["v1/secrets", "mirror", "hf"].deleted
    failed: list[str] = []

    def once(request: Any) -> None:
        if request.namespace == "mirror" and not failed:
            failed.append("list")
            raise kmock_lib.KubernetesError("the target is restarting")
        # None: served by the emulator as usual

    world["list", world.resource(f"v1/{failing}")] << once
    dropped = spec(propagation={"secrets": True}, targets=[])
    for _ in range(5):  # drained, deleted (its copies' removal fails once), then the next polls
        out = await run(r, dropped, BurstPolicyStatus.model_validate(out.status))
        await asyncio.sleep(0.3)  # the watch sees the change before the next poll
    assert failed == ["list"]
    assert objs["apps/v1/deployments", "mirror", "vllm"].deleted
    assert objs["v1/configmaps", "mirror", "vllm-config"].deleted
    assert objs["v1/secrets", "mirror", "hf"].deleted
