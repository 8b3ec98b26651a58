"""The app mode of the conformance suite (conformance/apps.py) and its pytest plugin.

* A deliberately broken app (tests/apps/broken_app.py) is found out in each way the mode
  reports: an invalid message, what the server recovered from, a broken rule, an exception, a
  failed lifespan; its one correct route has no finding.
* The five framework apps of tests/apps/ give exactly what conformance/APPS.md says, check by
  check and finding by finding (each in a process of its own: Django's settings are global).
* ``pytest --asgi-conformance module:app`` makes one item per check, failing with the findings;
  without the option the plugin imports nothing of the suite.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, WebSocket  # at module level: FastAPI resolves the annotations here
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, Router

import tests.apps as routes
from conformance import apps
from tests.apps import broken_app

ROOT = Path(__file__).resolve().parent.parent
APPS_MD = ROOT / "conformance" / "APPS.md"
SUBPROCESS_TIMEOUT_S = 120

BROKEN = apps.AppOptions(paths=tuple(broken_app.PATHS), post_path="/echo")


def grade(app: Any, patterns: list[str], options: apps.AppOptions = BROKEN) -> dict[str, Any]:
    run = apps.run(app, name="under test", options=options, patterns=patterns)
    return {outcome.check.id: outcome.result for outcome in run.outcomes}


def found(result: apps.AppResult) -> set[tuple[str, str, str]]:
    return {(finding.request, finding.kind, finding.clause) for finding in result.findings}


# -- each kind of finding ---------------------------------------------------------------------


def test_each_kind_of_http_violation_is_found_on_its_route() -> None:
    result = grade(broken_app.app, ["app.http.get"])["app.http.get"]
    assert result.status == apps.FAIL
    assert found(result) == {
        ("GET /upper", apps.RULE, "ASGI HTTP spec, Response Start"),
        ("GET /body-first", apps.INVALID, "ASGI HTTP spec, Response Body"),
        ("GET /no-response", apps.RECOVERED, "ASGI spec, Error Handling"),
        ("GET /half", apps.RECOVERED, "ASGI spec, Error Handling"),
        ("GET /raise", apps.EXCEPTION, "ASGI spec, Error Handling"),
    }
    words = {finding.request: finding.describe() for finding in result.findings}
    assert "header name b'X-Upper' is not lowercased" in words["GET /upper"]
    assert "http.response.body: sent before http.response.start" in words["GET /body-first"]
    assert "'body': b'too early'" in words["GET /body-first"]  # the app's message
    assert "returned without starting the response" in words["GET /no-response"]
    assert "returned without completing the response" in words["GET /half"]
    assert "ValueError: the route failed (before sending any message)" in words["GET /raise"]
    # The server's own ASGIProtocolError, raised out of send() and let through by the app, is
    # the invalid message, not an exception of the app's as well.
    assert len(result.findings) == 5


def test_a_correct_app_passes_every_http_check() -> None:
    """The same checks on the broken app's one correct route: nothing is found."""
    options = apps.AppOptions(paths=("/",), post_path="/echo")
    results = grade(broken_app.app, ["app.http.*"], options)
    assert {check: result.status for check, result in results.items()} == {
        check: apps.NOT_APPLICABLE if check == "app.http.exception" else apps.PASS
        for check in results
    }
    assert "POST /echo: 200, 262145 bytes" in results["app.http.post-large"].observed
    assert "100 then 200" in results["app.http.expect-100-continue"].observed


def test_the_routes_named_as_raising_are_excused_their_exception_only() -> None:
    options = apps.AppOptions(error_paths=("/raise", "/body-first"))
    result = grade(broken_app.app, ["app.http.exception"], options)["app.http.exception"]
    assert found(result) == {("GET /body-first", apps.INVALID, "ASGI HTTP spec, Response Body")}
    assert "GET /raise: the app raised ValueError before sending any message" in result.observed


