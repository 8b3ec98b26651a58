"""File watchers for ``--reload``.

The supervisor (``supervisor.py``) runs one worker and one watcher; when the watcher sees a
change it restarts the worker. A watcher runs in a thread of its own and hands over what changed
through ``changes()``, calling ``wake()`` so that the supervisor's loop, asleep in ``select()``,
looks at once.

Two watchers behave alike: ``watchfiles`` (OS notifications; the ``reload`` extra) when it is
installed, otherwise ``PollingWatcher``, which compares modification times every
``--reload-delay`` seconds. Both honour the same ``FileFilter``: ``--reload-include`` and
``--reload-exclude`` globs, with uvicorn's defaults.
"""

from __future__ import annotations

import fnmatch
import importlib
import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

error_log = logging.getLogger("sansio_asgi.error")

DEFAULT_INCLUDES = ("*.py",)
DEFAULT_EXCLUDES = (".*", ".py[cod]", ".sw.*", "~*")


class FileFilter:
    """Which files count: a file whose name matches an include glob, unless its name or a
    directory on its way down from the watched directory matches an exclude glob (so ``.git``
    and ``.venv`` are not even walked). A glob with a ``/`` matches the path's tail
    (``Path.match``)."""

    def __init__(self, includes: Iterable[str] = (), excludes: Iterable[str] = ()) -> None:
        extra = tuple(includes)
        self.includes = tuple(dict.fromkeys(DEFAULT_INCLUDES + extra))
        # Asking to include a default exclude means it: it leaves the excludes.
        self.excludes = tuple(
            p for p in dict.fromkeys(DEFAULT_EXCLUDES + tuple(excludes)) if p not in extra
        )

    @staticmethod
    def _matches(path: Path, name: str, patterns: tuple[str, ...]) -> bool:
        for pattern in patterns:
            if "/" in pattern:
                if path.match(pattern):
                    return True
            elif fnmatch.fnmatch(name, pattern):
                return True
        return False

    def skip_dir(self, path: Path) -> bool:
        return self._matches(path, path.name, self.excludes)

    def watches(self, path: Path, root: Path) -> bool:
        try:
            parts = path.relative_to(root).parts
        except ValueError:
            parts = (path.name,)
        current = root
        for part in parts[:-1]:
            current = current / part
            if self.skip_dir(current):
                return False
        if self._matches(path, path.name, self.excludes):
            return False
        return self._matches(path, path.name, self.includes)


class Watcher:
    """A thread that watches ``roots``; ``changes()`` drains the paths seen to change."""

    name = "watcher"

    def __init__(
        self,
        roots: Iterable[str],
        file_filter: FileFilter,
        delay_s: float,
        wake: Callable[[], None],
    ) -> None:
        self.roots = [Path(root).resolve() for root in roots]
        self.filter = file_filter
        self.delay_s = delay_s
        self._wake = wake
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._changed: list[Path] = []
        self._thread = threading.Thread(
            target=self._watch, name=f"sansio-asgi-{self.name}", daemon=True
        )
        self._ready = threading.Event()

    def start(self) -> None:
        """Start watching; returns once the watcher has taken its first look."""
        self._thread.start()
        self._ready.wait(10.0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10.0)

    def changes(self) -> list[Path]:
        with self._lock:
            changed, self._changed = self._changed, []
        return changed

    def watches(self, path: Path) -> bool:
        for root in self.roots:
            if path == root or root in path.parents:
                return self.filter.watches(path, root)
        return False

    def _report(self, paths: Iterable[Path]) -> None:
        paths = sorted(set(paths))
        if paths:
            with self._lock:
                self._changed.extend(paths)
            self._wake()

    def _watch(self) -> None:
        try:
            self._run()
        except Exception:  # reloading stops; serving goes on, and the log says why
            error_log.exception("The %s file watcher failed; changes are no longer seen", self.name)
        finally:
            self._ready.set()

    def _run(self) -> None:
        raise NotImplementedError


class PollingWatcher(Watcher):
    """Compares modification times and sizes every ``delay_s`` seconds: portable, and what
    works where OS notifications do not (some network and container file systems)."""

    name = "poll"

    def _run(self) -> None:
        before = self._snapshot()
        self._ready.set()
        while not self._stop.wait(self.delay_s):
            now = self._snapshot()
            changed = [p for p in before.keys() | now.keys() if before.get(p) != now.get(p)]
            before = now
            self._report(changed)

    def _snapshot(self) -> dict[Path, tuple[int, int]]:
        found: dict[Path, tuple[int, int]] = {}
        for root in self.roots:
            self._scan(root, root, found)
        return found

    def _scan(self, directory: Path, root: Path, found: dict[Path, tuple[int, int]]) -> None:
        try:
            entries = list(os.scandir(directory))
        except OSError:  # removed while we looked, or unreadable
            return
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not self.filter.skip_dir(path):
                        self._scan(path, root, found)
                elif self.filter.watches(path, root):
                    stat = entry.stat()
                    found[path] = (stat.st_mtime_ns, stat.st_size)
            except OSError:
                continue


READY_TIMEOUT_MS = 100


class WatchfilesWatcher(Watcher):
    """OS notifications through watchfiles; ``delay_s`` is its debounce: changes within it are
    reported together."""

    name = "watchfiles"

    def _run(self) -> None:
        watchfiles: Any = importlib.import_module("watchfiles")

        def wanted(change: Any, path: str) -> bool:
            return self.watches(Path(path))

        # watch() creates the OS watch lazily, inside the generator: the watcher is ready at
        # its first answer (a timeout after READY_TIMEOUT_MS at the latest), not before.
        for changes in watchfiles.watch(
            *self.roots,
            watch_filter=wanted,
            debounce=max(int(self.delay_s * 1000), 50),
            step=50,
            stop_event=self._stop,
            rust_timeout=READY_TIMEOUT_MS,
            yield_on_timeout=True,
            raise_interrupt=False,
        ):
            self._ready.set()
            if changes:
                self._report(Path(path) for _, path in changes)


def watchfiles_installed() -> bool:
    try:
        importlib.import_module("watchfiles")
    except ImportError:
        return False
    return True


def make_watcher(
    kind: str,
    roots: Iterable[str],
    includes: Iterable[str],
    excludes: Iterable[str],
    delay_s: float,
    wake: Callable[[], None],
) -> Watcher:
    """The watcher ``--reload-watcher`` names; ``auto`` is watchfiles when it is installed."""
    if kind == "auto":
        kind = "watchfiles" if watchfiles_installed() else "poll"
    from .config import ConfigError

    cls: type[Watcher] = WatchfilesWatcher if kind == "watchfiles" else PollingWatcher
    if kind == "watchfiles" and not watchfiles_installed():
        raise ConfigError(
            "--reload-watcher watchfiles: watchfiles is not installed "
            "(pip install 'sansio-asgi[reload]')"
        )
    roots = list(roots) or [os.getcwd()]
    for root in roots:
        if not os.path.isdir(root):
            raise ConfigError(f"--reload-dir {root!r}: not a directory")
    return cls(roots, FileFilter(includes, excludes), delay_s, wake)


__all__ = ["FileFilter", "PollingWatcher", "WatchfilesWatcher", "make_watcher"]
