"""docs/how-it-works.md stays true to the code it describes.

* Every code name it cites in backticks exists: a dotted name
  (``http11.HTTP11Handler._begin_cycle``, ``ServerProtocol.receive_data``, ``h11.Connection``)
  is found in the source's syntax tree or, for a library, by import; a bare name that looks like
  code (``StartApp``, ``data_to_send()``, ``read_size_bytes``) is defined somewhere in the
  package; a path exists; a ``--flag`` is one the command line takes; an ASGI message type or
  key is in spec/asgi.json. Its links lead to files and headings that exist.
* The app it shows is ``app`` below, the very app its trace blocks come from.
* Each trace block is what the real server prints: the test starts ``python -m sansio_asgi
  tests.tour_app:app --log-level trace``, replays the block's traffic over loopback, and compares
  the lines after normalizing ports and dates. A change to the trace makes this test fail;
  ``python -m tests.test_docs`` rewrites the blocks from a fresh run.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import functools
import importlib
import inspect
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.tour_app import app

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "how-it-works.md"
DEADLINE_S = 15.0


# ---------------------------------------------------------------------- the doc's parts


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


_FENCE = re.compile(r"^```[^\n]*\n.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)


def prose(text: str) -> str:
    """The text without its fenced blocks (code, diagrams, traces)."""
    return _FENCE.sub("", text)


def marked_block(text: str, marker: str) -> tuple[int, int]:
    """Where the body of the fenced block right after ``<!-- marker -->`` starts and ends."""
    match = re.search(
        rf"^<!-- {re.escape(marker)} -->\n```[^\n]*\n(.*?)^```[ \t]*$", text, re.M | re.S
    )
    assert match is not None, f"docs/how-it-works.md has no block marked {marker!r}"
    return match.start(1), match.end(1)


def block_lines(text: str, marker: str) -> list[str]:
    start, end = marked_block(text, marker)
    return text[start:end].splitlines()


# ---------------------------------------------------------------------- code names


class Members(dict[str, "Members"]):
    """The names defined in a module or a class: a class maps to its own members, anything
    else (a function, a constant, an attribute) to an empty ``Members``. Imported names are
    kept apart, in ``imports``, and followed to where they are defined."""

    def __init__(self) -> None:
        super().__init__()
        self.imports: dict[str, tuple[str, str | None]] = {}  # name -> (module, attribute)


def _class_members(node: ast.ClassDef) -> Members:
    members = _members(node.body)
    for item in ast.walk(node):
        # Instance attributes: self.name = ... in any method.
        targets: list[ast.expr] = []
        if isinstance(item, ast.Assign):
            targets = item.targets
        elif isinstance(item, ast.AnnAssign):
            targets = [item.target]
        for target in targets:
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
            ):
                members.setdefault(target.attr, Members())
        # __slots__ = ("a", "b")
        if (
            isinstance(item, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__slots__" for t in item.targets)
            and isinstance(item.value, (ast.Tuple, ast.List))
        ):
            for element in item.value.elts:
                if isinstance(element, ast.Constant) and isinstance(element.value, str):
                    members.setdefault(element.value, Members())
    return members


def _members(body: list[ast.stmt], module: str = "") -> Members:
    members = Members()
    for node in body:
        if isinstance(node, ast.ClassDef):
            members[node.name] = _class_members(node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            members[node.name] = Members()
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        members.setdefault(name.id, Members())
        elif isinstance(node, ast.Import):
            for alias in node.names:
                members.imports[alias.asname or alias.name.split(".")[0]] = (alias.name, None)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node.module, node.level)
            for alias in node.names:
                members.imports[alias.asname or alias.name] = (base, alias.name)
        elif isinstance(node, (ast.If, ast.Try)):
            for block in (node.body, getattr(node, "orelse", []), getattr(node, "finalbody", [])):
                nested = _members(block, module)
                members.update(nested)
                members.imports.update(nested.imports)
    return members


def _absolute(module: str, name: str | None, level: int) -> str:
    """The absolute name of ``from <level dots><name> import ...`` inside ``module``."""
    if level == 0:
        return name or ""
    parts = module.split(".")[:-level] if level else []
    return ".".join([*parts, name] if name else parts)


class CodeIndex:
    """Every module of the package, and what each defines, from the source's syntax trees."""

    def __init__(self, root: Path, packages: tuple[str, ...] = ("sansio_asgi",)) -> None:
        self.modules: dict[str, Members] = {}  # full dotted name -> members
        self.aliases: dict[str, list[str]] = {}  # every dotted suffix -> full names
        self.classes: dict[str, list[Members]] = {}
        self.names: set[str] = set()  # every name defined anywhere, at any depth
        for package in packages:
            for path in sorted((root / package).rglob("*.py")):
                parts = list(path.relative_to(root).with_suffix("").parts)
                if parts[-1] == "__init__":
                    parts.pop()
                module = ".".join(parts)
                tree = ast.parse(path.read_text(encoding="utf-8"))
                is_package = path.name == "__init__.py"
                members = _members(tree.body, module + ".__init__" if is_package else module)
                self.modules[module] = members
                for i in range(len(parts)):
                    self.aliases.setdefault(".".join(parts[i:]), []).append(module)
                self._collect(members)

    def _collect(self, members: Members) -> None:
        for name, child in members.items():
            self.names.add(name)
            if child:
                if name.lstrip("_")[:1].isupper():
                    self.classes.setdefault(name, []).append(child)
                self._collect(child)

    def resolve(self, dotted: str) -> bool:
        """Whether ``dotted`` names something: ``module.attr...``, ``Class.attr...`` (a class
        of the package), or a library's ``module.attr...`` found by import."""
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):
            for module in self.aliases.get(".".join(parts[:i]), []):
                if self._walk(self.modules[module], parts[i:]):
                    return True
        for members in self.classes.get(parts[0], []):
            if self._walk(members, parts[1:]):
                return True
        if parts[0] not in self.aliases:
            return _importable(parts)
        return False

    def _walk(self, members: Members, rest: list[str], depth: int = 0) -> bool:
        if not rest:
            return True
        name, rest = rest[0], rest[1:]
        if name in members:
            child = members[name]
            return self._walk(child, rest) if child else not rest
        if name in members.imports and depth < 8:
            # A name imported here: look where it comes from (``from .protocol import
            # ServerProtocol``, ``from . import validate``, ``import h11``).
            module, attribute = members.imports[name]
            if attribute is None:
                if module in self.modules:
                    return self._walk(self.modules[module], rest, depth + 1)
                return _importable([*module.split("."), *rest])
            if f"{module}.{attribute}" in self.modules:
                return self._walk(self.modules[f"{module}.{attribute}"], rest, depth + 1)
            if module in self.modules:
                return self._walk(self.modules[module], [attribute, *rest], depth + 1)
            return _importable([*module.split("."), attribute, *rest])
        return False


