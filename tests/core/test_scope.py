"""The HTTP connection scope, key by key (ASGI HTTP spec, "HTTP Connection Scope")."""

from __future__ import annotations

from typing import Any

import pytest

from sansio_asgi.core import ProtocolSettings
from sansio_asgi.core.events import ResponseCompleted

from .helpers import CLIENT, SERVER, Harness, request
from .ws_helpers import handshake


def scope_of(data: bytes, settings: ProtocolSettings | None = None, **kw: Any) -> dict[str, Any]:
    h = Harness(settings, **kw)
    h.feed(data)
    [start] = h.start_apps()
    return start.scope


def test_whole_scope_of_a_simple_request() -> None:
    scope = scope_of(
        b"GET /a%20b/c?x=1&y=%20 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n"
    )
    assert scope == {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.5"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/a b/c",
        "raw_path": b"/a%20b/c",
        "query_string": b"x=1&y=%20",
        "root_path": "",
        "headers": [(b"host", b"example.com"), (b"user-agent", b"t")],
        "client": CLIENT,
        "server": SERVER,
        "extensions": {
            "http.response.pathsend": {},
            "http.response.zerocopysend": {},
            "http.response.trailers": {},
            "http.response.early_hint": {},
        },
    }
    assert "state" not in scope
    assert type(scope["raw_path"]) is bytes and type(scope["query_string"]) is bytes


@pytest.mark.parametrize(
    ("version", "expected"), [("1.0", "1.0"), ("1.1", "1.1"), ("1.2", "1.1"), ("1.9", "1.1")]
)
def test_http_version(version: str, expected: str) -> None:
    headers = (("Host", "a"),)
    assert scope_of(request("GET", "/", headers, version=version))["http_version"] == expected


@pytest.mark.parametrize("method", ["GET", "get", "PATCH", "M-SEARCH", "PROPFIND", "Post"])
def test_method_as_received(method: str) -> None:
    assert scope_of(request(method, "/"))["method"] == method


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_scheme(scheme: str) -> None:
    assert scope_of(request(), scheme=scheme)["scheme"] == scheme


@pytest.mark.parametrize(
    ("target", "path", "raw_path", "query_string"),
    [
        ("/", "/", b"/", b""),
        ("/a%20b", "/a b", b"/a%20b", b""),
        ("/%E2%82%AC", "/€", b"/%E2%82%AC", b""),
        ("/%e2%82%ac", "/€", b"/%e2%82%ac", b""),
        ("/caf%C3%A9?q=%C3%A9", "/café", b"/caf%C3%A9", b"q=%C3%A9"),
        ("/a%2Fb", "/a/b", b"/a%2Fb", b""),
        ("/%25", "/%", b"/%25", b""),
        ("/a+b", "/a+b", b"/a+b", b""),
        ("/%FF", "/\ufffd", b"/%FF", b""),
        ("/p?", "/p", b"/p", b""),
        ("/p?a=1&a=2&b", "/p", b"/p", b"a=1&a=2&b"),
        ("/p?x=%2F?y", "/p", b"/p", b"x=%2F?y"),
    ],
)
def test_path_raw_path_and_query_string(
    target: str, path: str, raw_path: bytes, query_string: bytes
) -> None:
    scope = scope_of(request("GET", target))
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == (
        path,
        raw_path,
        query_string,
    )
    scope["path"].encode("utf-8")  # never a lone surrogate


