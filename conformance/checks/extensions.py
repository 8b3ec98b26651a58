"""The ASGI extensions on HTTP/1.1: pathsend, zerocopysend, trailers, early hints and debug.

Each check applies only where the server advertises the extension in ``scope["extensions"]``:
the probe route logs what the scope offered, and a check whose extension was not offered is not
applicable. An extension that is offered must work: a ``send`` of its message that raises, or a
response that comes out wrong, fails ("advertises without supporting" is a failure). Everything
is graded on the wire with the suite's own client: the file's bytes exactly, the framing, the
trailer section, the interim responses. Where a response is followed by a pipelined request for
/http11/hello, that second response shows whether the first ended where its framing said.

Advertising is per request: trailers need chunked coding and early hints a 1xx response, and an
HTTP/1.0 client gets neither, so those two are also graded on an HTTP/1.0 request. Debug is a
test client's extension that the spec says servers should not implement: it is graded as never
offered.
"""

from __future__ import annotations

import dataclasses

from ..client import NoResponse, Reply, Response, request_bytes
from ..framework import (
    NOT_APPLICABLE,
    READING,
    SHOULD,
    Context,
    Result,
    check,
    failed,
    not_applicable,
    passed,
    verdict,
)
from ..probes.extensions import (
    BODY_PARTS,
    DEBUG,
    EARLY_HINT,
    FILE_SIZE,
    FORBIDDEN_TRAILERS,
    HINTED_BODY,
    LENGTH_ERROR,
    LINKS,
    PATHSEND,
    SMALL_FILE_SIZE,
    TRAILER_FIELDS,
    TRAILERS,
    ZEROCOPYSEND,
    file_bytes,
    mixed_body,
)
from .asgi_http import send_outcome
from .common import Events, closed_without_response, find_event, open_http, probe_target
from .http11 import grade_pipelined, hello_request

PATH_SEND = "ASGI extensions, Path Send"
ZERO_COPY_SEND = "ASGI extensions, Zero Copy Send"
HTTP_TRAILERS = "ASGI extensions, HTTP Trailers"
EARLY_HINTS = "ASGI extensions, Early Hints"
TE_TRAILERS = [("TE", "trailers"), ("Connection", "TE")]  # RFC 9110 §10.1.4: TE is hop-by-hop


# -- one request to a probe route, and what came of it


@dataclasses.dataclass
class Trip:
    """A request to an extensions probe: the response, the response to a request pipelined
    after it (if one was), whether the server closed the connection, and the probe's log."""

    what: str  # the request in words, to begin an observed text
    reply: Reply
    after: Reply | None
    closed: bool
    events: Events

    def offered(self) -> list[str] | None:
        """The extensions the scope offered, or None if the probe app was not reached."""
        record = find_event(self.events, "offered")
        return None if record is None else list(record.get("extensions") or [])

    def unusable(self, extension: str) -> Result | None:
        """Not applicable if ``extension`` was not offered, a failure if the app was not
        reached; None when the check can go on."""
        names = self.offered()
        if names is None:
            reply = self.reply.describe()
            return failed(f"{self.what}: {reply}, and the probe app was not reached")
        if extension not in names:
            return not_applicable(f"{extension} not offered: scope['extensions'] had {names}")
        return None

    def sent(self, step: str) -> str:
        return f"send({step}) {send_outcome(find_event(self.events, 'send', step=step))}"

    def raised(self, *steps: str) -> list[str]:
        """The steps whose send did not return, each in words."""
        problems = []
        for step in steps:
            record = find_event(self.events, "send", step=step)
            if record is None or record.get("outcome") != "returned":
                problems.append(self.sent(step))
        return problems


def ended(events: Events) -> bool:
    return bool(find_event(events, "done") or find_event(events, "not-offered"))


