"""ASGI HTTP semantics: the scope, the messages, errors and disconnects.

The scope checks read the scope the probe app logged with its Python types kept
(``probes.common.describe_value``) and grade every key against the data in spec/asgi.json
(required, type, allowed values); the rules the data cannot say (the path decoded, the query
string not, the client's address) are checks of their own. The message and error checks make
the probe app send something (valid, invalid, too much, too little, too late), and grade both
what ``send``/``receive`` did in the app (from the event log) and what reached the wire.

Where the spec is silent the check cites a reading recorded in spec/asgi.json and accepts every
behaviour that reading accepts; a hang (silence for ``hang_s`` where an answer or a close is
due) always fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from typing import Any

from ..client import (
    HTTPConnection,
    NoResponse,
    Reply,
    Response,
    request_bytes,
    websocket_handshake,
)
from ..framework import (
    READING,
    SHOULD,
    Context,
    Result,
    check,
    failed,
    load_spec,
    not_applicable,
    passed,
    verdict,
)
from ..probes.asgi_http import (
    EARLY_MARKER,
    EXTRA_MARKER,
    FLUSH_FIRST,
    FLUSH_REST,
    PROPAGATING_FUNCTION,
    SCOPE_PATH,
    SCOPE_PATH_RAW,
    STREAM_PARTS,
)
from .common import (
    Desc,
    Event,
    Events,
    exchange,
    find_event,
    grade_keys,
    has_event,
    is_container,
    lookup,
    open_http,
    plain,
    probe_target,
    record_exchange,
    scope_keys,
    show,
    type_matches,
    wait_event,
)

SCOPE = "ASGI HTTP spec, HTTP Connection Scope"
WEBSOCKET_SCOPE = "ASGI WebSocket spec, Websocket Connection Scope"
ERRORS = "ASGI spec, Error Handling"
QUERY = "q=a%20b"
SUBPROTOCOLS = ["chat.v1", "chat.v2"]


# -- reading what the probes logged


def wait_s(ctx: Context) -> str:
    """The ``wait`` a probe gets: how long it waits for the server before logging a timeout."""
    return f"{ctx.options.hang_s:g}"


def send_outcome(record: Event | None) -> str:
    """What one logged ``send`` did, in words."""
    if record is None:
        return "was not logged (the app did not get that far)"
    outcome = record.get("outcome")
    if outcome == "raised":
        text = f": {record.get('text')}" if record.get("text") else ""
        return f"raised {record.get('exception')}{text}"
    if outcome == "hung":
        return "did not return (hung)"
    return str(outcome)


def app_story(events: Events) -> str:
    """The probe's log in a few words, for an observed text."""
    parts = []
    for record in events:
        event = record.get("event")
        if event == "send":
            parts.append(f"send {record.get('step')} {send_outcome(record)}")
        elif event == "receive":
            what = record.get("type") if record.get("outcome") == "message" else None
            parts.append(f"receive {record.get('step')}: {what or record.get('outcome')}")
        elif event not in ("scope",):
            parts.append(str(event))
    return "; ".join(parts) if parts else "the app logged nothing"


def allowed_values(kind: str, name: str) -> list[Any]:
    """The values spec/asgi.json allows for one key of a scope."""
    for key in scope_keys(kind):
        if key["name"] == name:
            return list(key.get("allowed") or [])
    raise ValueError(f"spec/asgi.json has no {kind} scope key {name!r}")


def message_keys(kind: str) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = load_spec()["messages"][kind]["keys"]
    return keys


# -- getting a scope


class Scope:
    """The scope one request gave the probe app, as logged, or why there is none."""

    def __init__(self, desc: Desc | None, why: str, client: tuple[str, int]) -> None:
        self.desc = desc
        self.why = why  # when desc is None
        self.client = client  # the client socket's own address

    def get(self, dotted: str) -> Desc | None:
        return lookup(self.desc, dotted) if self.desc is not None else None

    def value(self, dotted: str) -> Any:
        """The value, or a placeholder that equals nothing a check expects."""
        node = self.get(dotted)
        return plain(node) if node is not None else Missing()

    def show(self, dotted: str) -> str:
        node = self.get(dotted)
        return f"{dotted}={show(node)}" if node is not None else f"{dotted} absent"


class Missing:
    def __eq__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "absent"


def scope_request(path: str, probe_id: str, query: str | None) -> tuple[str, list[tuple[str, str]]]:
    """The target and the headers for a scope probe: two ``X-Dup`` around an ``X-Other``. The
    probe id goes in the query string, or (without a query) in an ``X-Probe-Id`` header."""
    target = path + (f"?{query}&probe={probe_id}" if query is not None else "")
    headers = [("X-Dup", "one"), ("X-Other", "middle"), ("X-Dup", "two")]
    if query is None:
        headers.append(("X-Probe-Id", probe_id))
    return target, headers


def http_scope(
    ctx: Context,
    check_id: str,
    path: str = SCOPE_PATH_RAW,
    query: str | None = QUERY,
    version: str = "HTTP/1.1",
) -> Scope:
    """Send a GET with two ``X-Dup`` headers to the scope probe; the scope it logged."""
    probe_id = ctx.new_id("scope")
    target, headers = scope_request(path, probe_id, query)
    connection = open_http(ctx)
    client = connection.sock.getsockname()[:2]
    with connection:
        connection.send(request_bytes("GET", target, headers, version=version))
        response = connection.read_reply()
    if version == "HTTP/1.1":  # httplint reads HTTP/1.1 exchanges only
        record_exchange(ctx, check_id, "GET", target, response, headers)
    if isinstance(response, NoResponse):
        return Scope(None, f"GET {target} {version}: {response.describe()}", client)
    logged = wait_event(ctx, probe_id, "scope", ctx.options.hang_s)
    if logged is None:
        return Scope(
            None,
            f"GET {target} {version} got {response.describe()} and the probe app was not called "
            "at that path",
            client,
        )
    return Scope(logged["scope"], "", client)


def websocket_scope(
    ctx: Context, query: str | None = QUERY, subprotocols: list[str] | None = SUBPROTOCOLS
) -> Scope:
    """Open a WebSocket to the scope probe (which accepts, then closes); the scope it logged."""
    probe_id = ctx.new_id("wsscope")
    path = SCOPE_PATH_RAW.replace("/asgi/scope", "/asgi/ws-scope")
    target, headers = scope_request(path, probe_id, query)
    sock = ctx.connect()
    client = sock.getsockname()[:2]
    what = f"a WebSocket handshake to {target}"
    with contextlib.closing(sock):
        try:
            response, websocket = websocket_handshake(
                sock, ctx.options.io_timeout_s, target, subprotocols, headers
            )
        except NoResponse as exc:
            return Scope(None, f"{what}: {exc.describe()}", client)
        if websocket is not None and websocket.receive(ctx.options.hang_s).kind == "close":
            with contextlib.suppress(OSError):
                websocket.send_close(1000)  # the answer to the app's close
    logged = wait_event(ctx, probe_id, "scope", ctx.options.hang_s)
    if logged is None:
        return Scope(None, f"{what} got {response.describe()}; the app was not called", client)
    return Scope(logged["scope"], "", client)


