"""An in-memory CapStore with the API server's compare-and-swap: a write based on an old version is refused (409),
as a Lease replaced with a stale resourceVersion is. Shared by ledgers standing for separate operator processes."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from overspill.reservations import CapConflict, CapStoreError, Reservation, Shared


class FakeCapStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.objects: dict[tuple[str, str], Shared] = {}
        self.reads = 0
        self.writes = 0
        self.conflicts = 0
        self.owners: dict[str, str | None] = {}  # target -> the owner uid its last write named
        self.broken: str | None = None  # set: every call fails (the primary's API server down, RBAC missing)

    def read(self, namespace: str, target: str) -> Shared:
        with self._lock:
            if self.broken:
                raise CapStoreError(self.broken)
            self.reads += 1
            return self.objects.get((namespace, target), Shared(None, {}))

    def write(
        self,
        namespace: str,
        target: str,
        base: Shared,
        entries: Mapping[str, Reservation],
        lease_seconds: int,
        owner: str | None = None,
        settling: bool = False,
    ) -> Shared:
        with self._lock:
            if self.broken:
                raise CapStoreError(self.broken)
            current = self.objects.get((namespace, target))
            if (current.version if current else None) != base.version:
                self.conflicts += 1
                raise CapConflict(target)
            self.writes += 1
            self.owners[target] = owner
            version = str(int(current.version or 0) + 1 if current else 1)
            self.objects[namespace, target] = Shared(version, dict(entries), settling=settling)
            return self.objects[namespace, target]

    def entries(self, target: str, namespace: str = "ops") -> dict[str, int]:
        shared = self.objects.get((namespace, target))
        return {u: r.replicas for u, r in (shared.entries if shared else {}).items()}
