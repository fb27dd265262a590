"""The Markdown tables of docs/benchmarks.md (KEDA section), from benchmarks/results/versus_keda.json."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Run = dict[str, Any]


def _get(run: Run, *path: str) -> float | None:
    value: Any = run
    for key in path:
        if not isinstance(value, dict) or value.get(key) is None:
            return None
        value = value[key]
    return float(value)


def _api(kind: str) -> Callable[[Run], float | None]:
    """Requests per second to the primary's API server above the same lab's rate with no tool (the baseline): the
    median of the windows' 10 s slices where both windows have them, else the windows' means."""

    def figure(run: Run) -> float | None:
        for key in ("requests_per_second_median", "requests_per_second"):
            total, base = _get(run, kind, "primary_api", key), _get(run, "baseline", "primary_api", key)
            if total is not None and base is not None:
                return max(0.0, total - base)
        return None

    return figure


START = "start → all N objects acted"

# (label, unit, how to read it from a run); lower is better for every one
FIGURES: list[tuple[str, str, Callable[[Run], float | None]]] = [
    (
        "queue up → desired replicas written, median",
        "s",
        lambda r: _get(r, "changes", "up_desired_written_seconds", "median"),
    ),
    (
        "queue up → desired replicas written, p95",
        "s",
        lambda r: _get(r, "changes", "up_desired_written_seconds", "p95"),
    ),
    ("queue up → pods Running, median", "s", lambda r: _get(r, "changes", "up_running_seconds", "median")),
    ("queue up → pods Running, p95", "s", lambda r: _get(r, "changes", "up_running_seconds", "p95")),
    (
        "queue down → desired written, median",
        "s",
        lambda r: _get(r, "changes", "down_desired_written_seconds", "median"),
    ),
    (START, "s", lambda r: _get(r, "first_act_all_seconds")),
    ("API requests/s above baseline, steady", "/s", _api("steady")),
    ("API requests/s above baseline, during changes", "/s", _api("during_changes")),
    ("RSS, steady (median)", "MiB", lambda r: _get(r, "steady", "tool", "rss_mib_median")),
    ("RSS, during changes (max)", "MiB", lambda r: _get(r, "during_changes", "tool", "rss_mib_max")),
    ("CPU, steady", "% core", lambda r: _cpu(r, "steady")),
    ("CPU, during changes", "% core", lambda r: _get(r, "during_changes", "tool", "cpu_percent_of_one_core")),
    (
        "primary API server + controller-manager CPU, steady",
        "% core",
        lambda r: _get(r, "steady", "primary_control_plane", "cpu_percent_of_one_core"),
    ),
]


def _cpu(run: Run, kind: str) -> float | None:
    """The median of the window's 10 s slices where it has them, else its whole length's share of a core."""
    median = _get(run, kind, "tool", "cpu_percent_median_of_slices")
    return median if median is not None else _get(run, kind, "tool", "cpu_percent_of_one_core")


PARTIAL = " *"
MISSED = " †"
# the reaction figures' summaries in a run's `changes`, and whether the rounds that feed them move the queue up
REACTIONS = {
    "queue up → desired replicas written": ("up_desired_written_seconds", True),
    "queue up → pods Running": ("up_running_seconds", True),
    "queue down → desired written": ("down_desired_written_seconds", False),
}


def short(run: Run, label: str) -> bool:
    """Whether a reaction figure covers fewer changes than its rounds made: changes that never got there within the
    round limit (or already held when the queue moved) are not in its median, which is then a lower bound the table
    must not pass off as the median of every change (at N = 1,000 on a busy lab, hundreds may not get there)."""
    key = next((k for prefix, k in REACTIONS.items() if label.startswith(prefix)), None)
    changes = run.get("changes") or {}
    if key is None or not isinstance(changes.get(key[0]), dict) or "n" not in changes[key[0]]:
        return False
    rounds = int(changes.get("rounds") or 0)
    made = int(changes.get("objects_changed") or run["objects"]) * (rounds // 2 if key[1] else (rounds + 1) // 2)
    return int(changes[key[0]]["n"]) < made


def missed(run: Run) -> str:
    """The footnote of a run with short reaction figures: how many changes did not get there, and why."""
    changes = run.get("changes") or {}
    made = int(changes.get("objects_changed") or run["objects"]) * int(changes.get("rounds") or 0)
    limit = changes.get("round_timeout_seconds")
    within = f" within the round limit of {float(limit):.0f} s" if limit else ""
    held = f", {changes['held_at_change']} already held when their queue moved" if changes.get("held_at_change") else ""
    return (
        f"{MISSED.strip()} {run['tool']}, N = {run['objects']}, {run['setting']}: of {made} queue changes, "
        f"{changes.get('missed', 0)} did not reach their desired replicas or pods Running{within}{held}; the figures "
        f"marked {MISSED.strip()} are over the changes timed (each figure's n in the JSON): the missed ones would "
        "raise them, the held ones were left out, not counted as 0 s."
    )


def view(run: Run) -> tuple[Run, bool]:
    """`run` as the table reads it, and whether its figures are partial: a tool that never acted on all N within
    the limit has its window while still starting in place of a steady one, and reaction figures over the objects
    it had acted on; a steady window that opened before the lab settled (its limit passed) holds the lab's own
    start. Shown marked, with a note saying so, never as blanks (a blank hides the finding)."""
    unsettled = (run.get("settling") or {}).get("settled") is False
    if run.get("steady") is not None or run.get("still_starting") is None:
        return run, bool(run.get("partial")) or unsettled
    return {**run, "steady": run["still_starting"]}, True


def note(run: Run) -> str:
    """The footnote of a partial run: how far it got, and what its figures cover."""
    head = f"{PARTIAL.strip()} {run['tool']}, N = {run['objects']}, {run['setting']}: "
    if run.get("steady") is not None:  # it acted on all N; its steady window did not wait for the lab to settle
        settling = run.get("settling") or {}
        return head + (
            f"its steady window opened when the settling limit ({settling.get('waited_seconds', '?')} s) passed with "
            f"{settling.get('not_settled', 'the lab not settled')}: the lab's own start is in its steady figures."
        )
    changes = (run.get("changes") or {}).get("partial")
    window = _get(run, "still_starting", "window", "end_after_tool_start_seconds")
    at = f" ({window:.0f} s after its start)" if window is not None else ""
    text = (
        f"{head}{run.get('not_steady', 'partial')}; its steady figures are from a window while it was still "
        f"starting{at}"
    )
    return text + (f", its reaction figures {changes}." if changes else "; no reaction figures.")


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    text = f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return f"{text} {unit}"


def _limit(run: Run) -> float | None:
    """The phase limit a run did not reach all N within, from how it says so (`not_steady`)."""
    text = run.get("not_steady")
    if not isinstance(text, str) or "limit of " not in text:
        return None
    return float(text.split("limit of ")[1].split()[0])


def _started(run: Run, n: int, value: float | None) -> str:
    limit = _limit(run)
    if value is not None or limit is None:
        return _fmt(value, "s")
    return f"> {limit:.0f} s ({run.get('first_act_objects', 0)} of {n} acted)"


def _bound(ours: float | None, theirs: float | None, our_run: Run, their_run: Run) -> str:
    # a bound is rounded away from the ratio it bounds (up for "<", down for ">"): 0.0647 is "< 0.07", never the
    # tighter "< 0.06" the data does not support
    if ours is not None and theirs is None and (limit := _limit(their_run)):
        return f"< {math.ceil(ours / limit * 100) / 100:.2f}"
    if theirs is not None and ours is None and (limit := _limit(our_run)):
        return f"> {math.floor(limit / theirs * 100) / 100:.2f}"
    return ratio(ours, theirs)


def ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None:
        return "—"
    if theirs == 0:
        return "—" if ours == 0 else "∞"
    return f"{ours / theirs:.2f}"


def pairs(results: dict[str, Any], scenario: str) -> list[tuple[int, str, Run, Run]]:
    by_key = {(r["objects"], r["scenario"], r["setting"], r["tool"]): r for r in results["runs"]}
    out = []
    for n, sc, setting, tool in sorted(by_key):
        if sc == scenario and tool == "overspill" and (n, sc, setting, "keda") in by_key:
            out.append((n, setting, by_key[(n, sc, setting, tool)], by_key[(n, sc, setting, "keda")]))
    return out


def table(results: dict[str, Any]) -> str:
    lines = [
        "| N | setting | figure | Overspill | KEDA | Overspill / KEDA |",
        "|---|---|---|---|---|---|",
    ]
    notes: list[str] = []
    for n, setting, our_run, their_run in pairs(results, "scaling"):
        (ours, our_part), (theirs, their_part) = view(our_run), view(their_run)
        notes += [note(r) for r, part in ((our_run, our_part), (their_run, their_part)) if part]
        notes += [missed(r) for r in (our_run, their_run) if any(short(r, label) for label in REACTIONS)]
        for label, unit, read in FIGURES:
            a, b = read(ours), read(theirs)
            marks = [PARTIAL if part and v is not None else "" for part, v in ((our_part, a), (their_part, b))]
            marks = [m + (MISSED if short(r, label) else "") for m, r in zip(marks, (our_run, their_run), strict=True)]
            cells = [_fmt(a, unit) + marks[0], _fmt(b, unit) + marks[1], ratio(a, b)]
            if cells[2] != "—":  # the ratio carries either side's marks
                cells[2] += "".join(m for m in (PARTIAL, MISSED) if any(m in k for k in marks))
            if label == START:  # a tool that never got there within the phase limit: a bound, not a blank
                cells = [_started(ours, n, a), _started(theirs, n, b), _bound(a, b, ours, theirs)]
            lines.append(f"| {n} | {setting} | {label} | {' | '.join(cells)} |")
    if notes:
        lines += ["", *notes]
    full = pairs(results, "full")
    if full:
        lines += [
            "",
            "| N | setting | primary full: replicas wanted | objects acted (Overspill / KEDA) | serving (Overspill) "
            "| serving (KEDA) | Pending (Overspill) | Pending (KEDA) | all serving, median (Overspill) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for n, setting, ours, theirs in full:
            if "error" in ours or "error" in theirs:
                continue
            serving = [int(r["primary_running"]) + int(r["secondary_running"]) for r in (ours, theirs)]
            acted = " / ".join(str(r.get("objects_acted", "?")) for r in (ours, theirs))
            median = _get(ours, "all_serving_seconds", "median")
            lines.append(
                f"| {n} | {setting} | {ours['wanted_replicas']} | {acted} | {serving[0]} | {serving[1]} "
                f"| {ours['primary_pending']} | {theirs['primary_pending']} | {_fmt(median, 's')} |"
            )
    return "\n".join(lines)


def _loads(run: Run) -> str:
    """The machine's 1-minute load average at the run's start, its steady window's start and after it."""
    marks = [
        run.get("load_average_1_5_15"),
        (run.get("steady") or run.get("still_starting") or {}).get("window", {}).get("load_average_1_5_15_at_start"),
        run.get("load_average_after"),
    ]
    return " / ".join("?" if not m else f"{m[0]:.1f}" for m in marks)


def provenance(results: dict[str, Any]) -> str:
    """Which run each figure of the tables comes from: when, at what machine load, with which command (a pair of
    runs from two invocations, or under different loads, says so here)."""
    lines = [
        "| N | scenario | setting | tool | started (UTC; older runs: saved) | load: start / steady window / after "
        "| command |",
        "|---|---|---|---|---|---|---|",
    ]
    for scenario in ("scaling", "full"):
        for n, setting, ours, theirs in pairs(results, scenario):
            for run in (ours, theirs):
                stamp = str(run.get("started_utc") or run.get("measured_at") or "?")
                lines.append(
                    f"| {n} | {scenario} | {setting} | {run['tool']} | {stamp} | {_loads(run)} "
                    f"| `{run.get('command', '?')}` |"
                )
    return "\n".join(lines)
