"""Lifespan probes: the main app's lifespan, and the app variants a lifespan check launches.

Every variant is a whole app: its lifespan half behaves in one known way, and its HTTP and
WebSocket half serves the ``/lifespan/`` routes below and hands any other path to the main app
(so the ``/shutdown/`` routes work under every variant). Each launched server writes a log of
its own, so the lifespan half logs under the fixed probe id ``LIFESPAN``; requests log under
the id in their query string as usual.

``STARTUP_COMPLETE`` is set by ``observed`` right before it sends ``lifespan.startup.complete``:
a request that sees it still False was let in before startup had completed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

from .common import Probe, Receive, Scope, Send, describe_value, log, respond

LIFESPAN = "lifespan"  # the probe id of the lifespan half's events
STARTUP_DELAY_S = 0.5  # ``observed`` takes this long to start up
SHUTDOWN_DELAY_S = 0.3  # and this long to shut down
STARTUP_FAILURE = "probe startup failed: lifespan-failure-7e1c"  # findable in the server's output
SHUTDOWN_FAILURE = "probe shutdown failed: lifespan-failure-42d9"
STATE_KEY = "probe_state"
STATE_VALUE = "from-startup"

STARTUP_COMPLETE = False

App = Callable[[Scope, Receive, Send], Awaitable[None]]


def event_loop() -> str:
    """Which event loop runs the caller: the process and the loop's identity."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return f"{os.getpid()}:no asyncio loop"
    return f"{os.getpid()}:{id(loop):x}"


async def default(scope: Scope, receive: Receive, send: Send) -> None:
    """Start up (filling ``state``), then shut down, logging each step."""
    message = await receive()
    assert message["type"] == "lifespan.startup"
    log(LIFESPAN, "startup")
    if "state" in scope:
        scope["state"][STATE_KEY] = STATE_VALUE
    await send({"type": "lifespan.startup.complete"})
    message = await receive()
    log(LIFESPAN, "shutdown")
    await send({"type": "lifespan.shutdown.complete"})


async def _observed_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    global STARTUP_COMPLETE
    message = await receive()
    log(LIFESPAN, "startup-received", message_type=message.get("type"), loop=event_loop())
    await asyncio.sleep(STARTUP_DELAY_S)
    if isinstance(scope.get("state"), dict):
        scope["state"][STATE_KEY] = STATE_VALUE
    STARTUP_COMPLETE = True
    log(LIFESPAN, "startup-complete-sent")
    await send({"type": "lifespan.startup.complete"})
    message = await receive()
    log(LIFESPAN, "shutdown-received", message_type=message.get("type"))
    await asyncio.sleep(SHUTDOWN_DELAY_S)
    log(LIFESPAN, "shutdown-complete-sent")
    await send({"type": "lifespan.shutdown.complete"})
    log(LIFESPAN, "shutdown-complete-returned")


async def _failing_startup_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    message = await receive()
    log(LIFESPAN, "startup-received", message_type=message.get("type"))
    log(LIFESPAN, "startup-failed-sent")
    await send({"type": "lifespan.startup.failed", "message": STARTUP_FAILURE})
    log(LIFESPAN, "startup-failed-returned")


async def _failing_shutdown_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    message = await receive()
    log(LIFESPAN, "startup-received", message_type=message.get("type"))
    await send({"type": "lifespan.startup.complete"})
    message = await receive()
    log(LIFESPAN, "shutdown-received", message_type=message.get("type"))
    log(LIFESPAN, "shutdown-failed-sent")
    await send({"type": "lifespan.shutdown.failed", "message": SHUTDOWN_FAILURE})
    log(LIFESPAN, "shutdown-failed-returned")


async def _raising_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("this app does not support lifespan")


async def _raising_startup_lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    message = await receive()
    log(LIFESPAN, "startup-received", message_type=message.get("type"))
    raise RuntimeError("this app fails on lifespan.startup by raising")


# -- the HTTP and WebSocket half


async def observe(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Log whether startup had completed and what ``state`` holds; ``?mutate=1`` adds a key."""
    state = scope.get("state")
    probe.log(
        "request",
        scope_type=scope["type"],
        startup_complete=STARTUP_COMPLETE,
        loop=event_loop(),
        has_state="state" in scope,
        state=describe_value(state),
    )
    if probe.params.get("mutate") and isinstance(state, dict):
        state["added_by_request"] = probe.id
        probe.log("mutated")
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.close", "code": 1000})
        return
    await respond(send, b"observed\n")


async def fail_if_served(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Answer 200, logging that the app was reached (by an app whose startup failed)."""
    probe.log("request", scope_type=scope["type"], path=scope.get("path"))
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.close", "code": 1000})
        return
    await respond(send, b"served although startup failed\n")


HTTP_ROUTES = {"/lifespan/observe": observe}
WEBSOCKET_ROUTES = {"/lifespan/observe": observe}


def _variant(lifespan: App, serving: bool = True) -> App:
    async def variant(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            # Every call, so that a check can count them; the whole scope, types kept.
            log(LIFESPAN, "scope", scope=describe_value(dict(scope)))
            await lifespan(scope, receive, send)
            return
        if not serving:
            await fail_if_served(scope, receive, send, Probe.of(scope))
            return
        routes = HTTP_ROUTES if scope["type"] == "http" else WEBSOCKET_ROUTES
        handler = routes.get(scope.get("path", ""))
        if handler is not None:
            await handler(scope, receive, send, Probe.of(scope))
            return
        from . import app  # the main app, for every other route

        await app(scope, receive, send)

    variant.__name__ = variant.__qualname__ = lifespan.__name__.strip("_")
    return variant


observed = _variant(_observed_lifespan)  # slow startup and shutdown, every step logged
failing_startup = _variant(_failing_startup_lifespan, serving=False)
failing_shutdown = _variant(_failing_shutdown_lifespan)
raising_lifespan = _variant(_raising_lifespan)  # raises on the lifespan scope
raising_startup = _variant(_raising_startup_lifespan)  # raises after lifespan.startup
