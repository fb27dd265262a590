"""Stabilization windows over past recommendations (the HPA's behavior algorithm), with `now` passed in."""

from __future__ import annotations

import bisect
from operator import itemgetter

Recommendations = tuple[tuple[float, int], ...]
_TIME = itemgetter(0)


def record(recs: Recommendations, now: float, value: int, keep_seconds: float) -> Recommendations:
    """Append `value` if it differs from the one in force (run-length encoding), prune what no window needs."""
    if not recs or recs[-1][1] != value:
        recs = (*recs, (now, value))
    horizon = now - keep_seconds
    # keep the last entry before the horizon: it is still in force at the window's start
    first = 0
    for i in range(len(recs) - 1, -1, -1):
        if recs[i][0] <= horizon:
            first = i
            break
    return recs[first:]


def stabilize(recs: Recommendations, now: float, current: int, up_window: float, down_window: float) -> int:
    """Scale up no higher than the lowest recommendation in the up window; down no lower than the highest
    in the down window. A noisy metric therefore cannot flap the workload.

    A window holds the recommendations made after its start, and the last one made at or before it (still in
    force then). One pass over the history serves both windows: this runs on every poll of every policy and
    thousands of times a second in `overspill simulate` and `overspill tune`."""
    up_start, down_start = now - up_window, now - down_window
    up_min: int | None = None
    down_max: int | None = None
    up_before: int | None = None
    down_before: int | None = None
    for t, v in recs:
        if t > up_start:
            if up_min is None or v < up_min:
                up_min = v
        else:
            up_before = v
        if t > down_start:
            if down_max is None or v > down_max:
                down_max = v
        else:
            down_before = v
    if up_before is not None and (up_min is None or up_before < up_min):
        up_min = up_before
    if down_before is not None and (down_max is None or down_before > down_max):
        down_max = down_before
    result = current
    if up_min is not None and result < up_min:
        result = up_min
    if down_max is not None and result > down_max:
        result = down_max
    return result


# the last history `record_and_stabilize` returned after seeing its times in order, with its largest value (None:
# not known): a history equal to it (the next poll's, in a replay or a live loop) is in order without a look at its
# times, and its largest value follows from the entries added and pruned. Read once per call and replaced whole, so
# threads deciding at once can only miss it, never take a history out of order for one in order.
_IN_ORDER: list[tuple[Recommendations, int | None]] = [((), None)]
_VALUE = itemgetter(1)


def _last_at_or_before(recs: Recommendations, horizon: float) -> int:
    """The index of the last entry at or before `horizon` in a history in time order, 0 when there is none (the
    first entry is kept either way). A poll adds at most one entry, so at most one usually leaves the window: two
    comparisons settle that case, a bisection the rest."""
    if len(recs) < 2 or recs[1][0] > horizon:
        return 0
    if len(recs) < 3 or recs[2][0] > horizon:
        return 1
    return bisect.bisect_right(recs, horizon, key=_TIME) - 1


def record_and_stabilize(
    recs: Recommendations, now: float, value: int, current: int, up_window: float, down_window: float
) -> tuple[Recommendations, int]:
    """`record` then `stabilize`, in one pass over the history where its times are in order (always, unless the
    clock stepped back): the two scans were a fifth of a decision. The result is theirs exactly: the entries
    `record` prunes are all at or before both windows' starts and followed by one that is too, so they never
    decide a window. Out of order, it runs the two as written.

    With no scale-up window (the HPA's default and the common case) and a history known to be in order, with no
    time after now, only the values are read: the entry in force now is the last one, and the scale-down window's
    bound is the largest value pruning keeps (from the last entry at or before the window's start). That largest
    value is carried from the call before: a scan of the history only when pruning dropped an entry holding it."""
    known, highest = _IN_ORDER[0]
    # the same object in a replay or a live loop: no comparison of its entries
    in_order = recs is known or recs == known
    if not recs or recs[-1][1] != value:
        if recs and recs[-1][0] > now:
            in_order = False
        if not recs or (highest is not None and value > highest):
            highest = value
        # concatenation, not (*recs, entry): a third of the cost, on every poll whose recommendation moved
        recs = recs + ((now, value),)  # noqa: RUF005
    if in_order and up_window == 0 and down_window >= 0 and recs[-1][0] <= now:
        first = _last_at_or_before(recs, now - down_window)
        if first > 0:
            # one entry pruned (most polls that prune any): read its value, no slice and no max() call
            dropped = recs[0][1] if first == 1 else max(recs[:first], key=_VALUE)[1]
            if highest is not None and dropped >= highest:
                highest = None  # a pruned entry may have held the largest value
            recs = recs[first:]
        if highest is None:
            highest = max(recs, key=_VALUE)[1]
        _IN_ORDER[0] = (recs, highest)
        in_force = recs[-1][1]
        result = in_force if current < in_force else current
        return recs, highest if result > highest else result
    up_start, down_start = now - up_window, now - down_window
    up_min: int | None = None
    down_max: int | None = None
    up_before: int | None = None
    down_before: int | None = None
    previous = recs[0][0]
    for t, v in recs:
        if t < previous:
            kept = record(recs, now, value, max(up_window, down_window))
            return kept, stabilize(kept, now, current, up_window, down_window)
        previous = t
        if t > up_start:
            if up_min is None or v < up_min:
                up_min = v
        else:
            up_before = v
        if t > down_start:
            if down_max is None or v > down_max:
                down_max = v
        else:
            down_before = v
    # the last entry at or before the horizon is still in force at the window's start: keep it, drop the rest
    first = bisect.bisect_right(recs, now - max(up_window, down_window), key=_TIME) - 1
    recs = recs[first:] if first > 0 else recs
    _IN_ORDER[0] = (recs, None)  # every time was seen in order; the largest value is found when needed
    if up_before is not None and (up_min is None or up_before < up_min):
        up_min = up_before
    if down_before is not None and (down_max is None or down_before > down_max):
        down_max = down_before
    result = current
    if up_min is not None and result < up_min:
        result = up_min
    if down_max is not None and result > down_max:
        result = down_max
    return recs, result
