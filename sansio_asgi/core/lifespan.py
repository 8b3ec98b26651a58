"""The lifespan protocol (ASGI lifespan spec 2.0): startup before serving, shutdown after.

Theory of operation
-------------------
One ``Lifespan`` per server. The server calls the app once with ``scope`` and hands the app's
``receive``/``send`` to ``message_for_app``/``message_from_app``; the server owns the task and
the clock, this object owns the order and the verdicts:

    IDLE ─start()─▶ STARTING ─startup.complete─▶ STARTED ─shutdown()─▶ STOPPING ─▶ STOPPED
                       │                                                    (complete
                       ├─startup.failed─▶ FAILED                             or failed)
                       └─app raises or returns─▶ UNSUPPORTED (auto) or FAILED (on)

"If an exception is raised when calling the application callable with a lifespan.startup
message or a scope with type lifespan, the server must continue but not send any lifespan
events" (ASGI lifespan spec, "Scope"). Under ``--lifespan on`` the server treats that as a failure.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from . import validate
from .errors import ASGIProtocolError
from .schema import SEND, SPEC

IDLE = "idle"
STARTING = "starting"
STARTED = "started"
FAILED = "failed"
UNSUPPORTED = "unsupported"
STOPPING = "stopping"
STOPPED = "stopped"

CLAUSE = "ASGI lifespan spec"

# What the app may send, and the readers of the two messages that carry a 'message'.
_SEND_TYPES = tuple(
    kind
    for kind in SPEC.ordering["lifespan"].message_types()
    if SPEC.messages[kind].direction == SEND
)
_read_failure = {
    kind: validate.reader(kind, "message")
    for kind in ("lifespan.startup.failed", "lifespan.shutdown.failed")
}


class Lifespan:
    def __init__(self, *, required: bool) -> None:
        self.required = required
        self.state: dict[str, Any] = {}
        self.scope: dict[str, Any] = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        self.phase = IDLE
        self.failure = ""  # why startup or shutdown failed, for the log
        self.shutdown_failed = False
        self._pending: dict[str, Any] | None = None
        self._app_done = False

    @property
    def startup_done(self) -> bool:
        """Startup has an outcome: serve (STARTED, UNSUPPORTED) or stop (FAILED)."""
        return self.phase in (STARTED, FAILED, UNSUPPORTED)

    @property
    def shutdown_done(self) -> bool:
        return self.phase in (STOPPED, FAILED, UNSUPPORTED, IDLE)

    def start(self) -> None:
        self.phase = STARTING
        self._pending = {"type": "lifespan.startup"}

    def shutdown(self) -> None:
        """Ask for shutdown, if startup ran; otherwise there is nothing to shut down."""
        if self.phase == STARTED:
            if self._app_done:  # the app's lifespan call already ended: nobody to tell
                self.phase = STOPPED
                return
            self.phase = STOPPING
            self._pending = {"type": "lifespan.shutdown"}

    def message_for_app(self) -> dict[str, Any] | None:
        message, self._pending = self._pending, None
        return message

    def message_from_app(self, message: MutableMapping[str, Any]) -> None:
        kind = validate.message_type(message)
        read_failure = _read_failure.get(kind)
        failure = read_failure(message)[0] if read_failure is not None else ""
        if self.phase == STARTING and kind == "lifespan.startup.complete":
            self.phase = STARTED
        elif self.phase == STARTING and kind == "lifespan.startup.failed":
            self.phase = FAILED
            self.failure = failure
        elif self.phase == STOPPING and kind == "lifespan.shutdown.complete":
            self.phase = STOPPED
        elif self.phase == STOPPING and kind == "lifespan.shutdown.failed":
            self.phase = STOPPED
            self.shutdown_failed = True
            self.failure = failure
        elif kind.startswith("lifespan."):
            raise ASGIProtocolError(
                f"{kind}: not expected while the lifespan is {self.phase} ({CLAUSE})"
            )
        else:
            raise ASGIProtocolError(validate.unexpected_type(kind, "lifespan", _SEND_TYPES, CLAUSE))

    def app_finished(self, exc: BaseException | None) -> None:
        """The app's lifespan call returned or raised."""
        self._app_done = True
        if self.phase in (STARTING, IDLE):
            # Returning without an answer is how many apps say "not a scope type I serve".
            if not self.required:
                self.phase = UNSUPPORTED
            else:
                self.phase = FAILED
                self.failure = (
                    f"the app raised {type(exc).__name__}: {exc}"
                    if exc is not None
                    else "the app returned before completing startup"
                )
        elif self.phase == STOPPING:
            self.phase = STOPPED
            if exc is not None:
                self.shutdown_failed = True
                self.failure = f"the app raised {type(exc).__name__}: {exc}"

    def timed_out(self) -> None:
        """The server's startup or shutdown timeout passed."""
        if self.phase == STARTING:
            self.phase = FAILED
            self.failure = "startup did not complete in time"
        elif self.phase == STOPPING:
            self.phase = STOPPED
            self.shutdown_failed = True
            self.failure = "shutdown did not complete in time"
