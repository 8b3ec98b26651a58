"""The app mode: the suite's ASGI checks against an *application*, in process, with no sockets.

``asgi-conformance --app module:app`` (and ``pytest --asgi-conformance module:app``) grades
what an application sends, where the rest of the suite grades what a server sends.

Theory of operation
-------------------
Each check gets a server of its own: sansio-asgi's asyncio driver and sans-IO core behind
``sansio_asgi.testing.MemoryServer``, on an event loop in a thread of its own, with the app
wrapped in an ``Observer``. The check is the client. It writes real request bytes into a
``MemoryStream`` and reads the answer with the suite's own client (``client.py``, which parses
every byte itself) through ``_MemorySocket``, a socket's face on the stream. So the app sees what
a server on the network would give it, and the server judges every message the app sends, as
it would in production:

* ``send()`` raises ``ASGIProtocolError`` for a message the spec does not allow there, in words
  that end with the clause of spec/asgi.json they enforce ("http.response.body: sent before
  http.response.start (ASGI HTTP spec, Response Body)"). The observer records the message and
  the error, then lets the error go on into the app, as a server does.
* The core reports what it recovered from (the app returned without a response, or without
  answering a WebSocket handshake) as ``AppMisbehaved`` events; the observer is the server's
  ``report``, and gives each event to the app call that had just ended (the core emits it
  while that call's end is handled, before any other task runs).
* The app's own exceptions escape the wrapper. ``ClientDisconnected`` does not count: it is the
  server's ``send()`` saying the client left (ASGI HTTP spec 2.4), and the app may let it go.
  Nor does whatever the app raises once ``receive()`` gave it ``http.disconnect`` or
  ``websocket.disconnect``: the client left, and the spec asks nothing of the app then.
* The one rule the spec gives the app alone and a server does not enforce (response header
  names must be lowercased) is checked by the observer itself.

Each of these is a ``Finding``: the check, the request, the app's message, what was wrong and
the clause. A check fails when it has findings; what the app answered is in its observed text
either way. The app's routes are the user's: the HTTP checks request the ``paths`` given ("/"
by default), the body checks ``post_path``, the WebSocket checks the path given or found by
trying a handshake on a few usual ones, and the exception check ``error_paths``, routes whose
handlers raise (before or during their response): there the exception is what is exercised,
not a finding, and the app's messages up to it are graded as everywhere.

sansio_asgi is imported when a check runs, not with this module: ``asgi-conformance --server``
grades other servers without it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import datetime
import fnmatch
import json
import logging
import re
import shutil
import socket
import sys
import textwrap
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from . import client as wire
from .framework import ERROR, FAIL, NOT_APPLICABLE, PASS
from .report import MARKS, summary

if TYPE_CHECKING:
    from sansio_asgi.core.events import Event
    from sansio_asgi.testing import MemoryServer

T = TypeVar("T")

ASGIApp = Callable[..., Awaitable[None]]

GROUPS = {
    "http": "HTTP requests (ASGI HTTP spec)",
    "websocket": "WebSocket sessions (ASGI WebSocket spec)",
    "lifespan": "Lifespan (ASGI lifespan spec)",
}

# What each kind of finding is, in the report's words.
INVALID = "invalid message"  # send() raised ASGIProtocolError
RECOVERED = "recovered by the server"  # the core's AppMisbehaved
RULE = "broken rule"  # an obligation of the app's that the observer checks
EXCEPTION = "exception"  # the app raised
FAILURE = "failure"  # the app's lifespan said it failed, or never answered

ERROR_HANDLING = "ASGI spec, Error Handling"
RESPONSE_START = "ASGI HTTP spec, Response Start"

# The clause of each AppMisbehaved reason the core gives (sansio_asgi/core/http11.py, http2.py,
# websocket.py), from the readings of spec/asgi.json that decide what the server does then.
RECOVERED_CLAUSES = {
    "ASGI callable returned without starting the response": ERROR_HANDLING,
    "ASGI callable returned without completing the response": ERROR_HANDLING,
    "ASGI callable returned without accepting or closing": "ASGI WebSocket spec, Connect",
    "ASGI callable returned before its response was complete": (
        "ASGI extensions, Websocket Denial Response"
    ),
}

# The messages that carry response headers, and the clause that says their names are lowercase.
HEADER_MESSAGES = {
    "http.response.start": RESPONSE_START,
    "websocket.accept": "ASGI WebSocket spec, Accept",
    "websocket.http.response.start": "ASGI extensions, Websocket Denial Response",
}

# What ``receive()`` gives once the client has left (ASGI HTTP spec, Disconnect; ASGI
# WebSocket spec, Disconnect): an exception the app raises after it is not the app's fault.
DISCONNECTS = ("http.disconnect", "websocket.disconnect")

# Paths a WebSocket route is looked for on when none is given, after the HTTP paths.
WEBSOCKET_PATHS = ("/ws", "/websocket", "/ws/")

HOST = "testserver"
UNKNOWN_PATH = "/asgi-conformance/nowhere"  # a path no app should have a route for
LARGE_BODY_BYTES = 256 * 1024 + 1  # four of the driver's 64 KiB reads, and one byte more
MESSAGES_BEFORE_CLOSE = 16
# How much longer than a wait on the app's loop the thread that asked for it waits, so the
# loop's own deadline (and its cancellation) is the one that fires.
LOOP_GRACE_S = 5.0

_CLAUSE = re.compile(r"\(((?:ASGI|RFC) [^()]*)\)")


@dataclasses.dataclass(frozen=True)
class AppOptions:
    """Where the app's routes are, and how long to wait for what."""

    paths: tuple[str, ...] = ("/",)  # requested by every HTTP check (GET, HEAD, OPTIONS, ...)
    post_path: str | None = None  # where bodies go; None: the first of paths
    websocket_path: str | None = None  # None: found by trying a handshake
    error_paths: tuple[str, ...] = ()  # routes that raise; none: app.http.exception is n/a
    io_timeout_s: float = 5.0  # the longest a check waits for bytes or an app call's end

    @property
    def body_path(self) -> str:
        return self.post_path or self.paths[0]


