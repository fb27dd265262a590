"""The local three-cluster lab: `hack/lab up|down|env|status|stop|start`.

Three real control planes (primary, secondary and a small tertiary: kube-apiserver, etcd, controller-manager,
scheduler) with KWOK's fake nodes, a queue exporter and a real Prometheus, all as plain processes on loopback.
State lives in $OVERSPILL_LAB_DIR (default .lab/ in the repo); every process the lab starts is recorded there,
and `down` stops only those.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("OVERSPILL_LAB_DIR", ROOT / ".lab")).resolve()
PROM_PORT = int(os.environ.get("OVERSPILL_LAB_PROMETHEUS_PORT", "19090"))
QUEUE_PORT = int(os.environ.get("OVERSPILL_LAB_QUEUE_PORT", "19091"))
# GPU nodes of 4 GPUs each (plus one CPU node each); the small tertiary takes what a full secondary spills onward
CLUSTERS = {"primary": 2, "secondary": 4, "tertiary": 2}
TARGETS = ("secondary", "tertiary")
SECRET_NS, SECRET_NAME = "overspill-system", "lab-secondary-kubeconfig"


def secret_name(cluster: str) -> str:
    return f"lab-{cluster}-kubeconfig"


K8S_VERSION = os.environ.get("OVERSPILL_K8S_VERSION", "v1.34.4")


def say(msg: str) -> None:
    print(f"[lab {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def die(msg: str) -> None:
    say(f"ERROR: {msg}")
    sys.exit(1)


def assets() -> Path:
    env = os.environ.get("KUBEBUILDER_ASSETS")
    if env:
        return Path(env)
    data = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local/share"))
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    return data / "kubebuilder-envtest/k8s" / f"{K8S_VERSION.removeprefix('v')}-linux-{arch}"


BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok", "kwokctl")


def ensure_binaries() -> Path:
    a = assets()
    if all((a / b).is_file() for b in BINARIES):
        return a
    say(f"building lab binaries into {a} (cold build: about 7 minutes on 2 cores; progress follows)")
    out = subprocess.run([str(ROOT / "hack/build-binaries.sh")], stdout=subprocess.PIPE, text=True, check=False)
    if out.returncode != 0:
        die(
            "building the lab binaries failed (see above). Needs Go >= 1.24 and the Go module proxy; "
            "or set KUBEBUILDER_ASSETS to a folder that holds: " + ", ".join(BINARIES)
        )
    return Path(out.stdout.strip().splitlines()[-1])


def kwokctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    a = assets()
    env = {**os.environ, "KWOK_WORKDIR": str(STATE / "kwok"), "PATH": f"{a}:{os.environ['PATH']}"}
    return subprocess.run([str(a / "kwokctl"), *args], env=env, capture_output=True, text=True, check=check)


def kubeconfig(cluster: str) -> Path:
    return STATE / "kubeconfigs" / f"{cluster}.yaml"


def kubectl_bin() -> str:
    """The lab's own kubectl, else the user's (the kind path)."""
    own = assets() / "kubectl"
    return str(own) if own.exists() else (shutil.which("kubectl") or "kubectl")


def kubectl(cluster: str, *args: str, stdin: str | None = None) -> str:
    out = subprocess.run(
        [kubectl_bin(), "--kubeconfig", str(kubeconfig(cluster)), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        die(f"kubectl {' '.join(args)} on {cluster}: {out.stderr.strip()}")
    return out.stdout


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def load_pids() -> dict[str, dict[str, Any]]:
    f = STATE / "pids.json"
    return json.loads(f.read_text()) if f.exists() else {}


def save_pids(pids: dict[str, dict[str, Any]]) -> None:
    (STATE / "pids.json").write_text(json.dumps(pids, indent=1))


def ours(entry: dict[str, Any]) -> bool:
    """Is the recorded pid still the process we started (same command line)? Never kill anything else."""
    try:
        cmdline = Path(f"/proc/{entry['pid']}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    actual = [c.decode() for c in cmdline if c]
    cmd = entry["cmd"]
    # a script started through its shebang shows the interpreter first: python3 /path/script args...
    return actual == cmd or (len(actual) == len(cmd) + 1 and actual[1:] == cmd)


def spawn(name: str, cmd: list[str]) -> None:
    pids = load_pids()
    if name in pids and ours(pids[name]):
        return
    log = open(STATE / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    pids[name] = {"pid": proc.pid, "cmd": cmd}
    save_pids(pids)


def stop_process(name: str) -> None:
    pids = load_pids()
    entry = pids.pop(name, None)
    if entry and ours(entry):
        os.kill(entry["pid"], signal.SIGTERM)
        for _ in range(50):
            if not ours(entry):
                break
            time.sleep(0.1)
        else:
            os.kill(entry["pid"], signal.SIGKILL)
    save_pids(pids)


def wait_http(url: str, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    die(f"{what} did not answer at {url} within {timeout:.0f}s; see {STATE}/*.log")


def node_manifest(name: str, gpus: int) -> dict[str, Any]:
    res = {"cpu": "32", "memory": "256Gi", "pods": "110", "nvidia.com/gpu": str(gpus)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {"type": "kwok", "kubernetes.io/hostname": name, "nvidia.com/gpu.present": str(gpus > 0).lower()},
        },
        "status": {"allocatable": res, "capacity": res},
    }


def cluster_running(name: str) -> bool:
    if not kubeconfig(name).exists():
        return False
    out = subprocess.run(
        [
            str(assets() / "kubectl"),
            "--kubeconfig",
            str(kubeconfig(name)),
            "get",
            "--raw",
            "/readyz",
            "--request-timeout=3s",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.returncode == 0


def up_cluster(name: str, gpu_nodes: int) -> None:
    a = assets()
    if cluster_running(name):
        say(f"cluster {name} already running")
    else:
        existing = kwokctl("get", "clusters", check=False).stdout.split()
        if name in existing:
            kwokctl("start", "cluster", "--name", name, "--wait", "90s")
        else:
            say(f"creating cluster {name}")
            cfg = STATE / "kwokctl.yaml"
            # every component listens on loopback only
            cfg.write_text(
                "apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokctlConfiguration\n"
                "options:\n  bindAddress: 127.0.0.1\n"
            )
            r = kwokctl(
                "-c",
                str(cfg),
                "create",
                "cluster",
                "--name",
                name,
                "--runtime",
                "binary",
                "--kubeconfig",
                "",
                "--kube-apiserver-binary",
                str(a / "kube-apiserver"),
                "--kube-controller-manager-binary",
                str(a / "kube-controller-manager"),
                "--kube-scheduler-binary",
                str(a / "kube-scheduler"),
                "--etcd-binary",
                str(a / "etcd"),
                # single-instance control planes: without leader election they survive an API server restart
                "--extra-args",
                "kube-controller-manager=leader-elect=false",
                "--extra-args",
                "kube-scheduler=leader-elect=false",
                "--kwok-controller-binary",
                str(a / "kwok"),
                "--wait",
                "90s",
                check=False,
            )
            if r.returncode != 0:
                die(f"kwokctl create cluster {name} failed: {r.stderr.strip()[-2000:]}")
        kubeconfig(name).parent.mkdir(parents=True, exist_ok=True)
        flat = subprocess.run(
            [
                str(a / "kubectl"),
                "--kubeconfig",
                str(STATE / "kwok/clusters" / name / "kubeconfig.yaml"),
                "config",
                "view",
                "--flatten",
                "--minify",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        kubeconfig(name).write_text(flat.stdout)
        kubeconfig(name).chmod(0o600)
    nodes = [node_manifest(f"{name}-gpu-{i}", 4) for i in range(gpu_nodes)] + [node_manifest(f"{name}-cpu-0", 0)]
    kubectl(name, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": nodes}))
    deadline = time.time() + 60
    while time.time() < deadline:
        ready = kubectl(
            name,
            "get",
            "nodes",
            "-o",
            "jsonpath={range .items[*]}{.status.conditions[?(@.type=='Ready')].status}{' '}{end}",
        ).split()
        if len(ready) == len(nodes) and all(s == "True" for s in ready):
            return
        time.sleep(0.5)
    die(f"nodes of {name} did not become Ready within 60s")


def up_secret() -> None:
    """Each target's kubeconfig as a Secret in the primary: where the operator reads it, as in production."""
    items: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SECRET_NS}}]
    for cluster in TARGETS:
        if not kubeconfig(cluster).exists():
            continue
        items.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {"name": secret_name(cluster), "namespace": SECRET_NS},
                "data": {"kubeconfig": base64.b64encode(kubeconfig(cluster).read_bytes()).decode()},
            }
        )
    kubectl("primary", "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))


def up_prometheus() -> None:
    prom = shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)
    if prom is None:
        die("prometheus not found: install it (Debian/Ubuntu: apt-get install prometheus; or hack/install-deps)")
    pids = load_pids()
    for name, port in (("queue-exporter", QUEUE_PORT), ("prometheus", PROM_PORT)):
        if not (name in pids and ours(pids[name])) and not port_free(port):
            die(
                f"port {port} for {name} is in use by another process; free it or set "
                f"OVERSPILL_LAB_{'PROMETHEUS' if name == 'prometheus' else 'QUEUE'}_PORT"
            )
    spawn("queue-exporter", [sys.executable, str(ROOT / "hack/queue_exporter.py"), str(QUEUE_PORT)])
    wait_http(f"http://127.0.0.1:{QUEUE_PORT}/healthz", 20, "queue exporter")
    cfg = STATE / "prometheus.yml"
    cfg.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: lab-queue\n    static_configs: [{{targets: ['127.0.0.1:{QUEUE_PORT}']}}]\n"
    )
    spawn(
        "prometheus",
        [
            prom,
            f"--config.file={cfg}",
            f"--storage.tsdb.path={STATE / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{PROM_PORT}",
            "--storage.tsdb.retention.time=2h",
            "--web.enable-lifecycle",
        ],
    )
    wait_http(f"http://127.0.0.1:{PROM_PORT}/-/ready", 60, "prometheus")


