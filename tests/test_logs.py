"""The log lines: access format atoms, escaping, trace helpers, config files and colors.

No sockets: events are built directly and the loggers' output is captured.
"""

from __future__ import annotations

import calendar
import importlib.util
import io
import json
import logging
import os
import sys
import time
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    PushPromiseFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)
from hypothesis import given
from hypothesis import strategies as st

from sansio_asgi import logs
from sansio_asgi.core.events import (
    CLOSE_CONNECTION,
    PAUSE_READING,
    AppMisbehaved,
    RequestRejected,
    ResponseCompleted,
    StartApp,
    WakeApp,
)
from sansio_asgi.logs import (
    DEFAULT_ACCESS_LOG_FORMAT,
    LOG_LEVELS,
    TRACE,
    TRACE_CAPTURE_BYTES,
    TRACE_DATA_BYTES,
    AccessFormatter,
    DefaultFormatter,
    H2FrameTrace,
    JsonFormatter,
    RejectedRequestLog,
    TraceRecord,
    access_log,
    capture_trace,
    configure_logging,
    error_log,
    escape,
    flush,
    format_client,
    format_log_time,
    load_log_config,
    release_trace,
    report,
    stream_supports_color,
    trace_core_event,
    trace_data,
    trace_enabled,
    trace_event,
    trace_message,
    trace_scope,
)

ESC = "\x1b"


