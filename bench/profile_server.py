"""Profile one sansio-asgi driver under load, with cProfile or py-spy, and print where time goes.

Usage (from the repository root, with the bench venv)::

    /work/peersvenv/bin/python bench/profile_server.py --driver asyncio --app hello --duration 5
    /work/peersvenv/bin/python bench/profile_server.py --profiler py-spy --app ws
    /work/peersvenv/bin/python bench/profile_server.py --profiler py-spy --out /tmp/hello.txt

The load is the benchmark's (``wrk``, ``h2load`` with ``--h2``, or ``bench/ws_client.py`` for
``ws``), on the other CPU.

- ``cprofile`` (default): the server runs as ``python -m cProfile -o PATH -m sansio_asgi ...``
  and is stopped with SIGINT so cProfile writes its stats. cProfile slows every Python call
  down, small ones most, so read its output for where the time goes, not for how much there
  is. For the selectors driver only the main (socket) thread is profiled, not the app thread.
- ``py-spy``: a sampling profiler outside the process (``py-spy record --pid``, ``--rate``
  samples per second): it sees every thread and C calls on Python's stack. It stops the server
  for each sample (about a quarter slower): without stopping it (``--nonblocking``), on Python
  3.11 about 40% of the stacks come back cut short and trivial functions get large shares.
  It needs ``pip install py-spy`` and the right to ptrace the server (root, or
  ``kernel.yama.ptrace_scope=0``). It prints the functions with the most samples on
  top of the stack (self) and anywhere on it (inclusive); ``--out PATH`` keeps the collapsed
  stacks, which flame graph tools (flamegraph.pl, inferno, speedscope) read.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import pstats
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from http2_load import h2load
from run import (
    APPS,
    WRK_POST,
    Case,
    free_port,
    pinned,
    running,
    server_command,
    wrk,
    ws_client,
)

PY_SPY_RATE = 250  # samples/s: enough for a 5 s profile, cheap for the server


def load(port: int, case: Case, args: argparse.Namespace, script: Path) -> str:
    if case.mode == "ws":
        return json.dumps(ws_client(port, args.duration, args.ws_connections))
    if case.mode == "h2":
        url, streams = f"http://127.0.0.1:{port}/", args.h2_streams
        h2 = (0, args.h2_connections, streams, script.parent)
        return h2load(pinned(1, []), url, case.app, *h2, duration_s=args.duration).stdout
    return wrk(port, case, args.duration, args.connections, script).stdout


def py_spy_path(python: str) -> str | None:
    beside = Path(python).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def summarize_py_spy(raw: Path, top: int) -> str:
    """Self and inclusive sample counts per function from py-spy's raw (collapsed) output:
    one line per distinct stack, ``frame;frame;...;frame COUNT``, outermost first."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = bare = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [f.strip() for f in stack.split(";") if f.strip()]
        if not frames:  # sampled outside any Python frame
            bare += count
            continue
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    out = [f"{total} samples, {bare} of them outside any Python frame"]
    for title, counter in (("self (top of stack)", own), ("inclusive (anywhere)", inclusive)):
        out += ["", f"{title}:", "    %  samples  function"]
        for frame, count in counter.most_common(top):
            out.append(f"{100 * count / max(total, 1):5.1f} {count:8d}  {frame}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiler", choices=("cprofile", "py-spy"), default="cprofile")
    parser.add_argument("--driver", choices=("asyncio", "selectors"), default="asyncio")
    parser.add_argument("--app", choices=APPS, default="hello")
    parser.add_argument("--close", action="store_true", help="wrk sends Connection: close")
    parser.add_argument("--h2", action="store_true", help="h2load over h2c instead of wrk")
    parser.add_argument("--h2-connections", type=int, default=10)
    parser.add_argument("--h2-streams", type=int, default=10)
    parser.add_argument("--duration", type=int, default=5, help="seconds of load (default: 5)")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--ws-connections", type=int, default=10)
    parser.add_argument("--top", type=int, default=25, help="how many functions to print")
    parser.add_argument("--sort", default="tottime", help="pstats sort key (default: tottime)")
    parser.add_argument("--python", default=sys.executable, help="the server's interpreter")
    parser.add_argument(
        "--out", type=Path, help="keep the .prof file (cprofile) or the collapsed stacks (py-spy)"
    )
    args = parser.parse_args(argv)
    mode = "close" if args.close else "h2" if args.h2 else "keep-alive"
    case = Case(args.app, "ws" if args.app == "ws" else mode)
    name = f"sansio-{args.driver}"
    spy = py_spy_path(args.python) if args.profiler == "py-spy" else None
    if args.profiler == "py-spy" and not spy:
        parser.error("py-spy not found: pip install py-spy (into the bench venv)")

    with tempfile.TemporaryDirectory(prefix="sansio-profile-") as tmp:
        workdir = Path(tmp)
        script = workdir / "post.lua"
        script.write_text(WRK_POST)
        port = free_port()
        server = server_command(name, args.python, args.app, port)
        log = workdir / "server.log"
        if args.profiler == "cprofile":
            prof = args.out or workdir / "server.prof"
            server[1:3] = ["-m", "cProfile", "-o", str(prof), "-m", "sansio_asgi"]
            with running(server, port, log):
                report = load(port, case, args, script)
            print(report)
            print(log.read_text(errors="replace"))
            out = io.StringIO()
            stats = pstats.Stats(str(prof), stream=out)
            stats.strip_dirs().sort_stats(args.sort).print_stats(args.top)
            print(out.getvalue())
            return 0
        assert spy is not None
        raw = workdir / "py-spy.txt"
        with running(server, port, log) as started:
            record = [spy, "record", "--pid", str(started.proc.pid), "--rate", str(PY_SPY_RATE)]
            record += ["--function", "--duration", str(args.duration + 1)]
            sampler = subprocess.Popen(
                pinned(1, [*record, "--format", "raw", "--output", str(raw)]),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            try:
                report = load(port, case, args, script)
            finally:
                spy_output = sampler.communicate(timeout=args.duration + 30)[0]
        print(report)
        print(log.read_text(errors="replace"))
        if sampler.returncode != 0 or not raw.exists():
            print(spy_output.decode(errors="replace"), file=sys.stderr)
            return 1
        print(summarize_py_spy(raw, args.top))
        if args.out:
            shutil.copyfile(raw, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
