"""One request/response cycle, whatever protocol carries it.

Theory of operation
-------------------
An ``HTTPCycle`` is one request and its response: an HTTP/1.1 request, an HTTP/2 stream, or
the HTTP response an app sends instead of accepting a WebSocket (the ``websocket.http.response``
extension). Its two sides are states, not flags:

    request:   RECEIVING ──body ends──▶ COMPLETE ──final http.request read──▶ DELIVERED
                   └───────────── client gone, connection closed ──────────────▶ GONE

    response:  NOT_STARTED ──start──▶ STARTED ──first body──▶ STREAMING ──last body──▶ DONE

The response side is the same for every protocol, so it is written here once: a table from
``(response state, message kind)`` to a step (``RESPONSE_TABLE``), the ``http.response.start``
handling (defaults: ``server``, ``date``, ``--header``; validation), HEAD/204/304 body dropping
and the Content-Length checks. The bytes are a ``ResponseWriter``'s business: one per protocol
(``http11.HTTP11Writer`` for HTTP/1.1). ``http.response.start`` is held back until the first
body message (ASGI HTTP spec: the server "need not flush" it), so an app that fails before its
first body still gets a clean 500.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any, Protocol

from . import validate
from .errors import ASGIProtocolError, ClientDisconnected, ContentLengthMismatch
from .events import ResponseCompleted
from .responses import SERVER_HEADER, default_headers_missing, http_date
from .schema import SPEC
from .settings import ProtocolSettings

Headers = list[tuple[bytes, bytes]]
Message = MutableMapping[str, Any]


# String-valued, so a state reads as its name in a repr, a log line or spec/asgi.json.
class RequestState(str, enum.Enum):
    RECEIVING = "receiving"  # more request body may come
    COMPLETE = "complete"  # the body has ended; the app has not read its end yet
    DELIVERED = "delivered"  # the app has read the final http.request
    GONE = "gone"  # the client left, or the connection closed under the cycle


class ResponseState(str, enum.Enum):
    NOT_STARTED = "not-started"
    STARTED = "started"  # http.response.start received and held, nothing written yet
    STREAMING = "streaming"  # the head and some body are on the wire
    DONE = "done"


class ResponseWriter(Protocol):
    """How one protocol puts a response on the wire, for one connection (``settings``).

    The cycle's response side calls it in order: ``prepare`` (at ``http.response.start``),
    ``write_head``, ``write_body`` (only for a response that may have content), ``write_end``.
    ``write_error`` writes a whole response the server composes itself
    (``responses.error_content``)."""

    settings: ProtocolSettings

    def prepare(self, status: int, headers: Headers, message_type: str) -> object:
        """The protocol's form of a response head; raises ``ASGIProtocolError`` for headers
        the protocol cannot carry."""
        ...

    def write_head(self, cycle: HTTPCycle) -> None: ...

    def write_body(self, data: bytes) -> None: ...

    def write_end(self) -> None: ...

    def write_error(
        self,
        status: int,
        detail: str,
        now: float,
        *,
        head_only: bool = False,
        extra_headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None: ...


class CycleHandler(Protocol):
    """The handler that serves a cycle: ``ServerProtocol`` routes the app's calls to it."""

    def message_for_app(self, cycle: Any) -> dict[str, Any] | None: ...

    def message_from_app(
        self, cycle: Any, message: MutableMapping[str, Any], now: float
    ) -> None: ...

    def app_finished(self, cycle: Any, exc: BaseException | None, now: float) -> None: ...


