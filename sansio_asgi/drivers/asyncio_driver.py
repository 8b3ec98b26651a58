"""The asyncio driver: ``asyncio.Protocol`` callbacks around a ``ServerProtocol``.

Theory of operation
-------------------
One ``_Connection`` per TCP connection. Every callback (``data_received``, ``eof_received``,
``connection_lost``, the timer, the app's ``receive``/``send``) calls into the core and then
runs ``_flush``: write ``data_to_send()``, act on ``events_received()``, re-arm the timer.
That loop is the whole driver; it holds no HTTP knowledge.

Each app call runs as one task (``_AppRun``); its ``receive()`` waits on a future that a
``WakeApp`` event resolves, and its ``send()`` waits while the transport's write buffer is
above its high-water mark (``pause_writing``/``resume_writing``), so a client that reads
slowly slows the app down instead of filling memory. It also waits while the core says it
holds enough for that cycle (``send_ready``: an HTTP/2 stream whose peer's window is shut),
on a future of its own that the same ``WakeApp`` resolves: an app may await ``receive()`` and
``send()`` at once, from two tasks. Reading is paused and resumed on the core's
``PauseReading``/``ResumeReading``, so a fast upload to a slow app stops being read.

The timer is lazy: one ``call_at`` handle per connection, re-armed only when the core's
deadline moves *earlier*. When it fires early (the deadline moved later), ``handle_timer`` does
nothing and ``_flush`` arms it again for the new deadline.

A connection is a ``BufferedProtocol``: the transport reads into a buffer of ``read_size_bytes``
(one per driver, shared by its connections), the size the core's resource budget assumes
(asyncio would read 256 KiB).
A write that fails (the peer reset the connection) closes the transport at once but reports
``connection_lost`` only on a later turn of the loop; an app that streams without awaiting
anything else would never see that turn, so ``send()`` checks the transport first and tells
the core the client has gone: the next ``send()`` raises ``ClientDisconnected``.

A file body (``OpenFile``, then ``SendFile``) is answered inside the ``send()`` that caused it
(``_AppRun.send_file``): the file goes out with ``loop.sendfile`` where the transport can hand
it to ``os.sendfile`` (plain sockets on asyncio's own loop), else in reads of
``FILE_CHUNK_BYTES`` written under the same ``pause_writing`` rule as any body; ``send()``
returns once the last byte has gone to the socket. A protocol that frames the body itself
(HTTP/2) asks for ``FeedFile`` instead: the file goes to the core in reads of
``read_size_bytes`` (``_AppRun.feed_file``), each written out before the next is read, under
the same waits as a body message's ``send()``.

The selectors driver (``selectors_driver.py``) has the same sections in the same order.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from asyncio.selector_events import BaseSelectorEventLoop
from collections.abc import Callable, MutableMapping
from typing import Any, cast

from ..config import ASGIApp
from ..core import ClientDisconnected, Cycle, ProtocolSettings, ServerProtocol
from ..core.events import (
    CloseConnection,
    Event,
    FeedFile,
    OpenFile,
    PauseReading,
    ResumeReading,
    SendEOF,
    SendFile,
    StartApp,
    WakeApp,
)
from ..logs import (
    format_client,
    trace_core_event,
    trace_data,
    trace_enabled,
    trace_event,
    trace_message,
    trace_scope,
)
from . import call_app, settle_allocator
from .files import FILE_CHUNK_BYTES, FileBody, file_ended_early
from .sockets import (
    ACCEPT_BACKOFF_S,
    ACCEPT_RESOURCE_ERRORS,
    TLS,
    accepts_without_nodelay,
    scope_addresses,
)

error_log = logging.getLogger("sansio_asgi.error")


# An app's send() that finds room in the write buffer returns without giving the loop a turn;
# after this many such sends in a row it yields once, so a streaming app cannot starve the
# other connections. Under TLS it yields after every such send: a failed write closes the TLS
# transport only on the loop's next turn, and then the next send() knows the client has gone.
EAGER_SENDS_BEFORE_YIELD = 4
EAGER_SENDS_BEFORE_YIELD_TLS = 1


# ---------------------------------------------------------------------- the driver


class AsyncioDriver:
    """Accepts connections on the running loop and runs the app on the same loop."""

    def __init__(
        self,
        app: ASGIApp,
        settings: ProtocolSettings,
        report: Callable[[Event], None],
        *,
        tls: TLS | None = None,
    ) -> None:
        self.app = app
        self.tls = tls
        self.settings = settings
        self.report = report
        self.connections: set[_Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        # One read buffer for every connection: the loop reads one socket at a time, and
        # buffer_updated copies the bytes out before the next read.
        self.read_buffer = memoryview(bytearray(settings.read_size_bytes))
        self._listeners: list[socket.socket] = []
        # Listeners whose accepted sockets the transport leaves with Nagle's algorithm on.
        self._nodelay_by_hand: set[socket.socket] = set()
        self._accepting: set[asyncio.Task[None]] = set()
        # Connections whose transport exists and whose connection_made has not run yet.
        self._opening: set[_Connection] = set()
        self._make_transport: Callable[[socket.socket, _Connection], object] | None = None
        self._accept_resting: dict[socket.socket, asyncio.TimerHandle] = {}
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        self.stopping = False
        self.closed = False

    async def start(self, sockets: list[socket.socket]) -> None:
        settle_allocator()
        loop = asyncio.get_running_loop()
        if self.tls is None and isinstance(loop, BaseSelectorEventLoop):
            # What connect_accepted_socket() does without its task, its coroutines and its
            # waiter (the same for every version from 3.10 to 3.13); uvloop has no such method.
            self._make_transport = loop._make_socket_transport  # type: ignore[attr-defined]
        for sock in sockets:
            sock.setblocking(False)
            loop.add_reader(sock.fileno(), self._accept, sock)
            self._listeners.append(sock)
            if accepts_without_nodelay(sock):
                self._nodelay_by_hand.add(sock)

    def _accept(self, listener: socket.socket) -> None:
        """Accept a burst. Each socket becomes a transport at once where the loop can make one
        (``_opening`` until its ``connection_made`` runs), else through a task of its own (TLS,
        uvloop), so that ``stop_accepting`` can wait until every accepted socket is a
        connection."""
        loop = asyncio.get_running_loop()
        make_transport = self._make_transport
        for _ in range(64):
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno in ACCEPT_RESOURCE_ERRORS:
                    self._rest_listener(listener, exc)
                else:
                    error_log.warning("accept() failed: %s", exc)
                return
            sock.setblocking(False)
            if listener in self._nodelay_by_hand:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if make_transport is not None:
                connection = _Connection(self)
                self._opening.add(connection)
                try:
                    make_transport(sock, connection)
                except OSError as exc:  # a reset before the transport could register
                    error_log.debug("connection not established: %s", exc)
                    self._opening.discard(connection)
                    sock.close()
                continue
            task = loop.create_task(self._connect(sock))
            self._accepting.add(task)
            task.add_done_callback(self._accepting.discard)

    def _rest_listener(self, listener: socket.socket, exc: OSError) -> None:
        """Stop accepting on ``listener`` for ``ACCEPT_BACKOFF_S``; connections already open
        are served meanwhile. Logged once per rest."""
        loop = asyncio.get_running_loop()
        loop.remove_reader(listener.fileno())
        self._accept_resting[listener] = loop.call_later(
            ACCEPT_BACKOFF_S, self._resume_accepting, listener
        )
        error_log.warning(
            "accept() failed: %s; not accepting for %gs (open connections: %d)",
            exc,
            ACCEPT_BACKOFF_S,
            len(self.connections),
        )

    def _resume_accepting(self, listener: socket.socket) -> None:
        del self._accept_resting[listener]
        if listener in self._listeners:
            asyncio.get_running_loop().add_reader(listener.fileno(), self._accept, listener)

    async def _connect(self, sock: socket.socket) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: _Connection(self),
                sock=sock,
                ssl=self.tls.context if self.tls is not None else None,
            )
        except (OSError, asyncio.TimeoutError) as exc:  # a failed TLS handshake, a reset
            error_log.debug("connection not established: %s", exc)
            sock.close()

    async def stop_accepting(self) -> None:
        loop = asyncio.get_running_loop()
        for sock in self._listeners:
            loop.remove_reader(sock.fileno())
        self._listeners.clear()
        self._nodelay_by_hand.clear()
        for handle in self._accept_resting.values():
            handle.cancel()
        self._accept_resting.clear()
        if self._accepting:
            await asyncio.wait(list(self._accepting))
        while self._opening:  # their connection_made calls are queued already: one turn
            await asyncio.sleep(0)

    def shutdown_connections(self) -> None:
        self.stopping = True
        now = time.time()
        for connection in list(self.connections):
            connection.shutdown(now)

    async def wait_closed(self, timeout_s: float | None = None) -> bool:
        """Wait until every connection has closed; False if ``timeout_s`` passed first."""
        try:
            await asyncio.wait_for(self._all_closed.wait(), timeout_s)
        except asyncio.TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Cut every connection and cancel every app still running."""
        self.closed = True
        for connection in list(self.connections):
            connection.transport.abort()
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def _connection_opened(self, connection: _Connection) -> None:
        self.connections.add(connection)
        self._all_closed.clear()

    def _connection_closed(self, connection: _Connection) -> None:
        self.connections.discard(connection)
        if not self.connections:
            self._all_closed.set()


