"""HTTP/2 load for the benchmark: ``h2load`` (nghttp2) over cleartext HTTP/2 with prior knowledge.

Every HTTP/2 server in the comparison serves h2c on its plain TCP port next to HTTP/1.1 (the
connection's first bytes, the HTTP/2 preface, tell them apart), so the harness starts each
server exactly as for HTTP/1.1 and polls it with an HTTP/1.1 GET. The load is a fixed number
of requests: ``h2load -n REQUESTS -c CONNECTIONS -m STREAMS``, that is CONNECTIONS
connections each keeping up to STREAMS requests in flight at once. h2load prints only the
mean and the spread of its request times, so it also writes one line per request to a log
file (``--log-file``: start time, status, duration in microseconds), from which the harness
takes the 99th percentile.

uvicorn and the ceilings do not speak HTTP/2; the ratios of the HTTP/2 cases are to
hypercorn, the pure-Python HTTP/2 server (on h2, as we are).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Protocol

H2_BASELINE = "hypercorn"
H2_APPS = ("hello", "json", "echo", "starlette")  # stream: 1 MiB a request, too slow to count
ECHO_BODY_BYTES = 64 * 1024
TIMEOUT_S = 600.0  # 100,000 requests at 2,000/s take under a minute; a stall is an error


class Sample(Protocol):
    rate_per_s: float | None
    count: int | None
    latency_avg_ms: float | None
    latency_p99_ms: float | None
    non_2xx_3xx: int
    client_errors: list[str]


def ensure_h2load() -> str | None:
    """h2load's path; Debian's nghttp2-client is installed with apt-get when it is missing and
    this process may (root)."""
    if path := shutil.which("h2load"):
        return path
    if shutil.which("apt-get") and os.geteuid() == 0:
        print("h2load not found: apt-get install -y nghttp2-client", file=sys.stderr, flush=True)
        install = ["apt-get", "install", "-y", "-q", "nghttp2-client"]
        if subprocess.run(install, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], check=False)
            subprocess.run(install, check=False)
    return shutil.which("h2load")


def h2load_version() -> str:
    try:
        done = subprocess.run(["h2load", "--version"], capture_output=True, text=True, check=False)
    except OSError:
        return "h2load ?"
    return done.stdout.strip() or "h2load ?"


def h2load(
    argv_prefix: list[str],
    url: str,
    app: str,
    requests: int,
    connections: int,
    streams: int,
    workdir: Path,
    log_file: Path | None = None,
    duration_s: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """One h2load run of ``requests`` requests, or of ``duration_s`` seconds when given
    (``argv_prefix``: the CPU pinning)."""
    count = [f"-D{duration_s}"] if duration_s else [f"-n{requests}"]
    argv = [*argv_prefix, "h2load", *count, f"-c{connections}", f"-m{streams}"]
    if app == "echo":
        body = workdir / "echo-body.bin"
        if not body.exists():
            body.write_bytes(b"x" * ECHO_BODY_BYTES)
        argv += ["-d", str(body), "-H", "content-type: application/octet-stream"]
    if log_file is not None:
        argv.append(f"--log-file={log_file}")
    argv.append(url)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"h2load failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return done


def p99_ms(log_file: Path) -> float | None:
    """The 99th percentile of the request durations in h2load's ``--log-file`` (microseconds,
    the third column)."""
    try:
        lines = log_file.read_text().splitlines()
    except OSError:
        return None
    durations = sorted(int(line.split("\t")[2]) for line in lines if line.count("\t") >= 2)
    if not durations:
        return None
    return durations[min(len(durations) - 1, (len(durations) * 99) // 100)] / 1000.0


def duration_ms(text: str) -> float | None:
    """h2load's durations (``812us``, ``4.48ms``, ``1.20s``) in milliseconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return None
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def parse_h2load(text: str, sample: Sample, requested: int) -> None:
    """Requests/s, counts and failures from h2load's summary::

    finished in 766.45ms, 2609.42 req/s, 115.38KB/s
    requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored, ...
    status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx
    time for request:     4.48ms     28.42ms     15.18ms      2.52ms    91.45%
    """
    if m := re.search(r"finished in \S+, ([\d.]+) req/s", text):
        sample.rate_per_s = float(m.group(1))
    counts = {}
    if m := re.search(r"requests: (.*)", text):
        counts = {k: int(v) for v, k in re.findall(r"(\d+) (\w+)", m.group(1))}
    sample.count = counts.get("succeeded")
    if m := re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text):
        sample.non_2xx_3xx = int(m.group(3)) + int(m.group(4))
    if m := re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", text):
        sample.latency_avg_ms = duration_ms(m.group(1))
    bad = {k: counts.get(k, 0) for k in ("failed", "errored", "timeout")}
    if any(bad.values()) or counts.get("succeeded") != requested:
        found = ", ".join(f"{v} {k}" for k, v in bad.items())
        sample.client_errors.append(f"{counts.get('succeeded')} of {requested} succeeded, {found}")
