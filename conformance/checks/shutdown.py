"""Checks of the shutdown group."""

from __future__ import annotations
