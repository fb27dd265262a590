"""BurstTarget: a secondary cluster that policies may spill to (cluster-scoped)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field

from overspill.api.base import ApiModel, Condition, CrossFieldRule, StatusModel

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# a target namespace, or a pattern of them: `{namespace}` is the policy's own namespace, `*` any run of [a-z0-9-]
NAMESPACE_PATTERN = r"^([-a-z0-9*]|\{namespace\})+$"
NamespacePattern = Annotated[str, Field(min_length=1, max_length=63, pattern=NAMESPACE_PATTERN)]

# The primary cluster's name beside the targets' in status, Events, the metric label
# overspill_replicas{cluster="primary"} and the simulator's reports: a BurstTarget of that name would be counted as
# the primary, so none may take it (refused by the API server's CEL and by the operator's own validation).
PRIMARY_CLUSTER_NAME = "primary"
RESERVED_NAME_FIX = (
    f"the name {PRIMARY_CLUSTER_NAME} is reserved for the primary cluster (status, Events and the metric label "
    f'overspill_replicas{{cluster="{PRIMARY_CLUSTER_NAME}"}} would count the two as one): rename the BurstTarget, '
    "e.g. after its cloud and region (aws-us-east-1)"
)
# the BurstTarget's own name: a rule on the CRD's root, which alone may read metadata.name
TARGET_NAME_RULE = CrossFieldRule(
    cel=f"self.metadata.name != '{PRIMARY_CLUSTER_NAME}'",
    message=f"metadata.name: {RESERVED_NAME_FIX}",
    field_path=None,
    check=lambda name: name != PRIMARY_CLUSTER_NAME,
)


class SecretRef(ApiModel):
    """A key of a Secret in the primary cluster."""

    name: str = Field(min_length=1, max_length=253, description="Name of the Secret holding the kubeconfig.")
    namespace: str = Field(
        min_length=1, max_length=63, pattern=DNS_LABEL, description="Namespace of the Secret (in the primary)."
    )
    key: str = Field(default="kubeconfig", min_length=1, description="Key in the Secret's data.")


class PodSecurityLevel(StrEnum):
    PRIVILEGED = "privileged"
    BASELINE = "baseline"
    RESTRICTED = "restricted"


class TargetPrometheus(ApiModel):
    """The target's own Prometheus, which sees its pods (the primary's does not)."""

    url: str = Field(
        pattern=r"^https?://",
        max_length=2048,
        description="Base URL for per-pod busy queries of mirror pods in this target; must be allowed by the "
        "operator's --allowed-prometheus-url.",
    )


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
    allowed_target_namespaces: list[NamespacePattern] | None = Field(
        default=None,
        max_length=256,
        description="Namespaces in this cluster that mirrors of any policy may land in (overrides.namespace "
        "included). An entry may be a pattern: `{namespace}` stands for the policy's own namespace and `*` for "
        'any run of letters, digits and dashes, so `["{namespace}-burst"]` gives each tenant its own namespace. '
        "A namespace the patterns give to two policy namespaces (with `{namespace}` and `{namespace}-burst`, "
        "`a-burst` is tenant a's and tenant a-burst's) belongs to the one named like it, or to neither: it is "
        "refused to the other. A literal name or a bare `*` is open to every tenant allowed here. Unset: "
        '`["{namespace}"]`, only the namespace with the policy\'s own namespace name. A refused placement '
        "creates nothing.",
    )
    allowed_target_namespaces_by_source: dict[str, list[NamespacePattern]] | None = Field(
        default=None,
        max_length=256,
        description="Per policy namespace (in the primary), more namespaces of this cluster its mirrors may land "
        "in, in addition to allowedTargetNamespaces (patterns as there), e.g. `{team-a: [gpu-alpha]}`.",
    )
    pod_security: PodSecurityLevel = Field(
        default=PodSecurityLevel.BASELINE,
        description="Pod Security Standard enforced (pod-security.kubernetes.io/enforce) on namespaces Overspill "
        "creates in this cluster.",
    )
    prometheus: TargetPrometheus | None = Field(
        default=None, description="Prometheus of this cluster, for busy queries of mirror pods."
    )
    allow_exec_auth: bool = Field(
        default=False,
        description="Allow kubeconfig users that run exec plugins or auth providers, and file references "
        "(client-certificate, client-key, tokenFile, certificate-authority paths). Refused by default: they run "
        "commands or read files on the operator's host.",
    )
    replica_startup_seconds: int | None = Field(
        default=None,
        ge=0,
        le=86400,
        description="Typical time from a replica's creation to Ready in this cluster (node start, image pull, model "
        "load). A predictive policy whose primary is full looks at least this far ahead (so a replica started "
        "here is Ready when its queue arrives); `overspill simulate` and `overspill tune` model it; unset means the "
        "simulator's default and no extra lead.",
    )
    probe_interval_seconds: int = Field(
        default=15, ge=1, le=3600, description="How often the operator checks the target's API server."
    )
    failure_threshold: int = Field(
        default=2, ge=1, le=100, description="Consecutive failed probes before the target is Unavailable."
    )
    provisioning_timeout_seconds: int = Field(
        default=300,
        ge=0,
        le=86400,
        description="Mirror pods Unschedulable here for longer than this mark the target full for that pod shape "
        "(a stockout): the Pending ones are taken back and the overflow moves to the next target. Secondaries "
        "often add nodes on demand: leave them the time it takes.",
    )

    rules: ClassVar[tuple[CrossFieldRule, ...]] = ()


class BurstTargetStatus(StatusModel):
    conditions: list[Condition] = Field(default_factory=list)
    kubernetes_version: str | None = None
    latency_ms: float | None = None
    last_probe_time: str | None = None
    consecutive_failures: int = 0
    observed_generation: int | None = None
    replicas_in_use: int = Field(default=0, description="Replicas placed here, summed over all policies.")
    view_synced: bool | None = Field(
        default=None, description="Whether the operator's watch-fed view of this cluster is in sync."
    )


class BurstTarget(ApiModel):
    spec: BurstTargetSpec
