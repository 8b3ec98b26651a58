"""The inspector's ASGI app: the page, its JSON API, the spec page, and what the forms hit.

Theory of operation
-------------------
The app attaches a ``TraceCapture`` to the trace log (``logs.capture_trace``) at lifespan
startup, or on its first call when the lifespan is off, and releases it at shutdown. From then
on the server traces every connection it accepts, and the capture sorts the records into
exchanges; the app finds the exchange of the request it is serving by its scope object, and
tells the page its id. The page then reads the exchange from the API below. Nothing here
parses HTTP: the timeline is the server's own trace.

Routes (every other path is an *echo*, which is what the forms hit)::

    GET  /                               the page (static/index.html)
    GET  /_inspector/static/<file>       inspector.css, inspector.js
    GET  /_inspector/spec                the spec page, an anchor per scope and message key
    GET  /_inspector/api/exchanges       {"exchanges": [summary, ...newest first],
                                          "stats": {...the capture's sizes and limits}}
    GET  /_inspector/api/exchanges/<id>[?after=N]
                                         summary + {"after": N, "items": [record, ...]}
                                         (the records from index N on); 404 once dropped
    GET  /_inspector/api/anchors         {"scope-http": ["type", ...], "message-<type>": [...]}:
                                         the keys the spec page has anchors for
    POST /_inspector/api/raw             a raw request, written by the server to itself
    any  <other path>                    echo: reads the body, answers JSON
                                         {"exchange": id, "method", "path", "query_string",
                                          "http_version", "body_bytes", "body" (its first
                                          1 KiB as latin-1)} and ``x-inspector-exchange: id``
    WebSocket <any path>                 accepts, sends {"exchange": id} as its first text
                                         message, then echoes every message, text as text,
                                         bytes as bytes

Who is answered: the page and every ``/_inspector/`` route answer only a client on this
machine (a loopback address, after proxy headers; or a unix socket) that names this machine in
``Host`` (``localhost``, ``*.localhost``, a loopback address, any port); anything else gets 403
``{"error": "..."}``. The history holds every client's headers and bodies, cookies included,
and a page of another site rebound to 127.0.0.1 (DNS rebinding) sends its own name as Host.
The echo (below) shows only the request itself and answers anyone.

Exchange ids are opaque strings, ``"<pid>-<n>"``: with ``--workers N`` each worker process
keeps a history of its own, and an id of another worker gets 404 saying so. A request the
server rejects before any app call (400, 431, ...) is an exchange too, of ``type``
``"rejected"``, with ``method`` and ``path`` null.

A summary is ``{"id", "connection", "protocol", "type", "method", "path", "query", "status",
"started", "complete", "records", "bytes", "dropped"}``. A record is ``{"time", "kind",
"direction", "protocol", "summary", "size", "detail", "data"?, "data_size"?}``: the fields of
``logs.TraceRecord``, with ``data`` (bytes read or written) as latin-1 text.

Raw requests: browsers cannot send a chunked upload over HTTP/1.1 or ``Expect: 100-continue``,
so the page asks the server to send them to itself. The body is JSON ``{"parts": [text, ...],
"wait": "pause" | "interim"}``: each part is latin-1 text (the bytes to write); between parts
the server pauses ``RAW_PAUSE_S`` (``"pause"``, so each part is a read of its own) or waits for
the first bytes of the answer, up to ``RAW_INTERIM_WAIT_S`` (``"interim"``: a ``100 Continue``).
The connection goes only to the server's own listening address (``scope["server"]``), over TLS
when the request came over TLS; at most ``RAW_MAX_REQUEST_BYTES`` are written, at most
``RAW_MAX_RESPONSE_BYTES`` read, all within ``RAW_DEADLINE_S``, and at most
``RAW_MAX_RUNNING`` at once. The request must be ``application/json``, which a page of another
origin cannot send without a CORS preflight this app never grants. The answer:
``{"exchanges": [id, ...], "connection", "sent", "received", "closed": bool, "elapsed_ms"}``,
with ``"note"`` when another worker process answered the connection (its timeline is there).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import pkgutil
import ssl
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .. import logs
from .capture import INTERNAL_PREFIX, TraceCapture
from .spec_page import anchors, render

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

STATIC_FILES = {
    "inspector.css": b"text/css; charset=utf-8",
    "inspector.js": b"text/javascript; charset=utf-8",
}
MAX_ECHO_BODY_BYTES = 1024 * 1024  # read and counted; only the first ECHO_PREVIEW_BYTES shown
ECHO_PREVIEW_BYTES = 1024
MAX_API_BODY_BYTES = 128 * 1024  # of a raw request's JSON
RAW_MAX_REQUEST_BYTES = 64 * 1024
RAW_MAX_PARTS = 32
RAW_MAX_RESPONSE_BYTES = 256 * 1024
RAW_DEADLINE_S = 5.0
RAW_IDLE_S = 0.5  # once an answer has begun, this long with nothing more ends it
RAW_PAUSE_S = 0.05
RAW_INTERIM_WAIT_S = 1.0
RAW_MAX_RUNNING = 4

_JSON_HEADERS = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]
_PAGE_HEADERS = [
    (b"cache-control", b"no-cache"),
    (b"x-content-type-options", b"nosniff"),
    (
        b"content-security-policy",
        b"default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
        b"frame-ancestors 'none'",
    ),
]


def _static(name: str) -> bytes:
    data = pkgutil.get_data(__package__ or "sansio_asgi.inspector", f"static/{name}")
    if data is None:  # pragma: no cover - a loader that cannot read package data
        raise FileNotFoundError(name)
    return data


class Inspector:
    """The built-in app (see the module docstring). One per server: each has its own history."""

    def __init__(self, capture: TraceCapture | None = None) -> None:
        self.capture = capture or TraceCapture()
        self._attached = False
        self._lock = threading.Lock()
        self._raw_running = 0
        # Read now, before serving: a request must not need a file descriptor (at the fd
        # limit, accept() fails but the connections already open are still answered).
        self._files = {name: _static(name) for name in ("index.html", *STATIC_FILES)}

    # -- the capture

    def attach(self) -> None:
        with self._lock:
            if not self._attached:
                logs.capture_trace(self.capture)
                self._attached = True

    def release(self) -> None:
        with self._lock:
            if self._attached:
                logs.release_trace(self.capture)
                self._attached = False

    @property
    def attached(self) -> bool:
        return self._attached

    # -- ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        self.attach()  # the lifespan is off: from now on
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            raise ValueError(f"the inspector serves http and websocket, not {kind!r}")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.attach()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.release()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- HTTP

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path == "/" or path.startswith(INTERNAL_PREFIX):
            refusal = refusal_of(scope)
            if refusal is not None:
                await _drain(receive)
                await _json(send, 403, {"error": refusal})
                return
        if not path.startswith(INTERNAL_PREFIX):
            if path == "/" and method in ("GET", "HEAD"):
                await _drain(receive)
                await _respond(send, 200, self._file("index.html"), b"text/html; charset=utf-8",
                               _PAGE_HEADERS, head=method == "HEAD")  # fmt: skip
                return
            await self._echo(scope, receive, send)
            return
        route = path[len(INTERNAL_PREFIX) :]
        if route == "api/raw" and method == "POST":
            if _header(scope, b"content-type").split(b";")[0].strip() != b"application/json":
                # Only a script of this page's origin can send JSON: another site's form or
                # simple fetch() cannot make this server write to itself.
                await _drain(receive)
                await _json(send, 415, {"error": "send the raw request as application/json"})
                return
            body = await _read_body(receive, MAX_API_BODY_BYTES)
            if body is None:
                await _json(send, 413, {"error": "the request is larger than 128 KiB"})
                return
            status, answer = await self.raw(scope, body)
            await _json(send, status, answer)
            return
        await _drain(receive)
        if method not in ("GET", "HEAD"):
            await _json(send, 405, {"error": f"{method} is not allowed here"})
        elif route.startswith("static/") and route[7:] in STATIC_FILES:
            name = route[7:]
            await _respond(send, 200, self._file(name), STATIC_FILES[name], _PAGE_HEADERS,
                           head=method == "HEAD")  # fmt: skip
        elif route == "spec":
            page = render().encode("utf-8")
            await _respond(send, 200, page, b"text/html; charset=utf-8", _PAGE_HEADERS,
                           head=method == "HEAD")  # fmt: skip
        elif route == "api/exchanges":
            answer = {"exchanges": self.capture.summaries(), "stats": self.capture.stats()}
            await _json(send, 200, answer)
        elif route == "api/anchors":
            await _json(send, 200, anchors())
        elif route.startswith("api/exchanges/"):
            exchange_id = route[14:]
            after = _query_int(scope.get("query_string", b""), b"after")
            text = self.capture.exchange_json(exchange_id, after)
            if text is not None:
                await _respond(send, 200, text.encode("utf-8"), b"application/json",
                               _JSON_HEADERS)  # fmt: skip
                return
            pid, _, number = exchange_id.partition("-")
            error = "no such exchange (the history is bounded)"
            if _digits(pid) and _digits(number) and int(pid) != os.getpid():
                error = (
                    f"exchange {exchange_id} was served by another worker process (pid {pid}):"
                    " with --workers N each worker keeps a history of its own"
                )
            await _json(send, 404, {"error": error})
        else:
            await _json(send, 404, {"error": f"nothing at {path}"})

    def _file(self, name: str) -> bytes:
        return self._files[name]

    async def _echo(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = self.capture.exchange_for(scope)
        size = 0
        preview = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if len(preview) < ECHO_PREVIEW_BYTES:
                preview += chunk[: ECHO_PREVIEW_BYTES - len(preview)]
            more = message.get("more_body", False)
            if size > MAX_ECHO_BODY_BYTES:
                await _json(send, 413, {"error": "the echo reads at most 1 MiB"})
                return
        answer = {
            "exchange": exchange.id if exchange is not None else None,
            "method": scope["method"],
            "path": scope["path"],
            "query_string": bytes(scope.get("query_string", b"")).decode("latin-1"),
            "http_version": scope.get("http_version"),
            "body_bytes": size,
            "body": preview.decode("latin-1"),
        }
        extra = [(b"x-inspector-exchange", str(answer["exchange"]).encode("ascii"))]
        await _json(send, 200, answer, extra, head=scope["method"] == "HEAD")

    # -- raw requests

    async def raw(self, scope: Scope, body: bytes) -> tuple[int, dict[str, Any]]:
        """Write a raw request to this server's own address; see the module docstring."""
        server = scope.get("server")
        if not server or server[1] is None:
            return 409, {"error": "the server does not listen on TCP (a unix socket?)"}
        try:
            request = json.loads(body)
            texts = request["parts"]
            wait = request.get("wait", "pause")
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise TypeError("parts must be a list of strings")
            if wait not in ("pause", "interim"):
                raise ValueError('wait must be "pause" or "interim"')
            parts = [text.encode("latin-1") for text in texts]
        except RecursionError:  # json.loads of deeply nested arrays
            return 400, {"error": "the JSON is nested too deeply"}
        except (ValueError, KeyError, TypeError, UnicodeEncodeError) as exc:
            return 400, {"error": f"expected {{'parts': [latin-1 text, ...]}}: {exc}"}
        if not parts or len(parts) > RAW_MAX_PARTS:
            return 400, {"error": f"send 1 to {RAW_MAX_PARTS} parts"}
        if sum(map(len, parts)) > RAW_MAX_REQUEST_BYTES:
            return 413, {"error": "a raw request is at most 64 KiB"}
        with self._lock:
            if self._raw_running >= RAW_MAX_RUNNING:
                return 429, {"error": "too many raw requests at once"}
            self._raw_running += 1
        try:
            tls = scope.get("scheme") in ("https", "wss")
            return 200, await _exchange_raw(self.capture, str(server[0]), int(server[1]),
                                            parts, wait, tls)  # fmt: skip
        except OSError as exc:
            return 502, {"error": f"could not reach {server[0]}:{server[1]}: {exc}"}
        finally:
            with self._lock:
                self._raw_running -= 1

    # -- WebSocket

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if scope["path"].startswith(INTERNAL_PREFIX):
            await send({"type": "websocket.close", "code": 1008})
            return
        exchange = self.capture.exchange_for(scope)
        await send({"type": "websocket.accept"})
        hello = {"exchange": exchange.id if exchange is not None else None}
        await send({"type": "websocket.send", "text": json.dumps(hello)})
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return  # websocket.disconnect
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


