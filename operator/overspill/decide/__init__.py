"""The pure decision core: snapshot in, placement and reason out. No I/O, no clock: `now` is passed in."""

from overspill.decide.engine import decide
from overspill.decide.reasons import Reason
from overspill.decide.snapshot import ClusterState, Decision, Memory, Placement, Snapshot, TargetState

__all__ = ["ClusterState", "Decision", "Memory", "Placement", "Reason", "Snapshot", "TargetState", "decide"]
