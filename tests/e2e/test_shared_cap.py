"""A BurstTarget's cap is shared by every operator process: two shards racing for one capped target never exceed
it and never flap (issue 10, item 2).

Two operators, each sharded to one namespace (`--namespace`), as docs/operations.md describes; one policy in each
namespace wants 6 replicas beyond its primary cap of 2, both at the same moment, on one BurstTarget capped at 6.
Before the cap was reserved through the API server each operator filled the cap from its own memory: 12 of 6.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, utils

from tests.e2e.conftest import Lab, OperatorProcess, eventually
from tests.e2e.helpers import GROUP, VERSION, policy_body
from tests.e2e.workloads import gpu_deployment

TARGET, CAP = "shared-cap", 6
MANAGED = "app.kubernetes.io/managed-by=overspill"


def _mirrors(lab: Lab, namespaces: tuple[str, ...]) -> dict[str, int]:
    """spec.replicas of each namespace's mirror in the secondary (what the cap limits; Pending pods count)."""
    apps = client.AppsV1Api(lab.secondary)
    out = {}
    for ns in namespaces:
        items = apps.list_namespaced_deployment(ns, label_selector=MANAGED, _request_timeout=5).items
        out[ns] = sum(d.spec.replicas or 0 for d in items)
    return out


@pytest.fixture
def shards(installed: Lab, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two namespaces, each with its own operator process, and the capped BurstTarget both name."""
    lab = installed
    stamp = int(time.time()) % 100000
    namespaces = (f"e2e-cap-a-{stamp}", f"e2e-cap-b-{stamp}")
    core, custom = client.CoreV1Api(lab.primary), client.CustomObjectsApi(lab.primary)
    for ns in namespaces:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    target = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BurstTarget",
        "metadata": {"name": TARGET},
        "spec": {
            "kubeconfigSecretRef": {"name": "lab-secondary-kubeconfig", "namespace": "overspill-system"},
            "maxReplicas": CAP,
            "probeIntervalSeconds": 2,
        },
    }
    with contextlib.suppress(client.ApiException):
        custom.delete_cluster_custom_object(GROUP, VERSION, "bursttargets", TARGET)
    eventually(lambda: _target_gone(custom), 30, what=f"an old BurstTarget {TARGET} gone")
    custom.create_cluster_custom_object(GROUP, VERSION, "bursttargets", target)
    ops = [
        OperatorProcess(lab, tmp_path / f"shard-{i}.log", namespaces=(ns,), ports=(19195 + 2 * i, 19196 + 2 * i))
        for i, ns in enumerate(namespaces)
    ]
    try:
        for op in ops:
            op.start(timeout=120)  # two processes starting on a loaded machine
        yield namespaces
    finally:
        for ns in namespaces:  # the policies go with their namespaces: the shards release their mirrors
            with contextlib.suppress(client.ApiException):
                core.delete_namespace(ns)
        for ns in namespaces:
            eventually(lambda ns=ns: not _exists(core, ns), 120, what=f"namespace {ns} deleted in the primary")
        # the target goes while its operators still run: Kopf's finalizer on it (its probe daemon) is removed by
        # them, not left for the next module's operator (every deletion would wait on a Terminating target)
        with contextlib.suppress(client.ApiException):
            custom.delete_cluster_custom_object(GROUP, VERSION, "bursttargets", TARGET)
        with contextlib.suppress(Exception, pytest.fail.Exception):
            eventually(lambda: _target_gone(custom), 60, what=f"BurstTarget {TARGET} deleted")
        for op in ops:
            op.stop()
            if op.log_path.exists():
                print(op.log_tail(20))
        for ns in namespaces:
            with contextlib.suppress(client.ApiException):
                client.CoreV1Api(lab.secondary).delete_namespace(ns)


def _target_gone(custom: client.CustomObjectsApi) -> bool:
    try:
        custom.get_cluster_custom_object(GROUP, VERSION, "bursttargets", TARGET)
    except client.ApiException as err:
        return bool(err.status == 404)
    return False


def _exists(core: client.CoreV1Api, ns: str) -> bool:
    try:
        core.read_namespace(ns)
    except client.ApiException as err:
        if err.status == 404:
            return False
        raise
    return True


def test_two_shards_racing_for_one_capped_target_never_exceed_it(lab: Lab, shards: tuple[str, str]) -> None:
    spec = {
        "maxReplicas": 8,
        "primary": {"maxReplicas": 2, "pendingGracePeriodSeconds": 2},
        "targets": [{"name": TARGET}],
    }
    custom = client.CustomObjectsApi(lab.primary)
    for ns in shards:
        utils.create_from_dict(lab.primary, gpu_deployment("vllm", 1), namespace=ns)
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, "burstpolicies", policy_body("vllm", ns, **spec))
    seen: list[tuple[float, dict[str, int]]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            with contextlib.suppress(Exception):  # a slow answer this round: the next one counts
                seen.append((time.monotonic(), _mirrors(lab, shards)))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        for ns in shards:  # both queues at once: each policy wants 8, 2 in the primary and 6 on the target
            lab.set_queue(ns, 150)
        eventually(lambda: sum(_mirrors(lab, shards).values()) == CAP, 90, what=f"the cap of {CAP} filled")
        settled = time.monotonic()
        time.sleep(20)  # ten polls of each policy
    finally:
        done.set()
        sampler.join(10)
    worst = max(sum(m.values()) for _, m in seen)
    assert worst <= CAP, (
        f"{worst} replicas on a target capped at {CAP}: {[m for _, m in seen if sum(m.values()) > CAP][:5]}"
    )
    after = {tuple(sorted(m.items())) for t, m in seen if t >= settled}
    assert len(after) == 1, f"the placement moved after the cap was filled (flapping): {sorted(after)}"
    # the room was taken through the API server: the reservations are in the target's Lease, beside its Secret
    lease = client.CoordinationV1Api(lab.primary).read_namespaced_lease(f"overspill-cap-{TARGET}", "overspill-system")
    reserved = json.loads((lease.metadata.annotations or {}).get("overspill.dev/reservations", "{}"))
    assert 0 < sum(r["replicas"] for r in reserved.values()) <= CAP, reserved
    target = custom.get_cluster_custom_object(GROUP, VERSION, "bursttargets", TARGET)
    owners = [(o.kind, o.name, o.uid) for o in lease.metadata.owner_references or []]
    assert owners == [("BurstTarget", TARGET, target["metadata"]["uid"])]  # it goes with the target
