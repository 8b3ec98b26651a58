"""The WebSocket core (RFC 6455 on wsproto, ASGI WebSocket spec), one behaviour per test.

Every test drives a ``ServerProtocol`` through ``Harness`` with explicit times, and reads the
server's bytes back as a client would: h11 for the handshake response, a wsproto client (or a
raw frame reader, where exact frames matter) for what follows.
"""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Sequence
from typing import Any

import pytest
from wsproto.events import CloseConnection as WSClose
from wsproto.events import Ping, Pong
from wsproto.extensions import PerMessageDeflate
from wsproto.utilities import generate_accept_token

from sansio_asgi.core import (
    ASGIProtocolError,
    ClientDisconnected,
    ProtocolSettings,
    WebSocketCycle,
)
from sansio_asgi.core.events import (
    AppMisbehaved,
    CloseConnection,
    PauseReading,
    RequestRejected,
    ResponseCompleted,
    ResumeReading,
    SendEOF,
    StartApp,
    WakeApp,
)

from .helpers import CLIENT, SERVER, Harness, parse_response
from .ws_helpers import (
    ACCEPT_TOKEN,
    CLOSE,
    CONTINUATION,
    KEY,
    PONG,
    TEXT,
    WSClient,
    accept,
    client_frame,
    close_frames,
    deflate_offer,
    handshake,
    open_connection,
    open_harness,
    receive_all,
    server_frames,
    split_handshake_response,
)

NO_PINGS = ProtocolSettings(ws_ping_interval_s=None)


def kinds(events: Sequence[object]) -> list[str]:
    return [type(event).__name__ for event in events]


def send(h: Harness, cycle: WebSocketCycle, now: float | None = None, **fields: Any) -> None:
    h.message_from_app(cycle, {"type": "websocket.send", **fields}, now)


def close(h: Harness, cycle: WebSocketCycle, now: float | None = None, **fields: Any) -> None:
    h.message_from_app(cycle, {"type": "websocket.close", **fields}, now)


# ================================================================ the opening handshake


@pytest.mark.parametrize(
    ("upgrade", "connection"),
    [
        ("websocket", "Upgrade"),
        ("websocket", "upgrade"),
        ("WebSocket", "keep-alive, Upgrade"),
        ("websocket", "KEEP-ALIVE ,  UPGRADE"),
    ],
)
def test_valid_handshake_starts_a_websocket_app(upgrade: str, connection: str) -> None:
    h = Harness()
    h.feed(handshake(replace={"Upgrade": upgrade, "Connection": connection}))
    [start] = h.take_events()
    assert isinstance(start, StartApp)
    assert isinstance(start.cycle, WebSocketCycle)
    assert start.scope["type"] == "websocket"
    assert h.sent == b""


def test_handshake_fed_byte_by_byte_starts_the_app_once() -> None:
    h = Harness()
    h.feed_pieces(handshake(), 1)
    assert kinds(h.events) == ["StartApp"]
    assert h.scope()["type"] == "websocket"


def _key_of(length: int) -> str:
    return b64encode(bytes(range(length))).decode()


BAD_HANDSHAKES = {
    "post": handshake(method="POST"),
    "post-with-length-0": handshake(method="POST", extra=[("Content-Length", "0")]),
    "http-1.0": handshake(version="1.0"),
    "no-upgrade-token": handshake(replace={"Connection": "keep-alive"}),
    "no-connection-header": handshake(replace={"Connection": None}),
    "upgrades-token-is-not-upgrade": handshake(replace={"Connection": "upgrades"}),
    "no-key": handshake(replace={"Sec-WebSocket-Key": None}),
    "key-not-base64": handshake(replace={"Sec-WebSocket-Key": "not base64 at all!!"}),
    "key-15-bytes": handshake(replace={"Sec-WebSocket-Key": _key_of(15)}),
    "key-17-bytes": handshake(replace={"Sec-WebSocket-Key": _key_of(17)}),
    "key-empty": handshake(replace={"Sec-WebSocket-Key": ""}),
    "two-keys": handshake(extra=[("Sec-WebSocket-Key", _key_of(16))]),
    "body": handshake(extra=[("Content-Length", "5")], body=b"hello"),
    "chunked-body": handshake(
        extra=[("Transfer-Encoding", "chunked")], body=b"5\r\nhello\r\n0\r\n\r\n"
    ),
}


@pytest.mark.parametrize("wire", BAD_HANDSHAKES.values(), ids=BAD_HANDSHAKES.keys())
def test_invalid_handshake_is_400_with_a_reason_and_close(wire: bytes) -> None:
    h = Harness()
    h.feed(wire)
    assert not h.start_apps()
    response = parse_response(h.sent)
    assert response.status == 400
    assert response.get(b"connection") == b"close"
    assert response.get(b"sec-websocket-accept") is None
    # One line: "Bad Request: <why>".
    assert response.body.startswith(b"Bad Request: ")
    assert response.body.endswith(b"\n")
    assert response.body.count(b"\n") == 1
    assert len(response.body) > len(b"Bad Request: \n")
    [rejected] = h.of_type(RequestRejected)
    assert rejected.status == 400
    assert rejected.client == CLIENT
    assert kinds(h.events)[-1] == "SendEOF"


def test_valid_key_with_surrounding_whitespace_is_accepted() -> None:
    h = Harness()
    h.feed(handshake(replace={"Sec-WebSocket-Key": f"  {_key_of(16)}  "}))
    assert h.scope()["type"] == "websocket"


@pytest.mark.parametrize("version", ["8", "12", "14", "13, 8", "", None])
def test_version_other_than_13_is_426_with_the_supported_version(version: str | None) -> None:
    h = Harness()
    h.feed(handshake(replace={"Sec-WebSocket-Version": version}))
    assert not h.start_apps()
    response = parse_response(h.sent)
    assert response.status == 426
    assert response.get(b"sec-websocket-version") == b"13"
    assert response.get(b"connection") == b"close"
    assert h.of_type(RequestRejected)[0].status == 426
    assert kinds(h.events)[-1] == "SendEOF"


def test_two_version_headers_are_426() -> None:
    h = Harness()
    h.feed(handshake(extra=[("Sec-WebSocket-Version", "13")]))
    assert parse_response(h.sent).status == 426


def test_ws_disabled_serves_an_upgrade_request_as_plain_http() -> None:
    h = Harness(ProtocolSettings(ws_enabled=False))
    h.feed(handshake())
    [start] = h.start_apps()
    assert start.scope["type"] == "http"
    assert start.scope["method"] == "GET"
    assert h.sent == b""
    h.respond(start.cycle, 200, [(b"content-length", b"2")], b"ok")  # type: ignore[arg-type]
    response = parse_response(h.sent, eof=False)
    assert (response.status, response.body) == (200, b"ok")
    assert response.get(b"sec-websocket-accept") is None


def test_upgrade_to_another_protocol_is_plain_http() -> None:
    h = Harness()
    h.feed(handshake(replace={"Upgrade": "h2c"}))
    assert h.scope()["type"] == "http"


