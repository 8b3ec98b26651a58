"""Checks on the messages an application sends, compiled from the ASGI spec's data.

ASGI "Error Handling": a server should raise an exception out of ``send`` for an event with an
unknown type, a missing required key or a wrong Python type, and must not raise for extra
keys. Each error names the message, the rule and the clause it comes from, e.g.
``http.response.start: 'headers' names must be bytes, got str (ASGI HTTP spec, Response
Start)``.

Theory of operation
-------------------
At import, every send-direction message of ``spec/asgi.json`` (``schema.SPEC``) is compiled
into a *shape*: a tuple with one ``KeyCheck`` per key (the ``type`` key is the dispatcher's).
``read(message, shape)`` is the reference: a loop of ``dict.get`` and ``type(value) in types``
tests that returns the values, defaults filled in, in shape order. Every value that fails its
type test (a missing required key, a structured type, a wrong type) takes one slow path,
``_slow_path``, which also writes the errors.

A call site asks for ``reader(type, *names)``, naming the keys in the order it unpacks them; a
key added to the data but not read there fails at import rather than going unchecked. For the
two- and three-key messages sent on every response, the reader is ``read``'s loop unrolled into
a closure over the same ``KeyCheck`` tuples (the loop alone makes a start plus a body about a
quarter slower); tests/core/test_schema.py checks that both give the same values and the same
errors.

The types the data describes by structure (``headers``, ``bytes-iterable``, ``file``) have a
checker function instead of Python types. The headers checker also does the work the server
needs from the headers anyway (drop ``transfer-encoding``, note ``server`` and ``date``), so an
app's headers, which may be a one-shot iterator, are walked once. Header syntax (RFC 9110 §5)
is left to h11, which checks it as it builds the response.

Rules the data keeps only as text (a final status, a subprotocol the client offered,
close codes, exactly one of bytes and text) are checked by hand at the call sites, citing their
clause.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .errors import ASGIProtocolError
from .schema import SEND, SPEC, Message

EVENTS = "ASGI spec, Events"

# A structured type's checker: (value, message type, key name, clause) -> the value to use.
Checker = Callable[[Any, str, str, str], Any]

# (key name, accepted Python types, checker or None, default, message type, clause). The
# default of a required key is _REQUIRED, and that of an optional key the spec gives no default
# is _ABSENT: no type test accepts either, so both take the slow path, which raises for the one
# and reads the other as None. A structured type accepts no Python type as such: its value
# always goes to its checker.
KeyCheck = tuple[str, tuple[type, ...], Checker | None, Any, str, str]
Shape = tuple[KeyCheck, ...]
Reader = Callable[[Mapping[str, Any]], tuple[Any, ...]]

_REQUIRED: Any = object()
_ABSENT: Any = object()

# The data's type names as Python types, and how an error spells them.
_PYTHON_TYPES: dict[str, type] = {
    "str": str,
    "bytes": bytes,
    "int": int,
    "bool": bool,
    "null": type(None),
    "dict": dict,
}


def fail(message_type: str, rule: str, clause: str) -> ASGIProtocolError:
    return ASGIProtocolError(f"{message_type}: {rule} ({clause})")


def _type_name(value: object) -> str:
    return type(value).__name__


def _is_iterable(value: object) -> bool:
    """An iterable other than str, bytes (iterables of characters) and dict (of keys only)."""
    return isinstance(value, Iterable) and not isinstance(value, (bytes, str, dict))


# The header names the server acts on (ASGI HTTP spec, Response Start: Transfer-Encoding is the
# server's; Server and Date are added unless the app sent them).
_SERVER_OWNED = frozenset({b"transfer-encoding", b"server", b"date"})


def headers(
    value: Any, message_type: str, name: str, clause: str, owned: frozenset[bytes] = _SERVER_OWNED
) -> tuple[list[tuple[bytes, bytes]], bool, bool]:
    """Return ``(headers, has_server, has_date)`` with ``transfer-encoding`` removed.

    The spec: the server must ignore a ``Transfer-Encoding`` header from the app and choose
    the framing itself (ASGI HTTP spec, Response Start).
    """
    if type(value) is not list and type(value) is not tuple and not _is_iterable(value):
        raise fail(
            message_type,
            f"{name!r} must be {SPEC.types['headers']}, got {_type_name(value)}",
            clause,
        )
    result: list[tuple[bytes, bytes]] = []
    append = result.append
    has_server = has_date = False
    for item in value:
        try:
            header_name, header_value = item
        except (TypeError, ValueError):
            raise fail(
                message_type,
                f"each of {name!r} must be a [name, value] pair, got {item!r:.60}",
                clause,
            ) from None
        if type(header_name) is not bytes or type(header_value) is not bytes:
            if type(header_name) is not bytes:
                part, wrong = "names", header_name
            else:
                part, wrong = "values", header_value
            raise fail(
                message_type, f"{name!r} {part} must be bytes, got {_type_name(wrong)}", clause
            )
        lowered = header_name.lower()
        if lowered in owned:
            if lowered == b"transfer-encoding":
                continue
            if lowered == b"server":
                has_server = True
            else:
                has_date = True
        append((header_name, header_value))
    return result, has_server, has_date


def _bytes_iterable(value: Any, message_type: str, name: str, clause: str) -> list[bytes]:
    if not _is_iterable(value):
        raise fail(
            message_type,
            f"{name!r} must be {SPEC.types['bytes-iterable']}, got {_type_name(value)}",
            clause,
        )
    items = list(value)
    for item in items:
        if type(item) is not bytes:
            raise fail(
                message_type, f"{name!r} items must be bytes, got {_type_name(item)}", clause
            )
    return items


def _file(value: Any, message_type: str, name: str, clause: str) -> Any:
    if not callable(getattr(value, "fileno", None)):
        raise fail(
            message_type,
            f"{name!r} must be {SPEC.types['file']}, got {_type_name(value)}",
            clause,
        )
    return value


def _fields(value: Any, message_type: str, name: str, clause: str) -> list[tuple[bytes, bytes]]:
    """Header pairs of bytes, checked as ``headers`` checks them, none dropped: a trailer
    section's, which the server does not act on (the caller refuses the fields it may not
    carry, ``transfer-encoding`` among them)."""
    return headers(value, message_type, name, clause, owned=frozenset())[0]


_CHECKERS: dict[str, Checker] = {
    "headers": headers,
    "bytes-iterable": _bytes_iterable,
    "file": _file,
}
# Keys whose checker is not their type's: (message type, key name) -> checker.
_KEY_CHECKERS: dict[tuple[str, str], Checker] = {("http.response.trailers", "headers"): _fields}


def read(message: Mapping[str, Any], shape: Shape) -> tuple[Any, ...]:
    """The values of ``shape``'s keys in ``message``, defaults filled in; raise for a bad one.

    A missing optional key without a default reads as None.
    """
    values = []
    get = message.get
    for check in shape:
        value = get(check[0], check[3])
        if type(value) not in check[1]:
            value = _slow_path(value, check)
        values.append(value)
    return tuple(values)


def _slow_path(value: Any, check: KeyCheck) -> Any:
    """A value no Python type of its key accepts: a structured type's, or an error."""
    name, types, checker, _, message_type, clause = check
    if value is _ABSENT:
        return None
    if value is _REQUIRED:
        raise fail(message_type, f"missing required key {name!r}", clause)
    if checker is None:
        for accepted in types:
            # A subclass is read as its base: HTTPStatus.OK as 200, a str enum as its str. A
            # bool is never an int here.
            if isinstance(value, accepted) and not isinstance(value, bool):
                return str.__str__(value) if accepted is str else accepted(value)
        raise fail(
            message_type, f"{name!r} must be {_spell(types)}, got {_type_name(value)}", clause
        )
    return checker(value, message_type, name, clause)


