"""The `Image` kind: one image in one provider; its spec mirrors the Argon image model."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator, model_validator

from image_operator.api.base import ApiModel
from image_operator.api.common import (
    KEY_PATTERN,
    KEY_WORDS,
    METADATA_HOSTS_WORDS,
    TAG_KEY_MAX,
    URL_PATTERN,
    URL_WORDS,
    CloudId,
    DeletionPolicy,
    JsonDict,
    LocalObjectReference,
    ObjectStatus,
    Price,
    TagKey,
    TagValue,
    cel,
    immutable,
    immutable_rule,
    key_rules,
    no_control_characters,
    not_a_metadata_url,
    pattern_in_words,
    patterned,
)
from image_operator.api.crdinfo import CrdInfo, PrinterColumn, standard_columns
from image_operator.api.parameters import Parameter
from image_operator.api.provideroptions import (
    ArgonImageOptions,
    OpenStackImageOptions,
    UCloudStackImageOptions,
    argon_name_rules,
)

# A docker image reference: [registry[:port]/]path[:tag][@digest] (distribution's grammar,
# simplified to what a regex can say without backtracking trouble).
REPOSITORY_PATTERN = (
    r"^([a-zA-Z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)
# Names the ucloudstack/compshare APIs accept: 1-50 chars of CJK, letters, digits, . _ -
# (the length is the field's max_length, so that a long name is refused as too long).
CLOUD_NAME_PATTERN = r"^[\p{Han}A-Za-z0-9._-]+$"
_CLOUD_NAME_WORDS = "may hold only Chinese (Han) characters, letters, digits, '.', '_' and '-'"
CloudName = Annotated[str, patterned(CLOUD_NAME_PATTERN, _CLOUD_NAME_WORDS, max_length=50)]
# An expected sha256: exactly 64 characters (said by the lengths) of lowercase hex.
Sha256 = Annotated[
    str,
    Field(
        min_length=64,
        max_length=64,
        pattern=r"^[a-f0-9]+$",
        description="Expected sha256 (64 lowercase hex).",
    ),
]

PLACEHOLDER_ANY = r"\\{\\{[^}]*\\}\\}"
PLACEHOLDER_VALID = r"^\\{\\{ *(inputs|configs|outputs)\\.[A-Za-z_][A-Za-z0-9_]* *\\}\\}$"


def _placeholders_declared(kind: str, field: str) -> JsonDict:
    """CEL: every {{kind.X}} placeholder in spec.command names a parameter declared in spec.<field>.

    Said as a count (placeholders of this kind == occurrences of the declared names) because
    comparing each found placeholder with each name costs (line length^2 x parameters) in the
    API server's static estimate and exceeds its budget; counting is linear. Bounds: see
    MAX_COMMAND_LINES and friends.
    """
    any_name = rf"\\{{\\{{ *{kind}\\.[A-Za-z_][A-Za-z0-9_]* *\\}}\\}}"
    one_name = rf"'\\{{\\{{ *{kind}\\.' + q.name + ' *\\}}\\}}'"
    declared = f"(has(self.{field}) ? self.{field}.map(q, c.findAll({one_name}).size()).sum() : 0)"
    return cel(
        f"!has(self.command) || self.command.all(c, c.findAll('{any_name}').size() == {declared})",
        f"spec.command uses a {{{{{kind}.NAME}}}} placeholder whose NAME is not declared in "
        f"spec.{field}: declare it there or remove the placeholder",
        field_path=".command",
        reason="FieldValueInvalid",
    )


def _kind_matches(field: str, kind: str) -> JsonDict:
    return cel(
        f"!has(self.{field}) || self.{field}.all(p, !has(p.kind) || p.kind == '{kind}')",
        f"every parameter in spec.{field} must have kind '{kind}' (or leave kind unset)",
        field_path=f".{field}",
    )


class RepositorySource(ApiModel):
    """A container image in a registry (the Argon `repository`)."""

    image: str = Field(
        min_length=1,
        max_length=512,
        pattern=REPOSITORY_PATTERN,
        description="Docker image reference, e.g. nvidia/cuda10.1:tensorflow_mgdc-test-v0.1 "
        "or registry.example.com/team/app@sha256:<64 hex>.",
        json_schema_extra=pattern_in_words(
            REPOSITORY_PATTERN,
            "must be a container image reference like team/app:1.0 or "
            "registry.example.com:5000/team/app@sha256:<64 lowercase hex>: an optional "
            "registry host, then '/'-separated lowercase names (letters, digits, '.', '_', '-' "
            "between them), an optional :tag of up to 128 letters, digits, '_', '.', '-' and "
            "an optional @sha256 digest",
        ),
    )


class VmSource(ApiModel):
    """Capture a virtual machine (or one of its disks) into a custom image."""

    vm_id: CloudId = Field(alias="vmID", description="Source VM ID (VMID), e.g. vm-7rli7wr5jpk8h5.")
    disk_id: CloudId | None = Field(
        default=None, alias="diskID", description="Only this disk (DiskID), e.g. disk-2frgtg4354."
    )
    storage_set_type: CloudId | None = Field(
        default=None, description="Target storage cluster (StorageSetType), e.g. StorageSetNPVK."
    )


class ImageFormat(StrEnum):
    QCOW2 = "qcow2"
    ISO = "iso"
    RAW = "raw"
    VHD = "vhd"
    VMDK = "vmdk"


class OsInfo(ApiModel):
    """Operating system metadata checked against the provider's catalogue before import."""

    type: str = Field(min_length=1, max_length=32, description="OSType, e.g. Linux.")
    distribution: str = Field(min_length=1, max_length=64, description="e.g. Ubuntu.")
    version: str = Field(min_length=1, max_length=32, description="e.g. 22.04.")
    arch: str = Field(default="x86_64", max_length=32, description="SetArch, e.g. x86_64.")