@dataclasses.dataclass(frozen=True)
class Finding:
    """One thing the app did that breaks the spec (or an exception it raised)."""

    check: str
    request: str  # "GET /stream", "WebSocket /ws", "lifespan"
    kind: str
    words: str  # what was wrong
    clause: str
    message: str = ""  # the app's message, shortened; "" for an exception

    def summary(self) -> str:
        """What was wrong and the clause, without the request: the same for every request
        that met the same fault (conformance/APPS.md quotes it)."""
        if f"({self.clause})" in self.words:  # the server's words name it already
            return f"{self.kind}: {self.words}"
        return f"{self.kind}: {self.words} ({self.clause})"

    def describe(self) -> str:
        text = f"{self.request}: {self.summary()}"
        return f"{text}; the message: {self.message}" if self.message else text

    def as_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class AppResult:
    status: str
    observed: str
    findings: tuple[Finding, ...] = ()


@dataclasses.dataclass(frozen=True)
class AppCheck:
    id: str
    group: str
    title: str
    clause: str
    run: Callable[[Context], AppResult]


@dataclasses.dataclass(frozen=True)
class AppOutcome:
    check: AppCheck
    result: AppResult
    duration_s: float


@dataclasses.dataclass
class AppRun:
    app: str
    started: str
    outcomes: list[AppOutcome]


CHECKS: dict[str, AppCheck] = {}


def app_check(
    id: str, *, title: str, clause: str
) -> Callable[[Callable[[Context], AppResult]], Callable[[Context], AppResult]]:
    """Register a check; ``id`` is ``app.<group>.<name>``."""
    group = id.split(".")[1]
    if not id.startswith("app.") or group not in GROUPS:
        raise ValueError(f"check id {id!r} is not 'app.<group>.<name>' ({', '.join(GROUPS)})")

    def register(function: Callable[[Context], AppResult]) -> Callable[[Context], AppResult]:
        if id in CHECKS:
            raise ValueError(f"check {id!r} is registered twice")
        CHECKS[id] = AppCheck(id, group, title, clause, function)
        return function

    return register


def grouped(findings: Sequence[Finding]) -> list[str]:
    """The findings in words, one line per fault with every request that met it, and the
    first such request's message."""
    requests: dict[str, list[Finding]] = {}
    for finding in findings:
        requests.setdefault(finding.summary(), []).append(finding)
    lines = []
    for summary_, same in requests.items():
        text = f"{', '.join(dict.fromkeys(f.request for f in same))}: {summary_}"
        if same[0].message:
            text += f"; the message: {same[0].message}"
        lines.append(text)
    return lines


def select(patterns: Sequence[str] | None) -> list[AppCheck]:
    return [
        item
        for item in CHECKS.values()
        if not patterns or any(fnmatch.fnmatchcase(item.id, pattern) for pattern in patterns)
    ]


# ---------------------------------------------------------------------- what the app did


def shorten(value: Any, limit: int = 200) -> str:
    """A message as the report shows it: its repr, with long bytes and strings cut."""

    def cut(item: Any) -> Any:
        if isinstance(item, (bytes, str)) and len(item) > 40:
            return item[:32]
        if isinstance(item, Mapping):
            return {key: cut(inner) for key, inner in item.items()}
        if isinstance(item, (list, tuple)):
            return [cut(inner) for inner in item]
        return item

    text = repr(cut(value)) if isinstance(value, Mapping) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clause_of(error: BaseException) -> str:
    """The clause an ``ASGIProtocolError``'s words end with: the last parenthesis that starts
    with "ASGI" or "RFC", up to any ";" or ":" that explains it further."""
    found = _CLAUSE.findall(str(error))
    if not found:
        return ERROR_HANDLING
    return re.split(r"[;:]", found[-1])[0].strip()


def words_of(error: BaseException) -> str:
    return f"send() raised {type(error).__name__}: {error}"


def request_of(scope: Mapping[str, Any]) -> str:
    kind = scope.get("type")
    if kind == "lifespan":
        return "lifespan"
    raw = scope.get("raw_path")
    target = raw.decode("latin-1") if isinstance(raw, bytes) else str(scope.get("path", "?"))
    query = scope.get("query_string") or b""
    if query:
        target += "?" + query.decode("latin-1")
    if kind == "websocket":
        return f"WebSocket {target}"
    return f"{scope.get('method', '?')} {target}"


@dataclasses.dataclass(eq=False)
class Call:
    """One app call, as the observer saw it."""

    scope: Mapping[str, Any]
    request: str
    received: list[str] = dataclasses.field(default_factory=list)  # message types, in order
    sent: list[str] = dataclasses.field(default_factory=list)  # the ones send() took
    more_body: bool = False  # the last body message sent said more_body
    findings: list[tuple[str, str, str, str]] = dataclasses.field(default_factory=list)
    send_errors: list[BaseException] = dataclasses.field(default_factory=list)
    send_disconnected: bool = False  # a send() raised ClientDisconnected: the client had left
    failure: str = ""  # the 'message' of a lifespan.*.failed the app sent
    error: BaseException | None = None
    done: bool = False

    @property
    def kind(self) -> str:
        return str(self.scope.get("type"))

    @property
    def client_left(self) -> bool:
        """The server told the app the client had left: ``receive()`` gave a disconnect
        message, or a ``send()`` raised ``ClientDisconnected``."""
        return self.send_disconnected or any(kind in DISCONNECTS for kind in self.received)

    @property
    def silent(self) -> bool:
        """The app sent nothing, valid or not."""
        return not self.sent and not self.send_errors

    def ending(self) -> str:
        """How the call went, in words: what it sent, and how it ended."""
        if not self.done:
            return f"{self.request}: still running"
        sent = f"{len(self.sent)} message{'' if len(self.sent) == 1 else 's'} sent"
        if self.send_disconnected:
            sent += ", then a send() raised ClientDisconnected"
        if self.error is None:
            end = "returned"
        elif isinstance(self.error, asyncio.CancelledError):
            end = "was cancelled"
        else:
            end = f"raised {type(self.error).__name__}"
            if self.client_left:
                end += " after the client left"
        return f"{self.request}: {sent}; the app {end}"

    def when(self) -> str:
        """Where the app was in its response, in words, for what it raised."""
        if not self.sent:
            return "before sending any message"
        if self.response_complete():
            return "after its response was complete"
        return f"after {self.sent[-1]}"

    def response_complete(self) -> bool:
        """Whether the app had sent its whole response (or accepted or closed the socket)."""
        if any(kind in ("websocket.accept", "websocket.close") for kind in self.sent):
            return True
        return bool(self.sent) and self.sent[-1].endswith("response.body") and not self.more_body


