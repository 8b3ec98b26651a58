"""The spec page: ``sansio_asgi.spec``'s data (the ASGI spec as data) as one HTML page.

Every scope key and every message key has an anchor, so the inspector's timeline can link each
key it shows to the clause that defines it:

* ``#scope-<scope>`` and ``#scope-<scope>-<key>``: ``#scope-http-headers``,
  ``#scope-http-asgi.version`` (a dotted key is nested: ``scope["asgi"]["version"]``);
* ``#message-<type>`` and ``#message-<type>-<key>``: ``#message-http.request-body``;
* ``#reading-<id>``: sansio-asgi's reading where the spec is silent or contradicts itself.

The page is rendered once, from ``core.schema.SPEC``, the same data that ``core.validate``
compiles its checks from.
"""

from __future__ import annotations

import functools
import html
import json
from collections.abc import Iterable

from ..core.schema import NO_DEFAULT, SPEC, Key, Rule


def scope_anchor(scope: str, key: str | None = None) -> str:
    return f"scope-{scope}" if key is None else f"scope-{scope}-{key}"


def message_anchor(message: str, key: str | None = None) -> str:
    return f"message-{message}" if key is None else f"message-{message}-{key}"


def anchors() -> dict[str, list[str]]:
    """The keys the page has anchors for: ``{"scope-http": ["type", ...], "message-...": ...}``
    (what the timeline links, and only those)."""
    found: dict[str, list[str]] = {}
    for name, scope in SPEC.scopes.items():
        found[scope_anchor(name)] = [key.name for key in scope.keys]
    for name, message in SPEC.messages.items():
        found[message_anchor(name)] = [key.name for key in message.keys]
    return found


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _value(value: object) -> str:
    if isinstance(value, bytes):
        return _e(repr(value))
    return _e(json.dumps(value, default=repr))


def _keys(keys: Iterable[Key], anchor: str) -> str:
    rows = []
    for key in keys:
        facts = [_e(" | ".join(key.type)), "required" if key.required else "optional"]
        if key.default is not NO_DEFAULT:
            facts.append(f"default <code>{_value(key.default)}</code>")
        if key.allowed is not None:
            allowed = ", ".join(f"<code>{_value(v)}</code>" for v in key.allowed)
            facts.append(f"one of {allowed}")
        if key.since:
            facts.append(f"since {_e(key.since)}")
        words = f"<p>{_e(key.text)}</p>" if key.text else ""
        note = f'<p class="note">{_e(key.note)}</p>' if key.note else ""
        rows.append(
            f'<tr id="{_e(anchor)}-{_e(key.name)}"><th><a href="#{_e(anchor)}-{_e(key.name)}">'
            f"{_e(key.name)}</a></th><td>{'; '.join(facts)}{words}{note}"
            f'<p class="clause">{_e(key.clause)}</p></td></tr>'
        )
    return f'<table class="keys">{"".join(rows)}</table>'


def _rules(rules: Iterable[Rule]) -> str:
    items = [
        f'<li id="rule-{_e(r.id)}">{_e(r.text)} <span class="clause">{_e(r.clause)}</span></li>'
        for r in rules
    ]
    return f'<ul class="rules">{"".join(items)}</ul>' if items else ""


@functools.cache
def render() -> str:
    """The whole page (rendered once)."""
    versions = SPEC.versions
    toc: list[str] = []
    body: list[str] = []
    body.append('<h2 id="scopes">Scopes</h2>')
    for name, scope in SPEC.scopes.items():
        anchor = scope_anchor(name)
        toc.append(f'<a href="#{_e(anchor)}">{_e(name)} scope</a>')
        body.append(
            f'<section id="{_e(anchor)}"><h3>The <code>{_e(name)}</code> scope</h3>'
            f'<p>{_e(scope.text)} <span class="clause">{_e(scope.clause)}</span></p>'
            f"{_keys(scope.keys, anchor)}{_rules(scope.rules)}</section>"
        )
    body.append('<h2 id="messages">Messages</h2>')
    for name, message in SPEC.messages.items():
        anchor = message_anchor(name)
        toc.append(f'<a href="#{_e(anchor)}">{_e(name)}</a>')
        way = "app → server (send)" if message.direction == "send" else "server → app (receive)"
        extension = f"; extension <code>{_e(message.extension)}</code>" if message.extension else ""
        note = f'<p class="note">{_e(message.note)}</p>' if message.note else ""
        body.append(
            f'<section id="{_e(anchor)}"><h3><code>{_e(name)}</code></h3>'
            f'<p class="way">{way}{extension}</p><p>{_e(message.text)} '
            f'<span class="clause">{_e(message.clause)}</span></p>{note}'
            f"{_keys(message.keys, anchor)}{_rules(message.rules)}</section>"
        )
    body.append(
        '<h2 id="readings">Readings</h2><p>Where the spec is silent or contradicts '
        "itself, what sansio-asgi does and what a conformance check accepts.</p>"
    )
    for reading in SPEC.readings:
        accepted = "".join(f"<li>{_e(a)}</li>" for a in reading.accepted)
        body.append(
            f'<section id="reading-{_e(reading.id)}"><h3>{_e(reading.topic)}</h3>'
            f"<p><b>The spec:</b> {_e(reading.spec)}</p><p><b>Reading:</b> "
            f"{_e(reading.reading)}</p><p><b>Accepted:</b></p><ul>{accepted}</ul>"
            f'<p class="note">{_e(reading.peers)}</p>'
            f'<p class="clause">{_e(reading.clause)}</p></section>'
        )
    covered = (
        f"ASGI {_e(versions['asgi'])}, HTTP and WebSocket {_e(versions['www'])}, lifespan "
        f"{_e(versions['lifespan'])}, TLS {_e(versions['tls'])} and the extensions"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>The ASGI spec as data · sansio-asgi</title>
<link rel="stylesheet" href="/_inspector/static/inspector.css"></head>
<body class="spec"><header class="bar"><a class="brand" href="/">sansio-asgi inspector</a>
<span>the ASGI spec</span></header><main class="spec-page">
<h1>The ASGI specification, as the server reads it</h1>
<p>{covered}: every key of every scope and message, with the clause that defines it. This page
is rendered from <code>sansio_asgi.spec</code> (<code>spec/asgi.json</code>), the data the
server's checks on <code>send()</code> are compiled from.</p>
<nav class="toc">{" ".join(toc)} <a href="#readings">readings</a></nav>
{"".join(body)}</main></body></html>
"""
