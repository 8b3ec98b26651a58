"""A deliberately plain HTTP/1.1 and WebSocket client over a blocking socket.

The suite judges servers, so its client must see exactly what a server put on the wire: it
parses responses itself (no library that would fix up, reject or hide a framing mistake) and
reports what happened in words a check can quote: a response, a close, a reset or silence.

``HTTPConnection.read_response`` follows RFC 9112 §6.3 to find where a body ends: no body for
HEAD, 1xx, 204 and 304; chunked if the last transfer coding is chunked; Content-Length; else
until the server closes. ``complete`` says whether that framing finished (``framing_error``
says what was wrong when it was malformed: a chunk size or Content-Length that is not a number).

Nothing malformed is taken for something else: a status line that is not one, a 101 without the
right Sec-WebSocket-Accept, or a WebSocket frame no server may send (masked, RSV bits without an
extension, a reserved opcode, a continuation of no message, ...) raises ``NoResponse`` with
``why`` "malformed", and says what was wrong.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import os
import re
import socket
import struct
import time

CRLF = b"\r\n"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
DATA_OPCODES = (OP_CONTINUATION, OP_TEXT, OP_BINARY)
CONTROL_OPCODES = (OP_CLOSE, OP_PING, OP_PONG)

STATUS_LINE = re.compile(rb"(HTTP/[0-9]\.[0-9]) ([0-9]{3})(?: ([^\r\n]*))?")  # RFC 9112 §4
CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]+")  # RFC 9112 §7.1: 1*HEXDIG
DECIMAL = re.compile(rb"[0-9]+")  # RFC 9110 §8.6: Content-Length = 1*DIGIT


class NoResponse(Exception):
    """The server closed, reset or stayed silent where a response was due, or sent something
    malformed in its place."""

    def __init__(self, why: str, data: bytes = b"", detail: str = "") -> None:
        super().__init__(why)
        self.why = why  # "closed", "reset", "timeout" or "malformed"
        self.data = data  # bytes received before that, if any; for "malformed", the bytes at fault
        self.detail = detail  # for "malformed": what the server sent, in words ("a masked frame")

    @property
    def ended(self) -> bool:
        """Whether the server ended the connection (closed or reset it): not silence, and not
        a malformed answer."""
        return self.why in ("closed", "reset")

    def describe(self) -> str:
        if self.why == "malformed":
            what = f"the server sent {self.detail or 'something malformed'}"
            if self.data:
                what += f"; the bytes: {self.data[:60]!r}"
            return what
        if self.why == "timeout":
            what = "no response (silence)"
        else:
            what = f"the connection {self.why} without a response"
        if self.data:
            what += f" after {len(self.data)} bytes {self.data[:60]!r}"
        return what

    def __str__(self) -> str:
        return self.describe()


@dataclasses.dataclass
class Response:
    version: bytes
    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    framing: str = "none"  # "none", "content-length", "chunked" or "close"
    complete: bool = True
    trailers: list[tuple[bytes, bytes]] = dataclasses.field(default_factory=list)
    interim: list[Response] = dataclasses.field(default_factory=list)
    raw_head: bytes = b""
    framing_error: str = ""  # what made the framing unreadable ("" if nothing did)

    def header(self, name: bytes) -> bytes | None:
        """The first value of ``name`` (case-insensitive), or None."""
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def header_values(self, name: bytes) -> list[bytes]:
        name = name.lower()
        return [value for key, value in self.headers if key.lower() == name]

    def connection_tokens(self) -> set[bytes]:
        return {
            token.strip().lower()
            for value in self.header_values(b"connection")
            for token in value.split(b",")
        }

    def describe(self) -> str:
        text = f"{self.status} {self.reason.decode('latin-1')!r}"
        if self.framing != "none":
            text += f", {self.framing}-framed body of {len(self.body)} bytes"
        if self.framing_error:
            text += f" (malformed: {self.framing_error})"
        elif not self.complete:
            text += " (cut short)"
        return text


Reply = Response | NoResponse  # what a read gives a check: a response, or why none came


class HTTPConnection:
    """One client connection; every read has a deadline."""

    def __init__(self, sock: socket.socket, timeout_s: float) -> None:
        self.sock = sock
        self.timeout_s = timeout_s
        self.buffer = b""
        self.eof = False
        sock.settimeout(timeout_s)

    def __enter__(self) -> HTTPConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> None:
        """Read once more into the buffer; raise NoResponse on EOF, reset or the deadline."""
        if self.eof:
            raise NoResponse("closed", self.buffer)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NoResponse("timeout", self.buffer)
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise NoResponse("timeout", self.buffer) from None
        except ConnectionResetError:
            self.eof = True
            raise NoResponse("reset", self.buffer) from None
        except OSError:
            self.eof = True
            raise NoResponse("reset", self.buffer) from None
        if not data:
            self.eof = True
            raise NoResponse("closed", self.buffer)
        self.buffer += data

    def _read_until(self, marker: bytes, deadline: float, limit: int = 1 << 20) -> bytes:
        while True:
            index = self.buffer.find(marker)
            if index >= 0:
                data, self.buffer = (
                    self.buffer[: index + len(marker)],
                    self.buffer[index + len(marker) :],
                )
                return data
            if len(self.buffer) > limit:
                raise NoResponse("timeout", self.buffer)
            self._fill(deadline)

    def _read_exactly(self, count: int, deadline: float) -> bytes:
        while len(self.buffer) < count:
            self._fill(deadline)
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def wait_for_bytes(self, data: bytes, timeout_s: float | None = None) -> None:
        """Read until ``data`` has arrived (it stays in ``buffer``); raise NoResponse if the
        server closes, resets or stays silent until the deadline first."""
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while data not in self.buffer:
            self._fill(deadline)

    def read_head(self, timeout_s: float | None = None) -> Response:
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        raw = self._read_until(b"\r\n\r\n", deadline)
        lines = raw[:-4].split(b"\r\n")
        status_line = STATUS_LINE.fullmatch(lines[0])
        if status_line is None:
            raise NoResponse("malformed", raw, "a malformed status line")
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers.append((name, value.strip(b" \t")))
        return Response(
            version=status_line[1],
            status=int(status_line[2]),
            reason=status_line[3] or b"",
            headers=headers,
            raw_head=raw,
        )

    def read_response(
        self, method: str = "GET", timeout_s: float | None = None, upgrade: bool = False
    ) -> Response:
        """The next final response, with any 1xx before it in ``interim``.

        With ``upgrade``, a 101 is final and ends the HTTP part of the connection.
        """
        interim: list[Response] = []
        while True:
            response = self.read_head(timeout_s)
            if 100 <= response.status < 200 and not (upgrade and response.status == 101):
                interim.append(response)
                continue
            break
        response.interim = interim
        return self.read_body(response, method, timeout_s)

    def read_reply(
        self, method: str = "GET", timeout_s: float | None = None, upgrade: bool = False
    ) -> Reply:
        """``read_response``, but the NoResponse that says why none came is returned, not raised."""
        try:
            return self.read_response(method, timeout_s, upgrade)
        except NoResponse as exc:
            return exc

    def read_body(
        self, response: Response, method: str = "GET", timeout_s: float | None = None
    ) -> Response:
        """Read the body of a response whose head ``read_head`` has read, into it."""
        self._read_body(response, method, time.monotonic() + (timeout_s or self.timeout_s))
        return response

    def _read_body(self, response: Response, method: str, deadline: float) -> None:
        status = response.status
        if method == "HEAD" or status < 200 or status in (204, 304):
            return
        codings = [
            coding.strip().lower()
            for value in response.header_values(b"transfer-encoding")
            for coding in value.split(b",")
        ]
        lengths = response.header_values(b"content-length")
        try:
            if codings and codings[-1] == b"chunked":
                response.framing = "chunked"
                self._read_chunked(response, deadline)
            elif codings:
                response.framing = "close"
                self._read_to_close(response, deadline)
            elif lengths:
                response.framing = "content-length"
                response.body = self._read_exactly(content_length(lengths), deadline)
            else:
                response.framing = "close"
                self._read_to_close(response, deadline)
        except NoResponse:
            # Cut short: keep what did arrive of the body.
            response.complete = False
            if response.framing != "chunked":
                response.body += self.buffer
                self.buffer = b""
        except ValueError as exc:
            response.complete = False
            response.framing_error = str(exc)

    def _read_chunked(self, response: Response, deadline: float) -> None:
        while True:
            line = self._read_until(b"\r\n", deadline)
            size = chunk_size(line[:-2])
            if size == 0:
                break
            response.body += self._read_exactly(size, deadline)
            if self._read_exactly(2, deadline) != CRLF:
                raise ValueError("a chunk not followed by CRLF")
        while True:
            line = self._read_until(b"\r\n", deadline)
            if line == CRLF:
                return
            name, _, value = line[:-2].partition(b":")
            response.trailers.append((name, value.strip()))

    def _read_to_close(self, response: Response, deadline: float) -> None:
        while True:
            try:
                self._fill(deadline)
            except NoResponse as exc:
                if exc.why == "timeout":
                    raise
                response.body = self.buffer
                self.buffer = b""
                return

    def wait_closed(self, timeout_s: float | None = None) -> str:
        """ "closed" or "reset" once the server ends the connection, "open" at the deadline.

        Bytes that arrive meanwhile stay in ``buffer``.
        """
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while True:
            try:
                self._fill(deadline)
            except NoResponse as exc:
                return "open" if exc.why == "timeout" else exc.why


def chunk_size(line: bytes) -> int:
    """The size on a chunk's line (CRLF removed): ``1*HEXDIG``, then any ``chunk-ext``, which
    may follow whitespace (RFC 9112 §7.1.1: ``BWS ";"``); ValueError if it is not that."""
    size, semicolon, _ = line.partition(b";")
    if semicolon:
        size = size.rstrip(b" \t")
    if not CHUNK_SIZE.fullmatch(size):
        raise ValueError(f"chunk size line {line[:40]!r}")
    return int(size, 16)


def content_length(values: list[bytes]) -> int:
    """The length that Content-Length fields say: ``1*DIGIT``, the same in each; ValueError if
    they do not (RFC 9112 §6.3: an invalid Content-Length makes a response unreadable)."""
    lengths = set(values)  # read_head took the whitespace around each value off
    if len(lengths) != 1 or not DECIMAL.fullmatch(next(iter(lengths))):
        raise ValueError(f"Content-Length {b', '.join(values)[:40]!r}")
    return int(next(iter(lengths)))


def request_bytes(
    method: str = "GET",
    target: str = "/",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    version: str = "HTTP/1.1",
    host: str | None = "127.0.0.1",
) -> bytes:
    """A request head (with Host unless ``host`` is None) followed by ``body`` as given."""
    lines = [f"{method} {target} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines.extend(f"{name}: {value}" for name, value in headers or [])
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# -- WebSocket


@dataclasses.dataclass
class Frame:
    fin: bool
    opcode: int
    payload: bytes  # unmasked, if the server masked it
    masked: bool = False  # RFC 6455 §5.1: a server MUST NOT mask
    rsv: int = 0  # RSV1-3 as 0b000-0b111; §5.2: nonzero only with a negotiated extension
    head: bytes = b""  # the frame's header as it arrived

    def problem(self) -> str:
        """What makes this frame one no server may send to the suite's client, in words (""
        if nothing): the client never negotiates an extension, so every frame is bare RFC 6455.
        Whether a continuation belongs to a message is the stream's to tell (``read_message``).
        """
        problems = []
        if self.masked:
            problems.append("masked (RFC 6455 §5.1: a server MUST NOT mask a frame)")
        if self.rsv:
            problems.append(
                f"RSV bits {self.rsv:03b} set with no extension negotiated (RFC 6455 §5.2)"
            )
        if self.opcode not in DATA_OPCODES + CONTROL_OPCODES:
            problems.append(f"reserved opcode {self.opcode:#x} (RFC 6455 §5.2)")
        elif self.opcode in CONTROL_OPCODES and not self.fin:
            problems.append(
                f"a fragmented control frame, opcode {self.opcode:#x} (RFC 6455 §5.5: control "
                "frames MUST NOT be fragmented)"
            )
        if self.opcode in CONTROL_OPCODES and len(self.payload) > 125:
            problems.append(
                f"a control frame of {len(self.payload)} bytes (RFC 6455 §5.5: 125 at most)"
            )
        return "; ".join(problems)

    def malformed(self, problem: str) -> NoResponse:
        """The NoResponse that says this frame was malformed by ``problem``."""
        return NoResponse(
            "malformed",
            self.head + self.payload[:32],
            f"a malformed frame (opcode {self.opcode:#x}, fin {int(self.fin)}): {problem}",
        )


@dataclasses.dataclass
class Message:
    kind: str  # "text", "binary" or "close"
    data: bytes = b""
    code: int | None = None  # for a close: None when the frame had no code
    reason: str = ""

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")


def close_message(payload: bytes) -> Message:
    """A close frame's payload as a message: its code (None if it has none) and its reason."""
    if len(payload) >= 2:
        (code,) = struct.unpack("!H", payload[:2])
        return Message("close", payload, code, payload[2:].decode("utf-8", "replace"))
    return Message("close", payload)