class UrlSource(ApiModel):
    """Import an image file the cloud downloads from a URL."""

    url: str = Field(
        min_length=1,
        max_length=2048,
        pattern=URL_PATTERN,
        description="http(s) URL the cloud downloads the file from (not a link-local or "
        "cloud-metadata address).",
        json_schema_extra={
            "x-kubernetes-validations": [
                *pattern_in_words(URL_PATTERN, "must be " + URL_WORDS)["x-kubernetes-validations"],
                not_a_metadata_url(
                    f"names {METADATA_HOSTS_WORDS}: the cloud would fetch it from inside its own "
                    "network; give the image file's own address"
                ),
            ]
        },
    )
    format: ImageFormat = Field(description="Image file format: qcow2, iso, raw, vhd, vmdk.")
    checksum: Sha256 | None = None
    os: OsInfo | None = None


class UploadSource(ApiModel):
    """Import a local file the user uploads with `image-operator upload`."""

    format: ImageFormat
    size_bytes: int | None = Field(default=None, ge=1, description="Expected size in bytes.")
    checksum: Sha256 | None = None
    os: OsInfo | None = None


class ImageCopySource(ApiModel):
    """Copy another `Image` (same provider: copy API; other provider: export + import)."""

    image_ref: LocalObjectReference = Field(description="The Image to copy (same namespace).")


class PipelineOutputSource(ApiModel):
    """An image an `ImagePipeline` run built. Written by the pipeline (spec.outputImages), which
    also sets the `imageops.io/external-id` annotation to the run's image: such an Image adopts
    that image and never creates one."""

    pipeline_ref: LocalObjectReference = Field(description="The ImagePipeline (same namespace).")
    run_id: str = Field(
        alias="runID", min_length=1, max_length=64, description="The execution that built it."
    )


# The fields of ImageSource, in the order messages name them; the CEL rule below and kind()
# both read this list, so a new source kind is added here and as a field.
SOURCE_KINDS = ("repository", "vm", "url", "upload", "image", "pipeline")


