"""Install as a platform engineer would: `kubectl apply -k manifests/`, the operator built as the Dockerfile
builds it (a wheel in a clean virtualenv), running with its own ServiceAccount's token, not an admin's."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import ROOT, Lab, OperatorProcess
from tests.e2e.helpers import burst, events, wait_placement

KUBECTL = os.environ.get("OVERSPILL_LAB_KUBECTL", "kubectl")


def kubectl(lab: Lab, *args: str) -> str:
    out = subprocess.run(
        [KUBECTL, "--kubeconfig", lab.primary_kubeconfig, *args], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def wheel_operator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel and install it into a clean virtualenv: the Dockerfile's two stages, without Docker."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheels = list((tmp / "dist").glob("overspill-*.whl"))
    assert len(wheels) == 1
    venv.create(tmp / "venv", with_pip=True)
    pip = tmp / "venv/bin/pip"
    subprocess.run([str(pip), "install", "-q", str(wheels[0])], check=True, capture_output=True)
    exe = tmp / "venv/bin/overspill"
    assert subprocess.run([str(exe), "--help"], capture_output=True, check=False).returncode == 0
    return exe


@pytest.fixture(scope="module")
def applied(installed: Lab) -> Lab:
    """`kubectl apply -k manifests/` on the primary, as the install docs say."""
    kubectl(installed, "apply", "-k", str(ROOT / "manifests"))
    return installed


@pytest.fixture(scope="module")
def sa_operator(
    applied: Lab, wheel_operator: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    installed = applied
    token = kubectl(installed, "create", "token", "overspill", "-n", "overspill-system", "--duration=2h").strip()
    admin = yaml.safe_load(Path(installed.primary_kubeconfig).read_text())
    cluster = admin["clusters"][0]["cluster"]
    kc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "sa",
        "clusters": [{"name": "lab", "cluster": cluster}],
        "contexts": [{"name": "sa", "context": {"cluster": "lab", "user": "overspill"}}],
        "users": [{"name": "overspill", "user": {"token": token}}],
    }
    path = tmp_path_factory.mktemp("sa") / "kubeconfig.yaml"
    path.write_text(yaml.safe_dump(kc))
    path.chmod(0o600)
    # as deployed: with Kopf peering (standby replicas), which needs its own RBAC and its ClusterKopfPeering
    op = OperatorProcess(
        installed, path.parent / "operator.log", kubeconfig=str(path), executable=wheel_operator, standalone=False
    )
    op.start()
    yield op
    op.stop()
    # an RBAC denial names the identity ("User ... cannot <verb> resource ..."); a 403 for posting into a namespace
    # being deleted is not one
    denials = [
        line
        for line in op.log_path.read_text().splitlines()
        if "system:serviceaccount:overspill-system:overspill" in line and "cannot" in line
    ]
    assert denials == [], "the operator hit RBAC denials:\n" + "\n".join(denials[:5])


def can_i(lab: Lab, verb: str, resource: str, namespace: str) -> str:
    out = subprocess.run(
        [
            KUBECTL,
            "--kubeconfig",
            lab.primary_kubeconfig,
            "auth",
            "can-i",
            verb,
            resource,
            "-n",
            namespace,
            "--as=system:serviceaccount:overspill-system:overspill",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip()


def test_service_account_token_is_not_admin(applied: Lab) -> None:
    assert can_i(applied, "get", "secrets", "default") == "no"
    assert can_i(applied, "get", "secrets", "overspill-system") == "yes"  # the kubeconfigs live there, only there
    assert can_i(applied, "delete", "deployments", "default") == "no"


def test_peering_object_created_by_the_operator(lab: Lab, sa_operator: OperatorProcess) -> None:
    out = kubectl(lab, "get", "clusterkopfpeering", "overspill", "-o", "jsonpath={.status}")
    assert out.strip() not in ("", "{}"), "the active operator keeps itself alive in the peering object"


def test_burst_with_the_operators_own_rbac(lab: Lab, sa_operator: OperatorProcess, namespace: str) -> None:
    burst(lab, namespace)
    lab.set_queue(namespace, 20)
    wait_placement(lab, namespace, "vllm", (2, 0), timeout=90)
    assert {"BurstUp", "BurstDown"} <= {r for _, r, _ in events(lab, namespace, "vllm")}

    table = kubectl(lab, "get", "bp", "-n", namespace)
    header = table.splitlines()[0].split()
    assert header == ["NAME", "DESIRED", "PRIMARY", "SECONDARY", "MODE", "REASON", "AGE"]
    described = kubectl(lab, "describe", "bp", "-n", namespace, "vllm")
    for text in ("Conditions:", "MetricAvailable", "TargetsAvailable", "Events:", "BurstUp"):
        assert text in described, described
