"""Small apps written the way each framework's users write them, graded by the app mode of
the conformance suite (``conformance/apps.py``; the findings are in conformance/APPS.md).

Every app has the same routes:

* ``GET /``: plain text, using what the lifespan startup put in the state where the framework
  has a lifespan
* ``GET /json``: a JSON document
* ``POST /echo``: the request body back, as read by the framework
* ``GET /stream``: a streamed response of 200 chunks of 1 KiB: more than the server buffers
  for a client that does not read, so a client that leaves finds the app in the middle of it
* ``GET /error``: the handler raises ``RuntimeError("boom")``
* ``GET /stream-error``: a streamed response whose iterator raises ``RuntimeError`` after two
  chunks
* WebSocket ``/ws``: text and bytes echoed until the client closes

and an unknown path is the framework's own 404.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

# The options that point the app mode at these routes (tests/test_app_conformance.py).
PATHS = ["/", "/json", "/stream"]
POST_PATH = "/echo"
ERROR_PATHS = ["/error", "/stream-error"]
WEBSOCKET_PATH = "/ws"

STREAM_CHUNKS = [b"%-1023d\n" % n for n in range(200)]
JSON_DOCUMENT = {"message": "hello", "numbers": [1, 2, 3], "text": "é"}


async def failing_chunks() -> AsyncIterator[bytes]:
    """Two chunks, then the failure a streamed response meets midway (a lost database cursor)."""
    yield STREAM_CHUNKS[0]
    yield STREAM_CHUNKS[1]
    raise RuntimeError("the stream failed")
