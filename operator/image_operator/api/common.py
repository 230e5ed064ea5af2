"""Types shared by every kind: references, deletion policy, kstatus conditions and status."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field, field_validator

from image_operator.api.base import ApiModel

GROUP = "imageops.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

ANNOTATION_EXTERNAL_ID = f"{GROUP}/external-id"
ANNOTATION_PAUSED = f"{GROUP}/paused"
# Written by `image-operator upload` as "SENT/TOTAL/BYTES_PER_SECOND" (the operator reads it).
ANNOTATION_UPLOAD_PROGRESS = f"{GROUP}/upload-progress"
FINALIZER = f"{GROUP}/finalizer"
# Written with the finalizer, in one PATCH, before the operator may send anything to the
# provider (its value: the provider type). Its absence, with no status.providerType either,
# proves that nothing was ever sent, so a deletion may go without the provider.
ANNOTATION_PROVIDER_TYPE = f"{GROUP}/provider-type"

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# Money as a decimal string (e.g. "0", "1.5"): floats in CRDs lose precision and YAML turns
# `0.10` into `0.1`, so prices are strings like Kubernetes quantities.
# A JSON Schema fragment (what pydantic's json_schema_extra takes).
JsonDict = dict[str, Any]

PRICE_PATTERN = r"^(0|[1-9][0-9]{0,8})(\.[0-9]{1,4})?$"

# IDs as the vendors spell them (seeds: regions cn-wlcb, cn-hangzhou, RegionOne; VMs
# vm-7rli7wr5jpk8h5; storage sets StorageSetNPVK; ECS images m-bp67acfmxazb4p or
# aliyun_3_x64_20G_alibase_20240819.vhd). They go into signed queries and request bodies: never
# spaces, control characters or '/'.
CLOUD_ID_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$"
CLOUD_ID_WORDS = (
    "letters, digits, '.', '_' and '-', starting and ending with a letter or digit (no spaces, "
    "control characters or '/')"
)
# A word character of keys and labels: Chinese (Han) characters, letters, digits and '_'.
_WORD = r"\p{Han}A-Za-z0-9_"
# A key (a tag key, an OSS object name): '/'-separated parts, each starting with a word
# character, so that no part is '.' or '..'; no spaces, control characters or shell syntax.
_KEY_PART = rf"[{_WORD}][{_WORD}.:@+=-]*"
KEY_PATTERN = rf"^{_KEY_PART}(/{_KEY_PART})*$"
KEY_WORDS = (
    "'/'-separated parts of Chinese (Han) characters, letters, digits, '_', '.', ':', '@', "
    "'+', '=' and '-', each part starting with a Chinese character, letter, digit or '_' (no "
    "spaces, control characters, '..' or shell syntax such as '$', ';' or quotes)"
)
# A label (a tag value, a community tag, a GPU type): a key whose parts may also hold spaces.
_LABEL_PART = rf"[{_WORD}][{_WORD} .:@+=-]*"
_LABEL = rf"{_LABEL_PART}(/{_LABEL_PART})*"
LABEL_PATTERN = rf"^{_LABEL}$"
OPTIONAL_LABEL_PATTERN = rf"^({_LABEL})?$"
LABEL_WORDS = (
    "words of Chinese (Han) characters, letters, digits, '_', '.', ':', '@', '+', '=' and '-' "
    "separated by spaces or '/', each '/'-separated part starting with a Chinese character, "
    "letter, digit or '_' (no control characters, '..' or shell syntax such as '$', ';' or "
    "quotes)"
)
# An http(s) URL: no whitespace, no C0 or C1 control characters.
URL_PATTERN = r"^https?://[^\s\x00-\x1f\x7f-\x9f]+$"
URL_WORDS = "an http:// or https:// URL without spaces or control characters"
# Literal link-local and cloud-metadata hosts in a URL, refused at admission wherever a URL is
# requested from (the operator's providers, or the cloud itself). The operator judges every
# endpoint again before its first request (names resolved, every spelling of an address:
# providers.endpoints), so this is the early, readable refusal of the obvious cases.
METADATA_URL_PATTERN = (
    r"^(?i)https?://([^/@]*@)?("
    r"169\.254\.[0-9.]*|0\.0\.0\.0|100\.100\.100\.200|168\.63\.129\.16"
    r"|\[(fe[89ab][0-9a-f]:[^\]]*|::ffff:169\.254\.[^\]]*|::ffff:a9fe:[^\]]*|fd00:ec2::254)\]"
    r"|metadata|metadata\.google\.internal|metadata\.goog|instance-data"
    r")\.?(:[0-9]*)?([/?#].*)?$"
)
METADATA_HOSTS_WORDS = (
    "a link-local or cloud-metadata address (169.254.0.0/16, fe80::/10, 100.100.100.200, "
    "fd00:ec2::254, metadata.google.internal, 0.0.0.0)"
)
# What display text may not hold: C0 and C1 control characters (NUL, newline, the escape that
# starts a terminal sequence, ...) and the bidirectional controls that make text read in
# another order than it is stored (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069). RE2
# syntax, used only in CEL.
_CONTROL_CHARACTER = (
    r"[\x00-\x1f\x7f-\x9f\x{061C}\x{200E}\x{200F}\x{202A}-\x{202E}\x{2066}-\x{2069}]"
)


def cel(
    rule: str,
    message: str | None = None,
    *,
    message_expression: str | None = None,
    field_path: str | None = None,
    reason: str | None = None,
) -> JsonDict:
    """One `x-kubernetes-validations` entry (a CEL rule the API server checks at admission)."""
    entry: JsonDict = {"rule": rule}
    if message:
        entry["message"] = message
    if message_expression:
        entry["messageExpression"] = message_expression
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    return entry


def pattern_in_words(pattern: str, words: str) -> JsonDict:
    """Schema extras repeating `pattern` as a CEL rule whose message says in words what is
    accepted: the API server's own message for a failed `pattern` only quotes the regex. Put a
    length limit in min_length/max_length, not in the regex, so that a value that is only too
    long is refused with "may not be longer than N" (the regex fails on form alone). A CEL raw
    string keeps the regex as written (no CEL escaping)."""
    if "'" in pattern:
        raise ValueError(f"a pattern with a quote needs CEL escaping: {pattern}")
    return {"x-kubernetes-validations": [cel(f"self.matches(r'{pattern}')", words)]}


def cel_regex(pattern: str) -> str:
    """`pattern` as a single-quoted CEL string literal."""
    return "'" + pattern.replace("\\", "\\\\").replace("'", "\\'") + "'"


def no_control_characters() -> JsonDict:
    """Schema extras for display text: any character but control characters and bidirectional
    controls (which the seeds never constrain, and a terminal or console would act on)."""
    return {
        "x-kubernetes-validations": [
            cel(
                f"!self.matches(r'{_CONTROL_CHARACTER}')",
                "must not hold control characters: no newline, tab, NUL, escape or other C0/C1 "
                "control, and no bidirectional override (U+202A-U+202E, U+2066-U+2069, "
                "U+200E, U+200F, U+061C)",
            )
        ]
    }


def not_a_metadata_url(message: str, *, field: str | None = None) -> JsonDict:
    """A CEL rule refusing a URL whose host is a link-local or cloud-metadata address: the
    string the rule is on, or its optional string `field`."""
    if field is None:
        return cel(f"!self.matches({cel_regex(METADATA_URL_PATTERN)})", message)
    return cel(
        f"!has(self.{field}) || !self.{field}.matches({cel_regex(METADATA_URL_PATTERN)})",
        message,
        field_path=f".{field}",
    )


def key_rules(
    field: str, pattern: str, words: str, *, max_length: int
) -> Callable[[JsonDict], None]:
    """Schema extras for a map whose keys pydantic checks (a key type with a pattern and a
    max_length): a structural schema has no `patternProperties` or `propertyNames`, so the
    API server checks the keys with CEL rules on the map instead. `pattern` and `max_length`
    are the key type's."""

    def extra(schema: JsonDict) -> None:
        for node in [schema, *schema.get("anyOf", [])]:
            if "patternProperties" in node:
                (values,) = node.pop("patternProperties").values()
                node["additionalProperties"] = values
            node.pop("propertyNames", None)
        schema.setdefault("x-kubernetes-validations", []).extend(
            [
                cel(
                    f"self.all(k, size(k) <= {max_length})",
                    f"every key of {field} must be at most {max_length} characters",
                ),
                cel(
                    f"self.all(k, k.matches(r'{pattern}'))",
                    f"every key of {field} must be {words}",
                ),
            ]
        )

    return extra