def reader(message_type: str, *names: str) -> Reader:
    """A function reading ``names`` from a ``message_type`` message, as ``read`` does.

    For the shapes of the messages sent on every response (two or three keys) the loop of
    ``read`` is unrolled into a closure: a loop costs about 65 ns a key in CPython 3.11, the
    unrolled form about 25.
    """
    checks = shape(message_type, *names)
    if len(checks) == 2:
        return _read2(*checks)
    if len(checks) == 3:
        return _read3(*checks)

    def read_shape(message: Mapping[str, Any]) -> tuple[Any, ...]:
        return read(message, checks)

    return read_shape


def _read2(c0: KeyCheck, c1: KeyCheck) -> Reader:
    n0, t0, _, d0, _, _ = c0
    n1, t1, _, d1, _, _ = c1

    def read2(message: Mapping[str, Any]) -> tuple[Any, ...]:
        get = message.get
        v0 = get(n0, d0)
        if type(v0) not in t0:
            v0 = _slow_path(v0, c0)
        v1 = get(n1, d1)
        if type(v1) not in t1:
            v1 = _slow_path(v1, c1)
        return v0, v1

    return read2


def _read3(c0: KeyCheck, c1: KeyCheck, c2: KeyCheck) -> Reader:
    n0, t0, _, d0, _, _ = c0
    n1, t1, _, d1, _, _ = c1
    n2, t2, _, d2, _, _ = c2

    def read3(message: Mapping[str, Any]) -> tuple[Any, ...]:
        get = message.get
        v0 = get(n0, d0)
        if type(v0) not in t0:
            v0 = _slow_path(v0, c0)
        v1 = get(n1, d1)
        if type(v1) not in t1:
            v1 = _slow_path(v1, c1)
        v2 = get(n2, d2)
        if type(v2) not in t2:
            v2 = _slow_path(v2, c2)
        return v0, v1, v2

    return read3


