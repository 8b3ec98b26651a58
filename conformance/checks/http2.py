"""HTTP/2 over cleartext TCP with prior knowledge (RFC 9113, RFC 7541), frame by frame.

Theory of operation
-------------------
Each check opens a connection of its own, sends the client connection preface (RFC 9113 §3.4)
and then the frames it is about, built by hand with ``http2_client.frame`` (so a malformed frame
is as easy to send as a good one), and grades the frames the server sends back. The cases follow
the RFC's requirement sentences, in the spirit of h2spec's list; each cites its section and
quotes the sentence it enforces.

Most checks are rows of one of four tables, each graded by one function:

* ``CONNECTION_ERRORS``: the server must end the connection with a GOAWAY carrying the error
  code the RFC names, then close TCP (§5.4.1: "After sending the GOAWAY frame for an error
  condition, the endpoint MUST close the TCP connection"). A close without GOAWAY passes too:
  sending the GOAWAY first is a SHOULD. Where the RFC names a stream error, a RST_STREAM with
  that code on the stream passes as well, and so does the connection error (§5.4.1: "an
  endpoint MAY choose to treat a stream error as a connection error").
* ``MALFORMED``: requests RFC 9113 §8.1.1 calls malformed; the server must treat each as a stream
  error of type PROTOCOL_ERROR, and "a server MAY send an HTTP response prior to closing or
  resetting the stream", so a 4xx passes too. A 2xx (the app served it) fails.
* ``IGNORED``: frames the server must ignore; after them the connection still answers a PING
  and serves a GET.

The rest are functions: the preface and SETTINGS exchange, PING, flow control, the ASGI scope of
a request that came over HTTP/2, the response the server writes, the concurrent streams limit,
RST_STREAM, and the GOAWAY of a graceful shutdown (a server of the check's own, stopped as the
shutdown group stops one).

Speaking h2c with prior knowledge is not required (RFC 9113 §3.3 lets a client use it only when
it knows the server supports it), so the first check, ``http2.prior-knowledge``, decides: a
server that answers the preface as HTTP/1.1 (a 400 or a 505), closes, or stays silent does not
offer it, and every check of the group is then not applicable. The answer is found once per run
(``common.once``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from ..client import OP_CLOSE, OP_TEXT, encode_frame
from ..framework import (
    FAIL,
    MUST,
    READING,
    SHOULD,
    Context,
    Result,
    Row,
    check,
    check_rows,
    failed,
    not_applicable,
    passed,
    verdict,
)
from ..http2_client import (
    ACK,
    CANCEL,
    COMPRESSION_ERROR,
    CONTINUATION,
    DATA,
    ENABLE_CONNECT_PROTOCOL,
    ENABLE_PUSH,
    END_HEADERS,
    END_STREAM,
    FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR,
    GOAWAY,
    HEADER_TABLE_SIZE,
    HEADERS,
    INITIAL_WINDOW_SIZE,
    MAX_CONCURRENT_STREAMS,
    MAX_FRAME_SIZE,
    MAX_WINDOW,
    NO_ERROR,
    PADDED,
    PING,
    PREFACE,
    PRIORITY,
    PROTOCOL_ERROR,
    PUSH_PROMISE,
    REFUSED_STREAM,
    RST_STREAM,
    SETTINGS,
    STREAM_CLOSED,
    WINDOW_UPDATE,
    Ended,
    Frame,
    H2Connection,
    H2Response,
    data_frame,
    error_name,
    frame,
    hpack_missing,
    integer,
    literal,
    literal_block,
    ping_frame,
    rst_stream_frame,
    settings_frame,
    window_update_frame,
)
from ..probes.extensions import (
    BODY_PARTS,
    EARLY_HINT,
    FILE_SIZE,
    HINTED_BODY,
    LINKS,
    PATHSEND,
    TRAILER_FIELDS,
    TRAILERS,
    ZEROCOPYSEND,
    file_bytes,
)
from ..probes.http2 import pattern
from ..probes.http11 import HELLO
from .common import (
    EXIT_DEADLINE_S,
    ask_to_stop,
    describe_exit,
    find_event,
    has_event,
    once,
    probe_target,
)

APP = "conformance.probes:app"
UNKNOWN_FRAME = 0xFA  # no frame type registered there (RFC 9113 §11.2, IANA)
UNKNOWN_SETTING = 0xFA0  # nor a setting
CONNECTION_SPECIFIC = (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding")


# -- the gate: does the server speak h2c with prior knowledge?


@dataclasses.dataclass(frozen=True)
class Gate:
    speaks: bool
    observed: str  # what the server answered the preface with, in words
    first: Frame | None  # its first frame, if it spoke HTTP/2


def run_gate(ctx: Context) -> Gate:
    if hpack_missing():
        return Gate(False, "hpack is not installed (pip install hpack)", None)
    with socket_to(ctx) as sock:
        sock.sendall(PREFACE + settings_frame())
        data = b""
        deadline = time.monotonic() + ctx.options.hang_s
        why = "timeout"
        while len(data) < 9 and time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except OSError:
                why = "reset"
                break
            if not chunk:
                why = "closed"
                break
            data += chunk
    if data.startswith(b"HTTP/"):
        line = data.split(b"\r\n", 1)[0].decode("latin-1")
        return Gate(False, f"the preface was answered as HTTP/1: {line!r}", None)
    if len(data) < 9:
        what = {"timeout": "silence", "closed": "a close", "reset": "a reset"}[why]
        got = f" after {data!r}" if data else ""
        return Gate(False, f"the preface was answered with {what}{got}", None)
    length = int.from_bytes(data[:3], "big")
    kind, flags, stream_id = data[3], data[4], int.from_bytes(data[5:9], "big")
    first = Frame(kind, flags, stream_id & MAX_WINDOW, data[9 : 9 + length])
    return Gate(True, f"the first frame was {first.describe()}", first)


def gate(ctx: Context) -> Gate:
    return once(ctx, "http2.gate", run_gate)


@contextlib.contextmanager
def socket_to(ctx: Context) -> Iterator[socket.socket]:
    sock = ctx.connect()
    try:
        yield sock
    finally:
        with contextlib.suppress(OSError):
            sock.close()


class Unusable(Exception):
    """The check cannot go on; ``result`` is its verdict (n/a, or a failure to set up)."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.observed)
        self.result = result


@contextlib.contextmanager
def h2(ctx: Context, settings: list[tuple[int, int]] | None = None) -> Iterator[H2Connection]:
    """An HTTP/2 connection past the preface: the client's sent with ``settings``, the server's
    SETTINGS read (and acknowledged). Raises Unusable if the group does not apply or the
    server's preface did not come."""
    seen = gate(ctx)
    if not seen.speaks:
        raise Unusable(not_applicable(f"no h2c with prior knowledge: {seen.observed}"))
    connection = H2Connection(ctx.connect(), ctx.options.io_timeout_s)
    try:
        try:
            first = connection.start(settings)
        except Ended as exc:
            raise Unusable(failed(f"the preface got {exc.describe()}")) from None
        if first.type != SETTINGS or first.has(ACK):
            raise Unusable(failed(f"the server's first frame was {first.describe()}"))
        yield connection
    finally:
        connection.close()


def h2_check(
    id: str, *, title: str, clause: str, level: str = MUST
) -> Callable[[Callable[[Context], Result]], Callable[[Context], Result]]:
    """``framework.check``, with Unusable turned into its verdict."""

    def register(function: Callable[[Context], Result]) -> Callable[[Context], Result]:
        def run(ctx: Context) -> Result:
            try:
                return function(ctx)
            except Unusable as exc:
                return exc.result

        check(id, title=title, clause=clause, level=level)(run)
        return function

    return register


RowT = TypeVar("RowT", bound=Row)


def guarded(grade: Callable[[Context, RowT], Result]) -> Callable[[Context, RowT], Result]:
    """A row's grading function, with Unusable turned into its verdict."""

    def run(ctx: Context, row: RowT) -> Result:
        try:
            return grade(ctx, row)
        except Unusable as exc:
            return exc.result

    return run


def recent(connection: H2Connection, skip: int = 0) -> str:
    """The frames the server sent after the first ``skip``, in words (SETTINGS ACKs left out)."""
    items = [
        item.describe()
        for item in connection.frames[skip:]
        if not (item.type == SETTINGS and item.has(ACK))
    ]
    if not items:
        return "no frame"
    if len(items) > 8:
        items = [*items[:7], f"... ({len(items) - 7} more)"]
    return ", ".join(items)


# -- grading an error, a malformed request, frames ignored


def grade_error(
    ctx: Context,
    connection: H2Connection,
    what: str,
    codes: tuple[int, ...],
    stream_id: int | None = None,
) -> Result:
    """After ``what`` was sent: a GOAWAY with one of ``codes`` and a close (or a close alone),
    or, where ``stream_id`` is given, a RST_STREAM with one of ``codes`` on that stream."""
    names = " or ".join(error_name(code) for code in codes)
    skip = len(connection.frames)

    def wanted(item: Frame) -> bool:
        if item.type == GOAWAY:
            return True
        return item.type == RST_STREAM and stream_id is not None and item.stream_id == stream_id

    answer = connection.read_until(wanted, ctx.options.hang_s)
    if isinstance(answer, Ended):
        if answer.ended:
            return passed(f"{what}: {recent(connection, skip)}, then {answer.describe()}")
        due = f"GOAWAY({names})" + (f" or RST_STREAM({names})" if stream_id else "")
        return failed(f"{what}: {recent(connection, skip)}, then {answer.describe()}; {due} due")
    observed = f"{what}: {recent(connection, skip)}"
    if answer.error_code not in codes:
        return failed(f"{observed}; {names} due")
    if answer.type == RST_STREAM:
        return passed(observed)
    closed = connection.wait_closed(ctx.options.hang_s)
    if closed == "open":
        return failed(
            f"{observed}, and the connection stayed open (§5.4.1: after the GOAWAY for an "
            "error, the endpoint MUST close the TCP connection)"
        )
    return passed(f"{observed}, then the connection {closed}")


def grade_malformed(ctx: Context, connection: H2Connection, stream_id: int, what: str) -> Result:
    """A malformed request: RST_STREAM(PROTOCOL_ERROR), the connection error, or a 4xx."""
    response = connection.read_response(stream_id, ctx.options.hang_s)
    observed = f"{what}: {response.describe()}"
    if response.status is not None and 400 <= response.status < 500:
        return passed(observed)
    if response.status is not None:
        return failed(f"{observed} (a malformed request is a stream error, or a 4xx)")
    if response.reset is not None:
        return verdict(response.reset == PROTOCOL_ERROR, observed)
    if response.goaway is not None:
        if response.goaway.error_code != PROTOCOL_ERROR:
            return failed(observed)
        closed = connection.wait_closed(ctx.options.hang_s)
        return verdict(closed != "open", f"{observed}, then the connection {closed}")
    assert response.ended is not None
    return verdict(response.ended.ended, observed)


