"""Bursts that serve (issue 9), on real API servers: the mirror takes its dependencies, and the HTTPRoute's weights
follow Ready replicas, draining a secondary before its replicas go."""

from __future__ import annotations

import base64
import time
from typing import Any

from kubernetes import client, utils

from tests.e2e.conftest import Lab, OperatorProcess, eventually
from tests.e2e.helpers import (
    GROUP,
    PLURAL,
    VERSION,
    condition,
    events,
    policy,
    policy_body,
    spec_replicas,
    wait_condition,
    wait_placement,
)
from tests.e2e.workloads import gpu_deployment

MANAGED = {"app.kubernetes.io/managed-by": "overspill"}
BURST = "vllm-burst-secondary"  # <service>-burst-<target>: each target has its own ServiceImport and weight
MCS, MCS_VERSION = "multicluster.x-k8s.io", "v1alpha1"
GW, GW_VERSION = "gateway.networking.k8s.io", "v1"


def serving_workload(ns: str) -> list[dict[str, Any]]:
    """vLLM-like: a ConfigMap (envFrom and a projected volume), a token Secret (env), a ServiceAccount whose
    imagePullSecrets name a registry Secret, and a Service in front."""
    dep = gpu_deployment("vllm", 1)
    pod = dep["spec"]["template"]["spec"]
    pod["serviceAccountName"] = "vllm"
    pod["containers"][0]["envFrom"] = [{"configMapRef": {"name": "vllm-config"}}]
    pod["containers"][0]["env"] = [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "t"}}}]
    pod["volumes"] = [{"name": "cfg", "projected": {"sources": [{"configMap": {"name": "vllm-config"}}]}}]
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "vllm-config"}, "data": {"MODEL": "llama"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hf"}, "stringData": {"t": "hf-canary-token"}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "regcred"},
            "data": {".dockerconfigjson": base64.b64encode(b'{"auths":{}}').decode()},
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "vllm"},
            "imagePullSecrets": [{"name": "regcred"}],
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "vllm"},
            "spec": {"selector": {"app": "vllm"}, "ports": [{"name": "http", "port": 80, "targetPort": 8000}]},
        },
        dep,
    ]


def create_policy(lab: Lab, ns: str, **spec: Any) -> None:
    client.CustomObjectsApi(lab.primary).create_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, policy_body("vllm", ns, **spec)
    )


def patch_policy(lab: Lab, ns: str, spec: dict[str, Any]) -> None:
    client.CustomObjectsApi(lab.primary).patch_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, "vllm", {"spec": spec}
    )


def read(api: client.ApiClient, kind: str, ns: str, name: str) -> Any:
    core = client.CoreV1Api(api)
    fn = {
        "ConfigMap": core.read_namespaced_config_map,
        "Secret": core.read_namespaced_secret,
        "ServiceAccount": core.read_namespaced_service_account,
        "Service": core.read_namespaced_service,
    }[kind]
    try:
        return fn(name, ns)
    except client.ApiException as err:
        if err.status == 404:
            return None
        raise


def export(lab: Lab, ns: str, name: str) -> dict[str, Any] | None:
    try:
        obj: dict[str, Any] = client.CustomObjectsApi(lab.secondary).get_namespaced_custom_object(
            MCS, MCS_VERSION, ns, "serviceexports", name
        )
    except client.ApiException as err:
        if err.status == 404:
            return None
        raise
    return obj


