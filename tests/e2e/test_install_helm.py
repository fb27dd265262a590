"""Install with Helm as a platform engineer would (`helm install` of charts/overspill in overspill-system, helm built
by hack/build-helm.sh), give the secondary only what manifests/secondary/ grants, then run the operator with a token
of the chart's own ServiceAccount against a BurstTarget whose kubeconfig holds a token of the secondary's
`overspill-remote` ServiceAccount: a burst out and back works with nothing but the shipped RBAC, and what that RBAC
does not grant is refused by the real API servers.

A release name other than `overspill` keeps its objects apart from the kustomize install of
tests/e2e/test_install.py; overspill-system is where the administrator (here `hack/lab up`) puts the kubeconfig
Secrets, and the chart's Role reads Secrets only in its release namespace."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, utils

from overspill.adapters.kube import DELETION_COST
from overspill.adapters.mirror import TARGET_NAME
from tests import binaries
from tests.e2e.conftest import ROOT, Lab, OperatorProcess, eventually
from tests.e2e.helpers import (
    GROUP,
    PLURAL,
    VERSION,
    condition,
    events,
    policy_body,
    spec_replicas,
    wait_condition,
    wait_placement,
)
from tests.e2e.test_install import denials, kubectl, kubectl_at, only_deletion_cost_is_patchable, sa_kubeconfig
from tests.e2e.test_serving import (
    EXPORTED,
    GW,
    GW_VERSION,
    MCS,
    MCS_VERSION,
    export,
    imported,
    read,
    route_weights,
    serving_workload,
)

RELEASE, NAMESPACE = "burst", "overspill-system"
FULLNAME = f"{RELEASE}-overspill"  # the chart's names for a release not named overspill
CHART_USER = f"system:serviceaccount:{NAMESPACE}:{FULLNAME}"
REMOTE_NS = REMOTE_SA = "overspill-remote"  # manifests/secondary/serviceaccount.yaml
REMOTE_USER = f"system:serviceaccount:{REMOTE_NS}:{REMOTE_SA}"
TARGET, TARGET_SECRET = "secondary-least-privilege", "lab-secondary-remote-kubeconfig"
BUSY = "overspill.dev/in-flight"
SECONDARY = ROOT / "manifests/secondary"


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


@pytest.fixture(scope="module")
def chart_sa(release: Lab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sa_kubeconfig(release, NAMESPACE, FULLNAME, tmp_path_factory.mktemp("chart-sa"))


@pytest.fixture(scope="module")
def remote_sa(installed: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The secondary as docs/operations.md sets one up: its ServiceAccount and read-only ClusterRole from
    manifests/secondary/, a kubeconfig with that identity's token as a Secret in the primary, a BurstTarget naming
    it. (The per-namespace Role is applied by `remote_namespace`, for each test's namespace.)"""
    secondary = installed.secondary_kubeconfig
    for name in ("serviceaccount.yaml", "rbac-view.yaml"):
        kubectl_at(secondary, "apply", "-f", str(SECONDARY / name))
    path = sa_kubeconfig(installed, REMOTE_NS, REMOTE_SA, tmp_path_factory.mktemp("remote-sa"), secondary)
    core = client.CoreV1Api(installed.primary)
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name=TARGET_SECRET, namespace=NAMESPACE),
        data={"kubeconfig": base64.b64encode(path.read_bytes()).decode()},
    )
    core.create_namespaced_secret(NAMESPACE, secret)
    target = yaml.safe_load((ROOT / "manifests/examples/lab-bursttarget.yaml").read_text())
    target["metadata"]["name"] = TARGET
    target["spec"]["kubeconfigSecretRef"]["name"] = TARGET_SECRET
    custom = client.CustomObjectsApi(installed.primary)
    custom.create_cluster_custom_object("overspill.dev", "v1alpha1", "bursttargets", target)
    yield path
    custom.delete_cluster_custom_object("overspill.dev", "v1alpha1", "bursttargets", TARGET)
    core.delete_namespaced_secret(TARGET_SECRET, NAMESPACE)
    kubectl_at(secondary, "delete", "-f", str(SECONDARY / "rbac-view.yaml"), "--wait=false", "--ignore-not-found")
    kubectl_at(secondary, "delete", "-f", str(SECONDARY / "serviceaccount.yaml"), "--wait=false", "--ignore-not-found")


