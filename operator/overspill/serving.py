"""Bursts that serve: the act step's part for what a mirror needs in a target (its dependencies) and for how
requests reach it (burst Service, ServiceExport, the primary's HTTPRoute weights).

The rules live in pure modules (`carry`, `decide.weights`); this module reads what they need through lookups
(watch-fed views where the reconciler has them, GETs otherwise) and writes through the adapters.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client import ApiException

from overspill import carry
from overspill.adapters.dependencies import CARRIED_KINDS, DependencyWriter, Lookup, direct_lookup, list_managed
from overspill.adapters.kube import TIMEOUT, Cluster
from overspill.adapters.mirror import mirror_template
from overspill.adapters.traffic import (
    EXPORT_GROUP,
    RouteClient,
    TrafficClient,
    TrafficConflict,
    burst_service,
    export_state,
    route_local_key,
    route_peers,
    route_record_key,
    service_export,
)
from overspill.api.policy import BurstPolicySpec, ExportStatus, TargetOverrides
from overspill.carry import CarryPlan, Kind
from overspill.decide import weights
from overspill.report import DependencyReport, TrafficReport
from overspill.views import MANAGED_SELECTOR, ClusterView
from overspill.views.cache import WatchCache
from overspill.views.resource import CONFIGMAPS, DEPLOYMENTS, SECRETS, SERVICEACCOUNTS, SERVICES, Resource

EnsureNamespace = Callable[[str], None]
IDENTITY_NAMESPACE = "kube-system"  # every cluster has it; its uid is the cluster's identity (as in KEP-2149)
# kinds read from cluster-wide watch-fed views. Secrets never are (no cluster-wide Secret watch anywhere): in the
# primary a GET, only when the policy opted in; in a target a watch of Overspill's copies in one namespace
# (copies_cache). PersistentVolumeClaims only by GET in targets (never copied)
_WATCHED: dict[Kind, Resource] = {Kind.CONFIG_MAP: CONFIGMAPS, Kind.SERVICE_ACCOUNT: SERVICEACCOUNTS}
SERVING_RESOURCES = (CONFIGMAPS, SERVICEACCOUNTS, SERVICES)  # started with a target's view (MANAGED_SELECTOR)


def primary_lookup(view: ClusterView | None, cluster: Cluster, namespace: str) -> Lookup:
    """Sources in the primary: from the view when it is in sync, else by GET."""
    direct = direct_lookup(cluster, namespace)

    def lookup(kind: Kind, name: str) -> Mapping[str, Any] | None:
        resource = _WATCHED.get(kind)
        if view is not None and resource is not None:
            cache = view.cache(resource)
            if cache.synced:
                return cache.get(namespace, name)
        return direct(kind, name)

    return lookup


# a target holding no replicas re-reads a name its view does not hold at most this often: an idle policy makes no
# GET per poll, and a burst starting re-plans with fresh reads (a target holding replicas never uses the memo)
MISS_TTL = 60.0
Misses = dict[tuple[str, str, Kind, str], tuple[float, Mapping[str, Any] | None]]


def target_lookup(
    view: ClusterView | None,
    cluster: Cluster,
    namespace: str,
    misses: Misses | None = None,
    target: str = "",
    clock: Callable[[], float] = time.monotonic,
) -> Lookup:
    """Objects in a target: our copies from the view (it watches only what Overspill manages); a name the view does
    not hold is looked up by GET, which tells an object someone else put there from one that is absent."""
    direct = direct_lookup(cluster, namespace)

    def lookup(kind: Kind, name: str) -> Mapping[str, Any] | None:
        cache = copies_cache(view, kind, namespace, start=misses is None)
        found = cache.get(namespace, name) if cache is not None and cache.synced else None
        if found is not None:
            return found
        if misses is None:
            return direct(kind, name)
        key = (target, namespace, kind, name)
        seen = misses.get(key)
        if seen is not None and clock() - seen[0] < MISS_TTL:
            return seen[1]
        obj = direct(kind, name)
        misses[key] = (clock(), obj)
        return obj

    return lookup


Copies = Callable[[], Mapping[tuple[Kind, str], Mapping[str, Any]]]


def running(view: ClusterView | None, resource: Resource) -> WatchCache | None:
    """The view's cache of what Overspill manages of `resource`, where it runs (started with the view:
    SERVING_RESOURCES). Never started here: a kind the target does not serve would make its whole view not ready."""
    # by its key: every ConfigMap and ServiceAccount lookup of every policy asks, and a view holds a cache per
    # namespace of Secret copies besides
    return view.existing(resource, MANAGED_SELECTOR) if view is not None else None


def copies_cache(view: ClusterView | None, kind: Kind, namespace: str, *, start: bool) -> WatchCache | None:
    """The view's cache of Overspill's copies of `kind` that holds `namespace`, or None.

    ConfigMaps and ServiceAccounts: the cluster-wide watches started with the view. Secrets: a watch of the one
    namespace, since a target grants Secrets only in the namespaces mirrors land in (manifests/secondary), started
    by a policy holding replicas there (`start`) and optional: where it is refused, the caller LISTs as before.
    Without it, every policy holding replicas LISTed its namespace's copies every poll: at 1,000 bursting policies,
    100 LISTs a second to the secondary."""
    if view is None:
        return None
    if kind == Kind.SECRET:
        found = view.cache(SECRETS, MANAGED_SELECTOR, namespace=namespace, optional=True, start=False)
        if start and not found.started:
            found = view.cache(SECRETS, MANAGED_SELECTOR, namespace=namespace, optional=True)
        return found
    resource = _WATCHED.get(kind)
    return running(view, resource) if resource is not None else None


def target_copies(
    view: ClusterView | None,
    cluster: Cluster,
    namespace: str,
    misses: Misses | None = None,
    target: str = "",
    clock: Callable[[], float] = time.monotonic,
) -> Copies:
    """Every copy Overspill manages in a target's namespace, to find the policy's stale ones: from the view's
    watches (copies_cache), else by a LIST, remembered for MISS_TTL where the target holds no replicas (`misses`
    given), so an idle policy makes no LIST per poll."""

    def listed(kind: Kind) -> list[Mapping[str, Any]]:
        cache = copies_cache(view, kind, namespace, start=misses is None)
        if cache is not None and cache.synced:
            return list(cache.list(namespace))
        key = (target, namespace, kind, "")  # "" is no object's name: the memo of the whole listing
        seen = misses.get(key) if misses is not None else None
        if seen is None or clock() - seen[0] >= MISS_TTL:
            try:
                seen = (clock(), {"items": list_managed(cluster, kind, namespace)})
            except ApiException:
                # stale copies are looked for again next poll; a listing refused now must not hold a burst
                return []
            if misses is not None:
                misses[key] = seen
        return list((seen[1] or {}).get("items") or [])

    def copies() -> dict[tuple[Kind, str], Mapping[str, Any]]:
        return {
            (kind, str((obj.get("metadata") or {}).get("name"))): obj for kind in CARRIED_KINDS for obj in listed(kind)
        }

    return copies


@dataclass
class Side:
    """One target as the act step sees it for serving: where the mirror lives and how many replicas it has."""

    name: str
    namespace: str
    cluster: Cluster
    ensure_namespace: EnsureNamespace
    replicas: int = 0
    ready: int = 0
    overrides: TargetOverrides | None = None  # the target's overrides: the mirror's pods reference what they leave
    lookup: Lookup | None = None  # the target's objects in `namespace` (a view); None: GET
    copies: Copies | None = None  # every copy Overspill manages in `namespace`; None: LIST
    view: ClusterView | None = None  # the target's view, for the burst Service
    plan: CarryPlan = field(default_factory=CarryPlan)
    remembered: bool = False  # planned from reads up to MISS_TTL old (an idle target): re-read before it grows


def export_base(spec_raw: Mapping[str, Any] | None) -> str:
    """`traffic.exportName`, or `<serviceRef.name>-burst`: what each target's burst Service name starts with."""
    traffic = (spec_raw or {}).get("traffic") or {}
    return str(traffic.get("exportName") or f"{(traffic.get('serviceRef') or {}).get('name') or ''}-burst")


