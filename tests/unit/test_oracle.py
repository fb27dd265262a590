"""The oracle is a lower bound: equal to the hand-computed optimum of the relaxation on tiny traces, never above
what a simulated schedule that meets the SLO spends, and infeasible when the caps make the SLO impossible."""

from __future__ import annotations

import random

import pytest

from overspill.oracle import bound
from overspill.simulate import ServiceModel, Slo, run
from overspill.traces import Request, RequestLog
from tests.unit.engine_helpers import policy

ONE_TARGET = {"targets": [{"name": "aws"}], "minReplicas": 0, "maxReplicas": 20}
MODEL = ServiceModel(tokens_per_second=1.0, startup_seconds={"primary": 0, "aws": 10})


def test_no_secondary_needed_costs_nothing() -> None:
    log = RequestLog((Request(0.0, 5.0), Request(50.0, 5.0)))
    result = bound(policy(minReplicas=1), log, primary_capacity=1, model=MODEL, slo=Slo(10, 1.0))
    assert result.feasible
    assert result.replica_hours == pytest.approx(0.0, abs=1e-6)


def test_two_jobs_with_a_cold_secondary_by_hand() -> None:
    # no primary at all; two jobs of 50 units at t=100, 1 unit/s per replica, 10 s start-up, every job must
    # start within 5 s: the second starts only once the first's 50 units are served in steps 100..105, so 50/6
    # Ready replicas on average there, each paying from its creation 10 s earlier: 16 s x 50/6 replicas.
    log = RequestLog((Request(100.0, 50.0), Request(100.0, 50.0)))
    result = bound(policy(**ONE_TARGET), log, primary_capacity=0, model=MODEL, slo=Slo(5, 1.0), interval=1.0)
    assert result.feasible
    assert result.replica_hours == pytest.approx(16 * 50 / 6 / 3600, rel=1e-3)
    # the integer optimum (9 replicas from t=90 to 105, 144 replica-seconds) is above it: a lower bound
    assert result.replica_hours <= 144 / 3600
    assert result.rounded_replica_hours >= result.replica_hours
    assert result.rounding_gap_hours == pytest.approx(result.rounded_replica_hours - result.replica_hours, abs=1e-4)


def test_half_the_jobs_may_miss() -> None:
    log = RequestLog((Request(100.0, 50.0), Request(100.0, 50.0)))
    result = bound(policy(**ONE_TARGET), log, primary_capacity=0, model=MODEL, slo=Slo(5, 0.5), interval=1.0)
    assert result.replica_hours == pytest.approx(0.0, abs=1e-6)  # the first job starts on a sliver of service


def test_caps_that_make_the_slo_impossible_are_reported() -> None:
    log = RequestLog(tuple(Request(100.0, 50.0) for _ in range(4)))
    spec = policy(targets=[{"name": "aws", "maxReplicas": 2}], minReplicas=0, maxReplicas=20)
    result = bound(spec, log, primary_capacity=0, model=MODEL, slo=Slo(5, 1.0), interval=1.0)
    assert not result.feasible
    assert "no schedule meets 100.00% within 5 s" in result.message


@pytest.mark.parametrize("per_replica", [2, 5, 10, 20])
@pytest.mark.parametrize("lead", [None, 20])
def test_never_above_a_simulated_schedule_that_meets_the_slo(per_replica: int, lead: int | None) -> None:
    """The bound's promise, checked against the real replay of several policies on a bursty tiny trace."""
    reqs = [Request(float(t), 4.0) for t in range(0, 60, 2)]
    reqs += [Request(120.0 + i * 0.1, 6.0) for i in range(60)] + [Request(300.0 + t, 3.0) for t in range(40)]
    log = RequestLog(tuple(reqs))
    behavior: dict[str, object] = {"pollIntervalSeconds": 5, "scaleDownStabilizationSeconds": 30}
    if lead:
        behavior["predictive"] = {"enabled": True, "leadSeconds": lead}
    spec = policy(
        targets=[{"name": "aws"}],
        minReplicas=1,
        maxReplicas=60,
        metric={"targetPerReplica": per_replica},
        behavior=behavior,
    )
    model = ServiceModel(tokens_per_second=1.0, startup_seconds={"primary": 5, "aws": 15})
    sim = run(spec, log, primary_capacity=3, model=model, slo=Slo(30, 0.5))
    target = sim.slo_attainment or 0.0
    result = bound(spec, log, primary_capacity=3, model=model, slo=Slo(30, target))
    assert result.feasible
    assert result.replica_hours <= sim.secondary_replica_hours + 1e-6, (result, sim)


@pytest.mark.parametrize("seed", range(6))
def test_never_above_random_replays(seed: int) -> None:
    """Random bursty traces, policies, caps, start-ups, steps and SLO waits: the bound stays below the replay."""
    rng = random.Random(seed)
    reqs, t = [], 0.0
    while t < 400:
        t += rng.expovariate(rng.choice([0.5, 2.0, 5.0]))
        if rng.random() < 0.02:
            reqs += [Request(t, rng.uniform(1, 20)) for _ in range(rng.randint(5, 40))]
        reqs.append(Request(t, rng.uniform(0.5, 10)))
    log = RequestLog(tuple(sorted(reqs, key=lambda r: r.t)))
    behavior: dict[str, object] = {
        "pollIntervalSeconds": rng.choice([1, 5, 10]),
        "scaleDownStabilizationSeconds": rng.choice([0, 30, 120]),
        "minBurstDurationSeconds": rng.choice([0, 60]),
    }
    if rng.random() < 0.5:
        behavior["predictive"] = {"enabled": True, "leadSeconds": rng.choice([10, 30, 60])}
    spec = policy(
        targets=[{"name": "aws", "maxReplicas": rng.choice([5, 20, 60])}, {"name": "gcp", "priority": 1}],
        minReplicas=rng.choice([0, 1, 2]),
        maxReplicas=80,
        metric={"targetPerReplica": rng.choice([1, 3, 10])},
        behavior=behavior,
    )
    model = ServiceModel(
        tokens_per_second=rng.choice([1.0, 3.0]),
        startup_seconds={"primary": rng.choice([0, 5, 20]), "aws": rng.choice([0, 10, 40]), "gcp": 60},
    )
    wait, step, cap = rng.choice([2, 5, 10, 30]), rng.choice([1.0, 0.5]), rng.choice([0, 1, 3, 6])
    sim = run(spec, log, primary_capacity=cap, model=model, slo=Slo(wait, 0.5), step=step)
    assert sim.slo_attainment
    result = bound(spec, log, primary_capacity=cap, model=model, slo=Slo(wait, sim.slo_attainment), step=step)
    assert result.feasible
    assert result.replica_hours <= sim.secondary_replica_hours + 1e-6, (result, sim)
