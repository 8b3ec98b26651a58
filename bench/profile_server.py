"""Profile one sansio-asgi driver under wrk load with cProfile, and print the top functions.

Usage (from the repository root, with the bench venv)::

    /work/benchvenv/bin/python bench/profile_server.py --driver asyncio --app hello --duration 5

The server runs as ``python -m cProfile -o PATH -m sansio_asgi ...``, is loaded for
``--duration`` seconds, then stopped with SIGINT so cProfile writes its stats. cProfile slows
every Python call down, so read the output for where the time goes, not for how much there is.
For the selectors driver only the main (socket) thread is profiled, not the app thread.
"""

from __future__ import annotations

import argparse
import io
import pstats
import sys
import tempfile
from pathlib import Path

from run import APPS, HOST, PY, WRK_POST, free_port, running, wrk


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--driver", choices=("asyncio", "selectors"), default="asyncio")
    parser.add_argument("--app", choices=APPS, default="hello")
    parser.add_argument("--duration", type=int, default=5, help="seconds of load (default: 5)")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--top", type=int, default=25, help="how many functions to print")
    parser.add_argument("--sort", default="tottime", help="pstats sort key (default: tottime)")
    parser.add_argument("--out", type=Path, help="keep the .prof file here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="sansio-profile-") as tmp:
        workdir = Path(tmp)
        prof = args.out or workdir / "server.prof"
        script = workdir / "post.lua"
        script.write_text(WRK_POST)
        port = free_port()
        server = [PY, "-m", "cProfile", "-o", str(prof), "-m", "sansio_asgi"]
        server += [f"bench.apps:{args.app}", "--host", HOST, "--port", str(port)]
        server += ["--driver", args.driver, "--no-access-log"]
        with running(server, port, workdir / "server.log"):
            report = wrk(port, args.app, args.duration, args.connections, script)
        print(report)
        print((workdir / "server.log").read_text(errors="replace"))
        out = io.StringIO()
        stats = pstats.Stats(str(prof), stream=out)
        stats.strip_dirs().sort_stats(args.sort).print_stats(args.top)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
