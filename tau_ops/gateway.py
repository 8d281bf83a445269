"""The HTTP gateway: status, health and Prometheus metrics of one state dir, served by uvicorn.

Every document comes from :mod:`tau_ops.status`; the gateway adds only HTTP
concerns: a cache keyed on the files' identity (re-read only when
``state.json`` or an event file changes, freshness judged anew on every
request), bearer-token auth, JSON errors, request logging without secrets, and
a listening socket that shuts down cleanly on SIGTERM.
"""

from __future__ import annotations

import hmac
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio.to_thread
import uvicorn
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tau_ops import health
from tau_ops.clock import Clock, wall_clock_ms
from tau_ops.errors import OperationFailed, StateError, UsageError
from tau_ops.state import EVENTS_FILE, STATE_FILE
from tau_ops.status import (
    DeploymentStatusReport,
    StatusInputs,
    deployment_status_at,
    read_status_inputs,
    transport_health_at,
)

log = logging.getLogger("tau_ops.gateway")

DEFAULT_BIND = "127.0.0.1:8080"
AUTH_TOKEN_ENV = "TAU_GATEWAY_AUTH_TOKEN"
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RequestLog = Callable[[str], None]


@dataclass(frozen=True)
class BindAddress:
    """Where the gateway listens; port 0 asks the OS for a free port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_bind(text: str) -> BindAddress:
    """Parse ``HOST:PORT`` or ``[IPV6]:PORT``; raises UsageError naming the value."""
    value = text.strip()
    hint = f"invalid gateway bind {text!r}: expected HOST:PORT or [IPV6]:PORT"
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or not rest.startswith(":") or ":" not in host:
            raise UsageError(hint)
        port_text = rest[1:]
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or ":" in host:
            raise UsageError(hint + (" (put an IPv6 address in brackets)" if ":" in host else ""))
    if not host or not port_text.isdigit() or int(port_text) > 65535:
        raise UsageError(hint + " with a port from 0 to 65535")
    return BindAddress(host, int(port_text))


class GatewayStatus(BaseModel):
    """``GET /gateway/status``: the essentials on top, the full deployment status inside."""

    service: str
    health_state: str
    health_reason: str
    recommendation: str
    rollout_gate: str
    reason_codes: list[str]
    updated_unix_ms: int
    state_age_ms: int
    stale_after_ms: int
    stale: bool
    failure_streak: int
    queue_depth: int
    rollout_count: int
    cycle_reports: int
    generated_unix_ms: int
    deployment: DeploymentStatusReport


def gateway_status(report: DeploymentStatusReport, *, now_ms: int) -> GatewayStatus:
    """Wrap a deployment status into the gateway's status document."""
    return GatewayStatus(
        service="tau-ops-gateway",
        health_state=report.health_state,
        health_reason=report.health_reason,
        recommendation=report.recommendation,
        rollout_gate=report.rollout_gate,
        reason_codes=report.last_reason_codes,
        updated_unix_ms=report.updated_unix_ms,
        state_age_ms=report.state_age_ms,
        stale_after_ms=report.stale_after_ms,
        stale=report.stale,
        failure_streak=report.failure_streak,
        queue_depth=report.queue_depth,
        rollout_count=report.rollout_count,
        cycle_reports=report.cycle_reports,
        generated_unix_ms=now_ms,
        deployment=report,
    )


FileKey = tuple[int, int, int, int]
Quick = tuple[FileKey | None, FileKey | None, FileKey | None]
Signature = tuple[Quick, tuple[tuple[str, FileKey], ...]]


def _stat_key(path: str) -> FileKey | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot stat {path}: {exc.strerror}", path=path) from exc
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _is_backup(name: str) -> bool:
    """``runtime-events.jsonl.N`` (N >= 1), as :func:`tau_ops.storage.rotated_files` reads them."""
    suffix = name[len(EVENTS_FILE) + 1:] if name.startswith(EVENTS_FILE + ".") else ""
    return suffix.isdigit() and int(suffix) > 0


