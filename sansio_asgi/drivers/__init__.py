"""Drivers: the I/O shells around the core. They own sockets, the clock and the app's
coroutines, and never make an HTTP decision. See spec/driver-contract.md."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..core import ClientDisconnected

if TYPE_CHECKING:
    from ..config import ASGIApp
    from .asyncio_driver import AsyncioDriver
    from .selectors_driver import SelectorsDriver

DRIVERS = ("asyncio", "selectors")

error_log = logging.getLogger("sansio_asgi.error")

# glibc's malloc gives the top of its heap back to the kernel as soon as more than
# M_TRIM_THRESHOLD (128 KiB at first) is free there, and takes it back page fault by page fault
# on the next large allocation. A server holding request and response bodies of tens of KiB for
# many connections at once swings its heap by megabytes, and so pays a dozen page faults per
# 64 KiB body. Freeing one block above the mmap threshold raises both thresholds for the rest of
# the process (mallopt(3), "dynamic mmap threshold": M_MMAP_THRESHOLD to the block's size,
# M_TRIM_THRESHOLD to twice that): the process keeps up to 8 MiB of freed heap for reuse
# instead. Other allocators are unaffected.
SETTLE_ALLOCATOR_BYTES = 4 * 1024 * 1024


def settle_allocator() -> None:
    """Raise glibc's trim threshold once, by freeing a block it had to map."""
    bytes(SETTLE_ALLOCATOR_BYTES)


async def call_app(
    app: ASGIApp, scope: dict[str, Any], receive: Any, send: Any
) -> Exception | None:
    """Run one app call; return what it raised, already logged, or None.

    ``ClientDisconnected`` is how ``send()`` tells the app the client left (ASGI HTTP 2.4): it is
    expected, so it is neither logged nor reported.
    """
    try:
        await app(scope, receive, send)
    except ClientDisconnected:
        pass
    except Exception as exc:
        error_log.error("Exception in ASGI application", exc_info=exc)
        return exc
    return None


def driver_class(name: str) -> type[AsyncioDriver] | type[SelectorsDriver]:
    if name == "asyncio":
        from .asyncio_driver import AsyncioDriver

        return AsyncioDriver
    if name == "selectors":
        from .selectors_driver import SelectorsDriver

        return SelectorsDriver
    raise ValueError(f"unknown driver {name!r}; choose from {', '.join(DRIVERS)}")
