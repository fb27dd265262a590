"""What the operator knows about BurstTargets: spec, client, health, and replicas used per policy.

Filled by the BurstTarget daemons, read by every policy's reconcile. Holds live clients, so nothing here
is ever serialized: the kubeconfig text is dropped as soon as the client is built.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from overspill.adapters.kube import Cluster
from overspill.api.target import BurstTargetSpec
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
    usage: dict[str, int] = field(default_factory=dict)  # policy uid -> replicas placed here


class TargetRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._targets: dict[str, TargetHandle] = {}

    def upsert(self, name: str, spec: BurstTargetSpec) -> TargetHandle:
        with self._lock:
            handle = self._targets.get(name)
            if handle is None:
                handle = self._targets[name] = TargetHandle(name=name, spec=spec)
            else:
                handle.spec = spec
            return handle

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
        if handle is not None and handle.view is not None:
            handle.view.close()

    def names(self) -> list[str]:
        with self._lock:
            return list(self._targets)

    def get(self, name: str) -> TargetHandle | None:
        with self._lock:
            return self._targets.get(name)

    def set_usage(self, policy_uid: str, replicas: dict[str, int]) -> None:
        """The policy's replicas per target; targets it no longer uses forget it (their room comes back)."""
        with self._lock:
            for name, handle in self._targets.items():
                if replicas.get(name):
                    handle.usage[policy_uid] = replicas[name]
                else:
                    handle.usage.pop(policy_uid, None)

    def forget_policy(self, policy_uid: str) -> None:
        self.set_usage(policy_uid, {})

    def room_for(self, name: str, policy_uid: str) -> int | None:
        """What the target's own maxReplicas leaves for this policy after all other policies."""
        with self._lock:
            handle = self._targets.get(name)
            if handle is None or handle.spec.max_replicas is None:
                return None
            others = sum(v for k, v in handle.usage.items() if k != policy_uid)
            return max(0, handle.spec.max_replicas - others)
