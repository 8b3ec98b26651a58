"""Server-wide limits that the per-connection core objects share.

``Admission`` counts the app calls running across the whole server (``--limit-concurrency``).
Every core call happens on one thread in both drivers (the asyncio loop; the selectors driver's
I/O thread), so a plain counter is enough.
"""

from __future__ import annotations


class Admission:
    """At most ``limit`` app calls (HTTP requests and WebSocket sessions) at once."""

    __slots__ = ("active", "limit")

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.active = 0

    def try_enter(self) -> bool:
        if self.limit is not None and self.active >= self.limit:
            return False
        self.active += 1
        return True

    def leave(self) -> None:
        self.active -= 1
