"""Session fixtures for end-to-end tests: the lab, kind, or any two clusters given by these variables:

    OVERSPILL_LAB_PRIMARY_KUBECONFIG, OVERSPILL_LAB_SECONDARY_KUBECONFIG,
    OVERSPILL_LAB_PROMETHEUS_URL, OVERSPILL_LAB_QUEUE_URL   (`eval "$(hack/lab env)"` sets them)

Missing variables are an error, not a skip: deselect with `-m "not e2e"` to run without clusters.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

ROOT = Path(__file__).resolve().parents[2]
VARS = (
    "OVERSPILL_LAB_PRIMARY_KUBECONFIG",
    "OVERSPILL_LAB_SECONDARY_KUBECONFIG",
    "OVERSPILL_LAB_PROMETHEUS_URL",
    "OVERSPILL_LAB_QUEUE_URL",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@dataclass(frozen=True)
class Lab:
    primary_kubeconfig: str
    secondary_kubeconfig: str
    prometheus_url: str
    queue_url: str
    primary: client.ApiClient
    secondary: client.ApiClient
    # the lab's third cluster (onward spills); None when only two clusters are given
    tertiary_kubeconfig: str | None = None
    tertiary: client.ApiClient | None = None

    def set_queue(self, name: str, value: float) -> None:
        req = urllib.request.Request(f"{self.queue_url}/queues/{name}", data=str(value).encode(), method="PUT")
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200

    def control(self, verb: str, component: str) -> None:
        """Stop or start a lab component (failure tests). Only works on the local lab."""
        subprocess.run([str(ROOT / "hack/lab"), verb, component], check=True, capture_output=True)


@pytest.fixture(scope="session")
def lab() -> Lab:
    missing = [v for v in VARS if not os.environ.get(v)]
    if missing:
        pytest.fail(
            f'end-to-end tests need {", ".join(missing)}: run `hack/lab up && eval "$(hack/lab env)"`, '
            "or deselect them with -m 'not e2e'",
            pytrace=False,
        )
    env = os.environ
    return Lab(
        primary_kubeconfig=env["OVERSPILL_LAB_PRIMARY_KUBECONFIG"],
        secondary_kubeconfig=env["OVERSPILL_LAB_SECONDARY_KUBECONFIG"],
        prometheus_url=env["OVERSPILL_LAB_PROMETHEUS_URL"],
        queue_url=env["OVERSPILL_LAB_QUEUE_URL"],
        primary=config.new_client_from_config(env["OVERSPILL_LAB_PRIMARY_KUBECONFIG"]),
        secondary=config.new_client_from_config(env["OVERSPILL_LAB_SECONDARY_KUBECONFIG"]),
        tertiary_kubeconfig=env.get("OVERSPILL_LAB_TERTIARY_KUBECONFIG") or None,
        tertiary=(
            config.new_client_from_config(env["OVERSPILL_LAB_TERTIARY_KUBECONFIG"])
            if env.get("OVERSPILL_LAB_TERTIARY_KUBECONFIG")
            else None
        ),
    )


def eventually(check: Callable[[], object], timeout: float, interval: float = 0.5, what: str = "") -> object:
    """Poll until `check` returns a truthy value; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as err:
            last = err
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what or check}: last={last!r}", pytrace=False)


