"""HTTP/1.1: bytes in, ASGI messages out, and back.

Theory of operation
-------------------
A reader parses requests (h11, or a fast path held to h11's results); ``HTTP11Writer`` writes
responses; this module decides.
One ``HTTP11Handler`` serves one connection and runs one request/response *cycle*
(``cycle.HTTPCycle``) at a time, so responses always go out in request order. Every decision
about the connection is taken here from the parsed request, in the handler's and the writer's
fields, never read back from the parser's state:

* **keep-alive**: an HTTP/1.1 request keeps the connection unless it says ``Connection:
  close``; an HTTP/1.0 one only if it says ``Connection: keep-alive`` (RFC 9112 §9.3). The
  response can still end it (its own ``Connection: close``, a body delimited by the close).
* **100-continue**: a request that expects it gets ``100 Continue`` when the app first asks for
  its body, and a response sent before that closes the connection (RFC 9110 §10.1.1).
* **pipelining**: a request that arrives while one is served waits in the parser's buffer,
  with reading paused, and is parsed by a fresh parser once the cycle ends (``_next_cycle``).

The reader (``http11_reader.py``) is made fresh for every request by ``new_reader``: h11, or
a fast path for the common request that defers to h11 for anything else.

The connection moves through phases, and each phase owns one deadline:

    IDLE ──first byte──▶ HEADERS ──request head parsed──▶ CYCLE ──response done──▶ IDLE
      │                    │                                │
      │ keep-alive         │ header timeout: 408            │ Connection: close, error,
      ▼ timeout            ▼                                ▼ app failure, shutdown
    LINGERING ──peer EOF or linger timeout──▶ CLOSED

    HEADERS ──a valid WebSocket handshake──▶ UPGRADED (a WebSocketHandler takes over)

A new connection starts in IDLE with the header timeout as its deadline, and one that sends
nothing by then is closed without a response: browsers open connections ahead of need, and a 408
on one of those would be taken for the answer to a request that was never sent. Empty lines
before a request line are dropped in IDLE (RFC 9112 §2.2) and leave the phase and its deadline
as they were, up to ``max_header_bytes`` of them.

The request side never raises: a malformed request becomes an error response with
``connection: close`` (h11 supplies the status hint: 400, 431, 501; ``request_problem`` adds the
checks h11 leaves to servers) and the connection closes. The response body and the
``RequestRejected`` reason say what was wrong in fixed words (``_H11_ERRORS``), never quoting
the request: h11's messages quote the offending bytes. The response side is ``cycle.py``'s.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any, NamedTuple

import h11

from .cycle import (
    HTTP_STEPS,
    IN_PROGRESS,
    UNWRITTEN,
    HTTPCycle,
    RequestState,
    ResponseState,
    completed,
    file_end,
    file_head,
    http_send_types,
)
from .errors import ASGIProtocolError, ClientDisconnected, ContentLengthMismatch
from .events import AppMisbehaved, Event, RequestRejected, SendFile, StartApp, WakeApp
from .extensions import offered
from .handler import Handler, Phase
from .http11_reader import END_OF_REQUEST, Body, Head, reader_factory
from .proxy import PROXY_HEADERS
from .responses import FIELD_NAME, FIELD_VALUE, REASONS, error_content, http_date
from .scope import ConnectionInfo, RequestHead, new_scope, target_authority
from .settings import ProtocolSettings
from .websocket import check_handshake, is_upgrade_to_websocket

# RFC 9112 §2.2: "a server that is expecting to receive and parse a request-line SHOULD ignore at
# least one empty line (CRLF) received prior to the request-line". A bare LF ends a line too
# (h11 reads it so).
_EMPTY_LINES = re.compile(rb"(?:\r?\n)*")

# h11's RemoteProtocolError messages for a request (by their start; the rest quotes the bytes it
# refused) and what the client and the log are told instead. Anything else: "malformed request".
_H11_ERRORS: tuple[tuple[str, str], ...] = (
    ("illegal request line", "malformed request line"),
    ("no request line received", "missing request line"),
    ("Illegal method characters", "malformed method"),
    ("Illegal target characters", "malformed request target"),
    ("illegal header line", "malformed header line"),
    ("continuation line at start of headers", "malformed header line"),
    ("Illegal header name", "malformed header name"),
    ("Illegal header value", "malformed header value"),
    ("Missing mandatory Host: header", "missing Host header"),
    ("Found multiple Host: headers", "more than one Host header"),
    ("bad Content-Length", "malformed Content-Length"),
    ("conflicting Content-Length headers", "conflicting Content-Length headers"),
    ("multiple Transfer-Encoding headers", "more than one Transfer-Encoding header"),
    ("Only Transfer-Encoding: chunked is supported", "unsupported Transfer-Encoding"),
    ("illegal chunk header", "malformed chunk size line"),
    ("malformed chunk footer", "chunk data not followed by CRLF"),
    ("Receive buffer too long", "request head too large"),
    ("peer closed connection without sending complete message body", "request body cut short"),
    ("peer unexpectedly closed connection", "connection closed mid-request"),
    ("Got data when expecting EOF", "data after the last request"),
)
# The same messages while a request body is being read: the lines h11 waits for then are a
# chunk size line or the trailer section.
_H11_BODY_ERRORS = {
    "request head too large": "chunk size line or trailer section too large",
    "malformed header line": "malformed trailer line",
}
MALFORMED_REQUEST = "malformed request"


def describe_h11_error(message: str, *, in_body: bool = False) -> str:
    """What ``h11.RemoteProtocolError(message)`` means, in fixed words that quote no input."""
    for start, description in _H11_ERRORS:
        if message.startswith(start):
            if in_body:
                return _H11_BODY_ERRORS.get(description, description)
            return description
    return MALFORMED_REQUEST


# ----------------------------------------------------------------------- the request side


# The request line's bytes besides the method and the target: the space between them,
# " HTTP/1.1\r\n", and the empty line that ends the head.
_REQUEST_LINE_EXTRA_BYTES = len(b" ") + len(b" HTTP/1.1\r\n") + len(b"\r\n")
# ": " and CRLF around every field line.
_FIELD_LINE_EXTRA_BYTES = 4


class HeadFacts(NamedTuple):
    """What the server's checks and decisions need from a request head, found in one pass."""

    head_bytes: int  # the head's size as sent, give or take optional whitespace
    transfer_encoding: bool
    content_length: bool
    connection: bytes  # every Connection field's value, joined with commas
    upgrade: bytes
    expect: bytes
    proxied: bool  # a header a trusted proxy may have set is present