class Observer:
    """The app, wrapped: every message it sends and everything the server says about it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.calls: list[Call] = []
        self.last_finished: Call | None = None
        self._waiters: list[asyncio.Future[None]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from sansio_asgi.core.errors import ASGIProtocolError, ClientDisconnected

        call = Call(scope, request_of(scope))
        self.calls.append(call)
        self._wake()

        async def observed_receive() -> Any:
            message = await receive()
            call.received.append(str(message.get("type")))
            self._wake()
            return message

        async def observed_send(message: Any) -> None:
            if isinstance(message, Mapping):
                self._check_rules(call, message)
            try:
                await send(message)
            except ASGIProtocolError as exc:
                call.send_errors.append(exc)
                call.findings.append((INVALID, words_of(exc), clause_of(exc), shorten(message)))
                raise
            except ClientDisconnected:
                call.send_disconnected = True
                raise
            if isinstance(message, Mapping):
                kind = str(message.get("type"))
                call.sent.append(kind)
                if kind.endswith("response.body"):
                    call.more_body = bool(message.get("more_body", False))
                elif kind.endswith(".failed"):
                    call.failure = str(message.get("message", ""))

        try:
            await self.app(scope, observed_receive, observed_send)
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            call.done = True
            self.last_finished = call
            self._wake()

    def _check_rules(self, call: Call, message: Mapping[str, Any]) -> None:
        """The app's own obligations that a server lets pass. Headers the app gives as a
        one-shot iterator are left alone: reading them here would leave none for the server."""
        clause = HEADER_MESSAGES.get(str(message.get("type")))
        headers = message.get("headers")
        if clause is None or not isinstance(headers, (list, tuple)):
            return
        for pair in headers:
            if isinstance(pair, (list, tuple)) and len(pair) == 2:
                name = pair[0]
                if isinstance(name, bytes) and name != name.lower():
                    words = f"header name {name!r} is not lowercased: header names must be"
                    call.findings.append((RULE, words + " lowercased", clause, shorten(message)))
                    return

    def report(self, event: Event) -> None:
        """The server's ``report``: the core's fact events."""
        from sansio_asgi.core.events import AppMisbehaved

        if type(event) is AppMisbehaved:
            clause = RECOVERED_CLAUSES.get(event.reason, ERROR_HANDLING)
            call = self.last_finished
            if call is not None:
                call.findings.append((RECOVERED, event.reason, clause, ""))

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until ``condition`` holds, looking again whenever an app call starts, receives
        a message or ends; False at the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            waiter = loop.create_future()
            self._waiters.append(waiter)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(waiter, remaining)
        return True

    def connections_idle(self) -> bool:
        """Every app call but the lifespan's has returned."""
        return all(call.done for call in self.calls if call.kind != "lifespan")


def _derived_from(
    exc: BaseException, causes: Sequence[BaseException] | type[BaseException]
) -> bool:
    """Whether ``exc`` is one of ``causes`` (or of that class), or was raised because of one:
    through ``__cause__``, ``__context__`` and the members of an exception group."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(causes, type):
            if isinstance(current, causes):
                return True
        elif any(current is cause for cause in causes):
            return True
        members = getattr(current, "exceptions", None)
        if isinstance(members, tuple):
            pending.extend(member for member in members if isinstance(member, BaseException))
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)
    return False


def exception_finding(check: str, call: Call) -> Finding | None:
    """The finding for what the call raised, if anything counts: not a cancellation by the
    server, not the server's ``ClientDisconnected`` (or what the app raised because of it),
    not anything raised after ``receive()`` said the client had left, not the server's own
    ``ASGIProtocolError`` from ``send()`` (already a finding)."""
    from sansio_asgi.core.errors import ClientDisconnected

    exc = call.error
    if exc is None or isinstance(exc, asyncio.CancelledError) or call.client_left:
        return None
    if _derived_from(exc, call.send_errors) or _derived_from(exc, ClientDisconnected):
        return None
    words = f"the app raised {type(exc).__name__}: {str(exc)[:160]} ({call.when()})"
    return Finding(check, call.request, EXCEPTION, words, ERROR_HANDLING)


# ---------------------------------------------------------------------- the loop and the socket


class _LoopThread:
    """An event loop in a thread of its own, where the server and the app run."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="asgi-conformance", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    @property
    def ident(self) -> int | None:
        return self._thread.ident

    def run(self, coroutine: Awaitable[T], timeout_s: float) -> T:
        """Run ``coroutine`` on the loop and wait for it; TimeoutError after ``timeout_s``."""
        future = asyncio.run_coroutine_threadsafe(_as_coroutine(coroutine), self.loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"nothing after {timeout_s} s") from None

    def submit(self, coroutine: Awaitable[Any]) -> None:
        """Start ``coroutine`` on the loop without waiting for it."""
        asyncio.run_coroutine_threadsafe(_as_coroutine(coroutine), self.loop)

    def close(self, timeout_s: float) -> None:
        """Cancel what still runs, stop the loop, and close it."""
        with contextlib.suppress(TimeoutError):
            self.run(_cancel_all(), timeout_s)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout_s)
        if not self._thread.is_alive():
            self.loop.close()


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def _bounded(awaitable: Awaitable[T], timeout_s: float) -> T:
    try:
        return await asyncio.wait_for(awaitable, timeout_s)
    except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
        raise TimeoutError(f"nothing after {timeout_s:g} s") from None


