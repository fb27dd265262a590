"""Deletion costs over a set of pods (pure): unknown = busy, also in the ReplicaSet's choice of which pod goes."""

from __future__ import annotations

import pytest

from overspill.api.policy import WorkloadClass
from overspill.decide.busy import BUSY_COST, deletion_costs

CI = WorkloadClass.CI_RUNNER


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        ({"a": 0.0, "b": 1.0}, {"a": 0, "b": BUSY_COST}),
        # the query answered for some pods only: the others are costed as busy, not left at their (idle) cost
        ({"a": 0.0, "b": None}, {"a": 0, "b": BUSY_COST}),
        # the signal failed for every pod: nothing is scaled in, every cost stays as it was
        ({"a": None, "b": None}, {"a": None, "b": None}),
        ({}, {}),
    ],
)
def test_deletion_costs(levels: dict[str, float | None], expected: dict[str, int | None]) -> None:
    assert deletion_costs(levels, CI) == expected