def test_handshake_as_the_second_request_on_a_keep_alive_connection() -> None:
    h = Harness(NO_PINGS)
    h.feed(b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
    first = h.cycle()
    h.respond(first, 200, [(b"content-length", b"2")], b"ok")  # type: ignore[arg-type]
    assert parse_response(h.take_sent(), eof=False).body == b"ok"
    h.feed(handshake() + WSClient().text("early"))
    cycle = h.cycle()
    assert isinstance(cycle, WebSocketCycle)
    assert h.message_for_app(cycle) == {"type": "websocket.connect"}
    _, client, _ = accept(h, cycle)
    h.feed(client.text("later"))
    assert receive_all(h, cycle) == [
        {"type": "websocket.receive", "text": "early"},
        {"type": "websocket.receive", "text": "later"},
    ]


def test_handshake_pipelined_behind_a_request_is_handled_after_its_response() -> None:
    h = Harness(NO_PINGS)
    h.feed(b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n" + handshake())
    [first] = h.start_apps()
    assert first.scope["type"] == "http"
    h.respond(first.cycle, 200, [(b"content-length", b"0")])  # type: ignore[arg-type]
    second = h.start_apps()[-1]
    assert second.scope["type"] == "websocket"
    assert h.message_for_app(second.cycle) == {"type": "websocket.connect"}
    h.take_sent()
    response, _, _ = accept(h, second.cycle)  # type: ignore[arg-type]
    assert response.get(b"sec-websocket-accept") == ACCEPT_TOKEN


# ================================================================ the scope


def test_scope_is_the_websocket_scope() -> None:
    h = Harness()
    h.feed(handshake("/chat/r%C3%A9%2Fx?room=1&b=%20", extra=[("X-Thing", "a"), ("X-Thing", "b")]))
    scope = h.scope()
    assert scope["type"] == "websocket"
    assert "method" not in scope
    assert scope["asgi"]["version"] == "3.0"
    assert scope["http_version"] == "1.1"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/chat/ré/x"
    assert scope["raw_path"] == b"/chat/r%C3%A9%2Fx"
    assert scope["query_string"] == b"room=1&b=%20"
    assert scope["root_path"] == ""
    assert scope["headers"] == [
        (b"host", b"example.com"),
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-key", KEY.encode()),
        (b"sec-websocket-version", b"13"),
        (b"x-thing", b"a"),
        (b"x-thing", b"b"),
    ]
    assert scope["client"] == CLIENT
    assert scope["server"] == SERVER
    assert scope["subprotocols"] == []
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert "state" not in scope


def test_scheme_is_wss_behind_https() -> None:
    h = Harness(scheme="https")
    h.feed(handshake())
    assert h.scope()["scheme"] == "wss"


def test_root_path_is_prefixed_as_for_http() -> None:
    h = Harness(ProtocolSettings(root_path="/api"))
    h.feed(handshake("/ws"))
    scope = h.scope()
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/ws"
    assert scope["raw_path"] == b"/ws"


def test_subprotocols_are_comma_split_stripped_and_collected_from_every_header() -> None:
    h = Harness()
    h.feed(
        handshake(
            extra=[
                ("Sec-WebSocket-Protocol", "chat, superchat"),
                ("Sec-WebSocket-Protocol", " v2.json ,,mqtt"),
            ]
        )
    )
    assert h.scope()["subprotocols"] == ["chat", "superchat", "v2.json", "mqtt"]


def test_state_is_a_shallow_copy_of_the_lifespan_state() -> None:
    state: dict[str, Any] = {"db": object()}
    h = Harness(ProtocolSettings(state=state))
    h.feed(handshake())
    scope_state = h.scope()["state"]
    assert scope_state == state
    assert scope_state is not state
    scope_state["new"] = 1
    assert "new" not in state


# ================================================================ accept: the 101


def test_nothing_is_sent_before_the_app_answers() -> None:
    h = Harness()
    h.protocol.receive_data(handshake(), 0.0)
    assert h.protocol.data_to_send() == b""
    [start] = h.protocol.events_received()
    assert isinstance(start, StartApp)
    cycle = start.cycle
    assert h.protocol.message_for_app(cycle) == {"type": "websocket.connect"}
    assert h.protocol.message_for_app(cycle) is None  # waits for the client
    assert h.protocol.data_to_send() == b""
    assert h.protocol.next_deadline() is None
    assert not h.protocol.is_idle


def test_accept_sends_101_with_the_accept_token() -> None:
    h, cycle = open_harness(now=5.0)
    response, _, rest = accept(h, cycle)
    assert rest == b""
    assert response.reason == b"Switching Protocols"
    assert response.get(b"upgrade").lower() == b"websocket"  # type: ignore[union-attr]
    assert response.get(b"connection").lower() == b"upgrade"  # type: ignore[union-attr]
    assert response.get(b"sec-websocket-accept") == ACCEPT_TOKEN
    assert ACCEPT_TOKEN == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 §1.3
    assert response.get(b"sec-websocket-protocol") is None
    assert response.get(b"sec-websocket-extensions") is None
    [completed] = h.of_type(ResponseCompleted)
    assert (completed.status, completed.method, completed.target) == (101, "GET", b"/ws")
    assert not h.of_type(SendEOF)


def test_accept_token_is_computed_from_the_request_key() -> None:
    key = _key_of(16)
    h, cycle = open_harness(wire=handshake(replace={"Sec-WebSocket-Key": key}))
    response, _, _ = accept(h, cycle)
    assert response.get(b"sec-websocket-accept") == generate_accept_token(key.encode())


def test_accept_echoes_an_offered_subprotocol() -> None:
    wire = handshake(extra=[("Sec-WebSocket-Protocol", "chat, superchat")])
    h, cycle = open_harness(wire=wire)
    response, _, _ = accept(h, cycle, subprotocol="superchat")
    assert response.get_all(b"sec-websocket-protocol") == [b"superchat"]


def test_accept_with_subprotocol_none_sends_no_protocol_header() -> None:
    wire = handshake(extra=[("Sec-WebSocket-Protocol", "chat")])
    h, cycle = open_harness(wire=wire)
    response, _, _ = accept(h, cycle, subprotocol=None)
    assert response.get(b"sec-websocket-protocol") is None


@pytest.mark.parametrize("offered", [None, "chat"])
def test_accept_with_a_subprotocol_not_offered_raises(offered: str | None) -> None:
    extra = [("Sec-WebSocket-Protocol", offered)] if offered else []
    h, cycle = open_harness(wire=handshake(extra=extra))
    with pytest.raises(ASGIProtocolError, match="subprotocol"):
        h.message_from_app(cycle, {"type": "websocket.accept", "subprotocol": "other"})
    assert h.sent == b""


def test_accept_with_a_non_str_subprotocol_raises() -> None:
    h, cycle = open_harness(wire=handshake(extra=[("Sec-WebSocket-Protocol", "chat")]))
    with pytest.raises(ASGIProtocolError, match="subprotocol"):
        h.message_from_app(cycle, {"type": "websocket.accept", "subprotocol": b"chat"})
    assert h.sent == b""


def test_accept_sends_the_app_headers() -> None:
    h, cycle = open_harness()
    headers = [(b"x-custom", b"1"), (b"set-cookie", b"a=b"), (b"set-cookie", b"c=d")]
    response, _, _ = accept(h, cycle, headers=headers)
    assert response.get(b"x-custom") == b"1"
    assert response.get_all(b"set-cookie") == [b"a=b", b"c=d"]
    assert response.get(b"sec-websocket-accept") == ACCEPT_TOKEN


@pytest.mark.parametrize("name", [b"sec-websocket-protocol", b"Sec-WebSocket-Protocol"])
def test_accept_with_sec_websocket_protocol_in_headers_raises(name: bytes) -> None:
    h, cycle = open_harness(wire=handshake(extra=[("Sec-WebSocket-Protocol", "chat")]))
    with pytest.raises(ASGIProtocolError, match="sec-websocket-protocol"):
        h.message_from_app(cycle, {"type": "websocket.accept", "headers": [(name, b"chat")]})
    assert h.sent == b""


@pytest.mark.parametrize(
    "headers", [[(b"x-a", "str")], [("x-a", b"v")], b"x-a", [(b"x-a",)], [(b"bad name", b"v")]]
)
def test_accept_with_malformed_headers_raises(headers: Any) -> None:
    h, cycle = open_harness()
    with pytest.raises(ASGIProtocolError):
        h.message_from_app(cycle, {"type": "websocket.accept", "headers": headers})
    assert h.sent == b""


def test_send_before_accept_raises() -> None:
    h, cycle = open_harness()
    with pytest.raises(ASGIProtocolError):
        send(h, cycle, text="too early")
    assert h.sent == b""


def test_unknown_message_type_raises() -> None:
    h, cycle = open_harness()
    with pytest.raises(ASGIProtocolError, match="unexpected message type"):
        h.message_from_app(cycle, {"type": "http.response.start", "status": 200})


def test_accept_twice_raises() -> None:
    h, cycle, _ = open_connection()
    with pytest.raises(ASGIProtocolError):
        h.message_from_app(cycle, {"type": "websocket.accept"})
    assert h.take_sent() == b""


# ---------------------------------------------------------------- permessage-deflate


def test_permessage_deflate_is_negotiated_when_offered() -> None:
    wire = handshake(extra=[("Sec-WebSocket-Extensions", deflate_offer())])
    h, cycle = open_harness(wire=wire)
    response, client, _ = accept(h, cycle, offered=[PerMessageDeflate()])
    [accepted] = response.get_all(b"sec-websocket-extensions")
    assert accepted.startswith(b"permessage-deflate")
    # Server to client: compressed (RSV1) and smaller than the text.
    text = "compress me " * 100
    send(h, cycle, text=text)
    sent = h.take_sent()
    [frame] = server_frames(sent)
    assert frame.rsv1
    assert len(sent) < len(text) // 4
    assert client.messages(sent) == [text]
    # Client to server: the compressed frame decompresses to the message.
    data = b"\x00\x01" * 500
    frames = client.binary(data)
    assert frames[0] & 0x40, "the client compressed it (RSV1)"
    h.feed(frames)
    assert receive_all(h, cycle) == [{"type": "websocket.receive", "bytes": data}]


@pytest.mark.parametrize("control", ["ping", "pong"])
def test_permessage_deflate_fragmented_message_with_a_control_frame_between(control: str) -> None:
    """RFC 6455 §5.4: control frames may be injected between the fragments of a message; with
    permessage-deflate the message must still decompress (RFC 7692 §6.2)."""
    wire = handshake(extra=[("Sec-WebSocket-Extensions", deflate_offer())])
    h, cycle = open_harness(NO_PINGS, wire=wire)
    _, client, _ = accept(h, cycle, offered=[PerMessageDeflate()])
    between = client.ping(b"p") if control == "ping" else client.pong(b"p")
    h.feed(client.binary(b"first half, ", fin=False) + between + client.binary(b"second half"))
    assert receive_all(h, cycle) == [
        {"type": "websocket.receive", "bytes": b"first half, second half"}
    ]


@pytest.mark.parametrize(
    "bad",
    [
        "permessage-deflate; client_max_window_bits=x",
        "permessage-deflate; server_max_window_bits=x",
        "permessage-deflate; client_max_window_bits=7=12",
        "permessage-deflate; client_max_window_bits=8",
        "permessage-deflate; server_max_window_bits=99",
    ],
)
def test_a_deflate_offer_with_an_invalid_value_is_declined(bad: str) -> None:
    """RFC 7692 §7.1: the server MUST decline an offer with an invalid parameter value; a
    later valid offer is still taken, with nothing of the declined one in it."""
    wire = handshake(extra=[("Sec-WebSocket-Extensions", bad)])
    h, cycle = open_harness(wire=wire)
    response, _, _ = accept(h, cycle, offered=[PerMessageDeflate()])
    assert response.get(b"sec-websocket-extensions") is None
    offers = f"{bad}; client_no_context_takeover, permessage-deflate"
    h, cycle = open_harness(wire=handshake(extra=[("Sec-WebSocket-Extensions", offers)]))
    response, client, _ = accept(h, cycle, offered=[PerMessageDeflate()])
    assert response.get(b"sec-websocket-extensions") == b"permessage-deflate"
    h.feed(client.text("still compressed " * 10))
    assert receive_all(h, cycle) == [
        {"type": "websocket.receive", "text": "still compressed " * 10}
    ]


def test_permessage_deflate_is_not_negotiated_when_disabled() -> None:
    wire = handshake(extra=[("Sec-WebSocket-Extensions", deflate_offer())])
    h, cycle = open_harness(ProtocolSettings(ws_per_message_deflate=False), wire=wire)
    response, _, _ = accept(h, cycle, offered=[PerMessageDeflate()])
    assert response.get(b"sec-websocket-extensions") is None
    send(h, cycle, text="x" * 100)
    [frame] = server_frames(h.take_sent())
    assert not frame.rsv1
    assert frame.payload == b"x" * 100


def test_unknown_extension_offer_is_not_accepted() -> None:
    wire = handshake(extra=[("Sec-WebSocket-Extensions", "x-unknown; a=1")])
    h, cycle = open_harness(wire=wire)
    response, _, _ = accept(h, cycle)
    assert response.get(b"sec-websocket-extensions") is None


# ================================================================ refusing the handshake


def test_close_before_accept_is_403_and_close() -> None:
    h, cycle = open_harness()
    close(h, cycle)
    response = parse_response(h.sent)
    assert response.status == 403
    assert response.get(b"connection") == b"close"
    assert response.get(b"sec-websocket-accept") is None
    events = h.take_events()
    assert [e.status for e in events if isinstance(e, ResponseCompleted)] == [403]
    assert kinds(events)[-1] == "SendEOF"
    assert h.message_for_app(cycle)["type"] == "websocket.disconnect"  # type: ignore[index]
    h.eof()
    assert h.take_events() == [CloseConnection()]


def test_close_before_accept_with_a_code_is_still_403() -> None:
    h, cycle = open_harness()
    close(h, cycle, code=4003, reason="nope")
    assert parse_response(h.sent).status == 403


def test_close_before_accept_with_a_forbidden_code_raises() -> None:
    h, cycle = open_harness()
    with pytest.raises(ASGIProtocolError):
        close(h, cycle, code=1005)
    assert h.sent == b""


def test_app_returning_without_an_answer_is_403_and_misbehaved() -> None:
    h, cycle = open_harness()
    h.app_finished(cycle, None)
    assert parse_response(h.sent).status == 403
    assert h.of_type(AppMisbehaved)
    assert h.of_type(SendEOF)


def test_app_raising_before_accept_is_500() -> None:
    h, cycle = open_harness()
    h.app_finished(cycle, RuntimeError("boom"))
    response = parse_response(h.sent)
    assert response.status == 500
    assert response.get(b"connection") == b"close"
    assert b"boom" not in response.body
    assert not h.of_type(AppMisbehaved)
    assert h.of_type(SendEOF)


def test_denial_response_is_sent_then_the_connection_closes() -> None:
    h, cycle = open_harness(now=1.0)
    start = {
        "type": "websocket.http.response.start",
        "status": 401,
        "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Basic")],
    }
    h.message_from_app(cycle, start)
    assert h.sent == b""  # the head waits for the body
    body = {"type": "websocket.http.response.body", "body": b"go away", "more_body": True}
    h.message_from_app(cycle, body)
    assert not h.of_type(SendEOF)
    h.message_from_app(cycle, {"type": "websocket.http.response.body", "body": b"!"}, now=3.0)
    response, rest = split_handshake_response(h.sent)
    assert rest == b""
    assert response.status == 401
    assert response.body == b"go away!"
    assert response.get(b"www-authenticate") == b"Basic"
    assert response.get(b"content-type") == b"text/plain"
    assert response.get(b"sec-websocket-accept") is None
    [completed] = h.of_type(ResponseCompleted)
    assert (completed.status, completed.body_bytes, completed.complete) == (401, 8, True)
    assert completed.duration_s == 2.0
    assert kinds(h.events)[-1] == "SendEOF"
    assert h.message_for_app(cycle)["type"] == "websocket.disconnect"  # type: ignore[index]


