"""Queue depth -> recommended total replicas (like the HPA's replica calculator, for a queue)."""

from __future__ import annotations

import math

from overspill.api.policy import BurstPolicySpec


def projected_metric(value: float, last: tuple[float, float] | None, now: float, lead_seconds: float) -> float:
    """The queue `lead_seconds` ahead on its current trend; only ever raises the value (bursts early, never late)."""
    if last is None or now <= last[0]:
        return value
    slope = (value - last[1]) / (now - last[0])
    return value + max(0.0, slope) * lead_seconds


def recommend(spec: BurstPolicySpec, value: float) -> int:
    if value <= spec.metric.activation_threshold:
        return spec.min_replicas
    # the epsilon keeps 150/10 at 15 despite float noise in the metric
    raw = math.ceil(value / spec.metric.target_per_replica - 1e-9)
    return max(spec.min_replicas, min(spec.max_replicas, raw))
