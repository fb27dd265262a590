"""observe -> decide -> act -> report for one BurstPolicy. Adapters are passed in; this module has no globals."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from kubernetes.client import ApiException

from overspill import metrics, report
from overspill.adapters.kube import DELETION_COST, Cluster, PodInfo, pod_info
from overspill.adapters.mirror import (
    DRIFT_STREAK,
    POLICY_UID,
    TARGET_NAME,
    TEMPLATE_HASH,
    MirrorClient,
    MirrorConflict,
    MirrorObservation,
    MirrorRef,
    build_mirror,
    covers,
    observe,
    paused_while_busy,
    rolling,
    rollout_covers,
    template_fingerprint,
)
from overspill.adapters.prometheus import MetricError, MetricSource
from overspill.api.policy import (
    BurstPolicySpec,
    BurstPolicyStatus,
    Mode,
    PolicyTarget,
    TemplateUpdate,
    WorkloadClass,
)
from overspill.decide import ClusterState, Decision, Placement, Snapshot, TargetState, decide, weights
from overspill.decide import busy as busy_rules
from overspill.decide.busy import BUSY_COST
from overspill.decide.capacity import admitted_shape
from overspill.decide.conflicts import autoscaler_conflict
from overspill.decide.drift import DriftStreak, corrected, decode_streak, encode_streak
from overspill.decide.reasons import Reason
from overspill.decide.tenancy import named_target_namespaces, placement_refusal, pod_security_labels
from overspill.report import DependencyReport, SafetyReport, TargetReport, TrafficReport
from overspill.serving import Misses, Serving, Side, import_names, route_names, target_copies, target_lookup
from overspill.sweep import SweepResult, sweep
from overspill.targets import TargetRegistry
from overspill.triggers import Triggers
from overspill.views import MANAGED_SELECTOR, ClusterView
from overspill.views.resource import DEPLOYMENTS, HPAS, PODS, SCALEDOBJECTS, well_known
from overspill.views.selectors import from_string, matches
from overspill.workloadkinds import WorkloadKinds

log = logging.getLogger(__name__)
FIRST_LIST_WAIT = 10.0  # seconds a tick waits for a cache it just started
__all__ = ["BUSY_COST", "Outcome", "PolicyRef", "Reconciler"]
# a capped target's usage is rebuilt from its real mirrors at least this often (hand edits, other operators)
USAGE_REBUILD_SECONDS = 30.0
Levels = dict[str, float | None]  # busy level per pod name; None: unknown (counts as busy)


@dataclass(frozen=True)
class PolicyRef:
    namespace: str
    name: str
    uid: str


@dataclass
class Outcome:
    decision: Decision | None
    status: dict[str, Any]
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    writes: int = 0


@dataclass
class _TargetView:
    spec: PolicyTarget
    state: TargetState
    ref: MirrorRef
    mirror: MirrorObservation | None
    client: MirrorClient | None
    problem: str | None
    probing: bool = False
    levels: Levels = field(default_factory=dict)  # busy level per mirror pod
    refused: str | None = None  # why the target's namespace is not allowed for this policy
    busy_problem: str | None = None  # why some mirror pods' busy levels are unknown
    live: dict[str, Any] | None = None  # the mirror as the target's view holds it
    draining: int = 0  # replicas of the policy's other mirrors in this target (unwanted, still draining)


@dataclass
class _Notes:
    """What the act step held back or corrected, for status and Events."""

    pending: dict[str, str] = field(default_factory=dict)  # target -> why its template update waits
    events: list[tuple[str, str, str]] = field(default_factory=list)
    fights: dict[str, str] = field(default_factory=dict)  # target -> who keeps rewriting its mirror
    now: float = 0.0


def _levels(
    spec: BurstPolicySpec, namespace: str, pods: tuple[PodInfo, ...], per_pod: busy_rules.PodLevels | None
) -> Levels:
    if spec.busy is None:
        return {}
    return {p.name: busy_rules.level(namespace, p.name, p.annotations, p.labels, spec.busy, per_pod) for p in pods}


def _keeps(
    spec: BurstPolicySpec,
    pods: tuple[PodInfo, ...],
    levels: Levels,
    order: busy_rules.RemovalOrder = busy_rules.RemovalOrder.REPLICA_SET,
    owner: str = "",
    start: int = 0,
) -> tuple[int, int]:
    """(busy_keep, unknown_keep) of ClusterState: the fewest replicas whose scale-in, in the order the workload's
    controller removes pods, keeps every busy-or-unknown pod, and every unknown one."""
    if spec.busy is None:
        return 0, 0
    active = [p for p in pods if not p.deleting and not p.finished]
    by_ordinal = order == busy_rules.RemovalOrder.ORDINAL
    pods_ranked = [p.candidate(busy_rules.ordinal(p.name, owner, start) if by_ordinal else None) for p in active]
    return (
        busy_rules.keep_floor(pods_ranked, levels, spec.workload_class, protect_busy=True, order=order),
        busy_rules.keep_floor(pods_ranked, levels, spec.workload_class, protect_busy=False, order=order),
    )


@dataclass
class _Serve:
    """What the act step found for dependencies and traffic, for the report."""

    sides: dict[str, Side] = field(default_factory=dict)
    template: dict[str, Any] | None = None  # the workload with its pod template, as planned from
    failed: dict[str, str] = field(default_factory=dict)  # target -> copy failure (blocks scale-up there)
    traffic: TrafficReport | None = None
    # targets where nothing of the policy shrinks this poll: the route's weight to them was just lowered or is 0
    # for less than the drain time, or the route could not be read or written (then every target)
    frozen: set[str] = field(default_factory=set)
    routes: list[str] = field(default_factory=list)  # status.routes: in, as the last poll left it; out, now
    now: float = 0.0

    def dependencies(self, holding: set[str]) -> DependencyReport:
        found = Serving.dependency_report(list(self.sides.values()), holding)
        return replace(found, problems={**found.problems, **{t: m for t, m in self.failed.items() if t in holding}})


def _state(
    replicas: int,
    pods: tuple[PodInfo, ...],
    levels: Levels,
    grace: float,
    now: float,
    *,
    ready: int | None = None,
    room: int | None = None,
    stuck_after: float | None = None,
    keeps: tuple[int, int] = (0, 0),
) -> ClusterState:
    live = [p for p in pods if not p.deleting]

    def pending_for(p: PodInfo) -> float:
        return now - p.unschedulable_since.timestamp() if p.unschedulable_since else -1.0

    return ClusterState(
        replicas=replicas,
        ready=sum(p.ready for p in live) if ready is None else ready,
        busy=sum(1 for p in live if (levels.get(p.name) or 0) > 0),
        busy_unknown=sum(1 for p in live if p.name in levels and levels[p.name] is None),
        unschedulable=sum(1 for p in live if pending_for(p) >= grace),
        scheduled=sum(1 for p in live if p.scheduled),
        room=room,
        stuck=0 if stuck_after is None else sum(1 for p in live if pending_for(p) >= stuck_after),
        busy_keep=keeps[0],
        unknown_keep=keeps[1],
    )


def _start_ordinal(obj: dict[str, Any] | None) -> int:
    """A StatefulSet's first ordinal (spec.ordinals.start); 0 for other kinds and by default."""
    start = (((obj or {}).get("spec") or {}).get("ordinals") or {}).get("start")
    return start if isinstance(start, int) and start >= 0 else 0


