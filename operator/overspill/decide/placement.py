"""Desired total -> replicas per cluster (in the spirit of Karmada's replica dispenser, with a primary).

Two steps: `ideal` says where replicas belong; `constrain` holds back removals that would break a promise
(dwell time, busy runners, make-before-break). Increases are never held back.
"""

from __future__ import annotations

from dataclasses import dataclass

from overspill.decide.reasons import Reason
from overspill.decide.snapshot import ClusterState, TargetState


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
    order = sorted((t for t in targets if usable(t)), key=TargetState.order_key)
    alloc = {t.name: 0 for t in targets}
    room = {t.name: (t.cap if t.cap is not None else desired) for t in order}
    for t in order:
        keep = min(t.state.replicas, room[t.name], remaining)
        alloc[t.name] = keep
        remaining -= keep
    for t in order:
        add = min(room[t.name] - alloc[t.name], remaining)
        alloc[t.name] += add
        remaining -= add
    for t in targets:
        if not t.healthy:
            # cannot act on it: report its last known replicas, frozen
            alloc[t.name] = t.state.replicas
    return Ideal(primary=primary, targets=alloc, unplaced=remaining)


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
    *,
    dwell_active: bool,
    protect_busy: bool,
    make_before_break: bool,
    max_total: int,
) -> tuple[int, dict[str, int], Reason | None]:
    """Apply removal constraints in drain order: secondaries (least preferred first), then the primary."""
    held: Reason | None = None
    healthy = [t for t in targets if t.healthy]
    ready_now = primary.ready + sum(t.state.ready for t in healthy)
    budget = _Budget(ready=max(0, ready_now - desired), enforce=make_before_break)
    out = dict(plan.targets)
    drain = sorted(healthy, key=TargetState.order_key, reverse=True)
    for t in drain:
        new, cur = plan.targets[t.name], t.state.replicas
        if new >= cur:
            continue
        if dwell_active and t.allowed:
            out[t.name], held = cur, held or Reason.MIN_BURST_DURATION_HOLD
            continue
        floor = t.state.busy if protect_busy else 0
        if new < floor:
            new, held = floor, held or Reason.BUSY_REPLICAS_HOLD
        allowed = budget.allow(t.state, new)
        if allowed > new:
            held = held or Reason.AWAITING_READY_REPLACEMENT
        out[t.name] = min(cur, allowed)
    new_primary = plan.primary
    if new_primary < primary.replicas:
        secondaries_settled = all(t.state.replicas <= plan.targets[t.name] for t in healthy)
        only_unschedulable = new_primary >= primary.replicas - primary.unschedulable
        if not secondaries_settled and not only_unschedulable:
            # drain secondaries first: the primary shrinks only once they are at their target
            new_primary = max(new_primary, primary.replicas - primary.unschedulable)
        floor = primary.busy if protect_busy else 0
        if new_primary < floor:
            new_primary, held = floor, held or Reason.BUSY_REPLICAS_HOLD
        allowed = budget.allow(primary, new_primary)
        if allowed > new_primary:
            held = held or Reason.AWAITING_READY_REPLACEMENT
        new_primary = min(primary.replicas, allowed)
    # growth never pushes the total past maxReplicas, even while held replicas (make-before-break, busy,
    # dwell) are still counted: trim the newest growth, primary surge first, then the least preferred target
    over = new_primary + sum(out[t.name] for t in healthy) - max_total
    if over > 0 and new_primary > primary.replicas:
        cut = min(over, new_primary - primary.replicas)
        new_primary, over = new_primary - cut, over - cut
    for t in drain:
        if over <= 0:
            break
        cut = min(over, max(0, out[t.name] - t.state.replicas))
        out[t.name], over = out[t.name] - cut, over - cut
    return new_primary, out, held
