"""The ASGI extensions on HTTP/1.1, in the core: bytes in, bytes and events out, no sockets.

What is offered per request, trailers (with and without ``TE: trailers``), early hints (103),
debug (refused), and the file bodies (pathsend, zerocopysend) through the driver's side of the
contract: ``OpenFile`` -> ``file_opened`` -> ``SendFile`` -> ``file_sent``. ``Harness`` answers
the file events as a driver would, from ``Harness.files`` and ``FakeFile``; tests that look at
the events themselves turn that off.
"""

from __future__ import annotations

from typing import Any

import h11
import pytest

from sansio_asgi.core import (
    ASGIProtocolError,
    ClientDisconnected,
    ContentLengthMismatch,
    ProtocolSettings,
)
from sansio_asgi.core.cycle import ResponseState
from sansio_asgi.core.events import (
    SEND_EOF,
    OpenFile,
    ResponseCompleted,
    SendFile,
)
from sansio_asgi.core.extensions import FORBIDDEN_TRAILERS

from .helpers import FakeFile, Harness, parse_response, parse_responses, request

EXTENSIONS_11 = {
    "http.response.pathsend",
    "http.response.zerocopysend",
    "http.response.trailers",
    "http.response.early_hint",
}
EXTENSIONS_10 = {"http.response.pathsend", "http.response.zerocopysend"}
PATH = "/srv/static/app.css"
CONTENT = b"body { color: red }\n" * 10


def served(
    *,
    method: str = "GET",
    version: str = "1.1",
    headers: tuple[tuple[str, str], ...] = (),
    settings: ProtocolSettings | None = None,
) -> tuple[Harness, Any]:
    h = Harness(settings)
    h.files[PATH] = CONTENT
    host = (("Host", "example.com"),)
    h.feed(request(method, headers=host + headers, version=version))
    return h, h.cycle()


def start(h: Harness, cycle: Any, headers: Any = (), status: int = 200, **extra: Any) -> None:
    message = {"type": "http.response.start", "status": status, "headers": list(headers)}
    h.message_from_app(cycle, {**message, **extra})


def send(h: Harness, cycle: Any, kind: str, **keys: Any) -> None:
    h.message_from_app(cycle, {"type": f"http.response.{kind}", **keys})


def completions(h: Harness) -> list[ResponseCompleted]:
    return h.of_type(ResponseCompleted)


# ----------------------------------------------------------------------- what is offered


def test_an_http_11_request_is_offered_the_extensions_of_http_11() -> None:
    h, _ = served()
    assert set(h.scope()["extensions"]) == EXTENSIONS_11
    assert all(value == {} for value in h.scope()["extensions"].values())


def test_an_http_10_request_is_offered_neither_trailers_nor_early_hints() -> None:
    h, _ = served(version="1.0")
    assert set(h.scope()["extensions"]) == EXTENSIONS_10


def test_without_early_hints_they_are_not_offered_and_are_refused() -> None:
    h, cycle = served(settings=ProtocolSettings(early_hints=False))
    assert set(h.scope()["extensions"]) == EXTENSIONS_11 - {"http.response.early_hint"}
    start(h, cycle)
    with pytest.raises(ASGIProtocolError, match="need their extension in scope"):
        send(h, cycle, "early_hint", links=[b"</a.css>; rel=preload"])
    assert h.take_sent() == b""


def test_the_offer_is_per_request_on_one_connection() -> None:
    h = Harness()
    h.feed(request(version="1.0", headers=[("Host", "a"), ("Connection", "keep-alive")]))
    assert set(h.scope()["extensions"]) == EXTENSIONS_10
    h.respond(h.cycle(), headers=[(b"content-length", b"0")])
    h.feed(request())
    assert set(h.scope()["extensions"]) == EXTENSIONS_11


def test_http_10_trailers_are_refused_as_not_offered() -> None:
    h, cycle = served(version="1.0")
    with pytest.raises(ASGIProtocolError, match=r"does not offer the http\.response\.trailers"):
        start(h, cycle, trailers=True)


