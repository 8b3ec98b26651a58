"""Checks on the messages an application sends, per the ASGI spec.

ASGI "Error Handling": a server should raise an exception out of ``send`` for an event with an
unknown type, a missing required key or a wrong Python type, and must not raise for extra
keys. Each error names the message, the rule and the clause it comes from, e.g.
``http.response.start: 'headers' names must be bytes, got str (ASGI HTTP spec, Response
Start)``.

These run on every ``send()``, so each check is a type test on a value the server has to
read anyway; header syntax (RFC 9110 §5) is left to h11, which checks it once as it builds
the response.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

from .errors import ASGIProtocolError

RESPONSE_START = "ASGI HTTP spec, Response Start"
RESPONSE_BODY = "ASGI HTTP spec, Response Body"
EVENTS = "ASGI spec, Events"


def fail(message_type: str, rule: str, clause: str) -> ASGIProtocolError:
    return ASGIProtocolError(f"{message_type}: {rule} ({clause})")


def _type_name(value: object) -> str:
    return type(value).__name__


def headers(
    value: Any, message_type: str, clause: str
) -> tuple[list[tuple[bytes, bytes]], bool, bool]:
    """Return ``(headers, has_server, has_date)`` with ``transfer-encoding`` removed.

    The spec: the server must ignore a ``Transfer-Encoding`` header from the app and choose
    the framing itself (ASGI HTTP spec, Response Start).
    """
    if not isinstance(value, Iterable) or isinstance(value, (bytes, str, dict)):
        raise fail(
            message_type,
            f"'headers' must be an iterable of [name, value] pairs, got {_type_name(value)}",
            clause,
        )
    result: list[tuple[bytes, bytes]] = []
    has_server = has_date = False
    for item in value:
        try:
            name, header_value = item
        except (TypeError, ValueError):
            raise fail(
                message_type,
                f"each header must be a [name, value] pair, got {item!r:.60}",
                clause,
            ) from None
        if type(name) is not bytes:
            raise fail(
                message_type, f"'headers' names must be bytes, got {_type_name(name)}", clause
            )
        if type(header_value) is not bytes:
            raise fail(
                message_type,
                f"'headers' values must be bytes, got {_type_name(header_value)}",
                clause,
            )
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            continue
        if lowered == b"server":
            has_server = True
        elif lowered == b"date":
            has_date = True
        result.append((name, header_value))
    return result, has_server, has_date


def response_start(
    message: MutableMapping[str, Any], kind: str = "http.response.start"
) -> tuple[int, Any, bool]:
    """Return ``(status, raw headers, trailers)`` of an ``http.response.start``."""
    try:
        status = message["status"]
    except KeyError:
        raise fail(kind, "missing required key 'status'", RESPONSE_START) from None
    if type(status) is not int:
        raise fail(kind, f"'status' must be int, got {_type_name(status)}", RESPONSE_START)
    if not 200 <= status <= 599:
        raise fail(
            kind,
            f"'status' must be a final status from 200 to 599, got {status}",
            "RFC 9110 §15; 1xx responses are interim and sent by the server",
        )
    trailers = message.get("trailers", False)
    if type(trailers) is not bool:
        raise fail(
            kind,
            f"'trailers' must be bool, got {_type_name(trailers)}",
            RESPONSE_START,
        )
    return status, message.get("headers", ()), trailers


def response_body(
    message: MutableMapping[str, Any], kind: str = "http.response.body"
) -> tuple[bytes, bool]:
    """Return ``(body, more_body)`` of an ``http.response.body``."""
    body = message.get("body", b"")
    if type(body) is not bytes:
        raise fail(kind, f"'body' must be bytes, got {_type_name(body)}", RESPONSE_BODY)
    more_body = message.get("more_body", False)
    if type(more_body) is not bool:
        raise fail(
            kind,
            f"'more_body' must be bool, got {_type_name(more_body)}",
            RESPONSE_BODY,
        )
    return body, more_body


def message_type(message: object) -> str:
    """The ``type`` of a message, or an error saying why it has none."""
    if not isinstance(message, dict):
        raise ASGIProtocolError(f"a message must be a dict, got {_type_name(message)} ({EVENTS})")
    try:
        value = message["type"]
    except KeyError:
        raise ASGIProtocolError(f"a message must have a 'type' key ({EVENTS})") from None
    if type(value) is not str:
        raise ASGIProtocolError(
            f"a message's 'type' must be str, got {_type_name(value)} ({EVENTS})"
        )
    return value