def trip(
    ctx: Context,
    path: str,
    what: str,
    *,
    method: str = "GET",
    version: str = "HTTP/1.1",
    headers: list[tuple[str, str]] | None = None,
    pipeline: bool = True,
    timeout_s: float | None = None,
    **params: str,
) -> Trip:
    """Send one request to the probe route ``path`` (with a hello request pipelined behind it
    if ``pipeline``) and read what came back."""
    probe_id = ctx.new_id("ext")
    target = probe_target(path, probe_id, **params)
    raw = request_bytes(method, target, headers, version=version)
    with open_http(ctx) as connection:
        connection.send(raw + (hello_request() if pipeline else b""))
        reply = connection.read_reply(method, timeout_s)
        after: Reply | None = None
        if pipeline:
            # After no response at all, the NoResponse that says why stands for both.
            after = reply if isinstance(reply, NoResponse) else connection.read_reply()
        closed = connection.eof
    events = ctx.wait_events(probe_id, ended, ctx.options.io_timeout_s)
    return Trip(what, reply, after, closed, events)


def first_difference(got: bytes, wanted: bytes) -> str:
    """Where ``got`` departs from ``wanted``, in words."""
    common = min(len(got), len(wanted))
    for block in range(0, common, 4096):  # block by block: the bodies are MiB long
        end = min(block + 4096, common)
        if got[block:end] != wanted[block:end]:
            index = next(i for i in range(block, end) if got[i] != wanted[i])
            return f"differs from the bytes due at byte {index}"
    if len(got) < len(wanted):
        return f"is the first {len(got)} of the {len(wanted)} bytes due"
    return f"is the {len(wanted)} bytes due and {len(got) - len(wanted)} more"


def grade_body(trip: Trip, wanted: bytes, steps: tuple[str, ...], what: str) -> Result:
    """The response is a complete 200 whose body is ``wanted`` (``what`` names it), each send
    of ``steps`` returned, and the request pipelined after it was answered (or the connection
    closed)."""
    reply = trip.reply
    sends = trip.raised(*steps)
    observed = f"{trip.what}: {reply.describe()}"
    if sends:
        return failed(f"{observed}; {'; '.join(sends)}")
    if not isinstance(reply, Response):
        return failed(observed)
    if reply.status != 200 or not reply.complete or reply.body != wanted:
        if reply.body != wanted:
            observed += f"; the body {first_difference(reply.body, wanted)}"
        return failed(observed)
    assert trip.after is not None
    return grade_pipelined(f"{observed}, {what} exactly", trip.after)


# -- debug


@check(
    "extensions.debug-not-offered",
    title="http.response.debug is never offered",
    clause="ASGI extensions, Debug",
    level=SHOULD,
)
def debug_not_offered(ctx: Context) -> Result:
    """Extensions, Debug: "This extension is not meant to be used in production, only for
    testing purposes, and ASGI servers should not implement it." """
    result = trip(ctx, "/ext/scope", "a GET", pipeline=False, timeout_s=ctx.options.hang_s)
    names = result.offered()
    if names is None:
        return failed(f"a GET: {result.reply.describe()}, and the probe app was not reached")
    return verdict(DEBUG not in names, f"scope['extensions'] had {names}")


# -- pathsend


@check(
    "extensions.pathsend-bytes",
    title="pathsend sends the file's bytes exactly (a file of several MiB, its Content-Length)",
    clause=PATH_SEND,
)
def pathsend_bytes(ctx: Context) -> Result:
    result = trip(ctx, "/ext/pathsend", f"a pathsend of a {FILE_SIZE}-byte file")
    unusable = result.unusable(PATHSEND)
    if unusable is not None:
        return unusable
    return grade_body(result, file_bytes(FILE_SIZE), ("start", "pathsend"), "the file's bytes")


@check(
    "extensions.pathsend-unframed",
    title="pathsend without a Content-Length: the server frames the file, bytes exact",
    clause=PATH_SEND,
)
def pathsend_unframed(ctx: Context) -> Result:
    """Path Send "otherwise behaves as a final http.response.body": without a Content-Length
    from the app the server frames it, as it does a body (chunked, or a close)."""
    what = f"a pathsend of a {FILE_SIZE}-byte file without a Content-Length"
    result = trip(ctx, "/ext/pathsend", what, declared="none")
    unusable = result.unusable(PATHSEND)
    if unusable is not None:
        return unusable
    return grade_body(result, file_bytes(FILE_SIZE), ("start", "pathsend"), "the file's bytes")


