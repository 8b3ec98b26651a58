"""``ServerProtocol``: the one object a driver holds per TCP connection.

It is the driver contract (``spec/driver-contract.md``) in code. The driver calls in with
bytes, end-of-file, the time and the app's messages; after every call it does the same three
things:

1. write ``data_to_send()`` to the socket;
2. act on each event of ``events_received()`` (``sansio_asgi.core.events``);
3. arrange for ``handle_timer(now)`` to be called at ``next_deadline()``.

Behind this facade a *handler* (``handler.Handler``) speaks the connection's protocol, chosen
here: ``HTTP2Handler`` when TLS negotiated ``h2`` (ALPN) or when the connection's first bytes
are the HTTP/2 preface (prior knowledge), ``HTTP11Handler`` otherwise. An HTTP/1.1 request that
upgrades the connection hands it over to another handler (WebSocket, or HTTP/2 after
``Upgrade: h2c``), which takes the same calls. Output and events go into lists owned here and
shared with the handlers, so a hand-over keeps whatever is queued. Calls about a cycle go to
the handler that serves it (``cycle.handler``), whatever protocol that is.

Nothing here raises on bad input from the network. ``message_from_app`` raises
``ASGIProtocolError`` for an invalid message and ``ClientDisconnected`` (an ``OSError``) when the
client has gone: both are meant to propagate out of the app's ``send()``.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import Any

from .cycle import HTTPCycle
from .events import Event
from .handler import Phase
from .http2 import PREFACE, HTTP2Handler
from .http11 import HTTP11Handler, HTTP11Writer
from .scope import ConnectionInfo, RequestHead
from .settings import ProtocolSettings
from .websocket import WebSocketCycle, WebSocketHandler

Cycle = HTTPCycle | WebSocketCycle

_NO_EVENTS: Sequence[Event] = ()
# A connection that is closing serves no new protocol: what arrives is dropped.
_ENDED = frozenset({Phase.LINGERING, Phase.CLOSED})


class ServerProtocol:
    __slots__ = (
        "_connection",
        "_events",
        "_handler",
        "_output",
        "_preface",
        "_settings",
        "_shutting_down",
    )

    def __init__(
        self,
        settings: ProtocolSettings,
        *,
        client: tuple[str, int] | None,
        server: tuple[str, int | None] | None,
        scheme: str = "http",
        now: float,
        tls: dict[str, Any] | None = None,
        alpn: str | None = None,
    ) -> None:
        self._settings = settings
        self._connection = ConnectionInfo(client=client, server=server, scheme=scheme, tls=tls)
        self._output: list[bytes] = []
        self._events: list[Event] = []
        # The first bytes, while they could still be the HTTP/2 preface; None once decided.
        self._preface: bytes | None = None
        self._shutting_down = False  # shutdown() was called: a new handler drains at once
        self._handler: HTTP11Handler | WebSocketHandler | HTTP2Handler
        if alpn == "h2" and settings.http2:
            self._handler = HTTP2Handler(
                settings, self._connection, output=self._output, events=self._events, now=now
            )
            return
        self._handler = HTTP11Handler(
            settings,
            self._connection,
            output=self._output,
            events=self._events,
            now=now,
            on_upgrade=self._upgrade if settings.ws_enabled else None,
            # RFC 9113 §3.1: "The "h2c" string ... describes a protocol that does not use TLS".
            on_h2c=self._upgrade_h2c if settings.http2 and tls is None else None,
        )
        if settings.http2:
            self._preface = b""

    def _upgrade(
        self, request: RequestHead, early: bytes, writer: HTTP11Writer, now: float
    ) -> None:
        """The hand-over: a valid WebSocket handshake; the connection speaks WebSocket now."""
        http = self._handler
        self._handler = WebSocketHandler(
            self._settings,
            self._connection,
            request=request,
            early=early,
            writer=writer,
            output=self._output,
            events=self._events,
            now=now,
            reading_paused=http.reading_paused,
            writing_paused=http.writing_paused,
        )

    def _upgrade_h2c(self, request: RequestHead, settings: bytes, early: bytes, now: float) -> None:
        """The hand-over after ``Upgrade: h2c``: the request is stream 1 of an HTTP/2
        connection, and what followed it (the client's preface) is HTTP/2's."""
        self._to_http2(early, now, upgrade=(request, settings))

    def _sniff(self, data: bytes, now: float) -> bytes:
        """The connection's first bytes: the HTTP/2 preface hands the connection over (RFC 9113
        §3.3, prior knowledge); anything else is HTTP/1.1's, returned to be served."""
        seen = self._preface + data if self._preface else data
        size = min(len(seen), len(PREFACE))
        if seen[:size] != PREFACE[:size] or self._handler.phase in _ENDED:
            self._preface = None
            return seen
        if size < len(PREFACE):
            self._preface = seen  # wait for the rest: "PRI * HTTP/2.0" is no HTTP/1.1 request
            return b""
        self._preface = None
        self._to_http2(seen, now)
        return b""

    def _to_http2(
        self, data: bytes, now: float, upgrade: tuple[RequestHead, bytes] | None = None
    ) -> None:
        """Hand the connection to HTTP/2 with its first bytes (an upgraded request becomes
        stream 1); a server already stopping drains it at once, once what came is served."""
        http = self._handler
        handler = HTTP2Handler(
            self._settings,
            self._connection,
            output=self._output,
            events=self._events,
            now=now,
            upgrade=upgrade,
            reading_paused=http.reading_paused,
            writing_paused=http.writing_paused,
        )
        self._handler = handler
        if data:
            handler.receive_data(data, now)
        if self._shutting_down:
            handler.shutdown(now)

    # network side
    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the socket. Never raises: bad input queues an error response and a close."""
        if self._preface is not None:
            data = self._sniff(data, now)
            if not data:
                return
        self._handler.receive_data(data, now)

    def receive_eof(self, now: float) -> None:
        """The peer closed its side, or the connection was lost."""
        self._handler.receive_eof(now)

    def writing_paused(self, now: float) -> None:
        """The bytes written but not yet sent passed ``write_high_water_bytes``: the core stops
        reading, so what it queues by itself in answer (pongs, close frames, error
        responses) stays bounded while the client does not read."""
        self._handler.set_writing_paused(True)

    def writing_resumed(self, now: float) -> None:
        """The bytes not yet sent fell back below the low-water mark."""
        self._handler.set_writing_paused(False)

    def data_to_send(self) -> bytes:
        """Bytes to write, in order; drains the queue."""
        output = self._output
        if not output:
            return b""
        data = output[0] if len(output) == 1 else b"".join(output)
        output.clear()
        return data

    def events_received(self) -> Sequence[Event]:
        """Instructions and facts for the driver, in order; drains the queue."""
        events = self._events
        if not events:
            return _NO_EVENTS
        drained = events.copy()
        events.clear()
        return drained

    # app side
    def message_for_app(self, cycle: Cycle, now: float | None = None) -> dict[str, Any] | None:
        """The next message for ``receive()``, or None: wait for a ``WakeApp`` for this cycle.
        ``now`` starts the clock of a wait for request body where the protocol times it per
        stream (HTTP/2); without it the time of the last call that brought one is used."""
        return cycle.handler.message_for_app(cycle, now)

    def message_from_app(self, cycle: Cycle, message: MutableMapping[str, Any], now: float) -> None:
        """A message from ``send()``. Raises ``ASGIProtocolError`` or ``ClientDisconnected``."""
        cycle.handler.message_from_app(cycle, message, now)

    def app_finished(self, cycle: Cycle, exc: BaseException | None, now: float) -> None:
        """The app for ``cycle`` returned (``exc`` is None) or raised ``exc``."""
        cycle.handler.app_finished(cycle, exc, now)

    def send_ready(self, cycle: Cycle) -> bool:
        """Whether the app's ``send()`` may return: False while an HTTP/2 stream's response
        bytes wait on the peer's window beyond ``write_high_water_bytes`` (ask again after a
        ``WakeApp`` for the cycle). Always True on HTTP/1.1."""
        return cycle.handler.send_ready(cycle)

    # app side: file bodies (http.response.pathsend, http.response.zerocopysend)
    def file_opened(self, cycle: HTTPCycle, fd: int, offset: int, count: int, now: float) -> None:
        """Answer to ``OpenFile``: the file is open; ``count`` bytes are available from
        ``offset`` (capped by the app's count). The core writes the head as a body message of
        ``count`` bytes would, then emits ``SendFile`` (HTTP/2: ``FeedFile``), or none for a
        count of 0 or a response without content. Raises ``ASGIProtocolError``,
        ``ContentLengthMismatch`` (a file shorter or longer than the declared Content-Length)
        or ``ClientDisconnected``, to propagate out of ``send()``."""
        _http_handler(cycle).file_opened(cycle, fd, offset, count, now)

    def file_data(self, cycle: HTTPCycle, data: bytes, now: float) -> None:
        """A piece of the file a ``FeedFile`` asked for (HTTP/2: the core frames it)."""
        handler = cycle.handler
        assert isinstance(handler, HTTP2Handler), handler
        handler.file_data(cycle, data, now)

    def file_failed(self, cycle: HTTPCycle, exc: BaseException, now: float) -> None:
        """Answer to ``OpenFile``: the file could not be opened (``exc``); nothing was written
        for it and the response is as it was before the message. The driver raises ``exc``
        from ``send()``."""
        _http_handler(cycle).file_failed(cycle, exc, now)

    def file_sent(self, cycle: HTTPCycle, now: float) -> None:
        """Answer to ``SendFile`` or ``FeedFile``: its bytes are written; the response goes on
        (or ends)."""
        _http_handler(cycle).file_sent(cycle, now)

    # time
    def next_deadline(self) -> float | None:
        """When ``handle_timer`` wants to be called, on the clock passed as ``now``."""
        return self._handler.next_deadline()

    def handle_timer(self, now: float) -> None:
        """Act on any deadline that has passed (calling early is harmless)."""
        self._handler.handle_timer(now)

    # server side
    def shutdown(self, now: float) -> None:
        """The server is stopping: finish the current response, then close."""
        self._shutting_down = True
        self._handler.shutdown(now)

    @property
    def is_idle(self) -> bool:
        """No request in progress: the connection can be closed without losing anything."""
        return self._handler.is_idle

    @property
    def protocol(self) -> str:
        """What the connection speaks now, for trace lines: "http/1.1", "h2" or "websocket"."""
        handler = self._handler
        if isinstance(handler, HTTP2Handler):
            return "h2"
        if isinstance(handler, WebSocketHandler):
            return "websocket"
        return "http/1.1"


def _http_handler(cycle: HTTPCycle) -> HTTP11Handler | HTTP2Handler:
    """The handler of a cycle that asked for a file: only an HTTP response can."""
    handler = cycle.handler
    assert isinstance(handler, HTTP11Handler | HTTP2Handler), handler
    return handler