def patterned(
    pattern: str, words: str, *, max_length: int, min_length: int | None = 1, **field: Any
) -> Any:
    """A string `Field` whose `pattern` (checked by pydantic and the API server) comes with
    its CEL twin saying in words what is accepted (`pattern_in_words`), and whose length limits
    are min_length (None: may be empty) and max_length. `field`: the other `Field` arguments."""
    return Field(
        min_length=min_length,
        max_length=max_length,
        pattern=pattern,
        json_schema_extra=pattern_in_words(pattern, words),
        **field,
    )


def immutable_rule(field: str) -> JsonDict:
    """The CEL transition rule that makes a field immutable once set."""
    return cel(
        "self == oldSelf", f"{field} is immutable: delete and recreate the object to change it"
    )


def immutable(field: str) -> JsonDict:
    """Schema extras making a field immutable once set (a CEL transition rule)."""
    return {"x-kubernetes-validations": [immutable_rule(field)]}


ObjectName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="Object name.",
        json_schema_extra=pattern_in_words(
            DNS_SUBDOMAIN_PATTERN,
            "must be a Kubernetes object name: lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit",
        ),
    ),
]
Price = Annotated[
    str,
    Field(
        min_length=1,
        max_length=14,  # 9 digits, the point, 4 decimals: the longest PRICE_PATTERN allows
        pattern=PRICE_PATTERN,
        json_schema_extra=pattern_in_words(
            PRICE_PATTERN,
            'must be a decimal number like "0", "12" or "1.5": at most 9 digits before the '
            "point (no leading zero) and at most 4 after it, no sign, no spaces",
        ),
    ),
]
CloudId = Annotated[
    str, patterned(CLOUD_ID_PATTERN, "must be an ID of " + CLOUD_ID_WORDS, max_length=64)
]
TAG_KEY_MAX = 128
TagKey = Annotated[
    str, patterned(KEY_PATTERN, "must be a key: " + KEY_WORDS, max_length=TAG_KEY_MAX)
]
TagValue = Annotated[
    str,
    patterned(
        OPTIONAL_LABEL_PATTERN,
        "must be empty or a label: " + LABEL_WORDS,
        min_length=None,
        max_length=128,
    ),
]
# The key of a Secret or ConfigMap (a single character class: the regex says it plainly).
DataKey = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]


