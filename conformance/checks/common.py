"""What the checks of several groups share.

* Connections and requests: a new connection to the server under test, one request on it (kept
  for httplint), a probe's target, and the words for how a server ended a connection.
* The probes' event log: finding an event a probe logged, or waiting for it.
* Described values: the probes log a scope or a message with its Python types kept
  (``probes.common.describe_value``); these read such a description back and grade it against
  the keys spec/asgi.json gives.
* Servers of a check's own (the lifespan and shutdown groups): a scenario run once per run,
  the stop signal, and how the process ended.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeGuard, TypeVar

from ..client import HTTPConnection, NoResponse, Reply, Response, request_bytes
from ..framework import Context, Exchange, load_spec
from ..server import ServerProcess

Event = dict[str, Any]
Events = list[Event]
Desc = dict[str, Any]  # a value as ``probes.common.describe_value`` describes it
T = TypeVar("T")


# -- connections and requests


def open_http(ctx: Context, server: ServerProcess | None = None) -> HTTPConnection:
    """A new connection to the shared server, or to ``server`` (one a check launched)."""
    timeout_s = ctx.options.io_timeout_s
    sock = ctx.connect() if server is None else server.connect(timeout_s)
    return HTTPConnection(sock, timeout_s)


def record_exchange(
    ctx: Context,
    check_id: str,
    method: str,
    target: str,
    reply: Reply,
    headers: list[tuple[str, str]] | None = None,
) -> None:
    """Keep the response to a well-formed request for httplint (there is none to keep after a
    NoResponse). ``headers`` are the request's, as sent."""
    if isinstance(reply, Response):
        encoded = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers or []]
        ctx.record(Exchange(check_id, method, target, encoded, reply))


def request_once(
    ctx: Context, raw: bytes, method: str = "GET", timeout_s: float | None = None
) -> Reply:
    """Send ``raw`` on a new connection and read one response (or why there was none); the
    connection is closed after. Nothing is recorded: use it for hand-made requests."""
    with open_http(ctx) as connection:
        connection.send(raw)
        return connection.read_reply(method, timeout_s)


def exchange(
    ctx: Context,
    check_id: str,
    method: str = "GET",
    target: str = "/",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    timeout_s: float | None = None,
) -> Reply:
    """One well-formed request on a new connection, as ``request_once``; the response is
    recorded for httplint."""
    reply = request_once(ctx, request_bytes(method, target, headers, body), method, timeout_s)
    record_exchange(ctx, check_id, method, target, reply, headers)
    return reply


def probe_target(path: str, probe_id: str, **params: str) -> str:
    query = "&".join([f"probe={probe_id}", *(f"{key}={value}" for key, value in params.items())])
    return f"{path}?{query}"


PROBE_ID = "{probe}"  # a request written down ahead (a table's row) names its probe id so


def fill_probe(ctx: Context, request: bytes, prefix: str = "p") -> tuple[str, bytes]:
    """A new probe id, and ``request`` with that id wherever it says ``PROBE_ID``."""
    probe_id = ctx.new_id(prefix)
    return probe_id, request.replace(PROBE_ID.encode("ascii"), probe_id.encode("ascii"))


def closed_without_response(reply: Reply) -> TypeGuard[NoResponse]:
    """Whether the server ended the connection (closed or reset it) having sent nothing: the
    answer a check accepts wherever the text lets a server close instead of responding."""
    return isinstance(reply, NoResponse) and reply.ended and not reply.data


def connection_ended(state: str) -> bool:
    """Whether ``HTTPConnection.wait_closed`` (or an ``Incoming`` kind) says the server ended the
    TCP connection, with a close or a reset, rather than leaving it "open"."""
    return state in ("closed", "reset")


