"""Probe routes for the asgi-http group (paths under /asgi/).

Each route behaves in one known way (a valid response, an invalid ``send``, a raise, a return
without a response, a wait in ``receive``) and logs what the server did to it: the scope it
was given (with the Python types kept), each message ``receive`` returned, and whether each
``send`` returned, raised (and what) or hung. The checks in ``checks/asgi_http.py`` read that
log and the wire. Every wait in here has a deadline (``wait`` in the query string, in seconds),
so a server that never answers leaves a "timeout" event behind instead of a stuck app.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

from .common import (
    Handler,
    Message,
    Probe,
    Receive,
    Scope,
    Send,
    describe_value,
    log_send_raised,
    receive_within,
    respond,
    send_logged,
)

DEFAULT_WAIT_S = 3.0  # how long a probe waits for the server when the check names no deadline
EXTRA_MARKER = b"EXTRA-BODY-AFTER-COMPLETE"  # must never reach the wire
EARLY_MARKER = b"EARLY-BODY-BEFORE-START"  # must never reach the wire


def probe_of(scope: Scope, probe: Probe) -> Probe:
    """The probe id from the query string, or else from an ``x-probe-id`` request header."""
    if probe.id:
        return probe
    try:
        for name, value in scope.get("headers") or []:
            if bytes(name).lower() == b"x-probe-id":
                return Probe(bytes(value).decode("latin-1"), {})
    except (TypeError, ValueError):
        pass
    return probe


def wait_s(probe: Probe) -> float:
    try:
        return float(probe.params.get("wait", DEFAULT_WAIT_S))
    except ValueError:
        return DEFAULT_WAIT_S


async def attempt(probe: Probe, step: str, send: Send, message: Message) -> bool:
    """``send_logged`` with the deadline the check gave the probe (``wait``)."""
    return await send_logged(probe, step, send, message, wait_s(probe))


async def respond_logged(probe: Probe, send: Send, start: Message, body: Message) -> None:
    """Send ``start`` and, if it returned, ``body`` (logged as steps "start" and "body"); then
    log "done"."""
    if await attempt(probe, "start", send, start):
        await attempt(probe, "body", send, body)
    probe.log("done")


async def next_message(probe: Probe, receive: Receive, step: str) -> Message | None:
    """``receive()`` with the probe's deadline; logs the message described, or that none came."""
    message = await receive_within(probe, receive, step, wait_s(probe))
    if message is None:
        return None
    probe.log(
        "receive",
        step=step,
        outcome="message",
        type=message.get("type"),
        message=describe_value({key: trimmed(key, value) for key, value in message.items()}),
        body_length=len(message.get("body") or b""),
    )
    return message


def trimmed(key: str, value: Any) -> Any:
    """A body keeps its type in the log but not its bytes (the length is logged apart)."""
    if key == "body" and isinstance(value, (bytes, bytearray, str)):
        return value[:0]
    return value


async def read_body(probe: Probe, receive: Receive) -> bytes | None:
    """The whole request body, or None if the messages ended otherwise."""
    body = b""
    while True:
        message = await next_message(probe, receive, "request")
        if message is None or message.get("type") != "http.request":
            return None
        chunk = message.get("body", b"")
        if isinstance(chunk, (bytes, bytearray)):
            body += chunk
        if not message.get("more_body", False):
            return body


# -- the scope


