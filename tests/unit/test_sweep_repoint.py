"""A policy re-pointed from one BurstTarget to another of the same cluster keeps its mirror (found by the
end-of-session review of issue 10; failed before: the sweep through the old target drained it)."""

from __future__ import annotations

from tests.unit.test_sweep_targets import mirror, registry, run, view, writes

__all__ = ["writes"]


def test_a_mirror_the_policy_now_wants_through_another_target_of_its_cluster_is_not_drained(
    writes: list[tuple[str, str, int | None]],
) -> None:
    """BurstTargets `old` and `new` name one cluster (a migration: `new` created, policies re-pointed, `old` kept
    until the last policy moved). The policy now names `new`; the mirror `old` placed (annotated `old`) is the very
    Deployment `new` wants. In the poll of the re-point the view still shows the `old` annotation (the apply
    through `new` rewrites it, but the watch delivers that later), so the sweep through `old` drains the mirror
    `new` wants: every idle replica is scaled away, then scaled up again the next poll."""
    shared = view(mirror("old"))
    run(registry(old=shared, new=shared), wanted={("new", "ml", "vllm")})
    assert writes == []
