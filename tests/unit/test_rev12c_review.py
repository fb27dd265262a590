"""Adversarial review of issue 12's change 9c90bbb (status writer, lock-free hot paths, custom kinds from a watch).
Each test states the promise it tries to break."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client import ApiException

from overspill import handlers, workloadkinds
from overspill.adapters.kube import ScalePaths
from overspill.reconcile import Outcome
from overspill.statuswriter import StatusWriter
from overspill.targets import TargetRegistry
from overspill.triggers import Triggers
from overspill.views.cache import WatchCache
from overspill.views.resource import DEPLOYMENTS

# ---- lock-free reads of a watch cache ---------------------------------------------------------------------------


def _deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "ml", "resourceVersion": "1"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": name}}},
    }


class _Page:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.data = json.dumps({"metadata": {"resourceVersion": "7"}, "items": items}).encode()

    def read(self) -> bytes:
        return self.data


def test_a_relist_never_shows_a_present_workload_as_missing_to_a_lock_free_get(monkeypatch: pytest.MonkeyPatch) -> None:
    """Promise: a lock-free read never sees a torn store. A relist (after a 410, or a 403/404 blip) clears the
    store and refills it under the lock; WatchCache.get no longer takes that lock, so a tick reading in between finds
    a Deployment that exists as None: 'not found' (missing=True), and _workload_missing drains and removes every
    replica the policy runs in secondary clusters in the middle of a burst. A tick asking while the relist is under
    way must see the object (the old store, or the new one), never nothing."""
    cache = WatchCache(None, DEPLOYMENTS, cluster="primary")  # type: ignore[arg-type]  # no server: _get is faked
    items = [_deployment("other"), _deployment("vllm")]
    monkeypatch.setattr(cache, "_get", lambda params, read_timeout: _Page(items))
    cache._list()  # in sync: both are in the store
    assert cache.get("ml", "vllm") is not None

    seen: list[object] = []
    asked = threading.Event()
    index = cache._index

    def index_then_read(key: tuple[str, str], obj: dict[str, Any], add: bool) -> None:
        index(key, obj, add)
        if add and not asked.is_set():  # the relist has put back "other", not yet "vllm": a tick asks now
            asked.set()
            reader = threading.Thread(target=lambda: seen.append(cache.get("ml", "vllm") or "missing"), daemon=True)
            reader.start()
            reader.join(0.5)  # a reader that waits for the lock finishes after the relist: it sees the object

    monkeypatch.setattr(cache, "_index", index_then_read)
    cache._list()  # the relist
    for _ in range(50):
        if seen:
            break
        threading.Event().wait(0.1)
    assert asked.is_set()
    assert seen and seen[0] != "missing", "a tick read the Deployment as missing while the cache relisted"


# ---- the status writer ------------------------------------------------------------------------------------------


class _Stopped:
    def __init__(self) -> None:
        self.flag = False

    def __bool__(self) -> bool:
        return self.flag

    async def wait(self, seconds: float | None = None) -> None:
        await asyncio.sleep(seconds or 0)


class _PolicyServer:
    """The BurstPolicy objects of an API server: status PATCHes land by name, as the API server applies them. A
    patch that names another uid than the object's (metadata.uid is immutable) is refused, as the API server does."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.landed: list[tuple[str, dict[str, Any]]] = []  # (uid of the object written, status written)

    def patch_namespaced_custom_object_status(
        self, group: str, version: str, namespace: str, plural: str, name: str, body: dict[str, Any], **_: Any
    ) -> None:
        obj = self.objects.get(name)
        if obj is None:
            raise ApiException(status=404, reason="Not Found")
        uid = (body.get("metadata") or {}).get("uid")
        if uid is not None and uid != obj["uid"]:
            raise ApiException(status=422, reason="Unprocessable Entity")  # field is immutable
        obj["status"] = {**obj["status"], **(body.get("status") or {})}
        self.landed.append((obj["uid"], dict(body.get("status") or {})))

    patch_cluster_custom_object_status = None