def head_facts(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]) -> HeadFacts:
    head_bytes = len(method) + len(target) + _REQUEST_LINE_EXTRA_BYTES
    transfer_encoding = content_length = proxied = False
    connection = upgrade = expect = b""
    for name, value in headers:
        head_bytes += len(name) + len(value) + _FIELD_LINE_EXTRA_BYTES
        if name == b"transfer-encoding":
            transfer_encoding = True
        elif name == b"content-length":
            content_length = True
        elif name == b"connection":
            connection = value if not connection else connection + b"," + value
        elif name == b"upgrade":
            upgrade = value
        elif name == b"expect":
            expect = value if not expect else expect + b"," + value
        elif name in PROXY_HEADERS:
            proxied = True
    return HeadFacts(
        head_bytes, transfer_encoding, content_length, connection, upgrade, expect, proxied
    )


def request_problem(
    version: bytes, method: str, target: bytes, facts: HeadFacts, max_header_bytes: int
) -> tuple[int, str] | None:
    """Why a request h11 parsed is refused anyway, as (status, reason), or None."""
    if version[:2] != b"1.":
        # RFC 9110 §15.6.6: "The 505 (HTTP Version Not Supported) status code indicates that
        # the server does not support, or refuses to support, the major version of HTTP that
        # was used in the request message."
        return 505, "only HTTP/1.0 and HTTP/1.1 are served"
    if target[:1] != b"/" and target_authority(target) == b"":
        # RFC 9110 §4.2.1: "A sender MUST NOT generate an "http" URI with an empty host
        # identifier. A recipient that processes such a URI reference MUST reject it as
        # invalid."
        return 400, "absolute-form target without a host"
    if facts.head_bytes > max_header_bytes:
        # h11 enforces max_incomplete_event_size only on a head it is still waiting for; a
        # head that arrived whole is measured here, so the limit holds however it arrived.
        # RFC 6585 §5: "The 431 status code indicates that the server is unwilling to process
        # the request because its header fields are too large."
        return 431, "request head too large"
    if facts.transfer_encoding and facts.content_length:
        # RFC 9112 §6.1: "A server MAY reject a request that contains both Content-Length and
        # Transfer-Encoding or process such a request in accordance with the Transfer-Encoding
        # alone. Regardless, the server MUST close the connection after responding to such a
        # request to avoid the potential attacks." It is rejected (400), and the error
        # response closes.
        return 400, "both Transfer-Encoding and Content-Length"
    if facts.transfer_encoding and version == b"1.0":
        # RFC 9112 §6.1: "A server or client that receives an HTTP/1.0 message containing a
        # Transfer-Encoding header field MUST treat the message as if the framing is faulty,
        # even if a Content-Length is present, and close the connection after processing the
        # message."
        return 400, "Transfer-Encoding in an HTTP/1.0 request"
    if method == "CONNECT":
        # RFC 9110 §15.6.2: "The 501 (Not Implemented) status code indicates that the server
        # does not support the functionality required to fulfill the request." policy: this
        # server is an origin server, not a proxy: it opens no tunnels (RFC 9110 §9.3.6).
        return 501, "CONNECT is not supported"
    return None


