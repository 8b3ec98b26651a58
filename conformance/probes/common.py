"""What every probe shares: the event log and the probe id."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def log(probe: str, event: str, **fields: Any) -> None:
    """Append one event to the log the suite reads (``CONFORMANCE_LOG``), one JSON line each."""
    path = os.environ.get("CONFORMANCE_LOG")
    if not path:
        return
    record = {"probe": probe, "event": event, "time": time.time(), **fields}
    line = json.dumps(record, default=repr) + "\n"
    with open(path, "a", encoding="utf-8") as file:
        file.write(line)


class Probe:
    """One request's probe id and its query parameters."""

    def __init__(self, probe_id: str, params: dict[str, str]) -> None:
        self.id = probe_id
        self.params = params

    @classmethod
    def of(cls, scope: Scope) -> Probe:
        raw = scope.get("query_string") or b""
        query = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
        params = {key: values[-1] for key, values in parse_qs(query).items()}
        return cls(params.get("probe", ""), params)

    def log(self, event: str, **fields: Any) -> None:
        log(self.id, event, **fields)


def exception_name(exc: BaseException) -> str:
    """``module.Class`` and whether it is an OSError, for checks that grade what send raised."""
    kind = type(exc)
    return f"{kind.__module__}.{kind.__qualname__}"


def describe_value(value: Any) -> Any:
    """A JSON-able account of a scope value that keeps its Python type."""
    if isinstance(value, bytes):
        return {"type": "bytes", "latin1": value.decode("latin-1")}
    if isinstance(value, str):
        return {"type": "str", "value": value}
    if isinstance(value, bool):
        return {"type": "bool", "value": value}
    if isinstance(value, int):
        return {"type": "int", "value": value}
    if isinstance(value, float):
        return {"type": "float", "value": value}
    if value is None:
        return {"type": "null"}
    if isinstance(value, dict):
        return {
            "type": "dict",
            "items": {str(key): describe_value(item) for key, item in value.items()},
            "str_keys": all(isinstance(key, str) for key in value),
        }
    if isinstance(value, (list, tuple)):
        return {
            "type": type(value).__name__,
            "items": [describe_value(item) for item in value],
        }
    return {"type": type(value).__name__, "repr": repr(value)[:200]}


async def respond(
    send: Send,
    body: bytes,
    status: int = 200,
    headers: list[tuple[bytes, bytes]] | None = None,
    content_type: bytes = b"text/plain; charset=utf-8",
) -> None:
    """A complete response with a Content-Length."""
    all_headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    all_headers += headers or []
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})
