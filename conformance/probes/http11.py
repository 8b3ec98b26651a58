"""Probe routes for the HTTP/1.1 framing group (paths under /http11/)."""

from __future__ import annotations

from .common import Probe, Receive, Scope, Send, respond


async def hello(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """A fixed 13-byte body with a Content-Length."""
    await respond(send, b"Hello, world!")


HTTP_ROUTES = {"/http11/hello": hello}
WEBSOCKET_ROUTES: dict[str, object] = {}
