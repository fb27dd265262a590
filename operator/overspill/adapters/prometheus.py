"""The queue metric source: one PromQL query -> one number, behind a narrow interface (as KEDA's scalers)."""

from __future__ import annotations

import math
from typing import Protocol

from prometheus_api_client import PrometheusConnect


class MetricError(Exception):
    """The metric could not be read; the message says why and is safe to show to users."""


class MetricSource(Protocol):
    def value(self, url: str, query: str, timeout: float) -> float: ...

    def per_pod(self, url: str, query: str, timeout: float) -> dict[str, float]: ...


class PrometheusSource:
    """prometheus-api-client, one connection per URL. An empty result counts as 0 (a queue with no series is
    empty, like KEDA's ignoreNullValues); more than one series is an error, since summing silently could
    double-count replicas' own samples."""

    def __init__(self) -> None:
        self._conns: dict[str, PrometheusConnect] = {}

    def _conn(self, url: str) -> PrometheusConnect:
        if url not in self._conns:
            self._conns[url] = PrometheusConnect(url=url, disable_ssl=False)
        return self._conns[url]

    def _query(self, url: str, query: str, timeout: float) -> list[dict[str, object]]:
        try:
            result = self._conn(url).custom_query(
                query, params={"timeout": f"{int(timeout * 1000)}ms"}, timeout=timeout
            )
        except Exception as err:  # the client raises requests' and its own errors; all mean "unavailable"
            raise MetricError(f"query to {url} failed: {type(err).__name__}: {str(err)[:200]}") from err
        return list(result)

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
            raise MetricError(f"query returned no number: {sample!r}") from err
        if math.isnan(value) or math.isinf(value) or value < 0:
            raise MetricError(f"query returned {value}; the queue depth must be a finite number >= 0")
        return value

    def per_pod(self, url: str, query: str, timeout: float) -> dict[str, float]:
        out: dict[str, float] = {}
        for sample in self._query(url, query, timeout):
            metric = sample.get("metric") or {}
            pod = metric.get("pod") if isinstance(metric, dict) else None
            try:
                out[str(pod)] = float(sample["value"][1])  # type: ignore[index]
            except (KeyError, TypeError, ValueError, IndexError):
                continue
        return out
