"""Replay a trace through the decision engine with no cluster: a timeline, and a queue/cost summary.

Service model (documented in docs/simulator.md): a request's work is `ContextTokens / prefill_speedup +
GeneratedTokens` token-units; each Ready replica serves `tokens_per_second` units per second from one FIFO
queue; a new replica is Ready `startup_seconds` after creation (secondaries add `secondary_extra_startup`,
for image pull and model download in a cold cloud). The queue metric the engine sees is the number of
requests not yet finished. The primary schedules at most `primary_capacity` pods; the rest stay Pending
Unschedulable, which the engine sees after the policy's grace period, exactly as on a real cluster.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from overspill.api.policy import BurstPolicySpec
from overspill.api.target import BurstTargetSpec
from overspill.decide import ClusterState, Memory, Snapshot, TargetState, decide
from overspill.traces import MetricTrace, RequestLog


@dataclass(frozen=True)
class ServiceModel:
    tokens_per_second: float = 150.0
    startup_seconds: float = 30.0
    secondary_extra_startup: float = 30.0


@dataclass
class _Cluster:
    startup: float
    capacity: int | None = None
    created: list[float] = field(default_factory=list)  # sorted creation times

    def scale(self, now: float, n: int) -> None:
        if n > len(self.created):
            self.created.extend([now] * (n - len(self.created)))
        else:
            del self.created[n:]  # newest first: the unscheduled and starting pods go first

    def state(self, now: float, grace: float) -> ClusterState:
        scheduled = self.created if self.capacity is None else self.created[: self.capacity]
        ready = bisect.bisect_right(scheduled, now - self.startup)
        pending = self.created[len(scheduled) :]
        unsched = bisect.bisect_right(pending, now - grace) if pending else 0
        return ClusterState(replicas=len(self.created), ready=ready, unschedulable=unsched)


@dataclass(frozen=True)
class Step:
    t: float
    metric: float
    desired: int
    primary: int
    targets: dict[str, int]
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "metric": round(self.metric, 3),
            "desired": self.desired,
            "primary": self.primary,
            "targets": self.targets,
            "reason": self.reason,
        }


@dataclass
class Summary:
    steps: int = 0
    duration_seconds: float = 0.0
    replica_seconds: dict[str, float] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    total_cost: float = 0.0
    secondary_replica_hours: float = 0.0
    placement_changes: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    queue_over_target_seconds: float | None = None
    mean_latency_seconds: float | None = None
    p95_latency_seconds: float | None = None
    requests: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"summary": dataclasses.asdict(self)}


def _pct(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def run(
    spec: BurstPolicySpec,
    trace: MetricTrace | RequestLog,
    *,
    targets: dict[str, BurstTargetSpec] | None = None,
    primary_capacity: int | None = None,
    step: float = 1.0,
    model: ServiceModel | None = None,
    primary_cost_per_hour: float = 0.0,
    on_step: Callable[[Step], None] | None = None,
) -> Summary:
    model = model or ServiceModel()
    targets = targets or {}
    grace = spec.primary.pending_grace_period_seconds
    primary = _Cluster(model.startup_seconds, primary_capacity)
    secondaries = {t.name: _Cluster(model.startup_seconds + model.secondary_extra_startup) for t in spec.targets}
    primary.scale(-1e9, spec.min_replicas)  # the workload exists and is warm when the replay starts
    costs = {"primary": primary_cost_per_hour} | {
        t.name: (targets[t.name].cost_per_replica_hour or 0.0) if t.name in targets else 0.0 for t in spec.targets
    }
    summary = Summary(replica_seconds=dict.fromkeys(costs, 0.0))
    memory = Memory()
    queue: deque[list[float]] = deque()  # [remaining work, arrival time]
    latencies: list[float] = []
    cursor = [0]
    req_i = 0
    requests = trace.requests if isinstance(trace, RequestLog) else ()
    over = 0.0
    last: tuple[int, tuple[int, ...]] | None = None
    t = 0.0
    end = trace.duration
    tps_step = model.tokens_per_second * step
    static_targets = [(pt, targets.get(pt.name)) for pt in spec.targets]
    while t <= end:
        if isinstance(trace, RequestLog):
            while req_i < len(requests) and requests[req_i].t <= t:
                queue.append([requests[req_i].work, requests[req_i].t])
                req_i += 1
            metric = float(len(queue))
        else:
            metric = trace.value_at(t, cursor)
        pstate = primary.state(t, grace)
        tstates = []
        for pt, bt in static_targets:
            caps = [c for c in (pt.max_replicas, bt.max_replicas if bt else None) if c is not None]
            tstates.append(
                TargetState(
                    name=pt.name,
                    state=secondaries[pt.name].state(t, grace),
                    priority=pt.priority,
                    cost_per_replica_hour=bt.cost_per_replica_hour if bt else None,
                    cap=min(caps) if caps else None,
                )
            )
        d = decide(spec, Snapshot(now=t, metric=metric, primary=pstate, targets=tuple(tstates), memory=memory))
        memory = d.memory
        primary.scale(t, d.placement.primary)
        for name, n in d.placement.targets.items():
            secondaries[name].scale(t, n)
        key = (d.placement.primary, tuple(d.placement.targets.values()))
        if last is not None and key != last:
            summary.placement_changes += 1
        last = key
        summary.reasons[d.reason.value] = summary.reasons.get(d.reason.value, 0) + 1
        summary.replica_seconds["primary"] += d.placement.primary * step
        for name, n in d.placement.targets.items():
            summary.replica_seconds[name] += n * step
        # serve the queue with what is Ready now
        ready = primary.state(t, grace).ready + sum(c.state(t, grace).ready for c in secondaries.values())
        if isinstance(trace, RequestLog):
            if metric > spec.metric.target_per_replica * max(ready, 1):
                over += step
            budget = ready * tps_step
            while queue and budget > 0:
                head = queue[0]
                if head[0] <= budget:
                    budget -= head[0]
                    latencies.append(t + step - head[1])
                    queue.popleft()
                else:
                    head[0] -= budget
                    budget = 0
        if on_step is not None:
            on_step(Step(t, metric, d.desired, d.placement.primary, dict(d.placement.targets), d.reason.value))
        summary.steps += 1
        t += step
    summary.duration_seconds = summary.steps * step
    summary.cost = {k: round(v / 3600 * costs[k], 4) for k, v in summary.replica_seconds.items()}
    summary.total_cost = round(sum(summary.cost.values()), 4)
    summary.secondary_replica_hours = round(
        sum(v for k, v in summary.replica_seconds.items() if k != "primary") / 3600, 4
    )
    if isinstance(trace, RequestLog):
        summary.requests = len(requests)
        summary.queue_over_target_seconds = over
        if latencies:
            latencies.sort()
            summary.mean_latency_seconds = round(sum(latencies) / len(latencies), 3)
            summary.p95_latency_seconds = round(_pct(latencies, 0.95), 3)
    return summary


def strategy_spec(spec: BurstPolicySpec, strategy: str) -> BurstPolicySpec:
    """Baselines for comparison: the same policy with no secondaries, or with secondaries that never return."""
    if strategy == "overspill":
        return spec
    if strategy == "primary-only":
        return spec.model_copy(update={"targets": []})
    if strategy == "static-overflow":
        behavior = spec.behavior.model_copy(update={"min_burst_duration_seconds": 10**9})
        return spec.model_copy(update={"behavior": behavior})
    raise ValueError(f"unknown strategy {strategy!r}: use overspill, primary-only or static-overflow")
