"""WebSocket (RFC 6455) on wsproto: the connection after an HTTP/1.1 upgrade request.

Theory of operation
-------------------
``HTTP11Handler`` parses a request; when it asks to upgrade to WebSocket, ``check_handshake``
decides whether the request is a valid opening handshake (RFC 6455 §4.2.1). A bad one is
answered as HTTP (400, or 426 for a version other than 13). A good one is handed over: a
``WebSocketHandler`` takes the same h11 connection, output queue and event queue, and from then
on ``ServerProtocol`` routes every call to it.

The handler moves through phases:

    HANDSHAKE ──websocket.accept──▶ OPEN ──close frame sent or received──▶ CLOSING ─▶ CLOSED
        │                                                                    ▲
        ├── websocket.close / app returns: 403 ──────────────────────────────┤
        ├── app raises: 500 ─────────────────────────────────────────────────┤
        └── websocket.http.response.*: the app's HTTP response (DENIAL) ─────┘

Nothing answers the client before the app does: the ``101`` goes out only when the app sends
``websocket.accept`` (ASGI WebSocket spec, Connect). Bytes that arrive behind the request are
kept and fed to wsproto once the connection is open.

h11 writes the 101 (or the denial response); wsproto parses and writes frames. This module
decides: which subprotocol and extensions, when to ping, which close code, what the app sees.
"""

from __future__ import annotations

import binascii
import zlib
from base64 import b64decode
from collections import deque
from collections.abc import MutableMapping
from typing import Any

import h11
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, Pong, TextMessage
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.frame_protocol import CloseReason, Opcode, RsvBits
from wsproto.handshake import server_extensions_handshake
from wsproto.utilities import generate_accept_token

from . import validate
from .errors import ASGIProtocolError, ClientDisconnected, ContentLengthExceeded
from .events import (
    CLOSE_CONNECTION,
    PAUSE_READING,
    RESUME_READING,
    SEND_EOF,
    AppMisbehaved,
    Event,
    ResponseCompleted,
    StartApp,
    WakeApp,
)
from .proxy import client_and_scheme
from .responses import REASONS, SERVER_HEADER, error_response, http_date
from .schema import SPEC
from .scope import websocket_scope
from .settings import ProtocolSettings

# Phases.
HANDSHAKE = "handshake"
DENIAL = "denial"
OPEN = "open"
CLOSING = "closing"
CLOSED = "closed"

WEBSOCKET_SPEC = "ASGI WebSocket spec"

# RFC 6455 §7.4.1: 1005, 1006 and 1015 "MUST NOT be set as a status code in a Close control
# frame by an endpoint"; §7.4.2: 0-999 are unused, 1016-2999 reserved for the protocol.
NEVER_SENT_CODES = frozenset({1004, 1005, 1006, 1015})
# A close frame's payload is at most 125 bytes: 2 for the code, 123 for the reason.
MAX_CLOSE_REASON_BYTES = 123


