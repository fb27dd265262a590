"""The mirror: a Deployment in a target cluster that carries a policy's overflow replicas.

Ownership is explicit: Overspill only changes or deletes objects that carry its managed-by label and the
policy's uid. Anything else with the same name is a conflict, reported, never touched.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client import ApiException

from overspill.adapters.kube import TIMEOUT, Cluster, PodInfo, pod_info
from overspill.api.policy import TargetOverrides
from overspill.carry import with_volume_overrides

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "overspill"
POLICY_UID = "overspill.dev/policy-uid"
ORIGIN_CLUSTER = "overspill.dev/origin-cluster"
ORIGIN_NAMESPACE = "overspill.dev/origin-namespace"
ORIGIN_POLICY = "overspill.dev/origin-policy"
TEMPLATE_HASH = "overspill.dev/template-hash"
DRIFT_STREAK = "overspill.dev/drift-backoff"  # the drift corrections' backoff (decide/drift.py), kept over restarts
TARGET_NAME = "overspill.dev/target"  # the BurstTarget that placed the mirror (two targets may name one cluster)
# set with spec.paused while Overspill holds the mirror's rollout because runners are busy: its own pause, not drift
PAUSED_WHILE_BUSY = "overspill.dev/paused-while-busy"
FIELD_MANAGER = "overspill"  # our writes in the mirror's managedFields: anyone else there is another writer
# a Deployment's default rollout, written explicitly so that an edited strategy is drift and is put back
DEFAULT_STRATEGY: dict[str, Any] = {
    "type": "RollingUpdate",
    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
}


class MirrorConflict(Exception):
    """An object with the mirror's name exists in the target and Overspill did not create it."""


@dataclass(frozen=True)
class MirrorObservation:
    exists: bool
    replicas: int = 0
    ready: int = 0
    template_hash: str | None = None
    pods: tuple[PodInfo, ...] = ()


@dataclass(frozen=True)
class MirrorRef:
    namespace: str
    name: str
    policy_uid: str


def mirror_template(workload: dict[str, Any], overrides: TargetOverrides | None) -> dict[str, Any]:
    """The workload's pod template with a target's overrides applied: what the mirror's pods run, and so what they
    reference there (the carry plan reads its references from this, never from the primary's template alone)."""
    template = copy.deepcopy((workload.get("spec") or {}).get("template") or {})
    meta = template.setdefault("metadata", {})
    pod_spec = template.setdefault("spec", {})
    if overrides is not None:
        if overrides.labels:
            meta["labels"] = {**meta.get("labels", {}), **overrides.labels}
        if overrides.annotations:
            meta["annotations"] = {**meta.get("annotations", {}), **overrides.annotations}
        if overrides.node_selector is not None:
            pod_spec["nodeSelector"] = dict(overrides.node_selector)
        if overrides.tolerations is not None:
            pod_spec["tolerations"] = [dict(t) for t in overrides.tolerations]
        if overrides.volumes:
            pod_spec["volumes"] = with_volume_overrides(pod_spec, overrides.volumes)["volumes"]
        for container in pod_spec.get("containers", []):
            if overrides.image:
                container["image"] = overrides.image
            if overrides.env:
                env = [e for e in container.get("env", []) if e.get("name") not in overrides.env]
                container["env"] = env + [{"name": k, "value": v} for k, v in overrides.env.items()]
    return template


