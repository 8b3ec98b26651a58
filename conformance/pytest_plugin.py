"""``pytest --asgi-conformance module:app``: the suite's app checks as test items.

The plugin is an entry point of the package (``pytest11``), so pytest loads it in every run of
every project where sansio-asgi is installed. Without ``--asgi-conformance`` it adds its options
and does nothing else: ``apps`` (and sansio-asgi's server with it) is imported only when the
option is given.

With the option, one item per app check (``apps.CHECKS``) joins whatever else pytest collects,
named by the check's id: ``asgi-conformance[module:app]::app.http.get``. An item passes when
the check has no findings, fails with the findings' text (the request, what the app sent, what
was wrong and the clause), and is skipped when the check does not apply to the app (no WebSocket
route, a lifespan the app does not support). ``-k`` selects among them as among any tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .apps import AppResult, Context

_CONTEXT: pytest.StashKey[Context] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("asgi-conformance", "ASGI conformance of an application")
    group.addoption(
        "--asgi-conformance",
        metavar="MODULE:APP",
        default=None,
        help="grade this ASGI application with the conformance suite's app checks "
        "(one test item per check)",
    )
    group.addoption(
        "--asgi-conformance-path",
        action="append",
        metavar="PATH",
        default=None,
        help="a path the HTTP checks request (repeatable; default: /)",
    )
    group.addoption(
        "--asgi-conformance-post-path",
        metavar="PATH",
        default=None,
        help="where the checks that send a body POST it (default: the first path)",
    )
    group.addoption(
        "--asgi-conformance-websocket-path",
        metavar="PATH",
        default=None,
        help="the app's WebSocket route (default: found by trying /ws, /websocket and the paths)",
    )
    group.addoption(
        "--asgi-conformance-error-path",
        action="append",
        metavar="PATH",
        default=None,
        help="a route whose handler raises, for app.http.exception (repeatable; default: "
        "none, and that check is skipped)",
    )
    group.addoption(
        "--asgi-conformance-check",
        action="append",
        metavar="GLOB",
        default=None,
        help="only the app checks whose id matches (repeatable)",
    )


@pytest.hookimpl(tryfirst=True)  # before -k and -m deselect among the items
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    target = config.getoption("asgi_conformance")
    if not target:
        return
    from . import apps

    try:
        app = apps.load(target)
    except Exception as exc:
        raise pytest.UsageError(f"--asgi-conformance {target}: {exc}") from None
    options = apps.AppOptions(
        paths=tuple(config.getoption("asgi_conformance_path") or ("/",)),
        post_path=config.getoption("asgi_conformance_post_path"),
        websocket_path=config.getoption("asgi_conformance_websocket_path"),
        error_paths=tuple(config.getoption("asgi_conformance_error_path") or ()),
    )
    config.stash[_CONTEXT] = apps.Context(app, options)
    checks = apps.select(config.getoption("asgi_conformance_check"))
    collector = AppChecks.from_parent(session, name=f"asgi-conformance[{target}]")
    items.extend(
        AppCheckItem.from_parent(collector, name=item.id, check_id=item.id) for item in checks
    )


class AppChecks(pytest.Collector):
    """The parent of the app check items (they are made by the hook above, not collected)."""

    def collect(self) -> list[pytest.Item]:
        return []


class AppCheckFailed(Exception):
    """An app check found something: its findings (or what broke) are the failure's text."""

    def __init__(self, result: AppResult) -> None:
        super().__init__(result.observed)
        self.result = result


class AppCheckItem(pytest.Item):
    """One app check, run on a server of its own when the item runs."""

    def __init__(self, *, check_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check_id = check_id

    def runtest(self) -> None:
        from . import apps
        from .framework import NOT_APPLICABLE, PASS

        check = apps.CHECKS[self.check_id]
        outcome = apps.run_check(check, self.config.stash[_CONTEXT])
        result = outcome.result
        if result.status == NOT_APPLICABLE:
            pytest.skip(f"{self.check_id}: not applicable: {result.observed}")
        if result.status != PASS:
            raise AppCheckFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if not isinstance(excinfo.value, AppCheckFailed):
            return super().repr_failure(excinfo)
        from . import apps

        result = excinfo.value.result
        check = apps.CHECKS[self.check_id]
        lines = [f"{check.id}: {check.title} ({check.clause})"]
        if result.findings:
            lines += [f"- {line}" for line in apps.grouped(result.findings)]
        else:
            lines.append(f"{result.status}: {result.observed}")
        if result.observed:
            lines.append(f"observed: {result.observed}")
        return "\n".join(lines)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"asgi-conformance {self.check_id}"
