"""The capacity estimator: a table of node and pod shapes, and the parsing of Kubernetes objects."""

from __future__ import annotations

from typing import Any

import pytest

from overspill.decide.capacity import (
    node_state,
    pod_requests,
    quantity_milli,
    room,
    shape_of,
    usage_by_node,
)


def node(
    name: str,
    *,
    gpu: int = 4,
    cpu: str = "32",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    unschedulable: bool = False,
    ready: bool = True,
) -> dict[str, Any]:
    alloc = {"cpu": cpu, "memory": "256Gi", "pods": pods}
    if gpu:
        alloc["nvidia.com/gpu"] = str(gpu)
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"taints": taints or [], "unschedulable": unschedulable},
        "status": {
            "allocatable": alloc,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pod_spec(gpu: int = 1, cpu: str = "2", **extra: Any) -> dict[str, Any]:
    limits = {"nvidia.com/gpu": str(gpu)} if gpu else {}
    return {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}, "limits": limits}}], **extra}


def bound(node_name: str, spec: dict[str, Any], phase: str = "Running") -> dict[str, Any]:
    return {"spec": {**spec, "nodeName": node_name}, "status": {"phase": phase}}


GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
TOLERATE_GPU = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]

CASES: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]], dict[str, Any], int]] = [
    ("empty cluster", [], [], pod_spec(), 0),
    ("two GPU nodes, one GPU a pod", [node("a"), node("b")], [], pod_spec(), 8),
    ("bound pods take their GPUs", [node("a"), node("b")], [bound("a", pod_spec(gpu=3))], pod_spec(), 5),
    ("finished pods hold nothing", [node("a")], [bound("a", pod_spec(gpu=4), phase="Succeeded")], pod_spec(), 4),
    ("two GPUs a pod: remainders do not add up", [node("a"), node("b")], [bound("a", pod_spec(gpu=1))], pod_spec(2), 3),
    ("CPU node cannot host a GPU pod", [node("cpu", gpu=0)], [], pod_spec(), 0),
    ("CPU is the tighter resource", [node("a", cpu="3")], [], pod_spec(cpu="2"), 1),
    ("pod slots are finite", [node("a", pods="2")], [], pod_spec(), 2),
    ("cordoned node", [node("a", unschedulable=True), node("b")], [], pod_spec(), 4),
    ("NotReady node", [node("a", ready=False), node("b")], [], pod_spec(), 4),
    (
        "nodeSelector picks one pool",
        [node("a", labels={"pool": "a10"}), node("b")],
        [],
        pod_spec(nodeSelector={"pool": "a10"}),
        4,
    ),
    ("untolerated NoSchedule taint", [node("a", taints=[GPU_TAINT])], [], pod_spec(), 0),
    ("tolerated taint", [node("a", taints=[GPU_TAINT])], [], pod_spec(tolerations=TOLERATE_GPU), 4),
    (
        "PreferNoSchedule does not block",
        [node("a", taints=[{"key": "x", "effect": "PreferNoSchedule"}])],
        [],
        pod_spec(),
        4,
    ),
    (
        "required affinity In",
        [node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"})],
        [],
        pod_spec(
            affinity={
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]}
                        ]
                    }
                }
            }
        ),
        4,
    ),
    (
        "required affinity: terms are ORed",
        [node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"}), node("c")],
        [],
        pod_spec(
            affinity={
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]},
                            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]},
                        ]
                    }
                }
            }
        ),
        8,
    ),
    (
        "required affinity DoesNotExist",
        [node("a", labels={"spot": "true"}), node("b")],
        [],
        pod_spec(
            affinity={
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [{"key": "spot", "operator": "DoesNotExist"}]}]
                    }
                }
            }
        ),
        4,
    ),
    (
        "init container larger than the containers",
        [node("a", cpu="8")],
        [],
        pod_spec(gpu=0, cpu="1", initContainers=[{"name": "i", "resources": {"requests": {"cpu": "4"}}}]),
        2,
    ),
]


@pytest.mark.parametrize(("nodes", "pods", "spec", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_room(nodes: list[dict[str, Any]], pods: list[dict[str, Any]], spec: dict[str, Any], expected: int) -> None:
    assert room([node_state(n) for n in nodes], usage_by_node(pods), shape_of(spec)) == expected


@pytest.mark.parametrize(
    ("text", "milli"),
    [
        ("1", 1000),
        ("500m", 500),
        ("2.5", 2500),
        ("1Ki", 1024_000),
        ("1G", 10**12),
        (4, 4000),
        ("bogus", 0),
        ("1e3", 10**6),
    ],
)
def test_quantities(text: object, milli: int) -> None:
    assert quantity_milli(text) == milli


def test_limits_without_requests_request_the_limits() -> None:
    assert pod_requests({"containers": [{"resources": {"limits": {"nvidia.com/gpu": "2"}}}]}) == {
        "nvidia.com/gpu": 2000
    }


def test_overhead_is_added() -> None:
    spec = {"containers": [{"resources": {"requests": {"cpu": "1"}}}], "overhead": {"cpu": "250m"}}
    assert pod_requests(spec) == {"cpu": 1250}
