"""Checks of the websocket group: RFC 6455 on the wire and the ASGI WebSocket spec in the app.

Theory of operation
-------------------
Every check opens its own connection to a route of ``probes/websocket.py`` with a fresh probe
id, speaks raw frames through ``client.WebSocketConnection`` and, where the app's side
matters, reads what the probe logged (the scope's subprotocols and ``spec_version``, every
message ``receive`` returned with its Python types, what ``send`` did). What arrives from the
server is sorted into one ``Incoming``: a text or binary message, a close frame (with its code
and reason), the TCP connection closed or reset, or silence for ``hang_s`` where an answer is
due. The RFC or ASGI sentence a check enforces is quoted in its docstring.

Where the texts allow several behaviours, each passes: a server may fail a connection with or
without a close frame (RFC 6455 §7.1.7), may send a wrong-version error as 426 or 400 (§4.2.2
says "an appropriate HTTP error code (such as 426 Upgrade Required)"), may have no message
size limit, and may make ``send`` after a disconnect a no-op (ASGI 2.4 is "not guaranteed").
Features newer than the ``spec_version`` a server advertises are not used by the probes; the
checks that grade them are then not applicable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time

from ..client import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Frame,
    HTTPConnection,
    Incoming,
    NoResponse,
    Response,
    WebSocketConnection,
    close_message,
    encode_frame,
    handshake_bytes,
    websocket_accept,
    websocket_key,
)
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
from .common import (
    PROBE_ID,
    Event,
    Events,
    connection_ended,
    fill_probe,
    find_event,
    has_event,
    open_http,
    probe_target,
    wait_event,
)

ECHO = "/ws/echo"
OFFERED = ["chat.v2", "chat.v1"]
BIG_MESSAGE_BYTES = 20 * 1024 * 1024  # the size check's message: above the usual 16 MiB limits
KNOWN_SPEC_VERSIONS = ("2.0", "2.1", "2.2", "2.3", "2.4", "2.5")


# -- the handshake


@dataclasses.dataclass
class Opened:
    """A handshake's outcome: the response (or why none came) and, after a 101, the socket."""

    http: HTTPConnection
    key: str
    response: Response | None
    failure: NoResponse | None
    elapsed_s: float

    @property
    def ws(self) -> WebSocketConnection | None:
        if self.response is not None and self.response.status == 101:
            return WebSocketConnection(self.http)
        return None

    def describe(self) -> str:
        if self.response is None:
            assert self.failure is not None
            return self.failure.describe()
        return describe_response(self.response)

    def goodbye(self) -> None:
        """If the handshake opened a WebSocket, close it politely (see ``goodbye``)."""
        ws = self.ws
        if ws is not None:
            goodbye(ws)


def describe_response(response: Response) -> str:
    text = f"HTTP {response.describe()}"
    if response.status != 101 and response.body:
        text += f" {response.body[:80]!r}"
    return text


def open_ws(
    ctx: Context,
    path: str,
    probe_id: str,
    *,
    subprotocols: list[str] | None = None,
    timeout_s: float | None = None,
    query: dict[str, str] | None = None,
) -> Opened:
    """Send a valid handshake to ``path`` (``query`` for the probe) and read the response."""
    http = open_http(ctx)
    key = websocket_key()
    started = time.monotonic()
    http.send(
        handshake_bytes(
            probe_target(path, probe_id, **(query or {})), key, subprotocols=subprotocols
        )
    )
    return read_handshake(http, key, started, timeout_s or ctx.options.io_timeout_s)


def send_raw_handshake(ctx: Context, raw: bytes, timeout_s: float) -> Opened:
    http = open_http(ctx)
    started = time.monotonic()
    http.send(raw)
    return read_handshake(http, "", started, timeout_s)


def read_handshake(http: HTTPConnection, key: str, started: float, timeout_s: float) -> Opened:
    reply = http.read_reply(upgrade=True, timeout_s=timeout_s)
    elapsed_s = time.monotonic() - started
    if isinstance(reply, NoResponse):
        return Opened(http, key, None, reply, elapsed_s)
    return Opened(http, key, reply, None, elapsed_s)


def goodbye(ws: WebSocketConnection) -> None:
    """Close politely (a close frame, then the socket), whatever state the server left."""
    with contextlib.suppress(OSError):
        ws.send_close(1000)
    ws.close()


# -- what the server sent


def next_frame(ws: WebSocketConnection, deadline: float) -> Frame | Incoming:
    """The next raw frame, or how the stream ended; pings are not answered here."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return Incoming("silence")
    try:
        return ws.read_frame(remaining, strict=True)
    except NoResponse as exc:
        return Incoming.ended(exc)


def close_frame(frame: Frame) -> Incoming:
    return Incoming.of(close_message(frame.payload))


def await_close(ctx: Context, ws: WebSocketConnection) -> tuple[Incoming, str]:
    """What the server sends next and, if it is a close frame, the TCP state after answering
    it ("closed", "reset" or "open" after ``hang_s``; "" when no close frame came)."""
    incoming = ws.receive(ctx.options.hang_s)
    state = ws.answer_close(incoming, ctx.options.hang_s) if incoming.kind == "close" else ""
    goodbye(ws)
    return incoming, state


def close_outcome(
    ctx: Context, path: str, query: dict[str, str] | None = None, frame: bytes = b""
) -> tuple[str, Incoming | None, str, str]:
    """Open ``path`` (``query`` for the probe), send ``frame`` if any, and ``await_close``.

    Returns the probe id, what the server sent next (None if the handshake failed), the TCP
    state after a close frame was answered ("" without a close frame), and a failure if the
    handshake failed.
    """
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, path, probe_id, query=query)
    with opened.http:
        ws = opened.ws
        if ws is None:
            return probe_id, None, "", f"the handshake got {opened.describe()}"
        if frame:
            ws.http.send(frame)
        incoming, state = await_close(ctx, ws)
    return probe_id, incoming, state, ""


# -- what the probe saw


def received(events: Events, kind: str) -> Events:
    """The messages of type ``kind`` that the probe's ``receive()`` returned."""
    return [
        record
        for record in events
        if record.get("event") == "receive"
        and record.get("outcome") == "message"
        and record.get("type") == kind
    ]


def wait_received(ctx: Context, probe_id: str, kind: str, count: int = 1) -> Events:
    events = ctx.wait_events(
        probe_id, lambda events: len(received(events, kind)) >= count, ctx.options.hang_s
    )
    return events


