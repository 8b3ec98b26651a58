"""Checks, their results, and what a check is given to work with.

Theory of operation
-------------------
A check is a plain function registered with ``@check``. It talks to the server under test over
loopback (``ctx.connect()``), may look at what the probe apps wrote to their event log
(``ctx.events(probe_id)``), and returns a ``Result``: pass, fail or not applicable, always with
the behaviour it observed in words. A check never raises for the server's behaviour; an
exception out of a check is the suite's own bug and is reported as an error of that check.

Every check names its clause (an RFC section, an ASGI spec section, or one of the readings
recorded in spec/asgi.json for the places where the spec is silent) and its level: MUST and
SHOULD are the requirement words of the text, READING marks a check that grades our recorded
reading of a gap. Where the text allows several behaviours, the check accepts each of them.

The checks of the groups in ``runner.OWN_SERVER_GROUPS`` (lifespan, shutdown) start servers of
their own through ``ctx.launch`` or ``ctx.spawn``; the others share one server.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .server import ServerProcess

PASS = "pass"
FAIL = "fail"
NOT_APPLICABLE = "n/a"
ERROR = "error"  # the check itself broke: a bug in the suite, never the server's grade

MUST = "MUST"
SHOULD = "SHOULD"
READING = "READING"

SPEC_PATH = Path(__file__).resolve().parent.parent / "spec" / "asgi.json"

GROUPS = {
    "http11": "HTTP/1.1 framing and error handling (RFC 9112, RFC 9110)",
    "asgi-http": "ASGI HTTP semantics (scope, messages, errors, disconnect)",
    "websocket": "WebSocket (RFC 6455 and the ASGI WebSocket spec)",
    "extensions": "ASGI extensions on HTTP/1.1 (pathsend, zerocopysend, trailers, early hints)",
    "http2": "HTTP/2 over cleartext, prior knowledge (RFC 9113, RFC 7541)",
    "lifespan": "Lifespan (ASGI lifespan spec)",
    "shutdown": "Graceful shutdown",
    "httplint": "httplint on every response the probes received",
    "autobahn": "Autobahn WebSocket cases, run by kosoku",
}


@dataclasses.dataclass(frozen=True)
class Result:
    status: str
    observed: str

    @property
    def ok(self) -> bool:
        return self.status != FAIL and self.status != ERROR


def passed(observed: str) -> Result:
    return Result(PASS, observed)


def failed(observed: str) -> Result:
    return Result(FAIL, observed)


def not_applicable(observed: str) -> Result:
    return Result(NOT_APPLICABLE, observed)


def verdict(ok: bool, observed: str) -> Result:
    return Result(PASS if ok else FAIL, observed)


@dataclasses.dataclass(frozen=True)
class Check:
    id: str
    group: str
    title: str
    clause: str
    level: str
    run: Callable[[Context], Result]


REGISTRY: dict[str, Check] = {}


def group_of(id: str) -> str:
    """The group a check id names: the part before its first '.' (``http11.pipelining`` is in
    ``http11``); a ValueError if that is not one of ``GROUPS`` or nothing follows it."""
    group, dot, name = id.partition(".")
    if group not in GROUPS or not dot or not name:
        raise ValueError(
            f"check id {id!r} is not 'group.name' with a known group ({', '.join(GROUPS)})"
        )
    return group


def check(
    id: str, *, title: str, clause: str, level: str = MUST
) -> Callable[[Callable[[Context], Result]], Callable[[Context], Result]]:
    """Register a check; ``id`` is ``group.name``, unique across the suite, and its group is
    the part before the first '.'."""
    group = group_of(id)
    if level not in (MUST, SHOULD, READING):
        raise ValueError(f"check {id!r}: unknown level {level!r}")

    def register(function: Callable[[Context], Result]) -> Callable[[Context], Result]:
        if id in REGISTRY:
            raise ValueError(f"check {id!r} is registered twice")
        REGISTRY[id] = Check(id, group, title, clause, level, function)
        return function

    return register


@dataclasses.dataclass(frozen=True, kw_only=True)
class Row:
    """One check of a family whose checks differ only in data (the request sent, the answers
    accepted): a row of the family's table, registered by ``check_rows`` and graded by the one
    function the family shares. A family subclasses it with the fields that vary."""

    id: str
    title: str
    clause: str
    level: str = MUST


RowT = TypeVar("RowT", bound=Row)


def check_rows(rows: Iterable[RowT], grade: Callable[[Context, RowT], Result]) -> None:
    """Register each row as a check that runs ``grade(ctx, row)``."""

    def bound(row: RowT) -> Callable[[Context], Result]:
        def run(ctx: Context) -> Result:
            return grade(ctx, row)

        return run

    for row in rows:
        check(row.id, title=row.title, clause=row.clause, level=row.level)(bound(row))


def load_spec() -> dict[str, Any]:
    """spec/asgi.json as plain JSON: the suite grades any server, so it does not import
    sansio_asgi (whose core/schema.py reads the same file, typed)."""
    result: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return result


@dataclasses.dataclass
class Options:
    """How long to wait for what, and how the server under test is stopped."""

    host: str = "127.0.0.1"
    io_timeout_s: float = 5.0  # the longest a check waits for bytes the server owes it
    hang_s: float = 2.0  # silence this long where an answer is due counts as a hang
    startup_timeout_s: float = 20.0
    stop_timeout_s: float = 15.0
    stop_signal: str = "TERM"
    autobahn_cases: str = "quick"  # "quick", "full" or "off": which Autobahn cases kosoku runs


class Context:
    """What a check gets: the shared server, the probes' event log, and a way to launch more."""

    _ids = itertools.count(1)

    def __init__(
        self,
        server: ServerProcess | None,
        options: Options,
        launch: Callable[[str], ServerProcess],
        exchanges: list[Exchange],
        spawn: Callable[[str], ServerProcess] | None = None,
    ) -> None:
        self._server = server
        self.options = options
        self._launch = launch
        self._spawn = spawn
        self.exchanges = exchanges

    @property
    def server(self) -> ServerProcess:
        if self._server is None:
            raise RuntimeError("this check runs without the shared server; use ctx.launch")
        return self._server

    @property
    def port(self) -> int:
        return self.server.port

    def new_id(self, prefix: str = "p") -> str:
        """A probe id, unique in this run, for finding this check's events in the log."""
        return f"{prefix}{next(self._ids)}-{os.getpid()}"

    def connect(self, timeout_s: float | None = None) -> socket.socket:
        """A fresh TCP connection to the shared server."""
        return self.server.connect(timeout_s or self.options.io_timeout_s)

    def events(self, probe_id: str) -> list[dict[str, Any]]:
        """What the probe apps logged under ``probe_id``, in order."""
        return self.server.events(probe_id)

    def wait_events(
        self,
        probe_id: str,
        until: Callable[[list[dict[str, Any]]], bool],
        timeout_s: float | None = None,
    ) -> list[dict[str, Any]]:
        """Poll the event log until ``until(events)`` holds or the deadline passes."""
        return self.server.wait_events(probe_id, until, timeout_s or self.options.io_timeout_s)

    @contextmanager
    def launch(self, app: str) -> Iterator[ServerProcess]:
        """A server of this check's own, serving ``app`` (``module:attribute``); stopped after."""
        process = self._launch(app)
        try:
            yield process
        finally:
            process.kill()

    @contextmanager
    def spawn(self, app: str) -> Iterator[ServerProcess]:
        """Like ``launch``, but not waiting for the server to accept connections: for a check
        where a server that does not start (or exits) is the behaviour under test. The check
        polls ``process.wait_ready``/``wait_exit`` itself."""
        if self._spawn is None:
            raise RuntimeError("this context cannot spawn servers")
        process = self._spawn(app)
        try:
            yield process
        finally:
            process.kill()

    def record(self, exchange: Exchange) -> None:
        """Keep a request and the response to it for the judges that read every response."""
        self.exchanges.append(exchange)


@dataclasses.dataclass(frozen=True)
class Exchange:
    """One request as sent and the response as parsed, for httplint."""

    check_id: str
    method: str
    target: str
    request_headers: list[tuple[bytes, bytes]]
    response: Any  # client.Response
    received_at: float = dataclasses.field(default_factory=time.time)  # for httplint's Date check


@dataclasses.dataclass(frozen=True)
class Outcome:
    check: Check
    result: Result
    duration_s: float


def run_check(item: Check, ctx: Context) -> Outcome:
    started = time.monotonic()
    try:
        result = item.run(ctx)
    except Exception as exc:  # a bug in the check itself
        result = Result(ERROR, f"the check raised {type(exc).__name__}: {exc}")
    return Outcome(item, result, time.monotonic() - started)
