"""Lifespan (ASGI lifespan spec 2.0): startup before serving, state, failures, shutdown order.

Theory of operation
-------------------
Every check here starts servers of its own. Starting a server is the slow part, so the checks
that read the same run share it: a *scenario* starts one server with one lifespan variant of
the probe app (``conformance.probes.lifespan``), drives it through one life (start, requests,
stop signal, exit) and writes down what it saw; ``common.once`` runs each scenario at most once
per run, however many checks (in however many threads) grade it. Five scenarios:

* ``observed``: the app takes ``STARTUP_DELAY_S`` to start up and ``SHUTDOWN_DELAY_S`` to shut
  down, logging every step. A request is sent the moment the port accepts; then requests and a
  WebSocket look at ``state``; then a slow response is in flight when the stop signal comes.
* ``failed startup``: the app answers ``lifespan.startup`` with ``lifespan.startup.failed``.
  The server is spawned without waiting for it to accept (not starting is the behaviour under
  test) and is watched, and knocked on, until it exits or ``EXIT_DEADLINE_S`` passes.
* ``failed shutdown``: the app answers ``lifespan.shutdown`` with ``lifespan.shutdown.failed``.
* ``raising``: the app raises on the lifespan scope, or after receiving ``lifespan.startup``.

The stop signal (``ctx.options.stop_signal``) goes to the server's own process, as
``common.ask_to_stop`` explains.

The lifespan protocol is optional for servers: a server that never calls the app with a
lifespan scope (daphne) gets "not applicable" here, with the reason.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from ..client import HTTPConnection, NoResponse, Reply, Response, request_bytes, websocket_handshake
from ..framework import (
    READING,
    SHOULD,
    Context,
    Result,
    check,
    failed,
    not_applicable,
    passed,
    verdict,
)
from ..probes.lifespan import (
    LIFESPAN,
    SHUTDOWN_DELAY_S,
    SHUTDOWN_FAILURE,
    STARTUP_DELAY_S,
    STARTUP_FAILURE,
    STATE_KEY,
    STATE_VALUE,
)
from ..server import POLL_S, ServerError, ServerProcess
from .common import (
    EXIT_DEADLINE_S,
    Desc,
    Event,
    Events,
    ask_to_stop,
    describe_exit,
    events_named,
    find_event,
    grade_keys,
    has_event,
    knock,
    lookup,
    once,
    open_http,
    plain,
    probe_target,
    scope_keys,
)

SLOW_DELAY_S = 1.0  # the in-flight response's pause, across the stop signal
KNOCK_TIMEOUT_S = 0.5  # a request to a server that should not serve: how long to wait for it


def of_probe(events: Events, probe_id: str) -> Events:
    """The events one probe logged, from a server's whole log."""
    return [event for event in events if event.get("probe") == probe_id]


def tail(output: str, limit: int = 300) -> str:
    """The last lines of the server's output, on one line."""
    text = " | ".join(line.strip() for line in output.strip().splitlines()[-6:] if line.strip())
    if not text:
        return "(the server printed nothing)"
    return "it ends: " + (text if len(text) <= limit else "..." + text[-limit:])


def no_lifespan(why: str = "") -> Result:
    return not_applicable(
        "the server never called the app with a lifespan scope: it does not run the lifespan "
        f"protocol, which is optional for servers{why}"
    )


def outcome(answer: Reply | str) -> str:
    return answer if isinstance(answer, str) else answer.describe()


def message_logged(message: str, output: str) -> Result:
    """Whether the server logged or printed ``message`` (stdout and stderr are one stream)."""
    found = message in output
    return verdict(
        found,
        f"the message {message!r} is {'' if found else 'not '}in the server's output; "
        f"{tail(output)}",
    )


# -- scenario: the observed app


@dataclasses.dataclass
class Observed:
    early: Reply | str  # the request sent the moment the port accepted
    early_at: float  # time.time() the early answer arrived
    early_id: str
    state_ids: dict[str, str]  # step -> probe id: "mutate", "same connection", "new connection"
    state_answers: dict[str, str]
    websocket_id: str
    websocket_answer: str
    slow_id: str
    slow: Reply | str
    signal_at: float | None
    status: int | None
    exited_at: float | None
    events: Events
    output: str

    @property
    def lifespan(self) -> Events:
        return of_probe(self.events, LIFESPAN)

    def of(self, probe_id: str) -> Events:
        return of_probe(self.events, probe_id)