def knock(server: ServerProcess, target: str, timeout_s: float) -> Response | str:
    """A GET for ``target`` on a new connection, to see whether ``server`` serves at all: its
    response, or in a word what happened instead ("refused", "closed", "reset", "silence",
    "connect failed (...)"), or what was malformed in the answer."""
    try:
        sock = server.connect(timeout_s)
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return f"connect failed ({exc.__class__.__name__})"
    with HTTPConnection(sock, timeout_s) as connection:
        try:
            connection.send(request_bytes("GET", target))
        except OSError:
            return "reset"
        reply = connection.read_reply()
    if isinstance(reply, NoResponse):
        if reply.why == "malformed":
            return reply.describe()
        return "silence" if reply.why == "timeout" else reply.why
    return reply


# -- the probes' event log


def find_event(events: Events, event: str, **fields: Any) -> Event | None:
    """The first logged ``event`` whose fields have the values given."""
    for item in events:
        if item.get("event") == event and all(item.get(k) == v for k, v in fields.items()):
            return item
    return None


def has_event(event: str, **fields: Any) -> Callable[[Events], bool]:
    """For ``ctx.wait_events``: whether ``event`` (with those fields) has been logged yet."""
    return lambda events: find_event(events, event, **fields) is not None


def events_named(events: Events, *names: str) -> Events:
    return [item for item in events if item.get("event") in names]


def wait_event(
    ctx: Context, probe_id: str, event: str, timeout_s: float | None = None, **fields: Any
) -> Event | None:
    """Wait (up to ``timeout_s``, the I/O timeout by default) until the probe has logged
    ``event``; the event, or None if it never came."""
    events = ctx.wait_events(probe_id, has_event(event, **fields), timeout_s)
    return find_event(events, event, **fields)


# -- described values


def plain(desc: Desc) -> Any:
    """The Python value a description stands for (a placeholder string for other types)."""
    kind = desc.get("type")
    if kind == "bytes":
        return desc["latin1"].encode("latin-1")
    if kind in ("str", "int", "float", "bool"):
        return desc["value"]
    if kind == "null":
        return None
    if kind == "dict":
        return {key: plain(item) for key, item in desc["items"].items()}
    if kind == "tuple":
        return tuple(plain(item) for item in desc["items"])
    if "items" in desc:
        return [plain(item) for item in desc["items"]]
    return f"<{kind} {desc.get('repr', '')}>"


def show(desc: Desc) -> str:
    """A description as Python would print the value, with its type if that is not obvious."""
    kind = desc.get("type")
    if kind in ("str", "bytes", "int", "float", "bool", "null", "list", "tuple", "dict"):
        text = repr(plain(desc))
    elif "items" in desc:
        text = f"{kind} of {plain(desc)!r}"
    else:
        text = f"{kind} {desc.get('repr', '')}"
    return text if len(text) <= 160 else text[:157] + "..."


def lookup(desc: Desc, dotted: str) -> Desc | None:
    """``scope["asgi"]["version"]`` for ``asgi.version``; None if any step is missing."""
    node = desc
    for part in dotted.split("."):
        if node.get("type") != "dict" or part not in node["items"]:
            return None
        node = node["items"][part]
    return node


def is_container(desc: Desc) -> bool:
    return desc.get("type") in ("list", "tuple") or bool(desc.get("iterable"))


def type_matches(desc: Desc, name: str) -> bool:
    """Whether a described value is of one of spec/asgi.json's type names (its "types")."""
    kind = desc.get("type")
    items = desc.get("items", [])
    if name in ("str", "bytes", "int", "float", "bool", "null"):
        return kind == name
    if name == "dict":
        return kind == "dict" and bool(desc.get("str_keys"))
    if name == "list":
        return kind in ("list", "tuple")
    if name == "extensions":
        return type_matches(desc, "dict") and all(
            type_matches(item, "dict") for item in desc["items"].values()
        )
    if name == "headers":
        return is_container(desc) and all(
            item.get("type") in ("list", "tuple")
            and len(item["items"]) == 2
            and all(part.get("type") == "bytes" for part in item["items"])
            for item in items
        )
    if name in ("host-port", "server-address"):
        port_types = ("int",) if name == "host-port" else ("int", "null")
        return (
            kind in ("list", "tuple")
            and len(items) == 2
            and items[0].get("type") == "str"
            and items[1].get("type") in port_types
        )
    if name in ("str-iterable", "iterable[str]", "bytes-iterable"):
        wanted = "bytes" if name == "bytes-iterable" else "str"
        return is_container(desc) and all(item.get("type") == wanted for item in items)
    if name == "file":
        return "repr" in desc
    raise ValueError(f"spec/asgi.json names a type this suite does not know: {name!r}")


