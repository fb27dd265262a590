"""Which namespaces of a target a policy's objects may land in (pure).

Two lists on the BurstTarget, both checked: `allowedNamespaces` names the policies' namespaces (in the primary)
that may use the target, `allowedTargetNamespaces` the target's namespaces mirrors may land in. Without the
second, a policy may use only the namespace named like its own: `overrides.namespace` can no longer put one
tenant's pods into another tenant's namespace.
"""

from __future__ import annotations

from overspill.api.target import BurstTargetSpec

POD_SECURITY_MODES = ("enforce", "warn", "audit")


def placement_refusal(target: str, spec: BurstTargetSpec, policy_namespace: str, mirror_namespace: str) -> str | None:
    """Why this policy may not place replicas in `mirror_namespace` of the target, or None when it may."""
    if spec.allowed_namespaces is not None and policy_namespace not in spec.allowed_namespaces:
        return f"BurstTarget {target} does not allow policies of namespace {policy_namespace} (spec.allowedNamespaces)"
    allowed = spec.allowed_target_namespaces if spec.allowed_target_namespaces is not None else [policy_namespace]
    if mirror_namespace not in allowed:
        return (
            f"BurstTarget {target} does not allow mirrors in its namespace {mirror_namespace} "
            f"(spec.allowedTargetNamespaces: {', '.join(allowed) or 'none'}); set overrides.namespace to one of "
            "those, or ask the target's administrator to allow it"
        )
    return None


def pod_security_labels(spec: BurstTargetSpec) -> dict[str, str]:
    """Labels for a namespace Overspill creates in the target: the target's Pod Security level, enforced."""
    level = spec.pod_security.value
    labels = {f"pod-security.kubernetes.io/{mode}": level for mode in POD_SECURITY_MODES}
    labels |= {f"pod-security.kubernetes.io/{mode}-version": "latest" for mode in POD_SECURITY_MODES}
    return labels
