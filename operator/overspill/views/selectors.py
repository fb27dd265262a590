"""Label selectors as the API server applies them, for reading pods out of a view."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _expression(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, op, values = str(expr.get("key", "")), str(expr.get("operator", "")), list(expr.get("values") or [])
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return False


def matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector ({matchLabels, matchExpressions}) against labels."""
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    return all(_expression(e, labels) for e in selector.get("matchExpressions") or [])


def from_string(text: str) -> dict[str, Any]:
    """A selector string as the scale subresource reports it ("a=b,c!=d,e in (x,y),!f") as a LabelSelector."""
    labels: dict[str, str] = {}
    exprs: list[dict[str, Any]] = []
    parts: list[str] = []
    depth, cur = 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    for raw in (p.strip() for p in parts):
        if not raw:
            continue
        if " notin " in raw or " in " in raw:
            key, _, rest = raw.partition(" notin " if " notin " in raw else " in ")
            values = [v.strip() for v in rest.strip().strip("()").split(",") if v.strip()]
            exprs.append({"key": key.strip(), "operator": "NotIn" if " notin " in raw else "In", "values": values})
        elif "!=" in raw:
            key, _, value = raw.partition("!=")
            exprs.append({"key": key.strip(), "operator": "NotIn", "values": [value.strip()]})
        elif "=" in raw:
            key, _, value = raw.replace("==", "=").partition("=")
            labels[key.strip()] = value.strip()
        elif raw.startswith("!"):
            exprs.append({"key": raw[1:].strip(), "operator": "DoesNotExist"})
        else:
            exprs.append({"key": raw, "operator": "Exists"})
    return {"matchLabels": labels, "matchExpressions": exprs}
