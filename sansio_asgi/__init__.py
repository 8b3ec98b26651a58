"""sansio-asgi: a pure-Python ASGI server whose protocol logic is a sans-IO state machine."""

from __future__ import annotations

from typing import Any

from .config import ASGIApp, Config, ConfigError
from .server import Server

__all__ = ["Config", "Server", "run"]
__version__ = "0.1.0"


def run(app: ASGIApp | str | None = None, **options: Any) -> None:
    """Serve ``app`` (an ASGI app, or ``"module:attribute"``) until Ctrl+C or SIGTERM.

    ``options`` are ``Config`` fields: ``host``, ``port``, ``driver``, ``workers``, ``reload``,
    ... Workers and reload start new processes, which import the app again: they need the app as
    an import string, and (as any ``spawn``-started process) a script that calls ``run()`` under
    ``if __name__ == "__main__":``. A setting the server cannot use ends the process with one
    line on stderr and exit code 1; so does an app that does not load.
    """
    from .supervisor import serve

    try:
        config = Config(app=app, **options)
    except ConfigError as exc:
        raise SystemExit(f"sansio-asgi: error: {exc}") from None
    config.configure_logging()
    code = serve(config)
    if code:
        raise SystemExit(code)
