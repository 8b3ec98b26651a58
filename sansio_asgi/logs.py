"""Logging: the ``sansio_asgi.error`` and ``sansio_asgi.access`` loggers.

The core reports facts as events (a response completed, a request was rejected, an app broke
a rule); ``report`` turns them into log records, once, for every driver. Text the client
controls (the request target) is escaped so it cannot forge log lines.
"""

from __future__ import annotations

import logging
import sys

from .core.events import AppMisbehaved, Event, RequestRejected, ResponseCompleted

error_log = logging.getLogger("sansio_asgi.error")
access_log = logging.getLogger("sansio_asgi.access")

LOG_LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}


def escape(data: bytes) -> str:
    """Client bytes as printable ASCII: control characters and non-ASCII become escapes."""
    text = data.decode("ascii", "backslashreplace")
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def format_client(client: tuple[str, int] | None) -> str:
    if client is None:
        return "-"
    return f"{client[0]}:{client[1]}"


def report(event: Event) -> None:
    """Log one fact event from the core."""
    if type(event) is ResponseCompleted:
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                '%s - "%s %s HTTP/%s" %d',
                format_client(event.client),
                event.method,
                escape(event.target),
                event.http_version,
                event.status,
            )
    elif type(event) is RequestRejected:
        error_log.warning(
            "Invalid HTTP request from %s: %d %s",
            format_client(event.client),
            event.status,
            escape(event.reason.encode("utf-8", "backslashreplace")),
        )
    elif type(event) is AppMisbehaved:
        error_log.error("%s", event.reason)


def configure_logging(level: str, *, access: bool) -> None:
    """Console logging in the style of uvicorn: ``INFO:     message``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)-9s %(message)s"))
    root = logging.getLogger("sansio_asgi")
    root.handlers[:] = [handler]
    root.setLevel(LOG_LEVELS[level])
    root.propagate = False
    access_log.disabled = not access
