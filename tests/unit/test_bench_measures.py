"""The measuring parts of benchmarks/versus_keda.py: what they count decides which tool looks cheaper or faster."""

from __future__ import annotations

from collections import Counter

from benchmarks import apiserver_metrics
from benchmarks.versus_keda_table import FIGURES, ratio, table
from benchmarks.watching import Workloads, first_reach, first_sum_reach, value_at

METRICS = """\
# HELP apiserver_request_total [STABLE] Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",group="apps",resource="deployments",scope="namespace",verb="LIST"} 10
apiserver_request_total{code="200",group="apps",resource="deployments",scope="cluster",verb="LIST"} 5
apiserver_request_total{code="0",group="",resource="pods",scope="namespace",verb="WATCH"} 7
apiserver_request_total{code="200",group="",resource="pods",scope="namespace",verb="PATCH"} 1e+03
apiserver_request_duration_seconds_count{verb="GET"} 99
"""


def test_parse_sums_over_codes_and_scopes_and_ignores_other_series() -> None:
    counts = apiserver_metrics.parse(METRICS)
    assert counts[("LIST", "apps", "deployments")] == 15
    assert counts[("PATCH", "", "pods")] == 1000
    assert ("GET", "", "") not in counts


def test_rates_leave_out_watch_streams_and_count_writes() -> None:
    before = apiserver_metrics.Snapshot(at=0.0, counts=Counter({("LIST", "apps", "deployments"): 10}))
    after = apiserver_metrics.Snapshot(
        at=10.0,
        counts=Counter({("LIST", "apps", "deployments"): 30, ("WATCH", "", "pods"): 500, ("PATCH", "", "pods"): 50}),
    )
    r = apiserver_metrics.rates(before, after)
    assert r.requests_per_second == 7.0  # (20 LIST + 50 PATCH) / 10 s; the 500 watches are streams
    assert r.writes_per_second == 5.0
    assert r.by_verb == {"LIST": 2.0, "PATCH": 5.0}
    assert next(iter(r.top)) == "PATCH pods"


def test_first_reach_finds_the_first_time_at_or_after_the_change() -> None:
    line = [(1.0, 1), (5.0, 2), (9.0, 1), (12.0, 2)]
    assert first_reach(line, 6.0, 2) == 6.0  # already there when the change landed
    assert first_reach(line, 9.5, 2) == 12.0
    assert first_reach(line, 2.0, 2) == 5.0
    assert first_reach(line, 13.0, 3) is None
    assert first_reach([], 0.0, 1) is None


def test_first_sum_reach_adds_two_clusters() -> None:
    primary = [(0.0, 1), (4.0, 3), (30.0, 1)]  # scaled to 3, two Pending -> back to 1
    secondary = [(0.0, 0), (35.0, 1), (36.0, 2)]
    assert value_at(primary, 3.9) == 1 and value_at(primary, -1) == 0
    assert first_sum_reach(primary, secondary, 2.0, 3) == 4.0
    assert first_sum_reach(primary, secondary, 31.0, 3) == 36.0
    assert first_sum_reach(primary, secondary, 37.0, 4) is None


def pod(name: str, app: str, phase: str, unschedulable: bool = False, deleting: bool = False) -> dict[str, object]:
    meta: dict[str, object] = {"name": name, "labels": {"app": app}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    conditions = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}] if unschedulable else []
    return {"metadata": meta, "status": {"phase": phase, "conditions": conditions}}


def test_pod_counts_follow_running_pending_and_deletion() -> None:
    seen = Workloads(None, "ns", "x=y")  # not entered: no watch runs, events are fed by hand
    seen._on_pod("ADDED", pod("a", "w", "Pending"))
    seen._on_pod("MODIFIED", pod("a", "w", "Running"))
    seen._on_pod("ADDED", pod("b", "w", "Pending", unschedulable=True))
    assert seen.now(seen.running, "w") == 1 and seen.now(seen.pending, "w") == 1
    seen._on_pod("MODIFIED", pod("a", "w", "Running", deleting=True))  # terminating does not serve
    assert seen.now(seen.running, "w") == 0
    seen._on_pod("DELETED", pod("b", "w", "Pending", unschedulable=True))
    assert seen.now(seen.pending, "w") == 0
    seen._on_deployment("ADDED", {"metadata": {"name": "w"}, "spec": {"replicas": 1}})
    seen._on_deployment("MODIFIED", {"metadata": {"name": "w"}, "spec": {"replicas": 1}})
    seen._on_deployment("MODIFIED", {"metadata": {"name": "w"}, "spec": {"replicas": 3}})
    assert [v for _, v in seen.replicas["w"]] == [1, 3]  # a timeline records changes only


