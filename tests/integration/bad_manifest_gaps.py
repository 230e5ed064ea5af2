"""The bad-manifest corpus's known gaps: cases that do not behave as a bad manifest must, today.

Keyed by case name, grouped by cause. `seen` is the outcome `test_bad_manifests.py` observes,
and it asserts exactly that: when a fix changes the outcome, the test fails until the entry is
removed (or changed to what the fix gives, if that is still a gap). Outcome words:
refused / refused-unnamed (the message does not name the field), stalled:<Reason> /
stalled-unnamed:<Reason>, waiting:<Reason>, reconciling:<Reason> (work in flight, or waiting
without naming the field), not-ready:<Reason> (Ready=False and neither Reconciling nor Stalled),
ready, no-status, admitted (a change of an immutable field accepted); `+created` when the case
made a cloud object. `traceback` is a piece of the exception's message the gap writes to the
operator's log with a traceback (the test allows no other).
"""

from __future__ import annotations

from tests.integration.bad_manifest_cases import Gap

KNOWN_GAPS: dict[str, Gap] = {}


def _gaps(why: str, seen: dict[str, str], traceback: str | None = None) -> None:
    for name, outcome in seen.items():
        assert name not in KNOWN_GAPS, name
        KNOWN_GAPS[name] = Gap(outcome, why, traceback)


def _each(prefix: str, details: tuple[str, ...], outcome: str) -> dict[str, str]:
    return {f"{prefix}/{detail}": outcome for detail in details}


_SHELL = ("newline", "dot-dot", "subshell")
_CONTROL = ("terminal-escape", "bidi-override", "nul")

# --- values that reach a cloud as they are: created, Ready -----------------------------------

_gaps(
    "api/image.py ImageSpec: spec.group, the keys and values of spec.tags and spec.displayName "
    "accept newlines, NUL, terminal escapes, bidi overrides, '../' and shell syntax; Argon "
    "stores them as they are. Identifiers (group, tag keys) need a pattern, display text a rule "
    "against control characters.",
    _each(
        "Image/injection/spec.group",
        ("newline", "dot-dot", "subshell", "semicolon", "nul"),
        "ready+created",
    )
    | _each("Image/injection/spec.tags.team", _SHELL, "ready+created")
    | _each("Image/injection/spec.tags", ("key-newline", "key-dot-dot"), "ready+created")
    | _each("Image/injection/spec.displayName", _CONTROL, "ready+created"),
)
_gaps(
    "api/listing.py CommunityListingSpec: spec.communityImageName accepts control characters "
    "and the items of spec.tags and spec.supportedGpuTypes accept newlines, '../' and shell "
    "syntax; CompShare publishes them as they are.",
    _each("CommunityListing/injection/spec.communityImageName", _CONTROL, "ready+created")
    | _each("CommunityListing/injection/spec.tags[0]", _SHELL, "ready+created")
    | _each("CommunityListing/injection/spec.supportedGpuTypes[0]", _SHELL, "ready+created"),
)
_gaps(
    "api/pipeline.py Tag: spec.tags[].key accepts newlines, '../' and shell syntax; the "
    "template is created with it.",
    _each("ImagePipeline/injection/spec.tags[0].key", _SHELL, "ready+created"),
)
_gaps(
    "api/pipeline.py OssObject.object accepts newlines, '../' and shell syntax, and the cloud "
    "checks the object only when a run starts: the template is created, the run fails, and "
    "reconcilers/pipeline.py reports the failed run as Ready=False (RunFailed) with neither "
    "Reconciling nor Stalled, which kstatus reads as Current.",
    _each(
        "ImagePipeline/injection/spec.baseImage.oss.object", _SHELL, "not-ready:RunFailed+created"
    ),
)

# --- refused by the cloud, but the message does not name the field ---------------------------

_gaps(
    "No pattern at admission (api/image.py VmSource, api/pipeline.py ImagePipelineSpec / "
    "BaseImageRef / TransitInstance): the cloud refuses the value quoting it escaped "
    "('cn\\\\nevil'), and reconcilers/fields.py with_field_names matches only the raw value, so "
    "the Stalled message names no spec field.",
    {
        "Image/injection/spec.source.vm.vmID/newline": "stalled-unnamed:InvalidSpec",
        "Image/injection/spec.source.vm.vmID/nul": "stalled-unnamed:InvalidSpec",
        "Image/injection/spec.source.vm.storageSetType/newline": "stalled-unnamed:InvalidSpec",
        "ImagePipeline/injection/spec.baseImage.id/newline": "stalled-unnamed:NotFound",
        "ImagePipeline/injection/spec.baseImage.id/nul": "stalled-unnamed:NotFound",
        "ImagePipeline/injection/spec.toRegionIDs[0]/newline": "stalled-unnamed:InvalidSpec",
        "ImagePipeline/injection/spec.resourceGroupID/newline": "stalled-unnamed:InvalidSpec",
        "ImagePipeline/injection/spec.transit.vSwitchID/newline": "stalled-unnamed:InvalidSpec",
        "ImagePipeline/injection/spec.transit.instanceType/newline": "stalled-unnamed:InvalidSpec",
    },
)
_gaps(
    "api/image.py UrlSource.url: the pattern ^https?:// accepts whitespace and link-local "
    "hosts; the cloud refuses the URL quoting only its host, so reconcilers/fields.py cannot "
    "name spec.source.url.url.",
    _each(
        "Image/injection/spec.source.url.url",
        ("newline", "metadata-address"),
        "stalled-unnamed:InvalidSpec",
    ),
)
_gaps(
    "api/pipeline.py ImageOptions.image_name has no pattern (ECS: starts with a letter, 2-64 of "
    "letters, digits, ':', '_', '.', '-'); ECS names its wire parameter "
    "(ImageOptions.ImageName) without quoting the value, and reconcilers/fields.py maps only "
    "quoted values to fields.",
    _each(
        "ImagePipeline/injection/spec.imageOptions.imageName", _SHELL, "stalled-unnamed:InvalidSpec"
    ),
)
_gaps(
    "Good at the limit, refused by the cloud: api/pipeline.py ImageOptions.image_name allows 128 "
    "characters, ECS CreateImagePipeline accepts a prefix of 2-64 (the emulator's rule); the "
    "object at every maximum stalls (ImagePipeline/max-size/at-cloud-max, the same with 64, is "
    "Ready).",
    {"ImagePipeline/max-size/at-max": "stalled-unnamed:InvalidSpec"},
)

# --- references whose messages name the object but not the field ----------------------------

_gaps(
    "api/provider.py CredentialsSecretRef.name is not an object name (no DNS pattern, unlike "
    "every other reference): '../../admin', a newline or '$(id)' is accepted and looked up as "
    "a Secret name; the message does not name spec.credentialsSecretRef.",
    _each(
        "ImageProvider/injection/spec.credentialsSecretRef.name",
        _SHELL,
        "stalled-unnamed:ConfigurationError",
    ),
)
