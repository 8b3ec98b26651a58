"""The trace as records, from both drivers over real sockets: what a request makes, in order;
the JSON lines of the real command line; a capture that leaves the console alone."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest

from sansio_asgi.drivers.sockets import bind_socket
from sansio_asgi.logs import TraceRecord, capture_trace, configure_logging, release_trace

from .conftest import DEADLINE_S, read_response, read_until_close, running_server, wait_for


class Records(logging.Handler):
    """Keeps the records it is handed; a lock of its own, as the drivers log from threads."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def traces(self, connection: str | None = None) -> list[TraceRecord]:
        with self.lock:  # type: ignore[union-attr]
            records = self.records[:]
        found = [r.__dict__["trace"] for r in records if "trace" in r.__dict__]
        return [t for t in found if connection is None or t.connection == connection]


pytestmark = pytest.mark.usefixtures("restored_logging")


@pytest.fixture
def capture() -> Iterator[Records]:
    handler = Records()
    capture_trace(handler)
    yield handler
    release_trace(handler)


def make_app(scopes: list[dict[str, Any]]) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        scopes.append(scope)
        await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
            }
        )
        await send({"type": "http.response.body", "body": b"OK"})

    return app


def shape(trace: TraceRecord) -> tuple[str, str, str]:
    """A record as its kind, direction and what it is (an event's or a message's name)."""
    name = str(trace.detail.get("event") or trace.detail.get("type") or "")
    if trace.kind == "frame":
        name = str(trace.detail.get("type"))
    elif trace.kind == "data":
        name = ""
    return trace.kind, trace.direction, name


REQUEST = b"GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nX-Bin: caf\xe9\r\n\r\n"

# What a simple GET makes, the client closing after its response.
GET_RECORDS = [
    ("connection", "", "made"),
    ("data", "<", ""),
    ("event", "", "StartApp"),
    ("scope", "", "http"),
    ("message", "<", "http.request"),
    ("message", ">", "http.response.start"),
    ("message", ">", "http.response.body"),
    ("data", ">", ""),
    ("event", "", "ResponseCompleted"),
    ("event", "", "CloseConnection"),
    ("connection", "", "lost"),
]


def test_a_get_is_traced_in_order(serve: Any, capture: Records) -> None:
    scopes: list[dict[str, Any]] = []
    with serve(make_app(scopes)) as server, server.connect() as sock:
        sock.sendall(REQUEST)
        head, body = read_response(sock)
        peer = "{}:{}".format(*sock.getsockname())
        sock.shutdown(socket.SHUT_WR)
        assert read_until_close(sock) == b""
        wait_for(
            lambda: any(t.detail.get("event") == "lost" for t in capture.traces(peer)),
            what="connection lost",
            detail=lambda: "\n".join(t.summary for t in capture.traces()),
        )
    traces = capture.traces(peer)
    assert [shape(t) for t in traces] == GET_RECORDS, [t.summary for t in traces]
    assert all(t.protocol == "http/1.1" for t in traces)
    received, start, scope = traces[1], traces[2], traces[3]
    assert received.data == REQUEST and received.size == len(REQUEST)
    assert traces[7].data == head + b"\r\n\r\n" + body
    assert scope.obj is scopes[0]  # the very dict the app got: the inspector finds it by this
    assert scope.detail["raw_path"] == "/a" and scope.detail["query_string"] == "b=1"
    assert ["x-bin", "caf\xe9"] in scope.detail["headers"]
    assert "scope" not in start.detail and "GET" in start.detail["cycle"]  # the next record's
    assert traces[6].detail == {"type": "http.response.body", "body": "OK"}
    completed = traces[8].detail
    assert completed["status"] == 200 and completed["target"] == "/a?b=1"