@dataclasses.dataclass
class Incoming:
    """The next thing from the server: a message, a close frame, the end of TCP, or silence."""

    kind: str  # "text", "binary", "close", "closed", "reset", "silence" or "malformed"
    data: bytes = b""
    code: int | None = None
    reason: str = ""
    after_bytes: bytes = b""  # for "closed" and "reset": bytes of a frame the stream cut short
    detail: str = ""  # for "malformed": what the server sent (``NoResponse.detail``)

    @classmethod
    def of(cls, message: Message) -> Incoming:
        return cls(message.kind, message.data, message.code, message.reason)

    @classmethod
    def ended(cls, exc: NoResponse) -> Incoming:
        """How the stream ended where a frame was due: closed, reset, silence, or a malformed
        frame (its bytes in ``after_bytes``)."""
        kind = "silence" if exc.why == "timeout" else exc.why
        return cls(kind, after_bytes=exc.data, detail=exc.detail)

    def describe(self) -> str:
        if self.kind == "text":
            shown = self.data[:60].decode("utf-8", "backslashreplace")
            return f"a text message of {len(self.data)} bytes {shown!r}"
        if self.kind == "binary":
            return f"a binary message of {len(self.data)} bytes {self.data[:24]!r}"
        if self.kind == "close":
            if self.code is None:
                return "a close frame without a code"
            reason = f" reason {self.reason!r}" if self.reason else " and no reason"
            return f"a close frame with code {self.code}{reason}"
        if self.kind == "silence":
            return "silence"
        if self.kind == "malformed":
            return NoResponse("malformed", self.after_bytes, self.detail).describe()
        what = f"the TCP connection {self.kind} without a close frame"
        if self.after_bytes:
            what += f" (after {len(self.after_bytes)} stray bytes)"
        return what


