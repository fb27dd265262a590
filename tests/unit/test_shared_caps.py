"""One capped target, several operator processes: each has its own CapLedger (its own memory), all share one store
with compare-and-swap (in the operator, a Lease in the primary). The cap holds across processes, nobody flaps,
stale reservations stop holding room, and an unreadable store means no growth (and no shrink because of it)."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from overspill.reservations import CapLedger, Shared
from tests.cap_store import FakeCapStore
from tests.unit.test_reservations import World, act, plan

T, NS = "aws", "ops"


@dataclass
class Clock:
    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now


def in_use(store: FakeCapStore) -> FakeCapStore:
    """The store of a cap in use: its Lease exists (without one, mirrors running there mean it was lost)."""
    store.objects[NS, T] = Shared("1", {})
    return store


def operator(store: FakeCapStore, cap: int, world: World, clock: Clock | None = None, name: str = "op") -> CapLedger:
    ledger = CapLedger(store, holder=name, clock=clock or Clock())
    ledger.set_cap(T, cap, NS)
    ledger.rebuild(T, dict(world.running))
    return ledger


def tick(ledger: CapLedger, world: World, uid: str, want: int) -> None:
    ledger.rebuild(T, dict(world.running))  # each operator's watch of the target sees every policy's mirrors
    act(ledger, world, uid, plan(ledger, world, uid, want))


def test_two_operators_deciding_together_never_exceed_the_cap() -> None:
    """The reproduced break: two shards, one policy each, both read room 6 before either acted: 12 of 6."""
    store, world = FakeCapStore(), World(6)
    a, b = operator(store, 6, world, name="a"), operator(store, 6, world, name="b")
    pa, pb = plan(a, world, "pa", 6), plan(b, world, "pb", 6)
    assert (pa, pb) == (6, 6)  # both saw the whole room
    act(a, world, "pa", pa)
    act(b, world, "pb", pb)
    assert world.running == {"pa": 6, "pb": 0}
    history = []
    for _ in range(5):
        tick(a, world, "pa", 6)
        tick(b, world, "pb", 6)
        history.append(dict(world.running))
    assert history == [{"pa": 6, "pb": 0}] * 5  # no flapping
    assert world.worst == 6


def test_threads_of_several_operators_racing_never_exceed_it() -> None:
    store, world = FakeCapStore(), World(12)
    ops = [operator(store, 12, world, name=f"op{i}") for i in range(3)]
    rng = random.Random(11)
    wants = {f"p{i}": rng.randint(2, 9) for i in range(9)}
    barrier = threading.Barrier(len(wants))

    def loop(i: int, uid: str) -> None:
        ledger = ops[i % len(ops)]
        for _ in range(60):
            barrier.wait()  # every policy ticks at the same moment, in three processes
            tick(ledger, world, uid, wants[uid] if rng.random() < 0.8 else rng.randint(0, 9))

    threads = [threading.Thread(target=loop, args=(i, uid)) for i, uid in enumerate(wants)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert world.worst <= 12
    assert store.conflicts > 0  # they did race on the shared object


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 16),
    st.lists(st.integers(0, 12), min_size=2, max_size=5),
    st.lists(st.tuples(st.integers(0, 4), st.booleans()), max_size=40),
)
def test_any_interleaving_across_operators_stays_within_the_cap_then_settles(
    cap: int, wants: list[int], steps: list[tuple[int, bool]]
) -> None:
    """Each policy lives in its own operator process; ticks split in two (decide, act) interleave in any order."""
    store, world = FakeCapStore(), World(cap)
    uids = [f"p{i}" for i in range(len(wants))]
    ops = {uid: operator(store, cap, world, name=uid) for uid in uids}
    decided: dict[str, int] = {}
    for who, deciding in steps:
        uid = uids[who % len(uids)]
        if deciding or uid not in decided:
            ops[uid].rebuild(T, dict(world.running))
            decided[uid] = plan(ops[uid], world, uid, wants[uids.index(uid)])
        else:
            act(ops[uid], world, uid, decided.pop(uid))
        assert sum(world.running.values()) <= cap
    for uid, planned in decided.items():
        act(ops[uid], world, uid, planned)
    rounds = []
    for _ in range(4):
        for uid, want in zip(uids, wants, strict=True):
            tick(ops[uid], world, uid, want)
        rounds.append(dict(world.running))
    assert world.worst <= cap
    assert rounds[-1] == rounds[-2] == rounds[-3]  # settled: no flapping


def test_steady_state_writes_nothing() -> None:
    store, world = FakeCapStore(), World(10)
    a = operator(store, 10, world)
    tick(a, world, "p", 7)
    writes = store.writes
    assert writes == 2 and store.entries(T) == {"p": 7}  # the Lease created at the first rebuild, then the reservation
    for _ in range(20):
        tick(a, world, "p", 7)
    assert store.writes == writes
    tick(a, world, "p", 4)  # a reservation that changes is written (the room goes back to the others)
    assert store.entries(T) == {"p": 4}


def test_a_dead_operators_reservation_expires() -> None:
    """An operator reserved room and died before placing anything: the room comes back after the lease."""
    store, world, clock = FakeCapStore(), World(6), Clock()
    dead = operator(store, 6, world, clock, name="dead")
    assert dead.reserve(T, "p-dead", 6, 0) == 6  # ...and never acts
    alive = operator(store, 6, world, clock, name="alive")
    assert alive.reserve(T, "p", 6, 0) == 0
    clock.now += alive.lease_seconds + 1
    assert alive.reserve(T, "p", 6, 0) == 6
    assert store.entries(T) == {"p": 6}  # the expired entry is dropped with the next write


def test_a_reservation_whose_mirror_runs_is_charged_after_it_expires() -> None:
    store, world, clock = FakeCapStore(), World(6), Clock()
    a, b = operator(store, 6, world, clock, name="a"), operator(store, 6, world, clock, name="b")
    tick(a, world, "pa", 4)
    clock.now += a.lease_seconds + 1
    tick(b, world, "pb", 6)
    assert world.running == {"pa": 4, "pb": 2}  # pa's running mirror still takes its room


def test_a_deleted_policy_gives_its_reservation_back() -> None:
    store, world = FakeCapStore(), World(6)
    a, b = operator(store, 6, world, name="a"), operator(store, 6, world, name="b")
    assert a.reserve(T, "gone", 6, 0) == 6
    a.release("gone")
    assert store.entries(T) == {}
    assert b.reserve(T, "p", 6, 0) == 6


def test_a_policy_deleted_by_a_process_that_has_not_read_the_lease_yet_gives_its_reservation_back() -> None:
    """CI's break: one operator reserved 14 of 16 and stopped; its policy was deleted while it was down. The next
    operator ran the deletion before it had read the Lease (no tick had touched the target yet): the release saw no
    reservation in its empty copy and wrote nothing, so the dead policy held 14 of the cap for the whole lease."""
    store, clock = FakeCapStore(), Clock()
    old = CapLedger(store, holder="old", clock=clock)
    old.set_cap(T, 16, NS)
    old.rebuild(T, {})
    assert old.reserve(T, "deleted", 14, 0) == 14
    new = CapLedger(store, holder="new", clock=clock)
    new.set_cap(T, 16, NS)  # the BurstTarget is known; nothing has read its Lease in this process yet
    new.release("deleted")
    assert store.entries(T) == {}
    new.rebuild(T, {})
    assert new.reserve(T, "p", 16, 0) == 16


def test_an_unreadable_store_stops_growth_and_shrinks_nothing() -> None:
    store, world = in_use(FakeCapStore()), World(10, running={"p": 3})
    a = operator(store, 10, world)
    store.broken = "HTTP 403 Forbidden"
    assert a.reserve(T, "p", 8, 3) == 3  # unknown = unsafe: no growth
    assert a.problem(T) and "403" in (a.problem(T) or "")
    assert a.reserve(T, "p", 3, 3) == 3  # and never less than it runs because of the store
    assert a.reserve(T, "p", 1, 3) == 1  # its own scale-in goes on
    store.broken = None
    assert a.reserve(T, "p", 8, 1) == 8
    assert a.problem(T) is None


def test_a_lowered_cap_is_shed_in_shares_not_all_by_everyone() -> None:
    """Cap 10 filled 7 + 3, lowered to 6: before, both shed the whole excess at once (down to 3 + 0), then grew back."""
    store, world = in_use(FakeCapStore()), World(6, running={"a": 7, "b": 3})
    ops = {u: operator(store, 6, world, name=u) for u in ("a", "b")}
    planned = {u: plan(ops[u], world, u, 10) for u in ops}  # both decide before either acts
    for u, n in planned.items():
        act(ops[u], world, u, n)
    assert sum(world.running.values()) >= 6 - 1  # at most one replica per other policy below the cap
    rounds = []
    for _ in range(4):
        for u, ledger in ops.items():
            tick(ledger, world, u, 10)
        rounds.append(dict(world.running))
    assert sum(rounds[-1].values()) == 6
    assert rounds[-1] == rounds[-2] == rounds[-3]


def test_the_lease_annotation_round_trips_and_a_mangled_one_reserves_nothing() -> None:
    from overspill.caplease import RESERVATIONS, _decode, _encode
    from overspill.reservations import Reservation

    entries = {"uid-a": Reservation(3, "op-1/7", 1234.5)}
    lease = {"metadata": {"resourceVersion": "42", "annotations": {RESERVATIONS: _encode(entries)}}}
    assert _decode(lease).entries == entries and _decode(lease).version == "42"
    for bad in ("not json", "[1, 2]", '{"uid-a": {"replicas": "x"}}'):
        assert _decode({"metadata": {"resourceVersion": "7", "annotations": {RESERVATIONS: bad}}}).entries == {}
    assert _decode({"metadata": {}}).version is None


def test_the_shared_object_names_its_target_as_owner() -> None:
    """So the garbage collector removes it with the BurstTarget."""
    store = FakeCapStore()
    ledger = CapLedger(store, holder="op")
    ledger.set_cap(T, 6, NS, owner="target-uid")
    ledger.rebuild(T, {})
    assert ledger.reserve(T, "p", 2, 0) == 2
    assert store.owners == {T: "target-uid"}


def test_two_long_target_names_do_not_share_one_cap_lease() -> None:
    # found by the 2026-11-30 review (failed before: names agreeing in their first 239 characters shared a Lease)
    from overspill.caplease import lease_name

    a, b = "t" * 245 + "-a", "t" * 245 + "-b"
    assert lease_name(a) != lease_name(b)
    assert len(lease_name(a)) <= 253 and lease_name("short") == "overspill-cap-short"
