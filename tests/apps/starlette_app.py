"""The routes of ``tests.apps`` in Starlette."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from . import JSON_DOCUMENT, STREAM_CHUNKS, failing_chunks


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    yield {"greeting": "world"}  # the lifespan state, copied into every request's scope


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"hello, {request.state.greeting}")


async def json_document(request: Request) -> JSONResponse:
    return JSONResponse(JSON_DOCUMENT)


async def echo(request: Request) -> Response:
    return Response(await request.body(), media_type="application/octet-stream")


async def stream(request: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in STREAM_CHUNKS:
            yield chunk

    return StreamingResponse(chunks(), media_type="text/plain")


async def error(request: Request) -> Response:
    raise RuntimeError("boom")


async def stream_error(request: Request) -> StreamingResponse:
    return StreamingResponse(failing_chunks(), media_type="text/plain")


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


app = Starlette(
    routes=[
        Route("/", hello),
        Route("/json", json_document),
        Route("/echo", echo, methods=["POST"]),
        Route("/stream", stream),
        Route("/error", error),
        Route("/stream-error", stream_error),
        WebSocketRoute("/ws", ws),
    ],
    lifespan=lifespan,
)
