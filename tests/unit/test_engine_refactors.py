"""Speed refactors of the engine change nothing: the one-pass stabilization equals the HPA's two-window rule as
first written, and `explain=False` changes only the message."""

from __future__ import annotations

import statistics
from dataclasses import FrozenInstanceError, dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from overspill.decide import Memory, decide, replicas
from overspill.decide.frozen import quick_init
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
