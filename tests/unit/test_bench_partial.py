"""versus_keda when a tool never finishes starting at N = 1,000 (KEDA did not, twice): its figures are reported
partial and marked, never dropped; and the window figures are medians of slices, not one burst-prone mean."""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from typing import Any

from benchmarks import apiserver_metrics
from benchmarks.procstat import Sampler, slice_cpu_percent
from benchmarks.versus_keda_table import table
from benchmarks.watching import Workloads


def snap(at: float, gets: int) -> apiserver_metrics.Snapshot:
    return apiserver_metrics.Snapshot(at=at, counts=Counter({("GET", "apps", "deployments"): gets}))


def test_a_window_reports_the_median_of_its_slices_beside_its_mean() -> None:
    # 10 s slices at 1/s, 1/s and one relist burst of 100/s: the mean says 34/s, the window mostly was 1/s
    snaps = [snap(0, 0), snap(10, 10), snap(20, 20), snap(30, 1020)]
    out = apiserver_metrics.sliced(snaps)
    assert out["requests_per_second_slices"] == [1.0, 1.0, 100.0]
    assert out["requests_per_second_median"] == 1.0
    assert apiserver_metrics.rates(snaps[0], snaps[-1]).requests_per_second == 34.0
    assert apiserver_metrics.sliced(snaps[:1]) == {}


def test_cpu_per_slice_is_a_share_of_one_core() -> None:
    samples = [(0.0, 0.0), (1.0, 0.5), (2.0, 1.0), (3.0, 1.1), (4.0, 1.2)]
    assert slice_cpu_percent(samples, 2) == [50.0, 10.0]
    assert slice_cpu_percent(samples[:2], 2) == []


def test_the_sampler_names_each_process_beside_the_sum() -> None:
    pids = [os.getpid(), os.getppid()]
    with Sampler(pids, interval=0.01, names=["operator", "adapter"], slice_samples=2) as s:
        while len(s.samples) < 5:
            time.sleep(0.01)
    each = s.result["processes"]
    assert set(each) == {"operator", "adapter"}
    assert each["operator"]["rss_mib_median"] > 0 and each["adapter"]["rss_mib_median"] > 0
    assert abs(s.result["rss_mib_median"] - each["operator"]["rss_mib_median"] - each["adapter"]["rss_mib_median"]) < 5
    assert "cpu_percent_median_of_slices" in s.result


class FakeLab:
    def __init__(self) -> None:
        self.set: dict[str, float] = {}

    def set_queue(self, queue: str, value: float) -> None:
        self.set[queue] = value


def test_a_change_round_moves_only_the_objects_it_is_given() -> None:
    from benchmarks.versus_keda import change_round, queue

    bench: Any = type("B", (), {"lab": FakeLab()})()
    moved = change_round(bench, [3, 5], 10, 0.0, random.Random(1))
    assert set(moved) == {3, 5}
    assert bench.lab.set == {queue(3): 10, queue(5): 10}


def test_the_acted_objects_are_those_at_the_wanted_replicas_now() -> None:
    from benchmarks.versus_keda import acted_objects, name

    seen = Workloads(None, "ns", "x=y")
    for i, replicas in enumerate([2, 1, 2, 3]):
        seen._on_deployment("ADDED", {"metadata": {"name": name(i)}, "spec": {"replicas": replicas}})
    assert acted_objects(seen, 5, 2) == [0, 2]


def overspill() -> dict[str, Any]:
    return {
        "tool": "overspill",
        "objects": 1000,
        "scenario": "scaling",
        "setting": "defaults",
        "first_act_all_seconds": 60.0,
        "steady_state": True,
        "changes": {"up_desired_written_seconds": {"median": 10.0, "p95": 20.0}},
        "steady": {
            "primary_api": {"requests_per_second": 9.0, "requests_per_second_median": 4.0},
            "tool": {"rss_mib_median": 240.0, "cpu_percent_of_one_core": 40.0, "cpu_percent_median_of_slices": 30.0},
        },
        "baseline": {"primary_api": {"requests_per_second": 1.0, "requests_per_second_median": 1.0}},
    }


def keda_stuck() -> dict[str, Any]:
    return {
        "tool": "keda",
        "objects": 1000,
        "scenario": "scaling",
        "setting": "defaults",
        "first_act_all_seconds": None,
        "first_act_objects": 400,
        "steady_state": False,
        "partial": True,
        "not_steady": "400 of 1000 objects acted within the phase limit of 600 s",
        "still_starting": {
            "window": {"end_after_tool_start_seconds": 640.0},
            "primary_api": {"requests_per_second": 60.0, "requests_per_second_median": 51.0},
            "tool": {"rss_mib_median": 300.0, "cpu_percent_of_one_core": 20.0},
        },
        "changes": {
            "up_desired_written_seconds": {"median": 40.0, "p95": 90.0},
            "partial": "over the 400 of 1000 objects at 2 replicas when the start's limit passed",
        },
        "baseline": {"primary_api": {"requests_per_second": 1.0, "requests_per_second_median": 1.0}},
    }


def test_a_tool_still_starting_has_its_figures_marked_partial_not_blank() -> None:
    text = table({"runs": [overspill(), keda_stuck()]})
    rows = {line.split(" | ")[2]: line for line in text.splitlines() if line.startswith("| 1000 |")}
    # medians of slices on both sides: 4 - 1 = 3 vs 51 - 1 = 50
    assert rows["API requests/s above baseline, steady"].endswith("| 3.00 /s | 50.0 /s * | 0.06 * |")
    assert rows["queue up → desired replicas written, median"].endswith("| 10.0 s | 40.0 s * | 0.25 * |")
    assert rows["RSS, steady (median)"].endswith("| 240 MiB | 300 MiB * | 0.80 * |")
    assert rows["CPU, steady"].endswith("| 30.0 % core | 20.0 % core * | 1.50 * |")  # median of slices if any
    assert rows["start → all N objects acted"].endswith("| 60.0 s | > 600 s (400 of 1000 acted) | < 0.10 |")
    assert (
        "* keda, N = 1000, defaults: 400 of 1000 objects acted within the phase limit of 600 s; its steady figures "
        "are from a window while it was still starting (640 s after its start), its reaction figures over the 400 "
        "of 1000 objects at 2 replicas when the start's limit passed." in text
    )


