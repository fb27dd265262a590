"""Route weights a review found breaking (end of the 2026-11-30 session; each failed before): a canary far larger
than the rule's own weight never pushes a weight past the Gateway API's maximum, a Ready kept target beside a
canary never rounds to 0, and a weight another writer put back mid-drain restarts the drain clock."""

from __future__ import annotations

from typing import Any

from overspill.decide.weights import (
    MCS_GROUP,
    SERVICE_IMPORT,
    Backend,
    Recorded,
    Weights,
    draining,
    record_after,
    route_rules,
)

GATEWAY_WEIGHT_MAX = 1_000_000  # Gateway API HTTPBackendRef.weight: minimum 0, maximum 1000000
NAMES = {"aws": "vllm-burst-aws", "gcp": "vllm-burst-gcp"}
AWS, GCP = Backend("aws", "vllm-burst-aws", "ml"), Backend("gcp", "vllm-burst-gcp", "ml")


def imp(name: str, weight: int) -> dict[str, Any]:
    return {"group": MCS_GROUP, "kind": SERVICE_IMPORT, "name": name, "port": 80, "weight": weight}


def test_canary_scaling_never_writes_a_weight_above_the_gateway_api_maximum() -> None:
    """A canary tool holding the rule at vllm:1, canary:999999 (0.0001 %): the 'too little to split' factor (50)
    multiplies the canary to 49,999,950, which the HTTPRoute CRD refuses (maximum 1,000,000): every write then fails,
    TrafficReady=False RouteUnconfirmed and every secondary is held for good."""
    before = [
        {"backendRefs": [{"name": "vllm", "port": 80, "weight": 1}, {"name": "canary", "port": 80, "weight": 999_999}]}
    ]
    out = route_rules(before, namespace="ml", service="vllm", backends=[AWS], names=NAMES, w=Weights(8, {"aws": 7}))
    got = {r["name"]: r["weight"] for r in out[0]["backendRefs"]}
    assert max(got.values()) <= GATEWAY_WEIGHT_MAX, got


def test_a_ready_kept_target_beside_a_canary_never_rounds_to_zero() -> None:
    """vllm:50, canary:50; 100 Ready at home, 1 Ready in aws and 1 in gcp (kept by the placement, exported): the
    largest-remainder split of 50 gives aws 1 and gcp 0. gcp's replica is paid for and serves nobody (the issue's
    very complaint), and its record says weight 0 since now: it looks drained."""
    before = [
        {"backendRefs": [{"name": "vllm", "port": 80, "weight": 50}, {"name": "canary", "port": 80, "weight": 50}]}
    ]
    out = route_rules(
        before, namespace="ml", service="vllm", backends=[AWS, GCP], names=NAMES, w=Weights(100, {"aws": 1, "gcp": 1})
    )
    got = {r["name"]: r["weight"] for r in out[0]["backendRefs"]}
    assert got["vllm-burst-aws"] > 0 and got["vllm-burst-gcp"] > 0, got


def test_a_weight_put_back_by_someone_else_restarts_the_drain_clock() -> None:
    """Mid-drain (aws dropped, its backendRef at 0 since t=1000 by the record), GitOps self-heal (Argo CD) puts the
    route back as committed: vllm-burst-aws at weight 7 again, the record annotation untouched (not in Git). At
    t=1100 Overspill sets it to 0 again, but record_after keeps zeroSince=1000: draining() is empty, the replicas
    are removed at the next poll (a second later), while the gateway still programs the weight of 7 it just got."""
    key = (MCS_GROUP, "ml", "vllm-burst-aws")
    record = {key: Recorded("aws", 1000.0)}
    before = [{"backendRefs": [{"name": "vllm", "port": 80, "weight": 8}, {**imp("vllm-burst-aws", 7)}]}]
    after = route_rules(
        before,
        namespace="ml",
        service="vllm",
        backends=[],
        names=NAMES,
        w=Weights(8),
        record=record,
        now=1100.0,
        drain=30.0,
    )
    assert [r["weight"] for r in after[0]["backendRefs"]] == [8, 0]
    new = record_after(before, after, namespace="ml", names=NAMES, group=MCS_GROUP, record=record, now=1100.0)
    assert new[key].zero_since == 1100.0, new
    assert draining(new, 1101.0, 30.0) == {"aws": 29.0}
