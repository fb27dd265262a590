"""The busy floor in the controller's removal order (busy.keep_floor): how many replicas must stay so that the
pods the controller removes first include no busy or unknown pod. Tables of cases, like the HPA's."""

from __future__ import annotations

import pytest

from overspill.adapters.kube import DELETION_COST, pod_info
from overspill.api.policy import WorkloadClass
from overspill.decide.busy import BUSY_COST, Candidate, RemovalOrder, keep_floor, ordinal, removal_order

CI, INF = WorkloadClass.CI_RUNNER, WorkloadClass.INFERENCE
RS, ORD, UNK = RemovalOrder.REPLICA_SET, RemovalOrder.ORDINAL, RemovalOrder.UNKNOWN


def run(name: str, *, ready: bool = True, cost: int = 0, at: int | None = None) -> Candidate:
    return Candidate(name, assigned=True, phase="Running", ready=ready, cost=cost, ordinal=at)


def pending(name: str, *, node: bool = False) -> Candidate:
    return Candidate(name, assigned=node, phase="Pending", ready=False)


CASES = [
    # (pods, levels, class, protect_busy, order, floor, why)
    ([run("a"), run("b"), run("c")], {}, CI, True, RS, 0, "nothing busy: everything may go"),
    ([run("a"), run("b"), run("c")], {"a": 1.0}, CI, True, RS, 1, "Ready busy runner costed high: idle go first"),
    ([run("a", ready=False), run("b"), run("c")], {"a": 1.0}, CI, True, RS, 3, "busy and not Ready: ranks first"),
    ([run("a", ready=False), run("b", ready=False), run("c")], {"a": 1.0}, CI, True, RS, 2, "not-Ready idle first"),
    (
        [run("a", ready=False), run("b", ready=False), run("c")],
        {"a": 1.0, "b": 0.0},
        CI,
        False,
        RS,
        0,
        "busy inference replicas are not protected",
    ),
    (
        [run("a"), run("b"), run("c")],
        {"a": None, "b": 0.0, "c": 0.0},
        INF,
        False,
        RS,
        1,
        "unknown among known: costed as busy, idle go first",
    ),
    (
        [run("a", cost=5), run("b", cost=5), run("c", cost=5)],
        {"a": None, "b": None, "c": None},
        CI,
        True,
        RS,
        3,
        "all unknown: costs stay; equal costs tie, and a tie is not safe",
    ),
    (
        [run("a", cost=BUSY_COST), run("b"), run("c")],
        {"a": None, "b": None, "c": None},
        CI,
        True,
        RS,
        3,
        "all unknown: nothing is known idle, every pod is protected",
    ),
    ([run("a"), run("b"), pending("p")], {"a": 1.0}, CI, True, RS, 1, "a pod on no node goes first and holds none"),
    (
        [run("a"), run("b"), pending("p")],
        {"p": None, "a": 0.0, "b": 0.0},
        CI,
        True,
        RS,
        0,
        "a pod on no node runs nothing: its unknown level holds nothing back",
    ),
    (
        [run("a"), pending("p", node=True)],
        {"p": None, "a": 0.0},
        CI,
        True,
        RS,
        2,
        "Pending on a node, unknown: ranks before Running, nothing goes",
    ),
    ([run("a", at=0), run("b", at=1), run("c", at=2)], {"c": 1.0}, CI, True, ORD, 3, "StatefulSet: highest first"),
    ([run("a", at=0), run("b", at=1), run("c", at=2)], {"b": 1.0}, CI, True, ORD, 2, "StatefulSet: above b goes"),
    ([run("a", at=0), run("b", at=1), run("c", at=2)], {"a": 1.0}, CI, True, ORD, 1, "StatefulSet: lowest busy"),
    ([run("a", at=0), run("b"), run("c", at=2)], {"b": 1.0}, CI, True, ORD, 3, "ordinal unreadable: keep all"),
    ([run("a"), run("b"), run("c")], {"a": 1.0, "b": None}, CI, True, UNK, 2, "unknown controller: the count"),
]


@pytest.mark.parametrize(("pods", "levels", "cls", "protect", "order", "floor", "why"), CASES)
def test_keep_floor(
    pods: list[Candidate],
    levels: dict[str, float | None],
    cls: WorkloadClass,
    protect: bool,
    order: RemovalOrder,
    floor: int,
    why: str,
) -> None:
    assert keep_floor(pods, levels, cls, protect_busy=protect, order=order) == floor, why


@pytest.mark.parametrize(
    ("pod", "owner", "start", "expected"),
    [
        ("runner-0", "runner", 0, 0),
        ("runner-12", "runner", 0, 12),
        ("runner-5", "runner", 3, 2),
        ("runner-2", "runner", 3, None),  # below the start ordinal: not one of its pods
        ("runner-x", "runner", 0, None),
        ("runner-01", "runner", 0, None),  # the controller never writes a leading zero
        ("runner-a-1", "runner", 0, None),
        ("other-1", "runner", 0, None),
        ("runner-\u0661", "runner", 0, None),  # a non-ASCII digit (ARABIC-INDIC ONE) is not an ordinal
    ],
)
def test_ordinal(pod: str, owner: str, start: int, expected: int | None) -> None:
    assert ordinal(pod, owner, start) == expected


@pytest.mark.parametrize(
    ("api_version", "kind", "order"),
    [
        ("apps/v1", "Deployment", RS),
        ("apps/v1", "ReplicaSet", RS),
        ("apps/v1", "StatefulSet", ORD),
        ("actions.summerwind.dev/v1alpha1", "RunnerDeployment", UNK),
        ("apps/v1beta1", "Deployment", UNK),
    ],
)
def test_removal_order(api_version: str, kind: str, order: RemovalOrder) -> None:
    assert removal_order(api_version, kind) == order


@pytest.mark.parametrize(
    ("annotation", "cost"),
    [(None, 0), ("7", 7), ("-3", -3), ("+4", 4), (" 5", 0), ("1_000", 0), ("x", 0), ("2147483648", 0)],
)
def test_a_pods_cost_as_the_controller_reads_it(annotation: str | None, cost: int) -> None:
    annotations = {} if annotation is None else {DELETION_COST: annotation}
    pod = {
        "metadata": {"name": "r", "annotations": annotations},
        "spec": {"nodeName": "n"},
        "status": {"phase": "Unknown", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert pod_info(pod).candidate(3) == Candidate(
        "r", assigned=True, phase="Unknown", ready=True, cost=cost, ordinal=3
    )
