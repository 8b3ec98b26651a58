"""The ASGI specification as typed data, loaded once from ``spec/asgi.json``.

Theory of operation
-------------------
``spec/asgi.json`` records the ASGI specification (asgi 3.0, HTTP and WebSocket 2.5, lifespan
2.0, TLS 0.2 and the extensions) as data: the keys of every scope and message with their types,
defaults and clauses, the order in which messages may be sent (``ordering``), and the places where
the text is silent or contradicts itself, with sansio-asgi's reading of each (``readings``).
``validate`` compiles its per-message checks from it; the conformance suite grades servers
against it; ``spec/render.py`` turns it into ``spec/README.md`` for people.

The file ships inside the package as ``sansio_asgi.spec`` (pyproject.toml maps ``spec/`` there),
so there is one copy. ``parse`` checks the shape of every entry as it builds frozen dataclasses,
and a malformed file fails at import, naming the entry, rather than at some later ``send()``.

Conventions of the data, applied here:

* A key's ``type`` is a list of names from ``types``; ``"null"`` means None is allowed.
* A dotted scope key is nested: ``asgi.version`` is ``scope["asgi"]["version"]``.
* A key has a default only where the spec gives one (``Key.default`` is ``NO_DEFAULT``
  otherwise). Byte defaults are latin-1 text in the JSON and ``bytes`` here; list defaults are
  tuples here.
* A transition's ``when`` compares the message's values, absent keys taking their defaults. A
  transition with an ``extension`` exists only when ``scope["extensions"]`` lists it.
"""

from __future__ import annotations

import json
import os
import pkgutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

SEND = "send"
RECEIVE = "receive"


