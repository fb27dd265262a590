"""observe -> decide -> act -> report for one BurstPolicy. Adapters are passed in; this module has no globals."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from kubernetes.client import ApiException

from overspill import metrics
from overspill.adapters.kube import DELETION_COST, Cluster, PodInfo
from overspill.adapters.mirror import MirrorClient, MirrorConflict, MirrorObservation, MirrorRef, build_mirror
from overspill.adapters.prometheus import MetricError, MetricSource
from overspill.api.base import Condition
from overspill.api.policy import (
    BurstPolicySpec,
    BurstPolicyStatus,
    Busy,
    EngineMemory,
    LastDecision,
    Mode,
    PolicyTarget,
    PrimaryStatus,
    TargetStatus,
    WorkloadClass,
)
from overspill.decide import ClusterState, Decision, Memory, Snapshot, TargetState, decide
from overspill.decide.reasons import Reason
from overspill.targets import TargetRegistry

BUSY_COST = 1_000_000  # a busy CI runner: effectively never chosen by the ReplicaSet


class WorkloadError(Exception):
    """The primary workload cannot be read (missing, no scale subresource, forbidden)."""


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


def _now_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    replicas: int, pods: tuple[PodInfo, ...], levels: dict[str, float], grace: int, now: float, ready: int | None = None
) -> ClusterState:
    live = [p for p in pods if not p.deleting]
    unsched = sum(1 for p in live if p.unschedulable_since and now - p.unschedulable_since.timestamp() >= grace)
    return ClusterState(
        replicas=replicas,
        ready=sum(p.ready for p in live) if ready is None else ready,
        busy=sum(1 for p in live if levels.get(p.name, 0) > 0),
        unschedulable=unsched,
    )


def _condition(
    prev: list[Condition], ctype: str, truth: bool, reason: str, message: str, now: str, generation: int | None
) -> Condition:
    status = "True" if truth else "False"
    old = next((c for c in prev if c.type == ctype), None)
    since = old.last_transition_time if old is not None and old.status == status else now
    return Condition(
        type=ctype,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )


class Reconciler:
    def __init__(
        self,
        *,
        primary: Cluster,
        targets: TargetRegistry,
        metrics_source: MetricSource,
        default_prometheus_url: str | None,
        origin_cluster: str,
        clock: Callable[[], float] = time.time,
        query_timeout: float = 5.0,
    ) -> None:
        self.primary = primary
        self.targets = targets
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
    ) -> _TargetView:
        mref = MirrorRef(
            namespace=(pt.overrides.namespace if pt.overrides and pt.overrides.namespace else ref.namespace),
            name=spec.workload_ref.name,
            policy_uid=ref.uid,
        )
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
        if problem is None and handle is not None and handle.cluster is not None:
            mc = MirrorClient(handle.cluster)
            try:
                obs = mc.observe(mref, with_pods=spec.busy is not None)
            except MirrorConflict as err:
                problem = str(err)
            except Exception as err:  # API errors and urllib3 connection errors: the target is unreachable
                problem = f"BurstTarget {pt.name} is unreachable: {type(err).__name__}"
            else:
                levels = {p.name: busy_level(p, spec.busy, levels_src) for p in obs.pods} if spec.busy else {}
                state = _state(obs.replicas, obs.pods, levels, 0, now, ready=obs.ready)
                return _TargetView(pt, replace(base, state=state, healthy=True), mref, obs, mc, None)
        state = ClusterState(replicas=last, ready=0)
        probing = handle is not None and not handle.probed
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
            overrides = view.spec.overrides
            body = build_mirror(
                template(),
                view.ref,
                origin_cluster=self.origin_cluster,
                origin_namespace=ref.namespace,
                policy_name=ref.name,
                overrides=overrides,
                replicas=want,
            )
        if not obs.exists:
            assert body is not None
            view.client.create(body)
            return 1
        if body is not None and body["metadata"]["annotations"]["overspill.dev/template-hash"] != obs.template_hash:
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

    def _reconcile(
        self, ref: PolicyRef, spec: BurstPolicySpec, prev: BurstPolicyStatus, generation: int | None
    ) -> Outcome:
        now = self.clock()
        wl = spec.workload_ref
        metric, metric_problem = self._metric(ref, spec)
        try:
            workload = self.primary.observe_workload(wl.api_version, wl.kind, ref.namespace, wl.name)
        except (ApiException, LookupError) as err:
            status = getattr(err, "status", None)
            why = (
                f"{wl.kind} {ref.namespace}/{wl.name} not found"
                if status == 404
                else f"cannot read the scale subresource of {wl.kind} {ref.namespace}/{wl.name}: "
                f"{getattr(err, 'reason', None) or err}"
            )
            return self.failure(prev, generation, "WorkloadUnavailable", why)
        per_pod = self._per_pod(spec)
        levels = {p.name: busy_level(p, spec.busy, per_pod) for p in workload.pods} if spec.busy else {}
        primary_state = _state(workload.replicas, workload.pods, levels, spec.primary.pending_grace_period_seconds, now)
        views = [self._target(ref, spec, pt, prev, per_pod, now) for pt in spec.targets]
        m = prev.memory
        memory = Memory(
            recommendations=tuple((float(t), int(v)) for t, v in m.recommendations),
            burst_started_at=m.burst_started_at,
            primary_capacity=m.primary_capacity,
            primary_capacity_observed_at=m.primary_capacity_observed_at,
            last_metric=(m.last_metric[0], m.last_metric[1]) if m.last_metric else None,
        )
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
        for v in views:
            self.targets.record_usage(v.spec.name, ref.uid, decision.placement.targets.get(v.spec.name, 0))
        self._observe_metrics(ref, decision)
        return self._report(
            ref, spec, prev, generation, now, metric, metric_problem, primary_state, views, decision, problems, writes
        )

    def _act(
        self,
        ref: PolicyRef,
        spec: BurstPolicySpec,
        workload: Any,
        levels: dict[str, float],
        views: list[_TargetView],
        decision: Decision,
    ) -> tuple[int, dict[str, str]]:
        writes = 0
        problems: dict[str, str] = {}
        wl = spec.workload_ref
        cache: dict[str, dict[str, Any]] = {}

        def template() -> dict[str, Any]:
            if "t" not in cache:
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
                tl = {p.name: busy_level(p, spec.busy, {}) for p in v.mirror.pods}
                writes += self._deletion_costs(spec, v.ref.namespace, v.mirror.pods, tl, v.client.set_deletion_cost)

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

    # ---- report --------------------------------------------------------------------------------------------
    def failure(self, prev: BurstPolicyStatus, generation: int | None, reason: str, message: str) -> Outcome:
        """A status that says why nothing was done (invalid spec, missing workload, conflict)."""
        now = _now_iso(self.clock())
        status = prev.model_copy(deep=True)
        status.observed_generation = generation
        status.conditions = [_condition(prev.conditions, "Ready", False, reason, message, now, generation)] + [
            c for c in prev.conditions if c.type != "Ready"
        ]
        changed = prev.last_decision.reason != reason or prev.last_decision.message != message
        if changed:
            status.last_decision = LastDecision(time=now, reason=reason, message=message)
        events = [("Warning", reason, message)] if changed else []
        return Outcome(None, status.model_dump(by_alias=True, mode="json"), events)

    def _report(
        self,
        ref: PolicyRef,
        spec: BurstPolicySpec,
        prev: BurstPolicyStatus,
        generation: int | None,
        now_ts: float,
        metric: float | None,
        metric_problem: str,
        primary: ClusterState,
        views: list[_TargetView],
        d: Decision,
        problems: dict[str, str],
        writes: int,
    ) -> Outcome:
        now = _now_iso(now_ts)
        dry = spec.mode == Mode.DRY_RUN
        events: list[tuple[str, str, str]] = []
        prefix = "DryRun, not applied: " if dry else ""
        observed = (primary.replicas, tuple(v.state.state.replicas for v in views))
        planned = (d.placement.primary, tuple(d.placement.targets.get(v.spec.name, 0) for v in views))
        changed = observed != planned
        last = prev.last_decision
        if changed or last.reason != d.reason.value:
            last = LastDecision(time=now, reason=d.reason.value, message=prefix + d.message)
        if changed and (not dry or prev.last_decision.message != prefix + d.message):
            events.append(("Normal", d.reason.value, prefix + d.message))
        cost = sum(d.placement.targets.get(v.spec.name, 0) * (v.state.cost_per_replica_hour or 0) for v in views)
        metric_ok = metric is not None
        targets_ok = not problems
        conds = [
            _condition(prev.conditions, "Ready", True, "Reconciled", f"mode {spec.mode.value}", now, generation),
            _condition(
                prev.conditions,
                "MetricAvailable",
                metric_ok,
                "QueryOK" if metric_ok else "QueryFailed",
                "" if metric_ok else f"{metric_problem}; {d.message}",
                now,
                generation,
            ),
            _condition(
                prev.conditions,
                "TargetsAvailable",
                targets_ok,
                "AllReachable" if targets_ok else "TargetUnavailable",
                "; ".join(sorted(problems.values())),
                now,
                generation,
            ),
            _condition(
                prev.conditions,
                "PrimaryAtCapacity",
                d.primary_at_capacity,
                "Full" if d.primary_at_capacity else "HasRoom",
                f"primary capacity {d.primary_capacity}"
                if d.primary_capacity is not None
                else "capacity unknown: no pod is Unschedulable",
                now,
                generation,
            ),
            _condition(
                prev.conditions,
                "Bursting",
                d.placement.secondary > 0,
                "Bursting" if d.placement.secondary else "AllInPrimary",
                f"{d.placement.secondary} replicas in secondaries",
                now,
                generation,
            ),
        ]
        old = {c.type: c for c in prev.conditions}
        for c in conds:
            before = old.get(c.type)
            if c.type == "MetricAvailable" and c.status == "False" and (before is None or before.status == "True"):
                events.append(("Warning", "MetricUnavailable", c.message))
            if c.type == "MetricAvailable" and c.status == "True" and before is not None and before.status == "False":
                events.append(("Normal", "MetricAvailable", "the queue metric answers again; scaling resumes"))
            if c.type == "TargetsAvailable" and c.status == "False" and (before is None or before.message != c.message):
                events.append(
                    (
                        "Warning",
                        "TargetUnavailable",
                        c.message + "; nothing in the primary is scaled down because of it",
                    )
                )
            if c.type == "TargetsAvailable" and c.status == "True" and before is not None and before.status == "False":
                events.append(("Normal", "TargetsAvailable", "all targets reachable again; mirrors reconciled"))
        if d.reason == Reason.CAPACITY_EXHAUSTED and prev.last_decision.reason != d.reason.value:
            events.append(("Warning", d.reason.value, d.message))
        status = BurstPolicyStatus(
            observed_generation=generation,
            desired_replicas=d.desired,
            metric_value=metric,
            primary=PrimaryStatus(
                replicas=d.placement.primary if not dry else primary.replicas,
                ready_replicas=primary.ready,
                pending_replicas=primary.unschedulable,
                at_capacity=d.primary_at_capacity,
                capacity=d.primary_capacity,
            ),
            targets=[
                TargetStatus(
                    name=v.spec.name,
                    replicas=d.placement.targets.get(v.spec.name, 0) if not dry else v.state.state.replicas,
                    ready_replicas=v.state.state.ready,
                    state=_target_state(v, d),
                )
                for v in views
            ],
            conditions=conds,
            last_decision=last,
            unplaced_replicas=d.unplaced,
            secondary_replicas=d.placement.secondary if not dry else sum(v.state.state.replicas for v in views),
            estimated_cost_per_hour=round(cost, 4),
            memory=EngineMemory(
                recommendations=list(d.memory.recommendations),
                burst_started_at=d.memory.burst_started_at,
                primary_capacity=d.memory.primary_capacity,
                primary_capacity_observed_at=d.memory.primary_capacity_observed_at,
                last_metric=d.memory.last_metric,
            ),
        )
        return Outcome(d, status.model_dump(by_alias=True, mode="json"), events, writes)


def _target_state(v: _TargetView, d: Decision) -> str:
    if v.problem:
        return "Unavailable"
    if not v.state.allowed:
        return "NotAllowed"
    return "Active" if d.placement.targets.get(v.spec.name, 0) > 0 else "Idle"