def test_denial_with_content_length_is_sent_as_is() -> None:
    h, cycle = open_harness()
    start = {
        "type": "websocket.http.response.start",
        "status": 404,
        "headers": [(b"content-length", b"4")],
    }
    h.message_from_app(cycle, start)
    h.message_from_app(cycle, {"type": "websocket.http.response.body", "body": b"nope"})
    response, _ = split_handshake_response(h.sent)
    assert (response.status, response.body) == (404, b"nope")


def test_denial_body_without_start_raises() -> None:
    h, cycle = open_harness()
    with pytest.raises(ASGIProtocolError):
        h.message_from_app(cycle, {"type": "websocket.http.response.body", "body": b"x"})


def test_accept_after_denial_start_raises() -> None:
    h, cycle = open_harness()
    h.message_from_app(cycle, {"type": "websocket.http.response.start", "status": 403})
    with pytest.raises(ASGIProtocolError):
        h.message_from_app(cycle, {"type": "websocket.accept"})
    assert h.sent == b""


@pytest.mark.parametrize("status", [101, 199, 600, "200"])
def test_denial_with_an_invalid_status_raises(status: Any) -> None:
    h, cycle = open_harness()
    with pytest.raises(ASGIProtocolError):
        h.message_from_app(cycle, {"type": "websocket.http.response.start", "status": status})


