"""The selectors driver: a plain ``selectors`` loop around a ``ServerProtocol``.

Theory of operation
-------------------
Two threads with one job each:

* the **I/O thread** runs ``_io_loop``: ``select()`` over non-blocking sockets, ``recv``/``send``,
  timers from a heap. It is the only thread that touches the core, so the core needs no locks.
  You can step through it in a debugger.
* the **app loop** is the asyncio loop that called ``start()``. Real apps (Starlette, FastAPI
  through anyio) need a running asyncio loop, so apps run there.

They hand each other work and nothing else, through a queue each way, and wake each other
only when the other would not look at its queue anyway:

* the app side puts a call on ``_calls``; the I/O thread runs them in every turn of its loop,
  so a wake-up byte (on a socketpair that it selects on) is needed only while it sleeps in
  ``select()``;
* the I/O thread puts a call on ``_app_calls`` and, at the end of its turn, posts one
  ``loop.call_soon_threadsafe`` to run them all, unless one is already on its way.

A busy server thus hands work over without a wake-up for each message. And when a message
comes for a ``receive()`` that waits, the I/O thread takes it from the core at once and sends
it over, rather than waking the app to ask for it.

Per connection the loop is the asyncio driver's: after every call into the core, ``_flush``
writes ``data_to_send()``, acts on ``events_received()`` and re-arms the timer. Output waits in
a per-connection buffer; above its high-water mark the core hears "writing paused" and an app's
``send()`` is answered only once the buffer has drained below the low-water mark, so a client
that reads slowly slows the app down. A ``send()`` is also held while the core says it holds
enough for that cycle (``send_ready``: an HTTP/2 stream whose peer's window is shut), until a
``WakeApp`` for the cycle, which wakes a held ``send()`` as well as a waiting ``receive()``.
The core's ``PauseReading``/``ResumeReading`` take the socket out of, and back into, the read
set.

A file body (``OpenFile``, then ``SendFile``) is answered on the I/O thread inside the
``send()`` that caused it (``_send_file``): the file is a segment of the write queue, after the
bytes queued before it. On writability it goes out with ``os.sendfile``; under TLS it is read
``FILE_CHUNK_BYTES`` at a time into the byte queue (the only way through the encryption), and
the next chunk is read only once that one has gone. The app's ``send()`` is answered when the
last byte has gone to the socket. A protocol that frames the body itself (HTTP/2) asks for
``FeedFile`` instead: the file goes to the core in reads of ``read_size_bytes`` (``_feed_file``),
each written out before the next is read, ``FILE_CHUNKS_PER_TURN`` per readiness event, and held
as a ``send()`` is.

Timers live in one heap of ``(deadline, seq, owner)`` entries. An owner (a connection, or a
listener resting after ``EMFILE``) keeps its own ``timer_at``; an entry whose deadline is not
its owner's ``timer_at`` is stale and skipped, and the heap is rebuilt without stale entries
once it holds more than twice the live owners plus ``TIMER_HEAP_SLACK``: at most that many
closed connections wait for their old deadlines, however many there have been.

The sections and names follow ``asyncio_driver.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import os
import selectors
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, MutableMapping
from typing import Any

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
    peer_addresses,
    set_nodelay,
)

error_log = logging.getLogger("sansio_asgi.error")


# The heap is rebuilt when it holds more than this many entries beyond twice the live owners.
TIMER_HEAP_SLACK = 64

# Under TLS a file goes out a chunk at a time through memory (and under HTTP/2, through the
# core); a client that takes them as fast as they come gets this many per readiness event, then
# the other sockets have a turn.
FILE_CHUNKS_PER_TURN = 16


# ---------------------------------------------------------------------- the driver


class SelectorsDriver:
    """Accepts connections in an I/O thread and runs the app on the calling asyncio loop."""

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
        self.loop = asyncio.get_running_loop()
        self.selector = selectors.DefaultSelector()
        self._listeners: list[socket.socket] = []
        self._calls: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()
        self._io_asleep = False  # the I/O thread is in select(), or about to be
        self._app_calls: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()
        self._app_wake_pending = False  # a call to _run_app_calls is on its way to the app loop
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._timers: list[tuple[float, int, _Connection | _Acceptor]] = []
        self._timer_seq = itertools.count()
        self._running = False
        self._thread: threading.Thread | None = None
        self._waits: set[asyncio.Future[None]] = set()  # calls the I/O thread has not answered
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        self._close_lock = asyncio.Lock()

    async def start(self, sockets: list[socket.socket]) -> None:
        settle_allocator()
        self.selector.register(self._wake_r, selectors.EVENT_READ, self._on_wake)
        for sock in sockets:
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ, _Acceptor(self, sock))
            self._listeners.append(sock)
        self._running = True
        self._thread = threading.Thread(
            target=self._io_loop, name="sansio-asgi-selectors", daemon=True
        )
        self._thread.start()

    async def stop_accepting(self) -> None:
        await self._call_and_wait(self._io_stop_accepting)

    def shutdown_connections(self) -> None:
        self.call_in_io(self._io_shutdown_connections)

    async def wait_closed(self, timeout_s: float | None = None) -> bool:
        """Wait until every connection has closed; False if ``timeout_s`` passed first."""
        try:
            await asyncio.wait_for(self._all_closed.wait(), timeout_s)
        except asyncio.TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Cut every connection, cancel every app still running, stop the I/O thread. A
        second call (a forced stop during a graceful one) waits for the first's work."""
        async with self._close_lock:
            thread = self._thread
            if thread is not None:
                await self._call_and_wait(self._io_abort_all)
                self._running = False
                self._wake()
                await asyncio.to_thread(thread.join)
                self._thread = None
                for waiter in self._waits:  # calls that came too late for the I/O thread
                    _resolve(waiter, None)
                self.selector.close()
                self._wake_r.close()
                self._wake_w.close()
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    def _connection_opened(self, connection: _Connection) -> None:
        self.connections.add(connection)
        self.call_in_app(self._all_closed.clear)

    def _connection_closed(self, connection: _Connection) -> None:
        self.connections.discard(connection)
        if not self.connections:
            self.call_in_app(self._all_closed.set)

    # handing work between the threads

    def call_in_io(self, function: Callable[..., None], *args: Any) -> None:
        """Run ``function(*args)`` on the I/O thread (callable from any thread)."""
        self._calls.append((function, args))
        # Read after the append: an I/O thread not yet asleep sees the call before it sleeps.
        if self._io_asleep:
            self._io_asleep = False  # one byte wakes it: later calls need none
            self._wake()

    def _run_calls(self) -> None:
        """On the I/O thread: the app side's calls, in order."""
        _run_queued(self._calls)

    def _wake(self) -> None:
        # BlockingIOError: a wake-up byte is already waiting; OSError: the driver has closed.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _on_wake(self, mask: int) -> None:
        """The wake-up byte has done its job by ending ``select()``; the calls run at the end of
        this turn of the I/O loop."""
        with contextlib.suppress(BlockingIOError):
            self._wake_r.recv(4096)  # all there is: a byte per sleep, and one from close()

    def call_in_app(self, function: Callable[..., None], *args: Any) -> None:
        """On the I/O thread: run ``function(*args)`` on the app loop, in order. The app loop
        is woken at the end of this turn of the I/O loop (``_post_to_app``), if at all."""
        self._app_calls.append((function, args))

    def _post_to_app(self) -> None:
        if self._app_calls and not self._app_wake_pending:
            self._app_wake_pending = True
            with contextlib.suppress(RuntimeError):  # the app loop has closed: nobody waits
                self.loop.call_soon_threadsafe(self._run_app_calls)

    def _run_app_calls(self) -> None:
        """On the app loop: the I/O thread's calls, in order."""
        # Cleared before the calls are taken: a call added from now on is either taken below
        # or posted again by the I/O thread's next _post_to_app.
        self._app_wake_pending = False
        _run_queued(self._app_calls)

    async def _call_and_wait(self, function: Callable[[], None]) -> None:
        if not self._running:
            return  # the I/O thread has stopped (a forced close): nothing is left to do there
        done = self.loop.create_future()

        def call() -> None:
            function()
            self.call_in_app(_resolve, done, None)

        self._waits.add(done)
        self.call_in_io(call)
        try:
            await done
        finally:
            self._waits.discard(done)

    # the I/O thread

    def _io_loop(self) -> None:
        selector = self.selector
        timers = self._timers
        while self._running:
            self._io_asleep = True  # from here on, a call from the app side wakes this thread
            if self._calls:
                timeout: float | None = 0.0  # it came before the flag was set: no sleeping
            elif timers:
                timeout = max(0.0, timers[0][0] - time.time())
            else:
                timeout = None
            ready = selector.select(timeout)
            self._io_asleep = False
            for key, mask in ready:
                try:
                    key.data(mask)
                except Exception:  # a bug here must not stop every other connection
                    error_log.exception("Error in the selectors driver")
            if timers:
                now = time.time()
                while timers and timers[0][0] <= now:
                    deadline, _, owner = heapq.heappop(timers)
                    if owner.timer_at == deadline:
                        try:
                            owner.on_timer(now)
                        except Exception:  # as above: one owner's bug stops no other
                            error_log.exception("Error in the selectors driver")
            self._run_calls()
            self._post_to_app()
        self._post_to_app()

    def schedule(self, owner: _Connection | _Acceptor, deadline: float) -> None:
        """Call ``owner.on_timer(now)`` at ``deadline``, unless ``owner.timer_at`` changes."""
        owner.timer_at = deadline
        timers = self._timers
        heapq.heappush(timers, (deadline, next(self._timer_seq), owner))
        if len(timers) > 2 * (len(self.connections) + len(self._listeners)) + TIMER_HEAP_SLACK:
            timers[:] = [entry for entry in timers if entry[2].timer_at == entry[0]]
            heapq.heapify(timers)

    def _io_stop_accepting(self) -> None:
        registered = self.selector.get_map()
        for sock in self._listeners:
            if sock in registered:  # not while resting: its timer finds it gone
                self.selector.unregister(sock)
        self._listeners.clear()

    def _io_shutdown_connections(self) -> None:
        now = time.time()
        for connection in list(self.connections):
            connection.shutdown(now)

    def _io_abort_all(self) -> None:
        for connection in list(self.connections):
            connection.abort()