def burst_service_name(service: str, base: str, target: str) -> str:
    """The burst Service's name in one target: `<base>-<target>`, except when `base` is the primary Service's own
    name (meshes that merge same-named Services across clusters: the name must be the same everywhere)."""
    return base if base == service else weights.backend_name(base, target)


def import_names(base: str, targets: Iterable[str]) -> dict[str, str]:
    """Every name a ServiceImport of the policy's can have in its route, by target: each of `targets` (the spec's
    and every known BurstTarget, so a dropped one is still found) and "" for the one shared name used before
    imports were per target (a route written by an older Overspill drains it like a dropped target)."""
    return {"": base, **{t: weights.backend_name(base, t) for t in targets}}


def route_names(spec: BurstPolicySpec | None, targets: Iterable[str]) -> tuple[dict[str, str], str, float | None]:
    """(import names by target, import group, drain seconds) of a spec, for draining its routes; without
    spec.traffic, only the routes' records find the policy's backendRefs, and hold the drain time (None)."""
    t = spec.traffic if spec is not None else None
    if t is None:
        return {}, weights.MCS_GROUP, None
    return import_names(t.service_name, targets), t.import_group, float(t.drain_seconds)


def raw_route_names(spec_raw: Mapping[str, Any], targets: Iterable[str]) -> tuple[dict[str, str], str, float | None]:
    """`route_names` from a spec that may not parse (a deletion): what it says, with the defaults."""
    traffic = spec_raw.get("traffic") or {}
    if not isinstance(traffic, dict) or not (traffic.get("serviceRef") or {}).get("name"):
        return {}, weights.MCS_GROUP, None
    drain = traffic.get("drainSeconds")
    return (
        import_names(export_base(spec_raw), targets),
        str(traffic.get("importGroup") or weights.MCS_GROUP),
        float(drain) if isinstance(drain, int | float) else weights.DEFAULT_DRAIN,
    )


