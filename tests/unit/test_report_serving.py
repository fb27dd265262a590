"""DependenciesReady and TrafficReady: the conditions and Events a person reads in `kubectl describe bp`."""

from __future__ import annotations

from typing import Any

from overspill.api import parse_policy_spec
from overspill.api.policy import BurstPolicyStatus, ExportStatus
from overspill.decide import ClusterState, Decision, Memory
from overspill.decide.reasons import Reason
from overspill.decide.snapshot import Placement
from overspill.report import DependencyReport, TrafficReport, policy_status
from tests.cases.bad_input import valid_spec

SPEC = parse_policy_spec({**valid_spec(), "traffic": {"serviceRef": {"name": "vllm"}, "httpRouteRef": {"name": "r"}}})
DECISION = Decision(desired=3, placement=Placement(primary=3), reason=Reason.STEADY, message="steady", memory=Memory())
MISSING = (
    "Secret ml/hf (spec.containers[server].env[T].valueFrom.secretKeyRef) not carried in BurstTarget aws: "
    "set spec.propagation.secrets: true, or create it in the target"
)


def status(
    prev: BurstPolicyStatus, deps: DependencyReport | None, traffic: TrafficReport | None
) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    return policy_status(
        SPEC,
        prev,
        1,
        1_800_000_000.0,
        5.0,
        "",
        ClusterState(replicas=3, ready=3),
        [],
        DECISION,
        {},
        dependencies=deps,
        traffic=traffic,
    )


def cond(st: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in st["conditions"] if c["type"] == ctype), None)


def test_missing_dependency_is_a_false_condition_and_one_warning_naming_it() -> None:
    st, events = status(BurstPolicyStatus(), DependencyReport(problems={"aws": MISSING}), None)
    c = cond(st, "DependenciesReady")
    assert c is not None and c["status"] == "False" and c["reason"] == "DependenciesMissing"
    assert "Secret ml/hf" in c["message"] and "propagation.secrets" in c["message"]
    assert [(t, r) for t, r, m in events if "Secret ml/hf" in m] == [("Warning", "DependenciesMissing")]
    again, events2 = status(BurstPolicyStatus.model_validate(st), DependencyReport(problems={"aws": MISSING}), None)
    assert not any(r == "DependenciesMissing" for _, r, _ in events2)  # unchanged: no repeated Event
    fixed, events3 = status(BurstPolicyStatus.model_validate(again), DependencyReport(problems={}, carried=4), None)
    assert cond(fixed, "DependenciesReady")["status"] == "True"  # type: ignore[index]
    assert ("Normal", "Carried") in [(t, r) for t, r, _ in events3]


def test_traffic_condition_and_status_only_when_reported() -> None:
    st, _ = status(BurstPolicyStatus(), None, None)
    assert cond(st, "TrafficReady") is None and cond(st, "DependenciesReady") is None and st["traffic"] is None
    exports = (ExportStatus(target="aws", service="vllm-burst", state="Exported"),)
    st, _ = status(BurstPolicyStatus(), None, TrafficReport("vllm-burst", "r", 3, 2, exports))
    assert cond(st, "TrafficReady")["status"] == "True"  # type: ignore[index]
    assert st["traffic"] == {
        "service": "vllm-burst",
        "route": "r",
        "localWeight": 3,
        "burstWeight": 2,
        "exports": [{"target": "aws", "service": "vllm-burst", "state": "Exported", "message": "", "weight": None}],
    }
    st, events = status(BurstPolicyStatus(), None, TrafficReport("vllm-burst", problems=("aws: no MCS API",)))
    assert cond(st, "TrafficReady")["status"] == "False"  # type: ignore[index]
    assert ("Warning", "TrafficNotReady", "aws: no MCS API") in events


def test_dependencies_ready_stands_while_no_target_answers_and_goes_with_the_last_target() -> None:
    from overspill.report import _serving_conditions

    st, _ = status(BurstPolicyStatus(), DependencyReport(problems={"aws": MISSING}), None)
    prev = BurstPolicyStatus.model_validate(st).conditions
    # targets listed, none reachable this tick: what was last known stands (no flapping write per policy)
    kept = _serving_conditions(prev, "now", 1, None, None, has_targets=True)
    assert [c.type for c in kept] == ["DependenciesReady"] and kept[0].status == "False"
    # every target removed from the spec (review): a condition naming BurstTarget aws must not stay forever
    later, _ = status(BurstPolicyStatus.model_validate(st), None, None)  # this policy has no target rows
    assert cond(later, "DependenciesReady") is None