def _importable(parts: list[str]) -> bool:
    """Whether a library's ``module.attr...`` exists, importing the longest module prefix."""
    for i in range(len(parts), 0, -1):
        try:
            value: object = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            if not hasattr(value, name):
                return False
            value = getattr(value, name)
        return True
    return False


@functools.cache
def code_index() -> CodeIndex:
    return CodeIndex(ROOT)


@functools.cache
def cli_options() -> frozenset[str]:
    from sansio_asgi.cli import build_parser

    return frozenset(build_parser()._option_string_actions)


@functools.cache
def asgi_names() -> frozenset[str]:
    """Message types, scope types and the keys of scopes and messages (spec/asgi.json)."""
    from sansio_asgi.core.schema import SPEC

    names = set(SPEC.messages) | set(SPEC.scopes)
    for message in SPEC.messages.values():
        names.update(key.name for key in message.keys)
    for scope in SPEC.scopes.values():
        names.update(key.name for key in scope.keys)
    return frozenset(names)


_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*)\(.*\)")
_PATH = re.compile(r"[\w.-]*/[\w./-]*|[\w-]+\.(?:py|md|json|toml|html|css|js)")
_FILE_DIRS = ("", "sansio_asgi")


def _looks_like_code(name: str) -> bool:
    """A bare name that can only be code: snake_case with an underscore, CamelCase with two
    humps (``StartApp``, ``HTTP11Handler``), or UPPER_CASE with an underscore. Plain words
    (``Host``, ``POST``, ``now``) are not checked."""
    return "_" in name or bool(re.search(r"[a-z0-9][A-Z]|[A-Z]{2,}[a-z]", name))