class LocalObjectReference(ApiModel):
    """A reference to an object of a known kind in the same namespace."""

    name: ObjectName


class SecretKeySelector(ApiModel):
    """One key of a Secret in the same namespace."""

    name: ObjectName
    key: DataKey


class ConfigMapKeySelector(ApiModel):
    """One key of a ConfigMap in the same namespace."""

    name: ObjectName
    key: DataKey


class DeletionPolicy(StrEnum):
    """What happens to the cloud object when the Kubernetes object is deleted."""

    DELETE = "Delete"
    ORPHAN = "Orphan"


DeletionPolicyField = Annotated[
    DeletionPolicy,
    Field(
        description="Delete (default) removes the cloud object and waits until it is gone; "
        "Orphan leaves it in the cloud."
    ),
]


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """A kstatus condition (`Ready`, `Reconciling`, `Stalled`), as metav1.Condition."""

    type: str = Field(max_length=316, description="Ready, Reconciling or Stalled.")
    status: ConditionStatus
    reason: str = Field(
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="CamelCase reason, e.g. Creating, InvalidSpec.",
    )
    message: str = Field(default="", max_length=32768, description="A sentence for humans.")
    last_transition_time: str = Field(description="RFC 3339 time the status last changed.")
    observed_generation: int | None = Field(default=None, ge=0)


# What `status.observedGeneration` reads as until the operator has written it (a CRD default).
NOT_OBSERVED = -1


class ObjectStatus(ApiModel):
    """Status fields every kind shares.

    The CRDs default `status` to `{}` and `status.observedGeneration` to -1: the API server
    fills them in on every read, so an object the operator has not written yet (just created,
    or created while the operator is down) has an observedGeneration behind its generation,
    and kstatus reads it as InProgress instead of Current (an object with no status at all
    looks done to kstatus).
    """

    # A model-level default: it lands on each kind's `status` property in the CRD.
    model_config = ConfigDict(json_schema_extra={"default": {}})

    observed_generation: int | None = Field(
        default=None,
        description="The metadata.generation this status describes; -1 until the operator "
        "has written it.",
        json_schema_extra={"default": NOT_OBSERVED},
    )

    @field_validator("observed_generation", mode="before")
    @classmethod
    def _not_observed_is_none(cls, value: object) -> object:
        """The CRD's -1 is "not observed yet", which is None here: the reconcilers then leave
        it out (the API server shows -1 again) and never copy it into a condition, whose
        observedGeneration cannot be negative."""
        return None if isinstance(value, int) and value < 0 else value

    phase: str | None = Field(
        default=None, description="A one-word summary for humans (printer column)."
    )
    external_id: str | None = Field(
        default=None,
        alias="externalID",
        description="The provider's identifier of the cloud object.",
    )
    conditions: list[Condition] | None = Field(
        default=None,
        description="kstatus conditions: Ready, Reconciling, Stalled.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
