"""Probe routes for the shutdown group (paths under /shutdown/).

``/shutdown/slow`` is the in-flight request a graceful shutdown must let finish: it sends the
head and a first part at once, sleeps (``?delay=S``, default 1), then sends the rest. Its
Content-Length covers both parts, so the client can tell a finished body from a cut one.
``/shutdown/ws`` accepts a WebSocket and waits for ``websocket.disconnect``. Both log how the
handler ended: returned, cancelled, or raised out of ``send``/``receive``.
"""

from __future__ import annotations

import asyncio

from .common import Probe, Receive, Scope, Send, logs_how_it_ends, respond

FIRST_PART = b"first part\n"
LAST_PART = b"last part\n"


async def hello(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """A small complete response; logs that the app was reached."""
    probe.log("request")
    await respond(send, b"hello\n")


@logs_how_it_ends
async def slow(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    delay = float(probe.params.get("delay", "1"))
    length = len(FIRST_PART) + len(LAST_PART)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", b"%d" % length),
            ],
        }
    )
    await send({"type": "http.response.body", "body": FIRST_PART, "more_body": True})
    probe.log("first-part-sent")
    await asyncio.sleep(delay)
    await send({"type": "http.response.body", "body": LAST_PART})
    probe.log("response-complete")


@logs_how_it_ends
async def websocket(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        probe.log("unexpected", message_type=message["type"])
        return
    await send({"type": "websocket.accept"})
    probe.log("accepted")
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            probe.log("disconnect", code=message.get("code"), reason=message.get("reason"))
            break
        probe.log("received", message_type=message["type"])


HTTP_ROUTES = {"/shutdown/hello": hello, "/shutdown/slow": slow}
WEBSOCKET_ROUTES = {"/shutdown/ws": websocket}
