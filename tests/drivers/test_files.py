"""File bodies over real sockets: ``http.response.pathsend`` and ``http.response.zerocopysend``.

Each test runs on the selectors driver and on the asyncio driver twice: on uvloop (what
``--loop auto`` picks when it is installed), where the file is copied a chunk at a time, and on
asyncio's own loop, where ``loop.sendfile`` hands it to ``os.sendfile``.
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Route

from sansio_asgi.core import ClientDisconnected, ContentLengthMismatch

from .conftest import (
    DEADLINE_S,
    read_head,
    read_response,
    read_until_close,
    reset,
    running_server,
    wait_for,
)

MiB = 1024 * 1024


@pytest.fixture(
    params=[("selectors", "auto"), ("asyncio", "auto"), ("asyncio", "asyncio")],
    ids=["selectors", "asyncio-uvloop", "asyncio-stdlib"],
)
def serve(request: pytest.FixtureRequest) -> Any:
    driver, loop = request.param

    def start(app: Any, **options: Any) -> Any:
        return running_server(app, driver=driver, loop=loop, **options)

    return start


def make_file(folder: Path, size: int, name: str = "data.bin") -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = folder / name
    path.write_bytes(data)
    return path, data


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fds_open_on(path: Path) -> list[int]:
    """This process's descriptors that refer to ``path`` (the server runs in it)."""
    target = str(path)
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == target:
                found.append(int(name))
        except OSError:  # closed meanwhile, or listdir's own descriptor
            pass
    return found


def pathsend_app(path: Path, outcome: list[Any], headers: list[Any] | None = None) -> Any:
    """Sends ``path`` with its size as Content-Length (or ``headers``); records what ``send``
    raised (or None) in ``outcome``."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/ok":
            ok_headers = [(b"content-length", b"2")]
            await send({"type": "http.response.start", "status": 200, "headers": ok_headers})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        size = str(path.stat().st_size).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", size)] if headers is None else headers,
            }
        )
        try:
            await send({"type": "http.response.pathsend", "path": str(path)})
        except Exception as exc:
            outcome.append(exc)
            raise
        outcome.append(None)

    return app


# ---------------------------------------------------------------------- pathsend


def test_pathsend_sends_the_file_exactly(serve: Any, tmp_path: Path) -> None:
    path, data = make_file(tmp_path, 5 * MiB)
    outcome: list[Any] = []
    with serve(pathsend_app(path, outcome)) as server, httpx.Client() as client:
        response = client.get(server.url + "/file")
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(data))
        assert sha(response.content) == sha(data)
        # Keep-alive goes on after the file, on the same connection.
        assert client.get(server.url + "/ok").text == "ok"
        assert outcome == [None]
        wait_for(lambda: not fds_open_on(path), what="the server closed the file")


def test_pathsend_is_advertised(serve: Any) -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return  # lifespan: no extensions to offer there
        seen.append(scope["extensions"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with serve(app) as server:
        httpx.get(server.url)
    assert "http.response.pathsend" in seen[0]
    assert "http.response.zerocopysend" in seen[0]


def test_pathsend_head_sends_the_head_only(serve: Any, tmp_path: Path) -> None:
    path, data = make_file(tmp_path, 300 * 1024)
    outcome: list[Any] = []
    with serve(pathsend_app(path, outcome)) as server, server.connect() as sock:
        sock.sendall(b"HEAD /file HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        data_in = b""
        while not data_in.endswith(b"\r\n\r\nok"):
            chunk = sock.recv(65536)
            assert chunk, data_in
            data_in += chunk
        head, _, rest = data_in.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        assert b"content-length: %d" % len(data) in head.lower()
        # Straight after the head: the next response, not a byte of the file.
        assert rest.startswith(b"HTTP/1.1 200 "), rest[:40]
        assert outcome == [None]
        wait_for(lambda: not fds_open_on(path), what="the server closed the file")


@pytest.mark.parametrize("declared", ["shorter", "longer"])
def test_a_file_of_another_length_than_declared(serve: Any, tmp_path: Path, declared: str) -> None:
    """The Content-Length check of body messages holds for files: the app's send() raises and
    the client never gets a response that looks complete."""
    path, data = make_file(tmp_path, 200 * 1024)
    length = len(data) - 10 if declared == "shorter" else len(data) + 10
    outcome: list[Any] = []
    headers = [(b"content-length", str(length).encode())]
    with serve(pathsend_app(path, outcome, headers)) as server, server.connect() as sock:
        sock.sendall(b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
        received = read_until_close(sock)
        wait_for(lambda: outcome, what="the app's send() returned or raised")
        wait_for(lambda: not fds_open_on(path), what="the server closed the file")
    assert isinstance(outcome[0], ContentLengthMismatch), outcome
    head, _, body = received.partition(b"\r\n\r\n")
    if head.startswith(b"HTTP/1.1 200 "):
        assert len(body) < length, "a cut response, never a complete one"
    assert data not in body


@pytest.mark.parametrize("kind", ["missing", "directory", "fifo"])
def test_pathsend_of_what_cannot_be_sent_raises_and_the_app_can_answer(
    serve: Any, tmp_path: Path, kind: str
) -> None:
    target = tmp_path / kind
    if kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)  # opening it must not wait for a writer
    raised: list[BaseException] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await send({"type": "http.response.pathsend", "path": str(target)})
        except OSError as exc:
            raised.append(exc)
            # Nothing was written for the file: the response goes on as before it.
            await send({"type": "http.response.body", "body": b"no file"})

    with serve(app) as server, httpx.Client() as client:
        assert client.get(server.url).text == "no file"
        assert client.get(server.url).text == "no file"  # the connection is still good
    expected = {"missing": FileNotFoundError, "directory": IsADirectoryError, "fifo": OSError}
    assert isinstance(raised[0], expected[kind]), raised
    assert not fds_open_on(target)


# ---------------------------------------------------------------------- zerocopysend


def test_zerocopysend_with_offset_and_count(serve: Any, tmp_path: Path) -> None:
    """An explicit offset leaves the app's file where it was; the file stays open."""
    path, data = make_file(tmp_path, 3 * MiB)
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        with open(path, "rb") as file:
            file.seek(7)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"%d" % (2 * MiB))],
                }
            )
            await send(
                {
                    "type": "http.response.zerocopysend",
                    "file": file,
                    "offset": 1000,
                    "count": 2 * MiB,
                }
            )
            seen.append((file.closed, file.tell(), os.fstat(file.fileno()).st_size))

    with serve(app) as server:
        response = httpx.get(server.url)
    assert sha(response.content) == sha(data[1000 : 1000 + 2 * MiB])
    assert seen == [(False, 7, len(data))]


