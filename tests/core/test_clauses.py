"""Every policy decision in sansio_asgi/core/ names, beside the code, the clause it enforces.

A reader of ``core/`` should learn the protocols from the code, as in h11: the RFC or ASGI
sentence a decision enforces is quoted next to it, or, where no text decides it, a comment says
it is the server's own policy and why. This file finds the decision sites with ``ast`` and
requires a clause marker (``RFC <n> §``, ``ASGI``, or ``policy:``) in a comment, a docstring or
an error message within ``WINDOW_LINES`` lines above the site (or on its own lines). The sites:

* every HTTP status code literal (an error response, a refusal, 100/101/103, 204/304 framing);
* every WebSocket close code (``CloseReason.*`` and literal codes) and HTTP/2 error code
  (``ErrorCodes.*``);
* every decision to end a connection or a stream (``_linger``, ``_to_closed``, ``_end_all``,
  ``close_connection``, ``_stop_client``) and every keep-alive decision (``must_close``,
  ``request_keep_alive``, ``keep_alive_10``), and every body framing chosen (``_framing``);
* every header the server adds or drops (``server``, ``date``, connection-specific fields);
* every error an app's ``send()`` gets (``ASGIProtocolError``, ``ClientDisconnected``, ...)
  and every ``AppMisbehaved`` report;
* every limit: the module-level constants of ``settings.py`` and the other ``MAX``/``MIN``
  constants of the core.

It also checks that every section cited (``RFC 9112 §6.3``) is one the RFC has
(``SECTIONS``, copied from each RFC's table of contents).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from http import HTTPStatus
from pathlib import Path

import pytest

import sansio_asgi.core

CORE = Path(sansio_asgi.core.__file__).parent
WINDOW_LINES = 6

# A clause named in a comment, a docstring or a message: an RFC section, the ASGI spec, or the
# server's own policy.
MARKER = re.compile(
    r"RFC \d+,? (§|Appendix)|\bASGI (\w+ ){0,2}(spec|extensions|\d\.\d)|\bpolicy:", re.I
)
# Code that puts a clause into a message: the spec data's clause, or a module's clause name.
CODE_MARKER = re.compile(r"\bclause\b|\bCLAUSE\b|\bWEBSOCKET_SPEC\b|\bEVENTS\b")

STATUSES = frozenset(status.value for status in HTTPStatus)
CLOSING_CALLS = frozenset({"_linger", "_to_closed", "_end_all", "close_connection", "_stop_client"})
KEEP_ALIVE_FIELDS = frozenset({"must_close", "request_keep_alive", "keep_alive_10", "_framing"})
HEADER_NAMES = frozenset(
    {
        "SERVER_HEADER",
        "CONNECTION_SPECIFIC",
        "_NOT_IN_WEBSOCKET_200",
        "_H2C_HOP_FIELDS",
        "FORBIDDEN_TRAILERS",
        "_SERVER_OWNED",
        "http_date",
    }
)
APP_ERRORS = frozenset(
    {
        "ASGIProtocolError",
        "ClientDisconnected",
        "ContentLengthMismatch",
        "fail",
        "_out_of_order",
        "_bad_header",
        "AppMisbehaved",
    }
)
# Helpers that build an error whose callers cite the clause.
ERROR_HELPERS = frozenset({"fail", "_out_of_order", "_bad_header", "_misbehaved"})
# The limits: in settings.py every size and time, elsewhere every MAX and MIN.
LIMIT_NAME = re.compile(r"(^|_)(MAX|MIN)(_|$)")
SETTING_NAME = re.compile(r"(^|_)(MAX|MIN)(_|$)|_BYTES$|_S$")

# The sections of each RFC the core may cite, from the RFCs' tables of contents.
SECTIONS: dict[str, frozenset[str]] = {
    # RFC 3986, URI: Generic Syntax.
    "3986": frozenset({"3.1", "3.2"}),
    # RFC 4291, IPv6 Addressing Architecture: IPv4-Mapped IPv6 Address.
    "4291": frozenset({"2.5.5.2"}),
    # RFC 5952, IPv6 text representation: text representation of special addresses.
    "5952": frozenset({"5"}),
    # RFC 6265, HTTP State Management (cookies).
    "6265": frozenset({"4.1", "5.4"}),
    # RFC 6455, The WebSocket Protocol.
    "6455": frozenset(
        {"1.3", "4.1", "4.2", "4.2.1", "4.2.2", "5.1", "5.2", "5.3", "5.4", "5.5", "5.5.1"}
        | {"5.5.2", "5.5.3", "5.6", "7.1.1", "7.1.5", "7.1.7", "7.4", "7.4.1", "7.4.2", "10.3"}
    ),
    # RFC 6585, Additional HTTP Status Codes: 431.
    "6585": frozenset({"5"}),
    # RFC 7230, the HTTP/1.1 RFC before 9112.
    "7230": frozenset({"3.3.3"}),
    # RFC 7239, Forwarded HTTP Extension.
    "7239": frozenset({"4", "5.2", "5.4", "6", "6.2", "6.3", "7.4", "8.1"}),
    # RFC 7540, HTTP/2 (first edition): the h2c upgrade that RFC 9113 dropped.
    "7540": frozenset({"3.2", "3.2.1"}),
    # RFC 7541, HPACK.
    "7541": frozenset({"4.1"}),
    # RFC 7692, Compression Extensions for WebSocket.
    "7692": frozenset({"6.1", "7", "7.1.2.2", "7.2.2"}),
    # RFC 8297, An HTTP Status Code for Indicating Hints: 103.
    "8297": frozenset({"2"}),
    # RFC 8441, Bootstrapping WebSockets with HTTP/2.
    "8441": frozenset({"3", "4", "5"}),
    # RFC 9110, HTTP Semantics.
    "9110": frozenset(
        {"2.5", "4.2.1", "5", "5.1", "5.3", "5.5", "5.6.1", "5.6.1.2", "5.6.2", "5.6.7"}
        | {"6.2", "6.5", "6.5.1", "6.6.1", "7.2", "7.6.1", "7.6.2", "8", "8.6", "9.1", "9.3.2"}
        | {"9.3.6", "10.1", "10.1.1", "10.1.4", "10.2", "10.2.4", "11", "13.1", "15"}
        | {"15.2", "15.3.5", "15.4.5", "15.5.1", "15.5.4", "15.5.9", "15.5.22", "15.6.1"}
        | {"15.6.2", "15.6.4", "15.6.6"}
    ),
    # RFC 9112, HTTP/1.1.
    "9112": frozenset(
        {"2.2", "2.3", "3", "3.2", "3.2.1", "3.2.2", "5", "6", "6.1", "6.2", "6.3", "7.1"}
        | {"7.1.2", "9.3", "9.3.2", "9.5", "9.6", "C.2.2"}
    ),
    # RFC 9113, HTTP/2.
    "9113": frozenset(
        {"3.1", "3.3", "3.4", "4.3", "5.1", "5.1.2", "5.4", "5.4.1", "6.5", "6.5.2", "6.6"}
        | {"6.8", "6.9.2", "7", "8.1", "8.1.1", "8.2", "8.2.1", "8.2.2", "8.2.3", "8.3", "8.3.1"}
        | {"8.4", "8.4.2", "8.6", "8.7", "9.1", "10.5", "10.5.1"}
    ),
}
CITATION = re.compile(r"RFC (\d{4})((?:,? (?:§|Appendix )[0-9A-Z](?:[0-9.]*[0-9A-Z])?)+)")
SECTION = re.compile(r"(?:§|Appendix )([0-9A-Z](?:[0-9.]*[0-9A-Z])?)")


class Module:
    """One core module: its tree, and the lines that carry a clause marker."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.source = path.read_text(encoding="utf-8")
        self.lines = self.source.splitlines()
        self.tree = ast.parse(self.source)
        self.marked: set[int] = set()
        for token in tokenize.generate_tokens(io.StringIO(self.source).readline):
            if token.type in (tokenize.COMMENT, tokenize.STRING) and MARKER.search(token.string):
                self.marked.update(range(token.start[0], token.end[0] + 1))
        for number, line in enumerate(self.lines, 1):
            if CODE_MARKER.search(line.split("#")[0]):
                self.marked.add(number)

    def cited(self, node: ast.AST, *, paragraph: bool = False) -> bool:
        """Whether a marker is within ``WINDOW_LINES`` above ``node`` or on its lines; with
        ``paragraph``, anywhere in the lines above it up to a blank line (a constant and the
        comment block that explains it and its neighbours)."""
        first = node.lineno  # type: ignore[attr-defined]
        last = node.end_lineno or first  # type: ignore[attr-defined]
        start = first - WINDOW_LINES
        if paragraph:
            while start > 1 and self.lines[start - 2].strip():
                start -= 1
        return any(line in self.marked for line in range(start, last + 1))


