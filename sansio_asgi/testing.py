"""In-memory connections to the real server, for testing ASGI apps: no sockets, no threads.

Theory of operation
-------------------
``MemoryServer`` runs an app behind the asyncio driver's own connection class
(``drivers/asyncio_driver._Connection``: the ``asyncio.BufferedProtocol`` the server puts on
every accepted socket), attached to ``_MemoryTransport``, an ``asyncio.Transport`` whose other
end is a ``MemoryStream`` instead of a socket. A request written to the stream reaches the
connection as ``get_buffer``/``buffer_updated`` on the loop's next turn, one read of at most
``read_size_bytes`` per turn as from a socket; the response the connection writes waits in the
transport until the stream reads it. So the bytes go through exactly what a socket's would:
the driver, the sans-IO core, h11/wsproto, the app, and back. Timers are the loop's.

The transport keeps the flow control of a real one. Bytes the server wrote and the client has
not read count as its write buffer: past the high-water mark the connection's
``pause_writing`` runs (and the app's ``send()`` waits), at the low-water mark
``resume_writing``. Bytes the client wrote and the server has not read (reading is paused, say)
wait in a buffer of ``SOCKET_BUFFER_BYTES``, as in a socket's; past it the client's
``write()`` waits. Closing hands what was written to the client, as a kernel would, and
reports ``connection_lost`` on the loop's next turn; the client reads the rest, then ``b""``.
A server write after the client closed, or a client that closes with a response unread,
resets the connection (``connection_lost(ConnectionResetError)``), as TCP does.

``Transport`` puts httpx on top (``httpx.AsyncClient(transport=Transport(app))``): httpcore, a
real HTTP client, writes the request's bytes into a ``MemoryStream`` and parses the response's,
so a test sees what a client on the network would, headers the server adds included. A
WebSocket goes through httpx-ws, which takes the stream from the ``101`` response.

asyncio only (the driver is asyncio's; Trio is not supported). httpx and httpcore are needed
for ``Transport`` alone.

Example::

    import httpx
    from sansio_asgi.testing import MemoryServer, Transport

    async def test_hello() -> None:
        async with httpx.AsyncClient(
            transport=Transport(app), base_url="http://testserver"
        ) as client:  # runs the app's lifespan
            response = await client.get("/")
            assert response.status_code == 200

    async def test_raw() -> None:
        async with MemoryServer(app) as server:
            stream = await server.connect()
            await stream.write(b"GET / HTTP/1.1\\r\\nHost: testserver\\r\\n\\r\\n")
            head = await stream.read()
            await stream.aclose()

WebSocket (httpx-ws)::

    from httpx_ws import aconnect_ws

    async with httpx.AsyncClient(transport=Transport(app), base_url="http://testserver") as c:
        async with aconnect_ws("/ws", c) as ws:
            await ws.send_text("hi")
            assert await ws.receive_text() == "hi"
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
import time
import types
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .config import ASGIApp
from .core import ProtocolSettings, ServerProtocol
from .core.events import Event
from .drivers.asyncio_driver import AsyncioDriver, _Connection
from .drivers.sockets import scope_addresses
from .logs import report as log_report
from .server import _LifespanRun

try:
    import httpcore
    import httpx
except ImportError as exc:  # Transport alone needs them
    _httpx_missing: ImportError | None = exc
else:
    _httpx_missing = None

__all__ = ["LifespanFailed", "MemoryServer", "MemoryStream", "Transport"]

# What the client may have written that the server has not read yet (reading is paused, or the
# loop has not turned), before the client's write() waits: a socket's receive buffer, about
# Linux's default for a loopback connection's first window.
SOCKET_BUFFER_BYTES = 64 * 1024

# asyncio's own default write-buffer limits (FlowControlMixin): pause above 64 KiB, resume at
# a quarter of the high-water mark.
DEFAULT_WRITE_HIGH_WATER_BYTES = 64 * 1024

# The server's --timeout-lifespan-startup / --timeout-lifespan-shutdown defaults.
LIFESPAN_TIMEOUT_S = 60.0

LifespanMode = Literal["auto", "on", "off"]


class LifespanFailed(RuntimeError):
    """The app's lifespan startup failed (``lifespan.startup.failed``, an exception under
    ``lifespan="on"``, or the startup timeout)."""


# ---------------------------------------------------------------------- waiting


class _Waiters:
    """Futures woken together when the state they wait on may have changed; each waiter
    checks its own condition again."""

    __slots__ = ("_futures",)

    def __init__(self) -> None:
        self._futures: list[asyncio.Future[None]] = []

    async def wait(self) -> None:
        future = asyncio.get_running_loop().create_future()
        self._futures.append(future)
        try:
            await future
        finally:
            with contextlib.suppress(ValueError):
                self._futures.remove(future)

    def wake(self) -> None:
        futures, self._futures = self._futures, []
        for future in futures:
            if not future.done():
                future.set_result(None)


# ---------------------------------------------------------------------- the transport


class _MemoryTransport(asyncio.Transport):
    """The server's end of one in-memory connection, with a ``MemoryStream`` at the other.

    The names follow asyncio's socket transport (``selector_events._SelectorSocketTransport``):
    the protocol's callbacks run on the loop, reading is paused and resumed, the write buffer
    has limits with ``pause_writing``/``resume_writing``, and ``connection_lost`` comes once,
    on a turn after ``close()``/``abort()``."""

    def __init__(
        self,
        protocol: asyncio.BaseProtocol,
        *,
        peername: tuple[str, int],
        sockname: tuple[str, int | None],
    ) -> None:
        super().__init__()
        self._loop = asyncio.get_running_loop()
        self._protocol = protocol
        self._extra: dict[str, Any] = {
            "peername": peername,
            "sockname": sockname,
            "socket": None,
            "sslcontext": None,
            "ssl_object": None,
            "peercert": None,
            "cipher": None,
            "compression": None,
        }
        # client -> server
        self._inbound = bytearray()
        self._inbound_eof = False  # the client wrote its EOF (write_eof() or aclose())
        self._eof_delivered = False
        self._reading_paused = False
        self._delivery: asyncio.Handle | None = None
        # server -> client
        self._outbound = bytearray()
        self._eof_written = False  # write_eof()
        self._high_water = DEFAULT_WRITE_HIGH_WATER_BYTES
        self._low_water = DEFAULT_WRITE_HIGH_WATER_BYTES // 4
        self._protocol_paused = False
        # the connection
        self._closing = False
        self._lost = False
        self._reset = False  # ended by a reset: the client's reads and writes fail
        self._client_closed = False
        self.changed = _Waiters()  # what the client waits on
        self.on_lost: Callable[[], None] | None = None  # after the protocol's connection_lost

    # asyncio.BaseTransport

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop reading; what was written stays for the client to read, then ``b""``."""
        if self._closing:
            return
        self._closing = True
        self._cancel_delivery()
        self._inbound.clear()  # what the client sent and the server did not read is dropped
        self._loop.call_soon(self._call_connection_lost, None)
        self.changed.wake()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    # asyncio.ReadTransport

    def is_reading(self) -> bool:
        return not self._reading_paused and not self._closing

    def pause_reading(self) -> None:
        if self._closing or self._reading_paused:
            return
        self._reading_paused = True
        self._cancel_delivery()

    def resume_reading(self) -> None:
        if self._closing or not self._reading_paused:
            return
        self._reading_paused = False
        self._schedule_delivery()

    # asyncio.WriteTransport

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = DEFAULT_WRITE_HIGH_WATER_BYTES if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high_water = high
        self._low_water = low
        self._maybe_pause_protocol()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low_water, self._high_water)

    def get_write_buffer_size(self) -> int:
        return len(self._outbound)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data argument must be a bytes-like object, not {type(data).__name__}")
        if self._eof_written:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data or self._lost:
            return
        if self._client_closed:
            # TCP answers a segment to a closed socket with a reset.
            self._force_close(ConnectionResetError("the client closed the connection"))
            return
        self._outbound += data
        self.changed.wake()
        self._maybe_pause_protocol()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        if self._closing or self._eof_written:
            return
        self._eof_written = True
        self.changed.wake()

    def can_write_eof(self) -> bool:
        return True

    def abort(self) -> None:
        self._force_close(None)

    # flow control and the protocol's callbacks

    def _maybe_pause_protocol(self) -> None:
        if self._protocol_paused or len(self._outbound) <= self._high_water:
            return
        self._protocol_paused = True
        protocol = self._protocol
        assert isinstance(protocol, asyncio.BaseProtocol)
        try:
            protocol.pause_writing()
        except Exception as exc:
            self._report_error(exc, "protocol.pause_writing() failed")

    def _maybe_resume_protocol(self) -> None:
        if not self._protocol_paused or len(self._outbound) > self._low_water or self._lost:
            return
        self._protocol_paused = False
        try:
            self._protocol.resume_writing()
        except Exception as exc:
            self._report_error(exc, "protocol.resume_writing() failed")

    def _schedule_delivery(self) -> None:
        if self._delivery is None and not self._closing and not self._reading_paused:
            self._delivery = self._loop.call_soon(self._deliver)

    def _cancel_delivery(self) -> None:
        if self._delivery is not None:
            self._delivery.cancel()
            self._delivery = None

    def _deliver(self) -> None:
        """One read: at most one buffer of what the client wrote, or its EOF once all of that
        is read; then another turn if more waits."""
        self._delivery = None
        if self._closing or self._reading_paused:
            return
        protocol = self._protocol
        inbound = self._inbound
        if inbound:
            try:
                if isinstance(protocol, asyncio.BufferedProtocol):
                    buffer = memoryview(protocol.get_buffer(len(inbound)))
                    size = min(len(buffer), len(inbound))
                    buffer[:size] = inbound[:size]
                    del inbound[:size]
                    protocol.buffer_updated(size)
                else:
                    assert isinstance(protocol, asyncio.Protocol)
                    data = bytes(inbound)
                    inbound.clear()
                    protocol.data_received(data)
            except Exception as exc:
                self._fatal_error(exc, "protocol.buffer_updated() failed")
                return
            self.changed.wake()  # a client write() waiting for room
            if inbound or self._inbound_eof:
                self._schedule_delivery()
            return
        if self._inbound_eof and not self._eof_delivered:
            self._eof_delivered = True
            try:
                keep_open = protocol.eof_received()  # type: ignore[attr-defined]
            except Exception as exc:
                self._fatal_error(exc, "protocol.eof_received() failed")
                return
            if not keep_open:
                self.close()

    def _force_close(self, exc: Exception | None) -> None:
        if self._lost or (self._closing and self._reset):
            return
        if exc is not None:
            self._reset = True
        already_closing = self._closing
        self._closing = True
        self._cancel_delivery()
        self._inbound.clear()
        if not already_closing:
            self._loop.call_soon(self._call_connection_lost, exc)
        self.changed.wake()

    def _fatal_error(self, exc: Exception, message: str) -> None:
        self._report_error(exc, message)
        self._force_close(exc)

    def _report_error(self, exc: Exception, message: str) -> None:
        self._loop.call_exception_handler(
            {"message": message, "exception": exc, "transport": self, "protocol": self._protocol}
        )

    def _call_connection_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._inbound.clear()
        self.changed.wake()
        try:
            self._protocol.connection_lost(exc)
        finally:
            if self.on_lost is not None:
                self.on_lost()

    # the client's end (MemoryStream)

    @property
    def output_ended(self) -> bool:
        """No more bytes will come after those waiting."""
        return self._eof_written or self._closing

    def client_write(self, data: bytes) -> None:
        if self._closing:
            raise ConnectionResetError("the server closed the connection")
        self._inbound += data
        self._schedule_delivery()

    def client_has_room(self) -> bool:
        return len(self._inbound) <= SOCKET_BUFFER_BYTES

    def client_read(self, max_bytes: int) -> bytes:
        outbound = self._outbound
        data = bytes(outbound[:max_bytes])
        del outbound[:max_bytes]
        self._maybe_resume_protocol()
        return data

    def client_write_eof(self) -> None:
        if not self._inbound_eof:
            self._inbound_eof = True
            self._schedule_delivery()

    def client_close(self) -> None:
        """The client closed its socket: its unread bytes make that a reset; otherwise the
        server reads what was written, then EOF, and a reset if it writes again."""
        self._client_closed = True
        if self._outbound and not self._lost:
            self._outbound.clear()
            self._force_close(ConnectionResetError("the client closed the connection"))
            return
        self.client_write_eof()

    def client_abandon(self) -> None:
        """The test is over: the connection goes, whatever it was doing."""
        self._client_closed = True
        self._outbound.clear()
        self._force_close(ConnectionResetError("the client closed the connection"))


