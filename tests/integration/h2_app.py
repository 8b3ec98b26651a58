"""The application ``test_http2_clients.py`` serves to real HTTP/2 clients.

Paths:

* ``/``: ``hello over HTTP/<http_version>``, so that a client's output shows what the server
  made of the request.
* ``/page``: an HTML page whose script makes ``FETCHES`` ``fetch()`` requests at once to
  ``/item/<i>?run=<id>`` and writes what came back into ``<pre id="result">`` as JSON:
  ``{"items": [...], "protocols": [...], "page": ...}``, ``protocols`` being each fetch's
  ``nextHopProtocol`` (``performance.getEntriesByType("resource")``), ``page`` the page's own.
* ``/item/<i>?run=<id>``: held until ``FETCHES`` item requests of that run are in the app at
  the same time, then JSON ``{"i", "http_version", "together"}``. If they are not all in
  within ``HOLD_S``, every request of the run is let go from then on with ``together`` false.
  Over HTTP/1.1 a browser opens six connections to a host, so only HTTP/2's streams can bring
  all of them in together.
* anything else: ``deploy_app`` (``/info``, ``/upload``, ``/download?N``, ...).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from .deploy_app import app as deploy_app

FETCHES = 50
HOLD_S = 10.0

PAGE = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>HTTP/2 fetches</title>
<style>pre {{ white-space: pre-wrap; word-break: break-all; }}</style></head>
<body>
<h1>{FETCHES} fetches at once</h1>
<pre id="result">running</pre>
<script>
const run = Math.random().toString(36).slice(2);
const urls = Array.from({{length: {FETCHES}}}, (_, i) => `/item/${{i}}?run=${{run}}`);
Promise.all(urls.map((url) => fetch(url, {{cache: "no-store"}}).then((r) => r.json())))
  .then((items) => {{
    const entries = performance.getEntriesByType("resource")
      .filter((e) => e.name.includes("/item/"));
    const page = performance.getEntriesByType("navigation")[0].nextHopProtocol;
    const protocols = entries.map((e) => e.nextHopProtocol);
    document.getElementById("result").textContent =
      JSON.stringify({{items, protocols, page}});
  }}, (error) => {{
    document.getElementById("result").textContent = JSON.stringify({{error: String(error)}});
  }});
</script>
</body></html>
""".encode()


class Run:
    """The item requests of one page load."""

    def __init__(self) -> None:
        self.arrived = 0
        self.together = False  # all FETCHES arrived before any was let go
        self.released = asyncio.Event()


runs: dict[str, Run] = {}


async def respond(send: Any, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def item(scope: dict[str, Any], send: Any) -> None:
    query = dict(
        pair.split("=", 1) for pair in scope["query_string"].decode().split("&") if "=" in pair
    )
    run = runs.setdefault(query.get("run", ""), Run())
    run.arrived += 1
    if run.arrived == FETCHES and not run.released.is_set():
        run.together = True
        run.released.set()
    try:
        await asyncio.wait_for(run.released.wait(), HOLD_S)
    except asyncio.TimeoutError:
        run.released.set()  # the rest go at once: the page fails quickly, not in 50 timeouts
    answer = {
        "i": int(scope["path"].rsplit("/", 1)[1]),
        "http_version": scope["http_version"],
        "together": run.together,
    }
    await respond(send, json.dumps(answer).encode(), b"application/json")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"] == "/":
        body = f"hello over HTTP/{scope['http_version']}\n".encode()
        await respond(send, body, b"text/plain; charset=utf-8")
    elif scope["type"] == "http" and scope["path"] == "/page":
        await respond(send, PAGE, b"text/html; charset=utf-8")
    elif scope["type"] == "http" and scope["path"].startswith("/item/"):
        await item(scope, send)
    else:
        await deploy_app(scope, receive, send)
