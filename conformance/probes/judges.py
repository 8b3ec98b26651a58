"""Probe routes for the external judges (paths under /autobahn/ and /httplint/).

kosoku, the Autobahn fuzzing client, opens ``ws://HOST:PORT/autobahn/echo`` once per case and
expects every text and binary message echoed back unchanged until it closes. The route carries
no probe id: the verdicts come from kosoku, not from the event log. httplint reads the responses
the other groups' probes gave; its one route of its own, /httplint/error, raises, so that the
server writes a whole response (its 500) by itself.
"""

from __future__ import annotations

from .common import Probe, Receive, Scope, Send


async def echo(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Accept, then send back each message as it came (text as text, bytes as bytes)."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


async def error(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Raise before sending anything: the response (a 500, by ASGI "Error Handling") is all the
    server's own, for httplint to judge."""
    raise RuntimeError("the httplint probe fails on purpose")


HTTP_ROUTES = {"/httplint/error": error}
WEBSOCKET_ROUTES = {"/autobahn/echo": echo}
