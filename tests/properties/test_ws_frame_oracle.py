"""WebSocket frames read and written without wsproto (``core/ws_frames.py``), held to wsproto.

The splitter takes whole small messages itself and hands every other byte to wsproto; it may
only *defer*, never decide differently. So for any client stream, split at any points, a
connection with ``ws_parser="auto"`` and one with ``ws_parser="wsproto"`` (every frame through
wsproto) must give the app the same messages and the client the same bytes, and close the same
way. The streams: valid messages (whole, fragmented, with pings between fragments, closes),
hand-built frames at the edges of what the splitter takes (RSV bits, unknown opcodes, unmasked,
lengths not in the fewest bytes, text that is not UTF-8, continuations out of place), byte
mutations of those, and random bytes; with the default limits and with a small
``ws_max_size_bytes``.

What the server writes for a message is compared with what wsproto writes for it. A last
property requires that the common frame -- whole, masked, text or binary -- is read here, not
deferred.
"""

from __future__ import annotations

import struct
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, TextMessage

from sansio_asgi.core import ProtocolSettings
from sansio_asgi.core.ws_frames import BINARY, RAW, TEXT, FrameSplitter, message_frame
from tests.core.ws_helpers import WSClient, client_frame
from tests.properties.test_websocket_properties import (
    NO_PINGS,
    handshake_for,
    run,
    split,
    streams,
)

ORACLE = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MASK = b"\x37\xfa\x21\x3d"


# ---------------------------------------------------------------- hand-built frames


# The ways a frame can miss what the splitter takes, each drawn as often as a frame it takes.
NEAR_MISSES = [
    "none",
    "not fin",
    "rsv",
    "unmasked",
    "longer length",
    "64-bit length",
    "control",
    "unknown opcode",
    "continuation",
    "not utf-8",
]


@st.composite
def raw_frames(draw: st.DrawFn, miss: str | None = None) -> bytes:
    """One frame, whole and masked, text or binary, unless it misses in one way (drawn when
    ``miss`` is None)."""
    if miss is None:
        miss = draw(st.sampled_from(NEAR_MISSES))
    opcode = draw(st.sampled_from([0x1, 0x2]))
    if miss == "control":
        opcode = draw(st.sampled_from([0x8, 0x9, 0xA]))
    elif miss == "unknown opcode":
        opcode = draw(st.sampled_from([0x3, 0x7, 0xB, 0xF]))
    elif miss == "continuation":
        opcode = 0x0
    if miss == "not utf-8":
        opcode = 0x1
        payload = draw(st.text(max_size=20)).encode() + draw(
            st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xe2\x82"])
        )
    elif opcode == 0x1:
        payload = draw(st.text(max_size=40)).encode()
    else:
        payload = draw(st.binary(max_size=40) | st.binary(min_size=126, max_size=300))
    if opcode == 0x8 and draw(st.booleans()):
        code = draw(st.sampled_from([1000, 1001, 1005, 4000, 999]))
        payload = struct.pack("!H", code) + draw(st.binary(max_size=10))
    size = len(payload)
    first = (0 if miss == "not fin" else 0x80) | opcode
    if miss == "rsv":
        first |= draw(st.sampled_from([0x40, 0x20, 0x10]))
    mask_bit = 0 if miss == "unmasked" else 0x80
    head = bytearray([first])
    if miss == "64-bit length":
        head.append(mask_bit | 127)
        head += struct.pack("!Q", size)
    elif size < 126 and miss != "longer length":
        head.append(mask_bit | size)
    else:
        head.append(mask_bit | 126)
        head += struct.pack("!H", size)
    if miss == "unmasked":
        return bytes(head) + payload
    key = draw(st.binary(min_size=4, max_size=4))
    return bytes(head) + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def whole(opcode: int, payload: bytes) -> bytes:
    return client_frame(opcode, payload, mask=MASK)


@st.composite
def fragmented(draw: st.DrawFn) -> bytes:
    """A fragmented message (RFC 6455 §5.4): a first frame without FIN, continuations, maybe a
    ping between them, maybe a last one with FIN; or, a near miss, a whole message or a second
    first frame where only a continuation or a control frame may come."""
    opcode = draw(st.sampled_from([0x1, 0x2]))
    frames = [client_frame(opcode, draw(st.binary(max_size=8)).hex().encode(), fin=False)]
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            frames.append(whole(0x9, b"p"))
        frames.append(client_frame(0x0, b"more", fin=False))
    if draw(st.booleans()):
        frames.append(client_frame(0x0, b"end"))
    if draw(st.booleans()):
        intruder = whole(draw(st.sampled_from([0x1, 0x2])), b"intruder")
        frames.insert(draw(st.integers(1, len(frames))), intruder)
    return b"".join(frames)


@st.composite
def hand_streams(draw: st.DrawFn) -> bytes:
    parts = draw(
        st.lists(
            raw_frames() | fragmented(),
            max_size=6,
        )
    )
    data = b"".join(parts)
    if data and draw(st.booleans()):
        # A byte changed somewhere: a header or a payload that is no longer what it was.
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
    return data


@st.composite
def client_streams(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["valid", "hand", "random"]))
    if kind == "valid":
        return draw(streams()).wire(WSClient())
    if kind == "hand":
        return draw(hand_streams())
    return draw(st.binary(max_size=64))


limits = st.sampled_from(
    [NO_PINGS, ProtocolSettings(ws_ping_interval_s=None, ws_max_size_bytes=12)]
)


# ---------------------------------------------------------------- the properties