SENT_HEADERS = [
    (b"host", b"127.0.0.1"),
    (b"x-dup", b"one"),
    (b"x-other", b"middle"),
    (b"x-dup", b"two"),
]


def by_name(pairs: list[tuple[bytes, bytes]]) -> dict[bytes, list[bytes]]:
    """Each name's values in order: what must be kept (the order of names is not)."""
    values: dict[bytes, list[bytes]] = {}
    for name, value in pairs:
        values.setdefault(name.lower(), []).append(value)
    return values


def headers_problem(scope: Scope) -> str | None:
    """None if each of Host, X-Dup (twice) and X-Other kept its values, in order."""
    node = scope.get("headers")
    if node is None or not is_container(node):
        return f"headers are {show(node) if node else 'absent'}"
    names = {name for name, _ in SENT_HEADERS}
    seen = []
    for item in node["items"]:
        pair = plain(item)
        if len(pair) == 2 and isinstance(pair[0], bytes) and pair[0].lower() in names:
            seen.append((pair[0].lower(), pair[1]))
    if by_name(seen) != by_name(SENT_HEADERS):
        return f"sent Host, X-Dup: one, X-Other: middle, X-Dup: two; the app got {seen}"
    return None


# -- the HTTP scope


@check(
    "asgi-http.scope-keys",
    title="every HTTP scope key is present when required, of its type, with an allowed value",
    clause=SCOPE,
)
def scope_key_types(ctx: Context) -> Result:
    scope = http_scope(ctx, "asgi-http.scope-keys")
    if scope.desc is None:
        return failed(scope.why)
    problems, others = grade_keys(scope.desc, scope_keys("http"))
    extra = f"; keys the spec does not name: {', '.join(others)}" if others else ""
    if problems:
        return failed("; ".join(problems) + extra)
    count = len(scope.desc["items"])
    return passed(f"all {count} keys of the scope agree with spec/asgi.json{extra}")


@check(
    "asgi-http.scope-method-version",
    title="method is the uppercase request method; http_version follows the request line",
    clause=SCOPE,
)
def scope_method_version(ctx: Context) -> Result:
    observed = []
    for version, expected in (("HTTP/1.1", "1.1"), ("HTTP/1.0", "1.0")):
        scope = http_scope(ctx, "asgi-http.scope-method-version", version=version)
        if scope.desc is None:
            return failed(scope.why)
        method, http_version = scope.value("method"), scope.value("http_version")
        observed.append(f"GET {version} gave method={method!r}, http_version={http_version!r}")
        if method != "GET" or http_version != expected:
            return failed("; ".join(observed))
    return passed("; ".join(observed))


@check(
    "asgi-http.scope-path",
    title="path is percent-decoded and UTF-8 decoded, without the query string",
    clause=SCOPE,
)
def scope_path(ctx: Context) -> Result:
    scope = http_scope(ctx, "asgi-http.scope-path")
    if scope.desc is None:
        return failed(scope.why)
    path = scope.value("path")
    return verdict(
        path == SCOPE_PATH, f"GET {SCOPE_PATH_RAW}?{QUERY}&probe=... gave {scope.show('path')}"
    )


@check(
    "asgi-http.scope-raw-path",
    title="raw_path, if given, is the path's bytes as received, without the query string",
    clause=SCOPE,
)
def scope_raw_path(ctx: Context) -> Result:
    scope = http_scope(ctx, "asgi-http.scope-raw-path")
    if scope.desc is None:
        return failed(scope.why)
    raw_path = scope.value("raw_path")
    observed = f"GET {SCOPE_PATH_RAW}?{QUERY}&probe=... gave {scope.show('raw_path')}"
    if isinstance(raw_path, Missing) or raw_path is None:
        return not_applicable(observed + " (optional; the server does not provide it)")
    return verdict(raw_path == SCOPE_PATH_RAW.encode("ascii"), observed)


@check(
    "asgi-http.scope-query-string",
    title="query_string is the bytes after '?', still percent-encoded",
    clause=SCOPE,
)
def scope_query_string(ctx: Context) -> Result:
    scope = http_scope(ctx, "asgi-http.scope-query-string")
    if scope.desc is None:
        return failed(scope.why)
    query = scope.value("query_string")
    ok = isinstance(query, bytes) and query.startswith(QUERY.encode("ascii") + b"&probe=")
    return verdict(ok, f"GET {SCOPE_PATH_RAW}?{QUERY}&probe=... gave {scope.show('query_string')}")


@check(
    "asgi-http.scope-query-string-empty",
    title="without a query, query_string is present and b''",
    clause="reading: query-string-required",
    level=READING,
)
def scope_query_string_empty(ctx: Context) -> Result:
    scope = http_scope(ctx, "asgi-http.scope-query-string-empty", query=None)
    if scope.desc is None:
        return failed(scope.why)
    return verdict(
        scope.value("query_string") == b"",
        f"GET {SCOPE_PATH_RAW} (no '?') gave {scope.show('query_string')}",
    )


@check(
    "asgi-http.scope-headers",
    title="request headers keep each name's values in order, and duplicates, as [bytes, bytes]",
    clause=SCOPE,
)
def scope_headers(ctx: Context) -> Result:
    scope = http_scope(ctx, "asgi-http.scope-headers")
    if scope.desc is None:
        return failed(scope.why)
    node = scope.get("headers")
    if node is None or not type_matches(node, "headers"):
        return failed(f"{scope.show('headers')}: not an iterable of [bytes, bytes] pairs")
    problem = headers_problem(scope)
    if problem:
        return failed(problem)
    return passed(
        "Host, X-Dup: one, X-Other: middle, X-Dup: two reached the app with each name's values "
        "in order"
    )


