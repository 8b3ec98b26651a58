"""HTTP/1.1 framing and error handling: RFC 9112 message syntax and RFC 9110 semantics.

Every check talks to the server over a connection of its own, mostly with hand-made bytes, and
reads the answer with the suite's own parser, so that what is graded is what was on the wire.
Where a check pipelines a second request behind the one under test, it is there to show
whether the first response ended where its framing said (a desynchronised connection shows up
as a second response that does not parse); a connection the server closes instead is always
an allowed answer to that question.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re

from ..client import CRLF, HTTPConnection, NoResponse, Reply, Response, request_bytes
from ..framework import (
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
from ..probes.http11 import (
    APP_TE_BODY,
    HELLO,
    INJECTED,
    LONG_BODY,
    SHORT_BODY,
    SPLIT_HEADERS,
    STREAM_PARTS,
)
from .common import (
    PROBE_ID,
    Events,
    closed_without_response,
    connection_ended,
    exchange,
    fill_probe,
    has_event,
    open_http,
    probe_target,
    record_exchange,
    request_once,
    wait_event,
)

HELLO_PATH = "/http11/hello"
STREAMED = b"".join(STREAM_PARTS)
IMF_FIXDATE = re.compile(
    rb"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    rb"\d{4} \d\d:\d\d:\d\d GMT"
)


# -- small steps


def send(connection: HTTPConnection, data: bytes) -> str | None:
    """Send; None if it went, else why not (the server may already have closed)."""
    try:
        connection.send(data)
    except TimeoutError:
        return "sending stalled (the server stopped reading)"
    except OSError as exc:
        return f"sending failed ({type(exc).__name__}: the server had closed the connection)"
    return None


# RFC 9112 §9.6: a server may close a persistent connection after any response; a pipelined
# request it leaves unanswered that way is the client's to retry, not a framing error.
CLOSED_INSTEAD = "the connection closed instead of answering the pipelined GET (RFC 9112 §9.6)"


def is_hello(reply: Reply) -> bool:
    return (
        isinstance(reply, Response)
        and reply.status == 200
        and reply.complete
        and reply.body == HELLO
    )


def hello_request(version: str = "HTTP/1.1", headers: list[tuple[str, str]] | None = None) -> bytes:
    return request_bytes("GET", HELLO_PATH, headers, version=version)


def wait_for_close(ctx: Context, connection: HTTPConnection) -> str:
    """What the server did with the connection within hang_s: closed, reset or (left) open."""
    return connection.wait_closed(ctx.options.hang_s)


def state_words(ctx: Context, state: str, connection: HTTPConnection) -> str:
    if state == "open":
        text = f"kept the connection open for {ctx.options.hang_s:g} s"
    else:
        text = f"then the connection was {state}"
    if connection.buffer:
        text += f" (after {len(connection.buffer)} more bytes {connection.buffer[:40]!r})"
    return text


def codings(response: Response) -> list[bytes]:
    return [
        coding.strip().lower()
        for value in response.header_values(b"transfer-encoding")
        for coding in value.split(b",")
    ]


def echoed(reply: Reply) -> tuple[int, str] | None:
    """The (length, sha256) the echo probe answered, or None if this is not its answer."""
    if not isinstance(reply, Response) or reply.status != 200 or not reply.complete:
        return None
    try:
        answer = json.loads(reply.body)
        return int(answer["length"]), str(answer["sha256"])
    except (ValueError, KeyError, TypeError):
        return None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chunk(data: bytes, extension: bytes = b"", upper: bool = False) -> bytes:
    size = (b"%X" if upper else b"%x") % len(data)
    return size + extension + CRLF + data + CRLF


def post_head(target: str, headers: list[tuple[str, str]], version: str = "HTTP/1.1") -> bytes:
    return request_bytes("POST", target, headers, version=version)


def status_of(reply: Reply) -> int | None:
    return reply.status if isinstance(reply, Response) else None


def read_pipelined(
    ctx: Context, connection: HTTPConnection, timeout_s: float | None = None
) -> tuple[Reply, Reply]:
    """The response to the request under test, and to the hello request pipelined behind it
    (read with ``hang_s``); when the first got no response, its NoResponse stands for both."""
    first = connection.read_reply(timeout_s=timeout_s)
    if isinstance(first, NoResponse):
        return first, first
    return first, connection.read_reply(timeout_s=ctx.options.hang_s)


def grade_pipelined(observed: str, second: Reply) -> Result:
    """The hello request pipelined behind the one under test shows whether the first response
    ended where its framing said: answered, or the connection closed with nothing more on it,
    passes; anything else (bytes left over from the first response) fails."""
    if is_hello(second):
        return passed(f"{observed}; the request pipelined after it got 200")
    if closed_without_response(second):
        return passed(f"{observed}; then the connection was {second.why}")
    return failed(f"{observed}; the request pipelined after it got {second.describe()}")


def send_outcome(ctx: Context, probe_id: str, step: str) -> str:
    """What the probe's ``send`` of ``step`` did, in words, from its log."""

    def logged(events: Events) -> bool:
        return any(e.get("step") == step for e in events)

    events = ctx.wait_events(probe_id, logged, timeout_s=ctx.options.hang_s / 4)
    for event in events:
        if event.get("step") != step:
            continue
        if event["event"] == "send-raised":
            return f"the app's send raised {event['exception'].rsplit('.', 1)[-1]}"
        return "the app's send returned"
    return "the probe logged no outcome of its send"


# -- connections


@check(
    "http11.pipelining",
    title="pipelined requests are answered in order",
    clause="RFC 9112 §9.3.2",
)
def pipelining(ctx: Context) -> Result:
    with open_http(ctx) as connection:
        connection.send(hello_request() * 3)
        statuses: list[int] = []
        for _ in range(3):
            try:
                response = connection.read_response()
            except NoResponse as exc:
                return failed(f"after {len(statuses)} responses: {exc.describe()}")
            statuses.append(response.status)
            if response.body != HELLO:
                return failed(f"response {len(statuses)}: {response.describe()}")
    return verdict(statuses == [200, 200, 200], f"three requests in one write got {statuses}")