async def _cancel_all() -> None:
    loop = asyncio.get_running_loop()
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()


class _MemorySocket:
    """What ``client.HTTPConnection`` needs of a socket, over a ``MemoryStream``: ``recv`` with
    a timeout, ``sendall`` and ``close``. Writes go in order on the loop without waiting, so the
    client reads while the server reads (a server that stops reading a body it does not want
    cannot block the client's reading of its answer)."""

    def __init__(self, loop: _LoopThread, stream: Any) -> None:
        self._loop = loop
        self._stream = stream
        self._timeout_s = 5.0
        self._lock: asyncio.Lock | None = None

    def settimeout(self, timeout_s: float | None) -> None:
        self._timeout_s = 5.0 if timeout_s is None else timeout_s

    def recv(self, max_bytes: int) -> bytes:
        async def read() -> bytes:
            try:
                data: bytes = await asyncio.wait_for(self._stream.read(max_bytes), self._timeout_s)
            except asyncio.TimeoutError:
                raise TimeoutError from None
            except RuntimeError as exc:  # this side closed it
                raise OSError(str(exc)) from None
            return data

        return self._loop.run(read(), self._timeout_s + LOOP_GRACE_S)

    def sendall(self, data: bytes) -> None:
        self._loop.submit(self._write(bytes(data)))

    async def _write(self, data: bytes) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            # The server closed or reset the connection (or the check did): the bytes are lost,
            # as on a socket, and the read side says what happened.
            with contextlib.suppress(OSError, RuntimeError):
                await self._stream.write(data)

    def close(self) -> None:
        """Close the client's end: with a response unread, the server sees a reset."""
        with contextlib.suppress(TimeoutError):
            self._loop.run(self._stream.aclose(), self._timeout_s + LOOP_GRACE_S)


class _Quiet(logging.Handler):
    """Takes the server's log records of the app's loop thread, so the report is the only
    output (the server logs every exception of the app with its traceback)."""

    def __init__(self, thread: int | None) -> None:
        super().__init__()
        self.thread = thread

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self.thread

    def emit(self, record: logging.LogRecord) -> None:
        pass


# ---------------------------------------------------------------------- one check's server


class Session:
    """One check's server: a ``MemoryServer`` serving the observed app, and the client's side.

    ``startup`` runs the app's lifespan first (as a server does), so routes that need what the
    startup set up work; a startup that fails makes the check not applicable.
    """

    def __init__(self, check: str, app: ASGIApp, options: AppOptions) -> None:
        self.check = check
        self.options = options
        self.observer = Observer(app)
        self.notes: list[str] = []
        self._loop = _LoopThread()
        self._quiet = _Quiet(self._loop.ident)
        logging.getLogger("sansio_asgi.error").addHandler(self._quiet)
        try:
            self.server: MemoryServer = self._loop.run(self._make_server(), options.io_timeout_s)
        except BaseException:
            self._loop.close(options.io_timeout_s)
            logging.getLogger("sansio_asgi.error").removeHandler(self._quiet)
            raise

    async def _make_server(self) -> MemoryServer:
        from sansio_asgi.testing import MemoryServer

        return MemoryServer(
            self.observer, server=(HOST, 80), report=self.observer.report, lifespan="auto"
        )

    def run(self, coroutine: Awaitable[T], timeout_s: float | None = None) -> T:
        """Run ``coroutine`` on the app's loop; TimeoutError after ``timeout_s`` (the options'
        ``io_timeout_s`` by default), when the loop cancels it."""
        limit = self.options.io_timeout_s if timeout_s is None else timeout_s
        return self._loop.run(_bounded(coroutine, limit), limit + LOOP_GRACE_S)

    def close(self) -> None:
        timeout_s = self.options.io_timeout_s
        try:
            with contextlib.suppress(Exception):
                self.run(self.server.aclose())
        finally:
            self._loop.close(timeout_s)
            logging.getLogger("sansio_asgi.error").removeHandler(self._quiet)

    # lifespan

    def startup(self) -> str:
        """Run the lifespan startup; "" if the app can serve, else why not."""
        from sansio_asgi.testing import LifespanFailed

        try:
            self.run(self.server.startup())
        except LifespanFailed as exc:
            return str(exc)
        except TimeoutError:
            return f"lifespan.startup unanswered after {self.options.io_timeout_s:g} s"
        return ""

    def shutdown(self) -> bool:
        """Run the lifespan shutdown; False if it did not end in time."""
        try:
            self.run(self.server.shutdown())
        except TimeoutError:
            return False
        return True

    @property
    def lifespan_call(self) -> Call | None:
        return next((call for call in self.observer.calls if call.kind == "lifespan"), None)

    def wait_until(self, condition: Callable[[], bool]) -> bool:
        """Wait on the loop until ``condition`` holds (True) or ``io_timeout_s`` passes."""
        timeout_s = self.options.io_timeout_s
        return self.run(self.observer.wait_until(condition, timeout_s), timeout_s + LOOP_GRACE_S)

    # connections

    def connect(self) -> wire.HTTPConnection:
        stream = self.run(self.server.connect())
        sock = cast(socket.socket, _MemorySocket(self._loop, stream))
        return wire.HTTPConnection(sock, self.options.io_timeout_s)

    def wait_calls_done(self, what: str) -> None:
        """Wait for the app calls to end; a note if one has not, then let it run on."""
        if not self.wait_until(self.observer.connections_idle):
            running = [call.request for call in self.observer.calls if not call.done]
            self.notes.append(
                f"{', '.join(running)}: the app's call had not returned "
                f"{self.options.io_timeout_s:g} s {what}"
            )

    def exchange(
        self,
        method: str,
        target: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        pieces: Sequence[bytes] = (),
    ) -> wire.Reply:
        """One request on a new connection: the head, then ``body`` (or ``pieces`` one write
        each); the reply read; the app's call awaited; the connection closed."""
        connection = self.connect()
        try:
            connection.send(wire.request_bytes(method, target, list(headers), host=HOST) + body)
            for piece in pieces:
                connection.send(piece)
            reply = connection.read_reply(method)
            self.wait_calls_done("after its response")
        finally:
            connection.close()
        self.notes.append(f"{method} {target}: {describe(reply)}")
        return reply

    # the verdict

    def findings(self, expect_exception: Callable[[Call], bool] | None = None) -> list[Finding]:
        """The findings of every app call but the lifespan's (``lifespan_findings``)."""
        found = []
        for call in self.observer.calls:
            if call.kind == "lifespan":
                continue
            found += self.call_findings(call)
            if expect_exception is None or not expect_exception(call):
                exception = exception_finding(self.check, call)
                if exception is not None:
                    found.append(exception)
        return found

    def call_findings(self, call: Call) -> list[Finding]:
        return [
            Finding(self.check, call.request, kind, words, clause, message)
            for kind, words, clause, message in call.findings
        ]

    def result(
        self, extra: Sequence[Finding] = (), expect_exception: Callable[[Call], bool] | None = None
    ) -> AppResult:
        found = list(extra) + self.findings(expect_exception)
        observed = "; ".join(self.notes)
        if found:
            return AppResult(FAIL, observed, tuple(found))
        return AppResult(PASS, observed)