@check(
    "asgi-http.scope-header-names",
    title="request header names are lowercased (or their case kept), never otherwise changed",
    clause=SCOPE,
    level=SHOULD,
)
def scope_header_names(ctx: Context) -> Result:
    scope = http_scope(ctx, "asgi-http.scope-header-names")
    if scope.desc is None:
        return failed(scope.why)
    node = scope.get("headers")
    if node is None or not is_container(node):
        return failed(scope.show("headers"))
    names = [plain(item)[0] for item in node["items"] if item.get("items")]
    dup = [name for name in names if isinstance(name, bytes) and name.lower() == b"x-dup"]
    if dup and all(name == b"x-dup" for name in dup):
        return passed("'X-Dup' reached the app as b'x-dup' (lowercased)")
    if dup and all(name == b"X-Dup" for name in dup):
        return passed("'X-Dup' reached the app as b'X-Dup' (case kept, which the spec allows)")
    return failed(f"'X-Dup' was sent; the header names the app got: {names}")


@check(
    "asgi-http.scope-client",
    title="client, if given, is [host, port] of the client's socket",
    clause=SCOPE,
)
def scope_client(ctx: Context) -> Result:
    scope = http_scope(ctx, "asgi-http.scope-client")
    if scope.desc is None:
        return failed(scope.why)
    client = scope.value("client")
    observed = f"{scope.show('client')}; the client socket is {list(scope.client)}"
    if isinstance(client, Missing) or client is None:
        return not_applicable(observed + " (optional)")
    return verdict(list(client) == list(scope.client), observed)


@check(
    "asgi-http.scope-server",
    title="server, if given, is [host, port] of the listening socket",
    clause=SCOPE,
)
def scope_server(ctx: Context) -> Result:
    scope = http_scope(ctx, "asgi-http.scope-server")
    if scope.desc is None:
        return failed(scope.why)
    server = scope.value("server")
    expected = [ctx.server.host, ctx.port]
    observed = f"{scope.show('server')}; the server listens on {expected}"
    if isinstance(server, Missing) or server is None:
        return not_applicable(observed + " (optional)")
    return verdict(list(server) == expected, observed)


@check(
    "asgi-http.scope-asgi-version",
    title="asgi.version is '3.0' (the app is a 3.0 single callable); spec_version a known 2.x",
    clause=SCOPE,
)
def scope_asgi_version(ctx: Context) -> Result:
    scope = http_scope(ctx, "asgi-http.scope-asgi-version")
    if scope.desc is None:
        return failed(scope.why)
    version = scope.value("asgi.version")
    spec_version = scope.value("asgi.spec_version")
    versions = allowed_values("http", "asgi.spec_version")
    ok = version == "3.0" and (isinstance(spec_version, Missing) or spec_version in versions)
    return verdict(ok, f"{scope.show('asgi.version')}, {scope.show('asgi.spec_version')}")


@check(
    "asgi-http.scope-scheme-root-path",
    title="scheme is 'http' on a plain connection and root_path '' by default",
    clause=SCOPE,
)
def scope_scheme_root_path(ctx: Context) -> Result:
    scope = http_scope(ctx, "asgi-http.scope-scheme-root-path")
    if scope.desc is None:
        return failed(scope.why)
    scheme, root_path = scope.value("scheme"), scope.value("root_path")
    ok = (isinstance(scheme, Missing) or scheme == "http") and (
        isinstance(root_path, Missing) or root_path == ""
    )
    return verdict(ok, f"{scope.show('scheme')}, {scope.show('root_path')} (both default)")


@check(
    "asgi-http.scope-no-tls",
    title="no 'tls' extension on a plain TCP connection",
    clause="ASGI TLS spec, When to use this extension",
)
def scope_no_tls(ctx: Context) -> Result:
    scope = http_scope(ctx, "asgi-http.scope-no-tls")
    if scope.desc is None:
        return failed(scope.why)
    tls = scope.get("extensions.tls")
    if tls is not None:
        return failed(f"extensions['tls'] is {show(tls)} on a plain (non-TLS) connection")
    return passed(f"no 'tls' extension on a plain connection ({scope.show('extensions')})")


def extensions_problems(scope: Scope) -> tuple[list[str], list[str]]:
    problems = []
    present = []
    extensions = scope.get("extensions")
    if extensions is not None and extensions.get("type") != "null":
        present.append("extensions")
        if extensions.get("type") != "dict" or not extensions.get("str_keys", True):
            problems.append(f"extensions is {show(extensions)}, not a dict with str keys")
        else:
            for name, value in extensions["items"].items():
                if value.get("type") != "dict":
                    problems.append(f"extensions[{name!r}] is {show(value)}, not a dict")
    state = scope.get("state")
    if state is not None:
        present.append("state")
        if state.get("type") != "dict":
            problems.append(f"state is {show(state)}, not a dict")
    return problems, present


@check(
    "asgi-http.scope-extensions-state",
    title="extensions, if given, maps names to dicts; state, if given, is a dict",
    clause="ASGI spec, Extensions",
)
def scope_extensions_state(ctx: Context) -> Result:
    scope = http_scope(ctx, "asgi-http.scope-extensions-state")
    if scope.desc is None:
        return failed(scope.why)
    problems, present = extensions_problems(scope)
    observed = f"{scope.show('extensions')}; {scope.show('state')}"
    if problems:
        return failed("; ".join(problems))
    if not present:
        return not_applicable(observed + " (both optional)")
    return passed(observed)


# -- the WebSocket scope


@check(
    "asgi-http.ws-scope-keys",
    title="every WebSocket scope key is present when required, of its type, with an allowed value",
    clause=WEBSOCKET_SCOPE,
)
def ws_scope_keys(ctx: Context) -> Result:
    scope = websocket_scope(ctx)
    if scope.desc is None:
        return failed(scope.why)
    problems, others = grade_keys(scope.desc, scope_keys("websocket"))
    if scope.get("method") is not None:
        problems.append(f"a WebSocket scope has no method, but {scope.show('method')}")
    extra = f"; keys the spec does not name: {', '.join(others)}" if others else ""
    if problems:
        return failed("; ".join(problems) + extra)
    count = len(scope.desc["items"])
    return passed(f"all {count} keys of the scope agree with spec/asgi.json{extra}")