@pytest.fixture
def namespace(lab: Lab, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace in the primary (and its name reserved in the secondary), deleted afterwards."""
    name = "e2e-" + request.node.name.lower().replace("_", "-")[:40].strip("-") + f"-{int(time.time()) % 100000}"
    core = client.CoreV1Api(lab.primary)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    clusters = [api for api in (lab.primary, lab.secondary, lab.tertiary) if api is not None]
    for api in clusters:
        try:
            client.CoreV1Api(api).delete_namespace(name)
        except client.ApiException as err:
            if err.status != 404:
                raise

    def gone() -> bool:
        # GPUs are freed only when the pods are gone: the next test needs both clusters' GPUs back
        return not any(client.CoreV1Api(api).list_namespaced_pod(name).items for api in clusters)

    eventually(gone, 120, what=f"namespace {name} emptied in every cluster")


def default_operator_ports() -> tuple[int, int]:
    """The operator's metrics and liveness ports; another lab on the same machine (hack/lab's OVERSPILL_LAB_DIR and
    port variables) sets OVERSPILL_E2E_OPERATOR_PORTS="metrics,liveness" so two runs never share a port."""
    text = os.environ.get("OVERSPILL_E2E_OPERATOR_PORTS", "19195,19196")
    metrics, liveness = (int(x) for x in text.split(","))
    return metrics, liveness


class OperatorProcess:
    """The operator as a real process against the lab's primary, as users run it (`overspill run`)."""

    def __init__(
        self,
        lab: Lab,
        log_path: Path,
        *,
        kubeconfig: str | None = None,
        executable: Path | None = None,
        standalone: bool = True,
        priority: int | None = None,
        ports: tuple[int, int] | None = None,
        peering: str = "overspill",
        namespaces: tuple[str, ...] = (),
    ) -> None:
        self.namespaces = namespaces  # a shard: only these namespaces' policies (default: every namespace)
        self.standalone = standalone
        self.peering = peering
        self.priority = priority
        self.ports = ports or default_operator_ports()
        self.lab = lab
        self.log_path = log_path
        self.kubeconfig = kubeconfig or lab.primary_kubeconfig
        self.executable = executable or ROOT / ".venv/bin/overspill"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120) -> None:
        # 120 s: importing kubernetes, kopf and pydantic and Kopf's first listings take tens of seconds on two cores
        # at load 10-15 (an operator that exits early fails at once: `_healthy`)
        env = {**os.environ, "KUBECONFIG": self.kubeconfig, "OVERSPILL_PROMETHEUS_URL": self.lab.prometheus_url}
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [
                str(self.executable),
                "run",
                *(["--standalone"] if self.standalone else ["--peering", self.peering]),
                *(["--priority", str(self.priority)] if self.priority is not None else []),
                *([f"--namespace={ns}" for ns in self.namespaces] or ["--all-namespaces"]),
                "--metrics-port",
                str(self.ports[0]),
                "--metrics-address",
                "127.0.0.1",
                "--liveness",
                f"http://127.0.0.1:{self.ports[1]}/healthz",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        try:
            eventually(self._healthy, timeout, what="the operator's liveness endpoint")
        except BaseException:
            self.proc.kill()  # never left behind holding its ports for the next test (or the next run)
            self.proc.wait(10)
            raise

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:  # it exited (a port taken, a bad flag): whatever answers is not ours
            pytest.fail(f"the operator exited with {self.proc.returncode}:\n{self.log_tail(20)}", pytrace=False)
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[1]}/healthz", timeout=2) as r:
            return bool(r.status == 200)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no clean shutdown, as a crashed pod
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])


@pytest.fixture(scope="session")
def installed(lab: Lab) -> Lab:
    """CRDs and the lab's BurstTarget applied to the primary, as a user would with kubectl."""
    kubectl = os.environ.get("OVERSPILL_LAB_KUBECTL", "kubectl")
    for flag, path in (("-k", "crds"), ("-f", "manifests/examples/lab-bursttarget.yaml")):
        subprocess.run(
            [kubectl, "--kubeconfig", lab.primary_kubeconfig, "apply", flag, str(ROOT / path)],
            check=True,
            capture_output=True,
        )
    subprocess.run(
        [
            kubectl,
            "--kubeconfig",
            lab.primary_kubeconfig,
            "wait",
            "--for=condition=Established",
            "crd/burstpolicies.overspill.dev",
            "crd/bursttargets.overspill.dev",
            "--timeout=30s",
        ],
        check=True,
        capture_output=True,
    )
    return lab


@pytest.fixture(scope="module")
def operator(installed: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """An operator with the admin kubeconfig, for one test module (two operators never run at once)."""
    op = OperatorProcess(installed, tmp_path_factory.mktemp("operator") / "operator.log")
    op.start()
    yield op
    # the policies of this module's last test are still being deleted (its namespace goes once their finalizers
    # ran): let this operator, which placed their mirrors and reserved their room, finish that, rather than hand
    # the deletions to the next module's operator
    with contextlib.suppress(Exception, pytest.fail.Exception):  # best effort: the product's own release covers it
        eventually(lambda: not _deleting_policies(installed), 90, what="BurstPolicies being deleted")
    op.stop()
    print(op.log_tail(30))


def _deleting_policies(lab: Lab) -> list[str]:
    custom = client.CustomObjectsApi(lab.primary)
    items = custom.list_cluster_custom_object("overspill.dev", "v1alpha1", "burstpolicies")
    meta = [i["metadata"] for i in items.get("items", [])]
    return [f"{m['namespace']}/{m['name']}" for m in meta if m.get("deletionTimestamp")]
