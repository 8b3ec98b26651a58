"""The command line as a user runs it: a real process, real signals."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

DEADLINE_S = 15.0


@contextmanager
def server_process(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    pass_fds: tuple[int, ...] = (),
    host: str = "127.0.0.1",
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    with subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
        env={**(env if env is not None else os.environ), "PYTHONUNBUFFERED": "1"},
        pass_fds=pass_fds,
    ) as process:
        try:
            assert process.stdout is not None
            fd = process.stdout.fileno()
            deadline = time.monotonic() + DEADLINE_S
            port = None
            output = ""
            with selectors.DefaultSelector() as selector:
                selector.register(fd, selectors.EVENT_READ)
                # Raw reads, lines split here: readline() would buffer a second line that
                # select() can then no longer see.
                while port is None:
                    remaining = deadline - time.monotonic()
                    assert remaining > 0, f"no 'running on' line: {output}"
                    if not selector.select(remaining):
                        continue
                    chunk = os.read(fd, 65536).decode()
                    assert chunk, f"the server exited: {output}"
                    output += chunk
                    match = re.search(rf"running on http://{re.escape(host)}:(\d+)", output)
                    if match:
                        port = int(match.group(1))
            process.earlier_output = output  # type: ignore[attr-defined]
            yield process, port
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def output_after(process: subprocess.Popen[str]) -> str:
    """Everything the server printed, once it has exited."""
    assert process.stdout is not None
    return str(process.earlier_output) + process.stdout.read()  # type: ignore[attr-defined]


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sansio_asgi", *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        cwd=cwd,
        env=env,
    )


@pytest.mark.parametrize(
    ("driver", "sig"), [("asyncio", signal.SIGINT), ("selectors", signal.SIGTERM)]
)
def test_demo_app_serves_and_stops_cleanly(driver: str, sig: int) -> None:
    with server_process("-m", "sansio_asgi", "--port", "0", "--driver", driver) as (process, port):
        response = httpx.get(f"http://127.0.0.1:{port}/?format=json")
        assert response.status_code == 200
        assert response.json()["scope"]["path"] == "/"
        posted = httpx.post(f"http://127.0.0.1:{port}/?format=json", content=b"hi there")
        assert posted.json()["body"] == "hi there"
        process.send_signal(sig)
        assert process.wait(DEADLINE_S) == 0
        rest = output_after(process)
    assert "Finished server process" in rest
    assert '"GET /?format=json HTTP/1.1" 200' in rest


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--port", "abc"], "--port"),
        (["--port", "70000"], "--port"),
        (["--driver", "trio"], "--driver"),
        (["--timeout-keep-alive", "-1"], "--timeout-keep-alive"),
        (["--log-level", "loud"], "--log-level"),
    ],
)
def test_bad_flag_is_one_line_naming_it(args: list[str], fragment: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]


def test_app_that_cannot_be_imported(tmp_path: Path) -> None:
    missing = run_cli("no_such_module_here:app", cwd=tmp_path)
    assert missing.returncode == 1
    assert len(missing.stderr.strip().splitlines()) == 1
    assert 'could not import module "no_such_module_here"' in missing.stderr

    (tmp_path / "broken.py").write_text("app = None\n")
    attribute = run_cli("broken:nope", "--app-dir", str(tmp_path))
    assert attribute.returncode == 1
    assert 'attribute "nope" not found in module "broken"' in attribute.stderr

    no_colon = run_cli("broken", "--app-dir", str(tmp_path))
    assert no_colon.returncode == 1
    assert "module:attribute" in no_colon.stderr


def test_factory_app_dir_and_run_api(tmp_path: Path) -> None:
    (tmp_path / "made.py").write_text(
        "async def app(scope, receive, send):\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'made'})\n"
        "def create():\n"
        "    return app\n"
    )
    args = (
        "-m",
        "sansio_asgi",
        "made:create",
        "--factory",
        "--app-dir",
        str(tmp_path),
        "--port",
        "0",
    )
    with server_process(*args) as (process, port):
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "made"
        process.send_signal(signal.SIGINT)
        assert process.wait(DEADLINE_S) == 0

    code = f"import sansio_asgi; sansio_asgi.run('made:app', port=0, app_dir={str(tmp_path)!r})"
    with server_process("-c", code) as (process, port):
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "made"
        process.send_signal(signal.SIGTERM)
        assert process.wait(DEADLINE_S) == 0
