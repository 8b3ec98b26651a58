"""Minimal ASGI apps for the benchmark: the server, not the app, should dominate the profile.

- ``hello``: ``GET`` -> ``200 text/plain`` ``Hello, world!`` with a content-length.
- ``json``: a ~1 KiB ``application/json`` body, serialized on every request (as a JSON API
  does), with a content-length.
- ``echo``: reads the whole request body (the harness POSTs 64 KiB) and sends it back with a
  content-length.
- ``stream``: 1 MiB in 16 body messages of 64 KiB and no content-length (chunked transfer
  encoding on HTTP/1.1).
- ``ws``: a WebSocket echo (every text or binary message sent back as it came); a plain HTTP
  request gets ``hello``, so the harness can poll it like the others.

Every app answers ``lifespan`` so that every server starts them the same way. The Starlette
app lives in ``starlette_app.py``, so that this module imports without Starlette.
"""

from __future__ import annotations

import json as json_module
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

HELLO = b"Hello, world!"
TEXT_PLAIN = (b"content-type", b"text/plain; charset=utf-8")
APPLICATION_JSON = (b"content-type", b"application/json")
OCTET_STREAM = (b"content-type", b"application/octet-stream")
# Fifteen records of about 70 bytes each: a ~1 KiB JSON body, like a small API listing.
JSON_DOCUMENT = {
    "items": [
        {"id": i, "name": f"item-{i:04d}", "price": 10.5 + i, "tags": ["a", "b"], "ok": True}
        for i in range(15)
    ],
    "next": None,
}
STREAM_CHUNK = b"x" * (64 * 1024)
STREAM_CHUNKS = 16  # 16 x 64 KiB = 1 MiB


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _send_whole(send: Send, content_type: tuple[bytes, bytes], body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [content_type, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await _send_whole(send, TEXT_PLAIN, HELLO)


async def json(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    body = json_module.dumps(JSON_DOCUMENT, separators=(",", ":")).encode()
    await _send_whole(send, APPLICATION_JSON, body)


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    parts = []
    more_body = True
    while more_body:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        parts.append(message.get("body", b""))
        more_body = message.get("more_body", False)
    await _send_whole(send, OCTET_STREAM, b"".join(parts))


async def stream(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": [TEXT_PLAIN]})
    for _ in range(STREAM_CHUNKS):
        await send({"type": "http.response.body", "body": STREAM_CHUNK, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def ws(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] == "http":
        await _send_whole(send, TEXT_PLAIN, HELLO)
        return
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif kind == "websocket.receive":
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:  # websocket.disconnect
            return


APPS: dict[str, App] = {"hello": hello, "json": json, "echo": echo, "stream": stream, "ws": ws}