def _observed(side: Side, there: Lookup) -> carry.Observed | None:
    """Who uses what in the side's namespace, from the mirrors the target's view holds; None while it is not in
    sync (the copy's owners annotation decides then)."""
    if side.view is None:
        return None
    cache = side.view.cache(DEPLOYMENTS, MANAGED_SELECTOR)
    if not cache.synced:
        return None
    return carry.observe_users(cache.list(side.namespace), lambda name: there(Kind.SERVICE_ACCOUNT, name))


def burst_imports(sides: Iterable[Side], policy_uid: str, group: str) -> dict[weights.Key, weights.Recorded]:
    """The imports of the policy's burst Services in the targets, by the targets' views: every name the policy
    exported under (an old `exportName` too: those Services stay until the policy goes), for its target."""
    out: dict[weights.Key, weights.Recorded] = {}
    for side in sides:
        cache = running(side.view, SERVICES)
        if cache is None or not cache.synced:
            continue
        for svc in cache.list(side.namespace, {carry.POLICY_UID: policy_uid}):
            meta = svc.get("metadata") or {}
            if (meta.get("annotations") or {}).get(EXPORT_GROUP, weights.MCS_GROUP) == group:
                out[(group, side.namespace, str(meta.get("name")))] = weights.Recorded(side.name)
    return out