async def scope_probe(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Log the scope with its types, read the body, answer 200."""
    probe = probe_of(scope, probe)
    probe.log("scope", scope=describe_value(dict(scope)))
    await read_body(probe, receive)
    await respond(send, b"scope logged\n")


async def websocket_scope_probe(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Log the WebSocket scope with its types, accept, then close."""
    probe = probe_of(scope, probe)
    probe.log("scope", scope=describe_value(dict(scope)))
    message = await next_message(probe, receive, "connect")
    if message is None or message.get("type") != "websocket.connect":
        return
    if await attempt(probe, "accept", send, {"type": "websocket.accept"}):
        await attempt(probe, "close", send, {"type": "websocket.close", "code": 1000})


# -- request messages


async def echo_body(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Read the body, logging every message; answer with its sha256 and length."""
    probe.log("started")
    body = await read_body(probe, receive)
    if body is None:
        probe.log("body", complete=False)
        return
    digest = hashlib.sha256(body).hexdigest()
    probe.log("body", complete=True, sha256=digest, length=len(body))
    await respond(send, f"{digest} {len(body)}\n".encode("ascii"))


# -- invalid and surplus sends


INVALID_SENDS: dict[str, list[Message]] = {
    # variant -> messages; the last one is the invalid one, the ones before are valid
    "str-header-name": [
        {"type": "http.response.start", "status": 200, "headers": [("x-str-name", b"1")]}
    ],
    "missing-status": [{"type": "http.response.start", "headers": []}],
    "unknown-type": [{"type": "http.response.no-such-message"}],
    "str-body": [
        {"type": "http.response.start", "status": 200, "headers": []},
        {"type": "http.response.body", "body": "a str, not bytes"},
    ],
}


async def invalid_send(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Send valid messages, then the invalid one of the variant; log what ``send`` did."""
    await read_body(probe, receive)
    messages = INVALID_SENDS[probe.params.get("variant", "")]
    for index, message in enumerate(messages):
        last = index == len(messages) - 1
        returned = await attempt(probe, "invalid" if last else "valid", send, message)
        if not last and not returned:
            return
    probe.log("done")


async def extra_keys(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """A response whose messages carry keys the spec does not define."""
    await read_body(probe, receive)
    body = b"extra keys\n"
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))],
        "x-probe-extra": "ignored",
        "another_extra": {"nested": [1, 2]},
    }
    body_message = {"type": "http.response.body", "body": body, "x-probe-extra": b"ignored"}
    await respond_logged(probe, send, start, body_message)


async def double_start(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Two ``http.response.start`` in a row, then a body."""
    await read_body(probe, receive)
    body = b"first start\n"
    headers = [(b"content-length", b"%d" % len(body))]
    first = {"type": "http.response.start", "status": 200, "headers": headers}
    second = {"type": "http.response.start", "status": 201, "headers": headers}
    if await attempt(probe, "first-start", send, first):
        await attempt(probe, "second-start", send, second)
        await attempt(probe, "body", send, {"type": "http.response.body", "body": body})
    probe.log("done")


async def body_before_start(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """A body first, then a whole response."""
    await read_body(probe, receive)
    body = b"after the early body\n"
    await attempt(probe, "early-body", send, {"type": "http.response.body", "body": EARLY_MARKER})
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-length", b"%d" % len(body))],
    }
    await respond_logged(probe, send, start, {"type": "http.response.body", "body": body})


async def body_after_complete(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """A complete Content-Length response, then one more body message."""
    await read_body(probe, receive)
    await respond(send, b"complete\n")
    await attempt(probe, "extra-body", send, {"type": "http.response.body", "body": EXTRA_MARKER})
    probe.log("done")


async def ok(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    await read_body(probe, receive)
    probe.log("ok")
    await respond(send, b"ok\n")


# -- the app fails


async def raise_before_start(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    await read_body(probe, receive)
    probe.log("raising")
    raise RuntimeError("probe: raised before http.response.start")


async def no_response_start(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    await read_body(probe, receive)
    probe.log("returning")


async def raise_after_start(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Start a streamed response (no Content-Length), send part of it, then raise."""
    await read_body(probe, receive)
    if await start_streaming(probe, send):
        probe.log("raising")
        raise RuntimeError("probe: raised after the first part of the body")


async def return_before_final_body(
    scope: Scope, receive: Receive, send: Send, probe: Probe
) -> None:
    """Start a streamed response (no Content-Length), send part of it, then return."""
    await read_body(probe, receive)
    if await start_streaming(probe, send):
        probe.log("returning")


async def start_streaming(probe: Probe, send: Send) -> bool:
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/plain")],
    }
    part = {"type": "http.response.body", "body": b"first part\n", "more_body": True}
    return await attempt(probe, "start", send, start) and await attempt(probe, "part", send, part)


