"""The routes of ``tests.apps`` in Django (async views), with Channels for the WebSocket.

Django reads one settings object per process. These settings are configured here unless the
process configured its own first; either way the views are found through this module's
``urlpatterns``, which every request names as its URLconf (``request.urlconf``, the hook
Django gives middleware), so the app works beside another Django app of the same process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import django
from django.conf import settings

from . import JSON_DOCUMENT, STREAM_CHUNKS, failing_chunks

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="tests.apps.django_app",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        USE_TZ=True,
    )
    django.setup()

# Channels and Django's handlers read the settings as they are imported.
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.handlers.asgi import ASGIHandler, ASGIRequest
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path


async def hello(request: Any) -> HttpResponse:
    return HttpResponse("hello, world", content_type="text/plain")


async def json_document(request: Any) -> JsonResponse:
    return JsonResponse(JSON_DOCUMENT)


async def echo(request: Any) -> HttpResponse:
    return HttpResponse(request.body, content_type="application/octet-stream")


async def stream(request: Any) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in STREAM_CHUNKS:
            yield chunk

    return StreamingHttpResponse(chunks(), content_type="text/plain")


async def error(request: Any) -> HttpResponse:
    raise RuntimeError("boom")


async def stream_error(request: Any) -> StreamingHttpResponse:
    return StreamingHttpResponse(failing_chunks(), content_type="text/plain")


urlpatterns = [
    path("", hello),
    path("json", json_document),
    path("echo", echo),
    path("stream", stream),
    path("error", error),
    path("stream-error", stream_error),
]


class Echo(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=text_data, bytes_data=bytes_data)


class _Request(ASGIRequest):
    urlconf = __name__


class _Handler(ASGIHandler):
    request_class = _Request


app = ProtocolTypeRouter(
    {
        "http": _Handler(),
        "websocket": URLRouter([path("ws", Echo.as_asgi())]),
    }
)
