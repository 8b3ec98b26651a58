"""System programs the integration tests drive, installed with apt-get when missing.

A missing program is never a reason to skip: the tests run as root on Debian, so the set-up
installs the package, and when that fails the tests fail with apt-get's own output.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

APT_TIMEOUT_S = 900.0  # chromium alone is some 100 MiB to fetch and unpack
# Another apt-get or dpkg (another test session, unattended upgrades) may hold the lock:
# wait for it rather than fail at once.
APT_LOCK_WAIT = ["-o", "DPkg::Lock::Timeout=600"]
SEARCHED = ("/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/lib/chromium")


def find_binary(command: str) -> str | None:
    """``command``'s path: on PATH, or in the directories Debian puts programs root runs."""
    for candidate in (shutil.which(command), *(f"{d}/{command}" for d in SEARCHED)):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _apt_get(*args: str) -> subprocess.CompletedProcess[str] | str:
    """apt-get's result, or why it could not run."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    argv = ["apt-get", *APT_LOCK_WAIT, *args]
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=APT_TIMEOUT_S, env=env, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{' '.join(argv)}: {exc}"


def apt_binary(command: str, package: str) -> str:
    """The path of ``command``, installing Debian's ``package`` with apt-get when it is not
    there (a first attempt with the package lists as they are, then after ``apt-get update``).
    Fails the calling test with apt-get's output when that does not give ``command``."""
    if found := find_binary(command):
        return found
    report = []
    install = ("install", "-y", "-q", package)
    for steps in ([install], [("update", "-q"), install]):
        for step in steps:
            done = _apt_get(*step)
            if isinstance(done, str):
                report.append(done)
                break
            if done.returncode != 0:
                report.append(
                    f"apt-get {' '.join(step)} exited {done.returncode}:\n"
                    f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
                )
                break
        else:
            if found := find_binary(command):
                return found
            report.append(f"apt-get installed {package}, but no {command} is on PATH")
    pytest.fail(f"{command} is missing, and installing {package} failed:\n" + "\n".join(report))