def test_debug_is_never_offered_and_refused_saying_why() -> None:
    h, cycle = served()
    assert "http.response.debug" not in h.scope()["extensions"]
    with pytest.raises(ASGIProtocolError) as info:
        send(h, cycle, "debug", info={"template": "x"})
    text = str(info.value)
    assert "does not implement" in text and "servers should not implement it" in text
    assert "ASGI extensions, Debug" in text
    assert h.take_sent() == b""
    h.respond(cycle, body=b"fine")  # the response is as it was
    assert parse_response(h.take_sent()).body == b"fine"


# ------------------------------------------------------------------------------- trailers


def trailers_response(h: Harness, cycle: Any, headers: Any = ()) -> None:
    start(h, cycle, headers, trailers=True)
    send(h, cycle, "body", body=b"hello", more_body=True)
    send(h, cycle, "body", body=b" world")
    send(h, cycle, "trailers", headers=[(b"grpc-status", b"0")], more_trailers=True)
    send(h, cycle, "trailers", headers=[(b"x-checksum", b"abc")])


def test_trailers_are_sent_to_a_client_that_said_te_trailers() -> None:
    h, cycle = served(headers=(("TE", "trailers"),))
    trailers_response(h, cycle)
    sent = h.take_sent()
    end = b"5\r\nhello\r\n6\r\n world\r\n0\r\ngrpc-status: 0\r\nx-checksum: abc\r\n\r\n"
    assert sent.endswith(end)
    response = parse_response(sent)
    assert response.body == b"hello world"
    assert response.trailers == [(b"grpc-status", b"0"), (b"x-checksum", b"abc")]


def test_te_trailers_among_other_codings_counts() -> None:
    h, cycle = served(headers=(("TE", "gzip;q=0.5, Trailers"),))
    trailers_response(h, cycle)
    assert parse_response(h.take_sent()).trailers != []


def test_trailers_are_dropped_without_te_trailers_and_the_response_still_ends() -> None:
    h, cycle = served()
    trailers_response(h, cycle)
    sent = h.take_sent()
    assert sent.endswith(b"6\r\n world\r\n0\r\n\r\n")
    response = parse_response(sent, eof=False)
    assert response.body == b"hello world" and response.trailers == []


def test_the_response_completes_only_after_the_last_trailers() -> None:
    h, cycle = served(headers=(("TE", "trailers"),))
    start(h, cycle, trailers=True)
    send(h, cycle, "body", body=b"x")
    assert cycle.response is ResponseState.TRAILERS
    assert completions(h) == []
    assert h.sent.endswith(b"1\r\nx\r\n")  # the chunked end waits for the trailers
    send(h, cycle, "trailers", headers=[], more_trailers=True)
    assert completions(h) == []
    send(h, cycle, "trailers", headers=[(b"x-a", b"1")])
    [done] = completions(h)
    assert done.complete and done.body_bytes == 1
    assert cycle.response is ResponseState.DONE


def test_keep_alive_continues_after_the_trailers() -> None:
    h, cycle = served(headers=(("TE", "trailers"),))
    h.feed(request())  # pipelined
    trailers_response(h, cycle)
    h.respond(h.cycle(), body=b"second")
    first, second = parse_responses(h.take_sent(), ["GET", "GET"], eof=False)
    assert first.trailers and second.body == b"second"


def test_trailers_with_a_content_length_keep_the_length_and_are_dropped() -> None:
    h, cycle = served(headers=(("TE", "trailers"),))
    trailers_response(h, cycle, [(b"content-length", b"11")])
    sent = h.take_sent()
    assert sent.endswith(b"\r\n\r\nhello world")
    response = parse_response(sent, eof=False)
    assert response.get(b"content-length") == b"11" and response.trailers == []
    assert completions(h)[0].complete


