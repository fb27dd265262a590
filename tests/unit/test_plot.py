"""The simulator's picture says what a reader needs: units, the primary's capacity, Pending apart from Ready, the
policy and capacity in the title, and one panel per strategy on a shared time axis."""

from __future__ import annotations

from pathlib import Path

from overspill.plot import draw, figure
from overspill.simulate import Step


def steps(pending: int) -> list[Step]:
    return [
        Step(0.0, 10.0, 2, 2, 2, {"aws": 0}, {"aws": 0}, "Steady"),
        Step(10.0, 150.0, 15, 8, 8, {"aws": 7}, {"aws": 7 - pending}, "BurstUp"),
        Step(20.0, 40.0, 15, 8, 8, {"aws": 7}, {"aws": 7}, "Steady"),
    ]


def test_one_panel_per_strategy_with_units_capacity_and_pending() -> None:
    fig = figure({"overspill": steps(7), "primary-only": steps(0)}, policy="vllm", trace="t.csv", primary_capacity=8)
    queue, first, second = fig.axes
    assert queue.get_ylabel() == "queue (requests waiting)"
    assert "vllm" in queue.get_title() and "primary capacity 8" in queue.get_title()
    assert first.get_shared_x_axes().joined(first, second) and first.get_shared_x_axes().joined(queue, second)
    assert "overspill" in first.get_ylabel() and "primary-only" in second.get_ylabel()
    labels = [t.get_text() for t in first.get_legend().get_texts()]
    assert {"aws Ready", "aws Pending/starting", "primary Ready", "primary capacity", "desired"} <= set(labels)
    capacity = [line for line in first.get_lines() if line.get_label() == "primary capacity"]
    assert capacity and set(capacity[0].get_ydata()) == {8}
    # the Pending layer is drawn apart (hatched, faint) and holds the 7 starting replicas at t=10 min
    pending = [c for c in first.collections if c.get_label() == "aws Pending/starting"]
    assert pending and pending[0].get_hatch() == "///"


def test_draw_writes_a_png(tmp_path: Path) -> None:
    out = tmp_path / "burst.png"
    draw({"overspill": steps(3)}, out, policy="vllm", trace="t.csv", primary_capacity=None)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
