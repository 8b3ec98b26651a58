"""Exceptions the core raises towards the application.

Whose fault it is decides the class:

* ``ASGIProtocolError`` -- the *application* broke the ASGI contract (an invalid message, a
  message out of order, a body longer or shorter than its own ``content-length``). It is raised
  out of the app's ``send()`` as the ASGI spec asks ("Error Handling": the server should raise an
  exception out of ``send`` for an invalid event).
* ``ClientDisconnected`` -- nobody's fault: the client went away. ASGI HTTP 2.4 says ``send()``
  on a closed connection "should raise a server-specific subclass of OSError", and that the
  server must catch it if it propagates out of the app and not log it as an error.

Errors caused by the *client* (a malformed request) never raise: the core turns them into an
error response and a close.
"""

from __future__ import annotations


class ASGIProtocolError(RuntimeError):
    """The application sent a message the ASGI spec does not allow at this point."""


class ContentLengthMismatch(ASGIProtocolError):
    """The application's body is longer or shorter than the ``content-length`` it declared."""


# The name this error had before it was raised for a short body too.
ContentLengthExceeded = ContentLengthMismatch


class ClientDisconnected(OSError):
    """``send()`` was called after the client's connection closed."""
