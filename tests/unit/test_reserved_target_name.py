"""A BurstTarget may not be named `primary`: status, Events and the metric label overspill_replicas{cluster="primary"}
name the primary cluster so, and a target of that name would be counted as it. The API server refuses the name
(CEL in both CRDs), and so does the operator's own validation, with the field and the fix, never a traceback."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from overspill import handlers
from overspill.api import SpecError, parse_policy_spec, parse_target_spec
from overspill.api.crd import all_crds
from overspill.inputerror import InputError
from overspill.policyfile import load
from overspill.targets import TargetRegistry
from overspill.triggers import Triggers
from tests.cases.bad_input import valid_spec
from tests.unit.test_daemons_survive import Flag

TARGET = {"kubeconfigSecretRef": {"name": "s", "namespace": "o"}}


def test_a_policy_listing_a_target_named_primary_is_refused_with_the_field_and_the_fix() -> None:
    with pytest.raises(SpecError) as info:
        parse_policy_spec({**valid_spec(), "targets": [{"name": "aws"}, {"name": "primary"}]})
    (message,) = info.value.messages
    assert message.startswith("spec.targets"), message
    assert "primary" in message and "rename the BurstTarget" in message


def test_other_names_are_still_valid_targets() -> None:
    for name in ("primary-eu", "aws-primary", "secondary"):
        assert parse_policy_spec({**valid_spec(), "targets": [{"name": name}]}).targets[0].name == name
        assert parse_target_spec(TARGET, name=name).kubeconfig_secret_ref.name == "s"


def test_a_burst_target_named_primary_is_refused_with_the_field_and_the_fix() -> None:
    with pytest.raises(SpecError) as info:
        parse_target_spec(TARGET, name="primary")
    (message,) = info.value.messages
    assert message.startswith("metadata.name: "), message
    assert "rename the BurstTarget" in message


def test_the_crds_refuse_the_name_with_the_operators_message() -> None:
    crds = all_crds()
    target_root = crds["overspill.dev_bursttargets.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    with pytest.raises(SpecError) as info:
        parse_target_spec(TARGET, name="primary")
    assert {"rule": "self.metadata.name != 'primary'", "message": info.value.messages[0]} in target_root[
        "x-kubernetes-validations"
    ]
    policy_spec = crds["overspill.dev_burstpolicies.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
        "properties"
    ]["spec"]
    with pytest.raises(SpecError) as policy_info:
        parse_policy_spec({**valid_spec(), "targets": [{"name": "primary"}]})
    rules = {r["rule"]: r["message"] for r in policy_spec["x-kubernetes-validations"]}
    assert rules.get("!has(self.targets) || self.targets.all(t, t.name != 'primary')") == policy_info.value.messages[0]


POLICY = """\
apiVersion: overspill.dev/v1alpha1
kind: BurstPolicy
metadata: {name: vllm, namespace: ml}
spec:
  workloadRef: {name: vllm}
  metric: {prometheus: {query: q}, targetPerReplica: 10}
  maxReplicas: 20
  targets:
    - name: TARGET
"""

BURST_TARGET = """\
---
apiVersion: overspill.dev/v1alpha1
kind: BurstTarget
metadata:
  name: primary
spec:
  kubeconfigSecretRef: {name: s, namespace: o}
"""


def test_a_policy_file_with_a_burst_target_named_primary_names_its_line_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.replace("TARGET", "aws") + BURST_TARGET)
    with pytest.raises(InputError) as info:
        load(path)
    text = str(info.value)
    assert f"{path}:14" in text, text  # the line of metadata.name
    assert "rename the BurstTarget" in text


def test_a_policy_file_listing_a_target_named_primary_names_its_line_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.replace("TARGET", "primary"))
    with pytest.raises(InputError) as info:
        load(path)
    text = str(info.value)
    assert f"{path}:9: spec.targets" in text, text  # the line of spec.targets
    assert "rename the BurstTarget" in text


async def test_the_operator_refuses_a_burst_target_named_primary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its probe daemon keeps it out of the registry (no policy can place replicas there) and says why in its
    status and a Warning Event, without probing the cluster."""
    statuses: list[dict[str, Any]] = []
    warnings: list[str] = []
    stopped = Flag()

    def patch(rtm: Any, plural: str, ns: Any, name: str, status: dict[str, Any]) -> None:
        statuses.append(status)
        stopped.event.set()

    def probe(*_: Any) -> tuple[bool, str, str | None, float | None]:
        raise AssertionError("a target named primary was probed")

    monkeypatch.setattr(handlers, "_patch_status", patch)
    monkeypatch.setattr(handlers, "_probe", probe)
    monkeypatch.setattr(handlers.kopf, "warn", lambda body, reason, message: warnings.append(f"{reason}: {message}"))
    monkeypatch.setattr(handlers.kopf, "info", lambda *a, **k: None)
    registry = TargetRegistry()
    rtm = SimpleNamespace(targets=registry, triggers=Triggers())
    probe_fn: Any = handlers.bursttarget_probe
    task = asyncio.create_task(probe_fn(name="primary", body={"spec": TARGET}, stopped=stopped, memo={"runtime": rtm}))
    try:
        await asyncio.wait_for(stopped.event.wait(), 10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert registry.get("primary") is None
    (ready,) = statuses[0]["conditions"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert ready["message"].startswith("metadata.name: ") and "rename the BurstTarget" in ready["message"]
    assert warnings and warnings[0].startswith("InvalidSpec: metadata.name: ")