def test_websocket_violations_are_found() -> None:
    results = grade(broken_app.app, ["app.websocket.*"])
    both = ("WebSocket /ws", apps.INVALID, "ASGI WebSocket spec, Send")
    assert found(results["app.websocket.echo"]) == {both}
    assert found(results["app.websocket.client-drop"]) == {both}
    assert found(results["app.websocket.unknown-path"]) == {
        ("WebSocket /asgi-conformance/nowhere", apps.RECOVERED, "ASGI WebSocket spec, Connect")
    }
    assert "exactly one of 'bytes' and 'text'" in results["app.websocket.echo"].findings[0].words
    # The server answered the unanswered handshake with 403, as a denial.
    assert ": 403" in results["app.websocket.unknown-path"].observed


def test_an_exception_raised_after_the_client_left_is_not_the_apps_fault() -> None:
    """The app raises because ``receive()`` said the client left: a bare Starlette ``Router``
    (no middleware sending a 500 whose ``send()`` would raise ``ClientDisconnected``), and the
    WebSocket endpoint of FastAPI's tutorial (no try/except around ``receive_text()``)."""

    async def echo(request: Request) -> PlainTextResponse:
        return PlainTextResponse(await request.body())

    router = Router(routes=[Route("/echo", echo, methods=["POST"])])
    options = apps.AppOptions(post_path="/echo")
    check = "app.http.disconnect-mid-request"
    result = grade(router, [check], options)[check]
    assert (result.status, result.findings) == (apps.PASS, ()), result.findings
    assert "the app raised ClientDisconnect after the client left" in result.observed

    tutorial = FastAPI()

    @tutorial.get("/")
    def root() -> dict[str, bool]:
        return {"ok": True}

    @tutorial.websocket("/ws")
    async def websocket_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        while True:
            data = await websocket.receive_text()
            await websocket.send_text(f"Message text was: {data}")

    results = grade(tutorial, ["app.websocket.*"], apps.AppOptions())
    drop = results["app.websocket.client-drop"]
    assert (drop.status, drop.findings) == (apps.PASS, ()), drop.findings
    assert "the app raised WebSocketDisconnect after the client left" in drop.observed
    # What it raised while the client was still there is its own: receive_text() on bytes.
    (finding,) = results["app.websocket.echo"].findings
    assert finding.kind == apps.EXCEPTION and "KeyError: 'text'" in finding.words


def test_load_puts_the_working_directory_on_sys_path_only_when_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", [entry for entry in sys.path if entry not in ("", ".")])
    assert apps.load("tests.apps.broken_app:app") is broken_app.app
    assert "." not in sys.path  # importable without it: it would shadow installed packages
    (tmp_path / "app_in_the_cwd.py").write_text("async def app(scope, r, s): pass\n", "utf-8")
    monkeypatch.chdir(tmp_path)
    try:
        assert apps.load("app_in_the_cwd:app").__module__ == "app_in_the_cwd"
        assert sys.path[0] == "."  # found only there, as the server finds an app
    finally:
        sys.modules.pop("app_in_the_cwd", None)


