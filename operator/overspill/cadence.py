"""When a policy ticks and when a status is written: the cadence that keeps a thousand idle policies from costing
the API server anything (issue 12: at most 1 request per second per cluster while steady).

Pure functions of times and status dicts; the daemons in handlers.py apply them.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

# ---- tick slots ------------------------------------------------------------------------------------------------


def phase(uid: str) -> float:
    """Where in its poll interval a policy ticks, in [0, 1): stable for the policy, spread evenly over policies, so
    a thousand policies started together do not tick together every interval."""
    return int(hashlib.sha256(uid.encode()).hexdigest()[:8], 16) / 2**32


def next_slot(now: float, interval: float, offset: float) -> float:
    """The policy's next regular tick after one at `now`: its slots lie at `offset * interval + k * interval`, and
    the next one is at least half an interval away (a tick woken early by an event does not shift the slots)."""
    if interval <= 0:
        return now
    k = math.floor((now + interval / 2 - offset * interval) / interval) + 1
    return offset * interval + k * interval


FIRST_SPREAD = 10.0  # seconds over which the first ticks after a start are spread, whatever the poll interval


def first_slot(now: float, interval: float, offset: float) -> float:
    """The first tick of a policy found while the operator starts: spread over the next few seconds (at most
    FIRST_SPREAD, so a 5-minute poll does not delay a restarted operator's first look by 5 minutes); the slots
    of later ticks follow from the offset."""
    return now + offset * min(interval, FIRST_SPREAD)


# ---- status writes ---------------------------------------------------------------------------------------------

MOVING = ("metricValue", "memory")  # figures that change every poll: written at most every statusInterval


def _settled(status: dict[str, Any]) -> dict[str, Any]:
    """The status without its moving figures: a difference here is a decision, written at once."""
    out = {k: v for k, v in status.items() if k not in MOVING}
    primary = dict(out.get("primary") or {})
    for key in ("capacity", "capacityEstimate", "capacityObserved"):  # atCapacity says when they matter
        primary.pop(key, None)
    out["primary"] = primary
    out["targets"] = [{k: v for k, v in t.items() if k != "freeRoom"} for t in out.get("targets") or []]
    return out


def _keyed(value: Any) -> Any:
    """A list of conditions (by type) or of targets (by field) as a dict, so a difference can be named."""
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        if all("type" in v for v in value):
            return {str(v["type"]): v for v in value}
        return {k: [v.get(k) for v in value] for v in value for k in v}
    return value


def _runs(samples: Any) -> list[Any]:
    """(time, value) pairs as their values with repeats collapsed: a still queue's samples do not move."""
    out: list[Any] = []
    for pair in samples or []:
        value = pair[1] if isinstance(pair, (list, tuple)) and len(pair) == 2 else pair
        if not out or out[-1] != value:
            out.append(value)
    return out


def _moving(status: dict[str, Any], *, exact_samples: bool) -> dict[str, Any]:
    """The moving figures, with the engine's time-stamped memory reduced to what a restart needs from it. A
    recommendation repeated at a new time is no news: the write that recorded the value also recorded when the
    run of it began, and a window's hold ends with a change of value, which is written. Samples feed a
    predictive policy's trend fit by their times, so for such a policy they are compared exactly (written every
    interval); for the others only their values matter. Room and capacity figures move when the clusters do."""
    memory = dict(status.get("memory") or {})
    memory["recommendations"] = _runs(memory.get("recommendations"))
    if not exact_samples:
        memory["samples"] = _runs(memory.get("samples"))
    primary = status.get("primary") or {}
    return {
        "metricValue": status.get("metricValue"),
        "memory": memory,
        "capacity": [primary.get(k) for k in ("capacity", "capacityEstimate", "capacityObserved")],
        "freeRoom": [(t.get("name"), t.get("freeRoom")) for t in status.get("targets") or []],
    }


def write_cause(
    new: dict[str, Any], old: dict[str, Any], elapsed: float, interval: float, *, exact_samples: bool = False
) -> str | None:
    """Why this status must be written now, or None. A decision (any settled field) at once; moving figures
    that moved at most every `interval` seconds; a status that only ages (a still queue) never: 1,000 idle
    policies then cost the API server nothing. `exact_samples`: the policy predicts from its samples' times."""
    settled_new, settled_old = _settled(new), _settled(old)  # once each: this runs on every tick of every policy
    if settled_new != settled_old:
        return _first_difference(settled_new, settled_old)
    if elapsed >= interval and _moving(new, exact_samples=exact_samples) != _moving(old, exact_samples=exact_samples):
        return "interval"
    return None


def _first_difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    """The first field that differs, one level deep (`primary.readyReplicas`, `conditions.Bursting`,
    `targets.state`); bounded by field and condition names, so it can label a metric."""
    for key in sorted(set(a) | set(b)):
        if a.get(key) == b.get(key):
            continue
        inner_a, inner_b = _keyed(a.get(key)), _keyed(b.get(key))
        if isinstance(inner_a, dict) and isinstance(inner_b, dict):
            for sub in sorted(set(inner_a) | set(inner_b)):
                if inner_a.get(sub) != inner_b.get(sub):
                    return f"{key}.{sub}"
        return key
    return "settled"


# A BurstTarget's probe heartbeat (lastProbeTime, latencyMs) is written at most once a minute; any other change at
# once.
TARGET_HEARTBEAT = 60.0
TARGET_MOVING = ("lastProbeTime", "latencyMs")


def target_write_cause(current: dict[str, Any], written: dict[str, Any] | None, elapsed: float) -> str | None:
    """Why a BurstTarget's status must be written now: a change (health, version, usage) at once, the probe's
    heartbeat (lastProbeTime, latencyMs) once a minute, nothing in between."""
    if written is None:
        return "first"

    def settled(s: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in s.items() if k not in TARGET_MOVING}

    if settled(current) != settled(written):
        return "settled"
    return "interval" if elapsed >= TARGET_HEARTBEAT else None
