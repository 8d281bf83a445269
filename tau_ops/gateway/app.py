"""The gateway's Starlette app: routes, JSON errors, bearer-token auth and request logging."""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tau_ops import health
from tau_ops.clock import Clock, wall_clock_ms
from tau_ops.errors import StateError, UsageError
from tau_ops.gateway.bind import AUTH_TOKEN_ENV
from tau_ops.gateway.cache import StatusCache, fresh_error
from tau_ops.gateway.documents import gateway_status, unavailable_body
from tau_ops.gateway.metrics import MetricsCache
from tau_ops.status import (
    DeploymentStatusReport,
    StatusInputs,
    deployment_status_at,
    transport_health_at,
)

log = logging.getLogger("tau_ops.gateway")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RequestLog = Callable[[str], None]


def _error(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status)


def _log_path(path: str) -> str:
    return quote(path, safe="/:@!$&'()*+,;=-._~")


class _AuthAndLog:
    """Outermost layer: bearer-token check, then one log line per request (no secrets)."""

    def __init__(self, app: ASGIApp, *, token: str | None,
                 request_log: RequestLog | None) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.request_log = request_log

    def _authorized(self, scope: Scope) -> bool | None:
        """True: accepted; None: no credentials given; False: wrong credentials."""
        assert self.token is not None
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credential = value.partition(b" ")
                if scheme.lower() != b"bearer":
                    return False
                return hmac.compare_digest(credential.strip(), self.token)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_logged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            verdict = True if self.token is None else self._authorized(scope)
            if verdict is True:
                await self.app(scope, receive, send_logged)
            else:
                challenge = 'Bearer realm="tau-ops"'
                if verdict is False:
                    challenge += ', error="invalid_token"'
                response = _error(401, "unauthorized", "missing or invalid bearer token")
                response.headers["WWW-Authenticate"] = challenge
                await response(scope, receive, send_logged)
        finally:
            write = self.request_log
            if write is None and log.isEnabledFor(logging.INFO):
                write = log.info
            if write is not None:
                write(f"request method={scope['method']} path={_log_path(scope['path'])} "
                      f"status={status} duration_ms={(time.perf_counter() - started) * 1000:.2f}")


class _MissingState(Exception):
    """No state.json yet: the reports exist (gate hold) but the gateway answers 503."""

    def __init__(self, inputs: StatusInputs) -> None:
        super().__init__("state missing")
        self.inputs = inputs


