"""A policy's mirrors in every known target, found by its labels; what its spec no longer wants is drained, then
deleted (decide/cleanup.py says what, this module does it), and what they carried goes with them.

Objects are never looked up by the current spec: a target dropped from the spec, a changed `overrides.namespace`
or `workloadRef.name`, a deleted workload or a deleted policy leave objects the spec no longer names, and only
their labels (`app.kubernetes.io/managed-by: overspill`, `overspill.dev/policy-uid`) still find them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client import ApiException

from overspill.adapters.kube import Cluster
from overspill.adapters.mirror import POLICY_UID, TARGET_NAME, MirrorClient, MirrorRef
from overspill.carry import owners
from overspill.decide.cleanup import MIRROR_KIND, Owned, plan
from overspill.targets import TargetRegistry
from overspill.views import MANAGED_SELECTOR, ClusterView
from overspill.views.resource import CONFIGMAPS, DEPLOYMENTS, PODS, SERVICEACCOUNTS, SERVICES

# copies and burst Services the target's view watches (handlers start them with the view): a namespace still
# holding one of the policy's, without a mirror the spec wants there, is vacated again. Secrets are not watched
# cluster-wide (a target grants them only in the namespaces mirrors land in): a mirror is deleted only once its
# namespace's copies are gone, so the mirror (watched, found by label by any process) is the record that brings a
# failed removal back; copies left by older versions are searched for in the namespaces the BurstTarget allows the
# policy by name when the policy goes (`search`)
_WATCHED_COPIES = (CONFIGMAPS, SERVICEACCOUNTS, SERVICES)

# pods of a mirror that must not go now (busy, or busy level unknown): (target, namespace, its pods) -> count
HoldFor = Callable[[str, str, list[dict[str, Any]]], int]
# everything else of the policy's in a namespace of a target (copies, burst Service, ServiceExport), by label
RemoveCopies = Callable[[Cluster, str, str], int]


@dataclass
class SweepResult:
    writes: int = 0
    # targets where something of the policy is (or may be) left: unreachable, not in sync, or still draining
    pending: dict[str, str] = field(default_factory=dict)
    # (target, namespace) whose copies could not be removed (or not tried): the next sweep's `also_vacate`
    unvacated: set[tuple[str, str]] = field(default_factory=set)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta: Mapping[str, Any] = obj.get("metadata") or {}
    return meta


def _holds(registry: TargetRegistry, target: str, obj: Mapping[str, Any]) -> bool | None:
    """Whether BurstTarget `target`'s view holds this very object (the same uid): it names the same cluster.
    None: it cannot tell now (not connected, or its view not in sync)."""
    handle = registry.get(target)
    if handle is None:
        return False
    view = handle.view
    if view is None or view.problem is not None:
        return None
    meta = _meta(obj)
    seen = view.cache(DEPLOYMENTS, MANAGED_SELECTOR).get(str(meta.get("namespace") or ""), str(meta.get("name")))
    return seen is not None and _meta(seen).get("uid") == meta.get("uid")


def _anothers(registry: TargetRegistry, target: str, obj: Mapping[str, Any], wanted: set[tuple[str, str, str]]) -> bool:
    """The mirror `obj`, seen through `target`, is another BurstTarget's to keep or drain. Two BurstTargets may
    name one cluster: a mirror is the target's that placed it (its annotation) while that target serves this
    cluster, else the one the policy wants it through; one placed under a name no target here has any more (a
    renamed or re-pointed BurstTarget) is adopted by the target that wants it, or drained through one target only
    (the first by name) of those serving the cluster."""
    meta = _meta(obj)
    ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    placed_by = (meta.get("annotations") or {}).get(TARGET_NAME)
    # the policy re-pointed to another target of this cluster: that target's apply has just taken it (the view
    # still shows our annotation for a moment); draining it would kill its runners for one poll
    if (
        placed_by == target
        and (target, ns, name) not in wanted
        and any((t, ns, name) in wanted for t in registry.names() if t != target and _holds(registry, t, obj))
    ):
        return True
    if placed_by == target or (placed_by is None and (target, ns, name) in wanted):
        return False
    if placed_by is not None and placed_by in registry.names():
        holds = _holds(registry, placed_by, obj)
        if holds is None or (holds and placed_by != target):
            return True  # its placer serves this cluster (or cannot tell yet): that target's sweep decides
    if (target, ns, name) in wanted:
        return False
    sharing = [t for t in registry.names() if t != target and _holds(registry, t, obj)]
    if any((t, ns, name) in wanted for t in sharing):
        return True
    return any(t < target for t in sharing)


def mirrors(
    view: ClusterView,
    target: str,
    uid: str,
    hold_for: HoldFor,
    wanted: set[tuple[str, str, str]],
    *,
    registry: TargetRegistry,
) -> list[Owned]:
    """The policy's mirrors in the target's view, with the pods each unwanted one must keep for now."""
    pods = view.cache(PODS).by_label(POLICY_UID, uid)
    found = []
    for obj in view.cache(DEPLOYMENTS, MANAGED_SELECTOR).by_label(POLICY_UID, uid):
        if _anothers(registry, target, obj, wanted):
            continue
        meta = _meta(obj)
        ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        here = [p for p in pods if _meta(p).get("namespace") == ns and not _meta(p).get("deletionTimestamp")]
        replicas = int((obj.get("spec") or {}).get("replicas") or 0)
        hold = 0 if (target, ns, name) in wanted else hold_for(target, ns, here)
        found.append(Owned(target, MIRROR_KIND, ns, name, replicas, hold))
    return found


def copies_at(view: ClusterView, uid: str, thorough: bool = False) -> set[str]:
    """Namespaces where the view sees a copy or burst Service of the policy (in the caches it already keeps:
    starting one here would put the whole view out of sync until it lists). `thorough` (nothing wanted: the
    policy goes) also finds copies shared with other policies, which list it among their owners."""
    return {
        str(_meta(obj).get("namespace") or "")
        for cache in view.caches()
        if cache.resource in _WATCHED_COPIES and cache.label_selector == MANAGED_SELECTOR and cache.synced
        for obj in (cache.list() if thorough else cache.by_label(POLICY_UID, uid))
        if uid in owners(obj)
    }


def sweep(
    registry: TargetRegistry,
    uid: str,
    wanted: set[tuple[str, str, str]],
    *,
    release_ready: bool,
    hold_for: HoldFor,
    remove_copies: RemoveCopies,
    also_vacate: Iterable[tuple[str, str]] = (),
    frozen: Collection[str] = (),
    search: Iterable[tuple[str, str]] = (),
) -> SweepResult:
    """Drain and delete the mirrors `wanted` ((target, namespace, name)) does not hold, in every known target;
    then remove what they carried from each namespace left without a mirror of the policy (and from
    `also_vacate`: (target, namespace) places the policy used, for its deletion). `search`: places the policy may
    have used (the namespaces its targets allow it); one where the operator may not list is passed over."""
    result = SweepResult()
    extra = set(also_vacate)
    maybe = set(search) - extra
    for target in registry.names():
        handle = registry.get(target)
        if handle is None:
            continue
        view, cluster = handle.view, handle.cluster
        retry = {(t, ns) for t, ns in extra if t == target}
        if view is None or cluster is None or not handle.healthy:
            result.pending[target] = f"{target} is unavailable ({handle.message})"
            result.unvacated |= retry
            continue
        problem = view.problem
        if problem is not None:
            result.pending[target] = f"{target}: the operator's view of it is not in sync ({problem})"
            result.unvacated |= retry
            continue
        found = mirrors(view, target, uid, hold_for, wanted, registry=registry)
        steps = plan(found, wanted, release_ready=release_ready)
        if target in frozen and steps:  # the route may still send it requests: nothing there shrinks this poll
            result.pending[target] = f"{target}: held until the route's weight to it has drained"
            result.unvacated |= retry
            continue
        deleted = {s.owned for s in steps if s.delete}
        left = {m.namespace for m in found if m not in deleted}
        # any target's namespaces, not only this one's: two BurstTargets may name one cluster, and the copies one
        # serves in its namespace are never removed through the other
        wanted_here = {ns for _, ns, _ in wanted}
        emptied: set[str] = set()  # namespaces whose copies went before their last mirror
        try:
            for step in steps:
                ns = step.owned.namespace
                ref = MirrorRef(ns, step.owned.name, uid)
                if step.delete:
                    if ns not in left | wanted_here | emptied:
                        # what it carried goes first: if that fails, the mirror stays as the record to retry from
                        result.writes += _remove_where_allowed(remove_copies, cluster, ns, uid)
                        emptied.add(ns)
                    MirrorClient(cluster).delete(ref)
                else:
                    MirrorClient(cluster).scale(ref, step.replicas)
                result.writes += 1
        except Exception as err:  # unreachable now: the next poll (or the finalizer's retry) tries again
            result.pending[target] = f"{target}: cleanup failed ({_why(err)})"
            result.unvacated |= retry
            continue
        # a namespace stays vacated until its copies are gone: found again by label in the view, or remembered by
        # the caller when the removal failed
        vacated = {ns for _, ns in retry} | copies_at(view, uid, thorough=not wanted)
        for ns in sorted(vacated - left - wanted_here - emptied):
            try:
                result.writes += remove_copies(cluster, ns, uid)
            except Exception as err:
                result.pending[target] = f"{target}: removing copies in {ns} failed ({_why(err)})"
                result.unvacated.add((target, ns))
        searched = {ns for t, ns in maybe if t == target} - vacated - left - wanted_here - emptied
        for ns in sorted(searched):
            try:
                result.writes += _remove_where_allowed(remove_copies, cluster, ns, uid)
            except Exception as err:
                result.pending[target] = f"{target}: removing copies in {ns} failed ({_why(err)})"
                result.unvacated.add((target, ns))
        draining = [m for m in found if m.key not in wanted and m not in deleted]
        if draining:
            m = draining[0]
            result.pending[target] = (
                f"{target}: mirror {m.namespace}/{m.name} drains ({m.hold} replicas busy or not yet replaced)"
            )
    return result


def _remove_where_allowed(remove_copies: RemoveCopies, cluster: Cluster, namespace: str, uid: str) -> int:
    """Remove the policy's copies in the namespace; one where the operator may not list them (403), or a kind the
    target does not serve (404, 405), holds nothing the operator could have put there: nothing to wait for."""
    try:
        return remove_copies(cluster, namespace, uid)
    except ApiException as err:
        if err.status in (403, 404, 405):
            return 0
        raise


def _why(err: Exception) -> str:
    status = err.status if isinstance(err, ApiException) else None
    return f"HTTP {status}" if status else type(err).__name__
