"""sansio-asgi: a pure-Python ASGI server whose protocol logic is a sans-IO state machine."""

from __future__ import annotations

import asyncio
from typing import Any

from .config import ASGIApp, Config
from .server import Server

__all__ = ["Config", "Server", "run"]
__version__ = "0.1.0"


def run(app: ASGIApp | str | None = None, **options: Any) -> None:
    """Serve ``app`` (an ASGI app, or ``"module:attribute"``) until Ctrl+C or SIGTERM.

    ``options`` are ``Config`` fields: ``host``, ``port``, ``driver``, ``root_path``, ...
    """
    from .logs import configure_logging

    config = Config(app=app, **options)
    configure_logging(
        config.log_level,
        access=config.access_log,
        access_format=config.access_log_format,
        use_colors=config.use_colors,
        log_config=config.log_config,
    )
    server = Server(config)
    asyncio.run(server.serve())
    if server.exit_code:
        raise SystemExit(server.exit_code)