def _run_queued(calls: deque[tuple[Callable[..., None], tuple[Any, ...]]]) -> None:
    """Run queued calls in order, until the queue is empty (calls queued meanwhile too)."""
    while calls:
        function, args = calls.popleft()
        try:
            function(*args)
        except Exception:  # one call's bug must not stop the others
            error_log.exception("Error in the selectors driver")


def _resolve(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _reject(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


class _Acceptor:
    __slots__ = ("driver", "sock", "timer_at")

    def __init__(self, driver: SelectorsDriver, sock: socket.socket) -> None:
        self.driver = driver
        self.sock = sock
        self.timer_at: float | None = None  # resting until then (see _rest)

    def __call__(self, mask: int) -> None:
        for _ in range(64):  # accept a burst, then let the other sockets have a turn
            try:
                client_sock, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno in ACCEPT_RESOURCE_ERRORS:
                    self._rest(exc)
                else:
                    error_log.warning("accept() failed: %s", exc)
                return
            _Connection(self.driver, client_sock)

    def _rest(self, exc: OSError) -> None:
        """Stop accepting for ``ACCEPT_BACKOFF_S``; connections already open are served
        meanwhile. Logged once per rest."""
        driver = self.driver
        driver.selector.unregister(self.sock)
        driver.schedule(self, time.time() + ACCEPT_BACKOFF_S)
        error_log.warning(
            "accept() failed: %s; not accepting for %gs (open connections: %d)",
            exc,
            ACCEPT_BACKOFF_S,
            len(driver.connections),
        )

    def on_timer(self, now: float) -> None:
        self.timer_at = None
        if self.sock in self.driver._listeners:
            self.driver.selector.register(self.sock, selectors.EVENT_READ, self)


# ---------------------------------------------------------------------- one connection


class _Connection:
    """One TCP connection; every method runs on the I/O thread."""

    __slots__ = (
        "core",
        "driver",
        "feeds",
        "file_event",
        "handshaking",
        "interest",
        "lost",
        "out",
        "peer",
        "reading",
        "runs",
        "sending",
        "sock",
        "timer_at",
        "trace",
        "want_close",
        "want_eof",
        "write_paused",
    )

    def __init__(self, driver: SelectorsDriver, sock: socket.socket) -> None:
        self.driver = driver
        sock.setblocking(False)
        set_nodelay(sock)
        self.runs: dict[Cycle, _AppRun] = {}
        self.out = bytearray()
        self.sending: _FileSegment | None = None  # a file, written after ``out``
        self.feeds: list[_AppRun] = []  # files fed to the core, going on when writable
        self.file_event: OpenFile | SendFile | FeedFile | None = None
        self.reading = True
        self.lost = False
        self.want_eof = False
        self.want_close = False
        self.write_paused = False
        self.timer_at: float | None = None
        self.interest = selectors.EVENT_READ
        self.trace = trace_enabled()
        self.peer = "-"
        tls = driver.tls
        if tls is not None:
            sock = tls.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        self.sock = sock
        self.handshaking = tls is not None
        driver.selector.register(sock, self.interest, self.on_ready)
        driver._connection_opened(self)
        if self.handshaking:
            self._handshake()
        else:
            self._open(None)

    def _handshake(self) -> None:
        """The TLS handshake, a step per readiness event; the core starts once it is done."""
        sock = self.sock
        assert isinstance(sock, ssl.SSLSocket) and self.driver.tls is not None
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._set_interest(selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self._set_interest(selectors.EVENT_WRITE)
            return
        except OSError as exc:  # ssl.SSLError included: a client that failed the handshake
            error_log.debug("TLS handshake failed: %s", exc)
            self._close_socket()
            return
        self.handshaking = False
        self._open(self.driver.tls.extension(sock), sock.selected_alpn_protocol())

    def _open(self, tls: dict[str, Any] | None, alpn: str | None = None) -> None:
        client, server = peer_addresses(self.sock)
        if self.trace:
            self.peer = format_client(client)
            trace_event(self.peer, "connection made")
        self.core = ServerProtocol(
            self.driver.settings,
            client=client,
            server=server,
            scheme="https" if tls is not None else "http",
            now=time.time(),
            tls=tls,
            alpn=alpn,
        )
        self._flush()

    # network side

    def on_ready(self, mask: int) -> None:
        if self.handshaking:
            self._handshake()
            return
        if mask & selectors.EVENT_WRITE:
            self._write_some()
            # Files fed to the core go on whenever writing is not paused, as any send() does:
            # waiting for all the output to drain would starve them behind busy streams.
            if self.feeds and not self.write_paused and not self.lost:
                self._resume_feeds()
        if mask & selectors.EVENT_READ and not self.lost:
            self._read_some()

    def _read_some(self) -> None:
        sock = self.sock
        try:
            data = sock.recv(self.driver.settings.read_size_bytes)
            if isinstance(sock, ssl.SSLSocket):
                # Decrypted bytes TLS already holds do not wake select(): take them now.
                while data and sock.pending():
                    data += sock.recv(sock.pending())
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError:
            self._connection_lost()
            return
        if data:
            if self.trace:
                trace_data(self.peer, "<", data, protocol=self.core.protocol)
            self.core.receive_data(data, time.time())
        else:
            self.core.receive_eof(time.time())
        self._flush()

    def _write_some(self) -> None:
        for _ in range(FILE_CHUNKS_PER_TURN):
            if self.out:
                try:
                    sent = self.sock.send(self.out)
                except (
                    BlockingIOError,
                    InterruptedError,
                    ssl.SSLWantReadError,
                    ssl.SSLWantWriteError,
                ):
                    sent = 0  # the socket is full: wait until it is writable again
                except OSError:
                    self._connection_lost()
                    return
                del self.out[:sent]
                if self.out:
                    break
            if self.sending is None:
                break
            self._write_file()
            if self.lost:
                return
            if not self.out and self.sending is not None:
                break  # os.sendfile filled the socket
        if not self.out and self.sending is None:
            if self.want_close:
                self._close_socket()
                return
            if self.want_eof:
                self.want_eof = False
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_WR)
        self._update_interest()
        if self.out or self.write_paused:  # not when all was written, the common case
            self._update_write_pause()

    def _update_write_pause(self) -> None:
        """Tell the core when the unsent output passes the high-water mark, and when it has
        drained below a quarter of it; an app's ``send()`` waits in between."""
        high_water = self.driver.settings.write_high_water_bytes
        if self.write_paused:
            if len(self.out) <= high_water // 4 or self.lost:
                self.write_paused = False
                if not self.lost:
                    self.core.writing_resumed(time.time())
                    self._flush()
                self._release_writers()
        elif len(self.out) > high_water and not self.lost:
            self.write_paused = True
            self.core.writing_paused(time.time())
            self._flush()

    def _connection_lost(self) -> None:
        if self.lost:
            return
        if self.handshaking:
            self._close_socket()
            return
        self.lost = True
        self.out.clear()
        self.core.receive_eof(time.time())
        self._flush()
        self._close_socket()

    def _close_socket(self) -> None:
        if self.trace:
            trace_event(self.peer, "connection lost")
        self._drop_file(ClientDisconnected("the client disconnected"))
        self.lost = True
        if self.interest:
            self.driver.selector.unregister(self.sock)
            self.interest = 0
        self.sock.close()
        self.write_paused = False
        self._release_writers()
        self.timer_at = None
        self.driver._connection_closed(self)

    def _update_interest(self) -> None:
        """Select for reading unless the core paused it, and for writing while output waits."""
        if self.lost:
            return
        events = selectors.EVENT_READ if self.reading else 0
        if self.out or self.sending is not None or self.feeds:
            events |= selectors.EVENT_WRITE
        self._set_interest(events)

    def _set_interest(self, events: int) -> None:
        if events == self.interest:
            return
        selector = self.driver.selector
        if self.interest == 0:
            selector.register(self.sock, events, self.on_ready)
        elif events == 0:
            selector.unregister(self.sock)
        else:
            selector.modify(self.sock, events, self.on_ready)
        self.interest = events

    def shutdown(self, now: float) -> None:
        if self.handshaking:
            self._close_socket()
            return
        self.core.shutdown(now)
        self._flush()

    def abort(self) -> None:
        if not self.lost:
            self.out.clear()
            self._connection_lost()

    # the loop after every call into the core

    def _flush(self) -> None:
        core = self.core
        data = core.data_to_send()
        if data and not self.lost:
            if self.trace:
                trace_data(self.peer, ">", data, protocol=core.protocol)
            if self.sending is None:
                self.out += data
            else:  # after the file
                self.sending.after += data
        woken: list[_AppRun] = []
        for event in core.events_received():
            if self.trace:
                trace_core_event(self.peer, event, protocol=core.protocol)
            kind = type(event)
            if kind is StartApp:
                self._start_app(event)  # type: ignore[arg-type]
            elif kind is WakeApp:
                run = self.runs.get(event.cycle)  # type: ignore[union-attr]
                if run is not None:
                    woken.append(run)
            elif kind is PauseReading:
                self.reading = False
            elif kind is ResumeReading:
                self.reading = True
            elif kind is SendEOF:
                self.want_eof = True
            elif kind is CloseConnection:
                self.want_close = True
            elif kind is OpenFile or kind is SendFile or kind is FeedFile:
                # Only a file message makes these, and its _send acts on them (_send_file).
                self.file_event = event  # type: ignore[assignment]
            else:
                self.driver.report(event)
        if (self.want_close or self.want_eof) and self.sending is not None:
            # The core gave up on the response (the client closed its side, a timeout): the
            # rest of the file has nowhere to go.
            self._drop_file(ClientDisconnected("the client disconnected"))
        if not self.lost:
            if self.out or self.want_close or self.want_eof:
                self._write_some()
            else:
                self._update_interest()
        deadline = core.next_deadline()
        if (
            deadline is not None
            and not self.lost
            and (self.timer_at is None or deadline < self.timer_at)
        ):
            self.driver.schedule(self, deadline)
        # Last, as a call into the core of its own: acting on these events while the next
        # call queues more would act on them out of order (a ResumeReading before a Pause).
        for run in woken:
            run.wake()

    def on_timer(self, now: float) -> None:
        self.timer_at = None
        self.core.handle_timer(now)
        self._flush()

    # app side (each method runs on the I/O thread; _AppRun calls them through call_in_io)

    def _start_app(self, event: StartApp) -> None:
        if self.trace:  # the very dict the app gets: a capture finds the request by it
            trace_scope(self.peer, event.scope, protocol=self.core.protocol, cycle=event.cycle)
        run = _AppRun(self, event.cycle)
        self.runs[event.cycle] = run
        self.driver.call_in_app(self._create_task, run, event.scope)

    def _create_task(self, run: _AppRun, scope: dict[str, Any]) -> None:
        task = self.driver.loop.create_task(self._run_app(run, scope))
        tasks = self.driver.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _run_app(self, run: _AppRun, scope: dict[str, Any]) -> None:
        exc = None
        try:
            exc = await call_app(self.driver.app, scope, run.receive, run.send)
        finally:
            self.driver.call_in_io(self._app_finished, run, exc)

    def _app_finished(self, run: _AppRun, exc: BaseException | None) -> None:
        del self.runs[run.cycle]
        self.core.app_finished(run.cycle, exc, time.time())
        self._flush()

    def _receive(self, run: _AppRun, future: asyncio.Future[dict[str, Any] | None]) -> None:
        message = self.core.message_for_app(run.cycle, time.time())
        self._flush()
        if message is None:
            run.waiter = future
        else:
            if self.trace:
                trace_message(self.peer, "<", message, protocol=self.core.protocol, cycle=run.cycle)
            self.driver.call_in_app(_resolve, future, message)

    def _send(
        self, run: _AppRun, message: MutableMapping[str, Any], future: asyncio.Future[None]
    ) -> None:
        if self.trace:
            trace_message(self.peer, ">", message, protocol=self.core.protocol, cycle=run.cycle)
        try:
            self.core.message_from_app(run.cycle, message, time.time())
        except Exception as exc:
            self._flush()
            self.driver.call_in_app(_reject, future, exc)
            return
        self._flush()
        if self.file_event is not None:
            self._send_file(run, future)
            return
        self._answer(run, future)

    def _answer(self, run: _AppRun, future: asyncio.Future[None]) -> None:
        """Let a ``send()`` return, or hold it (``run.send_waiter``) while writing is paused or
        the core holds as much for this cycle as it will (``send_ready``); ``_resume_send``
        looks again when writing resumes, on a ``WakeApp`` for the cycle, or once the
        connection is lost."""
        if not self.lost and (self.write_paused or not self.core.send_ready(run.cycle)):
            run.send_waiter = future
        else:
            self.driver.call_in_app(_resolve, future, None)

    def _resume_send(self, run: _AppRun) -> None:
        """Look again at a held ``send()``: answer it, or go on feeding its file."""
        future, run.send_waiter = run.send_waiter, None
        if future is None:
            return
        if run.feed is not None:
            self._feed_file(run, future)
        else:
            self._answer(run, future)

    def _release_writers(self) -> None:
        """Writing resumed, or the connection is lost: every held ``send()`` looks again."""
        for run in list(self.runs.values()):
            if run.send_waiter is not None:
                self._resume_send(run)

    # file bodies

    def _send_file(self, run: _AppRun, future: asyncio.Future[None]) -> None:
        """Answer the ``OpenFile`` a file message made: resolve the file, let the core write
        the head, queue the file (``SendFile``; ``_file_written`` tells the core it went) or
        feed it to the core (``FeedFile``)."""
        core = self.core
        event, self.file_event = self.file_event, None
        assert isinstance(event, OpenFile)
        try:
            body = FileBody.open(event)
        except Exception as exc:
            core.file_failed(event.cycle, exc, time.time())
            self._flush()
            self.driver.call_in_app(_reject, future, exc)
            return
        try:
            core.file_opened(event.cycle, body.fd, body.offset, body.count, time.time())
        except Exception as exc:
            body.close()
            self._flush()
            self.driver.call_in_app(_reject, future, exc)
            return
        self._flush()  # the head
        send, self.file_event = self.file_event, None
        if send is None or self.lost:  # nothing to write (HEAD, 204, 304, an empty file)
            body.close()
            if self.lost:
                self.driver.call_in_app(_reject, future, ClientDisconnected("the client left"))
            else:
                self._answer(run, future)
            return
        if isinstance(send, FeedFile):
            run.feed = _FileFeed(send, body)
            self._feed_file(run, future)
            return
        assert isinstance(send, SendFile)
        self.sending = _FileSegment(send, body, run, future)
        self._write_some()

    def _write_file(self) -> None:
        """Write some of the file, the byte queue being empty: ``os.sendfile`` to a plain
        socket; under TLS, the next chunk into the byte queue."""
        segment = self.sending
        assert segment is not None
        body = segment.body
        remaining = segment.send.count - body.sent
        offset = segment.send.offset + body.sent
        try:
            if isinstance(self.sock, ssl.SSLSocket):
                chunk = os.pread(body.fd, min(remaining, FILE_CHUNK_BYTES), offset)
                sent = len(chunk)
                self.out += chunk
            else:
                sent = os.sendfile(self.sock.fileno(), body.fd, offset, remaining)
        except (BlockingIOError, InterruptedError):
            return  # the socket is full: wait until it is writable again
        except OSError:
            self._connection_lost()
            return
        if sent == 0:  # the file ended before its count
            self._drop_file(file_ended_early(body.fd, remaining))
            self._connection_lost()
            return
        body.sent += sent
        if body.sent == segment.send.count:
            self._file_written()

    def _file_written(self) -> None:
        segment = self.sending
        assert segment is not None
        self.sending = None
        segment.body.close()
        self.out += segment.after
        self.core.file_sent(segment.send.cycle, time.time())
        self._flush()
        self._answer(segment.run, segment.waiter)

    def _drop_file(self, exc: BaseException) -> None:
        """The file will not be written: close it and let its ``send()`` raise ``exc``."""
        segment, self.sending = self.sending, None
        if segment is not None:
            segment.body.close()
            self.driver.call_in_app(_reject, segment.waiter, exc)

    def _feed_file(self, run: _AppRun, future: asyncio.Future[None]) -> None:
        """Give the core the next reads of ``run.feed``'s file, of at most ``read_size_bytes``
        each, writing each out before reading the next; hold the ``send()`` while it would be
        held, or after ``FILE_CHUNKS_PER_TURN`` reads until the socket is writable (the other
        sockets have a turn meanwhile); then tell the core the file went, and answer it."""
        feed = run.feed
        assert feed is not None
        core = self.core
        cycle = feed.feed.cycle
        body = feed.body
        read_size = self.driver.settings.read_size_bytes
        for _ in range(FILE_CHUNKS_PER_TURN):
            if self.lost:
                self._end_feed(run, future, ClientDisconnected("the client disconnected"))
                return
            if self.write_paused or not core.send_ready(cycle):
                run.send_waiter = future
                return
            remaining = feed.feed.count - body.sent
            if remaining == 0:
                self._end_feed(run, future, None)
                return
            try:
                chunk = os.pread(body.fd, min(remaining, read_size), feed.feed.offset + body.sent)
            except OSError as exc:  # EIO: raised out of send(), as a failed read there would be
                self._end_feed(run, future, exc)
                return
            if not chunk:
                # Only this stream's response is cut: the app's send() raises, and the core
                # ends the stream when the app finishes.
                self._end_feed(run, future, file_ended_early(body.fd, remaining))
                return
            try:
                core.file_data(cycle, chunk, time.time())
            except Exception as exc:  # ClientDisconnected: the stream was reset
                self._flush()
                self._end_feed(run, future, exc)
                return
            body.sent += len(chunk)
            self._flush()
        run.send_waiter = future
        self.feeds.append(run)
        self._update_interest()

    def _end_feed(
        self, run: _AppRun, future: asyncio.Future[None], exc: BaseException | None
    ) -> None:
        """The file was fed (``exc`` None: the core hears it went) or will not be: close it,
        and answer the ``send()``."""
        feed, run.feed = run.feed, None
        assert feed is not None
        feed.body.close()
        if exc is not None:
            self.driver.call_in_app(_reject, future, exc)
            return
        try:
            self.core.file_sent(feed.feed.cycle, time.time())
        except Exception as exc:
            self._flush()
            self.driver.call_in_app(_reject, future, exc)
            return
        self._flush()
        self._answer(run, future)

    def _resume_feeds(self) -> None:
        """The socket is writable again: the files that had their turn go on."""
        runs, self.feeds = self.feeds, []
        for run in runs:
            self._resume_send(run)
        self._update_interest()


class _FileSegment:
    """A file in the write queue: ``send`` says which bytes; ``after`` holds what the core
    queued meanwhile, written once the file has gone."""

    __slots__ = ("after", "body", "run", "send", "waiter")

    def __init__(
        self, send: SendFile, body: FileBody, run: _AppRun, waiter: asyncio.Future[None]
    ) -> None:
        self.send = send
        self.body = body
        self.run = run
        self.waiter = waiter
        self.after = bytearray()


class _FileFeed:
    """A file being fed to the core (``FeedFile``); ``body.sent`` counts what it has had."""

    __slots__ = ("body", "feed")

    def __init__(self, feed: FeedFile, body: FileBody) -> None:
        self.feed = feed
        self.body = body


# ---------------------------------------------------------------------- one app call


class _AppRun:
    """``receive`` and ``send`` for one cycle; they run on the app loop (the I/O thread's
    side of them, ``waiter``, ``send_waiter`` and ``feed``, is touched on the I/O thread only)."""

    __slots__ = ("connection", "cycle", "feed", "send_waiter", "waiter")

    def __init__(self, connection: _Connection, cycle: Cycle) -> None:
        self.connection = connection
        self.cycle = cycle
        self.waiter: asyncio.Future[dict[str, Any] | None] | None = None  # a receive() waiting
        self.send_waiter: asyncio.Future[None] | None = None  # a send() held (_answer)
        self.feed: _FileFeed | None = None  # a file being fed to the core (FeedFile)

    async def receive(self) -> dict[str, Any]:
        connection = self.connection
        while True:
            future: asyncio.Future[dict[str, Any] | None] = connection.driver.loop.create_future()
            connection.driver.call_in_io(connection._receive, self, future)
            message = await future
            if message is not None:
                return message

    def wake(self) -> None:
        """On the I/O thread: ask the core again for a waiting ``receive()``, here, rather
        than answer it with None for it to ask again through the threads; and look again at a
        held ``send()``."""
        waiter, self.waiter = self.waiter, None
        if waiter is not None:
            self.connection._receive(self, waiter)
        if self.send_waiter is not None:
            self.connection._resume_send(self)

    async def send(self, message: MutableMapping[str, Any]) -> None:
        connection = self.connection
        future: asyncio.Future[None] = connection.driver.loop.create_future()
        connection.driver.call_in_io(connection._send, self, message, future)
        await future
