"""A progress bar on stderr for long replays and searches (rich); `auto` shows it only on a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(label: str, total: float, mode: str, *, long: bool = True) -> Iterator[Callable[[float], None] | None]:
    """Yields a function taking progress in [0, total], or None when no bar is shown: `always`; `never`; `auto`,
    on a terminal when the caller says the work is `long`."""
    show = mode == "always" or (mode == "auto" and long and sys.stderr.isatty())
    if not show:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(file=sys.stderr, force_terminal=mode == "always" or None)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(), console=console, transient=False
    ) as bar:
        task = bar.add_task(label, total=max(total, 1.0))
        yield lambda t: bar.update(task, completed=min(t, total))
