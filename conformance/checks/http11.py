"""HTTP/1.1 framing and error handling: RFC 9112 message syntax and RFC 9110 semantics."""

from __future__ import annotations

from ..client import NoResponse, request_bytes
from ..framework import Context, Result, check, failed, verdict
from .common import open_http

GROUP = "http11"


@check(
    "http11.pipelining",
    group=GROUP,
    title="pipelined requests are answered in order",
    clause="RFC 9112 §9.3.2",
)
def pipelining(ctx: Context) -> Result:
    with open_http(ctx) as connection:
        request = request_bytes("GET", "/http11/hello")
        connection.send(request * 3)
        statuses = []
        for _ in range(3):
            try:
                response = connection.read_response()
            except NoResponse as exc:
                return failed(f"after {len(statuses)} responses: {exc.describe()}")
            statuses.append(response.status)
            if response.body != b"Hello, world!":
                return failed(f"response {len(statuses)}: {response.describe()}")
    return verdict(statuses == [200, 200, 200], f"three requests in one write got {statuses}")
