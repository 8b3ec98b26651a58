"""Probe routes for the extensions group (paths under /ext/).

Every route first logs what the scope offered (``offered``: the names in
``scope["extensions"]`` and the request's HTTP version), since each check applies only where
the server advertises the extension it grades. A route whose extension is not offered says so
(``not-offered``) and answers a plain 200, so the check can tell "not applicable" from a server
that broke. Where the extension is offered, the route uses it in one known way and logs what
each ``send`` did.

The files a route sends (pathsend, zerocopysend) are written by the probe itself, beside the
event log, with bytes that ``file_bytes`` derives from the size alone, so the check knows them
without reading the file. A server may still be reading a file after ``send`` returns, so a
file is removed (or, for zerocopysend, closed: the app owns the descriptor) only ``KEEP_S``
later; whatever is left goes with the log's folder when the suite stops the server.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import os
import random
import shutil
import tempfile
from collections.abc import Callable
from typing import IO

from .common import Handler, Message, Probe, Receive, Scope, Send, respond, send_logged

PATHSEND = "http.response.pathsend"
ZEROCOPYSEND = "http.response.zerocopysend"
TRAILERS = "http.response.trailers"
EARLY_HINT = "http.response.early_hint"
DEBUG = "http.response.debug"

FILE_SIZE = 4 * 1024 * 1024 + 123  # several MiB, and not a multiple of any block size
SMALL_FILE_SIZE = 256 * 1024 + 7  # for the length errors: big enough not to fit one write
LENGTH_ERROR = 100  # how far the declared Content-Length is from the file's size
KEEP_S = 30.0  # how long a file outlives the send that named it

BODY_PARTS = [b"part one;", b"part two."]  # the body of a response with trailers
TRAILER_FIELDS = [(b"x-checksum", b"c0ffee"), (b"x-trailer-two", b"2")]
# Fields RFC 9110 §6.5.1 keeps out of trailers: message framing, routing, authentication and
# content format ("their evaluation is necessary prior to receiving the content").
FORBIDDEN_TRAILERS = [
    (b"content-length", b"5"),
    (b"transfer-encoding", b"chunked"),
    (b"host", b"example.com"),
    (b"www-authenticate", b"Basic"),
    (b"content-type", b"text/html"),
]
LINKS = [b"</style.css>; rel=preload; as=style", b"</script.js>; rel=preload; as=script"]
HINTED_BODY = b"hinted\n"

# zerocopysend mixed with body messages: (a body, or a slice of the file), in order. A slice
# with an offset of None is read from the file's current position, which the probe sets first.
MIXED_HEAD = b"head;"
MIXED_MIDDLE = b"middle;"
MIXED_SLICES = [(1000, 70_000), (None, 50_000)]
MIXED_POSITION = 300_000  # where the file stands before the slice without an offset


@functools.lru_cache(maxsize=4)
def file_bytes(size: int) -> bytes:
    """The contents of a probe's file of ``size`` bytes: the same in every process, and without
    a period, so a piece sent from the wrong offset never matches by chance."""
    return random.Random(size).randbytes(size)


def mixed_body() -> bytes:
    """What the zerocopysend-mixed route's response body must be."""
    data = file_bytes(FILE_SIZE)
    (offset, count), (_, rest) = MIXED_SLICES
    assert offset is not None
    return (
        MIXED_HEAD
        + data[offset : offset + count]
        + MIXED_MIDDLE
        + data[MIXED_POSITION : MIXED_POSITION + rest]
    )


@functools.lru_cache(maxsize=1)
def file_directory() -> str:
    """Beside the event log, in the folder the suite removes when it stops the server (however
    the server ends); without a log, a folder removed when this process exits."""
    log = os.environ.get("CONFORMANCE_LOG")
    if log:
        path = os.path.join(os.path.dirname(os.path.abspath(log)), "files")
        os.makedirs(path, exist_ok=True)
        return path
    path = tempfile.mkdtemp(prefix="conformance-files-")
    atexit.register(shutil.rmtree, path, True)
    return path


