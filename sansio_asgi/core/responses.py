"""What the server says itself: error responses' content, the default headers, the date.

Protocol-neutral: a writer (``http11.HTTP11Writer``) turns them into bytes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from email.utils import formatdate
from http import HTTPStatus

# RFC 9110 §10.2.4: "An origin server MAY generate a Server header field in its responses."
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


def error_content(status: int, detail: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and the short text body of a response the server composes itself (an
    error, or the 500 of an app that failed): the reason phrase, and ``detail`` in fixed words
    that never quote the request. A writer adds ``server``, ``date`` and the framing."""
    reason = REASONS.get(status, b"")
    body = reason + b"\n"
    if detail:
        body = reason + b": " + detail[:200].encode("ascii", "backslashreplace") + b"\n"
    return [(b"content-type", b"text/plain; charset=utf-8")], body


def default_headers_missing(
    headers: Sequence[tuple[bytes, bytes]], defaults: Sequence[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """The ``--header`` defaults whose names the app's headers do not already have."""
    names = {name.lower() for name, _ in headers}
    return [(name, value) for name, value in defaults if name.lower() not in names]


# RFC 9110 §5.1 and §5.5, in h11's words: a field name is a token; a value has no leading or
# trailing whitespace, and no NUL, CR or LF (nor other whitespace but SP and HTAB inside).
FIELD_NAME = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
FIELD_VALUE = re.compile(rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?")


def validate_field(name: bytes, value: bytes) -> bool:
    """Whether a response could carry this field: ``--header`` is checked as the app's are."""
    return bool(FIELD_NAME.fullmatch(name)) and bool(FIELD_VALUE.fullmatch(value))
