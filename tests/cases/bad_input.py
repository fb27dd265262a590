"""Bad BurstPolicy specs and the text a user must see, shared by unit tests (pydantic) and e2e (API server).

Each case mutates a valid spec; `expect` is a fragment that both the operator's validation and the real
API server's rejection must contain (both name the field).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Spec = dict[str, Any]


def valid_spec() -> Spec:
    return {
        "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "vllm"},
        "workloadClass": "Inference",
        "metric": {"prometheus": {"query": "sum(queue)"}, "targetPerReplica": 10},
        "minReplicas": 1,
        "maxReplicas": 20,
        "primary": {"pendingGracePeriodSeconds": 5},
        "targets": [{"name": "secondary", "priority": 0}],
        "behavior": {"pollIntervalSeconds": 5},
    }


@dataclass(frozen=True)
class BadCase:
    id: str
    mutate: Callable[[Spec], None]
    expect: str

    def spec(self) -> Spec:
        s = copy.deepcopy(valid_spec())
        self.mutate(s)
        return s


def _set(path: str, value: Any) -> Callable[[Spec], None]:
    def f(s: Spec) -> None:
        node = s
        *head, last = path.split(".")
        for p in head:
            node = node.setdefault(p, {}) if not p.isdigit() else node[int(p)]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return f


def _drop(path: str) -> Callable[[Spec], None]:
    def f(s: Spec) -> None:
        node = s
        *head, last = path.split(".")
        for p in head:
            node = node[p]
        del node[last]

    return f


CASES: list[BadCase] = [
    BadCase("min-above-max", _set("minReplicas", 30), "minReplicas must be less than or equal to spec.maxReplicas"),
    BadCase("max-zero", _set("maxReplicas", 0), "maxReplicas"),
    BadCase("min-negative", _set("minReplicas", -1), "minReplicas"),
    BadCase("max-missing", _drop("maxReplicas"), "maxReplicas"),
    BadCase("target-per-replica-zero", _set("metric.targetPerReplica", 0), "targetPerReplica"),
    BadCase("target-per-replica-negative", _set("metric.targetPerReplica", -5), "targetPerReplica"),
    BadCase("target-per-replica-missing", _drop("metric.targetPerReplica"), "targetPerReplica"),
    BadCase("activation-negative", _set("metric.activationThreshold", -1), "activationThreshold"),
    BadCase("query-empty", _set("metric.prometheus.query", ""), "query"),
    BadCase("query-missing", _drop("metric.prometheus.query"), "query"),
    BadCase("prometheus-url-not-http", _set("metric.prometheus.url", "prometheus:9090"), "url"),
    BadCase("workload-name-missing", _drop("workloadRef.name"), "name"),
    BadCase("workload-class-unknown", _set("workloadClass", "Batch"), "workloadClass"),
    BadCase("mode-unknown", _set("mode", "Aggressive"), "mode"),
    BadCase("fallback-unknown", _set("fallback", {"onMetricUnavailable": "Guess"}), "onMetricUnavailable"),
    BadCase(
        "fallback-replicas-missing",
        _set("fallback", {"onMetricUnavailable": "UseReplicas"}),
        "fallback.replicas is required when onMetricUnavailable is UseReplicas",
    ),
    BadCase(
        "fallback-replicas-above-max",
        _set("fallback", {"onMetricUnavailable": "UseReplicas", "replicas": 99}),
        "fallback.replicas must be between spec.minReplicas and spec.maxReplicas",
    ),
    BadCase(
        "target-listed-twice", _set("targets", [{"name": "secondary"}, {"name": "secondary", "priority": 1}]), "targets"
    ),
    BadCase("target-name-invalid", _set("targets", [{"name": "Not_A_DNS_Name"}]), "name"),
    BadCase(
        "target-named-primary", _set("targets", [{"name": "primary"}]), "the name primary is reserved for the primary"
    ),
    BadCase("target-priority-negative", _set("targets", [{"name": "secondary", "priority": -1}]), "priority"),
    BadCase("target-max-negative", _set("targets", [{"name": "secondary", "maxReplicas": -2}]), "maxReplicas"),
    BadCase("poll-interval-zero", _set("behavior.pollIntervalSeconds", 0), "pollIntervalSeconds"),
    BadCase(
        "scale-down-window-too-long",
        _set("behavior.scaleDownStabilizationSeconds", 99999),
        "scaleDownStabilizationSeconds",
    ),
    BadCase("grace-negative", _set("primary.pendingGracePeriodSeconds", -3), "pendingGracePeriodSeconds"),
    BadCase("primary-cap-above-max", _set("primary.maxReplicas", 50), "primary.maxReplicas must not exceed"),
    BadCase("primary-cap-negative", _set("primary.maxReplicas", -1), "maxReplicas"),
    BadCase("ci-runner-without-busy", _set("workloadClass", "CIRunner"), "spec.busy is required for workloadClass"),
    BadCase("busy-empty", _set("busy", {}), "spec.busy needs one of podAnnotation, podLabel or query"),
    BadCase("target-per-replica-string", _set("metric.targetPerReplica", "ten"), "targetPerReplica"),
    BadCase("min-replicas-string", _set("minReplicas", "one"), "minReplicas"),
    BadCase(
        "override-volume-without-name",
        _set("targets", [{"name": "secondary", "overrides": {"volumes": [{"emptyDir": {}}]}}]),
        "volumes",
    ),
    BadCase(
        "traffic-on-ci-runner",
        lambda s: s.update(
            workloadClass="CIRunner", busy={"podLabel": "busy"}, traffic={"serviceRef": {"name": "runner"}}
        ),
        "spec.traffic is for workloadClass Inference",
    ),
    BadCase(
        "traffic-service-name-too-long-for-burst-suffix",
        _set("traffic", {"serviceRef": {"name": "s" * 60}}),
        "set spec.traffic.exportName",
    ),
    BadCase(
        "traffic-export-name-invalid",
        _set("traffic", {"serviceRef": {"name": "vllm"}, "exportName": "Bad_Name"}),
        "exportName",
    ),
    BadCase("traffic-without-service", _set("traffic", {"httpRouteRef": {"name": "vllm"}}), "serviceRef"),
    BadCase(
        "traffic-route-with-mesh-merged-name",
        _set("traffic", {"serviceRef": {"name": "vllm"}, "exportName": "vllm", "httpRouteRef": {"name": "vllm"}}),
        "remove spec.traffic.httpRouteRef",
    ),
    BadCase("predictive-lead-zero", _set("behavior.predictive", {"enabled": True, "leadSeconds": 0}), "leadSeconds"),
]

# Unknown fields: the API server prunes them silently (structural schema) unless the client asks for strict
# field validation (kubectl does by default); the operator's own parse rejects them.
UNKNOWN_FIELD = BadCase("unknown-field-typo", _set("minReplica", 1), "minReplica")
