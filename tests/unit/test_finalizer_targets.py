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


def runtime(existing: list[str], registry: TargetRegistry, released: list[str]) -> Any:
    def release(ref: Any, spec: Any, places: Any = None) -> SweepResult:
        released.append(ref.uid)
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


async def delete(rtm: Any) -> None:
    fn: Any = handlers.burstpolicy_delete
    await fn(namespace="ml", name="p", uid="u1", body=BODY, retry=0, memo={"runtime": rtm})


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
