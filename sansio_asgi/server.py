"""``Server``: binds, serves with a driver, and stops cleanly.

``serve()`` is a coroutine for embedding; ``run()`` wraps it in ``asyncio.run``. The stages are
kept apart so that later stages can slot in: ``startup`` (bind, then the lifespan, then accept),
``main_loop`` (wait for a stop request), ``shutdown`` (stop accepting, let connections finish,
then cut what is left).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
from typing import Any

from .config import ASGIApp, Config
from .drivers import driver_class
from .drivers.asyncio_driver import AsyncioDriver
from .drivers.selectors_driver import SelectorsDriver
from .drivers.sockets import bind_socket, display_url
from .logs import report

error_log = logging.getLogger("sansio_asgi.error")

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Server:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.should_exit = False
        self.force_exit = False
        self.sockets: list[socket.socket] = []
        self.started = False
        self._stop: asyncio.Event | None = None
        self._driver: AsyncioDriver | SelectorsDriver | None = None
        self._force_close: asyncio.Future[None] | None = None

    @property
    def bound_ports(self) -> list[int]:
        ports: list[int] = []
        for sock in self.sockets:
            address = sock.getsockname()
            if isinstance(address, tuple):
                ports.append(int(address[1]))
        return ports

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        """Serve until ``request_stop()`` or SIGINT/SIGTERM."""
        self._stop = asyncio.Event()
        app = self.config.load_app()
        restore = self._install_signal_handlers()
        try:
            await self.startup(app, sockets)
            await self.main_loop()
        finally:
            await self.shutdown()
            restore()

    async def startup(self, app: ASGIApp, sockets: list[socket.socket] | None = None) -> None:
        config = self.config
        if sockets is None:
            sockets = [bind_socket(config.host, config.port, backlog=config.backlog)]
        self.sockets = sockets
        driver = driver_class(config.driver)(app, config.protocol_settings(), report)
        self._driver = driver
        await driver.start(sockets)
        for sock in sockets:
            error_log.info(
                "sansio-asgi running on %s with the %s driver (Press CTRL+C to quit)",
                display_url(sock),
                config.driver,
            )
        self.started = True

    async def main_loop(self) -> None:
        assert self._stop is not None
        if not self.should_exit:
            await self._stop.wait()

    async def shutdown(self) -> None:
        driver = self._driver
        if driver is None:
            return
        error_log.info("Shutting down")
        await driver.stop_accepting()
        for sock in self.sockets:
            sock.close()
        driver.shutdown_connections()
        if not await driver.wait_closed(None if not self.force_exit else 0):
            pass
        await driver.close()
        self._driver = None
        error_log.info("Finished server process")

    def request_stop(self, *, force: bool = False) -> None:
        """Ask ``serve()`` to return; callable from the serving loop's thread."""
        if self.should_exit:
            force = True
        self.should_exit = True
        if force:
            self.force_exit = True
            if self._driver is not None:
                self._force_close = asyncio.ensure_future(self._driver.close())
        if self._stop is not None:
            self._stop.set()

    def _install_signal_handlers(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        loop = asyncio.get_running_loop()
        installed = []
        for sig in HANDLED_SIGNALS:
            try:
                loop.add_signal_handler(sig, self.request_stop)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - not on Unix
                signal.signal(sig, lambda *_: loop.call_soon_threadsafe(self.request_stop))

        def restore() -> None:
            for sig in installed:
                loop.remove_signal_handler(sig)

        return restore
