"""Which namespaces of a target a policy's objects may land in (pure).

Lists on the BurstTarget, all checked: `allowedNamespaces` names the policies' namespaces (in the primary) that
may use the target, `allowedTargetNamespaces` the target's namespaces mirrors may land in (entries may be patterns
with the policy's own namespace substituted: `{namespace}-burst`), `allowedTargetNamespacesBySource` more of them
per policy namespace. Without those, a policy may use only the namespace named like its own: `overrides.namespace`
can no longer put one tenant's pods into another tenant's namespace.

A pattern can give one target namespace to two tenants: with `{namespace}` and `{namespace}-burst`, tenant `a`
reaches `a-burst`, which is also tenant `a-burst`'s own. A namespace is never shared that way: a namespace named
like the policy's own is always its own; any other namespace a pattern gives it is refused when the lists also give
that namespace to another policy namespace (its own name first). Only an entry without `{namespace}` (a name or a
wildcard the administrator meant to share) lets tenants share a namespace.
"""

from __future__ import annotations

import re
from functools import lru_cache

from overspill.api.target import BurstTargetSpec

DEFAULT_TARGET_NAMESPACES = ("{namespace}",)


def namespace_matches(entry: str, policy_namespace: str, namespace: str) -> bool:
    """`entry` (a name or a pattern: `{namespace}` is the policy's namespace, `*` any run of [a-z0-9-]) names
    `namespace`. The policy's namespace is a DNS label: substituting it cannot add a wildcard."""
    text = entry.replace("{namespace}", policy_namespace)
    regex = "".join("[a-z0-9-]*" if c == "*" else re.escape(c) for c in text)
    return re.fullmatch(regex, namespace) is not None


def allowed_target_namespaces(spec: BurstTargetSpec, policy_namespace: str) -> list[str]:
    """The entries that apply to policies of `policy_namespace`."""
    common = spec.allowed_target_namespaces
    entries = list(DEFAULT_TARGET_NAMESPACES if common is None else common)
    return entries + list((spec.allowed_target_namespaces_by_source or {}).get(policy_namespace, []))


def named_target_namespaces(spec: BurstTargetSpec, policy_namespace: str) -> set[str]:
    """The target's namespaces the lists give policies of `policy_namespace` by name (wildcard entries, which
    name no namespace in particular, are left out): where such a policy may have put objects."""
    entries = (e.replace("{namespace}", policy_namespace) for e in allowed_target_namespaces(spec, policy_namespace))
    return {e for e in entries if "*" not in e and _LABEL.fullmatch(e)}


_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _sources(entry: str, namespace: str) -> set[str]:
    """The policy namespaces for which the pattern `entry` names `namespace`."""
    head, sep, tail = entry.partition("{namespace}")
    if sep and "*" not in entry and "{namespace}" not in tail:  # the usual case: one source at most
        if len(namespace) > len(head) + len(tail) and namespace.startswith(head) and namespace.endswith(tail):
            source = namespace[len(head) : len(namespace) - len(tail)]
            return {source} if _LABEL.fullmatch(source) else set()
        return set()
    n = len(namespace)  # a wildcard beside it: any label inside the name could be the source
    found = {namespace[i:j] for i in range(n) for j in range(i + 1, n + 1)}
    return {c for c in found if _LABEL.fullmatch(c) and namespace_matches(entry, c, namespace)}


@lru_cache(maxsize=4096)
def _shared_with(
    common: tuple[str, ...], by_source: tuple[tuple[str, tuple[str, ...]], ...], source: str, namespace: str
) -> str | None:
    """Another policy namespace the lists also give `namespace` to (by a pattern, or by name to it alone), or
    None. Only asked for a namespace that `source` reaches through a `{namespace}` pattern."""
    others: set[str] = set()
    for entry in common:
        if "{namespace}" in entry:
            others |= _sources(entry, namespace)
    for other, entries in by_source:
        if any(namespace_matches(e, other, namespace) for e in entries):
            others.add(other)
    others.discard(source)
    if namespace in others:
        return namespace  # its own name first
    return min(others) if others else None


def sharing_refusal(target: str, spec: BurstTargetSpec, policy_namespace: str, mirror_namespace: str) -> str | None:
    """Why `mirror_namespace`, which the lists give this policy by a pattern, is another tenant's too (or None)."""
    if mirror_namespace == policy_namespace:
        return None  # a namespace named like the policy's own is its own
    allowed = allowed_target_namespaces(spec, policy_namespace)
    if any("{namespace}" not in e and namespace_matches(e, policy_namespace, mirror_namespace) for e in allowed):
        return None  # named by the administrator (for every tenant, or for this one by source): meant so
    common = tuple(
        DEFAULT_TARGET_NAMESPACES if spec.allowed_target_namespaces is None else spec.allowed_target_namespaces
    )
    by_source = tuple(sorted((k, tuple(v)) for k, v in (spec.allowed_target_namespaces_by_source or {}).items()))
    other = _shared_with(common, by_source, policy_namespace, mirror_namespace)
    if other is None:
        return None
    return (
        f"BurstTarget {target}: its namespace {mirror_namespace} is also allowed to policies of namespace {other} "
        f"(spec.allowedTargetNamespaces, allowedTargetNamespacesBySource), so mirrors of namespace "
        f"{policy_namespace} may not land there: one tenant never shares another's namespace. Set "
        "overrides.namespace to a namespace only this tenant is given, or ask the target's administrator to list "
        "it by name for this namespace (allowedTargetNamespacesBySource)"
    )


POD_SECURITY_MODES = ("enforce", "warn", "audit")


def placement_refusal(target: str, spec: BurstTargetSpec, policy_namespace: str, mirror_namespace: str) -> str | None:
    """Why this policy may not place replicas in `mirror_namespace` of the target, or None when it may."""
    if spec.allowed_namespaces is not None and policy_namespace not in spec.allowed_namespaces:
        return f"BurstTarget {target} does not allow policies of namespace {policy_namespace} (spec.allowedNamespaces)"
    allowed = allowed_target_namespaces(spec, policy_namespace)
    if not any(namespace_matches(entry, policy_namespace, mirror_namespace) for entry in allowed):
        shown = ", ".join(entry.replace("{namespace}", policy_namespace) for entry in allowed) or "none"
        return (
            f"BurstTarget {target} does not allow mirrors of namespace {policy_namespace} in its namespace "
            f"{mirror_namespace} (spec.allowedTargetNamespaces, allowedTargetNamespacesBySource: {shown}); set "
            "overrides.namespace to one of those, or ask the target's administrator to allow it"
        )
    return sharing_refusal(target, spec, policy_namespace, mirror_namespace)


def pod_security_labels(spec: BurstTargetSpec) -> dict[str, str]:
    """Labels for a namespace Overspill creates in the target: the target's Pod Security level, enforced."""
    level = spec.pod_security.value
    labels = {f"pod-security.kubernetes.io/{mode}": level for mode in POD_SECURITY_MODES}
    labels |= {f"pod-security.kubernetes.io/{mode}-version": "latest" for mode in POD_SECURITY_MODES}
    return labels
