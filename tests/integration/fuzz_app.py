"""The application the live fuzzer (``fuzz.py``) serves: small, and well behaved on purpose.

Everything it does is legal ASGI, so whatever the server logs as an error came from the server,
except the one failure it makes on request: ``/raise`` and ``/raise-late`` (and the WebSocket
path ``/ws/raise``) raise ``DeliberateFuzzError``, whose name and message the fuzzer counts
apart from every other traceback.

Paths (HTTP):

* ``/stream?N``: a chunked response of N chunks of 1 KiB (N < 0: until the client leaves, at
  most ``ENDLESS_STREAM_S``); ``send()`` must raise once the client has gone.
* ``/ignore-body``: answers without reading the request body.
* ``/raise``: raises before the response starts (the server answers 500); ``/raise-late``
  raises after the first body chunk (the server closes the connection).
* ``/stats``: the number of app calls running, this one included, as ASCII digits.
* anything else: echoes ``METHOD PATH\\n`` and the request body, with a content-length.

WebSocket: every path accepts (with the first subprotocol offered) and echoes each message back
until the client leaves; ``/ws/raise`` raises after the first message.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

# An endless stream stops after this long even if the server never tells it the client left,
# so a server that does not raise from send() shows up as a busy process (not as a hang of the
# fuzzer); the fuzzer's final checks see it still running.
ENDLESS_STREAM_S = 120.0
STREAM_CHUNK = b"s" * 1023 + b"\n"
DELIBERATE_MESSAGE = "deliberate failure of the fuzz app"

running = 0


class DeliberateFuzzError(Exception):
    """Raised on purpose; the fuzzer tells its traceback apart from the server's."""


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global running
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    running += 1
    try:
        if scope["type"] == "websocket":
            await websocket(scope, receive, send)
        else:
            await http(scope, receive, send)
    finally:
        running -= 1


async def lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_body(receive: Any) -> bytes:
    body = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        body.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(body)


async def start(send: Any, status: int, length: int | None) -> None:
    headers = [(b"content-type", b"text/plain")]
    if length is not None:
        headers.append((b"content-length", b"%d" % length))
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope["path"]
    if path == "/stream":
        await stream(scope, send)
        return
    if path == "/raise":
        raise DeliberateFuzzError(DELIBERATE_MESSAGE)
    if path == "/stats":
        body = b"%d" % running
        await start(send, 200, len(body))
        await send({"type": "http.response.body", "body": body})
        return
    body = b"" if path == "/ignore-body" else await read_body(receive)
    if path == "/raise-late":
        await start(send, 200, None)
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        raise DeliberateFuzzError(DELIBERATE_MESSAGE)
    head = b"%s %s\n" % (scope["method"].encode(), path.encode("utf-8", "surrogateescape"))
    await start(send, 200, len(head) + len(body))
    await send({"type": "http.response.body", "body": head + body})


async def stream(scope: dict[str, Any], send: Any) -> None:
    try:
        chunks = int(scope["query_string"] or b"4")
    except ValueError:
        chunks = 4
    await start(send, 200, None)
    stop_at = time.monotonic() + ENDLESS_STREAM_S
    sent = 0
    while (sent < chunks or chunks < 0) and time.monotonic() < stop_at:
        await send({"type": "http.response.body", "body": STREAM_CHUNK, "more_body": True})
        sent += 1
        if sent % 16 == 0:
            await asyncio.sleep(0)  # let other connections have a turn
    await send({"type": "http.response.body", "body": b""})


async def websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    subprotocols = scope.get("subprotocols") or []
    accept: dict[str, Any] = {"type": "websocket.accept"}
    if subprotocols:
        accept["subprotocol"] = subprotocols[0]
    await send(accept)
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if scope["path"] == "/ws/raise":
            raise DeliberateFuzzError(DELIBERATE_MESSAGE)
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
