"""Serving an ASGI app with uvicorn: the listening socket and a clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from tau_ops import health
from tau_ops.clock import Clock, wall_clock_ms
from tau_ops.errors import OperationFailed
from tau_ops.gateway.app import ASGIApp, RequestLog, create_app
from tau_ops.gateway.bind import BindAddress


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
    skew_tolerance_ms: int = health.DEFAULT_CLOCK_SKEW_TOLERANCE_MS,
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
                     stale_after_ms=stale_after_ms, skew_tolerance_ms=skew_tolerance_ms,
                     clock=clock, request_log=request_log)
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
