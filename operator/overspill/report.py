"""Status, conditions and Events for a policy: what users read in `kubectl describe bp` and dashboards."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from overspill.api.base import Condition
from overspill.api.policy import (
    BurstPolicySpec,
    BurstPolicyStatus,
    EngineMemory,
    ExportStatus,
    FullTargetMemory,
    LastDecision,
    Mode,
    PrimaryStatus,
    TargetStatus,
    TrafficStatus,
)
from overspill.decide import ClusterState, Decision, Memory, TargetState
from overspill.decide.reasons import Reason
from overspill.decide.snapshot import FullTarget

Event = tuple[str, str, str]  # (type, reason, message)


@dataclass(frozen=True)
class TargetReport:
    name: str
    state: TargetState
    problem: str | None


@dataclass(frozen=True)
class DependencyReport:
    """What the act step found for the objects a burst carries: blocking problems per target (names, never
    content) and how many objects are in place in targets holding replicas."""

    problems: dict[str, str]
    carried: int = 0


@dataclass(frozen=True)
class TrafficReport:
    service: str
    route: str | None = None
    local_weight: int | None = None
    burst_weight: int | None = None
    exports: tuple[ExportStatus, ...] = ()
    problems: tuple[str, ...] = ()
    reason: str | None = None  # TrafficReady's reason when not ready and something more precise is known


def _now_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


def memory_from_status(m: EngineMemory) -> Memory:
    return Memory(
        recommendations=tuple((float(t), int(v)) for t, v in m.recommendations),
        burst_started_at=m.burst_started_at,
        primary_capacity=m.primary_capacity,
        primary_capacity_observed_at=m.primary_capacity_observed_at,
        samples=tuple((float(t), float(v)) for t, v in m.samples),
        primary_estimate_at_observation=m.primary_estimate_at_observation,
        primary_estimate=m.primary_estimate,
        full_targets=tuple(FullTarget(f.name, f.capacity, f.estimate, f.since, f.last_stuck) for f in m.full_targets),
    )


def memory_to_status(m: Memory) -> EngineMemory:
    return EngineMemory(
        recommendations=list(m.recommendations),
        burst_started_at=m.burst_started_at,
        primary_capacity=m.primary_capacity,
        primary_capacity_observed_at=m.primary_capacity_observed_at,
        samples=list(m.samples),
        primary_estimate_at_observation=m.primary_estimate_at_observation,
        primary_estimate=m.primary_estimate,
        full_targets=[
            FullTargetMemory(
                name=f.name, capacity=f.capacity, estimate=f.estimate, since=f.since, last_stuck=f.last_stuck
            )
            for f in m.full_targets
        ],
    )


def failure_status(
    prev: BurstPolicyStatus, generation: int | None, reason: str, message: str, now_ts: float
) -> tuple[dict[str, Any], list[Event]]:
    """A status that says why nothing was done (invalid spec, missing workload, conflict)."""
    now = _now_iso(now_ts)
    status = prev.model_copy(deep=True)
    status.observed_generation = generation
    status.conditions = [_condition(prev.conditions, "Ready", False, reason, message, now, generation)] + [
        c for c in prev.conditions if c.type != "Ready"
    ]
    changed = prev.last_decision.reason != reason or prev.last_decision.message != message
    if changed:
        status.last_decision = LastDecision(time=now, reason=reason, message=message)
    events = [("Warning", reason, message)] if changed else []
    return status.model_dump(by_alias=True, mode="json"), events


@dataclass(frozen=True)
class SafetyReport:
    """What the safety rules held back this poll (issue 10); None fields: nothing to say.

    busy: why some pods' busy levels are unknown (so nothing was scaled in and deletion costs were kept);
    refused: per target, why a placement was refused (its namespace not allowed there);
    pending: per target, why the mirror's template update waits (busy runners);
    fights: per target, who keeps rewriting its mirror after corrections (they back off);
    events: one-off Events of this poll (a corrected drift)."""

    busy_configured: bool = False
    busy: str | None = None
    refused: dict[str, str] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)
    fights: dict[str, str] = field(default_factory=dict)
    events: tuple[Event, ...] = ()


SAFETY_CONDITIONS = ("BusyAvailable", "PlacementAllowed", "MirrorsUpToDate")


def _safety_conditions(prev: list[Condition], now: str, generation: int | None, s: SafetyReport) -> list[Condition]:
    out = []
    if s.busy_configured:
        out.append(
            _condition(
                prev,
                "BusyAvailable",
                s.busy is None,
                "Known" if s.busy is None else "BusyUnknown",
                "busy levels of every pod known"
                if s.busy is None
                else s.busy + "; unknown counts as busy: nothing is scaled in and deletion costs stay as they were",
                now,
                generation,
            )
        )
    out.append(
        _condition(
            prev,
            "PlacementAllowed",
            not s.refused,
            "Allowed" if not s.refused else "NamespaceNotAllowed",
            "; ".join(s.refused[t] for t in sorted(s.refused)) + ("; nothing is created there" if s.refused else ""),
            now,
            generation,
        )
    )
    held = s.pending | {t: m for t, m in s.fights.items() if t not in s.pending}
    out.append(
        _condition(
            prev,
            "MirrorsUpToDate",
            not held,
            "UpToDate" if not held else "TemplateUpdatePending" if s.pending else "MirrorDriftFight",
            "; ".join(held[t] for t in sorted(held)),
            now,
            generation,
        )
    )
    return out


def _target_state(t: TargetReport, d: Decision) -> str:
    if t.problem:
        return "Unavailable"
    if not t.state.allowed:
        return "NotAllowed"
    if any(f.name == t.name for f in d.memory.full_targets):
        return "AtCapacity"
    return "Active" if d.placement.targets.get(t.name, 0) > 0 else "Idle"


def policy_status(
    spec: BurstPolicySpec,
    prev: BurstPolicyStatus,
    generation: int | None,
    now_ts: float,
    metric: float | None,
    metric_problem: str,
    primary: ClusterState,
    targets: list[TargetReport],
    d: Decision,
    problems: dict[str, str],
    dependencies: DependencyReport | None = None,
    traffic: TrafficReport | None = None,
    safety: SafetyReport | None = None,
) -> tuple[dict[str, Any], list[Event]]:
    now = _now_iso(now_ts)
    dry = spec.mode == Mode.DRY_RUN
    events: list[tuple[str, str, str]] = []
    prefix = "DryRun, not applied: " if dry else ""
    observed = (primary.replicas, tuple(v.state.state.replicas for v in targets))
    planned = (d.placement.primary, tuple(d.placement.targets.get(v.name, 0) for v in targets))
    changed = observed != planned
    last = prev.last_decision
    if changed or last.reason != d.reason.value:
        last = LastDecision(time=now, reason=d.reason.value, message=prefix + d.message)
    if changed and (not dry or prev.last_decision.message != prefix + d.message):
        events.append(("Normal", d.reason.value, prefix + d.message))
    cost = sum(d.placement.targets.get(v.name, 0) * (v.state.cost_per_replica_hour or 0) for v in targets)
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
            # no figures here: they move with every pod in the cluster; status.primary carries them
            ("desired replicas exceed the primary's capacity (status.primary: capacity, estimate, observed)")
            if d.primary_at_capacity
            else "the primary has room for the desired replicas"
            if d.primary_capacity is not None
            else "capacity unknown: nodes not visible and no pod is Unschedulable",
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
    conds += _serving_conditions(prev.conditions, now, generation, dependencies, traffic, has_targets=bool(targets))
    if safety is not None:
        conds += _safety_conditions(prev.conditions, now, generation, safety)
    old = {c.type: c for c in prev.conditions}
    events += _serving_events(old, conds)
    if safety is not None:
        events += _transition_events(old, conds, SAFETY_CONDITIONS) + list(safety.events)
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
            capacity_estimate=primary.capacity_estimate,
            capacity_observed=d.memory.primary_capacity,
        ),
        targets=[
            TargetStatus(
                name=v.name,
                replicas=d.placement.targets.get(v.name, 0) if not dry else v.state.state.replicas,
                ready_replicas=v.state.state.ready,
                pending_replicas=max(0, v.state.state.replicas - v.state.state.scheduled) if not v.problem else 0,
                free_room=v.state.state.room,
                state=_target_state(v, d),
            )
            for v in targets
        ],
        conditions=conds,
        last_decision=last,
        unplaced_replicas=d.unplaced,
        secondary_replicas=d.placement.secondary if not dry else sum(v.state.state.replicas for v in targets),
        estimated_cost_per_hour=round(cost, 4),
        traffic=None
        if traffic is None
        else TrafficStatus(
            service=traffic.service,
            route=traffic.route,
            local_weight=traffic.local_weight,
            burst_weight=traffic.burst_weight,
            exports=list(traffic.exports),
        ),
        memory=memory_to_status(d.memory),
    )
    return status.model_dump(by_alias=True, mode="json"), events


def _serving_conditions(
    prev: list[Condition],
    now: str,
    generation: int | None,
    dependencies: DependencyReport | None,
    traffic: TrafficReport | None,
    *,
    has_targets: bool = True,
) -> list[Condition]:
    """DependenciesReady (always, once the act step reports it) and TrafficReady (when spec.traffic is set)."""
    out: list[Condition] = []
    if dependencies is None:
        # no target reachable this tick: what was last known stands (a target flapping under a slow API server
        # must not make a thousand policies drop the condition and write it back); a policy left with no
        # target at all has no dependencies to report
        if has_targets:
            out.extend(c for c in prev if c.type == "DependenciesReady")
    else:
        ok = not dependencies.problems
        out.append(
            _condition(
                prev,
                "DependenciesReady",
                ok,
                "Carried" if ok else "DependenciesMissing",
                f"{dependencies.carried} referenced objects in place in targets holding replicas"
                if ok
                else "; ".join(dependencies.problems[t] for t in sorted(dependencies.problems))
                + "; the mirror is not scaled up there, nor a new pod template rolled out to it, until this is fixed",
                now,
                generation,
            )
        )
    if traffic is not None:
        ok = not traffic.problems
        weights = (
            f"; route weights local={traffic.local_weight} burst={traffic.burst_weight}"
            if traffic.route is not None
            else ""
        )
        out.append(
            _condition(
                prev,
                "TrafficReady",
                ok,
                "Serving" if ok else (traffic.reason or "TrafficNotReady"),
                (f"Service {traffic.service} in targets holding replicas" + weights)
                if ok
                else "; ".join(traffic.problems),
                now,
                generation,
            )
        )
    return out


def _serving_events(old: dict[str, Condition], conds: list[Condition]) -> list[Event]:
    return _transition_events(old, conds, ("DependenciesReady", "TrafficReady"))


def _transition_events(old: dict[str, Condition], conds: list[Condition], types: tuple[str, ...]) -> list[Event]:
    """A Warning when one of these conditions turns False or its message changes; a Normal when it recovers."""
    events: list[Event] = []
    for c in conds:
        if c.type not in types:
            continue
        before = old.get(c.type)
        if c.status == "False" and (before is None or before.message != c.message):
            events.append(("Warning", c.reason, c.message))
        if c.status == "True" and before is not None and before.status == "False":
            events.append(("Normal", c.reason, c.message))
    return events