def _fresh(error: StateError) -> StateError:
    """A new copy of a cached error: re-raising one instance would grow its traceback forever."""
    return StateError(error.message, path=error.path)


class StatusCache:
    """Parsed status inputs of one state dir, re-read only when a file they come from changes.

    The key is the identity (inode, size, mtime, ctime) of ``state.json``, of
    every event file and of the folder itself, so an atomic replace, an append
    or a rotation all invalidate it. Each poll costs three ``stat`` calls; the
    folder is listed again only when one of them changed (a rotation always
    replaces ``runtime-events.jsonl``). A read that failed (corrupt state) is
    cached the same way, so a broken file is not re-parsed on every poll, and
    its fix is seen on the next one.
    """

    def __init__(self, state_dir: Path | str) -> None:
        self.state_dir = Path(state_dir)
        self._dir = str(self.state_dir)
        self._state = os.path.join(self._dir, STATE_FILE)
        self._events = os.path.join(self._dir, EVENTS_FILE)
        # single attributes, so concurrent refreshes never pair a key with another read's value
        self._signature: Signature | None = None
        self._entry: tuple[Signature, StatusInputs | StateError] | None = None
        self.reads = 0

    def _backups(self) -> tuple[tuple[str, FileKey], ...]:
        found: list[tuple[str, FileKey]] = []
        try:
            names = os.listdir(self._dir)
        except FileNotFoundError:
            return ()
        except OSError as exc:
            raise StateError(f"cannot list {self._dir}: {exc.strerror}", path=self._dir) from exc
        for name in sorted(filter(_is_backup, names)):
            key = _stat_key(os.path.join(self._dir, name))
            if key is not None:  # None: rotated away since the listing
                found.append((name, key))
        return tuple(found)

    def signature(self) -> Signature:
        """The current identity of every file the reports read."""
        quick = (_stat_key(self._dir), _stat_key(self._state), _stat_key(self._events))
        last = self._signature
        if last is not None and last[0] == quick:
            return last
        current = (quick, self._backups())
        self._signature = current
        return current

    def _read(self) -> StatusInputs | StateError:
        self.reads += 1
        try:
            return read_status_inputs(self.state_dir)
        except StateError as exc:
            return exc

    def cached(self) -> StatusInputs | StateError | None:
        """The cached value when the files are unchanged, else None (read needed)."""
        entry = self._entry
        return entry[1] if entry is not None and entry[0] == self.signature() else None

    def refresh(self) -> StatusInputs | StateError:
        """Read the files (the signature is taken first, so a later change is never missed)."""
        key = self.signature()
        value = self._read()
        self._entry = (key, value)
        return value

    def get(self) -> StatusInputs:
        """Current inputs, from cache when possible. Raises StateError on a corrupt state."""
        value = self.cached()
        if value is None:
            value = self.refresh()
        if isinstance(value, StateError):
            raise _fresh(value)
        return value


def _error(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status)


