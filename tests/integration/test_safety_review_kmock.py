"""Issue 10 review breaks (adversarial review, confirmed on main before the fix): unknown busy pods costed like
idle ones at scale-in; a sweep that drained a busy mirror although its deletion costs could not be set."""

from __future__ import annotations

import contextlib
from typing import Any

import kmock as kmock_lib
import pytest

from overspill.adapters.kube import Cluster
from tests.integration.conftest import FakeMetrics, deployment, pod
from tests.integration.safety_setup import CI, COST, MANAGED, make, replicas, tick
from tests.integration.test_reconcile_kmock import spec

pytestmark = pytest.mark.integration


async def test_unknown_busy_pods_are_not_distinguishable_from_idle_ones_at_scale_in(
    emulator: Any, cluster: Cluster
) -> None:
    """per-pod query answers for r-1, r-2 (idle) but not r-3, r-4 (unknown = busy). The floor keeps 2 replicas,
    but the ReplicaSet picks WHICH pods go by deletion cost: unknown pods keep cost 0 like the idle ones."""
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 4)
    for n in ("r-1", "r-2", "r-3", "r-4"):
        emulator.objects["v1/pods", "ml", n] = pod(n, "ml")
    m = FakeMetrics(0)
    m.per_pod_values = {"r-1": 0.0, "r-2": 0.0}
    s = spec(**CI, busy={"query": "sum by (pod) (busy)"}, targets=[])
    await tick(await make(cluster, m), s)
    assert emulator.objects["apps/v1/deployments", "ml", "vllm"]["spec"]["replicas"] == 2  # scaled in to the floor
    cost = lambda n: (emulator.objects["v1/pods", "ml", n]["metadata"].get("annotations") or {}).get(COST, "0")  # noqa: E731
    # promise: the unknown pods must be the ones kept -> they must rank above the idle ones
    assert int(cost("r-3")) > int(cost("r-1")) and int(cost("r-4")) > int(cost("r-2")), [
        cost(n) for n in ("r-1", "r-2", "r-3", "r-4")
    ]


async def test_sweep_drains_a_busy_mirror_although_its_deletion_cost_could_not_be_set(
    emulator: Any, cluster: Cluster
) -> None:
    """Namespace change: the old mirror drains to its busy runners. If the pod patch is refused (webhook, RBAC),
    hold_for swallows it and the scale-down still happens: the ReplicaSet sees all costs equal."""
    refused: list[str] = []

    def refuse(request: Any) -> None:  # an admission webhook on pod UPDATE refuses (or RBAC lacks pods/patch)
        refused.append(request.name)
        raise kmock_lib.KubernetesError(status=403, reason="Forbidden", message="denied by webhook")

    emulator["patch", emulator.resource("v1/pods")] << refuse
    emulator.objects["apps/v1/deployments", "ml", "vllm"] = deployment("vllm", "ml", 8)
    emulator.objects["apps/v1/deployments", "mirror", "vllm"] = deployment("vllm", "mirror", 3, labels=MANAGED)
    emulator.objects["v1/pods", "mirror", "m-busy"] = pod("m-busy", "mirror", labels=MANAGED, annotations={"b": "true"})
    emulator.objects["v1/pods", "mirror", "m-idle"] = pod("m-idle", "mirror", labels=MANAGED)
    emulator.objects["v1/pods", "mirror", "m-idle2"] = pod("m-idle2", "mirror", labels=MANAGED)
    r = await make(cluster, FakeMetrics(110))
    s = spec(**CI, busy={"podAnnotation": "b"}, targets=[{"name": "aws", "overrides": {"namespace": "mirror2"}}])
    with contextlib.suppress(Exception):  # the in-use path stops the tick too; only the old mirror matters here
        await tick(r, s)
    # promise: never scale in over a busy runner that is not protected
    # promise: never scale in over a busy runner whose protection could not be set
    assert refused, "the pod patch was never tried"
    assert replicas(emulator, "mirror") == 3, "scaled in over a busy runner whose protection could not be set"