@check(
    "extensions.pathsend-head",
    title="pathsend in answer to HEAD: the head only, no file bytes on the wire",
    clause="RFC 9110 §9.3.2",
)
def pathsend_head(ctx: Context) -> Result:
    """RFC 9110 §9.3.2: "The HEAD method is identical to GET except that the server MUST NOT
    send content in the response." A file byte after the head would be read as the start of the
    response to the request pipelined after it."""
    what = f"HEAD for a pathsend of a {FILE_SIZE}-byte file"
    result = trip(ctx, "/ext/pathsend", what, method="HEAD")
    unusable = result.unusable(PATHSEND)
    if unusable is not None:
        return unusable
    reply = result.reply
    observed = f"{what}: {reply.describe()}"
    if isinstance(reply, Response):
        length = reply.header(b"content-length")
        observed += f" with Content-Length {length!r}" if length else " without Content-Length"
    sends = result.raised("start", "pathsend")
    if sends:
        return failed(f"{observed}; {'; '.join(sends)}")
    if not isinstance(reply, Response) or reply.status != 200:
        return failed(observed)
    assert result.after is not None
    if isinstance(result.after, NoResponse) and file_bytes(FILE_SIZE)[:16] in result.after.data:
        return failed(f"{observed}; then the file's bytes: {result.after.describe()}")
    return grade_pipelined(observed, result.after)


@check(
    "extensions.pathsend-file-shorter",
    title="a file shorter than the Content-Length: the response is cut and the connection closed",
    clause="reading: body-shorter-than-content-length",
    level=READING,
)
def pathsend_file_shorter(ctx: Context) -> Result:
    """The same error as a body shorter than its Content-Length: the response must not look
    complete (RFC 9112 §8: a message shorter than its Content-Length is incomplete), so the
    client is told by the close instead of waiting for bytes that never come."""
    what = (
        f"a pathsend of a {SMALL_FILE_SIZE}-byte file after Content-Length "
        f"{SMALL_FILE_SIZE + LENGTH_ERROR}"
    )
    result = trip(
        ctx,
        "/ext/pathsend",
        what,
        pipeline=False,
        timeout_s=ctx.options.hang_s,
        size=str(SMALL_FILE_SIZE),
        declared="shorter",
    )
    unusable = result.unusable(PATHSEND)
    if unusable is not None:
        return unusable
    reply = result.reply
    observed = f"{what} ({result.sent('pathsend')}): {reply.describe()}"
    if isinstance(reply, NoResponse):
        return verdict(closed_without_response(reply), observed)
    if reply.complete:
        # A server that held the head back may answer with an error of its own instead.
        return verdict(reply.status >= 500, observed)
    if result.closed:
        return passed(f"{observed}, then the connection was closed")
    return failed(f"{observed}, then silence for {ctx.options.hang_s:g} s, the connection open")


@check(
    "extensions.pathsend-file-longer",
    title="a file longer than the Content-Length: no byte past the declared length on the wire",
    clause="reading: body-longer-than-content-length",
    level=READING,
)
def pathsend_file_longer(ctx: Context) -> Result:
    """The same error as a body longer than its Content-Length (RFC 9112 §6.3: the declared
    length is the message's), so bytes past it would be read as the next response."""
    declared = SMALL_FILE_SIZE - LENGTH_ERROR
    what = f"a pathsend of a {SMALL_FILE_SIZE}-byte file after Content-Length {declared}"
    result = trip(
        ctx,
        "/ext/pathsend",
        what,
        timeout_s=ctx.options.hang_s,
        size=str(SMALL_FILE_SIZE),
        declared="longer",
    )
    unusable = result.unusable(PATHSEND)
    if unusable is not None:
        return unusable
    reply, after = result.reply, result.after
    observed = f"{what} ({result.sent('pathsend')}): {reply.describe()}"
    if isinstance(reply, NoResponse):
        return verdict(closed_without_response(reply), observed)
    if reply.complete and reply.body != file_bytes(SMALL_FILE_SIZE)[:declared]:
        wanted = file_bytes(SMALL_FILE_SIZE)[:declared]
        return failed(f"{observed}; the body {first_difference(reply.body, wanted)}")
    tail = file_bytes(SMALL_FILE_SIZE)[declared:]
    assert after is not None
    if isinstance(after, NoResponse) and after.data.startswith(tail[:16]):
        return failed(
            f"{observed}; then the file's last {LENGTH_ERROR} bytes went on the wire, where "
            f"the next response should start: {after.describe()}"
        )
    return grade_pipelined(observed, after)


