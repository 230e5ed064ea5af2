"""Typed parameters of an image's command template (the Argon `inputs` / `outputs` / `configs`)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from image_operator.api.base import ApiModel

PARAMETER_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

ParameterName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=63,
        pattern=PARAMETER_NAME_PATTERN,
        description="Name used in the command template as {{inputs.NAME}}, {{configs.NAME}} "
        "or {{outputs.NAME}}: a letter or underscore, then letters, digits or underscores.",
    ),
]


class ParameterKind(StrEnum):
    """Which list a parameter belongs to; Argon repeats it on every parameter."""

    INPUT = "input"
    OUTPUT = "output"
    CONFIG = "config"


class ParameterType(StrEnum):
    """The value types a parameter can take; `default` must fit the type."""

    STRING = "string"
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    PATH = "path"
    ENUM = "enum"


class Parameter(ApiModel):
    """One typed parameter of the command template, as Argon models it."""

    name: ParameterName
    display_name: str | None = Field(
        default=None, max_length=128, description="Human-readable label shown in UIs."
    )
    kind: ParameterKind | None = Field(
        default=None,
        description="input, output or config. Optional; when set it must match the list "
        "the parameter is declared in.",
    )
    type: ParameterType = Field(
        default=ParameterType.STRING,
        description="Value type: string, number, integer, boolean, path or enum.",
    )
    default: str | None = Field(
        default=None,
        max_length=4096,
        description="Value used when none is given at render time; must fit `type` "
        "(and be one of `options` for enum). A parameter without a default is required.",
    )
    options: list[Annotated[str, Field(max_length=256)]] | None = Field(
        default=None,
        max_length=64,
        description="Allowed values; required when type is enum, not allowed otherwise.",
    )
    index: int | None = Field(
        default=None, ge=0, le=1000, description="Display order of the parameter (ascending)."
    )
    controls: str | None = Field(
        default=None,
        max_length=32,
        description="UI control hint, e.g. input, select, textarea, switch.",
    )
    required: bool | None = Field(
        default=None,
        description="Whether a value must be given at render time. Defaults to true when the "
        "parameter has no default, false otherwise.",
    )

    @property
    def is_required(self) -> bool:
        if self.required is not None:
            return self.required
        return self.default is None