def test_app_returning_in_the_middle_of_a_denial_closes() -> None:
    h, cycle = open_harness()
    h.message_from_app(cycle, {"type": "websocket.http.response.start", "status": 403})
    h.message_from_app(
        cycle, {"type": "websocket.http.response.body", "body": b"part", "more_body": True}
    )
    h.app_finished(cycle, None)
    assert h.of_type(AppMisbehaved)
    assert h.of_type(SendEOF)
    [completed] = h.of_type(ResponseCompleted)
    assert not completed.complete


def test_app_raising_after_denial_start_before_body_is_500() -> None:
    h, cycle = open_harness()
    h.message_from_app(cycle, {"type": "websocket.http.response.start", "status": 403})
    h.app_finished(cycle, RuntimeError("boom"))
    assert parse_response(h.sent).status == 500


@pytest.mark.parametrize("refusal", ["close", "return", "raise", "denial"])
def test_receive_after_a_refused_handshake_is_disconnect(refusal: str) -> None:
    h, cycle = open_harness()
    if refusal == "close":
        close(h, cycle)
    elif refusal == "return":
        h.app_finished(cycle, None)
    elif refusal == "raise":
        h.app_finished(cycle, RuntimeError())
    else:
        h.message_from_app(cycle, {"type": "websocket.http.response.start", "status": 403})
        h.message_from_app(cycle, {"type": "websocket.http.response.body"})
    first = h.message_for_app(cycle)
    assert first is not None
    assert first["type"] == "websocket.disconnect"
    assert isinstance(first["code"], int)
    assert h.message_for_app(cycle) == first  # and every later receive() too
    with pytest.raises(ClientDisconnected):
        send(h, cycle, text="x")
    with pytest.raises(ClientDisconnected):
        h.message_from_app(cycle, {"type": "websocket.accept"})


def test_refused_handshake_wakes_a_waiting_receive() -> None:
    h, cycle = open_harness()
    assert h.message_for_app(cycle) is None
    close(h, cycle)
    assert WakeApp(cycle=cycle) in h.events
    assert h.message_for_app(cycle)["type"] == "websocket.disconnect"  # type: ignore[index]


def test_client_eof_before_accept_is_disconnect_1006() -> None:
    h, cycle = open_harness()
    assert h.message_for_app(cycle) is None
    h.eof()
    assert WakeApp(cycle=cycle) in h.events
    assert h.message_for_app(cycle) == {"type": "websocket.disconnect", "code": 1006, "reason": ""}
    assert h.of_type(CloseConnection)
    with pytest.raises(ClientDisconnected):
        h.message_from_app(cycle, {"type": "websocket.accept"})
    assert h.sent == b""


def test_client_eof_before_the_app_takes_connect_gives_only_disconnect() -> None:
    h = Harness()
    h.feed(handshake())
    h.eof()
    message = h.message_for_app(h.cycle())
    assert message == {"type": "websocket.disconnect", "code": 1006, "reason": ""}


def test_client_eof_during_a_denial_response_is_disconnect() -> None:
    """ASGI: websocket.disconnect is sent when the connection is lost "for any reason"."""
    h, cycle = open_harness()
    h.message_from_app(cycle, {"type": "websocket.http.response.start", "status": 403})
    h.eof()
    assert h.of_type(CloseConnection)
    message = h.message_for_app(cycle)
    assert message is not None, "receive() would wait forever on a closed connection"
    assert message["type"] == "websocket.disconnect"
    with pytest.raises(ClientDisconnected):
        h.message_from_app(cycle, {"type": "websocket.http.response.body", "body": b"x"})


