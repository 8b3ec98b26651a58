"""Every way a client can leave, over real sockets, on both drivers.

A client leaves with a FIN (``shutdown(SHUT_WR)`` or ``close()``), with an RST (``SO_LINGER``
on with a zero timeout, then ``close()``), with a TLS close_notify, or with a bare TCP close
under TLS; it leaves while the app waits in ``receive()`` or while the app is sending. Each case
checks the same four things:

1. The app learns it promptly: ``receive()`` returns ``http.disconnect`` (``websocket.disconnect``
   with 1006 when no close frame came), or ``send()`` raises an ``OSError``
   (``sansio_asgi.core.ClientDisconnected``), within a small number of calls after the client
   left. The test sets ``Probe.left`` right after the client left; the app counts the calls it
   begins after that.
2. Nothing spins: the app's task ends, the server lets go of the connection, and a fresh request
   on a new connection is answered.
3. A departure costs at most one warning, and never asyncio's "socket.send() raised exception."
   (logged once per write into a transport that has already failed).
4. The server stops cleanly (``running_server`` checks it).

The apps stop after ``MAX_CALLS`` calls, or when the test sets ``Probe.stop``: an app
that is never told would otherwise spin forever and take the server's thread with it, and the
test has to fail, not hang.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from sansio_asgi.core import ClientDisconnected

from .conftest import (
    DEADLINE_S,
    Running,
    read_head,
    read_response,
    read_until_close,
    reset,
    wait_for,
)

pytestmark = pytest.mark.timeout(30)

# An app that is never told gives up after this many calls; telling it takes 1 to 3.
MAX_CALLS = 2_000
# Sends an app may make after a reset before one raises: see assert_told_while_sending.
SENDS_AFTER_RESET = 3
CHUNK = b"x" * 65536
FIRST = b"first"
# Timers that would close the connection anyway are set far past the test's deadlines, so that
# only the departure itself can tell the app. A case that fails leaves its app waiting: the
# server cancels it when it stops instead of waiting for it, so the failure is quick and clean.
OPTIONS: dict[str, Any] = {
    "lifespan": "off",
    "timeout_request_body": 300.0,
    "timeout_headers": 300.0,
    "ws_ping_interval": None,
    "timeout_graceful_shutdown": 1.0,
}

SEND_FAILED_AFTER_LOSS = "socket.send() raised exception."


# ---------------------------------------------------------------------- the app's side


class Probe:
    """What the app saw; written on the server's threads, read by the test."""

    def __init__(self) -> None:
        self.waiting = threading.Event()  # the app is about to wait in receive()
        self.parked = threading.Event()  # a sending app is busy between two sends
        self.left = threading.Event()  # the test sets it right after the client left
        self.stop = threading.Event()  # the test sets it at its end: a sending app gives up
        self.done = threading.Event()  # the app returned or raised
        self.calls_after_leaving = 0
        self.messages: list[dict[str, Any]] = []
        self.raised: BaseException | None = None

    def count(self) -> None:
        if self.left.is_set():
            self.calls_after_leaving += 1

    def learned(self) -> str:
        if self.raised is not None:
            return f"send() raised {self.raised!r}"
        if self.messages:
            return f"receive() returned {self.messages[-1]}"
        return "nothing"


Handler = Callable[[Any, Any, Any, Probe], Any]


