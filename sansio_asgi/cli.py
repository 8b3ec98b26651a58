"""The ``sansio-asgi`` command line, with uvicorn's flag names and defaults where it has them."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import NoReturn

from . import __version__
from .config import INTERFACES, WS_CHOICES, AppLoadError, Config
from .core.settings import (
    HEADER_TIMEOUT_S,
    KEEP_ALIVE_TIMEOUT_S,
    MAX_HEADER_BYTES,
    WS_MAX_SIZE_BYTES,
    WS_PING_INTERVAL_S,
    WS_PING_TIMEOUT_S,
)
from .drivers import DRIVERS
from .logs import LOG_LEVELS, configure_logging, error_log
from .server import Server


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line naming the flag, then exit 2 (no usage dump)."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: not a number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {value}: must be from 0 to 65535")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}: must be >= 0")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"invalid number {value}: must be > 0")
    return value


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r}: use true or false")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sansio-asgi",
        description="Serve an ASGI application. With no APP, serves the built-in demo app.",
    )
    add = parser.add_argument
    add("app", nargs="?", metavar="APP", help='the app, as "module:attribute" (default: demo)')
    add("--host", default="127.0.0.1", help="bind to this address (default: 127.0.0.1)")
    add("--port", type=_port, default=8000, help="bind to this port; 0 picks a free one")
    add("--driver", choices=DRIVERS, default="asyncio", help="I/O driver (default: asyncio)")
    add("--backlog", type=_positive_int, default=2048, help="listen backlog (default: 2048)")
    add("--root-path", default="", help="the ASGI root_path: the prefix the app is mounted at")
    add(
        "--timeout-keep-alive",
        type=_seconds,
        default=KEEP_ALIVE_TIMEOUT_S,
        help=f"close idle keep-alive connections after this (default: {KEEP_ALIVE_TIMEOUT_S:g})",
    )
    add(
        "--timeout-headers",
        type=_seconds,
        default=HEADER_TIMEOUT_S,
        help=f"answer 408 when a request head takes longer (default: {HEADER_TIMEOUT_S:g})",
    )
    add(
        "--h11-max-incomplete-event-size",
        type=_positive_int,
        default=MAX_HEADER_BYTES,
        help=f"largest request head in bytes; larger gets 431 (default: {MAX_HEADER_BYTES})",
    )
    add("--ws", choices=WS_CHOICES, default="auto", help="WebSocket support; none: plain HTTP")
    add(
        "--ws-max-size",
        type=_positive_int,
        default=WS_MAX_SIZE_BYTES,
        help=f"largest WebSocket message; larger closes with 1009 (default: {WS_MAX_SIZE_BYTES})",
    )
    add(
        "--ws-ping-interval",
        type=_seconds,
        default=WS_PING_INTERVAL_S,
        help=f"send a keepalive ping this often; 0: never (default: {WS_PING_INTERVAL_S:g})",
    )
    add(
        "--ws-ping-timeout",
        type=_seconds,
        default=WS_PING_TIMEOUT_S,
        help=f"close with 1011 if a ping gets no pong in time (default: {WS_PING_TIMEOUT_S:g})",
    )
    add(
        "--ws-per-message-deflate",
        type=_boolean,
        nargs="?",
        const=True,
        default=True,
        metavar="BOOL",
        help="negotiate permessage-deflate compression (default: true)",
    )
    add("--log-level", choices=list(LOG_LEVELS), default="info", help="(default: info)")
    add("--access-log", action=argparse.BooleanOptionalAction, default=True, help="access log")
    add("--app-dir", default=".", help="look for APP in this directory (default: .)")
    add("--factory", action="store_true", help="APP is a factory: call it to get the app")
    add("--interface", choices=INTERFACES, default="auto", help="ASGI 3 or legacy ASGI 2")
    add("--no-server-header", action="store_true", help="do not send the server header")
    add("--no-date-header", action="store_true", help="do not send the date header")
    add("--version", action="version", version=f"sansio-asgi {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    config = Config(
        app=args.app,
        host=args.host,
        port=args.port,
        driver=args.driver,
        backlog=args.backlog,
        root_path=args.root_path,
        timeout_keep_alive=args.timeout_keep_alive,
        timeout_headers=args.timeout_headers,
        h11_max_incomplete_event_size=args.h11_max_incomplete_event_size,
        server_header=not args.no_server_header,
        date_header=not args.no_date_header,
        log_level=args.log_level,
        access_log=args.access_log,
        app_dir=args.app_dir,
        factory=args.factory,
        interface=args.interface,
        ws=args.ws,
        ws_max_size=args.ws_max_size,
        ws_ping_interval=args.ws_ping_interval,
        ws_ping_timeout=args.ws_ping_timeout,
        ws_per_message_deflate=args.ws_per_message_deflate,
    )
    configure_logging(config.log_level, access=config.access_log)
    try:
        asyncio.run(Server(config).serve())
    except AppLoadError as exc:
        error_log.error("Error loading ASGI app: %s", exc)
        sys.exit(1)
    except OSError as exc:
        error_log.error("Could not bind to %s:%s: %s", config.host, config.port, exc.strerror)
        sys.exit(1)
    except KeyboardInterrupt:  # pragma: no cover - a second Ctrl+C during shutdown
        pass
