"""What the operator knows about BurstTargets: spec, client, view, health, and the ledger of their shared caps.

Filled by the BurstTarget daemons, read by every policy's reconcile. Holds live clients, so nothing here
is ever serialized: the kubeconfig text is dropped as soon as the client is built.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from overspill.adapters.kube import Cluster
from overspill.adapters.kubeconfig import TargetCredentials
from overspill.api.target import BurstTargetSpec
from overspill.reservations import CapLedger, CapStore
from overspill.views import ClusterView


@dataclass
class TargetHandle:
    name: str
    spec: BurstTargetSpec
    cluster: Cluster | None = None
    view: ClusterView | None = None  # the target's watch-fed view, built with its client
    healthy: bool = False
    probed: bool = False
    message: str = "not probed yet"
    # material the client reads from files (certificates, keys), in a private directory removed with the target
    credentials: TargetCredentials | None = None


class TargetRegistry:
    def __init__(self, store: CapStore | None = None, holder: str = "local") -> None:
        self._lock = threading.Lock()
        self._targets: dict[str, TargetHandle] = {}
        # shared caps: reserved before acting (in `store`, shared with every other operator process, when given),
        # rebuilt from the targets' mirrors
        self.ledger = CapLedger(store, holder=holder)

    def upsert(self, name: str, spec: BurstTargetSpec, uid: str | None = None) -> TargetHandle:
        with self._lock:
            handle = self._targets.get(name)
            if handle is None:
                handle = self._targets[name] = TargetHandle(name=name, spec=spec)
            else:
                handle.spec = spec
        # the shared reservations live beside the target's kubeconfig Secret: every operator placing on the
        # target reads that Secret, so every one of them finds the same object there
        self.ledger.set_cap(name, spec.max_replicas, spec.kubeconfig_secret_ref.namespace, owner=uid)
        return handle

    def set_credentials(self, name: str, credentials: TargetCredentials | None) -> None:
        """New key material for the target (its kubeconfig changed); the directory it replaces is removed."""
        with self._lock:
            handle = self._targets.get(name)
            old = handle.credentials if handle is not None else None
            if handle is not None:
                handle.credentials = credentials
        if old is not None and old is not credentials:
            old.close()
        if handle is None and credentials is not None:
            credentials.close()

    def set_health(self, name: str, *, cluster: Cluster | None, healthy: bool, message: str) -> None:
        with self._lock:
            handle = self._targets.get(name)
            if handle is not None:
                handle.cluster, handle.healthy, handle.message = cluster, healthy, message
                handle.probed = True

    def set_view(self, name: str, view: ClusterView | None) -> None:
        """A new view for the target (its kubeconfig changed); the one it replaces stops watching."""
        with self._lock:
            handle = self._targets.get(name)
            old = handle.view if handle is not None else None
            if handle is not None:
                handle.view = view
        if old is not None and old is not view:
            old.close()

    def remove(self, name: str) -> None:
        with self._lock:
            handle = self._targets.pop(name, None)
        self.ledger.drop_target(name)
        if handle is not None and handle.view is not None:
            handle.view.close()
        if handle is not None and handle.credentials is not None:
            handle.credentials.close()

    def names(self) -> list[str]:
        with self._lock:
            return list(self._targets)

    def get(self, name: str) -> TargetHandle | None:
        return self._targets.get(name)  # every tick, several times: one atomic dict read, no lock

    def room_for(self, name: str, policy_uid: str, current: int = 0) -> int | None:
        """What the target's own maxReplicas leaves for this policy after all other policies (None: no cap)."""
        return self.ledger.room_for(name, policy_uid, current)

    def usage(self, name: str) -> int:
        return self.ledger.usage(name)