@pytest.fixture
def remote_namespace(lab: Lab, namespace: str, tmp_path: Path) -> str:
    """manifests/secondary/rbac-namespace.yaml for this test's namespace: pre-created in the secondary, with the
    Role and RoleBinding (the `namespace` fixture deletes it afterwards)."""
    docs = list(yaml.safe_load_all((SECONDARY / "rbac-namespace.yaml").read_text()))
    for doc in docs:
        if doc["kind"] == "Namespace":
            doc["metadata"]["name"] = namespace
        else:
            doc["metadata"]["namespace"] = namespace
    path = tmp_path / "rbac-namespace.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    kubectl_at(lab.secondary_kubeconfig, "apply", "-f", str(path))
    return namespace


@pytest.fixture(scope="module")
def chart_operator(release: Lab, chart_sa: Path, remote_sa: Path) -> Iterator[OperatorProcess]:
    # as the chart's Deployment runs it: with Kopf peering under the release's name
    op = OperatorProcess(
        release, chart_sa.parent / "operator.log", kubeconfig=str(chart_sa), standalone=False, peering=FULLNAME
    )
    op.start()
    yield op
    op.stop()
    found = denials(op, CHART_USER, REMOTE_USER)
    assert found == [], "the operator hit RBAC or admission denials:\n" + "\n".join(found[:5])


def refused(kubeconfig: Path, call: Callable[[client.ApiClient], Any]) -> int:
    """The HTTP status of that call made with that identity (0 when it was allowed)."""
    with config.new_client_from_config(str(kubeconfig)) as api:
        try:
            call(api)
        except client.ApiException as err:
            return int(err.status)
    return 0


def test_chart_installs_its_objects(release: Lab) -> None:
    assert "deployed" in helm(release, "status", RELEASE, "-n", NAMESPACE)
    out = kubectl(release, "get", "deployment,serviceaccount,configmap,poddisruptionbudget,service", "-n", NAMESPACE)
    for name in (f"deployment.apps/{FULLNAME}", f"serviceaccount/{FULLNAME}", f"poddisruptionbudget.policy/{FULLNAME}"):
        assert name in out, out
    kubectl(release, "get", "validatingadmissionpolicy", f"{FULLNAME}-pod-deletion-cost-only")


def test_chart_service_account_may_patch_only_the_deletion_cost(release: Lab, chart_sa: Path, namespace: str) -> None:
    only_deletion_cost_is_patchable(release, chart_sa, namespace)


@pytest.fixture
def secrets_opt_in(release: Lab, remote_namespace: str) -> Iterator[str]:
    """The chart's opt-in for the test's namespace (`secretPropagation.namespaces`), withdrawn afterwards."""
    ns = remote_namespace
    chart = str(ROOT / "charts/overspill")
    helm(
        release,
        "upgrade",
        RELEASE,
        chart,
        "-n",
        NAMESPACE,
        "--reuse-values",
        f"--set=secretPropagation.namespaces={{{ns}}}",
    )
    yield ns
    helm(
        release, "upgrade", RELEASE, chart, "-n", NAMESPACE, "--reuse-values", "--set=secretPropagation.namespaces=null"
    )


