"""Shared set-up for benchmarks on the lab: env, clients, a GPU Deployment with a policy, the operator."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client, config, utils

from benchmarks.common import ROOT

GROUP, VERSION = "overspill.dev", "v1alpha1"
# the benchmark operator's metrics port (liveness on the next one); movable beside a lab on other ports
OPERATOR_METRICS_PORT = int(os.environ.get("OVERSPILL_BENCH_OPERATOR_PORT", "19395"))


class Lab:
    def __init__(self) -> None:
        missing = [
            v
            for v in (
                "OVERSPILL_LAB_PRIMARY_KUBECONFIG",
                "OVERSPILL_LAB_SECONDARY_KUBECONFIG",
                "OVERSPILL_LAB_PROMETHEUS_URL",
                "OVERSPILL_LAB_QUEUE_URL",
            )
            if v not in os.environ
        ]
        if missing:
            raise SystemExit(f'needs the lab: hack/lab up && eval "$(hack/lab env)" (missing {missing})')
        self.primary_kc = os.environ["OVERSPILL_LAB_PRIMARY_KUBECONFIG"]
        self.secondary_kc = os.environ["OVERSPILL_LAB_SECONDARY_KUBECONFIG"]
        self.prom = os.environ["OVERSPILL_LAB_PROMETHEUS_URL"]
        self.queue = os.environ["OVERSPILL_LAB_QUEUE_URL"]
        self.kubectl = os.environ.get("OVERSPILL_LAB_KUBECTL", "kubectl")
        self.primary = config.new_client_from_config(self.primary_kc)
        self.secondary = config.new_client_from_config(self.secondary_kc)

    def set_queue(self, name: str, value: float) -> None:
        req = urllib.request.Request(f"{self.queue}/queues/{name}", data=str(value).encode(), method="PUT")
        urllib.request.urlopen(req, timeout=5).close()  # the lab's loopback exporter

    def install(self) -> None:
        for flag, path in (("-k", "crds"), ("-f", "manifests/examples/lab-bursttarget.yaml")):
            subprocess.run(
                [self.kubectl, "--kubeconfig", self.primary_kc, "apply", flag, str(ROOT / path)],
                check=True,
                capture_output=True,
            )

    def remove_namespace(self, ns: str, timeout: float = 120) -> None:
        """Delete `ns` in both clusters and wait; an operator must run to release policy finalizers."""
        core = client.CoreV1Api(self.primary)
        for api in (self.primary, self.secondary):
            with contextlib.suppress(client.ApiException):
                client.CoreV1Api(api).delete_namespace(ns)
        deadline = time.monotonic() + timeout
        while ns in {n.metadata.name for n in core.list_namespace().items}:
            if time.monotonic() > deadline:
                raise TimeoutError(f"namespace {ns} still terminating after {timeout}s (is an operator running?)")
            time.sleep(1)

    def fresh_namespace(self, ns: str) -> None:
        self.remove_namespace(ns)
        client.CoreV1Api(self.primary).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))

    def deploy(
        self,
        ns: str,
        policy_spec: dict[str, Any],
        pod: dict[str, Any] | None = None,
        container: dict[str, Any] | None = None,
    ) -> None:
        """The one-GPU Deployment `vllm` and its BurstPolicy; `pod`, `container`: more fields for the pod template."""
        dep = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "vllm"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "vllm"}},
                "template": {
                    "metadata": {"labels": {"app": "vllm"}},
                    "spec": {
                        "terminationGracePeriodSeconds": 0,
                        "containers": [
                            {
                                "name": "s",
                                "image": "registry.k8s.io/pause:3.10",
                                "resources": {"limits": {"nvidia.com/gpu": "1"}},
                                **(container or {}),
                            }
                        ],
                        **(pod or {}),
                    },
                },
            },
        }
        utils.create_from_dict(self.primary, dep, namespace=ns)
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "BurstPolicy",
            "metadata": {"name": "vllm"},
            "spec": policy_spec,
        }
        client.CustomObjectsApi(self.primary).create_namespaced_custom_object(GROUP, VERSION, ns, "burstpolicies", body)

    def running(self, api: client.ApiClient, ns: str) -> int:
        pods = client.CoreV1Api(api).list_namespaced_pod(ns, label_selector="app=vllm").items
        return sum(1 for p in pods if p.status.phase == "Running" and p.metadata.deletion_timestamp is None)

    def start_operator(self, log: Path) -> subprocess.Popen[bytes]:
        env = {**os.environ, "KUBECONFIG": self.primary_kc, "OVERSPILL_PROMETHEUS_URL": self.prom}
        return subprocess.Popen(
            [
                str(ROOT / ".venv/bin/overspill"),
                "run",
                "--standalone",
                "-A",
                "--metrics-port",
                str(OPERATOR_METRICS_PORT),
                "--metrics-address",
                "127.0.0.1",
                "--liveness",
                f"http://127.0.0.1:{OPERATOR_METRICS_PORT + 1}/healthz",
            ],
            env=env,
            stdout=open(log, "ab"),
            stderr=subprocess.STDOUT,
        )


def policy(ns: str, poll: int = 5) -> dict[str, Any]:
    return {
        "workloadRef": {"name": "vllm"},
        "metric": {"prometheus": {"query": f'sum(overspill_lab_queue_depth{{queue="{ns}"}})'}, "targetPerReplica": 10},
        "minReplicas": 1,
        "maxReplicas": 20,
        "primary": {"pendingGracePeriodSeconds": 2},
        "targets": [{"name": "secondary"}],
        "behavior": {"pollIntervalSeconds": poll, "scaleDownStabilizationSeconds": 0, "minBurstDurationSeconds": 0},
    }