class _ByUid:
    """Each policy's decision, by uid."""

    def __init__(self, decisions: dict[str, int]) -> None:
        self.decisions = decisions
        self.calls: list[str] = []

    def reconcile(self, ref: Any, spec: Any, prev: Any, generation: Any) -> Outcome:
        self.calls.append(ref.uid)
        return Outcome(None, {"desiredReplicas": self.decisions[ref.uid]}, [])


def _runtime(server: _PolicyServer, reconciler: Any, writer: StatusWriter) -> Any:
    return SimpleNamespace(
        reconciler=reconciler,
        targets=TargetRegistry(),
        triggers=Triggers(),
        primary_view=SimpleNamespace(wait_ready=lambda timeout: True, ready=True),
        status_writer=writer,
        primary=SimpleNamespace(custom=server),
    )


def _loop(rtm: Any, uid: str, status: dict[str, Any], stopped: _Stopped) -> asyncio.Task[Any]:
    body = {
        "metadata": {"generation": 1, "uid": uid},
        "spec": {
            "workloadRef": {"name": "vllm"},
            "metric": {"prometheus": {"query": "q"}, "targetPerReplica": 10},
            "maxReplicas": 20,
            "behavior": {"pollIntervalSeconds": 1},
        },
        "status": status,
    }
    loop_fn: Any = handlers.burstpolicy_loop
    return asyncio.create_task(
        loop_fn(
            namespace="ml",
            name="p",
            uid=uid,
            body=body,
            stopped=stopped,
            memo={"runtime": rtm},
            logger=logging.getLogger("t"),
            policies_by_workload={},
        )
    )


async def _until(check: Any, seconds: float = 5.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if check():
            return True
        await asyncio.sleep(0.05)
    return bool(check())


async def _end(task: asyncio.Task[Any], stopped: _Stopped) -> None:
    stopped.flag = True
    done, _ = await asyncio.wait({task}, timeout=5)
    if not done:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _busy_writers(writer: StatusWriter) -> threading.Event:
    """Every status worker held by another policy's slow write (a busy API server at 1,000 policies)."""
    release = threading.Event()
    writer.slot("other", {})

    def slow(status: dict[str, Any]) -> None:
        release.wait(20)

    writer.submit("other", slow, {"desiredReplicas": 1}, 0.0, "first")
    return release


async def test_a_deleted_policys_status_never_lands_on_the_policy_re_created_with_its_name() -> None:
    """Promise: nothing of a deleted policy is written. Its status handed over but still waiting for a worker is
    written by name after the loop ended; when the policy is deleted and re-created (kubectl delete + apply, a GitOps
    replace) meanwhile, the old policy's decision lands on the new object (a different uid)."""
    server = _PolicyServer()
    server.objects["p"] = {"uid": "old", "status": {}}
    writer = StatusWriter(workers=1)
    decide = _ByUid({"old": 7, "new": 2})
    rtm = _runtime(server, decide, writer)
    release = _busy_writers(writer)
    try:
        old_stopped = _Stopped()
        old = _loop(rtm, "old", {}, old_stopped)
        assert await _until(lambda: "old" in writer._pending), "the old policy handed over no status"
        await _end(old, old_stopped)  # deleted: Kopf stops its daemon
        server.objects["p"] = {"uid": "new", "status": {}}  # re-created with the same name
        new_stopped = _Stopped()
        new = _loop(rtm, "new", {}, new_stopped)
        await _until(lambda: "new" in writer._pending)
        release.set()
        await asyncio.wait_for(writer.drain(), 5)
        await _end(new, new_stopped)
    finally:
        release.set()
        await writer.close()
    on_new = [status for uid, status in server.landed if uid == "new"]
    assert {"desiredReplicas": 7} not in on_new, f"the deleted policy's status landed on the new one: {on_new}"


async def test_a_daemon_restarted_while_its_status_waits_leaves_the_newest_decision_on_the_object() -> None:
    """Promise: statuses of one policy land in order, newest last. Kopf stops and respawns a policy's daemon (the
    operator paused by peering and resumed, the shard label edited back): forget() drops the slot while a status is
    still waiting, the new loop starts from the object's status (the waiting one not on it yet), decides the same
    as that status and hands nothing; the old waiting status lands afterwards and stays: the object says 7 replicas
    are wanted while the policy's every tick since decided 2."""
    server = _PolicyServer()
    server.objects["p"] = {"uid": "u", "status": {"desiredReplicas": 2}}
    writer = StatusWriter(workers=1)
    decisions = {"u": 7}
    decide = _ByUid(decisions)
    rtm = _runtime(server, decide, writer)
    release = _busy_writers(writer)
    try:
        first_stopped = _Stopped()
        first = _loop(rtm, "u", {"desiredReplicas": 2}, first_stopped)
        assert await _until(lambda: "u" in writer._pending), "the policy handed over no status"
        await _end(first, first_stopped)  # paused
        decisions["u"] = 2  # the load fell back meanwhile
        again_stopped = _Stopped()
        again = _loop(rtm, "u", dict(server.objects["p"]["status"]), again_stopped)  # resumed: the object as it is
        await asyncio.sleep(1.5)  # it ticks
        release.set()
        await asyncio.wait_for(writer.drain(), 5)
        await asyncio.sleep(2.5)  # two more ticks: a loop that knew would write its decision again
        await asyncio.wait_for(writer.drain(), 5)
        await _end(again, again_stopped)
    finally:
        release.set()
        await writer.close()
    assert server.objects["p"]["status"] == {"desiredReplicas": 2}, (
        f"the object shows an older decision than the policy's latest: {server.objects['p']['status']}; "
        f"writes: {server.landed}"
    )


# ---- custom workload kinds read from a watch ----------------------------------------------------------------------

RUNNERS = ScalePaths("actions.summerwind.dev", "v1alpha1", "runnerdeployments", True, ("spec", "replicas"), ())


class _KindCache:
    """A custom kind's cache in the primary's view."""

    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]], synced: bool = True) -> None:
        self.objects = objects
        self.synced = synced
        self.forbidden = False
        self.absent = False
        self.problem: str | None = None
        self.resource = "runnerdeployments.actions.summerwind.dev"
        self.waits: list[float] = []

    def wait_synced(self, timeout: float) -> bool:
        self.waits.append(timeout)  # a tick thread held this long (not slept here: the test stays fast)
        return self.synced

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((namespace, name))


