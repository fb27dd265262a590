"""Stabilization windows over past recommendations (the HPA's behavior algorithm), with `now` passed in."""

from __future__ import annotations

Recommendations = tuple[tuple[float, int], ...]


def record(recs: Recommendations, now: float, value: int, keep_seconds: float) -> Recommendations:
    """Append `value` if it differs from the one in force (run-length encoding), prune what no window needs."""
    if not recs or recs[-1][1] != value:
        recs = (*recs, (now, value))
    horizon = now - keep_seconds
    # keep the last entry before the horizon: it is still in force at the window's start
    first = 0
    for i, (t, _) in enumerate(recs):
        if t <= horizon:
            first = i
    return recs[first:]


def _in_window(recs: Recommendations, now: float, window: float) -> list[int]:
    start = now - window
    values = [v for t, v in recs if t > start]
    before = [v for t, v in recs if t <= start]
    if before:
        values.append(before[-1])
    return values


def stabilize(recs: Recommendations, now: float, current: int, up_window: float, down_window: float) -> int:
    """Scale up no higher than the lowest recommendation in the up window; down no lower than the highest
    in the down window. A noisy metric therefore cannot flap the workload."""
    up_values = _in_window(recs, now, up_window)
    down_values = _in_window(recs, now, down_window)
    result = current
    if up_values and result < min(up_values):
        result = min(up_values)
    if down_values and result > max(down_values):
        result = max(down_values)
    return result
