"""Install with Helm as a platform engineer would (`helm install` of charts/overspill, helm built by
hack/build-helm.sh), then act with a token of the chart's own ServiceAccount, under the chart's RBAC and its pod
admission policy. A release name other than `overspill` keeps its objects apart from the kustomize install of
tests/e2e/test_install.py."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import binaries
from tests.e2e.conftest import ROOT, Lab
from tests.e2e.test_install import kubectl, only_deletion_cost_is_patchable, sa_kubeconfig

RELEASE, NAMESPACE = "burst", "overspill-helm"
FULLNAME = f"{RELEASE}-overspill"  # the chart's names for a release not named overspill


def helm(lab: Lab, *args: str) -> str:
    out = subprocess.run(
        [binaries.helm(), "--kubeconfig", lab.primary_kubeconfig, *args], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def release(installed: Lab) -> Iterator[Lab]:
    helm(
        installed,
        "install",
        RELEASE,
        str(ROOT / "charts/overspill"),
        "-n",
        NAMESPACE,
        "--create-namespace",
        f"--set=prometheus.url={installed.prometheus_url}",
    )
    yield installed
    helm(installed, "uninstall", RELEASE, "-n", NAMESPACE, "--wait")
    kubectl(installed, "delete", "namespace", NAMESPACE, "--wait=false")


@pytest.fixture(scope="module")
def chart_sa(release: Lab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sa_kubeconfig(release, NAMESPACE, FULLNAME, tmp_path_factory.mktemp("chart-sa"))


def test_chart_installs_its_objects(release: Lab) -> None:
    assert "deployed" in helm(release, "status", RELEASE, "-n", NAMESPACE)
    out = kubectl(release, "get", "deployment,serviceaccount,configmap,poddisruptionbudget,service", "-n", NAMESPACE)
    for name in (f"deployment.apps/{FULLNAME}", f"serviceaccount/{FULLNAME}", f"poddisruptionbudget.policy/{FULLNAME}"):
        assert name in out, out
    kubectl(release, "get", "validatingadmissionpolicy", f"{FULLNAME}-pod-deletion-cost-only")


def test_chart_service_account_may_patch_only_the_deletion_cost(release: Lab, chart_sa: Path, namespace: str) -> None:
    only_deletion_cost_is_patchable(release, chart_sa, namespace)
