"""Kubeconfigs from a BurstTarget's Secret: no commands, no host files, key material in a private directory."""

from __future__ import annotations

import base64
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from overspill.adapters.kubeconfig import KubeconfigRefused, build_client

TOKEN = "kubeconfig-token-canary"  # noqa: S105 - a marker, not a credential


def kubeconfig(user: dict[str, Any], cluster: dict[str, Any] | None = None) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "c",
            "clusters": [{"name": "c", "cluster": cluster or {"server": "https://127.0.0.1:1"}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            "users": [{"name": "u", "user": user}],
        }
    )


def exec_user(marker: Path) -> dict[str, Any]:
    """An exec plugin that leaves a file behind if it ever runs."""
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "sh",
            "args": [
                "-c",
                f'touch {marker}; echo \'{{"apiVersion":"client.authentication.k8s.io/v1beta1",'
                f'"kind":"ExecCredential","status":{{"token":"{TOKEN}"}}}}\'',
            ],
        }
    }


def test_an_exec_plugin_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(KubeconfigRefused) as info:
        build_client(kubeconfig(exec_user(marker)), target="aws", allow_exec=False)
    assert "users[0] (u).user.exec runs a command" in str(info.value)
    assert "allowExecAuth: true" in str(info.value)
    assert not marker.exists()


def test_allow_exec_auth_lets_the_plugin_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    api, creds = build_client(kubeconfig(exec_user(marker)), target="aws", allow_exec=True)
    try:
        assert marker.exists()
        assert api.configuration.api_key.get("BearerToken") == f"Bearer {TOKEN}"
    finally:
        creds.close()


@pytest.mark.parametrize(
    ("user", "cluster", "field"),
    [
        ({"tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"}, None, "user.tokenFile"),
        ({"client-certificate": "/etc/ssl/a.crt", "client-key": "/etc/ssl/a.key"}, None, "user.client-certificate"),
        (
            {"token": TOKEN},
            {"server": "https://127.0.0.1:1", "certificate-authority": "/etc/ssl/ca.crt"},
            "cluster.certificate-authority",
        ),
        ({"auth-provider": {"name": "oidc", "config": {"cmd-path": "/bin/true"}}}, None, "user.auth-provider"),
    ],
)
def test_host_files_and_auth_providers_are_refused(
    user: dict[str, Any], cluster: dict[str, Any] | None, field: str
) -> None:
    with pytest.raises(KubeconfigRefused) as info:
        build_client(kubeconfig(user, cluster), target="aws", allow_exec=False)
    assert field in str(info.value)
    assert TOKEN not in str(info.value)


def test_embedded_key_material_lives_in_a_private_directory_removed_with_the_target() -> None:
    ca, crt, key = b"CA-BYTES", b"CERT-BYTES", b"KEY-BYTES"
    text = kubeconfig(
        {
            "client-certificate-data": base64.b64encode(crt).decode(),
            "client-key-data": base64.b64encode(key).decode(),
        },
        {"server": "https://127.0.0.1:1", "certificate-authority-data": base64.b64encode(ca).decode()},
    )
    api, creds = build_client(text, target="aws", allow_exec=False)
    cfg = api.configuration
    files = [cfg.ssl_ca_cert, cfg.cert_file, cfg.key_file]
    assert [Path(f).read_bytes() for f in files] == [ca, crt, key]
    assert all(os.path.dirname(f) == creds.path for f in files)
    assert stat.S_IMODE(os.stat(creds.path).st_mode) == 0o700
    assert all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in files)
    creds.close()
    assert not os.path.exists(creds.path)


def test_a_token_in_the_kubeconfig_works_and_is_never_in_messages() -> None:
    api, creds = build_client(kubeconfig({"token": TOKEN}), target="aws", allow_exec=False)
    creds.close()
    assert api.configuration.api_key.get("BearerToken") == f"Bearer {TOKEN}"
    with pytest.raises(KubeconfigRefused) as info:
        build_client("users: [" + TOKEN, target="aws", allow_exec=False)
    assert TOKEN not in str(info.value)


def test_key_material_of_a_killed_operator_is_removed_at_the_next_start(tmp_path: Path) -> None:
    """A SIGKILLed operator (OOM, a node drain gone wrong) never runs `close`: its directories, key files and
    all, stayed in $TMPDIR; an emptyDir outlives container restarts, so they piled up there across restarts."""
    from overspill.adapters.kubeconfig import TargetCredentials, remove_stale

    tempfile.tempdir = str(tmp_path)
    try:
        dead = TargetCredentials("aws")
        dead.write("users-0-client-key", b"KEY-BYTES")
        # as if its process were gone: another process id (one that cannot exist) and start time
        gone = tmp_path / os.path.basename(dead.path).replace(f"{os.getpid()}.", "4194999.", 1)
        os.rename(dead.path, gone)
        alive = TargetCredentials("aws")  # this process: in use
        other = tmp_path / "overspill-aws-x1"  # not one of ours by name: never touched
        other.mkdir()
        assert remove_stale() == 1
        assert not gone.exists()
        assert os.path.exists(alive.path) and other.exists()
        alive.close()
    finally:
        tempfile.tempdir = None
