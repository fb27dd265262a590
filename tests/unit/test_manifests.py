"""The install manifests: RBAC grants exactly what docs/operations.md lists; the Dockerfile lints clean."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

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