def websocket_key() -> str:
    return base64.b64encode(os.urandom(16)).decode("ascii")


def websocket_accept(key: str) -> bytes:
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + WS_GUID).digest())


def handshake_bytes(
    target: str,
    key: str | None,
    subprotocols: list[str] | None = None,
    headers: list[tuple[str, str]] | None = None,
    version: str = "13",
    *,
    method: str = "GET",
    upgrade: str | None = "websocket",
    connection: str | None = "Upgrade",
) -> bytes:
    """A client's opening handshake; a ``None`` key, upgrade or connection is left out, to make a
    broken one."""
    fields = [("Upgrade", upgrade), ("Connection", connection), ("Sec-WebSocket-Key", key)]
    extra = [(name, value) for name, value in fields if value is not None]
    extra.append(("Sec-WebSocket-Version", version))
    if subprotocols:
        extra.append(("Sec-WebSocket-Protocol", ", ".join(subprotocols)))
    return request_bytes(method, target, extra + list(headers or []))


def encode_frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        head += bytes([mask_bit | length])
    elif length < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + _mask(payload, key)


def _mask(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return b""
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(payload), "big"
    )


def close_payload(code: int | None, reason: str = "") -> bytes:
    if code is None:
        return b""
    return struct.pack("!H", code) + reason.encode("utf-8")


