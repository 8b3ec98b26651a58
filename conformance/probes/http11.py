"""Probe routes for the HTTP/1.1 framing group (paths under /http11/).

Each route answers in one known way, so that a check can tell from the wire whether the server
framed it right: a fixed body with a Content-Length, a streamed body without one, a 204 or 304,
the request body read whole and summed up, and a few responses an app gets wrong on purpose
(a Content-Length that does not match the body, a Transfer-Encoding header of its own, CR/LF in
a header). Each logs what it saw and whether ``send`` raised under the probe id.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .common import Handler, Message, Probe, Receive, Scope, Send, exception_name, respond

HELLO = b"Hello, world!"
STREAM_PARTS = [b"first part;", b"second part;", b"third part."]
LONG_BODY = b"0123456789"  # sent after a Content-Length of 5
SHORT_BODY = b"01234"  # sent after a Content-Length of 10
APP_TE_BODY = b"hello"  # sent as is after the app's own Transfer-Encoding: chunked
INJECTED = b"Injected: yes"  # the header line a response-splitting probe tries to add

# The header a splitting probe sends, by ``mode``: CR LF in a value, a bare LF in a value,
# CR LF in a name.
SPLIT_HEADERS: dict[str, tuple[bytes, bytes]] = {
    "crlf-value": (b"x-split", b"a\r\n" + INJECTED),
    "lf-value": (b"x-split", b"a\n" + INJECTED),
    "crlf-name": (b"x-split\r\n" + INJECTED.split(b":")[0], b"yes"),
}


async def hello(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """A fixed 13-byte body with a Content-Length; the request body is never read."""
    await respond(send, HELLO)


async def read_all(receive: Receive) -> tuple[bytes, list[int], str]:
    """The request body, the size of each ``http.request`` body, and how the messages ended."""
    body = b""
    sizes: list[int] = []
    while True:
        message = await receive()
        if message.get("type") != "http.request":
            return body, sizes, str(message.get("type"))
        chunk = bytes(message.get("body") or b"")
        body += chunk
        sizes.append(len(chunk))
        if not message.get("more_body", False):
            return body, sizes, "complete"


async def echo(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Read the whole request body; answer its length and sha256 as JSON."""
    probe.log("started")
    body, sizes, ending = await read_all(receive)
    digest = hashlib.sha256(body).hexdigest()
    probe.log("body", ending=ending, length=len(body), sha256=digest, messages=sizes)
    if ending != "complete":
        return
    answer = json.dumps({"length": len(body), "sha256": digest}).encode("ascii")
    await respond(send, answer, content_type=b"application/json")


def latin1(value: Any) -> str:
    return bytes(value).decode("latin-1") if isinstance(value, (bytes, bytearray)) else str(value)


async def inspect(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Log and answer (as JSON) the request line as the app sees it and the request headers."""
    seen = {
        "method": scope.get("method"),
        "path": scope.get("path"),
        "raw_path": latin1(scope.get("raw_path") or b""),
        "query_string": latin1(scope.get("query_string") or b""),
        "http_version": scope.get("http_version"),
        "headers": [[latin1(name), latin1(value)] for name, value in scope.get("headers") or []],
    }
    probe.log("scope", **seen)
    await read_all(receive)
    await respond(send, json.dumps(seen).encode("latin-1"), content_type=b"application/json")


async def count_headers(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Count the ``x-pad-*`` request headers and their bytes (for a huge header section)."""
    pads = [
        value
        for name, value in scope.get("headers") or []
        if bytes(name).lower().startswith(b"x-pad-")
    ]
    seen = {"count": len(pads), "bytes": sum(len(value) for value in pads)}
    probe.log("headers", **seen)
    await read_all(receive)
    await respond(send, json.dumps(seen).encode("ascii"), content_type=b"application/json")


async def stream(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """A body in three messages and an empty last one, with no Content-Length."""
    start = {"type": "http.response.start", "status": 200, "headers": [(b"x-probe", b"stream")]}
    await send(start)
    for part in STREAM_PARTS:
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    probe.log("sent")


async def status(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """``?code=204`` or ``?code=304``: that status with no framing header and an empty body."""
    code = int(probe.params.get("code", "204"))
    headers = [(b"etag", b'"probe"')] if code == 304 else []
    await send({"type": "http.response.start", "status": code, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
    probe.log("sent", status=code)


async def attempt(probe: Probe, step: str, send: Send, message: Message) -> None:
    """``send(message)``; if it raises, log what and let it out of the app (an app error)."""
    try:
        await send(message)
    except Exception as exc:
        probe.log("send-raised", step=step, exception=exception_name(exc), text=str(exc)[:200])
        raise
    probe.log("send-returned", step=step)


async def split(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """A response header with CR/LF in it (``?mode=`` one of ``SPLIT_HEADERS``)."""
    name, value = SPLIT_HEADERS[probe.params.get("mode", "crlf-value")]
    body = b"split\n"
    headers = [(name, value), (b"content-length", b"%d" % len(body))]
    await attempt(
        probe, "start", send, {"type": "http.response.start", "status": 200, "headers": headers}
    )
    await attempt(probe, "body", send, {"type": "http.response.body", "body": body})


async def long_body(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Declare a Content-Length of 5, then send 10 bytes."""
    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]}
    await attempt(probe, "start", send, start)
    await attempt(probe, "body", send, {"type": "http.response.body", "body": LONG_BODY})


async def short_body(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Declare a Content-Length of 10, send 5 bytes as the final body, and return."""
    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]}
    await attempt(probe, "start", send, start)
    await attempt(probe, "body", send, {"type": "http.response.body", "body": SHORT_BODY})
    probe.log("returned")


async def app_transfer_encoding(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """A ``transfer-encoding: chunked`` header from the app, and a body that is not chunked."""
    headers = [(b"content-type", b"text/plain"), (b"transfer-encoding", b"chunked")]
    await attempt(
        probe, "start", send, {"type": "http.response.start", "status": 200, "headers": headers}
    )
    await attempt(probe, "body", send, {"type": "http.response.body", "body": APP_TE_BODY})


HTTP_ROUTES: dict[str, Handler] = {
    "/http11/hello": hello,
    "/http11/echo": echo,
    "/http11/inspect": inspect,
    "/http11/count-headers": count_headers,
    "/http11/stream": stream,
    "/http11/status": status,
    "/http11/split": split,
    "/http11/long-body": long_body,
    "/http11/short-body": short_body,
    "/http11/app-transfer-encoding": app_transfer_encoding,
}
WEBSOCKET_ROUTES: dict[str, object] = {}
