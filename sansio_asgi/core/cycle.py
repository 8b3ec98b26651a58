"""One request/response cycle, whatever protocol carries it.

Theory of operation
-------------------
An ``HTTPCycle`` is one request and its response: an HTTP/1.1 request, an HTTP/2 stream, or
the HTTP response an app sends instead of accepting a WebSocket (the ``websocket.http.response``
extension). Its two sides are states, not flags:

    request:   RECEIVING ──body ends──▶ COMPLETE ──final http.request read──▶ DELIVERED
                   └───────────── client gone, connection closed ──────────────▶ GONE

    response:  NOT_STARTED ──start──▶ STARTED ──first body──▶ STREAMING ──last body──▶ DONE
                    └─start, trailers─▶ STARTED_TRAILERS ──▶ STREAMING_TRAILERS ──last body──▶
                                        TRAILERS ──last http.response.trailers──▶ DONE

The response side is the same for every protocol, so it is written here once: a table from
``(response state, message kind)`` to a step (``RESPONSE_TABLE``), the ``http.response.start``
handling (defaults: ``server``, ``date``, ``--header``; validation), HEAD/204/304 body dropping
and the Content-Length checks. The bytes are a ``ResponseWriter``'s business: one per protocol
(``http11.HTTP11Writer`` for HTTP/1.1, ``http2.HTTP2Writer`` for an HTTP/2 stream).
``http.response.start`` is held back until the first body message (ASGI HTTP spec: the server
"need not flush" it), so an app that fails before its first body still gets a clean 500.

The extension messages (``extensions.py``) are steps of the same table: ``http.response.trailers``
after the last body of a response that announced them, ``http.response.early_hint`` while the
response streams (a ``103`` only while the head is held), and the file bodies
(``http.response.pathsend``, ``http.response.zerocopysend``). A file body is a body message whose
bytes the driver holds: its step records a ``PendingFile`` and the handler asks the driver to
open the file (``events.OpenFile``); once the driver says how many bytes it has
(``file_head``), the head and the framing are written as for a body of that length, the driver
sends the bytes (``events.SendFile``; over HTTP/2 it reads them into the core,
``events.FeedFile``), and ``file_end`` goes on as a body message would.
"""

from __future__ import annotations

import enum
import functools
import os
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any, Protocol

from . import extensions as extensions_
from . import validate
from .errors import ASGIProtocolError, ClientDisconnected, ContentLengthMismatch
from .events import OpenFile, ResponseCompleted
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
    # As STARTED and STREAMING, for a response that announced trailers.
    STARTED_TRAILERS = "started-trailers"
    STREAMING_TRAILERS = "streaming-trailers"
    TRAILERS = "trailers"  # the last body is sent; http.response.trailers are awaited
    DONE = "done"


# The spec's names of the states (spec/asgi.json, ordering "http.send").
SPEC_STATES: dict[ResponseState, str] = {
    ResponseState.NOT_STARTED: "start",
    ResponseState.STARTED: "headers_held",
    ResponseState.STREAMING: "body",
    ResponseState.STARTED_TRAILERS: "headers_held_trailers",
    ResponseState.STREAMING_TRAILERS: "body_trailers",
    ResponseState.TRAILERS: "trailers",
    ResponseState.DONE: "done",
}
# A held head is written by the first body: the state it moves to.
_HEAD_WRITTEN = {
    ResponseState.STARTED: ResponseState.STREAMING,
    ResponseState.STARTED_TRAILERS: ResponseState.STREAMING_TRAILERS,
}
# Nothing of the response is on the wire yet: an error response can still replace it.
UNWRITTEN = frozenset({ResponseState.NOT_STARTED, *_HEAD_WRITTEN})
# The head is on the wire and the response is not complete.
IN_PROGRESS = frozenset(
    {ResponseState.STREAMING, ResponseState.STREAMING_TRAILERS, ResponseState.TRAILERS}
)


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

    def write_end(self, trailers: Headers | None = None) -> None:
        """The end of the body, with ``trailers`` where the framing can carry them (dropped
        otherwise: a Content-Length body, a response without content)."""
        ...

    def write_interim(
        self, status: int, headers: list[tuple[bytes, bytes]], message_type: str = ""
    ) -> None:
        """A 1xx response (``103 Early Hints``); the writer drops one the client cannot take."""
        ...

    def begin_file(self, count: int) -> None:
        """``count`` body bytes follow, written by the driver (``events.SendFile``) or fed
        through the core (``events.FeedFile``)."""
        ...

    def end_file(self) -> None:
        """The driver has written the bytes ``begin_file`` announced."""
        ...

    def push(self, path: str, headers: Headers, now: float) -> None:
        """Promise a pushed request for ``path`` (``http.response.push``): only a protocol
        that offers the extension (HTTP/2) is ever asked."""
        ...

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

    def message_for_app(self, cycle: Any, now: float | None = None) -> dict[str, Any] | None:
        """``now``: see ``ServerProtocol.message_for_app``."""
        ...

    def message_from_app(
        self, cycle: Any, message: MutableMapping[str, Any], now: float
    ) -> None: ...

    def app_finished(self, cycle: Any, exc: BaseException | None, now: float) -> None: ...

    def send_ready(self, cycle: Any) -> bool: ...


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
        "file",
        "handler",
        "head",
        "http_version",
        "method",
        "no_body",
        "offered",
        "request",
        "response",
        "response_headers",
        "scope",
        "scope_headers",
        "started_at",
        "status",
        "target",
        "trailers",
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
        # The response extensions scope["extensions"] lists (the scope's dict is the app's).
        self.offered: frozenset[str] = frozenset()
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
        # Announced trailers, gathered until the last http.response.trailers; None: dropped
        # (the request did not say "TE: trailers").
        self.trailers: Headers | None = None
        self.file: PendingFile | None = None  # a file body between OpenFile and its end

    @property
    def gone(self) -> bool:
        """The client left: receive() says http.disconnect and send() raises."""
        return self.request is RequestState.GONE

    def __repr__(self) -> str:
        return f"<HTTPCycle {self.method} {self.target!r} response={self.response.value}>"


