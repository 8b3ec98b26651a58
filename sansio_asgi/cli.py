"""The ``sansio-asgi`` command line, with uvicorn's flag names and defaults where it has them."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import NoReturn

from . import __version__
from .config import (
    HTTP_CHOICES,
    INTERFACES,
    LIFESPAN_CHOICES,
    LOOP_CHOICES,
    RELOAD_WATCHERS,
    WS_CHOICES,
    Config,
    ConfigError,
    check_choice,
    check_range,
)
from .core.settings import (
    H2_INITIAL_WINDOW_BYTES,
    H2_MAX_CONCURRENT_STREAMS,
    H2_MAX_FRAME_BYTES,
    H2_MAX_HEADER_LIST_BYTES,
    HEADER_TIMEOUT_S,
    HTTP2,
    KEEP_ALIVE_TIMEOUT_S,
    MAX_HEADER_BYTES,
    REQUEST_BODY_TIMEOUT_S,
    WS_MAX_SIZE_BYTES,
    WS_PING_INTERVAL_S,
    WS_PING_TIMEOUT_S,
)
from .drivers import DRIVERS
from .logs import LOG_LEVELS, TRACE_FORMATS
from .reload import DEFAULT_EXCLUDES, DEFAULT_INCLUDES
from .supervisor import serve


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


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}: must be > 0")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}: must be > 0")
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


class _HelpFormatter(argparse.HelpFormatter):
    """Every flag's help ends with its default, unless the text already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.default is argparse.SUPPRESS:
            return text
        default = action.default
        if default is None or default == []:
            shown = "none"
        elif isinstance(default, bool):
            shown = str(default).lower()
        else:
            shown = str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


def _choice(name: str, choices: tuple[str, ...]) -> Callable[[str], str]:
    """A value among ``choices``; one line on what this server does instead otherwise."""

    def check(text: str) -> str:
        try:
            check_choice(name, text, choices)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc).partition(": ")[2]) from None
        return text

    return check