def advertised(events: Events) -> tuple[str, tuple[int, int]]:
    """The ``spec_version`` in the scope as written, and as numbers ("2.0" if missing)."""
    scope = find_event(events, "scope")
    asgi = scope.get("asgi") if scope else None
    if not isinstance(asgi, dict) or "spec_version" not in asgi:
        return "missing", (2, 0)
    value = str(asgi["spec_version"])
    try:
        major, minor = value.split(".")[:2]
        return value, (int(major), int(minor))
    except ValueError:
        return value, (2, 0)


def describe_receive(record: Event) -> str:
    text_type, bytes_type = record.get("text_type"), record.get("bytes_type")
    parts = [f"text={text_type}", f"bytes={bytes_type}"]
    if text_type == "str":
        parts[0] += f" {record.get('text')!r}"
    if bytes_type in ("bytes", "bytearray"):
        parts[1] += f" of {record.get('bytes_length')} bytes"
    return "websocket.receive with " + ", ".join(parts)


def app_saw(ctx: Context, probe_id: str) -> str:
    """One line on what the app got, for an observation."""
    events = ctx.events(probe_id)
    kinds = [
        str(record.get("type") or record.get("outcome"))
        for record in events
        if record.get("event") == "receive"
    ]
    other = [
        str(record["event"])
        for record in events
        if record.get("event") not in ("receive", "scope", "send")
    ]
    return f"the app got {kinds or 'nothing'}" + (f", logged {other}" if other else "")


# -- the opening handshake


@check(
    "websocket.handshake-101",
    title="an accepted handshake gets 101 with Upgrade, Connection and the right Accept",
    clause="RFC 6455 §4.2.2",
)
def handshake_101(ctx: Context) -> Result:
    """§4.2.2: the server sends "A Status-Line with a 101 response code", "An |Upgrade| header
    field with value "websocket"", "A |Connection| header field with value "Upgrade"" and "A
    |Sec-WebSocket-Accept| header field" (base64 of SHA-1 of the key and the GUID)."""
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, ECHO, probe_id)
    with opened.http:
        response = opened.response
        if response is None or response.status != 101:
            return failed(f"the handshake got {opened.describe()}")
        problems = []
        accept = response.header(b"sec-websocket-accept")
        if accept != websocket_accept(opened.key):
            problems.append(
                f"Sec-WebSocket-Accept {accept!r}, not {websocket_accept(opened.key)!r}"
            )
        upgrade = response.header(b"upgrade")
        if upgrade is None or upgrade.strip().lower() != b"websocket":
            problems.append(f"Upgrade {upgrade!r}")
        if b"upgrade" not in response.connection_tokens():
            problems.append(f"Connection {response.header_values(b'connection')!r}")
        opened.goodbye()
        if problems:
            return failed("101, but " + "; ".join(problems))
        return passed("101 with Upgrade: websocket, Connection: Upgrade and the right Accept")


# Handshakes the server must not accept: rows of BAD_HANDSHAKES, graded by
# ``refuse_handshake``. A row's request names its probe as PROBE_ID and, where it should carry a
# good key, says KEY: each send fills in a fresh probe id and a fresh key.

KEY = "{key}"
TARGET = probe_target(ECHO, PROBE_ID)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BadHandshake(Row):
    """A handshake that must get no 101. By default it is a broken WebSocket handshake, which
    §4.2.1 answers with "an HTTP response with an appropriate error code": a 4xx passes. With
    ``any_answer`` it is no WebSocket handshake at all: anything but a 101 (an HTTP answer or a
    close) passes."""

    what: str  # the request, in the observed text
    request: bytes
    any_answer: bool = False
    lists_version: bool = False  # the 4xx must say Sec-WebSocket-Version: 13 (§4.2.2, §4.4)


BAD_HANDSHAKES = (
    # §4.2.1: the request includes "A |Sec-WebSocket-Key| header field"; "If the server ...
    # finds that the client did not send a handshake that matches the description below ...,
    # the server MUST stop processing the client's handshake and return an HTTP response with
    # an appropriate error code (such as 400 Bad Request)."
    BadHandshake(
        id="websocket.handshake-missing-key",
        title="a handshake without Sec-WebSocket-Key is refused with a 4xx",
        clause="RFC 6455 §4.2.1",
        what="no Sec-WebSocket-Key",
        request=handshake_bytes(TARGET, None),
    ),
    # §4.2.1: "A |Sec-WebSocket-Key| header field with a base64-encoded ... value that, when
    # decoded, is 16 bytes in length"; a handshake that does not match gets an error code.
    BadHandshake(
        id="websocket.handshake-bad-key",
        title="a Sec-WebSocket-Key that is not 16 bytes in base64 is refused with a 4xx",
        clause="RFC 6455 §4.2.1",
        what="a key of 19 bytes ('this is not sixteen')",
        request=handshake_bytes(TARGET, "dGhpcyBpcyBub3Qgc2l4dGVlbg=="),
    ),
    # §4.2.2 /version/: "If this version does not match a version understood by the server,
    # the server MUST abort the WebSocket handshake described in this section and instead send
    # an appropriate HTTP error code (such as 426 Upgrade Required) and a
    # |Sec-WebSocket-Version| header field indicating the version(s) the server is capable of
    # understanding." 426 is an example: any 4xx with the header passes (§4.4 asks for the
    # header as well).
    BadHandshake(
        id="websocket.handshake-bad-version",
        title="Sec-WebSocket-Version 8 gets an error code and Sec-WebSocket-Version: 13",
        clause="RFC 6455 §4.2.2",
        what="version 8",
        request=handshake_bytes(TARGET, KEY, version="8"),
        lists_version=True,
    ),
    # §4.2.1: the handshake has "An |Upgrade| header field containing the value "websocket"";
    # without it the request is no WebSocket handshake.
    BadHandshake(
        id="websocket.handshake-missing-upgrade",
        title="a request without Upgrade: websocket is not upgraded",
        clause="RFC 6455 §4.2.1",
        what="no Upgrade header",
        request=handshake_bytes(TARGET, KEY, upgrade=None),
        any_answer=True,
    ),
    # §4.2.1: the handshake has "A |Connection| header field that includes the token
    # "Upgrade""; RFC 9110 §7.8 ignores an Upgrade not listed in Connection.
    BadHandshake(
        id="websocket.handshake-missing-connection",
        title="a request without Connection: Upgrade is not upgraded",
        clause="RFC 6455 §4.2.1",
        what="Connection: keep-alive",
        request=handshake_bytes(TARGET, KEY, connection="keep-alive"),
        any_answer=True,
    ),
    # §4.2.1: the handshake is "An HTTP/1.1 or higher GET request".
    BadHandshake(
        id="websocket.handshake-post",
        title="a POST with the WebSocket headers is not upgraded",
        clause="RFC 6455 §4.2.1",
        what="POST",
        request=handshake_bytes(TARGET, KEY, method="POST", headers=[("Content-Length", "0")]),
        any_answer=True,
    ),
)


