"""Reaction time on the lab, with a 5 s poll: queue crossing the threshold -> overflow Running in the secondary,
and queue falling -> the secondary at 0. Median and p95 over N bursts (default 10).

    hack/lab up && eval "$(hack/lab env)" && .venv/bin/python -m benchmarks.reaction [--bursts 10]

Writes benchmarks/results/reaction.json. Goal: overflow Running within one poll interval + 3 s.
Stabilization and minBurstDuration are 0 here: they add deliberate hysteresis, not reaction time.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import summarize, write
from benchmarks.lab_setup import Lab, policy

NS = "bench-reaction"


def wait(check: Callable[[], bool], timeout: float = 120) -> float:
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError("condition not reached")
        time.sleep(0.1)
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bursts", type=int, default=10)
    ap.add_argument("--poll", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    lab = Lab()
    lab.install()
    lab.set_queue(NS, 0)
    log = Path(tempfile.mkdtemp()) / "operator.log"
    op = lab.start_operator(log)  # first: it releases the finalizers of a previous run's policy
    try:
        lab.fresh_namespace(NS)
        lab.deploy(NS, policy(NS, args.poll))
        wait(lambda: lab.running(lab.primary, NS) == 1)
        lab.set_queue(NS, 150)  # the first burst also learns the primary's capacity from the scheduler
        first = wait(lambda: lab.running(lab.secondary, NS) == 7)
        ups, downs = [], []
        rng = random.Random(args.seed)
        for _ in range(args.bursts):
            time.sleep(rng.uniform(0, args.poll))
            lab.set_queue(NS, 20)
            downs.append(wait(lambda: lab.running(lab.secondary, NS) == 0))
            wait(lambda: lab.running(lab.primary, NS) == 2)
            time.sleep(rng.uniform(0, args.poll))  # a random poll phase, so the samples cover all of it
            lab.set_queue(NS, 150)
            ups.append(wait(lambda: lab.running(lab.secondary, NS) == 7))
        up, down = summarize(ups), summarize(downs)
        write(
            "reaction",
            {
                "command": f"python -m benchmarks.reaction --bursts {args.bursts} --poll {args.poll}",
                "poll_seconds": args.poll,
                "first_burst_seconds_including_capacity_learning": round(first, 2),
                "queue_up_to_overflow_running_seconds": up,
                "queue_down_to_secondary_zero_seconds": down,
                "goal_seconds": args.poll + 3,
                "goal_met_at_median": up["median"] <= args.poll + 3,
                "goal_met_at_p95": up["p95"] <= args.poll + 3,
            },
        )
    finally:
        lab.set_queue(NS, 0)
        lab.remove_namespace(NS)  # while the operator runs, so its finalizer removes the mirror
        op.terminate()
        op.wait(20)


if __name__ == "__main__":
    main()