pytestmark = pytest.mark.usefixtures("restored_logging")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """What the two loggers write, as ``LEVEL message`` lines, at every level."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger("sansio_asgi")
    root.handlers[:] = [handler]
    root.setLevel(TRACE)
    root.propagate = False
    access_log.disabled = False
    yield stream


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    yield from local_zone(monkeypatch, "UTC0")


def local_zone(monkeypatch: pytest.MonkeyPatch, zone: str) -> Iterator[None]:
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def completed(**changes: Any) -> ResponseCompleted:
    event = ResponseCompleted(
        client=("127.0.0.1", 5000),
        method="GET",
        target=b"/path?x=1",
        http_version="1.1",
        status=200,
        body_bytes=1234,
        duration_s=2.5015,
        complete=True,
        request_headers=[
            (b"host", b"example.com"),
            (b"Referer", b"http://example.com/from"),
            (b"user-agent", b"curl/8.5"),
            (b"x-many", b"one"),
            (b"X-Many", b"two"),
        ],
        response_headers=[(b"content-type", b"text/plain"), (b"content-length", b"1234")],
    )
    return replace(event, **changes)


class Exploding(Sequence[Any], Mapping[str, Any]):  # type: ignore[misc]
    """Raises on any use: proves the code under test never looked at it."""

    def __getitem__(self, key: Any) -> Any:
        raise AssertionError("touched")

    def __len__(self) -> int:
        raise AssertionError("touched")

    def __iter__(self) -> Iterator[Any]:
        raise AssertionError("touched")

    def __repr__(self) -> str:
        raise AssertionError("touched")

    def items(self) -> Any:
        raise AssertionError("touched")

    def get(self, key: Any, default: Any = None) -> Any:
        raise AssertionError("touched")


# -- access log format ------------------------------------------------------------------------


def test_default_format_reproduces_the_classic_line(captured: io.StringIO) -> None:
    report(completed())
    assert captured.getvalue() == 'INFO 127.0.0.1:5000 - "GET /path?x=1 HTTP/1.1" 200\n'
    assert AccessFormatter(DEFAULT_ACCESS_LOG_FORMAT).format(completed()) == (
        '127.0.0.1:5000 - "GET /path?x=1 HTTP/1.1" 200'
    )


@pytest.mark.parametrize(
    ("atom", "expected"),
    [
        ("h", "127.0.0.1:5000"),
        ("l", "-"),
        ("u", "-"),
        ("r", "GET /path?x=1 HTTP/1.1"),
        ("m", "GET"),
        ("U", "/path"),
        ("q", "x=1"),
        ("H", "HTTP/1.1"),
        ("s", "200"),
        ("B", "1234"),
        ("b", "1234"),
        ("f", "http://example.com/from"),
        ("a", "curl/8.5"),
        ("T", "2"),
        ("D", "2501500"),
        ("M", "2501"),
        ("L", "2.501500"),
        ("p", str(os.getpid())),
        ("C", "-"),
    ],
)
def test_every_atom(atom: str, expected: str) -> None:
    formatter = AccessFormatter(f"%({atom})s")
    assert formatter.atoms == (atom,)
    assert formatter.format(completed()) == expected


@pytest.mark.parametrize(
    ("atom", "changes", "expected"),
    [
        ("h", {"client": None}, "-"),
        ("b", {"body_bytes": 0}, "-"),
        ("B", {"body_bytes": 0}, "0"),
        ("C", {"complete": False}, "X"),
        ("f", {"request_headers": []}, "-"),
        ("a", {"request_headers": []}, "-"),
        ("U", {"target": b"/no-query"}, "/no-query"),
        ("q", {"target": b"/no-query"}, ""),
        ("q", {"target": b"/p?a=1?b=2"}, "a=1?b=2"),
        ("T", {"duration_s": 0.9999999}, "1"),  # rounded to the microsecond, then truncated
        ("M", {"duration_s": 0.0015}, "1"),
        ("D", {"duration_s": 0.000003}, "3"),
        ("L", {"duration_s": 0.0}, "0.000000"),
        ("H", {"http_version": "1.0"}, "HTTP/1.0"),
        ("r", {"method": "POST", "target": b"*"}, "POST * HTTP/1.1"),
    ],
)
def test_atom_edge_cases(atom: str, changes: dict[str, Any], expected: str) -> None:
    assert AccessFormatter(f"%({atom})s").format(completed(**changes)) == expected


def test_time_atom_is_when_the_request_started(utc: None) -> None:
    start = calendar.timegm((2026, 11, 24, 10, 31, 2))
    formatter = AccessFormatter("%(t)s", clock=lambda: start + 2.5015)
    assert formatter.format(completed()) == "[24/Nov/2026:10:31:02 +0000]"


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("UTC0", "[01/Jan/1970:00:00:00 +0000]"),
        ("EST+5", "[31/Dec/1969:19:00:00 -0500]"),
        ("IST-5:30", "[01/Jan/1970:05:30:00 +0530]"),
    ],
)
def test_log_time_is_local_with_its_offset(
    monkeypatch: pytest.MonkeyPatch, zone: str, expected: str
) -> None:
    for _ in local_zone(monkeypatch, zone):
        assert format_log_time(0) == expected


def test_time_atom_uses_the_real_clock_by_default() -> None:
    line = AccessFormatter("%(t)s").format(completed(duration_s=0.0))
    assert line == format_log_time(time.time()) or line == format_log_time(time.time() - 1)


def test_header_atoms() -> None:
    formatter = AccessFormatter(
        "%({Host}i)s %({x-many}i)s %({missing}i)s %({Content-Type}o)s %({host}o)s"
    )
    assert formatter.format(completed()) == "example.com one, two - text/plain -"
    assert formatter.atoms == ("{Host}i", "{x-many}i", "{missing}i", "{Content-Type}o", "{host}o")


@pytest.mark.parametrize("atom", ["Z", "", "{x}e", "hh", "{}i", "{x}z"])
def test_unknown_atom_gives_a_dash(atom: str) -> None:
    assert AccessFormatter(f"<%({atom})s>").format(completed()) == "<->"


def test_literal_percent_and_width() -> None:
    formatter = AccessFormatter("100%% %(s)5s|%(m)-5s|%(s).1s %%(h)s")
    assert formatter.format(completed()) == "100%   200|GET  |2 %(h)s"
    assert formatter.atoms == ("s", "m", "s")


@pytest.mark.parametrize(
    "fmt", ["%", "50% off", "%s", "%d", "%(h)", "%(h)d", "%(h", "%(h)s %(s)i", "%(a(b))s"]
)
def test_malformed_format_is_a_one_line_value_error(fmt: str) -> None:
    with pytest.raises(ValueError, match="bad directive") as info:
        AccessFormatter(fmt)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError) as info:
        configure_logging("info", access=True, access_format=fmt + "\n")
    message = str(info.value)
    assert message.startswith("--access-log-format: ")
    assert "\n" not in message


def test_only_the_atoms_in_the_format_are_computed() -> None:
    untouchable = completed(request_headers=Exploding(), response_headers=Exploding())
    assert AccessFormatter("%(h)s %(r)s %(s)s %(B)s %(L)s").format(untouchable)
    with pytest.raises(AssertionError, match="touched"):
        AccessFormatter("%(a)s").format(untouchable)


def test_report_uses_the_configured_format(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(
        "info", access=True, access_format='%(h)s "%(r)s" %(s)s %(b)s %(M)sms', use_colors=False
    )
    report(completed())
    assert capsys.readouterr().err == (
        'INFO:     127.0.0.1:5000 "GET /path?x=1 HTTP/1.1" 200 1234 2501ms\n'
    )


# -- escaping ---------------------------------------------------------------------------------

HOSTILE = b"/x\r\nINFO:     forged\x00\x1b[31mred\x7f\xc3\xa9\xff"


def assert_one_clean_line(text: str) -> None:
    assert text.endswith("\n")
    line = text[:-1]
    assert line.isascii()
    assert line.isprintable(), repr(line)  # no CR, LF, ESC, NUL, DEL


def test_escape() -> None:
    assert escape(b"/plain?x=1") == "/plain?x=1"
    assert escape(HOSTILE) == r"/x\r\nINFO:     forged\x00\x1b[31mred\x7f\xc3\xa9\xff"


def test_target_and_headers_cannot_inject_lines(captured: io.StringIO) -> None:
    hostile = completed(
        target=HOSTILE,
        method="G\nET",
        client=("evil\r\nhost", 1),  # a proxy-forwarded address is client text too
        request_headers=[(b"user-agent", HOSTILE), (b"referer", HOSTILE), (b"x-a", HOSTILE)],
        response_headers=[(b"location", HOSTILE)],
    )
    logs._access_formatter = AccessFormatter(
        '%(h)s %(r)s %(m)s %(U)s %(q)s "%(a)s" "%(f)s" %({X-A}i)s %({location}o)s'
    )
    report(hostile)
    text = captured.getvalue()
    assert_one_clean_line(text)
    assert r"/x\r\nINFO:     forged\x00\x1b[31mred\x7f\xc3\xa9\xff" in text
    assert r"evil\r\nhost:1 G\nET " in text
    assert text.count(r"\x1b[31m") == 6  # r, U, a, f and the two header atoms


def test_query_string_is_escaped() -> None:
    assert AccessFormatter("%(q)s").format(completed(target=b"/?a=\n\x1b")) == r"a=\n\x1b"


def test_rejected_and_misbehaved_are_escaped(captured: io.StringIO) -> None:
    report(RequestRejected(client=("1.2.3.4", 9), status=400, reason="bad\r\nline é"))
    report(AppMisbehaved(reason="app sent\nnonsense"))
    report(RequestRejected(client=None, status=431, reason="too big"))
    assert captured.getvalue().splitlines() == [
        r"WARNING Invalid HTTP request from 1.2.3.4:9: 400 bad\r\nline \xc3\xa9",
        r"ERROR app sent\nnonsense",
        "WARNING Invalid HTTP request from -: 431 too big",
    ]


# -- rejected requests are rate-limited -------------------------------------------------------


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def rejected(n: int) -> RequestRejected:
    return RequestRejected(client=("10.0.0.1", n), status=400, reason="malformed request line")


@pytest.fixture
def clock() -> Clock:
    clock = Clock()
    logs.rejected_requests = RejectedRequestLog(limit=10, interval_s=60.0, clock=clock)
    return clock


def warning_lines(captured: io.StringIO) -> list[str]:
    return captured.getvalue().splitlines()


def test_at_most_ten_rejections_a_minute_are_logged(captured: io.StringIO, clock: Clock) -> None:
    for n in range(25):
        report(rejected(n))
        clock.now += 1.0
    lines = warning_lines(captured)
    assert lines == [
        f"WARNING Invalid HTTP request from 10.0.0.1:{n}: 400 malformed request line"
        for n in range(10)
    ]


def test_the_rest_are_counted_and_summed_up_when_the_interval_rolls_over(
    captured: io.StringIO, clock: Clock
) -> None:
    for n in range(25):
        report(rejected(n))
        clock.now += 0.5
    clock.now = 1000.0 + 59.9
    report(rejected(25))  # still the first interval
    assert len(warning_lines(captured)) == 10
    clock.now = 1000.0 + 75.0
    report(rejected(26))
    assert warning_lines(captured)[10:] == [
        "WARNING 16 more invalid requests were not logged in the last 75s",
        "WARNING Invalid HTTP request from 10.0.0.1:26: 400 malformed request line",
    ]
    for n in range(27, 40):  # a new interval from 1075 s: ten lines again
        report(rejected(n))
    assert len(warning_lines(captured)) == 12 + 9


def test_a_quiet_interval_has_no_summary(captured: io.StringIO, clock: Clock) -> None:
    for n in range(10):
        report(rejected(n))
    clock.now += 600.0
    report(rejected(10))
    flush()
    lines = warning_lines(captured)
    assert len(lines) == 11
    assert not [line for line in lines if "not logged" in line]


def test_flush_sums_up_what_was_held_back(captured: io.StringIO, clock: Clock) -> None:
    for n in range(13):
        report(rejected(n))
    clock.now += 29.2
    flush()
    assert warning_lines(captured)[10:] == [
        "WARNING 3 more invalid requests were not logged in the last 30s"
    ]
    flush()  # nothing held back any more
    assert len(warning_lines(captured)) == 11
    report(rejected(13))  # a fresh interval: logged
    assert warning_lines(captured)[-1].endswith("10.0.0.1:13: 400 malformed request line")


def test_flush_right_after_the_rejections_says_one_second(
    captured: io.StringIO, clock: Clock
) -> None:
    for n in range(11):
        report(rejected(n))
    flush()
    assert warning_lines(captured)[-1] == (
        "WARNING 1 more invalid requests were not logged in the last 1s"
    )


def test_rate_limit_defaults() -> None:
    log = RejectedRequestLog()
    assert (log.limit, log.interval_s, log.clock) == (10, 60.0, time.monotonic)
    assert logs.REJECTED_WARNINGS_PER_INTERVAL == 10
    assert logs.REJECTED_WARNINGS_INTERVAL_S == 60.0


def test_format_client() -> None:
    assert format_client(None) == "-"
    assert format_client(("::1", 80)) == "::1:80"


# -- TRACE ------------------------------------------------------------------------------------


def test_trace_level_is_registered() -> None:
    assert TRACE == 5
    assert logging.getLevelName(TRACE) == "TRACE"
    assert logging.getLevelName("TRACE") == TRACE
    assert LOG_LEVELS["trace"] == TRACE
    assert list(LOG_LEVELS) == ["critical", "error", "warning", "info", "debug", "trace"]


def test_trace_enabled_follows_the_level() -> None:
    configure_logging("debug", access=True, use_colors=False)
    assert not trace_enabled()
    configure_logging("trace", access=True, use_colors=False)
    assert trace_enabled()


def test_trace_data_marks_direction(captured: io.StringIO) -> None:
    trace_data("127.0.0.1:50432", "<", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    trace_data("127.0.0.1:50432", ">", bytearray(b"HTTP/1.1 200 OK\r\n\x00\xff"))
    trace_data("127.0.0.1:50432", ">", memoryview(b""))
    assert captured.getvalue().splitlines() == [
        r"TRACE 127.0.0.1:50432 < 27 bytes b'GET / HTTP/1.1\r\nHost: a\r\n\r\n'",
        r"TRACE 127.0.0.1:50432 > 19 bytes b'HTTP/1.1 200 OK\r\n\x00\xff'",
        "TRACE 127.0.0.1:50432 > 0 bytes b''",
    ]


def test_trace_data_is_truncated(captured: io.StringIO) -> None:
    trace_data("c", "<", b"a" * 199 + b"\n" + b"z" * 300)
    line = captured.getvalue()
    assert line == "TRACE c < 500 bytes b'" + "a" * 199 + "\\n'…(+300 bytes)\n"


def test_trace_message_marks_direction_and_shortens(captured: io.StringIO) -> None:
    trace_message("c", "<", {"type": "http.request", "body": b"hello", "more_body": False})
    trace_message(
        "c",
        ">",
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), [b"x-evil", b"a\r\nb\x1b"]],
        },
    )
    trace_message("c", ">", {"type": "http.response.body", "body": b"x" * 1000})
    trace_message("c", "<", {"type": "websocket.receive", "text": "h\xe9\n\u2028" * 20})
    trace_message("c", ">", {"type": "websocket.close", "code": 1000, "reason": "r" * 300})
    trace_message("c", "<", {"type": "http.disconnect"})
    lines = captured.getvalue().splitlines()
    assert lines == [
        "TRACE c < http.request body=<5 bytes b'hello'> more_body=False",
        "TRACE c > http.response.start status=200 headers="
        r"[(b'content-type', b'text/plain'), (b'x-evil', b'a\r\nb\x1b')]",
        "TRACE c > http.response.body body=<1000 bytes b'" + "x" * 40 + "'…(+960 bytes)>",
        "TRACE c < websocket.receive text=<80 chars " + ascii("h\xe9\n\u2028" * 10) + "…>",
        "TRACE c > websocket.close code=1000 reason='" + "r" * 199 + "…",
        "TRACE c < http.disconnect",
    ]


def test_trace_message_escapes_odd_values(captured: io.StringIO) -> None:
    class Sneaky:
        def __repr__(self) -> str:
            return "line\nbreak\x1b"

    trace_message("c\n", ">", {"type": "x\ny", "extension": Sneaky(), "headers": [Sneaky()]})
    trace_message("c", ">", {"type": 7})
    trace_event("c", "lost: reset\r\nby peer")
    text = captured.getvalue()
    assert text.splitlines() == [
        r"TRACE c\n > x\ny extension=line\nbreak\x1b headers=[line\nbreak\x1b]",
        "TRACE c > 7",
        r"TRACE c lost: reset\r\nby peer",
    ]


def test_trace_event(captured: io.StringIO) -> None:
    trace_event("127.0.0.1:50432", "connection made")
    assert captured.getvalue() == "TRACE 127.0.0.1:50432 connection made\n"


def test_trace_off_formats_nothing(captured: io.StringIO) -> None:
    logging.getLogger("sansio_asgi").setLevel(logging.DEBUG)
    assert not trace_enabled()
    trace_message("c", "<", Exploding())
    trace_data("c", ">", Exploding())  # type: ignore[arg-type]
    trace_event("c", "connection made")
    assert captured.getvalue() == ""


def test_trace_lines_on_the_console(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("trace", access=True, use_colors=False)
    trace_event("c", "connection made")
    assert capsys.readouterr().err == "TRACE:    c connection made\n"


# -- trace: HTTP/2 frames --------------------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def settings_frame() -> bytes:
    frame = SettingsFrame(0)
    frame.settings = {3: 100, 4: 65535, 8: 1}
    return frame.serialize()


def client_bytes() -> bytes:
    """A client's first flight and more: one frame of every common type."""
    headers = HeadersFrame(1, b"\x82\x84\x86" + b"A" * 31, flags=["END_HEADERS", "END_STREAM"])
    data = DataFrame(3, b"hello", flags=["END_STREAM"])
    ping = PingFrame(0, flags=["ACK"])
    ping.opaque_data = b"\x00\x01\x02\x03\x04\x05\x06\x07"
    return b"".join(
        [
            PREFACE,
            settings_frame(),
            SettingsFrame(0, flags=["ACK"]).serialize(),
            headers.serialize(),
            data.serialize(),
            WindowUpdateFrame(0, window_increment=1_000_000).serialize(),
            ping.serialize(),
            RstStreamFrame(3, error_code=8).serialize(),
            GoAwayFrame(0, last_stream_id=3, error_code=11, additional_data=b"calm").serialize(),
        ]
    )


