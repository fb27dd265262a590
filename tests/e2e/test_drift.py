"""Mirrors edited in the secondary by someone else, on real API servers (issue 10: drift)."""

from __future__ import annotations

import time

from kubernetes import client

from tests.e2e.conftest import Lab, OperatorProcess, eventually
from tests.e2e.helpers import burst, condition, events

MARK = "engine.example/mutated"


def test_a_controller_fighting_the_mirror_is_backed_off_and_named(
    lab: Lab, operator: OperatorProcess, namespace: str
) -> None:
    """A policy engine re-adds an annotation to the mirror's template whenever it is gone: every correction was
    a rollout, one per poll (2 s here). Now the corrections back off and the condition names the engine."""
    burst(lab, namespace)
    apps = client.AppsV1Api(lab.secondary)
    edit = {"spec": {"template": {"metadata": {"annotations": {MARK: "1"}}}}}
    corrections, edits = 0, 0
    end = time.monotonic() + 40
    while time.monotonic() < end:
        live = apps.read_namespaced_deployment("vllm", namespace)
        if MARK not in (live.spec.template.metadata.annotations or {}):
            corrections += 1 if edits else 0  # the operator took the engine's edit out again
            apps.patch_namespaced_deployment("vllm", namespace, edit, field_manager="policy-engine")
            edits += 1
        time.sleep(0.3)
    assert 1 <= corrections <= 7, corrections  # about 20 (one per poll) before
    fight = condition(lab, namespace, "vllm", "MirrorsUpToDate")
    assert (fight.get("status"), fight.get("reason")) == ("False", "MirrorDriftFight"), fight
    assert "policy-engine" in fight["message"]
    assert any(t == "Warning" and r == "MirrorDriftFight" for t, r, _ in events(lab, namespace, "vllm"))


def test_a_paused_or_restrategied_mirror_is_put_back(lab: Lab, operator: OperatorProcess, namespace: str) -> None:
    """Outside the pod template: a paused mirror never rolls out a template update; both were never checked."""
    burst(lab, namespace)
    apps = client.AppsV1Api(lab.secondary)
    apps.patch_namespaced_deployment("vllm", namespace, {"spec": {"paused": True}})
    eventually(lambda: not apps.read_namespaced_deployment("vllm", namespace).spec.paused, 20, what="unpaused")
    recreate = {"spec": {"strategy": {"type": "Recreate", "rollingUpdate": None}}}
    apps.patch_namespaced_deployment("vllm", namespace, recreate)
    eventually(
        lambda: apps.read_namespaced_deployment("vllm", namespace).spec.strategy.type == "RollingUpdate",
        20,
        what="strategy put back",
    )
    assert any(r == "MirrorDriftCorrected" for _, r, _ in events(lab, namespace, "vllm"))
