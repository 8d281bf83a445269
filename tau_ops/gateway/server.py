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

    The app is :func:`create_app`'s; the server is uvicorn's, on a socket
    bound here (``SO_REUSEADDR``), with requests in flight given up to 10 s
    to finish. What ``tau-ops gateway serve`` runs (SPEC section 9).

    Parameters
    ----------
    state_dir : Path or str
        The state dir to report on.
    bind : BindAddress
        Where to listen; port 0 asks the OS for a free port.
    auth_token : str, optional
        Bearer token every request must carry (see :func:`create_app`).
    stale_after_ms : int, default 86400000 (24 h)
        Freshness limit of the rollout gate, in ms.
    skew_tolerance_ms : int, default 300000 (5 min)
        Clock-skew tolerance of the rollout gate, in ms.
    on_listening : callable, optional
        Called once with the bound address (the real port when ``bind.port``
        is 0) when connections are accepted.
    clock : callable, default wall_clock_ms
        ``() -> int``, Unix epoch ms.
    request_log : callable, optional
        Gets one line per request (see :func:`create_app`).
    backlog : int, default 2048
        Listen backlog (connections waiting to be accepted).

    Raises
    ------
    OperationFailed
        The address cannot be bound (in use, not local; exit 1).
    UsageError
        ``auth_token`` is not visible ASCII (exit 2).

    Examples
    --------
    A client fetches ``/metrics`` once, then stops the server as Ctrl-C would:

    >>> import os, signal, tempfile, threading, urllib.request
    >>> from tau_ops.gateway import BindAddress
    >>> answers = []
    >>> def client(bound):
    ...     try:
    ...         opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    ...         with opener.open(f"http://{bound}/metrics", timeout=10) as answer:
    ...             answers.append(answer.status)
    ...     finally:
    ...         os.kill(os.getpid(), signal.SIGINT)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     serve(state_dir=tmp, bind=BindAddress("127.0.0.1", 0),
    ...           on_listening=lambda bound: threading.Thread(target=client, args=[bound]).start())
    >>> answers
    [200]
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
    """Run any ASGI app with the gateway's uvicorn settings until SIGTERM or SIGINT.

    :func:`serve` calls it with :func:`create_app`'s app; benchmarks call it
    with other apps, so they compare on equal terms (same socket, no access
    log, no lifespan, no ``Server`` header, 10 s graceful shutdown).

    Parameters
    ----------
    app : ASGI callable
        ``async (scope, receive, send) -> None``.
    bind : BindAddress
        Where to listen; port 0 asks the OS for a free port.
    on_listening : callable, optional
        Called once with the bound address when connections are accepted.
    backlog : int, default 2048
        Listen backlog (connections waiting to be accepted).

    Raises
    ------
    OperationFailed
        The address cannot be bound (exit 1).

    Examples
    --------
    >>> import json, os, signal, tempfile, threading, urllib.error, urllib.request
    >>> from tau_ops.gateway import BindAddress, create_app
    >>> answers = []
    >>> def client(bound):
    ...     try:
    ...         opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    ...         opener.open(f"http://{bound}/gateway/status", timeout=10)
    ...     except urllib.error.HTTPError as error:  # no cycle yet: 503 with the gate
    ...         with error:
    ...             answers.append((error.code, json.load(error)["rollout_gate_reasons"]))
    ...     finally:
    ...         os.kill(os.getpid(), signal.SIGINT)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     serve_asgi(create_app(state_dir=tmp), bind=BindAddress("127.0.0.1", 0),
    ...                on_listening=lambda bound: threading.Thread(target=client,
    ...                                                            args=[bound]).start())
    >>> answers
    [(503, ['no_cycle'])]
    """
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