def describe(reply: wire.Reply) -> str:
    if isinstance(reply, wire.NoResponse):
        return reply.describe()
    text = f"{reply.status}"
    if reply.interim:
        text = " ".join(str(interim.status) for interim in reply.interim) + " then " + text
    if reply.framing != "none":
        text += f", {len(reply.body)} bytes ({reply.framing})"
    if reply.framing_error:
        text += f" (malformed: {reply.framing_error})"
    elif not reply.complete:
        text += " (cut short)"
    return text


class Context:
    """What a check gets: the app, the options, and what one check found for the others."""

    def __init__(self, app: ASGIApp, options: AppOptions) -> None:
        self.app = app
        self.options = options
        self._websocket: tuple[str | None, str] | None = None

    @contextlib.contextmanager
    def session(self, check: str, *, startup: bool = True) -> Iterator[Session]:
        session = Session(check, self.app, self.options)
        try:
            if startup:
                failed = session.startup()
                if failed:
                    raise _NotApplicable(f"{failed}; see app.lifespan.startup-shutdown")
            yield session
            if startup:
                session.shutdown()
        finally:
            session.close()

    def websocket_path(self) -> tuple[str | None, str]:
        """The path of a WebSocket route: the one given, or the first of the usual ones (and
        the HTTP paths) that the app accepts a handshake on; None, with what each answered,
        when none does. Found once per run, on a server of its own."""
        if self._websocket is None:
            given = self.options.websocket_path
            if given is not None:
                self._websocket = (given, f"WebSocket path {given} (given)")
            else:
                self._websocket = self._find_websocket_path()
        return self._websocket

    def _find_websocket_path(self) -> tuple[str | None, str]:
        candidates = list(dict.fromkeys([*WEBSOCKET_PATHS, *self.options.paths]))
        answers = []
        with self.session("app.websocket.discovery") as session:
            for path in candidates:
                connection = session.connect()
                try:
                    response, _ = _handshake(connection, path)
                finally:
                    connection.close()
                session.wait_calls_done("after the handshake")
                if isinstance(response, wire.Response) and response.status == 101:
                    return path, f"WebSocket path {path} (found)"
                answers.append(f"{path} ({describe(response)})")
        return None, "no WebSocket route found: " + ", ".join(answers)


class _NotApplicable(Exception):
    """The check cannot grade this app (a lifespan that fails, no WebSocket route)."""


# ---------------------------------------------------------------------- running


def run_check(item: AppCheck, context: Context) -> AppOutcome:
    started = time.monotonic()
    try:
        result = item.run(context)
    except _NotApplicable as exc:
        result = AppResult(NOT_APPLICABLE, str(exc))
    except Exception as exc:  # a bug in the check itself
        result = AppResult(ERROR, f"the check raised {type(exc).__name__}: {exc}")
    return AppOutcome(item, result, time.monotonic() - started)


def run(
    app: ASGIApp,
    *,
    name: str,
    options: AppOptions | None = None,
    patterns: Sequence[str] | None = None,
) -> AppRun:
    """Grade ``app`` with the checks ``patterns`` select (all by default)."""
    context = Context(app, options or AppOptions())
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return AppRun(name, started, [run_check(item, context) for item in select(patterns)])


def load(target: str, *, app_dir: str | None = None) -> ASGIApp:
    """The app ``module:attribute`` names, as the server loads it; AppLoadError if it cannot.

    ``app_dir`` goes first on ``sys.path``, as the server's ``--app-dir`` (the command line
    passes the working directory, as the server does: an installed package of the same name,
    such as a stray top-level ``tests``, must not hide the user's module). Without it, as in a
    user's test run, the working directory goes on ``sys.path`` (for good: the app may import
    more later) only when the module cannot be found without it, so that it does not shadow
    installed packages for every later import."""
    from sansio_asgi.config import AppLoadError, import_from_string

    if app_dir is not None:
        app = import_from_string(target, app_dir)
    else:
        try:
            app = import_from_string(target, "")
        except AppLoadError as exc:
            if not isinstance(exc.__cause__, ModuleNotFoundError) or "." in sys.path:
                raise
            app = import_from_string(target, ".")
    if not callable(app):
        raise AppLoadError(f"{target} is not callable: {app!r:.80}")
    return cast(ASGIApp, app)


def listing(patterns: Sequence[str] | None = None) -> str:
    """The app checks, one a line: id, clause, title (``--app ... --list``)."""
    return "\n".join(f"{item.id:<40} {item.clause:<40} {item.title}" for item in select(patterns))


def as_json(run: AppRun) -> dict[str, Any]:
    return {
        "app": run.app,
        "started": run.started,
        "summary": summary(run),
        "results": [
            {
                "id": outcome.check.id,
                "group": outcome.check.group,
                "title": outcome.check.title,
                "clause": outcome.check.clause,
                "status": outcome.result.status,
                "observed": outcome.result.observed,
                "findings": [finding.as_json() for finding in outcome.result.findings],
                "duration_s": round(outcome.duration_s, 3),
            }
            for outcome in run.outcomes
        ],
    }


