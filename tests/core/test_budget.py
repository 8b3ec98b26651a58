"""The resource budget of a WebSocket connection, through the core alone.

Every byte the core holds for a client sits in a buffer with a limit (spec/driver-contract.md,
"Resource budget"). These tests fill each one the way a hostile client would and measure what
the core holds with ``tracemalloc``: the bytes queued for the client (pongs) stop growing once
the driver reports that writing is paused; a message costs its bytes however it is fragmented;
inflation stops at the message limit.
"""

from __future__ import annotations

import tracemalloc
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from wsproto.extensions import PerMessageDeflate

from sansio_asgi.core import ProtocolSettings, WebSocketCycle
from sansio_asgi.core.events import PauseReading, ResumeReading

from .helpers import Harness, request
from .ws_helpers import (
    BINARY,
    CONTINUATION,
    TEXT,
    accept,
    client_frame,
    close_frames,
    deflate_offer,
    handshake,
    open_connection,
    open_harness,
    receive_all,
    server_frames,
)

MiB = 1024 * 1024


@contextmanager
def held_bytes() -> Iterator[list[int]]:
    """Measure the memory allocated inside the block and still held at its end, and the peak:
    yields a list that holds ``[held, peak]`` once the block is done."""
    result: list[int] = []
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        yield result
        current, peak = tracemalloc.get_traced_memory()
        result += [current - before, peak - before]
    finally:
        tracemalloc.stop()


def deflated_frame(payload: bytes, *, opcode: int = BINARY, fin: bool = True) -> bytes:
    """One compressed frame (RFC 7692 §7.2.1: the sync flush's 4-byte tail removed)."""
    compressor = zlib.compressobj(wbits=-15)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff")
    frame = bytearray(client_frame(opcode, data[:-4], fin=fin))
    frame[0] |= 0x40  # RSV1: this message is compressed
    return bytes(frame)


# ---------------------------------------------------------------- inflation


def deflate_connection(max_size: int) -> tuple[Harness, WebSocketCycle]:
    settings = ProtocolSettings(ws_max_size_bytes=max_size)
    h, cycle = open_harness(
        settings, wire=handshake(extra=[("Sec-WebSocket-Extensions", deflate_offer())])
    )
    response, _, _ = accept(h, cycle, [PerMessageDeflate()])
    assert response.get(b"sec-websocket-extensions") is not None
    h.take_events()
    return h, cycle


def test_a_deflate_bomb_closes_1009_without_being_inflated() -> None:
    h, cycle = deflate_connection(max_size=1 * MiB)
    bomb = deflated_frame(bytes(64 * MiB))  # 64 KiB on the wire
    assert len(bomb) < 128 * 1024
    with held_bytes() as memory:
        h.feed(bomb)
    held, peak = memory
    assert [f.close_code for f in close_frames(h.take_sent())] == [1009]
    assert receive_all(h, cycle)[-1]["code"] == 1009
    # At most the limit (and a byte) is ever inflated; before the fix, all 64 MiB were.
    assert peak < 3 * MiB, peak
    assert held < 1 * MiB, held


