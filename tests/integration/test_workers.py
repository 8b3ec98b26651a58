"""``--workers N``: the supervisor as a user runs it, with real processes and real signals.

Every run goes through ``Supervised``: the command line in a subprocess, its log read line by
line in a thread, waits that poll the log with deadlines, and a teardown that stops the
supervisor by its pid and kills, by pid, any worker it left.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

DEADLINE_S = 30.0

PID_APP = (
    "import os, time\n"
    "hoard = []\n"
    "async def app(scope, receive, send):\n"
    "    if scope['type'] == 'lifespan':\n"
    "        while True:\n"
    "            message = await receive()\n"
    "            kind = message['type'].rpartition('.')[2]\n"
    "            await send({'type': message['type'] + '.complete'})\n"
    "            if kind == 'shutdown':\n"
    "                return\n"
    "    if scope['path'] == '/block':\n"
    "        time.sleep(60)  # blocks the event loop: the heartbeat stops\n"
    "    if scope['path'] == '/alloc':\n"
    "        hoard.append(bytearray(160 * 1024 * 1024))\n"
    "        hoard[-1][::4096] = b'x' * len(hoard[-1][::4096])  # touch every page\n"
    "    body = str(os.getpid()).encode()\n"
    "    await send({'type': 'http.response.start', 'status': 200,\n"
    "                'headers': [(b'content-length', str(len(body)).encode())]})\n"
    "    await send({'type': 'http.response.body', 'body': body})\n"
)


class Supervised:
    """``python -m sansio_asgi ARGS`` with its output collected line by line."""

    def __init__(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sansio_asgi", *args, "--no-use-colors"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=cwd,
            env={**(env if env is not None else os.environ), "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # a process group of its own, as under a terminal
        )
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = 0

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def matches(self, pattern: str) -> list[re.Match[str]]:
        with self._lock:
            lines = list(self.lines)
        return [m for m in (re.search(pattern, line) for line in lines) if m is not None]

    def wait_for(
        self, pattern: str, count: int = 1, timeout: float = DEADLINE_S
    ) -> list[re.Match[str]]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.matches(pattern)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no {count} x {pattern!r} in:\n{self.output()}")
            if self.process.poll() is not None and not self._reader.is_alive():
                raise AssertionError(f"exited before {pattern!r}:\n{self.output()}")
            time.sleep(0.02)

    def wait_started(self, workers: int) -> None:
        self.wait_for(r"Worker process \[\d+\] is ready", count=workers)
        self.port = int(self.wait_for(r"running on http://127\.0\.0\.1:(\d+)")[0][1])

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def started_pids(self) -> list[int]:
        return [int(m[1]) for m in self.matches(r"Started worker process \[(\d+)\]")]

    def ready_pids(self) -> list[int]:
        return [int(m[1]) for m in self.matches(r"Worker process \[(\d+)\] is ready")]

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = DEADLINE_S) -> int:
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in self.started_pids():  # workers left behind, by pid, if still ours
            with contextlib.suppress(OSError), open(f"/proc/{pid}/cmdline", "rb") as file:
                if b"multiprocessing" in file.read():
                    os.kill(pid, signal.SIGKILL)
        self._reader.join(DEADLINE_S)
        assert self.process.stdout is not None
        self.process.stdout.close()


@contextlib.contextmanager
def supervised(*args: str, **kwargs: object) -> Iterator[Supervised]:
    run = Supervised(*args, **kwargs)  # type: ignore[arg-type]
    try:
        yield run
    finally:
        run.close()


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "pidapp.py").write_text(PID_APP)
    return tmp_path


def base_args(app_dir: Path, *extra: str) -> tuple[str, ...]:
    return ("pidapp:app", "--app-dir", str(app_dir), "--port", "0", "--no-access-log", *extra)


def get_pid(client: httpx.Client | None, url: str) -> int:
    response = (client or httpx).get(url, timeout=DEADLINE_S)  # type: ignore[attr-defined]
    assert response.status_code == 200
    return int(response.text)


def stop_cleanly(run: Supervised) -> None:
    run.signal(signal.SIGTERM)
    assert run.wait() == 0, run.output()
    assert "Stopped supervisor process" in run.output()


def serving_counts(run: Supervised) -> list[int]:
    """From the supervisor's log, the number of workers that are ready and not being stopped,
    after each change once the first N were ready."""
    serving: set[int] = set()
    counts = []
    ready = re.compile(r"Worker process \[(\d+)\] is ready")
    gone = re.compile(r"(?:Stopping|Terminating) worker process \[(\d+)\]|\[(\d+)\] died")
    for line in run.output().splitlines():
        if match := ready.search(line):
            serving.add(int(match[1]))
        elif match := gone.search(line):
            serving.discard(int(match[1] or match[2]))
        else:
            continue
        counts.append(len(serving))
    return counts


@pytest.mark.parametrize("driver", ["asyncio", "selectors"])
def test_workers_serve_and_a_killed_worker_is_replaced(app_dir: Path, driver: str) -> None:
    with supervised(*base_args(app_dir, "--workers", "2", "--driver", driver)) as run:
        run.wait_started(2)
        first = set(run.ready_pids())
        assert len(first) == 2
        with httpx.Client() as client:
            assert get_pid(client, run.url()) in first
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        run.wait_for(rf"Worker process \[{victim}\] died: killed by SIGKILL; replacing it")
        run.wait_for(r"Worker process \[\d+\] is ready", count=3)
        new = set(run.ready_pids()) - first
        assert len(new) == 1
        seen = {get_pid(None, run.url()) for _ in range(40)}  # new connections: both serve
        assert victim not in seen
        assert seen <= (first | new) - {victim}
        stop_cleanly(run)
    assert len(run.started_pids()) == 3


@pytest.mark.parametrize(
    ("source", "code", "message"),
    [
        ("raise RuntimeError('no database')\n", 1, "raised RuntimeError: no database"),
        (
            "async def app(scope, receive, send):\n"
            "    await receive()\n"
            "    await send({'type': 'lifespan.startup.failed', 'message': 'no cache'})\n",
            3,
            "Application startup failed: no cache",
        ),
    ],
    ids=["import-error", "lifespan-failure"],
)
def test_a_worker_failing_at_startup_stops_the_server(
    tmp_path: Path, source: str, code: int, message: str
) -> None:
    (tmp_path / "broken.py").write_text(source)
    args = ("broken:app", "--app-dir", str(tmp_path), "--port", "0", "--workers", "3")
    with supervised(*args) as run:
        assert run.wait() == code, run.output()
    output = run.output()
    assert message in output
    assert "failed to start" in output
    assert len(run.started_pids()) == 3  # no restart loop


def test_a_stuck_worker_is_killed_and_replaced(app_dir: Path) -> None:
    args = base_args(app_dir, "--workers", "2", "--timeout-worker-healthcheck", "2")
    with supervised(*args) as run:
        run.wait_started(2)
        blocked = threading.Thread(target=_quiet_get, args=(run.url("/block"),))
        blocked.start()
        silent = run.wait_for(r"Terminating worker process \[(\d+)\] \(silent for")[0]
        stuck = int(silent[1])
        run.wait_for(rf"Killing worker process \[{stuck}\] with SIGKILL")
        run.wait_for(rf"Worker process \[{stuck}\] stopped: killed by SIGKILL")
        run.wait_for(r"Worker process \[\d+\] is ready", count=3)
        blocked.join(DEADLINE_S)
        seen = {get_pid(None, run.url()) for _ in range(20)}
        assert stuck not in seen
        stop_cleanly(run)


def _quiet_get(url: str) -> None:
    with contextlib.suppress(httpx.HTTPError):
        httpx.get(url, timeout=DEADLINE_S)


class Load:
    """Requests in two threads until stopped: one keep-alive client, one new connection per
    request. Every failure is kept; nothing is retried. (A stopping worker answers a request
    that reaches an idle kept-alive connection within its shutdown grace, with "connection:
    close", so a busy keep-alive client never meets a closed connection.)"""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sent = 0
        self.failures: list[str] = []
        self.pids: set[int] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(True,)),
            threading.Thread(target=self._run, args=(False,)),
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(DEADLINE_S)

    def _run(self, keep_alive: bool) -> None:
        limit = time.monotonic() + 4 * DEADLINE_S  # bounded even if the test stalls
        with httpx.Client(timeout=DEADLINE_S) as client:
            while not self._stop.is_set() and time.monotonic() < limit:
                try:
                    if keep_alive:
                        response = client.get(self.url)
                    else:
                        response = httpx.get(self.url, timeout=DEADLINE_S)
                    ok = response.status_code == 200
                    failure = None if ok else f"status {response.status_code}"
                except httpx.HTTPError as exc:
                    kind = "keep-alive" if keep_alive else "new connection"
                    failure = f"{kind}: {type(exc).__name__}: {exc}"
                    response = None
                with self._lock:
                    self.sent += 1
                    if failure is not None:
                        self.failures.append(failure)
                    elif response is not None:
                        self.pids.add(int(response.text))

    def wait_sent(self, count: int) -> None:
        deadline = time.monotonic() + DEADLINE_S
        start = self.sent
        while self.sent < start + count:
            assert time.monotonic() < deadline, f"only {self.sent - start} requests"
            time.sleep(0.01)


