"""What every protocol handler behind ``ServerProtocol`` does the same way.

A handler speaks one protocol on one connection (``http11.HTTP11Handler``,
``http2.HTTP2Handler``, ``websocket.WebSocketHandler``). They differ in what they parse and what
they decide; they share how they talk to the driver, written once here:

* output and events go into lists owned by ``ServerProtocol``, so a hand-over keeps them;
* one deadline at a time (``_deadline``); what it is for follows from the phase;
* reading is paused while anything the core holds is above its limit (``_update_reading``
  asks the handler's ``_wants_pause``), and, for a handler that answers the peer by itself
  (WebSocket: pongs, close frames; HTTP/2: PING and SETTINGS acknowledgements), while the
  driver's unsent output is above its high-water mark: those answers are to what it reads, so
  not reading keeps them bounded. HTTP/1.1 queues output only for the app, whose ``send()``
  already waits, and goes on reading so that a client that leaves is noticed;
* a connection ends by *lingering*: shut down the write side and read (and drop) until the
  peer closes or ``linger_timeout_s`` passes, because closing a socket with unread input makes
  the kernel send a reset that can destroy a response the client has not read yet. TLS cannot
  half-close: there the connection closes once the output is written.
"""

from __future__ import annotations

import enum

from .events import CLOSE_CONNECTION, PAUSE_READING, RESUME_READING, SEND_EOF, Event
from .scope import ConnectionInfo
from .settings import ProtocolSettings


class Phase(enum.Enum):
    """Connection phases. Each handler uses its own subset, drawn in its module docstring."""

    # HTTP/1.1 and HTTP/2
    IDLE = "idle"  # between requests: the keep-alive (or first-request) deadline
    HEADERS = "headers"  # a request head (HTTP/2: the preface) is arriving: the header deadline
    CYCLE = "cycle"  # requests are being served: HTTP/1.1's request-body deadline
    UPGRADED = "upgraded"  # handed over to another handler
    # WebSocket
    HANDSHAKE = "handshake"  # the app has not answered the handshake yet
    DENIAL = "denial"  # the app is sending an HTTP response instead of accepting
    OPEN = "open"  # frames flow: the ping (or pong) deadline
    CLOSING = "closing"  # a close frame was sent: the deadline for the peer's
    # Every handler
    LINGERING = "lingering"  # write side shut, reading and dropping: the linger deadline
    CLOSED = "closed"


class Handler:
    """The base of the protocol handlers; see the module docstring."""

    # Whether reading pauses while the driver's unsent output is above its high-water mark.
    PAUSES_WHILE_WRITING_PAUSED = True

    __slots__ = (
        "_connection",
        "_deadline",
        "_events",
        "_output",
        "_settings",
        "phase",
        "reading_paused",
        "writing_paused",
    )

    def __init__(
        self,
        settings: ProtocolSettings,
        connection: ConnectionInfo,
        *,
        output: list[bytes],
        events: list[Event],
        phase: Phase,
        deadline: float | None,
        reading_paused: bool = False,
        writing_paused: bool = False,
    ) -> None:
        self._settings = settings
        self._connection = connection
        self._output = output
        self._events = events
        self.phase = phase
        self._deadline = deadline
        # The driver's state, as the core last told it (reading) or was told (writing); a
        # hand-over passes both on.
        self.reading_paused = reading_paused
        self.writing_paused = writing_paused

    def next_deadline(self) -> float | None:
        return self._deadline

    def handle_timer(self, now: float) -> None:
        """Act on the deadline if it has passed (calling early is harmless)."""
        deadline = self._deadline
        if deadline is not None and now >= deadline:
            self._deadline_passed(now)

    def _deadline_passed(self, now: float) -> None:
        """What the deadline of the current phase means (overridden)."""

    def send_ready(self, cycle: object) -> bool:
        """Whether the app's ``send()`` may return (HTTP/2: the stream's window let its bytes
        out); the connection's own backpressure is the driver's ``writing_paused``."""
        return True

    @property
    def is_idle(self) -> bool:
        """No request in progress: closing the connection now loses nothing."""
        return self.phase in _IDLE_PHASES

    # ------------------------------------------------------------------ flow control

    def set_writing_paused(self, paused: bool) -> None:
        """The driver's unsent output passed its high-water mark, or drained below the low."""
        self.writing_paused = paused
        self._update_reading()

    def _wants_pause(self) -> bool:
        """Whether the handler holds more than its limits allow (overridden)."""
        return False

    def _update_reading(self) -> None:
        """Pause or resume reading to match the limits. Once closing, always read: what
        arrives is dropped, and the peer's close (frame or EOF) is what the core waits for.
        A closed connection asks nothing more of the driver."""
        if self.phase is Phase.CLOSED:
            return
        pause = self.phase not in _READING_PHASES and (
            (self.writing_paused and self.PAUSES_WHILE_WRITING_PAUSED) or self._wants_pause()
        )
        if pause != self.reading_paused:
            self.reading_paused = pause
            self._events.append(PAUSE_READING if pause else RESUME_READING)
            if not pause:
                self._reading_resumed()

    def _reading_resumed(self) -> None:
        """Reading resumed (overridden: HTTP/1.1 restarts the body clock)."""

    # ------------------------------------------------------------------ ending

    def _linger(self, now: float) -> None:
        """Shut down the write side once the output is written, and read until the peer
        closes or the linger deadline passes; under TLS, which cannot half-close, close."""
        if self.phase is Phase.LINGERING or self.phase is Phase.CLOSED:
            return
        if self._connection.tls is not None:
            # policy: TLS cannot half-close (its close_notify ends both directions), so the
            # staged close of RFC 9112 §9.6 is left out: close once the output is written.
            self._to_closed()
            return
        self.phase = Phase.LINGERING
        self._deadline = now + self._settings.linger_timeout_s
        self._update_reading()
        self._events.append(SEND_EOF)

    def _to_closed(self) -> None:
        self.phase = Phase.CLOSED
        self._deadline = None
        self._events.append(CLOSE_CONNECTION)


_READING_PHASES = frozenset({Phase.CLOSING, Phase.LINGERING, Phase.CLOSED})
# A WebSocket whose close frame is out has nothing left to lose either.
_IDLE_PHASES = frozenset({Phase.IDLE, Phase.UPGRADED, Phase.CLOSING, Phase.LINGERING, Phase.CLOSED})
