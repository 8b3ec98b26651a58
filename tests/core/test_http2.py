"""The HTTP/2 core (RFC 9113 on h2), one behaviour per test.

Every test drives a ``ServerProtocol`` through ``H2Harness``: an h2 client's bytes go in, the
server's bytes go back into the client, and the assertions are on what a client reads (the
frames, decoded by ``FrameReader``), on the ASGI messages and on the driver's events. Frames
the h2 client will not send (after a GOAWAY, beyond the advertised limits) are built by hand.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from typing import Any

import h11
import pytest

from sansio_asgi.core import (
    ASGIProtocolError,
    ClientDisconnected,
    ProtocolSettings,
)
from sansio_asgi.core.events import (
    CloseConnection,
    FeedFile,
    OpenFile,
    ResponseCompleted,
    SendEOF,
    WakeApp,
)
from sansio_asgi.core.proxy import TrustedHosts

from .h2_helpers import (
    CANCEL,
    DATA,
    ENABLE_CONNECT_PROTOCOL,
    ENABLE_PUSH,
    FLOW_CONTROL_ERROR,
    GOAWAY,
    HEADERS,
    INITIAL_WINDOW_SIZE,
    INTERNAL_ERROR,
    MAX_CONCURRENT_STREAMS,
    MAX_FRAME_SIZE,
    MAX_HEADER_LIST_SIZE,
    NO_ERROR,
    PREFACE,
    PROTOCOL_ERROR,
    PUSH_PROMISE,
    REFUSED_STREAM,
    RST_STREAM,
    SETTINGS,
    H2Harness,
    RawClient,
    frame,
    headers_frame,
    request_headers,
    server_settings,
    settings_frame,
)
from .helpers import CLIENT, SERVER, FakeFile, parse_response, request
from .ws_helpers import CLOSE, TEXT, client_frame, server_frames

PATH = "/srv/static/app.css"
CONTENT = b"body { color: red }\n" * 10
EXTENSIONS_H2 = {
    "http.response.trailers",
    "http.response.early_hint",
    "http.response.pathsend",
    "http.response.zerocopysend",
    "http.response.push",
}


def kinds(events: Sequence[object]) -> list[str]:
    return [type(event).__name__ for event in events]


def start(h: H2Harness, cycle: Any, status: int = 200, headers: Any = (), **extra: Any) -> None:
    message = {"type": "http.response.start", "status": status, "headers": list(headers)}
    h.message_from_app(cycle, {**message, **extra})


def send(h: H2Harness, cycle: Any, kind: str, **fields: Any) -> None:
    h.message_from_app(cycle, {"type": f"http.response.{kind}", **fields})


def get(h: H2Harness, path: str = "/", extra: Any = (), **kwargs: Any) -> tuple[int, Any]:
    """A GET on a new stream: its stream id and its cycle."""
    stream_id = h.request(b"GET", path.encode(), extra, **kwargs)
    return stream_id, h.cycle_for(path)


# ================================================================ the connection preface


def test_preface_gets_the_server_settings() -> None:
    h = H2Harness()
    settings = server_settings(h)
    assert settings[MAX_CONCURRENT_STREAMS] == 100
    assert settings[ENABLE_CONNECT_PROTOCOL] == 1
    assert settings.get(ENABLE_PUSH, 0) == 0, "a server MUST NOT send ENABLE_PUSH 1"
    assert settings.get(MAX_FRAME_SIZE, 16384) == 16384
    assert settings.get(MAX_HEADER_LIST_SIZE) == 16384
    assert settings.get(INITIAL_WINDOW_SIZE, 65535) == 65535
    # The client's SETTINGS are acknowledged, and the client accepted the server's.
    assert [f for f in h.frames_of(SETTINGS) if f.flags & 0x1]
    assert h.terminated() is None
    assert h.protocol.protocol == "h2"


def test_server_settings_follow_the_protocol_settings() -> None:
    h = H2Harness(
        ProtocolSettings(
            h2_max_concurrent_streams=7,
            h2_max_header_list_bytes=20000,
            h2_max_frame_bytes=32768,
            h2_initial_window_bytes=100_000,
        )
    )
    settings = server_settings(h)
    assert settings[MAX_CONCURRENT_STREAMS] == 7
    assert settings[MAX_HEADER_LIST_SIZE] == 20000
    assert settings[MAX_FRAME_SIZE] == 32768
    assert settings[INITIAL_WINDOW_SIZE] == 100_000


def test_without_websockets_extended_connect_is_not_offered() -> None:
    h = H2Harness(ProtocolSettings(ws_enabled=False))
    assert server_settings(h).get(ENABLE_CONNECT_PROTOCOL, 0) == 0


def test_preface_byte_by_byte_is_recognised() -> None:
    h = H2Harness(connect=False)
    h.client.initiate_connection()
    h.feed_pieces(h.client.data_to_send(), 1)
    h.exchange()
    assert server_settings(h)[MAX_CONCURRENT_STREAMS] == 100
    stream_id, cycle = get(h, "/bytes")
    h.respond(cycle, body=b"ok")
    h.exchange()
    assert h.response(stream_id).status == 200
    assert h.response(stream_id).body == b"ok"


def test_preface_with_alpn_h2() -> None:
    h = H2Harness(alpn="h2")
    stream_id, cycle = get(h, "/alpn")
    assert h.scope_for("/alpn")["http_version"] == "2"
    h.respond(cycle, body=b"ok")
    assert h.response(stream_id).body == b"ok"


def test_alpn_h2_without_the_preface_serves_nothing_and_closes() -> None:
    h = H2Harness(alpn="h2", connect=False)
    h.feed(request())
    assert not h.start_apps()
    assert h.closing()
    goaway = h.goaway()
    assert goaway is None or goaway.error_code == PROTOCOL_ERROR


def test_an_http11_start_is_served_as_http11() -> None:
    h = H2Harness(connect=False)
    h.feed(request("GET", "/plain"))
    assert h.scope()["http_version"] == "1.1"
    assert h.protocol.protocol == "http/1.1"
    h.respond(h.cycle(), body=b"one")
    response = parse_response(h.take_sent(), eof=False)
    assert (response.status, response.body) == (200, b"one")


def test_with_http2_off_the_preface_is_not_recognised() -> None:
    h = H2Harness(ProtocolSettings(http2=False), connect=False)
    h.feed(PREFACE + settings_frame())
    assert not h.start_apps()
    assert not h.frames_of(SETTINGS)
    response = parse_response(h.sent)
    assert response.status in (400, 505)
    assert h.closing()


def test_the_preface_must_arrive_within_the_header_timeout() -> None:
    h = H2Harness(ProtocolSettings(header_timeout_s=3.0), connect=False)
    h.feed(PREFACE[:10], now=0.0)
    deadline = h.protocol.next_deadline()
    assert deadline is not None and deadline <= 3.0
    h.timer(2.9)
    assert not h.closing()
    h.timer(3.0)
    assert h.closing()
    assert not h.start_apps()


def test_protocol_error_from_the_client_is_goaway_and_close() -> None:
    h = H2Harness()
    h.raw(frame(DATA, 0, 0, b"data on stream zero"))  # RFC 9113 §6.1: PROTOCOL_ERROR
    goaway = h.goaway()
    assert goaway is not None and goaway.error_code == PROTOCOL_ERROR
    assert h.closing()


# ================================================================ the request and its scope


def test_scope_of_a_get() -> None:
    h = H2Harness()
    extra = [
        (b"user-agent", b"t/1"),
        (b"cookie", b"a=1"),
        (b"accept", b"*/*"),
        (b"cookie", b"b=2"),
    ]
    h.request(b"GET", b"/caf%C3%A9/x?q=1&r=%20", extra)
    scope = h.scope()
    assert scope["type"] == "http"
    assert scope["http_version"] == "2"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/café/x"
    assert scope["raw_path"] == b"/caf%C3%A9/x"
    assert scope["query_string"] == b"q=1&r=%20"
    assert scope["client"] == CLIENT and scope["server"] == SERVER
    headers = scope["headers"]
    assert headers[0] == (b"host", b"example.com"), "the :authority becomes host, first"
    assert not [name for name, _ in headers if name.startswith(b":")]
    assert [v for k, v in headers if k == b"cookie"] == [b"a=1; b=2"]
    assert (b"user-agent", b"t/1") in headers and (b"accept", b"*/*") in headers
    assert all(type(k) is bytes and type(v) is bytes for k, v in headers)


def test_a_host_header_is_not_duplicated_by_the_authority() -> None:
    h = H2Harness()
    h.request(b"GET", b"/", [(b"host", b"example.com")])
    assert [v for k, v in h.scope()["headers"] if k == b"host"] == [b"example.com"]


def test_a_request_without_authority_keeps_its_host() -> None:
    h = H2Harness()
    h.request(b"GET", b"/", [(b"host", b"h.example")], authority=None)
    assert [v for k, v in h.scope()["headers"] if k == b"host"] == [b"h.example"]


def test_the_scheme_pseudo_header_is_not_trusted() -> None:
    h = H2Harness()
    h.request(b"GET", b"/", scheme=b"https")
    assert h.scope()["scheme"] == "http"


def test_the_scheme_is_the_connections() -> None:
    h = H2Harness(scheme="https", alpn="h2")
    h.request(b"GET", b"/")
    assert h.scope()["scheme"] == "https"


def test_extensions_offered_on_h2() -> None:
    h = H2Harness()
    h.request()
    assert set(h.scope()["extensions"]) == EXTENSIONS_H2


def test_post_body_in_several_data_frames() -> None:
    h = H2Harness()
    h.request(b"POST", b"/upload", body=[b"hello ", b"wor", b"ld"])
    messages = h.read_request(h.cycle())
    assert all(m["type"] == "http.request" for m in messages)
    assert b"".join(m["body"] for m in messages) == b"hello world"
    assert [m["more_body"] for m in messages] == [True] * (len(messages) - 1) + [False]
    assert all(type(m["body"]) is bytes for m in messages)


def test_body_arriving_later_wakes_the_app() -> None:
    h = H2Harness()
    stream_id = h.request(b"POST", b"/late", body=b"abc", end_stream=False)
    cycle = h.cycle()
    assert h.message_for_app(cycle) == {"type": "http.request", "body": b"abc", "more_body": True}
    assert h.message_for_app(cycle) is None
    h.take_events()
    h.send_data(stream_id, b"def", end_stream=True)
    assert WakeApp(cycle=cycle) in h.take_events()
    assert h.message_for_app(cycle) == {"type": "http.request", "body": b"def", "more_body": False}


def test_a_get_is_one_empty_final_message() -> None:
    h = H2Harness()
    h.request()
    assert h.read_request(h.cycle()) == [{"type": "http.request", "body": b"", "more_body": False}]


def test_the_request_ended_by_an_empty_data_frame() -> None:
    h = H2Harness()
    stream_id = h.request(b"POST", b"/", body=b"abc", end_stream=False)
    h.send_data(stream_id, b"", end_stream=True)
    messages = h.read_request(h.cycle())
    assert b"".join(m["body"] for m in messages) == b"abc"
    assert messages[-1]["more_body"] is False


def test_header_list_above_the_limit_gets_431_and_the_connection_stays() -> None:
    h = H2Harness(ProtocolSettings(h2_max_header_list_bytes=4096))
    big = h.request(b"GET", b"/big", [(b"x-big", b"a" * 5000)])
    assert not h.start_apps()
    assert h.response(big).status == 431
    assert h.response(big).ended
    stream_id, cycle = get(h, "/next")
    h.respond(cycle, body=b"ok")
    assert h.response(stream_id).body == b"ok"


def test_a_stream_above_the_limit_is_refused_and_the_connection_stays() -> None:
    # RFC 9113 §5.1.2: "An endpoint that receives a HEADERS frame that causes its advertised
    # concurrent stream limit to be exceeded MUST treat this as a stream error ... of type
    # PROTOCOL_ERROR or REFUSED_STREAM." A client may open streams before it has read the
    # server's SETTINGS: one too many costs that stream, never the others.
    h = H2Harness(ProtocolSettings(h2_max_concurrent_streams=2), connect=False)
    h.client_live = False
    client = RawClient()
    h.raw(client.start() + settings_frame(ack=True))
    h.raw(client.headers(1) + client.headers(3))
    answer = h.raw(client.headers(5))
    assert [(f.kind, f.error_code) for f in answer if f.stream_id == 5] == [
        (RST_STREAM, REFUSED_STREAM)
    ]
    assert h.goaway() is None and not h.closing()
    assert len(h.start_apps()) == 2
    first = h.cycle(0)
    h.respond(first, body=b"one")
    h.app_finished(first)
    h.raw(client.headers(7))
    assert len(h.start_apps()) == 3
    assert h.response(1).body == b"one"


# ================================================================ responses


def test_response_status_headers_and_body() -> None:
    h = H2Harness()
    stream_id, cycle = get(h, "/r")
    h.respond(cycle, 201, [(b"Content-Type", b"text/plain"), (b"X-Custom", b"1")], b"hello")
    response = h.response(stream_id)
    assert response.status == 201
    assert response.get(b"content-type") == b"text/plain"
    assert response.get(b"x-custom") == b"1"
    assert response.body == b"hello"
    assert response.ended
    assert h.terminated() is None, "the h2 client accepted the response"
    [completed] = h.of_type(ResponseCompleted)
    assert (completed.http_version, completed.status, completed.body_bytes) == ("2", 201, 5)
    assert completed.method == "GET"


def test_response_headers_are_lowercased() -> None:
    h = H2Harness()
    stream_id, cycle = get(h)
    h.respond(cycle, 200, [(b"X-Mixed-Case", b"v")], b"")
    assert (b"x-mixed-case", b"v") in h.response(stream_id).headers
    assert not [k for k, _ in h.response(stream_id).headers if k != k.lower()]


@pytest.mark.parametrize(
    "name", [b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"]
)
def test_connection_specific_response_headers_are_dropped(name: bytes) -> None:
    h = H2Harness()
    stream_id, cycle = get(h)
    value = b"chunked" if name == b"transfer-encoding" else b"x"
    h.respond(cycle, 200, [(name, value), (b"x-kept", b"1")], b"body")
    response = h.response(stream_id)
    assert response.get(name) is None
    assert response.get(b"x-kept") == b"1"
    assert response.body == b"body" and response.ended
    assert h.terminated() is None


def test_server_and_date_headers() -> None:
    h = H2Harness()
    stream_id, cycle = get(h)
    h.respond(cycle, body=b"")
    response = h.response(stream_id)
    assert response.get(b"server") is not None
    assert response.get(b"date") is not None


def test_a_streamed_body_ends_with_end_stream_on_the_last_frame() -> None:
    h = H2Harness()
    stream_id, cycle = get(h)
    start(h, cycle)
    send(h, cycle, "body", body=b"one ", more_body=True)
    assert not h.response(stream_id).ended
    assert h.response(stream_id).body == b"one "
    send(h, cycle, "body", body=b"two", more_body=True)
    send(h, cycle, "body", body=b"", more_body=False)
    response = h.response(stream_id)
    assert response.body == b"one two" and response.ended


def test_a_large_body_is_split_into_frames_no_larger_than_the_clients_max() -> None:
    h = H2Harness()
    stream_id, cycle = get(h)
    body = bytes(range(256)) * 200  # 51,200 bytes: within the client's initial window
    h.respond(cycle, 200, [(b"content-length", str(len(body)).encode())], body)
    assert h.response(stream_id).body == body
    assert all(len(f.payload) <= 16384 for f in h.frames_of(DATA, stream_id))


def test_head_response_has_no_data_and_keeps_content_length() -> None:
    h = H2Harness()
    stream_id = h.request(b"HEAD", b"/h")
    cycle = h.cycle()
    h.respond(cycle, 200, [(b"content-length", b"5")], b"hello")
    response = h.response(stream_id)
    assert response.status == 200 and response.get(b"content-length") == b"5"
    assert response.ended
    assert h.frames_of(DATA, stream_id) == []


@pytest.mark.parametrize("status", [204, 304])
def test_204_and_304_have_no_data(status: int) -> None:
    h = H2Harness()
    stream_id, cycle = get(h)
    start(h, cycle, status)
    send(h, cycle, "body", body=b"")
    response = h.response(stream_id)
    assert response.status == status and response.ended
    assert h.frames_of(DATA, stream_id) == []


def test_concurrent_streams_with_interleaved_responses() -> None:
    h = H2Harness()
    ids = [h.request(b"GET", f"/{n}".encode()) for n in range(3)]
    cycles = [h.cycle_for(f"/{n}") for n in range(3)]
    assert len(h.start_apps()) == 3, "every stream's app starts at once"
    for cycle in reversed(cycles):
        start(h, cycle)
    for round_ in range(3):
        for n, cycle in enumerate(cycles):
            send(h, cycle, "body", body=f"{n}{round_} ".encode(), more_body=True)
    for cycle in (cycles[1], cycles[0], cycles[2]):
        send(h, cycle, "body", body=b"end")
    for n, stream_id in enumerate(ids):
        response = h.response(stream_id)
        assert response.status == 200 and response.ended
        assert response.body == f"{n}0 {n}1 {n}2 end".encode()
    assert not h.closing()


def test_a_second_request_after_the_first_completes() -> None:
    h = H2Harness()
    first, cycle = get(h, "/one")
    h.respond(cycle, body=b"1")
    h.app_finished(cycle)
    second, cycle = get(h, "/two")
    h.respond(cycle, body=b"2")
    assert (h.response(first).body, h.response(second).body) == (b"1", b"2")


# ================================================================ flow control


def test_data_never_exceeds_the_clients_window_and_resumes_on_window_update() -> None:
    h = H2Harness(client_settings={INITIAL_WINDOW_SIZE: 100}, auto_ack=False)
    stream_id, cycle = get(h)
    h.respond(cycle, 200, [(b"content-length", b"1000")], b"x" * 1000)
    assert len(h.response(stream_id).body) == 100
    assert not h.response(stream_id).ended
    h.client.increment_flow_control_window(300, stream_id)
    h.exchange()
    assert len(h.response(stream_id).body) == 400
    h.client.increment_flow_control_window(600, stream_id)
    h.exchange()
    response = h.response(stream_id)
    assert response.body == b"x" * 1000 and response.ended


def test_data_never_exceeds_the_connection_window() -> None:
    # The client's connection window stays at 65,535; its streams' windows are larger.
    h = H2Harness(client_settings={INITIAL_WINDOW_SIZE: 1 << 20}, auto_ack=False)
    a, ca = get(h, "/a")
    b, cb = get(h, "/b")
    h.respond(ca, 200, [], b"a" * 50_000)
    h.respond(cb, 200, [], b"b" * 50_000)
    total = len(h.response(a).body) + len(h.response(b).body)
    assert total == 65535
    h.client.increment_flow_control_window(100_000)
    h.exchange()
    assert h.response(a).body == b"a" * 50_000 and h.response(b).body == b"b" * 50_000


def test_a_download_paced_by_window_updates_is_not_a_flood() -> None:
    # A client with the protocol's initial windows gives window back as it reads (h2 and
    # nghttp2 after half a window): two WINDOW_UPDATEs per 32 KiB. Each lets the response go
    # on: progress, not a flood, however fast the download (at the default budget of 1,000
    # a 16 MiB download within 10 s would end in ENHANCE_YOUR_CALM).
    h = H2Harness(ProtocolSettings(h2_max_control_frames=100))
    stream_id, cycle = get(h)
    start(h, cycle, 200, [(b"content-length", b"%d" % (4 << 20))])
    piece = b"x" * (64 << 10)
    try:
        for _ in range(64):
            send(h, cycle, "body", body=piece, more_body=True)
            while not h.send_ready(cycle):
                h.exchange()
        send(h, cycle, "body", body=b"")
    except ClientDisconnected:
        goaway = h.goaway()
        assert goaway is None, f"the download ended with GOAWAY {goaway.error_code:#x}"
        raise
    assert h.goaway() is None
    response = h.response(stream_id)
    assert len(response.body) == 4 << 20 and response.ended


def test_send_ready_is_false_while_unsent_bytes_are_above_the_high_water() -> None:
    h = H2Harness(
        ProtocolSettings(write_high_water_bytes=1000),
        client_settings={INITIAL_WINDOW_SIZE: 0},
        auto_ack=False,
    )
    stream_id, cycle = get(h)
    start(h, cycle)
    send(h, cycle, "body", body=b"a" * 500, more_body=True)
    assert h.send_ready(cycle)
    send(h, cycle, "body", body=b"b" * 600, more_body=True)
    assert not h.send_ready(cycle)
    assert h.frames_of(DATA, stream_id) == []
    h.take_events()
    h.client.increment_flow_control_window(5000, stream_id)
    h.exchange()
    assert WakeApp(cycle=cycle) in h.take_events(), "a waiting send() must be woken"
    assert h.send_ready(cycle)
    assert h.response(stream_id).body == b"a" * 500 + b"b" * 600


def test_send_ready_is_true_for_a_stream_with_window() -> None:
    h = H2Harness(ProtocolSettings(write_high_water_bytes=1000))
    _, cycle = get(h)
    start(h, cycle)
    send(h, cycle, "body", body=b"a" * 5000, more_body=True)
    assert h.send_ready(cycle)


def test_send_ready_of_one_stream_does_not_hold_another() -> None:
    h = H2Harness(
        ProtocolSettings(write_high_water_bytes=1000),
        client_settings={INITIAL_WINDOW_SIZE: 0},
        auto_ack=False,
    )
    a, ca = get(h, "/a")
    b, cb = get(h, "/b")
    start(h, ca)
    send(h, ca, "body", body=b"a" * 2000, more_body=True)
    assert not h.send_ready(ca)
    assert h.send_ready(cb)
    h.client.increment_flow_control_window(10, b)
    h.exchange()
    h.respond(cb, 200, [], b"b" * 10)
    assert h.response(b).body == b"b" * 10 and h.response(b).ended
    assert h.response(a).body == b""


def test_request_window_is_granted_as_the_app_reads_and_a_slow_stream_stops_alone() -> None:
    h = H2Harness(ProtocolSettings(h2_initial_window_bytes=1000))
    a = h.request(b"POST", b"/a", body=b"a" * 1000, end_stream=False)
    b = h.request(b"POST", b"/b", body=b"b" * 1000, end_stream=False)
    ca, cb = h.cycle_for("/a"), h.cycle_for("/b")
    assert h.client.local_flow_control_window(a) == 0
    assert h.client.local_flow_control_window(b) == 0
    # The app of /b reads: its window opens; /a's app does not: its window stays shut.
    received = b"".join(m["body"] for m in h.read_request(cb))
    assert received == b"b" * 1000
    assert h.client.local_flow_control_window(b) > 0
    assert h.client.local_flow_control_window(a) == 0
    for _ in range(5):
        window = h.client.local_flow_control_window(b)
        assert window > 0, "the connection window must not be held by the stream that waits"
        h.send_data(b, b"c" * min(window, 1000))
        received += b"".join(m["body"] for m in h.read_request(cb))
    assert len(received) > 2000
    assert h.client.local_flow_control_window(a) == 0
    # Once /a's app reads, its window opens too.
    assert b"".join(m["body"] for m in h.read_request(ca)) == b"a" * 1000
    assert h.client.local_flow_control_window(a) > 0


def test_a_stream_whose_app_does_not_read_does_not_stop_the_others() -> None:
    # With the protocol's initial windows, one stream's unread 64 KiB would shut the
    # connection's window for every stream, unless the server opened it wider.
    h = H2Harness()
    a = h.request(b"POST", b"/a", end_stream=False)
    while h.client.local_flow_control_window(a) > 0:
        h.send_data(a, b"a" * min(h.client.local_flow_control_window(a), 16384))
    b = h.request(b"POST", b"/b", end_stream=False)
    assert h.client.local_flow_control_window(b) == 65535
    h.send_data(b, b"b" * 16384, end_stream=True)
    assert b"".join(m["body"] for m in h.read_request(h.cycle_for("/b"))) == b"b" * 16384


def test_unread_request_body_never_exceeds_the_stream_window() -> None:
    h = H2Harness(ProtocolSettings(h2_initial_window_bytes=1000))
    stream_id = h.request(b"POST", b"/", body=b"a" * 1000, end_stream=False)
    # The window is used up: more DATA is a flow-control error, not more buffered body.
    answer = h.raw(frame(DATA, 0, stream_id, b"z" * 500))
    assert [
        f for f in answer if f.kind in (GOAWAY, RST_STREAM) and f.error_code == FLOW_CONTROL_ERROR
    ], "RFC 9113 §6.9.1: a sender MUST NOT send a flow-controlled frame beyond the window"
    buffered = b"".join(m.get("body", b"") for m in h.read_request(h.cycle()))
    assert buffered.count(b"z") == 0
    assert len(buffered) <= 1000


# ================================================================ the app's end


@pytest.mark.parametrize("exc", [RuntimeError("boom"), None])
def test_app_finishing_before_the_response_gets_500_and_the_connection_stays(
    exc: Exception | None,
) -> None:
    h = H2Harness()
    bad, cycle = get(h, "/bad")
    h.app_finished(cycle, exc)
    response = h.response(bad)
    assert response.status == 500 and response.ended
    assert not h.closing()
    good, cycle = get(h, "/good")
    h.respond(cycle, body=b"ok")
    assert h.response(good).body == b"ok"


def test_app_raising_with_the_head_held_gets_500() -> None:
    h = H2Harness()
    stream_id, cycle = get(h)
    start(h, cycle, 200, [(b"x-app", b"1")])
    h.app_finished(cycle, RuntimeError("boom"))
    response = h.response(stream_id)
    assert response.status == 500 and response.get(b"x-app") is None


def test_app_raising_after_the_head_went_out_resets_the_stream() -> None:
    h = H2Harness()
    stream_id, cycle = get(h, "/mid")
    other, other_cycle = get(h, "/other")
    start(h, cycle)
    send(h, cycle, "body", body=b"partial", more_body=True)
    h.app_finished(cycle, RuntimeError("boom"))
    response = h.response(stream_id)
    assert response.status == 200 and not response.ended
    assert response.reset == INTERNAL_ERROR
    assert not h.closing()
    h.respond(other_cycle, body=b"fine")
    assert h.response(other).body == b"fine" and h.response(other).ended


def test_app_returning_mid_body_resets_the_stream() -> None:
    h = H2Harness()
    stream_id, cycle = get(h)
    start(h, cycle)
    send(h, cycle, "body", body=b"partial", more_body=True)
    h.app_finished(cycle)
    response = h.response(stream_id)
    assert not response.ended and response.reset is not None
    assert not h.closing()


def test_client_reset_tells_the_app_the_client_left() -> None:
    h = H2Harness()
    stream_id = h.request(b"POST", b"/gone", body=b"part", end_stream=False)
    cycle = h.cycle_for("/gone")
    other, other_cycle = get(h, "/stays")
    assert h.read_request(cycle) == [{"type": "http.request", "body": b"part", "more_body": True}]
    h.take_events()
    h.client.reset_stream(stream_id, CANCEL)
    h.exchange()
    assert WakeApp(cycle=cycle) in h.take_events(), "the app waiting in receive() is woken"
    assert h.message_for_app(cycle) == {"type": "http.disconnect"}
    with pytest.raises(ClientDisconnected):
        start(h, cycle)
        send(h, cycle, "body", body=b"x")
    h.respond(other_cycle, body=b"ok")
    assert h.response(other).body == b"ok"
    assert not h.closing()


def test_client_reset_of_a_stream_whose_app_does_not_wait() -> None:
    h = H2Harness()
    stream_id, cycle = get(h, "/gone")
    assert h.read_request(cycle)[-1]["more_body"] is False
    h.client.reset_stream(stream_id, CANCEL)
    h.exchange()
    assert h.message_for_app(cycle) == {"type": "http.disconnect"}
    with pytest.raises(ClientDisconnected):
        start(h, cycle)
        send(h, cycle, "body", body=b"x")


def test_client_eof_disconnects_every_stream() -> None:
    h = H2Harness()
    _, a = get(h, "/a")
    _, b = get(h, "/b")
    h.read_request(a)
    h.read_request(b)
    h.eof()
    assert h.message_for_app(a) == {"type": "http.disconnect"}
    assert h.message_for_app(b) == {"type": "http.disconnect"}
    with pytest.raises(ClientDisconnected):
        start(h, a)
        send(h, a, "body", body=b"x")
    assert h.of_type(CloseConnection) or h.of_type(SendEOF)


def test_a_request_body_that_stops_arriving_resets_the_stream() -> None:
    h = H2Harness(ProtocolSettings(request_body_timeout_s=10.0), now=0.0)
    stream_id = h.request(b"POST", b"/slow", body=b"part", end_stream=False, now=0.0)
    cycle = h.cycle()
    assert h.read_request(cycle) == [{"type": "http.request", "body": b"part", "more_body": True}]
    h.timer(9.9)
    assert h.response(stream_id).reset is None
    h.timer(10.0)
    assert h.response(stream_id).reset is not None
    assert h.message_for_app(cycle) == {"type": "http.disconnect"}
    assert not h.closing()


def test_a_response_before_the_whole_request_ends_the_stream_with_no_error() -> None:
    # RFC 9113 §8.1: "a server MAY request that the client abort transmission of a request
    # without error by sending a RST_STREAM with an error code of NO_ERROR after sending a
    # complete response".
    h = H2Harness()
    stream_id = h.request(b"POST", b"/early", body=b"part", end_stream=False)
    h.respond(h.cycle(), 413, [], b"too much")
    response = h.response(stream_id)
    assert response.status == 413 and response.body == b"too much" and response.ended
    assert response.reset == NO_ERROR
    # Whatever of the body was in flight is dropped, and the connection goes on.
    h.raw(frame(DATA, 0, stream_id, b"late"))
    assert h.goaway() is None
    other, cycle = get(h, "/next")
    h.respond(cycle, body=b"ok")
    assert h.response(other).body == b"ok"


def test_a_body_longer_than_its_content_length_resets_the_stream() -> None:
    h = H2Harness()
    stream_id, cycle = get(h)
    start(h, cycle, 200, [(b"content-length", b"3")])
    with pytest.raises(ASGIProtocolError):
        send(h, cycle, "body", body=b"toolong")
    response = h.response(stream_id)
    assert not response.ended and response.reset == INTERNAL_ERROR
    assert not h.closing()


def test_a_head_request_whose_app_fails_gets_a_500_without_data() -> None:
    h = H2Harness()
    stream_id = h.request(b"HEAD", b"/")
    h.app_finished(h.cycle(), RuntimeError("boom"))
    response = h.response(stream_id)
    assert response.status == 500 and response.ended
    assert h.frames_of(DATA, stream_id) == []


def test_invalid_app_message_raises() -> None:
    h = H2Harness()
    _, cycle = get(h)
    with pytest.raises(ASGIProtocolError):
        h.message_from_app(cycle, {"type": "http.response.body", "body": b"before start"})


# ================================================================ extensions


def test_trailers_are_sent_as_a_trailing_headers_frame_with_te_trailers() -> None:
    h = H2Harness()
    stream_id, cycle = get(h, extra=[(b"te", b"trailers")])
    start(h, cycle, trailers=True)
    send(h, cycle, "body", body=b"hello")
    send(h, cycle, "trailers", headers=[(b"grpc-status", b"0")], more_trailers=True)
    assert not h.response(stream_id).ended
    send(h, cycle, "trailers", headers=[(b"x-checksum", b"abc")])
    response = h.response(stream_id)
    assert response.body == b"hello" and response.ended
    assert response.trailers == [(b"grpc-status", b"0"), (b"x-checksum", b"abc")]
    assert h.terminated() is None


def test_trailers_are_dropped_without_te_trailers_and_the_stream_ends() -> None:
    h = H2Harness()
    stream_id, cycle = get(h)
    start(h, cycle, trailers=True)
    send(h, cycle, "body", body=b"hello")
    send(h, cycle, "trailers", headers=[(b"grpc-status", b"0")])
    response = h.response(stream_id)
    assert response.body == b"hello" and response.ended
    assert response.trailers is None


def test_early_hints_are_a_103_before_the_final_head() -> None:
    h = H2Harness()
    stream_id, cycle = get(h)
    start(h, cycle, 200, [(b"content-type", b"text/html")])
    send(h, cycle, "early_hint", links=[b"</a.css>; rel=preload; as=style"])
    [hint] = h.response(stream_id).informational
    assert (b":status", b"103") in hint
    assert (b"link", b"</a.css>; rel=preload; as=style") in hint
    assert h.response(stream_id).status is None, "the final head is still held"
    send(h, cycle, "body", body=b"<html>")
    response = h.response(stream_id)
    assert response.status == 200 and response.body == b"<html>"
    headers_frames = h.frames_of(HEADERS, stream_id)
    assert [f.status for f in headers_frames] == [103, 200]


def test_pathsend_goes_through_feed_file() -> None:
    h = H2Harness()
    h.answer_files = False
    stream_id, cycle = get(h)
    start(h, cycle, 200, [(b"content-length", str(len(CONTENT)).encode())])
    send(h, cycle, "pathsend", path=PATH)
    [open_file] = [e for e in h.take_events() if isinstance(e, OpenFile)]
    assert open_file.path == PATH
    h.protocol.file_opened(cycle, 42, 0, len(CONTENT), h.now)
    h._drain()
    feeds = [e for e in h.take_events() if isinstance(e, FeedFile)]
    assert len(feeds) == 1
    feed = feeds[0]
    assert (feed.cycle, feed.fd, feed.offset, feed.count) == (cycle, 42, 0, len(CONTENT))
    h.protocol.file_data(cycle, CONTENT[:50], h.now)
    h.protocol.file_data(cycle, CONTENT[50:], h.now)
    h._drain()
    h.exchange()
    assert not h.response(stream_id).ended
    h.protocol.file_sent(cycle, h.now)
    h._drain()
    h.exchange()
    response = h.response(stream_id)
    assert response.body == CONTENT and response.ended


def test_pathsend_through_the_harness() -> None:
    h = H2Harness()
    h.files[PATH] = CONTENT
    stream_id, cycle = get(h)
    start(h, cycle, 200, [(b"content-length", str(len(CONTENT)).encode())])
    send(h, cycle, "pathsend", path=PATH)
    response = h.response(stream_id)
    assert response.body == CONTENT and response.ended
    assert response.get(b"content-length") == str(len(CONTENT)).encode()


def test_zerocopysend_with_offset_and_count() -> None:
    h = H2Harness()
    stream_id, cycle = get(h)
    start(h, cycle)
    send(h, cycle, "zerocopysend", file=FakeFile(CONTENT), offset=5, count=10)
    response = h.response(stream_id)
    assert response.body == CONTENT[5:15] and response.ended


def test_push_promise_and_a_new_app_for_the_pushed_request() -> None:
    h = H2Harness()  # h2's client says ENABLE_PUSH 1
    stream_id, cycle = get(h, "/index.html")
    assert "http.response.push" in h.scope_for("/index.html")["extensions"]
    start(h, cycle)
    send(h, cycle, "push", path="/style.css", headers=[(b"accept", b"text/css")])
    [(promised, promise)] = h.response(stream_id).pushed
    assert promised % 2 == 0
    assert (b":method", b"GET") in promise and (b":path", b"/style.css") in promise
    assert (b":authority", b"example.com") in promise
    assert (b"accept", b"text/css") in promise
    pushed_scope = h.scope_for("/style.css")
    assert pushed_scope["method"] == "GET" and pushed_scope["http_version"] == "2"
    assert (b"accept", b"text/css") in pushed_scope["headers"]
    pushed_cycle = h.cycle_for("/style.css")
    assert h.read_request(pushed_cycle) == [
        {"type": "http.request", "body": b"", "more_body": False}
    ]
    send(h, cycle, "body", body=b"<html>")
    h.respond(pushed_cycle, 200, [(b"content-type", b"text/css")], b"p {}")
    assert h.response(promised).status == 200 and h.response(promised).body == b"p {}"
    assert h.response(promised).ended
    assert h.response(stream_id).body == b"<html>"
    assert h.terminated() is None
    # The PUSH_PROMISE precedes the parent's DATA that might refer to it (RFC 9113 §8.4.1).
    order = [f.kind for f in h.frames if f.stream_id == stream_id and f.kind != HEADERS]
    assert order.index(PUSH_PROMISE) < order.index(DATA)


def test_push_is_not_offered_when_the_client_disabled_it() -> None:
    h = H2Harness(client_settings={ENABLE_PUSH: 0})
    _, cycle = get(h, "/index.html")
    assert "http.response.push" not in h.scope()["extensions"]
    start(h, cycle)
    with pytest.raises(ASGIProtocolError):
        send(h, cycle, "push", path="/style.css", headers=[])
    assert not h.frames_of(PUSH_PROMISE)


# ================================================================ WebSocket over HTTP/2


def ws_connect(h: H2Harness, path: bytes = b"/ws", extra: Any = ()) -> tuple[int, Any]:
    stream_id = h.client.get_next_available_stream_id()
    headers = [
        (b":method", b"CONNECT"),
        (b":protocol", b"websocket"),
        (b":scheme", b"http"),
        (b":path", path),
        (b":authority", b"example.com"),
        (b"sec-websocket-version", b"13"),
        *extra,
    ]
    h.client.send_headers(stream_id, headers, end_stream=False)
    h.exchange()
    return stream_id, h.cycle()


def ws_frames(h: H2Harness, stream_id: int) -> list[Any]:
    return server_frames(h.response(stream_id).body)


def test_websocket_over_h2_scope_and_accept() -> None:
    h = H2Harness()
    stream_id, cycle = ws_connect(h, extra=[(b"sec-websocket-protocol", b"chat")])
    scope = h.scope()
    assert scope["type"] == "websocket"
    assert scope["http_version"] == "2"
    assert scope["path"] == "/ws"
    assert scope["subprotocols"] == ["chat"]
    assert scope["headers"][0] == (b"host", b"example.com")
    assert h.message_for_app(cycle) == {"type": "websocket.connect"}
    h.message_from_app(cycle, {"type": "websocket.accept", "subprotocol": "chat"})
    response = h.response(stream_id)
    assert response.status == 200 and not response.ended
    assert response.get(b"sec-websocket-protocol") == b"chat"
    assert response.get(b"sec-websocket-accept") is None, "RFC 8441 §5: no accept token"


def test_websocket_over_h2_messages_both_ways_and_close() -> None:
    h = H2Harness()
    stream_id, cycle = ws_connect(h)
    assert h.message_for_app(cycle) == {"type": "websocket.connect"}
    h.message_from_app(cycle, {"type": "websocket.accept"})
    h.send_data(stream_id, client_frame(TEXT, b"hello"))
    message = h.message_for_app(cycle)
    assert message is not None and message["type"] == "websocket.receive"
    assert message.get("text") == "hello"
    h.message_from_app(cycle, {"type": "websocket.send", "bytes": b"\x00\x01"})
    h.message_from_app(cycle, {"type": "websocket.send", "text": "hi"})
    frames = ws_frames(h, stream_id)
    assert [(f.opcode, f.payload) for f in frames] == [(0x2, b"\x00\x01"), (0x1, b"hi")]
    h.message_from_app(cycle, {"type": "websocket.close", "code": 1000})
    closes = [f for f in ws_frames(h, stream_id) if f.opcode == CLOSE]
    assert closes and closes[0].close_code == 1000
    h.send_data(stream_id, client_frame(CLOSE, struct.pack("!H", 1000)), end_stream=True)
    assert h.response(stream_id).ended
    assert h.response(stream_id).reset is None
    # The connection serves other streams still.
    other, other_cycle = get(h, "/after")
    h.respond(other_cycle, body=b"ok")
    assert h.response(other).body == b"ok"


def test_websocket_over_h2_client_close_reaches_the_app() -> None:
    h = H2Harness()
    stream_id, cycle = ws_connect(h)
    h.message_for_app(cycle)
    h.message_from_app(cycle, {"type": "websocket.accept"})
    h.send_data(stream_id, client_frame(CLOSE, struct.pack("!H", 1001)), end_stream=True)
    message = h.message_for_app(cycle)
    assert message is not None
    assert message["type"] == "websocket.disconnect" and message["code"] == 1001
    assert h.response(stream_id).ended
    assert not h.closing()


def test_websocket_over_h2_denied_before_accept_is_403() -> None:
    h = H2Harness()
    stream_id, cycle = ws_connect(h)
    h.message_for_app(cycle)
    h.message_from_app(cycle, {"type": "websocket.close"})
    response = h.response(stream_id)
    assert response.status == 403 and response.ended


def test_plain_connect_gets_501() -> None:
    h = H2Harness()
    stream_id = h.client.get_next_available_stream_id()
    h.client.send_headers(
        stream_id, [(b":method", b"CONNECT"), (b":authority", b"example.com:443")], end_stream=False
    )
    h.exchange()
    assert not h.start_apps()
    assert h.response(stream_id).status == 501
    assert not h.closing()


# ================================================================ ending connections


def test_graceful_shutdown_finishes_the_stream_in_flight_and_refuses_new_ones() -> None:
    h = H2Harness()
    stream_id, cycle = get(h, "/slow")
    h.protocol.shutdown(h.now)
    h._drain()
    h.exchange()
    goaways = h.frames_of(GOAWAY)
    assert goaways and all(g.error_code == NO_ERROR for g in goaways)
    assert goaways[-1].last_stream_id == stream_id
    assert not h.closing()
    # A new stream from a client that had not read the GOAWAY yet is refused, by hand: the
    # h2 client takes nothing after a GOAWAY.
    block = h.client.encoder.encode(request_headers(path=b"/late"))
    answer = h.raw(headers_frame(stream_id + 2, block))
    assert [(f.kind, f.error_code) for f in answer if f.stream_id == stream_id + 2] == [
        (RST_STREAM, REFUSED_STREAM)
    ]
    assert len(h.start_apps()) == 1
    h.respond(cycle, body=b"done")
    response = h.response(stream_id)
    assert response.status == 200 and response.body == b"done" and response.ended
    h.app_finished(cycle)
    assert h.closing()


def test_shutdown_of_an_idle_connection_is_goaway_and_close() -> None:
    h = H2Harness()
    h.protocol.shutdown(h.now)
    h._drain()
    h.timer(h.now + 1.0)
    goaway = h.goaway()
    assert goaway is not None and goaway.error_code == NO_ERROR
    assert goaway.last_stream_id == 0
    assert h.closing()


def test_idle_keep_alive_timeout_is_goaway_and_close() -> None:
    h = H2Harness(ProtocolSettings(keep_alive_timeout_s=5.0), now=0.0)
    deadline = h.protocol.next_deadline()
    assert deadline is not None and deadline <= 5.0
    h.timer(4.9)
    assert h.goaway() is None and not h.closing()
    h.timer(5.0)
    goaway = h.goaway()
    assert goaway is not None and goaway.error_code == NO_ERROR
    assert h.closing()


def test_no_idle_timeout_while_a_stream_is_open_then_it_counts_from_the_end() -> None:
    h = H2Harness(ProtocolSettings(keep_alive_timeout_s=5.0), now=0.0)
    _, cycle = get(h, now=1.0)
    h.timer(20.0)
    assert h.goaway() is None and not h.closing()
    h.respond(cycle, body=b"ok", now=20.0)
    h.app_finished(cycle, now=20.0)
    h.timer(24.9)
    assert h.goaway() is None
    h.timer(25.0)
    assert h.goaway() is not None and h.closing()


def test_client_goaway_lets_the_streams_in_flight_finish_then_closes() -> None:
    h = H2Harness()
    stream_id, cycle = get(h, "/in-flight")
    h.client.close_connection()
    h.feed(h.client.data_to_send())
    h.client_live = False  # h2 takes nothing after its own GOAWAY: the frames are read raw
    assert not h.closing()
    h.respond(cycle, body=b"done")
    assert h.response(stream_id).body == b"done" and h.response(stream_id).ended
    h.app_finished(cycle)
    assert h.closing()


def test_a_protocol_error_under_tls_closes_without_half_close() -> None:
    h = H2Harness(scheme="https", alpn="h2", tls={"server_cert": None})
    h.raw(frame(DATA, 0, 0, b"x"))
    assert h.goaway() is not None
    assert h.of_type(CloseConnection) and not h.of_type(SendEOF)


def test_pings_are_answered() -> None:
    h = H2Harness()
    h.client.ping(b"12345678")
    h.exchange()
    acks = [f for f in h.frames if f.kind == 0x6 and f.flags & 0x1]
    assert [f.payload for f in acks] == [b"12345678"]


# ================================================================ h2c upgrade (RFC 7540 §3.2)


def upgrade_request(token: bytes, body: bytes = b"") -> bytes:
    headers = [
        ("Host", "example.com"),
        ("Connection", "Upgrade, HTTP2-Settings"),
        ("Upgrade", "h2c"),
        ("HTTP2-Settings", token.decode()),
    ]
    if body:
        headers.append(("Content-Length", str(len(body))))
    return request("GET" if not body else "POST", "/up", headers, body)


def h2c_harness(settings: ProtocolSettings | None = None) -> tuple[H2Harness, bytes]:
    """A harness whose h2 client asked for an upgrade: the HTTP2-Settings value, with the
    client's preface held back until the server agrees."""
    h = H2Harness(settings, connect=False)
    token = h.client.initiate_upgrade_connection()
    assert token is not None
    return h, token


