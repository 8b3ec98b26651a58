"""The conformance suite as users get it from the wheel: no checkout, any server.

One wheel is built from a copy of the sources, installed without its dependencies into a
temporary folder, and run from an empty working directory with only that folder on
``PYTHONPATH``: ``python -m sansio_asgi.conformance`` and the ``asgi-conformance`` script grade
a real server. One server is sansio-asgi from the same wheel; the other runs its Python with
``-S`` (no site-packages, so neither sansio-asgi's dependencies nor anything else installed),
which proves that the probe apps the server imports need the standard library alone.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "sansio_asgi", "spec", "conformance")
TIMEOUT_S = 120


def _version(name: str) -> tuple[int, ...]:
    try:
        text = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return ()
    return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())


def _build_isolation() -> list[str]:
    """Build with this environment's setuptools when it can make wheels (bdist_wheel is in
    setuptools from 70.1, before that in ``wheel``); otherwise in pip's isolated environment."""
    setuptools = _version("setuptools")
    if setuptools >= (70, 1) or (setuptools >= (68,) and _version("wheel")):
        return ["--no-build-isolation"]
    return []


def run(
    command: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the sources (the build writes build/ and *.egg-info
    where it runs, which must not be the checkout)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    dist = base / "dist"
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *_build_isolation()]
    built = run([*command, "-w", str(dist), str(source)], cwd=base)
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = dist.glob("sansio_asgi-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed without its dependencies into a folder of its own."""
    target = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
    done = run([*command, "--target", str(target), str(wheel)], cwd=target)
    assert done.returncode == 0, done.stdout + done.stderr
    return target


@pytest.fixture()
def away(tmp_path: Path) -> Path:
    """A working directory with no checkout in it."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    return folder


def environment(installed: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(installed)
    env.pop("PYTHONHOME", None)
    return env


def test_the_wheel_ships_the_suite_with_its_probes(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    package = "sansio_asgi/conformance/"
    for folder in ("probes", "checks"):
        expected = {
            f"{package}{folder}/{path.name}"
            for path in (ROOT / "conformance" / folder).glob("*.py")
        }
        assert expected <= names, expected - names
        assert len(expected) > 5
    for name in ("__main__.py", "runner.py", "server.py", "README.md", "expected-failures.txt"):
        assert package + name in names
    assert "sansio_asgi/spec/asgi.json" in names  # what framework.load_spec reads
    assert not [name for name in names if name.startswith(("tests/", "conformance/"))]
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    assert "asgi-conformance = sansio_asgi.conformance.__main__:main" in scripts


def test_the_installed_suite_lists_its_checks_without_the_checkout(
    installed: Path, away: Path
) -> None:
    env = environment(installed)
    where = run(
        [
            sys.executable,
            "-c",
            "import importlib.util, json, sansio_asgi, sansio_asgi.conformance as suite; "
            "print(json.dumps([suite.__file__, sansio_asgi.__file__, "
            "importlib.util.find_spec('conformance') is None]))",
        ],
        cwd=away,
        env=env,
    )
    assert where.returncode == 0, where.stderr
    suite, package, no_top_level = json.loads(where.stdout)
    assert Path(suite).resolve().is_relative_to(installed.resolve()), suite
    assert Path(package).resolve().is_relative_to(installed.resolve()), package
    assert no_top_level  # the checkout's conformance/ is not importable from here

    listed = run([sys.executable, "-m", "sansio_asgi.conformance", "--list"], cwd=away, env=env)
    assert listed.returncode == 0, listed.stderr
    ids = [line.split()[0] for line in listed.stdout.splitlines()]
    assert len(ids) > 200
    assert {"http11.pipelining", "lifespan.state-in-scopes", "shutdown.exit-status"} <= set(ids)

    usage = run([sys.executable, "-m", "sansio_asgi.conformance", "--help"], cwd=away, env=env)
    assert usage.stdout.startswith("usage: python -m sansio_asgi.conformance ")
    assert "--app MODULE:APP" in usage.stdout


@pytest.mark.timeout(TIMEOUT_S)
def test_the_installed_suite_grades_sansio_asgi(installed: Path, away: Path) -> None:
    # HTTP/1.1 on the shared server, and the lifespan and shutdown checks that start servers
    # of their own with other probe apps.
    report = away / "report.json"
    server = f"{sys.executable} -m sansio_asgi {{app}} --port {{port}}"
    checks = ["--check", "http11.*", "--check", "lifespan.state-*", "--check", "shutdown.*"]
    command = [sys.executable, "-m", "sansio_asgi.conformance", "--server", server, *checks]
    graded = run([*command, "--json", str(report)], cwd=away, env=environment(installed))
    assert graded.returncode == 0, graded.stdout[-4000:] + graded.stderr[-4000:]
    results = json.loads(report.read_text())["results"]
    groups = {item["group"] for item in results}
    assert groups == {"http11", "lifespan", "shutdown"}
    assert len(results) > 40
    assert {item["status"] for item in results} == {"pass"}, [
        (item["id"], item["observed"]) for item in results if item["status"] != "pass"
    ]


@pytest.mark.timeout(TIMEOUT_S)
def test_the_script_grades_a_server_whose_python_has_no_packages(
    installed: Path, away: Path
) -> None:
    script = installed / "bin" / "asgi-conformance"
    assert script.is_file()
    env = environment(installed)
    usage = run([str(script), "--help"], cwd=away, env=env)
    assert usage.stdout.startswith("usage: asgi-conformance "), usage.stdout + usage.stderr

    # The naive server imports nothing but the standard library and the app it is given, and
    # its Python runs without site-packages: if the probes needed sansio_asgi (whose
    # dependencies are not in the installed folder) or any other package, it would not start.
    naive = away / "naive_server.py"
    shutil.copy2(ROOT / "tests" / "naive_server.py", naive)
    report = away / "report.json"
    server = f"{sys.executable} -S {naive} {{app}} {{port}}"
    checks = ["--check", "http11.pipelining", "--check", "http11.streamed-response"]
    graded = run(
        [str(script), "--server", server, *checks, "--json", str(report)], cwd=away, env=env
    )
    assert graded.returncode == 1, graded.stdout[-4000:] + graded.stderr[-4000:]
    statuses = {item["id"]: item["status"] for item in json.loads(report.read_text())["results"]}
    assert statuses == {"http11.pipelining": "fail", "http11.streamed-response": "pass"}
    assert "not conforming: http11.pipelining: fail" in graded.stderr


PLAIN_APP = """\
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
    elif scope["type"] == "http":
        while True:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"5")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"hello"})
    else:
        await receive()
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            echo = {"bytes": message.get("bytes"), "text": message.get("text")}
            await send({"type": "websocket.send", **echo})
