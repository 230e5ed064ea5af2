"""The Argon command template: find the `{{inputs.NAME}}` placeholders in an image's command,
check them against the declared parameters, and render the command for given values."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from pydantic import ValidationError

from image_operator.api.parameters import Parameter, ParameterKind, ParameterType

PlaceholderKind = Literal["inputs", "configs", "outputs"]

IMAGE_API_VERSION = "imageops.io/v1alpha1"
IMAGE_KIND = "Image"

# The CRD checks placeholders with CEL (RE2 regexes), and matches a placeholder to its declared
# parameter after `replace(' ', '')`; so only plain spaces may pad a name inside the braces, on
# both sides. The patterns are RE2-compatible (anchor them for CEL).
_SPACE = r" *"
PARAMETER_KEY_PATTERN = r"(inputs|configs|outputs)\.([A-Za-z_][A-Za-z0-9_]*)"
PLACEHOLDER_PATTERN = r"\{\{" + _SPACE + PARAMETER_KEY_PATTERN + _SPACE + r"\}\}"
# Everything between `{{` and the next `}}` is meant as a placeholder and must be a valid one.
PLACEHOLDER_CANDIDATE_PATTERN = r"\{\{[^}]*\}\}"
# `[0-9]`, not `\d`: Python's `\d` also takes other scripts' digits, which int() would accept
# but the cloud's command line would not.
INTEGER_PATTERN = r"[+-]?[0-9]+"
# A plain decimal literal. float() alone would also take "nan", "1_000" and padded spaces.
NUMBER_PATTERN = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"

_PLACEHOLDER = re.compile(PLACEHOLDER_PATTERN)
_CANDIDATE = re.compile(PLACEHOLDER_CANDIDATE_PATTERN)
_PARAMETER_KEY = re.compile(PARAMETER_KEY_PATTERN)
_INTEGER = re.compile(INTEGER_PATTERN)
_NUMBER = re.compile(NUMBER_PATTERN)

_ACCEPTED_PLACEHOLDERS = (
    "{{inputs.NAME}}, {{configs.NAME}} or {{outputs.NAME}}, where NAME is a letter or "
    "underscore followed by letters, digits or underscores"
)
_ACCEPTED_SET_ARGUMENT = (
    "KIND.NAME=VALUE with KIND one of inputs, configs, outputs, e.g. inputs.task_id=42"
)
_LIST_KIND: dict[PlaceholderKind, ParameterKind] = {
    "inputs": ParameterKind.INPUT,
    "outputs": ParameterKind.OUTPUT,
    "configs": ParameterKind.CONFIG,
}


class TemplateError(ValueError):
    """Base of every error this module raises."""


class TemplateSyntaxError(TemplateError):
    """A command string holds a malformed placeholder or an unclosed `{{`."""


class RenderError(TemplateError):
    """The command cannot be rendered for the given manifest and values."""


class SetArgumentError(TemplateError):
    """A CLI `--set` item is not of the form KIND.NAME=VALUE."""


@dataclass(frozen=True)
class Placeholder:
    """One `{{kind.name}}` occurrence; `start`/`end` index `text` within the parsed string."""

    kind: PlaceholderKind
    name: str
    text: str
    start: int
    end: int

    @property
    def key(self) -> str:
        """The `kind.name` form used by `render` values and `--set`."""
        return f"{self.kind}.{self.name}"


@dataclass(frozen=True)
class TemplateIssue:
    """One problem in an Image spec: the field path and a message that names it."""

    field: str
    message: str

    def __str__(self) -> str:
        return self.message


def parse(text: str) -> list[Placeholder]:
    """The placeholders in one command string, in order; raises on malformed ones."""
    placeholders: list[Placeholder] = []
    position = 0
    for candidate in _CANDIDATE.finditer(text):
        _reject_unclosed(text, position, candidate.start())
        match = _PLACEHOLDER.fullmatch(candidate.group())
        if match is None:
            raise TemplateSyntaxError(
                f"{candidate.group()!r} at position {candidate.start()} is not a valid "
                f"placeholder; accepted: {_ACCEPTED_PLACEHOLDERS}"
            )
        placeholders.append(
            Placeholder(
                # The pattern admits only these three words.
                kind=cast(PlaceholderKind, match.group(1)),
                name=match.group(2),
                text=candidate.group(),
                start=candidate.start(),
                end=candidate.end(),
            )
        )
        position = candidate.end()
    _reject_unclosed(text, position, len(text))
    return placeholders


def _reject_unclosed(text: str, start: int, end: int) -> None:
    # Between placeholders any `{{` has no `}}` before the next `}`: a typo, not literal text.
    found = text.find("{{", start, end)
    if found != -1:
        raise TemplateSyntaxError(
            f"'{{{{' at position {found} is not closed by '}}}}' (a placeholder may not "
            f"contain '}}'); accepted: {_ACCEPTED_PLACEHOLDERS}"
        )


def validate(
    command: Sequence[str],
    inputs: Sequence[Parameter],
    outputs: Sequence[Parameter],
    configs: Sequence[Parameter],
) -> list[TemplateIssue]:
    """Every problem in the command and its parameters; an empty list means it can render."""
    declared = _by_list(inputs, outputs, configs)
    issues = _check_command(command, declared)
    for list_name, parameters in declared.items():
        issues += _check_parameters(list_name, parameters)
    return issues


def _by_list(
    inputs: Sequence[Parameter], outputs: Sequence[Parameter], configs: Sequence[Parameter]
) -> dict[PlaceholderKind, Sequence[Parameter]]:
    return {"inputs": inputs, "outputs": outputs, "configs": configs}


def _check_command(
    command: Sequence[str], declared: Mapping[PlaceholderKind, Sequence[Parameter]]
) -> list[TemplateIssue]:
    issues: list[TemplateIssue] = []
    for position, text in enumerate(command):
        field = f"spec.command[{position}]"
        try:
            placeholders = parse(text)
        except TemplateSyntaxError as error:
            issues.append(TemplateIssue(field, f"{field}: {error}"))
            continue
        reported: set[str] = set()
        for placeholder in placeholders:
            names = [parameter.name for parameter in declared[placeholder.kind]]
            if placeholder.name in names or placeholder.key in reported:
                continue
            reported.add(placeholder.key)
            accepted = ", ".join(names) if names else "none are declared"
            issues.append(
                TemplateIssue(
                    field,
                    f"{field}: {placeholder.text} names {placeholder.key}, which is not "
                    f"declared in spec.{placeholder.kind}; declared {placeholder.kind}: "
                    f"{accepted}",
                )
            )
    return issues


def _check_parameters(
    list_name: PlaceholderKind, parameters: Sequence[Parameter]
) -> list[TemplateIssue]:
    issues: list[TemplateIssue] = []
    first_seen: dict[str, int] = {}
    for position, parameter in enumerate(parameters):
        problems = _parameter_problems(list_name, parameter)
        if parameter.name in first_seen:
            problems.insert(
                0,
                (
                    "name",
                    f"{parameter.name!r} is already declared at "
                    f"spec.{list_name}[{first_seen[parameter.name]}]; "
                    f"names must be unique within spec.{list_name}",
                ),
            )
        first_seen.setdefault(parameter.name, position)
        path = f"spec.{list_name}[{position}]"
        issues += [
            TemplateIssue(f"{path}.{field}", f"{path}.{field}: {problem}")
            for field, problem in problems
        ]
    return issues


def _parameter_problems(list_name: PlaceholderKind, parameter: Parameter) -> list[tuple[str, str]]:
    """(field, problem) pairs for one parameter on its own, without its neighbours."""
    problems: list[tuple[str, str]] = []
    expected_kind = _LIST_KIND[list_name]
    if parameter.kind is not None and parameter.kind != expected_kind:
        problems.append(
            (
                "kind",
                f"{parameter.kind.value!r} does not match spec.{list_name}; "
                f"accepted: {expected_kind.value!r} or leave kind unset",
            )
        )
    if parameter.type is ParameterType.ENUM and not parameter.options:
        problems.append(("options", "type enum needs a non-empty list of options"))
    if parameter.type is not ParameterType.ENUM and parameter.options is not None:
        problems.append(
            (
                "options",
                f"options are only allowed with type enum, not {parameter.type.value}; "
                "remove them or set type: enum",
            )
        )
    if parameter.default is not None:
        problem = _type_problem(parameter, parameter.default)
        if problem is not None:
            problems.append(("default", problem))
    return problems


def _type_problem(parameter: Parameter, value: str) -> str | None:
    """Why `value` does not fit the parameter's type, or None when it does."""
    match parameter.type:
        case ParameterType.INTEGER if not _INTEGER.fullmatch(value):
            return (
                f"{value!r} is not an integer; accepted: digits with an optional sign, "
                "e.g. 42 or -7"
            )
        case ParameterType.NUMBER if not (_NUMBER.fullmatch(value) and math.isfinite(float(value))):
            return (
                f"{value!r} is not a finite number; accepted: a decimal number, e.g. 3, -0.5 or 1e6"
            )
        case ParameterType.BOOLEAN if value.lower() not in ("true", "false"):
            return f"{value!r} is not a boolean; accepted: true or false (any case)"
        # An enum without options is reported once, on its options field.
        case ParameterType.ENUM if parameter.options and value not in parameter.options:
            return f"{value!r} is not one of the options; accepted: {', '.join(parameter.options)}"
    return None