async def _exchange_raw(
    capture: TraceCapture, host: str, port: int, parts: list[bytes], wait: str, tls: bool
) -> dict[str, Any]:
    context = None
    if tls:  # to this very server, on its own address: its certificate needs no check here
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["http/1.1"])
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + RAW_DEADLINE_S
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=context), RAW_DEADLINE_S
    )
    local = writer.get_extra_info("sockname")
    connection = logs.format_client((local[0], local[1]))
    received = bytearray()
    closed = False
    try:

        async def read(until: float) -> bool:
            """Read what comes before ``until``; True once the server closed."""
            remaining = until - loop.time()
            if remaining <= 0 or len(received) >= RAW_MAX_RESPONSE_BYTES:
                return False
            try:
                chunk = await asyncio.wait_for(
                    reader.read(RAW_MAX_RESPONSE_BYTES - len(received)), remaining
                )
            except (asyncio.TimeoutError, ConnectionError):
                return False
            if not chunk:
                return True
            received.extend(chunk)
            return False

        for index, part in enumerate(parts):
            if index:
                if wait == "interim":
                    before = len(received)
                    until = min(deadline, loop.time() + RAW_INTERIM_WAIT_S)
                    while len(received) == before and loop.time() < until and not closed:
                        closed = await read(until)
                else:
                    await asyncio.sleep(RAW_PAUSE_S)
            if closed:
                break
            writer.write(part)
            await writer.drain()
        while not closed and loop.time() < deadline:
            if len(received) >= RAW_MAX_RESPONSE_BYTES:
                break
            before = len(received)
            until = deadline if not received else min(deadline, loop.time() + RAW_IDLE_S)
            closed = await read(until)
            if len(received) == before and not closed:
                break  # quiet for RAW_IDLE_S after the answer began (or the deadline)
    finally:
        writer.close()
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
    exchanges = capture.exchanges_on(connection)
    answer: dict[str, Any] = {
        "exchanges": exchanges,
        "connection": connection,
        "sent": b"".join(parts).decode("latin-1"),
        "received": bytes(received).decode("latin-1"),
        "closed": closed,
        "elapsed_ms": round((loop.time() - started) * 1000, 1),
    }
    if not exchanges and not capture.saw(connection):
        # Several processes accept on one socket (--workers N): the one that answered keeps
        # the timeline, and this one cannot show it.
        answer["note"] = (
            "this connection was answered by another worker process (--workers N): its"
            " timeline is in that worker's history, not this one's"
        )
    return answer