# ================================================================ bytes behind the handshake


@pytest.mark.parametrize("same_feed", [True, False], ids=["same-feed", "later-feed"])
def test_frames_sent_before_accept_are_received_after_it(same_feed: bool) -> None:
    early_client = WSClient()
    frames = early_client.text("early") + early_client.binary(b"\x00bin") + early_client.ping(b"p")
    h = Harness()
    if same_feed:
        h.feed(handshake() + frames)
    else:
        h.feed(handshake())
        h.feed(frames[:3])
        h.feed(frames[3:])
    cycle = h.cycle()
    assert h.message_for_app(cycle) == {"type": "websocket.connect"}
    assert h.message_for_app(cycle) is None  # nothing before accept
    assert h.sent == b""
    _, _, rest = accept(h, cycle)
    # The early ping is answered right behind the 101.
    assert [(f.opcode, f.payload) for f in server_frames(rest)] == [(PONG, b"p")]
    assert receive_all(h, cycle) == [
        {"type": "websocket.receive", "text": "early"},
        {"type": "websocket.receive", "bytes": b"\x00bin"},
    ]


def test_close_frame_sent_before_accept_is_handled_after_it() -> None:
    early_client = WSClient()
    h = Harness()
    h.feed(handshake() + early_client.text("hi") + early_client.close(1001, "bye"))
    cycle = h.cycle()
    assert h.message_for_app(cycle) == {"type": "websocket.connect"}
    _, _, rest = accept(h, cycle)
    [frame] = close_frames(rest)
    assert frame.close_code == 1001
    assert receive_all(h, cycle) == [
        {"type": "websocket.receive", "text": "hi"},
        {"type": "websocket.disconnect", "code": 1001, "reason": "bye"},
    ]
    assert h.of_type(SendEOF)


# ================================================================ messages


def test_text_and_bytes_from_the_client_reach_the_app() -> None:
    h, cycle, client = open_connection()
    h.feed(client.text("hello") + client.binary(b"\x00\xff") + client.text("") + client.binary(b""))
    messages = receive_all(h, cycle)
    assert messages == [
        {"type": "websocket.receive", "text": "hello"},
        {"type": "websocket.receive", "bytes": b"\x00\xff"},
        {"type": "websocket.receive", "text": ""},
        {"type": "websocket.receive", "bytes": b""},
    ]
    for message in messages:
        assert type(message.get("bytes", b"")) is bytes
        assert type(message.get("text", "")) is str
        # Exactly one of bytes/text is set (not None).
        assert (message.get("bytes") is None) != (message.get("text") is None)


def test_message_fed_byte_by_byte_is_one_receive_of_bytes() -> None:
    h, cycle, client = open_connection()
    h.feed_pieces(client.binary(b"abcdef" * 50), 1)
    [message] = receive_all(h, cycle)
    assert message == {"type": "websocket.receive", "bytes": b"abcdef" * 50}
    assert type(message["bytes"]) is bytes


def test_fragmented_messages_are_reassembled() -> None:
    h, cycle, client = open_connection()
    wire = (
        client.text("hel", fin=False)
        + client.ping(b"between")  # a control frame may interleave (RFC 6455 §5.4)
        + client.text("lo ", fin=False)
        + client.text("wörld")
        + client.binary(b"\x01", fin=False)
        + client.binary(b"", fin=False)
        + client.binary(b"\x02\x03")
    )
    h.feed(wire)
    messages = receive_all(h, cycle)
    assert messages == [
        {"type": "websocket.receive", "text": "hello wörld"},
        {"type": "websocket.receive", "bytes": b"\x01\x02\x03"},
    ]
    assert type(messages[1]["bytes"]) is bytes
    assert [(f.opcode, f.payload) for f in server_frames(h.take_sent())] == [(PONG, b"between")]


def test_a_character_split_across_fragments_is_reassembled() -> None:
    h, cycle, _ = open_connection()
    euro = "€".encode()
    h.feed(client_frame(TEXT, b"a" + euro[:1], fin=False))
    assert h.message_for_app(cycle) is None
    h.feed(client_frame(CONTINUATION, euro[1:2], fin=False))
    h.feed(client_frame(CONTINUATION, euro[2:] + b"b"))
    assert receive_all(h, cycle) == [{"type": "websocket.receive", "text": "a€b"}]


def test_an_incomplete_message_is_not_delivered() -> None:
    h, cycle, client = open_connection()
    h.feed(client.text("part", fin=False))
    assert h.message_for_app(cycle) is None
    h.feed(client.text("ial"))
    assert receive_all(h, cycle) == [{"type": "websocket.receive", "text": "partial"}]


def test_a_message_wakes_a_waiting_receive() -> None:
    h, cycle, client = open_connection()
    assert h.message_for_app(cycle) is None
    h.feed(client.text("x"))
    assert h.take_events() == [WakeApp(cycle=cycle)]
    h.feed(client.text("y"))
    assert h.take_events() == []  # nobody is waiting any more
    assert len(receive_all(h, cycle)) == 2


def test_app_messages_reach_the_client() -> None:
    h, cycle, client = open_connection()
    send(h, cycle, text="hello")
    send(h, cycle, bytes=b"\x00\xff")
    send(h, cycle, text="")
    send(h, cycle, bytes=b"")
    send(h, cycle, text="ü" * 70_000)
    assert client.messages(h.take_sent()) == ["hello", b"\x00\xff", "", b"", "ü" * 70_000]


def test_send_with_none_for_the_other_key_is_fine() -> None:
    h, cycle, client = open_connection()
    send(h, cycle, text="t", bytes=None)
    send(h, cycle, bytes=b"b", text=None)
    assert client.messages(h.take_sent()) == ["t", b"b"]


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"text": None, "bytes": None},
        {"text": "a", "bytes": b"a"},
        {"text": "", "bytes": b""},
        {"text": b"bytes-as-text"},
        {"bytes": "str-as-bytes"},
        {"bytes": bytearray(b"x")},
        {"bytes": memoryview(b"x")},
        {"text": 1},
    ],
    ids=repr,
)
def test_invalid_send_raises(fields: dict[str, Any]) -> None:
    h, cycle, _ = open_connection()
    with pytest.raises(ASGIProtocolError, match=r"websocket\.send"):
        send(h, cycle, **fields)
    assert h.take_sent() == b""


def test_invalid_utf8_in_a_text_frame_closes_1007() -> None:
    h, cycle, _ = open_connection()
    h.feed(client_frame(TEXT, b"ok \xff\xfe"))
    [frame] = close_frames(h.take_sent())
    assert frame.close_code == 1007
    assert kinds(h.take_events())[-1] == "SendEOF"
    message = receive_all(h, cycle)[-1]
    assert message["type"] == "websocket.disconnect"
    assert message["code"] == 1007
    with pytest.raises(ClientDisconnected):
        send(h, cycle, text="x")