def test_trailers_on_head_send_no_body_and_no_trailers() -> None:
    h, cycle = served(method="HEAD", headers=(("TE", "trailers"),))
    start(h, cycle, trailers=True)
    send(h, cycle, "body", body=b"ignored")
    send(h, cycle, "trailers", headers=[(b"x-a", b"1")])
    sent = h.take_sent()
    assert sent.endswith(b"\r\n\r\n") and b"x-a" not in sent
    assert parse_response(sent, "HEAD", eof=False).body == b""
    assert completions(h)[0].complete


@pytest.mark.parametrize(
    "name", [b"content-length", b"Transfer-Encoding", b"host", b"authorization", b"set-cookie"]
)
def test_fields_kept_out_of_trailers_are_refused(name: bytes) -> None:
    assert name.lower() in FORBIDDEN_TRAILERS
    h, cycle = served(headers=(("TE", "trailers"),))
    start(h, cycle, trailers=True)
    send(h, cycle, "body", body=b"x")
    h.take_sent()
    with pytest.raises(ASGIProtocolError, match=r"RFC 9110 §6\.5\.1"):
        send(h, cycle, "trailers", headers=[(b"x-ok", b"1"), (name, b"1")])
    assert h.take_sent() == b""


def test_a_malformed_trailer_field_is_refused() -> None:
    h, cycle = served(headers=(("TE", "trailers"),))
    start(h, cycle, trailers=True)
    send(h, cycle, "body", body=b"x")
    with pytest.raises(ASGIProtocolError, match="malformed trailer field"):
        send(h, cycle, "trailers", headers=[(b"x-a", b"1\r\nx-injected: 1")])


def test_trailers_out_of_order_are_refused() -> None:
    h, cycle = served(headers=(("TE", "trailers"),))
    start(h, cycle)  # trailers not announced
    with pytest.raises(ASGIProtocolError, match="out of order"):
        send(h, cycle, "trailers", headers=[])
    h2, cycle2 = served(headers=(("TE", "trailers"),))
    start(h2, cycle2, trailers=True)
    send(h2, cycle2, "body", body=b"x")
    with pytest.raises(ASGIProtocolError, match=r"only http\.response\.trailers may follow"):
        send(h2, cycle2, "body", body=b"more")


def test_an_app_that_returns_without_its_trailers_has_its_connection_closed() -> None:
    h, cycle = served(headers=(("TE", "trailers"),))
    start(h, cycle, trailers=True)
    send(h, cycle, "body", body=b"x")
    h.take_sent()
    h.app_finished(cycle)
    assert h.take_sent() == b""  # the head is out: no error response, the close ends it
    [done] = completions(h)
    assert not done.complete
    assert SEND_EOF in h.events


def test_trailers_match_h11s_end_of_message() -> None:
    fields = [(b"grpc-status", b"0"), (b"X-Upper", b"v a l")]
    h, cycle = served(headers=(("TE", "trailers"),))
    start(h, cycle, trailers=True)
    send(h, cycle, "body", body=b"")
    head_and_body = h.take_sent()
    send(h, cycle, "trailers", headers=fields)
    ours = h.take_sent()
    server = h11.Connection(h11.SERVER)
    server.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n")
    server.next_event()
    server.send(h11.Response(status_code=200, headers=[]))
    assert server.send(h11.EndOfMessage(headers=fields)) == ours
    assert head_and_body.endswith(b"chunked\r\n\r\n")


# ---------------------------------------------------------------------------- early hints

LINKS = [b"</app.css>; rel=preload; as=style", b"</app.js>; rel=preload; as=script"]


def test_early_hints_go_out_as_a_103_before_the_head() -> None:
    h, cycle = served()
    start(h, cycle, [(b"content-length", b"2")])
    send(h, cycle, "early_hint", links=LINKS)
    assert h.take_sent() == (
        b"HTTP/1.1 103 Early Hints\r\n"
        b"Link: </app.css>; rel=preload; as=style\r\n"
        b"Link: </app.js>; rel=preload; as=script\r\n\r\n"
    )
    send(h, cycle, "early_hint", links=LINKS[:1])
    send(h, cycle, "body", body=b"ok")
    response = parse_response(h.sent, eof=False)
    assert response.informational == [103, 103]
    assert response.status == 200 and response.body == b"ok"