# ---------------------------------------------------------------------- the client's end


class MemoryStream:
    """The client's end of one connection to a ``MemoryServer``: bytes in, bytes out."""

    def __init__(self, transport: _MemoryTransport, connection: _Connection) -> None:
        self._transport = transport
        self._connection = connection
        self._eof_sent = False
        self._closed = False
        self._on_ended: Callable[[MemoryStream], None] | None = None  # closed on both sides

    @property
    def readable(self) -> bool:
        """``read()`` would return at once: bytes are waiting, or the server's side ended."""
        transport = self._transport
        return bool(transport.get_write_buffer_size()) or transport.output_ended

    @property
    def server_closed(self) -> bool:
        """The server closed the connection (its ``connection_lost`` ran)."""
        return self._transport._lost

    async def write(self, data: bytes) -> None:
        """Send ``data`` to the server. Waits while the server holds more than
        ``SOCKET_BUFFER_BYTES`` it has not read; raises ``ConnectionResetError`` once the server
        has closed the connection, as a socket would, and ``BrokenPipeError`` after
        ``write_eof()``."""
        self._check_open()
        if self._eof_sent:
            raise BrokenPipeError("write() after write_eof()")
        transport = self._transport
        if not data:
            return
        transport.client_write(bytes(data))
        while not transport.client_has_room():
            await transport.changed.wait()
            if transport.is_closing():
                raise ConnectionResetError("the server closed the connection")

    async def read(self, max_bytes: int = 65536) -> bytes:
        """At most ``max_bytes`` of what the server wrote, waiting for some; ``b""`` once the
        server has ended its side (``write_eof``, close) and everything before was read.
        Raises ``ConnectionResetError`` when the connection was reset."""
        self._check_open()
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        transport = self._transport
        while True:
            if transport._reset:
                raise ConnectionResetError("the connection was reset")
            if transport.get_write_buffer_size():
                return transport.client_read(max_bytes)
            if transport.output_ended:
                return b""
            await transport.changed.wait()

    async def read_all(self) -> bytes:
        """Everything until the server ends its side."""
        parts = []
        while data := await self.read():
            parts.append(data)
        return b"".join(parts)

    async def write_eof(self) -> None:
        """Half-close: the server reads EOF after the bytes written; reading goes on."""
        self._check_open()
        self._eof_sent = True
        self._transport.client_write_eof()

    async def aclose(self) -> None:
        """Close the client's socket (again: nothing). A response left unread makes it a
        reset, as in TCP."""
        if self._closed:
            return
        self._closed = True
        self._transport.client_close()
        self._check_ended()

    def _check_ended(self) -> None:
        """Both sides closed (the client's ``aclose()``, the server's ``connection_lost``):
        the server forgets the connection."""
        if self._closed and self._transport._lost and self._on_ended is not None:
            on_ended, self._on_ended = self._on_ended, None
            on_ended(self)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the MemoryStream is closed")


