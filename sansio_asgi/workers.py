"""Gunicorn worker classes: ``gunicorn -k sansio_asgi.workers.SansioWorker module:app``.

Theory of operation
-------------------
Gunicorn's arbiter binds, forks the workers, watches their heartbeats and handles the master's
signals (HUP, TTIN/TTOU, USR1, TERM, QUIT). Each worker here runs one ``Server`` on the sockets
it inherited (``self.sockets``), with the asyncio driver (``SansioWorker``) or the selectors
driver (``SansioSelectorsWorker``). Nothing here touches the core or the drivers: gunicorn's
settings become a ``Config`` (``config_from_gunicorn``) and gunicorn's signals become calls on
the ``Server``.

* **Heartbeat.** The arbiter kills a worker whose temporary file has not been touched for
  ``timeout`` seconds (SIGABRT, then SIGKILL). A task on the serving loop calls ``notify()``
  several times per ``timeout``: a loop blocked by an app stops the heartbeat, which is exactly
  what the arbiter must notice. Apps run on that loop under both drivers.
* **Signals.** As gunicorn's own workers: SIGTERM stops gracefully (``graceful_timeout`` bounds
  it), SIGQUIT stops at once (``worker_int`` hook first), SIGUSR1 reopens the log files,
  SIGABRT (the arbiter's timeout) runs ``worker_abort`` and exits. SIGINT is the server's own:
  graceful, a second one cuts; after a Ctrl+C the master sends SIGQUIT anyway. They are handled
  on the loop, except SIGABRT: it is sent because the loop is blocked, so it must not wait for
  it (and the process exits without unwinding through a stuck app).
* **Retiring.** ``max_requests`` (+ jitter, drawn by gunicorn's ``Worker``) becomes
  ``limit_max_requests``: after that many responses the server stops gracefully and the
  process exits, and the arbiter starts a replacement. A parent that changed (the master died)
  or gunicorn's reloader stops the worker the same way.
* **Logging.** ``sansio_asgi.error`` writes to gunicorn's error log handlers, and access lines
  go to gunicorn's access log handlers (only when gunicorn has any: ``--access-logfile``), in
  gunicorn's ``access_log_format``, whose atoms ``logs.AccessFormatter`` shares. Sharing the
  handler objects is what makes gunicorn's USR1 (``reopen_files``) reopen our files too.
* **Boot errors.** A setting this server cannot honour, or a failed lifespan startup, exits
  with gunicorn's ``WORKER_BOOT_ERROR``, so the arbiter stops instead of restarting the worker
  forever.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import sys
from typing import Any, NoReturn

from gunicorn.arbiter import Arbiter  # type: ignore[import-untyped]
from gunicorn.workers.base import Worker  # type: ignore[import-untyped]

from .config import H2_RANGES, AppLoadError, Config, ConfigError
from .logs import LOG_LEVELS, configure_logging
from .server import LIFESPAN_FAILED_EXIT_CODE, Server

# Gunicorn's own bounds on a request head (gunicorn/http/message.py): the request line is at
# most 8190 bytes, a request has at most 32768 header fields, and a field size of 0 ("no
# limit") is read as 8190.
GUNICORN_MAX_REQUEST_LINE = 8190
GUNICORN_MAX_HEADERS = 32768
GUNICORN_DEFAULT_FIELD_SIZE = 8190

# The heartbeat runs at least this often, whatever the timeout: touching a file is cheap.
HEARTBEAT_MAX_INTERVAL_S = 1.0


def max_header_bytes(line: int, fields: int, field_size: int) -> int:
    """The largest request head gunicorn's parser would accept with these limits.

    ``limit_request_line`` + CRLF, then ``limit_request_fields`` fields of
    ``limit_request_field_size`` bytes + CRLF each, then gunicorn's 4 bytes of slack: the same
    bound gunicorn puts on its header buffer. The core has one limit on the whole head (h11's
    ``max_incomplete_event_size``), so a single line or field is bounded by this total, not by
    its own limit.
    """
    if line <= 0 or line > GUNICORN_MAX_REQUEST_LINE:
        line = GUNICORN_MAX_REQUEST_LINE
    if fields <= 0 or fields > GUNICORN_MAX_HEADERS:
        fields = GUNICORN_MAX_HEADERS
    if field_size <= 0:
        field_size = GUNICORN_DEFAULT_FIELD_SIZE
    return line + 2 + fields * (field_size + 2) + 4


def _setting(cfg: Any, name: str, default: Any) -> Any:
    """A gunicorn setting that older gunicorn releases may not have."""
    try:
        return getattr(cfg, name)
    except AttributeError:
        return default


def _http2_options(cfg: Any) -> dict[str, Any]:
    """gunicorn's HTTP/2 settings (gunicorn 25 and later; an older one leaves ours).

    ``--http-protocols`` must name h2, and without TLS ``--http2-cleartext`` must be on (this
    server does not tell prior knowledge from Upgrade: either value allows both).
    """
    options: dict[str, Any] = {}
    protocols = _setting(cfg, "http_protocols", None)
    if protocols is not None:
        cleartext = _setting(cfg, "http2_cleartext", "off") != "off"
        options["http2"] = "h2" in protocols and bool(cfg.is_ssl or cleartext)
    for name in H2_RANGES:
        value = _setting(cfg, name.replace("h2_", "http2_", 1), None)
        if value == 0 and name == "h2_max_header_list_size":
            # gunicorn's "unlimited": this server keeps its own limit, the one that bounds an
            # HPACK bomb.
            value = None
        if value is not None:
            options[name] = int(value)
    return options


def config_from_gunicorn(cfg: Any, app: Any, *, driver: str, max_requests: int | None) -> Config:
    """A ``Config`` from gunicorn's settings; ``ValueError`` for one that cannot be honoured."""
    proxy_protocol = _setting(cfg, "proxy_protocol", False)
    if proxy_protocol not in (False, None, "off"):
        raise ValueError("--proxy-protocol is not supported by sansio-asgi's workers")
    protocol = _setting(cfg, "protocol", "http")
    if protocol != "http":
        raise ValueError(f"--protocol {protocol} is not supported by sansio-asgi's workers")
    allow = cfg.forwarded_allow_ips
    options: dict[str, Any] = {
        "app": app,
        "driver": driver,
        "timeout_keep_alive": float(cfg.keepalive),
        "timeout_graceful_shutdown": float(cfg.graceful_timeout),
        "limit_max_requests": max_requests,
        "h11_max_incomplete_event_size": max_header_bytes(
            cfg.limit_request_line, cfg.limit_request_fields, cfg.limit_request_field_size
        ),
        "proxy_headers": True,
        "forwarded_allow_ips": allow if isinstance(allow, str) else ",".join(allow),
        "root_path": _setting(cfg, "root_path", "") or "",
        "lifespan": _setting(cfg, "asgi_lifespan", "auto"),
        # gunicorn logs through its own handlers; Config's logging fields are not used here
        "log_level": cfg.loglevel.lower() if cfg.loglevel.lower() in LOG_LEVELS else "info",
        "access_log_format": cfg.access_log_format,
    }
    options.update(_http2_options(cfg))
    if cfg.is_ssl:
        ssl_options = cfg.ssl_options
        options["ssl_certfile"] = ssl_options.get("certfile")
        options["ssl_keyfile"] = ssl_options.get("keyfile")
        options["ssl_ca_certs"] = ssl_options.get("ca_certs")
        options["ssl_cert_reqs"] = int(ssl_options.get("cert_reqs") or 0)
        if ssl_options.get("ciphers"):
            options["ssl_ciphers"] = ssl_options["ciphers"]
    return Config(**options)


