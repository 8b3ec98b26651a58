"""Operations from the command line, as a user runs them: signals during requests, environment
variables, socket activation, IPv6, access log formats, trace output and log configs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from .test_cli import DEADLINE_S, output_after, run_cli, server_process

SLOW_APP = (
    "import asyncio\n"
    "async def app(scope, receive, send):\n"
    "    if scope['type'] != 'http':\n"
    "        return\n"
    "    await receive()\n"
    "    delay = float(scope['query_string'] or 0)\n"
    "    if delay:\n"
    "        open(__file__ + '.started', 'w').close()\n"
    "    await asyncio.sleep(delay)\n"
    "    await send({'type': 'http.response.start', 'status': 200,\n"
    "                'headers': [(b'content-length', b'4'), (b'x-out', b'yes')]})\n"
    "    await send({'type': 'http.response.body', 'body': b'done'})\n"
)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "slow.py").write_text(SLOW_APP)
    return tmp_path


@pytest.mark.parametrize("driver", ["asyncio", "selectors"])
def test_sigterm_during_a_request_finishes_it(app_dir: Path, driver: str) -> None:
    args = ("-m", "sansio_asgi", "slow:app", "--app-dir", str(app_dir), "--port", "0")
    with server_process(*args, "--driver", driver) as (process, port):
        result: list[httpx.Response] = []
        thread = threading.Thread(
            target=lambda: result.append(httpx.get(f"http://127.0.0.1:{port}/?0.5", timeout=10))
        )
        thread.start()
        started = app_dir / "slow.py.started"
        deadline = time.monotonic() + DEADLINE_S
        while not started.exists():  # the app is handling the slow request
            assert time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        thread.join(DEADLINE_S)
        assert process.wait(DEADLINE_S) == 0
    assert result[0].text == "done"
    assert result[0].headers["connection"] == "close"


@pytest.mark.parametrize("http", ["auto", "h11"])
def test_loop_uvloop_serves(app_dir: Path, http: str) -> None:
    """uvloop's transports are not asyncio.Transport subclasses: the asyncio driver serves on
    them all the same."""
    args = ("-m", "sansio_asgi", "slow:app", "--app-dir", str(app_dir), "--port", "0")
    with server_process(*args, "--loop", "uvloop", "--http", http) as (process, port):
        with httpx.Client() as client:  # two requests on one keep-alive connection
            responses = [client.get(f"http://127.0.0.1:{port}/") for _ in range(2)]
        process.send_signal(signal.SIGINT)
        assert process.wait(DEADLINE_S) == 0
    assert [r.text for r in responses] == ["done", "done"]


def test_environment_variables(app_dir: Path) -> None:
    env = {
        **os.environ,
        "SANSIO_ASGI_APP": "slow:app",
        "SANSIO_ASGI_APP_DIR": str(app_dir),
        "SANSIO_ASGI_PORT": "0",
        "SANSIO_ASGI_HEADER": "x-from-env:1",
        "SANSIO_ASGI_NO_SERVER_HEADER": "true",
    }
    with server_process("-m", "sansio_asgi", env=env) as (process, port):
        response = httpx.get(f"http://127.0.0.1:{port}/")
        process.send_signal(signal.SIGINT)
        assert process.wait(DEADLINE_S) == 0
    assert response.headers["x-from-env"] == "1"
    assert "server" not in response.headers
    bad = run_cli(env={**os.environ, "SANSIO_ASGI_PORT": "lots"})
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0
    assert "SANSIO_ASGI_PORT" in bad.stderr


def test_socket_activation_with_fd(app_dir: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    fd = listener.fileno()
    args = ("-m", "sansio_asgi", "slow:app", "--app-dir", str(app_dir), "--fd", str(fd))
    with server_process(*args, pass_fds=(fd,)) as (process, announced):
        assert announced == port
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "done"
        process.send_signal(signal.SIGINT)
        assert process.wait(DEADLINE_S) == 0
    listener.close()


def test_ipv6(app_dir: Path) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    args = ("-m", "sansio_asgi", "slow:app", "--app-dir", str(app_dir), "--host", "::1")
    with server_process(*args, "--port", "0", host="[::1]") as (process, port):
        assert httpx.get(f"http://[::1]:{port}/").text == "done"
        process.send_signal(signal.SIGINT)
        assert process.wait(DEADLINE_S) == 0


@pytest.mark.parametrize("driver", ["asyncio", "selectors"])
def test_access_log_format_and_trace(app_dir: Path, driver: str) -> None:
    fmt = '%(h)s "%(r)s" %(s)s %(B)s %({x-out}o)s %({user-agent}i)s %(D)sus'
    args = ("-m", "sansio_asgi", "slow:app", "--app-dir", str(app_dir), "--port", "0")
    args += ("--driver", driver)
    extra = ("--access-log-format", fmt, "--log-level", "trace", "--no-use-colors")
    with server_process(*args, *extra) as (process, port):
        httpx.get(f"http://127.0.0.1:{port}/x%0d%0aforged?0", headers={"user-agent": "ua\x01x"})
        process.send_signal(signal.SIGINT)
        assert process.wait(DEADLINE_S) == 0
        output = output_after(process)
    access = [line for line in output.splitlines() if '"GET /x' in line]
    assert len(access) == 1
    assert access[0].startswith("INFO:     127.0.0.1:")
    assert '"GET /x%0d%0aforged?0 HTTP/1.1" 200 4 yes ua\\x01x ' in access[0]
    assert "\x1b[" not in output
    assert "TRACE:    127.0.0.1:" in output
    assert " < http.request " in output  # a message the app received
    assert " > http.response.start " in output  # a message the app sent
    assert " bytes b'GET /x%0d%0aforged?0 HTTP/1.1" in output  # bytes received


def test_log_config_and_bad_values(app_dir: Path, tmp_path: Path) -> None:
    config = {
        "version": 1,
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(tmp_path / "a.log")}},
        "loggers": {"sansio_asgi.access": {"handlers": ["file"], "level": "INFO"}},
    }
    (tmp_path / "log.json").write_text(json.dumps(config))
    args = ("-m", "sansio_asgi", "slow:app", "--app-dir", str(app_dir), "--port", "0")
    with server_process(*args, "--log-config", str(tmp_path / "log.json")) as (process, port):
        httpx.get(f"http://127.0.0.1:{port}/logged")
        process.send_signal(signal.SIGINT)
        assert process.wait(DEADLINE_S) == 0
    assert '"GET /logged HTTP/1.1" 200' in (tmp_path / "a.log").read_text()

    for flags, fragment in [
        (["--log-config", str(tmp_path / "missing.json")], "--log-config"),
        (["--access-log-format", "%(h"], "--access-log-format"),
        (["--header", "no colon"], "--header"),
        # A value no response may carry (a form feed inside it): refused at start, not per
        # response.
        (["--header", "x-a:b\x0cc"], "--header"),
        (["--forwarded-allow-ips", "not-an-ip"], "--forwarded-allow-ips"),
        (["--ssl-certfile", str(tmp_path / "none.pem")], "--ssl-certfile"),
    ]:
        result = run_cli("slow:app", "--app-dir", str(app_dir), *flags)
        assert result.returncode in (1, 2), result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert sys.executable


SYSTEMD_LAUNCH = (
    "import os, sys\n"
    "# as systemd does: the socket at fd 3, LISTEN_PID this very process\n"
    "os.dup2(int(sys.argv[1]), 3)\n"
    "os.close(int(sys.argv[1]))\n"
    "os.environ['LISTEN_FDS'] = '1'\n"
    "os.environ['LISTEN_PID'] = str(os.getpid())\n"
    "from sansio_asgi.cli import main\n"
    "main(sys.argv[2:])\n"
)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_systemd_socket_activation(app_dir: Path, workers: str) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    fd = listener.fileno()
    # --port 1 would need privileges: LISTEN_FDS wins over --host/--port.
    args = ("-c", SYSTEMD_LAUNCH, str(fd), "slow:app", "--app-dir", str(app_dir), "--port", "1")
    with server_process(*args, "--workers", workers, pass_fds=(fd,)) as (process, announced):
        assert announced == port
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "done"
        process.send_signal(signal.SIGTERM)
        assert process.wait(DEADLINE_S) == 0
    listener.close()


def test_systemd_unix_socket_is_left_in_place(app_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "activated.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        listener.listen()
        fd = listener.fileno()
        args = ("-c", SYSTEMD_LAUNCH, str(fd), "slow:app", "--app-dir", str(app_dir))
        with subprocess.Popen(
            [sys.executable, *args, "--uds", str(path)],
            pass_fds=(fd,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ) as process:
            try:
                with httpx.Client(transport=httpx.HTTPTransport(uds=str(path))) as client:
                    # systemd's socket queues the request until the server accepts it
                    assert client.get("http://localhost/", timeout=DEADLINE_S).text == "done"
                process.send_signal(signal.SIGTERM)
                assert process.wait(DEADLINE_S) == 0
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    assert path.exists()  # systemd's socket file: not ours to remove


def test_listen_pid_of_another_process_is_ignored(app_dir: Path) -> None:
    env = {**os.environ, "LISTEN_FDS": "1", "LISTEN_PID": "1"}
    args = ("-m", "sansio_asgi", "slow:app", "--app-dir", str(app_dir), "--port", "0")
    with server_process(*args, env=env) as (process, port):
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "done"
        process.send_signal(signal.SIGTERM)
        assert process.wait(DEADLINE_S) == 0
