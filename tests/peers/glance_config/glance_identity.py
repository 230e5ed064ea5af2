"""A paste filter standing in for Keystone's authtoken in the tests' Glance.

authtoken validates a token and sets the identity headers Glance's context middleware reads.
Here there is no Keystone: each header is set from the filter's configuration when the request
does not carry it, so a plain client is the default project and a test acts as another project
by sending `X-Project-Id` (and `X-User-Id`) itself. Loaded into Glance's own venv from the
config folder (on PYTHONPATH); test-only, never part of the operator.
"""

from collections.abc import Callable, Iterable
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def filter_factory(global_conf: dict[str, str], **local_conf: str) -> Callable[[WsgiApp], WsgiApp]:
    defaults = {
        "HTTP_X_IDENTITY_STATUS": "Confirmed",
        "HTTP_X_PROJECT_ID": local_conf["project_id"],
        "HTTP_X_USER_ID": local_conf["user_id"],
        "HTTP_X_ROLES": local_conf.get("roles", "member,reader"),
    }

    def wrap(app: WsgiApp) -> WsgiApp:
        def identity(
            environ: dict[str, Any], start_response: Callable[..., Any]
        ) -> Iterable[bytes]:
            for key, value in defaults.items():
                environ.setdefault(key, value)
            return app(environ, start_response)

        return identity

    return wrap
