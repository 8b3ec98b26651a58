"""Settings in one frozen dataclass, and loading the application.

``Config`` carries every setting the command line and ``run()`` accept, with uvicorn's names
and defaults where uvicorn has the setting. ``Config.protocol_settings()`` hands the core the
part it needs; ``Config.load_app()`` imports the app (``module:attribute``, a factory, or the
built-in inspector when no app is given). ``load_env_file()`` reads ``--env-file`` (dotenv syntax).

Settings that cannot work together are refused on construction with a one-line ``ConfigError``:
``--reload`` with ``--workers`` > 1, an app *object* with workers or reload (a worker is a new
process: only an import string can be sent to it), and the flag values uvicorn has that mean
nothing here (``--http httptools``, ``--ws websockets``).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import os
import re
import ssl
import sys
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from dataclasses import dataclass
from typing import Any

from .core.limits import Admission
from .core.proxy import DEFAULT_TRUSTED, TrustedHosts
from .core.responses import validate_field
from .core.settings import (
    H2_INITIAL_WINDOW_BYTES,
    H2_MAX_CONCURRENT_STREAMS,
    H2_MAX_FRAME_BYTES,
    H2_MAX_HEADER_LIST_BYTES,
    HEADER_TIMEOUT_S,
    HTTP2,
    HTTP_PARSER,
    KEEP_ALIVE_TIMEOUT_S,
    MAX_HEADER_BYTES,
    REQUEST_BODY_TIMEOUT_S,
    WS_MAX_SIZE_BYTES,
    WS_PARSER,
    WS_PING_INTERVAL_S,
    WS_PING_TIMEOUT_S,
    ProtocolSettings,
)
from .logs import TRACE_FORMATS, configure_logging

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

INTERFACES = ("auto", "asgi3", "asgi2")
LIFESPAN_CHOICES = ("auto", "on", "off")
WS_CHOICES = ("auto", "wsproto", "none")
HTTP_CHOICES = ("auto", "h11")
LOOP_CHOICES = ("auto", "asyncio", "uvloop")
RELOAD_WATCHERS = ("auto", "watchfiles", "poll")

# What uvicorn users may type that this server does differently: one line each, saying what
# it does instead.
_REFUSED = {
    "http": "this server parses HTTP/1.1 with h11 (and a fast path checked against h11); "
    "use --http auto or h11",
    "ws": "this server speaks WebSocket through wsproto; use --ws auto, wsproto or none",
}

# The HTTP/2 settings' ranges: (smallest, largest, why). Each goes out as a SETTINGS value,
# 32 bits on the wire (RFC 9113 §6.5.1).
H2_RANGES: dict[str, tuple[int, int, str]] = {
    "h2_max_concurrent_streams": (1, 2**32 - 1, "0 would refuse every request"),
    "h2_max_header_list_size": (1024, 2**32 - 1, "below 1 KiB no browser's request fits"),
    # RFC 9113 §6.5.2: "The value advertised by an endpoint MUST be between this initial value
    # and the maximum allowed frame size (2^24-1 or 16,777,215 octets), inclusive."
    "h2_max_frame_size": (16_384, 16_777_215, "RFC 9113 §6.5.2"),
    # RFC 9113 §6.5.2: "Values above the maximum flow-control window size of 2^31-1 MUST be
    # treated as a connection error". 0 is legal, but the core opens a stream's window as its
    # app reads, and no app can read a body the client may not send.
    "h2_initial_window_size": (1, 2**31 - 1, "RFC 9113 §6.5.2; 0 would stall every body"),
}

# systemd socket activation (sd_listen_fds(3)): the first passed socket is fd 3.
SD_LISTEN_FDS_START = 3


class AppLoadError(Exception):
    """The application could not be imported; the message is one line for the user."""


class ConfigError(ValueError):
    """A setting is unusable (a certificate that does not load, a bad header); one line."""


@dataclass(frozen=True, kw_only=True)
class Config:
    app: ASGIApp | str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    driver: str = "asyncio"
    backlog: int = 2048
    root_path: str = ""
    timeout_keep_alive: float = KEEP_ALIVE_TIMEOUT_S
    timeout_headers: float = HEADER_TIMEOUT_S
    h11_max_incomplete_event_size: int = MAX_HEADER_BYTES
    server_header: bool = True
    date_header: bool = True
    early_hints: bool = True
    # HTTP/2: on ALPN h2, the preface (prior knowledge) and Upgrade: h2c; off serves HTTP/1.1.
    http2: bool = HTTP2
    h2_max_concurrent_streams: int = H2_MAX_CONCURRENT_STREAMS
    h2_max_header_list_size: int = H2_MAX_HEADER_LIST_BYTES
    h2_max_frame_size: int = H2_MAX_FRAME_BYTES
    h2_initial_window_size: int = H2_INITIAL_WINDOW_BYTES
    log_level: str = "info"
    access_log: bool = True
    app_dir: str = "."
    factory: bool = False
    interface: str = "auto"
    ws: str = "auto"
    ws_max_size: int = WS_MAX_SIZE_BYTES
    ws_ping_interval: float | None = WS_PING_INTERVAL_S
    ws_ping_timeout: float | None = WS_PING_TIMEOUT_S
    ws_per_message_deflate: bool = True
    lifespan: str = "auto"
    timeout_lifespan_startup: float = 60.0
    timeout_lifespan_shutdown: float = 60.0
    timeout_graceful_shutdown: float | None = None
    timeout_request_body: float = REQUEST_BODY_TIMEOUT_S
    limit_concurrency: int | None = None
    limit_max_requests: int | None = None
    limit_max_requests_jitter: int = 0
    headers: tuple[str, ...] = ()
    proxy_headers: bool = True
    forwarded_allow_ips: str | None = None
    ssl_keyfile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile_password: str | None = None
    ssl_ca_certs: str | None = None
    ssl_cert_reqs: int = int(ssl.CERT_NONE)
    ssl_ciphers: str = "TLSv1"
    uds: str | None = None
    fd: int | None = None
    access_log_format: str | None = None
    use_colors: bool | None = None
    log_config: str | None = None
    trace_format: str = "text"
    env_file: str | None = None
    loop: str = "auto"
    http: str = "auto"
    # Processes: None takes $WEB_CONCURRENCY, else 1 (as uvicorn).
    workers: int | None = None
    timeout_notify: float = 30.0
    timeout_worker_healthcheck: float = 5.0
    workers_max_rss: float | None = None
    reload: bool = False
    reload_dirs: tuple[str, ...] = ()
    reload_includes: tuple[str, ...] = ()
    reload_excludes: tuple[str, ...] = ()
    reload_delay: float = 0.25
    reload_watcher: str = "auto"

    def __post_init__(self) -> None:
        from .drivers import DRIVERS

        self._check_processes()
        check_choice("http", self.http, HTTP_CHOICES)
        check_choice("ws", self.ws, WS_CHOICES)
        check_choice("loop", self.loop, LOOP_CHOICES)
        check_choice("reload_watcher", self.reload_watcher, RELOAD_WATCHERS)
        check_choice("trace_format", self.trace_format, TRACE_FORMATS)
        if self.loop == "uvloop":
            try:  # imported, not just found: a broken install fails here, not mid-start
                importlib.import_module("uvloop")
            except ImportError:
                raise ConfigError(
                    "--loop uvloop: uvloop is not installed (pip install uvloop)"
                ) from None
        if self.driver not in DRIVERS:
            raise ValueError(f"driver must be one of {', '.join(DRIVERS)}, got {self.driver!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be from 0 to 65535, got {self.port}")
        if self.interface not in INTERFACES:
            raise ValueError(f"interface must be one of {', '.join(INTERFACES)}")
        if self.lifespan not in LIFESPAN_CHOICES:
            raise ValueError(f"lifespan must be one of {', '.join(LIFESPAN_CHOICES)}")
        for name in ("limit_concurrency", "limit_max_requests"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive")
        if self.ws_max_size <= 0:
            raise ValueError("ws_max_size must be positive")
        for name in H2_RANGES:
            check_range(name, getattr(self, name))
        for name in (
            "timeout_keep_alive",
            "timeout_headers",
            "ws_ping_interval",
            "ws_ping_timeout",
        ):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative")
        for name in (
            "timeout_notify",
            "timeout_worker_healthcheck",
            "workers_max_rss",
            "reload_delay",  # 0 would rescan the tree in a busy loop
        ):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be positive")

    def _check_processes(self) -> None:
        """Resolve ``workers`` and the reload lists; refuse what cannot work together."""
        for name in ("reload_dirs", "reload_includes", "reload_excludes"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            object.__setattr__(self, name, tuple(value))
        workers = self.workers
        if workers is None:
            # $WEB_CONCURRENCY sizes production; --reload is development and runs one worker.
            text = os.environ.get("WEB_CONCURRENCY")
            workers = 1
            if text and not self.reload:
                try:
                    workers = int(text)
                except ValueError:
                    raise ConfigError(f"WEB_CONCURRENCY={text!r}: not a number") from None
        if workers < 1:
            raise ConfigError(f"workers must be at least 1, got {workers}")
        object.__setattr__(self, "workers", workers)
        if self.reload and workers > 1:
            raise ConfigError(
                f"--reload runs one worker, restarted on changes: it cannot be used with "
                f"--workers {workers}"
            )
        if (self.reload or workers > 1) and self.app is not None and not isinstance(self.app, str):
            mode = "reload=True" if self.reload else f"workers={workers}"
            raise ConfigError(
                f"{mode} needs the app as an import string such as 'main:app': an app object "
                "cannot be sent to a new process"
            )

    @property
    def worker_count(self) -> int:
        return self.workers or 1

    def listen_fd(self) -> int | None:
        """``--fd``, else the socket systemd passed by socket activation: ``LISTEN_FDS`` set and
        ``LISTEN_PID`` this process (sd_listen_fds(3): "the passed file descriptors start at 3")."""
        if self.fd is not None:
            return self.fd
        if os.environ.get("LISTEN_PID") != str(os.getpid()):
            return None
        try:
            count = int(os.environ.get("LISTEN_FDS", "0"))
        except ValueError:
            return None
        return SD_LISTEN_FDS_START if count >= 1 else None

    def loop_factory(self) -> Callable[[], asyncio.AbstractEventLoop] | None:
        """The event loop to run on: uvloop's for ``--loop uvloop``, and for ``auto`` when it is
        installed; None for asyncio's own. It is the loop of both drivers (the selectors driver
        runs its apps there)."""
        if self.loop == "asyncio":
            return None
        try:
            uvloop = importlib.import_module("uvloop")
        except ImportError:
            if self.loop == "uvloop":
                raise ConfigError("--loop uvloop: uvloop is not installed") from None
            return None
        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory

    def run_loop(self, main: Coroutine[Any, Any, None]) -> None:
        """``asyncio.run(main)`` on the loop ``--loop`` chose."""
        factory = self.loop_factory()
        if factory is None:
            asyncio.run(main)
        elif sys.version_info >= (3, 11):
            with asyncio.Runner(loop_factory=factory) as runner:
                runner.run(main)
        else:  # pragma: no cover - Python 3.10
            loop = factory()
            try:
                asyncio.set_event_loop(loop)
                loop.run_until_complete(main)
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    def default_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """``--header NAME:VALUE`` as header pairs; a bad one raises ``ConfigError``."""
        pairs = []
        for header in self.headers:
            name, sep, value = header.partition(":")
            name, value = name.strip(), value.strip()
            if not sep or not name:
                raise ConfigError(f"--header {header!r}: expected NAME:VALUE")
            try:
                pair = (name.lower().encode("ascii"), value.encode("latin-1"))
            except UnicodeEncodeError:
                raise ConfigError(f"--header {header!r}: not a valid header") from None
            if not validate_field(*pair):
                raise ConfigError(f"--header {header!r}: not a valid header (RFC 9110 §5)")
            pairs.append(pair)
        return tuple(pairs)

    def trusted_proxies(self) -> TrustedHosts | None:
        if not self.proxy_headers:
            return None
        spec = self.forwarded_allow_ips
        if spec is None:
            spec = os.environ.get("FORWARDED_ALLOW_IPS", DEFAULT_TRUSTED)
        try:
            return TrustedHosts(spec)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for ``--ssl-certfile``; a bad file raises ``ConfigError``."""
        if self.ssl_certfile is None:
            if self.ssl_keyfile is not None:
                raise ConfigError("--ssl-keyfile needs --ssl-certfile")
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile, self.ssl_keyfile_password)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"--ssl-certfile {self.ssl_certfile!r} / --ssl-keyfile "
                f"{self.ssl_keyfile!r}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
        context.verify_mode = ssl.VerifyMode(self.ssl_cert_reqs)
        if self.ssl_ca_certs:
            try:
                context.load_verify_locations(self.ssl_ca_certs)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"--ssl-ca-certs {self.ssl_ca_certs!r}: {exc}") from None
        if self.ssl_ciphers:
            try:
                context.set_ciphers(self.ssl_ciphers)
            except ssl.SSLError:
                raise ConfigError(
                    f"--ssl-ciphers {self.ssl_ciphers!r}: no cipher matches"
                ) from None
        # RFC 7301 §3.2: the server selects "the most highly preferred protocol that it
        # supports and that is also advertised by the client": HTTP/2 first.
        context.set_alpn_protocols(["h2", "http/1.1"] if self.http2 else ["http/1.1"])
        if self.http2:
            # RFC 9113 §9.2.1: "A deployment of HTTP/2 over TLS 1.2 MUST disable
            # renegotiation."
            context.options |= ssl.OP_NO_RENEGOTIATION
        return context

    def configure_logging(self) -> None:
        """Set the loggers up as ``--log-level``, ``--access-log``, ``--access-log-format``,
        ``--use-colors``, ``--log-config`` and ``--trace-format`` say."""
        configure_logging(
            self.log_level,
            access=self.access_log,
            access_format=self.access_log_format,
            use_colors=self.use_colors,
            log_config=self.log_config,
            trace_format=self.trace_format,
        )

    def protocol_settings(
        self, state: dict[str, Any] | None = None, admission: Admission | None = None
    ) -> ProtocolSettings:
        return ProtocolSettings(
            root_path=self.root_path.rstrip("/"),
            server_header=self.server_header,
            date_header=self.date_header,
            early_hints=self.early_hints,
            http2=self.http2,
            h2_max_concurrent_streams=self.h2_max_concurrent_streams,
            h2_max_header_list_bytes=self.h2_max_header_list_size,
            h2_max_frame_bytes=self.h2_max_frame_size,
            h2_initial_window_bytes=self.h2_initial_window_size,
            keep_alive_timeout_s=self.timeout_keep_alive,
            header_timeout_s=self.timeout_headers,
            max_header_bytes=self.h11_max_incomplete_event_size,
            http_parser="h11" if self.http == "h11" else HTTP_PARSER,
            ws_enabled=self.ws != "none",
            ws_parser="wsproto" if self.ws == "wsproto" else WS_PARSER,
            ws_max_size_bytes=self.ws_max_size,
            # 0 turns keepalive pings (or their timeout) off, as with uvicorn.
            ws_ping_interval_s=self.ws_ping_interval or None,
            ws_ping_timeout_s=self.ws_ping_timeout or None,
            ws_per_message_deflate=self.ws_per_message_deflate,
            request_body_timeout_s=self.timeout_request_body or None,
            default_headers=self.default_headers(),
            trusted_proxies=self.trusted_proxies(),
            admission=admission,
            state=state,
        )

    def load_app(self) -> ASGIApp:
        """The ASGI 3 application to serve; raises ``AppLoadError`` with a one-line reason."""
        app: Any = self.app
        if app is None:
            from .inspector import Inspector

            return Inspector()
        if isinstance(app, str):
            app = import_from_string(app, self.app_dir)
        if self.factory:
            try:
                app = app()
            except Exception as exc:
                raise AppLoadError(f"the app factory raised {type(exc).__name__}: {exc}") from exc
        if not callable(app):
            raise AppLoadError(f"the app is not callable: {app!r:.80}")
        interface = self.interface
        if interface == "auto":
            interface = "asgi3" if _is_asgi3(app) else "asgi2"
        if interface == "asgi2":
            return ASGI2Adapter(app)
        return app  # type: ignore[no-any-return]


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """A ``ConfigError`` naming the flag, and what this server does instead where it knows."""
    if value in choices:
        return
    flag = "--" + name.replace("_", "-")
    reason = _REFUSED.get(name, f"choose from {', '.join(choices)}")
    raise ConfigError(f"{flag} {value}: {reason}")