def _get(
    ctx: Context,
    server: ServerProcess,
    target: str,
    connection: HTTPConnection | None = None,
    keep: bool = False,
) -> tuple[Reply | str, HTTPConnection | None]:
    """One GET, on ``connection`` or a new one: what came back (in words if the connection
    failed) and, with ``keep``, the connection if it is still open; else it is closed."""
    try:
        connection = connection or open_http(ctx, server)
        connection.send(request_bytes("GET", target))
    except OSError as exc:
        if connection is not None:
            connection.close()
        return f"the connection failed: {exc}", None
    reply = connection.read_reply()
    if keep and isinstance(reply, Response):
        return reply, connection
    connection.close()
    return reply, None


def run_observed(ctx: Context) -> Observed:
    io = ctx.options.io_timeout_s
    with ctx.launch("conformance.probes:lifespan_observed") as server:
        # The moment the port accepts: the app must not see this before startup completed.
        early_id = ctx.new_id("early")
        early, _ = _get(ctx, server, probe_target("/lifespan/observe", early_id))
        early_at = time.time()

        # State: a request adds a key to its scope["state"]; the next ones must not see it.
        state_ids = {
            step: ctx.new_id("state") for step in ("mutate", "same connection", "new connection")
        }
        answers = {}
        target = probe_target("/lifespan/observe", state_ids["mutate"], mutate="1")
        answer, kept = _get(ctx, server, target, keep=True)
        answers["mutate"] = outcome(answer)
        target = probe_target("/lifespan/observe", state_ids["same connection"])
        if kept is not None:
            answers["same connection"] = outcome(_get(ctx, server, target, kept)[0])
        else:
            answers["same connection"] = "not sent: the first connection did not stay open"
        target = probe_target("/lifespan/observe", state_ids["new connection"])
        answers["new connection"] = outcome(_get(ctx, server, target)[0])
        websocket_id = ctx.new_id("state-ws")
        try:
            response, socket_ = websocket_handshake(
                server.connect(io), io, probe_target("/lifespan/observe", websocket_id)
            )
            websocket_answer = response.describe()
            if socket_ is not None:
                socket_.close()
        except (NoResponse, OSError) as exc:
            websocket_answer = exc.describe() if isinstance(exc, NoResponse) else str(exc)

        # Shutdown: a slow response is in flight when the stop signal comes.
        slow_id = ctx.new_id("slow")
        slow: Reply | str
        signal_at = None
        try:
            with open_http(ctx, server) as connection:
                target = probe_target("/shutdown/slow", slow_id, delay=str(SLOW_DELAY_S))
                connection.send(request_bytes("GET", target))
                server.wait_events(slow_id, has_event("first-part-sent"), io)
                signal_at = ask_to_stop(ctx, server)
                slow = connection.read_reply(timeout_s=io + SLOW_DELAY_S)
        except OSError as exc:
            slow = f"the connection failed: {exc}"
        if signal_at is None:
            signal_at = ask_to_stop(ctx, server)
        status = server.wait_exit(EXIT_DEADLINE_S + SLOW_DELAY_S + SHUTDOWN_DELAY_S)
        exited_at = time.time() if status is not None else None
        return Observed(
            early=early,
            early_at=early_at,
            early_id=early_id,
            state_ids=state_ids,
            state_answers=answers,
            websocket_id=websocket_id,
            websocket_answer=websocket_answer,
            slow_id=slow_id,
            slow=slow,
            signal_at=signal_at,
            status=status,
            exited_at=exited_at,
            events=server.all_events(),
            output=server.output(),
        )


def observed(ctx: Context) -> Observed:
    return once(ctx, "lifespan.observed", run_observed)


def lifespan_scope(seen: Observed) -> Desc | None:
    event = find_event(seen.lifespan, "scope")
    if event is None:
        return None
    scope: Desc = event["scope"]
    return scope


