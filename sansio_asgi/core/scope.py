"""Building the ASGI connection scope of an HTTP request or a WebSocket session, in one pass.

ASGI HTTP spec, "HTTP Connection Scope". The choices where the spec leaves room:

* ``method`` is passed as received. RFC 9110 §9.1 makes methods case-sensitive, so uppercasing
  ``get`` would turn it into a different method.
* ``path`` includes ``root_path`` (spec, "WSGI Compatibility": PATH_INFO is derived by stripping
  root_path from path). When ``--root-path`` is set and the received path does not already
  start with it (a proxy stripped the prefix), it is prepended; when it does, it is kept.
* ``raw_path`` is the target as received up to the ``?``, never rewritten.
* ``headers`` keep order, duplicates and values as received, with names lowercased (h11
  lowercases them as it parses), except for an absolute-form target: its authority takes the
  place of the received ``host`` (RFC 9112 §3.2.2).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from .proxy import client_and_scheme

if TYPE_CHECKING:
    from .settings import ProtocolSettings

ASGI_VERSION = {"version": "3.0", "spec_version": "2.5"}


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """Split a request target into ``(raw_path, query_string)``.

    Handles origin-form (``/a?b``), absolute-form (``http://h/a?b``, RFC 9112 §3.2.2) and
    asterisk-form (``*``).
    """
    raw_path, _, query_string = target.partition(b"?")
    if raw_path[:1] != b"/" and raw_path != b"*":
        # absolute-form: scheme "://" authority path-abempty
        _, sep, rest = raw_path.partition(b"://")
        if sep:
            slash = rest.find(b"/")
            raw_path = rest[slash:] if slash >= 0 else b"/"
    return raw_path, query_string


# RFC 9112 §3.2.2 absolute-form: scheme "://" authority, the authority ending at the path, the
# query or a fragment (RFC 3986 §3.2).
_ABSOLUTE_FORM = re.compile(rb"[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)")


def target_authority(target: bytes) -> bytes | None:
    """The host and port of an absolute-form target (``http://h:8080/a`` gives ``h:8080``),
    as sent, without any userinfo; None for a target in any other form."""
    match = _ABSOLUTE_FORM.match(target)
    if match is None:
        return None
    return match[1].rpartition(b"@")[2]


def with_target_host(
    headers: list[tuple[bytes, bytes]], authority: bytes
) -> list[tuple[bytes, bytes]]:
    """RFC 9112 §3.2.2: "When an origin server receives a request with an absolute-form of
    request-target, the origin server MUST ignore the received Host header field (if any) and
    instead use the host information of the request-target." The received ``host``
    field gives way to ``authority`` where it stood; with none (HTTP/1.0), ``host`` is added."""
    if not any(name == b"host" for name, _ in headers):
        return [*headers, (b"host", authority)]
    return [(name, authority) if name == b"host" else (name, value) for name, value in headers]


def decode_path(raw_path: bytes) -> str:
    """Percent-decode and UTF-8-decode a path (invalid UTF-8 becomes U+FFFD)."""
    text = raw_path.decode("ascii", "surrogateescape")
    if "%" not in text:
        return text
    return unquote(text)


def apply_root_path(path: str, root_path: str) -> str:
    if not root_path or path == root_path or path.startswith(root_path + "/"):
        return path
    return root_path + path


def http_scope(
    *,
    method: str,
    http_version: str,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    scheme: str,
    client: tuple[str, int] | None,
    server: tuple[str, int | None] | None,
    root_path: str,
    state: dict[str, Any] | None,
) -> dict[str, Any]:
    raw_path, query_string = split_target(target)
    if target[:1] != b"/":
        authority = target_authority(target)
        if authority is not None:
            headers = with_target_host(headers, authority)
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": ASGI_VERSION.copy(),
        "http_version": http_version,
        "method": method,
        "scheme": scheme,
        "path": apply_root_path(decode_path(raw_path), root_path),
        "raw_path": raw_path,
        "query_string": query_string,
        "root_path": root_path,
        "headers": headers,
        "client": client,
        "server": server,
        "extensions": {},
    }
    if state is not None:
        scope["state"] = state.copy()
    return scope


def websocket_scope(
    *,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    subprotocols: list[str],
    scheme: str,
    client: tuple[str, int] | None,
    server: tuple[str, int | None] | None,
    root_path: str,
    state: dict[str, Any] | None,
    http_version: str = "1.1",
) -> dict[str, Any]:
    """ASGI WebSocket spec, "Websocket Connection Scope": as HTTP, without ``method``, with
    ``subprotocols``, and the ``websocket.http.response`` (denial response) extension. The
    handshake came over HTTP/1.1, or over HTTP/2 (RFC 8441: ``http_version`` "2")."""
    scope = http_scope(
        method="GET",
        http_version=http_version,
        target=target,
        headers=headers,
        scheme=scheme,
        client=client,
        server=server,
        root_path=root_path,
        state=state,
    )
    scope["type"] = "websocket"
    del scope["method"]
    scope["subprotocols"] = subprotocols
    scope["extensions"] = {"websocket.http.response": {}}
    return scope


class RequestHead:
    """A parsed request head, as plain data: what any protocol (HTTP/1.1 today, HTTP/2
    later) hands to scope building and to the WebSocket handler. ``headers`` have lowercased
    names, in the order received."""

    __slots__ = ("headers", "http_version", "method", "target")

    def __init__(
        self, method: str, target: bytes, http_version: str, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.method = method
        self.target = target
        self.http_version = http_version
        self.headers = headers


class ConnectionInfo:
    """What the driver told the core about the connection: the peer, the local address, the
    scheme (``http``/``https``) and the ``tls`` scope extension (None without TLS)."""

    __slots__ = ("client", "scheme", "server", "tls")

    def __init__(
        self,
        *,
        client: tuple[str, int] | None,
        server: tuple[str, int | None] | None,
        scheme: str,
        tls: dict[str, Any] | None,
    ) -> None:
        self.client = client
        self.server = server
        self.scheme = scheme
        self.tls = tls


def new_scope(
    request: RequestHead,
    connection: ConnectionInfo,
    settings: ProtocolSettings,
    *,
    subprotocols: list[str] | None = None,
    proxied: bool = True,
) -> tuple[dict[str, Any], tuple[str, int] | None]:
    """The scope of an HTTP request, or of a WebSocket session when ``subprotocols`` is given
    (the offered ones), and the client as the app sees it. Proxy headers count only from a
    trusted peer; ``proxied`` False says the request has none, which spares looking."""
    client, scheme = connection.client, connection.scheme
    if subprotocols is not None:
        scheme = "wss" if scheme == "https" else "ws"
    if proxied and settings.trusted_proxies is not None:
        client, scheme = client_and_scheme(
            request.headers, client, scheme, settings.trusted_proxies
        )
    if subprotocols is None:
        scope = http_scope(
            method=request.method,
            http_version=request.http_version,
            target=request.target,
            headers=request.headers,
            scheme=scheme,
            client=client,
            server=connection.server,
            root_path=settings.root_path,
            state=settings.state,
        )
    else:
        scope = websocket_scope(
            target=request.target,
            headers=request.headers,
            subprotocols=subprotocols,
            scheme=scheme,
            client=client,
            server=connection.server,
            root_path=settings.root_path,
            state=settings.state,
            http_version=request.http_version,
        )
    if connection.tls is not None:
        scope["extensions"]["tls"] = dict(connection.tls)
    return scope, client
