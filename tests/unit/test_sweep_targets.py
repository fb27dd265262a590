"""Two BurstTargets may name one cluster: a mirror belongs to the target that placed it (seen on the lab: the
policy's mirror placed through one target was drained as "unwanted" through the other)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from overspill.adapters.mirror import MANAGED_BY, MANAGER, POLICY_UID, TARGET_NAME
from overspill.sweep import mirrors, sweep
from overspill.views import MANAGED_SELECTOR
from overspill.views.resource import CONFIGMAPS, SERVICEACCOUNTS, SERVICES


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


def test_copies_serving_a_mirror_placed_through_another_target_stay() -> None:
    """Seen on the lab (tests/e2e/test_install_helm.py): the sweep through the target the policy does not name
    found the policy's copies in the shared cluster, took the namespace for vacated and deleted them, Secrets
    included, from under the mirror the other target placed there."""
    copy = {"metadata": {"name": "vllm-config", "namespace": "ml", "labels": {MANAGED_BY: MANAGER, POLICY_UID: "u1"}}}
    caches = {"deployments": [mirror("least-privilege")], "pods": [], "configmaps": [copy]}

    def cache(resource: Any, *_: Any, **__: Any) -> Any:
        objs = caches.get(resource.plural, [])
        return SimpleNamespace(
            resource=resource, label_selector=MANAGED_SELECTOR, synced=True, by_label=lambda k, v: list(objs)
        )

    shared = SimpleNamespace(
        cache=cache, caches=lambda: [cache(r) for r in (CONFIGMAPS, SERVICEACCOUNTS, SERVICES)], problem=None
    )
    handles = {
        name: SimpleNamespace(view=shared, cluster=object(), healthy=True, message="")
        for name in ("secondary", "least-privilege")
    }
    registry = SimpleNamespace(names=lambda: list(handles), get=handles.get)
    removed: list[tuple[str, str]] = []
    result = sweep(
        registry,  # type: ignore[arg-type]
        "u1",
        {("least-privilege", "ml", "vllm")},
        release_ready=True,
        hold_for=lambda *a: 0,
        remove_copies=lambda cluster, ns, uid: removed.append((ns, uid)) or 1,
    )
    assert removed == [] and result.writes == 0