class PendingFile:
    """A file body message the driver is resolving (``OpenFile``) or sending (``SendFile``,
    ``FeedFile``)."""

    __slots__ = ("count", "event", "message_type", "more_body")

    def __init__(self, message_type: str, event: OpenFile, *, more_body: bool) -> None:
        self.message_type = message_type
        self.event = event  # what the driver is asked to open
        self.more_body = more_body
        self.count = 0  # the bytes the driver has, once it opened the file


# --------------------------------------------------------------------- the response side


def default_headers(
    headers: Headers, has_server: bool, has_date: bool, settings: ProtocolSettings, now: float
) -> Headers:
    """The headers the server adds to a response the app started: ``--header`` defaults the
    app did not set, then ``server`` and ``date`` unless turned off or set by the app."""
    added = default_headers_missing(headers, settings.default_headers)
    # RFC 9110 §10.2.4: "An origin server MAY generate a Server header field in its responses."
    # §6.6.1: "An origin server with a clock ... MUST generate a Date header field in all 2xx
    # (Successful), 3xx (Redirection), and 4xx (Client Error) responses, and MAY generate a
    # Date header field in 1xx (Informational) and 5xx (Server Error) responses." policy: both
    # are sent unless --no-server-header / --no-date-header, and the app's own win.
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


def write_held_head(cycle: HTTPCycle, writer: ResponseWriter) -> None:
    """Write the held head, if it is still held: the first body (or file) is here."""
    written = _HEAD_WRITTEN.get(cycle.response)
    if written is not None:
        writer.write_head(cycle)
        cycle.response = written
        cycle.head = None


def check_more_body(cycle: HTTPCycle, message_type: str, size: int) -> None:
    """Raise ``ContentLengthMismatch`` if ``size`` more bytes pass the declared length."""
    length = cycle.content_length
    if length is not None and cycle.body_sent + size > length:
        raise ContentLengthMismatch(
            f"{message_type}: more body than the declared Content-Length ({length})"
            "; the connection is closed (RFC 9112 §6.3)"
        )


def check_body_ended(cycle: HTTPCycle, message_type: str, size: int = 0) -> None:
    """Raise ``ContentLengthMismatch`` if the body, ending after ``size`` more bytes, is
    shorter than the declared length."""
    length = cycle.content_length
    if length is not None and not cycle.no_body and cycle.body_sent + size != length:
        raise ContentLengthMismatch(
            f"{message_type}: the body ended after {cycle.body_sent + size} bytes of the "
            f"declared Content-Length ({length}); the connection is closed (RFC 9112 §6.3)"
        )


def end_body(cycle: HTTPCycle, writer: ResponseWriter) -> bool:
    """The last body is written: end the response (True), or wait for its trailers."""
    if cycle.response is ResponseState.STREAMING_TRAILERS:
        cycle.response = ResponseState.TRAILERS
        return False
    writer.write_end()
    return True


