"""Two operator replicas with Kopf peering: one acts, the other stands by, and takes over when the first dies."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import ROOT, Lab, OperatorProcess, eventually
from tests.e2e.helpers import burst, wait_placement


@pytest.fixture(scope="module")
def pair(installed: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OperatorProcess, ...]]:
    kubectl = os.environ.get("OVERSPILL_LAB_KUBECTL", "kubectl")
    subprocess.run(
        [
            kubectl,
            "--kubeconfig",
            installed.primary_kubeconfig,
            "apply",
            "-f",
            str(ROOT / "manifests/base/kopf-peering.yaml"),
        ],
        check=True,
        capture_output=True,
    )
    tmp = tmp_path_factory.mktemp("ha")
    # no --priority: each replica draws a random one, as the Deployment's replicas do
    first = OperatorProcess(installed, tmp / "first.log", standalone=False, ports=(19491, 19492))
    second = OperatorProcess(installed, tmp / "second.log", standalone=False, ports=(19493, 19494))
    try:
        first.start()
        second.start()
        yield first, second
    finally:  # a second replica that fails to start never leaves the first acting beside later modules' operators
        for op in (first, second):
            op.stop()


def _active(op: OperatorProcess) -> bool:
    """Kopf starts a peered replica paused: it resumes when no live peer has a higher priority, and pauses again
    when one appears. Its last word on the matter says what it is doing now."""
    log = op.log_path.read_text()
    return log.rfind("Resuming operations") > log.rfind("Pausing operations")


def test_standby_takes_over_when_the_leader_dies(lab: Lab, pair: tuple[OperatorProcess, ...], namespace: str) -> None:
    burst(lab, namespace)
    # exactly one replica acts: the one with the higher random priority; the other stays paused
    eventually(lambda: sum(_active(op) for op in pair) == 1, 30, what="exactly one active replica")
    leader = next(op for op in pair if _active(op))
    standby = next(op for op in pair if op is not leader)
    leader.kill()  # SIGKILL: its keep-alive in the peering object expires, the standby resumes
    lab.set_queue(namespace, 20)
    wait_placement(lab, namespace, "vllm", (2, 0), timeout=150)
    assert _active(standby)
