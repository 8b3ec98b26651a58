"""The routes of ``tests.apps`` in Litestar."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Litestar, Request, WebSocket, get, post, websocket
from litestar.response import Response, Stream

from . import JSON_DOCUMENT, STREAM_CHUNKS, failing_chunks


def startup(app: Litestar) -> None:
    app.state.greeting = "world"


@get("/", media_type="text/plain")
async def hello(request: Request[Any, Any, Any]) -> str:
    return f"hello, {request.app.state.greeting}"


@get("/json")
async def json_document() -> dict[str, Any]:
    return JSON_DOCUMENT


@post("/echo", status_code=200)
async def echo(request: Request[Any, Any, Any]) -> Response[bytes]:
    return Response(await request.body(), media_type="application/octet-stream")


@get("/stream")
async def stream() -> Stream:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in STREAM_CHUNKS:
            yield chunk

    return Stream(chunks(), media_type="text/plain")


@get("/error")
async def error() -> None:
    raise RuntimeError("boom")


@get("/stream-error")
async def stream_error() -> Stream:
    return Stream(failing_chunks(), media_type="text/plain")


@websocket("/ws")
async def ws(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await socket.send_text(message["text"])
        else:
            await socket.send_bytes(message["bytes"])


app = Litestar(
    route_handlers=[hello, json_document, echo, stream, error, stream_error, ws],
    on_startup=[startup],
)
