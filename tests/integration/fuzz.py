"""Live fuzzing: mutated HTTP/1.1 requests and WebSocket frames from concurrent clients against a
real server process.

Theory of operation
-------------------
``run()`` starts ``python -m sansio_asgi tests.integration.fuzz_app:app --port 0`` with one
driver, its output going to a log file, and reads the port from the "running on" line. Then
``clients`` threads, each with its own ``random.Random`` seeded from ``seed``, open connection
after connection to 127.0.0.1 until the deadline. Each connection plays one *scenario*:

* ``control``: valid requests, pipelined and split at random, whose answers are checked byte for
  byte; the same for a WebSocket session (``ws_control``). They must keep working under load.
* ``http``: one request built from odd parts (methods, absolute-form targets, versions,
  Connection/Upgrade/Expect/Transfer-Encoding/Content-Length variants, chunked bodies with
  mutated sizes, extensions and trailers, header values up to 64 KiB), then mutated byte by
  byte (bit flips, inserted CR/LF/NUL/SP/":"/",", duplicated lines, cuts, truncation).
* ``pipeline``: a burst of such requests, valid and mutated, in one stream.
* ``expect``: ``Expect: 100-continue``, then a body that may not match what was announced.
* ``stream``: a streamed response that the client reads part of, then resets, closes, half-closes
  or stops reading.
* ``ws``: a WebSocket handshake (sometimes mutated, sometimes offering permessage-deflate), then
  mutated frames: bad opcodes, RSV bits, unmasked frames, huge declared lengths, non-minimal
  lengths, long or fragmented control frames, fragments interleaved with pings, thousands of
  tiny fragments, ping floods while not reading, invalid UTF-8, close frames with bad codes,
  compressed data that is garbage or a bomb, bit flips.
* ``raw``: garbage, the HTTP/2 preface, a TLS ClientHello, or a connection that says nothing.

Bytes go out whole, in random pieces, or a few bytes per write (``TCP_NODELAY`` is on). A
connection ends with a close, an RST (``SO_LINGER`` 0), or a half-close that reads to the end.
Every socket call has a timeout and every loop a count and a deadline, so a run ends by itself
whatever the server does.

The checks (``Report.failures``) are about the server, never about how it answered a mutated
request: (a) its log has no traceback and no driver error apart from the app's own
``DeliberateFuzzError``; (b) its RSS once the clients have left stays below the RSS at start
plus ``rss_margin_bytes`` (sampled every second; the peak is reported); (c) a fresh ``GET /``
gets a 200 within 5 s and a WebSocket echo works; (d) SIGTERM stops it with exit status 0 within
10 s. Also: every control exchange was answered correctly; once the clients have gone, the
server closes their sockets and the app calls end (its open descriptors and the app's
``/stats``), and it does not keep a CPU busy.

By hand, ``python -m tests.integration.fuzz --driver selectors --minutes 10 --seed 1``. When a
check fails, the connections that were open around the first bad log record, and every failed
control exchange, are written out (``findings.txt`` beside the log) as the bytes sent, for
reproducing by hand. ``--server-command`` fuzzes another server (or a deliberately broken one):
``--server-command "{python} tests/naive_server.py {app} {port}"``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import itertools
import json
import os
import re
import select
import shlex
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

REPO = Path(__file__).resolve().parents[2]
APP = "tests.integration.fuzz_app:app"
DEFAULT_COMMAND = "{python} -m sansio_asgi {app} --port 0 --driver {driver} --no-use-colors"
DRIVERS = ("asyncio", "selectors")

STARTUP_TIMEOUT_S = 20.0
CONNECT_TIMEOUT_S = 5.0
# A send() that cannot finish in this long means the server stopped reading, which is its
# right (backpressure, a rejected request): the connection counts as broken.
SEND_TIMEOUT_S = 2.0
# Control exchanges are valid requests: under load they must still be answered, and these
# margins are for a busy two-core machine.
CONTROL_IDLE_S = 10.0
CONTROL_DEADLINE_S = 20.0
# No connection lives longer than this, so the threads stop soon after the deadline.
SCENARIO_DEADLINE_S = 8.0
CONTROL_LIFETIME_S = 2 * CONTROL_DEADLINE_S + 5.0
MAX_READ_BYTES = 4 * 1024 * 1024
# Bytes of each connection kept for findings.txt, and connections kept per client.
TRANSCRIPT_BYTES = 32 * 1024
TRANSCRIPTS_KEPT = 128
# Checks at the end of a run.
ALIVE_TIMEOUT_S = 5.0
DRAIN_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
IDLE_WINDOW_S = 1.0
IDLE_CPU_LIMIT = 0.5  # of one core, while no client is connected
# Kinds of bad log record whose suspects are kept, and how far back a suspect may have ended.
MAX_SIGNATURES = 10
SUSPECT_S = 3.0
RSS_MARGIN_BYTES = 64 * 1024 * 1024

STREAM_CHUNK = b"s" * 1023 + b"\n"  # as fuzz_app sends it
DELIBERATE = "tests.integration.fuzz_app.DeliberateFuzzError: deliberate failure of the fuzz app"
RUNNING_ON = re.compile(rb"running on http://127\.0\.0\.1:(\d+)")
LEVEL = re.compile(r"^(TRACE|DEBUG|INFO|WARNING|ERROR|CRITICAL):")
# asyncio's own messages, printed without a level when logging leaves its logger alone.
ASYNCIO_MESSAGE = re.compile(
    r"^(Fatal error|Fatal write error|Fatal read error|Exception in callback|Unhandled exception"
    r"|Task exception was never retrieved|Future exception was never retrieved|Task was destroyed)"
)
# Log text that is a server failure wherever it appears, whatever the level.
BAD_LOG_TEXT = (
    "Traceback",
    "Error in the selectors driver",
    "Exception in callback",
    "Fatal error",
    "exception was never retrieved",
    "Unhandled exception",
    "Fatal write error",
    "Fatal read error",
)
STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: [^\r\n]*)?")
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3

CR, LF, CRLF = b"\r", b"\n", b"\r\n"


# ---------------------------------------------------------------------- options and report


@dataclass
class Options:
    driver: str = "asyncio"
    seconds: float = 20.0
    seed: int = 1
    clients: int = 8
    workdir: Path | None = None
    # A command template: {python}, {app}, {driver}; with {port} the fuzzer picks the port and
    # waits until it accepts, for servers that print no "running on" line.
    command: str = DEFAULT_COMMAND
    rss_margin_bytes: int = RSS_MARGIN_BYTES


@dataclass
class Report:
    options: Options
    stats: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    fuzz_seconds: float = 0.0
    total_seconds: float = 0.0
    rss_start: int = 0
    rss_peak: int = 0
    rss_end: int = 0
    exit_status: int | None = None
    log_path: Path | None = None
    findings_path: Path | None = None
    warnings: Counter[str] = field(default_factory=Counter)
    deliberate_errors: int = 0
    rss_samples: list[int] = field(default_factory=list)
    server_cpu_seconds: float = 0.0

    def summary(self) -> str:
        s = self.stats
        seconds = self.fuzz_seconds or 1.0
        statuses = sorted((k[7:], v) for k, v in s.items() if k.startswith("status:"))
        closes = sorted((k[9:], v) for k, v in s.items() if k.startswith("ws_close:"))
        scenarios = sorted((k[9:], v) for k, v in s.items() if k.startswith("scenario:"))
        mib = 1024 * 1024
        lines = [
            f"live fuzz, driver {self.options.driver}, seed {self.options.seed}, "
            f"{self.options.clients} clients: {self.fuzz_seconds:.1f} s of fuzzing, "
            f"{self.total_seconds:.1f} s in all",
            f"  connections {s['connections']}, requests sent {s['requests']} "
            f"({s['requests'] / seconds:.0f}/s), responses parsed {s['responses']}, "
            f"bytes sent {s['bytes_sent']}, received {s['bytes_received']}",
            "  responses by status: " + ", ".join(f"{k} x{v}" for k, v in statuses),
            f"  websocket: sessions {s['ws_sessions']}, accepted {s['ws_accepted']}, "
            f"frames sent {s['ws_frames_sent']}, frames received {s['ws_frames_received']}",
            "  close codes received: " + ", ".join(f"{k} x{v}" for k, v in closes),
            "  scenarios (count, client seconds): "
            + ", ".join(f"{k} x{v} {s['ms:' + k] / 1000:.0f}s" for k, v in scenarios),
            f"  control exchanges ok {s['control_ok']}, failed {s['control_failed']}; "
            f"endings: rst {s['end:rst']}, close {s['end:close']}, half-close {s['end:half']}; "
            f"read timeouts {s['read_timeouts']}, send failures {s['send_failures']}, "
            f"unparsed responses {s['unparsed']}",
            f"  server log: deliberate app errors {self.deliberate_errors}, warnings "
            + ", ".join(f"{k!r} x{v}" for k, v in self.warnings.most_common(8)),
            f"  RSS: start {self.rss_start / mib:.1f} MiB, peak {self.rss_peak / mib:.1f} MiB, "
            f"end {self.rss_end / mib:.1f} MiB; server CPU {self.server_cpu_seconds:.1f} s; "
            f"exit status {self.exit_status}",
            "  RSS every 5 s (MiB): "
            + " ".join(f"{rss / mib:.0f}" for rss in self.rss_samples[::5]),
            f"  log: {self.log_path}",
        ]
        if self.findings_path is not None:
            lines.append(f"  findings: {self.findings_path}")
        if self.failures:
            lines.append("FAILED:")
            lines.extend(f"  - {failure}" for failure in self.failures)
        else:
            lines.append("all checks passed")
        return "\n".join(lines)


# ---------------------------------------------------------------------- the server process


class ServerProcess:
    """The server under test, its log in a file (a pipe could fill up and stall it)."""

    def __init__(self, options: Options, log_path: Path) -> None:
        self.log_path = log_path
        self.port = 0
        fields = {"python": sys.executable, "app": APP, "driver": options.driver, "port": "0"}
        chosen_port = "{port}" in options.command
        if chosen_port:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
            fields["port"] = str(self.port)
        args = [part.format(**fields) for part in shlex.split(options.command)]
        # glibc raises its mmap threshold after a large block is freed, and later large
        # buffers (an inflated WebSocket message) then come from the heap, where fragmentation
        # keeps them in the RSS after they are freed. A fixed threshold returns freed large
        # buffers, so the RSS after the run measures what the server still holds.
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "MALLOC_MMAP_THRESHOLD_": "131072"}
        # The app is imported from the checkout, also by a server started as a script.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env
            )
        self.pid = self.process.pid
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self.port or chosen_port:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited at startup: {self.log_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the server did not start: {self.log_text()[-2000:]}")
            if chosen_port:
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", self.port), timeout=1.0),
                ):
                    break
            else:
                match = RUNNING_ON.search(log_path.read_bytes())
                if match:
                    self.port = int(match.group(1))
                    break
            time.sleep(0.02)  # polling the log file for the line, under the deadline above

    def log_text(self) -> str:
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def rss_bytes(self) -> int:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def cpu_seconds(self) -> float:
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{self.pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return 0.0

    def open_sockets(self) -> int:
        """How many sockets the process holds (the listener and wake-up pairs included)."""
        count = 0
        with contextlib.suppress(OSError):
            for name in os.listdir(f"/proc/{self.pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{self.pid}/fd/{name}").startswith("socket:"):
                        count += 1
        return count

    def stop(self, timeout_s: float) -> int | None:
        """SIGTERM; the exit status, or None if it had to be killed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class Sampler(threading.Thread):
    """Samples the server's RSS every second and reads its log as it grows. When a kind of bad
    record appears for the first time, it keeps the connections open in the seconds before:
    the suspects, for findings.txt and ``--replay``."""

    def __init__(self, server: ServerProcess) -> None:
        super().__init__(name="fuzz-sampler", daemon=True)
        self.server = server
        self.clients: list[Client] = []
        self.stopped = threading.Event()
        self.peak = 0
        self.samples: list[int] = []
        self.suspects: dict[str, tuple[float, list[Transcript]]] = {}
        self._offset = 0
        self._pending = b""

    def run(self) -> None:
        for tick in itertools.count(1):
            if self.stopped.wait(0.25):
                break
            self.read_log()
            if tick % 4 == 0:
                self.sample()

    def sample(self) -> None:
        rss = self.server.rss_bytes()
        self.peak = max(self.peak, rss)
        self.samples.append(rss)

    def read_log(self) -> None:
        """Notes when the first bad record appears; the last record waits for its next lines."""
        with open(self.server.log_path, "rb") as log:
            log.seek(self._offset)
            data = log.read()
        self._offset += len(data)
        text = (self._pending + data).decode("utf-8", "replace")
        lines = text.splitlines(keepends=True)
        starts = (
            i for i, line in enumerate(lines) if LEVEL.match(line) or ASYNCIO_MESSAGE.match(line)
        )
        last_start = max(starts, default=0)
        self._pending = "".join(lines[last_start:]).encode()
        for record in split_records("".join(lines[:last_start])):
            key = signature(record)
            if classify(record)[0] != "bad" or key in self.suspects:
                continue
            if len(self.suspects) < MAX_SIGNATURES:
                now = time.monotonic()
                suspects = [
                    transcript
                    for client in self.clients
                    for transcript in client.transcripts.copy()
                    if transcript.started <= now and (transcript.ended or now) >= now - SUSPECT_S
                ]
                self.suspects[key] = (now, suspects)


