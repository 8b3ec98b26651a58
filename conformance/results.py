"""``python -m conformance.results``: grade sansio-asgi and its peers, and write RESULTS.md.

Theory of operation
-------------------
Each server in ``SERVERS`` is a command template run by a Python environment: sansio-asgi's
two drivers by ``--python`` (default: this Python), the peers (uvicorn, hypercorn, daphne,
granian) by ``--peers-python`` (default: the same). Servers run one after the other, never at
once, so that no run's timing disturbs another's. Each run is saved as JSON under
``conformance/results/<name>.json``: the report's JSON (``report.as_json``) plus an
``environment`` block (the command, the packages' versions as that environment's
``importlib.metadata`` sees them, its Python and platform). RESULTS.md is rendered from those
files alone, so ``--render-only`` re-renders it without running anything.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .framework import ERROR, FAIL, GROUPS, NOT_APPLICABLE, PASS, Options
from .report import as_json
from .runner import run
from .server import CHECKOUT, HERE, ROOT, ServerError

# The checkout's own files; installed (python -m sansio_asgi.conformance.results), the runs and
# the page go to the current directory rather than into the installed package.
RESULTS_DIR = HERE / "results" if CHECKOUT else Path("results")
OUT = HERE / "RESULTS.md" if CHECKOUT else Path("RESULTS.md")
AUTOBAHN_MODES = ("quick", "full", "off")


@dataclasses.dataclass(frozen=True)
class Server:
    name: str
    template: str  # {python} is the environment's interpreter; {app} and {port} as for --server
    packages: tuple[str, ...]  # whose versions the report shows
    peer: bool  # run by --peers-python


SERVERS = (
    Server(
        "sansio-asyncio",
        "{python} -m sansio_asgi {app} --port {port}",
        ("sansio-asgi", "h11", "h2", "wsproto"),
        peer=False,
    ),
    Server(
        "sansio-selectors",
        "{python} -m sansio_asgi {app} --port {port} --driver selectors",
        ("sansio-asgi", "h11", "h2", "wsproto"),
        peer=False,
    ),
    Server(
        "uvicorn-h11",
        # Pinned: uvicorn picks its WebSocket library by what is installed.
        "{python} -m uvicorn {app} --port {port} --http h11 --ws wsproto",
        ("uvicorn", "h11", "wsproto", "uvloop"),
        peer=True,
    ),
    Server(
        "uvicorn-httptools",
        # uvicorn[standard]: httptools, uvloop and websockets.
        "{python} -m uvicorn {app} --port {port} --http httptools --loop uvloop --ws websockets",
        ("uvicorn", "httptools", "uvloop", "websockets"),
        peer=True,
    ),
    Server(
        "uvicorn-zttp",
        # uvicorn's own HTTP/2: zttp's parser with --http2 (HTTP/1.1 and h2c on one port).
        "{python} -m uvicorn {app} --port {port} --http zttp --http2 --ws wsproto",
        ("uvicorn", "zttp", "wsproto"),
        peer=True,
    ),
    Server(
        "hypercorn",
        "{python} -m hypercorn {app} --bind 127.0.0.1:{port}",
        ("hypercorn", "h11", "h2", "wsproto"),
        peer=True,
    ),
    Server(
        "daphne",
        "{python} -m daphne -b 127.0.0.1 -p {port} {app}",
        ("daphne", "twisted", "autobahn"),
        peer=True,
    ),
    Server(
        "granian",
        "{python} -m granian --interface asgi --host 127.0.0.1 --port {port} {app}",
        ("granian",),
        peer=True,
    ),
)

# Run in the server's environment: its Python, platform and the versions of ``packages``.
PROBE_ENVIRONMENT = """\
import importlib.metadata, json, platform, sys
versions = {}
for name in sys.argv[1:]:
    try:
        versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        pass
