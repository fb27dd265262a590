"""API requests per poll for a burst that serves: a template naming a ConfigMap, two Secrets (one through the
ServiceAccount's imagePullSecrets) and a ServiceAccount, with propagation.secrets on, spec.traffic with an HTTPRoute.

    hack/lab up && eval "$(hack/lab env)" && .venv/bin/python -m benchmarks.serving_calls [--polls 20]

Same method as benchmarks.api_calls (the reconciler in-process against the lab's real API servers, every HTTP
request counted by cluster and verb), with the serving steps on; the benchmark plays the MCS controller the lab
does not run (it marks the ServiceExport Exported, outside the counted clients). Three phases: the burst building
up (copies, Service, export, route), the burst holding (steady state, per poll), and the return home (the route
drains the secondary, then its replicas go). Writes benchmarks/results/serving_calls.json. Goal: no writes in
steady state; the reads that remain per poll are the ones the design keeps on purpose (Secrets are never watched
cluster-wide; the ServiceExport's conditions and the route are read to be reported and kept).
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time
from typing import Any

from kubernetes import client, utils

from benchmarks.api_calls import in_process
from benchmarks.common import write
from benchmarks.lab_setup import GROUP, VERSION, Lab, policy
from overspill.api import parse_policy_spec
from overspill.api.policy import BurstPolicyStatus
from overspill.reconcile import Outcome, PolicyRef, Reconciler
from overspill.serving import SERVING_RESOURCES

NS = "bench-serving-calls"
MCS = ("multicluster.x-k8s.io", "v1alpha1")
EXPORT = "vllm-burst-secondary"
DEPENDENCIES: list[dict[str, Any]] = [
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "vllm-config"}, "data": {"MODEL": "m"}},
    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hf"}, "stringData": {"t": "x"}},
    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "regcred"}, "stringData": {"x": "y"}},
    {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "vllm"},
        "imagePullSecrets": [{"name": "regcred"}],
    },
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "vllm"},
        "spec": {"selector": {"app": "vllm"}, "ports": [{"port": 80}]},
    },
]
CONTAINER = {
    "envFrom": [{"configMapRef": {"name": "vllm-config"}}],
    "env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "t"}}}],
}


def export_when_asked(lab: Lab) -> None:
    """The MCS controller's part: the ServiceExport, once it exists, is Valid and Ready (not counted)."""
    api = client.CustomObjectsApi(lab.secondary)
    try:
        obj = api.get_namespaced_custom_object(*MCS, NS, "serviceexports", EXPORT)
    except client.ApiException:
        return
    if (obj.get("status") or {}).get("conditions"):
        return
    at = "2026-01-01T00:00:00Z"
    conds = [
        {"type": t, "status": "True", "reason": r, "message": "", "lastTransitionTime": at}
        for t, r in (("Valid", "Valid"), ("Ready", "Exported"))
    ]
    api.patch_namespaced_custom_object_status(*MCS, NS, "serviceexports", EXPORT, {"status": {"conditions": conds}})


class Run:
    def __init__(self, lab: Lab, rec: Reconciler, ref: PolicyRef, raw: dict[str, Any]) -> None:
        self.lab, self.rec, self.ref, self.spec = lab, rec, ref, parse_policy_spec(raw)
        self.status = BurstPolicyStatus()
        self.seconds: list[float] = []

    def poll(self) -> Outcome:
        started = time.perf_counter()
        out = self.rec.reconcile(self.ref, self.spec, self.status, 1)
        self.seconds.append(time.perf_counter() - started)
        self.status = BurstPolicyStatus.model_validate(out.status)
        export_when_asked(self.lab)
        return out

    def weights(self) -> tuple[int | None, int | None]:
        t = self.status.traffic
        return (t.local_weight, t.burst_weight) if t is not None else (None, None)


def phase(counts: collections.Counter[str], polls: int) -> dict[str, Any]:
    per_poll = {k: round(v / max(1, polls), 2) for k, v in sorted(counts.items())}
    writes = sum(v for k, v in counts.items() if not k.endswith(("GET", "WATCH")))
    return {"polls": polls, "requests_per_poll": per_poll, "writes_total": writes}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--polls", type=int, default=20)
    args = ap.parse_args()
    lab = Lab()
    lab.install()
    lab.fresh_namespace(NS)  # no operator runs here: this process is the only one acting
    lab.set_queue(NS, 150)
    raw = {
        **policy(NS),
        "propagation": {"secrets": True},
        "traffic": {"serviceRef": {"name": "vllm"}, "httpRouteRef": {"name": "vllm"}},
    }
    utils.create_from_dict(lab.primary, {"apiVersion": "v1", "kind": "List", "items": DEPENDENCIES}, namespace=NS)
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "vllm"}}
    route["spec"] = {"rules": [{"backendRefs": [{"name": "vllm", "port": 80}]}]}
    client.CustomObjectsApi(lab.primary).create_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", NS, "httproutes", route
    )
    lab.deploy(NS, raw, pod={"serviceAccountName": "vllm"}, container=CONTAINER)
    counts: collections.Counter[str] = collections.Counter()
    rec = in_process(lab, counts, SERVING_RESOURCES)
    uid = client.CustomObjectsApi(lab.primary).get_namespaced_custom_object(
        GROUP, VERSION, NS, "burstpolicies", "vllm"
    )["metadata"]["uid"]
    run = Run(lab, rec, PolicyRef(NS, "vllm", uid), raw)
    time.sleep(3)  # the queue value reaches Prometheus
    polls = 0
    while polls < 40:  # the burst builds up: copies, Service, export, route weighted (8, 7)
        polls += 1
        out = run.poll()
        if lab.running(lab.secondary, NS) == 7 and out.writes == 0 and run.weights() == (8, 7):
            break
        time.sleep(2)
    building = phase(counts, polls)
    counts.clear()
    run.seconds.clear()
    for _ in range(args.polls):  # holding
        run.poll()
        time.sleep(1)
    holding = phase(counts, args.polls)
    holding_seconds = statistics.median(run.seconds)
    placement = {"primary": lab.running(lab.primary, NS), "secondary": lab.running(lab.secondary, NS)}
    weights_held = run.weights()
    counts.clear()
    lab.set_queue(NS, 20)
    time.sleep(3)
    polls, drained_at = 0, None
    for polls in range(1, 31):  # home: weight 0 first, replicas a poll later
        run.poll()
        if drained_at is None and run.weights()[1] == 0:
            drained_at = polls
        if lab.running(lab.secondary, NS) == 0 and run.weights()[1] == 0:
            break
        time.sleep(2)
    home = phase(counts, polls)
    write(
        "serving_calls",
        {
            "command": f"python -m benchmarks.serving_calls --polls {args.polls}",
            "placement_holding": placement,
            "route_weights_holding": {"local": weights_held[0], "burst": weights_held[1]},
            "building": building,
            "holding": holding,
            "holding_reconcile_seconds_median": round(holding_seconds, 4),
            "home": {**home, "burst_weight_zero_at_poll": drained_at},
            "goal": "no writes while holding",
        },
    )
    lab.set_queue(NS, 0)
    lab.remove_namespace(NS)


if __name__ == "__main__":
    main()
