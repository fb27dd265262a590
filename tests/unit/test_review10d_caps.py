"""Issue 10 review 10d: shared caps across operator processes (shards) when a mirror's replicas are edited by
someone else. Each process is its own CapLedger over one compare-and-swap store (failed on main when written)."""

from __future__ import annotations

from tests.cap_store import FakeCapStore
from tests.unit.test_cap_faults import NS, T, process
from tests.unit.test_shared_caps import Clock


def test_growing_back_to_what_a_process_last_saw_running_goes_through_the_lease() -> None:
    """Operator A runs policy p1 (5 on the target), operator B runs p2 (5); cap 10, reservations long expired.
    Someone scales p1's mirror down to 2 by hand (the brief's 'someone edits the mirror's replicas'). B's usage
    rebuild sees it first and p2 takes the freed room (8: 2 + 8 = 10, through the Lease). A's rebuild is not due
    yet (every 30 s), and p1's queue wants its 5 back: A's ledger still remembers p1 running 5, so growing from 2
    to 5 is 'already charged' and is granted with no write to the Lease, hence no compare-and-swap against B's
    reservation: 5 + 8 = 13 on a cap of 10 (reservations.CapLedger.reserve, the no-write shortcut trusts
    `observed`, which is up to 30 s old, instead of what runs now)."""
    store, clock = FakeCapStore(), Clock()
    a, b = process(store, "op-a", clock, cap=10), process(store, "op-b", clock, cap=10)
    assert a.reserve(T, "p1", 5, 0) == 5
    assert b.reserve(T, "p2", 5, 0) == 5
    for ledger in (a, b):  # both mirrors seen running by both processes
        ledger.rebuild(T, {"p1": 5, "p2": 5}, now=clock())
    clock.now += a.lease_seconds + 1  # steady state: the reservations expired, the mirrors are charged
    b.rebuild(T, {"p1": 2, "p2": 5}, now=clock())  # p1's mirror scaled to 2 by hand; B's rebuild is due first
    p2 = b.reserve(T, "p2", 8, 5)
    assert p2 == 8  # the room p1 gave up, taken through the Lease
    p1 = a.reserve(T, "p1", 5, 2)  # A: p1 runs 2 now and wants 5
    assert p1 + p2 <= 10, (
        f"p1 granted {p1} (runs 2), p2 granted {p2}: {p1 + p2} on a cap of 10; Lease {store.entries(T, NS)}"
    )
