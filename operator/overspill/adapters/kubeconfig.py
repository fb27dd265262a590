"""A BurstTarget's kubeconfig, vetted before the client library sees it.

The kubeconfig comes from a Secret, and the official client acts on it while *loading*: an `exec` user (or an
`auth-provider` with a `cmd-path`) runs a command on the operator's host, and path fields (`tokenFile`,
`client-certificate`, `client-key`, `certificate-authority`) read the operator's own files (its service account
token, for one). Both are refused unless the BurstTarget sets `allowExecAuth: true`.

The client reads certificates and keys only from files. Embedded `*-data` material is therefore written by us,
into one private directory per target (0700, files 0600), and that directory is removed when the target goes
(`TargetCredentials.close`). While the target exists, those files hold its key material on the operator's
disk: mount an in-memory volume (emptyDir medium Memory) at $TMPDIR to keep them off the node's disk. A killed
operator never closes them: each directory's name carries its process (pid and start time), and the next start
removes those whose process is gone (`remove_stale`); an emptyDir outlives container restarts.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from kubernetes import config
from kubernetes.client import ApiClient

# user fields that run a command on the operator's host
_RUNS_COMMANDS = ("exec", "auth-provider")
# fields that name a file on the operator's host (the `*-data` variants carry the content instead)
_USER_FILES = ("tokenFile", "client-certificate", "client-key")
_CLUSTER_FILES = ("certificate-authority",)
# embedded material the client can only use from a file: (section, data field, path field)
_MATERIAL = (
    ("clusters", "cluster", "certificate-authority-data", "certificate-authority"),
    ("users", "user", "client-certificate-data", "client-certificate"),
    ("users", "user", "client-key-data", "client-key"),
)


class KubeconfigRefused(ValueError):
    """The kubeconfig is not usable as given; the message names the field and the fix, never a value."""


def _entries(data: Mapping[str, Any], section: str, inner: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for i, entry in enumerate(data.get(section) or []):
        if not isinstance(entry, dict):
            raise KubeconfigRefused(f"{section}[{i}] is not a mapping")
        body = entry.get(inner) or {}
        if not isinstance(body, dict):
            raise KubeconfigRefused(f"{section}[{i}].{inner} is not a mapping")
        out.append((f"{section}[{i}] ({entry.get('name', '?')!s:.63}).{inner}", body))
    return out


def parse(text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise KubeconfigRefused("the kubeconfig is not valid YAML") from None
    if not isinstance(data, dict) or not data.get("clusters"):
        raise KubeconfigRefused("the kubeconfig has no clusters")
    return data


def vet(data: Mapping[str, Any], *, allow_exec: bool) -> None:
    """Refuse commands and file references unless the BurstTarget allows them (allowExecAuth)."""
    users = _entries(data, "users", "user")
    clusters = _entries(data, "clusters", "cluster")
    if allow_exec:
        return
    fix = "embed the credential instead (token, client-certificate-data, client-key-data), or set allowExecAuth: true"
    for where, user in users:
        for key in _RUNS_COMMANDS:
            if key in user:
                raise KubeconfigRefused(
                    f"{where}.{key} runs a command on the operator's host: refused; {fix} on the BurstTarget"
                )
        for key in _USER_FILES:
            if key in user:
                raise KubeconfigRefused(f"{where}.{key} reads a file on the operator's host: refused; {fix}")
    for where, cluster in clusters:
        for key in _CLUSTER_FILES:
            if key in cluster:
                raise KubeconfigRefused(
                    f"{where}.{key} reads a file on the operator's host: refused; use certificate-authority-data, "
                    "or set allowExecAuth: true"
                )


_PREFIX = "overspill-creds-"


def _process_tag(pid: int) -> str | None:
    """`<pid>.<start time>` of a running process (a reused pid has another start time); None: not running."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: count fields after its closing one
    return f"{pid}.{stat.rsplit(')', 1)[1].split()[19]}"


def remove_stale() -> int:
    """Remove credential directories left by operator processes that are gone (killed before `close`); returns
    how many. Only directories named by this module and owned by this user; never one whose process runs."""
    removed = 0
    if not Path("/proc/self/stat").exists():
        return 0  # no way to tell a live process's directory from a dead one's: leave them all
    for entry in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*"):
        tag = entry.name[len(_PREFIX) :].split("-", 1)[0]
        pid = tag.split(".", 1)[0]
        if not pid.isdigit() or _process_tag(int(pid)) == tag:
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink() and entry.stat().st_uid == os.getuid():
                shutil.rmtree(entry)
                removed += 1
    return removed


class TargetCredentials:
    """The private directory holding one target's certificate and key files; `close` removes it."""

    def __init__(self, target: str) -> None:
        # mkdtemp creates the directory with mode 0700, readable by the operator's user only; its name says which
        # process owns it, so that a later start can tell a killed process's directory from a live one's
        tag = _process_tag(os.getpid()) or f"{os.getpid()}.0"
        self.path = tempfile.mkdtemp(prefix=f"{_PREFIX}{tag}-{target[:40]}-")

    def write(self, name: str, content: bytes) -> str:
        path = os.path.join(self.path, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        return path

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _materialize(data: dict[str, Any], creds: TargetCredentials) -> dict[str, Any]:
    """Embedded certificates and keys written to `creds`; the copy names those files instead."""
    out = copy.deepcopy(data)
    for section, inner, data_key, path_key in _MATERIAL:
        for i, entry in enumerate(out.get(section) or []):
            body = entry.get(inner) or {}
            if data_key not in body:
                continue
            try:
                content = base64.b64decode(body.pop(data_key), validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise KubeconfigRefused(f"{section}[{i}].{inner}.{data_key} is not valid base64") from None
            body[path_key] = creds.write(f"{section}-{i}-{path_key}", content)
    return out


def build_client(text: str, *, target: str, allow_exec: bool) -> tuple[ApiClient, TargetCredentials]:
    """A client for the target from kubeconfig text held in memory. The caller owns the credentials and must
    `close` them when the target goes (or when it builds a new client)."""
    data = parse(text)
    vet(data, allow_exec=allow_exec)
    creds = TargetCredentials(target)
    try:
        prepared = _materialize(data, creds)
        # anything else the client must write (an exec plugin's certificate) lands in the same directory
        api: ApiClient = config.new_client_from_config_dict(  # type: ignore[no-untyped-call]
            prepared, temp_file_path=creds.path
        )
    except KubeconfigRefused:
        creds.close()
        raise
    except Exception as err:  # the client's own errors may quote the config: keep only their kind
        creds.close()
        raise KubeconfigRefused(f"the kubeconfig is not usable ({type(err).__name__})") from None
    # fail fast on an unreachable target: the loop retries on its own schedule, urllib3 need not
    api.configuration.retries = 0
    return api, creds
