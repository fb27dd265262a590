"""Review 9d (adversarial), on real API servers: what only the API server's own rules show (immutable ConfigMaps,
the strategic merge of a Service's ports)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kubernetes import client, utils

from tests.e2e.conftest import Lab, OperatorProcess, eventually
from tests.e2e.helpers import condition
from tests.e2e.test_serving import BURST, create_policy, read, serving_workload


def settled(check: Callable[[], object], want: object, timeout: float) -> object:
    """`check()` until it returns `want` or `timeout` seconds pass: the last value (for the assertion's message)."""
    deadline = time.monotonic() + timeout
    last = check()
    while last != want and time.monotonic() < deadline:
        time.sleep(0.2)
        last = check()
    return last


def burst_with(lab: Lab, ns: str, items: list[dict[str, Any]]) -> None:
    utils.create_from_dict(lab.primary, {"apiVersion": "v1", "kind": "List", "items": items}, namespace=ns)
    create_policy(lab, ns, propagation={"secrets": True}, traffic={"serviceRef": {"name": "vllm"}})
    lab.set_queue(ns, 150)
    eventually(lambda: read(lab.secondary, "Service", ns, BURST) is not None, 90, what="the burst Service")


def test_an_immutable_configmap_recreated_in_the_primary_reaches_the_target(
    lab: Lab, operator: OperatorProcess, namespace: str
) -> None:
    """An immutable ConfigMap changes the only way it can: deleted and created again with new data. The copy is
    immutable too, so the API server refuses its update (422); Overspill never deletes and recreates it, and the
    target runs the old config for as long as the policy lives (issue 9: copies are updated within one poll)."""
    ns = namespace
    items = serving_workload(ns)
    items[0]["immutable"] = True  # ConfigMap vllm-config
    burst_with(lab, ns, items)
    eventually(
        lambda: (
            (read(lab.secondary, "ConfigMap", ns, "vllm-config") or client.V1ConfigMap()).data == {"MODEL": "llama"}
        ),
        30,
        what="the copy",
    )
    core = client.CoreV1Api(lab.primary)
    core.delete_namespaced_config_map("vllm-config", ns)
    core.create_namespaced_config_map(
        ns, {"metadata": {"name": "vllm-config"}, "data": {"MODEL": "mistral"}, "immutable": True}
    )
    want = {"MODEL": "mistral"}
    last = settled(lambda: (read(lab.secondary, "ConfigMap", ns, "vllm-config") or client.V1ConfigMap()).data, want, 30)
    why = condition(lab, ns, "vllm", "DependenciesReady").get("message")
    assert last == want, f"the copy in the target after 15 polls (2 s): {last}; DependenciesReady: {why}"


def test_the_burst_service_follows_the_primary_services_ports(
    lab: Lab, operator: OperatorProcess, namespace: str
) -> None:
    """The primary Service moves from port 80 to 8080 (same name, same targetPort). The burst Service is brought up
    to date by a strategic merge patch, whose merge key for ports is `port`: the new port is added and the old one
    kept, so the burst Service (and the ServiceImport made from its export) still offers port 80, which the primary
    no longer has (a port conflict across the clusterset); and it never equals what is wanted, so it is patched
    again at every poll."""
    ns = namespace
    burst_with(lab, ns, serving_workload(ns))
    core = client.CoreV1Api(lab.primary)
    svc = core.read_namespaced_service("vllm", ns)
    svc.spec.ports = [client.V1ServicePort(name="http", port=8080, target_port=8000, protocol="TCP")]
    core.replace_namespaced_service("vllm", ns, svc)

    def ports() -> list[int]:
        return sorted(p.port for p in read(lab.secondary, "Service", ns, BURST).spec.ports)

    last = settled(ports, [8080], 30)  # 15 polls (a budget for a loaded machine)
    why = condition(lab, ns, "vllm", "TrafficReady").get("message")
    assert last == [8080], f"the burst Service's ports: {last}; TrafficReady: {why}"