@check(
    "asgi-http.ws-scope-request",
    title="WebSocket path decoded, query_string raw, headers in order, subprotocols as offered",
    clause=WEBSOCKET_SCOPE,
)
def ws_scope_request(ctx: Context) -> Result:
    scope = websocket_scope(ctx)
    if scope.desc is None:
        return failed(scope.why)
    problems = []
    expected_path = SCOPE_PATH.replace("/asgi/scope", "/asgi/ws-scope")
    if scope.value("path") != expected_path:
        problems.append(f"{scope.show('path')}, not {expected_path!r}")
    raw_path = scope.value("raw_path")
    raw_expected = SCOPE_PATH_RAW.replace("/asgi/scope", "/asgi/ws-scope").encode("ascii")
    if not (isinstance(raw_path, Missing) or raw_path is None or raw_path == raw_expected):
        problems.append(f"{scope.show('raw_path')}, not {raw_expected!r}")
    query = scope.value("query_string")
    if not (isinstance(query, bytes) and query.startswith(QUERY.encode("ascii") + b"&probe=")):
        problems.append(f"{scope.show('query_string')}, not b'{QUERY}&probe=...'")
    problem = headers_problem(scope)
    if problem:
        problems.append(problem)
    subprotocols = scope.value("subprotocols")
    if not isinstance(subprotocols, (list, tuple)) or list(subprotocols) != SUBPROTOCOLS:
        problems.append(f"offered {SUBPROTOCOLS}, {scope.show('subprotocols')}")
    if problems:
        return failed("; ".join(problems))
    return passed(
        f"{scope.show('path')}, {scope.show('raw_path')}, {scope.show('query_string')}, "
        f"{scope.show('subprotocols')}, headers in order with duplicates"
    )


@check(
    "asgi-http.ws-scope-connection",
    title="WebSocket client/server addresses, scheme 'ws', root_path '', asgi.version, no tls",
    clause=WEBSOCKET_SCOPE,
)
def ws_scope_connection(ctx: Context) -> Result:
    scope = websocket_scope(ctx)
    if scope.desc is None:
        return failed(scope.why)
    problems = []
    client, server = scope.value("client"), scope.value("server")
    if not (isinstance(client, Missing) or client is None or list(client) == list(scope.client)):
        problems.append(f"{scope.show('client')}; the client socket is {list(scope.client)}")
    expected_server = [ctx.server.host, ctx.port]
    if not (isinstance(server, Missing) or server is None or list(server) == expected_server):
        problems.append(f"{scope.show('server')}; the server listens on {expected_server}")
    scheme, root_path = scope.value("scheme"), scope.value("root_path")
    if not (isinstance(scheme, Missing) or scheme == "ws"):
        problems.append(f"{scope.show('scheme')} on a plain connection")
    if not (isinstance(root_path, Missing) or root_path == ""):
        problems.append(f"{scope.show('root_path')}, but no root path was configured")
    if scope.value("asgi.version") != "3.0":
        problems.append(scope.show("asgi.version"))
    if scope.get("extensions.tls") is not None:
        problems.append("extensions['tls'] on a plain (non-TLS) connection")
    ext_problems, _ = extensions_problems(scope)
    problems += ext_problems
    if problems:
        return failed("; ".join(problems))
    return passed(
        f"{scope.show('client')}, {scope.show('server')}, {scope.show('scheme')}, "
        f"{scope.show('root_path')}, {scope.show('asgi.version')}, no tls"
    )


@check(
    "asgi-http.ws-scope-defaults",
    title="WebSocket without query or subprotocols: query_string b'' (or absent/None), "
    "subprotocols [] (or absent)",
    clause=WEBSOCKET_SCOPE,
)
def ws_scope_defaults(ctx: Context) -> Result:
    scope = websocket_scope(ctx, query=None, subprotocols=None)
    if scope.desc is None:
        return failed(scope.why)
    query, subprotocols = scope.value("query_string"), scope.value("subprotocols")
    ok = (isinstance(query, Missing) or query in (None, b"")) and (
        isinstance(subprotocols, Missing)
        or (isinstance(subprotocols, (list, tuple)) and not subprotocols)
    )
    return verdict(
        ok,
        f"a handshake without '?' or Sec-WebSocket-Protocol gave {scope.show('query_string')}, "
        f"{scope.show('subprotocols')}",
    )


# -- request bodies


def body_story(events: Events) -> tuple[Events, str]:
    """The http.request messages the app received, and them in words."""
    messages = [
        record
        for record in events
        if record.get("event") == "receive" and record.get("step") == "request"
    ]
    words = []
    for record in messages:
        if record.get("outcome") != "message":
            words.append(str(record.get("outcome")))
            continue
        desc = record["message"]
        more = lookup(desc, "more_body")
        words.append(
            f"{record.get('type')} ({record.get('body_length')} bytes"
            + (f", more_body={show(more)}" if more is not None else "")
            + ")"
        )
    return messages, ", ".join(words) if words else "no message"


def grade_body(ctx: Context, probe_id: str, body: bytes, sent: str) -> Result:
    events = ctx.wait_events(probe_id, has_event("body"), timeout_s=ctx.options.io_timeout_s)
    messages, story = body_story(events)
    record = find_event(events, "body")
    if record is None:
        return failed(f"{sent}: the app's body was not complete in time; it received {story}")
    if not record.get("complete"):
        return failed(f"{sent}: the app received {story}, not a complete body")
    expected = hashlib.sha256(body).hexdigest()
    if record.get("sha256") != expected:
        return failed(
            f"{sent}: the app received {record.get('length')} bytes with another sha256 ({story})"
        )
    problems = []
    for message in messages:
        grade, _ = grade_keys(message["message"], message_keys("http.request"))
        problems += grade
    if problems:
        return failed(f"{sent}: " + "; ".join(problems))
    return passed(f"{sent}: the app received all {len(body)} bytes, sha256 equal, in {story}")


def post_in_writes(
    ctx: Context, target: str, headers: list[tuple[str, str]], body: bytes, size: int
) -> Reply:
    """A POST on a new connection, its body (as it goes on the wire) sent in writes of ``size``
    bytes; the response, or why none came."""
    with open_http(ctx) as connection:
        connection.send(request_bytes("POST", target, headers))
        for index in range(0, len(body), size):
            connection.send(body[index : index + size])
        return connection.read_reply("POST")


@check(
    "asgi-http.request-body",
    title="a Content-Length body arrives whole in http.request messages of the right types",
    clause="ASGI HTTP spec, Request",
)
def request_body(ctx: Context) -> Result:
    probe_id = ctx.new_id()
    body = bytes(range(256)) * 16
    target = probe_target("/asgi/echo-body", probe_id, wait=wait_s(ctx))
    headers = [("Content-Length", str(len(body))), ("Content-Type", "application/octet-stream")]
    response = exchange(ctx, "asgi-http.request-body", "POST", target, headers, body)
    if isinstance(response, NoResponse):
        return failed(f"POST of {len(body)} bytes: {response.describe()}")
    return grade_body(ctx, probe_id, body, f"POST with Content-Length: {len(body)}")


@check(
    "asgi-http.request-no-body",
    title="a request without a body gives http.request with body b'', more_body False, at once",
    clause="ASGI HTTP spec, Request",
)
def request_no_body(ctx: Context) -> Result:
    probe_id = ctx.new_id()
    target = probe_target("/asgi/echo-body", probe_id, wait=wait_s(ctx))
    response = exchange(ctx, "asgi-http.request-no-body", "GET", target)
    if isinstance(response, NoResponse):
        return failed(f"GET: {response.describe()}")
    return grade_body(ctx, probe_id, b"", "GET without a body")


