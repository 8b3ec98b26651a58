"""sansio_asgi.testing: the asyncio driver's connection on an in-memory transport.

The raw tests write bytes into a ``MemoryStream`` and read the server's bytes back; the
``Transport`` tests put httpx (httpcore, a real HTTP client) and httpx-ws on top. No sockets,
no threads: each test runs one event loop with ``asyncio.run``, bounded by ``DEADLINE_S``."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import h11
import httpx
import httpx_ws
import pytest
from fastapi import FastAPI, WebSocket
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.websockets import WebSocketDisconnect

from sansio_asgi.core import ClientDisconnected, ProtocolSettings
from sansio_asgi.core.events import AppMisbehaved, Event, ResponseCompleted
from sansio_asgi.testing import LifespanFailed, MemoryServer, MemoryStream, Transport

DEADLINE_S = 10.0


def run(main: Callable[[], Awaitable[Any]]) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(main(), DEADLINE_S)

    return asyncio.run(bounded())


async def turns(n: int = 50) -> None:
    """Let the loop run ``n`` turns: every callback and task that can go on, goes on."""
    for _ in range(n):
        await asyncio.sleep(0)


def parse_responses(data: bytes, methods: list[bytes] | None = None) -> list[dict[str, Any]]:
    """The complete responses at the start of ``data`` (to requests made with ``methods``,
    GET by default), parsed by h11 as a client would: one fresh client per response, since h11
    does not pipeline."""
    responses: list[dict[str, Any]] = []
    methods = methods or []
    while data:
        method = methods[len(responses)] if len(responses) < len(methods) else b"GET"
        client = h11.Connection(h11.CLIENT)
        client.send(h11.Request(method=method, target="/", headers=[("Host", "testserver")]))
        client.send(h11.EndOfMessage())
        client.receive_data(data)
        current: dict[str, Any] = {}
        while True:
            event = client.next_event()
            if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
                return responses
            if isinstance(event, h11.Response):
                headers = {name: value for name, value in event.headers}
                current = {"status": event.status_code, "headers": headers, "body": b""}
            elif isinstance(event, h11.Data):
                current["body"] += event.data
            elif isinstance(event, h11.EndOfMessage):
                responses.append(current)
                data = client.trailing_data[0]
                break
    return responses


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the method, path and body it read."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    text = f"{scope['method']} {scope['path']} {body.decode()}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": text})


GET = b"GET /one HTTP/1.1\r\nHost: testserver\r\n\r\n"
POST = b"POST /two HTTP/1.1\r\nHost: testserver\r\nContent-Length: 5\r\n\r\nhello"


async def read_response(stream: MemoryStream) -> bytes:
    """Bytes up to the end of one response to GET with a chunked or sized body."""
    data = b""
    while True:
        data += await stream.read()
        if parse_responses(data):
            return data


# ---------------------------------------------------------------------- raw bytes


def test_keep_alive_serves_requests_one_after_another() -> None:
    async def main() -> None:
        async with MemoryServer(echo_app) as server:
            stream = await server.connect()
            for path in ("/a", "/b", "/c"):
                await stream.write(f"GET {path} HTTP/1.1\r\nHost: testserver\r\n\r\n".encode())
                (response,) = parse_responses(await read_response(stream))
                assert response["status"] == 200
                assert response["body"] == f"GET {path} ".encode()
            assert len(server.driver.connections) == 1
            assert not stream.server_closed

    run(main)


def test_the_server_adds_date_and_server_headers() -> None:
    async def main() -> None:
        async with MemoryServer(echo_app) as server:
            stream = await server.connect()
            await stream.write(GET)
            (response,) = parse_responses(await read_response(stream))
            assert response["headers"][b"server"] == b"sansio-asgi"
            assert response["headers"][b"date"].endswith(b" GMT")

    run(main)


def test_pipelined_requests_are_answered_in_order() -> None:
    async def main() -> None:
        async with MemoryServer(echo_app) as server:
            stream = await server.connect()
            await stream.write(GET + POST + GET)
            data = b""
            while len(responses := parse_responses(data, [b"GET", b"POST", b"GET"])) < 3:
                data += await stream.read()
            assert [r["body"] for r in responses] == [
                b"GET /one ",
                b"POST /two hello",
                b"GET /one ",
            ]

    run(main)


def test_a_malformed_request_gets_400_and_the_connection_closes() -> None:
    async def main() -> None:
        async with MemoryServer(echo_app) as server:
            stream = await server.connect()
            await stream.write(b"GET / HTTP/1.1\r\nHost: testserver\r\nBad Header\r\n\r\n")
            data = await stream.read_all()  # ends: the server closed its side
            assert data.startswith(b"HTTP/1.1 400 ")
            assert b"connection: close\r\n" in data
            await stream.write_eof()  # the server lingers until the client is done
            while not stream.server_closed:
                await asyncio.sleep(0)
            assert not server.driver.connections

    run(main)


def test_eof_after_a_request_is_answered_then_closed() -> None:
    async def main() -> None:
        async with MemoryServer(echo_app) as server:
            stream = await server.connect()
            await stream.write(POST)
            await stream.write_eof()
            (response,) = parse_responses(await stream.read_all(), [b"POST"])
            assert response["body"] == b"POST /two hello"
            while not stream.server_closed:
                await asyncio.sleep(0)

    run(main)


def test_eof_in_the_middle_of_a_head_closes_without_a_response() -> None:
    async def main() -> None:
        async with MemoryServer(echo_app) as server:
            stream = await server.connect()
            await stream.write(b"GET / HTTP/1.1\r\nHost: tes")
            await stream.write_eof()
            assert await stream.read_all() == b""

    run(main)


def test_eof_in_the_middle_of_a_body_is_http_disconnect_for_the_app() -> None:
    received: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            received.append(message)
            if message["type"] == "http.disconnect":
                return

    async def main() -> None:
        async with MemoryServer(app, lifespan="off") as server:
            stream = await server.connect()
            await stream.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
            await stream.write_eof()
            assert await stream.read_all() == b""

    run(main)
    assert received[0] == {"type": "http.request", "body": b"12345", "more_body": True}
    assert received[-1] == {"type": "http.disconnect"}


def test_an_idle_connection_closes_after_the_keep_alive_timeout() -> None:
    settings = ProtocolSettings(keep_alive_timeout_s=0.05)

    async def main() -> None:
        async with MemoryServer(echo_app, settings=settings) as server:
            stream = await server.connect()
            await stream.write(GET)
            data = await stream.read_all()  # the loop's own timer ends it
            assert parse_responses(data)[0]["status"] == 200

    run(main)


def test_write_back_pressure_pauses_the_app() -> None:
    chunk = b"x" * 16384
    sent: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for n in range(20):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent.append(n)
        await send({"type": "http.response.body", "body": b""})

    async def main() -> None:
        async with MemoryServer(app, lifespan="off") as server:
            stream = await server.connect()
            await stream.write(GET)
            await turns()
            # Past the 64 KiB high-water mark of unread bytes, the app's send() waits.
            (connection,) = server.driver.connections
            assert connection.write_paused
            # The fourth chunk takes the unread bytes past 64 KiB: its send() is the one held.
            assert sent == [0, 1, 2]
            held = len(sent)
            await turns()
            assert len(sent) == held
            data = await stream.read(70000)
            while len(sent) < 20:
                data += await stream.read(70000)
            while not parse_responses(data):
                data += await stream.read()
            assert parse_responses(data)[0]["body"] == chunk * 20

    run(main)


def test_a_slow_app_stops_the_client_writing() -> None:
    async def main() -> None:
        go = asyncio.Event()

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await go.wait()
            await echo_app(scope, receive, send)

        async with MemoryServer(app, lifespan="off") as server:
            stream = await server.connect()
            body = b"y" * (1024 * 1024)
            head = f"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
            upload = asyncio.ensure_future(stream.write(head.encode() + body))
            await turns()
            # The core stopped reading above its body buffer; the client's socket buffer is
            # full, so its write waits.
            assert not upload.done()
            go.set()
            await upload
            (response,) = parse_responses(await read_response(stream), [b"POST"])
            assert response["body"] == b"POST /up " + body

    run(main)


def test_closing_with_a_response_unread_resets_and_the_app_learns_it() -> None:
    outcome: list[BaseException] = []

    async def main() -> None:
        started = asyncio.Event()

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            started.set()
            try:
                while True:
                    await send(
                        {"type": "http.response.body", "body": b"z" * 1000, "more_body": True}
                    )
            except ClientDisconnected as exc:
                outcome.append(exc)
                raise

        async with MemoryServer(app, lifespan="off") as server:
            stream = await server.connect()
            await stream.write(GET)
            await started.wait()
            await stream.aclose()
            while server.driver.connections:
                await asyncio.sleep(0)
            await turns()

    run(main)
    assert outcome and isinstance(outcome[0], ClientDisconnected)


def test_a_write_after_the_server_closed_is_a_reset() -> None:
    settings = ProtocolSettings(linger_timeout_s=0.01)  # no waiting for the client's EOF

    async def main() -> None:
        async with MemoryServer(echo_app, settings=settings) as server:
            stream = await server.connect()
            await stream.write(b"GET / HTTP/1.0\r\n\r\n")  # HTTP/1.0: close after the response
            await stream.read_all()
            while not stream.server_closed:
                await asyncio.sleep(0)
            with pytest.raises(ConnectionResetError):
                await stream.write(GET)

    run(main)


def test_each_connection_has_its_own_client_port_and_https_sets_the_scheme() -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scopes.append(scope)
        await echo_app(scope, receive, send)

    async def main() -> None:
        async with MemoryServer(app, client=("10.0.0.1", 40000), lifespan="off") as server:
            for scheme in ("http", "https"):
                stream = await server.connect(scheme=scheme)
                await stream.write(GET)
                await read_response(stream)

    run(main)
    assert [s["client"] for s in scopes] == [("10.0.0.1", 40000), ("10.0.0.1", 40001)]
    assert [s["scheme"] for s in scopes] == ["http", "https"]
    assert scopes[0]["server"] == ("testserver", 80)


def test_reports_reach_the_given_reporter() -> None:
    events: list[Event] = []

    async def bad_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        return  # without a response: the server answers 500 and says so

    async def main() -> None:
        async with MemoryServer(bad_app, lifespan="off", report=events.append) as server:
            stream = await server.connect()
            await stream.write(GET)
            (response,) = parse_responses(await read_response(stream))
            assert response["status"] == 500

    run(main)
    assert any(isinstance(e, ResponseCompleted) and e.status == 500 for e in events), events
    assert any(isinstance(e, AppMisbehaved) for e in events), events


# ---------------------------------------------------------------------- lifespan


def lifespan_app(fail: bool = False) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if fail:
                        await send({"type": "lifespan.startup.failed", "message": "no db"})
                        return
                    scope["state"]["db"] = "ready"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    scope["state"]["db"] = "closed"
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = scope["state"]["db"].encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


def test_lifespan_state_reaches_every_scope() -> None:
    async def main() -> MemoryServer:
        async with MemoryServer(lifespan_app()) as server:
            stream = await server.connect()
            await stream.write(GET)
            (response,) = parse_responses(await read_response(stream))
            assert response["body"] == b"ready"
        return server

    server = run(main)
    assert server.state == {"db": "closed"}  # the shutdown ran


def test_a_failed_startup_raises() -> None:
    async def main() -> None:
        with pytest.raises(LifespanFailed, match="no db"):
            async with MemoryServer(lifespan_app(fail=True)):
                pass

    run(main)


def test_lifespan_on_needs_an_app_that_supports_it() -> None:
    async def main() -> None:
        async with MemoryServer(echo_app, lifespan="auto") as server:  # unsupported: goes on
            stream = await server.connect()
            await stream.write(GET)
            await read_response(stream)
        with pytest.raises(LifespanFailed):
            await MemoryServer(echo_app, lifespan="on").startup()

    run(main)


# ---------------------------------------------------------------------- httpx


def client_for(app: Any, **options: Any) -> Any:
    return httpx.AsyncClient(transport=Transport(app, **options), base_url="http://testserver")


def scope_app(seen: list[dict[str, Any]]) -> Any:
    """Answers with its body; keeps each scope."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append(scope)
        await echo_app(scope, receive, send)

    return app


