"""The request-smuggling corpus (``desync_corpus.py``) replayed against both drivers.

Each row is sent on a fresh connection, followed by ``PROBE``, and checked from both sides:

* the client reads until the server closes and parses what it got strictly: exactly the
  expected responses, in order, and not one byte more;
* the app records every scope it is given (method, path, Host, body, whether the body ended):
  exactly the expected requests, in order.

Above both checks sits the one that matters: no request for ``/SMUGGLED`` reaches the app and
no response answers one. One server per driver serves the whole table. After each row a request
on a new connection acts as a barrier: once it is answered, every app call the row's connection
started has started too (both drivers start app calls in the order the core asks for them), so
a hidden request cannot slip past the check by starting late.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from .conftest import read_until_close, running_server, wait_for
from .desync_corpus import CASES, PROBE, Case, Seen

MARKER = b"SMUGGLED"
ROW_TIMEOUT_S = 5.0
BARRIER = b"GET /barrier HTTP/1.1\r\nHost: barrier\r\nConnection: close\r\n\r\n"
PROBE_SEEN = Seen("GET", "/probe")


@dataclass
class Record:
    method: str
    path: str
    hosts: list[bytes]
    body: bytes = b""
    complete: bool = False  # the whole body arrived and the app answered
    ended: bool = False  # the app call returned

    def __repr__(self) -> str:
        state = "complete" if self.complete else "ended" if self.ended else "running"
        return f"<{self.method} {self.path} body={self.body!r} {state}>"


@dataclass
class Recorder:
    """The app: records each scope, reads the whole body, answers ``200 METHOD /path``."""

    records: list[Record] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        hosts = [value for name, value in scope["headers"] if name == b"host"]
        path = scope["raw_path"].decode("latin-1")
        method = scope.get("method", "WEBSOCKET")
        record = Record(method, path, hosts)
        self.records.append(record)
        try:
            if scope["type"] == "websocket":
                await receive()  # websocket.connect
                await send({"type": "websocket.close"})  # deny: ASGI answers 403
                return
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                record.body += message["body"]
                if not message.get("more_body", False):
                    break
            content = f"{method} {path}".encode("latin-1")
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", str(len(content)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": content})
            record.complete = True
        finally:
            record.ended = True


@pytest.fixture(scope="module", params=["asyncio", "selectors"])
def corpus_server(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Recorder]]:
    recorder = Recorder()
    # HTTP/1.1 framing only: with HTTP/2 on, the preface and "Upgrade: h2c" rows start HTTP/2
    # (tests/core/test_http2.py, tests/drivers/test_http2.py).
    with running_server(recorder, driver=request.param, access_log=False, http2=False) as server:
        yield server, recorder


_STATUS_LINE = re.compile(rb"HTTP/1\.1 ([0-9]{3}) [^\r\n]*")


def parse_responses(data: bytes) -> list[tuple[int, bytes]]:
    """Split what the server sent into (status, body); every byte must belong to a response."""
    responses = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"a truncated response head: {data!r}"
        lines = head.split(b"\r\n")
        match = _STATUS_LINE.fullmatch(lines[0])
        assert match, f"not a status line: {lines[0]!r}"
        status = int(match[1])
        fields = dict(line.lower().split(b": ", 1) for line in lines[1:])
        if status < 200:  # 100 Continue: no content
            data = rest
            continue
        assert b"transfer-encoding" not in fields, head
        length = int(fields[b"content-length"])
        assert len(rest) >= length, f"a truncated response body: {data!r}"
        responses.append((status, rest[:length]))
        data = rest[length:]
    return responses


def expected_responses(case: Case) -> list[tuple[int, bytes | None]]:
    """(status, body) per response; None: an error response, whose text is not checked."""
    answers: list[tuple[int, bytes | None]] = [
        (200, f"{seen.method} {seen.path}".encode("latin-1")) for seen in expected_seen(case)
    ]
    if isinstance(case.end, int):
        answers.append((case.end, None))
    return answers


def expected_seen(case: Case) -> list[Seen]:
    seen = list(case.seen)
    if case.end == "probe":
        seen.append(PROBE_SEEN)
    return [s for s in seen if s.complete]


def exchange(server: Any, case: Case, recorder: Recorder) -> list[tuple[int, bytes]]:
    """Send the row and its probe on a fresh connection; return the responses."""
    with server.connect(timeout_s=ROW_TIMEOUT_S) as sock:
        sock.sendall(case.payload + PROBE)
        if case.end != "pending":
            return parse_responses(read_until_close(sock))
        # The server is reading a body that will not end: wait until every byte after the
        # row's last head is body, check nothing was answered, and leave.
        last = case.seen[-1]
        wait_for(
            lambda: any(
                r.path == last.path and r.body == last.body + PROBE for r in recorder.records
            ),
            timeout_s=ROW_TIMEOUT_S,
        )
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sent = sock.recv(65536)
            pytest.fail(f"the server answered a request still being read: {sent!r}")
        return []


def barrier(server: Any) -> None:
    with server.connect(timeout_s=ROW_TIMEOUT_S) as sock:
        sock.sendall(BARRIER)
        assert parse_responses(read_until_close(sock)) == [(200, b"GET /barrier")]


def check_records(case: Case, records: list[Record]) -> None:
    seen = list(case.seen)
    if case.end == "probe":
        seen.append(PROBE_SEEN)
    elif case.end == "pending":  # the probe is part of the body still being read
        last = seen[-1]
        seen[-1] = Seen(last.method, last.path, last.body + PROBE, complete=False)
    assert [(r.method, r.path) for r in records] == [(s.method, s.path) for s in seen], records
    for record, expected in zip(records, seen, strict=True):
        if expected.complete:
            assert record.complete, record
            assert record.body == expected.body, record
        else:
            assert not record.complete, record
            assert expected.body.startswith(record.body), record
        if expected.host is not None:
            assert record.hosts == [expected.host], record


def _param(case: Case) -> Any:
    marks = []
    if case.xfail is not None:
        marks.append(pytest.mark.xfail(strict=True, reason=case.xfail))
    return pytest.param(case, id=case.id, marks=marks)


def test_corpus_ids_are_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_desync(corpus_server: tuple[Any, Recorder], case: Case) -> None:
    server, recorder = corpus_server
    recorder.records.clear()
    responses = exchange(server, case, recorder)
    barrier(server)
    wait_for(lambda: all(r.ended for r in recorder.records), timeout_s=ROW_TIMEOUT_S)
    records = [r for r in recorder.records if r.path != "/barrier"]

    # The invariant, stated on its own so that a failure names it: no hidden request.
    hidden = [r for r in records if MARKER in r.path.encode("latin-1")]
    assert not hidden, f"the app received a hidden request: {hidden}"
    answered = [body for status, body in responses if status == 200 and MARKER in body]
    assert not answered, f"a hidden request was answered: {answered}"

    expected = expected_responses(case)
    assert [status for status, _ in responses] == [status for status, _ in expected], responses
    for (_, body), (_, expected_body) in zip(responses, expected, strict=True):
        if expected_body is not None:
            assert body == expected_body, responses
    check_records(case, records)
