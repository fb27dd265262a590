"""`overspill run`: Kopf's runner with Overspill's flags (equivalent to `kopf run -m overspill.handlers`)."""

from __future__ import annotations

import importlib
import os
import secrets

import kopf
import urllib3
from kubernetes import config
from kubernetes.client import ApiClient, ApiException, CustomObjectsApi

from overspill import heap
from overspill.adapters.kube import TIMEOUT, primary_client

PEERING_GROUP, PEERING_VERSION, PEERING_PLURAL = "kopf.dev", "v1", "clusterkopfpeerings"
PEERING_CRD = f"{PEERING_PLURAL}.{PEERING_GROUP}"


class StartupError(ValueError):
    """The operator cannot start as asked; the message is one line saying why and how to fix it."""


def peering_missing_message(peering: str) -> str:
    return (
        f"the ClusterKopfPeering CRD ({PEERING_CRD}) is not installed, so replicas cannot share "
        f"the peering {peering!r}. Fix: install it (kubectl apply -f manifests/base/kopf-peering.yaml, "
        "or kubectl apply -k manifests/, or the Helm chart), or run one replica with `overspill run --standalone`"
    )


def check_peering(api: ApiClient, peering: str) -> None:
    """Refuse to start when peering is asked for and its CRD is not served.

    Why before Kopf: with a peering name given, Kopf pauses every handler until that CRD appears and our start-up
    handler fails on the 404 and is retried every 60 s: the operator looks alive and does nothing. Anything other
    than a 404 (an API server still starting, a proxy) is left to Kopf, which retries and reports it.
    """
    try:
        CustomObjectsApi(api).list_cluster_custom_object(
            PEERING_GROUP, PEERING_VERSION, PEERING_PLURAL, limit=1, _request_timeout=TIMEOUT
        )
    except ApiException as err:
        if err.status == 404:
            raise StartupError(peering_missing_message(peering)) from None
    except (OSError, urllib3.exceptions.HTTPError):
        pass  # unreachable: Kopf retries and says so


def _primary_api() -> ApiClient | None:
    try:
        return primary_client(os.environ.get("KUBECONFIG") or None)
    except config.ConfigException:
        return None  # no credentials at all: Kopf's login says so in its own words


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
    allowed_prometheus_urls: list[str] | None = None,
) -> int:
    if not standalone:
        api = _primary_api()
        if api is not None:
            with api:
                check_peering(api, peering)
    if prometheus_url:
        os.environ["OVERSPILL_PROMETHEUS_URL"] = prometheus_url
    if allowed_prometheus_urls:
        os.environ["OVERSPILL_ALLOWED_PROMETHEUS_URLS"] = " ".join(allowed_prometheus_urls)
    os.environ["OVERSPILL_METRICS_PORT"] = str(metrics_port)
    os.environ["OVERSPILL_METRICS_ADDRESS"] = metrics_address
    heap.configure_malloc()  # before Kopf starts its threads
    heap.start_trimming()
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
