"""The ``sansio-asgi`` command line, with uvicorn's flag names and defaults where it has them."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn

from . import __version__
from .config import INTERFACES, LIFESPAN_CHOICES, WS_CHOICES, AppLoadError, Config, ConfigError
from .core.settings import (
    HEADER_TIMEOUT_S,
    KEEP_ALIVE_TIMEOUT_S,
    MAX_HEADER_BYTES,
    REQUEST_BODY_TIMEOUT_S,
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


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid number {value}: must be >= 0")
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
    add("--lifespan", choices=LIFESPAN_CHOICES, default="auto", help="run the ASGI lifespan")
    add(
        "--timeout-lifespan-startup",
        type=_seconds,
        default=60.0,
        help="lifespan startup must complete within this (default: 60)",
    )
    add(
        "--timeout-lifespan-shutdown",
        type=_seconds,
        default=60.0,
        help="lifespan shutdown must complete within this (default: 60)",
    )
    add(
        "--timeout-graceful-shutdown",
        type=_seconds,
        default=None,
        help="on shutdown, cancel what still runs after this (default: wait)",
    )
    add(
        "--timeout-request-body",
        type=_seconds,
        default=REQUEST_BODY_TIMEOUT_S,
        help="408 when a request body stops arriving for this long; 0: never "
        f"(default: {REQUEST_BODY_TIMEOUT_S:g})",
    )
    add("--limit-concurrency", type=_positive_int, default=None, help="503 beyond this many apps")
    add(
        "--limit-max-requests",
        type=_positive_int,
        default=None,
        help="stop gracefully after this many responses",
    )
    add(
        "--limit-max-requests-jitter",
        type=_non_negative_int,
        default=0,
        help="add a random 0..N to --limit-max-requests (default: 0)",
    )
    add(
        "--header",
        dest="headers",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="a default response header (repeatable)",
    )
    add(
        "--proxy-headers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="take client and scheme from X-Forwarded-*/Forwarded of trusted peers",
    )
    add(
        "--forwarded-allow-ips",
        default=None,
        metavar="LIST",
        help="trusted proxies: IPs, CIDR networks or * "
        "(default: $FORWARDED_ALLOW_IPS or 127.0.0.1,::1)",
    )
    add("--ssl-keyfile", default=None, metavar="PATH", help="TLS private key")
    add("--ssl-certfile", default=None, metavar="PATH", help="TLS certificate (chain)")
    add("--ssl-keyfile-password", default=None, metavar="TEXT", help="password of the key")
    add("--ssl-ca-certs", default=None, metavar="PATH", help="CA certificates for client certs")
    add(
        "--ssl-cert-reqs",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="client certificates: 0 none, 1 optional, 2 required (default: 0)",
    )
    add("--ssl-ciphers", default="TLSv1", help="OpenSSL cipher list (default: TLSv1)")
    add("--uds", default=None, metavar="PATH", help="bind to a Unix socket")
    add("--fd", type=_non_negative_int, default=None, help="serve the listening socket fd N")
    add("--log-level", choices=list(LOG_LEVELS), default="info", help="(default: info)")
    add("--log-config", default=None, metavar="PATH", help="logging config: .json, .yaml or .ini")
    add(
        "--access-log-format",
        default=None,
        metavar="FORMAT",
        help="gunicorn-style atoms, e.g. '%%(h)s \"%%(r)s\" %%(s)s %%(B)s %%(M)sms'",
    )
    add(
        "--use-colors",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="color the log (default: when stderr is a terminal)",
    )
    add("--access-log", action=argparse.BooleanOptionalAction, default=True, help="access log")
    add("--app-dir", default=".", help="look for APP in this directory (default: .)")
    add("--factory", action="store_true", help="APP is a factory: call it to get the app")
    add("--interface", choices=INTERFACES, default="auto", help="ASGI 3 or legacy ASGI 2")
    add("--no-server-header", action="store_true", help="do not send the server header")
    add("--no-date-header", action="store_true", help="do not send the date header")
    add("--version", action="version", version=f"sansio-asgi {__version__}")
    return parser


ENV_PREFIX = "SANSIO_ASGI_"


def apply_environment(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Defaults from ``SANSIO_ASGI_<FLAG>`` variables (``--ws-max-size``: SANSIO_ASGI_WS_MAX_SIZE);
    the command line still wins. A bad value is one line naming the variable."""
    defaults: dict[str, object] = {}
    for action in parser._actions:
        if action.dest in ("help", "version"):
            continue
        name = ENV_PREFIX + action.dest.upper()
        if action.dest == "headers":
            name = ENV_PREFIX + "HEADER"
        text = environ.get(name)
        if text is None:
            continue
        try:
            if isinstance(action, (argparse._StoreTrueAction, argparse.BooleanOptionalAction)):
                value: object = _boolean(text)
            elif isinstance(action, argparse._AppendAction):
                value = text.split()  # several values, separated by white space
            elif action.type is not None and callable(action.type):
                value = action.type(text)
            else:
                value = text
        except argparse.ArgumentTypeError as exc:
            parser.exit(2, f"{parser.prog}: error: {name}: {exc}\n")
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(map(str, action.choices))
            parser.exit(2, f"{parser.prog}: error: {name}: {text!r} is not one of {choices}\n")
        defaults[action.dest] = value
    parser.set_defaults(**defaults)


def config_from_args(args: argparse.Namespace) -> Config:
    options = {
        field.name: getattr(args, field.name)
        for field in dataclasses.fields(Config)
        if hasattr(args, field.name)
    }
    options["headers"] = tuple(args.headers)
    options["server_header"] = not args.no_server_header
    options["date_header"] = not args.no_date_header
    return Config(**options)


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    apply_environment(parser, os.environ)
    args = parser.parse_args(argv)
    config = config_from_args(args)
    try:
        configure_logging(
            config.log_level,
            access=config.access_log,
            access_format=config.access_log_format,
            use_colors=config.use_colors,
            log_config=config.log_config,
        )
    except ValueError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    server = Server(config)
    try:
        asyncio.run(server.serve())
    except AppLoadError as exc:
        error_log.error("Error loading ASGI app: %s", exc)
        sys.exit(1)
    except ConfigError as exc:
        error_log.error("%s", exc)
        sys.exit(1)
    except OSError as exc:
        where = config.uds or f"{config.host}:{config.port}"
        error_log.error("Could not bind to %s: %s", where, exc.strerror or exc)
        sys.exit(1)
    except KeyboardInterrupt:  # pragma: no cover - a second Ctrl+C during shutdown
        pass
    if server.exit_code:
        sys.exit(server.exit_code)