# ---------------------------------------------------------------------- the server


class MemoryServer:
    """The server's asyncio driver serving ``app`` over in-memory connections.

    ``settings`` are the core's (``ProtocolSettings()`` when None: the server's defaults).
    ``client`` is the first connection's peer address (each further connection gets the next
    port), ``server`` the address it reached, ``scheme`` ``"http"`` or ``"https"`` (the scope
    says https; no TLS runs). ``lifespan`` is the server's ``--lifespan``: ``"auto"`` runs the
    app's lifespan and goes on if the app does not support it, ``"on"`` fails without it,
    ``"off"`` skips it; the state the startup leaves goes into every scope. ``report`` receives
    the core's fact events (a response completed, a request rejected, an app that broke the
    spec); the server's log by default.

    ``streams`` are the connections still open on one side at least: one closed by both the
    client (``aclose()``) and the server is forgotten, so a long-lived server's memory does
    not grow with the connections it served.

    ``async with MemoryServer(app) as server`` runs ``startup()`` and, at the end, ``aclose()``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: ProtocolSettings | None = None,
        client: tuple[str, int] = ("127.0.0.1", 50000),
        server: tuple[str, int | None] = ("testserver", 80),
        scheme: str = "http",
        lifespan: LifespanMode = "auto",
        report: Callable[[Event], None] | None = None,
    ) -> None:
        if scheme not in ("http", "https"):
            raise ValueError(f"scheme must be 'http' or 'https', not {scheme!r}")
        if lifespan not in ("auto", "on", "off"):
            raise ValueError(f"lifespan must be 'auto', 'on' or 'off', not {lifespan!r}")
        self.app = app
        self.client = client
        self.server = server
        self.scheme = scheme
        self.lifespan_mode: LifespanMode = lifespan
        # As the server: the lifespan's state namespace, or an empty one without lifespan.
        self.state: dict[str, Any] = {}
        settings = dataclasses.replace(settings or ProtocolSettings(), state=self.state)
        self.driver = AsyncioDriver(app, settings, report if report is not None else log_report)
        self.streams: list[MemoryStream] = []
        self._lifespan: _LifespanRun | None = None
        self._startup_lock = asyncio.Lock()
        self._startup_failure: LifespanFailed | None = None
        self._started = False
        self._closed = False
        self._next_port = client[1]

    @property
    def settings(self) -> ProtocolSettings:
        return self.driver.settings

    async def __aenter__(self) -> MemoryServer:
        await self.startup()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        await self.aclose()

    async def startup(self) -> None:
        """Run the app's lifespan startup (per ``lifespan``); raises ``LifespanFailed``. Runs
        once: a later call (a concurrent one too) waits for that one and has its outcome."""
        async with self._startup_lock:
            if self._startup_failure is not None:
                raise self._startup_failure
            if self._started or self._closed:
                return
            self._started = True
            if self.lifespan_mode == "off":
                return
            lifespan = _LifespanRun(self.app, required=self.lifespan_mode == "on")
            if not await lifespan.startup(LIFESPAN_TIMEOUT_S):
                failure = lifespan.lifespan.failure or "(no message)"
                self._startup_failure = LifespanFailed(f"lifespan startup failed: {failure}")
                raise self._startup_failure
            self._lifespan = lifespan
            # The namespace the startup filled, shallow-copied into every scope from now on.
            self.state = lifespan.lifespan.state
            self.driver.settings = dataclasses.replace(self.driver.settings, state=self.state)

    async def shutdown(self) -> None:
        """Run the app's lifespan shutdown, if its startup ran."""
        lifespan, self._lifespan = self._lifespan, None
        if lifespan is not None:
            await lifespan.shutdown(LIFESPAN_TIMEOUT_S)

    async def connect(
        self,
        *,
        client: tuple[str, int] | None = None,
        server: tuple[str, int | None] | None = None,
        scheme: str | None = None,
    ) -> MemoryStream:
        """A new connection, accepted as the server accepts one; the arguments override the
        server's for this connection."""
        if self._closed:
            raise RuntimeError("the MemoryServer is closed")
        if client is None:
            client = (self.client[0], self._next_port)
            self._next_port = self._next_port + 1 if self._next_port < 65535 else 1024
        connection = _Connection(self.driver)
        transport = _MemoryTransport(
            connection, peername=client, sockname=server if server is not None else self.server
        )
        connection.connection_made(transport)
        if (scheme or self.scheme) == "https" and not transport.is_closing():
            _set_scheme(connection, "https")
        stream = MemoryStream(transport, connection)
        self.streams.append(stream)
        stream._on_ended = self._forget
        transport.on_lost = stream._check_ended
        return stream

    def _forget(self, stream: MemoryStream) -> None:
        with contextlib.suppress(ValueError):  # aclose() cleared the list already
            self.streams.remove(stream)

    async def close_connections(self, timeout_s: float | None = None) -> bool:
        """Stop as the server stops, before its lifespan shutdown: every connection is asked
        to finish (an idle one closes, a response in flight ends with ``connection: close``,
        a WebSocket gets 1012, a connection made later is told at once); wait up to
        ``timeout_s`` (None: no limit) until all have closed. False if some are still open."""
        self.driver.shutdown_connections()
        return await self.driver.wait_closed(timeout_s)

    async def aclose(self) -> None:
        """Cut every connection, cancel the apps still running, then the lifespan shutdown."""
        if self._closed:
            return
        self._closed = True
        streams, self.streams = self.streams, []
        for stream in streams:
            stream._transport.client_abandon()
        await self.driver.close()
        await self.driver.wait_closed()  # the connection_lost calls, on the next turn
        await self.shutdown()


