"""Workload classes on real clusters: busy pods survive scale-in, idle ones go, secondaries drain first."""

from __future__ import annotations

from kubernetes import client

from tests.e2e.conftest import Lab, OperatorProcess, eventually
from tests.e2e.helpers import burst, ci_runners_burst, spec_replicas, wait_placement

BUSY = "overspill.dev/in-flight"
COST = "controller.kubernetes.io/pod-deletion-cost"


def pods(api: client.ApiClient, ns: str) -> list[client.V1Pod]:
    items = client.CoreV1Api(api).list_namespaced_pod(ns, label_selector="app=vllm").items
    return sorted(
        (p for p in items if p.metadata.deletion_timestamp is None and p.status.phase == "Running"),
        key=lambda p: p.metadata.name,
    )


def mark_busy(api: client.ApiClient, ns: str, names: list[str], value: str) -> None:
    for name in names:
        client.CoreV1Api(api).patch_namespaced_pod(name, ns, {"metadata": {"annotations": {BUSY: value}}})


def costs_applied(api: client.ApiClient, ns: str, names: list[str]) -> bool:
    by_name = {p.metadata.name: p for p in pods(api, ns)}
    return all(int((by_name[n].metadata.annotations or {}).get(COST, "0")) > 0 for n in names)


def test_inference_scale_in_keeps_busy_replicas(lab: Lab, operator: OperatorProcess, namespace: str) -> None:
    burst(lab, namespace, busy={"podAnnotation": BUSY})
    busy_secondary = [p.metadata.name for p in pods(lab.secondary, namespace)][:3]
    mark_busy(lab.secondary, namespace, busy_secondary, "4")  # 4 requests in flight each
    eventually(lambda: costs_applied(lab.secondary, namespace, busy_secondary), 30, what="deletion cost set")
    lab.set_queue(namespace, 110)  # 11 replicas: the secondary goes from 7 to 3
    wait_placement(lab, namespace, "vllm", (8, 3))
    assert [p.metadata.name for p in pods(lab.secondary, namespace)] == busy_secondary

    busy_primary = [p.metadata.name for p in pods(lab.primary, namespace)][2:7]
    mark_busy(lab.primary, namespace, busy_primary, "2")
    eventually(lambda: costs_applied(lab.primary, namespace, busy_primary), 30, what="deletion cost set")
    lab.set_queue(namespace, 50)  # 5 replicas: the secondary drains first, then the primary goes from 8 to 5
    eventually(lambda: spec_replicas(lab.secondary, namespace, "vllm") == 0, 60, what="secondary drained")
    wait_placement(lab, namespace, "vllm", (5, 0))
    assert [p.metadata.name for p in pods(lab.primary, namespace)] == sorted(busy_primary)


def test_ci_runners_never_lose_a_busy_runner(lab: Lab, operator: OperatorProcess, namespace: str) -> None:
    ci_runners_burst(lab, namespace, BUSY)
    busy_secondary = [p.metadata.name for p in pods(lab.secondary, namespace)][1:4]
    busy_primary = [p.metadata.name for p in pods(lab.primary, namespace)][:2]
    mark_busy(lab.secondary, namespace, busy_secondary, "true")
    mark_busy(lab.primary, namespace, busy_primary, "true")
    eventually(lambda: costs_applied(lab.secondary, namespace, busy_secondary), 30, what="deletion cost set")
    lab.set_queue(namespace, 0)  # the queue is empty, but 5 runners are still running jobs
    wait_placement(lab, namespace, "vllm", (8, 3))  # secondaries drain first, only through idle runners
    assert [p.metadata.name for p in pods(lab.secondary, namespace)] == busy_secondary
    assert spec_replicas(lab.primary, namespace, "vllm") == 8  # the primary waits for the secondary
    mark_busy(lab.secondary, namespace, busy_secondary, "false")  # those jobs finish
    wait_placement(lab, namespace, "vllm", (2, 0), timeout=90)
    assert [p.metadata.name for p in pods(lab.primary, namespace)] == sorted(busy_primary)
