"""Review 9d (adversarial), kmock: where the issue-9 promises (dependencies follow the mirror, requests reach it)
still break on main. Each test fails on the code it was written against; the docstring says the user's story."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import kmock as kmock_lib
import pytest

from overspill.adapters.kube import Cluster
from overspill.api.policy import BurstPolicyStatus
from overspill.reconcile import Outcome
from tests.integration.conftest import FakeMetrics
from tests.integration.test_reconcile_serving_kmock import (  # noqa: F401 - fixtures
    _close_views,
    bursting,
    cond,
    mirror_replicas,
    reconciler,
    run,
    spec,
    world,
)

pytestmark = pytest.mark.integration
SECRETS, CONFIGMAPS, SERVICES = "v1/secrets", "v1/configmaps", "v1/services"
SERVICEACCOUNTS = "v1/serviceaccounts"
EXPORTS = "multicluster.x-k8s.io/v1alpha1/serviceexports"
DEPLOY = ("apps/v1/deployments", "ml", "vllm")
MIRROR = ("apps/v1/deployments", "mirror", "vllm")


@pytest.fixture
def lab(world: Any) -> Any:  # noqa: F811 - the serving world, plus PUT (replace) as the API server serves it
    def replace(request: Any) -> dict[str, Any]:
        key = (f"v1/{request.resource.plural}", request.namespace, request.name)
        old = world.objects[key]
        # the API server's validation of ConfigMaps and Secrets: an immutable one keeps its data
        if old.get("immutable") and old.get("data") != request.data.get("data"):
            raise kmock_lib.KubernetesError(
                status=422,
                reason="Invalid",
                message=f'"{request.name}" is invalid: data: Forbidden: field is immutable when `immutable` is set',
            )
        world.objects[key] = request.data
        return dict(request.data)

    for plural in ("configmaps", "secrets", "serviceaccounts", "services"):
        world["put", world.resource(f"v1/{plural}")] << replace
    return world


def gone(lab: Any, key: tuple[str, str, str]) -> bool:
    try:
        return bool(lab.objects[key].deleted)
    except KeyError:
        return True


def edit_template(lab: Any, change: Callable[[dict[str, Any]], None]) -> None:
    """Change the primary workload's pod spec (as `kubectl edit deployment vllm` would)."""
    wl = lab.objects[DEPLOY].raw
    change(wl["spec"]["template"]["spec"])
    lab.objects[DEPLOY] = wl


async def again(cluster: Cluster, metrics: FakeMetrics, s: Any, out: Outcome, polls: int = 2) -> Outcome:
    """Polls by a reconciler whose views list afresh (what the test changed is seen), a moment apart."""
    r = await reconciler(cluster, metrics)
    for _ in range(polls):
        out = await run(r, s, BurstPolicyStatus.model_validate(out.status))
        await asyncio.sleep(0.3)
    return out


# ---- dependencies ------------------------------------------------------------------------------------------


