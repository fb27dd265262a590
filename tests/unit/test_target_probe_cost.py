"""What probing a BurstTarget costs the primary's API server while nothing changes (issue 12: at most 1 request
per second per cluster while steady). Seen failing before: every probe (default every 15 s per target) did a GET
of the kubeconfig Secret and a PATCH of the BurstTarget's status."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from overspill import handlers
from overspill.api import parse_target_spec
from overspill.cadence import target_write_cause
from overspill.handlers import _probe
from overspill.targets import TargetRegistry
from overspill.triggers import Triggers

KUBECONFIG = (
    "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
    "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
    "current-context: x\n"
)


class Reads:
    def __init__(self) -> None:
        self.count = 0
        self.secret = SimpleNamespace(
            data={"kubeconfig": base64.b64encode(KUBECONFIG.encode()).decode()},
            metadata=SimpleNamespace(resource_version="7"),
        )

    def read_namespaced_secret(self, *_: Any, **__: Any) -> Any:
        self.count += 1
        return self.secret


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Reads, dict[str, bool]]]:
    reads = Reads()
    answering = {"up": True}

    def version(self: Any, timeout: float) -> str:
        if not answering["up"]:
            raise ConnectionRefusedError
        return "v1.34.4"

    monkeypatch.setattr(handlers.Cluster, "version", version)
    rtm: Any = SimpleNamespace(primary=SimpleNamespace(core=reads), targets=TargetRegistry(), triggers=Triggers())
    yield rtm, reads, answering
    for name in rtm.targets.names():
        rtm.targets.remove(name)


SPEC = {"kubeconfigSecretRef": {"name": "s", "namespace": "overspill-system"}}


def test_a_target_that_answers_costs_one_secret_read_a_minute(world: Any) -> None:
    rtm, reads, _ = world
    spec = parse_target_spec(SPEC)
    rtm.targets.upsert("aws", spec)
    cache: dict[str, Any] = {}
    results = [_probe(rtm, "aws", spec, cache)[0] for _ in range(4)]  # four probes within a minute
    assert results == [True] * 4
    assert reads.count == 1


def test_the_secret_is_read_again_after_a_minute(world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    rtm, reads, _ = world
    spec = parse_target_spec(SPEC)
    rtm.targets.upsert("aws", spec)
    cache: dict[str, Any] = {}
    _probe(rtm, "aws", spec, cache)
    cache["read_at"] -= handlers.KUBECONFIG_REREAD  # a minute later: a rotated kubeconfig is picked up
    _probe(rtm, "aws", spec, cache)
    assert reads.count == 2


def test_a_failed_probe_reads_the_secret_at_once_next_time(world: Any) -> None:
    rtm, reads, answering = world
    spec = parse_target_spec(SPEC)
    rtm.targets.upsert("aws", spec)
    cache: dict[str, Any] = {}
    _probe(rtm, "aws", spec, cache)
    answering["up"] = False  # credentials revoked, say: the administrator puts new ones in the Secret
    assert _probe(rtm, "aws", spec, cache)[0] is False
    assert reads.count == 1
    answering["up"] = True
    assert _probe(rtm, "aws", spec, cache)[0] is True
    assert reads.count == 2, "the probe after a failure must read the (perhaps rotated) Secret"


def test_a_new_secret_ref_is_read_at_once(world: Any) -> None:
    rtm, reads, _ = world
    spec = parse_target_spec(SPEC)
    rtm.targets.upsert("aws", spec)
    cache: dict[str, Any] = {}
    _probe(rtm, "aws", spec, cache)
    moved = parse_target_spec({"kubeconfigSecretRef": {"name": "s2", "namespace": "overspill-system"}})
    rtm.targets.upsert("aws", moved)
    _probe(rtm, "aws", moved, cache)
    assert reads.count == 2


def status(probe_time: str, latency: float, ready: str = "True", in_use: int = 3) -> dict[str, Any]:
    return {
        "conditions": [{"type": "Ready", "status": ready}],
        "lastProbeTime": probe_time,
        "latencyMs": latency,
        "replicasInUse": in_use,
    }


def test_the_probe_heartbeat_is_written_once_a_minute() -> None:
    written = status("12:00:00", 4.1)
    assert target_write_cause(status("12:00:15", 5.3), written, elapsed=15) is None
    assert target_write_cause(status("12:01:00", 5.3), written, elapsed=60) == "interval"


def test_a_change_is_written_at_once() -> None:
    written = status("12:00:00", 4.1)
    assert target_write_cause(status("12:00:15", 4.1, ready="False"), written, elapsed=15) == "settled"
    assert target_write_cause(status("12:00:15", 4.1, in_use=4), written, elapsed=15) == "settled"
    assert target_write_cause(status("12:00:15", 4.1), None, elapsed=0) == "first"
