"""Route weights follow Ready replicas per target, each target behind its own ServiceImport; make-before-break
holds for traffic too."""

from __future__ import annotations

from typing import Any

from overspill.decide.weights import (
    MCS_GROUP,
    SERVICE_IMPORT,
    Backend,
    Recorded,
    Weights,
    backend_name,
    current,
    draining,
    dump_record,
    held,
    kept_ready,
    parse_record,
    record_after,
    route_rules,
    sends_to_burst,
    weights,
    without_burst,
)

RULES: list[dict[str, Any]] = [
    {"matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}], "backendRefs": [{"name": "vllm", "port": 8000}]},
    {"matches": [{"path": {"type": "PathPrefix", "value": "/metrics"}}], "backendRefs": [{"name": "other"}]},
]
NAMES = {"": "vllm-burst", "aws": "vllm-burst-aws", "gcp": "vllm-burst-gcp"}
AWS, GCP = Backend("aws", "vllm-burst-aws", "ml"), Backend("gcp", "vllm-burst-gcp", "burst")


def rules(
    w: Weights, rules_in: list[dict[str, Any]] | None = None, backends: tuple[Backend, ...] = (AWS,)
) -> list[dict[str, Any]]:
    return route_rules(
        rules_in if rules_in is not None else RULES,
        namespace="ml",
        service="vllm",
        backends=backends,
        names=NAMES,
        w=w,
    )


def now(rules_in: list[dict[str, Any]], group: str = MCS_GROUP) -> Weights | None:
    return current(rules_in, namespace="ml", service="vllm", names=NAMES, group=group)


def test_weights_are_the_ready_replicas_of_each_side() -> None:
    assert weights(8, {"aws": 7}) == Weights(8, {"aws": 7})
    assert weights(3, {}) == Weights(3, {})


def test_nothing_ready_keeps_all_weight_local_never_all_zero() -> None:
    assert weights(0, {"aws": 0}) == Weights(1, {"aws": 0})


def test_a_secondary_being_drained_loses_weight_before_its_replicas_go() -> None:
    # 7 Ready in aws, the placement keeps 0: aws's weight is 0 now, while the pods still run
    assert kept_ready({"aws": 7}, {"aws": 0}) == {"aws": 0}
    assert kept_ready({"aws": 7, "gcp": 2}, {"aws": 4, "gcp": 5}) == {"aws": 4, "gcp": 2}


def test_a_new_replica_gets_weight_only_once_ready() -> None:
    assert kept_ready({"aws": 0}, {"aws": 7}) == {"aws": 0}  # 7 planned, none Ready yet


def test_local_and_burst_backends_weighted_others_untouched() -> None:
    out = rules(Weights(8, {"aws": 7}))
    refs = out[0]["backendRefs"]
    assert refs[0] == {"name": "vllm", "port": 8000, "weight": 8}
    assert refs[1] == {"group": MCS_GROUP, "kind": SERVICE_IMPORT, "name": "vllm-burst-aws", "port": 8000, "weight": 7}
    assert out[1] == RULES[1]
    assert RULES[0]["backendRefs"][0] == {"name": "vllm", "port": 8000}  # the input is not changed


def test_each_target_has_its_own_backend_in_its_own_namespace() -> None:
    out = rules(Weights(8, {"aws": 7, "gcp": 3}), backends=(AWS, GCP))
    imports = [r for r in out[0]["backendRefs"] if r.get("kind") == SERVICE_IMPORT]
    assert [(r["name"], r.get("namespace", "ml"), r["weight"]) for r in imports] == [
        ("vllm-burst-aws", "ml", 7),
        ("vllm-burst-gcp", "burst", 3),
    ]
    # one secondary can go to 0 alone, the other keeps its share
    alone = rules(Weights(8, {"aws": 7, "gcp": 0}), out, backends=(AWS, GCP))
    assert now(alone) == Weights(8, {"aws": 7, "gcp": 0})


def test_reapplying_updates_the_existing_burst_backend_in_place() -> None:
    once = rules(Weights(8, {"aws": 7}))
    twice = rules(Weights(10, {"aws": 0}), once)
    assert [r.get("weight") for r in twice[0]["backendRefs"]] == [10, 0]
    assert now(twice) == Weights(10, {"aws": 0})


def test_a_backend_no_target_wants_goes_to_zero_then_out() -> None:
    both = rules(Weights(8, {"aws": 7, "gcp": 3}), backends=(AWS, GCP))
    dropped = rules(Weights(8, {"gcp": 3}), both, backends=(GCP,))  # aws left the spec
    assert now(dropped) == Weights(8, {"aws": 0, "gcp": 3})
    gone = rules(Weights(8, {"gcp": 3}), dropped, backends=(GCP,))
    assert now(gone) == Weights(8, {"gcp": 3})
    # the one shared import of an older Overspill drains the same way
    legacy = [{"backendRefs": [{"name": "vllm"}, {"group": MCS_GROUP, "kind": SERVICE_IMPORT, "name": "vllm-burst"}]}]
    assert now(rules(Weights(8, {"aws": 7}), legacy)) == Weights(8, {"": 0, "aws": 7})


def test_current_weights_default_to_one_and_none_without_the_local_service() -> None:
    assert now(RULES) == Weights(1, {})
    assert now(RULES[1:]) is None


def test_without_burst_drains_then_gives_all_traffic_back_to_the_local_service() -> None:
    out = rules(Weights(8, {"aws": 7}))
    assert sends_to_burst(out, NAMES)
    drained = without_burst(out, names=NAMES)
    assert not sends_to_burst(drained, NAMES) and now(drained) == Weights(8, {"aws": 0})
    back = without_burst(drained, names=NAMES)
    assert [r["name"] for r in back[0]["backendRefs"]] == ["vllm"]
    assert back[1] == RULES[1]


def test_gke_service_import_group_is_used_when_named() -> None:
    out = route_rules(
        RULES,
        namespace="ml",
        service="vllm",
        backends=(AWS,),
        names=NAMES,
        w=Weights(2, {"aws": 3}),
        group="net.gke.io",
    )
    assert out[0]["backendRefs"][-1]["group"] == "net.gke.io"
    assert now(out, group="net.gke.io") == Weights(2, {"aws": 3})


def test_held_only_where_the_weight_falls() -> None:
    assert held(Weights(8, {"aws": 7, "gcp": 3}), Weights(8, {"aws": 0, "gcp": 3}), {"aws", "gcp"}) == {"aws"}
    assert held(Weights(8, {"aws": 0}), Weights(8, {"aws": 0}), {"aws"}) == set()  # drained: removal may go on
    assert held(Weights(8, {"aws": 3}), Weights(8, {"aws": 7}), {"aws"}) == set()
    assert held(Weights(8, {"aws": 7}), Weights(8, {}), {"aws"}) == {"aws"}  # a dropped target
    assert held(None, Weights(1, {"aws": 0}), {"aws"}) == set()


def test_backend_names_are_dns_labels_and_distinct() -> None:
    assert backend_name("vllm-burst", "aws-us-east-1") == "vllm-burst-aws-us-east-1"
    assert backend_name("vllm-burst", "gke.europe") == "vllm-burst-gke-europe"
    long_a, long_b = backend_name("vllm-burst", "a" * 70), backend_name("vllm-burst", "a" * 69 + "b")
    assert len(long_a) <= 63 and len(long_b) <= 63 and long_a != long_b


CANARY: list[dict[str, Any]] = [
    {"backendRefs": [{"name": "vllm", "port": 8000, "weight": 90}, {"name": "canary", "port": 8000, "weight": 10}]}
]


def share(rules_in: list[dict[str, Any]], name: str) -> float:
    refs = rules_in[0]["backendRefs"]
    return sum(r.get("weight", 1) for r in refs if r["name"] == name) / sum(r.get("weight", 1) for r in refs)


def test_a_canary_beside_the_local_service_keeps_its_share_through_a_burst_and_back() -> None:
    """Review break: the local Service's weight was set to its Ready replicas, so a canary at 10 of 100 got 10 of
    25 once the burst began. Now the local Service and the burst imports split the share the local Service had."""
    burst = rules(Weights(8, {"aws": 7}), CANARY)
    assert share(burst, "canary") == 0.1
    refs = {r["name"]: r["weight"] for r in burst[0]["backendRefs"]}
    assert refs == {"vllm": 48, "canary": 10, "vllm-burst-aws": 42}  # 90 split 8:7
    assert now(burst) == Weights(48, {"aws": 42})
    back = rules(Weights(8, {"aws": 0}), burst)
    assert share(back, "canary") == 0.1 and now(back) == Weights(90, {"aws": 0})
    gone = rules(Weights(8, {}), back, backends=())
    assert gone == CANARY


def test_a_canary_beside_an_unweighted_local_service_keeps_its_share_at_a_finer_grain() -> None:
    """Weights of 1 and 1 leave nothing to split: every weight of the rule is scaled by the same factor first, so
    the canary's share is unchanged and the burst gets its part."""
    small = [{"backendRefs": [{"name": "vllm"}, {"name": "canary"}]}]
    out = rules(Weights(8, {"aws": 8}), small)
    assert share(out, "canary") == 0.5
    assert now(out) == Weights(25, {"aws": 25})
    assert rules(Weights(8, {"aws": 8}), out) == out  # stable: no further scaling


def test_a_backend_of_the_policy_in_a_rule_without_the_local_service_is_drained_too() -> None:
    """Review break: only rules holding the local Service were looked at, so an import of the policy's in another
    rule kept its weight while its replicas were removed, and the route's current weights did not show it."""
    other = [
        {"backendRefs": [{"name": "vllm"}]},
        {"backendRefs": [{"group": MCS_GROUP, "kind": SERVICE_IMPORT, "name": "vllm-burst-aws", "weight": 7}]},
    ]
    assert now(other) == Weights(1, {"aws": 7})
    dropped = rules(Weights(8, {}), other, backends=())
    assert dropped[1]["backendRefs"][0]["weight"] == 0 and now(dropped) == Weights(8, {"aws": 0})
    assert held(now(other), now(dropped), {"aws"}) == {"aws"}
    assert rules(Weights(8, {}), dropped, backends=())[1]["backendRefs"] == []
    kept = rules(Weights(8, {"aws": 3}), other)  # still wanted: it follows the target's Ready replicas there
    assert kept[1]["backendRefs"][0]["weight"] == 3


def test_the_record_finds_a_backend_the_current_naming_rule_no_longer_builds_and_drains_it_for_the_drain_time() -> None:
    """exportName and importGroup changed during a burst: the old import is the policy's by the record written with
    it; it goes to 0, stays while its drain time runs (counted from the recorded time), then leaves the route."""
    old = {"group": "net.gke.io", "kind": SERVICE_IMPORT, "name": "old-aws", "namespace": "ml", "weight": 7}
    route_in = [{"backendRefs": [{"name": "vllm", "weight": 8}, old]}]
    record = parse_record(dump_record({("net.gke.io", "ml", "old-aws"): Recorded("aws", None)}))
    assert now(route_in) == Weights(8, {})  # by the naming rule alone: not the policy's
    assert current(route_in, namespace="ml", service="vllm", names=NAMES, record=record) == Weights(8, {"aws": 7})

    def step(rules_in: list[dict[str, Any]], rec: Any, t: float) -> tuple[list[dict[str, Any]], Any]:
        out = route_rules(
            rules_in,
            namespace="ml",
            service="vllm",
            backends=(AWS,),
            names=NAMES,
            w=Weights(8, {"aws": 0}),
            record=rec,
            now=t,
            drain=30.0,
        )
        return out, record_after(rules_in, out, namespace="ml", names=NAMES, group=MCS_GROUP, record=rec, now=t)

    first, rec = step(route_in, record, 100.0)
    assert {r["name"]: r["weight"] for r in first[0]["backendRefs"]} == {"vllm": 8, "old-aws": 0, "vllm-burst-aws": 0}
    assert rec[("net.gke.io", "ml", "old-aws")] == Recorded("aws", 100.0)
    assert rec[(MCS_GROUP, "ml", "vllm-burst-aws")] == Recorded("aws", 0.0)  # added at 0: never had weight
    assert draining(rec, 129.0, 30.0) == {"aws": 1.0}  # the replicas in aws wait
    second, rec = step(first, rec, 129.0)
    assert second == first and rec[("net.gke.io", "ml", "old-aws")].zero_since == 100.0
    third, rec = step(second, rec, 130.0)
    assert [r["name"] for r in third[0]["backendRefs"]] == ["vllm", "vllm-burst-aws"]
    assert draining(rec, 130.0, 30.0) == {}


def test_an_unreadable_record_is_no_record() -> None:
    assert parse_record("{not json") == {} and parse_record('[{"name": 1}]') == {} and parse_record(None) == {}
    assert dump_record({}) is None
