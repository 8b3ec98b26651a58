"""HTTP/1.1 behaviour over real sockets, run against both drivers."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from typing import Any

import h11
import httpx
import pytest
from websockets.sync.client import connect

from sansio_asgi import logs

from .conftest import read_response, read_until_close, wait_for


def parse_responses(
    data: bytes, methods: list[bytes] | None = None
) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    """Parse a stream of responses with an h11 client (one GET per response by default)."""
    results: list[tuple[int, dict[bytes, bytes], bytes]] = []
    conn = h11.Connection(h11.CLIENT)
    conn.receive_data(data)
    conn.receive_data(b"")
    for method in methods or [b"GET"] * 16:
        if conn.our_state is not h11.IDLE:
            break
        conn.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
        conn.send(h11.EndOfMessage())
        status, headers, body = 0, {}, b""
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Response):
                status, headers = event.status_code, dict(event.headers)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                results.append((status, headers, body))
                break
            else:
                return results
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            break
        conn.start_next_cycle()
    return results


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    """Echoes method, path, query and body; the client port shows connection reuse."""
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    text = (
        f"{scope['method']} {scope['path']} {scope['query_string'].decode()} {scope['client'][1]}"
    )
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"x-body-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": text.encode() + b"\n" + body})


def test_get_and_keep_alive(serve: Any) -> None:
    with serve(echo_app) as server, httpx.Client(base_url=server.url) as client:
        first = client.get("/a%20b?x=1")
        second = client.get("/again")
    assert first.status_code == 200
    assert first.text.startswith("GET /a b x=1 ")
    assert first.headers["server"] == "sansio-asgi"
    assert "date" in first.headers
    assert first.headers["transfer-encoding"] == "chunked"
    # Same client port: the second request reused the kept-alive connection.
    first_port = first.text.split("\n")[0].rsplit(" ", 1)[1]
    assert first_port == second.text.split("\n")[0].rsplit(" ", 1)[1]


def test_no_server_and_date_headers(serve: Any) -> None:
    with serve(echo_app, server_header=False, date_header=False) as server:
        response = httpx.get(server.url)
    assert "server" not in response.headers
    assert "date" not in response.headers


def test_post_bodies_content_length_and_chunked(serve: Any) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB

    def chunks() -> Any:
        for start in range(0, len(payload), 100_000):
            yield payload[start : start + 100_000]

    with serve(echo_app) as server, httpx.Client(base_url=server.url) as client:
        fixed = client.post("/fixed", content=payload)
        chunked = client.post("/chunked", content=chunks())
    for response in (fixed, chunked):
        assert response.status_code == 200
        assert response.headers["x-body-length"] == str(len(payload))
        assert response.content.split(b"\n", 1)[1] == payload


def test_pipelined_requests_answered_in_order(serve: Any) -> None:
    requests = (
        b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % n for n in range(3))
        + b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    with serve(echo_app) as server, server.connect() as sock:
        sock.sendall(requests)
        responses = parse_responses(read_until_close(sock))
    assert [body.split()[1] for _, _, body in responses] == [b"/0", b"/1", b"/2", b"/last"]


def test_request_after_connection_close_is_never_answered(serve: Any) -> None:
    requests = (
        b"GET /first HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    with serve(echo_app) as server, server.connect() as sock:
        sock.sendall(requests)
        data = read_until_close(sock)
    assert data.count(b"HTTP/1.1 200") == 1
    assert b"/second" not in data


def test_http_1_0_closes(serve: Any) -> None:
    with serve(echo_app) as server, server.connect() as sock:
        sock.sendall(b"GET /old HTTP/1.0\r\n\r\n")
        data = read_until_close(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    # No content-length from the app on HTTP/1.0: the body is delimited by the close.
    assert b"transfer-encoding" not in head.lower()
    assert b"content-length" not in head.lower()
    assert body.startswith(b"GET /old  ")
    assert body.endswith(b"\n")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NONSENSE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431),
    ],
)
def test_bad_requests_get_status_and_close(serve: Any, request_bytes: bytes, status: int) -> None:
    with serve(echo_app) as server, server.connect() as sock:
        sock.sendall(request_bytes)
        data = read_until_close(sock)
    assert data.startswith(b"HTTP/1.1 %d " % status)
    assert b"connection: close" in data.lower()


def test_error_body_says_what_was_wrong_without_quoting_the_request(serve: Any) -> None:
    with serve(echo_app) as server, server.connect() as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nXYZZY\n0\r\n\r\n"
        )
        data = read_until_close(sock)
    [(status, _, body)] = parse_responses(data, [b"POST"])
    assert status == 400
    assert body == b"Bad Request: malformed chunk size line\n"
    assert b"XYZZY" not in data


async def host_app(scope: Any, receive: Any, send: Any) -> None:
    """Answers with the scope's path and its Host header values."""
    hosts = b",".join(value for name, value in scope["headers"] if name == b"host")
    body = scope["path"].encode() + b" " + hosts
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def test_absolute_form_target_replaces_the_host(serve: Any) -> None:
    # RFC 9112 §3.2.2: the server "MUST ignore the received Host header field (if any) and
    # instead replace it with the host information of the request-target".
    with serve(host_app) as server, server.connect() as sock:
        sock.sendall(
            b"GET http://other.example:81/p HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /q HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        data = read_until_close(sock)
    bodies = [body for _, _, body in parse_responses(data)]
    assert bodies == [b"/p other.example:81", b"/q x"]


def test_empty_lines_before_a_request_line_are_ignored(serve: Any) -> None:
    # RFC 9112 §2.2: a server "SHOULD ignore at least one empty line (CRLF) received prior to
    # the request-line". Old clients send a CRLF after a POST body.
    with serve(host_app) as server, server.connect() as sock:
        sock.sendall(b"\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[1] == b"/a x"
        sock.sendall(b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi\r")
        assert read_response(sock)[1] == b"/b x"
        sock.sendall(b"\n\nGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = read_until_close(sock)
    assert [body for _, _, body in parse_responses(data)] == [b"/c x"]


def test_connection_that_sends_nothing_is_closed_silently(serve: Any) -> None:
    """Browsers open connections ahead of need: one that never carried a request is closed
    at --timeout-headers without a 408 (a partial head gets one: the test below)."""
    with serve(echo_app, timeout_headers=0.3) as server, server.connect() as sock:
        started = time.monotonic()
        data = read_until_close(sock)
    assert data == b""
    assert time.monotonic() - started < 5


def test_invalid_request_warnings_are_limited_and_summed_up_at_shutdown(
    serve: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "rejected_requests", logs.RejectedRequestLog())
    caplog.set_level(logging.INFO, logger="sansio_asgi.error")
    with serve(echo_app) as server:
        for _ in range(12):
            with server.connect() as sock:
                sock.sendall(b"NONSENSE\r\n\r\n")
                assert read_until_close(sock).startswith(b"HTTP/1.1 400 ")
    messages = [r.getMessage() for r in caplog.records if r.name == "sansio_asgi.error"]
    warnings = [m for m in messages if m.startswith("Invalid HTTP request")]
    assert len(warnings) == 10
    [summary] = [m for m in messages if "not logged" in m]
    assert summary.startswith("2 more invalid requests were not logged in the last ")
    assert messages.index(summary) < messages.index("Finished server process")


def test_slow_headers_are_cut_off(serve: Any) -> None:
    with serve(echo_app, timeout_headers=0.3) as server, server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finishes the head
        started = time.monotonic()
        data = read_until_close(sock)
    assert data.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 5


def test_idle_keep_alive_connection_closes(serve: Any) -> None:
    with serve(echo_app, timeout_keep_alive=0.2) as server, server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _ = read_response(sock)
        assert head.startswith(b"HTTP/1.1 200")
        # The server closes the idle connection: the next read sees the end of the stream.
        assert sock.recv(1) == b""


def test_head_has_no_body(serve: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]}
        )
        await send({"type": "http.response.body", "body": b"hello"})

    with serve(app) as server, server.connect() as sock:
        sock.sendall(
            b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        data = read_until_close(sock)
    head_response, get_response = parse_responses(data, [b"HEAD", b"GET"])
    assert head_response[1][b"content-length"] == b"5"
    assert head_response[2] == b""
    assert get_response[2] == b"hello"


def test_100_continue_only_when_the_app_reads(serve: Any) -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    with serve(echo_app) as server, server.connect() as sock:
        sock.sendall(head)
        interim = b""
        while b"\r\n\r\n" not in interim:
            interim += sock.recv(100)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(b"hello")
        _, body = read_response(sock)
    assert b"\nhello\r\n" in body

    async def refuses(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 413, "headers": [(b"content-length", b"0")]}
        )
        await send({"type": "http.response.body"})

    with serve(refuses) as server, server.connect() as sock:
        sock.sendall(head)
        data = read_until_close(sock)
    assert data.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in data
    assert b"connection: close" in data.lower()


def test_app_errors(serve: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/raise":
            raise RuntimeError("boom")
        if scope["path"] == "/return":
            return
        if scope["path"] == "/bad-header":
            await send({"type": "http.response.start", "status": 200, "headers": [("name", "str")]})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("after start")

    with serve(app) as server:
        for path in ("/raise", "/return", "/bad-header"):
            response = httpx.get(server.url + path)
            assert response.status_code == 500
            assert response.headers["connection"] == "close"
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(server.url + "/after-start")


def test_body_longer_than_content_length(serve: Any) -> None:
    errors: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"3")]}
        )
        try:
            await send({"type": "http.response.body", "body": b"abcdef"})
        except Exception as exc:
            errors.append(exc)

    with serve(app) as server, server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_until_close(sock)
    assert b"abc" not in data.split(b"\r\n\r\n", 1)[1]
    assert len(errors) == 1


