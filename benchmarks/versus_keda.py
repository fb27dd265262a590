"""KEDA and Overspill side by side on the lab: the same machine, API server, Prometheus and queues, one run.

    flock /tmp/overspill-lab.lock bash -c 'hack/lab up && eval "$(hack/lab env)" && \\
        .venv/bin/python -m benchmarks.versus_keda --objects 1000; hack/keda down; hack/lab down'

Needs KEDA built once (`hack/keda build`, cached outside the repo). N Deployments, each with its own queue
(`sum(overspill_lab_queue_depth{queue="vk-w-0001"})`: N distinct PromQL queries, nothing for either tool to share),
scaled either by a KEDA ScaledObject (Prometheus scaler, threshold = targetPerReplica = 10) or by a BurstPolicy.
Scenario by scenario (all tools' `scaling`, then all tools' `full`), the tools run one after the other on the same
lab start, each alone on the lab; `--budget-minutes` bounds the whole run (no phase starts after it).

Scenario `scaling`: the primary has room for everything (roomy fake nodes of the benchmark's own). For each
setting (`defaults`: each tool as installed; `equal`: KEDA's pollingInterval = Overspill's pollIntervalSeconds;
`tuned`: KEDA's own advice for many ScaledObjects, client QPS/burst 200/300 and 20 concurrent reconciles;
`tuned-equal`: both):
  1. first act: the queues ask for 2 replicas, the tool starts: time until all N Deployments are at 2;
  2. steady: once every workload's 2 pods are Ready and `--settle-polls` of the tool's polls passed with no write
     to a workload (the lab starting 1,000 pods is not either tool's steady cost), the queues hold; API server
     requests per second (its own apiserver_request_total), tool RSS and CPU; the window's bounds and the load;
  3. changes: `--rounds` times every queue moves (10 <-> 20, i.e. 1 <-> 2 replicas), each at a random moment of a
     10 s window: queue change -> desired replicas written, and -> pods Running, per object.
Scale-down stabilization is 0 for both tools (KEDA's HPA default is 300 s, Overspill's too): deliberate hysteresis,
not reaction time, and it would make each down round last five minutes.

Scenario `full`: the primary's pool holds exactly one replica per workload; the queues ask for 3. KEDA's HPA
writes 3 and the other two stay Pending; Overspill places them in the secondary. Reported: replicas serving vs
wanted, Pending pods, time to all 3 Running.

Every phase has a time limit (`--phase-timeout`): a tool that does not get there is recorded with how far it got
(e.g. 573 of 1,000 objects acted) and the run goes on. Each tool/setting/scenario is merged into
benchmarks/results/versus_keda.json as soon as it is measured (by tool, N, scenario and setting), so a run stopped
half-way keeps what it measured; `--table` prints the Markdown table for docs/benchmarks.md from it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client, config

from benchmarks import apiserver_metrics
from benchmarks.common import RESULTS, ROOT, commit, summarize, write
from benchmarks.lab_setup import GROUP, VERSION, Lab
from benchmarks.procstat import Sampler
from benchmarks.settling import Settle, quiet_seconds, unsettled
from benchmarks.watching import Workloads, first_reach, first_sum_reach, value_at

SELECTOR = "overspill.dev/bench=versus-keda"
POOL = "overspill.dev/bench-pool"
TARGET = "vk-secondary"  # a BurstTarget of the benchmark's own: the lab's example one caps at 16 replicas
TARGET_PER_REPLICA = 10
OVERSPILL_DEFAULT_POLL = 10  # Behavior.poll_interval_seconds' default
KEDA_DEFAULT_POLL = 30  # ScaledObject pollingInterval's default
EQUAL_POLL = OVERSPILL_DEFAULT_POLL
# KEDA's documented advice from about 400 ScaledObjects (keda.sh/troubleshooting/2.18/api-server-throttling: raise
# --kube-api-qps/--kube-api-burst and KEDA_SCALEDOBJECT_CTRL_MAX_RECONCILES; kedacore/keda#6063: reconciles 5 -> 20,
# keep doubling the client limits while throttled; kedacore/keda#3730: 1,600 ScaledObjects fine at 100/150 and 20)
KEDA_TUNED = {"kube_api_qps": 200, "kube_api_burst": 300, "scaledobject_max_reconciles": 20}
# `tuned-equal`: KEDA's advice for many objects and the equal poll together. At N = 1,000 KEDA's `equal` with its
# default client limits (20 QPS) cannot even start: its status PATCH per ScaledObject per poll alone asks 100/s
EQUAL_SETTINGS = frozenset({"equal", "tuned-equal"})
TUNED_SETTINGS = frozenset({"tuned", "tuned-equal"})
LAB_STATE = Path(os.environ.get("OVERSPILL_LAB_DIR", ROOT / ".lab"))
PYTHON = str(ROOT / ".venv/bin/python")


def name(i: int) -> str:
    return f"w-{i:04d}"


def queue(i: int) -> str:
    return f"vk-w-{i:04d}"


def query(i: int) -> str:
    return f'sum(overspill_lab_queue_depth{{queue="{queue(i)}"}})'


def api_client(kubeconfig: str) -> client.ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)  # type: ignore[no-untyped-call]
    cfg.connection_pool_maxsize = 32
    return client.ApiClient(cfg)


def parallel(fn: Callable[[int], Any], items: Iterable[int], workers: int = 12) -> None:
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(fn, items):
            pass


def utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def load() -> list[float]:
    """The machine's load average (1, 5, 15 min), as `uptime` shows it: the machine is shared, figures are noisy."""
    return [round(x, 2) for x in os.getloadavg()]


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{what}: not reached within {timeout:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - t0


# --- the lab: nodes, workloads, queues ---------------------------------------------------------------------------


def node(node_name: str, pool: str, gpus: int, pods: int) -> dict[str, Any]:
    res = {"cpu": "1000", "memory": "4Ti", "pods": str(pods), "nvidia.com/gpu": str(gpus)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node_name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": node_name,
                POOL: pool,
                "overspill.dev/bench": "versus-keda",
            },
        },
        "status": {"allocatable": res, "capacity": res},
    }


