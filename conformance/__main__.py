"""``python -m conformance --server 'COMMAND with {app} and {port}'``."""

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
  python -m conformance --server 'python -m sansio_asgi {app} --port {port}'
  python -m conformance --server 'uvicorn {app} --port {port} --http h11' --json uvicorn.json
  python -m conformance --server 'hypercorn {app} --bind 127.0.0.1:{port}' --group websocket
"""


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m conformance",
        description="Grade an ASGI server against the ASGI spec and the HTTP/WebSocket RFCs.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--server",
        metavar="COMMAND",
        help="the command that serves {app} (module:attribute) on 127.0.0.1:{port}",
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
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.list:
        for item in select(load_checks().values(), args.group, args.check):
            print(f"{item.id:<44} {item.level:<7} {item.clause}  {item.title}")
        return 0
    if not args.server:
        print("python -m conformance: error: --server is required", file=sys.stderr)
        return 2
    if args.jobs < 1:
        print("python -m conformance: error: --jobs must be at least 1", file=sys.stderr)
        return 2
    expected = {}
    if args.expected_failures:
        try:
            expected = read_expected_failures(args.expected_failures)
        except OSError as exc:
            print(f"python -m conformance: error: --expected-failures: {exc}", file=sys.stderr)
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
        print(f"python -m conformance: error: {exc}", file=sys.stderr)
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