def send_body(
    cycle: HTTPCycle, message_type: str, body: bytes, more_body: bool, writer: ResponseWriter
) -> bool:
    """A body message: write the held head first, then the body (none for HEAD/204/304);
    True once the response is complete. Raises ``ContentLengthMismatch`` when the body does
    not match the declared Content-Length (RFC 9112 §6.3); the caller closes the connection."""
    write_held_head(cycle, writer)
    if body and not cycle.no_body:
        check_more_body(cycle, message_type, len(body))
        writer.write_body(body)
        cycle.body_sent += len(body)
    if more_body:
        return False
    check_body_ended(cycle, message_type)
    return end_body(cycle, writer)


def file_head(cycle: HTTPCycle, count: int, writer: ResponseWriter) -> bool:
    """The driver has ``count`` bytes of the pending file: write the held head and the
    framing as for a body message of ``count`` bytes; True when the driver is to send them
    (none for HEAD/204/304, nor for an empty file). The Content-Length checks come first, so
    a file of the wrong length sends none of its bytes."""
    pending = cycle.file
    assert pending is not None
    write_held_head(cycle, writer)
    if cycle.no_body:
        count = 0
    check_more_body(cycle, pending.message_type, count)
    if not pending.more_body:
        check_body_ended(cycle, pending.message_type, count)
    pending.count = count
    if count:
        writer.begin_file(count)
    return count > 0


def file_end(cycle: HTTPCycle, writer: ResponseWriter) -> bool:
    """The pending file's bytes are written; True once the response is complete."""
    pending = cycle.file
    assert pending is not None
    cycle.file = None
    if pending.count:
        writer.end_file()
        cycle.body_sent += pending.count
    return False if pending.more_body else end_body(cycle, writer)


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
# returns True when the response is complete. Any pair not in the table is refused (``refusal``),
# and so is an extension's message when the cycle does not offer the extension.
START = "start"
BODY = "body"
TRAILERS = "trailers"
EARLY_HINT = "early_hint"
PATHSEND = "pathsend"
ZEROCOPYSEND = "zerocopysend"
DEBUG = "debug"
PUSH = "push"

Step = Callable[["ResponseSteps", HTTPCycle, Message, ResponseWriter, float], bool]