def test_dependencies_follow_the_mirror(lab: Lab, operator: OperatorProcess, namespace: str) -> None:
    ns = namespace
    utils.create_from_dict(
        lab.primary, {"apiVersion": "v1", "kind": "List", "items": serving_workload(ns)}, namespace=ns
    )
    create_policy(lab, ns, traffic={"serviceRef": {"name": "vllm"}})
    lab.set_queue(ns, 150)

    # secrets: false (the default): the token stays home, the mirror stays at 0, the condition names it
    wait_condition(lab, ns, "vllm", "DependenciesReady", "False", 60)
    msg = condition(lab, ns, "vllm", "DependenciesReady")["message"]
    assert f"Secret {ns}/hf" in msg and f"Secret {ns}/regcred" in msg and "propagation.secrets: true" in msg
    assert "hf-canary-token" not in msg
    assert any(t == "Warning" and r == "DependenciesMissing" for t, r, _ in events(lab, ns, "vllm"))
    time.sleep(4)  # two polls
    assert (spec_replicas(lab.secondary, ns, "vllm") or 0) == 0
    assert read(lab.secondary, "Secret", ns, "hf") is None

    # the owner opts in: everything is carried, then the mirror's pods run (the real ServiceAccount admission)
    patch_policy(lab, ns, {"propagation": {"secrets": True}})
    wait_placement(lab, ns, "vllm", (8, 7), timeout=90)
    wait_condition(lab, ns, "vllm", "DependenciesReady", "True", 30)
    for kind, name in (
        ("ConfigMap", "vllm-config"),
        ("Secret", "hf"),
        ("Secret", "regcred"),
        ("ServiceAccount", "vllm"),
    ):
        obj = read(lab.secondary, kind, ns, name)
        assert obj is not None, (kind, name)
        assert obj.metadata.labels["app.kubernetes.io/managed-by"] == "overspill"
        assert obj.metadata.labels["overspill.dev/policy-uid"] == policy(lab, ns, "vllm")["metadata"]["uid"]
        assert obj.metadata.annotations["overspill.dev/origin"].endswith(f"/{ns}/{name}")
    assert [s.name for s in read(lab.secondary, "ServiceAccount", ns, "vllm").image_pull_secrets] == ["regcred"]
    svc = read(lab.secondary, "Service", ns, BURST)
    uid = policy(lab, ns, "vllm")["metadata"]["uid"]
    assert svc.spec.selector == {"app": "vllm", "overspill.dev/policy-uid": uid} and svc.spec.ports[0].port == 80
    assert export(lab, ns, BURST) is not None

    # an edit of the source reaches the copy (within a poll, 2 s, on a quiet machine; the budget is for load, not
    # a latency bound: that is measured by the benchmarks)
    client.CoreV1Api(lab.primary).patch_namespaced_config_map("vllm-config", ns, {"data": {"MODEL": "mistral"}})
    eventually(
        lambda: read(lab.secondary, "ConfigMap", ns, "vllm-config").data["MODEL"] == "mistral",
        20,
        interval=0.2,
        what="the copy updated",
    )

    # an object Overspill did not create, with the name of a new dependency, is left alone and reported
    client.CoreV1Api(lab.secondary).create_namespaced_config_map(
        ns, {"metadata": {"name": "extra"}, "data": {"owner": "someone-else"}}
    )
    client.CoreV1Api(lab.primary).create_namespaced_config_map(
        ns, {"metadata": {"name": "extra"}, "data": {"owner": "primary"}}
    )
    client.AppsV1Api(lab.primary).patch_namespaced_deployment(
        "vllm",
        ns,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "server",
                                "envFrom": [
                                    {"configMapRef": {"name": "vllm-config"}},
                                    {"configMapRef": {"name": "extra"}},
                                ],
                            }
                        ]
                    }
                }
            }
        },
    )
    eventually(
        lambda: "not created by Overspill" in condition(lab, ns, "vllm", "DependenciesReady").get("message", ""),
        30,
        what="the conflict reported",
    )
    assert f"ConfigMap {ns}/extra" in condition(lab, ns, "vllm", "DependenciesReady")["message"]
    theirs = read(lab.secondary, "ConfigMap", ns, "extra")
    assert theirs.data == {"owner": "someone-else"} and not (theirs.metadata.labels or {})

    # deleting the policy removes every copy, the Service and the ServiceExport; the foreign object stays
    client.CustomObjectsApi(lab.primary).delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "vllm")

    def cleaned() -> bool:
        left = [
            read(lab.secondary, k, ns, n)
            for k, n in (
                ("ConfigMap", "vllm-config"),
                ("Secret", "hf"),
                ("Secret", "regcred"),
                ("ServiceAccount", "vllm"),
                ("Service", BURST),
            )
        ]
        return all(x is None for x in left) and export(lab, ns, BURST) is None

    eventually(cleaned, 30, what="copies, Service and ServiceExport removed")
    assert read(lab.secondary, "ConfigMap", ns, "extra").data == {"owner": "someone-else"}