class Bench:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.primary = api_client(lab.primary_kc)
        self.secondary = api_client(lab.secondary_kc)
        self.deleting: list[str] = []  # namespaces whose deletion was started and not yet seen finished

    def kubectl(self, kubeconfig: str, *args: str, stdin: str | None = None) -> str:
        out = subprocess.run(
            [self.lab.kubectl, "--kubeconfig", kubeconfig, *args],
            input=stdin,
            check=False,
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(args)}: {out.stderr.strip()[-1000:]}")
        return out.stdout

    def add_nodes(self, kubeconfig: str, nodes: list[dict[str, Any]]) -> None:
        self.kubectl(
            kubeconfig, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": nodes})
        )

    def remove_nodes(self) -> None:
        for kc in (self.lab.primary_kc, self.lab.secondary_kc):
            self.kubectl(kc, "delete", "nodes", "-l", SELECTOR, "--ignore-not-found", "--wait=false")

    def set_queues(self, n: int, value: float) -> None:
        parallel(lambda i: self.lab.set_queue(queue(i), value), range(n), workers=8)

    def create_workloads(self, ns: str, n: int, pool: str) -> None:
        core, apps = client.CoreV1Api(self.primary), client.AppsV1Api(self.primary)
        with contextlib.suppress(client.ApiException):
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))

        def create(i: int) -> None:
            labels = {"app": name(i), "overspill.dev/bench": "versus-keda"}
            body: dict[str, Any] = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name(i), "labels": labels},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": name(i)}},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "terminationGracePeriodSeconds": 0,
                            "nodeSelector": {POOL: pool},
                            "containers": [
                                {
                                    "name": "s",
                                    "image": "registry.k8s.io/pause:3.10",
                                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                                }
                            ],
                        },
                    },
                },
            }
            with contextlib.suppress(client.ApiException):
                apps.create_namespaced_deployment(ns, body)  # type: ignore[arg-type]  # plain dicts serialize as-is

        parallel(create, range(n))

    def reset_replicas(self, ns: str, n: int, seen: Workloads) -> None:
        apps = client.AppsV1Api(self.primary)
        todo = [i for i in range(n) if seen.now(seen.replicas, name(i)) != 1]
        parallel(lambda i: apps.patch_namespaced_deployment_scale(name(i), ns, {"spec": {"replicas": 1}}), todo)

    def delete_namespace(self, ns: str, timeout: float = 600, wait: bool = True) -> None:
        for api in (self.primary, self.secondary):
            with contextlib.suppress(client.ApiException):
                client.CoreV1Api(api).delete_namespace(ns)
        self.deleting.append(ns)
        if wait:
            self.wait_deleted(timeout)

    def wait_deleted(self, timeout: float) -> None:
        """Until every namespace this run deleted is gone from both clusters; past `timeout` it says so and goes on
        (a measurement beside a deletion's tail is noisier, not wrong)."""
        for ns in self.deleting:
            for api in (self.primary, self.secondary):
                core = client.CoreV1Api(api)

                def gone(core: client.CoreV1Api = core, ns: str = ns) -> bool:
                    try:
                        core.read_namespace(ns)
                    except client.ApiException as e:
                        return bool(e.status == 404)
                    return False

                try:
                    wait_for(gone, timeout, f"namespace {ns} deleted")
                except TimeoutError as e:
                    print(f"[versus-keda] {e}; going on", file=sys.stderr)
        self.deleting = []


# --- the two tools -----------------------------------------------------------------------------------------------


class Tool:
    name = ""
    group, version, plural = "", "", ""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench

    def body(self, i: int, setting: str) -> dict[str, Any]:
        raise NotImplementedError

    def start(self, setting: str = "defaults") -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def pids(self) -> list[int]:
        raise NotImplementedError

    def process_names(self) -> list[str]:
        """One name per pid of `pids()`, in order (KEDA: its operator and its metrics adapter)."""
        return [self.name] * len(self.pids())

    def config(self, setting: str) -> dict[str, Any]:
        spec: dict[str, Any] = self.body(0, setting)["spec"]
        return spec

    def poll(self, setting: str) -> float:
        """Seconds between the tool's looks at one object's metric, as `setting` configures it."""
        raise NotImplementedError

    def process(self, setting: str) -> dict[str, Any]:
        """The tool's process settings for `setting` beyond its objects' specs (none: as installed)."""
        return {}

    def install(self) -> None:
        raise NotImplementedError

    def uninstall(self) -> None:
        raise NotImplementedError

    def create(self, ns: str, n: int, setting: str) -> None:
        api = client.CustomObjectsApi(self.bench.primary)

        def create(i: int) -> None:
            try:
                api.create_namespaced_custom_object(self.group, self.version, ns, self.plural, self.body(i, setting))
            except client.ApiException as e:
                if e.status != 409:
                    raise
                api.patch_namespaced_custom_object(
                    self.group, self.version, ns, self.plural, name(i), {"spec": self.body(i, setting)["spec"]}
                )

        parallel(create, range(n))

    def remove(self, ns: str, n: int) -> None:
        """With the tool stopped: its finalizers stripped, its objects deleted (a stopped tool cannot release them,
        and releasing 1,000 through a rate-limited client would time the teardown, not the tool)."""
        api = client.CustomObjectsApi(self.bench.primary)

        def remove(i: int) -> None:
            with contextlib.suppress(client.ApiException):
                api.patch_namespaced_custom_object(
                    self.group, self.version, ns, self.plural, name(i), {"metadata": {"finalizers": None}}
                )
            with contextlib.suppress(client.ApiException):
                api.delete_namespaced_custom_object(self.group, self.version, ns, self.plural, name(i))

        parallel(remove, range(n))

    def before_start(self, ns: str) -> None:
        """Every start begins from the same place: nothing the tool derived in an earlier run is left."""


