"""`image-operator status`: the trees built from fixture objects of every kind in every state
(tests/unit/fixtures/statusview/objects.yaml, rendered at a fixed time), the symbols, colour
rules, command-line checks and error sentences; no cluster (the integration test has one).

The expected trees are the .txt files beside the fixture; after a deliberate change of the
rendering, `UPDATE_GOLDEN=1 pytest tests/unit/test_statusview.py` rewrites them (then read the
diff)."""

from __future__ import annotations

import argparse
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import urllib3.exceptions
import yaml
from kubernetes import config
from kubernetes.client.exceptions import ApiException

from image_operator.cli import kubectl_plugin, main
from image_operator.statusview import kube
from image_operator.statusview.command import view
from image_operator.statusview.health import Health, object_verdict
from image_operator.statusview.kinds import KINDS, Target, UsageError, parse_target
from image_operator.statusview.render import Style, colour_wanted, render, unicode_ok
from image_operator.statusview.tree import Snapshot, TreeBuilder

FIXTURES = Path(__file__).parent / "fixtures" / "statusview"
NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
PLURAL = {kind.kind: plural for plural, kind in KINDS.items()}


def _objects() -> list[dict[str, Any]]:
    return list(yaml.safe_load((FIXTURES / "objects.yaml").read_text(encoding="utf-8")))


def _snapshot(objects: list[dict[str, Any]] | None = None) -> Snapshot:
    by_plural: dict[str, list[dict[str, Any]]] = {}
    for obj in _objects() if objects is None else objects:
        by_plural.setdefault(PLURAL[obj["kind"]], []).append(obj)
    return Snapshot(by_plural)


def _obj(name: str) -> dict[str, Any]:
    return next(o for o in _objects() if o["metadata"]["name"] == name)


def _lines(*words: str, style: Style | None = None) -> list[str]:
    return view(_snapshot(), parse_target(words), "demo", NOW, style or Style())


@pytest.mark.parametrize(
    ("words", "golden"),
    [
        ((), "namespace.txt"),
        (("ipl/golden",), "pipeline-two-runs.txt"),
        (("cl", "my-ai-env"), "listing-two-versions.txt"),
        (("img/ai-env",), "image-copies-and-sharing.txt"),
        (("ImagePipeline/partial",), "pipeline-partial.txt"),
    ],
)
def test_the_tree_matches_the_expected_text(words: tuple[str, ...], golden: str) -> None:
    text = "\n".join(_lines(*words)) + "\n"
    path = FIXTURES / golden
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "health", "word"),
    [
        ("aliyun", Health.READY, "Ready"),
        ("broken", Health.STALLED, "EndpointRefused"),
        ("golden", Health.READY, "Succeeded"),
        ("nightly", Health.IN_PROGRESS, "Running"),
        ("partial", Health.FAILED, "PartiallySucceeded"),
        ("my-ai-env", Health.IN_PROGRESS, "InReview"),
        ("bad-name", Health.STALLED, "Rejected"),
        ("ai-env-copy", Health.IN_PROGRESS, "Creating"),
        ("ai-env-copy-2", Health.IN_PROGRESS, "Pending"),  # observedGeneration -1
        ("held", Health.PAUSED, "Paused (Ready)"),
        ("leaving", Health.DELETING, "Deleting"),
        ("wrong", Health.STALLED, "Unsupported"),
        ("imported-base", Health.IN_PROGRESS, "Cloning"),
    ],
)
def test_each_object_gets_its_state(name: str, health: Health, word: str) -> None:
    verdict = object_verdict(_obj(name))

    assert (verdict.health, verdict.word) == (health, word)


def test_a_status_of_an_older_generation_is_in_progress_even_if_it_said_ready() -> None:
    obj = _obj("web")
    obj["metadata"]["generation"] = 2

    verdict = object_verdict(obj)

    assert (verdict.health, verdict.word) == (Health.IN_PROGRESS, "Pending")
    assert verdict.message == "generation 2 not yet applied (status is of 1)"


def test_progress_and_eta_come_from_status_and_the_condition_message() -> None:
    verdict = object_verdict(_obj("ai-env-copy"))

    assert (verdict.progress, verdict.eta_seconds) == (40, 12)
    assert "◐ Image ai-env-copy  Creating [████░░░░░░] 40% ETA 12s" in _lines("img/ai-env")[2]


def test_a_running_pipeline_run_shows_its_stage_and_an_eta_from_the_last_success() -> None:
    lines = _lines("ipl/nightly")

    run = next(line for line in lines if "run 2 exec-8" in line)
    # The last success took 3 min, this one runs for 1 min (tests/…/objects.yaml).
    assert "◐ run 2 exec-8  BUILDING ETA 2m00s  stage 2 of 3" in run
    assert "running for 1m00s" in run


def test_a_run_without_an_earlier_success_has_no_eta() -> None:
    pipeline = _obj("nightly")
    pipeline["status"]["runs"] = pipeline["status"]["runs"][1:]
    objects = [pipeline if o["metadata"]["name"] == "nightly" else o for o in _objects()]

    lines = view(_snapshot(objects), parse_target(["ipl/nightly"]), "demo", NOW, Style())

    assert not any("ETA" in line for line in lines)


