"""Benchmark sansio-asgi against its peers, in one run, and report ratios.

Usage (from the repository root, with the bench venv; see bench/README.md)::

    /work/peersvenv/bin/python bench/run.py                     # everything; writes RESULTS.md
    /work/peersvenv/bin/python bench/run.py --app hello,ws --duration 2 --runs 1
    /work/peersvenv/bin/python bench/run.py --servers sansio-asyncio,uvicorn-h11 --json out.json

Each server runs as one process (one worker) on 127.0.0.1 on a free port with access logs off,
started afresh for every measurement. The harness times its start to the first 200, loads it
(``wrk`` for HTTP, ``bench/ws_client.py`` for WebSocket) for ``--duration`` seconds after a
warm-up, reads its peak RSS (``VmHWM`` in /proc/PID/status) and stops it by PID (SIGINT, then
SIGKILL after a deadline). With two or more CPUs the server is pinned to CPU 0 and the load
generator to CPU 1 with taskset. Every case is measured ``--runs`` times, the servers taking
turns, and the median is reported. Separately, each server holds ``--idle-connections`` idle
keep-alive connections that have each made one request, and the growth of its RSS is divided
by their number.

HTTP/2 (mode ``h2``): the servers that speak it serve cleartext HTTP/2 with prior knowledge on
the same port, loaded by ``h2load -n REQUESTS -c 10 -m 10`` (see ``http2_load.py``).

The numbers are only comparable within one run: the tables report each server's median as a
ratio to the median of ``uvicorn --http h11 --loop asyncio`` in the same run (and, for the
WebSocket echo, to uvicorn with ``--ws websockets`` too; for HTTP/2, to hypercorn's).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from http2_load import (
    H2_APPS,
    H2_BASELINE,
    ensure_h2load,
    h2load,
    h2load_version,
    p99_ms,
    parse_h2load,
)

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
BASELINE = "uvicorn-h11"
WS_BASELINE = "uvicorn-h11-websockets"
ECHO_BODY_BYTES = 64 * 1024
START_DEADLINE_S = 20.0
START_POLL_S = 0.005  # a refused connect costs microseconds: poll often, time the start finely
STOP_DEADLINE_S = 5.0
IDLE_DEADLINE_S = 120.0  # to open every idle connection, one request each
# Long enough that no idle connection times out while the others are opened and measured.
KEEP_ALIVE_S = "600"
APPS = ("hello", "json", "echo", "stream", "starlette", "ws")
MODES = ("keep-alive", "close", "h2")
HTTP_APPS = ("hello", "json", "echo", "stream")
RAW_APPS = ("hello", "json", "stream")  # bench/ceilings.py raw reads no request bodies
H2_GUESSED_RATE_PER_S = 5000  # for the time estimate only: h2load runs a number of requests


@dataclass(frozen=True)
class Peer:
    """A server in the comparison: what it needs installed and which apps it serves."""

    name: str
    modules: tuple[str, ...]
    apps: tuple[str, ...] = APPS
    h2: bool = False  # serves cleartext HTTP/2 with prior knowledge on its port


PEERS = (
    Peer("sansio-asyncio", ("sansio_asgi",), h2=True),
    Peer("sansio-selectors", ("sansio_asgi",), h2=True),
    Peer("sansio-asyncio-uvloop", ("sansio_asgi", "uvloop"), h2=True),
    Peer(BASELINE, ("uvicorn", "h11", "wsproto")),
    Peer(WS_BASELINE, ("uvicorn", "h11", "websockets"), ("ws",)),
    Peer("hypercorn", ("hypercorn",), h2=True),
    Peer("daphne", ("daphne",)),
    Peer("granian", ("granian",), h2=True),
    Peer("uvicorn-httptools-uvloop", ("uvicorn", "httptools", "uvloop")),
    Peer("ceiling-raw", (), RAW_APPS),
    Peer("ceiling-h11", ("h11",), HTTP_APPS),
)
SERVERS = tuple(peer.name for peer in PEERS)
APP_MODULES = {"starlette": ("starlette",)}
PACKAGES = (
    "sansio-asgi",
    "h11",
    "wsproto",
    "uvicorn",
    "httptools",
    "uvloop",
    "websockets",
    "hypercorn",
    "daphne",
    "twisted",
    "granian",
    "starlette",
)


def app_target(app: str) -> str:
    return "bench.starlette_app:app" if app == "starlette" else f"bench.apps:{app}"


def server_command(name: str, py: str, app: str, port: int) -> list[str]:
    """One server, single process and single worker, access log off."""
    target, p = app_target(app), str(port)
    sansio = [py, "-m", "sansio_asgi", target, "--host", HOST, "--port", p, "--no-access-log"]
    sansio += ["--timeout-keep-alive", KEEP_ALIVE_S]
    uvicorn = [py, "-m", "uvicorn", target, "--host", HOST, "--port", p, "--no-access-log"]
    uvicorn += ["--timeout-keep-alive", KEEP_ALIVE_S]
    ceiling = [py, "bench/ceilings.py", "--app", app, "--host", HOST, "--port", p]
    commands = {
        # --loop asyncio: the default (auto) takes uvloop when it is installed.
        "sansio-asyncio": [*sansio, "--driver", "asyncio", "--loop", "asyncio"],
        "sansio-selectors": [*sansio, "--driver", "selectors", "--loop", "asyncio"],
        "sansio-asyncio-uvloop": [*sansio, "--driver", "asyncio", "--loop", "uvloop"],
        BASELINE: [*uvicorn, "--http", "h11", "--loop", "asyncio", "--ws", "wsproto"],
        WS_BASELINE: [*uvicorn, "--http", "h11", "--loop", "asyncio", "--ws", "websockets"],
        # --workers 0: serve in this process (the default, 1, spawns one child worker).
        # No --access-logfile: hypercorn then writes no access log. The config file lifts its
        # limit of 1,000 requests per connection.
        "hypercorn": [
            *[py, "-m", "hypercorn", target, "--bind", f"{HOST}:{p}", "--workers", "0"],
            *["--keep-alive", KEEP_ALIVE_S, "--config", "bench/hypercorn.toml"],
        ],
        # -v 0: daphne's access log is on (to stdout) at the default verbosity 1.
        "daphne": [py, "-m", "daphne", "-b", HOST, "-p", p, "-v", "0", target],
        # One worker process (granian always forks one); its access log is off by default.
        # --backpressure: by default it serves at most backlog (1024) connections at once,
        # which would stop the idle-connection measurement short.
        "granian": [
            *[py, "-m", "granian", "--interface", "asgi", "--host", HOST, "--port", p],
            *["--workers", "1", "--backpressure", "16384", target],
        ],
        "uvicorn-httptools-uvloop": [*uvicorn, "--http", "httptools", "--loop", "uvloop"],
        "ceiling-raw": [*ceiling[:2], "raw", *ceiling[2:]],
        "ceiling-h11": [*ceiling[:2], "h11", *ceiling[2:]],
    }
    return commands[name]


@dataclass(frozen=True)
class Case:
    app: str
    mode: str  # "keep-alive", "close", "h2" or, for the WebSocket echo, "ws"

    @property
    def label(self) -> str:
        return f"{self.app} ({self.mode})" if self.mode in ("close", "h2") else self.app

    @property
    def baseline(self) -> str:
        return H2_BASELINE if self.mode == "h2" else BASELINE


@dataclass
class Sample:
    """One measurement of one server on one case."""

    rate_per_s: float | None = None  # requests/s, or round trips/s for WebSocket
    count: int | None = None
    latency_avg_ms: float | None = None
    latency_p99_ms: float | None = None
    peak_rss_kib: int | None = None
    startup_s: float | None = None
    non_2xx_3xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    client_errors: list[str] = field(default_factory=list)
    server_log_lines: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class Idle:
    """Memory held per idle keep-alive connection."""

    requested: int
    opened: int = 0
    held: int = 0
    rss_before_kib: int | None = None
    rss_after_kib: int | None = None
    startup_s: float | None = None
    note: str | None = None  # fewer connections than requested, and why
    error: str | None = None  # the server did not start

    @property
    def per_connection_kib(self) -> float | None:
        if self.held and self.rss_before_kib is not None and self.rss_after_kib is not None:
            return (self.rss_after_kib - self.rss_before_kib) / self.held
        return None


# -- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def pinned(cpu: int, argv: list[str]) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu), *argv]
    return argv


def children(pid: int) -> list[int]:
    """Descendant PIDs of ``pid`` (from /proc), so a forking server is measured and stopped."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [child for child, ppid in parents.items() if ppid == parent]
        found += kids
        frontier += kids
    return found


