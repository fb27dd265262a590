"""Generate CustomResourceDefinitions from the pydantic models (`overspill crds`).

Pydantic emits JSON Schema 2020-12; Kubernetes wants a *structural* OpenAPI v3.0 subset: no $ref, no anyOf
for nullables, boolean exclusiveMinimum. This module converts, then adds what JSON Schema cannot express
(CEL rules, list-map keys, printer columns).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from overspill.api.base import CrossFieldRule
from overspill.api.policy import BurstPolicySpec, BurstPolicyStatus
from overspill.api.target import TARGET_NAME_RULE, BurstTargetSpec, BurstTargetStatus

GROUP = "overspill.dev"
VERSION = "v1alpha1"

_DROP = {"title", "additionalProperties", "$defs"}


def _convert(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_convert(x, defs) for x in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].split("/")[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, defs)
    any_of = node.get("anyOf")
    if any_of is not None:
        non_null = [x for x in any_of if x.get("type") != "null"]
        if len(non_null) == 1:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            collapsed: dict[str, Any] = _convert({**non_null[0], **rest}, defs)
            if collapsed.get("default", 0) is None:
                collapsed.pop("default")
            return collapsed
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "exclusiveMinimum":
            out["minimum"] = value
            out["exclusiveMinimum"] = True
        elif key == "prefixItems":
            # tuples (engine memory): structural schemas have no tuples; a list of numbers is what is stored
            out["items"] = {"type": "number"}
        elif key == "properties":
            out["properties"] = {k: _convert(v, defs) for k, v in value.items()}
        elif key == "default" and value is None:
            continue
        else:
            out[key] = _convert(value, defs)
    if out.get("type") == "object" and "properties" not in out:
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            out["additionalProperties"] = _convert(extra, defs)
        else:
            out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("type") == "array" and "items" not in out:
        out["items"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return out


def schema_of(model: type[BaseModel], rules: tuple[CrossFieldRule, ...] = ()) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    converted: dict[str, Any] = _convert(raw, raw.get("$defs", {}))
    converted.pop("description", None)
    if rules:
        converted["x-kubernetes-validations"] = [r.to_validation() for r in rules]
    return converted


def _status_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="serialization")
    out: dict[str, Any] = _convert(raw, raw.get("$defs", {}))
    out.pop("required", None)
    out.pop("description", None)
    return out


def _crd(
    *,
    kind: str,
    plural: str,
    short: str,
    scope: str,
    spec: dict[str, Any],
    status: dict[str, Any],
    columns: list[dict[str, Any]],
    description: str,
    root_rules: tuple[CrossFieldRule, ...] = (),
) -> dict[str, Any]:
    root: dict[str, Any] = {
        "type": "object",
        "description": description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    if root_rules:
        # rules on the object's name: only the root's rules may read metadata (name and generateName)
        root["x-kubernetes-validations"] = [r.to_validation() for r in root_rules]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["overspill"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def _targets_list_map(spec: dict[str, Any]) -> dict[str, Any]:
    targets = spec["properties"]["targets"]
    targets["x-kubernetes-list-type"] = "map"
    targets["x-kubernetes-list-map-keys"] = ["name"]
    return spec


def burst_policy_crd() -> dict[str, Any]:
    spec = schema_of(BurstPolicySpec, BurstPolicySpec.rules)
    spec["properties"]["targets"]["items"].setdefault("required", ["name"])
    # override volumes are pod volumes (any source): keep every field, but a name is what they replace by
    volumes = spec["properties"]["targets"]["items"]["properties"]["overrides"]["properties"]["volumes"]["items"]
    volumes.update({"required": ["name"], "properties": {"name": {"type": "string", "minLength": 1}}})
    cols: list[dict[str, Any]] = [
        {"name": "Desired", "type": "integer", "jsonPath": ".status.desiredReplicas"},
        {"name": "Primary", "type": "integer", "jsonPath": ".status.primary.replicas"},
        {"name": "Secondary", "type": "integer", "jsonPath": ".status.secondaryReplicas"},
        {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
        {"name": "Reason", "type": "string", "jsonPath": ".status.lastDecision.reason"},
        {"name": "Metric", "type": "number", "jsonPath": ".status.metricValue", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return _crd(
        kind="BurstPolicy",
        plural="burstpolicies",
        short="bp",
        scope="Namespaced",
        spec=spec,
        status=_status_schema(BurstPolicyStatus),
        columns=cols,
        description="BurstPolicy scales a workload from a queue metric and spills overflow replicas to BurstTargets.",
    )


def burst_target_crd() -> dict[str, Any]:
    spec = schema_of(BurstTargetSpec)
    cols: list[dict[str, Any]] = [
        {"name": "Provider", "type": "string", "jsonPath": ".spec.provider"},
        {"name": "Region", "type": "string", "jsonPath": ".spec.region"},
        {"name": "Cost", "type": "number", "jsonPath": ".spec.costPerReplicaHour"},
        {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].status"},
        {"name": "Version", "type": "string", "jsonPath": ".status.kubernetesVersion"},
        {"name": "Latency", "type": "number", "jsonPath": ".status.latencyMs", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return _crd(
        kind="BurstTarget",
        plural="bursttargets",
        short="bt",
        scope="Cluster",
        spec=spec,
        status=_status_schema(BurstTargetStatus),
        columns=cols,
        description="BurstTarget is a secondary cluster that BurstPolicies may spill overflow replicas to.",
        root_rules=(TARGET_NAME_RULE,),
    )


def all_crds() -> dict[str, dict[str, Any]]:
    """File name -> CRD object, as committed under crds/."""
    return {
        "overspill.dev_burstpolicies.yaml": burst_policy_crd(),
        "overspill.dev_bursttargets.yaml": burst_target_crd(),
    }
