"""Starlette and FastAPI served by both drivers: routing, JSON, bodies, streaming."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route


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
