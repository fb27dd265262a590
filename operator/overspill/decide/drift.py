"""Drift correction that backs off when another writer fights it (pure).

A hand edit of a mirror is corrected within one poll. Another controller that rewrites the mirror after every
correction (a mutating policy engine, a GitOps self-heal) would make a rollout every poll: a correction followed by
more drift is a fight, and each further correction waits twice as long as the one before (from one poll, capped at
`DRIFT_BACKOFF_CAP`). A quiet period of twice the cap ends the streak.
"""

from __future__ import annotations

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
