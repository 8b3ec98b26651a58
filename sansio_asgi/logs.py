"""Logging: the ``sansio_asgi.error`` and ``sansio_asgi.access`` loggers.

Theory of operation. The core reports facts as events (a response completed, a request was
rejected, an app broke a rule); ``report`` turns them into log records, once, for every
driver. The access line is rendered by an ``AccessFormatter``: a gunicorn-style format string
(``%(h)s - "%(r)s" %(s)s``) parsed once at startup into a ``%``-template and one small getter
per atom it uses, so a line costs one ``%`` operation and only the atoms asked for.

Drivers also log their traffic at the ``TRACE`` level (below ``DEBUG``, like uvicorn) through
``trace_data``, ``trace_message``, ``trace_scope``, ``trace_core_event`` and ``trace_event``;
the direction marks follow websockets: ``<`` came from the client (or, for ASGI messages, went
into the app's ``receive()``), ``>`` went to the client (or came out of the app's ``send()``).
When trace is off each helper is one ``isEnabledFor`` check; drivers cache ``trace_enabled()``
per connection and skip the call. HTTP/2 bytes are traced one line per frame
(``H2FrameTrace``), parsed with hyperframe. Every trace line is also data: a ``TraceRecord`` on
its log record (``record.trace``), which ``JsonFormatter`` writes as one JSON object
(``--trace-format json``) and which ``capture_trace`` hands to a handler (the inspector) without
printing it.

A client can send bad requests as fast as it likes, so the WARNING for a rejected request is
rate-limited (``RejectedRequestLog``): at most ``REJECTED_WARNINGS_PER_INTERVAL`` lines per
``REJECTED_WARNINGS_INTERVAL_S`` per process; the rest are counted and summed up in one line when
the interval has passed or at shutdown (``flush``).

Every piece of text the client controls (target, headers, bodies, a forwarded client address)
is escaped before it reaches a log line, so a request cannot forge or split log lines, nor
smuggle terminal escape sequences. Colors are added by ``DefaultFormatter`` on the console
handler only, never to the record, so a file handler from ``--log-config`` gets plain text.

``configure_logging`` applies the defaults (one console handler on ``sansio_asgi``, which the
two loggers propagate to, and the level), then the user's ``--log-config`` on top, as uvicorn
does; a config that wants the lines elsewhere configures ``sansio_asgi`` (or its children
with ``propagate: false``).
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
import math
import os
import re
import reprlib
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from itertools import islice
from typing import Any, Literal, TextIO

from .core.events import AppMisbehaved, Event, RequestRejected, ResponseCompleted

TRACE = 5  # below DEBUG (10): every byte and every ASGI message, as uvicorn's --log-level trace
logging.addLevelName(TRACE, "TRACE")

error_log = logging.getLogger("sansio_asgi.error")
access_log = logging.getLogger("sansio_asgi.access")

LOG_LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE,
}

TRACE_DATA_BYTES = 200  # of each read or write shown at trace level; the rest is counted
TRACE_PREVIEW_BYTES = 40  # of an ASGI body/bytes/text value shown at trace level
TRACE_VALUE_CHARS = 200  # of any other ASGI message value (a long reason, a scope extension)


def escape(data: bytes) -> str:
    """Client bytes as printable ASCII: control characters and non-ASCII become escapes."""
    text = data.decode("ascii", "backslashreplace")
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _escape_text(text: str) -> str:
    """``escape`` for text that is usually clean already (a method, a client address)."""
    if text.isascii() and text.isprintable():
        return text
    return escape(text.encode("utf-8", "backslashreplace"))


def format_client(client: tuple[str, int] | None) -> str:
    if client is None:
        return "-"
    return f"{client[0]}:{client[1]}"


Getter = Callable[[ResponseCompleted], str]


# -- colors -----------------------------------------------------------------------------------

_RESET = "\x1b[0m"
_LEVEL_COLORS = {
    TRACE: "\x1b[36m",  # cyan
    logging.DEBUG: "\x1b[36m",  # cyan
    logging.INFO: "\x1b[32m",  # green
    logging.WARNING: "\x1b[33m",  # yellow
    logging.ERROR: "\x1b[31m",  # red
    logging.CRITICAL: "\x1b[91m",  # bright red
}
_STATUS_COLORS = {
    1: "\x1b[97m",  # bright white
    2: "\x1b[32m",  # green
    3: "\x1b[33m",  # yellow
    4: "\x1b[31m",  # red
    5: "\x1b[91m",  # bright red
}


def _colored_status(pattern: str) -> Getter:
    def getter(event: ResponseCompleted) -> str:
        color = _STATUS_COLORS.get(event.status // 100)
        text = pattern % event.status
        return f"{color}{text}{_RESET}" if color else text

    return getter


# -- access log format ------------------------------------------------------------------------

DEFAULT_ACCESS_LOG_FORMAT = '%(h)s - "%(r)s" %(s)s'

# ``%%``, or ``%(name)s`` with optional printf flags, width and precision (``%(h)-21s``). Only
# the ``s`` conversion: every atom is text, and one rule is easier to check than six.
_DIRECTIVE = re.compile(r"%(?:%|\((?P<name>[^()]*)\)(?P<spec>[-+ #0]*[0-9]*(?:\.[0-9]+)?)s)")
_HEADER_ATOM = re.compile(r"\{(?P<header>[^{}]+)\}(?P<kind>[io])")

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_log_time(timestamp: float) -> str:
    """Local time in the Apache common log format: ``[24/Nov/2026:10:31:02 +0000]``.

    Month names are always English, whatever the locale, as log parsers expect.
    """
    t = time.localtime(timestamp)
    offset = t.tm_gmtoff // 60
    sign = "-" if offset < 0 else "+"
    hours, minutes = divmod(abs(offset), 60)
    return (
        f"[{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year:04d}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {sign}{hours:02d}{minutes:02d}]"
    )


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str:
    """All values of header ``name`` (lowercase), joined as RFC 9110 allows, or ``-``."""
    values = [value for key, value in headers if key.lower() == name]
    if not values:
        return "-"
    return escape(b", ".join(values))


def _path(target: bytes) -> bytes:
    return target.partition(b"?")[0]


def _microseconds(event: ResponseCompleted) -> int:
    return round(event.duration_s * 1_000_000)


# The atoms. ``T``, ``D`` and ``M`` all derive from the rounded microseconds so they agree.
_ATOMS: dict[str, Getter] = {
    "h": lambda e: _escape_text(format_client(e.client)),
    "l": lambda e: "-",
    "u": lambda e: "-",
    "r": lambda e: (
        f"{_escape_text(e.method)} {escape(e.target)} HTTP/{_escape_text(e.http_version)}"
    ),
    "m": lambda e: _escape_text(e.method),
    "U": lambda e: escape(_path(e.target)),
    "q": lambda e: escape(e.target.partition(b"?")[2]),
    "H": lambda e: f"HTTP/{_escape_text(e.http_version)}",
    "s": lambda e: str(e.status),
    "B": lambda e: str(e.body_bytes),
    "b": lambda e: str(e.body_bytes) if e.body_bytes else "-",
    "f": lambda e: _header(e.request_headers, b"referer"),
    "a": lambda e: _header(e.request_headers, b"user-agent"),
    "T": lambda e: str(_microseconds(e) // 1_000_000),
    "D": lambda e: str(_microseconds(e)),
    "M": lambda e: str(_microseconds(e) // 1_000),
    "L": lambda e: f"{e.duration_s:.6f}",
    "p": lambda e: str(os.getpid()),  # read each time: a forked worker has its own
    "C": lambda e: "-" if e.complete else "X",
}


def _unknown_atom(event: ResponseCompleted) -> str:
    return "-"


class AccessFormatter:
    """An access log format (gunicorn's atoms), compiled once, applied to ``ResponseCompleted``.

    ``%(h)s`` remote address, ``%(l)s`` and ``%(u)s`` ``-``, ``%(t)s`` time the request
    started (Apache format), ``%(r)s`` request line, ``%(m)s`` method, ``%(U)s`` path (raw,
    no query), ``%(q)s`` query string (no ``?``), ``%(H)s`` protocol, ``%(s)s`` status,
    ``%(B)s`` body bytes, ``%(b)s`` body bytes or ``-`` for none, ``%(f)s`` Referer,
    ``%(a)s`` User-Agent, ``%(T)s`` / ``%(M)s`` / ``%(D)s`` duration in whole seconds /
    milliseconds / microseconds, ``%(L)s`` seconds with 6 decimals, ``%(p)s`` process id,
    ``%({name}i)s`` / ``%({name}o)s`` a request / response header (case-insensitive, several
    values joined with ``, ``, ``-`` if absent), and ours: ``%(C)s`` ``-`` when the response
    was complete, ``X`` when it was cut off (Apache's ``%X`` letter). An unknown atom gives
    ``-``; a malformed format (``%d``, a lone ``%``, ``%(h)``) is a ``ValueError``.
    """

    __slots__ = ("_color_getters", "_color_template", "_getters", "_template", "atoms", "fmt")

    def __init__(self, fmt: str, *, clock: Callable[[], float] = time.time) -> None:
        self.fmt = fmt
        template: list[str] = []
        color_template: list[str] = []
        getters: list[Getter] = []
        color_getters: list[Getter] = []
        atoms: list[str] = []
        position = 0
        while (start := fmt.find("%", position)) != -1:
            literal = fmt[position:start].replace("%", "%%")
            template.append(literal)
            color_template.append(literal)
            match = _DIRECTIVE.match(fmt, start)
            if match is None:
                raise ValueError(
                    f"bad directive at position {start} of {fmt!r}: "
                    "use %(name)s for an atom and %% for a percent sign"
                )
            position = match.end()
            name = match["name"]
            if name is None:  # %%
                template.append("%%")
                color_template.append("%%")
                continue
            spec = match["spec"]
            getter = self._getter(name, clock)
            atoms.append(name)
            template.append(f"%{spec}s")
            getters.append(getter)
            if name == "s":  # pad first, then color: escape sequences have no width
                color_template.append("%s")
                color_getters.append(_colored_status(f"%{spec}s"))
            else:
                color_template.append(f"%{spec}s")
                color_getters.append(getter)
        literal = fmt[position:].replace("%", "%%")
        template.append(literal)
        color_template.append(literal)
        self._template = "".join(template)
        self._color_template = "".join(color_template)
        self._getters = tuple(getters)
        self._color_getters = tuple(color_getters)
        self.atoms = tuple(atoms)  # the atom names the format uses, in order

    @staticmethod
    def _getter(name: str, clock: Callable[[], float]) -> Getter:
        if name == "t":
            return lambda e: format_log_time(clock() - e.duration_s)
        header = _HEADER_ATOM.fullmatch(name)
        if header is not None:
            key = header["header"].lower().encode("ascii", "backslashreplace")
            if header["kind"] == "i":
                return lambda e: _header(e.request_headers, key)
            return lambda e: _header(e.response_headers, key)
        return _ATOMS.get(name, _unknown_atom)

    def format(self, event: ResponseCompleted) -> str:
        return self._template % tuple([getter(event) for getter in self._getters])

    def format_colored(self, event: ResponseCompleted) -> str:
        """``format`` with the status code colored by its class, for a terminal."""
        return self._color_template % tuple([getter(event) for getter in self._color_getters])

    def __repr__(self) -> str:
        return f"AccessFormatter({self.fmt!r})"


_access_formatter = AccessFormatter(DEFAULT_ACCESS_LOG_FORMAT)  # what report() uses


# -- console ----------------------------------------------------------------------------------


def stream_supports_color(stream: TextIO) -> bool:
    """Colors by default on a terminal, unless ``NO_COLOR`` is set (https://no-color.org)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR")


class DefaultFormatter(logging.Formatter):
    """uvicorn's console style, ``INFO:     message``, with the level name colored on a terminal.

    Formats add ``%(levelprefix)s`` (``INFO:`` padded to 9 columns). For an access record the
    status code is colored too. Usable from ``--log-config``:
    ``{"()": "sansio_asgi.logs.DefaultFormatter", "use_colors": false}``.
    """

    def __init__(
        self,
        fmt: str | None = None,
        datefmt: str | None = None,
        style: Literal["%", "{", "$"] = "%",
        use_colors: bool | None = None,
    ) -> None:
        self.use_colors = stream_supports_color(sys.stderr) if use_colors is None else use_colors
        super().__init__(fmt or "%(levelprefix)s %(message)s", datefmt, style)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record = copy.copy(record)  # other handlers see the record unchanged
        levelname = record.levelname
        padding = " " * max(0, 8 - len(levelname))
        if self.use_colors:
            color = _LEVEL_COLORS.get(record.levelno)
            if color is not None:
                levelname = f"{color}{levelname}{_RESET}"
            event = record.__dict__.get("event")
            if type(event) is ResponseCompleted:
                record.message = _access_formatter.format_colored(event)
        record.__dict__["levelprefix"] = f"{levelname}:{padding}"
        return super().formatMessage(record)


# -- reporting core events --------------------------------------------------------------------

# A client that floods the server with bad requests must not flood its log: this many WARNING
# lines per interval, then one line with the count of the rest.
REJECTED_WARNINGS_PER_INTERVAL = 10
REJECTED_WARNINGS_INTERVAL_S = 60.0


class RejectedRequestLog:
    """The ``Invalid HTTP request`` warnings: at most ``limit`` per ``interval_s``.

    An interval starts with the first rejection logged after a quiet spell. Rejections beyond
    ``limit`` in it are counted, and the count is logged when the next rejection comes after
    the interval, or by ``flush`` (at shutdown). ``clock`` is monotonic seconds. Drivers report
    from their own threads, so a lock keeps the counts whole.
    """

    def __init__(
        self,
        *,
        limit: int = REJECTED_WARNINGS_PER_INTERVAL,
        interval_s: float = REJECTED_WARNINGS_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.interval_s = interval_s
        self.clock = clock
        self._lock = threading.Lock()
        self._started_at: float | None = None  # of the current interval
        self._logged = 0
        self._suppressed = 0

    def log(self, event: RequestRejected) -> None:
        with self._lock:
            now = self.clock()
            started_at = self._started_at
            if started_at is None or now - started_at >= self.interval_s:
                self._summarize(now)
                self._started_at = now
            if self._logged >= self.limit:
                self._suppressed += 1
                return
            self._logged += 1
        error_log.warning(
            "Invalid HTTP request from %s: %d %s",
            _escape_text(format_client(event.client)),
            event.status,
            _escape_text(event.reason),
        )

    def flush(self) -> None:
        """Log the count of rejections not logged so far, and start afresh."""
        with self._lock:
            self._summarize(self.clock())
            self._started_at = None

    def _summarize(self, now: float) -> None:
        if self._suppressed and self._started_at is not None:
            error_log.warning(
                "%d more invalid requests were not logged in the last %ds",
                self._suppressed,
                max(1, math.ceil(now - self._started_at)),
            )
        self._logged = 0
        self._suppressed = 0


rejected_requests = RejectedRequestLog()  # what report() uses


def flush() -> None:
    """Log what is still held back: the count of invalid requests not logged (at shutdown)."""
    rejected_requests.flush()


def report(event: Event) -> None:
    """Log one fact event from the core."""
    if type(event) is ResponseCompleted:
        if access_log.isEnabledFor(logging.INFO):
            # The event rides on the record: a colored console re-renders the status from it,
            # a custom formatter or filter can use its fields.
            access_log.info("%s", _access_formatter.format(event), extra={"event": event})
    elif type(event) is RequestRejected:
        rejected_requests.log(event)
    elif type(event) is AppMisbehaved:
        # As for the access line: the event rides on the record, for filters and captures.
        error_log.error("%s", _escape_text(event.reason), extra={"event": event})


# -- trace ------------------------------------------------------------------------------------

# Of the bytes of a read or write, and of each bytes or text value of a message or scope, what a
# TraceRecord keeps for a capture (the inspector); the full length is kept beside it.
TRACE_CAPTURE_BYTES = 65_536
# How deep a message or scope value is turned into JSON before the rest is shown as its repr: a
# scope extension may nest, and an app's message may even contain itself.
TRACE_JSON_DEPTH = 8


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One trace line as data: it rides on its log record as ``record.trace``.

    ``kind`` is ``"connection"`` (made, lost), ``"data"`` (bytes read or written),
    ``"frame"`` (an HTTP/2 frame of them), ``"event"`` (an event from the core's
    ``events_received()``), ``"scope"`` (the scope of an app call, as it starts) or
    ``"message"`` (an ASGI message into ``receive()`` or out of ``send()``). ``direction`` is
    ``<`` from the client (into ``receive()``), ``>`` to the client (out of ``send()``), ``""``
    for connection, event and scope. ``summary`` is the text line after the connection and the
    direction. ``data`` holds at most ``TRACE_CAPTURE_BYTES`` of the bytes, ``size`` their full
    length. ``detail`` is JSON-safe (str, int, float, bool, None, lists, dicts; bytes as text
    decoded as latin-1, lossless, capped at ``TRACE_CAPTURE_BYTES`` with a ``<key>_size``
    sibling giving the full length when cut). A ``"message"``'s detail keeps apart what JSON
    would merge: where the value's Python type is not the one ASGI gives its key, a
    ``<key>_type`` sibling names it: ``"body_type": "str"`` (or ``bytes_type``) for a str body,
    ``"headers_type": "str"`` when a header name or value is a str, ``"text_type": "bytes"``
    for a bytes text. A value that cannot be shown (its iteration or repr raises, an int too
    long for ``str``) is a placeholder such as ``"<Bad object>"``. A scope's ``state`` is a
    short repr (at most ``TRACE_VALUE_CHARS``, built without walking a large state). A
    ``StartApp`` event's detail leaves its scope out (the ``"scope"`` record follows it).
    ``obj`` is, for a scope, the dict the app received, and for an event, the event itself.
    ``cycle`` is the core's cycle (an ``HTTPCycle`` or ``WebSocketCycle``: one app call) the
    record belongs to: on a ``"scope"`` and a ``"message"``, and on an event that names one
    (``StartApp``, ``WakeApp``, ``OpenFile``, ``SendFile``, ``FeedFile``). HTTP/2 runs several
    app calls on one connection at once, and the cycle is what tells their messages apart (a
    ``ResponseCompleted`` names none, but its ``request_headers`` is the very list of its
    scope's ``"headers"``). ``obj`` and ``cycle`` are for consumers in this process; neither
    is ever rendered.
    """

    time: float
    connection: str
    kind: str
    direction: str
    summary: str
    protocol: str = "http/1.1"
    data: bytes = b""
    size: int = 0
    detail: Mapping[str, Any] = field(default_factory=dict)
    obj: Any = None
    cycle: Any = None


def trace_enabled() -> bool:
    """Whether trace lines would be logged; drivers ask once per connection."""
    return error_log.isEnabledFor(TRACE)


def _printable(text: str) -> str:
    """Escape what could break a log line out of text that is (already) mostly escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _preview(data: bytes | bytearray | memoryview, limit: int) -> str:
    shown = bytes(data[:limit])
    rest = len(data) - len(shown)
    text = repr(shown)  # a bytes repr is printable ASCII
    return f"{text}…(+{rest} bytes)" if rest > 0 else text


def _log_trace(record: TraceRecord) -> None:
    """Log ``record`` as its text line, ``connection [direction] summary``."""
    if record.direction:
        error_log.log(
            TRACE,
            "%s %s %s",
            _printable(record.connection),
            record.direction,
            record.summary,
            extra={"trace": record},
        )
    else:
        error_log.log(
            TRACE, "%s %s", _printable(record.connection), record.summary, extra={"trace": record}
        )


def _safe_repr(value: Any) -> str:
    """``repr`` capped, and never raising: an app's object may have a broken one."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} object>"
    return text[:TRACE_CAPTURE_BYTES]


def _safe_ascii(value: Any) -> str:
    """``ascii`` that never raises: tracing must not make an app's call fail."""
    try:
        return ascii(value)
    except Exception:
        return f"<{type(value).__name__} object>"


class _ShortRepr(reprlib.Repr):
    """``reprlib`` that takes a mapping's or set's first items as they come: the stock one
    sorts them all first, which costs as much as the full repr for a large cache."""

    def repr_dict(self, x: Any, level: int) -> str:
        if not x:
            return "{}"
        if level <= 0:
            return "{" + self.fillvalue + "}"
        pieces = [
            f"{self.repr1(key, level - 1)}: {self.repr1(x[key], level - 1)}"
            for key in islice(x, self.maxdict)
        ]
        if len(x) > self.maxdict:
            pieces.append(self.fillvalue)
        return "{" + ", ".join(pieces) + "}"

    def _unsorted(self, x: Any, level: int, left: str, right: str) -> str:
        if not x:
            return f"{type(x).__name__}()"
        if level <= 0:
            return left + self.fillvalue + right
        pieces = [self.repr1(item, level - 1) for item in islice(x, self.maxset)]
        if len(x) > self.maxset:
            pieces.append(self.fillvalue)
        return left + ", ".join(pieces) + right

    def repr_set(self, x: Any, level: int) -> str:
        return self._unsorted(x, level, "{", "}")

    def repr_instance(self, x: Any, level: int) -> str:
        text = _safe_repr(x)  # the placeholder of ``_safe_repr`` when it raises, as elsewhere
        if len(text) > self.maxother:
            return text[: self.maxother - 3] + "..."
        return text

    def repr_frozenset(self, x: Any, level: int) -> str:
        return self._unsorted(x, level, "frozenset({", "})")


_short_repr = _ShortRepr()
_short_repr.maxlevel = 3
_short_repr.maxdict = _short_repr.maxlist = _short_repr.maxtuple = _short_repr.maxset = 8
_short_repr.maxstring = _short_repr.maxother = 60
_short_repr.maxlong = 60


def _state_repr(value: Any) -> str:
    """A scope's ``state`` (the lifespan state the app shares: its pools, caches, tokens) as a
    short repr: a few entries, cut at ``TRACE_VALUE_CHARS``, at a cost that does not grow with
    the state."""
    try:
        text = _short_repr.repr(value)
    except Exception:
        text = f"<{type(value).__name__} object>"
    if len(text) > TRACE_VALUE_CHARS:
        return text[:TRACE_VALUE_CHARS] + "…"
    return text


# An int longer than this many bits has more digits than ``str()`` converts by default
# (``sys.get_int_max_str_digits``: 4300), so neither its repr nor JSON could show it.
_INT_SHOWN_BITS = 14_000


def _jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON-safe data: bytes as latin-1 text, tuples as lists, anything else (and
    anything nested deeper than ``TRACE_JSON_DEPTH``) as its repr."""
    if value is None or isinstance(value, (bool, str)):
        if isinstance(value, str) and len(value) > TRACE_CAPTURE_BYTES:
            return value[:TRACE_CAPTURE_BYTES]
        return value
    if isinstance(value, int):
        if value.bit_length() > _INT_SHOWN_BITS:
            return f"<int of {value.bit_length()} bits>"
        return int(value)  # an int subclass's own repr is not what JSON writes
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)  # JSON has no NaN or Infinity
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value[:TRACE_CAPTURE_BYTES]).decode("latin-1")
    if depth >= TRACE_JSON_DEPTH:
        return _safe_repr(value)
    try:
        if isinstance(value, Mapping):
            return _jsonable_fields(value.items(), depth + 1)
        if isinstance(value, (list, tuple)):
            return [_jsonable(item, depth + 1) for item in value]
    except Exception:  # an app's own container whose iteration raises
        pass
    return _safe_repr(value)


def _jsonable_fields(items: Any, depth: int = 0) -> dict[str, Any]:
    """A mapping's items as a JSON object; a bytes or text value cut at ``TRACE_CAPTURE_BYTES``
    gets a ``<key>_size`` sibling with its full length. A ``state`` (the lifespan state the
    app shares) is shown as its repr: it holds the app's own objects."""
    fields: dict[str, Any] = {}
    for key, value in items:
        name = key if isinstance(key, str) else _safe_repr(key)
        if name == "state" and depth == 0:
            fields[name] = _state_repr(value)
        else:
            fields[name] = _jsonable(value, depth)
            cut = isinstance(value, (bytes, bytearray, memoryview, str))
            if cut and len(value) > TRACE_CAPTURE_BYTES:
                fields[f"{name}_size"] = len(value)
    return fields


def trace_data(
    connection: str,
    direction: str,
    data: bytes | bytearray | memoryview,
    *,
    protocol: str = "http/1.1",
) -> None:
    """Trace bytes read (``<``) or written (``>``): ``127.0.0.1:50432 < 78 bytes b'GET /...'``.

    ``protocol`` is what the connection speaks (the core's ``protocol``). HTTP/2 is traced one
    line per frame (see ``H2FrameTrace``), and so is a read that opens with the HTTP/2 preface
    whatever ``protocol`` says: the driver traces a read before the core has seen it.
    """
    if error_log.isEnabledFor(TRACE):
        now = time.time()
        if protocol == "h2" or (direction == "<" and bytes(data[: len(H2_PREFACE)]) == H2_PREFACE):
            for part in h2_frames.parts(connection, direction, bytes(data)):
                _log_trace(
                    TraceRecord(
                        now,
                        connection,
                        part.kind,
                        direction,
                        part.summary,
                        "h2",
                        bytes(part.data[:TRACE_CAPTURE_BYTES]),
                        len(part.data),
                        part.detail,
                    )
                )
            return
        _log_trace(
            TraceRecord(
                now,
                connection,
                "data",
                direction,
                f"{len(data)} bytes {_preview(data, TRACE_DATA_BYTES)}",
                protocol,
                bytes(data[:TRACE_CAPTURE_BYTES]),
                len(data),
            )
        )


# -- trace: capture and JSON ------------------------------------------------------------------

TRACE_FORMATS = ("text", "json")

_captures: list[logging.Handler] = []
_captures_lock = threading.Lock()
_level_before_capture = logging.NOTSET  # of ``sansio_asgi.error``, put back by the last release


def capture_trace(handler: logging.Handler) -> None:
    """Hand ``handler`` every record of ``sansio_asgi.error`` from ``TRACE`` up, whatever the
    log level: the trace records carry ``record.trace`` (a ``TraceRecord``).

    The logger is lowered to ``TRACE`` while a capture is attached, and the console handler of
    ``configure_logging`` keeps the configured level, so nothing more is printed (a handler
    from ``--log-config`` without a level of its own would print the trace too). Then
    ``trace_enabled()`` is True: connections made from now on are traced.
    """
    global _level_before_capture
    with _captures_lock:
        if handler in _captures:
            return
        if not _captures:
            _level_before_capture = error_log.level
        _captures.append(handler)
        error_log.addHandler(handler)
        error_log.setLevel(TRACE)


def release_trace(handler: logging.Handler) -> None:
    """Detach a ``capture_trace`` handler; the last one puts the logger's level back."""
    with _captures_lock:
        if handler not in _captures:
            return
        _captures.remove(handler)
        error_log.removeHandler(handler)
        if not _captures:
            error_log.setLevel(_level_before_capture)


class JsonFormatter(logging.Formatter):
    """One JSON object a line, for ``--trace-format json``: a line never breaks, whatever the
    client or the app sent (JSON escapes control characters, and non-ASCII is escaped too).

    A trace record: ``{"time", "level", "connection", "kind", "direction", "protocol",
    "summary", "size", "data", "detail"}`` (``TraceRecord``'s fields; ``data`` decoded as
    latin-1 and cut at ``TRACE_DATA_BYTES`` like the text line's preview, with ``data_size``
    when cut). Any other record: ``{"time", "level", "logger", "message"}``, and
    ``exception`` with the traceback when there is one. Usable from ``--log-config``:
    ``{"()": "sansio_asgi.logs.JsonFormatter"}``.
    """

    def format(self, record: logging.LogRecord) -> str:
        trace = record.__dict__.get("trace")
        line: dict[str, Any]
        if type(trace) is TraceRecord:
            data = trace.data[:TRACE_DATA_BYTES]
            line = {
                "time": trace.time,
                "level": record.levelname,
                "connection": trace.connection,
                "kind": trace.kind,
                "direction": trace.direction,
                "protocol": trace.protocol,
                "summary": trace.summary,
                "size": trace.size,
                "data": data.decode("latin-1"),
            }
            if len(data) < max(trace.size, len(trace.data)):
                line["data_size"] = max(trace.size, len(trace.data))
            line["detail"] = trace.detail
        else:
            line = {
                "time": record.created,
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
            if record.exc_info:
                line["exception"] = self.formatException(record.exc_info)
            elif record.exc_text:
                line["exception"] = record.exc_text
            if record.stack_info:
                line["stack"] = self.formatStack(record.stack_info)
        # ``default``: a detail built elsewhere may hold what JSON cannot; its repr still fits.
        try:
            return json.dumps(line, default=_safe_repr)
        except (ValueError, TypeError, RecursionError):
            # An int too long for ``str``, a cycle: the line still parses, without the detail.
            line["detail"] = {"repr": _safe_repr(line.get("detail"))}
            try:
                return json.dumps(line, default=_safe_repr)
            except (ValueError, TypeError, RecursionError):
                line["detail"] = {"repr": "<unprintable>"}
                return json.dumps(line, default=lambda value: "<unprintable>")


# -- trace: HTTP/2 frames ---------------------------------------------------------------------

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # RFC 9113 §3.4
H2_FRAME_HEADER_BYTES = 9  # RFC 9113 §4.1: length (24 bits), type, flags, stream id (32 bits)
# An unknown frame type is legal (RFC 9113 §5.5: "Implementations MUST ignore unknown or
# unsupported values in all extensible protocol elements"), but the extensions in use (ORIGIN,
# PRIORITY_UPDATE) are small: a header of an unknown type announcing more than this is taken
# for bytes that are not frames (say, HTTP/1.1 sent where HTTP/2 was negotiated).
H2_MAX_EXTENSION_FRAME_BYTES = 16_384
# Frame lines per read, then one line for the rest: a read of 64 KiB can hold 7,000 empty
# frames, and trace should show a flood without becoming one.
TRACE_FRAMES_PER_READ = 100
# Connections whose last read (or write) ended inside a frame, remembered so that the next one
# starts at a frame boundary; the oldest is forgotten beyond this.
TRACE_SPLIT_CONNECTIONS = 1024

_H2_FRAME_NAMES = {
    0x0: "DATA",
    0x1: "HEADERS",
    0x2: "PRIORITY",
    0x3: "RST_STREAM",
    0x4: "SETTINGS",
    0x5: "PUSH_PROMISE",
    0x6: "PING",
    0x7: "GOAWAY",
    0x8: "WINDOW_UPDATE",
    0x9: "CONTINUATION",
    0xA: "ALTSVC",
}


class _Split:
    """Where the last read of one direction ended inside a frame: the start of a frame header
    cut short (``head``), or the body bytes still to come of the frame ``label`` (``detail``
    its record's detail)."""

    __slots__ = ("detail", "head", "label", "remaining")

    def __init__(
        self,
        head: bytes = b"",
        label: str = "",
        remaining: int = 0,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        self.head = head
        self.label = label
        self.remaining = remaining
        self.detail = detail or {}


class H2Part:
    """One trace line of HTTP/2 bytes: ``kind`` ``"frame"`` (a frame, a part of one, the
    preface) or ``"data"`` (bytes that are not frames); ``data`` the bytes of this read it
    covers; ``detail`` as ``TraceRecord.detail``."""

    __slots__ = ("data", "detail", "kind", "summary")

    def __init__(
        self, summary: str, kind: str, detail: Mapping[str, Any], data: bytes | memoryview
    ) -> None:
        self.summary = summary
        self.kind = kind
        self.detail = detail
        self.data = data


class H2FrameTrace:
    """HTTP/2 bytes as trace lines, one per frame, parsed with hyperframe (h2's frame layer).

    ``127.0.0.1:50432 < HEADERS stream=1 flags=END_HEADERS,END_STREAM 34 bytes``. A read can
    end inside a frame: its line says ``(partial frame ...)``, and where the read ended is kept
    per connection and direction so the next read's line for the rest of that frame says so too
    (the connection ``-``, whose peer is unknown, keeps nothing). Bytes that do not parse as
    frames are shown as they are, once, from there to the end of the read; nothing raises.
    Header blocks are HPACK, whose meaning depends on every earlier block: only their sizes
    are shown.

    Each line is a ``H2Part`` whose record detail is ``{"type": "HEADERS", "stream": 1,
    "flags": [...], "length": 34}`` plus the frame's values (``settings``, ``error``,
    ``increment``, ...); a frame cut by the end of a read adds ``here`` (its bytes in this
    read), its rest ``rest`` and ``to_come``. The other lines have the types ``PREFACE``,
    ``partial frame header`` and ``more frames``. The parts' bytes, in order, are the read's.
    """

    def __init__(self, max_connections: int = TRACE_SPLIT_CONNECTIONS) -> None:
        self.max_connections = max_connections
        self._lock = threading.Lock()  # drivers trace from their own threads
        self._splits: dict[tuple[str, str], _Split] = {}  # oldest first

    def forget(self, connection: str) -> None:
        """The connection is new or gone: a split of an earlier one on its address is stale."""
        with self._lock:
            self._splits.pop((connection, "<"), None)
            self._splits.pop((connection, ">"), None)

    def lines(self, connection: str, direction: str, data: bytes) -> list[str]:
        return [part.summary for part in self.parts(connection, direction, data)]

    def parts(self, connection: str, direction: str, data: bytes) -> list[H2Part]:
        key = (connection, direction)
        with self._lock:
            split = self._splits.pop(key, None)
        parts: list[H2Part] = []
        split = self._describe(data, split, parts)
        if not parts:  # nothing read or written: as for HTTP/1.1
            parts.append(
                H2Part(f"{len(data)} bytes {_preview(data, TRACE_DATA_BYTES)}", "data", {}, data)
            )
        if split is not None and connection != "-":
            with self._lock:
                self._splits[key] = split
                while len(self._splits) > self.max_connections:
                    del self._splits[next(iter(self._splits))]
        return parts

    def _describe(self, data: bytes, split: _Split | None, parts: list[H2Part]) -> _Split | None:
        """Append the lines for ``data``; return where it ends inside a frame, if it does."""
        from hyperframe.exceptions import HyperframeError
        from hyperframe.frame import Frame

        position = 0
        old = 0  # bytes at the start of ``data`` that came with an earlier read
        if split is not None and split.remaining:
            here = min(split.remaining, len(data))
            remaining = split.remaining - here
            more = f", {remaining} to come" if remaining else ""
            detail = {**split.detail, "rest": here, "to_come": remaining}
            parts.append(
                H2Part(
                    f"{split.label} (rest of frame: {here} bytes{more})",
                    "frame",
                    detail,
                    data[:here],
                )
            )
            if remaining:
                return _Split(label=split.label, remaining=remaining, detail=split.detail)
            position = here
        else:
            if split is not None:
                old = len(split.head)
                data = split.head + data
            if data.startswith(H2_PREFACE):
                parts.append(
                    H2Part(
                        f"PREFACE {len(H2_PREFACE)} bytes",
                        "frame",
                        {"type": "PREFACE", "length": len(H2_PREFACE)},
                        data[old : len(H2_PREFACE)],
                    )
                )
                position = len(H2_PREFACE)
            elif data and H2_PREFACE.startswith(data):
                parts.append(
                    H2Part(
                        f"{len(data)} bytes (partial preface)",
                        "frame",
                        {"type": "PREFACE", "length": len(H2_PREFACE), "here": len(data)},
                        data[old:],
                    )
                )
                return _Split(head=data)
            elif data.startswith(b"HTTP/1.1 "):  # the 101 of an h2c upgrade, then frames
                end = data.find(b"\r\n\r\n")
                if end >= 0:
                    position = end + 4
                    parts.append(
                        H2Part(
                            f"{position} bytes {_preview(data[:position], TRACE_DATA_BYTES)}",
                            "data",
                            {},
                            data[old:position],
                        )
                    )
        frames = 0
        view = memoryview(data)
        while position < len(data):
            if frames == TRACE_FRAMES_PER_READ:
                return self._count_rest(data, position, parts)
            start = position
            mine = max(start, old)  # this read's bytes from here
            if len(data) - start < H2_FRAME_HEADER_BYTES:
                parts.append(
                    H2Part(
                        f"{len(data) - start} bytes (partial frame header)",
                        "frame",
                        {"type": "partial frame header", "length": len(data) - start},
                        data[mine:],
                    )
                )
                return _Split(head=data[start:])
            body = start + H2_FRAME_HEADER_BYTES
            try:
                frame, length = Frame.parse_frame_header(view[start:body])
                if frame.type not in _H2_FRAME_NAMES and length > H2_MAX_EXTENSION_FRAME_BYTES:
                    raise ValueError("not a frame")
                label = self._label(frame)
                detail = self._head_detail(frame, length)
                end = body + length
                if end > len(data):
                    here = len(data) - body
                    preview = ""
                    if frame.type == 0x0 and "PADDED" not in frame.flags and here:
                        preview = " " + _preview(data[body:], TRACE_PREVIEW_BYTES)
                    parts.append(
                        H2Part(
                            f"{label} {length} bytes (partial frame: {here} here){preview}",
                            "frame",
                            {**detail, "here": here},
                            data[mine:],
                        )
                    )
                    return _Split(label=label, remaining=end - len(data), detail=detail)
                frame.parse_body(view[body:end])
                text, values = self._details(frame)
                part = H2Part(
                    f"{label} {length} bytes{text}", "frame", {**detail, **values}, data[mine:end]
                )
            except (HyperframeError, ValueError, struct.error):  # not frames: show them as bytes
                parts.append(
                    H2Part(
                        f"{len(data) - start} bytes {_preview(data[start:], TRACE_DATA_BYTES)}",
                        "data",
                        {},
                        data[mine:],
                    )
                )
                return None
            parts.append(part)
            frames += 1
            position = end
        return None

    @staticmethod
    def _count_rest(data: bytes, position: int, parts: list[H2Part]) -> _Split | None:
        """One line for the frames past ``TRACE_FRAMES_PER_READ``, walking their headers."""
        start, frames = position, 0
        while len(data) - position >= H2_FRAME_HEADER_BYTES:
            length = int.from_bytes(data[position : position + 3], "big")
            end = position + H2_FRAME_HEADER_BYTES + length
            if end > len(data):
                break
            frames += 1
            position = end
        parts.append(
            H2Part(
                f"{frames} more frames, {position - start} bytes (not shown)",
                "frame",
                {"type": "more frames", "frames": frames, "length": position - start},
                data[start:position],
            )
        )
        if position == len(data):
            return None
        rest = len(data) - position
        if rest < H2_FRAME_HEADER_BYTES:
            parts.append(
                H2Part(
                    f"{rest} bytes (partial frame header)",
                    "frame",
                    {"type": "partial frame header", "length": rest},
                    data[position:],
                )
            )
            return _Split(head=data[position:])
        length = int.from_bytes(data[position : position + 3], "big")
        here = rest - H2_FRAME_HEADER_BYTES
        detail = {"type": "frame", "length": length}
        parts.append(
            H2Part(
                f"{length} bytes (partial frame: {here} here)",
                "frame",
                {**detail, "here": here},
                data[position:],
            )
        )
        return _Split(label="frame", remaining=length - here, detail=detail)

    @staticmethod
    def _label(frame: Any) -> str:
        kind = frame.type
        name = _H2_FRAME_NAMES.get(kind) or f"UNKNOWN(0x{kind:02x})"
        label = f"{name} stream={frame.stream_id}"
        if kind not in _H2_FRAME_NAMES:
            flags = frame.flag_byte
            return f"{label} flags=0x{flags:02x}" if flags else label
        if frame.flags:
            label += f" flags={','.join(sorted(frame.flags))}"
        return label

    @staticmethod
    def _head_detail(frame: Any, length: int) -> dict[str, Any]:
        kind = frame.type
        name = _H2_FRAME_NAMES.get(kind)
        if name is None:
            flags = frame.flag_byte
            return {
                "type": f"UNKNOWN(0x{kind:02x})",
                "stream": frame.stream_id,
                "flags": [f"0x{flags:02x}"] if flags else [],
                "length": length,
            }
        return {
            "type": name,
            "stream": frame.stream_id,
            "flags": sorted(frame.flags),
            "length": length,
        }

    @staticmethod
    def _details(frame: Any) -> tuple[str, dict[str, Any]]:
        """The frame's values, as text for its line and as data for its record."""
        kind = frame.type
        if kind == 0x0:  # DATA
            return (f" {_preview(frame.data, TRACE_PREVIEW_BYTES)}" if frame.data else ""), {}
        if (kind == 0x1 and "PRIORITY" in frame.flags) or kind == 0x2:  # HEADERS, PRIORITY
            exclusive = " exclusive" if frame.exclusive else ""
            # RFC 9113 §6.3: "Add one to the value to obtain a weight between 1 and 256."
            weight = frame.stream_weight + 1
            return f" depends_on={frame.depends_on} weight={weight}{exclusive}", {
                "depends_on": frame.depends_on,
                "weight": weight,
                "exclusive": bool(frame.exclusive),
            }
        if kind == 0x3:  # RST_STREAM
            error = _h2_error(frame.error_code)
            return f" error={error}", {"error": error}
        if kind == 0x4:  # SETTINGS
            settings = {_h2_setting(k): v for k, v in frame.settings.items()}
            return "".join(f" {k}={v}" for k, v in settings.items()), {"settings": settings}
        if kind == 0x5:  # PUSH_PROMISE
            promised = frame.promised_stream_id
            return f" promised_stream={promised}", {"promised_stream": promised}
        if kind == 0x6:  # PING
            opaque = frame.opaque_data.hex()
            return f" opaque={opaque}", {"opaque": opaque}
        if kind == 0x7:  # GOAWAY
            error = _h2_error(frame.error_code)
            text = f" last_stream={frame.last_stream_id} error={error}"
            values: dict[str, Any] = {"last_stream": frame.last_stream_id, "error": error}
            if frame.additional_data:
                text += f" debug={_preview(frame.additional_data, TRACE_PREVIEW_BYTES)}"
                values["debug"] = _jsonable(frame.additional_data)
            return text, values
        if kind == 0x8:  # WINDOW_UPDATE
            return f" increment={frame.window_increment}", {"increment": frame.window_increment}
        return "", {}


def _h2_error(code: int) -> str:
    from h2.errors import ErrorCodes

    try:
        return ErrorCodes(code).name
    except ValueError:  # RFC 9113 §7: "Unknown or unsupported error codes MUST NOT trigger
        return f"0x{code:x}"  # any special behavior."


def _h2_setting(code: int) -> str:
    from h2.settings import SettingCodes

    try:
        return SettingCodes(code).name
    except ValueError:  # RFC 9113 §6.5.2: "An endpoint that receives a SETTINGS frame with any
        return f"0x{code:x}"  # unknown or unsupported identifier MUST ignore that setting."


h2_frames = H2FrameTrace()  # what trace_data uses


def _message_value(key: str, value: Any) -> str:
    if key == "state":
        return _printable(_state_repr(value).encode("ascii", "backslashreplace").decode())
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes {_preview(value, TRACE_PREVIEW_BYTES)}>"
    if key == "text" and isinstance(value, str):
        shown = ascii(value[:TRACE_PREVIEW_BYTES])
        more = "…" if len(value) > TRACE_PREVIEW_BYTES else ""
        return f"<{len(value)} chars {shown}{more}>"
    if key == "headers" and isinstance(value, (list, tuple)):
        text = ascii([tuple(pair) if isinstance(pair, (list, tuple)) else pair for pair in value])
        return _printable(text)  # bytes and str reprs are escaped; a custom repr may not be
    text = _printable(_safe_ascii(value))
    if len(text) > TRACE_VALUE_CHARS:
        return text[:TRACE_VALUE_CHARS] + "…"
    return text


def _message_text(message: Mapping[str, Any]) -> str:
    """``http.request body=<5 bytes b'hello'> more_body=False``: the type, then the fields."""
    fields = " ".join(
        f"{_printable(str(key))}={_message_value(key, value)}"
        for key, value in message.items()
        if key != "type"
    )
    kind = message.get("type")
    kind_text = _printable(kind if isinstance(kind, str) else ascii(kind))
    return f"{kind_text} {fields}" if fields else kind_text


_BYTES_KEYS = ("body", "bytes")  # message keys ASGI types as bytes (headers apart)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _message_detail(message: Mapping[str, Any]) -> dict[str, Any]:
    """``message`` as JSON-safe data, with a ``<key>_type`` sibling where JSON would show a
    str for bytes or bytes for a str (see ``TraceRecord``); never raising."""
    try:
        detail = _jsonable_fields(message.items())
        for key in _BYTES_KEYS:
            if isinstance(message.get(key), str):
                detail[f"{key}_type"] = "str"
        if isinstance(message.get("text"), (bytes, bytearray, memoryview)):
            detail["text_type"] = "bytes"
        headers = message.get("headers")
        if isinstance(headers, (list, tuple)) and any(
            isinstance(pair, (list, tuple)) and any(map(_is_str, pair)) for pair in headers
        ):
            detail["headers_type"] = "str"
        return detail
    except Exception:
        return {"repr": _safe_repr(message)}


def _message_text_safe(message: Mapping[str, Any]) -> str:
    try:
        return _message_text(message)
    except Exception:  # an app's own mapping whose iteration raises
        return _printable(_safe_ascii(message))


def trace_message(
    connection: str,
    direction: str,
    message: Mapping[str, Any],
    *,
    protocol: str = "http/1.1",
    cycle: Any = None,
) -> None:
    """Trace an ASGI message into ``receive()`` (``<``) or out of ``send()`` (``>``) of the app
    call of ``cycle`` (the record's ``cycle``).

    ``127.0.0.1:50432 > http.response.body body=<2 bytes b'OK'> more_body=False``
    """
    if error_log.isEnabledFor(TRACE):
        _log_trace(
            TraceRecord(
                time.time(),
                connection,
                "message",
                direction,
                _message_text_safe(message),
                protocol,
                detail=_message_detail(message),
                cycle=cycle,
            )
        )


def trace_scope(
    connection: str, scope: dict[str, Any], *, protocol: str = "http/1.1", cycle: Any = None
) -> None:
    """Trace the scope of an app call as it starts; the record's ``obj`` is ``scope`` itself,
    its ``cycle`` the cycle of that call (``StartApp.cycle``).

    ``127.0.0.1:50432 scope http asgi={'version': '3.0', ...} http_version='1.1' ...``
    """
    if error_log.isEnabledFor(TRACE):
        _log_trace(
            TraceRecord(
                time.time(),
                connection,
                "scope",
                "",
                f"scope {_message_text(scope)}",
                protocol,
                detail=_jsonable_fields(scope.items()),
                obj=scope,
                cycle=cycle,
            )
        )


def trace_core_event(connection: str, event: Event, *, protocol: str = "http/1.1") -> None:
    """Trace an event of the core's ``events_received()``, before the driver acts on it.

    ``127.0.0.1:50432 event ResponseCompleted client=('127.0.0.1', 50432) method='GET' ...``.
    A ``StartApp``'s scope is left out of the line: the ``scope`` line comes next. The record's
    ``obj`` is ``event``, its ``cycle`` the event's own (``None`` for an event that names none).
    """
    if error_log.isEnabledFor(TRACE):
        name = type(event).__name__
        items = [(f.name, getattr(event, f.name)) for f in dataclass_fields(event)]
        text = " ".join(
            f"{key}={_message_value(key, value)}" for key, value in items if key != "scope"
        )
        detail: dict[str, Any] = {"event": name}
        # The scope is the next record's (kind "scope", with ``obj``); a cycle's repr is short.
        detail.update(_jsonable_fields((key, value) for key, value in items if key != "scope"))
        cycle = detail.get("cycle")
        if isinstance(cycle, str) and len(cycle) > TRACE_VALUE_CHARS:
            detail["cycle"] = cycle[:TRACE_VALUE_CHARS] + "…"
        _log_trace(
            TraceRecord(
                time.time(),
                connection,
                "event",
                "",
                f"event {name} {text}" if text else f"event {name}",
                protocol,
                detail=detail,
                obj=event,
                cycle=getattr(event, "cycle", None),
            )
        )


def trace_event(connection: str, text: str, *, protocol: str = "http/1.1") -> None:
    """Trace a connection event: ``127.0.0.1:50432 connection made``."""
    if error_log.isEnabledFor(TRACE):
        if text in ("connection made", "connection lost"):
            h2_frames.forget(connection)
        _log_trace(
            TraceRecord(
                time.time(),
                connection,
                "connection",
                "",
                _printable(text),
                protocol,
                detail={"event": text.removeprefix("connection ")},
            )
        )


# -- configuration ----------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return _printable(text)


def _read_config(path: str, where: str) -> dict[str, Any] | None:
    """The dictConfig mapping of a ``.json``/``.yaml``/``.yml`` file; ``None`` for INI."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in (".json", ".yaml", ".yml"):
        return None
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{where}: cannot read it: {_one_line(exc)}") from exc
    if suffix == ".json":
        try:
            config = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"{where}: invalid JSON: {_one_line(exc)}") from exc
    else:
        try:
            yaml = importlib.import_module("yaml")
        except ImportError:
            raise ValueError("--log-config: PyYAML is not installed; use JSON or INI") from None
        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"{where}: invalid YAML: {_one_line(exc)}") from exc
    if not isinstance(config, dict):
        raise ValueError(f"{where}: expected a mapping at the top level")
    return config


def load_log_config(path: str) -> None:
    """Apply a logging config file: ``.json``, ``.yaml``/``.yml`` (dictConfig) or INI (fileConfig).

    Loggers the file does not mention stay enabled unless it sets ``disable_existing_loggers``.
    Any failure is a ``ValueError`` with one line naming the path.
    """
    where = f"--log-config {path}"
    config = _read_config(path, where)
    if config is None:
        try:
            with open(path, encoding="utf-8"):  # fileConfig skips a missing file silently
                pass
        except OSError as exc:
            raise ValueError(f"{where}: cannot read it: {_one_line(exc)}") from exc
    import logging.config  # here: only --log-config needs it

    try:
        if config is not None:
            config.setdefault("disable_existing_loggers", False)
            logging.config.dictConfig(config)
        else:
            logging.config.fileConfig(path, disable_existing_loggers=False, encoding="utf-8")
    except Exception as exc:  # a user's config fails in many ways: KeyError, ImportError, ...
        raise ValueError(f"{where}: {type(exc).__name__}: {_one_line(exc)}") from exc


def configure_logging(
    level: str,
    *,
    access: bool,
    access_format: str | None = None,
    use_colors: bool | None = None,
    log_config: str | None = None,
    trace_format: str = "text",
) -> None:
    """Console logging in the style of uvicorn (``INFO:     message``), then ``log_config``.

    ``level`` is a ``LOG_LEVELS`` name; ``access_format`` an ``AccessFormatter`` format;
    ``use_colors`` ``None`` colors when stderr is a terminal; ``trace_format`` ``json`` makes
    every console line a JSON object (``JsonFormatter``). A bad format or config file is a
    ``ValueError`` whose one line names the flag.
    """
    if trace_format not in TRACE_FORMATS:
        raise ValueError(
            f"--trace-format: {trace_format!r} is not one of {', '.join(TRACE_FORMATS)}"
        )
    global _access_formatter
    try:
        formatter = AccessFormatter(access_format or DEFAULT_ACCESS_LOG_FORMAT)
    except ValueError as exc:
        raise ValueError(f"--access-log-format: {exc}") from None
    _access_formatter = formatter

    handler = logging.StreamHandler(sys.stderr)
    if trace_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(DefaultFormatter(use_colors=use_colors))
    # The handler has the level too: a trace capture lowers the logger, not the console.
    handler.setLevel(LOG_LEVELS[level])
    root = logging.getLogger("sansio_asgi")
    root.handlers[:] = [handler]
    root.setLevel(LOG_LEVELS[level])
    root.propagate = False
    access_log.disabled = not access
    if log_config is not None:
        load_log_config(log_config)
        if not access:  # a dictConfig re-enables the loggers it leaves alone
            access_log.disabled = True