def probed(probe: Probe, handler: Handler) -> Any:
    """The app under test on every path but ``/ok``, which answers 200 at once."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/ok":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"2")],
                }
            )
            await send({"type": "http.response.body", "body": b"ok"})
            return
        try:
            await handler(scope, receive, send, probe)
        except OSError as exc:
            probe.raised = exc
            raise
        finally:
            probe.done.set()

    return app


async def waits_for_body(scope: Any, receive: Any, send: Any, probe: Probe) -> None:
    """Takes the part of the body that came, then waits in receive() for the rest."""
    first = await receive()
    assert first["type"] == "http.request"
    assert first["more_body"]
    for _ in range(MAX_CALLS):
        probe.waiting.set()
        probe.count()
        message = await receive()
        probe.messages.append(message)
        if message["type"] == "http.disconnect":
            return


def park(probe: Probe) -> None:
    """Block the app's thread, without awaiting, until the client has left.

    This stands for the work an app does between two sends (rendering the next chunk) with
    nothing to await: while it runs, the event loop does not watch the socket, so no read
    notices the reset and only the next ``send()`` can tell the app. The client has read all
    that was sent before it resets, so nothing waits in the server's buffers: the next write
    goes straight to the socket."""
    probe.parked.set()
    probe.left.wait(DEADLINE_S)


async def streams_forever(scope: Any, receive: Any, send: Any, probe: Probe) -> None:
    """Streams ``FIRST`` as many times as the path's last segment says, then ``CHUNK``s."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for _ in range(int(scope["path"].rpartition("/")[2])):
        await send({"type": "http.response.body", "body": FIRST, "more_body": True})
    park(probe)
    for _ in range(MAX_CALLS):
        if probe.stop.is_set():
            return
        probe.count()
        await send({"type": "http.response.body", "body": CHUNK, "more_body": True})


async def ws_sends_forever(scope: Any, receive: Any, send: Any, probe: Probe) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "bytes": FIRST})
    park(probe)
    for _ in range(MAX_CALLS):
        if probe.stop.is_set():
            return
        probe.count()
        await send({"type": "websocket.send", "bytes": CHUNK})


async def ws_waits(scope: Any, receive: Any, send: Any, probe: Probe) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    for _ in range(MAX_CALLS):
        probe.waiting.set()
        probe.count()
        message = await receive()
        probe.messages.append(message)
        if message["type"] == "websocket.disconnect":
            return


# ---------------------------------------------------------------------- the client's side


