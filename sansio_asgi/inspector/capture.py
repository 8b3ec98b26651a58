"""The inspector's capture: trace records grouped into exchanges, in bounded memory.

Theory of operation
-------------------
``TraceCapture`` is a ``logging.Handler`` that ``logs.capture_trace`` attaches to the trace log,
so it receives every ``TraceRecord`` the drivers make (``record.trace``): bytes read and
written (or HTTP/2 frames), connection events, the core's events, each scope and each ASGI
message. It sorts them into *exchanges*, one per app call (a request/response, or a WebSocket
session), the way the server handled it: nothing here parses HTTP.

An exchange begins with the ``"scope"`` record, whose ``obj`` is the very dict the app is
called with, so the app finds its own exchange by identity (``exchange_for(scope)``). What the
connection traced before that (the bytes of the request line and headers, the ``StartApp``
event) waits in the connection's *pending* list and becomes the start of the exchange.

* HTTP/1.1 and WebSocket: a connection runs one app call at a time. Records go to its current
  exchange; once the core reports ``ResponseCompleted`` for it, bytes read afterwards belong to
  the next request and wait in pending again.
* HTTP/2: records are frames, each naming its stream. A stream whose first ``HEADERS`` frame is
  read waits for a scope; scopes are handed to such streams in the order they were opened
  (the order in which the core starts their apps). Frames of stream 0 (``SETTINGS``, ``PING``,
  connection ``WINDOW_UPDATE``) go to the newest exchange of the connection.

Whatever the protocol, an ASGI message, and an event of the core that names a cycle
(``WakeApp``, ``OpenFile``, ...), goes to the exchange of its record's ``cycle``: the "scope"
record carries the cycle of its app call too, so several app calls running at once on one
HTTP/2 connection are told apart by the server's own trace, whatever the apps send. A
``ResponseCompleted`` names no cycle, but its ``request_headers`` is the very list of its
scope's ``"headers"`` (the record's ``obj`` is the event). A record whose cycle is no exchange
followed (its connection was forgotten) is not kept: nothing tells where it belongs.

A request the core rejects before any app call (``RequestRejected``: 400, 431, ...) has no
scope: the event makes an exchange of ``type`` "rejected" of the connection's pending records.
Ids are ``"<pid>-<n>"``, unique across the worker processes of ``--workers N``. A connection
traced as lost is not followed again until traced as made (a driver may trace a last event
after it).

Memory is bounded whatever clients do: at most ``max_exchanges`` exchanges and
``max_history_bytes`` of their records (oldest dropped first), ``MAX_EXCHANGE_RECORDS`` and
``MAX_EXCHANGE_BYTES`` per exchange (later records are counted, not kept),
``MAX_CONNECTIONS`` connections followed at once and ``MAX_PENDING_BYTES`` of records waiting
for a scope across them (the least recently active connection is forgotten first). Each record
is kept as its JSON text in ASCII, so its length is the bytes it costs; long strings in it are
cut to ``MAX_VALUE_CHARS`` with a ``<key>_size`` sibling giving the full length.

Requests for the inspector's own machinery (paths under ``INTERNAL_PREFIX``: the page's
assets, its JSON API and the spec page) are followed, so their messages are not mistaken for
another exchange's, but none of their records is kept.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict, deque
from collections.abc import Iterator, Mapping
from typing import Any

from ..core.events import ResponseCompleted
from ..logs import TraceRecord

INTERNAL_PREFIX = "/_inspector/"

MAX_EXCHANGES = 50  # the history the page lists
MAX_HISTORY_BYTES = 8 * 1024 * 1024  # of JSON text, over every exchange kept
MAX_EXCHANGE_RECORDS = 2_000  # a long WebSocket session keeps its first 2,000 records
MAX_EXCHANGE_BYTES = 1024 * 1024
MAX_CONNECTIONS = 256  # followed at once; the least recently active is forgotten beyond
MAX_PENDING_BYTES = 1024 * 1024  # records waiting for their scope, over every connection
MAX_PENDING_RECORDS = 64  # per connection
MAX_STREAMS = 128  # HTTP/2 streams (and app calls, by cycle) remembered per connection
MAX_VALUE_CHARS = 16 * 1024  # of one string in a record (bytes shown as latin-1 text)

_H2 = "h2"


def _trim(value: Any) -> Any:
    """``value`` with every string longer than ``MAX_VALUE_CHARS`` cut, and a ``<key>_size``
    sibling giving the full length (unless the record already gives one)."""
    if isinstance(value, str):
        return value[:MAX_VALUE_CHARS]
    if isinstance(value, Mapping):
        trimmed: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(item, str) and len(item) > MAX_VALUE_CHARS:
                trimmed.setdefault(f"{key}_size", len(item))
            trimmed[str(key)] = _trim(item)
        return trimmed
    if isinstance(value, (list, tuple)):
        return [_trim(item) for item in value]
    return value


def encode(trace: TraceRecord) -> str:
    """One ``TraceRecord`` as the JSON object the inspector's API serves."""
    data = bytes(trace.data)
    item: dict[str, Any] = {
        "time": trace.time,
        "kind": trace.kind,
        "direction": trace.direction,
        "protocol": trace.protocol,
        "summary": trace.summary,
        "size": trace.size or len(data),
        "detail": _trim(trace.detail),
    }
    if trace.kind == "event" and "scope" in item["detail"]:
        del item["detail"]["scope"]  # StartApp's: the "scope" record that follows shows it
    if data:
        item["data"] = data[:MAX_VALUE_CHARS].decode("latin-1")
        item["data_size"] = len(data)
    # ASCII: the length of the text is then the bytes it costs, whatever the characters.
    return json.dumps(item, ensure_ascii=True, default=repr, separators=(",", ":"))


