"""The run as a table for people and as JSON for machines, and the expected-failures list."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from .framework import ERROR, FAIL, GROUPS, NOT_APPLICABLE, PASS
from .runner import Run

MARKS = {PASS: "pass", FAIL: "FAIL", NOT_APPLICABLE: "n/a", ERROR: "ERROR"}


class Graded(Protocol):
    """A run of checks: a server's (``runner.Run``) or an app's (``apps.AppRun``)."""

    @property
    def outcomes(self) -> Sequence[Any]: ...


def summary(run: Graded) -> dict[str, int]:
    """How many checks passed, failed, did not apply and broke."""
    counts = {PASS: 0, FAIL: 0, NOT_APPLICABLE: 0, ERROR: 0}
    for outcome in run.outcomes:
        counts[outcome.result.status] += 1
    return counts


def as_json(run: Run) -> dict[str, Any]:
    return {
        "server": run.server,
        "name": run.name,
        "started": run.started,
        "summary": summary(run),
        "results": [
            {
                "id": outcome.check.id,
                "group": outcome.check.group,
                "title": outcome.check.title,
                "clause": outcome.check.clause,
                "level": outcome.check.level,
                "status": outcome.result.status,
                "observed": outcome.result.observed,
                "duration_s": round(outcome.duration_s, 3),
            }
            for outcome in run.outcomes
        ],
    }


def table(run: Run, width: int | None = None) -> str:
    """One line per check, grouped, with the observed behaviour wrapped under it."""
    width = width or min(shutil.get_terminal_size((120, 20)).columns, 140)
    lines = [f"Conformance of: {run.name}", ""]
    group = None
    for outcome in run.outcomes:
        if outcome.check.group != group:
            group = outcome.check.group
            lines += ["", f"## {GROUPS[group]}"]
        check = outcome.check
        mark = MARKS[outcome.result.status]
        lines.append(f"{mark:<5} {check.id:<44} {check.level:<7} {check.clause}")
        if outcome.result.status != PASS or len(outcome.result.observed) < width - 12:
            lines += textwrap.wrap(
                outcome.result.observed, width, initial_indent=" " * 6, subsequent_indent=" " * 6
            )
    counts = summary(run)
    lines += [
        "",
        f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[NOT_APPLICABLE]} not applicable"
        + (f", {counts[ERROR]} errors in the suite itself" if counts[ERROR] else ""),
    ]
    return "\n".join(lines)


def read_expected_failures(path: Path) -> dict[str, str]:
    """``check-id  # why`` per line; blank lines and lines starting with # are skipped."""
    expected = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        check_id, _, why = line.partition("#")
        expected[check_id.strip()] = why.strip()
    return expected


def verdict(run: Run, expected: dict[str, str], known: Iterable[str]) -> list[str]:
    """What makes the run fail: unexpected failures, errors of the suite itself (listed or
    not), expected failures that now pass, and listed ids that name no check."""
    problems = [
        f"{check_id}: listed as an expected failure but no check has that id"
        for check_id in expected
        if check_id not in set(known)
    ]
    for outcome in run.outcomes:
        check_id = outcome.check.id
        status = outcome.result.status
        if status == ERROR or (status == FAIL and check_id not in expected):
            problems.append(f"{check_id}: {status}: {outcome.result.observed}")
        elif status == PASS and check_id in expected:
            problems.append(f"{check_id}: listed as an expected failure but passes; remove it")
    return problems


def write_json(run: Run, path: Path) -> None:
    path.write_text(json.dumps(as_json(run), indent=2) + "\n", encoding="utf-8")