# -- helpers


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).lower()
    return b""


LOOPBACK_NAMES = ("localhost", "localhost.")
PROXY_FIELDS = frozenset(
    {b"forwarded", b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto", b"x-real-ip"}
    | {b"via"}
)


def _loopback_address(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def refusal_of(scope: Scope) -> str | None:
    """Why the page and its API refuse this request, or None.

    The history holds every client's headers and bodies (cookies, tokens): only a client on
    this machine may read it. The client is the one after proxy headers. The Host must name
    this machine too, so that a page of another site whose name was rebound to 127.0.0.1
    (DNS rebinding) cannot read it from the browser."""
    for name, _ in scope.get("headers", ()):
        if name in PROXY_FIELDS:
            # Through a proxy, the client that counts is one the proxy names; a proxy trusted
            # with '*', or one that names no one, would let any client on the network read
            # the history as "127.0.0.1". The inspector is for a browser on this machine.
            return (
                "the inspector answers only clients on this machine, not through a proxy"
                f" ({bytes(name).decode('latin-1')})"
            )
    client = scope.get("client")
    server = scope.get("server")
    if client is None:
        if server is None or server[1] is None:
            pass  # a unix socket: only this machine can connect
        else:
            return "the inspector answers only clients on this machine (client unknown)"
    elif not _loopback_address(str(client[0])):
        return f"the inspector answers only clients on this machine, not {client[0]}"
    host = _header(scope, b"host").decode("latin-1")
    if host.startswith("["):
        name, bracket, rest = host[1:].partition("]")
        ok = bool(bracket) and (not rest or _port(rest)) and _loopback_address(name)
    else:
        name, colon, port = host.partition(":")
        ok = (not colon or _port(":" + port)) and (
            name in LOOPBACK_NAMES
            or name.endswith((".localhost", ".localhost."))
            or _loopback_address(name)
        )
    if not ok:
        return (
            "the inspector answers only a Host naming this machine (localhost, 127.0.0.1,"
            f" [::1]), not {host[:100]!r}"
        )
    return None


def _port(text: str) -> bool:
    """``:digits`` (an empty port is allowed by RFC 3986's ``port = *DIGIT``)."""
    return text.startswith(":") and (text == ":" or _digits(text[1:]))


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _query_int(query: bytes, name: bytes) -> int:
    for pair in bytes(query).split(b"&"):
        key, _, value = pair.partition(b"=")
        if key == name and value.isascii() and value.isdigit():
            return int(value)
    return 0


async def _drain(receive: Receive) -> None:
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return
        more = message.get("more_body", False)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None past ``limit`` bytes."""
    chunks = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    extra: list[tuple[bytes, bytes]] = [],  # noqa: B006 - never mutated
    *,
    head: bool = False,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode("ascii")),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _json(
    send: Send,
    status: int,
    value: Any,
    extra: list[tuple[bytes, bytes]] = [],  # noqa: B006 - never mutated
    *,
    head: bool = False,
) -> None:
    body = json.dumps(value, default=repr).encode("utf-8")
    headers = [*_JSON_HEADERS, *extra]
    await _respond(send, status, body, b"application/json", headers, head=head)
