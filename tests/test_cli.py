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
from typing import Any

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
def test_inspector_serves_and_stops_cleanly(driver: str, sig: int) -> None:
    with server_process("-m", "sansio_asgi", "--port", "0", "--driver", driver) as (process, port):
        response = httpx.get(f"http://127.0.0.1:{port}/")
        assert response.status_code == 200
        assert "sansio-asgi inspector" in response.text
        posted = httpx.post(f"http://127.0.0.1:{port}/echo", content=b"hi there")
        assert posted.json()["body"] == "hi there"
        process.send_signal(sig)
        assert process.wait(DEADLINE_S) == 0
        rest = output_after(process)
    assert "Finished server process" in rest
    assert '"POST /echo HTTP/1.1" 200' in rest


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--port", "abc"], "--port"),
        (["--port", "70000"], "--port"),
        (["--driver", "trio"], "--driver"),
        (["--timeout-keep-alive", "-1"], "--timeout-keep-alive"),
        (["--log-level", "loud"], "--log-level"),
        (["--http2=yes"], "--http2"),
        (["--h2-max-concurrent-streams", "0"], "--h2-max-concurrent-streams"),
        (["--h2-max-concurrent-streams", "many"], "--h2-max-concurrent-streams"),
        (["--h2-max-header-list-size", "1023"], "--h2-max-header-list-size"),
        (["--h2-max-frame-size", "16383"], "--h2-max-frame-size"),
        (["--h2-max-frame-size", "16777216"], "--h2-max-frame-size"),
        (["--h2-initial-window-size", "0"], "--h2-initial-window-size"),
        (["--h2-initial-window-size", "2147483648"], "--h2-initial-window-size"),
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


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--reload", "--workers", "2"], "--reload runs one worker"),
        (["--http", "httptools"], "--http: this server parses HTTP/1.1 with h11"),
        (["--ws", "websockets"], "--ws: this server speaks WebSocket through wsproto"),
        (["--ws", "websockets-sansio"], "use --ws auto, wsproto or none"),
        (["--loop", "trio"], "--loop: choose from auto, asyncio, uvloop"),
        (["--workers", "0"], "--workers"),
        (["--workers-max-rss", "-5"], "--workers-max-rss"),
        (["--timeout-worker-healthcheck", "0"], "--timeout-worker-healthcheck"),
        (["--reload-watcher", "inotify"], "--reload-watcher"),
    ],
)
def test_refusals_are_one_line(args: list[str], fragment: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]


def test_loop_uvloop_without_uvloop_is_refused(tmp_path: Path) -> None:
    # uvloop is a test dependency: a module of that name that fails to import stands in for
    # a machine without it.
    (tmp_path / "uvloop.py").write_text("raise ImportError('No module named uvloop')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = run_cli("--loop", "uvloop", env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "sansio-asgi: error: --loop uvloop: uvloop is not installed (pip install uvloop)"
    )


def test_accepted_uvicorn_values(tmp_path: Path) -> None:
    (tmp_path / "hello.py").write_text(
        "async def app(scope, receive, send):\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'hello'})\n"
    )
    args = ("-m", "sansio_asgi", "hello:app", "--app-dir", str(tmp_path), "--port", "0")
    extra = ("--http", "h11", "--ws", "wsproto", "--loop", "auto", "--workers", "1")
    with server_process(*args, *extra) as (process, port):
        assert httpx.get(f"http://127.0.0.1:{port}/").text == "hello"
        process.send_signal(signal.SIGTERM)
        assert process.wait(DEADLINE_S) == 0


