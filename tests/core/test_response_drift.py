"""The responses a WebSocket handshake gets follow the same rules as plain HTTP responses.

Each behaviour is pinned for every response path side by side: a plain HTTP response
(``http.response.*``), the ``101 Switching Protocols`` written on ``websocket.accept``, and a
denial response (``websocket.http.response.*``, the ASGI "websocket.http.response"
extension).

* ``ProtocolSettings.default_headers`` (``--header NAME:VALUE``) goes on every response the
  app starts, unless the app sent a header of the same name (compared case-insensitively).
* A 204 or 304 has no content (RFC 9110 §15.3.5: "A 204 response is terminated by the end of
  the header section; it cannot contain content or trailers"; §15.4.5: "A 304 response is
  terminated by the end of the header section; it cannot contain content or trailers"), so a
  body the app sends with one is dropped rather than refused.
"""

from __future__ import annotations

from typing import Any

import pytest

from sansio_asgi.core import ProtocolSettings
from sansio_asgi.core.events import CloseConnection, ResponseCompleted, SendEOF

from .helpers import Harness, Response, parse_response, request
from .ws_helpers import accept, open_harness, split_handshake_response

DEFAULTS = ProtocolSettings(
    server_header=False,
    date_header=False,
    default_headers=((b"x-frame-options", b"DENY"), (b"x-served-by", b"edge-1")),
)

PATHS = ["http", "websocket-accept", "websocket-denial"]


# ================================================================ default headers


@pytest.mark.parametrize("path", PATHS)
def test_default_headers_are_on_the_response(path: str) -> None:
    response = respond_on(path, DEFAULTS, [(b"content-type", b"text/plain")])
    assert response.get(b"x-frame-options") == b"DENY", response.headers
    assert response.get(b"x-served-by") == b"edge-1", response.headers
    assert response.get(b"content-type") == b"text/plain"


@pytest.mark.parametrize("path", PATHS)
def test_an_app_header_of_the_same_name_wins_over_a_default(path: str) -> None:
    # The app spells the name in another case: header names are case-insensitive
    # (RFC 9110 §5.1), so it is still the same header and the default stays out.
    response = respond_on(path, DEFAULTS, [(b"X-Served-By", b"app")])
    assert response.get_all(b"x-served-by") == [b"app"], response.headers
    assert response.get(b"x-frame-options") == b"DENY", response.headers


@pytest.mark.parametrize("path", PATHS)
def test_no_default_headers_adds_nothing(path: str) -> None:
    settings = ProtocolSettings(server_header=False, date_header=False)
    response = respond_on(path, settings, [(b"x-app", b"1")])
    names = {name for name, _ in response.headers}
    assert b"x-frame-options" not in names and b"x-served-by" not in names
    assert response.get(b"x-app") == b"1"


# ================================================================ a 204 or 304 with a body


@pytest.mark.parametrize("status", [204, 304])
@pytest.mark.parametrize("path", ["http", "websocket-denial"])
@pytest.mark.parametrize("pieces", [[b"ignored"], [b"ignored", b"", b"also"]], ids=["one", "three"])
def test_a_body_on_a_204_or_304_is_dropped(path: str, status: int, pieces: list[bytes]) -> None:
    h, cycle, prefix = start_on(path, ProtocolSettings(), status, [])
    for i, piece in enumerate(pieces):
        send_body(h, cycle, prefix, piece, more_body=i < len(pieces) - 1)
    assert b"ignored" not in h.sent and b"also" not in h.sent
    assert h.sent.endswith(b"\r\n\r\n")
    response = read_response(path, h.sent)
    assert (response.status, response.body) == (status, b"")
    assert response.get(b"transfer-encoding") is None
    [completed] = h.of_type(ResponseCompleted)
    assert (completed.status, completed.body_bytes, completed.complete) == (status, 0, True)


@pytest.mark.parametrize("status", [204, 304])
def test_a_plain_204_or_304_with_a_body_keeps_the_connection(status: int) -> None:
    h, cycle, prefix = start_on("http", ProtocolSettings(), status, [])
    send_body(h, cycle, prefix, b"ignored")
    assert not h.of_type(SendEOF) and not h.of_type(CloseConnection)
    h.feed(request())
    assert len(h.start_apps()) == 2  # the next request on the same connection


@pytest.mark.parametrize("status", [204, 304])
def test_a_204_or_304_denial_with_a_body_closes_as_a_denial_does(status: int) -> None:
    h, cycle, prefix = start_on("websocket-denial", ProtocolSettings(), status, [])
    send_body(h, cycle, prefix, b"ignored")
    assert h.of_type(SendEOF)
    message = h.message_for_app(cycle)
    assert message is not None and message["type"] == "websocket.disconnect"


# ================================================================ helpers


def start_on(
    path: str, settings: ProtocolSettings, status: int, headers: list[tuple[bytes, bytes]]
) -> tuple[Harness, Any, str]:
    """A harness whose app has started a response with ``status`` and ``headers`` on ``path``.

    Returns the harness, the cycle and the message-type prefix of the body messages.
    """
    if path == "http":
        h = Harness(settings)
        h.feed(request())
        cycle = h.cycle()
        h.read_request(cycle)
        h.start(cycle, status, headers)
        return h, cycle, "http.response"
    h, cycle = open_harness(settings)
    start = {"type": "websocket.http.response.start", "status": status, "headers": headers}
    h.message_from_app(cycle, start)
    return h, cycle, "websocket.http.response"


def send_body(h: Harness, cycle: Any, prefix: str, body: bytes, more_body: bool = False) -> None:
    message = {"type": f"{prefix}.body", "body": body, "more_body": more_body}
    h.message_from_app(cycle, message)


def read_response(path: str, data: bytes) -> Response:
    if path == "http":
        return parse_response(data, eof=False)
    response, rest = split_handshake_response(data)
    assert rest == b""
    return response


def respond_on(
    path: str, settings: ProtocolSettings, headers: list[tuple[bytes, bytes]]
) -> Response:
    """The response the client reads when the app answers on ``path`` with ``headers``."""
    if path == "websocket-accept":
        h, cycle = open_harness(settings)
        response, _, rest = accept(h, cycle, headers=headers)
        assert rest == b""
        return response
    h, cycle, prefix = start_on(path, settings, 200, headers)
    send_body(h, cycle, prefix, b"hello")
    response = read_response(path, h.sent)
    assert response.body == b"hello"
    return response