CLIENT_LINES = [
    "PREFACE 24 bytes",
    "SETTINGS stream=0 18 bytes MAX_CONCURRENT_STREAMS=100 INITIAL_WINDOW_SIZE=65535 "
    "ENABLE_CONNECT_PROTOCOL=1",
    "SETTINGS stream=0 flags=ACK 0 bytes",
    "HEADERS stream=1 flags=END_HEADERS,END_STREAM 34 bytes",
    "DATA stream=3 flags=END_STREAM 5 bytes b'hello'",
    "WINDOW_UPDATE stream=0 4 bytes increment=1000000",
    "PING stream=0 flags=ACK 8 bytes opaque=0001020304050607",
    "RST_STREAM stream=3 4 bytes error=CANCEL",
    "GOAWAY stream=0 12 bytes last_stream=3 error=ENHANCE_YOUR_CALM debug=b'calm'",
]


def trace_lines(captured: io.StringIO, prefix: str = "TRACE c < ") -> list[str]:
    lines = captured.getvalue().splitlines()
    assert all(line.startswith(prefix) for line in lines), lines
    return [line[len(prefix) :] for line in lines]


def test_h2_one_trace_line_per_frame(captured: io.StringIO) -> None:
    trace_data("127.0.0.1:50432", "<", client_bytes(), protocol="h2")
    assert trace_lines(captured, "TRACE 127.0.0.1:50432 < ") == CLIENT_LINES


def test_h2_preface_is_recognised_before_the_core_switched(captured: io.StringIO) -> None:
    """A driver traces a read before the core sees it: the prior-knowledge preface arrives on
    a connection that still says HTTP/1.1."""
    trace_data("c", "<", client_bytes())
    assert trace_lines(captured) == CLIENT_LINES


def test_h2_server_frames(captured: io.StringIO) -> None:
    promise = PushPromiseFrame(1, promised_stream_id=2, data=b"\x82", flags=["END_HEADERS"])
    data = b"".join(
        [
            settings_frame(),
            HeadersFrame(1, b"\x88", flags=["END_HEADERS"]).serialize(),
            promise.serialize(),
            DataFrame(1, b"").serialize(),
            DataFrame(1, b"x" * 100, flags=["END_STREAM"]).serialize(),
            DataFrame(5, b"ab", flags=["PADDED"], pad_length=3).serialize(),
            HeadersFrame(1, b"\x88").serialize(),
            ContinuationFrame(1, b"\x40", flags=["END_HEADERS"]).serialize(),
            PriorityFrame(7, depends_on=3, stream_weight=15, exclusive=True).serialize(),
            b"\x00\x00\x03\x10\x01\x00\x00\x00\x00abc",  # PRIORITY_UPDATE (RFC 9218), flag 1
            b"\x00\x00\x00\x10\x00\x00\x00\x00\x00",
            RstStreamFrame(9, error_code=0xFF).serialize(),
        ]
    )
    trace_data("c", ">", data, protocol="h2")
    assert trace_lines(captured, "TRACE c > ") == [
        "SETTINGS stream=0 18 bytes MAX_CONCURRENT_STREAMS=100 INITIAL_WINDOW_SIZE=65535 "
        "ENABLE_CONNECT_PROTOCOL=1",
        "HEADERS stream=1 flags=END_HEADERS 1 bytes",
        "PUSH_PROMISE stream=1 flags=END_HEADERS 5 bytes promised_stream=2",
        "DATA stream=1 0 bytes",
        "DATA stream=1 flags=END_STREAM 100 bytes b'" + "x" * 40 + "'…(+60 bytes)",
        "DATA stream=5 flags=PADDED 6 bytes b'ab'",
        "HEADERS stream=1 1 bytes",
        "CONTINUATION stream=1 flags=END_HEADERS 1 bytes",
        "PRIORITY stream=7 5 bytes depends_on=3 weight=16 exclusive",
        "UNKNOWN(0x10) stream=0 flags=0x01 3 bytes",
        "UNKNOWN(0x10) stream=0 0 bytes",
        "RST_STREAM stream=9 4 bytes error=0xff",
    ]


def test_h2_unknown_setting_and_error_codes_are_shown_as_numbers(captured: io.StringIO) -> None:
    frame = SettingsFrame(0)
    frame.settings = {0x99: 7}
    goaway = GoAwayFrame(0, last_stream_id=0, error_code=0x1234)
    trace_data("c", "<", frame.serialize() + goaway.serialize(), protocol="h2")
    assert trace_lines(captured) == [
        "SETTINGS stream=0 6 bytes 0x99=7",
        "GOAWAY stream=0 8 bytes last_stream=0 error=0x1234",
    ]


@pytest.mark.parametrize("cut", range(1, len(client_bytes())))
def test_h2_a_read_may_end_anywhere(cut: int) -> None:
    """Split in two at any byte, every frame but the one cut is shown as whole, the cut one
    as a partial frame and its rest (or, cut in its header, whole with the second read)."""
    trace = H2FrameTrace()
    data = client_bytes()
    lines = trace.lines("c", "<", data[:cut]) + trace.lines("c", "<", data[cut:])
    whole = [line for line in lines if "partial" not in line and "rest of frame" not in line]
    cut_lines = [line for line in lines if line not in whole]
    missing = [line for line in CLIENT_LINES if line not in whole]
    assert whole == [line for line in CLIENT_LINES if line in whole]  # in order
    if not cut_lines:  # cut between two frames
        assert whole == CLIENT_LINES
    elif len(cut_lines) == 1:  # cut in a frame header or the preface: whole in the 2nd read
        assert missing == []
        assert cut_lines[0].endswith(("(partial frame header)", "(partial preface)"))
    else:  # cut inside a frame's body
        assert len(missing) == 1
        first, rest = cut_lines
        label = missing[0].split(" bytes")[0].rsplit(" ", 1)[0]
        assert first.startswith(f"{label} ") and "(partial frame: " in first
        assert rest.startswith(f"{label} (rest of frame: ")