def test_get_and_post_through_httpx() -> None:
    seen: list[dict[str, Any]] = []

    async def main() -> None:
        async with client_for(scope_app(seen)) as client:
            response = await client.get("/a?x=1", headers={"X-Custom": "v"})
            assert response.status_code == 200
            assert response.text == "GET /a "
            response = await client.post("/b", content=b"payload")
            assert response.text == "POST /b payload"
            response = await client.post("/c", json={"k": [1, 2]})
            assert response.text == 'POST /c {"k":[1,2]}'

    run(main)
    first = seen[0]
    assert first["query_string"] == b"x=1"
    assert (b"x-custom", b"v") in first["headers"]
    assert (b"host", b"testserver") in first["headers"]
    assert first["server"] == ("testserver", 80)
    assert first["http_version"] == "1.1"
    # httpcore keeps the connection alive: every request came on the first one.
    assert {scope["client"] for scope in seen} == {("127.0.0.1", 50000)}


def test_the_response_carries_what_the_server_adds() -> None:
    async def main() -> None:
        async with client_for(echo_app) as client:
            response = await client.get("/")
            assert response.headers["server"] == "sansio-asgi"
            assert response.headers["date"].endswith(" GMT")
            assert response.headers["transfer-encoding"] == "chunked"  # the core framed it
            assert response.http_version == "HTTP/1.1"

    run(main)


