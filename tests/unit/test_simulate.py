"""The simulator's service model: per-cluster start-up, decisions every poll interval, SLO accounting."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from overspill.api import parse_target_spec
from overspill.simulate import ServiceModel, Slo, Step, run
from overspill.traces import MetricTrace, Request, RequestLog
from tests.unit.engine_helpers import policy

HIGH = MetricTrace(((0.0, 150.0), (600.0, 150.0)))


def timeline(spec: Any, trace: MetricTrace | RequestLog, **kw: Any) -> list[Step]:
    steps: list[Step] = []
    run(spec, trace, on_step=steps.append, **kw)
    return steps


def first_ready(steps: list[Step], target: str) -> tuple[float, float]:
    asked = next(s.t for s in steps if s.targets.get(target))
    ready = next(s.t for s in steps if s.targets_ready.get(target))
    return asked, ready


def test_each_cluster_has_its_own_startup() -> None:
    spec = policy(
        targets=[{"name": "aws", "maxReplicas": 3}, {"name": "gcp", "priority": 1}],
        behavior={"pollIntervalSeconds": 5},
    )
    model = ServiceModel(startup_seconds={"aws": 40, "gcp": 200, "primary": 10})
    steps = timeline(spec, HIGH, primary_capacity=4, model=model)
    aws_asked, aws_ready = first_ready(steps, "aws")
    gcp_asked, gcp_ready = first_ready(steps, "gcp")
    assert 40 <= aws_ready - aws_asked < 45
    assert 200 <= gcp_ready - gcp_asked < 205
    primary_growth = next(s.t for s in steps if s.primary > 1)
    assert next(s.t for s in steps if s.primary_ready > 1) - primary_growth == pytest.approx(10, abs=5)


def test_burst_target_replica_startup_is_used_unless_overridden() -> None:
    spec = policy(targets=[{"name": "aws"}], behavior={"pollIntervalSeconds": 5})
    bt = parse_target_spec({"kubeconfigSecretRef": {"name": "k", "namespace": "ns"}, "replicaStartupSeconds": 120})
    asked, ready = first_ready(timeline(spec, HIGH, primary_capacity=4, targets={"aws": bt}), "aws")
    assert 120 <= ready - asked < 125
    model = ServiceModel(startup_seconds={"aws": 20})
    asked, ready = first_ready(timeline(spec, HIGH, primary_capacity=4, targets={"aws": bt}, model=model), "aws")
    assert 20 <= ready - asked < 25


def test_decisions_follow_the_poll_interval_not_the_step() -> None:
    spec = policy(behavior={"pollIntervalSeconds": 10})
    trace = MetricTrace(tuple((float(t), float((t * 7) % 200)) for t in range(0, 600, 3)))
    fine = timeline(spec, trace, primary_capacity=6, step=0.5)
    coarse = timeline(spec, trace, primary_capacity=6, step=10.0)
    assert [s.t for s in fine] == [float(t) for t in range(0, 600, 10)]
    # the same decisions whatever the service step: the policy, not the simulator, sets the cadence
    assert [(s.t, s.desired, s.primary, s.targets) for s in fine] == [
        (s.t, s.desired, s.primary, s.targets) for s in coarse
    ]


def fixed(replicas: int = 1) -> Any:
    return policy(minReplicas=replicas, maxReplicas=replicas, targets=[], metric={"targetPerReplica": 1})


def test_slo_counts_the_wait_before_service_starts() -> None:
    # one warm replica serving 1 unit/s; three jobs of 10 units at t=0: they start at 0, 10 and 20
    log = RequestLog((Request(0.0, 10.0), Request(0.0, 10.0), Request(0.0, 10.0)))
    s = run(fixed(), log, model=ServiceModel(tokens_per_second=1.0), slo=Slo(wait_seconds=10, target=0.6))
    assert (s.mean_wait_seconds, s.p95_wait_seconds) == (10.0, 20.0)
    assert s.slo_attainment == pytest.approx(2 / 3, abs=1e-4)
    assert s.slo_met is True
    assert s.mean_latency_seconds == 20.0  # 10, 20, 30
    strict = run(fixed(), log, model=ServiceModel(tokens_per_second=1.0), slo=Slo(wait_seconds=9.5, target=0.6))
    assert strict.slo_attainment == pytest.approx(1 / 3, abs=1e-4)
    assert strict.slo_met is False


def test_requests_unfinished_at_the_end_are_counted_as_misses() -> None:
    log = RequestLog(tuple(Request(0.0, 100.0) for _ in range(5)))
    s = run(fixed(), log, model=ServiceModel(tokens_per_second=1.0), drain_limit_seconds=150)
    assert s.requests == 5
    assert s.unfinished_requests == 4  # one done by t=100, the 2nd started then, 3 never did
    assert s.slo_attainment == pytest.approx(1 / 5)
    assert s.p95_latency_seconds is not None and s.p95_latency_seconds >= 150
    drained = run(fixed(), log, model=ServiceModel(tokens_per_second=1.0))
    assert drained.unfinished_requests == 0  # the replay goes on until the queue is empty
    assert drained.duration_seconds == pytest.approx(500, abs=1)


def test_primary_cost_is_charged() -> None:
    s = run(fixed(2), RequestLog((Request(0.0, 1.0), Request(3600.0, 1.0))), primary_cost_per_hour=3.0)
    assert s.cost["primary"] == pytest.approx(2 * 3.0, rel=0.01)


def test_non_positive_step_is_refused() -> None:
    with pytest.raises(ValueError, match="step must be > 0"):
        run(fixed(), HIGH, step=0)


# work of 60 at t=0 and 120 at t=30, one token-unit per second per replica: the load metric is the work that arrived
# in the minute before each decision, in replicas' worth (a request leaves the window 60 s after it arrived)
LOAD_LOG = RequestLog((Request(0.0, 60.0), Request(30.0, 120.0), Request(200.0, 6.0)))


@pytest.mark.parametrize(
    ("t", "metric"),
    [(0.0, 1.0), (10.0, 1.0), (30.0, 3.0), (50.0, 3.0), (60.0, 2.0), (80.0, 2.0), (90.0, 0.0), (200.0, 0.1)],
)
def test_load_metric_is_work_arriving_per_replica(t: float, metric: float) -> None:
    spec = policy(targets=[], behavior={"pollIntervalSeconds": 10})
    steps = timeline(spec, LOAD_LOG, model=ServiceModel(tokens_per_second=1.0, metric="load"))
    assert next(s.metric for s in steps if s.t == t) == pytest.approx(metric)


def test_queue_metric_is_requests_not_finished() -> None:
    spec = policy(targets=[], behavior={"pollIntervalSeconds": 10})
    steps = timeline(spec, LOAD_LOG, model=ServiceModel(tokens_per_second=1.0))
    assert [s.metric for s in steps if s.t in (0.0, 30.0)] == [1.0, 2.0]  # the first is still served at 30


def test_unknown_metric_is_refused() -> None:
    with pytest.raises(ValueError, match="metric must be one of queue, load"):
        run(policy(), LOAD_LOG, model=ServiceModel(metric="rate"))


SPIKE = RequestLog(tuple(Request(t=100.0 + i, work=30.0) for i in range(20)))


def test_a_forecast_load_metric_sees_a_spike_before_it_arrives() -> None:
    """forecast_seconds makes the load metric clairvoyant (benchmarks.foresight measures what foresight is
    worth): 60 s ahead it reports the spike at 100 s from 40 s on (all of it at 60 s), and the secondaries it
    asked for are Ready when it lands; without a forecast it is seen only once it arrives."""
    spec = policy(
        metric={"targetPerReplica": 1},
        targets=[{"name": "aws"}],
        behavior={"pollIntervalSeconds": 10},
    )
    model = ServiceModel(tokens_per_second=1.0, metric="load", startup_seconds={"aws": 30})
    ahead = timeline(spec, SPIKE, primary_capacity=1, model=replace(model, forecast_seconds=60.0))
    now = timeline(spec, SPIKE, primary_capacity=1, model=model)
    assert [s.metric for s in ahead if s.t in (30.0, 60.0)] == [0.0, pytest.approx(20 * 30 / 60)]
    assert [s.metric for s in now if s.t in (50.0, 90.0, 110.0)] == [0.0, 0.0, pytest.approx(11 * 30 / 60)]
    assert next(s.targets_ready["aws"] for s in ahead if s.t == 100.0) > 0
    assert next(s.targets_ready["aws"] for s in now if s.t == 100.0) == 0


def test_a_forecast_needs_the_load_metric() -> None:
    with pytest.raises(ValueError, match="forecast_seconds must be >= 0 and needs the load metric"):
        run(policy(), SPIKE, model=ServiceModel(forecast_seconds=30.0))
