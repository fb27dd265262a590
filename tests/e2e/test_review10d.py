"""Issue 10 review 10d on the lab: promises only real API servers and controllers show breaking (each failed on
main when written, branch rev10d)."""

from __future__ import annotations

import time

from kubernetes import client

from tests.e2e.conftest import Lab, OperatorProcess, eventually
from tests.e2e.helpers import ci_runners_burst

BUSY = "overspill.dev/in-flight"
EXCUSED = 3.0  # seconds a pod may go after it was marked busy: the operator needs a poll (2 s here) to see it


def test_a_runner_that_turns_busy_during_the_mirrors_rollout_is_not_killed(
    lab: Lab, operator: OperatorProcess, namespace: str
) -> None:
    """busy.templateUpdate WaitForIdle holds a template change only while a runner is busy at the moment of the
    change. All 7 mirror runners are idle, so the new template is written at once, and the Deployment controller
    rolls them one by one (the primary's strategy: maxSurge 0, maxUnavailable 1). Runners pick up jobs meanwhile
    (here: every old runner still there right after the change); the controller goes on replacing them, busy or
    not, and the deletion cost only orders the old ReplicaSet's pods among themselves. Busy runners are killed by
    a template change, which is what the issue's TemplateUpdatePending was to prevent."""
    ci_runners_burst(lab, namespace, BUSY)
    core = client.CoreV1Api(lab.secondary)
    old = {p.metadata.name for p in core.list_namespaced_pod(namespace, label_selector="app=vllm").items}
    assert len(old) == 7
    # a new runner image (an env var here) and a rollout of one runner at a time
    client.AppsV1Api(lab.primary).patch_namespaced_deployment(
        "vllm",
        namespace,
        {
            "spec": {
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
                "template": {"spec": {"containers": [{"name": "server", "env": [{"name": "RUNNER", "value": "v2"}]}]}},
            }
        },
    )

    def mirror_updated() -> bool:
        dep = client.AppsV1Api(lab.secondary).read_namespaced_deployment("vllm", namespace)
        return any(e.name == "RUNNER" for e in dep.spec.template.spec.containers[0].env or [])

    eventually(mirror_updated, 30, interval=0.05, what="the mirror's new template (all runners idle: not held)")
    marked: dict[str, float] = {}
    for p in core.list_namespaced_pod(namespace, label_selector="app=vllm").items:
        if p.metadata.name in old and p.metadata.deletion_timestamp is None:
            try:
                core.patch_namespaced_pod(p.metadata.name, namespace, {"metadata": {"annotations": {BUSY: "true"}}})
            except client.ApiException as err:
                if err.status == 404:  # removed by the rollout between the list and the mark: it never was busy
                    continue
                raise
            marked[p.metadata.name] = time.monotonic()
    assert marked, "every old runner was gone before it could pick up a job"
    gone: dict[str, float] = {}  # when each marked runner was first seen removed (or terminating)
    killed: list[str] = []
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and not killed:
        alive = {
            p.metadata.name
            for p in core.list_namespaced_pod(namespace, label_selector="app=vllm").items
            if p.metadata.deletion_timestamp is None
        }
        now = time.monotonic()
        for name in marked.keys() - alive:
            gone.setdefault(name, now)
        killed = sorted(n for n, t in gone.items() if t - marked[n] > EXCUSED)
        time.sleep(0.2)
    assert not killed, f"busy runners removed by the mirror's rollout (marked busy > {EXCUSED:.0f}s before): {killed}"