def scope_keys(kind: str) -> list[dict[str, Any]]:
    """spec/asgi.json's keys of the ``kind`` scope ("http", "websocket", "lifespan")."""
    keys: list[dict[str, Any]] = load_spec()["scopes"][kind]["keys"]
    return keys


def grade_keys(desc: Desc, keys: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Problems with ``desc`` against spec keys, and the keys the data does not name."""
    problems = []
    for key in keys:
        name = key["name"]
        node = lookup(desc, name)
        where = f" ({key['clause']})" if key.get("clause") else ""
        if node is None:
            if key.get("required"):
                problems.append(f"{name} is missing but required{where}")
            continue
        types = key.get("type") or []
        if types and not any(type_matches(node, type_name) for type_name in types):
            problems.append(f"{name} is {show(node)}, not of type {' or '.join(types)}{where}")
            continue
        allowed = key.get("allowed")
        if allowed is not None and node.get("type") != "null" and comparable(node) not in allowed:
            problems.append(f"{name} is {show(node)}, not one of {allowed}{where}")
    named = {key["name"].split(".")[0] for key in keys}
    others = sorted(set(desc.get("items", {})) - named)
    return problems, others


def comparable(desc: Desc) -> Any:
    """The value, with bytes as latin-1 text: as spec/asgi.json writes allowed values."""
    value = plain(desc)
    return value.decode("latin-1") if isinstance(value, bytes) else value


# -- servers of a check's own

EXIT_DEADLINE_S = 5.0  # how long a server may take to exit once nothing is left to wait for


class _Once(Generic[T]):
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = False
        self.value: T | None = None
        self.error: Exception | None = None


_ONCE_LOCK = threading.Lock()
_RUNS: weakref.WeakKeyDictionary[Context, dict[str, _Once[Any]]] = weakref.WeakKeyDictionary()


def once(ctx: Context, key: str, make: Callable[[Context], T]) -> T:
    """``make(ctx)``, run at most once per run for ``key``; later callers get its result.

    Starting a server is the slow part of the lifespan and shutdown checks, so a *scenario*
    (one server, driven through one life) is run once and graded by several checks. A scenario
    that raised (say ServerError: the server did not start) raises again for every check that
    asks for it.
    """
    with _ONCE_LOCK:
        entry: _Once[T] = _RUNS.setdefault(ctx, {}).setdefault(key, _Once())
    with entry.lock:
        if not entry.done:
            try:
                entry.value = make(ctx)
            except Exception as exc:
                entry.error = exc
            entry.done = True
    if entry.error is not None:
        raise entry.error
    assert entry.value is not None
    return entry.value


def ask_to_stop(ctx: Context, server: ServerProcess) -> float:
    """Send the stop signal to the server's own process; returns when (``time.time()``).

    To the process, not its group, as ``kill``, ``docker stop`` and Kubernetes send it; a server
    with workers forwards it. (Sent to the whole group, SIGTERM reaches hypercorn's worker
    directly, whose default action kills it at once: the graceful path is taken only through
    the master.)
    """
    sent = time.time()
    with contextlib.suppress(ProcessLookupError):
        os.kill(server.process.pid, getattr(signal, f"SIG{ctx.options.stop_signal}"))
    return sent


def describe_exit(status: int | None, when: str = "") -> str:
    """How the process ended, to follow "the server": 'exited (status 3) 0.2 s after ...'."""
    if status is None:
        text = "was still running"
    elif status < 0:
        try:
            text = f"died of {signal.Signals(-status).name}"
        except ValueError:
            text = f"died of signal {-status}"
    else:
        text = f"exited (status {status})"
    return f"{text} {when}".strip()