def h2c_upgrade(
    version: bytes, facts: HeadFacts, headers: list[tuple[bytes, bytes]]
) -> bytes | None:
    """The HTTP2-Settings of a request that asks to upgrade to HTTP/2 over cleartext and may
    (RFC 7540 §3.2), or None: serve it as HTTP/1.1, as a server that ignores the upgrade does.

    Only a request without a body is upgraded: one with a body would have to be read whole
    before the switch, and RFC 7540 §3.2 lets a server decline."""
    if version != b"1.1" or facts.transfer_encoding or b"h2c" not in _comma_values(facts.upgrade):
        return None
    tokens = _comma_values(facts.connection)
    if b"upgrade" not in tokens or b"http2-settings" not in tokens:
        return None
    values: list[bytes] = []
    for name, value in headers:
        if name == b"http2-settings":
            values.append(value)
        elif name == b"content-length" and value.strip() != b"0":
            return None
    # RFC 7540 §3.2.1: "A server MUST NOT upgrade the connection to HTTP/2 if this header
    # field is not present or if more than one is present"; its value is a SETTINGS payload
    # in base64url, six bytes a setting.
    if len(values) != 1:
        return None
    value = values[0].strip()
    try:
        payload = base64.urlsafe_b64decode(value + b"=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None
    return value if len(payload) % 6 == 0 else None


def has_token(value: bytes, token: bytes) -> bool:
    """Whether a comma-separated header value lists ``token`` (case-insensitive)."""
    return any(part.strip().lower() == token for part in value.split(b","))


# ---------------------------------------------------------------------- the response side

# How a response body is delimited on the wire (RFC 9112 §6.3).
_NO_CONTENT = 0  # HEAD, 204, 304: nothing is written
_LENGTH = 1  # Content-Length: the body as is
_CHUNKED = 2  # Transfer-Encoding: chunked
_CLOSE_DELIMITED = 3  # an HTTP/1.0 client without a length: the close ends the body

_NamedHeader = tuple[bytes, bytes, bytes]  # (name as sent, lowercased name, value)


class HTTP11Writer:
    """HTTP/1.1 responses as bytes, the way h11 writes them, but for decisions taken here.

    The app's headers are validated once (``prepare``), refused where h11 refuses them; the
    head, its framing headers and the body framing follow h11's writer byte for byte, except
    that an HTTP/1.0 client that asked for keep-alive keeps its connection. The handler sets
    the per-request fields before the app starts (``begin``). ``test_response_oracle.py``
    holds the bytes and the refusals to h11's.
    """

    __slots__ = (
        "_framing",
        "_output",
        "expecting_continue",
        "http_10",
        "keep_alive_10",
        "must_close",
        "request_keep_alive",
        "settings",
        "shutting_down",
    )

    def __init__(self, output: list[bytes], settings: ProtocolSettings) -> None:
        self._output = output
        self.settings = settings
        self._framing = _NO_CONTENT
        self.request_keep_alive = True  # the request allows another on the connection
        self.keep_alive_10 = False  # an HTTP/1.0 request that asked for keep-alive
        self.http_10 = False  # the client speaks HTTP/1.0: no chunked encoding
        self.expecting_continue = False  # the client waits for 100 before sending its body
        self.shutting_down = False  # the server serves no further request
        self.must_close = False  # the response written ends the connection

    def begin(self, version: bytes, facts: HeadFacts) -> None:
        """Decide, from the request, what the connection does after its response."""
        connection = facts.connection
        self.http_10 = version == b"1.0"
        if self.http_10:
            # RFC 9112 Appendix C.2.2: an HTTP/1.0 client asks for a persistent connection
            # with "Connection: keep-alive"; the response then says "keep-alive" too.
            self.keep_alive_10 = bool(connection) and has_token(connection, b"keep-alive")
            self.request_keep_alive = self.keep_alive_10 and not has_token(connection, b"close")
            # RFC 9110 §10.1.1: "A server that receives a 100-continue expectation in an
            # HTTP/1.0 request MUST ignore that expectation."
            self.expecting_continue = False
        else:
            # RFC 9112 §9.3: "If the "close" connection option is present ..., the connection
            # will not persist after the current response; else, If the received protocol is
            # HTTP/1.1 (or later), the connection will persist after the current response".
            self.keep_alive_10 = False
            self.request_keep_alive = not connection or not has_token(connection, b"close")
            self.expecting_continue = bool(facts.expect) and has_token(
                facts.expect, b"100-continue"
            )
        # RFC 9112 §9.3, quoted above: otherwise "The connection will close after the current
        # response".
        self.must_close = not self.request_keep_alive

    def prepare(self, status: int, headers: list[tuple[bytes, bytes]], message_type: str) -> Any:
        return validated_headers(headers, message_type)

    def write_head(self, cycle: HTTPCycle) -> None:
        headers: list[_NamedHeader] = cycle.head  # type: ignore[assignment]
        if self.shutting_down or self.expecting_continue:
            # RFC 9110 §10.1.1: "A server that responds with a final status code before reading
            # the entire request content SHOULD indicate whether it intends to close the
            # connection ... or continue reading the request content." policy: it closes, rather
            # than guess whether a body the client was told to hold back will still come. A
            # server that is stopping closes too, and says so (RFC 9112 §9.6).
            headers.append((b"connection", b"connection", b"close"))
        elif self.keep_alive_10:
            headers.append((b"connection", b"connection", b"keep-alive"))
        self.expecting_continue = False
        # The lowercased names, once: framing, Connection and Host are looked up in them.
        names = {name for _, name, _ in headers}
        headers, need_close = self._frame(cycle, headers, names)
        # RFC 9112 §9.6: "A server that receives a "close" connection option MUST initiate
        # closure of the connection ... after it sends the final response to the request that
        # contained the "close" connection option. The server SHOULD send a "close" connection
        # option in its final response on that connection."
        if not self.request_keep_alive or need_close:
            tokens = {b"close"}
            for _, name, value in headers:
                if name == b"connection":
                    tokens.update(_comma_values(value))
            tokens.discard(b"keep-alive")
            headers = [h for h in headers if h[1] != b"connection"]
            headers += [(b"Connection", b"connection", token) for token in sorted(tokens)]
            self.must_close = True  # RFC 9112 §9.6, quoted above
        else:
            # The app's own "Connection: close" ends the connection too. RFC 9112 §9.6: "A
            # server that sends a "close" connection option MUST initiate closure of the
            # connection ... after it sends the response containing the "close" connection
            # option."
            self.must_close = b"connection" in names and any(
                name == b"connection" and b"close" in _comma_values(value)
                for _, name, value in headers
            )
        status = cycle.status
        self._output.append(
            _head_bytes(status, REASONS.get(status, b""), headers, has_host=b"host" in names)
        )

    def _frame(
        self, cycle: HTTPCycle, headers: list[_NamedHeader], names: set[bytes]
    ) -> tuple[list[_NamedHeader], bool]:
        """Choose the body framing (RFC 9112 §6.3) and the framing headers that say it; True
        when the framing is the close. The headers are those a GET would get, for HEAD too
        (RFC 9110 §9.3.2); ``names`` are their lowercased names."""
        status = cycle.status
        # RFC 9112 §6.3: "any response with a 1xx (Informational), 204 (No Content), or 304 (Not
        # Modified) status code is always terminated by the first empty line after the header
        # fields"; the app's framing fields are passed on as they are.
        if status == 204 or status == 304:
            self._framing = _NO_CONTENT
            return headers, False
        # RFC 9112 §6.3: "If a valid Content-Length header field is present without
        # Transfer-Encoding, its decimal value defines the expected message body length".
        if b"content-length" in names and b"transfer-encoding" not in names:
            self._framing = _NO_CONTENT if cycle.no_body else _LENGTH
            return headers, False
        headers = [h for h in headers if h[1] != b"content-length" and h[1] != b"transfer-encoding"]
        if self.http_10:
            # RFC 9112 §6.1: "A server MUST NOT send a response containing Transfer-Encoding
            # unless the corresponding request indicates HTTP/1.1 (or later minor revisions)";
            # §6.3: then "the message body length is determined by the number of octets
            # received prior to the server closing the connection."
            self._framing = _NO_CONTENT if cycle.no_body else _CLOSE_DELIMITED
            return headers, cycle.method != "HEAD"
        # ASGI HTTP spec, "HTTP Connection Scope": "a response that is given to the server with
        # no Content-Length may be chunked as the server sees fit".
        headers.append((b"Transfer-Encoding", b"transfer-encoding", b"chunked"))
        self._framing = _NO_CONTENT if cycle.no_body else _CHUNKED
        return headers, False

    def write_body(self, data: bytes) -> None:
        framing = self._framing
        if framing == _CHUNKED:
            # An empty chunk would read as the last one.
            if data:
                self._output.append(b"%x\r\n%s\r\n" % (len(data), data))
        elif framing != _NO_CONTENT:
            self._output.append(data)

    def write_end(self, trailers: list[tuple[bytes, bytes]] | None = None) -> None:
        """The end of the body; ``trailers`` (checked by the caller) go in the chunked
        coding's trailer section, the only framing that has one (RFC 9112 §7.1.2); with any
        other they are dropped."""
        if self._framing == _CHUNKED:
            if trailers:
                lines = [b"0\r\n"]
                lines += [b"%s: %s\r\n" % (name, value) for name, value in trailers]
                lines.append(b"\r\n")
                self._output.append(b"".join(lines))
            else:
                self._output.append(b"0\r\n\r\n")
        # ASGI HTTP spec, "Response Body": the response is complete, "and any further messages
        # on the channel will be ignored".
        self._framing = _NO_CONTENT

    def begin_file(self, count: int) -> None:
        """``count`` body bytes follow from the driver: a chunk's size line comes first."""
        if self._framing == _CHUNKED:
            self._output.append(b"%x\r\n" % count)

    def end_file(self) -> None:
        if self._framing == _CHUNKED:
            self._output.append(b"\r\n")

    def push(self, path: str, headers: list[tuple[bytes, bytes]], now: float) -> None:
        raise ASGIProtocolError(
            "http.response.push: HTTP/1.1 has no server push (ASGI extensions, HTTP/2 Server "
            "Push); the extension is offered only on HTTP/2"
        )

    def write_interim(
        self, status: int, headers: list[tuple[bytes, bytes]], message_type: str = ""
    ) -> None:
        """A 1xx response: ``100 Continue``, ``103 Early Hints``, or the ``101`` that accepts
        a WebSocket (on ``message_type``)."""
        if self.http_10:
            # RFC 9110 §15.2: "A server MUST NOT send a 1xx response to an HTTP/1.0 client."
            return
        named = validated_headers(headers, message_type)
        if status == 101:
            self.must_close = True  # the connection is no longer HTTP's
        elif status == 100:
            self.expecting_continue = False
        self._output.append(_head_bytes(status, REASONS.get(status, b""), named))

    def write_error(
        self,
        status: int,
        detail: str,
        now: float,
        *,
        head_only: bool = False,
        extra_headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        """A whole ``connection: close`` response the server composes itself; no content for
        a HEAD request (RFC 9110 §9.3.2: the headers a GET would get, no content)."""
        headers, body = error_content(status, detail)
        settings = self.settings
        lines = [b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, b""))]
        # The defaults of cycle.default_headers, where RFC 9110 §10.2.4 and §6.6.1 are quoted.
        if settings.server_header:
            lines.append(b"server: sansio-asgi\r\n")
        if settings.date_header:
            lines.append(b"date: " + http_date(now) + b"\r\n")
        lines += [name + b": " + value + b"\r\n" for name, value in headers]
        lines += [name + b": " + value + b"\r\n" for name, value in extra_headers]
        lines.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        if not head_only:
            lines.append(body)
        self._output.append(b"".join(lines))
        # policy: a response the server composes ends the connection: it answers a request
        # that could not be read whole (where the next request starts is unknown), a timeout or
        # a failed app. RFC 9112 §9.6, quoted in write_head, makes its "close" binding.
        self.must_close = True


