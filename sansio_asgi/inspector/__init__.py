"""The inspector: the built-in app served when no APP is given.

A single page that shows each request the way the server handled it, as a timeline drawn from
the server's own trace (``logs.TraceRecord``): the bytes read (or HTTP/2 frames), the events the
core made of them, the scope, every ``receive()``/``send()`` message, and the bytes sent back,
each key linked to its clause on a spec page rendered from ``sansio_asgi.spec``. Forms send a
GET, a POST, a chunked upload and an ``Expect: 100-continue`` request; a panel opens a
WebSocket. ``app.py`` documents the routes and the JSON API, ``capture.py`` how records become
exchanges in bounded memory.

``sansio-asgi`` with no APP serves a new ``Inspector()``; ``sansio_asgi.inspector:app`` is one
too, for ``sansio-asgi sansio_asgi.inspector:app --http2 ...`` and the like.
"""

from __future__ import annotations

from .app import Inspector
from .capture import TraceCapture

__all__ = ["Inspector", "TraceCapture", "app"]

app = Inspector()