def test_disconnect_reaches_the_app_and_send_raises_oserror(serve: Any) -> None:
    seen: list[Any] = []
    done = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()  # the request
        seen.append(await receive())  # waits until the client goes away
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        except OSError as exc:
            seen.append(exc)
        done.set()

    with serve(app) as server:
        sock = server.connect()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0)  # let the request go out before the close
        sock.close()
        wait_for(done.is_set)
    assert seen[0] == {"type": "http.disconnect"}
    assert isinstance(seen[1], OSError)


def test_slow_reader_makes_send_wait(serve: Any) -> None:
    """A client that does not read makes the app's send() wait: memory stays bounded."""
    chunk = b"x" * 65536
    total_chunks = 1024  # 64 MiB if nothing pushed back
    sent = [0]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(chunk) * total_chunks).encode())],
            }
        )
        for _ in range(total_chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent[0] += 1
        await send({"type": "http.response.body"})

    with serve(app) as server, server.connect() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        previous = -1
        deadline = time.monotonic() + 10
        while sent[0] != previous:  # wait until the app stops making progress
            previous = sent[0]
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert sent[0] < total_chunks // 4
        expected = len(chunk) * total_chunks
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            buffer += sock.recv(65536)
        received = len(buffer.split(b"\r\n\r\n", 1)[1])
        while received < expected:
            data = sock.recv(1 << 20)
            assert data
            received += len(data)
    assert sent[0] == total_chunks


def test_fast_upload_to_slow_app_stops_being_read(serve: Any, driver: str) -> None:
    release = threading.Event()
    received = [0]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while not release.is_set():
            await asyncio.sleep(0.01)
        more = True
        while more:
            message = await receive()
            received[0] += len(message.get("body", b""))
            more = message.get("more_body", False)
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})

    total = 64 * 1024 * 1024
    with serve(app) as server, server.connect() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)
        sock.setblocking(False)
        accepted = 0
        stalled_since = None
        block = b"y" * 65536
        deadline = time.monotonic() + 10
        while accepted < total:
            assert time.monotonic() < deadline
            try:
                accepted += sock.send(block[: total - accepted])
                stalled_since = None
            except BlockingIOError:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 0.5:
                    break
                time.sleep(0.01)
        assert accepted < total // 4, "the server kept reading for an app that does not receive"
        release.set()
        sock.setblocking(True)
        sock.settimeout(10)
        while accepted < total:
            accepted += sock.send(block[: total - accepted])
        _, body = read_response(sock)
    assert body == b"ok"
    assert received[0] == total


