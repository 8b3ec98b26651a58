"""The routes of ``tests.apps`` in FastAPI."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from . import JSON_DOCUMENT, STREAM_CHUNKS, failing_chunks


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    yield {"greeting": "world"}


app = FastAPI(lifespan=lifespan)


@app.get("/", response_class=PlainTextResponse)
async def hello(request: Request) -> str:
    return f"hello, {request.state.greeting}"


@app.get("/json")
async def json_document() -> dict[str, Any]:
    return JSON_DOCUMENT


@app.post("/echo")
async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in STREAM_CHUNKS:
            yield chunk

    return StreamingResponse(chunks(), media_type="text/plain")


@app.get("/error")
async def error() -> None:
    raise RuntimeError("boom")


@app.get("/stream-error")
async def stream_error() -> StreamingResponse:
    return StreamingResponse(failing_chunks(), media_type="text/plain")


@app.websocket("/ws")
async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