def refuse_handshake(ctx: Context, row: BadHandshake) -> Result:
    probe_id, raw = fill_probe(ctx, row.request, "ws")
    raw = raw.replace(KEY.encode("ascii"), websocket_key().encode("ascii"))
    opened = send_raw_handshake(ctx, raw, ctx.options.hang_s)
    with opened.http:
        response = opened.response
        if response is None:
            assert opened.failure is not None
            if row.any_answer:
                return verdict(opened.failure.ended, f"{row.what}: {opened.describe()}")
            return failed(f"{row.what}: {opened.describe()}, not an HTTP error response")
        observed = f"{row.what}: {describe_response(response)}"
        ok = response.status != 101 if row.any_answer else 400 <= response.status < 500
        if row.lists_version:
            versions = {
                token.strip()
                for value in response.header_values(b"sec-websocket-version")
                for token in value.split(b",")
            }
            ok = ok and b"13" in versions
            observed += (
                f", Sec-WebSocket-Version "
                f"{response.header_values(b'sec-websocket-version') or 'absent'}"
            )
        if find_event(ctx.events(probe_id), "http-scope"):
            observed += (
                " (served by the app as plain HTTP)"
                if row.any_answer
                else " (the app was called with it as a plain HTTP request)"
            )
        return verdict(ok, observed)


check_rows(BAD_HANDSHAKES, refuse_handshake)


@check(
    "websocket.handshake-waits-for-accept",
    title="the 101 is not sent before the app sends websocket.accept",
    clause="ASGI WebSocket spec, Connect",
)
def handshake_waits_for_accept(ctx: Context) -> Result:
    """Connect: "The protocol server must send this message during the handshake phase of the
    WebSocket and not complete the handshake until it gets a reply". The probe sleeps 0.3 s,
    logs 'accepting', then sends accept; a 101 read before that event exists came too early."""
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, ECHO, probe_id, query={"delay": "0.3"})
    with opened.http:
        if opened.response is None or opened.response.status != 101:
            return failed(f"the handshake got {opened.describe()}")
        accepting = find_event(ctx.events(probe_id), "accepting")
        opened.goodbye()
        if accepting is None:
            return failed(
                f"the 101 arrived {opened.elapsed_s:.2f} s after the request, before the app "
                "sent websocket.accept"
            )
        return passed(f"the 101 arrived {opened.elapsed_s:.2f} s after the request, after accept")


# -- subprotocols and accept headers


@check(
    "websocket.subprotocols-in-scope",
    title="scope['subprotocols'] lists the client's offered subprotocols in order",
    clause="ASGI WebSocket spec, Websocket Connection Scope",
)
def subprotocols_in_scope(ctx: Context) -> Result:
    """Scope: "``subprotocols`` (*Iterable[Unicode string]*) -- Subprotocols the client
    advertised." The client offers ``Sec-WebSocket-Protocol: chat.v2, chat.v1``."""
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, ECHO, probe_id, subprotocols=OFFERED)
    with opened.http:
        opened.goodbye()
        scope = wait_event(ctx, probe_id, "scope")
        if scope is None:
            return failed(f"the app was not called; the handshake got {opened.describe()}")
        seen = scope.get("subprotocols")
        return verdict(seen == OFFERED, f"offered {OFFERED}, the scope had {seen!r}")


@check(
    "websocket.subprotocol-accepted",
    title="the subprotocol in websocket.accept is sent back in Sec-WebSocket-Protocol",
    clause="ASGI WebSocket spec, Accept",
)
def subprotocol_accepted(ctx: Context) -> Result:
    """Accept: "``subprotocol`` -- The subprotocol the server wishes to accept"; RFC 6455
    §4.2.2: the server puts the selected one in a |Sec-WebSocket-Protocol| header field."""
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, ECHO, probe_id, subprotocols=OFFERED, query={"subprotocol": "chat.v1"})
    with opened.http:
        response = opened.response
        if response is None or response.status != 101:
            return failed(f"the handshake got {opened.describe()}")
        opened.goodbye()
        values = response.header_values(b"sec-websocket-protocol")
        return verdict(
            values == [b"chat.v1"], f"accepted chat.v1; the 101 had Sec-WebSocket-Protocol {values}"
        )


@check(
    "websocket.subprotocol-none",
    title="no Sec-WebSocket-Protocol in the 101 when the app accepts without a subprotocol",
    clause="RFC 6455 §4.2.2",
)
def subprotocol_none(ctx: Context) -> Result:
    """§4.2.2 /subprotocol/: "The absence of such a field is equivalent to the null value
    (meaning that if the server does not wish to agree to one of the suggested subprotocols,
    it MUST NOT send back a |Sec-WebSocket-Protocol| header field in its response)."""
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, ECHO, probe_id, subprotocols=OFFERED)
    with opened.http:
        response = opened.response
        if response is None or response.status != 101:
            return failed(f"the handshake got {opened.describe()}")
        opened.goodbye()
        values = response.header_values(b"sec-websocket-protocol")
        return verdict(
            not values,
            f"offered {OFFERED}, accepted none; the 101 had Sec-WebSocket-Protocol "
            f"{values or 'absent'}",
        )


@check(
    "websocket.accept-headers",
    title="headers in websocket.accept appear in the 101 (spec 2.1)",
    clause="ASGI WebSocket spec, Accept",
)
def accept_headers(ctx: Context) -> Result:
    """Accept: "``headers`` ... Order must be preserved in the HTTP response. ... *Added in spec
    version 2.1*." The probe sends x-probe-accept and set-cookie only to servers that
    advertise 2.1 or later."""
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, ECHO, probe_id, query={"headers": "1"})
    with opened.http:
        response = opened.response
        if response is None or response.status != 101:
            return failed(f"the handshake got {opened.describe()}")
        opened.goodbye()
        events = ctx.events(probe_id)
        version, _ = advertised(events)
        accepting = find_event(events, "accepting")
        if accepting is None or not accepting.get("headers_sent"):
            return not_applicable(f"spec_version {version}: accept headers are 2.1")
        got = [
            (name.lower(), value)
            for name, value in response.headers
            if name.lower() in (b"x-probe-accept", b"set-cookie")
        ]
        want = [(b"x-probe-accept", b"accepted"), (b"set-cookie", b"probe=1")]
        return verdict(got == want, f"sent {want}; the 101 had {got}")


# -- refusing, and apps that fail during the handshake


