"""Busy levels: annotation or label first, then the per-pod query; unknown is never idle."""

from __future__ import annotations

import pytest

from overspill.api import Busy, WorkloadClass
from overspill.decide.busy import BUSY_COST, PodLevels, deletion_cost, level

BY_QUERY = Busy(query="sum by (pod) (busy)")
BY_ANNOTATION = Busy(pod_annotation="ci/busy")
BOTH = Busy(pod_annotation="ci/busy", query="sum by (pod) (busy)")


@pytest.mark.parametrize(
    ("busy", "annotations", "per_pod", "expected"),
    [
        (BY_ANNOTATION, {"ci/busy": "true"}, None, 1.0),
        (BY_ANNOTATION, {"ci/busy": "false"}, None, 0.0),
        (BY_ANNOTATION, {"ci/busy": "3"}, None, 3.0),
        (BY_ANNOTATION, {"ci/busy": "maybe"}, None, None),  # unreadable: unknown
        (BY_ANNOTATION, {"ci/busy": "-1"}, None, None),  # negative: nonsense, so unknown (it counted as idle)
        (BY_ANNOTATION, {}, None, 0.0),  # no query: the annotation's absence means idle
        (BY_QUERY, {}, {"p": 2.0}, 2.0),
        (BY_QUERY, {}, {"p": 0.0}, 0.0),
        (BY_QUERY, {}, {}, None),  # the query returned nothing for this pod
        (BY_QUERY, {}, None, None),  # the query failed, or no Prometheus sees this pod
        (BOTH, {"ci/busy": "true"}, None, 1.0),  # the annotation answers even when the query cannot
        (BOTH, {}, None, None),
    ],
)
def test_level(
    busy: Busy, annotations: dict[str, str], per_pod: dict[str, float] | None, expected: float | None
) -> None:
    levels = None if per_pod is None else PodLevels.from_series(("ns", k, v) for k, v in per_pod.items())
    assert level("ns", "p", annotations, {}, busy, levels) == expected


S = tuple[str, str, float]


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        ([("ns", "p", 0.0), ("ns", "p", 3.0), ("ns", "p", 0.0)], 3.0),  # two scrape jobs: the busy one wins
        ([("ns", "p", 3.0), ("ns", "p", 0.0)], 3.0),  # in either order (the last series used to win)
        ([("ns", "p", 0.0), ("ns", "p", -1.0)], None),  # a negative sample: unknown, so busy
        ([("ns", "p", float("nan"))], None),
        ([("ns", "p", float("inf"))], None),
        ([("other", "p", 0.0)], None),  # a same-name pod in another namespace says nothing of this one
        ([("other", "p", 0.0), ("ns", "p", 2.0)], 2.0),
        ([("ns", "p", 2.0), ("other", "p", 0.0)], 2.0),
        ([("", "p", 0.0)], 0.0),  # no namespace label, nothing else named p: it is this pod's
        ([("", "p", 0.0), ("other", "p", 4.0)], None),  # no namespace label, but another p exists: ambiguous
        ([("", "p", 5.0), ("ns", "p", 0.0)], 5.0),  # both apply: the most busy
        ([("", "q", 0.0)], None),
    ],
)
def test_query_levels_by_namespace_and_pod(series: list[S], expected: float | None) -> None:
    assert level("ns", "p", {}, {}, BY_QUERY, PodLevels.from_series(series)) == expected


def test_deletion_cost_is_left_alone_when_unknown() -> None:
    assert deletion_cost(None, WorkloadClass.CI_RUNNER) is None
    assert deletion_cost(None, WorkloadClass.INFERENCE) is None
    assert deletion_cost(1.0, WorkloadClass.CI_RUNNER) == BUSY_COST
    assert deletion_cost(0.0, WorkloadClass.CI_RUNNER) == 0
    assert deletion_cost(7.0, WorkloadClass.INFERENCE) == 700