def table(run: AppRun, width: int | None = None) -> str:
    """One line per check, grouped, with its findings (or what it saw) wrapped under it."""
    width = width or min(shutil.get_terminal_size((120, 20)).columns, 140)
    lines = [f"ASGI conformance of the app: {run.app}"]
    group = None
    for outcome in run.outcomes:
        check, result = outcome.check, outcome.result
        if check.group != group:
            group = check.group
            lines += ["", f"## {GROUPS[group]}"]
        lines.append(f"{MARKS[result.status]:<5} {check.id:<40} {check.clause}")
        texts = grouped(result.findings)
        if not texts and result.status != PASS:
            texts = [result.observed]
        for text in texts:
            lines += textwrap.wrap(
                text, width, initial_indent=" " * 6 + "- ", subsequent_indent=" " * 8
            )
    counts = summary(run)
    lines += [
        "",
        f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[NOT_APPLICABLE]} not applicable"
        + (f", {counts[ERROR]} errors in the suite itself" if counts[ERROR] else ""),
    ]
    return "\n".join(lines)


@contextlib.contextmanager
def _server_log_withheld() -> Iterator[None]:
    """Keep the server's log (every exception of the app, with its traceback) out of a
    handler the app configured on the root logger: the report says what happened."""
    logger = logging.getLogger("sansio_asgi.error")
    propagate, logger.propagate = logger.propagate, False
    try:
        yield
    finally:
        logger.propagate = propagate


def main(
    target: str,
    *,
    patterns: list[str] | None = None,
    json_path: Path | None = None,
    paths: Sequence[str] | None = None,
    post_path: str | None = None,
    websocket_path: str | None = None,
    error_paths: Sequence[str] | None = None,
) -> int:
    """``asgi-conformance --app module:app``: print the report; 0 when nothing failed, 1 when a
    check failed (or broke), 2 when the app cannot be loaded or no check is selected."""
    from sansio_asgi.config import AppLoadError

    try:
        app = load(target, app_dir=".")
    except AppLoadError as exc:
        print(f"asgi-conformance: error: --app {target}: {exc}", file=sys.stderr)
        return 2
    if not select(patterns):
        print(f"asgi-conformance: error: no app check matches {patterns}", file=sys.stderr)
        return 2
    options = AppOptions(
        paths=tuple(paths) if paths else ("/",),
        post_path=post_path,
        websocket_path=websocket_path,
        error_paths=tuple(error_paths or ()),
    )
    with _server_log_withheld():
        result = run(app, name=target, options=options, patterns=patterns)
    print(table(result))
    if json_path is not None:
        json_path.write_text(json.dumps(as_json(result), indent=2) + "\n", encoding="utf-8")
    counts = summary(result)
    return 1 if counts[FAIL] or counts[ERROR] else 0


# ---------------------------------------------------------------------- the HTTP checks


def _each_path(ctx: Context, check: str, request: Callable[[Session, str], object]) -> AppResult:
    with ctx.session(check) as session:
        for path in ctx.options.paths:
            request(session, path)
        return session.result()


@app_check("app.http.get", title="GET each path", clause=RESPONSE_START)
def http_get(ctx: Context) -> AppResult:
    return _each_path(ctx, "app.http.get", lambda s, path: s.exchange("GET", path))


@app_check(
    "app.http.head", title="HEAD each path (the server drops any body)", clause=RESPONSE_START
)
def http_head(ctx: Context) -> AppResult:
    return _each_path(ctx, "app.http.head", lambda s, path: s.exchange("HEAD", path))


@app_check(
    "app.http.options",
    title="OPTIONS each path, and OPTIONS * (path '*')",
    clause="ASGI HTTP spec, HTTP Connection Scope",
)
def http_options(ctx: Context) -> AppResult:
    with ctx.session("app.http.options") as session:
        for path in ctx.options.paths:
            session.exchange("OPTIONS", path)
        session.exchange("OPTIONS", "*")
        return session.result()


QUERY = "?q=a%20b&x=%C3%A9&flag&empty=&x=2"


@app_check(
    "app.http.query-string",
    title="GET each path with a query string (escapes, UTF-8, a repeated and an empty key)",
    clause="ASGI HTTP spec, HTTP Connection Scope",
)
def http_query_string(ctx: Context) -> AppResult:
    return _each_path(ctx, "app.http.query-string", lambda s, path: s.exchange("GET", path + QUERY))


# Percent-encoded: UTF-8 text, a character outside the BMP, an escaped slash, and bytes that
# are not UTF-8 (the scope's path is decoded text; raw_path keeps the bytes).
ENCODED_PATHS = ("/caf%C3%A9", "/%F0%9F%90%8D/x", "/a%2Fb", "/%FF%FE")


@app_check(
    "app.http.non-ascii-path",
    title="GET paths with percent-encoded UTF-8, an encoded slash and non-UTF-8 bytes",
    clause="ASGI HTTP spec, HTTP Connection Scope",
)
def http_non_ascii_path(ctx: Context) -> AppResult:
    with ctx.session("app.http.non-ascii-path") as session:
        for path in ENCODED_PATHS:
            session.exchange("GET", path)
        return session.result()


@app_check(
    "app.http.not-found",
    title="GET and POST a path the app has no route for",
    clause=RESPONSE_START,
)
def http_not_found(ctx: Context) -> AppResult:
    path = UNKNOWN_PATH
    with ctx.session("app.http.not-found") as session:
        session.exchange("GET", path)
        body = b'{"nothing": "here"}'
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        session.exchange("POST", path, headers=headers, body=body)
        return session.result()


BODY = "hello, app: é\n".encode() * 8


@app_check(
    "app.http.post-content-length",
    title="POST a body framed by Content-Length",
    clause="ASGI HTTP spec, Request",
)
def http_post_content_length(ctx: Context) -> AppResult:
    with ctx.session("app.http.post-content-length") as session:
        headers = [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(BODY)))]
        session.exchange("POST", ctx.options.body_path, headers=headers, body=BODY)
        return session.result()


