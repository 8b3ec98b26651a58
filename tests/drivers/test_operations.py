"""Running it for real, over real sockets on both drivers: lifespan, graceful shutdown,
limits, timeouts, default headers, proxy headers, TLS and Unix sockets."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from sansio_asgi import Config, Server
from sansio_asgi.core import ProtocolSettings
from sansio_asgi.drivers import driver_class
from sansio_asgi.drivers.sockets import bind_socket

from .conftest import read_response, read_until_close, running_server, wait_for


def lifespan_app(events: list[str], *, fail: str | None = None, raise_in: str | None = None) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].split(".")[1]
                events.append(kind)
                if raise_in == kind:
                    raise RuntimeError(f"{kind} exploded")
                if kind == "startup":
                    scope["state"]["db"] = "connected"
                    if fail:
                        await send({"type": "lifespan.startup.failed", "message": fail})
                        return
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        events.append("request")
        body = f"{scope['state'].get('db')} {scope['state'].get('mutated')}".encode()
        scope["state"]["mutated"] = True  # a shallow copy: the next request must not see it
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


def test_lifespan_order_and_state(driver: str) -> None:
    events: list[str] = []
    with running_server(lifespan_app(events), driver=driver) as server:
        assert events == ["startup"]  # startup completed before the server accepted
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/").text == "connected None"
            assert client.get("/").text == "connected None"
    assert events == ["startup", "request", "request", "shutdown"]


def run_to_end(app: Any, **options: Any) -> Server:
    """Serve until the server stops by itself (it is expected to fail its startup)."""
    server = Server(Config(app=app, port=0, **options))
    asyncio.run(asyncio.wait_for(server.serve(), 10))
    return server


def test_lifespan_startup_failed_exits_3(driver: str, caplog: pytest.LogCaptureFixture) -> None:
    events: list[str] = []
    server = run_to_end(lifespan_app(events, fail="no database"), driver=driver)
    assert server.exit_code == 3
    assert not server.started
    assert "no database" in caplog.text


def test_lifespan_raising_app_auto_and_on(driver: str) -> None:
    events: list[str] = []
    with running_server(lifespan_app(events, raise_in="startup"), driver=driver) as server:
        assert httpx.get(server.url).text == "None None"  # served without lifespan
    server = run_to_end(lifespan_app([], raise_in="startup"), driver=driver, lifespan="on")
    assert server.exit_code == 3


def test_lifespan_startup_timeout(driver: str) -> None:
    async def hangs(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await asyncio.Event().wait()

    server = run_to_end(hangs, driver=driver, timeout_lifespan_startup=0.2)
    assert server.exit_code == 3


def test_lifespan_off(driver: str) -> None:
    events: list[str] = []
    with running_server(lifespan_app(events), driver=driver, lifespan="off") as server:
        httpx.get(server.url)
    assert events == ["request"]


def test_graceful_shutdown_finishes_in_flight_requests(driver: str) -> None:
    started = threading.Event()
    release = threading.Event()

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        started.set()
        while not release.is_set():
            await asyncio.sleep(0.01)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"finished"})

    with running_server(slow, driver=driver) as server:
        busy = server.connect()
        busy.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        idle = server.connect()
        wait_for(started.is_set)
        server.loop.call_soon_threadsafe(server.server.request_stop)
        # The idle keep-alive connection is closed at once; new connections are refused.
        assert read_until_close(idle) == b""
        wait_for(lambda: _refused(server.port))
        release.set()
        data = read_until_close(busy)
        busy.close()
        idle.close()
    assert data.startswith(b"HTTP/1.1 200 ")
    assert b"connection: close" in data.lower()
    assert data.endswith(b"finished\r\n0\r\n\r\n")


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except (ConnectionRefusedError, ConnectionResetError):  # reset: the listener was closing
        return True
    return False


def never_answers(cancelled: threading.Event) -> Any:
    """An app that never responds to a request, and sets ``cancelled`` when it is cancelled."""

    async def forever(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    return forever


def test_graceful_shutdown_timeout_cancels_apps(driver: str) -> None:
    cancelled = threading.Event()
    forever = never_answers(cancelled)

    with running_server(forever, driver=driver, timeout_graceful_shutdown=0.2) as server:
        sock = server.connect()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: bool(server.server._driver and server.server._driver.tasks))
    assert cancelled.is_set()
    sock.close()


def test_websockets_get_1012_on_shutdown(driver: str) -> None:
    async def ws(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    with (
        running_server(ws, driver=driver) as server,
        connect(f"ws://127.0.0.1:{server.port}/") as client,
    ):
        server.loop.call_soon_threadsafe(server.server.request_stop)
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1012


def test_nothing_lost_when_stopping_under_load(driver: str) -> None:
    """Requests arrive continuously while the server stops: every request the app saw got a
    complete response; the others were refused, never cut off."""
    seen = [0]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen[0] += 1
        await asyncio.sleep(0.005)
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})

    complete = [0]
    broken: list[str] = []
    stop = threading.Event()

    def client(port: int) -> None:
        while not stop.is_set():
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            except OSError:
                continue  # refused: the server stopped accepting
            with sock:
                try:
                    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    head, body = read_response(sock)
                except (AssertionError, OSError) as exc:
                    broken.append(repr(exc))
                    continue
                if head.startswith(b"HTTP/1.1 200") and body == b"ok":
                    complete[0] += 1
                else:
                    broken.append(repr(head))

    with running_server(app, driver=driver) as server:
        threads = [threading.Thread(target=client, args=(server.port,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        wait_for(lambda: complete[0] > 50)
        server.loop.call_soon_threadsafe(server.server.request_stop)
        wait_for(lambda: _refused(server.port))
    stop.set()
    for thread in threads:
        thread.join(10)
    # A connection still in the kernel's backlog when the listener closes is reset before the
    # app sees it; a request the app saw is never lost.
    assert complete[0] == seen[0], broken
    assert all("ConnectionReset" in b or "closed mid-head" in b for b in broken), broken


async def echo_path(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    host, port = scope["client"] or ("unix", 0)
    text = f"{host}:{port} {scope['scheme']} {scope['path']}"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]})
    await send({"type": "http.response.body", "body": text.encode()})


def test_limit_concurrency_answers_503(driver: str) -> None:
    release = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while not release.is_set():
            await asyncio.sleep(0.01)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    with running_server(app, driver=driver, limit_concurrency=1) as server:
        first = server.connect()
        first.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: bool(server.server._driver and server.server._driver.tasks))
        refused = httpx.get(server.url)
        assert refused.status_code == 503
        assert refused.headers["connection"] == "close"
        release.set()
        head, _ = read_response(first)
        assert head.startswith(b"HTTP/1.1 200")
        assert httpx.get(server.url).status_code == 200  # the slot was given back
        first.close()


def test_limit_max_requests_stops_the_server(driver: str) -> None:
    with running_server(echo_path, driver=driver, limit_max_requests=3) as server:
        with httpx.Client(base_url=server.url) as client:
            for _ in range(3):
                assert client.get("/").status_code == 200
        wait_for(lambda: server.server.should_exit)


def test_slow_request_body_gets_408(driver: str) -> None:
    with running_server(echo_path, driver=driver, timeout_request_body=0.3) as server:
        sock = server.connect()
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly some")
        data = read_until_close(sock)
        sock.close()
    assert data.startswith(b"HTTP/1.1 408 ")


def test_default_headers(driver: str) -> None:
    with running_server(
        echo_path, driver=driver, headers=("X-Frame-Options: DENY", "x-app: server")
    ) as server:
        response = httpx.get(server.url)
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers.get_list("x-app") == ["1"]  # the app's own header wins


@pytest.mark.parametrize(
    ("options", "headers", "expected"),
    [
        (
            {},
            {"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"},
            "203.0.113.7:0 https",
        ),
        ({}, {"forwarded": 'for="[2001:db8::1]:4711";proto=https'}, "2001:db8::1:4711 https"),
        ({"forwarded_allow_ips": "10.0.0.1"}, {"x-forwarded-for": "203.0.113.7"}, "127.0.0.1:"),
        ({"proxy_headers": False}, {"x-forwarded-for": "203.0.113.7"}, "127.0.0.1:"),
    ],
)
def test_proxy_headers(
    driver: str, options: dict[str, Any], headers: dict[str, str], expected: str
) -> None:
    with running_server(echo_path, driver=driver, **options) as server:
        text = httpx.get(server.url + "/p", headers=headers).text
    assert text.startswith(expected)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("tls")
    certfile = folder / "cert.pem"
    keyfile = folder / "key.pem"
    cert.private_key_pem.write_to_path(str(keyfile))
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    return ca, certfile, keyfile


def test_tls(driver: str, certificates: tuple[trustme.CA, Path, Path]) -> None:
    ca, certfile, keyfile = certificates
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(scope)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": scope["scheme"].encode()})
        elif scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": scope["scheme"]})
            await send({"type": "websocket.close"})

    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    options = {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}
    with running_server(app, driver=driver, **options) as server:
        url = f"https://127.0.0.1:{server.port}/"
        with httpx.Client(verify=client_context) as client:
            assert client.get(url).text == "https"
            assert client.get(url).text == "https"  # keep-alive over TLS
        with connect(f"wss://127.0.0.1:{server.port}/", ssl=client_context) as ws:
            assert ws.recv() == "wss"
        client_context.set_alpn_protocols(["http/1.1"])
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        with client_context.wrap_socket(raw, server_hostname="127.0.0.1") as tls_sock:
            assert tls_sock.selected_alpn_protocol() == "http/1.1"
    tls = seen[0]["extensions"]["tls"]
    assert tls["tls_version"] in (0x0303, 0x0304)
    assert isinstance(tls["cipher_suite"], int)
    assert tls["server_cert"].startswith("-----BEGIN CERTIFICATE-----")
    assert tls["client_cert_chain"] == []
    with running_server(app, driver=driver) as plain:
        httpx.get(plain.url)
    assert "tls" not in seen[-1]["extensions"]


def test_bad_certificate_path_is_one_line(driver: str, tmp_path: Path) -> None:
    from sansio_asgi.config import ConfigError

    with pytest.raises(ConfigError) as error:
        run_to_end(echo_path, driver=driver, ssl_certfile=str(tmp_path / "missing.pem"))
    assert "missing.pem" in str(error.value)
    assert "\n" not in str(error.value)


def test_unix_socket(driver: str, tmp_path: Path) -> None:
    path = str(tmp_path / "app.sock")
    with running_server(echo_path, driver=driver, uds=path):
        transport = httpx.HTTPTransport(uds=path)
        with httpx.Client(transport=transport, base_url="http://localhost") as client:
            response = client.get("/unix")
    assert response.status_code == 200
    assert response.text.endswith("http /unix")
    assert not Path(path).exists()  # removed on shutdown


def test_tls_client_certificates(driver: str, certificates: tuple[trustme.CA, Path, Path]) -> None:
    ca, certfile, keyfile = certificates
    ca_file = certfile.parent / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(scope["extensions"]["tls"])
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"hi"})

    client_cert = ca.issue_cert("client.example")
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    client_cert.configure_cert(client_context)
    options = {
        "ssl_certfile": str(certfile),
        "ssl_keyfile": str(keyfile),
        "ssl_ca_certs": str(ca_file),
        "ssl_cert_reqs": int(ssl.CERT_REQUIRED),
    }
    with running_server(app, driver=driver, **options) as server:
        with httpx.Client(verify=client_context) as client:
            assert client.get(f"https://127.0.0.1:{server.port}/").text == "hi"
        anonymous = ssl.create_default_context()
        ca.configure_trust(anonymous)
        with pytest.raises(httpx.HTTPError), httpx.Client(verify=anonymous) as client:
            client.get(f"https://127.0.0.1:{server.port}/")
    (tls,) = seen
    assert tls["client_cert_chain"][0].startswith("-----BEGIN CERTIFICATE-----")
    from cryptography import x509

    subject = x509.load_pem_x509_certificate(client_cert.cert_chain_pems[0].bytes()).subject
    assert tls["client_cert_name"] == subject.rfc4514_string()


def test_a_second_stop_request_forces_the_exit(driver: str) -> None:
    """Ctrl+C twice: without --timeout-graceful-shutdown the first waits for the app, the
    second cancels it."""
    cancelled = threading.Event()
    forever = never_answers(cancelled)

    with running_server(forever, driver=driver) as server:
        sock = server.connect()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: bool(server.server._driver and server.server._driver.tasks))
        server.loop.call_soon_threadsafe(server.server.request_stop)
        wait_for(lambda: _refused(server.port))
        assert not cancelled.is_set()  # the first request waits for the app
        server.loop.call_soon_threadsafe(server.server.request_stop)
        wait_for(cancelled.is_set)
        sock.close()


def test_a_forced_first_stop_cuts_everything(driver: str) -> None:
    """``request_stop(force=True)`` as the first stop (SIGQUIT under gunicorn): the app is
    cancelled and ``serve()`` returns, although the driver closes before it stops accepting."""
    cancelled = threading.Event()
    forever = never_answers(cancelled)

    with running_server(forever, driver=driver) as server:
        sock = server.connect()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: bool(server.server._driver and server.server._driver.tasks))
        server.loop.call_soon_threadsafe(lambda: server.server.request_stop(force=True))
        wait_for(cancelled.is_set)
        wait_for(server.loop.is_closed)
        sock.close()


def test_closing_twice_at_once_closes_once(driver: str) -> None:
    """A forced stop during a graceful one calls the driver's ``close()`` while the first call
    still runs: the second waits for the first and neither fails."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    async def main() -> None:
        listener = bind_socket("127.0.0.1", 0)
        instance = driver_class(driver)(app, ProtocolSettings(), lambda event: None)
        await instance.start([listener])
        await asyncio.gather(*(instance.close() for _ in range(3)))
        await instance.close()  # and once more, after the others
        listener.close()

    for _ in range(100):  # the threads' timing decides the interleaving: try it many times
        asyncio.run(main())
