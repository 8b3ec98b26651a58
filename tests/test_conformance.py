"""The conformance suite, graded on sansio-asgi over both drivers, and the suite's own parts.

The whole suite runs as users run it, ``python -m conformance --server ...``, once per driver;
it must report no failed check beyond conformance/expected-failures.txt (which is empty once
every issue its lines name is resolved). The smaller tests below make sure the suite can tell
a broken server from a good one.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conformance.client import HTTPConnection, NoResponse
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
    data = json.loads(report.read_text())
    groups = {item["group"] for item in data["results"]}
    assert groups >= {"http11", "asgi-http", "websocket", "lifespan", "shutdown", "httplint"}
    assert data["summary"]["error"] == 0


NAIVE_FAILURES = {
    "http11.pipelining": "closed without a response",
    "http11.date-app-response": "without Date",
    "http11.host-missing": "no Host: 200",
    "asgi-http.scope-keys": "not of type bytes",
    "asgi-http.double-start": "the second returned",
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