_CONTENT_LENGTH = re.compile(rb"[0-9]{1,20}")  # h11 allows at most 20 digits

# Response fields already found well formed, (name, value) -> lowercased name: most responses
# repeat the same few (content-type, server, a date per second), and a lookup costs less than
# the two matches. Emptied when full, so its size stays bounded whatever the apps send. policy:
# 512 entries hold every field a typical app repeats; the keys are the apps' own objects.
_CHECKED_FIELDS: dict[tuple[bytes, bytes], bytes] = {}
_CHECKED_FIELDS_MAX = 512


def validated_headers(headers: list[tuple[bytes, bytes]], message_type: str) -> list[_NamedHeader]:
    """The app's headers with both names (as sent, for writing; lowercased, to match), checked
    in one pass and refused where h11 refuses them (the response oracle property holds the two
    together): a Content-Length is one number, given once or repeated equal."""
    named: list[_NamedHeader] = []
    length = b""
    chunked = False
    checked = _CHECKED_FIELDS
    for header in headers:
        name, value = header
        key: Any = header
        try:
            lowered = checked.get(key)
        except (TypeError, ValueError):  # unhashable (a bytearray): checked every time
            lowered = key = None
        if lowered is None:
            # RFC 9110 §5.5: "Field values containing CR, LF, or NUL characters are invalid and
            # dangerous"; §5.1: a field name is a token. Refused as h11 refuses them.
            if not FIELD_NAME.fullmatch(name):
                raise _bad_header(message_type, f"Illegal header name {name!r}")
            if not FIELD_VALUE.fullmatch(value):
                raise _bad_header(message_type, f"Illegal header value {value!r}")
            lowered = name.lower()
            if key is not None:
                if len(checked) >= _CHECKED_FIELDS_MAX:
                    checked.clear()
                checked[key] = lowered
        # RFC 9110 §8.6: "Content-Length = 1*DIGIT"; policy: a list of equal values, or the
        # field repeated equal, is written once, and anything else refused, as h11 does.
        if lowered == b"content-length":
            lengths = {part.strip() for part in value.split(b",")}
            if len(lengths) != 1:
                raise _bad_header(message_type, "conflicting Content-Length headers")
            value = lengths.pop()
            if not _CONTENT_LENGTH.fullmatch(value):  # RFC 9110 §8.6, quoted above
                raise _bad_header(message_type, "bad Content-Length")
            if length:  # repeated: the policy above
                if value != length:
                    raise _bad_header(message_type, "conflicting Content-Length headers")
                continue  # said twice: written once
            length = value
        elif lowered == b"transfer-encoding":
            # policy: h11's rule (only chunked, once), so that the bytes are its writer's. An
            # app's own Transfer-Encoding is dropped before this (validate.headers; ASGI HTTP
            # spec, "Response Start": the server "must ignore it").
            value = value.lower()
            if chunked or value != b"chunked":
                raise _bad_header(message_type, "only one Transfer-Encoding: chunked is supported")
            chunked = True
        named.append((name, lowered, value))
    return named


def _bad_header(message_type: str, problem: str) -> ASGIProtocolError:
    return ASGIProtocolError(
        f"{message_type}: {problem} (RFC 9110 §5: field names are tokens, and values contain "
        "no CR, LF or NUL and no leading or trailing whitespace)"
    )