EXPORTED = [
    {"type": t, "status": "True", "reason": r, "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    for t, r in (("Valid", "Valid"), ("Ready", "Exported"))
]


def imported(lab: Lab, ns: str, name: str) -> None:
    """Play the MCS controller in the primary: the ServiceImport the route's backendRef names."""
    body = {
        "apiVersion": f"{MCS}/{MCS_VERSION}",
        "kind": "ServiceImport",
        "metadata": {"name": name},
        "spec": {"type": "ClusterSetIP", "ports": [{"port": 80, "protocol": "TCP"}]},
    }
    client.CustomObjectsApi(lab.primary).create_namespaced_custom_object(MCS, MCS_VERSION, ns, "serviceimports", body)


DRAIN = 10  # spec.traffic.drainSeconds in this test: short, and long enough to tell from a poll (2 s)
RECORD = "overspill.dev/backends."


def route_annotations(lab: Lab, ns: str) -> dict[str, str]:
    route = client.CustomObjectsApi(lab.primary).get_namespaced_custom_object(GW, GW_VERSION, ns, "httproutes", "vllm")
    return dict((route.get("metadata") or {}).get("annotations") or {})


def route_weights(lab: Lab, ns: str) -> tuple[int, int]:
    route = client.CustomObjectsApi(lab.primary).get_namespaced_custom_object(GW, GW_VERSION, ns, "httproutes", "vllm")
    refs = route["spec"]["rules"][0]["backendRefs"]
    local = next(r for r in refs if r.get("kind", "Service") == "Service")
    burst = next((r for r in refs if r.get("kind") == "ServiceImport"), None)
    return int(local.get("weight", 1)), int(burst.get("weight", 1)) if burst else 0


def ready_pods(api: client.ApiClient, ns: str) -> int:
    pods = client.CoreV1Api(api).list_namespaced_pod(ns, label_selector="app=vllm").items
    return sum(
        1
        for p in pods
        if p.metadata.deletion_timestamp is None
        and any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))
    )