@check(
    "websocket.close-before-accept-403",
    title="websocket.close before accept gives HTTP 403",
    clause="ASGI WebSocket spec, Close",
)
def close_before_accept(ctx: Context) -> Result:
    """Close: "If this is sent before the socket is accepted, the server must close the
    connection with a HTTP 403 error code (Forbidden), and not complete the WebSocket
    handshake"."""
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, "/ws/deny", probe_id, timeout_s=ctx.options.hang_s)
    with opened.http:
        if opened.response is None:
            return failed(f"the app closed before accept; {opened.describe()}")
        return verdict(
            opened.response.status == 403,
            f"the app closed before accept; {describe_response(opened.response)}",
        )


@check(
    "websocket.denial-response",
    title="websocket.http.response sends the app's HTTP response instead of a 101",
    clause="ASGI extensions, WebSocket Denial Response",
)
def denial_response(ctx: Context) -> Result:
    """Extensions: with ``websocket.http.response`` in ``scope["extensions"]`` the app may send
    ``websocket.http.response.start`` and ``.body`` after ``websocket.connect``; the server
    sends that response. The probe sends 401 with x-probe-denial and a Content-Length body."""
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, "/ws/deny-response", probe_id, timeout_s=ctx.options.hang_s)
    with opened.http:
        events = ctx.wait_events(
            probe_id, lambda e: bool(find_event(e, "no-extension") or find_event(e, "done")), 0.5
        )
        if find_event(events, "no-extension"):
            scope = find_event(events, "scope") or {}
            return not_applicable(
                f"websocket.http.response is not in scope['extensions'] "
                f"({scope.get('extensions')!r})"
            )
        if opened.response is None:
            return failed(f"the app sent a 401 denial; {opened.describe()}")
        response = opened.response
        observed = (
            f"the app sent 401 with a body; {describe_response(response)}, x-probe-denial "
            f"{response.header(b'x-probe-denial')!r}"
        )
        return verdict(
            response.status == 401
            and response.header(b"x-probe-denial") == b"yes"
            and response.body == b"denied by the probe\n",
            observed,
        )


def expect_refusal(opened: Opened, what: str) -> Result:
    """An HTTP error status, or the connection closed without a response; never 101."""
    with opened.http:
        if opened.response is None:
            assert opened.failure is not None
            observed = f"{what}: {opened.describe()}"
            return verdict(opened.failure.ended, observed)
        observed = f"{what}: {describe_response(opened.response)}"
        return verdict(opened.response.status >= 400, observed)


@check(
    "websocket.connect-unanswered",
    title="an app that returns without answering websocket.connect gets no 101 and no hang",
    clause="reading: websocket-connect-unanswered",
    level=READING,
)
def connect_unanswered(ctx: Context) -> Result:
    """The spec only says the handshake is not completed without a reply. Reading: the server
    answers with an HTTP error status or closes the connection, promptly; never a 101."""
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, "/ws/unanswered", probe_id, timeout_s=ctx.options.hang_s)
    return expect_refusal(opened, "the app returned without accept or close")


@check(
    "websocket.raise-before-accept",
    title="an app that raises before accept gets an HTTP error or a close, not a 101",
    clause="ASGI spec, Error Handling",
)
def raise_before_accept(ctx: Context) -> Result:
    """Error Handling: the server "must terminate the application instance and its associated
    connection"; the handshake was never accepted, so no 101 may be sent."""
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, "/ws/raise-before-accept", probe_id, timeout_s=ctx.options.hang_s)
    return expect_refusal(opened, "the app raised before accept")


def expect_failed_connection(ctx: Context, path: str, what: str, frame: bytes = b"") -> Result:
    """The server closes the connection (after ``frame``, if any): a close frame then (once
    answered) a TCP close, or a TCP close at once. An echo, silence, or a close frame with TCP
    left open fails."""
    probe_id, incoming, state, problem = close_outcome(ctx, path, frame=frame)
    if incoming is None:
        return failed(problem)
    observed = f"{what}; got {incoming.describe()}"
    if state:
        observed += f", answered it, then TCP {state}"
    # Give the app's websocket.disconnect a moment to arrive, for the observation only.
    ctx.wait_events(probe_id, lambda e: bool(received(e, "websocket.disconnect")), 0.5)
    observed += f"; {app_saw(ctx, probe_id)}"
    if incoming.kind == "close":
        return verdict(connection_ended(state), observed)
    return verdict(connection_ended(incoming.kind), observed)


@check(
    "websocket.raise-after-accept",
    title="an app that raises after accept has its WebSocket closed",
    clause="ASGI spec, Error Handling",
)
def raise_after_accept(ctx: Context) -> Result:
    """Error Handling: the server "must terminate the application instance and its associated
    connection". A close frame (1011 fits) or a TCP close passes; silence fails."""
    return expect_failed_connection(ctx, "/ws/raise-after-accept", "the app raised after accept")


@check(
    "websocket.return-after-accept",
    title="an app that returns after accept has its WebSocket closed",
    clause="ASGI WebSocket spec, Websocket Connection Scope",
    level=SHOULD,
)
def return_after_accept(ctx: Context) -> Result:
    """Scope: "WebSocket connections' scope lives as long as the socket itself - if the
    application dies the socket should be closed, and vice-versa." """
    return expect_failed_connection(ctx, "/ws/return-after-accept", "the app returned after accept")


# -- messages


def grade_echo(ctx: Context, opcode: int, payload: bytes) -> Result:
    """Send one message to the echo probe: the app must get it whole and typed, and echo it."""
    kind = "text" if opcode == OP_TEXT else "binary"
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, ECHO, probe_id)
    with opened.http:
        ws = opened.ws
        if ws is None:
            return failed(f"the handshake got {opened.describe()}")
        ws.send_frame(opcode, payload)
        reply = ws.receive(ctx.options.hang_s)
        goodbye(ws)
    got = received(wait_received(ctx, probe_id, "websocket.receive"), "websocket.receive")
    if not got:
        return failed(f"sent a {kind} message; {app_saw(ctx, probe_id)}")
    record = got[0]
    if opcode == OP_TEXT:
        app_ok = record.get("text") == payload.decode() and record.get("bytes_type") == "NoneType"
    else:
        app_ok = (
            record.get("bytes_length") == len(payload)
            and record.get("bytes_hex") == payload[:100].hex()
            and record.get("text_type") == "NoneType"
        )
    shown = payload.decode() if opcode == OP_TEXT else payload[:24]
    observed = (
        f"sent {kind} {shown!r}; the app got {describe_receive(record)}; "
        f"the client got {reply.describe()}"
    )
    return verdict(app_ok and reply.kind == kind and reply.data == payload, observed)


