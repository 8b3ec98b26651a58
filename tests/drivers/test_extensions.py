"""Trailers and early hints over real sockets, on both drivers, read by h11 as the client.

(File bodies have their own suite, ``test_files.py``; the conformance suite's ``extensions``
group grades the same behaviours with its own client.)
"""

from __future__ import annotations

import socket
from typing import Any

import h11

from .conftest import DEADLINE_S


def exchange(sock: socket.socket, request: bytes) -> list[Any]:
    """Send ``request`` and read one response with an h11 client: every event to its end."""
    client = h11.Connection(h11.CLIENT)
    head = h11.Request(method="GET", target="/", headers=[(b"host", b"x")])
    client.send(head)  # h11 must know a request went out; the bytes sent are ``request``
    client.send(h11.EndOfMessage())
    sock.sendall(request)
    events: list[Any] = []
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA:
            data = sock.recv(65536)
            client.receive_data(data)
            continue
        events.append(event)
        if isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return events


def trailers_app(seen: list[dict[str, Any]]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append(scope["extensions"])
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.body", "body": b"hello", "more_body": False})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")]})

    return app


def test_trailers_reach_a_client_that_asked_for_them(serve: Any) -> None:
    seen: list[dict[str, Any]] = []
    request = b"GET / HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n"
    with serve(trailers_app(seen)) as server, server.connect() as sock:
        sock.settimeout(DEADLINE_S)
        events = exchange(sock, request)
        assert "http.response.trailers" in seen[0]
        response, body, end = events[0], events[1], events[-1]
        assert response.status_code == 200
        assert (b"transfer-encoding", b"chunked") in response.headers
        assert body.data == b"hello"
        assert end.headers == [(b"x-checksum", b"abc")]
        # The connection stays open for the next request.
        assert exchange(sock, request)[-1].headers == [(b"x-checksum", b"abc")]


def test_trailers_are_dropped_for_a_client_that_did_not_ask(serve: Any) -> None:
    seen: list[dict[str, Any]] = []
    with serve(trailers_app(seen)) as server, server.connect() as sock:
        sock.settimeout(DEADLINE_S)
        events = exchange(sock, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"".join(e.data for e in events if isinstance(e, h11.Data)) == b"hello"
        assert events[-1].headers == []


def test_an_early_hint_comes_before_the_response(serve: Any) -> None:
    links = [b"</style.css>; rel=preload; as=style", b"</app.js>; rel=preload; as=script"]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        assert "http.response.early_hint" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.early_hint", "links": links})
        await send({"type": "http.response.body", "body": b"page"})

    with serve(app) as server, server.connect() as sock:
        sock.settimeout(DEADLINE_S)
        events = exchange(sock, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        hint, response = events[0], events[1]
        assert isinstance(hint, h11.InformationalResponse)
        assert hint.status_code == 103
        assert [value for name, value in hint.headers if name == b"link"] == links
        assert isinstance(response, h11.Response) and response.status_code == 200


def test_an_http10_request_is_offered_neither(serve: Any) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append(scope["extensions"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})

    with serve(app) as server, server.connect() as sock:
        sock.settimeout(DEADLINE_S)
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        while sock.recv(65536):
            pass
    offered = set(seen[0])
    assert "http.response.pathsend" in offered
    assert not offered & {"http.response.trailers", "http.response.early_hint"}
