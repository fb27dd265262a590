"""Session fixtures for end-to-end tests: the lab, kind, or any two clusters given by these variables:

    OVERSPILL_LAB_PRIMARY_KUBECONFIG, OVERSPILL_LAB_SECONDARY_KUBECONFIG,
    OVERSPILL_LAB_PROMETHEUS_URL, OVERSPILL_LAB_QUEUE_URL   (`eval "$(hack/lab env)"` sets them)

Missing variables are an error, not a skip: deselect with `-m "not e2e"` to run without clusters.
"""

from __future__ import annotations

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

    def set_queue(self, name: str, value: float) -> None:
        req = urllib.request.Request(f"{self.queue_url}/queues/{name}", data=str(value).encode(), method="PUT")
        with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310 - the lab's loopback URL
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
    pytest.fail(f"timed out after {timeout}s waiting for {what or check}: last={last!r}")


@pytest.fixture
def namespace(lab: Lab, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace in the primary (and its name reserved in the secondary), deleted afterwards."""
    name = "e2e-" + request.node.name.lower().replace("_", "-")[:40].strip("-") + f"-{int(time.time()) % 100000}"
    core = client.CoreV1Api(lab.primary)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    for api in (lab.primary, lab.secondary):
        try:
            client.CoreV1Api(api).delete_namespace(name)
        except client.ApiException as err:
            if err.status != 404:
                raise