@check(
    "http11.keep-alive",
    title="an HTTP/1.1 connection persists: a second request on it is answered",
    clause="RFC 9112 §9.3",
)
def keep_alive(ctx: Context) -> Result:
    with open_http(ctx) as connection:
        connection.send(hello_request())
        first = connection.read_reply()
        record_exchange(ctx, "http11.keep-alive", "GET", HELLO_PATH, first)
        if not is_hello(first) or not isinstance(first, Response):
            return failed(f"the first request got {first.describe()}")
        says_close = b"close" in first.connection_tokens()
        problem = send(connection, hello_request())
        second = connection.read_reply()
        if is_hello(second):
            return passed("two requests one after the other on one connection: both answered")
        if says_close and isinstance(second, NoResponse) and second.ended:
            return passed(
                "the first response said Connection: close and the server closed: it does not "
                "keep connections alive, which §9.3 allows when the response says so"
            )
        return failed(
            f"the first response ({first.describe()}) did not say Connection: close, but the "
            f"second request on the connection got {problem or second.describe()}"
        )


@check(
    "http11.connection-close",
    title="after a request with Connection: close the server closes the connection",
    clause="RFC 9112 §9.6",
)
def connection_close(ctx: Context) -> Result:
    headers = [("Connection", "close")]
    with open_http(ctx) as connection:
        connection.send(hello_request(headers=headers))
        reply = connection.read_reply()
        record_exchange(ctx, "http11.connection-close", "GET", HELLO_PATH, reply, headers)
        if not is_hello(reply):
            return failed(f"the request got {reply.describe()}")
        state = wait_for_close(ctx, connection)
        observed = f"{reply.describe()}, {state_words(ctx, state, connection)}"
        return verdict(connection_ended(state) and not connection.buffer, observed)


@check(
    "http11.connection-close-echoed",
    title="the response to a request with Connection: close says Connection: close",
    clause="RFC 9112 §9.6",
    level=SHOULD,
)
def connection_close_echoed(ctx: Context) -> Result:
    with open_http(ctx) as connection:
        connection.send(hello_request(headers=[("Connection", "close")]))
        reply = connection.read_reply()
        if not isinstance(reply, Response):
            return failed(f"the request got {reply.describe()}")
        values = b", ".join(reply.header_values(b"connection")).decode("latin-1")
        return verdict(
            b"close" in reply.connection_tokens(),
            f"{reply.describe()} with Connection: {values!r}"
            if values
            else f"{reply.describe()} with no Connection header",
        )


@check(
    "http11.connection-tokens",
    title="Connection options are a case-insensitive list: 'Keep-Alive, Close' and 'CLOSE' close",
    clause="RFC 9110 §7.6.1",
)
def connection_tokens(ctx: Context) -> Result:
    seen = []
    ok = True
    for value in ("Keep-Alive, Close", "CLOSE"):
        with open_http(ctx) as connection:
            connection.send(hello_request(headers=[("Connection", value)]))
            reply = connection.read_reply()
            if not is_hello(reply):
                ok = False
                seen.append(f"Connection: {value} got {reply.describe()}")
                continue
            state = wait_for_close(ctx, connection)
            ok = ok and connection_ended(state)
            seen.append(
                f"Connection: {value}: {reply.describe()}, {state_words(ctx, state, connection)}"
            )
    return verdict(ok, "; ".join(seen))


# -- HTTP/1.0


@check(
    "http11.http10-closes",
    title="an HTTP/1.0 request without keep-alive: the connection closes after the response",
    clause="RFC 9112 §9.3",
)
def http10_closes(ctx: Context) -> Result:
    with open_http(ctx) as connection:
        connection.send(hello_request("HTTP/1.0"))
        reply = connection.read_reply()
        if not is_hello(reply) or not isinstance(reply, Response):
            return failed(f"the HTTP/1.0 request got {reply.describe()}")
        state = wait_for_close(ctx, connection)
        version = reply.version.decode("latin-1")
        return verdict(
            connection_ended(state),
            f"{version} {reply.describe()}, {state_words(ctx, state, connection)}",
        )


@check(
    "http11.http10-no-chunked",
    title="a streamed response to HTTP/1.0 is not chunked (close-delimited or with a length)",
    clause="RFC 9112 §6.1",
)
def http10_no_chunked(ctx: Context) -> Result:
    target = probe_target("/http11/stream", ctx.new_id())
    with open_http(ctx) as connection:
        connection.send(request_bytes("GET", target, version="HTTP/1.0"))
        reply = connection.read_reply()
        if not isinstance(reply, Response):
            return failed(f"the HTTP/1.0 request got {reply.describe()}")
        te = b", ".join(reply.header_values(b"transfer-encoding"))
        observed = reply.describe()
        if te:
            return failed(f"{observed}, with Transfer-Encoding: {te.decode('latin-1')!r}")
        whole = reply.complete and reply.body == STREAMED
        return verdict(
            whole,
            f"{observed}, no Transfer-Encoding; body {'whole' if whole else repr(reply.body[:60])}",
        )


