"""One LIST+WATCH of one kind in one cluster, kept in memory: the informer of client-go, reduced to what we need.

Raw JSON end to end (no client models: they cost memory and CPU per object); the stream resumes from the last
resourceVersion it saw (bookmarks included), relists when the server says the version is gone (410), and
reports itself out of sync while it cannot watch, so readers never take stale data for fresh.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import random
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

from kubernetes.client import ApiClient

from overspill.views.resource import Resource

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Listener = Callable[[str, Obj | None, Obj | None], None]  # (event type, new, old)
Projection = Callable[[Obj], Obj]

LIST_PAGE = 500
WATCH_SECONDS = 50  # the server ends each watch after this; a read blocked longer means a hung server
READ_TIMEOUT = WATCH_SECONDS + 15
# the first watch after a failure: a quiet kind gets no event to prove it in sync, so the server is asked to end
# the stream soon (ended on time = nothing missed); at 50 s, a target that blinked stayed unusable for a minute
RECOVERY_WATCH_SECONDS = 5
# a failed watch waits this long before the next try, doubling up to the maximum (times 1-1.5, jitter)
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0
BUILT_IN_GROUPS = ("", "apps", "autoscaling", "batch", "policy")
DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


class Gone(Exception):
    """The resourceVersion we resume from is too old: relist."""


class WatchError(Exception):
    """The server refused the request (HTTP status and reason, never the body)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason}")
        self.status = status


