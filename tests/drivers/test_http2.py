"""HTTP/2 over real sockets, on both drivers, with real clients: httpx (ALPN "h2" under TLS, and
prior knowledge on plain TCP), curl (the h2c Upgrade, prior knowledge, ALPN), and a small client
on the h2 library where those cannot go: trailers, flow control held shut, a stream reset while
its app waits in ``receive()`` and ``send()`` at once, and WebSocket over HTTP/2 (RFC 8441).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import httpx
import pytest
import trustme
from wsproto.frame_protocol import FrameProtocol, Opcode

from ..integration.tools import apt_binary
from .conftest import DEADLINE_S, Running, read_until_close, reset, wait_for
from .test_files import fds_open_on

KiB = 1024
MiB = 1024 * KiB
CONCURRENT_REQUESTS = 50


# ---------------------------------------------------------------------- the app


class State:
    """What the app saw and did, for the test to check."""

    def __init__(self, file: Path | None = None) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.file = file
        self.arrived = 0
        self.all_arrived: asyncio.Event | None = None
        self.granted = 0  # window the h2 client has granted, set before each WINDOW_UPDATE
        self.granted_when_sent: list[int] = []
        self.sending = False
        self.outcomes: list[str] = []


def scope_summary(scope: dict[str, Any]) -> dict[str, Any]:
    return {
        "http_version": scope["http_version"],
        "scheme": scope["scheme"],
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1"),
        "query_string": scope["query_string"].decode("latin-1"),
        "headers": [
            [name.decode("latin-1"), value.decode("latin-1")] for name, value in scope["headers"]
        ],
    }


async def read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def make_app(state: State) -> Any:
    async def respond(send: Any, body: bytes, status: int = 200) -> None:
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        state.scopes.append(scope)
        path = scope["path"]
        if path == "/scope":
            await respond(send, json.dumps(scope_summary(scope)).encode())
        elif path == "/echo":
            await respond(send, await read_body(receive))
        elif path == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for n in range(10):
                await send(
                    {"type": "http.response.body", "body": b"chunk %d\n" % n, "more_body": True}
                )
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        elif path == "/large":
            size = int(scope["query_string"] or b"0")
            piece = bytes(range(256)) * 256  # 64 KiB
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for _ in range(size // len(piece)):
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif path == "/trailers":
            offered = "http.response.trailers" in scope["extensions"]
            await send({"type": "http.response.start", "status": 200, "trailers": offered})
            await send({"type": "http.response.body", "body": b"hello"})
            if offered:
                await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")]})
        elif path == "/file":
            assert state.file is not None
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await sent(send, {"type": "http.response.pathsend", "path": str(state.file)})
        elif path == "/held":
            # One body message far above the write high-water mark: send() returns only once
            # the client's window has let most of it go.
            body = bytes(2 * MiB)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await sent(send, {"type": "http.response.body", "body": body})
        elif path == "/barrier":
            # Answers only once every request of the burst is in: they run at once.
            if state.all_arrived is None:
                state.all_arrived = asyncio.Event()
            state.arrived += 1
            if state.arrived == CONCURRENT_REQUESTS:
                state.all_arrived.set()
            await asyncio.wait_for(state.all_arrived.wait(), DEADLINE_S)
            await respond(send, scope["query_string"])
        elif path == "/receive-and-send":
            await receive_and_send(receive, send, scope["query_string"] == b"file")
        else:
            await respond(send, b"not found", 404)

    async def sent(send: Any, message: dict[str, Any]) -> None:
        """``send(message)``, noting how it ended, and the window granted by then."""
        try:
            await send(message)
        except OSError as exc:  # ClientDisconnected
            state.outcomes.append(f"send raised {type(exc).__name__}")
            raise
        state.outcomes.append("send returned")
        state.granted_when_sent.append(state.granted)

    async def receive_and_send(receive: Any, send: Any, file: bool) -> None:
        """One task waits in receive() (for the disconnect) while this one waits in send(), of
        a body message or a file."""
        assert (await receive())["type"] == "http.request"

        async def wait_for_disconnect() -> None:
            message = await receive()
            state.outcomes.append(f"received {message['type']}")

        task = asyncio.create_task(wait_for_disconnect())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if file:
            message = {"type": "http.response.pathsend", "path": str(state.file)}
        else:
            message = {"type": "http.response.body", "body": bytes(MiB), "more_body": True}
        try:
            await send(message)
            state.outcomes.append("send returned")
        except OSError as exc:  # ClientDisconnected
            state.outcomes.append(f"send raised {type(exc).__name__}")
        await task

    async def websocket(scope: Any, receive: Any, send: Any) -> None:
        state.scopes.append(scope)
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                state.outcomes.append(f"disconnect {message['code']}")
                return
            await send(
                {
                    "type": "websocket.send",
                    "text": message.get("text"),
                    "bytes": message.get("bytes"),
                }
            )

    return app


# ---------------------------------------------------------------------- clients


def tls_options(certificates: tuple[trustme.CA, Path, Path]) -> dict[str, Any]:
    _, certfile, keyfile = certificates
    return {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}


def client_context(certificates: tuple[trustme.CA, Path, Path], *alpn: str) -> ssl.SSLContext:
    context = ssl.create_default_context()
    certificates[0].configure_trust(context)
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def httpx_client(server: Running, certificates: Any = None) -> httpx.AsyncClient:
    """An HTTP/2 client: over TLS (ALPN) when given the certificates, else by prior knowledge."""
    if certificates is not None:
        return httpx.AsyncClient(
            base_url=f"https://127.0.0.1:{server.port}",
            http2=True,
            verify=client_context(certificates),
            timeout=DEADLINE_S,
        )
    return httpx.AsyncClient(base_url=server.url, http1=False, http2=True, timeout=DEADLINE_S)


class H2Client:
    """A client connection on the h2 library over a real socket, driven by hand."""

    def __init__(self, sock: socket.socket, settings: dict[int, int] | None = None) -> None:
        sock.settimeout(DEADLINE_S)
        self.sock = sock
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.closed = False

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def receive(self) -> list[h2.events.Event]:
        """One read's events (none once the server has closed)."""
        data = self.sock.recv(65536)
        if not data:
            self.closed = True
            return []
        events = self.conn.receive_data(data)
        self.flush()  # SETTINGS and PING acknowledgements
        return events

    def until(self, predicate: Callable[[h2.events.Event], bool]) -> list[h2.events.Event]:
        """Read until an event matches ``predicate``; every event read, that one last."""
        seen: list[h2.events.Event] = []
        while True:
            for event in self.receive():
                seen.append(event)
                if predicate(event):
                    return seen
            assert not self.closed, f"the server closed the connection; events: {seen}"

    def request(self, path: str, headers: list[tuple[bytes, bytes]] | None = None) -> int:
        stream_id: int = self.conn.get_next_available_stream_id()
        head = [
            (b":method", b"GET"),
            (b":scheme", b"http"),
            (b":path", path.encode()),
            (b":authority", b"127.0.0.1"),
            *(headers or []),
        ]
        self.conn.send_headers(stream_id, head, end_stream=True)
        self.flush()
        return stream_id

    def read_response(self, stream_id: int) -> tuple[list[tuple[bytes, bytes]], bytes, list[Any]]:
        """Headers, body and trailers of one response, acknowledging the body as it comes."""
        headers: list[tuple[bytes, bytes]] = []
        body = bytearray()
        trailers: list[Any] = []
        for event in self.until(
            lambda e: isinstance(e, h2.events.StreamEnded) and e.stream_id == stream_id
        ):
            if getattr(event, "stream_id", None) != stream_id:
                continue
            if isinstance(event, h2.events.ResponseReceived):
                headers = list(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                body += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
            elif isinstance(event, h2.events.TrailersReceived):
                trailers = list(event.headers)
            elif isinstance(event, h2.events.StreamReset):
                raise AssertionError(f"stream {stream_id} reset: {event}")
        self.flush()
        return headers, bytes(body), trailers

    def close(self) -> None:
        self.conn.close_connection()
        self.flush()


@contextmanager
def h2_client(server: Running, settings: dict[int, int] | None = None) -> Iterator[H2Client]:
    with server.connect() as sock:
        client = H2Client(sock, settings)
        yield client
        client.close()


def curl(*args: str) -> tuple[str, str]:
    """Run curl; return the body and what ``-w`` wrote after it (the HTTP version)."""
    result = subprocess.run(
        [
            apt_binary("curl", "curl"),
            "-sS",
            "--max-time",
            str(int(DEADLINE_S)),
            "-w",
            "\n%{http_version}",
            *args,
        ],
        capture_output=True,
        timeout=DEADLINE_S + 5,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    body, _, version = result.stdout.decode().rpartition("\n")
    return body, version


def header(headers: list[tuple[bytes, bytes]] | list[list[str]], name: str) -> list[Any]:
    return [value for key, value in headers if key in (name, name.encode())]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------- httpx: ALPN and h2c


@pytest.mark.parametrize("over", ["tls", "h2c"])
def test_httpx_gets_http2_and_the_app_sees_its_scope(
    serve: Any, certificates: tuple[trustme.CA, Path, Path], over: str
) -> None:
    state = State()
    tls = over == "tls"

    async def main(server: Running) -> None:
        async with httpx_client(server, certificates if tls else None) as client:
            response = await client.get(
                "/scope?a=1&b=%20x", headers={"x-custom": "yes", "cookie": "a=1"}
            )
            assert response.status_code == 200
            assert response.http_version == "HTTP/2"
            seen = response.json()
            assert seen["http_version"] == "2"
            assert seen["scheme"] == ("https" if tls else "http")
            assert seen["method"] == "GET"
            assert seen["path"] == "/scope"
            assert seen["query_string"] == "a=1&b=%20x"
            headers = seen["headers"]
            # :authority becomes the host header, first; no pseudo-header is a header.
            assert headers[0] == ["host", f"127.0.0.1:{server.port}"]
            assert not [name for name, _ in headers if name.startswith(":")]
            assert header(headers, "x-custom") == ["yes"]
            assert header(headers, "cookie") == ["a=1"]

    options = tls_options(certificates) if tls else {}
    with serve(make_app(state), **options) as server:
        asyncio.run(main(server))
    assert state.scopes[0]["http_version"] == "2"


@pytest.mark.parametrize("over", ["tls", "h2c"])
def test_a_mebibyte_posted_is_echoed(
    serve: Any, certificates: tuple[trustme.CA, Path, Path], over: str
) -> None:
    data = os.urandom(MiB)
    tls = over == "tls"

    async def main(server: Running) -> None:
        async with httpx_client(server, certificates if tls else None) as client:
            response = await client.post("/echo", content=data)
            assert response.http_version == "HTTP/2"
            assert response.status_code == 200
            assert sha(response.content) == sha(data)
            # And again on the same connection.
            response = await client.post("/echo", content=data[: 100 * KiB])
            assert response.content == data[: 100 * KiB]

    with serve(make_app(State()), **(tls_options(certificates) if tls else {})) as server:
        asyncio.run(main(server))


@pytest.mark.parametrize("over", ["tls", "h2c"])
def test_many_concurrent_requests_share_one_connection(
    serve: Any, certificates: tuple[trustme.CA, Path, Path], over: str
) -> None:
    state = State()
    tls = over == "tls"

    async def main(server: Running) -> None:
        async with httpx_client(server, certificates if tls else None) as client:
            # One request first: the client then knows the connection speaks HTTP/2 and opens
            # no other one for the burst.
            assert (await client.get("/scope")).http_version == "HTTP/2"
            responses = await asyncio.gather(
                *(client.get(f"/barrier?{n}") for n in range(CONCURRENT_REQUESTS))
            )
            assert [r.text for r in responses] == [str(n) for n in range(CONCURRENT_REQUESTS)]
            assert {r.http_version for r in responses} == {"HTTP/2"}

    with serve(make_app(state), **(tls_options(certificates) if tls else {})) as server:
        asyncio.run(main(server))
    assert len({scope["client"] for scope in state.scopes}) == 1
    assert state.arrived == CONCURRENT_REQUESTS


@pytest.mark.parametrize("over", ["tls", "h2c"])
def test_streamed_large_and_file_responses(
    serve: Any, tmp_path: Path, certificates: tuple[trustme.CA, Path, Path], over: str
) -> None:
    path = tmp_path / "page.bin"
    data = os.urandom(3 * MiB + 17)
    path.write_bytes(data)
    state = State(path)
    tls = over == "tls"

    async def main(server: Running) -> None:
        async with httpx_client(server, certificates if tls else None) as client:
            response = await client.get("/stream")
            assert response.http_version == "HTTP/2"
            assert response.text == "".join(f"chunk {n}\n" for n in range(10))
            # 8 MiB, read a piece at a time as it comes.
            digest = hashlib.sha256()
            size = 0
            async with client.stream("GET", f"/large?{8 * MiB}") as streamed:
                async for piece in streamed.aiter_bytes():
                    digest.update(piece)
                    size += len(piece)
            assert size == 8 * MiB
            assert digest.hexdigest() == sha((bytes(range(256)) * 256) * 128)
            response = await client.get("/file")
            assert response.status_code == 200
            assert sha(response.content) == sha(data)
            assert (await client.get("/file")).content == data

    with serve(make_app(state), **(tls_options(certificates) if tls else {})) as server:
        asyncio.run(main(server))


# ---------------------------------------------------------------------- curl


def test_curl_upgrades_to_h2c(serve: Any) -> None:
    state = State()
    with serve(make_app(state)) as server:
        body, version = curl("--http2", f"{server.url}/scope?q=1")
        assert version == "2"
        assert json.loads(body)["query_string"] == "q=1"
        # A request with a body is served by HTTP/1.1 (RFC 7540 §3.2's upgrade takes none).
        body, version = curl("--http2", "--data-binary", "posted", f"{server.url}/echo")
        assert (body, version) == ("posted", "1.1")


def test_the_access_log_line_says_http2(serve: Any, caplog: pytest.LogCaptureFixture) -> None:
    # One access log line per stream, formatted as for HTTP/1.1, with the protocol as "HTTP/2".
    caplog.set_level(logging.INFO, logger="sansio_asgi.access")
    with serve(make_app(State())) as server:
        _, version = curl("--http2-prior-knowledge", f"{server.url}/scope?q=1")
        assert version == "2"
        wait_for(
            lambda: any("GET /scope?q=1 HTTP/2" in r.getMessage() for r in caplog.records),
            what="the access log line",
        )
    [line] = [r.getMessage() for r in caplog.records if "/scope?q=1" in r.getMessage()]
    assert '"GET /scope?q=1 HTTP/2" 200' in line, line


def test_curl_with_prior_knowledge(serve: Any) -> None:
    with serve(make_app(State())) as server:
        body, version = curl("--http2-prior-knowledge", f"{server.url}/scope")
        assert version == "2"
        assert json.loads(body)["http_version"] == "2"
        body, version = curl(
            "--http2-prior-knowledge", "--data-binary", "posted", f"{server.url}/echo"
        )
        assert (body, version) == ("posted", "2")


def test_curl_over_tls_negotiates_h2(
    serve: Any, tmp_path: Path, certificates: tuple[trustme.CA, Path, Path]
) -> None:
    ca = tmp_path / "ca.pem"
    certificates[0].cert_pem.write_to_path(str(ca))
    with serve(make_app(State()), **tls_options(certificates)) as server:
        url = f"https://127.0.0.1:{server.port}/scope"
        body, version = curl("--http2", "--cacert", str(ca), url)
        assert version == "2"
        assert json.loads(body)["scheme"] == "https"
        # A client that offers only HTTP/1.1 gets it.
        body, version = curl("--http1.1", "--cacert", str(ca), url)
        assert version == "1.1"
        assert json.loads(body)["http_version"] == "1.1"


# ---------------------------------------------------------------------- --no-http2


def test_without_http2_clients_get_http11(
    serve: Any, tmp_path: Path, certificates: tuple[trustme.CA, Path, Path]
) -> None:
    ca = tmp_path / "ca.pem"
    certificates[0].cert_pem.write_to_path(str(ca))
    with serve(make_app(State()), http2=False, **tls_options(certificates)) as server:
        url = f"https://127.0.0.1:{server.port}/scope"
        body, version = curl("--http2", "--cacert", str(ca), url)
        assert version == "1.1"
        assert json.loads(body)["http_version"] == "1.1"
        context = client_context(certificates, "h2", "http/1.1")
        with server.connect() as raw, context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            assert sock.selected_alpn_protocol() == "http/1.1"
    with serve(make_app(State()), http2=False) as server:
        body, version = curl("--http2", f"{server.url}/scope")  # Upgrade: h2c is ignored
        assert version == "1.1"
        assert json.loads(body)["http_version"] == "1.1"


def test_alpn_offers_h2_and_the_connection_speaks_it(
    serve: Any, certificates: tuple[trustme.CA, Path, Path]
) -> None:
    """ALPN "h2" commits the connection to HTTP/2 (RFC 9113 §3.2): HTTP/1.1 bytes on it are a
    connection error, not a request."""
    context = client_context(certificates, "h2", "http/1.1")
    with serve(make_app(State()), **tls_options(certificates)) as server:
        with server.connect() as raw, context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            assert sock.selected_alpn_protocol() == "h2"
            sock.sendall(b"GET /scope HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = read_until_close(sock)
            assert not answer.startswith(b"HTTP/"), answer[:200]
        context = client_context(certificates, "http/1.1")
        with server.connect() as raw, context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            assert sock.selected_alpn_protocol() == "http/1.1"
            sock.sendall(b"GET /scope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert read_until_close(sock).startswith(b"HTTP/1.1 200 ")


# ---------------------------------------------------------------------- the h2 library's client


def test_trailers_reach_a_client_that_asked_for_them(serve: Any) -> None:
    with serve(make_app(State())) as server, h2_client(server) as client:
        stream_id = client.request("/trailers", [(b"te", b"trailers")])
        headers, body, trailers = client.read_response(stream_id)
        assert header(headers, ":status") == [b"200"]
        assert body == b"hello"
        assert trailers == [(b"x-checksum", b"abc")]
        stream_id = client.request("/trailers")  # no TE: trailers, none sent
        headers, body, trailers = client.read_response(stream_id)
        assert (body, trailers) == (b"hello", [])


def read_granting(
    client: H2Client,
    stream_id: int,
    state: State,
    on_data: Callable[[int], None] | None = None,
) -> bytes:
    """Read a response, granting each byte of window back as it arrives (16 KiB in flight with
    the settings below), after counting it in ``state.granted``: the app knows of a grant before
    the server can act on it. ``on_data(bytes_so_far)`` runs before each grant."""
    body = bytearray()
    ended = False
    while not ended:
        for event in client.receive():
            if isinstance(event, h2.events.StreamEnded):
                ended = True
            elif isinstance(event, h2.events.StreamReset):
                raise AssertionError(event)
            elif isinstance(event, h2.events.DataReceived) and event.flow_controlled_length:
                body += event.data
                if on_data is not None:
                    on_data(len(body))
                state.granted += event.flow_controlled_length
                client.conn.increment_flow_control_window(event.flow_controlled_length)
                if event.stream_ended is None:  # a closed stream takes no window
                    client.conn.increment_flow_control_window(
                        event.flow_controlled_length, stream_id
                    )
                client.flush()
        assert not client.closed
    return bytes(body)


SMALL_WINDOW = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 16 * KiB}


@pytest.mark.parametrize("path", ["/held", "/file"])
def test_send_returns_only_once_the_window_let_the_body_go(
    serve: Any, tmp_path: Path, path: str
) -> None:
    """The client grants 16 KiB at a time, as it reads: the app's ``send()`` of 2 MiB (a body
    message, or a file) returns only once all but about the write high-water mark has gone."""
    file = tmp_path / "file.bin"
    file.write_bytes(bytes(2 * MiB))
    state = State(file)
    with serve(make_app(state)) as server, h2_client(server, SMALL_WINDOW) as client:
        stream_id = client.request(path)
        assert read_granting(client, stream_id, state) == bytes(2 * MiB)
        wait_for(lambda: state.granted_when_sent, what="the app's send() returned")
        # The write high-water mark (64 KiB) and a window in flight may be unsent when it does.
        assert state.granted_when_sent[0] >= 2 * MiB - 256 * KiB, state.granted_when_sent


def test_a_file_is_read_only_as_the_window_lets_it_go(serve: Any, tmp_path: Path) -> None:
    """A file goes to the core a read at a time, each once the stream can take more: the
    second half, rewritten while the first is on its way, arrives rewritten."""
    file = tmp_path / "file.bin"
    file.write_bytes(bytes(2 * MiB))
    state = State(file)

    def rewrite_second_half(received: int) -> None:
        if received >= 64 * KiB and not state.outcomes:
            state.outcomes.append("rewritten")
            fd = os.open(file, os.O_WRONLY)
            try:
                os.pwrite(fd, b"\xff" * MiB, MiB)
            finally:
                os.close(fd)

    with serve(make_app(state)) as server, h2_client(server, SMALL_WINDOW) as client:
        body = read_granting(client, client.request("/file"), state, rewrite_second_half)
        assert state.outcomes[0] == "rewritten"
        assert body[:MiB] == bytes(MiB)
        assert body[MiB:] == b"\xff" * MiB


@pytest.mark.parametrize("path", ["/held", "/file"])
def test_a_lost_connection_ends_a_held_send(serve: Any, tmp_path: Path, path: str) -> None:
    """The client goes (a TCP reset) while the app's ``send()`` waits on its window: the send
    ends, and the server closes the file it was reading."""
    file = tmp_path / "file.bin"
    file.write_bytes(bytes(2 * MiB))
    state = State(file)
    with serve(make_app(state)) as server:
        sock = server.connect()
        client = H2Client(sock, SMALL_WINDOW)
        client.request(path)
        client.until(lambda e: isinstance(e, h2.events.DataReceived))
        reset(sock)
        wait_for(lambda: state.outcomes, what="the app's send() ended")
        assert state.outcomes[0] in ("send returned", "send raised ClientDisconnected")
        wait_for(lambda: not fds_open_on(file), what="the server closed the file")


@pytest.mark.parametrize("body", ["message", "file"])
def test_a_reset_stream_wakes_the_apps_receive_and_send(
    serve: Any, tmp_path: Path, body: str
) -> None:
    """The app waits in ``receive()`` (one task) and in ``send()`` (another) on a stream whose
    window is shut; the client resets the stream: both wake."""
    file = tmp_path / "file.bin"
    file.write_bytes(bytes(2 * MiB))
    state = State(file)
    settings = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1}
    with serve(make_app(state)) as server, h2_client(server, settings) as client:
        stream_id = client.request(f"/receive-and-send?{body}")
        # The one byte the window allows proves the body reached the server: send() now waits.
        client.until(lambda e: isinstance(e, h2.events.DataReceived))
        client.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        client.flush()
        wait_for(
            lambda: len(state.outcomes) == 2,
            what="receive() and send() both woke",
            detail=lambda: str(state.outcomes),
        )
        assert "received http.disconnect" in state.outcomes
        assert {"send returned", "send raised ClientDisconnected"} & set(state.outcomes)
        wait_for(lambda: not fds_open_on(file), what="the server closed the file")
        # The connection serves the next stream, with a window open again.
        client.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 65535})
        _, body, _ = client.read_response(client.request("/scope"))
        assert json.loads(body)["http_version"] == "2"