class ResponseSteps:
    """The response table bound to one family of message types (``http.response.*`` or
    ``websocket.http.response.*``); one for each family serves every connection
    (``HTTP_STEPS``, ``DENIAL_STEPS``), with the writer's settings."""

    __slots__ = (
        "_read_body",
        "_read_early_hint",
        "_read_pathsend",
        "_read_push",
        "_read_start",
        "_read_trailers",
        "_read_zerocopysend",
        "body_type",
        "extension_kinds",
        "kinds",
        "start_type",
    )

    def __init__(self, prefix: str, *, extensions: bool) -> None:
        self.start_type = prefix + ".start"
        self.body_type = prefix + ".body"
        self.kinds = {self.start_type: START, self.body_type: BODY}
        names = ("status", "headers", "trailers") if extensions else ("status", "headers")
        self._read_start = validate.reader(self.start_type, *names)
        self._read_body = validate.reader(self.body_type, "body", "more_body")
        # The extensions' messages: a step only when the cycle offers the extension.
        self.extension_kinds: dict[str, str] = {}
        if extensions:
            self.extension_kinds = {
                extensions_.TRAILERS: TRAILERS,
                extensions_.EARLY_HINT: EARLY_HINT,
                extensions_.PATHSEND: PATHSEND,
                extensions_.ZEROCOPYSEND: ZEROCOPYSEND,
                extensions_.DEBUG: DEBUG,
                extensions_.PUSH: PUSH,
            }
            self._read_trailers = validate.reader(extensions_.TRAILERS, "headers", "more_trailers")
            self._read_early_hint = validate.reader(extensions_.EARLY_HINT, "links")
            self._read_pathsend = validate.reader(extensions_.PATHSEND, "path")
            self._read_push = validate.reader(extensions_.PUSH, "path", "headers")
            self._read_zerocopysend = validate.reader(
                extensions_.ZEROCOPYSEND, "file", "offset", "count", "more_body"
            )

    def step(self, cycle: HTTPCycle, message: MutableMapping[str, Any]) -> Step | None:
        """The step for this message in the cycle's state, or None: refused."""
        message_type = message.get("type") if isinstance(message, dict) else None
        if type(message_type) is not str or cycle.file is not None:
            return None
        kind = self.kinds.get(message_type)
        if kind is None:
            kind = self.extension_kinds.get(message_type)
            if kind is None or message_type not in cycle.offered:
                return None
        return RESPONSE_TABLE.get((cycle.response, kind))

    def start(self, cycle: HTTPCycle, message: Message, writer: ResponseWriter, now: float) -> bool:
        """Validate, add the server's default headers, and hold the head for the first body."""
        fields = self._read_start(message)
        status, (headers, has_server, has_date) = fields[0], fields[1]
        validate.final_status(status, self.start_type)
        trailers = len(fields) == 3 and fields[2]
        if trailers and extensions_.TRAILERS not in cycle.offered:
            raise ASGIProtocolError(
                f"{self.start_type}: 'trailers' is True but the server does not offer the "
                "http.response.trailers extension (ASGI spec, Extensions: only listed "
                "extensions may be used)"
            )
        if cycle.gone:
            # ASGI HTTP spec, "Disconnected Client": "If send() is called on a closed connection
            # the server should raise a server-specific subclass of OSError." So in every step.
            raise ClientDisconnected("the client disconnected")
        headers += default_headers(headers, has_server, has_date, writer.settings, now)
        cycle.head = writer.prepare(status, headers, self.start_type)
        cycle.response_headers = headers
        cycle.status = status
        cycle.content_length = declared_length(headers)
        # RFC 9110 §9.3.2, §15.3.5, §15.4.5: a response to HEAD, a 204, a 304 has no content.
        cycle.no_body = cycle.method == "HEAD" or status == 204 or status == 304
        if trailers:
            cycle.response = ResponseState.STARTED_TRAILERS
            # ASGI extensions, HTTP Trailers: "The ASGI server will only send the trailing
            # headers in case the client has sent the TE: trailers header in the request."
            cycle.trailers = [] if extensions_.accepts_trailers(cycle.scope_headers) else None
        else:
            cycle.response = ResponseState.STARTED
        return False

    def body(self, cycle: HTTPCycle, message: Message, writer: ResponseWriter, now: float) -> bool:
        body, more_body = self._read_body(message)
        if cycle.gone:  # ASGI HTTP spec, "Disconnected Client" (quoted in start)
            raise ClientDisconnected("the client disconnected")
        return send_body(cycle, self.body_type, body, more_body, writer)

    def body_after_done(
        self, cycle: HTTPCycle, message: Message, writer: ResponseWriter, now: float
    ) -> bool:
        self._read_body(message)
        if cycle.gone:  # ASGI HTTP spec, "Disconnected Client" (quoted in start)
            raise ClientDisconnected("the client disconnected")
        # ASGI HTTP spec, Response Body: after the final body "any further messages on the
        # channel will be ignored".
        return False

    def trailers(
        self, cycle: HTTPCycle, message: Message, writer: ResponseWriter, now: float
    ) -> bool:
        headers, more_trailers = self._read_trailers(message)
        if cycle.gone:  # ASGI HTTP spec, "Disconnected Client" (quoted in start)
            raise ClientDisconnected("the client disconnected")
        extensions_.check_trailers(headers, extensions_.TRAILERS)
        if cycle.trailers is not None:
            cycle.trailers += headers
        if more_trailers:
            return False
        writer.write_end(cycle.trailers)
        return True

    def early_hint(
        self, cycle: HTTPCycle, message: Message, writer: ResponseWriter, now: float
    ) -> bool:
        (links,) = self._read_early_hint(message)
        if cycle.gone:  # ASGI HTTP spec, "Disconnected Client" (quoted in start)
            raise ClientDisconnected("the client disconnected")
        fields = [(b"Link", link) for link in links]
        extensions_.check_links(links, extensions_.EARLY_HINT)
        if fields and cycle.response in _HEAD_WRITTEN:
            # RFC 8297 §2: a 103 precedes the final response; once the final head is on the
            # wire none can follow, and the spec lets a server ignore the message.
            writer.write_interim(103, fields, extensions_.EARLY_HINT)
        return False

    def push(self, cycle: HTTPCycle, message: Message, writer: ResponseWriter, now: float) -> bool:
        path, (headers, _, _) = self._read_push(message)
        if not path.startswith("/"):
            raise validate.fail(
                extensions_.PUSH,
                f"'path' must be an absolute path starting with '/', got {path!r:.80}",
                "ASGI extensions, HTTP/2 Server Push; RFC 9113 §8.3.1",
            )
        if cycle.gone:
            raise ClientDisconnected("the client disconnected")
        writer.push(path, headers, now)
        return False

    def pathsend(
        self, cycle: HTTPCycle, message: Message, writer: ResponseWriter, now: float
    ) -> bool:
        (path,) = self._read_pathsend(message)
        if not os.path.isabs(path):
            raise validate.fail(
                extensions_.PATHSEND,
                f"'path' must be an absolute path, got {path!r:.80}",
                'ASGI extensions, Path Send: "The string representation of the absolute file '
                'path to be sent by the server"',
            )
        if cycle.gone:
            raise ClientDisconnected("the client disconnected")
        cycle.file = PendingFile(
            extensions_.PATHSEND,
            OpenFile(cycle=cycle, path=path, file=None, offset=None, count=None),
            more_body=False,
        )
        return False

    def zerocopysend(
        self, cycle: HTTPCycle, message: Message, writer: ResponseWriter, now: float
    ) -> bool:
        file, offset, count, more_body = self._read_zerocopysend(message)
        for name, value in (("offset", offset), ("count", count)):
            if value is not None and value < 0:
                raise validate.fail(
                    extensions_.ZEROCOPYSEND,
                    f"{name!r} must not be negative, got {value}",
                    "ASGI extensions, Zero Copy Send",
                )
        if cycle.gone:
            raise ClientDisconnected("the client disconnected")
        cycle.file = PendingFile(
            extensions_.ZEROCOPYSEND,
            OpenFile(cycle=cycle, path=None, file=file, offset=offset, count=count),
            more_body=more_body,
        )
        return False

    def refusal(
        self, cycle: HTTPCycle, message: Any, send_types: Sequence[str], where: str
    ) -> Exception:
        """Why a message has no step: not a message at all, not a type this connection takes,
        or out of order. ``send()`` on a cycle whose client left raises ``ClientDisconnected``
        (ASGI HTTP spec 2.4) whatever the order: the app may not know yet."""
        message_type = validate.message_type(message)  # raises for what is not a message
        if message_type == extensions_.DEBUG and self.extension_kinds:
            return ASGIProtocolError(extensions_.DEBUG_REFUSED)
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
        if cycle.file is not None:
            return ASGIProtocolError(
                f"{message_type}: sent while the response's {cycle.file.message_type} is still "
                "being sent; await each send() before the next (ASGI spec, Events)"
            )
        if message_type == self.start_type:
            return ASGIProtocolError(
                f"{self.start_type}: sent twice; a response has exactly one start "
                f"({validate.clause('http.response.start')})"
            )
        state = cycle.response
        if message_type == self.body_type and state is not ResponseState.TRAILERS:
            return ASGIProtocolError(
                f"{self.body_type}: sent before {self.start_type} "
                f"({validate.clause('http.response.body')})"
            )
        spec = SPEC.messages[message_type]
        rule = spec.rules[0].text if spec.rules else spec.text
        if state is ResponseState.TRAILERS:
            rule = (
                "the last body is sent and the response announced trailers: only "
                f"{extensions_.TRAILERS} may follow; " + rule
            )
        return ASGIProtocolError(
            f"{message_type}: out of order: the response is at "
            f"{HTTP_SEND.states[SPEC_STATES[state]]!r}; {rule} ({spec.clause})"
        )


