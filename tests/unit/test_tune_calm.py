"""`overspill tune` looks for calm settings: every placement change is pods created or removed in some cluster.

recommend() prefers, within CALM_TOLERANCE of the cheapest setting's cost and replica-hours, the one that changes
placement least, but it can only choose among the settings the search tried. The cheapest setting's one-notch
moves are each dearer or miss the SLO, so the search also tries its longer holds (with targetPerReplica one notch
up, which the longer hold pays for), and then moves around recommend()'s pick. Hand-made outcomes: no replay."""

from __future__ import annotations

from dataclasses import replace

from overspill.tune import (
    DOWN_WINDOWS,
    DWELLS,
    TPR_FACTORS,
    Knobs,
    Outcome,
    _neighbours,
    _sweep,
    calm_moves,
    local_moves,
    recommend,
)
from tests.unit.engine_helpers import policy

BASE = Knobs.of(policy(metric={"targetPerReplica": 1}, minReplicas=2))
MINS = (2, 20, 21)
# the cheapest one-notch optimum on the CI day (95 % within 300 s): no hold, 0.5 runner per queued job
CHEAPEST = Knobs(0.5, 0.0, 10, 0, 0, 0, 60, 20)


def outcome(k: Knobs, hours: float, changes: int, *, met: bool = True) -> Outcome:
    return Outcome(k, 0.96 if met else 0.9, hours, hours * 0.12, changes, met)


def test_calm_moves_are_longer_holds_alone_and_with_one_notch_fewer_replicas_per_job() -> None:
    moves = calm_moves(CHEAPEST, BASE)
    longer = [d for d in DWELLS if d > 0] + [w for w in DOWN_WINDOWS if w > 0]
    assert len(moves) == 2 * len(longer) == len(set(moves))
    for m in moves:
        held = (m.min_burst_duration_seconds, m.scale_down_stabilization_seconds)
        assert held in {(d, 0) for d in DWELLS if d > 0} | {(0, w) for w in DOWN_WINDOWS if w > 0}
        assert m.target_per_replica in {0.5, 0.7}  # as is, or the next of the searched factors
        assert replace(m, target_per_replica=0.5, min_burst_duration_seconds=0, scale_down_stabilization_seconds=0) == (
            CHEAPEST
        )
    # the pair that was calm on the CI day: a 300 s hold with 0.7 runner per job
    assert replace(CHEAPEST, target_per_replica=0.7, min_burst_duration_seconds=300) in moves
    # the longest holds and the largest targetPerReplica have no calmer move of that knob
    top = replace(CHEAPEST, target_per_replica=max(TPR_FACTORS), min_burst_duration_seconds=max(DWELLS))
    assert all(m.target_per_replica == max(TPR_FACTORS) for m in calm_moves(top, BASE))
    assert all(m.min_burst_duration_seconds == max(DWELLS) for m in calm_moves(top, BASE))


def test_moves_around_the_best_come_first() -> None:
    best = outcome(CHEAPEST, 8.83, 61)
    neighbours = set(_neighbours(CHEAPEST, BASE, MINS)) - {CHEAPEST}  # a trend window with prediction off: itself
    moves = local_moves(best, [best], {CHEAPEST}, BASE, MINS)
    assert set(moves) == neighbours


def test_at_a_local_optimum_the_search_tries_the_best_with_a_longer_hold() -> None:
    """Before: the neighbours again, all tried: the search never saw the 300 s hold at 0.7 per job (8.80 h, 21
    changes) next to the cheapest it found (8.83 h, 61 changes)."""
    best = outcome(CHEAPEST, 8.83, 61)
    tried = {CHEAPEST, *_neighbours(CHEAPEST, BASE, MINS)}
    moves = local_moves(best, [best], tried, BASE, MINS)
    assert set(moves) == set(calm_moves(CHEAPEST, BASE)) - tried
    assert replace(CHEAPEST, target_per_replica=0.7, min_burst_duration_seconds=300) in moves


def test_an_slo_missed_keeps_to_the_neighbours() -> None:
    """Calm moves buy fewer changes with replica-hours: only once the SLO is met is there a cost to trade."""
    best = outcome(CHEAPEST, 8.83, 61, met=False)
    tried = {CHEAPEST, *_neighbours(CHEAPEST, BASE, MINS)}
    assert local_moves(best, [best], tried, BASE, MINS) == []


def test_then_the_search_moves_around_the_calmest_setting_within_the_tolerance() -> None:
    """The best's calm moves tried: one within 3 % of its replica-hours changes placement a third as often.
    recommend() picks it, and the search walks on from there, not from the cheapest again."""
    best = outcome(CHEAPEST, 8.83, 61)
    calm_knobs = replace(CHEAPEST, scale_down_stabilization_seconds=30)
    calm = outcome(calm_knobs, 8.96, 18)
    others = [outcome(k, 11.0, 20) for k in calm_moves(CHEAPEST, BASE) if k != calm_knobs]
    outcomes = [best, calm, *others]
    assert recommend(outcomes, best) == calm
    tried = {CHEAPEST, *_neighbours(CHEAPEST, BASE, MINS), *calm_moves(CHEAPEST, BASE)}
    moves = local_moves(best, outcomes, tried, BASE, MINS)
    assert moves
    assert set(moves) == ({*_neighbours(calm_knobs, BASE, MINS), *calm_moves(calm_knobs, BASE)} - tried)


def test_the_coarse_sweep_tries_no_hold_and_the_longest_hold() -> None:
    """The sweep is where settings that differ in several knobs at once are tried: without the longest
    minBurstDurationSeconds it held bursts for 60 s at most, and a calm setting was left to chance."""
    sweep = _sweep(BASE, MINS, 20)
    for dwell in (0, max(DWELLS)):
        for down in (0, max(DOWN_WINDOWS)):
            assert any(
                k.min_burst_duration_seconds == dwell
                and k.scale_down_stabilization_seconds == down
                and k.min_replicas == 20
                for k in sweep
            )