def test_a_copy_hangs_under_its_source_and_a_cycle_of_copies_is_shown_at_the_top() -> None:
    def copy(name: str, source: str) -> dict[str, Any]:
        image = _obj("ai-env-copy")
        image["metadata"]["name"] = name
        image["spec"]["source"] = {"image": {"imageRef": {"name": source}}}
        return image

    objects = [copy("a", "b"), copy("b", "a"), copy("orphan", "gone"), copy("c", "orphan")]
    node = TreeBuilder(_snapshot(objects), "demo", NOW).grouped()

    tops = [child.title for child in node.children]
    assert tops == ["Image a", "Image b", "Image orphan"]
    assert [child.title for child in node.children[2].children] == ["Image c"]
    assert [child.title for child in node.children[0].children] == ["Image b"]  # once, no loop


def test_a_kind_alone_shows_all_of_that_kind_and_pipeline_outputs_at_the_top() -> None:
    lines = _lines("images")

    assert lines[0].startswith("• namespace demo  8 objects:")
    assert any(line.startswith("├── ✔ Image golden-exec-2  Ready") for line in lines)
    tops = TreeBuilder(_snapshot(), "demo", NOW).grouped(["images"]).children
    assert {node.title.split()[0] for node in tops} == {"Image"}


def test_a_missing_object_is_an_error_unless_watching_for_it() -> None:
    with pytest.raises(kube.StatusError) as failure:
        _lines("img/nope")
    assert (str(failure.value), failure.value.code) == (
        "Image nope not found in namespace demo",
        kube.EXIT_NOT_FOUND,
    )

    lines = view(_snapshot(), parse_target(["img/nope"]), "demo", NOW, Style(), missing_ok=True)
    assert lines == ["Image nope not found in namespace demo (watching for it)"]


def test_all_namespaces_makes_one_tree_each_and_says_what_could_not_be_read() -> None:
    objects = _objects()
    other = _obj("web")
    other["metadata"]["namespace"] = "team-b"
    snapshot = Snapshot(_snapshot([*objects, other]).objects, {"baseimages": "forbidden"})

    lines = view(snapshot, Target(), None, NOW, Style())

    heads = [line for line in lines if line.startswith("• namespace")]
    assert [h.split("  ")[0] for h in heads] == ["• namespace demo", "• namespace team-b"]
    assert "│ baseimages not shown: forbidden" in lines


def test_an_empty_namespace_says_so() -> None:
    assert view(Snapshot({}), Target(), "empty", NOW, Style()) == [
        "• namespace empty  no imageops objects"
    ]
    assert view(Snapshot({}), Target(), None, NOW, Style()) == [
        "no imageops objects in any namespace"
    ]


def test_ascii_output_uses_plain_symbols_and_connectors() -> None:
    lines = _lines("ipl/partial", style=Style(unicode=False))

    assert lines[0].startswith("[x] ImagePipeline partial  PartiallySucceeded  provider aliyun, ")
    assert lines[2].startswith("`-- [x] run 1 exec-9  PARTITION_SUCCESS")
    assert "    |-- [+] region cn-hangzhou  Succeeded  image m-991" in lines


def test_colour_paints_the_symbol_and_state_and_nothing_without_it() -> None:
    coloured = _lines("img/web", style=Style(colour=True))
    plain = _lines("img/web")

    assert coloured[0].startswith("\x1b[32m✔\x1b[0m \x1b[1mImage web\x1b[0m  \x1b[32mReady\x1b[0m")
    assert not any("\x1b" in line for line in plain)


@pytest.mark.parametrize(
    ("choice", "isatty", "env", "wanted"),
    [
        ("auto", True, {}, True),
        ("auto", False, {}, False),
        ("auto", True, {"NO_COLOR": "1"}, False),
        ("auto", True, {"NO_COLOR": ""}, True),  # no-color.org: set and not empty
        ("auto", True, {"TERM": "dumb"}, False),
        ("always", False, {"NO_COLOR": "1"}, True),
        ("never", True, {}, False),
    ],
)
def test_colour_only_on_a_terminal_and_never_with_no_color(
    choice: str, isatty: bool, env: dict[str, str], wanted: bool
) -> None:
    assert colour_wanted(choice, isatty=isatty, env=env) is wanted


def test_symbols_need_an_encoding_that_has_them() -> None:
    assert unicode_ok("utf-8")
    assert not unicode_ok("ascii")
    assert not unicode_ok("no-such-codec")


def test_notes_line_up_with_the_title_beside_the_line_to_the_children() -> None:
    lines = render(TreeBuilder(_snapshot(), "demo", NOW).pipeline(_obj("partial")))

    assert lines[1] == (
        "│ run 'exec-9' ended PARTITION_SUCCESS: failed targets: region cn-beijing; set the "
        "annotation imageops.io/run to a new value to run again"
    )
    assert lines[-1] == "          quota of images exceeded in cn-beijing"


