"""A plain ASGI app that breaks the spec in each way the app mode reports, one route each.

* ``/``: a correct response (so a finding elsewhere is the route's, not the harness's)
* ``/upper``: a response header name that is not lowercased (an app obligation the server
  lets pass)
* ``/body-first``: ``http.response.body`` before ``http.response.start`` (``send()`` raises)
* ``/no-response``: returns without sending anything (the server recovers with a 500)
* ``/half``: returns after a body message that said more was coming
* ``/raise``: raises ``ValueError`` before responding
* ``/echo``: reads the body, answers it back
* WebSocket ``/ws``: accepts, then answers each message with a ``websocket.send`` carrying both
  ``text`` and ``bytes`` (``send()`` raises); any other WebSocket path returns without
  accepting or closing
* lifespan: startup completes with a state; shutdown says it failed

``lifespan_invalid``, ``lifespan_unsupported`` and ``lifespan_silent`` are the same app with
other lifespans.
"""

from __future__ import annotations

import asyncio
from typing import Any

PATHS = ["/", "/upper", "/body-first", "/no-response", "/half", "/raise"]


async def _http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope["path"]
    if path == "/upper":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"X-Upper", b"1")]})
        await send({"type": "http.response.body", "body": b"upper"})
    elif path == "/body-first":
        await send({"type": "http.response.body", "body": b"too early"})
    elif path == "/no-response":
        return
    elif path == "/half":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"half", "more_body": True})
    elif path == "/raise":
        raise ValueError("the route failed")
    else:
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body if path == "/echo" else b"ok"})


async def _websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()  # websocket.connect
    if scope["path"] != "/ws":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": "both", "bytes": b"both"})


async def _lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    scope["state"]["opened"] = True
    await send({"type": "lifespan.startup.complete"})
    await receive()
    await send({"type": "lifespan.shutdown.failed", "message": "could not close the pool"})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await _http(scope, receive, send)
    elif scope["type"] == "websocket":
        await _websocket(scope, receive, send)
    elif scope["type"] == "lifespan":
        await _lifespan(scope, receive, send)


async def lifespan_invalid(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers lifespan.startup with lifespan.shutdown.complete (out of order)."""
    if scope["type"] != "lifespan":
        return await app(scope, receive, send)
    await receive()
    await send({"type": "lifespan.shutdown.complete"})


async def lifespan_unsupported(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Raises for the lifespan scope, as an app without lifespan support may."""
    if scope["type"] != "lifespan":
        return await app(scope, receive, send)
    raise ValueError(f"unsupported scope type {scope['type']!r}")


async def lifespan_silent(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Never answers lifespan.startup."""
    if scope["type"] != "lifespan":
        return await app(scope, receive, send)
    await receive()
    await asyncio.Event().wait()