def test_zerocopysend_from_the_position_moves_it(serve: Any, tmp_path: Path) -> None:
    """offset None: from the file's position, and the position moves past what was sent; a
    count past the end is capped at what the file holds."""
    path, data = make_file(tmp_path, 2 * MiB)
    positions: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        with open(path, "rb", buffering=0) as file:
            file.seek(50)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send(
                {
                    "type": "http.response.zerocopysend",
                    "file": file,
                    "count": MiB,
                    "more_body": True,
                }
            )
            positions.append(file.tell())
            await send({"type": "http.response.zerocopysend", "file": file, "count": 10 * MiB})
            positions.append(file.tell())

    with serve(app) as server:
        response = httpx.get(server.url)
    assert response.headers["transfer-encoding"] == "chunked"
    assert sha(response.content) == sha(data[50:])
    assert positions == [50 + MiB, len(data)]


def test_zerocopysend_mixed_with_body_messages_chunked(serve: Any, tmp_path: Path) -> None:
    path, data = make_file(tmp_path, 1 * MiB + 3)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/ok":
            headers = [(b"content-length", b"2")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        with open(path, "rb") as file:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"<", "more_body": True})
            await send(
                {
                    "type": "http.response.zerocopysend",
                    "file": file,
                    "offset": 0,
                    "more_body": True,
                }
            )
            await send({"type": "http.response.body", "body": b"|", "more_body": True})
            await send(
                {
                    "type": "http.response.zerocopysend",
                    "file": file,
                    "offset": 10,
                    "count": 5,
                    "more_body": True,
                }
            )
            await send({"type": "http.response.body", "body": b">"})

    with serve(app) as server, server.connect() as sock:
        sock.sendall(b"GET /f HTTP/1.1\r\nHost: x\r\n\r\n")
        head, chunked = read_response(sock)
        assert b"transfer-encoding: chunked" in head.lower()
        body = decode_chunked(chunked)
        assert body == b"<" + data + b"|" + data[10:15] + b">"
        sock.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")  # on the same connection
        head, ok = read_response(sock)
        assert head.startswith(b"HTTP/1.1 200 ") and ok == b"ok"


def decode_chunked(data: bytes) -> bytes:
    body = b""
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            assert data == b"\r\n", data
            return body
        body += data[:size]
        assert data[size : size + 2] == b"\r\n"
        data = data[size + 2 :]


