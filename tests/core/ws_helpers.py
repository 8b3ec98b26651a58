"""WebSocket tools for the sans-IO core tests: a handshake request, a client, a frame reader.

* ``handshake`` builds the bytes of an opening handshake (RFC 6455 §4.1), with any header
  replaced or removed.
* ``WSClient`` is a wsproto *client* connection: it produces masked client frames and parses
  the server's frames into wsproto events, as a real client would.
* ``client_frame`` builds one masked frame by hand, for what wsproto refuses to send (invalid
  UTF-8, a message split inside a character, a close frame with odd payloads).
* ``server_frames`` reads the server's bytes frame by frame *without* validating them, so a
  test can look at exactly what went on the wire (a close frame carrying 1005 would make
  wsproto fail the connection instead of reporting it).
* ``split_handshake_response`` parses the HTTP response to the handshake with an h11 client
  and returns it with the bytes behind it (the first frames after a 101).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import h11
from wsproto.connection import Connection, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.handshake import client_extensions_handshake
from wsproto.utilities import generate_accept_token

from sansio_asgi.core import ProtocolSettings, WebSocketCycle

from .helpers import Harness, Response, request

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # the RFC 6455 §1.3 example nonce
ACCEPT_TOKEN = generate_accept_token(KEY.encode())  # b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

# Opcodes (RFC 6455 §5.2).
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

_HANDSHAKE_HEADERS: tuple[tuple[str, str], ...] = (
    ("Host", "example.com"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", KEY),
    ("Sec-WebSocket-Version", "13"),
)


def handshake(
    target: str = "/ws",
    *,
    replace: dict[str, str | None] | None = None,
    extra: Sequence[tuple[str, str]] = (),
    method: str = "GET",
    version: str = "1.1",
    body: bytes = b"",
) -> bytes:
    """An opening handshake; ``replace`` maps a header name to a new value (None: drop it)."""
    replace = replace or {}
    headers = [
        (name, replace.get(name, value))
        for name, value in _HANDSHAKE_HEADERS
        if replace.get(name, value) is not None
    ]
    return request(method, target, [*headers, *extra], body, version)  # type: ignore[list-item]


def deflate_offer() -> str:
    """The ``Sec-WebSocket-Extensions`` value a wsproto client offers for permessage-deflate."""
    return "permessage-deflate; " + str(PerMessageDeflate().offer())


# ---------------------------------------------------------------- parsing the response


def split_handshake_response(data: bytes) -> tuple[Response, bytes]:
    """The HTTP response to a handshake, and the bytes after it (frames, after a 101).

    A 101 is an informational response to h11; anything else must be a complete final
    response. Fails if the response is incomplete.
    """
    client = h11.Connection(h11.CLIENT)
    client.send(
        h11.Request(
            method="GET",
            target="/ws",
            headers=[("host", "x"), ("upgrade", "websocket"), ("connection", "upgrade")],
        )
    )
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    head: h11.Response | h11.InformationalResponse | None = None
    body = b""
    while True:
        event = client.next_event()
        if isinstance(event, h11.InformationalResponse):
            assert event.status_code == 101, event
            head = event
            assert client.next_event() is h11.PAUSED
            break
        if isinstance(event, h11.Response):
            head = event
        elif isinstance(event, h11.Data):
            body += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage):
            break
        else:
            raise AssertionError(f"incomplete response: h11 client says {event!r}")
    assert head is not None
    rest, _ = client.trailing_data
    response = Response(
        status=head.status_code,
        reason=bytes(head.reason),
        headers=[(bytes(k), bytes(v)) for k, v in head.headers],
        body=body,
    )
    return response, bytes(rest)


# ---------------------------------------------------------------- frames, by hand


@dataclass(frozen=True)
class Frame:
    fin: bool
    rsv1: bool
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        assert self.opcode == CLOSE
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self) -> str:
        assert self.opcode == CLOSE
        return self.payload[2:].decode("utf-8")


def server_frames(data: bytes) -> list[Frame]:
    """Every frame in ``data`` (unmasked, as a server sends them); fails on a partial frame."""
    frames: list[Frame] = []
    i = 0
    while i < len(data):
        assert len(data) - i >= 2, f"partial frame header: {data[i:]!r}"
        b0, b1 = data[i], data[i + 1]
        assert not b1 & 0x80, "a server frame must not be masked (RFC 6455 §5.1)"
        length = b1 & 0x7F
        i += 2
        if length == 126:
            (length,) = struct.unpack("!H", data[i : i + 2])
            i += 2
        elif length == 127:
            (length,) = struct.unpack("!Q", data[i : i + 8])
            i += 8
        payload = data[i : i + length]
        assert len(payload) == length, "partial frame payload"
        i += length
        frames.append(
            Frame(fin=bool(b0 & 0x80), rsv1=bool(b0 & 0x40), opcode=b0 & 0x0F, payload=payload)
        )
    return frames


def close_frames(data: bytes) -> list[Frame]:
    return [frame for frame in server_frames(data) if frame.opcode == CLOSE]


def client_frame(
    opcode: int, payload: bytes, *, fin: bool = True, mask: bytes = b"\x37\xfa\x21\x3d"
) -> bytes:
    """One masked client frame (RFC 6455 §5.2), built by hand."""
    head = bytearray([(0x80 if fin else 0) | opcode])
    length = len(payload)
    if length < 126:
        head.append(0x80 | length)
    elif length < 1 << 16:
        head.append(0x80 | 126)
        head += struct.pack("!H", length)
    else:
        head.append(0x80 | 127)
        head += struct.pack("!Q", length)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes(head) + mask + masked


# ---------------------------------------------------------------- a wsproto client


class WSClient:
    """The client side of an open WebSocket: masked frames out, wsproto events in."""

    def __init__(self, extensions: Iterable[Extension] = ()) -> None:
        self.conn = Connection(ConnectionType.CLIENT, list(extensions))

    @classmethod
    def for_response(cls, response: Response, offered: Sequence[Extension] = ()) -> WSClient:
        """A client with the extensions the server's 101 accepted among ``offered``."""
        accepted = [v.decode() for v in response.get_all(b"sec-websocket-extensions")]
        return cls(client_extensions_handshake(accepted, list(offered)))

    def text(self, data: str, *, fin: bool = True) -> bytes:
        return self.conn.send(TextMessage(data=data, message_finished=fin))

    def binary(self, data: bytes, *, fin: bool = True) -> bytes:
        return self.conn.send(BytesMessage(data=data, message_finished=fin))

    def ping(self, payload: bytes = b"") -> bytes:
        return self.conn.send(Ping(payload=payload))

    def pong(self, payload: bytes = b"") -> bytes:
        return self.conn.send(Pong(payload=payload))

    def close(self, code: int | None = 1000, reason: str | None = None) -> bytes:
        return self.conn.send(CloseConnection(code=code, reason=reason))  # type: ignore[arg-type]

    def receive(self, data: bytes) -> list[Event]:
        """Feed the server's bytes; the events they carry."""
        self.conn.receive_data(data)
        return list(self.conn.events())

    def messages(self, data: bytes) -> list[Any]:
        """Feed the server's bytes; whole messages as str/bytes, other events as they are."""
        out: list[Any] = []
        parts: list[Any] = []
        for event in self.receive(data):
            if isinstance(event, Message):
                parts.append(event.data)
                if event.message_finished:
                    joined = "".join(parts) if isinstance(event, TextMessage) else b"".join(parts)
                    out.append(joined if isinstance(joined, str) else bytes(joined))
                    parts = []
            else:
                out.append(event)
        assert not parts, "a message was left unfinished"
        return out