"""


def test_the_installed_suite_grades_an_app_in_process(installed: Path, away: Path) -> None:
    (away / "plain_app.py").write_text(PLAIN_APP)
    report = away / "report.json"
    command = [sys.executable, "-m", "sansio_asgi.conformance", "--app", "plain_app:app"]
    graded = run([*command, "--json", str(report)], cwd=away, env=environment(installed))
    assert graded.returncode == 0, graded.stdout[-4000:] + graded.stderr[-4000:]
    summary = json.loads(report.read_text())["summary"]
    assert summary["pass"] > 5
    assert (summary["fail"], summary["error"]) == (0, 0)


SEEN_BY_THE_SERVER = """\
import importlib.util, json, os, sys
import conformance.probes as probes
print(json.dumps({
    "probes": os.path.realpath(probes.__file__),
    "top_level": [name for name in ("core", "logs", "config", "drivers", "conformance.checks")
                  if importlib.util.find_spec(name)],
    "imported": sorted({name.split(".")[0] for name in sys.modules} & {"sansio_asgi", "h11"}),
}))
"""

START_ONE = """\
import shlex, sys
from sansio_asgi.conformance.server import ServerProcess
code = sys.argv[1]
server = ServerProcess(
    f"{sys.executable} -S -c {shlex.quote(code)} {{app}} {{port}}", "conformance.probes:app",
    "127.0.0.1",
)
try:
    print(server.wait_exit(60))
    print(server.output())
finally:
    server.kill()
"""


def test_the_server_imports_the_probes_and_nothing_of_sansio_asgi(
    installed: Path, away: Path
) -> None:
    # What the server's Python sees on the path the suite gives it: the installed probes,
    # not sansio_asgi's modules as top-level ones (its parent folder on the path would make
    # "core" or "config" shadow a server's own), and it imports no package to load them.
    started = run(
        [sys.executable, "-c", START_ONE, SEEN_BY_THE_SERVER], cwd=away, env=environment(installed)
    )
    assert started.returncode == 0, started.stdout + started.stderr
    status, output = started.stdout.split("\n", 1)
    assert status == "0", output
    seen = json.loads(output)
    probes = Path(seen["probes"])
    assert probes == (installed / "sansio_asgi/conformance/probes/__init__.py").resolve()
    assert seen["top_level"] == ["conformance.checks"]  # there, but the server never loads it
    assert seen["imported"] == []


def test_the_checkout_runs_as_python_m_conformance() -> None:
    usage = run([sys.executable, "-m", "conformance", "--help"], cwd=ROOT)
    assert usage.stdout.startswith("usage: python -m conformance "), usage.stderr
    both = run([sys.executable, "-m", "conformance", "--server", "x", "--app", "m:a"], cwd=ROOT)
    assert both.returncode == 2
    assert "argument --app: not allowed with argument --server" in both.stderr
    neither = run([sys.executable, "-m", "conformance"], cwd=ROOT)
    assert neither.returncode == 2
    assert "python -m conformance: error: --server or --app is required" in neither.stderr