@check(
    "asgi-http.request-chunked",
    title="a chunked request body arrives de-chunked and whole, ending with more_body False",
    clause="ASGI HTTP spec, Request",
)
def request_chunked(ctx: Context) -> Result:
    probe_id = ctx.new_id()
    parts = [b"first chunk;", b"x" * 3000, b"", b"\r\nnot a chunk line\r\n", b"last"]
    parts = [part for part in parts if part]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"
    target = probe_target("/asgi/echo-body", probe_id, wait=wait_s(ctx))
    # several writes, chunk lines split across them
    response = post_in_writes(ctx, target, [("Transfer-Encoding", "chunked")], chunked, 700)
    if isinstance(response, NoResponse):
        return failed(f"a chunked POST: {response.describe()}")
    return grade_body(ctx, probe_id, b"".join(parts), f"a chunked POST of {len(parts)} chunks")


@check(
    "asgi-http.request-multi-packet",
    title="a large body sent in many writes arrives whole, ending with more_body False",
    clause="ASGI HTTP spec, Request",
)
def request_multi_packet(ctx: Context) -> Result:
    probe_id = ctx.new_id()
    body = hashlib.sha256(probe_id.encode()).digest() * 16384  # 512 KiB
    target = probe_target("/asgi/echo-body", probe_id, wait=wait_s(ctx))
    headers = [("Content-Length", str(len(body)))]
    response = post_in_writes(ctx, target, headers, body, 65536)
    if isinstance(response, NoResponse):
        return failed(f"a POST of {len(body)} bytes: {response.describe()}")
    return grade_body(ctx, probe_id, body, f"a POST of {len(body)} bytes in 64 KiB writes")


# -- invalid and surplus sends


def run_probe(
    ctx: Context,
    path: str,
    until: Callable[[Events], bool],
    **params: str,
) -> tuple[Reply, Events]:
    """One GET to a probe route; the response (or why none) and the probe's log.

    The response is read with ``hang_s`` as its deadline, so a server that hangs gives a
    timeout here rather than stalling the check.
    """
    probe_id = ctx.new_id()
    target = probe_target(path, probe_id, wait=wait_s(ctx), **params)
    with open_http(ctx) as connection:  # open until the app has logged ``until``
        connection.send(request_bytes("GET", target))
        response = connection.read_reply(timeout_s=ctx.options.hang_s)
        events = ctx.wait_events(probe_id, until, timeout_s=ctx.options.io_timeout_s)
    return response, events


INVALID = {
    "str-header-name": "a str header name in http.response.start",
    "str-body": "a str body in http.response.body",
    "missing-status": "http.response.start without status",
    "unknown-type": "a message of an unknown type",
}


def invalid_send(ctx: Context, variant: str) -> Result:
    response, events = run_probe(
        ctx, "/asgi/invalid-send", has_event("send", step="invalid"), variant=variant
    )
    record = find_event(events, "send", step="invalid")
    observed = (
        f"send() of {INVALID[variant]} {send_outcome(record)}; on the wire: {response.describe()}"
    )
    return verdict(record is not None and record.get("outcome") == "raised", observed)


@check(
    "asgi-http.invalid-send-str-header-name",
    title="send() raises for a str header name",
    clause=ERRORS,
    level=SHOULD,
)
def invalid_send_str_header_name(ctx: Context) -> Result:
    return invalid_send(ctx, "str-header-name")


@check(
    "asgi-http.invalid-send-str-body",
    title="send() raises for a str body",
    clause=ERRORS,
    level=SHOULD,
)
def invalid_send_str_body(ctx: Context) -> Result:
    return invalid_send(ctx, "str-body")


@check(
    "asgi-http.invalid-send-missing-status",
    title="send() raises for http.response.start without status",
    clause=ERRORS,
    level=SHOULD,
)
def invalid_send_missing_status(ctx: Context) -> Result:
    return invalid_send(ctx, "missing-status")


@check(
    "asgi-http.invalid-send-unknown-type",
    title="send() raises for a message of an unknown type",
    clause=ERRORS,
    level=SHOULD,
)
def invalid_send_unknown_type(ctx: Context) -> Result:
    return invalid_send(ctx, "unknown-type")


@check(
    "asgi-http.extra-keys",
    title="extra keys in sent messages cause no error",
    clause=ERRORS,
)
def extra_keys(ctx: Context) -> Result:
    response, events = run_probe(ctx, "/asgi/extra-keys", has_event("done"))
    start, body = find_event(events, "send", step="start"), find_event(events, "send", step="body")
    observed = (
        f"send(start with extra keys) {send_outcome(start)}, send(body with an extra key) "
        f"{send_outcome(body)}; on the wire: {response.describe()}"
    )
    ok = (
        start is not None
        and start.get("outcome") == "returned"
        and body is not None
        and body.get("outcome") == "returned"
        and isinstance(response, Response)
        and response.status == 200
        and response.complete
        and response.body == b"extra keys\n"
    )
    return verdict(ok, observed)


@check(
    "asgi-http.double-start",
    title="a second http.response.start raises out of send()",
    clause="reading: double-start-or-body-before-start",
    level=READING,
)
def double_start(ctx: Context) -> Result:
    response, events = run_probe(ctx, "/asgi/double-start", has_event("done"))
    first = find_event(events, "send", step="first-start")
    second = find_event(events, "send", step="second-start")
    observed = (
        f"the first start {send_outcome(first)}, the second {send_outcome(second)}; "
        f"on the wire: {response.describe()}"
    )
    if first is None or first.get("outcome") != "returned":
        return failed(observed)
    ok = second is not None and second.get("outcome") == "raised"
    if isinstance(response, Response) and response.status == 201:
        ok = False
        observed += " (the second start's status reached the wire)"
    return verdict(ok, observed)


@check(
    "asgi-http.body-before-start",
    title="http.response.body before http.response.start raises out of send()",
    clause="reading: double-start-or-body-before-start",
    level=READING,
)
def body_before_start(ctx: Context) -> Result:
    response, events = run_probe(ctx, "/asgi/body-before-start", has_event("done"))
    early = find_event(events, "send", step="early-body")
    observed = (
        f"the body before any start {send_outcome(early)}; on the wire: {response.describe()}"
    )
    if isinstance(response, Response) and EARLY_MARKER in response.raw_head + response.body:
        return failed(observed + " (the early body reached the wire)")
    return verdict(early is not None and early.get("outcome") == "raised", observed)


