"""The picture before turning a policy on: queue, desired replicas, and replicas stacked per cluster."""

from __future__ import annotations

from pathlib import Path

from overspill.simulate import Step


def draw(steps: list[Step], out: str | Path, title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # optional extra
        raise SystemExit("--plot needs matplotlib: pip install 'overspill[plot]'") from err
    ts = [s.t / 60 for s in steps]
    names = sorted({n for s in steps for n in s.targets})
    fig, (ax_q, ax_r) = plt.subplots(2, 1, sharex=True, figsize=(11, 6.5), height_ratios=[1, 1.4])
    ax_q.plot(ts, [s.metric for s in steps], color="#444", lw=0.9)
    ax_q.set_ylabel("queue (metric)")
    ax_q.set_title(title)
    layers = [[s.primary for s in steps]] + [[s.targets.get(n, 0) for s in steps] for n in names]
    ax_r.stackplot(
        ts,
        layers,
        labels=["primary", *names],
        step="post",
        alpha=0.85,
        colors=["#3b7dd8", "#f28e2b", "#59a14f", "#e15759", "#b07aa1"][: len(layers)],
    )
    ax_r.step(ts, [s.desired for s in steps], where="post", color="black", lw=1, label="desired")
    ax_r.set_ylabel("replicas")
    ax_r.set_xlabel("minutes")
    ax_r.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