async def http_only(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        raise ValueError(f"unsupported scope type {scope['type']!r}")
    await broken_app.app(scope, receive, send)


def test_an_app_without_websocket_or_lifespan_is_not_applicable_there() -> None:
    results = grade(http_only, ["app.websocket.*", "app.lifespan.*"])
    assert {check: result.status for check, result in results.items()} == dict.fromkeys(
        results, apps.NOT_APPLICABLE
    )
    assert "no WebSocket route found: /ws (500" in results["app.websocket.echo"].observed
    assert "ValueError" in results["app.lifespan.startup-shutdown"].observed


def test_lifespan_violations_are_found() -> None:
    result = grade(broken_app.app, ["app.lifespan.*"])["app.lifespan.startup-shutdown"]
    assert found(result) == {("lifespan", apps.FAILURE, "ASGI lifespan spec, Shutdown Failed")}
    assert "'could not close the pool'" in result.findings[0].words
    assert "state ['opened']" in result.observed
    assert "the request's scope carried the state" in result.observed

    result = grade(broken_app.lifespan_invalid, ["app.lifespan.*"])
    (finding,) = result["app.lifespan.startup-shutdown"].findings
    assert (finding.kind, finding.clause) == (apps.INVALID, "ASGI lifespan spec")
    assert "lifespan.shutdown.complete: not expected while the lifespan is starting" in (
        finding.words
    )

    result = grade(broken_app.lifespan_unsupported, ["app.lifespan.*"])
    assert result["app.lifespan.startup-shutdown"].status == apps.NOT_APPLICABLE


def test_a_lifespan_that_never_answers_is_a_failure_and_no_request_is_made() -> None:
    options = dataclasses.replace(BROKEN, io_timeout_s=0.2)
    results = grade(broken_app.lifespan_silent, ["app.lifespan.*", "app.http.get"], options)
    (finding,) = results["app.lifespan.startup-shutdown"].findings
    assert (finding.kind, finding.clause) == (apps.FAILURE, "ASGI lifespan spec, Startup")
    assert "lifespan.startup unanswered after 0.2 s" in finding.words
    # A server would not serve an app whose startup never ends: neither does the check.
    assert results["app.http.get"].status == apps.NOT_APPLICABLE


def test_main_reports_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "report.json"
    code = apps.main(
        "tests.apps.broken_app:app",
        patterns=["app.http.get", "app.lifespan.*"],
        json_path=path,
        paths=["/", "/upper"],
    )
    assert code == 1
    out = capsys.readouterr().out
    assert "FAIL  app.http.get" in out
    assert "GET /upper: broken rule: header name b'X-Upper' is not lowercased" in out
    report = json.loads(path.read_text(encoding="utf-8"))
    assert report["summary"] == {"pass": 0, "fail": 2, "n/a": 0, "error": 0}
    (get,) = [result for result in report["results"] if result["id"] == "app.http.get"]
    assert get["findings"][0]["request"] == "GET /upper"

    assert apps.main("tests.apps.broken_app:nothing_here") == 2
    assert apps.main("tests.apps.broken_app:app", patterns=["no.such.check"]) == 2
    assert "no app check matches" in capsys.readouterr().err


# -- the framework apps give what APPS.md says ------------------------------------------------

FRAMEWORKS = {
    "Starlette": "starlette_app",
    "FastAPI": "fastapi_app",
    "Quart": "quart_app",
    "Litestar": "litestar_app",
    "Django": "django_app",
}
# The distributions whose versions APPS.md's version table gives, per framework.
DISTRIBUTIONS = {
    "Starlette": ("starlette", "anyio"),
    "FastAPI": ("fastapi", "starlette"),
    "Quart": ("quart", "werkzeug"),
    "Litestar": ("litestar",),
    "Django": ("django", "channels", "asgiref"),
}


def versions(name: str) -> str:
    """What APPS.md was measured with and what is installed, for a failure's message: a new
    release of a framework may change what it sends."""
    text = APPS_MD.read_text(encoding="utf-8")
    row = re.search(rf"^\| {re.escape(name)} \| ([^|]+) \|", text, re.MULTILINE)
    measured = row[1].strip() if row else "(not in APPS.md's version table)"
    installed = []
    for distribution in DISTRIBUTIONS[name]:
        try:
            installed.append(f"{distribution} {importlib.metadata.version(distribution)}")
        except importlib.metadata.PackageNotFoundError:
            installed.append(f"{distribution} (not installed)")
    return f"APPS.md measured {name} {measured}; installed: {', '.join(installed)}"


def documented() -> dict[str, dict[str, tuple[str, set[str]]]]:
    """APPS.md's table: framework -> check -> (status, the summaries of its findings)."""
    text = APPS_MD.read_text(encoding="utf-8")
    summaries = dict(re.findall(r"^### (\w+)\n\n> (.+)$", text, re.MULTILINE))
    rows = re.findall(r"^\| `(app\.[\w.-]+)` \|(.+)\|$", text, re.MULTILINE)
    header = re.search(r"^\| check \|(.+)\|$", text, re.MULTILINE)
    assert header is not None and rows and summaries
    columns = [name.strip() for name in header[1].split("|")]
    table: dict[str, dict[str, tuple[str, set[str]]]] = {name: {} for name in columns}
    for check, cells in rows:
        for name, cell in zip(columns, (cell.strip() for cell in cells.split("|")), strict=True):
            if cell == "none":
                table[name][check] = (apps.PASS, set())
            elif cell == "n/a":
                table[name][check] = (apps.NOT_APPLICABLE, set())
            else:
                ids = re.findall(r"\[(\w+)\]", cell)
                assert ids, f"APPS.md: {name} {check}: {cell!r}"
                table[name][check] = (apps.FAIL, {summaries[id] for id in ids})
    return table


def measure(module: str, tmp_path: Path) -> dict[str, tuple[str, set[str]]]:
    """The app mode on one framework app, in a process of its own, as APPS.md ran it."""
    path = tmp_path / f"{module}.json"
    code = (
        "import sys; from pathlib import Path; from conformance import apps; "
        f"sys.exit(apps.main('tests.apps.{module}:app', json_path=Path({str(path)!r}), "
        f"paths={routes.PATHS!r}, post_path={routes.POST_PATH!r}, "
        f"error_paths={routes.ERROR_PATHS!r}))"
    )
    process = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
    )
    assert path.exists(), process.stderr[-3000:]
    report = json.loads(path.read_text(encoding="utf-8"))
    assert process.returncode == (1 if report["summary"]["fail"] else 0), process.stdout
    return {
        result["id"]: (
            result["status"],
            {apps.Finding(**finding).summary() for finding in result["findings"]},
        )
        for result in report["results"]
    }