def test_invalid_utf8_across_fragments_closes_1007() -> None:
    h, cycle, _ = open_connection()
    h.feed(client_frame(TEXT, b"ok", fin=False))
    h.feed(client_frame(CONTINUATION, b"\xc3\x28"))
    [frame] = close_frames(h.take_sent())
    assert frame.close_code == 1007
    assert receive_all(h, cycle)[-1]["code"] == 1007


def test_unmasked_client_frame_is_a_protocol_error_1002() -> None:
    h, cycle, _ = open_connection()
    h.feed(b"\x81\x02hi")  # a text frame without a mask (RFC 6455 §5.1)
    [frame] = close_frames(h.take_sent())
    assert frame.close_code == 1002
    assert receive_all(h, cycle)[-1]["code"] == 1002
    assert h.of_type(SendEOF)


# ================================================================ closing


def test_client_close_is_echoed_and_the_app_gets_code_and_reason() -> None:
    h, cycle, client = open_connection()
    h.feed(client.close(4001, "bye now"))
    frames = close_frames(h.take_sent())
    assert [(f.close_code, f.close_reason) for f in frames] == [(4001, "bye now")]
    assert receive_all(h, cycle) == [
        {"type": "websocket.disconnect", "code": 4001, "reason": "bye now"}
    ]
    assert h.take_events()[-1:] == [SendEOF()]
    h.eof()
    assert h.take_events() == [CloseConnection()]
    assert receive_all(h, cycle) == [
        {"type": "websocket.disconnect", "code": 4001, "reason": "bye now"}
    ]


def test_client_close_with_a_utf8_reason() -> None:
    h, cycle, client = open_connection()
    h.feed(client.close(1000, "tschüß"))
    assert receive_all(h, cycle) == [
        {"type": "websocket.disconnect", "code": 1000, "reason": "tschüß"}
    ]


def test_client_close_without_a_code_is_1005_and_never_sent_on_the_wire() -> None:
    h, cycle, _ = open_connection()
    h.feed(client_frame(CLOSE, b""))
    sent = h.take_sent()
    frames = close_frames(sent)
    assert len(frames) == 1
    assert frames[0].close_code not in (1005, 1006)  # RFC 6455 §7.4.1
    assert receive_all(h, cycle) == [{"type": "websocket.disconnect", "code": 1005, "reason": ""}]
    assert h.of_type(SendEOF)


def test_client_close_with_a_1005_frame_is_a_protocol_error() -> None:
    h, cycle, _ = open_connection()
    h.feed(client_frame(CLOSE, b"\x03\xed"))  # 1005: must not be sent (RFC 6455 §7.4.1)
    [frame] = close_frames(h.take_sent())
    assert frame.close_code == 1002
    assert receive_all(h, cycle)[-1]["code"] == 1002


def test_eof_without_a_close_frame_is_1006() -> None:
    h, cycle, client = open_connection()
    h.feed(client.text("last"))
    h.eof()
    assert h.take_sent() == b""
    assert h.take_events()[-1] == CloseConnection()
    assert receive_all(h, cycle) == [
        {"type": "websocket.receive", "text": "last"},
        {"type": "websocket.disconnect", "code": 1006, "reason": ""},
    ]


def test_eof_wakes_a_waiting_receive() -> None:
    h, cycle, _ = open_connection()
    assert h.message_for_app(cycle) is None
    h.eof()
    assert WakeApp(cycle=cycle) in h.events


def test_no_close_frame_on_the_wire_ever_carries_1005_or_1006() -> None:
    """Every way a close frame leaves the server, read as raw frames."""
    scenarios = []
    h, cycle, _ = open_connection()
    h.feed(client_frame(CLOSE, b""))
    scenarios.append(h.take_sent())
    h, cycle, client = open_connection()
    h.feed(client.close(1000))
    scenarios.append(h.take_sent())
    h, cycle, _ = open_connection()
    close(h, cycle)
    scenarios.append(h.take_sent())
    h, cycle, _ = open_connection()
    h.app_finished(cycle, RuntimeError())
    scenarios.append(h.take_sent())
    h, cycle, _ = open_connection()
    h.timer(20.0)
    h.timer(40.0)  # keepalive timeout
    scenarios.append(h.take_sent())
    for sent in scenarios:
        [frame] = close_frames(sent)
        assert frame.close_code not in (1005, 1006, 1015)


@pytest.mark.parametrize(
    ("fields", "code", "reason"),
    [
        ({}, 1000, ""),
        ({"code": 1001}, 1001, ""),
        ({"code": 4000, "reason": "custom"}, 4000, "custom"),
        ({"code": 3000, "reason": "é" * 61 + "x"}, 3000, "é" * 61 + "x"),  # 123 bytes
        ({"reason": None}, 1000, ""),
    ],
)
def test_app_close_sends_a_close_frame(fields: dict[str, Any], code: int, reason: str) -> None:
    h, cycle, client = open_connection()
    close(h, cycle, **fields)
    sent = h.take_sent()
    [frame] = server_frames(sent)
    assert (frame.opcode, frame.close_code, frame.close_reason) == (CLOSE, code, reason)
    assert not h.of_type(SendEOF)  # waits for the peer's close frame
    [event] = client.receive(sent)
    assert isinstance(event, WSClose)
    assert (event.code, event.reason) == (code, reason)


def test_app_close_completed_by_the_peer_then_eof() -> None:
    h, cycle, client = open_connection(now=10.0)
    close(h, cycle, code=1000, now=11.0)
    client.receive(h.take_sent())
    assert h.message_for_app(cycle) is None  # the app hears of it when the peer answers
    h.take_events()
    h.feed(client.close(1000), now=12.0)
    assert h.take_sent() == b""  # no second close frame
    assert h.take_events()[-1:] == [SendEOF()]
    assert h.protocol.next_deadline() == 12.0 + h.settings.linger_timeout_s
    assert receive_all(h, cycle) == [{"type": "websocket.disconnect", "code": 1000, "reason": ""}]
    h.eof()
    assert h.take_events() == [CloseConnection()]
    assert h.protocol.next_deadline() is None


def test_app_close_completed_by_the_peer_then_linger_timeout() -> None:
    h, cycle, client = open_connection()
    close(h, cycle)
    client.receive(h.take_sent())
    h.feed(client.close(1000), now=1.0)
    assert h.of_type(SendEOF)
    h.take_events()
    h.timer(1.0 + h.settings.linger_timeout_s - 0.01)
    assert h.take_events() == []
    h.timer(1.0 + h.settings.linger_timeout_s)
    assert h.take_events() == [CloseConnection()]


