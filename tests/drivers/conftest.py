"""One suite, two drivers: every test here runs against both over real loopback sockets."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme

from sansio_asgi import Config, Server
from sansio_asgi.drivers.sockets import bind_socket

DEADLINE_S = 10.0


def wait_for(
    predicate: Callable[[], Any],
    timeout_s: float = DEADLINE_S,
    what: str = "",
    detail: Callable[[], str] = str,
) -> Any:
    """Poll ``predicate`` until it returns something true, and return that; fail the test at
    the deadline, saying ``what`` was awaited and ``detail()`` (a log, say)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not before the deadline: {what or predicate}\n{detail()}")
        time.sleep(0.005)


class Running:
    def __init__(self, server: Server, port: int, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.port = port
        self.loop = loop
        self.url = f"http://127.0.0.1:{port}"

    def connect(self, timeout_s: float = DEADLINE_S) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout_s)
        return sock


@contextmanager
def running_server(
    app: Any, listener: socket.socket | None = None, **options: Any
) -> Iterator[Running]:
    """Serve ``app`` in a thread of its own, on ``listener`` if given; the server binds itself
    when given ``uds``."""
    config = Config(app=app, port=0, **options)
    server = Server(config)
    sock = listener or (None if config.uds else bind_socket("127.0.0.1", 0))
    port = sock.getsockname()[1] if sock is not None else 0
    loops: list[asyncio.AbstractEventLoop] = []
    errors: list[BaseException] = []

    def target() -> None:
        async def main() -> None:
            loops.append(asyncio.get_running_loop())
            await server.serve(sockets=[sock] if sock is not None else None)

        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced by the test below
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    wait_for(lambda: server.started or bool(errors))
    if errors:
        raise errors[0]
    try:
        yield Running(server, port, loops[0])
    finally:
        # It may be stopping already (the test asked, --limit-max-requests): a second request
        # would force the stop and cut what is still being served.
        if not loops[0].is_closed() and not server.should_exit:
            with contextlib.suppress(RuntimeError):
                loops[0].call_soon_threadsafe(server.request_stop)
        thread.join(DEADLINE_S)
        assert not thread.is_alive(), "the server did not stop"
        if errors:
            raise errors[0]


@pytest.fixture(params=["asyncio", "selectors"])
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def serve(driver: str) -> Callable[..., Any]:
    def start(app: Any, **options: Any) -> Any:
        return running_server(app, driver=driver, **options)

    return start


def read_until_close(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read one content-length or chunked response; return (head, body)."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-head: {buffer!r}"
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    lower = head.lower()
    if b"content-length:" in lower:
        length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
        while len(rest) < length:
            chunk = sock.recv(65536)
            assert chunk
            rest += chunk
        return head, rest[:length]
    if b"transfer-encoding: chunked" in lower:
        while not rest.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            assert chunk
            rest += chunk
        return head, rest
    return head, rest


def reset(sock: socket.socket) -> None:
    """Leave with an RST: with SO_LINGER on and a zero timeout, close() is TCP's ABORT call
    (RFC 9293 §3.10.5, in the ESTABLISHED state: "Send a reset segment")."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read a response head; return it and the bytes that came after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-head: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    folder = tmp_path_factory.mktemp("tls")
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    return ca, folder / "cert.pem", folder / "key.pem"