def test_h2_a_frame_over_many_reads(captured: io.StringIO) -> None:
    data = DataFrame(1, b"y" * 50_000).serialize()
    for start in range(0, len(data), 20_000):
        trace_data("c", "<", data[start : start + 20_000], protocol="h2")
    assert trace_lines(captured) == [
        "DATA stream=1 50000 bytes (partial frame: 19991 here) b'" + "y" * 40 + "'…(+19951 bytes)",
        "DATA stream=1 (rest of frame: 20000 bytes, 10009 to come)",
        "DATA stream=1 (rest of frame: 10009 bytes)",
    ]


def test_h2_splits_are_kept_per_connection_and_direction(captured: io.StringIO) -> None:
    frame = DataFrame(1, b"hello").serialize()
    trace_data("a", "<", frame[:10], protocol="h2")
    trace_data("b", "<", frame, protocol="h2")  # another connection: not the rest of a's frame
    trace_data("a", ">", frame, protocol="h2")  # a's writes: neither
    trace_data("a", "<", frame[10:], protocol="h2")
    assert captured.getvalue().splitlines() == [
        "TRACE a < DATA stream=1 5 bytes (partial frame: 1 here) b'h'",
        "TRACE b < DATA stream=1 5 bytes b'hello'",
        "TRACE a > DATA stream=1 5 bytes b'hello'",
        "TRACE a < DATA stream=1 (rest of frame: 4 bytes)",
    ]


def test_h2_a_new_connection_on_the_same_address_starts_afresh(captured: io.StringIO) -> None:
    frame = DataFrame(1, b"hello").serialize()
    trace_data("c", "<", frame[:10], protocol="h2")
    trace_event("c", "connection lost")
    trace_event("c", "connection made")
    trace_data("c", "<", frame, protocol="h2")
    assert captured.getvalue().splitlines()[-1] == "TRACE c < DATA stream=1 5 bytes b'hello'"


def test_h2_an_unknown_peer_keeps_no_split() -> None:
    """Every connection whose peer is unknown is ``-``: one's split is not another's."""
    trace = H2FrameTrace()
    frame = DataFrame(1, b"hello").serialize()
    assert trace.lines("-", "<", frame[:10]) == [
        "DATA stream=1 5 bytes (partial frame: 1 here) b'h'"
    ]
    assert trace.lines("-", "<", frame) == ["DATA stream=1 5 bytes b'hello'"]


def test_h2_splits_remembered_are_bounded() -> None:
    trace = H2FrameTrace(max_connections=2)
    frame = DataFrame(1, b"hello").serialize()
    for connection in ("a", "b", "c"):
        trace.lines(connection, "<", frame[:10])
    assert trace.lines("a", "<", frame) == ["DATA stream=1 5 bytes b'hello'"]  # forgotten
    assert trace.lines("c", "<", frame[10:]) == ["DATA stream=1 (rest of frame: 4 bytes)"]
    assert trace.lines("c", "<", b"") == ["0 bytes b''"]


def test_h2_upgrade_response_then_frames(captured: io.StringIO) -> None:
    head = b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n"
    trace_data("c", ">", head + settings_frame(), protocol="h2")
    assert trace_lines(captured, "TRACE c > ") == [
        f"{len(head)} bytes {head!r}",
        "SETTINGS stream=0 18 bytes MAX_CONCURRENT_STREAMS=100 INITIAL_WINDOW_SIZE=65535 "
        "ENABLE_CONNECT_PROTOCOL=1",
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",  # HTTP/1.1 where h2 was negotiated
        DataFrame(1, b"x").serialize()[:5] + b"\x00\x00\x00\x00",  # DATA on stream 0
        b"\x00\x00\x03\x08\x00\x00\x00\x00\x00abc",  # a WINDOW_UPDATE of 3 bytes
        b"\x00\x00\x01\x00\x08\x00\x00\x00\x01\x05",  # DATA padded beyond its length
    ],
)
def test_h2_bytes_that_are_not_frames_are_shown_as_bytes(
    captured: io.StringIO, data: bytes
) -> None:
    ping = PingFrame(0).serialize()
    trace_data("c", "<", ping + data, protocol="h2")
    trace_data("c", "<", ping, protocol="h2")  # nothing is carried over from the garbage
    assert trace_lines(captured) == [
        "PING stream=0 8 bytes opaque=0000000000000000",
        f"{len(data)} bytes {data!r}",
        "PING stream=0 8 bytes opaque=0000000000000000",
    ]


@given(st.lists(st.binary(max_size=64), max_size=8))
def test_h2_any_bytes_in_any_reads_never_raise(reads: list[bytes]) -> None:
    trace = H2FrameTrace()
    for data in reads:
        lines = trace.lines("c", "<", data)
        assert lines and all(line.isprintable() for line in lines)


@given(st.integers(min_value=1, max_value=len(client_bytes()) - 1))
def test_h2_valid_frames_with_any_reads_end_on_a_boundary(cut: int) -> None:
    """After the last read no frame is left open: the next read starts on a frame."""
    trace = H2FrameTrace()
    data = client_bytes()
    trace.lines("c", "<", data[:cut])
    trace.lines("c", "<", data[cut:])
    assert trace.lines("c", "<", PingFrame(0).serialize()) == [
        "PING stream=0 8 bytes opaque=0000000000000000"
    ]


def test_h2_a_flood_in_one_read_is_summed_up(captured: io.StringIO) -> None:
    ping = PingFrame(0).serialize()
    data = ping * 150 + DataFrame(1, b"hello").serialize()[:12]
    trace_data("c", "<", data, protocol="h2")
    lines = trace_lines(captured)
    assert lines[:100] == ["PING stream=0 8 bytes opaque=0000000000000000"] * 100
    assert lines[100:] == [
        "50 more frames, 850 bytes (not shown)",
        "5 bytes (partial frame: 3 here)",
    ]
    trace_data("c", "<", b"lo" + ping, protocol="h2")
    assert trace_lines(captured)[-2:] == [
        "frame (rest of frame: 2 bytes)",
        "PING stream=0 8 bytes opaque=0000000000000000",
    ]


@pytest.mark.parametrize("protocol", ["http/1.1", "websocket"])
def test_other_protocols_keep_the_bytes_line(captured: io.StringIO, protocol: str) -> None:
    frame = DataFrame(1, b"hello").serialize()
    trace_data("127.0.0.1:50432", ">", frame, protocol=protocol)
    trace_data("127.0.0.1:50432", "<", b"GET / HTTP/1.1\r\n\r\n", protocol=protocol)
    assert captured.getvalue().splitlines() == [
        rf"TRACE 127.0.0.1:50432 > 14 bytes {frame!r}",
        r"TRACE 127.0.0.1:50432 < 18 bytes b'GET / HTTP/1.1\r\n\r\n'",
    ]


def test_h2_trace_off_parses_nothing(captured: io.StringIO) -> None:
    logging.getLogger("sansio_asgi").setLevel(logging.DEBUG)
    trace_data("c", ">", Exploding(), protocol="h2")  # type: ignore[arg-type]
    assert captured.getvalue() == ""


# -- configure_logging ------------------------------------------------------------------------


def test_console_format_and_level(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("warning", access=True, use_colors=False)
    error_log.info("hidden")
    error_log.warning("shown")
    report(completed())  # access lines are INFO
    assert capsys.readouterr().err == "WARNING:  shown\n"


def test_access_log_off(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", access=False, use_colors=False)
    report(completed())
    error_log.info("still here")
    assert capsys.readouterr().err == "INFO:     still here\n"
    configure_logging("info", access=True, use_colors=False)
    report(completed())
    assert '"GET /path?x=1 HTTP/1.1" 200' in capsys.readouterr().err


def write_json(path: Path, config: dict[str, Any]) -> str:
    path.write_text(json.dumps(config))
    return str(path)


def file_config(log_file: Path, logger: str, level: str = "DEBUG") -> dict[str, Any]:
    return {
        "version": 1,
        "formatters": {"plain": {"format": "%(name)s|%(levelname)s|%(message)s"}},
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "filename": str(log_file),
                "formatter": "plain",
                "encoding": "utf-8",
            }
        },
        "loggers": {logger: {"handlers": ["file"], "level": level, "propagate": False}},
    }


def test_json_log_config_is_applied_over_the_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_file = tmp_path / "access.log"
    path = write_json(tmp_path / "log.json", file_config(log_file, "sansio_asgi.access"))
    configure_logging("info", access=True, use_colors=False, log_config=path)
    report(completed())
    error_log.debug("below the level")
    error_log.info("default console")
    assert log_file.read_text() == (
        'sansio_asgi.access|INFO|127.0.0.1:5000 - "GET /path?x=1 HTTP/1.1" 200\n'
    )
    assert capsys.readouterr().err == "INFO:     default console\n"


