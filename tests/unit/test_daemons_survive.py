"""A slow API server must not stop a policy or drop a target (seen on the lab at 1,000 policies: status PATCHes
timed out; the policy's daemon died with urllib3's ReadTimeoutError and Kopf restarted it 60 s later; the target's
probe daemon died the same way and its `finally` removed the target, so 1,000 policies saw it unavailable and
each wrote a status saying so, loading the API server further)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from urllib3.exceptions import ReadTimeoutError

from overspill import handlers
from overspill.reconcile import Outcome
from overspill.statuswriter import StatusWriter
from overspill.targets import TargetRegistry
from overspill.triggers import Triggers


class Stopped:
    flag = False

    def __bool__(self) -> bool:
        return self.flag

    async def wait(self, seconds: float | None = None) -> None:
        await asyncio.sleep(seconds or 0)


def timeout(*_: Any, **__: Any) -> None:
    raise ReadTimeoutError(None, "/apis/overspill.dev/v1alpha1/...", "Read timed out. (read timeout=10)")  # type: ignore[arg-type]


def start_policy_loop(
    reconciler: Any, uid: str, behavior: dict[str, Any], stopped: Any, writer: StatusWriter | None = None
) -> asyncio.Task[Any]:
    """burstpolicy_loop as Kopf runs it, over a fake runtime whose primary view is in sync."""
    rtm = SimpleNamespace(
        reconciler=reconciler,
        targets=TargetRegistry(),
        triggers=Triggers(),
        primary_view=SimpleNamespace(wait_ready=lambda timeout: True, ready=True),
        status_writer=writer or StatusWriter(),
    )
    body = {
        "metadata": {"generation": 1},
        "spec": {
            "workloadRef": {"name": "vllm"},
            "metric": {"prometheus": {"query": "q"}, "targetPerReplica": 10},
            "maxReplicas": 20,
            "behavior": behavior,
        },
    }
    loop_fn: Any = handlers.burstpolicy_loop  # Kopf's decorator types it as DaemonFn
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


async def test_a_status_write_that_times_out_does_not_stop_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks: list[int] = []
    writes: list[dict[str, Any]] = []

    class Reconciler:
        def reconcile(self, ref: Any, spec: Any, prev: Any, generation: Any) -> Outcome:
            ticks.append(1)
            return Outcome(None, {"desiredReplicas": len(ticks)}, [])

    def patch(rtm: Any, plural: str, ns: Any, name: str, status: dict[str, Any]) -> None:
        if not writes:
            writes.append({})
            timeout()
        writes.append(status)

    monkeypatch.setattr(handlers, "_patch_status", patch)
    task = start_policy_loop(Reconciler(), "u1", {"pollIntervalSeconds": 1}, Stopped())
    for _ in range(60):
        await asyncio.sleep(0.1)
        if len(writes) >= 2 or task.done():
            break
    done = task.done()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert not done, f"the policy's daemon ended: {task.exception() if done else ''}"
    assert len(ticks) >= 2 and writes[-1] == {"desiredReplicas": len(ticks)}, "the failed write was not retried"


async def test_a_target_status_write_that_times_out_keeps_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    probes: list[int] = []

    def probe(rtm: Any, name: str, spec: Any, cache: dict[str, Any]) -> tuple[bool, str, str | None, float | None]:
        probes.append(1)
        return True, "probe succeeded", "v1.34.4", 1.0

    monkeypatch.setattr(handlers, "_probe", probe)
    monkeypatch.setattr(handlers, "_patch_status", timeout)
    monkeypatch.setattr(handlers.kopf, "info", lambda *a, **k: None)
    monkeypatch.setattr(handlers.kopf, "warn", lambda *a, **k: None)
    registry = TargetRegistry()
    rtm = SimpleNamespace(targets=registry, triggers=Triggers())
    body = {"spec": {"kubeconfigSecretRef": {"name": "s", "namespace": "o"}, "probeIntervalSeconds": 1}}
    probe_fn: Any = handlers.bursttarget_probe
    task = asyncio.create_task(probe_fn(name="aws", body=body, stopped=Stopped(), memo={"runtime": rtm}))
    for _ in range(40):
        await asyncio.sleep(0.1)
        if len(probes) >= 2 or task.done():
            break
    done = task.done()
    handle = registry.get("aws")
    kept = handle is not None and handle.healthy
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert not done, f"the probe daemon ended: {task.exception() if done else ''}"
    assert kept, "the target was dropped from the registry: every policy sees it unavailable"
    assert len(probes) >= 2


class Flag:
    """Kopf's DaemonStopped as a daemon sees it: truthy once stopped; `wait(timeout)` returns early on stop."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def __bool__(self) -> bool:
        return self.event.is_set()

    async def wait(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - Kopf's signature
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), timeout)