@check(
    "asgi-http.body-after-complete",
    title="a body after the final body is ignored or raises, and never reaches the wire",
    clause="reading: body-after-complete",
    level=READING,
)
def body_after_complete(ctx: Context) -> Result:
    probe_id, next_id = ctx.new_id(), ctx.new_id()
    first = probe_target("/asgi/body-after-complete", probe_id, wait=wait_s(ctx))
    second = probe_target("/asgi/ok", next_id)
    with open_http(ctx) as connection:
        connection.send(request_bytes("GET", first) + request_bytes("GET", second))
        response = connection.read_reply(timeout_s=ctx.options.hang_s)
        if isinstance(response, NoResponse):
            return failed(f"the first of two pipelined requests: {response.describe()}")
        seen = response.raw_head + response.body
        events = ctx.wait_events(probe_id, has_event("done"))
        extra = find_event(events, "send", step="extra-body")
        next_response = connection.read_reply(timeout_s=ctx.options.hang_s)
        if isinstance(next_response, Response):
            seen += next_response.raw_head + next_response.body
            connection.wait_closed(0.2)  # anything written after it
        else:
            seen += next_response.data
        seen += connection.buffer
    observed = (
        f"the first response was {response.describe()}; send(body) after it "
        f"{send_outcome(extra)}; the second request got {next_response.describe()}"
    )
    if EXTRA_MARKER in seen:
        return failed(observed + "; the extra body reached the wire")
    if response.body != b"complete\n" or extra is None or extra.get("outcome") == "hung":
        return failed(observed)
    return passed(observed + "; the extra body never reached the wire")


# -- the app fails


def error_response(ctx: Context, path: str, what: str, event: str) -> Result:
    """A complete 5xx or a close passes; silence or a success-looking response fails.

    Whether the connection is closed after a 5xx is reported, not graded: for HTTP the ASGI
    "connection" that E3 terminates is the request, which a complete 500 ends.
    """
    probe_id = ctx.new_id()
    with open_http(ctx) as connection:
        connection.send(request_bytes("GET", probe_target(path, probe_id, wait=wait_s(ctx))))
        response = connection.read_reply(timeout_s=ctx.options.hang_s)
        after = connection.wait_closed(0.5) if isinstance(response, Response) else ""
    if wait_event(ctx, probe_id, event) is None:
        return failed(f"the probe app was not reached: {response.describe()}")
    if isinstance(response, NoResponse):
        if not response.ended:
            return failed(
                f"the app {what}; then {response.describe()} for {ctx.options.hang_s:g} s"
            )
        return passed(f"the app {what}; then {response.describe()}")
    observed = f"the app {what}; the server answered {response.describe()}"
    if not (500 <= response.status < 600 and response.complete):
        return failed(observed)
    return passed(
        observed + (" and kept the connection open" if after == "open" else f", then {after}")
    )


@check(
    "asgi-http.raise-before-start",
    title="an app that raises before http.response.start gets a 500 or a close, never a hang",
    clause=ERRORS,
)
def raise_before_start(ctx: Context) -> Result:
    return error_response(
        ctx,
        "/asgi/raise-before-start",
        "raised before http.response.start",
        "raising",
    )


@check(
    "asgi-http.no-response-start",
    title="an app that returns without http.response.start gets a 500 or a close, never a hang",
    clause="reading: no-response-start",
    level=READING,
)
def no_response_start(ctx: Context) -> Result:
    return error_response(
        ctx,
        "/asgi/no-response-start",
        "returned without http.response.start",
        "returning",
    )


def cut_response(ctx: Context, path: str, what: str, event: str) -> Result:
    """A streamed response the app abandons must end visibly cut: no end, and a close.

    A body part was sent (and ``send`` flushed it), so a whole 500 in its place is no longer an
    option: the readings accept only a close with the framing incomplete.
    """
    probe_id = ctx.new_id()
    target = probe_target(path, probe_id, wait=wait_s(ctx))
    with open_http(ctx) as connection:
        connection.send(request_bytes("GET", target))
        response = connection.read_reply(timeout_s=ctx.options.hang_s)
        closed = connection.eof
    events = ctx.events(probe_id)
    if find_event(events, event) is None:
        return failed(
            f"the app stopped before it {what} ({app_story(events)}); {response.describe()}"
        )
    if isinstance(response, NoResponse):
        return verdict(response.ended, f"the app {what}; {response.describe()}")
    observed = f"the app sent a 200 start and 11 bytes with more_body, then {what}; "
    if response.complete:
        return failed(
            observed + f"the client got {response.describe()}, which looks complete "
            f"(framing: {response.framing})"
        )
    if not closed:
        return failed(
            observed + f"{response.describe()}, and the connection stayed open "
            f"{ctx.options.hang_s:g} s (hang)"
        )
    return passed(observed + f"{response.describe()}, and the connection was closed")


@check(
    "asgi-http.raise-after-start",
    title="an app that raises mid-stream leaves a visibly cut response and a closed connection",
    clause="reading: raise-after-start",
    level=READING,
)
def raise_after_start(ctx: Context) -> Result:
    return cut_response(ctx, "/asgi/raise-after-start", "raised", "raising")


@check(
    "asgi-http.return-before-final-body",
    title="an app that returns mid-stream leaves a visibly cut response and a closed connection",
    clause="reading: return-before-final-body",
    level=READING,
)
def return_before_final_body(ctx: Context) -> Result:
    return cut_response(ctx, "/asgi/return-before-final-body", "returned", "returning")


# -- disconnect


def disconnect_after_response(ctx: Context, read: str) -> tuple[Events, str]:
    probe_id = ctx.new_id()
    target = probe_target("/asgi/disconnect-after-response", probe_id, wait=wait_s(ctx), read=read)
    with open_http(ctx) as connection:  # kept open (keep-alive) while the app calls receive()
        connection.send(request_bytes("GET", target))
        answer = connection.read_reply(timeout_s=ctx.options.hang_s).describe()
        events = ctx.wait_events(
            probe_id, has_event("done"), timeout_s=ctx.options.hang_s * 2 + ctx.options.io_timeout_s
        )
    return events, answer


def receive_types(events: Events, prefix: str) -> list[str]:
    return [
        str(record.get("type") if record.get("outcome") == "message" else record.get("outcome"))
        for record in events
        if record.get("event") == "receive" and str(record.get("step", "")).startswith(prefix)
    ]