@check(
    "websocket.echo-text",
    title="a text message reaches the app as text and comes back as text",
    clause="ASGI WebSocket spec, Receive",
)
def echo_text(ctx: Context) -> Result:
    """Receive: ``text`` is "The message content, if it was text mode"; Send: ``text`` is sent
    as a text message."""
    return grade_echo(ctx, OP_TEXT, "héllo, wörld ✓ 𝄞".encode())


@check(
    "websocket.echo-binary",
    title="a binary message reaches the app as bytes and comes back as binary",
    clause="ASGI WebSocket spec, Receive",
)
def echo_binary(ctx: Context) -> Result:
    """Receive: ``bytes`` is "The message content, if it was binary mode"."""
    return grade_echo(ctx, OP_BINARY, bytes(range(256)))


@check(
    "websocket.empty-messages-received",
    title="empty text and binary messages reach the app as text='' and bytes=b''",
    clause="ASGI WebSocket spec, Receive",
)
def empty_messages_received(ctx: Context) -> Result:
    """Receive: "Exactly one of ``bytes`` or ``text`` must be non-``None``": an empty text
    message is ``text=""`` and an empty binary one ``bytes=b""`` (neither None, nor the other
    key). A marker message follows, so an empty message dropped on the way shows."""
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, ECHO, probe_id)
    with opened.http:
        ws = opened.ws
        if ws is None:
            return failed(f"the handshake got {opened.describe()}")
        ws.send_text("")
        ws.send_bytes(b"")
        ws.send_text("marker")
        events = wait_received(ctx, probe_id, "websocket.receive", 3)
        goodbye(ws)
    got = received(events, "websocket.receive")
    seen = [describe_receive(record) for record in got]
    if len(got) < 3:
        return failed(f"sent '', b'' and 'marker'; the app got {seen}")
    text, binary = got[0], got[1]
    ok = (
        text.get("text_type") == "str"
        and text.get("text_length") == 0
        and text.get("bytes_type") == "NoneType"
        and binary.get("bytes_type") == "bytes"
        and binary.get("bytes_length") == 0
        and binary.get("text_type") == "NoneType"
    )
    return verdict(ok, f"sent '', b'' and 'marker'; the app got {seen}")


@check(
    "websocket.empty-messages-sent",
    title="text='' and bytes=b'' from the app go out as empty text and binary messages",
    clause="ASGI WebSocket spec, Send",
)
def empty_messages_sent(ctx: Context) -> Result:
    """Send: "Exactly one of ``bytes`` or ``text`` must be non-``None``": ``text=""`` and
    ``bytes=b""`` are valid messages, and the server sends them. The probe sends '', b'', then
    'marker'."""
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, "/ws/send-empty", probe_id)
    with opened.http:
        ws = opened.ws
        if ws is None:
            return failed(f"the handshake got {opened.describe()}")
        replies: list[Incoming] = []
        while len(replies) < 3:
            reply = ws.receive(ctx.options.hang_s)
            replies.append(reply)
            if reply.kind not in ("text", "binary") or reply.data == b"marker":
                break
        goodbye(ws)
    got = [(reply.kind, reply.data) for reply in replies]
    observed = f"the app sent '', b'', 'marker'; the client got {[r.describe() for r in replies]}"
    return verdict(got == [("text", b""), ("binary", b""), ("text", b"marker")], observed)


@check(
    "websocket.receive-exactly-one",
    title="each websocket.receive has exactly one of text and bytes non-None",
    clause="ASGI WebSocket spec, Receive",
)
def receive_exactly_one(ctx: Context) -> Result:
    """Receive: "Exactly one of ``bytes`` or ``text`` must be non-``None``. One or both keys may
    be present, however." One text and one binary message."""
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, ECHO, probe_id)
    with opened.http:
        ws = opened.ws
        if ws is None:
            return failed(f"the handshake got {opened.describe()}")
        ws.send_text("one")
        ws.send_bytes(b"two")
        replies = [ws.receive(ctx.options.hang_s) for _ in range(2)]
        goodbye(ws)
    events = wait_received(ctx, probe_id, "websocket.receive", 2)
    got = received(events, "websocket.receive")
    if len(got) < 2:
        return failed(
            f"sent text and binary; the app got {[describe_receive(r) for r in got]}; the client "
            f"got {[reply.describe() for reply in replies]}"
        )
    text, binary = got[0], got[1]
    ok = (
        text.get("text_type") == "str"
        and text.get("bytes_type") == "NoneType"
        and binary.get("bytes_type") == "bytes"
        and binary.get("text_type") == "NoneType"
    )
    return verdict(ok, f"the app got {describe_receive(text)}, then {describe_receive(binary)}")


@check(
    "websocket.fragmented-message",
    title="a message in three fragments reaches the app as one websocket.receive",
    clause="ASGI WebSocket spec, WebSocket",
    level=SHOULD,
)
def fragmented_message(ctx: Context) -> Result:
    """WebSocket: "WebSocket protocol servers should handle message fragmentation themselves,
    and deliver complete messages to the application." A marker message follows, so the
    messages the app got before it are all there is."""
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, ECHO, probe_id)
    with opened.http:
        ws = opened.ws
        if ws is None:
            return failed(f"the handshake got {opened.describe()}")
        ws.send_frame(OP_TEXT, b"frag-", fin=False)
        ws.send_frame(OP_CONTINUATION, b"ment-", fin=False)
        ws.send_frame(OP_CONTINUATION, b"ed", fin=True)
        ws.send_text("marker")
        replies = [ws.receive(ctx.options.hang_s) for _ in range(2)]
        goodbye(ws)
    events = wait_received(ctx, probe_id, "websocket.receive", 2)
    texts = [record.get("text") for record in received(events, "websocket.receive")]
    observed = (
        f"sent 'frag-' 'ment-' 'ed' as fragments, then 'marker'; the app got {texts}; the client "
        f"got {[reply.describe() for reply in replies]}"
    )
    return verdict(texts == ["frag-ment-ed", "marker"], observed)


