"""A BurstTarget's shared cap as a ledger of reservations: room is taken atomically *before* acting.

Every policy that grows on a capped target reserves the room first. Within one process that is one lock; across
processes (shards, both replicas of an HA pair during a handover) it is a compare-and-swap on one shared object per
capped target (a `CapStore`: in the operator, a Lease in the primary, `overspill/caplease.py`): a reservation
written from a stale read is refused and decided again from a fresh one, so two operators can never both take the
last free room (the old in-memory ledger let two shards fill a cap of 6 with 12).

What a policy is charged on a target is the larger of its live reservation and what really runs there (its
mirrors found by label in the target, by whichever operator placed them): a scale-in frees room only once it has
happened, and after a restart the ledger is rebuilt from the target's real mirrors before anyone may grow on it
(`rebuild`). A reservation is needed only until its mirror is seen, so it expires (`lease_seconds`): one left by
an operator that died, or by a policy deleted meanwhile, stops holding room then. Expiry is judged by each process
on its own monotonic clock, from when it first saw the reservation as it is now (as client-go's leader election
judges a Lease's renewTime): wall clocks of different operators are never compared, so one whose clock runs ahead
can neither drop the others' live reservations nor misjudge them. Writes happen only when a reservation changes; a
policy running what it reserved writes nothing. If the shared object cannot be read or written, usage is unknown:
nobody grows on that target, and nothing is shrunk because of it.

A shared object that vanished (deleted by hand, or garbage-collected with a BurstTarget re-applied under its name)
or whose reservations were edited by hand has lost the reservations in flight: usage is unknown until every
operator has counted the mirrors they paid for. The process that finds it so marks it (`settling`), and every
process that reads the mark holds growth on the target for `lease_seconds` of its own clock; each keeps what it
runs and its own live reservations (written again into the object). A brand-new target (no object, no mirror placed
through it running there, no object ever seen) has nothing to lose and does not wait.

No I/O here: the store is passed in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)
# A reservation must outlive the time from its write until every operator sees the mirror it paid for (the write
# to the target, the watch, and each operator's usage rebuild every 30 s); after that, the mirror itself is charged.
LEASE_SECONDS = 120
ATTEMPTS = 8  # compare-and-swap rounds per reservation; a policy that loses them all does not grow this poll


@dataclass(frozen=True)
class Reservation:
    replicas: int
    holder: str  # the operator process that wrote it
    until: float  # the writer's wall clock when it expires: for people reading the Lease, never for deciding


@dataclass(frozen=True)
class Shared:
    """The shared object as last read or written: its version (None: not created yet) and its reservations."""

    version: str | None
    entries: Mapping[str, Reservation]
    damaged: bool = False  # the object exists but its reservations were edited (not what the ledger wrote)
    settling: bool = False  # a process found the reservations lost: hold growth for the lease, each by its clock


class CapConflict(Exception):
    """The shared object changed since it was read: read it again and decide again."""


class CapStoreError(Exception):
    """The shared object could not be read or written: the target's usage is unknown."""


class CapStore(Protocol):
    def read(self, namespace: str, target: str) -> Shared: ...

    def write(
        self,
        namespace: str,
        target: str,
        base: Shared,
        entries: Mapping[str, Reservation],
        lease_seconds: int,
        owner: str | None = None,
        settling: bool = False,
    ) -> Shared: ...


