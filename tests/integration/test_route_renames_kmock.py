"""Review breaks of issue 9, traffic during changes: a backendRef the policy wrote is recognised by the record on
the route (not only by the current spec's naming rule), so a rename, a removed route reference or a deleted
workload drains it to 0 before the replicas behind it go; and those replicas go only once the weight has been 0
for spec.traffic.drainSeconds, measured on the route's record (a restarted operator keeps counting)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import kopf
import pytest

from overspill import handlers, runtime
from overspill.adapters.kube import Cluster
from overspill.api.policy import BurstPolicyStatus
from overspill.reconcile import Outcome, Reconciler
from tests.integration.conftest import FakeMetrics
from tests.integration.test_reconcile_kmock import REF
from tests.integration.test_reconcile_serving_kmock import (  # noqa: F401 - fixtures
    ROUTE,
    _close_views,
    bursting,
    exported,
    mirror_replicas,
    raw_spec,
    reconciler,
    route,
    spec,
    world,
)

pytestmark = pytest.mark.integration
TRAFFIC = {"serviceRef": {"name": "vllm"}, "httpRouteRef": {"name": "vllm"}, "drainSeconds": 0}


@pytest.fixture
def lab(world: Any) -> Any:  # noqa: F811 - the emulator with the serving resources of test_reconcile_serving_kmock
    return world


def runtime_of(r: Reconciler, cluster: Cluster) -> runtime.Runtime:
    """What the deletion handler finds in kopf's memo: the reconciler and its views."""
    return runtime.Runtime(
        primary=cluster,
        primary_view=r.primary_view,
        targets=r.targets,
        reconciler=r,
        triggers=None,  # type: ignore[arg-type]
    )


class Time:
    """The reconciler's clock, moved by the test only (from where the one it replaces was)."""

    def __init__(self, r: Reconciler) -> None:
        self.now = self.start = float(r.clock()) + 10

    def __call__(self) -> float:
        return self.now


async def poll(r: Reconciler, s: Any, prev: Outcome | None = None) -> Outcome:
    status = BurstPolicyStatus.model_validate(prev.status) if prev is not None else BurstPolicyStatus()
    return await asyncio.to_thread(r.reconcile, REF, s, status, 1)


def imports(lab: Any) -> dict[str, int]:
    return {
        r["name"]: r["weight"]
        for rule in lab.objects[ROUTE]["spec"]["rules"]
        for r in rule["backendRefs"]
        if r.get("kind") == "ServiceImport"
    }


async def bursting_with_weight(lab: Any, cluster: Cluster, **traffic: Any) -> tuple[Reconciler, FakeMetrics, Outcome]:
    """A burst serving 7 in aws, its route written by Overspill (weight 7 to vllm-burst-aws)."""
    bursting(lab, {"mirror": 7})
    lab.objects[ROUTE] = route()
    exported(lab, "mirror", "vllm-burst-aws")
    metrics = FakeMetrics(150)
    r = await reconciler(cluster, metrics)
    out = await poll(r, spec(propagation={"secrets": True}, traffic={**TRAFFIC, **traffic}))
    assert imports(lab) == {"vllm-burst-aws": 7} and mirror_replicas(lab, "mirror") == 7
    metrics.queue = 20  # the queue falls: the secondary is no longer wanted
    return r, metrics, out


@pytest.mark.parametrize(
    "changed",
    [
        {"traffic": {**TRAFFIC, "exportName": "llm"}},
        {"traffic": {**TRAFFIC, "importGroup": "net.gke.io"}},
        {"traffic": {"serviceRef": {"name": "vllm"}, "drainSeconds": 0}},  # httpRouteRef removed
        {},  # all of spec.traffic removed
    ],
    ids=["exportName", "importGroup", "httpRouteRef-removed", "traffic-removed"],
)
async def test_a_change_during_a_burst_drains_the_old_backend_before_its_replicas_go(
    lab: Any, cluster: Cluster, changed: dict[str, Any]
) -> None:
    """Review break: the old backendRef was no longer recognised as the policy's (or the route no longer named),
    so it kept weight 7 while the replicas behind it were removed."""
    r, _, out = await bursting_with_weight(lab, cluster)
    s = spec(propagation={"secrets": True}, **changed)
    out = await poll(r, s, out)
    assert imports(lab).get("vllm-burst-aws") == 0  # no request goes there any more ...
    assert mirror_replicas(lab, "mirror") == 7  # ... while its replicas still run
    for _ in range(3):
        out = await poll(r, s, out)
        await asyncio.sleep(0.3)  # the watch sees the change before the next poll
    assert not mirror_replicas(lab, "mirror")
    assert "vllm-burst-aws" not in imports(lab)  # and the backendRef left the route with them
    annotations = lab.objects[ROUTE]["metadata"].get("annotations") or {}
    assert "overspill.dev/backends.uid-1" not in annotations  # nothing of the policy's left to remember
    assert out.status["routes"] == ([] if "httpRouteRef" not in (changed.get("traffic") or {}) else ["vllm"])