@check(
    "extensions.pathsend-after-body",
    title="pathsend after a body message raises out of send(), and no file byte is sent",
    clause=PATH_SEND,
    level=SHOULD,
)
def pathsend_after_body(ctx: Context) -> Result:
    """Path Send "cannot be mixed with http.response.body"; ASGI spec, Error Handling: a server
    should raise for a message that breaks the rules."""
    what = "a body with more_body, then a pathsend"
    result = trip(ctx, "/ext/pathsend-after-body", what, timeout_s=ctx.options.hang_s)
    unusable = result.unusable(PATHSEND)
    if unusable is not None:
        return unusable
    reply = result.reply
    observed = f"{what}: {result.sent('pathsend')}; on the wire: {reply.describe()}"
    wire = (reply.raw_head + reply.body) if isinstance(reply, Response) else reply.data
    if isinstance(result.after, NoResponse):
        wire += result.after.data
    if file_bytes(SMALL_FILE_SIZE)[:16] in wire:
        return failed(f"{observed}; the file's bytes reached the wire")
    record = find_event(result.events, "send", step="pathsend")
    return verdict(record is not None and record.get("outcome") == "raised", observed)


# -- zerocopysend


@check(
    "extensions.zerocopysend-bytes",
    title="zerocopysend of a whole file (no offset, no count): its bytes exactly",
    clause=ZERO_COPY_SEND,
)
def zerocopysend_bytes(ctx: Context) -> Result:
    """Zero Copy Send: without ``offset`` "it will be read from the current position of file";
    without ``count`` "the file will be read until its end"."""
    what = f"a zerocopysend of a {FILE_SIZE}-byte file from its start"
    result = trip(ctx, "/ext/zerocopysend", what)
    unusable = result.unusable(ZEROCOPYSEND)
    if unusable is not None:
        return unusable
    steps = ("start", "zerocopysend")
    return grade_body(result, file_bytes(FILE_SIZE), steps, "the file's bytes")


@check(
    "extensions.zerocopysend-mixed",
    title="zerocopysend with offset and count, from the current position, mixed with bodies",
    clause=ZERO_COPY_SEND,
)
def zerocopysend_mixed(ctx: Context) -> Result:
    """Zero Copy Send "can be mixed with http.response.body. It can also be called multiple
    times in one response"; ``offset`` and ``count`` pick the bytes, and without ``offset`` the
    file's current position does."""
    what = (
        "a body, a zerocopysend with offset and count, a body, and a zerocopysend from the "
        "file's current position"
    )
    result = trip(ctx, "/ext/zerocopysend-mixed", what)
    unusable = result.unusable(ZEROCOPYSEND)
    if unusable is not None:
        return unusable
    steps = ("start", "body-head", "zerocopysend-offset", "body-middle", "zerocopysend-position")
    return grade_body(result, mixed_body(), steps, "the four parts' bytes")


# -- trailers


def trailer_names(reply: Reply) -> list[bytes]:
    return [name.lower() for name, _ in reply.trailers] if isinstance(reply, Response) else []


STEPS_WITH_TRAILERS = ("start", "body", "final-body", "trailers")


@check(
    "extensions.trailers-with-te",
    title="trailers go out as chunked trailer fields when the request had TE: trailers",
    clause=HTTP_TRAILERS,
)
def trailers_with_te(ctx: Context) -> Result:
    """HTTP Trailers: "The ASGI server will only send the trailing headers in case the client
    has sent the TE: trailers header in the request" (RFC 9110 §10.1.4: the client is willing
    to accept trailer fields). A response without a Content-Length, to an HTTP/1.1 request:
    chunked, whose trailer section (RFC 9112 §7.1.2) carries them."""
    what = "a response with trailers, to a request with TE: trailers"
    result = trip(ctx, "/ext/trailers", what, headers=TE_TRAILERS, timeout_s=ctx.options.hang_s)
    unusable = result.unusable(TRAILERS)
    if unusable is not None:
        return unusable
    reply = result.reply
    got = [(n.lower(), v) for n, v in reply.trailers] if isinstance(reply, Response) else []
    observed = f"{what}: {reply.describe()}, trailer fields {got}"
    sends = result.raised(*STEPS_WITH_TRAILERS)
    if sends:
        return failed(f"{observed}; {'; '.join(sends)}")
    ok = (
        isinstance(reply, Response)
        and reply.status == 200
        and reply.complete
        and reply.body == b"".join(BODY_PARTS)
        and got == TRAILER_FIELDS
    )
    if not ok:
        return failed(f"{observed}, not {TRAILER_FIELDS}")
    assert result.after is not None
    return grade_pipelined(observed, result.after)