@check(
    "http11.http10-keep-alive",
    title="HTTP/1.0 with Connection: keep-alive: kept alive with a length, or closed",
    clause="RFC 9112 §9.3",
)
def http10_keep_alive(ctx: Context) -> Result:
    headers = [("Connection", "keep-alive")]
    target = probe_target("/http11/stream", ctx.new_id())
    with open_http(ctx) as connection:
        connection.send(request_bytes("GET", target, headers, version="HTTP/1.0"))
        reply = connection.read_reply(timeout_s=ctx.options.hang_s)
        if not isinstance(reply, Response):
            return failed(f"the HTTP/1.0 keep-alive request got {reply.describe()}")
        observed = reply.describe()
        if codings(reply):
            return not_applicable(
                f"{observed} with Transfer-Encoding, to an HTTP/1.0 client: graded by "
                "http11.http10-no-chunked"
            )
        if not reply.complete or reply.body != STREAMED:
            if reply.framing == "close" and not reply.complete:
                return failed(
                    f"{observed}: a close-delimited body, but the connection stayed open for "
                    f"{ctx.options.hang_s:g} s, so the client cannot tell where it ends"
                )
            return failed(f"{observed}: not the streamed body")
        if reply.framing == "close":
            return passed(f"{observed}, then closed (close-delimited, not kept alive)")
        problem = send(connection, hello_request("HTTP/1.0", headers))
        second = connection.read_reply(timeout_s=ctx.options.hang_s)
        if is_hello(second):
            return passed(f"{observed}; kept alive: a second request got {second.describe()}")
        if closed_without_response(second):
            return passed(f"{observed}; then closed ({problem or second.describe()})")
        return failed(f"{observed}; a second request on the connection got {second.describe()}")


# -- request bodies


def echo_exchange(
    ctx: Context, head_headers: list[tuple[str, str]], body: bytes, expected: bytes
) -> Result:
    """POST ``body`` as is to the echo probe, with a GET /http11/hello pipelined behind it: the
    app must read ``expected``, and the GET must show the request ended where it should."""
    target = probe_target("/http11/echo", ctx.new_id())
    with open_http(ctx) as connection:
        connection.send(post_head(target, head_headers) + body + hello_request())
        first, second = read_pipelined(ctx, connection)
    answer = echoed(first)
    want = (len(expected), sha256(expected))
    if answer is None:
        return failed(f"the request got {first.describe()}")
    if answer != want:
        return failed(
            f"the app read {answer[0]} bytes (sha256 {answer[1][:12]}...), not the "
            f"{want[0]} bytes sent (sha256 {want[1][:12]}...)"
        )
    return grade_pipelined(f"the app read all {want[0]} bytes", second)


@check(
    "http11.chunked-request",
    title="a chunked request body reaches the app decoded, whole",
    clause="RFC 9112 §7.1",
)
def chunked_request(ctx: Context) -> Result:
    parts = [b"hello", b"-" * 26, b"world" * 100]
    body = chunk(parts[0]) + chunk(parts[1], upper=True) + chunk(parts[2]) + b"0\r\n\r\n"
    return echo_exchange(ctx, [("Transfer-Encoding", "chunked")], body, b"".join(parts))


@check(
    "http11.chunked-extensions",
    title="chunk extensions (token and quoted values) are ignored",
    clause="RFC 9112 §7.1.1",
)
def chunked_extensions(ctx: Context) -> Result:
    parts = [b"hello", b" world"]
    body = (
        chunk(parts[0], b";name=value")
        + chunk(parts[1], b';quoted="a b";flag')
        + b"0;last=yes\r\n\r\n"
    )
    return echo_exchange(ctx, [("Transfer-Encoding", "chunked")], body, b"".join(parts))


@check(
    "http11.chunked-trailers",
    title="a chunked request body with a trailer section is decoded, and framing kept",
    clause="RFC 9112 §7.1",
)
def chunked_trailers(ctx: Context) -> Result:
    body = chunk(b"hello") + b"0\r\nX-Trailer: yes\r\nX-Other: 1\r\n\r\n"
    headers = [("Transfer-Encoding", "chunked"), ("Trailer", "X-Trailer, X-Other")]
    return echo_exchange(ctx, headers, body, b"hello")


@check(
    "http11.unread-body",
    title="a request body the app does not read is skipped: the next request is answered",
    clause="RFC 9112 §6.3",
)
def unread_body(ctx: Context) -> Result:
    seen = []
    ok = True
    variants = [
        ("Content-Length", [("Content-Length", "10")], b"0123456789"),
        ("chunked", [("Transfer-Encoding", "chunked")], chunk(b"hello") + b"0\r\n\r\n"),
    ]
    for name, headers, body in variants:
        with open_http(ctx) as connection:
            connection.send(post_head(HELLO_PATH, headers) + body + hello_request())
            first = connection.read_reply()
            if not is_hello(first):
                ok = False
                seen.append(f"{name}: the POST got {first.describe()}")
                continue
            second = connection.read_reply(timeout_s=ctx.options.hang_s)
            if is_hello(second):
                seen.append(f"{name}: both answered")
            elif closed_without_response(second):
                seen.append(f"{name}: answered, then the connection was {second.why}")
            else:
                ok = False
                seen.append(f"{name}: the request after the unread body got {second.describe()}")
    return verdict(ok, "; ".join(seen))


# -- responses without content


@check(
    "http11.head-no-body",
    title="a response to HEAD carries no content",
    clause="RFC 9110 §9.3.2",
)
def head_no_body(ctx: Context) -> Result:
    with open_http(ctx) as connection:
        connection.send(request_bytes("HEAD", HELLO_PATH) + hello_request())
        head = connection.read_reply("HEAD")
        record_exchange(ctx, "http11.head-no-body", "HEAD", HELLO_PATH, head)
        if not isinstance(head, Response) or head.status != 200:
            return failed(f"HEAD got {head.describe()}")
        length = head.header(b"content-length")
        headers = f"Content-Length {length.decode('latin-1')}" if length else "no Content-Length"
        after_head = connection.read_reply()
        if is_hello(after_head):
            return passed(f"HEAD got 200 ({headers}) with no content; the GET after it got 200")
        if closed_without_response(after_head):
            return passed(f"HEAD got 200 ({headers}) with no content, then {CLOSED_INSTEAD}")
        return failed(
            f"HEAD got 200 ({headers}); the GET pipelined after it got {after_head.describe()} "
            "(content after the HEAD response shifts the next one)"
        )