def traced_lines(driver: str) -> str:
    """The summaries of a request's records, its addresses and dates taken out."""
    handler = Records()
    capture_trace(handler)
    try:
        with running_server(make_app([]), driver=driver) as server, server.connect() as sock:
            sock.sendall(REQUEST)
            read_response(sock)
            host, port = sock.getsockname()
            peer = f"{host}:{port}"
            sock.shutdown(socket.SHUT_WR)
            read_until_close(sock)
            wait_for(lambda: any(t.detail.get("event") == "lost" for t in handler.traces(peer)))
    finally:
        release_trace(handler)
    text = "\n".join(t.summary for t in handler.traces(peer))
    text = text.replace(str(port), "PORT").replace(str(server.port), "SERVER_PORT")
    text = re.sub(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} [\d:]{8} GMT", "DATE", text)
    return re.sub(r"duration_s=[0-9.e-]+", "duration_s=D", text)


def test_both_drivers_trace_the_same_lines() -> None:
    """The text lines of a request are the same whichever driver served it."""
    assert traced_lines("asyncio") == traced_lines("selectors")


def test_http2_frames_are_records(serve: Any, capture: Records) -> None:
    scopes: list[dict[str, Any]] = []
    with serve(make_app(scopes)) as server, server.connect() as sock:
        client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        client.initiate_connection()
        headers = [(":method", "GET"), (":path", "/"), (":scheme", "http")]
        client.send_headers(1, [*headers, (":authority", "example.com")], end_stream=True)
        sock.sendall(client.data_to_send())
        ended = False
        while not ended:
            data = sock.recv(65536)
            assert data, "the server closed before the response"
            for event in client.receive_data(data):
                ended = ended or isinstance(event, h2.events.StreamEnded)
            sock.sendall(client.data_to_send())
        peer = "{}:{}".format(*sock.getsockname())
        wait_for(
            lambda: any(t.detail.get("event") == "ResponseCompleted" for t in capture.traces(peer))
        )
    traces = capture.traces(peer)
    shapes = [shape(t) for t in traces]
    assert ("frame", "<", "PREFACE") in shapes
    assert ("frame", "<", "HEADERS") in shapes and ("frame", ">", "HEADERS") in shapes
    assert ("frame", ">", "DATA") in shapes
    # The client's frames (a SETTINGS ack) may come in between: the rest keeps its order.
    cycle = [t for t in traces if t.kind in ("event", "scope", "message")]
    assert [shape(t) for t in cycle][:6] == [
        ("event", "", "StartApp"),
        ("scope", "", "http"),
        ("message", "<", "http.request"),
        ("message", ">", "http.response.start"),
        ("message", ">", "http.response.body"),
        ("event", "", "ResponseCompleted"),
    ]
    assert cycle[1].obj is scopes[0] and cycle[1].protocol == "h2"
    body = shapes.index(("message", ">", "http.response.body"))
    assert shapes.index(("frame", ">", "DATA")) > body
    assert all(t.protocol == "h2" for t in traces if t.kind == "frame")
    headers_in = next(t for t in traces if shape(t) == ("frame", "<", "HEADERS"))
    assert headers_in.detail["stream"] == 1
    assert set(headers_in.detail["flags"]) == {"END_HEADERS", "END_STREAM"}
    # Each read's records hold its bytes: the client's bytes are the "<" records' bytes.
    received = b"".join(t.data for t in traces if t.direction == "<" and t.kind == "frame")
    assert received.startswith(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")


def test_a_capture_keeps_the_console_at_info(
    serve: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("info", access=True, use_colors=False)
    handler = Records()
    capture_trace(handler)
    printed: list[str] = []

    def access_line_printed() -> bool:
        printed.append(capsys.readouterr().err)
        return '"GET /a?b=1 HTTP/1.1" 200' in "".join(printed)

    try:
        with serve(make_app([])) as server, server.connect() as sock:
            sock.sendall(REQUEST)
            read_response(sock)
            peer = "{}:{}".format(*sock.getsockname())
            wait_for(access_line_printed, what="the access line")
    finally:
        release_trace(handler)
    assert [shape(t) for t in handler.traces(peer)][:9] == GET_RECORDS[:9]
    printed.append(capsys.readouterr().err)
    lines = "".join(printed).splitlines()
    assert not [line for line in lines if not line.startswith("INFO:     ")], lines
    assert [line for line in lines if peer in line] == [
        f'INFO:     {peer} - "GET /a?b=1 HTTP/1.1" 200'
    ]


# -- the command line -------------------------------------------------------------------------

APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await receive()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"x-bin", b"\\xff\\xfe"),
                            (b"content-length", b"4")]})
    await send({"type": "http.response.body", "body": b"caf\\xe9"})