@check(
    "extensions.trailers-without-te",
    title="trailers are dropped when the request had no TE: trailers; the response still ends",
    clause=HTTP_TRAILERS,
)
def trailers_without_te(ctx: Context) -> Result:
    """HTTP Trailers: "The ASGI server will only send the trailing headers in case the client
    has sent the TE: trailers header in the request." The app sends them all the same, and
    ``send`` must take them: the response ends correctly without them."""
    what = "a response with trailers, to a request without TE"
    result = trip(ctx, "/ext/trailers", what, timeout_s=ctx.options.hang_s)
    unusable = result.unusable(TRAILERS)
    if unusable is not None:
        return unusable
    names = trailer_names(result.reply)
    if names:
        return failed(f"{what}: {result.reply.describe()} with trailer fields {names}")
    return grade_body(result, b"".join(BODY_PARTS), STEPS_WITH_TRAILERS, "the body's bytes")


@check(
    "extensions.trailers-forbidden-fields",
    title="fields that may not be trailers (framing, routing, authentication) are never sent",
    clause="RFC 9110 §6.5.1",
)
def trailers_forbidden_fields(ctx: Context) -> Result:
    """RFC 9110 §6.5.1: "A sender MUST NOT generate a trailer field unless the sender knows the
    corresponding header field name's definition permits the field to be sent in trailers";
    fields "necessary prior to receiving the content, such as those that describe message
    framing, routing, authentication, request modifiers, response controls, or content format"
    are not. The server is the sender on the wire: it drops them, or refuses them from send()."""
    forbidden = [name for name, _ in FORBIDDEN_TRAILERS]
    what = f"trailers with {[name.decode() for name in forbidden]}, to TE: trailers"
    result = trip(
        ctx,
        "/ext/trailers",
        what,
        headers=TE_TRAILERS,
        timeout_s=ctx.options.hang_s,
        fields="forbidden",
    )
    unusable = result.unusable(TRAILERS)
    if unusable is not None:
        return unusable
    reply = result.reply
    names = trailer_names(reply)
    observed = (
        f"{what}: {result.sent('trailers')}; on the wire: {reply.describe()}, trailer fields "
        f"{[name.decode('latin-1') for name in names]}"
    )
    sent = [name.decode() for name in forbidden if name in names]
    if sent:
        return failed(f"{observed}: {sent} sent as trailers")
    if isinstance(reply, Response) and (reply.complete or result.closed):
        return passed(observed)
    return failed(f"{observed}: the response neither ended nor was the connection closed")


@check(
    "extensions.trailers-http10",
    title="no chunked trailers to HTTP/1.0: trailers not offered, or the response not chunked",
    clause="RFC 9112 §6.1",
)
def trailers_http10(ctx: Context) -> Result:
    """RFC 9112 §6.1: "A server MUST NOT send a response containing Transfer-Encoding unless
    the corresponding request indicates HTTP/1.1 (or later minor revisions)." Without chunked
    coding an HTTP/1.0 response cannot carry trailers."""
    what = "a response with trailers, to an HTTP/1.0 request with TE: trailers"
    result = trip(
        ctx,
        "/ext/trailers",
        what,
        version="HTTP/1.0",
        headers=TE_TRAILERS,
        pipeline=False,
        timeout_s=ctx.options.hang_s,
    )
    unusable = result.unusable(TRAILERS)
    if unusable is not None:
        return offered_on_http11(ctx, TRAILERS, unusable)
    reply = result.reply
    observed = f"{what}: {reply.describe()}"
    sends = result.raised(*STEPS_WITH_TRAILERS)
    if sends:
        return failed(f"{observed}; {'; '.join(sends)}")
    if not isinstance(reply, Response):
        return failed(observed)
    coding = reply.header(b"transfer-encoding")
    if coding is not None:
        return failed(f"{observed} with Transfer-Encoding {coding!r}")
    ok = reply.status == 200 and reply.complete and reply.body == b"".join(BODY_PARTS)
    return verdict(ok, f"{observed}, without Transfer-Encoding")


