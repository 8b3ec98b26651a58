"""The HTTP/1.1 core, one behaviour per test, asserting on bytes, messages and events."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sansio_asgi.core import (
    ASGIProtocolError,
    ClientDisconnected,
    ContentLengthExceeded,
    ProtocolSettings,
    http11,
)
from sansio_asgi.core.events import (
    AppMisbehaved,
    CloseConnection,
    PauseReading,
    RequestRejected,
    ResponseCompleted,
    ResumeReading,
    SendEOF,
    StartApp,
    WakeApp,
)
from sansio_asgi.core.http11 import describe_h11_error

from .helpers import Harness, parse_response, parse_responses, request

GET = request()
CHUNKED = (("Host", "example.com"), ("Transfer-Encoding", "chunked"))
DATE_0 = b"Thu, 01 Jan 1970 00:00:00 GMT"


def post(body: bytes, *extra: tuple[str, str]) -> bytes:
    headers = (("Host", "example.com"), ("Content-Length", str(len(body))), *extra)
    return request("POST", "/upload", headers, body)


def kinds(events: Sequence[object]) -> list[str]:
    return [type(event).__name__ for event in events]


# ---------------------------------------------------------------- request bodies


def test_request_without_body_is_one_empty_final_message() -> None:
    h = Harness()
    h.feed(GET)
    assert h.read_request(h.cycle()) == [{"type": "http.request", "body": b"", "more_body": False}]


def test_content_length_body_reaches_app_as_bytes() -> None:
    h = Harness()
    h.feed(post(b"hello"))
    [message] = h.read_request(h.cycle())
    assert message == {"type": "http.request", "body": b"hello", "more_body": False}
    assert type(message["body"]) is bytes


def test_content_length_body_in_pieces_sets_more_body() -> None:
    h = Harness()
    head = post(b"hello world")[: -len(b"hello world")]
    h.feed(head + b"hello")
    cycle = h.cycle()
    assert h.message_for_app(cycle) == {"type": "http.request", "body": b"hello", "more_body": True}
    assert h.message_for_app(cycle) is None
    h.feed(b" wor")
    h.feed(b"ld")
    message = h.message_for_app(cycle)
    assert message == {"type": "http.request", "body": b" world", "more_body": False}
    assert type(message["body"]) is bytes


def test_chunked_body_is_dechunked() -> None:
    h = Harness()
    h.feed(request("POST", "/", CHUNKED, b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n"))
    [message] = h.read_request(h.cycle())
    assert message == {"type": "http.request", "body": b"hello world", "more_body": False}
    assert type(message["body"]) is bytes


def test_chunked_body_chunk_by_chunk() -> None:
    h = Harness()
    h.feed(request("POST", "/", CHUNKED, b"5\r\nhello\r\n"))
    cycle = h.cycle()
    assert h.message_for_app(cycle) == {"type": "http.request", "body": b"hello", "more_body": True}
    h.feed(b"6\r\n world\r\n")
    assert h.message_for_app(cycle) == {
        "type": "http.request",
        "body": b" world",
        "more_body": True,
    }
    h.feed(b"0\r\n\r\n")
    assert h.message_for_app(cycle) == {"type": "http.request", "body": b"", "more_body": False}


def test_body_fed_byte_by_byte_is_bytes() -> None:
    h = Harness()
    h.feed_pieces(post(b"abcdef"), 1)
    [message] = h.read_request(h.cycle())
    assert message == {"type": "http.request", "body": b"abcdef", "more_body": False}
    assert type(message["body"]) is bytes


def test_body_above_high_water_pauses_reading_and_app_read_resumes() -> None:
    h = Harness(ProtocolSettings(body_buffer_high_water_bytes=100))
    body = b"x" * 300
    h.feed(post(body)[: -len(body)] + body[:100])
    cycle = h.cycle()
    assert kinds(h.take_events()) == ["StartApp"]
    h.feed(body[100:101])
    assert h.take_events() == [PauseReading()]
    message = h.message_for_app(cycle)
    assert message == {"type": "http.request", "body": body[:101], "more_body": True}
    assert h.take_events() == [ResumeReading()]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_large_body_in_small_pieces_keeps_buffer_bounded(framing: str) -> None:
    """A driver that honours Pause/ResumeReading: unread body never exceeds high water + 1 feed."""
    high_water, piece, total = 1000, 64, 20_000
    h = Harness(ProtocolSettings(body_buffer_high_water_bytes=high_water))
    payload = bytes(i % 251 for i in range(total))
    # payload_at[n]: how many payload bytes the first n bytes of the wire carry.
    if framing == "chunked":
        head = request("POST", "/", CHUNKED)
        wire, payload_at = b"", [0]
        for i in range(0, total, 100):
            size_line = b"%x\r\n" % len(payload[i : i + 100])
            wire += size_line + payload[i : i + 100] + b"\r\n"
            payload_at += [i] * len(size_line) + list(range(i + 1, i + 101)) + [i + 100] * 2
        wire += b"0\r\n\r\n"
        payload_at += [total] * 5
    else:
        head = post(payload)[:-total]
        wire, payload_at = payload, list(range(total + 1))
    assert len(payload_at) == len(wire) + 1
    h.feed(head)
    cycle = h.cycle()
    received = b""
    fed = 0
    paused = False
    done = False
    while not done:
        if not paused and fed < len(wire):
            h.feed(wire[fed : fed + piece])
            fed = min(fed + piece, len(wire))
        else:
            message = h.message_for_app(cycle)
            assert message is not None, "the core paused reading but has nothing for the app"
            received += message["body"]
            done = not message["more_body"]
        for event in h.take_events():
            if isinstance(event, PauseReading):
                paused = True
            elif isinstance(event, ResumeReading):
                paused = False
        assert payload_at[fed] - len(received) <= high_water + piece
    assert received == payload
    assert h.of_type(PauseReading), "a 20 kB body against a 1 kB high water never paused"


# ---------------------------------------------------------------- keep-alive and pipelining


def test_pipelined_requests_are_answered_in_order() -> None:
    h = Harness()
    h.feed(request("GET", "/first") + request("GET", "/second"))
    assert [s.scope["path"] for s in h.start_apps()] == ["/first"]
    assert kinds(h.take_events()) == ["StartApp", "PauseReading"]
    first = h.cycle()
    h.read_request(first)
    h.start(first, 200, [(b"content-length", b"5")])
    h.body(first, b"fir", more_body=True)
    assert len(h.start_apps()) == 1, "second app started before the first response completed"
    h.body(first, b"st")
    assert kinds(h.take_events()) == ["ResponseCompleted", "ResumeReading", "StartApp"]
    second = h.cycle()
    assert h.scope()["path"] == "/second"
    h.read_request(second)
    h.respond(second, 200, [(b"content-length", b"6")], b"second")
    [r1, r2] = parse_responses(h.sent, ["GET", "GET"], eof=False)
    assert (r1.status, r1.body, r2.status, r2.body) == (200, b"first", 200, b"second")
    assert not h.of_type(SendEOF)


def test_keep_alive_serves_a_second_request_on_the_connection() -> None:
    h = Harness()
    h.feed(GET)
    h.respond(h.cycle(), body=b"one")
    h.feed(request("GET", "/two"))
    assert len(h.start_apps()) == 2
    h.respond(h.cycle(), body=b"two")
    assert [r.body for r in parse_responses(h.sent, ["GET", "GET"], eof=False)] == [b"one", b"two"]


@pytest.mark.parametrize("separately", [False, True], ids=["same-feed", "later-feed"])
def test_request_pipelined_after_connection_close_is_never_answered(separately: bool) -> None:
    h = Harness()
    first = request("GET", "/first", (("Host", "example.com"), ("Connection", "close")))
    second = request("GET", "/second")
    if separately:
        h.feed(first)
        h.feed(second)
    else:
        h.feed(first + second)
    assert len(h.start_apps()) == 1
    assert not h.sent, "the core answered before the app did"
    cycle = h.cycle()
    assert h.read_request(cycle) == [{"type": "http.request", "body": b"", "more_body": False}]
    h.respond(cycle, 200, [(b"content-length", b"2")], b"ok")
    [response] = parse_responses(h.sent, ["GET", "GET"])
    assert (response.status, response.body) == (200, b"ok")
    assert response.get(b"connection") == b"close"
    assert len(h.start_apps()) == 1
    assert h.of_type(SendEOF)


def test_http10_without_keep_alive_closes_after_response() -> None:
    h = Harness()
    h.feed(request("GET", "/", (), version="1.0"))
    cycle = h.cycle()
    h.respond(cycle, 200, [(b"content-length", b"2")], b"ok")
    events = h.take_events()
    assert kinds(events)[-2:] == ["ResponseCompleted", "SendEOF"]
    response = parse_response(h.sent)
    assert (response.status, response.body) == (200, b"ok")
    assert response.get(b"connection") == b"close"


def test_http10_keep_alive_with_content_length_keeps_the_connection() -> None:
    h = Harness()
    h.feed(request("GET", "/one", (("Connection", "Keep-Alive"),), version="1.0"))
    h.respond(h.cycle(), 200, [(b"content-length", b"2")], b"ok")
    first = h.take_sent()
    assert b"connection: keep-alive\r\n" in first.lower()
    assert b"close" not in first.lower()
    assert not h.of_type(SendEOF)
    # The next request on the same connection is served.
    h.feed(request("GET", "/two", (("Connection", "keep-alive"),), version="1.0"))
    assert [a.scope["path"] for a in h.start_apps()] == ["/one", "/two"]
    h.respond(h.cycle(), 200, [(b"content-length", b"3")], b"two")
    assert b"keep-alive" in h.take_sent().lower()
    assert not h.of_type(SendEOF)


def test_http10_keep_alive_without_content_length_closes() -> None:
    """An HTTP/1.0 body without content-length is delimited by the close: keep-alive is off."""
    h = Harness()
    h.feed(request("GET", "/", (("Connection", "keep-alive"),), version="1.0"))
    h.respond(h.cycle(), 200, [], b"streamed")
    sent = h.take_sent()
    head, _, body = sent.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    assert b"keep-alive" not in head.lower()
    assert b"transfer-encoding" not in head.lower()
    assert body == b"streamed"
    assert h.of_type(SendEOF)


def test_keep_alive_timeout_sends_eof_then_closes_after_linger() -> None:
    s = ProtocolSettings(keep_alive_timeout_s=5.0, linger_timeout_s=2.0)
    h = Harness(s, now=100.0)
    h.feed(GET)
    h.respond(h.cycle(), body=b"ok", now=101.0)
    h.take_events()
    assert h.protocol.next_deadline() == 106.0
    h.timer(105.9)
    assert h.take_events() == []
    h.timer(106.0)
    assert h.take_events() == [SendEOF()]
    assert h.protocol.next_deadline() == 108.0
    h.timer(107.9)
    assert h.take_events() == []
    h.timer(108.0)
    assert h.take_events() == [CloseConnection()]
    assert h.protocol.next_deadline() is None


def test_keep_alive_timeout_then_client_eof_closes() -> None:
    h = Harness()
    h.feed(GET)
    h.respond(h.cycle())
    h.take_events()
    h.timer(h.settings.keep_alive_timeout_s)
    assert h.take_events() == [SendEOF()]
    h.eof()
    assert h.take_events() == [CloseConnection()]


# ---------------------------------------------------------------- empty lines before a request
# RFC 9112 §2.2: "a server that is expecting to receive and parse a request-line SHOULD ignore at
# least one empty line (CRLF) received prior to the request-line".

EMPTY_LINES = [b"\r\n", b"\n", b"\r\n\r\n\n", b"\n\r\n" * 50]


@pytest.mark.parametrize("lines", EMPTY_LINES)
@pytest.mark.parametrize("size", [1, 2, None], ids=["bytewise", "pairs", "whole"])
def test_empty_lines_before_the_first_request_are_ignored(lines: bytes, size: int | None) -> None:
    h = Harness()
    data = lines + request("GET", "/a")
    if size is None:
        h.feed(data)
    else:
        h.feed_pieces(data, size)
    assert [start.scope["path"] for start in h.start_apps()] == ["/a"]
    assert h.sent == b""
    h.respond(h.cycle(), body=b"ok")
    assert parse_response(h.sent, eof=False).body == b"ok"
    assert not h.of_type(RequestRejected)


@pytest.mark.parametrize("size", [1, None], ids=["bytewise", "whole"])
def test_empty_lines_between_keep_alive_requests_are_ignored(size: int | None) -> None:
    s = ProtocolSettings(keep_alive_timeout_s=5.0)
    h = Harness(s, now=10.0)
    h.feed(GET)
    h.respond(h.cycle(), body=b"one", now=11.0)
    h.take_events()
    data = b"\r\n\r\n" + request("GET", "/two")
    if size is None:
        h.feed(data[:4])
    else:
        h.feed_pieces(data[:4], size)
    # Still idle: the keep-alive deadline stands, and no head has started.
    assert h.take_events() == []
    assert h.protocol.next_deadline() == 16.0
    assert h.protocol.is_idle
    h.feed(data[4:])
    assert [start.scope["path"] for start in h.start_apps()] == ["/", "/two"]
    h.respond(h.cycle(), body=b"two")
    assert [r.body for r in parse_responses(h.sent, ["GET", "GET"], eof=False)] == [b"one", b"two"]


def test_crlf_after_a_post_body_is_ignored_when_pipelined_with_the_next_request() -> None:
    h = Harness()
    h.feed(post(b"hello") + b"\r\n" + request("GET", "/next"))
    first = h.cycle()
    assert h.read_request(first)[-1]["body"] == b"hello"
    h.respond(first, body=b"one")
    assert [start.scope["path"] for start in h.start_apps()] == ["/upload", "/next"]
    h.respond(h.cycle(), body=b"two")
    responses = parse_responses(h.sent, ["POST", "GET"], eof=False)
    assert [(r.status, r.body) for r in responses] == [(200, b"one"), (200, b"two")]
    assert not h.of_type(RequestRejected) and not h.of_type(SendEOF)


def test_crlf_after_a_post_body_leaves_the_connection_idle() -> None:
    s = ProtocolSettings(keep_alive_timeout_s=5.0)
    h = Harness(s, now=10.0)
    h.feed(post(b"hello") + b"\r\n")
    cycle = h.cycle()
    h.read_request(cycle)
    h.respond(cycle, body=b"one", now=11.0)
    assert parse_response(h.take_sent(), "POST", eof=False).body == b"one"
    assert h.protocol.is_idle
    assert h.protocol.next_deadline() == 16.0  # keep-alive, not the header timeout
    # The CRLF waited in h11's buffer behind the body (reading paused); reading resumed.
    assert len(h.of_type(PauseReading)) == len(h.of_type(ResumeReading)) == 1
    h.timer(16.0)
    assert h.take_sent() == b""  # closed silently, as any idle connection
    assert kinds(h.take_events())[-1] == "SendEOF"
    assert not h.of_type(RequestRejected)


def test_cr_and_lf_of_an_empty_line_split_across_reads_after_a_post() -> None:
    h = Harness()
    h.feed(post(b"hello") + b"\r")
    cycle = h.cycle()
    h.read_request(cycle)
    h.respond(cycle, body=b"one")
    assert h.protocol.is_idle
    h.feed(b"\n")
    h.feed(b"\r")
    h.feed(b"\n" + request("GET", "/next"))
    assert [start.scope["path"] for start in h.start_apps()] == ["/upload", "/next"]
    assert not h.of_type(RequestRejected)


@pytest.mark.parametrize("size", [1, 7, None], ids=["bytewise", "pieces", "whole"])
def test_empty_lines_up_to_max_header_bytes_are_ignored_beyond_get_400(size: int | None) -> None:
    limit = 1024
    at_limit = Harness(ProtocolSettings(max_header_bytes=limit))
    at_limit.feed_pieces(b"\r\n" * (limit // 2), size or limit)
    assert at_limit.sent == b"" and at_limit.protocol.is_idle
    at_limit.feed(request())
    assert len(at_limit.start_apps()) == 1

    h = Harness(ProtocolSettings(max_header_bytes=limit))
    h.feed_pieces(b"\r\n" * (limit // 2) + b"\n" + request(), size or 2 * limit)
    assert_rejected(h, 400)
    body = parse_response(h.sent).body
    assert body == b"Bad Request: too many empty lines before the request line\n"


def test_empty_lines_after_a_response_count_afresh() -> None:
    limit = 1024
    h = Harness(ProtocolSettings(max_header_bytes=limit))
    for path in ("/one", "/two", "/three"):
        h.feed(b"\r\n" * (limit // 2) + request("GET", path))
        h.respond(h.cycle())
    assert [start.scope["path"] for start in h.start_apps()] == ["/one", "/two", "/three"]
    assert not h.of_type(RequestRejected)


@pytest.mark.parametrize("data", [b"\rGET / HTTP/1.1\r\n", b"\r\n\r\r\n", b"\n\r"])
def test_a_bare_cr_before_the_request_line_is_a_bad_request(data: bytes) -> None:
    h = Harness()
    h.feed(data + request())
    assert_rejected(h, 400)


def test_only_empty_lines_on_a_new_connection_close_silently_at_the_header_timeout() -> None:
    h = Harness(ProtocolSettings(header_timeout_s=10.0), now=50.0)
    h.feed(b"\r\n\r\n", now=55.0)
    assert h.protocol.next_deadline() == 60.0
    h.timer(60.0)
    assert h.sent == b""
    assert h.events == [SendEOF()]


# ---------------------------------------------------------------- 100-continue


def expect_100(body_length: int = 5) -> bytes:
    headers = (
        ("Host", "example.com"),
        ("Content-Length", str(body_length)),
        ("Expect", "100-continue"),
    )
    return request("POST", "/", headers)


def test_100_continue_is_sent_when_the_app_first_asks_for_the_body() -> None:
    h = Harness()
    h.feed(expect_100())
    cycle = h.cycle()
    assert h.take_sent() == b""
    assert h.message_for_app(cycle) is None
    interim = h.take_sent()
    assert interim.startswith(b"HTTP/1.1 100 ") and interim.endswith(b"\r\n\r\n")
    assert interim.count(b"\r\n") == 2
    assert h.message_for_app(cycle) is None
    assert h.take_sent() == b"", "100 Continue sent twice"
    h.feed(b"hello")
    assert h.message_for_app(cycle) == {
        "type": "http.request",
        "body": b"hello",
        "more_body": False,
    }
    h.respond(cycle, 200, [(b"content-length", b"0")])
    [response] = parse_responses(h.sent, ["POST"], eof=False)
    assert (response.informational, response.status) == ([100], 200)
    assert response.get(b"connection") is None
    assert not h.of_type(SendEOF)


def test_100_continue_status_line_has_its_reason_phrase() -> None:
    h = Harness()
    h.feed(expect_100())
    h.message_for_app(h.cycle())
    assert h.take_sent() == b"HTTP/1.1 100 Continue\r\n\r\n"


def test_100_continue_never_sent_if_app_answers_without_reading() -> None:
    h = Harness()
    h.feed(expect_100())
    cycle = h.cycle()
    h.respond(cycle, 413, [(b"content-length", b"0")])
    assert b" 100 " not in h.sent
    response = parse_response(h.sent, "POST")
    assert (response.informational, response.status) == ([], 413)
    assert response.get(b"connection") == b"close"
    assert h.of_type(SendEOF)


def test_100_continue_ignored_for_http10() -> None:
    h = Harness()
    h.feed(request("POST", "/", (("Content-Length", "2"), ("Expect", "100-continue")), b"", "1.0"))
    assert h.message_for_app(h.cycle()) is None
    assert h.sent == b""


# ---------------------------------------------------------------- response framing


def test_head_response_has_no_body_and_keeps_content_length() -> None:
    h = Harness()
    h.feed(request("HEAD", "/"))
    h.respond(h.cycle(), 200, [(b"content-length", b"11")], b"hello world")
    assert not h.sent.endswith(b"hello world")
    assert h.sent.endswith(b"\r\n\r\n")
    response = parse_response(h.sent, "HEAD", eof=False)
    assert (response.status, response.body) == (200, b"")
    assert response.get(b"content-length") == b"11"
    assert not h.of_type(SendEOF)


@pytest.mark.parametrize("status", [204, 304])
def test_204_and_304_have_no_body_on_the_wire(status: int) -> None:
    h = Harness()
    h.feed(GET)
    h.start(h.cycle(), status)
    h.body(h.cycle(), b"ignored", more_body=True)
    h.body(h.cycle(), b"also")
    assert b"ignored" not in h.sent and b"also" not in h.sent
    assert h.sent.endswith(b"\r\n\r\n")
    response = parse_response(h.sent, eof=False)
    assert (response.status, response.body) == (status, b"")
    assert response.get(b"transfer-encoding") is None


def test_no_content_length_is_chunked_on_http11() -> None:
    h = Harness(ProtocolSettings(server_header=False, date_header=False))
    h.feed(GET)
    h.start(h.cycle(), 200, [(b"content-type", b"text/plain")])
    h.body(h.cycle(), b"hello", more_body=True)
    h.body(h.cycle(), b"")
    assert h.sent == (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"
    )
    assert not h.of_type(SendEOF)


def test_no_content_length_is_close_delimited_on_http10() -> None:
    h = Harness(ProtocolSettings(server_header=False, date_header=False))
    h.feed(request("GET", "/", (), version="1.0"))
    h.start(h.cycle(), 200)
    h.body(h.cycle(), b"hello", more_body=True)
    h.body(h.cycle(), b" world")
    assert h.sent == b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello world"
    assert h.of_type(SendEOF)


@pytest.mark.parametrize("value", [b"chunked", b"gzip, chunked", b"identity"])
def test_app_transfer_encoding_is_ignored(value: bytes) -> None:
    h = Harness(ProtocolSettings(server_header=False, date_header=False))
    h.feed(GET)
    h.respond(h.cycle(), 200, [(b"transfer-encoding", value), (b"content-length", b"2")], b"ok")
    assert h.sent == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


def test_app_transfer_encoding_without_length_gets_server_chunking() -> None:
    h = Harness(ProtocolSettings(server_header=False, date_header=False))
    h.feed(GET)
    h.respond(h.cycle(), 200, [(b"Transfer-Encoding", b"gzip")], b"ok")
    response = parse_response(h.sent, eof=False)
    assert response.get_all(b"transfer-encoding") == [b"chunked"]
    assert response.body == b"ok"


@pytest.mark.parametrize(
    "pieces", [[b"0123456789"], [b"01234", b"56789"], [b"012", b"34", b"5"]], ids=str
)
def test_body_longer_than_content_length_raises_and_closes(pieces: list[bytes]) -> None:
    h = Harness()
    h.feed(GET)
    cycle = h.cycle()
    h.start(cycle, 200, [(b"content-length", b"5")])
    with pytest.raises(ContentLengthExceeded):
        for piece in pieces:
            h.body(cycle, piece, more_body=True)
    head, _, body = h.sent.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert len(body) <= 5
    assert b"01234"[: len(body)] == body
    assert h.of_type(SendEOF)
    [completed] = h.of_type(ResponseCompleted)
    assert not completed.complete


def test_body_shorter_than_content_length_raises_and_closes() -> None:
    h = Harness()
    h.feed(GET)
    cycle = h.cycle()
    h.start(cycle, 200, [(b"content-length", b"5")])
    h.body(cycle, b"abc", more_body=True)
    with pytest.raises(ContentLengthExceeded):
        h.body(cycle, b"")
    assert h.sent.endswith(b"\r\n\r\nabc")
    assert h.of_type(SendEOF)
    assert issubclass(ContentLengthExceeded, ASGIProtocolError)


@pytest.mark.parametrize(
    "header",
    [
        (b"x-evil", b"a\r\nset-cookie: pwned=1"),
        (b"x-evil", b"a\nset-cookie: pwned=1"),
        (b"x-evil", b"a\rb"),
        (b"x-evil", b"a\x00b"),
        (b"x-evil\r\nset-cookie", b"pwned=1"),
        (b"bad name", b"v"),
        (b"bad:name", b"v"),
        (b"", b"v"),
        (b"x-\x00", b"v"),
    ],
    ids=repr,
)
def test_header_injection_raises_and_writes_nothing(header: tuple[bytes, bytes]) -> None:
    h = Harness()
    h.feed(GET)
    with pytest.raises(ASGIProtocolError, match=r"http\.response\.start"):
        h.start(h.cycle(), 200, [header])
    assert h.sent == b""
    assert b"pwned" not in h.sent


def test_a_refused_header_is_refused_again_after_a_valid_one_like_it() -> None:
    # Fields found well formed are remembered; one that is not must never be.
    h = Harness()
    for header in [(b"x-a", b"v"), (b"x-a", b"v\x00"), (b"x-a", b"v"), (b"x-a", b"v\x00")]:
        h.feed(GET)
        if b"\x00" in header[1]:
            with pytest.raises(ASGIProtocolError, match="Illegal header value"):
                h.start(h.cycle(), 200, [header])
            h = Harness()
        else:
            h.respond(h.cycle(), 200, [header], b"ok")
            assert b"\r\nx-a: v\r\n" in h.take_sent()


def test_remembered_response_fields_stay_within_their_limit() -> None:
    limit = http11._CHECKED_FIELDS_MAX
    h = Harness()
    for i in range(limit * 2 + 3):
        h.feed(GET)
        h.respond(h.cycle(), 200, [(b"x-request-id", b"%d" % i)], b"ok")
        assert b"\r\nx-request-id: %d\r\n" % i in h.take_sent()
        assert len(http11._CHECKED_FIELDS) <= limit


# ---------------------------------------------------------------- server and date headers


def respond_ok(
    settings: ProtocolSettings | None = None,
    now: float = 0.0,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> bytes:
    h = Harness(settings, now=now)
    h.feed(GET)
    h.respond(h.cycle(), 200, headers, b"ok")
    return h.sent


def test_server_and_date_headers_by_default() -> None:
    for now, date in [(784111777.0, b"Sun, 06 Nov 1994 08:49:37 GMT"), (0.0, DATE_0)]:
        response = parse_response(respond_ok(now=now), eof=False)
        assert response.get(b"server") == b"sansio-asgi"
        assert response.get(b"date") == date


def test_date_header_of_first_response_in_a_fresh_process() -> None:
    """The first date the process formats, at now=0, is the epoch (not a stale cache)."""
    code = (
        "from tests.core.test_http import respond_ok\n"
        "from tests.core.helpers import parse_response\n"
        "print(parse_response(respond_ok(now=0.0), eof=False).get(b'date'))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        cwd=root,
    )
    assert out.stdout.strip() == repr(DATE_0)


def test_server_header_can_be_disabled() -> None:
    response = parse_response(respond_ok(ProtocolSettings(server_header=False)), eof=False)
    assert response.get(b"server") is None
    assert response.get(b"date") is not None


def test_date_header_can_be_disabled() -> None:
    response = parse_response(respond_ok(ProtocolSettings(date_header=False)), eof=False)
    assert response.get(b"date") is None
    assert response.get(b"server") == b"sansio-asgi"


def test_app_server_and_date_headers_are_not_duplicated() -> None:
    headers = [(b"Server", b"mine"), (b"date", b"Mon, 01 Jan 2024 00:00:00 GMT")]
    response = parse_response(respond_ok(headers=headers), eof=False)
    assert response.get_all(b"server") == [b"mine"]
    assert response.get_all(b"date") == [b"Mon, 01 Jan 2024 00:00:00 GMT"]


def test_error_responses_honour_server_and_date_settings() -> None:
    h = Harness(ProtocolSettings(server_header=False, date_header=False))
    h.feed(b"GARBAGE\r\n\r\n")
    response = parse_response(h.sent)
    assert response.get(b"server") is None and response.get(b"date") is None


# ---------------------------------------------------------------- bad requests


BAD_REQUESTS = {
    "malformed-request-line": (b"GARBAGE\r\n\r\n", 400),
    "bad-version-token": (b"GET / HTTQ/1.1\r\nHost: a\r\n\r\n", 400),
    "missing-host": (b"GET / HTTP/1.1\r\n\r\n", 400),
    "te-and-cl": (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        400,
    ),
    "unknown-coding": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    "http2-version": (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    # Served as HTTP/2 unless HTTP/2 is off (--no-http2): then an HTTP/1.1 request of version 2.0.
    "http2-preface-no-http2": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    # RFC 9110 §4.2.1: an "http" URI with an empty host "MUST" be rejected as invalid.
    "absolute-form-empty-host": (b"GET http:///p HTTP/1.1\r\nHost: a\r\n\r\n", 400),
}


def assert_rejected(h: Harness, status: int) -> None:
    response = parse_response(h.sent)
    assert response.status == status
    assert response.get(b"connection") == b"close"
    assert response.get(b"content-type") == b"text/plain; charset=utf-8"
    assert 0 < len(response.body) < 300
    assert response.body.startswith(response.reason)
    assert not h.start_apps()
    [rejected] = h.of_type(RequestRejected)
    assert rejected.status == status
    assert rejected.client == ("127.0.0.1", 50000)
    assert kinds(h.events)[-1] == "SendEOF"


@pytest.mark.parametrize("name", BAD_REQUESTS)
@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
def test_bad_request_gets_error_response_and_close(name: str, bytewise: bool) -> None:
    data, status = BAD_REQUESTS[name]
    h = Harness(ProtocolSettings(http2=False) if name.endswith("no-http2") else None)
    if bytewise:
        h.feed_pieces(data, 1)
    else:
        h.feed(data)
    assert_rejected(h, status)


@pytest.mark.parametrize("size", [1, 100, None], ids=["bytewise", "pieces", "whole"])
def test_headers_larger_than_max_header_bytes_get_431(size: int | None) -> None:
    h = Harness(ProtocolSettings(max_header_bytes=1024))
    data = request("GET", "/", (("Host", "a"), ("X-Big", "b" * 4000)))
    if size is None:
        h.feed(data)
    else:
        h.feed_pieces(data, size)
    assert_rejected(h, 431)


def test_headers_just_under_max_header_bytes_are_accepted() -> None:
    h = Harness(ProtocolSettings(max_header_bytes=1024))
    h.feed(request("GET", "/", (("Host", "a"), ("X-Big", "b" * 900))))
    assert len(h.start_apps()) == 1


@pytest.mark.parametrize("size", [1, None], ids=["bytewise", "whole"])
@pytest.mark.parametrize("extra", [0, 1])
def test_max_header_bytes_is_exact(size: int | None, extra: int) -> None:
    """The limit counts the head as sent: a head of exactly max_header_bytes is served, one
    byte more gets 431, however it arrives."""
    head = b"GET / HTTP/1.1\r\nHost: a\r\nX-Pad: \r\n\r\n"
    pad = 100 - len(head) + extra
    data = head.replace(b"X-Pad: ", b"X-Pad: " + b"a" * pad)
    assert len(data) == 100 + extra
    h = Harness(ProtocolSettings(max_header_bytes=100))
    if size is None:
        h.feed(data)
    else:
        h.feed_pieces(data, size)
    if extra:
        assert_rejected(h, 431)
    else:
        assert len(h.start_apps()) == 1


def test_no_event_follows_close_connection() -> None:
    """A closed connection asks the driver for nothing more, whatever it reports after."""
    h = Harness()
    h.feed(request("GET", "/a", [("Host", "x")]) + request("GET", "/b", [("Host", "x")]))
    assert h.of_type(PauseReading)  # the second request waits behind the first
    h.eof()
    assert type(h.take_events()[-1]) is CloseConnection
    h.protocol.writing_paused(1.0)
    h.protocol.writing_resumed(1.0)
    assert list(h.protocol.events_received()) == []


def test_slow_headers_get_408_and_close() -> None:
    h = Harness(ProtocolSettings(header_timeout_s=10.0), now=50.0)
    h.feed(b"GET / HTTP/1.1\r\nHost: a\r\n", now=51.0)
    assert h.protocol.next_deadline() == 61.0
    h.timer(60.9)
    assert h.sent == b"" and h.events == []
    h.timer(61.0)
    assert_rejected(h, 408)


def test_idle_connection_without_bytes_closes_silently_at_header_timeout() -> None:
    h = Harness(ProtocolSettings(header_timeout_s=10.0), now=50.0)
    assert h.protocol.next_deadline() == 60.0
    h.timer(60.0)
    assert h.sent == b""
    assert h.events == [SendEOF()]


def test_bad_chunked_body_after_start_app_closes() -> None:
    h = Harness()
    h.feed(request("POST", "/", CHUNKED, b"zz\r\n"))
    assert len(h.start_apps()) == 1
    response = parse_response(h.sent, "POST")
    assert response.status == 400
    assert h.of_type(SendEOF)
    assert h.message_for_app(h.cycle()) == {"type": "http.disconnect"}


# ---------------------------------------------------------------- what an error response says
# The body and the RequestRejected reason say what was wrong in fixed words and never quote the
# request: MARK stands in each malformed position, and must appear nowhere in what the server
# says about it.

MARK = b"XYZZY"
M = MARK.decode()
HEAD = b"Host: a\r\n"
CHUNKED_HEAD = b"POST /" + MARK + b" HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"

# name: (request bytes, status, what the body and the log say)
MARKED_REQUESTS: dict[str, tuple[bytes, int, str]] = {
    "request-line": (
        b"GET /" + MARK + b" HTTP/1.1 " + MARK + b"\r\n" + HEAD + b"\r\n",
        400,
        "malformed request line",
    ),
    "request-line-no-version": (MARK + b"\r\n\r\n", 400, "malformed request line"),
    "request-line-control-byte": (b"\x16" + MARK + b"\r\n\r\n", 400, "malformed request line"),
    "method": (MARK + b"\x7f / HTTP/1.1\r\n" + HEAD + b"\r\n", 400, "malformed request line"),
    "version": (b"GET / HTTP/" + MARK + b"\r\n" + HEAD + b"\r\n", 400, "malformed request line"),
    "header-line": (
        b"GET / HTTP/1.1\r\n" + HEAD + MARK + b"\r\n\r\n",
        400,
        "malformed header line",
    ),
    "header-name-space": (
        b"GET / HTTP/1.1\r\n" + HEAD + MARK + b" : v\r\n\r\n",
        400,
        "malformed header line",
    ),
    "header-value-nul": (
        b"GET / HTTP/1.1\r\n" + HEAD + b"X: " + MARK + b"\x00\r\n\r\n",
        400,
        "malformed header line",
    ),
    "fold-at-start": (
        b"GET / HTTP/1.1\r\n " + MARK + b"\r\n" + HEAD + b"\r\n",
        400,
        "malformed header line",
    ),
    "missing-host": (
        b"GET /" + MARK + b" HTTP/1.1\r\nX: " + MARK + b"\r\n\r\n",
        400,
        "missing Host header",
    ),
    "two-hosts": (
        b"GET / HTTP/1.1\r\nHost: " + MARK + b"\r\nHost: " + MARK + b"\r\n\r\n",
        400,
        "more than one Host header",
    ),
    "content-length": (
        b"POST / HTTP/1.1\r\n" + HEAD + b"Content-Length: " + MARK + b"\r\n\r\n",
        400,
        "malformed Content-Length",
    ),
    "conflicting-content-lengths": (
        b"POST /"
        + MARK
        + b" HTTP/1.1\r\n"
        + HEAD
        + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n",
        400,
        "conflicting Content-Length headers",
    ),
    "transfer-encoding": (
        b"POST / HTTP/1.1\r\n" + HEAD + b"Transfer-Encoding: " + MARK + b"\r\n\r\n",
        501,
        "unsupported Transfer-Encoding",
    ),
    "two-transfer-encodings": (
        b"POST / HTTP/1.1\r\n"
        + HEAD
        + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: "
        + MARK
        + b"\r\n\r\n",
        501,
        "more than one Transfer-Encoding header",
    ),
    "head-too-large": (
        b"GET / HTTP/1.1\r\n" + HEAD + b"X: " + MARK * 300 + b"\r\n\r\n",
        431,
        "request head too large",
    ),
    "http-2": (
        b"GET /" + MARK + b" HTTP/2.0\r\n" + HEAD + b"\r\n",
        505,
        "only HTTP/1.0 and HTTP/1.1 are served",
    ),
    "empty-authority": (
        b"GET http://" + MARK + b"@/ HTTP/1.1\r\n" + HEAD + b"\r\n",
        400,
        "absolute-form target without a host",
    ),
    "chunk-size": (CHUNKED_HEAD + MARK + b"\r\n", 400, "malformed chunk size line"),
    "chunk-size-bare-lf": (
        CHUNKED_HEAD + b"5\n" + MARK + b"\n0\r\n\r\n",
        400,
        "malformed chunk size line",
    ),
    "chunk-footer": (
        CHUNKED_HEAD + b"2\r\nab" + MARK + b"\r\n",
        400,
        "chunk data not followed by CRLF",
    ),
    "trailer-line": (CHUNKED_HEAD + b"0\r\n" + MARK + b"\r\n\r\n", 400, "malformed trailer line"),
    "chunk-line-too-large": (
        CHUNKED_HEAD + b"5;" + MARK * 300,
        431,
        "chunk size line or trailer section too large",
    ),
}


@pytest.mark.parametrize("name", MARKED_REQUESTS)
@pytest.mark.parametrize("size", [1, 3, None], ids=["bytewise", "pieces", "whole"])
def test_error_responses_say_what_was_wrong_without_quoting_the_request(
    name: str, size: int | None
) -> None:
    data, status, description = MARKED_REQUESTS[name]
    h = Harness(ProtocolSettings(max_header_bytes=1024))
    h.feed_pieces(data, size or len(data))
    method = "POST" if data.startswith(b"POST") else "GET"
    response = parse_response(h.sent, method)
    assert response.status == status
    assert response.body == response.reason + b": " + description.encode() + b"\n"
    assert MARK not in h.sent
    for event in h.events:
        if isinstance(event, RequestRejected):
            assert event.reason == description
        elif not isinstance(event, (StartApp, ResponseCompleted)):  # these carry the request
            assert M not in repr(event)
    assert len(h.of_type(RequestRejected)) == (0 if h.start_apps() else 1)


TEMPLATES = [
    b"GET /a?b HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3\r\nabc\r\n0\r\nT: 1\r\n\r\n",
    b"POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
]


@settings(max_examples=300, deadline=None)
@given(
    template=st.sampled_from(TEMPLATES),
    spots=st.lists(st.integers(min_value=0, max_value=200), min_size=1, max_size=3),
    glue=st.sampled_from([b"", b" ", b"\r\n", b"\n", b":", b";", b"\x00", b"\t"]),
    cut=st.integers(min_value=0, max_value=3),
    size=st.integers(min_value=1, max_value=64),
)
def test_no_error_response_or_rejection_quotes_the_request(
    template: bytes, spots: list[int], glue: bytes, cut: int, size: int
) -> None:
    data = template
    for spot in sorted(spots, reverse=True):
        spot %= len(data) + 1
        data = data[:spot] + glue + MARK + glue + data[spot + cut :]
    h = Harness(ProtocolSettings(max_header_bytes=1024))
    h.feed_pieces(data, size)
    h.eof()
    assert MARK not in h.sent
    for event in h.of_type(RequestRejected):
        assert M not in event.reason


@pytest.mark.parametrize(
    ("message", "description"),
    [
        ("illegal request line: bytearray(b'XYZZY')", "malformed request line"),
        ("Receive buffer too long", "request head too large"),
        ("peer unexpectedly closed connection", "connection closed mid-request"),
        ("Got data when expecting EOF", "data after the last request"),
        ("something h11 may say one day: XYZZY", "malformed request"),
        ("", "malformed request"),
    ],
)
def test_h11_messages_map_to_fixed_words(message: str, description: str) -> None:
    assert describe_h11_error(message) == description


# ---------------------------------------------------------------- app mistakes (ASGI E1)


START = {"type": "http.response.start", "status": 200}
BODY = {"type": "http.response.body", "body": b"x", "more_body": True}

APP_MISTAKES = {
    "unknown-type": ([], {"type": "http.response.bogus"}, ["http.response.bogus", "ASGI HTTP"]),
    "websocket-type": ([], {"type": "websocket.accept"}, ["websocket.accept", "ASGI HTTP spec"]),
    "missing-status": ([], {"type": "http.response.start"}, ["http.response.start", "status"]),
    "str-status": (
        [],
        {"type": "http.response.start", "status": "200"},
        ["http.response.start", "ASGI HTTP spec"],
    ),
    "status-too-low": ([], {**START, "status": 99}, ["http.response.start", "status"]),
    "status-1xx": ([], {**START, "status": 101}, ["http.response.start", "status"]),
    "status-too-high": ([], {**START, "status": 600}, ["http.response.start", "status"]),
    "str-header-name": (
        [],
        {**START, "headers": [("x-a", b"1")]},
        ["http.response.start", "ASGI HTTP spec", "names must be bytes"],
    ),
    "str-header-value": (
        [],
        {**START, "headers": [(b"x-a", "1")]},
        ["http.response.start", "ASGI HTTP spec", "values must be bytes"],
    ),
    "headers-not-pairs": (
        [],
        {**START, "headers": [(b"x-a",)]},
        ["http.response.start", "ASGI HTTP spec"],
    ),
    "headers-a-dict": (
        [],
        {**START, "headers": {b"x-a": b"1"}},
        ["http.response.start", "ASGI HTTP spec"],
    ),
    "second-start": ([START], START, ["http.response.start", "ASGI HTTP spec", "twice"]),
    "start-while-streaming": (
        [START, BODY],
        START,
        ["http.response.start", "ASGI HTTP spec", "twice"],
    ),
    "body-before-start": ([], BODY, ["http.response.body", "ASGI HTTP spec", "before"]),
    "str-body": (
        [START],
        {"type": "http.response.body", "body": "x"},
        ["http.response.body", "ASGI HTTP spec"],
    ),
    "int-more-body": (
        [START],
        {"type": "http.response.body", "more_body": 1},
        ["http.response.body", "ASGI HTTP spec"],
    ),
    "non-dict": ([], ["http.response.start", 200], ["dict", "ASGI spec"]),
    "none": ([], None, ["dict", "ASGI spec"]),
    "missing-type": ([], {"status": 200}, ["type", "ASGI spec"]),
    "non-str-type": ([], {"type": b"http.response.start"}, ["type", "ASGI spec"]),
    "unhashable-type": ([], {"type": ["http.response.start"]}, ["type", "ASGI spec"]),
}


@pytest.mark.parametrize("name", APP_MISTAKES)
def test_invalid_app_message_raises_naming_the_rule(name: str) -> None:
    before, message, fragments = APP_MISTAKES[name]
    h = Harness()
    h.feed(GET)
    cycle = h.cycle()
    for ok in before:
        h.message_from_app(cycle, ok)
    sent = h.take_sent()
    with pytest.raises(ASGIProtocolError) as info:
        h.message_from_app(cycle, message)
    assert type(info.value) is ASGIProtocolError
    for fragment in fragments:
        assert fragment in str(info.value)
    assert h.take_sent() == b"", "an invalid message put bytes on the wire"
    if not sent:
        # Nothing was written yet: the app's failure can still become a clean 500.
        h.app_finished(cycle, info.value)
        assert parse_response(h.sent).status == 500


def test_extra_keys_are_not_errors() -> None:
    h = Harness()
    h.feed(GET)
    h.message_from_app(h.cycle(), {**START, "x-extra": object()})
    h.message_from_app(h.cycle(), {"type": "http.response.body", "body": b"ok", "extra": 1})
    assert parse_response(h.sent, eof=False).body == b"ok"


@pytest.mark.parametrize("exc", [None, RuntimeError("boom")], ids=["returned", "raised"])
@pytest.mark.parametrize("started", [False, True], ids=["before-start", "after-start"])
def test_app_finishing_before_body_gets_500(exc: Exception | None, started: bool) -> None:
    h = Harness()
    h.feed(GET)
    cycle = h.cycle()
    if started:
        h.start(cycle, 201, [(b"x-app", b"1")])
    assert h.sent == b""
    h.app_finished(cycle, exc)
    response = parse_response(h.sent)
    assert response.status == 500
    assert response.get(b"x-app") is None
    assert response.get(b"connection") == b"close"
    assert response.body
    assert kinds(h.events)[-1] == "SendEOF"
    misbehaved = h.of_type(AppMisbehaved)
    assert len(misbehaved) == (1 if exc is None else 0)
    [completed] = h.of_type(ResponseCompleted)
    assert completed.status == 500


@pytest.mark.parametrize("exc", [None, RuntimeError("boom")], ids=["returned", "raised"])
def test_app_finishing_mid_body_closes_without_500(exc: Exception | None) -> None:
    h = Harness()
    h.feed(GET)
    cycle = h.cycle()
    h.start(cycle)
    h.body(cycle, b"partial", more_body=True)
    sent = h.take_sent()
    h.app_finished(cycle, exc)
    assert h.take_sent() == b""
    assert b"500" not in sent
    assert not sent.endswith(b"0\r\n\r\n"), "an unfinished chunked response was terminated"
    assert kinds(h.events)[-1] == "SendEOF"
    [completed] = h.of_type(ResponseCompleted)
    assert (completed.status, completed.complete) == (200, False)


def test_app_finishing_after_complete_response_changes_nothing() -> None:
    h = Harness()
    h.feed(GET)
    h.respond(h.cycle(), body=b"ok")
    sent, events = h.take_sent(), h.take_events()
    h.app_finished(h.cycle(), None)
    h.app_finished(h.cycle(), RuntimeError("late"))
    assert (h.take_sent(), h.take_events()) == (b"", [])
    assert sent and kinds(events) == ["StartApp", "ResponseCompleted"]


def test_body_after_response_completed_is_ignored() -> None:
    h = Harness()
    h.feed(GET)
    cycle = h.cycle()
    h.respond(cycle, body=b"ok")
    h.take_sent()
    h.take_events()
    h.body(cycle, b"late", more_body=True)
    h.body(cycle, b"later")
    assert (h.take_sent(), h.take_events()) == (b"", [])


def test_message_for_app_after_response_is_disconnect() -> None:
    h = Harness()
    h.feed(GET)
    cycle = h.cycle()
    h.read_request(cycle)
    h.respond(cycle)
    assert h.message_for_app(cycle) == {"type": "http.disconnect"}


def test_message_for_app_after_response_without_reading_is_disconnect() -> None:
    h = Harness()
    h.feed(post(b"unread"))
    cycle = h.cycle()
    h.respond(cycle)
    assert h.message_for_app(cycle) == {"type": "http.disconnect"}


def test_after_client_eof_receive_is_disconnect_and_send_raises_oserror() -> None:
    h = Harness()
    h.feed(post(b"abc")[:-1])
    cycle = h.cycle()
    h.eof()
    assert h.message_for_app(cycle) == {"type": "http.disconnect"}
    assert issubclass(ClientDisconnected, OSError)
    with pytest.raises(ClientDisconnected):
        h.start(cycle)
    assert h.sent == b""
    assert h.events[-1] == CloseConnection()


@pytest.mark.parametrize("stage", ["started", "streaming"])
def test_send_after_client_eof_mid_response_raises(stage: str) -> None:
    h = Harness()
    h.feed(GET)
    cycle = h.cycle()
    h.start(cycle)
    if stage == "streaming":
        h.body(cycle, b"x", more_body=True)
    h.eof()
    with pytest.raises(ClientDisconnected):
        h.body(cycle, b"y")
    [completed] = h.of_type(ResponseCompleted)
    assert not completed.complete


def test_wake_app_when_body_arrives_for_a_waiting_app() -> None:
    h = Harness()
    h.feed(post(b"hello")[:-5])
    cycle = h.cycle()
    h.take_events()
    assert h.message_for_app(cycle) is None
    h.feed(b"he")
    assert h.take_events() == [WakeApp(cycle=cycle)]
    h.feed(b"llo")
    assert h.take_events() == [], "woken twice without asking again"
    assert h.message_for_app(cycle) == {
        "type": "http.request",
        "body": b"hello",
        "more_body": False,
    }


def test_wake_app_when_request_completes_with_empty_last_chunk() -> None:
    h = Harness()
    h.feed(request("POST", "/", CHUNKED, b"3\r\nabc\r\n"))
    cycle = h.cycle()
    assert h.read_request(cycle) == [{"type": "http.request", "body": b"abc", "more_body": True}]
    h.take_events()
    h.feed(b"0\r\n\r\n")
    assert h.take_events() == [WakeApp(cycle=cycle)]
    assert h.message_for_app(cycle) == {"type": "http.request", "body": b"", "more_body": False}


def test_wake_app_when_client_leaves() -> None:
    h = Harness()
    h.feed(post(b"hello")[:-5])
    cycle = h.cycle()
    assert h.message_for_app(cycle) is None
    h.take_events()
    h.eof()
    assert h.take_events() == [WakeApp(cycle=cycle), CloseConnection()]
    assert h.message_for_app(cycle) == {"type": "http.disconnect"}


def test_wake_app_when_response_completes() -> None:
    """An app waiting for http.disconnect (after reading the whole request) is woken."""
    h = Harness()
    h.feed(GET)
    cycle = h.cycle()
    h.read_request(cycle)
    assert h.message_for_app(cycle) is None
    h.take_events()
    h.start(cycle)
    h.body(cycle, b"x", more_body=True)
    assert h.take_events() == []
    h.body(cycle, b"")
    events = h.take_events()
    assert WakeApp(cycle=cycle) in events
    assert h.message_for_app(cycle) == {"type": "http.disconnect"}


def test_no_wake_app_for_an_app_that_is_not_waiting() -> None:
    h = Harness()
    h.feed(post(b"hello")[:-5])
    h.feed(b"hello")
    h.respond(h.cycle())
    assert not h.of_type(WakeApp)


# ---------------------------------------------------------------- lingering close


def closing_harness() -> Harness:
    h = Harness(ProtocolSettings(linger_timeout_s=2.0), now=10.0)
    h.feed(request("GET", "/", (("Host", "a"), ("Connection", "close"))))
    h.respond(h.cycle(), body=b"bye")
    assert kinds(h.take_events())[-1] == "SendEOF"
    h.take_sent()
    return h


def test_lingering_close_drops_received_data() -> None:
    h = closing_harness()
    h.feed(request("GET", "/again"), now=11.0)
    h.feed(b"\x00garbage\r\n\r\n", now=11.5)
    assert (h.take_sent(), h.take_events()) == (b"", [])
    assert len(h.start_apps()) == 1


def test_lingering_close_ends_on_client_eof() -> None:
    h = closing_harness()
    h.feed(b"more")
    h.eof(now=11.0)
    assert h.take_events() == [CloseConnection()]
    assert h.protocol.next_deadline() is None
    h.eof(now=12.0)
    h.timer(100.0)
    assert h.take_events() == []


def test_lingering_close_ends_at_linger_timeout() -> None:
    h = closing_harness()
    assert h.protocol.next_deadline() == 12.0
    h.timer(11.99)
    assert h.take_events() == []
    h.timer(12.0)
    assert h.take_events() == [CloseConnection()]
    assert h.sent.endswith(b"3\r\nbye\r\n0\r\n\r\n")


def test_events_are_start_app_with_scope_of_the_cycle() -> None:
    h = Harness()
    h.feed(GET)
    [event] = h.take_events()
    assert isinstance(event, StartApp)
    assert event.scope is event.cycle.scope


# ---------------------------------------------------------------- error responses to HEAD


def test_500_for_a_head_request_has_no_body() -> None:
    """RFC 9110 §9.3.2: a response to HEAD has no content, error responses included."""
    h = Harness()
    h.feed(request("HEAD", "/"))
    h.app_finished(h.cycle(), RuntimeError("boom"))
    response = parse_response(h.sent, "HEAD")
    assert (response.status, response.body) == (500, b"")


def test_400_for_a_head_request_with_a_bad_body_has_no_body() -> None:
    h = Harness()
    h.feed(request("HEAD", "/", CHUNKED, b"zz\r\n"))
    response = parse_response(h.sent, "HEAD")
    assert (response.status, response.body) == (400, b"")


# ---------------------------------------------------------------- unread request bodies


def test_unread_body_is_discarded_and_the_connection_kept() -> None:
    h = Harness()
    body = b"x" * 1000
    h.feed(post(body)[:-1000] + body[:10])
    first = h.cycle()
    h.respond(first, 200, [(b"content-length", b"2")], b"ok")
    assert not h.of_type(SendEOF)
    h.feed(body[10:] + request("GET", "/next"))
    assert [s.scope["path"] for s in h.start_apps()] == ["/upload", "/next"]
    assert h.message_for_app(first) == {"type": "http.disconnect"}


def test_nothing_behind_a_body_too_long_to_discard_is_served() -> None:
    """Closing because an unread body is over the discard limit: a request pipelined behind
    that body must not start an app whose response could never be sent."""
    h = Harness(ProtocolSettings(discard_body_limit_bytes=100))
    body = b"x" * 1000
    h.feed(post(body)[:-1000])
    h.respond(h.cycle(), 200, [(b"content-length", b"2")], b"ok")
    h.feed(body + request("GET", "/after"))
    assert h.of_type(SendEOF)
    assert [s.scope["path"] for s in h.start_apps()] == ["/upload"]
    assert parse_responses(h.sent, ["POST"])[0].status == 200


@pytest.mark.parametrize(
    "bad_body", [b"5\r\nhello\r\nzz\r\n", b"5\r\nhello\r\n0\r\nbad trailer\r\n\r\n"]
)
def test_the_app_of_a_request_answered_400_hears_the_client_left(bad_body: bytes) -> None:
    """The server answered a malformed body with 400 and closed; the app, which has not
    responded yet, learns it the way it learns that a client left (ASGI HTTP 2.4)."""
    h = Harness()
    h.feed(request("POST", "/", [("Host", "x"), ("Transfer-Encoding", "chunked")]) + bad_body)
    cycle = h.cycle()
    assert parse_response(h.sent, "POST").status == 400
    assert h.read_request(cycle)[-1] == {"type": "http.disconnect"}
    with pytest.raises(ClientDisconnected):
        h.start(cycle)
    with pytest.raises(ClientDisconnected):
        h.body(cycle, b"late")
    # A message that is not one at all is still the app's mistake.
    with pytest.raises(ASGIProtocolError):
        h.message_from_app(cycle, {"type": "http.response.bogus"})


def test_unread_body_beyond_discard_limit_closes() -> None:
    h = Harness(ProtocolSettings(discard_body_limit_bytes=100))
    body = b"x" * 1000
    h.feed(post(body)[:-1000])
    h.respond(h.cycle(), 200, [(b"content-length", b"2")], b"ok")
    h.feed(body[:100])
    assert not h.of_type(SendEOF)
    h.feed(body[100:200])
    assert h.of_type(SendEOF)


# ---------------------------------------------------------------- shutdown


def test_shutdown_closes_a_kept_alive_idle_connection_after_a_short_grace() -> None:
    h = Harness(now=0.0)
    h.feed(request("GET", "/"))
    h.respond(h.cycle(), 200, [(b"content-length", b"2")], b"ok", now=1.0)
    h.protocol.shutdown(2.0)
    assert not h.of_type(SendEOF)
    assert h.protocol.next_deadline() == 2.0 + ProtocolSettings().shutdown_idle_grace_s
    h.timer(2.0 + ProtocolSettings().shutdown_idle_grace_s)
    assert h.of_type(SendEOF)
    assert len(h.start_apps()) == 1


def test_a_request_that_arrives_in_the_shutdown_grace_is_answered_with_close() -> None:
    """The client sent it before it could know the server was stopping: it is served, and the
    connection closes after it, instead of meeting a close (a proxy logs and retries that)."""
    h = Harness(now=0.0)
    h.feed(request("GET", "/first"))
    h.respond(h.cycle(), 200, [(b"content-length", b"2")], b"ok", now=1.0)
    h.protocol.shutdown(2.0)
    h.feed(request("GET", "/second"), now=2.1)
    assert [s.scope["path"] for s in h.start_apps()] == ["/first", "/second"]
    h.respond(h.cycle(), 200, [(b"content-length", b"2")], b"ok", now=2.2)
    first, second = parse_responses(h.sent, ["GET", "GET"])
    assert first.get(b"connection") is None
    assert second.get(b"connection") == b"close"
    assert h.of_type(SendEOF)


def test_shutdown_gives_a_fresh_connection_the_linger_time() -> None:
    h = Harness(now=0.0)
    h.protocol.shutdown(0.5)
    assert h.protocol.next_deadline() == 0.5 + ProtocolSettings().linger_timeout_s
    h.feed(request("GET", "/"), now=1.0)
    assert len(h.start_apps()) == 1