class Serving:
    def __init__(self, primary: Cluster, origin_cluster: str, primary_view: ClusterView | None = None) -> None:
        self.primary = primary
        self.origin_cluster = origin_cluster
        self.primary_view = primary_view
        self._identity: str | None = None

    def installation(self) -> str:
        """This installation's mark on its copies: the clusterName and the primary's kube-system uid (unique per
        cluster, where clusterName is only what the installer typed). Not readable (no such namespace, RBAC from
        an older chart): the clusterName alone, as before; a transient error is retried at the next poll."""
        if self._identity is None:
            try:
                ns: Any = self.primary.core.read_namespace(IDENTITY_NAMESPACE, _request_timeout=TIMEOUT)
                self._identity = f"{self.origin_cluster}/{ns.metadata.uid}"
            except ApiException as err:
                if err.status not in (403, 404):
                    return self.origin_cluster
                self._identity = self.origin_cluster
        return self._identity

    # ---- dependencies ---------------------------------------------------------------------------------------
    def admitted(self, workload: Mapping[str, Any], namespace: str) -> dict[str, Any]:
        """The workload as its pods run in the primary: with the `default` ServiceAccount's pull secrets where the
        template names none (carry.with_admitted_pull_secrets). The mirror is built from it, and its plan reads it."""
        pod = ((workload.get("spec") or {}).get("template") or {}).get("spec") or {}
        if pod.get("imagePullSecrets"):
            return dict(workload)
        if (pod.get("serviceAccountName") or pod.get("serviceAccount") or "default") != "default":
            return dict(workload)
        sa = primary_lookup(self.primary_view, self.primary, namespace)(Kind.SERVICE_ACCOUNT, "default")
        return carry.with_admitted_pull_secrets(workload, sa)

    def plan(
        self,
        spec: BurstPolicySpec,
        namespace: str,
        policy_uid: str,
        workload: Mapping[str, Any] | None,
        sides: list[Side],
        source_lookup: Lookup | None = None,
    ) -> None:
        """Fill each side's carry plan (reads only). A source is read only when its kind is propagated: a Secret
        is never read from the primary unless the policy owner opted in."""
        source = source_lookup or primary_lookup(self.primary_view, self.primary, namespace)
        prop = spec.propagation

        def read_source(kind: Kind, name: str) -> Mapping[str, Any] | None:
            return source(kind, name) if carry.propagated(kind, prop) else None

        for side in sides:
            # what the mirror's pods reference, as build_mirror makes them (overrides.env may replace a Secret's
            # env var, overrides.volumes a claim): an object only the primary's template names is never carried
            refs = list(carry.references(mirror_template(dict(workload or {}), side.overrides).get("spec") or {}))
            sa = next((r for r in refs if r.kind == Kind.SERVICE_ACCOUNT), None)
            if sa is not None and prop.service_account:
                sa_obj = read_source(Kind.SERVICE_ACCOUNT, sa.name)
                if sa_obj is not None:
                    refs += [r for r in carry.service_account_references(sa_obj) if r.key not in {x.key for x in refs}]
            there = side.lookup or direct_lookup(side.cluster, side.namespace)
            listing = side.copies or target_copies(side.view, side.cluster, side.namespace)
            found = carry.Sources(
                primary={r.key: read_source(r.kind, r.name) for r in refs},
                target={r.key: there(r.kind, r.name) for r in refs},
                observed=functools.partial(_observed, side, there),
                copies=listing(),
            )
            side.plan = carry.plan(
                refs,
                prop,
                found,
                namespace=side.namespace,
                policy_uid=policy_uid,
                origin_cluster=self.origin_cluster,
                origin_namespace=namespace,
                installation=self.installation(),
            )

    def carry(self, side: Side, copies: bool = True) -> tuple[int, str | None]:
        """Remove revoked copies, then (with `copies`) write the side's copies; (writes, problem). A 409 means
        someone else wrote the name in between: it is re-planned next poll (a conflict if it is not ours)."""
        writer = DependencyWriter(side.cluster, side.ensure_namespace)
        done = 0
        item = None
        try:
            for item in side.plan.revokes:
                writer.remove(item, side.namespace)
                done += 1
            for item in side.plan.writes if copies else ():
                writer.write(item)
                done += 1
        except ApiException as err:
            assert item is not None
            what = f"{item.ref.kind.value} {side.namespace}/{item.ref.name}"
            if err.status == 409:
                return done, f"{what} changed in BurstTarget {side.name} while being copied; retried next poll"
            return done, f"could not copy {what} to BurstTarget {side.name}: HTTP {err.status} {err.reason}"
        return done, None

    @staticmethod
    def dependency_report(sides: list[Side], holding: set[str]) -> DependencyReport:
        problems = {
            s.name: carry.describe(s.name, s.namespace, s.plan.blocking)
            for s in sides
            if s.name in holding and s.plan.blocking
        }
        carried = sum(
            1
            for s in sides
            if s.name in holding
            for i in s.plan.items
            if i.state in (carry.State.CARRIED, carry.State.TO_COPY, carry.State.PROVIDED)
        )
        return DependencyReport(problems=problems, carried=carried)

    def remove(self, cluster: Cluster, namespace: str, policy_uid: str) -> int:
        """Every copy, burst Service and ServiceExport of the policy in that namespace, found by label."""
        removed = DependencyWriter(cluster, lambda _: None).remove_policy_copies(namespace, policy_uid)
        return removed + TrafficClient(cluster).remove_policy_objects(namespace, policy_uid)

    # ---- traffic --------------------------------------------------------------------------------------------
    @staticmethod
    def _cached(
        view: ClusterView | None, resource: Resource, selector: str | None, namespace: str, name: str
    ) -> dict[str, Any] | None:
        if view is None:
            return None
        cache = view.cache(resource, selector)
        return cache.get(namespace, name) if cache.synced else None

    def traffic(
        self,
        spec: BurstPolicySpec,
        namespace: str,
        policy_uid: str,
        sides: list[Side],
        holding: set[str],
        act: bool,
    ) -> tuple[int, TrafficReport | None]:
        """Burst Service and ServiceExport in every target holding replicas; (writes, report)."""
        t = spec.traffic
        if t is None:
            return 0, None
        name = t.service_name
        problems: list[str] = []
        exports: list[ExportStatus] = []
        writes = 0
        try:
            primary_svc = self._cached(self.primary_view, SERVICES, None, namespace, t.service_ref.name)
            if primary_svc is None:
                primary_svc = TrafficClient(self.primary).read_service(namespace, t.service_ref.name)
        except ApiException as err:
            primary_svc = None
            problems.append(f"cannot read Service {namespace}/{t.service_ref.name}: HTTP {err.status}")
        if primary_svc is None and not problems:
            problems.append(
                f"Service {namespace}/{t.service_ref.name} (spec.traffic.serviceRef) not found in the primary"
            )
        for side in sides:
            if side.name not in holding or primary_svc is None:
                continue
            origin = carry.origin_of(self.origin_cluster, namespace, t.service_ref.name)
            n, status = self._target_traffic(
                side,
                primary_svc,
                burst_service_name(t.service_ref.name, name, side.name),
                policy_uid,
                origin,
                t.service_annotations,
                act,
                t.import_group,
            )
            writes += n
            if status.state == "Exported" and t.http_route_ref is not None:
                status = self._imported(status, side.namespace, t.import_group)
            exports.append(status)
            if status.state != "Exported":
                problems.append(f"BurstTarget {side.name}: {status.message}")
        return writes, TrafficReport(service=name, exports=tuple(exports), problems=tuple(problems))

    @staticmethod
    def untraffic(policy_uid: str, sides: Iterable[Side]) -> tuple[int, list[str]]:
        """spec.traffic taken out (called once no route holds the policy's backendRefs any more): its burst Services
        and ServiceExports leave every target, while the burst itself goes on. A target's synced view says whether
        it holds any (no request per poll for a policy that never had traffic); without one, a LIST. Returns
        (objects removed, problems); what could not be removed is tried again next poll."""
        removed, problems = 0, []
        for side in sides:
            cache = running(side.view, SERVICES)
            if cache is not None and cache.synced and not cache.list(side.namespace, {carry.POLICY_UID: policy_uid}):
                continue
            try:
                removed += TrafficClient(side.cluster).remove_policy_objects(side.namespace, policy_uid)
            except ApiException as err:
                problems.append(
                    f"BurstTarget {side.name}: could not remove the burst Service and ServiceExport (spec.traffic "
                    f"removed): HTTP {err.status} {err.reason}; retried next poll"
                )
        return removed, problems

    def _imported(self, status: ExportStatus, namespace: str, group: str) -> ExportStatus:
        """An export gets weight only where the primary holds its ServiceImport: the route names the import, and a
        Gateway answers the share of a backendRef it cannot resolve with 500s. A primary that serves no
        ServiceImport API in `group` (imports made another way) is not checked; a failed read is: no weight."""
        tc = TrafficClient(self.primary)
        where = f"ServiceImport {namespace}/{status.service} in the primary"
        try:
            version = tc.import_version(group)
            if version is None or tc.read_import(version, namespace, status.service, group) is not None:
                return status
        except ApiException as err:
            why = f"cannot read {where}: HTTP {err.status} {err.reason}"
            if err.status == 403:
                why += f"; grant the operator get on serviceimports.{group} in the primary"
            return status.model_copy(update={"state": "Unavailable", "message": f"{why}: it gets no weight"})
        return status.model_copy(
            update={
                "state": "NotImported",
                "message": f"exported, but no {where}: it gets no weight (requests to it would fail); check the "
                f"multi-cluster controller, and that namespace {namespace} exists in the primary (namespace sameness)",
            }
        )

    def _target_traffic(
        self,
        side: Side,
        primary_svc: Mapping[str, Any],
        name: str,
        policy_uid: str,
        origin: str,
        annotations: Mapping[str, str] | None,
        act: bool,
        group: str,
    ) -> tuple[int, ExportStatus]:
        tc = TrafficClient(side.cluster)
        writes = 0
        try:
            body = burst_service(
                primary_svc,
                name=name,
                namespace=side.namespace,
                policy_uid=policy_uid,
                origin=origin,
                annotations={**(annotations or {}), EXPORT_GROUP: group},
                # the mirror's pods carry the policy-uid label: the burst Service selects only them
                extra_selector={carry.POLICY_UID: policy_uid},
            )
            if act:
                existing = self._cached(side.view, SERVICES, MANAGED_SELECTOR, side.namespace, name)
                if existing is None:
                    existing = tc.read_service(side.namespace, name)
                writes += tc.apply_service(body, existing, policy_uid, side.ensure_namespace)
            version = tc.mcs_version(group)
            if version is None:
                return writes, ExportStatus(
                    target=side.name,
                    service=name,
                    state="ServiceOnly",
                    message=f"no ServiceExport API ({group}) in the target: Service "
                    f"{side.namespace}/{name} selects the burst replicas there but is not exported; install an "
                    "MCS implementation, or see docs/traffic.md for ClusterMesh and mesh alternatives",
                )
            existing_export = tc.read_export(version, side.namespace, name, group)
            if act:
                export = service_export(name, side.namespace, policy_uid, origin, version, group)
                writes += tc.ensure_export(export, existing_export, policy_uid)
            if existing_export is None:
                return writes, ExportStatus(
                    target=side.name, service=name, state="Pending", message=f"ServiceExport {name} just created"
                )
            state = export_state(existing_export)
            return writes, ExportStatus(
                target=side.name,
                service=name,
                state=state.state,
                message=f"ServiceExport {side.namespace}/{name}: {state.message}" if state.message else "",
            )
        except TrafficConflict as err:
            return writes, ExportStatus(target=side.name, service=name, state="Conflict", message=str(err))
        except ValueError as err:
            return writes, ExportStatus(target=side.name, service=name, state="Invalid", message=str(err))
        except ApiException as err:
            return writes, ExportStatus(
                target=side.name, service=name, state="Unavailable", message=f"HTTP {err.status} {err.reason}"
            )

    def route(
        self,
        spec: BurstPolicySpec,
        namespace: str,
        policy_uid: str,
        backends: list[weights.Backend],
        names: Mapping[str, str],
        primary_ready: int,
        ready: Mapping[str, int],
        planned: Mapping[str, int],
        act: bool,
        now: float,
        sides: Iterable[Side] = (),
    ) -> RouteStep:
        """Write the HTTPRoute's weights for this step, with the record of the policy's backendRefs. `ready` holds
        only replicas requests can reach (Ready, and their target's export Exported); `names` every import name of
        the policy's by the current naming rule (dropped targets too); the record finds the others."""
        t = spec.traffic
        if t is None or t.http_route_ref is None:
            return RouteStep()
        rc = RouteClient(self.primary)
        route_name = t.http_route_ref.name
        where = f"HTTPRoute {namespace}/{route_name}"
        try:
            route = rc.read(namespace, route_name)
        except ApiException as err:
            return RouteStep(problem=f"cannot read {where}: HTTP {err.status}", confirmed=False)
        if route is None:  # no route: nothing sends requests to burst replicas through it
            return RouteStep(problem=f"{where} (spec.traffic.httpRouteRef) not found")
        rules = (route.get("spec") or {}).get("rules") or []
        key, local_key = route_record_key(policy_uid), route_local_key(policy_uid)
        annotations = (route.get("metadata") or {}).get("annotations") or {}
        record = weights.parse_record(annotations.get(key))
        group, service, drain = t.import_group, t.service_ref.name, float(t.drain_seconds)
        written = record
        # other policies' backendRefs in the same rule are theirs to weight, not a canary whose share is kept
        peers = route_peers(annotations, policy_uid)
        local = f"{namespace}/{service}"
        # the record may have been dropped by another writer (GitOps, `kubectl replace`): the policy's burst
        # Services in the targets (found by its label, whatever their name) still say which imports are its own
        record = {**burst_imports(sides, policy_uid, group), **record}
        before = weights.current(rules, namespace=namespace, service=service, names=names, group=group, record=record)
        problem = None
        w = weights.weights(primary_ready, weights.kept_ready(ready, planned))
        if before is None:
            # nothing to weigh the imports against: the policy's backendRefs are drained (0, then out)
            problem = (
                f"{where} has no backendRef to Service {service}: add it so Overspill can weight it against the "
                "burst replicas"
            )
            backends, w = [], weights.Weights(0)
        new_rules = weights.route_rules(
            rules,
            namespace=namespace,
            service=service,
            backends=backends,
            names=names,
            w=w,
            group=group,
            record=record,
            now=now,
            drain=drain,
            peers=peers,
        )
        new_record = weights.record_after(
            rules, new_rules, namespace=namespace, names=names, group=group, record=record, now=now, drain=drain
        )
        if out := weights.left_out(new_rules, backends, namespace=namespace, group=group):
            full = (
                f"{where}: a rule holds at most {weights.BACKEND_REFS_MAX} backendRefs (Gateway API): no weight for "
                f"BurstTarget {', '.join(out)}; move other backends to another rule, or use fewer targets"
            )
            problem = f"{problem}; {full}" if problem else full
        lowered = self._lowered(rules, new_rules, namespace, names, group, record)
        after = weights.current(
            new_rules, namespace=namespace, service=service, names=names, group=group, record=record
        )
        if not act or (new_rules == rules and new_record == written and annotations.get(local_key) == local):
            return RouteStep(0, before, after, problem, draining=weights.draining(new_record, now, drain))
        try:
            rc.write_rules(route, new_rules, {key: weights.dump_record(new_record), local_key: local})
        except ApiException as err:
            why = f"could not update {where}: HTTP {err.status}"
            return RouteStep(0, before, before, f"{problem}; {why}" if problem else why, confirmed=False)
        return RouteStep(1, before, after, problem, draining=weights.draining(new_record, now, drain), lowered=lowered)

    @staticmethod
    def _lowered(
        rules: list[Any],
        new_rules: list[dict[str, Any]],
        namespace: str,
        names: Mapping[str, str],
        group: str,
        record: weights.Record,
    ) -> set[str]:
        was = weights.burst_weights(rules, namespace=namespace, names=names, group=group, record=record)
        will = weights.burst_weights(new_rules, namespace=namespace, names=names, group=group, record=record)
        return {t for t, n in was.items() if will.get(t, 0) < n}

    def unroute(
        self,
        namespace: str,
        policy_uid: str,
        routes: Iterable[str],
        names: Mapping[str, str],
        group: str,
        drain: float | None,
        now: float,
    ) -> UnrouteStep:
        """The policy's backendRefs (as recorded, or by `names`) leave each of `routes`: weight 0, then, once at 0
        for `drain` seconds (None: the drain time recorded with each), out of the route, with the record. For a
        deleted policy or workload, and for a route the spec no longer names. API errors are raised: the caller
        keeps everything behind the route."""
        rc = RouteClient(self.primary)
        key = route_record_key(policy_uid)
        step = UnrouteStep()
        for name in sorted(set(routes)):
            route = rc.read(namespace, name)
            if route is None:
                continue
            rules = (route.get("spec") or {}).get("rules") or []
            annotations = (route.get("metadata") or {}).get("annotations") or {}
            record = weights.parse_record(annotations.get(key))
            new_rules = weights.without_burst(
                rules, names=names, group=group, record=record, namespace=namespace, now=now, drain=drain
            )
            new_record = weights.record_after(
                rules, new_rules, namespace=namespace, names=names, group=group, record=record, now=now, drain=drain
            )
            if new_rules != rules or (key in annotations and new_record != record):
                dumped = weights.dump_record(new_record)
                rc.write_rules(
                    route,
                    new_rules,
                    {
                        key: dumped,
                        route_local_key(policy_uid): None
                        if dumped is None
                        else annotations.get(route_local_key(policy_uid)),
                    },
                )
            step.held |= self._lowered(rules, new_rules, namespace, names, group, record)
            left = weights.draining(new_record, now, drain)
            step.held |= set(left)
            step.left = max([step.left, *left.values()])
            if new_record:
                step.routes.append(name)
        return step


@dataclass
class UnrouteStep:
    """Routes the policy's backendRefs are leaving: targets that must not shrink now (their weight was just
    lowered, or is 0 for less than the drain time), the seconds the longest drain has left, and the routes that
    still hold backendRefs of the policy's."""

    held: set[str] = field(default_factory=set)
    left: float = 0.0
    routes: list[str] = field(default_factory=list)

    @property
    def waiting(self) -> bool:
        return bool(self.held) or self.left > 0


@dataclass(frozen=True)
class RouteStep:
    """One poll's route write: (writes, weights before, weights now, problem), and whether the route is known to
    hold `now` (written, or already so). Unconfirmed: no secondary may shrink, its weight may be unchanged."""

    writes: int = 0
    before: weights.Weights | None = None
    now: weights.Weights | None = None
    problem: str | None = None
    confirmed: bool = True
    draining: Mapping[str, float] = field(default_factory=dict)  # target -> seconds its weight is still to stay 0
    lowered: set[str] = field(default_factory=set)  # targets whose weight this write lowered
