"""Starting the server under test, waiting for it, reading its probes' log, and stopping it.

The command is the user's, with ``{app}``, ``{port}`` and ``{host}`` filled in. It must exec the
server itself: the process the suite starts is the one it asks to stop, so a wrapper that does
not pass SIGTERM on (a shell running it as a child, say) hides the server's graceful shutdown.

That process runs in a session of its own, as the leader of a new process group. The graceful
stop signal goes to the server's own PID (``checks.common.ask_to_stop``), as ``kill``,
``docker stop`` and systemd deliver it; a server with workers passes it on itself. Cleanup
(``ServerProcess.kill``) goes to the whole group, workers included. The leader is not reaped
until that cleanup is done (``Leader``): until then its PID, which is the group's id, cannot be
reused, so no signal can reach an unrelated process that got the number.

The probes find their event log through ``CONFORMANCE_LOG``. The server's Python imports them as
``conformance.probes`` (``{app}`` is ``conformance.probes:app``), and they use the standard library
alone, so any server's environment can load them. From a checkout, the folder holding
``conformance/`` is put first on ``PYTHONPATH``, as is the checkout's sansio_asgi. Installed, the
suite is ``sansio_asgi.conformance`` and its parent is the ``sansio_asgi`` package. That folder
on the path would turn ``core``, ``logs`` or ``config`` into top-level modules that shadow the
server's own, and importing the probes through ``sansio_asgi`` would run its ``__init__``, which
imports the core with h11, h2 and wsproto: the server's environment need not have them. So each
server gets a folder of its own holding one entry, ``conformance``, a link to the installed
suite (a copy of the probes where links cannot be made), and that folder goes first on
``PYTHONPATH`` (``probe_path``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# A checkout: conformance/ beside sansio_asgi/ and the project's pyproject.toml (an editable
# install's sansio_asgi.conformance is this folder too). Installed, ROOT is the sansio_asgi package.
CHECKOUT = (ROOT / "pyproject.toml").is_file() and (ROOT / "sansio_asgi").is_dir()
POLL_S = 0.02
TERM_GRACE_S = 5.0  # from SIGTERM to SIGKILL when ``kill`` stops a server still running
KILL_WAIT_S = 5.0  # the longest ``kill`` waits for the leader to go after SIGKILL
CAN_PEEK = hasattr(os, "waitid")  # os.waitid: not on macOS before Python 3.13


class ServerError(Exception):
    """The server under test could not be started."""


def free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def format_command(template: str, app: str, host: str, port: int) -> list[str]:
    if "{app}" not in template or "{port}" not in template:
        raise ServerError("--server: the command must contain {app} and {port}")
    return [
        part.replace("{app}", app).replace("{port}", str(port)).replace("{host}", host)
        for part in shlex.split(template)
    ]


def probe_path(folder: Path) -> Path:
    """The folder to put first on the server's ``PYTHONPATH`` so that it imports
    ``conformance.probes``, and nothing of sansio_asgi, from this suite: ``folder`` (made
    here; it must live as long as the server), or the checkout's root."""
    if CHECKOUT:
        return ROOT
    folder.mkdir()
    package = folder / "conformance"
    try:
        package.symlink_to(HERE, target_is_directory=True)
    except OSError:  # no symbolic links here: the probes are all the server imports
        package.mkdir()
        shutil.copy2(HERE / "__init__.py", package)
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(HERE / "probes", package / "probes", ignore=ignore)
    return folder


def _exit_status(result: os.waitid_result) -> int:
    """A ``waitid`` result as a ``Popen.returncode``: the exit status, or -signal."""
    if result.si_code == os.CLD_EXITED:
        return result.si_status
    return -result.si_status


