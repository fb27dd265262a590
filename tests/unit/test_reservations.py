"""A shared target cap under policies racing for it: never exceeded, never flapping, rebuilt after a restart."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from overspill.reservations import CapLedger

T = "aws"


@dataclass
class World:
    """The target as it really is: replicas per policy, and the worst total ever seen."""

    cap: int
    running: dict[str, int] = field(default_factory=dict)
    worst: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def apply(self, uid: str, replicas: int) -> None:
        with self.lock:
            self.running[uid] = replicas
            self.worst = max(self.worst, sum(self.running.values()))


def plan(ledger: CapLedger, world: World, uid: str, want: int) -> int:
    """What a policy decides: its wish, within the room the ledger shows it (the engine's `cap`)."""
    room = ledger.room_for(T, uid, world.running.get(uid, 0))
    return want if room is None else min(want, room)


def act(ledger: CapLedger, world: World, uid: str, planned: int) -> None:
    current = world.running.get(uid, 0)
    granted = ledger.reserve(T, uid, planned, current)
    world.apply(uid, granted)
    ledger.observe(T, uid, granted)


def tick(ledger: CapLedger, world: World, uid: str, want: int) -> None:
    act(ledger, world, uid, plan(ledger, world, uid, want))


def fresh(cap: int) -> tuple[CapLedger, World]:
    ledger = CapLedger()
    ledger.set_cap(T, cap)
    ledger.rebuild(T, {})
    return ledger, World(cap)


def test_two_policies_deciding_together_never_exceed_the_cap() -> None:
    """The reproduced case: both read room 10 before either acted, and both placed 7."""
    ledger, world = fresh(10)
    a, b = plan(ledger, world, "a", 7), plan(ledger, world, "b", 7)
    assert (a, b) == (7, 7)  # both saw the whole room
    act(ledger, world, "a", a)
    act(ledger, world, "b", b)
    assert world.running == {"a": 7, "b": 3}
    history = []
    for _ in range(5):
        tick(ledger, world, "a", 7)
        tick(ledger, world, "b", 7)
        history.append(dict(world.running))
    assert history == [{"a": 7, "b": 3}] * 5  # no 7 <-> 3 flapping
    assert world.worst == 10


def test_threads_racing_for_one_target_never_exceed_it() -> None:
    ledger, world = fresh(12)
    rng = random.Random(7)
    wants = {f"p{i}": rng.randint(2, 9) for i in range(8)}
    barrier = threading.Barrier(len(wants))

    def loop(uid: str) -> None:
        for _ in range(200):
            barrier.wait()  # every policy ticks at the same moment, as on a shared poll interval
            tick(ledger, world, uid, wants[uid] if rng.random() < 0.8 else rng.randint(0, 9))

    threads = [threading.Thread(target=loop, args=(uid,)) for uid in wants]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert world.worst <= 12


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 20),
    st.lists(st.integers(0, 15), min_size=2, max_size=5),
    st.lists(st.tuples(st.integers(0, 4), st.booleans()), max_size=40),
)
def test_any_interleaving_stays_within_the_cap_then_settles(
    cap: int, wants: list[int], steps: list[tuple[int, bool]]
) -> None:
    """Each policy's tick is split in two (decide, then act) and the halves interleave in any order."""
    ledger, world = fresh(cap)
    uids = [f"p{i}" for i in range(len(wants))]
    decided: dict[str, int] = {}
    for who, deciding in steps:
        uid = uids[who % len(uids)]
        if deciding or uid not in decided:
            decided[uid] = plan(ledger, world, uid, wants[uids.index(uid)])
        else:
            act(ledger, world, uid, decided.pop(uid))
        assert sum(world.running.values()) <= cap
    for uid, planned in decided.items():
        act(ledger, world, uid, planned)
    assert world.worst <= cap
    # then plain polling settles and stays: no flapping
    rounds = []
    for _ in range(4):
        for uid, want in zip(uids, wants, strict=True):
            tick(ledger, world, uid, want)
        rounds.append(dict(world.running))
    assert rounds[-1] == rounds[-2] == rounds[-3]
    assert sum(rounds[-1].values()) <= cap


def test_dry_run_plans_never_take_room() -> None:
    ledger, world = fresh(10)
    for _ in range(3):
        plan(ledger, world, "dry", 10)  # a DryRun policy decides, and never reserves
    assert plan(ledger, world, "active", 10) == 10


def test_after_a_restart_usage_is_rebuilt_from_the_real_mirrors() -> None:
    ledger = CapLedger()
    ledger.set_cap(T, 10)
    # before the target's mirrors are listed, nobody grows there, and nobody is drained because of the cap
    assert ledger.room_for(T, "b", 0) == 0
    assert ledger.room_for(T, "a", 7) == 7
    assert ledger.reserve(T, "b", 5, 0) == 0
    ledger.rebuild(T, {"a": 7})
    assert ledger.room_for(T, "b", 0) == 3
    assert ledger.reserve(T, "b", 5, 0) == 3


def test_a_scale_in_frees_room_only_once_it_happened() -> None:
    ledger, world = fresh(10)
    tick(ledger, world, "a", 8)
    ledger.reserve(T, "a", 2, 8)  # a decided to shrink; its mirror still runs 8
    assert ledger.room_for(T, "b", 0) == 2
    ledger.observe(T, "a", 2)
    assert ledger.room_for(T, "b", 0) == 8


def test_released_policies_give_their_room_back() -> None:
    ledger, world = fresh(10)
    tick(ledger, world, "a", 7)
    ledger.release("a", T)
    assert ledger.room_for(T, "b", 0) == 10
    assert ledger.usage(T) == 0


def test_no_cap_means_no_limit() -> None:
    ledger = CapLedger()
    assert ledger.room_for(T, "a", 0) is None
    assert ledger.reserve(T, "a", 50, 0) == 50
