"""The routes of ``tests.apps`` in Quart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from quart import Quart, request, websocket

from . import JSON_DOCUMENT, STREAM_CHUNKS, failing_chunks

app = Quart(__name__)


@app.before_serving
async def startup() -> None:
    app.config["GREETING"] = "world"


@app.after_serving
async def shutdown() -> None:
    app.config.pop("GREETING", None)


@app.get("/")
async def hello() -> Any:
    return f"hello, {app.config['GREETING']}", 200, {"content-type": "text/plain"}


@app.get("/json")
async def json_document() -> Any:
    return JSON_DOCUMENT


@app.post("/echo")
async def echo() -> Any:
    body = await request.get_data(as_text=False)
    return body, 200, {"content-type": "application/octet-stream"}


@app.get("/stream")
async def stream() -> Any:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in STREAM_CHUNKS:
            yield chunk

    return chunks(), 200, {"content-type": "text/plain"}


@app.get("/error")
async def error() -> Any:
    raise RuntimeError("boom")


@app.get("/stream-error")
async def stream_error() -> Any:
    return failing_chunks(), 200, {"content-type": "text/plain"}


@app.websocket("/ws")
async def ws() -> None:
    while True:
        await websocket.send(await websocket.receive())
