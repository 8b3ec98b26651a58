"""The events a ``ServerProtocol`` hands to its driver.

A driver calls into the core, then drains three things: ``data_to_send()`` (bytes to write),
``events_received()`` (these events) and ``next_deadline()`` (when to call ``handle_timer``).
Every event here is an instruction or a fact; none of them needs any HTTP knowledge to act on.

The events are frozen, slotted, keyword-only dataclasses. Events without fields are singletons
(``PAUSE_READING`` and friends) so the hot path allocates nothing for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cycle import HTTPCycle
    from .websocket import WebSocketCycle


@dataclass(frozen=True, slots=True, kw_only=True)
class StartApp:
    """Call ``app(scope, receive, send)`` for this cycle; pass ``cycle`` back on every call."""

    cycle: HTTPCycle | WebSocketCycle
    scope: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class WakeApp:
    """Something changed for this cycle: a waiting ``receive()`` should ask the core again."""

    cycle: HTTPCycle | WebSocketCycle


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenFile:
    """Resolve a file body for this cycle (``http.response.pathsend`` or
    ``http.response.zerocopysend``), then call ``file_opened(cycle, fd, offset, count, now)``
    or ``file_failed(cycle, exc, now)`` before anything else about the cycle.

    It only ever comes out of the ``message_from_app`` call for a file message: answer it
    within that ``send()``.

    * ``path`` (pathsend): open it read-only; the driver owns that descriptor and closes it
      after ``file_sent`` or on any failure or disconnect. Refuse what is not a regular file.
    * ``file`` (zerocopysend): the app's open file object (``file.fileno()``); the app owns
      it, and the driver never closes it. ``offset`` None is the file's current position (and
      the position moves past the bytes sent); an explicit offset leaves the position alone.
      ``count`` None is to the end of the file; a count past the end is capped at what the
      file holds (the core then checks the length against the response's Content-Length).
    """

    cycle: HTTPCycle
    path: str | None  # pathsend: open this path read-only (the driver owns the fd)
    file: Any | None  # zerocopysend: the app's open file object (the app owns it)
    offset: int | None  # zerocopysend: None is the file's current position
    count: int | None  # zerocopysend: None is to the end of the file


@dataclass(frozen=True, slots=True, kw_only=True)
class SendFile:
    """After writing what ``data_to_send()`` gave, write ``count`` bytes of ``fd`` from
    ``offset`` (``sendfile`` where the transport allows), then call ``file_sent(cycle, now)``.

    It only ever comes out of the ``file_opened`` call made within the app's ``send()``:
    ``send()`` returns once the bytes are written to the socket (the backpressure). A failed
    write is a client that left: call ``receive_eof`` as for any failed write, and raise
    ``ClientDisconnected`` from ``send()``; ``file_sent`` is not called then.
    """

    cycle: HTTPCycle
    fd: int
    offset: int
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedFile:
    """As ``SendFile``, for a protocol that frames the body itself (HTTP/2): read ``count``
    bytes of ``fd`` from ``offset`` in pieces of at most ``read_size_bytes`` and give each to
    ``file_data(cycle, data, now)``, writing ``data_to_send()`` after each and waiting while
    ``send_ready(cycle)`` is False or writing is paused; then call ``file_sent(cycle, now)``.

    It only ever comes out of the ``file_opened`` call made within the app's ``send()``, and
    the descriptor is owned as for ``SendFile``.
    """

    cycle: HTTPCycle
    fd: int
    offset: int
    count: int


@dataclass(frozen=True, slots=True)
class PauseReading:
    """Stop reading from the socket until ``ResumeReading``."""


@dataclass(frozen=True, slots=True)
class ResumeReading:
    """Read from the socket again."""


@dataclass(frozen=True, slots=True)
class SendEOF:
    """After writing what is queued, shut down the write side (half-close) and keep reading.

    The core discards what arrives afterwards and emits ``CloseConnection`` when the peer
    closes or its linger deadline passes: closing a socket with unread input makes the kernel
    send a reset, which can destroy a response the client has not read yet.
    """


@dataclass(frozen=True, slots=True)
class CloseConnection:
    """After writing what is queued, close the connection."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseCompleted:
    """A response finished (or was cut off); the facts an access log or a metric needs."""

    client: tuple[str, int] | None
    method: str
    target: bytes
    http_version: str
    status: int
    body_bytes: int
    duration_s: float
    complete: bool
    request_headers: Sequence[tuple[bytes, bytes]] = ()
    response_headers: Sequence[tuple[bytes, bytes]] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRejected:
    """A request was refused before the app saw it (malformed, too large, too slow)."""

    client: tuple[str, int] | None
    status: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AppMisbehaved:
    """The application broke a rule the server recovered from; ``reason`` is for the error log."""

    reason: str


PAUSE_READING = PauseReading()
RESUME_READING = ResumeReading()
SEND_EOF = SendEOF()
CLOSE_CONNECTION = CloseConnection()

Event = (
    StartApp
    | WakeApp
    | OpenFile
    | SendFile
    | FeedFile
    | PauseReading
    | ResumeReading
    | SendEOF
    | CloseConnection
    | ResponseCompleted
    | RequestRejected
    | AppMisbehaved
)