class _PerMessageDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate, with a bounded inflater and control frames kept apart.

    * A few KiB of deflate can inflate to gigabytes. Each compressed message inflates into at
      most ``max_message_bytes`` + 1 bytes (zlib's ``max_length``): one byte more means the
      message is too big, and the connection closes with 1009 before anything larger exists.
    * RFC 6455 §5.4 lets a ping or pong come between the fragments of a message. wsproto 1.3
      treats the control frame's end as the end of the compressed message and forgets that the
      rest is compressed (python-hyper/wsproto#205); here control frames pass untouched.
    """

    _in_control = False

    def accept(self, offer: str) -> bool | str | None:
        """RFC 7692 §7.1: "A server MUST decline an extension negotiation offer for this
        extension if ... the negotiation offer contains an extension parameter with an invalid
        value"; a declined offer leaves the settings as they were, for the next offer."""
        saved = (
            self.client_no_context_takeover,
            self.server_no_context_takeover,
            self.client_max_window_bits,
            self.server_max_window_bits,
        )
        try:
            accepted = super().accept(offer)
        except ValueError:  # a window size that is not a number
            accepted = None
        if accepted is None:
            (
                self.client_no_context_takeover,
                self.server_no_context_takeover,
                self.client_max_window_bits,
                self.server_max_window_bits,
            ) = saved
        return accepted

    def __init__(self, max_message_bytes: int) -> None:
        super().__init__()
        self._max_message_bytes = max_message_bytes
        self._inflated_bytes = 0  # of the message being received

    def frame_inbound_header(
        self, proto: Any, opcode: Opcode, rsv: RsvBits, payload_length: int
    ) -> CloseReason | RsvBits:
        if opcode.iscontrol():
            if rsv.rsv1:
                return CloseReason.PROTOCOL_ERROR
            self._in_control = True
            return RsvBits(True, False, False)
        self._in_control = False
        return super().frame_inbound_header(proto, opcode, rsv, payload_length)

    def frame_inbound_payload_data(self, proto: Any, data: bytes) -> bytes | CloseReason:
        if self._in_control or not self._inbound_compressed:
            return data
        return self._inflate(data)

    def frame_inbound_complete(self, proto: Any, fin: bool) -> bytes | CloseReason | None:
        if self._in_control:
            self._in_control = False
            return None
        if not fin:
            return None
        if not self._inbound_compressed:
            return super().frame_inbound_complete(proto, fin)
        # RFC 7692 §7.2.2: the sender removed the empty block's tail; put it back and inflate.
        tail = self._inflate(b"\x00\x00\xff\xff")
        self._inflated_bytes = 0
        if type(tail) is CloseReason:
            return tail
        if self.client_no_context_takeover:
            self._decompressor = None
        self._inbound_compressed = None
        return tail

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        decompressor = self._decompressor
        assert decompressor is not None
        room = self._max_message_bytes - self._inflated_bytes
        try:
            inflated = decompressor.decompress(data, room + 1)
        except zlib.error:
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inflated_bytes += len(inflated)
        if len(inflated) > room or decompressor.unconsumed_tail:
            return CloseReason.MESSAGE_TOO_BIG
        return inflated


def _tokens(values: list[bytes]) -> list[bytes]:
    return [t.strip().lower() for value in values for t in value.split(b",") if t.strip()]


def check_handshake(
    method: str, http_version: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[int, str] | None:
    """Why an upgrade-to-WebSocket request is not a valid opening handshake, or None.

    RFC 6455 §4.2.1 lists what the server checks; §4.2.2 says a wrong version gets 426.
    """
    connection: list[bytes] = []
    key: list[bytes] = []
    version: list[bytes] = []
    has_body = False
    for name, value in headers:
        if name == b"connection":
            connection.append(value)
        elif name == b"sec-websocket-key":
            key.append(value)
        elif name == b"sec-websocket-version":
            version.append(value)
        elif (name == b"content-length" and value.strip() != b"0") or (
            name == b"transfer-encoding"
        ):
            has_body = True
    if method != "GET":
        return 400, "a WebSocket handshake must be a GET request (RFC 6455 §4.2.1)"
    if http_version != b"1.1":
        return 400, "a WebSocket handshake must be HTTP/1.1 (RFC 6455 §4.2.1)"
    if b"upgrade" not in _tokens(connection):
        return 400, "the Connection header must contain 'upgrade' (RFC 6455 §4.2.1)"
    if has_body:
        return 400, "a WebSocket handshake has no body"
    if [v.strip() for v in version] != [b"13"]:
        return 426, "Sec-WebSocket-Version must be 13 (RFC 6455 §4.2.2)"
    if len(key) != 1 or not _is_nonce(key[0]):
        return 400, "Sec-WebSocket-Key must be a base64-encoded 16-byte nonce (RFC 6455 §4.2.1)"
    return None


def _is_nonce(key: bytes) -> bool:
    try:
        return len(b64decode(key.strip(), validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def is_upgrade_to_websocket(upgrade: bytes) -> bool:
    return b"websocket" in _tokens([upgrade])


class WebSocketCycle:
    """One WebSocket session. The driver treats it as an opaque handle."""

    __slots__ = (
        "app_waiting",
        "denial",
        "extension_offers",
        "incoming",
        "incoming_bytes",
        "incoming_sizes",
        "key",
        "scope",
        "started_at",
        "subprotocols",
        "target",
    )

    def __init__(self, *, target: bytes, key: bytes, now: float) -> None:
        self.scope: dict[str, Any] = {}
        self.target = target
        self.key = key
        self.started_at = now
        self.subprotocols: list[str] = []
        self.extension_offers: list[str] = []
        # Messages for the app's receive(), in order; the last may be websocket.disconnect.
        self.incoming: deque[dict[str, Any]] = deque([{"type": "websocket.connect"}])
        self.incoming_sizes: deque[int] = deque([0])  # in bytes, one per incoming message
        self.incoming_bytes = 0
        self.app_waiting = False
        self.denial: _Denial | None = None

    def __repr__(self) -> str:
        return f"<WebSocketCycle {self.target!r}>"


class _Denial:
    """The app's HTTP response instead of accepting (``websocket.http.response``)."""

    __slots__ = ("body_sent", "response", "started")

    def __init__(self, response: h11.Response) -> None:
        self.response = response
        self.started = False
        self.body_sent = 0


class WebSocketHandler:
    """The WebSocket half of a ``ServerProtocol``; see the module docstring."""

    def __init__(
        self,
        settings: ProtocolSettings,
        *,
        conn: h11.Connection,
        request: h11.Request,
        headers: list[tuple[bytes, bytes]],
        output: list[bytes],
        events: list[Event],
        client: tuple[str, int] | None,
        server: tuple[str, int | None] | None,
        scheme: str,
        now: float,
        tls: dict[str, Any] | None = None,
        writing_paused: bool = False,
    ) -> None:
        self._settings = settings
        self._h11 = conn
        self._output = output
        self._events = events
        self._client = client
        self._ws: Connection | None = None
        self.phase = HANDSHAKE
        self._early: list[bytes] = []  # bytes that arrived before the app accepted
        self._early_bytes = 0
        self._reading_paused = False
        self._writing_paused = writing_paused
        # A fragmented message being joined (None between messages), and its frame count.
        self._partial: bytearray | None = None
        self._partial_frames = 0
        self._next_ping_at: float | None = None
        self._pong_deadline: float | None = None
        self._close_deadline: float | None = None
        self._linger_deadline: float | None = None
        self._sent_close_code: int | None = None
        self._keep_alive = True

        key = b""
        subprotocols: list[str] = []
        offers: list[str] = []
        for name, value in headers:
            if name == b"sec-websocket-key":
                key = value.strip()
            elif name == b"sec-websocket-protocol":
                subprotocols += [p.strip() for p in value.decode("latin-1").split(",")]
            elif name == b"sec-websocket-extensions":
                offers += [o.strip() for o in value.decode("latin-1").split(",")]
        cycle = WebSocketCycle(target=request.target, key=key, now=now)
        cycle.subprotocols = [p for p in subprotocols if p]
        cycle.extension_offers = [o for o in offers if o]
        scheme = "wss" if scheme == "https" else "ws"
        if settings.trusted_proxies is not None:
            client, scheme = client_and_scheme(headers, client, scheme, settings.trusted_proxies)
        self._client = client
        cycle.scope = websocket_scope(
            target=request.target,
            headers=headers,
            subprotocols=list(cycle.subprotocols),
            scheme=scheme,
            client=client,
            server=server,
            root_path=settings.root_path,
            state=settings.state,
        )
        if tls is not None:
            cycle.scope["extensions"]["tls"] = dict(tls)
        self._cycle = cycle
        # The request has no body (check_handshake), so its end is already in h11's buffer.
        event = conn.next_event()
        assert type(event) is h11.EndOfMessage, event
        events.append(StartApp(cycle=cycle, scope=cycle.scope))

    # ------------------------------------------------------------------ network side

    def receive_data(self, data: bytes, now: float) -> None:
        phase = self.phase
        if phase in (HANDSHAKE, DENIAL):
            # Nothing is parsed before the app answers; keep it (bounded) for wsproto.
            self._early.append(data)
            self._early_bytes += len(data)
            self._update_reading()
            return
        if phase == CLOSED or self._ws is None or self._linger_deadline is not None:
            return  # lingering: read and dropped
        self._ws.receive_data(data)
        self._process(now)

    def receive_eof(self, now: float) -> None:
        if self.phase == CLOSED:
            return
        denial = self._cycle.denial
        if self.phase == DENIAL and denial is not None and denial.started:
            self._report(denial.response.status_code, now, complete=False)
        # RFC 6455 §7.1.5: no close frame received means code 1006.
        self._disconnect(CloseReason.ABNORMAL_CLOSURE, "")
        self._to_closed()

    # ------------------------------------------------------------------ time

    def next_deadline(self) -> float | None:
        if self._linger_deadline is not None:
            return self._linger_deadline
        deadlines = [
            d
            for d in (self._next_ping_at, self._pong_deadline, self._close_deadline)
            if d is not None
        ]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        if self._linger_deadline is not None:
            if now >= self._linger_deadline:
                self._to_closed()
            return
        if self._close_deadline is not None and now >= self._close_deadline:
            # The peer never answered our close frame.
            self._close_deadline = None
            self._disconnect(CloseReason.ABNORMAL_CLOSURE, "")
            self._half_close(now)
            return
        if self._pong_deadline is not None and now >= self._pong_deadline:
            self._pong_deadline = None
            self._start_close(CloseReason.INTERNAL_ERROR, "keepalive ping timeout", now)
            return
        if self._next_ping_at is not None and now >= self._next_ping_at and self._ws is not None:
            self._next_ping_at = None
            self._output.append(self._ws.send(Ping(payload=b"%d" % int(now * 1000))))
            timeout = self._settings.ws_ping_timeout_s
            if timeout is not None:
                self._pong_deadline = now + timeout
            else:
                self._schedule_ping(now)

    def shutdown(self, now: float) -> None:
        """The server is stopping: close an open WebSocket with 1012 (Service Restart)."""
        self._keep_alive = False
        if self.phase == OPEN:
            self._start_close(CloseReason.SERVICE_RESTART, "server shutting down", now)

    # ------------------------------------------------------------------ frames in

    def _process(self, now: float) -> None:
        ws = self._ws
        assert ws is not None
        for event in ws.events():
            kind = type(event)
            if kind is CloseConnection:
                self._close_received(event, now)  # type: ignore[arg-type]
                return
            if self.phase != OPEN:
                continue  # we sent a close frame: wait for the peer's, drop the rest
            if kind is TextMessage or kind is BytesMessage:
                self._message_part(event, now)  # type: ignore[arg-type]
            elif kind is Ping:
                self._output.append(ws.send(event.response()))  # type: ignore[attr-defined]
            elif kind is Pong and self._pong_deadline is not None:
                self._pong_deadline = None
                self._schedule_ping(now)

    def _message_part(self, event: Message[Any], now: float) -> None:
        """A piece of a message: a whole message (the common case) is delivered as it came;
        the pieces of a fragmented one are joined in one growing buffer, so a message costs
        its bytes, whatever number of frames it arrived in. The limits count UTF-8 bytes."""
        data = event.data
        is_text = type(event) is TextMessage
        partial = self._partial
        if partial is None and event.message_finished:
            size = len(data) if not is_text or data.isascii() else len(data.encode("utf-8"))
            if size > self._settings.ws_max_size_bytes:
                self._start_close(CloseReason.MESSAGE_TOO_BIG, "message too big", now)
                return
            message: dict[str, Any] = (
                {"type": "websocket.receive", "text": data}
                if is_text
                else {"type": "websocket.receive", "bytes": bytes(data)}
            )
            self._deliver(message, size)
            return
        if partial is None:
            partial = self._partial = bytearray()
        partial += data.encode("utf-8") if is_text else data
        if event.frame_finished:
            self._partial_frames += 1
        too_big = len(partial) > self._settings.ws_max_size_bytes
        too_many = self._partial_frames > self._settings.ws_max_frames_per_message
        if too_big or too_many or event.message_finished:
            self._partial = None
            self._partial_frames = 0
        if too_big:
            self._start_close(CloseReason.MESSAGE_TOO_BIG, "message too big", now)
        elif too_many:
            self._start_close(CloseReason.POLICY_VIOLATION, "too many fragments", now)
        elif event.message_finished:
            size = len(partial)
            if is_text:
                # wsproto has checked the UTF-8 frame by frame (1007 otherwise).
                message = {"type": "websocket.receive", "text": partial.decode("utf-8")}
            else:
                message = {"type": "websocket.receive", "bytes": bytes(partial)}
            self._deliver(message, size)

    def _close_received(self, event: CloseConnection, now: float) -> None:
        ws = self._ws
        assert ws is not None
        if ws.state is ConnectionState.OPEN:
            # wsproto could not parse the stream (bad UTF-8: 1007, a protocol error: 1002):
            # RFC 6455 §7.1.7, fail the connection: send a close frame, then close TCP.
            self._output.append(ws.send(CloseConnection(code=event.code, reason="")))
            self._sent_close_code = event.code
            self._disconnect(event.code, event.reason or "")
            self._half_close(now)
            return
        if ws.state is ConnectionState.REMOTE_CLOSING:
            # RFC 6455 §5.5.1: answer with a close frame, echoing the code.
            self._output.append(ws.send(event.response()))
        self._close_deadline = None
        self._disconnect(event.code, event.reason or "")
        # RFC 6455 §7.1.1: after the closing handshake, the server closes TCP first.
        self._half_close(now)

    def _deliver(self, message: dict[str, Any], size: int) -> None:
        cycle = self._cycle
        cycle.incoming.append(message)
        cycle.incoming_sizes.append(size)
        cycle.incoming_bytes += size
        if cycle.app_waiting:
            cycle.app_waiting = False
            self._events.append(WakeApp(cycle=cycle))
        self._update_reading()

    def _disconnect(self, code: int, reason: str) -> None:
        """Queue the app's ``websocket.disconnect`` (ASGI WebSocket spec 2.5: with reason)."""
        cycle = self._cycle
        if cycle.incoming and cycle.incoming[-1]["type"] == "websocket.disconnect":
            return
        if self._ws is None and cycle.incoming:
            cycle.incoming.clear()  # never accepted: the app hears only the disconnect
            cycle.incoming_sizes.clear()
            cycle.incoming_bytes = 0
        self._deliver({"type": "websocket.disconnect", "code": int(code), "reason": reason}, 0)

    def set_writing_paused(self, paused: bool, now: float) -> None:
        """The driver's unsent output passed its high-water mark (or drained): pongs and close
        frames are answers to what is read, so reading stops while the client does not read."""
        self._writing_paused = paused
        self._update_reading()

    def _update_reading(self) -> None:
        """Read while the app keeps up and the client reads what is sent; once closing, read
        (and drop) until the peer closes."""
        high_water = self._settings.body_buffer_high_water_bytes
        buffered = self._early_bytes + self._cycle.incoming_bytes
        closing = self.phase in (CLOSING, CLOSED)
        if self._reading_paused:
            if closing or (buffered <= high_water // 2 and not self._writing_paused):
                self._reading_paused = False
                self._events.append(RESUME_READING)
        elif not closing and (buffered > high_water or self._writing_paused):
            self._reading_paused = True
            self._events.append(PAUSE_READING)

    # ------------------------------------------------------------------ app side: receive

    def message_for_app(self, cycle: WebSocketCycle) -> dict[str, Any] | None:
        incoming = cycle.incoming
        if not incoming:
            cycle.app_waiting = True
            return None
        message = incoming[0]
        if message["type"] == "websocket.disconnect":
            return dict(message)  # stays: every later receive() says the same
        incoming.popleft()
        cycle.incoming_bytes -= cycle.incoming_sizes.popleft()
        if self._reading_paused:
            self._update_reading()
        return message

    # ------------------------------------------------------------------ app side: send

    def message_from_app(
        self, cycle: WebSocketCycle, message: MutableMapping[str, Any], now: float
    ) -> None:
        message_type = validate.message_type(message)
        phase = self.phase
        if phase == HANDSHAKE:
            if message_type == "websocket.accept":
                self._accept(cycle, message, now)
            elif message_type == "websocket.close":
                _close_fields(message)
                # ASGI WebSocket spec, Close: before accept, "the server must close the
                # connection with a HTTP 403 error code".
                self._refuse(403, now)
            elif message_type == "websocket.http.response.start":
                self._deny_start(cycle, message, now)
            else:
                raise _out_of_order(message_type, "before websocket.accept or websocket.close")
        elif phase == DENIAL:
            if message_type != "websocket.http.response.body":
                raise _out_of_order(message_type, "after websocket.http.response.start")
            self._deny_body(cycle, message, now)
        elif phase == OPEN:
            if message_type == "websocket.send":
                self._send_message(message)
            elif message_type == "websocket.close":
                code, reason = _close_fields(message)
                self._start_close(code, reason, now)
            else:
                raise _out_of_order(message_type, "after websocket.accept")
        else:
            if message_type not in _WEBSOCKET_SEND_TYPES:
                raise _out_of_order(message_type, "on a websocket connection")
            # ASGI WebSocket 2.4: send() on a closed connection raises an OSError subclass.
            raise ClientDisconnected("the WebSocket connection is closed")

    def _accept(self, cycle: WebSocketCycle, message: MutableMapping[str, Any], now: float) -> None:
        subprotocol, (headers, has_server, has_date) = _read_accept(message)
        if subprotocol is not None and subprotocol not in cycle.subprotocols:
            raise validate.fail(
                "websocket.accept",
                f"'subprotocol' {subprotocol!r} was not offered by the client "
                f"(offered: {cycle.subprotocols})",
                "RFC 6455 §4.2.2",
            )
        for name, _ in headers:
            if name.lower() == b"sec-websocket-protocol":
                raise validate.fail(
                    "websocket.accept",
                    "'headers' must not include sec-websocket-protocol; use 'subprotocol'",
                    validate.clause("websocket.accept"),
                )
        extensions: list[Extension] = []
        response_headers = [
            (b"upgrade", b"websocket"),
            (b"connection", b"Upgrade"),
            (b"sec-websocket-accept", generate_accept_token(cycle.key)),
        ]
        if subprotocol is not None:
            response_headers.append((b"sec-websocket-protocol", subprotocol.encode("latin-1")))
        if self._settings.ws_per_message_deflate and cycle.extension_offers:
            deflate = _PerMessageDeflate(self._settings.ws_max_size_bytes)
            accepted = server_extensions_handshake(cycle.extension_offers, [deflate])
            if accepted is not None:
                response_headers.append((b"sec-websocket-extensions", accepted))
                extensions.append(deflate)
        response_headers += self._default_headers(now, has_server, has_date)
        response_headers += headers
        try:
            data = self._h11.send(
                h11.InformationalResponse(
                    status_code=101, headers=response_headers, reason=b"Switching Protocols"
                )
            )
        except h11.LocalProtocolError as exc:
            raise validate.fail(
                "websocket.accept", str(exc), "RFC 9110 §5: header syntax"
            ) from None
        self._output.append(data)
        trailing, _ = self._h11.trailing_data
        early = trailing + b"".join(self._early)
        self._early.clear()
        self._early_bytes = 0
        self._ws = Connection(ConnectionType.SERVER, extensions)
        self.phase = OPEN
        self._report(101, now)
        self._schedule_ping(now)
        if early:
            self._ws.receive_data(early)
            self._process(now)
        self._update_reading()

    def _send_message(self, message: MutableMapping[str, Any]) -> None:
        data, text = _read_send(message)
        if (data is None) == (text is None):
            raise validate.fail(
                "websocket.send",
                "exactly one of 'bytes' and 'text' must be set (not None)",
                validate.clause("websocket.send"),
            )
        ws = self._ws
        assert ws is not None
        if text is not None:
            self._output.append(ws.send(TextMessage(data=text)))
        elif data is not None:
            self._output.append(ws.send(BytesMessage(data=data)))

    def _start_close(self, code: int, reason: str, now: float) -> None:
        """Send a close frame and wait (bounded) for the peer's."""
        ws = self._ws
        if self.phase != OPEN or ws is None:
            return
        self._output.append(ws.send(CloseConnection(code=code, reason=reason)))
        self._sent_close_code = code
        self.phase = CLOSING
        self._next_ping_at = None
        self._pong_deadline = None
        self._close_deadline = now + self._settings.ws_close_timeout_s
        self._update_reading()

    # ------------------------------------------------------------------ denial and refusal

    def _deny_start(
        self, cycle: WebSocketCycle, message: MutableMapping[str, Any], now: float
    ) -> None:
        status, (headers, has_server, has_date) = _read_denial_start(message)
        validate.final_status(status, "websocket.http.response.start")
        headers += self._default_headers(now, has_server, has_date)
        try:
            response = h11.Response(
                status_code=status, headers=headers, reason=REASONS.get(status, b"")
            )
        except h11.LocalProtocolError as exc:
            raise validate.fail(
                "websocket.http.response.start", str(exc), "RFC 9110 §5: header syntax"
            ) from None
        cycle.denial = _Denial(response)
        self.phase = DENIAL

    def _deny_body(
        self, cycle: WebSocketCycle, message: MutableMapping[str, Any], now: float
    ) -> None:
        body, more_body = _read_denial_body(message)
        denial = cycle.denial
        assert denial is not None
        conn = self._h11
        try:
            if not denial.started:
                denial.started = True
                self._output.append(conn.send(denial.response))
            if body:
                self._output.append(conn.send(h11.Data(data=body)))
                denial.body_sent += len(body)
            if not more_body:
                self._output.append(conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError as exc:
            self._report(denial.response.status_code, now, complete=False)
            self._refused(now)
            raise ContentLengthExceeded(
                f"websocket.http.response.body: {exc}; the connection is closed"
            ) from None
        if not more_body:
            self._report(denial.response.status_code, now)
            self._refused(now)

    def _refuse(self, status: int, now: float) -> None:
        """Answer the handshake with an HTTP error and close."""
        self._output.append(
            error_response(
                status,
                "",
                now=now,
                server_header=self._settings.server_header,
                date_header=self._settings.date_header,
            )
        )
        self._report(status, now, complete=status != 500)
        self._refused(now)

    def _refused(self, now: float) -> None:
        self._disconnect(CloseReason.ABNORMAL_CLOSURE, "")
        self._half_close(now)

    # ------------------------------------------------------------------ app lifecycle

    def app_finished(self, cycle: WebSocketCycle, exc: BaseException | None, now: float) -> None:
        admission = self._settings.admission
        if admission is not None:
            admission.leave()  # the HTTP handler admitted this session before the hand-over
        phase = self.phase
        if phase == HANDSHAKE:
            # ASGI WebSocket spec, Connect: the handshake must not complete without a reply.
            if exc is None:
                self._events.append(
                    AppMisbehaved(reason="ASGI callable returned without accepting or closing")
                )
            self._refuse(500 if exc is not None else 403, now)
        elif phase == DENIAL:
            denial = cycle.denial
            assert denial is not None
            if exc is None:
                self._events.append(
                    AppMisbehaved(reason="ASGI callable returned before its response was complete")
                )
            if not denial.started:
                self._refuse(500, now)
            else:
                self._report(denial.response.status_code, now, complete=False)
                self._refused(now)
        elif phase == OPEN:
            # An app that returns has nothing more to say (1000); one that raises failed (1011).
            if exc is None:
                self._start_close(CloseReason.NORMAL_CLOSURE, "", now)
            else:
                self._start_close(CloseReason.INTERNAL_ERROR, "", now)

    # ------------------------------------------------------------------ helpers

    def _default_headers(
        self, now: float, has_server: bool, has_date: bool
    ) -> list[tuple[bytes, bytes]]:
        headers = []
        if self._settings.server_header and not has_server:
            headers.append(SERVER_HEADER)
        if self._settings.date_header and not has_date:
            headers.append((b"date", http_date(now)))
        return headers

    def _schedule_ping(self, now: float) -> None:
        interval = self._settings.ws_ping_interval_s
        if interval is not None and self.phase == OPEN:
            self._next_ping_at = now + interval

    def _report(self, status: int, now: float, *, complete: bool = True) -> None:
        cycle = self._cycle
        self._events.append(
            ResponseCompleted(
                client=self._client,
                method="GET",
                target=cycle.target,
                http_version="1.1",
                status=status,
                body_bytes=cycle.denial.body_sent if cycle.denial is not None else 0,
                duration_s=now - cycle.started_at,
                complete=complete,
            )
        )

    def _half_close(self, now: float) -> None:
        if self.phase == CLOSED or self._linger_deadline is not None:
            return
        self.phase = CLOSING
        self._next_ping_at = self._pong_deadline = self._close_deadline = None
        self._linger_deadline = now + self._settings.linger_timeout_s
        if self._reading_paused:
            self._reading_paused = False
            self._events.append(RESUME_READING)
        self._events.append(SEND_EOF)

    def _to_closed(self) -> None:
        self.phase = CLOSED
        self._next_ping_at = self._pong_deadline = None
        self._close_deadline = self._linger_deadline = None
        self._events.append(CLOSE_CONNECTION)


# What an app may send on a websocket connection: the scope offers websocket.http.response.
_WEBSOCKET_SEND_TYPES = SPEC.ordering["websocket.send"].message_types(["websocket.http.response"])

# The keys of each message, in the order the handlers unpack them (spec/asgi.json).
_read_accept = validate.reader("websocket.accept", "subprotocol", "headers")
_read_send = validate.reader("websocket.send", "bytes", "text")
_read_close = validate.reader("websocket.close", "code", "reason")
_read_denial_start = validate.reader("websocket.http.response.start", "status", "headers")
_read_denial_body = validate.reader("websocket.http.response.body", "body", "more_body")


def _out_of_order(message_type: str, when: str) -> ASGIProtocolError:
    if message_type not in _WEBSOCKET_SEND_TYPES:
        return ASGIProtocolError(
            validate.unexpected_type(
                message_type,
                "a websocket connection",
                _WEBSOCKET_SEND_TYPES,
                f"{WEBSOCKET_SPEC}; extension messages need their extension in scope['extensions']",
            )
        )
    return ASGIProtocolError(f"{message_type}: not allowed {when} ({WEBSOCKET_SPEC})")


def _close_fields(message: MutableMapping[str, Any]) -> tuple[int, str]:
    code, reason = _read_close(message)
    if reason is None:
        reason = ""  # "if missing or None default is empty string"
    if code in NEVER_SENT_CODES or not (1000 <= code <= 1014 or 3000 <= code <= 4999):
        raise validate.fail(
            "websocket.close", f"'code' {code} may not be sent in a close frame", "RFC 6455 §7.4"
        )
    if len(reason.encode("utf-8")) > MAX_CLOSE_REASON_BYTES:
        raise validate.fail(
            "websocket.close",
            f"'reason' is longer than {MAX_CLOSE_REASON_BYTES} bytes in UTF-8",
            "RFC 6455 §5.5: a control frame's payload is at most 125 bytes",
        )
    return code, reason