class HTTPCycle:
    """One request and its response. The driver treats it as an opaque handle."""

    __slots__ = (
        "admitted",
        "app_waiting",
        "body",
        "body_bytes",
        "body_sent",
        "client",
        "content_length",
        "discarded_bytes",
        "handler",
        "head",
        "http_version",
        "method",
        "no_body",
        "request",
        "response",
        "response_headers",
        "scope",
        "scope_headers",
        "started_at",
        "status",
        "target",
    )

    def __init__(
        self,
        handler: CycleHandler,
        *,
        method: str,
        target: bytes,
        http_version: str,
        now: float,
    ) -> None:
        self.handler = handler
        self.scope: dict[str, Any] = {}
        self.method = method
        self.http_version = http_version
        self.target = target
        self.started_at = now
        self.client: tuple[str, int] | None = None  # as the app sees it (proxy headers applied)
        self.scope_headers: Sequence[tuple[bytes, bytes]] = ()
        self.admitted = False  # counted by the server's Admission until the app finishes
        # Request side: the body read but not yet given to the app, and what was dropped.
        self.request = RequestState.RECEIVING
        self.body: list[bytes] = []
        self.body_bytes = 0
        self.discarded_bytes = 0
        self.app_waiting = False  # a receive() waits for a WakeApp
        # Response side.
        self.response = ResponseState.NOT_STARTED
        self.head: object = None  # the writer's prepared head, held until the first body
        self.status = 0
        self.response_headers: Headers = []
        self.no_body = False
        self.content_length: int | None = None  # as the app declared it
        self.body_sent = 0

    @property
    def gone(self) -> bool:
        """The client left: receive() says http.disconnect and send() raises."""
        return self.request is RequestState.GONE

    def __repr__(self) -> str:
        return f"<HTTPCycle {self.method} {self.target!r} response={self.response.value}>"


# --------------------------------------------------------------------- the response side


def default_headers(
    headers: Headers, has_server: bool, has_date: bool, settings: ProtocolSettings, now: float
) -> Headers:
    """The headers the server adds to a response the app started: ``--header`` defaults the
    app did not set, then ``server`` and ``date`` unless turned off or set by the app."""
    added = default_headers_missing(headers, settings.default_headers)
    if settings.server_header and not has_server:
        added.append(SERVER_HEADER)
    if settings.date_header and not has_date:
        added.append((b"date", http_date(now)))
    return added


def declared_length(headers: Headers) -> int | None:
    """The response's Content-Length (the writer has checked it is one number), or None: none
    given, or one that a Transfer-Encoding overrides (RFC 9112 §6.3)."""
    length: int | None = None
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            return None
        if lowered == b"content-length":
            length = int(value.split(b",")[0])
    return length


def send_body(
    cycle: HTTPCycle, message_type: str, body: bytes, more_body: bool, writer: ResponseWriter
) -> bool:
    """A body message: write the held head first, then the body (none for HEAD/204/304);
    True once the response is complete. Raises ``ContentLengthMismatch`` when the body does
    not match the declared Content-Length (RFC 9112 §6.3); the caller closes the connection."""
    if cycle.response is ResponseState.STARTED:
        writer.write_head(cycle)
        cycle.response = ResponseState.STREAMING
        cycle.head = None
    length = cycle.content_length
    if body and not cycle.no_body:
        if length is not None and cycle.body_sent + len(body) > length:
            raise ContentLengthMismatch(
                f"{message_type}: more body than the declared Content-Length ({length})"
                "; the connection is closed (RFC 9112 §6.3)"
            )
        writer.write_body(body)
        cycle.body_sent += len(body)
    if more_body:
        return False
    if length is not None and not cycle.no_body and cycle.body_sent != length:
        raise ContentLengthMismatch(
            f"{message_type}: the body ended after {cycle.body_sent} bytes of the declared "
            f"Content-Length ({length}); the connection is closed (RFC 9112 §6.3)"
        )
    writer.write_end()
    return True


def completed(cycle: HTTPCycle, now: float, *, complete: bool) -> ResponseCompleted:
    """The fact a response finished (or was cut off), for the access log."""
    cycle.response = ResponseState.DONE
    return ResponseCompleted(
        client=cycle.client,
        method=cycle.method,
        target=cycle.target,
        http_version=cycle.http_version,
        status=cycle.status,
        body_bytes=cycle.body_sent,
        duration_s=now - cycle.started_at,
        complete=complete,
        request_headers=cycle.scope_headers,
        response_headers=cycle.response_headers,
    )


# The response side's transitions: (state, message kind) -> step. A step takes the message and
# returns True when the response is complete. Any pair not in the table is refused (``refusal``).
START = "start"
BODY = "body"

Step = Callable[["ResponseSteps", HTTPCycle, Message, ResponseWriter, float], bool]


