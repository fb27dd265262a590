"""Kubernetes access: one ApiClient per cluster; the primary's workload through its scale subresource.

Clients are synchronous (the official client); the reconciler runs them in worker threads.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client import ApiClient

from overspill.decide.busy import Candidate

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
TIMEOUT = (3, 10)  # connect, read: an unreachable server must not stall the loop


def primary_client(kubeconfig: str | None = None) -> ApiClient:
    """KUBECONFIG (or the given file), else in-cluster config."""
    try:
        api: ApiClient = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        api = ApiClient()
    return api


@dataclass(frozen=True)
class PodInfo:
    name: str
    ready: bool
    unschedulable_since: dt.datetime | None
    annotations: dict[str, str]
    labels: dict[str, str]
    deleting: bool
    scheduled: bool = False  # bound to a node
    phase: str = ""
    ready_condition: bool = False  # its Ready condition alone, as the ReplicaSet ranks it (`ready` needs Running)
    finished: bool = False  # Succeeded or Failed: no controller counts it

    def candidate(self, ordinal: int | None = None) -> Candidate:
        """The pod as its controller ranks it for removal."""
        return Candidate(
            name=self.name,
            assigned=self.scheduled,
            phase=self.phase,
            ready=self.ready_condition,
            cost=_cost(self.annotations.get(DELETION_COST)),
            ordinal=ordinal,
        )


def _cost(value: str | None) -> int:
    """pod-deletion-cost as the controller reads it: a base-10 int32, anything else 0."""
    if value is None or not re.fullmatch(r"[+-]?[0-9]+", value):
        return 0
    cost = int(value)
    return cost if -(2**31) <= cost < 2**31 else 0


_PLURALS = {
    ("apps/v1", "Deployment"): "deployments",
    ("apps/v1", "StatefulSet"): "statefulsets",
    ("apps/v1", "ReplicaSet"): "replicasets",
}


def _timestamp(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def pod_info(pod: dict[str, Any]) -> PodInfo:
    """What the decision needs of a pod, from the pod as the API serves it (a plain dict, as views hold it)."""
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    conds = status.get("conditions") or []
    phase = status.get("phase")
    ready = phase == "Running" and any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
    since = None
    if phase == "Pending":
        for c in conds:
            if c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("reason") == "Unschedulable":
                since = _timestamp(c.get("lastTransitionTime")) or _timestamp(meta.get("creationTimestamp"))
    return PodInfo(
        name=str(meta.get("name", "")),
        ready=ready,
        unschedulable_since=since,
        annotations=dict(meta.get("annotations") or {}),
        labels=dict(meta.get("labels") or {}),
        deleting=meta.get("deletionTimestamp") is not None,
        scheduled=bool(spec.get("nodeName")) and phase not in ("Succeeded", "Failed"),
        phase=str(phase or ""),
        ready_condition=any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds),
        finished=phase in ("Succeeded", "Failed"),
    )


@dataclass(frozen=True)
class ScalePaths:
    """A custom kind as a watch can read its scale: where its replicas are and where its pod selector (a string,
    as /scale serves it) is; an empty selector path: the kind declares none."""

    group: str
    version: str
    plural: str
    namespaced: bool
    replicas: tuple[str, ...]
    selector: tuple[str, ...]

    def read(self, obj: dict[str, Any]) -> tuple[int, str] | None:
        """(replicas, selector) as GET /scale would answer: a missing field is 0 or no selector, as the API server
        says. None where /scale would answer an error (a value of another type: a CRD keeping unknown fields lets
        one in), so the caller asks /scale and reports its error rather than scaling from a guess."""
        value = _follow(obj, self.replicas)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            return None
        text = _follow(obj, self.selector) if self.selector else None
        if text is not None and not isinstance(text, str):
            return None
        return value or 0, text or ""


def _dotted(path: Any) -> tuple[str, ...] | None:
    """`.spec.replicas` as ("spec", "replicas"); None for what is not a plain dotted path (array notation)."""
    if not isinstance(path, str) or not path.startswith(".") or any(c in path for c in "[]*'\" "):
        return None
    parts = tuple(path[1:].split("."))
    return parts if all(parts) else None


def _follow(obj: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


class Cluster:
    """One cluster's API, with the few calls Overspill makes."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self._plurals = dict(_PLURALS)

    def version(self, timeout: float = 5.0) -> str:
        info = client.VersionApi(self.api).get_code(_request_timeout=timeout)
        return str(info.git_version)

    def _plural(self, api_version: str, kind: str) -> str:
        key = (api_version, kind)
        if key not in self._plurals:
            path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            method, url, headers, _, _ = self.api.param_serialize("GET", path, auth_settings=["BearerToken"])
            resp = self.api.call_api(method, url, header_params=headers, _request_timeout=TIMEOUT)
            resp.read()  # type: ignore[no-untyped-call]
            for r in json.loads(resp.data or b"{}").get("resources", []):
                if r.get("kind") == kind and "/" not in r.get("name", ""):
                    self._plurals[key] = r["name"]
                    break
            else:
                raise LookupError(f"{kind} is not served under {api_version}")
        return self._plurals[key]

    def _get_json(self, path: str, query: list[tuple[str, str]] | None = None) -> Any:
        method, url, headers, _, _ = self.api.param_serialize(
            "GET", path, query_params=query or [], auth_settings=["BearerToken"]
        )
        resp = self.api.call_api(method, url, header_params=headers, _request_timeout=TIMEOUT)
        resp.read()  # type: ignore[no-untyped-call]
        if resp.status >= 400:
            raise client.ApiException(status=resp.status, reason=resp.reason)
        return json.loads(resp.data or b"{}")

    def scale_paths(self, api_version: str, kind: str) -> ScalePaths | None:
        """Where a custom kind keeps what its /scale subresource shows, from its CRD, so that a watch of the kind
        can answer what a GET of /scale would. None when a view cannot: not a CRD (an aggregated API), no scale
        subresource, or paths a view does not follow (the API server follows them; we keep its GET).
        Raises ApiException when the CRD cannot be listed (RBAC: customresourcedefinitions list)."""
        group, version, plural = self._gvp(api_version, kind)
        name = f"{plural}.{group}"
        found = self._get_json(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", [("fieldSelector", f"metadata.name={name}")]
        )
        for crd in found.get("items") or []:
            if (crd.get("metadata") or {}).get("name") != name:  # a server that ignores the field selector
                continue
            spec = crd.get("spec") or {}
            for v in spec.get("versions") or []:
                if v.get("name") != version:
                    continue
                scale = (v.get("subresources") or {}).get("scale")
                if not scale:
                    return None
                replicas = _dotted(scale.get("specReplicasPath"))
                selector = _dotted(scale.get("labelSelectorPath")) if scale.get("labelSelectorPath") else ()
                if not replicas or selector is None:
                    return None
                return ScalePaths(group, version, plural, spec.get("scope") != "Cluster", replicas, selector)
        return None

    def _gvp(self, api_version: str, kind: str) -> tuple[str, str, str]:
        if "/" not in api_version:
            raise LookupError(f"{kind} in the core group ({api_version}) is not supported; use apps/v1 or a CRD")
        group, version = api_version.split("/", 1)
        return group, version, self._plural(api_version, kind)

    def read_scale(self, api_version: str, kind: str, namespace: str, name: str) -> tuple[int, str]:
        group, version, plural = self._gvp(api_version, kind)
        scale: Any = self.custom.get_namespaced_custom_object_scale(
            group, version, namespace, plural, name, _request_timeout=TIMEOUT
        )
        return int(scale.get("spec", {}).get("replicas") or 0), str(scale.get("status", {}).get("selector") or "")

    def write_scale(self, api_version: str, kind: str, namespace: str, name: str, replicas: int) -> None:
        group, version, plural = self._gvp(api_version, kind)
        self.custom.patch_namespaced_custom_object_scale(
            group, version, namespace, plural, name, {"spec": {"replicas": replicas}}, _request_timeout=TIMEOUT
        )

    def read_workload(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
        group, version, plural = self._gvp(api_version, kind)
        obj: Any = self.custom.get_namespaced_custom_object(
            group, version, namespace, plural, name, _request_timeout=TIMEOUT
        )
        return dict(obj)

    def set_deletion_cost(self, namespace: str, pod: str, cost: int) -> None:
        """A pod gone meanwhile (a rollout replaces pods between two polls) needs no cost: not an error, which
        would stop the rest of the poll (the pause of that very rollout among it)."""
        try:
            self.core.patch_namespaced_pod(
                pod, namespace, {"metadata": {"annotations": {DELETION_COST: str(cost)}}}, _request_timeout=TIMEOUT
            )
        except client.ApiException as err:
            if err.status != 404:
                raise