def signature(record: list[str]) -> str:
    """What tells one kind of bad record from another: its last line (a traceback's exception),
    without addresses and numbers that vary."""
    return re.sub(r"0x[0-9a-f]+|\d+\.\d+\.\d+\.\d+:\d+|fd=\d+", "*", record[-1])[:200]


def split_records(text: str) -> list[list[str]]:
    """Log lines grouped into records: a level prefix or an asyncio message starts one, anything
    else (a traceback) continues it."""
    records: list[list[str]] = []
    for line in text.splitlines():
        if LEVEL.match(line) or ASYNCIO_MESSAGE.match(line) or not records:
            records.append([line])
        else:
            records[-1].append(line)
    return records


def classify(record: list[str]) -> tuple[str, str]:
    """("deliberate" | "bad" | "warning" | "ok", a short key)."""
    first = record[0]
    if (
        first.startswith("ERROR:")
        and first.endswith("Exception in ASGI application")
        and record[-1] == DELIBERATE
        and sum("Traceback" in line for line in record) == 1
    ):
        return "deliberate", ""
    text = "\n".join(record)
    if any(bad in text for bad in BAD_LOG_TEXT) or first.startswith(("ERROR:", "CRITICAL:")):
        return "bad", first
    if not LEVEL.match(first):
        return "bad", first  # printed outside logging: a bare print or a crash
    if first.startswith("WARNING:"):
        key = re.sub(r"\d+\.\d+\.\d+\.\d+:\d+", "ADDR", first[9:].strip())
        return "warning", key[:70]
    return "ok", ""


# ---------------------------------------------------------------------- one connection


class Transcript:
    """What one connection sent, for findings.txt."""

    __slots__ = ("client", "ended", "kept", "number", "scenario", "started", "steps")

    def __init__(self, client: int, number: int, scenario: str) -> None:
        self.client = client
        self.number = number
        self.scenario = scenario
        self.started = time.monotonic()
        self.ended = 0.0
        self.kept = 0
        self.steps: list[tuple[float, str, bytes]] = []

    def add(self, action: str, data: bytes = b"") -> None:
        if self.kept + len(data) > TRANSCRIPT_BYTES:
            data = data[: max(0, TRANSCRIPT_BYTES - self.kept)]
            action += " (cut here)"
        self.kept += len(data)
        self.steps.append((time.monotonic() - self.started, action, data))

    def to_json(self, signature: str) -> dict[str, object]:
        return {
            "signature": signature,
            "title": f"client {self.client}, connection {self.number} ({self.scenario})",
            "text": self.render(self.started),
            "steps": [
                [at, action, base64.b64encode(data).decode()] for at, action, data in self.steps
            ],
        }

    def render(self, run_started: float) -> str:
        lines = [
            f"# client {self.client}, connection {self.number}, scenario {self.scenario}, "
            f"{self.started - run_started:.3f} s into the run, "
            f"{(self.ended or time.monotonic()) - self.started:.3f} s long"
        ]
        for at, action, data in self.steps:
            lines.append(f"{at:8.3f} {action} {data!r}" if data else f"{at:8.3f} {action}")
        return "\n".join(lines)


class Conn:
    """A non-blocking client socket: every call is bounded by a timeout and by the connection's
    deadline, and sending reads whatever arrives meanwhile (a server may stop reading until its
    answers are read). Errors mark it broken or ended; they never raise."""

    def __init__(
        self, port: int, transcript: Transcript, stats: Counter[str], lifetime_s: float
    ) -> None:
        self.transcript = transcript
        self.stats = stats
        self.deadline = time.monotonic() + lifetime_s
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.inbox = bytearray()
        self.eof = False
        self.broken = False
        self.closed = False
        stats["connections"] += 1

    def send(
        self, data: bytes, pieces: list[bytes] | None = None, stall_s: float = SEND_TIMEOUT_S
    ) -> bool:
        """Send ``pieces`` (or ``data`` whole); False once the server stops taking bytes."""
        for piece in pieces if pieces is not None else [data]:
            if self.broken or self.closed:
                return False
            self.transcript.add("send", piece)
            view = memoryview(piece)
            while view:
                remaining = self.deadline - time.monotonic()
                readable = [self.sock] if self._can_read() else []
                ready = select.select(readable, [self.sock], [], max(0, min(stall_s, remaining)))
                if not ready[0] and not ready[1]:
                    self._broke("send stalled")
                    return False
                if ready[0]:
                    self._recv_once()
                if ready[1]:
                    try:
                        sent = self.sock.send(view)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:  # a reset or EPIPE: the server has gone
                        self._broke("send failed")
                        return False
                    self.stats["bytes_sent"] += sent
                    view = view[sent:]
        return not self.broken

    def _broke(self, why: str) -> None:
        self.broken = True
        self.stats["send_failures"] += 1
        self.transcript.add(why)

    def _can_read(self) -> bool:
        return not self.eof and len(self.inbox) < MAX_READ_BYTES

    def _recv_once(self) -> None:
        try:
            data = self.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # a reset: as good as an end of stream here
            data = b""
        if not data:
            self.eof = True
            self.transcript.add(f"eof after {len(self.inbox)} bytes received")
            return
        self.inbox += data
        self.stats["bytes_received"] += len(data)

    def read(
        self, idle_s: float, deadline_s: float, until: Callable[[], bool] | None = None
    ) -> bool:
        """Read until ``until()`` holds (True), or EOF, an idle timeout or the deadline."""
        deadline = min(self.deadline, time.monotonic() + deadline_s)
        while not self.closed and self._can_read():
            if until is not None and until():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if not select.select([self.sock], [], [], min(idle_s, remaining))[0]:
                self.stats["read_timeouts"] += 1
                break
            self._recv_once()
        return until is not None and until()

    def rst(self) -> None:
        """Close with an RST: SO_LINGER on with a zero timeout."""
        if self.closed:
            return
        self.transcript.add("rst")
        self.stats["end:rst"] += 1
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def half_close(self, deadline_s: float = 2.0) -> None:
        """Shut down the write side, then read until the server closes or the deadline."""
        if self.closed:
            return
        self.transcript.add("half-close")
        self.stats["end:half"] += 1
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)
        self.read(0.3, deadline_s)
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transcript.ended = time.monotonic()
            self.sock.close()

    def end(self, rng: Random) -> None:
        """End one of the three ways, at random."""
        roll = rng.random()
        if roll < 0.25:
            self.rst()
        elif roll < 0.5:
            self.half_close()
        elif not self.closed:
            self.transcript.add("close")
            self.stats["end:close"] += 1
            self.close()


