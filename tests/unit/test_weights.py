"""Route weights follow Ready replicas per side; make-before-break holds for traffic too."""

from __future__ import annotations

from typing import Any

from overspill.decide.weights import (
    MCS_GROUP,
    SERVICE_IMPORT,
    Weights,
    current,
    drain_first,
    kept_ready,
    route_rules,
    weights,
    without_burst,
)

RULES: list[dict[str, Any]] = [
    {
        "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
        "backendRefs": [{"name": "vllm", "port": 8000}, {"name": "canary", "port": 8000, "weight": 5}],
    },
    {"matches": [{"path": {"type": "PathPrefix", "value": "/metrics"}}], "backendRefs": [{"name": "other"}]},
]


def rules(w: Weights, rules_in: list[dict[str, Any]] | None = None, export_ns: str = "ml") -> list[dict[str, Any]]:
    return route_rules(
        rules_in if rules_in is not None else RULES,
        namespace="ml",
        service="vllm",
        export="vllm-burst",
        export_namespace=export_ns,
        w=w,
    )


def test_weights_are_the_ready_replicas_of_each_side() -> None:
    assert weights(8, 7) == Weights(8, 7)
    assert weights(3, 0) == Weights(3, 0)


def test_nothing_ready_keeps_all_weight_local_never_all_zero() -> None:
    assert weights(0, 0) == Weights(1, 0)


def test_a_secondary_being_drained_loses_weight_before_its_replicas_go() -> None:
    # 7 Ready in aws, the placement keeps 0: the burst side's weight is 0 now, while the pods still run
    assert kept_ready({"aws": 7}, {"aws": 0}) == 0
    assert kept_ready({"aws": 7, "gcp": 2}, {"aws": 4, "gcp": 5}) == 6


def test_a_new_replica_gets_weight_only_once_ready() -> None:
    assert kept_ready({"aws": 0}, {"aws": 7}) == 0  # 7 planned, none Ready yet


def test_local_and_burst_backends_weighted_others_untouched() -> None:
    out = rules(Weights(8, 7))
    refs = out[0]["backendRefs"]
    assert refs[0] == {"name": "vllm", "port": 8000, "weight": 8}
    assert refs[1] == {"name": "canary", "port": 8000, "weight": 5}
    assert refs[2] == {"group": MCS_GROUP, "kind": SERVICE_IMPORT, "name": "vllm-burst", "port": 8000, "weight": 7}
    assert out[1] == RULES[1]
    assert RULES[0]["backendRefs"][0] == {"name": "vllm", "port": 8000}  # the input is not changed


def test_reapplying_updates_the_existing_burst_backend_in_place() -> None:
    once = rules(Weights(8, 7))
    twice = rules(Weights(10, 0), once)
    assert [r.get("weight") for r in twice[0]["backendRefs"]] == [10, 5, 0]
    assert current(twice, namespace="ml", service="vllm", export="vllm-burst", export_namespace="ml") == Weights(10, 0)


def test_burst_backend_in_another_namespace_names_it() -> None:
    out = rules(Weights(1, 1), export_ns="burst")
    assert out[0]["backendRefs"][-1]["namespace"] == "burst"


def test_current_weights_default_to_one_and_none_without_the_local_service() -> None:
    assert current(RULES, namespace="ml", service="vllm", export="vllm-burst", export_namespace="ml") == Weights(1, 0)
    assert current(RULES[1:], namespace="ml", service="vllm", export="vllm-burst", export_namespace="ml") is None


def test_without_burst_gives_all_traffic_back_to_the_local_service() -> None:
    out = rules(Weights(8, 7))
    back = without_burst(out, namespace="ml", service="vllm", export="vllm-burst", export_namespace="ml")
    assert [r["name"] for r in back[0]["backendRefs"]] == ["vllm", "canary"]
    assert back[1] == RULES[1]


def test_gke_service_import_group_is_used_when_named() -> None:
    out = route_rules(
        RULES,
        namespace="ml",
        service="vllm",
        export="vllm-burst",
        export_namespace="ml",
        w=Weights(2, 3),
        group="net.gke.io",
    )
    assert out[0]["backendRefs"][-1]["group"] == "net.gke.io"
    found = current(out, namespace="ml", service="vllm", export="vllm-burst", export_namespace="ml", group="net.gke.io")
    assert found == Weights(2, 3)


def test_drain_first_only_when_the_burst_weight_falls() -> None:
    assert drain_first(Weights(8, 7), Weights(8, 0))
    assert not drain_first(Weights(8, 0), Weights(8, 0))  # already drained: removal may proceed
    assert not drain_first(Weights(8, 3), Weights(8, 7))
    assert not drain_first(None, Weights(1, 0))
