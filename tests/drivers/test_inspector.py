"""The inspector, the built-in app, over real sockets on both drivers: its routes, the timeline
of each exchange as the server traced it, the bounds of its history under a flood, the raw
requests it writes to itself, WebSocket sessions, and its capture released at shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from websockets.sync.client import connect

from sansio_asgi import logs
from sansio_asgi.inspector import Inspector, TraceCapture
from sansio_asgi.inspector.capture import MAX_EXCHANGE_BYTES

from ..test_cli import DEADLINE_S as CLI_DEADLINE_S
from ..test_cli import output_after, server_process
from .conftest import DEADLINE_S, read_response, read_until_close, wait_for
from .test_http2 import client_context, tls_options
from .test_trace import STREAMS, concurrent_app, h2_posts

API = "/_inspector/api"


def exchange(base: str, exchange_id: str, **params: Any) -> dict[str, Any]:
    response = httpx.get(f"{base}{API}/exchanges/{exchange_id}", params=params, timeout=5)
    assert response.status_code == 200, response.text
    return dict(response.json())


def completed(base: str, exchange_id: str) -> dict[str, Any]:
    """The exchange once the server has marked it complete."""
    return dict(
        wait_for(
            lambda: (found := exchange(base, exchange_id))["complete"] and found,
            what=f"exchange {exchange_id} complete",
        )
    )


def kinds(items: list[dict[str, Any]]) -> list[str]:
    """Each record as ``kind direction what``: the message type, the event, or the size."""
    shown = []
    for item in items:
        detail = item["detail"]
        what = detail.get("type") or detail.get("event") or ""
        shown.append(f"{item['kind']}{item['direction']}{' ' + what if what else ''}")
    return shown


def test_the_page_its_assets_and_the_spec_page(serve: Any) -> None:
    with serve(None) as server:
        page = httpx.get(server.url + "/")
        css = httpx.get(server.url + "/_inspector/static/inspector.css")
        script = httpx.get(server.url + "/_inspector/static/inspector.js")
        spec = httpx.get(server.url + "/_inspector/spec")
        anchors = httpx.get(server.url + f"{API}/anchors").json()
        missing = httpx.get(server.url + "/_inspector/nothing")
        wrong = httpx.post(server.url + f"{API}/exchanges")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>sansio-asgi inspector</title>" in page.text
    # Shipped in the package, nothing from elsewhere: no CDN, no external font.
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert css.headers["content-type"] == "text/css; charset=utf-8" and ".timeline" in css.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert 'const API = "/_inspector/api"' in script.text
    assert spec.status_code == 200
    # An anchor per scope key and per message key, dotted keys included.
    for anchor in (
        "scope-http-headers",
        "scope-http-asgi.version",
        "scope-websocket-subprotocols",
        "message-http.request",
        "message-http.request-more_body",
        "message-http.response.start-status",
        "message-websocket.close-code",
    ):
        assert f'id="{anchor}"' in spec.text, anchor
    assert "headers" in anchors["scope-http"] and "body" in anchors["message-http.request"]
    assert missing.status_code == 404 and wrong.status_code == 405


def test_a_post_is_its_own_timeline_in_order(serve: Any) -> None:
    with serve(None) as server:
        answer = httpx.post(server.url + "/submit?x=1", content=b"greeting=hello")
        assert answer.status_code == 200
        echo = answer.json()
        assert echo["body"] == "greeting=hello" and echo["body_bytes"] == 14
        assert answer.headers["x-inspector-exchange"] == str(echo["exchange"])
        found = completed(server.url, echo["exchange"])
        listed = httpx.get(server.url + f"{API}/exchanges").json()
    assert found["method"] == "POST" and found["path"] == "/submit" and found["query"] == "x=1"
    assert found["status"] == 200 and found["protocol"] == "http/1.1"
    items = found["items"]
    shown = kinds(items)
    # The bytes read, the core's events, the scope, the messages both ways, the bytes sent.
    assert shown[0] == "connection made"
    order = [
        "data<",
        "event StartApp",
        "scope http",
        "message< http.request",
        "message> http.response.start",
        "message> http.response.body",
        "data>",
        "event ResponseCompleted",
    ]
    positions = [shown.index(step) for step in order]
    assert positions == sorted(positions), shown
    read = "".join(i["data"] for i in items if i["kind"] == "data" and i["direction"] == "<")
    assert read.startswith("POST /submit?x=1 HTTP/1.1\r\n")  # in one read or more
    assert read.endswith("\r\n\r\ngreeting=hello")
    scope = items[shown.index("scope http")]["detail"]
    assert scope["path"] == "/submit" and scope["query_string"] == "x=1"
    assert ["host", f"127.0.0.1:{server.port}"] in scope["headers"]
    request = items[shown.index("message< http.request")]["detail"]
    assert request == {"type": "http.request", "body": "greeting=hello", "more_body": False}
    written = items[shown.index("data>")]["data"]
    assert written.startswith("HTTP/1.1 200 OK\r\n") and json.dumps(echo) in written
    times = [item["time"] for item in items]
    assert times == sorted(times)
    # The history lists it, and not the page's own API calls.
    assert [e["id"] for e in listed["exchanges"]] == [echo["exchange"]]
    assert listed["stats"]["exchanges"] == 1


def test_keep_alive_requests_are_separate_exchanges(serve: Any) -> None:
    with serve(None) as server, server.connect() as sock:
        ids = []
        for n in range(3):
            sock.sendall(f"GET /n/{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            _, body = read_response(sock)
            ids.append(json.loads(body)["exchange"])
        timelines = [completed(server.url, i) for i in ids]
    assert len(set(ids)) == 3
    for n, found in enumerate(timelines):
        reads = [i["data"] for i in found["items"] if i["kind"] == "data" and i["direction"] == "<"]
        assert reads == [f"GET /n/{n} HTTP/1.1\r\nHost: x\r\n\r\n"], found["items"]
        assert found["path"] == f"/n/{n}"
    assert len({found["connection"] for found in timelines}) == 1


def test_a_long_keep_alive_connection_holds_no_more_than_its_call_under_way(serve: Any) -> None:
    capture = TraceCapture()
    logs.capture_trace(capture)
    try:
        with serve(hello) as server, server.connect() as sock:
            for n in range(200):  # more than any cap on app calls followed per connection
                sock.sendall(f"GET /n/{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                read_response(sock)
            wait_for(lambda: any(e.path == "/n/199" and e.complete for e in capture))
            # The server's cycles of the calls done are let go: only the last is followed.
            assert [len(c.cycles) for c in capture._connections.values()] == [1]
    finally:
        logs.release_trace(capture)


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"OK"})


def test_the_history_stays_bounded_under_a_flood(serve: Any) -> None:
    capture = TraceCapture(
        max_exchanges=5, max_history_bytes=256 * 1024, max_connections=8, max_pending_bytes=4096
    )
    inspector = Inspector(capture)
    body = b"x" * 60_000
    with serve(inspector) as server:
        # Requests with big bodies, over many connections, kept alive and not.
        last = None
        with httpx.Client(base_url=server.url) as client:
            for n in range(40):
                last = client.post(f"/flood/{n}", content=body).json()["exchange"]
        for _ in range(20):
            with server.connect() as sock:
                sock.sendall(b"POST /short HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
                read_response(sock)
        # Connections that never finish their request: their bytes wait for a scope.
        idle = [server.connect() for _ in range(30)]
        try:
            for sock in idle:
                sock.sendall(b"GET /never HTTP/1.1\r\nX-Pad: " + b"p" * 2000)
            wait_for(lambda: capture.stats()["connections"] >= 8, what="connections followed")
            stats = capture.stats()
            listed = httpx.get(server.url + f"{API}/exchanges").json()["exchanges"]
            gone = httpx.get(server.url + f"{API}/exchanges/{last}")
        finally:
            for sock in idle:
                sock.close()
    assert stats["exchanges"] <= 5 and len(listed) <= 5
    assert stats["history_bytes"] <= 256 * 1024
    assert stats["connections"] <= 8
    assert stats["pending_bytes"] <= 4096
    assert sum(e["bytes"] for e in listed) == stats["history_bytes"]
    assert all(e["bytes"] <= MAX_EXCHANGE_BYTES for e in listed)
    assert listed[0]["path"] == "/short"
    assert gone.status_code == 404  # dropped from the history, oldest first


def test_records_past_an_exchange_limit_are_counted_not_kept(serve: Any) -> None:
    capture = TraceCapture(max_exchange_bytes=64 * 1024)
    with serve(Inspector(capture)) as server, server.connect() as sock:
        size = 512 * 1024
        sock.sendall(f"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode())
        sock.sendall(b"y" * size)
        _, body = read_response(sock)
        assert json.loads(body)["body_bytes"] == size
        found = completed(server.url, json.loads(body)["exchange"])
        capture.max_exchange_records = 4
        sock.sendall(b"GET /few HTTP/1.1\r\nHost: x\r\n\r\n")
        _, body = read_response(sock)
        few = completed(server.url, json.loads(body)["exchange"])
    assert 0 < found["bytes"] <= 64 * 1024 and found["dropped"] > 0
    # What is kept is counted exactly, in bytes: the JSON text of each record (ASCII).
    texts = [json.dumps(i, ensure_ascii=True, separators=(",", ":")) for i in found["items"]]
    assert sum(len(text.encode()) for text in texts) == found["bytes"]
    assert few["records"] == 4 and len(few["items"]) == 4 and few["dropped"] > 0


def raw(server: Any, parts: list[str], wait: str = "pause") -> dict[str, Any]:
    response = httpx.post(
        server.url + f"{API}/raw", json={"parts": parts, "wait": wait}, timeout=DEADLINE_S
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_chunked_upload_written_by_the_server_to_itself(serve: Any) -> None:
    head = (
        "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n"
    )
    with serve(None) as server:
        answer = raw(server, [head, "5\r\nhello\r\n", "6\r\n world\r\n", "0\r\n\r\n"])
        (exchange_id,) = answer["exchanges"]
        found = completed(server.url, exchange_id)
    assert answer["received"].startswith("HTTP/1.1 200 OK\r\n")
    assert answer["closed"] is True
    assert '"body": "hello world"' in answer["received"]
    assert found["connection"] == answer["connection"]
    reads = [i["data"] for i in found["items"] if i["kind"] == "data" and i["direction"] == "<"]
    assert "".join(reads) == answer["sent"]
    assert len(reads) >= 2  # parts written apart are read apart
    bodies = [i["detail"] for i in found["items"] if i["detail"].get("type") == "http.request"]
    assert "".join(b["body"] for b in bodies) == "hello world"
    assert bodies[-1]["more_body"] is False
    assert len(bodies) >= 2 and bodies[0]["more_body"] is True  # decoded chunk by chunk


def test_expect_100_continue_written_by_the_server_to_itself(serve: Any) -> None:
    head = (
        "POST /wait HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
        "Connection: close\r\n\r\n"
    )
    with serve(None) as server:
        answer = raw(server, [head, "hello"], wait="interim")
        found = completed(server.url, answer["exchanges"][0])
    assert answer["received"].startswith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    written = [i["data"] for i in found["items"] if i["kind"] == "data" and i["direction"] == ">"]
    assert written[0] == "HTTP/1.1 100 Continue\r\n\r\n"
    shown = kinds(found["items"])
    # The 100 went out when the app asked for the body, before the body was read.
    assert shown.index("data>") < shown.index("message< http.request")


def test_a_raw_request_is_bounded_and_checked(serve: Any) -> None:
    with serve(None) as server:
        url = server.url + f"{API}/raw"
        too_big = httpx.post(url, json={"parts": ["x" * (64 * 1024 + 1)]})
        not_json = httpx.post(url, content=b"GET /", headers={"content-type": "application/json"})
        # A form or simple fetch() of another site cannot send JSON without a preflight.
        from_a_form = httpx.post(url, content=b'{"parts": ["GET / HTTP/1.1\r\n\r\n"]}')
        not_latin1 = httpx.post(url, json={"parts": ["\u2603"]})
        no_parts = httpx.post(url, json={"parts": []})
        # A request the server answers and keeps open: read until quiet, within the deadline.
        kept = raw(server, ["GET /kept HTTP/1.1\r\nHost: x\r\n\r\n"])
    assert too_big.status_code == 413
    assert not_json.status_code == 400 and not_latin1.status_code == 400
    assert from_a_form.status_code == 415
    assert no_parts.status_code == 400
    assert kept["received"].startswith("HTTP/1.1 200 OK") and kept["closed"] is False
    assert kept["elapsed_ms"] < 5000


def test_a_websocket_session_is_one_exchange(serve: Any) -> None:
    with serve(None) as server:
        with connect(f"ws://127.0.0.1:{server.port}/chat", open_timeout=DEADLINE_S) as ws:
            hello = json.loads(ws.recv(timeout=DEADLINE_S))
            ws.send("hello")
            assert ws.recv(timeout=DEADLINE_S) == "hello"
            ws.send(b"\x00\xff")
            assert ws.recv(timeout=DEADLINE_S) == b"\x00\xff"
            live = exchange(server.url, hello["exchange"])
            ws.close(4001, "bye")
        found = completed(server.url, hello["exchange"])
        later = exchange(server.url, hello["exchange"], after=live["records"])
    assert live["type"] == "websocket" and live["status"] == 101 and not live["complete"]
    shown = kinds(found["items"])
    for step in (
        "scope websocket",
        "message< websocket.connect",
        "message> websocket.accept",
        "message< websocket.receive",
        "message> websocket.send",
        "message< websocket.disconnect",
    ):
        assert step in shown, (step, shown)
    received = [
        i["detail"] for i in found["items"] if i["detail"].get("type") == "websocket.receive"
    ]
    assert {"type": "websocket.receive", "text": "hello"} in received
    assert {"type": "websocket.receive", "bytes": "\x00\xff"} in received
    disconnect = [
        i["detail"] for i in found["items"] if i["detail"].get("type") == "websocket.disconnect"
    ]
    assert disconnect[0]["code"] == 4001
    frames = [i for i in found["items"] if i["kind"] == "data" and i["protocol"] == "websocket"]
    assert frames  # the frames both ways, as bytes on the wire
    # The records after those already read, for a live view.
    assert later["after"] == live["records"]
    assert later["items"] == found["items"][live["records"] :]


def test_over_http2_the_records_are_frames(
    serve: Any, certificates: tuple[trustme.CA, Path, Path]
) -> None:
    async def main(base: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(
            base_url=base, http2=True, verify=client_context(certificates), timeout=DEADLINE_S
        ) as client:
            answers = []
            for n in range(3):
                response = await client.post(f"/h2/{n}", content=b"over h2")
                assert response.http_version == "HTTP/2"
                answers.append(response.json())
            # A GET ends its stream with its HEADERS frame, before its scope.
            answers.append((await client.get("/h2/3")).json())
            # Streams at once: each exchange keeps the frames of its own.
            together = [client.post(f"/h2/{n}", content=b"over h2") for n in range(4, 8)]
            answers += [response.json() for response in await asyncio.gather(*together)]
            return answers

    with serve(None, http2=True, **tls_options(certificates)) as server:
        base = f"https://127.0.0.1:{server.port}"
        answers = asyncio.run(main(base))
        found = [
            wait_for(lambda i=a["exchange"]: httpx_get(base, certificates, i)) for a in answers
        ]
    for n, (answer, timeline) in enumerate(zip(answers, found, strict=True)):
        assert answer["http_version"] == "2"
        assert timeline["protocol"] == "h2" and timeline["path"] == f"/h2/{n}"
        items = timeline["items"]
        frames = [i for i in items if i["kind"] == "frame"]
        streams = {i["detail"].get("stream") for i in frames} - {0, None}
        assert len(streams) == 1, frames  # its own stream, and no other
        assert "HEADERS" in {i["detail"]["type"] for i in frames}
        shown = kinds(items)
        assert shown.count("scope http") == 1
        assert shown.count("message> http.response.start") == 1
        if n == 3:  # the GET
            continue
        assert answer["body"] == "over h2"
        bodies = [i["detail"] for i in items if i["detail"].get("type") == "http.request"]
        assert "".join(b["body"] for b in bodies) == "over h2"  # in one message or more
        assert bodies[-1]["more_body"] is False
    assert "PREFACE" in {i["detail"].get("type") for i in found[0]["items"]}


def test_over_http2_messages_go_to_their_stream_by_the_trace_alone(serve: Any) -> None:
    """Another app than the inspector's, its calls at once on one connection: each exchange
    holds its own messages and events, placed from the trace records alone."""
    capture = TraceCapture()
    logs.capture_trace(capture)
    paths = [f"/s{n}" for n in range(STREAMS)]
    try:
        with serve(concurrent_app(STREAMS)) as server, server.connect() as sock:
            h2_posts(sock, paths)
            wait_for(
                lambda: sum(e.complete and e.status == 200 for e in capture) == STREAMS,
                what="every exchange complete",
                detail=lambda: repr([e.summary() for e in capture]),
            )
    finally:
        logs.release_trace(capture)
    found = {e.path: json.loads(capture.exchange_json(e.id) or "{}") for e in capture}
    assert sorted(found) == paths
    streams = set()
    for path, timeline in found.items():
        items = timeline["items"]
        shown = kinds(items)
        assert shown.count("scope http") == 1 and shown.count("event StartApp") == 1
        received = [i["detail"] for i in items if i["kind"] == "message" and i["direction"] == "<"]
        assert "".join(m["body"] for m in received) == f"from {path}"
        sent = [i["detail"] for i in items if i["kind"] == "message" and i["direction"] == ">"]
        assert [m.get("body") for m in sent] == [
            None, f"{path}:0", f"{path}:1", f"{path}:2", f"from {path}"
        ]  # fmt: skip
        assert sent[0]["headers"] == [["x-path", path]]
        assert shown.count("event ResponseCompleted") == 1
        completed_ = next(i for i in items if i["detail"].get("event") == "ResponseCompleted")
        assert completed_["detail"]["target"] == path
        frames = {i["detail"].get("stream") for i in items if i["kind"] == "frame"} - {0, None}
        assert len(frames) == 1, frames  # its own stream, and no other
        streams |= frames
    assert len(streams) == STREAMS


def httpx_get(base: str, certificates: Any, exchange_id: int) -> dict[str, Any] | None:
    with httpx.Client(base_url=base, verify=client_context(certificates)) as client:
        found = client.get(f"{API}/exchanges/{exchange_id}").json()
    return found if found["complete"] else None


def test_the_capture_is_released_at_shutdown(serve: Any) -> None:
    inspector = Inspector()
    assert not logs.trace_enabled()
    with serve(inspector) as server:
        assert inspector.attached and logs.trace_enabled()
        assert inspector.capture in logging.getLogger("sansio_asgi.error").handlers
        httpx.get(server.url + "/")
    assert not inspector.attached
    assert inspector.capture not in logging.getLogger("sansio_asgi.error").handlers
    assert not logs.trace_enabled()


def test_with_the_lifespan_off_the_capture_starts_on_the_first_call(serve: Any) -> None:
    inspector = Inspector()
    with serve(inspector, lifespan="off") as server:
        assert not inspector.attached
        first = httpx.get(server.url + "/first").json()
        second = httpx.get(server.url + "/second").json()
        assert inspector.attached
        found = completed(server.url, second["exchange"])
    inspector.release()
    assert first["exchange"] is None  # its connection was made before the capture
    assert found["path"] == "/second"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_the_built_in_app_through_the_real_cli(driver: str) -> None:
    with server_process("-m", "sansio_asgi", "--port", "0", "--driver", driver) as (process, port):
        base = f"http://127.0.0.1:{port}"
        page = httpx.get(base + "/")
        assert "sansio-asgi inspector" in page.text
        echo = httpx.post(base + "/hello", content=b"from the cli").json()
        found = completed(base, echo["exchange"])
        assert "message< http.request" in kinds(found["items"])
        process.send_signal(signal.SIGTERM)
        assert process.wait(CLI_DEADLINE_S) == 0
        rest = output_after(process)
    assert "Finished server process" in rest
    assert '"POST /hello HTTP/1.1" 200' in rest
    assert "TRACE" not in rest and " < " not in rest  # captured, not printed
    assert "only answers clients on this machine" not in rest  # served on loopback


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_served_beyond_loopback_the_inspector_warns_at_startup(driver: str) -> None:
    args = ("-m", "sansio_asgi", "--port", "0", "--driver", driver, "--host", "0.0.0.0")
    with server_process(*args, host="0.0.0.0") as (process, port):
        refused = httpx.get(f"http://127.0.0.1:{port}{API}/exchanges",
                            headers={"x-forwarded-for": "192.0.2.1"})  # fmt: skip
        process.send_signal(signal.SIGTERM)
        assert process.wait(CLI_DEADLINE_S) == 0
        rest = output_after(process)
    assert refused.status_code == 403
    warnings = [line for line in rest.splitlines() if "only answers clients" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0], rest


def test_a_unix_socket_server_refuses_raw_requests(serve: Any, tmp_path: Path) -> None:
    path = str(tmp_path / "inspector.sock")
    with serve(None, uds=path):
        transport = httpx.HTTPTransport(uds=path)
        with httpx.Client(transport=transport, base_url="http://localhost") as client:
            refused = client.post(f"{API}/raw", json={"parts": ["GET / HTTP/1.1\r\n\r\n"]})
    assert refused.status_code == 409


def test_only_loopback_clients_naming_a_loopback_host_are_answered(serve: Any) -> None:
    with serve(None) as server:
        port = server.port
        secret = httpx.get(server.url + "/secret", headers={"authorization": "Bearer tok"})
        secret_id = secret.json()["exchange"]
        routes = ["/", "/_inspector/static/inspector.js", f"{API}/exchanges",
                  f"{API}/exchanges/{secret_id}", "/_inspector/spec"]  # fmt: skip
        # A page of another site whose name was rebound to 127.0.0.1 (DNS rebinding).
        foreign = [
            httpx.get(server.url + route, headers={"host": f"attacker.example:{port}"})
            for route in routes
        ]
        # A client elsewhere, as the trusted proxy on 127.0.0.1 reports it.
        remote = httpx.get(server.url + f"{API}/exchanges", headers={"x-forwarded-for": "1.2.3.4"})
        # Any proxy, even one naming 127.0.0.1 (a proxy trusted with '*' passes on what a
        # remote client claims) or naming no one.
        proxied = [
            httpx.get(server.url + f"{API}/exchanges", headers={name: value})
            for name, value in (
                ("x-forwarded-for", "127.0.0.1"),
                ("forwarded", "for=127.0.0.1"),
                ("x-real-ip", "127.0.0.1"),
                ("via", "1.1 proxy"),
            )
        ]
        with server.connect() as sock:  # no Host at all
            sock.sendall(b"GET /_inspector/api/exchanges HTTP/1.0\r\n\r\n")
            hostless, _ = read_response(sock)
        local = [
            httpx.get(server.url + f"{API}/exchanges", headers={"host": host}).status_code
            for host in (
                f"localhost:{port}",
                "app.localhost",
                f"127.0.0.2:{port}",
                f"[::1]:{port}",
                "LOCALHOST",
            )
        ]
        # The echo, what the forms hit, shows only the request itself: any Host may use it.
        echo = httpx.get(server.url + "/x", headers={"host": "attacker.example"})
    for answer in [*foreign, remote, *proxied]:
        assert answer.status_code == 403, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert "Bearer tok" not in answer.text and "only" in answer.json()["error"]
    assert b"403" in hostless.split(b"\r\n")[0]
    assert local == [200] * 5
    assert echo.status_code == 200


def test_exchange_ids_name_their_worker(serve: Any) -> None:
    with serve(None) as server:
        echo = httpx.get(server.url + "/mine").json()
        mine = httpx.get(server.url + f"{API}/exchanges/{echo['exchange']}")
        other = httpx.get(server.url + f"{API}/exchanges/999999999-1")
        odd = [
            httpx.get(server.url + f"{API}/exchanges/{odd}")
            for odd in ("%C2%B2", "%E2%91%A0", "1-", "-1", "x", "")
        ]
        after = httpx.get(server.url + f"{API}/exchanges/{echo['exchange']}?after=%C2%B2")
    assert echo["exchange"].startswith(f"{os.getpid()}-")
    assert mine.status_code == 200 and mine.json()["path"] == "/mine"
    assert other.status_code == 404 and "another worker" in other.json()["error"]
    assert [answer.status_code for answer in odd] == [404] * len(odd)
    assert after.status_code == 200


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_with_workers_ids_are_unique_and_a_raw_request_says_which_worker(driver: str) -> None:
    args = ("-m", "sansio_asgi", "--port", "0", "--driver", driver, "--workers", "2")
    seen: dict[str, str] = {}
    notes = found = 0
    with server_process(*args) as (process, port):
        base = f"http://127.0.0.1:{port}"
        for n in range(30):
            echo = httpx.post(f"{base}/w/{n}", content=b"x", headers={"connection": "close"})
            exchange_id = echo.json()["exchange"]
            assert exchange_id not in seen
            seen[exchange_id] = f"/w/{n}"
            answer = httpx.get(f"{base}{API}/exchanges/{exchange_id}")
            if answer.status_code == 200:
                assert answer.json()["path"] == f"/w/{n}"  # never another request's
            else:
                assert "another worker" in answer.json()["error"]
        for _ in range(20):
            request = {"parts": ["GET /r HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]}
            reply = httpx.post(f"{base}{API}/raw", json=request, timeout=10).json()
            if reply["exchanges"]:
                found += 1
            else:
                assert "another worker" in reply["note"]
                notes += 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(CLI_DEADLINE_S) == 0
        output_after(process)
    assert found + notes == 20


def test_a_rejected_request_is_an_exchange_with_its_timeline(serve: Any) -> None:
    with serve(None) as server:
        reply = raw(server, ["BAD\r\n\r\n"])
        assert reply["received"].startswith("HTTP/1.1 400")
        assert len(reply["exchanges"]) == 1, reply
        found = completed(server.url, reply["exchanges"][0])
        with server.connect() as sock:  # headers too large: 431
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 70000 + b"\r\n\r\n")
            head, _ = read_response(sock)
        assert head.startswith(b"HTTP/1.1 431")
        listed = wait_for(
            lambda: [
                e
                for e in httpx.get(server.url + f"{API}/exchanges").json()["exchanges"]
                if e["type"] == "rejected" and e["status"] == 431 and e["complete"]
            ],
            what="the 431 listed",
        )
        big = exchange(server.url, listed[0]["id"])
        stats = httpx.get(server.url + f"{API}/exchanges").json()["stats"]
    assert found["type"] == "rejected" and found["method"] is None and found["path"] is None
    assert found["status"] == 400
    shown = kinds(found["items"])
    assert "data<" in shown and "event RequestRejected" in shown and "data>" in shown
    assert found["items"][shown.index("data<")]["data"].startswith("BAD")
    assert "event RequestRejected" in kinds(big["items"])
    assert stats["history_bytes"] <= stats["max_history_bytes"]


def test_a_request_rejected_after_one_served_on_the_same_connection_has_its_own_400(
    serve: Any,
) -> None:
    with serve(None) as server:
        with server.connect() as sock:
            sock.sendall(b"GET /first HTTP/1.1\r\nHost: localhost\r\n\r\n")
            first, _ = read_response(sock)
            sock.sendall(b"BAD\r\n\r\n")
            rejected, _ = read_response(sock)
        assert first.startswith(b"HTTP/1.1 200") and rejected.startswith(b"HTTP/1.1 400")
        listed = wait_for(
            lambda: [
                e
                for e in httpx.get(server.url + f"{API}/exchanges").json()["exchanges"]
                if e["type"] == "rejected" and e["complete"]
            ],
            what="the rejected request listed",
        )
        served = [
            e
            for e in httpx.get(server.url + f"{API}/exchanges").json()["exchanges"]
            if e["path"] == "/first"
        ]
        mine = exchange(server.url, listed[0]["id"])
        before = exchange(server.url, served[0]["id"])
    written = [i["data"] for i in mine["items"] if i["kind"] == "data" and i["direction"] == ">"]
    assert [w[:12] for w in written] == ["HTTP/1.1 400"]
    assert not any("400" in (i.get("data") or "")[:12] for i in before["items"])


def test_odd_api_input_is_refused_not_an_error(serve: Any) -> None:
    with serve(None) as server:
        nested = httpx.post(server.url + f"{API}/raw", content=b"[" * 100_000,
                            headers={"content-type": "application/json"})  # fmt: skip
        wrong = [
            httpx.post(server.url + f"{API}/raw", json=body)
            for body in (
                {"parts": "GET / HTTP/1.1\r\n\r\n"},
                {"parts": [1]},
                {"parts": ["x"], "wait": ["x"]},
            )
        ]
        listed = httpx.get(server.url + f"{API}/exchanges")
        echo = httpx.get(server.url + "/x").json()
        one = httpx.get(server.url + f"{API}/exchanges/{echo['exchange']}")
        missing = httpx.get(server.url + f"{API}/exchanges/nothing")
    assert nested.status_code == 400 and "nested" in nested.json()["error"]
    assert [answer.status_code for answer in wrong] == [400, 400, 400]
    for answer in (nested, listed, one, missing):
        assert answer.headers["x-content-type-options"] == "nosniff"


def test_the_budget_is_counted_in_bytes(serve: Any) -> None:
    capture = TraceCapture(max_exchange_bytes=64 * 1024)
    with serve(Inspector(capture)) as server, server.connect() as sock:
        size = 256 * 1024
        sock.sendall(f"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode())
        sock.sendall(b"\xff" * size)  # each byte one character, two bytes in UTF-8
        _, body = read_response(sock)
        served = httpx.get(server.url + f"{API}/exchanges/{json.loads(body)['exchange']}")
    assert 0 < served.json()["bytes"] <= 64 * 1024
    assert len(served.content) < 64 * 1024 + 4096


def test_connections_are_not_followed_after_they_are_lost(serve: Any) -> None:
    capture = TraceCapture()
    requests = [
        b"BAD\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: x\r\n",  # cut short
        b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 70000 + b"\r\n\r\n",  # 431
    ]
    with serve(Inspector(capture)) as server:
        for _ in range(5):
            for request in requests:
                with server.connect() as sock:
                    sock.sendall(request)
                    sock.shutdown(socket.SHUT_WR)
                    read_until_close(sock)
        # A driver may trace a last event after "connection lost": no connection is followed
        # again for it (it would hold a slot and pending bytes until evicted).
        wait_for(lambda: capture.stats()["connections"] == 0, what="no connection followed")
