"""The safety promises of issue 10 against kmock: each test is the fault that broke a promise before the fix."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from overspill.adapters.kube import Cluster
from overspill.api import parse_target_spec
from overspill.api.policy import BurstPolicyStatus
from overspill.reconcile import BUSY_COST, Outcome, PolicyRef, Reconciler
from overspill.targets import TargetRegistry
from tests.integration.conftest import FakeMetrics, deployment, pod
from tests.integration.safety_setup import (
    CI,
    COST,
    MANAGED,
    events,
    kinds,
    make,
    mirror_seen,
    present,
    replicas,
    tick,
    until,
    workload_reading_a_config_map,
    writes,
)
from tests.integration.test_reconcile_kmock import _close_views, spec, synced_view

pytestmark = pytest.mark.integration
__all__ = ["_close_views"]  # the fixture that closes views after each test

# ---- 1. unknown busy = busy ----------------------------------------------------------------------------------


async def test_a_failing_busy_query_scales_nothing_in_and_keeps_deletion_costs(emulator: Any, cluster: Cluster) -> None:
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 4)
    for name, cost in (("r-1", str(BUSY_COST)), ("r-2", "0"), ("r-3", "0"), ("r-4", str(BUSY_COST))):
        emulator.objects["v1/pods", "ml", name] = pod(name, "ml", annotations={COST: cost})
    metrics = FakeMetrics(0)
    metrics.per_pod_values = None  # the busy query fails
    s = spec(**CI, busy={"query": "sum by (pod) (busy)"}, targets=[])
    out = await tick(await make(cluster, metrics), s)
    assert emulator.objects["apps/v1/deployments", "ml", "vllm"]["spec"]["replicas"] == 4  # nothing scaled in
    costs = [
        emulator.objects["v1/pods", "ml", n]["metadata"]["annotations"][COST] for n in ("r-1", "r-2", "r-3", "r-4")
    ]
    assert costs == [str(BUSY_COST), "0", "0", str(BUSY_COST)]  # left as they were, not reset to 0
    assert writes(emulator) == []
    assert kinds(out)["BusyAvailable"] == ("False", "BusyUnknown")
    assert ("Warning", "BusyUnknown") in events(out)


async def test_mirror_pods_are_unknown_without_the_targets_own_prometheus(emulator: Any, cluster: Cluster) -> None:
    """The primary's Prometheus does not see the secondary: its silence about mirror pods is not 'idle'."""
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 0)
    emulator.objects["apps/v1/deployments", "mirror", "vllm"] = deployment("vllm", "mirror", 3, labels=MANAGED)
    for name in ("m-1", "m-2", "m-3"):
        emulator.objects["v1/pods", "mirror", name] = pod(name, "mirror", labels=MANAGED)
    metrics = FakeMetrics(0)
    metrics.per_pod_values = {}  # the primary's Prometheus knows nothing of them
    s = spec(**CI, busy={"query": "sum by (pod) (busy)"})
    out = await tick(await make(cluster, metrics), s)
    assert emulator.objects["apps/v1/deployments", "mirror", "vllm"]["spec"]["replicas"] == 3
    assert kinds(out)["BusyAvailable"][0] == "False"


async def test_the_targets_prometheus_answers_for_its_pods(emulator: Any, cluster: Cluster) -> None:
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 0)
    emulator.objects["apps/v1/deployments", "mirror", "vllm"] = deployment("vllm", "mirror", 3, labels=MANAGED)
    for name in ("m-1", "m-2", "m-3"):
        emulator.objects["v1/pods", "mirror", name] = pod(name, "mirror", labels=MANAGED)
    metrics = FakeMetrics(0)
    metrics.per_pod_by_url = {"http://prom:9090": {}, "http://aws-prom:9090": {"m-1": 1.0, "m-2": 0.0, "m-3": 0.0}}
    s = spec(**CI, busy={"query": "sum by (pod) (busy)"})
    r = await make(cluster, metrics, target={"prometheus": {"url": "http://aws-prom:9090"}})
    await tick(r, s)
    assert emulator.objects["apps/v1/deployments", "mirror", "vllm"]["spec"]["replicas"] == 1  # only the busy one
    assert emulator.objects["v1/pods", "mirror", "m-1"]["metadata"]["annotations"][COST] == str(BUSY_COST)


