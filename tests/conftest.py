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

import os

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
