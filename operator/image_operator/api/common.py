"""Types shared by every kind: references, deletion policy, kstatus conditions and status."""

from __future__ import annotations

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

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# Money as a decimal string (e.g. "0", "1.5"): floats in CRDs lose precision and YAML turns
# `0.10` into `0.1`, so prices are strings like Kubernetes quantities.
# A JSON Schema fragment (what pydantic's json_schema_extra takes).
JsonDict = dict[str, Any]

PRICE_PATTERN = r"^(0|[1-9][0-9]{0,8})(\.[0-9]{1,4})?$"


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
