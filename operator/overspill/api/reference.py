"""docs/reference.md, generated from the same schemas as the CRDs (`overspill reference`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from overspill.api.crd import all_crds


def _type(node: dict[str, Any]) -> str:
    t = node.get("type", "object")
    if t == "array":
        return f"[]{_type(node.get('items', {}))}"
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    return str(t)


def _limits(node: dict[str, Any]) -> str:
    parts = []
    if "default" in node:
        parts.append(f"default `{json.dumps(node['default'])}`")
    if "minimum" in node:
        op = ">" if node.get("exclusiveMinimum") else ">="
        parts.append(f"{op} {node['minimum']}")
    if "maximum" in node:
        parts.append(f"<= {node['maximum']}")
    for k, label in (
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("maxItems", "max items"),
        ("pattern", "pattern"),
    ):
        if k in node:
            parts.append(f"{label} `{node[k]}`")
    return "; ".join(parts)


def _rows(node: dict[str, Any], path: str, required: bool, out: list[str]) -> None:
    desc = (node.get("description") or "").replace("|", "\\|").replace("\n", " ")
    out.append(f"| `{path}` | {_type(node)} | {'yes' if required else ''} | {_limits(node)} | {desc} |")
    props = node.get("properties") or node.get("items", {}).get("properties")
    req = set(node.get("required") or node.get("items", {}).get("required") or [])
    suffix = "[]" if node.get("type") == "array" else ""
    for name, child in (props or {}).items():
        _rows(child, f"{path}{suffix}.{name}", name in req, out)


def render() -> str:
    lines = [
        "# API reference",
        "",
        "Generated from `operator/overspill/api` by `overspill reference`; a test fails when it drifts.",
        "Group `overspill.dev`, version `v1alpha1`.",
        "",
    ]
    for crd in all_crds().values():
        names = crd["spec"]["names"]
        version = crd["spec"]["versions"][0]
        schema = version["schema"]["openAPIV3Schema"]
        lines += [
            f"## {names['kind']}",
            "",
            f"{schema['description']} Scope: {crd['spec']['scope']}; short name `{names['shortNames'][0]}`.",
            "",
            "| field | type | required | limits | description |",
            "|---|---|---|---|---|",
        ]
        spec = schema["properties"]["spec"]
        rows: list[str] = []
        for name, child in spec["properties"].items():
            _rows(child, f"spec.{name}", name in set(spec.get("required", [])), rows)
        lines += rows
        # the root's rules (the object's name) first, then the spec's
        rules = [*(schema.get("x-kubernetes-validations") or []), *(spec.get("x-kubernetes-validations") or [])]
        if rules:
            lines += ["", "Cross-field rules (checked by the API server with CEL, and again by the operator):", ""]
            lines += [f"- `{r['rule']}` — {r['message']}" for r in rules]
        status_rows: list[str] = []
        for name, child in schema["properties"]["status"].get("properties", {}).items():
            _rows(child, f"status.{name}", False, status_rows)
        lines += [
            "",
            f"### {names['kind']} status",
            "",
            "| field | type | | | description |",
            "|---|---|---|---|---|",
            *status_rows,
            "",
        ]
    return "\n".join(lines) + "\n"


def default_output(cwd: Path) -> Path | None:
    """Where `overspill reference` writes when no --output is given: the checkout's docs/reference.md (the file
    kept in step with the models), else nothing, meaning standard output. The reference is rendered from the
    installed models, so a pip-installed `overspill` prints it anywhere without a path into a clone."""
    doc = cwd / "docs" / "reference.md"
    found = doc.is_file() and (cwd / "pyproject.toml").is_file()
    return doc.relative_to(cwd) if found else None
