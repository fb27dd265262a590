"""The Go binaries the install tests run, found where the project's scripts put them (never downloaded here)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
K8S_VERSION = "1.34.4"  # hack/build-binaries.sh's pin


def kubectl() -> str:
    """The lab's kubectl (hack/build-binaries.sh), else one on PATH (the kind path)."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    assets = os.environ.get("KUBEBUILDER_ASSETS") or str(
        Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local/share"))
        / f"kubebuilder-envtest/k8s/{K8S_VERSION}-linux-{arch}"
    )
    for candidate in (os.environ.get("OVERSPILL_LAB_KUBECTL"), f"{assets}/kubectl", shutil.which("kubectl")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("kubectl not found: run hack/build-binaries.sh (or hack/lab up), or put kubectl on PATH", pytrace=False)


def helm() -> str:
    """helm from hack/build-helm.sh: built once into a cache outside the repo (hack/test does it before pytest)."""
    out = subprocess.run([str(ROOT / "hack/build-helm.sh")], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        pytest.fail(f"hack/build-helm.sh failed:\n{out.stderr[-2000:]}", pytrace=False)
    return out.stdout.strip().splitlines()[-1]
