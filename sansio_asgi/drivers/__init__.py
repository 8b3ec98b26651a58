"""Drivers: the I/O shells around the core. They own sockets, the clock and the app's
coroutines, and never make an HTTP decision. See spec/driver-contract.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .asyncio_driver import AsyncioDriver
    from .selectors_driver import SelectorsDriver

DRIVERS = ("asyncio", "selectors")


def driver_class(name: str) -> type[AsyncioDriver] | type[SelectorsDriver]:
    if name == "asyncio":
        from .asyncio_driver import AsyncioDriver

        return AsyncioDriver
    if name == "selectors":
        from .selectors_driver import SelectorsDriver

        return SelectorsDriver
    raise ValueError(f"unknown driver {name!r}; choose from {', '.join(DRIVERS)}")