def render(
    command: Sequence[str],
    inputs: Sequence[Parameter],
    outputs: Sequence[Parameter],
    configs: Sequence[Parameter],
    values: Mapping[str, str],
) -> list[str]:
    """The command with every placeholder replaced by its value or default.

    `values` is keyed `inputs.NAME`, `configs.NAME` or `outputs.NAME`. Substitution is plain
    text: no shell quoting, and a value that itself looks like `{{...}}` stays as it is.
    """
    issues = validate(command, inputs, outputs, configs)
    if issues:
        raise RenderError(
            "the command template is invalid:\n" + "\n".join(issue.message for issue in issues)
        )
    declared = {
        f"{list_name}.{parameter.name}": parameter
        for list_name, parameters in _by_list(inputs, outputs, configs).items()
        for parameter in parameters
    }
    # Report problems in the order the command reads, then the parameters it does not use.
    order = [placeholder.key for text in command for placeholder in parse(text)]
    resolved, problems = _resolve(declared, list(dict.fromkeys([*order, *declared])), values)
    if problems:
        raise RenderError("\n".join(problems))
    return [_substitute(text, resolved) for text in command]


def _resolve(
    declared: Mapping[str, Parameter], keys: Sequence[str], values: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """The value for every declared key, and every problem found (all at once, for the CLI)."""
    problems = [
        f"{key} is not a declared parameter; declared: {', '.join(declared) or 'none'}"
        for key in values
        if key not in declared
    ]
    resolved: dict[str, str] = {}
    for key in keys:
        parameter = declared[key]
        if key in values:
            problem = _type_problem(parameter, values[key])
            if problem is not None:
                problems.append(f"{key}: {problem}")
            resolved[key] = values[key]
        elif parameter.is_required and parameter.default is None:
            problems.append(f"{key} has no value and no default; pass --set {key}=...")
        elif parameter.is_required:
            # `required: true` overrides a default: the default is only a suggestion for UIs.
            problems.append(
                f"{key} is marked required, so its default is only a suggestion; "
                f"pass --set {key}=..."
            )
        else:
            # Optional and without a default: the placeholder becomes empty.
            resolved[key] = parameter.default or ""
    return resolved, problems


def _substitute(text: str, resolved: Mapping[str, str]) -> str:
    pieces: list[str] = []
    position = 0
    for placeholder in parse(text):
        pieces += [text[position : placeholder.start], resolved[placeholder.key]]
        position = placeholder.end
    pieces.append(text[position:])
    return "".join(pieces)


def parse_set_arguments(items: Sequence[str]) -> dict[str, str]:
    """CLI `--set KIND.NAME=VALUE` items as render values; a later item wins, as in Helm."""
    values: dict[str, str] = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not _PARAMETER_KEY.fullmatch(key):
            raise SetArgumentError(
                f"--set {item!r} is not valid; accepted: {_ACCEPTED_SET_ARGUMENT}"
            )
        values[key] = value
    return values


def render_manifest(manifest: Mapping[str, Any], values: Mapping[str, str]) -> list[str]:
    """Render the command of an `Image` manifest (as loaded from Kubernetes YAML)."""
    api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
    if api_version != IMAGE_API_VERSION or kind != IMAGE_KIND:
        raise RenderError(
            f"the manifest is apiVersion {api_version!r}, kind {kind!r}; accepted: "
            f"apiVersion {IMAGE_API_VERSION!r}, kind {IMAGE_KIND!r}"
        )
    spec = manifest.get("spec")
    if not isinstance(spec, Mapping):
        raise RenderError("the Image has no spec; accepted: a spec mapping with a command")
    command = spec.get("command")
    if command is None:
        raise RenderError("the Image has no spec.command; accepted: a list of strings")
    if isinstance(command, str) or not isinstance(command, Sequence):
        raise RenderError(f"spec.command is {command!r}; accepted: a list of strings")
    for position, text in enumerate(command):
        if not isinstance(text, str):
            raise RenderError(f"spec.command[{position}] is {text!r}; accepted: a string")
    return render(
        command,
        _load_parameters(spec, "inputs"),
        _load_parameters(spec, "outputs"),
        _load_parameters(spec, "configs"),
        values,
    )


def _load_parameters(spec: Mapping[str, Any], list_name: str) -> list[Parameter]:
    raw = spec.get(list_name) or []
    if not isinstance(raw, list):
        raise RenderError(f"spec.{list_name} is {raw!r}; accepted: a list of parameters")
    parameters: list[Parameter] = []
    for position, item in enumerate(raw):
        try:
            parameters.append(Parameter.model_validate(item))
        except ValidationError as error:
            path = f"spec.{list_name}[{position}]"
            problems = "; ".join(
                f"{path}{_field_path(problem['loc'])}: {problem['msg']}"
                for problem in error.errors()
            )
            raise RenderError(f"{path} is not a valid parameter: {problems}") from error
    return parameters


def _field_path(location: tuple[int | str, ...]) -> str:
    """Pydantic's error location (camelCase keys, list positions) as `.key[0]` text."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location)
