"""A cluster's resource accounting, kept current from its pod and node watches.

Requests of bound pods are summed per node incrementally, on each watch event, and each node is parsed once per
change of it, so a thousand policies asking "how many more of my pods fit?" cost a pass over the nodes each,
not over every pod. Answers are memoized per pod shape (policies with equal shapes share them) until a pod or
node changes. It subscribes before its caches start, so every object reaches it as an event (a relist arrives as
a diff). While the caches are out of sync it answers with the last answer it gave for that shape: unknown must
never read as "no limit" (a burst pulled home into Pending pods).
"""

from __future__ import annotations

import threading
from typing import Any

from overspill.decide.capacity import NodeState, PodShape, node_state, room, shape_key, usage_by_node
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
        self._node_states: dict[str, NodeState] = {}
        self._version = 0
        self._memo: dict[Any, tuple[int, int]] = {}
        self._last: dict[Any, int] = {}
        pods.subscribe(self._on_pod)
        nodes.subscribe(self._on_node)

    def _apply(self, sign: int, part: tuple[str, dict[str, int]] | None) -> None:
        if part is None:
            return
        node, requests = part
        bucket = self._used.setdefault(node, {})
        for k, v in requests.items():
            left = bucket.get(k, 0) + sign * v
            if left:
                bucket[k] = left
            else:
                bucket.pop(k, None)
        if not bucket:
            del self._used[node]  # nodes come and go (spot, Karpenter): keep nothing for an empty one

    def _on_pod(self, kind: str, new: Obj | None, old: Obj | None) -> None:
        before, after = _contribution(old), _contribution(new)
        with self._lock:
            self._version += 1
            self._apply(-1, before)
            self._apply(+1, after)

    def _on_node(self, kind: str, new: Obj | None, old: Obj | None) -> None:
        with self._lock:
            self._version += 1
            if new is None:
                name = ((old or {}).get("metadata") or {}).get("name")
                self._node_states.pop(str(name), None)
            else:
                state = node_state(new)
                self._node_states[state.name] = state

    @property
    def known(self) -> bool:
        return self._pods.synced and self._nodes.synced

    def room(self, shape: PodShape) -> int | None:
        """How many more pods of `shape` fit now; while out of sync the last answer (None: never known)."""
        key = shape_key(shape)
        if not self.known:
            with self._lock:
                return self._last.get(key)
        hit = self._memo.get(key)  # the common case, every tick: atomic reads, no lock (views/cluster.py _publish)
        if hit is not None and hit[0] == self._version:
            return hit[1]
        with self._lock:
            hit = self._memo.get(key)
            if hit is not None and hit[0] == self._version:
                return hit[1]
            answer = room(self._node_states.values(), self._used, shape)
            if len(self._memo) > 4096:
                self._memo.clear()
                self._last.clear()
            self._memo[key] = (self._version, answer)
            self._last[key] = answer
            return answer

    def node_count(self) -> int:
        with self._lock:
            return len(self._used)
