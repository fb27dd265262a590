"""Traffic objects: the burst Service and its ServiceExport in each target, the HTTPRoute's weights in the primary.

Same ownership rule as the mirror: Overspill creates, changes and deletes only objects labelled as its own for
this policy; anything else with the name is a conflict, reported and left alone.
"""

from __future__ import annotations

import copy
import json
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiException

from overspill.adapters.dependencies import namespace_missing
from overspill.adapters.kube import TIMEOUT, Cluster
from overspill.carry import MANAGED_BY, MANAGER, ORIGIN, POLICY_UID
from overspill.decide.weights import parse_record

MCS_GROUP = "multicluster.x-k8s.io"
# per group, the ServiceExport versions in order of preference: v1alpha1 first for the MCS API (what Submariner and
# Cilium serve today), v1 for GKE's own group
EXPORT_VERSIONS = {MCS_GROUP: ("v1alpha1", "v1beta1"), "net.gke.io": ("v1",)}
SERVICE_EXPORTS = "serviceexports"
SERVICE_IMPORTS = "serviceimports"
GATEWAY_GROUP, GATEWAY_VERSION, HTTPROUTES = "gateway.networking.k8s.io", "v1", "httproutes"
DISCOVERY_TTL = 60.0  # a CRD installed later is noticed within a minute
# on the burst Service: the group of its ServiceExport, so cleanup finds an export in any group the policy used
EXPORT_GROUP = "overspill.dev/export-group"
# on the burst Service: the annotation keys Overspill wrote there (comma-separated; a key has no comma), so that one
# taken out of spec.traffic.serviceAnnotations leaves the Service, and an annotation someone else put there stays
WRITTEN_ANNOTATIONS = "overspill.dev/annotations"
# on the HTTPRoute, one per policy: the backendRefs Overspill wrote for it (decide.weights.Record, as JSON)
ROUTE_RECORD = "overspill.dev/backends."


ROUTE_LOCAL = "overspill.dev/local."  # per policy: `<namespace>/<name>` of its local Service in the route


def route_record_key(policy_uid: str) -> str:
    return f"{ROUTE_RECORD}{policy_uid}"


def route_local_key(policy_uid: str) -> str:
    return f"{ROUTE_LOCAL}{policy_uid}"


def route_peers(annotations: Mapping[str, str], policy_uid: str) -> set[tuple[str, str, str]]:
    """The backendRefs other policies wrote in the route, as their annotations say: their imports (records) and
    their local Services (`("", namespace, name)`)."""
    peers: set[tuple[str, str, str]] = set()
    for key, value in annotations.items():
        if key.startswith(ROUTE_RECORD) and key != route_record_key(policy_uid):
            peers |= set(parse_record(value))
        elif key.startswith(ROUTE_LOCAL) and key != route_local_key(policy_uid) and "/" in (value or ""):
            namespace, name = value.split("/", 1)
            peers.add(("", namespace, name))
    return peers


class TrafficConflict(Exception):
    """An object with the burst Service's or ServiceExport's name exists and Overspill did not create it."""


def _owned(obj: Mapping[str, Any] | None, policy_uid: str) -> bool:
    labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
    return labels.get(MANAGED_BY) == MANAGER and labels.get(POLICY_UID) == policy_uid


def _meta(
    name: str, namespace: str, policy_uid: str, origin: str, annotations: Mapping[str, str] | None
) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": {MANAGED_BY: MANAGER, POLICY_UID: policy_uid},
        "annotations": {**(annotations or {}), ORIGIN: origin},
    }