def test_early_hints_after_the_head_is_written_are_ignored() -> None:
    h, cycle = served()
    start(h, cycle)
    send(h, cycle, "body", body=b"a", more_body=True)
    h.take_sent()
    send(h, cycle, "early_hint", links=LINKS)
    assert h.take_sent() == b""
    send(h, cycle, "body", body=b"b")
    assert completions(h)[0].complete


def test_early_hints_before_the_start_are_out_of_order() -> None:
    h, cycle = served()
    with pytest.raises(ASGIProtocolError, match="out of order"):
        send(h, cycle, "early_hint", links=LINKS)
    assert h.take_sent() == b""


def test_early_hints_are_never_sent_to_an_http_10_client() -> None:
    h, cycle = served(version="1.0")
    start(h, cycle)
    with pytest.raises(ASGIProtocolError, match="need their extension in scope"):
        send(h, cycle, "early_hint", links=LINKS)
    assert h.take_sent() == b""


def test_early_hints_after_a_100_continue() -> None:
    h = Harness()
    h.feed(
        request(
            "POST",
            headers=[("Host", "a"), ("Expect", "100-continue"), ("Content-Length", "3")],
        )
    )
    cycle = h.cycle()
    assert h.message_for_app(cycle) is None  # asking for the body sends the 100
    assert h.take_sent() == b"HTTP/1.1 100 Continue\r\n\r\n"
    h.feed(b"abc")
    assert h.read_request(cycle)[-1]["body"] == b"abc"
    start(h, cycle)
    send(h, cycle, "early_hint", links=LINKS[:1])
    assert h.take_sent() == (
        b"HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload; as=style\r\n\r\n"
    )
    send(h, cycle, "body", body=b"ok")
    response = parse_response(h.sent, "POST", eof=False)
    assert response.informational == [100, 103] and response.body == b"ok"


def test_a_malformed_link_is_refused() -> None:
    h, cycle = served()
    start(h, cycle)
    with pytest.raises(ASGIProtocolError, match="malformed Link"):
        send(h, cycle, "early_hint", links=[b"</a>\r\nset-cookie: x=1"])
    assert h.take_sent() == b""


# ------------------------------------------------------------------------- file bodies


def test_pathsend_asks_the_driver_to_open_the_path() -> None:
    h, cycle = served()
    h.answer_files = False
    start(h, cycle)
    send(h, cycle, "pathsend", path=PATH)
    [event] = h.of_type(OpenFile)
    assert event == OpenFile(cycle=cycle, path=PATH, file=None, offset=None, count=None)
    assert h.take_sent() == b""  # nothing is written before the driver has the file


def test_zerocopysend_asks_the_driver_for_the_apps_file() -> None:
    h, cycle = served()
    h.answer_files = False
    start(h, cycle)
    file = FakeFile(CONTENT)
    send(h, cycle, "zerocopysend", file=file, offset=3, count=7, more_body=True)
    [event] = h.of_type(OpenFile)
    assert event == OpenFile(cycle=cycle, path=None, file=file, offset=3, count=7)


def test_file_opened_writes_the_head_then_asks_for_the_bytes() -> None:
    h, cycle = served()
    h.answer_files = False
    start(h, cycle, [(b"content-length", b"%d" % len(CONTENT))])
    send(h, cycle, "pathsend", path=PATH)
    h.protocol.file_opened(cycle, 7, 0, len(CONTENT), h.now)
    head = h.protocol.data_to_send()
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    assert h.protocol.events_received() == [SendFile(cycle=cycle, fd=7, offset=0, count=200)]
    assert cycle.response is ResponseState.STREAMING
    h.protocol.file_sent(cycle, h.now)
    assert h.protocol.data_to_send() == b""  # Content-Length framing: nothing around it
    [done] = [e for e in h.protocol.events_received() if isinstance(e, ResponseCompleted)]
    assert done.complete and done.body_bytes == len(CONTENT)