def no_content(ctx: Context, code: int, check_id: str) -> Result:
    """A ``code`` response with a GET pipelined behind it: the GET must get the hello answer."""
    target = probe_target("/http11/status", ctx.new_id(), code=str(code))
    with open_http(ctx) as connection:
        connection.send(request_bytes("GET", target) + hello_request())
        first = connection.read_reply()
        record_exchange(ctx, check_id, "GET", target, first)  # now: httplint dates it by this
        second = (
            connection.read_reply(timeout_s=ctx.options.hang_s)
            if isinstance(first, Response)
            else first
        )
    if not isinstance(first, Response) or first.status != code:
        return failed(f"the {code} probe got {first.describe()}")
    if is_hello(second):
        return passed(f"{code} with no content; the request pipelined after it got 200")
    if closed_without_response(second):
        return passed(f"{code} with no content, then {CLOSED_INSTEAD}")
    return failed(
        f"{code}; the request pipelined after it got {second.describe()} (bytes after the "
        f"{code}'s header section shift the next response)"
    )


@check(
    "http11.no-content-204",
    title="a 204 response ends with its header section",
    clause="RFC 9110 §15.3.5",
)
def no_content_204(ctx: Context) -> Result:
    return no_content(ctx, 204, "http11.no-content-204")


@check(
    "http11.no-framing-headers-204",
    title="a 204 response has neither Content-Length nor Transfer-Encoding (RFC 9112 §6.1 too)",
    clause="RFC 9110 §8.6",
)
def no_framing_headers_204(ctx: Context) -> Result:
    target = probe_target("/http11/status", ctx.new_id(), code="204")
    reply = request_once(ctx, request_bytes("GET", target))
    if not isinstance(reply, Response) or reply.status != 204:
        return failed(f"the 204 probe got {reply.describe()}")
    found = [
        f"{name.decode('latin-1')}: {value.decode('latin-1')}"
        for name, value in reply.headers
        if name.lower() in (b"content-length", b"transfer-encoding")
    ]
    if found:
        return failed(f"204 with {', '.join(found)}")
    return passed("204 with neither Content-Length nor Transfer-Encoding")


@check(
    "http11.no-content-304",
    title="a 304 response ends with its header section",
    clause="RFC 9110 §15.4.5",
)
def no_content_304(ctx: Context) -> Result:
    return no_content(ctx, 304, "http11.no-content-304")


@check(
    "http11.streamed-response",
    title="a response without Content-Length is chunked or close-delimited, and complete",
    clause="RFC 9112 §6.3",
)
def streamed_response(ctx: Context) -> Result:
    target = probe_target("/http11/stream", ctx.new_id())
    reply = exchange(ctx, "http11.streamed-response", "GET", target)
    if not isinstance(reply, Response):
        return failed(f"the streaming probe got {reply.describe()}")
    if reply.framing == "chunked" and codings(reply) != [b"chunked"]:
        return failed(f"{reply.describe()} with Transfer-Encoding {codings(reply)!r}")
    whole = reply.status == 200 and reply.complete and reply.body == STREAMED
    return verdict(whole, reply.describe() + ("" if whole else f": {reply.body[:60]!r}"))


# -- request syntax the server must refuse

# Each of these checks sends malformed requests and accepts an error status (and, for most, a
# close): a row of BAD_REQUESTS, graded by ``refuse``. The rows' requests name their probe as
# PROBE_ID, filled in with a fresh id for each send.

NO_HOST = request_bytes("GET", HELLO_PATH, host=None)
SPACED_NAME = request_bytes("GET", HELLO_PATH)[:-2] + b"X-Spaced : value\r\n\r\n"
GARBAGE = b"this is not http\r\n\r\n"
ECHO_TARGET = probe_target("/http11/echo", PROBE_ID)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BadRequest(Row):
    """Requests the server must refuse. Each variant goes on a connection of its own; the check
    passes when every one is answered with one of ``statuses`` (and, with ``closes``, the
    connection then ends). The observed text names each variant and says what it got."""

    variants: tuple[tuple[str, bytes], ...]  # (its name in the observed text, the request)
    statuses: tuple[int, ...] = (400,)
    closes: bool = False  # the server must end the connection after its answer
    close_instead: bool = False  # with ``closes``: ending it with no response at all passes too
    app_read: str = ""  # if set, the bytes the echo probe read are named, followed by this


