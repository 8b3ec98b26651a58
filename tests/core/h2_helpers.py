"""HTTP/2 tools for the sans-IO core tests: a client, a raw frame writer and a frame reader.

* ``H2Harness`` is ``Harness`` with an h2 *client* on the other end: the client's bytes go
  into the ``ServerProtocol``, the server's bytes go back into the client (``exchange``), and
  the client's events are kept per stream (``response``), as a real client would see them.
* ``frame`` and its friends build frames by hand, for what the h2 client refuses to send
  (floods, malformed frames, frames after a GOAWAY).
* ``FrameReader`` reads the server's bytes frame by frame *without* validating them, and
  decodes its header blocks, so a test can look at exactly what went on the wire (a GOAWAY's
  error code, the values of the server's SETTINGS).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import hpack
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
)
from h2.events import (
    Event as H2Event,
)
from h2.settings import SettingCodes, Settings

from sansio_asgi.core import ProtocolSettings, ServerProtocol
from sansio_asgi.core.events import (
    CloseConnection,
    FeedFile,
    OpenFile,
    SendEOF,
    SendFile,
    StartApp,
)

from .helpers import CLIENT, SERVER, Harness

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 §6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 0x8, 0x9
# Flags.
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20
# Error codes (RFC 9113 §7).
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9
ENHANCE_YOUR_CALM = 0xB

# An extended CONNECT for a WebSocket over HTTP/2 (RFC 8441 §4).
WS_CONNECT = [
    (b":method", b"CONNECT"),
    (b":protocol", b"websocket"),
    (b":scheme", b"http"),
    (b":path", b"/ws"),
    (b":authority", b"example.com"),
    (b"sec-websocket-version", b"13"),
]

# Settings identifiers (RFC 9113 §6.5.2, RFC 8441 §3).
HEADER_TABLE_SIZE = 0x1
ENABLE_PUSH = 0x2
MAX_CONCURRENT_STREAMS = 0x3
INITIAL_WINDOW_SIZE = 0x4
MAX_FRAME_SIZE = 0x5
MAX_HEADER_LIST_SIZE = 0x6
ENABLE_CONNECT_PROTOCOL = 0x8

REQUEST = (
    (b":method", b"GET"),
    (b":scheme", b"http"),
    (b":authority", b"example.com"),
    (b":path", b"/"),
)


# ---------------------------------------------------------------- writing frames by hand


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One frame: the 9-byte header (RFC 9113 §4.1) and ``payload``, checked by nobody."""
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([kind, flags])
        + struct.pack(">I", stream_id & 0x7FFFFFFF)
        + payload
    )


def settings_frame(values: dict[int, int] | None = None, *, ack: bool = False) -> bytes:
    payload = b"".join(struct.pack(">HI", k, v) for k, v in (values or {}).items())
    return frame(SETTINGS, ACK if ack else 0, 0, payload)


def ping_frame(data: bytes = b"\0" * 8, *, ack: bool = False) -> bytes:
    return frame(PING, ACK if ack else 0, 0, data)


def window_update_frame(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))


def rst_stream_frame(stream_id: int, code: int = CANCEL) -> bytes:
    return frame(RST_STREAM, 0, stream_id, struct.pack(">I", code))


def priority_frame(
    stream_id: int, depends_on: int, weight: int = 16, *, exclusive: bool = False
) -> bytes:
    dependency = depends_on | (0x80000000 if exclusive else 0)
    return frame(PRIORITY, 0, stream_id, struct.pack(">IB", dependency, weight - 1))


def data_frame(stream_id: int, data: bytes = b"", *, end_stream: bool = False) -> bytes:
    return frame(DATA, END_STREAM if end_stream else 0, stream_id, data)


def headers_frame(
    stream_id: int, block: bytes, *, end_stream: bool = True, end_headers: bool = True
) -> bytes:
    flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
    return frame(HEADERS, flags, stream_id, block)