def test_h2c_upgrade_answers_101_then_stream_1_over_h2() -> None:
    h, token = h2c_harness()
    h.feed(upgrade_request(token))
    assert h.sent.startswith(b"HTTP/1.1 101 ")
    head_end = h.sent.index(b"\r\n\r\n") + 4
    client = h11.Connection(h11.CLIENT)
    upgrade = [("host", "x"), ("connection", "upgrade"), ("upgrade", "h2c")]
    client.send(h11.Request(method="GET", target="/", headers=upgrade))
    client.send(h11.EndOfMessage())
    client.receive_data(h.sent[:head_end])
    informational = client.next_event()
    assert isinstance(informational, h11.InformationalResponse)
    assert informational.status_code == 101
    assert (b"upgrade", b"h2c") in [(k.lower(), v.lower()) for k, v in informational.headers]
    h.skip_http11(head_end)
    h.exchange()
    assert h.protocol.protocol == "h2"
    [start_app] = h.start_apps()
    assert start_app.scope["path"] == "/up"
    assert h.read_request(start_app.cycle) == [
        {"type": "http.request", "body": b"", "more_body": False}
    ]
    h.respond(start_app.cycle, body=b"over h2")
    response = h.response(1)
    assert response.status == 200 and response.body == b"over h2" and response.ended
    assert h.terminated() is None
    # The connection goes on as HTTP/2.
    stream_id, cycle = get(h, "/next")
    assert stream_id == 3
    h.respond(cycle, body=b"next")
    assert h.response(3).body == b"next"