@dataclass
class _Account:
    lease: float  # seconds a reservation holds room after this process first saw it as it is
    cap: int | None = None
    scope: str | None = None  # namespace of the shared object in the primary
    owner: str | None = None  # the BurstTarget's uid: the shared object goes with the target (garbage collection)
    reserved: dict[str, Reservation] = field(default_factory=dict)  # every process's, as last read or written
    seen: dict[str, float] = field(default_factory=dict)  # uid -> when this process first saw its entry as it is
    own: dict[str, tuple[Reservation, float]] = field(default_factory=dict)  # written by this process, and when
    existed: bool = False  # this process has seen the shared object exist (a 404 later means it was deleted)
    marked: bool = False  # the shared object, as last read or written, carries the settling mark
    hold_until: float | None = None  # growth held until then (this clock): the shared reservations were lost
    finder: bool = False  # this process found them lost (not only read the mark): it writes the mark
    observed: dict[str, int] = field(default_factory=dict)  # policy uid -> replicas of its mirrors seen here
    known: bool = False  # observed rebuilt from the target's real mirrors since the operator started
    placed: bool = False  # mirrors placed through this target run there: a missing shared object was lost
    rebuilt_at: float = float("-inf")
    version: str | None = None
    fetched: bool = False  # `reserved` and `version` are a copy of the shared object (else: read it first)
    problem: str | None = None  # why the shared reservations are unknown
    cas: threading.Lock = field(default_factory=threading.Lock)  # one compare-and-swap at a time per target
    gone: set[str] = field(default_factory=set)  # the ledger's released policies: never counted, never written

    def fresh(self, uid: str, now: float) -> bool:
        return uid in self.reserved and now - self.seen.get(uid, now) < self.lease

    def live(self, uid: str, now: float) -> int:
        return self.reserved[uid].replicas if self.fresh(uid, now) else 0

    def own_live(self, uid: str, now: float) -> int:
        r = self.own.get(uid)
        return r[0].replicas if r is not None and now - r[1] < self.lease else 0

    def held(self, now: float) -> bool:
        return self.hold_until is not None and now < self.hold_until

    def charge(self, uid: str, now: float) -> int:
        return max(self.live(uid, now), self.observed.get(uid, 0))

    def entries(self, now: float, without: str) -> dict[str, Reservation]:
        """The reservations to write back: every fresh one but `without`'s, and while held, this process's own
        live ones that the shared object lost."""
        out = {u: r for u, r in self.reserved.items() if u != without and u not in self.gone and self.fresh(u, now)}
        if self.held(now):
            out |= {u: r for u, (r, _) in self.own.items() if u != without and u not in out and self.own_live(u, now)}
        return out

    def take(self, entries: Mapping[str, Reservation], now: float) -> None:
        """The reservations as they are now; one first seen (or changed) starts its lease on this clock now."""
        old = self.reserved
        self.reserved = dict(entries)
        self.seen = {u: self.seen.get(u, now) if old.get(u) == r else now for u, r in entries.items()}

    def adopt(self, shared: Shared, now: float) -> bool:
        """Take the shared object as read or written; True when it shows the reservations were lost."""
        self.take(shared.entries, now)
        self.version, self.marked = shared.version, shared.settling
        vanished = shared.version is None and (self.existed or self.placed)
        self.existed = self.existed or shared.version is not None
        lost = vanished or shared.damaged
        if lost and not self.held(now):
            self.hold_until, self.finder = now + self.lease, True
            return True
        if shared.settling and self.hold_until is None:
            self.hold_until = now + self.lease
            return True
        if not shared.settling and not self.held(now):
            self.hold_until, self.finder = None, False
        return False

    def needs_write(self, now: float) -> bool:
        """The mark must be written (this process just found the reservations lost) or cleared (it has held for
        the whole lease since it found or read the mark: every reservation lost with the object has expired)."""
        held = self.held(now)
        return (held and self.finder and not self.marked) or (self.marked and not held)

    def others(self, uid: str, now: float) -> int:
        return sum(self.charged(u, now) for u in self.reserved.keys() | self.observed.keys() if u != uid)

    def charged(self, uid: str, now: float) -> int:
        """`charge`, but a released (deleted) policy's reservation holds nothing, even one whose release could not be
        written to the shared object; what still runs of it is counted until it is gone."""
        return self.observed.get(uid, 0) if uid in self.gone else self.charge(uid, now)

    def running(self, uid: str, current: int) -> int:
        """What the policy runs here as far as both the last rebuild and its caller's view now agree: `observed`
        is up to a rebuild old (its mirror scaled down by hand meanwhile gave room that another process may
        have reserved since), `current` is what its view shows now."""
        return min(self.observed.get(uid, 0), current)

    def room(self, uid: str, now: float, current: int) -> int:
        assert self.cap is not None
        others = self.others(uid, now)
        room = max(0, self.cap - others)
        running = self.running(uid, current)
        mine = max(self.live(uid, now), running)
        if others + mine > self.cap:
            # over the cap (it was lowered): each policy sheds its share of the excess, never more than what it
            # runs, instead of every policy shedding all of it at once (which drained far below the cap)
            room = max(room, min(self.cap * mine // (others + mine), running))
        return room


Plan = Callable[[float], tuple[dict[str, Reservation] | None, int]]


class CapLedger:
    """Reservations per target and policy. Thread-safe; `reserve` and `release` are compare-and-swap steps on the
    store when there is one (else within this process only)."""

    def __init__(
        self,
        store: CapStore | None = None,
        *,
        holder: str = "local",
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        lease_seconds: int = LEASE_SECONDS,
    ) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str, _Account] = {}
        # `clock` judges expiry (this process's own, never compared with another's); `wall` only dates what is
        # written, for people reading the Lease
        self.store, self.holder, self._clock, self._wall = store, holder, clock, wall
        self.lease_seconds = lease_seconds
        # policies released everywhere (deleted): a tick of theirs still running in a worker thread when the
        # daemon was cancelled must not reserve room again afterwards
        self._gone: set[str] = set()

    def _account(self, target: str) -> _Account:
        return self._accounts.setdefault(target, _Account(lease=self.lease_seconds, gone=self._gone))

    def set_cap(self, target: str, cap: int | None, scope: str | None = None, owner: str | None = None) -> None:
        with self._lock:
            acct = self._account(target)
            if acct.scope != scope:
                acct.fetched = False
            acct.cap, acct.scope, acct.owner = cap, scope, owner

    def drop_target(self, target: str) -> None:
        with self._lock:
            self._accounts.pop(target, None)

    def rebuild(self, target: str, mirrors: Mapping[str, int], now: float = 0.0, placed: bool | None = None) -> None:
        """What really runs on the target, per policy uid (replicas of mirrors found by label). Until the
        first rebuild after start, no policy may grow on a capped target: its usage is unknown. `placed`: some of
        them were placed through this very target (default: any runs), so its shared object has been written."""
        with self._lock:
            acct = self._account(target)
            if not acct.known and acct.version is None:
                acct.fetched = False  # a read before the first rebuild could not judge a missing object lost
            acct.observed = {uid: n for uid, n in mirrors.items() if n > 0}
            acct.placed = any(acct.observed.values()) if placed is None else placed
            acct.known = True
            acct.rebuilt_at = now
            first = acct.cap is not None and not acct.fetched and self.store is not None and acct.scope is not None
        if first:
            # read (or create) the shared object now, not at the first growth: a process that has seen it exist
            # knows a later 404 means it was deleted, with the reservations in flight
            def plan(now: float) -> tuple[dict[str, Reservation] | None, int]:
                if acct.version is None or acct.needs_write(now):
                    return acct.entries(now, without=""), 0
                return None, 0

            self._swap(target, acct, plan, fallback=0)

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
            now = self._clock()
            if not acct.known:
                return current
            if acct.held(now):  # no growth; a lowered cap is still shed by what is seen running
                return min(acct.room(uid, now, current), max(current, acct.own_live(uid, now)))
            return acct.room(uid, now, current)

    def reserve(self, target: str, uid: str, want: int, current: int) -> int:
        """Reserve up to `want` replicas; returns what was granted. Never less than min(want, current): a
        reservation never forces a scale-in, it only stops growth past the cap (or while usage is unknown)."""
        acct = self._get(target)

        def plan(now: float) -> tuple[dict[str, Reservation] | None, int]:
            if uid in self._gone:
                return None, 0
            if acct.cap is None:
                return None, want
            held = acct.held(now)
            room = acct.room(uid, now, current) if acct.known and not held else 0
            # while the shared reservations are lost, what this process itself reserved still holds
            granted = min(want, max(room, current, acct.own_live(uid, now) if held else 0))
            mine = acct.live(uid, now)
            if mine <= granted <= max(mine, acct.running(uid, current)) and not acct.needs_write(now):
                return None, granted  # already charged that much (reserved, or running): nothing to write
            entries = acct.entries(now, without=uid)
            if granted > 0:
                entries[uid] = Reservation(granted, self.holder, self._wall() + self.lease_seconds)
            return entries, granted

        return self._swap(target, acct, plan, fallback=min(want, current))

    def release(self, uid: str, target: str | None = None) -> None:
        """The policy's mirrors are gone (from `target`, or from everywhere): its room comes back (its shared
        reservation too; if that write fails, the reservation expires on its own)."""
        with self._lock:
            if target is None:
                self._gone.add(uid)
            accounts = [(n, a) for n, a in self._accounts.items() if target is None or n == target]
            for _, acct in accounts:
                acct.observed.pop(uid, None)
                acct.own.pop(uid, None)

        for name, acct in accounts:

            def plan(now: float, acct: _Account = acct) -> tuple[dict[str, Reservation] | None, int]:
                # a process that has not read the shared object yet (just started, no tick on the target) does not
                # know whether it holds the policy's reservation: read it first (`_swap` does, then plans again)
                if uid not in acct.reserved and (acct.fetched or self.store is None or acct.cap is None):
                    return None, 0
                return acct.entries(now, without=uid), 0

            self._swap(name, acct, plan, fallback=0)

    def usage(self, target: str) -> int:
        """Replicas charged on the target over all policies (status and metrics)."""
        with self._lock:
            acct = self._account(target)
            now = self._clock()
            return sum(acct.charged(u, now) for u in acct.reserved.keys() | acct.observed.keys())

    def holding(self, target: str) -> bool:
        """Growth on the target is held: its shared reservations were found lost (for the lease, this clock)."""
        with self._lock:
            acct = self._accounts.get(target)
            return acct is not None and acct.held(self._clock())

    def problem(self, target: str) -> str | None:
        """Why nobody may grow on the target now (its shared reservations could not be read or written)."""
        with self._lock:
            acct = self._accounts.get(target)
            if acct is None:
                return None
            if acct.problem is None and acct.held(self._clock()):
                return (
                    "its shared reservations were lost (the Lease was deleted or edited by hand) and must be "
                    f"counted again from the mirrors (for {self.lease_seconds} s)"
                )
            return acct.problem

    def _get(self, target: str) -> _Account:
        with self._lock:
            return self._account(target)

    def _swap(self, target: str, acct: _Account, plan: Plan, *, fallback: int) -> int:
        """Compare-and-swap: decide (`plan`) on the copy of the shared reservations, write it only if nobody
        changed them since; on a conflict read them again and decide again. `fallback` when that cannot be done."""
        with acct.cas:
            for _ in range(ATTEMPTS):
                with self._lock:
                    now = self._clock()
                    entries, result = plan(now)
                    if entries is None:
                        return result
                    if self.store is None or acct.scope is None:  # one process: the lock was the atomic step
                        acct.take(entries, now)
                        return result
                    base = Shared(acct.version, dict(acct.reserved)) if acct.fetched else None
                    scope, owner, settling = acct.scope, acct.owner, acct.held(now)
                try:
                    if base is None:
                        shared = self.store.read(scope, target)
                    else:
                        shared = self.store.write(scope, target, base, entries, self.lease_seconds, owner, settling)
                except CapConflict:
                    with self._lock:
                        acct.fetched = False
                    continue
                except CapStoreError as err:
                    with self._lock:
                        acct.fetched = False
                        acct.problem = f"the shared reservations of its cap could not be read or written ({err})"
                    log.warning("BurstTarget %s: %s; no policy grows on it until they can", target, acct.problem)
                    return fallback
                with self._lock:
                    now = self._clock()
                    if base is not None:
                        self._remember_own(acct, entries, now)
                    if acct.adopt(shared, now):
                        log.warning(
                            "BurstTarget %s: the shared reservations of its cap were lost (the Lease was deleted or "
                            "edited by hand); no policy grows on it for %ss while the mirrors are counted again",
                            target,
                            self.lease_seconds,
                        )
                    acct.fetched, acct.problem = True, None
                if base is not None:
                    return result
            log.info("BurstTarget %s: lost %d reservation races in a row; trying again next poll", target, ATTEMPTS)
            return fallback

    def _remember_own(self, acct: _Account, entries: Mapping[str, Reservation], now: float) -> None:
        """What this process wrote of its own: the one copy that survives the shared object being lost."""
        for uid in [u for u in acct.own if u not in entries]:
            del acct.own[uid]  # given back (or expired)
        for uid, r in entries.items():
            if r.holder == self.holder and (uid not in acct.own or acct.own[uid][0] != r):
                acct.own[uid] = (r, now)