def slim(obj: Obj) -> Obj:
    """Drop what no reader needs and what costs memory: managedFields, last-applied configurations."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        ann = meta.get("annotations")
        if ann:
            for key in DROPPED_ANNOTATIONS:
                ann.pop(key, None)
    return obj


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class WatchCache:
    def __init__(
        self,
        api: ApiClient,
        resource: Resource,
        *,
        cluster: str,
        label_selector: str | None = None,
        project: Projection = slim,
        namespace: str | None = None,
    ) -> None:
        self.api = api
        self.resource = resource
        self.cluster = cluster
        self.label_selector = label_selector
        # one namespace only: for kinds the operator may list only where it works (Secrets in a target)
        self.namespace = namespace
        self.project = project
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str], Obj] = {}
        self._by_ns: dict[str, set[str]] = {}
        self._by_label: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self._listeners: list[Listener] = []
        self._synced = threading.Event()
        self._stop = threading.Event()
        # set by `retry_now` (or `stop`): ends a backoff wait at once
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._response: Any = None
        self.problem: str | None = "not listed yet"
        self.absent = False  # the server does not serve this kind (a CRD that is not installed)
        self.forbidden = False  # 401/403: waiting will not help, RBAC must change
        self.requests = 0  # LIST and WATCH requests made: what steady state costs the API server
        self.resource_version = ""

    # ---- lifecycle -----------------------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self) -> WatchCache:
        if self._thread is not None:  # every tick asks: no lock once started
            return self
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"watch-{self.cluster}-{self.resource}", daemon=True
                )
                self._thread.start()
        return self

    def retry_now(self) -> None:
        """The cluster answers again (its probe says so): a watch waiting out its backoff (up to 45 s after a
        long outage) resumes now, with a fresh backoff, instead of leaving the view out of sync meanwhile."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        resp = self._response
        if resp is not None:
            # unblock a read in progress (urllib3 >= 2.3); if already closed, the read timeout ends it
            with contextlib.suppress(Exception):
                resp.shutdown()

    @property
    def synced(self) -> bool:
        return self._synced.is_set() and not self._stop.is_set()

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    # ---- reads ---------------------------------------------------------------------------------------------
    def get(self, namespace: str, name: str) -> Obj | None:
        # one dict read is atomic under the GIL, and stored objects are replaced, never changed in place: no lock
        return self._objects.get((namespace, name))

    def list(self, namespace: str | None = None, selector: Mapping[str, str] | None = None) -> list[Obj]:
        """Objects in `namespace` (all when None) whose labels include every pair of `selector`."""
        with self._lock:
            if selector:
                # smallest set first: a policy's uid label picks a few mirror pods out of the thousands that share
                # the managed-by label; intersecting from the big one copied it on every tick of every policy
                sets = sorted((self._by_label.get((str(k), str(v)), set()) for k, v in selector.items()), key=len)
                keys = sets[0].intersection(*sets[1:]) if len(sets) > 1 else set(sets[0])
                return [self._objects[k] for k in keys if namespace is None or k[0] == namespace]
            if namespace is None:
                return list(self._objects.values())
            return [self._objects[(namespace, n)] for n in self._by_ns.get(namespace, ())]

    def by_label(self, key: str, value: str) -> builtins.list[Obj]:
        return self.list(None, {key: value})

    def __len__(self) -> int:
        with self._lock:
            return len(self._objects)

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    # ---- the store -----------------------------------------------------------------------------------------
    def _index(self, key: tuple[str, str], obj: Obj, add: bool) -> None:
        ns, name = key
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if add:
            self._by_ns.setdefault(ns, set()).add(name)
            for pair in labels.items():
                self._by_label.setdefault((str(pair[0]), str(pair[1])), set()).add(key)
            return
        names = self._by_ns.get(ns)
        if names is not None:
            names.discard(name)
            if not names:
                del self._by_ns[ns]
        for pair in labels.items():
            found = self._by_label.get((str(pair[0]), str(pair[1])))
            if found is not None:
                found.discard(key)
                if not found:
                    del self._by_label[(str(pair[0]), str(pair[1]))]

    def _put(self, obj: Obj) -> tuple[Obj, Obj | None]:
        key = _key(obj)
        with self._lock:
            old = self._objects.get(key)
            if old is not None:
                self._index(key, old, add=False)
            self._objects[key] = obj
            self._index(key, obj, add=True)
        return obj, old

    def _drop(self, obj: Obj) -> Obj | None:
        key = _key(obj)
        with self._lock:
            old = self._objects.pop(key, None)
            if old is not None:
                self._index(key, old, add=False)
        return old

    def _notify(self, kind: str, new: Obj | None, old: Obj | None) -> None:
        for listener in builtins.list(self._listeners):
            try:
                listener(kind, new, old)
            except Exception:  # a listener's bug must not stop the stream
                log.exception("watch listener failed")

    # ---- the stream ----------------------------------------------------------------------------------------
    def _get(self, params: dict[str, Any], read_timeout: float) -> Any:
        if self.label_selector:
            params["labelSelector"] = self.label_selector
        method, url, headers, _, _ = self.api.param_serialize(
            "GET", self.resource.path(self.namespace), auth_settings=["BearerToken"]
        )
        url = f"{url}?{urlencode(params)}"
        self.requests += 1
        resp = self.api.call_api(method, url, header_params=headers, _request_timeout=(5, read_timeout))
        if not 200 <= resp.status < 300:
            status, reason = resp.status, resp.reason
            resp.read()  # type: ignore[no-untyped-call]
            if status == 410:
                raise Gone()
            raise WatchError(status, str(reason))
        return resp

    def _list(self) -> str:
        objects: builtins.list[Obj] = []
        cont = ""
        rv = ""
        while True:
            params: dict[str, Any] = {"limit": LIST_PAGE}
            if cont:
                params["continue"] = cont
            resp = self._get(params, 60)
            page = json.loads(resp.read() or b"{}")
            objects.extend(self.project(o) for o in page.get("items") or [])
            meta = page.get("metadata") or {}
            rv = str(meta.get("resourceVersion") or rv)
            cont = str(meta.get("continue") or "")
            if not cont:
                break
        fresh = {_key(o): o for o in objects}
        with self._lock:
            previous = self._objects
            gone = [o for k, o in previous.items() if k not in fresh]
            # new containers, swapped in whole: `get` reads without the lock, and a store emptied and refilled in
            # place showed a present workload as missing (its mirrors then drained) between the two
            self._by_ns, self._by_label = {}, {}
            for key, obj in fresh.items():
                self._index(key, obj, add=True)
            self._objects = fresh
        # a relist is a diff for listeners: what appeared, changed or vanished while we were not watching
        for key, obj in fresh.items():
            self._notify("ADDED" if key not in previous else "MODIFIED", obj, previous.get(key))
        for obj in gone:
            self._notify("DELETED", None, obj)
        return rv

    def _lines(self, resp: Any) -> Iterator[bytes]:
        buf = b""
        for chunk in resp.response.stream(amt=65536, decode_content=True):
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    yield line
        if buf.strip():
            yield buf

    def _watch(self, rv: str, seconds: int = WATCH_SECONDS) -> str:
        params = {
            "watch": "true",
            "resourceVersion": rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": seconds,
        }
        resp = self._get(params, READ_TIMEOUT if seconds >= WATCH_SECONDS else min(READ_TIMEOUT, seconds + 15))
        self._response = resp.response
        try:
            # in sync again only once the server has said something about this version: a reconnect after an
            # outage may be answered 200 and then 410, and the store must not pass for fresh in between
            for line in self._lines(resp):
                if self._stop.is_set():
                    break
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone()
                    raise WatchError(int(obj.get("code") or 500), str(obj.get("reason") or "watch error"))
                new_rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                if kind == "BOOKMARK":
                    rv = new_rv or rv
                    self.resource_version = rv
                    self._mark_synced()
                    continue
                obj = self.project(obj)
                if kind == "DELETED":
                    old = self._drop(obj)
                    if old is not None:  # a replayed deletion of what is already gone changes nothing
                        self._notify(kind, None, old)
                elif kind in ("ADDED", "MODIFIED"):
                    new, old = self._put(obj)
                    self._notify(kind, new, old)
                rv = new_rv or rv
                self.resource_version = rv
                self._mark_synced()
            else:
                self._mark_synced()  # the server ended the stream on time: nothing was missed
        finally:
            self._response = None
            resp.response.release_conn()
        return rv

    def _mark_synced(self) -> None:
        self.problem = None
        self._synced.set()
        self._wake.clear()  # in sync: a wake given meanwhile is spent (a later failure backs off as usual)

    def _run(self) -> None:
        backoff = BACKOFF_FIRST
        rv = ""
        recovering = False
        while not self._stop.is_set():
            try:
                if not rv:
                    rv = self._list()
                    self.resource_version = rv
                    self.absent = self.forbidden = False
                    self._mark_synced()
                rv = self._watch(rv, RECOVERY_WATCH_SECONDS if recovering else WATCH_SECONDS)
                backoff, recovering = BACKOFF_FIRST, False
            except Gone:
                # relist; a store that was in sync stays readable meanwhile (it was current); one that was not
                # stays out of sync until the list is done
                rv = ""
            except Exception as err:
                if self._stop.is_set():
                    break
                self._synced.clear()
                recovering = True
                # resume from the last event applied, not from the list: a replay would apply events twice
                rv = self.resource_version or rv
                self.forbidden = isinstance(err, WatchError) and err.status in (401, 403)
                if isinstance(err, WatchError):
                    # only an optional kind (a CRD not installed) may be absent; a built-in answering 404 is broken
                    self.absent = err.status == 404 and self.resource.group not in BUILT_IN_GROUPS
                    self.problem = f"cannot watch {self.resource} in {self.cluster}: {err}"
                else:
                    self.problem = f"cannot watch {self.resource} in {self.cluster}: {type(err).__name__}"
                log.debug("watch %s/%s failed: %s", self.cluster, self.resource, self.problem)
                # jitter: a recovering API server is not hit by every watch at once
                if self._wake.wait(backoff * (1 + random.random() / 2)):
                    self._wake.clear()
                    backoff = BACKOFF_FIRST  # told the cluster is back: the next failure waits from the start again
                else:
                    backoff = min(backoff * 2, BACKOFF_MAX)
                if isinstance(err, WatchError) and err.status in (403, 404):
                    rv = ""  # permission or kind changed: start from a fresh list
        self._synced.clear()
