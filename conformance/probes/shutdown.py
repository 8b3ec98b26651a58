"""Probe routes for the shutdown group (paths under /shutdown/)."""

from __future__ import annotations

from .common import Probe, Receive, Scope, Send

HTTP_ROUTES: dict[str, object] = {}
WEBSOCKET_ROUTES: dict[str, object] = {}
_ = (Probe, Receive, Scope, Send)
