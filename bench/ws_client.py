"""A small WebSocket load client for the benchmark: round trips of one small message per connection.

Each of ``--connections`` connections opens the handshake, then sends a 13-byte text message
and waits for its echo, over and over, until ``--duration`` seconds have passed or it has made
``--round-trips`` round trips; then it closes with 1000 and waits for the server's close. The
client prints one JSON object: round trips, round trips per second (counted from the moment all
connections are open to the last echo), latency percentiles and any errors.

Pure Python on ``asyncio.Protocol`` and no WebSocket library, so that every server meets the
same client and the client spends little per message: the masked frame is built once and sent
as it is (RFC 6455 wants a fresh masking key per frame to protect proxies from a hostile
browser script; a server cannot tell, and this client talks to loopback only). Server pings
are answered with pongs; fragmented or masked server frames count as errors.

Usage: ``python bench/ws_client.py --port 8000 --connections 10 --duration 5``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

MESSAGE = b"Hello, world!"
MASK_KEY = b"\x37\xfa\x21\x3d"
HANDSHAKE = (
    b"GET / HTTP/1.1\r\n"
    b"Host: %b\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)
OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA
CLOSE_DEADLINE_S = 5.0


def client_frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked frame (RFC 6455 5.3: "a client MUST mask all frames")."""
    size = len(payload)
    if size > 125:
        raise ValueError("the client only sends short frames")
    mask = (MASK_KEY * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(size, "big")
    return bytes([0x80 | opcode, 0x80 | size]) + MASK_KEY + masked


MESSAGE_FRAME = client_frame(OP_TEXT, MESSAGE)
CLOSE_FRAME = client_frame(OP_CLOSE, (1000).to_bytes(2, "big"))


class Run:
    """What all the connections share: the clock, the counts and the errors."""

    def __init__(self, duration_s: float, round_trips: int) -> None:
        self.duration_s = duration_s
        self.round_trips = round_trips
        self.deadline = 0.0
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.last_echo = 0.0


class EchoClient(asyncio.Protocol):
    def __init__(self, run: Run, host: bytes, opened: asyncio.Future[None]) -> None:
        self.run = run
        self.host = host
        self.opened = opened
        self.closed: asyncio.Future[None] = opened.get_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upgraded = False
        self.closing = False
        self.count = 0
        self.sent_at = 0.0

    # -- asyncio callbacks --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(HANDSHAKE % self.host)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded and not self.read_handshake():
            return
        self.read_frames()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closing:
            self.fail(f"connection lost before the close handshake: {exc}")
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    # -- protocol --

    def read_handshake(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end == -1:
            return False
        head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
        if not head.startswith(b"HTTP/1.1 101"):
            status_line = head.split(b"\r\n", 1)[0]
            self.fail(f"handshake answered {status_line!r}")
            return False
        self.upgraded = True
        self.opened.set_result(None)
        return True

    def start(self) -> None:
        self.send_message()

    def send_message(self) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter()
        self.transport.write(MESSAGE_FRAME)

    def read_frames(self) -> None:
        buffer = self.buffer
        while len(buffer) >= 2:
            first, second = buffer[0], buffer[1]
            size, start = second & 0x7F, 2
            if size == 126:
                size, start = int.from_bytes(buffer[2:4], "big"), 4
            elif size == 127:
                size, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + size:
                break
            if second & 0x80 or not first & 0x80:
                self.fail("the server sent a masked or fragmented frame")
                return
            payload, buffer = buffer[start : start + size], buffer[start + size :]
            opcode = first & 0x0F
            if opcode in (OP_TEXT, OP_BINARY):
                self.echoed(payload)
            elif opcode == OP_PING:
                assert self.transport is not None
                self.transport.write(client_frame(OP_PONG, payload))
            elif opcode == OP_CLOSE:
                self.server_closed(payload)
                return
        self.buffer = buffer

    def echoed(self, payload: bytes) -> None:
        now = time.perf_counter()
        run = self.run
        if payload != MESSAGE:
            self.fail(f"echo differs: {payload[:40]!r}")
            return
        run.latencies.append(now - self.sent_at)
        run.last_echo = now
        self.count += 1
        if now < run.deadline and self.count < run.round_trips:
            self.send_message()
        else:
            self.close()

    def close(self) -> None:
        assert self.transport is not None
        self.closing = True
        self.transport.write(CLOSE_FRAME)

    def server_closed(self, payload: bytes) -> None:
        # RFC 6455 7.1.1: "the server [...] SHOULD close the underlying TCP connection first";
        # it may not have, so close our side once its close frame is here.
        assert self.transport is not None
        if not self.closing:
            self.fail(f"the server closed first with {payload[:2].hex() or 'no code'}")
            self.closing = True
            self.transport.write(client_frame(OP_CLOSE, payload[:2]))
        self.transport.close()

    def fail(self, reason: str) -> None:
        self.run.errors.append(reason)
        self.closing = True
        if self.transport is not None:
            self.transport.close()


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(host: str, port: int, connections: int, run: Run) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    clients = []
    for _ in range(connections):
        opened: asyncio.Future[None] = loop.create_future()
        client = EchoClient(run, host.encode(), opened)
        await loop.create_connection(lambda c=client: c, host, port)  # type: ignore[misc]
        clients.append(client)
    await asyncio.wait_for(asyncio.gather(*(c.opened for c in clients)), CLOSE_DEADLINE_S)
    started = time.perf_counter()
    run.deadline = started + run.duration_s
    for client in clients:
        client.start()
    await asyncio.wait_for(
        asyncio.gather(*(c.closed for c in clients)), run.duration_s + CLOSE_DEADLINE_S
    )
    elapsed = (run.last_echo or time.perf_counter()) - started
    ordered = sorted(run.latencies)
    found: dict[str, object] = {
        "connections": connections,
        "round_trips": len(ordered),
        "elapsed_s": round(elapsed, 3),
        "round_trips_per_s": round(len(ordered) / elapsed, 1) if elapsed > 0 else None,
        "errors": run.errors[:10],
    }
    if ordered:
        found["latency_ms"] = {
            "avg": round(1000 * sum(ordered) / len(ordered), 3),
            "p50": round(1000 * percentile(ordered, 0.50), 3),
            "p99": round(1000 * percentile(ordered, 0.99), 3),
        }
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds (default: 5)")
    parser.add_argument(
        "--round-trips", type=int, default=10**9, help="per connection, at most (default: no cap)"
    )
    args = parser.parse_args(argv)
    run = Run(args.duration, args.round_trips)
    try:
        found = asyncio.run(measure(args.host, args.port, args.connections, run))
    except (OSError, asyncio.TimeoutError) as exc:
        found = {"errors": [*run.errors[:10], f"{type(exc).__name__}: {exc}"]}
    print(json.dumps(found))
    return 1 if found["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