@pytest.mark.parametrize("driver", ["asyncio", "selectors"])
def test_sighup_restarts_workers_one_by_one_without_a_failed_request(
    app_dir: Path, driver: str
) -> None:
    with supervised(*base_args(app_dir, "--workers", "2", "--driver", driver)) as run:
        run.wait_started(2)
        old = set(run.ready_pids())
        with Load(run.url()) as load:
            load.wait_sent(200)
            run.signal(signal.SIGHUP)
            run.wait_for(r"Received SIGHUP")
            for pid in old:
                run.wait_for(rf"Worker process \[{pid}\] stopped")
            load.wait_sent(200)
        new = set(run.ready_pids()) - old
        print(
            f"SIGHUP under load ({driver}): {load.sent} requests sent, {len(load.failures)} failed"
        )
        assert load.failures == [], load.failures[:5]
        assert len(new) == 2
        assert new & load.pids  # the new workers serve
        assert min(serving_counts(run)[1:]) >= 2, run.output()
        # new before old: each old worker was stopped only once its replacement was ready
        for match in run.matches(r"Stopping worker process \[\d+\] \(replaced by \[(\d+)\]"):
            assert int(match[1]) in new
        stop_cleanly(run)


def test_sigttin_and_sigttou_add_and_remove_a_worker(app_dir: Path) -> None:
    with supervised(*base_args(app_dir, "--workers", "2")) as run:
        run.wait_started(2)
        run.signal(signal.SIGTTIN)
        run.wait_for(r"Received SIGTTIN: 3 workers")
        run.wait_for(r"Worker process \[\d+\] is ready", count=3)
        run.signal(signal.SIGTTOU)
        run.wait_for(r"Received SIGTTOU: 2 workers")
        gone = int(run.wait_for(r"Stopping worker process \[(\d+)\] \(keeping 2 workers\)")[0][1])
        run.wait_for(rf"Worker process \[{gone}\] stopped: exit code 0")
        assert gone == run.started_pids()[0]  # the oldest
        run.signal(signal.SIGTTOU)
        run.wait_for(r"Received SIGTTOU: 1 workers")
        run.signal(signal.SIGTTOU)
        run.wait_for(r"one worker left; keeping it")
        assert get_pid(None, run.url()) in run.ready_pids()
        stop_cleanly(run)
    assert len(run.started_pids()) == 3


