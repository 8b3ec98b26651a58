"""The ASGI extensions an HTTP response may use, and the rules of each that are not about order.

Theory of operation
-------------------
``scope["extensions"]`` lists exactly what the connection supports for that request
(``offered``): an app may only send an extension's messages when its name is listed (ASGI spec,
Extensions), and ``cycle.ResponseSteps`` refuses any other. Where each message may come in a
response is the ordering table (``cycle.RESPONSE_TABLE``, from ``spec/asgi.json``); what is
here is the rest:

* ``http.response.trailers``: offered to HTTP/1.1 and HTTP/2 requests (HTTP/1.0 has no
  chunked coding, so no trailer section). Sent only when the request said ``TE: trailers``
  and the response can carry them (chunked on HTTP/1.1; always on HTTP/2); otherwise
  dropped, and the response still ends correctly. Fields that RFC 9110 §6.5.1 keeps out of
  trailers are refused (``FORBIDDEN_TRAILERS``).
* ``http.response.early_hint``: offered to HTTP/1.1 and HTTP/2 requests unless
  ``--no-early-hints``; never to HTTP/1.0 (RFC 9110 §15.2: "A server MUST NOT send a 1xx
  response to an HTTP/1.0 client"). A ``103 Early Hints`` goes out only while the final head
  is held.
* ``http.response.pathsend`` and ``http.response.zerocopysend``: always offered. The core
  never opens, stats or reads a file: it asks the driver (``events.OpenFile``,
  ``events.SendFile``, ``events.FeedFile``) and treats the bytes as a body message of their
  length.
* ``http.response.push``: offered to HTTP/2 requests whose client allows server push
  (SETTINGS_ENABLE_PUSH); the pushed request is a new app call (``http2.py``).
* ``http.response.debug``: never offered; sending it says why (``DEBUG_REFUSED``).

Over HTTP/2 trailers go in a trailing HEADERS frame and early hints in a ``103`` HEADERS frame
(RFC 9113 §8.1); the rules above are the same.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from .errors import ASGIProtocolError
from .responses import FIELD_NAME, FIELD_VALUE

TRAILERS = "http.response.trailers"
EARLY_HINT = "http.response.early_hint"
PATHSEND = "http.response.pathsend"
ZEROCOPYSEND = "http.response.zerocopysend"
DEBUG = "http.response.debug"
PUSH = "http.response.push"

# What each HTTP version offers, as the scope's dict and as a set the core checks against.
_OFFERED_10 = (PATHSEND, ZEROCOPYSEND)
_OFFERED_11 = (PATHSEND, ZEROCOPYSEND, TRAILERS)


@functools.cache
def offered(
    http_version: str, *, early_hints: bool, push: bool = False
) -> tuple[tuple[str, ...], frozenset[str]]:
    """The response extensions a request of ``http_version`` may use: in the scope's order, and
    as a set to check messages against (made once for every request alike). ``push``: an
    HTTP/2 client that allows server push (SETTINGS_ENABLE_PUSH)."""
    names: tuple[str, ...]
    if http_version == "1.0":
        names = _OFFERED_10
    else:
        names = (*_OFFERED_11, EARLY_HINT) if early_hints else _OFFERED_11
        if push and http_version == "2":
            names = (*names, PUSH)
    return names, frozenset(names)


DEBUG_REFUSED = (
    f"{DEBUG}: this server does not implement the debug extension: it is for test clients, "
    'and the spec says servers should not implement it (ASGI extensions, Debug: "This '
    "extension is not meant to be used in production, only for testing purposes, and ASGI "
    'servers should not implement it.")'
)

# RFC 9110 §6.5.1: "Many fields cannot be processed outside the header section because their
# evaluation is necessary prior to receiving the content, such as those that describe message
# framing, routing, authentication, request modifiers, response controls, or content format. A
# sender MUST NOT generate a trailer field unless the sender knows the corresponding header
# field name's definition permits the field to be sent in trailers."
# The fields of those kinds that RFC 9110 and RFC 9112 define (and cookies, RFC 6265), by kind,
# and the connection-specific ones, which no trailer section can carry either.
FORBIDDEN_TRAILERS: Mapping[bytes, str] = {
    # message framing (RFC 9112 §6)
    b"content-length": "message framing",
    b"transfer-encoding": "message framing",
    b"trailer": "message framing",
    # connection management (RFC 9110 §7.6.1): hop-by-hop, about the connection, never the
    # message; RFC 9113 §8.2.2 forbids them in any HTTP/2 field section
    b"connection": "connection management",
    b"keep-alive": "connection management",
    b"proxy-connection": "connection management",
    b"upgrade": "connection management",
    # routing (RFC 9110 §7.2)
    b"host": "routing",
    # authentication (RFC 9110 §11; RFC 6265)
    b"authorization": "authentication",
    b"proxy-authorization": "authentication",
    b"www-authenticate": "authentication",
    b"proxy-authenticate": "authentication",
    b"authentication-info": "authentication",
    b"proxy-authentication-info": "authentication",
    b"cookie": "authentication",
    b"set-cookie": "authentication",
    # request modifiers: controls (RFC 9110 §7.6.2, §10.1) and conditionals (§13.1)
    b"cache-control": "request modifiers",
    b"expect": "request modifiers",
    b"max-forwards": "request modifiers",
    b"pragma": "request modifiers",
    b"range": "request modifiers",
    b"te": "request modifiers",
    b"if-match": "request modifiers",
    b"if-none-match": "request modifiers",
    b"if-modified-since": "request modifiers",
    b"if-unmodified-since": "request modifiers",
    b"if-range": "request modifiers",
    # response controls (RFC 9110 §10.2)
    b"age": "response controls",
    b"expires": "response controls",
    b"date": "response controls",
    b"location": "response controls",
    b"retry-after": "response controls",
    b"vary": "response controls",
    # content format (RFC 9110 §8)
    b"content-type": "content format",
    b"content-encoding": "content format",
    b"content-language": "content format",
    b"content-location": "content format",
    b"content-range": "content format",
}


def check_trailers(headers: list[tuple[bytes, bytes]], message_type: str) -> None:
    """Refuse a trailer field that is malformed (RFC 9110 §5) or kept out of trailers (§6.5.1).

    The ASGI text (extensions, "HTTP Trailers") says the server "is not responsible for
    validating the trailer headers provided"; it does not forbid it, and a field that cannot
    be written must not reach the wire."""
    for name, value in headers:
        if not FIELD_NAME.fullmatch(name) or not FIELD_VALUE.fullmatch(value):
            raise ASGIProtocolError(
                f"{message_type}: malformed trailer field {name!r:.60} (RFC 9110 §5: field "
                "names are tokens, and values contain no CR, LF or NUL and no leading or "
                "trailing whitespace)"
            )
        # RFC 9110 §6.5.1, quoted above FORBIDDEN_TRAILERS.
        kind = FORBIDDEN_TRAILERS.get(name.lower())
        if kind is not None:
            raise ASGIProtocolError(
                f"{message_type}: {name.decode('latin-1')!r} cannot be a trailer field: it is "
                f"one of those about {kind}, which a sender must not generate in trailers "
                "(RFC 9110 §6.5.1)"
            )


def accepts_trailers(request_headers: Any) -> bool:
    """Whether the request's TE field lists ``trailers`` (RFC 9110 §10.1.4: "a TE field with a
    "trailers" member sent in a request indicates that the client will not discard trailer
    fields")."""
    for name, value in request_headers:
        if name == b"te" and any(
            part.split(b";")[0].strip().lower() == b"trailers" for part in value.split(b",")
        ):
            return True
    return False


def check_links(links: list[bytes], message_type: str) -> None:
    """Refuse a Link value a field cannot carry (RFC 9110 §5.5)."""
    for link in links:
        if not FIELD_VALUE.fullmatch(link):
            raise ASGIProtocolError(
                f"{message_type}: malformed Link value {link!r:.60} (RFC 9110 §5.5: a field "
                "value contains no CR, LF or NUL and no leading or trailing whitespace)"
            )
