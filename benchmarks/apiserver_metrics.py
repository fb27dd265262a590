"""Requests to an API server, from its own `/metrics` (`apiserver_request_total`), as rates between two scrapes.

Counting at the server, not in a client, is what makes two tools comparable: KEDA's operator, its metrics adapter
and the HPA controller it relies on are all counted, whoever sends the request.
"""

from __future__ import annotations

import itertools
import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from benchmarks import raw_api

# apiserver_request_total{code="200",component="apiserver",group="apps",resource="deployments",...,verb="LIST"} 12
_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
# long-lived streams, not requests per unit of time: a watch is opened once and held
STREAMS = frozenset({"WATCH", "WATCHLIST", "CONNECT"})
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY"})


def parse(text: str) -> Counter[tuple[str, str, str]]:
    """Counts by (verb, group, resource), summed over codes, scopes and components."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m["labels"]))
        key = (labels.get("verb", ""), labels.get("group", ""), labels.get("resource", ""))
        counts[key] += int(float(m["value"]))
    return counts


@dataclass(frozen=True)
class Snapshot:
    at: float
    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)


@dataclass(frozen=True)
class Rates:
    seconds: float
    requests_per_second: float  # everything but watch streams
    writes_per_second: float
    by_verb: dict[str, float]
    top: dict[str, float]  # "VERB group/resource" -> rate, the busiest first

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 1),
            "requests_per_second": round(self.requests_per_second, 2),
            "writes_per_second": round(self.writes_per_second, 2),
            "by_verb": self.by_verb,
            "top": self.top,
        }


def rates(before: Snapshot, after: Snapshot, top: int = 8) -> Rates:
    seconds = max(after.at - before.at, 1e-9)
    delta = {k: v - before.counts.get(k, 0) for k, v in after.counts.items() if k[0] not in STREAMS}
    delta = {k: v for k, v in delta.items() if v > 0}
    by_verb: Counter[str] = Counter()
    for (verb, _, _), v in delta.items():
        by_verb[verb] += v
    busiest = sorted(delta.items(), key=lambda kv: -kv[1])[:top]
    return Rates(
        seconds=seconds,
        requests_per_second=sum(delta.values()) / seconds,
        writes_per_second=sum(v for (verb, _, _), v in delta.items() if verb in WRITES) / seconds,
        by_verb={k: round(v / seconds, 2) for k, v in sorted(by_verb.items())},
        top={f"{verb} {group + '/' if group else ''}{res}": round(v / seconds, 2) for (verb, group, res), v in busiest},
    )


def sliced(snapshots: list[Snapshot]) -> dict[str, Any]:
    """Request rates between consecutive scrapes of one window, and their median: a window's mean is moved by one
    burst (a relist, a round of Events), the median of its slices is what the window mostly was."""
    slices = [rates(a, b).requests_per_second for a, b in itertools.pairwise(snapshots)]
    if not slices:
        return {}
    return {
        "requests_per_second_slices": [round(x, 2) for x in slices],
        "requests_per_second_median": round(statistics.median(slices), 2),
    }


def scrape(api: Any) -> Snapshot:
    """GET /metrics with the client's own credentials (the lab's kubeconfig: client certificates)."""
    text = raw_api.get(api, "/metrics", timeout=30).read().decode()
    return Snapshot(at=time.monotonic(), counts=parse(text))