def _functions(tree: ast.AST) -> dict[ast.AST, str]:
    """Each node and the name of the function it is in ("" at module level)."""
    owner: dict[ast.AST, str] = {}

    def visit(node: ast.AST, name: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef) else name
            owner[child] = inner
            visit(child, inner)

    visit(tree, "")
    return owner


def policy_sites(module: Module) -> list[tuple[ast.AST, str, bool]]:
    """The decision sites of a module, as (node, description, at module level)."""
    tree = module.tree
    owner = _functions(tree)
    parent = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    name = module.path.name
    sites: list[tuple[ast.AST, str]] = []
    for node in ast.walk(tree):
        function = owner.get(node, "")
        if isinstance(node, ast.Constant) and type(node.value) is int and name != "settings.py":
            if isinstance(parent.get(node), (ast.Slice, ast.BinOp)):
                continue  # an index or arithmetic, not a code
            if node.value in STATUSES:
                sites.append((node, f"status {node.value}"))
            elif 1000 <= node.value <= 4999 and name == "websocket.py":
                sites.append((node, f"close code {node.value}"))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in ("CloseReason", "ErrorCodes"):
                sites.append((node, f"{node.value.id}.{node.attr}"))
        elif isinstance(node, ast.Name) and node.id in HEADER_NAMES:
            sites.append((node, f"header {node.id}"))
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr in KEEP_ALIVE_FIELDS
                    and function != "__init__"
                ):
                    sites.append((node, f"{target.attr} ="))
                if (
                    isinstance(target, ast.Name)
                    and function == ""
                    and (SETTING_NAME if name == "settings.py" else LIMIT_NAME).search(target.id)
                    and target.id.isupper()
                ):
                    sites.append((node, f"limit {target.id}"))
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            is_super = (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Call)
                and getattr(func.value.func, "id", "") == "super"
            )
            closing = called in CLOSING_CALLS and not is_super
            if closing or (called in APP_ERRORS and function not in ERROR_HELPERS):
                sites.append((node, f"{called}()"))
    return [(node, what, owner.get(node, "") == "") for node, what in sites]


