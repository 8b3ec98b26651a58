"""The external judges: httplint on every recorded response, and the Autobahn cases run by kosoku.

Theory of operation
-------------------
httplint. The group runs after the other shared-server groups, so ``ctx.exchanges`` holds every
well-formed request and the response the server gave to it. The first httplint check to run adds
exchanges of its own (a GET, a HEAD, a 404, and two responses the server writes whole: the 500
for an app that raises, the 400 for a malformed request), so that the group means something
when run alone, then feeds every exchange to httplint once: the request to an
``HttpRequestLinter`` for context, each interim and the final response to an
``HttpResponseLinter`` (status line and headers as they came off the wire, the body as the client
framed it, the time it was received for the Date check). Each check then reads the BAD-level
notes of one kind.

A note is the server's grade only when the server wrote what it is about: the status line, the
framing (Content-Length, Transfer-Encoding, a body where none may be), the Date, the field names
and the fields a server adds by itself (Connection, Server, ...). The probe apps choose their
content type, caching and other fields; a BAD note about those is a flaw in the suite's probe,
not the server's, and is named in the observed text (so the probe can be made clean) without
grading anyone. ``IGNORED_NOTES`` lists the notes never graded, each with the reason.

Autobahn. kosoku, a fuzzing client that runs the Autobahn test suite's cases, is started once
per run against ``ws://HOST:PORT/autobahn/echo`` (an echo probe in ``probes/judges.py``); the
checks of the group share that run and each grades one Autobahn case group. Verdicts follow
Autobahn: OK, NON-STRICT and INFORMATIONAL pass; a case whose opening handshake failed is a
failure. Two behaviours that Autobahn marks FAILED are allowed by the RFCs and pass: refusing a
too-big message with close code 1009 in the limits group 9 (RFC 6455 §10.4 lets a server limit
message size), and UNIMPLEMENTED in groups 12 and 13, which means the server did not negotiate
permessage-deflate, an optional extension (RFC 7692), so those cases are not applicable.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..client import NoResponse, Response
from ..framework import (
    MUST,
    SHOULD,
    Context,
    Exchange,
    Result,
    check,
    failed,
    not_applicable,
    passed,
    verdict,
)
from .common import exchange, record_exchange, request_once

if TYPE_CHECKING:
    from httplint.note import Note

HTTPLINT = "httplint"
AUTOBAHN = "autobahn"

# -- httplint

STATUS_LINE = "httplint.status-line"
FRAMING = "httplint.framing"
DATE = "httplint.date"
FIELDS = "httplint.fields"

# Notes graded whatever field they are about, by the check they belong to.
NOTE_KINDS = {
    "STATUS_CODE_NON_NUMERIC": STATUS_LINE,
    "STATUS_PHRASE_ENCODING": STATUS_LINE,
    "UPGRADE_NOT_REQUESTED": STATUS_LINE,
    "CL_INCORRECT": FRAMING,
    "CONTENT_NOT_ALLOWED": FRAMING,
    "CL_AND_TE_PRESENT": FRAMING,
    "CL_BAD_SYNTAX": FRAMING,
    "TRANSFER_CODING_UNWANTED": FRAMING,
    "CONNECT_TUNNEL_FRAMING": FRAMING,
    "DATE_CLOCKLESS_BAD_HDR": DATE,
    "FIELD_NAME_BAD_SYNTAX": FIELDS,
    "FIELD_NAME_ENCODING": FIELDS,
    "FIELD_NAME_WHITESPACE": FIELDS,
}

# Fields that a server writes by itself (or must police, for framing): any BAD note about one
# of them is the server's.
SERVER_FIELDS = {
    "content-length": FRAMING,
    "transfer-encoding": FRAMING,
    "date": DATE,
    "connection": FIELDS,
    "keep-alive": FIELDS,
    "upgrade": FIELDS,
    "server": FIELDS,
    "te": FIELDS,
    "trailer": FIELDS,
}

# The section a note is about, for the notes whose text names none.
NOTE_CLAUSES = {
    "STATUS_CODE_NON_NUMERIC": "RFC 9112 §4",
    "STATUS_PHRASE_ENCODING": "RFC 9112 §4",
    "UPGRADE_NOT_REQUESTED": "RFC 9110 §7.8",
    "CL_INCORRECT": "RFC 9112 §6.3",
    "CL_BAD_SYNTAX": "RFC 9110 §8.6",
    "CONTENT_NOT_ALLOWED": "RFC 9110 §6.4.1",
    "TRANSFER_CODING_UNWANTED": "RFC 9112 §6.1",
    "CONNECT_TUNNEL_FRAMING": "RFC 9110 §9.3.6",
    "DATE_INCORRECT": "RFC 9110 §6.6.1",
    "DATE_CLOCKLESS_BAD_HDR": "RFC 9110 §6.6.1",
    "BAD_DATE_SYNTAX": "RFC 9110 §5.6.7",
    "FIELD_NAME_BAD_SYNTAX": "RFC 9110 §5.1",
    "FIELD_NAME_ENCODING": "RFC 9110 §5.1",
    "FIELD_NAME_WHITESPACE": "RFC 9112 §5.1",
    "SINGLE_HEADER_REPEAT": "RFC 9110 §5.3",
}

IGNORED_NOTES = {
    "UNEXPECTED_CONTINUE": (
        "RFC 9110 §15.2 lets a server send a 1xx response the client did not ask for (a client "
        "MUST parse it), so an unasked-for 100 Continue is allowed"
    ),
}

# The exchanges the httplint group records itself, (method, target), all owed a response.
OWN_REQUESTS = (
    ("GET", "/http11/hello"),
    ("HEAD", "/http11/hello"),
    ("GET", "/httplint/no-such-probe"),
)
# Two whose response the server writes whole, where closing without one is allowed too: the
# app raises before starting a response (reading: no-response-start), and a request with
# whitespace before a field's colon (RFC 9112 §5.1: rejected with 400).
ERROR_TARGET = "/httplint/error"
MALFORMED_TARGET = "/http11/hello"
MALFORMED_REQUEST = b"GET /http11/hello HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Spaced : value\r\n\r\n"


@dataclasses.dataclass(frozen=True)
class Finding:
    """One BAD note: which check grades it ("" for the probe app's own), and where it was."""

    kind: str
    note: str
    summary: str
    cite: str
    where: str

    def describe(self) -> str:
        cite = f" ({self.cite})" if self.cite else ""
        return f"{self.where}: {self.note}: {self.summary}{cite}"


@dataclasses.dataclass(frozen=True)
class Linted:
    judged: int  # responses fed to httplint, interim ones included
    findings: list[Finding]
    cut_short: list[str]  # responses whose framing did not complete (not judged on length)
    unanswered: list[str]  # own requests that got no response
    available: bool = True


_lock = threading.Lock()
_linted: weakref.WeakKeyDictionary[Context, Linted] = weakref.WeakKeyDictionary()


def _linted_for(ctx: Context) -> Linted:
    """Record the group's own exchanges and lint everything, once per run."""
    with _lock:
        if ctx not in _linted:
            _linted[ctx] = _lint_all(ctx)
        return _linted[ctx]


def _lint_all(ctx: Context) -> Linted:
    if importlib.util.find_spec("httplint") is None:
        return Linted(0, [], [], [], available=False)
    unanswered = []
    for method, target in OWN_REQUESTS:
        response = exchange(ctx, HTTPLINT, method, target)
        if isinstance(response, NoResponse):
            unanswered.append(f"{method} {target}: {response.describe()}")
    _record_errors(ctx)
    findings: list[Finding] = []
    cut_short: list[str] = []
    judged = 0
    for item in list(ctx.exchanges):
        response = item.response
        if not isinstance(response, Response):
            continue
        for message in [*response.interim, response]:
            judged += 1
            findings += _lint(item, message, final=message is response)
        if not response.complete:
            cut_short.append(f"{item.method} {item.target} ({item.check_id})")
    return Linted(judged, findings, cut_short, unanswered)


def _record_errors(ctx: Context) -> None:
    """Record the server's own error responses, if it gives them (it may close instead)."""
    exchange(ctx, HTTPLINT, "GET", ERROR_TARGET)
    response = request_once(ctx, MALFORMED_REQUEST)
    record_exchange(ctx, f"{HTTPLINT} (malformed)", "GET", MALFORMED_TARGET, response)


def _lint(item: Exchange, message: Response, final: bool) -> list[Finding]:
    from httplint import HttpRequestLinter, HttpResponseLinter

    request = HttpRequestLinter()
    request.process_request_topline(
        item.method.encode("latin-1"), item.target.encode("latin-1"), b"1.1"
    )
    request.process_headers([(b"host", b"127.0.0.1"), *item.request_headers])
    request.finish_content(True)

    linter = HttpResponseLinter(start_time=item.received_at)
    linter.request = request
    linter.is_head_response = item.method == "HEAD"
    topline = message.raw_head.split(b"\r\n", 1)[0]
    version, _, rest = topline.partition(b" ")
    status, _, reason = rest.partition(b" ")
    linter.process_response_topline(version.partition(b"/")[2], status, reason)
    linter.process_headers(message.headers)
    if final:
        linter.feed_content(message.body)
    linter.finish_content(message.complete, message.trailers or None)

    where = f"{item.method} {item.target} -> {message.status} ({item.check_id})"
    findings = []
    for note in _walk(linter.notes):
        if note.level.name != "BAD":
            continue
        name = type(note).__name__
        if name in IGNORED_NOTES:
            continue
        if name == "CL_INCORRECT" and not message.complete:
            continue  # a response cut short is its own check's business, not a wrong length
        kind = _kind(note)
        findings.append(Finding(kind, name, _plain(note.summary), _citation(note), where))
    return findings


def _walk(notes: Iterable[Note]) -> Iterable[Note]:
    for note in notes:
        yield note
        yield from _walk(note.subnotes)


def _kind(note: Note) -> str:
    """The check that grades ``note``, or "" when the probe app chose what it is about."""
    name = type(note).__name__
    if name in NOTE_KINDS:
        return NOTE_KINDS[name]
    fields = {str(note.vars.get("field_name", "")).lower()}
    fields.update(part[6:] for part in note.subject.split() if part.startswith("field-"))
    for field in sorted(fields):
        if field in SERVER_FIELDS:
            return SERVER_FIELDS[field]
    return ""


_RFC_SECTION = re.compile(r"RFC\s?(\d{4}),?\s+Section\s+([\d.]*\d)", re.IGNORECASE)
_RFC_LINK = re.compile(r"rfc(\d{4})(?:\.html)?#(?:section-([\d.]*\d)|name-([\w-]+))")


def _citation(note: Note) -> str:
    """The RFC section httplint names in the note's text, else the one it is about, if known."""
    text = type(note)._text
    match = _RFC_SECTION.search(text)
    if match:
        return f"RFC {match.group(1)} §{match.group(2)}"
    match = _RFC_LINK.search(text)
    if match and match.group(2):
        return f"RFC {match.group(1)} §{match.group(2)}"
    name = type(note).__name__
    if name in NOTE_CLAUSES:
        return NOTE_CLAUSES[name]
    if match:
        return f"RFC {match.group(1)} ({match.group(3).replace('-', ' ')})"
    return ""


def _plain(text: str) -> str:
    return " ".join(text.split())


def _grade(ctx: Context, kind: str, what: str) -> Result:
    linted = _linted_for(ctx)
    if not linted.available:
        return not_applicable("httplint is not installed (pip install httplint)")
    if linted.judged == 0:
        why = "; ".join(linted.unanswered) or "no exchange was recorded"
        return failed(f"no response to judge: {why}")
    mine = [finding for finding in linted.findings if finding.kind == kind]
    observed = f"httplint judged {linted.judged} responses: "
    if mine:
        counts = Counter(finding.note for finding in mine)
        listed = "; ".join(finding.describe() for finding in _first_of_each(mine))
        observed += (
            f"{len(mine)} BAD notes on {what} "
            f"({', '.join(f'{note} x{count}' for note, count in counts.items())}): {listed}"
        )
    else:
        observed += f"no BAD note on {what}"
    if linted.unanswered:
        observed += f"; unanswered: {'; '.join(linted.unanswered)}"
    if linted.cut_short and kind == FRAMING:
        observed += (
            f"; {len(linted.cut_short)} cut short, not judged on their length: "
            + ", ".join(linted.cut_short[:4])
        )
    probes = [finding for finding in linted.findings if not finding.kind]
    if probes:
        observed += "; not graded, the probe apps' own choices: " + "; ".join(
            finding.describe() for finding in _first_of_each(probes)
        )
    return verdict(not mine, observed)


def _first_of_each(findings: list[Finding], limit: int = 4) -> list[Finding]:
    """One example per note id, at most ``limit`` of them."""
    seen: dict[str, Finding] = {}
    for finding in findings:
        seen.setdefault(finding.note, finding)
    return list(seen.values())[:limit]


@check(
    STATUS_LINE,
    title="httplint: every status line is well-formed, and 101 only answers an Upgrade",
    clause="RFC 9112 §4",
)
def status_line(ctx: Context) -> Result:
    return _grade(ctx, STATUS_LINE, "the status line")


@check(
    FRAMING,
    title="httplint: Content-Length and Transfer-Encoding frame every body correctly",
    clause="RFC 9112 §6",
)
def framing(ctx: Context) -> Result:
    return _grade(ctx, FRAMING, "message framing")


@check(
    DATE,
    title="httplint: every Date is a valid IMF-fixdate from a correct clock",
    clause="RFC 9110 §6.6.1",
)
def date(ctx: Context) -> Result:
    return _grade(ctx, DATE, "the Date field")


@check(
    FIELDS,
    title="httplint: field names are tokens; the server's own fields are valid",
    clause="RFC 9110 §5",
)
def fields(ctx: Context) -> Result:
    return _grade(ctx, FIELDS, "field names and the server's own fields")


# -- Autobahn

ECHO_PATH = "/autobahn/echo"
QUICK_CASES = (
    "1.*",
    "2.*",
    "3.*",
    "4.*",
    "5.*",
    "6.*",
    "7.*",
    "9.*",
    "10.*",
    "12.1.1",
    "13.1.1",
)
# Cases at once: the permessage-deflate cases of a full run are CPU-bound on both sides, and on
# a 2-core machine 4 at once made some of them overrun kosoku's own case timeout.
KOSOKU_PARALLELISM = {"quick": 4, "full": 2}
KOSOKU_TIMEOUT_S = {"quick": 600.0, "full": 3600.0}  # only a server that stalls every case
PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}
PASSING_CLOSE = {"OK", "INFORMATIONAL"}
MESSAGE_TOO_BIG = 1009


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    behavior: str
    behavior_close: str
    remote_close_code: int | None
    description: str
    result: str
    result_close: str
    was_clean: bool = True
    dropped_by_kosoku: bool = False

    @property
    def group(self) -> str:
        return self.id.split(".", 1)[0]

    def failure(self) -> str:
        """What went wrong, without the case's id: equal for cases that failed alike."""
        text = self.behavior
        if self.behavior_close not in PASSING_CLOSE:
            text += f", close {self.behavior_close}"
        text += f": {self.result.rstrip('.')}"
        if self.behavior_close not in PASSING_CLOSE and self.result_close:
            text += f"; {self.result_close.rstrip('.')}"
        if self.remote_close_code is not None:
            text += f"; the server closed with {self.remote_close_code}"
        elif self.dropped_by_kosoku:
            text += "; no close frame from the server, and kosoku dropped the connection"
        elif not self.was_clean:
            text += "; the server dropped the TCP connection without a close frame"
        else:
            text += "; no close code from the server"
        return text