BAD_REQUESTS = (
    # RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any
    # HTTP/1.1 request message that lacks a Host header field and to any request message that
    # contains more than one Host header field line".
    BadRequest(
        id="http11.host-missing",
        title="an HTTP/1.1 request without Host gets 400",
        clause="RFC 9112 §3.2",
        variants=(("no Host", NO_HOST),),
    ),
    BadRequest(
        id="http11.host-duplicate",
        title="a request with two Host header lines gets 400",
        clause="RFC 9112 §3.2",
        variants=(("two Host lines", hello_request(headers=[("Host", "example.com")])),),
    ),
    # RFC 9112 §5.1: "A server MUST reject, with a response status code of 400 (Bad Request),
    # any received request message that contains whitespace between a header field name and
    # colon."
    BadRequest(
        id="http11.field-name-whitespace",
        title="whitespace between a field name and its colon gets 400",
        clause="RFC 9112 §5.1",
        variants=(("'X-Spaced : value'", SPACED_NAME),),
    ),
    # RFC 9112 §2.2: a server that "receives a sequence of octets that does not match the
    # HTTP-message grammar ... SHOULD respond with a 400 (Bad Request) response and close the
    # connection."
    BadRequest(
        id="http11.request-line-invalid",
        title="a request line that is not one (garbage, no version) gets 400 and a close",
        clause="RFC 9112 §2.2",
        level=SHOULD,
        variants=(
            ("garbage", GARBAGE),
            ("no version", b"GET /http11/hello\r\nHost: 127.0.0.1\r\n\r\n"),
        ),
        closes=True,
    ),
    # The same sentence of §2.2: a chunk size that is not hexadecimal is not HTTP-message
    # grammar. Closing without a response passes too.
    BadRequest(
        id="http11.chunked-invalid-size",
        title="an invalid chunk size gets 400 (or no response) and the connection is closed",
        clause="RFC 9112 §2.2",
        level=SHOULD,
        variants=(
            (
                "chunk size 'zz'",
                post_head(ECHO_TARGET, [("Transfer-Encoding", "chunked")])
                + b"zz\r\nhello\r\n0\r\n\r\n",
            ),
        ),
        closes=True,
        close_instead=True,
    ),
    # RFC 9112 §6.3: for an invalid Content-Length in a request "the server MUST respond with a
    # 400 (Bad Request) status code and then close the connection."
    BadRequest(
        id="http11.content-length-invalid",
        title="an invalid or conflicting Content-Length gets 400 and a close",
        clause="RFC 9112 §6.3",
        variants=(
            (
                "Content-Length: abc",
                post_head(ECHO_TARGET, [("Content-Length", "abc")]) + b"hello!",
            ),
            (
                "Content-Length: 5 and 6",
                post_head(ECHO_TARGET, [("Content-Length", "5"), ("Content-Length", "6")])
                + b"hello!",
            ),
        ),
        closes=True,
    ),
    # RFC 9112 §6.1: "A server that receives a request message with a transfer coding it does
    # not understand SHOULD respond with 501 (Not Implemented)."
    BadRequest(
        id="http11.te-unknown",
        title="a transfer coding the server does not understand gets 501",
        clause="RFC 9112 §6.1",
        level=SHOULD,
        variants=(
            (
                "Transfer-Encoding: x-unknown, chunked",
                post_head(ECHO_TARGET, [("Transfer-Encoding", "x-unknown, chunked")])
                + chunk(b"hello")
                + b"0\r\n\r\n",
            ),
        ),
        statuses=(501,),
        app_read="with the x-unknown coding left on",
    ),
    # RFC 9112 §6.3: "If a Transfer-Encoding header field is present in a request and the
    # chunked transfer coding is not the final encoding, ... the server MUST respond with the
    # 400 (Bad Request) status code and then close the connection." §6.1 lets a server that
    # does not know the coding answer 501. Both pass.
    BadRequest(
        id="http11.te-not-chunked-final",
        title="a request whose last transfer coding is not chunked gets 400 (or 501) and a close",
        clause="RFC 9112 §6.3",
        variants=(
            (
                "Transfer-Encoding: gzip",
                post_head(ECHO_TARGET, [("Transfer-Encoding", "gzip")]) + b"hello",
            ),
        ),
        statuses=(400, 501),
        closes=True,
    ),
)


def refuse(ctx: Context, row: BadRequest) -> Result:
    """Send each of the row's requests and grade the answers together."""
    seen = []
    ok = True
    for name, request in row.variants:
        _, raw = fill_probe(ctx, request)
        grade = answered_and_closed if row.closes else answered
        good, observed = grade(ctx, raw, row)
        ok = ok and good
        seen.append(f"{name}: {observed}")
    return verdict(ok, "; ".join(seen))


def answered(ctx: Context, raw: bytes, row: BadRequest) -> tuple[bool, str]:
    """Whether ``raw`` got one of the row's statuses, and what it got."""
    reply = request_once(ctx, raw, timeout_s=ctx.options.hang_s)
    observed = reply.describe()
    answer = echoed(reply)
    if row.app_read and answer is not None:
        observed += f" (the app read {answer[0]} bytes {row.app_read})"
    return status_of(reply) in row.statuses, observed


def answered_and_closed(ctx: Context, raw: bytes, row: BadRequest) -> tuple[bool, str]:
    """Whether ``raw`` got one of the row's statuses and then a close (or, if the row allows
    it, a close alone), and what it got."""
    with open_http(ctx) as connection:
        problem = send(connection, raw)
        reply = connection.read_reply(timeout_s=ctx.options.hang_s)
        if isinstance(reply, NoResponse):
            ok = row.close_instead and closed_without_response(reply)
            return ok, f"{problem or ''} {reply.describe()}".strip()
        state = wait_for_close(ctx, connection)
        ok = reply.status in row.statuses and connection_ended(state)
        return ok, f"{reply.describe()}, {state_words(ctx, state, connection)}"


check_rows(BAD_REQUESTS, refuse)


@check(
    "http11.obs-fold",
    title="a folded header line gets 400 or reaches the app with the fold replaced by spaces",
    clause="RFC 9112 §5.2",
)
def obs_fold(ctx: Context) -> Result:
    probe_id = ctx.new_id()
    target = probe_target("/http11/inspect", probe_id)
    raw = request_bytes("GET", target)[:-2] + b"X-Folded: first\r\n   second\r\n\r\n"
    reply = request_once(ctx, raw, timeout_s=ctx.options.hang_s)
    if not isinstance(reply, Response):
        return failed(f"a folded line: {reply.describe()}")
    if reply.status == 400:
        return passed("a folded line: 400")
    if reply.status != 200:
        return failed(f"a folded line: {reply.describe()}")
    scope = wait_event(ctx, probe_id, "scope")
    headers: list[list[str]] = scope["headers"] if scope else []
    values = [value for name, value in headers if name.lower() == "x-folded"]
    others = [name for name, _ in headers if "second" in name]
    ok = len(values) == 1 and re.fullmatch(r"first +second", values[0]) is not None and not others
    return verdict(
        ok,
        f"a folded line: 200; the app saw x-folded {values!r}"
        + (f" and {others!r}" if others else ""),
    )


