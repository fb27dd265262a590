"""`overspill run`: Kopf's runner with Overspill's flags (equivalent to `kopf run -m overspill.handlers`)."""

from __future__ import annotations

import importlib
import os
import secrets

import kopf


def run_operator(
    *,
    prometheus_url: str | None,
    namespaces: list[str] | None,
    all_namespaces: bool,
    liveness: str | None,
    metrics_port: int,
    metrics_address: str = "0.0.0.0",  # noqa: S104 - in a pod, Prometheus scrapes from outside
    standalone: bool,
    peering: str,
    priority: int | None = None,
) -> int:
    if prometheus_url:
        os.environ["OVERSPILL_PROMETHEUS_URL"] = prometheus_url
    os.environ["OVERSPILL_METRICS_PORT"] = str(metrics_port)
    os.environ["OVERSPILL_METRICS_ADDRESS"] = metrics_address
    kopf.configure(verbose=False)
    if not standalone:
        os.environ["OVERSPILL_PEERING"] = peering
    importlib.import_module("overspill.handlers")  # registers the handlers in Kopf's default registry
    kopf.run(
        clusterwide=all_namespaces or not namespaces,
        namespaces=namespaces or [],
        liveness_endpoint=liveness,
        standalone=standalone,
        peering_name=None if standalone else peering,
        # Kopf pauses every operator that shares the highest priority: give each replica its own, so one is
        # active and the others stand by until its keep-alive expires
        priority=priority if priority is not None else secrets.randbelow(2**30) + 1,
    )
    return 0
