"""Where the openstack provider sends a token (providers/openstack_connect.py)."""

from __future__ import annotations

import pytest

from image_operator.providers.openstack_connect import image_api_v2


@pytest.mark.parametrize(
    ("endpoint", "root"),
    [
        ("http://glance:9292", "http://glance:9292/v2"),
        ("http://glance:9292/", "http://glance:9292/v2"),
        ("https://ims.example/v2", "https://ims.example/v2"),
        ("https://cloud.example/image/v2/", "https://cloud.example/image/v2"),
    ],
)
def test_a_token_goes_to_the_image_api_v2_root(endpoint: str, root: str) -> None:
    assert image_api_v2(endpoint) == root