class Keda(Tool):
    name = "keda"
    group, version, plural = "keda.sh", "v1alpha1", "scaledobjects"

    def body(self, i: int, setting: str) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "scaleTargetRef": {"name": name(i)},
            "minReplicaCount": 1,
            "maxReplicaCount": 20,
            "advanced": {
                "horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}
            },
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": self.bench.lab.prom,
                        "query": query(i),
                        "threshold": str(TARGET_PER_REPLICA),
                    },
                }
            ],
        }
        if setting in EQUAL_SETTINGS:
            spec["pollingInterval"] = EQUAL_POLL
        return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": name(i)}, "spec": spec}

    def _hack(self, verb: str, *flags: str) -> str:
        out = subprocess.run(
            [PYTHON, str(ROOT / "hack/keda.py"), verb, *flags], capture_output=True, text=True, check=False
        )
        if out.returncode != 0:
            raise SystemExit(f"hack/keda {verb} failed:\n{out.stderr[-3000:]}")
        return out.stdout

    def install(self) -> None:
        self._hack("up")  # certs, CRDs and the APIService; the processes are stopped again until a run starts
        self._hack("stop")

    def process(self, setting: str) -> dict[str, Any]:
        return dict(KEDA_TUNED) if setting in TUNED_SETTINGS else {}

    def poll(self, setting: str) -> float:
        return EQUAL_POLL if setting in EQUAL_SETTINGS else KEDA_DEFAULT_POLL

    def start(self, setting: str = "defaults") -> None:
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in self.process(setting).items()]
        self._hack("up", *flags)

    def stop(self) -> None:
        self._hack("stop")

    def uninstall(self) -> None:
        self._hack("down")

    def pids(self) -> list[int]:
        return [p["pid"] for p in json.loads(self._hack("status"))["processes"]]

    def process_names(self) -> list[str]:
        return [p["name"] for p in json.loads(self._hack("status"))["processes"]]

    def before_start(self, ns: str) -> None:
        # KEDA creates one HPA per ScaledObject on start: remove them so every start times that too
        client.AutoscalingV2Api(self.bench.primary).delete_collection_namespaced_horizontal_pod_autoscaler(ns)

    def remove(self, ns: str, n: int) -> None:
        super().remove(ns, n)
        # its HPAs too: left behind, the HPA controller would keep syncing them against a stopped adapter while
        # the next tool is measured on the same lab
        self.before_start(ns)


class Overspill(Tool):
    name = "overspill"
    group, version, plural = GROUP, VERSION, "burstpolicies"

    def __init__(self, bench: Bench) -> None:
        super().__init__(bench)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkdtemp(prefix="versus-keda-")) / "overspill.log"

    def body(self, i: int, setting: str) -> dict[str, Any]:
        # Overspill's default poll is the equal poll: written out, so both settings are visibly the same spec
        poll = EQUAL_POLL if setting == "equal" else OVERSPILL_DEFAULT_POLL
        behavior = {"pollIntervalSeconds": poll, "scaleDownStabilizationSeconds": 0, "minBurstDurationSeconds": 0}
        spec = {
            "workloadRef": {"name": name(i)},
            "metric": {"prometheus": {"query": query(i)}, "targetPerReplica": TARGET_PER_REPLICA},
            "minReplicas": 1,
            "maxReplicas": 20,
            "targets": [{"name": TARGET}],
            "behavior": behavior,
        }
        return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "BurstPolicy", "metadata": {"name": name(i)}, "spec": spec}

    def install(self) -> None:
        self.bench.lab.install()
        target = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "BurstTarget",
            "metadata": {"name": TARGET},
            "spec": {
                "kubeconfigSecretRef": {"name": "lab-secondary-kubeconfig", "namespace": "overspill-system"},
                "provider": "lab",
                "region": "local",
                "costPerReplicaHour": 2.5,
                "maxReplicas": 100000,
                "probeIntervalSeconds": 5,
            },
        }
        self.bench.kubectl(self.bench.lab.primary_kc, "apply", "-f", "-", stdin=json.dumps(target))

    def uninstall(self) -> None:
        # the operator is stopped: strip its finalizer rather than wait for it
        kc = self.bench.lab.primary_kc
        with contextlib.suppress(SystemExit):
            self.bench.kubectl(
                kc, "patch", "bursttarget", TARGET, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
            )
        self.bench.kubectl(kc, "delete", "bursttarget", TARGET, "--ignore-not-found", "--wait=false")

    def start(self, setting: str = "defaults") -> None:
        self.proc = self.bench.lab.start_operator(self.log)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(60)
            self.proc = None

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc else []

    def poll(self, setting: str) -> float:
        return float(self.config(setting)["behavior"]["pollIntervalSeconds"])