@check(
    "websocket.control-frame-in-fragmented",
    title="a ping between the fragments of a message is answered and the message kept whole",
    clause="RFC 6455 §5.4",
)
def control_frame_in_fragmented(ctx: Context) -> Result:
    """§5.4: "Control frames (see Section 5.5) MAY be injected in the middle of a fragmented
    message." ... "An endpoint MUST be capable of handling control frames in the middle of a
    fragmented message." """
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, ECHO, probe_id)
    with opened.http:
        ws = opened.ws
        if ws is None:
            return failed(f"the handshake got {opened.describe()}")
        ws.send_frame(OP_TEXT, b"frag-", fin=False)
        ws.send_frame(OP_PING, b"mid-message")
        ws.send_frame(OP_CONTINUATION, b"ment-", fin=False)
        ws.send_frame(OP_CONTINUATION, b"ed", fin=True)
        pongs: list[bytes] = []
        message = b""
        seen: list[str] = []
        deadline = time.monotonic() + ctx.options.hang_s
        ended: Incoming | None = None
        while not (pongs and message):
            frame = next_frame(ws, deadline)
            if isinstance(frame, Incoming):
                ended = frame
                break
            if frame.opcode == OP_PONG:
                pongs.append(frame.payload)
            elif frame.opcode == OP_PING:
                ws.send_frame(OP_PONG, frame.payload)
            elif frame.opcode == OP_CLOSE:
                ended = close_frame(frame)
                break
            elif frame.fin:
                message = frame.payload
                seen.append(f"opcode {frame.opcode} {frame.payload!r}")
        goodbye(ws)
    observed = f"a ping amid 'frag-' 'ment-' 'ed': pongs {pongs}, messages {seen}"
    if ended is not None:
        observed += f", then {ended.describe()}"
    return verdict(pongs == [b"mid-message"] and message == b"frag-ment-ed", observed)


@check(
    "websocket.ping-pong",
    title="a ping is answered by a pong with the same payload",
    clause="RFC 6455 §5.5.2",
)
def ping_pong(ctx: Context) -> Result:
    """§5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in response";
    §5.5.3: "A Pong frame sent in response to a Ping frame must have identical "Application
    data" as found in the message body of the Ping frame being replied to." """
    probe_id = ctx.new_id("ws")
    payload = b"ping \x00\xff" + os.urandom(8)
    opened = open_ws(ctx, ECHO, probe_id)
    with opened.http:
        ws = opened.ws
        if ws is None:
            return failed(f"the handshake got {opened.describe()}")
        ws.send_frame(OP_PING, payload)
        deadline = time.monotonic() + ctx.options.hang_s
        pongs: list[bytes] = []
        while True:
            frame = next_frame(ws, deadline)
            if isinstance(frame, Incoming):
                goodbye(ws)
                return failed(f"sent a ping; pongs {pongs}, then {frame.describe()}")
            if frame.opcode == OP_PING:
                ws.send_frame(OP_PONG, frame.payload)
                continue
            if frame.opcode != OP_PONG:
                goodbye(ws)
                return failed(f"sent a ping; got a frame with opcode {frame.opcode} instead")
            pongs.append(frame.payload)
            if frame.payload == payload:
                goodbye(ws)
                return passed(f"sent a ping of {len(payload)} bytes; the pong echoed them")


# -- closing


def app_disconnect(ctx: Context, probe_id: str) -> Event | None:
    """The websocket.disconnect the app received, once it has."""
    got = received(wait_received(ctx, probe_id, "websocket.disconnect"), "websocket.disconnect")
    return got[0] if got else None


def client_close(
    ctx: Context, what: str, code: int | None, reason: str = ""
) -> tuple[str, Event | None, str]:
    """Open the echo probe and send a close frame (``what``: how, in words).

    Returns the probe id, the websocket.disconnect the app received, and if there is none, a
    failure: the handshake's, or what the app got instead.
    """
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, ECHO, probe_id)
    with opened.http:
        ws = opened.ws
        if ws is None:
            return probe_id, None, f"the handshake got {opened.describe()}"
        ws.send_close(code, reason)
        ws.receive(ctx.options.hang_s)  # the server's close frame, if it sends one
    record = app_disconnect(ctx, probe_id)
    return probe_id, record, "" if record else f"{what}; {app_saw(ctx, probe_id)}"


@check(
    "websocket.disconnect-code",
    title="the client's close code 4001 reaches the app in websocket.disconnect",
    clause="ASGI WebSocket spec, Disconnect",
)
def disconnect_code(ctx: Context) -> Result:
    """Disconnect: "``code`` (*int*) -- The WebSocket close code, as per the WebSocket spec.\""""
    _, record, problem = client_close(ctx, "closed with 4001", 4001, "client-bye")
    if record is None:
        return failed(problem)
    return verdict(
        record.get("code") == 4001,
        f"closed with 4001; the app got websocket.disconnect code {record.get('code')!r}",
    )


@check(
    "websocket.disconnect-reason",
    title="the client's close reason reaches the app in websocket.disconnect (spec 2.5)",
    clause="ASGI WebSocket spec, Disconnect",
)
def disconnect_reason(ctx: Context) -> Result:
    """Disconnect: "``reason`` (*Unicode string*) -- A reason given for the disconnect ...
    Optional; if missing or ``None`` default is empty string", added in spec 2.5. A server that
    advertises 2.5 or later must pass the reason on; an older one may leave the key out (the
    app then reads "", which is all it was promised), but a reason it does give must be the
    client's."""
    probe_id, record, problem = client_close(
        ctx, "closed with 4001 'client-bye'", 4001, "client-bye"
    )
    if record is None:
        return failed(problem)
    version, number = advertised(ctx.events(probe_id))
    reason = record.get("reason")
    if not record.get("has_reason") or reason is None:
        observed = f"closed with reason 'client-bye'; the disconnect had no reason (spec {version})"
        if number >= (2, 5):
            return failed(observed + ", which promises the reason")
        return not_applicable(observed + ", before 2.5 added it")
    return verdict(
        reason == "client-bye",
        f"closed with reason 'client-bye'; the app got reason {reason!r} (spec {version})",
    )


@check(
    "websocket.disconnect-1005",
    title="a close frame without a code reaches the app as code 1005",
    clause="ASGI WebSocket spec, Disconnect",
    level=SHOULD,
)
def disconnect_1005(ctx: Context) -> Result:
    """Disconnect: "If no code was received in the frame from the client, the server should set
    this to ``1005`` (the default value in the WebSocket specification)." """
    _, record, problem = client_close(ctx, "sent an empty close frame", None)
    if record is None:
        return failed(problem)
    return verdict(
        record.get("code") == 1005,
        f"sent an empty close frame; the app got websocket.disconnect code {record.get('code')!r}",
    )


