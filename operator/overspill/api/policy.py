"""BurstPolicy: how one workload scales from its queue and where its overflow goes (namespaced)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from overspill.api.base import ApiModel, Condition, CrossFieldRule, StatusModel
from overspill.api.target import DNS_LABEL, PRIMARY_CLUSTER_NAME, RESERVED_NAME_FIX

MAX_TARGETS = 16
# joins several cross-field failures in one pydantic error; `format_errors` splits them back into messages
RULES_SEPARATOR = "\n"


class WorkloadClass(StrEnum):
    INFERENCE = "Inference"
    CI_RUNNER = "CIRunner"


class Mode(StrEnum):
    ACTIVE = "Active"
    DRY_RUN = "DryRun"
    PAUSED = "Paused"


class FallbackAction(StrEnum):
    HOLD = "Hold"
    USE_REPLICAS = "UseReplicas"


class TemplateUpdate(StrEnum):
    WAIT_FOR_IDLE = "WaitForIdle"
    IMMEDIATE = "Immediate"


class WorkloadRef(ApiModel):
    """The workload in the primary cluster that this policy scales (through its scale subresource)."""

    api_version: str = Field(
        default="apps/v1", min_length=1, pattern=r"^([a-z0-9.-]+/)?v[0-9a-z]+$", description="e.g. apps/v1."
    )
    kind: str = Field(
        default="Deployment",
        min_length=1,
        description="A kind with a scale subresource. Mirrors in targets are created for Deployments.",
    )
    name: str = Field(min_length=1, max_length=253, description="Name of the workload in the policy's namespace.")


class PrometheusSource(ApiModel):
    """Where the queue metric comes from."""

    url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Prometheus base URL; defaults to the operator's --prometheus-url / OVERSPILL_PROMETHEUS_URL.",
    )
    query: str = Field(min_length=1, max_length=4096, description="PromQL returning one number: the queue depth.")


class Metric(ApiModel):
    """The queue metric and how it maps to replicas: desired = ceil(value / targetPerReplica)."""

    prometheus: PrometheusSource
    target_per_replica: float = Field(gt=0, description="Queue items one replica is expected to absorb.")
    activation_threshold: float = Field(
        default=0, ge=0, description="At or below this value the workload sits at minReplicas."
    )


class Primary(ApiModel):
    """The primary cluster's capacity: explicit, or learned from pods the scheduler cannot place."""

    max_replicas: int | None = Field(
        default=None, ge=0, description="Explicit capacity of the primary; unset means: learn it from the scheduler."
    )
    pending_grace_period_seconds: int = Field(
        default=20,
        ge=0,
        le=3600,
        description="A pod Pending Unschedulable longer than this marks the primary as full.",
    )
    capacity_recheck_seconds: int = Field(
        default=300,
        ge=10,
        le=86400,
        description="How long a capacity learned from Pending pods is trusted before the primary is tried again.",
    )


