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


def slice_cpu_percent(samples: list[tuple[float, float]], every: int) -> list[float]:
    """CPU as a share of one core over consecutive slices of `every` samples ((monotonic time, CPU seconds so far)):
    the median of these is what a window mostly cost, one busy moment aside."""
    out = []
    for a in range(0, len(samples) - every, every):
        (t0, c0), (t1, c1) = samples[a], samples[a + every]
        if t1 > t0:
            out.append(round(100 * (c1 - c0) / (t1 - t0), 1))
    return out


class Sampler:
    """Samples the summed RSS of `pids` every `interval` seconds while running; CPU from the start/stop delta, and
    per slice of `slice_samples` samples. `names` (one per pid, e.g. KEDA's operator and adapter) adds each
    process's own RSS median and CPU beside the sums."""

    def __init__(
        self, pids: list[int], interval: float = 1.0, names: list[str] | None = None, slice_samples: int = 10
    ) -> None:
        self.pids, self.interval = pids, interval
        self.names = names if names is not None and len(names) == len(pids) else None
        self.slice_samples = slice_samples
        self.samples: list[float] = []
        self.cpu: list[tuple[float, float]] = []  # (monotonic time, summed CPU seconds so far)
        self.each: dict[int, list[float]] = {p: [] for p in pids}
        self._cpu0_each: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._cpu0 = self._t0 = 0.0
        self.result: dict[str, Any] = {}

    def _sample(self) -> None:
        each = {p: rss_mib(p) for p in self.pids}
        for p, v in each.items():
            self.each[p].append(v)
        self.samples.append(sum(each.values()))
        self.cpu.append((time.monotonic(), sum(cpu_seconds(p) for p in self.pids)))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> Sampler:
        self._cpu0_each = {p: cpu_seconds(p) for p in self.pids}
        self._t0, self._cpu0 = time.monotonic(), sum(self._cpu0_each.values())
        self._sample()
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
        slices = slice_cpu_percent(self.cpu, self.slice_samples)
        if slices:
            self.result["cpu_percent_median_of_slices"] = round(statistics.median(slices), 1)
            self.result["cpu_slice_seconds"] = self.slice_samples * self.interval
        if self.names:
            self.result["processes"] = {
                n: {
                    "rss_mib_median": round(statistics.median(self.each[p]), 1) if self.each[p] else 0.0,
                    "cpu_percent_of_one_core": round(
                        100 * (cpu_seconds(p) - self._cpu0_each.get(p, 0.0)) / max(wall, 1e-9), 1
                    ),
                }
                for n, p in zip(self.names, self.pids, strict=True)
            }
