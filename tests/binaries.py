"""The Go binaries the install tests run, found where the project's scripts put them (never downloaded here)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def kubectl() -> str:
    """The lab's kubectl (hack/build-binaries.sh, any pinned version), else one on PATH (the kind path)."""
    data = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local/share"))
    built = sorted(data.glob("kubebuilder-envtest/k8s/*/kubectl"), reverse=True)
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    for candidate in (
        os.environ.get("OVERSPILL_LAB_KUBECTL"),
        assets and f"{assets}/kubectl",
        *map(str, built),
        shutil.which("kubectl"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("kubectl not found: run hack/build-binaries.sh (or hack/lab up), or put kubectl on PATH", pytrace=False)


def helm() -> str:
    """helm from hack/build-helm.sh: built once into a cache outside the repo (hack/test does it before pytest)."""
    out = subprocess.run([str(ROOT / "hack/build-helm.sh")], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        pytest.fail(f"hack/build-helm.sh failed:\n{out.stderr[-2000:]}", pytrace=False)
    return out.stdout.strip().splitlines()[-1]