# -- disconnect


async def disconnect_after_response(
    scope: Scope, receive: Receive, send: Send, probe: Probe
) -> None:
    """Answer (reading the body first only with ``read=1``), then call ``receive()`` twice."""
    if probe.params.get("read") == "1":
        await read_body(probe, receive)
    await respond(send, b"answered; now receiving\n")
    probe.log("responded")
    for step in ("after-response-1", "after-response-2"):
        message = await next_message(probe, receive, step)
        if message is None or message.get("type") == "http.disconnect":
            break
    probe.log("done")


async def wait_disconnect(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Read the request, then wait in ``receive()`` (a long poll) for the client to go."""
    await read_body(probe, receive)
    probe.log("waiting")
    await next_message(probe, receive, "waiting")
    probe.log("done")


async def send_after_disconnect(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Wait for ``http.disconnect``, then send a response; with ``reraise=1`` let it propagate."""
    await read_body(probe, receive)
    probe.log("waiting")
    await next_message(probe, receive, "waiting")
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-length", b"6")],
    }
    body = {"type": "http.response.body", "body": b"late!\n"}
    if probe.params.get("reraise") == "1":
        await let_send_error_propagate(probe, send, start, body)
        return
    await respond_logged(probe, send, start, body)


async def let_send_error_propagate(probe: Probe, send: Send, start: Message, body: Message) -> None:
    """Send, and let whatever ``send`` raises out of the app.

    The check looks for this function's name in the server's output: it is there only if the
    server logged a traceback of the error.
    """
    for step, message in (("start", start), ("body", body)):
        try:
            await asyncio.wait_for(send(message), wait_s(probe))
        except asyncio.TimeoutError:
            probe.log("send", step=step, outcome="hung")
            return
        except BaseException as exc:
            log_send_raised(probe, step, exc)
            probe.log("reraising")
            raise
        probe.log("send", step=step, outcome="returned")
    probe.log("done")


PROPAGATING_FUNCTION = let_send_error_propagate.__name__


# -- responses


