"""Probe routes for the asgi_http group."""

from __future__ import annotations

from .common import Probe, Receive, Scope, Send

HTTP_ROUTES: dict[str, object] = {}
WEBSOCKET_ROUTES: dict[str, object] = {}
_ = (Probe, Receive, Scope, Send)
