"""Probe routes for the websocket group (paths under /ws/).

Each route answers ``websocket.connect`` in one known way (accept after a pause, accept with a
subprotocol or headers, close, deny with an HTTP response, return, raise) and logs what the
server gave it: the scope's subprotocols, ``spec_version`` and extensions, every message
``receive`` returned (with the Python types of ``text`` and ``bytes``), and what ``send`` did
after the client left. Features newer than the ``spec_version`` the server advertises are not
used (``www.rst``, Spec Versions: sending them to an older server "is an error"); the probe
logs which it used, so that the check can tell "not applicable" from a failure. Every wait has
a deadline, so a server that never answers leaves a "timeout" event instead of a stuck app.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .common import (
    Handler,
    Message,
    Probe,
    Receive,
    Scope,
    Send,
    receive_within,
    respond,
    send_logged,
)

BIG_MESSAGE = 1 << 20  # messages larger than this are answered with their length, not echoed
DENIAL_BODY = b"denied by the probe\n"


def spec_version(scope: Scope) -> tuple[int, int]:
    """``scope["asgi"]["spec_version"]`` as numbers; "2.0" when missing or unreadable."""
    asgi = scope.get("asgi")
    value = asgi.get("spec_version", "2.0") if isinstance(asgi, dict) else "2.0"
    try:
        major, minor = str(value).split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        return 2, 0


def log_scope(scope: Scope, probe: Probe) -> None:
    asgi = scope.get("asgi")
    subprotocols: Any = scope.get("subprotocols", "missing")
    if subprotocols != "missing":
        try:
            subprotocols = [
                repr(item) if not isinstance(item, str) else item for item in subprotocols
            ]
        except TypeError:
            subprotocols = repr(subprotocols)
    extensions = scope.get("extensions")
    probe.log(
        "scope",
        type=scope.get("type"),
        http_version=scope.get("http_version"),
        asgi=dict(asgi) if isinstance(asgi, dict) else repr(asgi),
        subprotocols=subprotocols,
        extensions=sorted(extensions) if isinstance(extensions, dict) else repr(extensions),
    )


async def receive_logged(probe: Probe, receive: Receive, step: str) -> Message | None:
    """``receive()`` with a deadline; logs what came (types kept), or that nothing did."""
    message = await receive_within(probe, receive, step)
    if message is None:
        return None
    fields: dict[str, Any] = {"type": message.get("type")}
    if message.get("type") == "websocket.receive":
        text, data = message.get("text"), message.get("bytes")
        fields.update(
            text_type=type(text).__name__,
            bytes_type=type(data).__name__,
            text=text[:200] if isinstance(text, str) and len(text) <= BIG_MESSAGE else None,
            text_length=len(text) if isinstance(text, str) else None,
            bytes_hex=data[:100].hex() if isinstance(data, (bytes, bytearray)) else None,
            bytes_length=len(data) if isinstance(data, (bytes, bytearray)) else None,
        )
    elif message.get("type") == "websocket.disconnect":
        fields.update(
            code=message.get("code"),
            has_reason="reason" in message,
            reason=message.get("reason"),
        )
    probe.log("receive", step=step, outcome="message", **fields)
    return message


async def connect(scope: Scope, receive: Receive, probe: Probe) -> bool:
    """Log the scope and wait for ``websocket.connect``."""
    log_scope(scope, probe)
    message = await receive_logged(probe, receive, "connect")
    return message is not None and message.get("type") == "websocket.connect"


async def accept(scope: Scope, send: Send, probe: Probe) -> bool:
    """Accept, after ``delay`` seconds, with ``subprotocol`` and (``headers=1``) a header."""
    delay = float(probe.params.get("delay", "0"))
    if delay:
        await asyncio.sleep(delay)
    message: Message = {"type": "websocket.accept"}
    if "subprotocol" in probe.params:
        message["subprotocol"] = probe.params["subprotocol"]
    headers_sent = probe.params.get("headers") == "1" and spec_version(scope) >= (2, 1)
    if headers_sent:
        message["headers"] = [(b"x-probe-accept", b"accepted"), (b"set-cookie", b"probe=1")]
    probe.log("accepting", headers_sent=headers_sent)
    return await send_logged(probe, "accept", send, message)


async def echo_loop(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Echo each message as it came (text as text, bytes as bytes) until the disconnect.

    A message over ``BIG_MESSAGE`` is answered with ``len=N`` in a text message. With
    ``send_after=1``, send once more after the disconnect and log what ``send`` did.
    """
    while True:
        message = await receive_logged(probe, receive, "message")
        if message is None:
            return
        kind = message.get("type")
        if kind == "websocket.disconnect":
            break
        if kind != "websocket.receive":
            probe.log("unexpected", type=kind)
            return
        text, data = message.get("text"), message.get("bytes")
        reply: Message
        if text is not None:
            if len(text) > BIG_MESSAGE:
                reply = {"type": "websocket.send", "text": f"len={len(text)}"}
            else:
                reply = {"type": "websocket.send", "text": text}
        elif data is not None:
            if len(data) > BIG_MESSAGE:
                reply = {"type": "websocket.send", "text": f"len={len(data)}"}
            else:
                reply = {"type": "websocket.send", "bytes": data}
        else:
            probe.log("neither-text-nor-bytes")
            continue
        if not await send_logged(probe, "echo", send, reply):
            return
    if probe.params.get("send_after") == "1":
        await send_logged(
            probe, "after-disconnect", send, {"type": "websocket.send", "text": "too late"}
        )
    probe.log("done")


