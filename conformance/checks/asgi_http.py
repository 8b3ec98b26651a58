"""Checks of the asgi_http group."""

from __future__ import annotations