@check(
    "asgi-http.disconnect-after-response",
    title="receive() after the response (body read) gives http.disconnect on a kept-alive "
    "connection",
    clause="ASGI HTTP spec, Disconnect",
)
def disconnect_after_response_read(ctx: Context) -> Result:
    events, answer = disconnect_after_response(ctx, "1")
    types = receive_types(events, "after-response")
    observed = (
        f"the app read the body, answered ({answer}) and called receive() with the connection "
        f"open: {types or 'nothing logged'}"
    )
    return verdict(types[:1] == ["http.disconnect"], observed)


@check(
    "asgi-http.disconnect-vs-pending-request",
    title="receive() after the response (body unread) gives http.disconnect, maybe after the "
    "pending http.request",
    clause="reading: disconnect-vs-pending-request",
    level=READING,
)
def disconnect_vs_pending_request(ctx: Context) -> Result:
    events, answer = disconnect_after_response(ctx, "0")
    types = receive_types(events, "after-response")
    observed = (
        f"the app answered without reading the request ({answer}) and called receive() with "
        f"the connection open: {types or 'nothing logged'}"
    )
    ok = types[:1] == ["http.disconnect"] or types[:2] == ["http.request", "http.disconnect"]
    return verdict(ok, observed)


def close_when(
    ctx: Context,
    probe_id: str,
    event: str,
    connection: HTTPConnection,
    timeout_s: float | None = None,
) -> bool:
    """Close the client's side once the probe logged ``event``; False if it never did."""
    logged = wait_event(ctx, probe_id, event, timeout_s)
    connection.close()
    return logged is not None


@check(
    "asgi-http.disconnect-while-waiting",
    title="a client that goes away while the app waits in receive() gives it http.disconnect",
    clause="ASGI HTTP spec, Disconnect",
)
def disconnect_while_waiting(ctx: Context) -> Result:
    probe_id = ctx.new_id()
    target = probe_target("/asgi/wait-disconnect", probe_id, wait=f"{ctx.options.hang_s + 1:g}")
    connection = open_http(ctx)
    connection.send(request_bytes("GET", target))
    if not close_when(ctx, probe_id, "waiting", connection):
        return failed(f"the app was not called: {app_story(ctx.events(probe_id))}")
    events = ctx.wait_events(probe_id, has_event("done"), timeout_s=ctx.options.hang_s + 3)
    types = receive_types(events, "waiting")
    observed = f"the client closed while the app waited in receive(): it got {types or 'nothing'}"
    return verdict(types[:1] == ["http.disconnect"], observed)


@check(
    "asgi-http.disconnect-mid-body",
    title="a client that goes away mid-body ends the app's http.request messages with "
    "http.disconnect",
    clause="ASGI HTTP spec, Disconnect",
)
def disconnect_mid_body(ctx: Context) -> Result:
    probe_id = ctx.new_id()
    target = probe_target("/asgi/echo-body", probe_id, wait=f"{ctx.options.hang_s + 1:g}")
    connection = open_http(ctx)
    connection.send(request_bytes("POST", target, [("Content-Length", "100000")], b"x" * 1000))
    if not close_when(ctx, probe_id, "started", connection, ctx.options.hang_s):
        return not_applicable(
            f"the server did not call the app within {ctx.options.hang_s:g} s of the head and "
            "1000 of 100000 body bytes (it may wait for the whole body), so there was no app "
            "to tell"
        )
    events = ctx.wait_events(probe_id, has_event("body"), timeout_s=ctx.options.hang_s + 3)
    messages, story = body_story(events)
    observed = f"1000 of 100000 body bytes, then the client closed; the app received {story}"
    last = messages[-1] if messages else None
    return verdict(
        last is not None
        and last.get("type") == "http.disconnect"
        and bool(find_event(events, "body")),
        observed,
    )


def send_after_disconnect(ctx: Context, reraise: str) -> Events:
    probe_id = ctx.new_id()
    target = probe_target(
        "/asgi/send-after-disconnect", probe_id, wait=f"{ctx.options.hang_s:g}", reraise=reraise
    )
    connection = open_http(ctx)
    connection.send(request_bytes("GET", target))
    close_when(ctx, probe_id, "waiting", connection)
    done = (
        has_event("done")
        if reraise == "0"
        else lambda e: bool(has_event("done")(e) or has_event("reraising")(e))
    )
    return ctx.wait_events(probe_id, done, timeout_s=ctx.options.hang_s * 3 + 2)


def send_story(events: Events) -> tuple[str, Events]:
    sends = [record for record in events if record.get("event") == "send"]
    got = receive_types(events, "waiting")
    words = f"after the client closed, receive() gave {got or 'nothing'}; " + ", ".join(
        f"send({record.get('step')}) {send_outcome(record)}" for record in sends
    )
    return words, sends


@check(
    "asgi-http.send-after-disconnect",
    title="send() after the client went away raises an OSError subclass or does nothing",
    clause="reading: send-on-closed-connection",
    level=READING,
)
def send_after_disconnect_raises(ctx: Context) -> Result:
    events = send_after_disconnect(ctx, "0")
    if find_event(events, "waiting") is None:
        return failed(f"the app was not called: {app_story(events)}")
    observed, sends = send_story(events)
    if not sends:
        return failed(f"{observed}nothing (the app stopped: {app_story(events)})")
    for record in sends:
        if record.get("outcome") == "hung":
            return failed(observed)
        if record.get("outcome") == "raised" and not record.get("oserror"):
            return failed(observed + " (not an OSError)")
        if record.get("outcome") == "cancelled":
            return failed(observed + " (the app was cancelled inside send)")
    return passed(observed)


def logged_line(output: str, marker: str) -> str:
    """The log line that introduced the traceback holding ``marker``."""
    lines = output.splitlines()
    index = next(number for number, line in enumerate(lines) if marker in line)
    for number in range(index, -1, -1):
        if lines[number].startswith("Traceback"):
            return lines[number - 1].strip()[:120] if number else lines[number]
    return lines[index].strip()[:120]


@check(
    "asgi-http.send-error-not-logged",
    title="the server does not log its own OSError from send() as an error when the app lets "
    "it propagate",
    clause="ASGI HTTP spec, Disconnected Client",
    level=SHOULD,
)
def send_error_not_logged(ctx: Context) -> Result:
    events = send_after_disconnect(ctx, "1")
    observed, sends = send_story(events)
    raised = [record for record in sends if record.get("outcome") == "raised"]
    if not raised:
        return not_applicable(observed + " (nothing raised, so nothing to log)")
    if not raised[0].get("oserror"):
        return not_applicable(observed + " (not an OSError; graded by send-after-disconnect)")
    marker = PROPAGATING_FUNCTION  # in the output only inside a traceback of the error
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        output = ctx.server.output()
        if marker in output:
            return failed(
                observed + "; the app let it propagate and the server logged a traceback "
                f"through the app: {logged_line(output, marker)!r}"
            )
        time.sleep(0.05)
    return passed(observed + "; the app let it propagate and the server logged no traceback")