def grade_still_serving(ctx: Context, connection: H2Connection, what: str) -> Result:
    """After frames the server must ignore: it still answers a PING, then serves a GET."""
    skip = len(connection.frames)
    answer = connection.ping(b"ignored?", ctx.options.hang_s)
    if not isinstance(answer, Frame) or answer.type != PING:
        shown = answer.describe()
        return failed(f"{what}: {recent(connection, skip)}; a PING then got {shown}")
    errors = [
        item.describe() for item in connection.frames[skip:] if item.type in (GOAWAY, RST_STREAM)
    ]
    if errors:
        return failed(f"{what}: {', '.join(errors)}")
    stream_id = connection.request("GET", "/http11/hello")
    response = connection.read_response(stream_id)
    observed = f"{what}: a PING was answered, and a GET then got {response.describe()}"
    return verdict(response.status == 200 and response.body == HELLO, observed)


# -- the connection preface and SETTINGS


@h2_check(
    "http2.prior-knowledge",
    title="the server's connection preface: a SETTINGS frame first (decides if h2c applies)",
    clause="RFC 9113 §3.4",
)
def prior_knowledge(ctx: Context) -> Result:
    """§3.4: "The server connection preface consists of a potentially empty SETTINGS frame
    that MUST be the first frame the server sends in the HTTP/2 connection." A server that
    answers the preface as HTTP/1.1 does not offer h2c with prior knowledge, and the group is
    then not applicable."""
    seen = gate(ctx)
    if not seen.speaks:
        return not_applicable(f"no h2c with prior knowledge: {seen.observed}")
    first = seen.first
    assert first is not None
    ok = first.type == SETTINGS and not first.has(ACK) and first.stream_id == 0
    return verdict(ok, seen.observed)


@h2_check(
    "http2.settings-ack",
    title="the client's SETTINGS are acknowledged with an empty SETTINGS ACK",
    clause="RFC 9113 §6.5.3",
)
def settings_ack(ctx: Context) -> Result:
    """§6.5.3: "Upon receiving a SETTINGS frame ... the recipient MUST immediately emit a
    SETTINGS frame with the ACK flag set." """
    with h2(ctx, [(INITIAL_WINDOW_SIZE, 100000)]) as connection:
        answer = connection.read_until(lambda item: item.type == SETTINGS and item.has(ACK))
        if isinstance(answer, Ended) or answer.type != SETTINGS:
            return failed(f"after the client's SETTINGS: {recent(connection, 1)}")
        return verdict(not answer.payload, f"the server sent {answer.describe()}")


@h2_check(
    "http2.server-settings-valid",
    title="the server's SETTINGS values are valid (ENABLE_PUSH never 1, sizes in range)",
    clause="RFC 9113 §6.5.2",
)
def server_settings_valid(ctx: Context) -> Result:
    """§6.5.2: for SETTINGS_ENABLE_PUSH "A server MUST NOT explicitly set this value to 1";
    SETTINGS_INITIAL_WINDOW_SIZE is at most 2^31-1 and SETTINGS_MAX_FRAME_SIZE between 2^14
    and 2^24-1 (a client treats other values as a connection error)."""
    with h2(ctx) as connection:
        first = connection.first_frame
        assert first is not None
        values = first.settings()
        problems = []
        if values.get(ENABLE_PUSH, 0) != 0:
            problems.append(f"ENABLE_PUSH {values[ENABLE_PUSH]}")
        if values.get(INITIAL_WINDOW_SIZE, 0) > MAX_WINDOW:
            problems.append(f"INITIAL_WINDOW_SIZE {values[INITIAL_WINDOW_SIZE]}")
        if not 2**14 <= values.get(MAX_FRAME_SIZE, 2**14) <= 2**24 - 1:
            problems.append(f"MAX_FRAME_SIZE {values[MAX_FRAME_SIZE]}")
        if len(first.payload) % 6:
            problems.append(f"a payload of {len(first.payload)} bytes")
        observed = f"the server sent {first.describe()}"
        return verdict(not problems, observed + (f": {', '.join(problems)}" if problems else ""))


@h2_check(
    "http2.preface-invalid",
    title="an invalid client connection preface ends the connection",
    clause="RFC 9113 §3.4",
)
def preface_invalid(ctx: Context) -> Result:
    """§3.4: "Clients and servers MUST treat an invalid connection preface as a connection
    error of type PROTOCOL_ERROR." The preface's first line is right and its second wrong, so a
    server that reads it as HTTP/1.1 may also refuse it with a 4xx/5xx and close."""
    seen = gate(ctx)
    if not seen.speaks:
        return not_applicable(f"no h2c with prior knowledge: {seen.observed}")
    with contextlib.closing(H2Connection(ctx.connect(), ctx.options.io_timeout_s)) as connection:
        connection.send(PREFACE.replace(b"SM", b"XX") + settings_frame())
        return grade_bad_preface(ctx, connection, "a preface ending in XX, not SM")


def grade_bad_preface(ctx: Context, connection: H2Connection, what: str) -> Result:
    """A connection error PROTOCOL_ERROR, or the preface read as an HTTP/1.1 request and
    refused (a 4xx or 5xx, then a close)."""
    deadline = time.monotonic() + ctx.options.hang_s
    with contextlib.suppress(Ended):
        while len(connection.buffer) < 9:
            connection.fill(deadline)
    if connection.buffer.startswith(b"HTTP/1."):
        line = connection.buffer.split(b"\r\n", 1)[0].decode("latin-1")
        closed = connection.wait_closed(ctx.options.hang_s)
        observed = f"{what}: answered as HTTP/1.1 {line!r}, then the connection {closed}"
        return verdict(closed != "open" and line[9:10] in ("4", "5"), observed)
    return grade_error(ctx, connection, what, (PROTOCOL_ERROR,))


@h2_check(
    "http2.preface-without-settings",
    title="a client preface not followed by SETTINGS (a PING first) is a connection error",
    clause="RFC 9113 §3.4",
)
def preface_without_settings(ctx: Context) -> Result:
    """§3.4: the client preface "MUST be followed by a SETTINGS frame", and "Clients and
    servers MUST treat an invalid connection preface as a connection error of type
    PROTOCOL_ERROR." """
    seen = gate(ctx)
    if not seen.speaks:
        return not_applicable(f"no h2c with prior knowledge: {seen.observed}")
    with contextlib.closing(H2Connection(ctx.connect(), ctx.options.io_timeout_s)) as connection:
        connection.send(PREFACE + ping_frame())
        return grade_bad_preface(ctx, connection, "the preface, then a PING before any SETTINGS")


# -- PING


@h2_check(
    "http2.ping-echoed",
    title="a PING is answered with a PING ACK carrying the same payload",
    clause="RFC 9113 §6.7",
)
def ping_echoed(ctx: Context) -> Result:
    """§6.7: "Receivers of a PING frame that does not include an ACK flag MUST send a PING
    frame with the ACK flag set in response, with an identical frame payload." """
    with h2(ctx) as connection:
        answer = connection.ping(b"\x00echo\xff\x01\x02", ctx.options.hang_s)
        if isinstance(answer, Ended) or answer.type != PING:
            return failed(f"a PING got {recent(connection, 1)}")
        return passed(f"a PING got {answer.describe()}")


@h2_check(
    "http2.ping-ack-not-answered",
    title="a PING with the ACK flag is not answered",
    clause="RFC 9113 §6.7",
)
def ping_ack_not_answered(ctx: Context) -> Result:
    """§6.7: "An endpoint MUST NOT respond to PING frames containing this flag." A PING ACK
    the server did not ask for, then a PING: the first PING ACK back must be the second's."""
    with h2(ctx) as connection:
        skip = len(connection.frames)
        connection.send(ping_frame(b"unasked!", ack=True))
        answer = connection.ping(b"asked...", ctx.options.hang_s)
        pings = [item for item in connection.frames[skip:] if item.type == PING]
        observed = f"a PING ACK then a PING got {recent(connection, skip)}"
        if isinstance(answer, Ended) or answer.type != PING:
            return failed(observed)
        return verdict(all(item.payload == b"asked..." for item in pings), observed)


# -- the tables: connection and stream errors, malformed requests, frames ignored


Send = Callable[[H2Connection], str | None]  # sends the frames; returns why it could not


@dataclasses.dataclass(frozen=True, kw_only=True)
class ErrorRow(Row):
    what: str  # the frames sent, in words
    send: Send
    codes: tuple[int, ...]
    stream_id: int | None = None  # a stream error on this stream passes too
    settings: tuple[tuple[int, int], ...] = ()


def grade_error_row(ctx: Context, row: ErrorRow) -> Result:
    with h2(ctx, list(row.settings)) as connection:
        problem = row.send(connection)
        if problem:
            return failed(f"setting up {row.what}: {problem}")
        return grade_error(ctx, connection, row.what, row.codes, row.stream_id)


def send_frames(*frames: bytes) -> Send:
    def send(connection: H2Connection) -> None:
        connection.send(b"".join(frames))

    return send


def open_stream(connection: H2Connection, path: str = "/h2/hold", end_stream: bool = True) -> int:
    """Open a stream on ``path`` (its app holds it without answering); its id."""
    stream_id = connection.new_stream()
    fields = connection.request_fields("POST" if not end_stream else "GET", path)
    connection.send(connection.headers_frame(stream_id, fields, end_stream=end_stream))
    return stream_id


def then(path: str, end_stream: bool, *after: Callable[[H2Connection, int], bytes]) -> Send:
    """Open a stream on ``path`` and send the frames each of ``after`` builds for it, in the
    same write as the HEADERS (so that the app has not answered yet)."""

    def send(connection: H2Connection) -> None:
        stream_id = connection.new_stream()
        method = "GET" if end_stream else "POST"
        fields = connection.request_fields(method, path)
        data = connection.headers_frame(stream_id, fields, end_stream=end_stream)
        for build in after:
            data += build(connection, stream_id)
        connection.send(data)

    return send


def after_response(*after: Callable[[H2Connection, int], bytes]) -> Send:
    """A GET on stream 1 read to its END_STREAM (the stream is then closed), then frames."""

    def send(connection: H2Connection) -> str | None:
        stream_id = connection.request("GET", "/http11/hello")
        response = connection.read_response(stream_id)
        if not response.complete:
            return f"the GET on stream {stream_id} got {response.describe()}"
        connection.send(b"".join(build(connection, stream_id) for build in after))
        return None

    return send


