"""HTTP/1.1 on h11: bytes in, ASGI messages out, and back.

Theory of operation
-------------------
h11 parses and serializes; this module decides. One ``HTTP11Handler`` serves one connection and
runs one request/response *cycle* at a time (h11 parses the next pipelined request only after
``start_next_cycle``), so responses always go out in request order.

The connection moves through phases, and each phase owns one deadline:

    IDLE ──first byte──▶ HEADERS ──request head parsed──▶ CYCLE ──response done──▶ IDLE
      │                    │                                │
      │ keep-alive         │ header timeout: 408            │ Connection: close, error,
      ▼ timeout            ▼                                ▼ app failure, shutdown
    CLOSING ──peer EOF or linger timeout──▶ CLOSED

A new connection starts in IDLE with the header timeout as its deadline, and one that sends
nothing by then is closed without a response: browsers open connections ahead of need, and a 408
on one of those would be taken for the answer to a request that was never sent. Empty lines
before a request line are dropped in IDLE (RFC 9112 §2.2) and leave the phase and its deadline
as they were, up to ``max_header_bytes`` of them.

Per cycle, the response side is a table from ``(response state, message type)`` to a handler
(``_RESPONSE_TABLE``); any pair not in the table is an app error raised from ``send()``.
The ``http.response.start`` message is validated at once but held back until the first body
message (ASGI HTTP spec: the server "need not flush" it), so an app that fails before its
first body still gets a clean 500.

The request side never raises: a malformed request becomes an error response with
``connection: close`` (h11 supplies the status hint: 400, 431, 501) and the connection closes.
The response body and the ``RequestRejected`` reason say what was wrong in fixed words
(``_H11_ERRORS``), never quoting the request: h11's messages quote the offending bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

import h11

from . import validate
from .errors import ASGIProtocolError, ClientDisconnected, ContentLengthExceeded
from .events import (
    CLOSE_CONNECTION,
    PAUSE_READING,
    RESUME_READING,
    SEND_EOF,
    AppMisbehaved,
    Event,
    RequestRejected,
    ResponseCompleted,
    StartApp,
    WakeApp,
)
from .proxy import PROXY_HEADERS, client_and_scheme
from .responses import (
    REASONS,
    SERVER_HEADER,
    default_headers_missing,
    error_response,
    http_date,
)
from .schema import SPEC
from .scope import http_scope, target_authority
from .settings import ProtocolSettings
from .websocket import check_handshake, is_upgrade_to_websocket

# Connection phases.
IDLE = "idle"
HEADERS = "headers"
CYCLE = "cycle"
CLOSING = "closing"
CLOSED = "closed"
UPGRADED = "upgraded"  # handed over to another protocol (WebSocket)

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


# Response states of a cycle.
NOT_STARTED = "not-started"
STARTED = "started"  # http.response.start received and held, nothing written yet
STREAMING = "streaming"  # the head and some body are on the wire
DONE = "done"


class HTTPCycle:
    """One request and its response. The driver treats it as an opaque handle."""

    __slots__ = (
        "admitted",
        "app_waiting",
        "body",
        "body_bytes",
        "body_sent",
        "client",
        "discarded_bytes",
        "final_request_delivered",
        "gone",
        "held_response",
        "http_version",
        "keep_alive_10",
        "method",
        "no_body",
        "request_complete",
        "response",
        "response_headers",
        "scope",
        "scope_headers",
        "started_at",
        "status",
        "target",
    )

    def __init__(self, *, method: str, target: bytes, http_version: str, now: float):
        self.scope: dict[str, Any] = {}
        self.method = method
        self.http_version = http_version
        self.target = target
        self.started_at = now
        self.body: list[bytes] = []
        self.body_bytes = 0
        self.request_complete = False
        self.final_request_delivered = False
        self.discarded_bytes = 0
        self.app_waiting = False
        # The client left, or the connection closed: receive() says http.disconnect and
        # send() raises ClientDisconnected.
        self.gone = False
        self.response = NOT_STARTED
        self.held_response: h11.Response | None = None
        self.status = 0
        self.no_body = False
        self.body_sent = 0
        self.keep_alive_10 = False  # an HTTP/1.0 request that asked for keep-alive
        self.scope_headers: list[tuple[bytes, bytes]] = []
        self.admitted = False  # counted by the server's Admission until the app finishes
        self.client: tuple[str, int] | None = None  # as the app sees it (proxy headers applied)
        self.response_headers: list[tuple[bytes, bytes]] = []

    def __repr__(self) -> str:
        return f"<HTTPCycle {self.method} {self.target!r} response={self.response}>"


class HTTP11Handler:
    """The HTTP/1.1 half of a ``ServerProtocol``; see the module docstring."""

    def __init__(
        self,
        settings: ProtocolSettings,
        *,
        output: list[bytes],
        events: list[Event],
        client: tuple[str, int] | None,
        server: tuple[str, int | None] | None,
        scheme: str,
        now: float,
        on_upgrade: UpgradeHandler | None = None,
        tls: dict[str, Any] | None = None,
    ) -> None:
        self._settings = settings
        self._on_upgrade = on_upgrade
        self._output = output
        self._events = events
        self._client = client
        self._server = server
        self._scheme = scheme
        self._conn = self._new_h11()
        self._cycle: HTTPCycle | None = None
        self.phase = IDLE
        self._deadline: float | None = now + settings.header_timeout_s
        self._reading_paused = False
        self._pipeline_waiting = False
        self._keep_alive = True
        self._input_closed = False
        self._body_clock_reset = False
        self._tls = tls
        self._fresh = True  # no request yet on this connection
        # Empty lines dropped while waiting for this request line; a CR that ended a read.
        self._empty_line_bytes = 0
        self._pending_cr = False

    def _new_h11(self) -> h11.Connection:
        return h11.Connection(h11.SERVER, max_incomplete_event_size=self._settings.max_header_bytes)

    # ------------------------------------------------------------------ network side

    def receive_data(self, data: bytes, now: float) -> None:
        phase = self.phase
        if phase in (CLOSING, CLOSED, UPGRADED):
            return  # lingering: what arrives now is read and dropped
        if not data:
            return
        if phase == IDLE:
            if data[0] in b"\r\n" or self._pending_cr:
                data = self._skip_empty_lines(data, now)
                if not data:
                    return
            self.phase = HEADERS
            self._deadline = now + self._settings.header_timeout_s
        if self._input_closed:
            return
        self._conn.receive_data(data)
        self._process(now)

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
            self._reject(400, "too many empty lines before the request line", now)
            return b""
        rest = data[end:]
        if rest == b"\r":
            self._pending_cr = True
            return b""
        return rest

    def receive_eof(self, now: float) -> None:
        """The client closed its side. ASGI has no half-closed state: the client is gone."""
        if self.phase == CLOSED:
            return
        cycle = self._cycle
        if cycle is not None:
            self._abandon(cycle, now)
        self._to_closed()

    # ------------------------------------------------------------------ time

    def next_deadline(self) -> float | None:
        return self._deadline

    def handle_timer(self, now: float) -> None:
        deadline = self._deadline
        if deadline is None or now < deadline:
            return
        phase = self.phase
        if phase == IDLE:
            self._close(now)
        elif phase == HEADERS:
            # RFC 9110 §15.5.9: 408 "the server did not receive a complete request message
            # within the time that it was prepared to wait".
            self._reject(408, "the request head did not arrive in time", now)
        elif phase == CYCLE:
            self._body_timer(now)
        elif phase == CLOSING:
            self._to_closed()

    def _body_timer(self, now: float) -> None:
        """The request-body deadline passed: a slow client (slowloris on bodies) gets 408."""
        cycle = self._cycle
        timeout = self._settings.request_body_timeout_s
        if cycle is None or cycle.request_complete or timeout is None:
            self._deadline = None
        elif self._reading_paused or cycle.body or self._body_clock_reset:
            # The app is the slow one, or reading just resumed: the client gets a full period.
            self._body_clock_reset = False
            self._deadline = now + timeout
        elif cycle.response == DONE:
            self._close(now)  # discarding the rest of a body nobody reads: give up on it
        else:
            self._reject(408, "the request body stopped arriving", now)

    def shutdown(self, now: float) -> None:
        """Serve no further requests: close when idle, or after the current response.

        An idle connection is not closed under a request that may be on its way: one just
        accepted, whose request is almost certainly coming, gets ``linger_timeout_s``; one kept
        alive between requests gets ``shutdown_idle_grace_s``. A request that arrives meanwhile
        is answered with ``connection: close``. Either way the connection closes in IDLE when
        the grace ends (``handle_timer``).
        """
        self._keep_alive = False
        if self.phase == IDLE:
            settings = self._settings
            wait_s = settings.linger_timeout_s if self._fresh else settings.shutdown_idle_grace_s
            grace = now + wait_s
            self._deadline = grace if self._deadline is None else min(self._deadline, grace)

    # ------------------------------------------------------------------ parsing

    def _process(self, now: float) -> None:
        conn = self._conn
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                detail = describe_h11_error(str(exc), in_body=self._cycle is not None)
                self._reject(exc.error_status_hint, detail, now)
                return
            event_type = type(event)
            if event_type is h11.Data:
                self._body_received(event.data, now)  # type: ignore[union-attr]
                if self.phase != CYCLE:
                    return  # closing (too much unread body): nothing behind it is served
            elif event_type is h11.Request:
                if not self._begin_cycle(event, now):  # type: ignore[arg-type]
                    return
            elif event_type is h11.EndOfMessage:
                self._request_complete(now)
                if self.phase != CYCLE:
                    return
                if conn.their_state is h11.MUST_CLOSE:
                    # RFC 9112 §9.6: a request after one with "Connection: close" is never
                    # answered; what follows it is read and dropped.
                    self._input_closed = True
                    return
            elif event is h11.NEED_DATA:
                return
            elif event is h11.PAUSED:
                # A pipelined request waits in h11's buffer until this cycle ends; stop
                # reading so that buffer stays bounded.
                self._pipeline_waiting = True
                self._update_reading()
                return
            else:  # h11.ConnectionClosed
                self.receive_eof(now)
                return

    def _begin_cycle(self, request: h11.Request, now: float) -> bool:
        version = request.http_version
        if version[:2] != b"1.":
            self._reject(505, "only HTTP/1.0 and HTTP/1.1 are served", now)
            return False
        if request.target[:1] != b"/" and target_authority(request.target) == b"":
            # RFC 9110 §4.2.1: "A sender MUST NOT generate an "http" URI with an empty host
            # identifier. A recipient that processes such a URI reference MUST reject it as
            # invalid."
            self._reject(400, "absolute-form target without a host", now)
            return False
        full_items = getattr(request.headers, "_full_items", None)
        if full_items is not None:
            headers = [(name, value) for _, name, value in full_items]
        else:  # pragma: no cover - another h11 layout
            headers = list(request.headers)
        # h11 enforces max_incomplete_event_size only on a head it is still waiting for; a
        # head that arrived whole is measured here, so the limit holds however it arrived.
        head_bytes = len(request.method) + len(request.target) + 14
        has_te = has_cl = False
        connection = upgrade = b""
        proxied = False
        for name, value in headers:
            head_bytes += len(name) + len(value) + 4
            if name == b"transfer-encoding":
                has_te = True
            elif name == b"content-length":
                has_cl = True
            elif name == b"connection":
                connection = value
            elif name == b"upgrade":
                upgrade = value
            elif name in PROXY_HEADERS:
                proxied = True
        if head_bytes > self._settings.max_header_bytes:
            self._reject(431, "request head too large", now)
            return False
        if has_te and has_cl:
            # RFC 9112 §6.1: a server MAY reject a request with both, and MUST close after.
            self._reject(400, "both Transfer-Encoding and Content-Length", now)
            return False
        if has_te and version == b"1.0":
            # RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing.
            self._reject(400, "Transfer-Encoding in an HTTP/1.0 request", now)
            return False
        method = request.method.decode("ascii")
        if method == "CONNECT":
            self._reject(501, "CONNECT is not supported", now)
            return False
        if upgrade and self._on_upgrade is not None and is_upgrade_to_websocket(upgrade):
            problem = check_handshake(method, version, headers)
            if problem is not None:
                status, reason = problem
                extra = [(b"sec-websocket-version", b"13")] if status == 426 else []
                self._reject(status, reason, now, extra_headers=extra)
                return False
            admission = self._settings.admission
            if admission is not None and not admission.try_enter():
                self._reject(503, "the server is at its concurrency limit", now)
                return False
            self.phase = UPGRADED
            self._deadline = None
            self._on_upgrade(self._conn, request, headers, now)
            return False
        self._fresh = False
        # RFC 9112 §2.3: a 1.x minor version above 1 is served as HTTP/1.1.
        http_version = "1.0" if version == b"1.0" else "1.1"
        cycle = HTTPCycle(method=method, target=request.target, http_version=http_version, now=now)
        if version == b"1.0" and connection and _has_token(connection, b"keep-alive"):
            # RFC 9112 Appendix C.2.2: an HTTP/1.0 client asks for a persistent connection with
            # "Connection: keep-alive". h11 never keeps HTTP/1.0 alive; its one switch for that
            # is the connection state's keep_alive flag, set back here. It still closes when
            # the response has no content-length (an HTTP/1.0 body is then delimited by the
            # close), and the response says "keep-alive" (see _final_head).
            self._conn._cstate.keep_alive = True
            cycle.keep_alive_10 = True
        settings = self._settings
        client, scheme = self._client, self._scheme
        if proxied and settings.trusted_proxies is not None:
            client, scheme = client_and_scheme(headers, client, scheme, settings.trusted_proxies)
        cycle.client = client
        cycle.scope = http_scope(
            method=method,
            http_version=http_version,
            target=request.target,
            headers=headers,
            scheme=scheme,
            client=client,
            server=self._server,
            root_path=settings.root_path,
            state=settings.state,
        )
        cycle.scope_headers = cycle.scope["headers"]  # the log's request headers are the app's
        if self._tls is not None:
            cycle.scope["extensions"]["tls"] = dict(self._tls)
        admission = settings.admission
        if admission is not None:
            if not admission.try_enter():
                self._reject(503, "the server is at its concurrency limit", now)
                return False
            cycle.admitted = True
        self._cycle = cycle
        self.phase = CYCLE
        self._deadline = (
            None
            if settings.request_body_timeout_s is None
            else now + settings.request_body_timeout_s
        )
        self._events.append(StartApp(cycle=cycle, scope=cycle.scope))
        return True

    def _body_received(self, data: bytes, now: float) -> None:
        cycle = self._cycle
        assert cycle is not None
        if cycle.response == DONE or cycle.gone:
            cycle.discarded_bytes += len(data)
            if cycle.discarded_bytes > self._settings.discard_body_limit_bytes:
                self._close(now)
            return
        cycle.body.append(data)
        cycle.body_bytes += len(data)
        timeout = self._settings.request_body_timeout_s
        if timeout is not None:
            self._deadline = now + timeout
        if cycle.app_waiting:
            cycle.app_waiting = False
            self._events.append(WakeApp(cycle=cycle))
        self._update_reading()

    def _request_complete(self, now: float) -> None:
        cycle = self._cycle
        assert cycle is not None
        cycle.request_complete = True
        if self.phase != CYCLE:
            return
        self._deadline = None
        if cycle.response == DONE:
            self._next_cycle(now)
        elif cycle.app_waiting:
            cycle.app_waiting = False
            self._events.append(WakeApp(cycle=cycle))

    def _update_reading(self) -> None:
        cycle = self._cycle
        high_water = self._settings.body_buffer_high_water_bytes
        if self._reading_paused:
            buffered = cycle.body_bytes if cycle is not None else 0
            if not self._pipeline_waiting and buffered <= high_water // 2:
                self._reading_paused = False
                self._body_clock_reset = True
                self._events.append(RESUME_READING)
        elif self._pipeline_waiting or (cycle is not None and cycle.body_bytes > high_water):
            self._reading_paused = True
            self._events.append(PAUSE_READING)

    # ------------------------------------------------------------------ app side: receive

    def message_for_app(self, cycle: HTTPCycle) -> dict[str, Any] | None:
        """The next message for the app's ``receive()``, or None: wait for ``WakeApp``."""
        if cycle.gone or cycle.response == DONE:
            # ASGI HTTP spec, Disconnect: sent if receive is called after a response has
            # been sent or after the connection has been closed.
            return {"type": "http.disconnect"}
        if cycle.body:
            # h11 hands out bytearray slices; ASGI requires bytes.
            body = bytes(cycle.body[0]) if len(cycle.body) == 1 else b"".join(cycle.body)
            cycle.body.clear()
            cycle.body_bytes = 0
            more_body = not cycle.request_complete
            cycle.final_request_delivered = not more_body
            if self._reading_paused:
                self._update_reading()
            return {"type": "http.request", "body": body, "more_body": more_body}
        if cycle.request_complete:
            if not cycle.final_request_delivered:
                cycle.final_request_delivered = True
                return {"type": "http.request", "body": b"", "more_body": False}
        elif self._conn.they_are_waiting_for_100_continue and cycle is self._cycle:
            # RFC 9110 §10.1.1: the client waits for 100 before sending its body; send it only
            # now that the app asks for the body.
            self._output.append(
                self._conn.send(
                    h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")
                )
            )
        cycle.app_waiting = True
        return None

    # ------------------------------------------------------------------ app side: send

    def message_from_app(
        self, cycle: HTTPCycle, message: MutableMapping[str, Any], now: float
    ) -> None:
        """Take one message from the app's ``send()``; raise for a message the spec forbids."""
        try:
            handler = _RESPONSE_TABLE[cycle.response, message["type"]]
        except (KeyError, TypeError):
            error = _unexpected(cycle, message)  # raises for what is not a message at all
            if cycle.gone and message["type"] in HTTP_SEND_TYPES:
                # ASGI HTTP spec 2.4: send() on a closed connection raises an OSError subclass.
                # The app may not know yet: the client left, or the server answered a
                # malformed body with 400 in its place.
                raise ClientDisconnected("the client disconnected") from None
            raise error from None
        handler(self, cycle, message, now)

    def _on_start(self, cycle: HTTPCycle, message: MutableMapping[str, Any], now: float) -> None:
        status, (headers, has_server, has_date), trailers = _read_start(message)
        validate.final_status(status, "http.response.start")
        if trailers:
            raise ASGIProtocolError(
                "http.response.start: 'trailers' is True but the server does not offer the "
                "http.response.trailers extension (ASGI spec, Extensions: only listed extensions "
                "may be used)"
            )
        if cycle.gone:
            raise ClientDisconnected("the client disconnected")
        settings = self._settings
        if settings.default_headers:
            headers += default_headers_missing(headers, settings.default_headers)
        if settings.server_header and not has_server:
            headers.append(SERVER_HEADER)
        if settings.date_header and not has_date:
            headers.append((b"date", http_date(now)))
        try:
            response = h11.Response(
                status_code=status, headers=headers, reason=REASONS.get(status, b"")
            )
        except h11.LocalProtocolError as exc:
            raise ASGIProtocolError(
                f"http.response.start: {exc} (RFC 9110 §5: field names are tokens, and "
                "values contain no CR, LF or NUL)"
            ) from None
        cycle.held_response = response
        cycle.response_headers = headers
        cycle.status = status
        cycle.no_body = cycle.method == "HEAD" or status == 204 or status == 304
        cycle.response = STARTED

    def _on_body(self, cycle: HTTPCycle, message: MutableMapping[str, Any], now: float) -> None:
        body, more_body = _read_body(message)
        if cycle.gone:
            raise ClientDisconnected("the client disconnected")
        conn = self._conn
        output = self._output
        try:
            if cycle.response == STARTED:
                output.append(conn.send(self._final_head(cycle)))
                cycle.response = STREAMING
            if body and not cycle.no_body:
                # h11 refuses a Data event that overruns content-length before writing a byte.
                output.append(conn.send(h11.Data(data=body)))
                cycle.body_sent += len(body)
            if not more_body:
                output.append(conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError as exc:
            self._finish_response(cycle, now, complete=False)
            self._close(now)
            raise ContentLengthExceeded(
                f"http.response.body: {exc}; the connection is closed (RFC 9112 §6.3: the "
                "body must match the declared Content-Length)"
            ) from None
        if not more_body:
            self._finish_response(cycle, now, complete=True)

    def _on_body_after_done(
        self, cycle: HTTPCycle, message: MutableMapping[str, Any], now: float
    ) -> None:
        _read_body(message)
        if cycle.gone:
            raise ClientDisconnected("the client disconnected")
        # ASGI HTTP spec, Response Body: after the final body "any further messages on the
        # channel will be ignored".

    def _final_head(self, cycle: HTTPCycle) -> h11.Response:
        response = cycle.held_response
        assert response is not None
        cycle.held_response = None
        extra: bytes | None = None
        if not self._keep_alive or self._conn.they_are_waiting_for_100_continue:
            # RFC 9110 §10.1.1: a server that answers before reading a body it asked to wait
            # for should close rather than guess whether the body will still come.
            extra = b"close"
        elif cycle.keep_alive_10:
            extra = b"keep-alive"  # h11 turns it into "close" when it must close
        if extra is not None:
            response = h11.Response(
                status_code=response.status_code,
                headers=[*response.headers.raw_items(), (b"connection", extra)],
                reason=response.reason,
            )
        return response

    def _finish_response(self, cycle: HTTPCycle, now: float, *, complete: bool) -> None:
        cycle.response = DONE
        self._events.append(
            ResponseCompleted(
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
        )
        if cycle.app_waiting:
            cycle.app_waiting = False
            self._events.append(WakeApp(cycle=cycle))
        if not complete:
            return
        cycle.body.clear()
        cycle.body_bytes = 0
        conn = self._conn
        if conn.our_state is h11.MUST_CLOSE or not self._keep_alive:
            self._close(now)
        elif conn.their_state is h11.DONE:
            self._next_cycle(now)
        else:
            # The app answered without reading the whole body: read the rest and drop it,
            # up to discard_body_limit_bytes, to keep the connection.
            self._update_reading()

    def _next_cycle(self, now: float) -> None:
        conn = self._conn
        conn.start_next_cycle()
        self._cycle = None
        self.phase = IDLE
        self._deadline = now + self._settings.keep_alive_timeout_s
        self._empty_line_bytes = 0
        if self._pipeline_waiting:
            self._pipeline_waiting = False
            self._update_reading()
        pipelined = conn.trailing_data[0]
        if pipelined:
            if pipelined[0] in b"\r\n":
                # Empty lines after a request (an old client's CRLF after a POST body) are
                # dropped; the rest goes to a fresh h11 connection, the state it would have
                # after start_next_cycle, without them.
                self._conn = self._new_h11()
                pipelined = self._skip_empty_lines(pipelined, now)
                if not pipelined:
                    return
                self._conn.receive_data(pipelined)
            self.phase = HEADERS
            self._deadline = now + self._settings.header_timeout_s
            self._process(now)

    # ------------------------------------------------------------------ app lifecycle

    def app_finished(self, cycle: HTTPCycle, exc: BaseException | None, now: float) -> None:
        """The app's coroutine for ``cycle`` returned (``exc`` None) or raised ``exc``."""
        if cycle.admitted:
            cycle.admitted = False
            assert self._settings.admission is not None
            self._settings.admission.leave()
        state = cycle.response
        if state == DONE or cycle.gone:
            return
        if state == STREAMING:
            if exc is None:
                self._events.append(
                    AppMisbehaved(reason="ASGI callable returned without completing the response")
                )
            self._finish_response(cycle, now, complete=False)
            self._close(now)
            return
        if exc is None:
            self._events.append(
                AppMisbehaved(reason="ASGI callable returned without starting the response")
            )
        cycle.held_response = None
        cycle.status = 500
        self._output.append(
            error_response(
                500,
                "",
                now=now,
                server_header=self._settings.server_header,
                date_header=self._settings.date_header,
                head=cycle.method == "HEAD",
            )
        )
        self._finish_response(cycle, now, complete=False)
        self._close(now)

    # ------------------------------------------------------------------ closing

    def _reject(
        self,
        status: int,
        detail: str,
        now: float,
        extra_headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        """Answer a bad request with an error response and close."""
        cycle = self._cycle
        if cycle is None or cycle.response in (NOT_STARTED, STARTED):
            self._output.append(
                error_response(
                    status,
                    detail,
                    now=now,
                    server_header=self._settings.server_header,
                    date_header=self._settings.date_header,
                    head=cycle is not None and cycle.method == "HEAD",
                    extra_headers=extra_headers,
                )
            )
        if cycle is None:
            self._events.append(RequestRejected(client=self._client, status=status, reason=detail))
        else:
            if cycle.response in (NOT_STARTED, STARTED):
                cycle.held_response = None
                cycle.status = status
                self._finish_response(cycle, now, complete=False)
            self._abandon(cycle, now)
        self._close(now)

    def _abandon(self, cycle: HTTPCycle, now: float) -> None:
        """The cycle loses its connection: wake a waiting ``receive()`` for http.disconnect."""
        if cycle.gone:
            return
        cycle.gone = True
        cycle.body.clear()
        cycle.body_bytes = 0
        if cycle.response in (STARTED, STREAMING):
            self._finish_response(cycle, now, complete=False)
        elif cycle.app_waiting:
            cycle.app_waiting = False
            self._events.append(WakeApp(cycle=cycle))

    def _close(self, now: float) -> None:
        """Half-close and linger: keep reading, and dropping, until the peer closes."""
        if self.phase in (CLOSING, CLOSED):
            return
        cycle = self._cycle
        if cycle is not None:
            self._abandon(cycle, now)
        self.phase = CLOSING
        self._deadline = now + self._settings.linger_timeout_s
        if self._reading_paused:
            self._reading_paused = False
            self._events.append(RESUME_READING)
        self._events.append(SEND_EOF)

    def _to_closed(self) -> None:
        self.phase = CLOSED
        self._deadline = None
        self._events.append(CLOSE_CONNECTION)


def _has_token(value: bytes, token: bytes) -> bool:
    """Whether a comma-separated header value lists ``token`` (case-insensitive)."""
    return any(part.strip().lower() == token for part in value.split(b","))


UpgradeHandler = Callable[[h11.Connection, h11.Request, list[tuple[bytes, bytes]], float], None]

_Handler = Callable[[HTTP11Handler, HTTPCycle, MutableMapping[str, Any], float], None]

# (response state, message type) -> handler. Any other pair raises from send().
_RESPONSE_TABLE: dict[tuple[str, str], _Handler] = {
    (NOT_STARTED, "http.response.start"): HTTP11Handler._on_start,
    (STARTED, "http.response.body"): HTTP11Handler._on_body,
    (STREAMING, "http.response.body"): HTTP11Handler._on_body,
    (DONE, "http.response.body"): HTTP11Handler._on_body_after_done,
}

RESPONSE_STATES: Sequence[str] = (NOT_STARTED, STARTED, STREAMING, DONE)
# What an app may send on an http connection: no http.response.* extension is offered.
HTTP_SEND_TYPES: Sequence[str] = SPEC.ordering["http.send"].message_types()

# The keys of the two messages, in the order the handlers unpack them (spec/asgi.json).
_read_start = validate.reader("http.response.start", "status", "headers", "trailers")
_read_body = validate.reader("http.response.body", "body", "more_body")


def _unexpected(cycle: HTTPCycle, message: Any) -> ASGIProtocolError:
    message_type = validate.message_type(message)  # raises for a non-dict or a missing type
    if message_type not in HTTP_SEND_TYPES:
        return ASGIProtocolError(
            validate.unexpected_type(
                message_type,
                "an http connection",
                HTTP_SEND_TYPES,
                "ASGI HTTP spec; extension messages need their extension in scope['extensions']",
            )
        )
    state = cycle.response
    if message_type == "http.response.start":
        return ASGIProtocolError(
            "http.response.start: sent twice; a response has exactly one start "
            f"({validate.clause('http.response.start')})"
        )
    assert state == NOT_STARTED
    return ASGIProtocolError(
        "http.response.body: sent before http.response.start "
        f"({validate.clause('http.response.body')})"
    )
