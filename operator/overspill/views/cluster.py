"""One watch-fed view per cluster (the primary, each BurstTarget), shared by every policy.

A cache per (kind, label selector) is started on first use and shared by all who ask for it: one watch per
kind per cluster, however many policies read it. The view is `ready` only while every cache it holds is in
sync; a view that is not is reported as an unavailable cluster, never read as if it were current.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from kubernetes.client import ApiClient

from overspill.views.accounting import Accounting
from overspill.views.cache import Obj, Projection, WatchCache, slim
from overspill.views.resource import NODES, PODS, Resource

MANAGED_SELECTOR = "app.kubernetes.io/managed-by=overspill"
STARTUP_GRACE = 30.0  # seconds a new view may take to list before it counts as out of sync


def slim_pod(pod: Obj) -> Obj:
    """Only what decisions and capacity need of a pod: a fraction of its size, for clusters of many pods."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    ann = dict(meta.get("annotations") or {})
    ann.pop("kubectl.kubernetes.io/last-applied-configuration", None)

    def resources(containers: Any) -> list[Obj]:
        # restartPolicy marks a native sidecar, whose requests add up with the containers'
        return [
            {
                "resources": c.get("resources") or {},
                **({"restartPolicy": c["restartPolicy"]} if "restartPolicy" in c else {}),
            }
            for c in containers or []
        ]

    return {
        "metadata": {
            k: meta[k]
            for k in (
                "name",
                "namespace",
                "uid",
                "labels",
                "creationTimestamp",
                "deletionTimestamp",
                "ownerReferences",
                "resourceVersion",
            )
            if k in meta
        }
        | {"annotations": ann},
        "spec": {
            "nodeName": spec.get("nodeName"),
            "containers": resources(spec.get("containers")),
            "initContainers": resources(spec.get("initContainers")),
            "overhead": spec.get("overhead"),
        },
        "status": {"phase": status.get("phase"), "conditions": status.get("conditions") or []},
    }


def slim_node(node: Obj) -> Obj:
    meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    return {
        "metadata": {"name": meta.get("name"), "labels": meta.get("labels") or {}},
        "spec": {"taints": spec.get("taints") or [], "unschedulable": spec.get("unschedulable", False)},
        "status": {
            "allocatable": status.get("allocatable") or {},
            "conditions": [c for c in status.get("conditions") or [] if c.get("type") == "Ready"],
        },
    }


_PROJECTIONS: dict[Resource, Projection] = {PODS: slim_pod, NODES: slim_node}


class ClusterView:
    def __init__(self, name: str, api: ApiClient) -> None:
        self.name = name
        self.api = api
        self._lock = threading.Lock()
        self._caches: dict[tuple[Resource, str | None, str | None], WatchCache] = {}
        self._optional: set[tuple[Resource, str | None, str | None]] = set()
        self._all: tuple[WatchCache, ...] = ()
        self._required_caches: tuple[WatchCache, ...] = ()
        self._closed = False
        self.created_at = time.monotonic()
        # accounting subscribes before its caches start: every pod and node reaches it as an event
        self.accounting = Accounting(self.cache(PODS, start=False), self.cache(NODES, start=False))
        self.cache(PODS)
        self.cache(NODES)

    def cache(
        self,
        resource: Resource,
        label_selector: str | None = None,
        *,
        start: bool = True,
        optional: bool = False,
        namespace: str | None = None,
    ) -> WatchCache:
        """The shared cache of `resource` (with `label_selector`, in `namespace` or all), started on first use. An
        `optional` cache (a custom workload kind, read by GET when it cannot be watched) never makes the view
        unusable."""
        key = (resource, label_selector, namespace)
        found = self._caches.get(key)  # the hot path, every tick: no lock (see _publish)
        if found is not None and (found.started or not start or self._closed):
            return found
        with self._lock:
            if optional and key not in self._caches:
                self._optional.add(key)
            found = self._caches.get(key)
            if found is None:
                found = WatchCache(
                    self.api,
                    resource,
                    cluster=self.name,
                    label_selector=label_selector,
                    project=_PROJECTIONS.get(resource, slim),
                    namespace=namespace,
                )
                self._caches[key] = found
                self._publish()
            if start and not self._closed:
                found.start()
            return found

    def existing(
        self, resource: Resource, label_selector: str | None = None, namespace: str | None = None
    ) -> WatchCache | None:
        """The cache of that key if one was made, else None; never makes or starts one. One dict read, no lock."""
        return self._caches.get((resource, label_selector, namespace))

    def _publish(self) -> None:
        """Under the lock: new tuples of the caches for readers that take no lock. Measured at 1,000 policies: 32
        tick threads taking this view's lock several times a tick spent 79 % of their time waiting for it (each
        hand-over of a contended lock waits for the GIL), capping a burst at about 50 ticks a second."""
        self._all = tuple(self._caches.values())
        self._required_caches = tuple(c for k, c in self._caches.items() if k not in self._optional)

    def caches(self) -> list[WatchCache]:
        return list(self._all)

    def _required(self) -> tuple[WatchCache, ...]:
        return self._required_caches

    @property
    def starting(self) -> bool:
        """Still listing for the first time (a new operator, a new target): a reason to hold quietly, not to warn."""
        return not self.ready and time.monotonic() - self.created_at < STARTUP_GRACE

    @property
    def ready(self) -> bool:
        return self.problem is None

    @property
    def problem(self) -> str | None:
        """Why this view cannot be trusted now (first cache out of sync), or None."""
        for c in self._required():
            # nodes feed only the capacity estimate: without them the cluster is still usable
            if not c.synced and not c.absent and c.resource != NODES:
                return c.problem or f"{c.resource} in {self.name} is not in sync"
        return None

    def wait_ready(self, timeout: float) -> bool:
        """Block until every cache started so far has listed or is known absent (or `timeout`); True when in sync.

        Nodes get a short grace only: they feed the estimate, and a cluster that refuses them is still usable.
        """
        deadline = time.monotonic() + timeout
        nodes_deadline: float | None = None
        while time.monotonic() < deadline:
            caches = self._required()
            if any(c.forbidden for c in caches if c.resource != NODES):
                return False  # RBAC refuses it: waiting changes nothing, say so now
            if all(c.synced or c.absent for c in caches if c.resource != NODES):
                nodes_deadline = nodes_deadline or time.monotonic() + 2.0
                if time.monotonic() >= nodes_deadline or all(c.synced or c.absent for c in caches):
                    return self.ready
            time.sleep(0.02)
        return self.ready

    def requests(self) -> int:
        return sum(c.requests for c in self.caches())

    def retry_now(self) -> None:
        """The cluster is reachable again: watches waiting out a backoff resume now (`WatchCache.retry_now`)."""
        for c in self.caches():
            c.retry_now()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            caches = list(self._caches.values())
        for c in caches:
            c.stop()

    def object_count(self) -> int:
        return sum(len(c) for c in self.caches())


def ready_all(views: Iterable[ClusterView]) -> bool:
    return all(v.ready for v in views)