def headers_on(stream_id: int, end_stream: bool = True) -> Send:
    def send(connection: H2Connection) -> None:
        fields = connection.request_fields("GET", "/http11/hello")
        connection.send(connection.headers_frame(stream_id, fields, end_stream=end_stream))

    return send


def oversized_data(connection: H2Connection, stream_id: int) -> bytes:
    limit = connection.setting(MAX_FRAME_SIZE) or 2**14
    return data_frame(stream_id, b"x" * (limit + 1))


def oversized_headers(connection: H2Connection) -> None:
    limit = connection.setting(MAX_FRAME_SIZE) or 2**14
    stream_id = connection.new_stream()
    fields = connection.request_fields("GET", "/http11/hello")
    block = literal_block(fields) + literal(b"x-pad", b"p" * limit)
    connection.send(frame(HEADERS, END_HEADERS | END_STREAM, stream_id, block))


def stream_block(
    connection: H2Connection, fields: list[tuple[bytes, bytes]] | None = None
) -> bytes:
    return literal_block(fields or connection.request_fields("GET", "/http11/hello"))


def continuation_elsewhere(connection: H2Connection) -> None:
    block = stream_block(connection)
    connection.send(
        frame(HEADERS, END_STREAM, 1, block[:5]) + frame(CONTINUATION, END_HEADERS, 3, block[5:])
    )


def decreasing_ids(connection: H2Connection) -> None:
    headers_on(5)(connection)
    headers_on(3)(connection)


def split_headers(*between: Callable[[H2Connection, int], bytes]) -> Send:
    """A field block in a HEADERS without END_HEADERS and a CONTINUATION that ends it, with the
    frames ``between`` builds in between."""

    def send(connection: H2Connection) -> None:
        stream_id = connection.new_stream()
        block = stream_block(connection)
        data = frame(HEADERS, END_STREAM, stream_id, block[:5])
        for build in between:
            data += build(connection, stream_id)
        data += frame(CONTINUATION, END_HEADERS, stream_id, block[5:])
        connection.send(data)

    return send


def hpack_block(bad: Callable[[H2Connection], bytes]) -> Send:
    """A HEADERS frame whose field block ``bad`` writes by hand."""

    def send(connection: H2Connection) -> None:
        stream_id = connection.new_stream()
        block = bad(connection)
        connection.send(frame(HEADERS, END_HEADERS | END_STREAM, stream_id, block))

    return send


def table_size_update(size: int) -> bytes:
    return integer(size, 5, 0x20)  # RFC 7541 §6.3: 001 and a 5-bit prefix


def over_table_size(connection: H2Connection) -> bytes:
    limit = connection.setting(HEADER_TABLE_SIZE) or 4096
    return table_size_update(limit + 1) + stream_block(connection)


def late_table_size(connection: H2Connection) -> bytes:
    return stream_block(connection) + table_size_update(0)


def huffman_padding(connection: H2Connection) -> bytes:
    # A Huffman-coded value of 16 one bits: no symbol, and padding longer than 7 bits.
    return stream_block(connection) + b"\x00" + integer(5, 7) + b"x-pad" + b"\x82\xff\xff"


def truncated_block(connection: H2Connection) -> bytes:
    return stream_block(connection) + b"\x40" + integer(10, 7) + b"x-cut"


def window_to_max(connection: H2Connection, stream_id: int) -> bytes:
    # The server's window for sending on the stream starts at the client's initial window,
    # left at its default of 65535.
    return window_update_frame(stream_id, MAX_WINDOW - 65535)