class _CrdReader:
    """The primary as WorkloadKinds asks it: the CRD's scale paths as the API server holds them now."""

    def __init__(self, paths: ScalePaths | None) -> None:
        self.paths = paths

    def scale_paths(self, api_version: str, kind: str) -> ScalePaths | None:
        return self.paths


def _kinds(crd: _CrdReader, cache: _KindCache, clock: list[float]) -> workloadkinds.WorkloadKinds:
    view = SimpleNamespace(cache=lambda resource, **_: cache)
    return workloadkinds.WorkloadKinds(crd, view, clock=lambda: clock[0])  # type: ignore[arg-type]


def test_a_crd_whose_scale_paths_change_is_read_by_its_new_paths() -> None:
    """Promise: the replicas are exactly what GET /scale would answer. The CRD's paths are read once and kept for
    the life of the operator: after the CRD is upgraded (its scale now at .spec.size; the kind's controller
    upgraded with it), GET /scale answers 3 and the view still reads .spec.replicas, 5, for hours."""
    runners = {("ml", "runners"): {"metadata": {"name": "runners"}, "spec": {"replicas": 5, "size": 3}}}
    crd, cache, clock = _CrdReader(RUNNERS), _KindCache(runners), [0.0]
    kinds = _kinds(crd, cache, clock)
    seen = kinds.read("actions.summerwind.dev/v1alpha1", "RunnerDeployment", "ml", "runners")
    assert seen is not None and seen.replicas == 5
    crd.paths = ScalePaths(
        "actions.summerwind.dev", "v1alpha1", "runnerdeployments", True, ("spec", "size"), ()
    )  # kubectl apply of the new CRD
    clock[0] += 10 * workloadkinds.RETRY_SECONDS
    seen = kinds.read("actions.summerwind.dev/v1alpha1", "RunnerDeployment", "ml", "runners")
    assert seen is None or seen.replicas == 3, f"read {seen.replicas} replicas where GET /scale answers 3"


