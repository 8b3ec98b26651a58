"""Small steps that many checks share."""

from __future__ import annotations

from ..client import HTTPConnection, NoResponse, Response, request_bytes
from ..framework import Context, Exchange


def open_http(ctx: Context) -> HTTPConnection:
    return HTTPConnection(ctx.connect(), ctx.options.io_timeout_s)


def exchange(
    ctx: Context,
    check_id: str,
    method: str = "GET",
    target: str = "/",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    raw: bytes | None = None,
) -> tuple[Response | NoResponse, HTTPConnection]:
    """Send one request on a new connection and read one response (or why there was none).

    The response is recorded for httplint unless the request was hand-made (``raw``). The
    caller closes the connection.
    """
    connection = open_http(ctx)
    connection.send(raw if raw is not None else request_bytes(method, target, headers, body))
    try:
        response = connection.read_response(method)
    except NoResponse as exc:
        return exc, connection
    if raw is None:
        ctx.record(
            Exchange(
                check_id,
                method,
                target,
                [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers or []],
                response,
            )
        )
    return response, connection


def probe_target(path: str, probe_id: str, **params: str) -> str:
    query = "&".join([f"probe={probe_id}", *(f"{key}={value}" for key, value in params.items())])
    return f"{path}?{query}"
