"""``asgi-conformance --server 'COMMAND with {app} and {port}'``, or ``--app MODULE:APP``.

The same command is ``python -m sansio_asgi.conformance`` where sansio-asgi is installed, and
``python -m conformance`` from a checkout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .framework import GROUPS, Options
from .report import read_expected_failures, table, verdict, write_json
from .runner import load_checks, run, select
from .server import ServerError

EXAMPLES = """\
examples:
  PROG --server 'python -m sansio_asgi {app} --port {port}'
  PROG --server 'uvicorn {app} --port {port} --http h11' --json uvicorn.json
  PROG --server 'hypercorn {app} --bind 127.0.0.1:{port}' --group websocket
  PROG --app myproject.asgi:application
"""


def program() -> str:
    """The name this command was run as, for its usage line and its errors."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name == f"{__package__}.__main__":
        return f"python -m {__package__}"
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return name if name.startswith("asgi-conformance") else "asgi-conformance"


# The options that grade a running server, which an app graded in process has no use for.
SERVER_ONLY = {
    "--name": "name",
    "--group": "group",
    "--expected-failures": "expected_failures",
    "--jobs": "jobs",
    "--signal": "signal",
    "--startup-timeout": "startup_timeout",
    "--autobahn": "autobahn",
}


def parse(argv: list[str] | None, prog: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Grade an ASGI server against the ASGI spec and the HTTP/WebSocket RFCs.",
        epilog=EXAMPLES.replace("PROG", prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--server",
        metavar="COMMAND",
        help="the command that serves {app} (module:attribute) on 127.0.0.1:{port}",
    )
    target.add_argument(
        "--app",
        metavar="MODULE:APP",
        help="grade an ASGI application in process, through the real sans-IO core, no sockets",
    )
    parser.add_argument("--name", default="", help="the server's name in the report")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    parser.add_argument(
        "--group", action="append", choices=sorted(GROUPS), help="run only this group (repeatable)"
    )
    parser.add_argument(
        "--check", action="append", metavar="GLOB", help="run only checks whose id matches"
    )
    parser.add_argument(
        "--expected-failures",
        type=Path,
        metavar="PATH",
        help="checks allowed to fail, one id per line with '# why'",
    )
    parser.add_argument("--jobs", type=int, default=4, help="checks run at once (default: 4)")
    parser.add_argument(
        "--signal",
        default="TERM",
        choices=["TERM", "INT"],
        help="the signal that asks the server to shut down gracefully (default: TERM)",
    )
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=20.0,
        metavar="S",
        help="how long the server may take to accept connections (default: 20)",
    )
    parser.add_argument(
        "--autobahn",
        default="quick",
        choices=["quick", "full", "off"],
        help="which Autobahn cases kosoku runs: a quick selection (default), all, or none",
    )
    parser.add_argument("--list", action="store_true", help="list the checks and exit")
    app_mode = parser.add_argument_group("with --app")
    app_mode.add_argument(
        "--path",
        action="append",
        metavar="PATH",
        help="a path the app answers with 200 to GET (repeatable; default: /)",
    )
    app_mode.add_argument(
        "--post-path", metavar="PATH", help="a path that reads a POST body (default: the first)"
    )
    app_mode.add_argument(
        "--websocket-path",
        metavar="PATH",
        help="a WebSocket route (default: tries /ws, /websocket, /ws/ and the paths)",
    )
    app_mode.add_argument(
        "--error-path",
        action="append",
        metavar="PATH",
        help="a path whose handler raises on purpose (repeatable; without one, that check is n/a)",
    )
    args = parser.parse_args(argv)
    app_only = ("path", "post_path", "websocket_path", "error_path")
    if not args.app and any(getattr(args, name) for name in app_only):
        parser.error("--path, --post-path, --websocket-path and --error-path need --app")
    if args.app:
        server_only = [
            flag
            for flag, name in SERVER_ONLY.items()
            if getattr(args, name) != parser.get_default(name)
        ]
        if server_only:
            parser.error(f"{', '.join(server_only)}: only with --server, not with --app")
    return args


def main(argv: list[str] | None = None) -> int:
    prog = program()
    args = parse(argv, prog)
    if args.app:
        from .apps import listing
        from .apps import main as app_main

        if args.list:
            print(listing(args.check))
            return 0
        return app_main(
            args.app,
            patterns=args.check,
            json_path=args.json,
            paths=args.path,
            post_path=args.post_path,
            websocket_path=args.websocket_path,
            error_paths=args.error_path,
        )
    if args.list:
        for item in select(load_checks().values(), args.group, args.check):
            print(f"{item.id:<44} {item.level:<7} {item.clause}  {item.title}")
        return 0
    if not args.server:
        print(f"{prog}: error: --server or --app is required", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print(f"{prog}: error: --jobs must be at least 1", file=sys.stderr)
        return 2
    expected = {}
    if args.expected_failures:
        try:
            expected = read_expected_failures(args.expected_failures)
        except OSError as exc:
            print(f"{prog}: error: --expected-failures: {exc}", file=sys.stderr)
            return 2
    options = Options(
        startup_timeout_s=args.startup_timeout,
        stop_signal=args.signal,
        autobahn_cases=args.autobahn,
    )
    try:
        result = run(
            args.server,
            name=args.name,
            groups=args.group,
            patterns=args.check,
            options=options,
            jobs=args.jobs,
        )
    except ServerError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    print(table(result))
    if args.json:
        write_json(result, args.json)
    problems = verdict(result, expected, load_checks())
    for problem in problems:
        print(f"not conforming: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
