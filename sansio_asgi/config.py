"""Settings in one frozen dataclass, and loading the application.

``Config`` carries every setting the command line and ``run()`` accept, with uvicorn's names
and defaults where uvicorn has the setting. ``Config.protocol_settings()`` hands the core the
part it needs; ``Config.load_app()`` imports the app (``module:attribute``, a factory, or the
built-in demo when no app is given).
"""

from __future__ import annotations

import importlib
import inspect
import os
import ssl
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from .core.limits import Admission
from .core.proxy import DEFAULT_TRUSTED, TrustedHosts
from .core.responses import validate_field
from .core.settings import (
    HEADER_TIMEOUT_S,
    KEEP_ALIVE_TIMEOUT_S,
    MAX_HEADER_BYTES,
    REQUEST_BODY_TIMEOUT_S,
    WS_MAX_SIZE_BYTES,
    WS_PING_INTERVAL_S,
    WS_PING_TIMEOUT_S,
    ProtocolSettings,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

INTERFACES = ("auto", "asgi3", "asgi2")
LIFESPAN_CHOICES = ("auto", "on", "off")
WS_CHOICES = ("auto", "wsproto", "none")


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

    def __post_init__(self) -> None:
        from .drivers import DRIVERS

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
        if self.ws not in WS_CHOICES:
            raise ValueError(f"ws must be one of {', '.join(WS_CHOICES)}")
        if self.ws_max_size <= 0:
            raise ValueError("ws_max_size must be positive")
        for name in (
            "timeout_keep_alive",
            "timeout_headers",
            "ws_ping_interval",
            "ws_ping_timeout",
        ):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative")

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
        context.set_alpn_protocols(["http/1.1"])
        return context

    def protocol_settings(
        self, state: dict[str, Any] | None = None, admission: Admission | None = None
    ) -> ProtocolSettings:
        return ProtocolSettings(
            root_path=self.root_path.rstrip("/"),
            server_header=self.server_header,
            date_header=self.date_header,
            keep_alive_timeout_s=self.timeout_keep_alive,
            header_timeout_s=self.timeout_headers,
            max_header_bytes=self.h11_max_incomplete_event_size,
            ws_enabled=self.ws != "none",
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
            from .demo import demo_app

            return demo_app
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