@check(
    "lifespan.scope",
    title="the lifespan scope's keys have the types and values the spec gives",
    clause="ASGI lifespan spec, Scope",
)
def lifespan_scope_keys(ctx: Context) -> Result:
    """Every key of spec/asgi.json's lifespan scope: required, type, allowed values.

    The allowed values include ``asgi.spec_version`` being ``"1.0"`` or ``"2.0"``: it is "the
    version of this spec being used", and the lifespan spec has no other versions.
    """
    seen = observed(ctx)
    scope = lifespan_scope(seen)
    if scope is None:
        return no_lifespan()
    problems, _ = grade_keys(scope, scope_keys("lifespan"))
    shown = {name: plain(value) for name, value in scope["items"].items()}
    return verdict(not problems, "; ".join([*problems, f"the scope was {shown}"]))


@check(
    "lifespan.startup-first",
    title="the first lifespan message is lifespan.startup",
    clause="ASGI lifespan spec, Startup",
)
def startup_first(ctx: Context) -> Result:
    seen = observed(ctx)
    if lifespan_scope(seen) is None:
        return no_lifespan()
    event = find_event(seen.lifespan, "startup-received")
    if event is None:
        return failed("the app was called with the lifespan scope but receive() gave nothing")
    kind = event.get("message_type")
    return verdict(kind == "lifespan.startup", f"the first message the app received was {kind!r}")


@check(
    "lifespan.startup-before-serving",
    title="a request sent the moment the port accepts is served only after startup completed",
    clause="ASGI lifespan spec, Startup Complete",
)
def startup_before_serving(ctx: Context) -> Result:
    """The spec: "A server must wait for this message before it starts processing connections."

    The app takes 0.5 s between receiving ``lifespan.startup`` and sending the completion.
    A server may bind its port before or after that; either way, a request sent as soon as
    the port accepts must reach the app (and be answered) only after the completion was sent.
    """
    seen = observed(ctx)
    if lifespan_scope(seen) is None:
        return no_lifespan()
    completed = find_event(seen.lifespan, "startup-complete-sent")
    request = find_event(seen.of(seen.early_id), "request")
    answer = f"the request sent as soon as the port accepted got {outcome(seen.early)}"
    if request is None:
        return failed(f"{answer}; the app never saw it")
    if completed is None or not request.get("startup_complete"):
        return failed(
            f"{answer}; the app was called with it before sending lifespan.startup.complete "
            f"(startup takes {STARTUP_DELAY_S:g} s)"
        )
    if isinstance(seen.early, Response) and seen.early_at < completed["time"]:
        return failed(f"{answer} before the app sent lifespan.startup.complete")
    waited = request["time"] - completed["time"]
    return verdict(
        isinstance(seen.early, Response) and seen.early.status == 200,
        f"{answer}; the app saw it {waited:.3f} s after it sent lifespan.startup.complete",
    )


@check(
    "lifespan.same-event-loop",
    title="the lifespan and the requests run in the same event loop",
    clause="ASGI lifespan spec, Lifespan Protocol",
    level=SHOULD,
)
def same_event_loop(ctx: Context) -> Result:
    """The spec: "Lifespans should be executed once per event loop that will be processing
    requests ... The important part is that lifespans and requests are run in the same event
    loop", so that what startup creates (a connection pool) is used on its own loop."""
    seen = observed(ctx)
    if lifespan_scope(seen) is None:
        return no_lifespan()
    startup = find_event(seen.lifespan, "startup-received")
    loops = {
        event["loop"]
        for event in seen.events
        if event.get("event") == "request" and event.get("loop") and event.get("probe") != LIFESPAN
    }
    if startup is None or not loops:
        return failed("the lifespan or the requests never reached the app")
    other = sorted(loops - {startup.get("loop")})
    return verdict(
        not other,
        f"the lifespan ran on loop {startup.get('loop')} (pid:id); the requests on "
        f"{', '.join(sorted(loops))}",
    )


def _state_of(event: Event | None) -> dict[str, Any] | None:
    if event is None or not event.get("has_state"):
        return None
    value = plain(event["state"])
    return value if isinstance(value, dict) else {"<not a dict>": value}