def test_head_gets_the_headers_without_the_body() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"5")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"hello"})

    async def main() -> None:
        async with client_for(app) as client:
            response = await client.head("/")
            assert response.headers["content-length"] == "5"
            assert response.content == b""
            # The server dropped the body: the next response on the same connection is whole.
            assert (await client.get("/")).content == b"hello"

    run(main)


def test_a_streamed_response_arrives_as_the_app_sends_it() -> None:
    async def main() -> None:
        step = asyncio.Event()

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"first", "more_body": True})
            await step.wait()
            await send({"type": "http.response.body", "body": b"second"})

        async with client_for(app) as client, client.stream("GET", "/") as response:
            parts = response.aiter_raw()
            assert await parts.__anext__() == b"first"  # before the app went on
            step.set()
            assert [part async for part in parts] == [b"second"]

    run(main)


def test_a_streamed_request_body_reaches_the_app_in_pieces() -> None:
    received: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            received.append(message)
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})

    async def upload() -> AsyncIterator[bytes]:
        for n in range(3):
            yield f"part{n};".encode()
            await turns()  # each piece its own read

    async def main() -> None:
        async with client_for(app) as client:
            response = await client.post("/", content=upload())
            assert response.status_code == 204

    run(main)
    assert b"".join(m.get("body", b"") for m in received) == b"part0;part1;part2;"
    assert len([m for m in received if m.get("body")]) == 3


