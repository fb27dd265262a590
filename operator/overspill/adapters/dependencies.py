"""The objects a burst carries, in the clusters: read the sources and the targets' same-named objects, write the
copies a `carry.plan` asks for, and remove a policy's copies by label.

Reads take a `Lookup` (name -> object or None) so the same plan runs on watch-fed views or on direct GETs. Writes
are conditional: an update names the resourceVersion it was planned from, so an object someone else created or
changed in between is never overwritten (the API answers 409 and the next poll re-plans).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kubernetes import client
from kubernetes.client import ApiException

from overspill.adapters.kube import TIMEOUT, Cluster
from overspill.carry import (
    MANAGED_BY,
    MANAGER,
    POLICY_UID,
    Item,
    Kind,
    Observed,
    Reference,
    State,
    is_managed,
    observe_users,
    owners,
    sharers,
    with_owners,
)

# ServiceAccount before the Secrets it names, ConfigMaps and Secrets before the pods that mount them
_METHOD = {
    Kind.CONFIG_MAP: "config_map",
    Kind.SECRET: "secret",
    Kind.SERVICE_ACCOUNT: "service_account",
    Kind.PVC: "persistent_volume_claim",
}
CARRIED_KINDS = (Kind.SERVICE_ACCOUNT, Kind.CONFIG_MAP, Kind.SECRET)
# Dynamic Resource Allocation objects, only looked for (GET) in targets
DRA_GROUP, DRA_VERSION = "resource.k8s.io", "v1"
_DRA_PLURAL = {Kind.RESOURCE_CLAIM: "resourceclaims", Kind.RESOURCE_CLAIM_TEMPLATE: "resourceclaimtemplates"}

Lookup = Callable[[Kind, str], Mapping[str, Any] | None]


def read_object(cluster: Cluster, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
    """One object as plain JSON (camelCase, as the API serves it), or None when absent (a DRA object where the
    cluster does not serve resource.k8s.io/v1 too: a claim cannot be satisfied there)."""
    try:
        if kind in _DRA_PLURAL:
            found = cluster.custom.get_namespaced_custom_object(
                DRA_GROUP, DRA_VERSION, namespace, _DRA_PLURAL[kind], name, _request_timeout=TIMEOUT
            )
            return dict(found) if isinstance(found, dict) else None
        read = getattr(cluster.core, f"read_namespaced_{_METHOD[kind]}")
        resp = read(name, namespace, _preload_content=False, _request_timeout=TIMEOUT)
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    obj: dict[str, Any] = json.loads(resp.data)
    return obj


def direct_lookup(cluster: Cluster, namespace: str) -> Lookup:
    """A Lookup by GET (memoised for one reconcile), for clusters without a synced view."""
    seen: dict[tuple[Kind, str], Mapping[str, Any] | None] = {}

    def lookup(kind: Kind, name: str) -> Mapping[str, Any] | None:
        if (kind, name) not in seen:
            seen[(kind, name)] = read_object(cluster, kind, namespace, name)
        return seen[(kind, name)]

    return lookup


def gather(refs: Iterable[Reference], lookup: Lookup) -> dict[tuple[Kind, str], Mapping[str, Any] | None]:
    return {r.key: lookup(r.kind, r.name) for r in refs}


def list_managed(cluster: Cluster, kind: Kind, namespace: str) -> list[dict[str, Any]]:
    """Every object of `kind` Overspill manages in the namespace (by its label: check `is_managed` and the owners
    before acting on one)."""
    found = json.loads(
        getattr(cluster.core, f"list_namespaced_{_METHOD[kind]}")(
            namespace, label_selector=f"{MANAGED_BY}={MANAGER}", _preload_content=False, _request_timeout=TIMEOUT
        ).data
    )
    return list(found.get("items") or [])


def namespace_missing(err: ApiException) -> bool:
    if err.status != 404:
        return False
    try:
        details = json.loads(err.body or "{}").get("details") or {}
    except ValueError:
        return False
    return details.get("kind") == "namespaces"


class DependencyWriter:
    """Writes one target's copies. `ensure_namespace` creates the mirror's namespace when the API says it is missing."""

    def __init__(self, cluster: Cluster, ensure_namespace: Callable[[str], None]) -> None:
        self.cluster = cluster
        self.ensure_namespace = ensure_namespace

    def write(self, item: Item) -> None:
        assert item.body is not None
        meta = item.body["metadata"]
        method = _METHOD[item.ref.kind]
        if item.update:
            replace = getattr(self.cluster.core, f"replace_namespaced_{method}")
            replace(meta["name"], meta["namespace"], item.body, _request_timeout=TIMEOUT)
            return
        if item.precondition is not None:  # an immutable copy whose source changed: it cannot be updated
            uid, version = item.precondition
            self._delete(item.ref.kind, meta["name"], meta["namespace"], uid, version)
        create = getattr(self.cluster.core, f"create_namespaced_{method}")
        try:
            create(meta["namespace"], item.body, _request_timeout=TIMEOUT)
        except ApiException as err:
            if not namespace_missing(err):
                raise
            self.ensure_namespace(meta["namespace"])
            create(meta["namespace"], item.body, _request_timeout=TIMEOUT)

    def remove(self, item: Item, namespace: str) -> None:
        """A revoked copy is deleted (on the condition that it is still the object that was read: a 409 when
        someone replaced it meanwhile); a shared one only loses this policy from its owners. Gone is fine."""
        if item.state == State.LEFT:
            assert item.body is not None
            self.write(item)
            return
        uid, version = item.precondition or (None, None)
        self._delete(item.ref.kind, item.ref.name, namespace, uid, version)

    def _delete(self, kind: Kind, name: str, namespace: str, uid: str | None, version: str | None) -> None:
        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid, resource_version=version))
        try:
            getattr(self.cluster.core, f"delete_namespaced_{_METHOD[kind]}")(
                name, namespace, body=options, _request_timeout=TIMEOUT
            )
        except ApiException as err:
            if err.status != 404:
                raise

    def _observe(self, namespace: str, service_accounts: list[dict[str, Any]]) -> Observed:
        """The mirrors in the namespace and what they use (their ServiceAccounts as listed: only copies carry pull
        secrets Overspill must account for; the target's own ServiceAccounts are read if a mirror names one)."""
        apps: Any = self.cluster.apps  # raw JSON (_preload_content=False), as the API serves it
        mirrors = json.loads(
            apps.list_namespaced_deployment(
                namespace, label_selector=f"{MANAGED_BY}={MANAGER}", _preload_content=False, _request_timeout=TIMEOUT
            ).data
        )
        by_name = {str((sa.get("metadata") or {}).get("name")): sa for sa in service_accounts}

        def service_account(name: str) -> Mapping[str, Any] | None:
            if name not in by_name:
                by_name[name] = read_object(self.cluster, Kind.SERVICE_ACCOUNT, namespace, name) or {}
            return by_name[name] or None

        return observe_users(mirrors.get("items") or [], service_account)

    def write_all(self, items: Iterable[Item]) -> None:
        order = {k: i for i, k in enumerate(CARRIED_KINDS)}
        for item in sorted(items, key=lambda i: order.get(i.ref.kind, 99)):
            self.write(item)

    def remove_policy_copies(self, namespace: str, policy_uid: str) -> int:
        """Remove this policy from every copy in the namespace that lists it as an owner (found by Overspill's
        label, never by the current spec: a template edited since the copy was made must not orphan it). A copy
        with no owner left is deleted, on the condition that it is the object read; a shared one is kept for the
        policies still listed. Secrets first: a failure leaves the watched kinds, which find the namespace again.

        Who else a copy serves is read from the mirrors in the namespace (`carry.sharers`), not from the annotation
        alone: an annotation stripped by hand must not delete a copy another policy's pods mount, and one naming a
        policy released by hand must not keep a Secret copy for good."""
        removed = 0
        listed = {kind: list_managed(self.cluster, kind, namespace) for kind in (Kind.SECRET, Kind.CONFIG_MAP)}
        listed[Kind.SERVICE_ACCOUNT] = list_managed(self.cluster, Kind.SERVICE_ACCOUNT, namespace)
        observed = self._observe(namespace, listed[Kind.SERVICE_ACCOUNT])
        for kind in (Kind.SECRET, Kind.CONFIG_MAP, Kind.SERVICE_ACCOUNT):
            for obj in listed[kind]:
                held = owners(obj)
                if not is_managed(obj) or policy_uid not in held:
                    continue  # never trust the selector alone with a delete
                meta = obj.get("metadata") or {}
                others = sharers(obj, (kind, str(meta.get("name"))), policy_uid, observed)
                if others:
                    body = with_owners(obj, others)
                    if (meta.get("labels") or {}).get(POLICY_UID) not in others:
                        body["metadata"]["labels"][POLICY_UID] = min(others)
                    ref = Reference(kind, meta["name"], "cleanup")
                    self.write(Item(ref, State.LEFT, body, update=True))
                else:
                    self._delete(kind, meta["name"], namespace, meta.get("uid"), meta.get("resourceVersion"))
                removed += 1
        return removed
