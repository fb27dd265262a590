"""Two BurstTargets may name one cluster: a mirror belongs to the target that placed it (seen on the lab: the
policy's mirror placed through one target was drained as "unwanted" through the other)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from overspill.adapters.mirror import MANAGED_BY, MANAGER, POLICY_UID, TARGET_NAME
from overspill.sweep import mirrors


def mirror(target: str | None) -> dict[str, Any]:
    annotations = {TARGET_NAME: target} if target else {}
    return {
        "metadata": {
            "name": "vllm",
            "namespace": "ml",
            "labels": {MANAGED_BY: MANAGER, POLICY_UID: "u1"},
            "annotations": annotations,
        },
        "spec": {"replicas": 4},
    }


def view(*objs: dict[str, Any]) -> Any:
    caches = {"deployments": objs, "pods": ()}
    return SimpleNamespace(
        cache=lambda resource, *a, **k: SimpleNamespace(by_label=lambda k, v: list(caches[resource.plural]))
    )


def test_a_mirror_placed_through_another_target_is_not_this_targets_to_drain() -> None:
    found = mirrors(view(mirror("stockout-second")), "secondary", "u1", lambda *a: 0, wanted=set())
    assert found == []


def test_a_mirror_is_found_through_the_target_that_placed_it() -> None:
    found = mirrors(view(mirror("secondary")), "secondary", "u1", lambda *a: 0, wanted=set())
    assert [(m.namespace, m.name, m.replicas) for m in found] == [("ml", "vllm", 4)]


def test_mirrors_from_before_the_annotation_are_still_found() -> None:
    assert len(mirrors(view(mirror(None)), "secondary", "u1", lambda *a: 0, wanted=set())) == 1
