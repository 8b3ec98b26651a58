"""``--reload``: both file watchers, on real files; the supervisor as a user runs it."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from sansio_asgi.reload import FileFilter, make_watcher

from .test_workers import DEADLINE_S, supervised

WATCHERS = ["watchfiles", "poll"]

VERSION_APP = (
    "async def app(scope, receive, send):\n"
    "    if scope['type'] != 'http':\n"
    "        return\n"
    "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
    "    await send({'type': 'http.response.body', 'body': b'%s'})\n"
)


def write(path: Path, text: str) -> None:
    """Write and move the modification time on, so even a coarse clock sees a change."""
    path.write_text(text)
    stat = path.stat()
    later = stat.st_mtime_ns + 2_000_000_000
    os.utime(path, ns=(later, later))


def wait_for_body(url: str, body: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    last = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(url, timeout=DEADLINE_S).text
        except httpx.TransportError:
            last = None  # between the old worker and the new one
        if last == body:
            return
        time.sleep(0.05)
    raise AssertionError(f"never {body!r}; last {last!r}")


@pytest.mark.parametrize("watcher", WATCHERS)
def test_reload_on_change_and_after_a_syntax_error(tmp_path: Path, watcher: str) -> None:
    app = tmp_path / "versioned.py"
    write(app, VERSION_APP % "v1")
    args = (
        "versioned:app",
        "--app-dir",
        str(tmp_path),
        "--port",
        "0",
        "--reload",
        "--reload-dir",
        str(tmp_path),
        "--reload-watcher",
        watcher,
        "--reload-delay",
        "0.1",
    )
    with supervised(*args) as run:
        run.wait_started(1)
        assert f"({watcher} watcher)" in run.output()
        url = run.url()
        assert httpx.get(url).text == "v1"

        write(app, VERSION_APP % "v2")
        run.wait_for(r"Detected changes in .*versioned\.py")
        wait_for_body(url, "v2")

        write(app, "async def app(:\n")  # a syntax error: logged, then wait for the next change
        run.wait_for(r"SyntaxError")
        run.wait_for(r"Waiting for a file change before starting again")
        assert run.process.poll() is None

        write(app, VERSION_APP % "v3")
        wait_for_body(url, "v3")
        run.wait_for(r"Worker process \[\d+\] is ready", count=3)

        run.signal(signal.SIGINT)  # Ctrl+C stops everything
        assert run.wait() == 0, run.output()
    assert len(run.matches(r"Started worker process")) == 4


@pytest.mark.parametrize("watcher", WATCHERS)
def test_watchers_honour_includes_and_excludes(tmp_path: Path, watcher: str) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / ".hidden").mkdir()
    files = {
        name: tmp_path / name
        for name in (
            "pkg/code.py",
            "pkg/skipped_code.py",
            ".hidden/inside.py",
            "notes.txt",
            "settings.toml",
            "pkg/.swap.py",
        )
    }
    for path in files.values():
        path.write_text("0")
    woken = threading.Event()
    instance = make_watcher(watcher, [str(tmp_path)], ["*.toml"], ["skipped_*"], 0.05, woken.set)
    instance.start()
    try:
        for name in ("pkg/skipped_code.py", ".hidden/inside.py", "notes.txt", "pkg/.swap.py"):
            write(files[name], "1")
        write(files["settings.toml"], "1")
        write(files["pkg/code.py"], "1")
        seen: set[Path] = set()
        deadline = time.monotonic() + DEADLINE_S
        wanted = {files["settings.toml"].resolve(), files["pkg/code.py"].resolve()}
        while not wanted <= seen:
            assert time.monotonic() < deadline, seen
            woken.wait(0.1)
            woken.clear()
            seen.update(path.resolve() for path in instance.changes())
        assert seen == wanted
    finally:
        instance.stop()


def test_file_filter_defaults_as_uvicorn() -> None:
    root = Path("/srv/app")
    default = FileFilter()
    assert default.watches(root / "main.py", root)
    assert default.watches(root / "pkg" / "deep" / "mod.py", root)
    assert not default.watches(root / "README.md", root)
    assert not default.watches(root / ".venv" / "lib" / "x.py", root)
    assert not default.watches(root / "~backup.py", root)
    # asking to include a default exclude takes it out of the excludes
    hidden = FileFilter(includes=[".*"])
    assert hidden.watches(root / ".env", root)
    # a glob with a slash matches the path's tail
    nested = FileFilter(excludes=["migrations/*.py"])
    assert not nested.watches(root / "db" / "migrations" / "0001.py", root)
    assert nested.watches(root / "db" / "models.py", root)


def test_a_missing_reload_dir_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    args = ("--port", "0", "--reload", "--reload-dir", str(missing))
    with supervised(*args) as run:
        assert run.wait() == 1
    errors = [line for line in run.lines if line.startswith("ERROR")]
    assert errors == [f"ERROR:    --reload-dir '{missing}': not a directory"], run.output()
