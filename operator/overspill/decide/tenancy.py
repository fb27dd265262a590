"""Which namespaces of a target a policy's objects may land in (pure).

Lists on the BurstTarget, all checked: `allowedNamespaces` names the policies' namespaces (in the primary) that
may use the target, `allowedTargetNamespaces` the target's namespaces mirrors may land in (entries may be patterns
with the policy's own namespace substituted: `{namespace}-burst`), `allowedTargetNamespacesBySource` more of them
per policy namespace. Without those, a policy may use only the namespace named like its own: `overrides.namespace`
can no longer put one tenant's pods into another tenant's namespace.
"""

from __future__ import annotations

import re

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
    return None


def pod_security_labels(spec: BurstTargetSpec) -> dict[str, str]:
    """Labels for a namespace Overspill creates in the target: the target's Pod Security level, enforced."""
    level = spec.pod_security.value
    labels = {f"pod-security.kubernetes.io/{mode}": level for mode in POD_SECURITY_MODES}
    labels |= {f"pod-security.kubernetes.io/{mode}-version": "latest" for mode in POD_SECURITY_MODES}
    return labels