@check(
    "http11.te-and-cl",
    title="Transfer-Encoding with Content-Length: rejected or framed by TE, then closed",
    clause="RFC 9112 §6.1",
)
def te_and_cl(ctx: Context) -> Result:
    target = probe_target("/http11/echo", ctx.new_id())
    body = chunk(b"hello") + b"0\r\n\r\n"
    headers = [("Content-Length", "4"), ("Transfer-Encoding", "chunked")]
    with open_http(ctx) as connection:
        connection.send(post_head(target, headers) + body)
        reply = connection.read_reply(timeout_s=ctx.options.hang_s)
        if isinstance(reply, NoResponse):
            return failed(f"TE chunked with Content-Length 4: {reply.describe()}")
        state = wait_for_close(ctx, connection)
        tail = state_words(ctx, state, connection)
        answer = echoed(reply)
        if 400 <= reply.status < 500:
            how = f"rejected with {reply.status}"
        elif answer is not None and answer[0] == 5:
            how = "framed by Transfer-Encoding (the app read the 5 chunked bytes)"
        elif answer is not None:
            return failed(f"framed by Content-Length: the app read {answer[0]} bytes; {tail}")
        else:
            return failed(f"TE chunked with Content-Length 4: {reply.describe()}, {tail}")
        return verdict(connection_ended(state) and not connection.buffer, f"{how}, {tail}")


# -- versions and request targets


@check(
    "http11.version-higher-minor",
    title="an HTTP/1.2 request is processed as HTTP/1.1 and answered as HTTP/1.1",
    clause="RFC 9110 §6.2",
    level=SHOULD,
)
def version_higher_minor(ctx: Context) -> Result:
    probe_id = ctx.new_id()
    target = probe_target("/http11/inspect", probe_id)
    reply = request_once(ctx, request_bytes("GET", target, version="HTTP/1.2"))
    if not isinstance(reply, Response):
        return failed(f"HTTP/1.2: {reply.describe()}")
    version = reply.version.decode("latin-1")
    if reply.status != 200:
        return failed(f"HTTP/1.2: {version} {reply.describe()}")
    scope = wait_event(ctx, probe_id, "scope")
    seen = scope["http_version"] if scope else None
    return verdict(
        version == "HTTP/1.1" and seen == "1.1",
        f"HTTP/1.2: {version} {reply.describe()}; the app saw http_version {seen!r}",
    )


@check(
    "http11.version-major",
    title="an HTTP/2.0 request line is refused (505/4xx) or served as 1.1, never answered as 2.0",
    clause="RFC 9110 §6.2",
)
def version_major(ctx: Context) -> Result:
    probe_id = ctx.new_id()
    target = probe_target("/http11/inspect", probe_id)
    reply = request_once(
        ctx, request_bytes("GET", target, version="HTTP/2.0"), timeout_s=ctx.options.hang_s
    )
    if isinstance(reply, NoResponse):
        return verdict(closed_without_response(reply), f"'GET ... HTTP/2.0': {reply.describe()}")
    version = reply.version.decode("latin-1")
    observed = f"'GET ... HTTP/2.0': {version} {reply.describe()}"
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        return failed(observed + " (a version the server does not speak)")
    if reply.status == 505 or 400 <= reply.status < 500:
        return passed(observed)
    scope = wait_event(ctx, probe_id, "scope")
    seen = scope["http_version"] if scope else None
    # RFC 9110 §6.2 lets a server answer a higher major version with its own (1.1); what the
    # app is told is the asgi-http group's business, so it is only reported here.
    return verdict(
        reply.status == 200,
        f"{observed}: served as {version}; the app saw http_version {seen!r}",
    )


@check(
    "http11.absolute-form",
    title="an absolute-form request target reaches the app as its path and query",
    clause="reading: absolute-form-path",
    level=READING,
)
def absolute_form(ctx: Context) -> Result:
    probe_id = ctx.new_id()
    authority = f"127.0.0.1:{ctx.port}"
    target = f"http://{authority}{probe_target('/http11/inspect', probe_id)}"
    reply = request_once(ctx, request_bytes("GET", target, host=authority))
    if not isinstance(reply, Response):
        return failed(f"'GET {target}': {reply.describe()}")
    if reply.status == 404:
        return failed("404: the app's router did not get /http11/inspect as the path")
    if reply.status != 200:
        return failed(f"absolute-form target: {reply.describe()}")
    seen = wait_event(ctx, probe_id, "scope")
    if seen is None:
        return failed(f"absolute-form target: {reply.describe()}, but the probe logged nothing")
    ok = seen["path"] == "/http11/inspect" and seen["query_string"] == f"probe={probe_id}"
    return verdict(
        ok, f"200; the app saw path {seen['path']!r}, query_string {seen['query_string']!r}"
    )


@check(
    "http11.absolute-form-host",
    title="with an absolute-form target, the app sees the target's authority as Host",
    clause="RFC 9112 §3.2.2",
)
def absolute_form_host(ctx: Context) -> Result:
    # RFC 9112 §3.2.2: "When an origin server receives a request with an absolute-form of
    # request-target, the origin server MUST ignore the received Host header field (if any) and
    # instead replace it with the host information of the request-target."
    probe_id = ctx.new_id()
    authority = f"127.0.0.1:{ctx.port}"
    target = f"http://{authority}{probe_target('/http11/inspect', probe_id)}"
    reply = request_once(ctx, request_bytes("GET", target, host="received.invalid"))
    if not isinstance(reply, Response):
        return failed(f"'GET {target}' with Host: received.invalid: {reply.describe()}")
    if reply.status == 404:
        return not_applicable(
            "404: the app's router did not get /http11/inspect as the path (http11.absolute-form)"
        )
    if reply.status != 200:
        return failed(f"absolute-form target with another Host: {reply.describe()}")
    seen = wait_event(ctx, probe_id, "scope")
    if seen is None:
        return failed(f"absolute-form target: {reply.describe()}, but the probe logged nothing")
    hosts = [value for name, value in seen["headers"] if name.lower() == "host"]
    return verdict(hosts == [authority], f"200; the app saw Host {hosts!r} (target {authority!r})")


# -- limits and Expect


