"""sansio-asgi behind a real nginx, over a TCP and a Unix socket upstream, with both drivers.

The stack is the one ``docs/deployment.md`` describes: nginx terminates TLS on a loopback port
(a certificate from ``trustme``) and proxies to ``python -m sansio_asgi ... --port 0`` or
``--uds PATH``, started as a subprocess with its log in a file. nginx runs in the foreground
(``daemon off;``) with its own prefix, config, pid file and logs in a temporary directory, and
is stopped by its PID. When no nginx is installed, the session installs Debian's with apt-get
(the tests run as root); if that fails, the tests fail with apt-get's output.

Clients connect from 127.0.0.2 (any 127/8 address is loopback), so the address nginx forwards
differs from the TCP peer the server sees (nginx, at 127.0.0.1): the app can only see
127.0.0.2 by trusting nginx's X-Forwarded-For, and ``https`` only from its X-Forwarded-Proto.

The server logs at ``trace`` level, whose "connection made" lines count the upstream
connections nginx opened: with ``keepalive 8`` in the upstream block, sequential requests
reuse one. At the end of each stack, nginx's error log (at ``warn``) must be empty and the
server's log must hold no traceback.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from websockets.sync.client import connect as ws_connect

from ..drivers.conftest import wait_for
from .deploy_app import pattern
from .tools import apt_binary

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.integration.deploy_app:app"
DEADLINE_S = 30.0
CLIENT_ADDRESS = "127.0.0.2"
BIG_BYTES = 50 * 1024 * 1024

NGINX_CONF = """\
{user}daemon off;
worker_processes 1;
pid {run}/nginx.pid;
error_log {run}/error.log warn;

events {{
    worker_connections 256;
}}

http {{
    access_log {run}/access.log;
    client_body_temp_path {run}/client_body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;

    upstream app {{
        server {upstream};
        keepalive 8;
        keepalive_timeout 4s;  # below the server's --timeout-keep-alive (5 s)
    }}

    # "Connection: upgrade" for a WebSocket handshake, no Connection header otherwise, so
    # that the upstream connection stays open for the next request.
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      '';
    }}

    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {run}/cert.pem;
        ssl_certificate_key {run}/key.pem;

        client_max_body_size 0;

        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    """Debian's nginx, installed with apt-get when it is missing."""
    return apt_binary("nginx", "nginx")


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


class Stack:
    def __init__(
        self,
        run: Path,
        port: int,
        server: subprocess.Popen[bytes],
        server_log: Path,
        ca: trustme.CA,
    ) -> None:
        self.run = run
        self.server = server
        self.port = port
        self.server_log = server_log
        self.url = f"https://127.0.0.1:{port}"
        self.ssl = ssl.create_default_context()
        ca.configure_trust(self.ssl)

    def client(self) -> httpx.Client:
        """A client connecting from 127.0.0.2."""
        transport = httpx.HTTPTransport(local_address=CLIENT_ADDRESS, verify=self.ssl)
        return httpx.Client(base_url=self.url, transport=transport, timeout=DEADLINE_S)

    def log(self) -> str:
        return self.server_log.read_text(errors="replace")

    def connections_made(self) -> int:
        return self.log().count(" connection made\n")


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(DEADLINE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"pid {process.pid} did not stop on signal {sig}") from None


