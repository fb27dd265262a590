"""Shared-cap reservations under faults another writer or a clock makes (the 2026-11-30 review, rev10c): the Lease
deleted or edited by hand, and an operator whose clock runs ahead. Each process is its own CapLedger over one store."""

from __future__ import annotations

import pytest

from overspill.caplease import DIGEST, RESERVATIONS, SETTLING, _decode, _encode, digest
from overspill.reservations import CapLedger, Reservation, Shared
from tests.cap_store import FakeCapStore
from tests.unit.test_shared_caps import Clock

T, NS = "aws", "ops"


def process(
    store: FakeCapStore, name: str, clock: Clock, cap: int = 6, running: dict[str, int] | None = None
) -> CapLedger:
    ledger = CapLedger(store, holder=name, clock=clock)
    ledger.set_cap(T, cap, scope=NS, owner="t-uid")
    ledger.rebuild(T, running or {}, now=clock())
    return ledger


def mangle(store: FakeCapStore, annotations: dict[str, str]) -> None:
    """A hand edit of the Lease: what the store then reads is what `_decode` makes of it."""
    version = str(int(store.objects[NS, T].version or 0) + 1)
    store.objects[NS, T] = _decode({"metadata": {"resourceVersion": version, "annotations": annotations}})


FAULTS = {
    "lease-deleted": lambda store, _: store.objects.clear(),
    "annotation-junk": lambda store, _: mangle(store, {RESERVATIONS: "not json"}),
    "annotation-emptied": lambda store, _: mangle(store, {RESERVATIONS: "{}", DIGEST: "x"}),
    "annotations-removed": lambda store, _: mangle(store, {}),
    "entries-edited": lambda store, ann: mangle(store, {**ann, RESERVATIONS: "{}"}),
}


def annotations_of(store: FakeCapStore) -> dict[str, str]:
    entries = dict(store.objects[NS, T].entries)
    encoded = _encode(entries)
    return {RESERVATIONS: encoded, DIGEST: digest(encoded)}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_live_reservations_survive_the_lease_being_deleted_or_edited(fault: str) -> None:
    """rev10c: A reserved the whole cap for P1 and is creating its mirror (not yet seen by B). The Lease is then
    deleted (by hand, or by the garbage collector when the BurstTarget is re-applied) or its annotation edited: B
    read no reservations and took the same room for P2: 12 on a cap of 6. Now a lost Lease means usage unknown for
    the lease time (no growth), while the mirrors are seen again."""
    store, clock = FakeCapStore(), Clock()
    a, b = process(store, "op-a", clock), process(store, "op-b", clock)
    assert a.reserve(T, "p1", 6, 0) == 6
    FAULTS[fault](store, annotations_of(store))
    assert b.reserve(T, "p2", 6, 0) == 0, f"P1 holds 6 and P2 was granted room on a cap of 6 ({fault})"
    assert "lost" in (b.problem(T) or ""), b.problem(T)
    assert a.reserve(T, "p1", 6, 0) == 6, "A's own reservation was taken from it (its mirror would be scaled in)"
    clock.now += b.lease_seconds + 1  # by now every operator's usage rebuild has seen P1's mirror
    b.rebuild(T, {"p1": 6}, now=clock())
    assert b.reserve(T, "p2", 6, 0) == 0
    b.rebuild(T, {}, now=clock())  # P1 scaled in: the room is P2's again, the hold is over
    assert b.reserve(T, "p2", 6, 0) == 6
    assert b.problem(T) is None
    assert not store.objects[NS, T].settling  # cleared for everyone (a new process does not hold again)


def test_a_process_that_never_saw_the_lease_holds_when_the_others_found_it_lost() -> None:
    """The first process to find the Lease lost marks it; one that reads it only afterwards holds too."""
    store, clock = FakeCapStore(), Clock()
    a, b = process(store, "op-a", clock), process(store, "op-b", clock)
    assert a.reserve(T, "p1", 6, 0) == 6
    store.objects.clear()
    assert b.reserve(T, "p2", 1, 0) == 0
    late = process(store, "op-late", clock)
    assert late.reserve(T, "p3", 1, 0) == 0
    assert store.objects[NS, T].settling


def test_a_brand_new_target_grows_at_once() -> None:
    """No Lease yet, nothing running there, no process ever saw one: nothing can be lost, so nobody waits."""
    store, clock = FakeCapStore(), Clock()
    a = process(store, "op-a", clock)
    assert a.reserve(T, "p1", 4, 0) == 4
    assert a.problem(T) is None


