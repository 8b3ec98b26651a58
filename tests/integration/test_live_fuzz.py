"""Live fuzzing in CI: a bounded run of fuzz.py against a real server process, per driver.

``SANSIO_FUZZ_SECONDS`` sets how long each driver is fuzzed (20 s by default); longer runs are
made by hand with ``python -m tests.integration.fuzz --minutes N``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from . import fuzz

SECONDS = float(os.environ.get("SANSIO_FUZZ_SECONDS", "20"))
# The run, then the end checks: scenarios finish (8 s), the drain (30 s at most), SIGTERM (10 s).
TIMEOUT_S = int(SECONDS) + 180


@pytest.mark.timeout(TIMEOUT_S)
@pytest.mark.parametrize("driver", fuzz.DRIVERS)
def test_live_fuzz(driver: str, tmp_path: Path) -> None:
    report = fuzz.run(fuzz.Options(driver=driver, seconds=SECONDS, seed=1, workdir=tmp_path))
    print(report.summary())
    assert not report.failures, report.summary()
    assert report.stats["control_ok"] > 0
    assert report.stats["ws_accepted"] > 0
    assert report.deliberate_errors > 0  # the app's own failures were reached, and told apart


@pytest.mark.timeout(120)
def test_the_fuzzer_fails_a_naive_server(tmp_path: Path) -> None:
    """tests/naive_server.py logs tracebacks, has no WebSocket and dies on SIGTERM."""
    command = "{python} tests/naive_server.py {app} {port}"
    options = fuzz.Options(seconds=3, seed=1, workdir=tmp_path, command=command)
    report = fuzz.run(options)
    failures = "\n".join(report.failures)
    assert "(a)" in failures, report.summary()
    assert "(c) WebSocket echo" in failures
    assert "(d) SIGTERM" in failures
