"""Running the selected checks against one server command, group by group.

The groups that share a server run first, each group's checks in parallel threads, against
one process serving ``conformance.probes:app``. The judges that read what the others saw
(httplint) run after them. The groups whose checks start servers of their own (lifespan,
shutdown) run last.
"""

from __future__ import annotations

import dataclasses
import datetime
import fnmatch
import importlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from .framework import (
    ERROR,
    GROUPS,
    REGISTRY,
    Check,
    Context,
    Exchange,
    Options,
    Outcome,
    Result,
    run_check,
)
from .server import ServerError, ServerProcess

CHECK_MODULES = (
    "http11",
    "asgi_http",
    "websocket",
    "extensions",
    "http2",
    "lifespan",
    "shutdown",
    "judges",
)
SHARED_GROUPS = (
    "http11",
    "asgi-http",
    "websocket",
    "extensions",
    "http2",
    "httplint",
    "autobahn",
)
OWN_SERVER_GROUPS = ("lifespan", "shutdown")
# As the server's Python imports it, from the folder ``server.probe_path`` puts on its path,
# whether this suite is a checkout's conformance/ or the installed sansio_asgi.conformance.
PROBE_APP = "conformance.probes:app"


def load_checks() -> dict[str, Check]:
    # Relative to this package, which is ``conformance`` in a checkout and
    # ``sansio_asgi.conformance`` installed: the checks register in this package's REGISTRY.
    for name in CHECK_MODULES:
        importlib.import_module(f".checks.{name}", __package__)
    return REGISTRY


def select(
    checks: Iterable[Check], groups: list[str] | None, patterns: list[str] | None
) -> list[Check]:
    chosen = []
    for item in checks:
        if groups and item.group not in groups:
            continue
        if patterns and not any(fnmatch.fnmatchcase(item.id, pattern) for pattern in patterns):
            continue
        chosen.append(item)
    return chosen


@dataclasses.dataclass
class Run:
    server: str
    name: str
    started: str
    outcomes: list[Outcome]
    server_output: str = ""


def run(
    template: str,
    *,
    name: str = "",
    groups: list[str] | None = None,
    patterns: list[str] | None = None,
    options: Options | None = None,
    jobs: int = 4,
) -> Run:
    """Grade the server that ``template`` starts; raises ServerError if it will not start."""
    options = options or Options()
    chosen = select(load_checks().values(), groups, patterns)
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    outcome_run = Run(template, name or template, started, [])
    exchanges: list[Exchange] = []

    def launch(app: str) -> ServerProcess:
        process = ServerProcess(template, app, options.host)
        try:
            process.wait_ready(options.startup_timeout_s)
        except ServerError:
            process.kill()
            raise
        return process

    def spawn(app: str) -> ServerProcess:
        return ServerProcess(template, app, options.host)

    shared = [item for item in chosen if item.group in SHARED_GROUPS]
    if shared:
        server = launch(PROBE_APP)
        try:
            context = Context(server, options, launch, exchanges, spawn)
            for group in SHARED_GROUPS:
                batch = [item for item in shared if item.group == group]
                outcome_run.outcomes += _run_batch(batch, context, jobs)
            outcome_run.server_output = server.output()
        finally:
            server.kill()

    own = [item for item in chosen if item.group in OWN_SERVER_GROUPS]
    context = Context(None, options, launch, exchanges, spawn)
    for group in OWN_SERVER_GROUPS:
        batch = [item for item in own if item.group == group]
        outcome_run.outcomes += _run_batch(batch, context, max(1, min(jobs, 2)))
    order = {group: index for index, group in enumerate(GROUPS)}
    outcome_run.outcomes.sort(key=lambda outcome: (order[outcome.check.group], outcome.check.id))
    return outcome_run


def _run_batch(batch: list[Check], context: Context, jobs: int) -> list[Outcome]:
    if not batch:
        return []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda item: _guarded(item, context), batch))


def _guarded(item: Check, context: Context) -> Outcome:
    try:
        return run_check(item, context)
    except ServerError as exc:
        return Outcome(item, Result(ERROR, f"could not start the server: {exc}"), 0.0)