def _ranged(name: str) -> Callable[[str], int]:
    """A whole number within ``config.H2_RANGES[name]``; one line with the range otherwise."""

    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
        try:
            check_range(name, value)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(
                f"invalid number {str(exc).partition(' ')[2]}"
            ) from None
        return value

    return check


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sansio-asgi",
        description="Serve an ASGI application. With no APP, serves the built-in inspector.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument(
        "app", nargs="?", metavar="APP", help='the app, as "module:attribute" (default: inspector)'
    )
    parser.add_argument("--version", action="version", version=f"sansio-asgi {__version__}")

    add = parser.add_argument_group("binding").add_argument
    add("--host", default="127.0.0.1", help="bind to this address")
    add("--port", type=_port, default=8000, help="bind to this port; 0 picks a free one")
    add("--uds", default=None, metavar="PATH", help="bind to a Unix socket")
    add(
        "--fd",
        type=_non_negative_int,
        default=None,
        help="serve the listening socket fd N (systemd's LISTEN_FDS is honoured without it)",
    )
    add("--backlog", type=_positive_int, default=2048, help="listen backlog")

    add = parser.add_argument_group("protocol").add_argument
    add("--driver", choices=DRIVERS, default="asyncio", help="I/O driver")
    add(
        "--loop",
        type=_choice("loop", LOOP_CHOICES),
        default="auto",
        metavar="{auto,asyncio,uvloop}",
        help="event loop of either driver; auto: uvloop when installed",
    )
    add(
        "--http",
        type=_choice("http", HTTP_CHOICES),
        default="auto",
        metavar="{auto,h11}",
        help="HTTP/1.1 implementation: h11",
    )
    add(
        "--ws",
        type=_choice("ws", WS_CHOICES),
        default="auto",
        metavar="{auto,wsproto,none}",
        help="WebSocket support; none: plain HTTP",
    )
    add(
        "--h11-max-incomplete-event-size",
        type=_positive_int,
        default=MAX_HEADER_BYTES,
        help="largest request head in bytes; larger gets 431",
    )
    add(
        "--ws-max-size",
        type=_positive_int,
        default=WS_MAX_SIZE_BYTES,
        help="largest WebSocket message; larger closes with 1009",
    )
    add(
        "--ws-ping-interval",
        type=_seconds,
        default=WS_PING_INTERVAL_S,
        help="send a keepalive ping this often; 0: never",
    )
    add(
        "--ws-ping-timeout",
        type=_seconds,
        default=WS_PING_TIMEOUT_S,
        help="close with 1011 if a ping gets no pong in time",
    )
    add(
        "--ws-per-message-deflate",
        type=_boolean,
        nargs="?",
        const=True,
        default=True,
        metavar="BOOL",
        help="negotiate permessage-deflate compression",
    )
    add("--root-path", default="", help="the ASGI root_path: the prefix the app is mounted at")
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
    add(
        "--header",
        dest="headers",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="a default response header (repeatable)",
    )
    add("--no-server-header", action="store_true", help="do not send the server header")
    add("--no-date-header", action="store_true", help="do not send the date header")
    add(
        "--early-hints",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="offer http.response.early_hint (HTTP/1.1 and HTTP/2) and send its 103 Early Hints",
    )

    add = parser.add_argument_group("HTTP/2").add_argument
    add(
        "--http2",
        action=argparse.BooleanOptionalAction,
        default=HTTP2,
        help="serve HTTP/2: ALPN h2 under TLS, h2c by prior knowledge or Upgrade",
    )
    add(
        "--h2-max-concurrent-streams",
        type=_ranged("h2_max_concurrent_streams"),
        default=H2_MAX_CONCURRENT_STREAMS,
        metavar="N",
        help="streams (running apps) per connection; more are refused with REFUSED_STREAM",
    )
    add(
        "--h2-max-header-list-size",
        type=_ranged("h2_max_header_list_size"),
        default=H2_MAX_HEADER_LIST_BYTES,
        metavar="BYTES",
        help="largest decoded request header list; a larger one gets 431 on its stream",
    )
    add(
        "--h2-max-frame-size",
        type=_ranged("h2_max_frame_size"),
        default=H2_MAX_FRAME_BYTES,
        metavar="BYTES",
        help="largest frame the client may send (16384 to 16777215)",
    )
    add(
        "--h2-initial-window-size",
        type=_ranged("h2_initial_window_size"),
        default=H2_INITIAL_WINDOW_BYTES,
        metavar="BYTES",
        help="request body a stream may send before its app reads it",
    )

    add = parser.add_argument_group("timeouts (seconds)").add_argument
    add(
        "--timeout-keep-alive",
        type=_seconds,
        default=KEEP_ALIVE_TIMEOUT_S,
        help="close idle keep-alive connections after this",
    )
    add(
        "--timeout-headers",
        type=_seconds,
        default=HEADER_TIMEOUT_S,
        help="answer 408 when a request head takes longer",
    )
    add(
        "--timeout-request-body",
        type=_seconds,
        default=REQUEST_BODY_TIMEOUT_S,
        help="408 when a request body stops arriving for this long; 0: never",
    )
    add(
        "--timeout-lifespan-startup",
        type=_seconds,
        default=60.0,
        help="lifespan startup must complete within this",
    )
    add(
        "--timeout-lifespan-shutdown",
        type=_seconds,
        default=60.0,
        help="lifespan shutdown must complete within this",
    )
    add(
        "--timeout-graceful-shutdown",
        type=_seconds,
        default=None,
        help="on shutdown, cancel what still runs after this (default: wait)",
    )
    add(
        "--timeout-worker-healthcheck",
        type=_positive_seconds,
        default=5.0,
        help="a worker whose event loop is silent this long is killed and replaced",
    )
    add(
        "--timeout-notify",
        type=_positive_seconds,
        default=30.0,
        help="a new worker must load its app and start its loop within this",
    )

    add = parser.add_argument_group("limits").add_argument
    add("--limit-concurrency", type=_positive_int, default=None, help="503 beyond this many apps")
    add(
        "--limit-max-requests",
        type=_positive_int,
        default=None,
        help="stop gracefully after this many responses (a worker is replaced first)",
    )
    add(
        "--limit-max-requests-jitter",
        type=_non_negative_int,
        default=0,
        help="add a random 0..N to --limit-max-requests",
    )

    add = parser.add_argument_group("processes").add_argument
    add(
        "--workers",
        type=_positive_int,
        default=None,
        metavar="N",
        help="worker processes (default: $WEB_CONCURRENCY or 1)",
    )
    add(
        "--workers-max-rss",
        type=_positive_float,
        default=None,
        metavar="MiB",
        help="replace a worker whose resident memory grows above this",
    )
    add("--reload", action="store_true", help="restart when files change (development)")
    add(
        "--reload-dir",
        dest="reload_dirs",
        action="append",
        default=[],
        metavar="PATH",
        help="watch this directory (repeatable; default: the current directory)",
    )
    add(
        "--reload-include",
        dest="reload_includes",
        action="append",
        default=[],
        metavar="GLOB",
        help=f"also watch files matching this (repeatable; always {' '.join(DEFAULT_INCLUDES)})",
    )
    add(
        "--reload-exclude",
        dest="reload_excludes",
        action="append",
        default=[],
        metavar="GLOB",
        help=f"ignore files and directories matching this (repeatable; always "
        f"{' '.join(DEFAULT_EXCLUDES)})",
    )
    add(
        "--reload-delay",
        type=_positive_float,
        default=0.25,
        help="seconds between checks (polling) or of quiet before a restart (watchfiles)",
    )
    add(
        "--reload-watcher",
        choices=RELOAD_WATCHERS,
        default="auto",
        help="auto: watchfiles when installed, else poll",
    )

    add = parser.add_argument_group("logging").add_argument
    add("--log-level", choices=list(LOG_LEVELS), default="info", help="the error log's level")
    add("--log-config", default=None, metavar="PATH", help="logging config: .json, .yaml or .ini")
    add("--access-log", action=argparse.BooleanOptionalAction, default=True, help="access log")
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
    add(
        "--trace-format",
        choices=TRACE_FORMATS,
        default="text",
        help="json: every log line a JSON object (the trace with its data, for tools)",
    )

    add = parser.add_argument_group("TLS").add_argument
    add("--ssl-keyfile", default=None, metavar="PATH", help="TLS private key")
    add("--ssl-certfile", default=None, metavar="PATH", help="TLS certificate (chain)")
    add("--ssl-keyfile-password", default=None, metavar="TEXT", help="password of the key")
    add("--ssl-ca-certs", default=None, metavar="PATH", help="CA certificates for client certs")
    add(
        "--ssl-cert-reqs",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="client certificates: 0 none, 1 optional, 2 required",
    )
    add("--ssl-ciphers", default="TLSv1", help="OpenSSL cipher list")

    add = parser.add_argument_group("application").add_argument
    add("--app-dir", default=".", help="look for APP in this directory")
    add("--factory", action="store_true", help="APP is a factory: call it to get the app")
    add("--interface", choices=INTERFACES, default="auto", help="ASGI 3 or legacy ASGI 2")
    add(
        "--lifespan",
        choices=LIFESPAN_CHOICES,
        default="auto",
        help="run the ASGI lifespan; on: its failure stops the server",
    )
    add(
        "--env-file",
        default=None,
        metavar="PATH",
        help="set environment variables from this dotenv file (already set ones win)",
    )
    return parser


ENV_PREFIX = "SANSIO_ASGI_"


def apply_environment(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Defaults from ``SANSIO_ASGI_<FLAG>`` variables (``--ws-max-size``: SANSIO_ASGI_WS_MAX_SIZE;
    a repeatable flag takes several values separated by white space); the command line still
    wins. A bad value is one line naming the variable."""
    defaults: dict[str, object] = {}
    for action in parser._actions:
        if action.dest in ("help", "version"):
            continue
        flag = action.option_strings[0] if action.option_strings else action.dest
        name = ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()
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
    try:
        config = config_from_args(args)
        config.configure_logging()
    except ValueError as exc:  # ConfigError too: settings that cannot work together
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    try:
        code = serve(config)
    except KeyboardInterrupt:  # pragma: no cover - a second Ctrl+C during shutdown
        code = 0
    if code:
        sys.exit(code)