async def test_busy_levels_are_read_by_namespace_and_pod(emulator: Any, cluster: Cluster) -> None:
    """Two series for one pod (two scrape jobs), a same-name pod in another namespace: the busy runner stays."""
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 0)
    emulator.objects["apps/v1/deployments", "mirror", "vllm"] = deployment("vllm", "mirror", 3, labels=MANAGED)
    for name in ("m-1", "m-2", "m-3"):
        emulator.objects["v1/pods", "mirror", name] = pod(name, "mirror", labels=MANAGED)
    metrics = FakeMetrics(0)
    answer = {"mirror/m-1": 1.0, "mirror/m-2": 0.0, "mirror/m-3": 0.0, "other/m-1": 0.0}
    metrics.per_pod_by_url = {"http://prom:9090": {}, "http://aws-prom:9090": answer}
    s = spec(**CI, busy={"query": "max by (namespace, pod) (busy)"})
    r = await make(cluster, metrics, target={"prometheus": {"url": "http://aws-prom:9090"}})
    await tick(r, s)
    assert emulator.objects["apps/v1/deployments", "mirror", "vllm"]["spec"]["replicas"] == 1  # m-1 is busy
    assert emulator.objects["v1/pods", "mirror", "m-1"]["metadata"]["annotations"][COST] == str(BUSY_COST)


# ---- 2. shared caps --------------------------------------------------------------------------------------------


class RacingRegistry(TargetRegistry):
    """Every policy reads the target's room before any of them acts: the race that filled a cap of 10 with 14."""

    def __init__(self, parties: int) -> None:
        super().__init__()
        self.barrier = threading.Barrier(parties, timeout=5)

    def room_for(self, *args: Any, **kwargs: Any) -> int | None:
        room = super().room_for(*args, **kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):
            self.barrier.wait()
        return room


async def test_two_policies_racing_for_a_capped_target_never_exceed_it(emulator: Any, cluster: Cluster) -> None:
    """Both want 7 on a target capped at 10, and both read its room before either acts."""
    refs = [PolicyRef("a", "a", "uid-a"), PolicyRef("b", "b", "uid-b")]
    for ref in refs:
        emulator.objects["apps/v1/deployments", ref.namespace, "vllm"] = deployment("vllm", ref.namespace, 8)
    registry = RacingRegistry(2)
    target = {"maxReplicas": 10, "allowedTargetNamespaces": ["m-a", "m-b"]}
    registry.upsert("aws", parse_target_spec({"kubeconfigSecretRef": {"name": "s", "namespace": "ops"}, **target}))
    registry.set_health("aws", cluster=cluster, healthy=True, message="ok")
    registry.set_view("aws", await synced_view("aws", cluster))
    r = await make(cluster, FakeMetrics(150), registry=registry)
    specs = {}
    for ref in refs:
        specs[ref.uid] = spec(targets=[{"name": "aws", "overrides": {"namespace": f"m-{ref.namespace}"}}])
    history = []
    prev = {ref.uid: BurstPolicyStatus() for ref in refs}
    for _ in range(4):
        outs = await asyncio.gather(*(tick(r, specs[ref.uid], prev[ref.uid], ref) for ref in refs))
        for ref, out in zip(refs, outs, strict=True):
            prev[ref.uid] = BurstPolicyStatus.model_validate(out.status)
        placed = tuple(replicas(emulator, f"m-{ref.namespace}") or 0 for ref in refs)
        assert sum(placed) <= 10, placed
        history.append(tuple(sorted(placed)))
        await until(lambda: all(mirror_seen(r, f"m-{ref.namespace}") in (None, 0, 3, 7) for ref in refs))
        await asyncio.sleep(0.2)  # the views see what was written
    assert history[-1] == history[-2] == history[-3] == (3, 7)  # settled, no 7 <-> 3 flapping


async def test_dry_run_takes_no_room(emulator: Any, cluster: Cluster) -> None:
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 8)
    r = await make(cluster, FakeMetrics(150), target={"maxReplicas": 7})
    await tick(r, spec(mode="DryRun"))
    assert r.targets.room_for("aws", "someone-else", 0) == 7


# ---- 3. no orphans ---------------------------------------------------------------------------------------------


