"""The Argon command template: parse, validate, render, `--set` items and Image manifests."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from image_operator.api.parameters import Parameter
from image_operator.commandtemplate import (
    Placeholder,
    RenderError,
    SetArgumentError,
    TemplateError,
    TemplateIssue,
    TemplateSyntaxError,
    parse,
    parse_set_arguments,
    render,
    render_manifest,
    validate,
)

FIXTURE = Path(__file__).parent / "fixtures" / "transcode-image.yaml"

# The seed's command and parameter objects, copied from shared/seeds/001 (image create).
SEED_COMMAND = (
    "python3 /home/mediacloud/main_transcode.py --task_id={{inputs.task_id}} "
    "--date={{inputs.date}} --log_path={{configs.log_path}} "
    "--cache_path={{configs.cache_path}} --input_file={{inputs.input_file}} "
    "--output={{outputs.output}} --format={{inputs.format}} --vcodec={{inputs.vcodec}} "
    "--acodec={{inputs.acodec}}"
)
SEED_TASK_ID = {
    "controls": "input",
    "default": "-",
    "displayName": "任务ID",
    "index": 0,
    "kind": "input",
    "name": "task_id",
    "type": "string",
}
SEED_CACHE_PATH = {
    "controls": "input",
    "default": "/data/y/argon/workdir/default/cache_path",
    "displayName": "缓存文件路径",
    "index": 8,
    "kind": "config",
    "name": "cache_path",
    "type": "string",
}
SEED_OUTPUT = {
    "controls": "input",
    "default": "/data/y/argon/data_path",
    "displayName": "输出文件路径",
    "index": 6,
    "kind": "output",
    "name": "output",
    "type": "string",
}

# A placeholder as the CRD's CEL rule defines it; parse() must accept exactly these.
CEL_PLACEHOLDER = r"\{\{\s*(inputs|configs|outputs)\.[A-Za-z_][A-Za-z0-9_]*\s*\}\}"


def load_fixture() -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))
    return manifest


def fixture_parameters() -> tuple[list[Parameter], list[Parameter], list[Parameter]]:
    spec = load_fixture()["spec"]
    return tuple(  # type: ignore[return-value]
        [Parameter.model_validate(item) for item in spec[name]]
        for name in ("inputs", "outputs", "configs")
    )


def param(name: str, **fields: Any) -> Parameter:
    return Parameter.model_validate({"name": name, **fields})


def fields_of(issues: list[TemplateIssue]) -> list[str]:
    return [issue.field for issue in issues]


# --- the seed's transcode example ---------------------------------------------------------


def test_fixture_command_is_the_seed_command_verbatim() -> None:
    assert load_fixture()["spec"]["command"] == [SEED_COMMAND]


def test_fixture_holds_the_seed_parameters_unchanged() -> None:
    spec = load_fixture()["spec"]
    assert SEED_TASK_ID in spec["inputs"]
    assert SEED_OUTPUT in spec["outputs"]
    assert SEED_CACHE_PATH in spec["configs"]


@pytest.mark.parametrize("seed", [SEED_TASK_ID, SEED_CACHE_PATH, SEED_OUTPUT])
def test_seed_parameters_round_trip_through_the_model(seed: dict[str, Any]) -> None:
    assert Parameter.model_validate(seed).to_wire() == seed


def test_seed_command_parses_to_nine_placeholders_in_order() -> None:
    placeholders = parse(SEED_COMMAND)
    assert [p.key for p in placeholders] == [
        "inputs.task_id",
        "inputs.date",
        "configs.log_path",
        "configs.cache_path",
        "inputs.input_file",
        "outputs.output",
        "inputs.format",
        "inputs.vcodec",
        "inputs.acodec",
    ]
    assert all(SEED_COMMAND[p.start : p.end] == p.text for p in placeholders)


def test_fixture_validates_without_issues() -> None:
    inputs, outputs, configs = fixture_parameters()
    assert validate([SEED_COMMAND], inputs, outputs, configs) == []


def test_fixture_renders_with_the_required_values() -> None:
    values = {
        "inputs.task_id": "42",
        "inputs.date": "2020-12-21",
        "inputs.input_file": "/data/in/movie.mov",
    }
    assert render_manifest(load_fixture(), values) == [
        "python3 /home/mediacloud/main_transcode.py --task_id=42 --date=2020-12-21 "
        "--log_path=/data/y/argon/workdir/default/log_path "
        "--cache_path=/data/y/argon/workdir/default/cache_path "
        "--input_file=/data/in/movie.mov --output=/data/y/argon/data_path "
        "--format=mp4 --vcodec=h264 --acodec=aac"
    ]


def test_fixture_falls_back_to_defaults_for_everything_not_given() -> None:
    values = {"inputs.date": "2020-12-21", "inputs.input_file": "/in.mov"}
    (rendered,) = render_manifest(load_fixture(), values)
    assert "--task_id=- " in rendered  # the seed's default for task_id
    assert "--output=/data/y/argon/data_path " in rendered


def test_fixture_without_values_names_the_first_missing_required_one() -> None:
    with pytest.raises(RenderError) as raised:
        render_manifest(load_fixture(), {})
    lines = str(raised.value).splitlines()
    assert lines[0] == "inputs.date has no value and no default; pass --set inputs.date=..."
    assert lines[1:] == [
        "inputs.input_file has no value and no default; pass --set inputs.input_file=..."
    ]


def test_seed_as_published_fails_on_the_undeclared_parameters() -> None:
    issues = validate(
        [SEED_COMMAND],
        inputs=[Parameter.model_validate(SEED_TASK_ID)],
        outputs=[Parameter.model_validate(SEED_OUTPUT)],
        configs=[Parameter.model_validate(SEED_CACHE_PATH)],
    )
    assert fields_of(issues) == ["spec.command[0]"] * 6
    named = [re.search(r"names (\S+),", issue.message) for issue in issues]
    assert [m.group(1) for m in named if m] == [
        "inputs.date",
        "configs.log_path",
        "inputs.input_file",
        "inputs.format",
        "inputs.vcodec",
        "inputs.acodec",
    ]
    assert issues[0].message == (
        "spec.command[0]: {{inputs.date}} names inputs.date, which is not declared in "
        "spec.inputs; declared inputs: task_id"
    )


# --- parse ----------------------------------------------------------------------------------


def test_parse_reports_kind_name_text_and_span() -> None:
    assert parse("a {{ inputs.x_1 }} b{{outputs._o}}") == [
        Placeholder(kind="inputs", name="x_1", text="{{ inputs.x_1 }}", start=2, end=18),
        Placeholder(kind="outputs", name="_o", text="{{outputs._o}}", start=20, end=34),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no placeholders at all",
        "single {braces} and a stray }} are literal",
        "{{configs.LOG}}",
        "{{  inputs.a }}",
        "{{inputs.a}}{{inputs.a}}",
        "{{inputs.a}}}",  # the third brace is literal text after the placeholder
    ],
)
def test_parse_accepts(text: str) -> None:
    parse(text)


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("--x={{input.a}}", "'{{input.a}}' at position 4"),
        ("{{inputs.1a}}", "'{{inputs.1a}}'"),
        ("{{inputs.}}", "'{{inputs.}}'"),
        ("{{inputs.a.b}}", "'{{inputs.a.b}}'"),
        ("{{inputs.a-b}}", "'{{inputs.a-b}}'"),
        ("{{}}", "'{{}}'"),
        ("{{ inputs . a }}", "'{{ inputs . a }}'"),
        ("{{{inputs.a}}}", "'{{{inputs.a}}'"),
        # Only plain spaces pad a name: the CRD's CEL rule matches after replace(' ', '').
        ("{{\tinputs.a}}", "'{{\\tinputs.a}}'"),
        ("{{\vinputs.a}}", "'{{\\x0binputs.a}}'"),
        ("{{\u00a0inputs.a}}", "'{{\\xa0inputs.a}}'"),
    ],
)
def test_parse_rejects_malformed_placeholders(text: str, bad: str) -> None:
    with pytest.raises(TemplateSyntaxError) as raised:
        parse(text)
    message = str(raised.value)
    assert bad in message
    assert "accepted: {{inputs.NAME}}, {{configs.NAME}} or {{outputs.NAME}}" in message


@pytest.mark.parametrize(
    ("text", "position"),
    [("--a={{inputs.a", 4), ("{{inputs.a}} {{", 13), ("{{inputs.a}x}}", 0)],
)
def test_parse_rejects_an_unclosed_opening(text: str, position: int) -> None:
    with pytest.raises(TemplateSyntaxError, match=f"'{{{{' at position {position} is not closed"):
        parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "{{inputs.a}}",
        "{{ configs.b }} x {{outputs.c}}",
        "{{input.a}}",
        "{{inputs.a.b}}",
        "{{{inputs.a}}}",
        "{{ }}",
        "{{inputs.a}}}",
        "{x} {{outputs.9}}",
    ],
)
def test_parse_agrees_with_the_crd_cel_rule(text: str) -> None:
    """Every `{{[^}]*}}` must match the CEL placeholder pattern (texts without unclosed `{{`)."""
    cel_accepts = all(
        re.fullmatch(CEL_PLACEHOLDER, found) for found in re.findall(r"\{\{[^}]*\}\}", text)
    )
    try:
        parse(text)
        parsed = True
    except TemplateSyntaxError:
        parsed = False
    assert parsed == cel_accepts


# --- validate -------------------------------------------------------------------------------


def test_validate_lists_declared_names_of_the_kind_for_an_unknown_placeholder() -> None:
    issues = validate(
        ["run", "--out={{outputs.result}}"],
        inputs=[param("result")],
        outputs=[param("out_a"), param("out_b")],
        configs=[],
    )
    assert issues == [
        TemplateIssue(
            "spec.command[1]",
            "spec.command[1]: {{outputs.result}} names outputs.result, which is not declared "
            "in spec.outputs; declared outputs: out_a, out_b",
        )
    ]


def test_validate_says_when_no_parameter_of_the_kind_is_declared() -> None:
    (issue,) = validate(["{{configs.x}}"], [], [], [])
    assert issue.message.endswith("declared configs: none are declared")


def test_validate_reports_a_repeated_unknown_placeholder_once_per_item() -> None:
    assert len(validate(["{{inputs.x}} {{ inputs.x }}"], [], [], [])) == 1


def test_validate_accepts_declared_placeholders_of_every_kind() -> None:
    command = ["{{inputs.a}}", "{{outputs.b}} {{configs.c}}"]
    assert validate(command, [param("a")], [param("b")], [param("c")]) == []


def test_validate_reports_a_malformed_placeholder_at_its_command_item() -> None:
    (issue,) = validate(["ok", "--x={{inputs.a"], [param("a")], [], [])
    assert issue.field == "spec.command[1]"
    assert issue.message.startswith("spec.command[1]: '{{' at position 4 is not closed")


def test_validate_rejects_duplicate_names_within_a_kind() -> None:
    (issue,) = validate([], [param("a"), param("b"), param("a")], [], [])
    assert issue == TemplateIssue(
        "spec.inputs[2].name",
        "spec.inputs[2].name: 'a' is already declared at spec.inputs[0]; "
        "names must be unique within spec.inputs",
    )


def test_validate_accepts_the_same_name_in_different_kinds() -> None:
    assert validate([], [param("a")], [param("a")], [param("a")]) == []


def test_validate_accepts_duplicate_indexes() -> None:
    assert validate([], [param("a", index=1), param("b", index=1)], [], []) == []


@pytest.mark.parametrize(
    ("inputs", "outputs", "configs", "field"),
    [
        ([param("a", kind="output")], [], [], "spec.inputs[0].kind"),
        ([], [param("a", kind="config")], [], "spec.outputs[0].kind"),
        ([], [], [param("ok", kind="config"), param("a", kind="input")], "spec.configs[1].kind"),
    ],
)
def test_validate_rejects_a_kind_that_does_not_match_its_list(
    inputs: list[Parameter], outputs: list[Parameter], configs: list[Parameter], field: str
) -> None:
    (issue,) = validate([], inputs, outputs, configs)
    assert issue.field == field
    assert "does not match" in issue.message
    assert "or leave kind unset" in issue.message


def test_validate_accepts_a_matching_or_unset_kind() -> None:
    assert (
        validate(
            [],
            [param("a", kind="input"), param("b")],
            [param("c", kind="output")],
            [param("d", kind="config")],
        )
        == []
    )


@pytest.mark.parametrize(
    ("type_", "default"),
    [
        ("integer", "0"),
        ("integer", "42"),
        ("integer", "-7"),
        ("integer", "+3"),
        ("integer", "007"),
        ("number", "3"),
        ("number", "-0.5"),
        ("number", "1e6"),
        ("number", ".5"),
        ("number", "5."),
        ("number", "+2.5E-3"),
        ("boolean", "true"),
        ("boolean", "False"),
        ("boolean", "TRUE"),
        ("string", ""),
        ("string", "anything {{at all}}"),
        ("path", "/data/y/argon/data_path"),
    ],
)
def test_validate_accepts_defaults_that_fit_their_type(type_: str, default: str) -> None:
    assert validate([], [param("p", type=type_, default=default)], [], []) == []


@pytest.mark.parametrize(
    ("type_", "default", "accepted"),
    [
        ("integer", "4.2", "digits with an optional sign"),
        ("integer", "", "digits with an optional sign"),
        ("integer", " 4", "digits with an optional sign"),
        ("integer", "1e3", "digits with an optional sign"),
        ("integer", "\u0663", "digits with an optional sign"),  # ARABIC-INDIC DIGIT THREE
        ("number", "nan", "a decimal number"),
        ("number", "inf", "a decimal number"),
        ("number", "1e999", "a decimal number"),  # overflows to infinity
        ("number", "1_000", "a decimal number"),
        ("number", "0x10", "a decimal number"),
        ("number", "", "a decimal number"),
        ("boolean", "yes", "true or false"),
        ("boolean", "1", "true or false"),
        ("boolean", "", "true or false"),
    ],
)
def test_validate_rejects_defaults_that_do_not_fit_their_type(
    type_: str, default: str, accepted: str
) -> None:
    (issue,) = validate([], [], [], [param("p", type=type_, default=default)])
    assert issue.field == "spec.configs[0].default"
    assert issue.message.startswith(f"spec.configs[0].default: {default!r} is not ")
    assert f"accepted: {accepted}" in issue.message


def test_validate_accepts_an_enum_default_among_its_options() -> None:
    assert (
        validate([], [param("f", type="enum", options=["mp4", "ts"], default="ts")], [], []) == []
    )


def test_validate_rejects_an_enum_default_outside_its_options() -> None:
    (issue,) = validate([], [param("f", type="enum", options=["mp4", "ts"], default="MP4")], [], [])
    assert issue == TemplateIssue(
        "spec.inputs[0].default",
        "spec.inputs[0].default: 'MP4' is not one of the options; accepted: mp4, ts",
    )


@pytest.mark.parametrize("options", [None, []])
def test_validate_rejects_an_enum_without_options(options: list[str] | None) -> None:
    # The default is not reported too: without options nothing could be accepted.
    (issue,) = validate([], [param("f", type="enum", options=options, default="x")], [], [])
    assert issue.field == "spec.inputs[0].options"
    assert "type enum needs a non-empty list of options" in issue.message


@pytest.mark.parametrize("options", [["a"], []])
def test_validate_rejects_options_on_a_non_enum_type(options: list[str]) -> None:
    (issue,) = validate([], [], [param("o", type="path", options=options)], [])
    assert issue.field == "spec.outputs[0].options"
    assert "only allowed with type enum, not path" in issue.message


def test_validate_reports_every_problem_at_once() -> None:
    issues = validate(
        ["{{inputs.nope}}"],
        [param("a", kind="config", type="integer", default="x"), param("a")],
        [],
        [],
    )
    assert fields_of(issues) == [
        "spec.command[0]",
        "spec.inputs[0].kind",
        "spec.inputs[0].default",
        "spec.inputs[1].name",
    ]


# --- render ---------------------------------------------------------------------------------


def test_render_substitutes_values_and_defaults_in_every_item() -> None:
    rendered = render(
        ["run", "--n={{inputs.n}}", "{{configs.dir}}/{{ inputs.n }}.log"],
        inputs=[param("n", type="integer")],
        outputs=[],
        configs=[param("dir", type="path", default="/var/log")],
        values={"inputs.n": "42"},
    )
    assert rendered == ["run", "--n=42", "/var/log/42.log"]


def test_render_does_not_quote_or_expand_values() -> None:
    value = "it's {{inputs.b}} $HOME; rm -rf /"
    rendered = render(
        ["echo {{inputs.a}}"], [param("a"), param("b", default="B")], [], [], {"inputs.a": value}
    )
    assert rendered == [f"echo {value}"]


def test_render_uses_a_given_value_over_the_default() -> None:
    assert render(["{{inputs.a}}"], [param("a", default="d")], [], [], {"inputs.a": "v"}) == ["v"]


def test_render_fills_an_optional_parameter_without_default_with_nothing() -> None:
    assert render(["[{{inputs.a}}]"], [param("a", required=False)], [], [], {}) == ["[]"]


def test_render_rejects_a_missing_required_value() -> None:
    with pytest.raises(RenderError) as raised:
        render(["{{outputs.o}}"], [], [param("o")], [], {})
    assert str(raised.value) == "outputs.o has no value and no default; pass --set outputs.o=..."


def test_render_requires_a_value_when_required_overrides_the_default() -> None:
    parameters = [param("a", default="d", required=True)]
    with pytest.raises(RenderError, match=r"inputs\.a is marked required"):
        render(["{{inputs.a}}"], parameters, [], [], {})
    assert render(["{{inputs.a}}"], parameters, [], [], {"inputs.a": "v"}) == ["v"]


def test_render_requires_declared_parameters_the_command_does_not_use() -> None:
    with pytest.raises(RenderError, match=r"^configs\.unused has no value"):
        render(["plain"], [], [], [param("unused")], {})


@pytest.mark.parametrize(
    ("parameter", "value", "expected"),
    [
        (param("n", type="integer"), "4.2", "inputs.n: '4.2' is not an integer"),
        (param("n", type="number"), "nan", "inputs.n: 'nan' is not a finite number"),
        (param("n", type="boolean"), "on", "inputs.n: 'on' is not a boolean"),
        (param("n", type="enum", options=["x"]), "y", "inputs.n: 'y' is not one of the options"),
    ],
)
def test_render_rejects_a_value_that_does_not_fit_its_type(
    parameter: Parameter, value: str, expected: str
) -> None:
    with pytest.raises(RenderError) as raised:
        render(["{{inputs.n}}"], [parameter], [], [], {"inputs.n": value})
    assert str(raised.value).startswith(expected)
    assert "accepted: " in str(raised.value)


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        (param("n", type="integer"), "-12"),
        (param("n", type="number"), "2.5e3"),
        (param("n", type="boolean"), "False"),
        (param("n", type="enum", options=["x", "y"]), "y"),
        (param("n", type="path"), "relative/dir"),
    ],
)
def test_render_accepts_a_value_that_fits_its_type(parameter: Parameter, value: str) -> None:
    assert render(["{{inputs.n}}"], [parameter], [], [], {"inputs.n": value}) == [value]


@pytest.mark.parametrize("key", ["inputs.b", "configs.a", "task_id"])
def test_render_rejects_a_value_for_an_undeclared_parameter(key: str) -> None:
    with pytest.raises(RenderError) as raised:
        render(["{{inputs.a}}"], [param("a", default="d")], [], [], {key: "v"})
    assert str(raised.value) == f"{key} is not a declared parameter; declared: inputs.a"


def test_render_raises_validation_issues() -> None:
    with pytest.raises(RenderError) as raised:
        render(["{{inputs.a}}"], [param("a", type="integer", default="x")], [], [], {})
    assert str(raised.value) == (
        "the command template is invalid:\nspec.inputs[0].default: 'x' is not an integer; "
        "accepted: digits with an optional sign, e.g. 42 or -7"
    )


def test_render_reports_all_value_problems_together() -> None:
    with pytest.raises(RenderError) as raised:
        render(
            ["{{inputs.b}} {{inputs.a}}"],
            [param("a"), param("b", type="integer")],
            [],
            [],
            {"inputs.b": "x", "inputs.zzz": "1"},
        )
    assert str(raised.value).splitlines() == [
        "inputs.zzz is not a declared parameter; declared: inputs.a, inputs.b",
        "inputs.b: 'x' is not an integer; accepted: digits with an optional sign, e.g. 42 or -7",
        "inputs.a has no value and no default; pass --set inputs.a=...",
    ]


# --- parse_set_arguments --------------------------------------------------------------------


def test_parse_set_arguments_accepts_kind_name_value() -> None:
    assert parse_set_arguments(
        ["inputs.task_id=42", "configs.opts=a=b", "outputs.o=", "inputs.task_id=43"]
    ) == {"inputs.task_id": "43", "configs.opts": "a=b", "outputs.o": ""}


@pytest.mark.parametrize(
    "item",
    [
        "task_id=42",
        "inputs.task_id",
        "input.x=1",
        "inputs.1x=2",
        "=1",
        "inputs.a b=1",
        " inputs.a=1",
    ],
)
def test_parse_set_arguments_rejects_other_forms(item: str) -> None:
    with pytest.raises(SetArgumentError) as raised:
        parse_set_arguments([item])
    assert str(raised.value) == (
        f"--set {item!r} is not valid; accepted: KIND.NAME=VALUE with KIND one of inputs, "
        "configs, outputs, e.g. inputs.task_id=42"
    )


def test_set_arguments_feed_render() -> None:
    values = parse_set_arguments(
        ["inputs.task_id=42", "inputs.date=2020-12-21", "inputs.input_file=/in.mov"]
    )
    (rendered,) = render_manifest(load_fixture(), values)
    assert rendered.startswith(
        "python3 /home/mediacloud/main_transcode.py --task_id=42 --date=2020-12-21 "
    )


# --- render_manifest ------------------------------------------------------------------------


def image(spec: Any) -> dict[str, Any]:
    return {"apiVersion": "imageops.io/v1alpha1", "kind": "Image", "spec": spec}


def test_render_manifest_accepts_a_spec_without_parameter_lists() -> None:
    assert render_manifest(image({"command": ["true"]}), {}) == ["true"]


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (
            {**image({"command": []}), "kind": "BaseImage"},
            "the manifest is apiVersion 'imageops.io/v1alpha1', kind 'BaseImage'; "
            "accepted: apiVersion 'imageops.io/v1alpha1', kind 'Image'",
        ),
        (
            {**image({"command": []}), "apiVersion": "v1"},
            "the manifest is apiVersion 'v1', kind 'Image'; "
            "accepted: apiVersion 'imageops.io/v1alpha1', kind 'Image'",
        ),
        (
            {"apiVersion": "imageops.io/v1alpha1", "kind": "Image"},
            "the Image has no spec; accepted: a spec mapping with a command",
        ),
        (
            image({"inputs": []}),
            "the Image has no spec.command; accepted: a list of strings",
        ),
        (
            image({"command": "python3 run.py"}),
            "spec.command is 'python3 run.py'; accepted: a list of strings",
        ),
        (image({"command": ["a", 3]}), "spec.command[1] is 3; accepted: a string"),
        (
            image({"command": ["a"], "configs": {"name": "x"}}),
            "spec.configs is {'name': 'x'}; accepted: a list of parameters",
        ),
    ],
)
def test_render_manifest_rejects_what_is_not_an_image_command(
    manifest: dict[str, Any], message: str
) -> None:
    with pytest.raises(RenderError) as raised:
        render_manifest(manifest, {})
    assert str(raised.value) == message


def test_render_manifest_names_the_field_of_an_invalid_parameter() -> None:
    spec = {"command": ["{{inputs.a}}"], "inputs": [{"name": "a", "type": "date"}]}
    with pytest.raises(RenderError) as raised:
        render_manifest(image(spec), {})
    message = str(raised.value)
    assert message.startswith("spec.inputs[0] is not a valid parameter: spec.inputs[0].type: ")
    assert "'string', 'number', 'integer', 'boolean', 'path' or 'enum'" in message


def test_render_manifest_names_an_unknown_parameter_field() -> None:
    spec = {"command": ["{{inputs.a}}"], "inputs": [{"name": "a", "displayname": "A"}]}
    with pytest.raises(RenderError, match=r"spec\.inputs\[0\]\.displayname: Extra inputs"):
        render_manifest(image(spec), {})


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [TemplateSyntaxError, RenderError, SetArgumentError])
def test_every_error_is_a_template_error_and_a_value_error(error: type[Exception]) -> None:
    assert issubclass(error, TemplateError)
    assert issubclass(error, ValueError)
