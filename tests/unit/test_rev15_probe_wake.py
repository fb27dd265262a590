"""Review rev15 of 077ebb1: the probe daemon wakes a target's watches only when the target turns healthy."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace
from typing import Any

import pytest

from overspill import handlers
from overspill.targets import TargetRegistry
from overspill.triggers import Triggers
from tests.unit.test_daemons_survive import Stopped


class OutOfSyncView:
    """A target's view whose watches failed in a short outage and now wait out their backoff."""

    ready = False
    problem = "cannot watch pods in aws: MaxRetryError"

    def __init__(self) -> None:
        self.woken_at: list[int] = []
        self.probes = 0

    def retry_now(self) -> None:
        self.woken_at.append(self.probes)

    def close(self) -> None:
        pass


async def test_a_blip_below_the_failure_threshold_still_wakes_an_out_of_sync_view(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One failed probe (failureThreshold 2, the default) never turns the target unhealthy, so the probe that
    answers again is no transition and wakes nothing: the watches that failed during the blip wait out their
    backoff (16-24 s after a 25 s blip, with the probe at its default 15 s) while the view stays out of sync and
    every policy sees the target unavailable."""
    view = OutOfSyncView()
    answers = [True, False, True, True, True]

    def probe(rtm: Any, name: str, spec: Any, cache: dict[str, Any]) -> tuple[bool, str, str | None, float | None]:
        rtm.targets.set_view(name, view)
        ok = answers[min(view.probes, len(answers) - 1)]
        view.probes += 1
        return (True, "probe succeeded", "v1.34.4", 1.0) if ok else (False, "did not answer", None, None)

    monkeypatch.setattr(handlers, "_probe", probe)
    monkeypatch.setattr(handlers, "_patch_status", lambda *a, **k: None)
    monkeypatch.setattr(handlers.kopf, "info", lambda *a, **k: None)
    monkeypatch.setattr(handlers.kopf, "warn", lambda *a, **k: None)
    registry = TargetRegistry()
    rtm = SimpleNamespace(targets=registry, triggers=Triggers())
    body = {"spec": {"kubeconfigSecretRef": {"name": "s", "namespace": "o"}, "probeIntervalSeconds": 1}}
    probe_fn: Any = handlers.bursttarget_probe
    task = asyncio.create_task(probe_fn(name="aws", body=body, stopped=Stopped(), memo={"runtime": rtm}))
    try:
        for _ in range(60):
            await asyncio.sleep(0.1)
            if view.probes >= 4 or task.done():
                break
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert view.probes >= 4
    assert any(n >= 3 for n in view.woken_at), (
        f"the view was woken only at probes {view.woken_at}: not when the target answered again after the blip"
    )