async def test_a_target_dropped_from_the_spec_is_drained_then_deleted(emulator: Any, cluster: Cluster) -> None:
    """The reproduced orphan: status said 0 in the secondary while 7 ran there."""
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 8)
    for i in range(8):
        emulator.objects["v1/pods", "ml", f"p-{i}"] = pod(f"p-{i}", "ml")  # the primary's 8, Ready
    emulator.objects["apps/v1/deployments", "mirror", "vllm"] = deployment("vllm", "mirror", 7, labels=MANAGED)
    r = await make(cluster, FakeMetrics(150), target={"maxReplicas": 10})
    s = spec(targets=[])
    await tick(r, s)
    assert replicas(emulator, "mirror") == 0
    await until(lambda: mirror_seen(r, "mirror") == 0)
    await tick(r, s)
    assert writes(emulator)[-1] == "DELETE /apis/apps/v1/namespaces/mirror/deployments/vllm"
    await until(lambda: mirror_seen(r, "mirror") is None)
    await tick(r, s)
    assert r.targets.room_for("aws", "another-policy", 0) == 10  # its room in the shared cap came back


async def test_a_changed_mirror_namespace_moves_the_runners_busy_ones_last(emulator: Any, cluster: Cluster) -> None:
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 8)
    emulator.objects["apps/v1/deployments", "mirror", "vllm"] = deployment("vllm", "mirror", 3, labels=MANAGED)
    emulator.objects["v1/pods", "mirror", "m-busy"] = pod("m-busy", "mirror", labels=MANAGED, annotations={"b": "true"})
    emulator.objects["v1/pods", "mirror", "m-idle"] = pod("m-idle", "mirror", labels=MANAGED)
    emulator.objects["v1/pods", "mirror", "m-idle2"] = pod("m-idle2", "mirror", labels=MANAGED)
    r = await make(cluster, FakeMetrics(110))
    s = spec(**CI, busy={"podAnnotation": "b"}, targets=[{"name": "aws", "overrides": {"namespace": "mirror2"}}])
    await tick(r, s)
    assert replicas(emulator, "mirror2") == 3  # the new home
    assert replicas(emulator, "mirror") == 1  # the old one keeps its busy runner only


async def test_a_deleted_workload_drains_the_secondaries(emulator: Any, cluster: Cluster) -> None:
    emulator.objects["apps/v1/deployments", "mirror", "vllm"] = deployment("vllm", "mirror", 7, labels=MANAGED)
    out = await tick(await make(cluster, FakeMetrics(150)), spec())
    assert replicas(emulator, "mirror") == 0
    ready = next(c for c in out.status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "WorkloadMissing")


async def test_a_hand_edited_mirror_is_replaced_within_one_poll(emulator: Any, cluster: Cluster) -> None:
    """A strategic merge left hand edits (and removed fields) in place while the hash said 'in sync'."""
    from overspill.views import MANAGED_SELECTOR
    from overspill.views.resource import DEPLOYMENTS

    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 2)
    r = await make(cluster, FakeMetrics(150))
    first = await tick(r, spec())
    await until(lambda: mirror_seen(r, "mirror") == 7)
    edit = {"spec": {"template": {"spec": {"hostNetwork": True}}}}
    await asyncio.to_thread(cluster.apps.patch_namespaced_deployment, "vllm", "mirror", edit)
    handle = r.targets.get("aws")
    assert handle is not None and handle.view is not None
    mirrors = handle.view.cache(DEPLOYMENTS, MANAGED_SELECTOR)
    await until(lambda: "hostNetwork" in (mirrors.get("mirror", "vllm") or {})["spec"]["template"]["spec"])
    out = await tick(r, spec(), BurstPolicyStatus.model_validate(first.status))
    assert "hostNetwork" not in emulator.objects["apps/v1/deployments", "mirror", "vllm"]["spec"]["template"]["spec"]
    assert writes(emulator)[-1] == "PATCH /apis/apps/v1/namespaces/mirror/deployments/vllm"
    assert ("Normal", "MirrorDriftCorrected") in events(out)