def test_a_kind_the_operator_may_not_watch_does_not_hold_every_tick_for_the_first_list_wait() -> None:
    """Promise: an RBAC refusal never blocks other policies. A kind whose watch is refused (403) never syncs, so
    every tick of every policy of that kind waits FIRST_LIST_WAIT (10 s) on one of the 32 tick threads before its
    GET of /scale: 32 such policies ticking together hold every thread, and all other policies wait."""
    runners = {("ml", "runners"): {"metadata": {"name": "runners"}, "spec": {"replicas": 5}}}
    cache = _KindCache(runners, synced=False)
    kinds = _kinds(_CrdReader(RUNNERS), cache, [0.0])
    assert kinds.read("actions.summerwind.dev/v1alpha1", "RunnerDeployment", "ml", "runners") is None
    cache.forbidden, cache.problem = True, "cannot watch: HTTP 403 Forbidden"  # its first list was refused
    cache.waits.clear()
    for _ in range(3):  # the next ticks
        assert kinds.read("actions.summerwind.dev/v1alpha1", "RunnerDeployment", "ml", "runners") is None
    assert sum(cache.waits) == 0, f"ticks waited {cache.waits} s for a watch RBAC refuses"


def test_a_value_get_scale_refuses_to_serve_is_not_read_as_zero_or_as_no_selector() -> None:
    """Promise: never scale from a wrong value. GET /scale answers an error (NestedInt64/NestedString: wrong type)
    for a replicas field that is not an integer or a selector field that is not a string (a CRD that preserves
    unknown fields; a labelSelectorPath pointing at a LabelSelector map): the tick used to stop there
    (WorkloadUnavailable, nothing scaled). The view reads replicas 0, and an empty selector that selects no pod."""
    paths = ScalePaths("x.dev", "v1", "pools", True, ("spec", "replicas"), ("spec", "selector"))
    bad_replicas = {"spec": {"replicas": "4", "selector": "app=pool"}}
    bad_selector = {"spec": {"replicas": 4, "selector": {"matchLabels": {"app": "pool"}}}}
    for obj in (bad_replicas, bad_selector):
        kinds = _kinds(_CrdReader(paths), _KindCache({("ml", "pool"): obj}), [0.0])
        try:
            seen = kinds.read("x.dev/v1", "Pool", "ml", "pool")
        except (ValueError, TypeError, LookupError):
            continue  # refused, as the API server refuses it
        assert seen is None, f"{obj['spec']} read as replicas {seen.replicas}, selector {seen.selector!r}"


# ---- the status writer: a deleted policy's loop ------------------------------------------------------------------


async def test_a_policy_whose_status_write_answered_404_does_not_act_again() -> None:
    """Promise: a deleted policy's loop ends. Before, the tick that got 404 for its status returned at once. Now the
    404 reaches the loop through slot.gone, read only after the next tick's reconcile: the deleted policy observes,
    decides and acts (scales its workload, writes its mirrors in secondaries after its finalizer removed them) once
    more before it ends."""
    server = _PolicyServer()  # the policy is gone: its status answers 404
    writer = StatusWriter(workers=2)
    decide = _ByUid({"gone": 7})
    rtm = _runtime(server, decide, writer)
    stopped = _Stopped()
    task = _loop(rtm, "gone", {}, stopped)
    try:
        await _until(task.done, 6.0)
    finally:
        await _end(task, stopped)
        await writer.close()
    assert decide.calls == ["gone"], f"a policy known deleted reconciled {len(decide.calls)} times"


async def test_a_loop_cancelled_while_it_waits_for_the_primary_view_leaves_no_status_slot() -> None:
    """Promise: no memory growth with policy churn. The slot is made before the loop's try/finally: a daemon Kopf
    cancels during its first wait for the primary's view (a policy deleted while the operator starts: Kopf cancels
    it after cancellation_timeout, 10 s, while PRIMARY_SYNC_WAIT is 60 s) never forgets it."""
    server = _PolicyServer()
    writer = StatusWriter(workers=2)
    rtm = _runtime(server, _ByUid({"churn": 1}), writer)
    listing = threading.Event()
    rtm.primary_view = SimpleNamespace(wait_ready=lambda timeout: listing.wait(5), ready=False)
    stopped = _Stopped()
    task = _loop(rtm, "churn", {"desiredReplicas": 1}, stopped)
    await asyncio.sleep(0.3)  # waiting for the primary's first list
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    listing.set()
    await writer.close()
    assert "churn" not in writer._slots, "the status slot of a cancelled loop is kept forever"


