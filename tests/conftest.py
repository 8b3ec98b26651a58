"""Hypothesis profiles for the whole suite, chosen before any test module is imported.

* ``dev`` (the default): new random examples on every run; a failure is saved in
  ``.hypothesis/`` and replayed first on the next run until it passes.
* ``ci`` (where ``CI`` is set, as CI services set it): the same examples on every run
  (``derandomize``), no example database to carry failures between runs, no timing checks
  (a slow runner is not a failure), and the ``@reproduce_failure`` blob printed with a failure.

``HYPOTHESIS_PROFILE=ci`` (or ``dev``) overrides the ``CI`` variable. A test's own
``@settings(...)`` is built on the loaded profile and overrides only what it names.

``--hypothesis-seed=N`` draws the examples from seed N under either profile: Hypothesis
ignores the seed when ``derandomize`` is on, so an explicit seed turns it off.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

_DEFAULT = settings.get_profile("default")  # Hypothesis's own, whatever it loaded for CI

settings.register_profile("dev", parent=_DEFAULT)
settings.register_profile(
    "ci",
    parent=_DEFAULT,
    derandomize=True,
    database=None,
    print_blob=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _profile_name() -> str:
    if os.environ.get("HYPOTHESIS_PROFILE"):
        return os.environ["HYPOTHESIS_PROFILE"]
    return "dev" if os.environ.get("CI", "").lower() in ("", "0", "false") else "ci"


settings.load_profile(_profile_name())


@pytest.hookimpl(trylast=True)  # after Hypothesis's plugin applied --hypothesis-profile
def pytest_configure(config: pytest.Config) -> None:
    current = settings.default
    if config.getoption("hypothesis_seed", None) is not None and current and current.derandomize:
        name = f"{settings.get_current_profile_name()}-seeded"
        settings.register_profile(name, parent=current, derandomize=False)
        settings.load_profile(name)


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """Put the loggers (and root, which fileConfig replaces) back as they were after the test,
    close the handlers it added, release its trace captures, and give it fresh rejection and
    HTTP/2 frame state (no earlier test's rejections count, nor an earlier frame cut short)."""
    from sansio_asgi import logs

    names = ("sansio_asgi", "sansio_asgi.error", "sansio_asgi.access", None)
    loggers = [logging.getLogger(name) for name in names]
    saved = [(lg, lg.handlers[:], lg.level, lg.propagate, lg.disabled) for lg in loggers]
    formatter = logs._access_formatter
    rejected = logs.rejected_requests
    frames = logs.h2_frames
    logs.rejected_requests = logs.RejectedRequestLog()
    logs.h2_frames = logs.H2FrameTrace()
    yield
    for handler in logs._captures[:]:
        logs.release_trace(handler)
    logs._access_formatter = formatter
    logs.rejected_requests = rejected
    logs.h2_frames = frames
    for logger, handlers, level, propagate, disabled in saved:
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
        logger.disabled = disabled
