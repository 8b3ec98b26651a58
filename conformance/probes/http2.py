"""Probe routes for the HTTP/2 group (paths under /h2/).

The http2 checks grade frames, so their routes do little: log what the scope and the request
body were, answer a body of a known size (for flow control and frame sizes), or hold a stream
open without sending anything until the client resets it (for the checks that need an open
stream, and for the concurrent streams limit).
"""

from __future__ import annotations

import asyncio
import hashlib
import json

from .common import Handler, Probe, Receive, Scope, Send, respond

HOLD_S = 10.0  # the longest /h2/hold keeps a stream open: longer than any check needs it


def pattern(size: int) -> bytes:
    """``size`` bytes of a known pattern, so that a check can tell every byte."""
    unit = b"0123456789abcdef"
    return (unit * (size // len(unit) + 1))[:size]


def latin1(value: object) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return str(value)


async def read_all(receive: Receive) -> tuple[bytes, str]:
    body = b""
    while True:
        message = await receive()
        if message.get("type") != "http.request":
            return body, str(message.get("type"))
        body += bytes(message.get("body") or b"")
        if not message.get("more_body", False):
            return body, "complete"


async def scope(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Log the scope's request keys and the body; answer both as JSON."""
    body, ending = await read_all(receive)
    seen = {
        "type": scope.get("type"),
        "http_version": scope.get("http_version"),
        "method": scope.get("method"),
        "scheme": scope.get("scheme"),
        "path": scope.get("path"),
        "raw_path": latin1(scope.get("raw_path") or b""),
        "query_string": latin1(scope.get("query_string") or b""),
        "headers": [[latin1(name), latin1(value)] for name, value in scope.get("headers") or []],
        "body_length": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "ending": ending,
    }
    probe.log("scope", **seen)
    if ending == "complete":
        await respond(send, json.dumps(seen).encode("latin-1"), content_type=b"application/json")


async def sized(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """``?size=N``: a body of N pattern bytes, in one message, with its Content-Length."""
    await read_all(receive)
    size = int(probe.params.get("size", "100"))
    await respond(send, pattern(size), content_type=b"application/octet-stream")
    probe.log("sent", size=size)


async def hold(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Read the request, then wait for ``http.disconnect`` (the stream reset) sending nothing;
    after HOLD_S without one, answer 200 so that the stream ends."""
    await read_all(receive)
    probe.log("holding")
    try:
        message = await asyncio.wait_for(receive(), HOLD_S)
    except asyncio.TimeoutError:
        probe.log("held", outcome="timeout")
        await respond(send, b"held\n")
        return
    probe.log("held", outcome=str(message.get("type")))


HTTP_ROUTES: dict[str, Handler] = {
    "/h2/scope": scope,
    "/h2/sized": sized,
    "/h2/hold": hold,
}
