"""Two operator processes (two reconcilers, each with its own registry, ledger and views) racing for one capped
target on one API server: the cap holds across them through the shared reservations, and nobody flaps.

The shared object is tests/cap_store.py's in-memory compare-and-swap (kmock does not check resourceVersions); the
Lease behind it in the operator is exercised against a real API server by tests/e2e/test_shared_cap.py."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import pytest

from overspill.adapters.kube import Cluster
from overspill.api import parse_target_spec
from overspill.api.policy import BurstPolicyStatus
from overspill.reconcile import PolicyRef
from overspill.reservations import CapStore
from overspill.targets import TargetRegistry
from tests.cap_store import FakeCapStore
from tests.integration.conftest import FakeMetrics, deployment
from tests.integration.safety_setup import MANAGED, make, replicas, tick
from tests.integration.test_reconcile_kmock import _close_views, spec, synced_view

pytestmark = pytest.mark.integration
__all__ = ["_close_views"]  # the fixture that closes views after each test

TARGET = {"kubeconfigSecretRef": {"name": "s", "namespace": "ops"}, "maxReplicas": 10}


class RacingRegistry(TargetRegistry):
    """Every policy, in every process, reads the target's room before any of them acts."""

    def __init__(self, store: CapStore | None, barrier: threading.Barrier, holder: str) -> None:
        super().__init__(store, holder=holder)
        self.barrier = barrier

    def room_for(self, *args: Any, **kwargs: Any) -> int | None:
        room = super().room_for(*args, **kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):
            self.barrier.wait()
        return room


async def registry(cluster: Cluster, store: CapStore | None, barrier: threading.Barrier, name: str) -> TargetRegistry:
    reg = RacingRegistry(store, barrier, name)
    allowed = {"allowedTargetNamespaces": ["m-a", "m-b"]}
    reg.upsert("aws", parse_target_spec({**TARGET, **allowed}))
    reg.set_health("aws", cluster=cluster, healthy=True, message="ok")
    reg.set_view("aws", await synced_view(f"aws-{name}", cluster))  # each process watches the target itself
    return reg


async def test_two_operators_racing_for_a_capped_target_never_exceed_it(emulator: Any, cluster: Cluster) -> None:
    """Both want 7 on a target capped at 10, in two processes, and both read its room before either acts: before
    the reservations were shared, each process's ledger gave 7 (14 of 10)."""
    store = FakeCapStore()
    barrier = threading.Barrier(2, timeout=5)
    refs = [PolicyRef("a", "a", "uid-a"), PolicyRef("b", "b", "uid-b")]
    for ref in refs:
        emulator.objects["apps/v1/deployments", ref.namespace, "vllm"] = deployment("vllm", ref.namespace, 8)
    ops = [
        await make(cluster, FakeMetrics(150), registry=await registry(cluster, store, barrier, ref.uid)) for ref in refs
    ]
    specs = {ref.uid: spec(targets=[{"name": "aws", "overrides": {"namespace": f"m-{ref.namespace}"}}]) for ref in refs}
    prev = {ref.uid: BurstPolicyStatus() for ref in refs}
    history = []
    for _ in range(5):
        outs = await asyncio.gather(
            *(tick(op, specs[ref.uid], prev[ref.uid], ref) for op, ref in zip(ops, refs, strict=True))
        )
        for ref, out in zip(refs, outs, strict=True):
            prev[ref.uid] = BurstPolicyStatus.model_validate(out.status)
        placed = tuple(replicas(emulator, f"m-{ref.namespace}") or 0 for ref in refs)
        assert sum(placed) <= 10, placed
        history.append(tuple(sorted(placed)))
        await asyncio.sleep(0.3)  # each process's view sees what the other wrote
    assert history[-1] == history[-2] == history[-3] == (3, 7)  # settled, no 7 <-> 3 flapping
    writes = store.writes
    for _ in range(2):  # steady state: nothing changes, nothing is written to the shared reservations
        await asyncio.gather(*(tick(op, specs[ref.uid], prev[ref.uid], ref) for op, ref in zip(ops, refs, strict=True)))
    assert store.writes == writes


async def test_unknown_shared_reservations_stop_growth_and_shrink_nothing(emulator: Any, cluster: Cluster) -> None:
    store = FakeCapStore()
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 8)
    reg = TargetRegistry(store, holder="op")
    reg.upsert("aws", parse_target_spec({**TARGET, "allowedTargetNamespaces": ["mirror"]}))
    reg.set_health("aws", cluster=cluster, healthy=True, message="ok")
    reg.set_view("aws", await synced_view("aws", cluster))
    metrics = FakeMetrics(100)  # 10 replicas: the primary's 8 and 2 on the target
    r = await make(cluster, metrics, registry=reg)
    await tick(r, spec())
    assert replicas(emulator, "mirror") == 2
    store.broken = "HTTP 403 Forbidden"  # the shared reservations cannot be read or written
    metrics.queue = 150
    await asyncio.sleep(0.3)
    out = await tick(r, spec())
    assert replicas(emulator, "mirror") == 2  # no growth while the shared usage is unknown, and no shrink
    assert emulator.objects["apps/v1/deployments", "ml", "vllm"]["spec"]["replicas"] == 8
    cond = next(c for c in out.status["conditions"] if c["type"] == "TargetsAvailable")
    assert cond["status"] == "False" and "shared reservations" in cond["message"] and "403" in cond["message"]
    store.broken = None
    out = await tick(r, spec())
    assert replicas(emulator, "mirror") == 7, out.decision


@pytest.mark.parametrize(("placed_by", "held"), [("aws", True), ("other", False)])
async def test_a_lost_cap_lease_holds_growth_until_the_mirrors_are_counted(
    emulator: Any, cluster: Cluster, placed_by: str, held: bool
) -> None:
    """rev10c: a cap Lease gone (deleted by hand, or garbage-collected with its BurstTarget re-applied) while a
    mirror placed through the target runs: its reservations in flight were lost, so nobody grows there for the
    lease (the condition says why) and nothing shrinks. A mirror that another BurstTarget of the same cluster
    placed says nothing about this target's Lease: a new capped target grows at once."""
    store = FakeCapStore()
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 8)
    running = deployment("vllm", "other", 2, labels={**MANAGED, "overspill.dev/policy-uid": "uid-other"})
    running["metadata"]["annotations"] = {"overspill.dev/target": placed_by}
    emulator.objects["apps/v1/deployments", "other", "vllm"] = running
    reg = TargetRegistry(store, holder="op")
    reg.upsert("aws", parse_target_spec({**TARGET, "allowedTargetNamespaces": ["mirror"]}))
    reg.set_health("aws", cluster=cluster, healthy=True, message="ok")
    reg.set_view("aws", await synced_view("aws", cluster))
    r = await make(cluster, FakeMetrics(150), registry=reg)  # 15 wanted: the primary's 8, 7 beyond it
    out = await tick(r, spec())
    assert replicas(emulator, "mirror") == (None if held else 7), out.decision
    assert emulator.objects["apps/v1/deployments", "other", "vllm"]["spec"]["replicas"] == 2
    cond = next(c for c in out.status["conditions"] if c["type"] == "TargetsAvailable")
    assert ("were lost" in cond["message"]) is held, cond
