"""The request-smuggling corpus that ``test_desync.py`` replays against both drivers.

Each ``Case`` is one payload and the one framing the server must give it. The payloads come
from two places:

* the bugs HTTP Garden found in real servers and proxies (its ``TROPHIES.md``: "server bug N"
  is a parser that framed a request wrongly, "transducer bug N" a proxy that forwarded
  something a backend could misread). Each payload is rewritten here around our own marker;
* RFC 9112 §6 (message body length: Transfer-Encoding, Content-Length and which wins), §7
  (chunked coding and trailers), §2.2 (line endings, bare CR) and §5.2 (obs-fold).

Every payload that could be read two ways carries a request for ``/SMUGGLED`` (``SMUGGLED``):
a server that frames the payload as the RFC says never answers it. A request that is a real
request under the RFC framing gets a plain path (``/next``, ``/after-...``) instead.

Where the RFC leaves the server a choice (reject, or accept and parse correctly), the row pins
what this server does, and its comment says which choice that is. The test appends ``PROBE``
to every payload, so a connection that is still reading requests after the payload ends with a
request whose answer, and ``connection: close``, says the server is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# The marker of a hidden request. Under the RFC framing it is always body, trailer, extension
# or dropped bytes; the test fails if the app ever sees it as a request or it is answered.
SMUGGLED = b"GET /SMUGGLED HTTP/1.1\r\nHost: a\r\n\r\n"  # 35 (0x23) bytes
PROBE = b"GET /probe HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n"

_CHUNKED = b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
# SMUGGLED as the one chunk of a well-formed chunked body.
_SMUGGLED_CHUNKED = b"23\r\n" + SMUGGLED + b"\r\n0\r\n\r\n"


@dataclass(frozen=True, slots=True)
class Seen:
    """One request as the app receives it.

    ``complete``: the app read the whole body and answered 200 with ``b"METHOD /path"``.
    Otherwise the connection failed mid-body (the app got ``http.disconnect``) and ``body`` is
    what it may have read by then: the app's body must be a prefix of it.
    """

    method: str
    path: str
    body: bytes = b""
    complete: bool = True
    host: bytes | None = None  # when set, the scope's one Host header value


# How the exchange ends:
# - "probe": the payload's requests are answered and so is PROBE, which closes;
# - "close": the payload's last request ended the connection (Connection: close, HTTP/1.0);
#   the probe is never answered;
# - a status: the server answers with that error, then closes;
# - "pending": the server is still reading the last request's body (it has all the bytes
#   after it, the probe included): nothing is answered, and the client gives up.
End = Literal["probe", "close", "pending"] | int


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    technique: str
    payload: bytes
    seen: tuple[Seen, ...]
    end: End
    # Set while the server frames this row other than as the RFC asks: a strict xfail, and why.
    xfail: str | None = None


def rejected(status: int, *seen: Seen) -> tuple[tuple[Seen, ...], End]:
    return seen, status


def served(*seen: Seen, end: End = "probe") -> tuple[tuple[Seen, ...], End]:
    return seen, end


def _case(
    id: str,
    technique: str,
    payload: bytes,
    outcome: tuple[tuple[Seen, ...], End],
    xfail: str | None = None,
) -> Case:
    seen, end = outcome
    return Case(id, technique, payload, seen, end, xfail)


BOTH = "CL and TE both present"
TE = "Transfer-Encoding obfuscation"
CL = "Content-Length obfuscation"
SIZE = "chunk-size"
CHUNK = "chunk line endings and extensions"
TRAILER = "trailer section"
FIELD = "field-line syntax"
LINE = "request-line"
CONN = "connection and pipelining"

_POST_A = Seen("POST", "/a")
_POST_SMUGGLED_BODY = Seen("POST", "/a", SMUGGLED)

_NEXT = b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
_WS_HEAD = (
    b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
)

CASES: tuple[Case, ...] = (
    # ---------------------------------------------------------------- CL and TE together
    # RFC 9112 §6.1: "A server MAY reject a request that contains both Content-Length and
    # Transfer-Encoding or process such a request in accordance with the Transfer-Encoding
    # alone. Regardless, the server MUST close the connection after responding". This server
    # rejects: there is no framing to get wrong.
    _case(
        "cl-te",  # PortSwigger CL.TE: a front end using CL forwards SMUGGLED as body
        BOTH,
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
        rejected(400),
    ),
    _case(
        "te-cl",  # PortSwigger TE.CL: a back end using CL reads 4 bytes, then SMUGGLED
        BOTH,
        b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
        + _SMUGGLED_CHUNKED,
        rejected(400),
    ),
    _case(
        "te-comma-chunked-cl",  # HTTP Garden server bug 21 (gunicorn, mongoose, passenger),
        BOTH,  # transducer bugs 15 and 18 (OpenLiteSpeed, pound, relayd): ",chunked" + CL
        b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\nContent-Length: 5\r\n\r\n"
        b"0\r\n\r\n" + SMUGGLED,
        rejected(501),  # h11 refuses the unknown coding before both fields are compared
    ),
    _case(
        "te-cl-http10",  # RFC 9112 §6.1 both rules at once: TE in HTTP/1.0, and TE with CL
        BOTH,
        b"POST /a HTTP/1.0\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n" + SMUGGLED,
        rejected(400),
    ),
    _case(
        "te-name-split-cl",  # HTTP Garden server bug 37 (passenger): "Transfer-\r\nEncoding"
        BOTH,
        b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-\r\nEncoding: chunked\r\nContent-Length: 5\r\n"
        b"\r\n0\r\n\r\n" + SMUGGLED,
        rejected(400),
    ),
    _case(
        # RFC 9112 §5.2: obs-fold is replaced by SP, so " Transfer-Encoding: chunked" is part of
        # X-Pad's value, not a field: CL alone frames the body (a proxy that reads the folded
        # line as a field sees TE+CL). Accepting obs-fold is the RFC's other choice (vs 400).
        "te-folded-into-previous-field-cl",
        BOTH,
        b"POST /a HTTP/1.1\r\nHost: a\r\nX-Pad: x\r\n Transfer-Encoding: chunked\r\n"
        b"Content-Length: 40\r\n\r\n0\r\n\r\n" + SMUGGLED,
        served(Seen("POST", "/a", b"0\r\n\r\n" + SMUGGLED)),
    ),
    # ---------------------------------------------------------------- TE obfuscation
    # RFC 9112 §6.1: "A server that receives a request message with a transfer coding it does
    # not understand SHOULD respond with 501 (Not Implemented)". h11 understands exactly
    # "chunked" (any case) in a single field line: every other value is 501, and closes.
    _case(
        "te-chunked-identity",  # TE.TE: a front end that honours the last coding sees no body
        TE,
        b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
        + _SMUGGLED_CHUNKED,
        rejected(501),
    ),
    _case(
        # RFC 9112 §6.3 (4) asks for 400 when chunked is not the final coding; 501 also closes,
        # so nothing can be smuggled either way.
        "te-chunked-not-final",
        TE,
        b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
        + _SMUGGLED_CHUNKED,
        rejected(501),
    ),
    _case(
        "te-unknown-then-chunked",  # RFC 9112 §6.1: gzip is a coding h11 does not understand
        TE,
        b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
        + _SMUGGLED_CHUNKED,
        rejected(501),
    ),
    _case(
        "te-unknown",  # HTTP Garden server bug 44 (fasthttp): unknown codings read as chunked
        TE,
        b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: blegh\r\n\r\n1\r\nZ\r\n0\r\n\r\n"
        + SMUGGLED,
        rejected(501),
    ),
    _case(
        "te-duplicate-fields",  # HTTP Garden server bug 11 (tornado), transducer bug 25 (pound)
        TE,
        b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n1\r\nZ\r\n0\r\n\r\n" + SMUGGLED,
        rejected(501),
    ),
    _case(
        "te-nbsp",  # HTTP Garden server bug 12 (tornado): \xa0 stripped as if whitespace
        TE,
        b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \xa0chunked\xa0\r\n\r\n"
        + _SMUGGLED_CHUNKED,
        rejected(501),
    ),
    _case(
        # RFC 9112 §5.1: "A server MUST reject, with a response status code of 400 (Bad
        # Request), any received request message that contains whitespace between a header
        # field name and colon."
        "te-space-before-colon",
        TE,
        b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n" + _SMUGGLED_CHUNKED,
        rejected(400),
    ),
    _case(
        "te-vertical-tab",  # \x0b is not OWS (SP / HTAB): the field line is invalid
        TE,
        b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n" + _SMUGGLED_CHUNKED,
        rejected(400),
    ),
    _case(
        "te-leading-whitespace-first-field",  # HTTP Garden server bug 4 (aiohttp)
        TE,
        b"POST /a HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: a\r\n\r\n" + _SMUGGLED_CHUNKED,
        rejected(400),
    ),
    _case(
        # RFC 9112 §6.1: "A server or client that receives an HTTP/1.0 message containing a
        # Transfer-Encoding header field MUST treat the message as if the framing is faulty,
        # even if a Content-Length is present, and close the connection".
        "te-http10",
        TE,
        b"POST /a HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + _SMUGGLED_CHUNKED,
        rejected(400),
    ),
    _case(
        "te-uppercase",  # RFC 9112 §7: "All transfer-coding names are case-insensitive"
        TE,
        b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n" + _SMUGGLED_CHUNKED,
        served(_POST_SMUGGLED_BODY),
    ),
    _case(
        "te-obs-fold-value",  # RFC 9112 §5.2: the fold becomes SP; the value is "chunked"
        TE,
        b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"
        + _SMUGGLED_CHUNKED,
        served(_POST_SMUGGLED_BODY),
    ),
    # ---------------------------------------------------------------- CL obfuscation
    # RFC 9110 §8.6: Content-Length = 1*DIGIT. RFC 9112 §6.3 (5): "If a message is received
    # without Transfer-Encoding and with an invalid Content-Length header field, then the
    # message framing is invalid and the recipient MUST treat it as an unrecoverable error
    # [...] the server MUST respond with a 400 (Bad Request) status code and then close".
    _case(
        "cl-plus",  # HTTP Garden server bug 10 (aiohttp, CPython, tornado, werkzeug): int()
        CL,
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: +35\r\n\r\n" + SMUGGLED,
        rejected(400),
    ),
    _case(
        "cl-hex",  # HTTP Garden transducer bug 1 (Akamai), server bug 32 (OpenLiteSpeed)
        CL,
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 0x23\r\n\r\n" + SMUGGLED,
        rejected(400),
    ),
    _case(
        "cl-underscore",  # HTTP Garden server bug 10: int("3_5") == 35
        CL,
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3_5\r\n\r\n" + SMUGGLED,
        rejected(400),
    ),
    _case(
        "cl-junk-suffix",  # HTTP Garden server bug 29 (mongoose, OpenLiteSpeed): longest prefix
        CL,
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 35Z\r\n\r\n" + SMUGGLED,
        rejected(400),
    ),
    _case(
        "cl-empty",  # HTTP Garden server bugs 16 and 38 (Go, lighttpd, OpenLiteSpeed, puma)
        CL,
        b"GET /a HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n" + SMUGGLED,
        rejected(400),
    ),
    _case(
        "cl-empty-then-value",  # HTTP Garden server bug 42 (WEBrick), transducer 11 (HAProxy)
        CL,
        b"GET /a HTTP/1.1\r\nHost: a\r\nContent-Length: \r\nContent-Length: 35\r\n\r\n" + SMUGGLED,
        rejected(400),
    ),
    _case(
        "cl-space-before-colon",  # HTTP Garden server bug 3 (aiohttp, cheroot, OpenLiteSpeed)
        CL,
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length : 35\r\n\r\n" + SMUGGLED,
        rejected(400),
    ),
    _case(
        "cl-name-nel",  # HTTP Garden server bug 20 (gunicorn): \x85 stripped from names
        CL,
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length\x85: 35\r\n\r\n" + SMUGGLED,
        rejected(400),
    ),
    _case(
        "cl-digits-limit",  # 21 digits: above h11's 20-digit limit (RFC 9110 §8.6 overflow)
        CL,
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 000000000000000000035\r\n\r\n" + SMUGGLED,
        rejected(400),
    ),
    _case(
        # RFC 9110 §8.6: a list of identical values MAY be accepted as that value. This server
        # accepts it: every reading gives 35.
        "cl-list-identical",
        CL,
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 35, 35\r\n\r\n" + SMUGGLED,
        served(_POST_SMUGGLED_BODY),
    ),
    _case(
        "cl-fields-identical",  # RFC 9110 §8.6: the same, as two field lines
        CL,
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 35\r\nContent-Length: 35\r\n\r\n"
        + SMUGGLED,
        served(_POST_SMUGGLED_BODY),
    ),
    _case(
        "cl-list-conflict",  # RFC 9110 §8.6: differing values are unrecoverable: 400
        CL,
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 0, 35\r\n\r\n" + SMUGGLED,
        rejected(400),
    ),
    _case(
        # HTTP Garden server bugs 23 and 33 (H2O, OpenLiteSpeed, fasthttp: first or last wins),
        # transducer bug 22 (relayd forwards both)
        "cl-fields-conflict",
        CL,
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 35\r\n\r\n"
        + SMUGGLED,
        rejected(400),
    ),
    _case(
        # HTTP Garden server bug 32 (OpenLiteSpeed read "0100" as octal 64, so SMUGGLED, at
        # offset 64, became a request). Leading zeros are valid decimal: the body is 100 bytes.
        "cl-leading-zeros",
        CL,
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 0100\r\n\r\n"
        + b"A" * 64
        + SMUGGLED
        + b"X",
        served(Seen("POST", "/a", b"A" * 64 + SMUGGLED + b"X")),
    ),
    _case(
        "cl-on-get",  # HTTP Garden transducer bug 21 (relayd dropped GET bodies, kept the CL)
        CL,
        b"GET /a HTTP/1.1\r\nHost: a\r\nContent-Length: 35\r\n\r\n" + SMUGGLED,
        served(Seen("GET", "/a", SMUGGLED)),
    ),
    _case(
        # HTTP Garden server bug 48 (puma read the second request as the first one's body)
        "cl-zero-then-pipelined",
        CL,
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"
        b"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 35\r\n\r\n" + SMUGGLED,
        served(_POST_A, Seen("POST", "/b", SMUGGLED)),
    ),
    _case(
        "cl-http10-keep-alive",  # RFC 9112 Appendix C.2.2: the body still ends at CL
        CL,
        b"POST /a HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\nContent-Length: 35\r\n\r\n"
        + SMUGGLED,
        served(_POST_SMUGGLED_BODY),
    ),
    _case(
        "cl-obs-fold-value",  # RFC 9112 §5.2: the fold becomes SP; the value is "35"
        CL,
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n 35\r\n\r\n" + SMUGGLED,
        served(_POST_SMUGGLED_BODY),
    ),
    # ---------------------------------------------------------------- chunk-size
    # RFC 9112 §7.1: chunk-size = 1*HEXDIG. "Recipients MUST anticipate potentially large
    # hexadecimal numerals and prevent parsing errors due to integer conversion overflows".
    _case(
        "chunk-size-underscore",  # HTTP Garden server bugs 1 and 22 (aiohttp, gunicorn,
        SIZE,  # tornado, H2O, OpenLiteSpeed, WEBrick): "0_2e" read as 0 or as 0x2e
        _CHUNKED + b"0_2e\r\n\r\n" + SMUGGLED,
        rejected(400, Seen("POST", "/a", complete=False)),
    ),
    _case(
        "chunk-size-0x",  # HTTP Garden server bug 25 (libevent, OpenLiteSpeed: strtoll)
        SIZE,
        _CHUNKED + b"0x23\r\n" + SMUGGLED + b"\r\n0\r\n\r\n",
        rejected(400, Seen("POST", "/a", complete=False)),
    ),
    _case(
        "chunk-size-signed",  # HTTP Garden transducer bug 19 (relayd, pound): "-0x0"
        SIZE,
        _CHUNKED + b"-0x0\r\n\r\n" + SMUGGLED,
        rejected(400, Seen("POST", "/a", complete=False)),
    ),
    _case(
        "chunk-size-leading-space",  # HTTP Garden transducer bug 24 (relayd, pound)
        SIZE,
        _CHUNKED + b"   0\r\n\r\n" + SMUGGLED,
        rejected(400, Seen("POST", "/a", complete=False)),
    ),
    _case(
        "chunk-size-empty",  # HTTP Garden server bug 17 (Go, hyper, mongoose): "" read as 0
        SIZE,
        _CHUNKED + b"\r\n\r\n" + SMUGGLED,
        rejected(400, Seen("POST", "/a", complete=False)),
    ),
    _case(
        "chunk-size-invalid",  # HTTP Garden server bug 47 (cheroot resynchronised after it)
        SIZE,
        _CHUNKED + b"INVALID!!!\r\n" + SMUGGLED,
        rejected(400, Seen("POST", "/a", complete=False)),
    ),
    _case(
        "chunk-size-leading-zeros",  # valid hex: 00023 is 35
        SIZE,
        _CHUNKED + b"00023\r\n" + SMUGGLED + b"\r\n000\r\n\r\n",
        served(_POST_SMUGGLED_BODY),
    ),
    _case(
        # 21 digits: above h11's 20-digit chunk-size limit. Rejecting a size this server could
        # never receive anyway frames nothing wrongly.
        "chunk-size-digits-limit",
        SIZE,
        _CHUNKED + b"000000000000000000023\r\n" + SMUGGLED + b"\r\n0\r\n\r\n",
        rejected(400, Seen("POST", "/a", complete=False)),
    ),
    _case(
        # 2**64 + 1: a 64-bit parser wraps it to 1, reads "Z", the last chunk, then SMUGGLED.
        # Python ints do not wrap: every byte after the size line is chunk data, so the
        # server is still reading the chunk when the client gives up.
        "chunk-size-wraps-64-bits",
        SIZE,
        _CHUNKED + b"10000000000000001\r\nZ\r\n0\r\n\r\n" + SMUGGLED,
        served(Seen("POST", "/a", b"Z\r\n0\r\n\r\n" + SMUGGLED, complete=False), end="pending"),
    ),
    _case(
        "chunk-size-overflow",  # 17 hex digits: 2**68 - 15, beyond any 64-bit integer
        SIZE,
        _CHUNKED + b"ffffffffffffffff1\r\nZ\r\n0\r\n\r\n" + SMUGGLED,
        served(Seen("POST", "/a", b"Z\r\n0\r\n\r\n" + SMUGGLED, complete=False), end="pending"),
    ),
    # ---------------------------------------------------------------- chunk lines
    # RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF, and §2.2: "A
    # recipient of such a bare CR MUST consider that element to be invalid or replace each
    # bare CR with SP before processing the element".
    _case(
        "chunk-bare-cr-before-ext",  # HTTP Garden server bug 31 (Node.js: "\rX" ended the
        CHUNK,  # line), transducer bug 3 (Akamai, ATS, Google Cloud LB forwarded it)
        _CHUNKED + b"5\r\r;ABCD\r\n34\r\nE\r\n0\r\n\r\n" + SMUGGLED,
        rejected(400, Seen("POST", "/a", complete=False)),
    ),
    _case(
        # HTTP Garden transducer bug 36 (Akamai forwarded CR in the extension). h11 keeps
        # everything up to the CRLF as the extension and ignores it (RFC 9112 §7.1.1: "A
        # recipient MUST ignore unrecognized chunk extensions"): the effect of the "replace
        # each bare CR with SP" choice. The chunk is "hello"; SMUGGLED stays in the extension.
        "chunk-ext-bare-cr",
        CHUNK,
        _CHUNKED + b"5;a=b\r\rGET /SMUGGLED HTTP/1.1\r\nhello\r\n0\r\n\r\n",
        served(Seen("POST", "/a", b"hello")),
    ),
    _case(
        "chunk-ext-bare-lf",  # a bare LF inside the size line: a LF-splitting reader differs
        CHUNK,
        _CHUNKED + b"5;a\nGET /SMUGGLED HTTP/1.1\r\nhello\r\n0\r\n\r\n",
        rejected(400, Seen("POST", "/a", complete=False)),
    ),
    _case(
        # Tolerated: an extension without a name is ignored like any other (RFC 9112 §7.1.1).
        "chunk-ext-empty",
        CHUNK,
        _CHUNKED + b"5;\r\nhello\r\n0\r\n\r\n",
        served(Seen("POST", "/a", b"hello")),
    ),
    _case(
        "chunk-ext-bws",  # whitespace before ";" (RFC 9112 §7.1.1 BWS): h11 rejects it, safely
        CHUNK,
        _CHUNKED + b"5 ;a\r\nhello\r\n0\r\n\r\n" + SMUGGLED,
        rejected(400, Seen("POST", "/a", complete=False)),
    ),
    _case(
        # Tolerated: whitespace after the size (h11 allows it: some clients send it).
        "chunk-size-trailing-whitespace",
        CHUNK,
        _CHUNKED + b"23 \r\n" + SMUGGLED + b"\r\n0\r\n\r\n",
        served(_POST_SMUGGLED_BODY),
    ),
    _case(
        # HTTP Garden transducer bug 13 (HAProxy took a bare LF after chunk data): a reader
        # that does takes "0\r\n\r\n" as the last chunk, then SMUGGLED as a request.
        "chunk-data-bare-lf",
        CHUNK,
        _CHUNKED + b"a\r\n0123456789\n0\r\n\r\n" + SMUGGLED,
        rejected(400, Seen("POST", "/a", b"0123456789", complete=False)),
    ),
    _case(
        # Chunk data not followed by CRLF: h11 before 0.16 threw away any two bytes there
        # (CVE-2025-43859), so "XX" passed, the last chunk followed, and SMUGGLED was a request.
        "chunk-data-no-crlf",
        CHUNK,
        _CHUNKED + b"5\r\nhelloXX0\r\n\r\n" + SMUGGLED,
        rejected(400, Seen("POST", "/a", b"hello", complete=False)),
    ),
    _case(
        # HTTP Garden transducer bug 17 (OpenLiteSpeed): an extra CRLF after a chunk. The
        # chunk (31 bytes) holds "0\r\n\r\n" and a request head; the CRLF is an empty size.
        "chunk-extra-crlf",
        CHUNK,
        _CHUNKED + b"1f\r\n0\r\n\r\nGET /SMUGGLED HTTP/1.1\r\n\r\n\r\n\r\n0\r\n\r\n",
        rejected(
            400, Seen("POST", "/a", b"0\r\n\r\nGET /SMUGGLED HTTP/1.1\r\n\r\n", complete=False)
        ),
    ),
    # ---------------------------------------------------------------- trailers
    # RFC 9112 §7.1.2: trailer-section = *( field-line CRLF ); RFC 9110 §6.5.1: a trailer
    # field is never merged into the header section unless its definition allows it, so a
    # Content-Length trailer cannot change the framing.
    _case(
        "trailer-holds-request-line",  # HTTP Garden server bug 39 (puma ended on "\r\nXX")
        TRAILER,
        _CHUNKED + b"0\r\nX:POST /SMUGGLED HTTP/1.1\r\n\r\n",
        served(_POST_A),
    ),
    _case(
        "trailer-not-a-field",  # a request where a trailer section should be
        TRAILER,
        _CHUNKED + b"0\r\n" + SMUGGLED,
        rejected(400, Seen("POST", "/a", complete=False)),
    ),
    _case(
        "trailer-content-length",  # a forbidden trailer field: ignored; /next is a request
        TRAILER,
        _CHUNKED + b"0\r\nContent-Length: 31\r\n\r\n" + _NEXT,
        served(_POST_A, Seen("GET", "/next")),
    ),
    _case(
        "trailer-bare-lf",  # RFC 9112 §2.2: a recipient MAY take a bare LF as a line end
        TRAILER,
        _CHUNKED + b"0\r\nX: a\n\n" + _NEXT,
        served(_POST_A, Seen("GET", "/next")),
    ),
    _case(
        # RFC 9112 §5.2 in a trailer section: the folded line is part of X's value, so the
        # request line in it is never a request.
        "trailer-obs-fold",
        TRAILER,
        _CHUNKED + b"0\r\nX: a\r\n GET /SMUGGLED HTTP/1.1\r\n\r\n",
        served(_POST_A),
    ),
    _case(
        "trailer-bare-cr",  # HTTP Garden server bug 13 (CPython, mongoose), in a trailer
        TRAILER,
        _CHUNKED + b"0\r\nX: a\rGET /SMUGGLED HTTP/1.1\r\n\r\n",
        rejected(400, Seen("POST", "/a", complete=False)),
    ),
    _case(
        # HTTP Garden bonus bug 3 (OpenBSD httpd): a stray byte after a complete message is
        # the start of the next request, which is invalid: the first is answered, then 400.
        "byte-after-message",
        TRAILER,
        _CHUNKED + b"0\r\n\r\n\x00",
        rejected(400, _POST_A),
    ),
    # ---------------------------------------------------------------- field lines
    # RFC 9110 §5.5: field values never contain CR, LF or NUL; RFC 9112 §5: field-line =
    # field-name ":" OWS field-value OWS, field-name a token.
    _case(
        "field-nul",  # HTTP Garden server bug 2 (aiohttp, gunicorn, tornado)
        FIELD,
        b"POST /a HTTP/1.1\r\nHost: a\r\nX: v\x00\ralue\r\nContent-Length: 35\r\n\r\n" + SMUGGLED,
        rejected(400),
    ),
    _case(
        "field-bare-cr",  # HTTP Garden server bug 13 (CPython, mongoose: CR ended the line),
        FIELD,  # transducer bug 10 (Google Cloud LB forwarded it)
        b"GET /a HTTP/1.1\r\nHost: a\r\nX: a\rContent-Length: 35\r\n\r\n" + SMUGGLED,
        rejected(400),
    ),
    _case(
        "field-cr-ends-head",  # HTTP Garden server bug 30 (Node.js: "\r\n\rX" ended the head)
        FIELD,
        b"GET /a HTTP/1.1\r\nHost: a\r\n\rZGET /SMUGGLED: HTTP/1.1\r\nHost: a\r\n\r\n",
        rejected(400),
    ),
    _case(
        "field-empty-name",  # HTTP Garden server bugs 18 and 27 (Go, gunicorn, Node.js, ...)
        FIELD,
        b"POST /a HTTP/1.1\r\nHost: a\r\n: x\r\nContent-Length: 35\r\n\r\n" + SMUGGLED,
        rejected(400),
    ),
    _case(
        "field-no-colon",  # HTTP Garden server bug 28 (mongoose), transducer bug 14 (OLS)
        FIELD,
        b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length 35\r\n\r\n" + SMUGGLED,
        rejected(400),
    ),
    _case(
        # HTTP Garden transducer bug 16 (OpenLiteSpeed forwarded bare LF). RFC 9112 §2.2: a
        # recipient MAY recognize a single LF as a line terminator; this server does.
        "field-bare-lf-lines",
        FIELD,
        b"GET /a HTTP/1.1\nHost: a\n\n",
        served(Seen("GET", "/a")),
    ),
    _case(
        # HTTP Garden server bug 19 (gunicorn). With LF as a line end, "Useless:\n\n" ends the
        # head, so what follows is a request of its own: the same reading as the row above.
        "field-bare-lf-ends-head",
        FIELD,
        b"GET /a HTTP/1.1\r\nHost: a\r\nUseless:\n\nGET /after-lf HTTP/1.1\r\nHost: a\r\n\r\n",
        served(Seen("GET", "/a"), Seen("GET", "/after-lf")),
    ),
    _case(
        # RFC 9112 §5.2: " Content-Length: 35" is folded into X-Pad, so /a has no body and
        # /after-fold is a request. A proxy that drops the fold instead of replacing it with SP
        # would disagree; accepting obs-fold (rather than 400) is the RFC's other choice.
        "field-obs-fold-hides-cl",
        FIELD,
        b"GET /a HTTP/1.1\r\nHost: a\r\nX-Pad: x\r\n Content-Length: 35\r\n\r\n"
        b"GET /after-fold HTTP/1.1\r\nHost: a\r\n\r\n",
        served(Seen("GET", "/a"), Seen("GET", "/after-fold")),
    ),
    # ---------------------------------------------------------------- request line
    # RFC 9112 §3: request-line = method SP request-target SP HTTP-version; §2.3 version.
    _case(
        "line-lf-separator",  # HTTP Garden server bug 9 (aiohttp: LF as the second SP)
        LINE,
        b"GET /\nHTTP/1.1\r\nHost: a\r\n\r\n" + SMUGGLED,
        rejected(400),
    ),
    _case(
        "line-bare-cr-endings",  # bare CR as the line terminator throughout
        LINE,
        b"GET /a HTTP/1.1\rHost: a\r\rGET /SMUGGLED HTTP/1.1\rHost: a\r\r",
        rejected(400),
    ),
    _case(
        "line-http09",  # an HTTP/0.9-style request line: no version
        LINE,
        b"GET /SMUGGLED\r\n",
        rejected(400),
    ),
    _case(
        "line-version-digits",  # HTTP Garden server bug 5 (aiohttp read 1.32 as 1.3)
        LINE,
        b"GET /a HTTP/1.32\r\nHost: a\r\n\r\n" + SMUGGLED,
        rejected(400),
    ),
    _case(
        "line-method-junk",  # HTTP Garden server bug 6 (aiohttp: longest valid prefix)
        LINE,
        b'G=":<>(e),[T];?" /a HTTP/1.1\r\nHost: a\r\n\r\n' + SMUGGLED,
        rejected(400),
    ),
    _case(
        "line-http2",  # HTTP/2.0 in an HTTP/1.1 request line: RFC 9110 §15.6.6
        LINE,
        b"GET /a HTTP/2.0\r\nHost: a\r\n\r\n" + SMUGGLED,
        rejected(505),
    ),
    _case(
        "line-h2-preface",  # the HTTP/2 connection preface (RFC 9113 §3.4), HTTP/2 off
        LINE,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SMUGGLED,
        rejected(505),
    ),
    _case(
        "line-http12",  # RFC 9112 §2.3: a higher minor version is served as HTTP/1.1
        LINE,
        b"GET /a HTTP/1.2\r\nHost: a\r\n\r\n",
        served(Seen("GET", "/a")),
    ),
    # ---------------------------------------------------------------- connection
    _case(
        # HTTP Garden server bug 45 (mongoose, uvicorn). RFC 9112 §9.6: "A server that
        # receives a "close" connection option MUST initiate closure of the connection [...]
        # after it sends the final response"; what follows is read and dropped, never served.
        "after-close",
        CONN,
        b"GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" + SMUGGLED,
        served(Seen("GET", "/a"), end="close"),
    ),
    _case(
        # HTTP Garden server bug 45's own payload (the bug: no answer to the first request).
        # The first is answered; what follows is dropped, without a 400.
        "after-close-invalid",
        CONN,
        b"GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nInvalid\r\n\r\n",
        served(Seen("GET", "/a"), end="close"),
    ),
    _case(
        "after-close-with-body",
        CONN,
        b"POST /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello"
        + SMUGGLED,
        served(Seen("POST", "/a", b"hello"), end="close"),
    ),
    _case(
        "after-http10",  # RFC 9112 §9.3: HTTP/1.0 without keep-alive is not persistent
        CONN,
        b"GET /a HTTP/1.0\r\n\r\n" + SMUGGLED,
        served(Seen("GET", "/a"), end="close"),
    ),
    _case(
        "pipelined",  # the baseline: requests back to back are all answered, in order
        CONN,
        b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nPOST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
        b"\r\nhello",
        served(Seen("GET", "/a"), Seen("POST", "/b", b"hello")),
    ),
    _case(
        # RFC 9110 §7.8: a server MAY ignore Upgrade; with HTTP/2 off h2c is not offered, so
        # this is a plain request and the next one is a request too (a proxy must tunnel only
        # after a 101).
        "upgrade-h2c-ignored",
        CONN,
        b"GET /a HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\nGET /after-upgrade HTTP/1.1\r\nHost: a\r\n\r\n",
        served(Seen("GET", "/a"), Seen("GET", "/after-upgrade")),
    ),
    _case(
        # A front end that tunnels after any Upgrade request would pass SMUGGLED through;
        # the server refuses the handshake (RFC 6455 §4.4) and closes.
        "upgrade-websocket-bad-version",
        CONN,
        _WS_HEAD + b"Sec-WebSocket-Version: 12\r\n\r\n" + SMUGGLED,
        rejected(426),
    ),
    _case(
        # A valid handshake the app denies (it closes before accepting): ASGI answers 403 and
        # the bytes after the head are never read as a request.
        "upgrade-websocket-denied",
        CONN,
        _WS_HEAD + b"Sec-WebSocket-Version: 13\r\n\r\n" + SMUGGLED,
        rejected(403, Seen("WEBSOCKET", "/ws", complete=False)),
    ),
    _case(
        # A front end that takes the body of an Upgrade request for tunnelled bytes, or the
        # reverse: the server refuses a handshake with a body outright (RFC 6455 §4.1: the
        # handshake is a GET; a body would be read one way by HTTP and another by WebSocket).
        "upgrade-websocket-with-body",
        CONN,
        _WS_HEAD + b"Sec-WebSocket-Version: 13\r\nContent-Length: 35\r\n\r\n" + SMUGGLED,
        rejected(400),
    ),
    _case(
        # RFC 9110 §10.1.1: a client may send the body without waiting for 100 (Continue); the
        # body is framed by Content-Length as always, whether or not a 100 goes out first.
        "expect-100-body-sent",
        CONN,
        b"POST /a HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 35\r\n\r\n"
        + SMUGGLED,
        served(_POST_SMUGGLED_BODY),
    ),
    _case(
        # RFC 9112 §2.2: "a server that is expecting to receive and parse a request-line SHOULD
        # ignore at least one empty line (CRLF) received prior to the request-line".
        "leading-empty-line",
        CONN,
        b"\r\nGET /a HTTP/1.1\r\nHost: a\r\n\r\n",
        served(Seen("GET", "/a")),
    ),
    _case(
        "leading-empty-line-lf",  # the same, with the empty line a bare LF (RFC 9112 §2.2 MAY)
        CONN,
        b"\nGET /a HTTP/1.1\r\nHost: a\r\n\r\n",
        served(Seen("GET", "/a")),
    ),
    _case(
        "leading-bare-cr",  # a bare CR is not an empty line: the request line is invalid
        CONN,
        b"\rGET /a HTTP/1.1\r\nHost: a\r\n\r\n" + SMUGGLED,
        rejected(400),
    ),
    _case(
        "empty-line-between-pipelined",  # the same rule, between two pipelined requests
        CONN,
        b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
        served(Seen("GET", "/a"), Seen("GET", "/b")),
    ),
    _case(
        # RFC 9112 §3.2.2: "When an origin server receives a request with an absolute-form of
        # request-target, the origin server MUST ignore the received Host header field (if
        # any) and instead use the host information of the request-target."
        "absolute-form-host-mismatch",
        CONN,
        b"GET http://good.example/a HTTP/1.1\r\nHost: evil.example\r\n\r\n",
        served(Seen("GET", "/a", host=b"good.example")),
    ),
)