async def test_a_stopped_policy_daemon_ends_at_once_not_at_its_next_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    # at 1,000 policies every daemon outlived Kopf's cancellation timeout on shutdown (999 "cancelled, will
    # escalate" warnings), and a deleted policy's finalizer waited for it
    ticked = asyncio.Event()

    class Reconciler:
        def reconcile(self, ref: Any, spec: Any, prev: Any, generation: Any) -> Outcome:
            return Outcome(None, {}, [])

    monkeypatch.setattr(handlers, "_patch_status", lambda *a, **k: None)
    real_rest = handlers._rest

    async def rest(*args: Any) -> None:
        ticked.set()
        await real_rest(*args)

    monkeypatch.setattr(handlers, "_rest", rest)
    stopped = Flag()
    task = start_policy_loop(Reconciler(), "u2", {"pollIntervalSeconds": 600}, stopped)
    await asyncio.wait_for(ticked.wait(), 10)
    stopped.event.set()
    done, _ = await asyncio.wait({task}, timeout=3)
    if not done:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert done, "the daemon slept on until its next poll (600 s) although it was stopped"


async def test_a_kubeconfig_secret_read_that_times_out_keeps_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    # review: the Secret GET (not only the status PATCH) timed out under load, ended the daemon, dropped the target
    from tests.unit.test_target_probe_cost import Reads

    monkeypatch.setattr(handlers.Cluster, "version", lambda self, timeout: "v1.34.4")
    monkeypatch.setattr(handlers, "_patch_status", lambda *a, **k: None)
    monkeypatch.setattr(handlers.kopf, "info", lambda *a, **k: None)
    monkeypatch.setattr(handlers.kopf, "warn", lambda *a, **k: None)
    monkeypatch.setattr(handlers, "KUBECONFIG_REREAD", 0.0)  # every probe reads the Secret
    reads = Reads()
    real = reads.read_namespaced_secret
    slow = {"on": False}

    def read(*a: Any, **k: Any) -> Any:
        if slow["on"]:
            timeout()
        return real(*a, **k)

    reads.read_namespaced_secret = read  # type: ignore[method-assign]
    registry = TargetRegistry()
    rtm = SimpleNamespace(primary=SimpleNamespace(core=reads), targets=registry, triggers=Triggers())
    body = {
        "spec": {
            "kubeconfigSecretRef": {"name": "s", "namespace": "o"},
            "probeIntervalSeconds": 1,
            "failureThreshold": 5,
        }
    }
    probe_fn: Any = handlers.bursttarget_probe
    task = asyncio.create_task(probe_fn(name="aws", body=body, stopped=Stopped(), memo={"runtime": rtm}))
    try:
        for _ in range(100):
            await asyncio.sleep(0.1)
            handle = registry.get("aws")
            if handle is not None and handle.healthy:
                break
        slow["on"] = True
        await asyncio.sleep(2.5)
        done = task.done()
        handle = registry.get("aws")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for name in registry.names():
            registry.remove(name)
    assert not done, f"the probe daemon ended: {task.exception() if done else ''}"
    assert handle is not None and handle.healthy, "one slow Secret read (below failureThreshold) dropped the target"


async def test_a_status_that_only_ages_is_written_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # the loop itself, not only write_cause: a still queue ticks every second for several status intervals
    ticks: list[float] = []
    writes: list[dict[str, Any]] = []

    class Reconciler:
        def reconcile(self, ref: Any, spec: Any, prev: Any, generation: Any) -> Outcome:
            ticks.append(1)
            t = float(len(ticks))
            return Outcome(None, {"desiredReplicas": 1, "metricValue": 0.0, "memory": {"samples": [[t, 0.0]]}}, [])

    monkeypatch.setattr(handlers, "_patch_status", lambda rtm, plural, ns, name, status: writes.append(status))
    task = start_policy_loop(Reconciler(), "u3", {"pollIntervalSeconds": 1, "statusIntervalSeconds": 1}, Stopped())
    for _ in range(80):
        await asyncio.sleep(0.1)
        if len(ticks) >= 4:
            break
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert len(ticks) >= 4
    assert len(writes) == 1, f"{len(writes)} writes in {len(ticks)} ticks of a status that only aged"