def write_file(size: int) -> str:
    """A new file of ``file_bytes(size)`` in the probe's directory; its absolute path."""
    fd, path = tempfile.mkstemp(dir=file_directory(), suffix=".bin")
    with os.fdopen(fd, "wb") as file:
        file.write(file_bytes(size))
    return os.path.abspath(path)


def later(action: Callable[[], object]) -> None:
    """Run ``action`` ``KEEP_S`` from now, on this loop."""

    def run() -> None:
        with contextlib.suppress(OSError):
            action()

    asyncio.get_running_loop().call_later(KEEP_S, run)


def offered(scope: Scope, probe: Probe, *needed: str) -> bool:
    """Log what the scope offered; whether it offers every extension in ``needed``."""
    extensions = scope.get("extensions")
    names = sorted(extensions) if isinstance(extensions, dict) else []
    probe.log(
        "offered",
        extensions=names,
        raw=repr(extensions)[:200],
        http_version=scope.get("http_version"),
        method=scope.get("method"),
    )
    if all(name in names for name in needed):
        return True
    probe.log("not-offered", needed=list(needed))
    return False


async def drain(receive: Receive) -> None:
    """Read the request body (the probes' requests have none) so it is not left unread."""
    message = await asyncio.wait_for(receive(), 5.0)
    while message.get("type") == "http.request" and message.get("more_body"):
        message = await asyncio.wait_for(receive(), 5.0)


async def attempt(probe: Probe, step: str, send: Send, message: Message) -> bool:
    return await send_logged(probe, step, send, message)


def start(headers: list[tuple[bytes, bytes]], **extra: object) -> Message:
    return {"type": "http.response.start", "status": 200, "headers": headers, **extra}


# -- the routes