@contextlib.contextmanager
def stack(
    nginx: str,
    ca: trustme.CA,
    run: Path,
    driver: str,
    upstream: str,
    *server_args: str,
    allowed_errors: re.Pattern[str] | None = None,
) -> Iterator[Stack]:
    """The server on ``upstream`` ("tcp" or "uds") behind nginx, both stopped at the end;
    nginx's error log must be empty then, but for lines ``allowed_errors`` matches."""
    run.mkdir()
    server_log = run / "server.log"
    command = [
        sys.executable, "-m", "sansio_asgi", APP,
        "--driver", driver,
        "--log-level", "trace",
        "--timeout-graceful-shutdown", "5",
        *server_args,
    ]  # fmt: skip
    command += ["--uds", str(run / "app.sock")] if upstream == "uds" else ["--port", "0"]
    env = {key: value for key, value in os.environ.items() if key != "FORWARDED_ALLOW_IPS"}
    with open(server_log, "wb") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    nginx_process = None
    try:
        running_line = re.compile(r"running on (http://127\.0\.0\.1:(\d+)|http\+unix://)")
        running = wait_for(
            lambda: server.poll() is not None or running_line.search(server_log.read_text()),
            what="the server's 'running on' line",
        )
        assert server.poll() is None, server_log.read_text()
        address = f"127.0.0.1:{running[2]}" if upstream == "tcp" else f"unix:{run}/app.sock"
        cert = ca.issue_cert("127.0.0.1")
        cert.private_key_pem.write_to_path(str(run / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(run / "cert.pem"))
        port = free_port()
        user = "user root root;\n" if os.geteuid() == 0 else ""
        conf = NGINX_CONF.format(user=user, run=run, port=port, upstream=address)
        (run / "nginx.conf").write_text(conf)
        nginx_command = [nginx, "-p", str(run), "-c", str(run / "nginx.conf"), "-e"]
        nginx_command.append(str(run / "error.log"))
        with open(run / "nginx.out", "wb") as out:
            nginx_process = subprocess.Popen(nginx_command, stdout=out, stderr=subprocess.STDOUT)

        def listening() -> bool:
            assert nginx_process is not None
            assert nginx_process.poll() is None, (run / "nginx.out").read_text()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return True
            return False

        wait_for(listening, what="nginx listening")
        yield Stack(run, port, server, server_log, ca)
    finally:
        try:
            if nginx_process is not None:
                _stop(nginx_process, signal.SIGQUIT)  # graceful: nginx's worker finishes first
        finally:
            code = _stop(server)
    log = server_log.read_text(errors="replace")
    assert code == 0, log[-3000:]
    assert "Traceback" not in log and "ERROR:" not in log, log[-3000:]
    lines = (run / "error.log").read_text().splitlines()
    errors = [line for line in lines if not (allowed_errors and allowed_errors.search(line))]
    assert not errors, "nginx's error log is not clean:\n" + "\n".join(errors)


@pytest.fixture(scope="module", params=["asyncio", "selectors"])
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module", params=["tcp", "uds"])
def behind_nginx(
    request: pytest.FixtureRequest,
    nginx_binary: str,
    ca: trustme.CA,
    driver: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    run = tmp_path_factory.mktemp("nginx") / f"{driver}-{request.param}"
    with stack(nginx_binary, ca, run, driver, str(request.param)) as running:
        yield running


def test_client_and_scheme_from_forwarded_headers(behind_nginx: Stack) -> None:
    with behind_nginx.client() as client:
        info = client.get("/info").json()
    assert info["client"][0] == CLIENT_ADDRESS
    assert info["x_forwarded_for"] == CLIENT_ADDRESS
    assert info["scheme"] == "https"
    assert info["started_up"]


def test_websocket_through_nginx(behind_nginx: Stack) -> None:
    url = f"wss://127.0.0.1:{behind_nginx.port}/ws"
    sock = socket.create_connection(
        ("127.0.0.1", behind_nginx.port), DEADLINE_S, source_address=(CLIENT_ADDRESS, 0)
    )
    with ws_connect(url, sock=sock, ssl=behind_nginx.ssl, open_timeout=DEADLINE_S) as ws:
        info = json.loads(ws.recv(timeout=DEADLINE_S))
        assert info["scheme"] == "wss"
        assert info["client"][0] == CLIENT_ADDRESS
        for message in ("hello", "x" * 100_000):
            ws.send(message)
            assert ws.recv(timeout=DEADLINE_S) == message
        ws.send(b"\x00\xff" * 1000)
        assert ws.recv(timeout=DEADLINE_S) == b"\x00\xff" * 1000


def test_upstream_keepalive_is_reused(behind_nginx: Stack) -> None:
    before = behind_nginx.connections_made()
    for _ in range(20):
        with behind_nginx.client() as client:  # a new client connection each time
            assert client.get("/").text == "hello"
    # nginx has one worker, and its idle upstream connection serves the next request.
    assert behind_nginx.connections_made() - before <= 2


def test_50_mib_up_and_down(behind_nginx: Stack) -> None:
    data = pattern(BIG_BYTES)

    def chunks() -> Iterator[bytes]:
        view = memoryview(data)
        for start in range(0, len(data), 1024 * 1024):
            yield bytes(view[start : start + 1024 * 1024])

    with behind_nginx.client() as client:
        # A generator body goes out chunked; nginx streams it on (proxy_request_buffering off)
        uploaded = client.post("/upload", content=chunks()).json()
        assert uploaded == {"bytes": BIG_BYTES, "sha256": hashlib.sha256(data).hexdigest()}
        digest = hashlib.sha256()
        size = 0
        with client.stream("GET", f"/download?{BIG_BYTES}") as response:
            assert response.status_code == 200
            assert response.headers["content-length"] == str(BIG_BYTES)
            for chunk in response.iter_bytes():
                size += len(chunk)
                digest.update(chunk)
    assert size == BIG_BYTES
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


def test_forwarded_headers_ignored_from_an_untrusted_nginx(
    nginx_binary: str, ca: trustme.CA, driver: str, tmp_path: Path
) -> None:
    """The same nginx, but the server trusts only 192.0.2.1: the client is nginx itself."""
    args = ("--forwarded-allow-ips", "192.0.2.1")
    run = tmp_path / "run"
    with stack(nginx_binary, ca, run, driver, "tcp", *args) as untrusted, untrusted.client() as c:
        info = c.get("/info").json()
    assert info["client"][0] == "127.0.0.1"
    assert info["scheme"] == "http"
    assert info["x_forwarded_for"] == CLIENT_ADDRESS


class Load:
    """``clients`` threads sending GET /info through nginx, each on a kept-alive connection."""

    def __init__(self, stack: Stack, clients: int = 4) -> None:
        self.stack = stack
        self.sent = 0
        self.failed: list[str] = []
        self.pids: list[int] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(clients)]

    def _run(self) -> None:
        with self.stack.client() as client:
            while not self._stop.is_set():
                try:
                    response = client.get("/info")
                    pid = response.json()["pid"] if response.status_code == 200 else None
                    failure = None if pid else f"status {response.status_code}"
                except Exception as exc:
                    pid, failure = None, repr(exc)
                with self._lock:
                    self.sent += 1
                    if failure is not None:
                        self.failed.append(failure)
                    else:
                        self.pids.append(pid)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(DEADLINE_S)


@pytest.mark.parametrize("upstream", ["tcp", "uds"])
def test_sighup_rolling_restart_under_load(
    nginx_binary: str, ca: trustme.CA, driver: str, tmp_path: Path, upstream: str
) -> None:
    """``--workers 2`` behind nginx: SIGHUP replaces both workers while 4 clients keep sending
    requests, and not one of them fails."""
    run = tmp_path / "run"
    with stack(
        nginx_binary,
        ca,
        run,
        driver,
        upstream,
        "--workers",
        "2",
    ) as behind:
        wait_for(lambda: behind.log().count(" is ready") == 2, what="2 workers ready")
        old = set(re.findall(r"Started worker process \[(\d+)\]", behind.log()))
        with Load(behind) as load:
            wait_for(lambda: load.sent >= 200, what="200 requests before SIGHUP")
            behind.server.send_signal(signal.SIGHUP)

            def old_workers_stopped() -> bool:
                stopped = re.findall(r"Worker process \[(\d+)\] stopped", behind.log())
                return set(stopped) >= old

            wait_for(old_workers_stopped, what="the old workers stopped")
            after = load.sent
            wait_for(lambda: load.sent >= after + 200, what="200 requests after the restart")
        pids_after = {str(pid) for pid in load.pids[-100:]}
        retried = (run / "error.log").read_text().count("prematurely closed")
        print(
            f"SIGHUP behind nginx ({driver}, {upstream}): {load.sent} sent, "
            f"{len(load.failed)} failed, {retried} retried by nginx"
        )
    assert not load.failed, f"{len(load.failed)} of {load.sent} failed: {load.failed[:5]}"
    assert pids_after and not pids_after & old, "the new workers serve"