# --- measuring ---------------------------------------------------------------------------------------------------


def control_plane_pids(cluster: str = "primary") -> list[int]:
    pids = []
    for component in ("kube-apiserver", "kube-controller-manager"):
        f = LAB_STATE / "kwok/clusters" / cluster / "pids" / f"{component}.pid"
        with contextlib.suppress(OSError, ValueError):
            pids.append(int(f.read_text().strip()))
    return pids


class Window:
    """API server request rates (both clusters; the primary's also per `slice_seconds`, with their median), the
    tool's RSS and CPU (each of its processes too) and the primary control plane's CPU, over the `with` block."""

    def __init__(
        self, bench: Bench, tool: Tool | None, origin: float | None = None, slice_seconds: float = 10.0
    ) -> None:
        pids = tool.pids() if tool else []
        names = tool.process_names() if tool else []
        self.bench, self.tool = bench, Sampler(pids, names=names)
        self.control_plane = Sampler(control_plane_pids())
        self.origin = origin  # the tool's start (monotonic), for the window's bounds relative to it
        self.slice_seconds = slice_seconds
        self.slices: list[apiserver_metrics.Snapshot] = []
        self._stop = threading.Event()
        self._slicer = threading.Thread(target=self._slice, daemon=True)
        self.result: dict[str, Any] = {}

    def _slice(self) -> None:
        while not self._stop.wait(self.slice_seconds):
            with contextlib.suppress(Exception):  # a missed scrape makes one slice longer, nothing worse
                self.slices.append(apiserver_metrics.scrape(self.bench.primary))

    def __enter__(self) -> Window:
        self.before = [apiserver_metrics.scrape(a) for a in (self.bench.primary, self.bench.secondary)]
        self.slices = [self.before[0]]
        self._slicer.start()
        self.bounds: dict[str, Any] = {"start_utc": utc(), "load_average_1_5_15_at_start": load()}
        if self.origin is not None:
            self.bounds["start_after_tool_start_seconds"] = round(time.monotonic() - self.origin, 1)
        self.tool.__enter__()
        self.control_plane.__enter__()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._slicer.join()
        self.tool.__exit__()
        self.control_plane.__exit__()
        after = [apiserver_metrics.scrape(a) for a in (self.bench.primary, self.bench.secondary)]
        primary = apiserver_metrics.rates(self.before[0], after[0]).as_dict()
        primary |= apiserver_metrics.sliced([*self.slices, after[0]])
        self.bounds |= {"end_utc": utc(), "load_average_1_5_15_at_end": load()}
        if self.origin is not None:
            self.bounds["end_after_tool_start_seconds"] = round(time.monotonic() - self.origin, 1)
        self.result = {
            "window": self.bounds,
            "primary_api": primary,
            "secondary_api": apiserver_metrics.rates(self.before[1], after[1]).as_dict(),
            "tool": self.tool.result,
            "primary_control_plane": self.control_plane.result,
        }


def change_round(
    bench: Bench, objects: Sequence[int], value: int, spread: float, rng: random.Random
) -> dict[int, float]:
    """The queue of every one of `objects` moves to `value`, each at a random moment of `spread` seconds; returns
    when each moved."""
    plan = sorted((rng.uniform(0, spread), i) for i in objects)
    t0, moved = time.monotonic(), {}
    for offset, i in plan:
        delay = t0 + offset - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        bench.lab.set_queue(queue(i), value)
        moved[i] = time.monotonic()
    return moved


def latencies(seen: Workloads, moved: dict[int, float], want: int) -> tuple[list[float], list[float], int, int]:
    """Per changed object: queue change -> `want` replicas written, and -> `want` pods Running; how many never got
    there, and how many figures were left out because `want` already held when the queue moved (the lab had not
    finished the round before: no reaction to time, not one of 0 s)."""
    written, running, missed, held = [], [], 0, 0
    for i, t in moved.items():
        got = True
        for timeline, into in (
            (seen.snapshot(seen.replicas, name(i)), written),
            (seen.snapshot(seen.running, name(i)), running),
        ):
            if value_at(timeline, t) == want:
                held += 1
                continue
            reached = first_reach(timeline, t, want)
            if reached is None:
                got = False
            else:
                into.append(reached - t)
        missed += not got
    return written, running, missed, held


def all_at(seen: Workloads, objects: Sequence[int], want: int, running: bool = True) -> Callable[[], bool]:
    def check() -> bool:
        if any(seen.now(seen.replicas, name(i)) != want for i in objects):
            return False
        return not running or all(seen.now(seen.running, name(i)) == want for i in objects)

    return check