class SansioWorker(Worker):  # type: ignore[misc]
    """A gunicorn worker serving an ASGI app with sansio-asgi's asyncio driver."""

    driver = "asyncio"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.server: Server | None = None

    # -- gunicorn's hooks, in the order it calls them

    def init_signals(self) -> None:
        """Gunicorn's defaults until the loop runs; the loop takes over in ``_serve``."""
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGQUIT, self.handle_quit)
        signal.signal(signal.SIGTERM, self.handle_exit)
        signal.signal(signal.SIGINT, self.handle_quit)
        signal.signal(signal.SIGUSR1, self.handle_usr1)
        signal.signal(signal.SIGABRT, self.handle_abort)
        # SIGUSR1 must not cut a system call short in the middle of a request.
        signal.siginterrupt(signal.SIGUSR1, False)

    def run(self) -> None:
        try:
            config = config_from_gunicorn(
                self.cfg,
                self.wsgi,
                driver=self.driver,
                max_requests=self.max_requests if self.cfg.max_requests > 0 else None,
            )
            self._configure_logging(config)
        except ValueError as exc:  # a ConfigError too (a bad --access-logformat)
            self._boot_failed(exc)
        if not self.alive:  # SIGTERM while the app was loading
            return
        server = self.server = Server(config)
        try:
            asyncio.run(self._serve(server))
        except (AppLoadError, ConfigError) as exc:
            self._boot_failed(exc)
        if server.exit_code == LIFESPAN_FAILED_EXIT_CODE:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
        if server.exit_code:
            sys.exit(server.exit_code)

    def _boot_failed(self, exc: Exception) -> NoReturn:
        """Log one line and exit so that the arbiter stops rather than restart this worker."""
        self.log.error("Worker failed to boot: %s", exc)
        sys.exit(Arbiter.WORKER_BOOT_ERROR)

    # -- the serving loop

    async def _serve(self, server: Server) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGQUIT, self._quit, server)
        loop.add_signal_handler(signal.SIGUSR1, self.log.reopen_files)
        heartbeat = loop.create_task(self._heartbeat(server))
        try:
            # Server.serve adds its own SIGTERM and SIGINT handlers: graceful, a second forces.
            # gunicorn's listeners wrap a socket.socket; the drivers want the socket itself.
            await server.serve(sockets=[getattr(sock, "sock", sock) for sock in self.sockets])
        finally:
            heartbeat.cancel()
            loop.remove_signal_handler(signal.SIGQUIT)
            loop.remove_signal_handler(signal.SIGUSR1)

    async def _heartbeat(self, server: Server) -> None:
        # self.timeout is half gunicorn's --timeout (the arbiter passes timeout / 2).
        interval = min(HEARTBEAT_MAX_INTERVAL_S, max(self.timeout / 2, 0.05))
        while True:
            self.notify()
            if not server.should_exit:
                if os.getppid() != self.ppid:
                    self.log.info("Parent changed, shutting down: %s", self)
                    server.request_stop()
                elif not self.alive:  # gunicorn's reloader saw a change
                    server.request_stop()
            await asyncio.sleep(interval)

    def handle_abort(self, sig: int, frame: Any) -> None:
        """SIGABRT, the arbiter's timeout: the ``worker_abort`` hook, then exit at once.

        The loop is blocked (that is why the heartbeat stopped), so a ``SystemExit`` raised
        into whatever code runs would be unwound through the app and the server, which is
        neither quick nor sure to end the process. Exit without unwinding: the arbiter only
        needs the process gone, and the clients of this worker see their connections close.
        """
        self.alive = False
        self.cfg.worker_abort(self)
        for handler in self.log.error_log.handlers:
            handler.flush()
        os._exit(1)

    def _quit(self, server: Server) -> None:
        """SIGQUIT: gunicorn's quick shutdown, after its ``worker_int`` hook.

        A stop without a grace period: what is still running is cancelled at once, and the
        lifespan shutdown still runs. When a graceful stop is already under way, the second
        request cuts it short.
        """
        self.alive = False
        self.cfg.worker_int(self)
        if server.should_exit:
            server.request_stop(force=True)
        else:
            server.config = dataclasses.replace(server.config, timeout_graceful_shutdown=0)
            server.request_stop()

    def _configure_logging(self, config: Config) -> None:
        access_handlers = self.log.access_log.handlers
        configure_logging(
            config.log_level,
            access=bool(access_handlers),
            access_format=config.access_log_format,
        )
        # The same handler lists, not copies: gunicorn's reopen_files() and a logconfig that
        # configures gunicorn's loggers then apply to our lines too.
        root = logging.getLogger("sansio_asgi")
        root.handlers = self.log.error_log.handlers
        root.setLevel(self.log.error_log.level)
        access = logging.getLogger("sansio_asgi.access")
        access.handlers = access_handlers
        access.propagate = False
        access.setLevel(logging.INFO)


class SansioSelectorsWorker(SansioWorker):
    """A gunicorn worker serving an ASGI app with sansio-asgi's selectors driver."""

    driver = "selectors"


__all__ = ["SansioSelectorsWorker", "SansioWorker", "config_from_gunicorn", "max_header_bytes"]
