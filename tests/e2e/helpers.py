"""Reading the clusters the way a user would check them: replicas, Running pods, conditions, Events."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

import pytest
from kubernetes import client, utils, watch

from tests.e2e.conftest import Lab, eventually
from tests.e2e.workloads import gpu_deployment

GROUP, VERSION, PLURAL = "overspill.dev", "v1alpha1", "burstpolicies"


def policy_body(name: str, queue: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "metric": {
            "prometheus": {"query": f'sum(overspill_lab_queue_depth{{queue="{queue}"}})'},
            "targetPerReplica": 10,
        },
        "minReplicas": 1,
        "maxReplicas": 20,
        "primary": {"pendingGracePeriodSeconds": 2},
        "targets": [{"name": "secondary"}],
        "behavior": {"pollIntervalSeconds": 2, "scaleDownStabilizationSeconds": 4, "minBurstDurationSeconds": 0},
    }
    base.update(spec)
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "BurstPolicy", "metadata": {"name": name}, "spec": base}


def deploy_with_policy(lab: Lab, ns: str, name: str, queue: str, **spec: Any) -> None:
    utils.create_from_dict(lab.primary, gpu_deployment(name, 1), namespace=ns)
    client.CustomObjectsApi(lab.primary).create_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, policy_body(name, queue, **spec)
    )


def burst(lab: Lab, ns: str, **spec: Any) -> None:
    """The common start: a one-GPU Deployment with its policy, queue 150, 8 Running in the primary and 7 in the
    secondary."""
    deploy_with_policy(lab, ns, "vllm", ns, **spec)
    lab.set_queue(ns, 150)
    wait_placement(lab, ns, "vllm", (8, 7), timeout=90)


def ci_runners_burst(lab: Lab, ns: str, busy_annotation: str) -> None:
    """CI runners marked busy by a pod annotation, one per pending job: 15 jobs, 8 runners in the primary and 7
    in the secondary."""
    deploy_with_policy(
        lab,
        ns,
        "vllm",
        ns,
        workloadClass="CIRunner",
        minReplicas=0,
        busy={"podAnnotation": busy_annotation},
        metric={
            "prometheus": {"query": f'sum(overspill_lab_queue_depth{{queue="{ns}"}})'},
            "targetPerReplica": 1,
        },
    )
    lab.set_queue(ns, 15)
    wait_placement(lab, ns, "vllm", (8, 7))


def running(api: client.ApiClient, ns: str, app: str) -> int:
    pods = client.CoreV1Api(api).list_namespaced_pod(ns, label_selector=f"app={app}").items
    return sum(1 for p in pods if p.status.phase == "Running" and p.metadata.deletion_timestamp is None)


def spec_replicas(api: client.ApiClient, ns: str, name: str) -> int | None:
    try:
        return client.AppsV1Api(api).read_namespaced_deployment(name, ns).spec.replicas
    except client.ApiException as err:
        if err.status == 404:
            return None
        raise


def placement(lab: Lab, ns: str, name: str) -> tuple[int, int]:
    """(Running pods in the primary, Running pods in the secondary)."""
    return running(lab.primary, ns, name), running(lab.secondary, ns, name)


def wait_placement(lab: Lab, ns: str, name: str, want: tuple[int, int], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    seen = placement(lab, ns, name)
    while seen != want:
        if time.monotonic() > deadline:
            pytest.fail(
                f"Running pods (primary, secondary) never reached {want} in {timeout}s; last {seen}", pytrace=False
            )
        time.sleep(0.5)
        seen = placement(lab, ns, name)


def policy(lab: Lab, ns: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = client.CustomObjectsApi(lab.primary).get_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, name
    )
    return obj


def condition(lab: Lab, ns: str, name: str, ctype: str) -> dict[str, Any]:
    for c in policy(lab, ns, name).get("status", {}).get("conditions", []):
        if c["type"] == ctype:
            return dict(c)
    return {}


def wait_condition(lab: Lab, ns: str, name: str, ctype: str, status: str, timeout: float) -> None:
    eventually(lambda: condition(lab, ns, name, ctype).get("status") == status, timeout, what=f"{ctype}={status}")


def events(lab: Lab, ns: str, name: str) -> list[tuple[str, str, str]]:
    items = (
        client.CoreV1Api(lab.primary)
        .list_namespaced_event(ns, field_selector=f"involvedObject.kind=BurstPolicy,involvedObject.name={name}")
        .items
    )
    return [(e.type, e.reason, e.message) for e in items]


def hold(check: Any, seconds: float, interval: float = 1.0) -> list[Any]:
    """Sample `check` for `seconds`; return every value seen (for 'nothing changes' assertions)."""
    seen = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        seen.append(check())
        time.sleep(interval)
    return seen


class ReplicaChanges:
    """spec.replicas of one Deployment in several clusters, recorded as each API server announces a change (one
    watch stream per cluster): the order of the changes, which samples taken by a slow loop can skip over."""

    def __init__(self, clusters: dict[str, client.ApiClient], ns: str, name: str) -> None:
        self.changes: list[tuple[float, str, int]] = []  # (when received, cluster, spec.replicas)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._follow, args=(cluster, api, ns, name), daemon=True)
            for cluster, api in clusters.items()
        ]

    def _follow(self, cluster: str, api: client.ApiClient, ns: str, name: str) -> None:
        apps = client.AppsV1Api(api)
        while not self._stop.is_set():
            w = watch.Watch()
            try:
                for ev in w.stream(
                    apps.list_namespaced_deployment, ns, field_selector=f"metadata.name={name}", timeout_seconds=3
                ):
                    with self._lock:
                        self.changes.append((time.monotonic(), cluster, ev["object"].spec.replicas or 0))
                    if self._stop.is_set():
                        break
            except Exception:  # a stream cut short: the next one relists the current state
                time.sleep(0.2)
            finally:
                w.stop()

    def first(self, cluster: str, when: Any) -> float | None:
        """When `cluster`'s replicas first satisfied `when`."""
        with self._lock:
            return next((t for t, c, n in self.changes if c == cluster and when(n)), None)

    def __enter__(self) -> ReplicaChanges:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)