# CRDs of the APIs a burst's traffic uses, pinned, from their Go modules' config/crd folders (the module cache,
# outside the repo, is the download cache): MCS API (ServiceExport/ServiceImport), Gateway API (HTTPRoute)
EXTRA_CRDS = {
    "sigs.k8s.io/mcs-api": (os.environ.get("OVERSPILL_MCS_API_VERSION", "v0.5.2"), "config/crd"),
    "sigs.k8s.io/gateway-api": (os.environ.get("OVERSPILL_GATEWAY_API_VERSION", "v1.4.1"), "config/crd/standard"),
}


def extra_crd_dirs() -> list[Path]:
    if shutil.which("go") is None:
        die("Go is needed to fetch the MCS and Gateway API CRDs from the Go module proxy (install Go >= 1.24)")
    dirs = []
    for module, (version, sub) in EXTRA_CRDS.items():
        out = subprocess.run(
            ["go", "mod", "download", "-json", f"{module}@{version}"],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "GOFLAGS": "-mod=mod"},
        )
        info = json.loads(out.stdout or "{}")
        if out.returncode != 0 or "Dir" not in info:
            die(f"go mod download {module}@{version} failed: {info.get('Error') or out.stderr.strip()}")
        dirs.append(Path(info["Dir"]) / sub)
    return dirs