def test_mirrors_placed_through_another_target_of_the_cluster_do_not_hold_a_new_one() -> None:
    """A new capped BurstTarget naming a cluster where another BurstTarget's mirrors run: its Lease was never
    written, nothing was lost, so it does not wait (its view counts those mirrors against the cap all the same)."""
    store, clock = FakeCapStore(), Clock()
    a = CapLedger(store, holder="op-a", clock=clock)
    a.set_cap(T, 6, scope=NS)
    a.rebuild(T, {"p-other": 2}, now=clock(), placed=False)
    assert a.reserve(T, "p1", 4, 0) == 4
    assert a.reserve(T, "p2", 1, 0) == 0  # 2 + 4 of 6


def test_a_target_with_mirrors_but_no_lease_holds() -> None:
    """Mirrors run there but the Lease is gone (its BurstTarget deleted and re-applied: the garbage collector took
    it): reservations in flight were lost with it."""
    store, clock = FakeCapStore(), Clock()
    a = process(store, "op-a", clock, running={"p1": 2})
    assert a.reserve(T, "p2", 3, 0) == 0
    assert a.reserve(T, "p1", 2, 2) == 2  # what runs is never shrunk because of it


def test_one_operator_whose_clock_runs_ahead_does_not_erase_the_others_reservations() -> None:
    """rev10c: a writer whose clock was ahead by more than the lease dropped every live reservation of the others
    when it wrote its own (A's 6 vanished from the shared object; C, on time, then took 6). Expiry is now judged by
    each process on its own clock, from when it first saw the reservation as it is."""
    store, t = FakeCapStore(), [1000.0]
    a = CapLedger(store, holder="op-a", wall=lambda: t[0])
    skewed = CapLedger(store, holder="op-b", wall=lambda: t[0] + 200)
    c = CapLedger(store, holder="op-c", wall=lambda: t[0])
    for ledger in (a, skewed, c):
        ledger.set_cap(T, 12, scope=NS)
        ledger.rebuild(T, {}, now=t[0])
    assert a.reserve(T, "p1", 6, 0) == 6
    skewed.reserve(T, "p2", 1, 0)
    assert "p1" in store.entries(T), f"A's live reservation was erased by B's write: {store.entries(T)}"
    assert c.reserve(T, "p3", 12, 0) == 5


def test_a_reservation_is_stale_only_after_this_process_saw_it_unchanged_for_the_lease() -> None:
    """Wall clocks never compared: B's clock starts at 0 and A's written expiry means nothing to it. B first reads
    A's reservation late; it holds room for the whole lease from then on B's clock, and a renewed reservation
    (rewritten by A) starts it again."""
    store, ca, cb = FakeCapStore(), Clock(5_000.0), Clock(0.0)
    a = process(store, "op-a", ca, cap=6)
    b = process(store, "op-b", cb, cap=6)
    assert a.reserve(T, "p1", 4, 0) == 4
    cb.now += 100
    assert b.reserve(T, "p2", 6, 0) == 2  # B first sees A's 4 now
    cb.now += b.lease_seconds - 1
    assert b.reserve(T, "p2", 6, 0) == 2
    assert a.reserve(T, "p1", 3, 0) == 3  # A writes its reservation anew (3 now)
    cb.now += 2
    assert b.reserve(T, "p2", 6, 0) == 3, "the rewritten reservation was judged by the old one's age"
    cb.now += b.lease_seconds
    assert b.reserve(T, "p2", 6, 0) == 6  # A died: its reservation is stale on B's clock now


def test_a_restarted_process_counts_every_reservation_it_finds_as_live_for_the_lease() -> None:
    store, clock = FakeCapStore(), Clock()
    a = process(store, "op-a", clock)
    assert a.reserve(T, "p1", 6, 0) == 6
    clock.now += 10_000  # long after (its writer's expiry is long past by any wall clock)
    restarted = process(store, "op-b", Clock(0.0))
    assert restarted.reserve(T, "p2", 1, 0) == 0


def test_the_lease_carries_a_digest_and_the_settling_mark() -> None:
    entries = {"uid-a": Reservation(3, "op-1/7", 1234.5)}
    encoded = _encode(entries)
    good = {"metadata": {"resourceVersion": "4", "annotations": {RESERVATIONS: encoded, DIGEST: digest(encoded)}}}
    assert _decode(good) == Shared("4", entries)
    legacy = {"metadata": {"resourceVersion": "4", "annotations": {RESERVATIONS: encoded}}}  # before the digest
    assert _decode(legacy) == Shared("4", entries)
    marked = {
        "metadata": {"resourceVersion": "4", "annotations": {**good["metadata"]["annotations"], SETTLING: "true"}}
    }
    assert _decode(marked).settling and not _decode(marked).damaged
    edited = {"metadata": {"resourceVersion": "4", "annotations": {RESERVATIONS: "{}", DIGEST: digest(encoded)}}}
    assert _decode(edited).damaged
