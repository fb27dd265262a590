"""Two operator replicas with Kopf peering: one acts, the other stands by, and takes over when the first dies."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import ROOT, Lab, OperatorProcess
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
    leader = OperatorProcess(installed, tmp / "leader.log", standalone=False, priority=200, ports=(19491, 19492))
    standby = OperatorProcess(installed, tmp / "standby.log", standalone=False, priority=100, ports=(19493, 19494))
    leader.start()
    standby.start()
    yield leader, standby
    for op in (leader, standby):
        op.stop()


def test_standby_takes_over_when_the_leader_dies(lab: Lab, pair: tuple[OperatorProcess, ...], namespace: str) -> None:
    leader, standby = pair
    burst(lab, namespace)
    # Kopf starts a peered operator paused; the standby stays so while the leader's keep-alive is fresh
    assert "Resuming operations" not in standby.log_path.read_text()
    leader.kill()  # SIGKILL: its keep-alive in the peering object expires, the standby resumes
    lab.set_queue(namespace, 20)
    wait_placement(lab, namespace, "vllm", (2, 0), timeout=150)
    assert "Resuming operations" in standby.log_path.read_text()