def _comma_values(value: bytes) -> list[bytes]:
    """A comma-separated field value's members, lowercased (RFC 9110 §5.6.1)."""
    return [part.strip() for part in value.lower().split(b",") if part.strip()]


def _head_bytes(
    status: int, reason: bytes, headers: list[_NamedHeader], *, has_host: bool = True
) -> bytes:
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    if has_host:
        # h11 writes a host field first wherever it stands; a response rarely has one.
        lines += [b"%s: %s\r\n" % (raw, value) for raw, name, value in headers if name == b"host"]
        lines += [b"%s: %s\r\n" % (raw, value) for raw, name, value in headers if name != b"host"]
    else:
        lines += [b"%s: %s\r\n" % (raw, value) for raw, _, value in headers]
    lines.append(b"\r\n")
    return b"".join(lines)


# --------------------------------------------------------------------------- the handler

UpgradeHandler = Callable[[RequestHead, bytes, HTTP11Writer, float], None]
# An accepted "Upgrade: h2c": the request (stream 1), its HTTP2-Settings, the bytes behind it.
H2cHandler = Callable[[RequestHead, bytes, bytes, float], None]

# RFC 9113 §8.2.2: "An endpoint MUST NOT generate an HTTP/2 message containing
# connection-specific header fields"; the upgrade's own fields (RFC 7540 §3.2: Upgrade,
# HTTP2-Settings) are about the HTTP/1.1 connection only.
_H2C_HOP_FIELDS = frozenset(
    {b"connection", b"upgrade", b"http2-settings", b"keep-alive", b"proxy-connection"}
)
_SWITCHING_TO_H2C = (
    b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n"
)


