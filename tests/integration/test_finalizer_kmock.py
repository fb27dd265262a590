"""Deleting a policy while a target does not answer: the finalizer keeps it, never gives up on its own."""

from __future__ import annotations

from typing import Any

import kopf
import pytest

from overspill import handlers, runtime
from overspill.adapters.kube import Cluster
from overspill.api import parse_target_spec
from overspill.targets import TargetRegistry
from tests.integration.conftest import FakeMetrics
from tests.integration.safety_setup import make
from tests.integration.test_reconcile_kmock import _close_views

pytestmark = pytest.mark.integration
__all__ = ["_close_views"]  # the fixture that closes views after each test
BODY = {
    "metadata": {"name": "vllm", "namespace": "ml", "uid": "uid-1"},
    "spec": {"workloadRef": {"name": "vllm"}, "targets": [{"name": "aws"}]},
}


@pytest.fixture(autouse=True)
def warnings(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Kopf posts Events only inside its own loop: record them instead."""
    seen: list[tuple[str, str]] = []
    monkeypatch.setattr(kopf, "warn", lambda _body, *, reason, message: seen.append((reason, message)))
    return seen


async def _delete(rtm: runtime.Runtime, retry: int) -> None:
    await handlers.burstpolicy_delete(
        namespace="ml", name="vllm", uid="uid-1", body=kopf.Body(BODY), retry=retry, memo={"runtime": rtm}
    )


@pytest.mark.parametrize("retry", [0, 5, 6, 40])
async def test_an_unreachable_target_keeps_the_finalizer_with_capped_backoff(
    emulator: Any, cluster: Cluster, retry: int, warnings: list[tuple[str, str]]
) -> None:
    registry = TargetRegistry()
    registry.upsert("aws", parse_target_spec({"kubeconfigSecretRef": {"name": "s", "namespace": "ops"}}))
    registry.set_health("aws", cluster=None, healthy=False, message="API server of aws did not answer")
    r = await make(cluster, FakeMetrics(0), registry=registry)
    rtm = runtime.Runtime(
        primary=cluster,
        primary_view=r.primary_view,
        targets=registry,
        reconciler=r,
        triggers=None,  # type: ignore[arg-type]
    )
    with pytest.raises(kopf.TemporaryError) as info:
        await _delete(rtm, retry)
    assert info.value.delay == min(300.0, 5.0 * 2**retry)
    assert "aws is unavailable" in str(info.value)
    assert warnings and warnings[0][0] == "MirrorCleanupPending"


async def test_a_deleted_burst_target_releases_the_policy(emulator: Any, cluster: Cluster) -> None:
    registry = TargetRegistry()  # the BurstTarget is gone: nothing of the policy's can be left there
    r = await make(cluster, FakeMetrics(0), registry=registry)
    rtm = runtime.Runtime(
        primary=cluster,
        primary_view=r.primary_view,
        targets=registry,
        reconciler=r,
        triggers=None,  # type: ignore[arg-type]
    )
    await _delete(rtm, 50)  # returns: the finalizer is released
