"""Checks of the judges group."""

from __future__ import annotations
