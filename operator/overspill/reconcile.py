"""observe -> decide -> act -> report for one BurstPolicy. Adapters are passed in; this module has no globals."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from kubernetes.client import ApiException

from overspill import metrics, report
from overspill.adapters.kube import DELETION_COST, Cluster, PodInfo, pod_info
from overspill.adapters.mirror import (
    POLICY_UID,
    TEMPLATE_HASH,
    MirrorClient,
    MirrorConflict,
    MirrorObservation,
    MirrorRef,
    build_mirror,
    observe,
)
from overspill.adapters.prometheus import MetricError, MetricSource
from overspill.api.policy import (
    BurstPolicySpec,
    BurstPolicyStatus,
    Busy,
    Mode,
    PolicyTarget,
    WorkloadClass,
)
from overspill.decide import ClusterState, Decision, Snapshot, TargetState, decide
from overspill.decide.capacity import shape_of
from overspill.report import TargetReport
from overspill.targets import TargetRegistry
from overspill.triggers import Triggers
from overspill.views import MANAGED_SELECTOR, ClusterView
from overspill.views.resource import DEPLOYMENTS, PODS, well_known
from overspill.views.selectors import from_string, matches

FIRST_LIST_WAIT = 10.0  # seconds a tick waits for a cache it just started
BUSY_COST = 1_000_000  # a busy CI runner: effectively never chosen by the ReplicaSet


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
    levels: dict[str, float] = field(default_factory=dict)  # busy level per mirror pod


def busy_level(pod: PodInfo, busy: Busy, per_pod: dict[str, float]) -> float:
    """How busy a pod is: >0 means in-flight work. Annotation or label 'true' counts as 1, a number as itself."""
    for source, key in ((pod.annotations, busy.pod_annotation), (pod.labels, busy.pod_label)):
        if key and key in source:
            raw = source[key].strip().lower()
            if raw in ("true", "yes", "busy"):
                return 1.0
            with contextlib.suppress(ValueError):
                return max(0.0, float(raw))
    return per_pod.get(pod.name, 0.0)


def _state(
    replicas: int,
    pods: tuple[PodInfo, ...],
    levels: dict[str, float],
    grace: float,
    now: float,
    *,
    ready: int | None = None,
    room: int | None = None,
    stuck_after: float | None = None,
) -> ClusterState:
    live = [p for p in pods if not p.deleting]

    def pending_for(p: PodInfo) -> float:
        return now - p.unschedulable_since.timestamp() if p.unschedulable_since else -1.0

    return ClusterState(
        replicas=replicas,
        ready=sum(p.ready for p in live) if ready is None else ready,
        busy=sum(1 for p in live if levels.get(p.name, 0) > 0),
        unschedulable=sum(1 for p in live if pending_for(p) >= grace),
        scheduled=sum(1 for p in live if p.scheduled),
        room=room,
        stuck=0 if stuck_after is None else sum(1 for p in live if pending_for(p) >= stuck_after),
    )


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


def _mirror_ref(ref: PolicyRef, spec: BurstPolicySpec, pt: PolicyTarget) -> MirrorRef:
    return MirrorRef(
        namespace=(pt.overrides.namespace if pt.overrides and pt.overrides.namespace else ref.namespace),
        name=spec.workload_ref.name,
        policy_uid=ref.uid,
    )


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
            metrics.METRIC_LATENCY.labels(ref.namespace, ref.name).observe(time.perf_counter() - started)

    def _per_pod(self, spec: BurstPolicySpec) -> dict[str, float]:
        url = spec.metric.prometheus.url or self.default_prometheus_url
        if spec.busy is None or not spec.busy.query or not url:
            return {}
        try:
            return self.metrics_source.per_pod(url, spec.busy.query, self.query_timeout)
        except MetricError:
            return {}  # no busy signal: pod-deletion-cost stays as it was

    def _target(
        self,
        ref: PolicyRef,
        spec: BurstPolicySpec,
        pt: PolicyTarget,
        prev: BurstPolicyStatus,
        levels_src: dict[str, float],
        now: float,
        shape: Any,
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
        allowed = (
            handle is None or handle.spec.allowed_namespaces is None or ref.namespace in handle.spec.allowed_namespaces
        )
        caps = [c for c in (pt.max_replicas, self.targets.room_for(pt.name, ref.uid)) if c is not None]
        base = TargetState(
            name=pt.name,
            priority=pt.priority,
            allowed=allowed,
            cap=min(caps) if caps else None,
            cost_per_replica_hour=handle.spec.cost_per_replica_hour if handle else None,
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
                    obs = observe(mref, mirrors.get(mref.namespace, mref.name), pods)
                except MirrorConflict as err:
                    problem = str(err)
                else:
                    levels = {p.name: busy_level(p, spec.busy, levels_src) for p in obs.pods} if spec.busy else {}
                    room = view.accounting.room((ref.uid, pt.name, template_key), shape) if shape else None
                    state = _state(
                        obs.replicas,
                        obs.pods,
                        levels,
                        0,
                        now,
                        ready=obs.ready,
                        room=room,
                        stuck_after=float(handle.spec.provisioning_timeout_seconds),
                    )
                    mc = MirrorClient(handle.cluster)
                    return _TargetView(pt, replace(base, state=state, healthy=True), mref, obs, mc, None, levels=levels)
            else:
                problem = f"BurstTarget {pt.name} is unavailable: {problem}"
        elif problem is None:
            problem = f"BurstTarget {pt.name} is unavailable: no view of it yet"
        state = ClusterState(replicas=last, ready=0)
        # a target not probed yet, or whose view is still listing for the first time, is held quietly
        probing = handle is not None and (not handle.probed or (view is not None and view.starting))
        return _TargetView(pt, replace(base, state=state, healthy=False), mref, None, None, problem, probing)

    # ---- act -----------------------------------------------------------------------------------------------
    def _deletion_costs(
        self,
        spec: BurstPolicySpec,
        namespace: str,
        pods: tuple[PodInfo, ...],
        levels: dict[str, float],
        patch: Callable[[str, str, int], None],
    ) -> int:
        writes = 0
        for pod in pods:
            if pod.deleting:
                continue
            level = levels.get(pod.name, 0.0)
            cost = (
                (BUSY_COST if level > 0 else 0)
                if spec.workload_class == WorkloadClass.CI_RUNNER
                else int(min(level, 10_000) * 100)
            )
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
    ) -> int:
        assert view.client is not None and view.mirror is not None
        obs = view.mirror
        if not obs.exists and want == 0:
            return 0
        body = None
        if want > 0:
            body = self._mirror_body(ref, spec, view.spec, template(), want)
        if not obs.exists:
            assert body is not None
            view.client.create(body)
            return 1
        if body is not None and body["metadata"]["annotations"][TEMPLATE_HASH] != obs.template_hash:
            view.client.replace_template(body)
            return 1
        if obs.replicas != want:
            view.client.scale(view.ref, want)
            return 1
        return 0

    # ---- the loop body -------------------------------------------------------------------------------------
    def reconcile(
        self, ref: PolicyRef, spec: BurstPolicySpec, prev: BurstPolicyStatus, generation: int | None
    ) -> Outcome:
        started = time.perf_counter()
        try:
            return self._reconcile(ref, spec, prev, generation)
        finally:
            metrics.RECONCILE_SECONDS.labels(ref.namespace, ref.name).observe(time.perf_counter() - started)

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
            selector = from_string(text)
        if self.triggers is not None:
            self.triggers.watch_pods(ref.uid, ref.namespace, selector)
        infos: tuple[PodInfo, ...] = ()
        if selector.get("matchLabels") or selector.get("matchExpressions"):  # an empty selector selects nothing
            found = pods.list(ref.namespace, selector.get("matchLabels") or None)
            infos = tuple(
                pod_info(p) for p in found if matches(selector, (p.get("metadata") or {}).get("labels") or {})
            )
        room = None
        if template is not None:
            pod_spec = ((template.get("spec") or {}).get("template") or {}).get("spec") or {}
            generation = (template.get("metadata") or {}).get("generation")
            room = self.primary_view.accounting.room((ref.uid, "primary", generation), shape_of(pod_spec))
        return Workload(replicas=replicas, pods=infos, template=template, room=room)

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
        )

    def _reconcile(
        self, ref: PolicyRef, spec: BurstPolicySpec, prev: BurstPolicyStatus, generation: int | None
    ) -> Outcome:
        now = self.clock()
        metric, metric_problem = self._metric(ref, spec)
        try:
            workload = self._workload(ref, spec)
        except WorkloadUnavailable as err:
            return self.failure(prev, generation, "WorkloadUnavailable", str(err))
        per_pod = self._per_pod(spec)
        levels = {p.name: busy_level(p, spec.busy, per_pod) for p in workload.pods} if spec.busy else {}
        primary_state = _state(
            workload.replicas,
            workload.pods,
            levels,
            spec.primary.pending_grace_period_seconds,
            now,
            room=workload.room,
        )
        views = []
        for pt in spec.targets:
            shape, key = None, ""
            if workload.template is not None:
                body = self._mirror_body(ref, spec, pt, workload.template, 0)
                shape = shape_of(body["spec"]["template"].get("spec") or {})
                key = body["metadata"]["annotations"][TEMPLATE_HASH]
            views.append(self._target(ref, spec, pt, prev, per_pod, now, shape, key))
        memory = report.memory_from_status(prev.memory)
        snapshot = Snapshot(
            now=now, metric=metric, primary=primary_state, targets=tuple(v.state for v in views), memory=memory
        )
        decision = decide(spec, snapshot)
        writes = 0
        # a target not probed yet (operator start-up) is held as it is, quietly: it is not a failure
        problems = {v.spec.name: v.problem for v in views if v.problem and not v.probing}
        if spec.mode == Mode.ACTIVE:
            writes, act_problems = self._act(ref, spec, workload, levels, views, decision)
            problems.update(act_problems)
        self.targets.set_usage(ref.uid, {v.spec.name: decision.placement.targets.get(v.spec.name, 0) for v in views})
        self._observe_metrics(ref, decision)
        targets = [TargetReport(v.spec.name, v.state, v.problem) for v in views]
        status, events = report.policy_status(
            spec, prev, generation, now, metric, metric_problem, primary_state, targets, decision, problems
        )
        return Outcome(decision, status, events, writes)

    def failure(self, prev: BurstPolicyStatus, generation: int | None, reason: str, message: str) -> Outcome:
        """A status that says why nothing was done (invalid spec, missing workload, conflict)."""
        status, events = report.failure_status(prev, generation, reason, message, self.clock())
        return Outcome(None, status, events)

    def _act(
        self,
        ref: PolicyRef,
        spec: BurstPolicySpec,
        workload: Workload,
        levels: dict[str, float],
        views: list[_TargetView],
        decision: Decision,
    ) -> tuple[int, dict[str, str]]:
        writes = 0
        problems: dict[str, str] = {}
        wl = spec.workload_ref
        cache: dict[str, dict[str, Any]] = {}

        def template() -> dict[str, Any]:
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
            want = decision.placement.targets.get(v.spec.name, 0)
            if spec.busy is not None and v.mirror.pods:
                cluster = v.client.cluster
                writes += self._deletion_costs(
                    spec, v.ref.namespace, v.mirror.pods, v.levels, cluster.set_deletion_cost
                )

            def apply(v: _TargetView = v, want: int = want) -> int:
                try:
                    n = self._apply_target(ref, spec, v, want, template)
                except Exception as err:  # an unreachable target must not stop the others
                    problems[v.spec.name] = (
                        f"BurstTarget {v.spec.name}: could not update the mirror: {type(err).__name__}"
                    )
                    return 0
                if n:
                    metrics.API_WRITES.labels(v.spec.name, "mirror").inc()
                return n

            ops.append((want - v.mirror.replicas, apply))
        for _, op in sorted(ops, key=lambda o: -o[0]):
            writes += op()
        return writes, problems

    def _observe_metrics(self, ref: PolicyRef, decision: Decision) -> None:
        metrics.DECISIONS.labels(ref.namespace, ref.name, decision.reason.value).inc()
        metrics.DESIRED.labels(ref.namespace, ref.name).set(decision.desired)
        metrics.REPLICAS.labels(ref.namespace, ref.name, "primary").set(decision.placement.primary)
        for name, n in decision.placement.targets.items():
            metrics.REPLICAS.labels(ref.namespace, ref.name, name).set(n)
        metrics.BURST_ACTIVE.labels(ref.namespace, ref.name).set(1 if decision.placement.secondary else 0)