def diagram_names(text: str) -> list[str]:
    """The words of the Mermaid diagrams' participants, messages and notes that look like code
    (``ServerProtocol._upgrade``, ``check_handshake``, ``StartApp``, ``http.request``)."""
    names: list[str] = []
    for diagram in re.findall(r"^```mermaid\n(.*?)^```", text, re.M | re.S):
        for line in diagram.splitlines()[1:]:
            words = line.split(" as ", 1)[1] if "participant " in line else line.partition(":")[2]
            for word in re.findall(r"[A-Za-z_][\w.]*\w", words):
                if "." in word or _looks_like_code(word):
                    names.append(word)
    return names


def unresolved_names(text: str) -> list[str]:
    """The code names of ``text`` that name nothing: backticked in the prose, or in the
    diagrams."""
    index = code_index()
    missing: list[str] = []
    spans = [match.group(1).strip() for match in _SPAN.finditer(prose(text))]
    for span in spans + diagram_names(text):
        if span.startswith("--"):
            if span.split()[0].split("=")[0] not in cli_options():
                missing.append(span)
            continue
        if " " in span:
            continue  # a header, a command, an example value: not a name
        if _PATH.fullmatch(span):
            if not any((ROOT / base / span).exists() for base in _FILE_DIRS):
                missing.append(span)
            continue
        call = _CALL.fullmatch(span)
        name = call.group(1) if call else span
        if name in asgi_names():
            continue
        if _DOTTED.fullmatch(name):
            if not index.resolve(name):
                missing.append(span)
        elif (
            _IDENTIFIER.fullmatch(name)
            and (call or _looks_like_code(name))
            and name not in index.names
        ):
            missing.append(span)
    return missing


def test_every_code_name_the_tour_cites_exists() -> None:
    assert unresolved_names(doc_text()) == []


def test_a_made_up_name_is_reported() -> None:
    """The check can fail: each kind of citation, misspelt, is reported; spelt right, not."""
    made_up = [
        "ServerProtocol.receive_datum",
        "http11.HTTP11Handler._begin_cycles",
        "asyncio_driver._Connection._flushh",
        "sansio_asgi.core.events.StartApps",
        "StartApps",
        "data_to_sendd()",
        "HTTP12Handler",
        "h11.Connexion",
        "asyncio.AbstractEventLoop.add_readers",
        "core/protocols.py",
        "tests/properties/test_reader_oracles.py",
        "--trace-formats json",
        "websocket.receeve",
    ]
    real = [
        "ServerProtocol.receive_data",
        "http11.HTTP11Handler._begin_cycle",
        "asyncio_driver._Connection._flush",
        "sansio_asgi.core.events.StartApp",
        "sansio_asgi.core.ServerProtocol",
        "StartApp",
        "data_to_send()",
        "HTTP11Handler",
        "h11.Connection",
        "asyncio.AbstractEventLoop.add_reader",
        "core/protocol.py",
        "tests/properties/test_reader_oracle.py",
        "--log-level trace",
        "websocket.receive",
        "HTTPCycle.body",
        "AsyncioDriver.report",
    ]
    text = " ".join(f"`{name}`" for name in made_up + real)
    assert unresolved_names(text) == made_up
    diagram = (
        "```mermaid\nsequenceDiagram\n    participant P as ServerProtocol\n"
        "    participant H as HTTP11Handlers\n"
        "    P->>H: receive_data, then _begin_cycles and ServerProtocol._upgrades\n"
        "    Note over H: the Host header, 0.25 s later, StartApp(cycle, scope)\n```\n"
    )
    assert unresolved_names(diagram) == [
        "HTTP11Handlers",
        "_begin_cycles",
        "ServerProtocol._upgrades",
    ]