class Leader(subprocess.Popen[bytes]):
    """The server's process, left a zombie when it exits until ``reap``.

    ``poll`` and ``wait`` see the exit (and set ``returncode``) with ``os.waitid(WNOWAIT)``,
    which does not reap: while the leader is unreaped its PID, the id of the server's process
    group, cannot be reused, so ``os.killpg(pid)`` still reaches the server's workers and
    nothing else. Where ``os.waitid`` is missing, they reap as ``Popen``'s do (``reaped``).
    """

    reaped = False

    def poll(self) -> int | None:
        if not CAN_PEEK or self.reaped:
            self.reaped = super().poll() is not None
            return self.returncode
        if self.returncode is None:
            try:
                result = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:  # reaped behind our back: Popen says 0 then too
                self.reaped, self.returncode = True, 0
            else:
                if result is not None:
                    self.returncode = _exit_status(result)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not CAN_PEEK or self.reaped:
            returncode = super().wait(timeout)
            self.reaped = True
            return returncode
        deadline = None if timeout is None else time.monotonic() + timeout
        while (status := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            time.sleep(POLL_S)
        return status

    def reap(self) -> None:
        """Reap the leader if it has exited (without waiting); after this, no group signal."""
        if self.reaped or self.poll() is None:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        self.reaped = True


class ServerProcess:
    """One running server; ``kill()`` stops it, whatever state it is in."""

    def __init__(self, template: str, app: str, host: str, env: dict[str, str] | None = None):
        self.app = app
        self.host = host
        self.port = free_port(host)
        self.argv = format_command(template, app, host, self.port)
        self._dir = tempfile.TemporaryDirectory(prefix="conformance-")
        try:
            probes = probe_path(Path(self._dir.name) / "path")
        except OSError as exc:
            self._dir.cleanup()
            raise ServerError(f"cannot make the probes importable: {exc}") from None
        self.log_path = Path(self._dir.name) / "events.jsonl"
        self.log_path.touch()
        self.output_path = Path(self._dir.name) / "output.txt"
        environment = dict(os.environ)
        environment.update(env or {})
        environment["CONFORMANCE_LOG"] = str(self.log_path)
        environment["PYTHONUNBUFFERED"] = "1"
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(probes), *filter(None, [environment.get("PYTHONPATH")])]
        )
        self._output = self.output_path.open("wb")
        try:
            self.process = Leader(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._output,
                stderr=subprocess.STDOUT,
                env=environment,
                start_new_session=True,
            )
        except OSError as exc:
            self._output.close()
            self._dir.cleanup()
            raise ServerError(f"--server: cannot run {self.argv[0]!r}: {exc}") from None

    # -- lifecycle

    def wait_ready(self, timeout_s: float) -> None:
        """Poll until the port accepts, or raise if the process exits or time runs out."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise ServerError(
                    f"the server exited with {self.process.returncode} before accepting "
                    f"connections; its output:\n{self.output()[-2000:]}"
                )
            with contextlib.suppress(OSError), self.connect(0.5):
                return
            if time.monotonic() > deadline:
                raise ServerError(
                    f"nothing accepted on {self.host}:{self.port} within {timeout_s:g} s; "
                    f"its output:\n{self.output()[-2000:]}"
                )
            time.sleep(POLL_S)

    def signal(self, name: str = "TERM") -> None:
        """Send SIG``name`` to the server's process group (nothing once the leader is reaped:
        its PID, the group's id, may then be another process's)."""
        if self.process.reaped:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, getattr(signal, f"SIG{name}"))

    def wait_exit(self, timeout_s: float) -> int | None:
        """The exit status, or None if the server is still running at the deadline."""
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """Stop the server whole, whatever state it is in: SIGTERM to the group if the leader
        still runs, SIGKILL after ``TERM_GRACE_S``, then SIGKILL to the group for workers that
        outlived the leader, all before the leader is reaped (where ``os.waitid`` is missing,
        a leader that exited has been reaped, and its workers get the SIGTERM only). The output
        file and the temporary folder go whatever happens."""
        try:
            if self.process.poll() is None:
                self.signal("TERM")
                if self.wait_exit(TERM_GRACE_S) is None:
                    self.signal("KILL")
                    self.wait_exit(KILL_WAIT_S)
            self.signal("KILL")  # workers of a server whose leader is gone
            self.process.reap()
        finally:
            self._output.close()
            self._dir.cleanup()

    # -- talking to it

    def connect(self, timeout_s: float) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=timeout_s)

    def output(self) -> str:
        self._output.flush()
        return self.output_path.read_bytes().decode("utf-8", "replace")

    def all_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.log_path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
        return events

    def events(self, probe_id: str) -> list[dict[str, Any]]:
        return [event for event in self.all_events() if event.get("probe") == probe_id]

    def wait_events(
        self,
        probe_id: str,
        until: Callable[[list[dict[str, Any]]], bool],
        timeout_s: float,
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while True:
            events = self.events(probe_id)
            if until(events) or time.monotonic() > deadline:
                return events
            time.sleep(POLL_S)
