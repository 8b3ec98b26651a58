"""``Server``: runs the lifespan, binds, serves with a driver, and stops without losing requests.

``serve()`` is a coroutine for embedding; ``run()`` wraps it in ``asyncio.run``. The stages:

1. **startup**: the lifespan's startup (``--lifespan``) completes before any socket is bound, so
   no connection is accepted before the app is ready; then bind and start the driver.
2. **main loop**: wait for SIGINT/SIGTERM, ``request_stop()`` or ``--limit-max-requests``.
3. **shutdown**: stop accepting at once; ask every connection to finish (idle keep-alive
   connections close, in-flight responses carry ``connection: close``, WebSockets get 1012);
   after ``--timeout-graceful-shutdown`` cancel what is left; then the lifespan's shutdown.
   A second signal cuts everything at once.

Exit codes: 0 after a clean stop, 3 when the lifespan's startup failed (as uvicorn).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import threading
from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from .config import ASGIApp, Config
from .core.events import Event, ResponseCompleted
from .core.lifespan import FAILED, UNSUPPORTED, Lifespan
from .core.limits import Admission
from .drivers import driver_class
from .drivers.sockets import TLS, bind_socket, bind_unix_socket, display_url, socket_from_fd
from .logs import flush as flush_logs
from .logs import report

if TYPE_CHECKING:  # driver_class imports the one --driver names
    from .drivers.asyncio_driver import AsyncioDriver
    from .drivers.selectors_driver import SelectorsDriver

error_log = logging.getLogger("sansio_asgi.error")

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
LIFESPAN_FAILED_EXIT_CODE = 3


class Server:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.should_exit = False
        self.force_exit = False
        self.started = False
        self.exit_code = 0
        self.sockets: list[socket.socket] = []
        self.served_requests = 0
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._driver: AsyncioDriver | SelectorsDriver | None = None
        self._lifespan: _LifespanRun | None = None
        self._force_close: asyncio.Future[None] | None = None
        self._max_requests: int | None = None
        # A supervised worker handles SIGTERM only: its supervisor relays Ctrl+C.
        self.handled_signals: tuple[signal.Signals, ...] = HANDLED_SIGNALS

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        """Serve until ``request_stop()``, SIGINT or SIGTERM."""
        self._stop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        app = self.config.load_app()
        ssl_context = self.config.ssl_context()
        self.config.protocol_settings()  # a bad --header or --forwarded-allow-ips fails now
        restore = self._install_signal_handlers()
        try:
            if await self.startup(app, sockets, ssl_context):
                await self.main_loop()
        finally:
            await self.shutdown()
            restore()

    async def startup(
        self,
        app: ASGIApp,
        sockets: list[socket.socket] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> bool:
        """Run the lifespan's startup, bind and start serving; False if startup failed."""
        config = self.config
        state: dict[str, Any] = {}
        if config.lifespan != "off":
            self._lifespan = _LifespanRun(app, required=config.lifespan == "on")
            if not await self._lifespan.startup(config.timeout_lifespan_startup):
                self.exit_code = LIFESPAN_FAILED_EXIT_CODE
                return False
            state = self._lifespan.lifespan.state
        if sockets is None:
            sockets = [self._bind()]
        self.sockets = sockets
        admission = Admission(config.limit_concurrency) if config.limit_concurrency else None
        settings = config.protocol_settings(state=state, admission=admission)
        if config.limit_max_requests is not None:
            import random

            jitter = random.randint(0, config.limit_max_requests_jitter)
            self._max_requests = config.limit_max_requests + jitter
        tls = TLS(ssl_context, config.ssl_certfile) if ssl_context is not None else None
        driver = driver_class(config.driver)(app, settings, self._report, tls=tls)
        self._driver = driver
        await driver.start(sockets)
        scheme = "https" if ssl_context is not None else "http"
        for sock in sockets:
            error_log.info(
                "sansio-asgi running on %s with the %s driver (Press CTRL+C to quit)",
                display_url(sock, scheme),
                config.driver,
            )
        if config.app is None and any(_off_loopback(sock) for sock in sockets):
            error_log.warning(
                "The inspector (served when no APP is given) only answers clients on this "
                "machine: loopback addresses, with a Host of localhost or a loopback address,"
                " not through a proxy"
            )
        self.started = True
        return True

    def _bind(self) -> socket.socket:
        config = self.config
        fd = config.listen_fd()
        if fd is not None:
            return socket_from_fd(fd)
        if config.uds is not None:
            return bind_unix_socket(config.uds, backlog=config.backlog)
        return bind_socket(config.host, config.port, backlog=config.backlog)

    async def main_loop(self) -> None:
        assert self._stop is not None
        if not self.should_exit:
            await self._stop.wait()

    async def shutdown(self) -> None:
        driver = self._driver
        if driver is not None:
            error_log.info("Shutting down")
            await driver.stop_accepting()
            for sock in self.sockets:
                sock.close()
            if self.config.uds is not None and self.config.listen_fd() is None:
                with contextlib.suppress(OSError):
                    os.unlink(self.config.uds)
            driver.shutdown_connections()
            timeout = self.config.timeout_graceful_shutdown
            if not self.force_exit and not await driver.wait_closed(timeout):
                error_log.warning(
                    "Cancelling what is still running: --timeout-graceful-shutdown (%gs) passed",
                    timeout,
                )
            await driver.close()
            self._driver = None
            flush_logs()  # the count of invalid requests the rate limit kept out of the log
        if self._lifespan is not None:
            await self._lifespan.shutdown(self.config.timeout_lifespan_shutdown)
            self._lifespan = None
        if self.started or self.exit_code:
            error_log.info("Finished server process")

    def request_stop(self, *, force: bool = False) -> None:
        """Ask ``serve()`` to return; a second call cuts everything (on the loop's thread)."""
        if self.should_exit:
            force = True
        self.should_exit = True
        if force:
            self.force_exit = True
            if self._driver is not None and self._force_close is None:
                self._force_close = asyncio.ensure_future(self._driver.close())
            if self._lifespan is not None:
                self._lifespan.cancel()
        if self._stop is not None:
            self._stop.set()

    def _report(self, event: Event) -> None:
        """The core's facts: to the logs, and counted for ``--limit-max-requests``."""
        report(event)
        if type(event) is ResponseCompleted and self._max_requests is not None:
            self.served_requests += 1
            if self.served_requests == self._max_requests and self._loop is not None:
                self._loop.call_soon_threadsafe(self.retire)

    def retire(self) -> None:
        """``--limit-max-requests`` was reached (on the loop's thread): stop. A supervised worker
        overrides this to have its replacement started first, so capacity never drops."""
        if not self.should_exit:
            error_log.warning(
                "Maximum request limit of %d reached; shutting down", self._max_requests
            )
            self.request_stop()

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        loop = asyncio.get_running_loop()
        installed = []
        for sig in self.handled_signals:
            try:
                loop.add_signal_handler(sig, self.request_stop)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - not on Unix
                signal.signal(sig, lambda *_: loop.call_soon_threadsafe(self.request_stop))

        def restore() -> None:
            for sig in installed:
                loop.remove_signal_handler(sig)

        return restore


