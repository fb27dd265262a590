"""Frozen inputs and outputs of the engine: what was observed, what it remembers, what it decided."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from overspill.api.target import PRIMARY_CLUSTER_NAME
from overspill.decide.frozen import quick_init
from overspill.decide.reasons import Reason

PRIMARY = PRIMARY_CLUSTER_NAME  # reserved: no BurstTarget may take it


@quick_init
@dataclass(frozen=True)
class ClusterState:
    """One cluster's view of the workload (the primary's, or a target's mirror)."""

    replicas: int = 0
    ready: int = 0
    busy: int = 0
    # pods Pending with PodScheduled=False/Unschedulable for longer than the grace period
    unschedulable: int = 0
    # pods whose busy level could not be read (busy query failed or empty, no annotation/label): unknown is
    # the unsafe case, so they count as busy and hold scale-in of this cluster
    busy_unknown: int = 0
    # live pods bound to a node, and how many more of the same shape fit (the cluster's own accounting;
    # None when the view cannot tell)
    scheduled: int = 0
    room: int | None = None
    # target mirrors only: pods Unschedulable for longer than the target's provisioning timeout (a stockout)
    stuck: int = 0
    # the fewest replicas whose scale-in keeps every busy-or-unknown pod (busy_keep) and every unknown one
    # (unknown_keep), in the order the workload's controller removes pods (busy.keep_floor): a count of busy pods
    # protects a number, not the pods, when a busy one ranks first (not Ready, a StatefulSet's highest ordinal)
    busy_keep: int = 0
    unknown_keep: int = 0

    @property
    def capacity_estimate(self) -> int | None:
        """Pods of this shape the cluster can hold in all: those bound plus the room left."""
        return None if self.room is None else self.scheduled + self.room


@quick_init
@dataclass(frozen=True)
class TargetState:
    name: str
    state: ClusterState = field(default_factory=ClusterState)
    healthy: bool = True
    allowed: bool = True
    priority: int = 0
    cost_per_replica_hour: float | None = None
    # the tighter of the policy's per-target cap and what the BurstTarget has left over all policies
    cap: int | None = None
    # set by the engine: the target ran out of room for this pod shape (a stockout); cap is what runs there
    full: bool = False
    # creation to Ready there (BurstTarget replicaStartupSeconds): a predictive policy whose overflow goes here
    # looks at least this far ahead, so that the replica is Ready when the queue it was started for arrives
    startup_seconds: float | None = None

    def order_key(self) -> tuple[int, float, str]:
        cost = self.cost_per_replica_hour if self.cost_per_replica_hour is not None else float("inf")
        return (self.priority, cost, self.name)


@quick_init
@dataclass(frozen=True)
class Memory:
    """State carried from one decision to the next (persisted in status for restart-safety).

    `recommendations` is run-length encoded: an entry is added only when the value changes, so a steady
    policy produces no status writes.
    """

    recommendations: tuple[tuple[float, int], ...] = ()
    burst_started_at: float | None = None
    primary_capacity: int | None = None
    primary_capacity_observed_at: float | None = None
    # (time, queue) of recent polls, for the predictive trend; empty unless predictive is enabled
    samples: tuple[tuple[float, float], ...] = ()
    # the estimate when the scheduler last contradicted it: trusted again only once it grows past that
    primary_estimate_at_observation: int | None = None
    # the last capacity estimate known: used while the views cannot tell (a watch reconnecting)
    primary_estimate: int | None = None
    # targets out of room for this pod shape: (name, replicas that run there, estimate when it filled, since)
    full_targets: tuple[FullTarget, ...] = ()


@quick_init
@dataclass(frozen=True)
class FullTarget:
    name: str
    capacity: int
    estimate: int | None
    since: float
    last_stuck: float | None = None  # when its pods were last seen stuck (None: since)


@quick_init
@dataclass(frozen=True)
class Snapshot:
    now: float
    metric: float | None
    primary: ClusterState
    targets: tuple[TargetState, ...] = ()
    memory: Memory = field(default_factory=Memory)

    @property
    def current_total(self) -> int:
        return self.primary.replicas + sum(t.state.replicas for t in self.targets if t.healthy)


@quick_init
@dataclass(frozen=True)
class Placement:
    primary: int
    targets: Mapping[str, int] = field(default_factory=dict)

    @property
    def secondary(self) -> int:
        return sum(self.targets.values())

    @property
    def total(self) -> int:
        return self.primary + self.secondary


@quick_init
@dataclass(frozen=True)
class Decision:
    desired: int
    placement: Placement
    reason: Reason
    message: str
    memory: Memory
    unplaced: int = 0
    primary_capacity: int | None = None
    primary_at_capacity: bool = False
    metric_available: bool = True
    unavailable_targets: tuple[str, ...] = ()
