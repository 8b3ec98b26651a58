"""Reading HTTP/1.1 requests: h11, and a fast path that may only defer to it.

Theory of operation
-------------------
``HTTP11Handler`` reads each request through a *reader*: ``receive_data`` feeds it bytes,
``next_event`` returns the next event (``Head``, ``Body``, ``END_OF_REQUEST``, or
``NEED_DATA``), and ``trailing_data`` gives back what follows the request, for the next
request's reader. Two readers exist:

* ``H11Reader`` is h11: the definition of a correct parse, and of every refusal
  (``h11.RemoteProtocolError`` with its status hint).
* ``FastReader`` parses the common case itself, in a couple of compiled regular expressions
  over the whole head: a head that is complete in the buffer, with a token method, an
  origin-form target, ``HTTP/1.1`` or ``HTTP/1.0``, field lines in the strict RFC 9112 grammar
  (CRLF line ends, no obs-fold), exactly the Host fields h11 accepts, at most one
  Content-Length of digits and no Transfer-Encoding; and a body delimited by that
  Content-Length. For anything else, at the first look at the head, it *defers*: an h11
  reader takes the bytes and answers from then on, so the result is h11's.

The rule that keeps the fast path honest: it may only defer, never decide differently. A
differential property (``tests/properties/test_reader_oracle.py``) feeds the same bytes, split
every way, to both readers and requires the same events, the same trailing bytes, or a
deferral. ``ProtocolSettings.http_parser = "h11"`` (``--http h11``, or ``SANSIO_ASGI_HTTP=h11``
in the environment for the settings' default) puts every request on h11.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, Final, Protocol

import h11


class Head:
    """A request head: the request line, and the fields with lowercased names, in order."""

    __slots__ = ("headers", "http_version", "method", "target")

    def __init__(
        self, method: bytes, target: bytes, http_version: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.method = method
        self.target = target
        self.http_version = http_version
        self.headers = headers

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Head) and (
            (self.method, self.target, self.http_version, self.headers)
            == (other.method, other.target, other.http_version, other.headers)
        )

    def __repr__(self) -> str:
        return f"Head({self.method!r}, {self.target!r}, {self.http_version!r}, {self.headers!r})"


class Body:
    """A piece of the request body."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Body) and self.data == other.data

    def __repr__(self) -> str:
        return f"Body({self.data!r})"


class _Marker:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


END_OF_REQUEST: Final = _Marker("END_OF_REQUEST")
NEED_DATA: Final = _Marker("NEED_DATA")

ReaderEvent = Head | Body | _Marker


class RequestReader(Protocol):
    """What the handler needs from a parser; one reader reads one request."""

    def receive_data(self, data: bytes) -> None: ...

    def next_event(self) -> ReaderEvent:
        """The next event; raises ``h11.RemoteProtocolError`` for a request h11 refuses."""
        ...

    @property
    def trailing_data(self) -> bytes:
        """What the reader holds beyond the events it returned."""
        ...


class H11Reader:
    """h11's reading side, its events turned into the reader's."""

    __slots__ = ("_conn",)

    def __init__(self, max_head_bytes: int, data: bytes = b"") -> None:
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=max_head_bytes)
        if data:
            self._conn.receive_data(data)

    def receive_data(self, data: bytes) -> None:
        self._conn.receive_data(data)

    def next_event(self) -> ReaderEvent:
        event: Any = self._conn.next_event()
        kind = type(event)
        if kind is h11.Data:
            return Body(event.data)
        if kind is h11.Request:
            return Head(event.method, event.target, event.http_version, list(event.headers))
        if kind is h11.EndOfMessage:
            return END_OF_REQUEST
        # NEED_DATA, or PAUSED after the end of a request (the handler reads no further).
        return NEED_DATA

    @property
    def trailing_data(self) -> bytes:
        return self._conn.trailing_data[0]


