"""The reconciler's serving steps on kmock: dependencies gate the mirror and are copied before it, and the route's
weights drain a secondary one poll before its replicas are removed."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import kmock as kmock_lib
import kopf
import pytest

from overspill import handlers, runtime
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
ROUTE_FAILS: set[str] = set()  # "get", "patch": the HTTPRoute's API answers 500 to those
VIEWS: list[ClusterView] = []
SECRET_ENV = [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "t"}}}]


@pytest.fixture(autouse=True)
def _close_views(emulator: Any) -> Iterator[None]:
    yield
    ROUTE_FAILS.clear()
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
    emulator.resources["multicluster.x-k8s.io/v1alpha1/serviceexports"] = {
        "kind": "ServiceExport",
        "namespaced": True,
        "verbs": ["get", "list", "create", "delete"],
    }
    emulator.resources["gateway.networking.k8s.io/v1/httproutes"] = {
        "kind": "HTTPRoute",
        "namespaced": True,
        "verbs": ["get", "patch"],
    }

    def merge_patch(request: Any) -> dict[str, Any]:  # RFC 7386, as the API server applies it to CRs: lists replaced
        if "patch" in ROUTE_FAILS:
            raise kmock_lib.KubernetesError(status=500, reason="InternalError", message="etcd timeout")
        key = ("gateway.networking.k8s.io/v1/httproutes", request.namespace, request.name)
        obj = emulator.objects[key].raw
        obj["spec"]["rules"] = request.data["spec"]["rules"]
        annotations = obj["metadata"].setdefault("annotations", {})
        for k, v in ((request.data.get("metadata") or {}).get("annotations") or {}).items():
            if v is None:
                annotations.pop(k, None)
            else:
                annotations[k] = v
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


async def reconciler(cluster: Cluster, metrics: FakeMetrics, names: tuple[str, ...] = ("aws",)) -> Reconciler:
    registry = TargetRegistry()
    target = {
        "kubeconfigSecretRef": {"name": "s", "namespace": "ops"},
        "allowedTargetNamespaces": ["mirror", "mirror2"],
    }
    for name in names:  # one emulator plays every cluster: each target keeps to its own namespace
        registry.upsert(name, parse_target_spec(target))
        registry.set_health(name, cluster=cluster, healthy=True, message="ok")
        registry.set_view(name, await view_of(name, cluster))
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
    return parse_policy_spec(raw_spec(**over))


def raw_spec(**over: Any) -> dict[str, Any]:
    return {
        "workloadRef": {"name": "vllm"},
        "metric": {"prometheus": {"url": "http://prom:9090", "query": "sum(q)"}, "targetPerReplica": 10},
        "maxReplicas": 20,
        "primary": {"maxReplicas": 8},
        "targets": [{"name": "aws", "overrides": {"namespace": "mirror"}}],
        "behavior": {"scaleDownStabilizationSeconds": 0, "minBurstDurationSeconds": 0},
        **over,
    }


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


def route(weights: tuple[int, int] | None = None, **more: tuple[str, int]) -> dict[str, Any]:
    """The HTTPRoute: the local Service, and per target (aws first) a ServiceImport in the target's namespace."""
    refs: list[dict[str, Any]] = [{"name": "vllm", "port": 80}]
    if weights:
        refs[0]["weight"] = weights[0]
        burst = {"group": "multicluster.x-k8s.io", "kind": "ServiceImport", "name": "vllm-burst-aws", "port": 80}
        refs.append({**burst, "namespace": "mirror", "weight": weights[1]})  # the target's namespace (overrides)
        for target, (ns, w) in more.items():
            refs.append({**burst, "name": f"vllm-burst-{target}", "namespace": ns, "weight": w})
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
    exported(world, "mirror", "vllm-burst-aws")
    s = spec(
        propagation={"secrets": True},
        traffic={"serviceRef": {"name": "vllm"}, "httpRouteRef": {"name": "vllm"}, "drainSeconds": 0},
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


EXPORTS = "multicluster.x-k8s.io/v1alpha1/serviceexports"
ROUTE = ("gateway.networking.k8s.io/v1/httproutes", "ml", "vllm")
UID_LABELS = {"app.kubernetes.io/managed-by": "overspill", "overspill.dev/policy-uid": "uid-1"}
TARGET_OF = {"mirror": "aws", "mirror2": "gcp"}
# no drain time: these tests count polls (the drain time has its own tests)
TRAFFIC = {"serviceRef": {"name": "vllm"}, "httpRouteRef": {"name": "vllm"}, "drainSeconds": 0}


def exported(world: Any, ns: str, name: str, state: str = "True") -> None:
    """Plays the MCS controller: the export's conditions as Submariner or Cilium write them."""
    conds = [{"type": "Valid", "status": "True"}, {"type": "Ready", "status": state}]
    world.objects[EXPORTS, ns, name] = {
        "apiVersion": "multicluster.x-k8s.io/v1alpha1",
        "kind": "ServiceExport",
        "metadata": {"name": name, "namespace": ns, "labels": UID_LABELS},
        "status": {"conditions": conds},
    }


def bursting(world: Any, mirrors: dict[str, int]) -> None:
    """8 Ready in the primary, a Ready mirror per namespace, the primary Service."""
    objs = world.objects
    objs["apps/v1/deployments", "ml", "vllm"]["spec"]["replicas"] = 8
    objs["apps/v1/deployments", "ml", "vllm"]["status"] = {"readyReplicas": 8}
    for i in range(8):
        objs["v1/pods", "ml", f"vllm-{i}"] = pod(f"vllm-{i}", "ml")
    for ns, n in mirrors.items():
        mirror = deployment("vllm", ns, n, labels=UID_LABELS)
        # one emulator plays both clusters: each mirror says which target placed it, as real ones do
        mirror["metadata"]["annotations"] = {"overspill.dev/target": TARGET_OF[ns]}
        objs["apps/v1/deployments", ns, "vllm"] = mirror
    objs["v1/services", "ml", "vllm"] = {
        "metadata": {"name": "vllm", "namespace": "ml"},
        "spec": {"selector": {"app": "vllm"}, "ports": [{"port": 80}]},
    }


def burst_refs(world: Any) -> dict[tuple[str, str], int]:
    refs = world.objects[ROUTE]["spec"]["rules"][0]["backendRefs"]
    return {(r["name"], r.get("namespace", "ml")): r["weight"] for r in refs if r.get("kind") == "ServiceImport"}


def mirror_replicas(world: Any, ns: str) -> int | None:
    try:
        obj = world.objects["apps/v1/deployments", ns, "vllm"]
    except KeyError:
        return None
    return None if obj.deleted else int(obj["spec"]["replicas"])


def refuse(_request: Any) -> None:
    raise kmock_lib.KubernetesError(status=500, reason="InternalError", message="etcd timeout")


@pytest.mark.parametrize("verb", ["get", "patch"])
async def test_a_route_that_cannot_be_written_or_read_holds_the_secondary(
    world: Any, cluster: Cluster, verb: str
) -> None:
    """Review break 1: when the HTTPRoute write (or read) failed, the secondary shrank anyway with its weight
    unchanged: requests went on to replicas being removed. Now it is held, and TrafficReady says why."""
    bursting(world, {"mirror": 7})
    world.objects[ROUTE] = route((8, 7))
    exported(world, "mirror", "vllm-burst-aws")
    saved = world.objects[ROUTE].raw
    ROUTE_FAILS.add(verb)
    if verb == "get":
        world["get", world.resource("gateway.networking.k8s.io/v1/httproutes")] << refuse
    s = spec(propagation={"secrets": True}, traffic=TRAFFIC)
    r = await reconciler(cluster, FakeMetrics(20))  # the queue fell: the secondary is no longer wanted
    out = await run(r, s)
    world.objects[ROUTE] = saved  # the refused PATCH changed nothing (kmock stores it before answering)
    out = await run(r, s, BurstPolicyStatus.model_validate(out.status))
    assert mirror_replicas(world, "mirror") == 7  # two polls: never removed while the route may send it requests
    c = cond(out, "TrafficReady")
    assert c["status"] == "False" and c["reason"] == "RouteUnconfirmed"
    assert "HTTPRoute ml/vllm" in c["message"] and "held" in c["message"]
    assert out.decision is not None and out.decision.placement.targets["aws"] == 0  # wanted gone, but held


async def test_a_failed_route_write_posts_a_warning(world: Any, cluster: Cluster) -> None:
    bursting(world, {"mirror": 7})
    world.objects[ROUTE] = route((8, 7))
    exported(world, "mirror", "vllm-burst-aws")
    ROUTE_FAILS.add("patch")
    out = await run(await reconciler(cluster, FakeMetrics(20)), spec(propagation={"secrets": True}, traffic=TRAFFIC))
    (message,) = [m for t, r, m in out.events if (t, r) == ("Warning", "RouteUnconfirmed")]
    assert "could not update HTTPRoute ml/vllm: HTTP 500" in message and "held" in message
    assert mirror_replicas(world, "mirror") == 7  # what the Warning says: nothing removed while unconfirmed


async def test_weight_only_for_replicas_requests_can_reach(world: Any, cluster: Cluster) -> None:
    """Review break 3: Ready replicas whose ServiceExport was not Exported got weight, and the one backendRef named
    the first target's namespace for all. Now each target has its own ServiceImport backendRef, in its namespace,
    weighted only once its export is Exported."""
    bursting(world, {"mirror": 7, "mirror2": 3})
    world.objects[ROUTE] = route()
    exported(world, "mirror", "vllm-burst-aws", state="False")  # not (yet) exported
    exported(world, "mirror2", "vllm-burst-gcp")
    targets = [
        {"name": "aws", "overrides": {"namespace": "mirror"}},
        {"name": "gcp", "overrides": {"namespace": "mirror2"}},
    ]
    s = spec(propagation={"secrets": True}, traffic=TRAFFIC, targets=targets, maxReplicas=18)
    r = await reconciler(cluster, FakeMetrics(180), names=("aws", "gcp"))
    out = await run(r, s)
    assert burst_refs(world) == {("vllm-burst-aws", "mirror"): 0, ("vllm-burst-gcp", "mirror2"): 3}
    assert cond(out, "TrafficReady")["status"] == "False"
    exported(world, "mirror", "vllm-burst-aws")
    await run(r, s, BurstPolicyStatus.model_validate(out.status))
    assert burst_refs(world) == {("vllm-burst-aws", "mirror"): 7, ("vllm-burst-gcp", "mirror2"): 3}


async def test_a_dropped_target_loses_its_weight_a_poll_before_its_replicas(world: Any, cluster: Cluster) -> None:
    """Review break 4: a target dropped from the spec was deleted in the poll its weight went. Now its own
    backendRef goes to 0 first (the other secondary's weight untouched), its replicas go at the next poll, and
    the backendRef after that."""
    bursting(world, {"mirror": 7, "mirror2": 3})
    world.objects[ROUTE] = route((8, 7), gcp=("mirror2", 3))
    exported(world, "mirror", "vllm-burst-aws")
    exported(world, "mirror2", "vllm-burst-gcp")
    s = spec(
        propagation={"secrets": True},
        traffic=TRAFFIC,
        targets=[{"name": "gcp", "overrides": {"namespace": "mirror2"}}],  # aws dropped
    )
    r = await reconciler(cluster, FakeMetrics(110), names=("aws", "gcp"))  # 11: 8 here + 3 Ready in gcp
    out = await run(r, s)
    assert burst_refs(world) == {("vllm-burst-aws", "mirror"): 0, ("vllm-burst-gcp", "mirror2"): 3}
    assert mirror_replicas(world, "mirror") == 7  # still serving what was sent before the weight went
    out = await run(r, s, BurstPolicyStatus.model_validate(out.status))
    assert not mirror_replicas(world, "mirror")  # drained and deleted a poll later
    await run(r, s, BurstPolicyStatus.model_validate(out.status))
    assert burst_refs(world) == {("vllm-burst-gcp", "mirror2"): 3}


async def test_deleting_a_policy_unroutes_before_anything_that_serves_is_removed(
    world: Any, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review break 2: deletion removed mirrors, copies and exports before the route's burst backendRef. Now the
    route goes first (weight 0, then out); a route that cannot be written keeps everything (the finalizer retries)."""
    monkeypatch.setattr(kopf, "warn", lambda _body, *, reason, message: None)
    bursting(world, {"mirror": 7})
    world.objects[ROUTE] = route((8, 7))
    exported(world, "mirror", "vllm-burst-aws")
    raw = raw_spec(propagation={"secrets": True}, traffic=TRAFFIC)
    r = await reconciler(cluster, FakeMetrics(150))
    await run(r, parse_policy_spec(raw))
    secret = ("v1/secrets", "mirror", "hf")
    assert not world.objects[secret].deleted
    rtm = runtime.Runtime(
        primary=cluster,
        primary_view=r.primary_view,
        targets=r.targets,
        reconciler=r,
        triggers=None,  # type: ignore[arg-type]
    )
    body = kopf.Body({"metadata": {"name": "vllm", "namespace": "ml", "uid": "uid-1"}, "spec": raw})

    async def delete() -> None:
        await handlers.burstpolicy_delete(
            namespace="ml", name="vllm", uid="uid-1", body=body, retry=0, memo={"runtime": rtm}
        )

    saved = world.objects[ROUTE].raw
    ROUTE_FAILS.add("patch")
    with pytest.raises(kopf.TemporaryError, match="HTTPRoute"):
        await delete()
    world.objects[ROUTE] = saved  # the refused PATCH changed nothing (kmock stores it before answering)
    assert mirror_replicas(world, "mirror") == 7 and not world.objects[secret].deleted  # everything still serves
    ROUTE_FAILS.clear()
    with pytest.raises(kopf.TemporaryError, match="traffic drains first"):
        await delete()
    assert burst_refs(world) == {("vllm-burst-aws", "mirror"): 0}
    assert mirror_replicas(world, "mirror") == 7 and not world.objects[secret].deleted  # drained, not yet removed
    with contextlib.suppress(kopf.TemporaryError):  # a mirror still draining may keep the finalizer a while
        await delete()
    assert burst_refs(world) == {}
    assert not mirror_replicas(world, "mirror")


async def test_deletion_finds_everything_of_the_policy_by_label_wherever_it_was_left(
    world: Any, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review break 6: copies and exports were left behind when their mirror was already gone (deleted by someone
    else, an earlier removal that failed, a target dropped before the deletion), and exports in API groups other
    than the two known ones were never looked for. Now deletion finds them by label in every known target."""
    monkeypatch.setattr(kopf, "warn", lambda _body, *, reason, message: None)
    group = "mcs.example.com"
    world.resources[f"{group}/v1alpha1/serviceexports"] = {
        "kind": "ServiceExport",
        "namespaced": True,
        "verbs": ["get", "list", "create", "delete"],
    }
    meta = {"namespace": "mirror2", "labels": UID_LABELS, "annotations": {"overspill.dev/owners": "uid-1"}}
    left = {
        ("v1/configmaps", "mirror2", "vllm-config"): {"metadata": {**meta, "name": "vllm-config"}, "data": {}},
        ("v1/secrets", "mirror2", "hf"): {"metadata": {**meta, "name": "hf"}, "data": {}},
        ("v1/services", "mirror2", "vllm-burst-aws"): {
            "metadata": {**meta, "name": "vllm-burst-aws", "annotations": {"overspill.dev/export-group": group}},
            "spec": {"selector": {"app": "vllm"}, "ports": [{"port": 80}]},
        },
        (f"{group}/v1alpha1/serviceexports", "mirror2", "vllm-burst-aws"): {
            "metadata": {**meta, "name": "vllm-burst-aws"}
        },
    }
    for key, obj in left.items():
        world.objects[key] = obj
    # a copy uid-2 created and shared with uid-1, in a namespace holding nothing else of uid-1's (not even its
    # label): only the owners search finds it there; uid-2 has no mirror there any more, so nobody uses it
    shared = ("v1/configmaps", "other", "vllm-config")
    world.objects[shared] = {
        "metadata": {
            "name": "vllm-config",
            "namespace": "other",
            "labels": {**UID_LABELS, "overspill.dev/policy-uid": "uid-2"},
            "annotations": {"overspill.dev/owners": "uid-1,uid-2"},
        },
        "data": {},
    }
    r = await reconciler(cluster, FakeMetrics(0))
    rtm = runtime.Runtime(
        primary=cluster,
        primary_view=r.primary_view,
        targets=r.targets,
        reconciler=r,
        triggers=None,  # type: ignore[arg-type]
    )
    # the spec names only namespace "mirror": "mirror2" is known from nothing but the labels there
    raw = raw_spec(traffic={"serviceRef": {"name": "vllm"}, "importGroup": group})
    body = kopf.Body({"metadata": {"name": "vllm", "namespace": "ml", "uid": "uid-1"}, "spec": raw})
    for retry in range(3):
        with contextlib.suppress(kopf.TemporaryError):
            await handlers.burstpolicy_delete(
                namespace="ml", name="vllm", uid="uid-1", body=body, retry=retry, memo={"runtime": rtm}
            )
    assert [k for k in left if not world.objects[k].deleted] == []
    assert world.objects[shared].deleted


async def test_a_burst_from_zero_rereads_what_an_idle_poll_remembered(world: Any, cluster: Cluster) -> None:
    """Review break 7: an idle target's reads are remembered up to a minute (no GET per idle poll), and a mirror
    could start from 0 on that memory: here a Secret the target's admin provided, deleted since. Growing from 0
    now re-reads first, and the Secret's absence holds the target at 0."""
    world.objects["v1/secrets", "mirror", "hf"] = {"metadata": {"name": "hf", "namespace": "mirror"}, "data": {}}
    metrics = FakeMetrics(0)
    r = await reconciler(cluster, metrics)
    out = await run(r, spec())  # idle: hf is there (provided, not carried), remembered
    assert cond(out, "DependenciesReady")["status"] == "True"
    world.objects["v1/secrets", "mirror", "hf"].delete()  # the admin removes it
    metrics.queue = 150
    out = await run(r, spec(), BurstPolicyStatus.model_validate(out.status))
    assert not mirror_replicas(world, "mirror")  # no pod that could never start
    c = cond(out, "DependenciesReady")
    assert c["status"] == "False" and "Secret mirror/hf" in c["message"]


async def test_a_route_without_the_local_service_is_drained_not_held_forever(world: Any, cluster: Cluster) -> None:
    """Review break: with the policy's import in the route but no backendRef to the local Service, nothing was
    written and every secondary was held for good: the import kept its weight, the replicas were never drained.
    Now the import goes to 0, the replicas a poll later, then the import leaves the route."""
    bursting(world, {"mirror": 7})
    burst = {"group": "multicluster.x-k8s.io", "kind": "ServiceImport", "name": "vllm-burst-aws", "port": 80}
    world.objects[ROUTE] = {
        "metadata": {"name": "vllm", "namespace": "ml", "resourceVersion": "1"},
        "spec": {"rules": [{"backendRefs": [{**burst, "namespace": "mirror", "weight": 7}]}]},
    }
    exported(world, "mirror", "vllm-burst-aws")
    s = spec(propagation={"secrets": True}, traffic=TRAFFIC)
    r = await reconciler(cluster, FakeMetrics(20))  # the queue fell: the secondary is no longer wanted
    out = await run(r, s)
    assert burst_refs(world) == {("vllm-burst-aws", "mirror"): 0}
    assert mirror_replicas(world, "mirror") == 7  # weight first
    assert "no backendRef to Service vllm" in cond(out, "TrafficReady")["message"]
    for _ in range(2):
        out = await run(r, s, BurstPolicyStatus.model_validate(out.status))
    assert not mirror_replicas(world, "mirror")
    assert burst_refs(world) == {}


def secret_reads(emulator: Any, since: int) -> list[str]:
    """Reads of Secrets in the target's namespace that are not the watch's stream: LISTs and GETs."""
    return [
        f"{r.method.value} {r.url}"
        for r in list(emulator)[since:]
        if r.method.value == "GET" and "/namespaces/mirror/secrets" in r.url.path and "watch" not in r.url.query
    ]


async def test_a_target_holding_replicas_reads_its_secret_copies_from_a_watch(world: Any, cluster: Cluster) -> None:
    """Scale review: the search for stale copies LISTed the namespace's Secrets every poll of every policy holding
    replicas there (Secrets had no watch): at 1,000 bursting policies, 100 LISTs a second to the secondary. A watch
    of Overspill's copies in that one namespace answers it now, and still finds a copy the template stopped naming."""
    r = await reconciler(cluster, FakeMetrics(150))
    out = await run(r, spec(propagation={"secrets": True}))
    assert mirror_replicas(world, "mirror") == 7
    assert world.objects["v1/secrets", "mirror", "hf"]["data"] == {"t": "c2VjcmV0"}
    await asyncio.sleep(0.5)  # the namespace's watch lists once and is in sync
    before = len(list(world))
    for _ in range(3):
        out = await run(r, spec(propagation={"secrets": True}), BurstPolicyStatus.model_validate(out.status))
    assert secret_reads(world, before) == []
    assert mirror_replicas(world, "mirror") == 7
    workload = copy.deepcopy(world.objects["apps/v1/deployments", "ml", "vllm"].raw)
    workload["spec"]["template"]["spec"]["containers"][0]["env"] = []  # hf no longer named: its copy must go
    world.objects["apps/v1/deployments", "ml", "vllm"] = workload
    r = await reconciler(cluster, FakeMetrics(150))  # views listed afresh: the new template
    for _ in range(4):
        out = await run(r, spec(propagation={"secrets": True}), BurstPolicyStatus.model_validate(out.status))
        await asyncio.sleep(0.3)  # the watch of the namespace's Secret copies is in sync from the second poll
    assert world.objects["v1/secrets", "mirror", "hf"].deleted