class TargetOverrides(ApiModel):
    """Changes applied to the pod template of the mirror in this target."""

    image: str | None = Field(default=None, description="Image for every container in the mirror.")
    node_selector: dict[str, str] | None = Field(default=None, description="Replaces the pod nodeSelector.")
    tolerations: list[dict[str, Any]] | None = Field(default=None, description="Replaces the pod tolerations.")
    env: dict[str, str] | None = Field(default=None, description="Env vars set on every container of the mirror.")
    labels: dict[str, str] | None = Field(default=None, description="Extra labels on the mirror's pods.")
    annotations: dict[str, str] | None = Field(default=None, description="Extra annotations on the mirror's pods.")
    namespace: str | None = Field(
        default=None, pattern=DNS_LABEL, description="Namespace in the target; defaults to the policy's namespace."
    )
    volumes: list[dict[str, Any]] | None = Field(
        default=None,
        description="Pod volumes that replace the template's volumes of the same name in this target (e.g. an "
        "emptyDir or a target-local PVC instead of a primary-only PersistentVolumeClaim); new names are added.",
    )

    @field_validator("volumes")
    @classmethod
    def _volumes_named(cls, v: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for i, vol in enumerate(v or []):
            if not isinstance(vol.get("name"), str) or not vol["name"]:
                raise ValueError(f"volumes[{i}] needs a name: it replaces the template's volume of that name")
        return v


class PolicyTarget(ApiModel):
    """A BurstTarget this policy may spill to, with its order and cap."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS_LABEL, description="Name of a BurstTarget.")
    priority: int = Field(default=0, ge=0, le=1000, description="Lower spills first; ties go to the cheaper target.")
    max_replicas: int | None = Field(default=None, ge=0, description="Cap for this policy in this target.")
    overrides: TargetOverrides | None = Field(default=None, description="Changes to the pod template in the mirror.")


class Predictive(ApiModel):
    """Optional lead time: burst early when the queue's trend will cross the threshold soon."""

    enabled: bool = Field(default=False, description="Burst early when the queue's trend crosses within leadSeconds.")
    lead_seconds: int = Field(default=60, ge=1, le=3600, description="How far ahead to project the queue's trend.")
    window_seconds: int = Field(
        default=60,
        ge=10,
        le=3600,
        description="The trend is fitted (repeated-median slope) over the samples of this window; at least 4 "
        "samples are needed, so one outlier cannot swing it.",
    )


class Behavior(ApiModel):
    """Timing: poll interval, stabilization windows, and the minimum life of a burst."""

    poll_interval_seconds: int = Field(default=10, ge=1, le=3600, description="How often the policy is evaluated.")
    scale_up_stabilization_seconds: int = Field(
        default=0, ge=0, le=3600, description="Scale up to the lowest recommendation in this window."
    )
    scale_down_stabilization_seconds: int = Field(
        default=300, ge=0, le=3600, description="Scale down to the highest recommendation in this window."
    )
    min_burst_duration_seconds: int = Field(
        default=120, ge=0, le=86400, description="Secondary replicas live at least this long once a burst starts."
    )
    return_surge: int = Field(
        default=1,
        ge=0,
        le=100,
        description="Replicas the total may exceed maxReplicas by while replicas come home (like a Deployment's "
        "maxSurge): without it, make-before-break at maxReplicas could neither add a primary replica nor remove "
        "a secondary one.",
    )
    predictive: Predictive | None = None
    status_interval_seconds: int = Field(
        default=30,
        ge=1,
        le=3600,
        description="Moving figures (metricValue, the engine's memory) are written to status at most this often, "
        "and only when they moved (a still queue is not rewritten); a changed decision is written at once.",
    )


class Fallback(ApiModel):
    """What to do while the metric cannot be read. Overspill never scales in on a missing metric."""

    on_metric_unavailable: FallbackAction = Field(
        default=FallbackAction.HOLD, description="Hold keeps the placement; UseReplicas scales up to `replicas`."
    )
    replicas: int | None = Field(default=None, ge=0, description="Replicas to run while the metric is unavailable.")


class Busy(ApiModel):
    """How to tell a busy pod from an idle one, so scale-in removes idle pods first."""

    pod_annotation: str | None = Field(
        default=None, description="Pod annotation whose value 'true' (or a number > 0) marks the pod busy."
    )
    pod_label: str | None = Field(default=None, description="Pod label with the same meaning as podAnnotation.")
    query: str | None = Field(
        default=None,
        description="Per-pod PromQL, e.g. `max by (namespace, pod) (...)`: each sample's `namespace` and `pod` "
        "labels name the pod and its value is its in-flight work. Several samples for one pod: the most busy "
        "counts; a sample without a `namespace` label applies only if no sample names a pod of that name in "
        "another namespace; a negative or NaN value is unknown. Pods in a target are queried on the "
        "BurstTarget's spec.prometheus.url; without one, only podAnnotation or podLabel can say a mirror pod is "
        "idle. A pod whose level is unknown counts as busy.",
    )
    template_update: TemplateUpdate = Field(
        default=TemplateUpdate.WAIT_FOR_IDLE,
        description="CIRunner: WaitForIdle holds a change of the mirror's pod template while any of its pods is "
        "busy (or unknown), reported as TemplateUpdatePending; Immediate rolls it at once.",
    )


class Propagation(ApiModel):
    """Which objects the pod template references are copied to the targets that hold replicas."""

    config_maps: bool = Field(default=True, description="Copy referenced ConfigMaps to targets holding replicas.")
    service_account: bool = Field(
        default=True, description="Copy the pod's ServiceAccount (not its tokens) and its imagePullSecrets' names."
    )
    secrets: bool = Field(
        default=False,
        description="Copy referenced Secrets (env, volumes, imagePullSecrets) to targets holding replicas. Off by "
        "default: copying credentials into another cloud is the policy owner's decision.",
    )


class LocalObjectRef(ApiModel):
    name: str = Field(min_length=1, max_length=253, description="Name of an object in the policy's namespace.")


class Traffic(ApiModel):
    """How requests reach burst replicas: a Service per target, its ServiceExport, and the HTTPRoute's weights."""

    service_ref: LocalObjectRef = Field(description="The Service in front of the workload in the primary.")
    http_route_ref: LocalObjectRef | None = Field(
        default=None,
        description="A Gateway API HTTPRoute in the primary whose backendRef weights Overspill keeps proportional "
        "to Ready replicas: the local Service and the imported burst service (ServiceImport).",
    )
    export_name: str | None = Field(
        default=None,
        max_length=63,
        pattern=DNS_LABEL,
        description="Name prefix of the Service (and ServiceExport) created in each target, which is named "
        "<exportName>-<target> so that each target has its own ServiceImport and route weight; defaults to "
        "<service>-burst. Equal to serviceRef.name, the name is used as is in every target (meshes that merge "
        "same-named Services: Cilium global services, Istio).",
    )
    import_group: str = Field(
        default="multicluster.x-k8s.io",
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="API group of the ServiceExport created in targets and of the ServiceImport backendRef in the "
        "route: multicluster.x-k8s.io (MCS API: Submariner, Cilium, most), or net.gke.io (GKE multi-cluster "
        "Services).",
    )
    service_annotations: dict[str, str] | None = Field(
        default=None,
        description="Annotations on the Service in each target, e.g. service.cilium.io/global for Cilium ClusterMesh.",
    )
    drain_seconds: int = Field(
        default=30,
        ge=0,
        le=3600,
        description="Seconds a burst backendRef's weight stays 0 in the route before the replicas behind it are "
        "removed (and the backendRef with them): gateways take time to program a route, and requests in flight "
        "finish. Also applies when the policy, its workload or its route reference goes.",
    )

    @property
    def service_name(self) -> str:
        return self.export_name or f"{self.service_ref.name}-burst"


def _fallback_needs_replicas(s: BurstPolicySpec) -> bool:
    return s.fallback.on_metric_unavailable != FallbackAction.USE_REPLICAS or s.fallback.replicas is not None


def _fallback_within_bounds(s: BurstPolicySpec) -> bool:
    r = s.fallback.replicas
    return r is None or s.min_replicas <= r <= s.max_replicas


def _targets_unique(s: BurstPolicySpec) -> bool:
    names = [t.name for t in s.targets]
    return len(names) == len(set(names))


class BurstPolicySpec(ApiModel):
    workload_ref: WorkloadRef
    workload_class: WorkloadClass = Field(
        default=WorkloadClass.INFERENCE,
        description="Inference (readiness-aware) or CIRunner (never kill a busy runner).",
    )
    metric: Metric
    min_replicas: int = Field(default=1, ge=0, description="Lower bound on total replicas over all clusters.")
    max_replicas: int = Field(ge=1, description="Upper bound on total replicas over all clusters.")
    primary: Primary = Field(default_factory=Primary)
    targets: list[PolicyTarget] = Field(
        default_factory=list, max_length=MAX_TARGETS, description="Secondary clusters, in no particular order."
    )
    behavior: Behavior = Field(default_factory=Behavior)
    fallback: Fallback = Field(default_factory=Fallback)
    busy: Busy | None = Field(default=None, description="How to tell a busy pod (in-flight work) from an idle one.")
    propagation: Propagation = Field(
        default_factory=Propagation, description="What the mirror takes along: ConfigMaps, ServiceAccount, Secrets."
    )
    traffic: Traffic | None = Field(
        default=None, description="Inference: make burst replicas reachable (Service, ServiceExport, route weights)."
    )
    mode: Mode = Field(default=Mode.ACTIVE, description="Active acts; DryRun decides and reports only; Paused holds.")

    rules: ClassVar[tuple[CrossFieldRule, ...]] = (
        CrossFieldRule(
            cel="self.minReplicas <= self.maxReplicas",
            message="spec.minReplicas must be less than or equal to spec.maxReplicas",
            field_path=".minReplicas",
            check=lambda s: s.min_replicas <= s.max_replicas,
        ),
        CrossFieldRule(
            cel="!has(self.targets) || self.targets.all(t, self.targets.exists_one(u, u.name == t.name))",
            message="spec.targets: each target may be listed only once",
            field_path=".targets",
            check=_targets_unique,
        ),
        CrossFieldRule(
            cel=f"!has(self.targets) || self.targets.all(t, t.name != '{PRIMARY_CLUSTER_NAME}')",
            message=f"spec.targets: {RESERVED_NAME_FIX}, and list it here by its new name",
            field_path=".targets",
            check=lambda s: all(t.name != PRIMARY_CLUSTER_NAME for t in s.targets),
        ),
        CrossFieldRule(
            cel="!has(self.fallback) || self.fallback.onMetricUnavailable != 'UseReplicas'"
            " || has(self.fallback.replicas)",
            message="spec.fallback.replicas is required when onMetricUnavailable is UseReplicas",
            field_path=".fallback",
            check=_fallback_needs_replicas,
        ),
        CrossFieldRule(
            cel="!has(self.fallback) || !has(self.fallback.replicas) || "
            "(self.fallback.replicas >= self.minReplicas && self.fallback.replicas <= self.maxReplicas)",
            message="spec.fallback.replicas must be between spec.minReplicas and spec.maxReplicas",
            field_path=".fallback",
            check=_fallback_within_bounds,
        ),
        CrossFieldRule(
            cel="!has(self.primary) || !has(self.primary.maxReplicas) || self.primary.maxReplicas <= self.maxReplicas",
            message="spec.primary.maxReplicas must not exceed spec.maxReplicas",
            field_path=".primary",
            check=lambda s: s.primary.max_replicas is None or s.primary.max_replicas <= s.max_replicas,
        ),
        CrossFieldRule(
            cel="self.workloadClass != 'CIRunner' || has(self.busy)",
            message="spec.busy is required for workloadClass CIRunner: say how a busy runner is marked "
            "(podAnnotation, podLabel or query)",
            field_path=".workloadClass",
            check=lambda s: s.workload_class != WorkloadClass.CI_RUNNER or s.busy is not None,
        ),
        CrossFieldRule(
            cel="!has(self.busy) || has(self.busy.podAnnotation) || has(self.busy.podLabel) || has(self.busy.query)",
            message="spec.busy needs one of podAnnotation, podLabel or query",
            field_path=".busy",
            check=lambda s: (
                s.busy is None or any(x is not None for x in (s.busy.pod_annotation, s.busy.pod_label, s.busy.query))
            ),
        ),
        CrossFieldRule(
            cel="!has(self.traffic) || self.workloadClass != 'CIRunner'",
            message="spec.traffic is for workloadClass Inference: CI runners pull their work and need no Service; "
            "remove spec.traffic",
            field_path=".traffic",
            check=lambda s: s.traffic is None or s.workload_class != WorkloadClass.CI_RUNNER,
        ),
        CrossFieldRule(
            cel="!has(self.traffic) || !has(self.traffic.httpRouteRef) || !has(self.traffic.exportName) "
            "|| self.traffic.exportName != self.traffic.serviceRef.name",
            message="spec.traffic.exportName equal to serviceRef.name asks the mesh to merge same-named Services "
            "(ClusterMesh global services, Istio), which leaves no per-target backend to weight: remove "
            "spec.traffic.httpRouteRef, or choose another exportName",
            field_path=".traffic",
            check=lambda s: (
                s.traffic is None
                or s.traffic.http_route_ref is None
                or s.traffic.export_name != s.traffic.service_ref.name
            ),
        ),
        CrossFieldRule(
            cel="!has(self.traffic) || has(self.traffic.exportName) || size(self.traffic.serviceRef.name) <= 57",
            message="spec.traffic.serviceRef.name is longer than 57 characters, so <name>-burst is not a valid "
            "Service name: set spec.traffic.exportName",
            field_path=".traffic",
            check=lambda s: s.traffic is None or bool(s.traffic.export_name) or len(s.traffic.service_ref.name) <= 57,
        ),
    )

    @model_validator(mode="after")
    def _cross_field(self) -> BurstPolicySpec:
        # every failing rule at once, as the API server reports CEL failures: one fix-and-retry round, not many
        failed = [rule.message for rule in self.rules if not rule.check(self)]
        if failed:
            raise ValueError(RULES_SEPARATOR.join(failed))
        return self


class PrimaryStatus(StatusModel):
    replicas: int = 0
    ready_replicas: int = 0
    pending_replicas: int = 0
    at_capacity: bool = False
    capacity: int | None = None
    # the cluster's accounting (bound pods + room for this pod shape) beside what the scheduler revealed
    capacity_estimate: int | None = None
    capacity_observed: int | None = None


class TargetStatus(StatusModel):
    name: str
    replicas: int = 0
    ready_replicas: int = 0
    # asked for but not running: Pending pods never count as serving
    pending_replicas: int = 0
    # how many more of this policy's pods fit there, by the target's own accounting (None: unknown)
    free_room: int | None = None
    state: str = "Idle"


class ExportStatus(StatusModel):
    """The burst Service and its ServiceExport in one target, as last read back."""

    target: str
    service: str = ""
    state: str = "Pending"  # Exported | Pending | Conflict | Unsupported | ServiceOnly | Unavailable | NotImported
    message: str = ""
    weight: int | None = None  # its ServiceImport backendRef's weight in the route, as last written


class TrafficStatus(StatusModel):
    service: str | None = None
    route: str | None = None
    local_weight: int | None = None
    burst_weight: int | None = None
    exports: list[ExportStatus] = Field(default_factory=list)


class LastDecision(StatusModel):
    time: str | None = None
    reason: str = ""
    message: str = ""


class FullTargetMemory(StatusModel):
    """A target out of room for this policy's pod shape (a stockout), until its accounting shows room again."""

    name: str
    capacity: int = 0
    estimate: int | None = None
    since: float = 0.0
    last_stuck: float | None = None


class EngineMemory(StatusModel):
    """What the engine must remember between polls; kept in status so a restart resumes exactly."""

    recommendations: list[tuple[float, int]] = Field(default_factory=list)
    burst_started_at: float | None = None
    primary_capacity: int | None = None
    primary_capacity_observed_at: float | None = None
    samples: list[tuple[float, float]] = Field(default_factory=list)
    primary_estimate_at_observation: int | None = None
    primary_estimate: int | None = None
    full_targets: list[FullTargetMemory] = Field(default_factory=list)


class BurstPolicyStatus(StatusModel):
    observed_generation: int | None = None
    desired_replicas: int | None = None
    metric_value: float | None = None
    primary: PrimaryStatus = Field(default_factory=PrimaryStatus)
    targets: list[TargetStatus] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)
    last_decision: LastDecision = Field(default_factory=LastDecision)
    unplaced_replicas: int = 0
    secondary_replicas: int = 0
    estimated_cost_per_hour: float | None = None
    traffic: TrafficStatus | None = None
    routes: list[str] = Field(
        default_factory=list,
        description="HTTPRoutes that may hold backendRefs of the policy's: the one spec.traffic.httpRouteRef names, "
        "and any it named before, until drained (a route reference changed or removed during a burst).",
    )
    memory: EngineMemory = Field(default_factory=EngineMemory)


class BurstPolicy(ApiModel):
    spec: BurstPolicySpec