# -- responses


def app_headers(response: Response, names: set[bytes]) -> list[tuple[bytes, bytes]]:
    return [(name.lower(), value) for name, value in response.headers if name.lower() in names]


@check(
    "asgi-http.response-headers",
    title="response headers keep each name's values in order, and duplicates (three set-cookie)",
    clause="ASGI HTTP spec, Response Start",
)
def response_headers(ctx: Context) -> Result:
    response = exchange(ctx, "asgi-http.response-headers", "GET", "/asgi/response-headers")
    if isinstance(response, NoResponse):
        return failed(response.describe())
    expected = [
        (b"set-cookie", b"a=1"),
        (b"x-order", b"first"),
        (b"set-cookie", b"b=2"),
        (b"x-order", b"second"),
        (b"set-cookie", b"c=3"),
    ]
    seen = app_headers(response, {b"set-cookie", b"x-order"})
    observed = f"the app sent {expected}; the wire had {seen}"
    if seen == expected:
        return passed(observed)
    if by_name(seen) == by_name(expected):
        return passed(observed + " (grouped by name; each name's values kept their order)")
    return failed(observed)


@check(
    "asgi-http.response-content-length",
    title="the app's Content-Length frames the response (no chunking), body in three messages",
    clause="ASGI HTTP spec, Response Start",
)
def response_content_length(ctx: Context) -> Result:
    response = exchange(ctx, "asgi-http.response-content-length", "GET", "/asgi/content-length")
    if isinstance(response, NoResponse):
        return failed(response.describe())
    body = b"alpha-beta-gamma\n"
    observed = (
        f"{response.describe()}; Content-Length: {response.header_values(b'content-length')}, "
        f"Transfer-Encoding: {response.header_values(b'transfer-encoding')}"
    )
    ok = (
        response.framing == "content-length"
        and response.header_values(b"content-length") == [b"%d" % len(body)]
        and not response.header_values(b"transfer-encoding")
        and response.complete
        and response.body == body
    )
    return verdict(ok, observed)


@check(
    "asgi-http.response-streamed",
    title="a body sent in many more_body messages without Content-Length arrives whole",
    clause="ASGI HTTP spec, Response Body",
)
def response_streamed(ctx: Context) -> Result:
    response = exchange(ctx, "asgi-http.response-streamed", "GET", "/asgi/stream")
    if isinstance(response, NoResponse):
        return failed(response.describe())
    body = b"".join(STREAM_PARTS)
    ok = response.status == 200 and response.complete and response.body == body
    return verdict(
        ok, f"{len(STREAM_PARTS)} parts of {len(body)} bytes in all gave {response.describe()}"
    )


@check(
    "asgi-http.send-flushes",
    title="send() returns only once the data is on its way: the first part arrives before "
    "the rest is sent",
    clause="ASGI HTTP spec, Response Body",
)
def send_flushes(ctx: Context) -> Result:
    probe_id = ctx.new_id()
    target = probe_target("/asgi/flush", probe_id, wait=f"{ctx.options.io_timeout_s:g}")
    with open_http(ctx) as connection:
        connection.send(request_bytes("GET", target))
        arrived = True
        try:
            connection.wait_for_bytes(FLUSH_FIRST, ctx.options.hang_s)
        except NoResponse as exc:
            arrived = False
            held = exc.describe()
        # Let the app finish whatever happened.
        exchange(ctx, "asgi-http.send-flushes", "GET", probe_target("/asgi/release", probe_id))
        response = connection.read_reply(timeout_s=ctx.options.hang_s)
        complete = isinstance(response, Response) and response.body == FLUSH_FIRST + FLUSH_REST
        rest = response.describe()
    events = ctx.events(probe_id)
    first = find_event(events, "send", step="first")
    if not arrived:
        return failed(
            f"send(first part, more_body) {send_outcome(first)}, but {held} until the app "
            f"was released; then {rest}"
        )
    return verdict(
        complete,
        f"send(first part) {send_outcome(first)} and the part reached the client while the app "
        f"waited; after the release: {rest}",
    )


@check(
    "asgi-http.headers-iterable",
    title="response headers as a tuple of tuples, a list of lists or a generator are accepted",
    clause="reading: headers-iterable",
    level=READING,
)
def headers_iterable(ctx: Context) -> Result:
    observed = []
    ok = True
    for kind, words in HEADER_KINDS.items():
        response, events = run_probe(ctx, "/asgi/headers-iterable", has_event("done"), kind=kind)
        start = find_event(events, "send", step="start")
        value = response.header(b"x-from-iterable") if isinstance(response, Response) else None
        observed.append(
            f"headers as {words}: send {send_outcome(start)}, {response.describe()}, "
            f"X-From-Iterable: {value!r}"
        )
        whole = isinstance(response, Response) and response.complete
        ok = ok and whole and value == kind.encode("ascii")
    return verdict(ok, "; ".join(observed))


HEADER_KINDS = {
    "tuple": "a tuple of tuples",
    "lists": "a list of [name, value] lists",
    "generator": "a generator of tuples",
}


@check(
    "asgi-http.scope-headers-list",
    title="the scope's headers are a list (an app may read them more than once)",
    clause="reading: headers-iterable",
    level=READING,
)
def scope_headers_list(ctx: Context) -> Result:
    scope = http_scope(ctx, "asgi-http.scope-headers-list")
    if scope.desc is None:
        return failed(scope.why)
    node = scope.get("headers")
    kind = node.get("type") if node is not None else "absent"
    return verdict(kind in ("list", "tuple"), f"scope['headers'] is a {kind}")


@check(
    "asgi-http.uppercase-response-header-names",
    title="an upper-case response header name from the app is sent (as is or lowercased)",
    clause="reading: uppercase-response-header-names",
    level=READING,
)
def uppercase_response_header_names(ctx: Context) -> Result:
    response, events = run_probe(ctx, "/asgi/uppercase-header", has_event("done"))
    start = find_event(events, "send", step="start")
    if not isinstance(response, Response):
        return failed(f"send(start) {send_outcome(start)}; {response.describe()}")
    names = [name for name, _ in response.headers if name.lower() == b"x-upper-case"]
    observed = (
        f"the app sent b'X-Upper-Case: kept'; send {send_outcome(start)}; "
        f"{response.describe()} with header names {names}"
    )
    ok = (
        len(names) == 1
        and response.header(b"x-upper-case") == b"kept"
        and names[0] in (b"X-Upper-Case", b"x-upper-case")
    )
    return verdict(ok, observed)