def _set_scheme(connection: _Connection, scheme: str) -> None:
    """The scope's scheme for a connection made without TLS, before any byte is read: the
    connection gets a core built as ``connection_made`` built its first, with ``scheme``."""
    transport = connection.transport
    client, server = scope_addresses(
        transport.get_extra_info("peername"), transport.get_extra_info("sockname")
    )
    now = time.time()
    connection.core = ServerProtocol(
        connection.driver.settings, client=client, server=server, scheme=scheme, now=now
    )
    if connection.driver.stopping:
        connection.core.shutdown(now)


# ---------------------------------------------------------------------- httpx

if TYPE_CHECKING or _httpx_missing is None:
    _T = TypeVar("_T", bound="Transport")

    # Transport's default ``limits``: no cap on connections, kept alive without expiry.
    UNLIMITED = httpx.Limits(
        max_connections=None, max_keepalive_connections=None, keepalive_expiry=None
    )

    class Transport(httpx.AsyncBaseTransport):
        """An httpx transport that sends each request through a ``MemoryServer``.

        httpcore's connection pool is the client: it writes the request's bytes into a
        ``MemoryStream`` and parses the bytes that come back, keeping connections alive between
        requests as it would over TCP. ``lifespan`` is the server's ``--lifespan`` (run at
        ``async with`` of the client, or before the first request; shut down at its close),
        ``client`` the first connection's peer address, ``root_path`` the server's
        ``--root-path``; ``settings`` are the core's (``root_path`` overrides theirs).
        ``http2=True`` speaks HTTP/2 with prior knowledge instead of HTTP/1.1. The scope's
        ``server`` is the URL's host and port; an ``https`` URL makes the scope's scheme https
        (no TLS runs). An exception in the app is the server's 500, logged as the server logs it.

        ``limits`` are httpx's (``httpx.Limits``) for the client's connection pool. By default
        nothing limits the connections (there is no network to spare): a test can hold open
        as many WebSockets or streamed responses at once as it likes, where httpx's own
        default (100 connections) would make the next request wait for a free one and fail
        with ``PoolTimeout``. Idle connections are kept without expiry, as httpcore does.

        A WebSocket is an HTTP/1.1 upgrade: ``httpx_ws.aconnect_ws(url, client)`` takes the
        connection from the ``101`` response (``extensions["network_stream"]``).

        asyncio only: the server's driver is asyncio's, so the client must run on asyncio too
        (not on Trio). No sockets, no threads.
        """

        def __init__(
            self,
            app: ASGIApp,
            *,
            lifespan: LifespanMode = "auto",
            client: tuple[str, int] = ("127.0.0.1", 50000),
            root_path: str | None = None,
            settings: ProtocolSettings | None = None,
            http2: bool = False,
            report: Callable[[Event], None] | None = None,
            limits: httpx.Limits | None = None,
        ) -> None:
            if http2 and settings is None:
                settings = ProtocolSettings(http2=True)  # whatever SANSIO_ASGI_HTTP2 says
            if http2 and settings is not None and not settings.http2:
                raise ValueError("http2=True needs settings with http2 on")
            if root_path is not None:
                settings = dataclasses.replace(settings or ProtocolSettings(), root_path=root_path)
            self.server = MemoryServer(
                app, settings=settings, client=client, lifespan=lifespan, report=report
            )
            if limits is None:
                limits = UNLIMITED
            self._pool = httpcore.AsyncConnectionPool(
                network_backend=_MemoryBackend(self.server),
                http1=not http2,
                http2=http2,
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
            )

        async def __aenter__(self: _T) -> _T:
            await self.server.startup()
            return self

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            assert isinstance(request.stream, httpx.AsyncByteStream)
            await self.server.startup()
            url = request.url
            core_request = httpcore.Request(
                method=request.method,
                url=httpcore.URL(
                    scheme=url.raw_scheme,
                    host=url.raw_host,
                    port=url.port,
                    target=url.raw_path,
                ),
                headers=request.headers.raw,
                content=request.stream,
                extensions=request.extensions,
            )
            with _httpx_errors():
                response = await self._pool.handle_async_request(core_request)
            assert isinstance(response.stream, AsyncIterable)
            return httpx.Response(
                status_code=response.status,
                headers=response.headers,
                stream=_ResponseStream(response.stream),
                extensions=response.extensions,
            )

        async def aclose(self) -> None:
            """Close the client's connections, then the server (its lifespan shutdown)."""
            await self._pool.aclose()
            await self.server.aclose()

    class _ResponseStream(httpx.AsyncByteStream):
        """httpcore's response body as httpx's, with httpcore's errors as httpx's."""

        def __init__(self, stream: AsyncIterable[bytes]) -> None:
            self._stream = stream

        async def __aiter__(self) -> AsyncIterator[bytes]:
            with _httpx_errors():
                async for part in self._stream:
                    yield part

        async def aclose(self) -> None:
            aclose = getattr(self._stream, "aclose", None)
            if aclose is not None:
                with _httpx_errors():
                    await aclose()

    # httpcore's errors; httpx names its own transport errors after them.
    _HTTPCORE_ERRORS = (
        httpcore.TimeoutException,
        httpcore.NetworkError,
        httpcore.ProtocolError,
        httpcore.UnsupportedProtocol,
        httpcore.ProxyError,
    )

    @contextlib.contextmanager
    def _httpx_errors() -> Iterator[None]:
        """An httpcore error raised as the httpx error of the same name."""
        try:
            yield
        except _HTTPCORE_ERRORS as exc:
            for kind in type(exc).__mro__:
                mapped = getattr(httpx, kind.__name__, None)
                if isinstance(mapped, type) and issubclass(mapped, httpx.TransportError):
                    raise mapped(str(exc)) from exc
            raise httpx.TransportError(str(exc)) from exc  # pragma: no cover - all are named

    class _MemoryBackend(httpcore.AsyncNetworkBackend):
        """httpcore's network: each new connection is one to the ``MemoryServer``."""

        def __init__(self, server: MemoryServer) -> None:
            self._server = server

        async def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> httpcore.AsyncNetworkStream:
            try:
                stream = await self._server.connect(server=(host, port))
            except RuntimeError as exc:  # the server is closed
                raise httpcore.ConnectError(str(exc)) from exc
            return _NetworkStream(stream)

        async def connect_unix_socket(
            self,
            path: str,
            timeout: float | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> httpcore.AsyncNetworkStream:
            try:
                stream = await self._server.connect(server=(path, None))
            except RuntimeError as exc:
                raise httpcore.ConnectError(str(exc)) from exc
            return _NetworkStream(stream)

        async def sleep(self, seconds: float) -> None:
            await asyncio.sleep(seconds)

    class _NetworkStream(httpcore.AsyncNetworkStream):
        """A ``MemoryStream`` as httpcore's network stream: a socket's errors as httpcore's,
        a timeout per read or write."""

        def __init__(self, stream: MemoryStream) -> None:
            self._stream = stream

        async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            try:
                return await asyncio.wait_for(self._stream.read(max_bytes), timeout)
            except asyncio.TimeoutError as exc:
                raise httpcore.ReadTimeout(f"no response within {timeout}s") from exc
            except (OSError, RuntimeError) as exc:
                raise httpcore.ReadError(str(exc)) from exc

        async def write(self, buffer: bytes, timeout: float | None = None) -> None:
            try:
                await asyncio.wait_for(self._stream.write(buffer), timeout)
            except asyncio.TimeoutError as exc:
                raise httpcore.WriteTimeout(f"the request not taken within {timeout}s") from exc
            except (OSError, RuntimeError) as exc:
                raise httpcore.WriteError(str(exc)) from exc

        async def aclose(self) -> None:
            await self._stream.aclose()

        async def start_tls(
            self,
            ssl_context: ssl.SSLContext,
            server_hostname: str | None = None,
            timeout: float | None = None,
        ) -> httpcore.AsyncNetworkStream:
            """An https URL: no TLS runs, the scope says https."""
            _set_scheme(self._stream._connection, "https")
            return self

        def get_extra_info(self, info: str) -> Any:
            if info == "is_readable":  # the pool's test for a connection the server closed
                return self._stream.readable
            transport = self._stream._transport
            if info == "client_addr":
                return transport.get_extra_info("peername")
            if info == "server_addr":
                return transport.get_extra_info("sockname")
            return None

else:

    def __getattr__(name: str) -> Any:
        if name == "Transport":
            raise ImportError(
                "sansio_asgi.testing.Transport needs httpx: pip install httpx"
            ) from _httpx_missing
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
