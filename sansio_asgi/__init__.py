"""sansio-asgi: a pure-Python ASGI server whose protocol logic is a sans-IO state machine.

``Config``, ``ConfigError`` and ``Server`` are imported on first use (PEP 562): importing a
module of the package that needs none of them (``sansio_asgi.conformance``, whose pytest plugin
loads in every pytest run where sansio-asgi is installed) imports neither the core nor ``logs``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import ASGIApp, Config, ConfigError
    from .server import Server

__all__ = ["Config", "ConfigError", "Server", "run"]
__version__ = "0.1.0"

# The names imported on first use, and the module each comes from.
_LAZY = {"ASGIApp": ".config", "Config": ".config", "ConfigError": ".config", "Server": ".server"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def run(app: ASGIApp | str | None = None, **options: Any) -> None:
    """Serve ``app`` (an ASGI app, or ``"module:attribute"``) until Ctrl+C or SIGTERM.

    ``options`` are ``Config`` fields: ``host``, ``port``, ``driver``, ``workers``, ``reload``,
    ... Workers and reload start new processes, which import the app again: they need the app as
    an import string, and (as any ``spawn``-started process) a script that calls ``run()`` under
    ``if __name__ == "__main__":``. A setting the server cannot use ends the process with one
    line on stderr and exit code 1; so does an app that does not load.
    """
    from .config import Config, ConfigError
    from .supervisor import serve

    try:
        config = Config(app=app, **options)
    except ConfigError as exc:
        raise SystemExit(f"sansio-asgi: error: {exc}") from None
    config.configure_logging()
    code = serve(config)
    if code:
        raise SystemExit(code)
