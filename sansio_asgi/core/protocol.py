"""``ServerProtocol``: the one object a driver holds per TCP connection.

It is the driver contract (``spec/driver-contract.md``) in code. The driver calls in with
bytes, end-of-file, the time and the app's messages; after every call it does the same three
things:

1. write ``data_to_send()`` to the socket;
2. act on each event of ``events_received()`` (``sansio_asgi.core.events``);
3. arrange for ``handle_timer(now)`` to be called at ``next_deadline()``.

Behind this facade a *handler* (``handler.Handler``) speaks the connection's protocol. Every
connection starts with ``HTTP11Handler``, the one protocol served before any byte is read (an
HTTP/2 handler would be chosen here, from ALPN or the connection preface); a request that
upgrades the connection hands it over to another handler (WebSocket), which takes the same
calls. Output and events go into lists owned here and shared with the handlers, so a hand-over
keeps whatever is queued. Calls about a cycle go to the handler that serves it
(``cycle.handler``), whatever protocol that is.

Nothing here raises on bad input from the network. ``message_from_app`` raises
``ASGIProtocolError`` for an invalid message and ``ClientDisconnected`` (an ``OSError``) when the
client has gone: both are meant to propagate out of the app's ``send()``.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import Any

from .cycle import HTTPCycle
from .events import Event
from .http11 import HTTP11Handler, HTTP11Writer
from .scope import ConnectionInfo, RequestHead
from .settings import ProtocolSettings
from .websocket import WebSocketCycle, WebSocketHandler

Cycle = HTTPCycle | WebSocketCycle

_NO_EVENTS: Sequence[Event] = ()


class ServerProtocol:
    __slots__ = ("_connection", "_events", "_handler", "_output", "_settings")

    def __init__(
        self,
        settings: ProtocolSettings,
        *,
        client: tuple[str, int] | None,
        server: tuple[str, int | None] | None,
        scheme: str = "http",
        now: float,
        tls: dict[str, Any] | None = None,
    ) -> None:
        self._settings = settings
        self._connection = ConnectionInfo(client=client, server=server, scheme=scheme, tls=tls)
        self._output: list[bytes] = []
        self._events: list[Event] = []
        self._handler: HTTP11Handler | WebSocketHandler = HTTP11Handler(
            settings,
            self._connection,
            output=self._output,
            events=self._events,
            now=now,
            on_upgrade=self._upgrade if settings.ws_enabled else None,
        )

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

    # network side
    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the socket. Never raises: bad input queues an error response and a close."""
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
    def message_for_app(self, cycle: Cycle) -> dict[str, Any] | None:
        """The next message for ``receive()``, or None: wait for a ``WakeApp`` for this cycle."""
        return cycle.handler.message_for_app(cycle)

    def message_from_app(self, cycle: Cycle, message: MutableMapping[str, Any], now: float) -> None:
        """A message from ``send()``. Raises ``ASGIProtocolError`` or ``ClientDisconnected``."""
        cycle.handler.message_from_app(cycle, message, now)

    def app_finished(self, cycle: Cycle, exc: BaseException | None, now: float) -> None:
        """The app for ``cycle`` returned (``exc`` is None) or raised ``exc``."""
        cycle.handler.app_finished(cycle, exc, now)

    # app side: file bodies (http.response.pathsend, http.response.zerocopysend)
    def file_opened(self, cycle: HTTPCycle, fd: int, offset: int, count: int, now: float) -> None:
        """Answer to ``OpenFile``: the file is open; ``count`` bytes are available from
        ``offset`` (capped by the app's count). The core writes the head as a body message of
        ``count`` bytes would, then emits ``SendFile`` (none for a count of 0 or a response
        without content). Raises ``ASGIProtocolError``/``ContentLengthMismatch`` (a file
        shorter or longer than the declared Content-Length) or ``ClientDisconnected``, to
        propagate out of ``send()``."""
        _http_handler(cycle).file_opened(cycle, fd, offset, count, now)

    def file_failed(self, cycle: HTTPCycle, exc: BaseException, now: float) -> None:
        """Answer to ``OpenFile``: the file could not be opened (``exc``); nothing was written
        for it and the response is as it was before the message. The driver raises ``exc``
        from ``send()``."""
        _http_handler(cycle).file_failed(cycle, exc, now)

    def file_sent(self, cycle: HTTPCycle, now: float) -> None:
        """Answer to ``SendFile``: its bytes are written; the response goes on (or ends)."""
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
        self._handler.shutdown(now)

    @property
    def is_idle(self) -> bool:
        """No request in progress: the connection can be closed without losing anything."""
        return self._handler.is_idle


def _http_handler(cycle: HTTPCycle) -> HTTP11Handler:
    """The handler of a cycle that asked for a file: only an HTTP response can."""
    handler = cycle.handler
    assert isinstance(handler, HTTP11Handler), handler
    return handler