def test_log_config_levels_and_handlers_win(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_file = tmp_path / "all.log"
    path = write_json(tmp_path / "log.json", file_config(log_file, "sansio_asgi"))
    configure_logging("warning", access=True, use_colors=True, log_config=path)
    (handler,) = logging.getLogger("sansio_asgi").handlers
    assert isinstance(handler, logging.FileHandler)
    error_log.debug("debug from the config's level")
    report(completed())
    assert log_file.read_text().splitlines() == [
        "sansio_asgi.error|DEBUG|debug from the config's level",
        'sansio_asgi.access|INFO|127.0.0.1:5000 - "GET /path?x=1 HTTP/1.1" 200',
    ]
    assert capsys.readouterr().err == ""  # and no colors in the file: checked above


def test_log_config_keeps_unmentioned_loggers_enabled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_json(tmp_path / "log.json", file_config(tmp_path / "o.log", "other"))
    configure_logging("info", access=True, use_colors=False, log_config=path)
    report(completed())
    assert "200" in capsys.readouterr().err
    configure_logging("info", access=False, use_colors=False, log_config=path)
    report(completed())
    assert capsys.readouterr().err == ""


def test_ini_log_config(tmp_path: Path) -> None:
    log_file = tmp_path / "ini.log"
    path = tmp_path / "log.ini"
    path.write_text(
        "[loggers]\nkeys=root,sansio\n\n"
        "[handlers]\nkeys=file\n\n"
        "[formatters]\nkeys=plain\n\n"
        "[logger_root]\nlevel=WARNING\nhandlers=\n\n"
        "[logger_sansio]\nlevel=INFO\nhandlers=file\npropagate=0\nqualname=sansio_asgi\n\n"
        "[handler_file]\nclass=FileHandler\nformatter=plain\n"
        f"args=({str(log_file)!r}, 'a', 'utf-8')\n\n"
        "[formatter_plain]\nformat=%(levelname)s %(message)s\n"
    )
    configure_logging("info", access=True, log_config=str(path))
    report(completed())
    error_log.warning("warned")
    assert log_file.read_text().splitlines() == [
        'INFO 127.0.0.1:5000 - "GET /path?x=1 HTTP/1.1" 200',
        "WARNING warned",
    ]


def test_default_formatter_from_a_log_config(tmp_path: Path) -> None:
    log_file = tmp_path / "colored.log"
    config = file_config(log_file, "sansio_asgi")
    config["formatters"]["plain"] = {"()": "sansio_asgi.logs.DefaultFormatter", "use_colors": True}
    configure_logging("info", access=True, log_config=write_json(tmp_path / "c.json", config))
    report(completed(status=404))
    assert log_file.read_text() == (
        f"{ESC}[32mINFO{ESC}[0m:     "
        f'127.0.0.1:5000 - "GET /path?x=1 HTTP/1.1" {ESC}[31m404{ESC}[0m\n'
    )


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("missing.json", None, "cannot read it"),
        ("missing.ini", None, "cannot read it"),
        ("missing.conf", None, "cannot read it"),
        ("bad.json", "{not json", "invalid JSON"),
        ("list.json", "[1, 2]", "expected a mapping"),
        ("noversion.json", "{}", "dictionary doesn't specify a version"),
        (
            "badclass.json",
            '{"version": 1, "handlers": {"h": {"class": "no.such.Handler"}}}',
            "Unable to configure handler 'h'",
        ),
        # The exception type of a bad INI file varies by Python version.
        ("empty.ini", "", "Error"),
        ("garbage.ini", "this is not\nan ini file\n", "Error"),
        ("latin1.json", b"\xff\xfe".decode("latin-1"), "cannot read it"),
    ],
)
def test_bad_log_config_is_one_line_naming_the_path(
    tmp_path: Path, name: str, content: str | None, fragment: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="latin-1")
    with pytest.raises(ValueError) as info:
        load_log_config(str(path))
    message = str(info.value)
    assert message.startswith(f"--log-config {path}: ")
    assert fragment in message
    assert "\n" not in message
    with pytest.raises(ValueError, match=r"^--log-config "):
        configure_logging("info", access=True, log_config=str(path))


def test_yaml_log_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "log.yaml"
    path.write_text(json.dumps(file_config(tmp_path / "y.log", "sansio_asgi.error")))  # YAML
    if importlib.util.find_spec("yaml") is None:
        with pytest.raises(ValueError) as info:
            load_log_config(str(path))
        assert str(info.value) == "--log-config: PyYAML is not installed; use JSON or INI"
    else:  # pragma: no cover - PyYAML is not in the test environment today
        load_log_config(str(path))
        error_log.info("via yaml")
        assert (tmp_path / "y.log").read_text() == "sansio_asgi.error|INFO|via yaml\n"


def test_yaml_with_and_without_pyyaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both branches whatever is installed: a stand-in module, then none at all."""
    fake = types.ModuleType("yaml")
    fake.YAMLError = ValueError  # type: ignore[attr-defined]
    fake.safe_load = json.loads  # type: ignore[attr-defined]  # JSON is YAML
    monkeypatch.setitem(sys.modules, "yaml", fake)
    path = tmp_path / "log.yml"
    path.write_text(json.dumps(file_config(tmp_path / "y.log", "sansio_asgi.error")))
    load_log_config(str(path))
    error_log.info("via yaml")
    assert (tmp_path / "y.log").read_text() == "sansio_asgi.error|INFO|via yaml\n"

    path.write_text("{oops")
    with pytest.raises(ValueError, match=r"^--log-config .*log\.yml: invalid YAML: "):
        load_log_config(str(path))

    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml -> ImportError
    with pytest.raises(ValueError) as info:
        configure_logging("info", access=True, log_config=str(path))
    assert str(info.value) == "--log-config: PyYAML is not installed; use JSON or INI"


# -- colors -----------------------------------------------------------------------------------


def record(level: int, message: str = "hi") -> logging.LogRecord:
    return logging.LogRecord("sansio_asgi.error", level, __file__, 1, message, None, None)


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (TRACE, f"{ESC}[36mTRACE{ESC}[0m:    hi"),
        (logging.DEBUG, f"{ESC}[36mDEBUG{ESC}[0m:    hi"),
        (logging.INFO, f"{ESC}[32mINFO{ESC}[0m:     hi"),
        (logging.WARNING, f"{ESC}[33mWARNING{ESC}[0m:  hi"),
        (logging.ERROR, f"{ESC}[31mERROR{ESC}[0m:    hi"),
        (logging.CRITICAL, f"{ESC}[91mCRITICAL{ESC}[0m: hi"),
    ],
)
def test_colored_level_names(level: int, expected: str) -> None:
    assert DefaultFormatter(use_colors=True).format(record(level)) == expected
    plain = DefaultFormatter(use_colors=False).format(record(level))
    assert ESC not in plain
    assert plain == expected.replace(f"{ESC}[0m", "")[5:]


@pytest.mark.parametrize(
    ("status", "color"), [(101, "97"), (204, "32"), (304, "33"), (404, "31"), (503, "91")]
)
def test_colored_access_status(capsys: pytest.CaptureFixture[str], status: int, color: str) -> None:
    configure_logging("info", access=True, use_colors=True)
    report(completed(status=status, target=b"/\x1b[2J"))
    assert capsys.readouterr().err == (
        f"{ESC}[32mINFO{ESC}[0m:     127.0.0.1:5000 - "
        rf'"GET /\x1b[2J HTTP/1.1" {ESC}[{color}m{status}{ESC}[0m'
        "\n"
    )


def test_no_colors_means_no_escape_sequences(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("trace", access=True, use_colors=False)
    report(completed(target=b"/\x1b[2J", status=500))
    report(RequestRejected(client=None, status=400, reason="\x1b[31m"))
    error_log.critical("boom")
    trace_event("c", "made")
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 4
    assert ESC not in err


def test_colors_default_to_whether_stderr_is_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_logging("info", access=True)  # stderr is captured: not a terminal
    report(completed())
    assert ESC not in capsys.readouterr().err

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert stream_supports_color(Terminal())
    assert not stream_supports_color(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not stream_supports_color(Terminal())
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert not DefaultFormatter().use_colors
    monkeypatch.delenv("NO_COLOR")
    assert DefaultFormatter().use_colors


def test_colored_status_is_padded_before_coloring() -> None:
    formatter = AccessFormatter("[%(s)5s] %(h)s")
    event = completed(status=200)
    assert formatter.format_colored(event) == f"[{ESC}[32m  200{ESC}[0m] 127.0.0.1:5000"
    assert formatter.format_colored(completed(status=600)) == "[  600] 127.0.0.1:5000"
    assert AccessFormatter("%(h)s").format_colored(event) == "127.0.0.1:5000"


def test_coloring_does_not_change_the_record_for_other_handlers() -> None:
    colored, plain = io.StringIO(), io.StringIO()
    logging.getLogger("sansio_asgi").setLevel(logging.INFO)
    for stream, use_colors in ((colored, True), (plain, False)):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(DefaultFormatter(use_colors=use_colors))
        access_log.addHandler(handler)
    try:
        report(completed())
    finally:
        for handler in access_log.handlers[-2:]:
            access_log.removeHandler(handler)
    assert ESC in colored.getvalue()
    assert plain.getvalue() == 'INFO:     127.0.0.1:5000 - "GET /path?x=1 HTTP/1.1" 200\n'


# -- trace records ----------------------------------------------------------------------------


class Records(logging.Handler):
    """Keeps the records it is handed."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def traces(self) -> list[TraceRecord]:
        return [record.trace for record in self.records if hasattr(record, "trace")]


