"""Every bad-input case is rejected by the operator's own validation, with a message naming the field."""

from __future__ import annotations

import pytest

from overspill.api import SpecError, parse_policy_spec, parse_target_spec
from tests.cases.bad_input import CASES, UNKNOWN_FIELD, BadCase, valid_spec


def test_valid_spec_parses_with_defaults() -> None:
    spec = parse_policy_spec(valid_spec())
    assert spec.max_replicas == 20
    assert spec.behavior.scale_down_stabilization_seconds == 300
    assert spec.fallback.on_metric_unavailable == "Hold"
    assert spec.mode == "Active"


def test_at_least_25_cases() -> None:
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [*CASES, UNKNOWN_FIELD], ids=lambda c: c.id)
def test_bad_input_is_rejected_with_its_message(case: BadCase) -> None:
    with pytest.raises(SpecError) as info:
        parse_policy_spec(case.spec())
    text = str(info.value)
    assert case.expect in text
    assert all(m.startswith("spec") for m in info.value.messages), info.value.messages


def test_target_spec_errors_name_the_field() -> None:
    with pytest.raises(SpecError, match=r"spec\.kubeconfigSecretRef"):
        parse_target_spec({"provider": "aws"})
    with pytest.raises(SpecError, match=r"spec\.costPerReplicaHour"):
        parse_target_spec({"kubeconfigSecretRef": {"name": "s", "namespace": "ns"}, "costPerReplicaHour": -1})
    ok = parse_target_spec({"kubeconfigSecretRef": {"name": "s", "namespace": "ns"}})
    assert ok.kubeconfig_secret_ref.key == "kubeconfig"


def test_propagation_defaults_copy_configmaps_and_serviceaccount_never_secrets() -> None:
    p = parse_policy_spec(valid_spec()).propagation
    assert (p.config_maps, p.service_account, p.secrets) == (True, True, False)


def test_traffic_burst_service_name_defaults_to_service_burst() -> None:
    spec = parse_policy_spec({**valid_spec(), "traffic": {"serviceRef": {"name": "vllm"}}})
    assert spec.traffic is not None and spec.traffic.service_name == "vllm-burst"
    named = parse_policy_spec({**valid_spec(), "traffic": {"serviceRef": {"name": "vllm"}, "exportName": "llm"}})
    assert named.traffic is not None and named.traffic.service_name == "llm"