@dataclass(frozen=True)
class Workload:
    """The primary's workload as the view holds it."""

    replicas: int
    pods: tuple[PodInfo, ...]
    template: dict[str, Any] | None  # the object with its pod template; None for kinds read through /scale
    room: int | None


class WorkloadUnavailable(Exception):
    """The workload cannot be read now (missing, or the view is not in sync): nothing is scaled."""

    def __init__(self, message: str, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


def _seen(s: ClusterState) -> str:
    return (
        f"replicas={s.replicas} ready={s.ready} scheduled={s.scheduled} room={s.room} "
        f"unschedulable={s.unschedulable} stuck={s.stuck}"
    )


def _mirror_ref(ref: PolicyRef, spec: BurstPolicySpec, pt: PolicyTarget) -> MirrorRef:
    return MirrorRef(
        namespace=(pt.overrides.namespace if pt.overrides and pt.overrides.namespace else ref.namespace),
        name=spec.workload_ref.name,
        policy_uid=ref.uid,
    )


def _holding(views: list[_TargetView], decision: Decision) -> set[str]:
    """Targets that hold replicas or are about to: what a burst needs is carried there."""
    return {
        v.spec.name
        for v in views
        if decision.placement.targets.get(v.spec.name, 0) > 0 or (v.mirror is not None and v.mirror.replicas > 0)
    }


def _kept_streak(live: dict[str, Any], now: float) -> DriftStreak:
    """The drift backoff written on the mirror with its last correction (an operator restarted meanwhile)."""
    kept = decode_streak(((live.get("metadata") or {}).get("annotations") or {}).get(DRIFT_STREAK))
    return kept if kept is not None and kept.last <= now else DriftStreak()


class Reconciler:
    def __init__(
        self,
        *,
        primary: Cluster,
        primary_view: ClusterView,
        targets: TargetRegistry,
        triggers: Triggers | None = None,
        metrics_source: MetricSource,
        default_prometheus_url: str | None,
        origin_cluster: str,
        clock: Callable[[], float] = time.time,
        query_timeout: float = 5.0,
    ) -> None:
        self.primary = primary
        self.primary_view = primary_view
        self.targets = targets
        self.triggers = triggers
        self.metrics_source = metrics_source
        self.default_prometheus_url = default_prometheus_url
        self.origin_cluster = origin_cluster
        self.clock = clock
        self.query_timeout = query_timeout
        # per mirror (target, namespace, name): the fingerprint of its template as last written by us
        self._applied: dict[tuple[str, str, str], str] = {}
        self._drift: dict[tuple[str, str, str], DriftStreak] = {}  # mirrors whose drift corrections back off
        self._writers: dict[tuple[str, str, str], str | None] = {}  # who fights those mirrors (managedFields)
        self.serving = Serving(primary, origin_cluster, primary_view)
        self.kinds = WorkloadKinds(primary, primary_view)
        self._misses: Misses = {}  # names a target does not hold, read recently (see serving.MISS_TTL)
        # per policy uid: (target, namespace) whose copies a sweep could not remove, retried by the next one
        self._unvacated: dict[str, set[tuple[str, str]]] = {}

    # ---- observe -------------------------------------------------------------------------------------------
    def _metric(self, ref: PolicyRef, spec: BurstPolicySpec) -> tuple[float | None, str]:
        url = spec.metric.prometheus.url or self.default_prometheus_url
        if not url:
            return None, (
                "no Prometheus URL: set spec.metric.prometheus.url or start the operator with "
                "--prometheus-url / OVERSPILL_PROMETHEUS_URL"
            )
        started = time.perf_counter()
        try:
            return self.metrics_source.value(url, spec.metric.prometheus.query, self.query_timeout), ""
        except MetricError as err:
            metrics.METRIC_ERRORS.labels(ref.namespace, ref.name).inc()
            return None, str(err)
        finally:
            metrics.METRIC_LATENCY.observe(time.perf_counter() - started)

    def _per_pod(self, spec: BurstPolicySpec, url: str | None, where: str) -> tuple[busy_rules.PodLevels | None, str]:
        """Per-pod busy levels from the Prometheus at `url` (None: it cannot be asked), and why not."""
        if spec.busy is None or not spec.busy.query:
            return busy_rules.PodLevels(), ""
        if not url:
            return None, f"no Prometheus sees the pods in {where} (set spec.prometheus.url on the BurstTarget)"
        try:
            return self.metrics_source.per_pod(url, spec.busy.query, self.query_timeout), ""
        except MetricError as err:
            return None, f"the busy query failed for {where}: {err}"

    def _autoscaler_conflict(self, ref: PolicyRef, spec: BurstPolicySpec) -> str | None:
        """An HPA or ScaledObject on the same workload; kinds the view cannot list (not installed) say nothing."""
        found = []
        for resource in (HPAS, SCALEDOBJECTS):
            cache = self.primary_view.cache(resource)
            deadline = time.monotonic() + 2.0  # started at start-up: only a first use waits for the first list
            while not (cache.synced or cache.absent) and time.monotonic() < deadline:
                time.sleep(0.02)
            found.append(cache.list(ref.namespace) if cache.synced else [])
        return autoscaler_conflict(spec.workload_ref, found[0], found[1])

    def _target(
        self,
        ref: PolicyRef,
        spec: BurstPolicySpec,
        pt: PolicyTarget,
        prev: BurstPolicyStatus,
        now: float,
        shape: dict[str, Any] | None,
        template_key: str,
    ) -> _TargetView:
        mref = _mirror_ref(ref, spec, pt)
        last = next((t.replicas for t in prev.targets if t.name == pt.name), 0)
        handle = self.targets.get(pt.name)
        problem: str | None = None
        if handle is None:
            problem = f"BurstTarget {pt.name} does not exist"
        elif not handle.healthy or handle.cluster is None:
            problem = f"BurstTarget {pt.name} is unavailable: {handle.message}"
        refused = placement_refusal(pt.name, handle.spec, ref.namespace, mref.namespace) if handle else None
        base = TargetState(
            name=pt.name,
            priority=pt.priority,
            allowed=refused is None,
            cap=self._cap(pt, ref, last),
            cost_per_replica_hour=handle.spec.cost_per_replica_hour if handle else None,
            startup_seconds=handle.spec.replica_startup_seconds if handle else None,
        )
        view = handle.view if handle is not None else None
        if problem is None and handle is not None and handle.cluster is not None and view is not None:
            mirrors = view.cache(DEPLOYMENTS, MANAGED_SELECTOR)
            problem = view.problem
            if problem is None:
                try:
                    pods = [
                        p
                        for p in view.cache(PODS).by_label(POLICY_UID, ref.uid)
                        if (p.get("metadata") or {}).get("namespace") == mref.namespace
                    ]
                    live = mirrors.get(mref.namespace, mref.name)
                    obs = observe(mref, live, pods)
                except MirrorConflict as err:
                    problem = str(err)
                else:
                    self._rebuild_usage(pt.name, mirrors.list(), now)
                    url = handle.spec.prometheus.url if handle.spec.prometheus else None
                    per_pod, busy_problem = self._per_pod(spec, url, f"BurstTarget {pt.name}")
                    levels = _levels(spec, mref.namespace, obs.pods, per_pod)
                    room = view.accounting.room(admitted_shape(shape, pods)) if shape is not None else None
                    state = _state(
                        obs.replicas,
                        obs.pods,
                        levels,
                        0,
                        now,
                        ready=obs.ready,
                        room=room,
                        stuck_after=float(handle.spec.provisioning_timeout_seconds),
                        keeps=_keeps(spec, obs.pods, levels),  # a mirror is a Deployment
                    )
                    mc = MirrorClient(handle.cluster)
                    draining = sum(
                        int((m.get("spec") or {}).get("replicas") or 0)
                        for m in mirrors.by_label(POLICY_UID, ref.uid)
                        if (m.get("metadata") or {}).get("namespace") != mref.namespace
                        or (m.get("metadata") or {}).get("name") != mref.name
                    )
                    cap = self._cap(pt, ref, obs.replicas, draining)
                    healthy = replace(base, state=state, healthy=True, cap=cap)
                    return _TargetView(
                        pt,
                        healthy,
                        mref,
                        obs,
                        mc,
                        None,
                        levels=levels,
                        refused=refused,
                        busy_problem=busy_problem,
                        live=live,
                        draining=draining,
                    )
            else:
                problem = f"BurstTarget {pt.name} is unavailable: {problem}"
        elif problem is None:
            problem = f"BurstTarget {pt.name} is unavailable: no view of it yet"
        state = ClusterState(replicas=last, ready=0)
        # a target not probed yet, or whose view is still listing for the first time, is held quietly
        probing = handle is not None and (not handle.probed or (view is not None and view.starting))
        return _TargetView(
            pt, replace(base, state=state, healthy=False), mref, None, None, problem, probing, refused=refused
        )

    def _cap(self, pt: PolicyTarget, ref: PolicyRef, current: int, draining: int = 0) -> int | None:
        """The tighter of the policy's cap on the target and the room the target's shared cap leaves it (its
        own mirrors still draining there, after a namespace change, take room too)."""
        room = self.targets.room_for(pt.name, ref.uid, current + draining)
        caps = [c for c in (pt.max_replicas, None if room is None else max(0, room - draining)) if c is not None]
        return min(caps) if caps else None

    def _rebuild_usage(self, target: str, mirrors: list[dict[str, Any]], now: float) -> None:
        """The target's shared cap charged with what really runs there (at start, then now and then)."""
        ledger = self.targets.ledger
        if not ledger.stale(target, now, USAGE_REBUILD_SECONDS):
            return
        per_policy: dict[str, int] = {}
        placed = False  # through this BurstTarget (another one may name the same cluster and never used its Lease)
        for m in mirrors:
            uid = ((m.get("metadata") or {}).get("labels") or {}).get(POLICY_UID)
            if uid:
                replicas = int((m.get("spec") or {}).get("replicas") or 0)
                per_policy[uid] = per_policy.get(uid, 0) + replicas
                by = ((m.get("metadata") or {}).get("annotations") or {}).get(TARGET_NAME)
                placed = placed or (replicas > 0 and by in (None, target))
        ledger.rebuild(target, per_policy, now, placed=placed)

    def _reserve(
        self, ref: PolicyRef, views: list[_TargetView], decision: Decision, problems: dict[str, str]
    ) -> Decision:
        """Take the room the decision places on each target, atomically, before acting: what another policy
        took in the meantime is not placed (it counts as unplaced) and is planned again next poll. A target whose
        shared reservations cannot be read or written is a problem in `problems` while it holds growth back."""
        targets = dict(decision.placement.targets)
        short = 0
        for v in views:
            if v.mirror is None:
                continue
            want = targets.get(v.spec.name, 0)
            total = self.targets.ledger.reserve(v.spec.name, ref.uid, want + v.draining, v.mirror.replicas + v.draining)
            granted = max(0, total - v.draining)
            if granted < want:
                targets[v.spec.name], short = granted, short + want - granted
            # a lost shared object holds growth before planning (the room it shows is what runs): said either way
            if granted < want or self.targets.ledger.holding(v.spec.name):
                why = self.targets.ledger.problem(v.spec.name)
                if why:
                    problems[v.spec.name] = f"BurstTarget {v.spec.name}: {why}; nothing grows there until they can"
        if not short:
            return decision
        return replace(
            decision, placement=replace(decision.placement, targets=targets), unplaced=decision.unplaced + short
        )

    # ---- act -----------------------------------------------------------------------------------------------
    def _deletion_costs(
        self,
        spec: BurstPolicySpec,
        namespace: str,
        pods: tuple[PodInfo, ...],
        levels: Levels,
        patch: Callable[[str, str, int], None],
    ) -> int:
        writes = 0
        live = [p for p in pods if not p.deleting]
        costs = busy_rules.deletion_costs({p.name: levels.get(p.name, 0.0) for p in live}, spec.workload_class)
        for pod in live:
            cost = costs[pod.name]
            if cost is None:
                continue  # unknown: the cost it has stays (a busy runner keeps its protection)
            if pod.annotations.get(DELETION_COST, "0") != str(cost):
                patch(namespace, pod.name, cost)
                writes += 1
        return writes

    def _apply_target(
        self,
        ref: PolicyRef,
        spec: BurstPolicySpec,
        view: _TargetView,
        want: int,
        template: Callable[[], dict[str, Any]],
        notes: _Notes,
        dependencies_ready: bool = True,
    ) -> int:
        """Create, update or scale one target's mirror. `dependencies_ready`: what the wanted template needs is in
        the target; if not, a changed template is held (the running pods keep theirs): its rollout would start pods
        that cannot run and, by maxUnavailable, take serving ones down for them."""
        assert view.client is not None and view.mirror is not None
        obs = view.mirror
        if not obs.exists and want == 0:
            return 0
        key = (view.spec.name, view.ref.namespace, view.ref.name)
        body = self._mirror_body(ref, spec, view.spec, template(), want) if want > 0 else None
        if not obs.exists:
            assert body is not None
            handle = self.targets.get(view.spec.name)
            labels = pod_security_labels(handle.spec) if handle is not None else None
            stored = view.client.create(body, namespace_labels=labels)
            if stored is not None:
                self._applied[key] = template_fingerprint(stored)
            return 1
        held = self._hold_rollout(spec, view, key, notes) if view.live is not None else None
        if held is not None:  # the rollout is paused (or just resumed): the template waits for a poll
            if obs.replicas != want:
                view.client.scale(view.ref, want)
                held += 1
            return held
        if body is not None and view.live is not None:
            changed = body["metadata"]["annotations"][TEMPLATE_HASH] != obs.template_hash
            drifted = self._drifted(key, body, view.live, view.client)
            if not changed and not drifted and not rollout_covers(body, view.live):
                # the primary's rollout strategy changed, nothing else (the hash covers the template only): no
                # pod restarts for it, so it goes at once, busy runners or not
                annotated = bool((view.live.get("metadata") or {}).get("annotations"))
                self._applied[key] = template_fingerprint(view.client.replace(body, annotated=annotated))
                return 1
            streak = self._drift.get(key) or _kept_streak(view.live, notes.now)
            if not drifted and streak.quiet(notes.now):
                self._drift.pop(key, None)
                self._writers.pop(key, None)
            elif not drifted and streak.fight and not streak.may_correct(notes.now):
                # the other writer has not struck again yet: the fight stays reported until its backoff ends
                notes.fights[view.spec.name] = self._fight(view, streak)
            if changed or drifted:
                if changed and not dependencies_ready:
                    notes.pending[view.spec.name] = (
                        f"the pod template of mirror {view.ref.namespace}/{view.ref.name} in {view.spec.name} "
                        "changed; the update waits until what the new template references is there "
                        "(DependenciesReady): the running pods keep the template they run"
                    )
                elif self._waits_for_idle(spec, view):
                    busy = sum(1 for v in view.levels.values() if v is None or v > 0)
                    notes.pending[view.spec.name] = (
                        f"the pod template of mirror {view.ref.namespace}/{view.ref.name} in {view.spec.name} "
                        f"changed; the update waits while {busy} runners are busy (busy.templateUpdate: WaitForIdle)"
                    )
                elif drifted and not changed and not streak.may_correct(notes.now):
                    notes.fights[view.spec.name] = self._fight(view, streak)
                else:
                    if drifted and not changed and streak.corrections:  # drift again after a correction: a fight
                        self._writers[key] = self._last_writer(view)
                    if drifted and not changed:
                        streak = corrected(streak, notes.now, float(spec.behavior.poll_interval_seconds))
                        body["metadata"]["annotations"][DRIFT_STREAK] = encode_streak(streak)  # kept over restarts
                    annotated = bool((view.live.get("metadata") or {}).get("annotations"))
                    stored = view.client.replace(body, annotated=annotated)
                    self._applied[key] = template_fingerprint(stored)
                    if drifted and not changed:
                        self._drift[key] = streak
                        where = f"mirror {view.ref.namespace}/{view.ref.name} in {view.spec.name}"
                        if streak.fight:
                            notes.fights[view.spec.name] = self._fight(view, streak)
                            notes.events.append(("Warning", "MirrorDriftFight", notes.fights[view.spec.name]))
                        else:
                            notes.events.append(
                                (
                                    "Normal",
                                    "MirrorDriftCorrected",
                                    f"{where} was changed by someone else; its template was replaced with the "
                                    "desired one",
                                )
                            )
                    return 1
        if obs.replicas != want:
            view.client.scale(view.ref, want)
            return 1
        return 0

    @staticmethod
    def _last_writer(view: _TargetView) -> str | None:
        assert view.client is not None
        try:
            return view.client.last_writer(view.ref)
        except Exception:  # the name is a courtesy: unreadable now, the fight is reported without it
            return None

    def _fight(self, view: _TargetView, streak: DriftStreak) -> str:
        """The same words from one correction to the next (a countdown would rewrite the status every poll)."""
        writer = self._writers.get((view.spec.name, view.ref.namespace, view.ref.name))
        who = f"{writer!r} (managedFields)" if writer else "another writer"
        return (
            f"mirror {view.ref.namespace}/{view.ref.name} in {view.spec.name} is rewritten by {who} after each "
            f"correction: {streak.corrections} corrections in a row, now at most one per "
            f"{streak.not_before - streak.last:.0f} s (backoff up to 5 min); exclude Overspill's mirrors "
            "(app.kubernetes.io/managed-by=overspill) from it"
        )

    def _drifted(
        self, key: tuple[str, str, str], body: dict[str, Any], live: dict[str, Any], client: MirrorClient
    ) -> bool:
        """The live template differs from what was last written (a hand edit, a merge by another tool). After a
        restart, what was written is not known: a removed or changed field shows at once; for an added one the
        server is asked (a dry run, once per mirror) what it would store for the desired template."""
        applied = self._applied.get(key)
        if applied is None:
            if not covers(body["spec"]["template"], (live.get("spec") or {}).get("template")):
                return True
            if not rollout_covers(body, live):
                return True
            try:
                annotated = bool((live.get("metadata") or {}).get("annotations"))
                desired = template_fingerprint(client.stored_as(body, annotated=annotated))
            except Exception:  # unreachable now: asked again next poll
                return False
            if template_fingerprint(live) != desired:
                return True
            self._applied[key] = desired
            return False
        return template_fingerprint(live) != applied

    def _hold_rollout(
        self, spec: BurstPolicySpec, view: _TargetView, key: tuple[str, str, str], notes: _Notes
    ) -> int | None:
        """A template change goes out only while every runner is idle, but runners pick up jobs while the Deployment
        controller replaces them one by one: while a rollout is under way and any runner is busy (or unknown), the
        mirror is paused (spec.paused, marked as Overspill's), and resumed once all are idle. Returns the writes
        made while it holds the rollout (or as it resumes it); None: nothing held, the template may be written."""
        assert view.client is not None and view.live is not None
        live = view.live
        ours = paused_while_busy(live)
        if not self._waits_for_idle(spec, view) or not rolling(live):
            if not ours:
                return None
            self._applied[key] = template_fingerprint(view.client.pause(view.ref, False))
            return 1
        busy = sum(1 for v in view.levels.values() if v is None or v > 0)
        notes.pending[view.spec.name] = (
            f"the rollout of mirror {view.ref.namespace}/{view.ref.name} in {view.spec.name} is paused while {busy} "
            "runners are busy (busy.templateUpdate: WaitForIdle)"
        )
        if ours:
            return 0
        self._applied[key] = template_fingerprint(view.client.pause(view.ref, True))
        return 1

    @staticmethod
    def _waits_for_idle(spec: BurstPolicySpec, view: _TargetView) -> bool:
        """A CI runner mirror's rollout would kill busy runners: it waits while any is busy (or unknown)."""
        if spec.workload_class != WorkloadClass.CI_RUNNER or spec.busy is None:
            return False
        if spec.busy.template_update != TemplateUpdate.WAIT_FOR_IDLE:
            return False
        return any(v is None or v > 0 for v in view.levels.values())

    # ---- the loop body -------------------------------------------------------------------------------------
    def reconcile(
        self, ref: PolicyRef, spec: BurstPolicySpec, prev: BurstPolicyStatus, generation: int | None
    ) -> Outcome:
        started = time.perf_counter()
        try:
            return self._reconcile(ref, spec, prev, generation)
        finally:
            metrics.RECONCILE_SECONDS.observe(time.perf_counter() - started)

    def _workload(self, ref: PolicyRef, spec: BurstPolicySpec) -> Workload:
        """The workload, its pods and its room from the primary's view: no GET or LIST for built-in kinds."""
        wl = spec.workload_ref
        what = f"{wl.kind} {ref.namespace}/{wl.name}"
        resource = well_known(wl.api_version, wl.kind)
        pods = self.primary_view.cache(PODS)
        template: dict[str, Any] | None = None
        if resource is not None:
            cache = self.primary_view.cache(resource)
            if not cache.synced:
                cache.wait_synced(FIRST_LIST_WAIT)  # a kind first asked for now: its list is a moment away
            if not (cache.synced and pods.synced):
                raise WorkloadUnavailable(
                    f"cannot read {what}: the operator's view of the primary is not in sync "
                    f"({cache.problem or pods.problem or 'starting'}); nothing is scaled until it is"
                )
            obj = cache.get(ref.namespace, wl.name)
            if obj is None:
                raise WorkloadUnavailable(f"{what} not found", missing=True)
            body = obj.get("spec") or {}
            replicas = int(body["replicas"]) if body.get("replicas") is not None else 1
            selector: dict[str, Any] = body.get("selector") or {}
            template = obj
        else:
            if not pods.synced:
                raise WorkloadUnavailable(f"cannot read {what}: the view of the primary's pods is not in sync")
            replicas, text, template = self._custom(ref, spec, what)
            selector = from_string(text)
        if self.triggers is not None:
            self.triggers.watch_pods(ref.uid, ref.namespace, selector)
        mine: list[dict[str, Any]] = []
        if selector.get("matchLabels") or selector.get("matchExpressions"):  # an empty selector selects nothing
            found = pods.list(ref.namespace, selector.get("matchLabels") or None)
            mine = [p for p in found if matches(selector, (p.get("metadata") or {}).get("labels") or {})]
        infos = tuple(pod_info(p) for p in mine)
        room = None
        pod_spec = (((template or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
        if pod_spec.get("containers"):  # a custom kind whose pods are not at spec.template: no estimate, observed only
            room = self.primary_view.accounting.room(admitted_shape(pod_spec, mine))
        return Workload(replicas=replicas, pods=infos, template=template, room=room)

    def _custom(self, ref: PolicyRef, spec: BurstPolicySpec, what: str) -> tuple[int, str, dict[str, Any] | None]:
        """A custom kind's replicas, selector and object: from the view where its CRD lets one watch it, else by a
        GET of /scale (the object then read only when a mirror is written)."""
        wl = spec.workload_ref
        seen = self.kinds.read(wl.api_version, wl.kind, ref.namespace, wl.name)
        if seen is not None:
            if seen.obj is None:
                raise WorkloadUnavailable(f"{what} not found", missing=True)
            return seen.replicas, seen.selector, seen.obj
        try:
            replicas, text = self.primary.read_scale(wl.api_version, wl.kind, ref.namespace, wl.name)
        except ApiException as err:
            if err.status == 404:
                raise WorkloadUnavailable(f"{what} not found", missing=True) from None
            raise WorkloadUnavailable(
                f"cannot read the scale subresource of {what}: HTTP {err.status} {err.reason}"
            ) from None
        except LookupError as err:
            raise WorkloadUnavailable(f"cannot read the scale subresource of {what}: {err}") from None
        return replicas, text, None

    def _mirror_body(
        self, ref: PolicyRef, spec: BurstPolicySpec, pt: PolicyTarget, template: dict[str, Any], want: int
    ) -> dict[str, Any]:
        return build_mirror(
            template,
            _mirror_ref(ref, spec, pt),
            origin_cluster=self.origin_cluster,
            origin_namespace=ref.namespace,
            policy_name=ref.name,
            overrides=pt.overrides,
            replicas=want,
            target=pt.name,
        )

    def _reconcile(
        self, ref: PolicyRef, spec: BurstPolicySpec, prev: BurstPolicyStatus, generation: int | None
    ) -> Outcome:
        now = self.clock()
        metric, metric_problem = self._metric(ref, spec)
        try:
            workload = self._workload(ref, spec)
        except WorkloadUnavailable as err:
            if err.missing:
                return self._workload_missing(ref, spec, prev, generation, str(err))
            return self.failure(prev, generation, "WorkloadUnavailable", str(err))
        conflict = self._autoscaler_conflict(ref, spec)
        if conflict is not None:
            return self.failure(prev, generation, Reason.CONFLICT.value, conflict)
        url = spec.metric.prometheus.url or self.default_prometheus_url
        per_pod, busy_problem = self._per_pod(spec, url, "the primary")
        levels = _levels(spec, ref.namespace, workload.pods, per_pod)
        primary_state = _state(
            workload.replicas,
            workload.pods,
            levels,
            spec.primary.pending_grace_period_seconds,
            now,
            room=workload.room,
            keeps=_keeps(
                spec,
                workload.pods,
                levels,
                busy_rules.removal_order(spec.workload_ref.api_version, spec.workload_ref.kind),
                spec.workload_ref.name,
                _start_ordinal(workload.template),
            ),
        )
        views = []
        for pt in spec.targets:
            shape, key = None, ""
            if workload.template is not None:
                body = self._mirror_body(ref, spec, pt, workload.template, 0)
                shape = body["spec"]["template"].get("spec") or {}  # the mirror's pod spec, overrides applied
                key = body["metadata"]["annotations"][TEMPLATE_HASH]
            views.append(self._target(ref, spec, pt, prev, now, shape, key))
        serve = self._plan_serving(ref, spec, workload, views)
        serve.routes, serve.now = list(prev.routes), now
        memory = report.memory_from_status(prev.memory)
        snapshot = Snapshot(
            now=now, metric=metric, primary=primary_state, targets=tuple(v.state for v in views), memory=memory
        )
        decision = decide(spec, snapshot)
        if decision.placement != Placement(
            primary_state.replicas, {t.name: t.state.replicas for t in snapshot.targets}
        ):
            # what the engine saw when it changed something: the first thing to read when a placement surprises
            log.info(
                "%s/%s: %s; saw primary %s; targets %s",
                ref.namespace,
                ref.name,
                decision.message,
                _seen(primary_state),
                "; ".join(f"{t.name} {_seen(t.state)} cap={t.cap} full={t.full}" for t in snapshot.targets),
            )
        writes = 0
        # a target not probed yet (operator start-up) is held as it is, quietly: it is not a failure
        problems = {v.spec.name: v.problem for v in views if v.problem and not v.probing}
        notes = _Notes(now=now)
        if spec.mode == Mode.ACTIVE:
            decision = self._reserve(ref, views, decision, problems)  # DryRun and Paused never take room
            writes, act_problems = self._act(ref, spec, workload, levels, views, decision, notes, serve)
            problems.update(act_problems)
            swept = self.release(
                ref,
                spec,
                keep=views,
                release_ready=self._replaced(spec, primary_state, views, decision),
                frozen=serve.frozen,
            )
            writes += swept.writes
            self._unreserve_dropped(ref, spec, now)
        elif serve.sides:
            _, serve.traffic = self.serving.traffic(
                spec, ref.namespace, ref.uid, list(serve.sides.values()), _holding(views, decision), act=False
            )
        self._observe_metrics(ref, decision)
        targets = [TargetReport(v.spec.name, v.state, v.problem) for v in views]
        safety = self._safety(spec, levels, views, busy_problem, notes)
        status, events = report.policy_status(
            spec,
            prev,
            generation,
            now,
            metric,
            metric_problem,
            primary_state,
            targets,
            decision,
            problems,
            safety=safety,
            # every reachable target: a missing Secret is worth knowing before the burst that needs it
            dependencies=serve.dependencies(set(serve.sides)) if serve.sides else None,
            traffic=serve.traffic,
        )
        status["routes"] = serve.routes
        return Outcome(decision, status, events, writes)

    @staticmethod
    def _safety(
        spec: BurstPolicySpec, levels: Levels, views: list[_TargetView], busy_problem: str, notes: _Notes
    ) -> SafetyReport:
        unknown = sum(1 for v in levels.values() if v is None) + sum(
            1 for v in views for x in v.levels.values() if x is None
        )
        reasons = [busy_problem] if busy_problem and any(x is None for x in levels.values()) else []
        reasons += [v.busy_problem for v in views if v.busy_problem and any(x is None for x in v.levels.values())]
        busy = None
        if unknown:
            busy = f"busy levels of {unknown} pods unknown: " + ("; ".join(reasons) or "unreadable busy annotation")
        return SafetyReport(
            busy_configured=spec.busy is not None,
            busy=busy,
            refused={v.spec.name: v.refused for v in views if v.refused},
            pending=notes.pending,
            fights=notes.fights,
            events=tuple(notes.events),
        )

    # ---- what the spec no longer wants -------------------------------------------------------------------------
    def release(
        self,
        ref: PolicyRef,
        spec: BurstPolicySpec | None,
        *,
        keep: list[_TargetView] | None = None,
        release_ready: bool = True,
        places: set[tuple[str, str]] | None = None,
        frozen: set[str] | None = None,
        busy_rules: bool = True,
    ) -> SweepResult:
        """Drain and delete the policy's mirrors (found by label in every known target) that `keep` does not
        hold; everything when `keep` is None (a deleted policy or workload). Busy runners stay until idle.
        `spec` None: the stored spec no longer parses, so its busy rules are unknown and every pod counts as busy
        (unknown = busy), unless `busy_rules` is False (the stored spec has none to read). `places` (given by the
        finalizer: the policy is deleted): where its last spec put mirrors; its copies are then also looked for in
        every namespace its targets allow it by name."""
        wanted = {(v.spec.name, v.ref.namespace, v.ref.name) for v in keep or [] if v.refused is None}

        def hold_for(target: str, namespace: str, pods: list[dict[str, Any]]) -> int:
            if spec is None:
                return sum(1 for p in pods if busy_rules and not pod_info(p).deleting)
            if spec.busy is None:
                return 0
            handle = self.targets.get(target)
            url = handle.spec.prometheus.url if handle and handle.spec.prometheus else None
            per_pod, _ = self._per_pod(spec, url, f"BurstTarget {target}")
            levels = _levels(spec, namespace, tuple(pod_info(p) for p in pods), per_pod)
            protect = spec.workload_class == WorkloadClass.CI_RUNNER
            infos = tuple(pod_info(p) for p in pods)
            if handle is not None and handle.cluster is not None:
                # the ReplicaSet picks the pods to remove by deletion cost: set it before the drain scales down
                try:
                    self._deletion_costs(spec, namespace, infos, levels, handle.cluster.set_deletion_cost)
                except Exception:  # a cost not set (403, a webhook, a timeout): hold every pod this poll
                    return len([p for p in infos if not p.deleting])
            count = sum(1 for v in levels.values() if v is None or (protect and v > 0))
            busy_keep, unknown_keep = _keeps(spec, infos, levels)  # a mirror is a Deployment
            return max(count, busy_keep if protect else unknown_keep)

        serving = Serving(self.primary, self.origin_cluster)
        result = sweep(
            self.targets,
            ref.uid,
            wanted,
            release_ready=release_ready,
            hold_for=hold_for,
            remove_copies=serving.remove,
            also_vacate=(places or set()) | self._unvacated.pop(ref.uid, set()),
            frozen=frozen or set(),
            # the policy goes: copies an earlier process could not remove (a Secret is watched nowhere) are looked
            # for wherever its targets allow it by name
            search=self._allowed_places(ref.namespace) if places is not None else set(),
        )
        if result.unvacated:
            self._unvacated[ref.uid] = result.unvacated
        return result

    def _allowed_places(self, namespace: str) -> set[tuple[str, str]]:
        """(target, namespace) for every namespace a known target allows policies of `namespace` by name."""
        found = set()
        for name in self.targets.names():
            handle = self.targets.get(name)
            if handle is not None:
                found |= {(name, ns) for ns in named_target_namespaces(handle.spec, namespace)}
        return found

    def _unreserve_dropped(self, ref: PolicyRef, spec: BurstPolicySpec, now: float) -> None:
        """Targets the spec no longer names keep, in their shared cap, only what still drains there."""
        named = {pt.name for pt in spec.targets}
        for name in self.targets.names():
            handle = self.targets.get(name)
            if name in named or handle is None or handle.view is None or handle.view.problem is not None:
                continue
            mirrors = handle.view.cache(DEPLOYMENTS, MANAGED_SELECTOR)
            self._rebuild_usage(name, mirrors.list(), now)
            left = sum(int((m.get("spec") or {}).get("replicas") or 0) for m in mirrors.by_label(POLICY_UID, ref.uid))
            self.targets.ledger.reserve(name, ref.uid, left, left)
            self.targets.ledger.observe(name, ref.uid, left)

    @staticmethod
    def _replaced(spec: BurstPolicySpec, primary: ClusterState, views: list[_TargetView], d: Decision) -> bool:
        """Make-before-break for mirrors the spec no longer wants: inference replicas there go once the placement
        that replaces them is Ready (pods the primary cannot schedule do not count). CI runners need no
        replacement: only busy runners are kept."""
        if spec.workload_class == WorkloadClass.CI_RUNNER:
            return True
        live = [v for v in views if v.mirror is not None and v.refused is None]
        planned = (
            d.placement.primary - primary.unschedulable + sum(d.placement.targets.get(v.spec.name, 0) for v in live)
        )
        return primary.ready + sum(v.state.state.ready for v in live) >= planned

    def _workload_missing(
        self, ref: PolicyRef, spec: BurstPolicySpec, prev: BurstPolicyStatus, generation: int | None, why: str
    ) -> Outcome:
        """The primary workload is gone: its replicas in secondaries go too (busy runners once idle)."""
        left = ""
        if spec.mode == Mode.ACTIVE:
            swept = self.release(ref, spec, frozen=self._unroute(ref, spec, prev))
            if swept.pending:
                left = "; still draining: " + "; ".join(swept.pending[t] for t in sorted(swept.pending))
        message = f"{why}: its replicas in secondary clusters are drained and removed{left}"
        return self.failure(prev, generation, Reason.WORKLOAD_MISSING.value, message)

    def _unroute(self, ref: PolicyRef, spec: BurstPolicySpec, prev: BurstPolicyStatus) -> set[str]:
        """Every route of the policy's (spec and status.routes) drains its backendRefs before the replicas behind
        them go: the targets held meanwhile (all of them while a route cannot be written)."""
        t = spec.traffic
        routes = set(prev.routes) | ({t.http_route_ref.name} if t is not None and t.http_route_ref else set())
        known = {pt.name for pt in spec.targets} | set(self.targets.names())
        if not routes:
            return set()
        try:
            return self.serving.unroute(ref.namespace, ref.uid, routes, *route_names(spec, known), self.clock()).held
        except ApiException:
            return known

    def failure(self, prev: BurstPolicyStatus, generation: int | None, reason: str, message: str) -> Outcome:
        """A status that says why nothing was done (invalid spec, missing workload, conflict)."""
        status, events = report.failure_status(prev, generation, reason, message, self.clock())
        return Outcome(None, status, events)

    def _act(
        self,
        ref: PolicyRef,
        spec: BurstPolicySpec,
        workload: Workload,
        levels: Levels,
        views: list[_TargetView],
        decision: Decision,
        notes: _Notes,
        serve: _Serve,
    ) -> tuple[int, dict[str, str]]:
        writes = 0
        problems: dict[str, str] = {}
        writes, wants = self._act_serving(ref, spec, workload, views, decision, serve)
        unready = {n for n, side in serve.sides.items() if not side.plan.ready or n in serve.failed}
        wl = spec.workload_ref
        cache: dict[str, dict[str, Any]] = {}

        def template() -> dict[str, Any]:
            if serve.template is not None:  # as its pods run in the primary (Serving.admitted)
                return serve.template
            if workload.template is not None:
                return workload.template
            if "t" not in cache:  # kinds read through /scale: the template only when a mirror is written
                cache["t"] = self.primary.read_workload(wl.api_version, wl.kind, ref.namespace, wl.name)
            return cache["t"]

        if spec.busy is not None:
            writes += self._deletion_costs(spec, ref.namespace, workload.pods, levels, self.primary.set_deletion_cost)
        want_primary = decision.placement.primary
        # increases first, decreases after: capacity is added before any is taken away
        ops: list[tuple[int, Callable[[], int]]] = []
        if want_primary != workload.replicas:

            def scale_primary() -> int:
                self.primary.write_scale(wl.api_version, wl.kind, ref.namespace, wl.name, want_primary)
                metrics.API_WRITES.labels("primary", "scale").inc()
                return 1

            ops.append((want_primary - workload.replicas, scale_primary))
        for v in views:
            if v.client is None or v.mirror is None:
                continue
            want = wants.get(v.spec.name, decision.placement.targets.get(v.spec.name, 0))
            if spec.busy is not None and v.mirror.pods:
                cluster = v.client.cluster
                writes += self._deletion_costs(
                    spec, v.ref.namespace, v.mirror.pods, v.levels, cluster.set_deletion_cost
                )

            def apply(v: _TargetView = v, want: int = want) -> int:
                try:
                    n = self._apply_target(ref, spec, v, want, template, notes, v.spec.name not in unready)
                except Exception as err:  # an unreachable target must not stop the others
                    problems[v.spec.name] = (
                        f"BurstTarget {v.spec.name}: could not update the mirror: {type(err).__name__}"
                    )
                    return 0
                if n:
                    metrics.API_WRITES.labels(v.spec.name, "mirror").inc()
                self.targets.ledger.observe(v.spec.name, ref.uid, want + v.draining)
                return n

            ops.append((want - v.mirror.replicas, apply))
        for _, op in sorted(ops, key=lambda o: -o[0]):
            writes += op()
        return writes, problems

    # ---- serving: dependencies and traffic ---------------------------------------------------------------------
    def _plan_serving(
        self, ref: PolicyRef, spec: BurstPolicySpec, workload: Workload, views: list[_TargetView]
    ) -> _Serve:
        """Plan what each reachable target needs (reads only), and hold a target whose dependencies are not ready
        at the replicas it has: the engine spills the rest onward instead of starting pods that cannot run."""
        serve = _Serve()
        # a refused namespace gets nothing, not even refreshed copies for a mirror placed while it was allowed
        live = [v for v in views if v.client is not None and v.mirror is not None and v.refused is None]
        if not live:
            return serve
        template = workload.template
        if template is None:  # kinds read through /scale: the pod template by GET, only while there are targets
            wl = spec.workload_ref
            try:
                template = self.primary.read_workload(wl.api_version, wl.kind, ref.namespace, wl.name)
            except (ApiException, LookupError):
                template = None
        unread = None
        if template is not None:
            try:
                template = self.serving.admitted(template, ref.namespace)
            except ApiException as err:  # which pull secrets the pods use is unknown: no target grows this poll
                unread = f"cannot read ServiceAccount {ref.namespace}/default in the primary: HTTP {err.status}"
        for v in live:
            assert v.client is not None and v.mirror is not None
            if unread is not None:
                serve.failed[v.spec.name] = unread
            handle = self.targets.get(v.spec.name)
            view = handle.view if handle is not None else None
            serve.sides[v.spec.name] = Side(
                name=v.spec.name,
                namespace=v.ref.namespace,
                cluster=v.client.cluster,
                # copies and the burst Service may create the namespace before the mirror does: with the
                # target's Pod Security labels, or the mirror finds it made without them and leaves it so
                ensure_namespace=functools.partial(
                    v.client.ensure_namespace, labels=pod_security_labels(handle.spec) if handle is not None else None
                ),
                replicas=v.mirror.replicas,
                ready=v.state.state.ready,
                overrides=v.spec.overrides,
                lookup=target_lookup(
                    view,
                    v.client.cluster,
                    v.ref.namespace,
                    misses=self._misses if v.mirror.replicas == 0 else None,  # idle there: no GET per poll
                    target=v.spec.name,
                ),
                copies=target_copies(
                    view,
                    v.client.cluster,
                    v.ref.namespace,
                    misses=self._misses if v.mirror.replicas == 0 else None,
                    target=v.spec.name,
                ),
                view=view,
                remembered=v.mirror.replicas == 0,
            )
        serve.template = template
        self._plan_sides(spec, ref, serve, list(serve.sides.values()))
        for v in live:
            side = serve.sides[v.spec.name]
            if not side.plan.ready or v.spec.name in serve.failed:
                held = v.state.state.replicas
                v.state = replace(v.state, cap=held if v.state.cap is None else min(v.state.cap, held))
        return serve

    def _plan_sides(self, spec: BurstPolicySpec, ref: PolicyRef, serve: _Serve, sides: list[Side]) -> None:
        try:
            self.serving.plan(spec, ref.namespace, ref.uid, serve.template, sides)
        except ApiException as err:  # a source unreadable now: none of these targets grows this poll
            for side in sides:
                serve.failed[side.name] = f"cannot read what the pods reference: HTTP {err.status} {err.reason}"

    def _reread(self, spec: BurstPolicySpec, ref: PolicyRef, serve: _Serve, holding: set[str]) -> None:
        """A target about to grow from 0 was planned from remembered reads (up to MISS_TTL old): plan it again
        from fresh ones before anything there is scaled, so no pod starts on what an idle poll once saw."""
        stale = [s for name, s in serve.sides.items() if name in holding and s.remembered]
        for side in stale:
            for key in [k for k in self._misses if k[0] == side.name]:
                del self._misses[key]
            side.lookup = target_lookup(side.view, side.cluster, side.namespace)
            side.copies = target_copies(side.view, side.cluster, side.namespace)
            side.remembered = False
            serve.failed.pop(side.name, None)
        if stale:
            self._plan_sides(spec, ref, serve, stale)

    def _act_serving(
        self,
        ref: PolicyRef,
        spec: BurstPolicySpec,
        workload: Workload,
        views: list[_TargetView],
        decision: Decision,
        serve: _Serve,
    ) -> tuple[int, dict[str, int]]:
        """Before any mirror changes: copies in targets holding replicas, then the burst Service and export, then
        the route's weights. Returns (writes, replicas per target where the plan is overridden: held)."""
        writes = 0
        wants: dict[str, int] = {}
        holding = _holding(views, decision)
        self._reread(spec, ref, serve, holding)
        for name, side in serve.sides.items():
            done, problem = self.serving.carry(side, copies=name in holding)  # revoked copies go everywhere
            writes += done
            if done:
                metrics.API_WRITES.labels(name, "dependency").inc(done)
            if problem:
                serve.failed[name] = problem
            if problem or side.plan.revokes:
                for key in [k for k in self._misses if k[0] == name]:  # re-read there next poll, not from memory
                    del self._misses[key]
            if problem or not side.plan.ready:
                wants[name] = min(decision.placement.targets.get(name, 0), side.replicas)  # never grow there
        n, serve.traffic = self.serving.traffic(
            spec, ref.namespace, ref.uid, list(serve.sides.values()), holding, act=True
        )
        writes += n
        held: set[str] = set()
        note = None
        if spec.traffic is not None and spec.traffic.http_route_ref is not None:
            n, held, note = self._route(ref, spec, workload, views, decision, serve, holding)
            writes += n
        held |= self._leave_old_routes(ref, spec, views, serve)
        if spec.traffic is None and not serve.routes:
            # spec.traffic taken out, and no route sends requests to the burst replicas any more: the burst
            # Services and exports go (the mirror stays: the burst goes on, unreachable through them)
            n, problems = self.serving.untraffic(ref.uid, serve.sides.values())
            writes += n
            for problem in problems:
                log.warning("%s/%s: %s", ref.namespace, ref.name, problem)
        if held:
            serve.frozen = held
            for v in views:
                if v.mirror is not None and v.spec.name in held:
                    planned = decision.placement.targets.get(v.spec.name, 0)
                    if planned < v.mirror.replicas:
                        wants[v.spec.name] = v.mirror.replicas
        if note and serve.traffic is not None:
            serve.traffic = replace(serve.traffic, problems=(*serve.traffic.problems, note))
        return writes, wants

    def _leave_old_routes(
        self, ref: PolicyRef, spec: BurstPolicySpec, views: list[_TargetView], serve: _Serve
    ) -> set[str]:
        """Routes the policy wrote before and the spec no longer names (httpRouteRef changed or removed, or all of
        spec.traffic): its backendRefs there drain like a dropped target's. Returns the targets held meanwhile;
        a route that cannot be written holds every target."""
        t = spec.traffic
        current = t.http_route_ref.name if t is not None and t.http_route_ref is not None else None
        old = [r for r in serve.routes if r != current]
        serve.routes = [current] if current else []
        if not old:
            return set()
        known = {v.spec.name for v in views} | set(self.targets.names())
        try:
            step = self.serving.unroute(ref.namespace, ref.uid, old, *route_names(spec, known), serve.now)
        except ApiException:
            serve.routes += old
            return known
        serve.routes += [r for r in step.routes if r not in serve.routes]
        return step.held

    def _route(
        self,
        ref: PolicyRef,
        spec: BurstPolicySpec,
        workload: Workload,
        views: list[_TargetView],
        decision: Decision,
        serve: _Serve,
        holding: set[str],
    ) -> tuple[int, set[str], str | None]:
        """The route's weights for this step: (writes, targets held from shrinking, why they are held)."""
        assert spec.traffic is not None and spec.traffic.http_route_ref is not None
        base = spec.traffic.service_name
        known = {v.spec.name for v in views} | set(self.targets.names())
        names = import_names(base, known)
        backends = [
            weights.Backend(v.spec.name, names[v.spec.name], v.ref.namespace)
            for v in views
            if v.spec.name in holding and v.refused is None
        ]
        # only replicas requests can reach count: Ready, kept by the placement, and exported (MCS says Exported)
        exports = serve.traffic.exports if serve.traffic is not None else ()
        reachable = {e.target for e in exports if e.state == "Exported"}
        ready = {
            v.spec.name: v.state.state.ready if v.spec.name in reachable else 0 for v in views if v.mirror is not None
        }
        planned = {v.spec.name: decision.placement.targets.get(v.spec.name, 0) for v in views}
        primary_ready = min(sum(p.ready for p in workload.pods if not p.deleting), decision.placement.primary)
        step = self.serving.route(
            spec,
            ref.namespace,
            ref.uid,
            backends,
            names,
            primary_ready,
            ready,
            planned,
            act=True,
            now=serve.now,
            sides=list(serve.sides.values()),
        )
        note = step.problem
        if not step.confirmed:
            held = set(known)
            note = (
                f"{step.problem}; replicas in secondaries are held (none removed) until the route confirms the weights"
            )
        else:
            # lowered by this write, or at 0 for less than spec.traffic.drainSeconds: requests may still arrive
            held = weights.held(step.before, step.now, known) | step.lowered | set(step.draining)
        if serve.traffic is not None:
            now = step.now
            serve.traffic = replace(
                serve.traffic,
                route=spec.traffic.http_route_ref.name,
                local_weight=now.local if now else None,
                burst_weight=now.burst_total if now else None,
                exports=tuple(
                    e.model_copy(update={"weight": now.burst.get(e.target, 0) if now else None})
                    for e in serve.traffic.exports
                ),
                reason=None if step.confirmed else "RouteUnconfirmed",
            )
        return step.writes, held, note

    def _observe_metrics(self, ref: PolicyRef, decision: Decision) -> None:
        metrics.DECISIONS.labels(ref.namespace, ref.name, decision.reason.value).inc()
        metrics.DESIRED.labels(ref.namespace, ref.name).set(decision.desired)
        metrics.REPLICAS.labels(ref.namespace, ref.name, "primary").set(decision.placement.primary)
        for name, n in decision.placement.targets.items():
            metrics.REPLICAS.labels(ref.namespace, ref.name, name).set(n)
        metrics.BURST_ACTIVE.labels(ref.namespace, ref.name).set(1 if decision.placement.secondary else 0)
