"""The sans-IO core: bytes and ASGI messages in, bytes, ASGI messages and driver events out.

No sockets, no event loop, no threads, no clock: time is always an argument.
"""

from .errors import ASGIProtocolError, ClientDisconnected, ContentLengthExceeded
from .http import HTTPCycle
from .protocol import Cycle, ServerProtocol
from .settings import ProtocolSettings
from .websocket import WebSocketCycle

__all__ = [
    "ASGIProtocolError",
    "ClientDisconnected",
    "ContentLengthExceeded",
    "Cycle",
    "HTTPCycle",
    "ProtocolSettings",
    "ServerProtocol",
    "WebSocketCycle",
]
