"""The openstacksdk connection of the `openstack` provider, built from the ImageProvider's
endpoint and the keys of its Secret (application credential, username + password, a token, or
none). Used by `providers.openstack`'s `build`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import openstack
import openstack.connection

from image_operator.providers.errors import InvalidInput
from image_operator.providers.openstack_errors import map_error

_CREDENTIAL_KEYS = (
    "applicationCredentialId",
    "applicationCredentialSecret",
    "username",
    "password",
    "token",
)


def connect(
    endpoint: str, credentials: Mapping[str, str], *, region: str | None, project: str | None
) -> openstack.connection.Connection:
    """An openstacksdk connection for the Secret's keys (see docs/providers/openstack.md):

    - application credential (`applicationCredentialId` + `applicationCredentialSecret`) or
      `username` + `password` (project `spec.project`): `endpoint` is Keystone's URL and the
      image endpoint comes from the catalog (region `spec.region`);
    - `token` (e.g. a Huawei IAM token): sent as X-Auth-Token to the image `endpoint`;
    - none: no authentication, `endpoint` is the image service itself.
    """
    keys = {key for key in _CREDENTIAL_KEYS if credentials.get(key)}
    auth: dict[str, str]
    if keys & {"applicationCredentialId", "applicationCredentialSecret"}:
        _require(keys, ("applicationCredentialId", "applicationCredentialSecret"))
        auth_type = "v3applicationcredential"
        auth = {
            "auth_url": endpoint,
            "application_credential_id": credentials["applicationCredentialId"],
            "application_credential_secret": credentials["applicationCredentialSecret"],
        }
    elif keys & {"username", "password"}:
        _require(keys, ("username", "password"))
        if not project:
            raise InvalidInput(
                "spec.project (the OpenStack project name) is required for type openstack "
                "with username/password credentials"
            )
        auth_type = "password"
        auth = {
            "auth_url": endpoint,
            "username": credentials["username"],
            "password": credentials["password"],
            "project_name": project,
            "user_domain_name": credentials.get("userDomainName") or "Default",
            "project_domain_name": credentials.get("projectDomainName") or "Default",
        }
    elif "token" in keys:
        # keystoneauth's admin_token sends every request to this endpoint as it is (no version
        # discovery, unlike auth "none"): an unversioned Glance URL answers 300 with its versions
        # document. The provider speaks the image API v2 only, so that is where it goes.
        auth_type = "admin_token"
        auth = {"endpoint": image_api_v2(endpoint), "token": credentials["token"]}
    else:
        auth_type = "none"
        auth = {"endpoint": endpoint}
    try:
        return openstack.connect(
            auth_type=auth_type,
            auth=auth,
            region_name=region,
            app_name="image-operator",
            # Only what the ImageProvider says: never a clouds.yaml or OS_* variables of the host.
            load_yaml_config=False,
            load_envvars=False,
        )
    except Exception as exc:
        raise map_error(exc, "configure the openstack connection") from exc


def _require(present: set[str], keys: tuple[str, ...]) -> None:
    missing = [key for key in keys if key not in present]
    if missing:
        raise InvalidInput(
            f"the credentials Secret sets {' and '.join(sorted(present))} but lacks "
            f"{', '.join(missing)}, which type openstack needs with it"
        )


def image_api_v2(endpoint: str) -> str:
    """The image API v2 root of a Glance URL given with or without its version segment."""
    base = endpoint.rstrip("/")
    return base if re.search(r"/v2(\.\d+)?$", base) else f"{base}/v2"