async def test_the_default_service_accounts_pull_secrets_are_carried_or_reported(lab: Any, cluster: Cluster) -> None:
    """The most common private-registry setup: `kubectl patch serviceaccount default -p '{"imagePullSecrets":
    [{"name": "regcred"}]}'`, and a pod template that names no ServiceAccount. The primary's pods pull through
    regcred (the ServiceAccount admission adds it); the target's own `default` has no pull secret. Overspill skips
    the `default` ServiceAccount altogether, pull secrets and all: DependenciesReady=True, the mirror is scaled to
    7, and its pods sit in ImagePullBackOff. The issue: the ServiceAccount *with its imagePullSecrets* goes with
    the burst; with secrets: false the pull secret must be named in DependenciesReady=False and the mirror kept
    at 0."""

    def no_service_account(pod: dict[str, Any]) -> None:
        pod.pop("serviceAccountName")
        pod["containers"][0].pop("env")  # no other Secret: only the pull secret is at stake

    edit_template(lab, no_service_account)
    objs = lab.objects
    objs[SERVICEACCOUNTS, "ml", "default"] = {
        "metadata": {"name": "default", "namespace": "ml"},
        "imagePullSecrets": [{"name": "regcred"}],
    }
    objs[SECRETS, "ml", "regcred"] = {
        "metadata": {"name": "regcred", "namespace": "ml"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": "e30="},
    }
    objs[SERVICEACCOUNTS, "mirror", "default"] = {"metadata": {"name": "default", "namespace": "mirror"}}
    out = await run(await reconciler(cluster, FakeMetrics(150)), spec())
    c = cond(out, "DependenciesReady")
    assert c["status"] == "False" and "Secret mirror/regcred" in c["message"], c
    assert not mirror_replicas(lab, "mirror"), "mirror scaled up with no pull secret for its image in the target"
    # the owner opts in: the pull secret is carried, and the mirror's pods name it (the target's own `default`
    # ServiceAccount, never overwritten, does not hand it out)
    out = await again(cluster, FakeMetrics(150), spec(propagation={"secrets": True}), out)
    assert cond(out, "DependenciesReady")["status"] == "True", cond(out, "DependenciesReady")
    assert lab.objects[SECRETS, "mirror", "regcred"]["data"] == {".dockerconfigjson": "e30="}
    assert lab.objects[MIRROR]["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert mirror_replicas(lab, "mirror") == 7
    assert "imagePullSecrets" not in lab.objects[SERVICEACCOUNTS, "mirror", "default"]


async def test_the_clusters_own_root_ca_configmap_does_not_block_the_burst(lab: Any, cluster: Cluster) -> None:
    """A template that mounts the API server's CA explicitly (a projected volume with a serviceAccountToken and
    ConfigMap kube-root-ca.crt: what the kubelet injects itself, and what Vault agents, CI runners and operators
    that call the API write by hand). Every namespace of every cluster has its own kube-root-ca.crt, published by
    the controller-manager: it must never be copied (the primary's CA is wrong in the target) and is always there.
    Overspill treats it as a dependency to carry, finds the target's own one 'not created by Overspill', and
    blocks the burst with a Conflict in every target, for good."""
    ca = {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}
    volume = {"name": "kube-api", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}, ca]}}
    edit_template(lab, lambda pod: pod["volumes"].append(volume))
    objs = lab.objects
    for ns, ca in (("ml", "PRIMARY-CA"), ("mirror", "TARGET-CA")):  # as each cluster's root-ca publisher made it
        objs[CONFIGMAPS, ns, "kube-root-ca.crt"] = {
            "metadata": {"name": "kube-root-ca.crt", "namespace": ns},
            "data": {"ca.crt": ca},
        }
    out = await run(await reconciler(cluster, FakeMetrics(150)), spec(propagation={"secrets": True}))
    assert objs[CONFIGMAPS, "mirror", "kube-root-ca.crt"]["data"] == {"ca.crt": "TARGET-CA"}  # never overwritten
    c = cond(out, "DependenciesReady")
    assert c["status"] == "True", c["message"]
    assert mirror_replicas(lab, "mirror") == 7