class ResponseSteps:
    """The response table bound to one family of message types (``http.response.*`` or
    ``websocket.http.response.*``); one for each family serves every connection
    (``HTTP_STEPS``, ``DENIAL_STEPS``), with the writer's settings."""

    __slots__ = ("_read_body", "_read_start", "body_type", "kinds", "start_type")

    def __init__(self, prefix: str, *, trailers: bool) -> None:
        self.start_type = prefix + ".start"
        self.body_type = prefix + ".body"
        self.kinds = {self.start_type: START, self.body_type: BODY}
        names = ("status", "headers", "trailers") if trailers else ("status", "headers")
        self._read_start = validate.reader(self.start_type, *names)
        self._read_body = validate.reader(self.body_type, "body", "more_body")

    def step(self, cycle: HTTPCycle, message: MutableMapping[str, Any]) -> Step | None:
        """The step for this message in the cycle's state, or None: refused."""
        message_type = message.get("type") if isinstance(message, dict) else None
        if type(message_type) is not str:
            return None
        kind = self.kinds.get(message_type)
        return None if kind is None else RESPONSE_TABLE.get((cycle.response, kind))

    def start(self, cycle: HTTPCycle, message: Message, writer: ResponseWriter, now: float) -> bool:
        """Validate, add the server's default headers, and hold the head for the first body."""
        fields = self._read_start(message)
        status, (headers, has_server, has_date) = fields[0], fields[1]
        validate.final_status(status, self.start_type)
        if len(fields) == 3 and fields[2]:
            raise ASGIProtocolError(
                f"{self.start_type}: 'trailers' is True but the server does not offer the "
                "http.response.trailers extension (ASGI spec, Extensions: only listed "
                "extensions may be used)"
            )
        if cycle.gone:
            raise ClientDisconnected("the client disconnected")
        headers += default_headers(headers, has_server, has_date, writer.settings, now)
        cycle.head = writer.prepare(status, headers, self.start_type)
        cycle.response_headers = headers
        cycle.status = status
        cycle.content_length = declared_length(headers)
        # RFC 9110 §9.3.2, §15.3.5, §15.4.5: a response to HEAD, a 204, a 304 has no content.
        cycle.no_body = cycle.method == "HEAD" or status == 204 or status == 304
        cycle.response = ResponseState.STARTED
        return False

    def body(self, cycle: HTTPCycle, message: Message, writer: ResponseWriter, now: float) -> bool:
        body, more_body = self._read_body(message)
        if cycle.gone:
            raise ClientDisconnected("the client disconnected")
        return send_body(cycle, self.body_type, body, more_body, writer)

    def body_after_done(
        self, cycle: HTTPCycle, message: Message, writer: ResponseWriter, now: float
    ) -> bool:
        self._read_body(message)
        if cycle.gone:
            raise ClientDisconnected("the client disconnected")
        # ASGI HTTP spec, Response Body: after the final body "any further messages on the
        # channel will be ignored".
        return False

    def refusal(
        self, cycle: HTTPCycle, message: Any, send_types: Sequence[str], where: str
    ) -> Exception:
        """Why a message has no step: not a message at all, not a type this connection takes,
        or out of order. ``send()`` on a cycle whose client left raises ``ClientDisconnected``
        (ASGI HTTP spec 2.4) whatever the order: the app may not know yet."""
        message_type = validate.message_type(message)  # raises for what is not a message
        if message_type not in send_types:
            return ASGIProtocolError(
                validate.unexpected_type(
                    message_type,
                    where,
                    send_types,
                    "ASGI HTTP spec; extension messages need their extension in "
                    "scope['extensions']",
                )
            )
        if cycle.gone:
            return ClientDisconnected("the client disconnected")
        if message_type == self.start_type:
            return ASGIProtocolError(
                f"{self.start_type}: sent twice; a response has exactly one start "
                f"({validate.clause('http.response.start')})"
            )
        return ASGIProtocolError(
            f"{self.body_type}: sent before {self.start_type} "
            f"({validate.clause('http.response.body')})"
        )


RESPONSE_TABLE: dict[tuple[ResponseState, str], Step] = {
    (ResponseState.NOT_STARTED, START): ResponseSteps.start,
    (ResponseState.STARTED, BODY): ResponseSteps.body,
    (ResponseState.STREAMING, BODY): ResponseSteps.body,
    (ResponseState.DONE, BODY): ResponseSteps.body_after_done,
}

HTTP_STEPS = ResponseSteps("http.response", trailers=True)
DENIAL_STEPS = ResponseSteps("websocket.http.response", trailers=False)

RESPONSE_STATES: Sequence[ResponseState] = tuple(ResponseState)
# What an app may send on an http connection: no http.response.* extension is offered.
HTTP_SEND_TYPES: Sequence[str] = SPEC.ordering["http.send"].message_types()