@check(
    "websocket.disconnect-1006",
    title="a TCP close without a close frame reaches the app as code 1006",
    clause="RFC 6455 §7.1.5",
)
def disconnect_1006(ctx: Context) -> Result:
    """§7.1.5: "If _The WebSocket Connection is Closed_ and no Close control frame was received
    by the endpoint (such as could occur if the underlying transport connection is lost), _The
    WebSocket Connection Close Code_ is considered to be 1006." ASGI's ``code`` is "The
    WebSocket close code, as per the WebSocket spec"."""
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, ECHO, probe_id)
    with opened.http:
        if opened.ws is None:
            return failed(f"the handshake got {opened.describe()}")
    record = app_disconnect(ctx, probe_id)
    if record is None:
        return failed(f"closed TCP without a close frame; {app_saw(ctx, probe_id)}")
    return verdict(
        record.get("code") == 1006,
        f"closed TCP without a close frame; the app got websocket.disconnect code "
        f"{record.get('code')!r}",
    )


@check(
    "websocket.app-close-code",
    title="websocket.close with code 4002 sends a close frame with 4002",
    clause="ASGI WebSocket spec, Close",
)
def app_close_code(ctx: Context) -> Result:
    """Close: "If this is sent after the socket is accepted, the server must close the socket
    with the close code passed in the message (or 1000 if none is specified)." """
    _, incoming, _, problem = close_outcome(ctx, "/ws/close", {"code": "4002", "reason": "app-bye"})
    if incoming is None:
        return failed(problem)
    return verdict(
        incoming.kind == "close" and incoming.code == 4002,
        f"the app closed with 4002; the client got {incoming.describe()}",
    )


@check(
    "websocket.app-close-reason",
    title="websocket.close with a reason sends it in the close frame (spec 2.3)",
    clause="ASGI WebSocket spec, Close",
)
def app_close_reason(ctx: Context) -> Result:
    """Close: "``reason`` (*Unicode string*) -- A reason given for the closure", added in spec
    2.3. The probe sends it only to servers that advertise 2.3 or later."""
    probe_id, incoming, _, problem = close_outcome(
        ctx, "/ws/close", {"code": "4002", "reason": "app-bye"}
    )
    if incoming is None:
        return failed(problem)
    events = ctx.wait_events(probe_id, has_event("closing"), 0.5)
    closing = find_event(events, "closing")
    version, _ = advertised(events)
    if closing is not None and not closing.get("reason_sent"):
        return not_applicable(f"spec_version {version}: the close reason is 2.3")
    return verdict(
        incoming.kind == "close" and incoming.reason == "app-bye",
        f"the app closed with 4002 'app-bye'; the client got {incoming.describe()}",
    )


@check(
    "websocket.app-close-default-1000",
    title="websocket.close without a code sends a close frame with 1000",
    clause="ASGI WebSocket spec, Close",
)
def app_close_default(ctx: Context) -> Result:
    """Close: "``code`` (*int*) -- The WebSocket close code ... Optional; if missing defaults
    to ``1000``." """
    _, incoming, _, problem = close_outcome(ctx, "/ws/close")
    if incoming is None:
        return failed(problem)
    return verdict(
        incoming.kind == "close" and incoming.code == 1000,
        f"the app closed without a code; the client got {incoming.describe()}",
    )


@check(
    "websocket.server-close-completes",
    title="after the app's close and the client's answer, the server closes TCP",
    clause="RFC 6455 §5.5.1",
)
def server_close_completes(ctx: Context) -> Result:
    """§5.5.1: "After both sending and receiving a Close message, an endpoint considers the
    WebSocket connection closed and MUST close the underlying TCP connection. The server MUST
    close the underlying TCP connection immediately"."""
    _, incoming, state, problem = close_outcome(ctx, "/ws/close", {"code": "4002"})
    if incoming is None:
        return failed(problem)
    if incoming.kind != "close":
        return failed(f"the app closed; the client got {incoming.describe()}, not a close frame")
    return verdict(
        connection_ended(state),
        f"the app closed, the client answered the close frame; TCP then {state}"
        + (f" for {ctx.options.hang_s:g} s" if state == "open" else ""),
    )


@check(
    "websocket.client-close-answered",
    title="the client's close frame is answered with a close frame, then TCP is closed",
    clause="RFC 6455 §5.5.1",
)
def client_close_answered(ctx: Context) -> Result:
    """§5.5.1: "If an endpoint receives a Close frame and did not previously send a Close frame,
    the endpoint MUST send a Close frame in response." ... "The server MUST close the underlying
    TCP connection immediately"."""
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, ECHO, probe_id)
    with opened.http:
        ws = opened.ws
        if ws is None:
            return failed(f"the handshake got {opened.describe()}")
        ws.send_close(1000, "client-done")
        incoming = ws.receive(ctx.options.hang_s)
        if incoming.kind != "close":
            return failed(f"sent close 1000; got {incoming.describe()}, not a close frame")
        state = ws.http.wait_closed(ctx.options.hang_s)
    return verdict(
        connection_ended(state),
        f"sent close 1000; got {incoming.describe()}, then TCP {state}"
        + (f" for {ctx.options.hang_s:g} s" if state == "open" else ""),
    )


# -- protocol violations


INVALID_UTF8 = b"bad \xff\xfe utf-8"
UNMASKED = b"unmasked hello"


@check(
    "websocket.invalid-utf8-fails",
    title="a text message that is not UTF-8 fails the connection",
    clause="RFC 6455 §8.1",
)
def invalid_utf8_fails(ctx: Context) -> Result:
    """§8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds that the byte
    stream is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket
    Connection_." Failing closes the connection, with or without a close frame first (§7.1.7);
    an echo or silence fails."""
    frame = encode_frame(OP_TEXT, INVALID_UTF8)
    return expect_failed_connection(ctx, ECHO, f"sent text {INVALID_UTF8!r}", frame)


@check(
    "websocket.invalid-utf8-1007",
    title="a text message that is not UTF-8 is answered with close code 1007",
    clause="RFC 6455 §7.1.7",
    level=SHOULD,
)
def invalid_utf8_1007(ctx: Context) -> Result:
    """§7.1.7: "the endpoint SHOULD send a Close frame with an appropriate status code (Section
    7.4) before proceeding to _Close the WebSocket Connection_"; §7.4.1: "1007 indicates that
    an endpoint is terminating the connection because it has received data within a message
    that was not consistent with the type of the message (e.g., non-UTF-8 [RFC3629] data
    within a text message)." """
    _, incoming, _, problem = close_outcome(ctx, ECHO, frame=encode_frame(OP_TEXT, INVALID_UTF8))
    if incoming is None:
        return failed(problem)
    return verdict(
        incoming.kind == "close" and incoming.code == 1007,
        f"sent text {INVALID_UTF8!r}; got {incoming.describe()}",
    )


