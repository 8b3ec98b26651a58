"""Checks of the lifespan group."""

from __future__ import annotations
