"""Speed refactors of the engine change nothing: the one-pass stabilization equals the HPA's two-window rule as
first written, and `explain=False` changes only the message."""

from __future__ import annotations

import statistics
from dataclasses import FrozenInstanceError, dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from overspill.decide import Memory, TargetState, decide, engine, replicas
from overspill.decide.frozen import quick_init
from overspill.decide.placement import ideal, usable
from overspill.decide.stabilize import Recommendations, record, record_and_stabilize, stabilize
from tests.unit.engine_helpers import cs, policy, snap, tgt


def reference(recs: Recommendations, now: float, current: int, up_window: float, down_window: float) -> int:
    def in_window(window: float) -> list[int]:
        start = now - window
        values = [v for t, v in recs if t > start]
        before = [v for t, v in recs if t <= start]
        if before:
            values.append(before[-1])
        return values

    up, down = in_window(up_window), in_window(down_window)
    result = current
    if up and result < min(up):
        result = min(up)
    if down and result > max(down):
        result = max(down)
    return result


@given(
    st.lists(st.tuples(st.integers(0, 1000).map(float), st.integers(0, 50)), max_size=12).map(tuple),
    st.integers(0, 1200).map(float),
    st.integers(0, 60),
    st.sampled_from([0.0, 10.0, 60.0, 300.0]),
    st.sampled_from([0.0, 30.0, 120.0, 300.0]),
)
def test_one_pass_stabilize_matches_the_reference(
    recs: Recommendations, now: float, current: int, up: float, down: float
) -> None:
    assert stabilize(recs, now, current, up, down) == reference(recs, now, current, up, down)


def test_explain_false_changes_only_the_message() -> None:
    spec = policy(behavior={"scaleDownStabilizationSeconds": 60})
    mem = Memory(recommendations=((950.0, 12),), primary_capacity=8, primary_capacity_observed_at=990.0)
    s = snap(20, cs(8), tgt("aws", cs(7)), memory=mem)
    full, quiet = decide(spec, s), decide(spec, s, explain=False)
    assert full.message and quiet.message == ""
    assert {**full.__dict__, "message": ""} == quiet.__dict__


@given(
    st.lists(st.tuples(st.integers(0, 1000).map(float), st.integers(0, 50)), max_size=12).map(tuple),
    st.integers(0, 1200).map(float),
    st.integers(0, 50),
    st.integers(0, 60),
    st.sampled_from([0.0, 10.0, 60.0, 300.0]),
    st.sampled_from([0.0, 30.0, 120.0, 300.0]),
    st.booleans(),
)
def test_one_pass_record_and_stabilize_is_record_then_stabilize(
    recs: Recommendations, now: float, value: int, current: int, up: float, down: float, ordered: bool
) -> None:
    """In time order (the common case, taken in one pass) and out of it (a clock that stepped back)."""
    if ordered:
        recs = tuple(sorted(recs))
    kept = record(recs, now, value, max(up, down))
    assert record_and_stabilize(recs, now, value, current, up, down) == (kept, stabilize(kept, now, current, up, down))


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=40))
def test_trend_median_is_statistics_median(values: list[float]) -> None:
    assert replicas._median(list(values)) == statistics.median(values)


@quick_init
@dataclass(frozen=True)
class _Shape:
    a: int
    b: str = "b"
    c: tuple[int, ...] = ()
    d: dict[str, int] = field(default_factory=dict)


def test_quick_init_builds_what_the_dataclass_builds() -> None:
    made = [_Shape(1), _Shape(1, "x", (2,), {"k": 3}), _Shape(a=1, d={"k": 3}), _Shape(1, c=(4,))]
    assert [m.__dict__ for m in made] == [
        {"a": 1, "b": "b", "c": (), "d": {}},
        {"a": 1, "b": "x", "c": (2,), "d": {"k": 3}},
        {"a": 1, "b": "b", "c": (), "d": {"k": 3}},
        {"a": 1, "b": "b", "c": (4,), "d": {}},
    ]
    assert _Shape(1).d is not _Shape(1).d  # a factory runs per instance
    assert _Shape(1) == _Shape(1) and hash(_Shape(1, d=None)) == hash(_Shape(1, d=None))  # type: ignore[arg-type]
    assert repr(_Shape(1)) == "_Shape(a=1, b='b', c=(), d={})"
    with pytest.raises(FrozenInstanceError):
        _Shape(1).a = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        _Shape()  # type: ignore[call-arg]


@given(st.integers(-50, 50), st.integers(-50, 50), st.integers(-50, 50))
def test_clamp_is_max_of_min(value: int, lo: int, hi: int) -> None:
    assert replicas.clamp(value, lo, hi) == max(lo, min(hi, value))


@given(
    st.lists(st.tuples(st.integers(0, 1000).map(float), st.integers(0, 50)), min_size=1, max_size=12).map(tuple),
    st.integers(0, 1200).map(float),
    st.integers(-100, 300).map(float),
    st.integers(0, 50),
    st.integers(0, 50),
    st.integers(0, 60),
    st.sampled_from([0.0, 0.0, 10.0, 60.0]),
    st.sampled_from([0.0, 30.0, 120.0, 300.0]),
)
def test_record_and_stabilize_on_the_history_it_returned(
    recs: Recommendations,
    now: float,
    step: float,
    first: int,
    value: int,
    current: int,
    up: float,
    down: float,
) -> None:
    """The next poll passes back the history the last one returned: known in order, it takes the short path (no
    scale-up window) or the one pass; a clock that stepped back (`step` < 0) must still give record-then-stabilize."""
    kept, _ = record_and_stabilize(tuple(sorted(recs)), now, first, current, up, down)
    later = now + step
    again = record(kept, later, value, max(up, down))
    assert record_and_stabilize(kept, later, value, current, up, down) == (
        again,
        stabilize(again, later, current, up, down),
    )