@app_check(
    "app.http.post-chunked",
    title="POST a chunked body, one write per chunk",
    clause="ASGI HTTP spec, Request",
)
def http_post_chunked(ctx: Context) -> AppResult:
    pieces = [b"%x\r\n%s\r\n" % (len(part), part) for part in (BODY[:5], BODY[5:40], BODY[40:])]
    with ctx.session("app.http.post-chunked") as session:
        headers = [("Content-Type", "application/octet-stream"), ("Transfer-Encoding", "chunked")]
        session.exchange(
            "POST", ctx.options.body_path, headers=headers, pieces=[*pieces, b"0\r\n\r\n"]
        )
        return session.result()


@app_check(
    "app.http.post-large",
    title=f"POST a body of {LARGE_BODY_BYTES} bytes: several reads, several http.request",
    clause="ASGI HTTP spec, Request",
)
def http_post_large(ctx: Context) -> AppResult:
    body = bytes(range(256)) * (LARGE_BODY_BYTES // 256) + b"!"
    pieces = [body[start : start + 16384] for start in range(0, len(body), 16384)]
    with ctx.session("app.http.post-large") as session:
        headers = [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))]
        reply = session.exchange("POST", ctx.options.body_path, headers=headers, pieces=pieces)
        if isinstance(reply, wire.Response) and reply.body == body:
            session.notes.append("the body came back whole")
        return session.result()


@app_check(
    "app.http.expect-100-continue",
    title="POST with Expect: 100-continue, the body sent after the 100 (or not at all)",
    clause="ASGI HTTP spec, Request",
)
def http_expect_continue(ctx: Context) -> AppResult:
    path = ctx.options.body_path
    with ctx.session("app.http.expect-100-continue") as session:
        connection = session.connect()
        try:
            headers = [
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", str(len(BODY))),
                ("Expect", "100-continue"),
            ]
            connection.send(wire.request_bytes("POST", path, headers, host=HOST))
            try:
                head = connection.read_head()
            except wire.NoResponse as exc:
                session.notes.append(f"POST {path} (Expect): {exc.describe()}")
            else:
                if head.status == 100:
                    connection.send(BODY)
                    reply = connection.read_reply("POST")
                    session.notes.append(f"POST {path} (Expect): 100 then {describe(reply)}")
                else:
                    reply = connection.read_body(head, "POST")
                    session.notes.append(
                        f"POST {path} (Expect): {describe(reply)} without asking for the body"
                    )
            session.wait_calls_done("after its response")
        finally:
            connection.close()
        return session.result()


@app_check(
    "app.http.disconnect-mid-response",
    title="GET each path and close the connection once the response head arrives",
    clause="ASGI HTTP spec, Disconnected Client",
)
def http_disconnect_mid_response(ctx: Context) -> AppResult:
    with ctx.session("app.http.disconnect-mid-response") as session:
        for path in ctx.options.paths:
            connection = session.connect()
            try:
                connection.send(wire.request_bytes("GET", path, host=HOST))
                try:
                    head = connection.read_head()
                    session.notes.append(f"GET {path}: {head.status}, then the client left")
                except wire.NoResponse as exc:
                    session.notes.append(f"GET {path}: {exc.describe()}")
            finally:
                connection.close()
            session.wait_calls_done("after the client left")
        session.notes += [call.ending() for call in session.observer.calls if call.kind == "http"]
        return session.result()


@app_check(
    "app.http.disconnect-mid-request",
    title="POST the start of a Content-Length body, then close the connection",
    clause="ASGI HTTP spec, Disconnect",
)
def http_disconnect_mid_request(ctx: Context) -> AppResult:
    path = ctx.options.body_path
    with ctx.session("app.http.disconnect-mid-request") as session:
        connection = session.connect()
        try:
            headers = [("Content-Type", "application/octet-stream"), ("Content-Length", "100000")]
            connection.send(wire.request_bytes("POST", path, headers, host=HOST) + BODY)
            # Close once the app has read the first part of the body (or answered without it).
            calls = session.observer.calls
            session.wait_until(lambda: any(call.received or call.done for call in calls))
        finally:
            connection.close()
        session.notes.append(f"POST {path}: {len(BODY)} of 100000 bytes, then the client left")
        session.wait_calls_done("after the client left")
        session.notes += [call.ending() for call in session.observer.calls if call.kind == "http"]
        return session.result()


@app_check(
    "app.http.exception",
    title="GET each route that raises (error_paths): the app's messages until it raises",
    clause=ERROR_HANDLING,
)
def http_exception(ctx: Context) -> AppResult:
    if not ctx.options.error_paths:
        return AppResult(NOT_APPLICABLE, "no route that raises was named (error_paths)")
    with ctx.session("app.http.exception") as session:
        for path in ctx.options.error_paths:
            session.exchange("GET", path)
        for call in session.observer.calls:
            if call.kind == "http" and call.error is not None:
                error = type(call.error).__name__
                session.notes.append(f"{call.request}: the app raised {error} {call.when()}")
        # The route raises on purpose: its exception is what is exercised, not a finding.
        return session.result(expect_exception=lambda call: call.kind == "http")


# ---------------------------------------------------------------------- the WebSocket checks


def _handshake(
    connection: wire.HTTPConnection, path: str
) -> tuple[wire.Reply, wire.WebSocketConnection | None]:
    key = wire.websocket_key()
    request = wire.handshake_bytes(path, key).replace(b"Host: 127.0.0.1", b"Host: " + HOST.encode())
    connection.send(request)
    reply = connection.read_reply(upgrade=True)
    if isinstance(reply, wire.Response) and reply.status == 101:
        if reply.header(b"sec-websocket-accept") != wire.websocket_accept(key):
            return wire.NoResponse("malformed", reply.raw_head, "a 101 with a wrong accept"), None
        return reply, wire.WebSocketConnection(connection)
    return reply, None