def check_range(name: str, value: int) -> None:
    """A ``ConfigError`` naming the flag when ``value`` is outside ``H2_RANGES[name]``."""
    low, high, why = H2_RANGES[name]
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return
    flag = "--" + name.replace("_", "-")
    raise ConfigError(f"{flag} {value!r}: must be from {low} to {high} ({why})")


def load_env_file(path: str) -> dict[str, str]:
    """Read ``--env-file`` into ``os.environ``; variables already set win (as python-dotenv's
    ``load_dotenv``). python-dotenv reads it when installed, else ``parse_env``."""
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as exc:
        raise ConfigError(f"--env-file {path!r}: {exc.strerror or exc}") from None
    try:
        dotenv = importlib.import_module("dotenv")
    except ImportError:
        values = parse_env(text)
    else:  # pragma: no cover - python-dotenv is not in the test set
        parsed = dotenv.dotenv_values(path)
        values = {key: value for key, value in parsed.items() if value is not None}
    for key, value in values.items():
        os.environ.setdefault(key, value)
    return values


_ENV_KEY = re.compile(r"[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.]*)[ \t]*=[ \t]*")
_ENV_VALUE = re.compile(r"""'((?:\\'|[^'])*)'|"((?:\\"|[^"])*)"|([^\r\n]*)""", re.DOTALL)
_ENV_REST = re.compile(r"[ \t]*(?:#[^\r\n]*)?(?:\r?\n|$)")
_ENV_EXPAND = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_ENV_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "'": "'"}


