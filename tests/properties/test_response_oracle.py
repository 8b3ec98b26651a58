"""The HTTP/1.1 bytes of a response, with h11 as the oracle.

For a generated request and the ASGI messages an app answers it with, the bytes
``ServerProtocol`` writes must be the bytes a plain ``h11.Connection(h11.SERVER)`` writes for
the same request and the same response events, and the two must agree on whether the
connection stays open; when it does, a second exchange on the same connection is compared
too. Headers an app may not send (bad syntax, a bad or conflicting ``content-length``) must be
refused by the core exactly when h11 refuses them.

The oracle applies only what the ASGI spec and RFC 9110 ask of any server on top of h11:

* ASGI HTTP spec, Response Start: the server ignores an app's ``Transfer-Encoding`` and
  chooses the framing itself, so the oracle drops that header before h11 sees it.
* RFC 9110 §9.3.2 (HEAD: "the server MUST NOT send content in the response"), §15.3.5 (204)
  and §15.4.5 (304: "it cannot contain content or trailers"): the oracle sends no body data
  for those, where the core drops what the app sends.
* The reason phrase is the status's IANA phrase (h11 would write none).
* ASGI extensions, HTTP Trailers: an app that announced trailers sends them after the last
  body; the server sends them "only ... in case the client has sent the TE: trailers header",
  and only a chunked body can carry them (RFC 9112 §7.1.2), so the oracle passes them to
  h11's ``EndOfMessage(headers=...)`` only then.

Server and date headers are off so that the bytes are comparable.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

import h11
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sansio_asgi.core import ASGIProtocolError, ProtocolSettings
from sansio_asgi.core.events import CloseConnection, SendEOF
from tests.core.helpers import Harness, request

ORACLE = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NO_EXTRA_HEADERS = ProtocolSettings(server_header=False, date_header=False)

STATUSES = [200, 201, 204, 304, 404, 500, 503]

# A host field is rare in a response, but h11 writes it first wherever it stands.
NAMES = [
    b"content-type",
    b"cache-control",
    b"set-cookie",
    b"vary",
    b"x-request-id",
    b"etag",
    b"host",
]

# Trailer fields an app may send (RFC 9110 §6.5.1 keeps others out of trailers).
TRAILER_NAMES = [b"x-checksum", b"grpc-status", b"grpc-message", b"server-timing"]

# Header names the app may not send, and values with bytes RFC 9110 §5.5 does not allow
# where they are ("field-value = *field-content", which starts and ends with a visible
# character, and never contains CR, LF or NUL).
INVALID_HEADERS = [
    (b"bad name", b"v"),
    (b"bad:name", b"v"),
    (b"", b"v"),
    (b"x-leading", b" v"),
    (b"x-trailing", b"v\t"),
    (b"x-cr", b"a\rb"),
    (b"x-lf", b"a\nb"),
    (b"x-nul", b"a\x00b"),
    (b"content-length", b"abc"),
    (b"content-length", b"-1"),
]


@dataclass
class Exchange:
    method: str
    version: str
    close: bool  # the request says "Connection: close"
    request_body: bytes
    status: int
    headers: list[tuple[bytes, bytes]]
    parts: list[bytes]  # the body of each http.response.body message; the last ends it
    # The http.response.trailers fields, each message's; None: no trailers announced.
    trailers: list[list[tuple[bytes, bytes]]] | None = None
    te_trailers: bool = False  # the request says "TE: trailers"

    def wire(self) -> bytes:
        headers = [("Host", "example.com")]
        if self.te_trailers:
            headers.append(("TE", "trailers"))
        if self.method == "POST":
            headers.append(("Content-Length", str(len(self.request_body))))
        if self.close:
            headers.append(("Connection", "close"))
        return request(self.method, "/", headers, self.request_body, self.version)


@st.composite
def cased(draw: st.DrawFn, name: bytes) -> bytes:
    """``name`` with each letter in either case (header names are case-insensitive)."""
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return bytes(
        c ^ 0x20 if flip and chr(c).isalpha() else c for c, flip in zip(name, flips, strict=True)
    )


# Visible ASCII and a few obs-text bytes (RFC 9110 §5.5: field-vchar = VCHAR / obs-text).
_VISIBLE = st.sampled_from([*range(0x21, 0x7F), 0x80, 0xE9, 0xFF])


@st.composite
def values(draw: st.DrawFn) -> bytes:
    """A valid field value (RFC 9110 §5.5): visible characters, obs-text included, with
    spaces or tabs between them but not before or after; or empty."""
    words = draw(st.lists(st.lists(_VISIBLE, min_size=1, max_size=6).map(bytes), max_size=3))
    gaps = [draw(st.sampled_from([b" ", b"\t", b" \t "])) for _ in words[1:]]
    return (
        words[0] + b"".join(g + w for g, w in zip(gaps, words[1:], strict=True)) if words else b""
    )


# One in five: often enough to be seen, rarely enough that half the connections stay open for
# a second exchange.
sometimes = st.sampled_from([True, False, False, False, False])


@st.composite
def exchanges(draw: st.DrawFn) -> Exchange:
    method = draw(st.sampled_from(["GET", "HEAD", "POST"]))
    # HTTP/1.0 only without keep-alive: h11 never keeps an HTTP/1.0 connection, the core
    # does when asked ("Connection: keep-alive"), so the two are not comparable there.
    version = draw(st.sampled_from(["1.1"] * 4 + ["1.0"]))
    request_body = draw(st.binary(max_size=20)) if method == "POST" else b""
    status = draw(st.sampled_from(STATUSES))
    parts = draw(st.lists(st.binary(max_size=8), min_size=1, max_size=5))
    body_length = sum(map(len, parts))
    # Repeated names come from drawing from a small pool with replacement.
    headers = draw(st.lists(st.tuples(st.sampled_from(NAMES).flatmap(cased), values()), max_size=5))
    framing = draw(st.sampled_from(["none", "content-length", "twice", "chunked"]))
    if framing in ("content-length", "twice"):
        headers.append((draw(cased(b"content-length")), b"%d" % body_length))
    if framing == "twice":  # the same value twice is one content-length to h11
        headers.append((draw(cased(b"content-length")), b"%d" % body_length))
    if framing == "chunked":
        headers.append((draw(cased(b"transfer-encoding")), b"chunked"))
    if draw(sometimes):
        headers.append((draw(cased(b"connection")), draw(st.sampled_from([b"close", b"Close"]))))
    invalid = draw(st.sampled_from(["none"] * 6 + ["header", "conflicting-length"]))
    if invalid == "header":
        headers.append(draw(st.sampled_from(INVALID_HEADERS)))
    elif invalid == "conflicting-length":
        headers += [(b"content-length", b"%d" % body_length), (b"content-length", b"9999")]
    headers = draw(st.permutations(headers))
    trailers = None
    if version == "1.1" and draw(st.booleans()):
        field = st.tuples(st.sampled_from(TRAILER_NAMES).flatmap(cased), values())
        trailers = draw(st.lists(st.lists(field, max_size=3), min_size=1, max_size=3))
    return Exchange(
        method=method,
        version=version,
        close=draw(sometimes),
        request_body=request_body,
        status=status,
        headers=headers,
        parts=parts,
        trailers=trailers,
        te_trailers=draw(st.booleans()),
    )


@ORACLE
@given(first=exchanges(), second=exchanges())
def test_response_bytes_are_h11s(first: Exchange, second: Exchange) -> None:
    core = Harness(NO_EXTRA_HEADERS)
    oracle = h11.Connection(h11.SERVER)
    for number, exchange in enumerate([first, second], start=1):
        core_bytes, core_refused, core_open = through_core(core, exchange)
        oracle_bytes, oracle_refused, oracle_open = through_h11(oracle, exchange)
        assert core_refused == oracle_refused, (number, core_refused, oracle_refused)
        if core_refused:
            event("refused")
            # Both refuse the response head before writing any of it.
            assert core_bytes == oracle_bytes == b""
            return
        assert core_bytes == oracle_bytes, number
        assert core_open == oracle_open, number
        event(f"exchange {number} compared, {'kept open' if core_open else 'closed'}")
        if not core_open:
            return
        oracle.start_next_cycle()


def through_core(h: Harness, exchange: Exchange) -> tuple[bytes, bool, bool]:
    """The core's bytes for the exchange, whether it refused it, whether it stays open."""
    h.take_sent()
    h.take_events()
    h.feed(exchange.wire())
    cycle = h.cycle()
    messages = h.read_request(cycle)
    assert b"".join(m["body"] for m in messages) == exchange.request_body
    try:
        start = {"type": "http.response.start", "status": exchange.status}
        start["headers"] = exchange.headers
        if exchange.trailers is not None:
            start["trailers"] = True
        h.message_from_app(cycle, start)
        for i, part in enumerate(exchange.parts):
            h.body(cycle, part, more_body=i < len(exchange.parts) - 1)
        for i, fields in enumerate(exchange.trailers or ()):
            more = i < len(exchange.trailers or ()) - 1
            trailers = {"type": "http.response.trailers", "headers": fields}
            h.message_from_app(cycle, {**trailers, "more_trailers": more})
    except ASGIProtocolError:
        return h.take_sent(), True, False
    closing = any(isinstance(e, (SendEOF, CloseConnection)) for e in h.take_events())
    return h.take_sent(), False, not closing


