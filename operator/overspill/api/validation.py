"""Parse raw bodies into models and turn pydantic errors into messages that name the field and the fix."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from overspill.api.policy import RULES_SEPARATOR, BurstPolicySpec
from overspill.api.target import TARGET_NAME_RULE, BurstTargetSpec


class SpecError(ValueError):
    """A spec that failed validation; `messages` are ready for a condition or an Event."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


def _path(loc: tuple[int | str, ...]) -> str:
    out = "spec"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def format_errors(err: ValidationError) -> list[str]:
    msgs = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        for text in e["msg"].removeprefix("Value error, ").split(RULES_SEPARATOR):
            msgs.append(text if text.startswith("spec.") else f"{_path(loc)}: {text}")
    return msgs


def parse_policy_spec(spec: Mapping[str, Any], *, strict: bool = False) -> BurstPolicySpec:
    """`strict` judges types as the API server does (`"40"` is not an integer); the operator reads objects the
    API server already admitted, the simulator reads files nobody has checked."""
    try:
        if strict:
            return BurstPolicySpec.model_validate_json(json.dumps(dict(spec), default=str), strict=True)
        return BurstPolicySpec.model_validate(dict(spec))
    except ValidationError as err:
        raise SpecError(format_errors(err)) from None


def parse_target_spec(spec: Mapping[str, Any], *, strict: bool = False, name: str | None = None) -> BurstTargetSpec:
    """`name`, the BurstTarget's metadata.name, is checked too when given (the primary's name is reserved)."""
    if name is not None and not TARGET_NAME_RULE.check(name):
        raise SpecError([TARGET_NAME_RULE.message])
    try:
        if strict:
            return BurstTargetSpec.model_validate_json(json.dumps(dict(spec), default=str), strict=True)
        return BurstTargetSpec.model_validate(dict(spec))
    except ValidationError as err:
        raise SpecError(format_errors(err)) from None