def test_a_chunked_file_is_one_chunk() -> None:
    h, cycle = served()
    h.answer_files = False
    start(h, cycle)
    send(h, cycle, "pathsend", path=PATH)
    h.take_sent()
    h.protocol.file_opened(cycle, 7, 0, 200, h.now)
    assert h.protocol.data_to_send().endswith(b"chunked\r\n\r\nc8\r\n")
    h.protocol.events_received()
    h.protocol.file_sent(cycle, h.now)
    assert h.protocol.data_to_send() == b"\r\n0\r\n\r\n"


def test_pathsend_through_a_driver_sends_the_file() -> None:
    h, cycle = served()
    start(h, cycle, [(b"content-type", b"text/css")])
    send(h, cycle, "pathsend", path=PATH)
    response = parse_response(h.take_sent(), eof=False)
    assert response.body == CONTENT
    [done] = completions(h)
    assert done.complete and done.body_bytes == len(CONTENT)


def test_pathsend_to_http_10_is_delimited_by_the_close() -> None:
    h, cycle = served(version="1.0")
    start(h, cycle)
    send(h, cycle, "pathsend", path=PATH)
    sent = h.take_sent()
    assert sent.endswith(b"\r\n\r\n" + CONTENT)
    assert SEND_EOF in h.events


@pytest.mark.parametrize("declared", [len(CONTENT) - 1, len(CONTENT) + 1])
def test_a_file_of_the_wrong_length_is_a_content_length_mismatch(declared: int) -> None:
    h, cycle = served()
    start(h, cycle, [(b"content-length", b"%d" % declared)])
    with pytest.raises(ContentLengthMismatch, match="Content-Length"):
        send(h, cycle, "pathsend", path=PATH)
    assert h.of_type(SendFile) == []
    assert CONTENT not in h.sent
    [done] = completions(h)
    assert not done.complete
    assert SEND_EOF in h.events


def test_zerocopysend_past_the_declared_length_is_a_mismatch() -> None:
    h, cycle = served()
    start(h, cycle, [(b"content-length", b"4")])
    send(h, cycle, "body", body=b"ab", more_body=True)
    with pytest.raises(ContentLengthMismatch, match="more body than the declared"):
        send(h, cycle, "zerocopysend", file=FakeFile(b"xyz"), more_body=True)
    assert h.of_type(SendFile) == []


def test_pathsend_on_head_sends_no_file() -> None:
    h, cycle = served(method="HEAD")
    start(h, cycle, [(b"content-length", b"%d" % len(CONTENT))])
    send(h, cycle, "pathsend", path=PATH)
    assert len(h.of_type(OpenFile)) == 1
    assert h.of_type(SendFile) == []
    response = parse_response(h.take_sent(), "HEAD", eof=False)
    assert response.body == b"" and response.get(b"content-length") == b"200"
    assert completions(h)[0].complete


def test_an_empty_file_needs_no_sendfile() -> None:
    h, cycle = served()
    h.files[PATH] = b""
    start(h, cycle)
    send(h, cycle, "pathsend", path=PATH)
    assert h.of_type(SendFile) == []
    assert parse_response(h.take_sent(), eof=False).body == b""
    assert completions(h)[0].complete


def test_a_file_that_fails_to_open_leaves_the_response_as_it_was() -> None:
    h, cycle = served()
    start(h, cycle)
    with pytest.raises(FileNotFoundError):
        send(h, cycle, "pathsend", path="/srv/missing")
    assert h.take_sent() == b""
    assert cycle.response is ResponseState.STARTED and cycle.file is None
    h.app_finished(cycle, FileNotFoundError())  # the app let it propagate: a clean 500
    assert parse_response(h.take_sent()).status == 500