def through_h11(conn: h11.Connection, exchange: Exchange) -> tuple[bytes, bool, bool]:
    """What a plain h11 server writes for the exchange, as the module docstring describes."""
    conn.receive_data(exchange.wire())
    body = b""
    while True:
        received = conn.next_event()
        if isinstance(received, h11.Data):
            body += bytes(received.data)
        elif isinstance(received, h11.EndOfMessage):
            break
        else:
            assert isinstance(received, h11.Request), received
    assert body == exchange.request_body
    headers = [(n, v) for n, v in exchange.headers if n.lower() != b"transfer-encoding"]
    no_content = exchange.method == "HEAD" or exchange.status in (204, 304)
    out = b""
    try:
        reason = HTTPStatus(exchange.status).phrase.encode("ascii")
        head = conn.send(h11.Response(status_code=exchange.status, headers=headers, reason=reason))
        out += head
        for part in exchange.parts:
            if part and not no_content:
                out += conn.send(h11.Data(data=part))
        chunked = not no_content and b"\r\nTransfer-Encoding: chunked\r\n" in head
        trailers = [f for fields in exchange.trailers or () for f in fields]
        if exchange.te_trailers and chunked:
            out += conn.send(h11.EndOfMessage(headers=trailers))
        else:
            out += conn.send(h11.EndOfMessage())
    except h11.LocalProtocolError:
        return out, True, False
    return out, False, conn.our_state is h11.DONE