@check(
    "lifespan.state-in-scopes",
    title="what startup put in state is in every HTTP and WebSocket scope",
    clause="ASGI lifespan spec, Lifespan State",
)
def state_in_scopes(ctx: Context) -> Result:
    """The spec: "The server will ensure that a shallow copy of the namespace is passed into each
    subsequent request/response call into the application." Not applicable when the lifespan
    scope has no ``state`` (the server does not offer the feature)."""
    seen = observed(ctx)
    scope = lifespan_scope(seen)
    if scope is None:
        return no_lifespan()
    if lookup(scope, "state") is None:
        return not_applicable("the lifespan scope has no state: the server does not offer it")
    calls = [
        ("HTTP", seen.state_ids["new connection"], seen.state_answers["new connection"]),
        ("WebSocket", seen.websocket_id, seen.websocket_answer),
    ]
    problems = []
    notes = []
    for kind, probe_id, answer in calls:
        state = _state_of(find_event(seen.of(probe_id), "request"))
        if not seen.of(probe_id):
            problems.append(f"the {kind} request never reached the app (it got {answer})")
        elif state is None:
            problems.append(f"the {kind} scope has no state")
        elif state.get(STATE_KEY) != STATE_VALUE:
            problems.append(f"the {kind} scope's state is {state}, without {STATE_KEY!r}")
        else:
            notes.append(f"the {kind} scope's state is {state}")
    return verdict(not problems, "; ".join(problems + notes))


@check(
    "lifespan.state-copied",
    title="a request's changes to scope['state'] are not seen by the next request",
    clause="ASGI lifespan spec, Lifespan State",
)
def state_copied(ctx: Context) -> Result:
    """A shallow copy per request: a key one request adds to its ``scope["state"]`` is not in
    the state of the next request, on the same keep-alive connection or a new one."""
    seen = observed(ctx)
    scope = lifespan_scope(seen)
    if scope is None:
        return no_lifespan()
    if lookup(scope, "state") is None:
        return not_applicable("the lifespan scope has no state: the server does not offer it")
    if not events_named(seen.of(seen.state_ids["mutate"]), "mutated"):
        return failed(
            "the request that was to add a key to its state could not: "
            f"it got {seen.state_answers['mutate']} and logged {seen.of(seen.state_ids['mutate'])}"
        )
    problems = []
    seen_states = []
    unseen = []
    for step in ("same connection", "new connection"):
        event = find_event(seen.of(seen.state_ids[step]), "request")
        state = _state_of(event)
        if event is None:
            unseen.append(f"the next request on the {step} got {seen.state_answers[step]}")
        elif state is None:
            problems.append(f"the next request on the {step} has no state")
        elif "added_by_request" in state:
            problems.append(f"the next request on the {step} saw the key: its state is {state}")
        else:
            seen_states.append(f"the next request on the {step} has {state}")
    if not problems and not seen_states:
        return failed("no later request reached the app: " + "; ".join(unseen))
    return verdict(
        not problems,
        "a request added 'added_by_request' to its state; "
        + "; ".join(problems + seen_states + unseen),
    )


@check(
    "lifespan.shutdown-waits-complete",
    title="on the stop signal the server sends lifespan.shutdown and waits for the completion",
    clause="ASGI lifespan spec, Shutdown Complete",
)
def shutdown_waits_complete(ctx: Context) -> Result:
    """The spec: "A server must wait for this message before terminating." The app takes
    SHUTDOWN_DELAY_S to shut down and logs right before it sends ``lifespan.shutdown.complete``:
    that line is in the log only if the process was still alive then."""
    seen = observed(ctx)
    if lifespan_scope(seen) is None:
        return no_lifespan()
    received = find_event(seen.lifespan, "shutdown-received")
    done = find_event(seen.lifespan, "shutdown-complete-sent")
    exit_text = describe_exit(seen.status, "after the stop signal")
    if received is None:
        return failed(f"the server never sent lifespan.shutdown; it {exit_text}")
    if received.get("message_type") != "lifespan.shutdown":
        return failed(f"after startup the app received {received.get('message_type')!r}")
    if done is None:
        return failed(
            f"the server sent lifespan.shutdown, then ended the app before it could complete "
            f"({SHUTDOWN_DELAY_S:g} s later); it {exit_text}"
        )
    took = done["time"] - received["time"]
    return passed(
        f"lifespan.shutdown came {received['time'] - (seen.signal_at or 0):.2f} s after the "
        f"signal; the app sent the completion {took:.2f} s later, and the server {exit_text}"
    )


