"""When a steady window may start: every workload's pods Ready and a quiet spell with no writes to them.

A window that opens while the lab is still starting pods measures the start, not the steady state: at N = 1,000
the second pod of each workload comes up over minutes, and every pod, ReplicaSet and Deployment status write of
that start (and a tool recording ready replicas in its own status) would be counted as the tool's steady cost.
Pure: the caller feeds what its watches saw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Settle:
    """What a caller waits for: `want` Ready pods for each of `names`, then `quiet` seconds with no write seen."""

    names: Sequence[str]
    want: int
    quiet: float


def unsettled(settle: Settle, ready: Mapping[str, int], last_write: float | None, now: float) -> str | None:
    """None once settled; else why not yet, in words for the results (e.g. "12 of 1000 workloads ...")."""
    short = sum(1 for n in settle.names if ready.get(n, 0) != settle.want)
    if short:
        return f"{short} of {len(settle.names)} workloads not at {settle.want} Ready pods"
    if last_write is not None and now - last_write < settle.quiet:
        return f"last write to the workloads {now - last_write:.1f} s ago, waiting for {settle.quiet:.0f} s of quiet"
    return None


def quiet_seconds(polls: float, poll_interval: float) -> float:
    """The quiet spell: `polls` of the tool's poll interval, so a tool that acts once a poll had that many chances
    to write and did not."""
    return polls * poll_interval
