"""HTTP/2 (RFC 9113) on h2: bytes in, ASGI messages out, and back.

Theory of operation
-------------------
h2's ``H2Connection`` parses and writes frames, keeps the streams' states and both directions'
flow-control windows, and decodes HPACK; it defines what is valid HTTP/2. This module decides
everything else, in the same terms as HTTP/1.1 (``http11.py``): a stream is a cycle
(``cycle.HTTPCycle``) whose scope comes from the pseudo-header fields, whose request body
becomes ``http.request`` messages, and whose response goes through the same response table
(``cycle.RESPONSE_TABLE``) into an ``HTTP2Writer``, which puts it in HEADERS and DATA frames.

A connection gets here three ways (``protocol.ServerProtocol``): ALPN ``h2`` under TLS, the
connection preface as the first bytes (prior knowledge), or an HTTP/1.1 request with
``Upgrade: h2c`` (RFC 7540 §3.2), which becomes stream 1.

The connection moves through phases, each owning the connection's deadline:

    HEADERS (the preface is due: header timeout) ──preface──▶ IDLE ◀──last stream ends──┐
                                                               │                       │
                                                               └──a stream opens──▶ CYCLE
    IDLE: keep-alive timeout ──▶ GOAWAY(NO_ERROR), LINGERING ──▶ CLOSED
    a protocol error, a flood: GOAWAY(error) ──▶ LINGERING

Shutdown (or the client's GOAWAY) *drains*: GOAWAY(NO_ERROR, the last stream id) goes out, new
streams are refused, and the connection lingers once the last stream in flight ends.

Each stream has deadlines of its own (``_stream_deadline``): its request body stalling
(``request_body_timeout_s``), its response waiting on a window the peer keeps shut
(``h2_window_timeout_s``), and a WebSocket's pings and close.

Flow control, both ways:

* **in**: a stream's window is granted back as its app reads the body, so a slow app stops
  only its own stream; the connection's window is the streams' windows together, so it never
  stops the others.
* **out**: response bytes wait in the stream (``H2Stream.pending``) until the peer's windows
  let them out; ``send_ready`` is False while more than ``write_high_water_bytes`` wait, and
  the driver holds the app's ``send()`` until a WINDOW_UPDATE lets them go.

The limits that stop the known attacks, each with its reason in ``settings.py``: streams
beyond ``h2_max_concurrent_streams`` running apps are refused (rapid reset), client resets and
frames that make no progress are counted per interval (floods), the header list is bounded
(HPACK bombs; h2 also refuses more than 64 CONTINUATION frames), and reading pauses while the
driver's unsent output is above its high-water mark (answers to PING and SETTINGS stay
bounded).

WebSocket over HTTP/2 (RFC 8441): an extended CONNECT with ``:protocol websocket`` is handed
to a ``websocket.WebSocketHandler`` of its own, which reads the stream's DATA as its bytes and
whose output becomes the stream's DATA.
"""

from __future__ import annotations

import contextlib
import re
from collections import deque
from collections.abc import MutableMapping, Sequence
from typing import Any
from urllib.parse import quote

from h2.config import H2Configuration
from h2.connection import ConnectionState, H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    PingReceived,
    PriorityUpdated,
    RemoteSettingsChanged,
    RequestReceived,
    SettingsAcknowledged,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    UnknownFrameReceived,
    WindowUpdated,
)
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes, Settings
from hpack.exceptions import HPACKError, OversizedHeaderListError
from hyperframe.exceptions import InvalidDataError
from hyperframe.frame import GoAwayFrame

from .cycle import (
    HTTP_STEPS,
    IN_PROGRESS,
    Headers,
    HTTPCycle,
    RequestState,
    ResponseState,
    completed,
    file_end,
    file_head,
    http_send_types,
)
from .errors import ASGIProtocolError, ClientDisconnected, ContentLengthMismatch
from .events import (
    CLOSE_CONNECTION,
    PAUSE_READING,
    RESUME_READING,
    SEND_EOF,
    AppMisbehaved,
    Event,
    FeedFile,
    RequestRejected,
    StartApp,
    WakeApp,
)
from .extensions import PUSH, offered
from .handler import Handler, Phase
from .http11 import validated_headers
from .proxy import PROXY_HEADERS
from .responses import FIELD_NAME, error_content, http_date
from .scope import ConnectionInfo, RequestHead, new_scope
from .settings import ProtocolSettings
from .websocket import WebSocketCycle, WebSocketHandler

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# RFC 9113 §8.2.2: "An endpoint MUST NOT generate an HTTP/2 message containing
# connection-specific header fields"; the app's are dropped from its response.
CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
# What a 2xx to an extended CONNECT carries of a WebSocket's 101 (RFC 8441 §5: no
# Sec-WebSocket-Accept, no Upgrade).
_NOT_IN_WEBSOCKET_200 = CONNECTION_SPECIFIC | {b"sec-websocket-accept"}

_ENHANCE_YOUR_CALM = ErrorCodes.ENHANCE_YOUR_CALM
# The preface and the header of the frame after it, whose type must be SETTINGS (0x4).
_OPENING_BYTES = len(PREFACE) + 4
_SETTINGS_TYPE = 0x4
# A GOAWAY without debug data: a 9-byte frame header and 8 bytes, type 0x7.
_GOAWAY_BYTES = 17
_GOAWAY_TYPE = b"\x07"
# What a request's fields may hold beyond h2's checks: an HTTP/1.1 request target's characters
# (RFC 9112 §3.2, h11's "request-target"), and field values without control characters (RFC
# 9110 §5.5: VCHAR and obs-text, with SP and HTAB inside).
_PATH = re.compile(rb"/[\x21-\x7e]*")
_REQUEST_FIELD_VALUE = re.compile(rb"(?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?")
# The WINDOW_UPDATE credit a long download may bank (see ``_update_credit``).
_MAX_UPDATE_CREDIT = 1024
# A DATA frame smaller than this waits for the window to open further, unless it ends what is
# pending or the client keeps its windows small: a window opened a byte at a time must not
# make a frame a byte (CVE-2019-9511, data dribble).
_MIN_DATA_FRAME_BYTES = 1024


class H2Stream:
    """One stream: its cycle, its writer, and the response bytes its windows hold back."""

    __slots__ = (
        "app_running",
        "body_deadline",
        "client_ended",
        "cycle",
        "end_pending",
        "ended",
        "expect_continue",
        "head",
        "id",
        "pending",
        "pending_bytes",
        "reset",
        "send_blocked",
        "stalled_since",
        "trailers",
        "unacked",
        "ws",
        "ws_events",
        "ws_output",
    )

    def __init__(self, stream_id: int, cycle: HTTPCycle | WebSocketCycle) -> None:
        self.id = stream_id
        self.cycle = cycle
        self.app_running = True
        # Response side: a head held until the first body (so END_STREAM can ride on it), the
        # bytes the windows hold back, and whether the end follows them.
        self.head: list[tuple[bytes, bytes]] | None = None
        self.pending: deque[bytes] = deque()
        self.pending_bytes = 0
        self.end_pending = False
        self.trailers: Headers | None = None
        self.ended = False  # END_STREAM (or RST_STREAM) sent
        self.reset = False  # the stream is closed: reset by either side
        self.send_blocked = False  # send_ready said False: wake the app when it is True
        self.stalled_since: float | None = None  # bytes wait on a shut window since then
        # Request side: flow-controlled bytes received and not yet granted back.
        self.unacked = 0
        self.body_deadline: float | None = None
        self.client_ended = False  # the client's END_STREAM came (its side is closed)
        self.expect_continue = False  # "expect: 100-continue" and no body yet
        # WebSocket over HTTP/2: the handler and the queues it writes into.
        self.ws: WebSocketHandler | None = None
        self.ws_output: list[bytes] = []
        self.ws_events: list[Event] = []

    def __repr__(self) -> str:
        return f"<H2Stream {self.id}>"


