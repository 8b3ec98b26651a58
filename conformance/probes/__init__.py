"""The probe apps: small ASGI apps the server under test runs, each behaving in one known way.

``app`` routes by path: each group's module under ``probes/`` lists its routes in
``HTTP_ROUTES`` and ``WEBSOCKET_ROUTES`` (path -> handler). A request names its probe id in
the query string (``?probe=ID``); what the app saw and how ``send``/``receive`` behaved goes
to the event log under that id, where the check reads it back. The probes use only the
standard library, so any server's Python can import them.
"""

from __future__ import annotations

from . import asgi_http, extensions, http2, http11, judges, lifespan, shutdown, websocket
from .common import Probe, Receive, Scope, Send, respond

HTTP_ROUTES = {
    **http11.HTTP_ROUTES,
    **asgi_http.HTTP_ROUTES,
    **shutdown.HTTP_ROUTES,
    **websocket.HTTP_ROUTES,
    **extensions.HTTP_ROUTES,
    **http2.HTTP_ROUTES,
}
WEBSOCKET_ROUTES = {
    **websocket.WEBSOCKET_ROUTES,
    **asgi_http.WEBSOCKET_ROUTES,
    **shutdown.WEBSOCKET_ROUTES,
}
HTTP_ROUTES.update(judges.HTTP_ROUTES)
WEBSOCKET_ROUTES.update(judges.WEBSOCKET_ROUTES)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "lifespan":
        await lifespan.default(scope, receive, send)
        return
    probe = Probe.of(scope)
    if kind == "http":
        handler = HTTP_ROUTES.get(scope["path"], not_found)
    elif kind == "websocket":
        handler = WEBSOCKET_ROUTES.get(scope["path"], reject)
    else:
        raise ValueError(f"unknown scope type {kind!r}")
    await handler(scope, receive, send, probe)


async def not_found(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    await respond(send, b"no such probe\n", status=404, content_type=b"text/plain")


async def reject(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    await receive()
    await send({"type": "websocket.close"})


# Lifespan variants, each its own app so that a check can start a server with it.
lifespan_observed = lifespan.observed
failing_startup = lifespan.failing_startup
failing_shutdown = lifespan.failing_shutdown
raising_lifespan = lifespan.raising_lifespan
raising_startup = lifespan.raising_startup

__all__ = [
    "app",
    "failing_shutdown",
    "failing_startup",
    "lifespan_observed",
    "raising_lifespan",
    "raising_startup",
]