def _metric_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class _Metrics:
    """Accumulates Prometheus text exposition, one family at a time."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, help_text: str,
               samples: list[tuple[dict[str, str], float | int]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} gauge")
        for labels, value in samples:
            rendered = ",".join(f'{k}="{_metric_label(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{rendered}}} {value}" if labels else f"{name} {value}")

    def one(self, name: str, help_text: str, value: float | int) -> None:
        self.family(name, help_text, [({}, value)])

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render_metrics(report: DeploymentStatusReport | None, *, state_exists: bool) -> str:
    """Prometheus text exposition (all gauges) of a status; None when the state is unreadable."""
    m = _Metrics()
    m.one("tau_deployment_state_readable",
          "1 when state.json could be read (or does not exist yet), 0 when it is corrupt",
          int(report is not None))
    m.one("tau_deployment_state_exists", "1 when state.json exists", int(state_exists))
    if report is None:
        return m.text()
    m.family("tau_rollout_gate", "Rollout gate: 1 for the current gate value",
             [({"gate": g}, int(report.rollout_gate == g)) for g in ("pass", "hold")])
    m.family("tau_health_state", "Health classification: 1 for the current state",
             [({"state": s}, int(report.health_state == s))
              for s in ("healthy", "degraded", "failing")])
    m.one("tau_failure_streak", "Consecutive cycles with failed cases", report.failure_streak)
    m.one("tau_queue_depth", "Cases left in backlog by the last cycle", report.queue_depth)
    m.one("tau_active_runs", "Runs in progress at the last cycle", report.active_runs)
    m.one("tau_state_stale", "1 when the last cycle is older than stale_after_ms",
          int(report.stale))
    m.one("tau_state_age_seconds", "Age of the last cycle", report.state_age_ms / 1000)
    m.one("tau_last_cycle_timestamp_seconds", "Unix time of the last cycle (0: none)",
          report.updated_unix_ms / 1000)
    m.one("tau_last_cycle_duration_seconds", "Duration of the last cycle",
          report.cycle_duration_ms / 1000)
    m.family("tau_last_cycle_cases", "Cases of the last cycle by result", [
        ({"result": r}, getattr(report, f"last_cycle_{r}"))
        for r in ("discovered", "processed", "completed", "failed", "duplicates", "malformed",
                  "retries")
    ])
    m.one("tau_rollout_count", "Rollout records in state", report.rollout_count)
    m.family("tau_rollouts", "Rollout records by deploy target",
             [({"deploy_target": t}, n) for t, n in report.deploy_target_counts.items()])
    m.one("tau_rollout_replicas", "Replicas across all rollout records", report.total_replicas)
    m.one("tau_processed_case_keys", "Case keys marked processed", report.processed_case_count)
    m.one("tau_wasm_deliverables", "WASM deliverables recorded", report.wasm_deliverable_count)
    m.one("tau_cycles", "Cycle reports in the event files (backups included)",
          report.cycle_reports)
    m.one("tau_invalid_cycle_reports", "Unreadable lines in the event files",
          report.invalid_cycle_reports)
    m.one("tau_event_files", "Event files, rotated backups included", report.event_files)
    m.family("tau_reason_code_cycles", "Cycles that reported each reason code",
             [({"reason_code": c}, n) for c, n in report.reason_code_counts.items()])
    m.family("tau_last_cycle_reason_code", "Reason codes of the last cycle",
             [({"reason_code": c}, 1) for c in report.last_reason_codes])
    return m.text()


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


def create_app(
    *,
    state_dir: Path | str,
    auth_token: str | None = None,
    stale_after_ms: int = health.DEFAULT_STALE_AFTER_MS,
    clock: Clock = wall_clock_ms,
    request_log: RequestLog | None = None,
) -> Starlette:
    """The gateway ASGI app for ``state_dir``; ``auth_token`` makes every path need it.

    Each request is reported as one line (method, path, status, duration; never
    a header) to ``request_log``, or to the ``tau_ops.gateway`` logger at INFO
    when none is given.

    The files are checked (three ``stat`` calls) at most once per millisecond
    and re-read only when they changed; freshness is judged on every request.
    A missing ``state.json`` (no cycle recorded yet) or a corrupt one makes the
    three status documents answer 503 with a JSON error; ``/metrics`` still
    answers 200 and says so in ``tau_deployment_state_readable`` and
    ``tau_deployment_state_exists``.
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
            raise _fresh(value)
        if value.state is None:
            raise _MissingState(value)
        return value

    rendered: dict[Callable[[StatusInputs, int], BaseModel], tuple[StatusInputs, int, bytes]] = {}

    async def status_response(render: Callable[[StatusInputs, int], BaseModel]) -> Response:
        try:
            value = await inputs()
        except StateError as exc:
            return _error(503, "state_corrupt", str(exc), state_dir=str(cache.state_dir),
                          rollout_gate="hold")
        except _MissingState:
            return _error(
                503, "state_missing",
                f"no state.json in {cache.state_dir}: no deployment cycle recorded yet; "
                "run tau-ops --deployment-contract-runner once",
                state_dir=str(cache.state_dir), rollout_gate="hold")
        now = clock()
        last = rendered.get(render)
        if last is not None and last[0] is value and last[1] == now:
            body = last[2]  # same inputs, same millisecond: the same document
        else:
            body = render(value, now).model_dump_json().encode()
            rendered[render] = (value, now, body)
        return Response(body, media_type="application/json")

    def gateway_doc(value: StatusInputs, now: int) -> BaseModel:
        report = deployment_status_at(value, now_ms=now, stale_after_ms=stale_after_ms)
        return gateway_status(report, now_ms=now)

    def deployment_doc(value: StatusInputs, now: int) -> BaseModel:
        return deployment_status_at(value, now_ms=now, stale_after_ms=stale_after_ms)

    def transport_doc(value: StatusInputs, now: int) -> BaseModel:
        return transport_health_at(value, now_ms=now, stale_after_ms=stale_after_ms)

    async def gateway_endpoint(request: Request) -> Response:
        return await status_response(gateway_doc)

    async def deployment_endpoint(request: Request) -> Response:
        return await status_response(deployment_doc)

    async def transport_endpoint(request: Request) -> Response:
        return await status_response(transport_doc)

    async def metrics_endpoint(request: Request) -> Response:
        report: DeploymentStatusReport | None
        try:
            value = await inputs()
            report = deployment_status_at(value, now_ms=clock(), stale_after_ms=stale_after_ms)
            exists = True
        except StateError:
            report, exists = None, True
        except _MissingState as missing:
            report = deployment_status_at(missing.inputs, now_ms=clock(),
                                          stale_after_ms=stale_after_ms)
            exists = False
        text = render_metrics(report, state_exists=exists)
        return PlainTextResponse(text, media_type=METRICS_CONTENT_TYPE)

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


