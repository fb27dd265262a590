"""KEDA beside Overspill on the lab's primary, for benchmarks only: `hack/keda up|stop|down|status`.

`hack/keda build` (hack/keda-build.sh) builds KEDA's operator and metrics adapter from the Go module proxy into a
cache outside the repo. `up` runs both as plain processes on loopback against the lab's primary, every default port
moved, with a local CA and a localhost certificate in --cert-dir (no cert rotation: nothing in the cluster to
rotate into), KEDA's CRDs from its module's config/crd (server-side apply: the ScaledJob CRD is too large for the
last-applied annotation), and the external metrics APIService pointing at an ExternalName Service for localhost,
so the lab's own HPA controller reads KEDA's metrics through the aggregation layer exactly as in a cluster.

The processes are recorded in the lab's process table (hack/lab.py), so `hack/keda stop|down` and `hack/lab down`
stop them, and nothing else. `stop` stops the processes only (a benchmark restarts KEDA to time its start); `down`
also removes the APIService and its Service, so an unavailable aggregated API never breaks the lab's discovery.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from ssl import CERT_NONE, create_default_context
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lab  # the lab's process table, kubectl and state folder: one place that knows what the lab started

KEDA_VERSION = os.environ.get("OVERSPILL_KEDA_VERSION", "v2.21.0")
NAMESPACE = "keda"
# KEDA's defaults are 8080/8081/9666 (operator) and 443 -> 6443/8080 (adapter): all moved, all on loopback.
PORTS = {
    "operator-metrics": 19680,
    "operator-health": 19681,
    "operator-grpc": 19682,
    "adapter-https": 19643,
    "adapter-metrics": 19684,
}
PROCESSES = ("keda-operator", "keda-adapter")
APISERVICE = "v1beta1.external.metrics.k8s.io"
SERVICE = "keda-metrics-apiserver"


def cache_dir() -> Path:
    base = os.environ.get("OVERSPILL_KEDA_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "overspill/keda"
    )
    return Path(base) / KEDA_VERSION


def state() -> Path:
    return lab.STATE / "keda"


def primary_kubeconfig() -> str:
    return os.environ.get("OVERSPILL_LAB_PRIMARY_KUBECONFIG") or str(lab.kubeconfig("primary"))


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    out = subprocess.run(
        [lab.kubectl_bin(), "--kubeconfig", primary_kubeconfig(), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and out.returncode != 0:
        lab.die(f"kubectl {' '.join(args)}: {out.stderr.strip()[-1500:]}")
    return out.stdout


def openssl(*args: str) -> None:
    out = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        lab.die(f"openssl {args[0]} failed: {out.stderr.strip()[-800:]} (needs openssl on PATH)")


def make_certs(certs: Path) -> None:
    """A local CA and one certificate for localhost: the adapter's serving cert, and both ends of KEDA's mTLS gRPC
    link between adapter and operator (they read ca.crt, tls.crt, tls.key from --cert-dir)."""
    if (certs / "tls.crt").exists():
        return
    certs.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=overspill-lab-keda-ca",
            "-keyout", str(certs / "ca.key"), "-out", str(certs / "ca.crt"))  # fmt: skip
    # the aggregator dials localhost but checks the name <service>.<namespace>.svc
    sans = [
        "DNS:localhost",
        "IP:127.0.0.1",
        f"DNS:{SERVICE}.{NAMESPACE}.svc",
        f"DNS:keda-operator.{NAMESPACE}.svc",
        f"DNS:keda-operator.{NAMESPACE}.svc.cluster.local",
    ]
    ext = certs / "ext.cnf"
    ext.write_text(
        f"subjectAltName={','.join(sans)}\nextendedKeyUsage=serverAuth,clientAuth\n"
        "keyUsage=digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n"
    )
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", str(certs / "tls.key"), "-out", str(certs / "tls.csr"))  # fmt: skip
    openssl("x509", "-req", "-in", str(certs / "tls.csr"), "-CA", str(certs / "ca.crt"), "-CAkey",
            str(certs / "ca.key"), "-CAcreateserial", "-days", "2", "-extfile", str(ext),
            "-out", str(certs / "tls.crt"))  # fmt: skip
    for f in certs.iterdir():
        f.chmod(0o600)


def apply_cluster_objects(certs: Path) -> None:
    crds = cache_dir() / "crd"
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crds))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(crds))
    ca = base64.b64encode((certs / "ca.crt").read_bytes()).decode()
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            # ExternalName: the aggregator resolves it to https://localhost:<APIService port>
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE, "namespace": NAMESPACE},
            "spec": {"type": "ExternalName", "externalName": "localhost"},
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": APISERVICE},
            "spec": {
                "service": {"name": SERVICE, "namespace": NAMESPACE, "port": PORTS["adapter-https"]},
                "group": "external.metrics.k8s.io",
                "version": "v1beta1",
                "caBundle": ca,
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        },
    ]
    kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))


def environment(tuning: argparse.Namespace | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "KUBECONFIG": primary_kubeconfig(),
        "WATCH_NAMESPACE": "",
        "POD_NAMESPACE": NAMESPACE,
        "KEDA_CLUSTER_OBJECT_NAMESPACE": NAMESPACE,
    }
    if tuning is not None and tuning.scaledobject_max_reconciles is not None:
        # an environment variable, not a flag, in v2.21 (keda.sh/troubleshooting: API server throttling)
        env["KEDA_SCALEDOBJECT_CTRL_MAX_RECONCILES"] = str(tuning.scaledobject_max_reconciles)
    return env


def client_flags(tuning: argparse.Namespace | None) -> list[str]:
    """KEDA's own client limits (both processes take the same two flags); none given: KEDA's defaults, 20 / 30."""
    if tuning is None:
        return []
    flags = [f"--kube-api-qps={tuning.kube_api_qps}"] if tuning.kube_api_qps is not None else []
    return flags + ([f"--kube-api-burst={tuning.kube_api_burst}"] if tuning.kube_api_burst is not None else [])


def commands(certs: Path, tuning: argparse.Namespace | None = None) -> dict[str, list[str]]:
    binaries, kc = cache_dir() / "bin", primary_kubeconfig()
    extra = client_flags(tuning)
    return {
        "keda-operator": [
            str(binaries / "keda"),
            f"--metrics-bind-address=127.0.0.1:{PORTS['operator-metrics']}",
            f"--health-probe-bind-address=127.0.0.1:{PORTS['operator-health']}",
            f"--metrics-service-bind-address=127.0.0.1:{PORTS['operator-grpc']}",
            f"--cert-dir={certs}",
            "--enable-cert-rotation=false",
            "--leader-elect=false",
            "--zap-log-level=info",
            *extra,
        ],
        "keda-adapter": [
            str(binaries / "keda-adapter"),
            "--bind-address=127.0.0.1",
            f"--secure-port={PORTS['adapter-https']}",
            f"--port={PORTS['adapter-metrics']}",
            f"--cert-dir={certs}",
            f"--tls-cert-file={certs / 'tls.crt'}",
            f"--tls-private-key-file={certs / 'tls.key'}",
            # no --client-ca-file: the adapter then trusts the cluster's own client CA (from
            # kube-system/extension-apiserver-authentication), which signed the API server's proxy client cert
            f"--metrics-service-address=127.0.0.1:{PORTS['operator-grpc']}",
            "--metrics-service-grpc-authority=localhost",
            f"--lister-kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}",
            "--zap-log-level=error",
            *extra,
        ],
    }


def spawn(name: str, cmd: list[str], env: dict[str, str]) -> None:
    """lab.spawn with KEDA's environment: recorded in the lab's table so that every `down` can stop it."""
    pids = lab.load_pids()
    if name in pids and lab.ours(pids[name]):
        return
    log = open(state() / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    pids[name] = {"pid": proc.pid, "cmd": cmd}
    lab.save_pids(pids)


def wait_ready(timeout: float) -> None:
    deadline = time.time() + timeout
    lab.wait_http(f"http://127.0.0.1:{PORTS['operator-health']}/readyz", timeout, "KEDA operator")
    insecure = create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = CERT_NONE  # a readiness probe of our own loopback process
    while time.time() < deadline:
        for name in PROCESSES:
            entry = lab.load_pids().get(name)
            if entry is None or not lab.ours(entry):
                lab.die(f"{name} exited; see {state() / (name + '.log')}")
        available = kubectl(
            "get", "apiservice", APISERVICE, "-o", "jsonpath={.status.conditions[?(@.type=='Available')].status}",
            check=False,
        )  # fmt: skip
        if available.strip() == "True":
            return
        time.sleep(0.5)
    try:
        urllib.request.urlopen(f"https://127.0.0.1:{PORTS['adapter-https']}/readyz", timeout=2, context=insecure)
    except OSError as e:
        lab.die(f"KEDA metrics adapter not ready ({e}); see {state() / 'keda-adapter.log'}")
    reason = kubectl("get", "apiservice", APISERVICE, "-o", "jsonpath={.status.conditions}", check=False)
    lab.die(f"APIService {APISERVICE} not Available within {timeout:.0f}s: {reason}")


def cmd_up(args: argparse.Namespace) -> None:
    start = time.time()
    binaries = cache_dir() / "bin"
    if not all((binaries / b).is_file() for b in ("keda", "keda-adapter")) or not (cache_dir() / "crd").is_dir():
        lab.die(f"KEDA {KEDA_VERSION} is not built in {cache_dir()}: run `hack/keda build` first (about 10 min cold)")
    if not lab.cluster_running("primary") and "OVERSPILL_LAB_PRIMARY_KUBECONFIG" not in os.environ:
        lab.die("the lab is not up: hack/lab up (and hold /tmp/overspill-lab.lock, see docs/benchmarks.md)")
    state().mkdir(parents=True, exist_ok=True)
    certs = state() / "certs"
    make_certs(certs)
    apply_cluster_objects(certs)
    for port in PORTS.values():
        busy = not lab.port_free(port)
        if busy and not any(lab.ours(e) for n, e in lab.load_pids().items() if n in PROCESSES):
            lab.die(f"port {port} is in use by another process; KEDA's ports are fixed in {__file__}")
    for name, cmd in commands(certs, args).items():
        spawn(name, cmd, environment(args))
    wait_ready(120)
    lab.say(f"KEDA {KEDA_VERSION} is up in {time.time() - start:.1f}s (operator + metrics adapter, loopback)")


def cmd_stop(_: argparse.Namespace) -> None:
    for name in PROCESSES:
        lab.stop_process(name)


def cmd_down(args: argparse.Namespace) -> None:
    cmd_stop(args)
    if lab.cluster_running("primary") or "OVERSPILL_LAB_PRIMARY_KUBECONFIG" in os.environ:
        kubectl("delete", "apiservice", APISERVICE, "--ignore-not-found", check=False)
        kubectl("delete", "service", "-n", NAMESPACE, SERVICE, "--ignore-not-found", check=False)
    lab.say("KEDA processes stopped, APIService removed")


def cmd_status(_: argparse.Namespace) -> None:
    rows = [
        {"name": n, "pid": e["pid"], "rss_mib": round(lab.rss_mib(e["pid"]), 1)}
        for n, e in lab.load_pids().items()
        if n in PROCESSES and lab.ours(e)
    ]
    print(json.dumps({"processes": rows, "ports": PORTS, "cache": str(cache_dir())}))


def main() -> None:
    p = argparse.ArgumentParser(prog="hack/keda", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="certs, CRDs, APIService, then the operator and the adapter (idempotent)")
    # KEDA's documented tuning for many ScaledObjects (keda.sh/troubleshooting/2.18/api-server-throttling); the
    # processes must be stopped first for new values to apply (`up` leaves running ones as they are)
    up.add_argument("--kube-api-qps", type=float, help="both processes' client QPS (KEDA's default: 20)")
    up.add_argument("--kube-api-burst", type=int, help="both processes' client burst (KEDA's default: 30)")
    up.add_argument(
        "--scaledobject-max-reconciles", type=int, help="KEDA_SCALEDOBJECT_CTRL_MAX_RECONCILES (KEDA's default: 5)"
    )
    sub.add_parser("stop", help="stop the two processes only")
    sub.add_parser("down", help="stop the processes and remove the APIService and its Service")
    sub.add_parser("status", help="the processes (JSON)")
    args = p.parse_args()
    {"up": cmd_up, "stop": cmd_stop, "down": cmd_down, "status": cmd_status}[args.cmd](args)


if __name__ == "__main__":
    main()
