"""WebSocket (RFC 6455) on wsproto: the connection after a valid opening handshake.

Theory of operation
-------------------
``HTTP11Handler`` parses a request; when it asks to upgrade to WebSocket, ``check_handshake``
decides whether the request is a valid opening handshake (RFC 6455 §4.2.1). A bad one is
answered as HTTP (400, or 426 for a version other than 13). A good one is handed over: a
``WebSocketHandler`` takes the handshake as plain data (``scope.RequestHead``), the bytes that
arrived behind it, the writer of the protocol that carried it (``http11.HTTP11Writer``), and
the output and event queues; from then on ``ServerProtocol`` routes every call to it. Nothing
here depends on HTTP/1.1, so a handshake over HTTP/2 (RFC 8441) can be handed over the same way.

The handler moves through phases, and each phase owns one deadline:

    HANDSHAKE ──websocket.accept──▶ OPEN ──close frame sent──▶ CLOSING ──close frame──┐
        │                            │     (ping / pong)       (peer's reply)         │
        │                            └── close frame received, or a protocol error ──▶┤
        ├── websocket.close / app returns: 403 ───────────────────────────────────────┤
        ├── app raises: 500 ──────────────────────────────────────────────────────────┤
        └── websocket.http.response.*: the app's HTTP response (DENIAL) ──────────────┤
                                                                                      ▼
                                                    LINGERING (TCP half-closed) ─▶ CLOSED

Nothing answers the client before the app does: the ``101`` goes out only when the app sends
``websocket.accept`` (ASGI WebSocket spec, Connect). Bytes that arrive behind the request are
kept and fed to wsproto once the connection is open. The handshake is an ``HTTPCycle`` too
(``WebSocketCycle.http``): a denial response goes through the same response table, defaults and
body rules as any HTTP response (``cycle.py``), and the 101 or the refusal is its log line.

The writer writes the 101 (or the denial response); wsproto parses and writes frames. This
module decides: which subprotocol and extensions, when to ping, which close code, what the app
sees.
"""

from __future__ import annotations

import binascii
import zlib
from base64 import b64decode
from collections import deque
from collections.abc import MutableMapping
from typing import Any, Protocol

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping, Pong, TextMessage
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.frame_protocol import CloseReason, Opcode, RsvBits
from wsproto.handshake import server_extensions_handshake
from wsproto.utilities import generate_accept_token

from . import validate
from .cycle import (
    DENIAL_STEPS,
    CycleHandler,
    HTTPCycle,
    ResponseState,
    ResponseWriter,
    completed,
    default_headers,
)
from .errors import ASGIProtocolError, ClientDisconnected, ContentLengthMismatch
from .events import AppMisbehaved, Event, StartApp, WakeApp
from .handler import Handler, Phase
from .schema import SPEC
from .scope import ConnectionInfo, RequestHead, new_scope
from .settings import ProtocolSettings
from .ws_frames import RAW, FrameSplitter, message_frame

WEBSOCKET_SPEC = "ASGI WebSocket spec"

# RFC 6455 §7.4.1: 1005, 1006 and 1015 "MUST NOT be set as a status code in a Close control
# frame by an endpoint"; §7.4.2: 0-999 are unused, 1016-2999 reserved for the protocol.
NEVER_SENT_CODES = frozenset({1004, 1005, 1006, 1015})
# A close frame's payload is at most 125 bytes: 2 for the code, 123 for the reason.
MAX_CLOSE_REASON_BYTES = 123


