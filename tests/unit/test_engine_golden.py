"""Speed work on the engine and the replay changes no decision: every field of every decision (message included),
every replay timeline and summary, byte for byte, against the record in tests/data/golden-decisions.json
(`python -m benchmarks.golden` explains; the Azure traces are compared by `benchmarks.simulator`)."""

from __future__ import annotations

from benchmarks import golden


def test_engine_and_replay_decide_as_recorded() -> None:
    assert golden.compare(None) == []
