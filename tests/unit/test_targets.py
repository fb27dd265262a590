"""The shared room of a BurstTarget across policies."""

from __future__ import annotations

from overspill.api import parse_target_spec
from overspill.targets import TargetRegistry


def registry() -> TargetRegistry:
    r = TargetRegistry()
    r.upsert("aws", parse_target_spec({"kubeconfigSecretRef": {"name": "s", "namespace": "ops"}, "maxReplicas": 16}))
    r.upsert("gcp", parse_target_spec({"kubeconfigSecretRef": {"name": "s", "namespace": "ops"}}))
    return r


def test_room_is_what_other_policies_leave() -> None:
    r = registry()
    r.set_usage("p1", {"aws": 7})
    r.set_usage("p2", {"aws": 5})
    assert r.room_for("aws", "p1") == 11
    assert r.room_for("aws", "p3") == 4
    assert r.room_for("gcp", "p3") is None  # no cap


def test_a_deleted_policy_gives_its_room_back() -> None:
    r = registry()
    r.set_usage("p1", {"aws": 7})
    r.forget_policy("p1")
    assert r.room_for("aws", "p2") == 16


def test_a_target_dropped_from_a_policy_gives_its_room_back() -> None:
    r = registry()
    r.set_usage("p1", {"aws": 7})
    r.set_usage("p1", {"gcp": 3})
    assert r.room_for("aws", "p2") == 16
