"""The clairvoyant lower bound: the fewest secondary replica-hours any schedule could spend and still meet the SLO
on a known trace, under the simulator's own service model (docs/simulator.md, "The oracle").

A linear program over intervals of `interval` seconds, solved with HiGHS (scipy). Every constraint is implied by
the simulator's rules, so every schedule the simulator can run — whatever policy drives it, even one that knows
the future — maps to a feasible point of the program with the same secondary replica-hours: the optimum is a
**lower bound**, never a heuristic schedule. What is relaxed (each only loosens the bound):

- replica counts are fractional, and may change at any time, not only every poll;
- the primary may be Ready up to its capacity from the start: the replay starts with minReplicas warm, and
  `overspill tune` searches minReplicas up to the primary's capacity, so the bound holds for every one of them
  (the primary's start-up then plays no part);
- a replica Ready at some time in interval k was paying through every interval wholly inside its start-up before;
- service is pooled (a fluid FIFO queue): what is served by the end of an interval is at most what arrived and at
  most what the Ready replicas could serve in it;
- request i (FIFO) can start within W only if the work before it, C_i, was served by the end of the interval
  holding its deadline. The number of requests meeting the SLO with the same deadline interval is at most the
  staircase #{i: C_i <= D}, replaced by its upper concave envelope over the D that interval must reach anyway
  (the next rule), a few linear cuts;
- a request starts only on a Ready replica: one whose wait ends before any replica can be Ready (no primary, and
  every target's start-up longer) is a miss whatever the schedule (the only use of start-up beyond the above);
- at most M = N - ceil(target * N) requests may miss, so among any M+1 consecutive requests one starts in time:
  the work before request i is served by the deadline of request i+M (exact, no relaxation needed).

Replicas per interval rounded up give `rounded_replica_hours`; the difference is reported as the rounding gap.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from overspill.api.policy import BurstPolicySpec
from overspill.api.target import BurstTargetSpec
from overspill.simulate import ServiceModel, Slo
from overspill.traces import RequestLog

EPS = 1e-9


@dataclass(frozen=True)
class OracleResult:
    feasible: bool
    replica_hours: float  # the LP optimum: no schedule meets the SLO with fewer secondary replica-hours
    rounded_replica_hours: float  # the LP's replicas per interval rounded up
    rounding_gap_hours: float
    interval_seconds: float
    intervals: int
    solve_seconds: float
    message: str

    def as_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def default_interval(slo: Slo, step: float, horizon: float) -> float:
    """Finer intervals tighten the bound; a quarter of the SLO wait, at least one step, at most 20,000 intervals."""
    interval = max(step, step * math.floor(slo.wait_seconds / 4 / step))
    while horizon / interval > 20_000:
        interval += step
    return interval


def _upper_hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Upper concave envelope of points sorted by x (Andrew's monotone chain, upper half)."""
    hull: list[tuple[float, float]] = []
    for p in points:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            # drop the middle point when it lies on or below the chord from hull[-2] to p
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:
                hull.pop()
            else:
                break
        hull.append(p)
    return hull


def _slo_cuts(prior_work: list[float], floor: float) -> list[tuple[float, float]]:
    """(intercept, slope) cuts with count <= intercept + slope * D, for requests whose prior work is `prior_work`,
    valid for every D >= `floor` (the served work the interval is already known to need)."""
    ranks: dict[float, int] = {}
    for i, c in enumerate(sorted(prior_work), start=1):
        ranks[c] = i  # ties: the staircase jumps to the last rank
    at_floor = max((n for c, n in ranks.items() if c <= floor), default=0)
    points: list[tuple[float, float]] = [(floor, float(at_floor))]
    points += [(c, float(n)) for c, n in sorted(ranks.items()) if c > floor]
    hull = _upper_hull(points)
    cuts = []
    for (x1, y1), (x2, y2) in itertools.pairwise(hull):
        slope = (y2 - y1) / (x2 - x1)
        cuts.append((y1 - slope * x1, slope))
    return cuts


