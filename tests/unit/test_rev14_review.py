"""Review of issue 14 (rev14): where the promises of the simulator, the oracle and `overspill tune` still break.

Each test is small and fast (tiny hand-made traces, no ../shared)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from overspill import cli
from overspill.inputerror import InputError
from overspill.oracle import bound
from overspill.simulate import ServiceModel, Slo, run
from overspill.traces import Request, RequestLog, load
from overspill.tune import Knobs, Outcome, Problem, evaluate, min_replica_options, recommend
from tests.unit.engine_helpers import policy


def test_oracle_is_a_lower_bound_for_the_min_replicas_tune_searches() -> None:
    """The oracle takes the policy's own minReplicas as the only primary replicas warm during the primary's
    start-up, but tune searches minReplicas up to the primary's capacity (warm from the start, as in the replay).
    A scale-to-zero policy (minReplicas 0), primary capacity 4, primary start-up 35 s: a request every second of
    2 units, 1 unit/s per replica. With minReplicas 4 (one of tune's options) the warm primary serves everything:
    SLO met with 0 secondary replica-hours. The "lower bound" says 0.0145 h: tune's JSON then reports
    oracle_ratio 0.0 (seen: `overspill tune ... --output json` gives "oracle_ratio": 0.0)."""
    spec = policy(targets=[{"name": "aws"}], minReplicas=0, maxReplicas=20, primary={"maxReplicas": 4})
    log = RequestLog(tuple(Request(float(t), 2.0) for t in range(60)))
    model = ServiceModel(tokens_per_second=1.0, startup_seconds={"primary": 35, "aws": 5})
    slo = Slo(10, 1.0)
    problem = Problem(spec, log, {}, 4, model, slo, 1.0, 0.0)
    assert 4 in min_replica_options(problem)  # tune does try it
    tuned = evaluate(replace(Knobs.of(spec), min_replicas=4), problem)
    assert tuned.met
    oracle = bound(spec, log, primary_capacity=4, model=model, slo=slo)  # what `tune` computes
    assert oracle.replica_hours <= tuned.secondary_replica_hours + 1e-6, (oracle, tuned)


def test_oracle_below_the_hand_optimum_with_its_rounding_gap() -> None:
    """Holds (kept as evidence): two jobs of 10 units at t=100, 1 unit/s, 10 s start-up, both must start within 4 s.
    The second starts once 10 units are served by step 104 (11 needed: service must be left over), so at least 3
    replicas, each paying 10 s of start-up: integer optimum 11 + 30 = 41 replica-seconds. The LP's relaxation: 30."""
    spec = policy(targets=[{"name": "aws"}], minReplicas=0, maxReplicas=20)
    log = RequestLog((Request(100.0, 10.0), Request(100.0, 10.0)))
    model = ServiceModel(tokens_per_second=1.0, startup_seconds={"primary": 0, "aws": 10})
    result = bound(spec, log, primary_capacity=0, model=model, slo=Slo(4, 1.0), interval=1.0)
    assert result.feasible
    assert result.replica_hours <= 41 / 3600
    assert result.replica_hours == pytest.approx(30 / 3600, rel=1e-3)
    assert result.rounding_gap_hours == pytest.approx(result.rounded_replica_hours - result.replica_hours, abs=1e-5)


def test_recommend_without_prices_still_picks_the_fewest_replica_hours() -> None:
    """With no costPerReplicaHour on the targets and --primary-cost 0 (both optional), every total_cost is 0, so
    "within 3 % of the cheapest's cost" admits every setting that meets the SLO, and the one with the fewest
    placement changes wins however many secondary replica-hours it spends (a standing fleet never changes)."""
    base = Knobs.of(policy())
    lean = Outcome(base, 0.995, 1.0, 0.0, 40, True)
    standing = Outcome(replace(base, min_replicas=30), 0.999, 25.0, 0.0, 0, True)
    best = lean if lean.better_than(standing) else standing
    assert best is lean
    chosen = recommend([lean, standing], best)
    assert chosen.secondary_replica_hours <= 1.03 * lean.secondary_replica_hours, chosen


def _request_csv(path: Path, rows: list[tuple[int, int, int]]) -> None:
    lines = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    lines += [f"2023-11-16 18:{s // 60:02d}:{s % 60:02d}.0,{c},{g}" for s, c, g in rows]
    path.write_text("\n".join(lines) + "\n")


POLICY = """\
apiVersion: overspill.dev/v1alpha1
kind: BurstPolicy
metadata: {name: p, namespace: ml}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: w}
  metric: {prometheus: {query: q}, targetPerReplica: 1}
  minReplicas: 0
  maxReplicas: 10
  primary: {pendingGracePeriodSeconds: 0}
  targets: [{name: aws}]
  behavior: {pollIntervalSeconds: 1, scaleDownStabilizationSeconds: 0, minBurstDurationSeconds: 0}
---
apiVersion: overspill.dev/v1alpha1
kind: BurstTarget
metadata: {name: aws}
spec:
  kubeconfigSecretRef: {name: k, namespace: overspill-system}
  costPerReplicaHour: 1
  replicaStartupSeconds: 60
"""


def test_tune_refuses_an_slo_no_replica_can_be_ready_for(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No primary (capacity 0), the only target takes 60 s to start, one request at t=0 that must start within
    10 s: no setting can meet 100 %. The oracle's LP calls it feasible at 0 replica-hours (a request with no work
    before it needs "served >= 0", true with no replica at all) and the ceiling replay starts every replica
    instantly, so tune searches and ends with "try a longer --budget" (exit 1) instead of refusing it (exit 2)."""
    _request_csv(tmp_path / "t.csv", [(0, 0, 5)])
    (tmp_path / "p.yaml").write_text(POLICY)
    args = ["tune", "--policy", str(tmp_path / "p.yaml"), "--trace", str(tmp_path / "t.csv")]
    args += ["--primary-capacity", "0", "--tokens-per-second", "1", "--slo-wait", "10s", "--slo-target", "1"]
    args += ["--budget", "1s", "--workers", "1", "--progress", "never"]
    rc = cli.main(args)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "infeasible" in err or "no schedule meets" in err


def test_a_trace_that_is_not_utf8_names_its_file_and_line(tmp_path: Path) -> None:
    """A byte that is not UTF-8 on line 3: the error today is "'utf-8' codec can't decode byte 0xff in position
    95", with neither the file nor the line nor a fix."""
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        b"TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00.0,100,10\n2023-11-16 18:00:01.0,100,1\xff\n"
    )
    with pytest.raises(InputError) as err:
        load(path)
    assert "latin1.csv" in str(err.value) and ":3" in str(err.value)


