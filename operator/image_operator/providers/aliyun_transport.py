"""The HTTP layer under the Alibaba Cloud SDK, made to follow no redirect.

The ECS SDK sends through darabonba, which keeps one `requests.Session` per host (a class
attribute, `DaraCore._sessions`) and lets `requests` follow redirects: a 3xx from the endpoint
would send the next request wherever its `Location` says, the metadata address included, and a
307/308 would carry the signed body there. ECS never answers with a redirect, so every session
darabonba makes gets `max_redirects = 0`: `requests` then raises `TooManyRedirects` before a
second hop is sent (`aliyun_errors` maps it to `EndpointRefused`). The SDK has no setting for
this; its session factory is the one place every request passes.
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from darabonba.core import DaraCore  # type: ignore[import-untyped]

_lock = threading.Lock()
_MARK = "_imageops_refuses_redirects"


def refuse_redirects() -> None:
    """Make every darabonba session (made before or after) follow no redirect. Idempotent."""
    with _lock:
        original = DaraCore._get_session
        if getattr(original, _MARK, False):
            return

        def get_session(*args: Any, **kwargs: Any) -> requests.Session:
            session: requests.Session = original(*args, **kwargs)
            session.max_redirects = 0
            return session

        setattr(get_session, _MARK, True)
        for session in DaraCore._sessions.values():
            session.max_redirects = 0
        DaraCore._get_session = staticmethod(get_session)
