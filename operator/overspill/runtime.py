"""The operator's process-wide parts, built once at start-up from flags and environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass

from overspill.adapters.kube import Cluster, primary_client
from overspill.adapters.prometheus import PrometheusSource
from overspill.reconcile import Reconciler
from overspill.targets import TargetRegistry


@dataclass
class Runtime:
    primary: Cluster
    targets: TargetRegistry
    reconciler: Reconciler


def build() -> Runtime:
    primary = Cluster(primary_client(os.environ.get("KUBECONFIG") or None))
    targets = TargetRegistry()
    reconciler = Reconciler(
        primary=primary,
        targets=targets,
        metrics_source=PrometheusSource(),
        default_prometheus_url=os.environ.get("OVERSPILL_PROMETHEUS_URL") or None,
        origin_cluster=os.environ.get("OVERSPILL_CLUSTER_NAME", "primary"),
        query_timeout=float(os.environ.get("OVERSPILL_QUERY_TIMEOUT_SECONDS", "5")),
    )
    return Runtime(primary=primary, targets=targets, reconciler=reconciler)
