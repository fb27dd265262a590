"""Errors in files a person gave us (traces, policy files): where, what, and how to fix it."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad user input. The CLI prints `str(err)` and exits 2; never a traceback."""

    def __init__(self, path: str | Path, message: str, *, line: int | None = None, fix: str = "") -> None:
        self.path, self.line, self.message, self.fix = str(path), line, message, fix
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}" + (f"\n  fix: {fix}" if fix else ""))
