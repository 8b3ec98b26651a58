"""spec/asgi.json against itself, against validate.py, and against the core's behaviour.

* The data is consistent: every type, state, message and extension it names exists.
* Every send message has a compiled validator; for each of its keys a wrong type raises an error
  naming the message, the key, the type and the clause; extra keys never raise (ASGI E2); the
  unrolled readers agree with the reference loop.
* The ordering machines agree with the core: a real ``ServerProtocol`` (or ``Lifespan``) is driven
  into every state the data names, and every message is tried there; the data's transitions are
  accepted and land in the state the data says, everything else raises.
* The scopes the core builds have every required key, of the data's types and allowed values.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from sansio_asgi.core import ASGIProtocolError, ClientDisconnected, validate
from sansio_asgi.core import cycle as core_cycle
from sansio_asgi.core import lifespan as core_lifespan
from sansio_asgi.core.handler import Phase
from sansio_asgi.core.schema import NO_DEFAULT, RECEIVE, SEND, SPEC, Machine, Transition

from .helpers import FakeFile, Harness, request
from .ws_helpers import accept, handshake, open_harness

# ---------------------------------------------------------------- the data itself

# The readings the conformance suite cites by id.
CITED_READINGS = [
    "no-response-start",
    "return-before-final-body",
    "raise-after-start",
    "status-reason-date-server",
    "uppercase-response-header-names",
    "double-start-or-body-before-start",
    "body-longer-than-content-length",
    "disconnect-vs-pending-request",
    "websocket-connect-unanswered",
    "websocket-spec-version",
    "body-after-complete",
    "query-string-required",
    "headers-iterable",
    "send-on-closed-connection",
]

ALL_KEYS = [(f"scope {name}", key) for name, scope in SPEC.scopes.items() for key in scope.keys] + [
    (kind, key) for kind, message in SPEC.messages.items() for key in message.keys
]


def test_the_cited_readings_exist_once() -> None:
    ids = [reading.id for reading in SPEC.readings]
    assert len(ids) == len(set(ids))
    assert set(CITED_READINGS) <= set(ids)
    for reading in SPEC.readings:
        assert reading.accepted, reading.id


def test_every_key_type_is_described_in_types() -> None:
    for where, key in ALL_KEYS:
        assert key.type, (where, key.name)
        assert set(key.type) <= SPEC.types.keys(), (where, key.name)


def test_defaults_and_allowed_values_are_of_the_key_type() -> None:
    for where, key in ALL_KEYS:
        values = [key.default] if key.has_default else []
        values += list(key.allowed or ())
        for value in values:
            assert scope_value_matches(value, key.type), (where, key.name, value)
        if key.required:
            assert key.name.startswith("asgi.") or not key.has_default, (where, key.name)


def test_every_message_names_its_type_protocol_and_direction() -> None:
    for kind, message in SPEC.messages.items():
        assert kind.startswith(message.protocol + ".")
        assert message.protocol in SPEC.scopes
        assert message.direction in (SEND, RECEIVE)
        assert message.keys[0].name == "type"
        assert message.keys[0].allowed == (kind,)
        names = [key.name for key in message.keys]
        assert len(names) == len(set(names)), kind


def test_clauses_cite_a_document_or_an_rfc() -> None:
    clauses = [key.clause for _, key in ALL_KEYS]
    clauses += [message.clause for message in SPEC.messages.values()]
    clauses += [rule.clause for m in SPEC.messages.values() for rule in m.rules]
    clauses += [t.clause for machine in SPEC.ordering.values() for t in machine.transitions]
    clauses += [reading.clause for reading in SPEC.readings]
    for clause in clauses:
        assert clause.startswith(("RFC ", *SPEC.documents)), clause


@pytest.mark.parametrize("name", list(SPEC.ordering))
def test_machines_name_only_their_states_and_messages(name: str) -> None:
    machine = SPEC.ordering[name]
    assert machine.initial in machine.states
    assert set(machine.final) <= machine.states.keys()
    for t in machine.transitions:
        assert t.source in machine.states and t.to in machine.states, t
        message = SPEC.messages[t.message]
        assert set(t.when) <= {key.name for key in message.keys}, t
        if message.extension is not None:
            assert t.extension == message.extension, t
    reached = reachable(machine, offered=None)
    assert set(reached) == machine.states.keys(), "unreachable states"


def test_every_message_is_in_an_ordering_machine() -> None:
    ordered = {t.message for m in SPEC.ordering.values() for t in m.transitions}
    assert ordered == SPEC.messages.keys()


def test_the_core_offers_no_extension_the_spec_does_not_define() -> None:
    h = Harness()
    h.feed(request())
    extensions = {m.extension for m in SPEC.messages.values()} | {"tls"}
    assert set(h.scope()["extensions"]) <= extensions
    h = Harness()
    h.feed(handshake())
    assert set(h.scope()["extensions"]) <= extensions


# ---------------------------------------------------------------- validate.py


class FileLike:
    def fileno(self) -> int:
        return 0


SEND_MESSAGES = [kind for kind, m in SPEC.messages.items() if m.direction == SEND]
SAMPLES: dict[str, Any] = {
    "str": "x",
    "bytes": b"x",
    "int": 200,
    "bool": False,
    "null": None,
    "dict": {},
    "headers": [(b"x-a", b"1")],
    "bytes-iterable": [b"</a>; rel=preload"],
    "file": FileLike(),
}
WRONG_VALUES = [object(), "s", b"b", 7, True, None, 1.5, {}, [("x", b"1")], [b"x", "y"]]
PYTHON_SPELLING = {
    "str": "str",
    "bytes": "bytes",
    "int": "int",
    "bool": "bool",
    "null": "None",
    "dict": "dict",
}


def valid_message(kind: str) -> dict[str, Any]:
    """A message with every key of ``kind`` set to a value of its first type."""
    message: dict[str, Any] = {"type": kind}
    for key in SPEC.messages[kind].keys[1:]:
        message[key.name] = SAMPLES[key.type[0]]
    return message


def accepts(types: Iterable[str], value: Any) -> bool:
    """What validate.py accepts for a key of ``types`` (the per-item rules aside)."""
    for name in types:
        if name in ("headers", "bytes-iterable"):
            ok = isinstance(value, Iterable) and not isinstance(value, (str, bytes, dict))
            if ok and name == "headers":
                ok = all(
                    isinstance(i, (list, tuple))
                    and len(i) == 2
                    and all(type(p) is bytes for p in i)
                    for i in value
                )
            if ok and name == "bytes-iterable":
                ok = all(type(i) is bytes for i in value)
        elif name == "file":
            ok = callable(getattr(value, "fileno", None))
        else:
            ok = type(value) is validate._PYTHON_TYPES[name]
        if ok:
            return True
    return False


def names_of(kind: str) -> list[str]:
    return [key.name for key in SPEC.messages[kind].keys[1:]]


def test_every_message_has_a_validator_or_is_receive_only() -> None:
    for kind, message in SPEC.messages.items():
        if message.direction == SEND:
            assert kind in validate.SHAPES, kind
            assert [check[0] for check in validate.SHAPES[kind]] == names_of(kind)
        else:
            assert kind not in validate.SHAPES, kind


@pytest.mark.parametrize("kind", SEND_MESSAGES)
def test_a_complete_valid_message_reads_back_its_values(kind: str) -> None:
    message = valid_message(kind)
    values = validate.read(message, validate.SHAPES[kind])
    for key, value in zip(SPEC.messages[kind].keys[1:], values, strict=True):
        if key.type == ("headers",) and kind == "http.response.trailers":
            assert value == list(message[key.name])  # a trailer section: the fields, whole
        elif key.type == ("headers",):
            assert value == (list(message[key.name]), False, False)
        elif key.type == ("bytes-iterable",):
            assert value == list(message[key.name])
        else:
            assert value is message[key.name]


@pytest.mark.parametrize("kind", SEND_MESSAGES)
def test_every_wrong_type_raises_naming_the_key_the_type_and_the_clause(kind: str) -> None:
    for key in SPEC.messages[kind].keys[1:]:
        for wrong in WRONG_VALUES:
            if accepts(key.type, wrong):
                continue
            message = {**valid_message(kind), key.name: wrong}
            with pytest.raises(ASGIProtocolError) as info:
                validate.read(message, validate.SHAPES[kind])
            text = str(info.value)
            assert text.startswith(f"{kind}: ") and text.endswith(f"({key.clause})"), text
            assert repr(key.name) in text, text
            if isinstance(wrong, list):
                continue  # a bad item: the error names the item's type instead
            spelled = [PYTHON_SPELLING.get(t) or SPEC.types[t] for t in key.type]
            assert " or ".join(spelled) in text, text
            assert f"got {type(wrong).__name__}" in text, text


@pytest.mark.parametrize("kind", SEND_MESSAGES)
def test_a_missing_required_key_raises_and_a_missing_optional_key_reads_its_default(
    kind: str,
) -> None:
    keys = SPEC.messages[kind].keys[1:]
    for index, key in enumerate(keys):
        message = valid_message(kind)
        del message[key.name]
        if key.required:
            with pytest.raises(ASGIProtocolError) as info:
                validate.read(message, validate.SHAPES[kind])
            assert str(info.value) == (f"{kind}: missing required key {key.name!r} ({key.clause})")
        else:
            value = validate.read(message, validate.SHAPES[kind])[index]
            expected = key.default if key.default is not NO_DEFAULT else None
            if key.type == ("headers",):
                assert value == ([], False, False)
            else:
                assert value == expected


@pytest.mark.parametrize("kind", SEND_MESSAGES)
def test_extra_keys_never_raise(kind: str) -> None:
    message = {**valid_message(kind), "x-extension-key": object(), "more": [1, "2"]}
    validate.read(message, validate.SHAPES[kind])


def test_header_items_are_checked_one_by_one() -> None:
    for kind in SEND_MESSAGES:
        for key in SPEC.messages[kind].keys:
            if key.type != ("headers",):
                continue
            cases = {
                "names must be bytes, got str": [("x-a", b"1")],
                "values must be bytes, got str": [(b"x-a", "1")],
                "must be a [name, value] pair": [(b"x-a",)],
            }
            for fragment, value in cases.items():
                with pytest.raises(ASGIProtocolError, match=re.escape(fragment)):
                    validate.read({**valid_message(kind), "headers": value}, validate.SHAPES[kind])


def test_headers_may_be_any_iterable_and_are_read_once() -> None:
    """The reading headers-iterable: a generator works, transfer-encoding is dropped."""
    read_start = validate.reader("http.response.start", "status", "headers", "trailers")
    pairs = ((name, value) for name, value in [(b"Server", b"x"), (b"transfer-encoding", b"c")])
    assert read_start({"status": 200, "headers": pairs})[1] == ([(b"Server", b"x")], True, False)


@pytest.mark.parametrize("kind", SEND_MESSAGES)
def test_the_unrolled_reader_agrees_with_the_loop(kind: str) -> None:
    names = names_of(kind)
    fast = validate.reader(kind, *names)
    cases = [valid_message(kind), {"type": kind}]
    cases += [{**valid_message(kind), name: wrong} for name in names for wrong in WRONG_VALUES]
    for message in cases:
        expected: Any
        try:
            expected = validate.read(message, validate.SHAPES[kind])
        except ASGIProtocolError as exc:
            expected = str(exc)
        try:
            got: Any = fast(message)
        except ASGIProtocolError as exc:
            got = str(exc)
        assert got == expected, message


def test_a_reader_must_name_exactly_the_keys_of_the_data() -> None:
    with pytest.raises(ValueError, match="trailers"):
        validate.reader("http.response.start", "status", "headers")
    with pytest.raises(ValueError):
        validate.reader("http.response.body", "body", "more_body", "extra")


def test_error_messages_keep_their_shape() -> None:
    read_start = validate.reader("http.response.start", "status", "headers", "trailers")
    read_send = validate.reader("websocket.send", "bytes", "text")
    cases = [
        (
            lambda: read_start({"status": 200, "headers": [("content-type", b"x")]}),
            "http.response.start: 'headers' names must be bytes, got str "
            "(ASGI HTTP spec, Response Start)",
        ),
        (
            lambda: read_start({}),
            "http.response.start: missing required key 'status' (ASGI HTTP spec, Response Start)",
        ),
        (
            lambda: read_send({"text": 1}),
            "websocket.send: 'text' must be str or None, got int (ASGI WebSocket spec, Send)",
        ),
    ]
    for call, text in cases:
        with pytest.raises(ASGIProtocolError) as info:
            call()
        assert str(info.value) == text


# ---------------------------------------------------------------- ordering against the core


def reachable(machine: Machine, offered: Iterable[str] | None) -> dict[str, list[Transition]]:
    """Each state reachable from the initial one, with a shortest path of transitions.

    ``offered`` None follows every transition; otherwise only the core's and those of the
    offered extensions.
    """
    paths: dict[str, list[Transition]] = {machine.initial: []}
    queue = deque([machine.initial])
    while queue:
        state = queue.popleft()
        for t in machine.transitions:
            if t.source != state or t.to in paths:
                continue
            if offered is not None and t.extension is not None and t.extension not in offered:
                continue
            paths[t.to] = [*paths[state], t]
            queue.append(t.to)
    return paths


# Values for the keys rules keep only as text (exactly one of bytes and text; an absolute
# path), and files the harness can send.
FILE_PATH = "/srv/file.txt"
MESSAGE_BASES: dict[str, dict[str, Any]] = {
    "websocket.send": {"text": "hi"},
    "http.response.pathsend": {"path": FILE_PATH},
    "http.response.zerocopysend": {"file": FakeFile(b"file bytes")},
}


def build(kind: str, when: Mapping[str, object]) -> dict[str, Any]:
    """A valid message of ``kind``: its required keys, then ``when``."""
    message: dict[str, Any] = {"type": kind, **MESSAGE_BASES.get(kind, {})}
    for key in SPEC.messages[kind].keys[1:]:
        if key.required and key.name not in message:
            message[key.name] = SAMPLES[key.type[0]]
    message.update(when)
    return message


def trials(machine: Machine, state: str, protocol: str) -> list[tuple[dict[str, Any], str]]:
    """Every send message of ``protocol`` to try in ``state``, each guard the data names."""
    cases = []
    for kind, message in SPEC.messages.items():
        if message.protocol != protocol or message.direction != SEND:
            continue
        guards: list[Mapping[str, object]] = [{}]
        guards += [t.when for t in machine.transitions if t.source == state and t.message == kind]
        seen = []
        for when in guards:
            built = build(kind, when)
            if built not in seen:
                seen.append(built)
                label = ",".join(f"{k}={v}" for k, v in when.items())
                cases.append((built, f"{state}-{kind}" + (f"-{label}" if label else "")))
    return cases


def transition_for(
    machine: Machine, state: str, message: Mapping[str, Any], offered: Iterable[str]
) -> Transition | None:
    """The transition the data says ``message`` takes from ``state``, if the server has it."""
    kind = message["type"]
    offered = set(offered)
    for t in machine.transitions:
        if t.source != state or t.message != kind:
            continue
        if t.matches(SPEC.messages[kind], message) and (
            t.extension is None or t.extension in offered
        ):
            return t
    return None


HTTP_SEND = SPEC.ordering["http.send"]
# The data's states as the core's response states.
HTTP_STATES = {name: state for state, name in core_cycle.SPEC_STATES.items()}


def http_cycle(version: str = "1.1") -> tuple[Harness, core_cycle.HTTPCycle]:
    h = Harness()
    h.files[FILE_PATH] = b"file bytes"
    h.feed(request(version=version))
    return h, h.cycle()


def test_the_core_reaches_exactly_the_http_send_states() -> None:
    _, cycle = http_cycle()
    offered = list(cycle.scope["extensions"])
    assert set(reachable(HTTP_SEND, offered)) == set(HTTP_STATES)
    assert set(HTTP_STATES) == set(HTTP_SEND.states)
    assert set(HTTP_STATES.values()) == set(core_cycle.RESPONSE_STATES)
    expected = HTTP_SEND.message_types(offered)
    assert list(core_cycle.http_send_types(cycle.offered)) == list(expected)
    assert list(core_cycle.HTTP_SEND_TYPES) == list(HTTP_SEND.message_types())


def test_an_http_10_request_reaches_the_states_without_trailers() -> None:
    _, cycle = http_cycle("1.0")
    offered = list(cycle.scope["extensions"])
    assert set(reachable(HTTP_SEND, offered)) == {"start", "headers_held", "body", "done"}


HTTP_OFFERED = list(http_cycle()[1].scope["extensions"])
HTTP_TRIALS = [
    (state, message)
    for state in reachable(HTTP_SEND, HTTP_OFFERED)
    for message, _ in trials(HTTP_SEND, state, "http")
]
HTTP_TRIAL_IDS = [
    label
    for state in reachable(HTTP_SEND, HTTP_OFFERED)
    for _, label in trials(HTTP_SEND, state, "http")
]


@pytest.mark.parametrize(("state", "message"), HTTP_TRIALS, ids=HTTP_TRIAL_IDS)
def test_http_send_ordering_agrees_with_the_core(state: str, message: dict[str, Any]) -> None:
    h, cycle = http_cycle()
    offered = list(cycle.scope["extensions"])
    for t in reachable(HTTP_SEND, offered)[state]:
        h.message_from_app(cycle, build(t.message, t.when))
        assert cycle.response == HTTP_STATES[t.to], t
    h.take_sent()
    expected = transition_for(HTTP_SEND, state, message, offered)
    if expected is None:
        with pytest.raises(ASGIProtocolError):
            h.message_from_app(cycle, message)
        assert h.take_sent() == b"", "a refused message put bytes on the wire"
        assert cycle.response == HTTP_STATES[state]
    else:
        h.message_from_app(cycle, message)
        assert cycle.response == HTTP_STATES[expected.to]


WS_SEND = SPEC.ordering["websocket.send"]
WS_STATES = {
    "connecting": (Phase.HANDSHAKE,),
    "open": (Phase.OPEN,),
    "denial": (Phase.DENIAL,),
    "closed": (Phase.CLOSING, Phase.LINGERING, Phase.CLOSED),
}
WS_OFFERED = ["websocket.http.response"]
WS_TRIALS = [
    (state, message)
    for state in reachable(WS_SEND, WS_OFFERED)
    for message, _ in trials(WS_SEND, state, "websocket")
]
WS_TRIAL_IDS = [
    label
    for state in reachable(WS_SEND, WS_OFFERED)
    for _, label in trials(WS_SEND, state, "websocket")
]


@pytest.mark.parametrize(("state", "message"), WS_TRIALS, ids=WS_TRIAL_IDS)
def test_websocket_send_ordering_agrees_with_the_core(state: str, message: dict[str, Any]) -> None:
    h, cycle = open_harness()
    offered = list(cycle.scope["extensions"])
    assert offered == WS_OFFERED
    handler = h.protocol._handler  # type: ignore[attr-defined]
    for t in reachable(WS_SEND, offered)[state]:
        h.message_from_app(cycle, build(t.message, t.when))  # type: ignore[arg-type]
        handler = h.protocol._handler  # type: ignore[attr-defined]
        assert handler.phase in WS_STATES[t.to], t
    expected = transition_for(WS_SEND, state, message, offered)
    if expected is not None:
        h.message_from_app(cycle, message)  # type: ignore[arg-type]
        assert handler.phase in WS_STATES[expected.to]
    elif state == "closed":
        # ASGI WebSocket spec 2.4: send on a closed connection raises an OSError subclass.
        with pytest.raises(ClientDisconnected):
            h.message_from_app(cycle, message)  # type: ignore[arg-type]
    else:
        with pytest.raises(ASGIProtocolError):
            h.message_from_app(cycle, message)  # type: ignore[arg-type]
        assert handler.phase in WS_STATES[state]


LIFESPAN = SPEC.ordering["lifespan"]


def lifespan_state(lifespan: core_lifespan.Lifespan) -> str:
    phase = lifespan.phase
    if phase == core_lifespan.STOPPED:
        return "shutdown_failed" if lifespan.shutdown_failed else "stopped"
    return {
        core_lifespan.IDLE: "idle",
        core_lifespan.STARTING: "starting",
        core_lifespan.STARTED: "started",
        core_lifespan.STOPPING: "stopping",
        core_lifespan.FAILED: "startup_failed",
    }[phase]


def lifespan_take(lifespan: core_lifespan.Lifespan, t: Transition) -> None:
    """Take a transition: the server's side for a receive message, the app's for a send."""
    if SPEC.messages[t.message].direction == SEND:
        lifespan.message_from_app(build(t.message, t.when))
    elif t.message == "lifespan.startup":
        lifespan.start()
        assert lifespan.message_for_app() == {"type": t.message}
    else:
        lifespan.shutdown()
        assert lifespan.message_for_app() == {"type": t.message}


LIFESPAN_TRIALS = [
    (state, message)
    for state in reachable(LIFESPAN, ())
    for message, _ in trials(LIFESPAN, state, "lifespan")
]
LIFESPAN_TRIAL_IDS = [
    label for state in reachable(LIFESPAN, ()) for _, label in trials(LIFESPAN, state, "lifespan")
]


@pytest.mark.parametrize(("state", "message"), LIFESPAN_TRIALS, ids=LIFESPAN_TRIAL_IDS)
def test_lifespan_ordering_agrees_with_the_core(state: str, message: dict[str, Any]) -> None:
    lifespan = core_lifespan.Lifespan(required=True)
    for t in reachable(LIFESPAN, ())[state]:
        lifespan_take(lifespan, t)
        assert lifespan_state(lifespan) == t.to, t
    expected = transition_for(LIFESPAN, state, message, ())
    if expected is None:
        with pytest.raises(ASGIProtocolError):
            lifespan.message_from_app(message)
        assert lifespan_state(lifespan) == state
    else:
        lifespan.message_from_app(message)
        assert lifespan_state(lifespan) == expected.to


def walk(machine: Machine, messages: list[dict[str, Any]]) -> str:
    """Follow ``messages`` through ``machine``; the state reached, or fail on a stray one."""
    state = machine.initial
    for message in messages:
        kind = message["type"]
        for t in machine.transitions:
            if t.source == state and t.message == kind and t.matches(SPEC.messages[kind], message):
                state = t.to
                break
        else:
            raise AssertionError(f"{machine.name}: {kind} {message} not allowed in {state}")
    return state


def test_http_receive_follows_the_data() -> None:
    receive = SPEC.ordering["http.receive"]
    h = Harness()
    h.feed(request("POST", "/", (("Host", "a"), ("Transfer-Encoding", "chunked"))))
    h.feed(b"3\r\nabc\r\n")
    cycle = h.cycle()
    got = [h.message_for_app(cycle)]
    h.feed(b"0\r\n\r\n")
    got.append(h.message_for_app(cycle))
    h.respond(cycle)
    got += [h.message_for_app(cycle), h.message_for_app(cycle)]
    assert walk(receive, got) == "disconnected"  # type: ignore[arg-type]

    h = Harness()
    h.feed(request("POST", "/", (("Host", "a"), ("Content-Length", "10"))))
    cycle = h.cycle()
    h.eof()
    assert walk(receive, [h.message_for_app(cycle)]) == "disconnected"  # type: ignore[list-item]


def test_websocket_receive_follows_the_data() -> None:
    receive = SPEC.ordering["websocket.receive"]
    h = Harness()
    h.feed(handshake())
    cycle = h.cycle()
    got = [h.message_for_app(cycle)]
    _, client, _ = accept(h, cycle)  # type: ignore[arg-type]
    h.feed(client.text("hello"))
    got.append(h.message_for_app(cycle))
    h.feed(client.close(1000))
    got += [h.message_for_app(cycle), h.message_for_app(cycle)]
    assert walk(receive, got) == "disconnected"  # type: ignore[arg-type]


# ---------------------------------------------------------------- scopes against the core


def scope_value_matches(value: Any, types: Iterable[str]) -> bool:
    """Whether a scope (or default) value is of one of the data's type names."""
    for name in types:
        if name == "headers":
            ok = isinstance(value, (list, tuple)) and all(
                isinstance(i, (list, tuple)) and len(i) == 2 and all(type(p) is bytes for p in i)
                for i in value
            )
        elif name in ("host-port", "server-address"):
            ok = (
                isinstance(value, (list, tuple))
                and len(value) == 2
                and type(value[0]) is str
                and (type(value[1]) is int or (name == "server-address" and value[1] is None))
            )
        elif name in ("str-iterable", "bytes-iterable"):
            item = str if name == "str-iterable" else bytes
            ok = isinstance(value, (list, tuple)) and all(type(i) is item for i in value)
        elif name == "extensions":
            ok = isinstance(value, dict) and all(
                type(k) is str and isinstance(v, dict) for k, v in value.items()
            )
        elif name == "file":
            ok = callable(getattr(value, "fileno", None))
        else:
            ok = type(value) is validate._PYTHON_TYPES[name]
        if ok:
            return True
    return False