# ---------------------------------------------------------------------- one connection


class _Connection(asyncio.BufferedProtocol):
    __slots__ = (
        "core",
        "driver",
        "eager_limit",
        "file_event",
        "loop",
        "lost",
        "native_sendfile",
        "peer",
        "runs",
        "timer",
        "timer_at",
        "trace",
        "transport",
        "write_paused",
        "write_waiters",
    )

    def __init__(self, driver: AsyncioDriver) -> None:
        self.driver = driver
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport
        self.core: ServerProtocol
        self.runs: dict[Cycle, _AppRun] = {}
        self.lost = False
        self.write_paused = False
        self.write_waiters: list[asyncio.Future[None]] = []
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self.trace = trace_enabled()
        self.peer = "-"
        self.eager_limit = (
            EAGER_SENDS_BEFORE_YIELD if driver.tls is None else EAGER_SENDS_BEFORE_YIELD_TLS
        )
        self.file_event: OpenFile | SendFile | FeedFile | None = None
        # loop.sendfile hands the file to os.sendfile only from asyncio's own plain socket
        # transports. Under TLS it would copy through a protocol of its own put in place of
        # this one (reads in executor threads, 16 KiB at a time), and uvloop has no
        # loop.sendfile at all: both copy in _copy_file instead.
        self.native_sendfile = driver._make_transport is not None and hasattr(os, "sendfile")

    # network side

    def connection_made(self, base_transport: asyncio.BaseTransport) -> None:
        self.driver._opening.discard(self)  # first: stop_accepting waits on it, whatever happens
        # uvloop's transports have asyncio.Transport's methods without being its subclasses.
        transport = self.transport = cast(asyncio.Transport, base_transport)
        # Both loops' transports read the addresses once, and turn TCP_NODELAY on themselves
        # (for the sockets ``accepts_without_nodelay`` names, ``_accept`` did).
        client, server = scope_addresses(
            transport.get_extra_info("peername"), transport.get_extra_info("sockname")
        )
        transport.set_write_buffer_limits(high=self.driver.settings.write_high_water_bytes)
        tls = self.driver.tls
        ssl_object = transport.get_extra_info("ssl_object") if tls is not None else None
        self.core = ServerProtocol(
            self.driver.settings,
            client=client,
            server=server,
            scheme="https" if ssl_object is not None else "http",
            now=time.time(),
            tls=tls.extension(ssl_object) if tls is not None and ssl_object is not None else None,
            alpn=ssl_object.selected_alpn_protocol() if ssl_object is not None else None,
        )
        self.driver._connection_opened(self)
        if self.trace:
            self.peer = format_client(client)
            trace_event(self.peer, "connection made")
        if self.driver.closed:
            transport.abort()
            return
        if self.driver.stopping:
            self.core.shutdown(time.time())
        self._flush()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.driver.read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self.driver.read_buffer[:nbytes]))

    def data_received(self, data: bytes) -> None:
        if self.trace:
            trace_data(self.peer, "<", data, protocol=self.core.protocol)
        self.core.receive_data(data, time.time())
        self._flush()

    def eof_received(self) -> bool:
        self.core.receive_eof(time.time())
        self._flush()
        # The core says when to close; a TLS transport cannot stay half-open and closes itself
        # (asyncio warns when asked to keep one open).
        return self.driver.tls is None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.trace:
            trace_event(self.peer, "connection lost")
        self.lost = True
        self.core.receive_eof(time.time())
        self._flush()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self._release_writers()
        self.driver._connection_closed(self)

    def pause_writing(self) -> None:
        # Called from inside transport.write(), so from _flush, which acts on the core's
        # events right after the write.
        self.write_paused = True
        self.core.writing_paused(time.time())

    def resume_writing(self) -> None:
        self.write_paused = False
        self.core.writing_resumed(time.time())
        self._flush()
        self._release_writers()

    def check_transport(self) -> None:
        """A failed write closed the transport and ``connection_lost`` has not run yet: the
        client has gone, and the core hears it now (no write is tried on a closed transport,
        so the reset is never logged per write)."""
        if not self.lost and self.transport.is_closing():
            self.lost = True
            self.core.receive_eof(time.time())
            self._flush()

    def shutdown(self, now: float) -> None:
        self.core.shutdown(now)
        self._flush()

    # the loop after every call into the core

    def _flush(self) -> bool:
        """Write, act, re-arm; whether anything was written."""
        core = self.core
        data = core.data_to_send()
        wrote = bool(data) and not self.lost
        if wrote:
            if self.trace:
                trace_data(self.peer, ">", data, protocol=core.protocol)
            self.transport.write(data)
        for event in core.events_received():
            if self.trace:
                trace_core_event(self.peer, event, protocol=core.protocol)
            kind = type(event)
            if kind is StartApp:
                self._start_app(event)  # type: ignore[arg-type]
            elif kind is WakeApp:
                run = self.runs.get(event.cycle)  # type: ignore[union-attr]
                if run is not None:
                    run.wake()
            elif kind is PauseReading:
                if not self.lost:
                    self.transport.pause_reading()
            elif kind is ResumeReading:
                if not self.lost:
                    self.transport.resume_reading()
            elif kind is SendEOF:
                self._send_eof()
            elif kind is CloseConnection:
                self.transport.close()
            elif kind is OpenFile or kind is SendFile or kind is FeedFile:
                # Only a file message makes these, and its send() acts on them (send_file).
                self.file_event = event  # type: ignore[assignment]
            else:
                self.driver.report(event)
        deadline = core.next_deadline()
        if deadline is not None and (self.timer is None or deadline < self.timer_at):
            if self.timer is not None:
                self.timer.cancel()
            self.timer_at = deadline
            delay = deadline - time.time()
            self.timer = self.loop.call_at(self.loop.time() + delay, self._on_timer)
        return wrote

    def _send_eof(self) -> None:
        transport = self.transport
        if self.lost or not transport.can_write_eof():
            transport.close()
            return
        try:
            transport.write_eof()
        except OSError:  # the peer reset the connection before the transport noticed
            transport.abort()

    def _on_timer(self) -> None:
        self.timer = None
        self.core.handle_timer(time.time())
        self._flush()

    # app side

    def _start_app(self, event: StartApp) -> None:
        if self.trace:  # the very dict the app gets: a capture finds the request by it
            trace_scope(self.peer, event.scope, protocol=self.core.protocol, cycle=event.cycle)
        run = _AppRun(self, event.cycle)
        self.runs[event.cycle] = run
        task = self.loop.create_task(self._run_app(run, event.scope))
        tasks = self.driver.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _run_app(self, run: _AppRun, scope: dict[str, Any]) -> None:
        exc = None
        try:
            exc = await call_app(self.driver.app, scope, run.receive, run.send)
        finally:
            del self.runs[run.cycle]
            self.core.app_finished(run.cycle, exc, time.time())
            self._flush()

    async def wait_writable(self) -> None:
        waiter = self.loop.create_future()
        self.write_waiters.append(waiter)
        await waiter

    def _release_writers(self) -> None:
        """Writing resumed, or the connection is lost: every ``send()`` waiting to write looks
        again (one waiting on ``send_ready`` too: it finds the connection lost, or waits again)."""
        waiters, self.write_waiters = self.write_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        for run in self.runs.values():
            run.wake_send()

    # file bodies

    def take_file_event(self) -> OpenFile | SendFile | FeedFile | None:
        event, self.file_event = self.file_event, None
        return event

    async def write_file(self, send: SendFile, body: FileBody) -> None:
        """Write ``send.count`` bytes of ``send.fd`` from ``send.offset``, counting them in
        ``body.sent``. Raises ``ClientDisconnected`` when the client has gone, having told the
        core."""
        self.check_transport()
        if self.lost:
            raise ClientDisconnected("the client disconnected")
        if not self.native_sendfile:
            await self._copy_file(send, body)
            return
        with open(send.fd, "rb", buffering=0, closefd=False) as file:
            try:
                body.sent = await self.loop.sendfile(
                    self.transport, file, send.offset, send.count, fallback=False
                )
            except asyncio.SendfileNotAvailableError:
                # The first os.sendfile failed before a byte went (the socket was reset): the
                # copy meets the same failure through the transport, and reports it.
                await self._copy_file(send, body)
                return
            except OSError as exc:  # a reset mid-file: asyncio leaves the transport open
                # asyncio moved the position past what went: that is what was sent.
                body.sent = os.lseek(send.fd, 0, os.SEEK_CUR) - send.offset
                self._lose_connection()
                raise ClientDisconnected("the client disconnected") from exc
        if body.sent < send.count:
            self._lose_connection()
            raise file_ended_early(send.fd, send.count - body.sent)

    async def _copy_file(self, send: SendFile, body: FileBody) -> None:
        """The file through memory, a chunk at a time: after each, wait while writing is
        paused, else give the loop a turn (the other connections; a failed TLS write closes its
        transport only on the next turn)."""
        fd = send.fd
        offset = send.offset
        end = offset + send.count
        while offset < end:
            self.check_transport()
            if self.lost:
                raise ClientDisconnected("the client disconnected")
            chunk = os.pread(fd, min(end - offset, FILE_CHUNK_BYTES), offset)
            if not chunk:
                self._lose_connection()
                raise file_ended_early(fd, end - offset)
            self.transport.write(chunk)
            offset += len(chunk)
            body.sent += len(chunk)
            if self.write_paused:
                await self.wait_writable()
            else:
                await asyncio.sleep(0)
        if self.lost:
            raise ClientDisconnected("the client disconnected")

    def _lose_connection(self) -> None:
        """A file transfer failed: the connection cannot carry the rest of the response."""
        if not self.lost:
            self.lost = True
            self.core.receive_eof(time.time())
            self._flush()
        self.transport.abort()


