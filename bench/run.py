"""Benchmark sansio-asgi against its peers, in one run, and report ratios.

Usage (from the repository root, with the bench venv; see bench/README.md)::

    /work/benchvenv/bin/python bench/run.py
    /work/benchvenv/bin/python bench/run.py --app hello,stream --duration 5
    /work/benchvenv/bin/python bench/run.py --servers sansio-asyncio,uvicorn-h11 --json out.json

Each server runs as one process (one worker) on 127.0.0.1 on a free port with access logs off.
The harness waits until it answers, loads it with ``wrk`` for ``--duration`` seconds, reads its
peak RSS (``VmHWM`` in /proc/PID/status) and stops it by PID (SIGINT, then SIGKILL after a
deadline). With two or more CPUs the server is pinned to CPU 0 and wrk to CPU 1 with taskset.

The numbers are only comparable within one run: the table reports each server's requests/s
as a ratio to ``uvicorn --http h11`` measured in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable
HOST = "127.0.0.1"
BASELINE = "uvicorn-h11"
ECHO_BODY_BYTES = 1024
START_DEADLINE_S = 20.0
STOP_DEADLINE_S = 5.0
APPS = ("hello", "stream", "echo")


def server_commands(app: str, port: int) -> dict[str, list[str]]:
    """Every server, single process and single worker, access log off, in report order."""
    target = f"bench.apps:{app}"
    p = str(port)
    sansio = [PY, "-m", "sansio_asgi", target, "--host", HOST, "--port", p, "--no-access-log"]
    uvicorn = [PY, "-m", "uvicorn", target, "--host", HOST, "--port", p, "--no-access-log"]
    return {
        "sansio-asyncio": [*sansio, "--driver", "asyncio"],
        "sansio-selectors": [*sansio, "--driver", "selectors"],
        BASELINE: [*uvicorn, "--http", "h11", "--loop", "asyncio"],
        # --workers 0: serve in this process (the default, 1, spawns one child worker).
        # No --access-logfile: hypercorn then writes no access log.
        "hypercorn": [PY, "-m", "hypercorn", target, "--bind", f"{HOST}:{p}", "--workers", "0"],
        # -v 0: daphne's access log is on (to stdout) at the default verbosity 1.
        "daphne": [PY, "-m", "daphne", "-b", HOST, "-p", p, "-v", "0", target],
        "uvicorn-httptools-uvloop": [*uvicorn, "--http", "httptools", "--loop", "uvloop"],
    }


SERVERS = tuple(server_commands("hello", 0))
PACKAGES = (
    "sansio-asgi",
    "h11",
    "uvicorn",
    "httptools",
    "uvloop",
    "hypercorn",
    "daphne",
    "twisted",
)


@dataclass
class Result:
    server: str
    app: str
    requests_per_s: float | None = None
    requests: int | None = None
    latency_avg: str | None = None
    latency_p99: str | None = None
    non_2xx_3xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    peak_rss_kib: int | None = None
    server_log_lines: list[str] = field(default_factory=list)
    error: str | None = None


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


def peak_rss_kib(pid: int) -> int | None:
    """Sum of VmHWM over the process and its descendants, in KiB."""
    total = None
    for each in [pid, *children(pid)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
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
            while chunk := sock.recv(4096):
                response += chunk
    except OSError:
        pass
    return response.startswith(b"HTTP/1.1 200")


@contextlib.contextmanager
def running(argv: list[str], port: int, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server, wait until it answers, and always stop it by PID afterwards."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            pinned(0, argv), cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + START_DEADLINE_S
            while not answers(port):
                if proc.poll() is not None:
                    raise RuntimeError(f"exited with status {proc.returncode} before answering")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"did not answer within {START_DEADLINE_S:g} s")
                time.sleep(0.1)
            yield proc
        finally:
            stop(proc)


# -- load ------------------------------------------------------------------------------------

WRK_POST = f"""wrk.method = "POST"
wrk.body = string.rep("x", {ECHO_BODY_BYTES})
wrk.headers["Content-Type"] = "application/octet-stream"
"""


def wrk(port: int, app: str, duration_s: int, connections: int, script: Path) -> str:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration_s}s", "--latency"]
    if app == "echo":
        argv += ["-s", str(script)]
    argv.append(f"http://{HOST}:{port}/")
    done = subprocess.run(
        pinned(1, argv), capture_output=True, text=True, timeout=duration_s + 30, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def parse_wrk(text: str, result: Result) -> None:
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        result.requests_per_s = float(m.group(1))
    if m := re.search(r"(\d+) requests in", text):
        result.requests = int(m.group(1))
    if m := re.search(r"Latency\s+(\S+)", text):
        result.latency_avg = m.group(1)
    if m := re.search(r"99%\s+(\S+)", text):
        result.latency_p99 = m.group(1)
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text):
        result.non_2xx_3xx = int(m.group(1))
    if m := re.search(r"Socket errors: (.*)", text):
        result.socket_errors = {k: int(v) for k, v in re.findall(r"(\w+) (\d+)", m.group(1))}


def bench_one(
    server: str, app: str, args: argparse.Namespace, workdir: Path, script: Path
) -> Result:
    result = Result(server=server, app=app)
    port = free_port()
    argv = server_commands(app, port)[server]
    log_path = workdir / f"{server}-{app}.log"
    try:
        with running(argv, port, log_path) as proc:
            if args.warmup:
                wrk(port, app, args.warmup, args.connections, script)
            parse_wrk(wrk(port, app, args.duration, args.connections, script), result)
            result.peak_rss_kib = peak_rss_kib(proc.pid)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        result.error = str(exc)
    if log_path.exists():
        result.server_log_lines = log_path.read_text(errors="replace").splitlines()
    return result


# -- report ----------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        found["wrk"] = subprocess.run(
            ["wrk", "--version"], capture_output=True, text=True, check=False
        ).stdout.split(" [")[0]
    return found


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{platform.system()} {platform.machine()}, nproc={os.cpu_count()}, {model}".strip(", ")


def problems(result: Result) -> list[str]:
    found = []
    if result.error:
        found.append(f"error: {result.error}")
    if result.non_2xx_3xx:
        found.append(f"{result.non_2xx_3xx} non-2xx/3xx responses")
    if any(result.socket_errors.values()):
        found.append(f"socket errors {result.socket_errors}")
    noisy = [line for line in result.server_log_lines if re.search(r"error|traceback", line, re.I)]
    if noisy:
        found.append(f"{len(noisy)} error lines in server output, first: {noisy[0]!r}")
    return found


def table(results: list[Result]) -> str:
    rows = [
        "| server | app | req/s | vs uvicorn h11 | latency avg | p99 | peak RSS (MiB) | problems |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    baseline = {
        r.app: r.requests_per_s for r in results if r.server == BASELINE and r.requests_per_s
    }
    for r in results:
        rps = f"{r.requests_per_s:,.0f}" if r.requests_per_s else "-"
        base = baseline.get(r.app)
        ratio = f"{r.requests_per_s / base:.2f}" if r.requests_per_s and base else "-"
        rss = f"{r.peak_rss_kib / 1024:.1f}" if r.peak_rss_kib else "-"
        issues = "; ".join(problems(r)) or "none"
        rows.append(
            f"| {r.server} | {r.app} | {rps} | {ratio} | {r.latency_avg or '-'} "
            f"| {r.latency_p99 or '-'} | {rss} | {issues} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load (default: 10)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up load, 0 for none")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (default: 50)")
    parser.add_argument("--app", default="hello", help=f"comma-separated, of {', '.join(APPS)}")
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated subset")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this path")
    args = parser.parse_args(argv)
    apps = args.app.split(",")
    servers = args.servers.split(",")
    for name, known in (*((a, APPS) for a in apps), *((s, SERVERS) for s in servers)):
        if name not in known:
            parser.error(f"unknown {name!r}; choose from {', '.join(known)}")
    if not shutil.which("wrk"):
        parser.error("wrk not found on PATH (apt-get install wrk)")

    started = datetime.datetime.now(datetime.timezone.utc)
    results = []
    with tempfile.TemporaryDirectory(prefix="sansio-bench-") as tmp:
        workdir = Path(tmp)
        script = workdir / "post.lua"
        script.write_text(WRK_POST)
        for app in apps:
            for server in servers:
                print(f"{app} / {server} ...", file=sys.stderr, flush=True)
                result = bench_one(server, app, args, workdir, script)
                results.append(result)
                for issue in problems(result):
                    print(f"  {issue}", file=sys.stderr, flush=True)

    info = versions()
    print(f"Run {started:%Y-%m-%d %H:%M} UTC on {machine()}")
    print(", ".join(f"{k} {v}" for k, v in info.items()))
    print(
        f"wrk -t1 -c{args.connections} -d{args.duration}s (after {args.warmup} s warm-up); "
        f"server pinned to CPU 0, wrk to CPU 1: {bool(pinned(0, []))}"
    )
    print()
    print(table(results))
    if args.json:
        payload = {
            "started": started.isoformat(),
            "machine": machine(),
            "versions": info,
            "settings": {k: str(v) for k, v in vars(args).items()},
            "results": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