@check(
    "lifespan.shutdown-after-connections",
    title="lifespan.shutdown comes only after the in-flight request has ended",
    clause="ASGI lifespan spec, Shutdown",
)
def shutdown_after_connections(ctx: Context) -> Result:
    """lifespan.shutdown is "sent to the application when the server has stopped accepting
    connections and closed all active connections". A slow response is in flight when the stop
    signal comes; its handler must have ended (finished, or been cancelled if the server
    aborts it) before the app receives lifespan.shutdown."""
    seen = observed(ctx)
    if lifespan_scope(seen) is None:
        return no_lifespan()
    received = find_event(seen.lifespan, "shutdown-received")
    if received is None:
        return not_applicable(
            "the server never sent lifespan.shutdown (see shutdown-waits-complete)"
        )
    slow = seen.of(seen.slow_id)
    ended = find_event(slow, "handler-ended")
    if not slow:
        return failed(f"the slow request never reached the app: {outcome(seen.slow)}")
    if ended is None:
        return failed(
            "the app received lifespan.shutdown while the in-flight request's handler was still "
            f"running (and it never ended); the client got {outcome(seen.slow)}"
        )
    gap = received["time"] - ended["time"]
    return verdict(
        gap >= 0,
        f"the in-flight request's handler {ended.get('how')} "
        f"{abs(gap):.3f} s {'before' if gap >= 0 else 'after'} lifespan.shutdown reached the app; "
        f"the client got {outcome(seen.slow)}",
    )


# -- scenario: startup fails


@dataclasses.dataclass
class FailedStartup:
    status: int | None
    exit_s: float | None  # from the app's lifespan.startup.failed to the exit (+- a knock)
    knocks: dict[str, int]  # what requests got, counted
    served: Events  # requests that reached the app
    events: Events
    output: str
    lifespan_seen: bool


def _knock(server: ServerProcess, probe_id: str) -> str:
    """A request to a server that should not serve, in a word or two ("answered 200", ...)."""
    answer = knock(server, probe_target("/lifespan/observe", probe_id), KNOCK_TIMEOUT_S)
    return f"answered {answer.status}" if isinstance(answer, Response) else answer


def run_failed_startup(ctx: Context) -> FailedStartup:
    probe_id = ctx.new_id("knock")
    knocks: dict[str, int] = {}
    with ctx.spawn("conformance.probes:failing_startup") as server:
        started = time.monotonic()
        failed_at = None
        served_at = None
        while server.process.poll() is None:
            now = time.monotonic()
            lifespan = server.events(LIFESPAN)
            if failed_at is None and events_named(lifespan, "startup-failed-sent"):
                failed_at = now
            if failed_at is not None and now > failed_at + EXIT_DEADLINE_S:
                break
            if failed_at is None and now > started + ctx.options.startup_timeout_s:
                break
            if served_at is not None and not lifespan and now > served_at + ctx.options.hang_s:
                break  # serving without ever running the lifespan: no lifespan protocol
            what = _knock(server, probe_id)
            knocks[what] = knocks.get(what, 0) + 1
            if what.startswith("answered") and served_at is None:
                served_at = now
            time.sleep(POLL_S)
        status = server.process.poll()
        exited_at = time.time()
        events = server.all_events()
        lifespan = of_probe(events, LIFESPAN)
        sent = find_event(lifespan, "startup-failed-sent")
        return FailedStartup(
            status=status,
            exit_s=exited_at - sent["time"] if status is not None and sent else None,
            knocks=knocks,
            served=of_probe(events, probe_id),
            events=events,
            output=server.output(),
            lifespan_seen=bool(lifespan),
        )


def failed_startup(ctx: Context) -> FailedStartup:
    return once(ctx, "lifespan.failed-startup", run_failed_startup)


def _knocks(seen: FailedStartup) -> str:
    if not seen.knocks:
        return "no request was tried"
    parts = [f"{what} x{count}" for what, count in seen.knocks.items()]
    return "requests tried meanwhile: " + ", ".join(parts)


@check(
    "lifespan.startup-failed-not-served",
    title="after lifespan.startup.failed no request reaches the app",
    clause="ASGI lifespan spec, Startup Complete",
)
def startup_failed_not_served(ctx: Context) -> Result:
    """The server "must wait for [lifespan.startup.complete] before it starts processing
    connections"; after lifespan.startup.failed that message never comes. Requests are tried
    throughout: refused, closed, reset, silence or an error status from the server itself all
    pass; the app being called, or a 2xx, fails."""
    seen = failed_startup(ctx)
    if not seen.lifespan_seen:
        return no_lifespan(f"; {_knocks(seen)}")
    ok_answers = [what for what in seen.knocks if what.startswith("answered 2")]
    return verdict(
        not seen.served and not ok_answers,
        f"{len(seen.served)} requests reached the app; {_knocks(seen)}; "
        f"the server {describe_exit(seen.status)}",
    )


