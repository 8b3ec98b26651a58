"""Frameworks served by both drivers: Starlette, FastAPI, Django (with Channels), Quart and
Litestar. Each test starts one server and checks routing, JSON, bodies, a streamed response,
and, where the framework has them, lifespan hooks, a 3 MiB upload and a WebSocket echo."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path
from fastapi import FastAPI
from litestar import Request as LitestarRequest  # Litestar resolves annotations in this module
from litestar import WebSocket as LitestarWebSocket
from litestar.response import Stream as LitestarStream
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect  # FastAPI's own, too
from websockets.sync.client import connect as ws_connect


async def homepage(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"hello {request.path_params.get('name', 'world')}")


async def echo_json(request: Request) -> JSONResponse:
    data = await request.json()
    return JSONResponse({"received": data, "method": request.method})


async def numbers(request: Request) -> StreamingResponse:
    async def generate() -> AsyncIterator[bytes]:
        for n in range(100):
            yield f"{n}\n".encode()

    return StreamingResponse(generate(), media_type="text/plain")


starlette_app = Starlette(
    routes=[
        Route("/", homepage),
        Route("/hello/{name}", homepage),
        Route("/echo", echo_json, methods=["POST"]),
        Route("/stream", numbers),
    ]
)

fastapi_app = FastAPI()


class Item(BaseModel):
    name: str
    price: float


@fastapi_app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None) -> dict[str, Any]:
    return {"item_id": item_id, "q": q}


@fastapi_app.post("/items")
async def create_item(item: Item) -> dict[str, Any]:
    return {"name": item.name, "price_with_tax": round(item.price * 1.2, 2)}


@fastapi_app.get("/stream")
async def fastapi_stream() -> StreamingResponse:
    async def generate() -> AsyncIterator[bytes]:
        for n in range(50):
            yield b"chunk %d\n" % n

    return StreamingResponse(generate())


def test_starlette(serve: Any) -> None:
    with serve(starlette_app) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/").text == "hello world"
        assert client.get("/hello/sansio").text == "hello sansio"
        assert client.get("/missing").status_code == 404
        response = client.post("/echo", json={"a": [1, 2, 3]})
        assert response.json() == {"received": {"a": [1, 2, 3]}, "method": "POST"}
        streamed = client.get("/stream")
        assert streamed.text == "".join(f"{n}\n" for n in range(100))
        assert streamed.headers["transfer-encoding"] == "chunked"


def test_fastapi(serve: Any) -> None:
    with serve(fastapi_app) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/items/5", params={"q": "x y"}).json() == {"item_id": 5, "q": "x y"}
        assert client.get("/items/notanumber").status_code == 422
        created = client.post("/items", json={"name": "pen", "price": 10})
        assert created.json() == {"name": "pen", "price_with_tax": 12.0}
        assert client.post("/items", json={"name": "pen"}).status_code == 422
        assert client.get("/stream").text == "".join(f"chunk {n}\n" for n in range(50))
        assert client.get("/openapi.json").json()["openapi"].startswith("3.")


# -- the checks every framework below gets ---------------------------------------------------

UPLOAD = os.urandom(3 * 1024 * 1024)
STREAMED = "".join(f"line {n}\n" for n in range(200))


def check_framework(url: str, *, ws: bool = True) -> None:
    """Routing, JSON, a 3 MiB upload, a streamed response and a WebSocket echo, all served by
    the app mounted at ``url``, whose routes are the same in every framework."""
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/hello/sansio").text == "hello sansio"
        assert client.get("/missing").status_code == 404
        echoed = client.post("/echo", json={"a": [1, 2, 3], "b": "é"})
        assert echoed.status_code in (200, 201)
        assert echoed.json() == {"received": {"a": [1, 2, 3], "b": "é"}}
        uploaded = client.post("/upload", content=UPLOAD)
        assert uploaded.json() == {
            "bytes": len(UPLOAD),
            "sha256": hashlib.sha256(UPLOAD).hexdigest(),
        }
        with client.stream("GET", "/stream") as response:
            assert response.headers.get("transfer-encoding") == "chunked"
            assert response.read().decode() == STREAMED
    if ws:
        ws_url = url.replace("http://", "ws://") + "/ws"
        with ws_connect(ws_url, open_timeout=10) as websocket:
            for message in ("hello", "é" * 1000):
                websocket.send(message)
                assert websocket.recv(timeout=10) == message


def digest(body: bytes) -> dict[str, Any]:
    return {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}


async def stream_lines() -> AsyncIterator[bytes]:
    for n in range(200):
        yield f"line {n}\n".encode()


# -- Starlette and FastAPI: the same checks, with lifespan hooks ------------------------------


def starlette_application(events: list[str]) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"hello {request.path_params['name']}")

    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"received": await request.json()})

    async def upload(request: Request) -> JSONResponse:
        return JSONResponse(digest(await request.body()))

    async def stream(request: Request) -> StreamingResponse:
        return StreamingResponse(stream_lines(), media_type="text/plain")

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.send_text(await websocket.receive_text())

    return Starlette(
        routes=[
            Route("/hello/{name}", hello),
            Route("/echo", echo, methods=["POST"]),
            Route("/upload", upload, methods=["POST"]),
            Route("/stream", stream),
            WebSocketRoute("/ws", ws),
        ],
        lifespan=lifespan,
    )


def fastapi_application(events: list[str]) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/hello/{name}", response_class=PlainTextResponse)
    async def hello(name: str) -> str:
        return f"hello {name}"

    @app.post("/echo")
    async def echo(data: dict[str, Any]) -> dict[str, Any]:
        return {"received": data}

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, Any]:
        return digest(await request.body())

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(stream_lines(), media_type="text/plain")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.send_text(await websocket.receive_text())

    return app


@pytest.mark.parametrize("application", [starlette_application, fastapi_application])
def test_starlette_and_fastapi_lifespan_upload_websocket(serve: Any, application: Any) -> None:
    events: list[str] = []
    with serve(application(events)) as server:
        assert events == ["startup"]
        check_framework(server.url)
    assert events == ["startup", "shutdown"]


# -- Django (an async view) with Channels for WebSocket --------------------------------------

DJANGO_SETTINGS = {
    "DEBUG": False,
    "SECRET_KEY": "test",
    "ALLOWED_HOSTS": ["*"],
    "ROOT_URLCONF": __name__,
    "MIDDLEWARE": [],
    "INSTALLED_APPS": [],
    "DATA_UPLOAD_MAX_MEMORY_SIZE": None,  # the 3 MiB upload is above Django's 2.5 MB default
    "USE_TZ": True,
}


async def django_hello(request: Any, name: str) -> Any:
    return HttpResponse(f"hello {name}", content_type="text/plain")


async def django_echo(request: Any) -> Any:
    return JsonResponse({"received": json.loads(request.body)})


async def django_upload(request: Any) -> Any:
    return JsonResponse(digest(request.body))


async def django_stream(request: Any) -> Any:
    return StreamingHttpResponse(stream_lines(), content_type="text/plain")


urlpatterns = [  # ROOT_URLCONF is this module
    path("hello/<str:name>", django_hello),
    path("echo", django_echo),
    path("upload", django_upload),
    path("stream", django_stream),
]


def django_application() -> Any:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(**DJANGO_SETTINGS)
        django.setup()
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import ProtocolTypeRouter, URLRouter
    from django.core.asgi import get_asgi_application

    class Echo(AsyncWebsocketConsumer):
        async def receive(self, text_data: Any = None, bytes_data: Any = None) -> None:
            await self.send(text_data=text_data, bytes_data=bytes_data)

    return ProtocolTypeRouter(
        {
            "http": get_asgi_application(),
            "websocket": URLRouter([path("ws", Echo.as_asgi())]),
        }
    )


def test_django(serve: Any) -> None:
    with serve(django_application()) as server:
        check_framework(server.url)


# -- Quart -----------------------------------------------------------------------------------


def quart_application(events: list[str]) -> Any:
    from quart import Quart, request, websocket

    app = Quart(__name__)

    @app.before_serving
    async def startup() -> None:
        events.append("startup")

    @app.after_serving
    async def shutdown() -> None:
        events.append("shutdown")

    @app.get("/hello/<name>")
    async def hello(name: str) -> Any:
        return f"hello {name}", 200, {"content-type": "text/plain"}

    @app.post("/echo")
    async def echo() -> Any:
        return {"received": await request.get_json()}

    @app.post("/upload")
    async def upload() -> Any:
        return digest(await request.get_data(as_text=False))

    @app.get("/stream")
    async def stream() -> Any:
        return stream_lines(), 200, {"content-type": "text/plain"}

    @app.websocket("/ws")
    async def ws() -> None:
        while True:
            await websocket.send(await websocket.receive())

    return app


def test_quart(serve: Any) -> None:
    events: list[str] = []
    with serve(quart_application(events)) as server:
        assert events == ["startup"]
        check_framework(server.url)
    assert events == ["startup", "shutdown"]


# -- Litestar --------------------------------------------------------------------------------


def litestar_application(events: list[str]) -> Any:
    from litestar import Litestar, get, post, websocket

    # Parameters and the body are read from the request: declaring them as arguments is
    # deprecated in current Litestar, and their replacements are missing from older releases.
    @get("/hello/{name:str}", media_type="text/plain")
    async def hello(request: LitestarRequest) -> str:
        return f"hello {request.path_params['name']}"

    @post("/echo")
    async def echo(request: LitestarRequest) -> dict[str, Any]:
        return {"received": await request.json()}

    @post("/upload")
    async def upload(request: LitestarRequest) -> dict[str, Any]:
        return digest(await request.body())

    @get("/stream")
    async def stream() -> LitestarStream:
        return LitestarStream(stream_lines(), media_type="text/plain")

    @websocket("/ws")
    async def ws(socket: LitestarWebSocket) -> None:
        await socket.accept()
        while True:
            await socket.send_text(await socket.receive_text())

    return Litestar(
        route_handlers=[hello, echo, upload, stream, ws],
        on_startup=[lambda: events.append("startup")],
        on_shutdown=[lambda: events.append("shutdown")],
    )


def test_litestar(serve: Any) -> None:
    events: list[str] = []
    with serve(litestar_application(events)) as server:
        assert events == ["startup"]
        check_framework(server.url)
    assert events == ["startup", "shutdown"]