@pytest.fixture
def records(captured: io.StringIO) -> Records:
    """The log records, beside the text lines of ``captured``."""
    handler = Records()
    logging.getLogger("sansio_asgi").addHandler(handler)
    return handler


def text_lines(captured: io.StringIO) -> list[str]:
    return [line.removeprefix("TRACE ") for line in captured.getvalue().splitlines()]


def test_every_trace_line_has_its_record(captured: io.StringIO, records: Records) -> None:
    before = time.time()
    trace_event("c", "connection made")
    trace_data("c", "<", b"GET / HTTP/1.1\r\n\r\n")
    trace_core_event("c", PAUSE_READING)
    trace_scope("c", {"type": "http", "path": "/"})
    trace_message("c", "<", {"type": "http.request", "body": b"", "more_body": False})
    trace_message("c", ">", {"type": "http.response.start", "status": 200}, protocol="h2")
    trace_data("c", ">", b"HTTP/1.1 200 OK\r\n\r\n", protocol="websocket")
    trace_event("c", "connection lost")
    traces = records.traces
    assert len(traces) == len(records.records) == 8
    assert [(t.kind, t.direction, t.protocol) for t in traces] == [
        ("connection", "", "http/1.1"),
        ("data", "<", "http/1.1"),
        ("event", "", "http/1.1"),
        ("scope", "", "http/1.1"),
        ("message", "<", "http/1.1"),
        ("message", ">", "h2"),
        ("data", ">", "websocket"),
        ("connection", "", "http/1.1"),
    ]
    # The summary is the text line after the connection and the direction.
    for trace, line in zip(traces, text_lines(captured), strict=True):
        prefix = f"c {trace.direction} " if trace.direction else "c "
        assert line == prefix + trace.summary
    assert all(before <= t.time <= time.time() and t.connection == "c" for t in traces)
    assert [t.detail for t in traces if t.kind == "connection"] == [
        {"event": "made"},
        {"event": "lost"},
    ]
    assert traces[1].data == b"GET / HTTP/1.1\r\n\r\n" and traces[1].size == 18
    assert traces[4].data == b"" and traces[4].size == 0
    assert traces[4].detail == {"type": "http.request", "body": "", "more_body": False}


def test_data_records_keep_the_bytes_up_to_the_capture_cap(records: Records) -> None:
    data = bytes(range(256)) * 300  # 76,800 bytes: every byte value, past the cap
    trace_data("c", "<", data)
    (trace,) = records.traces
    assert len(trace.data) == TRACE_CAPTURE_BYTES == 65_536
    assert trace.data == data[:TRACE_CAPTURE_BYTES] and trace.size == len(data)
    assert (
        trace.summary.startswith("76800 bytes b'\\x00\\x01") and "…(+76600 bytes)" in trace.summary
    )
    trace_data("c", ">", memoryview(b"ab"))
    assert records.traces[1].data == b"ab" and type(records.traces[1].data) is bytes


def test_message_detail_is_json_safe_and_lossless(records: Records) -> None:
    every_byte = bytes(range(256))

    class Odd:
        def __repr__(self) -> str:
            return "<odd>"

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    nested: list[Any] = []
    nested.append(nested)  # an app's message may even contain itself
    trace_message(
        "c",
        ">",
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"x-bin", every_byte), [b"x-two", bytearray(b"2")]],
            "trailers": True,
            "odd": Odd(),
            "broken": Broken(),
            "ratio": float("nan"),
            "big": 10**30,
            "keys": {1: b"one", ("a",): None},
            "nested": nested,
        },
    )
    detail = records.traces[0].detail
    json.dumps(detail, allow_nan=False)  # nothing JSON cannot hold
    assert detail["headers"] == [["x-bin", every_byte.decode("latin-1")], ["x-two", "2"]]
    assert detail["headers"][0][1].encode("latin-1") == every_byte  # lossless
    assert detail["status"] == 200 and detail["trailers"] is True and detail["big"] == 10**30
    assert detail["odd"] == "<odd>" and detail["broken"] == "<Broken object>"
    assert detail["ratio"] == "nan"
    assert detail["keys"] == {"1": "one", "('a',)": None}
    depth = detail["nested"]
    for _ in range(logs.TRACE_JSON_DEPTH):
        (depth,) = depth
    assert depth == "[[...]]"


def test_message_detail_caps_bytes_and_text_with_their_size(records: Records) -> None:
    body = b"\xff" * (TRACE_CAPTURE_BYTES + 10)
    text = "é" * (TRACE_CAPTURE_BYTES + 1)
    trace_message("c", "<", {"type": "http.request", "body": body, "more_body": True})
    trace_message("c", "<", {"type": "websocket.receive", "text": text})
    trace_message("c", "<", {"type": "websocket.receive", "bytes": b"small"})
    first, second, third = (t.detail for t in records.traces)
    assert first["body"] == "\xff" * TRACE_CAPTURE_BYTES
    assert first["body_size"] == TRACE_CAPTURE_BYTES + 10
    assert second["text"] == "é" * TRACE_CAPTURE_BYTES
    assert second["text_size"] == TRACE_CAPTURE_BYTES + 1
    assert third == {"type": "websocket.receive", "bytes": "small"}  # no size when whole


def test_scope_record_holds_the_scope_itself(captured: io.StringIO, records: Records) -> None:
    class Pool:
        def __repr__(self) -> str:
            return "<Pool 3 connections>"

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.5"},
        "method": "GET",
        "path": "/é",
        "raw_path": b"/\xc3\xa9",
        "query_string": b"",
        "headers": [(b"host", b"a"), (b"x-evil", b"a\r\nb")],
        "client": ("127.0.0.1", 50432),
        "state": {"pool": Pool()},
        "extensions": {"tls": {"tls_version": 0x0304, "client_cert_chain": []}},
    }
    trace_scope("127.0.0.1:50432", scope, protocol="h2")
    (trace,) = records.traces
    assert trace.obj is scope
    assert (trace.kind, trace.direction, trace.protocol) == ("scope", "", "h2")
    assert trace.detail == {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.5"},
        "method": "GET",
        "path": "/é",
        "raw_path": "/\xc3\xa9",
        "query_string": "",
        "headers": [["host", "a"], ["x-evil", "a\r\nb"]],
        "client": ["127.0.0.1", 50432],
        "state": "{'pool': <Pool 3 connections>}",  # the app's own objects: as repr
        "extensions": {"tls": {"tls_version": 0x0304, "client_cert_chain": []}},
    }
    assert text_lines(captured) == [
        "127.0.0.1:50432 scope http asgi={'version': '3.0', 'spec_version': '2.5'} "
        r"method='GET' path='/\xe9' raw_path=<3 bytes b'/\xc3\xa9'> query_string=<0 bytes b''> "
        r"headers=[(b'host', b'a'), (b'x-evil', b'a\r\nb')] client=('127.0.0.1', 50432) "
        "state={'pool': <Pool 3 connections>} "
        "extensions={'tls': {'tls_version': 772, 'client_cert_chain': []}}"
    ]


