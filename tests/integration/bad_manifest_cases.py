"""The bad-manifest corpus's cases, and those no schema walk finds: command-template
placeholders, references, schedules, immutable fields, injection strings, and manifests without a
spec or with a field beside it.

Each case says which field the answer must name. A case is bad: the API server refuses it, or
the operator stalls it (`Stalled=True`), naming that field. A reference to an object that may
yet be made (`may_wait`) may instead be waited for (`Reconciling`, reason `Waiting…`, the field
named): that is what a GitOps tool applying objects in any order needs. A `LIMIT` case is good
at the limit: it must become Ready.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from tests.integration.bad_manifest_bases import (
    ALIYUN,
    ARGON,
    COMPSHARE,
    COVER_KEY,
    EMULATOR,
    FX_ARGON,
    FX_BASE,
    FX_CONTAINER,
    FX_COVER_SECRET,
    FX_COVERS,
    FX_UCS,
    FX_VM,
    IMAGE_SOURCES,
    REPOSITORY_SOURCE,
    SECRETS,
    UCLOUDSTACK,
    Body,
    baseimage_spec,
    image_spec,
    listing_spec,
    manifest,
    pipeline_spec,
    provider_spec,
)

BAD, LIMIT = "bad", "good-at-limit"
UNNAMED = "b"  # a case's metadata.name until the corpus names it


@dataclass(frozen=True)
class Gap:
    """A case that does not behave as a bad manifest must, today. `seen` is the outcome the
    test observes (it asserts exactly that, so a fix makes the test fail until the gap is
    removed); `why` says what is wrong and where the fix belongs; `traceback`, a piece of the
    message of the exception it makes the operator log with a traceback."""

    seen: str
    why: str
    traceback: str | None = None


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    category: str
    body: Body  # the manifest; for a `patch` case, the merge patch of the kind's immutable base
    field: str  # what the refusal or the Stalled message must name
    expect: str = BAD
    may_wait: bool = False
    patch: bool = False
    gap: Gap | None = None

    @property
    def object_name(self) -> str:
        return str(self.body["metadata"]["name"]) if not self.patch else ""


def case(kind: str, category: str, detail: str, body: Body, where: str, **options: Any) -> Case:
    return Case(f"{kind}/{category}/{detail}", kind, category, body, where, **options)


def _with(body: Body, **spec: Any) -> Body:
    """`body` with these spec fields replaced (None removes one)."""
    changed = copy.deepcopy(body)
    for key, value in spec.items():
        if value is None:
            changed["spec"].pop(key, None)
        else:
            changed["spec"][key] = value
    return changed


def _image(**spec: Any) -> Body:
    return _with(manifest("Image", UNNAMED, image_spec(REPOSITORY_SOURCE)), **spec)


def _source_image(base: str, **spec: Any) -> Body:
    source, provider = IMAGE_SOURCES[base]
    return _with(manifest("Image", UNNAMED, image_spec(source, provider)), **spec)


def _baseimage(**spec: Any) -> Body:
    return _with(
        manifest("BaseImage", UNNAMED, baseimage_spec({"imageRef": {"name": FX_UCS}})), **spec
    )


def _pipeline(**spec: Any) -> Body:
    # The schedule and output images of the rich base are left out: a reference or injection
    # case is then about its one field.
    rich = pipeline_spec({"id": "aliyun_3_x64_20G_alibase_20240819.vhd"})
    plain = {"schedule": None, "outputImages": None} | spec
    return _with(manifest("ImagePipeline", UNNAMED, rich), **plain)


def _listing(**spec: Any) -> Body:
    cover = {"configMapKeyRef": {"name": FX_COVERS, "key": COVER_KEY}}
    return _with(manifest("CommunityListing", UNNAMED, listing_spec(cover)), **spec)


def _provider(kind: str = ARGON, **spec: Any) -> Body:
    return _with(manifest("ImageProvider", UNNAMED, provider_spec(kind)), **spec)


# --- placeholders ---------------------------------------------------------------------------

_COMMANDS = {
    "undeclared-input": ["run {{inputs.nope}}"],
    "undeclared-config": ["run {{configs.nope}}"],
    "undeclared-output": ["run {{outputs.nope}}"],
    "input-declared-as-config": ["run {{inputs.mode}}"],
    "singular-namespace": ["run {{input.task_id}}"],
    "secrets-namespace": ["run {{secrets.token}}"],
    "env-namespace": ["run {{env.HOME}}"],
    "empty": ["run {{}}"],
    "no-name": ["run {{inputs.}}"],
    "dash-in-name": ["run {{inputs.task-id}}"],
    "one-closing-brace": ["run {{inputs.task_id}"],
    "three-opening-braces": ["run {{{inputs.task_id}}}"],
    "nested": ["run {{inputs.{{inputs.task_id}}}}"],
    "split-over-two-lines": ["run {{inputs.", "task_id}}"],
    "undeclared-on-a-later-line": ["run {{inputs.task_id}}", "then {{inputs.nope}}"],
}


def placeholders() -> list[Case]:
    cases = [
        case("Image", "placeholders", detail, _image(command=command), "spec.command")
        for detail, command in _COMMANDS.items()
    ]
    task = {"name": "task_id", "type": "integer", "default": "42"}
    parameters: list[tuple[str, str, Body]] = [
        ("input-of-kind-output", "spec.inputs", {"inputs": [{**task, "kind": "output"}]}),
        ("duplicate-input", "spec.inputs[1]", {"inputs": [task, task]}),
        (
            "integer-default-not-integer",
            "spec.inputs[0].default",
            {"inputs": [{**task, "default": "4x"}]},
        ),
        (
            "number-default-not-number",
            "spec.inputs[0].default",
            {"inputs": [{**task, "type": "number", "default": "1.2.3"}]},
        ),
        (
            "boolean-default-not-boolean",
            "spec.inputs[0].default",
            {"inputs": [{**task, "type": "boolean", "default": "yes"}]},
        ),
        (
            "enum-without-options",
            "spec.configs[0].options",
            {"configs": [{"name": "mode", "type": "enum", "default": "fast"}]},
        ),
        (
            "options-without-enum",
            "spec.inputs[0].options",
            {"inputs": [{**task, "options": ["1", "2"]}]},
        ),
        (
            "enum-default-not-an-option",
            "spec.configs[0].default",
            {"configs": [{"name": "mode", "type": "enum", "options": ["fast"], "default": "slow"}]},
        ),
    ]
    cases += [
        case("Image", "placeholders", d, _image(**spec), where) for d, where, spec in parameters
    ]
    return cases


# --- references -----------------------------------------------------------------------------


def references() -> list[Case]:
    waits = {"may_wait": True}
    return [
        # Image
        case(
            "Image",
            "references",
            "provider-missing",
            _image(providerRef={"name": "nope"}),
            "spec.providerRef",
            **waits,
        ),
        case(
            "Image",
            "references",
            "provider-names-a-secret",
            _image(providerRef={"name": SECRETS[ARGON]}),
            "spec.providerRef",
            **waits,
        ),
        case(
            "Image",
            "references",
            "provider-in-another-namespace",
            _image(providerRef={"name": ARGON, "namespace": "default"}),
            "spec.providerRef.namespace",
        ),
        case(
            "Image",
            "references",
            "provider-namespace-slash-name",
            _image(providerRef={"name": "default/argon"}),
            "spec.providerRef.name",
        ),
        case(
            "Image",
            "references",
            "copy-of-missing-image",
            _image(source=image_copy("nope")),
            "spec.source.image.imageRef",
            **waits,
        ),
        case(
            "Image",
            "references",
            "copy-of-a-baseimage-name",
            _image(source=image_copy(FX_BASE)),
            "spec.source.image.imageRef",
            **waits,
        ),
        case(
            "Image",
            "references",
            "copy-of-itself",
            _named(_image(source=image_copy("copy-of-itself")), "copy-of-itself"),
            "spec.source.image.imageRef",
        ),
        case(
            "Image",
            "references",
            "copy-into-a-provider-that-cannot",
            _image(source=image_copy(FX_CONTAINER)),
            "spec.providerRef",
        ),
        case(
            "Image",
            "references",
            "copy-in-another-namespace",
            _image(source={"image": {"imageRef": {"name": FX_ARGON, "namespace": "default"}}}),
            "spec.source.image.imageRef.namespace",
        ),
        case(
            "Image",
            "references",
            "pipeline-output-without-a-run",
            _source_image("pipeline"),
            "spec.source.pipeline",
        ),
        case(
            "Image",
            "references",
            "vm-on-a-provider-without-vms",
            _image(source={"vm": {"vmID": "vm-corpus"}}),
            "spec.providerRef",
        ),
        case(
            "Image",
            "references",
            "compshare-instance-missing",
            _image(providerRef={"name": COMPSHARE}, source={"vm": {"vmID": "uhost-missing"}}),
            "spec.source.vm.vmID",
        ),
        # BaseImage
        case(
            "BaseImage",
            "references",
            "provider-missing",
            _baseimage(providerRef={"name": "nope"}),
            "spec.providerRef",
            **waits,
        ),
        case(
            "BaseImage",
            "references",
            "provider-that-cannot-clone",
            _baseimage(providerRef={"name": ARGON}),
            "spec.providerRef",
        ),
        case(
            "BaseImage",
            "references",
            "image-missing",
            _baseimage(source={"imageRef": {"name": "nope"}}),
            "spec.source.imageRef",
            **waits,
        ),
        case(
            "BaseImage",
            "references",
            "image-of-another-provider",
            _baseimage(source={"imageRef": {"name": FX_ARGON}}),
            "spec.source.imageRef",
        ),
        case(
            "BaseImage",
            "references",
            "image-names-a-baseimage",
            _baseimage(source={"imageRef": {"name": FX_BASE}}),
            "spec.source.imageRef",
            **waits,
        ),
        case(
            "BaseImage",
            "references",
            "external-id-missing",
            _baseimage(source={"externalID": "image-missing"}),
            "spec.source.externalID",
        ),
        case(
            "BaseImage",
            "references",
            "image-in-another-namespace",
            _baseimage(source={"imageRef": {"name": FX_UCS, "namespace": "default"}}),
            "spec.source.imageRef.namespace",
        ),
        # ImagePipeline
        case(
            "ImagePipeline",
            "references",
            "provider-missing",
            _pipeline(providerRef={"name": "nope"}),
            "spec.providerRef",
            **waits,
        ),
        case(
            "ImagePipeline",
            "references",
            "provider-that-cannot-build",
            _pipeline(providerRef={"name": ARGON}),
            "spec.providerRef",
        ),
        case(
            "ImagePipeline",
            "references",
            "image-missing",
            _pipeline(baseImage={"imageRef": {"name": "nope"}}),
            "spec.baseImage.imageRef",
            **waits,
        ),
        case(
            "ImagePipeline",
            "references",
            "image-of-another-provider",
            _pipeline(baseImage={"imageRef": {"name": FX_ARGON}}),
            "spec.baseImage.imageRef",
        ),
        case(
            "ImagePipeline",
            "references",
            "image-names-a-baseimage",
            _pipeline(baseImage={"imageRef": {"name": FX_BASE}}),
            "spec.baseImage.imageRef",
            **waits,
        ),
        case(
            "ImagePipeline",
            "references",
            "baseimage-missing",
            _pipeline(baseImage={"baseImageRef": {"name": "nope"}}),
            "spec.baseImage.baseImageRef",
            **waits,
        ),
        case(
            "ImagePipeline",
            "references",
            "baseimage-of-another-provider",
            _pipeline(baseImage={"baseImageRef": {"name": FX_BASE}}),
            "spec.baseImage.baseImageRef",
        ),
        case(
            "ImagePipeline",
            "references",
            "public-image-missing",
            _pipeline(baseImage={"id": "m-missing"}),
            "spec.baseImage.id",
        ),
        case(
            "ImagePipeline",
            "references",
            "family-missing",
            _pipeline(baseImage={"family": "acs:missing"}),
            "spec.baseImage.family",
        ),
        case(
            "ImagePipeline",
            "references",
            "region-missing",
            _pipeline(toRegionIDs=["cn-nowhere"]),
            "spec.toRegionIDs[0]",
        ),
        # CommunityListing
        case(
            "CommunityListing",
            "references",
            "image-missing",
            _listing(imageRef={"name": "nope"}),
            "spec.imageRef",
            **waits,
        ),
        case(
            "CommunityListing",
            "references",
            "image-names-a-baseimage",
            _listing(imageRef={"name": FX_BASE}),
            "spec.imageRef",
            **waits,
        ),
        case(
            "CommunityListing",
            "references",
            "image-of-another-provider",
            _listing(imageRef={"name": FX_ARGON}),
            "spec.imageRef",
        ),
        case(
            "CommunityListing",
            "references",
            "image-made-from-a-vm",
            _listing(imageRef={"name": FX_VM}),
            "spec.imageRef",
        ),
        case(
            "CommunityListing",
            "references",
            "image-in-another-namespace",
            _listing(imageRef={"name": FX_CONTAINER, "namespace": "default"}),
            "spec.imageRef.namespace",
        ),
        case(
            "CommunityListing",
            "references",
            "cover-configmap-missing",
            _listing(cover={"configMapKeyRef": {"name": "nope", "key": COVER_KEY}}),
            "spec.cover.configMapKeyRef",
            **waits,
        ),
        case(
            "CommunityListing",
            "references",
            "cover-key-missing",
            _listing(cover={"configMapKeyRef": {"name": FX_COVERS, "key": "nope.png"}}),
            "spec.cover.configMapKeyRef",
            **waits,
        ),
        case(
            "CommunityListing",
            "references",
            "cover-configmap-names-a-secret",
            _listing(cover={"configMapKeyRef": {"name": FX_COVER_SECRET, "key": COVER_KEY}}),
            "spec.cover.configMapKeyRef",
            **waits,
        ),
        case(
            "CommunityListing",
            "references",
            "cover-secret-missing",
            _listing(cover={"secretKeyRef": {"name": "nope", "key": COVER_KEY}}),
            "spec.cover.secretKeyRef",
            **waits,
        ),
        case(
            "CommunityListing",
            "references",
            "cover-not-a-picture",
            _listing(cover={"inline": "aGVsbG8gd29ybGQ="}),
            "spec.cover.inline",
        ),
        case(
            "CommunityListing",
            "references",
            "group-missing",
            _listing(groupID="group-missing"),
            "spec.groupID",
        ),
        # ImageProvider
        case(
            "ImageProvider",
            "references",
            "secret-missing",
            _provider(credentialsSecretRef={"name": "nope"}),
            "spec.credentialsSecretRef",
            **waits,
        ),
        case(
            "ImageProvider",
            "references",
            "secret-names-a-configmap",
            _provider(credentialsSecretRef={"name": FX_COVERS}),
            "spec.credentialsSecretRef",
            **waits,
        ),
        case(
            "ImageProvider",
            "references",
            "secret-of-another-type",
            _provider(credentialsSecretRef={"name": SECRETS[COMPSHARE]}),
            "spec.credentialsSecretRef",
        ),
        case(
            "ImageProvider",
            "references",
            "secret-in-another-namespace",
            _provider(credentialsSecretRef={"name": SECRETS[ARGON], "namespace": "default"}),
            "spec.credentialsSecretRef.namespace",
        ),
        case(
            "ImageProvider",
            "references",
            "region-missing",
            _provider(COMPSHARE, region="cn-nowhere"),
            "spec.region",
        ),
        case(
            "ImageProvider",
            "references",
            "zone-of-another-region",
            _provider(COMPSHARE, zone="cn-sh2-01"),
            "spec.zone",
        ),
    ]


def image_copy(name: str) -> Body:
    return {"image": {"imageRef": {"name": name}}}


def _named(body: Body, name: str) -> Body:
    body["metadata"]["name"] = name
    return body


# --- schedules ------------------------------------------------------------------------------

_CRONS = {
    "february-31st": ("0 0 31 2 *", "spec.schedule.cron"),
    "february-30th": ("0 0 30 2 *", "spec.schedule.cron"),
    "31st-of-30-day-months": ("0 0 31 4,6,9,11 *", "spec.schedule.cron"),
    "words": ("not a cron", "spec.schedule.cron"),
    "seven-fields": ("* * * * * * *", "spec.schedule.cron"),
    "minute-61": ("61 * * * *", "spec.schedule.cron"),
    "hour-25": ("0 25 * * *", "spec.schedule.cron"),
    "step-zero": ("*/0 * * * *", "spec.schedule.cron"),
    "weekday-8": ("0 3 * * 8", "spec.schedule.cron"),
    "macro": ("@annually", "spec.schedule.cron"),
    "shorter-than-a-cron": ("* * * *", "spec.schedule.cron"),
    "two-lines": ("0 3 * * 1\n0 4 * * *", "spec.schedule.cron"),
}
_ZONES = {
    "unknown-zone": "Mars/Olympus",
    "zone-path": "../../etc/passwd",
    "empty-zone": "",
    "zone-with-newline": "UTC\nEurope/Berlin",
}


def schedules() -> list[Case]:
    cases = [
        case("ImagePipeline", "schedules", detail, _pipeline(schedule={"cron": cron}), where)
        for detail, (cron, where) in _CRONS.items()
    ]
    cases += [
        case(
            "ImagePipeline",
            "schedules",
            detail,
            _pipeline(schedule={"cron": "0 3 * * 1", "timeZone": zone}),
            "spec.schedule.timeZone",
        )
        for detail, zone in _ZONES.items()
    ]
    return cases


# --- immutable fields (merge patches of the kind's paused base object) ---------------------


def immutables() -> list[Case]:
    patches: list[tuple[str, str, Body, str]] = [
        ("Image", "provider", {"providerRef": {"name": COMPSHARE}}, "spec.providerRef"),
        (
            "Image",
            "repository",
            {"source": {"repository": {"image": "team/other:2"}}},
            "spec.source",
        ),
        (
            "Image",
            "source-kind",
            {"source": {"repository": None, "vm": {"vmID": "vm-1"}}},
            "spec.source",
        ),
        ("Image", "source-removed", {"source": None}, "spec.source"),
        ("Image", "argon-name-added", {"argon": {"name": "late"}}, "spec.argon.name"),
        ("BaseImage", "provider", {"providerRef": {"name": ARGON}}, "spec.providerRef"),
        ("BaseImage", "image", {"source": {"imageRef": {"name": FX_ARGON}}}, "spec.source"),
        (
            "BaseImage",
            "source-kind",
            {"source": {"imageRef": None, "externalID": "image-1"}},
            "spec.source",
        ),
        ("ImagePipeline", "provider", {"providerRef": {"name": ARGON}}, "spec.providerRef"),
        ("CommunityListing", "image", {"imageRef": {"name": FX_VM}}, "spec.imageRef"),
        ("ImageProvider", "type", {"type": "openstack"}, "spec.type"),
        (
            "ImageProvider",
            "type-and-all",
            {"type": COMPSHARE, "region": "cn-wlcb", "zone": "cn-wlcb-01"},
            "spec.type",
        ),
    ]
    return [
        case(kind, "immutables", detail, {"spec": patch}, where, patch=True)
        for kind, detail, patch, where in patches
    ]


# --- injection strings ----------------------------------------------------------------------

INJECTIONS = {
    "newline": "cn\nevil",
    "dot-dot": "../../admin",
    "subshell": "$(id)",
    "semicolon": "x; rm -rf /",
    "nul": "a\u0000b",
    "very-long": "x" * 100_000,
}
CONTROL = {
    "terminal-escape": "\u001b[2J\u001b[31mred",
    "bidi-override": "abc\u202edcba",
    "nul": "a\u0000b",
}
# Cloud metadata services, as an ImageProvider's endpoint: a provider the API server accepts
# is refused by the operator's endpoint guard before any request (providers/endpoints.py).
METADATA_ENDPOINTS = {
    "metadata-address": "http://169.254.169.254/latest/meta-data/",
    "metadata-address-decimal": "http://2852039166/latest/meta-data/",
    "metadata-address-v4-in-v6": "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "alibaba-metadata-address": "http://100.100.100.200/latest/meta-data/",
}
IDENTIFIER = ("newline", "dot-dot", "subshell", "semicolon", "nul", "very-long")
SHORT = ("newline", "dot-dot", "subshell")


def _inject(body: Body, location: tuple[str | int, ...], value: Any) -> Body:
    changed = copy.deepcopy(body)
    node: Any = changed
    for part in location[:-1]:
        node = node[part]
    node[location[-1]] = value
    return changed


def injections() -> list[Case]:
    targets: list[tuple[str, Body, tuple[str | int, ...], dict[str, Any]]] = [
        ("Image", _image(), ("spec", "group"), _pick(IDENTIFIER)),
        ("Image", _source_image("vm"), ("spec", "source", "vm", "vmID"), _pick(IDENTIFIER)),
        ("Image", _source_image("vm"), ("spec", "source", "vm", "storageSetType"), _pick(SHORT)),
        ("Image", _image(), ("spec", "tags", "team"), _pick(SHORT)),
        ("Image", _image(), ("spec", "displayName"), CONTROL),
        (
            "Image",
            _image(tags={"team": "media"}),
            ("spec", "tags"),
            {
                "key-newline": {"cn\nevil": "x"},
                "key-dot-dot": {"../../admin": "x"},
            },
        ),
        (
            "Image",
            _source_image("url"),
            ("spec", "source", "url", "url"),
            {
                "newline": "https://images.example.com/a\nb.qcow2",
                "metadata-address": "http://169.254.169.254/latest/meta-data/",
            },
        ),
        (
            "BaseImage",
            _baseimage(source={"externalID": "image-1"}),
            ("spec", "source", "externalID"),
            _pick(IDENTIFIER),
        ),
        ("BaseImage", _baseimage(), ("spec", "name"), CONTROL),
        ("ImagePipeline", _pipeline(), ("spec", "baseImage", "id"), _pick(IDENTIFIER)),
        ("ImagePipeline", _pipeline(), ("spec", "toRegionIDs", 0), _pick(SHORT)),
        ("ImagePipeline", _pipeline(), ("spec", "resourceGroupID"), _pick(SHORT)),
        ("ImagePipeline", _pipeline(), ("spec", "transit", "vSwitchID"), _pick(SHORT)),
        ("ImagePipeline", _pipeline(), ("spec", "transit", "instanceType"), _pick(SHORT)),
        ("ImagePipeline", _pipeline(), ("spec", "imageOptions", "imageName"), _pick(SHORT)),
        ("ImagePipeline", _pipeline(), ("spec", "tags", 0, "key"), _pick(SHORT)),
        (
            "ImagePipeline",
            _pipeline(baseImage={"oss": {"bucket": "corpus-images", "object": "a.qcow2"}}),
            ("spec", "baseImage", "oss", "object"),
            _pick(SHORT),
        ),
        ("ImagePipeline", _pipeline(), ("spec", "name"), CONTROL),
        ("CommunityListing", _listing(), ("spec", "groupID"), _pick(IDENTIFIER)),
        ("CommunityListing", _listing(), ("spec", "communityImageName"), CONTROL),
        ("CommunityListing", _listing(), ("spec", "tags", 0), _pick(SHORT)),
        ("CommunityListing", _listing(), ("spec", "supportedGpuTypes", 0), _pick(SHORT)),
        (
            "ImageProvider",
            _provider(COMPSHARE),
            ("spec", "region"),
            _pick(IDENTIFIER),
        ),
        (
            "ImageProvider",
            _provider(COMPSHARE),
            ("spec", "zone"),
            _pick(SHORT),
        ),
        ("ImageProvider", _provider(), ("spec", "project"), _pick(IDENTIFIER)),
        ("ImageProvider", _provider(), ("spec", "credentialsSecretRef", "name"), _pick(SHORT)),
        (
            "ImageProvider",
            _provider(),
            ("spec", "endpoint"),
            {
                **METADATA_ENDPOINTS,
                "link-local-v6": "http://[fe80::a9fe:a9fe]/",
                "port-not-a-number": "http://127.0.0.1:notaport/",
                "metadata-name": "http://metadata.google.internal/computeMetadata/v1/",
                "path-escape": EMULATOR + ARGON + "/../../admin",
            },
        ),
    ]
    cases = []
    for kind, body, location, values in targets:
        where = _path(location)
        for detail, value in values.items():
            bad = _inject(body, location, value)
            cases.append(case(kind, "injection", f"{where}/{detail}", bad, where))
    return cases


def _pick(names: tuple[str, ...]) -> dict[str, str]:
    return {name: INJECTIONS[name] for name in names}


def _path(location: tuple[str | int, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


# --- manifests without a spec, or with a field beside it -----------------------------------


def whole_manifests() -> list[Case]:
    cases = []
    for kind, body in (
        ("Image", _image()),
        ("BaseImage", _baseimage()),
        ("ImagePipeline", _pipeline()),
        ("CommunityListing", _listing()),
        ("ImageProvider", _provider()),
    ):
        without = copy.deepcopy(body)
        del without["spec"]
        cases.append(case(kind, "required", "spec/missing", without, "spec"))
        beside = {**copy.deepcopy(body), "unexpectedField": "x"}
        cases.append(
            case(kind, "unknown", "unexpectedField/beside-spec", beside, "unexpectedField")
        )
    # What an ImageProvider of each type needs (CEL rules on spec, not `required`).
    for kind, missing, where in (
        (ARGON, "project", "spec.project"),
        (ARGON, "endpoint", "spec.endpoint"),
        (COMPSHARE, "region", "spec.region"),
        (COMPSHARE, "zone", "spec.zone"),
        (UCLOUDSTACK, "endpoint", "spec.endpoint"),
        (UCLOUDSTACK, "region", "spec.region"),
        ("openstack", "endpoint", "spec.endpoint"),
        ("registry", "endpoint", "spec.endpoint"),
    ):
        body = _with(_provider(kind), **{missing: None})
        cases.append(case("ImageProvider", "required", f"{kind}-{missing}/missing", body, where))
    return cases


# the kinds whose providers the test makes, for the emulator placeholders in endpoints
VENDORS = (ARGON, COMPSHARE, UCLOUDSTACK, ALIYUN)