async def test_a_paused_operators_waiting_status_never_lands_over_the_active_operators() -> None:
    """Promise: statuses of one policy land in order, newest last. With standby replicas (ClusterKopfPeering), the
    operator that pauses stops its daemons, but the statuses they handed over are still written by its status
    workers. The active operator decided since and wrote; the paused one's older status lands last and stays (the
    active operator's baseline is what it wrote: it never writes again while its decision holds)."""
    server = _PolicyServer()
    server.objects["p"] = {"uid": "u", "status": {"desiredReplicas": 2}}
    paused_writer, active_writer = StatusWriter(workers=1), StatusWriter(workers=2)
    paused_decide, active_decide = _ByUid({"u": 7}), _ByUid({"u": 3})
    paused_rtm = _runtime(server, paused_decide, paused_writer)
    active_rtm = _runtime(server, active_decide, active_writer)
    release = _busy_writers(paused_writer)
    try:
        paused_stopped = _Stopped()
        paused = _loop(paused_rtm, "u", {"desiredReplicas": 2}, paused_stopped)
        assert await _until(lambda: "u" in paused_writer._pending), "the policy handed over no status"
        await _end(paused, paused_stopped)  # a peer with a higher priority appeared: this operator pauses
        active_stopped = _Stopped()
        active = _loop(active_rtm, "u", dict(server.objects["p"]["status"]), active_stopped)
        assert await _until(lambda: ("u", {"desiredReplicas": 3}) in server.landed), "the active operator wrote nothing"
        release.set()
        await asyncio.wait_for(paused_writer.drain(), 5)
        await asyncio.sleep(2.5)  # the active operator ticks twice more
        await _end(active, active_stopped)
    finally:
        release.set()
        await paused_writer.close()
        await active_writer.close()
    assert server.objects["p"]["status"] == {"desiredReplicas": 3}, (
        f"a paused operator's older status overwrote the active one's: {server.landed}"
    )


def test_a_crd_read_that_hangs_does_not_hold_the_ticks_of_other_kinds() -> None:
    """Promise: a status write / a refusal never blocks other policies; hot paths take no lock. Every tick of every
    custom-kind policy takes WorkloadKinds' one lock, and the CRD read of a kind first seen (or retried every
    RETRY_SECONDS) runs under it: an API server slow to answer that LIST (up to its 13 s timeout) holds the ticks
    of every policy of every other kind, already resolved, for as long."""
    runners = {("ml", "runners"): {"metadata": {"name": "runners"}, "spec": {"replicas": 5}}}
    hang = threading.Event()

    class Crds:
        def scale_paths(self, api_version: str, kind: str) -> ScalePaths | None:
            if kind == "Pool":
                hang.wait(10)  # the LIST of this CRD does not answer
                return None
            return RUNNERS

    kinds = _kinds(Crds(), _KindCache(runners), [0.0])  # type: ignore[arg-type]
    assert kinds.read("actions.summerwind.dev/v1alpha1", "RunnerDeployment", "ml", "runners") is not None
    first = threading.Thread(target=lambda: kinds.read("x.dev/v1", "Pool", "ml", "pool"), daemon=True)
    first.start()
    threading.Event().wait(0.2)  # its CRD read under way
    answered = threading.Event()

    def runner_tick() -> None:
        kinds.read("actions.summerwind.dev/v1alpha1", "RunnerDeployment", "ml", "runners")
        answered.set()

    threading.Thread(target=runner_tick, daemon=True).start()
    try:
        assert answered.wait(2.0), "a RunnerDeployment policy's tick waited for another kind's CRD read"
    finally:
        hang.set()
        first.join(5)
