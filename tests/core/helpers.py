"""A driver-shaped harness for ``ServerProtocol``: no sockets, no event loop, no mocks.

``Harness`` does what a driver does after every call into the core -- drain ``data_to_send()``
and ``events_received()`` -- and keeps everything it drained, so a test can look at what was
sent and what the driver was told, in order. Time is always an explicit float.

``parse_responses`` reads the bytes back with an h11 *client*, so tests assert on status,
headers and body as a real client would see them (and on exact bytes where exactness matters).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import h11

from sansio_asgi.core import HTTPCycle, ProtocolSettings, ServerProtocol
from sansio_asgi.core.events import Event, OpenFile, SendFile, StartApp

CLIENT = ("127.0.0.1", 50000)
SERVER = ("127.0.0.1", 8000)

E = TypeVar("E")


class Harness:
    """One connection's ``ServerProtocol`` plus everything it has sent and announced."""

    def __init__(
        self,
        settings: ProtocolSettings | None = None,
        *,
        now: float = 0.0,
        scheme: str = "http",
    ) -> None:
        self.settings = settings if settings is not None else ProtocolSettings()
        self.now = now
        self.protocol = ServerProtocol(
            self.settings, client=CLIENT, server=SERVER, scheme=scheme, now=now
        )
        self.sent = b""  # every byte ever drained from data_to_send()
        # Files the harness "opens" for OpenFile, as a driver would (path -> bytes), and the
        # descriptors it handed out (fd -> bytes). ``answer_files`` False leaves OpenFile and
        # SendFile to the test.
        self.files: dict[str, bytes] = {}
        self.answer_files = True
        self._fds: dict[int, bytes] = {}
        self.events: list[Event] = []  # every event ever drained
        self._sent_mark = 0
        self._events_mark = 0

    # -- driving the core (each call drains, like a driver) ---------------------------------

    def _drain(self) -> None:
        self.sent += self.protocol.data_to_send()
        events = self.protocol.events_received()
        self.events.extend(events)
        if self.answer_files:
            for event in events:
                if isinstance(event, OpenFile):
                    self._open_file(event)
                elif isinstance(event, SendFile):
                    self.sent += self._fds[event.fd][event.offset : event.offset + event.count]
                    self.protocol.file_sent(event.cycle, self.now)
                    self._drain()

    def _open_file(self, event: OpenFile) -> None:
        """Answer OpenFile as a driver would, from ``files`` or a ``FakeFile``."""
        if event.path is not None:
            if event.path not in self.files:
                exc = FileNotFoundError(2, "No such file or directory", event.path)
                self.protocol.file_failed(event.cycle, exc, self.now)
                raise exc
            data = self.files[event.path]
            offset, count = 0, len(data)
        else:
            file = event.file
            assert isinstance(file, FakeFile)
            data = file.data
            offset = file.position if event.offset is None else event.offset
            count = max(len(data) - offset, 0)
            if event.count is not None:
                count = min(count, event.count)
            if event.offset is None:
                file.position = offset + count
        fd = 1000 + len(self._fds)
        self._fds[fd] = data
        try:
            self.protocol.file_opened(event.cycle, fd, offset, count, self.now)
        finally:
            self._drain()

    def _now(self, now: float | None) -> float:
        if now is not None:
            self.now = now
        return self.now

    def feed(self, data: bytes, now: float | None = None) -> None:
        self.protocol.receive_data(data, self._now(now))
        self._drain()

    def feed_pieces(self, data: bytes, size: int = 1, now: float | None = None) -> None:
        for i in range(0, len(data), size):
            self.feed(data[i : i + size], now)

    def eof(self, now: float | None = None) -> None:
        self.protocol.receive_eof(self._now(now))
        self._drain()

    def timer(self, now: float) -> None:
        self.protocol.handle_timer(self._now(now))
        self._drain()

    def message_for_app(self, cycle: HTTPCycle) -> dict[str, Any] | None:
        try:
            return self.protocol.message_for_app(cycle)
        finally:
            self._drain()

    def message_from_app(self, cycle: HTTPCycle, message: Any, now: float | None = None) -> None:
        try:
            self.protocol.message_from_app(cycle, message, self._now(now))
        finally:
            self._drain()

    def app_finished(
        self, cycle: HTTPCycle, exc: BaseException | None = None, now: float | None = None
    ) -> None:
        self.protocol.app_finished(cycle, exc, self._now(now))
        self._drain()

    # -- a well-behaved app, step by step -------------------------------------------------

    def start(
        self,
        cycle: HTTPCycle,
        status: int = 200,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        self.message_from_app(
            cycle, {"type": "http.response.start", "status": status, "headers": list(headers)}
        )

    def body(self, cycle: HTTPCycle, body: bytes = b"", more_body: bool = False) -> None:
        self.message_from_app(
            cycle, {"type": "http.response.body", "body": body, "more_body": more_body}
        )

    def respond(
        self,
        cycle: HTTPCycle,
        status: int = 200,
        headers: Iterable[tuple[bytes, bytes]] = (),
        body: bytes = b"",
        now: float | None = None,
    ) -> None:
        self._now(now)
        self.start(cycle, status, headers)
        self.body(cycle, body)

    def read_request(self, cycle: HTTPCycle) -> list[dict[str, Any]]:
        """``receive()`` until the final ``http.request`` or until the core says wait."""
        messages: list[dict[str, Any]] = []
        while True:
            message = self.message_for_app(cycle)
            if message is None:
                return messages
            messages.append(message)
            if message["type"] != "http.request" or not message["more_body"]:
                return messages

    # -- looking at the results ------------------------------------------------------------

    def take_sent(self) -> bytes:
        """The bytes sent since the previous ``take_sent``."""
        data = self.sent[self._sent_mark :]
        self._sent_mark = len(self.sent)
        return data

    def take_events(self) -> list[Event]:
        """The events since the previous ``take_events``."""
        events = self.events[self._events_mark :]
        self._events_mark = len(self.events)
        return events

    def of_type(self, cls: type[E]) -> list[E]:
        return [event for event in self.events if isinstance(event, cls)]

    def start_apps(self) -> list[StartApp]:
        return self.of_type(StartApp)

    def cycle(self, index: int = -1) -> HTTPCycle:
        return self.start_apps()[index].cycle

    def scope(self, index: int = -1) -> dict[str, Any]:
        return self.start_apps()[index].scope


class FakeFile:
    """A file object for zerocopysend: its bytes and a position, as the harness reads them."""

    def __init__(self, data: bytes, position: int = 0) -> None:
        self.data = data
        self.position = position

    def fileno(self) -> int:
        return 99


@dataclass
class Response:
    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    informational: list[int] = field(default_factory=list)
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def get_all(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key == name.lower()]

    def get(self, name: bytes) -> bytes | None:
        values = self.get_all(name)
        assert len(values) <= 1, f"{name!r} appears {len(values)} times: {self.headers}"
        return values[0] if values else None


def parse_responses(
    data: bytes, methods: Sequence[str] = ("GET",), *, eof: bool = True, allow_fewer: bool = False
) -> list[Response]:
    """Parse ``data`` as the responses to requests with ``methods``, with an h11 client.

    Fails if a response is incomplete, or if bytes are left over after the last one (a
    response that must close may not be followed by anything). ``eof`` ends the stream, as a
    close by the server would, which completes a close-delimited body. ``allow_fewer`` accepts
    fewer responses than ``methods`` when the data ends between two responses.
    """
    client = h11.Connection(h11.CLIENT)
    client.receive_data(data)
    if eof:
        client.receive_data(b"")
    responses: list[Response] = []
    for method in methods:
        if client.our_state is not h11.IDLE:
            break
        if allow_fewer and not client.trailing_data[0]:
            break
        client.send(h11.Request(method=method, target="/", headers=[("host", "test")]))
        client.send(h11.EndOfMessage())
        informational: list[int] = []
        head: h11.Response | None = None
        body = b""
        trailers: list[tuple[bytes, bytes]] = []
        while True:
            event = client.next_event()
            if isinstance(event, h11.InformationalResponse):
                informational.append(event.status_code)
            elif isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                trailers = [(bytes(k), bytes(v)) for k, v in event.headers]
                break
            else:
                raise AssertionError(f"incomplete response: h11 client says {event!r}")
        assert head is not None
        responses.append(
            Response(
                status=head.status_code,
                reason=bytes(head.reason),
                headers=[(bytes(k), bytes(v)) for k, v in head.headers],
                body=body,
                informational=informational,
                trailers=trailers,
            )
        )
        if client.their_state is h11.MUST_CLOSE:
            break
        if client.states == {h11.CLIENT: h11.DONE, h11.SERVER: h11.DONE}:
            client.start_next_cycle()
    leftover, _ = client.trailing_data
    assert leftover == b"", f"bytes after the last response: {leftover!r}"
    return responses


def parse_response(data: bytes, method: str = "GET", *, eof: bool = True) -> Response:
    responses = parse_responses(data, (method,), eof=eof)
    assert len(responses) == 1
    return responses[0]


def request(
    method: str = "GET",
    target: str = "/",
    headers: Sequence[tuple[str, str]] = (("Host", "example.com"),),
    body: bytes = b"",
    version: str = "1.1",
) -> bytes:
    """The bytes of one request; pass framing headers yourself."""
    lines = [f"{method} {target} HTTP/{version}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
