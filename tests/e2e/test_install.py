"""Install as a platform engineer would: `kubectl apply -k manifests/`, the operator built as the Dockerfile
builds it (a wheel in a clean virtualenv), running with its own ServiceAccount's token, not an admin's."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from overspill.adapters.kube import DELETION_COST
from tests.e2e.conftest import ROOT, Lab, OperatorProcess
from tests.e2e.helpers import burst, events, wait_placement

KUBECTL = os.environ.get("OVERSPILL_LAB_KUBECTL", "kubectl")


def kubectl(lab: Lab, *args: str) -> str:
    return kubectl_at(lab.primary_kubeconfig, *args)


def kubectl_at(kubeconfig: str | Path, *args: str) -> str:
    out = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True, check=False)
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


def sa_kubeconfig(lab: Lab, namespace: str, name: str, folder: Path, admin_kubeconfig: str | None = None) -> Path:
    """A kubeconfig holding only a token of that ServiceAccount (TokenRequest): the identity a pod of the Deployment
    runs as, or, with the secondary's admin kubeconfig, the identity an administrator stores for a target."""
    admin_path = admin_kubeconfig or lab.primary_kubeconfig
    token = kubectl_at(admin_path, "create", "token", name, "-n", namespace, "--duration=2h").strip()
    admin = yaml.safe_load(Path(admin_path).read_text())
    kc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "sa",
        "clusters": [{"name": "lab", "cluster": admin["clusters"][0]["cluster"]}],
        "contexts": [{"name": "sa", "context": {"cluster": "lab", "user": name}}],
        "users": [{"name": name, "user": {"token": token}}],
    }
    path = folder / "kubeconfig.yaml"
    path.write_text(yaml.safe_dump(kc))
    path.chmod(0o600)
    return path


def denials(op: OperatorProcess, *users: str) -> list[str]:
    """RBAC denials name the identity ("User ... cannot <verb> resource ..."; a 403 for posting into a namespace
    being deleted is not one); the admission policy's denials name the policy."""
    return [
        line
        for line in op.log_path.read_text().splitlines()
        if any(user in line and "cannot" in line for user in users)
        or ("ValidatingAdmissionPolicy" in line and "denied" in line)
    ]


def patch_pod(kubeconfig: str | Path, namespace: str, pod: str, patch: dict[str, object]) -> str:
    """ "" when the API server accepted the patch, else its refusal (the operator's own call, with that identity)."""
    with config.new_client_from_config(str(kubeconfig)) as api:
        try:
            client.CoreV1Api(api).patch_namespaced_pod(pod, namespace, patch)
        except client.ApiException as err:
            return f"HTTP {err.status}: {err.body}"
    return ""


def only_deletion_cost_is_patchable(lab: Lab, sa_kc: Path, namespace: str) -> None:
    """The real API server enforces the shipped ValidatingAdmissionPolicy for that ServiceAccount's token."""
    kubectl(lab, "run", "p", "-n", namespace, "--image=registry.k8s.io/pause:3.10", "--labels=app=p")
    refusal = "may change only the controller.kubernetes.io/pod-deletion-cost annotation"
    deadline = time.monotonic() + 20  # the API server loads a new policy within a second or so
    for attempt in itertools.count():  # a new value each time: a label already set would be no change at all
        answer = patch_pod(sa_kc, namespace, "p", {"metadata": {"labels": {"moved": str(attempt)}}})
        if refusal in answer or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert refusal in answer, f"a label change by the operator's ServiceAccount was not refused: {answer!r}"
    core = client.CoreV1Api(lab.primary)
    labels = core.read_namespaced_pod("p", namespace).metadata.labels
    assert refusal in patch_pod(sa_kc, namespace, "p", {"metadata": {"annotations": {"example.com/note": "x"}}})
    assert refusal in patch_pod(sa_kc, namespace, "p", {"spec": {"activeDeadlineSeconds": 60}})
    assert patch_pod(sa_kc, namespace, "p", {"metadata": {"annotations": {DELETION_COST: "42"}}}) == ""
    pod = core.read_namespaced_pod("p", namespace)
    assert pod.metadata.annotations[DELETION_COST] == "42"
    assert pod.metadata.labels == labels and "example.com/note" not in pod.metadata.annotations
    assert pod.spec.active_deadline_seconds is None
    assert patch_pod(lab.primary_kubeconfig, namespace, "p", {"metadata": {"labels": {"moved": "x"}}}) == ""


@pytest.fixture(scope="module")
def sa_operator(
    applied: Lab, wheel_operator: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    path = sa_kubeconfig(applied, "overspill-system", "overspill", tmp_path_factory.mktemp("sa"))
    # as deployed: with Kopf peering (standby replicas), which needs its own RBAC and its ClusterKopfPeering
    op = OperatorProcess(
        applied, path.parent / "operator.log", kubeconfig=str(path), executable=wheel_operator, standalone=False
    )
    op.start()
    yield op
    op.stop()
    found = denials(op, "system:serviceaccount:overspill-system:overspill")
    assert found == [], "the operator hit RBAC or admission denials:\n" + "\n".join(found[:5])


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


def test_operator_may_patch_only_the_deletion_cost_of_a_pod(applied: Lab, namespace: str, tmp_path: Path) -> None:
    only_deletion_cost_is_patchable(
        applied, sa_kubeconfig(applied, "overspill-system", "overspill", tmp_path), namespace
    )


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
