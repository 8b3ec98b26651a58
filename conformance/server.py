"""Starting the server under test, waiting for it, reading its probes' log, and stopping it.

The command is the user's, with ``{app}``, ``{port}`` and ``{host}`` filled in. It runs in a
session of its own, so that a server with worker processes is stopped whole; the process we
started is the group's leader and every signal goes to its PID's group. The probes find their
event log through ``CONFORMANCE_LOG`` and are importable because the folder holding
``conformance/`` is put first on ``PYTHONPATH``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
POLL_S = 0.02


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


class ServerProcess:
    """One running server; ``kill()`` stops it, whatever state it is in."""

    def __init__(self, template: str, app: str, host: str, env: dict[str, str] | None = None):
        self.app = app
        self.host = host
        self.port = free_port(host)
        self.argv = format_command(template, app, host, self.port)
        self._dir = tempfile.TemporaryDirectory(prefix="conformance-")
        self.log_path = Path(self._dir.name) / "events.jsonl"
        self.log_path.touch()
        self.output_path = Path(self._dir.name) / "output.txt"
        environment = dict(os.environ)
        environment.update(env or {})
        environment["CONFORMANCE_LOG"] = str(self.log_path)
        environment["PYTHONUNBUFFERED"] = "1"
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT), *filter(None, [environment.get("PYTHONPATH")])]
        )
        self._output = self.output_path.open("wb")
        try:
            self.process = subprocess.Popen(
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
        """Send SIG``name`` to the server's process group."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, getattr(signal, f"SIG{name}"))

    def wait_exit(self, timeout_s: float) -> int | None:
        """The exit status, or None if the server is still running at the deadline."""
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.signal("TERM")
            if self.wait_exit(5.0) is None:
                self.signal("KILL")
                self.process.wait(5.0)
        # Workers of a server whose leader is gone.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
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
