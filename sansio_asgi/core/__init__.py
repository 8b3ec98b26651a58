"""The sans-IO core: bytes and ASGI messages in, bytes, ASGI messages and driver events out.

No sockets, no event loop, no threads, no clock: time is always an argument.
"""

from .cycle import HTTPCycle
from .errors import (
    ASGIProtocolError,
    ClientDisconnected,
    ContentLengthExceeded,
    ContentLengthMismatch,
)
from .protocol import Cycle, ServerProtocol
from .settings import ProtocolSettings
from .websocket import WebSocketCycle

__all__ = [
    "ASGIProtocolError",
    "ClientDisconnected",
    "ContentLengthExceeded",
    "ContentLengthMismatch",
    "Cycle",
    "HTTPCycle",
    "ProtocolSettings",
    "ServerProtocol",
    "WebSocketCycle",
]