async def scope_only(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Log what the scope offered; answer 200."""
    offered(scope, probe)
    await drain(receive)
    await respond(send, b"offered logged\n")
    probe.log("done")


async def not_offered(send: Send) -> None:
    await respond(send, b"not offered\n")


async def pathsend(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Send a file by path. ``size``: the file's; ``declared``: the Content-Length the app
    gives, "exact", "none", "longer" (the file is LENGTH_ERROR bytes longer than declared) or
    "shorter" (the file is that much shorter)."""
    await drain(receive)
    if not offered(scope, probe, PATHSEND):
        await not_offered(send)
        return
    size = int(probe.params.get("size", FILE_SIZE))
    declared = {
        "exact": size,
        "longer": size - LENGTH_ERROR,
        "shorter": size + LENGTH_ERROR,
    }.get(probe.params.get("declared", "exact"))
    headers = [(b"content-type", b"application/octet-stream")]
    if declared is not None:
        headers.append((b"content-length", b"%d" % declared))
    path = write_file(size)
    later(functools.partial(os.unlink, path))
    if await attempt(probe, "start", send, start(headers)):
        await attempt(probe, "pathsend", send, {"type": PATHSEND, "path": path})
    probe.log("done")


async def pathsend_after_body(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """A body with more_body, then a pathsend (which cannot be mixed with body messages), then
    the final (empty) body."""
    await drain(receive)
    if not offered(scope, probe, PATHSEND):
        await not_offered(send)
        return
    path = write_file(SMALL_FILE_SIZE)
    later(functools.partial(os.unlink, path))
    headers = [(b"content-type", b"application/octet-stream")]
    body = {"type": "http.response.body", "body": BODY_PARTS[0], "more_body": True}
    if await attempt(probe, "start", send, start(headers)) and await attempt(
        probe, "body", send, body
    ):
        await attempt(probe, "pathsend", send, {"type": PATHSEND, "path": path})
        await attempt(probe, "final-body", send, {"type": "http.response.body"})
    probe.log("done")


def open_file(size: int) -> IO[bytes]:
    """The probe's file, opened for zerocopysend; its name is gone at once (the open file stays
    readable), and the file is closed ``KEEP_S`` later."""
    path = write_file(size)
    file = open(path, "rb")  # noqa: SIM115 - closed later, after the server is done with it
    os.unlink(path)
    later(file.close)
    return file


async def zerocopysend(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """The whole file by zerocopysend, without offset or count, with its Content-Length."""
    await drain(receive)
    if not offered(scope, probe, ZEROCOPYSEND):
        await not_offered(send)
        return
    file = open_file(FILE_SIZE)
    headers = [
        (b"content-type", b"application/octet-stream"),
        (b"content-length", b"%d" % FILE_SIZE),
    ]
    if await attempt(probe, "start", send, start(headers)):
        await attempt(probe, "zerocopysend", send, {"type": ZEROCOPYSEND, "file": file})
    probe.log("done")


async def zerocopysend_mixed(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """A body, a slice of the file by offset and count, a body, and a slice from the file's
    current position; no Content-Length (the server frames it)."""
    await drain(receive)
    if not offered(scope, probe, ZEROCOPYSEND):
        await not_offered(send)
        return
    file = open_file(FILE_SIZE)
    (offset, count), (_, rest) = MIXED_SLICES
    steps: list[tuple[str, Message]] = [
        ("body-head", {"type": "http.response.body", "body": MIXED_HEAD, "more_body": True}),
        (
            "zerocopysend-offset",
            {
                "type": ZEROCOPYSEND,
                "file": file,
                "offset": offset,
                "count": count,
                "more_body": True,
            },
        ),
        ("body-middle", {"type": "http.response.body", "body": MIXED_MIDDLE, "more_body": True}),
        ("zerocopysend-position", {"type": ZEROCOPYSEND, "file": file, "count": rest}),
    ]
    if await attempt(probe, "start", send, start([(b"content-type", b"text/plain")])):
        for step, message in steps:
            if step == "zerocopysend-position":
                file.seek(MIXED_POSITION)
            if not await attempt(probe, step, send, message):
                break
    probe.log("done")


async def trailers(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """A response that announces trailers: two body parts, no Content-Length, then the
    trailers; ``fields=forbidden`` adds fields RFC 9110 §6.5.1 keeps out of trailers."""
    await drain(receive)
    if not offered(scope, probe, TRAILERS):
        await not_offered(send)
        return
    fields = list(TRAILER_FIELDS)
    if probe.params.get("fields") == "forbidden":
        fields += FORBIDDEN_TRAILERS
    steps: list[tuple[str, Message]] = [
        ("start", start([(b"content-type", b"text/plain")], trailers=True)),
        ("body", {"type": "http.response.body", "body": BODY_PARTS[0], "more_body": True}),
        ("final-body", {"type": "http.response.body", "body": BODY_PARTS[1]}),
        ("trailers", {"type": TRAILERS, "headers": fields, "more_trailers": False}),
    ]
    for step, message in steps:
        if not await attempt(probe, step, send, message):
            break
    probe.log("done")


async def early_hint(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
    """Start, an early hint with two links, then the body (the order the spec gives: after
    Response Start, before the final Response Body)."""
    await drain(receive)
    if not offered(scope, probe, EARLY_HINT):
        await not_offered(send)
        return
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(HINTED_BODY))]
    steps: list[tuple[str, Message]] = [
        ("start", start(headers)),
        ("early-hint", {"type": EARLY_HINT, "links": list(LINKS)}),
        ("body", {"type": "http.response.body", "body": HINTED_BODY}),
    ]
    for step, message in steps:
        if not await attempt(probe, step, send, message):
            break
    probe.log("done")


HTTP_ROUTES: dict[str, Handler] = {
    "/ext/scope": scope_only,
    "/ext/pathsend": pathsend,
    "/ext/pathsend-after-body": pathsend_after_body,
    "/ext/zerocopysend": zerocopysend,
    "/ext/zerocopysend-mixed": zerocopysend_mixed,
    "/ext/trailers": trailers,
    "/ext/early-hint": early_hint,
}
