"""A fault run with invariants (issue 10): do the safety promises hold while things break at random?

    hack/lab up && eval "$(hack/lab env)" && .venv/bin/python -m benchmarks.chaos --minutes 20

Four policies (two Inference, two CIRunner: one marks busy runners by annotation, one by a per-pod query) share
one BurstTarget capped at 6 replicas. Each queue moves at random; runners turn busy and idle at random. One
fault at a time, every kind in turn in a seeded random order: Prometheus stopped, the target's API server frozen
(it stops answering), the operator SIGKILLed, the busy query failing, a policy dropping its target, a policy
moving its mirror to another namespace, a hand edit of a mirror, the primary workload deleted and recreated.

Checked continuously: no busy runner removed, the cap never exceeded, the primary never scaled below what the
queue asks because of a target fault, hand edits corrected; at the end, nothing of the policies' left in the
target, and no secret-bearing string in the operator's log, the policies' status or their Events.
Writes benchmarks/results/chaos.json (or --out); docs/reliability.md quotes it. Goal: 0 violations.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import os
import random
import secrets
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from benchmarks.common import ROOT, write
from benchmarks.lab_setup import GROUP, OPERATOR_METRICS_PORT, VERSION, Lab
from benchmarks.scale import workload

TARGET = "chaos-capped"
CAP = 6
POLL = 2
PRIMARY_CAP = 2
BUSY = "overspill.dev/busy"
MANAGED = "app.kubernetes.io/managed-by=overspill"
POLICY_UID = "overspill.dev/policy-uid"
# a runner counts as busy for the check once the operator has had a full poll (and some) to see it
BUSY_GRACE = POLL * 2 + 3
FAULTS = (
    "prometheus-stopped",
    "target-apiserver-frozen",
    "operator-sigkill",
    "busy-query-failing",
    "policy-drops-target",
    "mirror-namespace-changed",
    "mirror-hand-edited",
    "workload-deleted-recreated",
)


@dataclass
class Policy:
    ns: str
    workload_class: str
    busy_by: str | None  # "annotation", "query" or None
    uid: str = ""
    queue: float = 0.0
    queue_history: list[tuple[float, float]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return "w"

    @property
    def alt_ns(self) -> str:
        return self.ns + "-alt"


def _policies(run_id: str) -> list[Policy]:
    return [
        Policy(f"chaos-{run_id}-inf-a", "Inference", None),
        Policy(f"chaos-{run_id}-inf-b", "Inference", None),
        Policy(f"chaos-{run_id}-ci-a", "CIRunner", "annotation"),
        Policy(f"chaos-{run_id}-ci-q", "CIRunner", "query"),
    ]


def _desired(queue: float) -> int:
    return max(1, min(8, math.ceil(queue / 10 - 1e-9)))


class Chaos:
    def __init__(self, lab: Lab, minutes: float, seed: int, workdir: Path, port: int = OPERATOR_METRICS_PORT) -> None:
        self.lab = lab
        self.port = port  # the operator's metrics port; liveness on the next one
        self.minutes = minutes
        self.rng = random.Random(seed)
        self.seed = seed
        self.workdir = workdir
        self.run_id = f"{seed % 1000:03d}{secrets.token_hex(2)}"
        self.policies = _policies(self.run_id)
        self.password = "chaos-pw-" + secrets.token_hex(8)
        self.canaries = [self.password, *self._kubeconfig_canaries()]
        self.faults: Counter[str] = Counter()
        self.not_injected: Counter[str] = Counter()  # a fault that failed or found nothing to act on
        self.busy_marked = 0  # runners turned busy by the run (the busy invariant is only as good as this)
        self.order: list[str] = []
        self.violations: Counter[str] = Counter()
        self.samples: list[str] = []
        self.checks = 0
        self.worst_total = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.operator: subprocess.Popen[bytes] | None = None
        self.operator_log = workdir / "operator.log"
        # busy runners: (cluster, namespace, pod) -> monotonic time marked busy
        self.busy: dict[tuple[str, str, str], float] = {}
        # policies whose primary pods may vanish because the run itself deleted the workload
        self.excused_primary: dict[str, float] = {}
        self.target_down_since: float | None = None
        self.primary_at_fault: dict[str, int] = {}
        self.statuses_seen: list[str] = []

    # ---- set-up ----------------------------------------------------------------------------------------
    def _kubeconfig_canaries(self) -> list[str]:
        """Strings from the target's credentials that must never show up anywhere."""
        data = yaml.safe_load(Path(self.lab.secondary_kc).read_text())
        out = []
        for user in data.get("users") or []:
            for key in ("token", "client-key-data", "client-certificate-data", "password"):
                value = (user.get("user") or {}).get(key)
                if value:
                    out.append(str(value)[-48:])
                    if key.endswith("-data"):
                        pem = base64.b64decode(value).decode(errors="replace").splitlines()
                        out.extend(line for line in pem[1:3] if len(line) > 20)
        return out

    def _prom_url(self) -> str:
        return self.lab.prom.replace("://", f"://chaos:{self.password}@", 1)

    def _spec(self, p: Policy) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "workloadRef": {"name": p.name},
            "workloadClass": p.workload_class,
            "metric": {
                "prometheus": {"url": self._prom_url(), "query": f'sum(overspill_lab_queue_depth{{queue="{p.ns}"}})'},
                "targetPerReplica": 10,
            },
            "minReplicas": 1,
            "maxReplicas": 8,
            "primary": {"maxReplicas": PRIMARY_CAP, "pendingGracePeriodSeconds": 2},
            "targets": [{"name": TARGET, "overrides": {"namespace": p.ns}}],
            "behavior": {"pollIntervalSeconds": POLL, "scaleDownStabilizationSeconds": 0, "minBurstDurationSeconds": 0},
        }
        if p.busy_by == "annotation":
            spec["busy"] = {"podAnnotation": BUSY}
        elif p.busy_by == "query":
            spec["busy"] = {"query": self._busy_query()}
        return spec

    @staticmethod
    def _busy_query() -> str:
        per_pod = 'label_replace(overspill_lab_queue_depth{queue=~"busy-.+"}, "pod", "$1", "queue", "busy-(.+)")'
        return f"max by (pod) ({per_pod})"

    def setup(self) -> None:
        self.lab.install()
        allowed = [x for p in self.policies for x in (p.ns, p.alt_ns)]
        target = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "BurstTarget",
            "metadata": {"name": TARGET},
            "spec": {
                "kubeconfigSecretRef": {"name": "lab-secondary-kubeconfig", "namespace": "overspill-system"},
                "maxReplicas": CAP,
                "probeIntervalSeconds": 2,
                "allowedTargetNamespaces": allowed,
                "prometheus": {"url": self.lab.prom},
            },
        }
        api = client.CustomObjectsApi(self.lab.primary)
        with contextlib.suppress(client.ApiException):
            api.delete_cluster_custom_object(GROUP, VERSION, "bursttargets", TARGET)
            time.sleep(2)
        api.create_cluster_custom_object(GROUP, VERSION, "bursttargets", target)
        self.start_operator()
        core = client.CoreV1Api(self.lab.primary)
        for p in self.policies:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=p.ns)))
            self.lab.set_queue(p.ns, 0)
            client.AppsV1Api(self.lab.primary).create_namespaced_deployment(p.ns, workload(p.name))
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "BurstPolicy",
                "metadata": {"name": p.name},
                "spec": self._spec(p),
            }
            created = api.create_namespaced_custom_object(GROUP, VERSION, p.ns, "burstpolicies", body)
            p.uid = created["metadata"]["uid"]

    def start_operator(self) -> None:
        env = {**os.environ, "KUBECONFIG": self.lab.primary_kc, "OVERSPILL_PROMETHEUS_URL": self.lab.prom}
        cmd = [
            str(ROOT / ".venv/bin/overspill"),
            "run",
            "--standalone",
            "-A",
            "--metrics-port",
            str(self.port),
            "--metrics-address",
            "127.0.0.1",
            "--liveness",
            f"http://127.0.0.1:{self.port + 1}/healthz",
        ]
        with open(self.operator_log, "ab") as log:
            self.operator = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        """A restarted operator is up before the next fault (a port still held by the old one shows here); on a
        busy machine a slow start is waited for, not counted as a fault."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.operator is not None
            if self.operator.poll() is not None:
                raise RuntimeError(f"the operator exited with {self.operator.returncode}; see {self.operator_log}")
            url = f"http://127.0.0.1:{self.port + 1}/healthz"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
            time.sleep(0.5)
        raise RuntimeError(f"the operator is not healthy after 120 s; see {self.operator_log}")

    # ---- the moving world ------------------------------------------------------------------------------
    def move_queues(self) -> None:
        now = time.monotonic()
        for p in self.policies:
            p.queue = max(0.0, min(90.0, p.queue + self.rng.choice([-30, -15, 0, 15, 30, 45])))
            p.queue_history.append((now, p.queue))
            p.queue_history = [(t, q) for t, q in p.queue_history if now - t < 30]
            with contextlib.suppress(OSError):
                self.lab.set_queue(p.ns, p.queue)

    def _pods(self, cluster: str, p: Policy) -> list[Any]:
        api = self.lab.primary if cluster == "primary" else self.lab.secondary
        out = []
        for ns in (p.ns,) if cluster == "primary" else (p.ns, p.alt_ns):
            out.extend(
                client.CoreV1Api(api).list_namespaced_pod(ns, label_selector=f"app={p.name}", _request_timeout=3).items
            )
        return out

    def _mark(self, cluster: str, p: Policy, pod: Any, busy: bool) -> None:
        key = (cluster, pod.metadata.namespace, pod.metadata.name)
        if p.busy_by == "annotation":
            api = self.lab.primary if cluster == "primary" else self.lab.secondary
            client.CoreV1Api(api).patch_namespaced_pod(
                pod.metadata.name,
                pod.metadata.namespace,
                {"metadata": {"annotations": {BUSY: "true" if busy else "false"}}},
                _request_timeout=3,
            )
        else:
            self.lab.set_queue(f"busy-{pod.metadata.name}", 1 if busy else 0)
        with self.lock:
            if busy:
                self.busy_marked += key not in self.busy
                self.busy.setdefault(key, time.monotonic())
            else:
                self.busy.pop(key, None)

    def move_runners(self) -> None:
        for p in self.policies:
            if p.busy_by is None:
                continue
            for cluster in ("primary", "secondary"):
                try:
                    pods = [x for x in self._pods(cluster, p) if x.status.phase == "Running"]
                    pods = [x for x in pods if x.metadata.deletion_timestamp is None]
                    for pod in pods:
                        key = (cluster, pod.metadata.namespace, pod.metadata.name)
                        marked = key in self.busy
                        if self.rng.random() < (0.25 if marked else 0.15):
                            self._mark(cluster, p, pod, not marked)
                        elif not marked and p.busy_by == "query":
                            self.lab.set_queue(f"busy-{pod.metadata.name}", 0)  # idle runners report 0
                except Exception:  # noqa: S112 - a cluster that is down this second: try again next round
                    continue

    # ---- invariants ----------------------------------------------------------------------------------------
    def violation(self, kind: str, detail: str) -> None:
        with self.lock:
            self.violations[kind] += 1
            if len(self.samples) < 40:
                self.samples.append(f"{time.strftime('%H:%M:%S')} {kind}: {detail}")
        print(f"[chaos] VIOLATION {kind}: {detail}", flush=True)

    def check_cap(self) -> None:
        uids = {p.uid for p in self.policies}
        mirrors = client.AppsV1Api(self.lab.secondary).list_deployment_for_all_namespaces(
            label_selector=MANAGED, _request_timeout=3
        )
        total = sum(d.spec.replicas or 0 for d in mirrors.items if (d.metadata.labels or {}).get(POLICY_UID) in uids)
        self.worst_total = max(self.worst_total, total)
        if total > CAP:
            self.violation("cap-exceeded", f"{total} replicas in {TARGET} (cap {CAP})")

    def check_busy(self, cluster: str) -> None:
        now = time.monotonic()
        live: dict[tuple[str, str, str], bool] = {}
        for p in self.policies:
            if p.busy_by is None:
                continue
            for pod in self._pods(cluster, p):
                live[(cluster, pod.metadata.namespace, pod.metadata.name)] = pod.metadata.deletion_timestamp is None
        with self.lock:
            marked = [(k, t) for k, t in self.busy.items() if k[0] == cluster]
        for key, since in marked:
            if live.get(key, False):
                continue
            with self.lock:
                self.busy.pop(key, None)
            ns = key[1].removesuffix("-alt")
            excused = cluster == "primary" and now - self.excused_primary.get(ns, -1e9) < 60
            if now - since >= BUSY_GRACE and not excused:
                self.violation("busy-runner-removed", f"{cluster} {key[1]}/{key[2]} busy for {now - since:.0f}s")

    def check_primary_floor(self) -> None:
        """While the target is down, the primary keeps at least what the queue asks (within its cap)."""
        if self.target_down_since is None or time.monotonic() - self.target_down_since < POLL * 2:
            return
        for p in self.policies:
            try:
                dep = client.AppsV1Api(self.lab.primary).read_namespaced_deployment(p.name, p.ns, _request_timeout=3)
            except client.ApiException:
                continue
            asked = min((_desired(q) for _, q in p.queue_history), default=1)
            floor = min(self.primary_at_fault.get(p.ns, 0), asked, PRIMARY_CAP)
            if (dep.spec.replicas or 0) < floor:
                self.violation("primary-below-metric", f"{p.ns}: primary {dep.spec.replicas} < {floor}")

    def check_statuses(self) -> None:
        api = client.CustomObjectsApi(self.lab.primary)
        for p in self.policies:
            with contextlib.suppress(client.ApiException):
                obj = api.get_namespaced_custom_object(GROUP, VERSION, p.ns, "burstpolicies", p.name)
                self._scan("status", json.dumps(obj.get("status") or {}))

    def _scan(self, where: str, text: str) -> None:
        for canary in self.canaries:
            if canary in text:
                self.violation("secret-shown", f"a credential string appears in {where}")
                return

    def monitor(self) -> None:
        rounds = 0
        while not self.stop.is_set():
            rounds += 1
            for check in (
                self.check_cap,
                lambda: self.check_busy("primary"),
                lambda: self.check_busy("secondary"),
                self.check_primary_floor,
            ):
                with contextlib.suppress(Exception):  # a cluster that is down now is checked next round
                    check()
            if rounds % 10 == 0:
                with contextlib.suppress(Exception):
                    self.check_statuses()
            with self.lock:
                self.checks += 1
            self.stop.wait(1.0)

    # ---- faults ------------------------------------------------------------------------------------------------
    def control(self, verb: str, component: str) -> None:
        subprocess.run([str(ROOT / "hack/lab"), verb, component], check=True, capture_output=True)

    @contextlib.contextmanager
    def fault(self, kind: str) -> Iterator[None]:
        """Counted once injected and undone; a fault that raises is counted as not injected."""
        print(f"[chaos] {time.strftime('%H:%M:%S')} fault: {kind}", flush=True)
        try:
            yield
        except Exception:
            self.not_injected[kind] += 1
            raise
        self.faults[kind] += 1

    def _patch_policy(self, p: Policy, patch: dict[str, Any]) -> None:
        client.CustomObjectsApi(self.lab.primary).patch_namespaced_custom_object(
            GROUP, VERSION, p.ns, "burstpolicies", p.name, patch
        )

    def inject(self, kind: str, hold: float) -> None:
        p = self.rng.choice(self.policies)
        with self.fault(kind):
            if kind == "prometheus-stopped":
                self.control("stop", "prometheus")
                self.sleep(hold)
                self.control("start", "prometheus")
            elif kind == "target-apiserver-frozen":
                for q in self.policies:
                    with contextlib.suppress(client.ApiException):
                        d = client.AppsV1Api(self.lab.primary).read_namespaced_deployment(q.name, q.ns)
                        self.primary_at_fault[q.ns] = d.spec.replicas or 0
                # frozen, not stopped: a stopped API server's port was taken by another lab starting on this
                # machine, and the target never came back
                self.control("freeze", "secondary-apiserver")
                self.target_down_since = time.monotonic()
                self.sleep(hold)
                self.target_down_since = None
                self.control("thaw", "secondary-apiserver")
            elif kind == "operator-sigkill":
                assert self.operator is not None
                self.operator.kill()
                self.operator.wait(10)
                self.sleep(self.rng.uniform(1, 5))
                self.start_operator()
            elif kind == "busy-query-failing":
                q = next(x for x in self.policies if x.busy_by == "query")
                self._patch_policy(q, {"spec": {"busy": {"query": "max by (pod) (overspill_lab_no_such_metric)"}}})
                self.sleep(hold)
                self._patch_policy(q, {"spec": {"busy": {"query": self._busy_query()}}})
            elif kind == "policy-drops-target":
                self._patch_policy(p, {"spec": {"targets": []}})
                self.sleep(hold)
                self._patch_policy(p, {"spec": {"targets": self._spec(p)["targets"]}})
            elif kind == "mirror-namespace-changed":
                moved = [{"name": TARGET, "overrides": {"namespace": p.alt_ns}}]
                self._patch_policy(p, {"spec": {"targets": moved}})
                self.sleep(hold)
                self._patch_policy(p, {"spec": {"targets": self._spec(p)["targets"]}})
            elif kind == "mirror-hand-edited":
                # an Inference mirror: a CIRunner's waits while runners are busy (TemplateUpdatePending), by design
                if not self.hand_edit([x for x in self.policies if x.busy_by is None]):
                    raise LookupError("no mirror with replicas to edit")
            elif kind == "workload-deleted-recreated":
                self.excused_primary[p.ns] = time.monotonic() + hold
                client.AppsV1Api(self.lab.primary).delete_namespaced_deployment(p.name, p.ns)
                self.sleep(hold)
                with contextlib.suppress(client.ApiException):
                    client.AppsV1Api(self.lab.primary).create_namespaced_deployment(p.ns, workload(p.name))
                self.excused_primary[p.ns] = time.monotonic()

    def hand_edit(self, candidates: list[Policy]) -> bool:
        """Someone edits a mirror in the target; within a few polls the mirror must be back as desired. With no
        mirror running now, one policy's queue goes up until one does (up to 30 s)."""
        apps = client.AppsV1Api(self.lab.secondary)
        uids = {p.uid for p in candidates}
        deadline = time.monotonic() + 30
        while True:
            found = [
                d
                for d in apps.list_deployment_for_all_namespaces(label_selector=MANAGED, _request_timeout=3).items
                if (d.metadata.labels or {}).get(POLICY_UID) in uids and (d.spec.replicas or 0) > 0
            ]
            if found or time.monotonic() > deadline or self.stop.is_set():
                break
            p = self.rng.choice(candidates)
            p.queue = 90.0
            with contextlib.suppress(OSError):
                self.lab.set_queue(p.ns, p.queue)
            self.sleep(2)
        if not found:
            return False
        d = self.rng.choice(found)
        patch = {"spec": {"template": {"spec": {"nodeSelector": {"chaos-edit": "true"}}}}}
        apps.patch_namespaced_deployment(d.metadata.name, d.metadata.namespace, patch)
        deadline = time.monotonic() + POLL * 3 + 5
        while time.monotonic() < deadline:
            self.sleep(1)
            try:
                now = apps.read_namespaced_deployment(d.metadata.name, d.metadata.namespace, _request_timeout=3)
            except client.ApiException as err:
                if err.status == 404:
                    return True  # removed (the queue fell): the edit went with it
                continue
            if "chaos-edit" not in (now.spec.template.spec.node_selector or {}) or not now.spec.replicas:
                return True  # corrected; or scaled to 0, where an edit runs nothing and is replaced on scale-up
        self.violation("drift-not-corrected", f"{d.metadata.namespace}/{d.metadata.name} still hand-edited")
        return True

    def sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)

    # ---- the run -----------------------------------------------------------------------------------------------
    def world(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(Exception):
                self.move_queues()
            with contextlib.suppress(Exception):
                self.move_runners()
            self.stop.wait(self.rng.uniform(3, 8))

    def run(self) -> dict[str, Any]:
        try:
            return self._run()
        finally:  # never left acting beside whatever runs on the lab next (the next test module's operator)
            self._stop_operator()

    def _stop_operator(self) -> None:
        if self.operator is not None and self.operator.poll() is None:
            self.operator.terminate()
            try:
                self.operator.wait(20)
            except subprocess.TimeoutExpired:
                self.operator.kill()
                self.operator.wait(10)

    def _run(self) -> dict[str, Any]:
        self.setup()
        end = time.monotonic() + self.minutes * 60
        threads = [threading.Thread(target=self.monitor, daemon=True), threading.Thread(target=self.world, daemon=True)]
        for t in threads:
            t.start()
        self.sleep(15)  # a first burst before the first fault
        try:
            short = self.minutes <= 5  # the CI run: every kind of fault once in about three minutes
            while time.monotonic() < end - 20:
                kind = self.next_fault()
                hold = self.rng.uniform(5, 12) if short else self.rng.uniform(8, 25)
                try:
                    self.inject(kind, hold)
                except Exception as err:
                    print(f"[chaos] fault {kind} could not be injected: {type(err).__name__}: {err}", flush=True)
                self.sleep(self.rng.uniform(3, 6) if short else self.rng.uniform(4, 12))
        finally:
            self.stop.set()
            for t in threads:
                t.join(15)
            self.recover()
        self.finish()
        return self.figures()

    def next_fault(self) -> str:
        """Every kind in turn, in a seeded random order per round: no kind goes untried by chance."""
        if not self.order:
            self.order = list(FAULTS)
            self.rng.shuffle(self.order)
        return self.order.pop()

    def recover(self) -> None:
        for verb, component in (("start", "prometheus"), ("thaw", "secondary-apiserver")):
            with contextlib.suppress(subprocess.CalledProcessError):
                self.control(verb, component)
        if self.operator is None or self.operator.poll() is not None:
            self.start_operator()

    def idle_all(self) -> None:
        """Every runner idle, and said so (a runner the busy query knows nothing of counts as busy)."""
        for p in self.policies:
            if p.busy_by is None:
                continue
            for cluster in ("primary", "secondary"):
                with contextlib.suppress(Exception):
                    for pod in self._pods(cluster, p):
                        self._mark(cluster, p, pod, False)

    def finish(self) -> None:
        """Everything up again, queues empty, runners idle; then the policies go and must leave nothing."""
        for p in self.policies:
            with contextlib.suppress(Exception):
                self.lab.set_queue(p.ns, 0)
        self.idle_all()
        self.busy.clear()
        self.check_statuses()
        api = client.CustomObjectsApi(self.lab.primary)
        time.sleep(POLL * 3)
        for p in self.policies:
            with contextlib.suppress(client.ApiException):
                api.delete_namespaced_custom_object(GROUP, VERSION, p.ns, "burstpolicies", p.name)
        deadline = time.monotonic() + 180
        left: list[str] = []
        while time.monotonic() < deadline:
            left = self.leftovers()
            if not left:
                break
            self.idle_all()  # runners started since are idle too
            time.sleep(2)
        for item in left:
            self.violation("left-behind", item)
        events = []
        for p in self.policies:
            with contextlib.suppress(client.ApiException):
                events.extend(client.CoreV1Api(self.lab.primary).list_namespaced_event(p.ns).items)
        self._scan("Events", " ".join(f"{e.reason} {e.message}" for e in events))
        self._scan("the operator's log", self.operator_log.read_text(errors="replace"))
        with contextlib.suppress(Exception):
            api.delete_cluster_custom_object(GROUP, VERSION, "bursttargets", TARGET)
        self._stop_operator()
        for p in self.policies:
            with contextlib.suppress(Exception):
                self.lab.remove_namespace(p.ns, timeout=60)
            with contextlib.suppress(client.ApiException):
                client.CoreV1Api(self.lab.secondary).delete_namespace(p.alt_ns)

    def leftovers(self) -> list[str]:
        uids = {p.uid for p in self.policies}
        core, apps = client.CoreV1Api(self.lab.secondary), client.AppsV1Api(self.lab.secondary)
        listers: dict[str, Callable[..., Any]] = {
            "Deployment": apps.list_deployment_for_all_namespaces,
            "ConfigMap": core.list_config_map_for_all_namespaces,
            "Secret": core.list_secret_for_all_namespaces,
            "ServiceAccount": core.list_service_account_for_all_namespaces,
            "Service": core.list_service_for_all_namespaces,
        }
        out = []
        for kind, lister in listers.items():
            for obj in lister(label_selector=MANAGED, _request_timeout=5).items:
                if (obj.metadata.labels or {}).get(POLICY_UID) in uids:
                    out.append(f"{kind} {obj.metadata.namespace}/{obj.metadata.name}")
        for p in self.policies:
            for ns in (p.ns, p.alt_ns):
                pods = core.list_namespaced_pod(ns, label_selector=f"app={p.name}", _request_timeout=5).items
                out.extend(f"Pod {ns}/{x.metadata.name}" for x in pods)
        return out

    def figures(self) -> dict[str, Any]:
        return {
            "command": f"python -m benchmarks.chaos --minutes {self.minutes:g} --seed {self.seed}",
            "minutes": self.minutes,
            "seed": self.seed,
            "policies": len(self.policies),
            "target_cap": CAP,
            "poll_interval_seconds": POLL,
            "faults_injected": dict(sorted(self.faults.items())),
            "faults_total": sum(self.faults.values()),
            "faults_not_injected": dict(sorted(self.not_injected.items())),
            "runners_turned_busy": self.busy_marked,
            "violations": {k: self.violations.get(k, 0) for k in INVARIANTS},
            "violations_total": sum(self.violations.values()),
            "violation_samples": self.samples,
            "invariant_checks": self.checks,
            "max_replicas_seen_in_target": self.worst_total,
        }


INVARIANTS = (
    "busy-runner-removed",
    "cap-exceeded",
    "primary-below-metric",
    "drift-not-corrected",
    "left-behind",
    "secret-shown",
)


def run(minutes: float, seed: int, port: int = OPERATOR_METRICS_PORT) -> dict[str, Any]:
    lab = Lab()
    kept = os.environ.get("OVERSPILL_CHAOS_WORKDIR")  # keeps the operator's log for reading afterwards
    if kept:
        Path(kept).mkdir(parents=True, exist_ok=True)
        return Chaos(lab, minutes, seed, Path(kept), port).run()
    with tempfile.TemporaryDirectory(prefix="overspill-chaos-") as tmp:
        return Chaos(lab, minutes, seed, Path(tmp), port).run()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20)
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    ap.add_argument("--out", default="chaos", help="name of the results file under benchmarks/results")
    ap.add_argument(
        "--operator-port",
        type=int,
        default=OPERATOR_METRICS_PORT,
        help="the operator's metrics port, liveness on the next (default $OVERSPILL_BENCH_OPERATOR_PORT or 19395)",
    )
    args = ap.parse_args()
    write(args.out, run(args.minutes, args.seed, args.operator_port))


if __name__ == "__main__":
    main()