def test_max_requests_with_workers_never_drops_capacity(app_dir: Path) -> None:
    args = base_args(app_dir, "--workers", "2", "--limit-max-requests", "15")
    with supervised(*args) as run:
        run.wait_started(2)
        with Load(run.url()) as load:
            run.wait_for(r"Stopping worker process \[\d+\] \(replaced by", count=3)
        assert load.failures == [], load.failures[:5]
        counts = serving_counts(run)
        assert min(counts[1:]) >= 2, run.output()
        assert "asking for a replacement before stopping" in run.output()
        stop_cleanly(run)


def test_workers_max_rss_replaces_a_big_worker(app_dir: Path) -> None:
    args = base_args(app_dir, "--workers", "2", "--workers-max-rss", "120")
    with supervised(*args) as run:
        run.wait_started(2)
        big = get_pid(None, run.url("/alloc"))
        run.wait_for(rf"Stopping worker process \[{big}\] \(replaced by \[\d+\]: its memory")
        run.wait_for(rf"Worker process \[{big}\] stopped: exit code 0")
        assert "above --workers-max-rss 120" in run.output()
        seen = {get_pid(None, run.url()) for _ in range(20)}
        assert big not in seen
        assert min(serving_counts(run)[1:]) >= 2, run.output()
        stop_cleanly(run)


def test_sigint_stops_workers_gracefully_during_a_request(app_dir: Path) -> None:
    (app_dir / "slowapp.py").write_text(
        "import asyncio, os\n"
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    open(os.path.join(os.path.dirname(__file__), 'started'), 'w').close()\n"
        "    await asyncio.sleep(1)\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'done'})\n"
    )
    args = ("slowapp:app", "--app-dir", str(app_dir), "--port", "0", "--workers", "2")
    with supervised(*args) as run:
        run.wait_started(2)
        result: list[httpx.Response] = []
        thread = threading.Thread(
            target=lambda: result.append(httpx.get(run.url(), timeout=DEADLINE_S))
        )
        thread.start()
        deadline = time.monotonic() + DEADLINE_S
        while not (app_dir / "started").exists():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        run.signal(signal.SIGINT)
        thread.join(DEADLINE_S)
        assert run.wait() == 0, run.output()
    assert result[0].text == "done"
    assert len(run.matches(r"Worker process \[\d+\] stopped: exit code 0")) == 2


