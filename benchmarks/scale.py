"""One operator, N policies, on the lab's real API servers: start-up, a burst fanned out to all, the return, and the
cost of standing still (issue 12).

    hack/lab up && eval "$(hack/lab env)" && .venv/bin/python -m benchmarks.scale --policies 1000 [--poll 10]

Each policy scales its own Deployment from its own queue (its own PromQL query, the realistic worst case for
Prometheus: nothing to share), with a primary capped at one replica so that the burst puts one replica per policy
into the secondary. Roomy fake nodes are added to both clusters so pod slots never limit the run.

Figures (benchmarks/results/scale-<N>.json, table in docs/benchmarks.md):
- start-up: seconds from the operator's start until every policy has written status;
- burst: every queue crosses at once; seconds (and polls) until every policy's mirror exists with a replica;
- return: every queue drops; seconds (and polls) until every mirror is back at 0;
- steady: operator RSS and CPU, and non-watch requests per second to each API server (from the API server's own
  apiserver_request_total, minus this script's own reads) and to Prometheus (prometheus_http_requests_total);
- poll lateness p50/p99 from the operator's overspill_poll_lateness_seconds histogram.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import json
import re
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client

from benchmarks import apiserver_metrics
from benchmarks.common import write
from benchmarks.lab_setup import GROUP, OPERATOR_METRICS_PORT, VERSION, Lab
from benchmarks.procstat import cpu_seconds, rss_mib

MANAGED = "app.kubernetes.io/managed-by=overspill"
METRICS_URL = f"http://127.0.0.1:{OPERATOR_METRICS_PORT}/metrics"


def roomy_nodes(api: client.ApiClient, prefix: str, count: int) -> None:
    res = {"cpu": "4000", "memory": "16Ti", "pods": "1500", "nvidia.com/gpu": "1500"}
    core = client.CoreV1Api(api)
    for i in range(count):
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": f"{prefix}-{i}",
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {"type": "kwok", "kubernetes.io/hostname": f"{prefix}-{i}"},
            },
            "status": {"allocatable": res, "capacity": res},
        }
        with contextlib.suppress(client.ApiException):
            core.create_node(body)


def workload(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 0,
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


def policy(name: str, queue: str, poll: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BurstPolicy",
        "metadata": {"name": name},
        "spec": {
            "workloadRef": {"name": name},
            "metric": {
                "prometheus": {"query": f'sum(overspill_lab_queue_depth{{queue="{queue}"}})'},
                "targetPerReplica": 10,
            },
            "minReplicas": 1,
            "maxReplicas": 4,
            "primary": {"maxReplicas": 1},
            "targets": [{"name": "secondary"}],
            "behavior": {
                "pollIntervalSeconds": poll,
                "scaleDownStabilizationSeconds": 0,
                "minBurstDurationSeconds": 0,
            },
        },
    }


def put_queues(lab: Lab, names: list[str], value: float) -> dict[str, float]:
    """Set every queue; when each was set (wall clock): 1,000 sets take seconds, and a policy can only react to
    its own queue once it has moved."""

    def put(name: str) -> float:
        for attempt in range(5):  # the lab's exporter is a small single server: a reset connection is retried
            try:
                lab.set_queue(name, value)
                return time.time()
            except OSError:
                time.sleep(0.2 * (attempt + 1))
        lab.set_queue(name, value)
        return time.time()

    with cf.ThreadPoolExecutor(4) as pool:
        return dict(zip(names, pool.map(put, names), strict=True))


def apiserver_requests(api: client.ApiClient) -> apiserver_metrics.Snapshot:
    """Requests the API server has served, by verb and resource (its own counter)."""
    return apiserver_metrics.scrape(api)


def per_second(before: apiserver_metrics.Snapshot, after: apiserver_metrics.Snapshot, own: int = 1) -> float:
    """Non-watch requests per second between two scrapes, less `own` reads made by this script."""
    r = apiserver_metrics.rates(before, after)
    return round(max(0.0, r.requests_per_second - own / r.seconds), 2)


def busiest(before: apiserver_metrics.Snapshot, after: apiserver_metrics.Snapshot) -> dict[str, float]:
    """The busiest "VERB group/resource" rates: which requests a figure is made of."""
    return apiserver_metrics.rates(before, after, top=6).top


def prometheus_queries(lab: Lab) -> float:
    with urllib.request.urlopen(f"{lab.prom}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("prometheus_http_requests_total{") and 'handler="/api/v1/query"' in line
    )


def operator_metrics() -> str:
    with urllib.request.urlopen(METRICS_URL, timeout=10) as r:
        return str(r.read().decode())


def lateness_buckets(text: str) -> list[tuple[float, float]]:
    """(le, cumulative count) of the operator's overspill_poll_lateness_seconds histogram."""
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        m = re.match(r'overspill_poll_lateness_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
        if m:
            buckets.append((float("inf") if m.group(1) == "+Inf" else float(m.group(1)), float(m.group(2))))
    return buckets


def lateness_quantiles(
    after: list[tuple[float, float]], before: list[tuple[float, float]] | None = None
) -> dict[str, float | None]:
    """p50/p99 as bucket upper bounds, over the ticks between two scrapes (all ticks when `before` is None)."""
    base = dict(before or [])
    buckets = [(le, count - base.get(le, 0.0)) for le, count in after]
    if not buckets or buckets[-1][1] == 0:
        return {"p50_le": None, "p99_le": None, "ticks": 0}
    total = buckets[-1][1]
    out: dict[str, float | None] = {"ticks": total}
    for q, key in ((0.5, "p50_le"), (0.99, "p99_le")):
        le = next(le for le, count in buckets if count >= q * total)
        out[key] = None if le == float("inf") else le  # None: beyond the last bucket (30 s); JSON has no infinity
    return out


def proc_figures(pid: int) -> tuple[float, float]:
    """(RSS MiB, CPU seconds so far) of a process."""
    return rss_mib(pid), cpu_seconds(pid)


def count_mirrors(lab: Lab, at_least: int) -> int:
    items = client.AppsV1Api(lab.secondary).list_deployment_for_all_namespaces(label_selector=MANAGED).items
    return sum(1 for d in items if (d.spec.replicas or 0) >= at_least and (d.metadata.name or "").startswith("w-"))


def created_after(lab: Lab, since: float | dict[str, float]) -> dict[str, float]:
    """When the mirrors were created, in seconds after `since`: one instant, or each workload's own (when its
    queue moved). The API server's timestamps are whole seconds: each figure is up to 1 s early. Tells a burst whose
    every policy acted in its first poll but slowly from one where some policies needed a second poll."""
    items = client.AppsV1Api(lab.secondary).list_deployment_for_all_namespaces(label_selector=MANAGED).items
    offsets = sorted(
        d.metadata.creation_timestamp.timestamp() - (since if isinstance(since, float) else since[d.metadata.name])
        for d in items
        if (d.metadata.name or "").startswith("w-")
        and d.metadata.creation_timestamp is not None
        and (isinstance(since, float) or d.metadata.name in since)
    )
    if not offsets:
        return {}

    def at(q: float) -> float:
        return round(offsets[min(len(offsets) - 1, int(q * len(offsets)))], 1)

    return {"p10": at(0.1), "p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": round(offsets[-1], 1)}


def wait_until(check: Any, timeout: float, interval: float = 1.0) -> tuple[float | None, int]:
    """Seconds until check() is true (None on timeout), and how many reads it took."""
    start = time.monotonic()
    reads = 0
    while time.monotonic() - start < timeout:
        reads += 1
        try:
            if check():
                return time.monotonic() - start, reads
        except Exception as err:  # an API server busy with N policies may time out a read: try again
            print(f"read failed ({type(err).__name__}); retrying", flush=True)
        time.sleep(interval)
    return None, reads


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--policies", type=int, default=1000)
    ap.add_argument("--poll", type=int, default=10)
    ap.add_argument("--namespaces", type=int, default=10)
    ap.add_argument("--steady-seconds", type=int, default=60)
    args = ap.parse_args()
    n, poll = args.policies, args.poll
    lab = Lab()
    lab.install()
    # the lab's BurstTarget caps the secondary at 16 replicas over all policies: lift it for a run of N policies
    client.CustomObjectsApi(lab.primary).patch_cluster_custom_object(
        GROUP, VERSION, "bursttargets", "secondary", {"spec": {"maxReplicas": None}}
    )
    roomy_nodes(lab.primary, "scale-p", max(1, n // 1000 + 1))
    roomy_nodes(lab.secondary, "scale-s", max(1, n // 1000 + 1))
    namespaces = [f"scale-{i}" for i in range(args.namespaces)]
    names = [f"w-{i}" for i in range(n)]
    queue_of = {name: f"scale-{name}" for name in names}
    put_queues(lab, list(queue_of.values()), 0)
    for ns in namespaces:
        lab.fresh_namespace(ns)
    apps, custom = client.AppsV1Api(lab.primary), client.CustomObjectsApi(lab.primary)

    def create(i: int) -> None:
        ns, name = namespaces[i % len(namespaces)], names[i]
        apps.create_namespaced_deployment(ns, workload(name))
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, "burstpolicies", policy(name, queue_of[name], poll))

    t0 = time.monotonic()
    with cf.ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(n)))
    print(f"created {n} workloads and policies in {time.monotonic() - t0:.1f}s", flush=True)

    def lab_settled() -> bool:  # the lab's controllers have started every workload's pod: they are the lab's load
        items = apps.list_deployment_for_all_namespaces(label_selector=None).items
        return sum(1 for d in items if (d.status.ready_replicas or 0) >= 1 and d.metadata.name.startswith("w-")) >= n

    settled, _ = wait_until(lab_settled, 900, interval=5)
    figures_lab = {"workloads_ready_seconds": None if settled is None else round(settled, 1)}
    print(f"lab settled: {figures_lab}", flush=True)
    # the lab's own control plane (leader-election leases, endpoints) makes requests too: measured before the
    # operator starts, and reported beside the operator's share
    base_p0, base_s0 = apiserver_requests(lab.primary), apiserver_requests(lab.secondary)
    time.sleep(30)
    base_p1, base_s1 = apiserver_requests(lab.primary), apiserver_requests(lab.secondary)
    baseline = {"primary": per_second(base_p0, base_p1), "secondary": per_second(base_s0, base_s1)}

    log = Path(tempfile.gettempdir()) / f"overspill-scale-{n}-operator.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    op = lab.start_operator(log)
    started = time.monotonic()
    figures: dict[str, Any] = {
        "command": f"python -m benchmarks.scale --policies {n} --poll {poll}",
        "policies": n,
        "lab": figures_lab,
    }
    try:

        def all_reported() -> bool:
            items = custom.list_cluster_custom_object(GROUP, VERSION, "burstpolicies")["items"]
            done = sum(1 for p in items if (p.get("status") or {}).get("lastDecision", {}).get("reason"))
            return done >= n

        reported, _ = wait_until(all_reported, 600, interval=2)
        figures["startup_all_reported_seconds"] = None if reported is None else round(time.monotonic() - started, 1)
        # settled: two polls, and one status interval (30 s) for the first moving figures to be written
        time.sleep(poll * 2 + 30)

        # steady: nothing moves; measure what standing still costs
        api_p0, api_s0, prom0 = (
            apiserver_requests(lab.primary),
            apiserver_requests(lab.secondary),
            prometheus_queries(lab),
        )
        cpu0 = proc_figures(op.pid)[1]
        t_scrape = time.monotonic()
        scraped = operator_metrics()  # what a Prometheus scraping the operator costs it at N policies
        scrape = {"lines": scraped.count("\n"), "seconds": round(time.monotonic() - t_scrape, 2)}
        late0 = lateness_buckets(scraped)
        t_steady = time.monotonic()
        time.sleep(args.steady_seconds)
        dt = time.monotonic() - t_steady
        rss1, cpu1 = proc_figures(op.pid)
        # 2 = the two /metrics reads of this script per cluster (before and after)
        api_p1, api_s1, prom1 = (
            apiserver_requests(lab.primary),
            apiserver_requests(lab.secondary),
            prometheus_queries(lab),
        )
        figures["steady"] = steady = {
            "seconds": round(dt, 1),
            "operator_rss_mib": round(rss1, 1),
            "operator_cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / dt, 1),
            "primary_requests_per_second": per_second(api_p0, api_p1),
            "secondary_requests_per_second": per_second(api_s0, api_s1),
            "lab_baseline_requests_per_second": baseline,
            "operator_primary_requests_per_second": round(
                max(0.0, per_second(api_p0, api_p1) - baseline["primary"]), 2
            ),
            "operator_secondary_requests_per_second": round(
                max(0.0, per_second(api_s0, api_s1) - baseline["secondary"]), 2
            ),
            "primary_busiest": busiest(api_p0, api_p1),
            "secondary_busiest": busiest(api_s0, api_s1),
            "prometheus_queries_per_second": round((prom1 - prom0) / dt, 2),
            "poll_lateness": lateness_quantiles(lateness_buckets(operator_metrics()), late0),
            "operator_metrics_scrape": scrape,
        }

        write(f"scale-{n}", figures)  # partial figures survive a failure later in the run
        del steady
        # burst: every queue crosses at once (15 -> 2 desired, the primary holds 1: one replica each spills)
        api_p0, api_s0, prom0 = (
            apiserver_requests(lab.primary),
            apiserver_requests(lab.secondary),
            prometheus_queries(lab),
        )
        rss_peak = rss1
        cpu0 = proc_figures(op.pid)[1]
        late0 = lateness_buckets(operator_metrics())
        t_burst = time.monotonic()
        wall_burst = time.time()
        set_at = put_queues(lab, list(queue_of.values()), 15)
        queues_set = time.monotonic() - t_burst
        took, reads = wait_until(lambda: count_mirrors(lab, 1) >= n, 600)
        dt = time.monotonic() - t_burst
        rss_peak = max(rss_peak, proc_figures(op.pid)[0])
        cpu1 = proc_figures(op.pid)[1]
        api_p1, api_s1, prom1 = (
            apiserver_requests(lab.primary),
            apiserver_requests(lab.secondary),
            prometheus_queries(lab),
        )
        figures["burst"] = {
            "all_policies_seconds": None if took is None else round(took, 1),
            "all_policies_polls": None if took is None else round(took / poll, 2),
            "operator_cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / dt, 1),
            "primary_requests_per_second": per_second(api_p0, api_p1),
            "secondary_requests_per_second": per_second(api_s0, api_s1, own=1 + reads),
            "primary_busiest": busiest(api_p0, api_p1),
            "secondary_busiest": busiest(api_s0, api_s1),
            "prometheus_queries_per_second": round((prom1 - prom0) / dt, 2),
            "poll_lateness": lateness_quantiles(lateness_buckets(operator_metrics()), late0),
            "queues_set_seconds": round(queues_set, 1),
            "mirrors_created_after_seconds": created_after(lab, wall_burst),
            # the issue's measure: each policy from its own queue's move to its mirror (polls = seconds / poll)
            "mirror_after_own_queue_seconds": created_after(
                lab, {name: set_at[queue] for name, queue in queue_of.items()}
            ),
        }
        time.sleep(poll)

        t_return = time.monotonic()
        put_queues(lab, list(queue_of.values()), 0)
        took, _ = wait_until(lambda: count_mirrors(lab, 1) == 0, 600)
        figures["return"] = {
            "all_policies_seconds": None if took is None else round(took, 1),
            "all_policies_polls": None if took is None else round(took / poll, 2),
        }
        rss_peak = max(rss_peak, proc_figures(op.pid)[0])
        figures["operator_rss_peak_mib"] = round(rss_peak, 1)
        figures["poll_lateness"] = lateness_quantiles(lateness_buckets(operator_metrics()))
        figures["return_wall_seconds"] = round(time.monotonic() - t_return, 1)
        figures["goals"] = {
            "startup_all_reported_seconds": "<= 60",
            "burst_and_return_polls": "<= 2",
            "operator_rss_mib": "<= 300",
            "steady_requests_per_second_per_cluster": "<= 1 (watches only)",
            "poll_lateness_p99": "< 1 s",
        }
        write(f"scale-{n}", figures)
    finally:
        # best effort: N policies' finalizers take a while; `hack/lab down` removes everything anyway
        for ns in namespaces:
            with contextlib.suppress(Exception):
                client.CoreV1Api(lab.primary).delete_namespace(ns)
        time.sleep(30)
        op.terminate()
        try:
            op.wait(30)
        except subprocess.TimeoutExpired:
            # thousands of policies' finalizers still running against a lab about to go: the figures are written,
            # and an operator left behind would hold the benchmark's ports for the next run
            print("operator did not stop within 30 s of SIGTERM: killed")
            op.kill()
            op.wait(10)
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
