"""Two BurstTargets may name one cluster: a mirror belongs to the target that placed it (seen on the lab: the
policy's mirror placed through one target was drained as "unwanted" through the other)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from overspill import sweep as sweep_module
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
            "uid": "d-1",
            "labels": {MANAGED_BY: MANAGER, POLICY_UID: "u1"},
            "annotations": annotations,
        },
        "spec": {"replicas": 4},
    }


def view(*objs: dict[str, Any]) -> Any:
    caches: dict[str, Any] = {"deployments": objs, "pods": (), "configmaps": (), "serviceaccounts": (), "services": ()}

    def cache(resource: Any, *_: Any, **__: Any) -> Any:
        found = list(caches[resource.plural])
        return SimpleNamespace(
            resource=resource,
            label_selector=MANAGED_SELECTOR,
            synced=True,
            by_label=lambda k, v: found,
            list=lambda: found,
            get=lambda ns, name: next(
                (o for o in found if (o["metadata"]["namespace"], o["metadata"]["name"]) == (ns, name)), None
            ),
        )

    return SimpleNamespace(
        cache=cache, caches=lambda: [cache(r) for r in (CONFIGMAPS, SERVICEACCOUNTS, SERVICES)], problem=None
    )


def registry(**views: Any) -> Any:
    """BurstTargets by name, each with the view of the cluster it names (one view object: one cluster)."""
    handles = {name: SimpleNamespace(view=v, cluster=object(), healthy=True, message="") for name, v in views.items()}
    return SimpleNamespace(names=lambda: list(handles), get=handles.get)


def found_through(target: str, reg: Any, wanted: set[tuple[str, str, str]] | None = None) -> list[tuple[str, int]]:
    return [
        (m.target, m.replicas)
        for m in mirrors(reg.get(target).view, target, "u1", lambda *a: 0, wanted or set(), registry=reg)
    ]


def test_a_mirror_placed_through_another_target_is_not_this_targets_to_drain() -> None:
    shared = view(mirror("stockout-second"))
    assert found_through("secondary", registry(secondary=shared, **{"stockout-second": shared})) == []


def test_a_mirror_is_found_through_the_target_that_placed_it() -> None:
    shared = view(mirror("secondary"))
    assert found_through("secondary", registry(secondary=shared, **{"stockout-second": shared})) == [("secondary", 4)]


def test_mirrors_from_before_the_annotation_are_still_found() -> None:
    assert found_through("secondary", registry(secondary=view(mirror(None)))) == [("secondary", 4)]


class Writes:
    """MirrorClient as the sweep uses it: what it would write."""

    done: list[tuple[str, str, int | None]] = []  # noqa: RUF012

    def __init__(self, cluster: Any) -> None:
        pass

    def scale(self, ref: Any, replicas: int) -> None:
        Writes.done.append(("scale", ref.name, replicas))

    def delete(self, ref: Any) -> None:
        Writes.done.append(("delete", ref.name, None))


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, int | None]]:
    Writes.done = []
    monkeypatch.setattr(sweep_module, "MirrorClient", Writes)
    return Writes.done


def run(reg: Any, wanted: set[tuple[str, str, str]]) -> None:
    sweep(reg, "u1", wanted, release_ready=True, hold_for=lambda *a: 0, remove_copies=lambda *a: 0)


def test_a_mirror_placed_under_a_targets_old_name_is_drained_by_the_target_serving_its_cluster(
    writes: list[tuple[str, str, int | None]],
) -> None:
    """The BurstTarget `old` was renamed `new` on the same cluster: the mirror `old` placed (annotated with it) is
    no other known target's, so `new`, whose cluster holds it, drains it (it ran on with its replicas)."""
    run(registry(new=view(mirror("old"))), wanted=set())
    assert writes == [("scale", "vllm", 0)]


def test_a_mirror_under_an_old_name_is_adopted_by_the_target_that_wants_it(
    writes: list[tuple[str, str, int | None]],
) -> None:
    run(registry(new=view(mirror("old"))), wanted={("new", "ml", "vllm")})
    assert writes == []


def test_a_mirror_annotated_with_a_target_that_now_names_another_cluster_is_drained_here(
    writes: list[tuple[str, str, int | None]],
) -> None:
    """`old` now points at another cluster (its view does not hold this object): the mirror here is no one's
    but the target serving this cluster."""
    run(registry(new=view(mirror("old")), old=view()), wanted=set())
    assert writes == [("scale", "vllm", 0)]


def test_two_targets_on_one_cluster_drain_an_unknown_targets_mirror_once(
    writes: list[tuple[str, str, int | None]],
) -> None:
    shared = view(mirror("gone"))
    run(registry(a=shared, b=shared), wanted=set())
    assert writes == [("scale", "vllm", 0)]


def test_a_mirror_under_an_old_name_that_another_target_of_the_policy_wants_stays(
    writes: list[tuple[str, str, int | None]],
) -> None:
    """Two targets on one cluster; the policy wants the mirror through `a`: `b` must not drain it."""
    shared = view(mirror("gone"))
    run(registry(a=shared, b=shared), wanted={("a", "ml", "vllm")})
    assert writes == []


def test_copies_serving_a_mirror_placed_through_another_target_stay() -> None:
    """Seen on the lab (tests/e2e/test_install_helm.py): the sweep through the target the policy does not name
    found the policy's copies in the shared cluster, took the namespace for vacated and deleted them, Secrets
    included, from under the mirror the other target placed there."""
    copy = {"metadata": {"name": "vllm-config", "namespace": "ml", "labels": {MANAGED_BY: MANAGER, POLICY_UID: "u1"}}}
    caches = {"deployments": [mirror("least-privilege")], "pods": [], "configmaps": [copy]}

    def cache(resource: Any, *_: Any, **__: Any) -> Any:
        objs = caches.get(resource.plural, [])
        return SimpleNamespace(
            resource=resource,
            label_selector=MANAGED_SELECTOR,
            synced=True,
            by_label=lambda k, v: list(objs),
            get=lambda ns, name: next(iter(objs), None),
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