def parse_env(text: str) -> dict[str, str]:
    """The dotenv format, as python-dotenv reads it: ``KEY=VALUE`` lines, an optional
    ``export`` prefix, ``#`` comments (after an unquoted value: after white space), single
    quotes taken literally, double quotes with ``\\n``-style escapes and several lines, and
    ``${VAR}`` / ``${VAR:-default}`` expanded outside single quotes. A line that is none of
    these is skipped."""
    values: dict[str, str] = {}
    position = 0
    while position < len(text):
        key_match = _ENV_KEY.match(text, position)
        if key_match is None:  # a comment, a blank line, or not an assignment: skip the line
            end = text.find("\n", position)
            position = len(text) if end < 0 else end + 1
            continue
        value_match = _ENV_VALUE.match(text, key_match.end())
        assert value_match is not None  # the unquoted branch matches anything
        single, double, bare = value_match.groups()
        rest = _ENV_REST.match(text, value_match.end())
        if rest is None:  # text after a closing quote: skip the line, as python-dotenv does
            end = text.find("\n", value_match.end())
            position = len(text) if end < 0 else end + 1
            continue
        position = rest.end()
        key = key_match.group(1)
        if single is not None:
            value = re.sub(r"\\([\\'])", r"\1", single)
        elif double is not None:
            value = re.sub(r"\\(.)", lambda m: _ENV_ESCAPES.get(m[1], m[0]), double)
            value = _expand(value, values)
        else:
            value = _expand(re.split(r"[ \t]+#", bare, maxsplit=1)[0].strip(), values)
        values[key] = value
    return values