def test_a_row_with_more_cells_than_the_header_is_refused(tmp_path: Path) -> None:
    """An unquoted thousands separator ("1,024" context tokens) shifts the row: read today as ContextTokens 1 and
    GeneratedTokens 24, the real 10 dropped, silently: a confident wrong answer."""
    path = tmp_path / "t.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00.0,100,10\n2023-11-16 18:00:01.0,1,024,10\n"
    )
    with pytest.raises(InputError) as err:
        load(path)
    assert ":3" in str(err.value)


def test_a_token_count_too_large_for_a_float_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 400-digit ContextTokens (a corrupted row) escapes as OverflowError ("int too large to convert to float"):
    `overspill tune`/`simulate` print a traceback instead of the file, the line and the fix."""
    path = tmp_path / "t.csv"
    path.write_text(
        f"TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00.0,100,10\n2023-11-16 18:00:01.0,{'9' * 400},10\n"
    )
    with pytest.raises(InputError) as err:
        load(path)
    assert ":3" in str(err.value) and "ContextTokens" in str(err.value)


def test_a_request_never_served_misses_the_slo_whatever_the_wait() -> None:
    """No replica ever (primary capacity 0, no targets): the request is never served. The replay gives up an hour
    after the trace and counts it with the wait so far (3,601 s), which meets an SLO of 2 h: attainment 100 %."""
    spec = policy(targets=[], minReplicas=1, maxReplicas=5)
    log = RequestLog((Request(0.0, 5.0),))
    s = run(spec, log, primary_capacity=0, model=ServiceModel(tokens_per_second=1.0), slo=Slo(7200, 0.99))
    assert s.unfinished_requests == 1
    assert s.slo_attainment == 0.0 and not s.slo_met


def test_slo_met_is_not_rounded_up() -> None:
    """Three requests of 10 units on one warm replica start at 0, 10 and 20 s: 2 of 3 within 10 s (66.67 %). An SLO
    of 66.6667 % is missed, but attainment is rounded to 5 decimals (0.66667) before the comparison: "met"."""
    spec = policy(targets=[], minReplicas=1, maxReplicas=1)
    log = RequestLog(tuple(Request(0.0, 10.0) for _ in range(3)))
    s = run(
        spec,
        log,
        primary_capacity=1,
        model=ServiceModel(tokens_per_second=1.0, startup_seconds={"primary": 0}),
        slo=Slo(10, 0.666667),
    )
    assert s.mean_wait_seconds == pytest.approx(10.0)
    assert not s.slo_met, s.slo_attainment


# A target named "primary" was kept apart from the primary in the replay's keys; the name is now refused outright
# (tests/unit/test_reserved_target_name.py), by the API server and by every parse of a policy or a target.
