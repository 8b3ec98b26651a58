"""Binding listening sockets, shared by both drivers."""

from __future__ import annotations

import socket


def bind_socket(host: str, port: int, *, backlog: int = 2048) -> socket.socket:
    """A listening, non-blocking TCP socket on ``host:port`` (IPv6 when the host has a colon)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns on TCP_NODELAY only for sockets that say they are TCP.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def set_nodelay(sock: socket.socket) -> None:
    """Send small writes at once (no Nagle delay): responses are written whole or in chunks the
    app chose, so waiting to coalesce them only adds latency."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def peer_addresses(
    sock: socket.socket,
) -> tuple[tuple[str, int] | None, tuple[str, int | None] | None]:
    """``(client, server)`` as the ASGI scope wants them."""
    try:
        peer = sock.getpeername()
    except OSError:
        peer = None
    local = sock.getsockname()
    client = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
    if isinstance(local, tuple):
        server: tuple[str, int | None] | None = (str(local[0]), int(local[1]))
    elif local:
        server = (str(local), None)  # a Unix socket path (ASGI HTTP 2.2)
    else:
        server = None
    return client, server


def display_url(sock: socket.socket, scheme: str = "http") -> str:
    local = sock.getsockname()
    if isinstance(local, tuple):
        host = local[0]
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{local[1]}"
    return f"{scheme}+unix://{local}"