def split_for_sending(rng: Random, data: bytes) -> list[bytes]:
    """Whole, in random pieces, or the first bytes in tiny writes (at most ~1000 writes)."""
    roll = rng.random()
    if roll < 0.4 or len(data) < 2:
        return [data]
    if roll < 0.7:
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 12))))
        return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    pieces = []
    pos = 0
    limit = min(len(data), rng.choice([64, 512, 2048]))
    while pos < limit:
        step = rng.randint(1, 8)
        pieces.append(data[pos : pos + step])
        pos += step
    if pos < len(data):
        pieces.append(data[pos:])
    return pieces


# ---------------------------------------------------------------------- HTTP responses


@dataclass
class Response:
    status: int
    headers: dict[bytes, list[bytes]]
    body: bytes


def parse_responses(
    data: bytes, eof: bool, head_requests: list[bool] | None = None
) -> tuple[list[Response], str | None, bytes | None]:
    """Responses in ``data``: (complete ones, a parse error, the bytes after a 101 or None).

    ``head_requests[i]`` says the i-th final response answers a HEAD (no body)."""
    responses: list[Response] = []
    finals = 0
    pos = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            return responses, ("incomplete head" if eof else None), None
        lines = data[pos:end].split(b"\r\n")
        if not STATUS_LINE.fullmatch(lines[0]):
            return responses, f"bad status line {lines[0][:80]!r}", None
        status = int(lines[0][9:12])
        headers: dict[bytes, list[bytes]] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip():
                return responses, f"bad header line {line[:80]!r}", None
            headers.setdefault(name.lower(), []).append(value.strip())
        pos = end + 4
        if 100 <= status < 200:
            responses.append(Response(status, headers, b""))
            if status == 101:
                return responses, None, data[pos:]
            continue
        no_body = (
            head_requests is not None and finals < len(head_requests) and head_requests[finals]
        )
        finals += 1
        if no_body or status in (204, 304):
            responses.append(Response(status, headers, b""))
            continue
        if b"chunked" in b",".join(headers.get(b"transfer-encoding", [])).lower():
            body, used, error = dechunk(data, pos)
            if error is not None or body is None:
                return responses, error if error else ("incomplete body" if eof else None), None
            pos = used
        elif b"content-length" in headers:
            try:
                length = int(headers[b"content-length"][0])
            except ValueError:
                return responses, "bad content-length", None
            if len(data) - pos < length:
                return responses, ("incomplete body" if eof else None), None
            body = data[pos : pos + length]
            pos += length
        else:  # delimited by the close
            if not eof:
                return responses, None, None
            body = data[pos:]
            pos = len(data)
        responses.append(Response(status, headers, body))
    return responses, None, None


def dechunk(data: bytes, pos: int) -> tuple[bytes | None, int, str | None]:
    """(body or None when incomplete, the position after it, an error)."""
    out = []
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return None, pos, None
        size_text = data[pos:end].split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return None, pos, f"bad chunk size {size_text[:40]!r}"
        pos = end + 2
        if size == 0:
            while True:  # trailers, then the empty line
                end = data.find(b"\r\n", pos)
                if end < 0:
                    return None, pos, None
                line = data[pos:end]
                pos = end + 2
                if not line:
                    return b"".join(out), pos, None
        if len(data) < pos + size + 2:
            return None, pos, None
        out.append(data[pos : pos + size])
        if data[pos + size : pos + size + 2] != CRLF:
            return None, pos, "chunk not followed by CRLF"
        pos += size + 2


# ---------------------------------------------------------------------- HTTP requests


METHODS = [b"GET"] * 6 + [b"POST"] * 5 + [b"PUT", b"HEAD", b"OPTIONS", b"DELETE", b"PATCH"]
ODD_METHODS = [b"CONNECT", b"TRACE", b"get", b"G ET", b"", b"PRI", b"\xffGET", b"X" * 300]
VERSIONS = [b"HTTP/1.1"] * 12 + [b"HTTP/1.0"] * 4
ODD_VERSIONS = [
    b"HTTP/0.9", b"HTTP/1.2", b"HTTP/2.0", b"HTTP/3.0", b"HTTP/1.10", b"http/1.1", b"HTTP/1",
    b"HTTP/11", b"", b"HTTP/1.1 ", b"HTTP/9.9", b"HTTP/1.01",
]  # fmt: skip
CONNECTION = [
    b"keep-alive", b"close", b"Upgrade", b"upgrade, close", b"keep-alive, Upgrade",
    b"close, close", b"", b"TE", b"foo, bar", b"Keep-Alive", b"CLOSE", b"upgrade,keep-alive",
]  # fmt: skip
UPGRADE = [b"websocket", b"h2c", b"WebSocket", b"websocket, h2c", b"TLS/1.0", b"", b"ws"]
EXPECT = [b"100-continue", b"100-Continue", b"200-ok", b"", b"100-continue, foo"]
TRANSFER_ENCODING = [
    b"chunked", b"Chunked", b" chunked ", b"gzip, chunked", b"chunked, gzip", b"identity",
    b"chunked, chunked", b"x", b"\tchunked", b"chunked;q=1", b"",
]  # fmt: skip
SPECIAL_BYTES = [CR, LF, b"\0", b" ", b":", b",", b"\t", CRLF, b"\x7f", b"\xff", b";", b"\x0b"]


def request_target(rng: Random, port: int) -> bytes:
    roll = rng.random()
    if roll < 0.55:
        return rng.choice(
            [b"/", b"/echo", b"/echo/%d" % rng.randrange(1000), b"/ignore-body", b"/stats"]
        ) + rng.choice([b"", b"?a=1", b"?q=%d&x" % rng.randrange(100)])
    if roll < 0.65:
        return rng.choice([b"/raise", b"/raise-late", b"/stream?%d" % rng.randrange(20)])
    return rng.choice(
        [
            b"http://127.0.0.1:%d/echo" % port,
            b"http://example.com/echo?x=1",
            b"https://127.0.0.1/echo",
            b"http://[::1]:80/x",
            b"http:/x",
            b"//echo//double",
            b"*",
            b"/%00",
            b"/%zz%",
            b"/?" + b"a" * rng.choice([100, 4000, 17000]),
            "/é".encode(),
            b"/\xff\xfe",
            b"/a b",
            b"",
            b"echo",
            b"/a#frag",
            b"/..%2f..%2fetc/passwd",
            b"/" + b"x" * rng.choice([1000, 8000, 17000]),
            b"/ws",
        ]
    )


def content_length_value(rng: Random, length: int) -> bytes:
    roll = rng.random()
    if roll < 0.6:
        return b"%d" % length
    return rng.choice(
        [
            b"%d" % (length + 1),
            b"%d" % max(0, length - 1),
            b"-1",
            b"+%d" % length,
            b"0x10",
            b"1e3",
            b"%d, %d" % (length, length),
            b"%d,%d" % (length, length + 1),
            b" %d " % length,
            b"99999999999999999999999",
            b"",
            b"0%d" % length,
        ]
    )


