"""The picture before turning a policy on: the queue, and per strategy the replicas Ready and Pending per cluster,
the desired total, and the primary's capacity. One panel per strategy on a shared time axis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from overspill.simulate import Step

COLORS = ["#3b7dd8", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2"]


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, or a clear message when the optional extra is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # optional extra; the CLI prints a ValueError as one message, exit 2
        raise ValueError(
            "--plot needs matplotlib (the [plot] extra)\n"
            "  fix: pip install '.[plot]' in a clone of the project (or 'overspill[plot]' from your package index)"
        ) from err
    return plt


def draw(
    timelines: dict[str, list[Step]],
    out: str | Path,
    *,
    policy: str,
    trace: str,
    primary_capacity: int | None,
) -> None:
    plt = pyplot()
    fig = figure(timelines, policy=policy, trace=trace, primary_capacity=primary_capacity)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def figure(
    timelines: dict[str, list[Step]],
    *,
    policy: str,
    trace: str,
    primary_capacity: int | None,
) -> Any:
    """The matplotlib figure `draw` saves (tests read its axes)."""
    plt = pyplot()
    n = len(timelines)
    fig, axes = plt.subplots(
        n + 1, 1, sharex=True, figsize=(11, 3 + 2.6 * n), height_ratios=[1] + [1.4] * n, squeeze=False
    )
    ax_q = axes[0][0]
    cap = "unlimited" if primary_capacity is None else str(primary_capacity)
    ax_q.set_title(f"policy {policy} on {trace} (primary capacity {cap})")
    for i, (strategy, steps) in enumerate(timelines.items()):
        ts = [s.t / 60 for s in steps]
        ax_q.step(ts, [s.metric for s in steps], where="post", lw=0.9, color=COLORS[i % len(COLORS)], label=strategy)
        ax = axes[i + 1][0]
        names = sorted({k for s in steps for k in s.targets})
        ready = [[s.primary_ready for s in steps]] + [[s.targets_ready.get(k, 0) for s in steps] for k in names]
        pending = [[s.primary - s.primary_ready for s in steps]] + [
            [s.targets.get(k, 0) - s.targets_ready.get(k, 0) for s in steps] for k in names
        ]
        labels = ["primary", *names]
        colors = [COLORS[j % len(COLORS)] for j in range(len(labels))]
        layers = [x for pair in zip(ready, pending, strict=True) for x in pair]
        stack = ax.stackplot(
            ts,
            layers,
            step="post",
            colors=[c for c in colors for _ in (0, 1)],
            labels=[x for lab in labels for x in (f"{lab} Ready", f"{lab} Pending/starting")],
        )
        for j, poly in enumerate(stack):
            if j % 2:  # Pending: the same colour, hatched and faint
                poly.set_alpha(0.3)
                poly.set_hatch("///")
        ax.step(ts, [s.desired for s in steps], where="post", color="black", lw=1, label="desired")
        if primary_capacity is not None:
            ax.axhline(primary_capacity, color="#3b7dd8", ls="--", lw=1, label="primary capacity")
        ax.set_ylabel(f"{strategy}\nreplicas")
        ax.legend(loc="upper left", fontsize=7, ncol=2)
    ax_q.set_ylabel("queue (requests waiting)")
    if n > 1:
        ax_q.legend(loc="upper left", fontsize=7)
    axes[-1][0].set_xlabel("minutes from the trace start")
    fig.tight_layout()
    return fig