def build_mirror(
    workload: dict[str, Any],
    ref: MirrorRef,
    *,
    origin_cluster: str,
    origin_namespace: str,
    policy_name: str,
    overrides: TargetOverrides | None,
    replicas: int,
    target: str | None = None,
) -> dict[str, Any]:
    spec = workload.get("spec", {})
    template = mirror_template(workload, overrides)
    selector = copy.deepcopy(spec.get("selector") or {"matchLabels": template.get("metadata", {}).get("labels", {})})
    meta = template["metadata"]
    # the policy-uid label on every mirror pod: one label-selected watch per target finds all of them
    meta["labels"] = {**meta.get("labels", {}), POLICY_UID: ref.policy_uid}
    digest = hashlib.sha256(json.dumps([template, selector, target], sort_keys=True).encode()).hexdigest()[:16]
    labels = {MANAGED_BY: MANAGER, POLICY_UID: ref.policy_uid}
    annotations = {
        ORIGIN_CLUSTER: origin_cluster,
        ORIGIN_NAMESPACE: origin_namespace,
        ORIGIN_POLICY: policy_name,
        TEMPLATE_HASH: digest,
    }
    if target is not None:
        annotations[TARGET_NAME] = target
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": ref.name,
            "namespace": ref.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {"replicas": replicas, "selector": selector, "template": template, "strategy": _strategy(spec)},
    }


def _strategy(spec: dict[str, Any]) -> dict[str, Any]:
    """The primary Deployment's rollout strategy for its mirror; the default for other kinds (a StatefulSet's
    updateStrategy has another shape)."""
    strategy = spec.get("strategy")
    if isinstance(strategy, dict) and strategy.get("type") in ("RollingUpdate", "Recreate"):
        return copy.deepcopy(strategy)
    return copy.deepcopy(DEFAULT_STRATEGY)


def _pruned(node: Any) -> Any:
    """Without nulls and empty maps: the same template whether it came from a typed client or raw JSON."""
    if isinstance(node, dict):
        out = {k: _pruned(v) for k, v in node.items() if v is not None}
        return {k: v for k, v in out.items() if v != {}}
    if isinstance(node, list):
        return [_pruned(x) for x in node]
    return node