def test_cookies_go_back_and_forth() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        response = PlainTextResponse(request.cookies.get("session", "none"))
        response.set_cookie("session", "abc")
        await response(scope, receive, send)

    async def main() -> None:
        async with client_for(app) as client:
            first = await client.get("/")
            assert first.text == "none"
            assert first.cookies["session"] == "abc"
            assert (await client.get("/")).text == "abc"

    run(main)


def test_an_app_exception_is_the_servers_500() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            raise RuntimeError("boom")

    async def main() -> None:
        async with client_for(app) as client:
            response = await client.get("/")
            assert response.status_code == 500
            assert response.headers["server"] == "sansio-asgi"
            assert response.headers["connection"] == "close"

    run(main)


def test_what_the_core_rejects_is_rejected() -> None:
    """An invalid header from the app is refused by the core (500); a request head past the
    server's limit gets its 431: the bytes went through the server, not around it."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"x-bad", b"line\r\nbreak")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"never"})

    settings = ProtocolSettings(max_header_bytes=1024)

    async def main() -> None:
        async with client_for(app, settings=settings) as client:
            response = await client.get("/")
            assert response.status_code == 500
            assert "x-bad" not in response.headers
            response = await client.get("/", headers={"x-big": "a" * 2000})
            assert response.status_code == 431

    run(main)


def test_client_root_path_https_and_http2_options() -> None:
    seen: list[dict[str, Any]] = []

    async def main() -> None:
        transport = Transport(scope_app(seen), client=("10.1.2.3", 1234), root_path="/api")
        async with httpx.AsyncClient(transport=transport, base_url="https://example.org") as c:
            assert (await c.get("/api/x")).status_code == 200
        async with client_for(scope_app(seen), http2=True) as client:
            response = await client.get("/h2")
            assert response.http_version == "HTTP/2"
            assert response.text == "GET /h2 "

    run(main)
    assert seen[0]["client"] == ("10.1.2.3", 1234)
    assert seen[0]["root_path"] == "/api"
    assert seen[0]["scheme"] == "https"
    assert seen[0]["server"] == ("example.org", 443)
    assert seen[1]["http_version"] == "2"


def test_a_connection_the_server_closed_is_not_reused() -> None:
    seen: list[dict[str, Any]] = []
    settings = ProtocolSettings(keep_alive_timeout_s=0.02)

    async def main() -> None:
        transport = Transport(scope_app(seen), settings=settings)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            assert (await c.get("/")).status_code == 200
            (stream,) = transport.server.streams
            while not stream.readable:  # the keep-alive timer ends the server's side
                await asyncio.sleep(0.01)
            assert (await c.get("/")).status_code == 200  # on a new connection, no error

    run(main)
    assert [scope["client"][1] for scope in seen] == [50000, 50001]


def test_a_read_timeout_is_httpx_read_timeout() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.Event().wait()

    async def main() -> None:
        async with client_for(app, lifespan="off") as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get("/", timeout=0.05)

    run(main)


# -- a FastAPI app: lifespan state, routes and a WebSocket

events: list[str] = []


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    events.append("startup")
    yield {"greeting": "hello from lifespan"}
    events.append("shutdown")


fastapi_app = FastAPI(lifespan=lifespan)


@fastapi_app.get("/state")
async def read_state(request: Request) -> dict[str, str]:
    return {"greeting": request.state.greeting}


@fastapi_app.get("/stream")
async def stream() -> StreamingResponse:
    async def numbers() -> AsyncIterator[bytes]:
        for n in range(5):
            yield f"{n}\n".encode()

    return StreamingResponse(numbers(), media_type="text/plain")


@fastapi_app.get("/fail")
async def fail() -> Response:
    raise ValueError("the handler failed")


@fastapi_app.websocket("/ws")
async def websocket_echo(websocket: WebSocket) -> None:
    if websocket.query_params.get("deny"):
        await websocket.close(code=1008)
        return
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") == "bye":
                await websocket.close(code=4000, reason="bye to you")
                return
            if message.get("text") is not None:
                await websocket.send_text("echo " + message["text"])
            else:
                await websocket.send_bytes(message["bytes"][::-1])
    except WebSocketDisconnect:
        pass


def test_fastapi_lifespan_state_routes_and_streaming() -> None:
    events.clear()

    async def main() -> None:
        async with client_for(fastapi_app, lifespan="on") as client:
            assert events == ["startup"]
            response = await client.get("/state")
            assert response.json() == {"greeting": "hello from lifespan"}
            response = await client.get("/stream")
            assert response.text == "0\n1\n2\n3\n4\n"
            assert (await client.get("/fail")).status_code == 500
            assert (await client.get("/missing")).status_code == 404

    run(main)
    assert events == ["startup", "shutdown"]


def test_fastapi_websocket_through_httpx_ws() -> None:
    async def main() -> None:
        async with client_for(fastapi_app) as client:
            async with httpx_ws.aconnect_ws("/ws", client) as ws:
                await ws.send_text("hi")
                assert await ws.receive_text() == "echo hi"
                await ws.send_bytes(b"\x00\x01\x02")
                assert await ws.receive_bytes() == b"\x02\x01\x00"
                await ws.send_text("bye")
                with pytest.raises(httpx_ws.WebSocketDisconnect) as closed:
                    await ws.receive_text()
                assert closed.value.code == 4000
                assert closed.value.reason == "bye to you"
            # The handshake was the server's: a close before accept is its 403.
            with pytest.raises(httpx_ws.WebSocketUpgradeError) as denied:
                async with httpx_ws.aconnect_ws("/ws?deny=1", client):
                    pass
            assert denied.value.response.status_code == 403

    run(main)


def test_transport_needs_httpx_says_so() -> None:
    code = (
        "import sys; sys.modules['httpx'] = None\n"
        "from sansio_asgi.testing import MemoryServer\n"
        "try:\n"
        "    from sansio_asgi.testing import Transport\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "sansio_asgi.testing.Transport needs httpx: pip install httpx"


def test_stopping_the_connections_closes_a_websocket_with_1012() -> None:
    async def main() -> None:
        transport = Transport(fastapi_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            async with httpx_ws.aconnect_ws("/ws", c) as ws:
                await ws.send_text("hi")
                assert await ws.receive_text() == "echo hi"
                stopping = asyncio.ensure_future(transport.server.close_connections(5.0))
                with pytest.raises(httpx_ws.WebSocketDisconnect) as closed:
                    await ws.receive_text()
                assert closed.value.code == 1012  # Service Restart
            assert await stopping  # the client answered the close: every connection closed

    run(main)


def test_concurrent_first_requests_wait_for_the_startup() -> None:
    async def main() -> None:
        started = asyncio.Event()
        go = asyncio.Event()

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "lifespan":
                await receive()
                started.set()
                await go.wait()
                scope["state"]["ready"] = "yes"
                await send({"type": "lifespan.startup.complete"})
                await receive()
                await send({"type": "lifespan.shutdown.complete"})
                return
            body = scope["state"]["ready"].encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})

        client = client_for(app)
        requests = [asyncio.ensure_future(client.get("/")) for _ in range(3)]
        await started.wait()
        await turns()
        assert not any(request.done() for request in requests)
        go.set()
        assert [(await request).text for request in requests] == ["yes"] * 3
        await client.aclose()

    run(main)


def test_twenty_websockets_at_once_through_one_client() -> None:
    # httpcore's pool allows 10 connections unless told otherwise: the 11th would wait for a
    # free one and fail with PoolTimeout.
    async def main() -> None:
        async with client_for(fastapi_app) as client, contextlib.AsyncExitStack() as stack:
            sockets = [
                await stack.enter_async_context(httpx_ws.aconnect_ws("/ws", client))
                for _ in range(20)
            ]
            for n, ws in enumerate(sockets):
                await ws.send_text(str(n))
            assert [await ws.receive_text() for ws in sockets] == [f"echo {n}" for n in range(20)]

    run(main)


def test_limits_reach_the_connection_pool() -> None:
    async def main() -> None:
        limits = httpx.Limits(max_connections=1)
        async with (
            client_for(fastapi_app, limits=limits) as client,
            client.stream("GET", "/stream") as first,
        ):
            assert first.status_code == 200  # holds the one connection until read
            with pytest.raises(httpx.PoolTimeout):
                await client.get("/state", timeout=httpx.Timeout(5.0, pool=0.05))

    run(main)


def test_a_connection_closed_on_both_sides_is_forgotten() -> None:
    async def main() -> None:
        transport = Transport(echo_app, lifespan="off")
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            most = 0
            for _ in range(300):
                response = await c.get("/", headers={"connection": "close"})
                assert response.status_code == 200
                most = max(most, len(transport.server.streams))
            assert most <= 2  # one in flight, one the server may not have let go of yet
        async with MemoryServer(echo_app, lifespan="off") as server:
            kept = await server.connect()
            await kept.write(GET)
            await read_response(kept)
            closed_by_server = await server.connect()
            await closed_by_server.write(GET.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
            await closed_by_server.read_all()
            while not closed_by_server.server_closed:
                await asyncio.sleep(0)
            assert server.streams == [kept, closed_by_server]  # the client has not closed yet
            await closed_by_server.aclose()
            assert server.streams == [kept]
            closed_by_client = await server.connect()
            await closed_by_client.aclose()  # then the server reads EOF and closes its side
            while closed_by_client in server.streams:
                await asyncio.sleep(0)
            assert server.streams == [kept]

    run(main)