class WebSocketConnection:
    """The client side after a 101: masked frames out, messages in; pings are answered."""

    def __init__(self, http: HTTPConnection) -> None:
        self.http = http

    def send_frame(self, opcode: int, payload: bytes = b"", fin: bool = True) -> None:
        self.http.send(encode_frame(opcode, payload, fin))

    def send_text(self, text: str) -> None:
        self.send_frame(OP_TEXT, text.encode("utf-8"))

    def send_bytes(self, data: bytes) -> None:
        self.send_frame(OP_BINARY, data)

    def send_close(self, code: int | None = 1000, reason: str = "") -> None:
        self.send_frame(OP_CLOSE, close_payload(code, reason))

    def read_frame(self, timeout_s: float | None = None, strict: bool = False) -> Frame:
        """The next frame as it came, with its mask and RSV bits recorded; raises NoResponse
        if the TCP stream ends first, or ("malformed") if its 64-bit length has the most
        significant bit set (RFC 6455 §5.2) or, with ``strict``, if ``Frame.problem`` finds one.
        """
        http = self.http
        deadline = time.monotonic() + (timeout_s or http.timeout_s)
        head = http._read_exactly(2, deadline)
        first, second = head
        length = second & 0x7F
        if length == 126:
            extended = http._read_exactly(2, deadline)
            (length,) = struct.unpack("!H", extended)
            head += extended
        elif length == 127:
            extended = http._read_exactly(8, deadline)
            (length,) = struct.unpack("!Q", extended)
            head += extended
            if length >> 63:
                detail = "a malformed frame: a 64-bit length with its most significant bit set"
                raise NoResponse("malformed", head, detail + " (RFC 6455 §5.2)")
        key = http._read_exactly(4, deadline) if second & 0x80 else b""
        payload = http._read_exactly(length, deadline)
        if key:
            payload = _mask(payload, key)
        frame = Frame(
            fin=bool(first & 0x80),
            opcode=first & 0x0F,
            payload=payload,
            masked=bool(key),
            rsv=(first >> 4) & 0x7,
            head=head + key,
        )
        problem = frame.problem() if strict else ""
        if problem:
            raise frame.malformed(problem)
        return frame

    def read_message(self, timeout_s: float | None = None) -> Message:
        """The next whole message or close frame; pings are answered on the way. Raises
        NoResponse if the TCP stream ends, or ("malformed") at a frame no server may send: one
        ``Frame.problem`` finds, a continuation of no message, or a new message that interrupts
        a fragmented one (RFC 6455 §5.4)."""
        kind = ""
        data = b""
        while True:
            frame = self.read_frame(timeout_s, strict=True)
            if frame.opcode == OP_PING:
                self.send_frame(OP_PONG, frame.payload)
                continue
            if frame.opcode == OP_PONG:
                continue
            if frame.opcode == OP_CLOSE:
                return close_message(frame.payload)
            if frame.opcode == OP_CONTINUATION and not kind:
                raise frame.malformed("a continuation frame with no message started (§5.4)")
            if frame.opcode != OP_CONTINUATION and kind:
                raise frame.malformed(
                    f"a new data frame within a fragmented {kind} message (§5.4: the "
                    "fragments of a message MUST NOT be interleaved with another's)"
                )
            if frame.opcode != OP_CONTINUATION:
                kind = "text" if frame.opcode == OP_TEXT else "binary"
            data += frame.payload
            if frame.fin:
                return Message(kind, data)

    def receive(self, timeout_s: float | None = None) -> Incoming:
        """Like ``read_message``, but how the stream ended is returned too, never raised."""
        try:
            return Incoming.of(self.read_message(timeout_s))
        except NoResponse as exc:
            return Incoming.ended(exc)
        except OSError:  # answering a ping on a connection the server already closed
            return Incoming("reset")

    def answer_close(self, close: Incoming, timeout_s: float) -> str:
        """Answer the server's close frame with its code and reason; then "closed" or "reset"
        once the server ends TCP, or "open" if it has not after ``timeout_s``."""
        with contextlib.suppress(OSError):
            self.send_close(close.code, close.reason)
        return self.http.wait_closed(timeout_s)

    def close(self) -> None:
        self.http.close()


def websocket_handshake(
    sock: socket.socket,
    timeout_s: float,
    target: str = "/",
    subprotocols: list[str] | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> tuple[Response, WebSocketConnection | None]:
    """Open a WebSocket: the response to the handshake, and the connection if it was a 101.

    Raises NoResponse if the server answers nothing.
    """
    http = HTTPConnection(sock, timeout_s)
    key = websocket_key()
    http.send(handshake_bytes(target, key, subprotocols, headers))
    response = http.read_response(upgrade=True)
    if response.status != 101:
        return response, None
    accept = response.header(b"sec-websocket-accept")
    expected = websocket_accept(key)
    if accept != expected:
        got = (
            "without Sec-WebSocket-Accept"
            if accept is None
            else f"with Sec-WebSocket-Accept {accept!r}"
        )
        raise NoResponse(
            "malformed",
            response.raw_head,
            f"a 101 {got}, not {expected!r} (RFC 6455 §4.2.2)",
        )
    return response, WebSocketConnection(http)
