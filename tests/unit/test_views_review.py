"""Adversarial review of issue 12 (views, capacity, stockouts): each test asserts a promise of the issue and
failed on the first implementation (51f8ea1) before its fix."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from overspill.decide import ClusterState, Memory, decide
from overspill.decide.capacity import node_state, room, shape_of, usage_by_node
from overspill.decide.snapshot import FullTarget
from overspill.views.cluster import slim_pod
from tests.unit.engine_helpers import policy, snap, tgt


def est(replicas: int, room: int, *, unsched: int = 0) -> ClusterState:
    return ClusterState(
        replicas=replicas, ready=replicas - unsched, unschedulable=unsched, scheduled=replicas - unsched, room=room
    )


# ---- capacity: native sidecars (init containers with restartPolicy: Always) ---------------------------------


def sidecar_pod_spec() -> dict[str, Any]:
    """A server with a native sidecar (Kubernetes >= 1.29): the sidecar runs beside it for the pod's whole life."""
    return {
        "initContainers": [
            {"name": "proxy", "restartPolicy": "Always", "resources": {"requests": {"cpu": "4"}}},
        ],
        "containers": [{"name": "server", "resources": {"requests": {"cpu": "4"}}}],
    }


def test_review12_a_native_sidecar_adds_to_the_pods_requests() -> None:
    # the scheduler (resourcehelper.PodRequests) adds restartable init containers to the containers' sum:
    # this pod asks for 8 CPUs, and a 16-CPU node holds 2 of them, not 4
    shape = shape_of(sidecar_pod_spec())
    assert shape.requests["cpu"] == 8000
    node = node_state(
        {
            "metadata": {"name": "n"},
            "status": {
                "allocatable": {"cpu": "16", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }
    )
    assert room([node], {}, shape) == 2


def test_review12_bound_pods_with_sidecars_are_accounted_in_full() -> None:
    # the view slims pods before accounting: the sidecar's restartPolicy must survive the projection
    pod = {
        "metadata": {"name": "p", "namespace": "ml"},
        "spec": {**sidecar_pod_spec(), "nodeName": "n"},
        "status": {"phase": "Running"},
    }
    used = usage_by_node([slim_pod(pod)])
    assert used["n"]["cpu"] == 8000


# ---- the estimate the scheduler contradicted: one more free slot must not re-trust all of it --------------


def test_review12_one_freed_slot_does_not_rearm_a_contradicted_estimate() -> None:
    spec = policy()
    # the estimate says 8 fit (4 bound + 4 room) but the scheduler leaves 4 Unschedulable: it is wrong by 4
    d1 = decide(spec, snap(150, est(8, 4, unsched=4), now=100.0))
    assert d1.primary_capacity == 4
    # the Pending pods are gone; later one unrelated pod ends somewhere in the primary: the estimate is 9 now
    d2 = decide(spec, snap(150, est(4, 5), memory=d1.memory, now=200.0))
    # only the one slot that appeared is new room: asking for 9 recreates the 4 Pending pods Overspill just
    # took back (with a cluster autoscaler, buying nodes) and the cycle repeats on every unrelated pod event
    assert d2.placement.primary <= 5, f"primary scaled to {d2.placement.primary} on one freed slot"


# ---- stockouts ------------------------------------------------------------------------------------------------


def test_review12_a_full_target_that_loses_nodes_gives_its_pending_pods_back() -> None:
    spec = policy(primary={"maxReplicas": 8})
    # aws filled at 6 (memory); then a spot node went away: 2 run, 4 are Unschedulable past the timeout
    mem = Memory(full_targets=(FullTarget("aws", 6, 0, 100.0),))
    aws = tgt("aws", ClusterState(replicas=6, ready=2, scheduled=2, room=0, stuck=4))
    d = decide(spec, snap(150, est(8, 0), aws, now=1000.0, memory=mem))
    assert d.placement.targets["aws"] == 2, (
        f"aws kept at {d.placement.targets['aws']} with 4 Pending pods; gcp got {d.placement.targets['gcp']}"
    )


def test_review12_a_full_target_whose_nodes_come_on_demand_is_rechecked_some_day() -> None:
    # a secondary that adds GPU nodes on demand (cluster autoscaler from zero, Karpenter) has room 0 in its
    # accounting whenever no pod is Pending: the estimate can never grow, so the target stays full forever
    # (memory in status survives restarts), even a week after the cloud has GPUs again
    spec = policy(primary={"maxReplicas": 8})
    mem = Memory(full_targets=(FullTarget("aws", 0, 0, 100.0),))
    week = 100.0 + 7 * 24 * 3600
    d = decide(spec, snap(150, est(8, 0), tgt("aws", ClusterState(room=0)), now=week, memory=mem))
    assert d.memory.full_targets == (), "never re-checked: the preferred target is abandoned for good"


# ---- status cadence: the capacity estimate is a moving figure ------------------------------------------------


def test_review12_a_moving_estimate_alone_is_not_a_decision() -> None:
    from overspill.api.policy import BurstPolicyStatus
    from overspill.cadence import _settled
    from overspill.report import TargetReport, policy_status

    spec = policy()

    def status(room: int) -> dict[str, Any]:
        primary = est(2, room)  # a quiet policy: 2 replicas, the primary has plenty of room
        targets = (tgt("aws"), tgt("gcp", priority=1))
        d = decide(spec, snap(15, primary, *targets, now=1000.0))
        reports = [TargetReport(t.name, t, None) for t in targets]
        out, _ = policy_status(spec, BurstPolicyStatus(), 1, 1000.0, 15, "", primary, reports, d, {})
        return out

    # other tenants' pods come and go in the primary: its free room moves by one, nothing is decided
    a, b = status(40), status(41)
    assert a["primary"]["replicas"] == b["primary"]["replicas"] == 2
    # primary.capacity and the PrimaryAtCapacity message carry the estimate: every policy writes its status
    # on every tick while anything churns in the primary (1,000 policies / 10 s poll = 100 writes/s)
    assert _settled(a) == _settled(b), "a status write on every tick while other tenants' pods churn"


# ---- a target's view after its spec was briefly invalid ----------------------------------------------------


def test_review12_a_target_spec_fixed_after_an_invalid_edit_gets_its_view_back() -> None:
    """The probe daemon removes the target from the registry on an invalid spec (closing its view); once the
    spec is fixed, the Secret's resourceVersion is unchanged, so `_probe` builds no new view: the target is
    probed healthy but every policy reports it "unavailable: no view of it yet" until the Secret rotates."""
    import base64
    from types import SimpleNamespace

    from overspill.api import parse_target_spec
    from overspill.handlers import _probe
    from overspill.targets import TargetRegistry
    from overspill.triggers import Triggers

    kubeconfig = (
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "current-context: x\n"
    )
    secret = SimpleNamespace(
        data={"kubeconfig": base64.b64encode(kubeconfig.encode()).decode()},
        metadata=SimpleNamespace(resource_version="7"),
    )
    core = SimpleNamespace(read_namespaced_secret=lambda *a, **k: secret)
    rtm: Any = SimpleNamespace(primary=SimpleNamespace(core=core), targets=TargetRegistry(), triggers=Triggers())
    spec = parse_target_spec({"kubeconfigSecretRef": {"name": "s", "namespace": "overspill-system"}})
    cache: dict[str, Any] = {}  # the daemon's, kept for its whole life
    try:
        rtm.targets.upsert("aws", spec)
        _probe(rtm, "aws", spec, cache)
        assert rtm.targets.get("aws").view is not None
        rtm.targets.remove("aws")  # what the daemon does while the spec is invalid
        rtm.targets.upsert("aws", spec)  # fixed
        _probe(rtm, "aws", spec, cache)
        assert rtm.targets.get("aws").view is not None, "no view: the target stays unavailable to every policy"
    finally:
        for name in rtm.targets.names():
            rtm.targets.remove(name)


# ---- a policy deleted mid-tick ---------------------------------------------------------------------------------


async def test_review12_a_policy_deleted_mid_tick_gives_its_target_room_back() -> None:
    """Kopf cancels a daemon that does not stop within cancellation_timeout (10 s: one slow target write or a
    Prometheus timeout plus a write). The daemon's `finally` forgets the policy at once, but the reconcile
    thread it was awaiting runs on and ends with `targets.set_usage(uid, ...)`: the deleted policy's replicas
    count against the BurstTarget's shared maxReplicas until the operator restarts (and its metric series and
    pod selector come back too)."""
    import asyncio
    import threading
    from types import SimpleNamespace

    from overspill.api import parse_target_spec
    from overspill.handlers import burstpolicy_loop
    from overspill.reconcile import Outcome
    from overspill.statuswriter import StatusWriter
    from overspill.targets import TargetRegistry
    from overspill.triggers import Triggers

    registry = TargetRegistry()
    registry.upsert(
        "aws", parse_target_spec({"kubeconfigSecretRef": {"name": "s", "namespace": "o"}, "maxReplicas": 8})
    )
    registry.ledger.set_cap("aws", 8)
    registry.ledger.rebuild("aws", {})
    in_tick = threading.Event()

    class SlowReconciler:
        def reconcile(self, ref: Any, spec: Any, prev: Any, generation: Any) -> Outcome:
            in_tick.set()
            __import__("time").sleep(0.5)  # a write to a slow target, a Prometheus timeout
            registry.ledger.reserve("aws", ref.uid, 6, 0)  # what the act step of Reconciler._reconcile does
            return Outcome(None, {}, [])

    rtm = SimpleNamespace(
        reconciler=SlowReconciler(),
        targets=registry,
        triggers=Triggers(),
        primary_view=SimpleNamespace(wait_ready=lambda timeout: True, ready=True),
        status_writer=StatusWriter(),
    )

    class Stopped:
        flag = False

        def __bool__(self) -> bool:
            return self.flag

        async def wait(self, seconds: float | None = None) -> None:  # Kopf's is wait(timeout)
            await asyncio.sleep(seconds or 0)

    body = {
        "metadata": {"generation": 1},
        "spec": {
            "workloadRef": {"name": "vllm"},
            "metric": {"prometheus": {"query": "q"}, "targetPerReplica": 10},
            "maxReplicas": 20,
            "targets": [{"name": "aws"}],
        },
    }
    loop_fn: Any = burstpolicy_loop  # Kopf's decorator types it as DaemonFn; called here as Kopf calls it
    task: asyncio.Task[Any] = asyncio.create_task(
        loop_fn(
            namespace="ml",
            name="p",
            uid="gone",
            body=body,
            stopped=Stopped(),
            memo={"runtime": rtm},
            logger=__import__("logging").getLogger("t"),
            policies_by_workload={},
        )
    )
    await asyncio.to_thread(in_tick.wait, 5)
    task.cancel()  # the policy was deleted; Kopf's cancellation_timeout passed
    with __import__("contextlib").suppress(asyncio.CancelledError):
        await task
    registry.ledger.release("gone")  # the delete handler, once the mirrors are gone
    await asyncio.sleep(1.0)  # the reconcile thread finishes
    assert registry.room_for("aws", "other") == 8, f"usage left behind: {registry.get('aws')}"


def test_review12_a_full_target_that_shows_one_free_slot_gets_one_more_replica_not_all_of_them() -> None:
    # aws filled at 3 (estimate 0 then); another tenant's pod ends there: its accounting shows room for 1.
    # The queue grows by 10 replicas: aws takes all 10 (it is preferred and uncapped again), 9 of them sit
    # Pending for provisioningTimeoutSeconds (300 s) before the overflow moves to gcp, which had room.
    spec = policy(primary={"maxReplicas": 8})
    mem = Memory(full_targets=(FullTarget("aws", 3, 0, 100.0),))
    aws = tgt("aws", ClusterState(3, 3, scheduled=3, room=1))
    gcp = tgt("gcp", ClusterState(4, 4, scheduled=4, room=50), priority=1)
    d = decide(spec, snap(250, est(8, 0), aws, gcp, now=1000.0, memory=mem))
    assert d.placement.targets["aws"] <= 4, f"aws asked for {d.placement.targets['aws']} with room for 1 more"


# ---- capacity unknown for a moment (the nodes watch reconnecting) ------------------------------------------


def test_review12_a_moment_without_the_node_view_does_not_pull_a_burst_home_into_pending_pods() -> None:
    """Accounting.room is None whenever the nodes cache is not in sync (a reconnect after an API server
    restart: pods may resync first). The engine then knows no primary capacity at all and puts everything in
    the primary: 7 Pending pods in a full primary, and CI runners in the secondary removed (no make-before-break)."""
    spec = policy(workloadClass="CIRunner", busy={"podAnnotation": "runner/busy"})
    burst = snap(150, est(8, 0), tgt("aws", ClusterState(7, 7, scheduled=7)), now=1000.0)
    d1 = decide(spec, burst)
    assert (d1.placement.primary, d1.placement.targets["aws"]) == (8, 7)
    blip = replace(burst, primary=replace(burst.primary, room=None), memory=d1.memory, now=1010.0)
    d2 = decide(spec, blip)
    assert (d2.placement.primary, d2.placement.targets["aws"]) == (8, 7), (
        f"capacity unknown for one tick: primary {d2.placement.primary}, aws {d2.placement.targets['aws']}"
    )


# ---- memory: nodes that come and go ---------------------------------------------------------------------------


def test_review12_accounting_forgets_nodes_that_are_gone() -> None:
    """Karpenter or a cluster autoscaler on spot instances replaces nodes all day, each under a new name. The
    accounting keeps a bucket per node name ever seen (and room() copies all of them on every call): memory and
    CPU that grow with the operator's uptime."""
    from overspill.views.accounting import Accounting

    class Cache:
        synced = True

        def __init__(self) -> None:
            self.listener: Any = None

        def subscribe(self, listener: Any) -> None:
            self.listener = listener

        def list(self) -> list[Any]:
            return []

    pods, nodes = Cache(), Cache()
    acc = Accounting(pods, nodes)  # type: ignore[arg-type]
    for i in range(1000):  # a day of spot churn: a node, a pod on it, both gone
        node = {"metadata": {"name": f"spot-{i}"}, "status": {"allocatable": {"cpu": "8"}}}
        pod = {"metadata": {"name": f"p{i}"}, "spec": {"nodeName": f"spot-{i}", "containers": []}, "status": {}}
        nodes.listener("ADDED", node, None)
        pods.listener("ADDED", pod, None)
        pods.listener("DELETED", None, pod)
        nodes.listener("DELETED", None, node)
    assert len(acc._used) == 0, f"{len(acc._used)} buckets kept for nodes that no longer exist"


def test_review12_a_full_target_without_a_node_view_is_not_refilled_the_tick_after_it_was_emptied() -> None:
    # aws cannot show its nodes (room None: nodes not granted, or its node watch failing). It was full since
    # t=100; at t=1000 its Pending pods are still stuck and get taken back. `since` stays at the first fill,
    # so at t=1010 capacityRecheckSeconds (300) has long passed: aws is "re-checked" by piling the whole
    # overflow on it again at once, and the stockout repeats every provisioningTimeoutSeconds.
    spec = policy(primary={"maxReplicas": 8})
    mem = Memory(full_targets=(FullTarget("aws", 3, None, 100.0),))
    stuck = tgt("aws", ClusterState(7, 3, scheduled=3, room=None, stuck=4))
    d1 = decide(spec, snap(150, est(8, 0), stuck, now=1000.0, memory=mem))
    assert d1.placement.targets["aws"] == 3
    emptied = tgt("aws", ClusterState(3, 3, scheduled=3, room=None))
    gcp = tgt("gcp", ClusterState(4, 4, scheduled=4), priority=1)
    d2 = decide(spec, snap(250, est(8, 0), emptied, gcp, now=1010.0, memory=d1.memory))
    assert d2.placement.targets["aws"] == 3, f"10 s after taking pods back, aws is given {d2.placement.targets['aws']}"


def test_review12_the_shape_is_what_the_api_server_admitted_not_the_bare_template() -> None:
    """Admission changes pods after the template: a service-mesh sidecar injected by a webhook (istio-proxy:
    100m-2 CPU), LimitRange default requests for containers that set none. The estimate prices a replica from
    the Deployment's template only, so for CPU-bound shapes (CI runners, CPU inference) it promises room the
    scheduler does not have, and the primary is scaled into Pending pods."""
    from types import SimpleNamespace

    from overspill.api import parse_policy_spec
    from overspill.reconcile import PolicyRef, Reconciler
    from overspill.targets import TargetRegistry

    template = {"containers": [{"name": "runner", "resources": {"requests": {"cpu": "2"}}}]}
    dep = {
        "metadata": {"name": "runner", "namespace": "ci", "generation": 1},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "runner"}}, "template": {"spec": template}},
    }
    admitted = {  # the running pod, as the API server stored it: the mesh injected its proxy
        "metadata": {"name": "runner-1", "namespace": "ci", "labels": {"app": "runner"}},
        "spec": {
            "nodeName": "n1",
            "containers": [
                {"name": "runner", "resources": {"requests": {"cpu": "2"}}},
                {"name": "istio-proxy", "resources": {"requests": {"cpu": "2"}}},
            ],
        },
        "status": {"phase": "Running"},
    }
    asked: list[Any] = []

    def room(shape: Any) -> int:
        asked.append(shape)
        return 4

    cache = SimpleNamespace(
        synced=True, problem=None, get=lambda ns, name: dep, list=lambda ns, sel: [admitted], wait_synced=lambda t: True
    )
    view: Any = SimpleNamespace(cache=lambda *a, **k: cache, accounting=SimpleNamespace(room=room))
    r = Reconciler(
        primary=SimpleNamespace(),  # type: ignore[arg-type]
        primary_view=view,
        targets=TargetRegistry(),
        metrics_source=SimpleNamespace(),
        default_prometheus_url=None,
        origin_cluster="primary",
    )
    spec = parse_policy_spec(
        {
            "workloadRef": {"name": "runner"},
            "metric": {"prometheus": {"query": "q"}, "targetPerReplica": 1},
            "maxReplicas": 20,
            "targets": [{"name": "aws"}],
        }
    )
    r._workload(PolicyRef("ci", "p", "u1"), spec)
    assert asked and asked[0].requests.get("cpu") == 4000, f"a replica priced at {asked[0].requests}"