def test_a_deflate_bomb_in_fragments_is_counted_across_them() -> None:
    h, _ = deflate_connection(max_size=1 * MiB)
    compressor = zlib.compressobj(wbits=-15)
    pieces = [compressor.compress(bytes(MiB // 2)) + compressor.flush(zlib.Z_SYNC_FLUSH)]
    pieces += [compressor.compress(bytes(MiB // 2)) + compressor.flush(zlib.Z_SYNC_FLUSH)]
    pieces += [compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_SYNC_FLUSH)]
    first = bytearray(client_frame(BINARY, pieces[0], fin=False))
    first[0] |= 0x40
    wire = bytes(first) + client_frame(CONTINUATION, pieces[1], fin=False)
    wire += client_frame(CONTINUATION, pieces[2][:-4], fin=True)
    h.feed(wire)
    assert [f.close_code for f in close_frames(h.take_sent())] == [1009]


def test_a_compressed_message_at_the_limit_is_delivered() -> None:
    h, cycle = deflate_connection(max_size=1 * MiB)
    payload = bytes(range(256)) * (MiB // 256)
    h.feed(deflated_frame(payload))
    assert receive_all(h, cycle) == [{"type": "websocket.receive", "bytes": payload}]
    h.feed(deflated_frame(b"x" * (MiB + 1)))
    assert [f.close_code for f in close_frames(h.take_sent())] == [1009]


# ---------------------------------------------------------------- fragments


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_a_message_in_one_byte_fragments_costs_its_bytes(opcode: int) -> None:
    h, cycle, _ = open_connection()
    size = 64 * 1024
    frames = [client_frame(opcode, b"a", fin=False)]
    frames += [client_frame(CONTINUATION, b"a", fin=False) for _ in range(size - 2)]
    wire = b"".join(frames)
    del frames
    with held_bytes() as memory:
        h.feed(wire)
    held, _ = memory
    # 65,535 fragments: a list of parts held about 45 bytes each (about 2.9 MiB).
    assert held < 3 * size, held
    h.feed(client_frame(CONTINUATION, b"a", fin=True))
    [message] = receive_all(h, cycle)
    expected = {"text": "a" * size} if opcode == TEXT else {"bytes": b"a" * size}
    assert message == {"type": "websocket.receive", **expected}


def test_empty_continuation_frames_count_towards_a_frame_limit() -> None:
    settings = ProtocolSettings(ws_max_frames_per_message=1000)
    h, cycle, _ = open_connection(settings)
    # Exactly at the limit: delivered.
    wire = client_frame(TEXT, b"", fin=False)
    wire += b"".join(client_frame(CONTINUATION, b"", fin=False) for _ in range(998))
    wire += client_frame(CONTINUATION, b"ok", fin=True)
    h.feed(wire)
    assert receive_all(h, cycle) == [{"type": "websocket.receive", "text": "ok"}]
    # One frame more: closed with 1008 (policy violation), whatever the bytes.
    wire = client_frame(TEXT, b"", fin=False)
    wire += b"".join(client_frame(CONTINUATION, b"", fin=False) for _ in range(1000))
    h.feed(wire)
    assert [f.close_code for f in close_frames(h.take_sent())] == [1008]


def test_the_default_frame_limit_admits_autobahn_fragmentation() -> None:
    """Autobahn 9.4.1: 4 MiB in 64-byte fragments (65,536 frames)."""
    assert ProtocolSettings().ws_max_frames_per_message >= 4 * MiB // 64


# ---------------------------------------------------------------- bytes queued for the client


def test_reading_stops_while_writing_is_paused() -> None:
    h, _, client = open_connection()
    h.protocol.writing_paused(h.now)
    h.feed(b"")
    assert [type(e) for e in h.take_events()] == [PauseReading]
    # What a driver had already read is still answered: bounded by one read.
    h.feed(client.ping(b"p") * 10)
    assert [f.opcode for f in server_frames(h.take_sent())] == [0xA] * 10
    h.protocol.writing_resumed(h.now)
    h.feed(b"")
    assert [type(e) for e in h.take_events()] == [ResumeReading]


def test_a_backlog_of_app_messages_keeps_reading_paused_until_both_drain() -> None:
    settings = ProtocolSettings(body_buffer_high_water_bytes=1024)
    h, cycle, client = open_connection(settings)
    h.feed(client.binary(b"x" * 2000))
    assert [type(e) for e in h.take_events() if not hasattr(e, "cycle")] == [PauseReading]
    h.protocol.writing_paused(h.now)
    h.protocol.writing_resumed(h.now)
    h.feed(b"")
    assert not [e for e in h.take_events() if isinstance(e, ResumeReading)]
    receive_all(h, cycle)
    assert [type(e) for e in h.take_events()] == [ResumeReading]


def test_writing_paused_before_the_handshake_carries_over() -> None:
    h, cycle = open_harness()
    h.protocol.writing_paused(h.now)
    accept(h, cycle)
    assert PauseReading in [type(e) for e in h.take_events()]


def test_http_keeps_reading_while_writing_is_paused() -> None:
    """HTTP/1.1 queues output only through the app, whose send() waits: reading goes on, so a
    client that leaves is still noticed."""
    h = Harness()
    h.protocol.writing_paused(0.0)
    h.feed(request("GET", "/", [("Host", "x")]))
    assert not h.of_type(PauseReading)
    h.eof()
    assert h.message_for_app(h.cycle()) == {"type": "http.disconnect"}
