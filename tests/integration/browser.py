"""A headless Chromium driven over its DevTools protocol, for the tests that need a browser.

Chromium (Debian's ``chromium``, installed by ``tools.apt_binary`` when missing) runs headless
with a profile of its own in a temporary directory, in a session of its own so that it and its
helper processes are stopped together by its PID. It trusts a test certificate by its public
key (``--ignore-certificate-errors-spki-list``), never with a blanket
``--ignore-certificate-errors``. It is driven over the DevTools protocol (a websocket on
``--remote-debugging-port``), not through chromedriver.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from ..drivers.conftest import wait_for

DEADLINE_S = 60.0


def spki_sha256(cert_pem: Path) -> str:
    """The base64 SHA-256 of a certificate's SubjectPublicKeyInfo: what Chromium's
    ``--ignore-certificate-errors-spki-list`` takes."""
    cert = x509.load_pem_x509_certificate(cert_pem.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


class DevTools:
    """The Chrome DevTools protocol over a page's websocket: commands and their results (the
    events the page sends meanwhile are not asked for and are passed over)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.last_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        self.ws.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv(timeout=DEADLINE_S))
            if reply.get("id") == self.last_id:
                assert "error" not in reply, reply
                result: dict[str, Any] = reply["result"]
                return result

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        found = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        assert "exceptionDetails" not in found, found["exceptionDetails"]
        return found["result"].get("value")

    def wait(self, expression: str, timeout_s: float = DEADLINE_S, what: str = "") -> Any:
        """Poll a JavaScript expression until its value is truthy; return that value."""
        return wait_for(lambda: self.evaluate(expression), timeout_s, what or expression)

    def viewport(self, width: int, height: int) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=width < 600,
        )

    def screenshot(self, path: Path, *, full_page: bool = False) -> None:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
        shot = self.call("Page.captureScreenshot", **params)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))


@contextlib.contextmanager
def headless_chromium(binary: str, folder: Path, spki: str | None = None) -> Iterator[DevTools]:
    """Chromium, headless, in a session of its own (its helper processes are in its process
    group, stopped with it by its PID); its DevTools port is read from the profile directory."""
    profile = folder / "profile"
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "about:blank",
    ]
    if spki is not None:
        command.insert(-1, f"--ignore-certificate-errors-spki-list={spki}")
    with open(folder / "chromium.log", "wb") as out:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        port_file = profile / "DevToolsActivePort"

        def debugging_port() -> str | None:
            assert process.poll() is None, (folder / "chromium.log").read_text(errors="replace")
            with contextlib.suppress(OSError):
                lines = port_file.read_text().splitlines()
                if len(lines) >= 2:
                    return lines[0]
            return None

        port = wait_for(debugging_port, timeout_s=DEADLINE_S, what="Chromium's DevTools port")

        def page_target() -> str | None:
            with contextlib.suppress(httpx.HTTPError):
                targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
                for target in targets:
                    if target.get("type") == "page":
                        return str(target["webSocketDebuggerUrl"])
            return None

        url = wait_for(page_target, timeout_s=DEADLINE_S, what="a page target")
        with ws_connect(url, max_size=None, open_timeout=DEADLINE_S) as ws:
            yield DevTools(ws)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(DEADLINE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # The helpers (zygote, renderer, network service) leave with the browser; any that
        # has not yet is in the same process group.
        deadline = time.monotonic() + DEADLINE_S
        while group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
