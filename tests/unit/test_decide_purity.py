"""The decision core does no I/O: it imports no client library and reads no clock."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

DECIDE = Path(__file__).resolve().parents[2] / "operator" / "overspill" / "decide"
PURE_FILES = [*DECIDE.glob("*.py"), DECIDE.parent / "carry.py"]  # carry: what a burst takes along
CLIENTS = ("kopf", "kubernetes", "prometheus_api_client", "aiohttp", "requests", "urllib3")
FORBIDDEN = (
    "kopf",
    "kubernetes",
    "prometheus_api_client",
    "aiohttp",
    "requests",
    "urllib3",
    "socket",
    "time",
    "datetime",
    "asyncio",
    "os",
    "random",
)


def test_decide_imports_nothing_that_does_io() -> None:
    mods = "overspill.decide, overspill.carry"
    code = f"import sys, {mods};bad=[m for m in {CLIENTS!r} if m in sys.modules];print(','.join(bad))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=DECIDE.parents[1]
    )
    assert out.stdout.strip() == "", f"overspill.decide pulled in: {out.stdout}"


def test_decide_sources_name_no_io_module_or_clock() -> None:
    offenders = []
    for path in PURE_FILES:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            offenders += [f"{path.name}: {n}" for n in names if n in FORBIDDEN]
    assert offenders == []


def test_import_linter_contracts_hold() -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(linter)], check=False, capture_output=True, text=True, cwd=DECIDE.parents[2])
    assert out.returncode == 0, out.stdout + out.stderr
