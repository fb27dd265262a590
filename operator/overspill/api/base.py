"""Shared model configuration and the cross-field rule type used by both pydantic and the CRD's CEL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are errors (a typo must not pass silently)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=False,
    )


class StatusModel(BaseModel):
    """Status is written by the operator only; tolerate fields from newer versions."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


@dataclass(frozen=True)
class CrossFieldRule:
    """One rule, two enforcers: `cel` runs in the API server, `check` in the operator (same message).

    `check` receives the model instance and returns True when the rule holds.
    """

    cel: str
    message: str
    field_path: str | None
    check: Callable[[Any], bool]

    def to_validation(self) -> dict[str, str]:
        out = {"rule": self.cel, "message": self.message}
        if self.field_path:
            out["fieldPath"] = self.field_path
        return out


class Condition(StatusModel):
    type: str
    status: str
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None