def chunked_body(rng: Random, payload: bytes, mutate: bool) -> bytes:
    """``payload`` as chunks; with ``mutate``, sizes, extensions and trailers go odd."""
    out = []
    pos = 0
    while pos < len(payload):
        size = min(len(payload) - pos, rng.choice([1, 7, 100, 1000, 8192, 70000]))
        piece = payload[pos : pos + size]
        pos += size
        size_text = b"%x" % size
        extension = b""
        if mutate and rng.random() < 0.3:
            size_text = rng.choice(
                [
                    size_text.upper(),
                    b"0" * rng.randint(1, 30) + size_text,
                    b"0x" + size_text,
                    b" " + size_text,
                    size_text + b" ",
                    b"-" + size_text,
                    b"f" * rng.randint(9, 40),
                    b"%x" % (size + rng.choice([-1, 1, 2])),
                    b"",
                    b"g",
                ]
            )
        if mutate and rng.random() < 0.2:
            extension = rng.choice(
                [b";a=b", b";a", b';a="q;r"', b";" * 100, b"; a = b", b";a=\rb", b";" + b"e" * 9000]
            )
        out.append(size_text + extension + CRLF + piece + CRLF)
    last = b"0"
    if mutate and rng.random() < 0.2:
        last = rng.choice([b"0;end", b"00000", b"0 ", b"000000000000000000000"])
    trailers = b""
    if rng.random() < 0.2:
        trailers = rng.choice([b"X-Trailer: 1\r\n", b"X-T: 1\r\nX-U: 2\r\n"])
        if mutate:
            trailers = rng.choice(
                [
                    trailers,
                    b"Content-Length: 5\r\n",
                    b"bad trailer\r\n",
                    b"X-Big: " + b"t" * 20000 + CRLF,
                    b" folded\r\n",
                ]
            )
    ending = CRLF if not mutate or rng.random() < 0.9 else rng.choice([b"", LF, b"\r\n\r\n"])
    return b"".join(out) + last + CRLF + trailers + ending


def fuzz_request(rng: Random, port: int) -> tuple[bytes, bool]:
    """A request built from odd parts, then mutated byte by byte: (bytes, is HEAD)."""
    method = rng.choice(METHODS) if rng.random() < 0.93 else rng.choice(ODD_METHODS)
    version = rng.choice(VERSIONS) if rng.random() < 0.9 else rng.choice(ODD_VERSIONS)
    line = method + b" " + request_target(rng, port) + (b" " + version if version else b"")
    headers: list[bytes] = []
    if rng.random() < 0.9:
        headers.append(b"Host: 127.0.0.1:%d" % port)
    if rng.random() < 0.05:
        headers.append(b"Host: other.example")
    for name, values, chance in (
        (b"Connection", CONNECTION, 0.3),
        (b"Upgrade", UPGRADE, 0.1),
        (b"Expect", EXPECT, 0.08),
    ):
        if rng.random() < chance:
            headers.append(name + b": " + rng.choice(values))
    if rng.random() < 0.3:
        headers.append(b"User-Agent: fuzz/%d" % rng.randrange(100))
    if rng.random() < 0.1:
        headers.append(b"X-Forwarded-For: " + rng.choice([b"1.2.3.4", b"::1, 10.0.0.1", b"junk"]))
    if rng.random() < 0.08:  # a large head: 431 past 16 KiB
        size = rng.choice([1000, 8192, 16 * 1024 - 64, 16 * 1024, 17 * 1024, 32 * 1024, 64 * 1024])
        headers.append(b"X-Big: " + b"v" * size)
    if rng.random() < 0.03:
        headers.extend(b"X-Many-%d: %d" % (i, i) for i in range(rng.choice([100, 300, 1000])))
    if rng.random() < 0.05:
        headers.append(
            rng.choice(
                [
                    b" folded continuation",
                    b"no colon",
                    b": empty name",
                    b"Bad Name: x",
                    b"X-Ctl: a\x01b",
                    b"X-Hi: \xe9\xff",
                ]
            )
        )

    body = rng.randbytes(rng.choice([0, 0, 5, 100, 1000, 20000, 70000, 300000]))
    framing = rng.random()
    if framing < 0.45:
        if body or rng.random() < 0.3:
            headers.append(b"Content-Length: " + content_length_value(rng, len(body)))
    elif framing < 0.75:
        for _ in range(1 if rng.random() < 0.9 else 2):
            headers.append(b"Transfer-Encoding: " + rng.choice(TRANSFER_ENCODING))
        if rng.random() < 0.1:  # both: a request-smuggling classic
            headers.append(b"Content-Length: %d" % rng.randrange(50))
        body = chunked_body(rng, body, mutate=rng.random() < 0.6)
    elif framing < 0.8:
        body = rng.randbytes(rng.choice([1_200_000, 1_600_000]))  # past the discard limit
        headers.append(b"Content-Length: %d" % len(body))
    else:
        body = b"" if rng.random() < 0.7 else body  # a body without framing: the next request
    rng.shuffle(headers)
    if headers and rng.random() < 0.1:  # a duplicated header line
        headers.append(rng.choice(headers))
    data = line + CRLF + b"".join(h + CRLF for h in headers) + CRLF + body
    for _ in range(rng.choice([0, 0, 1, 1, 1, 2, 3])):
        data = mutate_bytes(rng, data)
    return data, method == b"HEAD"


def mutate_bytes(rng: Random, data: bytes) -> bytes:
    """One byte-level mutation, mostly in the head."""
    if not data:
        return rng.choice(SPECIAL_BYTES)
    head_end = data.find(b"\r\n\r\n")
    span = head_end + 4 if head_end >= 0 and rng.random() < 0.85 else len(data)
    pos = rng.randrange(span)
    kind = rng.randrange(8)
    if kind == 0:  # a bit flip
        return data[:pos] + bytes([data[pos] ^ (1 << rng.randrange(8))]) + data[pos + 1 :]
    if kind <= 2:  # an inserted special byte
        return data[:pos] + rng.choice(SPECIAL_BYTES) * rng.choice([1, 1, 2, 50]) + data[pos:]
    if kind == 3:  # a duplicated line
        start = data.rfind(LF, 0, pos) + 1
        end = data.find(LF, pos)
        end = len(data) if end < 0 else end + 1
        return data[:end] + data[start:end] + data[end:]
    if kind == 4:  # a deleted range
        return data[:pos] + data[pos + rng.randint(1, 16) :]
    if kind == 5:  # truncated
        return data[:pos]
    if kind == 6:  # bare LF line endings in the head
        return data[:span].replace(CRLF, LF) + data[span:]
    return data[:pos] + data[pos : pos + rng.randint(1, 40)] * rng.randint(2, 5) + data[pos:]


@dataclass
class Expected:
    """A valid request and the response fuzz_app must give it."""

    data: bytes
    head: bool
    body: bytes
    close: bool


def control_request(rng: Random, port: int, close: bool) -> Expected:
    method = rng.choice([b"GET", b"POST", b"POST", b"PUT", b"HEAD"])
    kind = rng.random()
    path = rng.choice([b"/", b"/echo", b"/echo/%d" % rng.randrange(1000), b"/a%20b"])
    stream = method == b"GET" and kind < 0.2
    headers = [b"Host: 127.0.0.1:%d" % port]
    if close:
        headers.append(b"Connection: close")
    body = b""
    if stream:
        chunks = rng.randrange(9)
        path = b"/stream?%d" % chunks
        expected = STREAM_CHUNK * chunks
    else:
        if method in (b"POST", b"PUT"):
            body = rng.randbytes(rng.choice([0, 10, 1000, 30000, 70000]))
            if rng.random() < 0.5:
                headers.append(b"Content-Length: %d" % len(body))
                wire_body = body
            else:
                headers.append(b"Transfer-Encoding: chunked")
                wire_body = chunked_body(rng, body, mutate=False)
        else:
            wire_body = b""
        app_path = path.replace(b"%20", b" ")
        expected = b"%s %s\n" % (method, app_path) + body
    if stream:
        wire_body = b""
    head = b"%s %s HTTP/1.1\r\n" % (method, path) + b"".join(h + CRLF for h in headers) + CRLF
    return Expected(head + wire_body, method == b"HEAD", expected, close)


# ---------------------------------------------------------------------- WebSocket


def mask_payload(key: bytes, payload: bytes) -> bytes:
    n = len(payload)
    if not n:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def ws_frame(
    rng: Random,
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    length: int | None = None,
    length_form: int | None = None,
) -> bytes:
    """One frame; ``length`` and ``length_form`` (7, 16, 64) can lie about the payload."""
    n = len(payload) if length is None else length
    form = length_form or (7 if n < 126 else 16 if n < 65536 else 64)
    mask_bit = 0x80 if masked else 0
    out = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    if form == 7:
        out += bytes([mask_bit | (n & 0x7F)])
    elif form == 16:
        out += bytes([mask_bit | 126]) + (n & 0xFFFF).to_bytes(2, "big")
    else:
        out += bytes([mask_bit | 127]) + n.to_bytes(8, "big")
    if masked:
        key = rng.randbytes(4)
        return out + key + mask_payload(key, payload)
    return out + payload


@dataclass
class Frame:
    fin: bool
    rsv1: bool
    opcode: int
    payload: bytes


def parse_frames(data: bytearray) -> tuple[list[Frame], int, str | None]:
    """Server frames at the start of ``data``: (frames, bytes used, an error)."""
    frames = []
    pos = 0
    while len(data) - pos >= 2:
        b0, b1 = data[pos], data[pos + 1]
        if b1 & 0x80:
            return frames, pos, "a masked frame from the server"
        n = b1 & 0x7F
        start = pos + 2
        if n == 126:
            if len(data) - start < 2:
                break
            n = int.from_bytes(data[start : start + 2], "big")
            start += 2
        elif n == 127:
            if len(data) - start < 8:
                break
            n = int.from_bytes(data[start : start + 8], "big")
            start += 8
        if len(data) - start < n:
            break
        frames.append(
            Frame(bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0F, bytes(data[start : start + n]))
        )
        pos = start + n
    return frames, pos, None


