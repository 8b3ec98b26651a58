"""The application served behind nginx and under gunicorn by ``test_nginx.py`` and
``test_gunicorn.py``: it reports what it saw, so the tests can check what the server made of
the connection.

Paths (HTTP):

* ``/info``: JSON with the scope's ``client``, ``scheme``, ``server``, ``http_version``, the
  serving process's pid, how many requests this process has served, whether the lifespan
  startup ran, and the request's ``x-forwarded-for``.
* ``/upload``: reads the whole body; JSON with its length and SHA-256.
* ``/download?N``: N bytes of ``pattern(N)``, streamed in 64 KiB chunks with a content-length.
* ``/block?S``: blocks the event loop for S seconds (``time.sleep``), as a broken app would.
* ``/sleep?S``: answers ``slept`` after S seconds, without blocking (``asyncio.sleep``);
  ``/info`` counts the calls sleeping (``sleeping``).
* anything else: ``hello``.

WebSocket (any path): accepts, sends the ``/info`` JSON as its first message, then echoes
every message until the client leaves.

``failing_startup_app`` fails its lifespan startup.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from typing import Any

CHUNK_BYTES = 64 * 1024

served = 0
sleeping = 0
started_up = False


def pattern(size: int) -> bytes:
    """Deterministic bytes (not one repeated byte, so a dropped or reordered chunk shows)."""
    block = bytes(range(256)) * (CHUNK_BYTES // 256)
    whole, rest = divmod(size, CHUNK_BYTES)
    return block * whole + block[:rest]


def info(scope: dict[str, Any]) -> dict[str, Any]:
    headers = dict(scope.get("headers", []))
    return {
        "client": list(scope["client"]) if scope.get("client") else None,
        "scheme": scope["scheme"],
        "server": list(scope["server"]) if scope.get("server") else None,
        "http_version": scope.get("http_version"),
        "pid": os.getpid(),
        "served": served,
        "started_up": started_up,
        "sleeping": sleeping,
        "x_forwarded_for": headers.get(b"x-forwarded-for", b"").decode("latin-1"),
    }


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global served, sleeping, started_up
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                started_up = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await websocket(scope, receive, send)
        return
    served += 1
    path = scope["path"]
    query = scope["query_string"].decode()
    if path == "/upload":
        digest = hashlib.sha256()
        size = 0
        more = True
        while more:
            message = await receive()
            body = message.get("body", b"")
            size += len(body)
            digest.update(body)
            more = message.get("more_body", False)
        await respond(send, json.dumps({"bytes": size, "sha256": digest.hexdigest()}).encode())
        return
    if path == "/download":
        size = int(query)
        headers = [(b"content-type", b"application/octet-stream")]
        headers.append((b"content-length", str(size).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        data = pattern(size)
        for start in range(0, size, CHUNK_BYTES):
            chunk = data[start : start + CHUNK_BYTES]
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/sleep":
        sleeping += 1
        try:
            await asyncio.sleep(float(query))
        finally:
            sleeping -= 1
        await respond(send, b"slept")
        return
    if path == "/block":
        time.sleep(float(query))  # blocks the loop on purpose
    if path == "/info":
        await respond(send, json.dumps(info(scope)).encode(), b"application/json")
        return
    await respond(send, b"hello")


async def respond(send: Any, body: bytes, content_type: bytes = b"text/plain") -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    message = await receive()
    assert message["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": json.dumps(info(scope))})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def failing_startup_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An app whose lifespan startup fails: the server must not serve it."""
    assert scope["type"] == "lifespan"
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "no database"})
