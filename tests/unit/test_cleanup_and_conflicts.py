"""Pure planning of what a policy leaves behind, and detection of a second autoscaler on the workload."""

from __future__ import annotations

from overspill.api import WorkloadRef
from overspill.decide.cleanup import Owned, Step, plan
from overspill.decide.conflicts import autoscaler_conflict

WANTED = {("aws", "ml", "vllm")}


def mirror(target: str, ns: str, name: str = "vllm", replicas: int = 0, hold: int = 0) -> Owned:
    return Owned(target, "Deployment", ns, name, replicas, hold)


def test_a_mirror_the_spec_still_wants_is_left_alone() -> None:
    assert plan([mirror("aws", "ml", replicas=7)], WANTED, release_ready=True) == []


def test_a_dropped_target_is_drained_then_deleted() -> None:
    m = mirror("gcp", "ml", replicas=7)
    assert plan([m], WANTED, release_ready=True) == [Step(m, delete=False, replicas=0)]
    gone = mirror("gcp", "ml", replicas=0)
    assert plan([gone], WANTED, release_ready=True) == [Step(gone, delete=True)]


def test_busy_or_unknown_runners_hold_the_drain() -> None:
    m = mirror("aws", "old-ns", replicas=5, hold=2)
    assert plan([m], WANTED, release_ready=True) == [Step(m, delete=False, replicas=2)]
    held = mirror("aws", "old-ns", replicas=2, hold=2)
    assert plan([held], WANTED, release_ready=True) == []


def test_inference_replicas_go_only_once_their_replacements_are_ready() -> None:
    m = mirror("aws", "old-ns", replicas=5)
    assert plan([m], WANTED, release_ready=False) == []
    assert plan([m], WANTED, release_ready=True) == [Step(m, delete=False, replicas=0)]


def test_copies_go_only_when_no_mirror_of_the_policy_is_left_beside_them() -> None:
    cm_old = Owned("aws", "ConfigMap", "old-ns", "cfg")
    cm_wanted = Owned("aws", "ConfigMap", "ml", "cfg")
    draining = mirror("aws", "old-ns", replicas=3)
    steps = plan([draining, cm_old, cm_wanted], WANTED, release_ready=True)
    assert steps == [Step(draining, delete=False, replicas=0)]  # the copy waits for its mirror
    steps = plan([mirror("aws", "old-ns"), cm_old, cm_wanted], WANTED, release_ready=True)
    assert [(s.owned.kind, s.owned.namespace, s.delete) for s in steps] == [
        ("Deployment", "old-ns", True),
        ("ConfigMap", "old-ns", True),
    ]


def test_a_deleted_policy_wants_nothing() -> None:
    owned = [mirror("aws", "ml", replicas=0), Owned("aws", "Service", "ml", "vllm-burst")]
    assert all(s.delete for s in plan(owned, set(), release_ready=True))


WL = WorkloadRef(name="vllm")


def test_an_hpa_on_the_workload_is_a_conflict() -> None:
    hpa = {
        "metadata": {"name": "vllm-hpa"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "vllm"}},
    }
    message = autoscaler_conflict(WL, [hpa], [])
    assert message is not None and "HorizontalPodAutoscaler vllm-hpa" in message


def test_a_scaled_object_with_defaults_is_a_conflict() -> None:
    so = {"metadata": {"name": "vllm-so"}, "spec": {"scaleTargetRef": {"name": "vllm"}}}
    message = autoscaler_conflict(WL, [], [so])
    assert message is not None and "ScaledObject vllm-so" in message


def test_autoscalers_of_other_workloads_are_no_conflict() -> None:
    other = {"metadata": {"name": "x"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "other"}}}
    sts = {"metadata": {"name": "y"}, "spec": {"scaleTargetRef": {"kind": "StatefulSet", "name": "vllm"}}}
    assert autoscaler_conflict(WL, [other, sts], [other, sts]) is None