def bound(
    spec: BurstPolicySpec,
    log: RequestLog,
    *,
    targets: Mapping[str, BurstTargetSpec] | None = None,
    primary_capacity: int | None = None,
    model: ServiceModel | None = None,
    slo: Slo | None = None,
    step: float = 1.0,
    interval: float | None = None,
) -> OracleResult:
    try:
        import numpy as np
        from scipy.optimize import linprog
        from scipy.sparse import coo_matrix
    except ImportError as err:  # optional extra
        raise SystemExit("the oracle needs scipy: pip install 'overspill[tune]'") from err

    started = time.perf_counter()
    model = model or ServiceModel()
    slo = slo or Slo()
    targets = targets or {}
    dt = step
    reqs = log.requests
    horizon = (reqs[-1].t if reqs else 0.0) + slo.wait_seconds + 2 * dt
    delta = interval or default_interval(slo, dt, horizon)
    if delta < dt or abs(delta / dt - round(delta / dt)) > 1e-6:
        raise ValueError(f"interval {delta:g} s must be a whole number of steps of {dt:g} s")
    k_count = math.ceil(horizon / delta) + 1
    caps_p = [c for c in (primary_capacity, spec.primary.max_replicas, spec.max_replicas) if c is not None]
    p_cap = float(min(caps_p))
    names = [t.name for t in spec.targets]
    t_caps, t_startup = [], []
    for pt in spec.targets:
        bt = targets.get(pt.name)
        caps = [c for c in (pt.max_replicas, bt.max_replicas if bt else None, spec.max_replicas) if c is not None]
        t_caps.append(float(min(caps)))
        t_startup.append(model.target_startup(pt.name, bt))
    tps = model.tokens_per_second
    # the earliest time any replica can be Ready: at once on a warm primary, else a target's start-up after t = 0
    room = [s for s, cap in zip(t_startup, t_caps, strict=True) if cap > 0] if spec.max_replicas > 0 else []
    earliest_ready = -math.inf if p_cap > 0 else min(room, default=math.inf)
    never_ready = 0  # requests whose wait ends before that: misses whatever the schedule

    # cumulative arrivals by interval, and each request's deadline interval and prior work (FIFO)
    arrived = [0.0] * k_count
    groups: dict[int, list[float]] = defaultdict(list)
    deadlines: list[int] = []
    priors: list[float] = []
    prior = 0.0
    for r in reqs:
        added = math.ceil(r.t / dt - EPS) * dt  # the step at which the simulator enqueues it
        arrived[min(k_count - 1, int(added / delta + EPS))] += r.work
        deadline = min(k_count - 1, int((r.t + slo.wait_seconds) / delta + EPS))
        if r.t + slo.wait_seconds + EPS >= earliest_ready:
            groups[deadline].append(prior)
        else:
            never_ready += 1
        deadlines.append(deadline)
        priors.append(prior)
        prior += r.work
    for k in range(1, k_count):
        arrived[k] += arrived[k - 1]
    # At most `misses` requests may wait too long, so among any misses+1 consecutive requests (FIFO) one starts
    # in time, and it starts only once all the work before it is served: the work before request i is served by
    # the deadline of request i+misses. A linear cut, and the one that holds the bound up on spiky traces.
    misses = len(reqs) - math.ceil(slo.target * len(reqs) - EPS)
    served_at_least = [0.0] * k_count
    for j in range(misses, len(reqs)):
        k = deadlines[j]
        served_at_least[k] = max(served_at_least[k], priors[j - misses])
    for k in range(1, k_count):
        served_at_least[k] = max(served_at_least[k], served_at_least[k - 1])

    # variables: y[c,k], r[c,k] per target; p[k]; D[k]; m[g] per deadline group
    n_t = len(names)

    def idx_y(c: int, k: int) -> int:
        return (2 * c) * k_count + k

    def idx_r(c: int, k: int) -> int:
        return (2 * c + 1) * k_count + k

    base_p = 2 * n_t * k_count
    base_d = base_p + k_count
    group_keys = sorted(groups)
    base_m = base_d + k_count
    n_vars = base_m + len(group_keys)
    cost = np.zeros(n_vars)
    bounds: list[tuple[float, float | None]] = [(0.0, None)] * n_vars
    for c in range(n_t):
        for k in range(k_count):
            cost[idx_y(c, k)] = delta / 3600.0
            bounds[idx_y(c, k)] = (0.0, t_caps[c])
            # no replica created at t >= 0 is Ready before its start-up has passed
            too_early = (k + 1) * delta - dt < t_startup[c] - 1e-6
            bounds[idx_r(c, k)] = (0.0, 0.0 if too_early else t_caps[c])
    for k in range(k_count):
        bounds[base_p + k] = (0.0, p_cap)
        bounds[base_d + k] = (served_at_least[k], arrived[k])
    for g, key in enumerate(group_keys):
        bounds[base_m + g] = (0.0, float(len(groups[key])))

    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    rhs: list[float] = []

    def row(entries: list[tuple[int, float]], b: float) -> None:
        i = len(rhs)
        for col, v in entries:
            rows.append(i)
            cols.append(col)
            vals.append(v)
        rhs.append(b)

    for c in range(n_t):
        window = max(0, math.floor((t_startup[c] + dt) / delta + EPS) - 1)
        for k in range(k_count):
            if bounds[idx_r(c, k)][1] == 0.0:
                continue
            for j in range(max(0, k - window), k + 1):
                row([(idx_r(c, k), 1.0), (idx_y(c, j), -1.0)], 0.0)
    for k in range(k_count):
        ready = [(base_p + k, -tps * delta)] + [(idx_r(c, k), -tps * delta) for c in range(n_t)]
        # served in interval k (D[k] - D[k-1]) within the Ready replicas' capacity, and never negative
        row([(base_d + k, 1.0)] + ([(base_d + k - 1, -1.0)] if k else []) + ready, 0.0)
        if k:
            row([(base_d + k - 1, 1.0), (base_d + k, -1.0)], 0.0)
        row([(base_p + k, 1.0)] + [(idx_r(c, k), 1.0) for c in range(n_t)], float(spec.max_replicas))
    for g, key in enumerate(group_keys):
        for intercept, slope in _slo_cuts(groups[key], served_at_least[key]):
            row([(base_m + g, 1.0), (base_d + key, -slope)], intercept)
    need = slo.target * len(reqs)
    row([(base_m + g, -1.0) for g in range(len(group_keys))], -need + 1e-9)

    a_ub = coo_matrix((vals, (rows, cols)), shape=(len(rhs), n_vars)).tocsr()
    res = linprog(cost, A_ub=a_ub, b_ub=np.array(rhs), bounds=bounds, method="highs")
    elapsed = time.perf_counter() - started
    if res.status == 2:
        why = ""
        if never_ready:
            when = f"the quickest target starts in {earliest_ready:g} s" if room else "and no target with room"
            why = f"; {never_ready} of {len(reqs)} requests must start before any replica can be Ready (no primary, "
            why += f"{when})"
        return OracleResult(
            False,
            math.inf,
            math.inf,
            0.0,
            delta,
            k_count,
            round(elapsed, 3),
            f"no schedule meets {slo.target:.2%} within {slo.wait_seconds:g} s under these caps and start-up times "
            f"(the relaxation itself is infeasible){why}",
        )
    if res.status != 0:
        raise RuntimeError(f"the oracle's linear program did not solve: {res.message}")
    x = res.x
    lp = float(res.fun)
    rounded = sum(math.ceil(x[idx_y(c, k)] - 1e-6) for c in range(n_t) for k in range(k_count)) * delta / 3600
    return OracleResult(
        True,
        round(lp, 6),
        round(rounded, 6),
        round(rounded - lp, 6),
        delta,
        k_count,
        round(elapsed, 3),
        "lower bound (LP relaxation, clairvoyant)",
    )