# ---------------------------------------------------------------------- backpressure, leaving


def test_a_slow_reader_gets_the_whole_file_in_bounded_memory(serve: Any, tmp_path: Path) -> None:
    """A client with a small receive buffer that reads slowly: the file is never read into
    memory whole (the server runs in this process: tracemalloc sees its allocations)."""
    size = 16 * MiB
    path, data = make_file(tmp_path, size)
    outcome: list[Any] = []
    with serve(pathsend_app(path, outcome)) as server:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        sock.settimeout(DEADLINE_S)
        tracemalloc.start()
        try:
            with sock:
                sock.connect(("127.0.0.1", server.port))
                sock.sendall(b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
                head, body = read_head(sock)
                digest = hashlib.sha256(body)  # the client keeps no more than a chunk
                received = len(body)
                while received < size:
                    chunk = sock.recv(16 * 1024)
                    assert chunk, "the server closed mid-file"
                    digest.update(chunk)
                    received += len(chunk)
                    time.sleep(0.0002)  # the client's own pace, not a wait for the server
                _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        wait_for(lambda: outcome, what="the app's send() returned")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert (received, digest.hexdigest()) == (size, sha(data))
    assert outcome == [None]
    assert peak < 2 * MiB, f"{peak / MiB:.1f} MiB held for a {size // MiB} MiB file"


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_a_client_that_leaves_mid_file(
    serve: Any,
    tmp_path: Path,
    transport: str,
    certificates: tuple[trustme.CA, Path, Path],
) -> None:
    """send() raises ClientDisconnected, the server closes the file and goes on serving."""
    path, _ = make_file(tmp_path, 32 * MiB)
    outcome: list[Any] = []
    ca, certfile, keyfile = certificates
    options: dict[str, Any] = {}
    context: ssl.SSLContext | None = None
    if transport == "tls":
        options = {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}
        context = ssl.create_default_context()
        ca.configure_trust(context)

    def connect(port: int) -> socket.socket:
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        raw.settimeout(DEADLINE_S)
        raw.connect(("127.0.0.1", port))
        if context is None:
            return raw
        return context.wrap_socket(raw, server_hostname="127.0.0.1")

    with serve(pathsend_app(path, outcome), **options) as server:
        sock = connect(server.port)
        sock.sendall(b"GET /file HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while len(received) < 256 * 1024:
            chunk = sock.recv(65536)
            assert chunk
            received += chunk
        assert received.startswith(b"HTTP/1.1 200 ")
        wait_for(lambda: fds_open_on(path), what="the file is open while it is sent")
        reset(sock)
        wait_for(lambda: outcome, what="the app's send() raised")
        assert isinstance(outcome[0], ClientDisconnected), outcome
        wait_for(lambda: not fds_open_on(path), what="the server closed the file")
        with connect(server.port) as again:
            again.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            head, body = read_response(again)
        assert head.startswith(b"HTTP/1.1 200 ") and body == b"ok"


def test_pathsend_over_tls(
    serve: Any, tmp_path: Path, certificates: tuple[trustme.CA, Path, Path]
) -> None:
    path, data = make_file(tmp_path, 5 * MiB + 17)
    outcome: list[Any] = []
    ca, certfile, keyfile = certificates
    context = ssl.create_default_context()
    ca.configure_trust(context)
    options = {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}
    with serve(pathsend_app(path, outcome), **options) as server:
        with httpx.Client(verify=context) as client:
            url = f"https://127.0.0.1:{server.port}"
            response = client.get(url + "/file")
            assert sha(response.content) == sha(data)
            assert client.get(url + "/ok").text == "ok"
        assert outcome == [None]
        wait_for(lambda: not fds_open_on(path), what="the server closed the file")


# ---------------------------------------------------------------------- Starlette


def test_starlette_file_response_uses_pathsend(serve: Any, tmp_path: Path) -> None:
    path, data = make_file(tmp_path, 2 * MiB + 5, "page.bin")

    async def download(request: Request) -> FileResponse:
        return FileResponse(path)

    starlette_app = Starlette(routes=[Route("/page.bin", download)])
    sent: list[str] = []
    lock = threading.Lock()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        async def recording_send(message: Any) -> None:
            with lock:
                sent.append(message["type"])
            await send(message)

        await starlette_app(scope, receive, recording_send)

    with serve(app) as server:
        response = httpx.get(server.url + "/page.bin")
    assert response.status_code == 200
    assert sha(response.content) == sha(data)
    assert "http.response.pathsend" in sent, sent
    assert "http.response.body" not in sent, sent
