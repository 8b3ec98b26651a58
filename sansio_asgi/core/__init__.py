"""The sans-IO core: bytes and ASGI messages in, bytes, ASGI messages and driver events out.

No sockets, no event loop, no threads, no clock: time is always an argument.
"""

from .errors import ASGIProtocolError, ClientDisconnected, ContentLengthExceeded
from .http import HTTPCycle
from .protocol import ServerProtocol
from .settings import ProtocolSettings

__all__ = [
    "ASGIProtocolError",
    "ClientDisconnected",
    "ContentLengthExceeded",
    "HTTPCycle",
    "ProtocolSettings",
    "ServerProtocol",
]