def settled(seen: Workloads, n: int, want: int, quiet: float, timeout: float, origin: float) -> dict[str, Any]:
    """Waits until all N workloads have `want` Ready pods and `quiet` seconds passed with no write to their
    Deployments or pods (each watch event is one); how it went, for the results. Past `timeout` the window opens
    anyway, marked `settled: false` with the reason."""
    settle = Settle([name(i) for i in range(n)], want, quiet)
    t0, all_ready = time.monotonic(), None
    while True:
        with seen.lock:
            ready = {k: v[-1][1] for k, v in seen.ready.items() if v}
            last = seen.last_event
        now = time.monotonic()
        why = unsettled(settle, ready, last, now)
        if all_ready is None and (why is None or not why.endswith("Ready pods")):
            all_ready = now
        if why is None or now - t0 > timeout:
            return {
                "settled": why is None,
                "not_settled": why,
                "want_ready_pods": want,
                "quiet_seconds": quiet,
                "all_ready_after_tool_start_seconds": None if all_ready is None else round(all_ready - origin, 1),
                "last_workload_write_before_window_seconds": None if last is None else round(now - last, 1),
                "waited_seconds": round(now - t0, 1),
            }
        time.sleep(0.5)


def scaling_run(bench: Bench, tool: Tool, ns: str, n: int, setting: str, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    timeout = args.phase_timeout
    head = {
        "tool": tool.name,
        "objects": n,
        "scenario": "scaling",
        "setting": setting,
        "spec": tool.config(setting),
        "process": tool.process(setting),
    }
    with Workloads(bench.primary, ns, SELECTOR) as seen:
        tool.stop()
        bench.reset_replicas(ns, n, seen)
        tool.before_start(ns)
        tool.create(ns, n, setting)
        wait_for(all_at(seen, range(n), 1), 2 * timeout, "every workload back at 1 Running replica")
        bench.set_queues(n, 2 * TARGET_PER_REPLICA)
        time.sleep(2)  # Prometheus (1 s scrape) holds the new values before the tool starts
        t0 = time.monotonic()
        tool.start(setting)
        started = time.monotonic() - t0
        first: float | None = None
        with contextlib.suppress(TimeoutError):  # a tool that never gets there is a figure too: how many did
            first = wait_for(all_at(seen, range(n), 2, running=False), timeout, f"{tool.name}: every workload at 2")
        reached = [first_reach(seen.snapshot(seen.replicas, name(i)), t0, 2) for i in range(n)]
        per_object = [t - t0 for t in reached if t is not None]
        head |= {
            "process_start_seconds": round(started, 2),
            "first_act_all_seconds": None if first is None else round(first, 2),
            "first_act_objects": len(per_object),
            "first_act_per_object_seconds": summarize(per_object) if per_object else None,
        }
        first_load = load()
        print(f"[versus-keda] {tool.name} N={n} {setting}: all acted in {first} s, load {first_load}", file=sys.stderr)
        if first is None:
            # not at steady state, and it may never get there at this N: what it costs while still starting, and
            # how fast it reacts on the objects it did act on, flagged partial (a blank would hide the finding)
            with Window(bench, tool, t0) as starting:
                time.sleep(args.steady)
            stuck = f"{len(per_object)} of {n} objects acted within the phase limit of {timeout:.0f} s"
            print(f"[versus-keda] {tool.name} N={n} {setting}: {stuck}", file=sys.stderr)
            acted = acted_objects(seen, n, 2)
            partial: dict[str, Any] = {
                "steady_state": False,
                "partial": True,
                "not_steady": stuck,
                "still_starting": starting.result,
            }
            if acted and args.rounds:
                changes, during = change_rounds(bench, tool, seen, acted, args, rng, t0)
                changes["partial"] = (
                    f"over the {len(acted)} of {n} objects at 2 replicas when the start's limit passed, while the "
                    f"tool was still starting the others"
                )
                partial |= {"changes": changes, "during_changes": during}
            return head | partial
        # the steady window: every workload's 2 pods Ready, then `--settle-polls` of the tool's polls with no write
        # to a workload (so the lab's start of 1,000 second pods is not counted as either tool's steady cost)
        quiet = quiet_seconds(args.settle_polls, tool.poll(setting))
        settling = settled(seen, n, 2, quiet, timeout, t0)
        print(f"[versus-keda] {tool.name} N={n} {setting}: steady window after {settling}", file=sys.stderr)
        with Window(bench, tool, t0) as steady:
            time.sleep(args.steady)
        changes, during = change_rounds(bench, tool, seen, range(n), args, rng, t0)
    return head | {
        "steady_state": True,
        "first_act_load_average_1_5_15": first_load,
        "settling": settling,
        "steady": steady.result,
        "changes": changes,
        "during_changes": during,
    }


def acted_objects(seen: Workloads, n: int, want: int) -> list[int]:
    """The objects whose Deployment is at `want` replicas now: those a tool that has not started all N acts on."""
    return [i for i in range(n) if seen.now(seen.replicas, name(i)) == want]


def change_rounds(
    bench: Bench,
    tool: Tool,
    seen: Workloads,
    objects: Sequence[int],
    args: argparse.Namespace,
    rng: random.Random,
    t0: float,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`--rounds` rounds of queue changes (down to 1 replica, up to 2, ...) on `objects`, each waited for up to
    `--round-timeout`: the reaction figures (medians, p95) and the window's costs."""
    ups: dict[str, list[float]] = {"written": [], "running": []}
    downs: dict[str, list[float]] = {"written": [], "running": []}
    missed, held, round_loads, timed_out = 0, 0, [], 0
    with Window(bench, tool, t0) as changing:
        for r in range(args.rounds):
            want = 1 if r % 2 == 0 else 2
            moved = change_round(bench, objects, want * TARGET_PER_REPLICA, args.spread, rng)
            try:
                wait_for(all_at(seen, objects, want), args.round_timeout, f"round {r}: every workload at {want}")
            except TimeoutError:
                timed_out += 1
            written, running, m, h = latencies(seen, moved, want)
            missed, held = missed + m, held + h
            round_loads.append(load())
            into = downs if want == 1 else ups
            into["written"] += written
            into["running"] += running
            print(
                f"[versus-keda] {tool.name} N={len(objects)} round {r}: to {want}, median written "
                f"{summarize(written)['median'] if written else None} s, missed {m}, load {load()}",
                file=sys.stderr,
            )
    changes = {
        "rounds": args.rounds,
        "objects_changed": len(objects),
        "spread_seconds": args.spread,
        "round_timeout_seconds": args.round_timeout,
        "rounds_timed_out": timed_out,
        "up_desired_written_seconds": summarize(ups["written"]) if ups["written"] else None,
        "up_running_seconds": summarize(ups["running"]) if ups["running"] else None,
        "down_desired_written_seconds": summarize(downs["written"]) if downs["written"] else None,
        "down_running_seconds": summarize(downs["running"]) if downs["running"] else None,
        "missed": missed,
        "held_at_change": held,
        "load_average_1_5_15_after_each_round": round_loads,
    }
    return changes, changing.result


def full_pool(tool: Tool) -> str:
    """Each tool's primary-full workloads have a full pool of their own: the second tool needs no wait for the
    first one's pods to go."""
    return f"full-{tool.name}"


def full_run(
    bench: Bench, tool: Tool, ns: str, n: int, setting: str, args: argparse.Namespace, timeout: float
) -> dict[str, Any]:
    """The primary's pool holds one replica per workload; the queues ask for 3 each."""
    want, hold = 3, args.full_hold
    bench.create_workloads(ns, n, pool=full_pool(tool))
    with Workloads(bench.primary, ns, SELECTOR) as seen, Workloads(bench.secondary, ns, SELECTOR, False) as far:
        wait_for(all_at(seen, range(n), 1), timeout, "every full-scenario workload at 1 Running")
        tool.before_start(ns)
        tool.create(ns, n, setting)
        started = time.monotonic()
        tool.start(setting)
        time.sleep(args.settle)
        moved = change_round(bench, range(n), want * TARGET_PER_REPLICA, args.spread, random.Random(args.seed))
        t0 = time.monotonic()

        def serving(i: int) -> int:
            return seen.now(seen.running, name(i)) + far.now(far.running, name(i))

        def acted(i: int) -> bool:  # KEDA writes 3 in the primary; Overspill keeps 1 there and serves 2 elsewhere
            return seen.now(seen.replicas, name(i)) >= want or serving(i) >= want

        # first every object acted (KEDA at N = 1,000 is still making HPAs minutes after its start), then up to
        # `hold` more for the replicas to serve: KEDA's answer is its Pending pods once it wrote 3 everywhere
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: all(acted(i) for i in range(n)), timeout, "every object acted")
        written_all = time.monotonic() - t0
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: all(serving(i) >= want for i in range(n)), hold, "all replicas serving")
        time.sleep(max(0.0, min(hold, 30) - (time.monotonic() - t0 - written_all)))
        written = [
            w - t for i, t in moved.items() if (w := first_reach(seen.snapshot(seen.replicas, name(i)), t, want))
        ]
        served = [
            r - t
            for i, t in moved.items()
            if (r := first_sum_reach(seen.snapshot(seen.running, name(i)), far.snapshot(far.running, name(i)), t, want))
            is not None
        ]
        result = {
            "tool": tool.name,
            "objects": n,
            "scenario": "full",
            "setting": setting,
            "process_start_to_queue_change_seconds": round(t0 - started, 1),
            "all_acted_seconds": round(written_all, 1),
            "objects_acted": sum(1 for i in range(n) if acted(i)),
            "wanted_replicas": want * n,
            "primary_running": seen.total(seen.running),
            "primary_pending": seen.total(seen.pending),
            "secondary_running": far.total(far.running),
            "observed_after_seconds": round(time.monotonic() - t0, 1),
            "desired_written_seconds": summarize(written) if written else None,
            "all_serving_seconds": summarize(served) if served else None,
            "workloads_fully_serving": len(served),
            "load_average_1_5_15_observed": load(),
        }
    tool.stop()
    tool.remove(ns, n)
    return result