@dataclasses.dataclass(frozen=True)
class AutobahnRun:
    mode: str
    selection: tuple[str, ...]  # the case globs run; empty for all
    cases: list[Case]
    problem: str = ""  # why there are no cases: the server's doing (a timeout)


_autobahn: weakref.WeakKeyDictionary[Context, AutobahnRun] = weakref.WeakKeyDictionary()
_autobahn_lock = threading.Lock()


def kosoku_command() -> list[str] | None:
    """How to start kosoku: the script beside this Python, on PATH, or the importable module."""
    beside = Path(sys.executable).with_name("kosoku")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("kosoku")
    if found:
        return [found]
    if importlib.util.find_spec("kosoku") is not None:
        return [sys.executable, "-c", "from kosoku._cli import main; main()"]
    return None


def _autobahn_for(ctx: Context) -> AutobahnRun:
    with _autobahn_lock:
        if ctx not in _autobahn:
            _autobahn[ctx] = _run_kosoku(ctx)
        return _autobahn[ctx]


def _run_kosoku(ctx: Context) -> AutobahnRun:
    mode = ctx.options.autobahn_cases
    if mode not in ("quick", "full"):
        return AutobahnRun(mode, (), [])
    command = kosoku_command()
    if command is None:
        return AutobahnRun("missing", (), [])
    selection = QUICK_CASES if mode == "quick" else ()
    includes = [arg for case in selection for arg in ("-i", case)]
    url = f"ws://{ctx.options.host}:{ctx.port}{ECHO_PATH}"
    timeout_s = KOSOKU_TIMEOUT_S[mode]
    with tempfile.TemporaryDirectory(prefix="conformance-kosoku-") as outdir:
        argv = [*command, url, *includes, "-p", str(KOSOKU_PARALLELISM[mode]), "-o", outdir]
        try:
            completed = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            return AutobahnRun(
                mode, selection, [], f"kosoku did not finish its cases within {timeout_s:g} s"
            )
        index = Path(outdir) / "index.json"
        if not index.exists():
            # kosoku writes its report whatever the verdicts: no report is kosoku's failure.
            output = (completed.stdout + completed.stderr).strip()[-600:]
            raise RuntimeError(f"kosoku exited with {completed.returncode} and no report: {output}")
        return AutobahnRun(mode, selection, _read_cases(Path(outdir)))