class ImageSource(ApiModel):
    """Where the image comes from; exactly one field is set. Immutable after creation."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "[" + ", ".join(f"has(self.{kind})" for kind in SOURCE_KINDS) + "]"
                    ".filter(x, x).size() == 1",
                    f"spec.source must set exactly one of {', '.join(SOURCE_KINDS)}",
                ),
                immutable_rule("spec.source"),
            ]
        }
    }

    repository: RepositorySource | None = None
    vm: VmSource | None = None
    url: UrlSource | None = None
    upload: UploadSource | None = None
    image: ImageCopySource | None = None
    pipeline: PipelineOutputSource | None = None

    def kind(self) -> str:
        for name in SOURCE_KINDS:
            if getattr(self, name) is not None:
                return name
        raise ValueError(f"spec.source sets none of {', '.join(SOURCE_KINDS)}")


# Bounds chosen so the CEL placeholder rules fit the API server's cost budget (see
# _placeholders_declared); commandtemplate enforces nothing tighter.
MAX_COMMAND_LINES = 8
MAX_COMMAND_LINE_LENGTH = 2048
MAX_PARAMETERS = 16

CommandLine = Annotated[str, Field(max_length=MAX_COMMAND_LINE_LENGTH)]


def _parameter_list(kind: str) -> Any:
    return Field(
        default=None,
        max_length=MAX_PARAMETERS,
        description=f"Typed parameters usable as {{{{{kind}.NAME}}}} in spec.command "
        f"(at most {MAX_PARAMETERS}, names unique).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )


# -- management policies and adoption by selector (issue 12, parts 3 and 4) -----------------
# Kept together: the reconciler's create/adopt/update/delete decisions read only these.


class ManagementPolicy(StrEnum):
    """What the operator may do to the cloud image (Crossplane's `managementPolicies`)."""

    ALL = "*"
    OBSERVE = "Observe"
    CREATE = "Create"
    UPDATE = "Update"
    DELETE = "Delete"


class AdoptPolicy(StrEnum):
    """What `spec.adopt` does when its selector matches no cloud image."""

    ADOPT_OR_WAIT = "AdoptOrWait"
    ADOPT_OR_CREATE = "AdoptOrCreate"


class AdoptSelector(ApiModel):
    """Which cloud image to adopt: by its exact cloud name, or by tags it carries (all of them,
    keys and values exactly). Exactly one of the two."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "has(self.name) != has(self.tags)",
                    "spec.adopt.selector must set exactly one of name, tags",
                )
            ]
        }
    }

    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="The cloud image's name, matched exactly.",
        json_schema_extra=no_control_characters(),
    )
    tags: dict[TagKey, TagValue] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="Tags the cloud image carries, every one with this exact value.",
        json_schema_extra=key_rules(
            "spec.adopt.selector.tags", KEY_PATTERN, KEY_WORDS, max_length=TAG_KEY_MAX
        ),
    )

    @model_validator(mode="after")
    def _one_of(self) -> AdoptSelector:
        # The CEL rule says it at admission; this says it for objects stored before it (an
        # empty selector would match every image).
        if (self.name is None) == (self.tags is None):
            raise ValueError("spec.adopt.selector must set exactly one of name, tags")
        return self


class Adoption(ApiModel):
    """Adopt an existing cloud image found by a selector instead of an ID (the ID form is the
    `imageops.io/external-id` annotation). Exactly one match is adopted; one that another Image
    already manages is never adopted; several matches stall naming them."""

    selector: AdoptSelector
    policy: AdoptPolicy = Field(
        default=AdoptPolicy.ADOPT_OR_WAIT,
        description="When nothing matches: AdoptOrWait (default) looks again on a backoff; "
        "AdoptOrCreate creates the image from spec.source (needs Create in "
        "spec.managementPolicies).",
    )


def _management_rules() -> list[JsonDict]:
    policies = "self.managementPolicies"
    return [
        cel(
            f"!has(self.managementPolicies) || !('*' in {policies}) || {policies}.size() == 1",
            "spec.managementPolicies: '*' already means every policy; list it alone or list "
            "the policies (Observe, Create, Update, Delete) without it",
            field_path=".managementPolicies",
        ),
        cel(
            f"!has(self.managementPolicies) || '*' in {policies} || 'Observe' in {policies}",
            "spec.managementPolicies must include Observe (or be ['*']): the operator reads the "
            "cloud image for every other policy",
            field_path=".managementPolicies",
        ),
        cel(
            "!has(self.adopt) || !has(self.adopt.policy) || self.adopt.policy != 'AdoptOrCreate'"
            f" || !has(self.managementPolicies) || '*' in {policies} || 'Create' in {policies}",
            "spec.adopt.policy AdoptOrCreate needs Create in spec.managementPolicies: use "
            "AdoptOrWait, or add Create",
            field_path=".adopt.policy",
        ),
    ]


def _management_policies_field() -> Any:
    return Field(
        default_factory=lambda: [ManagementPolicy.ALL],
        min_length=1,
        max_length=5,
        description="What the operator may do to the cloud image: ['*'] (default) everything; "
        "otherwise Observe plus any of Create, Update, Delete. ['Observe'] only mirrors a "
        "cloud image named by the imageops.io/external-id annotation or spec.adopt, and never "
        "changes it. Without Delete the cloud image is left in place when this object is "
        "deleted, whatever spec.deletionPolicy says.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


# -- end of management policies and adoption -------------------------------------------------


class ImageSpec(ApiModel):
    """The desired image. Field names follow the Argon image model."""

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "!has(self.command) || self.command.join(' ').findAll('"
                    + PLACEHOLDER_ANY
                    + "').all(p, p.matches('"
                    + PLACEHOLDER_VALID
                    + "'))",
                    "spec.command: every {{...}} placeholder must read {{inputs.NAME}}, "
                    "{{configs.NAME}} or {{outputs.NAME}}",
                    field_path=".command",
                ),
                _placeholders_declared("inputs", "inputs"),
                _placeholders_declared("configs", "configs"),
                _placeholders_declared("outputs", "outputs"),
                _kind_matches("inputs", "input"),
                _kind_matches("outputs", "output"),
                _kind_matches("configs", "config"),
                *argon_name_rules(),  # provider options (issue 12)
                *_management_rules(),
            ]
        }
    }

    provider_ref: Annotated[
        LocalObjectReference, Field(json_schema_extra=immutable("spec.providerRef"))
    ] = Field(description="The ImageProvider (same namespace) that holds this image.")
    source: ImageSource
    display_name: str = Field(
        min_length=1,
        max_length=128,
        description="Display name: any text without control characters.",
        json_schema_extra=no_control_characters(),
    )
    group: str | None = patterned(
        CLOUD_NAME_PATTERN,
        _CLOUD_NAME_WORDS,
        max_length=63,
        default=None,
        description="Owning work group (Chinese characters, letters, digits, '.', '_', '-').",
    )
    description: str | None = Field(
        default=None, max_length=1024, description="What the image is for (Argon description)."
    )
    price: Price | None = Field(
        default=None,
        description='Price as a decimal string, e.g. "0" (free) or "1.5". Quote it in YAML.',
    )
    cover: str | None = Field(
        default=None, max_length=262144, description="Cover image: a URL or Base64 data."
    )
    command: list[CommandLine] | None = Field(
        default=None,
        max_length=MAX_COMMAND_LINES,
        description="Start command template; placeholders {{inputs.NAME}}, {{configs.NAME}}, "
        "{{outputs.NAME}} must name declared parameters.",
    )
    inputs: list[Parameter] | None = _parameter_list("inputs")
    outputs: list[Parameter] | None = _parameter_list("outputs")
    configs: list[Parameter] | None = _parameter_list("configs")
    tags: dict[TagKey, TagValue] | None = Field(
        default=None,
        max_length=20,
        description="Tags set on the cloud image where supported: keys such as team or "
        "example.com/owner (at most 128 characters), values of words (may be empty).",
        json_schema_extra=key_rules("spec.tags", KEY_PATTERN, KEY_WORDS, max_length=TAG_KEY_MAX),
    )
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.DELETE,
        description="Delete (default) removes the cloud image when this object is deleted, if "
        "spec.managementPolicies allows Delete; Orphan leaves it.",
    )
    # -- provider options (issue 12): set only the one of the provider's type ------------------
    openstack: OpenStackImageOptions | None = Field(
        default=None, description="Options for an ImageProvider of type openstack (Glance/IMS)."
    )
    ucloudstack: UCloudStackImageOptions | None = Field(
        default=None, description="Options for an ImageProvider of type ucloudstack."
    )
    argon: ArgonImageOptions | None = Field(
        default=None, description="Options for an ImageProvider of type argon."
    )
    # -- management policies and adoption (see the block above ImageSpec) --
    management_policies: list[ManagementPolicy] = _management_policies_field()
    adopt: Adoption | None = Field(
        default=None,
        description="Adopt an existing cloud image found by name or tags (see Adoption); "
        "used only until this Image holds a cloud image (status.externalID).",
    )

    @field_validator("management_policies")
    @classmethod
    def _policies(cls, value: list[ManagementPolicy]) -> list[ManagementPolicy]:
        # The CEL rules say these at admission; repeated for objects stored before them.
        if ManagementPolicy.ALL in value and len(value) > 1:
            raise ValueError("'*' already means every policy; list it alone")
        if ManagementPolicy.ALL not in value and ManagementPolicy.OBSERVE not in value:
            raise ValueError("must include Observe (or be ['*'])")
        return value

    @model_validator(mode="after")
    def _adopt_or_create_needs_create(self) -> ImageSpec:
        adopt = self.adopt
        creating = adopt is not None and adopt.policy is AdoptPolicy.ADOPT_OR_CREATE
        if creating and not self.allows(ManagementPolicy.CREATE):
            raise ValueError(
                "spec.adopt.policy AdoptOrCreate needs Create in spec.managementPolicies"
            )
        return self

    def allows(self, policy: ManagementPolicy) -> bool:
        """Whether spec.managementPolicies lets the operator do `policy`."""
        policies = self.management_policies
        return ManagementPolicy.ALL in policies or policy in policies

    # -- end of management policies and adoption --


class CopySourceStatus(ApiModel):
    """The source side of a copy (`spec.source.image`), as the copy began."""

    image: str = Field(description="The source Image (same namespace).")
    provider: str = Field(description="The source Image's ImageProvider.")
    external_id: str | None = Field(
        default=None, alias="externalID", description="The source's image ID in its provider."
    )


class DriftStatus(ApiModel):
    """The last time the cloud image was found to differ from what the operator made."""

    detected_at: str = Field(description="When the resync noticed it (RFC 3339).")
    generation: int = Field(description="The metadata.generation that was Ready at the time.")
    message: str = Field(max_length=1024, description="What differs.")


class ImageStatus(ObjectStatus):
    """Observed state of an `Image`."""

    progress: int | None = Field(default=None, ge=0, le=100, description="Percent done.")
    provider_type: str | None = Field(default=None, description="Type of the provider used.")
    cloud_state: str | None = Field(default=None, description="The provider's own state word.")
    message: str | None = Field(default=None, description="Last message from the cloud.")
    copied_from: CopySourceStatus | None = Field(
        default=None, description="For spec.source.image: the source side of the copy."
    )
    failed_generation: int | None = Field(
        default=None,
        description="The generation whose spec the cloud failed to make; a newer generation "
        "makes the operator delete the failed image and try again.",
    )
    drift: DriftStatus | None = Field(
        default=None,
        description="The last drift the provider's resync found (deleted or modified outside "
        "the operator); what happened next follows the ImageProvider's spec.driftPolicy.",
    )


class Image(ApiModel):
    """Schema holder: `spec` and `status` of the Image kind."""

    crd: ClassVar[CrdInfo] = CrdInfo(
        kind="Image",
        plural="images",
        short_names=("img",),
        description="An image in one cloud provider; the spec mirrors the Argon image model.",
        columns=(
            PrinterColumn("Provider", "string", ".spec.providerRef.name"),
            *standard_columns(progress=True),
        ),
    )

    spec: ImageSpec
    status: ImageStatus | None = None
