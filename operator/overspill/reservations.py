"""A BurstTarget's shared cap as a ledger of reservations: room is taken atomically *before* acting.

Every policy that places replicas on a capped target goes through `reserve` under one lock, so two policies
deciding at the same moment cannot both take the last free room (the old way read room before deciding and
wrote usage after acting: a cap of 10 was filled with 7 + 7, then flapped 7 <-> 3 every poll).

What a policy is charged on a target is the larger of what it reserved and what really runs there (its
mirrors found by label): a scale-in frees room only once it has happened, and after a restart the ledger is
rebuilt from the target's real mirrors before anyone may grow on it (`rebuild`). No I/O here.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class _Account:
    cap: int | None = None
    reserved: dict[str, int] = field(default_factory=dict)  # policy uid -> replicas it may run here
    observed: dict[str, int] = field(default_factory=dict)  # policy uid -> replicas of its mirrors seen here
    known: bool = False  # observed rebuilt from the target's real mirrors since the operator started
    rebuilt_at: float = float("-inf")

    def charge(self, uid: str) -> int:
        return max(self.reserved.get(uid, 0), self.observed.get(uid, 0))

    def others(self, uid: str) -> int:
        return sum(self.charge(u) for u in self.reserved.keys() | self.observed.keys() if u != uid)


class CapLedger:
    """Reservations per target and policy. Thread-safe; every method is one atomic step."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str, _Account] = {}
        # policies released everywhere (deleted): a tick of theirs still running in a worker thread when the
        # daemon was cancelled must not reserve room again afterwards
        self._gone: set[str] = set()

    def _account(self, target: str) -> _Account:
        return self._accounts.setdefault(target, _Account())

    def set_cap(self, target: str, cap: int | None) -> None:
        with self._lock:
            self._account(target).cap = cap

    def drop_target(self, target: str) -> None:
        with self._lock:
            self._accounts.pop(target, None)

    def rebuild(self, target: str, mirrors: Mapping[str, int], now: float = 0.0) -> None:
        """What really runs on the target, per policy uid (replicas of mirrors found by label). Until the
        first rebuild after start, no policy may grow on a capped target: its usage is unknown."""
        with self._lock:
            acct = self._account(target)
            acct.observed = {uid: n for uid, n in mirrors.items() if n > 0}
            acct.known = True
            acct.rebuilt_at = now

    def stale(self, target: str, now: float, max_age: float) -> bool:
        """Never rebuilt, or not for `max_age` seconds (mirrors changed by someone else are seen then)."""
        with self._lock:
            acct = self._account(target)
            return not acct.known or now - acct.rebuilt_at >= max_age

    def observe(self, target: str, uid: str, replicas: int) -> None:
        """One policy's own mirror as just seen or written (keeps the charge current between rebuilds)."""
        with self._lock:
            acct = self._account(target)
            if replicas > 0:
                acct.observed[uid] = replicas
            else:
                acct.observed.pop(uid, None)

    def room_for(self, target: str, uid: str, current: int) -> int | None:
        """How many replicas this policy may plan on the target (None: no cap). `current` is what it runs there
        now: while usage is unknown, that is all it may keep (no growth, no drain because of the cap)."""
        with self._lock:
            acct = self._account(target)
            if acct.cap is None:
                return None
            if not acct.known:
                return current
            return max(0, acct.cap - acct.others(uid))

    def reserve(self, target: str, uid: str, want: int, current: int) -> int:
        """Atomically reserve up to `want` replicas; returns what was granted. Never less than
        min(want, current): a reservation never forces a scale-in, it only stops growth past the cap."""
        with self._lock:
            if uid in self._gone:
                return 0
            acct = self._account(target)
            if acct.cap is None:
                granted = want
            else:
                room = max(0, acct.cap - acct.others(uid)) if acct.known else 0
                granted = min(want, max(room, current))
            if granted > 0:
                acct.reserved[uid] = granted
            else:
                acct.reserved.pop(uid, None)
            return granted

    def release(self, uid: str, target: str | None = None) -> None:
        """The policy's mirrors are gone (from `target`, or from everywhere): its room comes back."""
        with self._lock:
            if target is None:
                self._gone.add(uid)
            for name, acct in self._accounts.items():
                if target is None or name == target:
                    acct.reserved.pop(uid, None)
                    acct.observed.pop(uid, None)

    def usage(self, target: str) -> int:
        """Replicas charged on the target over all policies (status and metrics)."""
        with self._lock:
            acct = self._account(target)
            return sum(acct.charge(u) for u in acct.reserved.keys() | acct.observed.keys())
