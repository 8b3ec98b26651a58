"""Many processes: ``--workers N`` and ``--reload``.

Theory of operation. The parent binds once (or takes ``--fd``, ``--uds``, or systemd's socket)
and starts worker processes with the ``spawn`` method, so every platform behaves alike. Each
worker runs an ordinary ``Server`` on the inherited listening socket; the kernel shares out the
connections among the processes accepting on it.

A worker talks to the parent over a pipe of its own, one word at a time:

* ``heartbeat`` every second, from its event loop: a loop blocked by the app goes silent;
* ``ready`` once its lifespan startup is done and it serves;
* ``retiring`` when ``--limit-max-requests`` is reached: it keeps serving until its
  replacement is ready and the parent stops it, so capacity never drops.

The parent is one loop, as gunicorn's arbiter: ``select()`` over the signal self-pipe, the
workers' pipes and process sentinels, and the file watcher's wake-up pipe; signals are queued
and handled one at a time, in that loop, never in a handler. Every action on a worker is logged
with its pid and the reason. The rules:

* a worker that exits before ``ready`` (its app fails to import, its lifespan startup fails)
  stops the whole server with its exit code: restarting it would fail the same way;
* a worker that dies later is replaced, and its exit code logged;
* a worker silent for ``--timeout-worker-healthcheck`` seconds (``--timeout-notify`` before its
  first word) gets SIGTERM, SIGKILL after ``KILL_GRACE_S``, and a replacement;
* SIGINT/SIGTERM stop every worker gracefully (SIGTERM to each: each finishes its in-flight
  requests); a second one is relayed too, and cuts what is left;
* SIGHUP restarts the workers one by one, new before old: the replacement starts, and only when
  it is ready is the old one stopped. Both accept on the same socket, so nothing is refused.
  ``retiring`` and ``--workers-max-rss`` go through the same queue;
* SIGTTIN adds a worker, SIGTTOU stops the oldest (never the last).

``--reload`` is the same loop with one worker and a watcher: a change stops the worker, then
starts a new one (new after old: one app instance at a time while developing). A worker that
fails to start is logged and the supervisor waits for the next change.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import selectors
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .config import AppLoadError, Config, ConfigError, load_env_file
from .drivers.sockets import bind_socket, bind_unix_socket, display_url, socket_from_fd
from .server import Server

if TYPE_CHECKING:  # imported where used: one process, the common case, needs neither
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from .reload import Watcher

error_log = logging.getLogger("sansio_asgi.error")

HEARTBEAT = b"heartbeat"
READY = b"ready"
RETIRING = b"retiring"

HEARTBEAT_INTERVAL_S = 1.0
KILL_GRACE_S = 2.0  # a silent worker's last chance to act on SIGTERM before SIGKILL
RSS_CHECK_INTERVAL_S = 2.0
LONGEST_SLEEP_S = 0.5
STARTUP_FAILED_EXIT_CODE = 3  # a worker killed before it was ready (as a lifespan failure)

SUPERVISOR_SIGNALS = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGTTIN,
    signal.SIGTTOU,
)


def serve(config: Config) -> int:
    """Serve as ``config`` says (one process, workers, or reload); the process's exit code.
    Errors the user can fix are one logged line and exit code 1."""
    try:
        if config.env_file is not None:
            load_env_file(config.env_file)
        if config.reload or config.worker_count > 1:
            return Supervisor(config).run()
        server = Server(config)
        config.run_loop(server.serve())
        return server.exit_code
    except AppLoadError as exc:
        error_log.error("Error loading ASGI app: %s", exc)
    except ConfigError as exc:
        error_log.error("%s", exc)
    except OSError as exc:
        where = config.uds or f"{config.host}:{config.port}"
        error_log.error("Could not bind to %s: %s", where, exc.strerror or exc)
    return 1


def bind(config: Config) -> tuple[socket.socket, bool]:
    """The listening socket, and whether this process created a Unix socket file there."""
    fd = config.listen_fd()
    if fd is not None:
        return socket_from_fd(fd), False
    if config.uds is not None:
        return bind_unix_socket(config.uds, backlog=config.backlog), True
    return bind_socket(config.host, config.port, backlog=config.backlog), False


# -- the worker side ----------------------------------------------------------------------


class SupervisedServer(Server):
    """A ``Server`` that reports to its supervisor: heartbeats, ready, retiring."""

    def __init__(self, config: Config, pipe: Connection) -> None:
        super().__init__(config)
        self.handled_signals = (signal.SIGTERM,)
        self._pipe = pipe
        self._retiring = False
        self._heartbeat: Any = None

    async def startup(self, *args: Any, **kwargs: Any) -> bool:
        import asyncio

        # Beating from the start covers the lifespan's startup too.
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat())
        ready = await super().startup(*args, **kwargs)
        if ready:
            self._tell(READY)
        return ready

    async def shutdown(self) -> None:
        await super().shutdown()  # still beating: a graceful stop can take a while
        if self._heartbeat is not None:
            self._heartbeat.cancel()

    def retire(self) -> None:
        if self._retiring or self.should_exit:
            return
        self._retiring = True
        error_log.warning(
            "Maximum request limit of %d reached; asking for a replacement before stopping",
            self._max_requests,
        )
        self._tell(RETIRING)

    async def _beat(self) -> None:
        import asyncio

        while True:
            self._tell(HEARTBEAT)
            await asyncio.sleep(HEARTBEAT_INTERVAL_S)

    def _tell(self, word: bytes) -> None:
        try:
            self._pipe.send_bytes(word)
        except OSError:
            # The supervisor is gone: nobody would replace or stop this worker.
            if not self.should_exit:
                error_log.error("The supervisor process is gone; stopping")
                self.request_stop()


def worker_main(config: Config, sockets: list[socket.socket], pipe: Connection) -> None:
    """A worker process: serve ``sockets`` until SIGTERM. Exit code 1 when the app does not
    load, 3 when its lifespan startup fails."""
    # Ctrl+C, a terminal's hangup and job control reach the whole process group; they are the
    # supervisor's to act on (it relays a stop as SIGTERM, once; SIGHUP is a rolling restart).
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(sig, signal.SIG_IGN)
    config.configure_logging()
    server = SupervisedServer(config, pipe)
    code = 1
    try:
        config.run_loop(server.serve(sockets=sockets))
        code = server.exit_code
    except AppLoadError as exc:
        error_log.error("Error loading ASGI app: %s", exc)
    except ConfigError as exc:
        error_log.error("%s", exc)
    finally:
        pipe.close()
    sys.exit(code)


# -- the parent side ----------------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class _Worker:
    process: BaseProcess
    pipe: Connection
    started_at: float
    heard_at: float | None = None
    ready: bool = False
    stopping: str | None = None  # why the supervisor stopped it
    kill_at: float | None = None
    replaces: _Worker | None = None  # the old worker stopped once this one is ready
    retire_reason: str | None = None
    failed_start: bool = False  # killed before it was ready
    pid: int = 0

    def __post_init__(self) -> None:
        self.pid = self.process.pid or 0


class Supervisor:
    """The parent process's loop; ``run()`` returns the exit code."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.reload = config.reload
        self.target = 1 if config.reload else config.worker_count
        self.exit_code = 0
        self.workers: list[_Worker] = []
        import multiprocessing

        self._context = multiprocessing.get_context("spawn")
        self._selector = selectors.DefaultSelector()
        self._signals: deque[int] = deque()
        self._retire: deque[_Worker] = deque()
        self._incoming: _Worker | None = None
        self._stopping = False
        self._waiting_for_change = False
        self._next_rss_check = 0.0
        self._started = False
        self._watcher: Watcher | None = None
        self._listener: socket.socket | None = None
        self._worker_config = config
        self._wake_r = self._wake_w = -1

    def run(self) -> int:
        listener, created = bind(self.config)
        self._listener = listener
        # The self-pipe: signal numbers from set_wakeup_fd, and the watcher's wake-ups.
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        # The workers have the socket: their own Server must neither rebind nor unlink it.
        self._worker_config = dataclasses.replace(
            self.config, uds=None, fd=None, reload=False, workers=1, env_file=None
        )
        restore = self._install_signal_handlers()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        try:
            error_log.info(
                "Started supervisor process [%d] on %s: %s",
                os.getpid(),
                display_url(listener),
                "reload, 1 worker" if self.reload else f"{self.target} workers",
            )
            if self.reload:
                self._start_watcher()
            while not (self._stopping and not self.workers):
                self._tick()
        finally:
            self._close(restore, created)
        error_log.info("Stopped supervisor process [%d]", os.getpid())
        return self.exit_code

    # the loop

    def _tick(self) -> None:
        for key, _ in self._selector.select(self._sleep_s()):
            if key.data is None:
                self._read_wake_pipe()
            else:
                worker, what = key.data
                if worker not in self.workers:
                    continue  # reaped earlier in this tick
                if what == "pipe":
                    self._read_pipe(worker)
                elif worker.process.exitcode is not None:
                    self._read_pipe(worker)  # a last "ready" before it exited
                    self._reap(worker)
        for worker in list(self.workers):
            # A child the app forked inherits the sentinel and keeps it from firing: whether
            # the worker itself has exited is asked directly (waitpid without waiting).
            if worker.process.exitcode is not None:
                self._read_pipe(worker)
                self._reap(worker)
        while self._signals:
            self._handle_signal(self._signals.popleft())
        if self._watcher is not None:
            changed = self._watcher.changes()
            if changed:
                self._reload(changed)
        now = time.monotonic()
        self._check_health(now)
        if self.config.workers_max_rss is not None and now >= self._next_rss_check:
            self._next_rss_check = now + RSS_CHECK_INTERVAL_S
            self._check_rss(self.config.workers_max_rss)
        self._keep_workers()

    def _sleep_s(self) -> float:
        now = time.monotonic()
        deadlines = [w.kill_at for w in self.workers if w.kill_at is not None]
        timeout = LONGEST_SLEEP_S
        if deadlines:
            timeout = min(timeout, max(0.0, min(deadlines) - now))
        return timeout

    def _read_wake_pipe(self) -> None:
        while True:
            try:
                data = os.read(self._wake_r, 512)
            except BlockingIOError:
                return
            if not data:
                return
            # signal.set_wakeup_fd writes each signal's number; the watcher writes 0.
            self._signals.extend(byte for byte in data if byte)

    def _read_pipe(self, worker: _Worker) -> None:
        pipe = worker.pipe
        if pipe.closed:
            return
        try:
            while pipe.poll():
                word = pipe.recv_bytes()
                worker.heard_at = time.monotonic()
                if word == READY:
                    self._ready(worker)
                elif word == RETIRING:
                    self._queue_retire(worker, "it reached --limit-max-requests")
        except (EOFError, OSError):
            self._selector.unregister(pipe)
            pipe.close()

    # workers starting, ready, stopping, gone

    def _spawn(self, reason: str) -> _Worker:
        assert self._listener is not None
        reader, writer = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=worker_main,
            args=(self._worker_config, [self._listener], writer),
            name="sansio-asgi-worker",
        )
        process.start()
        writer.close()
        worker = _Worker(process, reader, time.monotonic())
        self.workers.append(worker)
        self._selector.register(reader, selectors.EVENT_READ, (worker, "pipe"))
        self._selector.register(process.sentinel, selectors.EVENT_READ, (worker, "sentinel"))
        error_log.info("Started worker process [%d] (%s)", worker.pid, reason)
        return worker

    def _ready(self, worker: _Worker) -> None:
        if worker.ready:
            return
        worker.ready = True
        error_log.info("Worker process [%d] is ready", worker.pid)
        if worker is self._incoming:
            self._incoming = None
            old = worker.replaces
            worker.replaces = None
            if old is not None and old.stopping is None:
                reason = f"replaced by [{worker.pid}]: {old.retire_reason}"
                self._stop(old, reason)

    def _stop(self, worker: _Worker, reason: str) -> None:
        """SIGTERM: the worker finishes its in-flight requests and exits."""
        if worker.stopping is not None or worker.process.exitcode is not None:
            return
        worker.stopping = reason
        error_log.info("Stopping worker process [%d] (%s)", worker.pid, reason)
        self._signal(worker, signal.SIGTERM)

    def _kill(self, worker: _Worker, reason: str) -> None:
        """SIGTERM, then SIGKILL after ``KILL_GRACE_S``; at once if it was already stopping."""
        if worker.kill_at is not None:
            return
        now = time.monotonic()
        if worker.stopping is not None:
            worker.kill_at = now
            error_log.error("Killing worker process [%d] (%s)", worker.pid, reason)
            return
        worker.stopping = reason
        worker.kill_at = now + KILL_GRACE_S
        error_log.error(
            "Terminating worker process [%d] (%s); SIGKILL in %gs", worker.pid, reason, KILL_GRACE_S
        )
        self._signal(worker, signal.SIGTERM)

    def _signal(self, worker: _Worker, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if worker.process.exitcode is None:
                os.kill(worker.pid, sig)

    def _reap(self, worker: _Worker) -> None:
        code = worker.process.exitcode
        assert code is not None
        self.workers.remove(worker)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(worker.process.sentinel)
        if not worker.pipe.closed:
            self._selector.unregister(worker.pipe)
            worker.pipe.close()
        worker.process.join()
        worker.process.close()
        with contextlib.suppress(ValueError):
            self._retire.remove(worker)
        if self._incoming is not None and self._incoming.replaces is worker:
            self._incoming.replaces = None  # the replacement simply takes its place
        if worker is self._incoming:
            self._incoming = None
        status = _describe_exit(code)
        if not worker.ready and (worker.stopping is None or worker.failed_start):
            error_log.error("Worker process [%d] failed to start: %s", worker.pid, status)
            if not worker.failed_start:
                self._startup_failed(code)
        elif worker.stopping is not None:
            error_log.info("Worker process [%d] stopped: %s", worker.pid, status)
        else:
            error_log.error("Worker process [%d] died: %s; replacing it", worker.pid, status)

    def _startup_failed(self, code: int) -> None:
        if self.reload:
            if not (self._stopping or self._waiting_for_change):
                error_log.error("Waiting for a file change before starting again")
                self._waiting_for_change = True
            return
        if not self._stopping:
            error_log.error("A worker failed to start: stopping (no restart loop)")
            self.exit_code = code if code > 0 else STARTUP_FAILED_EXIT_CODE
            self._stop_all("a worker failed to start")

    def _stop_all(self, reason: str) -> None:
        self._stopping = True
        self._retire.clear()
        for worker in list(self.workers):
            self._stop(worker, reason)

    def _active(self) -> list[_Worker]:
        """The workers that count towards ``target``: not stopping, not a replacement yet."""
        return [w for w in self.workers if w.stopping is None and w.replaces is None]

    def _keep_workers(self) -> None:
        if self._stopping or self._waiting_for_change:
            return
        reason = f"keeping {self.target} workers" if self._started else "start"
        self._started = True
        if self.reload:
            if not self.workers:
                self._spawn(reason)
            return
        active = self._active()
        for _ in range(self.target - len(active)):
            self._spawn(reason)
        if len(active) > self.target:
            oldest = min(active, key=lambda w: w.started_at)
            self._stop(oldest, f"keeping {self.target} workers")
        if self._incoming is None:
            while self._retire:
                old = self._retire.popleft()
                if old.stopping is None and old in self.workers:
                    self._incoming = self._spawn(f"to replace [{old.pid}]: {old.retire_reason}")
                    self._incoming.replaces = old
                    break

    def _queue_retire(self, worker: _Worker, reason: str) -> None:
        if self._stopping or worker.stopping is not None or worker in self._retire:
            return
        if self.reload:  # one worker, restarted on change: retiring stops it, new after old
            self._stop(worker, reason)
            return
        worker.retire_reason = reason
        self._retire.append(worker)

    def _check_health(self, now: float) -> None:
        healthcheck = self.config.timeout_worker_healthcheck
        for worker in list(self.workers):
            if worker.kill_at is not None:
                if now >= worker.kill_at and worker.process.exitcode is None:
                    error_log.error("Killing worker process [%d] with SIGKILL", worker.pid)
                    self._signal(worker, signal.SIGKILL)
                    worker.kill_at = now + 3600.0  # once; its sentinel says when it is gone
                continue
            if worker.heard_at is None:
                silent_s, limit_s, flag = (
                    now - worker.started_at,
                    self.config.timeout_notify,
                    ("--timeout-notify"),
                )
            else:
                silent_s, limit_s, flag = (
                    now - worker.heard_at,
                    healthcheck,
                    ("--timeout-worker-healthcheck"),
                )
            if silent_s > limit_s:
                failed_start = not worker.ready and worker.stopping is None
                self._kill(worker, f"silent for {silent_s:.1f}s: {flag} is {limit_s:g}s")
                if failed_start:  # decided now, or this tick would start a replacement
                    worker.failed_start = True
                    self._startup_failed(STARTUP_FAILED_EXIT_CODE)

    def _check_rss(self, limit_mib: float) -> None:
        for worker in self._active():
            if not worker.ready or worker in self._retire:
                continue
            rss = rss_mib(worker.pid)
            if rss is not None and rss > limit_mib:
                self._queue_retire(
                    worker, f"its memory {rss:.0f} MiB is above --workers-max-rss {limit_mib:g}"
                )

    # signals and reload

    def _install_signal_handlers(self) -> Callable[[], None]:
        previous = {sig: signal.signal(sig, _queue_signal) for sig in SUPERVISOR_SIGNALS}
        old_wakeup = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)

        def restore() -> None:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _handle_signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if sig in (signal.SIGINT, signal.SIGTERM):
            if self._stopping:
                error_log.warning("Received %s again: cutting what the workers still run", name)
                for worker in self.workers:
                    self._signal(worker, signal.SIGTERM)
                return
            error_log.info("Received %s: stopping the workers gracefully", name)
            self._stop_all(f"received {name}")
        elif self._stopping:
            return
        elif sig == signal.SIGHUP:
            if self.reload:
                self._reload([])
                return
            active = self._active()
            error_log.info("Received SIGHUP: restarting %d workers, new before old", len(active))
            for worker in active:
                self._queue_retire(worker, "SIGHUP")
        elif sig == signal.SIGTTIN and not self.reload:
            self.target += 1
            error_log.info("Received SIGTTIN: %d workers", self.target)
        elif sig == signal.SIGTTOU and not self.reload:
            if self.target > 1:
                self.target -= 1
                error_log.info("Received SIGTTOU: %d workers", self.target)
            else:
                error_log.warning("Received SIGTTOU: one worker left; keeping it")

    def _start_watcher(self) -> None:
        from .reload import make_watcher

        config = self.config

        def wake() -> None:
            with contextlib.suppress(BlockingIOError):
                os.write(self._wake_w, b"\0")

        self._watcher = make_watcher(
            config.reload_watcher,
            config.reload_dirs,
            config.reload_includes,
            config.reload_excludes,
            config.reload_delay,
            wake,
        )
        self._watcher.start()
        dirs = ", ".join(str(root) for root in self._watcher.roots)
        error_log.info("Watching %s for changes (%s watcher)", dirs, self._watcher.name)

    def _reload(self, changed: list[Any]) -> None:
        if self._stopping:
            return
        names = ", ".join(f"'{path}'" for path in changed[:5]) or "SIGHUP"
        error_log.warning("Detected changes in %s. Reloading...", names)
        self._waiting_for_change = False
        for worker in list(self.workers):
            self._stop(worker, "reload")

    def _close(self, restore: Callable[[], None], created: bool) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        for worker in list(self.workers):  # only after an error in this loop
            self._signal(worker, signal.SIGKILL)
            worker.process.join()
        restore()
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        if self._listener is not None:
            self._listener.close()
        if created and self.config.uds is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.config.uds)


def _queue_signal(signum: int, frame: Any) -> None:
    """Nothing: ``set_wakeup_fd`` has written the signal's number to the self-pipe, which the
    loop reads. A Python handler is needed all the same, or the default action would run."""


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def rss_mib(pid: int) -> float | None:
    """A process's resident memory in MiB (Linux ``/proc``); None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as file:
            for line in file:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


__all__ = ["Supervisor", "serve"]
