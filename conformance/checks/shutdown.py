"""Graceful shutdown, as users of uvicorn or hypercorn expect it from an ASGI server.

Theory of operation
-------------------
Little text requires any of this: the lifespan spec orders the stop ("lifespan.shutdown" is
sent once the server "has stopped accepting connections and closed all active connections"),
RFC 9112 §9.6 says how to close a connection, RFC 6455 §7.4.1 names the close code of a
server going down. So these checks grade the reading ``graceful-shutdown`` recorded in
spec/asgi.json (what uvicorn and hypercorn users rely on): what a process manager and a client
see when the stop signal (``ctx.options.stop_signal``, sent to the server's own process as
``common.ask_to_stop`` explains) arrives.

Three scenarios, each one server of its own serving the main probe app, each run once and read
by several checks (``common.once``):

* ``in flight``: a keep-alive connection sits idle after one response, and a slow response
  (``/shutdown/slow``: a first part, a pause of ``SLOW_DELAY_S``, the rest) is in flight when
  the signal comes. Meanwhile one thread knocks with new connections and another watches the
  idle connection; the main thread reads the slow response to its end, then times the exit.
* ``websocket``: an accepted WebSocket is open when the signal comes; the client reads what
  the server sends, answers a close frame with one, and the app logs what it received.
* ``idle``: nothing is open when the signal comes; the exit status is graded.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from typing import Any

from ..client import (
    NoResponse,
    Reply,
    Response,
    WebSocketConnection,
    request_bytes,
    websocket_handshake,
)
from ..framework import (
    READING,
    Context,
    Result,
    check,
    failed,
    not_applicable,
    passed,
    verdict,
)
from ..probes.lifespan import LIFESPAN
from ..probes.shutdown import FIRST_PART, LAST_PART
from ..server import POLL_S, ServerProcess
from .common import (
    EXIT_DEADLINE_S,
    Events,
    ask_to_stop,
    describe_exit,
    events_named,
    find_event,
    has_event,
    knock,
    once,
    open_http,
    probe_target,
)

APP = "conformance.probes:app"
SLOW_DELAY_S = 1.5  # the in-flight response's pause, across the stop signal
SIGNAL_GRACE_S = 0.75  # a new connection served this soon after the signal was still early
IDLE_CLOSE_S = 1.0  # an idle keep-alive connection is closed within this of the signal
GOING_AWAY = {1001: "going away", 1012: "service restart"}


# -- scenario: a response in flight


@dataclasses.dataclass
class Knock:
    after_s: float  # from the signal to the connection attempt
    what: str  # "refused", "reset", "closed", "silence", or the response


@dataclasses.dataclass
class InFlight:
    ready: str  # "" if the idle connection and the slow response were set up, else what failed
    signal_at: float
    slow: Reply
    slow_ended_at: float  # time.time() the client had all of it, or gave up
    slow_events: Events
    knocks: list[Knock]
    idle: str  # "closed", "reset" or "open"
    idle_closed_after_s: float | None
    idle_bytes: bytes
    status: int | None
    exited_after_s: float | None  # from the end of the slow response to the exit


def _knock(
    server: ServerProcess, ctx: Context, signal_at: float, done: threading.Event
) -> list[Knock]:
    """New connections after the signal, until one is not served or the slow response ends.

    A 200 to a connection made within SIGNAL_GRACE_S of the signal does not count: the server
    may not have acted on the signal yet. The first answer after that decides.
    """
    knocks: list[Knock] = []
    while True:
        after = time.time() - signal_at
        target = probe_target("/shutdown/hello", ctx.new_id("knock"))
        answer = knock(server, target, ctx.options.io_timeout_s)
        what = answer.describe() if isinstance(answer, Response) else answer
        knocks.append(Knock(after, what))
        if not what.startswith("200 ") or after >= SIGNAL_GRACE_S or done.is_set():
            return knocks
        time.sleep(POLL_S)


def run_in_flight(ctx: Context) -> InFlight:
    io = ctx.options.io_timeout_s
    with ctx.launch(APP) as server:
        idle = open_http(ctx, server)
        slow_conn = open_http(ctx, server)
        ready = ""
        slow_id = ctx.new_id("slow")
        try:
            idle.send(request_bytes("GET", probe_target("/shutdown/hello", ctx.new_id("idle"))))
            response = idle.read_response()
            if response.status != 200 or b"close" in response.connection_tokens():
                ready = f"the keep-alive request got {response.describe()}"
            target = probe_target("/shutdown/slow", slow_id, delay=str(SLOW_DELAY_S))
            slow_conn.send(request_bytes("GET", target))
            server.wait_events(slow_id, has_event("first-part-sent"), io)
        except (NoResponse, OSError) as exc:
            ready = f"setting up failed: {exc}"

        done = threading.Event()
        knocks: list[Knock] = []
        idle_seen: dict[str, Any] = {}
        signal_at = ask_to_stop(ctx, server)

        def knocker() -> None:
            knocks.extend(_knock(server, ctx, signal_at, done))

        def watch_idle() -> None:
            idle_seen["how"] = idle.wait_closed(EXIT_DEADLINE_S + SLOW_DELAY_S)
            idle_seen["after"] = time.time() - signal_at
            idle.close()  # at once: a server with a lingering close waits for this

        threads = [threading.Thread(target=knocker), threading.Thread(target=watch_idle)]
        for thread in threads:
            thread.start()
        slow = slow_conn.read_reply(timeout_s=io + SLOW_DELAY_S)
        slow_ended_at = time.time()
        slow_conn.close()
        done.set()
        status = server.wait_exit(EXIT_DEADLINE_S)
        exited_at = time.time()
        for thread in threads:
            thread.join(EXIT_DEADLINE_S + SLOW_DELAY_S + io)
        how = idle_seen.get("how", "open")
        return InFlight(
            ready=ready,
            signal_at=signal_at,
            slow=slow,
            slow_ended_at=slow_ended_at,
            slow_events=server.events(slow_id),
            knocks=knocks,
            idle=how,
            idle_closed_after_s=idle_seen.get("after") if how != "open" else None,
            idle_bytes=idle.buffer,
            status=status,
            exited_after_s=exited_at - slow_ended_at if status is not None else None,
        )


def in_flight(ctx: Context) -> InFlight:
    return once(ctx, "shutdown.in-flight", run_in_flight)


def describe_slow(seen: InFlight) -> str:
    slow = seen.slow
    if isinstance(slow, NoResponse):
        return slow.describe()
    took = seen.slow_ended_at - seen.signal_at
    text = f"{slow.describe()}, {len(slow.body)} of {len(FIRST_PART + LAST_PART)} bytes"
    return f"{text}, ending {took:.2f} s after the signal"


@check(
    "shutdown.in-flight-completes",
    title="a response in flight at the stop signal is completed",
    clause="reading: graceful-shutdown",
    level=READING,
)
def in_flight_completes(ctx: Context) -> Result:
    """The lifespan spec orders a stop as: stop accepting, close the active connections, then
    lifespan.shutdown. A graceful server lets the in-flight response finish before it closes
    its connection (uvicorn, hypercorn and granian do; a timeout may bound the wait, but
    this response needs only SLOW_DELAY_S)."""
    seen = in_flight(ctx)
    if seen.ready and not isinstance(seen.slow, Response):
        return failed(f"{seen.ready}; the slow response got {describe_slow(seen)}")
    ok = (
        isinstance(seen.slow, Response)
        and seen.slow.status == 200
        and seen.slow.complete
        and seen.slow.body == FIRST_PART + LAST_PART
    )
    ended = find_event(seen.slow_events, "handler-ended")
    app = f"; the app's handler {ended.get('how')}" if ended else "; the app's handler never ended"
    return verdict(ok, f"the response in flight at the signal: {describe_slow(seen)}{app}")


@check(
    "shutdown.new-connections-refused",
    title="after the stop signal new connections are not served",
    clause="reading: graceful-shutdown",
    level=READING,
)
def new_connections_refused(ctx: Context) -> Result:
    """A stopping server "has stopped accepting connections". While the in-flight response
    keeps it running, a new connection may be refused, reset, closed, left unanswered until
    the exit, or answered 503, but not served. A 200 within SIGNAL_GRACE_S of the signal is
    forgiven (the server had not acted on it yet); the next knock decides."""
    seen = in_flight(ctx)
    if not seen.knocks:
        return failed("no new connection could be tried after the signal")
    last = seen.knocks[-1]
    shown = "; ".join(f"at +{knock.after_s:.2f} s: {knock.what}" for knock in seen.knocks[-2:])
    if len(seen.knocks) > 2:
        shown = f"{len(seen.knocks) - 2} earlier ones served within the grace; {shown}"
    served = last.what.startswith("200 ") and last.after_s >= SIGNAL_GRACE_S
    if last.what.startswith("200 ") and not served:
        return not_applicable(
            f"every knock came within {SIGNAL_GRACE_S:g} s of the signal and was served "
            f"(the server stopped too soon to tell): {shown}"
        )
    return verdict(not served, f"new connections after the signal: {shown}")


@check(
    "shutdown.idle-keep-alive-closed",
    title="an idle keep-alive connection is closed at the stop signal",
    clause="reading: graceful-shutdown",
    level=READING,
)
def idle_keep_alive_closed(ctx: Context) -> Result:
    """An idle keep-alive connection holds no request to finish: a stopping server closes it
    (RFC 9112 §9.6: a graceful close, FIN; a reset passes too, nothing is lost on an idle
    connection) at once, within IDLE_CLOSE_S of the signal, not only when the process exits
    after the in-flight response (SLOW_DELAY_S later). A client still holding it would send
    its next request into a server that will not serve it."""
    seen = in_flight(ctx)
    if seen.ready:
        return failed(seen.ready)
    extra = f" after sending {seen.idle_bytes[:60]!r}" if seen.idle_bytes else ""
    if seen.idle == "open" or seen.idle_closed_after_s is None:
        return failed(
            f"the idle connection was still open when the server {describe_exit(seen.status)}"
        )
    exited = seen.status is not None and seen.exited_after_s is not None
    in_time = seen.idle_closed_after_s <= IDLE_CLOSE_S
    return verdict(
        in_time,
        f"the idle connection was {seen.idle}{extra} {seen.idle_closed_after_s:.2f} s after the "
        f"signal (the in-flight response ended {seen.slow_ended_at - seen.signal_at:.2f} s after "
        f"it{'' if exited else ', and the server did not exit'})",
    )


@check(
    "shutdown.exits-after-in-flight",
    title="the server exits once the in-flight response has ended",
    clause="reading: graceful-shutdown",
    level=READING,
)
def exits_after_in_flight(ctx: Context) -> Result:
    """Once the last response has ended (and the app's lifespan shutdown, if any, is done)
    nothing is left to wait for: the process exits within EXIT_DEADLINE_S."""
    seen = in_flight(ctx)
    if seen.status is None:
        return failed(
            f"the server was still running {EXIT_DEADLINE_S:g} s after the in-flight response "
            f"ended ({describe_slow(seen)})"
        )
    return passed(
        f"the server {describe_exit(seen.status)} {seen.exited_after_s or 0:.2f} s after the "
        f"in-flight response ended ({describe_slow(seen)})"
    )


# -- scenario: a WebSocket open


@dataclasses.dataclass
class OpenWebSocket:
    ready: str  # "" if the WebSocket was open at the signal, else what happened
    got: str  # what the client received after the signal
    code: int | None  # the close frame's code, if a close frame came
    close_frame: bool
    events: Events
    status: int | None


def run_websocket(ctx: Context) -> OpenWebSocket:
    io = ctx.options.io_timeout_s
    probe_id = ctx.new_id("ws")
    with ctx.launch(APP) as server:
        socket_: WebSocketConnection | None = None
        try:
            response, socket_ = websocket_handshake(
                server.connect(io), io, probe_target("/shutdown/ws", probe_id)
            )
            ready = "" if socket_ is not None else f"the handshake got {response.describe()}"
        except (NoResponse, OSError) as exc:
            ready = f"the handshake failed: {exc}"
        got, code, close_frame = "", None, False
        if socket_ is not None:
            server.wait_events(probe_id, has_event("accepted"), io)
            signal_at = ask_to_stop(ctx, server)
            incoming = socket_.receive(io)
            if incoming.kind == "silence":
                got = f"no close frame and no TCP close in {io:g} s"
            else:
                got = f"{incoming.describe()} {time.time() - signal_at:.2f} s after the signal"
            if incoming.kind == "close":
                close_frame, code = True, incoming.code
                how = socket_.answer_close(incoming, ctx.options.hang_s)
                got += f", then the TCP connection was {how} after the client's close frame"
            socket_.close()
        else:
            ask_to_stop(ctx, server)
        events = server.wait_events(probe_id, has_event("handler-ended"), ctx.options.hang_s)
        status = server.wait_exit(EXIT_DEADLINE_S)
        return OpenWebSocket(ready, got, code, close_frame, events, status)


def open_websocket(ctx: Context) -> OpenWebSocket:
    return once(ctx, "shutdown.websocket", run_websocket)


@check(
    "shutdown.websocket-close-frame",
    title="a WebSocket open at the stop signal gets a close frame, 1001 or 1012",
    clause="reading: graceful-shutdown",
    level=READING,
)
def websocket_close_frame(ctx: Context) -> Result:
    """RFC 6455 §7.4.1: "1001 indicates that an endpoint is 'going away', such as a server
    going down"; 1012 "service restart" (IANA registry) says the same and passes too.
    The server starts the closing handshake (RFC 6455 §7.1.2) instead of dropping the TCP
    connection, which the client can only report as 1006 abnormal closure."""
    seen = open_websocket(ctx)
    if seen.ready:
        return failed(seen.ready)
    if not seen.close_frame:
        return failed(f"after the signal the client got {seen.got}")
    return verdict(
        seen.code in GOING_AWAY,
        f"after the signal the client got {seen.got}"
        + ("" if seen.code in GOING_AWAY else " (not 1001 going away or 1012 service restart)"),
    )


@check(
    "shutdown.websocket-app-disconnect",
    title="the app of a WebSocket closed at shutdown receives websocket.disconnect",
    clause="reading: graceful-shutdown",
    level=READING,
)
def websocket_app_disconnect(ctx: Context) -> Result:
    """websocket.disconnect is "sent to the application when either connection to the client
    is lost, either from the client closing the connection, the server closing the
    connection, or loss of the socket". An app waiting in receive() when the server stops
    should get it. A reading, not a requirement: a server that cancels the app before it closes the
    connection (hypercorn, after its graceful timeout) breaks no sentence of the spec, which
    says nothing of cancelling; but the app then cannot tell a stop from a crash."""
    seen = open_websocket(ctx)
    if seen.ready:
        return failed(seen.ready)
    disconnect = find_event(seen.events, "disconnect")
    ended = find_event(seen.events, "handler-ended")
    if disconnect is not None:
        return passed(
            f"the app received websocket.disconnect with code {disconnect.get('code')}; "
            f"the client got {seen.got}"
        )
    how = f"its handler {ended.get('how')}" if ended else "its handler never ended"
    return failed(
        f"the app never received websocket.disconnect ({how}); the client got {seen.got}; "
        f"the server {describe_exit(seen.status, 'at the end')}"
    )


# -- scenario: nothing open


@dataclasses.dataclass
class IdleStop:
    status: int | None
    took_s: float
    lifespan: Events


def run_idle_stop(ctx: Context) -> IdleStop:
    with ctx.launch(APP) as server:
        with open_http(ctx, server) as connection:
            connection.send(request_bytes("GET", probe_target("/shutdown/hello", ctx.new_id())))
            connection.read_reply()
        started = time.monotonic()
        ask_to_stop(ctx, server)
        status = server.wait_exit(EXIT_DEADLINE_S)
        return IdleStop(status, time.monotonic() - started, server.events(LIFESPAN))


@check(
    "shutdown.exit-status",
    title="a clean stop ends with a success status",
    clause="reading: graceful-shutdown",
    level=READING,
)
def exit_status(ctx: Context) -> Result:
    """Nothing is open; the stop signal comes; the server exits "after" the lifespan shutdown
    completed. No text gives the status: this grades what process managers read. Status 0
    passes. So does death by the stop signal itself once the graceful stop is done (uvicorn
    re-raises the signal): the shell convention for a signalled exit, which systemd counts as
    clean for SIGTERM and SIGINT. Death by the signal with no sign of a graceful stop (no
    lifespan.shutdown), or any other status, fails."""
    seen = once(ctx, "shutdown.idle", run_idle_stop)
    shown = describe_exit(seen.status, f"{seen.took_s:.2f} s after the stop signal")
    if seen.status is None:
        return failed(f"the server {shown}, with nothing open")
    stop_signal = getattr(signal, f"SIG{ctx.options.stop_signal}")
    if seen.status == 0:
        return passed(f"the server {shown}")
    graceful = bool(events_named(seen.lifespan, "shutdown"))
    if seen.status == -stop_signal and graceful:
        return passed(f"the server {shown}, re-raised after its lifespan shutdown completed")
    why = "" if graceful else " (the app never received lifespan.shutdown)"
    return failed(f"the server {shown}{why}")