def up_extra_crds() -> None:
    """Apply the pinned MCS API and Gateway API CRDs to every lab cluster (server-side: they are large)."""
    dirs = extra_crd_dirs()
    for cluster in CLUSTERS:
        for d in dirs:
            files = sorted(str(f) for f in d.glob("*.yaml"))
            args = [a for f in files for a in ("-f", f)]
            kubectl(cluster, "apply", "--server-side", "--force-conflicts", *args)
    say("MCS API and Gateway API CRDs applied: " + ", ".join(f"{m}@{v}" for m, (v, _) in EXTRA_CRDS.items()))


def env_lines() -> list[str]:
    return [
        f"export OVERSPILL_LAB_PRIMARY_KUBECONFIG={kubeconfig('primary')}",
        f"export OVERSPILL_LAB_SECONDARY_KUBECONFIG={kubeconfig('secondary')}",
        f"export OVERSPILL_LAB_TERTIARY_KUBECONFIG={kubeconfig('tertiary')}",
        f"export OVERSPILL_LAB_PROMETHEUS_URL=http://127.0.0.1:{PROM_PORT}",
        f"export OVERSPILL_LAB_QUEUE_URL=http://127.0.0.1:{QUEUE_PORT}",
        f"export OVERSPILL_LAB_KUBECTL={kubectl_bin()}",
        f"export OVERSPILL_LAB_SECRET={SECRET_NS}/{SECRET_NAME}",
    ]