def count_frames(data: bytes) -> int:
    """How many frames ``data`` holds, as far as their headers can be followed."""
    count = 0
    pos = 0
    while len(data) - pos >= 2:
        n = data[pos + 1] & 0x7F
        start = pos + 2
        if n >= 126:
            size = 2 if n == 126 else 8
            n = int.from_bytes(data[start : start + size], "big")
            start += size
        start += 4 if data[pos + 1] & 0x80 else 0
        count += 1
        pos = start + n
    return count


@dataclass
class Deflate:
    """permessage-deflate as negotiated (RFC 7692)."""

    client_bits: int = 15
    client_no_takeover: bool = False
    server_no_takeover: bool = False
    compressor: object = None
    decompressor: object = None

    def compress(self, data: bytes) -> bytes:
        if self.compressor is None or self.client_no_takeover:
            self.compressor = zlib.compressobj(6, zlib.DEFLATED, -self.client_bits)
        c = self.compressor
        out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)  # type: ignore[attr-defined]
        return out[:-4] if out.endswith(b"\x00\x00\xff\xff") else out

    def decompress(self, data: bytes) -> bytes:
        if self.decompressor is None or self.server_no_takeover:
            self.decompressor = zlib.decompressobj(-15)
        return self.decompressor.decompress(data + b"\x00\x00\xff\xff")  # type: ignore[attr-defined]


def negotiated_deflate(response: Response) -> Deflate | None:
    offers = b",".join(response.headers.get(b"sec-websocket-extensions", []))
    if b"permessage-deflate" not in offers:
        return None
    deflate = Deflate()
    for param in offers.split(b";")[1:]:
        name, _, value = param.strip().partition(b"=")
        if name == b"client_max_window_bits" and value:
            deflate.client_bits = max(9, int(value.strip(b'"')))
        elif name == b"client_no_context_takeover":
            deflate.client_no_takeover = True
        elif name == b"server_no_context_takeover":
            deflate.server_no_takeover = True
    return deflate


def handshake_request(
    rng: Random, port: int, path: bytes, key: bytes, deflate: bool, subprotocols: bool
) -> bytes:
    headers = [
        b"Host: 127.0.0.1:%d" % port,
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Key: " + key,
        b"Sec-WebSocket-Version: 13",
    ]
    if deflate:
        headers.append(
            b"Sec-WebSocket-Extensions: "
            + rng.choice(
                [
                    b"permessage-deflate; client_max_window_bits",
                    b"permessage-deflate",
                    b"permessage-deflate; client_no_context_takeover; server_no_context_takeover",
                    b"permessage-deflate; server_max_window_bits=10; client_max_window_bits=12",
                ]
            )
        )
    if subprotocols:
        headers.append(b"Sec-WebSocket-Protocol: chat, superchat")
    return b"GET %s HTTP/1.1\r\n" % path + b"".join(h + CRLF for h in headers) + CRLF


def accept_value(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + WS_GUID).digest())


ODD_EXTENSION_OFFERS = [
    b"permessage-deflate; client_max_window_bits=x",
    b"permessage-deflate; server_max_window_bits=16",
    b"permessage-deflate; server_max_window_bits=7",
    b"permessage-deflate; server_max_window_bits",
    b"permessage-deflate; client_max_window_bits=8=9",
    b"permessage-deflate; server_no_context_takeover=1",
    b"permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    b"permessage-deflate, permessage-deflate; client_max_window_bits",
    b"permessage-deflate;;",
    b"x-webkit-deflate-frame",
    b";",
    b"",
]
CLOSE_CODES = [0, 1, 999, 1000, 1001, 1004, 1005, 1006, 1012, 1015, 1016, 2999, 3000, 4999, 5000]
BAD_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"ok\xe2\x82", b"\x80"]


# ---------------------------------------------------------------------- one client


