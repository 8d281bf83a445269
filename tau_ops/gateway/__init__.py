"""The HTTP gateway: status, health and Prometheus metrics of one state dir, served by uvicorn.

Every document comes from :mod:`tau_ops.status`; the gateway adds only HTTP
concerns: a cache keyed on the files' identity (re-read only when
``state.json`` or an event file changes, freshness judged anew on every
request), bearer-token auth, JSON errors, request logging without secrets, and
a listening socket that shuts down cleanly on SIGTERM.

``bind`` owns the listen address, ``documents`` the status document, ``cache``
the cached inputs, ``metrics`` the Prometheus text, ``app`` the Starlette app
and ``server`` the uvicorn server. Everything public is re-exported here.
"""

from __future__ import annotations

from tau_ops.gateway.app import create_app
from tau_ops.gateway.bind import AUTH_TOKEN_ENV, DEFAULT_BIND, BindAddress, parse_bind
from tau_ops.gateway.cache import StatusCache
from tau_ops.gateway.documents import GatewayStatus, gateway_status
from tau_ops.gateway.metrics import METRICS_CONTENT_TYPE, render_metrics
from tau_ops.gateway.server import serve, serve_asgi

__all__ = [
    "AUTH_TOKEN_ENV",
    "DEFAULT_BIND",
    "METRICS_CONTENT_TYPE",
    "BindAddress",
    "GatewayStatus",
    "StatusCache",
    "create_app",
    "gateway_status",
    "parse_bind",
    "render_metrics",
    "serve",
    "serve_asgi",
]