async def test_a_field_added_by_hand_while_the_operator_was_down_is_removed_after_the_restart(
    emulator: Any, cluster: Cluster
) -> None:
    """After a restart what was last written is not known: an added field (hostNetwork) kept every desired field,
    so the live template was taken as the reference and the edit stayed for good."""
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 2)
    first = await tick(await make(cluster, FakeMetrics(150)), spec())
    edit = {"spec": {"template": {"spec": {"hostNetwork": True}}}}
    await asyncio.to_thread(cluster.apps.patch_namespaced_deployment, "vllm", "mirror", edit)
    restarted = await make(cluster, FakeMetrics(150))  # a new process: nothing remembered
    await until(lambda: mirror_seen(restarted, "mirror") == 7)
    out = await tick(restarted, spec(), BurstPolicyStatus.model_validate(first.status))
    assert "hostNetwork" not in emulator.objects["apps/v1/deployments", "mirror", "vllm"]["spec"]["template"]["spec"]
    assert ("Normal", "MirrorDriftCorrected") in events(out)
    again = await tick(restarted, spec(), BurstPolicyStatus.model_validate(out.status))
    assert ("Normal", "MirrorDriftCorrected") not in events(again)  # corrected once, not every poll


async def _hand_edit(
    r: Reconciler, cluster: Cluster, edit: dict[str, Any], seen: Callable[[dict[str, Any]], bool]
) -> None:
    """Someone else writes the mirror; the test waits until the operator's view holds the edit."""
    from overspill.views import MANAGED_SELECTOR
    from overspill.views.resource import DEPLOYMENTS

    await asyncio.to_thread(cluster.apps.patch_namespaced_deployment, "vllm", "mirror", edit)
    handle = r.targets.get("aws")
    assert handle is not None and handle.view is not None
    mirrors = handle.view.cache(DEPLOYMENTS, MANAGED_SELECTOR)
    await until(lambda: seen(mirrors.get("mirror", "vllm") or {}))


def mirror_patches(emulator: Any) -> int:
    """Writes of the mirror's template (not server-side dry runs)."""
    path = "/apis/apps/v1/namespaces/mirror/deployments/vllm"
    return sum(1 for r in emulator if r.method.value == "PATCH" and r.url.path == path and "dryRun" not in str(r.url))


async def test_a_controller_fighting_the_mirror_template_is_backed_off_and_named(
    emulator: Any, cluster: Cluster
) -> None:
    """A mutating policy engine rewrites the mirror's template after every correction: a rollout every poll
    before; now corrections back off exponentially, with a Warning Event and a condition naming the fight."""
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 2)
    r = await make(cluster, FakeMetrics(150))
    out = await tick(r, spec())
    await until(lambda: mirror_seen(r, "mirror") == 7)
    fought: list[Outcome] = []
    corrections = 0
    for i in range(8):
        edit = {"spec": {"template": {"metadata": {"annotations": {"engine/mutated": str(i)}}}}}
        await _hand_edit(
            r,
            cluster,
            edit,
            lambda o, i=i: (o["spec"]["template"]["metadata"].get("annotations") or {}).get("engine/mutated") == str(i),
        )
        before = mirror_patches(emulator)  # the edit itself is a PATCH too
        out = await tick(r, spec(), BurstPolicyStatus.model_validate(out.status))
        corrections += mirror_patches(emulator) - before
        fought.append(out)
    assert 2 <= corrections <= 5  # 8 before: one rollout per poll
    assert any(("Warning", "MirrorDriftFight") in events(o) for o in fought)
    status, reason = kinds(fought[-1])["MirrorsUpToDate"]
    assert (status, reason) == ("False", "MirrorDriftFight")


async def test_a_paused_mirror_is_drift_corrected(emulator: Any, cluster: Cluster) -> None:
    """`spec.paused` is outside the pod template: a paused mirror never rolled out a template update."""
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 2)
    r = await make(cluster, FakeMetrics(150))
    first = await tick(r, spec())
    await until(lambda: mirror_seen(r, "mirror") == 7)
    await _hand_edit(r, cluster, {"spec": {"paused": True}}, lambda o: bool(o["spec"].get("paused")))
    out = await tick(r, spec(), BurstPolicyStatus.model_validate(first.status))
    assert not emulator.objects["apps/v1/deployments", "mirror", "vllm"]["spec"].get("paused")
    assert ("Normal", "MirrorDriftCorrected") in events(out)


