"""Typed models of the Overspill API (overspill.dev/v1alpha1): the single source of truth for crds/."""

from overspill.api.policy import (
    Behavior,
    BurstPolicy,
    BurstPolicySpec,
    BurstPolicyStatus,
    Busy,
    Fallback,
    FallbackAction,
    Metric,
    Mode,
    PolicyTarget,
    Predictive,
    Primary,
    PrometheusSource,
    Propagation,
    TargetOverrides,
    TemplateUpdate,
    Traffic,
    WorkloadClass,
    WorkloadRef,
)
from overspill.api.target import (
    BurstTarget,
    BurstTargetSpec,
    BurstTargetStatus,
    PodSecurityLevel,
    SecretRef,
    TargetPrometheus,
)
from overspill.api.validation import SpecError, format_errors, parse_policy_spec, parse_target_spec

GROUP = "overspill.dev"
VERSION = "v1alpha1"

__all__ = [
    "GROUP",
    "VERSION",
    "Behavior",
    "BurstPolicy",
    "BurstPolicySpec",
    "BurstPolicyStatus",
    "BurstTarget",
    "BurstTargetSpec",
    "BurstTargetStatus",
    "Busy",
    "Fallback",
    "FallbackAction",
    "Metric",
    "Mode",
    "PodSecurityLevel",
    "PolicyTarget",
    "Predictive",
    "Primary",
    "PrometheusSource",
    "Propagation",
    "SecretRef",
    "SpecError",
    "TargetOverrides",
    "TargetPrometheus",
    "TemplateUpdate",
    "Traffic",
    "WorkloadClass",
    "WorkloadRef",
    "format_errors",
    "parse_policy_spec",
    "parse_target_spec",
]