def test_absolute_form_target() -> None:
    scope = scope_of(b"GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == ("/x", b"/x", b"y")


def test_absolute_form_target_without_path() -> None:
    scope = scope_of(b"GET http://example.com?y HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == ("/", b"/", b"y")


# RFC 9112 §3.2.2: with an absolute-form target, the server "MUST ignore the received Host
# header field (if any) and instead replace it with the host information of the request-target".


@pytest.mark.parametrize(
    ("target", "host"),
    [
        ("http://other.example/p", b"other.example"),
        ("http://other.example:8080/p?q", b"other.example:8080"),
        ("HTTPS://Other.Example:443", b"Other.Example:443"),  # as sent
        ("http://user:secret@other.example/p", b"other.example"),  # userinfo is not host
        ("http://[::1]:81/p", b"[::1]:81"),
    ],
)
def test_absolute_form_target_replaces_the_received_host(target: str, host: bytes) -> None:
    headers = (("X-Before", "1"), ("Host", "x"), ("X-After", "2"))
    h = Harness()
    h.feed(request("GET", target, headers))
    assert h.scope()["headers"] == [(b"x-before", b"1"), (b"host", host), (b"x-after", b"2")]
    h.respond(h.cycle())
    [completed] = h.of_type(ResponseCompleted)
    assert completed.request_headers == h.scope()["headers"]  # the access log agrees


def test_absolute_form_target_gives_an_http10_request_its_host() -> None:
    scope = scope_of(request("GET", "http://other.example/p", (("X-A", "1"),), version="1.0"))
    assert scope["headers"] == [(b"x-a", b"1"), (b"host", b"other.example")]


@pytest.mark.parametrize("target", ["/p", "*", "/http://other.example/"])
def test_other_target_forms_keep_the_received_host(target: str) -> None:
    method = "OPTIONS" if target == "*" else "GET"
    assert scope_of(request(method, target, (("Host", "x"),)))["headers"] == [(b"host", b"x")]


def test_absolute_form_handshake_replaces_the_host_in_the_websocket_scope() -> None:
    h = Harness()
    h.feed(handshake("ws://other.example:81/chat", replace={"Host": "x"}))
    scope = h.scope()
    assert scope["type"] == "websocket"
    assert scope["path"] == "/chat"
    assert [value for name, value in scope["headers"] if name == b"host"] == [b"other.example:81"]
    assert [name for name, _ in scope["headers"]] == [
        b"host",
        b"upgrade",
        b"connection",
        b"sec-websocket-key",
        b"sec-websocket-version",
    ]


def test_absolute_form_host_is_the_same_fed_byte_by_byte() -> None:
    data = request("GET", "http://other.example:8080/p", (("Host", "x"),))
    whole = scope_of(data)
    h = Harness()
    h.feed_pieces(data, 1)
    assert h.scope() == whole
    assert whole["headers"] == [(b"host", b"other.example:8080")]


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("/users", "/api/users"),
        ("/", "/api/"),
        ("/api/users", "/api/users"),
        ("/api", "/api"),
        ("/apix", "/api/apix"),
    ],
)
def test_root_path_prepended_unless_path_already_starts_with_it(target: str, path: str) -> None:
    scope = scope_of(request("GET", target), ProtocolSettings(root_path="/api"))
    assert scope["root_path"] == "/api"
    assert scope["path"] == path
    assert scope["raw_path"] == target.encode()


def test_headers_lowercased_with_order_and_duplicates_kept() -> None:
    scope = scope_of(
        b"GET / HTTP/1.1\r\nX-Dup: 1\r\nHost: a\r\nACCEPT: */*\r\nx-dup: 2\r\n"
        b"X-Case: MiXeD\r\nX-DUP: 3\r\n\r\n"
    )
    assert scope["headers"] == [
        (b"x-dup", b"1"),
        (b"host", b"a"),
        (b"accept", b"*/*"),
        (b"x-dup", b"2"),
        (b"x-case", b"MiXeD"),
        (b"x-dup", b"3"),
    ]
    assert all(type(n) is bytes and type(v) is bytes for n, v in scope["headers"])


def test_client_and_server() -> None:
    scope = scope_of(request())
    assert scope["client"] == ("127.0.0.1", 50000)
    assert scope["server"] == ("127.0.0.1", 8000)


def test_extensions_are_the_response_extensions_only() -> None:
    # tests/core/test_extensions.py covers what each HTTP version and setting offers.
    assert set(scope_of(request())["extensions"]) == {
        "http.response.pathsend",
        "http.response.zerocopysend",
        "http.response.trailers",
        "http.response.early_hint",
    }


def test_state_absent_when_unsupported() -> None:
    assert "state" not in scope_of(request(), ProtocolSettings(state=None))


def test_state_is_a_shallow_copy_per_request() -> None:
    shared = object()
    state: dict[str, Any] = {"db": shared, "counter": [0]}
    h = Harness(ProtocolSettings(state=state))
    h.feed(request())
    first = h.scope()
    assert first["state"] == state
    assert first["state"] is not state
    assert first["state"]["db"] is shared  # shallow: the values are the lifespan's objects
    first["state"]["added"] = 1
    first["state"]["counter"].append(1)
    h.respond(h.cycle())
    h.feed(request())
    second = h.scope()
    assert "added" not in state and "added" not in second["state"]
    assert second["state"]["counter"] == [0, 1]


def test_scopes_do_not_share_mutable_parts() -> None:
    h = Harness()
    h.feed(request())
    first = h.scope()
    first["asgi"]["version"] = "2.0"
    first["extensions"]["x"] = {}
    first["extensions"]["http.response.pathsend"]["y"] = 1
    first["headers"].append((b"x", b"y"))
    h.respond(h.cycle())
    h.feed(request())
    second = h.scope()
    assert second["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert "x" not in second["extensions"]
    assert second["extensions"]["http.response.pathsend"] == {}
    assert second["headers"] == [(b"host", b"example.com")]


def test_scope_is_the_same_whether_fed_whole_or_byte_by_byte() -> None:
    data = b"POST /a%20b?c=d HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nX-A: 1\r\n\r\nhi"
    whole = scope_of(data)
    h = Harness()
    h.feed_pieces(data, 1)
    assert h.scope() == whole