def cmd_up(_: argparse.Namespace) -> None:
    start = time.time()
    STATE.mkdir(parents=True, exist_ok=True)
    ensure_binaries()
    for name, gpu_nodes in CLUSTERS.items():
        up_cluster(name, gpu_nodes)
    up_extra_crds()
    up_secret()
    up_prometheus()
    (STATE / "env").write_text("\n".join(env_lines()) + "\n")
    say(f"lab is up in {time.time() - start:.1f}s; `hack/lab env` prints its variables, `hack/lab down` stops it")


def cmd_attach(_: argparse.Namespace) -> None:
    """Clusters already exist (kind): add the Secret, the queue exporter and Prometheus."""
    STATE.mkdir(parents=True, exist_ok=True)
    for name in CLUSTERS:
        if not kubeconfig(name).exists():
            die(f"{kubeconfig(name)} is missing: create the clusters first (hack/lab up --kind)")
    up_extra_crds()
    up_secret()
    up_prometheus()
    (STATE / "env").write_text("\n".join(env_lines()) + "\n")
    say("lab attached; `hack/lab env` prints its variables, `hack/lab down` stops it")


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def lab_processes() -> dict[str, int]:
    procs: dict[str, int] = {}
    for name, entry in load_pids().items():
        if ours(entry):
            procs[name] = entry["pid"]
    for cluster in CLUSTERS:
        piddir = STATE / "kwok/clusters" / cluster / "pids"
        for f in sorted(piddir.glob("*.pid")) if piddir.exists() else []:
            pid = int(f.read_text().strip() or 0)
            if pid and Path(f"/proc/{pid}").exists():
                procs[f"{cluster}/{f.stem}"] = pid
    return procs


def cmd_status(args: argparse.Namespace) -> None:
    procs = lab_processes()
    total = 0.0
    rows = []
    for name, pid in procs.items():
        mib = rss_mib(pid)
        total += mib
        rows.append({"name": name, "pid": pid, "rss_mib": round(mib, 1)})
    if args.json:
        print(json.dumps({"processes": rows, "total_rss_mib": round(total, 1)}))
        return
    if not rows:
        print("lab: nothing running")
        return
    for r in rows:
        print(f"{r['name']:<36} pid {r['pid']:<8} {r['rss_mib']:8.1f} MiB")
    print(f"{'total':<49} {total:8.1f} MiB")


def _apiserver_pidfile(cluster: str) -> Path:
    return STATE / "kwok/clusters" / cluster / "pids/kube-apiserver.pid"


def stop_apiserver(cluster: str) -> None:
    """Stop one cluster's kube-apiserver (the rest keeps running), remembering how to start it again."""
    pidfile = _apiserver_pidfile(cluster)
    pid = int(pidfile.read_text().strip())
    if not Path(f"/proc/{pid}").exists():
        return  # stopped already: its command line was saved then
    cmd = [c.decode() for c in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if c]
    (STATE / f"{cluster}-apiserver.cmd.json").write_text(json.dumps(cmd))
    os.kill(pid, signal.SIGTERM)
    for _ in range(30):
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.1)
    # a graceful shutdown waits up to a minute for open watches; an outage need not: a start right after would
    # find the port still held and die
    os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.1)