class HTTP2Writer:
    """One stream's response as HEADERS and DATA frames (``cycle.ResponseWriter``)."""

    __slots__ = ("_handler", "_stream", "settings")

    def __init__(self, handler: HTTP2Handler, stream: H2Stream) -> None:
        self._handler = handler
        self._stream = stream
        self.settings = handler._settings

    def prepare(self, status: int, headers: Headers, message_type: str) -> Any:
        # Field names go out lowercased (RFC 9113 §8.2.1); the same checks as HTTP/1.1's.
        return [
            (lowered, value)
            for _, lowered, value in validated_headers(headers, message_type)
            if lowered not in CONNECTION_SPECIFIC
        ]

    def write_head(self, cycle: HTTPCycle) -> None:
        fields: list[tuple[bytes, bytes]] = cycle.head  # type: ignore[assignment]
        self._stream.head = [(b":status", b"%d" % cycle.status), *fields]

    def write_body(self, data: bytes) -> None:
        self._handler._queue_data(self._stream, data)

    def write_end(self, trailers: Headers | None = None) -> None:
        stream = self._stream
        if trailers:
            # RFC 9113 §8.1: a trailer section is a HEADERS frame that ends the stream.
            stream.trailers = [(name.lower(), value) for name, value in trailers]
        stream.end_pending = True
        self._handler._pump(stream)

    def begin_file(self, count: int) -> None:
        self._handler._send_head(self._stream, end_stream=False)

    def end_file(self) -> None:
        pass  # DATA frames frame the file's bytes: nothing ends them but the stream's end

    def write_interim(
        self, status: int, headers: list[tuple[bytes, bytes]], message_type: str = ""
    ) -> None:
        handler = self._handler
        stream = self._stream
        # RFC 9113 §8.6: "HTTP/2 does not support the 101 (Switching Protocols) informational
        # status code"; RFC 8441 §5: a WebSocket over HTTP/2 is accepted with a 2xx to its
        # CONNECT.
        if status == 101:
            fields = [
                (lowered, value)
                for _, lowered, value in validated_headers(headers, message_type)
                if lowered not in _NOT_IN_WEBSOCKET_200
            ]
            stream.head = [(b":status", b"200"), *fields]
            handler._send_head(stream, end_stream=False)
            return
        fields = [
            (lowered, value) for _, lowered, value in validated_headers(headers, message_type)
        ]
        handler._send_headers(stream, [(b":status", b"%d" % status), *fields], end_stream=False)

    def write_error(
        self,
        status: int,
        detail: str,
        now: float,
        *,
        head_only: bool = False,
        extra_headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        headers, body = error_content(status, detail)
        settings = self.settings
        fields = [(b":status", b"%d" % status)]
        # The defaults of cycle.default_headers, where RFC 9110 §10.2.4 and §6.6.1 are quoted.
        if settings.server_header:
            fields.append((b"server", b"sansio-asgi"))
        if settings.date_header:
            fields.append((b"date", http_date(now)))
        fields += headers
        fields += extra_headers
        fields.append((b"content-length", b"%d" % len(body)))
        stream = self._stream
        stream.head = fields
        if not head_only:
            self._handler._queue_data(stream, body)
        stream.end_pending = True
        self._handler._pump(stream)

    def push(self, path: str, headers: Headers, now: float) -> None:
        self._handler._push(self._stream, path, headers, now)


class HTTP2Handler(Handler):
    """The HTTP/2 handler of a ``ServerProtocol``; see the module docstring."""

    # PING and SETTINGS are answered by the core itself: while the client does not read,
    # reading stops, so those answers stay bounded.
    PAUSES_WHILE_WRITING_PAUSED = True

    __slots__ = (
        "_by_cycle",
        "_conn",
        "_control_frames",
        "_draining",
        "_interval_start",
        "_now_hint",
        "_opening",
        "_resets",
        "_streams",
        "_timed",
        "_update_credit",
    )

    def __init__(
        self,
        settings: ProtocolSettings,
        connection: ConnectionInfo,
        *,
        output: list[bytes],
        events: list[Event],
        now: float,
        upgrade: tuple[RequestHead, bytes] | None = None,
        reading_paused: bool = False,
        writing_paused: bool = False,
    ) -> None:
        super().__init__(
            settings,
            connection,
            output=output,
            events=events,
            phase=Phase.HEADERS,
            deadline=now + settings.header_timeout_s,
            reading_paused=reading_paused,
            writing_paused=writing_paused,
        )
        # Inbound fields are h2's to validate (RFC 9113 §8.2, §8.3). Outbound ones are checked
        # here, as HTTP/1.1's are (``validated_headers``: tokens, clean values, one length), and
        # leave lowercased without connection-specific fields; h2 checking them again would
        # cost a tenth of a request.
        conn = H2Connection(
            H2Configuration(
                client_side=False,
                header_encoding=None,
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
            )
        )
        streams = settings.h2_max_concurrent_streams
        window = settings.h2_initial_window_bytes
        values = {
            SettingCodes.MAX_CONCURRENT_STREAMS: streams,
            SettingCodes.MAX_HEADER_LIST_SIZE: settings.h2_max_header_list_bytes,
            SettingCodes.MAX_FRAME_SIZE: settings.h2_max_frame_bytes,
            SettingCodes.INITIAL_WINDOW_SIZE: window,
        }
        if settings.ws_enabled:
            values[SettingCodes.ENABLE_CONNECT_PROTOCOL] = 1  # RFC 8441 §3
        # Our SETTINGS as in force from the start (the first frame sent carries them): the
        # limits hold from the first byte the client sends, not from its ACK.
        conn.local_settings = Settings(client=False, initial_values=values)
        conn.max_inbound_frame_size = settings.h2_max_frame_bytes
        # A header list above the setting gets 431 on its stream (RFC 9113 §10.5.1: "A server
        # that receives a larger field block than it is willing to handle can send an HTTP 431
        # (Request Header Fields Too Large) status code"); one above twice the setting
        # is not decoded further (an HPACK bomb: GOAWAY ENHANCE_YOUR_CALM).
        conn.decoder.max_header_list_size = 2 * settings.h2_max_header_list_bytes
        self._conn = conn
        self._streams: dict[int, H2Stream] = {}
        self._by_cycle: dict[HTTPCycle | WebSocketCycle, H2Stream] = {}
        self._timed: set[H2Stream] = set()  # streams with a deadline of their own
        self._draining = False  # GOAWAY sent or received: no new stream is served
        self._interval_start = now
        self._now_hint = now  # the last time a call brought, for work it does not time
        self._resets = 0
        self._control_frames = 0
        # WINDOW_UPDATEs a client may send for the DATA frames it got (one for the stream, one
        # for the connection, each, for a frame of a useful size or the last of a response):
        # those move a download on, however it is paced. Others (a window opened a byte at a
        # time, CVE-2019-9511; or opened while nothing was sent) count as work that moves
        # nothing.
        self._update_credit = 0
        head: RequestHead | None = None
        # The first bytes, until the frame after the preface shows its type.
        self._opening: bytes | None = b""
        refused: ProtocolError | None = None
        if upgrade is None:
            conn.initiate_connection()
        else:
            head, settings_header = upgrade
            try:
                conn.initiate_upgrade_connection(settings_header)
            except ProtocolError as exc:  # a value RFC 9113 §6.5.2 does not allow
                refused = exc
        # SETTINGS_MAX_CONCURRENT_STREAMS is advertised (above), but enforced here: h2 would
        # end the connection for one stream too many, where RFC 9113 §5.1.2 allows refusing
        # that stream alone ("a stream error ... of type PROTOCOL_ERROR or REFUSED_STREAM"),
        # and this module counts running apps, which outlive their streams.
        conn.local_settings.max_concurrent_streams = 2**31 - 1
        conn.local_settings.acknowledge()
        # The connection's window covers every stream's, so a stream whose app does not read
        # never stops the others (RFC 9113 §6.9.2: only WINDOW_UPDATE changes it).
        extra = streams * window - 65_535
        if extra > 0:
            conn.increment_flow_control_window(min(extra, 2**31 - 1 - 65_535))
        if refused is not None:
            # The 101 is out, so the answer is HTTP/2's: SETTINGS, then GOAWAY. RFC 9113 §7:
            # PROTOCOL_ERROR, "The endpoint detected an unspecific protocol error. This error
            # is for use when a more specific error code is not available."
            self._connection_error(
                ErrorCodes.PROTOCOL_ERROR, f"HTTP2-Settings refused: {refused}", now
            )
        elif head is not None:
            self.phase = Phase.IDLE
            self._open_stream(1, head, ended=True, now=now)
        self._flush()

    # ------------------------------------------------------------------ network side

    def receive_data(self, data: bytes, now: float) -> None:
        phase = self.phase
        if not data or phase is Phase.LINGERING or phase is Phase.CLOSED:
            return
        self._now_hint = now
        opening = self._opening
        if opening is not None:
            # RFC 9113 §3.4: "That is, the connection preface starts with the string
            # PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n. This sequence MUST be followed by a
            # SETTINGS frame"; h2 checks the string, the frame's type is checked here. §3.4:
            # "Clients and servers MUST treat an invalid connection preface as a connection
            # error (Section 5.4.1) of type PROTOCOL_ERROR."
            opening += data[: _OPENING_BYTES - len(opening)]
            if len(opening) < _OPENING_BYTES:
                self._opening = opening
            else:
                self._opening = None
                if opening[-1] != _SETTINGS_TYPE:  # RFC 9113 §3.4, quoted above
                    self._connection_error(
                        ErrorCodes.PROTOCOL_ERROR, "the preface is not followed by SETTINGS", now
                    )
                    return
        try:
            events = self._conn.receive_data(data)
        except ProtocolError as exc:
            self._protocol_error(exc, now)
            return
        if phase is Phase.HEADERS and events:
            # The preface and the client's SETTINGS are in.
            self.phase = Phase.IDLE
            self._deadline = now + self._settings.keep_alive_timeout_s
        for event in events:
            self._dispatch(event, now)
            if self.phase is Phase.LINGERING or self.phase is Phase.CLOSED:
                break
        self._flush()

    def _dispatch(self, event: object, now: float) -> None:
        kind = type(event)
        if kind is RequestReceived:
            self._request_received(event, now)  # type: ignore[arg-type]
        elif kind is DataReceived:
            self._data_received(event, now)  # type: ignore[arg-type]
        elif kind is StreamEnded:
            self._request_complete(event.stream_id, now)  # type: ignore[attr-defined]
        elif kind is WindowUpdated:
            self._window_updated(event.stream_id, now)  # type: ignore[attr-defined]
            if self._update_credit:
                self._update_credit -= 1
            else:
                self._count_control(now)
        elif kind is StreamReset:
            self._stream_reset(event.stream_id, now)  # type: ignore[attr-defined]
            self._count_reset(now)
        elif kind is RemoteSettingsChanged:
            self._settings_changed(event, now)  # type: ignore[arg-type]
            self._count_control(now)
        elif kind is ConnectionTerminated:
            self._goaway_received(event, now)  # type: ignore[arg-type]
        elif kind is TrailersReceived:
            pass  # request trailers have no ASGI message; the stream's end follows
        elif kind in _CONTROL_EVENTS:
            self._count_control(now)

    def receive_eof(self, now: float) -> None:
        if self.phase is Phase.CLOSED:
            return
        # policy: the client closed its side: no stream can get a response to it any more
        # (RFC 9113 has no half-closed connection), so every stream ends and the connection
        # closes.
        self._drop_streams(now)
        self._to_closed()

    # ------------------------------------------------------------------ streams in

    def _request_received(self, event: RequestReceived, now: float) -> None:
        stream_id = event.stream_id
        if self._draining:
            # RFC 9113 §6.8: "Once the GOAWAY is sent, the sender will ignore frames sent on
            # streams initiated by the receiver if the stream has an identifier higher than the
            # included last stream identifier"; REFUSED_STREAM tells the client it may retry
            # them elsewhere (§8.7).
            self._reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
            self._count_control(now)
            return
        if len(self._streams) >= self._settings.h2_max_concurrent_streams:
            # RFC 9113 §8.7: "The REFUSED_STREAM error code can be included in a RST_STREAM
            # frame to indicate that the stream is being closed prior to any processing having
            # occurred. Any request that was sent on the reset stream can be safely retried."
            # A stream is held until its app has finished and its response is out: the app of
            # a stream the client reset, and a response waiting on a shut window, still count.
            self._reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
            self._count_control(now)
            return
        method = path = authority = protocol = b""
        # h2 has joined split cookie fields with "; " (RFC 9113 §8.2.3), as an HTTP/1.1-style
        # consumer, which an ASGI app is, expects them.
        headers: list[tuple[bytes, bytes]] = []
        size = 0
        ended = event.stream_ended is not None
        malformed = False
        for name, value in event.headers or ():
            size += len(name) + len(value) + 32  # RFC 9113 §6.5.2: as RFC 7541 §4.1 counts
            if not _REQUEST_FIELD_VALUE.fullmatch(value):
                malformed = True
            if name[:1] == b":":
                if name == b":method":
                    method = value
                elif name == b":path":
                    path = value
                elif name == b":authority":
                    authority = value
                elif name == b":protocol":
                    protocol = value
            else:
                headers.append((name, value))
        if size > self._settings.h2_max_header_list_bytes:
            # RFC 9113 §10.5.1: "A server that receives a larger field block than it is willing
            # to handle can send an HTTP 431 (Request Header Fields Too Large) status code".
            self._refuse_stream(
                stream_id, 431, "request header list too large", now, client_ended=ended
            )
            return
        if malformed or not FIELD_NAME.fullmatch(method):
            # RFC 9113 §8.2.1: "A field value MUST NOT contain the zero value (ASCII NUL,
            # 0x00), line feed (ASCII LF, 0x0a), or carriage return (ASCII CR, 0x0d) at any
            # position" is h2's to check; the
            # rest of RFC 9110 §5.5 (no other control characters) and §9.1 (a method is a
            # token) is checked here, as h11 checks them on HTTP/1.1, so that an app sees the
            # same requests over both.
            self._refuse_stream(stream_id, 400, "malformed request field", now, client_ended=ended)
            return
        if authority and not any(name == b"host" for name, _ in headers):
            # ASGI HTTP spec, Connection Scope: "pseudo headers (present in HTTP/2 and
            # HTTP/3) must be removed; if :authority is present its value must be added to
            # the start of the iterable with host as the header name".
            headers.insert(0, (b"host", authority))
        if method == b"CONNECT":
            if protocol.lower() == b"websocket" and self._settings.ws_enabled:
                self._open_websocket(stream_id, path, headers, ended, now)
            else:
                # RFC 9110 §15.6.2: "The 501 (Not Implemented) status code indicates that the
                # server does not support the functionality required to fulfill the request";
                # policy: no tunnels, as on HTTP/1.1.
                self._refuse_stream(
                    stream_id, 501, "CONNECT is not supported", now, client_ended=ended
                )
            return
        if not _PATH.fullmatch(path) and not (path == b"*" and method == b"OPTIONS"):
            # RFC 9113 §8.3.1: ":path ... This pseudo-header field MUST NOT be empty for
            # "http" or "https" URIs; "http" or "https" URIs that do not contain a path
            # component MUST include a value of '/'. The exceptions to this rule are: an
            # OPTIONS request for an "http" or "https" URI that does not include a path
            # component; these MUST include a ":path" pseudo-header field with a value of
            # '*'"; its characters are those of an HTTP/1.1 request target (RFC 9112 §3.2).
            self._refuse_stream(stream_id, 400, "malformed :path", now, client_ended=ended)
            return
        head = RequestHead(method.decode("ascii", "replace"), path, "2", headers)
        self._open_stream(stream_id, head, ended=ended, now=now)

    def _open_stream(self, stream_id: int, head: RequestHead, *, ended: bool, now: float) -> None:
        settings = self._settings
        admission = settings.admission
        if admission is not None and not admission.try_enter():
            # RFC 9110 §15.6.4: 503 "indicates that the server is currently unable to handle
            # the request due to a temporary overload"; policy: --limit-concurrency sets it.
            self._refuse_stream(
                stream_id, 503, "the server is at its concurrency limit", now, client_ended=ended
            )
            return
        cycle = HTTPCycle(self, method=head.method, target=head.target, http_version="2", now=now)
        cycle.admitted = admission is not None
        proxied = any(name in PROXY_HEADERS for name, _ in head.headers)
        cycle.scope, cycle.client = new_scope(head, self._connection, settings, proxied=proxied)
        cycle.scope_headers = cycle.scope["headers"]
        names, cycle.offered = offered(
            "2", early_hints=settings.early_hints, push=self._may_push(stream_id)
        )
        extensions = cycle.scope["extensions"]
        for name in names:
            extensions[name] = {}
        stream = H2Stream(stream_id, cycle)
        if ended:
            cycle.request = RequestState.COMPLETE
            stream.client_ended = True
        else:
            # RFC 9110 §10.1.1: "A "100-continue" expectation informs recipients that the
            # client is about to send (presumably large) content in this request and wishes to
            # receive a 100 (Continue) interim response if the method, target URI, and header
            # fields are not sufficient to cause an immediate success, redirect, or error
            # response"; as on HTTP/1.1, the 100 goes when the app first asks for the body.
            stream.expect_continue = any(
                name == b"expect" and value.strip().lower() == b"100-continue"
                for name, value in head.headers
            )
        self._add(stream)
        self._events.append(StartApp(cycle=cycle, scope=cycle.scope))

    def _open_websocket(
        self,
        stream_id: int,
        path: bytes,
        headers: list[tuple[bytes, bytes]],
        ended: bool,
        now: float,
    ) -> None:
        problem = _websocket_problem(path, headers, ended)
        if problem is not None:
            status, reason = problem
            # RFC 6455 §4.2.2: "an appropriate HTTP error code (such as 426 Upgrade Required)
            # and a |Sec-WebSocket-Version| header field indicating the version(s) the server is
            # capable of understanding".
            extra = [(b"sec-websocket-version", b"13")] if status == 426 else []
            self._refuse_stream(
                stream_id, status, reason, now, extra_headers=extra, client_ended=ended
            )
            return
        admission = self._settings.admission
        if admission is not None and not admission.try_enter():
            # RFC 9110 §15.6.4 (503), as for a request: policy: a WebSocket session counts
            # toward --limit-concurrency like an app call.
            self._refuse_stream(
                stream_id, 503, "the server is at its concurrency limit", now, client_ended=ended
            )
            return
        request = RequestHead("GET", path, "2", headers)
        placeholder = _HandshakeCycle()
        stream = H2Stream(stream_id, placeholder)  # type: ignore[arg-type]
        writer = HTTP2Writer(self, stream)
        ws = WebSocketHandler(
            self._settings,
            self._connection,
            request=request,
            early=b"",
            writer=writer,
            output=stream.ws_output,
            events=stream.ws_events,
            now=now,
        )
        stream.ws = ws
        cycle = ws.cycle
        cycle.handler = self  # the app's calls come here first, for the stream's framing
        stream.cycle = cycle
        self._add(stream)
        self._ws_pump(stream, now)

    def _add(self, stream: H2Stream) -> None:
        self._streams[stream.id] = stream
        self._by_cycle[stream.cycle] = stream
        self.phase = Phase.CYCLE
        self._deadline = None

    def _refuse_stream(
        self,
        stream_id: int,
        status: int,
        reason: str,
        now: float,
        extra_headers: Sequence[tuple[bytes, bytes]] = (),
        *,
        client_ended: bool = False,
    ) -> None:
        """Answer a stream the app never sees with an error response."""
        stream = H2Stream(stream_id, _HandshakeCycle())  # type: ignore[arg-type]
        stream.app_running = False
        stream.client_ended = client_ended
        self._streams[stream_id] = stream
        HTTP2Writer(self, stream).write_error(status, reason, now, extra_headers=extra_headers)
        self._events.append(
            RequestRejected(client=self._connection.client, status=status, reason=reason)
        )
        self._count_control(now)  # a refused request costs work and moves nothing on
        self._release_if_done(stream, now)

    def _data_received(self, event: DataReceived, now: float) -> None:
        stream_id = event.stream_id
        data = event.data or b""
        size = event.flow_controlled_length or 0
        stream = self._streams.get(stream_id)
        if not data and event.stream_ended is None:
            self._count_control(now)  # an empty DATA frame moves nothing on
        if stream is None or stream.reset:
            if size:
                self._ack(stream_id, size)
            return
        ws = stream.ws
        if ws is not None:
            stream.unacked += size
            ws.receive_data(data, now)
            self._ws_pump(stream, now)
            return
        cycle: HTTPCycle = stream.cycle  # type: ignore[assignment]
        if not stream.app_running or cycle.response is ResponseState.DONE:
            if size:
                self._ack(stream_id, size)  # read and dropped: the response is out
            return
        stream.unacked += size
        if data:
            stream.expect_continue = False  # the client sent its body without waiting
            cycle.body.append(data)
            cycle.body_bytes += len(data)
            stream.body_deadline = None  # the app's next wait starts the clock again
            self._wake(cycle)

    def _request_complete(self, stream_id: int, now: float) -> None:
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        stream.client_ended = True
        stream.body_deadline = None
        stream.expect_continue = False
        ws = stream.ws
        if ws is not None:
            # RFC 8441 §5: the client's END_STREAM is its side of the TCP close.
            ws.receive_eof(now)
            self._ws_pump(stream, now)
            return
        cycle = stream.cycle
        if type(cycle) is HTTPCycle:
            if cycle.request is RequestState.RECEIVING:
                cycle.request = RequestState.COMPLETE
            self._wake(cycle)
        self._release_if_done(stream, now)

    def _stream_reset(self, stream_id: int, now: float) -> None:
        stream = self._streams.get(stream_id)
        if stream is not None:
            stream.reset = stream.ended = True
            self._abandon(stream, now)
            self._release_if_done(stream, now)

    def _reset_stream(self, stream_id: int, code: ErrorCodes) -> None:
        """RST_STREAM, unless h2 already closed the stream: a client's reset in the same read
        as its request is processed by h2 before this module sees the request."""
        with contextlib.suppress(ProtocolError):
            self._conn.reset_stream(stream_id, code)

    def _ack(self, stream_id: int, size: int) -> None:
        """Grant ``size`` flow-controlled bytes back (the stream's and the connection's)."""
        # A stream that closed meanwhile: h2 refuses, having granted the connection's share.
        with contextlib.suppress(ProtocolError):
            self._conn.acknowledge_received_data(size, stream_id)

    # ------------------------------------------------------------------ frames out

    def _send_headers(
        self, stream: H2Stream, headers: list[tuple[bytes, bytes]], *, end_stream: bool
    ) -> None:
        if stream.reset:
            return
        try:
            self._conn.send_headers(stream.id, headers, end_stream=end_stream)
        except ProtocolError:  # the stream, or the whole connection, closed under it
            self._closed_under_us(stream)
            return
        if end_stream:
            stream.ended = True

    def _send_head(self, stream: H2Stream, *, end_stream: bool) -> None:
        head = stream.head
        if head is not None:
            stream.head = None
            self._send_headers(stream, head, end_stream=end_stream)

    def _queue_data(self, stream: H2Stream, data: bytes) -> None:
        """Response bytes for the stream; ``_pump`` sends them (after the call that made
        them, so that the last body's END_STREAM rides on its DATA frame)."""
        if stream.reset or not data:
            return
        stream.pending.append(data)
        stream.pending_bytes += len(data)

    def _closed_under_us(self, stream: H2Stream) -> None:
        """h2 closed the stream (the client reset it in a read not yet dispatched), or the
        connection under it (a GOAWAY with an error)."""
        stream.reset = stream.ended = True
        _drop_pending(stream)

    def _grant(self, stream: H2Stream) -> None:
        """Grant back the window of the body bytes the stream has taken."""
        if stream.unacked:
            self._ack(stream.id, stream.unacked)
            stream.unacked = 0

    def _pump(self, stream: H2Stream) -> None:
        """Send what the windows allow of the stream's response, then its end."""
        if stream.reset or stream.ended:
            return
        try:
            self._pump_frames(stream)
        except ProtocolError:  # the stream, or the whole connection, closed under it
            self._closed_under_us(stream)

    def _pump_frames(self, stream: H2Stream) -> None:
        conn = self._conn
        pending = stream.pending
        end = stream.end_pending
        if stream.head is not None:
            self._send_head(stream, end_stream=end and not pending and not stream.trailers)
            if stream.ended:
                self._response_sent(stream)
                return
        if pending:
            frame_size = conn.max_outbound_frame_size
            window = conn.local_flow_control_window(stream.id)
            if (
                window < _MIN_DATA_FRAME_BYTES
                and window < stream.pending_bytes
                and conn.remote_settings.initial_window_size >= 4 * _MIN_DATA_FRAME_BYTES
            ):
                window = 0  # wait for a window worth a frame (see _MIN_DATA_FRAME_BYTES)
            sent = False
            while pending and window > 0:
                sent = True
                data = pending[0]
                size = min(len(data), window, frame_size)
                if size < len(data):
                    piece = data[:size]
                    pending[0] = data[size:]
                else:
                    piece = data
                    pending.popleft()
                stream.pending_bytes -= size
                window -= size
                if (size >= _MIN_DATA_FRAME_BYTES or not pending) and (
                    self._update_credit < _MAX_UPDATE_CREDIT
                ):
                    self._update_credit += 2
                last = not pending and end and not stream.trailers
                conn.send_data(stream.id, piece, end_stream=last)
                if last:
                    stream.ended = True
            if pending:
                # The bytes wait on the peer's window: the clock runs from the last time any
                # went out, so a download paced by its reader is never cut.
                if sent or stream.stalled_since is None:
                    stream.stalled_since = self._now_hint
                    self._timed.add(stream)
                return
            stream.stalled_since = None
        if end and not stream.ended:
            if stream.trailers:
                self._send_headers(stream, stream.trailers, end_stream=True)
            else:
                conn.end_stream(stream.id)
                stream.ended = True
        if stream.ended:
            self._response_sent(stream)

    def _response_sent(self, stream: H2Stream) -> None:
        """The stream's END_STREAM is out: RFC 9113 §8.1, "An HTTP response is complete after
        the server sends -- or the client receives -- a frame with the END_STREAM flag set"."""
        if stream.ws is None:
            self._stop_client(stream)
        self._release_if_done(stream, self._now_hint)

    def _stop_client(self, stream: H2Stream) -> None:
        """The response is complete and the client's side of the stream is still open: RFC
        9113 §8.1, "A server can send a complete response prior to the client sending an
        entire request ... a server MAY request that the client abort transmission of a
        request without error by sending a RST_STREAM with an error code of NO_ERROR". A
        stream left half-closed would count toward nothing here and be held by h2 forever."""
        if not stream.client_ended and not stream.reset:  # RFC 9113 §8.1, quoted above
            self._reset_stream(stream.id, ErrorCodes.NO_ERROR)
            stream.reset = True

    def _window_updated(self, stream_id: int, now: float) -> None:
        self._now_hint = now
        if stream_id:
            stream = self._streams.get(stream_id)
            if stream is not None:
                self._drain(stream, now)
            return
        for stream in list(self._streams.values()):
            if stream.pending:
                self._drain(stream, now)

    def _drain(self, stream: H2Stream, now: float) -> None:
        """A window opened: send what it allows, and let whoever waits on the stream go on."""
        if stream.ws is not None:
            self._ws_pump(stream, now)
        else:
            self._pump(stream)
        self._wake_sender(stream)

    def _wake_sender(self, stream: H2Stream) -> None:
        if stream.send_blocked and stream.pending_bytes <= self._settings.write_high_water_bytes:
            stream.send_blocked = False
            self._events.append(WakeApp(cycle=stream.cycle))

    def _settings_changed(self, event: RemoteSettingsChanged, now: float) -> None:
        changed = event.changed_settings
        if SettingCodes.INITIAL_WINDOW_SIZE in changed:
            self._window_updated(0, now)

    # ------------------------------------------------------------------ WebSocket streams

    def _ws_pump(self, stream: H2Stream, now: float) -> None:
        """Move what the stream's WebSocket handler queued into the stream."""
        self._now_hint = now
        ws = stream.ws
        assert ws is not None
        output = stream.ws_output
        if output:
            data = b"".join(output)
            output.clear()
            self._queue_data(stream, data)
            self._pump(stream)
        # The stream's unsent bytes are the WebSocket handler's unsent output: above the
        # high-water mark it stops reading (its pongs and close frames answer what it reads),
        # and the stream's window is not granted back, so the client stops sending.
        paused = stream.pending_bytes > self._settings.write_high_water_bytes
        if paused != ws.writing_paused:
            ws.set_writing_paused(paused)
        ended = False
        for event in stream.ws_events:
            if event is SEND_EOF or event is CLOSE_CONNECTION:
                ended = True
            elif event is not PAUSE_READING and event is not RESUME_READING:
                self._events.append(event)
        stream.ws_events.clear()
        if not ws.reading_paused:
            self._grant(stream)
        if ended and not stream.end_pending:
            # RFC 8441 §5: the WebSocket's TCP close is the stream's END_STREAM.
            stream.end_pending = True
            self._pump(stream)
        if ws.next_deadline() is not None:
            self._timed.add(stream)
        if ended or ws.phase is Phase.CLOSED:
            self._release_if_done(stream, now)

    # ------------------------------------------------------------------ app side

    def send_ready(self, cycle: object) -> bool:
        stream = self._by_cycle.get(cycle)  # type: ignore[call-overload]
        if stream is None or stream.reset:
            return True  # the next send() says the client has gone
        if stream.pending_bytes <= self._settings.write_high_water_bytes:
            return True
        stream.send_blocked = True
        return False

    def message_for_app(self, cycle: Any, now: float | None = None) -> dict[str, Any] | None:
        if now is not None:
            self._now_hint = now
        stream = self._by_cycle.get(cycle)
        if stream is not None and stream.ws is not None:
            message = stream.ws.message_for_app(cycle)
            self._ws_pump(stream, self._now_hint)
            self._flush()
            return message
        request = cycle.request
        if request is RequestState.GONE or cycle.response is ResponseState.DONE:
            # ASGI HTTP spec, Disconnect: sent if receive is called after a response has
            # been sent or after the connection has been closed.
            return {"type": "http.disconnect"}
        if cycle.body:
            body = cycle.body[0] if len(cycle.body) == 1 else b"".join(cycle.body)
            cycle.body.clear()
            cycle.body_bytes = 0
            more_body = request is RequestState.RECEIVING
            if not more_body:
                cycle.request = RequestState.DELIVERED
            if stream is not None and stream.unacked:
                self._grant(stream)
                self._flush()
            return {"type": "http.request", "body": bytes(body), "more_body": more_body}
        if request is RequestState.COMPLETE:
            cycle.request = RequestState.DELIVERED
            return {"type": "http.request", "body": b"", "more_body": False}
        cycle.app_waiting = True
        if stream is None:
            return None
        if stream.expect_continue:
            # The client waits for 100 before sending its body (RFC 9110 §10.1.1, quoted
            # where the flag is set): now that the app asks for it.
            stream.expect_continue = False
            self._send_headers(stream, [(b":status", b"100")], end_stream=False)
            self._flush()
        timeout = self._settings.request_body_timeout_s
        if timeout is not None:
            # The app waits for body its window lets the client send: a client that sends
            # none for this long is cut off (slowloris on a stream), as on HTTP/1.1. The clock
            # starts now, not when the request came: the app may have worked for a while.
            stream.body_deadline = self._now_hint + timeout
            self._timed.add(stream)
        return None

    def message_from_app(self, cycle: Any, message: MutableMapping[str, Any], now: float) -> None:
        self._now_hint = now
        stream = self._by_cycle.get(cycle)
        if stream is not None and stream.ws is not None:
            try:
                stream.ws.message_from_app(cycle, message, now)
            finally:
                self._ws_pump(stream, now)
                self._flush()
            return
        steps = HTTP_STEPS
        step = steps.step(cycle, message)
        if step is None:
            raise steps.refusal(cycle, message, http_send_types(cycle.offered), "an http/2 stream")
        if stream is None:
            # ASGI HTTP spec, "Disconnected Client": "If send() is called on a closed connection
            # the server should raise a server-specific subclass of OSError."
            raise ClientDisconnected("the client disconnected")
        try:
            done = step(steps, cycle, message, HTTP2Writer(self, stream), now)
        except ContentLengthMismatch:
            # RFC 9113 §8.1.1: "A request or response is also malformed if the value of a
            # content-length header field does not equal the sum of the DATA frame payload
            # lengths that form the content"; the stream is reset rather than ended, and
            # INTERNAL_ERROR (§7: "The endpoint encountered an unexpected internal error") says
            # whose fault it is.
            self._finish_response(stream, now, complete=False)
            self._reset(stream, ErrorCodes.INTERNAL_ERROR, now)
            self._flush()
            raise
        self._pump(stream)
        if done:
            self._finish_response(stream, now, complete=True)
        elif cycle.file is not None:
            self._events.append(cycle.file.event)
        self._flush()

    def _file_stream(self, cycle: HTTPCycle, call: str, now: float) -> H2Stream:
        """The stream of a cycle whose file body the driver answers about (``call``)."""
        self._now_hint = now
        stream = self._by_cycle.get(cycle)
        if cycle.file is None:
            # policy: the driver broke spec/driver-contract.md, not the app.
            raise ASGIProtocolError(f"{call} without a pending file body (driver contract)")
        if cycle.gone or stream is None:
            # ASGI HTTP spec, "Disconnected Client", as in message_from_app.
            cycle.file = None
            raise ClientDisconnected("the client disconnected")
        return stream

    def file_opened(self, cycle: HTTPCycle, fd: int, offset: int, count: int, now: float) -> None:
        stream = self._file_stream(cycle, "file_opened", now)
        try:
            send = file_head(cycle, count, HTTP2Writer(self, stream))
        except ContentLengthMismatch:
            # RFC 9113 §8.1.1, as in message_from_app: a file of the wrong length resets.
            cycle.file = None
            self._finish_response(stream, now, complete=False)
            self._reset(stream, ErrorCodes.INTERNAL_ERROR, now)
            self._flush()
            raise
        if send:
            self._events.append(FeedFile(cycle=cycle, fd=fd, offset=offset, count=count))
        else:
            self._file_done(cycle, stream, now)
        self._flush()

    def file_data(self, cycle: HTTPCycle, data: bytes, now: float) -> None:
        """A piece of the file ``FeedFile`` asked for."""
        self._now_hint = now
        stream = self._by_cycle.get(cycle)
        if cycle.gone or stream is None:
            # ASGI HTTP spec, "Disconnected Client", as in message_from_app.
            cycle.file = None
            raise ClientDisconnected("the client disconnected")
        self._queue_data(stream, data)
        self._pump(stream)
        self._flush()

    def file_failed(self, cycle: HTTPCycle, exc: BaseException, now: float) -> None:
        cycle.file = None

    def file_sent(self, cycle: HTTPCycle, now: float) -> None:
        stream = self._file_stream(cycle, "file_sent", now)
        self._file_done(cycle, stream, now)
        self._flush()

    def _file_done(self, cycle: HTTPCycle, stream: H2Stream, now: float) -> None:
        if file_end(cycle, HTTP2Writer(self, stream)):
            self._finish_response(stream, now, complete=True)

    def _finish_response(self, stream: H2Stream, now: float, *, complete: bool) -> None:
        cycle: HTTPCycle = stream.cycle  # type: ignore[assignment]
        self._events.append(completed(cycle, now, complete=complete))
        self._wake(cycle)
        self._release_if_done(stream, now)

    def app_finished(self, cycle: Any, exc: BaseException | None, now: float) -> None:
        self._now_hint = now
        stream = self._by_cycle.get(cycle)
        if stream is None:
            return
        stream.app_running = False
        if stream.ws is not None:
            stream.ws.app_finished(cycle, exc, now)
            self._ws_pump(stream, now)
            self._release_if_done(stream, now)
            self._flush()
            return
        if cycle.admitted:
            cycle.admitted = False
            assert self._settings.admission is not None
            self._settings.admission.leave()
        state = cycle.response
        if state is not ResponseState.DONE and not cycle.gone:
            if state in IN_PROGRESS:
                if exc is None:
                    self._misbehaved("ASGI callable returned without completing the response")
                self._finish_response(stream, now, complete=False)
                # RFC 9113 §8.1: a response cut short is a stream reset, never an END_STREAM.
                self._reset(stream, ErrorCodes.INTERNAL_ERROR, now)
            else:
                if exc is None:
                    self._misbehaved("ASGI callable returned without starting the response")
                # policy: nothing is on the wire yet: 500, as on HTTP/1.1 (RFC 9110 §15.6.1:
                # "the server encountered an unexpected condition that prevented it from
                # fulfilling the request"); the connection's other streams go on.
                cycle.head = None
                cycle.status = 500
                HTTP2Writer(self, stream).write_error(
                    500, "", now, head_only=cycle.method == "HEAD"
                )
                self._finish_response(stream, now, complete=False)
        self._grant(stream)  # nobody reads the rest of this body
        self._release_if_done(stream, now)
        self._flush()

    def _misbehaved(self, reason: str) -> None:
        self._events.append(AppMisbehaved(reason=reason))

    def _wake(self, cycle: HTTPCycle) -> None:
        if cycle.app_waiting:
            cycle.app_waiting = False
            self._events.append(WakeApp(cycle=cycle))

    # ------------------------------------------------------------------ server push

    def _push(self, parent: H2Stream, path: str, headers: Headers, now: float) -> None:
        """``http.response.push``: promise the request on the parent stream, then serve it as
        a new app call (ASGI extensions, HTTP/2 Server Push)."""
        fields = []
        for _, lowered, value in validated_headers(headers, PUSH):
            if lowered in CONNECTION_SPECIFIC:
                raise ASGIProtocolError(
                    f"{PUSH}: {lowered.decode('latin-1')!r} cannot be pushed (RFC 9113 §8.2.2: "
                    '"An endpoint MUST NOT generate an HTTP/2 message containing '
                    'connection-specific header fields")'
                )
            fields.append((lowered, value))
        conn = self._conn
        if (
            not self._may_push(parent.id)
            or parent.ended
            or len(self._streams) >= self._settings.h2_max_concurrent_streams
            or conn.open_outbound_streams >= conn.remote_settings.max_concurrent_streams
        ):
            # ASGI extensions, "HTTP/2 Server Push": "If the client supports server push, the
            # server should create a new connection to a new instance of the application";
            # policy: when it does not, or has no room (RFC 9113 §8.4.2: "A client can use the
            # SETTINGS_MAX_CONCURRENT_STREAMS setting to limit the number of responses that
            # can be concurrently pushed by a server"), the message is ignored.
            return
        parent_cycle: HTTPCycle = parent.cycle  # type: ignore[assignment]
        authority = b""
        for name, value in parent_cycle.scope_headers:
            if name == b"host":
                authority = value
                break
        target = quote(path, safe="/:@!$&'()*+,;=-._~%?").encode("ascii")
        promised = conn.get_next_available_stream_id()
        request = [
            (b":method", b"GET"),
            (b":scheme", self._connection.scheme.encode("ascii")),
            (b":authority", authority),
            (b":path", target),
            *fields,
        ]
        try:
            conn.push_stream(parent.id, promised, request)
        except ProtocolError:  # the parent stream closed meanwhile: nothing to push on
            return
        host = [(b"host", authority)] if authority else []
        head = RequestHead("GET", target, "2", [*host, *fields])
        self._open_stream(promised, head, ended=True, now=now)

    def _may_push(self, stream_id: int) -> bool:
        """Whether a push may be promised on the stream: the client allows push and pushed
        streams (SETTINGS_ENABLE_PUSH, SETTINGS_MAX_CONCURRENT_STREAMS), the connection is not
        draining, and the stream is the client's (RFC 9113 §6.6: "PUSH_PROMISE frames MUST
        only be sent on a peer-initiated stream")."""
        remote = self._conn.remote_settings
        return (
            stream_id % 2 == 1
            and not self._draining
            and bool(remote.enable_push)
            and remote.max_concurrent_streams > 0
        )

    # ------------------------------------------------------------------ time

    def next_deadline(self) -> float | None:
        deadline = self._deadline
        for stream in self._timed:
            candidate = self._stream_deadline(stream)
            if candidate is not None and (deadline is None or candidate < deadline):
                deadline = candidate
        return deadline

    def _stream_deadline(self, stream: H2Stream) -> float | None:
        deadline = stream.body_deadline
        if stream.stalled_since is not None:
            stalled = stream.stalled_since + self._settings.h2_window_timeout_s
            if deadline is None or stalled < deadline:
                deadline = stalled
        if stream.ws is not None:
            ws_deadline = stream.ws.next_deadline()
            if ws_deadline is not None and (deadline is None or ws_deadline < deadline):
                deadline = ws_deadline
        return deadline

    def handle_timer(self, now: float) -> None:
        self._now_hint = now
        super().handle_timer(now)
        for stream in list(self._timed):
            if stream.ws is not None:
                stream.ws.handle_timer(now)
                self._ws_pump(stream, now)
            if stream.stalled_since is not None and (
                now >= stream.stalled_since + self._settings.h2_window_timeout_s
            ):
                # The peer kept the window shut: the response cannot go on. RFC 9113 §7:
                # "CANCEL (0x08): The endpoint uses this error code to indicate that the stream
                # is no longer needed." policy: h2_window_timeout_s.
                self._abandon(stream, now)
                self._reset(stream, ErrorCodes.CANCEL, now)
            elif stream.body_deadline is not None and now >= stream.body_deadline:
                # The request body stopped arriving while the app waits for it: CANCEL, as
                # above. policy: request_body_timeout_s, HTTP/1.1's 408 for one stream.
                stream.body_deadline = None
                self._abandon(stream, now)
                self._reset(stream, ErrorCodes.CANCEL, now)
            if self._stream_deadline(stream) is None:
                self._timed.discard(stream)
        self._flush()

    def _deadline_passed(self, now: float) -> None:
        phase = self.phase
        if phase is Phase.LINGERING:
            self._to_closed()  # RFC 9112 §9.6's staged close, as on HTTP/1.1: its last stage
        elif phase is Phase.HEADERS:
            # policy: no preface in time: nothing to answer, as a silent HTTP/1.1 connection.
            self._to_closed()
        elif phase is Phase.IDLE:
            # RFC 9113 §9.1: "Servers are encouraged to maintain open connections for as long
            # as possible but are permitted to terminate idle connections if necessary. When
            # either endpoint chooses to close the transport-layer TCP connection, the
            # terminating endpoint SHOULD first send a GOAWAY (Section 6.8) frame".
            self._conn.close_connection(ErrorCodes.NO_ERROR)
            self._flush()
            self._linger(now)

    def shutdown(self, now: float) -> None:
        """The server is stopping: GOAWAY with the last stream served; the streams in flight
        finish, new ones are refused, and the connection closes after the last."""
        self._now_hint = now
        if self.phase in (Phase.LINGERING, Phase.CLOSED) or self._draining:
            return
        self._draining = True
        # RFC 9113 §6.8: "GOAWAY allows an endpoint to gracefully stop accepting new streams
        # while still finishing processing of previously established streams"; §7: NO_ERROR,
        # "a GOAWAY might include this code to indicate graceful shutdown of a connection."
        if not self._streams:
            self._conn.close_connection(ErrorCodes.NO_ERROR)
            self._flush()
            self._linger(now)
            return
        self._goaway(ErrorCodes.NO_ERROR)  # RFC 9113 §6.8 and §7, quoted above
        for stream in list(self._streams.values()):
            if stream.ws is not None:
                stream.ws.shutdown(now)
                self._ws_pump(stream, now)
        self._flush()

    def _goaway(self, code: ErrorCodes) -> None:
        """A GOAWAY written directly: h2's own closes its state machine, and the streams in
        flight still have frames to send (RFC 9113 §6.8: streams up to the last one may
        still complete)."""
        self._flush()
        frame = GoAwayFrame(0)
        frame.last_stream_id = self._conn.highest_inbound_stream_id
        frame.error_code = code
        self._output.append(frame.serialize())

    def _goaway_received(self, event: ConnectionTerminated, now: float) -> None:
        if event.error_code:
            # RFC 9113 §5.4.1: "After sending the GOAWAY frame for an error condition, the
            # endpoint MUST close the TCP connection": the peer is closing; so does this side.
            self._end_all(now)
            return
        # RFC 9113 §6.8: the peer opens no new stream; the ones in flight finish.
        self._draining = True
        if not self._streams:
            self._flush()
            self._linger(now)
            return
        # h2 closes its state machine on any GOAWAY received, which would refuse the frames of
        # the streams in flight: it is put back, so that it still checks what the peer sends.
        self._conn.state_machine.state = ConnectionState.SERVER_OPEN

    # ------------------------------------------------------------------ floods

    def _count_control(self, now: float) -> None:
        self._new_interval(now)
        self._control_frames += 1
        if self._control_frames > self._settings.h2_max_control_frames:
            self._calm("too many control frames", now)

    def _count_reset(self, now: float) -> None:
        self._new_interval(now)
        self._resets += 1
        if self._resets > self._settings.h2_max_resets:
            self._calm("too many streams reset", now)

    def _new_interval(self, now: float) -> None:
        """The counts are per ``h2_flood_interval_s``: start a new interval when it is over."""
        if now - self._interval_start >= self._settings.h2_flood_interval_s:
            self._interval_start = now
            self._resets = self._control_frames = 0

    def _calm(self, reason: str, now: float) -> None:
        """A flood: GOAWAY ENHANCE_YOUR_CALM (RFC 9113 §7) and close."""
        if self.phase is Phase.LINGERING or self.phase is Phase.CLOSED:
            return
        self._events.append(self._rejected(reason))
        self._goaway(_ENHANCE_YOUR_CALM)
        self._end_all(now)

    def _protocol_error(self, exc: ProtocolError, now: float) -> None:
        """h2 refused what the client sent, and queued a GOAWAY with its error's code. Two
        kinds it codes as PROTOCOL_ERROR have codes of their own, written here instead:
        RFC 9113 §4.3, "A decoding error in a field block MUST be treated as a connection
        error (Section 5.4.1) of type COMPRESSION_ERROR", and §6.5, "Receipt of a SETTINGS
        frame with the ACK flag set and a length field value other than 0 MUST be treated as a
        connection error (Section 5.4.1) of type FRAME_SIZE_ERROR"."""
        cause = exc.__cause__
        code: ErrorCodes | None = None
        if isinstance(cause, HPACKError) and not isinstance(cause, OversizedHeaderListError):
            code = ErrorCodes.COMPRESSION_ERROR
        elif isinstance(cause, InvalidDataError) and "ack" in str(cause):
            code = ErrorCodes.FRAME_SIZE_ERROR
        reason = str(exc) or type(exc).__name__
        if code is None:
            # RFC 9113 §5.4.1, quoted in _connection_error: h2's GOAWAY is out; close.
            self._events.append(self._rejected(f"HTTP/2 protocol error: {reason}"))
            self._flush()
            self._end_all(now)
            return
        data = self._conn.data_to_send()
        if data[-_GOAWAY_BYTES:][3:4] == _GOAWAY_TYPE:
            data = data[:-_GOAWAY_BYTES]  # h2's GOAWAY, with the code replaced below
        if data:
            self._output.append(data)
        self._connection_error(code, reason, now)

    def _connection_error(self, code: ErrorCodes, reason: str, now: float) -> None:
        """RFC 9113 §5.4.1: "An endpoint that encounters a connection error SHOULD first send a
        GOAWAY frame ... After sending the GOAWAY frame for an error condition, the endpoint
        MUST close the TCP connection." """
        self._events.append(self._rejected(f"HTTP/2 protocol error: {reason}"))
        self._goaway(code)
        self._end_all(now)

    def _rejected(self, reason: str) -> RequestRejected:
        return RequestRejected(client=self._connection.client, status=0, reason=reason)

    def _end_all(self, now: float) -> None:
        """The connection ends (an error, or the peer's): every stream is dropped, and the
        close is RFC 9112 §9.6's staged one, as on HTTP/1.1."""
        self._draining = True
        self._drop_streams(now)
        self._linger(now)

    def _drop_streams(self, now: float) -> None:
        """The connection is ending: every stream is gone, and each is forgotten once its app
        has finished."""
        for stream in list(self._streams.values()):
            stream.reset = stream.ended = True
            self._abandon(stream, now)
            self._release_if_done(stream, now)

    # ------------------------------------------------------------------ ending streams

    def _reset(self, stream: H2Stream, code: ErrorCodes, now: float) -> None:
        if not stream.reset:
            stream.reset = stream.ended = True
            self._reset_stream(stream.id, code)
        _drop_pending(stream)
        self._release_if_done(stream, now)

    def _abandon(self, stream: H2Stream, now: float) -> None:
        """The stream is gone under its app: receive() says disconnect, send() raises."""
        _drop_pending(stream)
        stream.body_deadline = None
        if stream.send_blocked:
            stream.send_blocked = False
            self._events.append(WakeApp(cycle=stream.cycle))
        ws = stream.ws
        if ws is not None:
            if ws.phase is not Phase.CLOSED:
                ws.receive_eof(now)
                self._ws_pump(stream, now)
            return
        cycle = stream.cycle
        if type(cycle) is not HTTPCycle or cycle.gone:
            return
        cycle.request = RequestState.GONE
        cycle.body.clear()
        cycle.body_bytes = 0
        state = cycle.response
        if state is not ResponseState.NOT_STARTED and state is not ResponseState.DONE:
            self._events.append(completed(cycle, now, complete=False))
        self._wake(cycle)

    def _release_if_done(self, stream: H2Stream, now: float) -> None:
        """Forget a stream whose app has finished and whose response is out (or reset)."""
        if stream.app_running or not (stream.ended or stream.reset):
            return
        ws = stream.ws
        if ws is not None and ws.phase is not Phase.CLOSED and not stream.reset:
            return  # a WebSocket lingers for the client's END_STREAM (its TCP close)
        if stream.pending and not stream.reset:
            return
        if self._streams.get(stream.id) is stream:
            del self._streams[stream.id]
        self._by_cycle.pop(stream.cycle, None)
        self._timed.discard(stream)
        self._grant(stream)
        self._stop_client(stream)  # RFC 9113 §8.1: RST_STREAM(NO_ERROR), quoted in it
        if not self._streams and self.phase is Phase.CYCLE:
            if self._draining:
                # RFC 9113 §6.8: after a GOAWAY the streams up to its last one finish; the last
                # has, so the connection closes.
                self._flush()
                self._linger(now)
            else:
                self.phase = Phase.IDLE
                self._deadline = now + self._settings.keep_alive_timeout_s

    @property
    def is_idle(self) -> bool:
        return not self._streams

    # ------------------------------------------------------------------ output

    def _flush(self) -> None:
        data = self._conn.data_to_send()
        if data:
            self._output.append(data)

    def _linger(self, now: float) -> None:
        self._flush()
        super()._linger(now)


def _drop_pending(stream: H2Stream) -> None:
    """The response bytes the stream holds will never be sent."""
    stream.pending.clear()
    stream.pending_bytes = 0
    stream.stalled_since = None


class _HandshakeCycle:
    """The stand-in cycle of a stream the app never sees (refused, or a WebSocket before its
    handler made its cycle)."""

    __slots__ = ()


# Events that are frames asking for work without moving a request on (RFC 9113 §10.5).
_CONTROL_EVENTS = frozenset(
    {PingReceived, PriorityUpdated, SettingsAcknowledged, UnknownFrameReceived}
)


def _websocket_problem(
    path: bytes, headers: list[tuple[bytes, bytes]], ended: bool
) -> tuple[int, str] | None:
    """Why an extended CONNECT is not a valid WebSocket handshake (RFC 8441 §4, §5), or None."""
    if path[:1] != b"/":
        return 400, "malformed :path"
    if ended:
        return 400, "a WebSocket CONNECT must leave its stream open (RFC 8441 §5)"
    versions = [value.strip() for name, value in headers if name == b"sec-websocket-version"]
    if versions != [b"13"]:
        return 426, "Sec-WebSocket-Version must be 13 (RFC 6455 §4.2.2, RFC 8441 §5)"
    return None
