"""Queue depth -> recommended total replicas (like the HPA's replica calculator, for a queue)."""

from __future__ import annotations

import math

from overspill.api.policy import BurstPolicySpec

# fewer samples than this cannot tell a trend from one outlier: no projection
MIN_TREND_SAMPLES = 4
# bounds what is kept in status whatever the window and poll interval
MAX_TREND_SAMPLES = 32

Samples = tuple[tuple[float, float], ...]


def record_sample(samples: Samples, now: float, value: float, window_seconds: float) -> Samples:
    """Append (now, value); keep only the window (and nothing from the future, should the clock step back)."""
    start = now - window_seconds
    kept = [s for s in samples if start < s[0] < now]
    kept.append((now, value))
    return tuple(kept[-MAX_TREND_SAMPLES:])


def trend_slope(samples: Samples) -> float | None:
    """Siegel's repeated-median slope: for each sample the median slope to every other, then the median of
    those. Half the samples may be outliers before it moves (a two-point or least-squares slope moves with
    one); with a single outlier among >= 4 samples of a straight line it returns the line's slope exactly.

    Runs on every decision of a predictive policy: one comprehension per sample (`t != ti` leaves out the sample
    itself and any taken at the same time, as the definition does) and the medians inline."""
    if len(samples) < MIN_TREND_SAMPLES:
        return None
    per_sample = []
    for ti, vi in samples:
        slopes = [(v - vi) / (t - ti) for t, v in samples if t != ti]
        if slopes:
            slopes.sort()
            n = len(slopes)
            h = n >> 1
            per_sample.append(slopes[h] if n & 1 else (slopes[h - 1] + slopes[h]) / 2)
    return _median(per_sample) if per_sample else None


def _median(values: list[float]) -> float:
    """statistics.median, the same arithmetic without its type dispatch."""
    values.sort()
    n = len(values)
    if n % 2 == 1:
        return values[n // 2]
    i = n // 2
    return (values[i - 1] + values[i]) / 2


def projected_metric(value: float, samples: Samples, lead_seconds: float) -> float:
    """The queue `lead_seconds` ahead on its fitted trend; only ever raises the value (bursts early, never late)."""
    slope = trend_slope(samples)
    if slope is None:
        return value
    return value + max(0.0, slope) * lead_seconds


def recommend(spec: BurstPolicySpec, value: float) -> int:
    m = spec.metric
    return recommend_within(value, m.activation_threshold, m.target_per_replica, spec.min_replicas, spec.max_replicas)


def recommend_within(value: float, activation: float, per_replica: float, lo: int, hi: int) -> int:
    """`recommend` with the policy's figures read once (the engine's hot path)."""
    if value <= activation:
        return lo
    # the epsilon keeps 150/10 at 15 despite float noise in the metric
    raw = math.ceil(value / per_replica - 1e-9)
    # clamp(raw, lo, hi), inline: once per decision
    capped = hi if hi <= raw else raw
    return lo if lo >= capped else capped


def clamp(value: int, lo: int, hi: int) -> int:
    """max(lo, min(hi, value)), as conditional expressions: several times faster than the two builtin calls, and
    this runs on every decision of every replay."""
    capped = hi if hi <= value else value
    return lo if lo >= capped else capped
