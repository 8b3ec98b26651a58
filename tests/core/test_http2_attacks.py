"""HTTP/2 attacks on the core, one per test: what the server answers, and that what it holds
stays bounded while the attack goes on.

The attacks are the known ones: Rapid Reset (CVE-2023-44487), the CONTINUATION flood
(CVE-2024-27316), the HPACK bomb (CVE-2016-6581) and the 2019 set (CVE-2019-9511 to 9518: data
dribble, ping flood, resource loop, reset flood, settings flood, 0-length headers, empty frames
flood), plus a zero-window stall. Frames are built by hand (``h2_helpers.frame``): a client
library will not send them. A driver is simulated where the bound depends on it: reads of
``read_size_bytes`` at most, no reading while the core asked for a pause, and ``writing_paused``
once the unsent output passes ``write_high_water_bytes`` because the client reads nothing.
The limits are small (``h2_max_resets=10`` and so on) so that each test is quick.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import hpack
import pytest
from hpack.hpack import encode_integer

from sansio_asgi.core import ClientDisconnected, ProtocolSettings
from sansio_asgi.core.events import PauseReading, ResumeReading

from .h2_helpers import (
    CANCEL,
    COMPRESSION_ERROR,
    CONTINUATION,
    DATA,
    ENHANCE_YOUR_CALM,
    GOAWAY,
    INITIAL_WINDOW_SIZE,
    PING,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    REQUEST,
    RST_STREAM,
    SETTINGS,
    WS_CONNECT,
    Frame,
    H2Harness,
    RawClient,
    data_frame,
    frame,
    headers_frame,
    ping_frame,
    priority_frame,
    request_headers,
    rst_stream_frame,
    settings_frame,
    window_update_frame,
)
from .ws_helpers import BINARY, client_frame

KiB = 1024


def h2_settings(**limits: Any) -> ProtocolSettings:
    """Small limits, so that an attack hits them in a few dozen frames."""
    values: dict[str, Any] = {
        "h2_max_resets": 10,
        "h2_max_control_frames": 50,
        "read_size_bytes": 4 * KiB,
        "write_high_water_bytes": 4 * KiB,
    }
    values.update(limits)
    return ProtocolSettings(**values)


def connect(
    settings: ProtocolSettings, client_settings: dict[int, int] | None = None
) -> tuple[H2Harness, RawClient]:
    """A connection from a hand-driven client: its preface and SETTINGS, and the ACK of the
    server's SETTINGS (so the server's limits are in force)."""
    h = H2Harness(settings, connect=False)
    h.client_live = False
    client = RawClient()
    answer = h.raw(client.start(client_settings))
    assert [f for f in answer if f.kind == SETTINGS and not f.flags & 0x1], "no server SETTINGS"
    h.raw(settings_frame(ack=True))
    return h, client


def goaways(h: H2Harness) -> list[Frame]:
    return h.frames_of(GOAWAY)


def calm(h: H2Harness) -> bool:
    """The server said ENHANCE_YOUR_CALM (0xb) and asked the driver to end the connection."""
    return any(g.error_code == ENHANCE_YOUR_CALM for g in goaways(h)) and h.closing()


def feed_until_goaway(h: H2Harness, pieces: list[bytes], now: float | None = None) -> int:
    """Feed ``pieces`` one call each until the server sends a GOAWAY or asks to close;
    returns how many were fed."""
    for count, piece in enumerate(pieces, 1):
        h.raw(piece, now)
        if goaways(h) or h.closing():
            return count
    return len(pieces)


@dataclass
class Flood:
    fed: int  # bytes of the attack the core read
    unsent: int  # bytes the core queued for a client that reads nothing
    paused: bool  # the core asked the driver to stop reading


def flood_unread(h: H2Harness, wire: bytes) -> Flood:
    """A client that sends ``wire`` and reads nothing, through a driver that reads at most
    ``read_size_bytes`` at a time, reports ``writing_paused`` once the unsent output passes
    ``write_high_water_bytes``, and honours Pause/ResumeReading."""
    settings = h.settings
    h.take_sent()
    h.take_events()
    fed = unsent = 0
    reading, writing_paused, ever_paused = True, False, False
    while fed < len(wire) and reading and not h.closing():
        piece = wire[fed : fed + settings.read_size_bytes]
        h.feed(piece)
        fed += len(piece)
        unsent += len(h.take_sent())
        if not writing_paused and unsent > settings.write_high_water_bytes:
            writing_paused = True
            h.protocol.writing_paused(h.now)
            h._drain()
            unsent += len(h.take_sent())
        for event in h.take_events():
            if isinstance(event, PauseReading):
                reading, ever_paused = False, True
            elif isinstance(event, ResumeReading):
                reading = True
    return Flood(fed=fed, unsent=unsent, paused=ever_paused)


@contextmanager
def held_bytes() -> Iterator[list[int]]:
    """The peak of the memory allocated inside the block: a list holding ``[peak]`` once the
    block is done."""
    result: list[int] = []
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        yield result
        _, peak = tracemalloc.get_traced_memory()
        result.append(peak - before)
    finally:
        tracemalloc.stop()


# ================================================================ Rapid Reset (CVE-2023-44487)


def rapid_reset_pairs(client: RawClient, count: int, first: int = 1) -> list[bytes]:
    return [
        client.headers(stream_id) + rst_stream_frame(stream_id, CANCEL)
        for stream_id in range(first, first + 2 * count, 2)
    ]


def test_rapid_reset_is_goaway_after_the_reset_budget() -> None:
    h, client = connect(h2_settings())
    pairs = rapid_reset_pairs(client, 100)
    for pair in pairs[:10]:
        h.raw(pair)
    assert not goaways(h), "10 resets are within h2_max_resets=10"
    fed = 10 + feed_until_goaway(h, pairs[10:])
    assert fed <= 12, f"GOAWAY only after {fed} resets"
    assert calm(h)


def test_rapid_reset_never_runs_more_apps_than_the_stream_limit() -> None:
    # The apps of reset streams are still running (the driver never reports them finished):
    # they count against h2_max_concurrent_streams, so resetting frees nothing.
    h, client = connect(
        h2_settings(h2_max_concurrent_streams=5, h2_max_resets=1000, h2_max_control_frames=10**6)
    )
    for stream_id in range(1, 121, 2):
        # Apart, so that every app starts before its stream is reset: the worst case.
        h.raw(client.headers(stream_id))
        h.raw(rst_stream_frame(stream_id, CANCEL))
        assert len(h.running()) <= 5
    assert len(h.start_apps()) == 5
    refused = [f for f in h.frames_of(RST_STREAM) if f.error_code == REFUSED_STREAM]
    assert refused, "streams above the limit are refused"
    # The apps of the reset streams hear that their client left.
    for start_app in h.start_apps():
        messages = [h.message_for_app(start_app.cycle) for _ in range(2)]
        assert {"type": "http.disconnect"} in messages


def test_rapid_reset_in_one_read_is_bounded_too() -> None:
    h, client = connect(h2_settings(h2_max_concurrent_streams=5, read_size_bytes=64 * KiB))
    h.raw(b"".join(rapid_reset_pairs(client, 200)))
    assert len(h.start_apps()) <= 5
    assert calm(h)


def test_streams_waiting_on_a_shut_window_count_against_the_limit() -> None:
    # Apps that answered and finished, whose responses wait on a window the client keeps
    # shut: each stream still holds its response, so it still counts. A client that could
    # open streams past the limit this way would make the server hold any number of them.
    h, client = connect(h2_settings(h2_max_concurrent_streams=3), {INITIAL_WINDOW_SIZE: 0})
    for stream_id in (1, 3, 5):
        h.raw(client.headers(stream_id))
        cycle = h.cycle()
        h.respond(cycle, 200, [], b"x" * 2000)
        h.app_finished(cycle)
    answer = h.raw(client.headers(7))
    assert len(h.start_apps()) == 3
    assert [(f.kind, f.error_code) for f in answer if f.stream_id == 7] == [
        (RST_STREAM, REFUSED_STREAM)
    ]
    assert not goaways(h), "RFC 9113 §5.1.2: a stream error, not a connection error"


def test_finished_apps_free_their_slots() -> None:
    # Not an attack: a client that resets streams now and then, whose apps end, is served.
    h, client = connect(h2_settings(h2_max_concurrent_streams=2, h2_max_resets=1000))
    for stream_id in range(1, 41, 2):
        h.raw(client.headers(stream_id))
        h.raw(rst_stream_frame(stream_id, CANCEL))
        for start_app in h.running():
            h.app_finished(start_app.cycle)
    assert len(h.start_apps()) == 20
    assert not goaways(h)


# ============================================================ CONTINUATION flood (CVE-2024-27316)


def literal(name: bytes, value: bytes) -> bytes:
    """A header field as a literal without indexing (RFC 7541 §6.2.2), new name, no Huffman:
    it adds nothing to the dynamic table."""
    return (
        b"\x00"
        + bytes(encode_integer(len(name), 7))
        + name
        + bytes(encode_integer(len(value), 7))
        + value
    )


def continuation_flood(client: RawClient, count: int, size: int) -> list[bytes]:
    """A HEADERS frame without END_HEADERS, then ``count`` CONTINUATION frames of ``size``
    bytes each, each holding whole header fields (or nothing, for a size of 0)."""
    first = headers_frame(1, client.encoder.encode(list(REQUEST)), end_headers=False)
    fragment = b""
    if size:
        value = size - 8
        while len(literal(b"x-pad", b"a" * value)) > size:
            value -= 1
        fragment = literal(b"x-pad", b"a" * value)
    assert len(fragment) == size
    return [first] + [frame(CONTINUATION, 0, 1, fragment) for _ in range(count)]


@pytest.mark.parametrize("size", [0, 100])
def test_continuation_flood_is_cut_off(size: int) -> None:
    h, client = connect(h2_settings())
    fed = feed_until_goaway(h, continuation_flood(client, 1000, size))
    assert fed <= 66, f"{fed - 1} CONTINUATION frames were read before a GOAWAY"
    [goaway] = goaways(h)
    assert goaway.error_code in (PROTOCOL_ERROR, ENHANCE_YOUR_CALM, COMPRESSION_ERROR)
    assert h.closing()
    assert not h.start_apps()


def test_continuation_flood_of_large_frames_holds_a_bounded_block() -> None:
    # Frames of 16,000 bytes: what the server buffers of the unfinished header block is
    # bounded by a number of frames, not by how many the client sends.
    h, client = connect(h2_settings())
    flood = continuation_flood(client, 300, 16000)
    with held_bytes() as held:
        fed = feed_until_goaway(h, flood)
    assert goaways(h) and h.closing()
    assert fed <= 66
    assert held[0] < 4 * 1024 * KiB, f"{held[0]} bytes held for one header block"


# ================================================================ HPACK bomb


def test_hpack_bomb_is_refused_before_it_is_decoded() -> None:
    # One 3,900-byte field enters the dynamic table with the first request; the second
    # request refers to it 150,000 times, in a HEADERS frame and CONTINUATION frames of
    # 15,000 one-byte references each: 585 MB once decoded. (h2 keeps the references to one
    # bytes object, so what a decoder that goes on costs is the list of 150,000 fields.)
    h, client = connect(h2_settings())
    first = client.encoder.encode([*REQUEST, (b"x-bomb", b"a" * 3900)])
    h.raw(headers_frame(1, first))
    assert len(h.start_apps()) == 1
    newest = b"\xbe"  # indexed field 62: the newest entry of the dynamic table (RFC 7541 §2.3.3)
    check = hpack.Decoder()
    check.decode(first)
    assert check.decode(newest) == [("x-bomb", "a" * 3900)]
    block = client.encoder.encode(list(REQUEST)) + newest * 150_000
    pieces = [block[i : i + 15_000] for i in range(0, len(block), 15_000)]
    frames = [headers_frame(3, pieces[0], end_headers=False)]
    frames += [frame(CONTINUATION, 0, 3, piece) for piece in pieces[1:-1]]
    frames.append(frame(CONTINUATION, 0x4, 3, pieces[-1]))
    with held_bytes() as held:
        answer = h.raw(b"".join(frames))
    assert len(h.start_apps()) == 1, "the bomb reached an app"
    refused = [f for f in answer if f.kind == GOAWAY and f.error_code != 0]
    refused += [f for f in answer if f.stream_id == 3 and f.headers and f.status == 431]
    assert refused, "the server said nothing"
    assert held[0] < 2 * 1024 * KiB, f"decoding held {held[0]} bytes"


# ================================================================ zero-window stall


def test_zero_window_stall_is_reset_after_the_window_timeout() -> None:
    settings = h2_settings(h2_window_timeout_s=5.0)
    h = H2Harness(settings, client_settings={INITIAL_WINDOW_SIZE: 0}, auto_ack=False)
    stream_id = h.request(now=0.0)
    cycle = h.cycle()
    h.start(cycle)
    h.body(cycle, b"x" * 100, more_body=True)
    h.exchange()
    assert h.frames_of(DATA, stream_id) == []
    deadline = h.protocol.next_deadline()
    assert deadline is not None and deadline <= 5.0
    h.timer(4.9)
    assert h.response(stream_id).reset is None
    h.timer(5.0)
    assert h.response(stream_id).reset == CANCEL
    with pytest.raises(ClientDisconnected):
        h.body(cycle, b"more", more_body=True)
    assert h.message_for_app(cycle) == {"type": "http.disconnect"}
    assert not h.closing(), "only the stalled stream ends"


def test_a_window_that_reopens_in_time_is_not_a_stall() -> None:
    settings = h2_settings(h2_window_timeout_s=5.0)
    h = H2Harness(settings, client_settings={INITIAL_WINDOW_SIZE: 0}, auto_ack=False)
    stream_id = h.request(now=0.0)
    cycle = h.cycle()
    h.respond(cycle, 200, [], b"x" * 100)
    h.timer(4.0)
    h.client.increment_flow_control_window(1000, stream_id)
    h.exchange(now=4.0)
    h.timer(30.0)
    response = h.response(stream_id)
    assert response.reset is None and response.ended and response.body == b"x" * 100


# ================================================================ the 2019 set


def test_ping_flood_pauses_reading_while_writing_is_paused() -> None:  # CVE-2019-9512
    h, _ = connect(h2_settings(h2_max_control_frames=1_000_000))
    flood = flood_unread(h, ping_frame() * 100_000)
    assert flood.paused, "the core never asked the driver to stop reading"
    limit = h.settings.write_high_water_bytes + 2 * h.settings.read_size_bytes
    assert flood.unsent <= limit, f"{flood.unsent} bytes of PING ACKs queued"
    assert flood.fed < 100_000 * 17


def test_ping_flood_ends_in_goaway_enhance_your_calm() -> None:  # CVE-2019-9512
    h, _ = connect(h2_settings())
    fed = feed_until_goaway(h, [ping_frame()] * 500)
    assert fed <= 52, f"{fed} PINGs before a GOAWAY"
    assert calm(h)
    acks = [f for f in h.frames if f.kind == PING]
    assert len(acks) <= 51


def test_settings_flood_pauses_reading_while_writing_is_paused() -> None:  # CVE-2019-9515
    h, _ = connect(h2_settings(h2_max_control_frames=1_000_000))
    flood = flood_unread(h, settings_frame() * 100_000)
    assert flood.paused
    assert flood.unsent <= h.settings.write_high_water_bytes + 2 * h.settings.read_size_bytes


def test_settings_flood_ends_in_goaway_enhance_your_calm() -> None:  # CVE-2019-9515
    h, _ = connect(h2_settings())
    fed = feed_until_goaway(h, [settings_frame({INITIAL_WINDOW_SIZE: 65535})] * 500)
    assert fed <= 52
    assert calm(h)


def test_reset_flood_of_refused_streams_ends_in_goaway() -> None:  # CVE-2019-9514
    # Each stream above the limit costs the server an RST_STREAM: the client makes the
    # server reset streams, as fast as it can send HEADERS.
    h, client = connect(h2_settings(h2_max_concurrent_streams=1))
    pieces = [client.headers(stream_id) for stream_id in range(1, 2001, 2)]
    fed = feed_until_goaway(h, pieces)
    assert fed <= 53, f"{fed} streams before a GOAWAY"
    assert calm(h)
    assert len(h.start_apps()) == 1


def test_reset_flood_pauses_reading_while_writing_is_paused() -> None:  # CVE-2019-9514
    h, client = connect(h2_settings(h2_max_concurrent_streams=1, h2_max_control_frames=10**6))
    wire = b"".join(client.headers(stream_id) for stream_id in range(1, 40_001, 2))
    flood = flood_unread(h, wire)
    assert flood.paused
    assert flood.unsent <= h.settings.write_high_water_bytes + 2 * h.settings.read_size_bytes
    assert len(h.start_apps()) == 1


def test_zero_length_header_fields_are_refused() -> None:  # CVE-2019-9516
    h, client = connect(h2_settings())
    empty = b"\x40\x00\x00"  # a literal with incremental indexing: empty name, empty value
    block = client.encoder.encode(list(REQUEST)) + empty * 4000
    with held_bytes() as held:
        answer = h.raw(headers_frame(1, block))
    assert not h.start_apps()
    errors = [f for f in answer if f.kind in (GOAWAY, RST_STREAM) and f.error_code != 0]
    errors += [f for f in answer if f.stream_id == 1 and f.headers and f.status >= 400]
    assert errors, "the server accepted empty header names"
    assert held[0] < 1024 * KiB


def test_empty_data_frames_flood_ends_in_goaway() -> None:  # CVE-2019-9518
    h, client = connect(h2_settings())
    h.raw(client.headers(1, request_headers(b"POST"), end_stream=False))
    assert len(h.start_apps()) == 1
    fed = feed_until_goaway(h, [data_frame(1)] * 500)
    assert fed <= 52, f"{fed} empty DATA frames before a GOAWAY"
    assert calm(h)
    # The app was not handed hundreds of empty messages.
    cycle = h.cycle()
    messages = []
    for _ in range(10):
        message = h.message_for_app(cycle)
        if message is None or message["type"] != "http.request":
            break
        messages.append(message)
    assert len(messages) <= 2


def test_data_dribble_ends_in_goaway_and_the_queue_stays_bounded() -> None:  # CVE-2019-9511
    settings = h2_settings(write_high_water_bytes=8 * KiB)
    h, client = connect(settings, {INITIAL_WINDOW_SIZE: 1})
    h.raw(client.headers(1))
    cycle = h.cycle()
    h.start(cycle)
    queued = 0
    while h.send_ready(cycle):
        h.body(cycle, b"x" * 1000, more_body=True)
        queued += 1000
        assert queued <= 1 << 20, "send_ready never said wait"
    assert queued <= settings.write_high_water_bytes + 1000
    h.server_frames()
    fed = feed_until_goaway(h, [window_update_frame(1, 1)] * 500)
    assert fed <= 52, f"{fed} one-byte WINDOW_UPDATEs before a GOAWAY"
    assert calm(h)
    sent = sum(len(f.payload) for f in h.frames_of(DATA, 1))
    assert sent <= fed + 1, "DATA beyond the window the client gave"


def test_priority_flood_with_dependency_cycles_ends_in_goaway() -> None:  # CVE-2019-9513
    h, _ = connect(h2_settings())
    pieces = []
    for n in range(500):
        stream_id = 2 * n + 3
        pieces.append(priority_frame(stream_id, stream_id + 2, exclusive=n % 2 == 0))
        pieces.append(priority_frame(stream_id + 2, stream_id))  # a cycle of two
    with held_bytes() as held:
        fed = feed_until_goaway(h, pieces)
    assert fed <= 52, f"{fed} PRIORITY frames before a GOAWAY"
    assert calm(h)
    assert held[0] < 512 * KiB


def test_a_self_dependent_stream_is_an_error() -> None:
    # RFC 9113 §5.3.1: "A stream cannot depend on itself. An endpoint MUST treat this as a
    # stream error of type PROTOCOL_ERROR."
    h, _ = connect(h2_settings())
    answer = h.raw(priority_frame(5, 5))
    assert [f for f in answer if f.kind in (GOAWAY, RST_STREAM) and f.error_code == PROTOCOL_ERROR]


def test_control_frames_spread_over_time_are_not_a_flood() -> None:
    # 40 PINGs every 11 s, for a minute: never more than h2_max_control_frames=50 in 10 s.
    h, _ = connect(h2_settings())
    for minute_part in range(6):
        for _ in range(40):
            h.raw(ping_frame(), now=11.0 * minute_part)
    assert not goaways(h)
    assert len([f for f in h.frames if f.kind == PING]) == 240


def test_websocket_over_h2_messages_nobody_reads_are_bounded() -> None:
    # The app accepted and never reads: the stream's window stops being granted once the
    # unread messages pass body_buffer_high_water_bytes.
    h = H2Harness(ProtocolSettings(body_buffer_high_water_bytes=16 * KiB))
    stream_id = h.client.get_next_available_stream_id()
    h.client.send_headers(stream_id, WS_CONNECT, end_stream=False)
    h.exchange()
    cycle = h.cycle()
    h.message_for_app(cycle)
    h.message_from_app(cycle, {"type": "websocket.accept"})
    sent = 0
    while h.client.local_flow_control_window(stream_id) >= 1006 and sent < 10 * 1024 * KiB:
        h.send_data(stream_id, client_frame(BINARY, b"z" * 1000))
        sent += 1006
    assert sent <= 16 * KiB + 65535 + 1006, f"{sent} bytes taken in for an app that reads nothing"