def test_route_weights_follow_ready_replicas_and_drain_first(
    lab: Lab, operator: OperatorProcess, namespace: str
) -> None:
    ns = namespace
    utils.create_from_dict(
        lab.primary, {"apiVersion": "v1", "kind": "List", "items": serving_workload(ns)}, namespace=ns
    )
    route = {
        "apiVersion": f"{GW}/{GW_VERSION}",
        "kind": "HTTPRoute",
        "metadata": {"name": "vllm"},
        "spec": {"rules": [{"backendRefs": [{"name": "vllm", "port": 80}]}]},
    }
    client.CustomObjectsApi(lab.primary).create_namespaced_custom_object(GW, GW_VERSION, ns, "httproutes", route)
    create_policy(
        lab,
        ns,
        propagation={"secrets": True},
        traffic={"serviceRef": {"name": "vllm"}, "httpRouteRef": {"name": "vllm"}, "drainSeconds": DRAIN},
    )
    eventually(lambda: route_weights(lab, ns) == (1, 0), 30, what="weights (1, 0) before the burst")

    lab.set_queue(ns, 150)
    # Ready burst replicas whose export is not Exported get no weight: no request could reach them
    eventually(
        lambda: ready_pods(lab.secondary, ns) >= 1 and export(lab, ns, BURST) is not None,
        90,
        what="Ready burst pods and their ServiceExport",
    )
    eventually(
        lambda: "no multi-cluster controller" in condition(lab, ns, "vllm", "TrafficReady").get("message", ""),
        30,
        what="TrafficReady saying no multi-cluster controller exported the Service",
    )
    assert condition(lab, ns, "vllm", "TrafficReady")["status"] == "False"
    time.sleep(4)  # two more polls: still no weight
    assert route_weights(lab, ns)[1] == 0, route_weights(lab, ns)

    # the export's conditions are read back (the test plays the MCS controller the lab does not run)
    client.CustomObjectsApi(lab.secondary).patch_namespaced_custom_object_status(
        MCS, MCS_VERSION, ns, "serviceexports", BURST, {"status": {"conditions": EXPORTED}}
    )
    # exported, but the primary holds no ServiceImport yet: the gateway could not resolve it, so still no weight
    eventually(
        lambda: "no ServiceImport" in condition(lab, ns, "vllm", "TrafficReady").get("message", ""),
        30,
        what="the missing import reported",
    )
    assert route_weights(lab, ns)[1] == 0, route_weights(lab, ns)
    imported(lab, ns, BURST)
    seen: list[tuple[tuple[int, int], int]] = []

    def burst_up() -> bool:
        w = route_weights(lab, ns)
        seen.append((w, ready_pods(lab.secondary, ns)))
        return w == (8, 7)

    eventually(burst_up, 90, interval=0.3, what="weights (8, 7)")
    # a secondary replica gets weight only once Ready: never more burst weight than Ready burst pods
    assert all(w[1] <= ready for w, ready in seen), seen

    # the status is written off the tick's path (statuswriter): it follows the route within a poll or two
    def status_weights() -> tuple[int, int]:
        st = policy(lab, ns, "vllm")["status"]["traffic"]
        return st["localWeight"], st["burstWeight"]

    eventually(lambda: status_weights() == (8, 7), 30, what="status.traffic weights (8, 7)")
    wait_condition(lab, ns, "vllm", "TrafficReady", "True", 30)
    exported = policy(lab, ns, "vllm")["status"]["traffic"]["exports"][0]
    assert (exported["state"], exported["service"], exported["weight"]) == ("Exported", BURST, 7)

    # what Overspill wrote is recorded on the route, with the weights, through the API server's merge patch
    uid = policy(lab, ns, "vllm")["metadata"]["uid"]
    assert f"{RECORD}{uid}" in route_annotations(lab, ns)

    # return home: the secondary's weight is 0 for drainSeconds before any of its replicas is removed
    lab.set_queue(ns, 20)
    samples: list[tuple[tuple[int, int], int | None, float]] = []

    def drained() -> bool:
        w = route_weights(lab, ns)
        samples.append((w, spec_replicas(lab.secondary, ns, "vllm"), time.monotonic()))
        return samples[-1][1] == 0

    eventually(drained, 90, interval=0.2, what="secondary scaled to 0")
    assert all(w[1] == 0 for w, replicas, _ in samples if replicas is not None and replicas < 7), samples
    assert any(w[1] == 0 and replicas == 7 for w, replicas, _ in samples), samples  # drained while still running
    zero = next(t for w, _, t in samples if w[1] == 0)
    shrunk = next(t for _, replicas, t in samples if replicas is not None and replicas < 7)
    assert shrunk - zero >= DRAIN - 1, (shrunk - zero, samples)  # the weight was 0 for the drain time first
    eventually(lambda: route_weights(lab, ns)[1] == 0 and route_weights(lab, ns)[0] >= 2, 30, what="all local")

    # deleting the policy: the route lets go of the burst replicas before anything that serves them is removed
    lab.set_queue(ns, 150)
    eventually(lambda: route_weights(lab, ns) == (8, 7), 90, interval=0.3, what="weights (8, 7) again")
    client.CustomObjectsApi(lab.primary).delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "vllm")
    gone: list[tuple[tuple[int, int], int | None, bool]] = []

    def deleted() -> bool:
        w = route_weights(lab, ns)
        gone.append((w, spec_replicas(lab.secondary, ns, "vllm"), read(lab.secondary, "Service", ns, BURST) is None))
        return gone[-1][1] is None and gone[-1][2]

    eventually(deleted, 90, interval=0.2, what="mirror and burst Service removed")
    assert all(w[1] == 0 for w, replicas, svc_gone in gone if svc_gone or replicas is None or replicas < 7), gone
    assert any(w[1] == 0 and replicas == 7 for w, replicas, _ in gone), gone  # drained while still running
    eventually(lambda: not [k for k in route_annotations(lab, ns) if k.startswith(RECORD)], 30, what="record gone")