def test_event_records(captured: io.StringIO, records: Records) -> None:
    scope = {"type": "http", "path": "/"}

    class Cycle:
        def __repr__(self) -> str:
            return "<HTTPCycle GET b'/' response=not-started>"

    cycle: Any = Cycle()
    trace_core_event("c", StartApp(cycle=cycle, scope=scope))
    trace_core_event("c", WakeApp(cycle=cycle))
    trace_core_event("c", CLOSE_CONNECTION)
    trace_core_event("c", completed())
    trace_core_event("c", RequestRejected(client=None, status=400, reason="bad\nrequest"))
    start, wake, close, done, rejected = (t.detail for t in records.traces)
    # The scope is the next record's (kind "scope"), not repeated here.
    assert start == {"event": "StartApp", "cycle": "<HTTPCycle GET b'/' response=not-started>"}
    assert wake == {"event": "WakeApp", "cycle": "<HTTPCycle GET b'/' response=not-started>"}
    assert close == {"event": "CloseConnection"}
    assert done["event"] == "ResponseCompleted" and done["target"] == "/path?x=1"
    assert done["client"] == ["127.0.0.1", 5000] and done["duration_s"] == 2.5015
    assert done["response_headers"][0] == ["content-type", "text/plain"]
    assert rejected == {
        "event": "RequestRejected",
        "client": None,
        "status": 400,
        "reason": "bad\nrequest",
    }
    assert all(t.kind == "event" and t.direction == "" for t in records.traces)
    lines = text_lines(captured)
    # The StartApp line leaves the scope out: the scope line comes next.
    assert lines[:3] == [
        "c event StartApp cycle=<HTTPCycle GET b'/' response=not-started>",
        "c event WakeApp cycle=<HTTPCycle GET b'/' response=not-started>",
        "c event CloseConnection",
    ]
    assert lines[3].startswith(
        "c event ResponseCompleted client=('127.0.0.1', 5000) method='GET' "
        "target=<9 bytes b'/path?x=1'> http_version='1.1' status=200 body_bytes=1234 "
    )
    assert lines[4] == r"c event RequestRejected client=None status=400 reason='bad\nrequest'"


def test_records_name_their_cycle_and_no_line_shows_it(
    captured: io.StringIO, records: Records
) -> None:
    class Cycle:
        def __repr__(self) -> str:
            return "<HTTPCycle GET b'/' response=not-started>"

    cycle: Any = Cycle()
    scope = {"type": "http", "path": "/"}
    start = StartApp(cycle=cycle, scope=scope)
    request = {"type": "http.request", "body": b"", "more_body": False}
    trace_core_event("c", start)
    trace_scope("c", scope, cycle=cycle)
    trace_message("c", "<", request, cycle=cycle)
    trace_message("c", ">", {"type": "http.response.start", "status": 200}, cycle=cycle)
    trace_core_event("c", CLOSE_CONNECTION)
    trace_scope("c", scope)
    trace_message("c", "<", request)
    traces = records.traces
    # The cycle of the app call, for consumers in this process (HTTP/2 runs several at once).
    assert [t.cycle for t in traces] == [cycle, cycle, cycle, cycle, None, None, None]
    assert traces[0].obj is start and traces[1].obj is scope and traces[2].obj is None
    assert traces[4].obj is CLOSE_CONNECTION
    # Never rendered: the lines are those of the same records without a cycle.
    lines = text_lines(captured)
    assert lines[1] == lines[5] and lines[2] == lines[6]
    formatter = JsonFormatter()

    def json_line(record: logging.LogRecord) -> dict[str, Any]:
        line = dict(json.loads(formatter.format(record)))
        del line["time"]
        return line

    with_cycle, without = records.records[2], records.records[6]
    assert json_line(with_cycle) == json_line(without)
    assert "cycle" not in json_line(records.records[3])["detail"]


def test_trace_off_builds_no_record(captured: io.StringIO) -> None:
    logging.getLogger("sansio_asgi").setLevel(logging.DEBUG)
    trace_scope("c", Exploding())  # type: ignore[arg-type]
    trace_core_event("c", Exploding())  # type: ignore[arg-type]
    assert captured.getvalue() == ""


def test_h2_frame_records(records: Records) -> None:
    data = client_bytes()
    trace_data("127.0.0.1:50432", "<", data, protocol="http/1.1")  # the preface decides
    traces = records.traces
    assert [t.summary for t in traces] == CLIENT_LINES
    assert all(t.kind == "frame" and t.protocol == "h2" for t in traces)
    assert b"".join(t.data for t in traces) == data  # one frame's bytes each, in order
    assert [t.size for t in traces] == [len(t.data) for t in traces]
    assert traces[0].detail == {"type": "PREFACE", "length": 24}
    assert traces[1].detail == {
        "type": "SETTINGS",
        "stream": 0,
        "flags": [],
        "length": 18,
        "settings": {
            "MAX_CONCURRENT_STREAMS": 100,
            "INITIAL_WINDOW_SIZE": 65535,
            "ENABLE_CONNECT_PROTOCOL": 1,
        },
    }
    assert traces[3].detail == {
        "type": "HEADERS",
        "stream": 1,
        "flags": ["END_HEADERS", "END_STREAM"],
        "length": 34,
    }
    assert traces[5].detail["increment"] == 1_000_000
    assert traces[6].detail["opaque"] == "0001020304050607"
    assert traces[7].detail["error"] == "CANCEL"
    assert traces[8].detail == {
        "type": "GOAWAY",
        "stream": 0,
        "flags": [],
        "length": 12,
        "last_stream": 3,
        "error": "ENHANCE_YOUR_CALM",
        "debug": "calm",
    }


@given(st.data())
def test_h2_frame_records_cover_each_read_exactly(data: st.DataObject) -> None:
    """However the bytes are cut into reads, each read's records hold its bytes, in order."""
    stream = client_bytes() + DataFrame(1, b"x" * 300).serialize() + b"\x00" * 20
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    trace = H2FrameTrace()
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        read = stream[start:end]
        parts = trace.parts("c", "<", read)
        assert b"".join(bytes(part.data) for part in parts) == read
        json.dumps([part.detail for part in parts], allow_nan=False)


def test_h2_a_frame_over_reads_keeps_its_detail(records: Records) -> None:
    frame = DataFrame(1, b"hello", flags=["END_STREAM"]).serialize()
    trace_data("c", "<", frame[:11], protocol="h2")
    trace_data("c", "<", frame[11:12], protocol="h2")
    trace_data("c", "<", frame[12:], protocol="h2")
    first, second, third = (t.detail for t in records.traces)
    head = {"type": "DATA", "stream": 1, "flags": ["END_STREAM"], "length": 5}
    assert first == {**head, "here": 2}
    assert second == {**head, "rest": 1, "to_come": 2}
    assert third == {**head, "rest": 2, "to_come": 0}


def test_h2_upgrade_bytes_are_a_data_record(records: Records) -> None:
    response = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\n\r\n"
    trace_data("c", ">", response + settings_frame(), protocol="h2")
    upgrade, settings = records.traces
    assert (upgrade.kind, upgrade.data) == ("data", response)
    assert (settings.kind, settings.detail["type"]) == ("frame", "SETTINGS")


def test_app_misbehaved_rides_on_its_record(records: Records) -> None:
    event = AppMisbehaved(reason="app sent nonsense")
    report(event)
    (record,) = records.records
    assert record.event is event  # type: ignore[attr-defined]
    assert record.levelno == logging.ERROR and record.getMessage() == "app sent nonsense"


# -- trace as JSON ----------------------------------------------------------------------------


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = text.splitlines()
    assert text.endswith("\n") and len(lines) == text.count("\n")
    return [json.loads(line) for line in lines]


def test_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("trace", access=True, trace_format="json")
    trace_event("127.0.0.1:50432", "connection made")
    trace_data("127.0.0.1:50432", "<", b"GET / HTTP/1.1\r\n\r\n")
    trace_message("127.0.0.1:50432", ">", {"type": "http.response.body", "body": b"OK"})
    trace_scope("127.0.0.1:50432", {"type": "http", "raw_path": b"/"})
    error_log.warning("a %s", "warning")
    report(completed())
    try:
        raise ValueError("boom")
    except ValueError:
        error_log.exception("Exception in ASGI application")
    lines = json_lines(capsys.readouterr().err)
    times = [line.pop("time") for line in lines]
    assert all(isinstance(t, float) and abs(t - time.time()) < 60 for t in times)
    trace_line = {"level": "TRACE", "connection": "127.0.0.1:50432", "protocol": "http/1.1"}
    assert lines[:4] == [
        {
            **trace_line,
            "kind": "connection",
            "direction": "",
            "summary": "connection made",
            "size": 0,
            "data": "",
            "detail": {"event": "made"},
        },
        {
            **trace_line,
            "kind": "data",
            "direction": "<",
            "summary": r"18 bytes b'GET / HTTP/1.1\r\n\r\n'",
            "size": 18,
            "data": "GET / HTTP/1.1\r\n\r\n",
            "detail": {},
        },
        {
            **trace_line,
            "kind": "message",
            "direction": ">",
            "summary": "http.response.body body=<2 bytes b'OK'>",
            "size": 0,
            "data": "",
            "detail": {"type": "http.response.body", "body": "OK"},
        },
        {
            **trace_line,
            "kind": "scope",
            "direction": "",
            "summary": "scope http raw_path=<1 bytes b'/'>",
            "size": 0,
            "data": "",
            "detail": {"type": "http", "raw_path": "/"},
        },
    ]
    assert lines[4] == {"level": "WARNING", "logger": "sansio_asgi.error", "message": "a warning"}
    assert lines[5] == {
        "level": "INFO",
        "logger": "sansio_asgi.access",
        "message": '127.0.0.1:5000 - "GET /path?x=1 HTTP/1.1" 200',
    }
    assert lines[6]["message"] == "Exception in ASGI application"
    assert lines[6]["exception"].startswith("Traceback (most recent call last):\n")
    assert lines[6]["exception"].endswith("ValueError: boom")