class _LifespanRun:
    """Runs the app's lifespan call on the serving loop, driven by ``core.lifespan.Lifespan``."""

    def __init__(self, app: ASGIApp, *, required: bool) -> None:
        self.app = app
        self.lifespan = Lifespan(required=required)
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def startup(self, timeout_s: float) -> bool:
        lifespan = self.lifespan
        lifespan.start()
        self._task = asyncio.get_running_loop().create_task(self._run())
        if not await self._wait(lambda: lifespan.startup_done, timeout_s):
            lifespan.timed_out()
        if lifespan.phase == UNSUPPORTED:
            error_log.info("ASGI 'lifespan' protocol appears unsupported.")
        elif lifespan.phase == FAILED:
            error_log.error("Application startup failed: %s", lifespan.failure or "(no message)")
            self.cancel()
            return False
        else:
            error_log.info("Application startup complete.")
        return True

    async def shutdown(self, timeout_s: float) -> None:
        lifespan = self.lifespan
        if lifespan.phase in (FAILED, UNSUPPORTED):
            return
        lifespan.shutdown()
        self._changed.set()
        if not await self._wait(lambda: lifespan.shutdown_done, timeout_s):
            lifespan.timed_out()
        if lifespan.shutdown_failed:
            error_log.error("Application shutdown failed: %s", lifespan.failure or "(no message)")
        else:
            error_log.info("Application shutdown complete.")
        self.cancel()

    def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._changed.set()

    async def _wait(self, done: Callable[[], bool], timeout_s: float) -> bool:
        async def until_done() -> None:
            while not done():
                self._changed.clear()
                if self._task is not None and self._task.cancelled():
                    return
                await self._changed.wait()

        try:
            await asyncio.wait_for(until_done(), timeout_s)
        except asyncio.TimeoutError:
            return False
        return done()

    async def _run(self) -> None:
        lifespan = self.lifespan
        exc: BaseException | None = None
        try:
            await self.app(lifespan.scope, self._receive, self._send)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            exc = error
            if lifespan.required or lifespan.startup_done:
                error_log.error("Exception in 'lifespan' protocol", exc_info=error)
        finally:
            lifespan.app_finished(exc)
            self._changed.set()

    async def _receive(self) -> MutableMapping[str, Any]:
        while True:
            message = self.lifespan.message_for_app()
            if message is not None:
                return message
            self._changed.clear()
            await self._changed.wait()

    async def _send(self, message: MutableMapping[str, Any]) -> None:
        try:
            self.lifespan.message_from_app(message)
        finally:
            self._changed.set()


__all__ = ["Server"]


def _off_loopback(sock: socket.socket) -> bool:
    """Whether a listening socket takes connections from other machines."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    import ipaddress

    try:
        return not ipaddress.ip_address(sock.getsockname()[0].split("%")[0]).is_loopback
    except ValueError:
        return True
