"""A policy deleted while the operator starts (before its BurstTarget daemons registered the targets) or while a
target's spec is invalid: its mirrors are found by label in every *known* target, so a release then found nothing,
the finalizer went and the mirrors ran on (issue 10 review, confirmed on main). The deletion now waits."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import kopf
import pytest

from overspill import handlers
from overspill.api import parse_target_spec
from overspill.serving import UnrouteStep
from overspill.sweep import SweepResult
from overspill.targets import TargetRegistry


def runtime(
    existing: list[str], registry: TargetRegistry, released: list[str], calls: list[dict[str, Any]] | None = None
) -> Any:
    def release(ref: Any, spec: Any, places: Any = None, busy_rules: bool = True) -> SweepResult:
        released.append(ref.uid)
        if calls is not None:
            calls.append({"spec": spec, "busy_rules": busy_rules})
            return SweepResult(pending={"aws": "aws: mirror mirror/vllm drains (1 replicas busy or not yet replaced)"})
        return SweepResult()

    custom = SimpleNamespace(
        list_cluster_custom_object=lambda *a, **k: {"items": [{"metadata": {"name": n}} for n in existing]}
    )
    serving = SimpleNamespace(unroute=lambda *a: UnrouteStep())
    return SimpleNamespace(
        primary=SimpleNamespace(custom=custom),
        targets=registry,
        reconciler=SimpleNamespace(release=release, serving=serving, clock=lambda: 0.0),
    )


BODY = {"spec": {"workloadRef": {"name": "vllm"}, "targets": [{"name": "aws"}]}}


async def delete(rtm: Any, body: dict[str, Any] = BODY) -> None:
    fn: Any = handlers.burstpolicy_delete
    await fn(namespace="ml", name="p", uid="u1", body=body, retry=0, memo={"runtime": rtm})


async def test_a_deletion_waits_for_targets_not_connected_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handlers.kopf, "warn", lambda *a, **k: None)
    released: list[str] = []
    with pytest.raises(kopf.TemporaryError, match="aws is not connected yet"):
        await delete(runtime(["aws"], TargetRegistry(), released))
    assert released == [], "released (finalizer gone) while a target's mirrors could not be looked for"


async def test_a_deletion_goes_on_once_every_target_is_known(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handlers.kopf, "warn", lambda *a, **k: None)
    registry = TargetRegistry()
    registry.upsert("aws", parse_target_spec({"kubeconfigSecretRef": {"name": "s", "namespace": "o"}}))
    released: list[str] = []
    try:
        await delete(runtime(["aws"], registry, released))
    finally:
        registry.remove("aws")
    assert released == ["u1"]


@pytest.mark.parametrize("busy", [{"podAnnotation": "b"}, None])
async def test_a_spec_that_no_longer_parses_releases_with_its_busy_rules_unknown(
    monkeypatch: pytest.MonkeyPatch, busy: dict[str, str] | None
) -> None:
    """rev10c: it was released with spec None and no busy rules (every runner idle). Now the pods count as busy
    (busy_rules=True) and the Warning says the spec must be fixed; a spec with no `busy` field has none to hold."""
    warned: list[str] = []
    monkeypatch.setattr(handlers.kopf, "warn", lambda *a, **k: warned.append(k["message"]))
    registry = TargetRegistry()
    registry.upsert("aws", parse_target_spec({"kubeconfigSecretRef": {"name": "s", "namespace": "o"}}))
    body = {"spec": {**BODY["spec"], "minReplicas": -3, **({"busy": busy} if busy else {})}}  # refused by the operator
    calls: list[dict[str, Any]] = []
    try:
        with pytest.raises(kopf.TemporaryError):
            await delete(runtime(["aws"], registry, [], calls), body)
    finally:
        registry.remove("aws")
    assert calls == [{"spec": None, "busy_rules": busy is not None}]
    assert ("no longer parses" in warned[0]) == (busy is not None), warned