def test_websocket_over_http2(serve: Any) -> None:
    """RFC 8441: an extended CONNECT with ``:protocol websocket``; the stream's DATA carries the
    WebSocket frames, masked from the client as over HTTP/1.1."""
    state = State()
    with serve(make_app(state)) as server, h2_client(server) as client:
        client.until(lambda e: isinstance(e, h2.events.RemoteSettingsChanged))
        assert client.conn.remote_settings.enable_connect_protocol == 1
        stream_id = client.conn.get_next_available_stream_id()
        client.conn.send_headers(
            stream_id,
            [
                (b":method", b"CONNECT"),
                (b":protocol", b"websocket"),
                (b":scheme", b"http"),
                (b":path", b"/chat?room=1"),
                (b":authority", f"127.0.0.1:{server.port}".encode()),
                (b"sec-websocket-version", b"13"),
            ],
        )
        client.flush()
        events = client.until(lambda e: isinstance(e, h2.events.ResponseReceived))
        assert header(events[-1].headers, ":status") == [b"200"]
        ws = FrameProtocol(client=True, extensions=[])

        ended: list[h2.events.StreamEnded] = []

        def exchange(data: bytes) -> list[Any]:
            client.conn.send_data(stream_id, data)
            client.flush()
            frames: list[Any] = []
            while not frames:
                for event in client.receive():
                    if isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                        ws.receive_bytes(event.data)
                        client.conn.acknowledge_received_data(
                            event.flow_controlled_length, stream_id
                        )
                        client.flush()
                    elif isinstance(event, h2.events.StreamEnded):
                        ended.append(event)
                frames += list(ws.received_frames())
                assert not client.closed
            return frames

        frames = exchange(bytes(ws.send_data("hello")))
        assert [(f.opcode, f.payload) for f in frames] == [(Opcode.TEXT, "hello")]
        frames = exchange(bytes(ws.send_data(b"\x00\x01")))
        assert [(f.opcode, bytes(f.payload)) for f in frames] == [(Opcode.BINARY, b"\x00\x01")]
        frames = exchange(bytes(ws.close(1000)))
        assert frames[0].opcode == Opcode.CLOSE and frames[0].payload[0] == 1000
        if not ended:  # the close frame ends the server's side of the stream
            client.until(lambda e: isinstance(e, h2.events.StreamEnded))
        client.conn.end_stream(stream_id)
        client.flush()
    scope = state.scopes[0]
    assert (scope["type"], scope["http_version"], scope["path"]) == ("websocket", "2", "/chat")
    assert scope["query_string"] == b"room=1"
    wait_for(lambda: state.outcomes, what="the app saw the close")
    assert state.outcomes == ["disconnect 1000"]