def ws_handshake(sock: socket.socket) -> bytes:
    """Open a WebSocket without extensions, so frames go out as the app sends them; return
    the bytes that came behind the 101."""
    sock.sendall(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head, rest = read_head(sock)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return rest


def read_until(sock: socket.socket, data: bytes, end: bytes) -> None:
    """Read until what came (``data`` and more) ends with ``end``."""
    while not data.endswith(end):
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before {end!r}: {data!r}"
        data += chunk


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    folder = tmp_path_factory.mktemp("tls")
    certfile = folder / "cert.pem"
    keyfile = folder / "key.pem"
    cert.private_key_pem.write_to_path(str(keyfile))
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    return ca, certfile, keyfile


def over(
    transport: str, tls_files: tuple[trustme.CA, Path, Path]
) -> tuple[dict[str, Any], ssl.SSLContext | None]:
    """The server's options and the client's TLS context for ``transport``, "tcp" or "tls"."""
    if transport == "tcp":
        return OPTIONS, None
    ca, certfile, keyfile = tls_files
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return {**OPTIONS, "ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}, context


class Client:
    """Connections to the server under test, over TCP or TLS."""

    def __init__(self, server: Running, context: ssl.SSLContext | None) -> None:
        self.server = server
        self.context = context

    def connect(self) -> socket.socket:
        sock = self.server.connect()
        if self.context is None:
            return sock
        return self.context.wrap_socket(sock, server_hostname="127.0.0.1")


# ---------------------------------------------------------------------- the checks


@pytest.fixture
def warnings_logged() -> Iterator[list[logging.LogRecord]]:
    """Warnings and errors from the server's error log and from asyncio.

    The handler sits on the two loggers themselves, so that a logging setup which stops
    ``sansio_asgi`` from propagating to the root logger cannot hide a record."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.WARNING)
    loggers = [logging.getLogger("sansio_asgi.error"), logging.getLogger("asyncio")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
        logger.addHandler(handler)
    try:
        yield records
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def assert_no_failed_sends(records: list[logging.LogRecord]) -> None:
    failed_sends = [r for r in records if r.getMessage() == SEND_FAILED_AFTER_LOSS]
    assert not failed_sends, f"{len(failed_sends)} x {SEND_FAILED_AFTER_LOSS!r} logged"


def assert_quiet(records: list[logging.LogRecord]) -> None:
    """At most one line about the connection that was left. Called once the server has let go
    of it and before any other connection, so every record so far is about it."""
    assert_no_failed_sends(records)
    assert len(records) <= 1, [f"{r.name}: {r.getMessage()}" for r in records]


def assert_still_serving(client: Client) -> None:
    """A fresh request on a new connection is answered (the socket's timeout is the
    deadline): the server's thread is not stuck in a loop."""
    with client.connect() as sock:
        sock.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head, body = read_response(sock)
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert body == b"ok"


def assert_told_while_sending(probe: Probe) -> None:
    wait_for(probe.done.is_set)
    assert probe.raised is not None, f"never told: {probe.calls_after_leaving} sends"
    # A send or two after the reset can still succeed: the kernel takes writes into the
    # socket's buffer until it has processed the RST, and a driver may learn of the failed
    # write only after the call that made it has returned.
    assert probe.calls_after_leaving <= SENDS_AFTER_RESET, probe.learned()


def assert_let_go(server: Running) -> None:
    """Every app task has ended and every connection is closed on the server's side."""
    driver = server.server._driver
    assert driver is not None
    wait_for(lambda: not driver.tasks and not driver.connections)


# ---------------------------------------------------------------------- leaving mid-request

BODY_HEAD = b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"


@pytest.mark.parametrize(
    ("transport", "leave"),
    [
        ("tcp", "shutdown"),
        ("tcp", "close"),
        ("tcp", "reset"),
        ("tls", "close_notify"),
        ("tls", "close"),
        ("tls", "reset"),
    ],
)
def test_client_leaves_while_the_app_waits_for_the_body(
    serve: Any,
    transport: str,
    leave: str,
    tls_files: tuple[trustme.CA, Path, Path],
    warnings_logged: list[logging.LogRecord],
) -> None:
    probe = Probe()
    options, context = over(transport, tls_files)
    with serve(probed(probe, waits_for_body), **options) as server:
        client = Client(server, context)
        sock = client.connect()
        try:
            sock.sendall(BODY_HEAD + b"part of the body")
            wait_for(probe.waiting.is_set)
            if leave == "shutdown":
                # A FIN, and the client keeps reading: the server closes without a word.
                sock.shutdown(socket.SHUT_WR)
                probe.left.set()
                assert read_until_close(sock) == b""
            elif leave == "close_notify":
                assert isinstance(sock, ssl.SSLSocket)
                # unwrap() sends close_notify, then waits for the server's; an OSError means
                # the server closed without one, which TLS allows once it has nothing to send.
                with contextlib.suppress(OSError):
                    sock.unwrap()
                probe.left.set()
            elif leave == "close":
                sock.close()  # an SSLSocket closes without a close_notify
                probe.left.set()
            else:
                reset(sock)
                probe.left.set()
        finally:
            sock.close()
        wait_for(probe.done.is_set)
        assert probe.messages[-1:] == [{"type": "http.disconnect"}], probe.learned()
        # The app was waiting in receive() when the client left: that call tells it, or the
        # next one if the app had not yet awaited it.
        assert probe.calls_after_leaving <= 1
        assert_let_go(server)
        assert_quiet(warnings_logged)
        assert_still_serving(client)
    assert_no_failed_sends(warnings_logged)


def test_half_close_after_a_complete_request_is_a_disconnect(
    serve: Any, warnings_logged: list[logging.LogRecord]
) -> None:
    """A client that sends its request and then ``shutdown(SHUT_WR)`` has left, as far as the
    app can know: ASGI has no half-closed state, so the core takes the FIN for a disconnect
    (``HTTP11Handler.receive_eof``). An app that answers after the server saw the FIN gets
    ``ClientDisconnected`` from ``send()``, and the client gets no response.

    The app here waits in ``receive()`` until it is told, so the FIN always comes first; an app
    that answers at once races the FIN (the response goes out if it is sent before the FIN is
    read)."""
    probe = Probe()

    async def answers_late(scope: Any, receive: Any, send: Any, probe: Probe) -> None:
        for _ in range(MAX_CALLS):
            message = await receive()
            probe.messages.append(message)
            if message["type"] == "http.disconnect":
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"too late"})

    with serve(probed(probe, answers_late), **OPTIONS) as server:
        client = Client(server, None)
        with client.connect() as sock:
            sock.sendall(b"GET /half HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.shutdown(socket.SHUT_WR)
            probe.left.set()
            assert read_until_close(sock) == b""
        wait_for(probe.done.is_set)
        *requests, last = probe.messages
        # The request may never reach the app: the FIN can be read before the app's first
        # receive(), and then the request is gone with the client.
        assert [m["type"] for m in requests] in ([], ["http.request"]), probe.messages
        assert last == {"type": "http.disconnect"}
        assert isinstance(probe.raised, ClientDisconnected), probe.learned()
        assert_let_go(server)
        assert_quiet(warnings_logged)
        assert_still_serving(client)
    assert_no_failed_sends(warnings_logged)


# ---------------------------------------------------------------------- leaving mid-response


@pytest.mark.parametrize("transport", ["tcp", "tls"])
# How many sends the app made before the client left must not change how soon it is told.
@pytest.mark.parametrize("sends_before", [1, 2, 3, 4])
def test_reset_during_a_streamed_response(
    serve: Any,
    driver: str,
    transport: str,
    sends_before: int,
    tls_files: tuple[trustme.CA, Path, Path],
    warnings_logged: list[logging.LogRecord],
) -> None:
    probe = Probe()
    options, context = over(transport, tls_files)
    with serve(probed(probe, streams_forever), **options) as server:
        client = Client(server, context)
        try:
            with client.connect() as sock:
                sock.sendall(f"GET /stream/{sends_before} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                head, body = read_head(sock)
                assert head.startswith(b"HTTP/1.1 200 ")
                # All that was sent before the app parked: chunked, one chunk a send.
                read_until(sock, body, (b"5\r\n" + FIRST + b"\r\n") * sends_before)
                wait_for(probe.parked.is_set)
                reset(sock)
                probe.left.set()
            assert_told_while_sending(probe)
            assert_let_go(server)
            assert_quiet(warnings_logged)
            assert_still_serving(client)
        finally:
            probe.stop.set()
    assert_no_failed_sends(warnings_logged)


def test_reset_during_a_websocket_send_loop(
    serve: Any, warnings_logged: list[logging.LogRecord]
) -> None:
    probe = Probe()
    with serve(probed(probe, ws_sends_forever), **OPTIONS) as server:
        client = Client(server, None)
        try:
            with client.connect() as sock:
                rest = ws_handshake(sock)
                read_until(sock, rest, b"\x82\x05" + FIRST)  # an unmasked binary frame
                wait_for(probe.parked.is_set)
                reset(sock)
                probe.left.set()
            assert_told_while_sending(probe)
            assert_let_go(server)
            assert_quiet(warnings_logged)
            assert_still_serving(client)
        finally:
            probe.stop.set()
    assert_no_failed_sends(warnings_logged)


@pytest.mark.parametrize("leave", ["reset", "close"])
def test_client_leaves_while_a_websocket_app_waits(
    serve: Any, leave: str, warnings_logged: list[logging.LogRecord]
) -> None:
    probe = Probe()
    with serve(probed(probe, ws_waits), **OPTIONS) as server:
        client = Client(server, None)
        sock = client.connect()
        try:
            ws_handshake(sock)
            wait_for(probe.waiting.is_set)
            if leave == "reset":
                reset(sock)
            else:
                sock.close()
            probe.left.set()
        finally:
            sock.close()
        wait_for(probe.done.is_set)
        # RFC 6455 §7.1.5: with no Close frame received, "_The WebSocket Connection Close
        # Code_ is considered to be 1006".
        assert probe.messages[-1:] == [{"type": "websocket.disconnect", "code": 1006, "reason": ""}]
        assert probe.calls_after_leaving <= 1
        assert_let_go(server)
        assert_quiet(warnings_logged)
        assert_still_serving(client)
    assert_no_failed_sends(warnings_logged)