def test_a_complete_run_has_no_mark_and_no_note() -> None:
    ours = overspill()
    theirs = {**overspill(), "tool": "keda"}
    text = table({"runs": [ours, theirs]})
    assert "*" not in text


def test_a_change_whose_target_already_held_is_not_a_zero_second_reaction() -> None:
    # round 1 asks for 2 pods Running; the lab never got the workload down to 1 in round 0, so 2 were still Running
    # when the queue moved: that is no reaction at all, not one of 0 s (at N = 1,000 on a busy lab: median "0.00 s")
    from benchmarks.versus_keda import latencies, name

    seen = Workloads(None, "ns", "x=y")
    seen.replicas[name(0)] = [(0.0, 2), (5.0, 1), (20.0, 2)]  # written 1 in round 0, then 2 in round 1
    seen.running[name(0)] = [(0.0, 2)]  # the pod never went
    seen.replicas[name(1)] = [(0.0, 2), (5.0, 1), (22.0, 2)]
    seen.running[name(1)] = [(0.0, 2), (8.0, 1), (25.0, 2)]
    written, running, missed, held = latencies(seen, {0: 10.0, 1: 10.0}, 2)
    assert written == [10.0, 12.0]
    assert running == [15.0]  # only the workload that was at 1 when its queue moved
    assert held == 1 and missed == 0


def test_a_steady_window_that_opened_before_the_lab_settled_is_marked() -> None:
    ours = {
        **overspill(),
        "settling": {
            "settled": False,
            "not_settled": "238 of 1000 workloads not at 2 Ready pods",
            "waited_seconds": 540,
        },
    }
    text = table({"runs": [ours, {**overspill(), "tool": "keda"}]})
    rows = {line.split(" | ")[2]: line for line in text.splitlines() if line.startswith("| 1000 |")}
    assert rows["API requests/s above baseline, steady"].endswith("| 3.00 /s * | 3.00 /s | 1.00 * |")
    assert (
        "* overspill, N = 1000, defaults: its steady window opened when the settling limit (540 s) passed with 238 "
        "of 1000 workloads not at 2 Ready pods" in text
    )


def test_a_reaction_figure_over_fewer_changes_than_its_rounds_made_is_marked_with_how_many_missed() -> None:
    # N = 1,000 on a busy lab: round 0 (down) timed out with 700 workloads' pods not yet gone. The median of the
    # 300 that got there is a lower bound; unmarked it reads as the median of all 1,000 changes
    changes = {
        "rounds": 2,
        "objects_changed": 1000,
        "round_timeout_seconds": 240.0,
        "missed": 700,
        "held_at_change": 5,
        "up_desired_written_seconds": {"median": 10.0, "p95": 20.0, "n": 1000},
        "up_running_seconds": {"median": 60.0, "p95": 200.0, "n": 995},
        "down_desired_written_seconds": {"median": 12.0, "p95": 25.0, "n": 1000},
        "down_running_seconds": {"median": 90.0, "p95": 230.0, "n": 300},
    }
    ours = {**overspill(), "changes": changes}
    theirs = {**overspill(), "tool": "keda", "changes": {**changes, "missed": 0, "held_at_change": 0}}
    theirs["changes"]["up_running_seconds"] = {"median": 30.0, "p95": 60.0, "n": 1000}
    text = table({"runs": [ours, theirs]})
    rows = {line.split(" | ")[2]: line for line in text.splitlines() if line.startswith("| 1000 |")}
    assert rows["queue up → pods Running, median"].endswith("| 60.0 s † | 30.0 s | 2.00 † |")
    assert rows["queue up → desired replicas written, median"].endswith("| 10.0 s | 10.0 s | 1.00 |")
    assert rows["queue down → desired written, median"].endswith("| 12.0 s | 12.0 s | 1.00 |")
    assert (
        "† overspill, N = 1000, defaults: of 2000 queue changes, 700 did not reach their desired replicas or pods "
        "Running within the round limit of 240 s, 5 already held when their queue moved; the figures marked † are "
        "over the changes timed (each figure's n in the JSON): the missed ones would raise them, the held ones were "
        "left out, not counted as 0 s." in text
    )
    assert "† keda" not in text


def test_a_bound_on_a_ratio_is_rounded_away_from_it() -> None:
    """Review of issue 13: 34.95 s against KEDA's 540 s limit is 0.0647, published as "< 0.06", a bound the data
    does not support."""
    ours = {**overspill(), "first_act_all_seconds": 34.95}
    text = table({"runs": [ours, keda_stuck()]})  # KEDA's limit: 600 s, so 34.95 / 600 = 0.05825
    rows = {line.split(" | ")[2]: line for line in text.splitlines() if line.startswith("| 1000 |")}
    assert rows["start → all N objects acted"].endswith("| 35.0 s | > 600 s (400 of 1000 acted) | < 0.06 |")
    ours["first_act_all_seconds"] = 38.82  # 0.0647
    text = table({"runs": [ours, keda_stuck()]})
    rows = {line.split(" | ")[2]: line for line in text.splitlines() if line.startswith("| 1000 |")}
    assert rows["start → all N objects acted"].endswith("| 38.8 s | > 600 s (400 of 1000 acted) | < 0.07 |")