def offered_on_http11(ctx: Context, extension: str, on_http10: Result) -> Result:
    """For an extension an HTTP/1.0 request was not offered: a pass if HTTP/1.1 requests are
    offered it (it is offered per request), else not applicable."""
    if on_http10.status != NOT_APPLICABLE:
        return on_http10
    result = trip(ctx, "/ext/scope", "a GET", pipeline=False, timeout_s=ctx.options.hang_s)
    names = result.offered() or []
    if extension in names:
        return passed(f"{extension} offered to HTTP/1.1 requests, not to HTTP/1.0 ones")
    return not_applicable(f"{extension} not offered: scope['extensions'] had {names}")


# -- early hints


def link_values(response: Response) -> list[bytes]:
    """The Link field values of a response, a comma-separated list split (RFC 9110 §5.3)."""
    return [
        part.strip()
        for value in response.header_values(b"link")
        for part in value.split(b",")
        if part.strip()
    ]


@check(
    "extensions.early-hint",
    title="an early hint goes out as a 103 with its Link fields before the final response",
    clause=EARLY_HINTS,
)
def early_hint(ctx: Context) -> Result:
    """Early Hints: the server sends a 103 (RFC 8297 §2) with the links as Link fields, before
    the final response. "The server may decide to ignore this message", so no 103 at all
    passes, noted; a send that raises, a 103 with other links, or a 1xx after the final head
    (bytes the client would read as the body or as the next response) fails."""
    what = "start, an early hint with two links, then the body"
    result = trip(ctx, "/ext/early-hint", what, timeout_s=ctx.options.hang_s)
    unusable = result.unusable(EARLY_HINT)
    if unusable is not None:
        return unusable
    reply = result.reply
    sends = result.raised("start", "early-hint", "body")
    if sends:
        return failed(f"{what}: {reply.describe()}; {'; '.join(sends)}")
    if not isinstance(reply, Response):
        return failed(f"{what}: {reply.describe()}")
    interim = [f"{r.status} with Link {link_values(r)}" for r in reply.interim]
    observed = f"{what}: {', '.join(interim) or 'no interim response'}, then {reply.describe()}"
    if any(r.status != 103 or link_values(r) != LINKS for r in reply.interim):
        return failed(f"{observed}; the links sent were {LINKS}")
    if reply.status != 200 or not reply.complete or reply.body != HINTED_BODY:
        return failed(observed)
    if not reply.interim:
        observed += " (the hint ignored, which the spec allows)"
    assert result.after is not None
    return grade_pipelined(observed, result.after)


@check(
    "extensions.early-hint-http10",
    title="no 103 to an HTTP/1.0 client: early hints not offered, or not sent",
    clause="RFC 9110 §15.2",
)
def early_hint_http10(ctx: Context) -> Result:
    """RFC 9110 §15.2: "A server MUST NOT send a 1xx response to an HTTP/1.0 client." """
    what = "start, an early hint, then the body, to an HTTP/1.0 request"
    result = trip(
        ctx,
        "/ext/early-hint",
        what,
        version="HTTP/1.0",
        pipeline=False,
        timeout_s=ctx.options.hang_s,
    )
    unusable = result.unusable(EARLY_HINT)
    if unusable is not None:
        return offered_on_http11(ctx, EARLY_HINT, unusable)
    reply = result.reply
    observed = f"{what}: {reply.describe()}"
    if isinstance(reply, Response) and reply.interim:
        return failed(f"{observed}, after interim {[r.status for r in reply.interim]}")
    sends = result.raised("start", "early-hint", "body")
    if sends:
        return failed(f"{observed}; {'; '.join(sends)}")
    ok = isinstance(reply, Response) and reply.complete and reply.body == HINTED_BODY
    return verdict(ok, f"{observed}, no interim response")
