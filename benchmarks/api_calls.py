"""API requests per policy per poll on the lab: during a burst that holds (steady state), and while it changes.

    hack/lab up && eval "$(hack/lab env)" && .venv/bin/python -m benchmarks.api_calls [--polls 20]

Runs the reconciler in-process against the lab's two real API servers and counts every HTTP request its clients
make, by cluster and verb. Observation comes from watch-fed views (one LIST then one long-lived WATCH per kind,
renewed about once a minute), counted as LIST/WATCH apart from per-poll requests; status is patched only when it
changes (the outcome's status is compared with the last one written), so it is counted here the same way.
Writes benchmarks/results/api_calls.json. Goal: no writes at all in steady state.
"""

from __future__ import annotations

import argparse
import collections
import time
from typing import Any

from kubernetes import client

from benchmarks.common import write
from benchmarks.lab_setup import Lab, policy
from overspill.adapters.kube import Cluster
from overspill.adapters.prometheus import PrometheusSource
from overspill.api import parse_policy_spec, parse_target_spec
from overspill.api.policy import BurstPolicyStatus
from overspill.reconcile import PolicyRef, Reconciler
from overspill.targets import TargetRegistry
from overspill.views import MANAGED_SELECTOR, ClusterView
from overspill.views.resource import DEPLOYMENTS, Resource

NS = "bench-api-calls"


def counted(api: client.ApiClient, name: str, counts: collections.Counter[str]) -> client.ApiClient:
    original = api.call_api

    def call_api(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        # watch streams are long-lived, not per poll: counted apart from the per-poll requests
        counts[f"{name} {'WATCH' if 'watch=true' in url else method}"] += 1
        return original(method, url, *args, **kwargs)

    api.call_api = call_api  # type: ignore[method-assign]
    return api


def in_process(lab: Lab, counts: collections.Counter[str], target_kinds: tuple[Resource, ...] = ()) -> Reconciler:
    """The reconciler in this process, against the lab's two API servers, every request counted in `counts`;
    `target_kinds`: more kinds the target's view watches (what the BurstTarget daemon starts for serving)."""
    from kubernetes import config

    primary = Cluster(counted(config.new_client_from_config(lab.primary_kc), "primary", counts))
    secondary = Cluster(counted(config.new_client_from_config(lab.secondary_kc), "secondary", counts))
    registry = TargetRegistry()
    registry.upsert("secondary", parse_target_spec({"kubeconfigSecretRef": {"name": "x", "namespace": "x"}}))
    registry.set_health("secondary", cluster=secondary, healthy=True, message="ok")
    target_view = ClusterView("secondary", secondary.api)
    target_view.cache(DEPLOYMENTS, MANAGED_SELECTOR)
    for kind in target_kinds:
        target_view.cache(kind, MANAGED_SELECTOR)
    registry.set_view("secondary", target_view)
    primary_view = ClusterView("primary", primary.api)
    primary_view.cache(DEPLOYMENTS)
    primary_view.wait_ready(30)
    target_view.wait_ready(30)
    return Reconciler(
        primary=primary,
        primary_view=primary_view,
        targets=registry,
        metrics_source=PrometheusSource(),
        default_prometheus_url=lab.prom,
        origin_cluster="primary",
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--polls", type=int, default=20)
    args = ap.parse_args()
    lab = Lab()
    lab.install()
    lab.fresh_namespace(NS)  # this benchmark's policy never gets a finalizer: no operator runs here
    lab.set_queue(NS, 150)
    raw = policy(NS)
    lab.deploy(NS, raw)  # no operator runs: this process is the only one acting
    counts: collections.Counter[str] = collections.Counter()
    rec = in_process(lab, counts)
    uid = client.CustomObjectsApi(lab.primary).get_namespaced_custom_object(
        "overspill.dev", "v1alpha1", NS, "burstpolicies", "vllm"
    )["metadata"]["uid"]
    ref, spec = PolicyRef(NS, "vllm", uid), parse_policy_spec(raw)
    status, written, status_writes = BurstPolicyStatus(), None, 0
    time.sleep(3)  # the queue value reaches Prometheus
    # converge: burst to 8 + 7 (capacity learned from the scheduler after the grace period)
    for _ in range(30):
        out = rec.reconcile(ref, spec, status, 1)
        status = BurstPolicyStatus.model_validate(out.status)
        if lab.running(lab.secondary, NS) == 7 and out.writes == 0:
            break
        time.sleep(2)
    converge = dict(counts)
    counts.clear()
    for _ in range(args.polls):
        out = rec.reconcile(ref, spec, status, 1)
        if out.status != written:
            status_writes += 1
            written = out.status
        status = BurstPolicyStatus.model_validate(out.status)
        time.sleep(1)
    steady = {k: round(v / args.polls, 2) for k, v in sorted(counts.items())}
    writes = sum(v for k, v in counts.items() if k.split()[-1] not in ("GET", "WATCH"))  # a watch renewal reads
    write(
        "api_calls",
        {
            "command": f"python -m benchmarks.api_calls --polls {args.polls}",
            "placement": {"primary": lab.running(lab.primary, NS), "secondary": lab.running(lab.secondary, NS)},
            "requests_during_convergence": converge,
            "steady_state_requests_per_poll": steady,
            "steady_state_writes_total": writes,
            "steady_state_status_writes_after_first": max(0, status_writes - 1),
            "goal": "no writes in steady state",
        },
    )
    lab.set_queue(NS, 0)
    lab.remove_namespace(NS)


if __name__ == "__main__":
    main()