async def response_headers(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Headers with duplicates in a known order."""
    await read_body(probe, receive)
    body = b"headers\n"
    headers = [
        (b"set-cookie", b"a=1"),
        (b"x-order", b"first"),
        (b"set-cookie", b"b=2"),
        (b"x-order", b"second"),
        (b"set-cookie", b"c=3"),
        (b"content-length", b"%d" % len(body)),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def content_length(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """A Content-Length response whose body comes in three messages."""
    await read_body(probe, receive)
    parts = [b"alpha-", b"beta-", b"gamma\n"]
    length = sum(len(part) for part in parts)
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % length)],
    }
    await send(start)
    for index, part in enumerate(parts):
        more = index < len(parts) - 1
        await send({"type": "http.response.body", "body": part, "more_body": more})


STREAM_PARTS = [b"part-%d;" % index * 50 for index in range(8)]


async def stream(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """A body in eight messages, with no Content-Length, and an empty final message."""
    await read_body(probe, receive)
    start = {"type": "http.response.start", "status": 200, "headers": [(b"x-stream", b"1")]}
    await send(start)
    for part in STREAM_PARTS:
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


FLUSH_FIRST = b"sent before the release\n"
FLUSH_REST = b"sent after the release\n"


async def flush(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Send the first part, wait until /asgi/release is requested, then send the rest.

    The release is seen through the event log (so it works across workers and threads).
    """
    await read_body(probe, receive)
    start = {"type": "http.response.start", "status": 200, "headers": []}
    first = {"type": "http.response.body", "body": FLUSH_FIRST, "more_body": True}
    if not (
        await attempt(probe, "start", send, start) and await attempt(probe, "first", send, first)
    ):
        return
    released = await wait_for_event(probe.id, "release", wait_s(probe))
    probe.log("released" if released else "not-released")
    await attempt(probe, "rest", send, {"type": "http.response.body", "body": FLUSH_REST})


async def release(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    await read_body(probe, receive)
    probe.log("release")
    await respond(send, b"released\n")


async def wait_for_event(probe_id: str, event: str, timeout_s: float) -> bool:
    path = os.environ.get("CONFORMANCE_LOG")
    if not path:
        return False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        with open(path, encoding="utf-8") as file:
            for line in file:
                if probe_id not in line:
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("probe") == probe_id and record.get("event") == event:
                    return True
        await asyncio.sleep(0.02)
    return False


def header_generator(body: bytes) -> Iterator[tuple[bytes, bytes]]:
    yield (b"content-type", b"text/plain")
    yield (b"x-from-iterable", b"generator")
    yield (b"content-length", b"%d" % len(body))


async def headers_iterable(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Response headers as a tuple of tuples, a list of lists or a generator (``kind``)."""
    await read_body(probe, receive)
    kind = probe.params.get("kind", "tuple")
    body = f"headers as {kind}\n".encode("ascii")
    headers: Any
    if kind == "generator":
        headers = header_generator(body)
    elif kind == "lists":
        headers = [
            [b"content-type", b"text/plain"],
            [b"x-from-iterable", b"lists"],
            [b"content-length", b"%d" % len(body)],
        ]
    else:
        headers = (
            (b"content-type", b"text/plain"),
            (b"x-from-iterable", b"tuple"),
            (b"content-length", b"%d" % len(body)),
        )
    start = {"type": "http.response.start", "status": 200, "headers": headers}
    await respond_logged(probe, send, start, {"type": "http.response.body", "body": body})


async def uppercase_header(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """A response header name in upper case, against the app's 'must be lowercased'."""
    await read_body(probe, receive)
    body = b"upper\n"
    headers = [(b"X-Upper-Case", b"kept"), (b"content-length", b"%d" % len(body))]
    start = {"type": "http.response.start", "status": 200, "headers": headers}
    await respond_logged(probe, send, start, {"type": "http.response.body", "body": body})


# The scope probe answers at the path as it should be decoded and at the ways a server might
# get that wrong, so that the check can say what the path was.
SCOPE_PATH_RAW = "/asgi/scope/caf%C3%A9%20x"
SCOPE_PATH = "/asgi/scope/caf\u00e9 x"
SCOPE_PATHS = [
    "/asgi/scope",
    SCOPE_PATH,
    SCOPE_PATH_RAW,
    "/asgi/scope/caf\u00c3\u00a9 x",  # percent-decoded, then read as latin-1
    "/asgi/scope/caf%C3%A9 x",
    "/asgi/scope/caf\u00e9%20x",
]
WEBSOCKET_SCOPE_PATHS = [path.replace("/asgi/scope", "/asgi/ws-scope") for path in SCOPE_PATHS]

HTTP_ROUTES: dict[str, Handler] = {
    **{path: scope_probe for path in SCOPE_PATHS},
    "/asgi/echo-body": echo_body,
    "/asgi/invalid-send": invalid_send,
    "/asgi/extra-keys": extra_keys,
    "/asgi/double-start": double_start,
    "/asgi/body-before-start": body_before_start,
    "/asgi/body-after-complete": body_after_complete,
    "/asgi/ok": ok,
    "/asgi/raise-before-start": raise_before_start,
    "/asgi/no-response-start": no_response_start,
    "/asgi/raise-after-start": raise_after_start,
    "/asgi/return-before-final-body": return_before_final_body,
    "/asgi/disconnect-after-response": disconnect_after_response,
    "/asgi/wait-disconnect": wait_disconnect,
    "/asgi/send-after-disconnect": send_after_disconnect,
    "/asgi/response-headers": response_headers,
    "/asgi/content-length": content_length,
    "/asgi/stream": stream,
    "/asgi/flush": flush,
    "/asgi/release": release,
    "/asgi/headers-iterable": headers_iterable,
    "/asgi/uppercase-header": uppercase_header,
}
WEBSOCKET_ROUTES: dict[str, Handler] = {
    path: websocket_scope_probe for path in WEBSOCKET_SCOPE_PATHS
}