def create_app(
    *,
    state_dir: Path | str,
    auth_token: str | None = None,
    stale_after_ms: int = health.DEFAULT_STALE_AFTER_MS,
    skew_tolerance_ms: int = health.DEFAULT_CLOCK_SKEW_TOLERANCE_MS,
    clock: Clock = wall_clock_ms,
    request_log: RequestLog | None = None,
) -> Starlette:
    """The gateway ASGI app for ``state_dir`` (SPEC section 9), to serve with uvicorn.

    Routes (``GET`` only): ``/gateway/status`` (:class:`GatewayStatus`),
    ``/deployment/status`` (the ``--deployment-status-json`` document),
    ``/transport/health`` (the CLI's ``--transport-health-json`` document: a
    list of one row) and ``/metrics`` (Prometheus text; OpenMetrics when the
    ``Accept`` header asks for it). Other paths answer a JSON 404, other
    methods a JSON 405.

    The files are checked (three ``stat`` calls) at most once per millisecond
    and re-read only when they changed (:class:`StatusCache`); freshness is
    judged on every request. A missing ``state.json`` (no cycle recorded yet)
    or a corrupt or impossible one makes the three status documents answer
    503 with a JSON error carrying the gate decision (``rollout_gate`` hold
    and ``rollout_gate_reasons``); ``/metrics`` still answers 200 and says so
    in ``tau_state_valid`` and ``tau_state_exists``.

    Parameters
    ----------
    state_dir : Path or str
        The state dir to report on; it need not exist yet.
    auth_token : str, optional
        When given, every path needs ``Authorization: Bearer <token>``
        (401 otherwise, compared in constant time); the CLI takes it from
        ``TAU_GATEWAY_AUTH_TOKEN``.
    stale_after_ms : int, default 86400000 (24 h)
        Freshness limit of the rollout gate, in ms.
    skew_tolerance_ms : int, default 300000 (5 min)
        How far in the future the last cycle may lie before the gate holds
        with ``clock_skew``, in ms.
    clock : callable, default wall_clock_ms
        ``() -> int``, Unix epoch ms; injected by tests.
    request_log : callable, optional
        Gets one line per request (method, path, status, duration in ms;
        never a header); default: the ``tau_ops.gateway`` logger at INFO.

    Returns
    -------
    starlette.applications.Starlette
        The ASGI app; serve it with :func:`serve_asgi` (or call it in-process,
        e.g. through ``httpx.ASGITransport``).

    Raises
    ------
    UsageError
        ``auth_token`` is empty or holds a character outside visible ASCII
        (exit 2).

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     app = create_app(state_dir=tmp, auth_token="s3cret-token")
    >>> [route.path for route in app.routes]
    ['/gateway/status', '/deployment/status', '/transport/health', '/metrics']
    >>> create_app(state_dir=".", auth_token="two words")
    Traceback (most recent call last):
    ...
    tau_ops.errors.UsageError: TAU_GATEWAY_AUTH_TOKEN must be non-empty visible ASCII without spaces
    """
    if auth_token is not None and (
        not auth_token or any(not (33 <= ord(c) <= 126) for c in auth_token)
    ):
        raise UsageError(f"{AUTH_TOKEN_ENV} must be non-empty visible ASCII without spaces")
    cache = StatusCache(state_dir)

    checked: list[tuple[int, StatusInputs | StateError]] = []

    async def inputs() -> StatusInputs:
        tick = time.monotonic_ns() // 1_000_000
        if checked and checked[0][0] == tick:
            value = checked[0][1]  # files checked less than a millisecond ago
        else:
            found = cache.cached()
            if found is None:  # files changed: read them off the event loop
                found = await anyio.to_thread.run_sync(cache.refresh)
            value = found
            checked[:] = [(tick, value)]
        if isinstance(value, StateError):
            raise fresh_error(value)
        if value.state is None:
            raise _MissingState(value)
        return value

    Document = BaseModel | list[BaseModel]
    rendered: dict[Callable[[StatusInputs, int], Document], tuple[StatusInputs, int, bytes]] = {}

    def encode(document: Document) -> bytes:
        if isinstance(document, list):
            return json.dumps([d.model_dump(mode="json") for d in document]).encode()
        return document.model_dump_json().encode()

    async def status_response(render: Callable[[StatusInputs, int], Document]) -> Response:
        options = {"now_ms": clock(), "stale_after_ms": stale_after_ms,
                   "skew_tolerance_ms": skew_tolerance_ms}
        try:
            value = await inputs()
        except StateError as exc:
            return JSONResponse(unavailable_body(
                "state_corrupt", str(exc), cache.state_dir, invalid=str(exc), **options),
                status_code=503)
        except _MissingState:
            return JSONResponse(unavailable_body(
                "state_missing",
                f"no state.json in {cache.state_dir}: no deployment cycle recorded yet; "
                "run tau-ops --deployment-contract-runner once",
                cache.state_dir, invalid=None, **options), status_code=503)
        now = options["now_ms"]
        last = rendered.get(render)
        if last is not None and last[0] is value and last[1] == now:
            body = last[2]  # same inputs, same millisecond: the same document
        else:
            body = encode(render(value, now))
            rendered[render] = (value, now, body)
        return Response(body, media_type="application/json")

    def gateway_doc(value: StatusInputs, now: int) -> Document:
        report = deployment_status_at(value, now_ms=now, stale_after_ms=stale_after_ms,
                                      skew_tolerance_ms=skew_tolerance_ms)
        return gateway_status(report, now_ms=now)

    def deployment_doc(value: StatusInputs, now: int) -> Document:
        return deployment_status_at(value, now_ms=now, stale_after_ms=stale_after_ms,
                                    skew_tolerance_ms=skew_tolerance_ms)

    def transport_doc(value: StatusInputs, now: int) -> Document:
        return [transport_health_at(value, now_ms=now, stale_after_ms=stale_after_ms,
                                    skew_tolerance_ms=skew_tolerance_ms)]

    async def gateway_endpoint(request: Request) -> Response:
        return await status_response(gateway_doc)

    async def deployment_endpoint(request: Request) -> Response:
        return await status_response(deployment_doc)

    async def transport_endpoint(request: Request) -> Response:
        return await status_response(transport_doc)

    metrics = MetricsCache()

    async def metrics_endpoint(request: Request) -> Response:
        report: DeploymentStatusReport | None
        source: object = None
        try:
            source = value = await inputs()
            report = deployment_status_at(value, now_ms=clock(), stale_after_ms=stale_after_ms,
                                          skew_tolerance_ms=skew_tolerance_ms)
            exists = True
        except StateError:
            report, exists = None, True
        except _MissingState as missing:
            source = missing.inputs
            report = deployment_status_at(missing.inputs, now_ms=clock(),
                                          stale_after_ms=stale_after_ms,
                                          skew_tolerance_ms=skew_tolerance_ms)
            exists = False
        body, content_type = metrics.render(report, state_exists=exists, inputs=source,
                                            accept=request.headers.get("accept", ""))
        return Response(body, headers={"Content-Type": content_type})

    async def http_error(request: Request, exc: Exception) -> Response:
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        if code == 405:
            response = _error(405, "method_not_allowed",
                              f"{request.method} is not allowed on {request.url.path}")
            if isinstance(exc, HTTPException) and exc.headers:
                response.headers.update(exc.headers)
            return response
        return _error(404, "not_found", f"no such path: {request.url.path}")

    routes = [
        Route("/gateway/status", gateway_endpoint, methods=["GET"]),
        Route("/deployment/status", deployment_endpoint, methods=["GET"]),
        Route("/transport/health", transport_endpoint, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(_AuthAndLog, token=auth_token, request_log=request_log)],
        exception_handlers={404: http_error, 405: http_error},
    )
