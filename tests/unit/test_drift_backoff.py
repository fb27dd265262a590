"""Drift corrections back off when another writer fights them: from one poll, doubling, capped at 5 minutes."""

from __future__ import annotations

import itertools

from overspill.decide.drift import DRIFT_BACKOFF_CAP, DriftStreak, corrected, decode_streak, encode_streak


def test_a_fight_doubles_the_wait_up_to_the_cap() -> None:
    streak, now, made = DriftStreak(), 0.0, []
    while now < 3600:  # the drift is back at every poll of 10 s for an hour
        if streak.may_correct(now):
            streak = corrected(streak, now, base=10.0)
            made.append(now)
        now += 10.0
    gaps = [b - a for a, b in itertools.pairwise(made)]
    assert gaps[:5] == [10.0, 20.0, 40.0, 80.0, 160.0]
    assert max(gaps) == DRIFT_BACKOFF_CAP
    assert len(made) < 20  # 360 corrections (a rollout each) without the backoff
    assert streak.fight


def test_one_hand_edit_is_corrected_at_once_and_is_no_fight() -> None:
    streak = corrected(DriftStreak(), 100.0, base=10.0)
    assert not streak.fight and streak.may_correct(110.0)


def test_a_quiet_period_ends_the_streak() -> None:
    streak = DriftStreak()
    for t in (0.0, 10.0, 30.0, 70.0):
        streak = corrected(streak, t, base=10.0)
    assert streak.fight
    later = corrected(streak, 70.0 + 2 * DRIFT_BACKOFF_CAP + 1, base=10.0)
    assert later.corrections == 1 and not later.fight


def test_the_streak_kept_on_the_mirror_round_trips_and_junk_starts_afresh() -> None:
    streak = DriftStreak(corrections=4, last=1_800_000_000.5, not_before=1_800_000_016.5)
    assert decode_streak(encode_streak(streak)) == streak
    for junk in (None, "", "x", "[]", '{"corrections": "a", "last": 1, "notBefore": 2}', '{"last": 1}'):
        assert decode_streak(junk) is None, junk
    # a hand-edited annotation holds corrections back no longer than the cap
    held = decode_streak('{"corrections": 9, "last": 100, "notBefore": 1e12}')
    assert held is not None and held.not_before == 100 + DRIFT_BACKOFF_CAP