_STEPS = ResponseSteps
_HELD_OR_STREAMING = (
    ResponseState.STARTED,
    ResponseState.STREAMING,
    ResponseState.STARTED_TRAILERS,
    ResponseState.STREAMING_TRAILERS,
)
RESPONSE_TABLE: dict[tuple[ResponseState, str], Step] = {
    (ResponseState.NOT_STARTED, START): _STEPS.start,
    **{(state, BODY): _STEPS.body for state in _HELD_OR_STREAMING},
    (ResponseState.DONE, BODY): _STEPS.body_after_done,
    **{(state, ZEROCOPYSEND): _STEPS.zerocopysend for state in _HELD_OR_STREAMING},
    **{(state, EARLY_HINT): _STEPS.early_hint for state in _HELD_OR_STREAMING},
    **{(state, PUSH): _STEPS.push for state in _HELD_OR_STREAMING},
    (ResponseState.STARTED, PATHSEND): _STEPS.pathsend,
    (ResponseState.STARTED_TRAILERS, PATHSEND): _STEPS.pathsend,
    (ResponseState.TRAILERS, TRAILERS): _STEPS.trailers,
}

HTTP_STEPS = ResponseSteps("http.response", extensions=True)
DENIAL_STEPS = ResponseSteps("websocket.http.response", extensions=False)

RESPONSE_STATES: Sequence[ResponseState] = tuple(ResponseState)
HTTP_SEND = SPEC.ordering["http.send"]
# What an app may send on an http connection that offers no extension.
HTTP_SEND_TYPES: Sequence[str] = HTTP_SEND.message_types()


@functools.cache
def http_send_types(offered: frozenset[str]) -> Sequence[str]:
    """What an app may send on an http connection that offers ``offered``."""
    return HTTP_SEND.message_types(offered)
