"""WebSocket over real sockets, run against both drivers, with the websockets client library,
a raw wsproto client, and a Starlette endpoint."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, TextMessage
from wsproto.utilities import generate_accept_token

from .conftest import wait_for

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # the RFC 6455 §1.3 example nonce


def handshake(path: str = "/ws", extra: bytes = b"") -> bytes:
    return (
        b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + KEY + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\n" + extra + b"\r\n"
    )


disconnects: list[dict[str, Any]] = []


async def echo(scope: Any, receive: Any, send: Any) -> None:
    """Echoes messages; the path picks a behaviour; records its disconnect message."""
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    path = scope["path"]
    if path == "/refuse":
        await send({"type": "websocket.close"})
        return
    if path == "/deny":
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"go away", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"!"})
        return
    if path == "/raise":
        raise RuntimeError("before accept")
    offered = scope["subprotocols"]
    await send(
        {
            "type": "websocket.accept",
            "subprotocol": offered[-1] if offered else None,
            "headers": [(b"x-accepted", b"yes")],
        }
    )
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            disconnects.append(message)
            return
        if message.get("text") == "close please":
            await send({"type": "websocket.close", "code": 4002, "reason": "as asked"})
            continue
        if message.get("text") == "raise":
            raise RuntimeError("after accept")
        await send(
            {"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")}
        )


def ws_url(server: Any, path: str = "/ws") -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def test_echo_with_the_websockets_client(serve: Any) -> None:
    with (
        serve(echo) as server,
        connect(ws_url(server, "/chat?room=1"), subprotocols=["a", "b"]) as ws,
    ):
        assert ws.subprotocol == "b"
        assert ws.response.headers["x-accepted"] == "yes"
        ws.send("hello")
        assert ws.recv() == "hello"
        ws.send(b"\x00\xff" * 50_000)
        assert ws.recv() == b"\x00\xff" * 50_000
        ws.send("")
        assert ws.recv() == ""
        ws.send(b"")
        assert ws.recv() == b""


def test_permessage_deflate_is_negotiated(serve: Any) -> None:
    with serve(echo) as server, connect(ws_url(server)) as ws:
        assert "permessage-deflate" in ws.response.headers["sec-websocket-extensions"]
        ws.send("x" * 100_000)
        assert ws.recv() == "x" * 100_000
    with serve(echo, ws_per_message_deflate=False) as server, connect(ws_url(server)) as ws:
        assert "sec-websocket-extensions" not in ws.response.headers


def test_close_codes_both_ways(serve: Any) -> None:
    disconnects.clear()
    with serve(echo) as server:
        with connect(ws_url(server)) as ws:
            ws.send("close please")
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv()
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4002, "as asked")
        with connect(ws_url(server)) as ws:
            ws.close(code=4100, reason="client leaves")
        with connect(ws_url(server)) as ws:
            ws.send("raise")
            with pytest.raises(ConnectionClosed) as failed:
                ws.recv()
            assert failed.value.rcvd.code == 1011
        wait_for(lambda: len(disconnects) >= 2)
    assert {"type": "websocket.disconnect", "code": 4100, "reason": "client leaves"} in disconnects


def test_refusals(serve: Any) -> None:
    with serve(echo) as server:
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url(server, "/refuse"))
        assert refused.value.response.status_code == 403
        with pytest.raises(InvalidStatus) as denied:
            connect(ws_url(server, "/deny"))
        assert denied.value.response.status_code == 401
        assert denied.value.response.body == b"go away!"
        with pytest.raises(InvalidStatus) as crashed:
            connect(ws_url(server, "/raise"))
        assert crashed.value.response.status_code == 500
        upgrade = {"upgrade": "websocket", "connection": "upgrade"}
        no_version = httpx.get(server.url + "/ws", headers=upgrade)
        assert no_version.status_code == 426
        assert no_version.headers["sec-websocket-version"] == "13"
        no_key = httpx.get(server.url + "/ws", headers={**upgrade, "sec-websocket-version": "13"})
        assert no_key.status_code == 400
        assert "Sec-WebSocket-Key" in no_key.text


def test_ws_none_serves_upgrades_as_http(serve: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["type"].encode()})

    with (
        serve(app, ws="none") as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        sock.sendall(handshake())
        data = b""
        while not data.endswith(b"0\r\n\r\n"):
            data += sock.recv(4096)
    assert data.startswith(b"HTTP/1.1 200 ")
    assert b"\r\n4\r\nhttp\r\n" in data


def test_bytes_right_behind_the_handshake_are_not_lost(serve: Any) -> None:
    client = Connection(ConnectionType.CLIENT)
    with (
        serve(echo) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        sock.sendall(handshake() + client.send(TextMessage(data="early bird")))
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(4096)
        head, _, rest = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"\r\nsec-websocket-accept: " + generate_accept_token(KEY) + b"\r\n" in head
        client.receive_data(rest)
        received: list[Any] = list(client.events())
        while not received:
            client.receive_data(sock.recv(4096))
            received = list(client.events())
        assert isinstance(received[0], TextMessage)
        assert received[0].data == "early bird"
        sock.sendall(client.send(CloseConnection(code=1000)))
        while not any(isinstance(e, CloseConnection) for e in received):
            chunk = sock.recv(4096)
            assert chunk
            client.receive_data(chunk)
            received += list(client.events())


def test_message_over_max_size_closes_with_1009(serve: Any) -> None:
    with serve(echo, ws_max_size=1000) as server, connect(ws_url(server), compression=None) as ws:
        ws.send("x" * 1000)
        assert ws.recv() == "x" * 1000
        ws.send(b"y" * 1001)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
        assert closed.value.rcvd.code == 1009


def test_reading_resumes_after_a_message_that_paused_it(serve: Any) -> None:
    # Over the 64 KiB body buffer, the message that completes wakes the waiting receive() and
    # pauses reading at once; the app's taking it resumes reading, whatever the order in which
    # the driver acts on the two.
    big = b"z" * (200 * 1024)
    with serve(echo) as server, connect(ws_url(server), compression=None) as ws:
        for _ in range(3):
            ws.send(big)
            assert ws.recv(timeout=10) == big
            ws.send("after")
            assert ws.recv(timeout=10) == "after"


def test_send_waits_while_the_client_does_not_read(serve: Any) -> None:
    sent = [0]
    total = 2048
    chunk = b"m" * 32768

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        for _ in range(total):
            await send({"type": "websocket.send", "bytes": chunk})
            sent[0] += 1
        await send({"type": "websocket.close"})

    with (
        serve(app, ws_per_message_deflate=False) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(handshake())
        previous = -1
        deadline = time.monotonic() + 10
        while sent[0] != previous:  # wait until the app stops making progress
            previous = sent[0]
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert sent[0] < total // 4
        client = Connection(ConnectionType.CLIENT)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        client.receive_data(data.partition(b"\r\n\r\n")[2])
        messages = 0
        closed = False
        while not closed:
            for event in client.events():
                if isinstance(event, BytesMessage) and event.message_finished:
                    messages += 1
                elif isinstance(event, CloseConnection):
                    closed = True
            if not closed:
                chunk_in = sock.recv(1 << 20)
                assert chunk_in
                client.receive_data(chunk_in)
    assert messages == total


def test_an_app_that_does_not_receive_stops_the_reading(serve: Any) -> None:
    release = threading.Event()
    received = [0]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while not release.is_set():
            import asyncio

            await asyncio.sleep(0.01)
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            received[0] += len(message["bytes"])

    client = Connection(ConnectionType.CLIENT)
    frame = client.send(BytesMessage(data=b"u" * 65536))
    with (
        serve(app, ws_per_message_deflate=False) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        sock.sendall(handshake())
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(4096)
        sock.setblocking(False)
        frames = 0
        pending = b""
        stalled_since = None
        deadline = time.monotonic() + 10
        while frames < 1000:
            assert time.monotonic() < deadline
            if not pending:
                pending = frame
            try:
                n = sock.send(pending)
                pending = pending[n:]
                if not pending:
                    frames += 1
                stalled_since = None
            except BlockingIOError:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 0.5:
                    break
                time.sleep(0.01)
        assert frames < 250, "the server kept reading for an app that does not receive"
        release.set()
        sock.setblocking(True)
        sock.settimeout(10)
        sock.sendall(pending)
        frames += 1 if pending else 0
        wait_for(lambda: received[0] >= (frames - 1) * 65536)


async def starlette_endpoint(websocket: WebSocket) -> None:
    await websocket.accept(subprotocol="chat")
    try:
        while True:
            data = await websocket.receive_json()
            await websocket.send_json({"echo": data, "path": websocket.url.path})
    except WebSocketDisconnect:
        pass


starlette_app = Starlette(routes=[WebSocketRoute("/live", starlette_endpoint)])


def test_starlette_websocket_endpoint(serve: Any) -> None:
    import json

    with (
        serve(starlette_app) as server,
        connect(ws_url(server, "/live"), subprotocols=["chat"]) as ws,
    ):
        assert ws.subprotocol == "chat"
        ws.send(json.dumps({"n": 1}))
        assert json.loads(ws.recv()) == {"echo": {"n": 1}, "path": "/live"}
