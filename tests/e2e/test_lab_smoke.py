"""The lab is real: two API servers, a real scheduler's Unschedulable signal, a real Prometheus, and the
secondary reachable through the kubeconfig Secret the operator will read."""

from __future__ import annotations

import base64
import os
import tempfile
import time

from kubernetes import client, config, utils
from prometheus_api_client import PrometheusConnect

from tests.e2e.conftest import Lab, eventually
from tests.e2e.workloads import gpu_deployment


def test_both_clusters_answer(lab: Lab) -> None:
    for api in (lab.primary, lab.secondary):
        version = client.VersionApi(api).get_code()
        assert version.major == "1"
        assert version.git_version.startswith("v1.")


def test_gpu_capacity_is_8_in_primary_and_16_in_secondary(lab: Lab) -> None:
    for api, expected in ((lab.primary, 8), (lab.secondary, 16)):
        nodes = client.CoreV1Api(api).list_node().items
        assert sum(int(n.status.allocatable.get("nvidia.com/gpu", "0")) for n in nodes) == expected


def test_ten_gpu_pods_give_8_running_and_2_unschedulable(lab: Lab, namespace: str) -> None:
    utils.create_from_dict(lab.primary, gpu_deployment("gpu", 10), namespace=namespace)
    core = client.CoreV1Api(lab.primary)

    def phases() -> tuple[int, int] | None:
        pods = core.list_namespaced_pod(namespace, label_selector="app=gpu").items
        running = sum(p.status.phase == "Running" for p in pods)
        unsched = sum(
            p.status.phase == "Pending"
            and any(
                c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
                for c in p.status.conditions or []
            )
            for p in pods
        )
        return (running, unsched) if running + unsched == 10 and running == 8 else None

    assert eventually(phases, 60, what="8 Running and 2 Unschedulable") == (8, 2)


def test_queue_depth_reaches_prometheus(lab: Lab) -> None:
    prom = PrometheusConnect(url=lab.prometheus_url, disable_ssl=True)
    value = float(int(time.time()) % 1000 + 1)
    lab.set_queue("smoke", value)

    def seen() -> bool:
        res = prom.custom_query('overspill_lab_queue_depth{queue="smoke"}')
        return bool(res) and float(res[0]["value"][1]) == value

    # the lab scrapes every second; the budget is for a loaded machine (how fast is not this test's question)
    eventually(seen, 20, interval=0.2, what="the queue depth in Prometheus")


def test_secondary_reachable_with_kubeconfig_from_secret(lab: Lab) -> None:
    ns, name = os.environ.get("OVERSPILL_LAB_SECRET", "overspill-system/lab-secondary-kubeconfig").split("/")
    secret = client.CoreV1Api(lab.primary).read_namespaced_secret(name, ns)
    raw = base64.b64decode(secret.data["kubeconfig"])
    with tempfile.NamedTemporaryFile("wb", suffix=".yaml") as fh:
        fh.write(raw)
        fh.flush()
        api = config.new_client_from_config(fh.name)
    nodes = client.CoreV1Api(api).list_node().items
    assert {n.metadata.name for n in nodes} >= {"secondary-gpu-0", "secondary-gpu-3"}