class Client(threading.Thread):
    """One fuzzing client: connection after connection until the deadline."""

    def __init__(self, number: int, port: int, seed: int, deadline: float) -> None:
        super().__init__(name=f"fuzz-client-{number}", daemon=True)
        self.number = number
        self.port = port
        self.rng = Random(seed * 1000 + number)
        self.deadline = deadline
        self.stats: Counter[str] = Counter()
        self.transcripts: deque[Transcript] = deque(maxlen=TRANSCRIPTS_KEPT)
        self.control_failures: list[tuple[str, Transcript]] = []
        self.errors: list[str] = []
        self.connections = 0
        self._bombs: dict[int, bytes] = {}

    def run(self) -> None:
        scenarios: list[tuple[Callable[[Conn], None], int]] = [
            (self.control, 12),
            (self.http, 30),
            (self.pipeline, 10),
            (self.expect, 5),
            (self.stream, 8),
            (self.ws_control, 6),
            (self.ws, 22),
            (self.raw, 4),
        ]
        functions = [f for f, _ in scenarios]
        weights = [w for _, w in scenarios]
        for _ in range(10_000_000):
            if time.monotonic() >= self.deadline:
                break
            scenario = self.rng.choices(functions, weights)[0]
            name = scenario.__name__
            self.connections += 1
            transcript = Transcript(self.number, self.connections, name)
            self.transcripts.append(transcript)
            self.stats["scenario:" + name] += 1
            if name.endswith("control"):
                lifetime = CONTROL_LIFETIME_S
            else:  # fuzzing stops at the deadline, give or take a second
                lifetime = min(SCENARIO_DEADLINE_S, self.deadline - time.monotonic() + 1.0)
            try:
                conn = Conn(self.port, transcript, self.stats, lifetime)
            except OSError as exc:
                self.stats["connect_failures"] += 1
                self.fail_control(f"connect failed: {exc}", transcript)
                continue
            try:
                scenario(conn)
            except Exception:
                self.errors.append(f"{name}: {traceback.format_exc()}")
            finally:
                conn.close()
                self.stats["ms:" + name] += int((time.monotonic() - transcript.started) * 1000)

    def fail_control(self, reason: str, transcript: Transcript) -> None:
        self.stats["control_failed"] += 1
        if len(self.control_failures) < 20:
            self.control_failures.append((reason, transcript))

    # -- HTTP scenarios

    def control(self, conn: Conn) -> None:
        rng = self.rng
        count = rng.randint(1, 5)
        expected = [control_request(rng, self.port, close=i == count - 1 and rng.random() < 0.3)
                    for i in range(count)]  # fmt: skip
        data = b"".join(e.data for e in expected)
        self.stats["requests"] += count
        if not conn.send(data, split_for_sending(rng, data), stall_s=CONTROL_IDLE_S):
            self.fail_control("the server stopped reading valid requests", conn.transcript)
            return
        heads = [e.head for e in expected]
        parsed: list[Response] = []
        error: str | None = None

        def answered() -> bool:
            nonlocal parsed, error
            parsed, error, _ = parse_responses(bytes(conn.inbox), conn.eof, heads)
            return len(parsed) >= count or error is not None

        conn.read(CONTROL_IDLE_S, CONTROL_DEADLINE_S, answered)
        answered()
        self.count_responses(parsed)
        if error is not None or len(parsed) != count:
            self.fail_control(
                f"{len(parsed)} of {count} responses to valid requests ({error or 'timeout'})",
                conn.transcript,
            )
            return
        for i, (want, got) in enumerate(zip(expected, parsed, strict=True)):
            length = got.headers.get(b"content-length", [b"-"])[0]
            if got.status != 200 or (
                got.body != want.body if not want.head else length != b"%d" % len(want.body)
            ):
                self.fail_control(
                    f"response {i}: status {got.status}, body {got.body[:80]!r}, expected "
                    f"{want.body[:80]!r}",
                    conn.transcript,
                )
                return
        if expected[-1].close:
            conn.read(CONTROL_IDLE_S, CONTROL_DEADLINE_S)
            if not conn.eof:
                self.fail_control("no close after Connection: close", conn.transcript)
                return
        self.stats["control_ok"] += 1
        conn.end(rng)

    def count_responses(self, responses: list[Response]) -> None:
        for response in responses:
            self.stats["responses"] += 1
            self.stats[f"status:{response.status}"] += 1

    def read_and_count(self, conn: Conn, sent: int, heads: list[bool] | None = None) -> None:
        rng = self.rng
        parsed: list[Response] = []
        error: str | None = None

        def answered() -> bool:
            nonlocal parsed, error
            parsed, error, _ = parse_responses(bytes(conn.inbox), conn.eof, heads)
            return len(parsed) >= sent or error is not None

        conn.read(rng.uniform(0.02, 0.3), rng.uniform(0.3, 2.0), answered)
        answered()
        self.count_responses(parsed)
        if error is not None:
            self.stats["unparsed"] += 1

    def http(self, conn: Conn) -> None:
        rng = self.rng
        data, head = fuzz_request(rng, self.port)
        self.stats["requests"] += 1
        if rng.random() < 0.08:  # an RST part way through the request
            conn.send(data[: rng.randrange(len(data) + 1)])
            conn.rst()
            return
        conn.send(data, split_for_sending(rng, data))
        self.read_and_count(conn, 1, [head])
        conn.end(rng)

    def pipeline(self, conn: Conn) -> None:
        rng = self.rng
        parts = []
        heads = []
        for _ in range(rng.randint(2, 30)):
            if rng.random() < 0.5:
                request = control_request(rng, self.port, close=False)
                parts.append(request.data)
                heads.append(request.head)
            else:
                data, head = fuzz_request(rng, self.port)
                parts.append(data)
                heads.append(head)
        data = b"".join(parts)
        self.stats["requests"] += len(parts)
        conn.send(data, split_for_sending(rng, data))
        self.read_and_count(conn, len(parts), heads)
        conn.end(rng)

    def expect(self, conn: Conn) -> None:
        rng = self.rng
        body = rng.randbytes(rng.choice([0, 10, 5000, 100000]))
        announced = len(body) if rng.random() < 0.7 else rng.choice([0, len(body) + 10, 3])
        path = rng.choice([b"/echo", b"/ignore-body", b"/raise", b"/stream?2"])
        head = (
            b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nExpect: %s\r\nContent-Length: %d\r\n\r\n"
            % (path, self.port, rng.choice(EXPECT), announced)
        )
        if rng.random() < 0.3:
            head = mutate_bytes(rng, head)
        self.stats["requests"] += 1
        conn.send(head, split_for_sending(rng, head))
        conn.read(rng.uniform(0.05, 0.5), 2.0, lambda: b"\r\n\r\n" in conn.inbox)
        if rng.random() < 0.8:
            conn.send(body, split_for_sending(rng, body))
        self.read_and_count(conn, 2)
        conn.end(rng)

    def stream(self, conn: Conn) -> None:
        rng = self.rng
        chunks = rng.choice([64, 1024, 10000, -1, -1])
        request = b"GET /stream?%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (chunks, self.port)
        self.stats["requests"] += 1
        conn.send(request)
        want = rng.choice([0, 100, 5000, 100_000, 1_000_000])
        conn.read(1.0, 3.0, lambda: len(conn.inbox) >= want)
        roll = rng.random()
        if roll < 0.2:  # stop reading a while: the server's writes must wait, not pile up
            conn.transcript.add("stop reading")
            time.sleep(rng.uniform(0.2, 1.0))  # the fuzz action itself: hold the socket unread
            conn.rst()
        elif roll < 0.5:
            conn.rst()
        elif roll < 0.7:
            conn.half_close(deadline_s=1.0)
            conn.rst()
        else:
            conn.transcript.add("close with unread data")
            conn.stats["end:close"] += 1
            conn.close()

    def raw(self, conn: Conn) -> None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.3:
            data = rng.randbytes(rng.randint(1, 4096))
        elif roll < 0.5:
            data = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + rng.randbytes(rng.randint(0, 100))
        elif roll < 0.65:  # the start of a TLS ClientHello
            data = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + rng.randbytes(200)
        elif roll < 0.8:
            data = b"\r\n" * rng.randint(1, 2000) + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        else:
            data = b""
        if data:
            self.stats["requests"] += 1
            conn.send(data, split_for_sending(rng, data))
            self.read_and_count(conn, 1)
        conn.end(rng)

    # -- WebSocket scenarios

    def handshake(
        self, conn: Conn, path: bytes, mutate: bool, idle_s: float
    ) -> tuple[Response | None, Deflate | None]:
        """The upgrade request; (the 101 response or None, the negotiated deflate)."""
        rng = self.rng
        key = base64.b64encode(rng.randbytes(16))
        offer_deflate = rng.random() < 0.5
        data = handshake_request(rng, self.port, path, key, offer_deflate, rng.random() < 0.2)
        if mutate:
            data = rng.choice(
                [
                    data.replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8"),
                    data.replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 13, 8"),
                    data.replace(key, base64.b64encode(rng.randbytes(rng.choice([0, 8, 20])))),
                    data.replace(b"Connection: Upgrade", b"Connection: keep-alive"),
                    data.replace(b"GET", b"POST"),
                    data.replace(b"HTTP/1.1", b"HTTP/1.0"),
                    data.replace(b"Upgrade: websocket", b"Upgrade: websocket\r\nUpgrade: h2c"),
                    data.replace(b"permessage-deflate", b"permessage-deflate; bogus=1"),
                    data.replace(b"client_max_window_bits", b"client_max_window_bits=7"),
                    data.replace(
                        b"Sec-WebSocket-Version: 13",
                        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: "
                        + rng.choice(ODD_EXTENSION_OFFERS),
                    ),
                    mutate_bytes(rng, data),
                    mutate_bytes(rng, mutate_bytes(rng, data)),
                ]
            )
        self.stats["ws_sessions"] += 1
        self.stats["requests"] += 1
        if not conn.send(data, split_for_sending(rng, data)):
            return None, None
        parsed: list[Response] = []
        rest: bytes | None = None

        def answered() -> bool:
            nonlocal parsed, rest
            parsed, error, rest = parse_responses(bytes(conn.inbox), conn.eof)
            return bool(parsed) or error is not None

        conn.read(idle_s, idle_s + 1.0, answered)
        answered()
        self.count_responses(parsed[:1])
        if not parsed or parsed[0].status != 101 or rest is None:
            return None, None
        response = parsed[0]
        if response.headers.get(b"sec-websocket-accept") != [accept_value(key)]:
            return None, None
        del conn.inbox[: len(conn.inbox) - len(rest)]
        self.stats["ws_accepted"] += 1
        return response, negotiated_deflate(response)

    def ws_read(
        self, conn: Conn, idle_s: float, deadline_s: float, message: bool = False
    ) -> list[Frame]:
        """Read until a close frame (or with ``message``, a message's last frame) arrives, or
        EOF, an idle timeout or the deadline; the frames received, close codes counted."""
        frames: list[Frame] = []

        def take() -> bool:
            got, used, error = parse_frames(conn.inbox)
            del conn.inbox[:used]
            frames.extend(got)
            if error is not None:
                self.stats["unparsed"] += 1
                conn.inbox.clear()
            return any(f.opcode == 8 or (message and f.fin and f.opcode < 3) for f in frames)

        conn.read(idle_s, deadline_s, take)
        take()
        for frame in frames:
            self.stats["ws_frames_received"] += 1
            if frame.opcode == 8:
                code = int.from_bytes(frame.payload[:2], "big") if len(frame.payload) >= 2 else 1005
                self.stats[f"ws_close:{code}"] += 1
        return frames

    def ws_control(self, conn: Conn) -> None:
        """A valid session: every message must come back as it was sent."""
        rng = self.rng
        response, deflate = self.handshake(conn, b"/ws", mutate=False, idle_s=CONTROL_IDLE_S)
        if response is None:
            self.fail_control("no 101 for a valid WebSocket handshake", conn.transcript)
            return
        pending: list[Frame] = []
        for _ in range(rng.randint(1, 5)):
            text = rng.random() < 0.5
            if text:
                message = "".join(rng.choice("aé€𝄞 \n") for _ in range(rng.choice([0, 5, 3000])))
                payload = message.encode()
            else:
                payload = rng.randbytes(rng.choice([0, 1, 125, 126, 70000]))
            data = self.ws_message(payload, 1 if text else 2, deflate, fragments=rng.randint(1, 4))
            self.stats["ws_frames_sent"] += count_frames(data)
            conn.send(data, split_for_sending(rng, data), stall_s=CONTROL_IDLE_S)
            got = self.ws_collect_message(conn, pending, deflate)
            if got != (1 if text else 2, payload):
                self.fail_control(
                    f"WebSocket echo: sent {payload[:60]!r}, got {got!r:.200}", conn.transcript
                )
                return
        conn.send(ws_frame(rng, 8, struct.pack("!H", 1000)))
        frames = self.ws_read(conn, CONTROL_IDLE_S, CONTROL_DEADLINE_S)
        if not any(f.opcode == 8 for f in pending + frames):
            self.fail_control("no close frame in answer to a close", conn.transcript)
            return
        self.stats["control_ok"] += 1
        conn.end(rng)

    def ws_message(
        self, payload: bytes, opcode: int, deflate: Deflate | None, fragments: int
    ) -> bytes:
        """A valid message, maybe compressed, in fragments with pings between them."""
        rng = self.rng
        rsv = 0
        if deflate is not None and rng.random() < 0.7:
            payload = deflate.compress(payload)
            rsv = 4
        size = max(1, len(payload) // fragments + 1)
        pieces = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
        out = []
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            out.append(ws_frame(rng, opcode if i == 0 else 0, piece, fin=last,
                                rsv=rsv if i == 0 else 0))  # fmt: skip
            if not last and rng.random() < 0.5:
                out.append(ws_frame(rng, 9, rng.randbytes(rng.randint(0, 125))))
        return b"".join(out)

    def ws_collect_message(
        self, conn: Conn, pending: list[Frame], deflate: Deflate | None
    ) -> tuple[int, bytes] | None:
        """The next data message from the server (pongs skipped), or None."""
        deadline = time.monotonic() + CONTROL_DEADLINE_S
        parts: list[Frame] = []
        while time.monotonic() < deadline:
            while pending:
                frame = pending.pop(0)
                if frame.opcode in (9, 10):
                    continue
                if frame.opcode == 8:
                    return None
                parts.append(frame)
                if frame.fin:
                    payload = b"".join(f.payload for f in parts)
                    if parts[0].rsv1:
                        if deflate is None:
                            return None
                        payload = deflate.decompress(payload)
                    return parts[0].opcode, payload
            if conn.eof:
                return None
            pending.extend(self.ws_read(conn, CONTROL_IDLE_S, CONTROL_DEADLINE_S, message=True))
        return None

    def ws(self, conn: Conn) -> None:
        """A session of mutated frames."""
        rng = self.rng
        path = rng.choice([b"/ws"] * 8 + [b"/ws/raise", b"/other"])
        response, deflate = self.handshake(conn, path, mutate=rng.random() < 0.15, idle_s=1.0)
        if response is None:
            conn.end(rng)
            return
        for _ in range(rng.randint(1, 12)):
            data = self.ws_fuzz_op(deflate)
            self.stats["ws_frames_sent"] += count_frames(data)
            if not conn.send(data, split_for_sending(rng, data)):
                break
            if rng.random() < 0.6:
                frames = self.ws_read(conn, rng.uniform(0.02, 0.3), 1.0)
                if conn.eof or any(f.opcode == 8 for f in frames):
                    break
        if rng.random() < 0.4 and not conn.broken:
            conn.send(ws_frame(rng, 8, struct.pack("!H", 1000) + b"bye"))
            self.ws_read(conn, 0.5, 2.0)
        conn.end(rng)

    def ws_fuzz_op(self, deflate: Deflate | None) -> bytes:
        rng = self.rng
        op = rng.randrange(22)
        text = "".join(rng.choice("abc é€\n") for _ in range(rng.randint(0, 200))).encode()
        self.stats[f"ws_op:{op}"] += 1
        if op <= 2:  # a valid message
            return self.ws_message(text, rng.choice([1, 2]), deflate, rng.randint(1, 5))
        if op == 3:
            return ws_frame(rng, rng.choice([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]), text)
        if op == 4:
            return ws_frame(rng, rng.choice([0, 1, 2, 8, 9, 10]), text[:100], rsv=rng.randint(1, 7))
        if op == 5:
            return ws_frame(rng, rng.choice([1, 2, 9]), text[:100], masked=False)
        if op == 6:  # a declared length far past what follows
            length = rng.choice([2**63 - 1, 2**62, 2**32, 16 * 1024 * 1024 + 1, 1 << 20])
            return ws_frame(rng, 2, text, length=length, length_form=64)[: 14 + len(text)]
        if op == 7:  # a length in a longer form than needed
            return ws_frame(rng, rng.choice([1, 2]), text[:100], length_form=rng.choice([16, 64]))
        if op == 8:  # a control frame that is too long, or fragmented
            if rng.random() < 0.5:
                return ws_frame(rng, 9, rng.randbytes(rng.randint(126, 1000)))
            return ws_frame(rng, rng.choice([8, 9, 10]), b"x", fin=False)
        if op == 9:  # a continuation with nothing to continue
            return ws_frame(rng, 0, text, fin=rng.random() < 0.5)
        if op == 10:  # a new message inside an unfinished one
            return ws_frame(rng, 1, b"a", fin=False) + ws_frame(
                rng, 2, b"b", fin=rng.random() < 0.5
            )
        if op == 11:  # invalid UTF-8, whole or split across fragments
            bad = text[:20] + rng.choice(BAD_UTF8) + text[:20]
            if rng.random() < 0.5:
                return ws_frame(rng, 1, bad)
            cut = rng.randrange(len(bad) + 1)
            return ws_frame(rng, 1, bad[:cut], fin=False) + ws_frame(rng, 0, bad[cut:])
        if op == 12:  # valid UTF-8 split inside a character
            good = "€𝄞".encode() * 3
            return ws_frame(rng, 1, good[:5], fin=False) + ws_frame(rng, 0, good[5:])
        if op == 13:  # a close frame with an odd code, reason or size
            code = struct.pack("!H", rng.choice(CLOSE_CODES))
            payload = rng.choice(
                [b"\x03", code, code + b"\xff\xfe", code + b"r" * 124, code + b"ok"]
            )
            return ws_frame(rng, 8, payload)
        if op == 14:  # a ping flood, sent without reading the pongs
            ping = ws_frame(rng, 9, rng.randbytes(125))
            count = rng.choice([100, 1000, 3000])
            return ping * count
        if op == 15:
            return ws_frame(rng, 10, rng.randbytes(rng.randint(0, 125)))
        if op == 16:  # many tiny fragments
            count = rng.choice([100, 1000, 10000])
            frames = [ws_frame(rng, 2, b"x", fin=False)]
            frames.extend(
                ws_frame(rng, 0, rng.choice([b"", b"y"]), fin=False) for _ in range(count)
            )
            frames.append(ws_frame(rng, 0, b"z", fin=rng.random() < 0.9))
            return b"".join(frames)
        if op == 17:  # compressed garbage, or RSV1 where it is never allowed
            if rng.random() < 0.5:
                return ws_frame(rng, 2, rng.randbytes(rng.randint(1, 300)), rsv=4)
            return ws_frame(rng, rng.choice([0, 9]), b"z", rsv=4)
        if op == 18:  # a deflate bomb: a little on the wire, many MiB inflated
            size = rng.choice([1, 8, 17, 32]) * 1024 * 1024
            bomb = self._bombs.get(size)
            if bomb is None:
                compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
                bomb = compressor.compress(bytes(size)) + compressor.flush(zlib.Z_SYNC_FLUSH)
                bomb = self._bombs.setdefault(size, bomb[:-4])
            return ws_frame(rng, 2, bomb, rsv=4)
        if op == 19:  # a bit flipped in a valid frame
            frame = bytearray(ws_frame(rng, rng.choice([1, 2, 9]), text[:100]))
            frame[rng.randrange(len(frame))] ^= 1 << rng.randrange(8)
            return bytes(frame)
        if op == 20:
            return rng.randbytes(rng.randint(1, 64))
        return self.ws_message(rng.randbytes(rng.choice([70000, 1_000_000])), 2, deflate, 3)


# ---------------------------------------------------------------------- one run


def run(options: Options) -> Report:
    """Start the server, fuzz it until the deadline, check it; the report says what failed."""
    started = time.monotonic()
    report = Report(options)
    if options.workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix=f"sansio-fuzz-{options.driver}-"))
    else:
        workdir = options.workdir
        workdir.mkdir(parents=True, exist_ok=True)
    report.log_path = workdir / "server.log"
    server = ServerProcess(options, report.log_path)
    sampler = Sampler(server)
    clients: list[Client] = []
    try:
        sockets_at_start = server.open_sockets()  # before any connection
        try:
            warm_up = http_get(server.port, b"/")
        except OSError as exc:
            warm_up = f"{type(exc).__name__}: {exc}"  # type: ignore[assignment]
        if warm_up != 200:
            report.failures.append(f"the server did not answer GET / before the run: {warm_up}")
        report.rss_start = server.rss_bytes()
        sampler.sample()
        sampler.start()
        cpu_at_start = server.cpu_seconds()
        fuzz_started = time.monotonic()
        deadline = fuzz_started + options.seconds
        clients = [Client(i, server.port, options.seed, deadline) for i in range(options.clients)]
        sampler.clients = clients
        for client in clients:
            client.start()
        for client in clients:
            client.join(max(0.0, deadline - time.monotonic()) + SCENARIO_DEADLINE_S + 60)
        report.fuzz_seconds = time.monotonic() - fuzz_started
        report.server_cpu_seconds = server.cpu_seconds() - cpu_at_start
        stuck = [c.name for c in clients if c.is_alive()]
        if stuck:
            report.failures.append(f"fuzz clients still running long after the deadline: {stuck}")
        for client in clients:
            report.stats.update(client.stats)
            report.failures.extend(
                f"fuzzer error in client {client.number}: {e}" for e in client.errors[:3]
            )
        check_run(server, report, sockets_at_start, sampler)
    finally:
        sampler.stopped.set()
        if sampler.is_alive():
            sampler.join()
        report.exit_status = server.stop(STOP_TIMEOUT_S)
    if report.exit_status != 0:
        report.failures.append(
            f"(d) SIGTERM: exit status {report.exit_status} (None: still running after "
            f"{STOP_TIMEOUT_S:.0f} s, killed)"
        )
    check_log(server, report)
    sampler.read_log()  # the last records, for their suspects
    if report.failures:
        report.findings_path = write_findings(workdir, report, clients, sampler, started)
    report.total_seconds = time.monotonic() - started
    return report