def burst_service(
    primary: Mapping[str, Any],
    *,
    name: str,
    namespace: str,
    policy_uid: str,
    origin: str,
    annotations: Mapping[str, str] | None = None,
    extra_selector: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A ClusterIP Service in the target with the primary Service's ports, selecting the mirror's pods (they carry
    the workload template's labels, so the primary Service's selector matches them)."""
    spec = primary.get("spec") or {}
    selector = dict(spec.get("selector") or {})
    if not selector:
        raise ValueError(
            f"Service {namespace}/{(primary.get('metadata') or {}).get('name')} has no selector: a burst Service "
            "cannot select the mirror's pods; give the primary Service a selector"
        )
    ports = []
    for p in spec.get("ports") or []:
        port = {k: copy.deepcopy(p[k]) for k in ("name", "port", "targetPort", "protocol", "appProtocol") if k in p}
        ports.append(port)
    meta = _meta(name, namespace, policy_uid, origin, annotations)
    meta["annotations"][WRITTEN_ANNOTATIONS] = ",".join(sorted(meta["annotations"]))
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"type": "ClusterIP", "selector": {**selector, **(extra_selector or {})}, "ports": ports},
    }


def service_export(
    name: str, namespace: str, policy_uid: str, origin: str, version: str, group: str = MCS_GROUP
) -> dict[str, Any]:
    return {
        "apiVersion": f"{group}/{version}",
        "kind": "ServiceExport",
        "metadata": _meta(name, namespace, policy_uid, origin, None),
    }


@dataclass(frozen=True)
class ExportState:
    state: str  # Exported | Pending | Conflict | Invalid
    message: str


def export_state(obj: Mapping[str, Any]) -> ExportState:
    """Read the MCS controller's verdict from the ServiceExport's conditions (MCS API: Valid, Ready, Conflict;
    GKE: Initialized, Exported, Conflict)."""
    conds = {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or []}
    conflict = conds.get("Conflict")
    exported, valid, ready = conds.get("Exported"), conds.get("Valid"), conds.get("Ready")
    serving = (exported is not None and exported.get("status") == "True") or (
        valid is not None and valid.get("status") == "True" and (ready is None or ready.get("status") == "True")
    )
    if conflict and conflict.get("status") == "True":
        why = conflict.get("message") or "the export conflicts with another cluster's"
        if serving:
            # KEP-1645: a conflict is resolved by the oldest export and the service stays exported: its replicas
            # still receive requests, so they keep their weight; the conflict is shown, not treated as an outage
            return ExportState("Exported", f"exported despite a conflict (resolved by the oldest export): {why}")
        return ExportState("Conflict", why)
    if serving:
        return ExportState("Exported", "")
    if valid and valid.get("status") == "False":
        return ExportState("Invalid", valid.get("message") or valid.get("reason") or "the export is not valid")
    if not conds:
        return ExportState("Pending", "no multi-cluster controller has reported on the ServiceExport yet")
    waiting = ready or valid or exported
    return ExportState("Pending", (waiting or {}).get("message") or "waiting for the multi-cluster controller")


_MCS_SEEN: weakref.WeakKeyDictionary[Cluster, dict[str, tuple[float, str | None]]] = weakref.WeakKeyDictionary()


def _ports(ports: Any) -> list[dict[str, Any]]:
    """Ports as the API server stores them (protocol TCP and targetPort = port by default): no write for a
    difference the server itself would erase."""
    out = []
    for p in ports or []:
        port = {k: p[k] for k in ("name", "port", "targetPort", "protocol", "appProtocol") if k in p}
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
        out.append(port)
    return out


def _annotations(have: Mapping[str, str], want: Mapping[str, str]) -> dict[str, str]:
    """The burst Service's annotations: everyone else's as they are, Overspill's exactly as wanted (those it wrote
    before and no longer wants removed, as its record on the Service says)."""
    written = set((have.get(WRITTEN_ANNOTATIONS) or "").split(","))
    return {**{k: v for k, v in have.items() if k not in written}, **want}


def _service_differs(have: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
    """Whether the Service `have` differs from `want` in what Overspill owns of it: ports, selector, type and its
    own annotations (fields the API server fills in, or someone else's, are not compared)."""
    spec, wanted = have.get("spec") or {}, want["spec"]
    have_ann = (have.get("metadata") or {}).get("annotations") or {}
    return (
        spec.get("selector") != wanted["selector"]
        or _ports(spec.get("ports")) != _ports(wanted["ports"])
        or (spec.get("type") or "ClusterIP") != wanted["type"]
        or _annotations(have_ann, want["metadata"]["annotations"]) != have_ann
    )


def _replacement(have: Mapping[str, Any], want: Mapping[str, Any]) -> dict[str, Any]:
    """`have` (as just read) with Overspill's part set to `want`: a replace (PUT) removes a port, a selector key or
    an annotation, where a merge patch only adds (a strategic merge keys ports by number: port 80 moved to 8080
    would stay beside it). The rest is kept: clusterIP(s), ipFamilies, others' labels and annotations; the
    resourceVersion read makes the write conditional (409 if someone wrote in between)."""
    obj = copy.deepcopy(dict(have))
    obj.pop("status", None)
    meta = obj.setdefault("metadata", {})
    meta.pop("managedFields", None)  # omitted: the server keeps the field managers as they are
    meta["annotations"] = _annotations(meta.get("annotations") or {}, want["metadata"]["annotations"])
    obj["spec"] = {
        **(obj.get("spec") or {}),
        **{k: copy.deepcopy(want["spec"][k]) for k in ("type", "selector", "ports")},
    }
    return obj


def _json(resp: Any) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(resp.data or b"{}")
    return out


class TrafficClient:
    """One target's burst Service and ServiceExport."""

    def __init__(self, cluster: Cluster, clock: Any = time.monotonic) -> None:
        self.cluster = cluster
        self.clock = clock

    def mcs_version(self, group: str = MCS_GROUP) -> str | None:
        """The ServiceExport version the target serves in `group`, None without it (cached for a minute)."""
        seen = _MCS_SEEN.setdefault(self.cluster, {})
        if group in seen and self.clock() - seen[group][0] < DISCOVERY_TTL:
            return seen[group][1]
        found: str | None = None
        try:
            info = self._get(f"/apis/{group}")
        except ApiException as err:
            if err.status != 404:
                raise
        else:
            served = {v.get("version") for v in info.get("versions") or []}
            preferred = (info.get("preferredVersion") or {}).get("version")
            known = EXPORT_VERSIONS.get(group, ("v1alpha1", "v1beta1", "v1", *((preferred,) if preferred else ())))
            found = next((v for v in known if v in served), None)
        seen[group] = (self.clock(), found)
        return found

    def import_version(self, group: str = MCS_GROUP) -> str | None:
        """The version of `group` whose resources include ServiceImports in this cluster (the primary, where a route
        names them), None when it serves none (cached for a minute like `mcs_version`)."""
        seen = _MCS_SEEN.setdefault(self.cluster, {})
        key = f"{SERVICE_IMPORTS}.{group}"
        if key in seen and self.clock() - seen[key][0] < DISCOVERY_TTL:
            return seen[key][1]
        found: str | None = None
        version = self.mcs_version(group)
        if version is not None:
            try:
                listed = self._get(f"/apis/{group}/{version}")
            except ApiException as err:
                if err.status != 404:
                    raise
            else:
                names = {r.get("name") for r in listed.get("resources") or []}
                found = version if SERVICE_IMPORTS in names else None
        seen[key] = (self.clock(), found)
        return found

    def _get(self, path: str) -> dict[str, Any]:
        api = self.cluster.api
        method, url, headers, _, _ = api.param_serialize("GET", path, auth_settings=["BearerToken"])
        resp = api.call_api(method, url, header_params=headers, _request_timeout=TIMEOUT)
        resp.read()  # type: ignore[no-untyped-call]
        if resp.status == 404:
            raise ApiException(status=404, reason="Not Found")
        if resp.status >= 400:
            raise ApiException(status=resp.status, reason=resp.reason)
        return _json(resp)

    def read_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return _json(
                self.cluster.core.read_namespaced_service(
                    name, namespace, _preload_content=False, _request_timeout=TIMEOUT
                )
            )
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def apply_service(
        self,
        body: dict[str, Any],
        existing: Mapping[str, Any] | None,
        policy_uid: str,
        ensure_namespace: Callable[[str], None] | None = None,
    ) -> bool:
        """Create the burst Service or bring ours up to date; True when something was written. The namespace is
        created (through `ensure_namespace`) only when the API says it is missing. `existing` (from a view or a
        GET) says whether a write is needed; the write itself replaces the Service as read again just before (a
        view's copy lacks fields no reader needs, which a replace would drop), on its resourceVersion: a 409
        (someone wrote in between) writes nothing, and the next poll compares again."""
        meta = body["metadata"]
        core: Any = self.cluster.core  # the body is a plain dict (camelCase), as the API serves it
        if existing is None:
            try:
                core.create_namespaced_service(meta["namespace"], body, _request_timeout=TIMEOUT)
            except ApiException as err:
                if ensure_namespace is None or not namespace_missing(err):
                    raise
                ensure_namespace(meta["namespace"])
                core.create_namespaced_service(meta["namespace"], body, _request_timeout=TIMEOUT)
            return True
        self._own(existing, policy_uid, meta)
        if not _service_differs(existing, body):
            return False
        fresh = self.read_service(meta["namespace"], meta["name"])
        if fresh is None:
            return self.apply_service(body, None, policy_uid, ensure_namespace)
        self._own(fresh, policy_uid, meta)
        if not _service_differs(fresh, body):
            return False  # the view was behind
        try:
            core.replace_namespaced_service(
                meta["name"], meta["namespace"], _replacement(fresh, body), _request_timeout=TIMEOUT
            )
        except ApiException as err:
            if err.status == 409:
                return False
            raise
        return True

    @staticmethod
    def _own(existing: Mapping[str, Any], policy_uid: str, meta: Mapping[str, Any]) -> None:
        if not _owned(existing, policy_uid):
            raise TrafficConflict(
                f"Service {meta['namespace']}/{meta['name']} exists in the target and was not created by Overspill: "
                "left untouched; rename it or set spec.traffic.exportName"
            )

    def read_export(self, version: str, namespace: str, name: str, group: str = MCS_GROUP) -> dict[str, Any] | None:
        return self._read(group, version, namespace, SERVICE_EXPORTS, name)

    def read_import(self, version: str, namespace: str, name: str, group: str = MCS_GROUP) -> dict[str, Any] | None:
        return self._read(group, version, namespace, SERVICE_IMPORTS, name)

    def _read(self, group: str, version: str, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
        try:
            obj: Any = self.cluster.custom.get_namespaced_custom_object(
                group, version, namespace, plural, name, _request_timeout=TIMEOUT
            )
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return dict(obj)

    def ensure_export(self, body: dict[str, Any], existing: Mapping[str, Any] | None, policy_uid: str) -> bool:
        meta = body["metadata"]
        if existing is not None:
            if not _owned(existing, policy_uid):
                raise TrafficConflict(
                    f"ServiceExport {meta['namespace']}/{meta['name']} exists in the target and was not created by "
                    "Overspill: left untouched; rename it or set spec.traffic.exportName"
                )
            return False
        group, version = body["apiVersion"].split("/", 1)
        self.cluster.custom.create_namespaced_custom_object(
            group, version, meta["namespace"], SERVICE_EXPORTS, body, _request_timeout=TIMEOUT
        )
        return True

    def remove_policy_objects(self, namespace: str, policy_uid: str) -> int:
        """Delete this policy's ServiceExports (in the known export groups and in any group its burst Services
        name) and then its Services, found by label: a failure leaves the Service, which finds the export again."""
        selector = f"{MANAGED_BY}={MANAGER},{POLICY_UID}={policy_uid}"
        services = _json(
            self.cluster.core.list_namespaced_service(
                namespace, label_selector=selector, _preload_content=False, _request_timeout=TIMEOUT
            )
        )
        ours = [svc for svc in services.get("items") or [] if _owned(svc, policy_uid)]
        groups = dict.fromkeys(EXPORT_VERSIONS)
        for svc in ours:
            group = ((svc.get("metadata") or {}).get("annotations") or {}).get(EXPORT_GROUP)
            if group:
                groups[group] = None
        removed = 0
        for group in groups:
            removed += self._remove_exports(group, namespace, policy_uid, selector)
        for svc in ours:
            removed += self._delete(
                lambda n=svc["metadata"]["name"]: self.cluster.core.delete_namespaced_service(
                    n, namespace, _request_timeout=TIMEOUT
                )
            )
        return removed

    def _remove_exports(self, group: str, namespace: str, policy_uid: str, selector: str) -> int:
        version = self.mcs_version(group)
        if version is None:
            return 0
        found: Any = self.cluster.custom.list_namespaced_custom_object(
            group, version, namespace, SERVICE_EXPORTS, label_selector=selector, _request_timeout=TIMEOUT
        )
        removed = 0
        for obj in found.get("items") or []:
            if not _owned(obj, policy_uid):
                continue  # never trust the selector alone with a delete
            removed += self._delete(
                lambda n=obj["metadata"]["name"]: self.cluster.custom.delete_namespaced_custom_object(
                    group, version, namespace, SERVICE_EXPORTS, n, _request_timeout=TIMEOUT
                )
            )
        return removed

    @staticmethod
    def _delete(call: Any) -> int:
        try:
            call()
        except ApiException as err:
            if err.status != 404:
                raise
            return 0
        return 1


class RouteClient:
    """The policy's HTTPRoute in the primary: read it, write its rules' weights (conditional on what was read)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def read(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj: Any = self.cluster.custom.get_namespaced_custom_object(
                GATEWAY_GROUP, GATEWAY_VERSION, namespace, HTTPROUTES, name, _request_timeout=TIMEOUT
            )
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return dict(obj)

    def write_rules(
        self,
        route: Mapping[str, Any],
        rules: Sequence[Mapping[str, Any]],
        annotations: Mapping[str, str | None] | None = None,
    ) -> None:
        """Rules and annotations (None: removed) in one merge patch, on the condition that the route is still the
        one read (resourceVersion): the weights and the record of what Overspill wrote never part."""
        meta = route.get("metadata") or {}
        head: dict[str, Any] = {"resourceVersion": meta.get("resourceVersion")}
        if annotations:
            head["annotations"] = dict(annotations)
        body = {"metadata": head, "spec": {"rules": list(rules)}}
        self.cluster.custom.patch_namespaced_custom_object(
            GATEWAY_GROUP, GATEWAY_VERSION, meta["namespace"], HTTPROUTES, meta["name"], body, _request_timeout=TIMEOUT
        )
