"""`overspill tune`: the cheapest setting of a policy's knobs that meets an SLO on a trace, against the oracle.

The search replays the trace through the real engine (`simulate.run`) for each candidate: first the policy as
written, then a coarse sweep of the knobs that matter most (in a seeded order), then one-notch moves around the
cheapest setting that meets the SLO (or, while none does, the one closest to it) mixed with random samples of the
whole grid below; at a local optimum that meets the SLO, its longer holds (calm_moves), then the moves around the
calmest setting within CALM_TOLERANCE (recommend), because every placement change is pods created or removed.
It runs on every core, shows progress, and stops at the budget with the best so far. The oracle (`oracle.bound`)
says what no setting can beat; an SLO that even the oracle cannot meet under the caps is refused before any search.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable, Collection, Container
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

import yaml

from overspill.api.policy import BurstPolicySpec, Predictive
from overspill.api.target import BurstTargetSpec
from overspill.inputerror import InputError
from overspill.progress import progress_bar
from overspill.simulate import SCHEMA_VERSION, ServiceModel, Slo, Summary, ceiling, run
from overspill.traces import RequestLog

# the knobs and the values tried; targetPerReplica is searched as a multiple of the policy's own value
TPR_FACTORS = (0.25, 0.35, 0.5, 0.7, 0.85, 1.0, 1.2, 1.5, 2.0)
ACTIVATION = (0.0, 1.0, 5.0)
UP_WINDOWS = (0, 10, 20, 30)
DOWN_WINDOWS = (0, 30, 60, 120, 300)
DWELLS = (0, 30, 60, 120, 300)
LEADS = (0, 20, 40, 60, 90, 120, 180)  # 0: predictive off
TREND_WINDOWS = (40, 60, 120, 240)  # the trend needs 4 samples: at least 4 polls


@dataclass(frozen=True, order=True)
class Knobs:
    target_per_replica: float
    activation_threshold: float
    scale_up_stabilization_seconds: int
    scale_down_stabilization_seconds: int
    min_burst_duration_seconds: int
    predictive_lead_seconds: int  # 0 = off
    predictive_window_seconds: int = 60
    # keeping the primary warm costs nothing when its replicas are already paid for (--primary-cost 0)
    min_replicas: int = 1

    def __post_init__(self) -> None:
        if not self.predictive_lead_seconds:
            # the trend window means nothing with prediction off: one setting, not four
            object.__setattr__(self, "predictive_window_seconds", Predictive().window_seconds)

    @staticmethod
    def of(spec: BurstPolicySpec) -> Knobs:
        b, pred = spec.behavior, spec.behavior.predictive
        return Knobs(
            spec.metric.target_per_replica,
            spec.metric.activation_threshold,
            b.scale_up_stabilization_seconds,
            b.scale_down_stabilization_seconds,
            b.min_burst_duration_seconds,
            pred.lead_seconds if pred is not None and pred.enabled else 0,
            pred.window_seconds if pred is not None else Predictive().window_seconds,
            spec.min_replicas,
        )

    def apply(self, spec: BurstPolicySpec) -> BurstPolicySpec:
        pred = spec.behavior.predictive
        if self.predictive_lead_seconds:
            pred = (pred or Predictive()).model_copy(
                update={
                    "enabled": True,
                    "lead_seconds": self.predictive_lead_seconds,
                    "window_seconds": self.predictive_window_seconds,
                }
            )
        elif pred is not None:
            pred = pred.model_copy(update={"enabled": False})
        behavior = spec.behavior.model_copy(
            update={
                "scale_up_stabilization_seconds": self.scale_up_stabilization_seconds,
                "scale_down_stabilization_seconds": self.scale_down_stabilization_seconds,
                "min_burst_duration_seconds": self.min_burst_duration_seconds,
                "predictive": pred,
            }
        )
        metric = spec.metric.model_copy(
            update={"target_per_replica": self.target_per_replica, "activation_threshold": self.activation_threshold}
        )
        return spec.model_copy(update={"metric": metric, "behavior": behavior, "min_replicas": self.min_replicas})

    def patch(self, before: Knobs) -> dict[str, Any]:
        """A merge patch to the policy: only what changes."""
        spec: dict[str, Any] = {}
        if self.min_replicas != before.min_replicas:
            spec["minReplicas"] = self.min_replicas
        if self.target_per_replica != before.target_per_replica:
            spec.setdefault("metric", {})["targetPerReplica"] = self.target_per_replica
        if self.activation_threshold != before.activation_threshold:
            spec.setdefault("metric", {})["activationThreshold"] = self.activation_threshold
        behavior: dict[str, Any] = {}
        for field, key in (
            ("scale_up_stabilization_seconds", "scaleUpStabilizationSeconds"),
            ("scale_down_stabilization_seconds", "scaleDownStabilizationSeconds"),
            ("min_burst_duration_seconds", "minBurstDurationSeconds"),
        ):
            if getattr(self, field) != getattr(before, field):
                behavior[key] = getattr(self, field)
        if self.predictive_lead_seconds and (
            self.predictive_lead_seconds != before.predictive_lead_seconds
            or self.predictive_window_seconds != before.predictive_window_seconds
        ):
            behavior["predictive"] = {
                "enabled": True,
                "leadSeconds": self.predictive_lead_seconds,
                "windowSeconds": self.predictive_window_seconds,
            }
        elif not self.predictive_lead_seconds and before.predictive_lead_seconds:
            behavior["predictive"] = {"enabled": False}
        if behavior:
            spec["behavior"] = behavior
        return {"spec": spec} if spec else {}


@dataclass(frozen=True)
class Outcome:
    knobs: Knobs
    slo_attainment: float
    secondary_replica_hours: float
    total_cost: float
    placement_changes: int
    met: bool

    def better_than(self, other: Outcome | None) -> bool:
        """Meeting the SLO first; then cheaper; then calmer (fewer placement changes)."""
        if other is None:
            return True
        if self.met != other.met:
            return self.met
        if not self.met:
            return self.slo_attainment > other.slo_attainment
        return (self.total_cost, self.secondary_replica_hours, self.placement_changes) < (
            other.total_cost,
            other.secondary_replica_hours,
            other.placement_changes,
        )

    def figures(self) -> dict[str, Any]:
        return {
            "slo_attainment": self.slo_attainment,
            "secondary_replica_hours": self.secondary_replica_hours,
            "total_cost": self.total_cost,
            "placement_changes": self.placement_changes,
            "slo_met": self.met,
        }


@dataclass(frozen=True)
class Problem:
    spec: BurstPolicySpec
    trace: RequestLog
    targets: dict[str, BurstTargetSpec]
    primary_capacity: int | None
    model: ServiceModel
    slo: Slo
    step: float
    primary_cost: float


_PROBLEM: Problem | None = None  # per worker process: the trace is sent once, not with every candidate


def _init(problem: Problem) -> None:
    global _PROBLEM  # noqa: PLW0603 - one problem per worker process
    _PROBLEM = problem


def evaluate(knobs: Knobs, problem: Problem | None = None) -> Outcome:
    p = problem or _PROBLEM
    assert p is not None
    s: Summary = run(
        knobs.apply(p.spec),
        p.trace,
        targets=p.targets,
        primary_capacity=p.primary_capacity,
        step=p.step,
        model=p.model,
        primary_cost_per_hour=p.primary_cost,
        slo=p.slo,
    )
    attained = s.slo_attainment or 0.0
    return Outcome(knobs, attained, s.secondary_replica_hours, s.total_cost, s.placement_changes, bool(s.slo_met))


def _warm_primary(problem: Problem) -> int | None:
    """minReplicas that keeps the primary full (its capacity, within maxReplicas and fallback.replicas)."""
    spec = problem.spec
    caps = [c for c in (problem.primary_capacity, spec.primary.max_replicas) if c is not None]
    if not caps:
        return None
    return max(spec.min_replicas, min(*caps, spec.max_replicas))


# standing secondaries tried above a full primary: these counts, and these shares of the room the targets' caps leave
STANDING = (1, 2)
STANDING_SHARES = (0.1, 0.2, 0.3, 0.5)


def min_replica_options(problem: Problem) -> tuple[int, ...]:
    """The policy's own minReplicas, the primary half or fully warm, and a few standing secondaries above it.

    Standing secondaries matter on spiky traces: a spike shorter than a secondary's start-up is served only by
    replicas already Ready, so a small standing fleet plus bursting for the rest can beat bursting alone (on the
    Azure code trace, 4 standing secondaries gave 4.4 h where the best without was 7.2 h, docs/benchmarks.md).
    The fallback's replicas bound them all (the API server requires fallback.replicas >= minReplicas)."""
    spec = problem.spec
    warm = _warm_primary(problem)
    if warm is None:
        return (spec.min_replicas,)
    highest = spec.max_replicas
    if spec.fallback.replicas is not None:
        highest = min(highest, spec.fallback.replicas)
    warm = min(warm, highest)
    room = 0
    for pt in spec.targets:
        bt = problem.targets.get(pt.name)
        caps = [c for c in (pt.max_replicas, bt.max_replicas if bt else None) if c is not None]
        room += min(caps) if caps else spec.max_replicas
    room = max(0, min(room, highest - warm))
    standing = {warm + n for n in STANDING if n <= room} | {warm + max(1, round(room * f)) for f in STANDING_SHARES}
    options = {spec.min_replicas, max(spec.min_replicas, (warm + 1) // 2), warm} | {
        n for n in standing if n <= warm + room
    }
    return tuple(sorted(o for o in options if o >= spec.min_replicas))


def _random(rng: random.Random, base: Knobs, mins: tuple[int, ...]) -> Knobs:
    return Knobs(
        round(base.target_per_replica * rng.choice(TPR_FACTORS), 3),
        rng.choice((*ACTIVATION, base.activation_threshold)),
        rng.choice(UP_WINDOWS),
        rng.choice(DOWN_WINDOWS),
        rng.choice(DWELLS),
        rng.choice(LEADS),
        rng.choice(TREND_WINDOWS),
        rng.choice(mins),
    )


def _sweep(base: Knobs, mins: tuple[int, ...], warm: int | None) -> list[Knobs]:
    """A coarse grid over the knobs that move cost and SLO most (a few hundred settings): as written, the primary
    kept full, and that with two standing secondaries."""
    out = []
    levels = {base.min_replicas}
    if warm is not None:
        levels.add(warm)
        above = [m for m in mins if m > warm]
        if above:
            levels.add(above[min(1, len(above) - 1)])
    for m in sorted(levels):
        for f in TPR_FACTORS:
            for down in (0, 60, 300):
                for dwell in (0, 60, 300):  # from no hold to the longest: the calm settings (calm_moves)
                    for lead in (0, 120):
                        out.append(
                            Knobs(
                                round(base.target_per_replica * f, 3),
                                base.activation_threshold,
                                0,
                                down,
                                dwell,
                                lead,
                                base.predictive_window_seconds,
                                m,
                            )
                        )
    return out


def _tpr_notches(k: Knobs, base: Knobs) -> list[float]:
    """The targetPerReplica values the search moves between (the policy's own times TPR_FACTORS), with k's, sorted."""
    return sorted({round(base.target_per_replica * f, 3) for f in TPR_FACTORS} | {k.target_per_replica})


def _neighbours(k: Knobs, base: Knobs, mins: tuple[int, ...]) -> list[Knobs]:
    """One knob one notch either way."""
    out = []
    tprs = _tpr_notches(k, base)
    options: list[tuple[str, tuple[Any, ...]]] = [
        ("target_per_replica", tuple(tprs)),
        ("activation_threshold", tuple(sorted({*ACTIVATION, base.activation_threshold}))),
        ("scale_up_stabilization_seconds", UP_WINDOWS),
        ("scale_down_stabilization_seconds", DOWN_WINDOWS),
        ("min_burst_duration_seconds", DWELLS),
        ("predictive_lead_seconds", LEADS),
        ("predictive_window_seconds", TREND_WINDOWS),
        ("min_replicas", mins),
    ]
    for field, values in options:
        current = getattr(k, field)
        i = min(range(len(values)), key=lambda j: abs(values[j] - current))
        for j in (i - 1, i + 1):
            if 0 <= j < len(values) and values[j] != current:
                out.append(Knobs(**{**k.__dict__, field: values[j]}))
    return out


def calm_moves(k: Knobs, base: Knobs) -> list[Knobs]:
    """The setting with a longer hold: each longer minBurstDurationSeconds and scaleDownStabilizationSeconds, alone
    and with targetPerReplica one notch up.

    Every placement change is pods created or removed in some cluster, which the cost figure does not show; these
    are the knobs that exist to make fewer of them. A longer hold keeps a burst's replicas for the next burst, which
    is also what lets fewer replicas per queued job (a larger targetPerReplica) meet the same SLO: the two move
    together, so a one-notch move of either alone (dearer, or missing the SLO) never reaches the pair. On the CI day
    (95 % within 300 s) the cheapest one-notch optimum changed placement 61 times in 24 h; a hold of 300 s with
    targetPerReplica one notch up met the SLO for no more replica-hours with 21 changes."""
    tprs = _tpr_notches(k, base)
    i = tprs.index(k.target_per_replica)
    fewer = tprs[i + 1] if i + 1 < len(tprs) else None
    out = []
    for field, values in (("min_burst_duration_seconds", DWELLS), ("scale_down_stabilization_seconds", DOWN_WINDOWS)):
        for v in values:
            if v > getattr(k, field):
                held = replace(k, **{field: v})
                out.append(held)
                if fewer is not None:
                    out.append(replace(held, target_per_replica=fewer))
    return out


def local_moves(
    best: Outcome, outcomes: Collection[Outcome], tried: Container[Knobs], base: Knobs, mins: tuple[int, ...]
) -> list[Knobs]:
    """The moves around the best not tried yet: its one-notch neighbours; once all are tried (a local optimum) and
    it meets the SLO, its calm moves (longer holds, which may be cheaper still); once those are tried too, the
    neighbours and calm moves of recommend()'s pick, which walk towards fewer placement changes within
    CALM_TOLERANCE of the cheapest. recommend() can only choose among settings tried, and the cheapest setting's
    one-notch moves are each dearer or miss the SLO, so without these it would rarely see a calm one."""
    moves = [m for m in _neighbours(best.knobs, base, mins) if m not in tried]
    if moves or not best.met:
        return moves
    moves = [m for m in calm_moves(best.knobs, base) if m not in tried]
    if moves:
        return moves
    calm = recommend(list(outcomes), best).knobs
    return [m for m in (*_neighbours(calm, base, mins), *calm_moves(calm, base)) if m not in tried]


@dataclass
class Search:
    outcomes: dict[Knobs, Outcome]
    best: Outcome
    before: Outcome
    elapsed_seconds: float
    stopped_by_budget: bool


def search(
    problem: Problem,
    *,
    budget_seconds: float,
    workers: int,
    seed: int = 1,
    max_evaluations: int = 4000,
    on_progress: Callable[[int, float], None] | None = None,
) -> Search:
    started = time.monotonic()
    deadline = started + budget_seconds
    rng = random.Random(seed)
    base = Knobs.of(problem.spec)
    mins = min_replica_options(problem)
    before = evaluate(base, problem)
    outcomes: dict[Knobs, Outcome] = {base: before}
    best = before
    queue: list[Knobs] = []
    seen = {base}
    stopped = False

    sweep = _sweep(base, mins, _warm_primary(problem))
    rng.shuffle(sweep)
    # first (popped from the end), the policy as written at each minReplicas: a handful of replays that say which
    # level (a warm primary, standing secondaries) the moves around the best start from
    sweep.extend(replace(base, min_replicas=m) for m in mins if m != base.min_replicas)

    def propose() -> Knobs | None:
        # half the time the coarse sweep of the knobs that matter most, else moves around the best or random ones
        for _ in range(200):
            if sweep and (rng.random() < 0.5 or len(outcomes) < 48):
                k = sweep.pop()
            elif queue:
                k = queue.pop()
            elif rng.random() < 0.3 or len(outcomes) < 48:
                k = _random(rng, base, mins)
            else:
                moves = local_moves(best, outcomes.values(), seen, base, mins)
                queue.extend(rng.sample(moves, k=len(moves)))
                continue
            if k not in seen:
                seen.add(k)
                return k
        return None

    with ProcessPoolExecutor(max_workers=workers, initializer=_init, initargs=(problem,)) as pool:
        running: set[Future[Outcome]] = set()
        while True:
            while len(running) < workers * 2 and len(outcomes) + len(running) < max_evaluations:
                k = propose()
                if k is None:
                    break
                running.add(pool.submit(evaluate, k))
            if not running:
                break
            done, running = wait(running, timeout=max(0.0, deadline - time.monotonic()), return_when=FIRST_COMPLETED)
            for f in done:
                o = f.result()
                outcomes[o.knobs] = o
                if o.better_than(best):
                    best = o
                    queue.clear()  # move around the new best
            if on_progress is not None:
                on_progress(len(outcomes), time.monotonic() - started)
            if time.monotonic() >= deadline:
                stopped = True
                for f in running:
                    f.cancel()
                break
    return Search(
        outcomes, recommend(list(outcomes.values()), best), before, round(time.monotonic() - started, 2), stopped
    )


# a setting this much dearer than the cheapest that meets the SLO may be recommended if it changes placement less
CALM_TOLERANCE = 0.03


def recommend(outcomes: list[Outcome], best: Outcome) -> Outcome:
    """The cheapest setting that meets the SLO, unless one within 3 % of its cost and of its secondary replica-hours
    changes placement far less: every change is pods created or removed in some cluster, which the cost figure does
    not show. Replica-hours too, not cost alone: without prices (no costPerReplicaHour, --primary-cost 0) every
    cost is 0, and a standing fleet that never changes would win whatever it spends."""
    if not best.met:
        return best
    near = [
        o
        for o in outcomes
        if o.met
        and o.total_cost <= best.total_cost * (1 + CALM_TOLERANCE) + 1e-9
        and o.secondary_replica_hours <= best.secondary_replica_hours * (1 + CALM_TOLERANCE) + 1e-9
    ]
    return min(near, key=lambda o: (o.placement_changes, o.total_cost, o.secondary_replica_hours))


def frontier(outcomes: list[Outcome]) -> list[Outcome]:
    """Settings no other setting beats on both SLO attainment and secondary replica-hours."""
    ordered = sorted(outcomes, key=lambda o: (o.secondary_replica_hours, -o.slo_attainment))
    out: list[Outcome] = []
    for o in ordered:
        if not out or o.slo_attainment > out[-1].slo_attainment:
            out.append(o)
    return out


def _draw(path: str, result: Search, oracle_hours: float | None, slo: Slo, title: str) -> None:
    from overspill.plot import pyplot

    plt = pyplot()
    pts = list(result.outcomes.values())
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.scatter(
        [o.secondary_replica_hours for o in pts], [o.slo_attainment for o in pts], s=8, c="#bbb", label="settings tried"
    )
    front = frontier(pts)
    ax.step(
        [o.secondary_replica_hours for o in front],
        [o.slo_attainment for o in front],
        where="post",
        color="#3b7dd8",
        label="frontier",
    )
    ax.scatter(
        [result.before.secondary_replica_hours], [result.before.slo_attainment], c="#e15759", label="policy as written"
    )
    ax.scatter([result.best.secondary_replica_hours], [result.best.slo_attainment], c="#59a14f", label="recommended")
    ax.axhline(slo.target, color="black", ls=":", lw=1, label=f"SLO {slo.target:.0%} within {slo.wait_seconds:g} s")
    if oracle_hours is not None and math.isfinite(oracle_hours):
        ax.axvline(oracle_hours, color="#b07aa1", ls="--", lw=1, label="oracle (lower bound)")
    ax.set_xlabel("secondary replica-hours")
    ax.set_ylabel(f"share of requests waiting <= {slo.wait_seconds:g} s")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def command(args: argparse.Namespace, setup: tuple[Any, Any, ServiceModel]) -> int:
    """The CLI: oracle, search, then the patch and the figures (text or one JSON object)."""
    from overspill import oracle

    pf, trace, model = setup
    if not isinstance(trace, RequestLog):
        raise InputError(
            args.trace,
            "tune needs a request log (TIMESTAMP,ContextTokens,GeneratedTokens or synthetic:ci-day): an SLO on "
            "waits needs requests, a metric trace has none",
            fix="pass a request log",
        )
    slo = Slo(args.slo_wait, args.slo_target)
    problem = Problem(pf.spec, trace, dict(pf.targets), args.primary_capacity, model, slo, args.step, args.primary_cost)
    bound = oracle.bound(
        pf.spec, trace, targets=pf.targets, primary_capacity=args.primary_capacity, model=model, slo=slo, step=args.step
    )
    if not bound.feasible:
        print(
            f"error: {bound.message}: no setting of this policy can meet it. Raise the caps (maxReplicas of the "
            "policy and its targets, --primary-capacity), shorten start-up, or relax --slo-wait/--slo-target.",
            file=sys.stderr,
        )
        return 2
    # every replica the caps allow, Ready all the time: what no schedule beats (one replay; the oracle's LP is a
    # relaxation and can call an SLO feasible that this shows is not)
    most = ceiling(
        pf.spec, trace, targets=pf.targets, primary_capacity=args.primary_capacity, model=model, slo=slo, step=args.step
    )
    if not most.slo_met:
        print(
            f"error: {slo.target:.2%} of requests within {slo.wait_seconds:g} s is infeasible under the caps: with "
            "every replica they allow Ready from the start and never removed, "
            f"{most.slo_attainment:.2%} are; no setting of this policy can meet it. Raise the caps (maxReplicas of "
            "the policy and its targets, --primary-capacity), or relax --slo-wait/--slo-target.",
            file=sys.stderr,
        )
        return 2
    workers = args.workers or os.cpu_count() or 1
    remaining = max(1.0, args.budget - bound.solve_seconds)
    with progress_bar("tuning", remaining, args.progress) as progress:
        result = search(
            problem,
            budget_seconds=remaining,
            workers=workers,
            seed=args.seed,
            on_progress=(lambda _n, t: progress(t)) if progress else None,
        )
    best, before = result.best, result.before
    ratio = best.secondary_replica_hours / bound.replica_hours if bound.replica_hours > 0 else None
    patch = best.knobs.patch(before.knobs) if best.better_than(before) else {}
    report = {
        "schema_version": SCHEMA_VERSION,
        "policy": pf.name,
        "trace": args.trace,
        "requests": len(trace.requests),
        "slo": {"wait_seconds": slo.wait_seconds, "target": slo.target},
        "met": best.met,
        "patch": patch,
        "before": before.figures(),
        "after": best.figures(),
        "slo_attainment": best.slo_attainment,
        "secondary_replica_hours": best.secondary_replica_hours,
        "oracle_replica_hours": bound.replica_hours,
        "oracle_rounded_replica_hours": bound.rounded_replica_hours,
        "oracle_ratio": None if ratio is None else round(ratio, 3),
        "evaluated": len(result.outcomes),
        "elapsed_seconds": round(result.elapsed_seconds + bound.solve_seconds, 2),
        "stopped_by_budget": result.stopped_by_budget,
        "workers": workers,
    }
    if args.plot:
        _draw(
            args.plot, result, bound.replica_hours, slo, f"{pf.name}: cost and SLO of {len(result.outcomes)} settings"
        )
    if args.output == "json":
        print(json.dumps(report))
        return 0 if best.met else 1
    _print_report(report, pf.name)
    return 0 if best.met else 1


def _print_report(r: dict[str, Any], name: str) -> None:
    slo = r["slo"]
    print(
        f"SLO: {slo['target']:.2%} of requests wait <= {slo['wait_seconds']:g} s; {r['evaluated']} settings in "
        f"{r['elapsed_seconds']:g} s on {r['workers']} workers"
        + (" (stopped at the budget)" if r["stopped_by_budget"] else "")
    )
    for label, f in (("as written", r["before"]), ("recommended", r["after"])):
        print(
            f"  {label:<12} SLO {f['slo_attainment']:.2%} ({'met' if f['slo_met'] else 'missed'}); secondary "
            f"{f['secondary_replica_hours']:.2f} replica-h; cost {f['total_cost']:.2f}; "
            f"{f['placement_changes']} placement changes"
        )
    ratio = "-" if r["oracle_ratio"] is None else f"{r['oracle_ratio']:.2f}x"
    print(f"  oracle (lower bound) {r['oracle_replica_hours']:.2f} replica-h: recommended is {ratio} of it")
    if not r["met"]:
        print("  no setting tried meets the SLO: the closest is shown; try a longer --budget or relax the SLO")
    if r["patch"]:
        print(f"\nkubectl patch burstpolicy {name} --type merge -p '{json.dumps(r['patch'])}'\n# or, as YAML:")
        print(yaml.safe_dump(r["patch"], sort_keys=False).rstrip())
    else:
        print("\nthe policy as written is already the best setting found: no change")