def test_a_serving_burst_out_and_home_with_only_the_shipped_rbac(
    lab: Lab, chart_operator: OperatorProcess, secrets_opt_in: str
) -> None:
    """Everything a burst does, each under the RBAC that grants it: scale (primary), the mirror, the copies of its
    ConfigMap, Secrets and ServiceAccount, the burst Service and ServiceExport (the secondary's Role), the route's
    weights (primary), deletion costs on both sides, the return, and the clean-up when the policy goes."""
    ns = secrets_opt_in
    utils.create_from_dict(
        lab.primary, {"apiVersion": "v1", "kind": "List", "items": serving_workload(ns)}, namespace=ns
    )
    route = {
        "apiVersion": f"{GW}/{GW_VERSION}",
        "kind": "HTTPRoute",
        "metadata": {"name": "vllm"},
        "spec": {"rules": [{"backendRefs": [{"name": "vllm", "port": 80}]}]},
    }
    client.CustomObjectsApi(lab.primary).create_namespaced_custom_object(GW, GW_VERSION, ns, "httproutes", route)
    spec = {
        "targets": [{"name": TARGET}],
        "busy": {"podAnnotation": BUSY},
        "propagation": {"secrets": True},
        "traffic": {"serviceRef": {"name": "vllm"}, "httpRouteRef": {"name": "vllm"}},
    }
    client.CustomObjectsApi(lab.primary).create_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, policy_body("vllm", ns, **spec)
    )
    lab.set_queue(ns, 150)
    wait_placement(lab, ns, "vllm", (8, 7), timeout=90)
    mirrors = client.AppsV1Api(lab.secondary).list_namespaced_deployment(ns).items
    assert [(m.metadata.annotations or {}).get(TARGET_NAME) for m in mirrors] == [TARGET], "placed by that target"
    copies = [("ConfigMap", "vllm-config"), ("Secret", "hf"), ("Secret", "regcred"), ("ServiceAccount", "vllm")]
    wait_condition(lab, ns, "vllm", "DependenciesReady", "True", 30)
    burst_name = f"vllm-burst-{TARGET}"  # <service>-burst-<target>
    for kind, name in [*copies, ("Service", burst_name)]:
        obj = read(lab.secondary, kind, ns, name)
        assert obj is not None and obj.metadata.labels.get("app.kubernetes.io/managed-by") == "overspill", (
            kind,
            name,
            condition(lab, ns, "vllm", "DependenciesReady"),
            [x.metadata.name for x in client.CoreV1Api(lab.secondary).list_namespaced_secret(ns).items],
        )
    assert export(lab, ns, burst_name) is not None
    # the test plays the MCS controller the lab does not run: the export's status is read back under the Role
    client.CustomObjectsApi(lab.secondary).patch_namespaced_custom_object_status(
        MCS, MCS_VERSION, ns, "serviceexports", burst_name, {"status": {"conditions": EXPORTED}}
    )
    imported(lab, ns, burst_name)  # and the import in the primary, read under the chart's ClusterRole
    eventually(lambda: route_weights(lab, ns) == (8, 7), 30, what="the route's weights (8, 7)")

    # pods: patch in both clusters (the chart's ClusterRole + admission policy; the secondary's namespaced Role)
    def mark_busy(api: client.ApiClient) -> Callable[[], str]:
        core = client.CoreV1Api(api)
        pod = core.list_namespaced_pod(ns, label_selector="app=vllm").items[0].metadata.name
        core.patch_namespaced_pod(pod, ns, {"metadata": {"annotations": {BUSY: "3"}}})
        return lambda: str((core.read_namespaced_pod(pod, ns).metadata.annotations or {}).get(DELETION_COST, ""))

    primary_cost, mirror_cost = mark_busy(lab.primary), mark_busy(lab.secondary)
    eventually(lambda: primary_cost() == "300", 30, what="the busy primary pod's deletion cost")
    eventually(lambda: mirror_cost() == "300", 30, what="the busy mirror pod's deletion cost, in the secondary")

    lab.set_queue(ns, 20)
    wait_placement(lab, ns, "vllm", (2, 0), timeout=90)
    reasons = {r for _, r, _ in events(lab, ns, "vllm")}
    assert {"BurstUp", "BurstDown"} <= reasons, reasons
    assert spec_replicas(lab.secondary, ns, "vllm") == 0
    # deleting the policy removes its mirror and what it carried (deletes in the secondary; the finalizer here)
    client.CustomObjectsApi(lab.primary).delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "vllm")
    eventually(lambda: spec_replicas(lab.secondary, ns, "vllm") is None, 30, what="the mirror deleted")
    eventually(
        lambda: all(read(lab.secondary, kind, ns, name) is None for kind, name in copies),
        30,
        what="the copies deleted from the secondary",
    )
    peering = kubectl(lab, "get", "clusterkopfpeering", FULLNAME, "-o", "jsonpath={.status}")
    assert peering.strip() not in ("", "{}"), "the operator keeps itself alive in the chart's peering object"


