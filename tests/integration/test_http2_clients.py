"""HTTP/2 with real clients: nghttp, curl, h2load and a headless Chromium, on both drivers.

The server runs as ``python -m sansio_asgi tests.integration.h2_app:app --port 0`` in a
subprocess, its log in a file, once in cleartext (HTTP/2 with prior knowledge, or by
``Upgrade: h2c``) and once over TLS (HTTP/2 chosen by ALPN), with a certificate from a
``trustme`` test CA. Each server is stopped by its PID at the end of the module, must exit 0,
and its log must hold no traceback and no error.

The clients are Debian's (``nghttp2-client`` for nghttp and h2load, ``curl``, ``chromium``),
installed with apt-get when missing (``tools.apt_binary``): a failed install fails the tests.
Chromium runs headless with a profile of its own in a temporary directory, trusts the test
certificate by its public key (``--ignore-certificate-errors-spki-list``, not a blanket
``--ignore-certificate-errors``), and is driven over its DevTools protocol (a websocket,
``--remote-debugging-port``), not through chromedriver. It loads ``/page``, whose script makes
50 ``fetch()`` requests at once; the server holds each until all 50 are in the app together,
which only HTTP/2's streams can bring about (a browser opens six HTTP/1.1 connections to a
host). A screenshot of the page is saved as ``chromium-<driver>.png`` in the test's
temporary directory (pytest keeps the last three runs' under ``/tmp/pytest-of-<user>/``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from ..drivers.conftest import wait_for
from .browser import headless_chromium, spki_sha256
from .deploy_app import pattern
from .h2_app import FETCHES
from .tools import apt_binary

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(sys.platform != "linux", reason="Debian's clients, installed by apt-get"),
]

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.integration.h2_app:app"
DEADLINE_S = 60.0
UPLOAD_BYTES = 1024 * 1024 + 1  # past the 64 KiB stream window many times over
DOWNLOAD_BYTES = 5 * 1024 * 1024


# -- clients -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def nghttp() -> str:
    return apt_binary("nghttp", "nghttp2-client")


@pytest.fixture(scope="session")
def h2load() -> str:
    return apt_binary("h2load", "nghttp2-client")


@pytest.fixture(scope="session")
def curl() -> str:
    return apt_binary("curl", "curl")


@pytest.fixture(scope="session")
def chromium() -> str:
    return apt_binary("chromium", "chromium")


def run_client(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """A client run to its end; its exit status must be 0."""
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=DEADLINE_S, check=False, **kwargs
    )
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


# -- servers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The test CA's certificate, and the server's certificate (for 127.0.0.1) and key."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    folder = tmp_path_factory.mktemp("tls")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    return folder / "ca.pem", folder / "cert.pem", folder / "key.pem"


class Server:
    """``python -m sansio_asgi`` in a subprocess, with its output in a log file."""

    def __init__(self, driver: str, log: Path, *args: str) -> None:
        self.log_path = log
        command = [sys.executable, "-m", "sansio_asgi", APP, "--driver", driver, "--port", "0"]
        command += ["--timeout-graceful-shutdown", "5", "--no-use-colors", *args]
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            line = re.compile(r"running on (https?)://127\.0\.0\.1:(\d+)")
            running = wait_for(
                lambda: self.process.poll() is not None or line.search(self.log()),
                timeout_s=DEADLINE_S,
                what="the server's 'running on' line",
            )
            assert self.process.poll() is None, self.log()
        except BaseException:
            self.stop()
            raise
        self.url = f"{running[1]}://127.0.0.1:{running[2]}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM by PID; SIGKILL by PID if it has not exited within the deadline."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"pid {self.process.pid} did not stop on SIGTERM") from None


@contextlib.contextmanager
def serving(driver: str, log: Path, *args: str) -> Iterator[Server]:
    server = Server(driver, log, *args)
    try:
        yield server
    finally:
        code = server.stop()
    log_text = server.log()
    assert code == 0, log_text[-3000:]
    assert "Traceback" not in log_text and "ERROR" not in log_text, log_text[-3000:]


@pytest.fixture(scope="module", params=["asyncio", "selectors"])
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def plain(driver: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The server on a cleartext port."""
    log = tmp_path_factory.mktemp("h2c") / f"server-{driver}.log"
    with serving(driver, log) as server:
        yield server