def run(tool: str, written: float, steady_rps: float, base_rps: float) -> dict[str, object]:
    return {
        "tool": tool,
        "objects": 10,
        "scenario": "scaling",
        "setting": "defaults",
        "changes": {"up_desired_written_seconds": {"median": written, "p95": written}},
        "steady": {"primary_api": {"requests_per_second": steady_rps}, "tool": {"rss_mib_median": 50.0}},
        "baseline": {"primary_api": {"requests_per_second": base_rps}},
    }


def test_table_ratios_are_overspill_over_keda_above_the_same_baseline() -> None:
    results = {"runs": [run("overspill", 2.0, 12.0, 10.0), run("keda", 8.0, 30.0, 10.0)]}
    rows = {line.split(" | ")[2]: line for line in table(results).splitlines()[2:]}
    assert rows["queue up → desired replicas written, median"].endswith("| 2.00 s | 8.00 s | 0.25 |")
    assert rows["API requests/s above baseline, steady"].endswith("| 2.00 /s | 20.0 /s | 0.10 |")
    assert len(rows) == len(FIGURES)


def test_ratio_edges() -> None:
    assert ratio(None, 1.0) == "—"
    assert ratio(0.0, 0.0) == "—"
    assert ratio(1.0, 0.0) == "∞"


def test_the_benchmark_writes_out_overspills_real_default_poll() -> None:
    from benchmarks.versus_keda import OVERSPILL_DEFAULT_POLL

    from overspill.api.policy import Behavior

    assert Behavior().poll_interval_seconds == OVERSPILL_DEFAULT_POLL  # else "defaults" would not be the defaults


def test_a_tool_that_never_finished_starting_shows_a_bound_not_a_blank() -> None:
    ours = {**run("overspill", 2.0, 12.0, 10.0), "first_act_all_seconds": 30.0}
    stuck = {
        "tool": "keda",
        "objects": 10,
        "scenario": "scaling",
        "setting": "defaults",
        "first_act_all_seconds": None,
        "first_act_objects": 573,
        "steady_state": False,
        "not_steady": "573 of 1000 objects acted within the phase limit of 600 s",
    }
    rows = {line.split(" | ")[2]: line for line in table({"runs": [ours, stuck]}).splitlines()[2:]}
    assert rows["start → all N objects acted"].endswith("| 30.0 s | > 600 s (573 of 10 acted) | < 0.05 |")


def test_results_merge_run_by_run_and_a_failure_never_erases_a_measured_run() -> None:
    from benchmarks.versus_keda import merged

    good = {"tool": "keda", "objects": 1000, "scenario": "scaling", "setting": "tuned", "first_act_all_seconds": 90}
    other = {"tool": "overspill", "objects": 1000, "scenario": "scaling", "setting": "defaults"}
    old = {"runs": [good, other]}
    failed = {**good, "first_act_all_seconds": None, "error": "TimeoutError: namespace vk-keda deleted"}
    new = merged(old, [failed], "cmd", "2026-11-30T00:00:00Z")
    by_tool = {r["tool"]: r for r in new["runs"]}
    assert by_tool["keda"]["first_act_all_seconds"] == 90  # kept
    assert by_tool["keda"]["later_attempt"]["error"].startswith("TimeoutError")
    assert by_tool["overspill"] == other  # runs of other keys untouched
    fresh = {**good, "first_act_all_seconds": 80}
    again = {r["tool"]: r for r in merged(new, [fresh], "cmd", "t")["runs"]}
    assert again["keda"]["first_act_all_seconds"] == 80  # a new measurement replaces the old one
    assert "later_attempt" not in again["keda"]


def test_keda_tuned_is_its_own_configuration_with_keda_s_documented_client_limits() -> None:
    from benchmarks.versus_keda import Keda, Overspill

    keda, ours = Keda.__new__(Keda), Overspill.__new__(Overspill)
    assert keda.process("defaults") == {}
    assert keda.process("tuned") == {"kube_api_qps": 200, "kube_api_burst": 300, "scaledobject_max_reconciles": 20}
    assert ours.process("tuned") == ours.process("defaults") == {}  # Overspill has no such knob: measured once


