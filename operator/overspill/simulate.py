"""Replay a trace through the decision engine with no cluster: a timeline, and an SLO/cost summary.

Service model (documented in docs/simulator.md): a request's work is `ContextTokens / prefill_speedup +
GeneratedTokens` token-units; each Ready replica serves `tokens_per_second` units per second from one FIFO
queue; a replica is Ready its cluster's start-up time after creation. The queue metric the engine sees is the
number of requests not yet finished. The primary schedules at most `primary_capacity` pods; the rest stay Pending
Unschedulable, which the engine sees after the policy's grace period, exactly as on a real cluster.

The engine decides every `pollIntervalSeconds`, as the operator does; the service model steps every `step`
seconds (finer steps: a more exact queue, never a different policy). A request's wait is the time from its
arrival to the start of its service; its latency, to its end. After the last arrival the replay goes on until the
queue is empty (at most `drain_limit_seconds`): requests still unfinished then are counted, as misses.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from overspill.api.policy import BurstPolicySpec
from overspill.api.target import BurstTargetSpec
from overspill.decide import ClusterState, Memory, Reason, Snapshot, TargetState, decide
from overspill.decide.snapshot import PRIMARY
from overspill.traces import MetricTrace, RequestLog

# JSON written by `simulate --output json`, `tune --output json` and the benchmarks; docs/simulator.md
SCHEMA_VERSION = 2
# vLLM: about 35 s from process start to serving for a small model with a warm compile cache (docs/simulator.md)
DEFAULT_PRIMARY_STARTUP = 35.0
# a secondary adds pulling the image and the weights on a node that has neither: 60 s in the reference
# computation; set BurstTarget.replicaStartupSeconds or --startup NAME=SECONDS for your model and cloud
DEFAULT_SECONDARY_STARTUP = 60.0
# a replay longer than this many service steps is refused (it would run for minutes): resample with --step
MAX_STEPS = 20_000_000


# what the policy's query measures, for request logs (docs/simulator.md, "The metric")
METRICS = ("queue", "load")
# the rate window of the load metric: PromQL's rate(...[1m])
LOAD_WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class ServiceModel:
    tokens_per_second: float = 150.0
    # creation to Ready, per cluster ("primary" or a target's name); unnamed clusters take the defaults
    startup_seconds: Mapping[str, float] = field(default_factory=dict)
    primary_startup_default: float = DEFAULT_PRIMARY_STARTUP
    secondary_startup_default: float = DEFAULT_SECONDARY_STARTUP
    # "queue": requests not yet finished (vllm:num_requests_waiting + running); "load": the work that arrived over
    # the last minute in replicas' worth, what a token-rate query gives (rate of vllm:prompt_tokens_total / the
    # prefill speed-up + rate of vllm:generation_tokens_total, over the tokens per second of one replica)
    metric: str = "queue"
    # "load" only: the minute of arrivals ending this many seconds *ahead* (a perfect forecast, which no query
    # gives): what knowing the future is worth to the same engine, for benchmarks.foresight; 0 for a real query
    forecast_seconds: float = 0.0

    def primary_startup(self) -> float:
        return self.startup_seconds.get(PRIMARY, self.primary_startup_default)

    def target_startup(self, name: str, target: BurstTargetSpec | None = None) -> float:
        """--startup NAME=S first, then the BurstTarget's replicaStartupSeconds, then the default. "primary" always
        names the primary cluster (no BurstTarget may take that name: api.target.PRIMARY_CLUSTER_NAME)."""
        if name != PRIMARY and name in self.startup_seconds:
            return self.startup_seconds[name]
        if target is not None and target.replica_startup_seconds is not None:
            return float(target.replica_startup_seconds)
        return self.secondary_startup_default


@dataclass(frozen=True)
class Slo:
    """`target` of the requests (or CI jobs) wait at most `wait_seconds` before their service starts."""

    wait_seconds: float = 30.0
    target: float = 0.99


@dataclass
class _Cluster:
    startup: float
    capacity: int | None = None
    created: list[float] = field(default_factory=list)  # sorted creation times
    # The last state, kept until the next scale() that changes the count, or until a pod turns Ready or passes the
    # grace period: most polls of a replay change nothing here, and the same object lets the replay keep the same
    # TargetState. Valid while `now - startup < ready_edge` and `now - grace < grace_edge` (the very comparisons
    # the bisections make, so the cached state is the one they would give); `now` never goes back in a replay.
    last: ClusterState | None = None
    ready_edge: float = math.inf
    grace_edge: float = math.inf

    def scale(self, now: float, n: int) -> None:
        created = self.created
        have = len(created)
        if n == have:
            return
        if n > have:
            created.extend([now] * (n - have))
        else:
            del created[n:]  # newest first: the unscheduled and starting pods go first
        self.last = None

    def ready(self, now: float) -> int:
        n = len(self.created)
        scheduled = n if self.capacity is None or n < self.capacity else self.capacity
        return bisect.bisect_right(self.created, now - self.startup, 0, scheduled)

    def state(self, now: float, grace: float) -> ClusterState:
        last = self.last
        if last is not None and now - self.startup < self.ready_edge and now - grace < self.grace_edge:
            return last
        created = self.created
        n = len(created)
        scheduled = n if self.capacity is None or n < self.capacity else self.capacity
        ready = bisect.bisect_right(created, now - self.startup, 0, scheduled)
        unsched = bisect.bisect_right(created, now - grace, scheduled) - scheduled if n > scheduled else 0
        self.ready_edge = created[ready] if ready < scheduled else math.inf
        self.grace_edge = created[scheduled + unsched] if scheduled + unsched < n else math.inf
        self.last = last = ClusterState(n, ready, 0, unsched)
        return last


@dataclass(frozen=True)
class Step:
    """One decision: what the engine saw, what it asked for, and what was Ready (the rest Pending/starting)."""

    t: float
    metric: float
    desired: int
    primary: int
    primary_ready: int
    targets: dict[str, int]
    targets_ready: dict[str, int]
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {
            "t_seconds": self.t,
            "metric": round(self.metric, 3),
            "desired_replicas": self.desired,
            "primary_replicas": self.primary,
            "primary_ready_replicas": self.primary_ready,
            "target_replicas": self.targets,
            "target_ready_replicas": self.targets_ready,
            "reason": self.reason,
        }


@dataclass
class Summary:
    decisions: int = 0
    steps: int = 0
    duration_seconds: float = 0.0
    replica_seconds: dict[str, float] = field(default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)
    total_cost: float = 0.0
    secondary_replica_hours: float = 0.0
    placement_changes: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    # request logs only
    requests: int | None = None
    unfinished_requests: int | None = None
    mean_wait_seconds: float | None = None
    p95_wait_seconds: float | None = None
    mean_latency_seconds: float | None = None
    p95_latency_seconds: float | None = None
    queue_over_target_seconds: float | None = None
    slo_wait_seconds: float | None = None
    slo_target: float | None = None
    slo_attainment: float | None = None
    slo_met: bool | None = None

    def as_json(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "summary": self.figures()}

    def figures(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _pct(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def run(
    spec: BurstPolicySpec,
    trace: MetricTrace | RequestLog,
    *,
    targets: Mapping[str, BurstTargetSpec] | None = None,
    primary_capacity: int | None = None,
    step: float = 1.0,
    model: ServiceModel | None = None,
    primary_cost_per_hour: float = 0.0,
    slo: Slo | None = None,
    drain_limit_seconds: float = 3600.0,
    on_step: Callable[[Step], None] | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> Summary:
    if step <= 0:
        raise ValueError(f"step must be > 0 seconds, not {step:g}")
    model = model or ServiceModel()
    slo = slo or Slo()
    targets = targets or {}
    grace = spec.primary.pending_grace_period_seconds
    poll = float(spec.behavior.poll_interval_seconds)
    primary = _Cluster(model.primary_startup(), primary_capacity)
    secondaries = {t.name: _Cluster(model.target_startup(t.name, targets.get(t.name))) for t in spec.targets}
    clusters = [primary, *secondaries.values()]
    primary.scale(-1e9, spec.min_replicas)  # the workload exists and is warm when the replay starts
    # by target name; the primary's apart (no target may be named "primary")
    costs = {t.name: (targets[t.name].cost_per_replica_hour or 0.0) if t.name in targets else 0.0 for t in spec.targets}
    summary = Summary()
    # replica-steps (whole numbers, exact), added up when a placement ends rather than every step: times `step`
    # at the end, they are the replica-seconds
    target_steps = dict.fromkeys(costs, 0)
    primary_steps = 0
    placed_at = 0  # the step from which the current placement holds
    static_targets = []
    for pt in spec.targets:
        bt = targets.get(pt.name)
        caps = [c for c in (pt.max_replicas, bt.max_replicas if bt else None) if c is not None]
        # the engine sees what the operator sees: the BurstTarget's replicaStartupSeconds, not --startup
        startup = float(bt.replica_startup_seconds) if bt and bt.replica_startup_seconds is not None else None
        static_targets.append((pt, bt.cost_per_replica_hour if bt else None, min(caps) if caps else None, startup))
    target_clusters = [secondaries[pt.name] for pt, *_ in static_targets]
    target_seen = [c.state(0.0, grace) for c in target_clusters]
    tstates: tuple[TargetState, ...] | None = None
    memory = Memory()
    is_log = isinstance(trace, RequestLog)
    requests = trace.requests if isinstance(trace, RequestLog) else ()
    queue: deque[list[float]] = deque()  # [remaining work, arrival time, started (0/1)]
    waits: list[float] = []
    latencies: list[float] = []
    points = () if isinstance(trace, RequestLog) else trace.points
    last_point = len(points) - 1
    point_i = 0  # the step-hold lookup of MetricTrace.value_at, inline (a call per decision)
    req_i = 0
    over = 0.0
    decisions = steps = changes = 0
    t = 0.0
    end = trace.duration
    hard_end = end + (drain_limit_seconds if is_log else 0.0)
    tps_step = model.tokens_per_second * step
    next_decision = 0.0
    placement_primary = spec.min_replicas
    placement_targets: Mapping[str, int] = dict.fromkeys(secondaries, 0)
    ready = 0
    ready_changes_at = 0.0  # the next time a starting replica becomes Ready: recount only then
    target_per_replica = spec.metric.target_per_replica
    if model.metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, not {model.metric!r}")
    load_metric = is_log and model.metric == "load"
    if model.forecast_seconds < 0 or (model.forecast_seconds and not load_metric):
        raise ValueError(f"forecast_seconds must be >= 0 and needs the load metric, not {model.forecast_seconds:g}")
    arrived: deque[tuple[float, float]] = deque()  # (arrival, work) over the load metric's window
    ahead_i = 0  # the next request the load metric has not counted (it looks forecast_seconds ahead)
    # by member: `.value` of an enum is a slow property, read once at the end; in first-seen order, as reported
    reasons: defaultdict[Reason, int] = defaultdict(int)
    while t <= end or (is_log and queue and t <= hard_end):
        if is_log:
            while req_i < len(requests) and requests[req_i].t <= t:
                queue.append([requests[req_i].work, requests[req_i].t, 0.0])
                req_i += 1
        if t >= next_decision:
            if load_metric:
                horizon = t + model.forecast_seconds
                while ahead_i < len(requests) and requests[ahead_i].t <= horizon:
                    arrived.append((requests[ahead_i].t, requests[ahead_i].work))
                    ahead_i += 1
                while arrived and arrived[0][0] <= horizon - LOAD_WINDOW_SECONDS:
                    arrived.popleft()
                metric = sum(w for _, w in arrived) / LOAD_WINDOW_SECONDS / model.tokens_per_second
            elif is_log:
                metric = float(len(queue))
            else:
                while point_i < last_point and points[point_i + 1][0] <= t:
                    point_i += 1
                metric = points[point_i][1]
            # a target's state object is the same while nothing changed there (_Cluster.state): so is its
            # TargetState, and the tuple when no target changed (most polls)
            for i, c in enumerate(target_clusters):
                state = c.state(t, grace)
                if state is not target_seen[i]:
                    target_seen[i] = state
                    tstates = None
            if tstates is None:
                tstates = tuple(
                    TargetState(
                        name=pt.name,
                        state=state,
                        priority=pt.priority,
                        cost_per_replica_hour=cost,
                        cap=cap,
                        startup_seconds=startup,
                    )
                    for (pt, cost, cap, startup), state in zip(static_targets, target_seen, strict=True)
                )
            # positional, in Snapshot's field order: keywords cost a third more, once per decision
            snap = Snapshot(t, metric, primary.state(t, grace), tstates, memory)
            d = decide(spec, snap, explain=False)
            memory = d.memory
            placement = d.placement
            # the decision's own dict: a fresh one per decision, never changed after
            if placement.primary != placement_primary or placement.targets != placement_targets:
                span = steps - placed_at
                primary_steps += placement_primary * span
                for name, n in placement_targets.items():
                    target_steps[name] += n * span
                placed_at = steps
                if decisions:  # the first decision sets the placement; it does not change one
                    changes += 1
                placement_primary, placement_targets = placement.primary, placement.targets
                primary.scale(t, placement_primary)
                for name, n in placement_targets.items():
                    secondaries[name].scale(t, n)
                ready_changes_at = t  # placement changed: recount
            reasons[d.reason] += 1
            decisions += 1
            if on_step is not None:
                on_step(
                    Step(
                        t,
                        metric,
                        d.desired,
                        placement_primary,
                        primary.ready(t),
                        dict(placement_targets),
                        {n: c.ready(t) for n, c in secondaries.items()},
                        d.reason.value,
                    )
                )
            while next_decision <= t:
                next_decision += poll
            if on_progress is not None:
                on_progress(t)
        if is_log:
            if t >= ready_changes_at:
                ready = sum(c.ready(t) for c in clusters)
                pending = [c.created[i] + c.startup for c in clusters for i in range(c.ready(t), len(c.created))]
                ready_changes_at = min((p for p in pending if p > t), default=float("inf"))
            if len(queue) > target_per_replica * max(ready, 1):
                over += step
            budget = ready * tps_step
            while queue and budget > 0:
                head = queue[0]
                if not head[2]:
                    head[2] = 1.0
                    waits.append(t - head[1])
                if head[0] <= budget:
                    budget -= head[0]
                    latencies.append(t + step - head[1])
                    queue.popleft()
                else:
                    head[0] -= budget
                    budget = 0
        steps += 1
        t += step
    span = steps - placed_at
    primary_seconds = (primary_steps + placement_primary * span) * step
    seconds = {name: (target_steps[name] + placement_targets.get(name, 0) * span) * step for name in target_steps}
    summary.decisions, summary.steps, summary.placement_changes = decisions, steps, changes
    summary.reasons = {r.value: n for r, n in reasons.items()}
    summary.duration_seconds = steps * step
    summary.replica_seconds = {PRIMARY: primary_seconds} | seconds
    summary.cost = {PRIMARY: round(primary_seconds / 3600 * primary_cost_per_hour, 4)} | {
        k: round(v / 3600 * costs[k], 4) for k, v in seconds.items()
    }
    summary.total_cost = round(sum(summary.cost.values()), 4)
    summary.secondary_replica_hours = round(sum(seconds.values()) / 3600, 4)
    if is_log:
        # only requests whose service started can meet the SLO: `waits` holds theirs until _account_requests adds
        # the wait so far of those never served, which is no wait at all (counted, they would meet a long SLO)
        met = sum(1 for w in waits if w <= slo.wait_seconds)
        _account_requests(summary, requests_total=len(requests), queue=queue, waits=waits, latencies=latencies, t=t)
        summary.queue_over_target_seconds = over
        summary.slo_wait_seconds, summary.slo_target = slo.wait_seconds, slo.target
        attained = met / len(requests) if requests else 1.0
        summary.slo_attainment = round(attained, 5)  # for reading; the comparison takes the exact share
        summary.slo_met = attained >= slo.target
    return summary


def ceiling(
    spec: BurstPolicySpec,
    trace: MetricTrace | RequestLog,
    *,
    targets: Mapping[str, BurstTargetSpec] | None = None,
    primary_capacity: int | None = None,
    step: float = 1.0,
    model: ServiceModel | None = None,
    slo: Slo | None = None,
) -> Summary:
    """The replay of every replica the caps allow, Ready from the start and never removed: maxReplicas, the primary
    filled to its capacity first, the rest in the targets within their caps. In this service model a request starts
    once the work before it is served, and more Ready replicas at any moment never serve less, so no schedule under
    the same caps reaches a higher SLO attainment: an SLO this misses is infeasible, whatever the oracle's
    relaxation says (on the CI day it found 95 % within 120 s feasible; this reaches 92.2 %)."""
    caps = [c for c in (primary_capacity, spec.primary.max_replicas) if c is not None]
    primary = spec.primary.model_copy(update={"max_replicas": min(caps)}) if caps else spec.primary
    full = spec.model_copy(update={"min_replicas": spec.max_replicas, "primary": primary})
    # Ready at once everywhere: no --startup, no replicaStartupSeconds, defaults of 0
    instant = {n: bt.model_copy(update={"replica_startup_seconds": None}) for n, bt in (targets or {}).items()}
    base = model or ServiceModel()
    return run(
        full,
        trace,
        targets=instant,
        primary_capacity=primary_capacity,
        step=step,
        model=ServiceModel(
            tokens_per_second=base.tokens_per_second,
            primary_startup_default=0.0,
            secondary_startup_default=0.0,
            metric=base.metric,
        ),
        slo=slo,
    )


def _account_requests(
    summary: Summary,
    *,
    requests_total: int,
    queue: deque[list[float]],
    waits: list[float],
    latencies: list[float],
    t: float,
) -> None:
    """Requests unfinished at the end count with the time they have waited so far (a lower bound), so a policy
    cannot look better by leaving work behind."""
    summary.requests = requests_total
    summary.unfinished_requests = len(queue)
    for item in queue:
        latencies.append(t - item[1])
        if not item[2]:
            waits.append(t - item[1])
    if latencies:
        latencies.sort()
        summary.mean_latency_seconds = round(sum(latencies) / len(latencies), 3)
        summary.p95_latency_seconds = round(_pct(latencies, 0.95), 3)
    if waits:
        waits.sort()
        summary.mean_wait_seconds = round(sum(waits) / len(waits), 3)
        summary.p95_wait_seconds = round(_pct(waits, 0.95), 3)


STRATEGIES = ("overspill", "primary-only", "keda-like", "static-overflow")


def strategy_spec(spec: BurstPolicySpec, strategy: str) -> BurstPolicySpec:
    """Baselines on the same engine: the policy with no secondaries; a KEDA-like queue-metric HPA in one cluster
    (30 s poll, the HPA's default 300 s scale-down window); secondaries that never give replicas back (static
    overflow tiers, as in Karmada)."""
    if strategy == "overspill":
        return spec
    if strategy == "primary-only":
        return spec.model_copy(update={"targets": []})
    if strategy == "keda-like":
        behavior = spec.behavior.model_copy(
            update={
                "poll_interval_seconds": 30,
                "scale_up_stabilization_seconds": 0,
                "scale_down_stabilization_seconds": 300,
                "predictive": None,
            }
        )
        return spec.model_copy(update={"targets": [], "behavior": behavior})
    if strategy == "static-overflow":
        behavior = spec.behavior.model_copy(update={"min_burst_duration_seconds": 10**9})
        return spec.model_copy(update={"behavior": behavior})
    raise ValueError(f"unknown strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
