"""The drain time travels with the route's record: a drain started under drainSeconds 300 keeps 300 when the spec
that said so is gone (spec.traffic removed, the policy deleted)."""

from __future__ import annotations

import json

from overspill.decide.weights import (
    DEFAULT_DRAIN,
    MCS_GROUP,
    Recorded,
    draining,
    dump_record,
    parse_record,
    record_after,
    without_burst,
)

KEY = (MCS_GROUP, "ml", "vllm-burst-aws")
NAMES = {"aws": "vllm-burst-aws"}
REF = {"group": MCS_GROUP, "kind": "ServiceImport", "name": "vllm-burst-aws", "port": 80}


def test_the_drain_time_is_written_with_the_record_and_read_back() -> None:
    rules = [{"backendRefs": [{"name": "vllm", "port": 80, "weight": 8}, {**REF, "weight": 7}]}]
    after = [{"backendRefs": [{"name": "vllm", "port": 80, "weight": 8}, {**REF, "weight": 0}]}]
    rec = record_after(rules, after, namespace="ml", names=NAMES, group=MCS_GROUP, record={}, now=100.0, drain=300)
    assert parse_record(dump_record(rec)) == {KEY: Recorded("aws", 100.0, 300.0)}


def test_without_the_spec_the_recorded_drain_time_holds() -> None:
    record = {KEY: Recorded("aws", 100.0, 300.0)}
    rules = [{"backendRefs": [{"name": "vllm", "port": 80, "weight": 8}, {**REF, "weight": 0}]}]
    kept = without_burst(rules, names={}, record=record, namespace="ml", now=200.0, drain=None)
    assert kept == rules  # 100 s of 300: the backendRef stays
    after = record_after(rules, kept, namespace="ml", names={}, group=MCS_GROUP, record=record, now=200.0)
    assert after == record  # the drain time is not lost by a write without the spec
    assert draining(after, 200.0, None) == {"aws": 200.0}
    assert draining(after, 200.0, 30.0) == {}  # the spec's own drain time, when it has one, decides
    gone = without_burst(rules, names={}, record=record, namespace="ml", now=400.0, drain=None)
    assert gone == [{"backendRefs": [{"name": "vllm", "port": 80, "weight": 8}]}]


def test_a_record_without_its_drain_time_drains_for_the_default() -> None:
    entry = {"group": MCS_GROUP, "namespace": "ml", "name": "vllm-burst-aws", "target": "aws", "zeroSince": 100}
    old = parse_record(json.dumps([entry]))
    assert draining(old, 110.0, None) == {"aws": DEFAULT_DRAIN - 10}
