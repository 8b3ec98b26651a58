"""The conformance suite, graded on sansio-asgi over both drivers, and the suite's own parts.

The whole suite runs as users run it, ``python -m conformance --server ...``, once per driver;
it must report no failed check beyond conformance/expected-failures.txt (which is empty once
every issue its lines name is resolved). The smaller tests below make sure the suite can tell
a broken server from a good one.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conformance.client import HTTPConnection, NoResponse
from conformance.http2_client import H2Connection
from conformance.report import read_expected_failures

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = ROOT / "conformance" / "expected-failures.txt"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("driver", ["asyncio", "selectors"])
def test_sansio_asgi_passes_the_suite(driver: str, tmp_path: Path) -> None:
    server = f"{sys.executable} -m sansio_asgi {{app}} --port {{port}} --driver {driver}"
    report = tmp_path / "report.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance",
            "--server",
            server,
            "--name",
            f"sansio-asgi {driver}",
            "--json",
            str(report),
            "--expected-failures",
            str(EXPECTED),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-4000:]
    assert f"Conformance of: sansio-asgi {driver}" in result.stdout
    assert "passed, 0 failed" in result.stdout
    data = json.loads(report.read_text())
    groups = {item["group"] for item in data["results"]}
    assert groups >= {
        "http11",
        "asgi-http",
        "websocket",
        "extensions",
        "http2",
        "lifespan",
        "shutdown",
        "httplint",
    }
    assert data["summary"]["error"] == 0
    # Every extension is offered on HTTP/1.1, so every one of its checks applies.
    extensions = [item for item in data["results"] if item["group"] == "extensions"]
    assert [item["id"] for item in extensions if item["status"] != "pass"] == []
    # h2c with prior knowledge is served, so every HTTP/2 check applies.
    http2 = [item for item in data["results"] if item["group"] == "http2"]
    assert len(http2) >= 80
    assert [item["id"] for item in http2 if item["status"] == "n/a"] == []


NAIVE_FAILURES = {
    "http11.pipelining": "closed without a response",
    "http11.date-app-response": "without Date",
    "http11.host-missing": "no Host: 200",
    "asgi-http.scope-keys": "not of type bytes",
    "asgi-http.double-start": "the second returned",
    "extensions.debug-not-offered": "'http.response.debug'",
    "extensions.pathsend-bytes": "(cut short); the body is the first 0 of the 4194427 bytes due",
    "extensions.trailers-with-te": "trailer fields [], not",
}


def test_a_naive_server_is_graded_failing(tmp_path: Path) -> None:
    server = f"{sys.executable} {ROOT / 'tests' / 'naive_server.py'} {{app}} {{port}}"
    report = tmp_path / "report.json"
    checks = [arg for check_id in NAIVE_FAILURES for arg in ("--check", check_id)]
    result = subprocess.run(
        [sys.executable, "-m", "conformance", "--server", server, "--json", str(report), *checks],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    observed = {item["id"]: item for item in json.loads(report.read_text())["results"]}
    assert observed.keys() == NAIVE_FAILURES.keys()
    for check_id, words in NAIVE_FAILURES.items():
        assert observed[check_id]["status"] == "fail", observed[check_id]
        assert words in observed[check_id]["observed"]
    assert "not conforming: http11.pipelining: fail" in result.stderr


def test_a_server_without_h2c_gets_the_http2_group_not_applicable(tmp_path: Path) -> None:
    server = f"{sys.executable} {ROOT / 'tests' / 'naive_server.py'} {{app}} {{port}}"
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "conformance", "--server", server, "--json", str(report)]
    result = subprocess.run(
        [*command, "--group", "http2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads(report.read_text())["results"]
    assert len(results) >= 80
    assert {item["status"] for item in results} == {"n/a"}
    assert "the preface was answered as HTTP/1" in results[0]["observed"]


def test_results_page_is_rendered_from_the_saved_runs() -> None:
    from conformance.results import load, render

    runs = load(ROOT / "conformance" / "results")
    assert {run["name"] for run in runs} >= {
        "sansio-asyncio",
        "sansio-selectors",
        "uvicorn-h11",
        "uvicorn-httptools",
        "uvicorn-zttp",
        "hypercorn",
        "daphne",
        "granian",
    }
    page = (ROOT / "conformance" / "RESULTS.md").read_text(encoding="utf-8")
    assert page == render(runs), "run python -m conformance.results --render-only"


def test_expected_failures_name_their_issue() -> None:
    for check_id, why in read_expected_failures(EXPECTED).items():
        assert why.startswith("issue "), f"{check_id}: say which open issue builds it"


# -- the suite's client sees the wire as it is


@contextmanager
def canned(reply: bytes, close: bool) -> Iterator[HTTPConnection]:
    """A peer that answers any request with ``reply`` and then closes or stays silent."""
    server, client = socket.socketpair()

    def serve() -> None:
        server.recv(65536)
        server.sendall(reply)
        if close:
            server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    connection = HTTPConnection(client, timeout_s=0.5)
    try:
        connection.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        yield connection
    finally:
        connection.close()
        thread.join(5)
        server.close()


def test_client_reads_chunked_body_with_trailers_and_interim() -> None:
    reply = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n0\r\nx-sum: 5\r\n\r\n"
    )
    with canned(reply, close=False) as connection:
        response = connection.read_response()
    assert [item.status for item in response.interim] == [100]
    assert (response.status, response.body, response.framing) == (200, b"hello", "chunked")
    assert response.complete
    assert response.trailers == [(b"x-sum", b"5")]


def test_client_reports_a_cut_body() -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"
    with canned(reply, close=True) as connection:
        response = connection.read_response()
    assert (response.body, response.complete) == (b"hello", False)


def test_client_reports_an_unterminated_chunked_body() -> None:
    reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
    with canned(reply, close=True) as connection:
        response = connection.read_response()
    assert (response.body, response.complete) == (b"hello", False)


def test_client_tells_silence_from_close() -> None:
    with canned(b"", close=False) as connection, pytest.raises(NoResponse) as silent:
        connection.read_response()
    assert silent.value.why == "timeout"
    with canned(b"", close=True) as connection, pytest.raises(NoResponse) as closed:
        connection.read_response()
    assert closed.value.why == "closed"


def test_every_reading_a_check_cites_is_recorded_in_spec() -> None:
    from conformance.framework import load_spec
    from conformance.runner import load_checks

    readings = {reading["id"] for reading in load_spec()["readings"]}
    documents = set(load_spec()["documents"])
    for check in load_checks().values():
        if check.clause.startswith("reading: "):
            assert check.clause.removeprefix("reading: ") in readings, check.id
        elif check.clause.startswith("ASGI"):
            assert check.clause.split(",")[0] in documents, (check.id, check.clause)
        else:
            assert check.clause.startswith(("RFC ", "httplint", "Autobahn")), check.clause


def test_verdict_counts_errors_and_stale_expected_failures() -> None:
    from conformance.framework import ERROR, FAIL, PASS, Check, Outcome, Result
    from conformance.report import verdict
    from conformance.runner import Run

    def outcome(check_id: str, status: str) -> Outcome:
        item = Check(check_id, "http11", "t", "RFC 9112 §1", "MUST", lambda ctx: Result(PASS, ""))
        return Outcome(item, Result(status, "seen"), 0.0)

    run = Run("cmd", "name", "now", [outcome("a", FAIL), outcome("b", ERROR), outcome("c", PASS)])
    known = ["a", "b", "c"]
    assert verdict(run, {"a": "issue 9"}, known) == ["b: error: seen"]
    problems = verdict(run, {"a": "", "b": "", "c": "", "z": ""}, known)
    assert problems == [
        "z: listed as an expected failure but no check has that id",
        "b: error: seen",
        "c: listed as an expected failure but passes; remove it",
    ]


# -- the suite's client does not take a malformed answer for a good one


def test_client_rejects_a_masked_server_frame() -> None:
    from conformance.client import OP_TEXT, WebSocketConnection, encode_frame

    frame = encode_frame(OP_TEXT, b"hi", mask=True)  # RFC 6455 §5.1: a server MUST NOT mask
    with canned(frame, close=False) as connection:
        raw = WebSocketConnection(connection).read_frame()
    assert (raw.masked, raw.payload) == (True, b"hi")
    with canned(frame, close=False) as connection:
        incoming = WebSocketConnection(connection).receive()
    assert incoming.kind == "malformed"
    with canned(frame, close=False) as connection, pytest.raises(NoResponse) as malformed:
        WebSocketConnection(connection).read_message()
    assert malformed.value.why == "malformed"
    assert not malformed.value.ended
    assert malformed.value.describe().startswith("the server sent a malformed frame")
    assert "MUST NOT mask" in malformed.value.describe()
    assert incoming.describe() == malformed.value.describe()


def test_client_rejects_rsv_bits_and_a_stray_continuation() -> None:
    from conformance.client import OP_CONTINUATION, OP_TEXT, WebSocketConnection, encode_frame

    plain = encode_frame(OP_TEXT, b"hi", mask=False)
    rsv1 = bytes([plain[0] | 0x40]) + plain[1:]  # no extension was negotiated (§5.2)
    with canned(rsv1, close=False) as connection:
        assert WebSocketConnection(connection).read_frame().rsv == 0b100
    with canned(rsv1, close=False) as connection, pytest.raises(NoResponse) as malformed:
        WebSocketConnection(connection).read_message()
    assert malformed.value.why == "malformed"
    assert "RSV bits 100" in malformed.value.describe()
    stray = encode_frame(OP_CONTINUATION, b"more", mask=False)
    with canned(stray, close=False) as connection, pytest.raises(NoResponse) as continuation:
        WebSocketConnection(connection).read_message()
    assert "no message started" in continuation.value.describe()
    with canned(plain, close=False) as connection:  # a good frame still reads
        assert WebSocketConnection(connection).read_message().data == b"hi"


@pytest.mark.parametrize("size", [b"+5", b"0x5", b"1_0", b" 5", b"5 ", b"-5", b""])
def test_client_rejects_a_bad_chunk_size(size: bytes) -> None:
    reply = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\nhello\r\n0\r\n\r\n"
    )
    with canned(reply, close=True) as connection:
        response = connection.read_response()
    assert (response.complete, response.body) == (False, b"")
    assert "malformed: chunk size" in response.describe()


def test_client_reads_a_chunk_extension_after_whitespace() -> None:
    reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 ;a=b\r\nhello\r\n0\r\n\r\n"
    with canned(reply, close=False) as connection:
        response = connection.read_response()
    assert (response.complete, response.body) == (True, b"hello")


@pytest.mark.parametrize("length", [b"+5", b"0x5", b"1_0", b"5, 5", b"-5"])
def test_client_rejects_a_bad_content_length(length: bytes) -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: " + length + b"\r\n\r\nhello"
    with canned(reply, close=True) as connection:
        response = connection.read_response()
    assert not response.complete
    assert "malformed: Content-Length" in response.describe()


@pytest.mark.parametrize(
    "status_line", [b"HTTP/1.1 OK", b"HTTP/1.1 2000 OK", b"HTTX/1.1 200 OK", b"hello"]
)
def test_client_rejects_a_malformed_status_line(status_line: bytes) -> None:
    reply = status_line + b"\r\nContent-Length: 0\r\n\r\n"
    with canned(reply, close=True) as connection, pytest.raises(NoResponse) as malformed:
        connection.read_response()
    assert malformed.value.why == "malformed"
    assert malformed.value.describe().startswith("the server sent a malformed status line")
    assert str(malformed.value) == malformed.value.describe()


def test_client_rejects_a_101_with_a_wrong_accept() -> None:
    from conformance.client import websocket_handshake

    server, client = socket.socketpair()

    def serve() -> None:
        server.recv(65536)
        server.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: d3Jvbmc=\r\n\r\n"
        )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(NoResponse) as malformed:
            websocket_handshake(client, 0.5)
    finally:
        thread.join(5)
        client.close()
        server.close()
    assert malformed.value.why == "malformed"
    assert "a 101 with Sec-WebSocket-Accept b'd3Jvbmc='" in malformed.value.describe()


# -- the suite's HTTP/2 client reads frames as they came


@contextmanager
def canned_frames(reply: bytes) -> Iterator[H2Connection]:
    """A peer that sends ``reply`` at once, then closes; the client side as an H2Connection."""
    server, client = socket.socketpair()
    server.sendall(reply)
    server.close()
    connection = H2Connection(client, timeout_s=0.5)
    try:
        yield connection
    finally:
        connection.close()


def test_h2_client_reads_frames_and_a_field_block_over_continuation() -> None:
    from hpack import Encoder

    from conformance.http2_client import (
        CONTINUATION,
        END_HEADERS,
        END_STREAM,
        HEADERS,
        INITIAL_WINDOW_SIZE,
        PROTOCOL_ERROR,
        Ended,
        data_frame,
        frame,
        goaway_frame,
        settings_frame,
    )

    block = Encoder().encode([(":status", "200"), ("x-long", "v" * 40)])
    reply = (
        settings_frame([(INITIAL_WINDOW_SIZE, 10)])
        + frame(HEADERS, 0, 1 | 1 << 31, block[:10])  # the reserved bit set
        + frame(CONTINUATION, END_HEADERS, 1, block[10:])
        + data_frame(1, b"hello", end_stream=True)
        + goaway_frame(1, PROTOCOL_ERROR)
    )
    with canned_frames(reply) as connection:
        response = connection.read_response(1, window=False)
        assert (response.status, response.body, response.complete) == (200, b"hello", True)
        assert response.header(b"x-long") == b"v" * 40
        assert connection.server_settings == {INITIAL_WINDOW_SIZE: 10}
        headers = connection.frames[1]
        assert (headers.reserved, headers.stream_id, headers.fields) == (True, 1, None)
        continuation = connection.frames[2]
        assert continuation.fields[0] == (b":status", b"200")
        assert continuation.describe() == "CONTINUATION :status 200 on stream 1"
        goaway = connection.read_frame()
        assert goaway.describe() == "GOAWAY(PROTOCOL_ERROR, last stream 1)"
        with pytest.raises(Ended) as ended:
            connection.read_frame()
        assert ended.value.why == "closed"
    assert END_STREAM == 1


def test_h2_client_reports_a_field_block_it_cannot_decode() -> None:
    from conformance.http2_client import END_HEADERS, HEADERS, Ended, frame

    reply = frame(HEADERS, END_HEADERS, 1, b"\x80")
    with canned_frames(reply) as connection, pytest.raises(Ended) as malformed:
        connection.read_frame()
    assert malformed.value.why == "malformed"
    assert "HPACK cannot decode" in malformed.value.describe()


def test_h2_client_writes_hpack_integers_as_rfc_7541_does() -> None:
    from conformance.http2_client import integer

    # RFC 7541 §C.1: 10 and 1337 with a 5-bit prefix, 42 with an 8-bit prefix.
    assert integer(10, 5) == b"\x0a"
    assert integer(1337, 5) == b"\x1f\x9a\x0a"
    assert integer(42, 8) == b"\x2a"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_kill_stops_the_workers_of_a_leader_that_exited() -> None:
    import shlex
    import time

    from conformance.server import ServerProcess

    code = (
        "import subprocess, sys; "
        "worker = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print(worker.pid, flush=True)"
    )
    server = ServerProcess(
        f"{sys.executable} -c {shlex.quote(code)} {{app}} {{port}}", "x:y", "127.0.0.1"
    )
    folder = Path(server.log_path).parent
    assert server.wait_exit(10) == 0
    assert not server.process.reaped  # a zombie still: its PID is still the group's id
    worker = int(server.output().split()[0])

    def running(pid: int) -> bool:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        return stat.rpartition(")")[2].split()[0] != "Z"

    assert running(worker)
    server.kill()
    assert server.process.reaped
    assert not folder.exists()
    deadline = time.monotonic() + 5
    while running(worker) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not running(worker)


# -- the registry: a check's group is its id's prefix; families of checks are table rows


def test_every_check_is_in_the_group_its_id_names() -> None:
    from conformance.framework import GROUPS
    from conformance.runner import load_checks

    checks = load_checks()
    for check in checks.values():
        assert check.group == check.id.split(".", 1)[0], check.id
    assert {check.group for check in checks.values()} == set(GROUPS)


def test_table_rows_are_registered_as_their_checks() -> None:
    from conformance.checks.http11 import BAD_REQUESTS
    from conformance.checks.websocket import BAD_HANDSHAKES
    from conformance.runner import load_checks

    checks = load_checks()
    assert len(BAD_REQUESTS) == 8
    assert len(BAD_HANDSHAKES) == 6
    for row in (*BAD_REQUESTS, *BAD_HANDSHAKES):
        registered = checks[row.id]
        assert (registered.title, registered.clause, registered.level) == (
            row.title,
            row.clause,
            row.level,
        )
    assert checks["http11.te-not-chunked-final"].group == "http11"
    assert checks["websocket.handshake-post"].group == "websocket"


def test_http2_table_rows_are_registered_as_their_checks() -> None:
    from conformance.checks.http2 import CONNECTION_ERRORS, IGNORED, MALFORMED
    from conformance.runner import load_checks

    checks = load_checks()
    for row in (*CONNECTION_ERRORS, *MALFORMED, *IGNORED):
        registered = checks[row.id]
        assert (registered.group, registered.title, registered.clause) == (
            "http2",
            row.title,
            row.clause,
        )
        assert row.clause.startswith(("RFC 9113 §", "RFC 7541 §")), row.id


@pytest.mark.parametrize(
    "check_id", ["nope.thing", "http11", "http11.", ".pipelining", "HTTP11.x", "http-11.x"]
)
def test_a_check_id_without_a_known_group_is_refused(check_id: str) -> None:
    from conformance.framework import REGISTRY, Row, check, check_rows

    with pytest.raises(ValueError, match=re.escape(repr(check_id))):
        check(check_id, title="t", clause="RFC 9112 §2.2")
    row = Row(id=check_id, title="t", clause="RFC 9112 §2.2")
    with pytest.raises(ValueError, match=re.escape(repr(check_id))):
        check_rows([row], lambda ctx, row: None)  # type: ignore[arg-type, return-value]
    assert check_id not in REGISTRY


def test_a_check_cannot_name_a_group_of_its_own() -> None:
    from conformance.framework import check

    with pytest.raises(TypeError):
        check("http11.x", group="websocket", title="t", clause="RFC 9112 §2.2")  # type: ignore[call-arg]
