"""Copies carry the installation that made them: one installation's policies share a copy of one source; a copy of
another installation's (same clusterName, same namespace and name) is a conflict, never overwritten."""

from __future__ import annotations

from typing import Any

from overspill import carry
from overspill.api.policy import Propagation
from overspill.carry import Kind, Reference, State

REF = Reference(Kind.CONFIG_MAP, "cfg", "spec.volumes[c].configMap")
SOURCE = {"metadata": {"name": "cfg", "namespace": "ml"}, "data": {"k": "a"}}


def copy_by(installation: str | None) -> dict[str, Any]:
    annotations = {carry.ORIGIN: "primary/ml/cfg", carry.OWNERS: "uid-b", carry.SOURCE_HASH: "old"}
    if installation:
        annotations[carry.INSTALLATION] = installation
    return {
        "metadata": {
            "name": "cfg",
            "namespace": "ml",
            "resourceVersion": "4",
            "labels": {carry.MANAGED_BY: carry.MANAGER, carry.POLICY_UID: "uid-b"},
            "annotations": annotations,
        },
        "data": {"k": "b"},
    }


def plan_over(there: dict[str, Any], installation: str | None, uid: str = "uid-a") -> carry.Item:
    found = carry.Sources(primary={REF.key: SOURCE}, target={REF.key: there}, observed=carry.Observed())
    p = carry.plan(
        [REF],
        Propagation(),
        found,
        namespace="ml",
        policy_uid=uid,
        origin_cluster="primary",
        origin_namespace="ml",
        installation=installation,
    )
    return p.items[0]


def test_policies_of_one_installation_share_a_copy() -> None:
    item = plan_over(copy_by("primary/k-1"), "primary/k-1")
    assert item.state == State.TO_COPY and item.body is not None
    assert item.body["metadata"]["annotations"][carry.OWNERS] == "uid-a,uid-b"
    assert item.body["metadata"]["annotations"][carry.INSTALLATION] == "primary/k-1"


def test_another_installations_copy_is_a_conflict() -> None:
    assert plan_over(copy_by("primary/k-2"), "primary/k-1").state == State.CONFLICT
    assert plan_over(copy_by(None), "primary/k-1").state == State.CONFLICT  # no mark: not provably ours


def test_a_copy_of_the_policys_own_gets_the_mark_once() -> None:
    unmarked = copy_by(None)
    unmarked["metadata"]["annotations"][carry.SOURCE_HASH] = carry.content_hash(Kind.CONFIG_MAP, SOURCE)
    item = plan_over(unmarked, "primary/k-1", uid="uid-b")  # current content, made before the mark existed
    assert item.state == State.TO_COPY and item.body is not None
    assert item.body["metadata"]["annotations"][carry.INSTALLATION] == "primary/k-1"
    assert plan_over(item.body, "primary/k-1", uid="uid-b").state == State.CARRIED
