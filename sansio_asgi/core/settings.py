"""The settings the core needs, as one frozen dataclass.

Every limit carries its unit and its reason. ``sansio_asgi.config.Config`` builds one of these
from the command line; tests build them directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .limits import Admission
    from .proxy import TrustedHosts

# policy: h11's own default for the largest incomplete event (the request line plus headers);
# nginx allows 8 KiB by default, Apache 8 KiB per line. A request whose head is larger gets 431.
MAX_HEADER_BYTES = 16 * 1024

# policy: unread request body the core holds per connection before it asks the driver to stop
# reading; reading resumes when the app has taken the buffer below half of it.
BODY_BUFFER_HIGH_WATER_BYTES = 64 * 1024

# policy: after a response, at most this much of a request body the app did not read is read
# and thrown away to keep the connection reusable (RFC 9112 §9.3: "A server MUST read the entire
# request message body or close the connection after sending its response").
DISCARD_BODY_LIMIT_BYTES = 1024 * 1024

# policy: uvicorn's default; browsers keep idle connections for longer, proxies for about this
# long. RFC 9112 §9.5: "Servers will usually have some timeout value beyond which they will no
# longer maintain an inactive connection."
KEEP_ALIVE_TIMEOUT_S = 5.0

# policy: from the first byte of a request (or the connection's start) to the end of its head. A
# client that trickles its headers (slowloris) is cut off with 408; a new connection that sent
# nothing is closed silently, as browsers that open connections ahead of need expect. nginx's
# client_header_timeout is 60 s; Apache's mod_reqtimeout starts at 20 s.
HEADER_TIMEOUT_S = 20.0

# policy: a request body that stops arriving for this long (while the server reads) gets 408:
# slowloris on bodies. nginx's client_body_timeout is 60 s between two reads.
REQUEST_BODY_TIMEOUT_S = 30.0

# policy: how long a connection we are closing keeps reading (and discarding) before the final
# close. RFC 9112 §9.6: the server "continues to read from the connection until it receives a
# corresponding close by the client, or until the server is reasonably certain that its own TCP
# stack has received the client's acknowledgement of the packet(s) containing the server's last
# response."
LINGER_TIMEOUT_S = 2.0

# policy: when the server stops, a kept-alive connection idle between requests is closed after
# this: a request the client sent just before it learned of the stop is still answered (with
# "connection: close") instead of meeting a closed connection, which a proxy would log and retry.
SHUTDOWN_IDLE_GRACE_S = 0.25

# policy: uvicorn's defaults: the largest WebSocket message (larger closes with 1009), and
# keepalive pings every 20 s that must be answered within 20 s (else close with 1011).
WS_MAX_SIZE_BYTES = 16 * 1024 * 1024
WS_PING_INTERVAL_S = 20.0
WS_PING_TIMEOUT_S = 20.0

# policy: after sending a close frame, how long to wait for the peer's before closing the TCP
# connection anyway (the websockets library waits 10 s).
WS_CLOSE_TIMEOUT_S = 5.0

# policy: the most frames one WebSocket message may arrive in; beyond it the connection closes
# with 1008. Frames cost CPU even when empty, so their number is bounded as well as their bytes.
# Autobahn's cases 9.3.1 and 9.4.1 send 4 MiB in 64-byte fragments: 65,536 frames.
WS_MAX_FRAMES_PER_MESSAGE = 128 * 1024

# policy: the most bytes a driver reads from a socket at once. Every reply the core makes to
# what it reads (a pong per ping, inflated data) is bounded by what one read can hold, so this
# is part of the resource budget (asyncio's transports read 256 KiB by default).
READ_SIZE_BYTES = 64 * 1024

# policy: bytes queued for the client, per connection, above which a driver reports "writing
# paused" (and an app's send() waits) until they drain below a quarter of it. asyncio's
# transports use the same default.
WRITE_HIGH_WATER_BYTES = 64 * 1024


# How HTTP/1.1 requests are read: "auto" (the fast path, deferring to h11 for anything
# unusual) or "h11" (every request through h11). The environment sets the default so that a
# whole test run can be put on h11 (SANSIO_ASGI_HTTP=h11); --http sets it per server.
HTTP_PARSERS = ("auto", "h11")
HTTP_PARSER = os.environ.get("SANSIO_ASGI_HTTP", "auto")
# How WebSocket frames are read and written: "auto" (whole small messages without wsproto,
# deferring to it for everything else) or "wsproto" (every frame through wsproto); the
# environment's SANSIO_ASGI_WS sets the default, --ws per server.
WS_PARSERS = ("auto", "wsproto")
WS_PARSER = os.environ.get("SANSIO_ASGI_WS", "auto")


# HTTP/2 (RFC 9113). Served on ALPN "h2", on a connection that opens with the preface (prior
# knowledge), and after "Upgrade: h2c"; the environment's SANSIO_ASGI_HTTP2=0 turns it off.
HTTP2 = os.environ.get("SANSIO_ASGI_HTTP2", "1") not in ("0", "false", "no", "off")
# RFC 9113 §6.5.2, SETTINGS_MAX_CONCURRENT_STREAMS: "It is recommended that this value be no
# smaller than 100, so as to not unnecessarily limit parallelism". It also caps the apps a
# connection runs at once (a stream the client reset still counts while its app runs), which is
# what stops a rapid reset (CVE-2023-44487) from starting apps without bound.
H2_MAX_CONCURRENT_STREAMS = 100
# SETTINGS_MAX_HEADER_LIST_SIZE: the decoded header list (RFC 7541 §4.1 sizes: name, value, and
# 32 bytes each), as large as HTTP/1.1's whole head may be. A larger one gets 431 on its
# stream; h2 decodes no more than twice it, which is what bounds an HPACK bomb.
H2_MAX_HEADER_LIST_BYTES = MAX_HEADER_BYTES
# SETTINGS_MAX_FRAME_SIZE: the protocol's initial value (RFC 9113 §6.5.2: "The initial value is
# 2^14 (16,384) octets"), the largest frame every peer must accept.
H2_MAX_FRAME_BYTES = 16_384
# SETTINGS_INITIAL_WINDOW_SIZE: the request body one stream may send before its app reads it,
# the protocol's initial value (RFC 9113 §6.5.2: "The initial value is 2^16-1 (65,535)
# octets"). The connection's window is this times the streams, so a stream
# whose app does not read stops only itself.
H2_INITIAL_WINDOW_BYTES = 65_535
# policy: floods (CVE-2019-9512/9514/9515/9518, CVE-2023-44487): within any interval, the resets a
# client may send, and the frames that ask for work without moving a request on (PING,
# SETTINGS, PRIORITY, empty DATA, refused streams, and WINDOW_UPDATEs beyond the two each DATA
# frame sent may earn), before the connection ends with GOAWAY ENHANCE_YOUR_CALM. Browsers
# send a handful of each.
H2_FLOOD_INTERVAL_S = 10.0
H2_MAX_RESETS = 100
H2_MAX_CONTROL_FRAMES = 1000
# policy: a response whose bytes wait on the peer's window, with none sent for this long, is reset
# (CANCEL): a window kept shut would otherwise hold the app and its buffered bytes forever.
H2_WINDOW_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolSettings:
    root_path: str = ""
    server_header: bool = True
    date_header: bool = True
    # HTTP/1.1: offer http.response.early_hint and send its 103 (--no-early-hints: not offered).
    early_hints: bool = True
    keep_alive_timeout_s: float = KEEP_ALIVE_TIMEOUT_S
    header_timeout_s: float = HEADER_TIMEOUT_S
    request_body_timeout_s: float | None = REQUEST_BODY_TIMEOUT_S
    linger_timeout_s: float = LINGER_TIMEOUT_S
    shutdown_idle_grace_s: float = SHUTDOWN_IDLE_GRACE_S
    max_header_bytes: int = MAX_HEADER_BYTES
    http_parser: str = HTTP_PARSER
    body_buffer_high_water_bytes: int = BODY_BUFFER_HIGH_WATER_BYTES
    discard_body_limit_bytes: int = DISCARD_BODY_LIMIT_BYTES
    # WebSocket: off serves upgrade requests as plain HTTP.
    ws_enabled: bool = True
    ws_max_size_bytes: int = WS_MAX_SIZE_BYTES
    ws_ping_interval_s: float | None = WS_PING_INTERVAL_S
    ws_ping_timeout_s: float | None = WS_PING_TIMEOUT_S
    ws_close_timeout_s: float = WS_CLOSE_TIMEOUT_S
    ws_per_message_deflate: bool = True
    ws_parser: str = WS_PARSER
    ws_max_frames_per_message: int = WS_MAX_FRAMES_PER_MESSAGE
    # HTTP/2: off, the preface and "Upgrade: h2c" are not recognised and ALPN offers HTTP/1.1.
    http2: bool = HTTP2
    h2_max_concurrent_streams: int = H2_MAX_CONCURRENT_STREAMS
    h2_max_header_list_bytes: int = H2_MAX_HEADER_LIST_BYTES
    h2_max_frame_bytes: int = H2_MAX_FRAME_BYTES
    h2_initial_window_bytes: int = H2_INITIAL_WINDOW_BYTES
    h2_flood_interval_s: float = H2_FLOOD_INTERVAL_S
    h2_max_resets: int = H2_MAX_RESETS
    h2_max_control_frames: int = H2_MAX_CONTROL_FRAMES
    h2_window_timeout_s: float = H2_WINDOW_TIMEOUT_S
    read_size_bytes: int = READ_SIZE_BYTES
    write_high_water_bytes: int = WRITE_HIGH_WATER_BYTES
    # Added to every response unless the app sent a header of the same name (--header).
    default_headers: tuple[tuple[bytes, bytes], ...] = ()
    # Peers whose X-Forwarded-*/Forwarded headers are believed; None: proxy headers are off.
    trusted_proxies: TrustedHosts | None = field(default=None, compare=False)
    # The server-wide count of running app calls (--limit-concurrency); None: no limit.
    admission: Admission | None = field(default=None, compare=False)
    # The lifespan ``state`` namespace; a shallow copy goes into every scope. None: unsupported.
    state: dict[str, Any] | None = field(default=None, compare=False)
