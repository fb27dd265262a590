"""`overspill run` start-up against kmock: a missing peering CRD is one line and exit 2, never a retry loop."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from overspill.runner import PEERING_CRD, check_peering

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def kubeconfig(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "kubeconfig.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "kmock",
                "clusters": [{"name": "kmock", "cluster": {"server": url}}],
                "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "u"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
            }
        )
    )
    return path


async def test_run_without_the_peering_crd_exits_with_one_line_naming_it_and_both_fixes(
    kmock: Any, tmp_path: Path
) -> None:
    kmock.resources["overspill.dev/v1alpha1/burstpolicies"] = {"kind": "BurstPolicy", "namespaced": True}
    env = {"KUBECONFIG": str(kubeconfig(tmp_path, str(kmock.url).rstrip("/"))), "PATH": "/usr/bin:/bin"}
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("overspill")),
        "run",
        "-A",
        "--metrics-port",
        "0",
        "--liveness",
        "",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 2, err.decode()
    assert len(lines) == 1, err.decode()
    assert PEERING_CRD in lines[0]
    assert "kubectl apply" in lines[0] and "--standalone" in lines[0]
    assert "Traceback" not in err.decode() + out.decode()


async def test_served_peering_crd_passes_the_check(kmock: Any) -> None:
    kmock.resources["kopf.dev/v1/clusterkopfpeerings"] = {"kind": "ClusterKopfPeering", "namespaced": False}
    cfg = client.Configuration()
    cfg.host = str(kmock.url).rstrip("/")
    await asyncio.to_thread(check_peering, client.ApiClient(cfg), "overspill")  # raises nothing
