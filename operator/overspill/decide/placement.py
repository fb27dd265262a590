"""Desired total -> replicas per cluster (in the spirit of Karmada's replica dispenser, with a primary).

Two steps: `ideal` says where replicas belong; `constrain` holds back removals that would break a promise
(dwell time, busy runners, make-before-break). Increases are never held back.
"""

from __future__ import annotations

from dataclasses import dataclass

from overspill.decide.frozen import quick_init
from overspill.decide.reasons import Reason
from overspill.decide.snapshot import ClusterState, TargetState


@quick_init
@dataclass(frozen=True)
class Ideal:
    primary: int
    targets: dict[str, int]
    unplaced: int


def usable(t: TargetState) -> bool:
    return t.healthy and t.allowed and (t.cap is None or t.cap > 0)


def ideal(desired: int, primary_cap: int | None, targets: tuple[TargetState, ...]) -> Ideal:
    """Fill the primary to its capacity, then spill by (priority, cost, name), keeping existing secondary
    replicas first so a scale-up never reshuffles and a scale-down drains the least preferred first."""
    primary = desired if primary_cap is None else min(desired, primary_cap)
    remaining = desired - primary
    if len(targets) == 1:
        # one target, most policies: what the general case below gives, without sorting or the second pass
        t = targets[0]
        if not t.healthy:
            return Ideal(primary, {t.name: t.state.replicas}, remaining)
        if not t.allowed or (t.cap is not None and t.cap <= 0):
            return Ideal(primary, {t.name: 0}, remaining)
        # keeping what runs there, then adding, comes to min(its room, what is left)
        room = desired if t.cap is None else t.cap
        placed = remaining if remaining < room else room
        return Ideal(primary, {t.name: placed}, remaining - placed)
    alloc: dict[str, int] = {}
    order: list[TargetState] = []
    for t in targets:
        alloc[t.name] = 0
        if t.healthy and t.allowed and (t.cap is None or t.cap > 0):  # usable(t), inline: once per decision
            order.append(t)
    if len(order) > 1:
        order.sort(key=TargetState.order_key)
    for t in order:
        # min(replicas there, its room, what is left) as conditional expressions: builtin calls cost more here
        room = desired if t.cap is None else t.cap
        keep = t.state.replicas
        keep = room if room < keep else keep
        keep = remaining if remaining < keep else keep
        alloc[t.name] = keep
        remaining -= keep
    if remaining:
        for t in order:
            add = min((desired if t.cap is None else t.cap) - alloc[t.name], remaining)
            alloc[t.name] += add
            remaining -= add
    for t in targets:
        if not t.healthy:
            # cannot act on it: report its last known replicas, frozen
            alloc[t.name] = t.state.replicas
    return Ideal(primary, alloc, remaining)


def _busy_floor(state: ClusterState, new: int, protect_busy: bool, held: Reason | None) -> tuple[int, Reason | None]:
    """Never below the busy pods (CI runners) nor below pods whose busy level is unknown (any class), nor so low
    that the workload's controller, removing pods in its own order, reaches one of them."""
    count = (state.busy if protect_busy else 0) + state.busy_unknown
    floor = min(state.replicas, max(count, state.busy_keep if protect_busy else state.unknown_keep))
    if new >= floor:
        return new, held
    return floor, held or (Reason.BUSY_UNKNOWN_HOLD if state.busy_unknown else Reason.BUSY_REPLICAS_HOLD)


@dataclass
class _Budget:
    """Ready replicas that may be lost this step without dropping below what is needed (make-before-break)."""

    ready: int
    enforce: bool

    def allow(self, state: ClusterState, new: int) -> int:
        if not self.enforce or new >= state.ready:
            return new  # only unready pods go: the ReplicaSet removes those first
        take = min(state.ready - new, self.ready)
        self.ready -= take
        return state.ready - take


def constrain(
    plan: Ideal,
    primary: ClusterState,
    targets: tuple[TargetState, ...],
    desired: int,
    dwell_active: bool,
    protect_busy: bool,
    make_before_break: bool,
    max_total: int,
    return_surge: int = 0,
) -> tuple[int, dict[str, int], Reason | None]:
    """Apply removal constraints in drain order: secondaries (least preferred first), then the primary.

    Busy pods, and pods whose busy level is unknown, are a floor no removal goes below. While make-before-break
    holds a secondary, the total may exceed `max_total` by `return_surge` so that the primary can add the
    replacement the secondary waits for (at maxReplicas the two would otherwise wait on each other forever).
    """
    held: Reason | None = None
    awaiting_replacement = False
    planned = plan.targets
    new_primary = plan.primary
    if new_primary >= primary.replicas:
        # nothing is removed (the common case while the queue holds or grows): only the maxReplicas trim can apply.
        # One loop, no lists: this runs on every decision
        total = new_primary
        for t in targets:
            if t.healthy:
                n = planned[t.name]
                if n < t.state.replicas:
                    break
                total += n
        else:
            if total <= max_total:
                # the plan's own dict, fresh from `ideal` and not kept by it: no copy
                return new_primary, planned, None
    healthy = [t for t in targets if t.healthy]
    shrinking = [t for t in healthy if planned[t.name] < t.state.replicas]
    out = dict(planned)
    if shrinking or new_primary < primary.replicas:
        ready_now = primary.ready + sum(t.state.ready for t in healthy)
        budget = _Budget(ready=max(0, ready_now - desired), enforce=make_before_break)
        # drain order, least preferred first (targets that do not shrink take nothing from the budget)
        for t in sorted(shrinking, key=TargetState.order_key, reverse=True):
            new, cur = planned[t.name], t.state.replicas
            if dwell_active and t.allowed:
                # replicas that cannot run in a full target are not serving: the dwell does not keep them
                keep = max(new, min(cur, t.state.scheduled)) if t.full else cur
                if keep > new:
                    held = held or Reason.MIN_BURST_DURATION_HOLD
                out[t.name] = keep
                continue
            new, held = _busy_floor(t.state, new, protect_busy, held)
            allowed = budget.allow(t.state, new)
            if allowed > new:
                held, awaiting_replacement = held or Reason.AWAITING_READY_REPLACEMENT, True
            out[t.name] = min(cur, allowed)
        if new_primary < primary.replicas:
            only_unschedulable = new_primary >= primary.replicas - primary.unschedulable
            if shrinking and not only_unschedulable:
                # drain secondaries first: the primary shrinks only once they are at their target
                new_primary = max(new_primary, primary.replicas - primary.unschedulable)
            new_primary, held = _busy_floor(primary, new_primary, protect_busy, held)
            allowed = budget.allow(primary, new_primary)
            if allowed > new_primary:
                held = held or Reason.AWAITING_READY_REPLACEMENT
            new_primary = min(primary.replicas, allowed)
    # growth never pushes the total past maxReplicas, even while held replicas (make-before-break, busy,
    # dwell) are still counted: trim the newest growth, primary surge first, then the least preferred target
    limit = max_total + (return_surge if awaiting_replacement else 0)
    over = new_primary - limit
    for t in healthy:
        over += out[t.name]
    if over > 0 and new_primary > primary.replicas:
        cut = min(over, new_primary - primary.replicas)
        new_primary, over = new_primary - cut, over - cut
    if over > 0:
        for t in sorted(healthy, key=TargetState.order_key, reverse=True):
            if over <= 0:
                break
            cut = min(over, max(0, out[t.name] - t.state.replicas))
            out[t.name], over = out[t.name] - cut, over - cut
    return new_primary, out, held