@check(
    "lifespan.startup-failed-exits",
    title="after lifespan.startup.failed the server exits",
    clause="ASGI lifespan spec, Startup Failed",
    level=SHOULD,
)
def startup_failed_exits(ctx: Context) -> Result:
    """The spec: "If a server sees this it should log/print the message provided and then exit."
    The server has ``EXIT_DEADLINE_S`` from the app's message to exit."""
    seen = failed_startup(ctx)
    if not seen.lifespan_seen:
        return no_lifespan()
    if seen.status is None:
        return failed(
            f"the server was still running {EXIT_DEADLINE_S:g} s after lifespan.startup.failed; "
            + _knocks(seen)
        )
    took = f"{seen.exit_s:.1f} s" if seen.exit_s is not None else "soon"
    return passed(f"the server {describe_exit(seen.status)} {took} after lifespan.startup.failed")


@check(
    "lifespan.startup-failed-logged",
    title="the server logs or prints the message of lifespan.startup.failed",
    clause="ASGI lifespan spec, Startup Failed",
    level=SHOULD,
)
def startup_failed_logged(ctx: Context) -> Result:
    """The spec: "If a server sees this it should log/print the message provided" (stdout or
    stderr: the output is one stream)."""
    seen = failed_startup(ctx)
    if not seen.lifespan_seen:
        return no_lifespan()
    return message_logged(STARTUP_FAILURE, seen.output)


@check(
    "lifespan.startup-failed-exit-status",
    title="a server that exits after lifespan.startup.failed exits with a failure status",
    clause="reading: startup-failed-exit-status",
    level=READING,
)
def startup_failed_exit_status(ctx: Context) -> Result:
    """The spec says only "exit". A separate check of the reading startup-failed-exit-status,
    because the exit status is the one thing a process manager reads: systemd's
    ``Restart=on-failure``, Docker's restart policies, supervisord and a deploy script's
    ``set -e`` all take status 0 for "done, as intended". A server that gives up because the
    application could not start and exits with 0 reports a failure as a success. Any non-zero
    status (or death by a signal) passes; not applicable when the server did not exit."""
    seen = failed_startup(ctx)
    if not seen.lifespan_seen:
        return no_lifespan()
    if seen.status is None:
        return not_applicable("the server did not exit (see startup-failed-exits)")
    return verdict(
        seen.status != 0, f"after lifespan.startup.failed the server {describe_exit(seen.status)}"
    )


# -- scenario: shutdown fails


@dataclasses.dataclass
class FailedShutdown:
    status: int | None
    exit_s: float | None  # from the app's lifespan.shutdown.failed to the exit
    events: Events
    output: str


def run_failed_shutdown(ctx: Context) -> FailedShutdown:
    with ctx.launch("conformance.probes:failing_shutdown") as server:
        server.wait_events(LIFESPAN, has_event("startup-received"), ctx.options.hang_s)
        ask_to_stop(ctx, server)
        lifespan = server.wait_events(
            LIFESPAN,
            lambda got: (
                bool(events_named(got, "shutdown-failed-sent")) or server.process.poll() is not None
            ),
            EXIT_DEADLINE_S,
        )
        status = server.wait_exit(EXIT_DEADLINE_S)
        sent = find_event(lifespan, "shutdown-failed-sent")
        exit_s = time.time() - sent["time"] if status is not None and sent else None
        return FailedShutdown(status, exit_s, server.all_events(), server.output())


def failed_shutdown(ctx: Context) -> FailedShutdown:
    return once(ctx, "lifespan.failed-shutdown", run_failed_shutdown)


def _no_shutdown_failure(seen: FailedShutdown) -> Result | None:
    """Not applicable when the app never got to fail lifespan.shutdown; else None."""
    lifespan = of_probe(seen.events, LIFESPAN)
    if not lifespan:
        return no_lifespan()
    if not events_named(lifespan, "shutdown-failed-sent"):
        return not_applicable(
            f"the server never sent lifespan.shutdown, so the app could not fail it; it "
            f"{describe_exit(seen.status, 'after the stop signal')}"
        )
    return None