def _read_cases(outdir: Path) -> list[Case]:
    index: dict[str, dict[str, dict[str, Any]]] = json.loads(
        (outdir / "index.json").read_text(encoding="utf-8")
    )
    cases = []
    for agent_cases in index.values():
        for case_id, summary in agent_cases.items():
            detail: dict[str, Any] = {}
            report = outdir / str(summary.get("reportfile", ""))
            if summary.get("reportfile") and report.exists():
                detail = json.loads(report.read_text(encoding="utf-8"))
            cases.append(
                Case(
                    id=case_id,
                    behavior=str(summary["behavior"]),
                    behavior_close=str(summary["behaviorClose"]),
                    remote_close_code=summary.get("remoteCloseCode"),
                    description=str(detail.get("description", "")),
                    result=str(detail.get("result", "")),
                    result_close=str(detail.get("resultClose", "")),
                    was_clean=bool(detail.get("wasClean", True)),
                    dropped_by_kosoku=bool(detail.get("droppedByMe", False)),
                )
            )
    cases.sort(key=lambda case: [int(part) for part in case.id.split(".")])
    return cases


def _case_verdict(case: Case) -> str:
    """ "pass", "allowed" (a behaviour the RFCs allow that Autobahn fails), "n/a" or "fail"."""
    if case.behavior in PASSING and case.behavior_close in PASSING_CLOSE:
        return "pass"
    if case.behavior == "UNIMPLEMENTED" and case.group in ("12", "13"):
        return "n/a"
    if case.group == "9" and case.remote_close_code == MESSAGE_TOO_BIG:
        return "allowed"
    return "fail"


