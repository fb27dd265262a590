"""The live demo: the lab, the CRDs, the operator, an inference policy, a queue that rises past the primary's
capacity and falls again, printed as a timeline. Leaves everything up for exploring."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from kubernetes import client, config

sys.path.insert(0, str(Path(__file__).parent))
import lab  # the lab module next to this script

ROOT = Path(__file__).resolve().parents[1]
NS = "demo"
SCRIPT = [(0, 0), (15, 60), (35, 150), (95, 40), (140, 0)]  # (second, queue depth)
END = 185


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def set_queue(value: float) -> None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{lab.QUEUE_PORT}/queues/{NS}", data=str(value).encode(), method="PUT"
    )
    urllib.request.urlopen(req, timeout=5).close()  # the lab's loopback exporter


def main() -> None:
    lab.cmd_up(None)  # type: ignore[arg-type]
    kubectl = str(lab.assets() / "kubectl")
    primary_kc, secondary_kc = str(lab.kubeconfig("primary")), str(lab.kubeconfig("secondary"))
    lab.say("installing the CRDs and the lab's BurstTarget (kubectl apply)")
    sh(kubectl, "--kubeconfig", primary_kc, "apply", "-k", str(ROOT / "crds"))
    sh(
        kubectl,
        "--kubeconfig",
        primary_kc,
        "wait",
        "--for=condition=Established",
        "crd/burstpolicies.overspill.dev",
        "--timeout=30s",
    )
    sh(kubectl, "--kubeconfig", primary_kc, "apply", "-f", str(ROOT / "manifests/examples/lab-bursttarget.yaml"))
    primary = config.new_client_from_config(primary_kc)
    secondary = config.new_client_from_config(secondary_kc)
    core = client.CoreV1Api(primary)
    if NS in {n.metadata.name for n in core.list_namespace().items}:
        lab.say("removing the previous demo's namespace")
        core.delete_namespace(NS)
        while NS in {n.metadata.name for n in core.list_namespace().items}:
            time.sleep(1)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
    set_queue(0)
    lab.say("starting the operator (log: .lab/operator.log)")
    lab.stop_process("operator")
    env = {**os.environ, "KUBECONFIG": primary_kc}
    os.environ.update(env)
    lab.spawn(
        "operator",
        [
            str(ROOT / ".venv/bin/overspill"),
            "run",
            "--standalone",
            "--all-namespaces",
            "--prometheus-url",
            f"http://127.0.0.1:{lab.PROM_PORT}",
            "--metrics-port",
            "19295",
            "--metrics-address",
            "127.0.0.1",
            "--liveness",
            "http://127.0.0.1:19296/healthz",
        ],
    )
    workload, policy = (
        str(ROOT / "manifests/examples" / f) for f in ("lab-vllm-deployment.yaml", "lab-inference-policy.yaml")
    )
    sh(kubectl, "--kubeconfig", primary_kc, "apply", "-n", NS, "-f", workload, "-f", policy)
    apps_p, core_s, custom = client.AppsV1Api(primary), client.CoreV1Api(secondary), client.CustomObjectsApi(primary)
    print(f"\n{'t':>4}  {'queue':>5}  {'desired':>7}  {'primary':>9}  {'secondary':>9}  reason")
    start = time.time()
    script = list(SCRIPT)
    queue = 0.0
    last_line = ""
    seen_events: set[str] = set()
    while (t := time.time() - start) < END:
        while script and script[0][0] <= t:
            queue = script.pop(0)[1]
            set_queue(queue)
        dep = apps_p.read_namespaced_deployment("vllm", NS)
        running_p = sum(
            p.status.phase == "Running" for p in core.list_namespaced_pod(NS, label_selector="app=vllm").items
        )
        running_s = (
            sum(p.status.phase == "Running" for p in core_s.list_namespaced_pod(NS, label_selector="app=vllm").items)
            if NS in {n.metadata.name for n in core_s.list_namespace().items}
            else 0
        )
        st = custom.get_namespaced_custom_object("overspill.dev", "v1alpha1", NS, "burstpolicies", "vllm").get(
            "status", {}
        )
        line = (
            f"{queue:5.0f}  {st.get('desiredReplicas', '-')!s:>7}  {running_p:>3}/{dep.spec.replicas:<3} run  "
            f"{running_s:>3}/{st.get('secondaryReplicas', 0):<3} run  {st.get('lastDecision', {}).get('reason', '')}"
        )
        if line != last_line:
            print(f"{t:4.0f}  {line}", flush=True)
            last_line = line
        for e in core.list_namespaced_event(NS, field_selector="involvedObject.kind=BurstPolicy").items:
            if e.metadata.uid not in seen_events:
                seen_events.add(e.metadata.uid)
                print(f"      event {e.type}/{e.reason}: {e.message}", flush=True)
        time.sleep(2)
    print("\nThe lab is still up. Explore it:")
    print(f"  export KUBECONFIG={primary_kc}")
    print(f"  {kubectl} get bp,bt -A      # kubectl describe bp -n {NS} vllm")
    print(f"  {kubectl} --kubeconfig {secondary_kc} get deploy -A")
    print("Tear it down (the operator too):  hack/lab down")


if __name__ == "__main__":
    main()