@check(
    "lifespan.shutdown-failed-exits",
    title="after lifespan.shutdown.failed the server still exits",
    clause="ASGI lifespan spec, Shutdown Failed",
    level=SHOULD,
)
def shutdown_failed_exits(ctx: Context) -> Result:
    """The spec: "If a server sees this it should log/print the message provided and then
    terminate." The server has EXIT_DEADLINE_S from the app's message to exit."""
    seen = failed_shutdown(ctx)
    not_graded = _no_shutdown_failure(seen)
    if not_graded is not None:
        return not_graded
    if seen.status is None:
        return failed(
            f"the server was still running {EXIT_DEADLINE_S:g} s after lifespan.shutdown.failed"
        )
    took = f"{seen.exit_s:.2f} s" if seen.exit_s is not None else "soon"
    return passed(f"the server {describe_exit(seen.status)} {took} after lifespan.shutdown.failed")


@check(
    "lifespan.shutdown-failed-logged",
    title="the server logs or prints the message of lifespan.shutdown.failed",
    clause="ASGI lifespan spec, Shutdown Failed",
    level=SHOULD,
)
def shutdown_failed_logged(ctx: Context) -> Result:
    """The spec: "If a server sees this it should log/print the message provided"."""
    seen = failed_shutdown(ctx)
    not_graded = _no_shutdown_failure(seen)
    if not_graded is not None:
        return not_graded
    return message_logged(SHUTDOWN_FAILURE, seen.output)


# -- scenario: the app raises


@dataclasses.dataclass
class Raising:
    started: str  # "" if the server started, else why not
    answer: str  # what a request got
    status: int | None
    events: Events


def run_raising(ctx: Context, app: str) -> Raising:
    probe_id = ctx.new_id("raising")
    with ctx.spawn(app) as server:
        try:
            server.wait_ready(ctx.options.startup_timeout_s)
        except ServerError as exc:
            return Raising(str(exc).splitlines()[0], "", server.process.poll(), server.all_events())
        answer, _ = _get(ctx, server, probe_target("/lifespan/observe", probe_id))
        ask_to_stop(ctx, server)
        status = server.wait_exit(EXIT_DEADLINE_S)
        return Raising("", outcome(answer), status, server.all_events())


def _grade_raising(seen: Raising, what: str) -> Result:
    calls = events_named(of_probe(seen.events, LIFESPAN), "scope")
    if seen.started:
        return failed(f"after the app {what}, the server did not serve: {seen.started}")
    if not calls:
        return no_lifespan(f"; a request got {seen.answer}")
    served = seen.answer.startswith("200")
    return verdict(
        served and len(calls) == 1,
        f"the app {what}; a request then got {seen.answer}; the app was called with a lifespan "
        f"scope {len(calls)} time(s) in all, through the stop signal, and the server "
        f"{describe_exit(seen.status, 'after it')}",
    )


@check(
    "lifespan.raise-on-scope-continues",
    title="an app that raises on the lifespan scope is served without lifespan",
    clause="ASGI lifespan spec, Scope",
)
def raise_on_scope(ctx: Context) -> Result:
    """The spec: "If an exception is raised when calling the application callable with a
    lifespan.startup message or a scope with type lifespan, the server must continue but not
    send any lifespan events." Continue: the server serves requests. No further events: the
    app is not called with a lifespan scope again, not even at the stop signal."""
    seen = once(
        ctx, "lifespan.raising", lambda c: run_raising(c, "conformance.probes:raising_lifespan")
    )
    return _grade_raising(seen, "raised as soon as it was called with the lifespan scope")


@check(
    "lifespan.raise-on-startup-continues",
    title="an app that raises on lifespan.startup is served without lifespan",
    clause="ASGI lifespan spec, Scope",
)
def raise_on_startup(ctx: Context) -> Result:
    """As raise-on-scope-continues, with the app raising after it received lifespan.startup."""
    seen = once(
        ctx,
        "lifespan.raising-startup",
        lambda c: run_raising(c, "conformance.probes:raising_startup"),
    )
    return _grade_raising(seen, "raised after it received lifespan.startup")
