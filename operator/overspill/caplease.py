"""The shared half of a BurstTarget's cap: one coordination.k8s.io Lease per capped target in the primary.

Every operator process (shards, and both replicas of an HA pair during a handover) reserves room in the same Lease,
`overspill-cap-<target>` beside the target's kubeconfig Secret, with compare-and-swap on its resourceVersion: a
write made from a stale read is refused with 409 and retried from a fresh one, so two processes can never both take
the last free room. The reservations are a JSON map in one annotation (policy uid -> replicas, holder, expiry).

Why a Lease and not the BurstTarget's status: the status is written by every process's probe daemon (every write
of theirs would make reservations retry) and is watched by Kopf in every process; nobody watches the Lease, it is
written only when a reservation changes, and it is the object Kubernetes made for this kind of coordination.

A digest of the reservations beside them tells an edit by hand from what an operator wrote: such a Lease, like one
deleted, has lost the reservations in flight (reservations.py says what happens then; `settling` marks it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
from collections.abc import Mapping
from typing import Any

from kubernetes.client import ApiClient, ApiException, CoordinationV1Api

from overspill.adapters.kube import TIMEOUT
from overspill.api.crd import GROUP, VERSION
from overspill.reservations import CapConflict, CapStoreError, Reservation, Shared

RESERVATIONS = "overspill.dev/reservations"
DIGEST = "overspill.dev/reservations-digest"  # sha256 of RESERVATIONS as written by an operator
SETTLING = "overspill.dev/settling"  # "true": the reservations were found lost; growth is held for the lease
TARGET_LABEL = "overspill.dev/target"
LEASE_PREFIX = "overspill-cap-"


def identity() -> str:
    """Who holds a reservation: the pod (POD_NAME, from the Downward API) or host, and the process."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}/{os.getpid()}"


def lease_name(target: str) -> str:
    """One Lease per target; a name too long for the prefix ends in a hash of the whole name, so two long names
    that agree in their first characters never share one (nor their reservations)."""
    name = LEASE_PREFIX + target
    if len(name) <= 253:
        return name
    return name[:236] + "-" + hashlib.sha256(target.encode()).hexdigest()[:16]


def digest(encoded: str) -> str:
    return hashlib.sha256(encoded.encode()).hexdigest()[:16]


def _decode(lease: Mapping[str, Any]) -> Shared:
    meta = lease.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    raw = annotations.get(RESERVATIONS)
    # edited by hand: removed, not what an operator wrote (its digest; a Lease from before digests has none)
    damaged = raw is None or (DIGEST in annotations and annotations[DIGEST] != digest(raw))
    entries: dict[str, Reservation] = {}
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        data, damaged = {}, True
    if not isinstance(data, dict):
        data, damaged = {}, True
    for uid, e in data.items():
        try:
            entries[str(uid)] = Reservation(int(e["replicas"]), str(e.get("holder", "")), float(e["until"]))
        except (KeyError, TypeError, ValueError):
            damaged = True
    version = str(meta.get("resourceVersion") or "") or None
    return Shared(version, entries, damaged=damaged, settling=annotations.get(SETTLING) == "true")


def _encode(entries: Mapping[str, Reservation]) -> str:
    out = {u: {"replicas": e.replicas, "holder": e.holder, "until": round(e.until, 3)} for u, e in entries.items()}
    return json.dumps(out, sort_keys=True)


class LeaseCapStore:
    """reservations.CapStore as Leases of the primary (RBAC: leases get, create, update in the Secret's namespace)."""

    def __init__(self, api: ApiClient, holder: str | None = None) -> None:
        self._leases = CoordinationV1Api(api)
        self.holder = holder or identity()

    def read(self, namespace: str, target: str) -> Shared:
        try:
            resp: Any = self._leases.read_namespaced_lease(
                lease_name(target), namespace, _preload_content=False, _request_timeout=TIMEOUT
            )
        except ApiException as err:
            if err.status == 404:
                return Shared(None, {})
            raise CapStoreError(f"HTTP {err.status} {err.reason}") from None
        except Exception as err:  # timeouts, connection refused
            raise CapStoreError(type(err).__name__) from None
        return _decode(json.loads(resp.data))

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
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        encoded = _encode(entries)
        annotations = {RESERVATIONS: encoded, DIGEST: digest(encoded)} | ({SETTLING: "true"} if settling else {})
        body: dict[str, Any] = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": lease_name(target),
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "overspill", TARGET_LABEL: target[:63].rstrip("-.")},
                "annotations": annotations,
            },
            "spec": {"holderIdentity": self.holder, "renewTime": now, "leaseDurationSeconds": lease_seconds},
        }
        if owner:  # deleted with its BurstTarget by the garbage collector (a namespaced dependent of a cluster object)
            body["metadata"]["ownerReferences"] = [
                {"apiVersion": f"{GROUP}/{VERSION}", "kind": "BurstTarget", "name": target, "uid": owner}
            ]
        resp: Any
        try:
            if base.version is None:
                resp = self._leases.create_namespaced_lease(
                    namespace,
                    body,  # type: ignore[arg-type]
                    _preload_content=False,
                    _request_timeout=TIMEOUT,
                )
            else:
                body["metadata"]["resourceVersion"] = base.version  # the compare in compare-and-swap
                resp = self._leases.replace_namespaced_lease(
                    lease_name(target),
                    namespace,
                    body,  # type: ignore[arg-type]
                    _preload_content=False,
                    _request_timeout=TIMEOUT,
                )
        except ApiException as err:
            # 409: changed since read (or created meanwhile); 404: deleted since read
            if err.status in (404, 409):
                raise CapConflict(target) from None
            raise CapStoreError(f"HTTP {err.status} {err.reason}") from None
        except Exception as err:
            raise CapStoreError(type(err).__name__) from None
        return _decode(json.loads(resp.data))
