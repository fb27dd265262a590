"""Speed refactors of the engine change nothing: the one-pass stabilization equals the HPA's two-window rule as
first written, and `explain=False` changes only the message."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from overspill.decide import Memory, decide
from overspill.decide.stabilize import Recommendations, stabilize
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
