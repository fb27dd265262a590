"""A policy's mirrors land only in namespaces the BurstTarget allows; created namespaces get Pod Security."""

from __future__ import annotations

from typing import Any

import pytest

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

PER_TENANT = {"allowedTargetNamespaces": ["{namespace}-burst", "{namespace}-gpu-*"]}


def test_a_pattern_names_each_tenants_own_namespaces() -> None:
    t = target(**PER_TENANT)
    for ns in ("team-a-burst", "team-a-gpu-1"):
        assert placement_refusal("aws", t, "team-a", ns) is None, ns
    assert placement_refusal("aws", t, "team-b", "team-b-burst") is None


def test_a_fixed_suffix_pattern_does_not_reach_another_tenants_own_namespace() -> None:
    """rev10c: with `{namespace}` and `{namespace}-burst`, tenant `a` reached `a-burst`, which is also where
    tenant `a-burst`'s mirrors go by `{namespace}`: one tenant's pods (and copied Secrets) in another's namespace.
    A namespace named like a policy's own is its own; one the patterns give two tenants is refused to the other."""
    t = target(allowedTargetNamespaces=["{namespace}", "{namespace}-burst"])
    assert placement_refusal("aws", t, "a-burst", "a-burst") is None  # tenant a-burst's own namespace
    refused = placement_refusal("aws", t, "a", "a-burst")
    assert refused is not None and "also allowed to policies of namespace a-burst" in refused, refused
    assert placement_refusal("aws", t, "a", "a") is None


@pytest.mark.parametrize(
    ("entries", "source", "into", "other"),
    [
        (["{namespace}-*"], "a", "a-b-c", "a-b"),  # a prefix pattern: a-b-c is a's (a + b-c) and a-b's (a-b + c)
        (["{namespace}-burst", "x-{namespace}"], "x-a", "x-a-burst", "a-burst"),  # two patterns, no own name
        (["{namespace}-burst"], "a", "a-burst", None),  # one fixed suffix: each tenant's name maps to one namespace
        (["{namespace}-gpu-*"], "a", "a-gpu-1", None),
    ],
)
def test_a_namespace_two_tenants_are_given_by_patterns_is_neither_ones(
    entries: list[str], source: str, into: str, other: str | None
) -> None:
    refused = placement_refusal("aws", target(allowedTargetNamespaces=entries), source, into)
    assert (refused is None) == (other is None), refused
    if other is not None:
        assert f"namespace {other} " in (refused or ""), refused


def test_a_namespace_named_for_one_source_is_not_reached_by_anothers_pattern() -> None:
    t = target(allowedTargetNamespaces=["{namespace}-burst"], allowedTargetNamespacesBySource={"b": ["a-burst"]})
    assert placement_refusal("aws", t, "b", "a-burst") is None  # given to b by name: the administrator's choice
    assert placement_refusal("aws", t, "a", "a-burst") is not None


def test_a_name_shared_with_every_tenant_stays_shared() -> None:
    """An entry without `{namespace}` is the administrator's decision that tenants share it."""
    t = target(allowedTargetNamespaces=["{namespace}", "shared-*"])
    assert placement_refusal("aws", t, "a", "shared-x") is None
    assert placement_refusal("aws", t, "b", "shared-x") is None


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
