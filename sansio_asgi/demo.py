"""The built-in demo app: a page showing the request exactly as the app received it.

Served when no app is given. GET shows the scope; the form POSTs a body, which is shown too.
``?format=json`` returns the same as JSON. A WebSocket is accepted and every message, text or
bytes, is sent back until the client leaves.
"""

from __future__ import annotations

import html
import json
from typing import Any

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sansio-asgi</title>
<style>body{{font:15px/1.5 system-ui,sans-serif;max-width:56rem;margin:2rem auto;padding:0 1rem}}
pre{{background:#f4f4f4;padding:1rem;overflow:auto}}</style></head><body>
<h1>sansio-asgi is running</h1>
<p>This is the built-in demo app. Serve your own with <code>sansio-asgi module:app</code>.
Below is the request as an ASGI app sees it.</p>
<h2>scope</h2><pre>{scope}</pre>
<h2>body ({length} bytes)</h2><pre>{body}</pre>
<form method="post"><input name="message" value="hello"> <button>POST it</button></form>
<p>A WebSocket opened to this server sends back every message it receives.</p>
</body></html>
"""


def _printable(scope: dict[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for key, value in scope.items():
        if key == "headers":
            value = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in value]
        elif isinstance(value, bytes):
            value = value.decode("latin-1")
        elif isinstance(value, tuple):
            value = list(value)
        shown[key] = value
    return shown


async def demo_app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await _echo(receive, send)
        return
    if scope["type"] != "http":
        raise ValueError(f"the demo app serves http and websocket, not {scope['type']!r}")
    chunks = []
    more_body = True
    while more_body:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunks.append(message.get("body", b""))
        more_body = message.get("more_body", False)
    body = b"".join(chunks)
    shown = _printable(scope)
    if scope["query_string"] == b"format=json":
        content = json.dumps({"scope": shown, "body": body.decode("latin-1")}, indent=2)
        payload, content_type = content.encode("utf-8"), b"application/json"
    else:
        payload = _PAGE.format(
            scope=html.escape(json.dumps(shown, indent=2, default=repr)),
            length=len(body),
            body=html.escape(body.decode("utf-8", "replace")),
        ).encode("utf-8")
        content_type = b"text/html; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(payload)).encode("ascii")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _echo(receive: Any, send: Any) -> None:
    """Accept, then send back each message as it came, text as text and bytes as bytes."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return  # websocket.disconnect
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
