"""Two ceilings for the benchmark: the fastest a pure-Python asyncio server could answer here.

Neither is a server anyone should run: they skip everything an ASGI server does (no app, no
scope, no tasks, no timeouts, no limits) and answer each request with a response fixed at start.

- ``raw``: an ``asyncio.Protocol`` that does not parse HTTP at all. A request is counted at the
  blank line that ends its head, which is all wrk's keep-alive framing needs when requests have
  no body (so it serves only ``hello``, ``json`` and ``stream``). It honours
  ``Connection: close`` by a case-insensitive search of the head, so that wrk's close mode and
  the harness's probe work. What it measures: the loop, the socket calls, the bytes copied.
- ``h11``: the same protocol with a bare ``h11.Connection`` round trip per request: h11 parses
  the request and serializes the response (head, body and end of message in one write), and
  decides keep-alive. What it measures: the raw ceiling plus h11's cost, the most any server
  can reach that leaves all of HTTP/1.1 to h11 on the standard loop.

Usage: ``python bench/ceilings.py raw|h11 --app hello --host 127.0.0.1 --port 8000``; SIGINT or
SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

import h11

# The same bodies as bench/apps.py (imported: a script's folder is first on sys.path), so that
# wrk reads the same bytes from every server.
from apps import (
    APPLICATION_JSON,
    HELLO,
    JSON_DOCUMENT,
    OCTET_STREAM,
    STREAM_CHUNK,
    STREAM_CHUNKS,
    TEXT_PLAIN,
)

RAW_APPS = ("hello", "json", "stream")
H11_APPS = ("hello", "json", "echo", "stream")


def fixed_body(app: str) -> tuple[tuple[bytes, bytes], bytes]:
    if app == "json":
        return APPLICATION_JSON, json.dumps(JSON_DOCUMENT, separators=(",", ":")).encode()
    return TEXT_PLAIN, HELLO


# -- raw: no parsing -------------------------------------------------------------------------


def raw_response(app: str, close: bool) -> bytes:
    connection = b"connection: close\r\n" if close else b""
    if app == "stream":
        chunk = b"%x\r\n%b\r\n" % (len(STREAM_CHUNK), STREAM_CHUNK)
        head = b"HTTP/1.1 200 OK\r\n%b: %b\r\ntransfer-encoding: chunked\r\n" % TEXT_PLAIN
        return head + connection + b"\r\n" + chunk * STREAM_CHUNKS + b"0\r\n\r\n"
    (name, value), body = fixed_body(app)
    head = b"HTTP/1.1 200 OK\r\n%b: %b\r\ncontent-length: %d\r\n" % (name, value, len(body))
    return head + connection + b"\r\n" + body


class RawProtocol(asyncio.Protocol):
    keep_alive_response = b""
    close_response = b""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        buffer = self.buffer + data if self.buffer else data
        start = 0
        answered = 0
        while (end := buffer.find(b"\r\n\r\n", start)) != -1:
            head = buffer[start:end]
            start = end + 4
            if b"connection: close" in head.lower():
                self.transport.write(self.keep_alive_response * answered + self.close_response)
                self.transport.close()
                self.buffer = b""
                return
            answered += 1
        self.buffer = buffer[start:]
        if answered:
            self.transport.write(self.keep_alive_response * answered)


# -- h11: parse and answer with h11 ----------------------------------------------------------


class H11Protocol(asyncio.Protocol):
    app = "hello"

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.connection = h11.Connection(h11.SERVER)
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        connection = self.connection
        connection.receive_data(data)
        while True:
            try:
                event = connection.next_event()
            except h11.RemoteProtocolError:
                self.transport.close()
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            kind = type(event)
            if kind is h11.Data:
                self.body.append(event.data)  # type: ignore[union-attr]
            elif kind is h11.EndOfMessage:
                self.transport.write(self.respond())
                if connection.our_state is h11.MUST_CLOSE:
                    self.transport.close()
                    return
                connection.start_next_cycle()
                self.body = []
            elif kind is h11.ConnectionClosed:
                self.transport.close()
                return

    def respond(self) -> bytes:
        send = self.connection.send
        if self.app == "stream":
            out = [send(h11.Response(status_code=200, headers=[TEXT_PLAIN], reason=b"OK"))]
            out += [send(h11.Data(data=STREAM_CHUNK)) for _ in range(STREAM_CHUNKS)]
        else:
            if self.app == "echo":
                content_type, body = OCTET_STREAM, b"".join(self.body)
            else:
                content_type, body = FIXED[self.app]
            length = (b"content-length", str(len(body)).encode())
            out = [
                send(h11.Response(status_code=200, headers=[content_type, length], reason=b"OK"))
            ]
            out.append(send(h11.Data(data=body)))
        out.append(send(h11.EndOfMessage()))
        return b"".join(o for o in out if o is not None)


FIXED: dict[str, tuple[tuple[bytes, bytes], bytes]] = {}


async def serve(kind: str, app: str, host: str, port: int) -> None:
    factory: Any
    if kind == "raw":
        RawProtocol.keep_alive_response = raw_response(app, close=False)
        RawProtocol.close_response = raw_response(app, close=True)
        factory = RawProtocol
    else:
        FIXED[app] = fixed_body(app)
        H11Protocol.app = app
        factory = H11Protocol
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    server = await loop.create_server(factory, host, port, backlog=2048)
    async with server:
        await stopping.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("raw", "h11"))
    parser.add_argument("--app", default="hello", choices=H11_APPS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    if args.kind == "raw" and args.app not in RAW_APPS:
        parser.error(f"raw answers without reading bodies: --app one of {', '.join(RAW_APPS)}")
    asyncio.run(serve(args.kind, args.app, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
