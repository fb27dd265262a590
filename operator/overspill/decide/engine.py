"""`decide`: one pure function from (policy, snapshot) to a Decision."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from overspill.api.policy import BurstPolicySpec, FallbackAction, Mode, WorkloadClass
from overspill.decide import placement, replicas, stabilize
from overspill.decide.reasons import Reason
from overspill.decide.snapshot import Decision, FullTarget, Memory, Placement, Snapshot, TargetState


def _evolve(mem: Memory, **changes: Any) -> Memory:
    """`dataclasses.replace` for Memory without re-running its generated __init__: the engine evolves memory
    on every decision, and `overspill tune` makes hundreds of thousands of them. Memory has no __post_init__."""
    new = object.__new__(Memory)
    fields = new.__dict__
    fields.update(mem.__dict__)
    fields.update(changes)
    return new


def _with_history(mem: Memory, recs: tuple[tuple[float, int], ...], samples: tuple[tuple[float, float], ...]) -> Memory:
    """`_evolve(mem, recommendations=recs, samples=samples)` without building keyword arguments: the one change
    of memory most polls make (the recommendation moves with the queue), about half the cost of the general one."""
    new = object.__new__(Memory)
    fields = new.__dict__
    fields.update(mem.__dict__)
    fields["recommendations"] = recs
    fields["samples"] = samples
    return new


class _Rules:
    """What `decide` reads of a policy, read once per policy object rather than once per decision (a replay in
    `overspill tune` decides hundreds of thousands of times with one spec). Specs are frozen models."""

    __slots__ = (
        "activation",
        "down_window",
        "fallback_replicas",
        "make_before_break",
        "max_replicas",
        "min_burst",
        "min_replicas",
        "paused",
        "per_replica",
        "predictive",
        "primary_max",
        "protect_busy",
        "recheck",
        "return_surge",
        "spec",
        "up_window",
    )

    def __init__(self, spec: BurstPolicySpec) -> None:
        self.spec = spec
        self.paused = spec.mode == Mode.PAUSED
        self.primary_max = spec.primary.max_replicas
        self.recheck = spec.primary.capacity_recheck_seconds
        self.activation = spec.metric.activation_threshold
        self.per_replica = spec.metric.target_per_replica
        self.min_replicas, self.max_replicas = spec.min_replicas, spec.max_replicas
        b = spec.behavior
        self.predictive = b.predictive if b.predictive is not None and b.predictive.enabled else None
        self.up_window = b.scale_up_stabilization_seconds
        self.down_window = b.scale_down_stabilization_seconds
        self.min_burst = b.min_burst_duration_seconds
        self.return_surge = b.return_surge
        self.protect_busy = spec.workload_class == WorkloadClass.CI_RUNNER
        self.make_before_break = spec.workload_class == WorkloadClass.INFERENCE
        fb = spec.fallback
        use = fb.on_metric_unavailable == FallbackAction.USE_REPLICAS and fb.replicas is not None
        self.fallback_replicas = fb.replicas if use else None


# an enum member read from its class costs a descriptor call (Python 3.11): read once, for the per-decision test
_METRIC_HOLD = Reason.METRIC_UNAVAILABLE_HOLD
_WINDOW_HOLD = Reason.STABILIZATION_HOLD  # the reason of most polls of a replay

# by id(spec), holding the spec so that its id cannot be reused while cached; bounded (the operator parses a new
# spec object per reconcile, a replay keeps one)
_RULES: dict[int, _Rules] = {}
_RULES_KEPT = 256


def _rules(spec: BurstPolicySpec) -> _Rules:
    r = _RULES.get(id(spec))
    if r is None or r.spec is not spec:
        if len(_RULES) >= _RULES_KEPT:
            _RULES.clear()
        r = _RULES[id(spec)] = _Rules(spec)
    return r


def _current(snap: Snapshot) -> Placement:
    return Placement(primary=snap.primary.replicas, targets={t.name: t.state.replicas for t in snap.targets})


def _primary_capacity(r: _Rules, snap: Snapshot) -> tuple[int | None, Memory]:
    """Explicit cap, the cluster's own accounting (bound pods + room), and what the scheduler revealed.

    Pods the scheduler could not place are the ground truth: they override the estimate. After such a
    contradiction only the room that appears since (the estimate growing past what it said then: nodes added,
    pods gone) is added to the observed capacity, never the whole estimate again: one freed slot is one more
    replica, not a return of every Pending pod. An estimate that is unknown for a moment (a watch reconnecting)
    is the last one known: unknown never reads as "no limit". Without any estimate (nodes not visible) a
    learned capacity expires after capacityRecheckSeconds, the only way left to find out that room came back.
    """
    mem = snap.memory
    primary = snap.primary
    room = primary.room  # primary.capacity_estimate, inline: once per decision
    estimate = None if room is None else primary.scheduled + room
    if estimate is None:
        estimate = mem.primary_estimate
    elif estimate != mem.primary_estimate:
        mem = _evolve(mem, primary_estimate=estimate)
    if primary.unschedulable > 0:
        mem = _evolve(
            mem,
            primary_capacity=primary.replicas - primary.unschedulable,
            primary_capacity_observed_at=snap.now,
            primary_estimate_at_observation=estimate,
        )
    elif (
        mem.primary_capacity is not None
        and estimate is None
        and mem.primary_capacity_observed_at is not None
        and snap.now - mem.primary_capacity_observed_at >= r.recheck
    ):
        mem = _evolve(mem, primary_capacity=None, primary_capacity_observed_at=None)
    learned = estimate
    if mem.primary_capacity is not None:
        seen = mem.primary_estimate_at_observation
        grown = max(0, estimate - seen) if estimate is not None and seen is not None else 0
        learned = mem.primary_capacity + grown
    explicit = r.primary_max
    if explicit is None:
        return learned, mem
    return (explicit if learned is None else min(explicit, learned)), mem


def _target_capacity(r: _Rules, snap: Snapshot, mem: Memory) -> tuple[tuple[TargetState, ...], Memory, tuple[str, ...]]:
    """Targets out of room for this pod shape (a stockout): capped at what runs there until room comes back.

    A target is full once its mirror pods stay Unschedulable past its provisioning timeout (the reconciler
    counts them as `stuck`); the Pending ones are taken back (its cap is what runs there now, so pods lost with
    a node are given back too) and the overflow moves on. While full, it grows only by the room its own
    accounting shows, never by piling on pods. When it shows no room (or none can be seen) capacityRecheckSeconds
    after it was last stuck, it is tried again: a target whose nodes come on demand shows no room until pods ask.
    """
    if not mem.full_targets:
        for t in snap.targets:
            if t.healthy and t.state.stuck > 0:
                break
        else:
            return snap.targets, mem, ()  # nothing full, nothing stuck: the common case, nothing to evolve
    known = {f.name: f for f in mem.full_targets}
    out: list[TargetState] = []
    full: list[FullTarget] = []
    newly: list[str] = []
    for t in snap.targets:
        s = t.state
        entry = known.get(t.name)
        if t.healthy and s.stuck > 0:
            if entry is None:
                newly.append(t.name)
            entry = FullTarget(t.name, s.scheduled, s.room, entry.since if entry else snap.now, snap.now)
        elif entry is not None and t.healthy:
            last = entry.last_stuck if entry.last_stuck is not None else entry.since
            if not s.room and snap.now - last >= r.recheck:
                entry = None  # no room to be seen (nodes on demand, or not visible): try it again
            else:
                grown = s.scheduled + s.room if s.room is not None else max(entry.capacity, s.scheduled)
                entry = replace(entry, capacity=grown)
        if entry is None:
            out.append(t)
            continue
        full.append(entry)
        cap = entry.capacity if t.cap is None else min(t.cap, entry.capacity)
        out.append(replace(t, cap=cap, full=True))
    return tuple(out), _evolve(mem, full_targets=tuple(full)), tuple(newly)


def _overflow_startup(targets: tuple[TargetState, ...]) -> float:
    """Start-up of the target the next replica spills to (first in spill order with room), 0 if unknown."""
    usable = [t for t in targets if placement.usable(t) and (t.cap is None or t.state.replicas < t.cap)]
    if not usable:
        return 0.0
    return min(usable, key=TargetState.order_key).startup_seconds or 0.0


def _desired(
    r: _Rules, now: float, metric: float | None, current: int, mem: Memory, lead_floor: float = 0.0
) -> tuple[int, Memory, Reason | None, int | None]:
    """The stabilized total, the memory to keep, a metric-fallback reason, and the raw recommendation when the
    scale-down window kept the total above it (None otherwise). A predictive policy projects the queue
    max(leadSeconds, `lead_floor`) ahead."""
    if metric is None:
        if r.fallback_replicas is not None:
            # never scale in on a missing metric
            return max(current, r.fallback_replicas), mem, Reason.METRIC_UNAVAILABLE_FALLBACK, None
        return current, mem, Reason.METRIC_UNAVAILABLE_HOLD, None
    value = metric
    pred = r.predictive
    samples: tuple[tuple[float, float], ...] = ()
    if pred is not None:
        samples = replicas.record_sample(mem.samples, now, value, pred.window_seconds)
        value = replicas.projected_metric(value, samples, max(pred.lead_seconds, lead_floor))
    lo, hi = r.min_replicas, r.max_replicas
    raw = replicas.recommend_within(value, r.activation, r.per_replica, lo, hi)
    recs, stable = stabilize.record_and_stabilize(mem.recommendations, now, raw, current, r.up_window, r.down_window)
    # samples are kept only for predictive policies: others write no status while the queue holds still
    if recs is not mem.recommendations or samples != mem.samples:
        mem = _with_history(mem, recs, samples)
    # replicas.clamp(stable, lo, hi), inline: once per decision
    stable = hi if hi <= stable else stable
    stable = lo if lo >= stable else stable
    return stable, mem, None, (raw if stable > raw and raw < current else None)


def _reason(before_primary: int, before_secondary: int, after_primary: int, after_secondary: int) -> Reason | None:
    if after_secondary > before_secondary:
        return Reason.BURST_UP
    if after_secondary < before_secondary:
        return Reason.RETURN_TO_PRIMARY if after_primary > before_primary else Reason.BURST_DOWN
    if after_primary > before_primary:
        return Reason.SCALE_UP
    if after_primary < before_primary:
        return Reason.SCALE_DOWN
    return None


def _describe(
    reason: Reason,
    *,
    spec: BurstPolicySpec,
    metric: float | None,
    targets: tuple[TargetState, ...],
    desired: int,
    after: Placement,
    cap: int | None,
    unplaced: int,
    unavailable: tuple[str, ...],
    held: Reason | None = None,
    window_raw: int | None = None,
) -> str:
    shown = "unavailable" if metric is None else f"{metric:g}"
    where = ", ".join([f"primary={after.primary}"] + [f"{k}={v}" for k, v in sorted(after.targets.items()) if v])
    text = f"queue {shown} -> {desired} desired ({where})"
    if cap is not None and desired > cap:
        text += f"; primary full at {cap}"
    if unplaced:
        text += f"; {unplaced} replicas could not be placed: every usable target is at its cap"
    if unavailable:
        text += f"; unavailable targets: {', '.join(unavailable)}"
    full = [t.name for t in targets if t.full]
    if full:
        text += f"; out of room for this pod shape: {', '.join(full)}"
    hints = {
        Reason.METRIC_UNAVAILABLE_HOLD: "; holding placement until the query answers again",
        Reason.METRIC_UNAVAILABLE_FALLBACK: f"; using fallback replicas {spec.fallback.replicas}",
        Reason.STABILIZATION_HOLD: f"; scale-down held by the {spec.behavior.scale_down_stabilization_seconds}s "
        "stabilization window",
        Reason.MIN_BURST_DURATION_HOLD: f"; secondaries kept for minBurstDurationSeconds "
        f"({spec.behavior.min_burst_duration_seconds}s)",
        Reason.AWAITING_READY_REPLACEMENT: "; waiting for replacements to become Ready before removing replicas",
        Reason.BUSY_REPLICAS_HOLD: "; busy replicas are not removed",
        Reason.BUSY_UNKNOWN_HOLD: "; busy levels unknown: nothing is scaled in until they can be read",
    }
    text += hints.get(reason, "")
    if held is not None and held != reason:
        # the action went ahead, but part of it was held back: say which part and why
        text += hints.get(held, "")
    if window_raw is not None and reason != Reason.STABILIZATION_HOLD:
        text += (
            f"; scale-down partly held by the {spec.behavior.scale_down_stabilization_seconds}s stabilization window"
            f" ({window_raw} recommended now)"
        )
    return text


def decide(spec: BurstPolicySpec, snap: Snapshot, *, explain: bool = True) -> Decision:
    """`explain=False` leaves `message` empty: replays that never show it (simulate, tune) skip the formatting."""
    r = _RULES.get(id(spec))
    if r is None or r.spec is not spec:
        r = _rules(spec)
    if r.paused:
        return Decision(
            desired=snap.current_total,
            placement=_current(snap),
            reason=Reason.PAUSED,
            message="policy is Paused: nothing is scaled",
            memory=snap.memory,
        )
    now, metric, primary = snap.now, snap.metric, snap.primary
    mem = snap.memory
    if primary.room is None and primary.unschedulable <= 0 and mem.primary_capacity is None:
        # nothing to learn (no estimate, no Pending pod, no capacity learned before): the last estimate known, or
        # else the explicit cap, as `_primary_capacity` gives, without the call (most polls of a replay)
        estimate, explicit = mem.primary_estimate, r.primary_max
        cap = explicit if estimate is None else (estimate if explicit is None or estimate < explicit else explicit)
    else:
        cap, mem = _primary_capacity(r, snap)
    targets = snap.targets
    current = primary.replicas
    before_secondary = 0
    unavailable: tuple[str, ...] = ()
    stuck = False
    for t in targets:
        state = t.state
        n = state.replicas
        before_secondary += n
        if t.healthy:
            current += n
            if state.stuck > 0:
                stuck = True
        else:
            unavailable += (t.name,)
    newly_full: tuple[str, ...] = ()
    if stuck or mem.full_targets:
        # a target filling up or full: caps change, replicas and health do not (the sums above stand)
        targets, mem, newly_full = _target_capacity(r, snap, mem)
    lead_floor = 0.0
    if r.predictive is not None and cap is not None and primary.replicas >= cap:
        # the primary is full: the next replica starts in a secondary, and takes that target's start-up to serve
        lead_floor = _overflow_startup(targets)
    desired, mem, desired_reason, window_raw = _desired(r, now, metric, current, mem, lead_floor)
    if desired_reason is _METRIC_HOLD:
        before = _current(snap)
        return Decision(
            desired=desired,
            placement=before,
            reason=desired_reason,
            memory=mem,
            message=""
            if not explain
            else _describe(
                desired_reason,
                spec=spec,
                metric=metric,
                targets=targets,
                desired=desired,
                after=before,
                cap=cap,
                unplaced=0,
                unavailable=unavailable,
            ),
            primary_capacity=cap,
            metric_available=False,
            unavailable_targets=unavailable,
            primary_at_capacity=cap is not None and before.primary >= cap,
        )
    plan = placement.ideal(desired, cap, targets)
    started = mem.burst_started_at
    dwell = started is not None and now - started < r.min_burst
    new_primary, new_targets, held = placement.constrain(
        plan,
        primary,
        targets,
        desired,
        dwell,
        r.protect_busy,
        r.make_before_break,
        r.max_replicas,
        r.return_surge,
    )
    after = Placement(new_primary, new_targets)
    after_secondary = sum(new_targets.values())
    # every target healthy (most polls): no per-target loop in Python
    healthy_secondary = (
        sum(v for k, v in new_targets.items() if k not in unavailable) if unavailable else after_secondary
    )
    if healthy_secondary > 0 and started is None:
        mem = _evolve(mem, burst_started_at=now)
    elif healthy_secondary == 0 and not unavailable and started is not None:
        mem = _evolve(mem, burst_started_at=None)
    # precedence: the metric fallback, then the action taken, then what prevented every change
    reason = desired_reason or _reason(primary.replicas, before_secondary, new_primary, after_secondary) or held
    if newly_full and reason in (None, _WINDOW_HOLD):
        reason = Reason.TARGET_AT_CAPACITY
    if reason is None:
        if window_raw is not None:
            reason = _WINDOW_HOLD
        elif plan.unplaced:
            reason = Reason.CAPACITY_EXHAUSTED
        elif unavailable and any(t.state.replicas for t in targets if not t.healthy):
            reason = Reason.TARGET_UNAVAILABLE
        elif cap is not None and desired > cap:
            reason = Reason.PRIMARY_AT_CAPACITY
        else:
            reason = Reason.STEADY
    at_cap = cap is not None and desired > cap
    # positional, in Decision's field order: a keyword call costs more, once per decision
    return Decision(
        desired,
        after,
        reason,
        ""
        if not explain
        else _describe(
            reason,
            spec=spec,
            metric=metric,
            targets=targets,
            desired=desired,
            after=after,
            cap=cap,
            unplaced=plan.unplaced,
            unavailable=unavailable,
            held=held,
            window_raw=window_raw,
        ),
        mem,
        plan.unplaced,
        cap,
        at_cap,
        metric is not None,
        unavailable,
    )
