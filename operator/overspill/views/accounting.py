"""A cluster's resource accounting, kept current from its pod and node watches.

Requests of bound pods are summed per node incrementally, on each watch event, so a thousand policies asking
"how many more of my pods fit?" cost a lookup each, not a pass over every pod in the cluster. Answers are
memoized per pod shape until a pod or node changes. It subscribes before its caches start, so every object
reaches it as an event (a relist arrives as a diff).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from overspill.decide.capacity import PodShape, node_state, room, usage_by_node
from overspill.views.cache import Obj, WatchCache


def _contribution(pod: Obj | None) -> tuple[str, dict[str, int]] | None:
    if pod is None:
        return None
    used = usage_by_node([pod])
    return next(iter(used.items()), None)


class Accounting:
    def __init__(self, pods: WatchCache, nodes: WatchCache) -> None:
        self._lock = threading.Lock()
        self._pods, self._nodes = pods, nodes
        self._used: dict[str, dict[str, int]] = {}
        self._version = 0
        self._memo: dict[Any, tuple[int, int]] = {}
        pods.subscribe(self._on_pod)
        nodes.subscribe(self._on_node)

    def _apply(self, sign: int, part: tuple[str, dict[str, int]] | None) -> None:
        if part is None:
            return
        node, requests = part
        bucket = self._used.setdefault(node, {})
        for k, v in requests.items():
            bucket[k] = bucket.get(k, 0) + sign * v

    def _on_pod(self, kind: str, new: Obj | None, old: Obj | None) -> None:
        with self._lock:
            self._version += 1
            self._apply(-1, _contribution(old))
            self._apply(+1, _contribution(new))

    def _on_node(self, kind: str, new: Obj | None, old: Obj | None) -> None:
        with self._lock:
            self._version += 1

    @property
    def known(self) -> bool:
        return self._pods.synced and self._nodes.synced

    def room(self, key: Any, shape: PodShape) -> int | None:
        """How many more pods of `shape` fit now; `key` names the shape for memoization. None when not synced."""
        if not self.known:
            return None
        with self._lock:
            version = self._version
            hit = self._memo.get(key)
            if hit is not None and hit[0] == version:
                return hit[1]
            used: Mapping[str, Mapping[str, int]] = {n: dict(v) for n, v in self._used.items()}
        nodes = [node_state(n) for n in self._nodes.list()]
        answer = room(nodes, used, shape)
        with self._lock:
            if len(self._memo) > 4096:
                self._memo.clear()
            self._memo[key] = (version, answer)
        return answer