def template_fingerprint(deployment: dict[str, Any]) -> str:
    """What the target holds as the mirror's pod template (and selector, rollout strategy and paused flag), as the
    API server stored it: a change by anyone else (a hand edit, a merge by a tool, a pause) changes it; our own
    scale writes do not."""
    spec = deployment.get("spec") or {}
    rollout = [spec.get("strategy"), bool(spec.get("paused"))]
    text = json.dumps(_pruned([spec.get("template"), spec.get("selector"), *rollout]), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def covers(desired: Any, live: Any) -> bool:
    """Every field of `desired` is in `live` with the same value (the server only adds defaults). Used once after
    a restart, when what was last written is not known: a removed or changed field shows; an added one is
    caught from then on by the fingerprint."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(covers(v, live.get(k)) for k, v in desired.items() if v is not None)
    if isinstance(desired, list):
        return isinstance(live, list) and len(desired) == len(live) and all(map(covers, desired, live))
    return bool(desired == live or (desired in ({}, []) and live is None))


def rollout_covers(desired: dict[str, Any], live: dict[str, Any]) -> bool:
    """The live mirror is not paused (but by Overspill, for busy runners) and keeps the desired rollout strategy
    (after a restart, as `covers`)."""
    desired_spec, live_spec = desired.get("spec") or {}, live.get("spec") or {}
    if live_spec.get("paused") and not paused_while_busy(live):
        return False
    return covers(desired_spec.get("strategy") or {}, live_spec.get("strategy") or {})


def paused_while_busy(live: dict[str, Any]) -> bool:
    """The mirror is paused by Overspill itself, holding its rollout while runners are busy."""
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    return bool((live.get("spec") or {}).get("paused")) and PAUSED_WHILE_BUSY in annotations


def rolling(live: dict[str, Any]) -> bool:
    """The Deployment controller has a rollout to finish: pods of an older template remain, or it has not yet
    seen the latest spec. (Zero counts are omitted from status: absent is 0.)"""
    meta, status = live.get("metadata") or {}, live.get("status") or {}
    if int(status.get("updatedReplicas") or 0) < int(status.get("replicas") or 0):
        return True
    observed = status.get("observedGeneration")
    return observed is not None and int(observed) < int(meta.get("generation") or 0)


def drift_writer(deployment: dict[str, Any]) -> str | None:
    """Who else last wrote the mirror's template, strategy or paused flag (its managedFields), or None."""
    latest: dict[str, Any] | None = None
    for entry in (deployment.get("metadata") or {}).get("managedFields") or []:
        spec = (entry.get("fieldsV1") or {}).get("f:spec") or {}
        if entry.get("manager") == FIELD_MANAGER or not any(
            f in spec for f in ("f:template", "f:strategy", "f:paused")
        ):
            continue
        if latest is None or str(entry.get("time") or "") >= str(latest.get("time") or ""):
            latest = entry
    return str(latest.get("manager")) if latest is not None else None


def _json(resp: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resp.data or b"{}")
    return data


def _managed(obj: Any, uid: str) -> bool:
    labels = (obj.metadata.labels or {}) if obj is not None else {}
    return labels.get(MANAGED_BY) == MANAGER and labels.get(POLICY_UID) == uid


def _conflict(ref: MirrorRef) -> MirrorConflict:
    return MirrorConflict(
        f"Deployment {ref.namespace}/{ref.name} exists in the target and is not managed by "
        "this policy; Overspill will not touch it (rename it or set overrides.namespace)"
    )


def observe(ref: MirrorRef, deployment: dict[str, Any] | None, pods: list[dict[str, Any]]) -> MirrorObservation:
    """The mirror as a target's view holds it (None: not there), with its pods."""
    if deployment is None:
        return MirrorObservation(exists=False)
    meta = deployment.get("metadata") or {}
    labels = meta.get("labels") or {}
    if labels.get(MANAGED_BY) != MANAGER or labels.get(POLICY_UID) != ref.policy_uid:
        raise _conflict(ref)
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    return MirrorObservation(
        exists=True,
        replicas=int(spec["replicas"]) if spec.get("replicas") is not None else 1,
        ready=int(status.get("readyReplicas") or 0),
        template_hash=(meta.get("annotations") or {}).get(TEMPLATE_HASH),
        pods=tuple(pod_info(p) for p in pods),
    )


class MirrorClient:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def ensure_namespace(self, namespace: str, labels: dict[str, str] | None = None) -> None:
        """Create the namespace with our label and `labels` (the target's Pod Security level); an existing one
        is left as its owner made it."""
        try:
            self.cluster.core.create_namespace(
                client.V1Namespace(
                    metadata=client.V1ObjectMeta(name=namespace, labels={MANAGED_BY: MANAGER, **(labels or {})})
                ),
                _request_timeout=TIMEOUT,
            )
        except ApiException as err:
            if err.status != 409:
                raise

    def create(self, body: dict[str, Any], namespace_labels: dict[str, str] | None = None) -> dict[str, Any] | None:
        """Create the mirror; create its namespace only when the API says it is missing (one call when it exists).
        Returns the mirror as stored (None when it already existed).

        An existing object of that name is ours when the view has not caught up yet, and a conflict otherwise.
        """
        ns = body["metadata"]["namespace"]
        try:
            return self._create(ns, body)
        except ApiException as err:
            if err.status == 409:
                self._owned_or_conflict(body)
                return None
            if err.status != 404:
                raise
            self.ensure_namespace(ns, namespace_labels)
            return self._create(ns, body)

    def _create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return _json(
            self.cluster.apps.create_namespaced_deployment(
                namespace,
                body,  # type: ignore[arg-type]
                _request_timeout=TIMEOUT,
                _preload_content=False,
                field_manager=FIELD_MANAGER,
            )
        )

    def _owned_or_conflict(self, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        ref = MirrorRef(meta["namespace"], meta["name"], meta["labels"][POLICY_UID])
        dep = self.cluster.apps.read_namespaced_deployment(ref.name, ref.namespace, _request_timeout=TIMEOUT)
        if not _managed(dep, ref.policy_uid):
            raise _conflict(ref)

    def replace(self, body: dict[str, Any], *, annotated: bool = True) -> dict[str, Any]:
        """Replace the mirror's pod template, never merge it: a JSON Patch `replace` of /spec/template, so a field
        removed from the desired template (an env var, a volume, a container, a nodeSelector key) or added by a
        hand edit is gone afterwards; the rollout strategy is put back and a pause lifted. `annotated`: the live
        mirror has an annotations map (a JSON Patch `add` under a missing map fails). Returns the mirror as
        stored."""
        return self._replace(body, dry_run=False, annotated=annotated)

    def stored_as(self, body: dict[str, Any], *, annotated: bool = True) -> dict[str, Any]:
        """The mirror as the server would store it after `replace(body)`, defaults and all; nothing is written (a
        server-side dry run)."""
        return self._replace(body, dry_run=True, annotated=annotated)

    def _replace(self, body: dict[str, Any], *, dry_run: bool, annotated: bool) -> dict[str, Any]:
        meta, spec = body["metadata"], body["spec"]
        ops: list[dict[str, Any]] = [
            {"op": "replace", "path": "/spec/template", "value": spec["template"]},
            {"op": "replace", "path": "/spec/replicas", "value": spec["replicas"]},
            {"op": "add", "path": "/spec/strategy", "value": spec.get("strategy") or DEFAULT_STRATEGY},
            {"op": "add", "path": "/spec/paused", "value": False},
        ]
        if annotated:  # one key at a time: annotations others keep on the mirror stay
            ops += [
                {"op": "add", "path": "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1"), "value": v}
                for key, v in meta["annotations"].items()
            ]
        else:
            ops.append({"op": "add", "path": "/metadata/annotations", "value": dict(meta["annotations"])})
        return _json(
            self.cluster.apps.patch_namespaced_deployment(
                meta["name"],
                meta["namespace"],
                ops,
                _request_timeout=TIMEOUT,
                _preload_content=False,
                _content_type="application/json-patch+json",
                dry_run="All" if dry_run else None,
                field_manager=FIELD_MANAGER,
            )
        )

    def pause(self, ref: MirrorRef, paused: bool) -> dict[str, Any]:
        """Pause the mirror's rollout (busy runners) or resume it; the annotation marks the pause as Overspill's.
        Returns the mirror as stored."""
        body = {
            "spec": {"paused": paused},
            "metadata": {"annotations": {PAUSED_WHILE_BUSY: "true" if paused else None}},
        }
        return _json(
            self.cluster.apps.patch_namespaced_deployment(
                ref.name,
                ref.namespace,
                body,
                _request_timeout=TIMEOUT,
                _preload_content=False,
                _content_type="application/merge-patch+json",
                field_manager=FIELD_MANAGER,
            )
        )

    def last_writer(self, ref: MirrorRef) -> str | None:
        """Who else last wrote the mirror's template, strategy or paused flag: one GET (the views drop
        managedFields to save memory), made only when a fight is reported."""
        resp = self.cluster.apps.read_namespaced_deployment(
            ref.name, ref.namespace, _request_timeout=TIMEOUT, _preload_content=False
        )
        return drift_writer(_json(resp))

    def scale(self, ref: MirrorRef, replicas: int) -> None:
        self.cluster.apps.patch_namespaced_deployment_scale(
            ref.name, ref.namespace, {"spec": {"replicas": replicas}}, _request_timeout=TIMEOUT
        )

    def delete(self, ref: MirrorRef) -> None:
        """Delete the mirror if it is ours; anything else with its name is left alone."""
        try:
            dep = self.cluster.apps.read_namespaced_deployment(ref.name, ref.namespace, _request_timeout=TIMEOUT)
        except ApiException as err:
            if err.status == 404:
                return
            raise
        if not _managed(dep, ref.policy_uid):
            return  # not ours: leave it
        self.cluster.apps.delete_namespaced_deployment(
            ref.name, ref.namespace, propagation_policy="Background", _request_timeout=TIMEOUT
        )
