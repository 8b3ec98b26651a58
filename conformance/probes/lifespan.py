"""Lifespan probes: the default app's lifespan, and the variants a check starts on its own."""

from __future__ import annotations

from .common import Receive, Scope, Send, log


async def default(scope: Scope, receive: Receive, send: Send) -> None:
    """Start up (filling ``state``), then shut down, logging each step."""
    message = await receive()
    assert message["type"] == "lifespan.startup"
    log("lifespan", "startup")
    if "state" in scope:
        scope["state"]["probe_state"] = "from-startup"
    await send({"type": "lifespan.startup.complete"})
    message = await receive()
    log("lifespan", "shutdown")
    await send({"type": "lifespan.shutdown.complete"})


async def failing_startup(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "lifespan":
        raise RuntimeError("this probe only starts up, and fails")
    await receive()
    log("lifespan", "startup")
    await send({"type": "lifespan.startup.failed", "message": "probe startup failure"})


async def raising_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        raise RuntimeError("this app does not support lifespan")
    from . import app

    await app(scope, receive, send)
