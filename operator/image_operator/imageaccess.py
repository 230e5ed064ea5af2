"""What a CLI command that acts on one `Image` reads from the cluster (with the user's own
kubeconfig and RBAC): the Image, its ImageProvider's spec and the keys of the Secret that names,
and from those a provider client. Shared by `upload` and `download-url`."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, cast

from kubernetes import client

from image_operator import kubeconfig
from image_operator.api.common import GROUP, VERSION
from image_operator.api.image import ImageSpec
from image_operator.api.provider import ImageProviderSpec
from image_operator.providers.base import Provider
from image_operator.providers.factory import build_provider
from image_operator.settings import Settings


class CommandError(Exception):
    """The command cannot go on; the message names what to fix."""


def parse_target(text: str) -> str:
    """`img/NAME`, `image/NAME`, `images/NAME` or just NAME: the Image's name."""
    kind, slash, name = text.partition("/")
    if not slash:
        return kind
    if kind.lower() not in ("img", "image", "images", f"images.{GROUP}"):
        raise CommandError(f"{text!r}: expected img/NAME (an Image), not a {kind!r}")
    return name


@dataclass
class ImageCluster:
    """The kube objects one Image's command reads (and the one annotation `upload` writes)."""

    custom: client.CustomObjectsApi
    core: client.CoreV1Api
    namespace: str

    def get(self, plural: str, name: str) -> dict[str, Any]:
        body = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, name
        )
        return cast(dict[str, Any], body)

    def annotate(self, name: str, key: str, value: str) -> None:
        patch = {"metadata": {"annotations": {key: value}}}
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "images", name, patch
        )

    def secret(self, name: str) -> dict[str, str]:
        data = self.core.read_namespaced_secret(name, self.namespace).data or {}
        return {key: base64.b64decode(value).decode() for key, value in data.items()}

    def provider(self, spec: ImageSpec) -> tuple[Provider, ImageProviderSpec]:
        """A client of the ImageProvider `spec.providerRef` names, built as the operator builds
        it (the operator's endpoint rule, IMAGE_OPERATOR_*_ENDPOINT_* in this environment)."""
        body = self.get("imageproviders", spec.provider_ref.name)
        provider_spec = ImageProviderSpec.model_validate(body.get("spec") or {})
        ref = provider_spec.credentials_secret_ref
        credentials = self.secret(ref.name) if ref is not None else {}
        provider = build_provider(
            provider_spec, credentials, endpoints=Settings().endpoint_policy()
        )
        return provider, provider_spec


def connect(namespace: str | None) -> ImageCluster:
    """The current kubeconfig context; `namespace` or else the context's."""
    cluster = kubeconfig.connect()
    api = cluster.api
    return ImageCluster(
        client.CustomObjectsApi(api), client.CoreV1Api(api), namespace or cluster.namespace
    )
