"""Trace loaders for the simulator: metric traces, Azure LLM request logs, and synthetic shapes.

Every malformed row is refused with the file, the line and the fix (`InputError`): a trace that parses wrongly
gives a confident wrong answer, which is worse than none.

The Azure LLM inference trace 2023 (CC-BY 4.0) is by Patel, Choukse, Zhang, Shah, Goiri, Maleki, Bianchini,
"Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from overspill.inputerror import InputError

METRIC_HEADER = ["t_seconds", "value"]
REQUEST_HEADER = ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]
HEADERS_HINT = "start the file with the header 't_seconds,value' (a queue metric) or " + (
    "'TIMESTAMP,ContextTokens,GeneratedTokens' (the Azure LLM request format)"
)


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


def _number(path: str | Path, line: int, column: str, text: str, *, integer: bool = False) -> float:
    kind = "a whole number" if integer else "a number"
    try:
        value = float(int(text)) if integer else float(text)
    except ValueError:
        # also a whole number of more than 4,300 digits (Python's int() limit)
        shown = text.strip() if len(text.strip()) <= 40 else f"{text.strip()[:20]}... ({len(text.strip())} characters)"
        raise InputError(path, f"{column} {shown!r} is not {kind}", line=line, fix=f"write {kind}") from None
    except OverflowError:
        # a whole number too large for a float (a corrupted row): int() takes it, float() does not
        raise InputError(
            path,
            f"{column} has {len(text.strip())} digits: too large to be a count",
            line=line,
            fix=f"write {kind} below 1e308 (the row is probably corrupted: fix or delete it)",
        ) from None
    if not math.isfinite(value):
        raise InputError(path, f"{column} is {text.strip()!r}", line=line, fix="write a finite number")
    if value < 0:
        raise InputError(path, f"{column} {text.strip()} is negative", line=line, fix=f"{column} must be >= 0")
    return value


def _timestamp(path: str | Path, line: int, text: str) -> float:
    # 7 fractional digits: datetime takes at most 6
    head, _, frac = text.strip().partition(".")
    try:
        return datetime.fromisoformat(head).timestamp() + (float(f"0.{frac}") if frac else 0.0)
    except ValueError:
        raise InputError(
            path,
            f"TIMESTAMP {text.strip()!r} is not a date and time",
            line=line,
            fix="write e.g. 2023-11-16 18:17:03.98",
        ) from None


def _rows(path: str | Path) -> tuple[list[str], int, list[tuple[int, list[str]]]]:
    """The header, its line number, and (line number, cells) of every data row; comments and blanks skipped."""
    with open(path, "rb") as fh:
        numbered = [
            (i, text) for i, text in enumerate(_decoded(path, fh), start=1) if text.strip() and not text.startswith("#")
        ]
    if not numbered:
        raise InputError(path, "the trace is empty", fix=HEADERS_HINT + ", then one row per sample")
    parsed = list(csv.reader(text for _, text in numbered))
    header = [h.strip() for h in parsed[0]]
    while header and not header[-1]:
        header.pop()  # a trailing comma names no column
    rows = [(numbered[i][0], cells) for i, cells in enumerate(parsed) if i > 0]
    if not rows:
        raise InputError(path, "the trace has a header and no rows", line=numbered[0][0], fix="add rows below it")
    return header, numbered[0][0], rows


def _decoded(path: str | Path, fh: Iterable[bytes]) -> Iterator[str]:
    """The file's lines as text, a line that is not UTF-8 refused with its number (a codec error names neither)."""
    for i, raw in enumerate(fh, start=1):
        try:
            # utf-8-sig on the first line: a byte-order mark (spreadsheet exports) is not part of the header
            yield raw.decode("utf-8-sig" if i == 1 else "utf-8")
        except UnicodeDecodeError as err:
            raise InputError(
                path,
                f"byte 0x{raw[err.start]:02x} at column {err.start + 1} is not UTF-8",
                line=i,
                fix="save the trace as UTF-8 (e.g. iconv -f latin1 -t utf-8), or delete the line",
            ) from None


def _check_width(path: str | Path, line: int, cells: list[str], header: list[str]) -> None:
    # trailing empty cells (a trailing comma) move nothing; any other extra cell shifts the row: "1,024" context
    # tokens unquoted would be read as 1 and 24, a confident wrong answer
    width = len(cells)
    while width > len(header) and not cells[width - 1].strip():
        width -= 1
    if width < len(header):
        raise InputError(
            path,
            f"expected {len(header)} columns ({','.join(header)}), found {len(cells)}",
            line=line,
            fix="complete the row or delete it",
        )
    if width > len(header):
        raise InputError(
            path,
            f"expected {len(header)} columns ({','.join(header)}), found {width}",
            line=line,
            fix="write numbers without thousands separators (1024, not 1,024), quote cells that hold commas, "
            "or add the extra column to the header",
        )


def load(path: str | Path, prefill_speedup: float = 10.0) -> MetricTrace | RequestLog:
    """A CSV with header `t_seconds,value` (metric) or `TIMESTAMP,ContextTokens,GeneratedTokens` (requests)."""
    header, header_line, rows = _rows(path)
    if header[:2] == METRIC_HEADER:
        points = []
        for line, cells in rows:
            _check_width(path, line, cells, header)
            points.append((_number(path, line, "t_seconds", cells[0]), _number(path, line, "value", cells[1])))
        return MetricTrace(tuple(sorted(points)))
    if header[:3] == REQUEST_HEADER:
        stamps = []
        for line, cells in rows:
            _check_width(path, line, cells, header)
            stamps.append(
                (
                    _timestamp(path, line, cells[0]),
                    _number(path, line, "ContextTokens", cells[1], integer=True),
                    _number(path, line, "GeneratedTokens", cells[2], integer=True),
                )
            )
        stamps.sort()
        t0 = stamps[0][0]
        return RequestLog(tuple(Request(t - t0, c / prefill_speedup + g) for t, c, g in stamps))
    raise InputError(path, f"unknown trace header {','.join(header)!r}", line=header_line, fix=HEADERS_HINT)


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


def from_arrival_rates(points: list[tuple[float, float]], work: float) -> RequestLog:
    """Requests from a metric history of arrival rates (requests per second, e.g. Prometheus
    `sum(rate(vllm:request_success_total[1m]))`), each `work` token-units: over each sample's interval (to the
    next sample; the last one lasts as long as the one before) the rate's expected arrivals, evenly spaced, the
    fractions carried to the next interval so that the total is kept. Times start at the first sample."""
    if not points:
        return RequestLog(())
    t0 = points[0][0]
    reqs: list[Request] = []
    carry = 0.0
    last_dt = 0.0
    for i, (t, rate) in enumerate(points):
        dt = points[i + 1][0] - t if i + 1 < len(points) else last_dt
        last_dt = dt
        carry += rate * dt
        n = int(carry)
        carry -= n
        reqs.extend(Request(t - t0 + (k + 0.5) * dt / n, work) for k in range(n))
    return RequestLog(tuple(reqs))


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
