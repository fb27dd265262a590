"""The operator gives freed C-heap memory back: a fragmented heap shrinks in resident memory after a trim."""

from __future__ import annotations

import threading

import pytest

from overspill import heap


def _rss_anon_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError("no RssAnon in /proc/self/status")


glibc = pytest.mark.skipif(heap._glibc() is None, reason="glibc only")


@glibc
def test_a_trim_returns_the_holes_that_freed_buffers_leave_in_the_heap() -> None:
    # what start-up does: many heap buffers (above pymalloc's 512 bytes, below the mmap threshold), then most
    # freed while a few small ones stay live between them, so glibc cannot give back the heap's top
    chunks = [bytes(4096) for _ in range(16384)]  # 64 MiB
    kept = chunks[::16]
    del chunks
    fragmented = _rss_anon_kib()
    assert heap.trim()
    trimmed = _rss_anon_kib()
    assert fragmented - trimmed > 32 * 1024, (fragmented, trimmed)  # more than half of the 60 MiB freed
    assert len(kept) == 1024


def test_the_administrators_malloc_settings_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert heap.configure_malloc() is False


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
