"""Properties of the HTTP/2 core, checked with Hypothesis.

* Chunking invariance: however an h2 client's bytes are split, the apps see the same scopes
  and messages, and the client gets the same frames (WINDOW_UPDATEs aside: when window is
  given back may follow the reads).
* Robustness: arbitrary bytes after the preface, and arbitrary frames (random types, flags,
  stream ids and payloads, mixed with valid requests), never raise out of the core; a
  connection error is a GOAWAY that is the last frame sent, followed by the end of the
  connection.
* Budget: whatever a client that reads nothing sends, through a driver that honours the
  core's pauses, the output queued for it, the running apps and the unread request body stay
  within their limits.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes, Settings
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sansio_asgi.core import (
    ClientDisconnected,
    ProtocolSettings,
    ServerProtocol,
)
from sansio_asgi.core.events import (
    CloseConnection,
    Event,
    PauseReading,
    ResumeReading,
    SendEOF,
    StartApp,
)
from tests.core.h2_helpers import (
    GOAWAY,
    PREFACE,
    WINDOW_UPDATE,
    Frame,
    FrameReader,
    RawClient,
    data_frame,
    frame,
    ping_frame,
    priority_frame,
    request_headers,
    rst_stream_frame,
    settings_frame,
    stream_view,
    window_update_frame,
)
from tests.core.helpers import CLIENT, SERVER

NOW = 1_700_000_000.0  # fixed, so date headers are equal across runs
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- generating requests


@dataclass
class GeneratedRequest:
    method: bytes
    path: bytes
    headers: list[tuple[bytes, bytes]]
    body: list[bytes]  # DATA frames


names = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=8).map(
    lambda s: ("x-" + s).encode()
)
values = st.text("abcdefghijklmnopqrstuvwxyz0123456789 ;=,/", max_size=12).map(
    lambda s: s.strip().encode()
)
paths = st.lists(
    st.sampled_from(["a", "b", "%20", "%E2%82%AC", "caf%C3%A9", "x.y", "~"]), min_size=1, max_size=4
).map(lambda parts: ("/" + "/".join(parts)).encode())
queries = st.sampled_from([b"", b"?q=1", b"?a=b&c=%20", b"?"])


@st.composite
def one_request(draw: st.DrawFn) -> GeneratedRequest:
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD", b"DELETE"]))
    headers = draw(st.lists(st.tuples(names, values), max_size=4))
    if draw(st.booleans()):
        headers.append((b"cookie", b"a=1"))
        headers.append((b"cookie", b"b=2"))
    body = draw(st.lists(st.binary(min_size=0, max_size=200), max_size=3))
    return GeneratedRequest(method, draw(paths) + draw(queries), headers, body)


def client_wire(requests: list[GeneratedRequest], pings: list[int]) -> bytes:
    """What an h2 client sends for ``requests`` (with a PING before the requests numbered in
    ``pings``), all at once, without reading the server."""
    client = H2Connection(H2Configuration(client_side=True, header_encoding=None))
    client.initiate_connection()
    for n, req in enumerate(requests):
        if n in pings:
            client.ping(b"%08d" % n)
        stream_id = client.get_next_available_stream_id()
        headers = request_headers(req.method, req.path, req.headers)
        client.send_headers(stream_id, headers, end_stream=not req.body)
        for i, piece in enumerate(req.body):
            client.send_data(stream_id, piece, end_stream=i == len(req.body) - 1)
    return client.data_to_send()


@st.composite
def split_points(draw: st.DrawFn, length: int) -> list[int]:
    if length < 2:
        return []
    return sorted(set(draw(st.lists(st.integers(1, length - 1), max_size=16))))


def split(data: bytes, points: list[int]) -> list[bytes]:
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if a < b]


# ---------------------------------------------------------------- a deterministic driver


def new_protocol(protocol_settings: ProtocolSettings | None = None) -> ServerProtocol:
    return ServerProtocol(
        protocol_settings or ProtocolSettings(), client=CLIENT, server=SERVER, now=NOW
    )


@dataclass
class Run:
    scopes: list[dict[str, Any]]
    messages: list[list[dict[str, Any]]]
    frames: list[tuple[int, int, int, bytes]]  # WINDOW_UPDATEs left out
    closed: bool
    responses: list[tuple[int | None, bytes, bool]]  # per request: status, body, ended


def echo_app(protocol: ServerProtocol, start: StartApp) -> list[dict[str, Any]]:
    """Read the whole request, answer with its path and body in two body messages."""
    messages: list[dict[str, Any]] = []
    body = b""
    while True:
        message = protocol.message_for_app(start.cycle)
        assert message is not None, "the request is all in, yet the app must wait"
        messages.append(message)
        if message["type"] != "http.request":
            return messages
        body += message["body"]
        if not message["more_body"]:
            break
    payload = start.scope["raw_path"] + b"\n" + body
    head = {"type": "http.response.start", "status": 200, "headers": [(b"x-n", b"1")]}
    protocol.message_from_app(start.cycle, head, NOW)
    half = len(payload) // 2
    for part, more in ((payload[:half], True), (payload[half:], False)):
        message = {"type": "http.response.body", "body": part, "more_body": more}
        protocol.message_from_app(start.cycle, message, NOW)
    protocol.app_finished(start.cycle, None, NOW)
    return messages


def run(pieces: list[bytes]) -> Run:
    """Feed every piece, then run each app in the order they started."""
    protocol = new_protocol()
    out: list[bytes] = []
    events: list[Event] = []
    for piece in pieces:
        protocol.receive_data(piece, NOW)
        out.append(protocol.data_to_send())
        events += protocol.events_received()
    starts = [e for e in events if isinstance(e, StartApp)]
    messages = []
    for start in starts:
        messages.append(echo_app(protocol, start))
        out.append(protocol.data_to_send())
        events += protocol.events_received()
    frames = FrameReader().feed(b"".join(out))
    return Run(
        scopes=[s.scope for s in starts],
        messages=messages,
        frames=[
            (f.kind, f.flags, f.stream_id, f.payload) for f in frames if f.kind != WINDOW_UPDATE
        ],
        closed=any(isinstance(e, (CloseConnection, SendEOF)) for e in events),
        responses=[
            (view.status, view.body, view.ended)
            for view in (stream_view(frames, 2 * n + 1) for n in range(len(starts)))
        ],
    )


@FAST
@given(
    data=st.data(),
    requests=st.lists(one_request(), min_size=1, max_size=4),
    pings=st.sets(st.integers(0, 3), max_size=2),
)
def test_any_chunking_gives_the_same_messages_and_frames(
    data: st.DataObject, requests: list[GeneratedRequest], pings: set[int]
) -> None:
    wire = client_wire(requests, sorted(pings))
    whole = run([wire])

    # The requests are valid: each reaches an app with its body, and each gets its echo.
    assert len(whole.scopes) == len(requests)
    assert not whole.closed
    for scope, messages, req in zip(whole.scopes, whole.messages, requests, strict=True):
        assert scope["http_version"] == "2"
        assert scope["method"] == req.method.decode()
        assert scope["raw_path"] == req.path.partition(b"?")[0]
        assert b"".join(m["body"] for m in messages) == b"".join(req.body)
    for n, (scope, req) in enumerate(zip(whole.scopes, requests, strict=True)):
        status, body, ended = whole.responses[n]
        assert status == 200 and ended
        expected = b"" if req.method == b"HEAD" else scope["raw_path"] + b"\n" + b"".join(req.body)
        assert body == expected

    points = data.draw(split_points(len(wire)), label="split points")
    for pieces in (split(wire, points), [wire[i : i + 1] for i in range(len(wire))]):
        split_run = run(pieces)
        assert split_run.scopes == whole.scopes
        assert split_run.messages == whole.messages
        assert split_run.frames == whole.frames
        assert split_run.closed == whole.closed


# ---------------------------------------------------------------- arbitrary input


STREAMS = [0, 1, 2, 3, 5, 0x7FFFFFFF]
valid_settings = st.dictionaries(
    st.sampled_from([1, 3, 4, 5, 6]), st.integers(16_384, 65_535), max_size=3
)
any_settings = st.dictionaries(st.integers(1, 9), st.integers(0, 2**32 - 1), max_size=3)


@st.composite
def actions(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """A client's moves: mostly valid requests and frames on the streams it opened (``k``
    picks one of them), sometimes a random frame or random bytes, and maybe a flood of one
    move at the end."""
    k = st.integers(0, 7)
    valid = st.one_of(
        st.tuples(st.just("request"), st.sampled_from([b"GET", b"POST"]), st.booleans()),
        st.tuples(st.just("data"), k, st.integers(0, 3000), st.booleans()),
        st.tuples(st.just("rst"), k, st.sampled_from([0, 1, 2, 8, 0xB])),
        st.tuples(st.just("ping")),
        st.tuples(st.just("settings"), valid_settings),
        st.tuples(st.just("window"), st.one_of(st.just(None), k), st.integers(1, 100_000)),
        st.tuples(st.just("priority"), k, k),
    )
    hostile = st.one_of(
        st.tuples(st.just("settings"), any_settings),
        st.tuples(st.just("window"), st.sampled_from(STREAMS), st.integers(0, 2**31 - 1)),
        st.tuples(
            st.just("frame"),
            st.integers(0, 12),
            st.integers(0, 255),
            st.sampled_from(STREAMS),
            st.binary(max_size=40),
        ),
        st.tuples(st.just("bytes"), st.binary(min_size=1, max_size=40)),
    )
    one = st.one_of(valid, valid, valid, valid, hostile)
    moves = draw(st.lists(one, max_size=25))
    if draw(st.booleans()):
        moves.append(draw(one))
        moves += [moves[-1]] * draw(st.integers(0, 300))  # a flood of one move
    return moves


class Builder:
    """Turns moves into bytes: stream ids for new requests in order, ``k`` into one of the
    streams opened so far, header blocks from one HPACK encoder."""

    def __init__(self) -> None:
        self.client = RawClient()
        self.opened: list[int] = []

    def stream(self, k: int) -> int:
        return self.opened[k % len(self.opened)]

    def bytes_of(self, move: tuple[Any, ...]) -> bytes:
        kind = move[0]
        if not self.opened and kind in ("data", "rst", "window", "priority"):
            # A frame about a stream, before any is open: open one first.
            return self.bytes_of(("request", b"POST", False)) + self.bytes_of(move)
        if kind == "request":
            stream_id = 2 * len(self.opened) + 1
            self.opened.append(stream_id)
            headers = request_headers(move[1])
            return self.client.headers(stream_id, headers, end_stream=move[2])
        if kind == "data":
            return data_frame(self.stream(move[1]), b"d" * move[2], end_stream=move[3])
        if kind == "rst":
            return rst_stream_frame(self.stream(move[1]), move[2])
        if kind == "ping":
            return ping_frame()
        if kind == "settings":
            return settings_frame(move[1])
        if kind == "window":
            stream_id = 0 if move[1] is None else move[1]
            if isinstance(move[1], int) and move[1] < 8 and move[2] > 0:
                stream_id = self.stream(move[1])
            return window_update_frame(stream_id, move[2])
        if kind == "priority":
            return priority_frame(self.stream(move[1]), self.stream(move[2]) + 2)
        if kind == "frame":
            return frame(move[1], move[2], move[3], move[4])
        return bytes(move[1])


@st.composite
def floods(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    """Some moves, then one move sent hundreds or thousands of times."""
    moves = draw(actions())
    flood = draw(
        st.sampled_from(
            [
                ("ping",),
                ("settings", {}),
                ("request", b"GET", True),
                ("priority", 0, 1),
                ("window", None, 1),
                ("data", 0, 0, False),
                ("rst", 0, 8),
            ]
        )
    )
    return moves + [flood] * draw(st.integers(200, 1500))


def wire_of(moves: list[tuple[Any, ...]]) -> bytes:
    builder = Builder()
    return builder.client.start() + b"".join(builder.bytes_of(move) for move in moves)


class Driver:
    """A driver that runs every app to completion as soon as it starts (or as far as the
    client lets it), and records everything."""

    def __init__(self, protocol: ServerProtocol) -> None:
        self.protocol = protocol
        self.out = b""
        self.events: list[Event] = []
        self.frames: list[Frame] = []
        self.reader = FrameReader()
        self.goaway_at: int | None = None  # len(frames) when an error GOAWAY was sent
        self.close_after_goaway = False

    def drain(self) -> None:
        data = self.protocol.data_to_send()
        self.out += data
        new = self.reader.feed(data)
        self.frames += new
        events = list(self.protocol.events_received())
        self.events += events
        for f in new:
            if f.kind == GOAWAY and f.error_code != 0 and self.goaway_at is None:
                self.goaway_at = len(self.frames)
                # RFC 9113 §5.4.1: after the GOAWAY of a connection error, "the endpoint
                # MUST close the TCP connection": the close comes with it.
                assert any(isinstance(e, (CloseConnection, SendEOF)) for e in events), events
        for item in events:
            if isinstance(item, StartApp):
                self.run_app(item)

    def run_app(self, start: StartApp) -> None:
        cycle = start.cycle
        try:
            for _ in range(50):
                message = self.protocol.message_for_app(cycle)
                if message is None or message["type"] != "http.request":
                    break
                if not message["more_body"]:
                    break
            if start.scope["type"] == "http":
                head = {"type": "http.response.start", "status": 200, "headers": []}
                self.protocol.message_from_app(cycle, head, NOW)
                body = {"type": "http.response.body", "body": b"ok"}
                self.protocol.message_from_app(cycle, body, NOW)
        except ClientDisconnected:
            pass
        self.protocol.app_finished(cycle, None, NOW)
        self.drain()


def check_arbitrary_input(pieces: list[bytes]) -> None:
    driver = Driver(new_protocol())
    for piece in pieces:
        driver.protocol.receive_data(piece, NOW)
        driver.drain()
    if driver.goaway_at is not None:
        assert len(driver.frames) == driver.goaway_at, "frames after the GOAWAY of an error"
    codes = sorted({f.error_code for f in driver.frames if f.kind == GOAWAY})
    event(f"GOAWAY codes {codes}")
    event(f"apps started: {min(sum(isinstance(e, StartApp) for e in driver.events), 3)}+")
    driver.protocol.handle_timer(NOW + 3600)
    driver.drain()
    driver.protocol.receive_eof(NOW + 3600)
    driver.drain()
    driver.protocol.handle_timer(NOW + 7200)
    driver.drain()
    assert any(isinstance(e, CloseConnection) for e in driver.events), "never closed"


def h2_refuses(wire: bytes) -> bool:
    """Whether h2, set up as the core sets it up, finds a connection error in ``wire``."""
    oracle = H2Connection(H2Configuration(client_side=False, header_encoding=None))
    defaults = ProtocolSettings()
    oracle.local_settings = Settings(
        client=False,
        initial_values={
            SettingCodes.MAX_CONCURRENT_STREAMS: defaults.h2_max_concurrent_streams,
            SettingCodes.MAX_HEADER_LIST_SIZE: defaults.h2_max_header_list_bytes,
            SettingCodes.MAX_FRAME_SIZE: defaults.h2_max_frame_bytes,
            SettingCodes.INITIAL_WINDOW_SIZE: defaults.h2_initial_window_bytes,
            SettingCodes.ENABLE_CONNECT_PROTOCOL: 1,
        },
    )
    oracle.decoder.max_header_list_size = 2 * defaults.h2_max_header_list_bytes
    oracle.initiate_connection()
    try:
        oracle.receive_data(wire)
    except ProtocolError:
        return True
    return False


random_frames = st.lists(
    st.builds(
        frame,
        st.integers(0, 12),
        st.integers(0, 255),
        st.sampled_from(STREAMS),
        st.binary(max_size=40),
    ),
    min_size=1,
    max_size=8,
).map(b"".join)


@FAST
@given(data=st.data(), tail=st.one_of(st.binary(max_size=300), random_frames))
def test_arbitrary_bytes_after_the_preface_never_raise(data: st.DataObject, tail: bytes) -> None:
    wire = PREFACE + settings_frame() + tail
    pieces = split(wire, data.draw(split_points(len(wire)), label="split points"))
    driver = Driver(new_protocol())
    for piece in pieces:
        driver.protocol.receive_data(piece, NOW)
        driver.drain()
    # h2 defines what is valid: a connection error is a GOAWAY with its code and a close,
    # at once (not at the next timeout or the client's EOF); anything else is not one.
    refused = h2_refuses(wire)
    event(f"h2 refuses: {refused}")
    assert (driver.goaway_at is not None) == refused, driver.frames
    if refused:
        assert any(isinstance(e, (CloseConnection, SendEOF)) for e in driver.events)
    check_arbitrary_input(pieces)


@FAST
@given(data=st.data(), moves=actions())
def test_arbitrary_frames_never_raise(data: st.DataObject, moves: list[tuple[Any, ...]]) -> None:
    wire = wire_of(moves)
    check_arbitrary_input(split(wire, data.draw(split_points(len(wire)), label="split points")))


# ---------------------------------------------------------------- the budget

LIMITS = ProtocolSettings(
    h2_max_concurrent_streams=3,
    h2_initial_window_bytes=1000,
    h2_max_control_frames=10**6,  # the floods are bounded by backpressure alone here
    h2_max_resets=10**6,
    read_size_bytes=1024,
    write_high_water_bytes=2048,
)


@FAST
@given(moves=st.one_of(actions(), floods()))
def test_a_client_that_reads_nothing_costs_a_bounded_amount(moves: list[tuple[Any, ...]]) -> None:
    wire = wire_of(moves)
    protocol = new_protocol(LIMITS)
    unsent = 0
    reading, writing_paused = True, False
    starts: list[StartApp] = []
    fed = 0
    while fed < len(wire) and reading:
        piece = wire[fed : fed + LIMITS.read_size_bytes]
        protocol.receive_data(piece, NOW)
        fed += len(piece)
        unsent += len(protocol.data_to_send())
        if not writing_paused and unsent > LIMITS.write_high_water_bytes:
            writing_paused = True
            protocol.writing_paused(NOW)
            unsent += len(protocol.data_to_send())
        for item in protocol.events_received():
            if isinstance(item, PauseReading):
                reading = False
            elif isinstance(item, ResumeReading):
                reading = True
            elif isinstance(item, StartApp):
                starts.append(item)
        # What the server queued: at most the high-water mark, plus what one read can cause.
        assert unsent <= LIMITS.write_high_water_bytes + 2 * LIMITS.read_size_bytes
        # Apps never finish here: every one started is still running.
        assert len(starts) <= LIMITS.h2_max_concurrent_streams
    event(f"reading paused: {not reading}; apps started: {len(starts)}")
    # Request body nobody read: at most the stream window, per stream.
    for start in starts:
        body = 0
        for _ in range(100):
            message = protocol.message_for_app(start.cycle)
            if message is None or message["type"] != "http.request":
                break
            body += len(message["body"])
            if not message["more_body"]:
                break
        assert body <= LIMITS.h2_initial_window_bytes