def test_the_steady_window_waits_for_every_pod_ready_then_a_quiet_spell() -> None:
    from benchmarks.settling import Settle, quiet_seconds, unsettled

    settle = Settle(["a", "b", "c"], want=2, quiet=quiet_seconds(2, 10))
    assert settle.quiet == 20
    # the lab still starting the second pods: not steady, however long ago the last write was
    assert unsettled(settle, {"a": 2, "b": 1}, last_write=0.0, now=1000.0) == "2 of 3 workloads not at 2 Ready pods"
    assert unsettled(settle, {"a": 2, "b": 2, "c": 3}, last_write=0.0, now=1000.0) is not None  # 3 is not 2
    # all Ready, but a workload was written 5 s ago: wait for two polls' worth of quiet
    ready = {"a": 2, "b": 2, "c": 2}
    why = unsettled(settle, ready, last_write=95.0, now=100.0)
    assert why is not None and why.startswith("last write to the workloads 5.0 s ago")
    assert unsettled(settle, ready, last_write=80.0, now=100.0) is None
    assert unsettled(settle, ready, last_write=None, now=100.0) is None  # nothing written since the watch began


def ready_pod(name: str, app: str, ready: bool) -> dict[str, object]:
    body = pod(name, app, "Running")
    body["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": str(ready)}]}
    return body


def test_ready_pods_are_counted_apart_from_running_and_every_event_is_a_write() -> None:
    seen = Workloads(None, "ns", "x=y")
    assert seen.last_event is None
    seen._on_pod("ADDED", ready_pod("a", "w", ready=False))
    first = seen.last_event
    assert first is not None
    assert seen.now(seen.running, "w") == 1 and seen.now(seen.ready, "w") == 0  # Running is not yet Ready
    seen._on_pod("MODIFIED", ready_pod("a", "w", ready=True))
    assert seen.now(seen.ready, "w") == 1
    assert seen.last_event is not None and seen.last_event >= first
    seen._on_pod(
        "MODIFIED",
        {
            **ready_pod("a", "w", ready=True),
            "metadata": {"name": "a", "labels": {"app": "w"}, "deletionTimestamp": "x"},
        },
    )
    assert seen.now(seen.ready, "w") == 0  # terminating does not serve
    seen._on_pod("DELETED", ready_pod("a", "w", ready=True))
    assert seen.now(seen.ready, "w") == 0 and seen.now(seen.running, "w") == 0


def test_keda_tuned_equal_is_its_client_advice_with_the_equal_poll() -> None:
    from benchmarks.versus_keda import EQUAL_POLL, KEDA_DEFAULT_POLL, KEDA_TUNED, Keda, Overspill

    keda, ours = Keda.__new__(Keda), Overspill.__new__(Overspill)
    assert keda.process("tuned-equal") == KEDA_TUNED
    assert keda.poll("tuned-equal") == keda.poll("equal") == EQUAL_POLL
    assert keda.poll("tuned") == keda.poll("defaults") == KEDA_DEFAULT_POLL
    ours.bench = keda.bench = type("B", (), {"lab": type("L", (), {"prom": "http://p"})()})()  # type: ignore[assignment]
    assert keda.config("tuned-equal")["pollingInterval"] == EQUAL_POLL
    assert "pollingInterval" not in keda.config("tuned")
    assert ours.poll("tuned-equal") == ours.poll("defaults") == EQUAL_POLL  # its default poll is the equal poll


def test_every_pair_of_runs_says_when_at_what_load_and_with_which_command() -> None:
    from benchmarks.versus_keda_table import provenance

    ours = {
        **run("overspill", 2.0, 12.0, 10.0),
        "started_utc": "2026-11-30T03:00:00Z",
        "load_average_1_5_15": [7.24, 11.5, 8.0],
        "steady": {"window": {"load_average_1_5_15_at_start": [3.14, 5.0, 6.0]}},
        "load_average_after": [2.0, 3.0, 4.0],
        "command": "python -m benchmarks.versus_keda --objects 10",
    }
    stuck = {**run("keda", 8.0, 30.0, 10.0), "measured_at": "2026-11-29T23:42:14Z", "steady": {}}
    rows = provenance({"runs": [ours, stuck]}).splitlines()[2:]
    assert rows[0] == (
        "| 10 | scaling | defaults | overspill | 2026-11-30T03:00:00Z | 7.2 / 3.1 / 2.0 "
        "| `python -m benchmarks.versus_keda --objects 10` |"
    )
    assert rows[1] == "| 10 | scaling | defaults | keda | 2026-11-29T23:42:14Z | ? / ? / ? | `?` |"
