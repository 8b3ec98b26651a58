"""The HTTP/1.1 fast-path reader, held to h11.

``FastReader`` reads the common request head and its Content-Length body itself and hands
anything else to h11; it may only *defer*, never decide differently. So for any bytes, split
at any points and fed the way ``HTTP11Handler`` feeds its readers, a ``FastReader`` and an
``H11Reader`` with the same ``max_head_bytes`` must give:

* the same ``Head`` events, the same body bytes (``Body`` events may be cut differently: the
  bodies are compared concatenated, and each request's end by how many input bytes were in
  when it came), and the same trailing data behind each request;
* or the same refusal: ``h11.RemoteProtocolError`` with the same status hint and message,
  from a fast reader that deferred (so the refusal is h11's own).

How the handler feeds readers, and so how these tests do: one reader per request; after every
chunk, ``next_event()`` until ``NEED_DATA``; after ``END_OF_REQUEST`` no more ``next_event()``
for that reader, but the bytes that arrive while the app is still answering go to it, and its
``trailing_data`` then starts the next request's reader. The end of input is never fed (a
reader never sees EOF), and nothing is read after a refusal.

The streams: valid requests (pipelined too), near misses of the fast path's grammar and of
h11's, byte mutations of valid requests, and random bytes. A separate property requires that
the common request -- its head in one chunk -- is served by the fast path, not deferred.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import h11
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sansio_asgi.core.http11_reader import (
    END_OF_REQUEST,
    NEED_DATA,
    Body,
    FastReader,
    H11Reader,
    Head,
    RequestReader,
)

ORACLE = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DEFAULT_HEAD_BYTES = 16 * 1024  # ProtocolSettings' default max_header_bytes
# Small limits put heads on both sides of the limit (h11 refuses an incomplete head that has
# grown beyond it with 431; a head that is whole in the buffer is read whatever its size).
head_limits = st.one_of(st.just(DEFAULT_HEAD_BYTES), st.integers(64, 300))


# ---------------------------------------------------------------- feeding readers


@dataclass
class Reading:
    """What a connection's readers gave for one stream."""

    # ("head", Head) | ("body", all bytes until the next item) | ("end", input bytes fed)
    # | ("trailing", bytes) | ("error", status hint, message)
    items: list[tuple[Any, ...]] = field(default_factory=list)
    readers: list[RequestReader] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return bool(self.items) and self.items[-1][0] == "error"


def read_connection(
    new_reader: Callable[[], RequestReader], chunks: list[bytes], lag: int
) -> Reading:
    """Feed ``chunks`` as ``HTTP11Handler`` does. ``lag``: how many chunks reach a finished
    request's reader (its app still answering) before its trailing data starts the next."""
    reading = Reading()
    items = reading.items
    fed = 0

    def drain(reader: RequestReader) -> bool | None:
        """``next_event()`` until NEED_DATA: True at the request's end, None on a refusal."""
        while True:
            try:
                got = reader.next_event()
            except h11.RemoteProtocolError as exc:
                items.append(("error", exc.error_status_hint, str(exc)))
                return None
            if got is NEED_DATA:
                return False
            if got is END_OF_REQUEST:
                items.append(("end", fed))
                return True
            if isinstance(got, Body):
                assert got.data, "an empty Body event"
                if items and items[-1][0] == "body":
                    items[-1] = ("body", items[-1][1] + got.data)
                else:
                    items.append(("body", got.data))
            else:
                assert isinstance(got, Head), got
                items.append(("head", got))

    position = 0
    start = b""  # the bytes a new reader starts with: its predecessor's trailing data
    while True:
        reader = new_reader()
        reading.readers.append(reader)
        ended: bool | None = False
        if start:
            reader.receive_data(start)
            ended = drain(reader)
        while ended is False and position < len(chunks):
            reader.receive_data(chunks[position])
            fed += len(chunks[position])
            position += 1
            ended = drain(reader)
        if not ended:  # refused, or the input ran out before the request's end
            return reading
        for chunk in chunks[position : position + lag]:
            reader.receive_data(chunk)
            fed += len(chunk)
        position = min(position + lag, len(chunks))
        start = reader.trailing_data
        items.append(("trailing", start))
        if not start and position == len(chunks):
            return reading


