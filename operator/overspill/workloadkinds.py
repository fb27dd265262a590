"""Custom workload kinds (LeaderWorkerSet, RunnerDeployment, a RayCluster's workers...) read from a watch, as
Deployments are: their CRD says where the scale subresource finds replicas and the pod selector, and one watch of
the kind answers what each tick's GET of /scale (and, while bursting, GET of the object) asked the API server
(issue 12: a tick makes no GET in steady state).

Where a watch cannot serve (the CRD not listable, the kind not watchable under the operator's RBAC, an array path
in the CRD, a view out of sync), the tick reads /scale by GET as before: slower, never blind.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from overspill.adapters.kube import Cluster, ScalePaths
from overspill.views import ClusterView
from overspill.views.cache import WatchCache
from overspill.views.resource import Resource

log = logging.getLogger(__name__)

RETRY_SECONDS = 300.0  # a kind's CRD is read again after this long: installed, upgraded (new paths), RBAC fixed
FIRST_LIST_WAIT = 10.0  # a tick waits this long for the first list of a kind it just asked for


@dataclass(frozen=True)
class Seen:
    replicas: int
    selector: str
    obj: dict[str, Any] | None  # None: the object does not exist


@dataclass
class _Kind:
    paths: ScalePaths | None
    cache: WatchCache | None
    read_at: float  # when its CRD was last read (or tried)
    reading: bool = False  # one tick reads the CRD; the others go on with what is known
    waited: bool = False  # the first list was waited for once; later ticks never wait for it
    warned: bool = False


class WorkloadKinds:
    def __init__(self, primary: Cluster, view: ClusterView, clock: Callable[[], float] = time.monotonic) -> None:
        self.primary = primary
        self.view = view
        self.clock = clock
        self._kinds: dict[tuple[str, str], _Kind] = {}
        self._lock = threading.Lock()  # held for dict updates only, never across a request

    def read(self, api_version: str, kind: str, namespace: str, name: str) -> Seen | None:
        """The workload as /scale would show it, from the view; None: read it by GET this time."""
        found = self._kind(api_version, kind)
        if found.paths is None or found.cache is None:
            return None
        cache = found.cache
        if not cache.synced and not found.waited and not (cache.forbidden or cache.absent):
            found.waited = True  # the tick that started the watch waits for its list, once
            cache.wait_synced(FIRST_LIST_WAIT)
        if not cache.synced:
            if (cache.forbidden or cache.absent) and not found.warned:
                found.warned = True
                log.warning(
                    "cannot watch %s (%s): every tick of its policies reads /scale by GET; grant the operator "
                    "list and watch on it (docs/operations.md)",
                    cache.resource,
                    cache.problem,
                )
            return None
        obj = cache.get(namespace, name)
        if obj is None:
            return Seen(0, "", None)
        scale = found.paths.read(obj)
        if scale is None:  # a value /scale would refuse: let it answer
            return None
        return Seen(scale[0], scale[1], obj)

    def _kind(self, api_version: str, kind: str) -> _Kind:
        """What is known of the kind; its CRD is read again every RETRY_SECONDS (paths change with a CRD upgrade),
        by one tick at a time and outside the lock: a CRD read that hangs holds no other tick."""
        key = (api_version, kind)
        now = self.clock()
        with self._lock:
            found = self._kinds.get(key)
            if found is None:
                found = self._kinds[key] = _Kind(None, None, read_at=now - RETRY_SECONDS)
            if found.reading or now - found.read_at < RETRY_SECONDS:
                return found
            found.reading = True
        paths = found.paths
        try:
            paths = self.primary.scale_paths(api_version, kind)
        except Exception as err:  # unreadable now (RBAC, a timeout): what was known stands; GET /scale meanwhile
            log.info("cannot read the CRD of %s %s (%s): its /scale is read by GET", kind, api_version, err)
        finally:
            cache = None
            if paths is not None:
                resource = Resource(paths.group, paths.version, paths.plural, paths.namespaced)
                cache = self.view.cache(resource, optional=True)  # its failure never makes the primary unusable
            with self._lock:
                found.paths, found.cache, found.read_at, found.reading = paths, cache, self.clock(), False
        return found
