"""Drift correction that backs off when another writer fights it (pure).

A hand edit of a mirror is corrected within one poll. Another controller that rewrites the mirror after every
correction (a mutating policy engine, a GitOps self-heal) would make a rollout every poll: a correction followed by
more drift is a fight, and each further correction waits twice as long as the one before (from one poll, capped at
`DRIFT_BACKOFF_CAP`). A quiet period of twice the cap ends the streak. The streak is kept on the mirror itself
(`encode_streak`, `decode_streak`: an annotation written with each correction), so an operator restart does not
forget a fight and correct at once, starting the backoff again from one poll.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

DRIFT_BACKOFF_CAP = 300.0


@dataclass(frozen=True)
class DriftStreak:
    corrections: int = 0  # corrections in a row, each followed by more drift
    last: float = 0.0  # when the last correction was made
    not_before: float = 0.0  # no correction before this time

    @property
    def fight(self) -> bool:
        """The drift came back after a correction: someone else writes the mirror."""
        return self.corrections >= 2

    def may_correct(self, now: float) -> bool:
        return now >= self.not_before

    def quiet(self, now: float, cap: float = DRIFT_BACKOFF_CAP) -> bool:
        """Long enough without a correction that the next drift starts a new streak."""
        return now - self.last > 2 * cap


def corrected(streak: DriftStreak, now: float, base: float, cap: float = DRIFT_BACKOFF_CAP) -> DriftStreak:
    """The streak after a correction at `now`; `base`: the poll interval (the first correction holds nothing)."""
    count = 1 if streak.corrections == 0 or streak.quiet(now, cap) else streak.corrections + 1
    delay = min(cap, base * 2 ** min(count - 1, 32))
    return DriftStreak(corrections=count, last=now, not_before=now + delay)


def encode_streak(streak: DriftStreak) -> str:
    return json.dumps(
        {"corrections": streak.corrections, "last": round(streak.last, 3), "notBefore": round(streak.not_before, 3)},
        sort_keys=True,
    )


def decode_streak(text: str | None) -> DriftStreak | None:
    """The streak as written on the mirror; None when absent or not ours (edited by hand: start afresh)."""
    try:
        data = json.loads(text or "")
        streak = DriftStreak(int(data["corrections"]), float(data["last"]), float(data["notBefore"]))
    except (ValueError, TypeError, KeyError):
        return None
    if streak.corrections < 0 or not all(map(math.isfinite, (streak.last, streak.not_before))):
        return None
    # a hand-edited annotation must not hold corrections back for longer than the cap allows
    return DriftStreak(streak.corrections, streak.last, min(streak.not_before, streak.last + DRIFT_BACKOFF_CAP))