# --- the run -----------------------------------------------------------------------------------------------------


class Budget:
    """The whole run's time on the lab (`--budget-minutes`): no phase starts after it, and no phase may wait past it
    (a lab hold is limited; what was measured by then is already saved)."""

    def __init__(self, minutes: float, phase_timeout: float) -> None:
        self.deadline = time.monotonic() + 60 * minutes
        self.phase_timeout = phase_timeout

    def spent(self) -> bool:
        return time.monotonic() >= self.deadline

    def timeout(self) -> float:
        """A phase's limit: the per-phase one, cut to what is left of the budget (at least a minute)."""
        return min(self.phase_timeout, max(60.0, self.deadline - time.monotonic()))


def baseline(bench: Bench, seen: Workloads, n: int, args: argparse.Namespace, timeout: float) -> dict[str, Any]:
    """The lab with N idle workloads and no tool: what the cluster's own controllers and KWOK cost. Measured like a
    tool's steady window: after every pod is Ready and the workloads went quiet."""
    settling = settled(seen, n, 1, quiet_seconds(args.settle_polls, EQUAL_POLL), timeout, time.monotonic())
    with Window(bench, None) as w:
        time.sleep(args.steady)
    return {"objects": n, "settling": settling, **{k: v for k, v in w.result.items() if k != "tool"}}