def _spell(types: tuple[type, ...]) -> str:
    return " or ".join("None" if t is type(None) else t.__name__ for t in types)


def _compile(message: Message) -> Shape:
    checks: list[KeyCheck] = []
    for key in message.keys:
        if key.name == "type":
            continue  # checked by the dispatcher: message_type() and the ordering table
        checker: Checker | None = None
        structured = [name for name in key.type if name in _CHECKERS]
        if structured:
            if len(key.type) != 1:
                raise ValueError(f"{message.type}: {key.name!r} mixes {key.type}")
            checker = _KEY_CHECKERS.get((message.type, key.name), _CHECKERS[structured[0]])
            python_types: tuple[type, ...] = ()
        else:
            try:
                python_types = tuple(_PYTHON_TYPES[name] for name in key.type)
            except KeyError as exc:
                raise ValueError(f"{message.type}: {key.name!r} has no check for {exc}") from None
        default = key.default if key.has_default else _ABSENT
        if key.required:
            default = _REQUIRED
        checks.append((key.name, python_types, checker, default, message.type, key.clause))
    return tuple(checks)


SHAPES: Mapping[str, Shape] = {
    name: _compile(message) for name, message in SPEC.messages.items() if message.direction == SEND
}


def shape(message_type: str, *names: str) -> Shape:
    """The shape of ``message_type`` with its keys in the order ``names`` gives.

    ``names`` must be exactly the data's keys (``type`` aside): a call site that does not
    read a key the spec defines fails here, at import.
    """
    compiled = {check[0]: check for check in SHAPES[message_type]}
    if set(names) != compiled.keys() or len(names) != len(compiled):
        raise ValueError(
            f"{message_type}: the call site reads {sorted(names)}, the spec defines "
            f"{sorted(compiled)}"
        )
    return tuple(compiled[name] for name in names)


def clause(message_type: str) -> str:
    """The clause that defines ``message_type``."""
    return SPEC.messages[message_type].clause


def final_status(status: int, message_type: str) -> None:
    """Raise unless ``status`` is a final status an app may send."""
    if not 200 <= status <= 599:
        raise fail(
            message_type,
            f"'status' must be a final status from 200 to 599, got {status}",
            "RFC 9110 §15; 1xx responses are interim and sent by the server",
        )


def message_type(message: object) -> str:
    """The ``type`` of a message, or an error saying why it has none."""
    if not isinstance(message, dict):
        raise ASGIProtocolError(f"a message must be a dict, got {_type_name(message)} ({EVENTS})")
    try:
        value = message["type"]
    except KeyError:
        raise ASGIProtocolError(f"a message must have a 'type' key ({EVENTS})") from None
    if type(value) is not str:
        raise ASGIProtocolError(
            f"a message's 'type' must be str, got {_type_name(value)} ({EVENTS})"
        )
    return value


def unexpected_type(message_type: str, where: str, allowed: Iterable[str], clause: str) -> str:
    """The error text for a message type ``where`` (e.g. "an http connection") never takes."""
    return (
        f"unexpected message type {message_type!r} for {where}; the app may send "
        f"{', '.join(allowed)} ({clause})"
    )
