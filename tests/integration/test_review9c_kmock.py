"""Review 9c (adversarial), kmock: copies and the route record still break the issue-9 promises."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from overspill.adapters.kube import Cluster
from overspill.api.policy import BurstPolicyStatus
from tests.integration.conftest import FakeMetrics
from tests.integration.test_reconcile_serving_kmock import (  # noqa: F401 - fixtures
    _close_views,
    reconciler,
    run,
    spec,
    world,
)

pytestmark = pytest.mark.integration
SECRETS, CONFIGMAPS = "v1/secrets", "v1/configmaps"
DEPLOY = ("apps/v1/deployments", "ml", "vllm")


def gone(world: Any, key: tuple[str, str, str]) -> bool:  # noqa: F811
    try:
        return bool(world.objects[key].deleted)
    except KeyError:
        return True


async def test_a_secret_renamed_in_the_template_is_revoked_when_secrets_are_turned_off(
    world: Any,  # noqa: F811
    cluster: Cluster,
) -> None:
    """The template's Secret hf is replaced by hf2 (a token rotation by a new name). The old copy of hf stays in the
    target (plan() only looks at the names the template names now); then the owner withdraws consent
    (propagation.secrets: false): hf2 is revoked, hf, the same credential, stays in the other cloud for good."""
    r = await reconciler(cluster, FakeMetrics(150))
    out = await run(r, spec(propagation={"secrets": True}))
    assert world.objects[SECRETS, "mirror", "hf"]["data"] == {"t": "c2VjcmV0"}
    wl = world.objects[DEPLOY].raw
    env = wl["spec"]["template"]["spec"]["containers"][0]["env"]
    env[0]["valueFrom"]["secretKeyRef"]["name"] = "hf2"
    world.objects[DEPLOY] = wl
    world.objects[SECRETS, "ml", "hf2"] = {"metadata": {"name": "hf2", "namespace": "ml"}, "data": {"t": "bmV3"}}
    r = await reconciler(cluster, FakeMetrics(150))  # views listed afresh: the new template
    out = await run(r, spec(propagation={"secrets": True}), BurstPolicyStatus.model_validate(out.status))
    await asyncio.sleep(0.5)
    assert world.objects[SECRETS, "mirror", "hf2"]["data"] == {"t": "bmV3"}
    for _ in range(2):
        out = await run(r, spec(propagation={"secrets": False}), BurstPolicyStatus.model_validate(out.status))
        await asyncio.sleep(0.3)
    assert gone(world, (SECRETS, "mirror", "hf2"))
    assert gone(world, (SECRETS, "mirror", "hf")), "the old Secret copy outlives the owner's consent"


async def test_a_configmap_renamed_in_the_template_leaves_no_stale_copy(world: Any, cluster: Cluster) -> None:  # noqa: F811
    """vllm-config renamed to vllm-config-v2 in the template during a burst: the old copy stays in the target until
    the policy goes (nothing names it, nothing removes it)."""
    r = await reconciler(cluster, FakeMetrics(150))
    out = await run(r, spec(propagation={"secrets": True}))
    assert not gone(world, (CONFIGMAPS, "mirror", "vllm-config"))
    wl = world.objects[DEPLOY].raw
    wl["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] = "vllm-config-v2"
    world.objects[DEPLOY] = wl
    world.objects[CONFIGMAPS, "ml", "vllm-config-v2"] = {
        "metadata": {"name": "vllm-config-v2", "namespace": "ml"},
        "data": {"m": "2"},
    }
    r = await reconciler(cluster, FakeMetrics(150))  # views listed afresh: the new template
    for _ in range(3):
        out = await run(r, spec(propagation={"secrets": True}), BurstPolicyStatus.model_validate(out.status))
        await asyncio.sleep(0.3)
    assert not gone(world, (CONFIGMAPS, "mirror", "vllm-config-v2"))
    assert gone(world, (CONFIGMAPS, "mirror", "vllm-config")), "stale copy of the renamed ConfigMap"


async def test_secrets_turned_off_while_the_target_is_idle_revokes_the_copy(world: Any, cluster: Cluster) -> None:  # noqa: F811
    """A burst copied hf; the burst ended (mirror scaled to 0, kept). The owner turns propagation.secrets off while
    the target holds no replica: the idle target is not planned, so the Secret copy stays in the other cloud."""
    metrics = FakeMetrics(150)
    r = await reconciler(cluster, metrics)
    out = await run(r, spec(propagation={"secrets": True}))
    assert world.objects[SECRETS, "mirror", "hf"]["data"] == {"t": "c2VjcmV0"}
    metrics.queue = 0
    for _ in range(3):
        out = await run(r, spec(propagation={"secrets": True}), BurstPolicyStatus.model_validate(out.status))
        await asyncio.sleep(0.3)
    try:
        left = int(world.objects["apps/v1/deployments", "mirror", "vllm"]["spec"]["replicas"])
    except KeyError:
        left = -1
    print("mirror after the burst:", left, "deleted" if gone(world, ("apps/v1/deployments", "mirror", "vllm")) else "")
    for _ in range(3):
        out = await run(r, spec(propagation={"secrets": False}), BurstPolicyStatus.model_validate(out.status))
        await asyncio.sleep(0.3)
    assert gone(world, (SECRETS, "mirror", "hf")), "Secret copy left in the target after secrets were turned off"


async def test_the_record_dropped_mid_drain_still_holds_the_replicas_for_the_drain_time(
    world: Any,  # noqa: F811
    cluster: Cluster,
) -> None:
    """exportName changed during a burst (drainSeconds 30): vllm-burst-aws goes to 0 and the record says since
    when. A second later a GitOps self-heal or `kubectl replace` rewrites the route without Overspill's annotation
    (spec as it is). The old backendRef is no longer the policy's by any rule: the aws replicas are removed at the
    next poll (not after 30 s), and the backendRef stays in the route for good (and as a 'canary' keeps a share)."""
    from tests.integration.test_reconcile_serving_kmock import mirror_replicas
    from tests.integration.test_route_renames_kmock import ROUTE, TRAFFIC, Time, bursting_with_weight, imports, poll

    r, _, out = await bursting_with_weight(world, cluster, drainSeconds=30)
    clock = Time(r)
    r.clock = clock
    s = spec(propagation={"secrets": True}, traffic={**TRAFFIC, "drainSeconds": 30, "exportName": "llm"})
    out = await poll(r, s, out)
    assert imports(world).get("vllm-burst-aws") == 0 and mirror_replicas(world, "mirror") == 7
    raw = world.objects[ROUTE].raw
    raw["metadata"]["annotations"] = {}  # rewritten by someone else: spec kept, annotation gone
    world.objects[ROUTE] = raw
    for seconds in (1, 2, 5):
        clock.now = clock.start + seconds
        out = await poll(r, s, out)
        await asyncio.sleep(0.3)
        assert mirror_replicas(world, "mirror") == 7, f"replicas removed {seconds} s into a 30 s drain"
    clock.now = clock.start + 40
    for _ in range(3):
        out = await poll(r, s, out)
        await asyncio.sleep(0.3)
    assert "vllm-burst-aws" not in imports(world), f"stale backendRef left in the route: {imports(world)}"


async def test_the_record_dropped_during_a_burst_then_a_rename_never_leaves_weight_on_removed_replicas(
    world: Any,  # noqa: F811
    cluster: Cluster,
) -> None:
    """The route is rewritten without the annotation while bursting (GitOps self-heal, kubectl replace, a Helm
    upgrade of a chart that templates the route), then exportName changes: vllm-burst-aws (weight 7) is no longer
    the policy's by record or by name, so it is a 'canary' that keeps its share, while its replicas are removed."""
    from tests.integration.test_reconcile_serving_kmock import mirror_replicas
    from tests.integration.test_route_renames_kmock import ROUTE, TRAFFIC, bursting_with_weight, imports, poll

    r, _, out = await bursting_with_weight(world, cluster)
    raw = world.objects[ROUTE].raw
    raw["metadata"]["annotations"] = {}
    world.objects[ROUTE] = raw
    s = spec(propagation={"secrets": True}, traffic={**TRAFFIC, "exportName": "llm"})
    for _ in range(4):
        out = await poll(r, s, out)
        await asyncio.sleep(0.3)
        if not mirror_replicas(world, "mirror"):
            assert imports(world).get("vllm-burst-aws", 0) == 0, f"replicas gone, route still sends: {imports(world)}"
    print("final", imports(world), mirror_replicas(world, "mirror"))