MODULES = [Module(path) for path in sorted(CORE.glob("*.py"))]


def uncited(module: Module) -> list[str]:
    return [
        f"{module.path.name}:{node.lineno}: {what}"  # type: ignore[attr-defined]
        for node, what, module_level in policy_sites(module)
        if not module.cited(node, paragraph=module_level)
    ]


@pytest.mark.parametrize("module", MODULES, ids=[m.path.name for m in MODULES])
def test_every_policy_site_names_its_clause(module: Module) -> None:
    missing = uncited(module)
    assert not missing, (
        "a policy decision without its clause (quote the RFC or ASGI sentence above it, or "
        "say 'policy:' and why):\n" + "\n".join(missing)
    )


def test_the_sites_are_found() -> None:
    """The finder is not vacuous: the kinds of decision it looks for are all there."""
    found = [what for module in MODULES for _, what, _ in policy_sites(module)]
    for expected in (
        "status 400",
        "status 431",
        "status 505",
        "status 101",
        "status 204",
        "CloseReason.MESSAGE_TOO_BIG",
        "ErrorCodes.REFUSED_STREAM",
        "ErrorCodes.ENHANCE_YOUR_CALM",
        "_linger()",
        "must_close =",
        "_framing =",
        "header CONNECTION_SPECIFIC",
        "header http_date",
        "ClientDisconnected()",
        "ASGIProtocolError()",
        "limit MAX_HEADER_BYTES",
    ):
        assert expected in found, expected
    assert len(found) > 200


def test_a_site_without_its_comment_is_found(tmp_path: Path) -> None:
    """Take the clause comment away from one decision (the 505 of request_problem): the check
    names that line, and only it."""
    lines = (CORE / "http11.py").read_text(encoding="utf-8").splitlines(keepends=True)
    site = lines.index('        return 505, "only HTTP/1.0 and HTTP/1.1 are served"\n')
    start = site
    while lines[start - 1].lstrip().startswith("#"):
        start -= 1
    assert "RFC 9110 §15.6.6" in lines[start]
    copy = tmp_path / "http11.py"
    copy.write_text("".join(lines[:start] + lines[site:]), encoding="utf-8")
    assert uncited(Module(CORE / "http11.py")) == []
    missing = uncited(Module(copy))
    assert missing == [f"http11.py:{start + 1}: status 505"], missing


def _citations(text: str) -> list[tuple[str, str]]:
    return [
        (rfc, section)
        for match in CITATION.finditer(text)
        for rfc in [match[1]]
        for section in SECTION.findall(match[2])
    ]


@pytest.mark.parametrize("module", MODULES, ids=[m.path.name for m in MODULES])
def test_every_cited_section_exists(module: Module) -> None:
    unknown = [
        f"{module.path.name}: RFC {rfc} §{section}"
        for rfc, section in _citations(module.source.replace("\n", " "))
        if section not in SECTIONS.get(rfc, ())
    ]
    assert not unknown, "sections not in SECTIONS (a typo, or add it from the RFC):\n" + "\n".join(
        unknown
    )


def test_an_unknown_section_is_caught() -> None:
    assert _citations('RFC 9112 §6.3 and RFC 9113 §5.4.1, §6.8; RFC 9112 Appendix C.2.2: "x"') == [
        ("9112", "6.3"),
        ("9113", "5.4.1"),
        ("9113", "6.8"),
        ("9112", "C.2.2"),
    ]
    assert "9.9" not in SECTIONS["9112"]
