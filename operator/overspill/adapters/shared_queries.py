"""Identical queue queries asked once: many policies naming the same PromQL share one answer.

A result is reused for `ttl` seconds (well under any poll interval) and concurrent askers of the same query
wait for the one request in flight instead of sending their own. Failures are shared the same way, so an
outage costs Prometheus one failed request per query, not one per policy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from overspill.adapters.prometheus import MetricError, MetricSource
from overspill.decide.busy import PodLevels

T = TypeVar("T")


class _Slot:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.at = 0.0
        self.value: object = None
        self.error: MetricError | None = None


class SharedQueries:
    def __init__(self, source: MetricSource, ttl: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._slots: dict[tuple[str, str, str], _Slot] = {}
        self.asked = 0  # requests actually sent

    def _fresh(self, slot: _Slot | None) -> bool:
        return slot is not None and (not slot.done.is_set() or self.clock() - slot.at < self.ttl)

    def _shared(self, key: tuple[str, str, str], fetch: Callable[[], T]) -> T:
        slot = self._slots.get(key)  # answered or being asked: joined without the lock (contended at 1,000)
        mine = not self._fresh(slot)
        if mine:
            with self._lock:
                slot = self._slots.get(key)
                mine = not self._fresh(slot)
                if mine:
                    slot = self._slots[key] = _Slot()
                    if len(self._slots) > 10_000:  # forget long-gone queries
                        now = self.clock()
                        for k in [k for k, s in self._slots.items() if s.done.is_set() and now - s.at > 60]:
                            del self._slots[k]
        assert slot is not None
        if mine:
            self.asked += 1
            try:
                slot.value = fetch()
            except MetricError as err:
                slot.error = err
            except Exception as err:  # never a traceback for the asker nor None for those waiting on it
                slot.error = MetricError(f"query failed: {type(err).__name__}")
            finally:
                slot.at = self.clock()
                slot.done.set()
        else:
            slot.done.wait()
        if slot.error is not None:
            raise slot.error
        return slot.value  # type: ignore[return-value]

    def value(self, url: str, query: str, timeout: float) -> float:
        return self._shared(("value", url, query), lambda: self.source.value(url, query, timeout))

    def per_pod(self, url: str, query: str, timeout: float) -> PodLevels:
        return self._shared(("per_pod", url, query), lambda: self.source.per_pod(url, query, timeout))
