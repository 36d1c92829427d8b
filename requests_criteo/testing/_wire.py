"""Small helpers for what the testing kit puts on the wire: compact JSON, base64url, numbers.

What lives here: byte and number conversions shared by the fake's modules. What does not:
anything that reads a request or decides an answer.
"""

from __future__ import annotations

import base64
import json
from typing import Final

_JSON: Final = "application/json"


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _number(value: float) -> int | float:
    """``900`` rather than ``900.0`` in an ``expires_in``, as Criteo writes it."""
    return int(value) if float(value).is_integer() else value


def _to_bytes(body: bytes | str | None) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    return bytes(body)


def _split_path(path: str) -> str:
    """The path of a request target, without its query."""
    return path.partition("?")[0]


def _check_status(status: int) -> None:
    if not 200 <= status <= 599:
        raise ValueError(f"status must be between 200 and 599, not {status!r}")