class HTTP11Handler(Handler):
    """The HTTP/1.1 handler of a ``ServerProtocol``; see the module docstring."""

    PAUSES_WHILE_WRITING_PAUSED = False  # see handler.py

    __slots__ = (
        "_body_clock_restart",
        "_cycle",
        "_empty_line_bytes",
        "_on_h2c",
        "_on_upgrade",
        "_pending_cr",
        "_pipeline_waiting",
        "_reader",
        "_steps",
        "_writer",
        "new_reader",
        "requests",
    )

    def __init__(
        self,
        settings: ProtocolSettings,
        connection: ConnectionInfo,
        *,
        output: list[bytes],
        events: list[Event],
        now: float,
        on_upgrade: UpgradeHandler | None = None,
        on_h2c: H2cHandler | None = None,
    ) -> None:
        super().__init__(
            settings,
            connection,
            output=output,
            events=events,
            phase=Phase.IDLE,
            deadline=now + settings.header_timeout_s,
        )
        self._on_upgrade = on_upgrade
        self._on_h2c = on_h2c
        self.new_reader = reader_factory(settings.http_parser, settings.max_header_bytes)
        self._reader = self.new_reader()
        self._writer = HTTP11Writer(output, settings)
        self._cycle: HTTPCycle | None = None
        self.requests = 0  # served on this connection
        self._pipeline_waiting = False  # a request waits behind the current one
        self._body_clock_restart = False  # reading resumed: the client gets a full period
        # Empty lines dropped while waiting for this request line; a CR that ended a read.
        self._empty_line_bytes = 0
        self._pending_cr = False

    # ------------------------------------------------------------------ network side

    def receive_data(self, data: bytes, now: float) -> None:
        phase = self.phase
        if not data or phase is Phase.LINGERING or phase is Phase.CLOSED:
            return  # lingering: what arrives now is read and dropped
        if phase is Phase.IDLE:
            if data[0] in b"\r\n" or self._pending_cr:
                data = self._skip_empty_lines(data, now)
                if not data:
                    return
            self.phase = Phase.HEADERS
            self._deadline = now + self._settings.header_timeout_s
        elif phase is Phase.CYCLE:
            cycle = self._cycle
            assert cycle is not None
            if cycle.request is not RequestState.RECEIVING:
                self._after_request(data)
                return
        elif phase is Phase.UPGRADED:
            return
        self._reader.receive_data(data)
        self._process(now)

    def _after_request(self, data: bytes) -> None:
        """Bytes behind a whole request, while its response is still to come: the next
        request, kept unparsed with reading paused until this cycle ends; or, after a request
        that closes the connection, dropped (RFC 9112 §9.6: a request after one with
        "Connection: close" is never answered)."""
        if self._writer.request_keep_alive:
            self._reader.receive_data(data)
            if not self._pipeline_waiting:
                self._pipeline_waiting = True
                self._update_reading()

    def _skip_empty_lines(self, data: bytes, now: float) -> bytes:
        """Drop the empty lines (CRLF or LF) that start ``data``, with the request line yet to
        come (RFC 9112 §2.2); return the rest. A CR at the very end waits for the next read to
        show whether an LF follows; a bare CR is left for h11 to refuse. More than
        ``max_header_bytes`` of empty lines gets 400, as a head that large would get 431."""
        if self._pending_cr:
            self._pending_cr = False
            data = b"\r" + data
        match = _EMPTY_LINES.match(data)
        assert match is not None  # the pattern matches the empty string
        end = match.end()
        self._empty_line_bytes += end
        if self._empty_line_bytes > self._settings.max_header_bytes:
            # policy: RFC 9112 §2.2 asks a server to ignore "at least one empty line"; more
            # than a head's worth of them is no request, and gets the 400 of a malformed one.
            self._respond_with_error(400, "too many empty lines before the request line", now)
            return b""
        rest = data[end:]
        if rest == b"\r":
            self._pending_cr = True
            return b""
        return rest

    def receive_eof(self, now: float) -> None:
        """The client closed its side. ASGI has no half-closed state: the client is gone."""
        if self.phase is Phase.CLOSED:
            return
        if self._cycle is not None:
            self._abandon(self._cycle, now)
        # policy: RFC 9112 §9.6 notes that "a TCP connection that is half-closed by the client
        # does not delimit a request message, nor does it imply that the client is no longer
        # interested in a response"; but ASGI has no half-closed state to give the app: the
        # client is taken as gone.
        self._to_closed()

    # ------------------------------------------------------------------ time

    def _deadline_passed(self, now: float) -> None:
        phase = self.phase
        if phase is Phase.IDLE:
            # RFC 9112 §9.5: "Servers will usually have some timeout value beyond which they
            # will no longer maintain an inactive connection." "A client or server that wishes
            # to time out SHOULD issue a graceful close on the connection."
            self._linger(now)
        elif phase is Phase.HEADERS:
            # RFC 9110 §15.5.9: 408 "the server did not receive a complete request message
            # within the time that it was prepared to wait".
            self._respond_with_error(408, "the request head did not arrive in time", now)
        elif phase is Phase.CYCLE:
            self._body_timer(now)
        elif phase is Phase.LINGERING:
            self._to_closed()

    def _body_timer(self, now: float) -> None:
        """The request-body deadline passed: a slow client (slowloris on bodies) gets 408."""
        cycle = self._cycle
        timeout = self._settings.request_body_timeout_s
        if cycle is None or cycle.request is not RequestState.RECEIVING or timeout is None:
            self._deadline = None
        elif self.reading_paused or cycle.body or self._body_clock_restart:
            # The app is the slow one, or reading just resumed: the client gets a full period.
            self._body_clock_restart = False
            self._deadline = now + timeout
        elif cycle.response is ResponseState.DONE:
            # RFC 9112 §9.3: "A server MUST read the entire request message body or close the
            # connection after sending its response": the rest stopped coming, so close.
            self._linger(now)
        else:
            # RFC 9110 §15.5.9: 408 "indicates that the server did not receive a complete
            # request message within the time that it was prepared to wait".
            self._respond_with_error(408, "the request body stopped arriving", now)

    def shutdown(self, now: float) -> None:
        """Serve no further requests: close when idle, or after the current response.

        An idle connection is not closed under a request that may be on its way: one just
        accepted, whose request is almost certainly coming, gets ``linger_timeout_s``; one kept
        alive between requests gets ``shutdown_idle_grace_s``. A request that arrives meanwhile
        is answered with ``connection: close``. Either way the connection closes in IDLE when
        the grace ends (``handle_timer``).
        """
        self._writer.shutting_down = True
        if self.phase is Phase.IDLE:
            settings = self._settings
            wait_s = settings.shutdown_idle_grace_s if self.requests else settings.linger_timeout_s
            grace = now + wait_s
            self._deadline = grace if self._deadline is None else min(self._deadline, grace)

    # ------------------------------------------------------------------ parsing

    def _process(self, now: float) -> None:
        reader = self._reader
        while True:
            try:
                event = reader.next_event()
            except h11.RemoteProtocolError as exc:
                detail = describe_h11_error(str(exc), in_body=self._cycle is not None)
                self._respond_with_error(exc.error_status_hint, detail, now)
                return
            kind = type(event)
            if kind is Body:
                self._body_received(event.data, now)  # type: ignore[union-attr]
                if self.phase is not Phase.CYCLE:
                    return  # closing (too much unread body): nothing behind it is served
            elif kind is Head:
                if not self._begin_cycle(event, now):  # type: ignore[arg-type]
                    return
            elif event is END_OF_REQUEST:
                # What follows is the next request's, read by a fresh reader when this cycle
                # ends.
                self._request_complete(now)
                return
            else:  # NEED_DATA
                return

    def _begin_cycle(self, request: Head, now: float) -> bool:
        """A request head arrived: refuse it, hand the connection over, or start the app."""
        settings = self._settings
        version = request.http_version
        headers = request.headers  # (lowercased name, value) pairs
        method = request.method.decode("ascii")
        facts = head_facts(request.method, request.target, headers)
        problem = request_problem(version, method, request.target, facts, settings.max_header_bytes)
        upgrade = facts.upgrade
        if problem is None and upgrade and self._on_upgrade and is_upgrade_to_websocket(upgrade):
            problem = check_handshake(method, version, headers)
            if problem is None:
                self._upgrade(request, headers, facts, now)
                return False
        if problem is None and upgrade and self._on_h2c is not None:
            settings_value = h2c_upgrade(version, facts, headers)
            if settings_value is not None:
                self._upgrade_h2c(request, headers, settings_value, now)
                return False
        if problem is not None:
            status, reason = problem
            # RFC 6455 §4.2.2: for a version it does not understand, the server sends "an
            # appropriate HTTP error code (such as 426 Upgrade Required) and a
            # |Sec-WebSocket-Version| header field indicating the version(s) the server is
            # capable of understanding".
            extra = [(b"sec-websocket-version", b"13")] if status == 426 else []
            self._respond_with_error(status, reason, now, extra_headers=extra)
            return False
        self.requests += 1
        # RFC 9110 §6.2: "A recipient that receives a message with a major version number that
        # it implements and a minor version number higher than what it implements SHOULD
        # process the message as if it were in the highest minor version within that major
        # version to which the recipient is conformant": HTTP/1.1.
        head = RequestHead(method, request.target, "1.0" if version == b"1.0" else "1.1", headers)
        self._writer.begin(version, facts)
        cycle = HTTPCycle(
            self, method=method, target=request.target, http_version=head.http_version, now=now
        )
        cycle.scope, cycle.client = new_scope(
            head, self._connection, settings, proxied=facts.proxied
        )
        cycle.scope_headers = cycle.scope["headers"]  # the log's request headers are the app's
        names, cycle.offered = offered(head.http_version, early_hints=settings.early_hints)
        extensions = cycle.scope["extensions"]
        for name in names:
            extensions[name] = {}
        admission = settings.admission
        if admission is not None:
            if not admission.try_enter():
                # RFC 9110 §15.6.4: 503 "indicates that the server is currently unable to
                # handle the request due to a temporary overload"; policy: --limit-concurrency
                # sets what overload is.
                self._respond_with_error(503, "the server is at its concurrency limit", now)
                return False
            cycle.admitted = True
        self._cycle = cycle
        self.phase = Phase.CYCLE
        timeout = settings.request_body_timeout_s
        self._deadline = None if timeout is None else now + timeout
        self._events.append(StartApp(cycle=cycle, scope=cycle.scope))
        return True

    def _upgrade(
        self, request: Head, headers: list[tuple[bytes, bytes]], facts: HeadFacts, now: float
    ) -> None:
        """A valid WebSocket handshake: admitted, the connection is the WebSocket handler's,
        with whatever arrived behind the handshake."""
        admission = self._settings.admission
        if admission is not None and not admission.try_enter():
            # RFC 9110 §15.6.4 (503, "a temporary overload"), as for a request: policy: a
            # WebSocket session counts toward --limit-concurrency like an app call.
            self._respond_with_error(503, "the server is at its concurrency limit", now)
            return
        # The handshake has no body (check_handshake): its end is already in the buffer.
        end = self._reader.next_event()
        assert end is END_OF_REQUEST, end
        early = self._reader.trailing_data
        self._writer.begin(request.http_version, facts)
        self.phase = Phase.UPGRADED
        self._deadline = None
        assert self._on_upgrade is not None
        head = RequestHead(request.method.decode("ascii"), request.target, "1.1", headers)
        self._on_upgrade(head, early, self._writer, now)

    def _upgrade_h2c(
        self, request: Head, headers: list[tuple[bytes, bytes]], settings_value: bytes, now: float
    ) -> None:
        """RFC 7540 §3.2: 101, then the connection is HTTP/2's and the request is stream 1."""
        end = self._reader.next_event()  # no body (h2c_upgrade): its end is in the buffer
        assert end is END_OF_REQUEST, end
        early = self._reader.trailing_data
        self._output.append(_SWITCHING_TO_H2C)
        self.phase = Phase.UPGRADED
        self._deadline = None
        assert self._on_h2c is not None
        # RFC 9113 §8.2.2: the upgrade's own fields do not carry over to HTTP/2.
        fields = [(name, value) for name, value in headers if name not in _H2C_HOP_FIELDS]
        head = RequestHead(request.method.decode("ascii"), request.target, "2", fields)
        self._on_h2c(head, settings_value, early, now)

    def _body_received(self, data: bytes, now: float) -> None:
        cycle = self._cycle
        assert cycle is not None
        self._writer.expecting_continue = False  # the client sent its body without waiting
        if cycle.response is ResponseState.DONE:
            cycle.discarded_bytes += len(data)
            if cycle.discarded_bytes > self._settings.discard_body_limit_bytes:
                # RFC 9112 §9.3: "A server MUST read the entire request message body or close
                # the connection after sending its response"; policy: it reads and drops up to
                # discard_body_limit_bytes to keep the connection, then closes.
                self._linger(now)
            return
        cycle.body.append(data)
        cycle.body_bytes += len(data)
        timeout = self._settings.request_body_timeout_s
        if timeout is not None:
            self._deadline = now + timeout
        self._wake(cycle)
        self._update_reading()

    def _request_complete(self, now: float) -> None:
        cycle = self._cycle
        assert cycle is not None
        cycle.request = RequestState.COMPLETE
        self._writer.expecting_continue = False
        self._deadline = None
        if self._writer.request_keep_alive and self._reader.trailing_data:
            self._pipeline_waiting = True  # the next request is here already
            self._update_reading()
        if cycle.response is ResponseState.DONE:
            self._next_cycle(now)
        else:
            self._wake(cycle)

    def _wants_pause(self) -> bool:
        """A pipelined request waits, or the unread body is above the high-water mark; once
        paused for the body, reading resumes when the app has taken it below half of it."""
        cycle = self._cycle
        if self._pipeline_waiting:
            return True
        if cycle is None:
            return False
        high_water = self._settings.body_buffer_high_water_bytes
        return cycle.body_bytes > (high_water // 2 if self.reading_paused else high_water)

    def _reading_resumed(self) -> None:
        self._body_clock_restart = True

    # ------------------------------------------------------------------ app side: receive

    def message_for_app(self, cycle: HTTPCycle, now: float | None = None) -> dict[str, Any] | None:
        """The next message for the app's ``receive()``, or None: wait for ``WakeApp``."""
        request = cycle.request
        if request is RequestState.GONE or cycle.response is ResponseState.DONE:
            # ASGI HTTP spec, Disconnect: sent if receive is called after a response has
            # been sent or after the connection has been closed.
            return {"type": "http.disconnect"}
        if cycle.body:
            # h11 hands out bytearray slices; ASGI requires bytes.
            body = bytes(cycle.body[0]) if len(cycle.body) == 1 else b"".join(cycle.body)
            cycle.body.clear()
            cycle.body_bytes = 0
            more_body = request is RequestState.RECEIVING
            if not more_body:
                cycle.request = RequestState.DELIVERED
            if self.reading_paused:
                self._update_reading()
            return {"type": "http.request", "body": body, "more_body": more_body}
        if request is RequestState.COMPLETE:
            cycle.request = RequestState.DELIVERED
            return {"type": "http.request", "body": b"", "more_body": False}
        if (
            request is RequestState.RECEIVING
            and self._writer.expecting_continue
            and cycle is self._cycle
        ):
            # RFC 9110 §10.1.1: the client waits for 100 before sending its body; send it only
            # now that the app asks for the body.
            self._writer.write_interim(100, [])
        cycle.app_waiting = True
        return None

    # ------------------------------------------------------------------ app side: send

    def message_from_app(
        self, cycle: HTTPCycle, message: MutableMapping[str, Any], now: float
    ) -> None:
        """Take one message from the app's ``send()``; raise for a message the spec forbids."""
        steps = HTTP_STEPS
        step = steps.step(cycle, message)
        if step is None:
            send_types = http_send_types(cycle.offered)
            raise steps.refusal(cycle, message, send_types, "an http connection")
        try:
            done = step(steps, cycle, message, self._writer, now)
        except ContentLengthMismatch:
            # RFC 9112 §6.3: with a Content-Length, "If the sender closes the connection or the
            # recipient times out before the indicated number of octets are received, the
            # recipient MUST consider the message to be incomplete and close the connection":
            # closing is how the client learns the body is not whole; bytes beyond it would be
            # read as the next response.
            self._finish_response(cycle, now, complete=False)
            self._linger(now)
            raise
        if done:
            self._finish_response(cycle, now, complete=True)
        elif cycle.file is not None:
            self._events.append(cycle.file.event)  # the driver answers with file_opened

    def file_opened(self, cycle: HTTPCycle, fd: int, offset: int, count: int, now: float) -> None:
        """The driver opened the pending file: ``count`` bytes from ``offset``."""
        if cycle.file is None:
            # policy: the driver broke spec/driver-contract.md, not the app.
            raise ASGIProtocolError("file_opened without a pending file body (driver contract)")
        if cycle.gone:
            # ASGI HTTP spec, "Disconnected Client": "If send() is called on a closed connection
            # the server should raise a server-specific subclass of OSError."
            cycle.file = None
            raise ClientDisconnected("the client disconnected")
        try:
            send = file_head(cycle, count, self._writer)
        except ContentLengthMismatch:
            # As in message_from_app: RFC 9112 §6.3, a body short of its length ends the
            # connection.
            cycle.file = None
            self._finish_response(cycle, now, complete=False)
            self._linger(now)
            raise
        if send:
            self._events.append(SendFile(cycle=cycle, fd=fd, offset=offset, count=count))
        else:
            self._file_done(cycle, now)

    def file_failed(self, cycle: HTTPCycle, exc: BaseException, now: float) -> None:
        """The driver could not open the pending file; the response is as it was before the
        message, so the app may still answer (a 404 or a 500 of its own)."""
        cycle.file = None

    def file_sent(self, cycle: HTTPCycle, now: float) -> None:
        """The driver has written the bytes of the pending file."""
        if cycle.file is None:
            # policy: the driver broke spec/driver-contract.md, not the app.
            raise ASGIProtocolError("file_sent without a file being sent (driver contract)")
        if cycle.gone:
            # ASGI HTTP spec, "Disconnected Client", as in file_opened.
            cycle.file = None
            raise ClientDisconnected("the client disconnected")
        self._file_done(cycle, now)

    def _file_done(self, cycle: HTTPCycle, now: float) -> None:
        if file_end(cycle, self._writer):
            self._finish_response(cycle, now, complete=True)

    def _finish_response(self, cycle: HTTPCycle, now: float, *, complete: bool) -> None:
        self._events.append(completed(cycle, now, complete=complete))
        self._wake(cycle)
        if not complete:
            return
        cycle.body.clear()
        cycle.body_bytes = 0
        # RFC 9112 §9.6: "A server that sends a "close" connection option MUST initiate
        # closure of the connection ... after it sends the response containing the "close"
        # connection option. The server MUST NOT process any further requests received on
        # that connection."
        if self._writer.must_close or self._writer.shutting_down:
            self._linger(now)
        elif cycle.request is not RequestState.RECEIVING:
            self._next_cycle(now)
        else:
            # The app answered without reading the whole body: read the rest and drop it,
            # up to discard_body_limit_bytes, to keep the connection.
            self._update_reading()

    def _next_cycle(self, now: float) -> None:
        pipelined = self._reader.trailing_data
        self._reader = self.new_reader()
        self._cycle = None
        self.phase = Phase.IDLE
        self._deadline = now + self._settings.keep_alive_timeout_s
        self._empty_line_bytes = 0
        if self._pipeline_waiting:
            self._pipeline_waiting = False
            self._update_reading()
        if pipelined:
            # Empty lines after a request (an old client's CRLF after a POST body) are dropped.
            if pipelined[0] in b"\r\n":
                pipelined = self._skip_empty_lines(pipelined, now)
                if not pipelined:
                    return
            self._reader.receive_data(pipelined)
            self.phase = Phase.HEADERS
            self._deadline = now + self._settings.header_timeout_s
            self._process(now)

    def _wake(self, cycle: HTTPCycle) -> None:
        if cycle.app_waiting:
            cycle.app_waiting = False
            self._events.append(WakeApp(cycle=cycle))

    # ------------------------------------------------------------------ app lifecycle

    def app_finished(self, cycle: HTTPCycle, exc: BaseException | None, now: float) -> None:
        """The app's coroutine for ``cycle`` returned (``exc`` None) or raised ``exc``."""
        if cycle.admitted:
            cycle.admitted = False
            assert self._settings.admission is not None
            self._settings.admission.leave()
        state = cycle.response
        if state is ResponseState.DONE or cycle.gone:
            return
        # ASGI spec, "Error Handling": servers "must terminate the application instance and
        # its associated connection" when an error bubbles up out of the app. policy: the same
        # for an app that returns without completing its response, which the spec leaves open.
        if state in IN_PROGRESS:
            if exc is None:
                self._misbehaved("ASGI callable returned without completing the response")
            self._finish_response(cycle, now, complete=False)
            self._linger(now)  # the response is cut short: only the close can say so
            return
        if exc is None:
            self._misbehaved("ASGI callable returned without starting the response")
        # policy: nothing is on the wire yet, so the client gets a 500 (as from uvicorn and
        # hypercorn), then the close. RFC 9110 §15.6.1: 500 "indicates that the server
        # encountered an unexpected condition that prevented it from fulfilling the request."
        cycle.head = None
        cycle.status = 500
        self._writer.write_error(500, "", now, head_only=cycle.method == "HEAD")
        self._finish_response(cycle, now, complete=False)
        self._linger(now)

    def _misbehaved(self, reason: str) -> None:
        self._events.append(AppMisbehaved(reason=reason))

    # ------------------------------------------------------------------ ending

    def _respond_with_error(
        self,
        status: int,
        detail: str,
        now: float,
        extra_headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        """Answer with an error status (a bad request, 408, 503) in place of any response not
        yet on the wire, and close."""
        cycle = self._cycle
        unanswered = cycle is None or cycle.response in UNWRITTEN
        if unanswered:
            self._writer.write_error(
                status,
                detail,
                now,
                head_only=cycle is not None and cycle.method == "HEAD",
                extra_headers=extra_headers,
            )
        if cycle is None:
            client = self._connection.client
            self._events.append(RequestRejected(client=client, status=status, reason=detail))
        else:
            if unanswered:
                cycle.head = None
                cycle.status = status
                self._finish_response(cycle, now, complete=False)
            self._abandon(cycle, now)
        # The error response says "connection: close" (write_error's policy): RFC 9112 §9.6,
        # the server "MUST initiate closure of the connection" after it.
        self._linger(now)

    def _abandon(self, cycle: HTTPCycle, now: float) -> None:
        """The cycle loses its connection: wake a waiting ``receive()`` for http.disconnect."""
        if cycle.gone:
            return
        cycle.request = RequestState.GONE
        cycle.body.clear()
        cycle.body_bytes = 0
        state = cycle.response
        if state is not ResponseState.NOT_STARTED and state is not ResponseState.DONE:
            self._finish_response(cycle, now, complete=False)
        else:
            self._wake(cycle)

    def _linger(self, now: float) -> None:
        if self._cycle is not None:
            self._abandon(self._cycle, now)
        super()._linger(now)