def test_json_data_is_cut_like_the_text_preview_and_lossless(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("trace", access=True, trace_format="json")
    data = bytes(range(256)) * 2
    trace_data("c", "<", data)
    trace_data("c", ">", data[:TRACE_DATA_BYTES])
    cut, whole = json_lines(capsys.readouterr().err)
    assert cut["data"].encode("latin-1") == data[:TRACE_DATA_BYTES]
    assert cut["data_size"] == cut["size"] == 512
    assert whole["data"].encode("latin-1") == data[:TRACE_DATA_BYTES]
    assert "data_size" not in whole


@given(
    st.text(),
    st.binary(max_size=300),
    st.dictionaries(st.text(max_size=5), st.one_of(st.text(), st.binary(), st.floats())),
)
def test_json_a_hostile_value_cannot_break_a_line(
    connection: str, data: bytes, message: dict[str, Any]
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    error_log.addHandler(handler)
    level = error_log.level
    error_log.setLevel(TRACE)
    try:
        trace_event(connection, connection)
        trace_data(connection, "<", data)
        trace_message(connection, ">", message)
        trace_scope(connection, message)
        error_log.warning("%s", connection)
    finally:
        error_log.removeHandler(handler)
        error_log.setLevel(level)
    lines = json_lines(stream.getvalue())
    assert len(lines) == 5
    assert [line.get("connection") for line in lines[:4]] == [connection] * 4
    assert lines[1]["data"].encode("latin-1") == data[:TRACE_DATA_BYTES]
    assert lines[4]["message"] == connection
    assert stream.getvalue().isascii()  # U+2028 and friends are escaped too


def test_json_formatter_survives_a_detail_json_cannot_hold() -> None:
    record = logging.LogRecord("sansio_asgi.error", TRACE, __file__, 1, "x", None, None)
    record.trace = TraceRecord(0.5, "c", "event", "", "x", detail={"odd": {1, 2}})
    line = json.loads(JsonFormatter().format(record))
    assert line["detail"] == {"odd": "{1, 2}"} and line["time"] == 0.5


def test_bad_trace_format_is_one_line_naming_the_flag() -> None:
    with pytest.raises(ValueError, match=r"^--trace-format: 'xml' is not one of text, json$"):
        configure_logging("info", access=True, trace_format="xml")


def test_text_is_the_default_trace_format(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("trace", access=True, use_colors=False)
    trace_event("c", "connection made")
    configure_logging("trace", access=True, use_colors=False, trace_format="text")
    trace_event("c", "connection lost")
    assert capsys.readouterr().err == "TRACE:    c connection made\nTRACE:    c connection lost\n"


# -- trace capture ----------------------------------------------------------------------------


def test_capture_gets_the_trace_while_the_console_keeps_its_level(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", access=True, use_colors=False)
    assert not trace_enabled()
    capture = Records()
    capture_trace(capture)
    assert trace_enabled()
    trace_event("c", "connection made")
    error_log.debug("debug is not shown")
    error_log.info("info is")
    report(completed())  # the access log is not captured: only sansio_asgi.error
    assert capsys.readouterr().err == (
        'INFO:     info is\nINFO:     127.0.0.1:5000 - "GET /path?x=1 HTTP/1.1" 200\n'
    )
    assert [r.getMessage() for r in capture.records] == [
        "c connection made",
        "debug is not shown",
        "info is",
    ]
    assert capture.traces[0].kind == "connection"
    release_trace(capture)
    assert not trace_enabled()
    trace_event("c", "connection lost")
    assert len(capture.records) == 3
    assert capsys.readouterr().err == ""


def test_captures_stack_and_the_last_release_restores_the_level() -> None:
    configure_logging("warning", access=True, use_colors=False)
    error_log.setLevel(logging.ERROR)
    first, second = Records(), Records()
    capture_trace(first)
    capture_trace(second)
    capture_trace(first)  # once only
    assert error_log.handlers.count(first) == 1
    trace_event("c", "connection made")
    assert len(first.records) == len(second.records) == 1
    release_trace(first)
    release_trace(first)  # no harm
    assert trace_enabled() and error_log.level == TRACE
    release_trace(second)
    assert error_log.level == logging.ERROR and not trace_enabled()
    assert first not in error_log.handlers and second not in error_log.handlers


class Counted:
    """Counts how often its repr is asked for: a state's entries that were looked at."""

    reprs = 0

    def __repr__(self) -> str:
        Counted.reprs += 1
        return "<entry>"


def test_a_large_state_is_shown_short_and_not_walked(
    captured: io.StringIO, records: Records
) -> None:
    Counted.reprs = 0
    state = {"token": "s3cr3t", "cache": {f"key{i}": Counted() for i in range(10_000)}}
    scope = {"type": "http", "path": "/", "state": state}

    class Cycle:
        def __repr__(self) -> str:
            return "<HTTPCycle GET b'/'>"

    cycle: Any = Cycle()
    trace_core_event("c", StartApp(cycle=cycle, scope=scope))
    trace_scope("c", scope)
    event, scope_record = records.traces
    # The event names its cycle; the scope (and its state) is the next record's.
    assert event.detail == {"event": "StartApp", "cycle": "<HTTPCycle GET b'/'>"}
    shown = scope_record.detail["state"]
    assert isinstance(shown, str) and len(shown) <= logs.TRACE_VALUE_CHARS + 1
    assert shown.startswith("{'token': 's3cr3t', 'cache': {'key0': <entry>")
    assert Counted.reprs < 50  # a few entries looked at (text line and detail), not 10,000
    line = JsonFormatter().format(records.records[0])
    assert len(line) < 400 and "key0" not in line
    assert all(len(text) < 600 for text in text_lines(captured))


class Unshowable(Mapping[str, Any]):
    """An app's own value whose iteration and repr raise."""

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("iteration fails")

    def __repr__(self) -> str:
        raise RuntimeError("repr fails")


def test_a_value_that_cannot_be_shown_is_a_placeholder(
    capsys: pytest.CaptureFixture[str], records: Records
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    error_log.addHandler(handler)
    huge = 10**5000  # more digits than str() converts
    trace_message("c", ">", {"type": "http.response.start", "status": 200, "x": Unshowable()})
    trace_message("c", ">", {"type": "http.response.start", "status": huge, "headers": []})
    trace_message("c", ">", Unshowable())
    trace_scope("c", {"type": "http", "state": Unshowable()})
    record = logging.LogRecord("sansio_asgi.error", TRACE, __file__, 1, "x", None, None)
    record.trace = TraceRecord(0.5, "c", "event", "", "x", detail={"n": huge})
    handler.handle(record)  # a detail built elsewhere with what JSON cannot write
    assert "Logging error" not in capsys.readouterr().err
    lines = json_lines(stream.getvalue())
    assert len(lines) == 5
    first, second, third, fourth, fifth = (line["detail"] for line in lines)
    assert first == {"type": "http.response.start", "status": 200, "x": "<Unshowable object>"}
    assert second["status"] == "<int of 16610 bits>"
    assert third == {"repr": "<Unshowable object>"}
    assert fourth == {"type": "http", "state": "<Unshowable object>"}
    assert fifth == {"repr": "<dict object>"} and lines[4]["summary"] == "x"


def test_message_detail_tells_a_str_from_bytes(records: Records) -> None:
    trace_message("c", ">", {"type": "http.response.body", "body": b"hello"})
    trace_message("c", ">", {"type": "http.response.body", "body": "hello"})
    trace_message("c", ">", {"type": "websocket.send", "bytes": "hi", "text": None})
    trace_message("c", ">", {"type": "websocket.send", "text": b"hi"})
    ok_headers = [(b"content-type", b"text/plain")]
    trace_message("c", ">", {"type": "http.response.start", "status": 200, "headers": ok_headers})
    str_headers = [(b"content-type", "text/plain")]
    trace_message("c", ">", {"type": "http.response.start", "status": 200, "headers": str_headers})
    details = [trace.detail for trace in records.traces]
    assert details[0] == {"type": "http.response.body", "body": "hello"}
    assert details[1] == {"type": "http.response.body", "body": "hello", "body_type": "str"}
    assert details[2]["bytes_type"] == "str" and "text_type" not in details[2]
    assert details[3]["text_type"] == "bytes"
    assert "headers_type" not in details[4]
    assert details[5]["headers_type"] == "str"
    assert details[4]["headers"] == details[5]["headers"] == [["content-type", "text/plain"]]
