"""Binding listening sockets, shared by both drivers."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import ssl
import stat
from typing import Any

# accept() errors that mean "out of a resource" (file descriptors, buffers): accepting again at
# once would fail the same way and spin, so the listener rests for this long.
ACCEPT_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
ACCEPT_BACKOFF_S = 0.5


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


def accepts_without_nodelay(listener: socket.socket) -> bool:
    """Whether the sockets ``listener`` accepts need ``set_nodelay`` from an asyncio transport:
    asyncio's own turns TCP_NODELAY on only for sockets whose protocol is ``IPPROTO_TCP`` (a
    TCP socket made with protocol 0, as gunicorn makes its listeners, says 0 and inherits it);
    uvloop's turns it on for every TCP socket."""
    return (
        listener.family in (socket.AF_INET, socket.AF_INET6)
        and listener.proto != socket.IPPROTO_TCP
    )


def peer_addresses(
    sock: socket.socket,
) -> tuple[tuple[str, int] | None, tuple[str, int | None] | None]:
    """``(client, server)`` as the ASGI scope wants them."""
    try:
        peer = sock.getpeername()
    except OSError:
        peer = None
    return scope_addresses(peer, sock.getsockname())


def scope_addresses(
    peer: Any, local: Any
) -> tuple[tuple[str, int] | None, tuple[str, int | None] | None]:
    """``(client, server)`` as the ASGI scope wants them, from ``getpeername()`` (None when it
    failed) and ``getsockname()``."""
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


def bind_unix_socket(path: str, *, backlog: int = 2048) -> socket.socket:
    """A listening Unix socket at ``path`` (a stale socket file there is replaced)."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, 0o666)  # as uvicorn: the proxy in front usually runs as another user
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def socket_from_fd(fd: int) -> socket.socket:
    """The listening socket a supervisor handed over (socket activation, ``--fd``)."""
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    return sock


_TLS_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
_RDN_NAMES = {
    "commonName": "CN",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
}


class TLS:
    """A server's TLS setup, and the ``tls`` scope extension (ASGI TLS spec 0.2) per connection."""

    def __init__(self, context: ssl.SSLContext, certfile: str | None) -> None:
        self.context = context
        self.server_cert: str | None = None
        if certfile is not None:
            with open(certfile, encoding="ascii", errors="replace") as file:
                text = file.read()
            begin = text.find("-----BEGIN CERTIFICATE-----")
            end = text.find("-----END CERTIFICATE-----", begin)
            if begin >= 0 and end >= 0:
                self.server_cert = text[begin : end + len("-----END CERTIFICATE-----")] + "\n"
        self._cipher_ids = {c["name"]: c["id"] & 0xFFFF for c in context.get_ciphers()}

    def extension(self, connection: ssl.SSLObject | ssl.SSLSocket) -> dict[str, Any]:
        cipher = connection.cipher()
        version = connection.version()
        chain: list[str] = []
        name: str | None = None
        der = connection.getpeercert(binary_form=True)
        if der:
            chain.append(ssl.DER_cert_to_PEM_cert(der))
            peer = connection.getpeercert()
            if peer:
                name = _rfc4514(peer.get("subject", ()))
        return {
            "server_cert": self.server_cert,
            "client_cert_chain": chain,
            "client_cert_name": name,
            "client_cert_error": None,
            "tls_version": _TLS_VERSIONS.get(version or ""),
            "cipher_suite": self._cipher_ids.get(cipher[0]) if cipher else None,
        }


def _rfc4514(subject: Any) -> str:
    """A certificate subject as an RFC 4514 string (most specific RDN first)."""
    parts = []
    for rdn in reversed(subject):
        attributes = []
        for key, value in rdn:
            escaped = "".join("\\" + c if c in ',+"\\<>;=' else c for c in str(value))
            if escaped[:1] in ("#", " "):
                escaped = "\\" + escaped
            attributes.append(f"{_RDN_NAMES.get(key, key)}={escaped}")
        parts.append("+".join(attributes))
    return ",".join(parts)
