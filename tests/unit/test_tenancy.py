"""A policy's mirrors land only in namespaces the BurstTarget allows; created namespaces get Pod Security."""

from __future__ import annotations

from typing import Any

from overspill.api import parse_target_spec
from overspill.decide.tenancy import placement_refusal, pod_security_labels


def target(**extra: Any) -> Any:
    return parse_target_spec({"kubeconfigSecretRef": {"name": "s", "namespace": "ops"}, **extra})


def test_by_default_only_the_policys_own_namespace_name() -> None:
    t = target()
    assert placement_refusal("aws", t, "team-a", "team-a") is None
    refused = placement_refusal("aws", t, "team-a", "team-b")
    assert refused is not None and "team-b" in refused and "allowedTargetNamespaces" in refused


def test_allowed_target_namespaces_widen_it() -> None:
    t = target(allowedTargetNamespaces=["burst-a", "burst-b"])
    assert placement_refusal("aws", t, "team-a", "burst-b") is None
    assert placement_refusal("aws", t, "team-a", "team-a") is not None  # the list replaces the default


def test_allowed_namespaces_still_apply() -> None:
    t = target(allowedNamespaces=["team-a"])
    refused = placement_refusal("aws", t, "team-b", "team-b")
    assert refused is not None and "allowedNamespaces" in refused


def test_pod_security_labels_default_to_baseline() -> None:
    assert pod_security_labels(target())["pod-security.kubernetes.io/enforce"] == "baseline"
    labels = pod_security_labels(target(podSecurity="restricted"))
    assert {labels[f"pod-security.kubernetes.io/{m}"] for m in ("enforce", "warn", "audit")} == {"restricted"}


# ---- one BurstTarget, many tenants: entries name each tenant's own namespaces ------------------------------------

PER_TENANT = {"allowedTargetNamespaces": ["{namespace}", "{namespace}-burst", "{namespace}-gpu-*"]}


def test_a_pattern_names_each_tenants_own_namespaces() -> None:
    t = target(**PER_TENANT)
    for ns in ("team-a", "team-a-burst", "team-a-gpu-1"):
        assert placement_refusal("aws", t, "team-a", ns) is None, ns
    assert placement_refusal("aws", t, "team-b", "team-b-burst") is None


def test_a_policy_in_a_cannot_land_in_b_through_a_pattern() -> None:
    """The malicious spec: a policy in namespace `a` sets overrides.namespace to tenant b's namespaces."""
    t = target(**PER_TENANT)
    for ns in ("b", "b-burst", "b-gpu-1", "a-burstx", "a-gpux", "xa-burst", "kube-system"):
        refused = placement_refusal("aws", t, "a", ns)
        assert refused is not None and ns in refused, ns


def test_per_source_namespace_entries() -> None:
    t = target(allowedTargetNamespacesBySource={"team-a": ["gpu-alpha"], "team-b": ["gpu-beta-*"]})
    assert placement_refusal("aws", t, "team-a", "gpu-alpha") is None
    assert placement_refusal("aws", t, "team-a", "team-a") is None  # the default still applies beside it
    assert placement_refusal("aws", t, "team-b", "gpu-beta-1") is None
    assert placement_refusal("aws", t, "team-a", "gpu-beta-1") is not None  # team b's, not team a's
    assert placement_refusal("aws", t, "team-c", "gpu-alpha") is not None


def test_a_pattern_entry_that_is_no_namespace_is_refused_with_the_field() -> None:
    import pytest

    from overspill.api.validation import SpecError

    for bad in ("{ns}", "Team", "{namespace}.x", "a" * 64):
        with pytest.raises(SpecError) as info:
            target(allowedTargetNamespaces=[bad])
        assert "allowedTargetNamespaces" in str(info.value), bad