def attempt(
    what: dict[str, Any], measure: Callable[[], dict[str, Any]], save: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """One tool/setting/scenario, saved at once; a failure is saved as such and the run goes on."""
    head = {**what, "overspill_commit": commit(), "load_average_1_5_15": load(), "started_utc": utc()}
    try:
        run = head | measure()
    except (Exception, SystemExit) as e:  # a phase's failure is a result; the next phase may still work
        print(f"[versus-keda] {what}: failed: {e!r}", file=sys.stderr)
        run = head | {"error": f"{type(e).__name__}: {e}"}
    run["load_average_after"] = load()
    run["ended_utc"] = utc()
    save(run)
    return run


def clean_up(bench: Bench, tool: Tool, ns: str, n: int) -> None:
    """The tool stopped and its objects gone; the namespace's deletion is started, not waited for (the next phase
    sets up its own workloads meanwhile, and waits for it before it measures anything)."""
    try:
        tool.stop()
        tool.remove(ns, n)
        # uninstalled before the namespace goes: a registered but stopped KEDA adapter fails the namespace
        # controller's discovery (DiscoveryFailed) and the deletion never finishes
        tool.uninstall()
        bench.set_queues(n, TARGET_PER_REPLICA)
        bench.delete_namespace(ns, wait=False)
    except (Exception, SystemExit) as e:  # a failed clean-up must not throw away the figures; the lab goes down
        print(f"[versus-keda] {tool.name}: clean-up of {ns} failed: {e!r}", file=sys.stderr)


def run_scaling(
    bench: Bench, tool: Tool, n: int, args: argparse.Namespace, save: Callable[[dict[str, Any]], None], budget: Budget
) -> list[str]:
    """The `scaling` scenario for one tool, every setting; returns the namespaces it left being deleted."""
    ns = f"vk-{tool.name}"
    bench.create_workloads(ns, n, pool="roomy")
    with Workloads(bench.primary, ns, SELECTOR) as seen:
        wait_for(all_at(seen, range(n), 1), 2 * budget.timeout(), "every workload at 1 Running replica")
        bench.wait_deleted(budget.timeout())  # the previous tool's namespaces: not in this tool's baseline
        base = baseline(bench, seen, n, args, budget.timeout())  # before the tool is even installed
    tool.install()
    try:
        done: dict[str, dict[str, Any]] = {}
        for setting in args.settings:
            same = next(
                (
                    s
                    for s, r in done.items()
                    if r.get("spec") == tool.config(setting) and r.get("process") == tool.process(setting)
                ),
                None,
            )
            if same:  # Overspill's default poll is the equal poll: the same configuration, measured once
                save({**done[same], "setting": setting, "same_configuration_as": same})
                continue
            if budget.spent():
                print(f"[versus-keda] {tool.name} {setting}: skipped, the run's budget is spent", file=sys.stderr)
                continue
            what = {"tool": tool.name, "objects": n, "scenario": "scaling", "setting": setting}
            args.phase_timeout = budget.timeout()
            args.round_timeout = min(args.round_limit, args.phase_timeout)

            def measure(setting: str = setting) -> dict[str, Any]:
                return {**scaling_run(bench, tool, ns, n, setting, args), "baseline": base}

            done[setting] = attempt(what, measure, save)
    finally:
        clean_up(bench, tool, ns, n)
    return [ns]


def run_full(
    bench: Bench, tool: Tool, n: int, args: argparse.Namespace, save: Callable[[dict[str, Any]], None], budget: Budget
) -> list[str]:
    ns, m = f"vk-{tool.name}-full", min(n, args.full_objects)
    setting = args.full_setting
    tool.install()
    try:
        bench.set_queues(m, TARGET_PER_REPLICA)
        what = {"tool": tool.name, "objects": m, "scenario": "full", "setting": setting}
        run = attempt(what, lambda: full_run(bench, tool, ns, m, setting, args, budget.timeout()), save)
        print(f"[versus-keda] {tool.name} primary full: {json.dumps(run)}", file=sys.stderr)
    finally:
        clean_up(bench, tool, ns, m)
    return [ns]


def merged(old: dict[str, Any], new_runs: list[dict[str, Any]], command: str, stamp: str) -> dict[str, Any]:
    """`old`'s runs with `new_runs` in their place (by tool, N, scenario and setting). A failed attempt does not
    replace a measured run: it is kept beside it, as `later_attempt`."""

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["tool"], r["objects"], r["scenario"], r["setting"])

    runs = {key(r): r for r in old.get("runs", [])}
    for new in new_runs:
        run = {**new, "measured_at": stamp, "command": command}
        before = runs.get(key(run))
        if "error" in run and before is not None and "error" not in before:
            run = {**before, "later_attempt": {k: run[k] for k in ("error", "measured_at", "command") if k in run}}
        runs[key(run)] = run
    return {
        "keda_version": os.environ.get("OVERSPILL_KEDA_VERSION", "v2.21.0"),
        "runs": sorted(runs.values(), key=lambda r: (r["objects"], r["scenario"], r["setting"], r["tool"])),
    }