def check_agreement(chunks: list[bytes], max_head_bytes: int, lag: int = 0) -> Reading:
    """The fast reader agrees with h11 on ``chunks``; returns the fast reader's reading."""
    fast = read_connection(lambda: FastReader(max_head_bytes), chunks, lag)
    slow = read_connection(lambda: H11Reader(max_head_bytes), chunks, lag)
    assert fast.items == slow.items
    if fast.refused:
        # Only h11 refuses: the reader that raised had handed its request to h11.
        last = fast.readers[-1]
        assert isinstance(last, FastReader)
        assert last.deferred, "the fast path refused a request itself"
    return fast


def record_path(reading: Reading) -> None:
    """Statistics (``--hypothesis-show-statistics``): who read the first request, how many
    requests were read, and the refusals."""
    first = reading.readers[0]
    assert isinstance(first, FastReader)
    if first.deferred:
        event("first request: deferred to h11")
    elif reading.items:
        event("first request: fast path")
    else:
        event("first request: no input")
    heads = sum(1 for item in reading.items if item[0] == "head")
    event(f"requests read: {heads if heads < 3 else '3+'}")
    if reading.refused:
        event(f"refused: {reading.items[-1][1]}")


@st.composite
def split_points(draw: st.DrawFn, length: int) -> list[int]:
    if length < 2:
        return []
    return sorted(set(draw(st.lists(st.integers(1, length - 1), max_size=12))))


def split(data: bytes, points: list[int]) -> list[bytes]:
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if a < b]


