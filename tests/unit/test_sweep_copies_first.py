"""A mirror goes only once what it carried is gone (review 10d): the mirror is the one record of its namespace
that every process finds again by label, so a copy removal that fails keeps it for the next sweep, in this process
or a restarted one. A Secret copy left without a mirror (by an older version) is found at the policy's deletion
in the namespaces its targets allow it by name."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client import ApiException

from overspill.sweep import sweep
from tests.unit.test_sweep_targets import Writes, mirror, registry, view, writes  # noqa: F401 - the fixture

__all__ = ["writes"]


def drained() -> dict[str, Any]:
    m = mirror("t")
    m["spec"]["replicas"] = 0
    return m


def test_a_mirror_whose_copies_cannot_be_removed_stays_as_the_record_to_retry_from(
    writes: list[tuple[str, str, int | None]],
) -> None:
    def failing(cluster: Any, ns: str, uid: str) -> int:
        raise ApiException(status=503)

    result = sweep(
        registry(t=view(drained())), "u1", set(), release_ready=True, hold_for=lambda *a: 0, remove_copies=failing
    )
    assert writes == [], "the mirror was deleted before its copies: after a restart nothing finds them"
    assert "t" in result.pending


def test_copies_go_before_the_mirror(writes: list[tuple[str, str, int | None]]) -> None:
    order: list[str] = []

    def remove(cluster: Any, ns: str, uid: str) -> int:
        order.append(f"copies {ns}")
        return 1

    sweep(registry(t=view(drained())), "u1", set(), release_ready=True, hold_for=lambda *a: 0, remove_copies=remove)
    assert order == ["copies ml"] and writes == [("delete", "vllm", None)]


@pytest.mark.parametrize(("status", "pending"), [(403, False), (404, False), (500, True)])
def test_a_searched_namespace_the_operator_may_not_list_holds_nothing(
    writes: list[tuple[str, str, int | None]], status: int, pending: bool
) -> None:
    searched: list[str] = []

    def remove(cluster: Any, ns: str, uid: str) -> int:
        searched.append(ns)
        raise ApiException(status=status)

    result = sweep(
        registry(t=view()),
        "u1",
        set(),
        release_ready=True,
        hold_for=lambda *a: 0,
        remove_copies=remove,
        search={("t", "old"), ("other", "x")},
    )
    assert searched == ["old"]
    assert ("t" in result.pending) == pending
