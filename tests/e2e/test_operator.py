"""The operator on real clusters: burst, return, failures, restart, modes, deletion, bad input (issue 4)."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from tests.cases.bad_input import CASES, UNKNOWN_FIELD, BadCase
from tests.e2e.conftest import Lab, OperatorProcess, eventually
from tests.e2e.helpers import (
    GROUP,
    PLURAL,
    VERSION,
    ReplicaChanges,
    burst,
    condition,
    deploy_with_policy,
    events,
    hold,
    placement,
    policy,
    policy_body,
    spec_replicas,
    wait_condition,
    wait_placement,
)


def test_burst_to_secondary_and_return_secondaries_first(lab: Lab, operator: OperatorProcess, namespace: str) -> None:
    burst(lab, namespace)
    st = policy(lab, namespace, "vllm")["status"]
    assert st["desiredReplicas"] == 15
    assert st["primary"]["atCapacity"] is True
    assert condition(lab, namespace, "vllm", "Bursting")["status"] == "True"
    assert any(r == "BurstUp" for _, r, _ in events(lab, namespace, "vllm"))
    # the namespace Overspill created in the secondary enforces the BurstTarget's Pod Security level
    created = client.CoreV1Api(lab.secondary).read_namespace(namespace).metadata.labels
    assert created["pod-security.kubernetes.io/enforce"] == "baseline"

    # every change of spec.replicas in both clusters, in the order the API servers announced them
    with ReplicaChanges({"primary": lab.primary, "secondary": lab.secondary}, namespace, "vllm") as changes:
        time.sleep(1)  # both streams started (they report the current 8 and 7 first)
        lab.set_queue(namespace, 20)
        eventually(
            lambda: (
                (spec_replicas(lab.primary, namespace, "vllm"), spec_replicas(lab.secondary, namespace, "vllm"))
                == (2, 0)
            ),
            60,
            what="primary 2, secondary 0",
        )
        time.sleep(0.5)
    # secondaries drain first: the secondary was at 0 before the primary gave up any of its 8
    secondary_empty = changes.first("secondary", lambda n: n == 0)
    primary_shrunk = changes.first("primary", lambda n: n < 8)
    assert secondary_empty is not None and primary_shrunk is not None, changes.changes
    assert secondary_empty < primary_shrunk, changes.changes
    wait_placement(lab, namespace, "vllm", (2, 0))


@pytest.mark.lab_faults
def test_prometheus_down_holds_placement_then_resumes(lab: Lab, operator: OperatorProcess, namespace: str) -> None:
    burst(lab, namespace)
    lab.control("stop", "prometheus")
    try:
        wait_condition(lab, namespace, "vllm", "MetricAvailable", "False", 30)
        assert any(t == "Warning" and r == "MetricUnavailable" for t, r, _ in events(lab, namespace, "vllm"))
        lab.set_queue(namespace, 0)  # the operator cannot see this: it must hold, not scale in
        samples = hold(
            lambda: (spec_replicas(lab.primary, namespace, "vllm"), spec_replicas(lab.secondary, namespace, "vllm")), 8
        )
        assert set(samples) == {(8, 7)}, samples
    finally:
        lab.control("start", "prometheus")
    wait_condition(lab, namespace, "vllm", "MetricAvailable", "True", 60)
    eventually(lambda: spec_replicas(lab.secondary, namespace, "vllm") == 0, 60, what="scale-in resumed")


@pytest.mark.lab_faults
def test_secondary_down_never_scales_primary_down(lab: Lab, operator: OperatorProcess, namespace: str) -> None:
    burst(lab, namespace)
    lab.control("stop", "secondary-apiserver")
    try:
        wait_condition(lab, namespace, "vllm", "TargetsAvailable", "False", 30)
        assert any(t == "Warning" and r == "TargetUnavailable" for t, r, _ in events(lab, namespace, "vllm"))
        # the queue falls to 100 (10 replicas) while the secondary's 7 cannot be seen: the primary must keep
        # its 8 (what the queue asks of it), not give up replicas for the secondary's sake, nor take more
        lab.set_queue(namespace, 100)
        samples = hold(lambda: spec_replicas(lab.primary, namespace, "vllm"), 8)
        assert set(samples) == {8}, samples
        assert policy(lab, namespace, "vllm")["status"]["desiredReplicas"] == 10
    finally:
        lab.control("start", "secondary-apiserver")
    wait_condition(lab, namespace, "vllm", "TargetsAvailable", "True", 120)
    # back: the secondary, frozen at 7 while down, now gives up what the queue no longer needs
    eventually(lambda: spec_replicas(lab.secondary, namespace, "vllm") == 2, 60, what="secondary at 2")
    wait_placement(lab, namespace, "vllm", (8, 2), timeout=90)

    def schedulable() -> bool:
        # the restarted secondary's nodes carry unreachable taints for a while; later tests need them gone
        nodes = client.CoreV1Api(lab.secondary).list_node().items
        return all(not (n.spec.taints or []) for n in nodes)

    eventually(schedulable, 120, what="secondary nodes schedulable again")


def test_sigkill_mid_burst_restarts_to_the_same_placement(lab: Lab, operator: OperatorProcess, namespace: str) -> None:
    burst(lab, namespace)
    operator.kill()
    operator.start()
    samples = hold(lambda: placement(lab, namespace, "vllm"), 10)
    assert set(samples) == {(8, 7)}, samples
    mirrors = client.AppsV1Api(lab.secondary).list_namespaced_deployment(namespace).items
    assert [d.metadata.name for d in mirrors] == ["vllm"]  # no duplicate
    assert mirrors[0].metadata.labels["app.kubernetes.io/managed-by"] == "overspill"
    pods = client.CoreV1Api(lab.secondary).list_namespaced_pod(namespace).items
    assert len(pods) == 7  # no orphan
    # the restarted operator acts: it follows the queue down, secondaries first
    lab.set_queue(namespace, 20)
    wait_placement(lab, namespace, "vllm", (2, 0), timeout=90)


def test_dry_run_changes_nothing(lab: Lab, operator: OperatorProcess, namespace: str) -> None:
    deploy_with_policy(lab, namespace, "vllm", namespace, mode="DryRun")
    lab.set_queue(namespace, 150)
    eventually(
        lambda: policy(lab, namespace, "vllm").get("status", {}).get("desiredReplicas") == 15,
        30,
        what="DryRun decision in status",
    )
    samples = hold(
        lambda: (spec_replicas(lab.primary, namespace, "vllm"), spec_replicas(lab.secondary, namespace, "vllm")), 6
    )
    assert set(samples) == {(1, None)}, samples
    msg = policy(lab, namespace, "vllm")["status"]["lastDecision"]["message"]
    assert msg.startswith("DryRun, not applied:")


def test_deleting_the_policy_removes_its_mirror(lab: Lab, operator: OperatorProcess, namespace: str) -> None:
    burst(lab, namespace)
    client.CustomObjectsApi(lab.primary).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "vllm")
    eventually(lambda: spec_replicas(lab.secondary, namespace, "vllm") is None, 30, what="mirror deleted")


@pytest.mark.lab_faults
def test_deletion_waits_for_an_unreachable_target_then_cleans_up(
    lab: Lab, operator: OperatorProcess, namespace: str
) -> None:
    burst(lab, namespace)
    lab.control("stop", "secondary-apiserver")
    try:
        client.CustomObjectsApi(lab.primary).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "vllm")
        eventually(
            lambda: any(r == "MirrorCleanupPending" for _, r, _ in events(lab, namespace, "vllm")),
            60,
            what="a Warning that cleanup waits for the target",
        )
        assert policy(lab, namespace, "vllm")["metadata"]["finalizers"]  # held, not dropped: no orphan
    finally:
        lab.control("start", "secondary-apiserver")
    # the finalizer retries with backoff (5, 10, 20, 40, 80 s) and the target's watches resume with theirs (up to
    # 45 s): after a slow restart the removal can come at the attempt after next
    eventually(lambda: spec_replicas(lab.secondary, namespace, "vllm") is None, 240, what="mirror removed")


def test_second_policy_for_the_same_workload_is_refused(lab: Lab, operator: OperatorProcess, namespace: str) -> None:
    deploy_with_policy(lab, namespace, "vllm", namespace)
    other = policy_body("vllm-again", namespace)
    other["spec"]["workloadRef"]["name"] = "vllm"
    client.CustomObjectsApi(lab.primary).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, other)
    eventually(
        lambda: condition(lab, namespace, "vllm-again", "Ready").get("reason") == "Conflict",
        30,
        what="Conflict condition",
    )
    assert any(r == "Conflict" and t == "Warning" for t, r, _ in events(lab, namespace, "vllm-again"))
    assert condition(lab, namespace, "vllm", "Ready").get("status") == "True"


def test_api_server_refuses_a_burst_target_named_primary(installed: Lab) -> None:
    """The name would count the target and the primary cluster as one (status, Events, metric labels)."""
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BurstTarget",
        "metadata": {"name": "primary"},
        "spec": {"kubeconfigSecretRef": {"name": "lab-secondary-kubeconfig", "namespace": "overspill-system"}},
    }
    with pytest.raises(client.ApiException) as info:
        client.CustomObjectsApi(installed.primary).create_cluster_custom_object(GROUP, VERSION, "bursttargets", body)
    assert info.value.status == 422
    assert "metadata.name: the name primary is reserved for the primary cluster" in (info.value.body or "")
    assert "rename the BurstTarget" in (info.value.body or "")


@pytest.mark.parametrize("case", [*CASES, UNKNOWN_FIELD], ids=lambda c: c.id)
def test_api_server_rejects_bad_input(installed: Lab, case: BadCase) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BurstPolicy",
        "metadata": {"name": f"bad-{case.id}"},
        "spec": case.spec(),
    }
    with pytest.raises(client.ApiException) as info:
        client.CustomObjectsApi(installed.primary).create_namespaced_custom_object(
            GROUP, VERSION, "default", PLURAL, body, field_validation="Strict"
        )
    assert info.value.status == 422 or (case is UNKNOWN_FIELD and info.value.status == 400)
    assert case.expect in (info.value.body or ""), info.value.body