class Exchange:
    """One app call as the server handled it: its records, as JSON text, in the order traced."""

    def __init__(self, id: str, connection: str, protocol: str, keep: bool) -> None:
        self.id = id
        self.connection = connection
        self.protocol = protocol
        self.keep = keep  # False for the inspector's own requests: followed, not recorded
        self.evicted = False
        self.type = "http"
        self.method: str | None = ""  # None for a request rejected before any app call
        self.path: str | None = ""
        self.query = ""
        self.status: int | None = None
        self.started: float | None = None  # the time of its first record
        self.complete = False
        self.records: list[str] = []
        self.bytes = 0
        self.dropped = 0  # records not kept: past a limit, or cut from pending
        self.scope: Any = None  # the scope dict itself, to be found by identity
        self.headers: Any = None  # its "headers" list: a ResponseCompleted's request_headers
        self.stream: int | None = None
        self.ended_in = False  # HTTP/2: END_STREAM read on its stream
        self.ended_out = False  # HTTP/2: END_STREAM written on its stream

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "connection": self.connection,
            "protocol": self.protocol,
            "type": self.type,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "started": self.started,
            "complete": self.complete,
            "records": len(self.records),
            "bytes": self.bytes,
            "dropped": self.dropped,
        }


class _Connection:
    """What is known of one connection while it is followed."""

    __slots__ = (
        "current",
        "cycles",
        "ended_early",
        "exchanges",
        "name",
        "new_streams",
        "pending",
        "pending_bytes",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        # (time, JSON, HTTP/2 stream or 0) of the records waiting for a scope
        self.pending: list[tuple[float, str, int]] = []
        self.pending_bytes = 0
        self.current: Exchange | None = None  # the newest exchange
        self.exchanges: OrderedDict[int, Exchange] = OrderedDict()  # HTTP/2: by stream
        self.new_streams: deque[int] = deque(maxlen=MAX_STREAMS)  # HTTP/2: awaiting a scope
        # HTTP/2: streams whose request ended before their scope (a GET: HEADERS, END_STREAM)
        self.ended_early: deque[int] = deque(maxlen=MAX_STREAMS)
        # The app calls of the connection under way by their cycle's id, with the cycle itself
        # (so an id reused by a later object is no match), newest last.
        self.cycles: OrderedDict[int, tuple[Any, Exchange]] = OrderedDict()

    def by_cycle(self, cycle: Any) -> Exchange | None:
        entry = self.cycles.get(id(cycle))
        return entry[1] if entry is not None and entry[0] is cycle else None

    def by_headers(self, headers: Any) -> Exchange | None:
        for _, exchange in reversed(self.cycles.values()):
            if exchange.headers is headers:
                return exchange
        return None


class TraceCapture(logging.Handler):
    """Trace records grouped into a bounded history of exchanges (see the module docstring)."""

    def __init__(
        self,
        *,
        max_exchanges: int = MAX_EXCHANGES,
        max_history_bytes: int = MAX_HISTORY_BYTES,
        max_connections: int = MAX_CONNECTIONS,
        max_pending_bytes: int = MAX_PENDING_BYTES,
        max_exchange_records: int = MAX_EXCHANGE_RECORDS,
        max_exchange_bytes: int = MAX_EXCHANGE_BYTES,
    ) -> None:
        super().__init__()
        self.max_exchanges = max_exchanges
        self.max_history_bytes = max_history_bytes
        self.max_connections = max_connections
        self.max_pending_bytes = max_pending_bytes
        self.max_exchange_records = max_exchange_records
        self.max_exchange_bytes = max_exchange_bytes
        self._lock = threading.Lock()  # records come from the I/O thread and the app's
        self._history: OrderedDict[str, Exchange] = OrderedDict()  # oldest first
        self._history_bytes = 0
        self._connections: OrderedDict[str, _Connection] = OrderedDict()  # least recent first
        self._pending_bytes = 0
        self._by_scope: dict[int, Exchange] = {}
        self._next_id = 1
        # Connections traced as lost, until traced as made again: a driver may trace a last
        # event after "connection lost", which must not start following the connection again.
        self._lost_names: OrderedDict[str, None] = OrderedDict()
        self._seen: OrderedDict[str, None] = OrderedDict()  # connections traced, newest last

    def _new_id(self) -> str:
        # The pid makes ids unique across the processes of ``--workers N``: each worker has a
        # history of its own, and the page must never be shown another worker's exchange.
        self._next_id += 1
        return f"{os.getpid()}-{self._next_id - 1}"

    # -- what the app asks

    def exchange_for(self, scope: Any) -> Exchange | None:
        """The exchange whose ``"scope"`` record carried this very dict."""
        with self._lock:
            exchange = self._by_scope.get(id(scope))
        if exchange is None or exchange.scope is not scope:
            return None
        return exchange

    def summaries(self) -> list[dict[str, Any]]:
        """Every exchange kept, newest first."""
        with self._lock:
            return [exchange.summary() for exchange in reversed(self._history.values())]

    def exchange_json(self, exchange_id: str, after: int = 0) -> str | None:
        """An exchange as JSON, with its records from index ``after``; None if not kept."""
        with self._lock:
            exchange = self._history.get(exchange_id)
            if exchange is None:
                return None
            head = json.dumps(exchange.summary(), default=repr)
            records = ",".join(exchange.records[after:])
        return f'{head[:-1]},"after":{after},"items":[{records}]}}'

    def exchanges_on(self, connection: str) -> list[str]:
        """The ids of the exchanges kept that a connection carried, oldest first."""
        with self._lock:
            return [e.id for e in self._history.values() if e.connection == connection]

    def saw(self, connection: str) -> bool:
        """Whether this process traced the connection lately (else another worker served it)."""
        with self._lock:
            return connection in self._seen

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "exchanges": len(self._history),
                "history_bytes": self._history_bytes,
                "connections": len(self._connections),
                "pending_bytes": self._pending_bytes,
                "max_exchanges": self.max_exchanges,
                "max_history_bytes": self.max_history_bytes,
                "max_exchange_records": self.max_exchange_records,
                "max_exchange_bytes": self.max_exchange_bytes,
                "max_connections": self.max_connections,
                "max_pending_bytes": self.max_pending_bytes,
            }

    # -- logging.Handler

    def emit(self, record: logging.LogRecord) -> None:
        trace = getattr(record, "trace", None)
        if trace is None:
            return
        try:
            text = encode(trace)
            with self._lock:
                self._place(trace, text)
        except Exception:  # a capture must never break the server it watches
            self.handleError(record)

    def handle(self, record: logging.LogRecord) -> bool:
        # Not Handler.handle: its lock would serialize every record twice; ours is enough.
        if self.filter(record):
            self.emit(record)
            return True
        return False

    # -- placing records (under the lock)

    def _connection(self, name: str) -> _Connection:
        connection = self._connections.get(name)
        if connection is None:
            connection = self._connections[name] = _Connection(name)
            while len(self._connections) > self.max_connections:
                _, oldest = self._connections.popitem(last=False)
                self._forget(oldest)
        else:
            self._connections.move_to_end(name)
        return connection

    def _forget(self, connection: _Connection) -> None:
        self._pending_bytes -= connection.pending_bytes
        connection.pending.clear()
        connection.pending_bytes = 0
        connection.cycles.clear()  # nor keep the server's objects alive

    def _place(self, trace: TraceRecord, text: str) -> None:
        kind = trace.kind
        detail = trace.detail if isinstance(trace.detail, Mapping) else {}
        if kind == "connection":
            if detail.get("event") == "made":
                self._lost_names.pop(trace.connection, None)
            self._seen[trace.connection] = None
            self._seen.move_to_end(trace.connection)
            while len(self._seen) > self.max_connections * 4:
                self._seen.popitem(last=False)
        elif trace.connection in self._lost_names:
            return  # traced after "connection lost": the connection is gone
        connection = self._connection(trace.connection)
        if kind == "scope":
            self._start(connection, trace, detail, text)
            return
        if kind == "connection" and detail.get("event") == "lost":
            self._lost(connection, trace, text)
            return
        cycle = trace.cycle
        if cycle is not None and not (kind == "event" and detail.get("event") == "StartApp"):
            exchange = connection.by_cycle(cycle)
            if exchange is None:
                return  # the app call of a connection forgotten: nothing says where it goes
        elif type(trace.obj) is ResponseCompleted and connection.cycles:
            exchange = connection.by_headers(trace.obj.request_headers)
            if exchange is None and trace.protocol == _H2:
                return  # a stream refused before any app call: no exchange of this connection
            exchange = exchange or connection.current
        elif (
            kind == "event"
            and detail.get("event") == "RequestRejected"
            and trace.protocol != _H2
            and (connection.current is None or connection.current.complete)
        ):
            exchange = self._rejected(connection, trace, detail)
        elif trace.protocol == _H2 or (connection.current and connection.current.protocol == _H2):
            exchange = self._h2_target(connection, trace, detail)
        else:
            exchange = self._target(connection, trace, detail)
        if exchange is None:
            stream = detail.get("stream") if kind == "frame" else 0
            self._add_pending(
                connection, trace.time, text, stream if isinstance(stream, int) else 0
            )
        else:
            self._add(exchange, trace.time, text)
            if kind == "message":
                self._follow_message(exchange, detail)
            elif kind == "event" and detail.get("event") == "ResponseCompleted":
                if exchange.protocol != _H2 and exchange.type == "http":
                    exchange.complete = True
                if exchange.status is None and isinstance(detail.get("status"), int):
                    exchange.status = detail["status"]

    def _target(
        self, connection: _Connection, trace: TraceRecord, detail: Mapping[str, Any]
    ) -> Exchange | None:
        """HTTP/1.1 and WebSocket: the exchange a record belongs to, or None for pending."""
        current = connection.current
        if trace.kind == "event" and detail.get("event") == "StartApp":
            return None  # the start of the next exchange: its scope comes next
        if trace.kind == "connection":
            return None
        if current is None:
            return None
        # Bytes read or written after the response are the next request's, or the answer to
        # a request the server rejected (a driver traces what it writes before the events of
        # the same turn, so a 400 comes before its RequestRejected).
        if trace.kind == "data" and current.type == "http" and current.complete:
            return None
        return current

    def _h2_target(
        self, connection: _Connection, trace: TraceRecord, detail: Mapping[str, Any]
    ) -> Exchange | None:
        kind = trace.kind
        stream = detail.get("stream")
        if kind == "frame" and isinstance(stream, int) and stream > 0:
            exchange = connection.exchanges.get(stream)
            flags = detail.get("flags") or ()
            if exchange is None:
                opens = trace.direction == "<" and detail.get("type") == "HEADERS"
                if opens and stream not in connection.new_streams:
                    connection.new_streams.append(stream)
                if trace.direction == "<" and "END_STREAM" in flags:
                    connection.ended_early.append(stream)
                return None  # its scope takes it with the connection's pending records
            if "END_STREAM" in flags:
                if trace.direction == "<":
                    exchange.ended_in = True
                else:
                    exchange.ended_out = True
            if detail.get("type") == "RST_STREAM" or (exchange.ended_in and exchange.ended_out):
                exchange.complete = True
            return exchange
        if kind == "event" and detail.get("event") == "StartApp":
            return None
        if kind == "connection":
            return None
        if isinstance(stream, int) and stream > 0 and stream in connection.exchanges:
            return connection.exchanges[stream]
        return connection.current  # stream 0, and what names no stream nor cycle

    @staticmethod
    def _follow_message(exchange: Exchange, detail: Mapping[str, Any]) -> None:
        kind = detail.get("type")
        if kind == "http.response.start":
            status = detail.get("status")
            if isinstance(status, int):
                exchange.status = status
        elif kind == "websocket.accept":
            exchange.status = 101
        elif kind == "websocket.close" and exchange.status is None:
            exchange.status = 403
        elif kind == "websocket.disconnect":
            exchange.complete = True

    def _start(
        self, connection: _Connection, trace: TraceRecord, detail: Mapping[str, Any], text: str
    ) -> None:
        path = detail.get("path")
        path = path if isinstance(path, str) else ""
        keep = not path.startswith(INTERNAL_PREFIX)
        exchange = Exchange(self._new_id() if keep else "", connection.name, trace.protocol, keep)
        exchange.type = str(detail.get("type", "http"))
        exchange.method = str(detail.get("method", "GET" if exchange.type == "websocket" else ""))
        exchange.path = path
        query = detail.get("query_string", "")
        exchange.query = query if isinstance(query, str) else ""
        if connection.current is not None and connection.current.protocol != _H2:
            connection.current.complete = True  # the next request has begun
        connection.current = exchange
        if trace.cycle is not None:  # its messages and events name it (even when not kept)
            # Only app calls still under way: a cycle holds its request, and a client on a
            # long keep-alive connection makes many.
            for key, (_, other) in list(connection.cycles.items()):
                if other.complete:
                    del connection.cycles[key]
            connection.cycles[id(trace.cycle)] = (trace.cycle, exchange)
            while len(connection.cycles) > MAX_STREAMS:
                connection.cycles.popitem(last=False)
        if isinstance(trace.obj, Mapping):
            exchange.headers = trace.obj.get("headers")
        stream = 0
        if trace.protocol == _H2 and connection.new_streams:
            stream = connection.new_streams.popleft()
            exchange.stream = stream
            exchange.ended_in = stream in connection.ended_early
            connection.exchanges[stream] = exchange
            while len(connection.exchanges) > MAX_STREAMS:
                connection.exchanges.popitem(last=False)
        # Its records, and the connection's; another stream's wait for that stream's scope.
        pending = [entry for entry in connection.pending if entry[2] in (0, stream)]
        connection.pending = [entry for entry in connection.pending if entry[2] not in (0, stream)]
        taken = sum(len(entry[1]) for entry in pending)
        self._pending_bytes -= taken
        connection.pending_bytes -= taken
        if not keep:
            return
        exchange.scope = trace.obj
        self._history[exchange.id] = exchange
        if trace.obj is not None:
            self._by_scope[id(trace.obj)] = exchange
        for when, item, _ in pending:
            self._add(exchange, when, item)
        self._add(exchange, trace.time, text)
        while len(self._history) > self.max_exchanges:
            self._evict()

    def _rejected(
        self, connection: _Connection, trace: TraceRecord, detail: Mapping[str, Any]
    ) -> Exchange:
        """A request the core refused before any app call (no scope): an exchange of its own,
        of type "rejected", made of the records the connection traced since the last one."""
        exchange = Exchange(self._new_id(), connection.name, trace.protocol, True)
        exchange.type = "rejected"
        exchange.method = exchange.path = None
        status = detail.get("status")
        exchange.status = status if isinstance(status, int) else None
        connection.current = exchange
        pending, connection.pending = connection.pending, []
        self._pending_bytes -= connection.pending_bytes
        connection.pending_bytes = 0
        self._history[exchange.id] = exchange
        for when, item, _ in pending:
            self._add(exchange, when, item)
        while len(self._history) > self.max_exchanges:
            self._evict()
        return exchange

    def _lost(self, connection: _Connection, trace: TraceRecord, text: str) -> None:
        """The connection closed: its exchanges are complete, and it is followed no more."""
        finished = list(connection.exchanges.values())
        if connection.current is not None and connection.current not in finished:
            finished.append(connection.current)
        for exchange in finished:
            exchange.complete = True
        if connection.current is not None:
            self._add(connection.current, trace.time, text)
        self._forget(connection)
        self._connections.pop(connection.name, None)
        self._lost_names[connection.name] = None
        while len(self._lost_names) > self.max_connections:
            self._lost_names.popitem(last=False)

    def _add_pending(self, connection: _Connection, when: float, text: str, stream: int) -> None:
        connection.pending.append((when, text, stream))
        connection.pending_bytes += len(text)
        self._pending_bytes += len(text)
        while len(connection.pending) > MAX_PENDING_RECORDS:
            _, dropped, _ = connection.pending.pop(0)
            connection.pending_bytes -= len(dropped)
            self._pending_bytes -= len(dropped)
        while self._pending_bytes > self.max_pending_bytes:
            for other in self._connections.values():  # least recently active first
                if other.pending:
                    self._forget(other)
                    break
            else:  # pragma: no cover - the sum is of the connections' pending
                self._pending_bytes = 0

    def _add(self, exchange: Exchange, when: float, text: str) -> None:
        if not exchange.keep or exchange.evicted:
            return
        if exchange.started is None:
            exchange.started = when
        size = len(text)
        full = len(exchange.records) >= self.max_exchange_records
        if full or exchange.bytes + size > self.max_exchange_bytes:
            exchange.dropped += 1
            return
        exchange.records.append(text)
        exchange.bytes += size
        self._history_bytes += size
        while self._history_bytes > self.max_history_bytes and self._history:
            self._evict()

    def _evict(self) -> None:
        _, exchange = self._history.popitem(last=False)
        exchange.evicted = True
        self._history_bytes -= exchange.bytes
        exchange.records = []
        exchange.bytes = 0
        if exchange.scope is not None:
            self._by_scope.pop(id(exchange.scope), None)
            exchange.scope = None
        exchange.headers = None

    def __iter__(self) -> Iterator[Exchange]:
        with self._lock:
            return iter(list(self._history.values()))
