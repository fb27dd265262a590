"""Trace loaders for the simulator: metric traces, Azure LLM request logs, and synthetic shapes.

The Azure LLM inference trace 2023 (CC-BY 4.0) is by Patel, Choukse, Zhang, Shah, Goiri, Maleki, Bianchini,
"Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024.
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class Request:
    t: float  # seconds from the trace start
    work: float  # token-units of work (see ServiceModel)


@dataclass(frozen=True)
class MetricTrace:
    points: tuple[tuple[float, float], ...]  # (t_seconds, value), sorted

    def value_at(self, t: float, cursor: list[int]) -> float:
        """Step-hold lookup; `cursor` keeps the position so a replay is O(n)."""
        i = cursor[0]
        while i + 1 < len(self.points) and self.points[i + 1][0] <= t:
            i += 1
        cursor[0] = i
        return self.points[i][1]

    @property
    def duration(self) -> float:
        return self.points[-1][0] if self.points else 0.0


@dataclass(frozen=True)
class RequestLog:
    requests: tuple[Request, ...]

    @property
    def duration(self) -> float:
        return self.requests[-1].t if self.requests else 0.0


def _parse_ts(text: str) -> float:
    # 7 fractional digits: datetime takes at most 6
    head, _, frac = text.partition(".")
    return datetime.fromisoformat(head).timestamp() + (float(f"0.{frac}") if frac else 0.0)


def load(path: str | Path, prefill_speedup: float = 10.0) -> MetricTrace | RequestLog:
    """A CSV with header `t_seconds,value` (metric) or `TIMESTAMP,ContextTokens,GeneratedTokens` (requests)."""
    with open(path, newline="") as fh:
        reader = csv.reader(line for line in fh if not line.startswith("#"))
        header = [h.strip() for h in next(reader)]
        rows = list(reader)
    if header[:2] == ["t_seconds", "value"]:
        return MetricTrace(tuple(sorted((float(r[0]), float(r[1])) for r in rows if r)))
    if header[:3] == ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]:
        stamps = [(_parse_ts(r[0]), int(r[1]), int(r[2])) for r in rows if r]
        stamps.sort()
        t0 = stamps[0][0] if stamps else 0.0
        return RequestLog(tuple(Request(t - t0, c / prefill_speedup + g) for t, c, g in stamps))
    raise ValueError(
        f"{path}: unknown trace header {header!r}; expected 't_seconds,value' or "
        "'TIMESTAMP,ContextTokens,GeneratedTokens'"
    )


def synthetic_week(step: float = 10.0, seed: int = 7) -> MetricTrace:
    """Seven days of a diurnal queue with weekday peaks and noise: for throughput benchmarks."""
    rng = random.Random(seed)
    points = []
    t = 0.0
    while t < 7 * 86400:
        day, hour = divmod(t / 3600, 24)
        weekday = int(day) % 7 < 5
        base = 40 + 60 * max(0.0, math.sin(math.pi * (hour - 7) / 12)) * (2.5 if weekday else 0.8)
        points.append((t, max(0.0, base + rng.gauss(0, 12))))
        t += step
    return MetricTrace(tuple(points))


def synthetic_ci_day(seed: int = 11, mean_job_seconds: float = 420.0) -> RequestLog:
    """A working day of CI: quiet nights, bursts of jobs at pushes and merges (a job = `work` seconds)."""
    rng = random.Random(seed)
    reqs: list[Request] = []
    t = 0.0
    while t < 86400:
        hour = t / 3600
        busy = 9 <= hour < 18
        rate = (1 / 40) if busy else (1 / 600)  # jobs per second
        if busy and rng.random() < 0.004:
            # a merge train or a monorepo push: dozens of jobs at once
            for _ in range(rng.randint(20, 60)):
                reqs.append(Request(t, rng.expovariate(1 / mean_job_seconds)))
        t += rng.expovariate(rate)
        reqs.append(Request(t, rng.expovariate(1 / mean_job_seconds)))
    reqs.sort(key=lambda r: r.t)
    return RequestLog(tuple(reqs))