@st.composite
def chunkings(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` whole, cut after every blank line (each head whole, as one read usually
    brings it: the fast path gets its look), cut at arbitrary points, or byte by byte."""
    how = draw(st.sampled_from(["whole", "at-head-ends", "points", "bytes"]), label="chunking")
    if how == "whole":
        return [data] if data else []
    if how == "bytes":
        return [data[i : i + 1] for i in range(len(data))]
    if how == "at-head-ends":
        ends, at = [], data.find(b"\r\n\r\n")
        while at >= 0:
            ends.append(at + 4)
            at = data.find(b"\r\n\r\n", at + 4)
        return split(data, [end for end in ends if 0 < end < len(data)])
    return split(data, draw(split_points(len(data)), label="split points"))


# ---------------------------------------------------------------- generating requests

TCHAR = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VCHAR = bytes(range(0x21, 0x7F))
OBS_TEXT = bytes(range(0x80, 0x100))


def chars(alphabet: bytes, min_size: int = 0, max_size: int = 8) -> st.SearchStrategy[bytes]:
    return st.lists(st.sampled_from(alphabet), min_size=min_size, max_size=max_size).map(bytes)


@dataclass
class Request:
    """One request as lines, so that near misses can bend any part of it."""

    method: bytes
    target: bytes
    version: bytes  # what follows the target on the request line
    fields: list[bytes]  # whole field lines, without line ends
    body: bytes
    before: bytes = b""  # bytes before the request line

    def wire(self, eol: bytes = b"\r\n") -> bytes:
        line = self.method + b" " + self.target + b" " + self.version
        return self.before + b"".join(x + eol for x in [line, *self.fields, b""]) + self.body


methods = st.one_of(
    st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH", b"get"]),
    chars(TCHAR, 1, 8),
)
targets = st.builds(
    lambda path, query: b"/" + path + (b"" if query is None else b"?" + query),
    chars(VCHAR.replace(b"?", b""), 0, 12),
    st.none() | chars(VCHAR, 0, 12),
)
names = st.one_of(
    st.sampled_from([b"Accept", b"user-agent", b"X-Request-Id", b"cookie", b"CONNECTION"]),
    chars(TCHAR, 1, 10),
)
# Names other than those whose count or value decides how the head is read.
plain_names = names.filter(
    lambda n: n.lower() not in (b"host", b"content-length", b"transfer-encoding")
)
words = chars(VCHAR + OBS_TEXT, 1, 6)
ows = st.sampled_from([b"", b"", b" ", b"\t", b"  ", b" \t"])


@st.composite
def values(draw: st.DrawFn) -> bytes:
    """field-value: words with single SP/HTAB runs between them, possibly empty."""
    parts = draw(st.lists(words, max_size=3))
    out = b""
    for i, word in enumerate(parts):
        out += (draw(st.sampled_from([b" ", b"\t", b"  "])) if i else b"") + word
    return out


@st.composite
def field_lines(draw: st.DrawFn, name: st.SearchStrategy[bytes] = names) -> bytes:
    return draw(name) + b":" + draw(ows) + draw(values()) + draw(ows)


@st.composite
def requests(draw: st.DrawFn, *, common: bool = False, with_body: bool | None = None) -> Request:
    """A request in h11's grammar. ``common``: HTTP/1.1 with exactly one Host field, the
    request the fast path exists for."""
    version = b"HTTP/1.1" if common else draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"]))
    hosts = 1 if common else draw(st.sampled_from([1] * 8 + [0, 2]))
    host_name = st.sampled_from([b"Host", b"host", b"HOST"])
    host_value = st.sampled_from([b"example.com", b"a:8000", b"", b"[::1]:80"])
    fields = [
        draw(host_name) + b":" + draw(ows) + draw(host_value) + draw(ows) for _ in range(hosts)
    ]
    fields += draw(st.lists(field_lines(plain_names if common else names), max_size=5))
    body = b""
    if with_body is not False and (with_body or draw(st.booleans())):
        body = draw(st.binary(max_size=60))
        name = draw(st.sampled_from([b"Content-Length", b"content-length", b"CONTENT-LENGTH"]))
        fields.append(name + b":" + draw(ows) + str(len(body)).encode() + draw(ows))
    fields = draw(st.permutations(fields))
    return Request(draw(methods), draw(targets), version, list(fields), body)


# ---------------------------------------------------------------- near misses


def chunked(body: bytes, sizes: list[int]) -> bytes:
    out, rest = b"", body
    for size in sizes:
        if not rest:
            break
        out += b"%x\r\n%s\r\n" % (len(rest[:size]), rest[:size])
        rest = rest[size:]
    if rest:
        out += b"%x\r\n%s\r\n" % (len(rest), rest)
    return out + b"0\r\n\r\n"


def without_length(request: Request) -> list[bytes]:
    return [f for f in request.fields if not f.lower().startswith(b"content-length:")]


TWISTS = [
    "bare-lf",
    "bare-lf-one-line",
    "obs-fold",
    "space-before-colon",
    "control-in-value",
    "target-form",
    "version",
    "transfer-encoding",
    "content-length",
    "big-head",
    "empty-lines-first",
    "request-line",
    "field-name",
]


@st.composite
def near_misses(draw: st.DrawFn, request: Request, twist: str) -> list[bytes]:
    """``request`` bent by ``twist`` in each of its variants: ways the fast path must decline
    (or, for a few, must read exactly as h11 does). All variants, not one drawn, so that every
    variant meets every drawn context, each run."""
    fields = list(request.fields)
    at = draw(st.integers(0, len(fields)))

    def insert(*lines: bytes, into: list[bytes] = fields) -> list[bytes]:
        return [*into[:at], *lines, *into[at:]]

    if twist == "bare-lf":
        return [request.wire(b"\n")]
    if twist == "bare-lf-one-line":
        wire = request.wire()
        ends = [i for i in range(len(wire) - 1) if wire[i : i + 2] == b"\r\n"]
        return [wire[:cut] + wire[cut + 1 :] for cut in ends]
    if twist == "obs-fold":
        folded = draw(values())
        return [replace(request, fields=insert(ws + folded)).wire() for ws in (b" ", b"\t", b"  ")]
    if twist == "space-before-colon":
        name = draw(names)
        return [
            replace(request, fields=insert(name + ws + b": v")).wire()
            for ws in (b" ", b"\t", b"  ")
        ]
    if twist == "control-in-value":
        name, word, tail = draw(names), draw(words), draw(st.sampled_from([b"", b"x"]))
        return [
            replace(request, fields=insert(name + b": " + word + bad + tail)).wire()
            for bad in (b"\x00", b"\r", b"\x0b", b"\x0c", b"\x7f", b"\x01", b"\n")
        ]
    if twist == "target-form":
        return [
            replace(request, target=target).wire()
            for target in (
                b"http://example.com/a?b",
                b"HTTPS://example.com",
                b"*",
                b"example.com:443",
                b"//a",
                b"a/b",
                b"/a\x80b",
                b"/a b",
                b"",
            )
        ]
    if twist == "version":
        return [
            replace(request, version=version).wire()
            for version in (
                b"HTTP/2.0",
                b"HTTP/1.2",
                b"HTTP/1.9",
                b"HTTP/0.9",
                b"http/1.1",
                b"Http/1.1",
                b"HTTP/1",
                b"HTTP/1.10",
                b"HTTP/11",
                b"HTTP/1.1 ",
                b"HTTP/1.1\t",
                b"HTTP/\xb9.1",
            )
        ]
    if twist == "transfer-encoding":
        name = draw(st.sampled_from([b"Transfer-Encoding", b"transfer-encoding"]))
        kept = fields if draw(st.booleans()) else without_length(request)
        count = draw(st.sampled_from([1, 1, 2]))
        body = request.body
        if draw(st.booleans()):
            body = chunked(body, draw(st.lists(st.integers(1, 20), max_size=4)))
        return [
            replace(
                request, fields=insert(*[name + b": " + coding] * count, into=kept), body=body
            ).wire()
            for coding in (
                b"chunked",
                b"Chunked",
                b"gzip",
                b"gzip, chunked",
                b"chunked, gzip",
                b"",
                b"x",
            )
        ]
    if twist == "content-length":
        n = len(request.body)
        kept = without_length(request)
        lengths = [
            [b"Content-Length: " + value]
            for value in (
                b"%d, %d" % (n, n),
                b"%d,%d" % (n, n + 1),
                b"%d , %d" % (n, n),
                b"+%d" % n,
                b"-%d" % n,
                b" %d" % n,
                b"%d " % n,
                b"0%d" % n,
                b"0x%d" % n,
                b"%d %d" % (n, n),
                b"",
                b"1" * 21,
                b"0" * 21,
                b"%020d" % n,
                b"%021d" % n,
                "\u0665".encode(),
                b"%d.0" % n,
            )
        ]
        lengths += [
            [b"Content-Length: %d" % n, b"content-length: %d" % n],
            [b"Content-Length: %d" % n, b"content-length: %d" % (n + 1)],
            [b"Content-Length: %d" % (n + 1), b"content-length: %d" % n],
        ]
        return [replace(request, fields=insert(*lines, into=kept)).wire() for lines in lengths]
    if twist == "big-head":
        size = draw(st.integers(1, 400))
        return [
            replace(request, fields=insert(b"X-Filler: " + b"f" * n)).wire()
            for n in (size, size * 10, 40_000)
        ]
    if twist == "empty-lines-first":
        return [
            replace(request, before=before).wire()
            for before in (b"\r\n", b"\n", b"\r\n\r\n", b" ", b"\t", b"\r")
        ]
    if twist == "request-line":
        method, target, version = request.method, request.target, request.version
        return [
            b"".join(x + b"\r\n" for x in [line, *fields, b""]) + request.body
            for line in (
                method + b"  " + target + b" " + version,
                method + b" " + target + b"  " + version,
                method + b"\t" + target + b" " + version,
                b" " + method + b" " + target + b" " + version,
                method + b"@ " + target + b" " + version,
                method + b" " + target,
                b"",
            )
        ]
    assert twist == "field-name"
    return [
        replace(request, fields=insert(name + b": v")).wire()
        for name in (b"", b"X\x80", b"X(", b"X Y", b"X/Y", b"X@", b"\x00")
    ]


@st.composite
def near_miss_pipelines(draw: st.DrawFn, twist: str | None = None) -> list[bytes]:
    """Valid requests with one of them bent (by ``twist``, or any), in each of the twist's
    variants. Mostly common requests, so that the twist is what the fast path has to notice."""
    reqs = draw(st.lists(requests(common=True) | requests(), min_size=1, max_size=3))
    bent = draw(st.integers(0, len(reqs) - 1))
    if twist is None:
        twist = draw(st.sampled_from(TWISTS), label="twist")
    before = b"".join(r.wire() for r in reqs[:bent])
    after = b"".join(r.wire() for r in reqs[bent + 1 :])
    return [before + bent_wire + after for bent_wire in draw(near_misses(reqs[bent], twist))]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """Valid requests with bytes flipped, inserted or deleted."""
    data = bytearray(b"".join(r.wire() for r in draw(st.lists(requests(), min_size=1, max_size=3))))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "replace"]))
        pos = draw(st.integers(0, len(data)))
        byte = draw(
            st.one_of(
                st.sampled_from([0, 9, 10, 11, 13, 32, 44, 58, 0x7F, 0x80, 0xFF]),
                st.integers(0, 255),
            )
        )
        if op == "insert":
            data.insert(pos, byte)
        elif pos < len(data):
            if op == "delete":
                del data[pos]
            elif op == "flip":
                data[pos] ^= 1 << draw(st.integers(0, 7))
            else:
                data[pos] = byte
    return bytes(data)


valid_streams = st.lists(requests(), min_size=1, max_size=3).map(
    lambda reqs: b"".join(r.wire() for r in reqs)
)
streams = st.one_of(
    valid_streams,
    near_miss_pipelines().flatmap(st.sampled_from),
    mutated(),
    st.binary(max_size=300),
    st.lists(
        st.sampled_from(
            [
                *(b"GET / HTTP/1.1\r\n", b"Host: a\r\n", b"Content-Length: 3\r\n"),
                *(b"\r\n", b"\n", b"abc", b":", b" ", b"\t", b"HTTP/1.0", b"0\r\n"),
                b"Transfer-Encoding: chunked",
            ]
        ),
        max_size=12,
    ).map(b"".join),
)


# ---------------------------------------------------------------- the properties


@ORACLE
@given(data=st.data(), stream=streams, max_head_bytes=head_limits, lag=st.integers(0, 2))
def test_fast_reader_agrees_with_h11(
    data: st.DataObject, stream: bytes, max_head_bytes: int, lag: int
) -> None:
    chunks = data.draw(chunkings(stream), label="chunks")
    record_path(check_agreement(chunks, max_head_bytes, lag))


@pytest.mark.parametrize("twist", TWISTS)
@settings(ORACLE, max_examples=60)
@given(data=st.data(), max_head_bytes=head_limits, lag=st.integers(0, 2))
def test_fast_reader_agrees_with_h11_on_near_misses(
    twist: str, data: st.DataObject, max_head_bytes: int, lag: int
) -> None:
    """Every kind of near miss, each on every run, in all its variants."""
    for stream in data.draw(near_miss_pipelines(twist), label="streams"):
        chunks = data.draw(chunkings(stream), label="chunks")
        check_agreement(chunks, max_head_bytes, lag)


@ORACLE
@given(data=st.data(), stream=valid_streams, max_head_bytes=head_limits, lag=st.integers(0, 2))
def test_fast_reader_agrees_with_h11_on_valid_requests(
    data: st.DataObject, stream: bytes, max_head_bytes: int, lag: int
) -> None:
    chunks = data.draw(chunkings(stream), label="chunks")
    record_path(check_agreement(chunks, max_head_bytes, lag))


@ORACLE
@given(
    data=st.data(),
    reqs=st.lists(requests(common=True), min_size=1, max_size=3),
    max_head_bytes=st.just(DEFAULT_HEAD_BYTES),
)
def test_common_requests_take_the_fast_path(
    data: st.DataObject, reqs: list[Request], max_head_bytes: int
) -> None:
    """A valid HTTP/1.1 request with one Host, a few fields and an optional Content-Length
    body, whose head arrives in one chunk (the body cut anywhere), is served by the fast path;
    so is every request pipelined behind it, its head whole in the trailing data."""
    first = reqs[0].wire()
    head_end = first.index(b"\r\n\r\n") + 4
    rest = b"".join(r.wire() for r in reqs)[head_end:]
    chunks = [first[:head_end], *data.draw(chunkings(rest), label="chunks after the head")]
    reading = check_agreement(chunks, max_head_bytes, lag=len(chunks))
    assert not reading.refused
    assert [item[1] for item in reading.items if item[0] == "head"] == [
        Head(r.method, r.target, b"1.1", [parsed(f) for f in r.fields]) for r in reqs
    ]
    assert [r for r in reading.readers if isinstance(r, FastReader) and r.deferred] == []


def parsed(line: bytes) -> tuple[bytes, bytes]:
    name, _, value = line.partition(b":")
    return name.lower(), value.strip(b" \t")


# Each kind of near miss, pinned so that every run covers it whatever the seed: the two readers
# agree on it whole and byte by byte, and the fast path serves it or defers, as listed. A few
# deferrals are not needed for agreement (h11 reads an absolute- or asterisk-form target,
# HTTP/1.2, and a head beyond max_head_bytes that is whole in the buffer, as the fast path
# would): those rows hold the fast path to the scope its module documents.
GET = b"GET /p?q=1 HTTP/1.1\r\nHost: a\r\n"
POST = b"POST /p HTTP/1.1\r\nHost: a\r\n"
PINNED = [
    # (id, bytes, max_head_bytes, the fast path serves the first request)
    ("common", GET + b"X: y\r\n\r\n", DEFAULT_HEAD_BYTES, True),
    ("http-1.0-no-host", b"GET / HTTP/1.0\r\n\r\n", DEFAULT_HEAD_BYTES, True),
    ("ows-and-obs-text", GET + b"X:\t \x80y z\xff \t\r\n\r\n", DEFAULT_HEAD_BYTES, True),
    ("empty-value", GET + b"X:\r\nY: \r\n\r\n", DEFAULT_HEAD_BYTES, True),
    ("length-ows", POST + b"Content-Length:  3 \r\n\r\nabc", DEFAULT_HEAD_BYTES, True),
    ("length-zeros", POST + b"Content-Length: 003\r\n\r\nabcGET", DEFAULT_HEAD_BYTES, True),
    ("length-20-digits", POST + b"Content-Length: %020d\r\n\r\nab" % 3, DEFAULT_HEAD_BYTES, True),
    ("pipelined", GET + b"\r\n" + GET + b"\r\n", DEFAULT_HEAD_BYTES, True),
    ("host-missing", b"GET / HTTP/1.1\r\n\r\n", DEFAULT_HEAD_BYTES, False),
    ("host-twice", GET + b"host: b\r\n\r\n", DEFAULT_HEAD_BYTES, False),
    ("host-twice-1.0", b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", DEFAULT_HEAD_BYTES, False),
    ("bare-lf", b"GET / HTTP/1.1\nHost: a\n\n", DEFAULT_HEAD_BYTES, False),
    ("bare-lf-last", GET + b"\n", DEFAULT_HEAD_BYTES, False),
    ("obs-fold", GET + b"X: a\r\n b\r\n\r\n", DEFAULT_HEAD_BYTES, False),
    ("fold-first", b"GET / HTTP/1.1\r\n b\r\nHost: a\r\n\r\n", DEFAULT_HEAD_BYTES, False),
    ("space-before-colon", GET + b"X : y\r\n\r\n", DEFAULT_HEAD_BYTES, False),
    ("nul-in-value", GET + b"X: a\x00b\r\n\r\n", DEFAULT_HEAD_BYTES, False),
    ("cr-in-value", GET + b"X: a\rb\r\n\r\n", DEFAULT_HEAD_BYTES, False),
    ("vt-in-value", GET + b"X: a\x0bb\r\n\r\n", DEFAULT_HEAD_BYTES, False),
    ("absolute-form", b"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", DEFAULT_HEAD_BYTES, False),
    ("asterisk-form", b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", DEFAULT_HEAD_BYTES, False),
    ("http-2.0", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", DEFAULT_HEAD_BYTES, False),
    ("http-1.2", b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", DEFAULT_HEAD_BYTES, False),
    ("lowercase-http", b"GET / http/1.1\r\nHost: a\r\n\r\n", DEFAULT_HEAD_BYTES, False),
    (
        "chunked",
        POST + b"Transfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
        DEFAULT_HEAD_BYTES,
        False,
    ),
    ("gzip", POST + b"Transfer-Encoding: gzip\r\n\r\n", DEFAULT_HEAD_BYTES, False),
    (
        "te-and-cl",
        POST + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        DEFAULT_HEAD_BYTES,
        False,
    ),
    (
        "two-equal-cl",
        POST + b"Content-Length: 1\r\nContent-Length: 1\r\n\r\na",
        DEFAULT_HEAD_BYTES,
        False,
    ),
    (
        "two-cl",
        POST + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        DEFAULT_HEAD_BYTES,
        False,
    ),
    ("list-cl", POST + b"Content-Length: 1, 1\r\n\r\na", DEFAULT_HEAD_BYTES, False),
    ("plus-cl", POST + b"Content-Length: +1\r\n\r\na", DEFAULT_HEAD_BYTES, False),
    ("21-digit-cl", POST + b"Content-Length: %021d\r\n\r\na" % 1, DEFAULT_HEAD_BYTES, False),
    ("empty-cl", POST + b"Content-Length:\r\n\r\n", DEFAULT_HEAD_BYTES, False),
    ("leading-crlf", b"\r\n" + GET + b"\r\n", DEFAULT_HEAD_BYTES, False),
    ("head-over-limit", GET + b"X: " + b"x" * 80 + b"\r\n\r\n", 64, False),
    ("head-under-limit", GET + b"X: " + b"x" * 20 + b"\r\n\r\n", 64, True),
]


@pytest.mark.parametrize("chunking", ["whole", "bytes"])
@pytest.mark.parametrize(
    ("wire", "max_head_bytes", "fast"),
    [pytest.param(w, m, f, id=name) for name, w, m, f in PINNED],
)
def test_pinned_near_misses(wire: bytes, max_head_bytes: int, fast: bool, chunking: str) -> None:
    chunks = [wire] if chunking == "whole" else [wire[i : i + 1] for i in range(len(wire))]
    reading = check_agreement(chunks, max_head_bytes)
    first = reading.readers[0]
    assert isinstance(first, FastReader)
    # Byte by byte, no head is whole at the first look: everything is h11's.
    assert first.deferred is not (fast and chunking == "whole")