@check(
    "websocket.unmasked-frame-fails",
    title="an unmasked client frame closes the connection",
    clause="RFC 6455 §5.1",
)
def unmasked_frame_fails(ctx: Context) -> Result:
    """§5.1: "The server MUST close the connection upon receiving a frame that is not masked."
    A close frame and then a TCP close, or a TCP close at once, passes; an echo or silence
    fails."""
    frame = encode_frame(OP_TEXT, UNMASKED, mask=False)
    return expect_failed_connection(ctx, ECHO, "sent an unmasked text frame", frame)


@check(
    "websocket.unmasked-frame-1002",
    title="an unmasked client frame is answered with close code 1002",
    clause="RFC 6455 §7.1.7",
    level=SHOULD,
)
def unmasked_frame_1002(ctx: Context) -> Result:
    """§5.1: "a server MAY send a Close frame with a status code of 1002 (protocol error)";
    §7.1.7: a failing endpoint "SHOULD send a Close frame with an appropriate status code
    (Section 7.4)", and §7.4.1 names 1002 for "a protocol error"."""
    frame = encode_frame(OP_TEXT, UNMASKED, mask=False)
    _, incoming, _, problem = close_outcome(ctx, ECHO, frame=frame)
    if incoming is None:
        return failed(problem)
    return verdict(
        incoming.kind == "close" and incoming.code == 1002,
        f"sent an unmasked text frame; got {incoming.describe()}",
    )


@check(
    "websocket.message-too-big",
    title="a 20 MiB message is delivered whole or refused with close code 1009",
    clause="RFC 6455 §7.1.7",
    level=SHOULD,
)
def message_too_big(ctx: Context) -> Result:
    """§7.4.1: "1009 indicates that an endpoint is terminating the connection because it has
    received a message that is too big for it to process"; §7.1.7: a failing endpoint "SHOULD
    send a Close frame with an appropriate status code". A server with no limit at or below
    20 MiB delivers it (the probe answers ``len=N``): not applicable. A bare TCP close, another
    code or silence fails.

    The frame goes out in one ``sendall`` from a thread while this one reads, so a server that
    stops reading and closes early cannot leave the client stuck in a write.
    """
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, ECHO, probe_id)
    with opened.http:
        ws = opened.ws
        if ws is None:
            return failed(f"the handshake got {opened.describe()}")
        frame = encode_frame(OP_BINARY, bytes(BIG_MESSAGE_BYTES))
        send_error: list[str] = []

        def send_all() -> None:
            try:
                ws.http.sock.sendall(frame)
            except OSError as exc:
                send_error.append(type(exc).__name__)

        sender = threading.Thread(target=send_all, daemon=True)
        sender.start()
        deadline = time.monotonic() + ctx.options.io_timeout_s + ctx.options.hang_s
        outcome: Incoming | None = None
        while outcome is None:
            frame_in = next_frame(ws, deadline)
            if isinstance(frame_in, Incoming):
                outcome = frame_in
            elif frame_in.opcode == OP_CLOSE:
                outcome = close_frame(frame_in)
            elif frame_in.opcode in (OP_TEXT, OP_BINARY):
                outcome = Incoming(
                    "text" if frame_in.opcode == OP_TEXT else "binary", frame_in.payload
                )
            # pings are left unanswered: a pong now would cut into the frame being sent
        ws.close()
        sender.join(ctx.options.io_timeout_s)
    sent = f" (the send ended with {send_error[0]})" if send_error else ""
    observed = (
        f"sent a {BIG_MESSAGE_BYTES >> 20} MiB binary message{sent}; got {outcome.describe()}"
    )
    if outcome.kind == "text" and outcome.data == b"len=%d" % BIG_MESSAGE_BYTES:
        return not_applicable(f"no limit at or below {BIG_MESSAGE_BYTES >> 20} MiB: {observed}")
    return verdict(outcome.kind == "close" and outcome.code == 1009, observed)


# -- the app's view


@check(
    "websocket.send-after-disconnect",
    title="send() after websocket.disconnect raises an OSError subclass or does nothing",
    clause="ASGI WebSocket spec, Disconnected Client",
    level=SHOULD,
)
def send_after_disconnect(ctx: Context) -> Result:
    """Disconnected Client: "If ``send()`` is called on a closed connection the server should
    raise a server-specific subclass of ``OSError``. This is not guaranteed, however,
    especially on older ASGI server implementations (it was introduced in spec version 2.4)."
    So a no-op passes too; another exception, or a ``send`` that hangs, fails."""
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, ECHO, probe_id, query={"send_after": "1"})
    with opened.http:
        ws = opened.ws
        if ws is None:
            return failed(f"the handshake got {opened.describe()}")
        ws.send_close(1000)
        ws.receive(ctx.options.hang_s)
    events = ctx.wait_events(
        probe_id,
        has_event("send", step="after-disconnect"),
        ctx.options.io_timeout_s + ctx.options.hang_s,
    )
    record = find_event(events, "send", step="after-disconnect")
    if record is None:
        return failed(f"the client closed; {app_saw(ctx, probe_id)}, never a send after it")
    outcome = record.get("outcome")
    if outcome == "returned":
        return passed("send() after websocket.disconnect returned (a no-op)")
    if outcome == "raised":
        observed = f"send() after websocket.disconnect raised {record.get('exception')}"
        return verdict(
            bool(record.get("oserror")),
            observed
            + ("" if record.get("oserror") else f", not an OSError: {record.get('text')!r}"),
        )
    return failed(f"send() after websocket.disconnect {outcome}")


@check(
    "websocket.spec-version",
    title="scope['asgi']['spec_version'] is absent or a released www spec version",
    clause="reading: websocket-spec-version",
    level=READING,
)
def spec_version(ctx: Context) -> Result:
    """Scope: ``asgi["spec_version"]`` is "one of "2.0", "2.1", "2.2" or "2.3". Optional; if
    missing assume "2.0"", but the document is version 2.5 and lists 2.4 and 2.5 among its
    spec versions. Reading: absent, or a str naming one of 2.0 to 2.5."""
    probe_id = ctx.new_id("ws")
    opened = open_ws(ctx, ECHO, probe_id)
    with opened.http:
        opened.goodbye()
    scope = wait_event(ctx, probe_id, "scope")
    if scope is None:
        return failed(f"the app was not called; the handshake got {opened.describe()}")
    asgi = scope.get("asgi")
    if not isinstance(asgi, dict):
        return failed(f"scope['asgi'] is {asgi!r}")
    if "spec_version" not in asgi:
        return passed(f"scope['asgi'] is {asgi}: no spec_version, so 2.0")
    value = asgi["spec_version"]
    return verdict(
        isinstance(value, str) and value in KNOWN_SPEC_VERSIONS,
        f"scope['asgi'] is {asgi}",
    )