def check_scope(name: str, scope: Mapping[str, Any]) -> None:
    keys = SPEC.scopes[name].keys
    for key in keys:
        node: Any = scope
        for part in key.name.split("."):
            node = node.get(part, NO_DEFAULT) if isinstance(node, Mapping) else NO_DEFAULT
        if node is NO_DEFAULT:
            assert not key.required, f"{name} scope lacks {key.name} ({key.clause})"
            continue
        assert scope_value_matches(node, key.type), (name, key.name, node)
        if key.allowed is not None:
            assert node in key.allowed, (name, key.name, node)
    named = {key.name.split(".")[0] for key in keys}
    assert set(scope) <= named, f"{name} scope keys the data does not define"


def test_the_http_scope_agrees_with_the_data() -> None:
    for version in ("1.1", "1.0"):
        h = Harness()
        h.feed(request("GET", "/a%20b?x=1", version=version))
        check_scope("http", h.scope())


def test_the_websocket_scope_agrees_with_the_data() -> None:
    h = Harness()
    h.feed(handshake("/chat?room=1", extra=[("Sec-WebSocket-Protocol", "a, b")]))
    check_scope("websocket", h.scope())


def test_the_lifespan_scope_agrees_with_the_data() -> None:
    check_scope("lifespan", core_lifespan.Lifespan(required=False).scope)


def test_a_key_type_of_the_data_is_unknown_to_these_tests_only_if_unused() -> None:
    used = {name for _, key in ALL_KEYS for name in key.type}
    assert used == set(SPEC.types)


def test_subclasses_are_read_as_their_base_type() -> None:
    # Frameworks pass HTTPStatus members and str enums through; a bool is still not an int.
    import enum
    from http import HTTPStatus

    class Reason(str, enum.Enum):
        BYE = "bye"

    start = validate.reader("http.response.start", "status", "headers", "trailers")
    status, _, _ = start({"type": "http.response.start", "status": HTTPStatus.CREATED})
    assert (status, type(status)) == (201, int)
    close = validate.reader("websocket.close", "code", "reason")
    _, reason = close({"type": "websocket.close", "code": 4000, "reason": Reason.BYE})
    assert (reason, type(reason)) == ("bye", str)
    with pytest.raises(ASGIProtocolError, match="'status' must be int, got bool"):
        start({"type": "http.response.start", "status": True})