@pytest.mark.parametrize("option", ["workers=2", "reload=True"])
def test_run_refuses_an_app_object_with_workers_or_reload(option: str) -> None:
    code = (
        "import sansio_asgi\n"
        "async def app(scope, receive, send):\n"
        "    pass\n"
        f"sansio_asgi.run(app, port=0, {option})\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=DEADLINE_S
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{option} needs the app as an import string" in lines[0]
    assert "cannot be sent to a new process" in lines[0]


def test_run_with_workers_from_python(tmp_path: Path) -> None:
    (tmp_path / "made.py").write_text(
        "import os\n"
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': str(os.getpid()).encode()})\n"
    )
    code = (
        "import sansio_asgi\n"
        "if __name__ == '__main__':\n"
        f"    sansio_asgi.run('made:app', port=0, workers=2, app_dir={str(tmp_path)!r})\n"
    )
    script = tmp_path / "serve.py"
    script.write_text(code)
    with server_process(str(script)) as (process, port):
        pid = int(httpx.get(f"http://127.0.0.1:{port}/").text)
        assert pid != process.pid
        process.send_signal(signal.SIGTERM)
        assert process.wait(DEADLINE_S) == 0
        rest = output_after(process)
    assert "Stopped supervisor process" in rest
    assert rest.count("Started worker process") == 2


def test_help_groups_the_flags_and_shows_every_default() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    text = result.stdout
    for group in (
        "binding:",
        "protocol:",
        "HTTP/2:",
        "timeouts (seconds):",
        "limits:",
        "processes:",
        "logging:",
        "TLS:",
        "application:",
    ):
        assert f"\n{group}\n" in text, group
    from sansio_asgi.cli import build_parser

    parser = build_parser()
    for action in parser._actions:
        if action.dest in ("help", "version"):
            continue
        flag = action.option_strings[0] if action.option_strings else action.metavar
        # argparse wraps help text: look for the flag's entry up to the next one
        entry = text[text.index(f"  {flag}") :]
        following = re.search(r"\n  -", entry[2:])
        entry = entry[: following.start() + 2] if following else entry
        assert "default" in entry, flag


def test_new_flags_as_environment_variables(tmp_path: Path) -> None:
    from sansio_asgi.cli import apply_environment, build_parser, config_from_args

    parser = build_parser()
    apply_environment(
        parser,
        {
            "SANSIO_ASGI_WORKERS": "3",
            "SANSIO_ASGI_WORKERS_MAX_RSS": "512",
            "SANSIO_ASGI_TIMEOUT_WORKER_HEALTHCHECK": "7",
            "SANSIO_ASGI_TIMEOUT_NOTIFY": "9",
            "SANSIO_ASGI_LOOP": "asyncio",
            "SANSIO_ASGI_HTTP": "h11",
            "SANSIO_ASGI_ENV_FILE": "x.env",
            "SANSIO_ASGI_RELOAD_DELAY": "0.5",
            "SANSIO_ASGI_RELOAD_DIR": "src lib",
            "SANSIO_ASGI_RELOAD_INCLUDE": "*.toml",
            "SANSIO_ASGI_RELOAD_EXCLUDE": "tmp_*",
            "SANSIO_ASGI_RELOAD_WATCHER": "poll",
        },
    )
    config = config_from_args(parser.parse_args(["main:app"]))
    assert config.workers == 3
    assert config.workers_max_rss == 512
    assert config.timeout_worker_healthcheck == 7
    assert config.timeout_notify == 9
    assert (config.loop, config.http, config.env_file) == ("asyncio", "h11", "x.env")
    assert config.reload_delay == 0.5
    assert config.reload_dirs == ("src", "lib")
    assert config.reload_includes == ("*.toml",)
    assert config.reload_excludes == ("tmp_*",)
    assert config.reload_watcher == "poll"

    parser = build_parser()
    apply_environment(parser, {"SANSIO_ASGI_RELOAD": "true"})
    assert config_from_args(parser.parse_args(["main:app"])).reload is True

    bad = run_cli(env={**os.environ, "SANSIO_ASGI_WS": "websockets"})
    assert bad.returncode == 2
    assert "SANSIO_ASGI_WS" in bad.stderr
    assert bad.stderr.strip().count("\n") == 0


def test_web_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    from sansio_asgi.config import Config, ConfigError

    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    assert Config(app="main:app").workers == 4
    assert Config(app="main:app", workers=2).workers == 2
    assert Config(app="main:app", reload=True).workers == 1  # reload is development
    monkeypatch.setenv("WEB_CONCURRENCY", "many")
    with pytest.raises(ConfigError, match="WEB_CONCURRENCY"):
        Config(app="main:app")
    monkeypatch.delenv("WEB_CONCURRENCY")
    assert Config(app="main:app").workers == 1


def test_parse_env_file_format() -> None:
    from sansio_asgi.config import parse_env

    text = (
        "# a comment\n"
        "\n"
        "PLAIN=value\n"
        "export EXPORTED=yes\n"
        "SPACED = around  # a comment after white space\n"
        "HASH=a#b\n"
        "SINGLE='${PLAIN} stays \\n literal'\n"
        'DOUBLE="line one\\nline \\"two\\""\n'
        'MULTI="first\n'
        'second"\n'
        "EXPANDED=${PLAIN}-${MISSING:-fallback}\n"
        "EMPTY=\n"
        "not a line\n"
        "AFTER_QUOTE='x' junk\n"
        "LAST=1"
    )
    assert parse_env(text) == {
        "PLAIN": "value",
        "EXPORTED": "yes",
        "SPACED": "around",
        "HASH": "a#b",
        "SINGLE": "${PLAIN} stays \\n literal",
        "DOUBLE": 'line one\nline "two"',
        "MULTI": "first\nsecond",
        "EXPANDED": "value-fallback",
        "EMPTY": "",
        "LAST": "1",
    }


def test_env_file(tmp_path: Path) -> None:
    (tmp_path / "envapp.py").write_text(
        "import os\n"
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    body = '|'.join(os.environ.get(k, '-') for k in ('GREETING', 'KEPT', 'QUOTED'))\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': body.encode()})\n"
    )
    env_file = tmp_path / "app.env"
    env_file.write_text('GREETING=hello\nKEPT=from-file\nQUOTED="a b"  # note\n')
    env = {**os.environ, "KEPT": "from-environment"}
    args = ("-m", "sansio_asgi", "envapp:app", "--app-dir", str(tmp_path), "--port", "0")
    for extra in ((), ("--workers", "2")):
        with server_process(*args, "--env-file", str(env_file), *extra, env=env) as (
            process,
            port,
        ):
            body = httpx.get(f"http://127.0.0.1:{port}/").text
            process.send_signal(signal.SIGTERM)
            assert process.wait(DEADLINE_S) == 0
        assert body == "hello|from-environment|a b"

    missing = run_cli("--env-file", str(tmp_path / "nope.env"), "--port", "0")
    assert missing.returncode == 1
    assert len(missing.stderr.strip().splitlines()) == 1
    assert "--env-file" in missing.stderr


def test_a_zero_reload_delay_is_refused() -> None:
    """0 would make the polling watcher rescan the tree in a busy loop."""
    result = subprocess.run(
        [sys.executable, "-m", "sansio_asgi", "--reload", "--reload-delay", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "sansio-asgi: error: argument --reload-delay: invalid number '0': must be > 0"
    )


@pytest.mark.parametrize(
    ("argv", "http_parser", "ws_parser"),
    [
        ([], "auto", "auto"),
        (["--http", "h11"], "h11", "auto"),
        (["--ws", "wsproto"], "auto", "wsproto"),
    ],
)
def test_http_and_ws_choose_the_readers(
    argv: list[str], http_parser: str, ws_parser: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--http h11`` reads every request with h11, ``--ws wsproto`` every frame with wsproto;
    ``auto`` takes the fast paths (or what the environment set for a whole test run)."""
    from sansio_asgi import config
    from sansio_asgi.cli import build_parser, config_from_args

    monkeypatch.setattr(config, "HTTP_PARSER", "auto")  # as if no SANSIO_ASGI_HTTP/_WS were set
    monkeypatch.setattr(config, "WS_PARSER", "auto")
    settings = config_from_args(build_parser().parse_args([*argv, "main:app"])).protocol_settings()
    assert (settings.http_parser, settings.ws_parser) == (http_parser, ws_parser)


# -- HTTP/2 ----------------------------------------------------------------------------------


def test_http2_flags_reach_the_protocol_settings() -> None:
    from sansio_asgi.cli import build_parser, config_from_args
    from sansio_asgi.core.settings import HTTP2

    def settings(*argv: str) -> Any:
        return config_from_args(build_parser().parse_args([*argv, "main:app"])).protocol_settings()

    defaults = settings()
    assert defaults.http2 is HTTP2  # True unless a test run set SANSIO_ASGI_HTTP2
    assert (
        defaults.h2_max_concurrent_streams,
        defaults.h2_max_header_list_bytes,
        defaults.h2_max_frame_bytes,
        defaults.h2_initial_window_bytes,
    ) == (100, 16384, 16384, 65535)
    assert settings("--http2").http2 is True
    assert settings("--no-http2").http2 is False
    chosen = settings(
        "--h2-max-concurrent-streams",
        "7",
        "--h2-max-header-list-size",
        "1024",
        "--h2-max-frame-size",
        "16777215",
        "--h2-initial-window-size",
        "2147483647",
    )
    assert (
        chosen.h2_max_concurrent_streams,
        chosen.h2_max_header_list_bytes,
        chosen.h2_max_frame_bytes,
        chosen.h2_initial_window_bytes,
    ) == (7, 1024, 16777215, 2**31 - 1)


def test_http2_flags_as_environment_variables() -> None:
    from sansio_asgi.cli import apply_environment, build_parser, config_from_args

    parser = build_parser()
    apply_environment(
        parser,
        {
            "SANSIO_ASGI_HTTP2": "false",
            "SANSIO_ASGI_H2_MAX_CONCURRENT_STREAMS": "250",
            "SANSIO_ASGI_H2_MAX_HEADER_LIST_SIZE": "65536",
            "SANSIO_ASGI_H2_MAX_FRAME_SIZE": "32768",
            "SANSIO_ASGI_H2_INITIAL_WINDOW_SIZE": "1048576",
        },
    )
    config = config_from_args(parser.parse_args(["main:app"]))
    assert config.http2 is False
    assert config.h2_max_concurrent_streams == 250
    assert config.h2_max_header_list_size == 65536
    assert config.h2_max_frame_size == 32768
    assert config.h2_initial_window_size == 1048576
    # the command line still wins
    assert config_from_args(parser.parse_args(["--http2", "main:app"])).http2 is True

    bad = run_cli(env={**os.environ, "SANSIO_ASGI_H2_MAX_FRAME_SIZE": "1024"})
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "sansio-asgi: error: SANSIO_ASGI_H2_MAX_FRAME_SIZE: invalid number 1024: must be from "
        "16384 to 16777215 (RFC 9113 §6.5.2)"
    )
    bad = run_cli(env={**os.environ, "SANSIO_ASGI_HTTP2": "maybe"})
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "sansio-asgi: error: SANSIO_ASGI_HTTP2: invalid boolean 'maybe': use true or false"
    )


def test_http2_range_errors_name_the_flag_and_the_range() -> None:
    result = run_cli("--h2-max-frame-size", "100")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "sansio-asgi: error: argument --h2-max-frame-size: invalid number 100: must be from "
        "16384 to 16777215 (RFC 9113 §6.5.2)"
    )


@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [
        ("h2_max_concurrent_streams", 0, "--h2-max-concurrent-streams 0: must be from 1 to"),
        ("h2_max_header_list_size", 100, "--h2-max-header-list-size 100: must be from 1024"),
        ("h2_max_frame_size", 2**24, "--h2-max-frame-size 16777216: must be from 16384"),
        ("h2_initial_window_size", 2**31, "--h2-initial-window-size 2147483648: must be from 1"),
        ("h2_max_frame_size", "16384", "--h2-max-frame-size '16384': must be from 16384"),
    ],
)
def test_http2_settings_of_run_are_checked(option: str, value: object, fragment: str) -> None:
    """``run()`` and ``Config`` take the same settings, and refuse the same values."""
    from sansio_asgi.config import Config, ConfigError

    with pytest.raises(ConfigError) as raised:
        Config(**{option: value})
    assert fragment in str(raised.value)
    assert "\n" not in str(raised.value)


def test_run_refuses_a_bad_http2_setting_in_one_line() -> None:
    code = "import sansio_asgi\nsansio_asgi.run(port=0, h2_max_frame_size=1)\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=DEADLINE_S
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "sansio-asgi: error: --h2-max-frame-size 1: must be from 16384 to 16777215 "
        "(RFC 9113 §6.5.2)"
    )


def test_run_takes_the_http2_settings() -> None:
    from sansio_asgi.config import Config

    config = Config(http2=False, h2_max_concurrent_streams=3, h2_initial_window_size=1)
    settings = config.protocol_settings()
    assert (settings.http2, settings.h2_max_concurrent_streams) == (False, 3)
    assert settings.h2_initial_window_bytes == 1


def test_every_flag_is_in_the_readme() -> None:
    from sansio_asgi.cli import build_parser

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    flags = [
        option
        for action in build_parser()._actions
        for option in action.option_strings
        if option.startswith("--") and action.dest != "help"
    ]
    assert "--h2-max-frame-size" in flags
    assert [flag for flag in flags if f"`{flag}" not in readme] == []