"""


@pytest.mark.parametrize("name", ["asyncio", "selectors"])
def test_trace_format_json_from_the_command_line(tmp_path: Path, name: str) -> None:
    (tmp_path / "traced.py").write_text(APP)
    listener = bind_socket("127.0.0.1", 0)
    command = [sys.executable, "-m", "sansio_asgi", "traced:app", "--app-dir", str(tmp_path)]
    command += ["--fd", str(listener.fileno()), "--driver", name, "--log-level", "trace"]
    command += ["--trace-format", "json", "--no-use-colors"]
    with (
        listener,
        subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            pass_fds=(listener.fileno(),),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        ) as process,
    ):
        try:
            # The socket listens already: the request waits in the backlog until served.
            request = REQUEST.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
            with socket.create_connection(listener.getsockname(), timeout=DEADLINE_S) as sock:
                sock.sendall(request)
                response = read_until_close(sock)
                peer = "{}:{}".format(*sock.getsockname())
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=DEADLINE_S)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 0, err
    assert response.endswith(b"\r\n\r\ncaf\xe9")
    text = err.decode("ascii")  # JSON escapes every non-ASCII character
    lines = [json.loads(line) for line in text.splitlines()]  # every line parses
    assert len(lines) == text.count("\n") > 10
    traces = [line for line in lines if line["level"] == "TRACE" and line["connection"] == peer]
    # Connection: close: the server half-closes after the response, then closes.
    assert [(t["kind"], t["direction"], t["detail"].get("event")) for t in traces] == [
        ("connection", "", "made"),
        ("data", "<", None),
        ("event", "", "StartApp"),
        ("scope", "", None),
        ("message", "<", None),
        ("message", ">", None),
        ("message", ">", None),
        ("data", ">", None),
        ("event", "", "ResponseCompleted"),
        ("event", "", "SendEOF"),
        ("event", "", "CloseConnection"),
        ("connection", "", "lost"),
    ], [t["summary"] for t in traces]
    received, scope, sent = traces[1], traces[3], traces[7]
    assert received["data"].encode("latin-1") == request  # lossless
    assert received["size"] == len(request) and "data_size" not in received
    assert ["x-bin", "caf\xe9"] in scope["detail"]["headers"]
    assert sent["data"].encode("latin-1") == response
    assert traces[6]["detail"] == {"type": "http.response.body", "body": "caf\xe9"}
    others = [line for line in lines if line["level"] != "TRACE"]
    assert all(set(line) == {"time", "level", "logger", "message"} for line in others)
    assert any(line["logger"] == "sansio_asgi.access" for line in others)


STREAMS = 4  # app calls at once on one HTTP/2 connection


def concurrent_app(count: int) -> Any:
    """Each call reads its body, waits until ``count`` calls have, then answers in several
    sends naming its path, giving the loop a turn after each: the calls' messages interleave.
    The last body echoes the request's."""
    started = [0]
    everyone = asyncio.Event()  # bound to the server's loop on first use

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        started[0] += 1
        if started[0] == count:
            everyone.set()
        await asyncio.wait_for(everyone.wait(), DEADLINE_S)
        name = scope["path"].encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-path", name)]})
        for part in range(3):
            await send(
                {"type": "http.response.body", "body": b"%s:%d" % (name, part), "more_body": True}
            )
            await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": body})

    return app