def test_app_close_without_an_answer_gives_up_after_the_close_timeout() -> None:
    settings = ProtocolSettings(ws_ping_interval_s=None, ws_close_timeout_s=3.0)
    h, cycle, _ = open_connection(settings, now=100.0)
    close(h, cycle, now=101.0)
    h.take_sent()
    assert h.protocol.next_deadline() == 104.0
    h.timer(103.99)
    assert h.take_events() == []
    h.timer(104.0)
    assert h.take_events()[-1:] == [SendEOF()]
    assert h.take_sent() == b""
    assert receive_all(h, cycle) == [{"type": "websocket.disconnect", "code": 1006, "reason": ""}]
    assert h.protocol.next_deadline() == 104.0 + settings.linger_timeout_s
    h.timer(104.0 + settings.linger_timeout_s)
    assert h.take_events() == [CloseConnection()]


def test_frames_after_the_app_closed_are_dropped_until_the_peer_closes() -> None:
    h, cycle, client = open_connection()
    close(h, cycle)
    h.take_sent()
    h.feed(client.text("late") + client.ping(b"p"))
    assert h.take_sent() == b""  # no pong while closing
    assert h.message_for_app(cycle) is None
    h.feed(client.close(1000))
    assert receive_all(h, cycle) == [{"type": "websocket.disconnect", "code": 1000, "reason": ""}]


@pytest.mark.parametrize(
    "fields",
    [
        {"code": 1005},
        {"code": 1006},
        {"code": 1015},
        {"code": 999},
        {"code": 2000},
        {"code": 5000},
        {"code": "1000"},
        {"code": 1000.0},
        {"reason": "x" * 124},
        {"reason": "é" * 62},  # 124 bytes in UTF-8, 62 characters
        {"reason": b"bytes"},
    ],
    ids=repr,
)
def test_invalid_close_raises(fields: dict[str, Any]) -> None:
    h, cycle, _ = open_connection()
    with pytest.raises(ASGIProtocolError, match=r"websocket\.close"):
        close(h, cycle, **fields)
    assert h.take_sent() == b""
    send(h, cycle, text="still open")
    assert h.take_sent() != b""


def test_app_raising_after_accept_closes_1011() -> None:
    h, cycle, _ = open_connection()
    h.app_finished(cycle, RuntimeError("boom"))
    [frame] = close_frames(h.take_sent())
    assert frame.close_code == 1011
    assert "boom" not in frame.close_reason


def test_app_returning_after_accept_closes_1000() -> None:
    h, cycle, _ = open_connection()
    h.app_finished(cycle, None)
    [frame] = close_frames(h.take_sent())
    assert frame.close_code == 1000
    assert not h.of_type(AppMisbehaved)


def test_app_returning_after_the_connection_closed_sends_nothing() -> None:
    h, cycle, client = open_connection()
    h.feed(client.close(1000))
    h.take_sent()
    h.app_finished(cycle, None)
    assert h.take_sent() == b""


@pytest.mark.parametrize("how", ["client-close", "app-close", "eof", "invalid-frame"])
def test_send_after_the_connection_closed_raises_client_disconnected(how: str) -> None:
    h, cycle, client = open_connection()
    if how == "client-close":
        h.feed(client.close(1000))
    elif how == "app-close":
        close(h, cycle)
    elif how == "eof":
        h.eof()
    else:
        h.feed(client_frame(TEXT, b"\xff"))
    h.take_sent()
    with pytest.raises(ClientDisconnected) as info:
        send(h, cycle, text="x")
    assert isinstance(info.value, OSError)
    with pytest.raises(ClientDisconnected):
        close(h, cycle)
    assert h.take_sent() == b""


def test_close_frame_with_a_too_long_reason_from_the_client_is_a_protocol_error() -> None:
    h, cycle, _ = open_connection()
    h.feed(client_frame(CLOSE, b"\x03\xe8" + b"x" * 124))  # a 126-byte control frame
    [frame] = close_frames(h.take_sent())
    assert frame.close_code == 1002
    assert receive_all(h, cycle)[-1]["type"] == "websocket.disconnect"


# ================================================================ ping and pong


def test_client_ping_is_answered_with_a_pong_with_the_same_payload() -> None:
    h, cycle, client = open_connection()
    h.feed(client.ping(b"are you there?"))
    sent = h.take_sent()
    assert [(f.opcode, f.payload) for f in server_frames(sent)] == [(PONG, b"are you there?")]
    [event] = client.receive(sent)
    assert isinstance(event, Pong)
    assert event.payload == b"are you there?"
    assert h.message_for_app(cycle) is None  # pings are not for the app


def test_unsolicited_pong_is_ignored() -> None:
    h, cycle, client = open_connection()
    h.feed(client.pong(b"x"))
    assert h.take_sent() == b""
    assert h.message_for_app(cycle) is None


KEEPALIVE = ProtocolSettings(ws_ping_interval_s=20, ws_ping_timeout_s=20)


def test_keepalive_ping_is_due_one_interval_after_accept() -> None:
    h, _, client = open_connection(KEEPALIVE, now=1000.0)
    assert h.protocol.next_deadline() == 1020.0
    h.timer(1019.9)
    assert h.take_sent() == b""
    h.timer(1020.0)
    [event] = client.receive(h.take_sent())
    assert isinstance(event, Ping)
    assert h.protocol.next_deadline() == 1040.0  # the pong deadline


def test_answered_keepalive_ping_schedules_the_next() -> None:
    h, _, client = open_connection(KEEPALIVE, now=1000.0)
    h.timer(1020.0)
    [ping] = client.receive(h.take_sent())
    assert isinstance(ping, Ping)
    h.feed(client.pong(ping.payload), now=1025.0)
    assert h.protocol.next_deadline() == 1045.0
    h.timer(1040.0)  # the old pong deadline: nothing happens
    assert h.take_sent() == b""
    h.timer(1045.0)
    [second] = client.receive(h.take_sent())
    assert isinstance(second, Ping)


def test_unanswered_keepalive_ping_closes_1011() -> None:
    h, cycle, _ = open_connection(KEEPALIVE, now=1000.0)
    h.timer(1020.0)
    h.take_sent()
    h.timer(1040.0)
    [frame] = server_frames(h.take_sent())
    assert (frame.opcode, frame.close_code) == (CLOSE, 1011)
    # Then the close handshake as usual: the close timeout, then 1006 for the app.
    assert h.protocol.next_deadline() == 1040.0 + KEEPALIVE.ws_close_timeout_s
    h.timer(1040.0 + KEEPALIVE.ws_close_timeout_s)
    assert receive_all(h, cycle)[-1] == {"type": "websocket.disconnect", "code": 1006, "reason": ""}


def test_keepalive_without_a_timeout_pings_every_interval() -> None:
    h, _, client = open_connection(
        ProtocolSettings(ws_ping_interval_s=10, ws_ping_timeout_s=None), now=0.0
    )
    for t in (10.0, 20.0, 30.0):
        assert h.protocol.next_deadline() == t
        h.timer(t)
        [ping] = client.receive(h.take_sent())
        assert isinstance(ping, Ping)


def test_no_keepalive_when_the_interval_is_none() -> None:
    h, _, _ = open_connection(NO_PINGS, now=0.0)
    assert h.protocol.next_deadline() is None
    h.timer(1e9)
    assert h.take_sent() == b""