def save_run(name: str, command: str) -> Callable[[dict[str, Any]], None]:
    """Merges one run into benchmarks/results/<name>.json at once: a run stopped half-way keeps what it measured."""

    def save(run: dict[str, Any]) -> None:
        path = RESULTS / f"{name}.json"
        old = json.loads(path.read_text()) if path.exists() else {}
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with contextlib.redirect_stdout(sys.stderr):  # write() echoes the whole file: keep stdout for the table
            write(name, merged(old, [run], command, stamp))

    return save


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=100, help="N workloads (and ScaledObjects / BurstPolicies)")
    ap.add_argument("--tools", default="keda,overspill")
    ap.add_argument("--settings", default="defaults,equal")
    ap.add_argument("--scenarios", default="scaling,full")
    ap.add_argument("--rounds", type=int, default=4, help="queue changes per object per setting (alternating)")
    ap.add_argument("--spread", type=float, default=10.0, help="each round's changes land over this many seconds")
    ap.add_argument("--steady", type=float, default=30.0, help="seconds of the steady window")
    ap.add_argument("--settle", type=float, default=10.0, help="seconds after a start before the full scenario")
    ap.add_argument(
        "--settle-polls",
        type=float,
        default=2.0,
        help="the steady window opens once every pod is Ready and this many of the tool's polls passed with no "
        "write to a workload",
    )
    ap.add_argument("--full-tools", help="the tools of the full scenario, in this order (default: --tools)")
    ap.add_argument("--full-setting", default="defaults", help="the setting both tools run the full scenario with")
    ap.add_argument(
        "--budget-minutes",
        type=float,
        default=1e9,
        help="the whole run's time on the lab: no phase starts after it, phase limits are cut to it",
    )
    ap.add_argument("--full-objects", type=int, default=100, help="cap on N for the full-primary scenario")
    ap.add_argument("--full-hold", type=float, default=120.0, help="seconds to wait for the full scenario")
    ap.add_argument(
        "--phase-timeout",
        type=float,
        help="seconds each phase may take (start, each round, clean-up) before it is recorded as not reached "
        "and the run goes on (default: max(300, 0.6 N))",
    )
    ap.add_argument(
        "--round-timeout",
        type=float,
        help="seconds each change round may take before its missing changes are counted as missed (default: the "
        "phase limit)",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--name", default="versus_keda", help="results file name (a smoke run: anything else)")
    ap.add_argument("--table", action="store_true", help="print the Markdown table from the results and exit")
    args = ap.parse_args()
    if args.table:
        from benchmarks.versus_keda_table import provenance, table

        results = json.loads((RESULTS / f"{args.name}.json").read_text())
        print(table(results) + "\n\n" + provenance(results))
        return
    args.settings = args.settings.split(",")
    if args.phase_timeout is None:
        args.phase_timeout = max(300.0, args.objects * 0.6)
    args.scenarios = args.scenarios.split(",")
    args.round_limit = args.round_timeout or args.phase_timeout
    args.round_timeout = args.round_limit
    bench = Bench(Lab())
    n = args.objects
    roomy = math.ceil(2.5 * n / 1000) + 1
    full = min(n, args.full_objects)
    bench.add_nodes(bench.lab.primary_kc, [node(f"vk-roomy-{k}", "roomy", 1000, 1000) for k in range(roomy)])
    kinds: dict[str, type[Tool]] = {"keda": Keda, "overspill": Overspill}
    tools = [kinds[t](bench) for t in args.tools.split(",")]
    bench.add_nodes(bench.lab.primary_kc, [node(f"vk-{full_pool(t)}", full_pool(t), full, full + 10) for t in tools])
    bench.add_nodes(  # only Overspill places anything in the secondary
        bench.lab.secondary_kc,
        [node(f"vk-full-{k}", "full-overspill", 1000, 1000) for k in range(math.ceil(3 * full / 1000) + 1)],
    )
    bench.set_queues(n, TARGET_PER_REPLICA)
    command = "python -m benchmarks.versus_keda " + " ".join(sys.argv[1:])
    save = save_run(args.name, command)
    budget = Budget(args.budget_minutes, args.phase_timeout)
    # scenario by scenario, both tools back to back on the same lab start: the pure-scaling figures of both tools
    # come first, the primary-full ones after, each saved as soon as measured
    try:
        full_tools = [next(t for t in tools if t.name == k) for k in (args.full_tools or args.tools).split(",")]
        for scenario, run, order in (("scaling", run_scaling, tools), ("full", run_full, full_tools)):
            for tool in order:
                if scenario not in args.scenarios:
                    continue
                if budget.spent():
                    print(f"[versus-keda] {tool.name} {scenario}: skipped, the budget is spent", file=sys.stderr)
                    continue
                try:
                    run(bench, tool, n, args, save, budget)
                except (Exception, SystemExit) as e:  # e.g. the lab too slow to start the workloads: a result,
                    # and the next tool/scenario may still be measured
                    print(f"[versus-keda] {tool.name} {scenario}: failed: {e!r}", file=sys.stderr)
                    m = n if scenario == "scaling" else min(n, args.full_objects)
                    for setting in args.settings if scenario == "scaling" else [args.full_setting]:
                        what = {"tool": tool.name, "objects": m, "scenario": scenario, "setting": setting}
                        save(
                            {
                                **what,
                                "error": f"{type(e).__name__}: {e}",
                                "started_utc": utc(),
                                "load_average_1_5_15": load(),
                            }
                        )
    finally:
        bench.remove_nodes()


if __name__ == "__main__":
    main()