async def test_a_gpu_claim_template_the_target_lacks_is_named_and_holds_the_mirror(lab: Any, cluster: Cluster) -> None:
    """GPUs through Dynamic Resource Allocation (GA in Kubernetes 1.34, the lab's version; NVIDIA's DRA driver): the
    vLLM template asks for its GPU with `resourceClaims: [{name: gpu, resourceClaimTemplateName: gpu}]`, and the
    ResourceClaimTemplate lives in the workload's namespace. Like a PersistentVolumeClaim it is not carried, but
    unlike one it is not even looked for: DependenciesReady=True, the mirror is scaled to 7, and no pod of it can
    get a claim in the target (its template is missing there). The issue: what the template references and cannot
    be carried is named in DependenciesReady=False, and the mirror stays at 0."""
    lab.resources["resource.k8s.io/v1/resourceclaimtemplates"] = {
        "kind": "ResourceClaimTemplate",
        "namespaced": True,
        "verbs": ["get", "list", "watch"],
    }
    lab.objects["resource.k8s.io/v1/resourceclaimtemplates", "ml", "gpu"] = {
        "metadata": {"name": "gpu", "namespace": "ml"},
        "spec": {
            "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com"}}]}}
        },
    }

    def claim_gpu(pod: dict[str, Any]) -> None:
        pod["resourceClaims"] = [{"name": "gpu", "resourceClaimTemplateName": "gpu"}]
        pod["containers"][0]["resources"] = {"claims": [{"name": "gpu"}]}

    edit_template(lab, claim_gpu)
    out = await run(await reconciler(cluster, FakeMetrics(150)), spec(propagation={"secrets": True}))
    c = cond(out, "DependenciesReady")
    assert c["status"] == "False" and "gpu" in c["message"], c
    assert not mirror_replicas(lab, "mirror"), "mirror scaled up: its pods can get no GPU claim in the target"


@pytest.mark.parametrize(
    ("plural", "name", "source"),
    [("configmaps", "vllm-config", {"m": "1"}), ("secrets", "hf", {"t": "c2VjcmV0"})],
)
async def test_a_copy_edited_in_the_target_is_put_back(
    lab: Any, cluster: Cluster, plural: str, name: str, source: dict[str, str]
) -> None:
    """Someone in the target (a person with edit there, a tool, an attacker with a foothold in the other cloud)
    changes the data of Overspill's copy and leaves its annotations alone. The plan compares only the copy's
    source-hash annotation with the source: the copy counts as current, and the mirror's pods run on data the
    primary never had (another model, another token) for as long as the policy lives. The mirror itself is put
    back when edited (drift correction); its dependencies are not."""
    metrics = FakeMetrics(150)
    s = spec(propagation={"secrets": True})
    out = await run(await reconciler(cluster, metrics), s)
    key = (f"v1/{plural}", "mirror", name)
    assert lab.objects[key]["data"] == source
    copy = lab.objects[key].raw
    copy["data"] = {k: "dGFtcGVyZWQ=" for k in source}  # "tampered", annotations and labels kept
    lab.objects[key] = copy
    await again(cluster, metrics, s, out)
    assert lab.objects[key]["data"] == source, "the copy in the target no longer holds the source's data"


async def test_a_template_change_needing_a_missing_secret_is_not_rolled_out_to_the_running_mirror(
    lab: Any, cluster: Cluster
) -> None:
    """secrets: false, the target's admin provides hf there: the burst runs 7 replicas. The workload's template
    gains a second token (env from Secret hf2, which exists in the primary only). DependenciesReady=False names
    hf2 and the mirror is not grown, but its template is replaced at once: the Deployment in the target starts a
    new ReplicaSet whose pods cannot start (CreateContainerConfigError) and, by the rolling update's
    maxUnavailable, takes down serving replicas for them. The mirror must not start pods (a new ReplicaSet above
    0) while their dependencies there are not ready: the running template stays until hf2 is there."""
    lab.objects[SECRETS, "mirror", "hf"] = {"metadata": {"name": "hf", "namespace": "mirror"}, "data": {"t": "eA=="}}
    metrics = FakeMetrics(150)
    out = await run(await reconciler(cluster, metrics), spec())
    assert mirror_replicas(lab, "mirror") == 7
    hf2 = {"name": "HF2", "valueFrom": {"secretKeyRef": {"name": "hf2", "key": "t"}}}
    edit_template(lab, lambda pod: pod["containers"][0]["env"].append(hf2))
    lab.objects[SECRETS, "ml", "hf2"] = {"metadata": {"name": "hf2", "namespace": "ml"}, "data": {"t": "eQ=="}}
    out = await again(cluster, metrics, spec(), out)
    c = cond(out, "DependenciesReady")
    assert c["status"] == "False" and "Secret mirror/hf2" in c["message"]
    env = lab.objects[MIRROR]["spec"]["template"]["spec"]["containers"][0].get("env") or []
    named = [e["valueFrom"]["secretKeyRef"]["name"] for e in env if "secretKeyRef" in (e.get("valueFrom") or {})]
    assert "hf2" not in named, "the mirror's template now needs Secret hf2, which the target does not have"
    assert cond(out, "MirrorsUpToDate")["reason"] == "TemplateUpdatePending", cond(out, "MirrorsUpToDate")
    # the target's admin provides hf2 there: the held template goes out
    lab.objects[SECRETS, "mirror", "hf2"] = {"metadata": {"name": "hf2", "namespace": "mirror"}, "data": {"t": "eQ=="}}
    out = await again(cluster, metrics, spec(), out)
    env = lab.objects[MIRROR]["spec"]["template"]["spec"]["containers"][0].get("env") or []
    assert "hf2" in [e["valueFrom"]["secretKeyRef"]["name"] for e in env if "secretKeyRef" in e.get("valueFrom", {})]
    assert cond(out, "MirrorsUpToDate")["status"] == "True"