def request_headers(
    method: bytes = b"GET",
    path: bytes = b"/",
    extra: Iterable[tuple[bytes, bytes]] = (),
    *,
    authority: bytes = b"example.com",
) -> list[tuple[bytes, bytes]]:
    return [
        (b":method", method),
        (b":scheme", b"http"),
        (b":authority", authority),
        (b":path", path),
        *extra,
    ]


class RawClient:
    """A hand-driven client: an HPACK encoder, and frames built with ``frame``.

    ``start()`` is the connection preface with an empty SETTINGS frame (a client's settings
    at their defaults, so its window is 65,535 and push is on)."""

    def __init__(self) -> None:
        self.encoder = hpack.Encoder()

    @staticmethod
    def start(values: dict[int, int] | None = None) -> bytes:
        return PREFACE + settings_frame(values)

    def headers(
        self,
        stream_id: int,
        headers: Sequence[tuple[bytes, bytes]] | None = None,
        *,
        end_stream: bool = True,
    ) -> bytes:
        block = self.encoder.encode(list(headers or REQUEST))
        return headers_frame(stream_id, block, end_stream=end_stream)


# ---------------------------------------------------------------- reading the server's frames


@dataclass
class Frame:
    kind: int
    flags: int
    stream_id: int
    payload: bytes
    headers: list[tuple[bytes, bytes]] | None = None  # a decoded header block

    @property
    def error_code(self) -> int:
        assert self.kind in (RST_STREAM, GOAWAY), self
        return struct.unpack(
            ">I", self.payload[-4:] if self.kind == RST_STREAM else self.payload[4:8]
        )[0]

    @property
    def last_stream_id(self) -> int:
        assert self.kind == GOAWAY, self
        return struct.unpack(">I", self.payload[:4])[0] & 0x7FFFFFFF

    @property
    def settings(self) -> dict[int, int]:
        assert self.kind == SETTINGS, self
        pairs = [
            struct.unpack(">HI", self.payload[i : i + 6]) for i in range(0, len(self.payload), 6)
        ]
        return dict(pairs)

    @property
    def increment(self) -> int:
        assert self.kind == WINDOW_UPDATE, self
        return struct.unpack(">I", self.payload)[0] & 0x7FFFFFFF

    @property
    def status(self) -> int:
        assert self.headers is not None, self
        return int(dict(self.headers)[b":status"])


class FrameReader:
    """Reads the server's bytes frame by frame, decoding header blocks with its own HPACK
    decoder (header blocks are decoded in order, as the server encoded them)."""

    def __init__(self) -> None:
        self.buffer = b""
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 30
        # Whatever table size the client's SETTINGS allowed the server's encoder.
        self.decoder.max_allowed_table_size = 1 << 32
        self._block: Frame | None = None  # a HEADERS or PUSH_PROMISE awaiting CONTINUATION

    def feed(self, data: bytes) -> list[Frame]:
        self.buffer += data
        frames: list[Frame] = []
        while len(self.buffer) >= 9:
            length = int.from_bytes(self.buffer[:3], "big")
            if len(self.buffer) < 9 + length:
                break
            kind, flags = self.buffer[3], self.buffer[4]
            stream_id = int.from_bytes(self.buffer[5:9], "big") & 0x7FFFFFFF
            payload = self.buffer[9 : 9 + length]
            self.buffer = self.buffer[9 + length :]
            item = Frame(kind, flags, stream_id, payload)
            if kind in (HEADERS, PUSH_PROMISE):
                self._block = item
                item.payload = _header_fragment(kind, flags, payload)
            elif kind == CONTINUATION and self._block is not None:
                self._block.payload += payload
                item = self._block
            if item is self._block and flags & END_HEADERS:
                block = item.payload[4:] if kind == PUSH_PROMISE else item.payload
                item.headers = [
                    (bytes(k), bytes(v)) for k, v in self.decoder.decode(block, raw=True)
                ]
                self._block = None
            if kind != CONTINUATION:
                frames.append(item)
        return frames


