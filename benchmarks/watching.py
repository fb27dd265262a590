"""What a benchmark sees happen, timestamped as the watch events arrive: each Deployment's `spec.replicas` and each
workload's Running and Pending pods, fed by one raw LIST+WATCH per kind (no per-object polling that would add to
the API server load being measured).
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from benchmarks import raw_api

Timeline = list[tuple[float, int]]  # (monotonic time, value), appended when the value changes


def first_reach(timeline: Timeline, since: float, value: int) -> float | None:
    """When `value` was first observed at or after `since` (`since` itself if it already held then); None if never."""
    times = [t for t, _ in timeline]
    i = bisect.bisect_right(times, since)
    if i > 0 and timeline[i - 1][1] == value:
        return since
    for t, v in timeline[i:]:
        if v == value:
            return t
    return None


def value_at(timeline: Timeline, at: float) -> int:
    """The value last observed at or before `at` (0 before the first observation)."""
    i = bisect.bisect_right([t for t, _ in timeline], at)
    return timeline[i - 1][1] if i else 0


def first_sum_reach(a: Timeline, b: Timeline, since: float, value: int) -> float | None:
    """When a + b (say Running pods in two clusters) first reached at least `value` at or after `since`."""
    moments = sorted({since, *(t for t, _ in a if t > since), *(t for t, _ in b if t > since)})
    return next((t for t in moments if value_at(a, t) + value_at(b, t) >= value), None)


def current(timeline: Timeline) -> int | None:
    return timeline[-1][1] if timeline else None


class RawWatch(threading.Thread):
    """LIST then WATCH one collection, resuming from the last resourceVersion and relisting when it expires."""

    def __init__(self, api: Any, path: str, selector: str, on_event: Callable[[str, dict[str, Any]], None]) -> None:
        super().__init__(daemon=True)
        self.api, self.path, self.selector, self.on_event = api, path, selector, on_event
        self.synced = threading.Event()
        self.problem = ""
        self._stopping = False

    def run(self) -> None:
        rv, base = "", f"{self.path}?labelSelector={quote(self.selector)}"
        while not self._stopping:
            try:
                if not rv:
                    body = json.loads(raw_api.get(self.api, base).read())
                    for item in body["items"]:
                        self.on_event("ADDED", item)
                    rv = body["metadata"]["resourceVersion"]
                    self.synced.set()
                query = f"&watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion={rv}"
                stream = raw_api.get(self.api, base + query, timeout=None).response
                for line in stream:
                    event = json.loads(line)
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        rv = "" if obj.get("code") == 410 else rv  # expired: relist
                        break
                    rv = obj["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self.on_event(event["type"], obj)
                stream.release_conn()
            except Exception as e:  # a dropped stream is retried; the benchmark's timeouts catch a dead one
                if self._stopping:
                    return
                self.problem = str(e)
                time.sleep(0.5)

    def stop(self) -> None:
        self._stopping = True


class Workloads:
    """Deployments and their pods in one namespace of one cluster, by the pods' `app` label (= Deployment name)."""

    def __init__(self, api: Any, namespace: str, selector: str, deployments: bool = True) -> None:
        self.lock = threading.Lock()
        self.replicas: dict[str, Timeline] = defaultdict(list)
        self.running: dict[str, Timeline] = defaultdict(list)
        self.pending: dict[str, Timeline] = defaultdict(list)
        self.ready: dict[str, Timeline] = defaultdict(list)  # Running pods whose Ready condition is True
        # when the last watch event (= the last write to a Deployment or pod of the namespace) arrived: a steady
        # window starts only after a quiet spell of these
        self.last_event: float | None = None
        self._pods: dict[str, tuple[str, str, bool]] = {}  # pod name -> (app, "Running" | "Pending" | "other", Ready)
        self._counts: dict[str, dict[str, int]] = defaultdict(
            lambda: {"Running": 0, "Pending": 0, "other": 0, "Ready": 0}
        )
        self.watches = [RawWatch(api, f"/api/v1/namespaces/{namespace}/pods", selector, self._on_pod)]
        if deployments:
            path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
            self.watches.append(RawWatch(api, path, selector, self._on_deployment))

    def __enter__(self) -> Workloads:
        for w in self.watches:
            w.start()
        for w in self.watches:
            if not w.synced.wait(120):
                raise TimeoutError(f"watch of {w.path} did not sync in 120 s: {w.problem or 'no answer'}")
        return self

    def __exit__(self, *_: object) -> None:
        for w in self.watches:
            w.stop()

    def _on_deployment(self, kind: str, obj: dict[str, Any]) -> None:
        if kind == "DELETED":
            return
        name, value = obj["metadata"]["name"], int(obj["spec"].get("replicas", 1))
        with self.lock:
            self.last_event = time.monotonic()
            line = self.replicas[name]
            if not line or line[-1][1] != value:
                line.append((time.monotonic(), value))

    def _on_pod(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        app = meta.get("labels", {}).get("app", "")
        phase = obj.get("status", {}).get("phase", "")
        unschedulable = any(
            c.get("type") == "PodScheduled" and c.get("reason") == "Unschedulable"
            for c in obj.get("status", {}).get("conditions", [])
        )
        state, ready = "other", False
        if kind != "DELETED" and not meta.get("deletionTimestamp"):
            state = "Running" if phase == "Running" else "Pending" if unschedulable else "other"
            conds = obj.get("status", {}).get("conditions", [])
            ready = state == "Running" and any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
        with self.lock:
            now = self.last_event = time.monotonic()
            old = self._pods.pop(meta["name"], None)
            if old:
                self._counts[old[0]][old[1]] -= 1
                self._counts[old[0]]["Ready"] -= old[2]
            if kind != "DELETED":
                self._pods[meta["name"]] = (app, state, ready)
                self._counts[app][state] += 1
                self._counts[app]["Ready"] += ready
            for timelines, key in ((self.running, "Running"), (self.pending, "Pending"), (self.ready, "Ready")):
                line, value = timelines[app], self._counts[app][key]
                if not line or line[-1][1] != value:
                    line.append((now, value))

    def now(self, timelines: dict[str, Timeline], name: str) -> int:
        with self.lock:
            return current(timelines.get(name, [])) or 0

    def total(self, timelines: dict[str, Timeline]) -> int:
        with self.lock:
            return sum(current(line) or 0 for line in timelines.values())

    def snapshot(self, timelines: dict[str, Timeline], name: str) -> Timeline:
        with self.lock:
            return list(timelines.get(name, []))