class _NoDefault:
    """The default of a key the spec gives no default for."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Final = _NoDefault()


@dataclass(frozen=True)
class Key:
    """One key of a scope or a message."""

    name: str
    type: tuple[str, ...]  # names from Spec.types
    required: bool
    default: object  # NO_DEFAULT when the spec gives none
    allowed: tuple[object, ...] | None  # the only values the spec allows, if it lists them
    clause: str
    since: str | None  # the spec version that added the key
    text: str  # the spec's words, quoted or closely paraphrased
    note: str

    @property
    def has_default(self) -> bool:
        return self.default is not NO_DEFAULT


@dataclass(frozen=True)
class Rule:
    """A sentence of the spec about a scope or message that its keys cannot express."""

    id: str
    text: str
    clause: str


@dataclass(frozen=True)
class Scope:
    name: str
    clause: str
    text: str
    keys: tuple[Key, ...]
    rules: tuple[Rule, ...]

    def key(self, name: str) -> Key:
        return _find(self.keys, name, f"scope {self.name!r}")


@dataclass(frozen=True)
class Message:
    type: str
    protocol: str  # the scope type it belongs to
    direction: str  # SEND (app to server) or RECEIVE (server to app)
    extension: str | None  # its name in scope["extensions"], for an extension's message
    clause: str
    text: str
    note: str
    keys: tuple[Key, ...]
    rules: tuple[Rule, ...]

    def key(self, name: str) -> Key:
        return _find(self.keys, name, f"message {self.type!r}")


@dataclass(frozen=True)
class Transition:
    source: str  # "from" in the JSON
    message: str
    when: Mapping[str, object]
    to: str
    extension: str | None
    clause: str
    note: str

    def matches(self, message: Message, values: Mapping[str, object]) -> bool:
        """Whether a message with these values takes this transition (defaults applied)."""
        for name, expected in self.when.items():
            value = values.get(name, message.key(name).default)
            if value != expected or type(value) is not type(expected):
                return False
        return True


@dataclass(frozen=True)
class Machine:
    """The order of messages on one channel, as a table of transitions."""

    name: str
    clause: str
    text: str
    initial: str
    final: tuple[str, ...]
    states: Mapping[str, str]  # state -> what it means
    transitions: tuple[Transition, ...]

    def message_types(self, offered: Iterable[str] = ()) -> tuple[str, ...]:
        """The message types of this machine, in table order, given the offered extensions."""
        offered = set(offered)
        seen: dict[str, None] = {}
        for transition in self.transitions:
            if transition.extension is None or transition.extension in offered:
                seen.setdefault(transition.message)
        return tuple(seen)


@dataclass(frozen=True)
class Reading:
    """A place where the spec is silent or inconsistent, and what sansio-asgi makes of it."""

    id: str
    topic: str
    spec: str  # what the text says, or that it is silent
    reading: str  # sansio-asgi's reading
    accepted: tuple[str, ...]  # the behaviours a conformance check accepts
    peers: str  # what uvicorn, hypercorn and daphne do
    clause: str


@dataclass(frozen=True)
class Spec:
    versions: Mapping[str, str]
    documents: Mapping[str, str]  # document name (as clauses cite it) -> file in django/asgiref
    types: Mapping[str, str]  # type name -> what it means
    scopes: Mapping[str, Scope]
    messages: Mapping[str, Message]
    ordering: Mapping[str, Machine]
    readings: tuple[Reading, ...]

    def reading(self, id: str) -> Reading:
        return _find_id(self.readings, id)


# ---------------------------------------------------------------------- parsing


class SpecFormatError(ValueError):
    """spec/asgi.json does not have the shape this module reads."""


def _fields(value: object, where: str, required: set[str], optional: set[str]) -> dict[str, object]:
    if not isinstance(value, dict):
        raise SpecFormatError(f"{where}: expected an object, got {type(value).__name__}")
    missing = required - value.keys()
    unknown = value.keys() - required - optional
    if missing or unknown:
        raise SpecFormatError(f"{where}: missing {sorted(missing)}, unknown {sorted(unknown)}")
    return value


def _str(value: object, where: str) -> str:
    if type(value) is not str:
        raise SpecFormatError(f"{where}: expected a string, got {value!r}")
    return value


def _opt_str(value: object, where: str) -> str | None:
    return None if value is None else _str(value, where)


def _list(value: object, where: str) -> list[object]:
    if not isinstance(value, list):
        raise SpecFormatError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _strs(value: object, where: str) -> tuple[str, ...]:
    return tuple(_str(item, f"{where}[{i}]") for i, item in enumerate(_list(value, where)))


def _str_map(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise SpecFormatError(f"{where}: expected an object, got {type(value).__name__}")
    return {_str(k, where): _str(v, f"{where}.{k}") for k, v in value.items()}


def _value(value: object, types: tuple[str, ...]) -> object:
    """A JSON default or allowed value as the Python value it stands for."""
    if isinstance(value, str) and "bytes" in types and "str" not in types:
        return value.encode("latin-1")
    if isinstance(value, list):
        return tuple(value)
    return value


def _key(value: object, where: str) -> Key:
    fields = _fields(
        value,
        where,
        {"name", "type", "required", "clause"},
        {"default", "allowed", "since", "text", "note"},
    )
    name = _str(fields["name"], f"{where}.name")
    where = f"{where} ({name})"
    types = _strs(fields["type"], f"{where}.type")
    required = fields["required"]
    if type(required) is not bool:
        raise SpecFormatError(f"{where}.required: expected true or false")
    allowed = fields.get("allowed")
    return Key(
        name=name,
        type=types,
        required=required,
        default=_value(fields["default"], types) if "default" in fields else NO_DEFAULT,
        allowed=(
            None
            if allowed is None
            else tuple(_value(v, types) for v in _list(allowed, f"{where}.allowed"))
        ),
        clause=_str(fields["clause"], f"{where}.clause"),
        since=_opt_str(fields.get("since"), f"{where}.since"),
        text=_str(fields.get("text", ""), f"{where}.text"),
        note=_str(fields.get("note", ""), f"{where}.note"),
    )


def _keys(value: object, where: str) -> tuple[Key, ...]:
    return tuple(_key(item, f"{where}[{i}]") for i, item in enumerate(_list(value, where)))


def _rules(value: object, where: str) -> tuple[Rule, ...]:
    rules = []
    for i, item in enumerate(_list(value, where)):
        fields = _fields(item, f"{where}[{i}]", {"id", "text", "clause"}, set())
        rules.append(
            Rule(
                id=_str(fields["id"], f"{where}[{i}].id"),
                text=_str(fields["text"], f"{where}[{i}].text"),
                clause=_str(fields["clause"], f"{where}[{i}].clause"),
            )
        )
    return tuple(rules)


def _scope(name: str, value: object) -> Scope:
    where = f"scopes.{name}"
    fields = _fields(value, where, {"clause", "keys"}, {"text", "rules"})
    return Scope(
        name=name,
        clause=_str(fields["clause"], f"{where}.clause"),
        text=_str(fields.get("text", ""), f"{where}.text"),
        keys=_keys(fields["keys"], f"{where}.keys"),
        rules=_rules(fields.get("rules", []), f"{where}.rules"),
    )


def _message(name: str, value: object) -> Message:
    where = f"messages.{name}"
    fields = _fields(
        value,
        where,
        {"protocol", "direction", "extension", "clause", "keys"},
        {"text", "note", "rules"},
    )
    direction = _str(fields["direction"], f"{where}.direction")
    if direction not in (SEND, RECEIVE):
        raise SpecFormatError(f"{where}.direction: expected {SEND!r} or {RECEIVE!r}")
    return Message(
        type=name,
        protocol=_str(fields["protocol"], f"{where}.protocol"),
        direction=direction,
        extension=_opt_str(fields["extension"], f"{where}.extension"),
        clause=_str(fields["clause"], f"{where}.clause"),
        text=_str(fields.get("text", ""), f"{where}.text"),
        note=_str(fields.get("note", ""), f"{where}.note"),
        keys=_keys(fields["keys"], f"{where}.keys"),
        rules=_rules(fields.get("rules", []), f"{where}.rules"),
    )


def _machine(name: str, value: object) -> Machine:
    where = f"ordering.{name}"
    fields = _fields(
        value, where, {"initial", "final", "states", "transitions"}, {"clause", "text"}
    )
    transitions = []
    for i, item in enumerate(_list(fields["transitions"], f"{where}.transitions")):
        at = f"{where}.transitions[{i}]"
        t = _fields(item, at, {"from", "message", "to", "clause"}, {"when", "extension", "note"})
        when = t.get("when", {})
        if not isinstance(when, dict):
            raise SpecFormatError(f"{at}.when: expected an object")
        transitions.append(
            Transition(
                source=_str(t["from"], f"{at}.from"),
                message=_str(t["message"], f"{at}.message"),
                when={_str(k, f"{at}.when"): v for k, v in when.items()},
                to=_str(t["to"], f"{at}.to"),
                extension=_opt_str(t.get("extension"), f"{at}.extension"),
                clause=_str(t["clause"], f"{at}.clause"),
                note=_str(t.get("note", ""), f"{at}.note"),
            )
        )
    return Machine(
        name=name,
        clause=_str(fields.get("clause", ""), f"{where}.clause"),
        text=_str(fields.get("text", ""), f"{where}.text"),
        initial=_str(fields["initial"], f"{where}.initial"),
        final=_strs(fields["final"], f"{where}.final"),
        states=_str_map(fields["states"], f"{where}.states"),
        transitions=tuple(transitions),
    )


def _reading(value: object, where: str) -> Reading:
    fields = _fields(
        value, where, {"id", "topic", "spec", "reading", "accepted", "peers", "clause"}, set()
    )
    return Reading(
        id=_str(fields["id"], f"{where}.id"),
        topic=_str(fields["topic"], f"{where}.topic"),
        spec=_str(fields["spec"], f"{where}.spec"),
        reading=_str(fields["reading"], f"{where}.reading"),
        accepted=_strs(fields["accepted"], f"{where}.accepted"),
        peers=_str(fields["peers"], f"{where}.peers"),
        clause=_str(fields["clause"], f"{where}.clause"),
    )


def _objects(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise SpecFormatError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def parse(data: object) -> Spec:
    """The ``Spec`` of the decoded JSON ``data``; raises ``SpecFormatError`` for a bad shape."""
    top = _fields(
        data,
        "asgi.json",
        {"versions", "documents", "types", "scopes", "messages", "ordering", "readings"},
        set(),
    )
    readings = _list(top["readings"], "readings")
    return Spec(
        versions=_str_map(top["versions"], "versions"),
        documents=_str_map(top["documents"], "documents"),
        types=_str_map(top["types"], "types"),
        scopes={k: _scope(k, v) for k, v in _objects(top["scopes"], "scopes").items()},
        messages={k: _message(k, v) for k, v in _objects(top["messages"], "messages").items()},
        ordering={k: _machine(k, v) for k, v in _objects(top["ordering"], "ordering").items()},
        readings=tuple(_reading(r, f"readings[{i}]") for i, r in enumerate(readings)),
    )


# Where spec/ is when the package runs from a checkout that was never installed (PYTHONPATH),
# or from an editable install made before spec/ was mapped in as sansio_asgi.spec.
_CHECKOUT_SPEC = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))),
    "spec",
    "asgi.json",
)


def load() -> Spec:
    """Read and parse ``asgi.json``: the package ``sansio_asgi.spec``, or the checkout's spec/.
    (``pkgutil.get_data`` reads it from a zip too, without importing ``importlib.resources``.)"""
    try:
        data = pkgutil.get_data("sansio_asgi.spec", "asgi.json")
    except ModuleNotFoundError:
        data = None
    if data is None:
        with open(_CHECKOUT_SPEC, "rb") as file:
            data = file.read()
    return parse(json.loads(data))


def _find(keys: tuple[Key, ...], name: str, where: str) -> Key:
    for key in keys:
        if key.name == name:
            return key
    raise KeyError(f"{where} has no key {name!r}")


def _find_id(readings: tuple[Reading, ...], id: str) -> Reading:
    for reading in readings:
        if reading.id == id:
            return reading
    raise KeyError(f"no reading {id!r}")


SPEC: Final = load()
