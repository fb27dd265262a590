"""Reconcile on change: watch events that matter wake the policies they concern, so reaction does not wait
for the next poll.

Events arrive on watch threads; policies wait on asyncio Events in the operator's loop. What matters: a pod
appearing or going, turning Ready or not, becoming Unschedulable, being bound; a target becoming unavailable
or available again. Everything else (status heartbeats, annotation changes) wakes nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping
from typing import Any

from overspill.adapters.mirror import POLICY_UID
from overspill.views.cache import Obj
from overspill.views.selectors import matches


def _signature(pod: Obj | None) -> tuple[Any, ...] | None:
    if pod is None:
        return None
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    conds = {
        c.get("type"): (c.get("status"), c.get("reason"))
        for c in status.get("conditions") or []
        if c.get("type") in ("Ready", "PodScheduled")
    }
    return (
        status.get("phase"),
        conds.get("Ready"),
        conds.get("PodScheduled"),
        bool(spec.get("nodeName")),
        meta.get("deletionTimestamp") is not None,
    )


def matters(new: Obj | None, old: Obj | None) -> bool:
    return _signature(new) != _signature(old)


class Triggers:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
        self._selectors: dict[str, dict[str, Mapping[str, Any]]] = {}  # namespace -> uid -> pod selector
        self.wakes = 0

    def register(self, uid: str) -> asyncio.Event:
        """Called from the policy's coroutine: its wake-up Event, set from any thread."""
        event = asyncio.Event()
        with self._lock:
            self._waiters[uid] = (asyncio.get_running_loop(), event)
        return event

    def unregister(self, uid: str) -> None:
        with self._lock:
            self._waiters.pop(uid, None)
            for by_uid in self._selectors.values():
                by_uid.pop(uid, None)

    def watch_pods(self, uid: str, namespace: str, selector: Mapping[str, Any]) -> None:
        """The primary pods whose changes concern this policy (its workload's selector)."""
        # every tick of every policy: unchanged is the rule, answered without the lock (dict reads are atomic, and
        # a stored selector is a copy never changed in place)
        if self._selectors.get(namespace, {}).get(uid) == selector:
            return
        with self._lock:
            current = self._selectors.get(namespace, {}).get(uid)
            if current == selector:
                return
            for by_uid in self._selectors.values():
                by_uid.pop(uid, None)
            self._selectors.setdefault(namespace, {})[uid] = dict(selector)

    def wake(self, uid: str) -> None:
        with self._lock:
            found = self._waiters.get(uid)
        if found is not None:
            loop, event = found
            self.wakes += 1
            with contextlib.suppress(RuntimeError):  # the loop is closing: the policy is going away
                loop.call_soon_threadsafe(event.set)

    def wake_all(self) -> None:
        with self._lock:
            uids = list(self._waiters)
        for uid in uids:
            self.wake(uid)

    # ---- watch listeners (run on watch threads: cheap) ---------------------------------------------------
    def on_primary_pod(self, kind: str, new: Obj | None, old: Obj | None) -> None:
        if not matters(new, old):
            return
        pod = new or old or {}
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        with self._lock:  # a copy under the lock, the matching outside it: ticks must not wait on pod events
            selectors = list(self._selectors.get(str(meta.get("namespace") or ""), {}).items())
        interested = [uid for uid, sel in selectors if matches(sel, labels)]
        for uid in interested:
            self.wake(uid)

    def on_target_pod(self, kind: str, new: Obj | None, old: Obj | None) -> None:
        if not matters(new, old):
            return
        labels = ((new or old or {}).get("metadata") or {}).get("labels") or {}
        uid = labels.get(POLICY_UID)
        if uid:
            self.wake(str(uid))