def test_no_keepalive_before_accept() -> None:
    h, _ = open_harness(KEEPALIVE, now=0.0)
    assert h.protocol.next_deadline() is None
    h.timer(100.0)
    assert h.sent == b""


# ================================================================ size limit


@pytest.mark.parametrize("kind", ["text", "bytes"])
@pytest.mark.parametrize("fragmented", [False, True])
def test_message_over_max_size_closes_1009(kind: str, fragmented: bool) -> None:
    h, cycle, client = open_connection(ProtocolSettings(ws_max_size_bytes=1000))
    send_part = client.text if kind == "text" else client.binary
    payload: Any = "x" * 1001 if kind == "text" else b"x" * 1001
    if fragmented:
        wire = b"".join(send_part(payload[i : i + 100], fin=False) for i in range(0, 1000, 100))
        wire += send_part(payload[1000:])
    else:
        wire = send_part(payload)
    h.feed(wire)
    frames = close_frames(h.take_sent())
    assert [f.close_code for f in frames] == [1009]
    assert h.message_for_app(cycle) is None  # never delivered


@pytest.mark.parametrize("fragmented", [False, True])
def test_message_of_exactly_max_size_is_delivered(fragmented: bool) -> None:
    h, cycle, client = open_connection(ProtocolSettings(ws_max_size_bytes=1000))
    if fragmented:
        h.feed(client.binary(b"y" * 500, fin=False) + client.binary(b"y" * 500))
    else:
        h.feed(client.binary(b"y" * 1000))
    assert receive_all(h, cycle) == [{"type": "websocket.receive", "bytes": b"y" * 1000}]
    assert h.take_sent() == b""


def test_many_messages_under_the_limit_are_fine() -> None:
    h, cycle, client = open_connection(ProtocolSettings(ws_max_size_bytes=100))
    h.feed(b"".join(client.binary(b"z" * 100) for _ in range(20)))
    assert len(receive_all(h, cycle)) == 20
    assert close_frames(h.take_sent()) == []


def test_text_over_max_size_in_utf8_bytes_closes_1009() -> None:
    """The limit is in bytes: 400 three-byte characters are 1200 bytes, over a 1000 limit."""
    h, cycle, client = open_connection(ProtocolSettings(ws_max_size_bytes=1000))
    h.feed(client.text("€" * 400))
    assert [f.close_code for f in close_frames(h.take_sent())] == [1009]
    assert h.message_for_app(cycle) is None


def test_message_too_big_then_peer_close_tells_the_app() -> None:
    h, cycle, client = open_connection(ProtocolSettings(ws_max_size_bytes=10))
    h.feed(client.binary(b"x" * 11))
    client.receive(h.take_sent())
    h.feed(client.close(1009))
    assert receive_all(h, cycle) == [{"type": "websocket.disconnect", "code": 1009, "reason": ""}]


# ================================================================ backpressure


def test_unread_messages_pause_reading_and_draining_resumes() -> None:
    settings = ProtocolSettings(body_buffer_high_water_bytes=1000, ws_ping_interval_s=None)
    h, cycle, client = open_connection(settings)
    for i in range(10):
        h.feed(client.binary(b"m" * 100))
        assert not h.of_type(PauseReading), f"paused after {i + 1} messages of 100 bytes"
    h.feed(client.binary(b"m" * 100))  # 1100 bytes queued
    assert h.take_events() == [PauseReading()]
    # Draining: reading resumes once at most half the high water is queued.
    resumed_after = None
    for taken in range(1, 12):
        message = h.message_for_app(cycle)
        assert message == {"type": "websocket.receive", "bytes": b"m" * 100}
        if h.of_type(ResumeReading):
            resumed_after = taken
            break
    assert resumed_after == 6  # 500 bytes left
    assert h.take_events() == [ResumeReading()]


def test_unread_text_pauses_reading_too() -> None:
    settings = ProtocolSettings(body_buffer_high_water_bytes=100, ws_ping_interval_s=None)
    h, cycle, client = open_connection(settings)
    h.feed(client.text("t" * 60) + client.text("t" * 60))
    assert h.take_events() == [PauseReading()]
    receive_all(h, cycle)
    assert h.take_events() == [ResumeReading()]


def test_bytes_before_accept_pause_reading_and_accept_resumes() -> None:
    settings = ProtocolSettings(body_buffer_high_water_bytes=100, ws_ping_interval_s=None)
    h, cycle = open_harness(settings)
    h.take_events()
    early = WSClient()
    h.feed(early.binary(b"e" * 150))
    assert h.take_events() == [PauseReading()]
    _, _, _ = accept(h, cycle)
    # The early message is now queued for the app: still paused until the app reads it.
    assert not h.of_type(ResumeReading)
    assert receive_all(h, cycle) == [{"type": "websocket.receive", "bytes": b"e" * 150}]
    assert h.of_type(ResumeReading)


def test_closing_releases_a_paused_reader() -> None:
    settings = ProtocolSettings(body_buffer_high_water_bytes=100, ws_ping_interval_s=None)
    h, _, client = open_connection(settings)
    h.feed(client.binary(b"p" * 150))
    assert h.take_events() == [PauseReading()]
    h.feed(client.close(1000))
    events = h.take_events()
    # The peer's close must be seen (and the linger read) even though the app never read.
    assert ResumeReading() in events
    assert events[-1] == SendEOF()


# ================================================================ shutdown


def test_shutdown_closes_an_open_websocket_with_1012() -> None:
    h, cycle, client = open_connection()
    h.protocol.shutdown(50.0)
    sent = h.protocol.data_to_send()
    [frame] = server_frames(sent)
    assert (frame.opcode, frame.close_code) == (CLOSE, 1012)
    [event] = client.receive(sent)
    assert isinstance(event, WSClose)
    h.feed(client.close(1012), now=51.0)
    assert h.of_type(SendEOF)
    assert receive_all(h, cycle) == [{"type": "websocket.disconnect", "code": 1012, "reason": ""}]


def test_shutdown_during_the_handshake_sends_nothing_until_the_app_answers() -> None:
    h, cycle = open_harness()
    h.protocol.shutdown(0.0)
    assert h.protocol.data_to_send() == b""
    close(h, cycle)
    assert parse_response(h.sent).status == 403


# ================================================================ the app's view of the order


def test_accept_without_receiving_connect_then_client_messages_and_close() -> None:
    """An app may accept without awaiting receive() first; no client message may be lost."""
    h = Harness(NO_PINGS)
    h.feed(handshake())
    cycle = h.cycle()
    _, client, _ = accept(h, cycle)
    h.feed(client.text("one") + client.text("two") + client.close(1000))
    messages = receive_all(h, cycle)
    assert [m for m in messages if m["type"] != "websocket.connect"] == [
        {"type": "websocket.receive", "text": "one"},
        {"type": "websocket.receive", "text": "two"},
        {"type": "websocket.disconnect", "code": 1000, "reason": ""},
    ]
