"""Checks of the websocket group."""

from __future__ import annotations
