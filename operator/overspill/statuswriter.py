"""Policy status writes off the tick's path: one pending status per policy, written by a few workers of their own.

Measured on the lab at 1,000 policies (issue 12): a burst makes every policy write its mirror and then its status
within one poll. The status PATCHes ran on the same 32 threads as the ticks and, on a busy API server, held them
for half a second each; ticks queued behind them (poll lateness p99 30 s), the burst took 3 polls and the return,
queued behind the burst's 1,000 status writes, 5. A status is a report: it may land a moment after the decision,
but it must never delay the next decision.

So a tick hands its status here and goes on. A newer status of the same policy replaces one not yet written (only
the latest is worth writing); one policy has at most one write in flight, so writes of a policy land in order. A
write that fails resets the policy's baseline to what the API server last accepted, so the policy's next tick
finds the difference and hands it again (the retry the tick loop did before, without blocking a thread on it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client import ApiException

from overspill import metrics

_log = logging.getLogger(__name__)

WORKERS = 16  # concurrent status PATCHes: enough to keep up with 1,000 policies deciding in one poll


@dataclass
class StatusSlot:
    """One policy's status as its tick loop compares against it: the last status handed over (written or on its
    way) and when, and whether the policy is gone (a write answered 404)."""

    baseline: dict[str, Any] = field(default_factory=dict)
    baseline_at: float = 0.0
    confirmed: dict[str, Any] = field(default_factory=dict)
    confirmed_at: float = 0.0
    gone: bool = False
    orphan: bool = False  # its loop ended while a write was in flight: removed once that write is done


@dataclass
class _Pending:
    write: Callable[[dict[str, Any]], None]
    status: dict[str, Any]
    at: float
    cause: str


class StatusWriter:
    def __init__(self, workers: int = WORKERS) -> None:
        self._workers = workers
        self._slots: dict[str, StatusSlot] = {}
        self._pending: dict[str, _Pending] = {}
        self._busy: set[str] = set()  # queued or in flight: at most one of each per policy
        self._queue: asyncio.Queue[str] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._pool: ThreadPoolExecutor | None = None
        self._idle = asyncio.Event()

    def slot(self, uid: str, written: dict[str, Any]) -> StatusSlot:
        """The policy's slot, made when its loop starts from the status found on the object. A loop started again
        while its last write is in flight (Kopf respawned the daemon) takes the slot over: it compares against what
        will be on the object, not against the body it was handed, which that write is about to change."""
        found = self._slots.get(uid)
        if found is None:
            found = self._slots[uid] = StatusSlot(baseline=written, confirmed=written)
        found.orphan = False
        return found

    def submit(
        self, uid: str, write: Callable[[dict[str, Any]], None], status: dict[str, Any], at: float, cause: str
    ) -> None:
        """Hand over the policy's newest status; it is written as soon as a worker is free."""
        slot = self._slots.setdefault(uid, StatusSlot())
        slot.baseline, slot.baseline_at = status, at
        self._pending[uid] = _Pending(write, status, at, cause)
        if uid not in self._busy:
            self._busy.add(uid)
            self._idle.clear()
            self._start().put_nowait(uid)

    def forget(self, uid: str, *, keep_pending: bool) -> None:
        """The policy's loop ended. `keep_pending` (the operator exiting: its cleanup drains): the status handed
        over is still written. Otherwise (deleted, paused for another operator, no longer this shard's) it is
        dropped: written by name, it could land on a policy re-created with that name or over the operator that
        took over. A write already in flight is not called back; the slot goes once it is done."""
        if not keep_pending:
            self._pending.pop(uid, None)
        slot = self._slots.get(uid)
        if slot is None:
            return
        if uid in self._busy:
            slot.orphan = True
            if not keep_pending:
                slot.baseline, slot.baseline_at = slot.confirmed, slot.confirmed_at
        else:
            del self._slots[uid]

    def pending(self) -> int:
        return len(self._pending)

    async def drain(self) -> None:
        """Wait for what is handed over to be written (callers bound it): a stopping operator keeps its last
        decisions."""
        if self._busy:
            await self._idle.wait()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._queue = None
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def _start(self) -> asyncio.Queue[str]:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="overspill-status")
            self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]
        return self._queue

    async def _work(self) -> None:
        assert self._queue is not None and self._pool is not None
        queue, pool = self._queue, self._pool
        loop = asyncio.get_running_loop()
        while True:
            uid = await queue.get()
            item = self._pending.pop(uid, None)
            if item is None:  # written by an earlier turn of this policy
                self._done(uid)
                continue
            try:
                await loop.run_in_executor(pool, item.write, item.status)
                metrics.STATUS_WRITES.labels("policy", item.cause).inc()
                self._written(uid, item)
            except ApiException as err:
                self._failed(uid, gone=err.status == 404)
                if err.status != 404:
                    _log.warning("status write failed: HTTP %s; the next tick writes it", err.status)
            except Exception as err:  # a timeout of a busy API server: the policy goes on, the write is retried
                self._failed(uid)
                _log.warning("status write failed: %s; the next tick writes it", type(err).__name__)
            if uid in self._pending:  # a newer status arrived while this one was in flight
                queue.put_nowait(uid)
            else:
                self._done(uid)

    def _done(self, uid: str) -> None:
        self._busy.discard(uid)
        slot = self._slots.get(uid)
        if slot is not None and slot.orphan:
            del self._slots[uid]
        if not self._busy:
            self._idle.set()

    def _written(self, uid: str, item: _Pending) -> None:
        slot = self._slots.get(uid)
        if slot is not None:
            slot.confirmed, slot.confirmed_at = item.status, item.at
            if uid not in self._pending:  # nothing newer handed over: this is what the object says now
                slot.baseline, slot.baseline_at = item.status, item.at

    def _failed(self, uid: str, gone: bool = False) -> None:
        slot = self._slots.get(uid)
        if slot is None:
            return
        slot.gone = slot.gone or gone
        if uid not in self._pending:  # nothing newer on its way: the next tick must find the difference again
            slot.baseline, slot.baseline_at = slot.confirmed, slot.confirmed_at