@pytest.mark.parametrize(
    ("words", "kind", "name"),
    [
        ([], None, None),
        (["img/web"], "Image", "web"),
        (["images", "web"], "Image", "web"),
        (["ipl"], "ImagePipeline", None),
        (["communitylistings.imageops.io/x"], "CommunityListing", "x"),
        (["BIMG/x"], "BaseImage", "x"),
        (["iprov"], "ImageProvider", None),
    ],
)
def test_targets_are_named_as_kubectl_names_them(
    words: list[str], kind: str | None, name: str | None
) -> None:
    target = parse_target(words)

    assert (target.kind.kind if target.kind else None, target.name) == (kind, name)


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["pods/x"], "unknown kind 'pods': expected one of"),
        (["img/"], "the name after 'img' is empty"),
        (["img/a", "b"], "expected KIND/NAME or KIND NAME"),
        (["img", "a", "b"], "expected KIND/NAME or KIND NAME"),
    ],
)
def test_a_bad_target_is_a_usage_error(words: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_target(words)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["status", "pods/x"], "error: unknown kind 'pods'"),
        (["status", "-A", "img/x"], "one object is shown from one namespace"),
        (["status", "-A", "-n", "x"], "--namespace and --all-namespaces exclude each other"),
        (["status", "--watch-timeout", "5"], "--watch-timeout needs --watch"),
    ],
)
def test_usage_errors_exit_2_before_any_cluster_is_asked(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert kubectl_plugin(argv) == 2

    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_no_kubeconfig_exits_3_with_a_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))

    code = main(["status", "--kubeconfig", str(tmp_path / "missing")])

    err = capsys.readouterr().err
    assert code == 3
    assert err.startswith("error: no usable kubeconfig: ")
    assert "set KUBECONFIG or pass --kubeconfig / --context" in err


def test_an_unknown_context_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "here", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "here",
            }
        )
    )

    code = main(["status", "--kubeconfig", str(path), "--context", "elsewhere"])

    assert code == 3
    assert "context 'elsewhere' is not in the kubeconfig" in capsys.readouterr().err


def _api_error(status: int, message: str) -> ApiException:
    exc = ApiException(status=status, reason="Reason")
    exc.body = json.dumps({"kind": "Status", "message": message})
    return exc


@pytest.mark.parametrize(
    ("exc", "code", "words"),
    [
        (
            _api_error(403, 'images.imageops.io is forbidden: User "u" cannot list'),
            kube.EXIT_REFUSED,
            'forbidden: cannot list images: images.imageops.io is forbidden: User "u" cannot',
        ),
        (_api_error(401, "Unauthorized"), kube.EXIT_REFUSED, "refused the credentials"),
        (
            _api_error(404, "the server could not find the requested resource"),
            kube.EXIT_NO_CRDS,
            "does not serve imageops.io/v1alpha1",
        ),
        (
            urllib3.exceptions.MaxRetryError(
                None,  # type: ignore[arg-type]
                "/apis",
                urllib3.exceptions.NewConnectionError(None, "Connection refused"),  # type: ignore[arg-type]
            ),
            kube.EXIT_NO_CLUSTER,
            "cannot reach the cluster at https://k:6443: ",
        ),
        (config.ConfigException("no context"), kube.EXIT_NO_CLUSTER, "no usable kubeconfig"),
    ],
)
def test_failures_become_sentences_with_exit_codes(exc: Exception, code: int, words: str) -> None:
    error = kube.explain(exc, server="https://k:6443", doing="list images")

    assert error.code == code
    assert words in str(error)


class _NoReader:
    """LiveSnapshot's event handling needs no cluster until it lists or watches."""

    namespace = "demo"


def test_watch_events_update_the_snapshot_and_signal_a_change() -> None:
    changed = threading.Event()
    live = kube.LiveSnapshot(_NoReader(), ["images"], changed)  # type: ignore[arg-type]
    live._replace("images", [_obj("web"), _obj("wrong")])
    ready = _obj("wrong")
    ready["status"]["conditions"] = _obj("web")["status"]["conditions"]

    live._apply("images", {"type": "MODIFIED", "object": ready})
    live._apply("images", {"type": "DELETED", "object": _obj("web")})
    live._apply("images", {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}})
    live._apply("images", {"type": "ADDED", "object": _obj("held")})

    assert changed.is_set()
    images = live.snapshot().objects["images"]
    assert sorted(i["metadata"]["name"] for i in images) == ["held", "wrong"]
    assert {i["kind"] for i in images} == {"Image"}
    wrong = next(i for i in images if i["metadata"]["name"] == "wrong")
    assert object_verdict(wrong).health is Health.READY


def test_the_status_subcommand_is_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["status", "--help"])

    out = capsys.readouterr().out
    assert "--watch" in out and "--all-namespaces" in out and "--context" in out
    assert "Exit codes: 0 shown, 1 not found" in out


def test_namespace_arguments_parse_like_kubectl() -> None:
    from image_operator.cli import build_parser

    args = build_parser().parse_args(["status", "ipl/golden", "-n", "team", "-w"])

    assert isinstance(args, argparse.Namespace)
    assert (args.target, args.namespace, args.watch) == (["ipl/golden"], "team", True)
