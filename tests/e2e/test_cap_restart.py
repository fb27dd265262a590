"""A policy deleted while no operator runs gives its room in a shared cap back as soon as the next operator has
processed the deletion, not a lease later.

The break, found by CI: a test module's operator stopped with a policy's reservation of 14 (of 16) in the cap's
Lease; the policy was deleted meanwhile. The next operator ran the deletion before anything had made it read the
Lease (no policy had ticked on the target yet): its release found nothing to remove in its empty copy and wrote
nothing, and the deleted policy held 14 of the cap for the Lease's 120 s. The next test's burst got 2.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, utils

from tests.e2e.conftest import Lab, OperatorProcess, eventually
from tests.e2e.helpers import GROUP, VERSION, policy_body
from tests.e2e.workloads import gpu_deployment

TARGET, CAP = "restart-cap", 6
SECRET_NS = "overspill-system"  # noqa: S105 - a namespace, not a password
MANAGED = "app.kubernetes.io/managed-by=overspill"
# a burst of 6 beyond the primary's 2: the whole cap
SPEC = {"maxReplicas": 8, "primary": {"maxReplicas": 2, "pendingGracePeriodSeconds": 2}, "targets": [{"name": TARGET}]}


def _mirrored(lab: Lab, ns: str) -> int:
    items = client.AppsV1Api(lab.secondary).list_namespaced_deployment(ns, label_selector=MANAGED).items
    return sum(d.spec.replicas or 0 for d in items)


def _reserved(lab: Lab) -> dict[str, int]:
    try:
        lease = client.CoordinationV1Api(lab.primary).read_namespaced_lease(f"overspill-cap-{TARGET}", SECRET_NS)
    except client.ApiException as err:
        if err.status == 404:
            return {}
        raise
    raw = json.loads((lease.metadata.annotations or {}).get("overspill.dev/reservations", "{}"))
    return {uid: int(r["replicas"]) for uid, r in raw.items()}


def _gone(call: object, *args: str) -> bool:
    try:
        call(*args)  # type: ignore[operator]
    except client.ApiException as err:
        return bool(err.status == 404)
    return False


@pytest.fixture
def capped(installed: Lab) -> Iterator[tuple[str, str]]:
    """Its own BurstTarget on the secondary, capped at 6, and two namespaces (deleted afterwards everywhere)."""
    lab = installed
    custom, core = client.CustomObjectsApi(lab.primary), client.CoreV1Api(lab.primary)
    stamp = int(time.time()) % 100000
    namespaces = (f"e2e-cap-old-{stamp}", f"e2e-cap-new-{stamp}")
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BurstTarget",
        "metadata": {"name": TARGET},
        "spec": {
            "kubeconfigSecretRef": {"name": "lab-secondary-kubeconfig", "namespace": SECRET_NS},
            "maxReplicas": CAP,
            "probeIntervalSeconds": 2,
        },
    }
    with contextlib.suppress(client.ApiException):
        custom.delete_cluster_custom_object(GROUP, VERSION, "bursttargets", TARGET)
    eventually(lambda: _gone(custom.get_cluster_custom_object, GROUP, VERSION, "bursttargets", TARGET), 30)
    # the Lease goes with its BurstTarget (garbage collection): none left from an earlier run counts here
    leases = client.CoordinationV1Api(lab.primary)
    eventually(lambda: _gone(leases.read_namespaced_lease, f"overspill-cap-{TARGET}", SECRET_NS), 60)
    custom.create_cluster_custom_object(GROUP, VERSION, "bursttargets", body)
    for ns in namespaces:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    try:
        yield namespaces
    finally:
        for api in (lab.primary, lab.secondary):
            for ns in namespaces:
                with contextlib.suppress(client.ApiException):
                    client.CoreV1Api(api).delete_namespace(ns)
        with contextlib.suppress(client.ApiException):
            custom.delete_cluster_custom_object(GROUP, VERSION, "bursttargets", TARGET)


def test_a_policy_deleted_while_no_operator_ran_gives_its_cap_back(
    lab: Lab, capped: tuple[str, str], tmp_path: Path
) -> None:
    old_ns, new_ns = capped
    custom, core = client.CustomObjectsApi(lab.primary), client.CoreV1Api(lab.primary)
    first = OperatorProcess(lab, tmp_path / "first.log")
    first.start(timeout=120)
    try:
        utils.create_from_dict(lab.primary, gpu_deployment("vllm", 1), namespace=old_ns)
        custom.create_namespaced_custom_object(
            GROUP, VERSION, old_ns, "burstpolicies", policy_body("vllm", old_ns, **SPEC)
        )
        lab.set_queue(old_ns, 150)
        eventually(lambda: _mirrored(lab, old_ns) == CAP, 90, what=f"the old policy's burst filling the cap of {CAP}")
        assert sum(_reserved(lab).values()) == CAP  # its reservation is in the Lease
    finally:
        first.kill()  # the module's operator stops (a crash, a rollout, the end of a test module)
    # while no operator runs: the policy's namespace is deleted in the secondary (its mirrors go) and in the primary
    # (the policy waits there on its finalizer)
    client.CoreV1Api(lab.secondary).delete_namespace(old_ns)
    core.delete_namespace(old_ns)
    eventually(
        lambda: _gone(client.CoreV1Api(lab.secondary).read_namespace, old_ns), 120, what="the mirrors' namespace gone"
    )
    second = OperatorProcess(lab, tmp_path / "second.log")
    second.start(timeout=120)
    try:
        eventually(
            lambda: _gone(core.read_namespace, old_ns), 120, what="the old policy's deletion processed (namespace gone)"
        )
        # nothing ticks on the target before the new policy: the release was the first thing to touch its Lease
        utils.create_from_dict(lab.primary, gpu_deployment("vllm", 1), namespace=new_ns)
        custom.create_namespaced_custom_object(
            GROUP, VERSION, new_ns, "burstpolicies", policy_body("vllm", new_ns, **SPEC)
        )
        lab.set_queue(new_ns, 150)
        # well within the 120 s a forgotten reservation would hold the room
        eventually(
            lambda: _mirrored(lab, new_ns) == CAP,
            75,
            what=f"the new policy's burst getting the whole cap of {CAP}",
        )
        new_uid = custom.get_namespaced_custom_object(GROUP, VERSION, new_ns, "burstpolicies", "vllm")["metadata"][
            "uid"
        ]
        assert set(_reserved(lab)) <= {new_uid}
    finally:
        second.stop()
        print(second.log_tail(30))
