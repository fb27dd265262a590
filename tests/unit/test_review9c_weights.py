"""Review 9c (adversarial): route weights and the drain record still break."""

from __future__ import annotations

from typing import Any

from overspill.adapters.traffic import route_local_key, route_peers, route_record_key
from overspill.decide.weights import (
    MCS_GROUP,
    SERVICE_IMPORT,
    Backend,
    Recorded,
    Weights,
    dump_record,
    record_after,
    route_rules,
)


def imp(name: str, weight: int) -> dict[str, Any]:
    return {"group": MCS_GROUP, "kind": SERVICE_IMPORT, "name": name, "port": 80, "weight": weight}


# The review's first three breaks (canary scaling, a Ready target beside a canary, a weight put back mid-drain)
# are tested in test_weights_review.py.


def _apply(
    rules: list[dict[str, Any]],
    service: str,
    base: str,
    local: int,
    aws: int,
    annotations: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One policy's write. With `annotations` (the route's), as Serving.route does it: the other policies' records
    and local Services there are their backendRefs, and this policy's record and local Service are written."""
    names = {"aws": f"{base}-aws"}
    uid = f"uid-{service}"
    peers = route_peers(annotations, uid) if annotations is not None else set()
    out = route_rules(
        rules,
        namespace="ml",
        service=service,
        backends=[Backend("aws", f"{base}-aws", "ml")],
        names=names,
        w=Weights(local, {"aws": aws}),
        peers=peers,
    )
    if annotations is not None:
        rec = record_after(rules, out, namespace="ml", names=names, group=MCS_GROUP, record={}, now=1.0)
        annotations[route_record_key(uid)] = dump_record(rec) or ""
        annotations[route_local_key(uid)] = f"ml/{service}"
    return out


def test_two_policies_in_one_rule_settle() -> None:
    """Two policies (vllm-a, vllm-b) whose Services share one rule of one HTTPRoute, a bursting (4 at home +
    36 Ready in aws), b not (4 at home). Each treats the other's backendRefs as a canary and keeps their share, so
    the rule stays split at the share of the first write (1:1 -> 50:50): a's 40 replicas get half the requests,
    b's 4 the other half. Weights never follow Ready replicas across the two policies.

    (Fixed: each policy writes its record and its local Service on the route, so the other one knows them for
    another policy's backendRefs, not a canary; the test now writes and reads those annotations as the operator
    does.)"""
    rules: list[dict[str, Any]] = [{"backendRefs": [{"name": "vllm-a", "port": 80}, {"name": "vllm-b", "port": 80}]}]
    annotations: dict[str, str] = {}
    seen = []
    for _ in range(6):
        rules = _apply(rules, "vllm-a", "vllm-a-burst", 4, 36, annotations)
        rules = _apply(rules, "vllm-b", "vllm-b-burst", 4, 0, annotations)
        seen.append({r["name"]: r["weight"] for r in rules[0]["backendRefs"]})
    assert seen[-1] == seen[-2], seen
    # shares follow Ready replicas: a has 40 Ready (4 + 36 burst), b 4: a's side should get ~10x b's
    last = seen[-1]
    a = last["vllm-a"] + last["vllm-a-burst-aws"]
    b = last["vllm-b"] + last["vllm-b-burst-aws"]
    assert a >= 5 * b, last


def test_two_policies_on_one_service_do_not_fight_over_its_weight() -> None:
    """Two workloads (a100 and h100 Deployments) behind one Service vllm, one policy each, one route: each policy
    sets vllm's weight to its own primary's Ready count. The weight flips every poll: a route write per poll, and
    the other policy's import share moves each time."""
    rules: list[dict[str, Any]] = [{"backendRefs": [{"name": "vllm", "port": 80}]}]
    seen = []
    for _ in range(4):
        rules = _apply(rules, "vllm", "a-burst", 4, 4)
        seen.append({r["name"]: r["weight"] for r in rules[0]["backendRefs"]})
        rules = _apply(rules, "vllm", "b-burst", 8, 2)
        seen.append({r["name"]: r["weight"] for r in rules[0]["backendRefs"]})
    assert seen[-1] == seen[-2], seen


GATEWAY_BACKENDREFS_MAX = 16  # Gateway API HTTPRouteRule.backendRefs: +kubebuilder:validation:MaxItems=16


def test_a_rule_never_gets_more_backend_refs_than_the_gateway_api_allows() -> None:
    """8 targets hold replicas and exportName changes (vllm-burst -> llm): the 8 old backendRefs drain at 0 while
    the 8 new ones are added beside the local Service: 17 in one rule. The API server refuses the write (maxItems
    16), the route stays unconfirmed, every secondary is held (no scale-down) and the old backendRefs never drain.
    The same with 16 targets (MAX_TARGETS) and no rename at all, or 15 and a canary."""
    targets = [f"t{i}" for i in range(8)]
    old = {t: f"vllm-burst-{t}" for t in targets}
    new = {t: f"llm-{t}" for t in targets}
    record = {(MCS_GROUP, "ml", n): Recorded(t) for t, n in old.items()}
    before = [{"backendRefs": [{"name": "vllm", "port": 80, "weight": 8}, *[imp(n, 2) for n in old.values()]]}]
    out = route_rules(
        before,
        namespace="ml",
        service="vllm",
        backends=[Backend(t, n, "ml") for t, n in new.items()],
        names={**old, **new},
        w=Weights(8, dict.fromkeys(targets, 2)),
        record=record,
        now=100.0,
        drain=30.0,
    )
    assert len(out[0]["backendRefs"]) <= GATEWAY_BACKENDREFS_MAX, len(out[0]["backendRefs"])