async def echo(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Accept (see ``accept``), then echo until the client goes."""
    if await connect(scope, receive, probe) and await accept(scope, send, probe):
        await echo_loop(scope, receive, send, probe)


async def plain_http(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """The same path as plain HTTP: a server that does not upgrade lands here."""
    probe.log("http-scope", method=scope.get("method"))
    await respond(send, b"plain HTTP, not a WebSocket\n")


async def close(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Accept, then close with ``code`` (none if absent) and ``reason`` (if spec >= 2.3)."""
    if not (await connect(scope, receive, probe) and await accept(scope, send, probe)):
        return
    message: Message = {"type": "websocket.close"}
    if "code" in probe.params:
        message["code"] = int(probe.params["code"])
    reason_sent = "reason" in probe.params and spec_version(scope) >= (2, 3)
    if reason_sent:
        message["reason"] = probe.params["reason"]
    probe.log("closing", reason_sent=reason_sent)
    if await send_logged(probe, "close", send, message):
        await receive_logged(probe, receive, "after-close")
    probe.log("done")


async def deny(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Answer ``websocket.connect`` with ``websocket.close``: the server owes a 403."""
    if await connect(scope, receive, probe):
        probe.log("denying")
        await send_logged(probe, "close", send, {"type": "websocket.close"})
    probe.log("done")


async def deny_response(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Deny with a custom HTTP response if ``websocket.http.response`` is offered."""
    if not await connect(scope, receive, probe):
        return
    extensions = scope.get("extensions") or {}
    if "websocket.http.response" not in extensions:
        probe.log("no-extension")
        await send_logged(probe, "close", send, {"type": "websocket.close"})
        return
    probe.log("denying")
    start = {
        "type": "websocket.http.response.start",
        "status": 401,
        "headers": [
            (b"content-type", b"text/plain"),
            (b"content-length", b"%d" % len(DENIAL_BODY)),
            (b"x-probe-denial", b"yes"),
        ],
    }
    if await send_logged(probe, "start", send, start):
        body = {"type": "websocket.http.response.body", "body": DENIAL_BODY}
        await send_logged(probe, "body", send, body)
    probe.log("done")


async def send_empty(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Accept, send an empty text and an empty binary message and a marker, then wait."""
    if not (await connect(scope, receive, probe) and await accept(scope, send, probe)):
        return
    for step, message in (
        ("empty-text", {"type": "websocket.send", "text": ""}),
        ("empty-bytes", {"type": "websocket.send", "bytes": b""}),
        ("marker", {"type": "websocket.send", "text": "marker"}),
    ):
        if not await send_logged(probe, step, send, message):
            return
    await receive_logged(probe, receive, "after-sends")
    probe.log("done")


async def unanswered(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Take ``websocket.connect`` and return without accepting or closing."""
    if await connect(scope, receive, probe):
        probe.log("returning")


async def raise_before_accept(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    if await connect(scope, receive, probe):
        probe.log("raising")
        raise RuntimeError("probe: raised before websocket.accept")


async def raise_after_accept(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    if await connect(scope, receive, probe) and await accept(scope, send, probe):
        probe.log("raising")
        raise RuntimeError("probe: raised after websocket.accept")


async def return_after_accept(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    if await connect(scope, receive, probe) and await accept(scope, send, probe):
        probe.log("returning")


HTTP_ROUTES: dict[str, Handler] = {"/ws/echo": plain_http}
WEBSOCKET_ROUTES: dict[str, Handler] = {
    "/ws/echo": echo,
    "/ws/close": close,
    "/ws/send-empty": send_empty,
    "/ws/deny": deny,
    "/ws/deny-response": deny_response,
    "/ws/unanswered": unanswered,
    "/ws/raise-before-accept": raise_before_accept,
    "/ws/raise-after-accept": raise_after_accept,
    "/ws/return-after-accept": return_after_accept,
}