# RFC 9112 §3: request-line = method SP request-target SP HTTP-version CRLF, with the target in
# origin-form (§3.2.1) and the versions served; §5: field-line = field-name ":" OWS
# field-value OWS, the value as h11 reads it (no leading or trailing whitespace, no NUL).
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_VALUE = rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?"
_HEAD = re.compile(
    rb"(" + _TOKEN + rb") (/[\x21-\x7e]*) HTTP/(1\.[01])\r\n"
    rb"((?:" + _TOKEN + rb":[ \t]*" + _VALUE + rb"[ \t]*\r\n)*)\r\n"
)
_FIELDS = re.compile(rb"(" + _TOKEN + rb"):[ \t]*(" + _VALUE + rb")[ \t]*\r\n")
_DIGITS = re.compile(rb"[0-9]{1,20}")  # h11 allows at most 20 digits


class FastReader:
    """The common request, read without h11; anything else deferred to an ``H11Reader``."""

    __slots__ = ("_buffer", "_h11", "_max_head_bytes", "_remaining")

    def __init__(self, max_head_bytes: int) -> None:
        self._max_head_bytes = max_head_bytes
        self._buffer = b""
        self._remaining = -1  # body bytes still to come; -1 before the head
        self._h11: H11Reader | None = None

    @property
    def deferred(self) -> bool:
        """Whether h11 reads this request: the fast path declined it."""
        return self._h11 is not None

    def receive_data(self, data: bytes) -> None:
        if self._h11 is not None:
            self._h11.receive_data(data)
        else:
            self._buffer += data

    def next_event(self) -> ReaderEvent:
        if self._h11 is not None:
            return self._h11.next_event()
        remaining = self._remaining
        if remaining < 0:
            return self._head()
        if remaining == 0:
            return END_OF_REQUEST
        buffer = self._buffer
        if not buffer:
            return NEED_DATA
        if len(buffer) <= remaining:
            self._buffer = b""
            self._remaining = remaining - len(buffer)
            return Body(buffer)
        self._buffer = buffer[remaining:]
        self._remaining = 0
        return Body(buffer[:remaining])

    def _head(self) -> ReaderEvent:
        buffer = self._buffer
        # Only a head that is whole, within the size h11 would wait for, is read here.
        end = buffer.find(b"\r\n\r\n", 0, self._max_head_bytes + 4)
        match = None if end < 0 else _HEAD.fullmatch(buffer, 0, end + 4)
        if match is None:
            return self._defer()
        method, target, version, block = match.groups()
        headers: list[tuple[bytes, bytes]] = []
        hosts = 0
        length = b""
        for name, value in _FIELDS.findall(block):
            name = name.lower()
            if name == b"host":
                hosts += 1
            elif name == b"content-length":
                if length or not _DIGITS.fullmatch(value):
                    return self._defer()
                length = value
            elif name == b"transfer-encoding":
                return self._defer()
            headers.append((name, value))
        # h11: an HTTP/1.1 request has exactly one Host field; no request has two.
        if hosts > 1 or (hosts == 0 and version == b"1.1"):
            return self._defer()
        self._buffer = buffer[match.end() :]
        self._remaining = int(length) if length else 0
        return Head(method, target, version, headers)

    def _defer(self) -> ReaderEvent:
        """Hand everything to h11, which answers from now on."""
        self._h11 = H11Reader(self._max_head_bytes, self._buffer)
        self._buffer = b""
        return self._h11.next_event()

    @property
    def trailing_data(self) -> bytes:
        if self._h11 is not None:
            return self._h11.trailing_data
        return self._buffer


@functools.lru_cache(maxsize=16)  # one per server's settings, not one per connection
def reader_factory(parser: str, max_head_bytes: int) -> Callable[[], RequestReader]:
    """What makes a fresh reader for each request: h11's (``parser == "h11"``), or the fast
    one that defers to it."""
    if parser == "h11":
        return lambda: H11Reader(max_head_bytes)
    return lambda: FastReader(max_head_bytes)