def _selected(selection: tuple[str, ...], group: str) -> list[str]:
    """The globs of ``selection`` that pick cases of ``group``; ["*"] when all run."""
    if not selection:
        return ["*"]
    return [glob for glob in selection if glob.split(".", 1)[0] == group]


def _grade_autobahn(ctx: Context, group: str, limit: int = 6) -> Result:
    run = _autobahn_for(ctx)
    if run.mode == "off":
        return not_applicable("not run: the Autobahn cases are off (--autobahn off)")
    if run.mode == "missing":
        return not_applicable("kosoku is not installed (pip install kosoku): no Autobahn cases")
    if run.mode not in ("quick", "full"):
        return not_applicable(f"not run: unknown Autobahn selection {run.mode!r}")
    globs = _selected(run.selection, group)
    if not globs:
        return not_applicable(
            f"not run in the quick selection ({', '.join(run.selection)}); "
            "--autobahn full runs every case"
        )
    if run.problem:
        return failed(run.problem)
    cases = [case for case in run.cases if case.group == group]
    scope = "every case" if globs == ["*"] else f"cases {', '.join(globs)}"
    if not cases:
        return failed(f"kosoku reported no result for {scope} of group {group}")
    verdicts = {case.id: _case_verdict(case) for case in cases}
    bad = [case for case in cases if verdicts[case.id] == "fail"]
    allowed = [case for case in cases if verdicts[case.id] == "allowed"]
    skipped = [case for case in cases if verdicts[case.id] == "n/a"]
    counts = Counter(case.behavior for case in cases)
    tally = ", ".join(f"{count} {behavior}" for behavior, count in sorted(counts.items()))
    observed = f"kosoku ran {len(cases)} case(s) ({scope}): {tally}"
    if allowed:
        observed += (
            f"; {len(allowed)} refused with 1009 Message Too Big, a size limit RFC 6455 §10.4 "
            f"allows ({', '.join(case.id for case in allowed[:limit])})"
        )
    if bad:
        return failed(f"{observed}; {len(bad)} failed: {_failures(bad, limit)}")
    if skipped and len(skipped) == len(cases):
        return not_applicable(
            f"{observed}: the server does not negotiate permessage-deflate (an optional extension)"
        )
    return passed(observed)


