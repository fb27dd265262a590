"""A rule never gets more than the Gateway API's 16 backendRefs (a longer one is refused whole and every secondary
is held): the policy's leaving backendRefs go first, their drain kept by the record; then the least-weighted
wanted imports are left out, and said so."""

from __future__ import annotations

from typing import Any

from overspill.decide.weights import (
    BACKEND_REFS_MAX,
    MCS_GROUP,
    Backend,
    Recorded,
    Weights,
    draining,
    left_out,
    record_after,
    route_rules,
)


def imp(name: str, weight: int) -> dict[str, Any]:
    return {"group": MCS_GROUP, "kind": "ServiceImport", "name": name, "port": 80, "weight": weight}


def names_of(rules: list[dict[str, Any]]) -> dict[str, int]:
    return {r["name"]: r["weight"] for r in rules[0]["backendRefs"]}


def test_leaving_backend_refs_make_room_and_keep_their_drain() -> None:
    targets = [f"t{i}" for i in range(8)]
    old = {t: f"vllm-burst-{t}" for t in targets}
    new = {t: f"llm-{t}" for t in targets}
    record = {(MCS_GROUP, "ml", n): Recorded(t, None, 60.0) for t, n in old.items()}
    before = [{"backendRefs": [{"name": "vllm", "port": 80, "weight": 8}, *[imp(n, 2) for n in old.values()]]}]
    backends = [Backend(t, n, "ml") for t, n in new.items()]
    args: dict[str, Any] = {"namespace": "ml", "names": {**old, **new}, "group": MCS_GROUP}
    out = route_rules(
        before,
        service="vllm",
        backends=backends,
        w=Weights(8, dict.fromkeys(targets, 2)),
        record=record,
        now=100.0,
        drain=60.0,
        **{k: v for k, v in args.items() if k != "group"},
    )
    assert len(out[0]["backendRefs"]) == BACKEND_REFS_MAX
    assert set(new.values()) <= set(names_of(out))  # every wanted import is in: a leaving one made room
    (cut,) = [t for t, n in old.items() if n not in names_of(out)]
    assert left_out(out, backends, namespace="ml") == []
    rec = record_after(before, out, record=record, now=100.0, drain=60.0, **args)
    assert all(rec[(MCS_GROUP, "ml", n)] == Recorded(t, 100.0, 60.0) for t, n in old.items()), rec
    assert cut in draining(rec, 130.0, 60.0)  # out of the route, its replicas still stay for the drain time
    later = record_after(out, out, record=rec, now=161.0, drain=60.0, **args)
    assert (MCS_GROUP, "ml", old[cut]) not in later  # and the record lets go once it is over


def test_wanted_imports_beyond_the_limit_are_left_out_least_weighted_first() -> None:
    foreign = [{"name": f"other-{i}", "port": 80, "weight": 0} for i in range(6)]
    before = [{"backendRefs": [{"name": "vllm", "port": 80, "weight": 4}, *foreign]}]
    targets = [f"t{i}" for i in range(12)]
    backends = [Backend(t, f"vllm-burst-{t}", "ml") for t in targets]
    ready = {t: 1 + i for i, t in enumerate(targets)}  # t0 has the fewest Ready replicas
    out = route_rules(
        before,
        namespace="ml",
        service="vllm",
        backends=backends,
        names={b.target: b.name for b in backends},
        w=Weights(4, ready),
    )
    assert len(out[0]["backendRefs"]) == BACKEND_REFS_MAX
    assert {r["name"] for r in out[0]["backendRefs"]} >= {"vllm", *(f["name"] for f in foreign)}
    assert left_out(out, backends, namespace="ml") == ["t0", "t1", "t2"]
