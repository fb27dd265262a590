"""The registry of BurstTargets: their shared caps go through the ledger; their key material goes with them."""

from __future__ import annotations

import os

from overspill.adapters.kubeconfig import TargetCredentials
from overspill.api import parse_target_spec
from overspill.targets import TargetRegistry


def registry() -> TargetRegistry:
    r = TargetRegistry()
    r.upsert("aws", parse_target_spec({"kubeconfigSecretRef": {"name": "s", "namespace": "ops"}, "maxReplicas": 16}))
    r.upsert("gcp", parse_target_spec({"kubeconfigSecretRef": {"name": "s", "namespace": "ops"}}))
    return r


def test_room_is_what_other_policies_reserved() -> None:
    r = registry()
    r.ledger.rebuild("aws", {})
    assert r.ledger.reserve("aws", "p1", 7, 0) == 7
    assert r.ledger.reserve("aws", "p2", 5, 0) == 5
    assert r.room_for("aws", "p1") == 11
    assert r.room_for("aws", "p3") == 4
    assert r.room_for("gcp", "p3") is None  # no cap
    assert r.usage("aws") == 12


def test_a_changed_cap_applies_at_once() -> None:
    r = registry()
    r.ledger.rebuild("aws", {"p1": 7})
    r.upsert("aws", parse_target_spec({"kubeconfigSecretRef": {"name": "s", "namespace": "ops"}, "maxReplicas": 8}))
    assert r.room_for("aws", "p2") == 1


def test_a_removed_target_takes_its_key_material_with_it() -> None:
    r = registry()
    creds = TargetCredentials("aws")
    r.set_credentials("aws", creds)
    newer = TargetCredentials("aws")
    r.set_credentials("aws", newer)  # a new kubeconfig: the old files go at once
    assert not os.path.exists(creds.path)
    r.remove("aws")
    assert not os.path.exists(newer.path)
