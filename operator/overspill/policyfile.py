"""The simulator's policy file: one BurstPolicy and the BurstTargets it names, judged as the API server would.

Types are strict (`maxReplicas: "40"` is refused), every failing rule is reported at once, and each message names
the file and the line. What the API server would accept but the simulator would silently get wrong (a target
absent from the file costs nothing) is a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from overspill.api import GROUP, VERSION, SpecError, parse_policy_spec, parse_target_spec
from overspill.api.policy import BurstPolicySpec
from overspill.api.target import TARGET_NAME_RULE, BurstTargetSpec
from overspill.inputerror import InputError

API_VERSION = f"{GROUP}/{VERSION}"


@dataclass(frozen=True)
class PolicyFile:
    name: str
    spec: BurstPolicySpec
    targets: dict[str, BurstTargetSpec]
    warnings: list[str] = field(default_factory=list)


def _line(node: yaml.Node | None, loc: list[str]) -> int | None:
    """1-based line of the field at `loc` (camelCase keys, list indices) in a composed YAML node."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            child = node.value[int(part)]
        else:
            child = None
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line


def _spec_errors(path: Path, doc_node: yaml.Node, err: SpecError) -> InputError:
    """One InputError listing every message, each with the line of the field it names."""
    spec_node = _line_node(doc_node, "spec")
    lines = []
    for msg in err.messages:
        field_path = msg.split(":", 1)[0].split()[0]
        parts = [p for p in field_path.replace("[", ".").replace("]", "").split(".")[1:] if p]
        lines.append(f"{path}:{_line(spec_node, parts)}: {msg}")
    first = _line(spec_node, [])
    return InputError(
        path,
        "the policy is invalid (the API server would refuse it):\n  " + "\n  ".join(lines),
        line=first,
        fix="correct each field listed; `overspill reference` lists every field and its type",
    )


def _line_node(node: yaml.Node, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((v for k, v in node.value if getattr(k, "value", None) == key), None)
    return None


def load(path: str | Path) -> PolicyFile:
    path = Path(path)
    try:
        text = path.read_text()
        nodes = list(yaml.compose_all(text))
        docs = list(yaml.safe_load_all(text))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        raise InputError(
            path,
            f"not valid YAML: {err.problem}",
            line=mark.line + 1 if mark else None,
            fix="correct the YAML syntax (indentation, quotes, colons)",
        ) from None
    except yaml.YAMLError as err:
        raise InputError(path, f"not valid YAML: {err}", fix="correct the YAML syntax") from None
    policies: list[tuple[str, BurstPolicySpec, int]] = []
    targets: dict[str, BurstTargetSpec] = {}
    for node, doc in zip(nodes, docs, strict=True):
        if doc is None:
            continue
        line = node.start_mark.line + 1 if node is not None else None
        if not isinstance(doc, dict):
            raise InputError(
                path,
                f"a document is a {type(doc).__name__}, not a Kubernetes object",
                line=line,
                fix="each document needs apiVersion, kind, metadata and spec",
            )
        kind = doc.get("kind")
        if kind not in ("BurstPolicy", "BurstTarget"):
            continue  # Deployments and the like may share the file
        if doc.get("apiVersion") != API_VERSION:
            raise InputError(
                path,
                f"{kind} has apiVersion {doc.get('apiVersion')!r}",
                line=_line(node, ["apiVersion"]),
                fix=f"set apiVersion: {API_VERSION}",
            )
        meta = doc.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(name, str) or not name:
            raise InputError(path, f"{kind} has no metadata.name", line=line, fix="add metadata: {name: ...}")
        if kind == "BurstTarget" and not TARGET_NAME_RULE.check(name):
            # the API server refuses it too (CEL on the CRD's root)
            raise InputError(
                path, f"BurstTarget {name}: {TARGET_NAME_RULE.message}", line=_line(node, ["metadata", "name"])
            )
        spec = doc.get("spec")
        if not isinstance(spec, dict):
            raise InputError(
                path,
                f"{kind} {name}: spec is {'missing' if spec is None else 'a ' + type(spec).__name__}",
                line=_line(node, ["spec"]),
                fix="spec must be a mapping of fields (`overspill reference` lists them)",
            )
        try:
            if kind == "BurstPolicy":
                policies.append((name, parse_policy_spec(spec, strict=True), line or 0))
            else:
                targets[name] = parse_target_spec(spec, strict=True)
        except SpecError as err:
            raise _spec_errors(path, node, err) from None
    if not policies:
        raise InputError(path, "no BurstPolicy document found", fix="add a BurstPolicy (see manifests/examples/)")
    if len(policies) > 1:
        where = ", ".join(f"{n} (line {ln})" for n, _, ln in policies)
        raise InputError(
            path, f"{len(policies)} BurstPolicies: {where}", fix="keep one BurstPolicy per file: simulate each in turn"
        )
    name, spec, _ = policies[0]
    warnings = [
        f"{path}: target {t.name!r} has no BurstTarget document in this file: its cost counts as 0, its start-up "
        "is the default and only the policy's cap applies; add the BurstTarget to the file"
        for t in spec.targets
        if t.name not in targets
    ]
    return PolicyFile(name=name, spec=spec, targets=targets, warnings=warnings)


def load_policy_file(path: str | Path) -> tuple[BurstPolicySpec, dict[str, BurstTargetSpec]]:
    """The spec and targets only (benchmarks and tests)."""
    pf = load(path)
    return pf.spec, pf.targets