@check(
    "http11.header-section-too-large",
    title="a 1 MiB header section gets a 4xx (or is processed whole), never a hang or a 5xx",
    clause="RFC 9110 §5.4",
)
def header_section_too_large(ctx: Context) -> Result:
    probe_id = ctx.new_id()
    pad = "a" * 1000
    headers = [(f"X-Pad-{index:04d}", pad) for index in range(1024)]
    raw = request_bytes("GET", probe_target("/http11/count-headers", probe_id), headers)
    with open_http(ctx) as connection:
        problem = send(connection, raw)
        reply = connection.read_reply(timeout_s=ctx.options.io_timeout_s)
    size = f"{len(raw) // 1024} KiB of header fields"
    if isinstance(reply, NoResponse):
        if not reply.ended:
            return failed(f"{size}: {problem or 'sent'}; then {reply.describe()}")
        return passed(
            f"{size}: {problem + '; ' if problem else ''}{reply.describe()} (a 4xx written "
            "before the close can be lost to the reset of a connection with unread data)"
        )
    if 400 <= reply.status < 500:
        return passed(f"{size}: {reply.describe()}")
    if reply.status == 200:
        # No limit is set by the RFC: processing every field is allowed, dropping some is not.
        try:
            count = json.loads(reply.body)["count"] if reply.complete else None
        except (ValueError, KeyError, TypeError):
            count = None
        return verdict(
            count == len(headers),
            f"{size}: 200, processed: the app got {count} of the {len(headers)} fields",
        )
    return failed(f"{size}: {reply.describe()}")


@check(
    "http11.expect-continue",
    title="Expect: 100-continue gets 100 (or a final status) before the content is sent",
    clause="RFC 9110 §10.1.1",
)
def expect_continue(ctx: Context) -> Result:
    target = probe_target("/http11/echo", ctx.new_id())
    headers = [("Content-Length", "5"), ("Expect", "100-continue")]
    with open_http(ctx) as connection:
        connection.send(post_head(target, headers))
        try:
            first = connection.read_head(ctx.options.hang_s)
        except NoResponse as exc:
            problem = send(connection, b"hello")
            late = connection.read_reply()
            return failed(
                f"{exc.describe()} for {ctx.options.hang_s:g} s after the header section "
                f"(the server waited for the content); once it was sent: "
                f"{problem or late.describe()}"
            )
        if first.status != 100:
            return passed(f"a final status before the content: {first.status}")
        connection.send(b"hello")
        final = connection.read_reply()
        answer = echoed(final)
        if answer is not None and answer[0] == 5:
            return passed("100 Continue, then the app read the 5 bytes and answered 200")
        return failed(f"100 Continue, but after the content was sent: {final.describe()}")


@check(
    "http11.expect-continue-unread",
    title="no 100 Continue after the final response when the app answers without reading",
    clause="RFC 9110 §10.1.1",
)
def expect_continue_unread(ctx: Context) -> Result:
    target = probe_target(HELLO_PATH, ctx.new_id())
    headers = [("Content-Length", "5"), ("Expect", "100-continue")]
    with open_http(ctx) as connection:
        connection.send(post_head(target, headers))
        try:
            head = connection.read_head(ctx.options.hang_s)
        except NoResponse as exc:
            return failed(
                f"the app answers without reading the body: {exc.describe()} for "
                f"{ctx.options.hang_s:g} s after the header section"
            )
        content_sent = head.status == 100
        if content_sent:
            # A 100 before the final response is allowed; the client then sends the content.
            connection.send(b"hello")
            final: Reply = connection.read_reply("POST")
            steps = "100 Continue, the content, then "
        else:
            final = connection.read_body(head, "POST")
            steps = ""
        if not is_hello(final):
            return failed(f"the app answers without reading the body: {steps}{final.describe()}")
        steps += "200"
        # The client may still send the content it announced; the server reads it or closes.
        problem = send(connection, (b"" if content_sent else b"hello") + hello_request())
        second = connection.read_reply(timeout_s=ctx.options.hang_s)
        more = "a next request" if content_sent else "the content and a next request"
        if isinstance(second, Response) and second.interim:
            statuses = [response.status for response in second.interim]
            return failed(
                f"{steps}; then {more}: interim {statuses} before the next response "
                "(a 100 Continue after the final response)"
            )
        if is_hello(second):
            return passed(f"{steps}; then {more}: 200, no stray 100")
        if closed_without_response(second):
            return passed(f"{steps}; then the connection was closed ({problem or second.why})")
        return failed(f"{steps}; then {more} got {second.describe()}")


@check(
    "http11.expect-continue-http10",
    title="Expect: 100-continue on an HTTP/1.0 request is ignored (no 1xx to HTTP/1.0)",
    clause="RFC 9110 §10.1.1",
)
def expect_continue_http10(ctx: Context) -> Result:
    probe_id = ctx.new_id()
    target = probe_target("/http11/echo", probe_id)
    headers = [("Content-Length", "5"), ("Expect", "100-continue")]
    with open_http(ctx) as connection:
        connection.send(post_head(target, headers, version="HTTP/1.0"))
        # Once the app is in receive() (some servers start it only with the whole body), a
        # server that sends 100 for it does so at once.
        ctx.wait_events(probe_id, has_event("started"), timeout_s=ctx.options.hang_s / 4)
        try:
            early = connection.read_head(0.3)
        except NoResponse as exc:
            if exc.why != "timeout":
                return failed(f"before the content was sent: {exc.describe()}")
        else:
            return failed(
                f"HTTP/1.0 with Expect: 100-continue got {early.status} before the content"
            )
        connection.send(b"hello")
        final = connection.read_reply()
    if isinstance(final, Response) and final.interim:
        return failed(f"interim {[r.status for r in final.interim]} to an HTTP/1.0 client")
    answer = echoed(final)
    return verdict(
        answer is not None and answer[0] == 5,
        f"no interim response; then {final.describe()}",
    )


# -- what the app gets wrong