@pytest.fixture(scope="module")
def tls(
    driver: str, certificates: tuple[Path, Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The server over TLS, with the test CA's certificate for 127.0.0.1."""
    _, cert, key = certificates
    log = tmp_path_factory.mktemp("h2-tls") / f"server-{driver}.log"
    with serving(driver, log, "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)) as server:
        yield server


# -- nghttp ------------------------------------------------------------------------------------


def assert_clean_exchange(output: str) -> None:
    """nghttp -v: a 200 and the whole body, and nothing from the server that ends a stream or
    the connection early (nghttp exits 0 even when a request failed)."""
    assert re.search(r"recv \(stream_id=\d+\) :status: 200", output), output
    assert "hello over HTTP/2\n" in output, output
    assert re.search(r"recv DATA frame <[^>]*>\s+; END_STREAM", output), output
    assert "recv RST_STREAM" not in output, output
    assert "recv GOAWAY" not in output, output
    assert "Some requests were not processed" not in output, output


def test_nghttp_prior_knowledge(nghttp: str, plain: Server) -> None:
    done = run_client([nghttp, "-v", f"{plain.url}/"])
    assert_clean_exchange(done.stdout + done.stderr)
    # The server's SETTINGS, then our SETTINGS acknowledged: the preface was exchanged.
    assert re.search(r"recv SETTINGS frame <length=\d+, flags=0x00", done.stdout), done.stdout
    assert re.search(r"recv SETTINGS frame <length=0, flags=0x01", done.stdout), done.stdout


def test_nghttp_h2c_upgrade(nghttp: str, plain: Server) -> None:
    done = run_client([nghttp, "-uv", f"{plain.url}/"])
    output = done.stdout + done.stderr
    assert "HTTP Upgrade success" in output, output
    assert_clean_exchange(output)


def test_nghttp_over_tls_by_alpn(nghttp: str, tls: Server) -> None:
    done = run_client([nghttp, "-v", f"{tls.url}/"])
    output = done.stdout + done.stderr
    assert "The negotiated protocol: h2" in output, output
    assert_clean_exchange(output)


def test_nghttp_uploads_past_the_stream_window(nghttp: str, plain: Server, tmp_path: Path) -> None:
    data = pattern(UPLOAD_BYTES)
    (tmp_path / "body").write_bytes(data)
    done = run_client([nghttp, "-d", str(tmp_path / "body"), f"{plain.url}/upload"])
    assert done.stdout.startswith("{"), done.stdout + done.stderr
    assert json.loads(done.stdout) == {
        "bytes": UPLOAD_BYTES,
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def test_nghttp_many_streams_at_once(nghttp: str, plain: Server) -> None:
    """One connection, 30 requests for the same URL in flight together."""
    done = run_client([nghttp, "-v", "-m", "30", f"{plain.url}/"])
    output = done.stdout + done.stderr
    assert output.count("hello over HTTP/2\n") == 30, output
    assert len(re.findall(r"recv \(stream_id=\d+\) :status: 200", output)) == 30, output
    assert "recv RST_STREAM" not in output and "recv GOAWAY" not in output, output


# -- curl --------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["--http2-prior-knowledge", "--http2"])
def test_curl_h2c(curl: str, plain: Server, how: str) -> None:
    """Prior knowledge, and curl's ``--http2`` on http://, which asks by ``Upgrade: h2c``."""
    done = run_client([curl, "-sS", how, "-w", "%{http_version}", f"{plain.url}/"])
    assert done.stdout == "hello over HTTP/2\n2"


def test_curl_over_tls(curl: str, tls: Server, certificates: tuple[Path, Path, Path]) -> None:
    ca, _, _ = certificates
    argv = [curl, "-sS", "--http2", "--cacert", str(ca), "-w", "%{http_version}"]
    done = run_client([*argv, f"{tls.url}/"])
    assert done.stdout == "hello over HTTP/2\n2"


def test_curl_download(curl: str, plain: Server, tmp_path: Path) -> None:
    """Megabytes down one stream: the server waits for the client's WINDOW_UPDATEs."""
    out = tmp_path / "download"
    url = f"{plain.url}/download?{DOWNLOAD_BYTES}"
    run_client([curl, "-sS", "--http2-prior-knowledge", "-o", str(out), url])
    assert (
        hashlib.sha256(out.read_bytes()).digest()
        == hashlib.sha256(pattern(DOWNLOAD_BYTES)).digest()
    )


# -- h2load ------------------------------------------------------------------------------------


def test_h2load_h2c(h2load: str, plain: Server) -> None:
    done = run_client([h2load, "-n", "2000", "-c", "4", "-m", "10", f"{plain.url}/"])
    assert "2000 succeeded, 0 failed, 0 errored, 0 timeout" in done.stdout, done.stdout
    assert "status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx" in done.stdout, done.stdout


def test_h2load_over_tls(h2load: str, tls: Server) -> None:
    done = run_client([h2load, "-n", "2000", "-c", "4", "-m", "10", f"{tls.url}/"])
    assert "Application protocol: h2" in done.stdout, done.stdout
    assert "2000 succeeded, 0 failed, 0 errored, 0 timeout" in done.stdout, done.stdout
    assert "status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx" in done.stdout, done.stdout


# -- Chromium ----------------------------------------------------------------------------------


def test_chromium_fifty_fetches_over_one_connection(
    chromium: str,
    tls: Server,
    certificates: tuple[Path, Path, Path],
    driver: str,
    tmp_path: Path,
) -> None:
    _, cert, _ = certificates
    with headless_chromium(chromium, tmp_path, spki_sha256(cert)) as devtools:
        navigated = devtools.call("Page.navigate", url=f"{tls.url}/page")
        assert "errorText" not in navigated, navigated
        script = "(document.getElementById('result') || {}).textContent"

        def result() -> str | None:
            found = devtools.call("Runtime.evaluate", expression=script, returnByValue=True)
            value = found["result"].get("value")
            return value if isinstance(value, str) and value != "running" else None

        report = json.loads(wait_for(result, timeout_s=DEADLINE_S, what="the page's result"))
        shot = devtools.call("Page.captureScreenshot", format="png")
        (tmp_path / f"chromium-{driver}.png").write_bytes(base64.b64decode(shot["data"]))
    assert "error" not in report, report
    items = report["items"]
    assert sorted(item["i"] for item in items) == list(range(FETCHES))
    assert {item["http_version"] for item in items} == {"2"}
    # All of them were in the app at once: the browser multiplexed them.
    assert all(item["together"] for item in items), items
    assert report["page"] == "h2"
    assert report["protocols"] == ["h2"] * FETCHES
