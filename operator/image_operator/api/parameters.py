"""Typed parameters of an image's command template (the Argon `inputs` / `outputs` / `configs`)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from image_operator.api.base import ApiModel
from image_operator.api.common import cel, pattern_in_words

PARAMETER_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

ParameterName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=63,
        pattern=PARAMETER_NAME_PATTERN,
        description="Name used in the command template as {{inputs.NAME}}, {{configs.NAME}} "
        "or {{outputs.NAME}}: a letter or underscore, then letters, digits or underscores.",
        json_schema_extra=pattern_in_words(
            PARAMETER_NAME_PATTERN,
            "must start with a letter or '_' and hold only letters, digits and '_'",
        ),
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


INTEGER_PATTERN = r"^[+-]?[0-9]+$"
NUMBER_PATTERN = r"^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$"


class Parameter(ApiModel):
    """One typed parameter of the command template, as Argon models it."""

    # The API server checks these at admission; commandtemplate.validate says the same in Python.
    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    f"!has(self.default) || self.type != 'integer' || "
                    f"self.default.matches('{INTEGER_PATTERN}')",
                    "default must be an integer (e.g. 42) because type is integer",
                    field_path=".default",
                ),
                cel(
                    f"!has(self.default) || self.type != 'number' || "
                    f"self.default.matches('{NUMBER_PATTERN}')",
                    "default must be a number (e.g. 1.5) because type is number",
                    field_path=".default",
                ),
                cel(
                    "!has(self.default) || self.type != 'boolean' || "
                    "self.default.lowerAscii() in ['true', 'false']",
                    "default must be true or false because type is boolean",
                    field_path=".default",
                ),
                cel(
                    "self.type != 'enum' || (has(self.options) && size(self.options) > 0)",
                    "type enum needs a non-empty options list",
                    field_path=".options",
                ),
                cel(
                    "!has(self.options) || self.type == 'enum'",
                    "options are only allowed when type is enum",
                    field_path=".options",
                ),
                cel(
                    "!has(self.default) || self.type != 'enum' || "
                    "(has(self.options) && self.default in self.options)",
                    "default must be one of options because type is enum",
                    field_path=".default",
                ),
            ]
        }
    }

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