def _expand(value: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name, default = match[1], match[2]
        found = os.environ.get(name, values.get(name))
        return found if found else (default or "")

    return _ENV_EXPAND.sub(one, value)


def import_from_string(import_string: str, app_dir: str = ".") -> Any:
    module_name, _, attrs = import_string.partition(":")
    if not module_name or not attrs:
        raise AppLoadError(
            f'import string "{import_string}" must be in the form "module:attribute"'
        )
    if app_dir and app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name and not module_name.startswith(f"{exc.name}."):
            raise AppLoadError(f'importing module "{module_name}" failed: {exc}') from exc
        raise AppLoadError(f'could not import module "{module_name}"') from exc
    except Exception as exc:
        raise AppLoadError(
            f'importing module "{module_name}" raised {type(exc).__name__}: {exc}'
        ) from exc
    instance: Any = module
    try:
        for attr in attrs.split("."):
            instance = getattr(instance, attr)
    except AttributeError:
        raise AppLoadError(f'attribute "{attrs}" not found in module "{module_name}"') from None
    return instance


def _is_asgi3(app: Any) -> bool:
    if inspect.isclass(app):
        return hasattr(app, "__await__")
    if inspect.isfunction(app):
        return inspect.iscoroutinefunction(app)
    call = getattr(app, "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(call)


class ASGI2Adapter:
    """Serves a legacy ASGI 2 ``app(scope)`` -> ``instance(receive, send)`` (ASGI spec, Legacy
    Applications)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        instance = self.app(scope)
        await instance(receive, send)