def test_uds_with_workers(tmp_path: Path, app_dir: Path) -> None:
    path = tmp_path / "server.sock"
    args = ("pidapp:app", "--app-dir", str(app_dir), "--uds", str(path), "--workers", "2")
    with supervised(*args) as run:
        run.wait_for(r"Worker process \[\d+\] is ready", count=2)
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(path))) as client:
            assert get_pid(client, "http://localhost/") in run.ready_pids()
        stop_cleanly(run)
    assert not path.exists()


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper is gone as far as serving goes)."""
    try:
        with open(f"/proc/{pid}/status") as file:
            return not any(line.startswith("State:\tZ") for line in file)
    except OSError:
        return False


def test_workers_stop_when_the_supervisor_is_killed(app_dir: Path) -> None:
    with supervised(*base_args(app_dir, "--workers", "2")) as run:
        run.wait_started(2)
        workers = run.ready_pids()
        run.process.kill()  # no chance to stop them: they notice the closed pipe themselves
        run.wait()
        deadline = time.monotonic() + DEADLINE_S
        while any(_alive(pid) for pid in workers):
            assert time.monotonic() < deadline, run.output()
            time.sleep(0.05)
    assert "The supervisor process is gone; stopping" in run.output()


def test_a_worker_silent_at_startup_stops_the_server(tmp_path: Path) -> None:
    (tmp_path / "hangs.py").write_text("import time\ntime.sleep(60)\n")
    args = ("hangs:app", "--app-dir", str(tmp_path), "--port", "0", "--workers", "2")
    with supervised(*args, "--timeout-notify", "2") as run:
        assert run.wait() == 3, run.output()
    output = run.output()
    assert "silent for" in output and "--timeout-notify is 2s" in output
    assert "failed to start: killed by SIGTERM" in output  # it had not yet set up handlers
    assert len(run.started_pids()) == 2


FORKING_APP = (
    "import os, signal, time\n"
    "async def app(scope, receive, send):\n"
    "    if scope['type'] == 'lifespan':\n"
    "        message = await receive()\n"
    "        if os.fork() == 0:  # a child of the app's own, outliving its worker\n"
    "            signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
    "            time.sleep(60)\n"
    "            os._exit(0)\n"
    "        await send({'type': 'lifespan.startup.complete'})\n"
    "        await receive()\n"
    "        await send({'type': 'lifespan.shutdown.complete'})\n"
    "        return\n"
    "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
    "    await send({'type': 'http.response.body', 'body': b'ok'})\n"
)


def test_a_worker_whose_app_forked_is_reaped_when_it_exits(tmp_path: Path) -> None:
    """The app's own child inherits the worker's sentinel pipe, which then never signals the
    worker's exit: the supervisor asks for the worker's exit status itself."""
    (tmp_path / "forkapp.py").write_text(FORKING_APP)
    args = ("forkapp:app", "--app-dir", str(tmp_path), "--port", "0", "--workers", "2")
    children: list[int] = []
    with supervised(*args) as run:
        run.wait_started(2)
        for worker in run.ready_pids():
            listing = Path(f"/proc/{worker}/task/{worker}/children").read_text()
            children += [int(pid) for pid in listing.split()]
        try:
            assert len(children) == 2
            run.signal(signal.SIGTERM)
            # The forked children sleep for 60 s; the supervisor must not wait for them.
            code = run.process.wait(timeout=DEADLINE_S)
        finally:
            for pid in children:  # they hold the output pipe open too
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        assert run.wait() == 0 == code, run.output()
        assert "Killing worker process" not in run.output()


def test_signals_to_the_whole_process_group_are_the_supervisors(app_dir: Path) -> None:
    """A terminal's hangup (SIGHUP to the process group) is a rolling restart, and job control
    signals reach the supervisor alone: no worker dies of them."""
    with supervised(*base_args(app_dir, "--workers", "2")) as run:
        run.wait_started(2)
        os.killpg(run.process.pid, signal.SIGHUP)
        run.wait_for(r"Worker process \[\d+\] is ready", count=4)
        os.killpg(run.process.pid, signal.SIGTTIN)
        run.wait_for(r"Worker process \[\d+\] is ready", count=5)
        assert not run.matches(r"Worker process \[\d+\] died"), run.output()
        stop_cleanly(run)
