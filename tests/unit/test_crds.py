"""crds/ is generated from the models; a change to one without the other fails here."""

from __future__ import annotations

from pathlib import Path

import yaml

from overspill.api.crd import all_crds

ROOT = Path(__file__).resolve().parents[2]


def test_committed_crds_match_models() -> None:
    for name, crd in all_crds().items():
        committed = yaml.safe_load((ROOT / "crds" / name).read_text())
        assert committed == crd, f"crds/{name} is stale: run `overspill crds`"


def _walk(node: object, path: str = "") -> list[str]:
    bad = []
    if isinstance(node, dict):
        for k in ("$ref", "anyOf", "oneOf", "allOf", "prefixItems", "$defs"):
            if k in node:
                bad.append(f"{path}.{k}")
        if node.get("type") == "object" and not (
            "properties" in node or "additionalProperties" in node or node.get("x-kubernetes-preserve-unknown-fields")
        ):
            bad.append(f"{path}: object without properties")
        if node.get("type") == "array" and "items" not in node:
            bad.append(f"{path}: array without items")
        for k, v in node.items():
            bad += _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            bad += _walk(v, f"{path}[{i}]")
    return bad


def test_schemas_are_structural() -> None:
    for crd in all_crds().values():
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        assert _walk(schema["properties"]["spec"]) == []
        assert _walk(schema["properties"]["status"]) == []


def test_policy_crd_has_columns_short_names_and_cel() -> None:
    crd = all_crds()["overspill.dev_burstpolicies.yaml"]
    assert crd["spec"]["names"]["shortNames"] == ["bp"]
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    cols = [c["name"] for c in version["additionalPrinterColumns"]]
    assert cols[:5] == ["Desired", "Primary", "Secondary", "Mode", "Reason"]
    rules = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"]
    assert any(r["rule"] == "self.minReplicas <= self.maxReplicas" for r in rules)
    assert all_crds()["overspill.dev_bursttargets.yaml"]["spec"]["scope"] == "Cluster"


def test_reference_doc_matches_models() -> None:
    from overspill.api.reference import render

    assert (ROOT / "docs" / "reference.md").read_text() == render(), "docs/reference.md is stale: overspill reference"