def rss_kib(pid: int, field_name: str) -> int | None:
    """Sum of a /proc/PID/status memory field (VmHWM: peak, VmRSS: now) over the process and
    its descendants, in KiB."""
    total = None
    for each in [pid, *children(pid)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith(field_name + ":"):
                    total = (total or 0) + int(line.split()[1])
    return total


def stop(proc: subprocess.Popen[bytes], deadline_s: float = STOP_DEADLINE_S) -> None:
    """SIGINT by PID, then SIGKILL by PID after the deadline; descendants too."""
    if proc.poll() is not None:
        return
    kids = children(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=deadline_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    for kid in kids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(kid, signal.SIGKILL)


def answers(port: int) -> bool:
    """True once the server answers a GET with 200. Reads the whole response, up to the
    server's close, so that the probe itself never resets a connection mid-response."""
    response = b""
    try:
        with socket.create_connection((HOST, port), timeout=2.0) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            while chunk := sock.recv(65536):
                response += chunk
    except OSError:
        pass
    return response.startswith(b"HTTP/1.1 200")


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    startup_s: float


@contextlib.contextmanager
def running(argv: list[str], port: int, log_path: Path) -> Iterator[Running]:
    """Start a server, time it to its first 200, and always stop it by PID afterwards."""
    with log_path.open("wb") as log:
        started = time.monotonic()
        proc = subprocess.Popen(
            pinned(0, argv), cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        try:
            deadline = started + START_DEADLINE_S
            while not answers(port):
                if proc.poll() is not None:
                    raise RuntimeError(f"exited with status {proc.returncode} before answering")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"did not answer within {START_DEADLINE_S:g} s")
                time.sleep(START_POLL_S)
            yield Running(proc, time.monotonic() - started)
        finally:
            stop(proc)


# -- load ------------------------------------------------------------------------------------

WRK_POST = f"""wrk.method = "POST"
wrk.body = string.rep("x", {ECHO_BODY_BYTES})
wrk.headers["Content-Type"] = "application/octet-stream"
"""


def wrk(
    port: int, case: Case, duration_s: int, connections: int, script: Path
) -> subprocess.CompletedProcess[str]:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration_s}s", "--latency"]
    if case.app == "echo":
        argv += ["-s", str(script)]
    if case.mode == "close":
        argv += ["-H", "Connection: close"]
    argv.append(f"http://{HOST}:{port}/")
    done = subprocess.run(
        pinned(1, argv), capture_output=True, text=True, timeout=duration_s + 30, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    return done


def ms(text: str) -> float | None:
    """wrk's latency (``512.00us``, ``5.13ms``, ``1.20s``, ``2.00m``) in milliseconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return None
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]
    return float(m.group(1)) * scale


def parse_wrk(text: str, sample: Sample) -> None:
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        sample.rate_per_s = float(m.group(1))
    if m := re.search(r"(\d+) requests in", text):
        sample.count = int(m.group(1))
    if m := re.search(r"Latency\s+(\S+)", text):
        sample.latency_avg_ms = ms(m.group(1))
    if m := re.search(r"99%\s+(\S+)", text):
        sample.latency_p99_ms = ms(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text):
        sample.non_2xx_3xx = int(m.group(1))
    if m := re.search(r"Socket errors: (.*)", text):
        sample.socket_errors = {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", m.group(1))}


def ws_client(port: int, duration_s: int, connections: int) -> dict[str, object]:
    argv = [sys.executable, str(REPO / "bench" / "ws_client.py"), "--port", str(port)]
    argv += ["--connections", str(connections), "--duration", str(duration_s)]
    done = subprocess.run(
        pinned(1, argv), capture_output=True, text=True, timeout=duration_s + 30, check=False
    )
    try:
        found: dict[str, object] = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"ws_client failed ({done.returncode}): {done.stderr.strip()}") from None
    return found


def parse_ws(found: dict[str, object], sample: Sample) -> None:
    rate, count = found.get("round_trips_per_s"), found.get("round_trips")
    latency: dict[str, float] = {}
    sample.rate_per_s = float(rate) if isinstance(rate, (int, float)) else None
    sample.count = count if isinstance(count, int) else None
    if isinstance(found.get("latency_ms"), dict):
        latency = found["latency_ms"]  # type: ignore[assignment]
    sample.latency_avg_ms = latency.get("avg")
    sample.latency_p99_ms = latency.get("p99")
    errors = found.get("errors")
    sample.client_errors = [str(e) for e in errors] if isinstance(errors, list) else []


def measure(
    peer: str, case: Case, args: argparse.Namespace, workdir: Path, script: Path, run: int
) -> Sample:
    sample = Sample()
    port = free_port()
    argv = server_command(peer, args.python, case.app, port)
    log_path = workdir / f"{peer}-{case.app}-{case.mode}-{run}.log"
    try:
        with running(argv, port, log_path) as server:
            sample.startup_s = server.startup_s
            if case.mode == "ws":
                if args.warmup:
                    ws_client(port, args.warmup, args.ws_connections)
                parse_ws(ws_client(port, args.duration, args.ws_connections), sample)
            elif case.mode == "h2":
                url, load = f"http://{HOST}:{port}/", pinned(1, [])
                h2 = (args.h2_connections, args.h2_streams, workdir)
                if args.h2_warmup_requests:
                    h2load(load, url, case.app, args.h2_warmup_requests, *h2)
                log_file = workdir / f"{peer}-{case.app}-h2-{run}.tsv"
                done = h2load(load, url, case.app, args.h2_requests, *h2, log_file=log_file)
                parse_h2load(done.stdout, sample, args.h2_requests)
                sample.latency_p99_ms = p99_ms(log_file)
                log_file.unlink(missing_ok=True)
            else:
                if args.warmup:
                    wrk(port, case, args.warmup, args.connections, script)
                done = wrk(port, case, args.duration, args.connections, script)
                parse_wrk(done.stdout, sample)
            sample.peak_rss_kib = rss_kib(server.proc.pid, "VmHWM")
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        sample.error = str(exc)
    if log_path.exists():
        sample.server_log_lines = log_path.read_text(errors="replace").splitlines()
    return sample


# -- memory per idle keep-alive connection ---------------------------------------------------

IDLE_REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"


def one_request(sock: socket.socket) -> None:
    """Send one keep-alive GET and read its whole response (``hello``: a content-length)."""
    sock.sendall(IDLE_REQUEST)
    data = b""
    while (end := data.find(b"\r\n\r\n")) == -1:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the response head")
        data += chunk
    m = re.search(rb"(?im)^content-length:\s*(\d+)", data[:end])
    if not data.startswith(b"HTTP/1.1 200") or not m:
        raise ConnectionError(f"unexpected response {data[:60]!r}")
    missing = end + 4 + int(m.group(1)) - len(data)
    while missing > 0:
        chunk = sock.recv(missing)
        if not chunk:
            raise ConnectionError("closed before the response body")
        missing -= len(chunk)


def still_open(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def measure_idle(peer: str, args: argparse.Namespace, workdir: Path) -> Idle:
    idle = Idle(requested=args.idle_connections)
    port = free_port()
    argv = server_command(peer, args.python, "hello", port)
    sockets: list[socket.socket] = []
    try:
        with running(argv, port, workdir / f"{peer}-idle.log") as server:
            idle.startup_s = server.startup_s
            # A few requests first, so that what a server builds lazily is not counted.
            with socket.create_connection((HOST, port), timeout=5.0) as warm:
                for _ in range(20):
                    one_request(warm)
            idle.rss_before_kib = rss_kib(server.proc.pid, "VmRSS")
            deadline = time.monotonic() + IDLE_DEADLINE_S
            try:
                while len(sockets) < idle.requested and time.monotonic() < deadline:
                    sock = socket.create_connection((HOST, port), timeout=5.0)
                    sockets.append(sock)
                    one_request(sock)
            except OSError as exc:
                idle.note = f"connection {len(sockets)}: {exc}"
            if len(sockets) < idle.requested and not idle.note:
                idle.note = f"{len(sockets)} opened within {IDLE_DEADLINE_S:g} s"
            idle.opened = len(sockets)
            idle.rss_after_kib = rss_kib(server.proc.pid, "VmRSS")
            idle.held = sum(still_open(sock) for sock in sockets)
            for sock in sockets:
                sock.close()
            sockets.clear()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        idle.error = str(exc)
    finally:
        for sock in sockets:
            sock.close()
    return idle


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE (the servers inherit it) towards ``wanted``;
    return the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- environment -----------------------------------------------------------------------------

PROBE = """
import importlib.util, json, sys
from importlib import metadata
modules, packages = sys.argv[1].split(","), sys.argv[2].split(",")
versions = {}
for name in packages:
    try:
        versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        pass
print(json.dumps({
    "python": sys.version.split()[0],
    "modules": {m: importlib.util.find_spec(m) is not None for m in modules},
    "versions": versions,
}))
"""


def probe_python(py: str) -> dict[str, dict[str, object]]:
    """What the servers' interpreter has: importable modules and package versions."""
    modules = {m for peer in PEERS for m in peer.modules}
    modules |= {m for ms in APP_MODULES.values() for m in ms}
    done = subprocess.run(
        [py, "-c", PROBE, ",".join(sorted(modules)), ",".join(PACKAGES)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found: dict[str, dict[str, object]] = json.loads(done.stdout)
    return found


def ensure_wrk() -> str | None:
    """wrk's path; installed with apt-get when missing and this process may (root)."""
    if path := shutil.which("wrk"):
        return path
    if shutil.which("apt-get") and os.geteuid() == 0:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr, flush=True)
        install = ["apt-get", "install", "-y", "-q", "wrk"]
        if subprocess.run(install, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], check=False)
            subprocess.run(install, check=False)
    return shutil.which("wrk")


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{platform.system()} {platform.machine()}, nproc={os.cpu_count()}, {model}".strip(", ")


def source_state() -> str:
    """The commit of the tree under test, and whether it has uncommitted changes."""
    git = ["git", "-C", str(REPO)]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"{REPO} (not a git checkout)"
    return f"commit {commit}" + (" with uncommitted changes" if dirty else "")


def wrk_version() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
        return out.stdout.split(" [")[0].strip()
    return "?"


# -- report ----------------------------------------------------------------------------------


def problems(sample: Sample) -> list[str]:
    found = []
    if sample.error:
        found.append(f"error: {sample.error}")
    if sample.non_2xx_3xx:
        found.append(f"{sample.non_2xx_3xx} non-2xx/3xx responses")
    if any(sample.socket_errors.values()):
        found.append(f"socket errors {sample.socket_errors}")
    if sample.client_errors:
        found.append(f"client errors: {sample.client_errors[0]}")
    noisy = [line for line in sample.server_log_lines if re.search(r"error|traceback", line, re.I)]
    if noisy:
        found.append(f"{len(noisy)} error lines in server output, first: {noisy[0]!r}")
    return found


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def fmt(value: float | None, spec: str, scale: float = 1.0) -> str:
    return "-" if value is None else format(value / scale, spec)


def ratio(value: float | None, base: float | None) -> str:
    return f"{value / base:.2f}" if value and base else "-"


Results = dict[Case, dict[str, list[Sample]]]


def case_table(case: Case, by_server: dict[str, list[Sample]]) -> list[str]:
    rates = {s: median([x.rate_per_s for x in samples]) for s, samples in by_server.items()}
    unit = "round trips/s" if case.mode == "ws" else "req/s"
    head = f"| server | {unit} (median) | vs {case.baseline} |"
    rule = "|---|---:|---:|"
    if case.mode == "ws":
        head += f" vs {WS_BASELINE} |"
        rule += "---:|"
    rows = [
        f"### {case.label}",
        "",
        head + " runs | p99 latency (ms) | peak RSS (MiB) | problems |",
        rule + "---|---:|---:|---|",
    ]
    for server, samples in by_server.items():
        rate = rates[server]
        cells = [server, fmt(rate, ",.0f"), ratio(rate, rates.get(case.baseline))]
        if case.mode == "ws":
            cells.append(ratio(rate, rates.get(WS_BASELINE)))
        cells.append(" / ".join(fmt(x.rate_per_s, ".0f") for x in samples) or "-")
        cells.append(fmt(median([x.latency_p99_ms for x in samples]), ".2f"))
        peak = median([x.peak_rss_kib for x in samples])
        cells.append(fmt(peak, ".1f", 1024))
        issues = sorted({issue for x in samples for issue in problems(x)})
        fallback = "none" if samples else "not measured: it failed to start before"
        cells.append("; ".join(issues).replace("|", "/") or fallback)
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def summary_table(results: Results, cases: list[Case]) -> list[str]:
    """Each server's ratio to its case's baseline, a column per case."""
    servers = [s for s in SERVERS if any(s in results[case] for case in cases)]
    rows = [
        "| server | " + " | ".join(c.label for c in cases) + " |",
        "|---|" + "---:|" * len(cases),
    ]
    for server in servers:
        cells = [server]
        for case in cases:
            rates = {s: median([x.rate_per_s for x in v]) for s, v in results[case].items()}
            cells.append(ratio(rates.get(server), rates.get(case.baseline)))
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def idle_table(
    idle: dict[str, Idle], startups: dict[str, list[float]], broken: set[str]
) -> list[str]:
    rows = [
        "| server | start to first 200 (ms, median) | idle connections held | RSS growth (MiB) "
        "| per connection (KiB) | problems |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for server in SERVERS:
        if server not in idle and server not in startups:
            continue
        startup = median([*startups.get(server, [])])
        entry = idle.get(server)
        held = growth = per = "-"
        issue = ""
        if entry:
            held = f"{entry.held:,} of {entry.requested:,}"
            if entry.rss_before_kib is not None and entry.rss_after_kib is not None:
                growth = f"{(entry.rss_after_kib - entry.rss_before_kib) / 1024:.1f}"
            per = fmt(entry.per_connection_kib, ".2f")
            if entry.error or entry.note:
                issue = str(entry.error or entry.note)
            elif entry.held < entry.requested:
                issue = f"{entry.requested - entry.held} not held (closed by the server?)"
        elif server in broken:
            issue = "not measured: it failed to start before"
        startup_ms = fmt(startup, ".0f", 0.001)
        rows.append(f"| {server} | {startup_ms} | {held} | {growth} | {per} | {issue or 'none'} |")
    return rows


def report(
    results: Results,
    idle: dict[str, Idle],
    broken: set[str],
    skipped: list[str],
    args: argparse.Namespace,
    started: datetime.datetime,
    probed: dict[str, dict[str, object]],
    argv: list[str],
) -> str:
    minutes = (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds() / 60
    versions = ", ".join(f"{k} {v}" for k, v in probed["versions"].items())
    pinning = "Server on CPU 0, load generator on CPU 1 (taskset)"
    if not pinned(0, []):
        pinning = "Not pinned to CPUs (that needs taskset and 2+ CPUs)"
    lines = ["# Benchmark results", ""]
    if args.duration < 5 or args.runs < 3:
        lines += [
            f"**Smoke run** ({args.duration} s of load, {args.runs} run(s) per case): it shows "
            "the harness works, not how fast anything is. Do not compare these figures.",
            "",
        ]
    lines += [
        f"Run {started:%Y-%m-%d %H:%M} UTC, {minutes:.0f} min. {machine()}.",
        f"Python {probed['python']} for the servers; {versions}; {wrk_version()}"
        + (f"; {h2load_version()}." if any(c.mode == "h2" for c in results) else "."),
        f"sansio-asgi from {source_state()}.",
        "",
        f"Command: `{' '.join(['python bench/run.py', shlex.join(argv)]).strip()}`",
        "",
        f"Load: `wrk -t1 -c{args.connections} -d{args.duration}s --latency` after "
        f"{args.warmup} s of warm-up (close mode adds `-H 'Connection: close'`; echo POSTs "
        f"{ECHO_BODY_BYTES // 1024} KiB); WebSocket: `bench/ws_client.py`, "
        f"{args.ws_connections} connections, one 13-byte message per round trip; HTTP/2 "
        f"(h2c, prior knowledge): `h2load -n {args.h2_requests} -c {args.h2_connections} "
        f"-m {args.h2_streams}` after {args.h2_warmup_requests} requests of warm-up. "
        f"{pinning}. {args.runs} run(s) per case, servers taking turns, each run "
        "on a freshly started server; medians reported, ratios are medians divided by the "
        "baseline's median in this run.",
        "",
    ]
    if skipped:
        lines += ["Skipped:", "", *(f"- {line}" for line in skipped), ""]
    http1 = [case for case in results if case.mode != "h2"]
    http2 = [case for case in results if case.mode == "h2"]
    if http1:
        lines += [f"## Ratio to {BASELINE} (median req/s, or round trips/s)", ""]
        lines += [*summary_table(results, http1), ""]
    if http2:
        lines += [f"## HTTP/2 (h2load): ratio to {H2_BASELINE} (median req/s)", ""]
        lines += [*summary_table(results, http2), ""]
    if results:
        lines += ["## Each case", ""]
        for case, by_server in results.items():
            lines += [*case_table(case, by_server), ""]
    startups: dict[str, list[float]] = {}
    for by_server in results.values():
        for server, samples in by_server.items():
            startups.setdefault(server, []).extend(
                x.startup_s for x in samples if x.startup_s is not None
            )
    for server, entry in idle.items():
        if entry.startup_s is not None:
            startups.setdefault(server, []).append(entry.startup_s)
    if startups or idle:
        lines += [
            "## Start-up and idle keep-alive connections",
            "",
            "Start: from starting the process to its first 200 (polled every "
            f"{START_POLL_S * 1000:g} ms), median over every start in this run. Idle: each "
            "connection made one request (hello) and stays open; RSS growth (VmRSS over the "
            "process tree) divided by the connections still open.",
            "",
            *idle_table(idle, startups, broken),
            "",
        ]
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------


def cases(
    apps: list[str], modes: list[str], close_apps: list[str], h2_apps: list[str]
) -> list[Case]:
    found = []
    for app in apps:
        if app == "ws":
            found.append(Case(app, "ws"))
            continue
        for mode in modes:
            if mode == "close" and app not in close_apps:
                continue
            if mode == "h2" and app not in h2_apps:
                continue
            found.append(Case(app, mode))
    return found


def split(value: str, known: tuple[str, ...], parser: argparse.ArgumentParser) -> list[str]:
    names = list(known) if value == "all" else [v for v in value.split(",") if v]
    for name in names:
        if name not in known:
            parser.error(f"unknown {name!r}; choose from {', '.join(known)} (or all)")
    return names


def say(line: str) -> None:
    """Progress and skips, on stderr: stdout carries the report alone."""
    print(line, file=sys.stderr, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--duration", type=int, default=5, help="seconds of load per run (default: 5)")
    add("--warmup", type=int, default=1, help="seconds of warm-up load, 0 for none (default: 1)")
    add("--runs", type=int, default=3, help="runs per case; the median is reported (default: 3)")
    add("--connections", type=int, default=50, help="wrk connections (default: 50)")
    add("--ws-connections", type=int, default=10, help="WebSocket connections (default: 10)")
    add("--app", default="all", help=f"comma-separated, of {', '.join(APPS)} (default: all)")
    add("--modes", default="all", help=f"comma-separated, of {', '.join(MODES)} (default: all)")
    add("--close-apps", default="hello", help="apps measured in close mode (default: hello)")
    add("--h2-apps", default="hello", help=f"apps measured over HTTP/2, of {', '.join(H2_APPS)}")
    add("--h2-requests", type=int, default=100_000, help="h2load requests (default: 100000)")
    add("--h2-warmup-requests", type=int, default=5000, help="h2load warm-up (default: 5000)")
    add("--h2-connections", type=int, default=10, help="h2load connections (default: 10)")
    add("--h2-streams", type=int, default=10, help="h2load streams per connection (default: 10)")
    add("--servers", default="all", help="comma-separated subset of the servers (default: all)")
    add(
        "--idle-connections",
        type=int,
        default=5000,
        help="idle keep-alive connections held per server; 0 skips (default: 5000)",
    )
    add("--python", default=sys.executable, help="the servers' interpreter (default: this one)")
    add("--results", type=Path, default=REPO / "bench" / "RESULTS.md", help="Markdown report")
    add("--no-results", action="store_true", help="do not write the Markdown report")
    add("--json", type=Path, help="also write every sample as JSON to this path")
    args = parser.parse_args(argv)
    args.apps = split(args.app, APPS, parser)
    args.mode_list = split(args.modes, MODES, parser)
    args.close_app_list = split(args.close_apps, APPS, parser)
    args.h2_app_list = split(args.h2_apps, H2_APPS, parser)
    args.server_list = split(args.servers, SERVERS, parser)
    if args.duration < 1 or args.runs < 1:
        parser.error("--duration and --runs must be at least 1")
    if not ensure_wrk():
        parser.error("wrk not found on PATH; install it: apt-get install -y wrk")
    if "h2" in args.mode_list and args.h2_app_list and not ensure_h2load():
        parser.error("h2load not found on PATH; install it: apt-get install -y nghttp2-client")
    return args


Plan = list[tuple[Case, list[str]]]


def plan_run(
    args: argparse.Namespace, probed: dict[str, dict[str, object]], skipped: list[str]
) -> tuple[Plan, list[str]]:
    """The cases with the servers that serve them, and the servers whose idle connections are
    measured; what cannot run is added to ``skipped``."""
    has, peers = probed["modules"], {peer.name: peer for peer in PEERS}
    servers, apps = [], []
    for name in args.server_list:
        if missing := [m for m in peers[name].modules if not has.get(m)]:
            skipped.append(f"{name}: not installed for {args.python} (no {', '.join(missing)})")
        else:
            servers.append(name)
    for app in args.apps:
        if missing := [m for m in APP_MODULES.get(app, ()) if not has.get(m)]:
            skipped.append(f"app {app}: not installed for {args.python} (no {', '.join(missing)})")
        else:
            apps.append(app)
    plan = []
    for case in cases(apps, args.mode_list, args.close_app_list, args.h2_app_list):
        h2 = case.mode == "h2"
        if names := [s for s in servers if case.app in peers[s].apps and peers[s].h2 >= h2]:
            plan.append((case, names))
        else:
            skipped.append(f"{case.label}: none of the selected servers serves it")
    idle_servers = [s for s in servers if "hello" in peers[s].apps]
    if not args.idle_connections:
        idle_servers = []
    return plan, idle_servers


def json_payload(
    args: argparse.Namespace,
    started: datetime.datetime,
    probed: dict[str, dict[str, object]],
    results: Results,
    idle: dict[str, Idle],
) -> str:
    payload = {
        "started": started.isoformat(),
        "machine": machine(),
        "environment": probed,
        "settings": {k: str(v) for k, v in vars(args).items()},
        "results": [
            {"app": c.app, "mode": c.mode, "server": s, "samples": [asdict(x) for x in v]}
            for c, by_server in results.items()
            for s, v in by_server.items()
        ],
        "idle": {s: asdict(v) for s, v in idle.items()},
    }
    return json.dumps(payload, indent=2) + "\n"


def compile_tree(py: str) -> None:
    """Byte-compile the working tree's package and apps, as installing a wheel does for the
    peers in site-packages: otherwise every start of sansio-asgi from the checkout compiles its
    modules from source (where PYTHONDONTWRITEBYTECODE is set), and its start to first 200
    measures the compiler."""
    subprocess.run(
        [py, "-m", "compileall", "-q", "sansio_asgi", "bench"],
        cwd=REPO,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    probed = probe_python(args.python)
    skipped: list[str] = []
    plan, idle_servers = plan_run(args, probed, skipped)
    for line in skipped:
        say(f"skip {line}")
    if idle_servers:
        limit = raise_fd_limit(args.idle_connections + 1024)
        if limit < args.idle_connections + 1024:
            args.idle_connections = max(0, limit - 1024)
            say(f"note: RLIMIT_NOFILE is {limit}: holding {args.idle_connections} idle connections")
    measurements = sum(len(names) for _, names in plan) * args.runs
    h2_measurements = sum(len(names) for case, names in plan if case.mode == "h2") * args.runs
    h2_s = (args.h2_requests + args.h2_warmup_requests) / H2_GUESSED_RATE_PER_S
    estimate_s = (measurements - h2_measurements) * (args.duration + args.warmup + 1.5)
    estimate_s += h2_measurements * (h2_s + 1.5) + len(idle_servers) * 10
    say(f"{measurements} measurements, about {estimate_s / 60:.0f} min")

    compile_tree(args.python)
    started = datetime.datetime.now(datetime.timezone.utc)
    results: Results = {case: {name: [] for name in names} for case, names in plan}
    idle: dict[str, Idle] = {}
    broken: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="sansio-bench-") as tmp:
        workdir = Path(tmp)
        script = workdir / "post.lua"
        script.write_text(WRK_POST)
        for case, names in plan:
            for run in range(args.runs):
                for name in names:
                    if name in broken:
                        continue
                    say(f"{case.label} / {name} / run {run + 1}")
                    sample = measure(name, case, args, workdir, script, run)
                    results[case][name].append(sample)
                    for issue in problems(sample):
                        say(f"  {issue}")
                    if sample.startup_s is None:
                        # It would fail the same way for every other case: save the deadlines.
                        broken.add(name)
                        skipped.append(f"{name}: not measured after it failed to start")
                        say(f"skip {skipped[-1]}")
        for name in [s for s in idle_servers if s not in broken]:
            say(f"idle connections / {name}")
            idle[name] = measure_idle(name, args, workdir)
            if idle[name].error or idle[name].note:
                say(f"  {idle[name].error or idle[name].note}")

    text = report(results, idle, broken, skipped, args, started, probed, argv)
    print(text)
    if not args.no_results:
        args.results.write_text(text + "\n")
    if args.json:
        args.json.write_text(json_payload(args, started, probed, results, idle))
    samples = [x for by_server in results.values() for v in by_server.values() for x in v]
    return 1 if any(x.error for x in samples) or any(v.error for v in idle.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
