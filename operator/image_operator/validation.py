"""Turn pydantic validation errors into one sentence that names each field (camelCase)."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(exc: ValidationError, prefix: str) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        path = prefix
        for item in error["loc"]:
            path += f"[{item}]" if isinstance(item, int) else f".{item}"
        parts.append(f"{path}: {error['msg']}")
    return "; ".join(parts)