print(json.dumps({
    "python": platform.python_implementation() + " " + platform.python_version(),
    "platform": platform.platform(),
    "versions": versions,
}))
"""


def environment(python: str, packages: tuple[str, ...]) -> dict[str, Any]:
    """What ``python`` reports about itself and ``packages``; raises OSError if it won't run."""
    completed = subprocess.run(
        [python, "-c", PROBE_ENVIRONMENT, *packages],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if completed.returncode != 0:
        raise OSError(f"{python} failed: {completed.stderr.strip()[-300:]}")
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def checkout_revision() -> str:
    """The checkout's commit, with "+changes" when the work tree differs from it.

    The results this script writes do not count: a run of several servers changes them.
    Installed, there is no checkout, and no revision.
    """
    if not CHECKOUT:
        return ""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                *("git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"),
                *("--", ".", ":!conformance/results", ":!conformance/RESULTS.md"),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return head + ("+changes" if dirty else "")


def run_server(server: Server, python: str, options: Options, jobs: int) -> dict[str, Any]:
    """Grade one server; the JSON to save (with ``error`` instead of results if it won't start)."""
    template = server.template.replace("{python}", python)
    env = environment(python, server.packages)
    env["command"] = template
    env["cpus"] = os.cpu_count() or 0
    env["autobahn"] = options.autobahn_cases
    if not server.peer:
        env["revision"] = checkout_revision()
    # sansio-asgi runs from the checkout (on PYTHONPATH) whether or not it is installed.
    missing = server.peer and server.packages[0] not in env["versions"]
    started = time.monotonic()
    if missing:
        data: dict[str, Any] = {
            "server": template,
            "name": server.name,
            "started": now(),
            "error": f"{server.packages[0]} is not installed in {python}",
            "results": [],
        }
    else:
        try:
            outcome = run(template, name=server.name, options=options, jobs=jobs)
            data = as_json(outcome)
        except ServerError as exc:
            data = {
                "server": template,
                "name": server.name,
                "started": now(),
                "error": f"the server did not start: {exc}",
                "results": [],
            }
    env["duration_s"] = round(time.monotonic() - started, 1)
    data["environment"] = env
    return data


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# -- rendering

MARK = {PASS: "pass", FAIL: "**FAIL**", NOT_APPLICABLE: "n/a", ERROR: "**ERROR**"}


def load(results_dir: Path) -> list[dict[str, Any]]:
    """The saved runs, in ``SERVERS`` order, then any others by name."""
    runs = []
    for path in sorted(results_dir.glob("*.json")):
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        runs.append(data)
    order = {server.name: index for index, server in enumerate(SERVERS)}
    runs.sort(key=lambda data: (order.get(data["name"], len(order)), data["name"]))
    return runs


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _versions(data: dict[str, Any]) -> str:
    env = data.get("environment", {})
    versions = ", ".join(f"{name} {version}" for name, version in env.get("versions", {}).items())
    revision = env.get("revision")
    if revision:
        versions += f" (checkout {revision})"
    return versions or "?"


def _shown_command(command: str) -> str:
    """The command without the local path of its interpreter."""
    program, _, rest = command.partition(" ")
    if Path(program).name.startswith("python"):
        return f"python {rest}"
    return command


def _counts(results: list[dict[str, Any]]) -> dict[str, int]:
    counts = {PASS: 0, FAIL: 0, NOT_APPLICABLE: 0, ERROR: 0}
    for result in results:
        counts[result["status"]] = counts.get(result["status"], 0) + 1
    return counts


def _summary_cell(results: list[dict[str, Any]]) -> str:
    if not results:
        return "-"
    counts = _counts(results)
    failures = counts[FAIL] + counts[ERROR]
    shown = f"**{failures}**" if failures else "0"
    return f"{counts[PASS]} / {shown} / {counts[NOT_APPLICABLE]}"


def render(runs: list[dict[str, Any]]) -> str:
    names = [data["name"] for data in runs]
    started = sorted(data["started"] for data in runs)
    first_env = runs[0].get("environment", {}) if runs else {}
    lines = [
        "# Conformance results",
        "",
        "Generated by `python -m conformance.results` from the runs saved in",
        "`conformance/results/`; see `conformance/README.md` for what each check means.",
        "",
    ]
    if runs:
        lines += [
            f"- Runs: {started[0]} to {started[-1]} (UTC)",
            f"- Machine: {first_env.get('platform', '?')}, {first_env.get('cpus', '?')} CPUs",
            f"- Autobahn cases: {first_env.get('autobahn', '?')} selection",
            "",
        ]
    lines += [
        "## Servers",
        "",
        "`python` is each environment's interpreter: sansio-asgi runs from the checkout, the",
        "peers from a venv of their own (the `peers` extra).",
        "",
        "| server | versions | Python | command | took |",
    ]
    lines.append("| --- | --- | --- | --- | --- |")
    for data in runs:
        env = data.get("environment", {})
        took = f"{env['duration_s']:g} s" if "duration_s" in env else "?"
        lines.append(
            f"| {data['name']} | {_cell(_versions(data))} | {env.get('python', '?')} "
            f"| `{_cell(_shown_command(env.get('command', data['server'])))}` | {took} |"
        )
    errors = [data for data in runs if data.get("error")]
    if errors:
        lines += [""] + [f"- {data['name']}: not graded: {data['error']}" for data in errors]

    lines += [
        "",
        "## Summary",
        "",
        "Each cell: passed / **failed** / not applicable (errors of the suite count as failed).",
        "",
        "| group | " + " | ".join(names) + " |",
        "| --- |" + " --- |" * len(names),
    ]
    for group, title in GROUPS.items():
        cells = [
            _summary_cell([r for r in data["results"] if r["group"] == group]) for data in runs
        ]
        if any(cell != "-" for cell in cells):
            lines.append(f"| {group}: {_cell(title)} | " + " | ".join(cells) + " |")
    lines.append(
        "| **all** | " + " | ".join(_summary_cell(data["results"]) for data in runs) + " |"
    )

    checks: dict[str, dict[str, Any]] = {}
    for data in runs:
        for result in data["results"]:
            checks.setdefault(result["id"], result)
    order = {group: index for index, group in enumerate(GROUPS)}
    ordered = sorted(checks.values(), key=lambda r: (order.get(r["group"], len(order)), r["id"]))
    status = {
        (data["name"], result["id"]): result["status"]
        for data in runs
        for result in data["results"]
    }
    lines += [
        "",
        "## Every check",
        "",
        "| check | level | clause | " + " | ".join(names) + " |",
        "| --- | --- | --- |" + " --- |" * len(names),
    ]
    for result in ordered:
        cells = [MARK.get(status.get((name, result["id"]), ""), "-") for name in names]
        lines.append(
            f"| `{result['id']}` | {result['level']} | {_cell(result['clause'])} | "
            + " | ".join(cells)
            + " |"
        )

    lines += ["", "## Failures by server", ""]
    for data in runs:
        bad = [r for r in data["results"] if r["status"] in (FAIL, ERROR)]
        lines.append(f"### {data['name']} ({_cell(_versions(data))})")
        lines.append("")
        if data.get("error"):
            lines += [f"Not graded: {data['error']}", ""]
            continue
        if not bad:
            lines += ["No failures.", ""]
            continue
        for result in bad:
            what = "suite error" if result["status"] == ERROR else result["level"]
            lines.append(
                f"- `{result['id']}` ({what}, {result['clause']}): {_cell(result['observed'])}"
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}.results",
        description="Grade sansio-asgi and its peers with the conformance suite; write RESULTS.md.",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        metavar="PATH",
        help="the Python that runs sansio-asgi (default: this one)",
    )
    parser.add_argument(
        "--peers-python",
        metavar="PATH",
        help="the Python whose environment has the peers (default: --python)",
    )
    parser.add_argument(
        "--server",
        action="append",
        choices=[server.name for server in SERVERS],
        help="grade only this server (repeatable); the others' saved runs are kept",
    )
    parser.add_argument("--out", type=Path, default=OUT, help="where to write RESULTS.md")
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        help="where each run's JSON is saved and read from",
    )
    parser.add_argument(
        "--autobahn",
        choices=AUTOBAHN_MODES,
        default="quick",
        help="which Autobahn cases kosoku runs (default: quick)",
    )
    parser.add_argument("--jobs", type=int, default=4, help="checks run at once (default: 4)")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="only re-render RESULTS.md from the saved JSON files",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if not args.render_only:
        args.results_dir.mkdir(parents=True, exist_ok=True)
        options = Options(autobahn_cases=args.autobahn)
        for server in SERVERS:
            if args.server and server.name not in args.server:
                continue
            python = (args.peers_python or args.python) if server.peer else args.python
            print(f"grading {server.name} ...", file=sys.stderr, flush=True)
            try:
                data = run_server(server, python, options, args.jobs)
            except OSError as exc:
                print(f"  skipped: {exc}", file=sys.stderr)
                continue
            path = args.results_dir / f"{server.name}.json"
            path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            counts = _counts(data["results"])
            print(
                f"  {counts[PASS]} passed, {counts[FAIL]} failed, "
                f"{counts[NOT_APPLICABLE]} n/a, {counts[ERROR]} errors"
                + (f"; {data['error']}" if data.get("error") else "")
                + f" in {data['environment']['duration_s']:g} s",
                file=sys.stderr,
            )
    runs = load(args.results_dir)
    if not runs:
        print(f"no saved runs in {args.results_dir}", file=sys.stderr)
        return 1
    args.out.write_text(render(runs), encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