async def test_a_secret_dropped_from_the_template_while_the_target_is_idle_leaves_no_copy(
    lab: Any, cluster: Cluster
) -> None:
    """A burst copied Secret hf; the burst ended (the mirror is kept at 0). The team then moves the workload to a
    new token, hf2 (hf is to be retired). The idle mirror's template is not updated (no write while it is at 0), so
    it still names hf, and the stale-copy rule reads that as "in use": the old credential stays in the other
    cloud until the next burst, which may be weeks away. A mirror at 0 runs no pod that could use it."""
    metrics = FakeMetrics(150)
    s = spec(propagation={"secrets": True})
    r = await reconciler(cluster, metrics)
    out = await run(r, s)
    assert not gone(lab, (SECRETS, "mirror", "hf"))
    metrics.queue = 0
    for _ in range(5):
        out = await run(r, s, BurstPolicyStatus.model_validate(out.status))
        await asyncio.sleep(0.3)
    assert mirror_replicas(lab, "mirror") == 0  # the burst is over, the mirror kept at 0

    def new_token(pod: dict[str, Any]) -> None:
        pod["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]["name"] = "hf2"

    edit_template(lab, new_token)
    lab.objects[SECRETS, "ml", "hf2"] = {"metadata": {"name": "hf2", "namespace": "ml"}, "data": {"t": "bmV3"}}
    await again(cluster, metrics, s, out, polls=3)
    assert gone(lab, (SECRETS, "mirror", "hf")), "the retired token's copy stays in the idle target"


async def test_an_env_override_that_replaces_the_secret_lifts_the_block(lab: Any, cluster: Cluster) -> None:
    """The target gets its own, non-secret value for HF_TOKEN (`overrides.env`, e.g. a public model mirror in that
    cloud needing no token): the mirror's template no longer names Secret hf. Overspill plans the dependencies from
    the primary's template (only overrides.volumes applied), so with secrets: false the burst is still held at 0
    by a Secret the mirror does not use (and with secrets: true that unused credential is copied to the other
    cloud)."""
    targets = [{"name": "aws", "overrides": {"namespace": "mirror", "env": {"HF_TOKEN": "anonymous"}}}]
    out = await run(await reconciler(cluster, FakeMetrics(150)), spec(targets=targets))
    c = cond(out, "DependenciesReady")
    assert c["status"] == "True", c["message"]
    assert mirror_replicas(lab, "mirror") == 7


async def test_an_env_override_that_replaces_the_secret_copies_no_credential(lab: Any, cluster: Cluster) -> None:
    """The same override with secrets: true: the mirror's pods do not use Secret hf, so the credential is not
    copied into the other cloud (only what the mirror's pods reference is carried)."""
    targets = [{"name": "aws", "overrides": {"namespace": "mirror", "env": {"HF_TOKEN": "anonymous"}}}]
    out = await run(await reconciler(cluster, FakeMetrics(150)), spec(targets=targets, propagation={"secrets": True}))
    assert cond(out, "DependenciesReady")["status"] == "True"
    assert mirror_replicas(lab, "mirror") == 7
    assert gone(lab, (SECRETS, "mirror", "hf")), "a Secret the mirror does not use was copied to the target"


async def test_an_immutable_configmap_replaced_in_the_primary_reaches_the_target(lab: Any, cluster: Cluster) -> None:
    """Immutable ConfigMaps (and Secrets) are the documented way to ship config at scale: to change one, you delete
    it and create it again with the new data. The copy is immutable too (`immutable` is copied), so the API server
    refuses the copy's update (422: data is immutable). Overspill never recreates it: the target keeps the old
    config for good, and the failed write holds the target from growing at every poll."""
    cm = ("v1/configmaps", "ml", "vllm-config")
    lab.objects[cm] = {"metadata": {"name": "vllm-config", "namespace": "ml"}, "data": {"m": "1"}, "immutable": True}
    metrics = FakeMetrics(150)
    s = spec(propagation={"secrets": True})
    out = await run(await reconciler(cluster, metrics), s)
    assert lab.objects[CONFIGMAPS, "mirror", "vllm-config"]["data"] == {"m": "1"}
    # kubectl delete cm vllm-config && kubectl create cm vllm-config --from-literal=m=2 (immutable)
    lab.objects[cm] = {"metadata": {"name": "vllm-config", "namespace": "ml"}, "data": {"m": "2"}, "immutable": True}
    out = await again(cluster, metrics, s, out)
    assert lab.objects[CONFIGMAPS, "mirror", "vllm-config"]["data"] == {"m": "2"}, cond(out, "DependenciesReady")


# ---- the burst Service -------------------------------------------------------------------------------------


async def test_a_selector_key_dropped_from_the_primary_service_leaves_the_burst_service(
    lab: Any, cluster: Cluster
) -> None:
    """The primary Service selected {app: vllm, track: stable}; the team drops `track` (from the Service and the
    pod template's labels). The burst Service is brought up to date by a merge patch, which adds and changes map
    keys but never removes one: it keeps `track: stable`, selects none of the mirror's pods (their template lost
    the label), and its export serves no endpoint while the route still weights it. It also differs from what is
    wanted forever, so it is patched again at every poll."""
    bursting(lab, {"mirror": 7})
    svc = ("v1/services", "ml", "vllm")
    lab.objects[svc] = {
        "metadata": {"name": "vllm", "namespace": "ml"},
        "spec": {"selector": {"app": "vllm", "track": "stable"}, "ports": [{"port": 80}]},
    }
    metrics = FakeMetrics(150)
    s = spec(propagation={"secrets": True}, traffic={"serviceRef": {"name": "vllm"}})
    out = await run(await reconciler(cluster, metrics), s)
    burst = (SERVICES, "mirror", "vllm-burst-aws")
    assert lab.objects[burst]["spec"]["selector"]["track"] == "stable"
    lab.objects[svc] = {
        "metadata": {"name": "vllm", "namespace": "ml"},
        "spec": {"selector": {"app": "vllm"}, "ports": [{"port": 80}]},
    }
    await again(cluster, metrics, s, out)
    assert lab.objects[burst]["spec"]["selector"] == {"app": "vllm", "overspill.dev/policy-uid": "uid-1"}


async def test_a_service_annotation_removed_from_the_spec_leaves_the_burst_service(lab: Any, cluster: Cluster) -> None:
    """ClusterMesh global service (docs/traffic.md): exportName = the Service's name, serviceAnnotations global and,
    by mistake, `service.cilium.io/affinity: local` (the docs' own warning: local endpoints first, burst replicas
    starve). The team removes the affinity from spec.traffic.serviceAnnotations. Overspill only checks that the
    wanted annotations are present: the removed one stays on the burst Service, and the burst replicas go on
    starving (likewise removing `service.cilium.io/global` never takes the Service out of the mesh)."""
    bursting(lab, {"mirror": 7})
    metrics = FakeMetrics(150)
    annotations = {"service.cilium.io/global": "true", "service.cilium.io/affinity": "local"}
    traffic = {"serviceRef": {"name": "vllm"}, "exportName": "vllm", "serviceAnnotations": annotations}
    out = await run(await reconciler(cluster, metrics), spec(propagation={"secrets": True}, traffic=traffic))
    burst = (SERVICES, "mirror", "vllm")
    assert lab.objects[burst]["metadata"]["annotations"]["service.cilium.io/affinity"] == "local"
    fixed = {**traffic, "serviceAnnotations": {"service.cilium.io/global": "true"}}
    await again(cluster, metrics, spec(propagation={"secrets": True}, traffic=fixed), out)
    assert "service.cilium.io/affinity" not in lab.objects[burst]["metadata"]["annotations"]


async def test_removing_spec_traffic_removes_the_burst_service_and_its_export(lab: Any, cluster: Cluster) -> None:
    """The team takes spec.traffic out (requests must stop going to the other cloud: egress cost, latency, a data
    residency rule). The route is drained (status.routes), but the burst Service and its ServiceExport stay in
    every target, exported to the clusterset (with ClusterMesh or Istio: still merged into the primary's Service),
    until the policy is deleted: nothing the spec asks for any more, and still serving."""
    bursting(lab, {"mirror": 7})
    metrics = FakeMetrics(150)
    traffic = {"serviceRef": {"name": "vllm"}}
    out = await run(await reconciler(cluster, metrics), spec(propagation={"secrets": True}, traffic=traffic))
    burst = ("mirror", "vllm-burst-aws")
    assert not gone(lab, (SERVICES, *burst)) and not gone(lab, (EXPORTS, *burst))
    await again(cluster, metrics, spec(propagation={"secrets": True}), out, polls=3)
    assert mirror_replicas(lab, "mirror") == 7  # the burst goes on: only its traffic objects are no longer wanted
    left = [k for k in ((SERVICES, *burst), (EXPORTS, *burst)) if not gone(lab, k)]
    assert left == [], f"left in the target after spec.traffic was removed: {left}"


async def test_removing_spec_traffic_keeps_the_burst_service_until_the_route_has_drained(
    lab: Any, cluster: Cluster
) -> None:
    """With a route, the burst Service and its export stay while the route still holds the policy's backendRef
    (weight 0 for drainSeconds: requests in flight reach the replicas through the import made from that export),
    and go once the backendRef has left the route; the burst itself goes on."""
    from tests.integration.test_route_renames_kmock import Time, bursting_with_weight, imports, poll

    r, metrics, out = await bursting_with_weight(lab, cluster, drainSeconds=60)
    metrics.queue = 150  # the queue stays up: the burst goes on without spec.traffic
    clock = Time(r)
    r.clock = clock
    s = spec(propagation={"secrets": True})
    burst = [(SERVICES, "mirror", "vllm-burst-aws"), (EXPORTS, "mirror", "vllm-burst-aws")]
    for seconds in (0, 30):
        clock.now = clock.start + seconds
        out = await poll(r, s, out)
        await asyncio.sleep(0.3)
        assert imports(lab) == {"vllm-burst-aws": 0}, f"{seconds} s into the drain"
        assert [k for k in burst if gone(lab, k)] == [], f"removed {seconds} s into a 60 s drain"
    clock.now = clock.start + 61
    for _ in range(2):
        out = await poll(r, s, out)
        await asyncio.sleep(0.3)
    assert "vllm-burst-aws" not in imports(lab) and out.status["routes"] == []
    assert [k for k in burst if not gone(lab, k)] == [], "left in the target once the route had drained"
    assert mirror_replicas(lab, "mirror") == 7