def check_run(
    server: ServerProcess, report: Report, sockets_at_start: int, sampler: Sampler
) -> None:
    """(c) alive, then the drain, (b) memory and the idle CPU, once the clients have left."""
    failures = report.failures
    s = report.stats
    if s["control_failed"]:
        failures.append(f"{s['control_failed']} control exchanges (valid requests) failed")
    began = time.monotonic()
    try:
        status = http_get(server.port, b"/", timeout_s=ALIVE_TIMEOUT_S)
    except OSError as exc:
        status = f"no answer ({exc})"  # type: ignore[assignment]
    if status != 200 or time.monotonic() - began > ALIVE_TIMEOUT_S:
        failures.append(f"(c) GET / after the run: {status}, {time.monotonic() - began:.1f} s")
    echo = websocket_echo(server.port, b"still alive")
    if echo is not True:
        failures.append(f"(c) WebSocket echo after the run: {echo}")

    # The clients have closed every socket: the server must close its ends and end the app
    # calls (the endless stream among them) by itself.
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    running: bytes | str = b""
    sockets = 0
    while time.monotonic() < deadline:
        sockets = server.open_sockets()
        try:
            running = http_body(server.port, b"/stats")
        except OSError as exc:
            running = str(exc)
        if running == b"1" and sockets <= sockets_at_start:
            break
        time.sleep(0.1)  # polling, under the deadline above
    else:
        failures.append(
            f"not drained {DRAIN_TIMEOUT_S:.0f} s after the clients left: app calls running "
            f"{running!r} (1 is the one asking), server sockets {sockets} "
            f"(at start {sockets_at_start})"
        )
    cpu_before = server.cpu_seconds()
    time.sleep(IDLE_WINDOW_S)  # a measurement window, not a wait for a condition
    idle_cpu = (server.cpu_seconds() - cpu_before) / IDLE_WINDOW_S
    if idle_cpu > IDLE_CPU_LIMIT:
        failures.append(f"the idle server keeps {idle_cpu:.0%} of a CPU busy (a spin)")
    sampler.sample()
    report.rss_end = server.rss_bytes()
    report.rss_peak = max(sampler.peak, report.rss_end)
    report.rss_samples = sampler.samples
    limit = report.rss_start + report.options.rss_margin_bytes
    if report.rss_end > limit:
        mib = 1024 * 1024
        failures.append(
            f"(b) RSS {report.rss_end / mib:.1f} MiB after the run, above the bound "
            f"{limit / mib:.1f} MiB (start + {report.options.rss_margin_bytes / mib:.0f} MiB)"
        )