# ---------------------------------------------------------------- driving the core


def open_harness(
    settings: ProtocolSettings | None = None,
    *,
    now: float = 0.0,
    wire: bytes | None = None,
    scheme: str = "http",
) -> tuple[Harness, WebSocketCycle]:
    """A harness that has parsed a valid handshake; the app has taken ``websocket.connect``."""
    h = Harness(settings, now=now, scheme=scheme)
    h.feed(handshake() if wire is None else wire)
    cycle = h.cycle()
    assert isinstance(cycle, WebSocketCycle), h.events
    assert h.message_for_app(cycle) == {"type": "websocket.connect"}
    return h, cycle


def accept(
    h: Harness, cycle: WebSocketCycle, offered: Sequence[Extension] = (), **fields: Any
) -> tuple[Response, WSClient, bytes]:
    """Send ``websocket.accept``; the 101, a client for it, and any bytes behind the 101."""
    h.message_from_app(cycle, {"type": "websocket.accept", **fields})
    response, rest = split_handshake_response(h.take_sent())
    assert response.status == 101, response
    return response, WSClient.for_response(response, offered), rest


def open_connection(
    settings: ProtocolSettings | None = None, *, now: float = 0.0
) -> tuple[Harness, WebSocketCycle, WSClient]:
    """An accepted WebSocket with nothing pending on either side."""
    h, cycle = open_harness(settings, now=now)
    _, client, rest = accept(h, cycle)
    assert rest == b""
    h.take_events()
    return h, cycle, client


def receive_all(h: Harness, cycle: WebSocketCycle) -> list[dict[str, Any]]:
    """``receive()`` until the core says wait, or up to and including a disconnect."""
    messages: list[dict[str, Any]] = []
    while True:
        message = h.message_for_app(cycle)  # type: ignore[arg-type]
        if message is None:
            return messages
        messages.append(message)
        if message["type"] == "websocket.disconnect":
            return messages
