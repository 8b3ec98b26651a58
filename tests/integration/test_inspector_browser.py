"""The inspector in a real browser: Debian's Chromium, headless, driven over DevTools.

One browser, two servers in this process (``tests.drivers.conftest.running_server``) serving the
built-in inspector: one on plain HTTP/1.1, one over TLS with HTTP/2. The test loads the page,
submits each form (GET, POST, the chunked upload and the ``Expect: 100-continue`` request that
the server writes to itself, a raw request), opens the WebSocket panel and exchanges messages,
and checks what the page shows: the text of the timeline, the marks on the bytes (two pipelined
requests are not one request and its body), the scope's headers one pair a line, the response's
headers, the events' fields, the WebSocket frames (a message larger than one read is one frame),
the WebSocket timeline still live past the settle time, over HTTP/2 a timeline that begins with
its own HEADERS frame, and the links to the spec page. It checks that nothing overflows sideways
at 375 px and at 1440 px, and saves screenshots in ``artifacts/`` under the checkout
(``inspector.png`` at 1440 px, ``inspector-375.png``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
import trustme

from ..drivers.conftest import running_server
from .browser import DevTools, headless_chromium, spki_sha256
from .tools import apt_binary

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(sys.platform != "linux", reason="Debian's Chromium, installed by apt-get"),
]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
WAIT_S = 20.0


@pytest.fixture(scope="module")
def chromium() -> str:
    return apt_binary("chromium", "chromium")


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    folder = tmp_path_factory.mktemp("tls")
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    return folder / "cert.pem", folder / "key.pem"


def text(devtools: DevTools, selector: str) -> str:
    value = devtools.evaluate(f"document.querySelector({selector!r})?.innerText ?? ''")
    return str(value)


def shown_exchange(devtools: DevTools) -> str:
    return str(devtools.evaluate("document.querySelector('#timeline-card').dataset.exchange"))


def timeline_of(devtools: DevTools, title: str, previous: str = "") -> str:
    """The timeline's text once it shows a complete exchange, other than ``previous``, whose
    title holds ``title``."""
    devtools.wait(
        "(() => { const card = document.querySelector('#timeline-card');"
        f" return card.dataset.exchange !== {previous!r}"
        " && card.dataset.complete === 'true' && card.dataset.records > 0"
        f" && document.querySelector('#timeline-title').textContent.includes({title!r}); }})()",
        WAIT_S,
        what=f"a complete timeline for {title}",
    )
    return text(devtools, "#timeline")


def submit(devtools: DevTools, tab: str) -> str:
    """Submit a form; return the exchange shown until then."""
    previous = shown_exchange(devtools)
    devtools.evaluate(f"document.querySelector('[data-tab={tab}]').click()")
    devtools.evaluate(f"document.querySelector('#form-{tab} button[type=submit]').click()")
    return previous


def lines_of(devtools: DevTools, selector: str) -> list[list[str]]:
    """The lines of the text of each element ``selector`` finds, one list per element."""
    value = devtools.evaluate(
        f"[...document.querySelectorAll({selector!r})].map((row) => row.innerText.split('\\n')"
        ".map((line) => line.trim()))"
    )
    return list(value)


def row_lines(devtools: DevTools, kind: str, what: str) -> list[str]:
    """The lines of the one timeline row of ``kind`` whose text begins with ``what``."""
    rows = [
        lines
        for lines in lines_of(devtools, f"#timeline li.rec[data-kind={kind}] .body")
        if lines and lines[0].startswith(what)
    ]
    assert len(rows) == 1, (kind, what, rows)
    return rows[0]


def api_exchange(devtools: DevTools) -> Any:
    """The exchange the timeline shows, as the API serves it."""
    return devtools.evaluate(
        "fetch('/_inspector/api/exchanges/' + encodeURIComponent(document.querySelector("
        "'#timeline-card').dataset.exchange)).then((r) => r.json())"
    )


def frames_read(devtools: DevTools) -> list[str]:
    """The WebSocket frames the page shows as read, in order (not the notes on reads that
    continue a frame)."""
    value = devtools.evaluate(
        "[...document.querySelectorAll('#timeline li.d-in .frames .pair:not(.cont)')]"
        ".map((pair) => pair.textContent)"
    )
    return [frame for frame in value if not frame.startswith(("PING", "PONG"))]


def overflow(devtools: DevTools) -> Any:
    return devtools.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


def load(devtools: DevTools, url: str) -> None:
    navigated = devtools.call("Page.navigate", url=url)
    assert "errorText" not in navigated, navigated
    devtools.wait("document.body?.dataset.ready === 'true'", WAIT_S, what="the page's script")


def test_the_inspector_page_in_chromium(
    chromium: str, certificates: tuple[Path, Path], tmp_path: Path
) -> None:
    cert, key = certificates
    tls = {"ssl_certfile": str(cert), "ssl_keyfile": str(key), "http2": True}
    with (
        running_server(None) as plain,
        running_server(None, **tls) as secure,
        headless_chromium(chromium, tmp_path, spki_sha256(cert)) as devtools,
    ):
        devtools.viewport(1440, 1000)
        load(devtools, plain.url + "/")
        # The page's own load is in the history, and shown first.
        shown = timeline_of(devtools, "GET /")
        assert "GET / HTTP/1.1\\r\\n" in shown
        assert "GET /" in text(devtools, "#history")

        previous = submit(devtools, "get")
        shown = timeline_of(devtools, "GET /hello?name=ada&lang=en", previous)
        for expected in (
            "GET /hello?name=ada&lang=en HTTP/1.1\\r\\n",  # the bytes read
            "StartApp",  # the core's events
            "ResponseCompleted",
            "scope of the app call",
            f"(b'host', b'127.0.0.1:{plain.port}')",  # one line per header pair, as bytes
            "http.request",
            "http.response.start",
            "http.response.body",
            "HTTP/1.1 200 OK\\r\\n",  # the bytes sent back
        ):
            assert expected in shown, (expected, shown)
        assert "+0.000 ms" in shown  # times relative to the first record
        # The scope's headers, one line per (name, value) pair, as the scope holds them.
        scope = next(item for item in api_exchange(devtools)["items"] if item["kind"] == "scope")
        headers = [f"(b'{name}', b'{value}')" for name, value in scope["detail"]["headers"]]
        assert len(headers) >= 3, headers
        scope_lines = row_lines(devtools, "scope", "scope of the app call")
        for pair in headers:
            assert pair in scope_lines, (pair, scope_lines)
        # The response's headers, and the fields of the core's events.
        start = row_lines(devtools, "message", "http.response.start")
        assert "(b'content-type', b'application/json')" in start, start
        assert "200" in start, start
        completed = " ".join(row_lines(devtools, "event", "ResponseCompleted"))
        for field in ("status=200", 'method="GET"', "body_bytes="):
            assert field in completed, (field, completed)
        links = devtools.evaluate(
            "[...document.querySelectorAll('#timeline a.key')].map((a) => a.getAttribute('href'))"
        )
        assert "/_inspector/spec#scope-http-headers" in links
        assert "/_inspector/spec#message-http.response.start-status" in links
        spec = devtools.evaluate("fetch('/_inspector/spec').then((r) => r.text())")
        assert 'id="scope-http-headers"' in spec
        assert 'id="message-http.response.start-status"' in spec

        previous = submit(devtools, "post")
        shown = timeline_of(devtools, "POST /submit", previous)
        assert "b'greeting=hello&to=world'" in shown  # the body in http.request
        marks = devtools.evaluate(
            "Object.fromEntries(['line', 'head', 'body'].map((part) => [part,"
            " document.querySelector(`#timeline .m-${part}`)?.textContent ?? '']))"
        )
        assert marks["line"] == "POST /submit HTTP/1.1\\r\\n\n"  # each line break shown
        assert "Content-Length: 23\\r\\n" in marks["head"]
        assert marks["body"] == "greeting=hello&to=world"
        assert overflow(devtools) <= 0
        devtools.screenshot(ARTIFACTS / "inspector.png")

        previous = submit(devtools, "chunked")
        shown = timeline_of(devtools, "POST /upload", previous)
        assert "Transfer-Encoding: chunked\\r\\n" in shown
        assert "b'first chunk'" in shown and "b'the last one'" in shown
        assert shown.count("http.request") >= 2  # the chunks, read apart, are messages apart

        previous = submit(devtools, "expect")
        shown = timeline_of(devtools, "POST /expect", previous)
        assert "Expect: 100-continue\\r\\n" in shown
        assert "HTTP/1.1 100 Continue\\r\\n" in shown
        assert "b'worth the wait'" in shown

        previous = submit(devtools, "raw")
        shown = timeline_of(devtools, "GET /raw?from=the+raw+form", previous)
        assert "User-Agent: typed by hand\\r\\n" in shown

        # Two pipelined requests in one write: the second is not the first one's body.
        devtools.evaluate(
            "document.querySelector('#form-raw').raw.value = 'POST /first HTTP/1.1\\n"
            "Host: h\\nContent-Length: 2\\n\\nhiGET /second HTTP/1.1\\nHost: h\\n"
            "Connection: close\\n\\n'"
        )
        previous = submit(devtools, "raw")
        shown = timeline_of(devtools, "POST /first", previous)
        marks = devtools.evaluate(
            "Object.fromEntries(['line', 'body', 'next'].map((part) => [part,"
            " [...document.querySelectorAll(`#timeline .d-in .m-${part}`)]"
            ".map((m) => m.textContent)]))"
        )
        assert marks["line"] == ["POST /first HTTP/1.1\\r\\n\n"], marks
        assert marks["body"] == ["hi"], marks
        assert len(marks["next"]) == 1, marks
        assert marks["next"][0].startswith("GET /second HTTP/1.1"), marks
        assert "bytes of the next pipelined request(s)" in shown

        # The WebSocket panel: open, text, bytes, close with a code; live on the timeline.
        devtools.evaluate("document.querySelector('#ws-open').click()")
        devtools.wait(
            "document.querySelector('#ws-status').textContent.includes('exchange #')", WAIT_S
        )
        opened = devtools.evaluate("performance.now()")
        devtools.evaluate("document.querySelector('#ws-send-text').click()")
        devtools.evaluate("document.querySelector('#ws-send-bytes').click()")
        devtools.wait(
            "document.querySelector('#ws-log').innerText.includes(\"bytes b'hello, server'\")",
            WAIT_S,
            what="the bytes echoed",
        )
        devtools.wait(
            "document.querySelector('#timeline').innerText.split('websocket.receive').length > 2",
            WAIT_S,
            what="both messages received, live on the timeline",
        )
        # A message larger than one read is one frame, however the reads cut it. Chromium
        # may compress it (permessage-deflate), so it is made of random characters.
        devtools.evaluate(
            "let x = 1, noise = '';"
            "for (let i = 0; i < 200000; i++) {"
            " x = (Math.imul(x, 1103515245) + 12345) >>> 0;"
            " noise += String.fromCharCode(33 + (x >>> 16) % 94); }"
            "document.querySelector('#ws-text').value = noise;"
            "document.querySelector('#ws-send-text').click()"
        )
        devtools.wait(
            "document.querySelector('#timeline').innerText.includes('(200000 characters)')",
            WAIT_S,
            what="the large message, live on the timeline",
        )
        frames = frames_read(devtools)
        assert re.match(r"TEXT FIN masked (RSV1 )?\d+ bytes  ", frames[0]), frames
        assert re.match(r"BINARY FIN masked (RSV1 )?\d+ bytes  ", frames[1]), frames
        # The large one: a TEXT frame, maybe CONTINUATION frames (Chromium splits a long
        # message), the last with FIN; nothing else, and as many bytes as were sent.
        large = [re.match(r"(TEXT|CONTINUATION) (FIN|more) masked (RSV1 )?(\d+) bytes", frame)
                 for frame in frames[2:]]  # fmt: skip
        assert all(large) and 1 <= len(large) <= 4, frames
        assert [m[1] for m in large if m] == ["TEXT"] + ["CONTINUATION"] * (len(large) - 1)
        assert [m[2] for m in large if m] == ["more"] * (len(large) - 1) + ["FIN"]
        assert sum(int(m[4]) for m in large if m) > 3 * 65536 // 2, frames  # several reads
        assert "(rest not parsed" not in text(devtools, "#timeline")
        assert "unmasked" in text(devtools, "#timeline .d-out .frames")  # the server's frames
        # Still live once a non-live timeline would have stopped polling: poll the page's own
        # clock (a deadline, not a sleep), then send one more message.
        devtools.wait(
            f"performance.now() > {opened} + SETTLE_MS + 500", WAIT_S, what="the settle time"
        )
        assert "live" in text(devtools, "#timeline-meta")
        devtools.evaluate(
            "document.querySelector('#ws-text').value = 'after the settle time';"
            "document.querySelector('#ws-send-text').click()"
        )
        devtools.wait(
            "document.querySelector('#timeline').innerText.includes('\"after the settle time\"')",
            WAIT_S,
            what="a message sent after the settle time, live on the timeline",
        )
        devtools.evaluate(
            "document.querySelector('#ws-code').value = '4001';"
            "document.querySelector('#ws-close').click()"
        )
        devtools.wait(
            "document.querySelector('#ws-status').textContent.includes('code 4001')", WAIT_S
        )
        shown = timeline_of(devtools, "WebSocket /chat")
        for expected in (
            "websocket.connect",
            "websocket.accept",
            "websocket.send",
            '"hello, server"',
            "b'hello, server'",
            "websocket.disconnect",
            "4001",
            "HTTP/1.1 101 Switching Protocols\\r\\n",
        ):
            assert expected in shown, (expected, shown)
        frames = frames_read(devtools)
        assert frames[-1].startswith("CLOSE FIN masked") and "code 4001" in frames[-1], frames
        log = text(devtools, "#ws-log")
        assert 'sent text "hello, server"' in log and "received bytes b'hello, server'" in log
        assert "(200000 characters)" in log  # a long message is cut in the log

        history = text(devtools, "#history")
        for expected in ("GET /hello", "POST /submit", "POST /upload", "POST /expect", "WS /chat"):
            assert expected in history, (expected, history)

        devtools.viewport(375, 800)
        assert overflow(devtools) <= 0
        devtools.screenshot(ARTIFACTS / "inspector-375.png")

        # Over HTTP/2 the records are frames.
        devtools.viewport(1440, 1000)
        load(devtools, f"https://127.0.0.1:{secure.port}/")
        previous = submit(devtools, "get")
        shown = timeline_of(devtools, "GET /hello?name=ada&lang=en", previous)
        assert "HTTP/2" in text(devtools, "#timeline-meta")
        assert "http_version" in shown and '"2"' in shown
        # The page has polled its API over the same connection meanwhile: the timeline holds
        # this request's own records, beginning with its HEADERS frame, and no other's.
        first = lines_of(devtools, "#timeline li.rec")[0]
        assert first[:3] == ["+0.000 ms", "frame", "→ server"], first
        assert first[3].startswith("HEADERS stream="), first
        stream = first[3].split()[1]
        request = row_lines(devtools, "message", "http.request")
        assert "b''" in request, request
        row_lines(devtools, "message", "http.response.start")
        heads = [
            lines[0]
            for lines in lines_of(devtools, "#timeline li.rec[data-kind=frame] .body")
            if lines[0].startswith("HEADERS")
        ]
        assert heads and all(head.split()[1] == stream for head in heads), (stream, heads)