def check_log(server: ServerProcess, report: Report) -> None:
    """(a): no traceback or driver error apart from the app's deliberate ones."""
    bad: dict[str, list[list[str]]] = {}
    for record in split_records(server.log_text()):
        kind, key = classify(record)
        if kind == "deliberate":
            report.deliberate_errors += 1
        elif kind == "warning":
            report.warnings[key] += 1
        elif kind == "bad":
            # Grouped by the record's last line: the exception, for a traceback.
            bad.setdefault(signature(record), []).append(record)
    for records in bad.values():
        first = "\n".join(records[0])
        if len(first) > 4000:
            first = first[:4000] + "..."
        report.failures.append(f"(a) {len(records)} such record(s) in the server log:\n{first}")


def write_findings(
    workdir: Path, report: Report, clients: list[Client], sampler: Sampler, started: float
) -> Path:
    """findings.txt: the suspects of each kind of bad log record and every failed control
    exchange; findings.json: the same, for ``--replay``."""
    parts = [report.summary()]
    saved: list[dict[str, object]] = []
    for key, (seen, suspects) in sampler.suspects.items():
        parts.append(
            f"\n## {len(suspects)} connections open in the {SUSPECT_S:.0f} s before {key!r} "
            f"first appeared in the log ({seen - started:.1f} s into the run)"
        )
        parts.extend(transcript.render(started) for transcript in suspects)
        saved.extend(transcript.to_json(key) for transcript in suspects)
    for client in clients:
        for reason, transcript in client.control_failures:
            parts.append(f"\n## control failure: {reason}\n{transcript.render(started)}")
            saved.append(transcript.to_json(f"control failure: {reason}"))
    (workdir / "findings.json").write_text(json.dumps(saved))
    path = workdir / "findings.txt"
    path.write_text("\n\n".join(parts) + "\n")
    return path


def replay(options: Options, findings: Path) -> int:
    """Replay each suspect from findings.json, one at a time, against a fresh server; print the
    ones after which a bad record of the kind they are suspected of appears in the log."""
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="sansio-fuzz-replay-"))
    workdir.mkdir(parents=True, exist_ok=True)
    suspects = json.loads(findings.read_text())
    server = ServerProcess(options, workdir / "server.log")
    reproduced: dict[str, list[str]] = {}
    seen_records = 0
    try:
        for item in suspects:
            key = item["signature"]
            if len(reproduced.get(key, [])) >= 3:
                continue
            replay_transcript(server.port, item["steps"])
            # The app calls have ended once /stats says only itself runs: their errors, if
            # any, are in the log by then.
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError):
                    if http_body(server.port, b"/stats") == b"1":
                        break
                time.sleep(0.05)  # polling, under the deadline above
            records = split_records(server.log_text())
            new = [signature(r) for r in records[seen_records:] if classify(r)[0] == "bad"]
            seen_records = len(records)
            if new:
                for found in new:
                    reproduced.setdefault(found, []).append(item["title"])
                print(f"{item['title']}\n  -> {sorted(set(new))}\n{item['text']}\n")
    finally:
        server.stop(STOP_TIMEOUT_S)
    print(f"replayed {len(suspects)} connections; log: {server.log_path}")
    for key, titles in reproduced.items():
        print(f"{key!r}: reproduced by {len(titles)} connection(s) alone: {titles}")
    return 0 if not reproduced else 1


def replay_transcript(port: int, steps: list[list[object]]) -> None:
    """Send what a transcript sent, ending it the same way, at the same pace."""
    transcript = Transcript(0, 0, "replay")
    stats: Counter[str] = Counter()
    try:
        conn = Conn(port, transcript, stats, SCENARIO_DEADLINE_S)
    except OSError:
        return
    started = time.monotonic()
    try:
        for at, action, data in steps:
            delay = float(at) - (time.monotonic() - started)  # type: ignore[arg-type]
            if delay > 0:
                time.sleep(min(delay, 1.0))  # the pace of the original connection
            action = str(action)
            if action.startswith("send") and data:
                conn.send(base64.b64decode(str(data)), stall_s=SEND_TIMEOUT_S)
            elif action == "rst":
                conn.rst()
            elif action == "half-close":
                conn.half_close()
            elif action.startswith("close"):
                conn.close()
        if not conn.closed:
            conn.read(0.2, 1.0)
    finally:
        conn.close()


# ---------------------------------------------------------------------- plain clients


@contextlib.contextmanager
def connection(port: int, timeout_s: float) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    try:
        yield sock
    finally:
        sock.close()


def http_exchange(port: int, target: bytes, timeout_s: float) -> Response | None:
    deadline = time.monotonic() + timeout_s
    with connection(port, timeout_s) as sock:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % target)
        data = b""
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            data += chunk
            responses, error, _ = parse_responses(data, not chunk)
            if responses or error or not chunk:
                return responses[0] if responses else None
    return None


def http_get(port: int, target: bytes, timeout_s: float = ALIVE_TIMEOUT_S) -> int | None:
    response = http_exchange(port, target, timeout_s)
    return None if response is None else response.status


def http_body(port: int, target: bytes) -> bytes:
    response = http_exchange(port, target, ALIVE_TIMEOUT_S)
    return b"" if response is None else response.body


def websocket_echo(port: int, message: bytes) -> bool | str:
    """A handshake, one text message and its echo, a close: True, or what went wrong."""
    rng = Random(0)
    key = base64.b64encode(rng.randbytes(16))
    deadline = time.monotonic() + ALIVE_TIMEOUT_S
    try:
        with connection(port, ALIVE_TIMEOUT_S) as sock:
            sock.sendall(handshake_request(rng, port, b"/ws", key, False, False))
            data = bytearray()
            frames: list[Frame] = []
            upgraded = False
            while time.monotonic() < deadline and not frames:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    return f"closed after {bytes(data)[:200]!r}"
                data += chunk
                if not upgraded:
                    responses, error, rest = parse_responses(bytes(data), False)
                    if error or (responses and rest is None):
                        return f"no 101: {bytes(data)[:200]!r}"
                    if rest is None:
                        continue
                    if responses[0].headers.get(b"sec-websocket-accept") != [accept_value(key)]:
                        return "a wrong Sec-WebSocket-Accept"
                    upgraded = True
                    data = bytearray(rest)
                    sock.sendall(ws_frame(rng, 1, message))
                frames, _, _ = parse_frames(data)
            sock.sendall(ws_frame(rng, 8, struct.pack("!H", 1000)))
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    if not frames or frames[0].opcode != 1 or frames[0].payload != message:
        return f"no echo: {frames[:1]!r}"
    return True


# ---------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.integration.fuzz", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--driver", choices=DRIVERS, default="asyncio")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, help="how long to fuzz (default 20 s)")
    length.add_argument("--seconds", type=float, help="how long to fuzz")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workdir", type=Path, help="where the log and findings go (a temp dir)")
    parser.add_argument(
        "--server-command",
        default=DEFAULT_COMMAND,
        help="a command template with {python} {app} {driver} (and {port})",
    )
    parser.add_argument(
        "--replay",
        type=Path,
        metavar="FINDINGS_JSON",
        help="replay a run's suspects one by one and say which reproduce a bad log record",
    )
    parser.add_argument("--rss-margin-mib", type=int, default=RSS_MARGIN_BYTES // (1024 * 1024))
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else 20.0
    if args.minutes is not None:
        seconds = args.minutes * 60
    options = Options(
        driver=args.driver,
        seconds=seconds,
        seed=args.seed,
        clients=args.clients,
        workdir=args.workdir,
        command=args.server_command,
        rss_margin_bytes=args.rss_margin_mib * 1024 * 1024,
    )
    if args.replay is not None:
        return replay(options, args.replay)
    report = run(options)
    print(report.summary())
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