def _header_fragment(kind: int, flags: int, payload: bytes) -> bytes:
    """The header block fragment of a HEADERS/PUSH_PROMISE payload (padding and priority
    removed); a PUSH_PROMISE keeps its promised stream id in front."""
    if flags & PADDED:
        pad = payload[0]
        payload = payload[1 : len(payload) - pad]
    if kind == HEADERS and flags & PRIORITY_FLAG:
        payload = payload[5:]
    return payload


# ---------------------------------------------------------------- the client's view of a stream


@dataclass
class StreamView:
    stream_id: int
    status: int | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    informational: list[list[tuple[bytes, bytes]]] = field(default_factory=list)
    body: bytes = b""
    data_frames: int = 0
    trailers: list[tuple[bytes, bytes]] | None = None
    ended: bool = False
    reset: int | None = None  # the RST_STREAM error code
    pushed: list[tuple[int, list[tuple[bytes, bytes]]]] = field(default_factory=list)

    def get(self, name: bytes) -> bytes | None:
        values = [v for k, v in self.headers if k == name]
        assert len(values) <= 1, (name, self.headers)
        return values[0] if values else None


class H2Harness(Harness):
    """A ``ServerProtocol`` with an h2 client connected to it (prior knowledge, unless
    ``connect`` is False), every byte moved by ``exchange``.

    ``client_settings`` are the client's own SETTINGS (e.g. ``{INITIAL_WINDOW_SIZE: 0}``);
    ``auto_ack`` makes the client give back flow-control window for the DATA it receives, as
    a reading client does."""

    def __init__(
        self,
        settings: ProtocolSettings | None = None,
        *,
        now: float = 0.0,
        scheme: str = "http",
        alpn: str | None = None,
        tls: dict[str, Any] | None = None,
        client_settings: dict[int, int] | None = None,
        connect: bool = True,
        auto_ack: bool = True,
    ) -> None:
        super().__init__(settings, now=now, scheme=scheme)
        if alpn is not None or tls is not None:
            kwargs: dict[str, Any] = {}
            if alpn is not None:
                kwargs["alpn"] = alpn
            if tls is not None:
                kwargs["tls"] = tls
            self.protocol = ServerProtocol(
                self.settings, client=CLIENT, server=SERVER, scheme=scheme, now=now, **kwargs
            )
        self.client = H2Connection(H2Configuration(client_side=True, header_encoding=None))
        if client_settings:
            values = {
                SettingCodes.MAX_CONCURRENT_STREAMS: 100,
                SettingCodes.MAX_HEADER_LIST_SIZE: 65536,
            }
            values.update({SettingCodes(k): v for k, v in client_settings.items()})
            self.client.local_settings = Settings(client=True, initial_values=values)
            self.client.max_inbound_frame_size = self.client.local_settings.max_frame_size
        self.auto_ack = auto_ack
        self.client_events: list[H2Event] = []
        self.reader = FrameReader()
        self.frames: list[Frame] = []  # every frame the server sent, in order
        self._client_mark = 0  # how much of ``sent`` the h2 client has read
        self._reader_mark = 0  # how much of ``sent`` the frame reader has read
        self.client_live = True  # False: the server's bytes no longer go into the h2 client
        self.finished: set[int] = set()  # id() of the cycles whose app_finished was called
        if connect:
            self.client.initiate_connection()
            self.exchange()

    # -- files: FeedFile as a driver does it -------------------------------------------------

    def _drain(self) -> None:
        self.sent += self.protocol.data_to_send()
        events = self.protocol.events_received()
        self.events.extend(events)
        if not self.answer_files:
            return
        for event in events:
            if isinstance(event, OpenFile):
                self._open_file(event)
            elif isinstance(event, SendFile):
                self.sent += self._fds[event.fd][event.offset : event.offset + event.count]
                self.protocol.file_sent(event.cycle, self.now)
                self._drain()
            elif isinstance(event, FeedFile):
                data = self._fds[event.fd][event.offset : event.offset + event.count]
                step = self.settings.read_size_bytes
                for i in range(0, len(data), step):
                    self.protocol.file_data(event.cycle, data[i : i + step], self.now)
                    self._drain()
                self.protocol.file_sent(event.cycle, self.now)
                self._drain()

    # -- moving bytes -------------------------------------------------------------------------

    def server_frames(self) -> list[Frame]:
        """Parse what the server sent since the last call (also kept in ``frames``)."""
        new = self.reader.feed(self.sent[self._reader_mark :])
        self._reader_mark = len(self.sent)
        self.frames += new
        return new

    def skip_http11(self, count: int) -> None:
        """The first ``count`` bytes the server sent are HTTP/1.1 (a 101): neither the
        client nor the frame reader reads them."""
        self._client_mark = max(self._client_mark, count)
        self._reader_mark = max(self._reader_mark, count)

    def exchange(self, now: float | None = None) -> list[H2Event]:
        """Move bytes both ways until neither side has anything more to say; returns the
        client's new events. The server's bytes go into the client a frame at a time, so
        that nothing after a GOAWAY reaches it."""
        new: list[H2Event] = []
        self._drain()
        while True:
            out = self.client.data_to_send() if self.client_live else b""
            if out:
                self.feed(out, now)
            self.server_frames()
            fed = False
            while self.client_live:
                end = _frame_end(self.sent, self._client_mark)
                if end is None:
                    break
                events = self.client.receive_data(self.sent[self._client_mark : end])
                self._client_mark = end
                self._record(events)
                new += events
                fed = True
            if not self.client_live:
                self._client_mark = len(self.sent)
            if not out and not fed:
                return new

    def _record(self, events: Sequence[H2Event]) -> None:
        self.client_events += events
        for event in events:
            if isinstance(event, ConnectionTerminated):
                # h2 takes nothing after a GOAWAY (its connection is CLOSED): from here on
                # the frame reader alone reads what the server sends.
                self.client_live = False
            elif isinstance(event, DataReceived) and self.auto_ack and event.flow_controlled_length:
                self.client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)

    def response(self, stream_id: int) -> StreamView:
        """What the server sent on ``stream_id`` (and the pushes it promised on it), from
        the raw frames."""
        self.server_frames()
        return stream_view(self.frames, stream_id)

    # -- the client's requests ------------------------------------------------------------------

    def request(
        self,
        method: bytes = b"GET",
        path: bytes = b"/",
        extra: Iterable[tuple[bytes, bytes]] = (),
        *,
        body: bytes | Sequence[bytes] | None = None,
        end_stream: bool = True,
        authority: bytes | None = b"example.com",
        scheme: bytes = b"http",
        now: float | None = None,
    ) -> int:
        """Open a stream with a request (``body`` as one DATA frame, or a sequence of them);
        returns its stream id."""
        stream_id = self.client.get_next_available_stream_id()
        headers = [(b":method", method), (b":scheme", scheme)]
        if authority is not None:
            headers.append((b":authority", authority))
        headers += [(b":path", path), *extra]
        pieces = [body] if isinstance(body, bytes) else list(body or [])
        self.client.send_headers(stream_id, headers, end_stream=end_stream and not pieces)
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            self.client.send_data(stream_id, piece, end_stream=end_stream and last)
        self.exchange(now)
        return stream_id

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        self.client.send_data(stream_id, data, end_stream=end_stream)
        self.exchange()

    def raw(self, data: bytes, now: float | None = None) -> list[Frame]:
        """Feed hand-built bytes; returns the frames the server sent in answer (the h2 client
        does not see them)."""
        self.feed(data, now)
        self._client_mark = len(self.sent)
        return self.server_frames()

    # -- cycles by path -------------------------------------------------------------------------

    def cycle_for(self, path: str) -> Any:
        matches = [s.cycle for s in self.start_apps() if s.scope.get("path") == path]
        assert len(matches) == 1, (path, [s.scope.get("path") for s in self.start_apps()])
        return matches[0]

    def scope_for(self, path: str) -> dict[str, Any]:
        matches = [s.scope for s in self.start_apps() if s.scope.get("path") == path]
        assert len(matches) == 1, path
        return matches[0]

    # -- what the server said -------------------------------------------------------------------

    def frames_of(self, kind: int, stream_id: int | None = None) -> list[Frame]:
        self.server_frames()
        return [
            f
            for f in self.frames
            if f.kind == kind and (stream_id is None or f.stream_id == stream_id)
        ]

    def goaway(self) -> Frame | None:
        found = self.frames_of(GOAWAY)
        return found[-1] if found else None

    def terminated(self) -> ConnectionTerminated | None:
        found = [e for e in self.client_events if isinstance(e, ConnectionTerminated)]
        return found[-1] if found else None

    def closing(self) -> bool:
        """The core asked the driver to end the connection (close, or half-close and linger)."""
        return any(isinstance(e, (CloseConnection, SendEOF)) for e in self.events)

    def running(self) -> list[StartApp]:
        """The StartApps whose app has not been reported finished."""
        return [s for s in self.start_apps() if id(s.cycle) not in self.finished]

    # -- the app side: each call is followed by an exchange, as a driver writes at once ------

    def message_for_app(self, cycle: Any, now: float | None = None) -> dict[str, Any] | None:
        """``now``: the time of the ``receive()``, passed on as a driver passes its clock."""
        try:
            if now is None:
                return super().message_for_app(cycle)
            try:
                return self.protocol.message_for_app(cycle, self._now(now))
            finally:
                self._drain()
        finally:
            self.exchange()

    def message_from_app(self, cycle: Any, message: Any, now: float | None = None) -> None:
        try:
            super().message_from_app(cycle, message, now)
        finally:
            self.exchange()

    def app_finished(
        self, cycle: Any, exc: BaseException | None = None, now: float | None = None
    ) -> None:
        self.finished.add(id(cycle))
        super().app_finished(cycle, exc, now)
        self.exchange()

    def timer(self, now: float) -> None:
        super().timer(now)
        self.exchange()

    def send_ready(self, cycle: Any) -> bool:
        return bool(self.protocol.send_ready(cycle))