def start_apiserver(cluster: str) -> None:
    pid = int(_apiserver_pidfile(cluster).read_text().strip())
    if Path(f"/proc/{pid}").exists():
        return  # running: a second one would find its port held (and the pid file would lose the first)
    cmd = json.loads((STATE / f"{cluster}-apiserver.cmd.json").read_text())
    log = open(STATE / "kwok/clusters" / cluster / "logs/kube-apiserver.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=STATE / "kwok/clusters" / cluster
    )
    _apiserver_pidfile(cluster).write_text(str(proc.pid))
    deadline = time.time() + 60
    while not cluster_running(cluster):
        if time.time() > deadline or proc.poll() is not None:
            raise SystemExit(f"the {cluster} API server did not start again; see its log: {log.name}")
        time.sleep(0.5)


def cmd_stop(args: argparse.Namespace) -> None:
    if args.component == "prometheus":
        stop_process("prometheus")
    else:
        stop_apiserver(args.component.removesuffix("-apiserver"))


def signal_apiserver(cluster: str, sig: signal.Signals) -> None:
    os.kill(int(_apiserver_pidfile(cluster).read_text().strip()), sig)


def cmd_freeze(args: argparse.Namespace) -> None:
    """The API server stops answering but keeps its port (SIGSTOP): a stopped one's port can be taken by another
    lab starting on the same machine, and then it never comes back."""
    signal_apiserver(args.component.removesuffix("-apiserver"), signal.SIGSTOP)


def cmd_thaw(args: argparse.Namespace) -> None:
    signal_apiserver(args.component.removesuffix("-apiserver"), signal.SIGCONT)


def cmd_start(args: argparse.Namespace) -> None:
    if args.component == "prometheus":
        up_prometheus()
    else:
        start_apiserver(args.component.removesuffix("-apiserver"))


def cmd_down(_: argparse.Namespace) -> None:
    start = time.time()
    if not STATE.exists():
        say("lab is not up")
        return
    for name in list(load_pids()):
        stop_process(name)
    for cluster in CLUSTERS:  # a frozen API server would not hear its SIGTERM
        with contextlib.suppress(OSError, ValueError):
            signal_apiserver(cluster, signal.SIGCONT)
    if assets().joinpath("kwokctl").exists() and (STATE / "kwok").exists():
        for cluster in CLUSTERS:
            kwokctl("delete", "cluster", "--name", cluster, check=False)
    kind_list = STATE / "kind-clusters"
    if kind_list.exists() and shutil.which("kind"):
        for name in kind_list.read_text().split():
            subprocess.run(["kind", "delete", "cluster", "--name", name], check=False)
    shutil.rmtree(STATE, ignore_errors=True)
    say(f"lab is down in {time.time() - start:.1f}s")


def main() -> None:
    p = argparse.ArgumentParser(prog="hack/lab", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up", help="bring up the three clusters, the queue exporter and Prometheus (idempotent)")
    sub.add_parser("down", help="stop everything the lab started and remove its state")
    sub.add_parser("attach", help="(kind path) add Secret, exporter and Prometheus to existing clusters")
    sub.add_parser("env", help="print export lines for the lab's variables")
    st = sub.add_parser("status", help="what runs, with memory")
    st.add_argument("--json", action="store_true")
    for verb in ("stop", "start"):
        c = sub.add_parser(verb, help=f"{verb} one component (for failure tests)")
        c.add_argument(
            "component", choices=["prometheus", "primary-apiserver", "secondary-apiserver", "tertiary-apiserver"]
        )
    for verb in ("freeze", "thaw"):
        c = sub.add_parser(verb, help=f"{verb} one API server (SIGSTOP/SIGCONT: it stops answering, keeps its port)")
        c.add_argument("component", choices=["primary-apiserver", "secondary-apiserver", "tertiary-apiserver"])
    args = p.parse_args()
    if args.cmd == "env":
        print("\n".join(env_lines()))
        return
    commands = {
        "up": cmd_up,
        "down": cmd_down,
        "status": cmd_status,
        "stop": cmd_stop,
        "start": cmd_start,
        "freeze": cmd_freeze,
        "thaw": cmd_thaw,
        "attach": cmd_attach,
    }
    commands[args.cmd](args)


if __name__ == "__main__":
    main()