async def test_a_mirror_strategy_edited_by_hand_is_drift_corrected(emulator: Any, cluster: Cluster) -> None:
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 2)
    r = await make(cluster, FakeMetrics(150))
    first = await tick(r, spec())
    await until(lambda: mirror_seen(r, "mirror") == 7)
    edit = {"spec": {"strategy": {"type": "Recreate", "rollingUpdate": None}}}
    await _hand_edit(r, cluster, edit, lambda o: (o["spec"].get("strategy") or {}).get("type") == "Recreate")
    out = await tick(r, spec(), BurstPolicyStatus.model_validate(first.status))
    assert emulator.objects["apps/v1/deployments", "mirror", "vllm"]["spec"]["strategy"]["type"] == "RollingUpdate"
    assert ("Normal", "MirrorDriftCorrected") in events(out)


async def test_a_mirror_whose_annotations_were_all_removed_is_still_updated(emulator: Any, cluster: Cluster) -> None:
    """The template update was a JSON Patch `add` under /metadata/annotations/..., which fails without the map."""
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 8)
    bare = deployment("vllm", "mirror", 2, labels=MANAGED)
    bare["metadata"].pop("annotations", None)
    emulator.objects["apps/v1/deployments", "mirror", "vllm"] = bare
    r = await make(cluster, FakeMetrics(150))
    await until(lambda: mirror_seen(r, "mirror") == 2)
    await tick(r, spec())
    after = emulator.objects["apps/v1/deployments", "mirror", "vllm"]
    assert "overspill.dev/template-hash" in (after["metadata"].get("annotations") or {})


async def test_a_busy_runner_mirror_waits_for_its_template_update(emulator: Any, cluster: Cluster) -> None:
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 8)
    old = deployment("vllm", "mirror", 2, labels=MANAGED)
    old["metadata"]["annotations"] = {"overspill.dev/template-hash": "from-an-older-template"}
    emulator.objects["apps/v1/deployments", "mirror", "vllm"] = old
    emulator.objects["v1/pods", "mirror", "m-1"] = pod("m-1", "mirror", labels=MANAGED, annotations={"b": "true"})
    emulator.objects["v1/pods", "mirror", "m-2"] = pod("m-2", "mirror", labels=MANAGED)
    s = spec(**CI, busy={"podAnnotation": "b"}, metric={"prometheus": {"query": "q"}, "targetPerReplica": 1})
    out = await tick(await make(cluster, FakeMetrics(10)), s)
    after = emulator.objects["apps/v1/deployments", "mirror", "vllm"]
    assert after["metadata"]["annotations"]["overspill.dev/template-hash"] == "from-an-older-template"
    assert kinds(out)["MirrorsUpToDate"] == ("False", "TemplateUpdatePending")


# ---- 4. tenancy --------------------------------------------------------------------------------------------------


async def test_a_namespace_the_target_does_not_allow_gets_nothing(emulator: Any, cluster: Cluster) -> None:
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 8)
    s = spec(targets=[{"name": "aws", "overrides": {"namespace": "kube-system"}}])
    out = await tick(await make(cluster, FakeMetrics(150)), s)
    assert not present(emulator, "kube-system")
    assert not [w for w in writes(emulator) if "kube-system" in w]
    assert kinds(out)["PlacementAllowed"] == ("False", "NamespaceNotAllowed")
    assert ("Warning", "NamespaceNotAllowed") in events(out)


async def test_without_allowed_target_namespaces_only_the_policys_own_name(emulator: Any, cluster: Cluster) -> None:
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 8)
    registry = TargetRegistry()
    registry.upsert("aws", parse_target_spec({"kubeconfigSecretRef": {"name": "s", "namespace": "ops"}}))
    registry.set_health("aws", cluster=cluster, healthy=True, message="ok")
    registry.set_view("aws", await synced_view("aws", cluster))
    r = await make(cluster, FakeMetrics(150), registry=registry)
    out = await tick(r, spec())  # overrides.namespace: mirror
    assert not present(emulator, "mirror")
    assert kinds(out)["PlacementAllowed"][0] == "False"


@pytest.mark.parametrize(("into", "allowed"), [("other-burst", False), ("other", False), ("ml-burst", True)])
async def test_a_per_tenant_pattern_keeps_a_policy_out_of_another_tenants_namespace(
    emulator: Any, cluster: Cluster, into: str, allowed: bool
) -> None:
    """One BurstTarget for every tenant: the policy in `ml` names tenant `other`'s burst namespace."""
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 8)
    target = {"allowedTargetNamespaces": ["{namespace}-burst"]}
    s = spec(targets=[{"name": "aws", "overrides": {"namespace": into}}])
    out = await tick(await make(cluster, FakeMetrics(150), target=target), s)
    assert present(emulator, into) is allowed
    assert kinds(out)["PlacementAllowed"][0] == ("True" if allowed else "False")
    if not allowed:
        assert not [w for w in writes(emulator) if f"/{into}/" in w or w.endswith(f"/{into}")]


