"""The operator's process-wide parts, built once at start-up from flags and environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from overspill.adapters.kube import Cluster, primary_client
from overspill.adapters.prometheus import PrometheusSource
from overspill.adapters.shared_queries import SharedQueries
from overspill.caplease import LeaseCapStore, identity
from overspill.reconcile import Reconciler
from overspill.statuswriter import StatusWriter
from overspill.targets import TargetRegistry
from overspill.triggers import Triggers
from overspill.views import ClusterView
from overspill.views.resource import DEPLOYMENTS, HPAS, PODS, SCALEDOBJECTS


@dataclass
class Runtime:
    primary: Cluster
    primary_view: ClusterView
    targets: TargetRegistry
    reconciler: Reconciler
    triggers: Triggers
    status_writer: StatusWriter = field(default_factory=StatusWriter)


def allowed_prometheus_urls(default_url: str | None) -> list[str]:
    """--allowed-prometheus-url prefixes; without any, only the operator-wide Prometheus."""
    given = os.environ.get("OVERSPILL_ALLOWED_PROMETHEUS_URLS", "").split()
    return given or ([default_url] if default_url else [])


def build() -> Runtime:
    primary = Cluster(primary_client(os.environ.get("KUBECONFIG") or None))
    primary_view = ClusterView("primary", primary.api)
    triggers = Triggers()
    primary_view.cache(PODS).subscribe(triggers.on_primary_pod)
    primary_view.cache(DEPLOYMENTS)  # the common workload kind: listed before the first policy asks
    for other_autoscaler in (HPAS, SCALEDOBJECTS):  # a policy refuses a workload another autoscaler scales
        primary_view.cache(other_autoscaler)
    default_url = os.environ.get("OVERSPILL_PROMETHEUS_URL") or None
    # shared caps are reserved in Leases of the primary: one per capped target, shared by every operator process
    targets = TargetRegistry(LeaseCapStore(primary.api), holder=identity())
    reconciler = Reconciler(
        primary=primary,
        primary_view=primary_view,
        targets=targets,
        triggers=triggers,
        metrics_source=SharedQueries(PrometheusSource(allowed_prometheus_urls(default_url))),
        default_prometheus_url=default_url,
        origin_cluster=os.environ.get("OVERSPILL_CLUSTER_NAME", "primary"),
        query_timeout=float(os.environ.get("OVERSPILL_QUERY_TIMEOUT_SECONDS", "5")),
    )
    return Runtime(
        primary=primary, primary_view=primary_view, targets=targets, reconciler=reconciler, triggers=triggers
    )
