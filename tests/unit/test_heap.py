"""The operator gives freed C-heap memory back: a fragmented heap shrinks in resident memory after a trim.

The heap checks run in a fresh interpreter with a clean environment: an administrator's malloc tuning (MALLOC_*,
GLIBC_TUNABLES, a preloaded allocator) in the developer's or CI's shell must not decide the outcome."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from overspill import heap

glibc = pytest.mark.skipif(heap._glibc() is None, reason="glibc only")

FRAGMENT = """
import json
from overspill import heap

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])

# what start-up does: many heap buffers (above pymalloc's 512 bytes, below the mmap threshold), then most freed
# while a few small ones stay live between them, so glibc cannot give back the heap's top
chunks = [bytes(4096) for _ in range(16384)]  # 64 MiB
kept = chunks[::16]
del chunks
fragmented = rss()
declined = heap.trim(above=1 << 40)  # less free than asked for: no trim
after_declined = rss()
trimmed_now = heap.trim()
print(json.dumps([fragmented, declined, after_declined, trimmed_now, rss(), len(kept)]))
"""


def _child(code: str, env: dict[str, str] | None = None) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD"))}
    run = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **(env or {})}, capture_output=True, text=True, check=True
    )
    return run.stdout.strip()


@glibc
def test_a_trim_returns_the_holes_that_freed_buffers_leave_in_the_heap() -> None:
    import json

    fragmented, declined, after_declined, trimmed_now, trimmed, kept = json.loads(_child(FRAGMENT))
    assert declined is False and fragmented - after_declined < 8 * 1024  # below the threshold: nothing given back
    assert trimmed_now is True
    assert fragmented - trimmed > 32 * 1024, (fragmented, trimmed)  # more than half of the 60 MiB freed
    assert kept == 1024


@glibc
def test_the_administrators_malloc_settings_win() -> None:
    configure = "from overspill import heap; print(heap.configure_malloc())"
    assert _child(configure) == "True"
    assert _child(configure, {"MALLOC_ARENA_MAX": "4"}) == "False"
    assert _child(configure, {"GLIBC_TUNABLES": "glibc.malloc.arena_max=8"}) == "False"


def test_trimming_runs_every_interval_until_stopped() -> None:
    stop = threading.Event()
    calls: list[int] = []
    third = threading.Event()

    def release() -> bool:
        calls.append(1)
        if len(calls) == 3:
            third.set()
            raise OSError("a failed trim does not end the loop")
        return True

    thread = heap.start_trimming(interval=0.001, stop=stop, release=release)
    assert third.wait(10)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert len(calls) >= 3


def test_the_operator_starts_trimming_before_kopf_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from overspill import runner

    order: list[str] = []
    monkeypatch.setattr(runner.heap, "configure_malloc", lambda: order.append("configure") or True)
    monkeypatch.setattr(runner.heap, "start_trimming", lambda: order.append("trim"))
    monkeypatch.setattr(runner.kopf, "run", lambda **_: order.append("kopf"))
    monkeypatch.setattr(runner.importlib, "import_module", lambda _: None)
    for key in ("OVERSPILL_PROMETHEUS_URL", "OVERSPILL_METRICS_PORT", "OVERSPILL_METRICS_ADDRESS"):
        monkeypatch.setenv(key, os.environ.get(key, ""))  # restored after the test
    runner.run_operator(
        prometheus_url=None,
        namespaces=None,
        all_namespaces=True,
        liveness=None,
        metrics_port=0,
        standalone=True,
        peering="x",
    )
    assert order == ["configure", "trim", "kopf"]