async def test_no_copy_is_written_into_a_namespace_the_target_just_refused(emulator: Any, cluster: Cluster) -> None:
    """The mirror was placed in mirror2 while it was allowed; the administrator then narrowed the target to
    `mirror`. The mirror there drains, and nothing of the policy's is written into mirror2 any more."""
    workload_reading_a_config_map(emulator)
    emulator.objects["apps/v1/deployments", "mirror2", "vllm"] = deployment("vllm", "mirror2", 3, labels=MANAGED)
    s = spec(targets=[{"name": "aws", "overrides": {"namespace": "mirror2"}}])
    r = await make(cluster, FakeMetrics(150), target={"allowedTargetNamespaces": ["mirror"]})
    await until(lambda: mirror_seen(r, "mirror2") == 3)
    out = await tick(r, s)
    assert kinds(out)["PlacementAllowed"][0] == "False"
    into = [w for w in writes(emulator) if "/namespaces/mirror2/" in w and "/deployments/" not in w]
    assert into == []


# ---- 6. drift ----------------------------------------------------------------------------------------------------

# ---- 7. another autoscaler ---------------------------------------------------------------------------------------


async def test_an_hpa_on_the_workload_refuses_the_policy(emulator: Any, cluster: Cluster) -> None:
    emulator.resources["autoscaling/v2/horizontalpodautoscalers"] = {
        "kind": "HorizontalPodAutoscaler",
        "namespaced": True,
        "verbs": ["get", "list", "watch"],
    }
    emulator.objects["autoscaling/v2/horizontalpodautoscalers", "ml", "vllm"] = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "vllm", "namespace": "ml"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "vllm"}},
    }
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 2)
    out = await tick(await make(cluster, FakeMetrics(150)), spec())
    assert writes(emulator) == []
    ready = next(c for c in out.status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "Conflict" and "HorizontalPodAutoscaler vllm" in ready["message"]


async def test_a_drift_fight_is_not_forgotten_when_the_operator_restarts(emulator: Any, cluster: Cluster) -> None:
    """The backoff was in memory: a restarted operator corrected the next drift at once and started the backoff
    again from one poll, so a fighting controller got a rollout every few polls across restarts. It is kept on the
    mirror (annotation overspill.dev/drift-backoff) now."""
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 2)
    r = await make(cluster, FakeMetrics(150))
    out = await tick(r, spec())
    await until(lambda: mirror_seen(r, "mirror") == 7)

    async def strike(operator: Reconciler, i: int) -> int:
        edit = {"spec": {"template": {"metadata": {"annotations": {"engine/mutated": str(i)}}}}}
        mutated = lambda o: (o["spec"]["template"]["metadata"].get("annotations") or {}).get("engine/mutated")  # noqa: E731
        await _hand_edit(operator, cluster, edit, lambda o: mutated(o) == str(i))
        before = mirror_patches(emulator)
        nonlocal out
        out = await tick(operator, spec(), BurstPolicyStatus.model_validate(out.status))
        return mirror_patches(emulator) - before

    for i in range(3):  # corrected, corrected (a fight: the next waits 2 polls), then held
        await strike(r, i)
    kept = emulator.objects["apps/v1/deployments", "mirror", "vllm"]["metadata"]["annotations"]
    # when the last correction was made (without the annotation: no later than the old operator's clock now)
    last = json.loads(kept.get("overspill.dev/drift-backoff") or "{}").get("last", r.clock.now)  # type: ignore[attr-defined]
    restarted = await make(cluster, FakeMetrics(150))
    restarted.clock = lambda: last + 1.0  # restarted at once, well within the backoff of the last correction
    await until(lambda: mirror_seen(restarted, "mirror") == 7)
    assert await strike(restarted, 3) == 0, "the restarted operator forgot the fight and corrected at once"
    assert kinds(out)["MirrorsUpToDate"] == ("False", "MirrorDriftFight")