def h2_posts(sock: socket.socket, paths: list[str]) -> dict[str, bytes]:
    """POST ``from <path>`` to each path at once over HTTP/2 (prior knowledge): the bodies."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    streams = {}
    for path in paths:
        stream = client.get_next_available_stream_id()
        streams[stream] = path
        headers = [(":method", "POST"), (":path", path), (":scheme", "http")]
        client.send_headers(stream, [*headers, (":authority", "example.com")])
        client.send_data(stream, f"from {path}".encode(), end_stream=True)
    sock.sendall(client.data_to_send())
    bodies = dict.fromkeys(paths, b"")
    ended: set[int] = set()
    sock.settimeout(DEADLINE_S)
    while len(ended) < len(paths):
        data = sock.recv(65536)
        assert data, "the server closed before the responses"
        for event in client.receive_data(data):
            if isinstance(event, h2.events.DataReceived):
                bodies[streams[event.stream_id]] += event.data
                client.acknowledge_received_data(len(event.data), event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                ended.add(event.stream_id)
        sock.sendall(client.data_to_send())
    return bodies


def test_http2_messages_and_events_name_their_cycle(serve: Any, capture: Records) -> None:
    paths = [f"/s{n}" for n in range(STREAMS)]
    with serve(concurrent_app(STREAMS)) as server, server.connect() as sock:
        bodies = h2_posts(sock, paths)
        peer = "{}:{}".format(*sock.getsockname())
        wait_for(
            lambda: (
                sum(t.detail.get("event") == "ResponseCompleted" for t in capture.traces(peer))
                == STREAMS
            )
        )
    assert bodies == {p: f"{p}:0{p}:1{p}:2from {p}".encode() for p in paths}
    traces = capture.traces(peer)
    scopes = [t for t in traces if t.kind == "scope"]
    assert sorted(t.detail["path"] for t in scopes) == paths
    path_of = {id(t.cycle): t.detail["path"] for t in scopes}
    assert len(path_of) == STREAMS  # a cycle each
    starts = [t for t in traces if t.detail.get("event") == "StartApp"]
    assert [t.cycle for t in starts] == [t.cycle for t in scopes]
    assert all(start.obj.cycle is start.cycle for start in starts)  # the event itself
    # Every message names the cycle of its app call: each holds only what that call sent or got.
    messages = [t for t in traces if t.kind == "message"]
    assert len(messages) >= STREAMS * 6
    by_path: dict[str, list[TraceRecord]] = {p: [] for p in paths}
    for message in messages:
        by_path[path_of[id(message.cycle)]].append(message)
    for path, found in by_path.items():
        received = "".join(m.detail["body"] for m in found if m.direction == "<")
        assert received == f"from {path}"
        sent = [m.detail.get("body") for m in found if m.direction == ">"]
        assert sent == [None, f"{path}:0", f"{path}:1", f"{path}:2", f"from {path}"]
    # The calls ran at once: their messages interleave in the trace.
    order = [path_of[id(m.cycle)] for m in messages if m.direction == ">"]
    switches = sum(a != b for a, b in itertools.pairwise(order))
    assert switches > STREAMS - 1, order
    # The core's events about a cycle name it too; the rest name none.
    for trace in traces:
        if trace.kind != "event":
            continue
        if hasattr(trace.obj, "cycle"):
            assert trace.cycle is trace.obj.cycle and id(trace.cycle) in path_of
        else:
            assert trace.cycle is None
    # A ResponseCompleted names no cycle; its request headers are its scope's very list.
    completed = [t.obj for t in traces if t.detail.get("event") == "ResponseCompleted"]
    assert {id(event.request_headers) for event in completed} == {
        id(t.obj["headers"]) for t in scopes
    }