def same_both_ways(data: st.DataObject, body: bytes, limit: ProtocolSettings) -> None:
    """Feed the handshake and ``body``, cut at drawn points, to a connection reading frames
    here and to one reading them all with wsproto: the same messages, bytes and close."""
    wire = handshake_for(False) + body
    # Unsplit, a few cuts (most frames whole: the splitter's case), or many (mostly wsproto's).
    cuts = data.draw(st.sampled_from([0, 3, 16]))
    points = sorted(set(data.draw(st.lists(st.integers(1, len(wire) - 1), max_size=cuts))))
    pieces = split(wire, points)
    accept_at = data.draw(st.integers(1, len(pieces)))
    # The app accepts once the handshake is in: the first piece that completes it, or later.
    head = len(handshake_for(False))
    total = 0
    for count, piece in enumerate(pieces, start=1):
        total += len(piece)
        if total >= head:
            accept_at = max(accept_at, count)
            break
    interleaved = data.draw(st.booleans())
    fast = run(
        replace(limit, ws_parser="auto"), pieces, accept_at=accept_at, interleaved=interleaved
    )
    oracle = run(
        replace(limit, ws_parser="wsproto"), pieces, accept_at=accept_at, interleaved=interleaved
    )
    assert fast == oracle


@ORACLE
@given(data=st.data(), body=client_streams(), limit=limits)
def test_the_splitter_decides_as_wsproto_does(
    data: st.DataObject, body: bytes, limit: ProtocolSettings
) -> None:
    same_both_ways(data, body, limit)


@pytest.mark.parametrize("miss", NEAR_MISSES)
@settings(max_examples=60, deadline=None)
@given(data=st.data(), limit=limits)
def test_each_near_miss_is_decided_as_wsproto_decides(
    miss: str, data: st.DataObject, limit: ProtocolSettings
) -> None:
    """A frame missing the splitter's case in one way, between two it takes."""
    before = whole(0x1, data.draw(st.text(max_size=10)).encode())
    after = whole(0x2, data.draw(st.binary(max_size=10)))
    same_both_ways(data, before + data.draw(raw_frames(miss)) + after, limit)


@ORACLE
@given(
    message=st.text(max_size=300).map(lambda t: (t, None))
    | st.binary(max_size=70_000).map(lambda b: (None, b))
    | st.sampled_from([(None, b"x" * 125), (None, b"x" * 126), (None, b"x" * 0xFFFF)])
    | st.sampled_from([(None, b"x" * 0x10000)])
)
def test_a_message_is_written_as_wsproto_writes_it(
    message: tuple[str | None, bytes | None],
) -> None:
    text, data = message
    wsproto = Connection(ConnectionType.SERVER)
    try:
        expected = wsproto.send(
            TextMessage(data=text) if text is not None else BytesMessage(data=data)  # type: ignore[arg-type]
        )
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            message_frame(text, data)
        return
    assert b"".join(message_frame(text, data)) == expected


def test_a_lone_surrogate_is_refused_both_ways() -> None:
    with pytest.raises(UnicodeEncodeError):
        Connection(ConnectionType.SERVER).send(TextMessage(data="\ud800"))
    with pytest.raises(UnicodeEncodeError):
        message_frame("\ud800", None)


@ORACLE
@given(
    messages=st.lists(
        st.text(max_size=100).map(lambda t: (0x1, t.encode("utf-8", "surrogatepass")))
        | st.binary(max_size=3000).map(lambda b: (0x2, b)),
        min_size=1,
        max_size=5,
    )
)
def test_whole_masked_messages_are_read_here(messages: list[tuple[int, bytes]]) -> None:
    """The common case is not deferred: whole frames, each in the bytes at hand, each taken."""
    wire = b"".join(whole(opcode, payload) for opcode, payload in messages)
    items = FrameSplitter().feed(wire)
    expected = []
    for opcode, payload in messages:
        if opcode == 0x2:
            expected.append((BINARY, payload, len(payload)))
        else:
            try:
                expected.append((TEXT, payload.decode("utf-8"), len(payload)))
            except UnicodeDecodeError:
                return  # not UTF-8 (a lone surrogate): wsproto's to refuse; the oracle covers it
    assert items == expected


def test_a_frame_cut_in_two_goes_to_wsproto_and_the_next_whole_one_does_not() -> None:
    first = whole(0x1, b"x" * 300)
    second = whole(0x2, b"abc")
    splitter = FrameSplitter()
    assert splitter.feed(first[:100]) == [(RAW, first[:100], 0)]
    assert splitter.feed(first[100:] + second) == [
        (RAW, first[100:], 0),
        (BINARY, b"abc", 3),
    ]


def test_a_header_cut_short_is_followed_to_its_frame_end() -> None:
    frame = whole(0x2, b"y" * 200)  # a 16-bit length: 8 header bytes
    after = whole(0x1, b"hi")
    splitter = FrameSplitter()
    assert splitter.feed(frame[:3]) == [(RAW, frame[:3], 0)]
    assert splitter.feed(frame[3:5]) == [(RAW, frame[3:5], 0)]
    assert splitter.feed(frame[5:] + after) == [(RAW, frame[5:], 0), (TEXT, "hi", 2)]


def test_nothing_is_read_here_inside_a_fragmented_message() -> None:
    start = client_frame(0x1, b"he", fin=False, mask=MASK)
    inside = whole(0x2, b"no")  # wsproto's to refuse: a new message before the last ended
    end = client_frame(0x0, b"llo", mask=MASK)
    splitter = FrameSplitter()
    assert splitter.feed(start + inside) == [(RAW, start + inside, 0)]
    splitter = FrameSplitter()
    assert splitter.feed(start + end + inside) == [(RAW, start + end, 0), (BINARY, b"no", 2)]