# ---------------------------------------------------------------------- links


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = prose(path.read_text(encoding="utf-8"))
    return {_slug(h) for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


def broken_links(text: str, base: Path) -> list[str]:
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", prose(text)):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path_part, _, anchor = target.partition("#")
        path = (base.parent / path_part).resolve() if path_part else base
        missing_anchor = path.suffix == ".md" and anchor and anchor not in _anchors(path)
        if not path.exists() or missing_anchor:
            broken.append(target)
    return broken


def test_links_lead_to_files_and_headings() -> None:
    assert broken_links(doc_text(), DOC) == []
    assert broken_links("[a](nowhere.md) [b](#no-such-heading) [c](../README.md#layout)", DOC) == [
        "nowhere.md",
        "#no-such-heading",
    ]


def test_the_app_shown_is_the_app_run() -> None:
    assert block_lines(doc_text(), "tour-app") == inspect.getsource(app).splitlines()


# ---------------------------------------------------------------------- the real server


class ServerRun:
    """``python -m sansio_asgi tests.tour_app:app --log-level trace`` on an ephemeral port and
    asyncio's own loop (the one the tour describes), its output read line by line in a
    thread."""

    def __init__(self, driver: str, *options: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SANSIO_ASGI_")}
        env.update(PYTHONUNBUFFERED="1", NO_COLOR="1")
        command = [sys.executable, "-m", "sansio_asgi", "tests.tour_app:app", "--port", "0"]
        command += ["--log-level", "trace", "--driver", driver, "--loop", "asyncio", *options]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = 0

    def wait_started(self) -> None:
        found = self.wait_for(r"running on http://127\.0\.0\.1:\d+")
        match = re.search(r"127\.0\.0\.1:(\d+)", self.lines[found])
        assert match is not None
        self.port = int(match[1])

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("")  # end of output
            self._changed.notify_all()

    def wait_for(self, pattern: str, start: int = 0) -> int:
        """The index of the first line from ``start`` that matches ``pattern``."""
        deadline = time.monotonic() + DEADLINE_S
        compiled = re.compile(pattern)
        with self._changed:
            while True:
                for i in range(start, len(self.lines)):
                    if compiled.search(self.lines[i]):
                        return i
                remaining = deadline - time.monotonic()
                ended = self.lines[-1:] == [""]  # the server exited
                output = "\n".join(self.lines)
                assert remaining > 0 and not ended, f"no line matching {pattern!r}:\n{output}"
                self._changed.wait(remaining)

    def stop(self, *, signalled: bool = False) -> list[str]:
        """SIGTERM (unless the caller has sent it: a second one is a forced stop), wait for the
        exit, and every line the server printed."""
        if not signalled and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        returncode = self.process.wait(DEADLINE_S)
        self._reader.join(DEADLINE_S)
        assert returncode == 0, "\n".join(self.lines)
        return [line for line in self.lines if line]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(DEADLINE_S)
        assert self.process.stdout is not None
        self.process.stdout.close()


@contextlib.contextmanager
def server_run(driver: str, *options: str) -> Iterator[ServerRun]:
    run = ServerRun(driver, *options)
    try:
        run.wait_started()
        yield run
    finally:
        run.close()


def connect(port: int) -> tuple[socket.socket, str]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S)
    host, client_port = sock.getsockname()[:2]
    return sock, f"{host}:{client_port}"


def read_until(sock: socket.socket, done: Callable[[bytes], bool]) -> bytes:
    data = b""
    while not done(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def read_to_eof(sock: socket.socket) -> bytes:
    return read_until(sock, lambda data: False)


def masked(opcode: int, payload: bytes, key: bytes = bytes.fromhex("37fa213d")) -> bytes:
    """A client frame, FIN set, masked with ``key`` (RFC 6455 §5.7's example key)."""
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + key + body


HTTP_REQUEST = (
    b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
)
WS_HANDSHAKE = (
    b"GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
WS_TEXT = masked(0x1, b"Hello")
WS_CLOSE = masked(0x8, (1000).to_bytes(2, "big"))


def tour_http_and_websocket(driver: str) -> dict[str, list[str]]:
    """Parts 1 and 2 in one server run: the request, then the WebSocket session. Each part
    waits for the server's last line about its connection, so the two never interleave."""
    with server_run(driver) as run:
        sock, http_peer = connect(run.port)
        with sock:
            sock.sendall(HTTP_REQUEST)
            response = read_to_eof(sock)
        assert response.startswith(b"HTTP/1.1 200 OK\r\n"), response
        assert response.endswith(b"b\r\necho: hello\r\n0\r\n\r\n"), response
        http_end = run.wait_for(rf"{re.escape(http_peer)} connection lost")

        sock, ws_peer = connect(run.port)
        with sock:
            sock.sendall(WS_HANDSHAKE)
            handshake = read_until(sock, lambda data: b"\r\n\r\n" in data)
            assert handshake.startswith(b"HTTP/1.1 101 "), handshake
            assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in handshake  # RFC 6455 §1.3's answer
            sock.sendall(WS_TEXT)
            echo = read_until(sock, lambda data: len(data) >= 13)
            assert echo == b"\x81\x0becho: Hello", echo
            sock.sendall(WS_CLOSE)
            assert read_until(sock, lambda data: len(data) >= 4) == b"\x88\x02\x03\xe8"
            # The client closes once the app has heard of the close: on the selectors driver
            # the app's receive() could otherwise come after the client's FIN.
            run.wait_for(rf"{re.escape(ws_peer)} < websocket\.disconnect", http_end)
            assert read_to_eof(sock) == b""
        ws_start = run.wait_for(rf"{re.escape(ws_peer)} connection made", http_end)
        ws_end = run.wait_for(rf"{re.escape(ws_peer)} connection lost", ws_start)
        lines = run.stop()
    return {"http": lines[: http_end + 1], "websocket": lines[ws_start : ws_end + 1]}


def tour_http_json() -> list[str]:
    """Part 1's request under ``--trace-format json``: the lines of its ASGI messages."""
    with server_run("asyncio", "--trace-format", "json") as run:
        sock, peer = connect(run.port)
        with sock:
            sock.sendall(HTTP_REQUEST)
            read_to_eof(sock)
        run.wait_for(rf'"connection": "{re.escape(peer)}", "kind": "connection".*"lost"')
        lines = run.stop()
    return [line for line in lines if '"kind": "message"' in line]


def tour_shutdown(driver: str) -> dict[str, list[str]]:
    """Part 3: connection A served and idle, connection B halfway through its body; SIGTERM;
    A closes after its grace, then B sends the rest and gets its response; then the lifespan
    shutdown. The client waits for each step's last line before the next, so the order is
    the server's, not a race."""
    with server_run(driver) as run:
        idle, idle_peer = connect(run.port)
        busy, busy_peer = connect(run.port)
        with idle, busy:
            idle.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            served = read_until(idle, lambda data: data.endswith(b"0\r\n\r\n"))
            assert served.startswith(b"HTTP/1.1 200 OK\r\n"), served
            busy.sendall(b"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n")
            busy.sendall(b"hello")
            run.wait_for(rf"{re.escape(busy_peer)} < http\.request .*more_body=True")
            run.process.send_signal(signal.SIGTERM)
            shutting_down = run.wait_for(r"Shutting down")
            assert read_to_eof(idle) == b""  # the idle connection's grace ended
            idle.close()
            run.wait_for(rf"{re.escape(idle_peer)} connection lost", shutting_down)
            busy.sendall(b"world")
            response = read_to_eof(busy)
            assert b"\r\nconnection: close\r\n" in response.lower(), response
            assert response.endswith(b"echo: helloworld\r\n0\r\n\r\n"), response
        lines = run.stop(signalled=True)
    return {"shutdown": lines[shutting_down:]}


# ---------------------------------------------------------------------- comparing traces

_PORT = re.compile(r"(127\.0\.0\.1(?::|', |\", ))(\d+)")  # "ip:port", ('ip', port), ["ip", port]
_DATE = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")
_DURATION = re.compile(r"(duration_s=|\"duration_s\": )[0-9.e+-]+")
_TIME = re.compile(r'("time": )[0-9.e+-]+')


def normalize(lines: list[str]) -> list[str]:
    """The lines with what changes from run to run replaced: each port by its order of first
    appearance (PORT1 is the first port seen), HTTP dates by DATE, durations and times by 0."""
    ports: dict[str, str] = {}

    def port(match: re.Match[str]) -> str:
        return match[1] + ports.setdefault(match[2], f"PORT{len(ports) + 1}")

    normalized = []
    for line in lines:
        line = _PORT.sub(port, line)
        line = _DATE.sub("DATE", line)
        line = _DURATION.sub(r"\g<1>0", line)
        line = _TIME.sub(r"\g<1>0", line)
        normalized.append(line.rstrip())
    return normalized


def as_on_asyncio(lines: list[str]) -> list[str]:
    """The selectors driver's lines, as the doc's asyncio run shows them: its name in the
    "running on" line, and without ``WakeApp`` lines. On the selectors driver an app's
    ``receive()`` crosses from the app's thread to the I/O thread, and the client's next bytes
    may be read before it arrives: then the message is waiting for it, and no ``WakeApp`` is
    needed. Whether it is is a race between two threads, so those lines are not compared."""
    return [
        line.replace("with the selectors driver", "with the asyncio driver")
        for line in lines
        if " event WakeApp " not in line
    ]


def assert_same_trace(name: str, doc: list[str], actual: list[str], driver: str) -> None:
    if driver == "selectors":
        doc, actual = as_on_asyncio(doc), as_on_asyncio(actual)
    expected, got = normalize(doc), normalize(actual)
    if expected != got:
        diff = "\n".join(difflib.unified_diff(expected, got, "doc", "server", lineterm=""))
        pytest.fail(
            f"docs/how-it-works.md's {name!r} trace is not what the server prints on the "
            f"{driver} driver; if the change is meant, rewrite the blocks with "
            f"`.venv/bin/python -m tests.test_docs`:\n{diff}"
        )


@pytest.mark.parametrize("driver", ["asyncio", "selectors"])
def test_the_request_and_websocket_traces_are_real(driver: str) -> None:
    text = doc_text()
    traces = tour_http_and_websocket(driver)
    assert_same_trace("http", block_lines(text, "trace: http"), traces["http"], driver)
    websocket = block_lines(text, "trace: websocket")
    assert_same_trace("websocket", websocket, traces["websocket"], driver)


@pytest.mark.parametrize("driver", ["asyncio", "selectors"])
def test_the_shutdown_trace_is_real(driver: str) -> None:
    shutdown = block_lines(doc_text(), "trace: shutdown")
    assert_same_trace("shutdown", shutdown, tour_shutdown(driver)["shutdown"], driver)


def test_the_json_trace_is_real() -> None:
    doc = block_lines(doc_text(), "trace: http json")
    assert_same_trace("http json", doc, tour_http_json(), "asyncio")


def test_normalize_keeps_what_matters() -> None:
    """Ports, dates and durations may differ; anything else may not, the order in which
    connections appear included."""
    a = ["127.0.0.1:40000 connection made", "127.0.0.1:40001 x date: Sat, 05 Dec 2026 17:33:06 GMT"]
    b = ["127.0.0.1:51234 connection made", "127.0.0.1:51235 x date: Sun, 06 Dec 2026 01:02:03 GMT"]
    swapped = ["127.0.0.1:51235 connection made", "127.0.0.1:51234 x date: Sat, 05 Dec 2026 1"]
    assert normalize(a) == normalize(b)
    assert normalize(a) != normalize(swapped)
    assert normalize(["x 171 bytes"]) != normalize(["x 172 bytes"])
    assert normalize(["e duration_s=0.25 ok"]) == normalize(["e duration_s=1e-05 ok"])


def write_blocks() -> None:
    """Run the scenarios on the asyncio driver and put their lines into the doc."""
    traces = {**tour_http_and_websocket("asyncio"), **tour_shutdown("asyncio")}
    traces["http json"] = tour_http_json()
    text = doc_text()
    for name, lines in traces.items():
        start, end = marked_block(text, f"trace: {name}")
        text = text[:start] + "".join(line + "\n" for line in lines) + text[end:]
    DOC.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write_blocks()
