"""The queue metric source: one PromQL query -> one number, behind a narrow interface (as KEDA's scalers).

Two guards, because a policy's URL is chosen by whoever may edit BurstPolicies in their namespace:
- only URLs under the operator's allowed prefixes are queried (`--allowed-prometheus-url`; by default only the
  operator-wide `--prometheus-url`), so a policy cannot point the operator at an arbitrary host;
- messages (which reach status and Events in the policy's namespace) never carry the URL's user-info nor any
  part of a response body: only the error's kind and the HTTP status code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import SplitResult, urlsplit

from prometheus_api_client import PrometheusConnect

from overspill.adapters.prometheus_http import PrometheusHttp, QueryFailed
from overspill.decide.busy import PodLevels


class MetricError(Exception):
    """The metric could not be read; the message says why and is safe to show to users."""


class MetricSource(Protocol):
    def value(self, url: str, query: str, timeout: float) -> float: ...

    def per_pod(self, url: str, query: str, timeout: float) -> PodLevels: ...


def redact_url(url: str) -> str:
    """The URL without its user-info (user:password@), for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"***@{host}").geturl()


def _origin(parts: SplitResult) -> tuple[str, str, int | None]:
    port = parts.port
    if port is None:
        port = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def url_allowed(url: str, prefixes: Sequence[str]) -> bool:
    """`url` is under one of `prefixes`: same scheme, host and port, and a path below the prefix's path at a
    segment boundary (http://prom/a allows http://prom/a/b, not http://prom/ab). User-info is ignored; it
    cannot move the host (http://prom:9090@evil is evil)."""
    try:
        target = urlsplit(url)
        origin = _origin(target)
    except ValueError:
        return False
    for prefix in prefixes:
        try:
            allowed = urlsplit(prefix)
            allowed_origin = _origin(allowed)
        except ValueError:
            continue
        if origin != allowed_origin or not origin[1]:
            continue
        base = allowed.path.rstrip("/")
        path = target.path or "/"
        if not base or path == base or path.startswith(base + "/"):
            return True
    return False


def _failure(err: Exception) -> str:
    """The kind of failure, and the HTTP status when there is one; never the response body."""
    found = re.search(r"HTTP Status Code (\d{3})|too many (\d{3}) error responses", str(err))
    return f"HTTP {found.group(1) or found.group(2)}" if found else type(err).__name__


class PrometheusSource:
    """Instant queries through one pooled HTTP client (`PrometheusHttp`). An empty result counts as 0 (a queue
    with no series is empty, like KEDA's ignoreNullValues); more than one series is an error, since summing
    silently could double-count replicas' own samples.

    `allowed_prefixes`: URLs that may be queried; None allows any (the simulator and tests), the operator
    always passes a list."""

    def __init__(self, allowed_prefixes: Sequence[str] | None = None) -> None:
        self._http = PrometheusHttp()
        self.allowed_prefixes = None if allowed_prefixes is None else tuple(allowed_prefixes)

    def _check(self, url: str) -> None:
        if self.allowed_prefixes is not None and not url_allowed(url, self.allowed_prefixes):
            shown = ", ".join(redact_url(p) for p in self.allowed_prefixes) or "none"
            raise MetricError(
                f"Prometheus URL {redact_url(url)} is not allowed by the operator (--allowed-prometheus-url: "
                f"{shown}); use an allowed URL or ask the operator's administrator to add it"
            )

    def _query(self, url: str, query: str, timeout: float) -> list[dict[str, object]]:
        self._check(url)
        try:
            return self._http.query(url, query, timeout)
        except QueryFailed as err:
            raise MetricError(f"query to {redact_url(url)} failed: {err}") from err

    def value(self, url: str, query: str, timeout: float) -> float:
        result = self._query(url, query, timeout)
        if not result:
            return 0.0
        if len(result) > 1:
            raise MetricError(f"query returned {len(result)} series; wrap it in sum(...) to return one number")
        sample = result[0].get("value")
        try:
            value = float(sample[1])  # type: ignore[index]
        except (TypeError, ValueError, IndexError) as err:
            raise MetricError("query returned a sample that is not a number") from err
        if math.isnan(value) or math.isinf(value) or value < 0:
            raise MetricError(f"query returned {value}; the queue depth must be a finite number >= 0")
        return value

    def per_pod(self, url: str, query: str, timeout: float) -> PodLevels:
        """Levels by the series' `namespace` and `pod` labels. A pod missing from the result is unknown to the
        caller, not idle; a sample that is not a number >= 0 makes its pod unknown."""
        series: list[tuple[str, str, float]] = []
        for sample in self._query(url, query, timeout):
            metric = sample.get("metric")
            if not isinstance(metric, dict) or not metric.get("pod"):
                continue
            try:
                level = float(sample["value"][1])  # type: ignore[index]
            except (KeyError, TypeError, ValueError, IndexError):
                level = math.nan
            series.append((str(metric.get("namespace") or ""), str(metric["pod"]), level))
        return PodLevels.from_series(series)


def history(
    url: str, query: str, start: float, end: float, step: float, timeout: float = 30.0
) -> list[tuple[float, float]]:
    """One series over [start, end] (unix seconds) every `step` seconds: the range query (`query_range`) behind
    `overspill tune --prometheus-url`. A person runs it, not the operator: no allowlist, but the same redaction."""
    from datetime import UTC, datetime

    conn = PrometheusConnect(url=url, disable_ssl=False)
    try:
        result = conn.custom_query_range(
            query,
            start_time=datetime.fromtimestamp(start, UTC),
            end_time=datetime.fromtimestamp(end, UTC),
            step=f"{step:g}",
            timeout=timeout,
        )
    except Exception as err:  # requests' errors and the client's own: all mean the history cannot be read
        hint = " (Prometheus refused the query: check its PromQL)" if "HTTP Status Code 400" in str(err) else ""
        raise MetricError(f"range query to {redact_url(url)} failed: {_failure(err)}{hint}") from err
    if not isinstance(result, list) or not result:
        raise MetricError(f"range query to {redact_url(url)} returned no series: no data in that window")
    if len(result) > 1:
        raise MetricError(f"range query returned {len(result)} series; wrap it in sum(...) to return one")
    points: list[tuple[float, float]] = []
    for pair in result[0].get("values") or []:
        try:
            t, value = float(pair[0]), float(pair[1])
        except (TypeError, ValueError, IndexError) as err:
            raise MetricError("range query returned a sample that is not a number") from err
        if math.isnan(value) or math.isinf(value) or value < 0:
            raise MetricError(f"range query returned {value} at {t:.0f}: the rate must be a finite number >= 0")
        points.append((t, value))
    return points
