"""Review rev15 of a8926ff (a release reads the cap Lease first when this process has not yet): what it still breaks."""

from __future__ import annotations

from overspill.reservations import CapLedger
from tests.cap_store import FakeCapStore
from tests.unit.test_shared_caps import Clock

T, NS = "aws", "ops"


def fresh(store: FakeCapStore, clock: Clock, cap: int | None = 6, name: str = "new") -> CapLedger:
    """A process just started: its BurstTarget is known (set_cap), nothing has ticked on the target yet."""
    ledger = CapLedger(store, holder=name, clock=clock)
    ledger.set_cap(T, cap, scope=NS, owner="t-uid")
    return ledger


def test_a_release_before_the_first_rebuild_does_not_skip_the_lost_lease_hold() -> None:
    """A holds 6 of 6 for P1, its mirror not yet running. The Lease is lost (BurstTarget re-applied: garbage
    collected). A new process starts and, before any tick, processes a deleted policy's release: that read (404,
    nothing placed known yet) no longer counts as lost, and it is the only read; the first rebuild then finds P0's
    mirrors placed through the target but reads nothing, so no hold: P2 gets room P1 already took."""
    store, clock = FakeCapStore(), Clock()
    a = fresh(store, clock, name="op-a")
    a.rebuild(T, {}, now=clock())
    assert a.reserve(T, "p1", 4, 0) == 4
    store.objects.clear()  # the Lease lost with P1's reservation in flight
    new = fresh(store, clock)
    new.release("deleted-while-down")  # the deletion handler runs first (CI's order)
    new.rebuild(T, {"p0": 2}, now=clock())  # P0's mirrors, placed through this target, run there
    assert new.reserve(T, "p2", 4, 0) == 0, "the lost Lease was not noticed: P1's 4 + P0's 2 + P2's 4 on a cap of 6"
    assert new.holding(T)


def test_without_the_release_the_same_start_holds() -> None:
    """The control: the same start without the release holds (the hold a8926ff's read now skips)."""
    store, clock = FakeCapStore(), Clock()
    a = fresh(store, clock, name="op-a")
    a.rebuild(T, {}, now=clock())
    assert a.reserve(T, "p1", 4, 0) == 4
    store.objects.clear()
    new = fresh(store, clock)
    new.rebuild(T, {"p0": 2}, now=clock())
    assert new.reserve(T, "p2", 4, 0) == 0
    assert new.holding(T)


def test_a_release_does_not_touch_the_lease_of_an_uncapped_target() -> None:
    """Every BurstTarget gets an account with the Secret's namespace as scope, capped or not, and a deletion
    releases on all of them. An uncapped target has no Lease: the release now reads it, finds mirrors placed and no
    Lease, calls the reservations lost, and every policy placing there reports "nothing grows there" for 120 s."""
    store, clock = FakeCapStore(), Clock()
    ledger = fresh(store, clock, cap=None)
    ledger.rebuild(T, {"p1": 3}, now=clock())  # ticks rebuild every target's usage, capped or not
    ledger.release("deleted")
    assert store.reads == 0, "the release read the Lease of a target that has no cap"
    assert not ledger.holding(T)
    assert ledger.problem(T) is None, ledger.problem(T)


def test_a_release_whose_read_fails_is_not_forgotten() -> None:
    """The primary answers slowly at start (the read of the Lease times out): the release gives up, nothing tries
    it again, and the deleted policy holds its room for the whole lease once more: CI's cap=2, under load."""
    store, clock = FakeCapStore(), Clock()
    old = fresh(store, clock, cap=16, name="old")
    old.rebuild(T, {}, now=clock())
    assert old.reserve(T, "deleted", 14, 0) == 14
    new = fresh(store, clock, cap=16)
    store.broken = "timed out"
    new.release("deleted")
    store.broken = None
    new.rebuild(T, {}, now=clock())
    assert new.reserve(T, "p", 16, 0) == 16, f"the deleted policy still holds {store.entries(T)}"
    assert "deleted" not in store.entries(T)
