"""OVERSPILL_POLICY_SELECTOR: the label filter that splits policies over several operator processes."""

from __future__ import annotations

import pytest

from overspill.handlers import shard_labels


def test_unset_selects_every_policy() -> None:
    assert shard_labels(None) is None
    assert shard_labels("") is None


def test_equality_terms_become_kopf_label_filters() -> None:
    assert shard_labels("shard=a") == {"shard": "a"}
    assert shard_labels("team=ml, shard=b") == {"team": "ml", "shard": "b"}


@pytest.mark.parametrize("bad", ["shard", "=a", "shard!=a", "a=b,x"])
def test_other_forms_are_refused_with_the_fix(bad: str) -> None:
    with pytest.raises(ValueError, match="key=value"):
        shard_labels(bad)
