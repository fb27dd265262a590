"""What a burst carries: a PURE function from a pod template to the objects it references, and the plan that
says, per target, what to copy, what to update and what is missing.

No I/O here (import-linter contract "pure"): the act step reads the sources and the target's objects, hands them
in as plain dicts, and executes the plan this module returns. Every place a pod spec can name a ConfigMap,
Secret, ServiceAccount or PersistentVolumeClaim is listed below, so one table of tests covers them all.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from overspill.api.policy import Propagation

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "overspill"
POLICY_UID = "overspill.dev/policy-uid"
ORIGIN = "overspill.dev/origin"  # <cluster>/<namespace>/<name> of the source object
SOURCE_HASH = "overspill.dev/source-hash"
# the uids of every policy a copy serves, comma-separated: two policies whose templates name one ConfigMap or
# Secret share its copy, and it is removed only when the last of them leaves (a label holds one uid: the creator's)
OWNERS = "overspill.dev/owners"
# which Overspill installation made a copy (its primary cluster's identity): two installations bursting into one
# namespace may share a clusterName (the default "primary"), and must never take each other's copies for their own
INSTALLATION = "overspill.dev/installation"
DEFAULT_SERVICE_ACCOUNT = "default"  # every namespace has one, created by the cluster itself: never copied


class Kind(StrEnum):
    CONFIG_MAP = "ConfigMap"
    SECRET = "Secret"  # noqa: S105 - a kind name, not a password
    SERVICE_ACCOUNT = "ServiceAccount"
    PVC = "PersistentVolumeClaim"
    # Dynamic Resource Allocation (resource.k8s.io): devices (GPUs) are claimed in each cluster, from its own
    # drivers and DeviceClasses: never carried, looked for in the target like a PVC
    RESOURCE_CLAIM = "ResourceClaim"
    RESOURCE_CLAIM_TEMPLATE = "ResourceClaimTemplate"


# objects every cluster publishes in every namespace itself (the controller-manager's root-CA publisher): the
# target's own one is the right one there (the primary's CA is wrong in another cluster), so they are never
# carried and never a conflict
CLUSTER_PROVIDED = frozenset({(Kind.CONFIG_MAP, "kube-root-ca.crt")})


@dataclass(frozen=True)
class Reference:
    """One object the pod needs. `where` is the first place that names it (for messages a person can follow)."""

    kind: Kind
    name: str
    where: str
    optional: bool = False

    @property
    def key(self) -> tuple[Kind, str]:
        return (self.kind, self.name)


# volume sources that name a Secret through a nested secretRef (CSI drivers, storage plugins)
_SECRET_REF_VOLUMES = ("cephfs", "cinder", "flexVolume", "iscsi", "rbd", "scaleIO", "storageos")


def _containers(pod: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for i, c in enumerate(pod.get(group) or []):
            yield f"spec.{group}[{c.get('name') or i}]", c


def _container_refs(path: str, c: Mapping[str, Any]) -> Iterator[Reference]:
    for env in c.get("env") or []:
        src = env.get("valueFrom") or {}
        at = f"{path}.env[{env.get('name')}].valueFrom"
        for key, kind in (("configMapKeyRef", Kind.CONFIG_MAP), ("secretKeyRef", Kind.SECRET)):
            ref = src.get(key)
            if ref and ref.get("name"):
                yield Reference(kind, ref["name"], f"{at}.{key}", bool(ref.get("optional")))
    for i, env_from in enumerate(c.get("envFrom") or []):
        for key, kind in (("configMapRef", Kind.CONFIG_MAP), ("secretRef", Kind.SECRET)):
            ref = env_from.get(key)
            if ref and ref.get("name"):
                yield Reference(kind, ref["name"], f"{path}.envFrom[{i}].{key}", bool(ref.get("optional")))


def _volume_refs(vol: Mapping[str, Any]) -> Iterator[Reference]:
    at = f"spec.volumes[{vol.get('name')}]"
    cm = vol.get("configMap")
    if cm and cm.get("name"):
        yield Reference(Kind.CONFIG_MAP, cm["name"], f"{at}.configMap", bool(cm.get("optional")))
    sec = vol.get("secret")
    if sec and sec.get("secretName"):
        yield Reference(Kind.SECRET, sec["secretName"], f"{at}.secret", bool(sec.get("optional")))
    for i, source in enumerate((vol.get("projected") or {}).get("sources") or []):
        for key, kind in (("configMap", Kind.CONFIG_MAP), ("secret", Kind.SECRET)):
            ref = source.get(key)
            if ref and ref.get("name"):
                yield Reference(kind, ref["name"], f"{at}.projected.sources[{i}].{key}", bool(ref.get("optional")))
    pvc = vol.get("persistentVolumeClaim")
    if pvc and pvc.get("claimName"):
        yield Reference(Kind.PVC, pvc["claimName"], f"{at}.persistentVolumeClaim")
    csi = (vol.get("csi") or {}).get("nodePublishSecretRef")
    if csi and csi.get("name"):
        yield Reference(Kind.SECRET, csi["name"], f"{at}.csi.nodePublishSecretRef")
    azure = vol.get("azureFile")
    if azure and azure.get("secretName"):
        yield Reference(Kind.SECRET, azure["secretName"], f"{at}.azureFile")
    for plugin in _SECRET_REF_VOLUMES:
        ref = (vol.get(plugin) or {}).get("secretRef")
        if ref and ref.get("name"):
            yield Reference(Kind.SECRET, ref["name"], f"{at}.{plugin}.secretRef")


def _all_refs(pod: Mapping[str, Any]) -> Iterator[Reference]:
    sa = pod.get("serviceAccountName") or pod.get("serviceAccount")
    if sa and sa != DEFAULT_SERVICE_ACCOUNT:
        yield Reference(Kind.SERVICE_ACCOUNT, sa, "spec.serviceAccountName")
    for i, ips in enumerate(pod.get("imagePullSecrets") or []):
        if ips.get("name"):
            yield Reference(Kind.SECRET, ips["name"], f"spec.imagePullSecrets[{i}]")
    for path, c in _containers(pod):
        yield from _container_refs(path, c)
    for claim in pod.get("resourceClaims") or []:
        at = f"spec.resourceClaims[{claim.get('name')}]"
        if claim.get("resourceClaimName"):
            yield Reference(Kind.RESOURCE_CLAIM, claim["resourceClaimName"], f"{at}.resourceClaimName")
        if claim.get("resourceClaimTemplateName"):
            yield Reference(
                Kind.RESOURCE_CLAIM_TEMPLATE, claim["resourceClaimTemplateName"], f"{at}.resourceClaimTemplateName"
            )
    for vol in pod.get("volumes") or []:
        yield from _volume_refs(vol)


def _merge(refs: Iterator[Reference]) -> tuple[Reference, ...]:
    """One entry per object, first place kept; optional only if every place that names it says optional."""
    out: dict[tuple[Kind, str], Reference] = {}
    for r in refs:
        seen = out.get(r.key)
        if seen is None:
            out[r.key] = r
        elif seen.optional and not r.optional:
            out[r.key] = Reference(r.kind, r.name, seen.where, optional=False)
    return tuple(sorted(out.values(), key=lambda r: (r.kind.value, r.name)))


def references(pod_spec: Mapping[str, Any]) -> tuple[Reference, ...]:
    """Every ConfigMap, Secret, ServiceAccount, PVC and DRA claim (or claim template) a pod spec names (containers,
    init and ephemeral containers, env valueFrom, envFrom, volumes, projected volumes, CSI/plugin secrets,
    imagePullSecrets, resourceClaims), but
    those every cluster provides itself (CLUSTER_PROVIDED)."""
    return _merge(r for r in _all_refs(pod_spec) if r.key not in CLUSTER_PROVIDED)


def service_account_references(sa: Mapping[str, Any]) -> tuple[Reference, ...]:
    """The pull secrets a ServiceAccount hands to its pods. Its token Secrets are cluster-specific: never carried."""
    name = (sa.get("metadata") or {}).get("name", "")
    return _merge(
        Reference(Kind.SECRET, ips["name"], f"ServiceAccount {name} imagePullSecrets[{i}]")
        for i, ips in enumerate(sa.get("imagePullSecrets") or [])
        if ips.get("name")
    )


def with_admitted_pull_secrets(workload: Mapping[str, Any], default_sa: Mapping[str, Any] | None) -> dict[str, Any]:
    """The workload with its pods' imagePullSecrets as the primary's ServiceAccount admission gives them: a template
    that names none, run as the `default` ServiceAccount, pulls with that ServiceAccount's. The target's `default`
    is its own (never copied: every namespace has one) and lacks them, so the mirror names them itself, and they
    are carried (propagation.secrets) or reported like any pull secret. Unchanged otherwise (a named
    ServiceAccount is carried with its pull secrets, and the target's admission adds them)."""
    out = copy.deepcopy(dict(workload))
    pod = ((out.get("spec") or {}).get("template") or {}).get("spec")
    if not isinstance(pod, dict) or pod.get("imagePullSecrets") or default_sa is None:
        return out
    if (
        pod.get("serviceAccountName") or pod.get("serviceAccount") or DEFAULT_SERVICE_ACCOUNT
    ) != DEFAULT_SERVICE_ACCOUNT:
        return out
    names = [r.name for r in service_account_references(default_sa)]
    if names:
        pod["imagePullSecrets"] = [{"name": n} for n in names]
    return out


def with_volume_overrides(pod_spec: Mapping[str, Any], volumes: Sequence[Mapping[str, Any]] | None) -> dict[str, Any]:
    """The pod spec with `overrides.volumes` applied: same name replaces, a new name is added."""
    out = copy.deepcopy(dict(pod_spec))
    if not volumes:
        return out
    by_name = {v["name"]: copy.deepcopy(dict(v)) for v in volumes}
    kept = [by_name.pop(v.get("name"), v) for v in out.get("volumes") or []]
    out["volumes"] = kept + list(by_name.values())
    return out


# ---- copies ------------------------------------------------------------------------------------------------

# what a copy keeps from its source, per kind: content, never identity (uid, resourceVersion, tokens)
_CONTENT = {
    Kind.CONFIG_MAP: ("data", "binaryData", "immutable"),
    Kind.SECRET: ("data", "type", "immutable"),
    Kind.SERVICE_ACCOUNT: ("imagePullSecrets", "automountServiceAccountToken"),
}
_API_VERSION = "v1"


def is_managed(obj: Mapping[str, Any]) -> bool:
    return (((obj.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY)) == MANAGER


def propagated(kind: Kind, propagation: Propagation) -> bool:
    return {
        Kind.CONFIG_MAP: propagation.config_maps,
        Kind.SECRET: propagation.secrets,
        Kind.SERVICE_ACCOUNT: propagation.service_account,
        Kind.PVC: False,  # data does not move between clouds
        Kind.RESOURCE_CLAIM: False,  # nor do devices: a claim is allocated by the cluster that runs the pod
        Kind.RESOURCE_CLAIM_TEMPLATE: False,
    }[kind]


def content_hash(kind: Kind, source: Mapping[str, Any]) -> str:
    body = {k: source.get(k) for k in _CONTENT[kind]}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def origin_of(cluster: str, namespace: str, name: str) -> str:
    return f"{cluster}/{namespace}/{name}"


def owners(obj: Mapping[str, Any]) -> frozenset[str]:
    """The policies a copy serves: its owners annotation, or (a copy made before the annotation) its label."""
    meta = obj.get("metadata") or {}
    listed = (meta.get("annotations") or {}).get(OWNERS)
    if listed is not None:
        return frozenset(u for u in (x.strip() for x in listed.split(",")) if u)
    uid = (meta.get("labels") or {}).get(POLICY_UID)
    return frozenset({uid}) if uid else frozenset()


@dataclass(frozen=True)
class Observed:
    """Who uses what in one namespace of a target, read from the mirrors there (their policy-uid label and pod
    templates): what ownership is decided on, so an owners annotation edited by hand decides nothing alone."""

    users: Mapping[tuple[Kind, str], frozenset[str]] = field(default_factory=dict)
    present: frozenset[str] = frozenset()  # policies with a mirror there


def observe_users(
    mirrors: Iterable[Mapping[str, Any]], service_account: Callable[[str], Mapping[str, Any] | None]
) -> Observed:
    """Per object, the policies whose mirrors (not being deleted, not at 0 replicas) reference it: in their pod
    template, or as the pull secrets of the ServiceAccount they run as (`service_account` reads it in the
    namespace). Every mirror there, idle or not, is `present`."""
    users: dict[tuple[Kind, str], set[str]] = {}
    present = set()
    for m in mirrors:
        meta = m.get("metadata") or {}
        uid = (meta.get("labels") or {}).get(POLICY_UID)
        if not uid or meta.get("deletionTimestamp"):
            continue
        present.add(uid)
        if ((m.get("spec") or {}).get("replicas")) == 0:
            # an idle mirror runs no pod that could use anything: its template (not rewritten while it is at 0)
            # must not keep a copy its workload no longer names, least of all a retired credential, until the next
            # burst. A burst re-plans from the template it will run, and copies before it scales up
            continue
        refs = list(references((((m.get("spec") or {}).get("template") or {}).get("spec")) or {}))
        for r in list(refs):
            sa = service_account(r.name) if r.kind == Kind.SERVICE_ACCOUNT else None
            refs += list(service_account_references(sa)) if sa is not None else []
        for r in refs:
            users.setdefault(r.key, set()).add(uid)
    return Observed({k: frozenset(v) for k, v in users.items()}, frozenset(present))


def sharers(
    obj: Mapping[str, Any], key: tuple[Kind, str], policy_uid: str, observed: Observed | None
) -> frozenset[str]:
    """The policies other than `policy_uid` a copy still serves: those whose mirrors there use it, and those its
    annotation lists that still have a mirror there (one copying it right now). A policy released by hand (no
    mirror) keeps nothing; a stripped annotation loses nobody who uses it. Without an observation (no view of the
    target in sync): the annotation."""
    if observed is None:
        return owners(obj) - {policy_uid}
    return (observed.users.get(key, frozenset()) | (owners(obj) & observed.present)) - {policy_uid}


def with_owners(obj: Mapping[str, Any], uids: Iterable[str]) -> dict[str, Any]:
    """The object with its owners annotation set to `uids` (sorted: the same set always writes the same text)."""
    out = copy.deepcopy(dict(obj))
    meta = out.setdefault("metadata", {})
    meta["annotations"] = {**(meta.get("annotations") or {}), OWNERS: ",".join(sorted(set(uids)))}
    return out


def copy_of(
    kind: Kind,
    source: Mapping[str, Any],
    *,
    namespace: str,
    policy_uid: str,
    origin: str,
    also_owned_by: Iterable[str] = (),
    creator: str | None = None,
    installation: str | None = None,
) -> dict[str, Any]:
    """The object to write in the target: the source's content and labels, plus Overspill's ownership marks."""
    meta = source.get("metadata") or {}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in (MANAGED_BY, POLICY_UID)}
    body: dict[str, Any] = {
        "apiVersion": _API_VERSION,
        "kind": kind.value,
        "metadata": {
            "name": meta.get("name"),
            "namespace": namespace,
            "labels": {**labels, MANAGED_BY: MANAGER, POLICY_UID: creator or policy_uid},
            "annotations": {
                ORIGIN: origin,
                SOURCE_HASH: content_hash(kind, source),
                OWNERS: ",".join(sorted({policy_uid, *also_owned_by})),
            },
        },
    }
    if installation:
        body["metadata"]["annotations"][INSTALLATION] = installation
    for key in _CONTENT[kind]:
        if source.get(key) is not None:
            body[key] = copy.deepcopy(source[key])
    return body


def is_copy_for(obj: Mapping[str, Any], policy_uid: str, origin: str, installation: str | None = None) -> bool:
    """Ours to update: a copy Overspill made for this policy, or from the same source object by the same
    installation (two policies whose templates share a ConfigMap share its copy, each listed in its owners, instead
    of fighting over it). Without a known installation, or from another one (an origin string alone does not tell
    two primaries with one clusterName apart), a copy of another policy's is not ours."""
    meta = obj.get("metadata") or {}
    if (meta.get("labels") or {}).get(MANAGED_BY) != MANAGER:
        return False
    if policy_uid in owners(obj):
        return True
    annotations = meta.get("annotations") or {}
    return bool(installation) and annotations.get(INSTALLATION) == installation and annotations.get(ORIGIN) == origin


# ---- the plan for one target -----------------------------------------------------------------------------


class State(StrEnum):
    CARRIED = "Carried"  # our copy is there and current
    TO_COPY = "ToCopy"  # will be created or updated now
    PROVIDED = "Provided"  # not carried, but an object of that name is in the target
    MISSING = "Missing"  # required, not carried, not in the target
    CONFLICT = "Conflict"  # carried kind, but the target holds an object Overspill did not create
    NO_SOURCE = "NoSource"  # carried kind, but the primary does not have it
    SKIPPED = "Skipped"  # optional and absent: the pod starts without it
    REVOKED = "Revoked"  # our copy of a kind no longer propagated: removed (the owner withdrew the consent)
    LEFT = "Left"  # a shared copy of a kind this policy no longer propagates: it leaves the owners, others keep it
    STALE = "Stale"  # our copy of an object the template no longer names (a rename): removed, blocks nothing


BLOCKING = frozenset({State.MISSING, State.CONFLICT, State.NO_SOURCE, State.REVOKED})


@dataclass(frozen=True)
class Item:
    ref: Reference
    state: State
    body: dict[str, Any] | None = None  # the copy to write, for TO_COPY and LEFT
    update: bool = False  # the copy exists there (replace it) rather than being created
    # REVOKED: (uid, resourceVersion) of the copy as read; the delete names them, so an object someone else
    # created under the name in the meantime is never deleted. TO_COPY with a precondition and not `update`: an
    # immutable copy whose source changed, deleted (so conditioned) and created again
    precondition: tuple[str | None, str | None] | None = None


@dataclass(frozen=True)
class CarryPlan:
    items: tuple[Item, ...] = ()

    @property
    def writes(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.state == State.TO_COPY)

    @property
    def revokes(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.state in (State.REVOKED, State.LEFT, State.STALE))

    @property
    def blocking(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.state in BLOCKING)

    @property
    def ready(self) -> bool:
        """Ready once the writes are done: nothing blocks the mirror from scaling up."""
        return not self.blocking


@dataclass(frozen=True)
class Sources:
    """Objects read for one plan: the primary's sources and the target's same-named objects (None = absent)."""

    primary: Mapping[tuple[Kind, str], Mapping[str, Any] | None] = field(default_factory=dict)
    target: Mapping[tuple[Kind, str], Mapping[str, Any] | None] = field(default_factory=dict)
    # who uses what there (read only when a copy is to be given up); None: not observable now
    observed: Observed | Callable[[], Observed | None] | None = None
    # every copy Overspill manages in the target's namespace (of the carried kinds), by key: those listing the
    # policy among their owners that no reference names any more are the policy's stale copies
    copies: Mapping[tuple[Kind, str], Mapping[str, Any]] = field(default_factory=dict)

    def observation(self) -> Observed | None:
        return self.observed() if callable(self.observed) else self.observed


def plan(
    refs: Sequence[Reference],
    propagation: Propagation,
    found: Sources,
    *,
    namespace: str,
    policy_uid: str,
    origin_cluster: str,
    origin_namespace: str,
    installation: str | None = None,
) -> CarryPlan:
    """What to do in one target's namespace so that every reference resolves there."""
    items: list[Item] = []
    for ref in refs:
        there = found.target.get(ref.key)
        origin = origin_of(origin_cluster, origin_namespace, ref.name)
        if not propagated(ref.kind, propagation):
            held = owners(there) if there is not None and is_managed(there) else frozenset()
            if there is not None and policy_uid in held:
                # copied while it was allowed: a copy must not outlive the owner's consent; shared with other
                # policies (each with its own consent), it only leaves the owners. Never another policy's copy.
                items.append(_give_up(ref, there, policy_uid, found.observation(), State.REVOKED))
                continue
            state = State.PROVIDED if there is not None else (State.SKIPPED if ref.optional else State.MISSING)
            items.append(Item(ref, state))
            continue
        if there is not None and not is_copy_for(there, policy_uid, origin, installation):
            items.append(Item(ref, State.CONFLICT))
            continue
        source = found.primary.get(ref.key)
        if source is None:
            if there is not None:
                items.append(Item(ref, State.CARRIED))  # the source went away: keep serving the last copy
            else:
                items.append(Item(ref, State.SKIPPED if ref.optional else State.NO_SOURCE))
            continue
        marks = ((there or {}).get("metadata") or {}).get("annotations") or {}
        held = owners(there) if there is not None else frozenset()
        current = marks.get(SOURCE_HASH) == content_hash(ref.kind, source) and _intact(ref.kind, there, source)
        if (
            there is not None
            and current
            and policy_uid in held
            and (not installation or marks.get(INSTALLATION) == installation)
        ):
            items.append(Item(ref, State.CARRIED))
            continue
        creator = (((there or {}).get("metadata") or {}).get("labels") or {}).get(POLICY_UID)
        body = copy_of(
            ref.kind,
            source,
            namespace=namespace,
            policy_uid=policy_uid,
            origin=origin,
            also_owned_by=held,
            creator=creator,
            installation=installation,
        )
        meta = (there or {}).get("metadata") or {}
        if there is not None and there.get("immutable") and not _intact(ref.kind, there, source):
            # an immutable copy keeps its data (the API server answers 422 to any change of it, even to unset
            # the flag): its source was replaced, the only way an immutable object changes, so the copy is too.
            # Deleted on the condition that it is the copy read, then created again
            precondition = (meta.get("uid"), meta.get("resourceVersion"))
            items.append(Item(ref, State.TO_COPY, body, update=False, precondition=precondition))
            continue
        version = meta.get("resourceVersion")
        if version:
            # an update is conditional on what was read: a concurrent change answers 409, never is overwritten
            body["metadata"]["resourceVersion"] = version
        items.append(Item(ref, State.TO_COPY, body, update=there is not None))
    items += _stale(refs, propagation, found, policy_uid)
    return CarryPlan(tuple(items))


def _intact(kind: Kind, there: Mapping[str, Any] | None, source: Mapping[str, Any]) -> bool:
    """The copy still holds the source's content: its data edited in the target (annotations left alone) is put
    back, or the mirror's pods would run on config or credentials the primary never had. A ServiceAccount is
    judged by its annotation only: clusters add their own pull secrets to every ServiceAccount (OpenShift's
    dockercfg), which must not start a fight."""
    if there is None or kind == Kind.SERVICE_ACCOUNT:
        return True
    return content_hash(kind, there) == content_hash(kind, source)


def _give_up(
    ref: Reference, there: Mapping[str, Any], policy_uid: str, observed: Observed | None, state: State
) -> Item:
    """A copy this policy no longer wants: it only leaves the owners while other policies use it, else it goes (on
    the condition that it is still the object read)."""
    others = sharers(there, ref.key, policy_uid, observed)
    if others:
        return Item(ref, State.LEFT, with_owners(there, others), update=True)
    meta = there.get("metadata") or {}
    return Item(ref, state, precondition=(meta.get("uid"), meta.get("resourceVersion")))


def _stale(refs: Sequence[Reference], propagation: Propagation, found: Sources, policy_uid: str) -> list[Item]:
    """The policy's copies no reference names any more (a Secret or ConfigMap renamed in the template, a volume
    replaced by overrides): a copy must not outlive its use, least of all a credential in another cloud. One the
    policy's own mirror there still names (its template is updated after the copies) stays until it does not; a
    kind whose propagation is off goes at once (the owner withdrew the consent)."""
    named = {r.key for r in refs}
    for r in refs:  # the pull secrets of the ServiceAccount copy in place (its source may be gone: still served)
        sa = found.target.get(r.key) if r.kind == Kind.SERVICE_ACCOUNT else None
        named |= {x.key for x in service_account_references(sa)} if sa is not None and is_managed(sa) else set()
    items: list[Item] = []
    observed: Observed | None = None
    looked = False
    for key, there in sorted(found.copies.items()):
        if key in named or not is_managed(there) or policy_uid not in owners(there):
            continue
        if not looked:
            observed, looked = found.observation(), True
        in_use = observed is None or policy_uid in observed.users.get(key, frozenset())
        if propagated(key[0], propagation) and in_use:
            continue  # the mirror there still names it (or who does is unknown): removed at a later poll
        items.append(
            _give_up(Reference(key[0], key[1], "no longer referenced"), there, policy_uid, observed, State.STALE)
        )
    return items


_FIX = {
    State.MISSING: "not carried",
    State.REVOKED: "was copied earlier and is removed now that its propagation is off",
    State.CONFLICT: "exists there and was not created by Overspill: left untouched",
    State.NO_SOURCE: "does not exist in the primary",
}


def _fix(item: Item) -> str:
    kind = item.ref.kind
    if item.state == State.CONFLICT:
        return "delete or rename it there so Overspill can copy it, or turn its propagation off to use it as is"
    if item.state == State.NO_SOURCE:
        return "create it in the primary"
    if kind == Kind.SECRET:
        return "set spec.propagation.secrets: true, or create it in the target"
    if kind in (Kind.RESOURCE_CLAIM, Kind.RESOURCE_CLAIM_TEMPLATE):
        return (
            "devices are claimed from the target's own DRA drivers and DeviceClasses: create the "
            f"{kind.value} there (resource.k8s.io), or burst to a target that has it"
        )
    if kind == Kind.PVC:
        return (
            "data does not move between clouds: create the claim in the target, or replace the volume with "
            "spec.targets[].overrides.volumes"
        )
    field_name = {Kind.CONFIG_MAP: "configMaps", Kind.SERVICE_ACCOUNT: "serviceAccount"}[kind]
    return f"set spec.propagation.{field_name}: true, or create it in the target"


def describe(target: str, namespace: str, blocking: Sequence[Item]) -> str:
    """One sentence per blocking item: what, where it is named, why, and the fix. Names only, never content."""
    parts = [
        f"{i.ref.kind.value} {namespace}/{i.ref.name} ({i.ref.where}) {_FIX[i.state]} in BurstTarget {target}: "
        f"{_fix(i)}"
        for i in blocking
    ]
    return "; ".join(parts)
