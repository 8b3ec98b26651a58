"""A naive ASGI server for testing the conformance suite: it must be graded as failing.

``python tests/naive_server.py MODULE:APP PORT``. It reads one request per connection, hands
the app a scope with wrong types (a str query string, str header names), never checks Host,
writes the response head without Date exactly as the app gave it, and closes after one
response, so pipelined requests go unanswered. It offers extensions it does not support, and
debug, which no server should. It has no lifespan and no WebSocket.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from typing import Any


async def handle(app: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        writer.close()
        return
    request_line, *lines = head[:-4].decode("latin-1").split("\r\n")
    method, target, _ = [*request_line.split(" "), "", ""][:3]
    path, _, query = target.partition("?")
    headers = [line.split(":", 1) for line in lines if ":" in line]
    length = int(dict((k.lower(), v) for k, v in headers).get("content-length", "0") or 0)
    body = await reader.readexactly(length) if length else b""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": [[name.lower(), value.strip().encode("latin-1")] for name, value in headers],
        # Offered but not supported: send() drops every message but start and body.
        "extensions": {
            "http.response.pathsend": {},
            "http.response.trailers": {},
            "http.response.debug": {},
        },
    }
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:
            await asyncio.Event().wait()
        received = True
        return {"type": "http.request", "body": body}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            writer.write(b"HTTP/1.1 %d OK\r\n" % message["status"])
            for name, value in message.get("headers", []):
                writer.write(name + b": " + value + b"\r\n")
            writer.write(b"\r\n")
        elif message["type"] == "http.response.body":
            writer.write(message.get("body", b""))
        await writer.drain()

    try:
        await app(scope, receive, send)
    finally:
        writer.close()


async def main(target: str, port: int) -> None:
    module, _, attribute = target.partition(":")
    app = getattr(importlib.import_module(module), attribute)
    server = await asyncio.start_server(lambda r, w: handle(app, r, w), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