def test_what_the_shipped_rbac_does_not_grant_is_refused(
    lab: Lab, chart_sa: Path, remote_sa: Path, remote_namespace: str
) -> None:
    ns = remote_namespace
    secret = client.V1Secret(metadata=client.V1ObjectMeta(name="app-token"), string_data={"token": "s3cr3t"})
    client.CoreV1Api(lab.primary).create_namespaced_secret(ns, secret)
    client.CoreV1Api(lab.secondary).create_namespaced_secret(ns, secret)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "intruder"},
        "spec": {
            "selector": {"matchLabels": {"app": "intruder"}},
            "template": {
                "metadata": {"labels": {"app": "intruder"}},
                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]},
            },
        },
    }
    namespace = client.V1Namespace(metadata=client.V1ObjectMeta(name=f"{ns}-new"))

    def core(api: client.ApiClient) -> client.CoreV1Api:
        return client.CoreV1Api(api)

    def apps(api: client.ApiClient) -> client.AppsV1Api:
        return client.AppsV1Api(api)

    # the primary, as the chart's ServiceAccount: no Secret outside its namespace, no writes to workloads
    primary: dict[str, Callable[[client.ApiClient], Any]] = {
        "get a Secret in a workload namespace": lambda a: core(a).read_namespaced_secret("app-token", ns),
        "list Secrets cluster-wide": lambda a: core(a).list_secret_for_all_namespaces(),
        "create a Deployment": lambda a: apps(a).create_namespaced_deployment(ns, deployment),
        "delete a namespace": lambda a: core(a).delete_namespace(ns),
        "create a namespace": lambda a: core(a).create_namespace(namespace),
    }
    # the secondary, as overspill-remote: writes only in namespaces given a Role, Secrets never listed cluster-wide
    secondary: dict[str, Callable[[client.ApiClient], Any]] = {
        "create a Deployment where no Role is bound": lambda a: apps(a).create_namespaced_deployment(
            "default", deployment
        ),
        "list Secrets cluster-wide": lambda a: core(a).list_secret_for_all_namespaces(),
        "get a Secret in kube-system": lambda a: core(a).read_namespaced_secret("any", "kube-system"),
        "create a namespace": lambda a: core(a).create_namespace(namespace),
        "delete a node": lambda a: core(a).delete_node("any"),
    }
    got = {f"primary: {k}": refused(chart_sa, call) for k, call in primary.items()}
    got |= {f"secondary: {k}": refused(remote_sa, call) for k, call in secondary.items()}
    assert got == dict.fromkeys(got, 403)
    # and what they are granted, with the same tokens (a 403 above is RBAC, not a broken token)
    assert refused(chart_sa, lambda a: core(a).read_namespaced_secret(TARGET_SECRET, NAMESPACE)) == 0
    assert refused(remote_sa, lambda a: core(a).read_namespaced_secret("app-token", ns)) == 0
    assert refused(remote_sa, lambda a: apps(a).create_namespaced_deployment(ns, deployment)) == 0
