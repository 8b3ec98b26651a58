"""The HTTP/2 core where a client, or an app, pushes at its edges: one behaviour per test.

Each test drives a ``ServerProtocol`` through ``H2Harness`` (an h2 client, or frames built by
hand where the client library will not send them) on a fake clock: time only moves when a
test passes ``now``. The assertions are on the frames a client reads, on the ASGI messages and
on what the core holds for the connection.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest

from sansio_asgi.core import ASGIProtocolError, ClientDisconnected, ProtocolSettings

from .h2_helpers import (
    CANCEL,
    DATA,
    ENABLE_PUSH,
    ENHANCE_YOUR_CALM,
    GOAWAY,
    HEADERS,
    INITIAL_WINDOW_SIZE,
    INTERNAL_ERROR,
    MAX_CONCURRENT_STREAMS,
    NO_ERROR,
    PREFACE,
    PROTOCOL_ERROR,
    PUSH_PROMISE,
    REFUSED_STREAM,
    REQUEST,
    RST_STREAM,
    SETTINGS,
    WS_CONNECT,
    H2Harness,
    RawClient,
    frame,
    settings_frame,
    window_update_frame,
)
from .helpers import Harness, parse_response, request
from .ws_helpers import client_frame

KiB = 1024
WS_PING = 0x9
PLAIN_CONNECT = [(b":method", b"CONNECT"), (b":authority", b"example.com:443")]


def start(h: Harness, cycle: Any, status: int = 200, headers: Any = (), **extra: Any) -> None:
    message = {"type": "http.response.start", "status": status, "headers": list(headers)}
    h.message_from_app(cycle, {**message, **extra})


def send(h: Harness, cycle: Any, kind: str, **fields: Any) -> None:
    h.message_from_app(cycle, {"type": f"http.response.{kind}", **fields})


def ws_accepted(h: H2Harness) -> tuple[int, Any]:
    """A WebSocket over HTTP/2 (RFC 8441) the app accepted: its stream id and its cycle."""
    stream_id = h.client.get_next_available_stream_id()
    h.client.send_headers(stream_id, WS_CONNECT, end_stream=False)
    h.exchange()
    cycle = h.cycle()
    assert h.message_for_app(cycle) == {"type": "websocket.connect"}
    h.message_from_app(cycle, {"type": "websocket.accept"})
    return stream_id, cycle


def raw_connection(
    settings: ProtocolSettings, *, open_windows: bool = True
) -> tuple[H2Harness, RawClient]:
    """A hand-driven client past the preface, with the server's SETTINGS acknowledged; with
    ``open_windows`` its windows are as large as they go, so that no response waits on flow
    control."""
    h = H2Harness(settings, connect=False)
    h.client_live = False
    client = RawClient()
    if open_windows:
        start = client.start({INITIAL_WINDOW_SIZE: 2**31 - 1})
        h.raw(start + window_update_frame(0, 2**31 - 1 - 65535))
    else:
        h.raw(client.start())
    h.raw(settings_frame(ack=True))
    return h, client


def feed_until_goaway(h: H2Harness, pieces: list[bytes], now: float = 1.0) -> int:
    """Feed ``pieces`` one read each until the server sends a GOAWAY; how many were fed."""
    for count, piece in enumerate(pieces, 1):
        h.raw(piece, now)
        if h.goaway() is not None:
            return count
    return len(pieces)


def feed_until_calm(h: H2Harness, pieces: list[bytes], now: float = 1.0) -> int:
    """Feed ``pieces`` one read each until the server says ENHANCE_YOUR_CALM (a draining
    server has sent its GOAWAY already); how many were fed."""
    for count, piece in enumerate(pieces, 1):
        h.raw(piece, now)
        if calm(h):
            return count
    return len(pieces)


def calm(h: H2Harness) -> bool:
    """The server said ENHANCE_YOUR_CALM and asked the driver to end the connection."""
    return any(g.error_code == ENHANCE_YOUR_CALM for g in h.frames_of(GOAWAY)) and h.closing()


# ================================================================ the client's GOAWAY


def test_a_client_goaway_with_an_error_ends_websocket_and_http_streams_without_raising() -> None:
    # RFC 9113 §6.8: "The GOAWAY frame ... is used to initiate shutdown of a connection or to
    # signal serious error conditions": with an error code, the connection and every stream on
    # it end. The driver contract: receive_data "never raise[s] on bad input".
    h = H2Harness(client_settings={INITIAL_WINDOW_SIZE: 0}, auto_ack=False)
    ws_id, ws_cycle = ws_accepted(h)
    h.message_from_app(ws_cycle, {"type": "websocket.send", "text": "queued"})
    http_id = h.request(b"GET", b"/slow")
    http_cycle = h.cycle_for("/slow")
    start(h, http_cycle)
    send(h, http_cycle, "body", body=b"x" * 100, more_body=True)
    assert not h.frames_of(DATA, http_id) and not h.frames_of(DATA, ws_id), "windows shut"
    h.client_live = False
    h.raw(frame(GOAWAY, 0, 0, struct.pack(">II", http_id, INTERNAL_ERROR)), now=1.0)
    assert h.closing(), "no SendEOF or CloseConnection"
    message = h.message_for_app(ws_cycle)
    assert message is not None and message["type"] == "websocket.disconnect"
    assert h.message_for_app(http_cycle) == {"type": "http.disconnect"}
    with pytest.raises(ClientDisconnected):
        send(h, http_cycle, "body", body=b"more", more_body=True)
    h.app_finished(ws_cycle, now=2.0)
    h.app_finished(http_cycle, now=2.0)
    assert h.protocol.is_idle


# ================================================================ flow control and time


def test_a_download_paced_by_its_reader_is_never_reset_but_a_shut_window_is() -> None:
    # RFC 9113 §5.2.1: "This document does not stipulate how a receiver decides when to send
    # this frame or the value that it sends": a reader may pace a download by its window. The
    # reset is for "A response whose bytes wait on the peer's window, with none sent for this
    # long" (settings.H2_WINDOW_TIMEOUT_S).
    settings = ProtocolSettings(h2_window_timeout_s=5.0, write_high_water_bytes=64 * KiB)
    h = H2Harness(settings, auto_ack=False)
    stream_id = h.request(b"GET", b"/big", now=0.0)
    cycle = h.cycle_for("/big")
    start(h, cycle)
    t = 0.0
    for _ in range(30):  # 15 s at 32 KiB/s: three times the window timeout
        t += 0.5
        while h.send_ready(cycle):  # the app keeps the stream's buffer topped up
            send(h, cycle, "body", body=b"x" * (16 * KiB), more_body=True, now=t)
        h.client.increment_flow_control_window(16 * KiB, stream_id)
        h.client.increment_flow_control_window(16 * KiB)
        h.exchange(now=t)
        h.timer(t)
        assert h.response(stream_id).reset is None, f"reset at t={t} with data flowing"
    delivered = len(h.response(stream_id).body)
    assert delivered >= 30 * 16 * KiB
    # The reader stops: the window stays shut from the last bytes that went out.
    h.timer(t + 4.9)
    assert h.response(stream_id).reset is None
    deadline = h.protocol.next_deadline()
    assert deadline is not None and deadline <= t + 5.0 + 1e-6
    h.timer(t + 5.0)
    assert h.response(stream_id).reset == CANCEL
    assert len(h.response(stream_id).body) == delivered


def test_websocket_pongs_to_a_client_with_a_shut_window_stay_bounded() -> None:
    # The resource budget (ARCHITECTURE.md): "Above a limit the core pauses reading or closes
    # with the protocol's code; it never grows without bound, whatever the peer does". RFC 9113
    # §5.2.1: "Receivers advertise how many octets they are prepared to receive on a stream":
    # the stream's window is how the server stops a client whose pongs it cannot send.
    settings = ProtocolSettings(write_high_water_bytes=16 * KiB)
    h = H2Harness(settings, client_settings={INITIAL_WINDOW_SIZE: 0}, auto_ack=False)
    stream_id, cycle = ws_accepted(h)
    pings = client_frame(WS_PING, b"p" * 125) * 100  # 13,100 bytes of DATA
    sent = 0
    t = 0.0
    for _ in range(300):
        if h.client.local_flow_control_window(stream_id) < len(pings):
            break  # the server stopped granting the stream's window
        t += 0.05
        h.client.send_data(stream_id, pings)
        h.exchange(now=t)
        h.timer(t)
        sent += len(pings)
    # What the client may send unasked (the stream's receive window) is one read's worth: the
    # pongs to it may pass the high-water mark, no more.
    held = h.protocol._handler._streams[stream_id].pending_bytes  # type: ignore[union-attr]
    limit = settings.write_high_water_bytes + settings.h2_initial_window_bytes
    assert held <= limit, f"{held} bytes of pongs held"
    assert h.client.local_flow_control_window(stream_id) < len(pings), "the window stays open"
    assert sent <= limit + settings.h2_initial_window_bytes, f"{sent} bytes of pings taken"
    assert not h.send_ready(cycle)


# ================================================================ refused streams


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (PLAIN_CONNECT, 501),
        ([*REQUEST[:3], (b":path", b"/"), (b"x-big", b"a" * 5000)], 431),
        ([*REQUEST[:3], (b":path", b"no-slash")], 400),
        ([*WS_CONNECT[:5], (b"sec-websocket-version", b"8")], 426),
    ],
    ids=["connect-501", "431", "400", "ws-426"],
)
def test_a_refused_stream_the_client_left_open_is_reset_with_no_error(
    headers: list[tuple[bytes, bytes]], status: int
) -> None:
    # RFC 9113 §8.1: "A server can send a complete response prior to the client sending an
    # entire request ... a server MAY request that the client abort transmission of a request
    # without error by sending a RST_STREAM with an error code of NO_ERROR after sending a
    # complete response"; §5.1.2: "Streams that are in the "open" state or in either of the
    # "half-closed" states count toward the maximum number of streams".
    h, client = raw_connection(ProtocolSettings(h2_max_header_list_bytes=4096))
    h.raw(client.headers(1, headers, end_stream=False))
    assert not h.start_apps()
    frames = [f for f in h.frames if f.stream_id == 1]
    assert frames[0].kind == HEADERS and frames[0].status == status
    assert any(f.flags & 0x1 for f in frames if f.kind in (HEADERS, DATA)), "no END_STREAM"
    assert [(f.kind, f.error_code) for f in frames if f.kind == RST_STREAM] == [
        (RST_STREAM, NO_ERROR)
    ]
    assert h.protocol._handler._conn.open_inbound_streams == 0  # type: ignore[union-attr]
    assert h.goaway() is None and not h.closing()


def test_a_flood_of_refused_streams_holds_a_bounded_number_and_ends_in_calm() -> None:
    # RFC 9113 §10.5: "An endpoint MAY treat activity that is suspicious as a connection error
    # (Section 5.4.1) of type ENHANCE_YOUR_CALM"; each refusal costs the server a response.
    h, client = raw_connection(ProtocolSettings(h2_max_control_frames=10**6))
    for first in range(1, 4001, 200):
        h.raw(
            b"".join(
                client.headers(i, PLAIN_CONNECT, end_stream=False)
                for i in range(first, first + 200, 2)
            )
        )
        held = h.protocol._handler._conn.open_inbound_streams  # type: ignore[union-attr]
        assert held <= 100, f"h2 holds {held} open streams"
    assert not h.start_apps()
    assert h.goaway() is None, "under a large budget, refusals alone end nothing"
    h, client = raw_connection(ProtocolSettings(h2_max_control_frames=50))
    pieces = [client.headers(i, PLAIN_CONNECT, end_stream=False) for i in range(1, 2001, 2)]
    count = feed_until_goaway(h, pieces)
    assert count <= 52, f"{count} refused streams before a GOAWAY"
    assert calm(h)


def test_the_request_body_clock_starts_when_the_app_asks_for_the_body() -> None:
    # settings.REQUEST_BODY_TIMEOUT_S: "A request body that stops arriving for this long
    # (while the server is reading)" is cut off; the server reads from the app's receive(),
    # not from when the request came, so the client gets the whole period from then.
    h = H2Harness(ProtocolSettings(request_body_timeout_s=30.0), now=0.0)
    stream_id = h.request(b"POST", b"/upload", end_stream=False, now=0.0)
    cycle = h.cycle_for("/upload")
    # The app works for 40 s before its first receive().
    assert h.message_for_app(cycle, now=40.0) is None
    h.timer(41.0)
    assert h.response(stream_id).reset is None, "the client had 1 s, not 30"
    h.timer(69.9)
    assert h.response(stream_id).reset is None
    deadline = h.protocol.next_deadline()
    assert deadline is not None and 70.0 <= deadline <= 70.5
    h.timer(deadline)
    assert h.response(stream_id).reset == CANCEL


# ================================================================ the app's messages


@pytest.mark.parametrize(
    "headers",
    [
        [(b"connection", b"close")],
        [(b":path", b"/evil")],
        [(b"x-a", b"1\r\ninjected: yes")],
        [(b"x-a", b"1\ninjected: yes")],
    ],
    ids=["connection-specific", "pseudo-header", "crlf", "lf"],
)
def test_a_push_with_malformed_fields_is_refused_and_nothing_goes_out(
    headers: list[tuple[bytes, bytes]],
) -> None:
    # RFC 9113 §8.2.2: "An endpoint MUST NOT generate an HTTP/2 message containing
    # connection-specific header fields"; §8.3: "Pseudo-header fields are not HTTP header
    # fields. Endpoints MUST NOT generate pseudo-header fields other than those defined in
    # this document"; §8.2.1: "a field value MUST NOT contain ... line feed (ASCII LF), or
    # carriage return (ASCII CR)".
    h = H2Harness(client_settings={ENABLE_PUSH: 1})
    stream_id = h.request(b"GET", b"/")
    cycle = h.cycle_for("/")
    start(h, cycle)
    with pytest.raises(ASGIProtocolError):
        send(h, cycle, "push", path="/a.css", headers=headers)
    assert h.frames_of(PUSH_PROMISE) == []
    assert len(h.start_apps()) == 1
    send(h, cycle, "body", body=b"page")
    assert h.response(stream_id).body == b"page" and h.response(stream_id).ended
    assert h.terminated() is None, "the client refused what the server sent"
    other = h.request(b"GET", b"/next")
    h.respond(h.cycle_for("/next"), body=b"ok")
    assert h.response(other).body == b"ok"


@pytest.mark.parametrize("name", [b"keep-alive", b"connection", b"upgrade", b"proxy-connection"])
@pytest.mark.parametrize("http_version", ["1.1", "2"])
def test_connection_specific_trailers_are_refused(name: bytes, http_version: str) -> None:
    # RFC 9113 §8.2.2: "An endpoint MUST NOT generate an HTTP/2 message containing
    # connection-specific header fields"; RFC 9110 §6.5.1: "Many fields cannot be processed
    # outside the header section because their evaluation is necessary prior to receiving the
    # content, such as those that describe message framing, routing, authentication, request
    # modifiers, response controls, or content format".
    value = b"h2c" if name == b"upgrade" else b"1"
    if http_version == "2":
        h2 = H2Harness()
        stream_id = h2.request(b"GET", b"/", [(b"te", b"trailers")])
        cycle = h2.cycle_for("/")
        start(h2, cycle, trailers=True)
        send(h2, cycle, "body", body=b"x")
        with pytest.raises(ASGIProtocolError):
            send(h2, cycle, "trailers", headers=[(b"x-ok", b"1"), (name, value)])
        assert h2.terminated() is None
        trailers = h2.response(stream_id).trailers or []
        assert name not in [k for k, _ in trailers]
        return
    h = Harness()
    h.feed(request(headers=(("Host", "example.com"), ("TE", "trailers"))))
    cycle = h.cycle()
    start(h, cycle, trailers=True)
    send(h, cycle, "body", body=b"x")
    with pytest.raises(ASGIProtocolError):
        send(h, cycle, "trailers", headers=[(b"x-ok", b"1"), (name, value)])
    assert name not in h.sent.lower().split(b"\r\n0\r\n")[-1]


def test_expect_100_continue_is_answered_once_when_the_app_waits_for_the_body() -> None:
    # RFC 9110 §10.1.1: "An origin server MUST, upon receiving an HTTP/1.1 (or later) request
    # line and a complete header section that contains a 100-continue expectation and
    # indicates a request message body will follow, either send an immediate response with a
    # final status code ... or send an immediate 100 (Continue) response"; "A server MAY omit
    # sending a 100 (Continue) response if it has already received some or all of the content
    # for the corresponding request".
    expect = [(b"expect", b"100-continue"), (b"content-length", b"5")]
    h = H2Harness()
    stream_id = h.request(b"POST", b"/up", expect, end_stream=False)
    cycle = h.cycle_for("/up")
    assert h.response(stream_id).informational == [], "no 100 before the app asks"
    assert h.message_for_app(cycle) is None
    assert h.response(stream_id).informational == [[(b":status", b"100")]]
    assert h.message_for_app(cycle) is None
    h.send_data(stream_id, b"hello", end_stream=True)
    assert h.read_request(cycle)[-1]["more_body"] is False
    h.respond(cycle, body=b"done")
    response = h.response(stream_id)
    assert len(response.informational) == 1 and response.status == 200
    assert h.terminated() is None
    # The body is already here: no 100, neither while reading it nor when waiting for more.
    early = h.request(b"POST", b"/early", expect, body=b"he", end_stream=False)
    cycle = h.cycle_for("/early")
    assert h.message_for_app(cycle) == {"type": "http.request", "body": b"he", "more_body": True}
    assert h.message_for_app(cycle) is None
    assert h.response(early).informational == []


def test_push_follows_the_clients_limit_on_pushed_streams() -> None:
    # RFC 9113 §8.4: "A client can use the SETTINGS_MAX_CONCURRENT_STREAMS setting to limit
    # the number of responses that can be concurrently pushed by a server. Advertising a
    # SETTINGS_MAX_CONCURRENT_STREAMS value of zero prevents the server from opening the
    # streams necessary to push responses."
    h = H2Harness(client_settings={ENABLE_PUSH: 1, MAX_CONCURRENT_STREAMS: 0})
    h.request(b"GET", b"/")
    assert "http.response.push" not in h.scope_for("/")["extensions"]
    h = H2Harness(client_settings={ENABLE_PUSH: 1, MAX_CONCURRENT_STREAMS: 1})
    stream_id = h.request(b"GET", b"/")
    cycle = h.cycle_for("/")
    assert "http.response.push" in h.scope_for("/")["extensions"]
    start(h, cycle)
    send(h, cycle, "push", path="/a.css", headers=[])
    pushed = h.cycle_for("/a.css")
    start(h, pushed)
    send(h, pushed, "body", body=b"a {}", more_body=True)  # the pushed stream is open
    send(h, cycle, "push", path="/b.css", headers=[])  # ignored, as the spec allows
    assert len(h.response(stream_id).pushed) == 1
    assert len(h.frames_of(PUSH_PROMISE)) == 1
    assert len(h.start_apps()) == 2
    send(h, pushed, "body", body=b"")
    send(h, cycle, "body", body=b"page")
    assert h.response(stream_id).body == b"page"
    assert h.terminated() is None


def test_a_pushed_streams_scope_does_not_offer_push() -> None:
    # RFC 9113 §8.4: "PUSH_PROMISE frames MUST only be sent on a peer-initiated stream".
    h = H2Harness(client_settings={ENABLE_PUSH: 1})
    h.request(b"GET", b"/")
    cycle = h.cycle_for("/")
    assert "http.response.push" in h.scope_for("/")["extensions"]
    start(h, cycle)
    send(h, cycle, "push", path="/a.css", headers=[])
    assert "http.response.push" not in h.scope_for("/a.css")["extensions"]


# ================================================================ malformed requests


@pytest.mark.parametrize(
    ("method", "path", "extra"),
    [
        (b"GET", b"/a b", []),
        (b"GET", b"/a\x01b", []),
        (b"GET", b"/caf\xc3\xa9", []),
        (b"GET", b"/\xff\xfe?a=\xff", []),
        (b"G(T", b"/", []),
        (b"G\xffT", b"/", []),
        (b"GET", b"/", [(b"x-a", b"a\x01b")]),
        (b"GET", b"/", [(b"x-a", b"a\x7fb")]),
    ],
    ids=["space", "ctl", "utf8", "high-bytes", "non-token", "method-high", "value-01", "del"],
)
def test_a_malformed_request_is_refused_on_its_stream_and_never_reaches_the_app(
    method: bytes, path: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    # RFC 9113 §8.1.1: "Malformed requests or responses that are detected MUST be treated as a
    # stream error (Section 5.4.2) of type PROTOCOL_ERROR"; §8.3.1: ":path ... the
    # absolute-path production and optionally a '?' character followed by the query
    # production"; RFC 9110 §9.1: "method = token"; §5.5: "field-value = *field-content".
    h = H2Harness()
    headers = [(b":method", method), (b":scheme", b"http"), (b":authority", b"example.com")]
    h.client.send_headers(1, [*headers, (b":path", path), *extra], end_stream=True)
    h.exchange()
    assert not h.start_apps()
    response = h.response(1)
    assert response.status == 400 or response.reset == PROTOCOL_ERROR, response
    assert h.goaway() is None and h.terminated() is None
    other = h.request(b"GET", b"/next")
    h.respond(h.cycle_for("/next"), body=b"ok")
    assert h.response(other).body == b"ok"


# ================================================================ the connection's end


def test_after_the_clients_eof_finished_apps_release_every_stream() -> None:
    # ASGI HTTP spec, disconnect: "Sent to the application if receive is called after a
    # response has been sent or after the HTTP connection has been closed"; the core holds
    # nothing for a stream whose app is done (ARCHITECTURE, resource budget).
    h = H2Harness()
    h.request(b"GET", b"/a")
    h.request(b"POST", b"/b", body=b"part", end_stream=False)
    a, b = h.cycle_for("/a"), h.cycle_for("/b")
    start(h, a)
    h.eof(now=1.0)
    assert h.message_for_app(a) == {"type": "http.disconnect"}
    messages = [*h.read_request(b), h.message_for_app(b)]
    assert messages[-1] == {"type": "http.disconnect"}
    h.app_finished(a, now=2.0)
    h.app_finished(b, now=2.0)
    handler = h.protocol._handler
    assert h.protocol.is_idle
    assert not handler._streams and not handler._by_cycle  # type: ignore[union-attr]


def test_window_updates_that_move_nothing_and_refusals_while_draining_are_a_flood() -> None:
    # RFC 9113 §10.5: "WINDOW_UPDATE or PRIORITY frames can be abused to cause an unnecessary
    # waste of resources ... An endpoint MAY treat activity that is suspicious as a connection
    # error (Section 5.4.1) of type ENHANCE_YOUR_CALM"; a refused stream is such work too.
    h, _ = raw_connection(ProtocolSettings(h2_max_control_frames=50), open_windows=False)
    count = feed_until_goaway(h, [window_update_frame(0, 1024)] * 1000)
    assert count <= 52, f"{count} WINDOW_UPDATEs before a GOAWAY"
    assert calm(h)
    # Draining: a stream in flight keeps the connection open, each new one is refused.
    h, client = raw_connection(ProtocolSettings(h2_max_control_frames=50))
    h.raw(client.headers(1), now=1.0)
    h.protocol.shutdown(1.0)
    h.exchange()
    assert h.goaway() is not None and not calm(h)
    refused = feed_until_calm(h, [client.headers(i) for i in range(3, 2001, 2)])
    assert calm(h), "refusals while draining never ended the connection"
    assert refused <= 52, f"{refused} streams refused before ENHANCE_YOUR_CALM"
    assert any(f.error_code == REFUSED_STREAM for f in h.frames_of(RST_STREAM))
    assert len(h.start_apps()) == 1


def test_h2c_upgrade_under_tls_is_served_as_http11() -> None:
    # RFC 7540 §3.1: "The "h2c" string is reserved from the ALPN identifier space but describes
    # a protocol that does not use TLS."
    h = H2Harness(scheme="https", tls={"server_cert": None}, alpn="http/1.1", connect=False)
    h.feed(
        b"GET /tls HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
    )
    assert not h.sent.startswith(b"HTTP/1.1 101")
    assert h.protocol.protocol == "http/1.1"
    assert h.scope()["http_version"] == "1.1" and h.scope()["scheme"] == "https"
    h.respond(h.cycle(), body=b"tls")
    response = parse_response(h.take_sent(), eof=False)
    assert (response.status, response.body) == (200, b"tls")


def test_a_preface_after_shutdown_gets_goaway_and_no_app() -> None:
    # RFC 9113 §6.8: "A server that is attempting to gracefully shut down a connection SHOULD
    # send an initial GOAWAY frame"; it was stopping before the client chose HTTP/2.
    h = H2Harness(connect=False)
    h.client_live = False
    client = RawClient()
    h.protocol.shutdown(0.0)
    h.exchange()
    h.raw(PREFACE + settings_frame(), now=0.1)
    assert h.protocol.protocol == "h2"
    assert [f for f in h.frames if f.kind == SETTINGS], "the preface was not answered"
    assert h.goaway() is not None, "a stopping server accepted an HTTP/2 connection"
    assert h.goaway().error_code == NO_ERROR  # type: ignore[union-attr]
    h.raw(settings_frame(ack=True) + client.headers(1), now=0.2)
    assert not h.start_apps()
