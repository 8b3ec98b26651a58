"""Minimal ASGI apps for the benchmark: the server, not the app, should dominate the profile.

- ``hello``: ``GET`` -> ``200 text/plain`` ``Hello, world!`` with a content-length.
- ``stream``: a few body chunks and no content-length (chunked transfer encoding on HTTP/1.1).
- ``echo``: reads the whole request body and answers with its length in bytes.

All three answer ``lifespan`` so that every server starts them the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HELLO = b"Hello, world!"
CHUNKS = (b"Hello, ", b"streaming ", b"world", b"!\n")
TEXT_PLAIN = (b"content-type", b"text/plain; charset=utf-8")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [TEXT_PLAIN, (b"content-length", str(len(HELLO)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": HELLO})


async def stream(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": [TEXT_PLAIN]})
    for chunk in CHUNKS:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    size = 0
    more_body = True
    while more_body:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        more_body = message.get("more_body", False)
    body = str(size).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [TEXT_PLAIN, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


APPS = {"hello": hello, "stream": stream, "echo": echo}