def test_the_framework_apps_give_what_apps_md_says(tmp_path: Path) -> None:
    expected = documented()
    assert set(expected) == set(FRAMEWORKS)
    with ThreadPoolExecutor(max_workers=len(FRAMEWORKS)) as pool:
        measured = dict(
            zip(
                FRAMEWORKS,
                pool.map(lambda module: measure(module, tmp_path), FRAMEWORKS.values()),
                strict=True,
            )
        )
    for name in FRAMEWORKS:
        assert set(measured[name]) == set(apps.CHECKS), f"{name}: a check is missing"
        for check, outcome in measured[name].items():
            assert outcome == expected[name].get(check), (
                f"{name} {check}: APPS.md is out of date ({versions(name)}): re-measure it"
            )


def test_an_out_of_date_apps_md_names_the_versions_measured_and_installed() -> None:
    message = versions("Django")
    assert re.search(r"APPS.md measured Django \d+\.\d+\.\d+ with Channels \d", message), message
    assert f"django {importlib.metadata.version('django')}" in message
    assert f"channels {importlib.metadata.version('channels')}" in message
    assert "starlette " in versions("FastAPI") and "anyio " in versions("Starlette")


# -- the pytest plugin ------------------------------------------------------------------------


def pytest_in(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in a directory of its own (its rootdir: no configuration of this repository),
    with this checkout importable for the apps."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "pytest", "-W", "error", "-p", "no:cacheprovider", "-q"]
    return subprocess.run(
        [*command, "--rootdir", str(directory), str(directory), *args],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
    )


def test_the_plugin_makes_one_item_per_check_failing_with_the_findings(tmp_path: Path) -> None:
    options = ["--asgi-conformance-path", "/", "--asgi-conformance-path", "/upper"]
    broken = pytest_in(
        tmp_path,
        "--asgi-conformance",
        "tests.apps.broken_app:app",
        *options,
        "--asgi-conformance-check",
        "app.http.*",
        "-rA",
    )
    assert broken.returncode == 1, broken.stdout
    assert "asgi-conformance[tests.apps.broken_app:app]::app.http.get" in broken.stdout
    assert "- GET /upper: broken rule: header name b'X-Upper' is not lowercased" in broken.stdout
    assert "(ASGI HTTP spec, Response Start)" in broken.stdout
    summary = broken.stdout.strip().splitlines()[-1]
    assert re.search(r"\b5 failed, 7 passed, 1 skipped\b", summary), summary

    starlette = pytest_in(
        tmp_path,
        "--asgi-conformance",
        "tests.apps.starlette_app:app",
        *[option for path in routes.PATHS for option in ("--asgi-conformance-path", path)],
        "--asgi-conformance-post-path",
        routes.POST_PATH,
        *[f"--asgi-conformance-error-path={path}" for path in routes.ERROR_PATHS],
    )
    assert starlette.returncode == 0, starlette.stdout
    assert f"{len(apps.CHECKS)} passed" in starlette.stdout


def test_without_the_option_the_plugin_adds_nothing(tmp_path: Path) -> None:
    (tmp_path / "test_alone.py").write_text(
        "import sys\n\n"
        "def test_alone(pytestconfig):\n"
        "    assert pytestconfig.pluginmanager.has_plugin('asgi_conformance')\n"
        "    loaded = [name for name in sys.modules if name.startswith('sansio_asgi.')]\n"
        "    assert 'sansio_asgi.conformance.apps' not in loaded, loaded\n"
        "    assert 'sansio_asgi.testing' not in loaded, loaded\n"
        "    assert 'sansio_asgi.core' not in loaded and 'sansio_asgi.logs' not in loaded, loaded\n"
        "    import logging\n"
        "    assert logging.getLevelName(5) == 'Level 5'  # logs names it TRACE\n",
        encoding="utf-8",
    )
    result = pytest_in(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_the_plugin_imports_neither_the_server_nor_its_logging() -> None:
    """Installed, the plugin loads in every pytest run of the user's: importing it must not
    import the server (its core, h11) nor ``logs``, which names logging level 5 TRACE."""
    code = (
        "import logging, sys\n"
        "import sansio_asgi.conformance.pytest_plugin\n"
        "names = ('sansio_asgi.core', 'sansio_asgi.logs', 'h11')\n"
        "loaded = [name for name in names if name in sys.modules]\n"
        "assert not loaded, loaded\n"
        "assert logging.getLevelName(5) == 'Level 5', logging.getLevelName(5)\n"
        "import sansio_asgi\n"
        "assert callable(sansio_asgi.run) and sansio_asgi.Config and sansio_asgi.Server\n"
        "assert 'sansio_asgi.core' in sys.modules  # the names still work, loaded on first use\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr


# -- the command line -------------------------------------------------------------------------


def conformance_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-m", "conformance", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
    )


def test_the_app_flags_of_the_command_line() -> None:
    target = "tests.apps.broken_app:app"
    graded = conformance_cli(
        *("--app", target, "--path", "/", "--path", "/upper", "--error-path", "/raise"),
        *("--check", "app.http.get", "--check", "app.http.exception"),
    )
    assert graded.returncode == 1, graded.stdout + graded.stderr  # a check failed
    assert f"ASGI conformance of the app: {target}" in graded.stdout
    assert "FAIL  app.http.get" in graded.stdout
    assert "GET /upper: broken rule: header name b'X-Upper' is not lowercased" in graded.stdout
    # /raise is named as raising: its exception is what the check exercises, not a finding.
    assert re.search(r"^pass  app\.http\.exception ", graded.stdout, re.MULTILINE)
    assert "1 passed, 1 failed, 0 not applicable" in graded.stdout

    listed = conformance_cli("--app", target, "--list")
    assert listed.returncode == 0, listed.stderr
    ids = [line.split()[0] for line in listed.stdout.splitlines() if line.strip()]
    assert ids == [check.id for check in apps.select(None)]

    misused = conformance_cli("--path", "/")
    assert misused.returncode == 2
    assert "--path" in misused.stderr.splitlines()[-1] and "need --app" in misused.stderr

    server_only = conformance_cli("--app", target, "--group", "lifespan")
    assert server_only.returncode == 2
    assert server_only.stderr.splitlines()[-1].endswith(
        "error: --group: only with --server, not with --app"
    )


def test_the_installed_command_loads_the_app_from_the_working_directory(tmp_path: Path) -> None:
    """The console script has no working directory on ``sys.path``; the app is found there
    first, as the server finds it, even when an installed package has the same top-level name
    (here a ``tests`` package, which some distributions install into site-packages)."""
    shadow = tmp_path / "site" / "tests"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    script = Path(sys.executable).parent / "asgi-conformance"
    graded = subprocess.run(
        [
            *(str(script), "--app", "tests.apps.broken_app:app"),
            *("--path", "/upper", "--check", "app.http.get"),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
    )
    assert graded.returncode == 1, graded.stderr  # broken_app's GET breaks the spec
    assert "FAIL  app.http.get" in graded.stdout, graded.stdout