CONNECTION_ERRORS = [
    ErrorRow(
        id="http2.settings-enable-push-invalid",
        title="SETTINGS_ENABLE_PUSH of 2 is a connection error PROTOCOL_ERROR",
        clause="RFC 9113 §6.5.2",
        what="SETTINGS with ENABLE_PUSH 2",
        send=send_frames(settings_frame([(ENABLE_PUSH, 2)])),
        codes=(PROTOCOL_ERROR,),
    ),
    ErrorRow(
        id="http2.settings-initial-window-too-large",
        title="SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1 is a connection error FLOW_CONTROL_ERROR",
        clause="RFC 9113 §6.5.2",
        what="SETTINGS with INITIAL_WINDOW_SIZE 2^31",
        send=send_frames(settings_frame([(INITIAL_WINDOW_SIZE, 2**31)])),
        codes=(FLOW_CONTROL_ERROR,),
    ),
    ErrorRow(
        id="http2.settings-max-frame-size-too-small",
        title="SETTINGS_MAX_FRAME_SIZE below 2^14 is a connection error PROTOCOL_ERROR",
        clause="RFC 9113 §6.5.2",
        what="SETTINGS with MAX_FRAME_SIZE 16383",
        send=send_frames(settings_frame([(MAX_FRAME_SIZE, 2**14 - 1)])),
        codes=(PROTOCOL_ERROR,),
    ),
    ErrorRow(
        id="http2.settings-max-frame-size-too-large",
        title="SETTINGS_MAX_FRAME_SIZE above 2^24-1 is a connection error PROTOCOL_ERROR",
        clause="RFC 9113 §6.5.2",
        what="SETTINGS with MAX_FRAME_SIZE 2^24",
        send=send_frames(settings_frame([(MAX_FRAME_SIZE, 2**24)])),
        codes=(PROTOCOL_ERROR,),
    ),
    ErrorRow(
        id="http2.settings-ack-with-payload",
        title="a SETTINGS ACK with a payload is a connection error FRAME_SIZE_ERROR",
        clause="RFC 9113 §6.5",
        what="a SETTINGS ACK with 6 bytes of payload",
        send=send_frames(frame(SETTINGS, ACK, 0, struct.pack("!HL", INITIAL_WINDOW_SIZE, 1))),
        codes=(FRAME_SIZE_ERROR,),
    ),
    ErrorRow(
        id="http2.settings-bad-length",
        title="a SETTINGS frame whose length is not a multiple of 6 is a connection error "
        "FRAME_SIZE_ERROR",
        clause="RFC 9113 §6.5",
        what="SETTINGS with a 3-byte payload",
        send=send_frames(frame(SETTINGS, 0, 0, b"\x00\x04\x00")),
        codes=(FRAME_SIZE_ERROR,),
    ),
    ErrorRow(
        id="http2.settings-on-stream",
        title="SETTINGS on a stream other than 0 is a connection error PROTOCOL_ERROR",
        clause="RFC 9113 §6.5",
        what="SETTINGS on stream 1",
        send=send_frames(frame(SETTINGS, 0, 1, b"")),
        codes=(PROTOCOL_ERROR,),
    ),
    ErrorRow(
        id="http2.frame-too-large",
        title="a DATA frame over SETTINGS_MAX_FRAME_SIZE is a FRAME_SIZE_ERROR",
        clause="RFC 9113 §4.2",
        what="a DATA frame one byte over the server's MAX_FRAME_SIZE on an open stream",
        send=then("/h2/scope", False, oversized_data),
        codes=(FRAME_SIZE_ERROR,),
        stream_id=1,
    ),
    ErrorRow(
        id="http2.headers-too-large",
        title="a HEADERS frame over SETTINGS_MAX_FRAME_SIZE is a connection error FRAME_SIZE_ERROR",
        clause="RFC 9113 §4.2",
        what="a HEADERS frame over the server's MAX_FRAME_SIZE",
        send=oversized_headers,
        codes=(FRAME_SIZE_ERROR,),
    ),
    ErrorRow(
        id="http2.ping-on-stream",
        title="PING on a stream other than 0 is a connection error PROTOCOL_ERROR",
        clause="RFC 9113 §6.7",
        what="a PING on stream 1",
        send=send_frames(frame(PING, 0, 1, b"12345678")),
        codes=(PROTOCOL_ERROR,),
    ),
    ErrorRow(
        id="http2.ping-bad-length",
        title="a PING whose length is not 8 is a connection error FRAME_SIZE_ERROR",
        clause="RFC 9113 §6.7",
        what="a PING of 6 bytes",
        send=send_frames(frame(PING, 0, 0, b"123456")),
        codes=(FRAME_SIZE_ERROR,),
    ),
    ErrorRow(
        id="http2.goaway-on-stream",
        title="GOAWAY on a stream other than 0 is a connection error PROTOCOL_ERROR",
        clause="RFC 9113 §6.8",
        what="a GOAWAY on stream 1",
        send=send_frames(frame(GOAWAY, 0, 1, struct.pack("!LL", 0, NO_ERROR))),
        codes=(PROTOCOL_ERROR,),
    ),
    ErrorRow(
        id="http2.data-idle-stream",
        title="DATA on an idle stream is a connection error PROTOCOL_ERROR",
        clause="RFC 9113 §5.1",
        what="DATA on stream 1 before any HEADERS",
        send=send_frames(data_frame(1, b"hello", end_stream=True)),
        codes=(PROTOCOL_ERROR,),
    ),
    ErrorRow(
        id="http2.rst-stream-idle",
        title="RST_STREAM on an idle stream is a connection error PROTOCOL_ERROR",
        clause="RFC 9113 §6.4",
        what="RST_STREAM on stream 1 before any HEADERS",
        send=send_frames(rst_stream_frame(1, CANCEL)),
        codes=(PROTOCOL_ERROR,),
    ),
    ErrorRow(
        id="http2.window-update-idle-stream",
        title="WINDOW_UPDATE on an idle stream is a connection error PROTOCOL_ERROR",
        clause="RFC 9113 §5.1",
        what="WINDOW_UPDATE on stream 1 before any HEADERS",
        send=send_frames(window_update_frame(1, 100)),
        codes=(PROTOCOL_ERROR,),
    ),
    ErrorRow(
        id="http2.data-half-closed",
        title="DATA on a stream the client ended (half-closed remote) is a STREAM_CLOSED error",
        clause="RFC 9113 §5.1",
        what="a GET with END_STREAM, then DATA on its stream",
        send=then("/h2/hold", True, lambda c, s: data_frame(s, b"late", end_stream=True)),
        codes=(STREAM_CLOSED,),
        stream_id=1,
    ),
    ErrorRow(
        id="http2.headers-closed-stream",
        title="HEADERS on a closed stream is a STREAM_CLOSED error",
        clause="RFC 9113 §5.1",
        what="a GET read to its END_STREAM, then HEADERS on its stream again",
        send=after_response(
            lambda c, s: c.headers_frame(s, c.request_fields("GET", "/http11/hello"))
        ),
        # §5.1.1 makes a new stream's id above every earlier one, so PROTOCOL_ERROR too.
        codes=(STREAM_CLOSED, PROTOCOL_ERROR),
        stream_id=1,
    ),
    ErrorRow(
        id="http2.frame-after-rst",
        title="DATA on a stream after the client's RST_STREAM is a STREAM_CLOSED error",
        clause="RFC 9113 §5.1",
        what="a POST's HEADERS, RST_STREAM(CANCEL), then DATA on its stream",
        send=then(
            "/h2/hold",
            False,
            lambda c, s: rst_stream_frame(s, CANCEL),
            lambda c, s: data_frame(s, b"late", end_stream=True),
        ),
        codes=(STREAM_CLOSED,),
        stream_id=1,
    ),
    ErrorRow(
        id="http2.even-stream-id",
        title="HEADERS on an even-numbered stream from the client is a connection error "
        "PROTOCOL_ERROR",
        clause="RFC 9113 §5.1.1",
        what="a GET on stream 2",
        send=headers_on(2),
        codes=(PROTOCOL_ERROR,),
    ),
    ErrorRow(
        id="http2.stream-id-decreasing",
        title="a new stream with an id below an earlier one is a connection error PROTOCOL_ERROR",
        clause="RFC 9113 §5.1.1",
        what="a GET on stream 5, then a GET on stream 3",
        send=decreasing_ids,
        codes=(PROTOCOL_ERROR,),
    ),
    ErrorRow(
        id="http2.headers-stream-zero",
        title="HEADERS on stream 0 is a connection error PROTOCOL_ERROR",
        clause="RFC 9113 §6.2",
        what="HEADERS on stream 0",
        send=headers_on(0),
        codes=(PROTOCOL_ERROR,),
    ),
    ErrorRow(
        id="http2.data-stream-zero",
        title="DATA on stream 0 is a connection error PROTOCOL_ERROR",
        clause="RFC 9113 §6.1",
        what="DATA on stream 0",
        send=send_frames(data_frame(0, b"hello")),
        codes=(PROTOCOL_ERROR,),
    ),
    ErrorRow(
        id="http2.data-padding-too-long",
        title="DATA whose padding is as long as its payload is a connection error PROTOCOL_ERROR",
        clause="RFC 9113 §6.1",
        what="a POST's HEADERS, then DATA with a pad length of 5 in a 5-byte payload",
        send=then("/h2/scope", False, lambda c, s: frame(DATA, PADDED, s, b"\x05abcd")),
        codes=(PROTOCOL_ERROR,),
    ),
    ErrorRow(
        id="http2.rst-stream-zero",
        title="RST_STREAM on stream 0 is a connection error PROTOCOL_ERROR",
        clause="RFC 9113 §6.4",
        what="RST_STREAM on stream 0",
        send=send_frames(rst_stream_frame(0, CANCEL)),
        codes=(PROTOCOL_ERROR,),
    ),
    ErrorRow(
        id="http2.rst-stream-bad-length",
        title="a RST_STREAM whose length is not 4 is a connection error FRAME_SIZE_ERROR",
        clause="RFC 9113 §6.4",
        what="a GET, then a 3-byte RST_STREAM on its stream",
        send=then("/h2/hold", True, lambda c, s: frame(RST_STREAM, 0, s, b"\x00\x00\x08")),
        codes=(FRAME_SIZE_ERROR,),
    ),
    ErrorRow(
        id="http2.priority-stream-zero",
        title="PRIORITY on stream 0 is a connection error PROTOCOL_ERROR",
        clause="RFC 9113 §6.3",
        what="PRIORITY on stream 0",
        send=send_frames(frame(PRIORITY, 0, 0, struct.pack("!LB", 1, 16))),
        codes=(PROTOCOL_ERROR,),
    ),
    ErrorRow(
        id="http2.priority-bad-length",
        title="a PRIORITY whose length is not 5 is a FRAME_SIZE_ERROR",
        clause="RFC 9113 §6.3",
        what="a 4-byte PRIORITY on stream 1",
        send=send_frames(frame(PRIORITY, 0, 1, struct.pack("!L", 0))),
        codes=(FRAME_SIZE_ERROR,),
        stream_id=1,
    ),
    ErrorRow(
        id="http2.push-promise-from-client",
        title="a PUSH_PROMISE from the client is a connection error PROTOCOL_ERROR",
        clause="RFC 9113 §8.4",
        what="a GET, then a PUSH_PROMISE on its stream",
        send=then(
            "/h2/hold",
            True,
            lambda c, s: frame(
                PUSH_PROMISE, END_HEADERS, s, struct.pack("!L", 2) + stream_block(c)
            ),
        ),
        codes=(PROTOCOL_ERROR,),
    ),
    ErrorRow(
        id="http2.window-update-zero",
        title="a WINDOW_UPDATE of 0 on the connection is a connection error PROTOCOL_ERROR",
        clause="RFC 9113 §6.9",
        what="WINDOW_UPDATE +0 on stream 0",
        send=send_frames(window_update_frame(0, 0)),
        codes=(PROTOCOL_ERROR,),
    ),
    ErrorRow(
        id="http2.window-update-zero-stream",
        title="a WINDOW_UPDATE of 0 on a stream is a stream error PROTOCOL_ERROR",
        clause="RFC 9113 §6.9",
        what="a GET, then WINDOW_UPDATE +0 on its stream",
        send=then("/h2/hold", True, lambda c, s: window_update_frame(s, 0)),
        codes=(PROTOCOL_ERROR,),
        stream_id=1,
    ),
    ErrorRow(
        id="http2.window-update-bad-length",
        title="a WINDOW_UPDATE whose length is not 4 is a connection error FRAME_SIZE_ERROR",
        clause="RFC 9113 §6.9",
        what="a 3-byte WINDOW_UPDATE on stream 0",
        send=send_frames(frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x01")),
        codes=(FRAME_SIZE_ERROR,),
    ),
    ErrorRow(
        id="http2.window-overflow",
        title="a WINDOW_UPDATE taking the connection window above 2^31-1 is a connection "
        "error FLOW_CONTROL_ERROR",
        clause="RFC 9113 §6.9.1",
        what="two WINDOW_UPDATE +2^31-1 on stream 0",
        send=send_frames(window_update_frame(0, MAX_WINDOW), window_update_frame(0, MAX_WINDOW)),
        codes=(FLOW_CONTROL_ERROR,),
    ),
    ErrorRow(
        id="http2.window-overflow-stream",
        title="a WINDOW_UPDATE taking a stream window above 2^31-1 is a stream error "
        "FLOW_CONTROL_ERROR",
        clause="RFC 9113 §6.9.1",
        what="a GET, then WINDOW_UPDATE +2^31-1 on its stream",
        send=then("/h2/hold", True, lambda c, s: window_update_frame(s, MAX_WINDOW)),
        codes=(FLOW_CONTROL_ERROR,),
        stream_id=1,
    ),
    ErrorRow(
        id="http2.initial-window-overflow",
        title="a SETTINGS_INITIAL_WINDOW_SIZE change that takes a stream window above 2^31-1 "
        "is a connection error FLOW_CONTROL_ERROR",
        clause="RFC 9113 §6.9.2",
        what="a GET, its stream window raised to 2^31-1, then SETTINGS with "
        "INITIAL_WINDOW_SIZE 65536",
        send=then(
            "/h2/hold",
            True,
            window_to_max,
            lambda c, s: settings_frame([(INITIAL_WINDOW_SIZE, 65536)]),
        ),
        codes=(FLOW_CONTROL_ERROR,),
    ),
    ErrorRow(
        id="http2.hpack-invalid-index",
        title="a field block naming an index beyond both tables is a connection error "
        "COMPRESSION_ERROR",
        clause="RFC 7541 §2.3.3",
        what="HEADERS whose field block is the indexed field 70 (the dynamic table is empty)",
        send=hpack_block(lambda c: integer(70, 7, 0x80)),
        codes=(COMPRESSION_ERROR,),
    ),
    ErrorRow(
        id="http2.hpack-index-zero",
        title="an indexed field of index 0 is a connection error COMPRESSION_ERROR",
        clause="RFC 7541 §6.1",
        what="HEADERS whose field block is the indexed field 0",
        send=hpack_block(lambda c: b"\x80"),
        codes=(COMPRESSION_ERROR,),
    ),
    ErrorRow(
        id="http2.hpack-table-size-over-setting",
        title="a dynamic table size update above SETTINGS_HEADER_TABLE_SIZE is a connection "
        "error COMPRESSION_ERROR",
        clause="RFC 7541 §6.3",
        what="HEADERS whose field block starts with a table size update one above the "
        "server's HEADER_TABLE_SIZE",
        send=hpack_block(over_table_size),
        codes=(COMPRESSION_ERROR,),
    ),
    ErrorRow(
        id="http2.hpack-table-size-late",
        title="a dynamic table size update after a field line is a connection error "
        "COMPRESSION_ERROR",
        clause="RFC 7541 §4.2",
        what="HEADERS whose field block ends with a table size update",
        send=hpack_block(late_table_size),
        codes=(COMPRESSION_ERROR,),
    ),
    ErrorRow(
        id="http2.hpack-huffman-padding",
        title="a Huffman string padded with more than 7 bits is a connection error "
        "COMPRESSION_ERROR",
        clause="RFC 7541 §5.2",
        what="HEADERS with a Huffman-coded value of 16 one bits",
        send=hpack_block(huffman_padding),
        codes=(COMPRESSION_ERROR,),
    ),
    ErrorRow(
        id="http2.hpack-truncated",
        title="a field block that ends inside a field line is a connection error COMPRESSION_ERROR",
        clause="RFC 9113 §4.3",
        what="HEADERS whose field block ends inside a name (10 bytes announced, 5 sent)",
        send=hpack_block(truncated_block),
        codes=(COMPRESSION_ERROR,),
    ),
    ErrorRow(
        id="http2.continuation-interleaved",
        title="a PING between HEADERS and its CONTINUATION is a connection error PROTOCOL_ERROR",
        clause="RFC 9113 §6.2",
        what="HEADERS without END_HEADERS, a PING, then the CONTINUATION",
        send=split_headers(lambda c, s: ping_frame()),
        codes=(PROTOCOL_ERROR,),
    ),
    ErrorRow(
        id="http2.continuation-other-stream",
        title="a CONTINUATION on another stream than its HEADERS is a connection error "
        "PROTOCOL_ERROR",
        clause="RFC 9113 §6.10",
        what="HEADERS without END_HEADERS on stream 1, then a CONTINUATION on stream 3",
        send=continuation_elsewhere,
        codes=(PROTOCOL_ERROR,),
    ),
    ErrorRow(
        id="http2.continuation-after-end-headers",
        title="a CONTINUATION after a HEADERS with END_HEADERS is a connection error "
        "PROTOCOL_ERROR",
        clause="RFC 9113 §6.10",
        what="a GET (HEADERS with END_HEADERS), then a CONTINUATION on its stream",
        send=then("/h2/hold", True, lambda c, s: frame(CONTINUATION, END_HEADERS, s, b"")),
        codes=(PROTOCOL_ERROR,),
    ),
    ErrorRow(
        id="http2.unknown-frame-in-field-block",
        title="an unknown frame between HEADERS and its CONTINUATION is a connection error "
        "PROTOCOL_ERROR",
        clause="RFC 9113 §5.5",
        what="HEADERS without END_HEADERS, a frame of unknown type 0xfa, then the CONTINUATION",
        send=split_headers(lambda c, s: frame(UNKNOWN_FRAME, 0, s, b"unknown")),
        codes=(PROTOCOL_ERROR,),
    ),
]
check_rows(CONNECTION_ERRORS, guarded(grade_error_row))


@dataclasses.dataclass(frozen=True, kw_only=True)
class MalformedRow(Row):
    what: str
    # The field lines of the request (pseudo-header fields included), in order; ``{path}`` is
    # the probe route.
    fields: tuple[tuple[bytes, bytes], ...]
    body: tuple[bytes, ...] = ()  # DATA frames after the HEADERS (the last with END_STREAM)
    trailers: tuple[tuple[bytes, bytes], ...] | None = None  # a trailing HEADERS, no END_STREAM


GET = ((b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/h2/scope"))
AUTHORITY = ((b":authority", b"localhost"),)
POST = ((b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/h2/scope"), *AUTHORITY)


def malformed(
    id: str,
    title: str,
    clause: str,
    what: str,
    fields: tuple[tuple[bytes, bytes], ...],
    **more: Any,
) -> MalformedRow:
    return MalformedRow(id=id, title=title, clause=clause, what=what, fields=fields, **more)


MALFORMED = [
    malformed(
        "http2.uppercase-field-name",
        "a request with an uppercase field name is malformed",
        "RFC 9113 §8.2.1",
        "a GET with the field X-Upper",
        (*GET, *AUTHORITY, (b"X-Upper", b"1")),
    ),
    malformed(
        "http2.field-name-invalid",
        "a request with a space in a field name is malformed",
        "RFC 9113 §8.2.1",
        "a GET with the field name 'x a'",
        (*GET, *AUTHORITY, (b"x a", b"1")),
    ),
    malformed(
        "http2.field-value-invalid",
        "a request with CR LF in a field value is malformed",
        "RFC 9113 §8.2.1",
        "a GET with the field x-split: 'a\\r\\nb'",
        (*GET, *AUTHORITY, (b"x-split", b"a\r\nb")),
    ),
    malformed(
        "http2.connection-specific-field",
        "a request with a connection-specific field (Connection) is malformed",
        "RFC 9113 §8.2.2",
        "a GET with connection: keep-alive",
        (*GET, *AUTHORITY, (b"connection", b"keep-alive")),
    ),
    malformed(
        "http2.te-not-trailers",
        "a request with TE other than 'trailers' is malformed",
        "RFC 9113 §8.2.2",
        "a GET with te: gzip",
        (*GET, *AUTHORITY, (b"te", b"gzip")),
    ),
    malformed(
        "http2.pseudo-after-regular",
        "a request with a pseudo-header field after a regular field is malformed",
        "RFC 9113 §8.3",
        "a GET whose :authority follows a user-agent field",
        (*GET, (b"user-agent", b"conformance"), *AUTHORITY),
    ),
    malformed(
        "http2.pseudo-unknown",
        "a request with an undefined pseudo-header field is malformed",
        "RFC 9113 §8.3",
        "a GET with :foo",
        (*GET, *AUTHORITY, (b":foo", b"bar")),
    ),
    malformed(
        "http2.pseudo-response-in-request",
        "a request with the response pseudo-header :status is malformed",
        "RFC 9113 §8.3",
        "a GET with :status 200",
        (*GET, *AUTHORITY, (b":status", b"200")),
    ),
    malformed(
        "http2.pseudo-duplicated",
        "a request with :path twice is malformed",
        "RFC 9113 §8.3.1",
        "a GET with two :path fields",
        (*GET, (b":path", b"/h2/scope"), *AUTHORITY),
    ),
    malformed(
        "http2.missing-method",
        "a request without :method is malformed",
        "RFC 9113 §8.3.1",
        "a request with :scheme, :path and :authority only",
        (*GET[1:], *AUTHORITY),
    ),
    malformed(
        "http2.missing-scheme",
        "a request without :scheme is malformed",
        "RFC 9113 §8.3.1",
        "a GET without :scheme",
        (GET[0], GET[2], *AUTHORITY),
    ),
    malformed(
        "http2.missing-path",
        "a request without :path is malformed",
        "RFC 9113 §8.3.1",
        "a GET without :path",
        (*GET[:2], *AUTHORITY),
    ),
    malformed(
        "http2.empty-path",
        "a request with an empty :path is malformed",
        "RFC 9113 §8.3.1",
        "a GET with :path ''",
        (*GET[:2], (b":path", b""), *AUTHORITY),
    ),
    malformed(
        "http2.content-length-mismatch",
        "a request whose DATA add up to less than its content-length is malformed",
        "RFC 9113 §8.1.1",
        "a POST with content-length 10 and 5 bytes of DATA",
        (*POST, (b"content-length", b"10")),
        body=(b"12345",),
    ),
    malformed(
        "http2.trailers-without-end-stream",
        "a trailing HEADERS without END_STREAM is malformed",
        "RFC 9113 §8.1",
        "a POST's HEADERS, DATA, then a trailing HEADERS without END_STREAM",
        POST,
        body=(b"12345",),
        trailers=((b"x-trailer", b"1"),),
    ),
]


def grade_malformed_row(ctx: Context, row: MalformedRow) -> Result:
    with h2(ctx) as connection:
        stream_id = connection.new_stream()
        ends = not row.body
        flags = END_HEADERS | (END_STREAM if ends else 0)
        data = frame(HEADERS, flags, stream_id, literal_block(list(row.fields)))
        for index, chunk in enumerate(row.body):
            last = index == len(row.body) - 1 and row.trailers is None
            data += data_frame(stream_id, chunk, end_stream=last)
        if row.trailers is not None:
            data += frame(HEADERS, END_HEADERS, stream_id, literal_block(list(row.trailers)))
        connection.send(data)
        return grade_malformed(ctx, connection, stream_id, row.what)


check_rows(MALFORMED, guarded(grade_malformed_row))


@dataclasses.dataclass(frozen=True, kw_only=True)
class IgnoredRow(Row):
    what: str
    send: Send


def grade_ignored_row(ctx: Context, row: IgnoredRow) -> Result:
    with h2(ctx) as connection:
        problem = row.send(connection)
        if problem:
            return failed(f"setting up {row.what}: {problem}")
        return grade_still_serving(ctx, connection, row.what)


def reserved_bit_get(connection: H2Connection) -> str | None:
    stream_id = connection.new_stream()
    fields = connection.request_fields("GET", "/http11/hello")
    connection.send(connection.headers_frame(stream_id | 1 << 31, fields))
    response = connection.read_response(stream_id)
    if response.status != 200 or response.body != HELLO:
        return f"the GET got {response.describe()}"
    return None


def reset_held(code: int) -> Send:
    def send(connection: H2Connection) -> None:
        stream_id = open_stream(connection)
        connection.send(rst_stream_frame(stream_id, code))

    return send


IGNORED = [
    IgnoredRow(
        id="http2.settings-unknown-ignored",
        title="an unknown setting is ignored",
        clause="RFC 9113 §6.5.2",
        what="SETTINGS with the unknown setting 0xfa0",
        send=send_frames(settings_frame([(UNKNOWN_SETTING, 1)])),
    ),
    IgnoredRow(
        id="http2.unknown-frame-ignored",
        title="frames of an unknown type are ignored (on stream 0 and on an idle stream)",
        clause="RFC 9113 §5.5",
        what="frames of the unknown type 0xfa on streams 0 and 1",
        send=send_frames(frame(UNKNOWN_FRAME, 0xFF, 0, b"?"), frame(UNKNOWN_FRAME, 0, 1, b"?")),
    ),
    IgnoredRow(
        id="http2.unknown-flags-ignored",
        title="undefined flags are ignored (a PING with every flag but ACK is still a PING)",
        clause="RFC 9113 §4.1",
        what="a PING with the flags 0xfe",
        send=send_frames(frame(PING, 0xFE, 0, b"flags!!!")),
    ),
    IgnoredRow(
        id="http2.reserved-bit-ignored",
        title="the reserved bit of the stream identifier is ignored",
        clause="RFC 9113 §4.1",
        what="a GET on stream 1 with the reserved bit set, answered on stream 1",
        send=reserved_bit_get,
    ),
    IgnoredRow(
        id="http2.priority-idle-stream",
        title="PRIORITY on an idle stream is allowed",
        clause="RFC 9113 §5.1",
        what="PRIORITY on the idle stream 9",
        send=send_frames(frame(PRIORITY, 0, 9, struct.pack("!LB", 0, 16))),
    ),
    IgnoredRow(
        id="http2.rst-stream-unknown-code",
        title="a RST_STREAM with an unknown error code triggers nothing special",
        clause="RFC 9113 §7",
        what="a GET, then RST_STREAM with the error code 0xff on its stream",
        send=reset_held(0xFF),
    ),
    IgnoredRow(
        id="http2.continuation-accepted",
        title="a field block split over HEADERS and CONTINUATION frames is served",
        clause="RFC 9113 §6.10",
        what="a GET whose field block is in a HEADERS and two CONTINUATIONs",
        send=lambda c: continued_get(c),
    ),
]


def continued_get(connection: H2Connection) -> str | None:
    stream_id = connection.new_stream()
    block = literal_block(connection.request_fields("GET", "/http11/hello"))
    connection.send(
        frame(HEADERS, END_STREAM, stream_id, block[:4])
        + frame(CONTINUATION, 0, stream_id, block[4:9])
        + frame(CONTINUATION, END_HEADERS, stream_id, block[9:])
    )
    response = connection.read_response(stream_id)
    if response.status != 200 or response.body != HELLO:
        return f"the GET got {response.describe()}"
    return None


check_rows(IGNORED, guarded(grade_ignored_row))


# -- frame sizes and flow control


@h2_check(
    "http2.frame-max-size-accepted",
    title="a DATA frame of 2^14 bytes (the smallest MAX_FRAME_SIZE) is accepted",
    clause="RFC 9113 §4.2",
)
def frame_max_size_accepted(ctx: Context) -> Result:
    """§4.2: "All implementations MUST be capable of receiving and minimally processing frames
    up to 2^14 octets in length"."""
    with h2(ctx) as connection:
        body = pattern(2**14)
        probe_id = ctx.new_id("h2")
        stream_id = connection.request("POST", probe_target("/h2/scope", probe_id), body=body)
        response = connection.read_response(stream_id)
        observed = f"a POST of one 16384-byte DATA got {response.describe()}"
        if response.status != 200:
            return failed(observed)
        events = ctx.wait_events(probe_id, has_event("scope"), 1.0)
        seen = find_event(events, "scope") or {}
        length = seen.get("body_length")
        return verdict(length == len(body), f"{observed}; the app read {length} bytes")


@h2_check(
    "http2.frame-size-respected",
    title="the server's DATA frames fit the client's SETTINGS_MAX_FRAME_SIZE",
    clause="RFC 9113 §4.2",
)
def frame_size_respected(ctx: Context) -> Result:
    """§4.2: "An endpoint MUST NOT send a frame with a length that exceeds the size defined in
    SETTINGS_MAX_FRAME_SIZE." The client leaves it at its initial value, 16384."""
    with h2(ctx) as connection:
        size = 100_000
        target = probe_target("/h2/sized", ctx.new_id("h2"), size=str(size))
        stream_id = connection.request("GET", target)
        response = connection.read_response(stream_id)
        largest = max(response.data_frames, default=0)
        observed = (
            f"a {size}-byte response: {response.describe()} in "
            f"{len(response.data_frames)} DATA frames, the largest {largest} bytes"
        )
        ok = response.complete and response.body == pattern(size) and largest <= 2**14
        return verdict(ok, observed)


def read_data(
    connection: H2Connection, stream_id: int, until: Callable[[int], bool], timeout_s: float
) -> tuple[int, bool, str]:
    """Read the stream's DATA until ``until(total)`` holds or the deadline passes: the bytes
    received, whether END_STREAM came, and how the wait ended if it ended early."""
    total = 0
    deadline = time.monotonic() + timeout_s
    while not until(total):
        try:
            item = connection.read_frame(max(0.0, deadline - time.monotonic()))
        except Ended as exc:
            return total, False, exc.describe()
        if item.type == GOAWAY and item.error_code != NO_ERROR:
            return total, False, item.describe()
        if item.stream_id != stream_id:
            continue
        if item.type == RST_STREAM:
            return total, False, item.describe()
        if item.type == DATA:
            total += len(item.payload)
            if item.has(END_STREAM):
                return total, True, ""
    return total, False, ""


@h2_check(
    "http2.small-window-honoured",
    title="the server sends no more DATA than a small initial window allows until a WINDOW_UPDATE",
    clause="RFC 9113 §6.9.1",
)
def small_window_honoured(ctx: Context) -> Result:
    """§6.9.1: "A sender MUST NOT send a flow-controlled frame with a length that exceeds the
    space available in either of the flow-control windows advertised by the receiver." With
    SETTINGS_INITIAL_WINDOW_SIZE 16, a 100-byte response sends 16 bytes, then (after a PING
    round trip and a pause) nothing more until the client opens the window."""
    window, size = 16, 100
    with h2(ctx, [(INITIAL_WINDOW_SIZE, window)]) as connection:
        target = probe_target("/h2/sized", ctx.new_id("h2"), size=str(size))
        stream_id = connection.request("GET", target)
        got, ended, how = read_data(connection, stream_id, lambda total: total >= window, 5.0)
        if got < window:
            return failed(f"window {window}: only {got} bytes of DATA came ({how or 'silence'})")
        connection.ping()
        extra, ended_early, how = read_data(connection, stream_id, lambda total: False, 0.5)
        got += extra
        if got > window or ended or ended_early:
            return failed(f"with a window of {window} bytes the server sent {got} bytes of DATA")
        connection.send(window_update_frame(stream_id, size - window))
        rest, ended, how = read_data(connection, stream_id, lambda total: False, 5.0)
        observed = (
            f"{window} bytes within the window, nothing more until a WINDOW_UPDATE of "
            f"{size - window}, then {rest} bytes" + (" and END_STREAM" if ended else f" ({how})")
        )
        return verdict(ended and got + rest == size, observed)


@h2_check(
    "http2.initial-window-change",
    title="a SETTINGS_INITIAL_WINDOW_SIZE raised mid-stream opens the stream's window",
    clause="RFC 9113 §6.9.2",
)
def initial_window_change(ctx: Context) -> Result:
    """§6.9.2: "When the value of SETTINGS_INITIAL_WINDOW_SIZE changes, a receiver MUST adjust
    the size of all stream flow-control windows that it maintains by the difference between the
    new value and the old value." The window starts at 0; a SETTINGS raising it to the response's
    size lets the whole response through."""
    size = 100
    with h2(ctx, [(INITIAL_WINDOW_SIZE, 0)]) as connection:
        target = probe_target("/h2/sized", ctx.new_id("h2"), size=str(size))
        stream_id = connection.request("GET", target)
        early, ended, how = read_data(connection, stream_id, lambda total: total > 0, 0.5)
        if early:
            return failed(f"with a window of 0 the server sent {early} bytes of DATA")
        connection.send(settings_frame([(INITIAL_WINDOW_SIZE, size)]))
        got, ended, how = read_data(connection, stream_id, lambda total: False, 5.0)
        observed = f"window 0: no DATA; after SETTINGS raising it to {size}: {got} bytes" + (
            " and END_STREAM" if ended else f" ({how or 'silence'})"
        )
        return verdict(ended and got == size, observed)


# -- the request as the app sees it, and the response


def scope_trip(
    ctx: Context,
    method: str = "GET",
    body: list[bytes] | None = None,
    headers: list[tuple[str, str]] | None = None,
    authority: str = "conformance.test:8080",
) -> tuple[H2Response, dict[str, Any] | None, str]:
    """A request to /h2/scope: the response, what the app saw, and the request in words."""
    probe_id = ctx.new_id("h2")
    target = probe_target("/h2/scope", probe_id, x="1")
    with h2(ctx) as connection:
        stream_id = connection.new_stream()
        fields = connection.request_fields(method, target, authority, headers)
        data = connection.headers_frame(stream_id, fields, end_stream=not body)
        for index, chunk in enumerate(body or []):
            data += data_frame(stream_id, chunk, end_stream=index == len(body or []) - 1)
        connection.send(data)
        response = connection.read_response(stream_id)
    events = ctx.wait_events(probe_id, has_event("scope"), 1.0)
    seen = find_event(events, "scope")
    return response, seen, f"{method} {target} with :authority {authority}"


def scope_result(
    response: H2Response, seen: dict[str, Any] | None, what: str
) -> Result | dict[str, Any]:
    if response.status != 200 or seen is None:
        reached = "" if seen else ", and the probe app logged nothing"
        return failed(f"{what}: {response.describe()}{reached}")
    return seen


@h2_check(
    "http2.scope-http-version",
    title="a request over HTTP/2 has http_version '2' and the request line of its "
    "pseudo-header fields",
    clause="ASGI HTTP spec, HTTP Connection Scope",
)
def scope_http_version(ctx: Context) -> Result:
    """ASGI HTTP Connection Scope: ``http_version`` is "One of "1.0", "1.1" or "2"", and
    ``method``, ``path`` and ``query_string`` come from :method and :path."""
    seen = scope_result(*scope_trip(ctx))
    if isinstance(seen, Result):
        return seen
    got = {key: seen.get(key) for key in ("http_version", "method", "path", "query_string")}
    wanted = {"http_version": "2", "method": "GET", "path": "/h2/scope"}
    ok = all(got[key] == value for key, value in wanted.items())
    ok = ok and str(got["query_string"]).endswith("&x=1")
    return verdict(ok, f"the app saw {got}")


@h2_check(
    "http2.scope-host-from-authority",
    title=":authority becomes the first header, named host; no pseudo-header is a header",
    clause="ASGI HTTP spec, HTTP Connection Scope",
)
def scope_host_from_authority(ctx: Context) -> Result:
    """ASGI HTTP Connection Scope, ``headers``: "Pseudo headers (present in HTTP/2 and HTTP/3)
    must be removed; if :authority is present its value must be added to the start of the
    iterable with host as the header name or replace any existing host header already
    present." """
    seen = scope_result(*scope_trip(ctx))
    if isinstance(seen, Result):
        return seen
    headers = [tuple(item) for item in seen.get("headers") or []]
    hosts = [value for name, value in headers if name == "host"]
    pseudo = [name for name, _ in headers if name.startswith(":")]
    ok = bool(headers) and headers[0] == ("host", "conformance.test:8080") and len(hosts) == 1
    return verdict(ok and not pseudo, f"the app's headers were {headers}")


@h2_check(
    "http2.cookies-joined",
    title="several cookie fields reach the app as one, joined with '; '",
    clause="RFC 9113 §8.2.3",
)
def cookies_joined(ctx: Context) -> Result:
    """§8.2.3: "If there are multiple Cookie header fields after decompression, these MUST be
    concatenated into a single octet string using the two-octet delimiter of 0x3b, 0x20 ("; ")
    before being passed into a non-HTTP/2 context such as an HTTP/1.1 connection, or a generic
    HTTP server application." """
    cookies = [("cookie", "a=1"), ("cookie", "b=2"), ("cookie", "c=3")]
    seen = scope_result(*scope_trip(ctx, headers=cookies))
    if isinstance(seen, Result):
        return seen
    got = [value for name, value in seen.get("headers") or [] if name == "cookie"]
    return verdict(got == ["a=1; b=2; c=3"], f"three cookie fields reached the app as {got}")


@h2_check(
    "http2.post-body",
    title="a POST's body in several DATA frames reaches the app whole",
    clause="RFC 9113 §8.1",
)
def post_body(ctx: Context) -> Result:
    """§8.1: a request is a HEADERS frame, "zero or more DATA frames containing the message
    content", the last with END_STREAM; the app reads their data in order."""
    parts = [pattern(1000), b"middle", pattern(3000)]
    body = b"".join(parts)
    headers = [("content-length", str(len(body)))]
    seen = scope_result(*scope_trip(ctx, "POST", parts, headers))
    if isinstance(seen, Result):
        return seen
    ok = seen.get("body_length") == len(body)
    ok = ok and seen.get("body_sha256") == hashlib.sha256(body).hexdigest()
    length = seen.get("body_length")
    return verdict(ok, f"{len(body)} bytes in 3 DATA frames: the app read {length} bytes")


@h2_check(
    "http2.request-trailers",
    title="a request with a trailer section (a last HEADERS with END_STREAM) is served",
    clause="RFC 9113 §8.1",
)
def request_trailers(ctx: Context) -> Result:
    """§8.1: a message is one HEADERS frame, "zero or more DATA frames containing the message
    content", and "optionally, one HEADERS frame ... containing the trailer section"; the last
    frame carries END_STREAM."""
    probe_id = ctx.new_id("h2")
    with h2(ctx) as connection:
        stream_id = connection.new_stream()
        fields = connection.request_fields("POST", probe_target("/h2/scope", probe_id))
        trailer = [(b"x-checksum", b"c0ffee")]
        connection.send(
            connection.headers_frame(stream_id, fields, end_stream=False)
            + data_frame(stream_id, b"body")
            + connection.headers_frame(stream_id, trailer, end_stream=True)
        )
        response = connection.read_response(stream_id)
    seen = find_event(ctx.wait_events(probe_id, has_event("scope"), 1.0), "scope") or {}
    observed = f"HEADERS, 4 bytes of DATA, trailers: {response.describe()}"
    if seen:
        observed += f"; the app read {seen.get('body_length')} bytes"
    return verdict(response.status == 200 and seen.get("body_length") == 4, observed)


@h2_check(
    "http2.large-request-body",
    title="a 1 MiB request body, sent within the server's flow-control windows, reaches the "
    "app whole",
    clause="ASGI HTTP spec, Request",
)
def large_request_body(ctx: Context) -> Result:
    """The body comes to the app in http.request messages (ASGI HTTP spec, Request); over
    HTTP/2 the client may send only what the server's windows allow (RFC 9113 §6.9.1), so the
    server must open them (WINDOW_UPDATE) as the app reads, or a body larger than its initial
    windows never arrives."""
    body = pattern(2**20)
    probe_id = ctx.new_id("h2")
    with h2(ctx) as connection:
        stream_id = connection.new_stream()
        target = probe_target("/h2/scope", probe_id)
        headers = [("content-length", str(len(body)))]
        fields = connection.request_fields("POST", target, headers=headers)
        connection.send(connection.headers_frame(stream_id, fields, end_stream=False))
        problem = connection.send_body(stream_id, body, 10.0)
        if problem:
            return failed(f"a POST of 1 MiB: {problem}")
        response = connection.read_response(stream_id)
    seen = find_event(ctx.wait_events(probe_id, has_event("scope"), 1.0), "scope") or {}
    length = seen.get("body_length")
    ok = response.status == 200 and seen.get("body_sha256") == hashlib.sha256(body).hexdigest()
    return verdict(ok, f"a POST of 1 MiB: {response.describe()}; the app read {length} bytes")


# -- the ASGI extensions on HTTP/2


def ext_trip(
    ctx: Context, path: str, headers: list[tuple[str, str]] | None = None
) -> tuple[H2Response, list[str] | None]:
    """A GET for an extensions probe route: the response, and the extensions the scope
    offered (None if the app was not reached)."""
    probe_id = ctx.new_id("ext")
    with h2(ctx) as connection:
        stream_id = connection.request("GET", probe_target(path, probe_id), headers=headers)
        response = connection.read_response(stream_id, ctx.options.io_timeout_s + 5.0)
    record = find_event(ctx.wait_events(probe_id, has_event("offered"), 1.0), "offered")
    return response, None if record is None else list(record.get("extensions") or [])


def unoffered(response: H2Response, offered: list[str] | None, name: str) -> Result | None:
    if offered is None:
        return failed(f"{response.describe()}, and the probe app was not reached")
    if name not in offered:
        return not_applicable(f"{name} not offered on HTTP/2: scope['extensions'] had {offered}")
    return None


@h2_check(
    "http2.response-trailers",
    title="http.response.trailers on HTTP/2: the trailer fields in a last HEADERS frame",
    clause="reading: h2-trailers-early-hints",
    level=READING,
)
def response_trailers(ctx: Context) -> Result:
    """Where the scope offers http.response.trailers, its fields end the response: on HTTP/2
    a HEADERS frame with END_STREAM after the DATA (RFC 9113 §8.1), asked for with
    ``te: trailers``."""
    response, offered = ext_trip(ctx, "/ext/trailers", [("te", "trailers")])
    skip = unoffered(response, offered, TRAILERS)
    if skip is not None:
        return skip
    observed = f"{response.describe()}, trailer fields {response.trailers}"
    ok = response.status == 200 and response.body == b"".join(BODY_PARTS)
    ok = ok and response.complete and response.trailers == list(TRAILER_FIELDS)
    return verdict(ok, observed)


@h2_check(
    "http2.early-hints",
    title="http.response.early_hint on HTTP/2: a 103 HEADERS with the links before the final "
    "response (or the hint ignored)",
    clause="reading: h2-trailers-early-hints",
    level=READING,
)
def early_hints(ctx: Context) -> Result:
    """Early Hints (RFC 8297) on HTTP/2 is a HEADERS frame with :status 103 before the final
    response's; a server may also drop the hint. A 103 after the final response is wrong."""
    response, offered = ext_trip(ctx, "/ext/early-hint")
    skip = unoffered(response, offered, EARLY_HINT)
    if skip is not None:
        return skip
    observed = f"{response.describe()}, interim {len(response.interim)}"
    late = response.trailers is not None and (b":status", b"103") in response.trailers
    if late or response.status != 200 or response.body != HINTED_BODY:
        return failed(observed + (", and a 103 after the final HEADERS" if late else ""))
    if not response.interim:
        return passed(f"{observed}: the hint was dropped, which the spec allows")
    hint = response.interim[0]
    links = b", ".join(value for name, value in hint if name == b"link")
    observed += f": a 103 with link {links!r}"
    return verdict(links == b", ".join(LINKS), observed)


@h2_check(
    "http2.pathsend-bytes",
    title="http.response.pathsend on HTTP/2: the file's bytes exactly, in DATA frames",
    clause="ASGI extensions, Path Send",
)
def pathsend_bytes(ctx: Context) -> Result:
    response, offered = ext_trip(ctx, "/ext/pathsend")
    skip = unoffered(response, offered, PATHSEND)
    if skip is not None:
        return skip
    ok = response.status == 200 and response.complete and response.body == file_bytes(FILE_SIZE)
    return verdict(ok, f"a pathsend of a {FILE_SIZE}-byte file: {response.describe()}")


@h2_check(
    "http2.zerocopysend-bytes",
    title="http.response.zerocopysend on HTTP/2: the file's bytes exactly, in DATA frames",
    clause="ASGI extensions, Zero Copy Send",
)
def zerocopysend_bytes(ctx: Context) -> Result:
    response, offered = ext_trip(ctx, "/ext/zerocopysend")
    skip = unoffered(response, offered, ZEROCOPYSEND)
    if skip is not None:
        return skip
    ok = response.status == 200 and response.complete and response.body == file_bytes(FILE_SIZE)
    return verdict(ok, f"a zerocopysend of a {FILE_SIZE}-byte file: {response.describe()}")


# -- WebSocket over HTTP/2 (RFC 8441)


@dataclasses.dataclass(frozen=True)
class WebSocketTrip:
    """A WebSocket over an extended CONNECT: how it went, or the verdict that stops a check."""

    stop: Result | None
    probe_id: str
    observed: str = ""
    echoed: bool = False


def websocket_trip(ctx: Context) -> WebSocketTrip:
    """Open a WebSocket on /ws/echo by an extended CONNECT, send a text message, read the echo,
    and close."""
    probe_id = ctx.new_id("h2ws")
    with h2(ctx) as connection:
        connection.ping()  # the server's SETTINGS have all been read
        if connection.server_settings.get(ENABLE_CONNECT_PROTOCOL) != 1:
            reason = "the server did not send SETTINGS_ENABLE_CONNECT_PROTOCOL 1"
            return WebSocketTrip(not_applicable(reason), probe_id)
        stream_id = connection.new_stream()
        fields = [
            (b":method", b"CONNECT"),
            (b":protocol", b"websocket"),
            (b":scheme", b"http"),
            (b":path", probe_target("/ws/echo", probe_id).encode("latin-1")),
            (b":authority", b"localhost"),
            (b"sec-websocket-version", b"13"),
        ]
        connection.send(connection.headers_frame(stream_id, fields, end_stream=False))
        answer = connection.read_until(
            lambda item: (
                item.stream_id == stream_id and (item.fields is not None or item.type == RST_STREAM)
            )
        )
        if isinstance(answer, Ended) or answer.fields is None:
            what = f"the extended CONNECT got {recent(connection, 1)}"
            return WebSocketTrip(failed(what), probe_id)
        status = dict(answer.fields).get(b":status", b"").decode("latin-1")
        if status != "200":
            what = f"the extended CONNECT got :status {status}"
            return WebSocketTrip(failed(what), probe_id)
        message = b"hello over HTTP/2"
        connection.send(data_frame(stream_id, encode_frame(OP_TEXT, message, mask=True)))
        got = b""
        deadline = time.monotonic() + ctx.options.io_timeout_s
        while len(got) < 2 + len(message):
            item = connection.read_until(
                lambda item: item.stream_id == stream_id and item.type in (DATA, RST_STREAM),
                max(0.0, deadline - time.monotonic()),
            )
            if isinstance(item, Ended) or item.type != DATA:
                what = f":status 200, then a text message got {recent(connection, 1)}"
                return WebSocketTrip(failed(what), probe_id)
            got += item.data()
        echoed = got[:2] == bytes([0x80 | OP_TEXT, len(message)]) and got[2:] == message
        connection.send(data_frame(stream_id, encode_frame(OP_CLOSE, b"\x03\xe8", mask=True)))
    observed = f":status 200; a text message echoed as {got[:40]!r}"
    return WebSocketTrip(None, probe_id, observed, echoed)


@h2_check(
    "http2.websocket-extended-connect",
    title="where SETTINGS_ENABLE_CONNECT_PROTOCOL is 1, a WebSocket over an extended CONNECT "
    "gets :status 200 and echoes a message",
    clause="RFC 8441 §5",
)
def websocket_extended_connect(ctx: Context) -> Result:
    """RFC 8441 §3: a server that accepts the extended CONNECT sends the setting
    SETTINGS_ENABLE_CONNECT_PROTOCOL with the value 1; §4 and §5: the client then opens a
    WebSocket with :method CONNECT, :protocol websocket, :scheme, :path and :authority, a
    :status 200 accepts it, and the stream's DATA frames carry the WebSocket frames."""
    trip = websocket_trip(ctx)
    if trip.stop is not None:
        return trip.stop
    return verdict(trip.echoed, trip.observed)


@h2_check(
    "http2.websocket-scope",
    title="a WebSocket over HTTP/2 has a websocket scope with http_version '2'",
    clause="reading: h2-websocket",
    level=READING,
)
def websocket_scope(ctx: Context) -> Result:
    """ASGI WebSocket Connection Scope: ``http_version`` is "One of "1.1" or "2""; an extended
    CONNECT with :protocol websocket is a WebSocket, not an HTTP request."""
    trip = websocket_trip(ctx)
    if trip.stop is not None and trip.stop.status != FAIL:
        return trip.stop
    events = ctx.wait_events(trip.probe_id, has_event("scope"), 1.0)
    scope = find_event(events, "scope")
    if scope is None:
        reached = "an HTTP request" if find_event(events, "http-scope") else "nothing"
        shown = trip.stop.observed if trip.stop else trip.observed
        return failed(f"{shown}; the app saw {reached}")
    got = {"type": scope.get("type"), "http_version": scope.get("http_version")}
    return verdict(got == {"type": "websocket", "http_version": "2"}, f"the app saw {got}")


def fetch(ctx: Context, target: str, method: str = "GET") -> H2Response:
    with h2(ctx) as connection:
        stream_id = connection.request(method, target)
        return connection.read_response(stream_id)


@h2_check(
    "http2.response-pseudo-headers",
    title="a response's field block starts with :status and has no other pseudo-header field",
    clause="RFC 9113 §8.3.2",
)
def response_pseudo_headers(ctx: Context) -> Result:
    """§8.3.2: ":status ... MUST be included in all responses"; §8.3: "Pseudo-header fields
    defined for requests MUST NOT appear in responses" and "All pseudo-header fields MUST
    appear in a field block before all regular field lines"."""
    response = fetch(ctx, "/http11/hello")
    names = [name.decode("latin-1") for name, _ in response.headers]
    observed = f"a GET got {response.describe()} with the fields {names}"
    pseudo = [name for name in names if name.startswith(":")]
    return verdict(pseudo == [":status"] and names[:1] == [":status"], observed)


@h2_check(
    "http2.response-no-connection-fields",
    title="the server sends no connection-specific field, even when the app sets one",
    clause="RFC 9113 §8.2.2",
)
def response_no_connection_fields(ctx: Context) -> Result:
    """§8.2.2: "An endpoint MUST NOT generate an HTTP/2 message containing connection-specific
    header fields." The app sets transfer-encoding: chunked (and sends a body that is not)."""
    response = fetch(ctx, probe_target("/http11/app-transfer-encoding", ctx.new_id("h2")))
    found = [
        f"{name.decode('latin-1')}: {value.decode('latin-1')}"
        for name, value in response.headers
        if name in CONNECTION_SPECIFIC or name == b"upgrade"
    ]
    observed = f"{response.describe()}, connection-specific fields: {found or 'none'}"
    if response.status is None and response.reset is None:
        return failed(observed)
    return verdict(not found, observed)


@h2_check(
    "http2.response-lowercase-names",
    title="the response's field names are lowercase, even when the app's are not",
    clause="RFC 9113 §8.2.1",
)
def response_lowercase_names(ctx: Context) -> Result:
    """§8.2.1: "field names MUST be converted to lowercase when constructing an HTTP/2
    message." The app sends X-Upper-Case."""
    response = fetch(ctx, probe_target("/asgi/uppercase-header", ctx.new_id("h2")))
    upper = [name.decode("latin-1") for name, _ in response.headers if name != name.lower()]
    observed = f"{response.describe()}, uppercase names: {upper or 'none'}"
    if response.status is None and response.reset is None:
        return failed(observed)
    return verdict(not upper, observed)


@h2_check(
    "http2.head-no-data",
    title="a response to HEAD carries no DATA payload",
    clause="RFC 9110 §9.3.2",
)
def head_no_data(ctx: Context) -> Result:
    """RFC 9110 §9.3.2: "The HEAD method is identical to GET except that the server MUST NOT
    send content in the response." """
    response = fetch(ctx, "/http11/hello", "HEAD")
    return verdict(
        response.status == 200 and response.complete and not response.body,
        f"HEAD got {response.describe()}",
    )


# -- streams: concurrency, reset, shutdown


@h2_check(
    "http2.concurrent-streams-limit",
    title="a stream above the server's SETTINGS_MAX_CONCURRENT_STREAMS is refused",
    clause="RFC 9113 §5.1.2",
)
def concurrent_streams_limit(ctx: Context) -> Result:
    """§5.1.2: "An endpoint that receives a HEADERS frame that causes its advertised concurrent
    stream limit to be exceeded MUST treat this as a stream error of type PROTOCOL_ERROR or
    REFUSED_STREAM." The client opens as many held streams as the limit, then one more."""
    with h2(ctx) as connection:
        limit = connection.server_settings.get(MAX_CONCURRENT_STREAMS)
        if limit is None or limit > 1000:
            return not_applicable(f"the server advertised a limit of {limit}: not checked")
        held = [open_stream(connection) for _ in range(limit)]
        connection.ping()
        extra = open_stream(connection)
        answer = connection.read_until(
            lambda item: item.type == RST_STREAM and item.stream_id in (*held, extra),
            ctx.options.hang_s,
        )
        connection.send(b"".join(rst_stream_frame(stream_id, CANCEL) for stream_id in held))
        what = f"{limit} streams held open, then stream {extra}"
        if isinstance(answer, Ended):
            return failed(f"{what}: {answer.describe()}")
        observed = f"{what}: {answer.describe()}"
        if answer.type == GOAWAY:
            return verdict(answer.error_code in (PROTOCOL_ERROR, REFUSED_STREAM), observed)
        ok = answer.stream_id == extra and answer.error_code in (PROTOCOL_ERROR, REFUSED_STREAM)
        return verdict(ok, observed)


@h2_check(
    "http2.rst-stream-ends-stream",
    title="after the client's RST_STREAM the server sends nothing more on that stream",
    clause="RFC 9113 §6.4",
)
def rst_stream_ends_stream(ctx: Context) -> Result:
    """§6.4: "After receiving a RST_STREAM on a stream, the receiver MUST NOT send additional
    frames for that stream, except for PRIORITY." A 1 MB response, reset after its first DATA;
    the connection goes on to serve a GET."""
    with h2(ctx) as connection:
        # The reset stream's DATA count against the connection window too: open it wide, so
        # that the GET after the reset is not kept waiting on it.
        connection.send(window_update_frame(0, 2**24))
        target = probe_target("/h2/sized", ctx.new_id("h2"), size=str(2**20))
        stream_id = connection.request("GET", target)
        got, ended, how = read_data(connection, stream_id, lambda total: total > 0, 5.0)
        if not got or ended:
            return failed(f"a 1 MiB response: {got} bytes ({how or 'it ended'})")
        connection.send(rst_stream_frame(stream_id, CANCEL))
        connection.ping()  # frames sent before the server read the reset are allowed
        skip = len(connection.frames)
        next_id = connection.request("GET", "/http11/hello")
        response = connection.read_response(next_id)
        later = [
            item.describe()
            for item in connection.frames[skip:]
            if item.stream_id == stream_id and item.type != PRIORITY
        ]
        observed = f"after RST_STREAM(CANCEL): {later or 'nothing'} on its stream; a GET got "
        observed += response.describe()
        served = response.status == 200 and response.complete and response.body == HELLO
        return verdict(not later and served, observed)


@h2_check(
    "http2.rst-stream-disconnect",
    title="the client's RST_STREAM gives the app waiting in receive() http.disconnect",
    clause="ASGI HTTP spec, Disconnect",
)
def rst_stream_disconnect(ctx: Context) -> Result:
    """ASGI HTTP spec, Disconnect: sent "after the HTTP connection has been closed"; on HTTP/2
    a request's connection is its stream, closed by RST_STREAM."""
    probe_id = ctx.new_id("h2")
    with h2(ctx) as connection:
        stream_id = connection.request("GET", probe_target("/h2/hold", probe_id))
        events = ctx.wait_events(probe_id, has_event("holding"))
        if find_event(events, "holding") is None:
            return failed("the app at /h2/hold was not reached")
        connection.send(rst_stream_frame(stream_id, CANCEL))
        events = ctx.wait_events(probe_id, has_event("held"), ctx.options.io_timeout_s)
    held = find_event(events, "held")
    outcome = held.get("outcome") if held else "nothing yet"
    return verdict(outcome == "http.disconnect", f"after RST_STREAM, receive() gave {outcome}")


@h2_check(
    "http2.goaway-on-shutdown",
    title="at the stop signal the server sends GOAWAY(NO_ERROR), completes the stream in "
    "flight and closes",
    clause="RFC 9113 §6.8",
    level=SHOULD,
)
def goaway_on_shutdown(ctx: Context) -> Result:
    """§6.8: "A server that is attempting to gracefully shut down a connection SHOULD send an
    initial GOAWAY frame with the last stream identifier set to 2^31-1 and a NO_ERROR code",
    and "Endpoints SHOULD always send a GOAWAY frame before closing a connection". The last
    stream identifier must cover the stream in flight, which then completes."""
    seen = gate(ctx)
    if not seen.speaks:
        return not_applicable(f"no h2c with prior knowledge: {seen.observed}")
    with ctx.launch(APP) as server:
        timeout_s = ctx.options.io_timeout_s
        connection = H2Connection(server.connect(timeout_s), timeout_s)
        with contextlib.closing(connection):
            try:
                connection.start()
            except Ended as exc:
                return failed(f"the preface got {exc.describe()}")
            first = connection.request("GET", "/http11/hello")
            done = connection.read_response(first)
            if done.status != 200:
                return failed(f"the first GET got {done.describe()}")
            slow_id = ctx.new_id("h2slow")
            slow = connection.request("GET", probe_target("/shutdown/slow", slow_id, delay="1"))
            server.wait_events(slow_id, has_event("first-part-sent"), timeout_s)
            ask_to_stop(ctx, server)
            response = connection.read_response(slow, timeout_s + 1)
            goaways = [item for item in connection.frames if item.type == GOAWAY]
            closed = connection.wait_closed(EXIT_DEADLINE_S)
            status = server.wait_exit(EXIT_DEADLINE_S)
        shown = ", ".join(item.describe() for item in goaways) or "no GOAWAY"
        observed = (
            f"stream {slow} in flight at the signal: {response.describe()}; {shown}; "
            f"the connection {closed}; the server {describe_exit(status)}"
        )
        ok = (
            bool(goaways)
            and all(item.error_code == NO_ERROR for item in goaways)
            and goaways[-1].last_stream_id >= slow
            and response.complete
            and closed != "open"
        )
        return verdict(ok, observed)
