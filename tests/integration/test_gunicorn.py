"""The gunicorn worker classes under a real gunicorn master, one test per gunicorn behaviour.

Every test starts ``python -m gunicorn -k sansio_asgi.workers.<class>`` as a subprocess on an
ephemeral loopback port, talks to it over real sockets, signals the master as an operator
would, and stops it with SIGTERM (which must end it with status 0 and no traceback in its log).
Worker processes are found as the master's children in ``/proc``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from gunicorn.config import Config as GunicornConfig
from websockets.sync.client import connect as ws_connect

from sansio_asgi.core.settings import H2_MAX_HEADER_LIST_BYTES
from sansio_asgi.workers import config_from_gunicorn, max_header_bytes

from ..drivers.conftest import wait_for
from .deploy_app import pattern

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.integration.deploy_app:app"
DEADLINE_S = 20.0
WORKER_CLASSES = ["SansioWorker", "SansioSelectorsWorker"]


def children(pid: int) -> set[int]:
    """The live processes whose parent is ``pid``."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.add(int(entry))
    return found


class Gunicorn:
    def __init__(self, process: subprocess.Popen[bytes], log: Path, port: int) -> None:
        self.process = process
        self.log = log
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def workers(self) -> set[int]:
        return children(self.pid)

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """One request on a connection of its own."""
        return httpx.get(self.url + path, timeout=DEADLINE_S, **kwargs)

    def wait_workers(
        self, count: int, exclude: frozenset[int] | set[int] = frozenset()
    ) -> set[int]:
        """Wait until exactly ``count`` workers, none of them in ``exclude``, serve."""

        def ready() -> set[int] | None:
            pids = self.workers()
            if len(pids) != count or pids & exclude:
                return None
            running = re.findall(r"\[(\d+)\] \[INFO\] sansio-asgi running on", self.text())
            return pids if pids <= {int(pid) for pid in running} else None

        return wait_for(ready, what=f"{count} workers serving", detail=lambda: self.text()[-3000:])


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Callable[..., Gunicorn]]:
    started: list[Gunicorn] = []

    def start(
        worker_class: str, *args: str, app: str = APP, workers: int = 2, ready: bool = True
    ) -> Gunicorn:
        log = tmp_path / f"gunicorn-{len(started)}.log"
        command = [
            sys.executable, "-m", "gunicorn",
            "-k", f"sansio_asgi.workers.{worker_class}",
            "-w", str(workers),
            "-b", "127.0.0.1:0",
            "--chdir", str(ROOT),
            "--graceful-timeout", "5",
            "--error-logfile", "-",
            *(["--no-control-socket"] if "control_socket_disable" in GunicornConfig().settings
              else []),
            *args,
            app,
        ]  # fmt: skip
        with open(log, "wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        server = Gunicorn(process, log, 0)
        started.append(server)  # stopped at teardown whatever happens next
        listening = wait_for(
            lambda: (
                process.poll() is not None
                or re.search(r"Listening at: http\S*://127\.0\.0\.1:(\d+)", log.read_text())
            ),
            what="gunicorn listening",
            detail=server.text,
        )
        if process.poll() is not None:
            return server
        server.port = int(listening[1])
        server.url = f"http://127.0.0.1:{server.port}"
        if ready:
            server.wait_workers(workers)
        return server

    yield start

    for server in started:
        if server.process.poll() is None:
            workers = server.workers()
            server.signal(signal.SIGTERM)
            try:
                code = server.process.wait(DEADLINE_S)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()
                for pid in workers:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                raise AssertionError(
                    f"gunicorn did not stop on SIGTERM:\n{server.text()}"
                ) from None
            assert code == 0, server.text()
        text = server.text()
        assert "Traceback" not in text, text


@pytest.fixture(params=WORKER_CLASSES)
def worker_class(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Load:
    """Requests in a loop from a thread, each on a new connection, counting the failures."""

    def __init__(self, server: Gunicorn) -> None:
        self.server = server
        self.sent = 0
        self.failed: list[str] = []
        self.pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sent += 1
            try:
                response = self.server.get("/info")
                assert response.status_code == 200, response.status_code
                self.pids.add(response.json()["pid"])
            except Exception as exc:
                self.failed.append(repr(exc))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(DEADLINE_S)


# -- the mapping of gunicorn's settings ------------------------------------------------------


def test_settings_mapping() -> None:
    cfg = GunicornConfig()
    for name, value in [
        ("keepalive", 7),
        ("graceful_timeout", 11),
        ("limit_request_line", 100),
        ("limit_request_fields", 5),
        ("limit_request_field_size", 200),
        ("forwarded_allow_ips", "10.0.0.1,10.0.1.0/24"),
        ("access_log_format", '%(h)s "%(r)s" %(s)s'),
        ("loglevel", "warning"),
    ]:
        cfg.set(name, value)
    config = config_from_gunicorn(cfg, APP, driver="selectors", max_requests=42)
    assert config.driver == "selectors"
    assert config.timeout_keep_alive == 7
    assert config.timeout_graceful_shutdown == 11
    assert config.limit_max_requests == 42
    assert config.h11_max_incomplete_event_size == 100 + 2 + 5 * (200 + 2) + 4
    assert config.forwarded_allow_ips == "10.0.0.1,10.0.1.0/24"
    assert config.proxy_headers
    assert config.access_log_format == '%(h)s "%(r)s" %(s)s'
    assert config.log_level == "warning"
    assert config.ssl_certfile is None


def test_http2_settings_mapping() -> None:
    plain = config_from_gunicorn(GunicornConfig(), APP, driver="asyncio", max_requests=None)
    assert plain.http2 is False  # gunicorn's default --http-protocols is h1
    cfg = GunicornConfig()
    for name, value in [
        ("http_protocols", "h2,h1"),
        ("http2_cleartext", "prior-knowledge"),
        ("http2_max_concurrent_streams", 7),
        ("http2_initial_window_size", 1024),
        ("http2_max_frame_size", 32768),
        ("http2_max_header_list_size", 0),  # gunicorn's "unlimited": ours stays
    ]:
        cfg.set(name, value)
    config = config_from_gunicorn(cfg, APP, driver="asyncio", max_requests=None)
    assert config.http2 is True
    assert config.h2_max_concurrent_streams == 7
    assert config.h2_initial_window_size == 1024
    assert config.h2_max_frame_size == 32768
    assert config.h2_max_header_list_size == H2_MAX_HEADER_LIST_BYTES
    cfg.set("http2_cleartext", "off")  # without TLS, h2 only with cleartext on
    assert not config_from_gunicorn(cfg, APP, driver="asyncio", max_requests=None).http2


def test_header_limits_follow_gunicorns_own_bounds() -> None:
    defaults = GunicornConfig()
    # gunicorn's defaults: a 4094-byte line and 100 fields of 8190 bytes
    assert (
        max_header_bytes(
            defaults.limit_request_line,
            defaults.limit_request_fields,
            defaults.limit_request_field_size,
        )
        == 4094 + 2 + 100 * 8192 + 4
    )
    # 0 is "no limit" to gunicorn, which still caps the line and the field count
    assert max_header_bytes(0, 0, 0) == 8190 + 2 + 32768 * 8192 + 4


@pytest.mark.parametrize(("name", "value"), [("proxy_protocol", "v1"), ("protocol", "uwsgi")])
def test_unsupported_settings_are_refused(name: str, value: str) -> None:
    cfg = GunicornConfig()
    cfg.set(name, value)
    with pytest.raises(ValueError, match=f"--{name.replace('_', '-')}"):
        config_from_gunicorn(cfg, APP, driver="asyncio", max_requests=None)


# -- serving ---------------------------------------------------------------------------------


def test_http_and_websocket(gunicorn: Any, worker_class: str, tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    server = gunicorn(
        worker_class, "--access-logfile", str(access), "--access-logformat", '%(p)s "%(r)s" %(s)s'
    )
    workers = server.workers()
    info = server.get("/info").json()
    assert info["pid"] in workers
    assert info["started_up"], "the lifespan startup ran in the worker"
    assert server.get("/download?3000000").content == pattern(3_000_000)
    body = os.urandom(1_000_000)
    upload = httpx.post(server.url + "/upload", content=body, timeout=DEADLINE_S).json()
    assert upload["bytes"] == len(body)
    with ws_connect(f"ws://127.0.0.1:{server.port}/ws", open_timeout=DEADLINE_S) as ws:
        hello = json.loads(ws.recv(timeout=DEADLINE_S))
        assert hello["pid"] in workers
        ws.send("ping")
        assert ws.recv(timeout=DEADLINE_S) == "ping"
        ws.send(b"\x00\x01")
        assert ws.recv(timeout=DEADLINE_S) == b"\x00\x01"
    # the access lines go to gunicorn's access log, in gunicorn's access_log_format
    line = f'{info["pid"]} "GET /info HTTP/1.1" 200'
    wait_for(lambda: access.exists() and line in access.read_text(), what=line)


def test_tls_from_certfile_and_keyfile(gunicorn: Any, worker_class: str, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    server = gunicorn(
        worker_class, "--certfile", str(certfile), "--keyfile", str(keyfile), workers=1
    )
    context = ssl.create_default_context()
    ca.configure_trust(context)
    response = httpx.get(f"https://127.0.0.1:{server.port}/info", verify=context)
    assert response.json()["scheme"] == "https"


def test_proxy_headers_and_limits(gunicorn: Any, worker_class: str) -> None:
    server = gunicorn(
        worker_class,
        "--forwarded-allow-ips", "127.0.0.1",
        "--limit-request-line", "200",
        "--limit-request-fields", "4",
        "--limit-request-field_size", "100",
        "--keep-alive", "1",
        workers=1,
    )  # fmt: skip
    forwarded = {"x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "https"}
    info = server.get("/info", headers=forwarded).json()
    assert info["client"][0] == "203.0.113.9"
    assert info["scheme"] == "https"
    # 200 + 2 + 4 * (100 + 2) + 4 = 614 bytes of request head at most
    assert server.get("/", headers={"x-pad": "a" * 300}).status_code == 200
    assert server.get("/", headers={"x-pad": "a" * 700}).status_code == 431
    # --keep-alive 1: an idle kept-alive connection is closed after a second
    with socket.create_connection(("127.0.0.1", server.port), timeout=DEADLINE_S) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        data = b""
        while not data.endswith(b"hello"):
            data += sock.recv(65536)
        started = time.monotonic()
        assert sock.recv(65536) == b""
        assert 0.5 < time.monotonic() - started < 5


def test_untrusted_peer_forwarded_headers_ignored(gunicorn: Any, worker_class: str) -> None:
    server = gunicorn(worker_class, "--forwarded-allow-ips", "192.0.2.1", workers=1)
    forwarded = {"x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "https"}
    info = server.get("/info", headers=forwarded).json()
    assert info["client"][0] == "127.0.0.1"
    assert info["scheme"] == "http"


def test_failed_lifespan_startup_stops_gunicorn(gunicorn: Any, worker_class: str) -> None:
    server = gunicorn(
        worker_class, app="tests.integration.deploy_app:failing_startup_app", workers=1, ready=False
    )
    code = server.process.wait(DEADLINE_S)
    assert code != 0
    assert "no database" in server.text()
    assert "Worker failed to boot" in server.text()


# -- the master's signals --------------------------------------------------------------------


def test_hup_replaces_workers_while_serving(gunicorn: Any, worker_class: str) -> None:
    server = gunicorn(worker_class)
    old = server.workers()
    with Load(server) as load:
        wait_for(lambda: load.sent > 20)
        server.signal(signal.SIGHUP)
        new = server.wait_workers(2, exclude=old)
        wait_for(lambda: load.pids & new)
        sent = load.sent
        wait_for(lambda: load.sent > sent + 20)
    assert not load.failed, f"{len(load.failed)} of {load.sent} failed: {load.failed[:5]}"
    assert server.get("/info").json()["pid"] in new


def test_ttin_and_ttou_change_the_worker_count(gunicorn: Any, worker_class: str) -> None:
    server = gunicorn(worker_class)
    server.signal(signal.SIGTTIN)
    three = server.wait_workers(3)
    server.signal(signal.SIGTTOU)
    two = server.wait_workers(2)
    assert two < three
    assert server.get("/info").json()["pid"] in two


def test_max_requests_replaces_workers(gunicorn: Any, worker_class: str) -> None:
    server = gunicorn(worker_class, "--max-requests", "3", workers=1)
    first = server.workers()
    served = []
    for _ in range(10):
        info = server.get("/info").json()
        served.append((info["pid"], info["served"]))
    pids = {pid for pid, _ in served}
    assert len(pids) >= 3, served
    assert all(count <= 3 for _, count in served), served
    assert first < pids
    assert "Maximum request limit of 3 reached" in server.text()


def test_blocked_worker_is_killed_and_replaced(gunicorn: Any, worker_class: str) -> None:
    server = gunicorn(worker_class, "--timeout", "2", workers=1)
    (blocked,) = server.workers()
    # While the loop is free, the heartbeat keeps the worker alive well past the timeout.
    idle_until = time.monotonic() + 5
    while time.monotonic() < idle_until:
        assert server.get("/info").json()["pid"] == blocked
    assert "WORKER TIMEOUT" not in server.text()
    started = time.monotonic()
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url + "/block?60", timeout=DEADLINE_S)
    assert time.monotonic() - started < DEADLINE_S - 2
    assert f"WORKER TIMEOUT (pid:{blocked})" in server.text()
    (replacement,) = server.wait_workers(1, exclude={blocked})
    assert server.get("/info").json()["pid"] == replacement


def test_usr1_reopens_the_access_log(gunicorn: Any, worker_class: str, tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    server = gunicorn(
        worker_class, "--access-logfile", str(access), "--access-logformat", '%(p)s "%(r)s"'
    )
    workers = server.workers()
    server.get("/before")
    wait_for(lambda: access.exists() and "/before" in access.read_text())
    rotated = tmp_path / "access.log.1"
    access.rename(rotated)
    server.signal(signal.SIGUSR1)
    # Every worker reopens its file: requests keep going until each worker's pid has logged
    # one to a new file at the original path.
    count = 0

    def every_worker_logs_to_the_new_file() -> bool:
        nonlocal count
        count += 1
        server.get(f"/after/{count}")
        if not access.exists():
            return False
        pids = {int(line.split()[0]) for line in access.read_text().splitlines()}
        return pids == workers

    wait_for(every_worker_logs_to_the_new_file)
    assert "/before" in rotated.read_text()
    assert "/before" not in access.read_text()


def test_workers_stop_when_the_master_dies(gunicorn: Any, worker_class: str) -> None:
    server = gunicorn(worker_class)
    workers = server.workers()
    server.process.kill()  # SIGKILL: the master cannot stop its workers
    server.process.wait()

    def gone(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
        except OSError:
            return True

    wait_for(lambda: all(gone(pid) for pid in workers), what="the orphaned workers exit")
    assert server.text().count("Parent changed, shutting down") == 2


def test_reload_restarts_the_worker(gunicorn: Any, worker_class: str, tmp_path: Path) -> None:
    module = tmp_path / "reloaded_app.py"
    module.write_text("from tests.integration.deploy_app import app\n")
    server = gunicorn(
        worker_class,
        "--reload",
        "--reload-engine",
        "poll",
        "--pythonpath",
        str(tmp_path),
        app="reloaded_app:app",
        workers=1,
    )
    (first,) = server.workers()
    assert server.get("/info").json()["pid"] == first
    module.write_text("from tests.integration.deploy_app import app  # changed\n")
    (second,) = server.wait_workers(1, exclude={first})
    assert server.get("/info").json()["pid"] == second
    assert "reloaded_app.py modified" in server.text()


def sleeping_request(server: Gunicorn, seconds: float) -> tuple[threading.Thread, list[Any]]:
    """GET /sleep?seconds in a thread, once the app is sleeping in it; the outcome in a list."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(httpx.get(f"{server.url}/sleep?{seconds}", timeout=DEADLINE_S))
        except httpx.TransportError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: server.get("/info").json()["sleeping"] == 1, what="the app sleeping")
    return thread, outcome


def test_term_lets_a_request_in_flight_finish(gunicorn: Any, worker_class: str) -> None:
    server = gunicorn(worker_class, workers=1)
    thread, outcome = sleeping_request(server, 1.5)
    server.signal(signal.SIGTERM)
    thread.join(DEADLINE_S)
    assert server.process.wait(DEADLINE_S) == 0
    assert isinstance(outcome[0], httpx.Response), outcome
    assert outcome[0].text == "slept"


def test_quit_stops_at_once(gunicorn: Any, worker_class: str) -> None:
    server = gunicorn(worker_class, "--graceful-timeout", "25", workers=1)  # the last one wins
    thread, outcome = sleeping_request(server, 30)
    started = time.monotonic()
    server.signal(signal.SIGQUIT)
    thread.join(DEADLINE_S)
    assert server.process.wait(DEADLINE_S) == 0
    assert time.monotonic() - started < 10, "well within --graceful-timeout"
    assert isinstance(outcome[0], httpx.TransportError), outcome