def _frame_end(data: bytes, start: int) -> int | None:
    """Where the frame that starts at ``start`` ends, or None if it is not all there."""
    if len(data) - start < 9:
        return None
    end = start + 9 + int.from_bytes(data[start : start + 3], "big")
    return end if end <= len(data) else None


def stream_view(frames: Sequence[Frame], stream_id: int) -> StreamView:
    """A stream's response as a client reads it from the frames."""
    view = StreamView(stream_id)
    for f in frames:
        if f.kind == PUSH_PROMISE and f.stream_id == stream_id and f.headers is not None:
            promised = int.from_bytes(f.payload[:4], "big") & 0x7FFFFFFF
            view.pushed.append((promised, f.headers))
        if f.stream_id != stream_id:
            continue
        if f.kind == HEADERS and f.headers is not None:
            status = dict(f.headers).get(b":status")
            if status is None:
                view.trailers = f.headers
            elif int(status) < 200:
                view.informational.append(f.headers)
            else:
                view.status = int(status)
                view.headers = [(k, v) for k, v in f.headers if not k.startswith(b":")]
        elif f.kind == DATA:
            payload = f.payload
            if f.flags & PADDED:
                payload = payload[1 : len(payload) - payload[0]]
            view.body += payload
            view.data_frames += 1
        elif f.kind == RST_STREAM:
            view.reset = f.error_code
        if f.kind in (HEADERS, DATA) and f.flags & END_STREAM:
            view.ended = True
    return view


def server_settings(h: H2Harness) -> dict[int, int]:
    """The values of the server's first SETTINGS frame."""
    frames = [f for f in h.frames_of(SETTINGS) if not f.flags & ACK]
    assert frames, "the server sent no SETTINGS"
    return frames[0].settings
