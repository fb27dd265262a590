"""BurstTarget: a secondary cluster that policies may spill to (cluster-scoped)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from overspill.api.base import ApiModel, Condition, CrossFieldRule, StatusModel

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class SecretRef(ApiModel):
    """A key of a Secret in the primary cluster."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Secret holding the kubeconfig.")
    namespace: str = Field(
        min_length=1, max_length=63, pattern=DNS_LABEL, description="Namespace of the Secret (in the primary)."
    )
    key: str = Field(default="kubeconfig", min_length=1, description="Key in the Secret's data.")


class BurstTargetSpec(ApiModel):
    kubeconfig_secret_ref: SecretRef = Field(
        description="Secret in the primary cluster that holds a kubeconfig for the secondary cluster. "
        "It is read by the operator only and never copied into status, Events or logs."
    )
    provider: str | None = Field(default=None, max_length=63, description="Cloud provider, free text (aws, gcp...).")
    region: str | None = Field(default=None, max_length=63, description="Region, free text, shown in dashboards.")
    cost_per_replica_hour: float | None = Field(
        default=None,
        ge=0,
        description="Cost of one replica for one hour; orders equal-priority targets, feeds reports.",
    )
    max_replicas: int | None = Field(
        default=None, ge=0, description="Cap on replicas placed here, summed over all policies."
    )
    allowed_namespaces: list[str] | None = Field(
        default=None,
        max_length=256,
        description="When set, only policies in these namespaces may spill here.",
    )
    probe_interval_seconds: int = Field(
        default=15, ge=1, le=3600, description="How often the operator checks the target's API server."
    )
    failure_threshold: int = Field(
        default=2, ge=1, le=100, description="Consecutive failed probes before the target is Unavailable."
    )

    rules: ClassVar[tuple[CrossFieldRule, ...]] = ()


class BurstTargetStatus(StatusModel):
    conditions: list[Condition] = Field(default_factory=list)
    kubernetes_version: str | None = None
    latency_ms: float | None = None
    last_probe_time: str | None = None
    consecutive_failures: int = 0
    observed_generation: int | None = None


class BurstTarget(ApiModel):
    spec: BurstTargetSpec
