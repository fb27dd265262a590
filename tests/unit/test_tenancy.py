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
