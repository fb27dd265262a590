"""Tick slots: a thousand policies started together must not tick together (issue 12: poll lateness p99 < 1 s).
Before, every policy's next tick was `started + interval`: the herd of the operator's start came back every
interval, and the last of a thousand ticks waited behind the other 999."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from overspill.cadence import first_slot, next_slot, phase


def test_phases_spread_evenly_over_the_interval() -> None:
    uids = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(1000)]
    tenths = Counter(int(phase(u) * 10) for u in uids)
    assert set(tenths) == set(range(10))
    assert max(tenths.values()) < 1000 / 10 * 1.4, "a tenth of the interval holding far more than its share"


def test_a_phase_is_stable_for_a_policy() -> None:
    assert phase("a1b2") == phase("a1b2") != phase("a1b3")


@pytest.mark.parametrize(
    ("now", "interval", "offset", "expected"),
    [
        (100.0, 10.0, 0.0, 110.0),  # on its slot: the next one
        (103.0, 10.0, 0.3, 113.0),
        (103.0, 10.0, 0.0, 110.0),  # woken early 3 s after its slot: the next slot stands (7 s away)
        (106.0, 10.0, 0.0, 120.0),  # woken 6 s after: the next slot is only 4 s away, so the one after
        (100.0, 60.0, 0.5, 150.0),
    ],
)
def test_next_slot(now: float, interval: float, offset: float, expected: float) -> None:
    assert next_slot(now, interval, offset) == pytest.approx(expected)


@pytest.mark.parametrize("now", [0.0, 3.3, 99.9, 1234.5])
@pytest.mark.parametrize("offset", [0.0, 0.25, 0.999])
def test_the_next_slot_is_half_to_one_and_a_half_intervals_away(now: float, offset: float) -> None:
    gap = next_slot(now, 10.0, offset) - now
    assert 5.0 <= gap < 15.0


def test_the_first_ticks_after_a_start_are_spread_over_ten_seconds_at_most() -> None:
    assert first_slot(100.0, 10.0, 0.25) == pytest.approx(102.5)
    assert first_slot(100.0, 4.0, 0.5) == pytest.approx(102.0)
    # a 5-minute poll: a restarted operator's first look is not 5 minutes away (review)
    assert first_slot(100.0, 300.0, 0.99) == pytest.approx(109.9)


def test_a_thousand_started_together_tick_spread_out() -> None:
    uids = [str(uuid.UUID(int=i * 104729 + 3)) for i in range(1000)]
    firsts = [first_slot(50.0, 10.0, phase(u)) for u in uids]
    per_second = Counter(int(t) for t in firsts)
    assert len(per_second) == 10 and max(per_second.values()) < 150
    seconds = Counter(int(next_slot(t, 10.0, phase(u))) for t, u in zip(firsts, uids, strict=True))
    assert max(seconds.values()) < 150, "the herd came back one interval later"