def _failures(cases: list[Case], limit: int) -> str:
    """The failed cases, those that failed alike together: ids, what was sent, what went wrong."""
    alike: dict[str, list[Case]] = {}
    for case in cases:
        alike.setdefault(case.failure(), []).append(case)
    parts = []
    for failure, group in list(alike.items())[:limit]:
        ids = ", ".join(case.id for case in group[:limit])
        if len(group) > limit:
            ids += f" and {len(group) - limit} more"
        sent = group[0].description.rstrip(".")[:80]
        if sent and len(group) > 1:
            sent = f"{group[0].id}: {sent}, ..."
        parts.append(f"{ids} ({sent}): {failure}" if sent else f"{ids}: {failure}")
    if len(alike) > limit:
        parts.append(f"{len(alike) - limit} more kinds of failure")
    return "; ".join(parts)


AUTOBAHN_GROUPS: list[tuple[str, str, str, str, str]] = [
    ("1", "framing", "text and binary messages of every payload length are echoed", "§5.2", MUST),
    ("2", "ping-pong", "pings are answered with pongs carrying their payload", "§5.5.2", MUST),
    ("3", "reserved-bits", "frames with reserved bits set fail the connection", "§5.2", MUST),
    ("4", "opcodes", "frames with reserved opcodes fail the connection", "§5.2", MUST),
    ("5", "fragmentation", "fragmented messages and interleaved control frames", "§5.4", MUST),
    ("6", "utf8", "text must be valid UTF-8, checked across fragments", "§8.1", MUST),
    ("7", "close", "the closing handshake, close codes and reasons", "§7", MUST),
    (
        "9",
        "limits",
        "large messages and many frames are echoed, or refused with 1009",
        "§10.4",
        SHOULD,
    ),
    ("10", "misc", "a message auto-fragmented by the client is echoed whole", "§5.4", MUST),
    ("12", "deflate-payloads", "permessage-deflate with payloads of many sizes", "", MUST),
    ("13", "deflate-parameters", "permessage-deflate with each parameter set", "", MUST),
]
DEFLATE_CLAUSES = {"12": "RFC 7692 §7", "13": "RFC 7692 §7.1"}


def _register_autobahn(group: str, name: str, title: str, section: str, level: str) -> None:
    def run(ctx: Context) -> Result:
        return _grade_autobahn(ctx, group)

    clause = DEFLATE_CLAUSES.get(group) or f"RFC 6455 {section}"
    register: Callable[[Callable[[Context], Result]], Callable[[Context], Result]] = check(
        f"autobahn.{int(group):02d}-{name}",
        title=f"Autobahn {group}: {title}",
        clause=clause,
        level=level,
    )
    register(run)


for _group, _name, _title, _section, _level in AUTOBAHN_GROUPS:
    _register_autobahn(_group, _name, _title, _section, _level)