class _MissingState(Exception):
    """No state.json yet: the reports exist (gate hold) but the gateway answers 503."""

    def __init__(self, inputs: StatusInputs) -> None:
        super().__init__("state missing")
        self.inputs = inputs


def _listen(bind: BindAddress, backlog: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(bind.host, bind.port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise OperationFailed(f"cannot listen on {bind}: {exc.strerror or exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise OperationFailed(f"cannot listen on {bind}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, telling the caller once it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_listening: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_listening = on_listening

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            self._on_listening()


@contextmanager
def _stop_signals_end_cleanly() -> Iterator[None]:
    """uvicorn re-raises SIGTERM/SIGINT after a graceful shutdown; make that a clean return."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, lambda *_: None)
                for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(
    *,
    state_dir: Path | str,
    bind: BindAddress,
    auth_token: str | None = None,
    stale_after_ms: int = health.DEFAULT_STALE_AFTER_MS,
    on_listening: Callable[[BindAddress], None] | None = None,
    clock: Clock = wall_clock_ms,
    request_log: RequestLog | None = None,
    backlog: int = 2048,
) -> None:
    """Serve the gateway until SIGTERM or SIGINT, then shut down gracefully and return.

    ``on_listening`` gets the bound address (the real port when ``bind.port``
    is 0) once connections are accepted. Raises OperationFailed when the
    address cannot be bound.
    """
    app = create_app(state_dir=state_dir, auth_token=auth_token,
                     stale_after_ms=stale_after_ms, clock=clock, request_log=request_log)
    serve_asgi(app, bind=bind, on_listening=on_listening, backlog=backlog)


def serve_asgi(
    app: ASGIApp,
    *,
    bind: BindAddress,
    on_listening: Callable[[BindAddress], None] | None = None,
    backlog: int = 2048,
) -> None:
    """Run any ASGI app with the gateway's uvicorn settings (benchmarks compare on equal terms)."""
    sock = _listen(bind, backlog)
    bound = BindAddress(bind.host, sock.getsockname()[1])
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off",
                            server_header=False, backlog=backlog,
                            timeout_graceful_shutdown=10)
    server = _Server(config, lambda: on_listening(bound) if on_listening else None)
    try:
        with _stop_signals_end_cleanly():
            server.run(sockets=[sock])
    finally:
        sock.close()