@check(
    "http11.response-splitting",
    title="CR/LF in a header from the app never puts a header line of its own on the wire",
    clause="RFC 9110 §5.5",
)
def response_splitting(ctx: Context) -> Result:
    seen = []
    ok = True
    marker = INJECTED.split(b":")[0].lower() + b":"
    for mode in SPLIT_HEADERS:
        target = probe_target("/http11/split", ctx.new_id(), mode=mode)
        reply = request_once(ctx, request_bytes("GET", target), timeout_s=ctx.options.hang_s)
        wire = reply.raw_head if isinstance(reply, Response) else reply.data
        head = wire.split(b"\r\n\r\n", 1)[0]
        lines = [line.strip(b"\r").lower() for line in head.split(b"\n")]
        injected = any(line.startswith(marker) for line in lines)
        ok = ok and not injected
        what = reply.describe()
        if isinstance(reply, Response) and reply.header(b"x-split") is not None:
            what += f" with x-split {reply.header(b'x-split')!r}"
        seen.append(
            f"{mode}: {what}" + (": an injected header line on the wire" if injected else "")
        )
    return verdict(ok, "; ".join(seen))


@check(
    "http11.body-longer-than-content-length",
    title="bytes beyond the app's Content-Length never reach the wire",
    clause="reading: body-longer-than-content-length",
    level=READING,
)
def body_longer(ctx: Context) -> Result:
    probe_id = ctx.new_id()
    target = probe_target("/http11/long-body", probe_id)
    with open_http(ctx) as connection:
        connection.send(request_bytes("GET", target) + hello_request())
        first, second = read_pipelined(ctx, connection, ctx.options.hang_s)
    sent = send_outcome(ctx, probe_id, "body")
    observed = f"Content-Length 5 and 10 bytes ({sent}): {first.describe()}"
    if isinstance(first, NoResponse):
        return verdict(closed_without_response(first), observed)
    if isinstance(second, NoResponse) and second.data.startswith(LONG_BODY[5:]):
        return failed(
            f"{observed}; then the extra bytes {LONG_BODY[5:]!r} went on the wire, where the "
            f"next response should start: {second.describe()}"
        )
    return grade_pipelined(observed, second)


@check(
    "http11.body-shorter-than-content-length",
    title="an app that sends less than its Content-Length: the connection is closed",
    clause="reading: body-shorter-than-content-length",
    level=READING,
)
def body_shorter(ctx: Context) -> Result:
    probe_id = ctx.new_id()
    target = probe_target("/http11/short-body", probe_id)
    with open_http(ctx) as connection:
        connection.send(request_bytes("GET", target))
        reply = connection.read_reply(timeout_s=ctx.options.hang_s)
        eof = connection.eof
    sent = send_outcome(ctx, probe_id, "body")
    observed = f"Content-Length 10 and 5 bytes ({sent}): {reply.describe()}"
    if isinstance(reply, NoResponse):
        return verdict(closed_without_response(reply), observed)
    if reply.complete:
        # A server that held the response back may replace it with an error of its own.
        return verdict(reply.status >= 500, f"{observed}: {reply.body[:40]!r}")
    if eof:
        what = "the 5 bytes" if reply.body == SHORT_BODY else repr(reply.body[:40])
        return passed(f"{observed} ({what}), then the connection was closed")
    return failed(f"{observed}, then silence for {ctx.options.hang_s:g} s, the connection open")


@check(
    "http11.app-transfer-encoding",
    title="the app's own Transfer-Encoding header is ignored: the response is framed right",
    clause="ASGI HTTP spec, Response Start",
)
def app_transfer_encoding(ctx: Context) -> Result:
    target = probe_target("/http11/app-transfer-encoding", ctx.new_id())
    with open_http(ctx) as connection:
        connection.send(request_bytes("GET", target) + hello_request())
        first, second = read_pipelined(ctx, connection, ctx.options.hang_s)
    if not isinstance(first, Response):
        return failed(f"the app sent transfer-encoding: chunked and 'hello': {first.describe()}")
    observed = f"{first.describe()}, Transfer-Encoding {codings(first)!r}"
    if codings(first).count(b"chunked") > 1:
        return failed(f"{observed}: chunked named twice")
    if not (first.status == 200 and first.complete and first.body == APP_TE_BODY):
        return failed(f"{observed}: body {first.body[:40]!r}")
    return grade_pipelined(f"{observed}, body 'hello'", second)


# -- Date


def has_date(reply: Reply) -> tuple[bool, str]:
    if not isinstance(reply, Response):
        return False, reply.describe()
    value = reply.header(b"date")
    if value is None:
        return False, f"{reply.status} without Date"
    ok = IMF_FIXDATE.fullmatch(value) is not None
    return ok, f"{reply.status} with Date {value.decode('latin-1')!r}"


@check(
    "http11.date-app-response",
    title="a 2xx and a 4xx from the app (without Date) go out with a Date",
    clause="RFC 9110 §6.6.1",
)
def date_app_response(ctx: Context) -> Result:
    seen = []
    ok = True
    for path in (HELLO_PATH, "/http11/no-such-probe"):
        reply = exchange(ctx, "http11.date-app-response", "GET", path)
        good, words = has_date(reply)
        ok = ok and good
        seen.append(words)
    return verdict(ok, "; ".join(seen))


@check(
    "http11.date-server-error",
    title="the server's own 400 goes out with a Date",
    clause="RFC 9110 §6.6.1",
)
def date_server_error(ctx: Context) -> Result:
    attempts = [
        ("no Host", NO_HOST),
        ("'X-Spaced : value'", SPACED_NAME),
        ("garbage", GARBAGE),
    ]
    tried = []
    for name, raw in attempts:
        reply = request_once(ctx, raw, timeout_s=ctx.options.hang_s)
        if status_of(reply) == 400:
            good, words = has_date(reply)
            return verdict(good, f"{name}: {words}")
        tried.append(f"{name}: {reply.describe()}")
    return not_applicable(f"no request got a 400 from the server: {'; '.join(tried)}")