def test_after_a_failed_open_the_app_may_still_send_a_body() -> None:
    h, cycle = served()
    start(h, cycle)
    with pytest.raises(FileNotFoundError):
        send(h, cycle, "pathsend", path="/srv/missing")
    send(h, cycle, "pathsend", path=PATH)
    assert parse_response(h.take_sent(), eof=False).body == CONTENT


def test_file_sent_completes_the_response_and_keep_alive_continues() -> None:
    h, cycle = served()
    h.feed(request(target="/next"))  # pipelined behind the first
    start(h, cycle)
    send(h, cycle, "pathsend", path=PATH)
    assert len(h.start_apps()) == 2
    h.respond(h.cycle(), body=b"next")
    first, second = parse_responses(h.take_sent(), ["GET", "GET"], eof=False)
    assert first.body == CONTENT and second.body == b"next"
    assert SEND_EOF not in h.events


def test_pathsend_after_a_body_message_is_refused() -> None:
    h, cycle = served()
    start(h, cycle)
    send(h, cycle, "body", body=b"a", more_body=True)
    with pytest.raises(ASGIProtocolError, match=r"cannot be mixed with http\.response\.body"):
        send(h, cycle, "pathsend", path=PATH)
    assert h.of_type(OpenFile) == []


def test_pathsend_twice_is_refused() -> None:
    h, cycle = served()
    start(h, cycle)
    send(h, cycle, "pathsend", path=PATH)
    with pytest.raises(ASGIProtocolError, match="just one time"):
        send(h, cycle, "pathsend", path=PATH)
    assert len(h.of_type(OpenFile)) == 1


def test_a_relative_path_is_refused() -> None:
    h, cycle = served()
    start(h, cycle)
    with pytest.raises(ASGIProtocolError, match="must be an absolute path"):
        send(h, cycle, "pathsend", path="static/app.css")
    assert h.of_type(OpenFile) == []


def test_zerocopysend_mixes_with_body_messages() -> None:
    h, cycle = served()
    file = FakeFile(b"0123456789")
    start(h, cycle)
    send(h, cycle, "body", body=b"<", more_body=True)
    send(h, cycle, "zerocopysend", file=file, count=4, more_body=True)  # from the position
    send(h, cycle, "zerocopysend", file=file, offset=8, more_body=True)  # to the end
    send(h, cycle, "zerocopysend", file=file, more_body=True)  # the position moved past 4
    send(h, cycle, "body", body=b">")
    assert parse_response(h.take_sent(), eof=False).body == b"<0123" + b"89" + b"456789>"
    [done] = completions(h)
    assert done.complete and done.body_bytes == 14


def test_a_negative_offset_is_refused() -> None:
    h, cycle = served()
    start(h, cycle)
    with pytest.raises(ASGIProtocolError, match="'offset' must not be negative"):
        send(h, cycle, "zerocopysend", file=FakeFile(b"x"), offset=-1)


def test_a_send_while_a_file_is_pending_is_refused() -> None:
    h, cycle = served()
    h.answer_files = False
    start(h, cycle)
    send(h, cycle, "zerocopysend", file=FakeFile(b"x"), more_body=True)
    with pytest.raises(ASGIProtocolError, match="still being sent"):
        send(h, cycle, "body", body=b"y")


def test_a_client_that_leaves_mid_file_ends_the_cycle() -> None:
    h, cycle = served()
    h.answer_files = False
    start(h, cycle)
    send(h, cycle, "pathsend", path=PATH)
    h.protocol.file_opened(cycle, 7, 0, 200, h.now)
    h.eof()  # a write failed: the driver reports the client gone
    [done] = completions(h)
    assert not done.complete
    with pytest.raises(ClientDisconnected):
        h.protocol.file_sent(cycle, h.now)
    assert h.message_for_app(cycle) == {"type": "http.disconnect"}