async def test_removing_spec_traffic_keeps_the_drain_time_the_owner_set(world: Any, cluster: Cluster) -> None:  # noqa: F811
    """drainSeconds: 300 (long streaming completions). spec.traffic is removed during a burst: the route
    (remembered in status.routes) drains, but with the default 30 s, not the 300 the owner set: the drain time is
    not in the record, so requests still in flight on the aws replicas are cut at 30 s."""
    from tests.integration.test_reconcile_serving_kmock import mirror_replicas
    from tests.integration.test_route_renames_kmock import Time, bursting_with_weight, imports, poll

    r, _, out = await bursting_with_weight(world, cluster, drainSeconds=300)
    clock = Time(r)
    r.clock = clock
    s = spec(propagation={"secrets": True})  # spec.traffic removed
    out = await poll(r, s, out)
    assert imports(world).get("vllm-burst-aws") == 0 and mirror_replicas(world, "mirror") == 7
    for seconds in (31, 60, 120):
        clock.now = clock.start + seconds
        out = await poll(r, s, out)
        await asyncio.sleep(0.3)
        assert mirror_replicas(world, "mirror") == 7, f"replicas removed {seconds} s into a 300 s drain"


async def test_no_weight_to_a_service_import_that_does_not_exist_in_the_primary(world: Any, cluster: Cluster) -> None:  # noqa: F811
    """The export in aws is Exported, 7 replicas Ready there, but the primary holds no ServiceImport
    mirror/vllm-burst-aws (MCS namespace sameness: the namespace `mirror` does not exist in the primary, or the
    MCS controller has not synced it yet). Overspill never reads ServiceImports: it gives the backendRef weight 7,
    and the gateway answers that share of requests with 500 (Gateway API: an unresolved backendRef's share fails)."""
    from tests.integration.test_reconcile_serving_kmock import bursting, exported, route
    from tests.integration.test_route_renames_kmock import ROUTE, TRAFFIC, imports, poll

    world.resources["multicluster.x-k8s.io/v1alpha1/serviceimports"] = {
        "kind": "ServiceImport",
        "namespaced": True,
        "verbs": ["get", "list", "watch"],
    }
    bursting(world, {"mirror": 7})
    world.objects[ROUTE] = route()
    exported(world, "mirror", "vllm-burst-aws")
    r = await reconciler(cluster, FakeMetrics(150))
    await poll(r, spec(propagation={"secrets": True}, traffic=TRAFFIC))
    assert imports(world) == {"vllm-burst-aws": 0}, f"weight to an import the primary does not have: {imports(world)}"