@pytest.mark.parametrize(
    ("recs", "now", "value", "expected"),
    [
        # equal to the history returned last, but a new entry comes before its last time: not in order any more
        (((10.0, 5), (20.0, 3)), 15.0, 7, (((10.0, 5), (20.0, 3), (15.0, 7)), 7)),
        # same value as the last entry, whose time is after now (clock stepped back): nothing appended
        (((10.0, 5), (20.0, 3)), 15.0, 3, (((10.0, 5), (20.0, 3)), 5)),
        # in order, 10 running: the scale-down window (60 s) keeps the largest value in it and the one in force at
        # its start
        (((10.0, 9), (50.0, 2), (90.0, 4)), 100.0, 1, (((10.0, 9), (50.0, 2), (90.0, 4), (100.0, 1)), 9)),
        (((10.0, 9), (50.0, 2), (90.0, 4)), 200.0, 1, (((90.0, 4), (200.0, 1)), 4)),
    ],
)
def test_record_and_stabilize_cases(
    recs: Recommendations, now: float, value: int, expected: tuple[Recommendations, int]
) -> None:
    record_and_stabilize(recs, 20.0, recs[-1][1], 0, 0.0, 60.0)  # `recs` is now the history returned last
    assert record_and_stabilize(recs, now, value, 10, 0.0, 60.0) == expected


def _ideal_as_first_written(desired: int, cap: int | None, t: TargetState) -> tuple[int, dict[str, int], int]:
    primary = desired if cap is None else min(desired, cap)
    remaining = desired - primary
    if not t.healthy:
        return primary, {t.name: t.state.replicas}, remaining
    if not usable(t):
        return primary, {t.name: 0}, remaining
    room = desired if t.cap is None else t.cap
    keep = min(t.state.replicas, room, remaining)
    add = min(room - keep, remaining - keep)
    return primary, {t.name: keep + add}, remaining - keep - add


@given(
    st.integers(0, 60),
    st.one_of(st.none(), st.integers(0, 30)),
    st.integers(0, 40),
    st.one_of(st.none(), st.integers(0, 30)),
    st.booleans(),
    st.booleans(),
)
def test_ideal_for_one_target_is_the_general_rule(
    desired: int, cap: int | None, there: int, target_cap: int | None, healthy: bool, allowed: bool
) -> None:
    t = TargetState("aws", cs(there), healthy=healthy, allowed=allowed, cap=target_cap)
    plan = ideal(desired, cap, (t,))
    assert (plan.primary, plan.targets, plan.unplaced) == _ideal_as_first_written(desired, cap, t)


@given(
    st.lists(st.tuples(st.integers(1, 40).map(float), st.integers(0, 12)), min_size=1, max_size=60),
    st.integers(0, 12),
    st.sampled_from([0.0, 30.0, 120.0, 300.0]),
)
def test_record_and_stabilize_over_a_run_of_polls(polls: list[tuple[float, int]], current: int, down: float) -> None:
    """Poll after poll, each passing back the history the last returned (a replay, a live loop): the largest value
    carried from one call to the next, through appends and pruning, gives record-then-stabilize every time."""
    recs: Recommendations = ()
    now = 0.0
    for gap, value in polls:
        now += gap
        expected = record(recs, now, value, down)
        recs, result = record_and_stabilize(recs, now, value, current, 0.0, down)
        assert (recs, result) == (expected, stabilize(expected, now, current, 0.0, down))


def slope_as_defined(samples: tuple[tuple[float, float], ...]) -> float | None:
    if len(samples) < replicas.MIN_TREND_SAMPLES:
        return None
    per_sample = []
    for i, (ti, vi) in enumerate(samples):
        slopes = [(vj - vi) / (tj - ti) for j, (tj, vj) in enumerate(samples) if j != i and tj != ti]
        if slopes:
            per_sample.append(statistics.median(slopes))
    return statistics.median(per_sample) if per_sample else None


@given(
    st.lists(
        st.tuples(st.integers(0, 20).map(float), st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)),
        max_size=14,
    )
)
def test_trend_slope_is_the_repeated_median_as_defined(samples: list[tuple[float, float]]) -> None:
    """Times may repeat (a sample at the same time as another gives no slope to it)."""
    assert replicas.trend_slope(tuple(samples)) == slope_as_defined(tuple(samples))


@given(st.one_of(st.none(), st.integers(0, 30)), st.one_of(st.none(), st.integers(0, 30)), st.integers(0, 30))
def test_primary_capacity_without_anything_to_learn_is_the_rule(
    estimate: int | None, explicit: int | None, replicas_now: int
) -> None:
    """`decide` skips `_primary_capacity` when there is nothing to learn: the capacity it reports is the rule's."""
    spec = policy(primary={"maxReplicas": explicit} if explicit is not None else {})
    s = snap(5, cs(replicas_now), tgt("aws", cs(0)), memory=Memory(primary_estimate=estimate))
    cap, _ = engine._primary_capacity(engine._rules(spec), s)
    assert decide(spec, s, explain=False).primary_capacity == cap
