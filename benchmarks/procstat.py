"""Memory and CPU of a set of processes, from /proc: what a tool costs, summed over its processes."""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

TICKS = os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system time so far. The command name (field 2) may hold spaces: split after its ')'."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


class Sampler:
    """Samples the summed RSS of `pids` every `interval` seconds while running; CPU from the start/stop delta."""

    def __init__(self, pids: list[int], interval: float = 1.0) -> None:
        self.pids, self.interval = pids, interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._cpu0 = self._t0 = 0.0
        self.result: dict[str, Any] = {}

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append(sum(rss_mib(p) for p in self.pids))

    def __enter__(self) -> Sampler:
        self._t0, self._cpu0 = time.monotonic(), sum(cpu_seconds(p) for p in self.pids)
        self.samples.append(sum(rss_mib(p) for p in self.pids))
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        wall = time.monotonic() - self._t0
        cpu = sum(cpu_seconds(p) for p in self.pids) - self._cpu0
        self.result = {
            "seconds": round(wall, 1),
            "cpu_percent_of_one_core": round(100 * cpu / max(wall, 1e-9), 1),
            "rss_mib_median": round(statistics.median(self.samples), 1),
            "rss_mib_max": round(max(self.samples), 1),
        }
