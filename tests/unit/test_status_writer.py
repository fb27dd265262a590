"""Status writes off the tick's path (issue 12). On the lab at 1,000 policies a burst's status PATCHes held the tick
threads for half a second each: the next decisions queued behind reports (the return took 5 polls). A status may
land late; it must never hold a decision back, never land out of order, and a failed one must be written again."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import pytest
from kubernetes.client import ApiException

from overspill import handlers
from overspill.reconcile import Outcome
from overspill.statuswriter import StatusWriter
from tests.unit.test_daemons_survive import Stopped, start_policy_loop


async def _stop(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_status_write_that_hangs_does_not_hold_back_the_next_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks: list[int] = []
    release = threading.Event()

    class Reconciler:
        def reconcile(self, ref: Any, spec: Any, prev: Any, generation: Any) -> Outcome:
            ticks.append(1)
            return Outcome(None, {"desiredReplicas": len(ticks)}, [])  # a decision each tick: a write each tick

    def hang(rtm: Any, plural: str, ns: Any, name: str, status: dict[str, Any]) -> None:
        release.wait(20)  # an API server that does not answer

    monkeypatch.setattr(handlers, "_patch_status", hang)
    task = start_policy_loop(Reconciler(), "w1", {"pollIntervalSeconds": 1}, Stopped())
    try:
        for _ in range(60):
            await asyncio.sleep(0.1)
            if len(ticks) >= 3:
                break
    finally:
        release.set()
        await _stop(task)
    assert len(ticks) >= 3, f"{len(ticks)} tick(s) in 6 s at a 1 s poll: the policy waited for its status write"


async def test_writes_of_a_policy_land_in_order_and_only_the_newest_waiting_one_is_written() -> None:
    writer = StatusWriter(workers=4)
    written: list[int] = []
    gate = threading.Event()

    def write(status: dict[str, Any]) -> None:
        if status["n"] == 1:
            gate.wait(10)  # the first write is slow: newer ones arrive meanwhile
        written.append(status["n"])

    try:
        writer.slot("p", {})
        writer.submit("p", write, {"n": 1}, 1.0, "first")
        await asyncio.sleep(0.1)
        for n in (2, 3, 4):
            writer.submit("p", write, {"n": n}, float(n), "decision")
            await asyncio.sleep(0.05)
        assert written == [], "a second write of the policy started while its first was in flight"
        gate.set()
        await asyncio.wait_for(writer.drain(), 5)
    finally:
        gate.set()
        await writer.close()
    assert written == [1, 4]


async def test_a_failed_write_is_handed_back_to_the_next_tick() -> None:
    writer = StatusWriter(workers=2)
    fail = {"on": False}

    def write(status: dict[str, Any]) -> None:
        if fail["on"]:
            raise TimeoutError("read timed out")

    try:
        slot = writer.slot("p", {})
        writer.submit("p", write, {"n": 1}, 1.0, "first")
        await asyncio.wait_for(writer.drain(), 5)
        fail["on"] = True
        writer.submit("p", write, {"n": 2}, 2.0, "decision")
        assert slot.baseline == {"n": 2}  # what the next tick compares against while the write is on its way
        await asyncio.wait_for(writer.drain(), 5)
    finally:
        await writer.close()
    assert (slot.baseline, slot.baseline_at) == ({"n": 1}, 1.0), "the failed status would never be written again"


async def test_a_status_write_answered_404_ends_the_policy_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    class Reconciler:
        def reconcile(self, ref: Any, spec: Any, prev: Any, generation: Any) -> Outcome:
            return Outcome(None, {"desiredReplicas": 1}, [])

    def gone(*_: Any) -> None:
        raise ApiException(status=404, reason="Not Found")

    monkeypatch.setattr(handlers, "_patch_status", gone)
    task = start_policy_loop(Reconciler(), "w4", {"pollIntervalSeconds": 1}, Stopped())
    done, _ = await asyncio.wait({task}, timeout=5)
    if not done:
        await _stop(task)
    assert done, "the loop of a deleted policy went on ticking"


async def test_a_stopping_operator_writes_what_its_policies_handed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    writer = StatusWriter(workers=2)
    written: list[dict[str, Any]] = []

    def write(status: dict[str, Any]) -> None:
        threading.Event().wait(0.3)
        written.append(status)

    writer.slot("p", {})
    writer.submit("p", write, {"n": 1}, 1.0, "decision")
    writer.forget("p", keep_pending=True)  # the operator exiting: its daemons stopped before their writes landed
    cleanup: Any = handlers.operator_cleanup
    await cleanup(memo={"runtime": SimpleNamespace(status_writer=writer)})
    assert written == [{"n": 1}]


async def test_an_exiting_operator_keeps_what_a_stopped_loop_handed_over(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deleted or paused, a policy's waiting status is dropped (tests/unit/test_rev12c_review.py); the operator
    exiting keeps it for its cleanup's drain: the last decision reaches the object."""
    import kopf

    release = threading.Event()
    written: list[dict[str, Any]] = []

    class Reconciler:
        def reconcile(self, ref: Any, spec: Any, prev: Any, generation: Any) -> Outcome:
            return Outcome(None, {"desiredReplicas": 3}, [])

    def slow(rtm: Any, plural: str, ns: Any, name: str, status: dict[str, Any]) -> None:
        release.wait(10)
        written.append(status)

    monkeypatch.setattr(handlers, "_patch_status", slow)

    class Exiting(Stopped):
        reason = kopf.DaemonStoppingReason.OPERATOR_EXITING

    stopped = Exiting()
    writer = StatusWriter(workers=1)
    writer.slot("busy", {})
    writer.submit("busy", lambda status: release.wait(10), {"n": 0}, 0.0, "first")  # the only worker is taken
    task = start_policy_loop(Reconciler(), "x1", {"pollIntervalSeconds": 1}, stopped, writer=writer)
    try:
        for _ in range(50):
            await asyncio.sleep(0.1)
            if writer.pending():
                break
        stopped.flag = True
        await asyncio.wait({task}, timeout=5)
        release.set()
        await asyncio.wait_for(writer.drain(), 5)
    finally:
        release.set()
        await _stop(task)
        await writer.close()
    assert written == [{"desiredReplicas": 3}]
