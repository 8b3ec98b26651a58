"""What every probe shares: the event log and the probe id, ``send`` and ``receive`` with a
deadline and logged, and a whole response."""

from __future__ import annotations

import asyncio
import functools
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

WAIT_S = 5.0  # the longest a probe waits for the server, unless its check names a deadline


def log(probe: str, event: str, **fields: Any) -> None:
    """Append one event to the log the suite reads (``CONFORMANCE_LOG``), one JSON line each.

    Each line is written by one ``os.write`` to a file opened ``O_APPEND``: the kernel appends
    it whole at the end, so the lines of a server's worker processes and threads, all writing
    to the one log, never interleave (a buffered file may split a long line into several
    writes, and another's line can land between them)."""
    path = os.environ.get("CONFORMANCE_LOG")
    if not path:
        return
    record = {"probe": probe, "event": event, "time": time.time(), **fields}
    line = (json.dumps(record, default=repr) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, line)
        while written < len(line):  # only if a full disk or a signal cut the write short
            written += os.write(fd, line[written:])
    finally:
        os.close(fd)


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


Handler = Callable[[Scope, Receive, Send, Probe], Awaitable[None]]  # one route of a probe app


def exception_name(exc: BaseException) -> str:
    """``module.Class`` of an exception, for checks that grade what send raised."""
    kind = type(exc)
    return f"{kind.__module__}.{kind.__qualname__}"


def describe_value(value: Any) -> Any:
    """A JSON-able account of a scope or message value that keeps its Python type; containers,
    and any other iterable but a bytearray, are described item by item."""
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
    if not isinstance(value, bytearray):
        try:
            items = list(value)
        except TypeError:
            pass
        else:
            described = [describe_value(item) for item in items]
            return {"type": type(value).__name__, "iterable": True, "items": described}
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


def log_send_raised(probe: Probe, step: str, exc: BaseException) -> None:
    """Log that ``send`` of ``step`` raised ``exc``: its class, whether it is an OSError (the
    spec's exception for a closed connection) and its text."""
    probe.log(
        "send",
        step=step,
        outcome="raised",
        exception=exception_name(exc),
        oserror=isinstance(exc, OSError),
        text=str(exc)[:200],
    )


async def send_logged(
    probe: Probe, step: str, send: Send, message: Message, timeout_s: float = WAIT_S
) -> bool:
    """``send(message)``, logged as a ``send`` event of ``step`` with its outcome: returned,
    raised (and what), hung (still waiting after ``timeout_s``) or cancelled. True if it
    returned."""
    try:
        await asyncio.wait_for(send(message), timeout_s)
    except asyncio.TimeoutError:
        probe.log("send", step=step, outcome="hung")
        return False
    except asyncio.CancelledError:
        probe.log("send", step=step, outcome="cancelled")
        raise
    except Exception as exc:
        log_send_raised(probe, step, exc)
        return False
    probe.log("send", step=step, outcome="returned")
    return True


async def receive_within(
    probe: Probe, receive: Receive, step: str, timeout_s: float = WAIT_S
) -> Message | None:
    """``receive()``; None, logged as a ``receive`` event of ``step``, if no message came
    within ``timeout_s`` or it raised (or, logged and raised again, if it was cancelled). The
    caller logs the message the way its checks read it."""
    try:
        return await asyncio.wait_for(receive(), timeout_s)
    except asyncio.TimeoutError:
        probe.log("receive", step=step, outcome="timeout")
    except asyncio.CancelledError:
        probe.log("receive", step=step, outcome="cancelled")
        raise
    except Exception as exc:
        probe.log("receive", step=step, outcome="raised", exception=exception_name(exc))
    return None


def logs_how_it_ends(handler: Handler) -> Handler:
    """``handler``, logging a ``handler-ended`` event with how it ended: returned, cancelled
    (by the server), or raised (and what)."""

    @functools.wraps(handler)
    async def logged(scope: Scope, receive: Receive, send: Send, probe: Probe) -> None:
        try:
            await handler(scope, receive, send, probe)
        except asyncio.CancelledError:
            probe.log("handler-ended", how="cancelled")
            raise
        except Exception as exc:
            probe.log("handler-ended", how="raised", exception=exception_name(exc))
            raise
        probe.log("handler-ended", how="returned")

    return logged
