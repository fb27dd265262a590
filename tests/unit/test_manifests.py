"""The install manifests: RBAC grants exactly what docs/operations.md lists; the Dockerfile lints clean."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests import binaries

ROOT = Path(__file__).resolve().parents[2]


def _split(cell: str) -> set[str]:
    return {x.strip().strip('"') if x.strip() != '""' else "" for x in cell.split(",")}


def documented_rules() -> set[tuple[str, str, str]]:
    text = (ROOT / "docs/operations.md").read_text()
    table = text.split("## RBAC in the primary", 1)[1].split("\n\n")[2]
    out = set()
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        for g in _split(cells[0]):
            for r in _split(cells[1]):
                for v in _split(cells[2]):
                    out.add((g, r, v))
    return out


def granted_rules() -> set[tuple[str, str, str]]:
    docs = list(yaml.safe_load_all((ROOT / "manifests/base/rbac.yaml").read_text()))
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    return {
        (g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
    }


def test_cluster_role_grants_exactly_what_is_documented() -> None:
    assert granted_rules() == documented_rules()


def test_cluster_role_has_no_wildcards_and_no_secrets() -> None:
    rules = granted_rules()
    assert not any("*" in part for rule in rules for part in rule)
    assert not any(r == "secrets" for _, r, _ in rules)


def test_operator_pod_is_locked_down() -> None:
    dep = yaml.safe_load((ROOT / "manifests/base/deployment.yaml").read_text())
    pod = dep["spec"]["template"]["spec"]
    ctr = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert ctr["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert ctr["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "memory" in ctr["resources"]["limits"]


def test_dockerfile_is_multistage_non_root_and_lints_clean() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) == 2
    assert re.search(r"^USER 10001", text, re.M)
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    out = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_grafana_dashboard_queries_only_metrics_the_operator_exports() -> None:
    import json

    from overspill import metrics

    exported = {m._name for m in vars(metrics).values() if hasattr(m, "_name")}
    dash = json.loads((ROOT / "docs/grafana-dashboard.json").read_text())
    used = {name for p in dash["panels"] for t in p["targets"] for name in re.findall(r"overspill_[a-z_]+", t["expr"])}
    base = {re.sub(r"_(total|bucket|count|sum)$", "", u) for u in used}
    assert base <= exported | {e.removesuffix("_total") for e in exported}, base - exported
    assert {"overspill_replicas", "overspill_decisions", "overspill_target_up", "overspill_metric_query_errors"} <= base


def test_every_example_policy_and_target_is_valid() -> None:
    from overspill.api import parse_policy_spec, parse_target_spec

    seen = 0
    for path in sorted((ROOT / "manifests/examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "BurstPolicy":
                parse_policy_spec(doc["spec"])
                seen += 1
            elif doc and doc.get("kind") == "BurstTarget":
                parse_target_spec(doc["spec"])
                seen += 1
    assert seen >= 5


# ---- the two install paths: kustomize (manifests/) and Helm (charts/overspill) ------------------------------

CHART = ROOT / "charts/overspill"
SA_USER = "system:serviceaccount:overspill-system:overspill"
Docs = list[dict[str, Any]]


def _run(*cmd: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)


def kustomize(path: Path = ROOT / "manifests") -> Docs:
    out = _run(binaries.kubectl(), "kustomize", str(path))
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def chart(*sets: str, namespace: str = "overspill-system", crds: bool = True) -> Docs:
    """`helm template` of the chart as `helm install overspill charts/overspill -n NAMESPACE` would apply it."""
    flags = [f"--set={s}" for s in sets] + (["--include-crds"] if crds else [])
    out = _run(binaries.helm(), "template", "overspill", str(CHART), "-n", namespace, *flags)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def one(docs: Docs, kind: str, name_prefix: str = "") -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name_prefix)]
    assert len(found) == 1, f"{len(found)} {kind} named {name_prefix}*"
    return found[0]


def rules(role: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    return {
        (g, r, v, n)
        for rule in role["rules"]
        for g in rule.get("apiGroups", [""])
        for r in rule["resources"]
        for v in rule["verbs"]
        for n in rule.get("resourceNames", ["*"])
    }


def rbac(docs: Docs) -> dict[str, Any]:
    """What the operator may do, independent of object names: rules per role kind and namespace, and who gets them."""
    out: dict[str, Any] = {}
    for d in docs:
        if d["kind"] in ("ClusterRole", "Role"):
            out[f"{d['kind']} in {d['metadata'].get('namespace', '*')}"] = rules(d)
        elif d["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            key = f"{d['kind']} in {d['metadata'].get('namespace', '*')} of {d['roleRef']['kind']}"
            out[key] = sorted((s["kind"], s["name"], s.get("namespace", "")) for s in d["subjects"])
    return out


def test_chart_and_kustomize_grant_the_same_rbac() -> None:
    from_kustomize, from_chart = rbac(kustomize()), rbac(chart())
    for key in from_kustomize.keys() & from_chart.keys():
        if isinstance(from_kustomize[key], set):
            only_k, only_c = from_kustomize[key] - from_chart[key], from_chart[key] - from_kustomize[key]
            assert not only_k and not only_c, (
                f"{key}: only in manifests/base/rbac.yaml {sorted(only_k)}; only in the chart {sorted(only_c)}: "
                "change charts/overspill/templates/rbac.yaml with it"
            )
    assert from_chart == from_kustomize
    assert "ClusterRole in *" in from_kustomize and "Role in overspill-system" in from_kustomize


def test_chart_installs_the_same_crds_as_kustomize() -> None:
    def crds(docs: Docs) -> dict[str, Any]:
        return {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "CustomResourceDefinition"}

    from_kustomize = crds(kustomize())
    assert crds(chart()) == from_kustomize
    assert {"burstpolicies.overspill.dev", "bursttargets.overspill.dev", "clusterkopfpeerings.kopf.dev"} <= set(
        from_kustomize
    )


def test_pod_patch_policy_is_the_same_in_both_and_names_the_operators_service_account() -> None:
    k, c = kustomize(), chart()
    kp, cp = one(k, "ValidatingAdmissionPolicy"), one(c, "ValidatingAdmissionPolicy")
    assert kp["spec"] == cp["spec"]
    assert kp["spec"]["matchConditions"][0]["expression"].endswith(f'== "{SA_USER}"')
    for docs, policy in ((k, kp), (c, cp)):
        binding = one(docs, "ValidatingAdmissionPolicyBinding")
        assert binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}
    other_ns = one(chart(namespace="ops"), "ValidatingAdmissionPolicy")
    assert other_ns["spec"]["matchConditions"][0]["expression"].endswith('== "system:serviceaccount:ops:overspill"')
    assert not [d for d in chart("podPatchPolicy.enabled=false") if d["kind"].startswith("ValidatingAdmission")]


def _pod(docs: Docs) -> dict[str, Any]:
    spec: dict[str, Any] = one(docs, "Deployment")["spec"]["template"]["spec"]
    return spec


def test_two_replicas_spread_over_nodes_and_a_disruption_budget_in_both() -> None:
    for docs in (kustomize(), chart()):
        dep = one(docs, "Deployment")
        assert dep["spec"]["replicas"] == 2
        labels = dep["spec"]["template"]["metadata"]["labels"]
        term = _pod(docs)["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
        assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
        assert term["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= labels.items()
        pdb = one(docs, "PodDisruptionBudget")
        assert pdb["spec"]["minAvailable"] == 1
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert (
        "requiredDuringSchedulingIgnoredDuringExecution"
        in _pod(chart("podAntiAffinity=required"))["affinity"]["podAntiAffinity"]
    )
    assert not [d for d in chart("replicaCount=1") if d["kind"] == "PodDisruptionBudget"]  # would block every drain


def test_chart_pod_is_locked_down_as_the_kustomize_pod() -> None:
    k, c = _pod(kustomize()), _pod(chart())
    assert c["securityContext"] == k["securityContext"]
    for field in ("securityContext", "livenessProbe", "resources", "volumeMounts", "ports"):
        assert c["containers"][0][field] == k["containers"][0][field], field
    assert c["volumes"] == k["volumes"]


def _env(docs: Docs) -> dict[str, str]:
    ref = _pod(docs)["containers"][0]["envFrom"][0]["configMapRef"]["name"]
    data: dict[str, str] = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == ref)["data"]
    return data


def test_kustomize_sets_image_and_prometheus_url_in_the_top_level_kustomization(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    shutil.copytree(ROOT / "crds", tmp_path / "crds")
    top = tmp_path / "manifests/kustomization.yaml"
    k = yaml.safe_load(top.read_text())
    k["images"][0].update(newName="registry.example.com/platform/overspill", newTag="9.9.9")
    k["configMapGenerator"][0]["literals"] = ["OVERSPILL_PROMETHEUS_URL=http://prom.example:9090"]
    top.write_text(yaml.safe_dump(k))
    docs = kustomize(tmp_path / "manifests")
    assert _pod(docs)["containers"][0]["image"] == "registry.example.com/platform/overspill:9.9.9"
    env = _env(docs)
    assert env["OVERSPILL_PROMETHEUS_URL"] == "http://prom.example:9090"
    assert env["OVERSPILL_CLUSTER_NAME"] == "primary"  # the base's other settings survive the merge
    # the generated name carries a hash: a new URL rolls the Deployment
    assert (
        _pod(docs)["containers"][0]["envFrom"][0]["configMapRef"]["name"]
        != _pod(kustomize())["containers"][0]["envFrom"][0]["configMapRef"]["name"]
    )


def test_readme_names_the_two_things_a_kustomize_user_sets() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Install in a real cluster", 1)[1].split("\n## ", 1)[0]
    assert "images:" in section and "OVERSPILL_PROMETHEUS_URL" in section and "helm install" in section


def test_chart_values_reach_the_operator() -> None:
    docs = chart(
        "image.repository=registry.example.com/overspill",
        "image.tag=1.2.3",
        "prometheus.url=http://prom.example:9090",
        "prometheus.allowedUrls={http://prom.example:9090,https://thanos.example}",
        "watchNamespaces={ml,ci}",
        "replicaCount=3",
        "resources.limits.memory=1Gi",
        "metrics.port=9191",
        "metrics.serviceMonitor.enabled=true",
    )
    dep = one(docs, "Deployment")
    ctr = _pod(docs)["containers"][0]
    assert ctr["image"] == "registry.example.com/overspill:1.2.3"
    assert dep["spec"]["replicas"] == 3
    assert ctr["resources"]["limits"]["memory"] == "1Gi"
    assert _env(docs)["OVERSPILL_PROMETHEUS_URL"] == "http://prom.example:9090"
    args = ctr["args"]
    assert [a for a in args if a.startswith("--namespace")] == ["--namespace=ml", "--namespace=ci"]
    assert "--all-namespaces" not in args
    assert [a for a in args if a.startswith("--allowed-prometheus-url")] == [
        "--allowed-prometheus-url=http://prom.example:9090",
        "--allowed-prometheus-url=https://thanos.example",
    ]
    assert "--metrics-port=9191" in args and {"name": "metrics", "containerPort": 9191} in ctr["ports"]
    assert one(docs, "Service")["spec"]["ports"][0]["port"] == 9191
    assert one(docs, "ServiceMonitor")["spec"]["endpoints"][0]["port"] == "metrics"
    defaults = chart()
    assert "OVERSPILL_POLICY_SELECTOR" not in _env(defaults)
    assert _env(chart("policySelector=shard=a"))["OVERSPILL_POLICY_SELECTOR"] == "shard=a"
    assert not [d for d in defaults if d["kind"] == "ServiceMonitor"]
    assert "--all-namespaces" in _pod(defaults)["containers"][0]["args"]


def test_chart_refuses_bad_values_with_the_field_named() -> None:
    out = _run(binaries.helm(), "template", "overspill", str(CHART), "--set", "prometheus.url=prom:9090")
    assert out.returncode != 0
    assert "/prometheus/url" in out.stderr


def _noise(stderr: str) -> list[str]:
    """stderr lines other than helm's note that crds/ holds symlinks (to crds/ and Kopf's CRD: one source)."""
    return [line for line in stderr.splitlines() if "found symbolic link in path" not in line]


def test_helm_lint_strict_and_template_are_clean() -> None:
    out = _run(binaries.helm(), "lint", "--strict", str(CHART))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[WARNING]" not in out.stdout and "[ERROR]" not in out.stdout, out.stdout
    assert _noise(out.stderr) == []
    out = _run(binaries.helm(), "template", "overspill", str(CHART), "--include-crds")
    assert out.returncode == 0 and _noise(out.stderr) == [], out.stderr


def test_chart_secret_propagation_matches_the_optional_manifest_and_is_off_by_default() -> None:
    optional = list(yaml.safe_load_all((ROOT / "manifests/optional/secret-propagation.yaml").read_text()))
    assert not [d for d in chart() if d["kind"] == "RoleBinding" and "secret" in d["metadata"]["name"]]
    docs = chart("secretPropagation.namespaces={ml,ci}")
    role = one(docs, "ClusterRole", "overspill-secret")
    assert rules(role) == rules(one(optional, "ClusterRole"))
    bindings = [d for d in docs if d["kind"] == "RoleBinding" and d["roleRef"]["name"] == role["metadata"]["name"]]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["ci", "ml"]
    assert all(b["subjects"] == one(optional, "RoleBinding")["subjects"] for b in bindings)