def test_h2c_upgrade_with_a_body_is_ignored_and_served_as_http11() -> None:
    h, token = h2c_harness()
    h.client_live = False  # the client never sees a 101, so never speaks HTTP/2
    h.feed(upgrade_request(token, body=b"payload"))
    assert not h.sent.startswith(b"HTTP/1.1 101")
    assert h.scope()["http_version"] == "1.1"
    assert b"".join(m["body"] for m in h.read_request(h.cycle())) == b"payload"
    h.respond(h.cycle(), body=b"one")
    assert parse_response(h.take_sent(), "POST", eof=False).body == b"one"


def test_h2c_upgrade_is_ignored_with_http2_off() -> None:
    h, token = h2c_harness(ProtocolSettings(http2=False))
    h.client_live = False
    h.feed(upgrade_request(token))
    assert h.scope()["http_version"] == "1.1"
    h.respond(h.cycle(), body=b"one")
    assert parse_response(h.take_sent(), eof=False).status == 200


def test_h2c_upgrade_with_invalid_settings_values_ends_in_goaway() -> None:
    # RFC 7540 §3.2.1: the HTTP2-Settings payload is a SETTINGS frame's, and RFC 9113 §6.5.2
    # makes SETTINGS_ENABLE_PUSH other than 0 or 1 a connection error of type PROTOCOL_ERROR.
    # The 101 is out: the server answers in HTTP/2, with a GOAWAY, and never raises.
    h, _ = h2c_harness()
    h.client_live = False
    bad = base64.urlsafe_b64encode(b"\x00\x02\x00\x00\x00\x02").rstrip(b"=")
    h.feed(upgrade_request(bad))
    assert h.sent.startswith(b"HTTP/1.1 101 ")
    h.skip_http11(h.sent.index(b"\r\n\r\n") + 4)
    goaway = h.goaway()
    assert goaway is not None and goaway.error_code == PROTOCOL_ERROR
    assert not h.start_apps()
    assert h.closing()


def test_proxy_headers_from_a_trusted_peer_apply_as_on_http11() -> None:
    # The same rule as HTTP/1.1 (core/proxy.py): X-Forwarded-For and X-Forwarded-Proto from a
    # trusted peer set the scope's client and scheme; from any other peer they are ignored.
    trusted = ProtocolSettings(trusted_proxies=TrustedHosts(CLIENT[0]))
    forwarded = [(b"x-forwarded-for", b"203.0.113.9"), (b"x-forwarded-proto", b"https")]
    h = H2Harness(trusted)
    _, cycle = get(h, "/via-proxy", forwarded)
    assert cycle.scope["client"] == ("203.0.113.9", 0) and cycle.scope["scheme"] == "https"
    h = H2Harness(ProtocolSettings(trusted_proxies=TrustedHosts("10.9.9.9")))
    _, cycle = get(h, "/via-proxy", forwarded)
    assert cycle.scope["client"] == CLIENT and cycle.scope["scheme"] == "http"