def _websocket_route(ctx: Context) -> str:
    path, how = ctx.websocket_path()
    if path is None:
        raise _NotApplicable(how + "; name one with websocket_path")
    return path


def _greet(
    session: Session, connection: wire.HTTPConnection, path: str, text: str
) -> wire.WebSocketConnection | None:
    """The handshake on ``path``, then ``text`` sent and the answer read, each noted; the
    WebSocket, or None when the app did not accept it."""
    reply, websocket = _handshake(connection, path)
    session.notes.append(f"WebSocket {path}: {describe(reply)}")
    if websocket is not None:
        websocket.send_text(text)
        session.notes.append(f"text in, {websocket.receive(1.0).describe()} out")
    return websocket


@app_check(
    "app.websocket.echo",
    title="Handshake, a text and a binary message, then a close from the client",
    clause="ASGI WebSocket spec, Send",
)
def websocket_echo(ctx: Context) -> AppResult:
    path = _websocket_route(ctx)
    with ctx.session("app.websocket.echo") as session:
        connection = session.connect()
        try:
            websocket = _greet(session, connection, path, "hello, app: é")
            if websocket is not None:
                websocket.send_bytes(b"\x00\x01binary\xff")
                session.notes.append(f"bytes in, {websocket.receive(1.0).describe()} out")
                websocket.send_close(1000, "bye")
                # Messages the app sent before it saw the close come first (a few at most: an
                # app that keeps sending after a close is not answering it).
                answer = websocket.receive()
                for _ in range(MESSAGES_BEFORE_CLOSE):
                    if answer.kind not in ("text", "binary"):
                        break
                    answer = websocket.receive()
                session.notes.append(f"close 1000 in, {answer.describe()} out")
                session.notes.append(f"then the connection {connection.wait_closed()}")
            session.wait_calls_done("after the close")
        finally:
            connection.close()
        return session.result()


@app_check(
    "app.websocket.unknown-path",
    title="Handshake on a path the app has no WebSocket route for",
    clause="ASGI WebSocket spec, Connect",
)
def websocket_unknown_path(ctx: Context) -> AppResult:
    found, how = ctx.websocket_path()
    path = UNKNOWN_PATH
    with ctx.session("app.websocket.unknown-path") as session:
        connection = session.connect()
        try:
            reply, _ = _handshake(connection, path)
        finally:
            connection.close()
        session.wait_calls_done("after the handshake")
        session.notes.append(f"WebSocket {path}: {describe(reply)}")
        calls = [call for call in session.observer.calls if call.kind == "websocket"]
        if found is None and all(call.error is not None and call.silent for call in calls):
            # An app raises for a scope type it does not serve; the server answers 500.
            return AppResult(
                NOT_APPLICABLE, f"the app does not serve WebSocket ({how}); " + session.notes[-1]
            )
        return session.result()


@app_check(
    "app.websocket.client-drop",
    title="Handshake and a message, then the client's TCP connection ends with no close frame",
    clause="ASGI WebSocket spec, Disconnect",
)
def websocket_client_drop(ctx: Context) -> AppResult:
    path = _websocket_route(ctx)
    with ctx.session("app.websocket.client-drop") as session:
        connection = session.connect()
        try:
            _greet(session, connection, path, "hello, app")
        finally:
            connection.close()
        session.notes.append("then the client's connection ended")
        session.wait_calls_done("after the client left")
        session.notes += [c.ending() for c in session.observer.calls if c.kind == "websocket"]
        return session.result()


# ---------------------------------------------------------------------- the lifespan check


@app_check(
    "app.lifespan.startup-shutdown",
    title="Startup, a request that sees the state, then shutdown",
    clause="ASGI lifespan spec",
)
def lifespan_startup_shutdown(ctx: Context) -> AppResult:
    check = "app.lifespan.startup-shutdown"
    with ctx.session(check, startup=False) as session:
        failed = session.startup()
        call = session.lifespan_call
        if call is None:
            raise RuntimeError("the server did not call the app with a lifespan scope")
        if call.done and call.silent:
            # ASGI lifespan spec, Scope: "If an exception is raised when calling the application
            # callable with a lifespan.startup message or a scope with type lifespan, the
            # server must continue but not send any lifespan events."
            what = (
                f"raised {type(call.error).__name__}: {str(call.error)[:120]}"
                if call.error is not None
                else "returned without answering lifespan.startup"
            )
            return AppResult(NOT_APPLICABLE, f"the app does not support lifespan: it {what}")
        found = session.call_findings(call)
        if failed:
            if not call.send_errors:
                found.append(
                    Finding(check, "lifespan", FAILURE, failed, "ASGI lifespan spec, Startup")
                )
            return AppResult(FAIL, "; ".join([failed, *session.notes]), tuple(found))
        state = sorted(session.server.state)
        session.notes.append(f"startup complete, state {state}")
        session.exchange("GET", ctx.options.paths[0])
        scopes = [c.scope for c in session.observer.calls if c.kind == "http"]
        if scopes and state:
            seen = scopes[-1].get("state")
            carried = isinstance(seen, Mapping) and set(state) <= set(seen)
            session.notes.append(
                "the request's scope carried the state" if carried else "the state was lost"
            )
        if not session.shutdown():
            found.append(
                Finding(
                    check,
                    "lifespan",
                    FAILURE,
                    f"lifespan.shutdown unanswered after {ctx.options.io_timeout_s:g} s",
                    "ASGI lifespan spec, Shutdown",
                )
            )
        else:
            session.notes.append(f"then {call.sent[-1] if call.sent else 'nothing'}")
            if call.sent and call.sent[-1] == "lifespan.shutdown.failed":
                found.append(
                    Finding(
                        check,
                        "lifespan",
                        FAILURE,
                        f"the app's shutdown failed: {call.failure!r} (lifespan.shutdown.failed)",
                        "ASGI lifespan spec, Shutdown Failed",
                    )
                )
        session.wait_until(lambda: call.done)
        exception = exception_finding(check, call)
        if exception is not None:
            found.append(exception)
        return session.result(extra=found)