def test_client_reset_mid_response_is_not_an_app_error(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        # One write, then the half-close: the client's reset lands in between.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"z" * 1000})

    with serve(app) as server:
        for _ in range(100):
            sock = server.connect()
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert sock.recv(64)
            # Closing with unread data makes the kernel answer the next write with a reset,
            # which the server may first notice when it shuts down its write side.
            sock.close()
        response = httpx.get(server.url)  # the server is still fine
    assert response.status_code == 200
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_inspector_echoes_websocket_messages(serve: Any, caplog: pytest.LogCaptureFixture) -> None:
    with serve(None) as server:  # no app: the built-in inspector
        with connect(f"ws://127.0.0.1:{server.port}/", open_timeout=10) as ws:
            hello = json.loads(ws.recv(timeout=10))  # which exchange of its history this is
            ws.send("hello")
            assert ws.recv(timeout=10) == "hello"
            ws.send(b"\x00\xff")
            assert ws.recv(timeout=10) == b"\x00\xff"
            ws.send("")
            assert ws.recv(timeout=10) == ""
        page = httpx.get(server.url + "/")
    assert isinstance(hello["exchange"], str)  # "<pid>-<n>": unique across --workers
    assert page.status_code == 200
    assert "sansio-asgi inspector" in page.text
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_tcp_nodelay_on_accepted_connections(serve: Any) -> None:
    """Small writes go out at once: with Nagle's algorithm, each streamed chunk would wait
    for the client's delayed ACK (about 40 ms)."""
    with serve(echo_app) as server, server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        read_response(sock)
        driver = server.server._driver
        (connection,) = driver.connections
        accepted = getattr(connection, "sock", None) or connection.transport.get_extra_info(
            "socket"
        )
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_tcp_nodelay_on_a_listener_made_with_protocol_0(serve: Any) -> None:
    """gunicorn makes its listeners with ``socket.socket(AF_INET, SOCK_STREAM)``: protocol 0,
    inherited by the accepted sockets, which asyncio's transports then leave with Nagle on."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    with serve(echo_app, listener=listener) as server, server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        read_response(sock)
        (connection,) = server.server._driver.connections
        accepted = getattr(connection, "sock", None) or connection.transport.get_extra_info(
            "socket"
        )
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
