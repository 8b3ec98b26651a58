"""Responses the server writes itself: error responses, and the default headers.

Shared by the HTTP/1.1 and WebSocket handlers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.utils import formatdate
from http import HTTPStatus

SERVER_HEADER = (b"server", b"sansio-asgi")

REASONS: dict[int, bytes] = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}

_date_cache: tuple[int, bytes] = (-1, b"")


def http_date(now: float) -> bytes:
    """The IMF-fixdate for ``now`` (RFC 9110 §5.6.7), formatted once per second."""
    global _date_cache
    second = int(now)
    if _date_cache[0] != second:
        _date_cache = (second, formatdate(second, usegmt=True).encode("ascii"))
    return _date_cache[1]


def error_response(
    status: int,
    detail: str,
    *,
    now: float,
    server_header: bool,
    date_header: bool,
    head: bool = False,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
) -> bytes:
    """A complete ``connection: close`` response with a short text body (none for HEAD)."""
    reason = REASONS.get(status, b"")
    body = reason + b"\n"
    if detail:
        body = reason + b": " + detail[:200].encode("ascii", "backslashreplace") + b"\n"
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    if server_header:
        lines.append(b"server: sansio-asgi\r\n")
    if date_header:
        lines.append(b"date: " + http_date(now) + b"\r\n")
    lines.append(b"content-type: text/plain; charset=utf-8\r\n")
    lines += [name + b": " + value + b"\r\n" for name, value in extra_headers]
    lines.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
    if head:
        # RFC 9110 §9.3.2: the response to HEAD has the headers a GET would get, no content.
        return b"".join(lines)
    return b"".join(lines) + body


def default_headers_missing(
    headers: Sequence[tuple[bytes, bytes]], defaults: Sequence[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """The ``--header`` defaults whose names the app's headers do not already have."""
    names = {name.lower() for name, _ in headers}
    return [(name, value) for name, value in defaults if name.lower() not in names]


# RFC 9110 §5.1 and §5.5: a field name is a token; a value has no CR, LF or NUL.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(rb"[^\x00\r\n]*")


def validate_field(name: bytes, value: bytes) -> bool:
    return bool(_TOKEN.fullmatch(name)) and bool(_FIELD_VALUE.fullmatch(value))