async def test_a_deleted_workload_drains_the_route_before_its_secondary_replicas(lab: Any, cluster: Cluster) -> None:
    """Review break: with the primary workload gone, its secondaries were released without the route step: the
    backendRef kept weight 7 while the mirror was removed."""
    _, metrics, out = await bursting_with_weight(lab, cluster)
    lab.objects["apps/v1/deployments", "ml", "vllm"].delete()
    r = await reconciler(cluster, metrics)  # views listed afresh: the workload is gone
    s = spec(propagation={"secrets": True}, traffic=TRAFFIC)
    out = await poll(r, s, out)
    assert cond_reason(out) == "WorkloadMissing"
    assert imports(lab) == {"vllm-burst-aws": 0}
    assert mirror_replicas(lab, "mirror") == 7
    for _ in range(3):
        out = await poll(r, s, out)
        await asyncio.sleep(0.3)
    assert not mirror_replicas(lab, "mirror")
    assert imports(lab) == {}


def cond_reason(out: Outcome) -> str:
    return str(next(c for c in out.status["conditions"] if c["type"] == "Ready")["reason"])


async def test_replicas_go_only_after_the_weight_was_0_for_the_drain_time_even_across_a_restart(
    lab: Any, cluster: Cluster
) -> None:
    """Review break: a secondary shrank at the next tick after its weight went to 0 (ticks can follow within a
    second): a gateway still programming the route sent requests to removed pods. Now the replicas wait until the
    weight has been 0 for drainSeconds (30 by default), counted from the time recorded on the route."""
    r, metrics, out = await bursting_with_weight(lab, cluster, drainSeconds=30)
    clock = Time(r)
    r.clock = clock
    s = spec(propagation={"secrets": True}, traffic={**TRAFFIC, "drainSeconds": 30})
    out = await poll(r, s, out)
    assert imports(lab) == {"vllm-burst-aws": 0} and mirror_replicas(lab, "mirror") == 7
    for seconds in (1, 10, 29):  # ticks close together, and one just short of the drain time
        clock.now = clock.start + seconds
        out = await poll(r, s, out)
        assert mirror_replicas(lab, "mirror") == 7, seconds
    restarted = await reconciler(cluster, metrics)  # a new operator process: nothing in memory
    restarted.clock = clock
    out = await poll(restarted, s, out)
    assert mirror_replicas(lab, "mirror") == 7
    clock.now = clock.start + 30
    for _ in range(2):
        out = await poll(restarted, s, out)
        await asyncio.sleep(0.3)
    assert not mirror_replicas(lab, "mirror")
    assert imports(lab) == {}


async def test_deletion_waits_the_drain_time_before_removing_what_serves(
    lab: Any, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleting the policy: the backendRef goes to 0, and the mirror and the backendRef go only once it has been 0
    for drainSeconds (the finalizer retries after the time left)."""
    monkeypatch.setattr(kopf, "warn", lambda _body, *, reason, message: None)
    traffic = {**TRAFFIC, "drainSeconds": 30}
    r, _, _ = await bursting_with_weight(lab, cluster, drainSeconds=30)
    clock = Time(r)
    r.clock = clock
    rtm = runtime_of(r, cluster)
    raw = raw_spec(propagation={"secrets": True}, traffic=traffic)
    body = kopf.Body({"metadata": {"name": "vllm", "namespace": "ml", "uid": "uid-1"}, "spec": raw})

    async def delete() -> None:
        await handlers.burstpolicy_delete(
            namespace="ml", name="vllm", uid="uid-1", body=body, retry=0, memo={"runtime": rtm}
        )

    with pytest.raises(kopf.TemporaryError, match="traffic drains first") as first:
        await delete()
    assert first.value.delay == 30
    assert imports(lab) == {"vllm-burst-aws": 0} and mirror_replicas(lab, "mirror") == 7
    clock.now += 20
    with pytest.raises(kopf.TemporaryError, match="traffic drains first") as second:
        await delete()
    assert second.value.delay == 10 and mirror_replicas(lab, "mirror") == 7
    clock.now += 10
    with contextlib.suppress(kopf.TemporaryError):
        await delete()
    assert imports(lab) == {} and not mirror_replicas(lab, "mirror")


async def test_a_route_the_status_remembers_is_drained_on_deletion(
    lab: Any, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpRouteRef removed, then the policy deleted before a poll drained the old route: status.routes names it,
    and the deletion drains it first."""
    monkeypatch.setattr(kopf, "warn", lambda _body, *, reason, message: None)
    r, _, out = await bursting_with_weight(lab, cluster)
    assert out.status["routes"] == ["vllm"]
    rtm = runtime_of(r, cluster)
    raw = raw_spec(propagation={"secrets": True}, traffic={"serviceRef": {"name": "vllm"}})
    body = kopf.Body(
        {"metadata": {"name": "vllm", "namespace": "ml", "uid": "uid-1"}, "spec": raw, "status": out.status}
    )
    with pytest.raises(kopf.TemporaryError, match="traffic drains first"):
        await handlers.burstpolicy_delete(
            namespace="ml", name="vllm", uid="uid-1", body=body, retry=0, memo={"runtime": rtm}
        )
    assert imports(lab) == {"vllm-burst-aws": 0} and mirror_replicas(lab, "mirror") == 7