# ---------------------------------------------------------------------- one app call


class _AppRun:
    """``receive`` and ``send`` for one cycle."""

    __slots__ = ("connection", "cycle", "eager_sends", "send_waiter", "waiter")

    def __init__(self, connection: _Connection, cycle: Cycle) -> None:
        self.connection = connection
        self.cycle = cycle
        self.waiter: asyncio.Future[None] | None = None  # a receive() waiting for a message
        self.send_waiter: asyncio.Future[None] | None = None  # a send() waiting on send_ready
        self.eager_sends = 0

    async def receive(self) -> dict[str, Any]:
        connection = self.connection
        while True:
            message = connection.core.message_for_app(self.cycle, time.time())
            connection._flush()
            if message is not None:
                if connection.trace:
                    trace_message(
                        connection.peer,
                        "<",
                        message,
                        protocol=connection.core.protocol,
                        cycle=self.cycle,
                    )
                return message
            self.waiter = connection.loop.create_future()
            self.eager_sends = 0
            await self.waiter

    def wake(self) -> None:
        """``WakeApp``: a waiting ``receive()`` asks the core again, and so does a waiting
        ``send()``."""
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self.wake_send()

    def wake_send(self) -> None:
        waiter, self.send_waiter = self.send_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def send(self, message: MutableMapping[str, Any]) -> None:
        connection = self.connection
        if connection.trace:
            trace_message(
                connection.peer,
                ">",
                message,
                protocol=connection.core.protocol,
                cycle=self.cycle,
            )
        connection.check_transport()
        connection.core.message_from_app(self.cycle, message, time.time())
        wrote = connection._flush()
        if connection.file_event is not None:
            await self.send_file()
            wrote = False  # the transfer gave the loop its turns
        if connection.write_paused or not connection.core.send_ready(self.cycle):
            self.eager_sends = 0
            await self.wait_sendable()
        elif wrote:  # a held http.response.start writes nothing: no turn is owed for it
            self.eager_sends += 1
            if self.eager_sends >= connection.eager_limit:
                self.eager_sends = 0
                await asyncio.sleep(0)

    async def wait_sendable(self) -> None:
        """Wait while writing is paused, or while the core holds as much for this cycle as it
        will (``send_ready``), until the connection is lost."""
        connection = self.connection
        while not connection.lost:
            if connection.write_paused:
                await connection.wait_writable()
            elif not connection.core.send_ready(self.cycle):
                self.send_waiter = connection.loop.create_future()
                await self.send_waiter
            else:
                return

    # file bodies

    async def send_file(self) -> None:
        """Answer the ``OpenFile`` a file message made: resolve the file, let the core write
        the head, write the file (``SendFile``), tell the core it went."""
        connection = self.connection
        core = connection.core
        event = connection.take_file_event()
        assert isinstance(event, OpenFile)
        try:
            body = FileBody.open(event)
        except Exception as exc:
            core.file_failed(event.cycle, exc, time.time())
            connection._flush()
            raise
        try:
            try:
                core.file_opened(event.cycle, body.fd, body.offset, body.count, time.time())
            finally:
                connection._flush()  # the head, or what the core did about a refused file
            send = connection.take_file_event()
            if send is None:  # nothing to write: HEAD, 204, 304, an empty file
                return
            if isinstance(send, FeedFile):
                await self.feed_file(send, body)
            else:
                assert isinstance(send, SendFile)
                await connection.write_file(send, body)
            core.file_sent(send.cycle, time.time())
            connection._flush()
        finally:
            body.close()

    async def feed_file(self, feed: FeedFile, body: FileBody) -> None:
        """Give the core ``feed.count`` bytes of ``feed.fd`` from ``feed.offset``, a read of at
        most ``read_size_bytes`` at a time, writing each out before reading the next, and
        counting them in ``body.sent``; then wait as ``send()`` does before the core hears the
        file went. Raises ``ClientDisconnected`` when the client has gone, and what the core
        raises (the stream was reset)."""
        connection = self.connection
        core = connection.core
        read_size = connection.driver.settings.read_size_bytes
        fd = feed.fd
        offset = feed.offset
        end = offset + feed.count
        while offset < end:
            connection.check_transport()
            if connection.lost:
                raise ClientDisconnected("the client disconnected")
            chunk = os.pread(fd, min(end - offset, read_size), offset)
            if not chunk:
                # Only this stream's response is cut: the app's send() raises, and the core
                # ends the stream when the app finishes.
                raise file_ended_early(fd, end - offset)
            try:
                core.file_data(feed.cycle, chunk, time.time())
            finally:
                connection._flush()
            offset += len(chunk)
            body.sent += len(chunk)
            if connection.write_paused or not core.send_ready(feed.cycle):
                await self.wait_sendable()
            else:
                await asyncio.sleep(0)  # a turn for the other streams and connections
        if connection.lost:
            raise ClientDisconnected("the client disconnected")
