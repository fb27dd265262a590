"""Speed work on the replay changes nothing: a cluster's cached state is the one its definition gives at every poll
(the replays' own digests are checked by test_engine_golden.py)."""

from __future__ import annotations

import bisect

from hypothesis import given
from hypothesis import strategies as st

from overspill.decide import ClusterState
from overspill.simulate import _Cluster


def defined_state(created: list[float], capacity: int | None, startup: float, now: float, grace: float) -> ClusterState:
    """The state as first written: Ready = scheduled pods created at least `startup` ago; Unschedulable = pods past
    the capacity created at least `grace` ago."""
    scheduled = created if capacity is None else created[:capacity]
    n = len(created)
    unsched = len([c for c in created[len(scheduled) :] if c <= now - grace]) if n > len(scheduled) else 0
    return ClusterState(replicas=n, ready=bisect.bisect_right(scheduled, now - startup), unschedulable=unsched)


@given(
    capacity=st.one_of(st.none(), st.integers(0, 6)),
    startup=st.sampled_from([0.0, 1.0, 5.0, 35.0, 60.0]),
    grace=st.sampled_from([0.0, 3.0, 20.0]),
    polls=st.lists(st.tuples(st.sampled_from([0.0, 0.5, 1.0, 3.0, 10.0]), st.integers(0, 10)), max_size=40),
)
def test_cached_state_is_the_defined_state_at_every_poll(
    capacity: int | None, startup: float, grace: float, polls: list[tuple[float, int]]
) -> None:
    cluster = _Cluster(startup, capacity)
    cluster.scale(-1e9, 2)
    now = 0.0
    for advance, n in polls:
        now += advance  # time never goes back in a replay
        assert cluster.state(now, grace) == defined_state(cluster.created, capacity, startup, now, grace)
        assert cluster.ready(now) == cluster.state(now, grace).ready
        cluster.scale(now, n)
        assert cluster.state(now, grace) == defined_state(cluster.created, capacity, startup, now, grace)