class _PerMessageDeflate(PerMessageDeflate):
    """wsproto's permessage-deflate for the negotiation and for compressing what is sent; the
    receiving half is this class's own, with a bounded inflater and control frames kept apart.

    * A few KiB of deflate can inflate to gigabytes. Each compressed message inflates into at
      most ``max_message_bytes`` + 1 bytes (zlib's ``max_length``): one byte more means the
      message is too big, and the connection closes with 1009 before anything larger exists.
    * RFC 6455 §5.4 lets a ping or pong come between the fragments of a message. wsproto 1.3
      treats the control frame's end as the end of the compressed message and forgets that the
      rest is compressed (python-hyper/wsproto#205); here control frames pass untouched.
    """

    def __init__(self, max_message_bytes: int) -> None:
        super().__init__()
        self._max_message_bytes = max_message_bytes
        self._inflated_bytes = 0  # of the message being received
        self._in_control = False  # the frame being received is a ping, pong or close
        # Whether the data message being received is compressed; None between messages.
        self._message_compressed: bool | None = None
        self._inflater: Any = None  # a zlib decompressor, kept across messages unless the
        # client gave up context takeover

    def accept(self, offer: str) -> bool | str | None:
        """RFC 7692 §7: "A server MUST decline an extension negotiation offer for this
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

    def frame_inbound_header(
        self, proto: Any, opcode: Opcode, rsv: RsvBits, payload_length: int
    ) -> CloseReason | RsvBits:
        if opcode.iscontrol():
            # RFC 7692 §6.1: a control frame never has RSV1 set.
            if rsv.rsv1:
                return CloseReason.PROTOCOL_ERROR
            self._in_control = True
            return RsvBits(True, False, False)
        self._in_control = False
        if rsv.rsv1 and opcode is Opcode.CONTINUATION:
            return CloseReason.PROTOCOL_ERROR  # RFC 7692 §6.1: RSV1 is on the first frame only
        # wsproto reads a header again when its masking key had not arrived: stay idempotent.
        if self._message_compressed is None:
            # RFC 7692 §6.1: RSV1 on the first frame marks the whole message compressed.
            self._message_compressed = rsv.rsv1
            if rsv.rsv1 and self._inflater is None:
                bits = self.client_max_window_bits or 15  # RFC 7692 §7.1.2.2: 15 by default
                self._inflater = zlib.decompressobj(-int(bits))
        return RsvBits(True, False, False)

    def frame_inbound_payload_data(self, proto: Any, data: bytes) -> bytes | CloseReason:
        if self._in_control or not self._message_compressed:
            return data
        return self._inflate(data)

    def frame_inbound_complete(self, proto: Any, fin: bool) -> bytes | CloseReason | None:
        if self._in_control:
            self._in_control = False
            return None
        if not fin:
            return None
        compressed = self._message_compressed
        self._message_compressed = None
        if not compressed:
            return None
        # RFC 7692 §7.2.2: the sender removed the empty block's tail; put it back and inflate.
        tail = self._inflate(b"\x00\x00\xff\xff")
        self._inflated_bytes = 0
        if type(tail) is CloseReason:
            return tail
        if self.client_no_context_takeover:
            self._inflater = None
        return tail

    def _inflate(self, data: bytes) -> bytes | CloseReason:
        inflater = self._inflater
        assert inflater is not None
        room = self._max_message_bytes - self._inflated_bytes
        try:
            inflated: bytes = inflater.decompress(data, room + 1)
        except zlib.error:
            # RFC 6455 §7.4.1: "1007 indicates that an endpoint is terminating the connection
            # because it has received data within a message that was not consistent with the
            # type of the message"; policy: a deflate stream that does not inflate is that.
            return CloseReason.INVALID_FRAME_PAYLOAD_DATA
        self._inflated_bytes += len(inflated)
        if len(inflated) > room or inflater.unconsumed_tail:
            # RFC 6455 §7.4.1: "1009 indicates that an endpoint is terminating the connection
            # because it has received a message that is too big for it to process."
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
        "extension_offers",
        "handler",
        "http",
        "incoming",
        "incoming_bytes",
        "incoming_sizes",
        "key",
        "scope",
        "subprotocols",
    )

    def __init__(self, handler: CycleHandler, http: HTTPCycle, key: bytes) -> None:
        self.handler = handler
        # The handshake as an HTTP cycle: its response is the 101, a refusal, or the app's
        # denial response (websocket.http.response), and the access log's line.
        self.http = http
        self.scope: dict[str, Any] = {}
        self.key = key
        self.subprotocols: list[str] = []
        self.extension_offers: list[str] = []
        # Messages for the app's receive(), in order; the last may be websocket.disconnect.
        self.incoming: deque[dict[str, Any]] = deque([{"type": "websocket.connect"}])
        self.incoming_sizes: deque[int] = deque([0])  # in bytes, one per incoming message
        self.incoming_bytes = 0
        self.app_waiting = False

    def __repr__(self) -> str:
        return f"<WebSocketCycle {self.http.target!r}>"


class HandshakeWriter(ResponseWriter, Protocol):
    """The writer of the protocol that carried the handshake (``http11.HTTP11Writer``): a
    response writer for a denial or a refusal, and the interim response that accepts."""

    def write_interim(
        self, status: int, headers: list[tuple[bytes, bytes]], message_type: str = ""
    ) -> None: ...


class WebSocketHandler(Handler):
    """The WebSocket handler of a ``ServerProtocol``; see the module docstring."""

    __slots__ = (
        "_awaiting_pong",
        "_cycle",
        "_early",
        "_early_bytes",
        "_frames",
        "_partial",
        "_partial_frames",
        "_writer",
        "_ws",
    )

    def __init__(
        self,
        settings: ProtocolSettings,
        connection: ConnectionInfo,
        *,
        request: RequestHead,
        early: bytes,
        writer: HandshakeWriter,
        output: list[bytes],
        events: list[Event],
        now: float,
        reading_paused: bool = False,
        writing_paused: bool = False,
    ) -> None:
        super().__init__(
            settings,
            connection,
            output=output,
            events=events,
            phase=Phase.HANDSHAKE,
            deadline=None,
            reading_paused=reading_paused,
            writing_paused=writing_paused,
        )
        self._writer = writer
        self._ws: Connection | None = None
        # Once open without extensions: the frames read without wsproto (ws_frames.py).
        self._frames: FrameSplitter | None = None
        # Bytes that arrived before the app accepted, kept (bounded) for wsproto.
        self._early: list[bytes] = [early] if early else []
        self._early_bytes = len(early)
        # A fragmented message being joined (None between messages), and its frame count.
        self._partial: bytearray | None = None
        self._partial_frames = 0
        self._awaiting_pong = False  # in OPEN, the deadline is the pong's, not the next ping

        key = b""
        subprotocols: list[str] = []
        offers: list[str] = []
        for name, value in request.headers:
            if name == b"sec-websocket-key":
                key = value.strip()
            elif name == b"sec-websocket-protocol":
                subprotocols += [p.strip() for p in value.decode("latin-1").split(",")]
            elif name == b"sec-websocket-extensions":
                offers += [o.strip() for o in value.decode("latin-1").split(",")]
        http = HTTPCycle(
            self, method="GET", target=request.target, http_version=request.http_version, now=now
        )
        cycle = WebSocketCycle(self, http, key)
        cycle.subprotocols = [p for p in subprotocols if p]
        cycle.extension_offers = [o for o in offers if o]
        cycle.scope, http.client = new_scope(
            request, connection, settings, subprotocols=list(cycle.subprotocols)
        )
        http.scope_headers = cycle.scope["headers"]
        self._cycle = cycle
        events.append(StartApp(cycle=cycle, scope=cycle.scope))
        self._update_reading()

    @property
    def cycle(self) -> WebSocketCycle:
        """The session this handler serves."""
        return self._cycle

    # ------------------------------------------------------------------ network side

    def receive_data(self, data: bytes, now: float) -> None:
        phase = self.phase
        if phase is Phase.HANDSHAKE or phase is Phase.DENIAL:
            # Nothing is parsed before the app answers; keep it (bounded) for wsproto.
            self._early.append(data)
            self._early_bytes += len(data)
            self._update_reading()
            return
        if self._ws is None or (phase is not Phase.OPEN and phase is not Phase.CLOSING):
            return  # lingering: read and dropped
        if self._frames is None:
            self._ws.receive_data(data)
            self._process(now)
        else:
            self._receive_frames(data, now)

    def receive_eof(self, now: float) -> None:
        if self.phase is Phase.CLOSED:
            return
        http = self._cycle.http
        if http.response is ResponseState.STREAMING:
            self._events.append(completed(http, now, complete=False))  # a denial cut short
        # RFC 6455 §7.1.5: no close frame received means code 1006.
        self._disconnect(CloseReason.ABNORMAL_CLOSURE, "")
        self._to_closed()

    # ------------------------------------------------------------------ time

    def _deadline_passed(self, now: float) -> None:
        phase = self.phase
        if phase is Phase.LINGERING:
            self._to_closed()  # RFC 9112 §9.6's staged close (handler.py): its last stage
        elif phase is Phase.CLOSING:
            # The peer never answered our close frame: RFC 6455 §7.1.1, "In abnormal cases
            # (such as not having received a TCP Close from the server after a reasonable amount
            # of time) a client MAY initiate the TCP Close"; policy: the server too, after
            # ws_close_timeout_s. §7.1.5: with no close frame received, "The WebSocket
            # Connection Close Code is considered to be 1006."
            self._disconnect(CloseReason.ABNORMAL_CLOSURE, "")
            self._linger(now)
        elif phase is Phase.OPEN and self._awaiting_pong:
            # policy: an unanswered keepalive ping closes with 1011 (uvicorn's and websockets'
            # choice; RFC 6455 §5.5.2 leaves pings to the endpoint: "An endpoint MAY send a
            # Ping frame any time after the connection is established").
            self._awaiting_pong = False
            self._start_close(CloseReason.INTERNAL_ERROR, "keepalive ping timeout", now)
        elif phase is Phase.OPEN and self._ws is not None:
            self._output.append(self._ws.send(Ping(payload=b"%d" % int(now * 1000))))
            timeout = self._settings.ws_ping_timeout_s
            if timeout is not None:
                self._awaiting_pong = True
                self._deadline = now + timeout
            else:
                self._schedule_ping(now)

    def shutdown(self, now: float) -> None:
        """The server is stopping: close an open WebSocket with 1012 (Service Restart)."""
        # policy: 1012 ("Service Restart") is not in RFC 6455 but in IANA's WebSocket Close
        # Code Number Registry: the server is restarting, and the client may reconnect; 1001
        # (RFC 6455 §7.4.1: an endpoint "going away", "such as a server going down") says less.
        if self.phase is Phase.OPEN:
            self._start_close(CloseReason.SERVICE_RESTART, "server shutting down", now)

    # ------------------------------------------------------------------ frames in

    def _receive_frames(self, data: bytes, now: float) -> None:
        """The whole small messages the splitter read are delivered here; wsproto reads the
        rest, in order."""
        ws = self._ws
        assert ws is not None and self._frames is not None
        for kind, value, size in self._frames.feed(data):
            if kind == RAW:
                ws.receive_data(value)  # type: ignore[arg-type]
                self._process(now)
                if self.phase is not Phase.OPEN and self.phase is not Phase.CLOSING:
                    return  # the peer's close frame came: what follows is dropped
            elif self.phase is Phase.OPEN:
                self._whole_message(value, size, now)

    def _process(self, now: float) -> None:
        ws = self._ws
        assert ws is not None
        for event in ws.events():
            kind = type(event)
            if kind is CloseConnection:
                self._close_received(event, now)  # type: ignore[arg-type]
                return
            if self.phase is not Phase.OPEN:
                continue  # we sent a close frame: wait for the peer's, drop the rest
            if kind is TextMessage or kind is BytesMessage:
                self._message_part(event, now)  # type: ignore[arg-type]
            elif kind is Ping:
                self._output.append(ws.send(event.response()))  # type: ignore[attr-defined]
            elif kind is Pong and self._awaiting_pong:
                self._awaiting_pong = False
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
            self._whole_message(data if is_text else bytes(data), size, now)
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
        # RFC 6455 §7.4.1: "1009 indicates that an endpoint is terminating the connection
        # because it has received a message that is too big for it to process."
        if too_big:
            self._start_close(CloseReason.MESSAGE_TOO_BIG, "message too big", now)
        elif too_many:
            # RFC 6455 §7.4.1: "1008 indicates that an endpoint is terminating the connection
            # because it has received a message that violates its policy."
            self._start_close(CloseReason.POLICY_VIOLATION, "too many fragments", now)
        elif event.message_finished:
            size = len(partial)
            if is_text:
                # wsproto has checked the UTF-8 frame by frame (1007 otherwise).
                self._deliver({"type": "websocket.receive", "text": partial.decode("utf-8")}, size)
            else:
                self._deliver({"type": "websocket.receive", "bytes": bytes(partial)}, size)

    def _whole_message(self, data: str | bytes, size: int, now: float) -> None:
        """A message that arrived whole: ``size`` is its length in bytes (UTF-8 for text)."""
        if size > self._settings.ws_max_size_bytes:
            # RFC 6455 §7.4.1: 1009, "a message that is too big for it to process".
            self._start_close(CloseReason.MESSAGE_TOO_BIG, "message too big", now)
            return
        if type(data) is str:
            self._deliver({"type": "websocket.receive", "text": data}, size)
        else:
            self._deliver({"type": "websocket.receive", "bytes": data}, size)

    def _close_received(self, event: CloseConnection, now: float) -> None:
        ws = self._ws
        assert ws is not None
        if ws.state is ConnectionState.OPEN:
            # wsproto could not parse the stream (bad UTF-8: 1007, a protocol error: 1002):
            # RFC 6455 §7.1.7, fail the connection: send a close frame, then close TCP.
            self._output.append(ws.send(CloseConnection(code=event.code, reason="")))
        elif ws.state is ConnectionState.REMOTE_CLOSING:
            # RFC 6455 §5.5.1: answer with a close frame, echoing the code.
            self._output.append(ws.send(event.response()))
        self._disconnect(event.code, event.reason or "")
        # RFC 6455 §7.1.1: after the closing handshake, the server closes TCP first.
        self._linger(now)

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

    def _wants_pause(self) -> bool:
        """Read while the app keeps up with what is read (before it accepts: the early bytes;
        once open: the messages it has not received), with the same hysteresis as HTTP."""
        high_water = self._settings.body_buffer_high_water_bytes
        buffered = self._early_bytes + self._cycle.incoming_bytes
        return buffered > (high_water // 2 if self.reading_paused else high_water)

    # ------------------------------------------------------------------ app side: receive

    def message_for_app(
        self, cycle: WebSocketCycle, now: float | None = None
    ) -> dict[str, Any] | None:
        incoming = cycle.incoming
        if not incoming:
            cycle.app_waiting = True
            return None
        message = incoming[0]
        if message["type"] == "websocket.disconnect":
            return dict(message)  # stays: every later receive() says the same
        incoming.popleft()
        cycle.incoming_bytes -= cycle.incoming_sizes.popleft()
        if self.reading_paused:
            self._update_reading()
        return message

    # ------------------------------------------------------------------ app side: send

    def message_from_app(
        self, cycle: WebSocketCycle, message: MutableMapping[str, Any], now: float
    ) -> None:
        message_type = validate.message_type(message)
        phase = self.phase
        # ASGI WebSocket spec, "Connect": "This message must be responded to with either an
        # Accept message or a Close message before the socket will pass websocket.receive
        # messages"; ASGI spec, "Error Handling": a server "should raise an exception out of
        # the send awaitable" for an invalid event. What may follow what is below.
        if phase is Phase.HANDSHAKE:
            if message_type == "websocket.accept":
                self._accept(cycle, message, now)
            elif message_type == "websocket.close":
                _close_fields(message)
                # ASGI WebSocket spec, Close: before accept, "the server must close the
                # connection with a HTTP 403 error code".
                self._refuse(403, now)
            elif message_type == "websocket.http.response.start":
                self._deny(cycle, message, now)
                self.phase = Phase.DENIAL
            else:
                # ASGI WebSocket spec, "Connect", quoted above.
                raise _out_of_order(message_type, "before websocket.accept or websocket.close")
        elif phase is Phase.DENIAL:
            # ASGI extensions, "Websocket Denial Response": the response's start is followed
            # by its body messages only.
            if message_type != "websocket.http.response.body":
                raise _out_of_order(message_type, "after websocket.http.response.start")
            self._deny(cycle, message, now)
        elif phase is Phase.OPEN:
            if message_type == "websocket.send":
                self._send_message(message)
            elif message_type == "websocket.close":
                code, reason = _close_fields(message)
                self._start_close(code, reason, now)
            else:
                # ASGI WebSocket spec: after accept, only websocket.send and websocket.close.
                raise _out_of_order(message_type, "after websocket.accept")
        else:
            if message_type not in _WEBSOCKET_SEND_TYPES:  # ASGI spec, "Error Handling"
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
        response_headers += default_headers(headers, has_server, has_date, self._settings, now)
        response_headers += headers
        # RFC 6455 §4.2.2: "If the server chooses to accept the incoming connection, it MUST
        # reply with a valid HTTP response", a 101 with Upgrade, Connection and
        # Sec-WebSocket-Accept; the ASGI WebSocket spec: only once the app accepts.
        self._writer.write_interim(101, response_headers, "websocket.accept")
        early = b"".join(self._early)
        self._early.clear()
        self._early_bytes = 0
        self._ws = Connection(ConnectionType.SERVER, extensions)
        if not extensions and self._settings.ws_parser == "auto":
            self._frames = FrameSplitter()
        self.phase = Phase.OPEN
        self._report(101, now)  # the access log's line: RFC 6455 §4.2.2's 101
        self._schedule_ping(now)
        if early:
            if self._frames is None:
                self._ws.receive_data(early)
                self._process(now)
            else:
                self._receive_frames(early, now)
        self._update_reading()

    def _send_message(self, message: MutableMapping[str, Any]) -> None:
        data, text = _read_send(message)
        if (data is None) == (text is None):
            raise validate.fail(
                "websocket.send",
                "exactly one of 'bytes' and 'text' must be set (not None)",
                validate.clause("websocket.send"),
            )
        if self._frames is not None:
            self._output += message_frame(text, data)
            return
        ws = self._ws
        assert ws is not None
        if text is not None:
            self._output.append(ws.send(TextMessage(data=text)))
        elif data is not None:
            self._output.append(ws.send(BytesMessage(data=data)))

    def _start_close(self, code: int, reason: str, now: float) -> None:
        """Send a close frame and wait (bounded) for the peer's."""
        ws = self._ws
        if self.phase is not Phase.OPEN or ws is None:
            return
        self._output.append(ws.send(CloseConnection(code=code, reason=reason)))
        self.phase = Phase.CLOSING
        self._awaiting_pong = False
        self._deadline = now + self._settings.ws_close_timeout_s
        self._update_reading()

    # ------------------------------------------------------------------ denial and refusal

    def _deny(self, cycle: WebSocketCycle, message: MutableMapping[str, Any], now: float) -> None:
        """A ``websocket.http.response.*`` message: the HTTP response in place of the 101,
        through the same response table as any HTTP response (cycle.py)."""
        steps = DENIAL_STEPS
        http = cycle.http
        step = steps.step(http, message)
        assert step is not None  # the phase admits only the message the table expects
        try:
            done = step(steps, http, message, self._writer, now)
        except ContentLengthMismatch:
            self._events.append(completed(http, now, complete=False))
            self._refused(now)
            raise
        if done:
            self._events.append(completed(http, now, complete=True))
            self._refused(now)

    def _refuse(self, status: int, now: float) -> None:
        """Answer the handshake with an HTTP error and close."""
        self._writer.write_error(status, "", now)
        # policy: a 500 is the server's failure, recorded as an incomplete exchange.
        self._report(status, now, complete=status != 500)
        self._refused(now)

    def _refused(self, now: float) -> None:
        # ASGI WebSocket spec, "Close": a denial "may present on some browsers as a different
        # WebSocket error code (such as 1006, Abnormal Closure)": no close frame was ever
        # exchanged (RFC 6455 §7.1.5), and the HTTP response ends the connection.
        self._disconnect(CloseReason.ABNORMAL_CLOSURE, "")
        self._linger(now)

    # ------------------------------------------------------------------ app lifecycle

    def app_finished(self, cycle: WebSocketCycle, exc: BaseException | None, now: float) -> None:
        admission = self._settings.admission
        if admission is not None:
            admission.leave()  # the HTTP handler admitted this session before the hand-over
        phase = self.phase
        if phase is Phase.HANDSHAKE:
            # ASGI WebSocket spec, "Connect": the server must "not complete the handshake until
            # it gets a reply, returning HTTP status code 403 if the connection is denied".
            # policy: an app that returns without a reply has denied it (403); one that raises
            # failed (500, RFC 9110 §15.6.1).
            if exc is None:
                self._events.append(
                    AppMisbehaved(reason="ASGI callable returned without accepting or closing")
                )
            self._refuse(500 if exc is not None else 403, now)
        elif phase is Phase.DENIAL:
            # policy: as for an HTTP response: a 500 while nothing is on the wire, else the
            # close cuts the denial short (ASGI spec, "Error Handling": terminate "the
            # application instance and its associated connection").
            if exc is None:
                self._events.append(
                    AppMisbehaved(reason="ASGI callable returned before its response was complete")
                )
            if cycle.http.response is ResponseState.STARTED:
                self._refuse(500, now)  # policy: nothing of the denial is on the wire yet
            else:
                self._events.append(completed(cycle.http, now, complete=False))
                self._refused(now)
        elif phase is Phase.OPEN:
            # An app that returns has nothing more to say (1000); one that raises failed (1011).
            # RFC 6455 §7.4.1: "1000 indicates a normal closure, meaning that the purpose for
            # which the connection was established has been fulfilled." "1011 indicates that a
            # server is terminating the connection because it encountered an unexpected
            # condition that prevented it from fulfilling the request."
            if exc is None:
                self._start_close(CloseReason.NORMAL_CLOSURE, "", now)
            else:
                self._start_close(CloseReason.INTERNAL_ERROR, "", now)  # RFC 6455 §7.4.1: 1011

    # ------------------------------------------------------------------ helpers

    def _schedule_ping(self, now: float) -> None:
        interval = self._settings.ws_ping_interval_s
        if self.phase is Phase.OPEN:
            self._deadline = None if interval is None else now + interval

    def _report(self, status: int, now: float, *, complete: bool = True) -> None:
        """The handshake's HTTP response (101, or a refusal) for the access log."""
        http = self._cycle.http
        http.status = status
        self._events.append(completed(http, now, complete=complete))


# What an app may send on a websocket connection: the scope offers websocket.http.response.
_WEBSOCKET_SEND_TYPES = SPEC.ordering["websocket.send"].message_types(["websocket.http.response"])

# The keys of each message, in the order the handlers unpack them (spec/asgi.json).
_read_accept = validate.reader("websocket.accept", "subprotocol", "headers")
_read_send = validate.reader("websocket.send", "bytes", "text")
_read_close = validate.reader("websocket.close", "code", "reason")


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
    # ASGI WebSocket spec, "Close": the server "must close the socket with the close code
    # passed in the message"; one a close frame cannot carry is refused. RFC 6455 §7.4.2:
    # "Status codes in the range 1000-2999 are reserved for definition by this protocol";
    # 3000-3999 are registered with IANA, 4000-4999 "reserved for private use". policy: of
    # 1000-2999, the codes defined so far (1000-1014, RFC 6455 and IANA's registry).
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
