"""The operator's own Prometheus metrics (served on --metrics-port)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DECISIONS = Counter("overspill_decisions_total", "Decisions by reason code", ["namespace", "policy", "reason"])
REPLICAS = Gauge("overspill_replicas", "Replicas placed per policy and cluster", ["namespace", "policy", "cluster"])
DESIRED = Gauge("overspill_desired_replicas", "Desired replicas per policy", ["namespace", "policy"])
BURST_ACTIVE = Gauge("overspill_burst_active", "1 while a policy has replicas in secondaries", ["namespace", "policy"])
METRIC_ERRORS = Counter("overspill_metric_query_errors_total", "Failed queue-metric queries", ["namespace", "policy"])
# Latency histograms are operator-wide, as controller-runtime's are per controller: per policy, two of them were
# 27,000 of the 35,000 lines of /metrics at 1,000 policies, and rendering them took over 3 s of a busy operator.
METRIC_LATENCY = Histogram(
    "overspill_metric_query_seconds",
    "Queue-metric query latency, all policies",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RECONCILE_SECONDS = Histogram(
    "overspill_reconcile_seconds",
    "Duration of one observe-decide-act-report pass, all policies",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TARGET_UP = Gauge("overspill_target_up", "1 when a BurstTarget's API server answers its probes", ["target"])
TARGET_LATENCY = Gauge("overspill_target_probe_latency_ms", "Latency of the last BurstTarget probe", ["target"])
API_WRITES = Counter("overspill_api_writes_total", "Write calls made to clusters", ["cluster", "kind"])
POLL_LATENESS = Histogram(
    "overspill_poll_lateness_seconds",
    "How late a policy's tick started after it was due (a loaded operator falls behind here first)",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# cause: the first status field that differed from the last write ("interval" when only moving figures did), so a
# dashboard shows which field keeps the API server busy
STATUS_WRITES = Counter("overspill_status_writes_total", "Status patches written", ["kind", "cause"])

PER_POLICY = (DECISIONS, REPLICAS, DESIRED, BURST_ACTIVE, METRIC_ERRORS)


def forget_policy(namespace: str, policy: str) -> None:
    """A deleted policy's series go with it: no stale gauges in dashboards, no unbounded label growth."""
    for family in PER_POLICY:
        for labels in list(family._metrics):
            if labels[:2] == (namespace, policy):
                family.remove(*labels)
